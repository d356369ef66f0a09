//! Every attribution model side by side: one conversion's credit split among its candidate
//! messages under last touch, first touch, linear, position-based (U-shaped) and time decay,
//! as exact integer shares (parts per million) and exact credited values.
//!
//! - [`candidates`]: the messages that may share a conversion, each with its representative
//!   (latest qualifying) touch, oldest first; the explicit message alone when rule 1 applies.
//! - [`shares`]: a model's ppm per candidate, summing to exactly 1,000,000.
//! - [`split`]: a value in whole units split by shares, summing to exactly the value.
//! - [`credit_models`]: all of it for one conversion and every model (what explain shows).
//! - [`ModelSplit`] / [`model_split`]: what the fold keeps with a conversion that several
//!   messages could explain, and its shifts from last touch, which rollups count.
//! - [`by_campaign`], [`by_message`], [`goal_credit_by_campaign`]: every model's credit
//!   summed from those counters (last touch's counters plus each model's shifts).
//!
//! The models' arithmetic ([`Model`], [`shares`], [`split`], [`ModelSplit`]) is in
//! `shares`, which attribution and rollups use without the rest; it is re-exported here.

use crate::attribution::{ConversionFact, Eligibility, ExplicitStatus, Messages, Rule, eligibility, explicit_status};
use crate::rollup::{CampaignCell, CampaignCells, Cells, Tally};
use std::collections::BTreeMap;
use crate::config::TenantConfig;
use crate::model::{Millis, Touch};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

pub use crate::config::{DEFAULT_HALF_LIFE_MS, MIN_HALF_LIFE_MS};
pub use crate::shares::{Model, ModelSplit, PPM, shares, split};

/// Who may share a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidates<'a> {
    /// Rule 1 applies: this message takes the whole conversion under every model.
    Explicit(&'a str),
    /// The representative touch of each qualifying message, oldest first by (`ts`,
    /// `event_id`); empty: unattributed under every model.
    Touches(Vec<&'a Touch>),
}

/// The candidates of a conversion: the explicit message when rule 1 applies, else each
/// registered, not excluded message with a qualifying touch of the customer within its
/// channel's window, represented by its latest such touch. `touches` may hold any superset
/// of the customer's touches in the longest window; the others are ignored.
pub fn candidates<'a>(
    fact: &'a ConversionFact,
    touches: impl IntoIterator<Item = &'a Touch>,
    messages: &Messages,
    config: &TenantConfig,
) -> Candidates<'a> {
    if let Some(msg_hash) = &fact.explicit_msg_hash
        && explicit_status(msg_hash, messages, config) == ExplicitStatus::Used
    {
        return Candidates::Explicit(msg_hash);
    }
    let mut latest: std::collections::HashMap<&str, &Touch> = std::collections::HashMap::new();
    for touch in touches {
        if touch.customer_id != fact.customer_id || eligibility(touch, fact.ts, messages.get(&touch.msg_hash), config) != Eligibility::Eligible {
            continue;
        }
        let slot = latest.entry(touch.msg_hash.as_str()).or_insert(touch);
        if order(touch, slot) == Ordering::Greater {
            *slot = touch;
        }
    }
    let mut representatives: Vec<&Touch> = latest.into_values().collect();
    representatives.sort_by(|a, b| order(a, b));
    Candidates::Touches(representatives)
}

/// Touches by (`ts`, `event_id`): the order of M and of representatives.
fn order(a: &Touch, b: &Touch) -> Ordering {
    (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id))
}

/// One message's part of a conversion under a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub msg_hash: String,
    /// The representative touch; `None` for an explicit credit.
    pub touch_event_id: Option<String>,
    pub ppm: u32,
    /// The credited value in whole units (see [`split`]).
    pub value: i128,
}

/// A conversion's credit under every model, in [`Model::ALL`]'s order; an empty list of
/// shares: unattributed under that model (so under all).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModelCredits {
    pub explicit: bool,
    pub by_model: Vec<(Model, Vec<Share>)>,
}

impl ModelCredits {
    pub fn of(&self, model: Model) -> &[Share] {
        self.by_model.iter().find(|(m, _)| *m == model).map_or(&[], |(_, shares)| shares.as_slice())
    }
}

