//! docs/behaviour/badges.md (badges), rule by rule, with hand-computed expectations, against the
//! public API of `touchstone_core::badges` only.

use touchstone_core::badges::{
    self, BadgeBook, BadgeDefinition, BadgeError, BadgeRule, BadgeSaved, MAX_BADGES, Progress, RuleKind, TimelineCursor,
    TimelineEntry, TimelineFilter, TrophyCase,
};
use touchstone_core::model::{AppEvent, BadgeAction, BadgeEvent, BadgeSource, Millis, OrderRecord, Record};

const USD: &str = "USD";
/// 2026-01-01T00:00Z.
const T0: Millis = 1_767_225_600_000;

/// `T0` plus `s` seconds.
fn at(s: i64) -> Millis {
    T0 + s * 1000
}

fn event(id: &str, name: &str, s: i64) -> Record {
    Record::Event(AppEvent {
        tenant: "t".into(),
        event_id: id.into(),
        customer_id: "c".into(),
        name: name.into(),
        ts: at(s),
        value_micros: None,
        msg_hash: None,
    })
}

fn order(id: &str, order_id: &str, status: &str, amount_minor: i64, currency: &str, s: i64) -> Record {
    Record::Order(OrderRecord {
        tenant: "t".into(),
        event_id: id.into(),
        order_id: order_id.into(),
        customer_id: "c".into(),
        status: status.into(),
        amount_minor,
        currency: currency.into(),
        categories: vec![],
        channel: "web".into(),
        ts: at(s),
        msg_hash: None,
    })
}

fn stored(id: &str, badge_id: &str, action: BadgeAction, s: i64, source: BadgeSource) -> BadgeEvent {
    BadgeEvent {
        tenant: "t".into(),
        event_id: id.into(),
        customer_id: "c".into(),
        badge_id: badge_id.into(),
        action,
        ts: at(s),
        source,
        reason: Some("support".into()),
    }
}

/// A badge with `kind` saved at second `saved` (not retro, no period).
fn ruled(id: &str, kind: RuleKind, saved: i64) -> BadgeDefinition {
    let mut badge = BadgeDefinition::new(id, &format!("Badge {id}"));
    badge.rule = Some(BadgeRule { kind, period_ms: None });
    badge.rule_saved_at = Some(at(saved));
    badge
}

fn checkins(count: u64) -> RuleKind {
    RuleKind::EventCount { event_name: "checkin".into(), count }
}

fn with_period(mut badge: BadgeDefinition, seconds: i64) -> BadgeDefinition {
    badge.rule.as_mut().expect("a rule").period_ms = Some(seconds * 1000);
    badge
}

/// The only rule earn in the timeline of `badge` over `activity`, read far in the future.
fn earn(badge: &BadgeDefinition, activity: &[Record]) -> Option<TimelineEntry> {
    let entries = badges::timeline(std::slice::from_ref(badge), USD, &[], activity, at(1_000_000));
    let earns: Vec<&TimelineEntry> = entries.iter().filter(|e| e.event_id.starts_with("rule:")).collect();
    assert!(earns.len() <= 1, "a rule earns once: {earns:?}");
    earns.first().map(|e| (*e).clone())
}

/// The second of the rule earn, if any.
fn earned_at(badge: &BadgeDefinition, activity: &[Record]) -> Option<i64> {
    earn(badge, activity).map(|e| (e.ts - T0) / 1000)
}

fn ids(entries: &[TimelineEntry]) -> Vec<(&str, Millis)> {
    entries.iter().map(|e| (e.event_id.as_str(), e.ts)).collect()
}

// ---- rule earns ---------------------------------------------------------------------

#[test]
fn an_event_count_rule_earns_at_the_event_that_reaches_the_count() {
    let badge = ruled("regular", checkins(3), 0);
    let activity = [event("e1", "checkin", 10), event("e2", "view", 15), event("e3", "checkin", 20), event("e4", "checkin", 30), event("e5", "checkin", 40)];
    let entry = earn(&badge, &activity).expect("earned");
    assert_eq!(entry.event_id, "rule:regular");
    assert_eq!(entry.badge_id, "regular");
    assert_eq!(entry.action, BadgeAction::Earned);
    assert_eq!(entry.ts, at(30));
    assert_eq!(entry.source, BadgeSource::Rule);
    assert_eq!(entry.reason.as_deref(), Some("3 checkin events"));
    // Two check-ins (and any number of other events) are not enough.
    assert_eq!(earned_at(&badge, &activity[..3]), None);
    assert_eq!(earned_at(&badge, &[event("v1", "view", 1), event("v2", "view", 2), event("v3", "view", 3)]), None);
}

#[test]
fn records_at_the_same_time_count_together() {
    let badge = ruled("regular", checkins(3), 0);
    let activity = [event("b", "checkin", 20), event("c", "checkin", 10), event("a", "checkin", 20)];
    assert_eq!(earned_at(&badge, &activity), Some(20));
}

