//! What crediting conversions reads: each customer's touches within the longest window
//! before the conversion, and the registered messages among those and the explicit ones.
//! Used by the engine and by `ExplainConversion`, so both see the same candidates.

use std::collections::HashMap;
use touchstone_core::attribution::{ConversionFact, Messages};
use touchstone_core::config::TenantConfig;
use touchstone_core::model::Touch;
use touchstone_store::{CustomerSpan, RecordReads, Result, StoreError};

/// What crediting many conversions needs, read in a few batched calls ([`credit_inputs_many`]).
#[derive(Debug, Default)]
pub struct CreditInputs {
    /// Per fact, in the order given: the customer's touches within the longest window before it.
    pub touches: Vec<Vec<Touch>>,
    /// Per tenant: the registered messages among all those touches and explicit hashes.
    pub messages: HashMap<String, Messages>,
}

/// The span of a customer's touches that can explain `fact` under `config`: from the
/// longest channel window before it up to the conversion itself (SPEC section 4).
pub fn candidate_span(config: &TenantConfig, fact: &ConversionFact) -> CustomerSpan {
    CustomerSpan {
        tenant: fact.tenant.clone(),
        customer_id: fact.customer_id.clone(),
        from: fact.ts.saturating_sub(config.max_window_ms()),
        to: fact.ts,
    }
}

/// The `msg_hash`es whose registration decides the credit: the touched messages and the
/// explicit one, sorted, once each.
fn candidate_hashes<'a>(touches: impl IntoIterator<Item = &'a Touch>, explicit: Option<&String>) -> Vec<String> {
    let mut hashes: Vec<String> = touches.into_iter().map(|t| t.msg_hash.clone()).chain(explicit.cloned()).collect();
    hashes.sort();
    hashes.dedup();
    hashes
}

/// [`credit_inputs`] for many facts at once: one batched touch read, one message read per
/// tenant. `configs` must hold the config of every fact's tenant.
pub async fn credit_inputs_many(
    reads: &dyn RecordReads,
    configs: &HashMap<String, TenantConfig>,
    facts: &[&ConversionFact],
) -> Result<CreditInputs> {
    let mut spans = Vec::with_capacity(facts.len());
    for fact in facts {
        let config = configs
            .get(&fact.tenant)
            .ok_or_else(|| StoreError::Backend(format!("no config loaded for tenant {:?}", fact.tenant)))?;
        spans.push(candidate_span(config, fact));
    }
    let touches = reads.customer_touches_many(&spans).await?;
    let mut hashes: HashMap<&str, Vec<String>> = HashMap::new();
    for (fact, touches) in facts.iter().zip(&touches) {
        hashes.entry(fact.tenant.as_str()).or_default().extend(candidate_hashes(touches, fact.explicit_msg_hash.as_ref()));
    }
    let mut messages = HashMap::with_capacity(hashes.len());
    for (tenant, mut tenant_hashes) in hashes {
        tenant_hashes.sort();
        tenant_hashes.dedup();
        messages.insert(tenant.to_owned(), reads.messages(tenant, &tenant_hashes).await?);
    }
    Ok(CreditInputs { touches, messages })
}

/// What crediting one conversion needs: the customer's touches within the longest window
/// before it, and the registered messages among those and the explicit one.
pub async fn credit_inputs(reads: &dyn RecordReads, config: &TenantConfig, fact: &ConversionFact) -> Result<(Vec<Touch>, Messages)> {
    let span = candidate_span(config, fact);
    let touches = reads.customer_touches(&span.tenant, &span.customer_id, span.from, span.to).await?;
    let hashes = candidate_hashes(&touches, fact.explicit_msg_hash.as_ref());
    let messages = reads.messages(&fact.tenant, &hashes).await?;
    Ok((touches, messages))
}
