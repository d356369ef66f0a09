//! `touchstone_core::badges` against the brute-force reference
//! (`touchstone_core::reference_badges`, written from docs/behaviour/badges.md apart from it).
//!
//! Random small customers: a few badge definitions (every rule kind, with and without a
//! period, retro or not, saved in the middle of the data, some inactive, some expiring by
//! validity and/or a fixed end), stored badge events of every action and source, app events
//! and order status records on a coarse time grid (so ties, period edges and expiry edges
//! are hit often), fed in shuffled order. Timeline and trophy case must equal the
//! reference's, and paging through the timeline must give exactly the filtered timeline.

use proptest::prelude::*;
use touchstone_core::badge_stats;
use touchstone_core::badges::{self, BadgeDefinition, BadgeRule, RuleKind, TimelineCursor, TimelineEntry, TimelineFilter};
use touchstone_core::model::{AppEvent, BadgeAction, BadgeEvent, BadgeSource, Millis, OrderRecord, Record, Touch, TouchKind};
use touchstone_core::reference_badges;

const TENANT: &str = "t1";
const CUSTOMER: &str = "c1";
const CURRENCY: &str = "USD";
/// 2026-01-01T00:00Z.
const T0: Millis = 1_767_225_600_000;
/// The grid step: every time is `T0 + slot * STEP`, sometimes 1 ms off.
const STEP: Millis = 10;
const BADGE_IDS: &[&str] = &["a", "b", "c", "d", "e"];

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

fn ts() -> impl Strategy<Value = Millis> {
    (0i64..30, prop_oneof![8 => Just(0i64), 1 => Just(1), 1 => Just(-1)]).prop_map(|(slot, off)| T0 + slot * STEP + off)
}

/// Event ids whose first letter is random, so that they sort before, between and after
/// `expiry:...` and `rule:...`; the number keeps them unique.
fn event_id(n: usize) -> impl Strategy<Value = String> {
    pick(&["a", "e", "f", "q", "r", "s", "z"]).prop_map(move |letter| format!("{letter}{n}"))
}

fn rule() -> BoxedStrategy<BadgeRule> {
    let kind = prop_oneof![
        (pick(&["checkin", "view"]), 1u64..4).prop_map(|(name, count)| RuleKind::EventCount { event_name: name.into(), count }),
        (1u64..4).prop_map(|count| RuleKind::OrderCount { count }),
        pick(&[1i64, 100, 150, 250, 400]).prop_map(|amount_minor| RuleKind::Spend { amount_minor }),
    ];
    let period = proptest::option::of(prop_oneof![Just(1), Just(STEP), Just(3 * STEP), Just(5 * STEP), Just(10 * STEP)]);
    (kind, period).prop_map(|(kind, period_ms)| BadgeRule { kind, period_ms }).boxed()
}

/// One definition as the book would hold it (`rule_saved_at` set iff there is a rule,
/// sometimes missing to mean "counts everything"; `inactive_since` iff inactive).
fn definition(id: &'static str) -> BoxedStrategy<BadgeDefinition> {
    (
        (0i64..3, proptest::option::of(rule()), any::<bool>(), prop::bool::weighted(0.25), ts(), prop::bool::weighted(0.9)),
        (ts(), proptest::option::of(pick(&[1i64, STEP, 4 * STEP, 10 * STEP])), proptest::option::of(ts())),
    )
        .prop_map(move |((rank, rule, retro, inactive, saved_at, saved_known), (inactive_since, validity_ms, expires_at))| {
            let mut badge = BadgeDefinition::new(id, &format!("Badge {id}"));
            badge.criteria = format!("criteria of {id}");
            badge.rank = rank;
            badge.retro = retro;
            badge.rule_saved_at = (rule.is_some() && saved_known).then_some(saved_at);
            badge.rule = rule;
            badge.active = !inactive;
            badge.inactive_since = inactive.then_some(inactive_since);
            badge.validity_ms = validity_ms;
            badge.expires_at = expires_at;
            badge
        })
        .boxed()
}

