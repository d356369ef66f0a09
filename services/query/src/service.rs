//! `QueryService`: campaign and message stats, goal KPIs and daily series, and
//! `ExplainConversion`. Each RPC sums the counters of its range ([`crate::range`]) and shapes
//! them with the core's report functions; nothing is recomputed from raw history.

use crate::range::{self, Range};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use touchstone_core::attribution::{self, ExplicitStatus, Messages, Verdict};
use touchstone_core::config::{DEFAULT_GOAL_ID, TenantConfig};
use touchstone_core::model::Millis;
use touchstone_core::report::{self, Activity, GoalKpi, rate};
use touchstone_core::rollup::{Cells, Tally};
use touchstone_proto::convert::{channel_to_pb, decimal, rule_to_pb, tally, touch_kind_to_pb};
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::query_service_server::QueryService;
use touchstone_store::{Store, StoreError};

/// Days one goal series may span.
pub const MAX_SERIES_DAYS: i64 = 400;
/// The series range when the request gives none: the last 30 days.
const DEFAULT_SERIES_DAYS: i64 = 30;

pub struct QueryApi {
    store: Arc<dyn Store>,
}

fn storage(err: StoreError) -> ApiError {
    ApiError::storage(err.is_transient(), err)
}

fn require(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::InvalidArgument(format!("{field} is required")));
    }
    Ok(())
}

impl QueryApi {
    pub fn new(store: Arc<dyn Store>) -> QueryApi {
        QueryApi { store }
    }

    async fn config(&self, tenant: &str) -> Result<TenantConfig, ApiError> {
        require("tenant", tenant)?;
        self.store.tenant_config(tenant).await.map_err(storage)
    }

    async fn cells(&self, tenant: &str, range: Range) -> Result<Cells, ApiError> {
        range::cells(self.store.as_ref(), tenant, range).await.map_err(storage)
    }

    /// The registered messages among those the cells mention.
    async fn messages(&self, tenant: &str, cells: &Cells) -> Result<Messages, ApiError> {
        self.store.messages(tenant, &report::referenced_messages(cells)).await.map_err(storage)
    }