#[test]
fn an_order_count_rule_counts_each_order_once() {
    let activity = [
        order("r1", "o1", "PLACED", 100, USD, 10),
        order("r2", "o1", "PAID", 100, USD, 20),
        order("r3", "o1", "DELIVERED", 100, USD, 25),
        order("r4", "o2", "CREATED", 100, USD, 22),
        order("r5", "o2", "CANCELLED", 100, USD, 28),
        order("r6", "o3", "PAID", 100, USD, 30),
        order("r7", "o4", "REFUNDED", 100, USD, 33),
        order("r8", "o5", "DELIVERED", 100, USD, 40),
    ];
    // Counted: o1 at 10, o3 at 30, o5 at 40 (o2 and o4 never reach a counted status).
    assert_eq!(earned_at(&ruled("o", RuleKind::OrderCount { count: 1 }, 0), &activity), Some(10));
    assert_eq!(earned_at(&ruled("o", RuleKind::OrderCount { count: 2 }, 0), &activity), Some(30));
    let three = earn(&ruled("o", RuleKind::OrderCount { count: 3 }, 0), &activity).expect("earned");
    assert_eq!((three.ts, three.reason.as_deref()), (at(40), Some("3 orders")));
    assert_eq!(earned_at(&ruled("o", RuleKind::OrderCount { count: 4 }, 0), &activity), None);
}

#[test]
fn a_spend_rule_sums_each_order_at_its_earliest_counted_record() {
    let activity = [
        order("r1", "o1", "PLACED", 100, USD, 10),
        order("r2", "o1", "PAID", 999, USD, 20),
        order("r3", "o2", "PAID", 100, USD, 30),
        order("r4", "o3", "PAID", 100, "EUR", 35),
        order("r5", "o4", "DELIVERED", 50, USD, 40),
        order("r6", "o5", "REFUNDED", 500, USD, 45),
    ];
    // 100 at 10, 200 at 30, 250 at 40: o1's PAID 999 and the EUR and REFUNDED records never count.
    let badge = ruled("big", RuleKind::Spend { amount_minor: 250 }, 0);
    let entry = earn(&badge, &activity).expect("earned");
    assert_eq!(entry.ts, at(40));
    assert_eq!(entry.reason.as_deref(), Some("spent 2.50 USD of 2.50 USD"));
    assert_eq!(earned_at(&ruled("big", RuleKind::Spend { amount_minor: 200 }, 0), &activity), Some(30));
    assert_eq!(earned_at(&ruled("big", RuleKind::Spend { amount_minor: 251 }, 0), &activity), None);
    let case = badges::trophy_case(&[ruled("big", RuleKind::Spend { amount_minor: 1000 }, 0)], USD, &[], &activity, at(100));
    assert_eq!(case.locked[0].progress, Some(Progress { current: 250, target: 1000 }));
}

#[test]
fn a_late_placed_record_replaces_the_paid_one_an_order_was_counted_at() {
    let paid = order("r2", "o1", "PAID", 300, USD, 50);
    let spend = ruled("big", RuleKind::Spend { amount_minor: 250 }, 0);
    let first = ruled("first", RuleKind::OrderCount { count: 1 }, 0);
    assert_eq!(earned_at(&spend, std::slice::from_ref(&paid)), Some(50));
    assert_eq!(earned_at(&first, std::slice::from_ref(&paid)), Some(50));
    // The order's PLACED record, earlier and for less, arrives late: the order now counts
    // at 20 for 100, so the spend is no longer met and the first order is earlier.
    let activity = vec![paid, order("r1", "o1", "PLACED", 100, USD, 20)];
    assert_eq!(earned_at(&spend, &activity), None);
    assert_eq!(earned_at(&first, &activity), Some(20));
    let activity = [activity, vec![order("r3", "o2", "PAID", 150, USD, 60)]].concat();
    assert_eq!(earned_at(&spend, &activity), Some(60));
    // Equal times: the smaller event_id is the earliest record.
    let tie = [order("b", "o1", "PAID", 300, USD, 20), order("a", "o1", "PLACED", 100, USD, 20)];
    assert_eq!(earned_at(&spend, &tie), None);
    let tie = [order("a", "o1", "PAID", 300, USD, 20), order("b", "o1", "PLACED", 100, USD, 20)];
    assert_eq!(earned_at(&spend, &tie), Some(20));
}

#[test]
fn orders_in_other_currencies_are_ignored() {
    let count = ruled("o", RuleKind::OrderCount { count: 1 }, 0);
    assert_eq!(earned_at(&count, &[order("r1", "o1", "PAID", 100, "EUR", 10)]), None);
    // An order first placed in EUR and paid in USD counts at its USD record.
    let activity = [order("r1", "o1", "PLACED", 100, "EUR", 10), order("r2", "o1", "PAID", 120, USD, 20)];
    assert_eq!(earned_at(&count, &activity), Some(20));
    let spend = ruled("s", RuleKind::Spend { amount_minor: 120 }, 0);
    assert_eq!(earned_at(&spend, &activity), Some(20));
    let case = badges::trophy_case(&[ruled("s", RuleKind::Spend { amount_minor: 500 }, 0)], "EUR", &[], &activity, at(100));
    assert_eq!(case.locked[0].progress, Some(Progress { current: 100, target: 500 }));
}

