//! The built-in tenant profiles: three businesses with different attribution settings,
//! currencies, excluded tags, goals and vocabularies (campaigns, event names, order
//! categories and channels, badges). Larger scales reuse them under new tenant names.

use serde_json::{json, Map, Value};
use touchstone_core::badges::{BadgeDefinition, BadgeRule, RuleKind};
use touchstone_core::config::{Goal, GoalKind};
use touchstone_core::files::{badge_to_json, goal_to_json};
use touchstone_core::model::{Channel, Millis, TouchKind};

pub(crate) const MINUTE: Millis = 60_000;
pub(crate) const HOUR: Millis = 60 * MINUTE;
pub(crate) const DAY: Millis = 24 * HOUR;

/// How an app event's `value` is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValueKind {
    /// Never carries a value.
    None,
    /// Watch time in half seconds (fractional: 12.5).
    Seconds,
    /// A price with cents (19.99).
    Money,
    /// A whole star rating, 1 to 5.
    Rating,
    /// Workout minutes in quarter steps (42.25).
    Minutes,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct EventSpec {
    pub name: &'static str,
    /// Weight among events happening on their own.
    pub organic: u32,
    /// Weight among events that follow a message (what a campaign is meant to cause).
    pub journey: u32,
    pub value: ValueKind,
    /// Share of events of this name that carry their value (the rest leave it out).
    pub value_share: f64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Profile {
    pub name: &'static str,
    /// `None`: the config leaves the currency out and the tenant keeps the default (USD).
    pub currency: Option<&'static str>,
    pub foreign_currencies: &'static [&'static str],
    pub excluded_tags: &'static [&'static str],
    /// The channels the config lists; the others keep their defaults.
    pub settings: &'static [(Channel, TouchKind, Millis)],
    /// List the default `orders` goal explicitly (it must be identical to the default).
    pub list_default_goal: bool,
    pub goals: fn() -> Vec<Goal>,
    pub campaigns: &'static [&'static str],
    /// PUSH, EMAIL, SMS, IN_APP.
    pub channel_weights: [u32; 4],
    pub events: &'static [EventSpec],
    pub categories: &'static [&'static str],
    pub order_channels: &'static [(&'static str, u32)],
    /// Order amounts in minor units, before rounding to a .99 price.
    pub amount_minor: (i64, i64),
    /// Share of conversions (after a message, or organic) that are orders rather than events.
    pub order_share: f64,
    /// `order_id` prefix.
    pub order_prefix: &'static str,
    /// Badge id and the reason a rule gives when it is earned.
    pub badges: &'static [(&'static str, &'static str)],
    /// The badge definitions in `config.json`: every rule kind over the profiles, with and
    /// without a period, retro or not, expiring or not.
    pub badge_definitions: fn() -> Vec<BadgeDefinition>,
}

impl Profile {
    /// The tenant's `config.json` section.
    pub fn config_section(&self) -> Value {
        let settings: Map<String, Value> = self
            .settings
            .iter()
            .map(|(channel, connect_on, window_ms)| {
                (channel.as_str().to_owned(), json!({"connect_on": connect_on.as_str(), "window_ms": window_ms}))
            })
            .collect();
        let mut goals = Vec::new();
        if self.list_default_goal {
            goals.push(goal_to_json(&Goal::default_orders()));
        }
        goals.extend((self.goals)().iter().map(goal_to_json));
        let badges: Vec<Value> = (self.badge_definitions)().iter().map(badge_to_json).collect();
        let mut section = json!({
            "settings": settings,
            "excluded_tags": self.excluded_tags,
            "goals": goals,
            "badges": badges,
        });
        if let Some(currency) = self.currency {
            section["currency"] = json!(currency);
        }
        // The first campaign holds out a fifth of its audience: its lift can be measured.
        if let Some(first) = self.campaigns.first() {
            section["holdouts"] = json!({"default_bp": 0, "campaigns": {*first: HOLDOUT_BP}});
        }
        section
    }
}

/// The holdout share of each profile's first campaign, in basis points.
pub const HOLDOUT_BP: u32 = 2_000;

/// A badge definition; `rule` with `retro`, as `config.json` holds it.
fn badge(id: &str, name: &str, rank: i64, criteria: &str, rule: Option<(RuleKind, Option<Millis>)>, retro: bool) -> BadgeDefinition {
    BadgeDefinition {
        description: format!("{name}: {criteria}"),
        criteria: criteria.to_owned(),
        icon_url: format!("https://cdn.example.com/badges/{id}.png"),
        rank,
        benefits: vec![format!("{name} perks")],
        rule: rule.map(|(kind, period_ms)| BadgeRule { kind, period_ms }),
        retro,
        ..BadgeDefinition::new(id, name)
    }
}

