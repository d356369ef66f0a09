//! `report explain`: one conversion's explanation (the credited message, the rule that
//! decided, every candidate touch with its verdict), as JSON or as text.

use super::models::{model_name, ppm_number};
use super::table::{Align, Table};
use serde_json::{Value, json};
use touchstone_proto::v1 as pb;

/// A proto enum value's name without its prefix (`CANDIDATE_VERDICT_WON`: "WON"), for the
/// enums the core has no type of (rules, verdicts are only shown).
pub(crate) fn name<E>(name: Result<&'static str, E>, prefix: &str) -> String {
    name.map(|name| name.trim_start_matches(prefix).to_owned()).unwrap_or_else(|_| "UNKNOWN".to_owned())
}

fn rule(explanation: &pb::ConversionExplanation) -> String {
    name(pb::AttributionRule::try_from(explanation.rule).map(|r| r.as_str_name()), "ATTRIBUTION_RULE_")
}

fn candidate_names(candidate: &pb::CandidateTouch) -> (String, String) {
    let touch = name(pb::TouchKind::try_from(candidate.touch).map(|k| k.as_str_name()), "TOUCH_KIND_");
    let verdict = name(pb::CandidateVerdict::try_from(candidate.verdict).map(|v| v.as_str_name()), "CANDIDATE_VERDICT_");
    (touch, verdict)
}

