//! A real login, as a browser does it: the OpenID Connect authorization-code flow with PKCE
//! (RFC 7636) through the ingress, for a test user the realm declares, then a call to the API
//! with the access token.
//!
//! The steps, each named in a failure: `discovery` (the issuer's document), `authorize` (the
//! authorization endpoint answers with Keycloak's login form; a redirect URI the client does not
//! allow fails here), `login` (the form is posted with the user's credentials and cookies; the
//! answer is a redirect to the redirect URI carrying the code and the same `state`), `token` (the
//! code and the PKCE verifier are exchanged at the token endpoint, with the web app's `Origin`
//! as a browser sends it: a web origin the client does not allow fails here), `issuer` (the
//! token's `iss` is discovery's, which is the browser-facing issuer) and `api` (the API answers
//! 2xx to the token). The password is never printed; neither are the code and the tokens.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use futures::future::{BoxFuture, FutureExt as _};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::error::{Error, Result};
use crate::probe::{Check, Failure, Next, chain};

/// What the login uses.
#[derive(Clone)]
pub struct LoginSpec {
    /// The browser-facing issuer (`https://auth.localtest.me/realms/dev`).
    pub issuer: Url,
    /// The realm's public client with the standard flow (`web`).
    pub client_id: String,
    /// Where the realm sends the browser back (a URL the client allows).
    pub redirect_uri: Url,
    /// The test user.
    pub username: String,
    /// Its password (never printed).
    pub password: String,
    /// A URL of the API that must accept the access token, if any.
    pub api: Option<Url>,
}

impl fmt::Debug for LoginSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginSpec")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("api", &self.api.as_ref().map(Url::as_str))
            .finish()
    }
}

/// The login probe.
#[derive(Debug, Clone)]
pub struct OidcLogin {
    spec: LoginSpec,
    connect: Option<SocketAddr>,
    ca_pem: Option<String>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    b64url(&bytes)
}

/// A failure of one named step.
fn step(name: &str, found: impl fmt::Display, remediation: impl Into<String>) -> Failure {
    Failure::new(format!("step {name}: {found}"), remediation)
}

