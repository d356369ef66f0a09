//! The `connect` section: the same records ingested twice into a fresh `touchstone dev`, in
//! batch calls of each record kind (`RecordTouches`, `PostEvents`, …), once over gRPC and
//! once as Connect JSON over HTTP/1.1 (what a web backend sends), with the same batches and
//! the same calls in flight. The figure is records/s acknowledged, replies not held for
//! attribution (`--max-attribution-backlog 0`); the requests are encoded before the clock
//! starts (a client's JSON encoding is its own cost, not the server's).

use crate::BenchResult;
use crate::datasets::Dataset;
use prost::Message as _;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use touchstone_integration_tests::{DevServer, free_address};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;

/// Calls in flight, over both protocols.
const LANES: usize = 4;

/// One batch call: its path, its records, the request as protobuf.
struct Batch {
    path: &'static str,
    records: usize,
    proto: Vec<u8>,
}

/// Records/s acknowledged over each protocol.
pub struct ConnectRun {
    pub records: usize,
    pub grpc: Duration,
    pub connect_json: Duration,
}

impl ConnectRun {
    pub fn grpc_per_sec(&self) -> f64 {
        self.records as f64 / self.grpc.as_secs_f64()
    }

    pub fn connect_per_sec(&self) -> f64 {
        self.records as f64 / self.connect_json.as_secs_f64()
    }
}