/// The split a fold keeps with a conversion credited by last touch (see [`ModelSplit`]),
/// from the customer's touches in its longest window (any superset will do).
pub fn model_split<'a>(fact: &'a ConversionFact, touches: impl IntoIterator<Item = &'a Touch>, messages: &Messages, config: &TenantConfig) -> Option<ModelSplit> {
    let Candidates::Touches(representatives) = candidates(fact, touches, messages, config) else { return None };
    let micros_per_unit = config.goal(&fact.goal_id)?.micros_per_unit();
    ModelSplit::of(&representatives, i128::from(fact.value_micros / micros_per_unit), micros_per_unit, config.decay_half_life_ms)
}

/// Credits one conversion under every model (time decay with the config's
/// `decay_half_life_ms`). `units` is its value in whole units (see [`split`]); shares of
/// zero ppm are kept out.
pub fn credit_models(fact: &ConversionFact, units: i128, touches: &[Touch], messages: &Messages, config: &TenantConfig) -> ModelCredits {
    match candidates(fact, touches, messages, config) {
        Candidates::Explicit(msg_hash) => {
            let whole = Share { msg_hash: msg_hash.to_owned(), touch_event_id: None, ppm: PPM, value: units };
            ModelCredits { explicit: true, by_model: Model::ALL.iter().map(|&model| (model, vec![whole.clone()])).collect() }
        }
        Candidates::Touches(representatives) => {
            let times: Vec<Millis> = representatives.iter().map(|touch| touch.ts).collect();
            let by_model = Model::ALL
                .iter()
                .map(|&model| {
                    let ppm = shares(model, &times, config.decay_half_life_ms);
                    let values = split(units, &ppm);
                    let credited = representatives
                        .iter()
                        .zip(ppm.iter().zip(values))
                        .filter(|(_, (ppm, _))| **ppm > 0)
                        .map(|(touch, (&ppm, value))| Share { msg_hash: touch.msg_hash.clone(), touch_event_id: Some(touch.event_id.clone()), ppm, value })
                        .collect();
                    (model, credited)
                })
                .collect();
            ModelCredits { explicit: false, by_model }
        }
    }
}

/// One model's credited conversions (ppm summed) and value (micros summed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelTotals {
    pub ppm: i128,
    pub value_micros: i128,
}

impl ModelTotals {
    fn add(&mut self, ppm: i128, value_micros: i128) {
        self.ppm += ppm;
        self.value_micros += value_micros;
    }
}

/// A row's credit under every model, all five present.
pub type ModelRow = BTreeMap<Model, ModelTotals>;

/// Every model's credit per message and goal (`goal` keeps one), from message counters:
/// each credited conversion counts whole under every model, and each model's shifts move
/// it. Unattributed conversions have no row, nor goals no longer configured.
pub fn by_message(cells: &Cells, config: &TenantConfig, goal: Option<&str>) -> BTreeMap<(String, String), ModelRow> {
    let mut rows = BTreeMap::new();
    for (cell, tally) in &cells.0 {
        let (msg_hash, cell) = cell.clone().into_campaign_cell();
        add_credit(&mut rows, &msg_hash, &cell, *tally, config, goal);
    }
    finish(rows)
}

/// Every model's credit per campaign and goal, as [`by_message`], from campaign counters;
/// messages of no campaign have no row.
pub fn by_campaign(by_campaign: &BTreeMap<String, CampaignCells>, config: &TenantConfig, goal: Option<&str>) -> BTreeMap<(String, String), ModelRow> {
    let mut rows = BTreeMap::new();
    for (campaign_id, cells) in by_campaign.iter().filter(|(id, _)| !id.is_empty()) {
        for (cell, tally) in &cells.0 {
            add_credit(&mut rows, campaign_id, cell, *tally, config, goal);
        }
    }
    finish(rows)
}

fn add_credit(rows: &mut BTreeMap<(String, String), ModelRow>, subject: &str, cell: &CampaignCell, tally: Tally, config: &TenantConfig, goal: Option<&str>) {
    let (goal_id, model) = match cell {
        CampaignCell::Conversion { goal_id, rule: Rule::Explicit | Rule::LastTouch } => (goal_id, None),
        CampaignCell::ModelShift { goal_id, model } => (goal_id, Some(*model)),
        _ => return,
    };
    if goal.is_some_and(|goal| goal != goal_id) || config.goal(goal_id).is_none() || subject.is_empty() {
        return;
    }
    let row = rows.entry((subject.to_owned(), goal_id.clone())).or_insert_with(|| Model::ALL.iter().map(|&m| (m, ModelTotals::default())).collect());
    match model {
        // A conversion credited whole: the same under every model until shifted.
        None => row.values_mut().for_each(|totals| totals.add(i128::from(tally.count) * i128::from(PPM), tally.value_micros)),
        Some(model) => row.entry(model).or_default().add(i128::from(tally.count), tally.value_micros),
    }
}