    /// Per campaign over a range, by campaign id.
    async fn campaigns(
        &self,
        config: &TenantConfig,
        range: Range,
    ) -> Result<BTreeMap<String, (u32, Activity)>, ApiError> {
        let cells = self.cells(&config.tenant, range).await?;
        let messages = self.messages(&config.tenant, &cells).await?;
        let per_message = report::message_activity(&cells, config);
        Ok(report::campaign_activity(&per_message, &messages, config))
    }
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

fn touch_counts(activity: &Activity) -> pb::TouchCounts {
    let (delivered, opened, clicked) = (activity.delivered as f64, activity.opened as f64, activity.clicked as f64);
    pb::TouchCounts {
        sent: count(activity.sent),
        delivered: count(activity.delivered),
        opened: count(activity.opened),
        clicked: count(activity.clicked),
        open_rate: rate(opened, delivered),
        click_rate: rate(clicked, delivered),
    }
}

fn event_hits(activity: &Activity) -> Vec<pb::EventHitCount> {
    activity.top_event_hits().into_iter().map(|(name, hits)| pb::EventHitCount { name: name.to_owned(), hits: count(hits) }).collect()
}

/// Goal results in the tenant's goal order.
fn goal_results(activity: &Activity, config: &TenantConfig) -> Vec<pb::GoalResult> {
    config
        .goals
        .iter()
        .map(|goal| {
            let Tally { count: conversions, value_micros } = activity.goals.get(&goal.id).copied().unwrap_or_default();
            let value = value_micros as f64 / 1e6;
            pb::GoalResult {
                goal_id: goal.id.clone(),
                conversions: count(conversions),
                value: Some(decimal(value_micros)),
                conversion_rate: rate(conversions as f64, activity.opened as f64),
                average_check: rate(value, conversions as f64),
            }
        })
        .collect()
}

fn campaign_stats(campaign_id: String, messages: u32, activity: &Activity, config: &TenantConfig) -> pb::CampaignStats {
    pb::CampaignStats {
        campaign_id,
        messages,
        touches: Some(touch_counts(activity)),
        event_hits: event_hits(activity),
        goals: goal_results(activity, config),
    }
}

/// Totals over the campaigns listed: purchases and revenue are the default `orders` goal's.
fn campaign_totals(campaigns: &BTreeMap<String, (u32, Activity)>) -> pb::CampaignTotals {
    let mut purchases = Tally::default();
    for (_, activity) in campaigns.values() {
        purchases.add(activity.goals.get(DEFAULT_GOAL_ID).copied().unwrap_or_default());
    }
    pb::CampaignTotals {
        campaigns: campaigns.len() as u64,
        purchases: count(purchases.count),
        revenue: Some(decimal(purchases.value_micros)),
        average_check: rate(purchases.value_micros as f64 / 1e6, purchases.count as f64),
    }
}

fn goal_kpis_pb(kpi: GoalKpi) -> pb::GoalKpis {
    let GoalKpi { goal_id, explicit, last_touch, unattributed, campaigns, no_campaign } = kpi;
    pb::GoalKpis {
        goal_id,
        explicit: Some(tally(explicit)),
        last_touch: Some(tally(last_touch)),
        unattributed: Some(tally(unattributed)),
        campaigns: campaigns
            .into_iter()
            .map(|(campaign_id, t)| pb::CampaignContribution { campaign_id, tally: Some(tally(t)) })
            .collect(),
        no_campaign: Some(tally(no_campaign)),
    }
}

fn verdict_pb(verdict: Verdict) -> pb::CandidateVerdict {
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

fn explicit_status_text(status: Option<ExplicitStatus>) -> &'static str {
    match status {
        None => "",
        Some(ExplicitStatus::Used) => "USED",
        Some(ExplicitStatus::Unregistered) => "UNREGISTERED",
        Some(ExplicitStatus::Excluded) => "EXCLUDED",
    }
}

/// The local days of `[from, to)` in `tz`, each as its date and its `[start, end)` cut to
/// the range. Days are calendar days, so they are 23 or 25 hours long across DST changes.
fn local_days(tz: Tz, from: Millis, to: Millis) -> Vec<(NaiveDate, Millis, Millis)> {
    let date_of = |ms: Millis| DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&tz).date_naive());
    let start_of = |date: NaiveDate| -> Millis {
        // Midnight can fall in a DST gap (some zones change at 00:00): then the day starts
        // at the first instant that exists.
        (0..24)
            .find_map(|hour| date.and_hms_opt(hour, 0, 0).and_then(|t| tz.from_local_datetime(&t).earliest()))
            .map_or(from, |t| t.timestamp_millis())
    };
    if from >= to {
        return Vec::new();
    }
    let (Some(first), Some(last)) = (date_of(from), date_of(to - 1)) else {
        return Vec::new();
    };
    let mut days = Vec::new();
    let mut date = first;
    while date <= last {
        let Some(next) = date.succ_opt() else { break };
        days.push((date, start_of(date).max(from), start_of(next).min(to)));
        date = next;
    }
    days
}

