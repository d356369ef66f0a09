//! `IngestService`: batch RPCs per record kind and one client stream for bulk loads.
//!
//! Each record is decoded and validated on its own: a bad one is listed in the reply's
//! `rejected` with its index and reason, and the rest of the batch is stored. Stored means
//! durable: the reply is sent after the store has made the batch survive a crash, so a
//! client that got no reply simply retries, and dedup makes the retry harmless.

use crate::backlog::Backlog;
use crate::now_ms;
use std::sync::Arc;
use tokio::sync::{Notify, watch};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use touchstone_core::model::Record;
use touchstone_core::validate::{MAX_ID_LEN, validate};
use touchstone_proto::convert::ConvertError;
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::ingest_service_server::IngestService;
use touchstone_proto::validate::{Validate, valid};
use touchstone_core::badges::BadgeBook;
use touchstone_core::error::{ErrorKind, Reason};
use touchstone_core::model::{BadgeAction, BadgeEvent, BadgeSource};
use touchstone_proto::convert::badge_source_from_pb;
use touchstone_store::{BadgeStore, IngestLog, IngestOutcome, TraceParent, log_shard};

pub use touchstone_proto::validate::MAX_BATCH;

/// How long an `IngestStream` may go without a chunk before the server closes it.
pub const STREAM_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct IngestApi {
    log: Arc<dyn IngestLog>,
    /// Badge definitions, which `IssueBadge` and `RevokeBadge` check the badge against.
    badges: Arc<dyn BadgeStore>,
    /// Wakes an in-process attribution worker when something new is logged.
    wake: Arc<Notify>,
    /// Turns true when the server shuts down: open streams stop taking chunks.
    shutdown: watch::Receiver<bool>,
    /// How long a stream may go without a chunk before it is closed.
    stream_idle: std::time::Duration,
    /// Records per second each tenant may send; `None`: no limit.
    rates: Option<Arc<crate::rate::TenantRates>>,
    /// Replies wait while attribution is this far behind; `None`: replies never wait.
    backlog: Option<Backlog>,
}

impl IngestApi {
    pub fn new(log: Arc<dyn IngestLog>, badges: Arc<dyn BadgeStore>, wake: Arc<Notify>) -> IngestApi {
        IngestApi { log, badges, wake, shutdown: watch::channel(false).1, stream_idle: STREAM_IDLE_TIMEOUT, rates: None, backlog: None }
    }

    /// Holds replies while attribution is more than `backlog` behind (see
    /// [`Backlog`]).
    pub fn with_backlog(mut self, backlog: Backlog) -> IngestApi {
        self.backlog = Some(backlog);
        self
    }

    /// Limits each tenant to `per_second` records a second (0: no limit).
    pub fn with_tenant_rate(mut self, per_second: u64) -> IngestApi {
        self.rates = (per_second > 0).then(|| Arc::new(crate::rate::TenantRates::new(per_second)));
        self
    }

    /// Closes a stream that sends no chunk for `idle`.
    pub fn with_stream_idle(mut self, idle: std::time::Duration) -> IngestApi {
        self.stream_idle = idle;
        self
    }

    /// Ends open `IngestStream` calls when `shutdown` turns true.
    pub fn with_shutdown(mut self, shutdown: watch::Receiver<bool>) -> IngestApi {
        self.shutdown = shutdown;
        self
    }