#[test]
fn a_period_counts_only_records_within_it_both_ends_included() {
    let activity = [event("e1", "checkin", 0), event("e2", "checkin", 5), event("e3", "checkin", 20), event("e4", "checkin", 25), event("e5", "checkin", 30)];
    // Windows of 10 s: at 5 {0,5}, at 20 {20}, at 25 {20,25}, at 30 {20,25,30}.
    let badge = with_period(ruled("streak", checkins(3), -100), 10);
    assert_eq!(earned_at(&badge, &activity), Some(30));
    // Without the period the third check-in (at 20) earns.
    assert_eq!(earned_at(&ruled("streak", checkins(3), -100), &activity), Some(20));
    // `t - period_ms <= ts`: a record exactly period_ms before counts, one ms more does not.
    let edge = [event("e1", "checkin", 0), event("e2", "checkin", 5), event("e3", "checkin", 10)];
    assert_eq!(earned_at(&with_period(ruled("streak", checkins(3), -100), 10), &edge), Some(10));
    let mut just_short = with_period(ruled("streak", checkins(3), -100), 10);
    just_short.rule.as_mut().unwrap().period_ms = Some(10_000 - 1);
    assert_eq!(earned_at(&just_short, &edge), None);
    // Spend within a period: 100 at 0 drops out before 150 at 20 arrives.
    let orders = [order("r1", "o1", "PAID", 100, USD, 0), order("r2", "o2", "PAID", 150, USD, 20), order("r3", "o3", "PAID", 100, USD, 25)];
    let spend = with_period(ruled("s", RuleKind::Spend { amount_minor: 250 }, -100), 10);
    let entry = earn(&spend, &orders).expect("earned");
    assert_eq!(entry.ts, at(25));
    assert_eq!(entry.reason.as_deref(), Some("spent 2.50 USD of 2.50 USD"));
}

#[test]
fn a_late_earlier_record_moves_the_earn_earlier_and_it_is_never_twice() {
    let badge = ruled("regular", checkins(3), 0);
    let mut activity = vec![event("e1", "checkin", 10), event("e2", "checkin", 20), event("e3", "checkin", 50)];
    assert_eq!(earned_at(&badge, &activity), Some(50));
    activity.push(event("e0", "checkin", 15));
    assert_eq!(earned_at(&badge, &activity), Some(20));
    activity.extend([event("e4", "checkin", 60), event("e5", "checkin", 70), event("e6", "checkin", 80)]);
    assert_eq!(earned_at(&badge, &activity), Some(20));
    // A count of 1 met by every record still earns once, at the first.
    assert_eq!(earned_at(&ruled("first", checkins(1), 0), &activity), Some(10));
}

#[test]
fn without_retro_only_records_from_the_save_on_count() {
    let activity = [event("e1", "checkin", 10), event("e2", "checkin", 20), event("e3", "checkin", 40), event("e4", "checkin", 50), event("e5", "checkin", 60)];
    let plain = ruled("regular", checkins(3), 30);
    let entry = earn(&plain, &activity).expect("earned");
    assert_eq!((entry.ts, entry.source), (at(60), BadgeSource::Rule));
    // A record exactly at the save counts.
    let at_save = [event("e1", "checkin", 30), event("e2", "checkin", 40), event("e3", "checkin", 50)];
    assert_eq!(earned_at(&plain, &at_save), Some(50));
    // Progress too starts at the save.
    let case = badges::trophy_case(&[ruled("regular", checkins(5), 30)], USD, &[], &activity, at(100));
    assert_eq!(case.locked[0].progress, Some(Progress { current: 3, target: 5 }));
}

#[test]
fn with_retro_all_records_count_and_an_earn_before_the_save_is_a_retro_earn() {
    let activity = [event("e1", "checkin", 10), event("e2", "checkin", 20), event("e3", "checkin", 40), event("e4", "checkin", 50), event("e5", "checkin", 60)];
    let mut retro = ruled("regular", checkins(3), 30);
    retro.retro = true;
    let entry = earn(&retro, &activity).expect("earned");
    assert_eq!((entry.ts, entry.source), (at(40), BadgeSource::Rule));
    let mut early = ruled("regular", checkins(2), 30);
    early.retro = true;
    let entry = earn(&early, &activity).expect("earned");
    assert_eq!((entry.ts, entry.source), (at(20), BadgeSource::RetroEarn));
    // An earn exactly at the save is not before it.
    let at_save = [event("e1", "checkin", 10), event("e2", "checkin", 30)];
    let entry = earn(&early, &at_save).expect("earned");
    assert_eq!((entry.ts, entry.source), (at(30), BadgeSource::Rule));
    let case = badges::trophy_case(&[BadgeDefinition { rule: Some(BadgeRule { kind: checkins(9), period_ms: None }), ..retro }], USD, &[], &activity, at(100));
    assert_eq!(case.locked[0].progress, Some(Progress { current: 5, target: 9 }));
}

