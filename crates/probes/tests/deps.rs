//! The dependency probes against real servers: the test bed's Postgres, Redis and NATS, and
//! private instances started here where a case needs other settings (a Postgres that checks
//! passwords, a Redis with a password, a NATS without JetStream).

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kind_parity_probes::deps::{Endpoint, Login, Nats, Postgres, Redis, Temporal, Vault};
use kind_parity_probes::{Check, Next};
use kind_parity_testkit::{NATS, POSTGRES, REDIS, require, require_program};

/// A server process, killed when dropped.
struct Process(Child, #[allow(dead_code)] Option<tempfile::TempDir>);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until `port` accepts connections.
fn wait_listening(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn quiet(cmd: &mut Command) -> &mut Command {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null())
}

fn login(database: &str, user: &str, password: &str) -> Login {
    Login { database: database.into(), user: user.into(), password: password.into() }
}

#[tokio::test]
async fn postgres_logs_in_and_finds_each_database() {
    let Some(addr) = require(POSTGRES, "postgres_logs_in_and_finds_each_database") else { return };
    let probe = Postgres::new(Endpoint::Address(addr.clone()), vec![login("postgres", "postgres", "unused")]);
    assert_eq!(probe.run().await.unwrap(), "SELECT 1 as postgres@postgres");

    let probe = Postgres::new(
        Endpoint::Address(addr),
        vec![login("postgres", "postgres", "x"), login("kp_missing_db", "postgres", "x")],
    );
    let failure = probe.run().await.expect_err("missing database");
    assert_eq!(failure.found, "database kp_missing_db does not exist: database \"kp_missing_db\" does not exist");
    assert!(failure.remediation.contains("init job"), "{}", failure.remediation);
    assert_eq!(failure.next, [Next::logs_of("postgres"), Next::Reset], "{failure:?}");
}

/// A private Postgres that checks passwords (the test bed's trusts everyone), run as the
/// `postgres` user as Postgres requires.
fn postgres_with_passwords(test: &str) -> Option<(Process, u16)> {
    let initdb = require_program("initdb", test)?;
    let bin = initdb.parent().unwrap().to_owned();
    let uid = Command::new("id").args(["-u", "postgres"]).output().ok().filter(|o| o.status.success());
    let Some(uid) = uid else {
        return kind_parity_testkit::skip(test, "no `postgres` user to run a private Postgres as");
    };
    let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
    for p in [dir.path(), &data, &dir.path().join("pw")] {
        std::os::unix::fs::chown(p, Some(uid), None).unwrap();
    }
    let as_postgres = |program: &Path| {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    };
    let status =
        quiet(as_postgres(&bin.join("initdb")).arg("-D").arg(&data).args(["-A", "scram-sha-256", "-U", "postgres"]))
            .arg(format!("--pwfile={}", dir.path().join("pw").display()))
            .status()
            .unwrap();
    assert!(status.success(), "initdb failed");
    let port = free_port();
    let child = quiet(as_postgres(&bin.join("postgres")).arg("-D").arg(&data))
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.path().display()))
        .spawn()
        .unwrap();
    let process = Process(child, Some(dir));
    wait_listening(port, "postgres");
    Some((process, port))
}