    /// `IssueBadge` and `RevokeBadge`: one badge event of a defined badge, stored like any
    /// record (first arrival of its event id stands).
    async fn issue(&self, request: pb::IssueBadgeRequest, action: BadgeAction, trace: Option<TraceParent>) -> Result<pb::IssueBadgeReply, ApiError> {
        let pb::IssueBadgeRequest { tenant, event_id, customer_id, badge_id, ts, actor, reason, source } = request;
        let source = match source {
            0 => BadgeSource::Api,
            source => badge_source_from_pb(source)?,
        };
        let book: BadgeBook = self.badges.badge_book(&tenant).await?;
        issuable(&book, &badge_id, source)?;
        let reason = Some(match reason {
            Some(reason) if !reason.is_empty() => format!("{reason} (by {actor})"),
            _ => format!("by {actor}"),
        });
        let ts = ts.unwrap_or_else(now_ms);
        let holdings = self.badges.customer_holdings(&tenant, &customer_id).await?;
        let was_held = holdings.get(&badge_id).is_some_and(|intervals| intervals.iter().any(|&(from, to)| from <= ts && ts < to));
        let event = BadgeEvent { tenant, event_id, customer_id, badge_id, action, ts, source, reason };
        let record = Record::Badge(event.clone());
        validate(&record).map_err(ConvertError::from)?;
        let outcome = self.log.ingest_traced(vec![record], trace).await?;
        self.wake.notify_one();
        let duplicate = outcome.first() == Some(&IngestOutcome::Duplicate);
        tracing::info!(badge_id = %event.badge_id, action = %action, duplicate, was_held, "badge event issued");
        Ok(pb::IssueBadgeReply { event: Some(event.into()), duplicate, was_held })
    }

