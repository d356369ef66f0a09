//! `AttributionService`: how far the worker has got (and what it set aside), and
//! recomputes on request.

use crate::engine::{describe, now_ms};
use std::sync::Arc;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_server::AttributionService;
use touchstone_proto::validate::valid;
use touchstone_store::{IngestLog, LOG_SHARDS, SetAside};

/// Set-aside entries listed per shard in a status reply.
const RECENTLY_SET_ASIDE: usize = 10;

pub struct AttributionApi {
    log: Arc<dyn IngestLog>,
    wake: Arc<Notify>,
}

impl AttributionApi {
    pub fn new(log: Arc<dyn IngestLog>, wake: Arc<Notify>) -> AttributionApi {
        AttributionApi { log, wake }
    }
}

fn set_aside_pb(set_aside: SetAside) -> pb::SetAsideEntry {
    let SetAside { entry, reason, set_aside_at } = set_aside;
    pb::SetAsideEntry {
        seq: entry.seq,
        appended_at_ms: entry.appended_at,
        set_aside_at_ms: set_aside_at,
        entry: describe(&entry.payload),
        reason,
    }
}

#[tonic::async_trait]
impl AttributionService for AttributionApi {
    #[tracing::instrument(skip_all)]
    async fn get_status(&self, request: Request<pb::GetStatusRequest>) -> Result<Response<pb::AttributionStatus>, Status> {
        let caller = touchstone_proto::auth::principal(&request);
        let pb::GetStatusRequest {} = valid(request)?;
        // A tenant's key sees only its own set-aside entries; the counts stay shard-wide.
        let visible = |set_aside: &SetAside| {
            caller.as_ref().is_none_or(|caller| set_aside.entry.payload.tenant().is_some_and(|tenant| caller.may_touch(tenant)))
        };
        let mut reply = pb::AttributionStatus::default();
        let mut oldest_pending_at: Option<i64> = None;
        let now = now_ms();
        for shard in 0..LOG_SHARDS {
            let status = self.log.log_status(shard).await.map_err(ApiError::from)?;
            reply.log_head += status.head;
            reply.processed += status.processed;
            reply.pending += status.head.saturating_sub(status.processed);
            reply.set_aside += status.set_aside;
            if let Some(at) = status.oldest_pending_at {
                oldest_pending_at = Some(oldest_pending_at.map_or(at, |oldest| oldest.min(at)));
            }
            let recently_set_aside = match status.set_aside {
                0 => Vec::new(),
                _ => self.log.set_aside(shard, RECENTLY_SET_ASIDE).await.map_err(ApiError::from)?,
            };
            reply.shards.push(pb::ShardStatus {
                shard,
                head: status.head,
                processed: status.processed,
                set_aside: status.set_aside,
                recently_set_aside: recently_set_aside.into_iter().filter(visible).map(set_aside_pb).collect(),
                lag_ms: status.oldest_pending_at.map_or(0, |at| (now - at).max(0)),
            });
        }
        reply.lag_ms = oldest_pending_at.map_or(0, |at| (now - at).max(0));
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn recompute(&self, request: Request<pb::RecomputeRequest>) -> Result<Response<pb::RecomputeReply>, Status> {
        let pb::RecomputeRequest { tenant } = valid(request)?;
        let mark = self.log.append_recompute(&tenant).await.map_err(ApiError::from)?;
        self.wake.notify_one();
        Ok(Response::new(pb::RecomputeReply { log_position: mark.seq, shard: mark.shard }))
    }
}