fn definitions() -> BoxedStrategy<Vec<BadgeDefinition>> {
    (definition("a"), definition("b"), definition("c"), definition("d"), definition("e"), 0usize..=5)
        .prop_map(|(a, b, c, d, e, n)| [a, b, c, d, e].into_iter().take(n).collect())
        .boxed()
}

fn stored(n: usize) -> BoxedStrategy<BadgeEvent> {
    let action = pick(&[BadgeAction::Earned, BadgeAction::Earned, BadgeAction::Revoked, BadgeAction::Expired]);
    let source = pick(BadgeSource::ALL);
    (event_id(n), pick(&["a", "b", "c", "e", "legacy"]), action, ts(), source, proptest::option::of(Just("support".to_owned())))
        .prop_map(|(event_id, badge_id, action, ts, source, reason)| BadgeEvent {
            tenant: TENANT.into(),
            event_id,
            customer_id: CUSTOMER.into(),
            badge_id: badge_id.into(),
            action,
            ts,
            source,
            reason,
        })
        .boxed()
}

fn app_event(n: usize) -> BoxedStrategy<Record> {
    (event_id(n), pick(&["checkin", "checkin", "view", "other"]), ts()).prop_map(|(event_id, name, ts)| {
        Record::Event(AppEvent {
            tenant: TENANT.into(),
            event_id,
            customer_id: CUSTOMER.into(),
            name: name.into(),
            ts,
            value_micros: None,
            msg_hash: None,
        })
    })
    .boxed()
}

fn order(n: usize) -> BoxedStrategy<Record> {
    (
        event_id(n),
        pick(&["o1", "o2", "o3", "o4"]),
        pick(&["CREATED", "PLACED", "PAID", "PAID", "DELIVERED", "CANCELLED", "REFUNDED"]),
        pick(&[0i64, 50, 100, 150, 300]),
        pick(&["USD", "USD", "USD", "EUR"]),
        ts(),
    )
        .prop_map(|(event_id, order_id, status, amount_minor, currency, ts)| {
            Record::Order(OrderRecord {
                tenant: TENANT.into(),
                event_id,
                order_id: order_id.into(),
                customer_id: CUSTOMER.into(),
                status: status.into(),
                amount_minor,
                currency: currency.into(),
                categories: vec![],
                channel: "app".into(),
                ts,
                msg_hash: None,
            })
        })
        .boxed()
}

fn touch(n: usize) -> BoxedStrategy<Record> {
    (event_id(n), ts()).prop_map(|(event_id, ts)| {
        Record::Touch(Touch { tenant: TENANT.into(), event_id, msg_hash: "m1".into(), customer_id: CUSTOMER.into(), kind: TouchKind::Opened, ts })
    })
    .boxed()
}

/// `n` of a kind of record, numbered from `first` so that event ids stay unique.
fn many<T: std::fmt::Debug + Clone + 'static>(first: usize, max: usize, one: fn(usize) -> BoxedStrategy<T>) -> BoxedStrategy<Vec<T>> {
    (0..=max).prop_flat_map(move |n| (first..first + n).map(one).collect::<Vec<_>>()).boxed()
}

#[derive(Debug, Clone)]
struct Customer {
    badges: Vec<BadgeDefinition>,
    stored: Vec<BadgeEvent>,
    activity: Vec<Record>,
    now: Millis,
}

fn customer() -> BoxedStrategy<Customer> {
    (definitions(), many(0, 8, stored), many(100, 12, app_event), many(200, 14, order), many(300, 2, touch), (0i64..40).prop_map(|slot| T0 + slot * STEP))
        .prop_flat_map(|(badges, stored, events, orders, touches, now)| {
            let activity: Vec<Record> = events.into_iter().chain(orders).chain(touches).collect();
            (Just(badges), Just(stored).prop_shuffle(), Just(activity).prop_shuffle(), Just(now))
        })
        .prop_map(|(badges, stored, activity, now)| Customer { badges, stored, activity, now })
        .boxed()
}

