//! The browser-facing probes against real HTTPS servers started here, with certificates from a
//! CA made in the test: routes, an unknown host, the certificate (chain, SAN, expiry), Keycloak's
//! issuer, and what a closed port and a server that never answers do.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Pki, closed, discovery, serve, silent};
use kind_parity_probes::http::{OidcIssuer, Route, UnknownHost};
use kind_parity_probes::tls::Certificate;
use kind_parity_probes::{Check, Next, Outcome, Probe, suite};
use url::Url;

const NO_DELAY: Duration = Duration::ZERO;

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

/// A server for `*.kp.test` answering 200 on api's /healthz and 404 for every other host.
async fn ingress(pki: &Pki) -> common::Server {
    serve(
        pki.leaf(&["*.kp.test", "kp.test"], 90),
        NO_DELAY,
        Arc::new(|host: &str, path: &str| match (host.split(':').next().unwrap(), path) {
            ("api.kp.test", "/healthz") => (200, "ok".into()),
            ("api.kp.test", _) => (500, "boom".into()),
            _ => (404, "404 page not found".into()),
        }),
    )
    .await
}

#[tokio::test]
async fn a_route_answers_its_health_path_and_an_unknown_host_does_not() {
    let pki = Pki::new("kp test CA");
    let server = ingress(&pki).await;
    let port = server.addr.port();

    let route =
        Route::new("api", url(&format!("https://api.kp.test:{port}/healthz")), server.addr, &pki.ca_pem).unwrap();
    let found = route.run().await.expect("route passes");
    assert_eq!(found, "HTTP 200 OK from api");

    let unknown = UnknownHost::new(url(&format!("https://nope.kp.test:{port}/")), server.addr, &pki.ca_pem).unwrap();
    assert_eq!(unknown.run().await.unwrap(), "HTTP 404 Not Found: no service answers for an unknown host");

    // Wrong routing: the ingress has no rule for the host.
    let lost = Route::new("web", url(&format!("https://web.kp.test:{port}/")), server.addr, &pki.ca_pem).unwrap();
    let failure = lost.run().await.expect_err("no route");
    assert_eq!(failure.found, "HTTP 404: the ingress has no route for web.kp.test/");
    assert!(failure.remediation.contains("check the Ingress of `web`"), "{}", failure.remediation);

    // The route reaches the service, but its health path does not answer 2xx.
    let sick = Route::new("api", url(&format!("https://api.kp.test:{port}/other")), server.addr, &pki.ca_pem).unwrap();
    let failure = sick.run().await.expect_err("500");
    assert_eq!(failure.found, "HTTP 500 Internal Server Error for the health path /other");
}

#[tokio::test]
async fn a_route_the_ingress_takes_a_moment_to_program_passes() {
    // As Traefik answers 404 until it has applied a Service's new endpoints.
    let pki = Pki::new("kp test CA");
    let started = std::time::Instant::now();
    let server = serve(
        pki.leaf(&["*.kp.test"], 90),
        NO_DELAY,
        Arc::new(move |_: &str, _: &str| {
            if started.elapsed() < Duration::from_millis(1500) {
                (404, "404 page not found".into())
            } else {
                (200, "ok".into())
            }
        }),
    )
    .await;
    let port = server.addr.port();
    let route =
        Route::new("api", url(&format!("https://api.kp.test:{port}/healthz")), server.addr, &pki.ca_pem).unwrap();
    assert_eq!(route.run().await.expect("the route appears"), "HTTP 200 OK from api");
}

#[tokio::test]
async fn a_catch_all_route_fails_the_unknown_host_probe() {
    let pki = Pki::new("kp test CA");
    let server = serve(pki.leaf(&["*.kp.test"], 90), NO_DELAY, Arc::new(|_: &str, _: &str| (200, "hi".into()))).await;
    let unknown =
        UnknownHost::new(url(&format!("https://nope.kp.test:{}/", server.addr.port())), server.addr, &pki.ca_pem)
            .unwrap();
    let failure = unknown.run().await.expect_err("catch-all");
    assert_eq!(failure.found, "HTTP 200 OK for an unknown host: some route answers every host");
}

#[tokio::test]
async fn the_certificate_must_verify_cover_the_host_and_stay_valid() {
    let pki = Pki::new("kp test CA");
    let good = ingress(&pki).await;
    let found = Certificate::new("api.kp.test", good.addr, &pki.ca_pem).unwrap().run().await.expect("valid");
    assert!(found.starts_with("verifies against the local CA, covers api.kp.test, valid until "), "{found}");

    // SAN mismatch.
    let failure =
        Certificate::new("api.other.test", good.addr, &pki.ca_pem).unwrap().run().await.expect_err("san mismatch");
    assert_eq!(failure.found, "the certificate does not cover api.other.test (it covers *.kp.test, kp.test)");

    // Expired.
    let expired =
        serve(pki.leaf(&["api.kp.test"], -2), NO_DELAY, Arc::new(|_: &str, _: &str| (200, String::new()))).await;
    let failure = Certificate::new("api.kp.test", expired.addr, &pki.ca_pem).unwrap().run().await.expect_err("expired");
    assert!(failure.found.starts_with("the certificate expired on "), "{}", failure.found);
    assert!(failure.remediation.contains("renews the certificate"), "{}", failure.remediation);
    assert_eq!(failure.next, [Next::Up], "the action is a value, not a command of the CLI's");

    // Valid today, expiring within a week.
    let soon = serve(pki.leaf(&["api.kp.test"], 3), NO_DELAY, Arc::new(|_: &str, _: &str| (200, String::new()))).await;
    let failure = Certificate::new("api.kp.test", soon.addr, &pki.ca_pem).unwrap().run().await.expect_err("expiring");
    assert!(
        failure.found.starts_with("the certificate expires on ") && failure.found.ends_with("(in 2 days)"),
        "{}",
        failure.found
    );

    // Signed by another CA (the ingress controller's default certificate, say).
    let stranger = Pki::new("someone else");
    let foreign =
        serve(stranger.leaf(&["api.kp.test"], 90), NO_DELAY, Arc::new(|_: &str, _: &str| (200, String::new()))).await;
    let failure = Certificate::new("api.kp.test", foreign.addr, &pki.ca_pem).unwrap().run().await.expect_err("issuer");
    assert_eq!(failure.found, "the certificate is not signed by this environment's CA (issuer CN=someone else)");

    // Nothing listening.
    let port = closed().await;
    let failure = Certificate::new("api.kp.test", port, &pki.ca_pem).unwrap().run().await.expect_err("closed");
    assert!(failure.found.starts_with(&format!("cannot connect to {port}: ")), "{}", failure.found);
}