fn event_goal(id: &str, event_name: &str) -> Goal {
    Goal { id: id.to_owned(), kind: GoalKind::Event { event_name: event_name.to_owned() } }
}

fn order_goal(id: &str, statuses: &[&str], categories: &[&str], order_channels: &[&str]) -> Goal {
    let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
    Goal {
        id: id.to_owned(),
        kind: GoalKind::Order {
            statuses: owned(statuses),
            categories: owned(categories),
            order_channels: owned(order_channels),
        },
    }
}

const fn event(name: &'static str, organic: u32, journey: u32, value: ValueKind, value_share: f64) -> EventSpec {
    EventSpec { name, organic, journey, value, value_share }
}

/// A web and app shop: USD, short in-app window, ORDER goals narrowed by category and channel.
const SHOP: Profile = Profile {
    name: "acme-shop",
    currency: Some("USD"),
    foreign_currencies: &["EUR", "GBP", "CAD"],
    excluded_tags: &["transactional"],
    settings: &[
        (Channel::Push, TouchKind::Opened, DAY),
        (Channel::Email, TouchKind::Clicked, 7 * DAY),
        (Channel::Sms, TouchKind::Clicked, 12 * HOUR),
        (Channel::InApp, TouchKind::Opened, 2 * HOUR),
    ],
    list_default_goal: false,
    goals: || {
        vec![
            order_goal("electronics_app", &["PAID", "DELIVERED"], &["electronics", "phones"], &["app"]),
            order_goal("apparel_placed", &["PLACED"], &["apparel", "shoes"], &["web", "pos"]),
            event_goal("add_to_cart", "add_to_cart"),
            event_goal("review", "review_posted"),
        ]
    },
    campaigns: &[
        "winter-sale-2026",
        "new-arrivals-jan",
        "cart-abandon",
        "loyalty-points",
        "valentines-2026",
        "flash-friday",
    ],
    channel_weights: [35, 35, 15, 15],
    events: &[
        event("app_open", 30, 10, ValueKind::None, 0.0),
        event("view_item", 30, 10, ValueKind::None, 0.0),
        event("search", 15, 2, ValueKind::None, 0.0),
        event("add_to_cart", 15, 20, ValueKind::Money, 0.9),
        event("review_posted", 3, 6, ValueKind::Rating, 0.5),
        event("wishlist_add", 7, 4, ValueKind::None, 0.0),
    ],
    categories: &["electronics", "phones", "apparel", "shoes", "home", "beauty", "toys"],
    order_channels: &[("web", 50), ("app", 35), ("pos", 15)],
    amount_minor: (500, 60_000),
    order_share: 0.45,
    order_prefix: "A",
    badges: &[
        ("first_order", "placed a first order"),
        ("big_spender", "spent over 500 USD in 30 days"),
        ("top_reviewer", "posted 5 reviews"),
    ],
    badge_definitions: || {
        let mut big_spender =
            badge("big_spender", "Big spender", 1, "spend 500 USD in 30 days", Some((RuleKind::Spend { amount_minor: 50_000 }, Some(30 * DAY))), true);
        big_spender.validity_ms = Some(90 * DAY);
        let mut launch = badge("launch_party", "Launch party", 4, "came to the spring launch", None, false);
        launch.expires_at = Some(1_775_001_600_000); // 2026-04-01
        vec![
            badge("first_order", "First order", 2, "place an order", Some((RuleKind::OrderCount { count: 1 }, None)), true),
            big_spender,
            badge(
                "top_reviewer",
                "Top reviewer",
                3,
                "post 5 reviews",
                Some((RuleKind::EventCount { event_name: "review_posted".into(), count: 5 }, None)),
                false,
            ),
            launch,
        ]
    },
};