fn filter() -> impl Strategy<Value = TimelineFilter> {
    (proptest::option::of(pick(&["a", "b", "legacy", "none"])), proptest::option::of(ts()), proptest::option::of(ts())).prop_map(
        |(badge_id, from, to)| TimelineFilter { badge_id: badge_id.map(str::to_owned), from, to },
    )
}

/// Each badge's newest entry with `ts <= at`, as `BadgeStore::customer_badge_latest`
/// returns a partition's.
fn latest_per_badge(timeline: &[TimelineEntry], at: Millis) -> Vec<TimelineEntry> {
    let mut newest_first: Vec<&TimelineEntry> = timeline.iter().filter(|entry| entry.ts <= at).collect();
    newest_first.sort_by(|a, b| TimelineEntry::newest_first(a, b));
    let mut latest: Vec<TimelineEntry> = Vec::new();
    for entry in newest_first {
        if !latest.iter().any(|kept| kept.badge_id == entry.badge_id) {
            latest.push(entry.clone());
        }
    }
    latest
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn timeline_and_trophy_case_match_the_reference(c in customer()) {
        let expected = reference_badges::timeline(&c.badges, CURRENCY, &c.stored, &c.activity, c.now);
        let actual = badges::timeline(&c.badges, CURRENCY, &c.stored, &c.activity, c.now);
        prop_assert_eq!(&actual, &expected);

        let expected_case = reference_badges::trophy_case(&c.badges, CURRENCY, &c.stored, &c.activity, c.now);
        let actual_case = badges::trophy_case(&c.badges, CURRENCY, &actual, &c.activity, c.now);
        prop_assert_eq!(actual_case, expected_case);

        // The same at every other time the data could be read.
        for slot in [0i64, 5, 15, 25, 45] {
            let now = T0 + slot * STEP;
            let expected = reference_badges::timeline(&c.badges, CURRENCY, &c.stored, &c.activity, now);
            let actual = badges::timeline(&c.badges, CURRENCY, &c.stored, &c.activity, now);
            prop_assert_eq!(&actual, &expected, "now = T0 + {}", slot * STEP);
            let expected_case = reference_badges::trophy_case(&c.badges, CURRENCY, &c.stored, &c.activity, now);
            prop_assert_eq!(&badges::trophy_case(&c.badges, CURRENCY, &actual, &c.activity, now), &expected_case, "now = T0 + {}", slot * STEP);
            // The query reads only each badge's newest entry up to now
            // (`BadgeStore::customer_badge_latest`): the case must not change.
            let latest = latest_per_badge(&actual, now);
            prop_assert_eq!(badges::trophy_case(&c.badges, CURRENCY, &latest, &c.activity, now), expected_case, "latest, now = T0 + {}", slot * STEP);
        }
        // A rule earns at most once, and only badges the tenant defines.
        for id in BADGE_IDS {
            let rule_earns = actual.iter().filter(|e| e.event_id == format!("rule:{id}")).count();
            prop_assert!(rule_earns <= 1);
        }
    }

    /// The holding intervals analytics count (`badge_stats::holdings`, over every entry
    /// whatever the time) hold a badge at exactly the times the reference's trophy case
    /// does.
    #[test]
    fn holding_intervals_hold_when_the_reference_holds(c in customer()) {
        let everything = badges::timeline(&c.badges, CURRENCY, &c.stored, &c.activity, Millis::MAX);
        let holdings = badge_stats::holdings(&c.badges, &everything);
        for slot in -1i64..45 {
            for off in [0, 1, -1] {
                let at = T0 + slot * STEP + off;
                let case = reference_badges::trophy_case(&c.badges, CURRENCY, &c.stored, &c.activity, at);
                let held: Vec<&str> = case.held.iter().map(|h| h.badge_id.as_str()).collect();
                let by_intervals: Vec<&str> = holdings
                    .iter()
                    .filter(|(_, intervals)| intervals.iter().any(|&(start, end)| start <= at && at < end))
                    .map(|(badge_id, _)| badge_id.as_str())
                    .collect();
                let mut held_sorted = held.clone();
                held_sorted.sort_unstable();
                prop_assert_eq!(by_intervals, held_sorted, "at T0 + {}", at - T0);
            }
        }
    }

    #[test]
    fn paging_yields_the_filtered_timeline_exactly(c in customer(), f in filter(), sizes in prop::collection::vec(0usize..5, 1..8)) {
        let entries = badges::timeline(&c.badges, CURRENCY, &c.stored, &c.activity, c.now);
        let expected = reference_badges::filtered(&entries, f.badge_id.as_deref(), f.from, f.to);
        let mut walked: Vec<TimelineEntry> = Vec::new();
        let mut cursor: Option<TimelineCursor> = None;
        for call in 0.. {
            prop_assert!(call <= entries.len() + 1, "paging does not end");
            let size = sizes[call % sizes.len()];
            let (page, next) = badges::page(&entries, &f, cursor.as_ref(), size);
            prop_assert!(page.len() <= size.max(1));
            walked.extend(page.into_iter().cloned());
            let Some(next) = next else { break };
            let text = next.encode();
            prop_assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "cursor {} is not opaque hex", text);
            let decoded = TimelineCursor::decode(&text);
            prop_assert_eq!(decoded.as_ref(), Some(&next));
            cursor = decoded;
        }
        prop_assert_eq!(walked, expected);
    }
}

