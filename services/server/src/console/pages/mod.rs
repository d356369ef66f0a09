//! The console's pages: each decodes its parameters, calls the query service as an RPC
//! would (with the caller's key), and shapes the reply for its template. Here what every
//! page shares, and the tenants' index; each group of pages in a file of its own.

use super::chart::{self, Mark, Series};
use touchstone_reports::models::model_name;
use super::view::*;
use super::range::date;
use super::params::Params;
use super::{Console, PageError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::Arc;
use touchstone_attribution::AttributionApi;
use touchstone_core::badges::RuleKind;
use touchstone_core::config::{GoalKind, TenantConfig};
use touchstone_core::currency::{format_money, minor_units};
use touchstone_proto::auth::Principal;
use touchstone_proto::convert::{badge_action_from_pb, badge_source_from_pb, channel_from_pb, touch_kind_from_pb};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_server::AttributionService as _;
use touchstone_proto::v1::query_service_server::QueryService as _;

mod campaigns;
mod explain;
mod goals;
mod members;
mod models;

pub use campaigns::{campaign, campaign_lift, campaigns, campaigns_csv};
pub use explain::explain;
pub use goals::goals;
pub use members::members;
pub use models::models;

type Page = Result<Response, PageError>;

/// A request to the query service as the caller.
fn call<T>(message: T, caller: &Option<Principal>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(principal) = caller {
        request.extensions_mut().insert(principal.clone());
    }
    request
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Console {
    async fn nav(&self, tenant: &str, page: &'static str, params: &Params) -> Result<TenantNav, PageError> {
        Ok(TenantNav { tenant: tenant.to_owned(), page, range: self.range(tenant, params).await? })
    }

    async fn config(&self, tenant: &str) -> Result<TenantConfig, PageError> {
        Ok(self.configs.tenant_config(tenant).await?)
    }
}

/// Whether a goal's values are money (orders) or plain numbers (event values).
fn money_goals(config: &TenantConfig) -> HashMap<String, bool> {
    config.goals.iter().map(|goal| (goal.id.clone(), matches!(goal.kind, GoalKind::Order { .. }))).collect()
}

/// A series cut to its last days (an "all time" page, see `RangeView::series`) starts at
/// its first point holding data.
fn from_first_with_data<T>(points: &mut Vec<T>, holds_data: impl Fn(&T) -> bool) {
    let first = points.iter().position(holds_data).unwrap_or(points.len());
    points.drain(..first);
}

fn touches(counts: Option<&pb::TouchCounts>) -> pb::TouchCounts {
    counts.cloned().unwrap_or_default()
}

fn decimal(value: Option<&pb::Decimal>) -> String {
    value.map(|decimal| decimal.value.clone()).unwrap_or_default()
}

fn goal_result<'a>(goals: &'a [pb::GoalResult], goal_id: &str) -> Option<&'a pb::GoalResult> {
    goals.iter().find(|goal| goal.goal_id == goal_id)
}

fn value_f64(decimal: &str) -> f64 {
    decimal.parse().unwrap_or(0.0)
}

pub async fn index(State(console): State<Arc<Console>>, headers: HeaderMap) -> Page {
    let caller = console.caller(&headers)?;
    let tenants: Vec<String> = console
        .configs
        .tenants()
        .await?
        .into_iter()
        .filter(|tenant| caller.as_ref().is_none_or(|principal| principal.may_touch(tenant)))
        .collect();
    let status = AttributionApi::get_status(&console.status, call(pb::GetStatusRequest {}, &caller)).await?.into_inner();
    let shards = status
        .shards
        .into_iter()
        .map(|shard| ShardView {
            shard: shard.shard,
            head: Figure::count(shard.head),
            processed: Figure::count(shard.processed),
            pending: Figure::count(shard.head.saturating_sub(shard.processed)),
            lag: lag_text(shard.lag_ms),
            set_aside: Figure::count(shard.set_aside),
            recent: shard
                .recently_set_aside
                .into_iter()
                .map(|entry| SetAsideView { seq: entry.seq, entry: entry.entry, reason: entry.reason, at: time(entry.set_aside_at_ms) })
                .collect(),
        })
        .collect();
    let lag = lag_text(status.lag_ms);
    let page = IndexPage { tenants, pending: Figure::count(status.pending), lag, set_aside: Figure::count(status.set_aside), shards };
    Ok(html(&page).into_response())
}

fn lag_text(lag_ms: i64) -> String {
    if lag_ms == 0 { "caught up".to_owned() } else { format!("{:.1} s", lag_ms as f64 / 1000.0) }
}

pub async fn tenant_home(Path(tenant): Path<String>) -> Redirect {
    Redirect::to(&format!("/t/{}/campaigns", encode(&tenant)))
}

/// The tenant's goals for a goal picker, and the one asked for (the default goal first).
fn goal_choice(config: &TenantConfig, params: &Params) -> (Vec<String>, String) {
    let goals: Vec<String> = config.goals.iter().map(|goal| goal.id.clone()).collect();
    let goal_id = params.goal.clone().or_else(|| goals.first().cloned()).unwrap_or_default();
    (goals, goal_id)
}
