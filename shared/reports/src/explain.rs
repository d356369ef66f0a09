//! `report explain`: one conversion's explanation (the credited message, the rule that
//! decided, every candidate touch with its verdict), as JSON or as text.

use crate::models::{model_name, ppm_number};
use crate::rows::decimal_json;
use crate::table::{Align, Table};
use crate::table::time_text;
use serde_json::{Value, json};
use touchstone_proto::v1 as pb;

/// A proto enum value's name without its prefix (`CANDIDATE_VERDICT_WON`: "WON"), for the
/// enums the core has no type of (rules, verdicts are only shown).
pub fn name<E>(name: Result<&'static str, E>, prefix: &str) -> String {
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
        "value": decimal_json(explanation.value.as_ref()),
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
                        "value": decimal_json(share.value.as_ref()),
                    })
                })
                .collect();
            (model_name(credit.model).to_owned(), Value::Array(shares))
        })
        .collect();
    Value::Object(models)
}

/// Durations in a reason (`4000045 ms before`) as a person reads them (`1 h 6 min before`);
/// other text as it is.
fn readable_durations(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some(at) = rest.find(" ms") {
        let digits = rest[..at].bytes().rev().take_while(u8::is_ascii_digit).count();
        let (before, number) = rest[..at].split_at(at - digits);
        out.push_str(before);
        match number.parse::<i64>() {
            Ok(ms) if digits > 0 => out.push_str(&duration_text(ms)),
            _ => {
                out.push_str(number);
                out.push_str(" ms");
            }
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

/// `3 d 4 h`, `1 h 6 min`, `2 min 5 s`, `4.5 s`, `250 ms`: the two largest units.
fn duration_text(ms: i64) -> String {
    const SECOND: i64 = 1_000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let two = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 { format!("{big} {big_unit}") } else { format!("{big} {big_unit} {small} {small_unit}") }
    };
    match ms.abs() {
        ms if ms >= DAY => two(ms / DAY, "d", ms % DAY / HOUR, "h"),
        ms if ms >= HOUR => two(ms / HOUR, "h", ms % HOUR / MINUTE, "min"),
        ms if ms >= MINUTE => two(ms / MINUTE, "min", ms % MINUTE / SECOND, "s"),
        ms if ms >= SECOND => format!("{} s", (ms as f64 / 1_000.0 * 10.0).floor() / 10.0),
        ms => format!("{ms} ms"),
    }
}

pub fn explanation_table(explanation: &pb::ConversionExplanation) -> String {
    let mut text = format!(
        "{}\nconverted {}; rule {}, credited message {}, campaign {}\n\n",
        explanation.decision,
        time_text(explanation.ts),
        rule(explanation),
        if explanation.credited_msg_hash.is_empty() { "none" } else { &explanation.credited_msg_hash },
        if explanation.credited_campaign_id.is_empty() { "none" } else { &explanation.credited_campaign_id },
    );
    let mut table = Table::new(
        [("time (UTC)", Align::Left), ("touch", Align::Left), ("msg_hash", Align::Left), ("event_id", Align::Left), ("verdict", Align::Left), ("reason", Align::Left)]
            .map(|(title, align)| (title.to_owned(), align))
            .to_vec(),
    );
    for candidate in &explanation.candidates {
        let (touch, verdict) = candidate_names(candidate);
        let reason = readable_durations(&candidate.reason);
        table.push(vec![time_text(candidate.ts), touch, candidate.msg_hash.clone(), candidate.event_id.clone(), verdict, reason]);
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
    fn tables_show_utc_times_and_durations_a_person_reads() {
        assert_eq!(readable_durations("latest qualifying touch, 4000045 ms before the conversion"), "latest qualifying touch, 1 h 6 min before the conversion");
        assert_eq!(
            readable_durations("90061000 ms before the conversion, past the channel's 86400000 ms window"),
            "1 d 1 h before the conversion, past the channel's 1 d window"
        );
        assert_eq!(readable_durations("125000 ms after the conversion"), "2 min 5 s after the conversion");
        assert_eq!(readable_durations("4500 ms, 250 ms, 0 ms"), "4.5 s, 250 ms, 0 ms");
        assert_eq!(readable_durations("no duration here, nor in 'ms'"), "no duration here, nor in 'ms'");
        let mut explained = explanation();
        explained.candidates[0].reason = "latest qualifying touch, 4000045 ms before the conversion".into();
        explained.candidates[0].ts = 1_767_480_722_030;
        let text = explanation_table(&explained);
        assert!(text.contains("2026-01-03 22:52:02.030 UTC") && text.contains("1 h 6 min before"), "{text}");
        assert!(!text.contains("4000045") && !text.contains("1767480722030"), "{text}");
        // JSON keeps the exact figures.
        let json = explanation_json(&explained);
        assert_eq!(json["candidates"][0]["ts"], 1_767_480_722_030i64);
        assert_eq!(json["candidates"][0]["reason"], "latest qualifying touch, 4000045 ms before the conversion");
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
