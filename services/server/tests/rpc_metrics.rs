//! Every call is counted under the status it ended with: an error before any message (in
//! the headers), a success, and a stream's error after it started (in the trailers, as a
//! reflection stream asked for a symbol no one serves ends).

use tonic_reflection::pb::v1alpha;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

mod common;

use common::{InProcess, dev_roles};

/// The count of `method`'s calls that ended with `code`, as the scrape shows it.
fn count(page: &str, method: &str, code: &str) -> Option<f64> {
    let prefix = format!("touchstone_rpc_duration_seconds_count{{method=\"{method}\",code=\"{code}\"}}");
    page.lines().find(|line| line.starts_with(&prefix)).and_then(|line| line.rsplit(' ').next()).and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_counted_under_the_status_it_ended_with() {
    let metrics = touchstone_server::telemetry::handle().unwrap();
    let server = InProcess::start(dev_roles()).await;

    // A stream whose error comes after it started.
    let mut reflection = v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol("no.such.Symbol".into())),
    };
    let mut replies = reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    let ended = replies.message().await.expect_err("no such symbol");
    assert_eq!(ended.code(), tonic::Code::NotFound, "{ended:?}");

    // An error before any message, and a success.
    let mut query = QueryServiceClient::new(server.channel.clone());
    let request = pb::ListCampaignsRequest { tenant: "ghost".into(), range: None };
    assert_eq!(query.list_campaigns(request).await.unwrap_err().code(), tonic::Code::NotFound);
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel.clone());
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();

    // The body's end is seen a moment after the client has its last message.
    let reflection_method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
    let mut page = String::new();
    for _ in 0..100 {
        page = metrics.render();
        if count(&page, reflection_method, "NOT_FOUND").is_some() && count(&page, "/grpc.health.v1.Health/Check", "OK").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(count(&page, reflection_method, "NOT_FOUND"), Some(1.0), "{page}");
    assert_eq!(count(&page, reflection_method, "OK"), None, "{page}");
    assert_eq!(count(&page, "/touchstone.v1.QueryService/ListCampaigns", "NOT_FOUND"), Some(1.0), "{page}");
    assert_eq!(count(&page, "/grpc.health.v1.Health/Check", "OK"), Some(1.0), "{page}");
    server.stop().await;
}