#[test]
fn an_inactive_badge_issues_no_new_rule_earn_and_holders_keep_it() {
    let mut book = BadgeBook::empty("t");
    book.save(ruled("early", checkins(1), 0), at(0)).unwrap();
    book.save(ruled("late", checkins(3), 0), at(0)).unwrap();
    book.set_active("early", false, at(25)).unwrap();
    book.set_active("late", false, at(25)).unwrap();
    let activity = [event("e1", "checkin", 10), event("e2", "checkin", 20), event("e3", "checkin", 30)];
    let entries = badges::timeline(&book.badges, USD, &[], &activity, at(100));
    // "early" was earned at 10, before it was deactivated; "late" would be earned at 30.
    assert_eq!(ids(&entries), vec![("rule:early", at(10))]);
    let case = badges::trophy_case(&book.badges, USD, &entries, &activity, at(100));
    assert_eq!(case.held.iter().map(|h| h.badge_id.as_str()).collect::<Vec<_>>(), ["early"]);
    assert!(case.locked.is_empty(), "inactive badges are not locked: {:?}", case.locked);
    // Reactivated, its rule issues again.
    book.set_active("late", true, at(200)).unwrap();
    let entries = badges::timeline(&book.badges, USD, &[], &activity, at(300));
    assert_eq!(ids(&entries), vec![("rule:late", at(30)), ("rule:early", at(10))]);
}

// ---- badge events, the timeline and expiry ------------------------------------------

#[test]
fn the_timeline_is_newest_first_by_ts_then_event_id() {
    let mut badge = ruled("regular", checkins(1), 0);
    badge.validity_ms = Some(5_000);
    let events = [
        stored("a", "gold", BadgeAction::Earned, 20, BadgeSource::Api),
        stored("s", "gold", BadgeAction::Revoked, 20, BadgeSource::Api),
        stored("z", "vip", BadgeAction::Earned, 10, BadgeSource::Migration),
    ];
    let entries = badges::timeline(std::slice::from_ref(&badge), USD, &events, &[event("e1", "checkin", 15)], at(100));
    assert_eq!(
        ids(&entries),
        vec![("s", at(20)), ("expiry:rule:regular", at(20)), ("a", at(20)), ("rule:regular", at(15)), ("z", at(10))]
    );
}

#[test]
fn revoking_then_issuing_again_is_replayed_in_order() {
    let events = [
        stored("s1", "gold", BadgeAction::Earned, 10, BadgeSource::Api),
        stored("s2", "gold", BadgeAction::Revoked, 20, BadgeSource::Api),
        stored("s3", "gold", BadgeAction::Earned, 30, BadgeSource::DirectIssue),
    ];
    let entries = badges::timeline(&[], USD, &events, &[], at(100));
    let held = |now: i64| {
        badges::held_now(&[], &entries, at(now)).into_iter().map(|h| (h.badge_id, (h.earned_at - T0) / 1000)).collect::<Vec<_>>()
    };
    assert_eq!(held(5), vec![]);
    assert_eq!(held(10), vec![("gold".to_owned(), 10)]);
    assert_eq!(held(15), vec![("gold".to_owned(), 10)]);
    assert_eq!(held(20), vec![]);
    assert_eq!(held(25), vec![]);
    assert_eq!(held(30), vec![("gold".to_owned(), 30)]);
    assert_eq!(held(100), vec![("gold".to_owned(), 30)]);
    // A stored EXPIRED releases it like REVOKED.
    let events = [stored("s1", "gold", BadgeAction::Earned, 10, BadgeSource::Api), stored("s2", "gold", BadgeAction::Expired, 20, BadgeSource::Api)];
    let entries = badges::timeline(&[], USD, &events, &[], at(100));
    assert!(badges::held_now(&[], &entries, at(30)).is_empty());
    // A revoke of a rule earn: the rule does not earn it again.
    let badge = ruled("regular", checkins(1), 0);
    let activity = [event("e1", "checkin", 10), event("e2", "checkin", 30)];
    let revoke = [stored("s1", "regular", BadgeAction::Revoked, 20, BadgeSource::Api)];
    let entries = badges::timeline(std::slice::from_ref(&badge), USD, &revoke, &activity, at(100));
    assert_eq!(ids(&entries), vec![("s1", at(20)), ("rule:regular", at(10))]);
    assert!(badges::held_now(&[badge], &entries, at(100)).is_empty());
}

#[test]
fn equal_times_replay_by_event_id() {
    let earned_then_revoked = [stored("a", "gold", BadgeAction::Earned, 10, BadgeSource::Api), stored("b", "gold", BadgeAction::Revoked, 10, BadgeSource::Api)];
    let entries = badges::timeline(&[], USD, &earned_then_revoked, &[], at(100));
    assert!(badges::held_now(&[], &entries, at(10)).is_empty());
    let revoked_then_earned = [stored("b", "gold", BadgeAction::Earned, 10, BadgeSource::Api), stored("a", "gold", BadgeAction::Revoked, 10, BadgeSource::Api)];
    let entries = badges::timeline(&[], USD, &revoked_then_earned, &[], at(100));
    assert_eq!(badges::held_now(&[], &entries, at(10)).len(), 1);
}