impl OidcLogin {
    /// A login through the ingress at `connect` (every host of the flow is sent there), trusting
    /// only `ca_pem`; `None` for both reaches the URLs as they are (a Keycloak on loopback).
    pub fn new(spec: LoginSpec, connect: Option<SocketAddr>, ca_pem: Option<&str>) -> Result<Self> {
        if let Some(pem) = ca_pem {
            reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| Error::BadCa(e.to_string()))?;
        }
        Ok(Self { spec, connect, ca_pem: ca_pem.map(str::to_owned) })
    }

    /// A browser-like client: a cookie jar, no automatic redirects (each is a step), every host
    /// of the flow resolved to the ingress.
    fn client(&self) -> std::result::Result<reqwest::Client, Failure> {
        let mut builder = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .use_rustls_tls();
        if let Some(pem) = &self.ca_pem {
            let ca = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                Failure::new(format!("the environment's CA is not PEM: {e}"), "recreate the environment")
                    .then(Next::Reset)
            })?;
            builder = builder.tls_built_in_root_certs(false).add_root_certificate(ca);
        }
        if let Some(connect) = self.connect {
            let urls = [Some(&self.spec.issuer), Some(&self.spec.redirect_uri), self.spec.api.as_ref()];
            for host in urls.into_iter().flatten().filter_map(Url::host_str) {
                builder = builder.resolve(host, connect);
            }
        }
        builder.build().map_err(|e| Failure::new(format!("building the HTTP client: {}", chain(&e)), "report this"))
    }

    fn unanswered(&self, name: &str, url: &Url, e: &reqwest::Error) -> Failure {
        let via = self.connect.map(|c| format!(" via {c}")).unwrap_or_default();
        step(name, format!("no answer from {url}{via}: {}", chain(e)), "check that Keycloak and the ingress are ready")
            .then(Next::Status)
    }

    async fn check(&self) -> std::result::Result<String, Failure> {
        let client = self.client()?;
        let spec = &self.spec;
        let issuer = spec.issuer.as_str().trim_end_matches('/').to_owned();

        // discovery
        let discovery = Url::parse(&format!("{issuer}/.well-known/openid-configuration")).expect("a URL");
        let response =
            client.get(discovery.clone()).send().await.map_err(|e| self.unanswered("discovery", &discovery, &e))?;
        if !response.status().is_success() {
            return Err(step(
                "discovery",
                format!("HTTP {} for {discovery}", response.status()),
                "check `keycloak.realm` and that the realm was imported",
            ));
        }
        let document: serde_json::Value = response.json().await.map_err(|e| {
            step("discovery", format!("the document is not JSON: {}", chain(&e)), "check Keycloak's logs")
        })?;
        let endpoint = |name: &str| -> std::result::Result<Url, Failure> {
            document[name].as_str().and_then(|u| Url::parse(u).ok()).ok_or_else(|| {
                step("discovery", format!("no `{name}` in the discovery document"), "check Keycloak's version")
            })
        };
        let (authorize, token) = (endpoint("authorization_endpoint")?, endpoint("token_endpoint")?);
        let discovered_issuer = document["issuer"].as_str().unwrap_or_default().to_owned();

        // authorize
        let verifier = random();
        let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
        let state = random();
        let mut url = authorize.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &spec.client_id)
            .append_pair("redirect_uri", spec.redirect_uri.as_str())
            .append_pair("scope", "openid")
            .append_pair("state", &state)
            .append_pair("nonce", &random())
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let response = client.get(url).send().await.map_err(|e| self.unanswered("authorize", &authorize, &e))?;
        let status = response.status();
        let page = response.text().await.unwrap_or_default();
        if page.contains("Invalid parameter: redirect_uri") {
            return Err(step(
                "authorize",
                format!(
                    "the realm's client `{}` does not allow the redirect URI {}",
                    spec.client_id, spec.redirect_uri
                ),
                format!(
                    "add {} (or a pattern that matches it) to the client's redirectUris in the realm file",
                    spec.redirect_uri
                ),
            ));
        }
        if page.contains("Client not found") {
            return Err(step(
                "authorize",
                format!("the realm has no client `{}`", spec.client_id),
                "declare the client in the realm file, or fix `keycloak.login.client`",
            ));
        }
        let Some(action) = form_action(&page, "kc-form-login") else {
            return Err(step(
                "authorize",
                format!("HTTP {status}: no login form in the answer ({})", page_error(&page)),
                "the client must be a public client with the standard flow enabled",
            ));
        };

        // login
        let action = Url::parse(&action)
            .map_err(|e| step("login", format!("the form's action is not a URL: {e}"), "check Keycloak's theme"))?;
        let response = client
            .post(action.clone())
            .form(&[("username", spec.username.as_str()), ("password", spec.password.as_str()), ("credentialId", "")])
            .send()
            .await
            .map_err(|e| self.unanswered("login", &action, &e))?;
        let status = response.status();
        let location =
            response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned);
        let Some(location) = location else {
            let page = response.text().await.unwrap_or_default();
            let (found, fix) = if page.contains("Invalid username or password") {
                let found = format!("Keycloak refused the credentials of `{}`", spec.username);
                let fix = "the test user's password comes from secrets.json: bringing the environment up imports the realm with it (a realm edited by hand since? recreate the environment)";
                return Err(step("login", found, fix).then(Next::Up).then(Next::Reset));
            } else if page.contains("Cookie not found") || page.contains("cookie") && status.is_client_error() {
                (
                    "Keycloak lost the login session's cookie".to_owned(),
                    "Keycloak must see the browser-facing scheme and host (KC_HOSTNAME, KC_PROXY_HEADERS)".to_owned(),
                )
            } else if form_action(&page, "kc-form-login").is_none() && page.contains("<form") {
                (
                    format!("Keycloak asks `{}` for a required action ({})", spec.username, page_error(&page)),
                    "the test user must be complete: email verified, first and last name set, no required actions"
                        .to_owned(),
                )
            } else {
                (format!("HTTP {status}, no redirect ({})", page_error(&page)), "read Keycloak's logs".to_owned())
            };
            return Err(step("login", found, fix));
        };
        let back = action
            .join(&location)
            .map_err(|e| step("login", format!("the redirect {location} is not a URL: {e}"), "read Keycloak's logs"))?;
        let expected = spec.redirect_uri.as_str();
        if !back.as_str().starts_with(expected.split('?').next().unwrap_or(expected)) {
            return Err(step(
                "login",
                format!("redirected to {}, not to {expected}", strip_query(&back)),
                "check the client's redirect URIs",
            ));
        }
        let query = |name: &str| back.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        if let Some(error) = query("error") {
            return Err(step(
                "login",
                format!("the redirect carries error `{error}`: {}", query("error_description").unwrap_or_default()),
                "read Keycloak's logs",
            ));
        }
        if query("state").as_deref() != Some(state.as_str()) {
            return Err(step(
                "login",
                "the redirect's state is not the one sent",
                "something between the browser and Keycloak rewrites the redirect",
            ));
        }
        let Some(code) = query("code") else {
            return Err(step("login", "the redirect carries no code", "read Keycloak's logs"));
        };

        // token
        let origin = spec.redirect_uri.origin().ascii_serialization();
        let response = client
            .post(token.clone())
            .header(reqwest::header::ORIGIN, &origin)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", spec.redirect_uri.as_str()),
                ("client_id", spec.client_id.as_str()),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .map_err(|e| self.unanswered("token", &token, &e))?;
        let status = response.status();
        let allowed = response
            .headers()
            .get(reqwest::header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(step(
                "token",
                format!(
                    "HTTP {status}: {} {}",
                    body["error"].as_str().unwrap_or("?"),
                    body["error_description"].as_str().unwrap_or_default()
                ),
                "the code was refused: the client must accept PKCE (S256) and the same redirect URI",
            ));
        }
        if allowed.as_deref() != Some(origin.as_str()) {
            return Err(step(
                "token",
                format!(
                    "the token endpoint does not allow the web origin {origin} (Access-Control-Allow-Origin: {})",
                    allowed.as_deref().unwrap_or("none")
                ),
                format!(
                    "add {origin} to the client's webOrigins in the realm file: a browser app cannot read the token otherwise"
                ),
            ));
        }
        let Some(access) = body["access_token"].as_str() else {
            return Err(step("token", "no access_token in the answer", "read Keycloak's logs"));
        };

        // issuer
        let claims = access
            .split('.')
            .nth(1)
            .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .ok_or_else(|| step("issuer", "the access token is not a JWT", "check the client's token settings"))?;
        let token_issuer = claims["iss"].as_str().unwrap_or_default();
        if token_issuer != discovered_issuer || token_issuer.trim_end_matches('/') != issuer {
            return Err(step(
                "issuer",
                format!(
                    "the token's issuer is {token_issuer}, discovery says {discovered_issuer}, the browser uses {issuer}"
                ),
                "Keycloak must know its browser-facing URL (KC_HOSTNAME) and the token request must reach it through the same host",
            ));
        }

        // api
        let mut done =
            format!("logged in as {} with client {} (authorization code + PKCE)", spec.username, spec.client_id);
        if let Some(api) = &spec.api {
            let response = client
                .get(api.clone())
                .bearer_auth(access)
                .send()
                .await
                .map_err(|e| self.unanswered("api", api, &e))?;
            let status = response.status();
            if !status.is_success() {
                let challenge = response
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = response.text().await.unwrap_or_default();
                return Err(step(
                    "api",
                    format!("{api} answered HTTP {status} to the token: {}", challenge.unwrap_or(body)),
                    "the API must accept the realm's tokens: its issuer (OIDC_ISSUER) and audience must match the token's",
                ));
            }
            done.push_str(&format!("; {api} accepted the token"));
        }
        Ok(done)
    }
}

