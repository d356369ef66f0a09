//! TLS on the listener and in the CLI: `touchstone dev --tls-cert --tls-key` serves https
//! (rustls), the CLI trusts the CA it is given (`--tls-ca`), else the system's roots (here
//! made to hold the test CA through `SSL_CERT_FILE`), refuses a server neither signed and
//! says to pass `--tls-ca`, and a plaintext client gets nowhere but the plaintext health listener
//! (`--health-listen`), which serves health alone. The web console serves TLS with the same
//! certificate. The certificate is made by `openssl`, as an
//! operator would (Debian's `openssl`, installed by `.ci/run`).

use std::process::Command;
use touchstone_integration_tests::{Server, certificates, free_address, text, touchstone};

#[test]
fn dev_serves_tls_and_the_cli_trusts_only_the_ca_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    // A CA, and a server certificate it signs for localhost and 127.0.0.1.
    let (ca, cert, key) = certificates(dir.path());
    let data = dir.path().join("store").to_string_lossy().into_owned();

    let health_address = free_address();
    let console_address = free_address();
    let server = Server::start(&[
        "dev", "--listen", "127.0.0.1:0", "--data-dir", &data, "--tls-cert", &cert, "--tls-key", &key, "--health-listen", &health_address,
        "--http", &console_address,
    ]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"tenants": {"gym": {"currency": "EUR"}}}"#).unwrap();
    let config = config.to_string_lossy().into_owned();

    let imported = server.cli(&["import", "config", &config, "--tls-ca", &ca]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let goals = server.cli(&["report", "goals", "--tenant", "gym", "--format", "json", "--tls-ca", &ca]);
    assert!(goals.status.success(), "{}", text(&goals.stderr));

    let untrusted = server.cli(&["report", "goals", "--tenant", "gym", "--format", "json"]);
    assert!(!untrusted.status.success());
    assert!(text(&untrusted.stderr).contains("--tls-ca"), "{}", text(&untrusted.stderr));
    // A CA among the system's roots (as a public one is) needs no --tls-ca.
    let system_roots = std::process::Command::new(touchstone_integration_tests::binary())
        .args(["report", "goals", "--tenant", "gym", "--format", "json", "--server", &server.url])
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    assert!(system_roots.status.success(), "{}", text(&system_roots.stderr));
    let plaintext_url = server.url.replacen("https://", "http://", 1);
    let plaintext = touchstone(["report", "goals", "--tenant", "gym", "--format", "json", "--server", &plaintext_url]);
    assert!(!plaintext.status.success(), "a plaintext client was answered by a TLS server");
    let said = text(&plaintext.stderr);
    assert!(said.contains("if the server speaks TLS, use https://"), "the CLI says what to do: {said}");

    // Health alone, in plaintext, on the health listener (what the kubelet's probes need);
    // nothing else is served there.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Channel::from_shared(format!("http://{health_address}")).unwrap().connect().await.unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
        let status = health.check(request).await.expect("plaintext health on the health listener").into_inner().status;
        assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
        let mut config = touchstone_proto::v1::config_service_client::ConfigServiceClient::new(channel);
        let other = config.get_config(touchstone_proto::v1::GetConfigRequest { tenant: "gym".into() }).await.unwrap_err();
        assert_eq!(other.code(), tonic::Code::Unimplemented, "{other:?}");
    });

    // The console serves TLS with the same certificate: a client trusting the CA reads it,
    // a plaintext one gets no page.
    let request = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &console_address, "-servername", "localhost", "-CAfile", &ca, "-verify_return_error"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut client.stdin.take().unwrap(), request.as_bytes()).unwrap();
    let answer = client.wait_with_output().unwrap();
    let page = text(&answer.stdout);
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("Tenants"), "{page}\n{}", text(&answer.stderr));
    let mut plain = std::net::TcpStream::connect(&console_address).unwrap();
    plain.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    std::io::Write::write_all(&mut plain, request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut reply);
    assert!(!text(&reply).contains("HTTP/1.1 200"), "a plaintext client read the console");

    // Both files or neither.
    let half = touchstone(["dev", "--listen", "127.0.0.1:0", "--data-dir", &data, "--tls-cert", &cert]);
    assert!(!half.status.success() && text(&half.stderr).contains("--tls-key"), "{}", text(&half.stderr));
}
