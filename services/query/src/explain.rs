//! What `ExplainConversion` reads: the customer's touches within the longest window
//! before it, as attribution folded them, and the registered messages among those and the
//! explicit one. `ExplainConversion` uses it, so it shows what the credit was computed from.

use touchstone_core::attribution::{ConversionFact, Messages};
use touchstone_core::config::TenantConfig;
use touchstone_core::model::{Millis, Touch};
use touchstone_store::{RecordReads, Result};

/// The span of a customer's touches that can explain `fact` under `config`: from the
/// longest channel window before it up to the conversion itself (docs/behaviour/attribution.md).
pub fn candidate_span(config: &TenantConfig, fact: &ConversionFact) -> (Millis, Millis) {
    (fact.ts.saturating_sub(config.max_window_ms()), fact.ts)
}

/// What crediting one conversion needs: the customer's touches within the longest window
/// before it, and the registered messages among those and the explicit one.
pub async fn credit_inputs(reads: &dyn RecordReads, config: &TenantConfig, fact: &ConversionFact) -> Result<(Vec<Touch>, Messages)> {
    let (from, to) = candidate_span(config, fact);
    let touches = reads.customer_touches(&fact.tenant, &fact.customer_id, from, to).await?;
    // The touched messages and the explicit one, sorted, once each.
    let mut hashes: Vec<String> = touches.iter().map(|t| t.msg_hash.clone()).chain(fact.explicit_msg_hash.clone()).collect();
    hashes.sort();
    hashes.dedup();
    let messages = reads.messages(&fact.tenant, &hashes).await?;
    Ok((touches, messages))
}
