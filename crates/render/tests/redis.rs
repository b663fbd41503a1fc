//! The rendered Redis config against the host's real `redis-server`, as the pod runs it: the
//! password comes from the config file, never from an argument.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use serde_json::Value;

/// A `redis-server`, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn documents(content: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(content).map(|doc| serde::Deserialize::deserialize(doc).unwrap()).collect()
}

/// Sends each command in Redis's protocol on one connection; returns the first line of each answer.
fn ask(port: u16, commands: &[&[&str]]) -> Vec<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    commands
        .iter()
        .map(|command| {
            let mut request = format!("*{}\r\n", command.len());
            for part in *command {
                request.push_str(&format!("${}\r\n{part}\r\n", part.len()));
            }
            stream.write_all(request.as_bytes()).unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            line.trim_end().to_owned()
        })
        .collect()
}

#[test]
fn redis_reads_its_password_from_the_rendered_config_file() {
    // Regression (issue 12): `--requirepass $(REDIS_PASSWORD)` put the password in the process list.
    let test = "redis_reads_its_password_from_the_rendered_config_file";
    let Some(server) = kind_parity_testkit::require_program("redis-server", test) else { return };
    let loaded = load_demo(&[]);
    let mut secrets = secrets_for(&loaded);
    // A value written by hand, with what Redis's config syntax must escape.
    let password = "Kpass \"word\" with \\ and spaces";
    secrets.values.insert("redis-password".into(), password.into());
    let plan = render_loaded(&loaded, &secrets);
    let redis = plan.manifests.iter().find(|m| m.component == "redis").unwrap();
    let docs = documents(&redis.content);
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    let config = B64.decode(secret["data"]["redis.conf"].as_str().unwrap()).unwrap();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"], serde_json::json!(["redis-server", "/etc/redis/redis.conf"]));
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/etc/redis");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("redis.conf"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Server(
        Command::new(server)
            .arg(dir.path().join("redis.conf"))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let answers = ask(port, &[&["PING"], &["AUTH", password], &["PING"]]);
    assert!(answers[0].starts_with("-NOAUTH"), "{answers:?}");
    assert_eq!(answers[1..3], ["+OK", "+PONG"]);
}