/// Values as the other reports write them: decimals of minor units as JSON numbers.
pub(crate) fn decimal(value: Option<&pb::Decimal>) -> Value {
    let text = value.map(|decimal| decimal.value.as_str()).unwrap_or("0");
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub fn explanation_json(explanation: &pb::ConversionExplanation) -> Value {
    let candidates: Vec<Value> = explanation
        .candidates
        .iter()
        .map(|candidate| {
            let (touch, verdict) = candidate_names(candidate);
            json!({
                "event_id": candidate.event_id,
                "msg_hash": candidate.msg_hash,
                "touch": touch,
                "ts": candidate.ts,
                "verdict": verdict,
                "reason": candidate.reason,
            })
        })
        .collect();
    json!({
        "goal_id": explanation.goal_id,
        "conversion_key": explanation.conversion_key,
        "customer_id": explanation.customer_id,
        "ts": explanation.ts,
        "value": decimal(explanation.value.as_ref()),
        "source_event_id": explanation.source_event_id,
        "explicit_msg_hash": explanation.explicit_msg_hash,
        "explicit_status": explanation.explicit_status,
        "rule": rule(explanation),
        "credited_msg_hash": explanation.credited_msg_hash,
        "credited_campaign_id": explanation.credited_campaign_id,
        "decision": explanation.decision,
        "candidates": candidates,
        "models": models_json(explanation),
    })
}

/// `{"<model>": [{"msg_hash", "campaign_id", "touch_event_id", "share", "value"}, …]}`,
/// `share` the ppm as a decimal fraction (`0.333333`).
fn models_json(explanation: &pb::ConversionExplanation) -> Value {
    let models: serde_json::Map<String, Value> = explanation
        .models
        .iter()
        .map(|credit| {
            let shares: Vec<Value> = credit
                .shares
                .iter()
                .map(|share| {
                    json!({
                        "msg_hash": share.msg_hash,
                        "campaign_id": share.campaign_id,
                        "touch_event_id": share.touch_event_id,
                        "share": ppm_number(u64::from(share.ppm)),
                        "value": decimal(share.value.as_ref()),
                    })
                })
                .collect();
            (model_name(credit.model).to_owned(), Value::Array(shares))
        })
        .collect();
    Value::Object(models)
}

pub fn explanation_table(explanation: &pb::ConversionExplanation) -> String {
    let mut text = format!(
        "{}\nrule {}, credited message {}, campaign {}\n\n",
        explanation.decision,
        rule(explanation),
        if explanation.credited_msg_hash.is_empty() { "none" } else { &explanation.credited_msg_hash },
        if explanation.credited_campaign_id.is_empty() { "none" } else { &explanation.credited_campaign_id },
    );
    let mut table = Table::new(
        [("ts", Align::Right), ("touch", Align::Left), ("msg_hash", Align::Left), ("event_id", Align::Left), ("verdict", Align::Left), ("reason", Align::Left)]
            .map(|(title, align)| (title.to_owned(), align))
            .to_vec(),
    );
    for candidate in &explanation.candidates {
        let (touch, verdict) = candidate_names(candidate);
        table.push(vec![candidate.ts.to_string(), touch, candidate.msg_hash.clone(), candidate.event_id.clone(), verdict, candidate.reason.clone()]);
    }
    text.push_str(&table.render());
    if !explanation.models.is_empty() {
        text.push_str("\nevery model's split:\n");
        let mut models = Table::new(
            [("model", Align::Left), ("msg_hash", Align::Left), ("campaign", Align::Left), ("share", Align::Right), ("value", Align::Right)]
                .map(|(title, align)| (title.to_owned(), align))
                .to_vec(),
        );
        for credit in &explanation.models {
            let model = model_name(credit.model).to_owned();
            if credit.shares.is_empty() {
                models.push(vec![model.clone(), "(unattributed)".into(), String::new(), String::new(), String::new()]);
            }
            for share in &credit.shares {
                let value = share.value.as_ref().map_or_else(|| "0".to_owned(), |value| value.value.clone());
                models.push(vec![model.clone(), share.msg_hash.clone(), share.campaign_id.clone(), ppm_number(u64::from(share.ppm)).to_string(), value]);
            }
        }
        text.push_str(&models.render());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explanation() -> pb::ConversionExplanation {
        pb::ConversionExplanation {
            goal_id: "orders".into(),
            conversion_key: "o1".into(),
            customer_id: "ann".into(),
            ts: 1_000,
            value: Some(pb::Decimal { value: "2350927".into() }),
            rule: pb::AttributionRule::LastTouch as i32,
            credited_msg_hash: "m1".into(),
            credited_campaign_id: "spring".into(),
            decision: "last touch: m1 opened within the push window".into(),
            candidates: vec![pb::CandidateTouch {
                event_id: "t1".into(),
                msg_hash: "m1".into(),
                touch: pb::TouchKind::Opened as i32,
                ts: 900,
                verdict: pb::CandidateVerdict::Won as i32,
                reason: "latest qualifying touch".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn explanations_print_as_json_and_as_text() {
        let value = explanation_json(&explanation());
        assert_eq!(value["rule"], "LAST_TOUCH");
        assert_eq!(value["value"], json!(2350927));
        assert_eq!(value["candidates"][0]["verdict"], "WON");
        assert_eq!(value["candidates"][0]["touch"], "OPENED");
        let text = explanation_table(&explanation());
        assert!(text.starts_with("last touch: m1") && text.contains("WON") && text.contains("latest qualifying touch"), "{text}");
    }

    #[test]
    fn every_models_split_prints_by_model_name_with_exact_shares() {
        let share = |hash: &str, ppm: u32, value: &str| pb::ModelShare {
            msg_hash: hash.into(),
            campaign_id: "spring".into(),
            touch_event_id: format!("t-{hash}"),
            ppm,
            value: Some(pb::Decimal { value: value.into() }),
        };
        let mut explanation = explanation();
        explanation.models = vec![
            pb::ModelCredit { model: pb::AttributionModel::Linear as i32, shares: vec![share("m1", 333_333, "7.5"), share("m2", 666_667, "15")] },
            pb::ModelCredit { model: pb::AttributionModel::TimeDecay as i32, shares: vec![] },
        ];
        let value = explanation_json(&explanation);
        assert_eq!(value["models"]["linear"][0]["share"], json!(0.333333));
        assert_eq!(value["models"]["linear"][1]["share"], json!(0.666667));
        assert_eq!(value["models"]["linear"][0]["value"], json!(7.5));
        assert_eq!(value["models"]["time_decay"], json!([]), "unattributed under that model");
        assert_eq!(ppm_number(1_000_000), json!(1));
        assert_eq!(ppm_number(400_000), json!(0.4));
        let text = explanation_table(&explanation);
        assert!(text.contains("every model's split") && text.contains("0.666667") && text.contains("(unattributed)"), "{text}");
    }
}
