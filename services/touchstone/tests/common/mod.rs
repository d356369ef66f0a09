//! A server run in-process by the tests of this folder: the given roles on an embedded
//! store in a temporary folder, on a free port, stopped through its shutdown future.

use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use touchstone::serve::{Roles, serve};
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
    pub async fn start(roles: Roles) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            serve(store, listener, roles, async {
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.served).await.unwrap();
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