/// A streaming service: EUR, SMS connects on delivery, the default goal listed explicitly,
/// an EVENT goal with fractional values (watch seconds).
const STREAM: Profile = Profile {
    name: "streamly",
    currency: Some("EUR"),
    foreign_currencies: &["USD", "GBP"],
    excluded_tags: &["transactional", "system"],
    settings: &[
        (Channel::Push, TouchKind::Opened, 6 * HOUR),
        (Channel::Email, TouchKind::Opened, 3 * DAY),
        (Channel::Sms, TouchKind::Delivered, 12 * HOUR),
        (Channel::InApp, TouchKind::Clicked, 30 * MINUTE),
    ],
    list_default_goal: true,
    goals: || {
        vec![
            event_goal("watch", "watch"),
            order_goal("subscribe", &["PAID"], &["subscription"], &["web", "app"]),
            event_goal("trial_start", "trial_start"),
        ]
    },
    campaigns: &["new-season-drop", "weekend-binge", "winback-30d", "annual-plan-offer", "kids-corner"],
    channel_weights: [40, 30, 10, 20],
    events: &[
        event("app_open", 25, 10, ValueKind::None, 0.0),
        event("watch", 40, 35, ValueKind::Seconds, 0.85),
        event("search", 15, 2, ValueKind::None, 0.0),
        event("trial_start", 5, 10, ValueKind::None, 0.0),
        event("rate_title", 15, 3, ValueKind::Rating, 1.0),
    ],
    categories: &["subscription", "rental", "purchase", "gift_card"],
    order_channels: &[("web", 55), ("app", 45)],
    amount_minor: (299, 12_000),
    order_share: 0.25,
    order_prefix: "S",
    badges: &[
        ("binge_watcher", "watched 10 hours in a week"),
        ("early_adopter", "watched a premiere on release day"),
        ("critic", "rated 20 titles"),
    ],
    badge_definitions: || {
        let mut binge = badge(
            "binge_watcher",
            "Binge watcher",
            1,
            "watch 12 titles in a week",
            Some((RuleKind::EventCount { event_name: "watch".into(), count: 12 }, Some(7 * DAY))),
            true,
        );
        binge.validity_ms = Some(30 * DAY);
        vec![
            binge,
            badge("early_adopter", "Early adopter", 2, "watched a premiere on release day", None, false),
            badge(
                "critic",
                "Critic",
                3,
                "rate 20 titles",
                Some((RuleKind::EventCount { event_name: "rate_title".into(), count: 20 }, None)),
                true,
            ),
            badge("subscriber", "Subscriber", 4, "3 purchases", Some((RuleKind::OrderCount { count: 3 }, None)), true),
        ]
    },
};

/// A gym chain: currency and two channels left at their defaults, check-ins as the main goal,
/// point-of-sale orders.
const GYM: Profile = Profile {
    name: "fitclub",
    currency: None,
    foreign_currencies: &["EUR", "GBP"],
    excluded_tags: &["transactional"],
    settings: &[(Channel::Push, TouchKind::Clicked, 2 * DAY), (Channel::Sms, TouchKind::Clicked, DAY)],
    list_default_goal: false,
    goals: || {
        vec![
            event_goal("checkin", "checkin"),
            order_goal("pt_session", &["PLACED", "PAID"], &["personal_training"], &["pos", "app"]),
            event_goal("class_booked", "book_class"),
        ]
    },
    campaigns: &["january-reset", "bring-a-friend", "spin-launch", "member-anniversary"],
    channel_weights: [45, 25, 20, 10],
    events: &[
        event("app_open", 20, 5, ValueKind::None, 0.0),
        event("checkin", 35, 30, ValueKind::None, 0.0),
        event("book_class", 15, 20, ValueKind::None, 0.0),
        event("workout_logged", 20, 5, ValueKind::Minutes, 0.8),
    ],
    categories: &["membership", "personal_training", "merch", "drinks"],
    order_channels: &[("pos", 50), ("app", 35), ("web", 15)],
    amount_minor: (250, 15_000),
    order_share: 0.3,
    order_prefix: "F",
    badges: &[
        ("ten_checkins", "10 check-ins"),
        ("early_bird", "5 check-ins before 7am"),
        ("class_regular", "booked 8 classes in a month"),
    ],
    badge_definitions: || {
        let mut class_regular = badge(
            "class_regular",
            "Class regular",
            2,
            "book 8 classes in 30 days",
            Some((RuleKind::EventCount { event_name: "book_class".into(), count: 8 }, Some(30 * DAY))),
            true,
        );
        class_regular.validity_ms = Some(60 * DAY);
        let mut retired = badge("founding_member", "Founding member", 5, "joined in the first month", None, false);
        retired.active = false;
        vec![
            badge(
                "ten_checkins",
                "Ten check-ins",
                1,
                "check in 10 times",
                Some((RuleKind::EventCount { event_name: "checkin".into(), count: 10 }, None)),
                true,
            ),
            class_regular,
            badge("early_bird", "Early bird", 3, "5 check-ins before 7am", None, false),
            badge("pt_fan", "PT fan", 4, "spend 150 on the club", Some((RuleKind::Spend { amount_minor: 15_000 }, None)), true),
            retired,
        ]
    },
};