#[tonic::async_trait]
impl QueryService for QueryApi {
    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, campaign_id = %request.get_ref().campaign_id))]
    async fn get_campaign_stats(&self, request: Request<pb::CampaignStatsRequest>) -> Result<Response<pb::CampaignStats>, Status> {
        let pb::CampaignStatsRequest { tenant, campaign_id, range } = request.into_inner();
        require("campaign_id", &campaign_id)?;
        let range = Range::from_pb(range)?;
        let config = self.config(&tenant).await?;
        let campaigns = self.campaigns(&config, range).await?;
        let (messages, activity) = campaigns.get(&campaign_id).cloned().unwrap_or_default();
        Ok(Response::new(campaign_stats(campaign_id, messages, &activity, &config)))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn list_campaigns(&self, request: Request<pb::ListCampaignsRequest>) -> Result<Response<pb::CampaignList>, Status> {
        let pb::ListCampaignsRequest { tenant, range } = request.into_inner();
        let range = Range::from_pb(range)?;
        let config = self.config(&tenant).await?;
        let campaigns = self.campaigns(&config, range).await?;
        let totals = campaign_totals(&campaigns);
        let campaigns = campaigns
            .into_iter()
            .map(|(campaign_id, (messages, activity))| campaign_stats(campaign_id, messages, &activity, &config))
            .collect();
        Ok(Response::new(pb::CampaignList { campaigns, totals: Some(totals) }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn list_message_stats(&self, request: Request<pb::ListMessageStatsRequest>) -> Result<Response<pb::MessageStatsList>, Status> {
        let pb::ListMessageStatsRequest { tenant, range, campaign_id } = request.into_inner();
        let range = Range::from_pb(range)?;
        let config = self.config(&tenant).await?;
        let cells = self.cells(&tenant, range).await?;
        let messages = self.messages(&tenant, &cells).await?;
        let rows = report::message_activity(&cells, &config)
            .into_iter()
            .filter_map(|(msg_hash, activity)| {
                let message = messages.get(&msg_hash);
                let message_campaign = message.map(|m| m.campaign_id.as_str()).unwrap_or_default();
                if campaign_id.as_deref().is_some_and(|wanted| wanted != message_campaign) {
                    return None;
                }
                Some(pb::MessageStats {
                    campaign_id: message_campaign.to_owned(),
                    channel: message.map_or(pb::Channel::Unspecified, |m| channel_to_pb(m.channel)).into(),
                    registered: message.is_some(),
                    touches: Some(touch_counts(&activity)),
                    event_hits: event_hits(&activity),
                    goals: goal_results(&activity, &config),
                    msg_hash,
                })
            })
            .collect();
        Ok(Response::new(pb::MessageStatsList { messages: rows }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn get_goal_kpis(&self, request: Request<pb::GoalKpisRequest>) -> Result<Response<pb::GoalKpisReply>, Status> {
        let pb::GoalKpisRequest { tenant, range, goal_id } = request.into_inner();
        let range = Range::from_pb(range)?;
        let config = self.config(&tenant).await?;
        if let Some(goal_id) = &goal_id
            && config.goal(goal_id).is_none()
        {
            return Err(ApiError::NotFound(format!("tenant {tenant:?} has no goal {goal_id:?}")).into());
        }
        let cells = self.cells(&tenant, range).await?;
        let messages = self.messages(&tenant, &cells).await?;
        let goals = report::goal_kpis(&cells, &messages, &config)
            .into_iter()
            .filter(|kpi| goal_id.as_ref().is_none_or(|wanted| *wanted == kpi.goal_id))
            .map(goal_kpis_pb)
            .collect();
        Ok(Response::new(pb::GoalKpisReply { goals }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, goal_id = %request.get_ref().goal_id))]
    async fn get_goal_series(&self, request: Request<pb::GoalSeriesRequest>) -> Result<Response<pb::GoalSeries>, Status> {
        let pb::GoalSeriesRequest { tenant, goal_id, range, time_zone } = request.into_inner();
        require("goal_id", &goal_id)?;
        let time_zone = if time_zone.is_empty() { "UTC".to_owned() } else { time_zone };
        let tz: Tz = time_zone
            .parse()
            .map_err(|_| ApiError::InvalidArgument(format!("unknown time zone {time_zone:?}; use an IANA name such as Europe/Berlin")))?;
        let now = chrono::Utc::now().timestamp_millis();
        let range = match range {
            Some(pb::TimeRange { from_ms: None, to_ms: None }) | None => {
                Range { from: now - DEFAULT_SERIES_DAYS * touchstone_core::rollup::DAY_MS, to: now }
            }
            Some(range) => Range::from_pb(Some(range))?,
        };
        if range.to - range.from > MAX_SERIES_DAYS * touchstone_core::rollup::DAY_MS {
            return Err(ApiError::InvalidArgument(format!("a series spans at most {MAX_SERIES_DAYS} days; narrow the range")).into());
        }
        let config = self.config(&tenant).await?;
        if config.goal(&goal_id).is_none() {
            return Err(ApiError::NotFound(format!("tenant {tenant:?} has no goal {goal_id:?}")).into());
        }
        let mut points = Vec::new();
        for (date, from, to) in local_days(tz, range.from, range.to) {
            let cells = self.cells(&tenant, Range { from, to }).await?;
            // Campaign contributions are not part of a point, so no messages are needed.
            let kpi = report::goal_kpis(&cells, &Messages::new(), &config)
                .into_iter()
                .find(|kpi| kpi.goal_id == goal_id)
                .unwrap_or_default();
            points.push(pb::GoalSeriesPoint {
                date: format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day()),
                from_ms: from,
                to_ms: to,
                explicit: Some(tally(kpi.explicit)),
                last_touch: Some(tally(kpi.last_touch)),
                unattributed: Some(tally(kpi.unattributed)),
            });
        }
        Ok(Response::new(pb::GoalSeries { goal_id, time_zone, points }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, goal_id = %request.get_ref().goal_id))]
    async fn explain_conversion(&self, request: Request<pb::ExplainConversionRequest>) -> Result<Response<pb::ConversionExplanation>, Status> {
        let pb::ExplainConversionRequest { tenant, goal_id, conversion_key } = request.into_inner();
        require("goal_id", &goal_id)?;
        require("conversion_key", &conversion_key)?;
        let config = self.config(&tenant).await?;
        let conversion = self
            .store
            .conversion(&tenant, &goal_id, &conversion_key)
            .await
            .map_err(storage)?
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no conversion of goal {goal_id:?} with key {conversion_key:?} (an order_id or an event's event_id) for tenant {tenant:?}"
                ))
            })?;
        let fact = conversion.fact;
        let (touches, messages) = touchstone_store::credit_inputs(self.store.as_ref(), &config, &fact).await.map_err(storage)?;
        let explanation = attribution::explain(&fact, &touches, &messages, &config);
        let credited = explanation.credit.msg_hash.clone().unwrap_or_default();
        let credited_campaign_id = messages.get(&credited).map(|m| m.campaign_id.clone()).unwrap_or_default();
        let candidates = explanation
            .candidates
            .into_iter()
            .map(|candidate| pb::CandidateTouch {
                event_id: candidate.touch.event_id,
                msg_hash: candidate.touch.msg_hash,
                touch: touch_kind_to_pb(candidate.touch.kind).into(),
                ts: candidate.touch.ts,
                verdict: verdict_pb(candidate.verdict).into(),
                reason: candidate.reason,
            })
            .collect();
        Ok(Response::new(pb::ConversionExplanation {
            goal_id: fact.goal_id,
            conversion_key: fact.key,
            customer_id: fact.customer_id,
            ts: fact.ts,
            value: Some(decimal(i128::from(fact.value_micros))),
            source_event_id: fact.source_event_id,
            explicit_msg_hash: fact.explicit_msg_hash,
            explicit_status: explicit_status_text(explanation.explicit).to_owned(),
            rule: rule_to_pb(explanation.credit.rule).into(),
            credited_msg_hash: credited,
            credited_campaign_id,
            decision: explanation.decision,
            candidates,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Millis {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    #[test]
    fn local_days_follow_the_zone_and_cut_to_the_range() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let days = local_days(tz, ms("2026-03-28T12:00:00Z"), ms("2026-03-30T00:00:00Z"));
        let dates: Vec<String> = days.iter().map(|(d, _, _)| d.to_string()).collect();
        assert_eq!(dates, ["2026-03-28", "2026-03-29", "2026-03-30"]);
        // The first day is cut at the range start; 29 March has 23 hours (DST starts).
        assert_eq!(days[0].1, ms("2026-03-28T12:00:00Z"));
        assert_eq!(days[1].1, ms("2026-03-28T23:00:00Z"));
        assert_eq!(days[1].2 - days[1].1, 23 * 3_600_000);
        assert_eq!(days[2].1, ms("2026-03-29T22:00:00Z"));
        assert_eq!(days[2].2, ms("2026-03-30T00:00:00Z"));
        // The pieces tile the range.
        for pair in days.windows(2) {
            assert_eq!(pair[0].2, pair[1].1);
        }
    }

    #[test]
    fn an_empty_range_has_no_days() {
        let tz: Tz = "UTC".parse().unwrap();
        assert!(local_days(tz, 1_000, 1_000).is_empty());
    }

    #[test]
    fn rates_are_zero_without_a_denominator() {
        let activity = Activity { delivered: 0, opened: 0, ..Activity::default() };
        let counts = touch_counts(&activity);
        assert_eq!((counts.open_rate, counts.click_rate), (0.0, 0.0));
        let activity = Activity { delivered: 4, opened: 2, clicked: 1, ..Activity::default() };
        let counts = touch_counts(&activity);
        assert_eq!((counts.open_rate, counts.click_rate), (0.5, 0.25));
    }
}