#[test]
fn entries_after_now_do_not_count_for_holding() {
    let events = [stored("s1", "gold", BadgeAction::Earned, 10, BadgeSource::Api), stored("s2", "gold", BadgeAction::Revoked, 50, BadgeSource::Api)];
    let entries = badges::timeline(&[], USD, &events, &[], at(40));
    assert_eq!(badges::held_now(&[], &entries, at(40)).len(), 1);
    assert!(badges::held_now(&[], &entries, at(50)).is_empty());
}

#[test]
fn validity_expires_an_earn_and_the_expiry_is_listed_once_passed() {
    let mut gold = BadgeDefinition::new("gold", "Gold");
    gold.validity_ms = Some(100_000);
    let events = [stored("s1", "gold", BadgeAction::Earned, 10, BadgeSource::BulkImport)];
    let before = badges::timeline(std::slice::from_ref(&gold), USD, &events, &[], at(109));
    assert_eq!(ids(&before), vec![("s1", at(10))]);
    let held = badges::held_now(std::slice::from_ref(&gold), &before, at(109));
    assert_eq!((held[0].earned_at, held[0].expires_at), (at(10), Some(at(110))));
    let after = badges::timeline(std::slice::from_ref(&gold), USD, &events, &[], at(110));
    assert_eq!(ids(&after), vec![("expiry:s1", at(110)), ("s1", at(10))]);
    let expiry = &after[0];
    assert_eq!((expiry.action, expiry.badge_id.as_str(), expiry.source), (BadgeAction::Expired, "gold", BadgeSource::BulkImport));
    assert_eq!(expiry.reason.as_deref(), Some("validity ended"));
    assert!(badges::held_now(std::slice::from_ref(&gold), &after, at(110)).is_empty());
    // Issued again after the expiry: held again, with its own expiry.
    let again = [events[0].clone(), stored("s2", "gold", BadgeAction::Earned, 150, BadgeSource::Api)];
    let entries = badges::timeline(std::slice::from_ref(&gold), USD, &again, &[], at(200));
    assert_eq!(ids(&entries), vec![("s2", at(150)), ("expiry:s1", at(110)), ("s1", at(10))]);
    let held = badges::held_now(std::slice::from_ref(&gold), &entries, at(200));
    assert_eq!((held[0].earned_at, held[0].expires_at), (at(150), Some(at(250))));
    // A badge without a definition never expires by itself.
    let entries = badges::timeline(&[], USD, &events, &[], at(1_000));
    assert_eq!(ids(&entries), vec![("s1", at(10))]);
}

#[test]
fn expires_at_ends_a_badge_for_every_holder() {
    let mut season = ruled("season", checkins(1), 0);
    season.expires_at = Some(at(60));
    let activity = [event("e1", "checkin", 10)];
    let events = [stored("s1", "season", BadgeAction::Earned, 20, BadgeSource::Api)];
    let before = badges::timeline(std::slice::from_ref(&season), USD, &events, &activity, at(59));
    assert_eq!(ids(&before), vec![("s1", at(20)), ("rule:season", at(10))]);
    let case = badges::trophy_case(std::slice::from_ref(&season), USD, &before, &activity, at(59));
    assert_eq!((case.held[0].earned_at, case.held[0].expires_at), (at(20), Some(at(60))));
    let after = badges::timeline(std::slice::from_ref(&season), USD, &events, &activity, at(60));
    // The rule's earn was followed by s1 before it expired: only s1 expires.
    assert_eq!(ids(&after), vec![("expiry:s1", at(60)), ("s1", at(20)), ("rule:season", at(10))]);
    assert_eq!(after[0].source, BadgeSource::Api);
    let case = badges::trophy_case(std::slice::from_ref(&season), USD, &after, &activity, at(60));
    assert!(case.held.is_empty());
    assert_eq!(case.locked[0].badge_id, "season");
    // With a validity too, the earlier end wins.
    season.validity_ms = Some(30_000);
    let entries = badges::timeline(std::slice::from_ref(&season), USD, &events, &activity, at(100));
    assert_eq!(ids(&entries), vec![("expiry:s1", at(50)), ("s1", at(20)), ("rule:season", at(10))]);
}

#[test]
fn an_old_earns_expiry_never_ends_a_newer_earn() {
    let mut gold = BadgeDefinition::new("gold", "Gold");
    gold.validity_ms = Some(100_000);
    let events = [
        stored("s1", "gold", BadgeAction::Earned, 10, BadgeSource::Api),
        stored("s2", "gold", BadgeAction::Revoked, 20, BadgeSource::Api),
        stored("s3", "gold", BadgeAction::Earned, 30, BadgeSource::Api),
    ];
    let entries = badges::timeline(std::slice::from_ref(&gold), USD, &events, &[], at(115));
    // s1 was revoked before it would have expired at 110: no expiry of its own.
    assert_eq!(ids(&entries), vec![("s3", at(30)), ("s2", at(20)), ("s1", at(10))]);
    let held = badges::held_now(std::slice::from_ref(&gold), &entries, at(115));
    assert_eq!((held[0].earned_at, held[0].expires_at), (at(30), Some(at(130))));
    let later = badges::timeline(std::slice::from_ref(&gold), USD, &events, &[], at(130));
    assert_eq!(ids(&later)[0], ("expiry:s3", at(130)));
    assert!(badges::held_now(std::slice::from_ref(&gold), &later, at(130)).is_empty());
}