const PROFILES: [Profile; 3] = [SHOP, STREAM, GYM];

/// The profile and tenant name of the `index`-th tenant: the three profiles in turn, named
/// `acme-shop`, then `acme-shop-2`, and so on.
pub(crate) fn tenant(index: usize) -> (&'static Profile, String) {
    let profile = &PROFILES[index % PROFILES.len()];
    let round = index / PROFILES.len();
    let name = if round == 0 { profile.name.to_owned() } else { format!("{}-{}", profile.name, round + 1) };
    (profile, name)
}

/// Relative size of the `index`-th tenant: the shop is the busiest.
pub(crate) fn weight(index: usize) -> usize {
    [4, 3, 3][index % PROFILES.len()]
}

/// `total` campaign ids for the first `tenants` tenants, split in proportion to their
/// [`weight`] (largest remainders first, every tenant at least one, so there are more than
/// `total` only when `total < tenants`). A tenant's ids go round its profile's campaign names
/// with a number unique across all tenants: `winter-sale-2026-0000`, `new-arrivals-jan-0001`…
pub(crate) fn campaign_lists(total: usize, tenants: usize) -> Vec<Vec<String>> {
    let weights: Vec<usize> = (0..tenants).map(weight).collect();
    let weight_sum: usize = weights.iter().sum();
    let mut counts: Vec<usize> = weights.iter().map(|w| total * w / weight_sum).collect();
    let mut by_remainder: Vec<usize> = (0..tenants).collect();
    // Stable: equal remainders go to the earlier tenant.
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(total * weights[i] % weight_sum));
    let handed_out: usize = counts.iter().sum();
    for &i in by_remainder.iter().take(total - handed_out) {
        counts[i] += 1;
    }
    for i in 0..tenants {
        if counts[i] == 0 {
            counts[i] = 1;
            // Take it from the tenant with the most (the first of them), if one can spare it.
            let richest = (0..tenants).rev().max_by_key(|&j| counts[j]).expect("at least one tenant");
            if counts[richest] > 1 {
                counts[richest] -= 1;
            }
        }
    }
    let mut next = 0;
    counts
        .iter()
        .enumerate()
        .map(|(index, &count)| {
            let names = tenant(index).0.campaigns;
            let list = (0..count).map(|k| format!("{}-{:04}", names[k % names.len()], next + k)).collect();
            next += count;
            list
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn campaigns_are_split_by_weight_each_tenant_getting_one() {
        let counts = |total, tenants| campaign_lists(total, tenants).iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(counts(1000, 3), [400, 300, 300]);
        assert_eq!(counts(1001, 3), [401, 300, 300]);
        assert_eq!(counts(1000, 4), [286, 214, 214, 286]);
        assert_eq!(counts(10, 3), [4, 3, 3]);
        assert_eq!(counts(3, 3), [1, 1, 1]);
        assert_eq!(counts(4, 4), [1, 1, 1, 1]);
        assert_eq!(counts(1, 3), [1, 1, 1], "every tenant gets one");
        assert_eq!(counts(0, 3), [1, 1, 1]);
        for (total, tenants) in [(1000, 23), (1000, 103), (30, 23), (23, 23), (24, 23), (5, 23)] {
            let lists = campaign_lists(total, tenants);
            let sizes: Vec<usize> = lists.iter().map(Vec::len).collect();
            assert!(sizes.iter().all(|&n| n >= 1), "{total} over {tenants}: {sizes:?}");
            assert_eq!(sizes.iter().sum::<usize>(), total.max(tenants), "{total} over {tenants}: {sizes:?}");
            let names: BTreeSet<&String> = lists.iter().flatten().collect();
            assert_eq!(names.len(), total.max(tenants), "names are unique across tenants");
        }
    }

    #[test]
    fn campaign_names_go_round_the_profile_names() {
        let lists = campaign_lists(14, 3);
        assert_eq!(
            lists[0][..3],
            ["winter-sale-2026-0000", "new-arrivals-jan-0001", "cart-abandon-0002"].map(String::from)
        );
        assert_eq!(lists[1][0], "new-season-drop-0006");
        assert_eq!(lists[2].last().unwrap(), "member-anniversary-0013");
    }
}
