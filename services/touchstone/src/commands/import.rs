//! `touchstone import`: bulk files (docs/behaviour/records-and-config.md) into a running server.
//!
//! - [`config`]: `config.json` through the config service, tenant by tenant.
//! - [`lines`]: JSONL files read line by line into chunks, with line numbers kept for reports.
//! - [`client`]: connecting and error reporting, shared with `report`.
//!
//! A JSONL file goes to the server as one `IngestStream` call; every line the parser or the
//! server refuses is printed to stderr as `FILE:LINE: reason` and the rest still go in. A
//! call that fails for a while (storage restarting, a server shed or stopping) is sent again
//! from the file's start, for up to `--retry-for`: records are deduplicated by id, so the
//! retry stores what the broken call did not, and nothing twice.

pub(crate) mod client;
mod config;
mod lines;

use crate::{CommandResult, ImportCommand};
use client::{ClientError, MAX_REPLY_BYTES};
use lines::{ChunkLimits, ParseLine, ReadOutcome, Summary};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;

/// Chunks read ahead of the network: enough to keep the stream busy while the next one is parsed.
const CHUNKS_IN_FLIGHT: usize = 4;

/// How often `--wait` asks attribution how far it got.
const WAIT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Problems with the file itself (the server's answers are [`ClientError`]s).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error("{file}: reading stopped unexpectedly: {message}")]
    Reader { file: String, message: String },
    /// The server ended the call successfully before the whole file was sent.
    #[error("{file}: the server answered after {sent} records, before the whole file was sent")]
    Cut { file: String, sent: u64 },
    /// The call failed part way (and retries did not get through): what the server
    /// acknowledged is stored, and the same import again stores the rest and nothing twice
    /// (records are deduplicated by id).
    #[error(
        "{file}: import interrupted after {lines} lines were read: {cause}\n{file}: every record the server acknowledged is \
         stored; run the same command again to finish (records already stored count as duplicates, none twice)"
    )]
    Interrupted { file: String, lines: u64, cause: ClientError },
}

