//! A server run in-process by the tests of this folder: the given roles on an embedded
//! store in a temporary folder, on a free port, stopped through its shutdown future.

use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use touchstone_server::serve::{Listeners, Roles, serve};
use touchstone_attribution::WorkerOptions;
use touchstone_store::EmbeddedStore;

pub struct InProcess {
    pub channel: Channel,
    address: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// `touchstone dev`'s roles (ingest, a worker, query), open, default limits, plaintext.
pub fn dev_roles() -> Roles {
    Roles { ingest: true, worker: Some(WorkerOptions::new("test")), query: true, ..Roles::default() }
}

impl InProcess {
    #[allow(dead_code)] // The console's tests start it with the console.
    pub async fn start(roles: Roles) -> InProcess {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        InProcess::start_on(roles, Listeners::grpc(listener)).await
    }

    /// With the console too, on a port of its own, with `routes` beside its pages; returns
    /// the console's address.
    #[allow(dead_code)] // Only the console's tests serve it.
    pub async fn start_with_console(roles: Roles, routes: Option<axum::Router>) -> (InProcess, std::net::SocketAddr) {
        let mut listeners = Listeners::grpc(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let console = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let console_address = console.local_addr().unwrap();
        listeners.console = Some(console);
        listeners.console_routes = routes;
        (InProcess::start_on(roles, listeners).await, console_address)
    }

    async fn start_on(roles: Roles, listeners: Listeners) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let address = listeners.grpc.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            serve(store, listeners, roles, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let channel = Channel::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap();
        InProcess { channel, address, stop: Some(stop), served, _dir: dir }
    }

    /// Where it listens, for a connection of a test's own.
    #[allow(dead_code)] // Not every test file opens a second connection.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        self.begin_stop();
        (&mut self.served).await.unwrap();
    }

    /// Starts the shutdown (as SIGTERM would) without waiting for it.
    #[allow(dead_code)]
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the server has stopped.
    #[allow(dead_code)]
    pub fn stopped(&self) -> bool {
        self.served.is_finished()
    }
}

/// The status's `ErrorInfo`: its reason and metadata (every error this server gives has one).
#[allow(dead_code)] // Not every test file reads reasons.
pub fn reason(status: &tonic::Status) -> (String, std::collections::BTreeMap<String, String>) {
    use tonic_types::StatusExt as _;
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo: {status:?}"));
    assert_eq!(info.domain, "touchstone.v1");
    (info.reason, info.metadata.into_iter().collect())
}

/// `(key, value)` pairs as a reason's metadata.
#[allow(dead_code)]
pub fn metadata(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
}

/// An ingest stream left open: it holds one of the server's calls in flight until closed,
/// which is how the shedding tests fill a server limited to one call.
#[allow(dead_code)] // Only the shedding tests hold a call.
pub struct HeldCall {
    channel: Channel,
    chunks: tokio::sync::mpsc::Sender<touchstone_proto::v1::IngestChunk>,
    call: tokio::task::JoinHandle<Result<tonic::Response<touchstone_proto::v1::IngestReply>, tonic::Status>>,
}

#[allow(dead_code)]
impl HeldCall {
    /// Opens the stream with one record, so the call reaches the server before it idles.
    pub fn open(channel: &Channel) -> HeldCall {
        use touchstone_proto::v1 as pb;
        let (chunks, stream) = tokio::sync::mpsc::channel::<pb::IngestChunk>(1);
        let mut ingest = pb::ingest_service_client::IngestServiceClient::new(channel.clone());
        let call = tokio::spawn(async move { ingest.ingest_stream(tokio_stream::wrappers::ReceiverStream::new(stream)).await });
        let first = pb::AppEvent {
            tenant: "gym".into(),
            event_id: "held".into(),
            customer_id: "ann".into(),
            name: "app_open".into(),
            ts: 1_767_225_600_000,
            value: None,
            msg_hash: None,
        };
        chunks.try_send(pb::IngestChunk { records: vec![pb::Record { kind: Some(pb::record::Kind::Event(first)) }] }).unwrap();
        HeldCall { channel: channel.clone(), chunks, call }
    }

    /// A probe being answered when the stream arrived held the one permit itself, and the
    /// stream was shed: then it is opened again (anything else ending it is a failure).
    pub async fn reopen_if_shed(&mut self) {
        if self.call.is_finished() {
            let status = (&mut self.call).await.unwrap().expect_err("a stream still open cannot have ended well");
            assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
            *self = HeldCall::open(&self.channel);
        }
    }

    /// Ends the stream; its records are accepted.
    pub async fn close(self) {
        drop(self.chunks);
        self.call.await.unwrap().unwrap();
    }
}
