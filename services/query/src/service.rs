//! `QueryService`: campaign and message stats, goal KPIs, daily series of a goal or a campaign, and
//! `ExplainConversion`. Each RPC sums the counters of its range ([`crate::range`]) and shapes
//! them with the core's report functions; nothing is recomputed from raw history.

use crate::range::{self, Range};
use chrono_tz::Tz;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use crate::explain::credit_inputs;
use touchstone_core::attribution::{self, Messages};
use touchstone_core::config::{Goal, TenantConfig};
use touchstone_core::error::Reason;
use touchstone_core::lift;
use touchstone_core::model::Touch;
use touchstone_core::models;
use touchstone_proto::convert::{model_from_pb, model_to_pb};
use touchstone_core::report::{self, Activity};
use touchstone_core::rollup::{CampaignCells, Cells};
use touchstone_proto::convert::{channel_to_pb, decimal, reports, rule_to_pb, touch_kind_to_pb};
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::query_service_server::QueryService;
use touchstone_proto::validate::valid;
use touchstone_store::{BadgeStore, CellKinds, ConfigStore, ReportReads};

pub struct QueryApi {
    configs: Arc<dyn ConfigStore>,
    reads: Arc<dyn ReportReads>,
    badges: Arc<dyn BadgeStore>,
    /// Turns true when the server shuts down: open feeds end.
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Tenants found to exist (they never stop existing): one store read per tenant.
    known_tenants: Arc<RwLock<HashSet<String>>>,
}

impl QueryApi {
    pub fn new(configs: Arc<dyn ConfigStore>, reads: Arc<dyn ReportReads>, badges: Arc<dyn BadgeStore>) -> QueryApi {
        QueryApi { configs, reads, badges, shutdown: tokio::sync::watch::channel(false).1, known_tenants: Arc::default() }
    }

    /// Ends open `WatchBadgeEvents` streams when `shutdown` turns true.
    pub fn with_shutdown(mut self, shutdown: tokio::sync::watch::Receiver<bool>) -> QueryApi {
        self.shutdown = shutdown;
        self
    }

    /// NOT_FOUND for a tenant that never wrote anything: a typo should not read as a tenant
    /// with no activity.
    async fn existing(&self, tenant: &str) -> Result<(), ApiError> {
        if self.known_tenants.read().unwrap_or_else(PoisonError::into_inner).contains(tenant) {
            return Ok(());
        }
        if !self.configs.tenant_exists(tenant).await? {
            return Err(ApiError::not_found(
                Reason::tenant_not_found(tenant),
                format!("no tenant {tenant:?}: no record of it was ever ingested and its settings, goals and badges were never saved"),
            ));
        }
        self.known_tenants.write().unwrap_or_else(PoisonError::into_inner).insert(tenant.to_owned());
        Ok(())
    }

    /// The fold state of every customer exposed to a campaign, with the registered messages
    /// they touched: what a campaign's lift reads.
    async fn exposed_customer_states(&self, tenant: &str, campaign_id: &str) -> Result<(Vec<(String, touchstone_core::fold::CustomerState)>, Messages), ApiError> {
        let states = self.reads.exposed_customer_states(tenant, campaign_id).await?;
        let hashes: std::collections::BTreeSet<&str> = states.iter().flat_map(|(_, state)| state.touches()).map(|touch| touch.msg_hash.as_str()).collect();
        let hashes: Vec<String> = hashes.into_iter().map(str::to_owned).collect();
        let messages = self.reads.messages(tenant, &hashes).await?;
        Ok((states, messages))
    }

    async fn config(&self, tenant: &str) -> Result<TenantConfig, ApiError> {
        Ok(self.configs.tenant_config(tenant).await?)
    }

    async fn cells(&self, tenant: &str, range: Range) -> Result<Cells, ApiError> {
        Ok(range::cells(self.reads.as_ref(), tenant, range).await?)
    }

    /// The registered messages among those the cells mention.
    async fn messages(&self, tenant: &str, cells: &Cells) -> Result<Messages, ApiError> {
        Ok(self.reads.messages(tenant, &report::referenced_messages(cells)).await?)
    }

    async fn campaign_cells(
        &self,
        tenant: &str,
        campaign_id: Option<&str>,
        kinds: CellKinds,
        range: Range,
    ) -> Result<BTreeMap<String, CampaignCells>, ApiError> {
        Ok(range::campaign_cells(self.reads.as_ref(), tenant, campaign_id, kinds, range).await?)
    }

