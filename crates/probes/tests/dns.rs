//! Host names resolve, on this machine, to the address the ingress listens on.

use std::net::{IpAddr, Ipv4Addr};

use kind_parity_probes::Check;
use kind_parity_probes::dns::Resolves;

#[tokio::test]
async fn a_resolving_host_passes_and_a_missing_one_names_the_fix() {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let found = Resolves::new("localhost", loopback).run().await.expect("localhost resolves");
    assert!(found.starts_with("resolves to ") && found.contains("127.0.0.1"), "{found}");

    // `.invalid` never resolves (RFC 2606).
    let failure = Resolves::new("api.kind-parity.invalid", loopback).run().await.expect_err("no such host");
    assert!(failure.found.starts_with("api.kind-parity.invalid does not resolve: "), "{}", failure.found);
    assert_eq!(
        failure.remediation,
        "add `127.0.0.1 api.kind-parity.invalid` to /etc/hosts, or set `domain` to one whose names resolve to 127.0.0.1 (localtest.me does through public DNS)"
    );

    // Resolves, to another address than the listen address.
    let failure = Resolves::new("localhost", "127.0.0.2".parse().unwrap()).run().await.expect_err("wrong address");
    assert!(
        failure.found.starts_with("localhost resolves to ") && failure.found.ends_with(", not 127.0.0.2"),
        "{}",
        failure.found
    );
}
