//! W3C trace context, driven in-process with an in-memory span exporter: a call carrying a
//! `traceparent` runs in spans of the caller's trace, child of the caller's span; a call
//! without one starts a trace of its own.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tonic::metadata::MetadataValue;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;
use touchstone_proto::v1::config_service_client::ConfigServiceClient;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
use tracing_subscriber::layer::SubscriberExt as _;

mod common;

use common::{InProcess, dev_roles};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_id_is_on_the_servers_spans() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let server = InProcess::start(dev_roles()).await;
    let channel = server.channel.clone();
    let mut config = ConfigServiceClient::new(channel.clone());

    let mut traced = tonic::Request::new(pb::GetConfigRequest { tenant: "gym".into() });
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    traced.metadata_mut().insert("traceparent", MetadataValue::try_from(traceparent).unwrap());
    config.get_config(traced).await.unwrap();
    config.get_config(pb::GetConfigRequest { tenant: "gym".into() }).await.unwrap();

    // Ingest with the caller's trace: the attribution step that processes the records links
    // to the ingest call's span.
    let event = pb::AppEvent {
        tenant: "gym".into(),
        event_id: "e1".into(),
        customer_id: "ann".into(),
        name: "checkin".into(),
        ts: 1_767_225_600_000,
        value: None,
        msg_hash: None,
    };
    let mut posted = tonic::Request::new(pb::PostEventsRequest { events: vec![event] });
    posted.metadata_mut().insert("traceparent", MetadataValue::try_from(format!("00-{TRACE_ID}-{CALLER_SPAN}-01")).unwrap());
    IngestServiceClient::new(channel.clone()).post_events(posted).await.unwrap();
    let mut status = AttributionServiceClient::new(channel.clone());
    let started = std::time::Instant::now();
    loop {
        let reply = status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
        if reply.shards.iter().all(|shard| shard.processed >= shard.head) {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "attribution did not catch up");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.stop().await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let rpc_of = |method: &str| {
        spans
            .iter()
            .filter(|span| span.name == "rpc" && span.attributes.iter().any(|kv| kv.value.as_str().contains(method)))
            .collect::<Vec<_>>()
    };
    let rpcs = rpc_of("GetConfig");
    assert_eq!(rpcs.len(), 2, "{:?}", spans.iter().map(|s| s.name.to_string()).collect::<Vec<_>>());
    let joined: Vec<_> = rpcs.iter().filter(|span| span.span_context.trace_id().to_string() == TRACE_ID).collect();
    assert_eq!(joined.len(), 1, "exactly the call with a traceparent joins the caller's trace");
    assert_eq!(joined[0].parent_span_id.to_string(), CALLER_SPAN);
    // The handler's own span is a child of it, in the same trace.
    let handler = spans.iter().find(|span| span.name == "get_config" && span.span_context.trace_id().to_string() == TRACE_ID);
    assert!(handler.is_some_and(|span| span.parent_span_id == joined[0].span_context.span_id()), "{spans:#?}");

    let ingest_rpc = *rpc_of("PostEvents").first().expect("the PostEvents rpc span");
    assert_eq!(ingest_rpc.span_context.trace_id().to_string(), TRACE_ID);
    let steps: Vec<_> = spans.iter().filter(|span| span.name == "attribution_step").collect();
    let linked = steps.iter().find(|step| step.links.iter().any(|link| link.span_context.trace_id().to_string() == TRACE_ID));
    let linked = linked.unwrap_or_else(|| panic!("no attribution step links to the caller's trace: {steps:#?}"));
    assert_eq!(linked.links.len(), 1);
    assert_eq!(linked.links[0].span_context.span_id(), ingest_rpc.span_context.span_id(), "the link is to the ingest call's span");
}
