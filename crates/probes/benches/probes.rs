//! A suite of 20 probes against healthy local HTTPS targets, one of which answers after 300 ms:
//! the whole suite's wall time against that slowest probe alone, median of several runs, both
//! measured here. Target: ≤ 1.5× (the suite costs little more than its slowest probe).

#![allow(clippy::print_stdout, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Pki, serve};
use kind_parity_probes::http::Route;
use kind_parity_probes::tls::Certificate;
use kind_parity_probes::{Probe, suite};
use url::Url;

const RUNS: usize = 7;
const SLOW: Duration = Duration::from_millis(300);

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() {
    let pki = Pki::new("bench CA");
    let ok = Arc::new(|_: &str, _: &str| (200, "ok".to_owned()));
    let fast = serve(pki.leaf(&["*.kp.test"], 90), Duration::ZERO, ok.clone()).await;
    let slow = serve(pki.leaf(&["*.kp.test"], 90), SLOW, ok).await;
    let route = |name: &str, addr: std::net::SocketAddr| {
        let url = Url::parse(&format!("https://{name}.kp.test:{}/healthz", addr.port())).unwrap();
        Route::new(name.to_owned(), url, addr, &pki.ca_pem).unwrap()
    };
    // 10 TLS probes, 9 fast routes each after its TLS probe, and the slow route: 20 probes.
    let suite_of_20 = || {
        let mut probes = Vec::new();
        for i in 0..10 {
            let host = format!("svc{i}.kp.test");
            probes.push(Probe::new(
                format!("tls.{i}"),
                "ingress",
                Certificate::new(host, fast.addr, &pki.ca_pem).unwrap(),
            ));
        }
        for i in 0..9 {
            probes.push(
                Probe::new(format!("route.{i}"), "svc", route(&format!("svc{i}"), fast.addr))
                    .after([format!("tls.{i}")]),
            );
        }
        probes.push(Probe::new("route.slow", "svc", route("slow", slow.addr)));
        probes
    };
    // Warm up both servers and the code paths.
    assert!(suite::run(suite_of_20(), &|_| {}).await.unwrap().passed);

    let mut alone = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let report =
            suite::run(vec![Probe::new("route.slow", "svc", route("slow", slow.addr))], &|_| {}).await.unwrap();
        alone.push(started.elapsed());
        assert!(report.passed);
        let started = Instant::now();
        let report = suite::run(suite_of_20(), &|_| {}).await.unwrap();
        whole.push(started.elapsed());
        assert!(report.passed && report.results.len() == 20, "{}", report.table(&kind_parity_probes::Next::to_string));
    }
    let (alone, whole) = (median(alone), median(whole));
    let ratio = whole.as_secs_f64() / alone.as_secs_f64();
    println!("probes: 20-probe suite {whole:.1?} vs its slowest probe alone {alone:.1?} (median of {RUNS})");
    println!("probes: ratio {ratio:.2}x (target <= 1.5x) {}", if ratio <= 1.5 { "ok" } else { "OVER TARGET" });
}