/// The `action` of the form with `id`, HTML entities decoded.
fn form_action(page: &str, id: &str) -> Option<String> {
    let document = scraper::Html::parse_document(page);
    let selector = scraper::Selector::parse(&format!("form#{id}")).ok()?;
    document.select(&selector).next()?.value().attr("action").map(str::to_owned)
}

/// Keycloak's error or feedback text on a page, or its title.
fn page_error(page: &str) -> String {
    let document = scraper::Html::parse_document(page);
    for css in ["#input-error", ".kc-feedback-text", ".pf-v5-c-alert__title", "#kc-page-title", "title"] {
        let Ok(selector) = scraper::Selector::parse(css) else { continue };
        if let Some(node) = document.select(&selector).next() {
            let text = node.text().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ");
            if !text.is_empty() {
                return text;
            }
        }
    }
    "an empty page".into()
}

fn strip_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

impl Check for OidcLogin {
    fn target(&self) -> String {
        let via = self.connect.map(|c| format!(" via {c}")).unwrap_or_default();
        format!("login as {} at {}{via}", self.spec.username, self.spec.issuer)
    }

    fn run(&self) -> BoxFuture<'_, std::result::Result<String, Failure>> {
        self.check().boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keycloaks_login_form_action_with_entities_decoded() {
        let page = r#"<html><body><form id="kc-form-login" onsubmit="x" action="https://auth.localtest.me/realms/dev/login-actions/authenticate?session_code=a&amp;execution=b&amp;client_id=web" method="post"></form></body></html>"#;
        assert_eq!(
            form_action(page, "kc-form-login").as_deref(),
            Some(
                "https://auth.localtest.me/realms/dev/login-actions/authenticate?session_code=a&execution=b&client_id=web"
            )
        );
        assert_eq!(form_action(page, "kc-register-form"), None);
    }

    #[test]
    fn names_keycloaks_error_text() {
        let page = r#"<html><head><title>Sign in</title></head><body><span id="input-error"> Invalid username
            or password. </span></body></html>"#;
        assert_eq!(page_error(page), "Invalid username or password.");
        assert_eq!(page_error("<html><head><title>Error</title></head></html>"), "Error");
    }

    #[test]
    fn the_password_never_reaches_debug_output() {
        let spec = LoginSpec {
            issuer: Url::parse("https://auth.localtest.me/realms/dev").unwrap(),
            client_id: "web".into(),
            redirect_uri: Url::parse("https://web.localtest.me/").unwrap(),
            username: "parity-probe".into(),
            password: "hunter2-secret".into(),
            api: None,
        };
        let login = OidcLogin::new(spec, None, None).unwrap();
        assert!(!format!("{login:?}").contains("hunter2"));
    }
}