    /// NOT_FOUND unless the tenant ever had `campaign_id`'s counters (a typo should not
    /// read as a campaign that did nothing).
    async fn known_campaign(&self, tenant: &str, campaign_id: &str) -> Result<(), ApiError> {
        let (from, to) = (touchstone_core::validate::MIN_TS, touchstone_core::validate::MAX_TS);
        let ever = self.reads.campaign_rollups(tenant, Some(campaign_id), CellKinds::Stats, touchstone_core::rollup::Granularity::Month, from, to).await?;
        if ever.is_empty() {
            let message = format!("tenant {tenant:?} has no campaign {campaign_id:?} (no message of it was registered)");
            return Err(ApiError::not_found(Reason::campaign_not_found(tenant, campaign_id), message));
        }
        Ok(())
    }

    /// Per campaign over a range (only `campaign_id` when given), by campaign id.
    async fn campaigns(
        &self,
        config: &TenantConfig,
        campaign_id: Option<&str>,
        range: Range,
    ) -> Result<BTreeMap<String, (u32, Activity)>, ApiError> {
        let cells = self.campaign_cells(&config.tenant, campaign_id, CellKinds::Stats, range).await?;
        Ok(report::campaign_activity(&cells, config))
    }
}

/// A series' time zone (UTC when empty) and its local days: the range asked for, else the
/// last days up to now, as [`report::series_range`] bounds them.
fn series_days(range: Option<pb::TimeRange>, time_zone: String) -> Result<(String, Vec<report::LocalDay>), ApiError> {
    let time_zone = if time_zone.is_empty() { "UTC".to_owned() } else { time_zone };
    let tz: Tz = time_zone
        .parse()
        .map_err(|_| ApiError::bad_field("time_zone", format!("unknown time zone {time_zone:?}; use an IANA name such as Europe/Berlin")))?;
    let asked = match range {
        Some(pb::TimeRange { from_ms: None, to_ms: None }) | None => None,
        Some(range) => Some(Range::from_pb(Some(range))?).map(|range| (range.from, range.to)),
    };
    let (from, to) = report::series_range(asked, chrono::Utc::now().timestamp_millis()).map_err(|message| ApiError::bad_field("range", message))?;
    let days = report::local_days(tz, from, to);
    Ok((time_zone, days))
}

/// The tenant's goal of that id, or NOT_FOUND naming both.
fn saved_goal<'a>(config: &'a TenantConfig, goal_id: &str) -> Result<&'a Goal, ApiError> {
    config.goal(goal_id).ok_or_else(|| ApiError::not_found(Reason::goal_not_found(&config.tenant, goal_id), format!("tenant {:?} has no goal {goal_id:?}", config.tenant)))
}

/// A request's model: last touch when unset, INVALID_ARGUMENT when unknown.
fn model_or_last_touch(value: i32) -> Result<models::Model, ApiError> {
    if value == i32::from(pb::AttributionModel::Unspecified) {
        return Ok(models::Model::LastTouch);
    }
    model_from_pb(value).ok_or_else(|| ApiError::bad_field("model", format!("unknown attribution model {value}")))
}

/// Every model's split of one conversion, values in micros as reports print them.
fn model_credits(fact: &attribution::ConversionFact, touches: &[Touch], messages: &Messages, config: &TenantConfig) -> Vec<pb::ModelCredit> {
    let unit = config.goal(&fact.goal_id).map_or(1, Goal::micros_per_unit);
    let units = i128::from(fact.value_micros / unit);
    reports::model_credits_pb(models::credit_models(fact, units, touches, messages, config), messages, unit)
}

