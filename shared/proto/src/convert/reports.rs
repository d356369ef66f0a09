//! Report figures of the core as the query service answers them: touch counts, goal
//! results, campaign totals, goal KPIs, lift, model credits and explanation verdicts.

use super::{decimal, model_to_pb, tally};
use crate::v1 as pb;
use std::collections::BTreeMap;
use touchstone_core::attribution::{self, ExplicitStatus, Messages, Verdict};
use touchstone_core::config::TenantConfig;
use touchstone_core::lift;
use touchstone_core::models;
use touchstone_core::report::{Activity, CampaignTotals, GoalFigures, GoalKpi, GoalTotals, LocalDay};

/// Every model's split of one conversion; shares' values back in micros (`unit` micros a
/// unit of the goal's value).
pub fn model_credits_pb(credits: models::ModelCredits, messages: &Messages, unit: i64) -> Vec<pb::ModelCredit> {
    credits
        .by_model
        .into_iter()
        .map(|(model, shares)| pb::ModelCredit {
            model: model_to_pb(model).into(),
            shares: shares
                .into_iter()
                .map(|share| pb::ModelShare {
                    campaign_id: messages.get(&share.msg_hash).map(|m| m.campaign_id.clone()).unwrap_or_default(),
                    msg_hash: share.msg_hash,
                    touch_event_id: share.touch_event_id.unwrap_or_default(),
                    ppm: share.ppm,
                    value: Some(decimal(share.value * i128::from(unit))),
                })
                .collect(),
        })
        .collect()
}

pub fn count(n: i64) -> u64 {
    n.max(0) as u64
}

pub fn touch_counts(activity: &Activity) -> pb::TouchCounts {
    pb::TouchCounts {
        sent: count(activity.sent),
        delivered: count(activity.delivered),
        opened: count(activity.opened),
        clicked: count(activity.clicked),
        open_rate: activity.open_rate(),
        click_rate: activity.click_rate(),
        held_out: count(activity.held_out),
    }
}

pub fn event_hits(activity: &Activity) -> Vec<pb::EventHitCount> {
    activity.top_event_hits().into_iter().map(|(name, hits)| pb::EventHitCount { name: name.to_owned(), hits: count(hits) }).collect()
}

/// The tenant's currency and goals beside a report, so that clients can show ORDER goal values
/// as money and EVENT goal values as plain numbers without a second call (the query process of
/// a cluster serves no `ConfigService`).
pub fn report_units(config: &TenantConfig) -> pb::ReportUnits {
    pb::ReportUnits { currency: config.currency.clone(), goals: config.goals.iter().cloned().map(pb::Goal::from).collect() }
}

/// Goal results in the tenant's goal order.
pub fn goal_results(activity: &Activity, config: &TenantConfig) -> Vec<pb::GoalResult> {
    activity
        .goal_figures(config)
        .into_iter()
        .map(|GoalFigures { goal_id, tally, conversion_rate, average_check }| pb::GoalResult {
            goal_id,
            conversions: count(tally.count),
            value: Some(decimal(tally.value_micros)),
            conversion_rate,
            average_check,
        })
        .collect()
}

pub fn campaign_stats(campaign_id: String, messages: u32, activity: &Activity, config: &TenantConfig) -> pb::CampaignStats {
    pb::CampaignStats {
        campaign_id,
        messages,
        touches: Some(touch_counts(activity)),
        event_hits: event_hits(activity),
        goals: goal_results(activity, config),
    }
}

pub fn campaign_totals_pb(totals: CampaignTotals) -> pb::CampaignTotals {
    let CampaignTotals { campaigns, purchases, average_check } = totals;
    pb::CampaignTotals {
        campaigns,
        purchases: count(purchases.count),
        revenue: Some(decimal(purchases.value_micros)),
        average_check,
    }
}



pub fn lift_pb(campaign_id: String, goal_id: String, report: lift::Lift, units: pb::ReportUnits) -> pb::LiftReport {
    pb::LiftReport {
        campaign_id,
        goal_id,
        n_t: report.n_t,
        converted_t: report.converted_t,
        n_c: report.n_c,
        converted_c: report.converted_c,
        contaminated: report.contaminated,
        r_t: report.r_t,
        r_c: report.r_c,
        diff: report.diff,
        diff_low: report.diff_low,
        diff_high: report.diff_high,
        lift: report.lift,
        p_value: report.p_value,
        incremental_conversions: report.incremental_conversions,
        value_per_customer_t: report.value_per_customer_t,
        value_per_customer_c: report.value_per_customer_c,
        value_diff: report.value_diff,
        value_diff_low: report.value_diff_low,
        value_diff_high: report.value_diff_high,
        enough_data: report.enough_data,
        units: Some(units),
    }
}

