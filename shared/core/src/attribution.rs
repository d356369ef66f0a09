//! The crediting rules of docs/behaviour/attribution.md: explicit `msg_hash`, else last qualifying touch
//! within the channel's window, else unattributed. [`credit`] decides; [`explain`] decides
//! the same way and says why each candidate touch lost. Both rest on [`eligibility`].

use crate::shares::ModelSplit;
use crate::config::TenantConfig;
use crate::model::{Message, Micros, Millis, Touch, TouchKind};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Registered messages by `msg_hash`, as far as a decision needs them.
pub type Messages = HashMap<String, Message>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rule {
    Explicit,
    LastTouch,
    Unattributed,
}

impl Rule {
    pub const ALL: [Rule; 3] = [Rule::Explicit, Rule::LastTouch, Rule::Unattributed];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Explicit => "EXPLICIT",
            Rule::LastTouch => "LAST_TOUCH",
            Rule::Unattributed => "UNATTRIBUTED",
        }
    }
}

/// One conversion of one goal, before crediting: what goal matching produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversionFact {
    pub tenant: String,
    pub goal_id: String,
    /// `order_id` for ORDER goals, `event_id` for EVENT goals: one conversion per key.
    pub key: String,
    pub customer_id: String,
    pub ts: Millis,
    pub value_micros: Micros,
    /// The record that converted (an order's qualifying status record).
    pub source_event_id: String,
    pub explicit_msg_hash: Option<String>,
}

/// Which message a conversion is credited to, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    pub rule: Rule,
    /// `None` exactly when unattributed.
    pub msg_hash: Option<String>,
    /// The winning touch, for `LastTouch`.
    pub touch_event_id: Option<String>,
}

impl Credit {
    pub fn unattributed() -> Credit {
        Credit { rule: Rule::Unattributed, msg_hash: None, touch_event_id: None }
    }
}

/// A credited conversion: what the store keeps and rollups count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    pub fact: ConversionFact,
    pub credit: Credit,
    /// The other models' credit when it can differ from last touch's (two or more
    /// candidates): what rollups count for them.
    pub split: Option<ModelSplit>,
}

/// Whether a touch could be credited with a conversion at `conversion_ts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    Eligible,
    MessageUnregistered,
    MessageExcluded,
    WrongTouchKind { connect_on: TouchKind },
    AfterConversion,
    OutsideWindow { window_ms: Millis },
}

/// The one place the per-touch conditions of rule 2 are written.
pub fn eligibility(
    touch: &Touch,
    conversion_ts: Millis,
    message: Option<&Message>,
    config: &TenantConfig,
) -> Eligibility {
    let Some(message) = message else {
        return Eligibility::MessageUnregistered;
    };
    if config.is_excluded(&message.tags) {
        return Eligibility::MessageExcluded;
    }
    let setting = config.setting(message.channel);
    if touch.kind != setting.connect_on {
        return Eligibility::WrongTouchKind { connect_on: setting.connect_on };
    }
    if touch.ts > conversion_ts {
        return Eligibility::AfterConversion;
    }
    // Both ends inclusive: a touch exactly window_ms before still counts.
    if conversion_ts - touch.ts > setting.window_ms {
        return Eligibility::OutsideWindow { window_ms: setting.window_ms };
    }
    Eligibility::Eligible
}

/// Why an explicit `msg_hash` on the converting record was or was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplicitStatus {
    Used,
    Unregistered,
    Excluded,
}

pub fn explicit_status(msg_hash: &str, messages: &Messages, config: &TenantConfig) -> ExplicitStatus {
    match messages.get(msg_hash) {
        None => ExplicitStatus::Unregistered,
        Some(message) if config.is_excluded(&message.tags) => ExplicitStatus::Excluded,
        Some(_) => ExplicitStatus::Used,
    }
}

/// Rule 2's order: the later touch wins; at equal times, the greater `event_id`.
fn later(a: &Touch, b: &Touch) -> Ordering {
    (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id))
}