/// How a stream of the file ended, when it did not end with the server's reply.
#[derive(Debug)]
enum StreamFailure {
    /// The call failed after `lines` lines were read; a retry may get through.
    Call { lines: u64, cause: ClientError },
    /// The file or the reader failed, or the server answered early.
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for StreamFailure {
    fn from(error: E) -> StreamFailure {
        StreamFailure::Other(error.into())
    }
}

pub async fn run(what: ImportCommand) -> CommandResult {
    match what {
        ImportCommand::Config { file, server } => config::import_config(&file, &server).await,
        ImportCommand::Messages { file, server } => import_lines(&file, &server, lines::message_line, false).await,
        ImportCommand::Records { file, server, wait } => import_lines(&file, &server, lines::record_line, wait).await,
    }
}

/// Imports one JSONL file; with `wait`, returns only once attribution has processed it.
async fn import_lines(file: &Path, server: &str, parse: ParseLine, wait: bool) -> CommandResult {
    let name = file.display().to_string();
    let open = || std::fs::File::open(file).map_err(|source| ImportError::Read { file: name.clone(), source });
    let mut opened = open()?;
    let channel = client::connect(server).await?;
    let mut retries = client::Retries::new(&name);
    // Bad lines are printed once, however often the file is sent.
    let printed_up_to = Arc::new(AtomicUsize::new(0));
    let (reply, read) = loop {
        match stream_file(channel.clone(), server, &name, opened, parse, printed_up_to.clone()).await {
            Ok(done) => break done,
            Err(StreamFailure::Call { lines, cause }) => {
                retries.wait(cause).await.map_err(|cause| ImportError::Interrupted { file: name.clone(), lines, cause })?;
                opened = open()?;
            }
            Err(StreamFailure::Other(error)) => return Err(error),
        }
    };
    let pb::IngestReply { accepted, duplicates, rejected } = reply;
    for rejection in &rejected {
        eprintln!("{}", lines::rejection_line(&name, &read.line_map, rejection));
    }
    let summary = Summary { lines: read.lines, accepted, duplicates, rejected: read.bad_lines + rejected.len() as u64 };
    eprintln!("{name}: {summary}");
    if retries.retried > 0 {
        eprintln!(
            "{name}: sent {} times in all, the last one whole: records the broken attempts had stored are counted as duplicates",
            retries.retried + 1
        );
    }
    if wait {
        wait_for_attribution(channel, server).await?;
    }
    Ok(if summary.rejected == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Sends the file as one `IngestStream` call. The file is read and parsed on a blocking
/// thread while the call sends what is ready; bad lines are printed as they are found.
async fn stream_file(
    channel: client::Connection,
    server: &str,
    name: &str,
    file: std::fs::File,
    parse: ParseLine,
    printed_up_to: Arc<AtomicUsize>,
) -> Result<(pb::IngestReply, ReadOutcome), StreamFailure> {
    let (sender, receiver) = mpsc::channel::<pb::IngestChunk>(CHUNKS_IN_FLIGHT);
    let file_name = name.to_owned();
    let reading = tokio::task::spawn_blocking(move || {
        lines::read_chunks(
            std::io::BufReader::new(file),
            parse,
            ChunkLimits::DEFAULT,
            |bad| {
                if printed_up_to.fetch_max(bad.line, Ordering::Relaxed) < bad.line {
                    eprintln!("{file_name}:{}: {}", bad.line, bad.message);
                }
            },
            // Fails only when the call has ended (the server answered early): stop reading.
            |chunk| sender.blocking_send(chunk).is_ok(),
        )
    });
    let mut ingest = IngestServiceClient::new(channel).max_decoding_message_size(MAX_REPLY_BYTES);
    let reply = ingest.ingest_stream(ReceiverStream::new(receiver)).await;
    let read = reading.await.map_err(|err| ImportError::Reader { file: name.to_owned(), message: err.to_string() })?;
    // A server error explains an early stop of the reader, so it is reported first.
    let lines_read = read.as_ref().map_or(0, |read| read.lines);
    let reply = match reply {
        Ok(reply) => reply.into_inner(),
        Err(status) => {
            let retry_may_finish = matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::ResourceExhausted | tonic::Code::Aborted | tonic::Code::Unknown
            );
            let cause = ClientError::from_status(server, status);
            return Err(match (retry_may_finish, cause.retry_after()) {
                (_, Some(_)) => StreamFailure::Call { lines: lines_read, cause },
                (true, None) => ImportError::Interrupted { file: name.to_owned(), lines: lines_read, cause }.into(),
                (false, None) => cause.into(),
            });
        }
    };
    let read = read.map_err(|source| ImportError::Read { file: name.to_owned(), source })?;
    if read.stopped_early {
        return Err(ImportError::Cut { file: name.to_owned(), sent: read.line_map.len() }.into());
    }
    Ok((reply, read))
}

/// Polls attribution until it has processed everything ingested before the wait began, by
/// this import or anyone else: every log shard's head in the first status is the target.
async fn wait_for_attribution(channel: client::Connection, server: &str) -> Result<(), ClientError> {
    let mut attribution = AttributionServiceClient::new(channel);
    let mut targets: Option<HashMap<u32, u64>> = None;
    let mut retries = client::Retries::new("waiting for attribution");
    loop {
        let status = match attribution.get_status(pb::GetStatusRequest {}).await {
            Ok(status) => status.into_inner(),
            Err(status) => {
                retries.wait(ClientError::from_status(server, status)).await?;
                continue;
            }
        };
        retries.succeeded();
        let targets = targets.get_or_insert_with(|| status.shards.iter().map(|shard| (shard.shard, shard.head)).collect());
        let reached = |shard: &pb::ShardStatus| targets.get(&shard.shard).is_none_or(|target| shard.processed >= *target);
        if status.shards.iter().all(reached) {
            return Ok(());
        }
        tokio::time::sleep(WAIT_POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    //! The streaming path against a fake server on port 0: chunks arrive in order, server
    //! rejections map back to lines, `--wait` polls until attribution catches up.
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;
    use tokio_stream::StreamExt;
    use tonic::{Request, Response, Status, Streaming};
    use touchstone_proto::v1::attribution_service_server::{AttributionService, AttributionServiceServer};
    use touchstone_proto::v1::ingest_service_server::{IngestService, IngestServiceServer};

    /// Rejects records whose event_id starts with `bad`, counts `dup…` as duplicates.
    #[derive(Default, Clone)]
    struct FakeIngest {
        chunk_sizes: Arc<Mutex<Vec<usize>>>,
    }

    fn event_id(record: &pb::Record) -> String {
        match &record.kind {
            Some(pb::record::Kind::Touch(touch)) => touch.event_id.clone(),
            _ => String::new(),
        }
    }

    #[tonic::async_trait]
    impl IngestService for FakeIngest {
        async fn register_messages(
            &self,
            _: Request<pb::RegisterMessagesRequest>,
        ) -> Result<Response<pb::IngestReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn record_touches(
            &self,
            _: Request<pb::RecordTouchesRequest>,
        ) -> Result<Response<pb::IngestReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn post_events(&self, _: Request<pb::PostEventsRequest>) -> Result<Response<pb::IngestReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn record_orders(
            &self,
            _: Request<pb::RecordOrdersRequest>,
        ) -> Result<Response<pb::IngestReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn record_badge_events(
            &self,
            _: Request<pb::RecordBadgeEventsRequest>,
        ) -> Result<Response<pb::IngestReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn issue_badge(&self, _: Request<pb::IssueBadgeRequest>) -> Result<Response<pb::IssueBadgeReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn revoke_badge(&self, _: Request<pb::IssueBadgeRequest>) -> Result<Response<pb::IssueBadgeReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn ingest_stream(
            &self,
            request: Request<Streaming<pb::IngestChunk>>,
        ) -> Result<Response<pb::IngestReply>, Status> {
            let mut stream = request.into_inner();
            let mut reply = pb::IngestReply::default();
            let mut index = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                self.chunk_sizes.lock().unwrap().push(chunk.records.len());
                for record in &chunk.records {
                    let id = event_id(record);
                    if id.starts_with("bad") {
                        reply.rejected.push(pb::Rejection { index, event_id: id, reason: "refused".into(), code: 3 });
                    } else if id.starts_with("dup") {
                        reply.duplicates += 1;
                    } else {
                        reply.accepted += 1;
                    }
                    index += 1;
                }
            }
            Ok(Response::new(reply))
        }
    }

    /// Two log shards with heads 3 and 1; processes one position of each per status call.
    #[derive(Default, Clone)]
    struct FakeAttribution {
        calls: Arc<AtomicU64>,
    }

    #[tonic::async_trait]
    impl AttributionService for FakeAttribution {
        async fn get_status(
            &self,
            _: Request<pb::GetStatusRequest>,
        ) -> Result<Response<pb::AttributionStatus>, Status> {
            let calls = self.calls.fetch_add(1, Ordering::SeqCst);
            let shards = vec![
                pb::ShardStatus { shard: 0, head: 3 + calls, processed: calls.min(3 + calls), ..Default::default() },
                pb::ShardStatus { shard: 5, head: 1, processed: calls.min(1), ..Default::default() },
            ];
            Ok(Response::new(pb::AttributionStatus { shards, ..Default::default() }))
        }
        async fn recompute(&self, _: Request<pb::RecomputeRequest>) -> Result<Response<pb::RecomputeReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
    }

    async fn serve(ingest: FakeIngest, attribution: FakeAttribution) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(IngestServiceServer::new(ingest))
                .add_service(AttributionServiceServer::new(attribution))
                .serve_with_incoming(incoming),
        );
        url
    }

    fn touch_line(event_id: &str) -> String {
        format!(
            r#"{{"type":"touch","tenant":"t","event_id":"{event_id}","msg_hash":"m","customer_id":"c","touch":"OPENED","ts":1}}"#
        )
    }

    #[tokio::test]
    async fn a_file_streams_in_chunks_and_server_rejections_map_to_their_lines() {
        let ingest = FakeIngest::default();
        let url = serve(ingest.clone(), FakeAttribution::default()).await;
        // 4,500 records: lines 1..=4502 with a bad line and a blank one; two refused, one duplicate.
        let mut lines: Vec<String> = (1..=4502).map(|n| touch_line(&format!("e{n}"))).collect();
        lines[9] = "{broken".into();
        lines[19] = String::new();
        lines[2999] = touch_line("bad3000");
        lines[4501] = touch_line("bad4502");
        lines[99] = touch_line("dup100");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        std::fs::write(&path, lines.join("\n")).unwrap();

        let channel = client::connect(&url).await.unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let (reply, read) = stream_file(channel, &url, "records.jsonl", file, lines::record_line, Default::default()).await.unwrap();

        assert_eq!(*ingest.chunk_sizes.lock().unwrap(), vec![2000, 2000, 500]);
        assert_eq!((read.lines, read.bad_lines), (4501, 1));
        assert_eq!((reply.accepted, reply.duplicates, reply.rejected.len()), (4497, 1, 2));
        let reported: Vec<String> =
            reply.rejected.iter().map(|r| lines::rejection_line("records.jsonl", &read.line_map, r)).collect();
        assert_eq!(reported, ["records.jsonl:3000: refused", "records.jsonl:4502: refused"]);
    }

    #[tokio::test]
    async fn wait_returns_once_every_shard_reaches_its_head_of_the_first_status() {
        let attribution = FakeAttribution::default();
        let url = serve(FakeIngest::default(), attribution.clone()).await;
        let channel = client::connect(&url).await.unwrap();
        wait_for_attribution(channel, &url).await.unwrap();
        // Targets 3 and 1 from the first call; shard 0's head keeps growing, which the wait
        // ignores. Processed 0, 1, 2, 3: the fourth call was enough.
        assert_eq!(attribution.calls.load(Ordering::SeqCst), 4);
    }
}