#[tokio::test]
async fn a_wrong_postgres_password_is_named_with_the_fix() {
    let test = "a_wrong_postgres_password_is_named_with_the_fix";
    let Some((_server, port)) = postgres_with_passwords(test) else { return };
    let addr = format!("127.0.0.1:{port}");
    let good = Postgres::new(Endpoint::Address(addr.clone()), vec![login("postgres", "postgres", "s3cret")]);
    // The server may still be finishing its start when the port opens.
    let start = Instant::now();
    while let Err(f) = good.run().await {
        assert!(start.elapsed() < Duration::from_secs(20), "{f:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bad = Postgres::new(Endpoint::Address(addr), vec![login("postgres", "postgres", "wrong")]);
    let failure = bad.run().await.expect_err("wrong password");
    assert_eq!(
        failure.found,
        "password authentication failed for postgres: password authentication failed for user \"postgres\""
    );
    assert!(failure.remediation.contains("recreating the environment recreates both"), "{}", failure.remediation);
    assert_eq!(failure.next, [Next::Reset], "{failure:?}");
}

#[tokio::test]
async fn a_closed_postgres_port_fails_with_where_it_looked() {
    let port = common::closed().await;
    let probe = Postgres::new(Endpoint::Address(port.to_string()), vec![login("app", "app", "x")]);
    let failure = probe.run().await.expect_err("closed");
    assert!(failure.found.starts_with(&format!("cannot reach Postgres at {port} ({port}): ")), "{}", failure.found);
}

#[tokio::test]
async fn redis_answers_ping_and_a_wrong_password_fails() {
    let test = "redis_answers_ping_and_a_wrong_password_fails";
    let Some(addr) = require(REDIS, test) else { return };
    assert_eq!(Redis::new(Endpoint::Address(addr), None).run().await.unwrap(), "PING answered PONG");

    let Some(server) = require_program("redis-server", test) else { return };
    let port = free_port();
    let child = quiet(Command::new(server).args(["--port", &port.to_string(), "--bind", "127.0.0.1"]))
        .args(["--requirepass", "s3cret", "--save", "", "--appendonly", "no"])
        .spawn()
        .unwrap();
    let _redis = Process(child, None);
    wait_listening(port, "redis-server");
    let addr = format!("127.0.0.1:{port}");
    let good = Redis::new(Endpoint::Address(addr.clone()), Some("s3cret".into()));
    assert_eq!(good.run().await.unwrap(), "AUTH ok, PING answered PONG");
    let failure = Redis::new(Endpoint::Address(addr.clone()), Some("wrong".into())).run().await.expect_err("wrong");
    assert!(failure.found.starts_with("AUTH failed: "), "{}", failure.found);
    assert!(failure.remediation.contains("generated Redis password"), "{}", failure.remediation);
    let failure = Redis::new(Endpoint::Address(addr), None).run().await.expect_err("no password");
    assert_eq!(failure.found, "the server requires a password and none is configured");
}

#[tokio::test]
async fn nats_answers_and_jetstream_is_checked_when_configured() {
    let test = "nats_answers_and_jetstream_is_checked_when_configured";
    let Some(addr) = require(NATS, test) else { return };
    let found = Nats::new(Endpoint::Address(addr.clone()), true).run().await.unwrap();
    assert!(found.starts_with("connected to nats-server ") && found.contains("JetStream on"), "{found}");

    // Declared streams: one the test creates (as a service would), one nobody created.
    let stream = format!("KP_PROBE_{}", std::process::id());
    let client = async_nats::connect(addr.as_str()).await.unwrap();
    let create = serde_json::json!({"name": stream, "subjects": [format!("kp.probe.{}.>", std::process::id())], "storage": "memory"});
    let reply = client.request(format!("$JS.API.STREAM.CREATE.{stream}"), create.to_string().into()).await.unwrap();
    assert!(!String::from_utf8_lossy(&reply.payload).contains("\"error\""), "{:?}", reply.payload);
    let found =
        Nats::new(Endpoint::Address(addr.clone()), true).with_streams(vec![stream.clone()]).run().await.unwrap();
    assert!(found.ends_with("the 1 declared present)"), "{found}");
    let failure = Nats::new(Endpoint::Address(addr.clone()), true)
        .with_streams(vec![stream.clone(), "KP_NOBODY_MADE_THIS".into()])
        .run()
        .await
        .expect_err("missing stream");
    assert_eq!(failure.found, "declared stream(s) missing: KP_NOBODY_MADE_THIS");
    let _ = client.request(format!("$JS.API.STREAM.DELETE.{stream}"), bytes::Bytes::new()).await;

    let Some(server) = require_program("nats-server", test) else { return };
    let port = free_port();
    let child = quiet(Command::new(&server).args(["-a", "127.0.0.1", "-p", &port.to_string()])).spawn().unwrap();
    let _nats = Process(child, None);
    wait_listening(port, "nats-server");
    let addr = format!("127.0.0.1:{port}");
    let found = Nats::new(Endpoint::Address(addr.clone()), false).run().await.unwrap();
    assert!(found.ends_with("PING answered"), "{found}");
    let failure = Nats::new(Endpoint::Address(addr), true).run().await.expect_err("jetstream off");
    assert!(failure.found.starts_with("JetStream does not answer: "), "{}", failure.found);
    assert!(failure.remediation.contains("--jetstream"), "{}", failure.remediation);

    // With authorization (`nats.auth`): the right password passes, a wrong or missing one fails.
    let port = free_port();
    let child = quiet(&mut Command::new(&server))
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--user", "app", "--pass", "s3cret"])
        .spawn()
        .unwrap();
    let _authed = Process(child, None);
    wait_listening(port, "nats-server");
    let addr = format!("127.0.0.1:{port}");
    let found =
        Nats::new(Endpoint::Address(addr.clone()), false).with_credentials("app", "s3cret").run().await.unwrap();
    assert!(found.ends_with("PING answered"), "{found}");
    let failure =
        Nats::new(Endpoint::Address(addr.clone()), false).with_credentials("app", "wrong").run().await.unwrap_err();
    assert_eq!(failure.found, "NATS refused user app: authorization violation");
    let failure = Nats::new(Endpoint::Address(addr), false).run().await.unwrap_err();
    assert_eq!(failure.found, "NATS requires credentials and none are configured");
}

/// A stand-in for a Temporal frontend where the real one cannot do what a test needs: a real
/// gRPC server with the standard health service, reporting `status` for Temporal's workflow
/// service (or nothing for it when `None`).
async fn grpc_health(
    status: Option<tonic_health::ServingStatus>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let (reporter, service) = tonic_health::server::health_reporter();
    if let Some(status) = status {
        reporter.set_service_status(Temporal::SERVICE, status).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
    });
    (addr, task)
}

/// The test bed's real Temporal (the CLI's dev server, Server 1.29), with `default` and `orders`.
fn temporal(test: &str) -> Option<Endpoint> {
    kind_parity_testkit::require(kind_parity_testkit::TEMPORAL, test).map(Endpoint::Address)
}

#[tokio::test]
async fn a_real_temporal_frontend_reports_its_workflow_service_serving() {
    let Some(endpoint) = temporal("a_real_temporal_frontend_reports_its_workflow_service_serving") else { return };
    let found = Temporal::new(endpoint).run().await.unwrap();
    assert_eq!(found, "gRPC health: temporal.api.workflowservice.v1.WorkflowService SERVING");
}

#[tokio::test]
async fn the_namespaces_a_real_temporal_has_registered_pass() {
    let Some(endpoint) = temporal("the_namespaces_a_real_temporal_has_registered_pass") else { return };
    let found = Temporal::new(endpoint).with_namespaces(vec!["default".into(), "orders".into()]).run().await.unwrap();
    assert_eq!(
        found,
        "gRPC health: temporal.api.workflowservice.v1.WorkflowService SERVING, 2 namespace(s) registered"
    );
}

#[tokio::test]
async fn a_namespace_a_real_temporal_lacks_is_named() {
    let Some(endpoint) = temporal("a_namespace_a_real_temporal_lacks_is_named") else { return };
    let failure =
        Temporal::new(endpoint).with_namespaces(vec!["orders".into(), "billing".into()]).run().await.unwrap_err();
    assert_eq!(failure.found, "namespace(s) not registered: billing");
}

/// A real Temporal cannot be made to report NOT_SERVING on demand: a stand-in gRPC server
/// (tonic's health service) does, as a frontend does while it starts or drains.
#[tokio::test]
async fn a_frontend_reporting_not_serving_fails() {
    let (not_serving, task) = grpc_health(Some(tonic_health::ServingStatus::NotServing)).await;
    let failure = Temporal::new(Endpoint::Address(not_serving.to_string())).run().await.expect_err("not serving");
    assert_eq!(failure.found, "gRPC health: temporal.api.workflowservice.v1.WorkflowService is NOT_SERVING");
    task.abort();
}

#[tokio::test]
async fn a_grpc_server_that_is_not_temporal_is_named_so() {
    // Some other gRPC server (a stand-in with the health service only): it does not know the
    // workflow service.
    let (other, task) = grpc_health(None).await;
    let failure = Temporal::new(Endpoint::Address(other.to_string())).run().await.expect_err("not temporal");
    assert_eq!(
        failure.found,
        format!(
            "the server at {other} does not serve temporal.api.workflowservice.v1.WorkflowService: not a Temporal frontend"
        )
    );
    task.abort();
}

#[tokio::test]
async fn a_closed_port_is_unreachable_temporal() {
    let port = common::closed().await;
    let failure = Temporal::new(Endpoint::Address(port.to_string())).run().await.expect_err("closed");
    assert!(failure.found.starts_with(&format!("cannot reach Temporal's frontend at {port}")), "{}", failure.found);
}

/// Vault's KV v2 read API as its documentation gives it (`GET /v1/<mount>/data/<path>` with
/// `X-Vault-Token`): no Vault binary can be installed on this machine, so this small server
/// stands in for the one `cargo xtask e2e` reaches in the cluster.
async fn vault_stand_in(token: &'static str) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head).to_lowercase();
            let path = text.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let (status, body) = if !text.contains(&format!("x-vault-token: {token}")) {
                (403, r#"{"errors":["permission denied"]}"#.to_owned())
            } else if path == "/v1/secret/data/app" {
                (200, r#"{"data":{"data":{"session":"s3cret"},"metadata":{"version":1}}}"#.to_owned())
            } else {
                (404, r#"{"errors":[]}"#.to_owned())
            };
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tcp.write_all(response.as_bytes()).await;
        }
    });
    (addr, task)
}

#[tokio::test]
async fn vaults_declared_paths_must_be_readable_with_every_key() {
    let (addr, task) = vault_stand_in("root-token").await;
    let endpoint = Endpoint::Address(addr.to_string());
    let paths = |keys: &[&str]| vec![("secret/app".to_owned(), keys.iter().map(|k| (*k).to_owned()).collect())];
    let found = Vault::new(endpoint.clone(), "root-token", paths(&["session"])).run().await.unwrap();
    assert_eq!(found, "1 path(s) readable with the environment's token, every declared key present");

    let failure = Vault::new(endpoint.clone(), "root-token", paths(&["session", "api-key"])).run().await.unwrap_err();
    assert_eq!(failure.found, "secret/app lacks api-key");
    let failure = Vault::new(endpoint.clone(), "wrong", paths(&["session"])).run().await.unwrap_err();
    assert_eq!(failure.found, "HTTP 403 reading secret/app: the environment's token is refused");
    let missing = vec![("secret/other".to_owned(), vec!["x".to_owned()])];
    let failure = Vault::new(endpoint, "root-token", missing).run().await.unwrap_err();
    assert_eq!(failure.found, "secret/other does not exist");
    task.abort();
}