/// A goal's KPIs, its contributing campaigns (`""`: no campaign) credited as the request's
/// model credits them.
pub fn goal_kpis_pb(kpi: GoalKpi, mut credit: BTreeMap<String, models::ModelTotals>) -> pb::GoalKpis {
    let GoalKpi { goal_id, explicit, last_touch, unattributed, .. } = kpi;
    let no_campaign = credit.remove("").unwrap_or_default();
    let mut campaigns: Vec<(String, models::ModelTotals)> = credit.into_iter().collect();
    campaigns.sort_by(|(a, x), (b, y)| y.ppm.cmp(&x.ppm).then_with(|| a.cmp(b)));
    let ppm = |totals: &models::ModelTotals| u64::try_from(totals.ppm).unwrap_or(0);
    let whole = |totals: &models::ModelTotals| pb::Tally { conversions: ppm(totals) / u64::from(models::PPM), value: Some(decimal(totals.value_micros)) };
    pb::GoalKpis {
        goal_id,
        explicit: Some(tally(explicit)),
        last_touch: Some(tally(last_touch)),
        unattributed: Some(tally(unattributed)),
        campaigns: campaigns
            .iter()
            .map(|(campaign_id, totals)| pb::CampaignContribution { campaign_id: campaign_id.clone(), tally: Some(whole(totals)), conversions_ppm: ppm(totals) })
            .collect(),
        no_campaign: Some(whole(&no_campaign)),
        no_campaign_ppm: ppm(&no_campaign),
    }
}



pub fn verdict_pb(verdict: Verdict) -> pb::CandidateVerdict {
    use attribution::Eligibility as E;
    match verdict {
        Verdict::Won => pb::CandidateVerdict::Won,
        Verdict::LostToLaterTouch => pb::CandidateVerdict::LostToLaterTouch,
        Verdict::LostTieOnEventId => pb::CandidateVerdict::LostTieOnEventId,
        Verdict::ExplicitTookPrecedence => pb::CandidateVerdict::ExplicitTookPrecedence,
        Verdict::Ineligible(E::WrongTouchKind { .. }) => pb::CandidateVerdict::WrongTouchKind,
        Verdict::Ineligible(E::OutsideWindow { .. }) => pb::CandidateVerdict::OutsideWindow,
        Verdict::Ineligible(E::MessageExcluded) => pb::CandidateVerdict::MessageExcluded,
        Verdict::Ineligible(E::MessageUnregistered) => pb::CandidateVerdict::MessageUnregistered,
        Verdict::Ineligible(E::AfterConversion) => pb::CandidateVerdict::AfterConversion,
        // Unreachable by construction (an eligible touch gets one of the verdicts above),
        // but the wire has a value for "not said".
        Verdict::Ineligible(E::Eligible) => pb::CandidateVerdict::Unspecified,
    }
}

pub fn explicit_status_text(status: Option<ExplicitStatus>) -> &'static str {
    match status {
        None => "",
        Some(ExplicitStatus::Used) => "USED",
        Some(ExplicitStatus::Unregistered) => "UNREGISTERED",
        Some(ExplicitStatus::Excluded) => "EXCLUDED",
    }
}

/// One local day of a campaign series.
pub fn campaign_series_point(day: LocalDay, stats: pb::CampaignStats) -> pb::CampaignSeriesPoint {
    let LocalDay { date, from, to } = day;
    pb::CampaignSeriesPoint { date: date.format("%Y-%m-%d").to_string(), from_ms: from, to_ms: to, stats: Some(stats) }
}

/// One local day of a goal series.
pub fn goal_series_point(day: LocalDay, totals: GoalTotals) -> pb::GoalSeriesPoint {
    let LocalDay { date, from, to } = day;
    pb::GoalSeriesPoint {
        date: date.format("%Y-%m-%d").to_string(),
        from_ms: from,
        to_ms: to,
        explicit: Some(tally(totals.explicit)),
        last_touch: Some(tally(totals.last_touch)),
        unattributed: Some(tally(totals.unattributed)),
    }
}
