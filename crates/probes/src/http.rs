//! What a browser sees through the ingress: each service's route answers its health path, an
//! unknown host reaches no service, and Keycloak's discovery document names the browser-facing
//! issuer exactly. Requests go to the listen address and host port with the real Host header and
//! SNI, trusting only the environment's CA, so they test what a browser would, without DNS.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt as _};
use url::Url;

use crate::error::{Error, Result};
use crate::probe::{Check, Failure, Next, chain};

/// An HTTPS client that trusts only `ca_pem` and sends `url`'s host to `connect`.
fn client(ca_pem: &str, url: &Url, connect: SocketAddr) -> Result<reqwest::Client> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(|e| Error::BadCa(e.to_string()))?;
    let host = url.host_str().unwrap_or_default();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .resolve(host, connect)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Error::BadCa(chain(&e)))
}

/// How long a route may take to appear in the ingress after its backend became ready.
/// Ingress controllers program routes asynchronously: Traefik drops a router whose Service has
/// no ready endpoints (its 404 until then, traefik/traefik#9242) and applies configuration
/// changes at most every `providersThrottleDuration` (2s by default); ingress-nginx reloads
/// too. A probe run right after readiness (`up`'s parity check) would otherwise see that window.
const ROUTE_SETTLE: Duration = Duration::from_secs(10);

/// GET `url`, asked again while the ingress answers as one that has not taken the route yet
/// (404, 502, 503), for at most [`ROUTE_SETTLE`]; the last answer is the one judged.
async fn get_settled(client: &reqwest::Client, url: &Url) -> reqwest::Result<reqwest::Response> {
    let deadline = tokio::time::Instant::now() + ROUTE_SETTLE;
    loop {
        let response = client.get(url.clone()).send().await?;
        let unsettled = matches!(response.status().as_u16(), 404 | 502 | 503);
        if !unsettled || tokio::time::Instant::now() >= deadline {
            return Ok(response);
        }
        tracing::debug!(%url, status = %response.status(), "the ingress has no route yet; asking again");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Why a request got no answer, and what to check.
fn unanswered(e: &reqwest::Error, url: &Url, connect: SocketAddr) -> Failure {
    let text = chain(e);
    if e.is_connect() && (text.contains("certificate") || text.contains("tls") || text.contains("TLS")) {
        Failure::new(
            format!("the TLS handshake for {url} failed: {text}"),
            "the certificate probe of this host says why",
        )
    } else if e.is_connect() {
        Failure::new(
            format!("cannot connect to {connect}: {text}"),
            format!("nothing answers on {connect}: is the environment up and the ingress's host port mapped?"),
        )
        .then(Next::Status)
    } else if e.is_timeout() {
        Failure::new(format!("{url} did not answer in time"), "check the service's logs and readiness")
    } else {
        Failure::new(format!("requesting {url}: {text}"), "check the ingress controller's logs")
    }
}

/// A service's route: GET of its health path through the ingress answers 2xx.
#[derive(Debug, Clone)]
pub struct Route {
    service: String,
    url: Url,
    connect: SocketAddr,
    client: reqwest::Client,
}

impl Route {
    /// Checks that `url` (the service's browser-facing health URL) answers 2xx at `connect`.
    pub fn new(service: impl Into<String>, url: Url, connect: SocketAddr, ca_pem: &str) -> Result<Self> {
        let client = client(ca_pem, &url, connect)?;
        Ok(Self { service: service.into(), url, connect, client })
    }

    async fn check(&self) -> std::result::Result<String, Failure> {
        let response =
            get_settled(&self.client, &self.url).await.map_err(|e| unanswered(&e, &self.url, self.connect))?;
        let status = response.status();
        let host = self.url.host_str().unwrap_or_default();
        let path = self.url.path();
        match status.as_u16() {
            200..=299 => Ok(format!("HTTP {status} from {}", self.service)),
            404 => Err(Failure::new(
                format!("HTTP 404: the ingress has no route for {host}{path}"),
                format!(
                    "check the Ingress of `{}` in the rendered manifests: its host must be {host} and its class the controller's",
                    self.service
                ),
            )
            .then(Next::Render)),
            502..=504 => Err(Failure::new(
                format!("HTTP {status}: the route exists but `{}` has no ready endpoint", self.service),
                "the environment's status shows which pods are not ready",
            )
            .then(Next::Status)),
            300..=399 => Err(Failure::new(
                format!(
                    "HTTP {status} redirecting to {}",
                    response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("nowhere")
                ),
                format!(
                    "the health path must answer itself: set `services.{}.health_path` to a path that does",
                    self.service
                ),
            )),
            _ => Err(Failure::new(
                format!("HTTP {status} for the health path {path}"),
                format!("check `services.{}.health_path` and the service's logs", self.service),
            )
            .then(Next::logs_of(self.service.clone()))),
        }
    }
}

impl Check for Route {
    fn target(&self) -> String {
        format!("GET {} via {}", self.url, self.connect)
    }

    fn run(&self) -> BoxFuture<'_, std::result::Result<String, Failure>> {
        self.check().boxed()
    }
}

/// A host no service declares gets a 4xx from the ingress, not some service.
#[derive(Debug, Clone)]
pub struct UnknownHost {
    url: Url,
    connect: SocketAddr,
    client: reqwest::Client,
}

impl UnknownHost {
    /// Checks that `url` (a host under the environment's domain that no service uses) is refused.
    pub fn new(url: Url, connect: SocketAddr, ca_pem: &str) -> Result<Self> {
        let client = client(ca_pem, &url, connect)?;
        Ok(Self { url, connect, client })
    }

    async fn check(&self) -> std::result::Result<String, Failure> {
        let response =
            self.client.get(self.url.clone()).send().await.map_err(|e| unanswered(&e, &self.url, self.connect))?;
        let status = response.status();
        if status.is_client_error() {
            Ok(format!("HTTP {status}: no service answers for an unknown host"))
        } else {
            Err(Failure::new(
                format!("HTTP {status} for an unknown host: some route answers every host"),
                "give every Ingress rule a host; a rule without one catches typos and other environments' hosts",
            ))
        }
    }
}

impl Check for UnknownHost {
    fn target(&self) -> String {
        format!("GET {} via {}", self.url, self.connect)
    }

    fn run(&self) -> BoxFuture<'_, std::result::Result<String, Failure>> {
        self.check().boxed()
    }
}