/// Credits one conversion. `touches` are the customer's touches (any superset of those
/// within the longest window; others are ignored); `messages` holds every registered
/// message among them and the explicit one.
pub fn credit(fact: &ConversionFact, touches: &[Touch], messages: &Messages, config: &TenantConfig) -> Credit {
    if let Some(msg_hash) = &fact.explicit_msg_hash
        && explicit_status(msg_hash, messages, config) == ExplicitStatus::Used
    {
        return Credit { rule: Rule::Explicit, msg_hash: Some(msg_hash.clone()), touch_event_id: None };
    }
    touches
        .iter()
        .filter(|touch| touch.customer_id == fact.customer_id)
        .filter(|touch| {
            eligibility(touch, fact.ts, messages.get(&touch.msg_hash), config) == Eligibility::Eligible
        })
        .max_by(|a, b| later(a, b))
        .map_or_else(Credit::unattributed, |winner| Credit {
            rule: Rule::LastTouch,
            msg_hash: Some(winner.msg_hash.clone()),
            touch_event_id: Some(winner.event_id.clone()),
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Won,
    LostToLaterTouch,
    LostTieOnEventId,
    ExplicitTookPrecedence,
    Ineligible(Eligibility),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub touch: Touch,
    pub verdict: Verdict,
    /// The verdict in words, with the figures that decided it.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub credit: Credit,
    pub explicit: Option<ExplicitStatus>,
    /// One sentence: which rule decided and why.
    pub decision: String,
    /// Newest first.
    pub candidates: Vec<Candidate>,
}

/// Credits like [`credit`] and says why: the decision, and a verdict for every touch given.
pub fn explain(fact: &ConversionFact, touches: &[Touch], messages: &Messages, config: &TenantConfig) -> Explanation {
    let credit = credit(fact, touches, messages, config);
    let explicit = fact.explicit_msg_hash.as_deref().map(|h| explicit_status(h, messages, config));
    let winner = credit.touch_event_id.as_deref();
    let winner_touch = touches.iter().find(|t| Some(t.event_id.as_str()) == winner);

    let mut candidates: Vec<Candidate> = touches
        .iter()
        .filter(|touch| touch.customer_id == fact.customer_id)
        .map(|touch| {
            let eligibility = eligibility(touch, fact.ts, messages.get(&touch.msg_hash), config);
            let verdict = match (eligibility, credit.rule, winner_touch) {
                (Eligibility::Eligible, Rule::Explicit, _) => Verdict::ExplicitTookPrecedence,
                (Eligibility::Eligible, _, Some(w)) if w.event_id == touch.event_id => Verdict::Won,
                (Eligibility::Eligible, _, Some(w)) if w.ts == touch.ts => Verdict::LostTieOnEventId,
                (Eligibility::Eligible, _, _) => Verdict::LostToLaterTouch,
                (ineligible, _, _) => Verdict::Ineligible(ineligible),
            };
            Candidate { reason: reason(touch, fact, verdict, winner_touch, &credit), touch: touch.clone(), verdict }
        })
        .collect();
    candidates.sort_by(|a, b| later(&b.touch, &a.touch));

    let decision = match (credit.rule, explicit) {
        (Rule::Explicit, _) => format!(
            "EXPLICIT: the converting record {} carries msg_hash {}, a registered message that is not excluded",
            fact.source_event_id,
            credit.msg_hash.as_deref().unwrap_or_default()
        ),
        (Rule::LastTouch, _) => format!(
            "LAST_TOUCH: touch {} of message {} is the latest qualifying touch within its channel's window{}",
            winner.unwrap_or_default(),
            credit.msg_hash.as_deref().unwrap_or_default(),
            explicit_fallback(explicit)
        ),
        (Rule::Unattributed, _) => format!(
            "UNATTRIBUTED: no explicit msg_hash applies and none of the customer's {} touches qualifies{}",
            candidates.len(),
            explicit_fallback(explicit)
        ),
    };
    Explanation { credit, explicit, decision, candidates }
}

fn explicit_fallback(explicit: Option<ExplicitStatus>) -> &'static str {
    match explicit {
        Some(ExplicitStatus::Unregistered) => " (the explicit msg_hash names no registered message)",
        Some(ExplicitStatus::Excluded) => " (the explicit msg_hash names an excluded message)",
        Some(ExplicitStatus::Used) | None => "",
    }
}

fn reason(touch: &Touch, fact: &ConversionFact, verdict: Verdict, winner: Option<&Touch>, credit: &Credit) -> String {
    let before = fact.ts - touch.ts;
    match verdict {
        Verdict::Won => format!("latest qualifying touch, {before} ms before the conversion"),
        Verdict::LostToLaterTouch => match winner {
            Some(w) => format!("qualifies, but touch {} at {} is later", w.event_id, w.ts),
            None => "qualifies, but another touch won".to_owned(),
        },
        Verdict::LostTieOnEventId => match winner {
            Some(w) => format!("same time as touch {}, whose event_id is greater", w.event_id),
            None => "tied with the winner, whose event_id is greater".to_owned(),
        },
        Verdict::ExplicitTookPrecedence => format!(
            "qualifies, but the explicit msg_hash {} takes precedence",
            credit.msg_hash.as_deref().unwrap_or_default()
        ),
        Verdict::Ineligible(Eligibility::MessageUnregistered) => "its message is not registered".to_owned(),
        Verdict::Ineligible(Eligibility::MessageExcluded) => "its message carries an excluded tag".to_owned(),
        Verdict::Ineligible(Eligibility::WrongTouchKind { connect_on }) => {
            format!("a {} touch; this channel connects on {connect_on}", touch.kind)
        }
        Verdict::Ineligible(Eligibility::AfterConversion) => format!("{} ms after the conversion", -before),
        Verdict::Ineligible(Eligibility::OutsideWindow { window_ms }) => {
            format!("{before} ms before the conversion, past the channel's {window_ms} ms window")
        }
        Verdict::Ineligible(Eligibility::Eligible) => String::new(),
    }
}

/// Fixtures shared by the tests of the crediting rules and of the fold.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{ConversionFact, Messages};
    use crate::config::{ChannelSetting, TenantConfig};
    use crate::model::{Channel, Message, Millis, Touch, TouchKind};

    pub const HOUR: Millis = 3_600_000;

    /// Push connects on OPENED within a day, email on CLICKED within two hours; messages
    /// tagged "transactional" are excluded.
    pub fn config() -> TenantConfig {
        let mut config = TenantConfig::defaults("t");
        config.set_channel(Channel::Push, ChannelSetting { connect_on: TouchKind::Opened, window_ms: 24 * HOUR }).unwrap();
        config.set_channel(Channel::Email, ChannelSetting { connect_on: TouchKind::Clicked, window_ms: 2 * HOUR }).unwrap();
        config.set_excluded_tags(vec!["transactional".into()]);
        config
    }

    pub fn message(hash: &str, channel: Channel, tags: &[&str], sent_at: Millis) -> Message {
        Message {
            tenant: "t".into(),
            msg_hash: hash.into(),
            campaign_id: "camp".into(),
            channel,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            sent_at,
        }
    }

    /// A touch of customer "c".
    pub fn touch(id: &str, msg: &str, kind: TouchKind, ts: Millis) -> Touch {
        Touch { tenant: "t".into(), event_id: id.into(), msg_hash: msg.into(), customer_id: "c".into(), kind, ts }
    }

    /// Customer "c"'s order "o1" for the default goal, converting at `ts`.
    pub fn fact(ts: Millis, explicit: Option<&str>) -> ConversionFact {
        ConversionFact {
            tenant: "t".into(),
            goal_id: "orders".into(),
            key: "o1".into(),
            customer_id: "c".into(),
            ts,
            value_micros: 5,
            source_event_id: "r1".into(),
            explicit_msg_hash: explicit.map(str::to_owned),
        }
    }

    /// "push" and "push2" (push), "mail" (email), "reset" (push, excluded), sent at `sent_at`.
    pub fn messages(sent_at: Millis) -> Messages {
        let push = |hash| message(hash, Channel::Push, &[], sent_at);
        [push("push"), push("push2"), message("mail", Channel::Email, &[], sent_at), message("reset", Channel::Push, &["transactional"], sent_at)]
            .into_iter()
            .map(|m| (m.msg_hash.clone(), m))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{self, HOUR, config, fact, touch};
    use super::*;

    const T0: Millis = 1_700_000_000_000;

    fn messages() -> Messages {
        fixtures::messages(T0 - 100 * HOUR)
    }

    fn credited(fact: &ConversionFact, touches: &[Touch]) -> (Rule, Option<String>) {
        let credit = credit(fact, touches, &messages(), &config());
        (credit.rule, credit.msg_hash)
    }

    #[test]
    fn window_end_is_inclusive_and_one_ms_past_is_out() {
        let opened = touch("a", "push", TouchKind::Opened, T0);
        assert_eq!(credited(&fact(T0 + 24 * HOUR, None), std::slice::from_ref(&opened)), (Rule::LastTouch, Some("push".into())));
        assert_eq!(credited(&fact(T0 + 24 * HOUR + 1, None), std::slice::from_ref(&opened)), (Rule::Unattributed, None));
        // The start is inclusive too: a conversion at the touch's own ms.
        assert_eq!(credited(&fact(T0, None), &[opened]), (Rule::LastTouch, Some("push".into())));
    }

    #[test]
    fn touches_after_the_conversion_never_count() {
        let opened = touch("a", "push", TouchKind::Opened, T0 + 1);
        assert_eq!(credited(&fact(T0, None), &[opened]), (Rule::Unattributed, None));
    }

    #[test]
    fn each_channel_uses_its_own_connect_on_and_window() {
        // EMAIL connects on CLICKED within 2h; its OPENED touch does not count.
        let opened = touch("a", "mail", TouchKind::Opened, T0);
        assert_eq!(credited(&fact(T0 + HOUR, None), &[opened]), (Rule::Unattributed, None));
        let clicked = touch("b", "mail", TouchKind::Clicked, T0);
        assert_eq!(credited(&fact(T0 + 2 * HOUR, None), std::slice::from_ref(&clicked)), (Rule::LastTouch, Some("mail".into())));
        assert_eq!(credited(&fact(T0 + 3 * HOUR, None), &[clicked]), (Rule::Unattributed, None));
    }

    #[test]
    fn the_latest_touch_wins_and_ties_go_to_the_greater_event_id() {
        let early = touch("z", "push", TouchKind::Opened, T0);
        let late = touch("a", "push2", TouchKind::Opened, T0 + 5);
        assert_eq!(credited(&fact(T0 + 10, None), &[late.clone(), early.clone()]), (Rule::LastTouch, Some("push2".into())));
        let tie_small = touch("e1", "push", TouchKind::Opened, T0);
        let tie_big = touch("e2", "push2", TouchKind::Opened, T0);
        for order in [[tie_small.clone(), tie_big.clone()], [tie_big.clone(), tie_small.clone()]] {
            assert_eq!(credited(&fact(T0 + 10, None), &order), (Rule::LastTouch, Some("push2".into())));
        }
    }

    #[test]
    fn explicit_msg_hash_wins_over_touches_even_outside_any_window() {
        let opened = touch("a", "push2", TouchKind::Opened, T0);
        assert_eq!(credited(&fact(T0 + 1000 * HOUR, Some("push")), &[opened]), (Rule::Explicit, Some("push".into())));
    }

    #[test]
    fn explicit_msg_hash_of_an_excluded_or_unknown_message_falls_back_to_last_touch() {
        let opened = touch("a", "push2", TouchKind::Opened, T0);
        for explicit in ["reset", "never-registered"] {
            assert_eq!(
                credited(&fact(T0 + 1, Some(explicit)), std::slice::from_ref(&opened)),
                (Rule::LastTouch, Some("push2".into())),
                "{explicit}"
            );
        }
        assert_eq!(credited(&fact(T0 + 1, Some("reset")), &[]), (Rule::Unattributed, None));
    }

    #[test]
    fn excluded_and_unregistered_messages_are_never_credited_by_last_touch() {
        let excluded = touch("a", "reset", TouchKind::Opened, T0 + 5);
        let unknown = touch("b", "nobody", TouchKind::Opened, T0 + 6);
        let good = touch("c", "push", TouchKind::Opened, T0);
        assert_eq!(credited(&fact(T0 + 10, None), &[excluded, unknown, good]), (Rule::LastTouch, Some("push".into())));
    }

    #[test]
    fn other_customers_touches_are_ignored() {
        let mut other = touch("a", "push", TouchKind::Opened, T0);
        other.customer_id = "someone-else".into();
        assert_eq!(credited(&fact(T0 + 1, None), &[other]), (Rule::Unattributed, None));
    }

    #[test]
    fn explain_agrees_with_credit_and_gives_every_touch_a_verdict() {
        let touches = vec![
            touch("w", "push", TouchKind::Opened, T0 + 10),
            touch("t", "push2", TouchKind::Opened, T0 + 10),
            touch("l", "push2", TouchKind::Opened, T0),
            touch("k", "mail", TouchKind::Opened, T0 + 11),
            touch("o", "mail", TouchKind::Clicked, T0 - 3 * HOUR),
            touch("x", "reset", TouchKind::Opened, T0 + 12),
            touch("u", "nobody", TouchKind::Opened, T0 + 13),
            touch("f", "push", TouchKind::Opened, T0 + 100),
        ];
        let fact = fact(T0 + 20, None);
        let explanation = explain(&fact, &touches, &messages(), &config());
        assert_eq!(explanation.credit, credit(&fact, &touches, &messages(), &config()));
        let verdict = |id: &str| explanation.candidates.iter().find(|c| c.touch.event_id == id).unwrap().verdict;
        assert_eq!(verdict("w"), Verdict::Won);
        assert_eq!(verdict("t"), Verdict::LostTieOnEventId);
        assert_eq!(verdict("l"), Verdict::LostToLaterTouch);
        assert_eq!(verdict("k"), Verdict::Ineligible(Eligibility::WrongTouchKind { connect_on: TouchKind::Clicked }));
        assert_eq!(verdict("o"), Verdict::Ineligible(Eligibility::OutsideWindow { window_ms: 2 * HOUR }));
        assert_eq!(verdict("x"), Verdict::Ineligible(Eligibility::MessageExcluded));
        assert_eq!(verdict("u"), Verdict::Ineligible(Eligibility::MessageUnregistered));
        assert_eq!(verdict("f"), Verdict::Ineligible(Eligibility::AfterConversion));
        assert_eq!(explanation.candidates[0].touch.event_id, "f", "newest first");
        assert!(explanation.decision.starts_with("LAST_TOUCH"), "{}", explanation.decision);
    }

    #[test]
    fn explain_marks_qualifying_touches_as_beaten_by_an_explicit_msg_hash() {
        let touches = vec![touch("a", "push2", TouchKind::Opened, T0)];
        let explanation = explain(&fact(T0 + 1, Some("push")), &touches, &messages(), &config());
        assert_eq!(explanation.explicit, Some(ExplicitStatus::Used));
        assert_eq!(explanation.candidates[0].verdict, Verdict::ExplicitTookPrecedence);
    }
}