// ---- the trophy case ----------------------------------------------------------------

#[test]
fn the_trophy_case_orders_by_rank_then_id() {
    let mut defs = Vec::new();
    for (id, rank) in [("x", 2), ("y", 1), ("z", 1), ("v", 5), ("u", 1)] {
        let mut badge = BadgeDefinition::new(id, &format!("Badge {id}"));
        badge.rank = rank;
        badge.criteria = format!("do {id}");
        defs.push(badge);
    }
    defs[4].active = false; // "u": neither held nor locked
    defs[1].rule = Some(BadgeRule { kind: checkins(5), period_ms: None }); // "y"
    let events = [
        stored("s1", "x", BadgeAction::Earned, 10, BadgeSource::Api),
        stored("s2", "z", BadgeAction::Earned, 20, BadgeSource::Api),
        stored("s3", "legacy", BadgeAction::Earned, 5, BadgeSource::Migration),
    ];
    let activity = [event("e1", "checkin", 1), event("e2", "checkin", 2), event("e3", "checkin", 3), event("e4", "view", 4)];
    let entries = badges::timeline(&defs, USD, &events, &activity, at(100));
    let case: TrophyCase = badges::trophy_case(&defs, USD, &entries, &activity, at(100));
    let held: Vec<(&str, &str, i64, Millis)> = case.held.iter().map(|h| (h.badge_id.as_str(), h.name.as_str(), h.rank, h.earned_at)).collect();
    assert_eq!(held, vec![("z", "Badge z", 1, at(20)), ("x", "Badge x", 2, at(10)), ("legacy", "legacy", i64::MAX, at(5))]);
    assert!(case.held.iter().all(|h| h.expires_at.is_none()));
    let locked: Vec<(&str, i64, &str, Option<Progress>)> =
        case.locked.iter().map(|l| (l.badge_id.as_str(), l.rank, l.criteria.as_str(), l.progress)).collect();
    // "3 of 5 check-ins"; a badge without a rule has no progress.
    assert_eq!(locked, vec![("y", 1, "do y", Some(Progress { current: 3, target: 5 })), ("v", 5, "do v", None)]);
}

#[test]
fn progress_counts_what_the_rule_would_count_now() {
    let activity = [event("e1", "checkin", 10), event("e2", "checkin", 20), event("e3", "checkin", 30), event("e4", "checkin", 40), event("e5", "checkin", 90)];
    let progress = |badge: &BadgeDefinition, now: i64| {
        badges::trophy_case(std::slice::from_ref(badge), USD, &[], &activity, at(now)).locked[0].progress
    };
    let plain = ruled("ten", checkins(10), 0);
    assert_eq!(progress(&plain, 35), Some(Progress { current: 3, target: 10 }), "records after now do not count");
    assert_eq!(progress(&plain, 100), Some(Progress { current: 5, target: 10 }));
    // Within period_ms before now, both ends included.
    let weekly = with_period(ruled("ten", checkins(10), 0), 20);
    assert_eq!(progress(&weekly, 40), Some(Progress { current: 3, target: 10 }));
    assert_eq!(progress(&weekly, 41), Some(Progress { current: 2, target: 10 }));
    assert_eq!(progress(&weekly, 100), Some(Progress { current: 1, target: 10 }));
    let orders = [order("r1", "o1", "PAID", 100, USD, 10), order("r2", "o1", "DELIVERED", 100, USD, 20), order("r3", "o2", "PLACED", 70, USD, 30)];
    let case = badges::trophy_case(&[ruled("o", RuleKind::OrderCount { count: 5 }, 0)], USD, &[], &orders, at(100));
    assert_eq!(case.locked[0].progress, Some(Progress { current: 2, target: 5 }));
}

// ---- definitions --------------------------------------------------------------------