/// Keycloak's discovery document, fetched at the browser-facing issuer, names that issuer
/// exactly (scheme, host, port, path) and endpoints under it.
#[derive(Debug, Clone)]
pub struct OidcIssuer {
    issuer: Url,
    discovery: Url,
    connect: SocketAddr,
    client: reqwest::Client,
}

impl OidcIssuer {
    /// Checks the realm whose browser-facing issuer is `issuer`.
    pub fn new(issuer: Url, connect: SocketAddr, ca_pem: &str) -> Result<Self> {
        let discovery =
            Url::parse(&format!("{}/.well-known/openid-configuration", issuer.as_str().trim_end_matches('/')))
                .expect("an issuer URL with a path appended is a URL");
        let client = client(ca_pem, &issuer, connect)?;
        Ok(Self { issuer, discovery, connect, client })
    }

    fn expected(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }

    /// How `found` differs from the expected issuer, part by part (the path only when
    /// `with_path`: endpoints live below the issuer's path).
    fn difference(&self, found: &str, with_path: bool) -> String {
        let Ok(url) = Url::parse(found) else { return format!("`{found}` is not a URL") };
        let mut parts = Vec::new();
        if url.scheme() != self.issuer.scheme() {
            parts.push(format!("scheme {} instead of {}", url.scheme(), self.issuer.scheme()));
        }
        if url.host_str() != self.issuer.host_str() {
            parts.push(format!(
                "host {} instead of {}",
                url.host_str().unwrap_or("none"),
                self.issuer.host_str().unwrap_or("none")
            ));
        }
        if url.port_or_known_default() != self.issuer.port_or_known_default() {
            let port = |p: Option<u16>| p.map_or("none".to_owned(), |p| p.to_string());
            parts.push(format!(
                "port {} instead of {}",
                port(url.port_or_known_default()),
                port(self.issuer.port_or_known_default())
            ));
        }
        if with_path && url.path().trim_end_matches('/') != self.issuer.path().trim_end_matches('/') {
            parts.push(format!("path {} instead of {}", url.path(), self.issuer.path()));
        }
        match (parts.is_empty(), with_path) {
            (false, _) => parts.join(", "),
            (true, true) => "a different spelling".into(),
            (true, false) => format!("a path outside {}", self.issuer.path()),
        }
    }

    async fn check(&self) -> std::result::Result<String, Failure> {
        let fix = format!(
            "Keycloak must know its browser-facing URL: its hostname setting (KC_HOSTNAME) must be {}, with the port, and it must trust the ingress's forwarded headers (KC_PROXY_HEADERS=xforwarded)",
            self.issuer.origin().ascii_serialization()
        );
        let response = get_settled(&self.client, &self.discovery)
            .await
            .map_err(|e| unanswered(&e, &self.discovery, self.connect))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::new(
                format!("HTTP {status} for the discovery document"),
                "check `keycloak.realm` and that the realm was imported (Keycloak's logs)",
            ));
        }
        let document: serde_json::Value = response.json().await.map_err(|e| {
            Failure::new(format!("the discovery document is not JSON: {}", chain(&e)), "check Keycloak's logs")
        })?;
        let field = |name: &str| document.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let Some(issuer) = field("issuer") else {
            return Err(Failure::new("the discovery document has no `issuer`", "check Keycloak's version and logs"));
        };
        if issuer.trim_end_matches('/') != self.expected() {
            return Err(Failure::new(
                format!("issuer is {issuer}, the browser uses {}: {}", self.expected(), self.difference(&issuer, true)),
                fix,
            ));
        }
        for name in ["authorization_endpoint", "token_endpoint"] {
            match field(name) {
                Some(endpoint) if endpoint.starts_with(&format!("{}/", self.expected())) => {}
                Some(endpoint) => {
                    return Err(Failure::new(
                        format!(
                            "{name} is {endpoint}, not under {}: {}",
                            self.expected(),
                            self.difference(&endpoint, false)
                        ),
                        fix,
                    ));
                }
                None => return Err(Failure::new(format!("the discovery document has no `{name}`"), fix)),
            }
        }
        Ok(format!("issuer and endpoints are {}", self.expected()))
    }
}

impl Check for OidcIssuer {
    fn target(&self) -> String {
        format!("GET {} via {}", self.discovery, self.connect)
    }

    fn run(&self) -> BoxFuture<'_, std::result::Result<String, Failure>> {
        self.check().boxed()
    }
}