#[tokio::test]
async fn keycloaks_issuer_must_be_the_browser_facing_url_exactly() {
    let pki = Pki::new("kp test CA");
    // The server answers as Keycloak does with a given hostname setting.
    let keycloak = |said: Arc<dyn Fn(u16) -> String + Send + Sync>| {
        let pki = &pki;
        async move {
            let leaf = pki.leaf(&["auth.kp.test"], 90);
            let holder: Arc<std::sync::OnceLock<u16>> = Arc::new(std::sync::OnceLock::new());
            let port = Arc::clone(&holder);
            let server = serve(
                leaf,
                NO_DELAY,
                Arc::new(move |_: &str, path: &str| {
                    if path == "/realms/app/.well-known/openid-configuration" {
                        (200, discovery(&said(*port.get().unwrap())))
                    } else {
                        (404, String::new())
                    }
                }),
            )
            .await;
            holder.set(server.addr.port()).unwrap();
            server
        }
    };

    let right = keycloak(Arc::new(|port| format!("https://auth.kp.test:{port}/realms/app"))).await;
    let issuer = url(&format!("https://auth.kp.test:{}/realms/app", right.addr.port()));
    let found = OidcIssuer::new(issuer.clone(), right.addr, &pki.ca_pem).unwrap().run().await.expect("issuer");
    assert_eq!(found, format!("issuer and endpoints are {issuer}"));

    // Keycloak assumed its own port (the seed's failure): the issuer has the wrong port.
    let port_wrong = keycloak(Arc::new(|_| "https://auth.kp.test:8443/realms/app".to_owned())).await;
    let issuer = url(&format!("https://auth.kp.test:{}/realms/app", port_wrong.addr.port()));
    let failure = OidcIssuer::new(issuer.clone(), port_wrong.addr, &pki.ca_pem).unwrap().run().await.expect_err("port");
    assert_eq!(
        failure.found,
        format!(
            "issuer is https://auth.kp.test:8443/realms/app, the browser uses {issuer}: port 8443 instead of {}",
            port_wrong.addr.port()
        )
    );
    assert!(failure.remediation.contains("KC_HOSTNAME"), "{}", failure.remediation);

    // A wrong issuer altogether: the in-cluster name, over plain HTTP.
    let internal = keycloak(Arc::new(|_| "http://keycloak:8080/realms/app".to_owned())).await;
    let issuer = url(&format!("https://auth.kp.test:{}/realms/app", internal.addr.port()));
    let failure = OidcIssuer::new(issuer, internal.addr, &pki.ca_pem).unwrap().run().await.expect_err("issuer");
    assert!(
        failure.found.ends_with(&format!(
            "scheme http instead of https, host keycloak instead of auth.kp.test, port 8080 instead of {}",
            internal.addr.port()
        )),
        "{}",
        failure.found
    );

    // A realm that does not exist.
    let issuer = url(&format!("https://auth.kp.test:{}/realms/other", right.addr.port()));
    let failure = OidcIssuer::new(issuer, right.addr, &pki.ca_pem).unwrap().run().await.expect_err("realm");
    assert_eq!(failure.found, "HTTP 404 Not Found for the discovery document");
}

#[tokio::test]
async fn a_closed_port_and_a_server_that_never_answers_fail_closed() {
    let pki = Pki::new("kp test CA");
    let port = closed().await;
    let mute = silent().await;
    let route =
        |addr| Route::new("api", url(&format!("https://api.kp.test:{}/healthz", 443)), addr, &pki.ca_pem).unwrap();
    let probes = vec![
        Probe::new("route.closed", "api", route(port)),
        Probe::new("route.silent", "api", route(mute.addr)).timeout(Duration::from_millis(700)),
        Probe::new("tls.silent", "ingress", Certificate::new("api.kp.test", mute.addr, &pki.ca_pem).unwrap())
            .timeout(Duration::from_millis(700)),
    ];
    let report = suite::run(probes, &|_| {}).await.unwrap();
    assert!(!report.passed);
    let by_id = |id: &str| report.results.iter().find(|r| r.id == id).unwrap();

    let refused = by_id("route.closed");
    assert_eq!(refused.outcome, Outcome::Fail);
    assert!(refused.found.starts_with(&format!("cannot connect to {port}: ")), "{}", refused.found);
    assert!(refused.remediation.as_deref().unwrap().contains("is the environment up"), "{refused:?}");

    for id in ["route.silent", "tls.silent"] {
        let r = by_id(id);
        assert_eq!((r.outcome, r.found.as_str()), (Outcome::Fail, "no answer within 700ms"), "{r:?}");
        assert!(r.duration_ms >= 700 && r.duration_ms < 5000, "{r:?}");
    }
}