#[test]
fn saving_a_badge_keeps_its_rule_and_the_time_it_was_saved() {
    let mut book = BadgeBook::empty("t");
    let mut badge = BadgeDefinition::new("regular", "Regular");
    badge.rule = Some(BadgeRule { kind: checkins(5), period_ms: Some(86_400_000) });
    badge.rule_saved_at = Some(at(-999)); // not the caller's to set
    assert_eq!(book.save(badge.clone(), at(10)), Ok(BadgeSaved::Created));
    assert_eq!(book.get("regular").unwrap().rule_saved_at, Some(at(10)));
    assert_eq!(book.get("regular").unwrap().inactive_since, None);

    // Text, icon, rank, benefits, validity and expiry may change; the save time stays.
    let mut update = badge.clone();
    update.name = "Regular guest".into();
    update.description = "Comes back".into();
    update.criteria = "5 check-ins a day".into();
    update.icon_url = "https://example.com/r.png".into();
    update.rank = 7;
    update.benefits = vec!["priority line".into()];
    update.validity_ms = Some(1000);
    update.expires_at = Some(at(5000));
    update.rule_saved_at = None;
    assert_eq!(book.save(update.clone(), at(20)), Ok(BadgeSaved::Updated));
    let saved = book.get("regular").unwrap();
    assert_eq!(saved.name, "Regular guest");
    assert_eq!((saved.rank, saved.validity_ms, saved.expires_at), (7, Some(1000), Some(at(5000))));
    assert_eq!(saved.rule_saved_at, Some(at(10)));
    assert_eq!(book.badges.len(), 1);
    // The same rule again is an update.
    assert_eq!(book.save(update.clone(), at(30)), Ok(BadgeSaved::Updated));
    assert_eq!(book.get("regular").unwrap().rule_saved_at, Some(at(10)));

    // Any change to the rule, retro included, is refused, and changes nothing.
    let before = book.clone();
    let changes: [fn(&mut BadgeDefinition); 7] = [
        |b| b.rule.as_mut().unwrap().kind = checkins(6),
        |b| b.rule.as_mut().unwrap().kind = RuleKind::EventCount { event_name: "visit".into(), count: 5 },
        |b| b.rule.as_mut().unwrap().period_ms = None,
        |b| b.rule.as_mut().unwrap().period_ms = Some(1),
        |b| b.rule.as_mut().unwrap().kind = RuleKind::OrderCount { count: 5 },
        |b| b.rule = None,
        |b| b.retro = true,
    ];
    for change in changes {
        let mut changed = update.clone();
        change(&mut changed);
        assert_eq!(book.save(changed, at(40)), Err(BadgeError::RuleChanged("regular".into())));
    }
    assert_eq!(book, before);
}

#[test]
fn a_retro_rule_is_saved_as_retro() {
    let mut book = BadgeBook::empty("t");
    let mut badge = ruled("r", checkins(1), 0);
    badge.retro = true;
    book.save(badge.clone(), at(10)).unwrap();
    badge.retro = false;
    assert_eq!(book.save(badge, at(20)), Err(BadgeError::RuleChanged("r".into())));
    assert!(book.get("r").unwrap().retro);
}

#[test]
fn deactivating_and_reactivating_sets_and_clears_inactive_since() {
    let mut book = BadgeBook::empty("t");
    let mut draft = BadgeDefinition::new("draft", "Draft");
    draft.active = false;
    book.save(draft.clone(), at(5)).unwrap();
    // Created inactive: its rule never issued anything, not even retro earns.
    assert_eq!(book.get("draft").unwrap().inactive_since, Some(i64::MIN));
    book.save(BadgeDefinition::new("b", "B"), at(10)).unwrap();
    book.set_active("b", false, at(20)).unwrap();
    assert_eq!(book.get("b").unwrap().inactive_since, Some(at(20)));
    assert!(!book.get("b").unwrap().active);
    // Saving it inactive again keeps the first deactivation.
    let mut inactive = BadgeDefinition::new("b", "B renamed");
    inactive.active = false;
    book.save(inactive, at(30)).unwrap();
    assert_eq!(book.get("b").unwrap().inactive_since, Some(at(20)));
    assert_eq!(book.get("b").unwrap().name, "B renamed");
    book.set_active("b", true, at(40)).unwrap();
    assert_eq!(book.get("b").unwrap().inactive_since, None);
    assert!(book.get("b").unwrap().active);
    assert_eq!(book.set_active("nope", false, at(50)), Err(BadgeError::NotFound("nope".into())));
}

#[test]
fn invalid_definitions_are_refused() {
    let base = || ruled("ok", checkins(1), 0);
    let mut cases: Vec<BadgeDefinition> = Vec::new();
    for id in ["", "has space", "slash/", "é", &"x".repeat(65)] {
        cases.push(BadgeDefinition { id: id.to_owned(), ..base() });
    }
    cases.push(BadgeDefinition { name: "  ".into(), ..base() });
    cases.push(BadgeDefinition { validity_ms: Some(0), ..base() });
    cases.push(BadgeDefinition { validity_ms: Some(-5), ..base() });
    cases.push(with_period(base(), 0));
    cases.push(BadgeDefinition { rule: Some(BadgeRule { kind: checkins(0), period_ms: None }), ..base() });
    cases.push(BadgeDefinition { rule: Some(BadgeRule { kind: RuleKind::OrderCount { count: 0 }, period_ms: None }), ..base() });
    cases.push(BadgeDefinition { rule: Some(BadgeRule { kind: RuleKind::Spend { amount_minor: 0 }, period_ms: None }), ..base() });
    cases.push(BadgeDefinition { rule: Some(BadgeRule { kind: RuleKind::Spend { amount_minor: -1 }, period_ms: None }), ..base() });
    cases.push(BadgeDefinition { rule: Some(BadgeRule { kind: RuleKind::EventCount { event_name: String::new(), count: 1 }, period_ms: None }), ..base() });
    let mut book = BadgeBook::empty("t");
    for badge in cases {
        let result = book.save(badge.clone(), at(0));
        assert!(matches!(result, Err(BadgeError::Invalid(_))), "{badge:?}: {result:?}");
    }
    assert!(book.badges.is_empty());
    // The limits themselves pass.
    for id in ["a", "A-z_0.9", &"x".repeat(64)] {
        assert_eq!(book.save(BadgeDefinition { id: id.to_owned(), ..base() }, at(0)), Ok(BadgeSaved::Created), "{id}");
    }
}