#[tonic::async_trait]
impl QueryService for QueryApi {
    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, campaign_id = %request.get_ref().campaign_id))]
    async fn get_campaign_stats(&self, request: Request<pb::CampaignStatsRequest>) -> Result<Response<pb::CampaignStats>, Status> {
        let pb::CampaignStatsRequest { tenant, campaign_id, range } = valid(request)?;
        self.existing(&tenant).await?;
        let range = Range::from_pb(range)?;
        let config = self.config(&tenant).await?;
        let campaigns = self.campaigns(&config, Some(&campaign_id), range).await?;
        let Some((messages, activity)) = campaigns.get(&campaign_id).cloned() else {
            // Nothing in the range: zeros for a campaign the tenant has, NOT_FOUND otherwise.
            self.known_campaign(&tenant, &campaign_id).await?;
            return Ok(Response::new(reports::campaign_stats(campaign_id, Default::default(), &Default::default(), &config)));
        };
        Ok(Response::new(reports::campaign_stats(campaign_id, messages, &activity, &config)))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn list_campaigns(&self, request: Request<pb::ListCampaignsRequest>) -> Result<Response<pb::CampaignList>, Status> {
        let pb::ListCampaignsRequest { tenant, range } = valid(request)?;
        self.existing(&tenant).await?;
        let range = Range::from_pb(range)?;
        let config = self.config(&tenant).await?;
        let campaigns = self.campaigns(&config, None, range).await?;
        let totals = reports::campaign_totals_pb(report::campaign_totals(&campaigns));
        let campaigns = campaigns
            .into_iter()
            .map(|(campaign_id, (messages, activity))| reports::campaign_stats(campaign_id, messages, &activity, &config))
            .collect();
        Ok(Response::new(pb::CampaignList { campaigns, totals: Some(totals), units: Some(reports::report_units(&config)) }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn list_message_stats(&self, request: Request<pb::ListMessageStatsRequest>) -> Result<Response<pb::MessageStatsList>, Status> {
        let pb::ListMessageStatsRequest { tenant, range, campaign_id } = valid(request)?;
        self.existing(&tenant).await?;
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
                    touches: Some(reports::touch_counts(&activity)),
                    event_hits: reports::event_hits(&activity),
                    goals: reports::goal_results(&activity, &config),
                    msg_hash,
                })
            })
            .collect();
        Ok(Response::new(pb::MessageStatsList { messages: rows, units: Some(reports::report_units(&config)) }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn get_goal_kpis(&self, request: Request<pb::GoalKpisRequest>) -> Result<Response<pb::GoalKpisReply>, Status> {
        let pb::GoalKpisRequest { tenant, range, goal_id, model } = valid(request)?;
        let model = model_or_last_touch(model)?;
        self.existing(&tenant).await?;
        let range = Range::from_pb(range)?;
        let config = self.config(&tenant).await?;
        if let Some(goal_id) = &goal_id {
            saved_goal(&config, goal_id)?;
        }
        // Under another model than last touch, the contributions need the model shifts too.
        let kinds = if model == models::Model::LastTouch { CellKinds::Conversions } else { CellKinds::Credit };
        let cells = self.campaign_cells(&tenant, None, kinds, range).await?;
        let goals = report::goal_kpis(&cells, &config)
            .into_iter()
            .filter(|kpi| goal_id.as_ref().is_none_or(|wanted| *wanted == kpi.goal_id))
            .map(|kpi| {
                let credit = match model {
                    // Last touch's contributions are the KPIs' own: no second pass over the cells.
                    models::Model::LastTouch => models::last_touch_credit(&kpi),
                    model => models::goal_credit_by_campaign(&cells, &kpi.goal_id, model),
                };
                reports::goal_kpis_pb(kpi, credit)
            })
            .collect();
        Ok(Response::new(pb::GoalKpisReply { goals, units: Some(reports::report_units(&config)), model: model_to_pb(model).into() }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, goal_id = %request.get_ref().goal_id))]
    async fn get_goal_series(&self, request: Request<pb::GoalSeriesRequest>) -> Result<Response<pb::GoalSeries>, Status> {
        let pb::GoalSeriesRequest { tenant, goal_id, range, time_zone } = valid(request)?;
        self.existing(&tenant).await?;
        let (time_zone, days) = series_days(range, time_zone)?;
        let config = self.config(&tenant).await?;
        saved_goal(&config, &goal_id)?;
        let ranges: Vec<Range> = days.iter().map(|day| Range { from: day.from, to: day.to }).collect();
        let cells_per_day =
            range::campaign_cells_per_range(self.reads.as_ref(), &tenant, None, CellKinds::Conversions, &ranges).await.map_err(ApiError::from)?;
        let mut points = Vec::with_capacity(days.len());
        for (day, cells) in days.into_iter().zip(cells_per_day) {
            points.push(reports::goal_series_point(day, report::goal_totals(&cells, &goal_id)));
        }
        Ok(Response::new(pb::GoalSeries { goal_id, time_zone, points }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, campaign_id = %request.get_ref().campaign_id))]
    async fn get_campaign_series(&self, request: Request<pb::CampaignSeriesRequest>) -> Result<Response<pb::CampaignSeries>, Status> {
        let pb::CampaignSeriesRequest { tenant, campaign_id, range, time_zone } = valid(request)?;
        self.existing(&tenant).await?;
        let (time_zone, days) = series_days(range, time_zone)?;
        let config = self.config(&tenant).await?;
        let ranges: Vec<Range> = days.iter().map(|day| Range { from: day.from, to: day.to }).collect();
        let cells_per_day =
            range::campaign_cells_per_range(self.reads.as_ref(), &tenant, Some(&campaign_id), CellKinds::Stats, &ranges).await.map_err(ApiError::from)?;
        if cells_per_day.iter().all(CampaignCells::is_empty) {
            self.known_campaign(&tenant, &campaign_id).await?;
        }
        let mut points = Vec::with_capacity(days.len());
        for (day, cells) in days.into_iter().zip(cells_per_day) {
            let (messages, activity) = report::one_campaign_activity(&cells, &config).unwrap_or_default();
            points.push(reports::campaign_series_point(day, reports::campaign_stats(campaign_id.clone(), messages, &activity, &config)));
        }
        Ok(Response::new(pb::CampaignSeries { campaign_id, time_zone, points }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn get_badge_timeline(&self, request: Request<pb::BadgeTimelineRequest>) -> Result<Response<pb::BadgeTimeline>, Status> {
        let request = valid(request)?;
        self.existing(&request.tenant).await?;
        let page = crate::badges::timeline_page(self.badges.as_ref(), request, crate::badges::now_ms()).await?;
        Ok(Response::new(page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn get_trophy_case(&self, request: Request<pb::TrophyCaseRequest>) -> Result<Response<pb::TrophyCase>, Status> {
        let request = valid(request)?;
        self.existing(&request.tenant).await?;
        let case = crate::badges::trophy_case(self.configs.as_ref(), self.badges.as_ref(), request, crate::badges::now_ms()).await?;
        Ok(Response::new(case))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, badge_id = %request.get_ref().badge_id))]
    async fn get_badge_stats(&self, request: Request<pb::BadgeStatsRequest>) -> Result<Response<pb::BadgeStats>, Status> {
        let request = valid(request)?;
        self.existing(&request.tenant).await?;
        let badge_id = request.badge_id.clone();
        let now = crate::badges::now_ms();
        let stats = crate::badges::badge_stats(self.badges.as_ref(), request, now).await?;
        let days = stats
            .days
            .into_iter()
            .map(|day| pb::BadgeDayStats {
                day_ms: day.day,
                date: chrono::DateTime::from_timestamp_millis(day.day).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
                earned: day.earned,
                revoked: day.revoked,
                expired: day.expired,
                holders_at_end: day.holders_at_end,
            })
            .collect();
        Ok(Response::new(pb::BadgeStats {
            badge_id,
            earned: stats.earned,
            revoked: stats.revoked,
            expired: stats.expired,
            holders_now: stats.holders_now,
            now_ms: now,
            days,
        }))
    }

    type WatchBadgeEventsStream = ReceiverStream<Result<pb::BadgeFeedItem, Status>>;

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn watch_badge_events(&self, request: Request<pb::WatchBadgeEventsRequest>) -> Result<Response<Self::WatchBadgeEventsStream>, Status> {
        let request = valid(request)?;
        self.existing(&request.tenant).await?;
        let start = crate::badges::feed_start(self.badges.as_ref(), &request).await?;
        let (sink, stream) = mpsc::channel(64);
        let store = Arc::clone(&self.badges);
        let pb::WatchBadgeEventsRequest { tenant, badge_id, .. } = request;
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move { crate::badges::follow_feed(store.as_ref(), tenant, badge_id, start, sink, shutdown).await }.in_current_span());
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    /// From rollups, as every other report: each model's credit is last touch's plus the
    /// model's shifts, counted by attribution with each conversion.
    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn get_model_report(&self, request: Request<pb::ModelReportRequest>) -> Result<Response<pb::ModelReport>, Status> {
        let pb::ModelReportRequest { tenant, range, goal_id, by_message, campaign_id } = valid(request)?;
        if by_message && campaign_id.is_some() {
            return Err(ApiError::bad_field("campaign_id", "campaign_id narrows a report per campaign; per message, leave it unset").into());
        }
        self.existing(&tenant).await?;
        let range = Range::from_pb(range)?;
        let config = self.config(&tenant).await?;
        if let Some(goal_id) = &goal_id {
            saved_goal(&config, goal_id)?;
        }
        let goal = goal_id.as_deref();
        let rows = if by_message {
            models::by_message(&self.cells(&tenant, range).await?, &config, goal)
        } else {
            models::by_campaign(&self.campaign_cells(&tenant, campaign_id.as_deref(), CellKinds::Credit, range).await?, &config, goal)
        };
        let order = |goal_id: &str| config.goals.iter().position(|goal| goal.id == goal_id).unwrap_or(usize::MAX);
        let mut rows: Vec<_> = rows.into_iter().collect();
        rows.sort_by(|((a, goal_a), _), ((b, goal_b), _)| a.cmp(b).then(order(goal_a).cmp(&order(goal_b))));
        let rows = rows
            .into_iter()
            .map(|((subject, goal_id), totals)| {
                let (campaign_id, msg_hash) = if by_message { (String::new(), subject) } else { (subject, String::new()) };
                let models = totals
                    .into_iter()
                    .map(|(model, totals)| pb::ModelFigures {
                        model: model_to_pb(model).into(),
                        conversions_ppm: u64::try_from(totals.ppm).unwrap_or(0),
                        value: Some(decimal(totals.value_micros)),
                    })
                    .collect();
                pb::ModelRow { campaign_id, msg_hash, goal_id, models }
            })
            .collect();
        Ok(Response::new(pb::ModelReport { rows, units: Some(reports::report_units(&config)) }))
    }

    /// Reads the states of the campaign's exposed customers only.
    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, campaign_id = %request.get_ref().campaign_id))]
    async fn get_lift(&self, request: Request<pb::LiftRequest>) -> Result<Response<pb::LiftReport>, Status> {
        let pb::LiftRequest { tenant, campaign_id, goal_id, range } = valid(request)?;
        self.existing(&tenant).await?;
        let range = Range::from_pb(range)?;
        let config = self.config(&tenant).await?;
        let goal_id = goal_id.unwrap_or_else(|| touchstone_core::config::DEFAULT_GOAL_ID.to_owned());
        let goal = saved_goal(&config, &goal_id)?;
        let (states, messages) = self.exposed_customer_states(&tenant, &campaign_id).await?;
        let report = lift::campaign_lift(states.iter().map(|(_, state)| state), &campaign_id, goal, range.from, range.to, &messages, &config);
        Ok(Response::new(reports::lift_pb(campaign_id, goal_id, report, reports::report_units(&config))))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, campaign_id = %request.get_ref().campaign_id))]
    async fn get_holdout(&self, request: Request<pb::HoldoutRequest>) -> Result<Response<pb::HoldoutReply>, Status> {
        let pb::HoldoutRequest { tenant, campaign_id, customer_id } = valid(request)?;
        self.existing(&tenant).await?;
        let bp = self.config(&tenant).await?.holdouts.bp(&campaign_id);
        let bucket = lift::holdout_bucket(&tenant, &campaign_id, &customer_id);
        // Below 10,000: fits.
        Ok(Response::new(pb::HoldoutReply { held_out: bucket < u64::from(bp), bp, bucket: bucket as u32 }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, goal_id = %request.get_ref().goal_id))]
    async fn explain_conversion(&self, request: Request<pb::ExplainConversionRequest>) -> Result<Response<pb::ConversionExplanation>, Status> {
        let pb::ExplainConversionRequest { tenant, goal_id, conversion_key } = valid(request)?;
        self.existing(&tenant).await?;
        let config = self.config(&tenant).await?;
        // A goal that does not exist is said as such, not as a conversion missing from it.
        saved_goal(&config, &goal_id)?;
        let conversion = self
            .reads
            .conversion(&tenant, &goal_id, &conversion_key)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                let reason = Reason::new("CONVERSION_NOT_FOUND")
                    .with("tenant", tenant.as_str())
                    .with("goal_id", goal_id.as_str())
                    .with("conversion_key", conversion_key.as_str());
                ApiError::not_found(
                    reason,
                    format!("no conversion of goal {goal_id:?} with key {conversion_key:?} (an order_id or an event's event_id) for tenant {tenant:?}"),
                )
            })?;
        let fact = conversion.fact;
        let (touches, messages) = credit_inputs(self.reads.as_ref(), &config, &fact).await.map_err(ApiError::from)?;
        let explanation = attribution::explain(&fact, &touches, &messages, &config);
        let models = model_credits(&fact, &touches, &messages, &config);
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
                verdict: reports::verdict_pb(candidate.verdict).into(),
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
            explicit_status: reports::explicit_status_text(explanation.explicit).to_owned(),
            rule: rule_to_pb(explanation.credit.rule).into(),
            credited_msg_hash: credited,
            credited_campaign_id,
            decision: explanation.decision,
            candidates,
            models,
        }))
    }
}