/// The generator is only worth something if it reaches the cases that matter: rule earns of
/// each kind and source, earns within a period, derived expiries, badges held and locked
/// with partial progress, earns withheld from an inactive badge.
#[test]
fn the_generator_reaches_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;

    let mut runner = TestRunner::deterministic();
    let strategy = customer();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..2000 {
        let c = strategy.new_tree(&mut runner).expect("a customer").current();
        let entries = badges::timeline(&c.badges, CURRENCY, &c.stored, &c.activity, c.now);
        let case = badges::trophy_case(&c.badges, CURRENCY, &entries, &c.activity, c.now);
        let mut see = |what: &'static str, yes: bool| *seen.entry(what).or_default() += usize::from(yes);
        for entry in &entries {
            see("rule earn", entry.event_id.starts_with("rule:") && entry.source == BadgeSource::Rule);
            see("retro earn", entry.event_id.starts_with("rule:") && entry.source == BadgeSource::RetroEarn);
            see("expiry of a rule earn", entry.event_id.starts_with("expiry:rule:"));
            see("expiry of a stored earn", entry.event_id.starts_with("expiry:") && !entry.event_id.starts_with("expiry:rule:"));
        }
        for badge in &c.badges {
            let Some(rule) = &badge.rule else { continue };
            let earned = entries.iter().any(|e| e.event_id == format!("rule:{}", badge.id));
            let kind = match rule.kind {
                RuleKind::EventCount { .. } => "EVENT_COUNT",
                RuleKind::OrderCount { .. } => "ORDER_COUNT",
                RuleKind::Spend { .. } => "SPEND",
            };
            see(kind, earned);
            see("earn within a period", earned && rule.period_ms.is_some());
            see("earn of an inactive badge", earned && !badge.active);
            let mut active = badge.clone();
            active.inactive_since = None;
            let would = badges::timeline(&[active], CURRENCY, &[], &c.activity, c.now).iter().any(|e| e.event_id.starts_with("rule:"));
            see("earn withheld while inactive", would && !earned);
        }
        see("held", !case.held.is_empty());
        see("held without a definition", case.held.iter().any(|h| h.badge_id == "legacy"));
        see("partial progress", case.locked.iter().any(|l| l.progress.is_some_and(|p| 0 < p.current && p.current < p.target)));
    }
    println!("{seen:#?}");
    for (what, count) in &seen {
        assert!(*count >= 20, "only {count} customers with {what}");
    }
}