pub async fn run(work: &std::path::Path, data: &Dataset) -> BenchResult<ConnectRun> {
    let batches = batches(data)?;
    let records = batches.iter().map(|batch| batch.records).sum();
    let pool = prost_reflect::DescriptorPool::decode(touchstone_proto::FILE_DESCRIPTOR_SET)?;
    let json: Vec<(&'static str, Vec<u8>)> =
        batches.iter().map(|batch| Ok((batch.path, to_json(&pool, batch)?))).collect::<BenchResult<_>>()?;
    println!("ingesting {records} records in {} batch calls, {LANES} in flight, over gRPC and over Connect JSON ...", batches.len());

    let (server, _http) = fresh(work, data)?;
    let channel = server.channel().await;
    let started = Instant::now();
    let mut lanes = Vec::new();
    for lane in 0..LANES {
        let mut client = IngestServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20).max_encoding_message_size(64 << 20);
        let mine: Vec<&Batch> = batches.iter().skip(lane).step_by(LANES).collect();
        let calls: Vec<(&'static str, Vec<u8>)> = mine.iter().map(|batch| (batch.path, batch.proto.clone())).collect();
        lanes.push(tokio::spawn(async move {
            for (path, proto) in calls {
                grpc_call(&mut client, path, &proto).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for lane in lanes {
        lane.await??;
    }
    let grpc = started.elapsed();
    drop(server);

    let (server, http) = fresh(work, data)?;
    let started = Instant::now();
    let mut lanes = Vec::new();
    for lane in 0..LANES {
        let calls: Vec<(&'static str, Vec<u8>)> = json.iter().skip(lane).step_by(LANES).cloned().collect();
        let http = http.clone();
        lanes.push(tokio::spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(&http).await.map_err(|err| err.to_string())?;
            for (path, body) in calls {
                let status = post_json(&mut socket, path, &body).await?;
                if status != 200 {
                    return Err(format!("{path}: HTTP {status}"));
                }
            }
            Ok::<(), String>(())
        }));
    }
    for lane in lanes {
        lane.await??;
    }
    let connect_json = started.elapsed();
    drop(server);
    Ok(ConnectRun { records, grpc, connect_json })
}

/// A fresh `touchstone dev` with the console's HTTP listener, its config and messages in.
fn fresh(work: &std::path::Path, data: &Dataset) -> BenchResult<(DevServer, String)> {
    let store = work.join("store-connect");
    let _ = std::fs::remove_dir_all(&store);
    let http = free_address();
    // Replies never wait for attribution here: the figure is what each protocol takes in.
    let server = DevServer::start_with(&store, &["--http", &http, "--max-attribution-backlog", "0"]);
    server.cli_ok(&["import", "config", &data.path("config.json")]);
    server.cli_ok(&["import", "messages", &data.path("messages.jsonl")]);
    Ok((server, http))
}

/// The dataset's records as batch calls of one kind each, in file order.
fn batches(data: &Dataset) -> BenchResult<Vec<Batch>> {
    let mut out = Vec::new();
    for chunk in data.chunks()? {
        let (mut touches, mut events, mut orders, mut badges, mut messages) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for record in chunk.records {
            match record.kind {
                Some(pb::record::Kind::Touch(touch)) => touches.push(touch),
                Some(pb::record::Kind::Event(event)) => events.push(event),
                Some(pb::record::Kind::Order(order)) => orders.push(order),
                Some(pb::record::Kind::Badge(badge)) => badges.push(badge),
                Some(pb::record::Kind::Message(message)) => messages.push(message),
                None => {}
            }
        }
        let mut push = |path, records, proto| {
            if records > 0 {
                out.push(Batch { path, records, proto });
            }
        };
        push("/touchstone.v1.IngestService/RecordTouches", touches.len(), pb::RecordTouchesRequest { touches }.encode_to_vec());
        push("/touchstone.v1.IngestService/PostEvents", events.len(), pb::PostEventsRequest { events }.encode_to_vec());
        push("/touchstone.v1.IngestService/RecordOrders", orders.len(), pb::RecordOrdersRequest { orders }.encode_to_vec());
        push("/touchstone.v1.IngestService/RecordBadgeEvents", badges.len(), pb::RecordBadgeEventsRequest { badges }.encode_to_vec());
        push("/touchstone.v1.IngestService/RegisterMessages", messages.len(), pb::RegisterMessagesRequest { messages }.encode_to_vec());
    }
    Ok(out)
}

/// A batch's request in the proto3 canonical JSON a Connect client sends.
fn to_json(pool: &prost_reflect::DescriptorPool, batch: &Batch) -> BenchResult<Vec<u8>> {
    let (service, method) = batch.path.trim_start_matches('/').split_once('/').ok_or("a path")?;
    let input = pool.get_service_by_name(service).and_then(|s| s.methods().find(|m| m.name() == method)).ok_or("a method")?.input();
    let message = prost_reflect::DynamicMessage::decode(input, batch.proto.as_slice())?;
    Ok(serde_json::to_vec(&message)?)
}

async fn grpc_call(client: &mut IngestServiceClient<tonic::transport::Channel>, path: &str, proto: &[u8]) -> Result<(), String> {
    let status = |err: tonic::Status| format!("{path}: {err}");
    match path {
        "/touchstone.v1.IngestService/RecordTouches" => drop(client.record_touches(decode::<pb::RecordTouchesRequest>(proto)?).await.map_err(status)?),
        "/touchstone.v1.IngestService/PostEvents" => drop(client.post_events(decode::<pb::PostEventsRequest>(proto)?).await.map_err(status)?),
        "/touchstone.v1.IngestService/RecordOrders" => drop(client.record_orders(decode::<pb::RecordOrdersRequest>(proto)?).await.map_err(status)?),
        "/touchstone.v1.IngestService/RecordBadgeEvents" => drop(client.record_badge_events(decode::<pb::RecordBadgeEventsRequest>(proto)?).await.map_err(status)?),
        "/touchstone.v1.IngestService/RegisterMessages" => drop(client.register_messages(decode::<pb::RegisterMessagesRequest>(proto)?).await.map_err(status)?),
        other => return Err(format!("no batch call {other}")),
    }
    Ok(())
}

fn decode<M: prost::Message + Default>(proto: &[u8]) -> Result<M, String> {
    M::decode(proto).map_err(|err| err.to_string())
}

/// One keep-alive POST of JSON: the HTTP status (the answer is read whole).
async fn post_json(socket: &mut tokio::net::TcpStream, path: &str, body: &[u8]) -> Result<u16, String> {
    let head = format!("POST {path} HTTP/1.1\r\nhost: touchstone\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
    socket.write_all(head.as_bytes()).await.map_err(|err| err.to_string())?;
    socket.write_all(body).await.map_err(|err| err.to_string())?;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = socket.read(&mut buffer).await.map_err(|err| err.to_string())?;
        if read == 0 {
            return Err("the server closed the connection".to_owned());
        }
        answer.extend_from_slice(&buffer[..read]);
        let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
        let length: usize = head.lines().find_map(|line| line.strip_prefix("content-length:")).and_then(|n| n.trim().parse().ok()).unwrap_or(0);
        if answer.len() >= end + 4 + length {
            return Ok(head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0));
        }
    }
}