    /// Decodes, validates and stores one batch (its size already checked at the edge);
    /// `first_index` numbers its items in the reply; its log entries carry the call's trace.
    /// `screen` may refuse a valid record for what the call path allows (see [`issuable`]).
    async fn ingest<T: WireRecord>(
        &self,
        items: Vec<T>,
        first_index: u64,
        trace: Option<TraceParent>,
        reply: &mut pb::IngestReply,
        screen: &(dyn Fn(&Record) -> Result<(), ApiError> + Sync),
    ) -> Result<(), ApiError> {
        let mut records = Vec::with_capacity(items.len());
        for (index, item) in (first_index..).zip(items) {
            let event_id = cut(item.wire_id());
            let checked = item
                .decode()
                .and_then(|record| validate(&record).map(|()| record).map_err(ConvertError::from))
                .map_err(ApiError::from)
                .and_then(|record| screen(&record).map(|()| record));
            match checked {
                Ok(record) => records.push(record),
                Err(err) => {
                    metrics::counter!("touchstone_records_rejected_total").increment(1);
                    let code = err.code() as i32;
                    reply.rejected.push(pb::Rejection { index, event_id, reason: err.to_string(), code });
                }
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        if let Some(rates) = &self.rates {
            let mut counts: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
            for record in &records {
                *counts.entry(record.tenant()).or_default() += 1;
            }
            if let Err((tenant, wait)) = rates.take(&counts) {
                metrics::counter!("touchstone_records_rate_limited_total").increment(records.len() as u64);
                // The wait as said and as RetryInfo carries it: tenths of a second, rounded up.
                let retry_after = std::time::Duration::from_millis(((wait * 10.0).ceil().max(1.0) as u64) * 100);
                let message = format!(
                    "tenant {tenant:?} is over its ingest rate; nothing of this call was stored: retry in {:.1} s",
                    retry_after.as_secs_f64()
                );
                return Err(ApiError::RateLimited { tenant: tenant.to_owned(), message, retry_after });
            }
        }
        // The shards this call writes to, which its reply may wait on.
        let shards: std::collections::BTreeSet<u32> = match self.backlog {
            Some(_) => records.iter().map(|record| log_shard(record.tenant())).collect(),
            None => Default::default(),
        };
        let outcomes = self.log.ingest_traced(records, trace).await?;
        let (accepted_before, duplicates_before) = (reply.accepted, reply.duplicates);
        for outcome in outcomes {
            match outcome {
                IngestOutcome::Accepted => reply.accepted += 1,
                IngestOutcome::Duplicate => reply.duplicates += 1,
            }
        }
        metrics::counter!("touchstone_records_accepted_total").increment(reply.accepted - accepted_before);
        metrics::counter!("touchstone_records_duplicate_total").increment(reply.duplicates - duplicates_before);
        self.wake.notify_one();
        if let Some(backlog) = &self.backlog {
            backlog.hold(&self.log, &shards).await;
        }
        Ok(())
    }

    async fn batch<T: WireRecord>(&self, items: Vec<T>, trace: Option<TraceParent>) -> Result<Response<pb::IngestReply>, Status> {
        self.screened_batch(items, trace, &|_| Ok(())).await
    }

    async fn screened_batch<T: WireRecord>(
        &self,
        items: Vec<T>,
        trace: Option<TraceParent>,
        screen: &(dyn Fn(&Record) -> Result<(), ApiError> + Sync),
    ) -> Result<Response<pb::IngestReply>, Status> {
        let mut reply = pb::IngestReply::default();
        self.ingest(items, 0, trace, &mut reply, screen).await?;
        log_reply(&reply);
        Ok(Response::new(reply))
    }
}

/// Whether a badge event may be issued now (`IssueBadge`, `RevokeBadge`, `RecordBadgeEvents`
/// and so `badges import`): the badge is defined, and the source is not one only rules
/// write. The record stream (`IngestStream`, `import records`) carries history from other
/// systems as it happened, every source and badge included, as the record formats allow.
fn issuable(book: &BadgeBook, badge_id: &str, source: BadgeSource) -> Result<(), ApiError> {
    if matches!(source, BadgeSource::Rule | BadgeSource::RetroEarn) {
        return Err(ApiError::bad_field("source", format!("source {source} is the rules' own; issue with API, DIRECT_ISSUE, BULK_IMPORT or MIGRATION")));
    }
    if book.get(badge_id).is_none() {
        return Err(ApiError::not_found(
            Reason::badge_not_defined(&book.tenant, badge_id),
            format!("badge {badge_id:?} is not defined for tenant {:?}; define it first (config.json's \"badges\" or SaveBadge)", book.tenant),
        ));
    }
    Ok(())
}

/// The trace context the server's trace layer gave the call, if any.
fn call_trace<T>(request: &Request<T>) -> Option<TraceParent> {
    request.extensions().get::<TraceParent>().copied()
}

/// What a stream that ends early had stored: what its caller needs to send the rest.
fn stored_so_far(records: u64, reply: &pb::IngestReply) -> String {
    format!("the first {records} records of this stream were stored ({} accepted, {} duplicates)", reply.accepted, reply.duplicates)
}

/// An id echoed in a rejection, cut to the longest valid id: a client that sent 70 KB
/// does not get them back.
fn cut(mut id: String) -> String {
    if id.len() > MAX_ID_LEN {
        let end = (0..=MAX_ID_LEN).rev().find(|&end| id.is_char_boundary(end)).unwrap_or(0);
        id.truncate(end);
    }
    id
}

fn log_reply(reply: &pb::IngestReply) {
    tracing::debug!(
        accepted = reply.accepted,
        duplicates = reply.duplicates,
        rejected = reply.rejected.len(),
        "ingested"
    );
}

/// A record as it arrives on the wire.
trait WireRecord {
    /// The id a rejection names: `event_id`, or `msg_hash` for messages.
    fn wire_id(&self) -> String;
    fn decode(self) -> Result<Record, ConvertError>;
}

impl WireRecord for pb::Message {
    fn wire_id(&self) -> String {
        self.msg_hash.clone()
    }
    fn decode(self) -> Result<Record, ConvertError> {
        Ok(Record::Message(self.try_into()?))
    }
}

impl WireRecord for pb::Touch {
    fn wire_id(&self) -> String {
        self.event_id.clone()
    }
    fn decode(self) -> Result<Record, ConvertError> {
        Ok(Record::Touch(self.try_into()?))
    }
}

impl WireRecord for pb::AppEvent {
    fn wire_id(&self) -> String {
        self.event_id.clone()
    }
    fn decode(self) -> Result<Record, ConvertError> {
        Ok(Record::Event(self.try_into()?))
    }
}

impl WireRecord for pb::OrderRecord {
    fn wire_id(&self) -> String {
        self.event_id.clone()
    }
    fn decode(self) -> Result<Record, ConvertError> {
        Ok(Record::Order(self.into()))
    }
}

impl WireRecord for pb::BadgeEvent {
    fn wire_id(&self) -> String {
        self.event_id.clone()
    }
    fn decode(self) -> Result<Record, ConvertError> {
        Ok(Record::Badge(self.try_into()?))
    }
}

impl WireRecord for pb::Record {
    fn wire_id(&self) -> String {
        match &self.kind {
            Some(pb::record::Kind::Message(m)) => m.wire_id(),
            Some(pb::record::Kind::Touch(t)) => t.wire_id(),
            Some(pb::record::Kind::Event(e)) => e.wire_id(),
            Some(pb::record::Kind::Order(o)) => o.wire_id(),
            Some(pb::record::Kind::Badge(b)) => b.wire_id(),
            None => String::new(),
        }
    }
    fn decode(self) -> Result<Record, ConvertError> {
        self.try_into()
    }
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    #[tracing::instrument(skip_all, fields(records = request.get_ref().messages.len()))]
    async fn register_messages(&self, request: Request<pb::RegisterMessagesRequest>) -> Result<Response<pb::IngestReply>, Status> {
        let trace = call_trace(&request);
        self.batch(valid(request)?.messages, trace).await
    }

    #[tracing::instrument(skip_all, fields(records = request.get_ref().touches.len()))]
    async fn record_touches(&self, request: Request<pb::RecordTouchesRequest>) -> Result<Response<pb::IngestReply>, Status> {
        let trace = call_trace(&request);
        self.batch(valid(request)?.touches, trace).await
    }

    #[tracing::instrument(skip_all, fields(records = request.get_ref().events.len()))]
    async fn post_events(&self, request: Request<pb::PostEventsRequest>) -> Result<Response<pb::IngestReply>, Status> {
        let trace = call_trace(&request);
        self.batch(valid(request)?.events, trace).await
    }

    #[tracing::instrument(skip_all, fields(records = request.get_ref().orders.len()))]
    async fn record_orders(&self, request: Request<pb::RecordOrdersRequest>) -> Result<Response<pb::IngestReply>, Status> {
        let trace = call_trace(&request);
        self.batch(valid(request)?.orders, trace).await
    }

    #[tracing::instrument(skip_all, fields(records = request.get_ref().badges.len()))]
    async fn record_badge_events(&self, request: Request<pb::RecordBadgeEventsRequest>) -> Result<Response<pb::IngestReply>, Status> {
        let trace = call_trace(&request);
        let badges = valid(request)?.badges;
        let mut books = std::collections::HashMap::new();
        for badge in &badges {
            // (An invalid tenant is refused by validation, before the screen reads its book.)
            let valid_tenant = !badge.tenant.is_empty() && badge.tenant.len() <= MAX_ID_LEN;
            if valid_tenant && !books.contains_key(&badge.tenant) {
                books.insert(badge.tenant.clone(), self.badges.badge_book(&badge.tenant).await.map_err(ApiError::from)?);
            }
        }
        let screen = |record: &Record| match record {
            Record::Badge(event) => books.get(&event.tenant).map_or(Ok(()), |book| issuable(book, &event.badge_id, event.source)),
            _ => Ok(()),
        };
        self.screened_batch(badges, trace, &screen).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, badge_id = %request.get_ref().badge_id))]
    async fn issue_badge(&self, request: Request<pb::IssueBadgeRequest>) -> Result<Response<pb::IssueBadgeReply>, Status> {
        let trace = call_trace(&request);
        Ok(Response::new(self.issue(valid(request)?, BadgeAction::Earned, trace).await?))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, badge_id = %request.get_ref().badge_id))]
    async fn revoke_badge(&self, request: Request<pb::IssueBadgeRequest>) -> Result<Response<pb::IssueBadgeReply>, Status> {
        let trace = call_trace(&request);
        Ok(Response::new(self.issue(valid(request)?, BadgeAction::Revoked, trace).await?))
    }

    /// Chunks are stored as they come; indexes in the reply count records across the whole
    /// stream. If the stream breaks, the chunks already stored stay stored.
    #[tracing::instrument(skip_all)]
    async fn ingest_stream(&self, request: Request<Streaming<pb::IngestChunk>>) -> Result<Response<pb::IngestReply>, Status> {
        let caller = touchstone_proto::auth::principal(&request);
        let trace = call_trace(&request);
        let mut stream = request.into_inner();
        let mut reply = pb::IngestReply::default();
        let mut next_index = 0u64;
        let mut shutdown = self.shutdown.clone();
        loop {
            let chunk = tokio::select! {
                chunk = stream.next() => chunk,
                // Shutting down: what was stored stays stored; the caller sends the rest (or
                // everything: records are deduplicated by id) to a server that is up.
                // A stream that sends nothing holds its server's resources for nothing.
                () = tokio::time::sleep(self.stream_idle) => {
                    let message = format!(
                        "no chunk for {:?}: the stream is closed; the first {next_index} records of it were stored \
                         ({} accepted, {} duplicates); send the rest in a new stream",
                        self.stream_idle, reply.accepted, reply.duplicates
                    );
                    let reason = Reason::new("STREAM_IDLE").with("stored_records", next_index.to_string());
                    return Err(touchstone_proto::error::status_with_reason(tonic::Code::DeadlineExceeded, message, reason, Default::default()));
                }
                _ = shutdown.wait_for(|stopping| *stopping) => {
                    let message = format!(
                        "the server is shutting down: {}; send the rest again, or the whole stream (records are deduplicated)",
                        stored_so_far(next_index, &reply)
                    );
                    return Err(ApiError::named(ErrorKind::Unavailable, Reason::shutting_down(), message).into());
                }
            };
            let Some(chunk) = chunk else { break };
            // A chunk over the server's size or memory limits ends the stream; say what the
            // chunks before it stored.
            let chunk = chunk.map_err(|status| match status.code() {
                tonic::Code::ResourceExhausted => Status::with_details(
                    status.code(),
                    format!("{}; {}", status.message(), stored_so_far(next_index, &reply)),
                    status.details().to_vec().into(),
                ),
                _ => status,
            })?;
            // A chunk naming another tenant ends the stream; the chunks before it stay stored.
            touchstone_proto::auth::authorize(caller.as_ref(), &chunk)?;
            chunk.validate().map_err(ApiError::from)?;
            let records = chunk.records;
            let count = records.len() as u64;
            self.ingest(records, next_index, trace, &mut reply, &|_| Ok(())).await.map_err(|error| match error {
                // The caller needs to know what of the stream got in to send the rest.
                ApiError::ResourceExhausted(message) => {
                    ApiError::ResourceExhausted(format!("{message}; {}", stored_so_far(next_index, &reply)))
                }
                ApiError::Named { kind: ErrorKind::ResourceExhausted, reason, message } => {
                    ApiError::Named { kind: ErrorKind::ResourceExhausted, reason, message: format!("{message}; {}", stored_so_far(next_index, &reply)) }
                }
                ApiError::RateLimited { tenant, message, retry_after } => {
                    ApiError::RateLimited { tenant, message: format!("{message}; {}", stored_so_far(next_index, &reply)), retry_after }
                }
                other => other,
            })?;
            next_index += count;
        }
        log_reply(&reply);
        Ok(Response::new(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_ids_are_cut_on_a_char_boundary() {
        assert_eq!(cut("e1".into()), "e1");
        assert_eq!(cut("x".repeat(70_000)).len(), MAX_ID_LEN);
        let wide = "é".repeat(MAX_ID_LEN);
        let echoed = cut(wide);
        assert!(echoed.len() <= MAX_ID_LEN && echoed.chars().all(|c| c == 'é'));
    }
}
