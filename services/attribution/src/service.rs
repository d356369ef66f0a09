//! `AttributionService`: how far the worker has got, and recomputes on request.

use std::sync::Arc;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_server::AttributionService;
use touchstone_store::{LOG_SHARDS, Store, StoreError};

pub struct AttributionApi {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
}

impl AttributionApi {
    pub fn new(store: Arc<dyn Store>, wake: Arc<Notify>) -> AttributionApi {
        AttributionApi { store, wake }
    }
}

fn storage(err: StoreError) -> Status {
    ApiError::storage(err.is_transient(), err).into()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tonic::async_trait]
impl AttributionService for AttributionApi {
    #[tracing::instrument(skip_all)]
    async fn get_status(&self, _request: Request<pb::GetStatusRequest>) -> Result<Response<pb::AttributionStatus>, Status> {
        let mut reply = pb::AttributionStatus::default();
        let mut oldest_pending_at: Option<i64> = None;
        for shard in 0..LOG_SHARDS {
            let status = self.store.log_status(shard).await.map_err(storage)?;
            reply.log_head += status.head;
            reply.processed += status.processed;
            reply.pending += status.head.saturating_sub(status.processed);
            if let Some(at) = status.oldest_pending_at {
                oldest_pending_at = Some(oldest_pending_at.map_or(at, |oldest| oldest.min(at)));
            }
            reply.shards.push(pb::ShardStatus { shard, head: status.head, processed: status.processed });
        }
        reply.lag_ms = oldest_pending_at.map_or(0, |at| (now_ms() - at).max(0));
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn recompute(&self, request: Request<pb::RecomputeRequest>) -> Result<Response<pb::RecomputeReply>, Status> {
        let pb::RecomputeRequest { tenant } = request.into_inner();
        if tenant.is_empty() {
            return Err(ApiError::InvalidArgument("tenant is required".into()).into());
        }
        let mark = self.store.append_recompute(&tenant).await.map_err(storage)?;
        self.wake.notify_one();
        Ok(Response::new(pb::RecomputeReply { log_position: mark.seq, shard: mark.shard }))
    }
}