#[test]
fn a_tenant_has_at_most_max_badges() {
    let mut book = BadgeBook::empty("t");
    for i in 0..MAX_BADGES {
        assert_eq!(book.save(BadgeDefinition::new(&format!("b{i}"), "B"), at(0)), Ok(BadgeSaved::Created));
    }
    assert_eq!(book.save(BadgeDefinition::new("one-more", "B"), at(1)), Err(BadgeError::TooMany));
    assert_eq!(book.badges.len(), MAX_BADGES);
    // Updating one of them is still fine.
    assert_eq!(book.save(BadgeDefinition::new("b7", "Renamed"), at(2)), Ok(BadgeSaved::Updated));
}

// ---- paging -------------------------------------------------------------------------

fn sample_timeline() -> Vec<TimelineEntry> {
    let events = [
        stored("a", "gold", BadgeAction::Earned, 10, BadgeSource::Api),
        stored("b", "silver", BadgeAction::Earned, 10, BadgeSource::Api),
        stored("c", "gold", BadgeAction::Revoked, 20, BadgeSource::Api),
        stored("d", "silver", BadgeAction::Revoked, 30, BadgeSource::Api),
        stored("e", "gold", BadgeAction::Earned, 40, BadgeSource::Api),
    ];
    badges::timeline(&[], USD, &events, &[], at(100))
}

#[test]
fn pages_follow_each_other_without_gaps_or_repeats() {
    let entries = sample_timeline();
    let all = TimelineFilter::default();
    let (first, next) = badges::page(&entries, &all, None, 2);
    assert_eq!(first.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["e", "d"]);
    let cursor = TimelineCursor::decode(&next.expect("more").encode()).expect("round trip");
    let (second, next) = badges::page(&entries, &all, Some(&cursor), 2);
    assert_eq!(second.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["c", "b"]);
    let (third, next) = badges::page(&entries, &all, next.as_ref(), 2);
    assert_eq!(third.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["a"]);
    assert_eq!(next, None);
    // A last page that is exactly full has no next cursor.
    let (_, next) = badges::page(&entries, &all, None, 5);
    assert_eq!(next, None);
}

#[test]
fn entries_added_between_pages_neither_repeat_nor_shift_a_page() {
    let entries = sample_timeline();
    let all = TimelineFilter::default();
    let (_, next) = badges::page(&entries, &all, None, 2);
    let mut grown = entries.clone();
    grown.extend(badges::timeline(&[], USD, &[stored("new", "gold", BadgeAction::Earned, 90, BadgeSource::Api), stored("old", "gold", BadgeAction::Earned, 5, BadgeSource::Api)], &[], at(100)));
    grown.sort_by(TimelineEntry::newest_first);
    let (page, _) = badges::page(&grown, &all, next.as_ref(), 10);
    assert_eq!(page.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["c", "b", "a", "old"]);
}

#[test]
fn a_filter_keeps_one_badge_within_from_inclusive_to_exclusive() {
    let entries = sample_timeline();
    let filter = TimelineFilter { badge_id: Some("gold".into()), from: Some(at(10)), to: Some(at(40)) };
    let (page, next) = badges::page(&entries, &filter, None, 10);
    assert_eq!(page.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["c", "a"]);
    assert_eq!(next, None);
    let filter = TimelineFilter { badge_id: None, from: Some(at(11)), to: Some(at(41)) };
    let (page, _) = badges::page(&entries, &filter, None, 10);
    assert_eq!(page.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["e", "d", "c"]);
}

#[test]
fn cursors_round_trip_and_garbage_is_refused() {
    for cursor in [
        TimelineCursor { ts: at(10), event_id: "e1".into() },
        TimelineCursor { ts: at(10), event_id: "expiry:rule:regular".into() },
        TimelineCursor { ts: -5, event_id: "x".into() },
        TimelineCursor { ts: 0, event_id: "é 日本".into() },
    ] {
        let text = cursor.encode();
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
        assert_eq!(TimelineCursor::decode(&text), Some(cursor));
    }
    let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for garbage in [
        String::new(),
        "abc".into(),
        "zz".into(),
        "g0".into(),
        "é1".into(),
        "ff".into(),      // not UTF-8
        hex("12345"),     // no separator
        hex("x:e1"),      // not a time
        hex(":e1"),       // no time
        hex("99999999999999999999:e1"), // not an i64
        "not a cursor at all".into(),
    ] {
        assert_eq!(TimelineCursor::decode(&garbage), None, "{garbage:?}");
    }
}