/// A goal's credit under `model` per campaign (`""`: messages of no campaign), from
/// campaign counters: the contributing campaigns of goal KPIs. Campaigns left with nothing
/// are dropped.
pub fn goal_credit_by_campaign(by_campaign: &BTreeMap<String, CampaignCells>, goal_id: &str, model: Model) -> BTreeMap<String, ModelTotals> {
    let mut credit: BTreeMap<String, ModelTotals> = BTreeMap::new();
    for (campaign_id, cells) in by_campaign {
        for (cell, tally) in &cells.0 {
            let (ppm, value) = match cell {
                CampaignCell::Conversion { goal_id: id, rule: Rule::Explicit | Rule::LastTouch } if id == goal_id => {
                    (i128::from(tally.count) * i128::from(PPM), tally.value_micros)
                }
                CampaignCell::ModelShift { goal_id: id, model: shifted } if id == goal_id && *shifted == model => (i128::from(tally.count), tally.value_micros),
                _ => continue,
            };
            credit.entry(campaign_id.clone()).or_default().add(ppm, value);
        }
    }
    credit.retain(|_, totals| *totals != ModelTotals::default());
    credit
}

/// Rows left with nothing (every conversion of them retracted) are dropped.
fn finish(mut rows: BTreeMap<(String, String), ModelRow>) -> BTreeMap<(String, String), ModelRow> {
    rows.retain(|_, row| row.values().any(|totals| *totals != ModelTotals::default()));
    rows
}

/// A goal's contributing campaigns (`""`: no campaign) as last touch credits them.
pub fn last_touch_credit(kpi: &crate::report::GoalKpi) -> std::collections::BTreeMap<String, ModelTotals> {
    let totals = |tally: &Tally| ModelTotals {
        ppm: i128::from(tally.count) * i128::from(PPM),
        value_micros: tally.value_micros,
    };
    let no_campaign = (!kpi.no_campaign.is_zero()).then(|| (String::new(), totals(&kpi.no_campaign)));
    kpi.campaigns.iter().map(|(campaign_id, tally)| (campaign_id.clone(), totals(tally))).chain(no_campaign).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::fixtures::{HOUR, config, fact, messages, touch};
    use crate::attribution::{Rule, credit};
    use crate::model::TouchKind;

    const T0: Millis = 1_767_225_600_000;

    #[test]
    fn rational_models_have_the_rules_weights() {
        let times = |n: usize| (0..n as Millis).collect::<Vec<_>>();
        assert_eq!(shares(Model::LastTouch, &times(3), DEFAULT_HALF_LIFE_MS), [0, 0, 1_000_000]);
        assert_eq!(shares(Model::FirstTouch, &times(3), DEFAULT_HALF_LIFE_MS), [1_000_000, 0, 0]);
        // 333,333 each and one ppm missing: equal remainders go to the later message.
        assert_eq!(shares(Model::Linear, &times(3), DEFAULT_HALF_LIFE_MS), [333_333, 333_333, 333_334]);
        assert_eq!(shares(Model::Linear, &times(4), DEFAULT_HALF_LIFE_MS), [250_000; 4]);
        assert_eq!(shares(Model::Linear, &times(7), DEFAULT_HALF_LIFE_MS), [142_857, 142_857, 142_857, 142_857, 142_857, 142_857, 142_858]);
        assert_eq!(shares(Model::PositionBased, &times(1), DEFAULT_HALF_LIFE_MS), [1_000_000]);
        assert_eq!(shares(Model::PositionBased, &times(2), DEFAULT_HALF_LIFE_MS), [500_000, 500_000]);
        assert_eq!(shares(Model::PositionBased, &times(3), DEFAULT_HALF_LIFE_MS), [400_000, 200_000, 400_000]);
        assert_eq!(shares(Model::PositionBased, &times(5), DEFAULT_HALF_LIFE_MS), [400_000, 66_666, 66_667, 66_667, 400_000]);
        for model in Model::ALL {
            assert!(shares(model, &[], DEFAULT_HALF_LIFE_MS).is_empty(), "{model}: no candidates, no shares");
            assert_eq!(shares(model, &[T0], DEFAULT_HALF_LIFE_MS), [PPM], "{model}: one candidate takes all");
        }
    }

    #[test]
    fn time_decay_halves_per_half_life_and_sums_to_a_million() {
        let day = 24 * HOUR;
        // One half-life apart: weights 1/2 and 1, so 1/3 and 2/3.
        assert_eq!(shares(Model::TimeDecay, &[T0, T0 + day], day), [333_333, 666_667]);
        assert_eq!(shares(Model::TimeDecay, &[T0, T0], day), [500_000, 500_000]);
        // Two half-lives: 1/4, 1/2 (one apart), 1: 1/7, 2/7, 4/7.
        assert_eq!(shares(Model::TimeDecay, &[T0, T0 + day, T0 + 2 * day], day), [142_857, 285_714, 571_429]);
        // Far apart, the older weight underflows to zero without the sum doing so.
        let far = shares(Model::TimeDecay, &[T0, T0 + 5_000 * MIN_HALF_LIFE_MS], MIN_HALF_LIFE_MS);
        assert_eq!(far, [0, PPM]);
        for n in 1..40 {
            let times: Vec<Millis> = (0..n).map(|i| T0 + i * i * 7_919_000).collect();
            assert_eq!(shares(Model::TimeDecay, &times, 3 * HOUR).iter().map(|&s| u64::from(s)).sum::<u64>(), u64::from(PPM));
        }
    }

    #[test]
    fn every_model_sums_to_a_million_for_any_number_of_candidates() {
        for n in 1..200 {
            let times: Vec<Millis> = (0..n).map(|i| T0 + i * 1_000).collect();
            for model in Model::ALL {
                let ppm = shares(model, &times, DEFAULT_HALF_LIFE_MS);
                assert_eq!(ppm.len(), n as usize);
                assert_eq!(ppm.iter().map(|&s| u64::from(s)).sum::<u64>(), u64::from(PPM), "{model}, {n} candidates");
            }
        }
    }

    #[test]
    fn values_split_exactly_with_remainders_to_the_largest_then_the_later() {
        assert_eq!(split(100, &[333_333, 333_333, 333_334]), [33, 33, 34]);
        // 1 unit: floors all 0, remainders 333,333 / 333,333 / 333,334: the last takes it.
        assert_eq!(split(1, &[333_333, 333_333, 333_334]), [0, 0, 1]);
        // 2 units: remainders 666,666 / 666,666 / 666,668: the largest, then the later of the
        // two equal ones.
        assert_eq!(split(2, &[333_333, 333_333, 333_334]), [0, 1, 1]);
        assert_eq!(split(0, &[500_000, 500_000]), [0, 0]);
        assert_eq!(split(7, &[PPM]), [7]);
        assert_eq!(split(-3, &[500_000, 500_000]), [-2, -1], "floor toward negative infinity");
        assert!(split(5, &[]).is_empty());
        for value in [1, 2, 3, 99, 1_000_001, 123_456_789_012] {
            for n in 1..30 {
                let times: Vec<Millis> = (0..n).map(|i| T0 + i * 60_000).collect();
                for model in Model::ALL {
                    let parts = split(value, &shares(model, &times, HOUR));
                    assert_eq!(parts.iter().sum::<i128>(), value, "{model}, {n} candidates, value {value}");
                }
            }
        }
    }

    #[test]
    fn a_message_is_represented_by_its_latest_qualifying_touch() {
        let messages = messages(T0 - 10 * HOUR);
        let c = T0;
        let touches = [
            touch("a1", "push", TouchKind::Opened, c - 5 * HOUR),
            touch("a2", "push", TouchKind::Opened, c - 2 * HOUR),
            touch("a3", "push", TouchKind::Opened, c + HOUR), // after the conversion
            touch("b1", "push2", TouchKind::Opened, c - 3 * HOUR),
            touch("b2", "push2", TouchKind::Sent, c - HOUR), // not push's connect_on
            touch("m1", "mail", TouchKind::Clicked, c - 3 * HOUR), // outside email's 2 h
            touch("r1", "reset", TouchKind::Opened, c - HOUR),   // excluded
            touch("u1", "unknown", TouchKind::Opened, c - HOUR), // unregistered
        ];
        let fact = fact(c, None);
        let Candidates::Touches(representatives) = candidates(&fact, &touches, &messages, &config()) else { panic!("no explicit credit") };
        let ids: Vec<&str> = representatives.iter().map(|t| t.event_id.as_str()).collect();
        assert_eq!(ids, ["b1", "a2"], "oldest first, one per message");
        // Last touch under the models is rule 2's credit.
        let credits = credit_models(&fact, 10_000, &touches, &messages, &config());
        let last = credits.of(Model::LastTouch);
        let rule2 = credit(&fact, &touches, &messages, &config());
        assert_eq!(rule2.rule, Rule::LastTouch);
        assert_eq!(last.len(), 1);
        assert_eq!(Some(last[0].msg_hash.clone()), rule2.msg_hash);
        assert_eq!(Some(last[0].touch_event_id.clone().unwrap()), rule2.touch_event_id);
        assert_eq!(credits.of(Model::FirstTouch)[0].msg_hash, "push2");
        assert_eq!(credits.of(Model::Linear).iter().map(|s| (s.ppm, s.value)).collect::<Vec<_>>(), [(500_000, 5_000), (500_000, 5_000)]);
    }

    #[test]
    fn equal_times_order_by_event_id() {
        let messages = messages(T0 - 10 * HOUR);
        let touches = [touch("z", "push", TouchKind::Opened, T0 - HOUR), touch("a", "push2", TouchKind::Opened, T0 - HOUR)];
        let fact = fact(T0, None);
        let credits = credit_models(&fact, 3, &touches, &messages, &config());
        assert_eq!(credits.of(Model::FirstTouch)[0].touch_event_id.as_deref(), Some("a"));
        assert_eq!(credits.of(Model::LastTouch)[0].touch_event_id.as_deref(), Some("z"));
        assert_eq!(credits.of(Model::Linear).iter().map(|s| s.value).collect::<Vec<_>>(), [1, 2], "the odd unit to the later");
    }

    #[test]
    fn explicit_takes_everything_under_every_model_and_no_candidate_leaves_it_unattributed() {
        let messages = messages(T0 - 10 * HOUR);
        let touches = [touch("a", "push", TouchKind::Opened, T0 - HOUR)];
        let explicit = credit_models(&fact(T0, Some("mail")), 42, &touches, &messages, &config());
        assert!(explicit.explicit);
        for model in Model::ALL {
            assert_eq!(explicit.of(model), [Share { msg_hash: "mail".into(), touch_event_id: None, ppm: PPM, value: 42 }]);
        }
        // An excluded explicit message falls back to the touches.
        let fallback = credit_models(&fact(T0, Some("reset")), 42, &touches, &messages, &config());
        assert!(!fallback.explicit);
        assert_eq!(fallback.of(Model::Linear)[0].msg_hash, "push");
        let none = credit_models(&fact(T0, None), 42, &[], &messages, &config());
        assert!(Model::ALL.iter().all(|&model| none.of(model).is_empty()));
    }

    proptest::proptest! {
        /// Any candidates, any half-life, any value: shares sum to a million and credited
        /// values to the value, under every model.
        #[test]
        fn shares_and_values_always_add_up(
            mut offsets in proptest::collection::vec(0i64..90 * 24 * HOUR, 1..60),
            half_life in MIN_HALF_LIFE_MS..400 * 24 * HOUR,
            value in -1_000_000_000_000i128..1_000_000_000_000i128,
        ) {
            offsets.sort_unstable();
            let times: Vec<Millis> = offsets.iter().map(|offset| T0 + offset).collect();
            for model in Model::ALL {
                let ppm = shares(model, &times, half_life);
                proptest::prop_assert_eq!(ppm.iter().map(|&s| u64::from(s)).sum::<u64>(), u64::from(PPM));
                proptest::prop_assert_eq!(split(value, &ppm).iter().sum::<i128>(), value);
            }
        }

        /// Under `LAST_TOUCH` the whole conversion goes to what the crediting rules credit,
        /// whatever the customer's touches.
        #[test]
        fn last_touch_is_the_crediting_rule(
            touches in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["push", "push2", "mail", "reset", "unknown"]),
                    proptest::sample::select(vec![TouchKind::Sent, TouchKind::Opened, TouchKind::Clicked]),
                    -30 * HOUR..2 * HOUR,
                ),
                0..12,
            ),
            explicit in proptest::option::of(proptest::sample::select(vec!["push", "mail", "reset", "unknown"])),
        ) {
            let messages = messages(T0 - 40 * HOUR);
            let touches: Vec<Touch> =
                touches.iter().enumerate().map(|(i, (msg, kind, offset))| touch(&format!("e{i}"), msg, *kind, T0 + offset)).collect();
            let fact = fact(T0, explicit);
            let rule = credit(&fact, &touches, &messages, &config());
            let credits = credit_models(&fact, 999, &touches, &messages, &config());
            let last = credits.of(Model::LastTouch);
            match rule.msg_hash {
                None => proptest::prop_assert!(Model::ALL.iter().all(|&model| credits.of(model).is_empty())),
                Some(msg_hash) => {
                    proptest::prop_assert_eq!(last.len(), 1);
                    proptest::prop_assert_eq!(&last[0].msg_hash, &msg_hash);
                    proptest::prop_assert_eq!(&last[0].touch_event_id, &rule.touch_event_id);
                    proptest::prop_assert_eq!((last[0].ppm, last[0].value), (PPM, 999));
                    proptest::prop_assert_eq!(credits.explicit, rule.rule == Rule::Explicit);
                }
            }
        }
    }

    #[test]
    fn a_held_out_touch_is_never_a_candidate() {
        let messages = messages(T0 - 10 * HOUR);
        let touches = [touch("h", "push", TouchKind::HeldOut, T0 - HOUR)];
        assert_eq!(candidates(&fact(T0, None), &touches, &messages, &config()), Candidates::Touches(vec![]));
    }

    #[test]
    fn models_are_named_as_reports_name_them() {
        for model in Model::ALL {
            assert_eq!(Model::parse(model.as_str()), Some(model));
        }
        assert_eq!(Model::parse("LAST_TOUCH"), None);
    }

    /// A conversion of 3 USD with two candidates, m1 (campaign a) then m2 (campaign b): its
    /// split, its shifts from last touch, and the reports summed from those counters.
    #[test]
    fn shifts_added_to_last_touch_give_each_models_credit() {
        let (first, second) = (touch("e1", "m1", TouchKind::Opened, T0), touch("e2", "m2", TouchKind::Opened, T0 + HOUR));
        let split = ModelSplit::of(&[&first, &second], 300, 10_000, DEFAULT_HALF_LIFE_MS).expect("two candidates");
        assert_eq!(split.parts[0], vec![(PPM, 3_000_000), (0, 0)], "first touch: m1 takes it all");
        assert_eq!(split.parts[1], vec![(500_000, 1_500_000), (500_000, 1_500_000)], "linear: halves");
        let shifts: Vec<_> = split.shifts(3_000_000).filter(|(model, ..)| *model == Model::FirstTouch).collect();
        assert_eq!(shifts, vec![(Model::FirstTouch, "m1", 1_000_000, 3_000_000), (Model::FirstTouch, "m2", -1_000_000, -3_000_000)]);
        assert!(ModelSplit::of(&[&first], 300, 10_000, DEFAULT_HALF_LIFE_MS).is_none(), "one candidate: no split");

        // Campaign counters: last touch credits b; the shifts move first touch's to a.
        let mut by_campaign: BTreeMap<String, CampaignCells> = BTreeMap::new();
        let converted = CampaignCell::Conversion { goal_id: "orders".into(), rule: Rule::LastTouch };
        by_campaign.entry("b".into()).or_default().add(converted.clone(), Tally::of(3_000_000));
        for (model, msg_hash, ppm, micros) in split.shifts(3_000_000) {
            let campaign = if msg_hash == "m1" { "a" } else { "b" };
            let cell = CampaignCell::ModelShift { goal_id: "orders".into(), model };
            by_campaign.entry(campaign.into()).or_default().add(cell, Tally { count: ppm, value_micros: i128::from(micros) });
        }
        let config = config();
        let rows = super::by_campaign(&by_campaign, &config, None);
        let figures = |campaign: &str, model| rows[&(campaign.to_owned(), "orders".to_owned())][&model];
        assert_eq!(figures("a", Model::LastTouch), ModelTotals::default());
        assert_eq!(figures("b", Model::LastTouch), ModelTotals { ppm: 1_000_000, value_micros: 3_000_000 });
        assert_eq!(figures("a", Model::FirstTouch), ModelTotals { ppm: 1_000_000, value_micros: 3_000_000 });
        assert_eq!(figures("a", Model::Linear), ModelTotals { ppm: 500_000, value_micros: 1_500_000 });
        let credit = goal_credit_by_campaign(&by_campaign, "orders", Model::FirstTouch);
        assert_eq!(credit.keys().collect::<Vec<_>>(), ["a"], "b is left with nothing under first touch");

        // The conversion retracted: every row goes.
        let retracted: BTreeMap<String, CampaignCells> = by_campaign
            .iter()
            .map(|(campaign, cells)| {
                let mut both = cells.clone();
                for (cell, tally) in &cells.0 {
                    both.add(cell.clone(), tally.negated());
                }
                (campaign.clone(), both)
            })
            .collect();
        assert!(super::by_campaign(&retracted, &config, None).is_empty());
    }
}
