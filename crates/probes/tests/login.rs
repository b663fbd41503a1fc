//! The login probe against a real Keycloak (the test bed's, `KIND_PARITY_TEST_KEYCLOAK`) and the
//! demo api's real token check (`examples/demo/api/app.py`, run with the machine's python3):
//! the flow that passes, and each failure named by its step. Each test makes its own realm
//! through Keycloak's admin API and deletes it whatever happens.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::Duration;

use kind_parity_probes::Check as _;
use kind_parity_probes::login::{LoginSpec, OidcLogin};
use kind_parity_testkit as testkit;
use serde_json::json;
use url::Url;

const PASSWORD: &str = "correct-horse-battery";

struct Keycloak {
    base: String,
    admin: (String, String),
}

fn keycloak(test: &str) -> Option<Keycloak> {
    let base = testkit::require(testkit::KEYCLOAK, test)?;
    let admin = testkit::require(testkit::KEYCLOAK_ADMIN, test)?;
    let (user, password) = admin.split_once(':').expect("KIND_PARITY_TEST_KEYCLOAK_ADMIN is admin:PASSWORD");
    Some(Keycloak { base, admin: (user.to_owned(), password.to_owned()) })
}

impl Keycloak {
    async fn token(&self) -> String {
        let response: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/realms/master/protocol/openid-connect/token", self.base))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", &self.admin.0),
                ("password", &self.admin.1),
            ])
            .send()
            .await
            .expect("Keycloak answers")
            .json()
            .await
            .expect("a token response");
        response["access_token"].as_str().expect("an admin token").to_owned()
    }
}

/// A realm made for one test, deleted on drop.
struct Realm {
    name: String,
    base: String,
    admin: (String, String),
}

impl Drop for Realm {
    fn drop(&mut self) {
        let (base, admin, name) = (self.base.clone(), self.admin.clone(), self.name.clone());
        // A drop cannot await: its own thread and runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let token = Keycloak { base: base.clone(), admin }.token().await;
                let _ = reqwest::Client::new()
                    .delete(format!("{base}/admin/realms/{name}"))
                    .bearer_auth(token)
                    .send()
                    .await;
            });
        })
        .join();
    }
}

/// A free loopback port.
fn port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The web app's origin: never requested (the probe stops at the redirect), only named.
fn web() -> Url {
    Url::parse(&format!("http://127.0.0.1:{}/", port())).unwrap()
}

/// A realm with the public client `web` (PKCE, an audience mapper for `api`) allowing
/// `redirect` and `origin`, and the user `probe`.
async fn realm(kc: &Keycloak, test: &str, redirect: &str, origin: &str) -> Realm {
    realm_with(kc, test, redirect, origin, json!({})).await
}

/// [`realm`], with `extra`'s top-level keys added to the realm's representation.
async fn realm_with(kc: &Keycloak, test: &str, redirect: &str, origin: &str, extra: serde_json::Value) -> Realm {
    let name = format!("kp-{test}-{}", port());
    let mut body = json!({
        "realm": name, "enabled": true, "sslRequired": "none",
        "clients": [{
            "clientId": "web", "publicClient": true, "standardFlowEnabled": true,
            "directAccessGrantsEnabled": false,
            "redirectUris": [redirect], "webOrigins": [origin],
            "attributes": { "pkce.code.challenge.method": "S256" },
            "protocolMappers": [{
                "name": "api audience", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
                "config": { "included.custom.audience": "api", "access.token.claim": "true" }
            }]
        }],
        "users": [{
            "username": "probe", "enabled": true, "email": "probe@example.test", "emailVerified": true,
            "firstName": "login", "lastName": "probe",
            "credentials": [{ "type": "password", "value": PASSWORD, "temporary": false }]
        }]
    });
    for (key, value) in extra.as_object().expect("an object") {
        body[key] = value.clone();
    }
    let response = reqwest::Client::new()
        .post(format!("{}/admin/realms", kc.base))
        .bearer_auth(kc.token().await)
        .json(&body)
        .send()
        .await
        .expect("Keycloak answers");
    assert!(response.status().is_success(), "creating realm {name}: {}", response.status());
    Realm { name, base: kc.base.clone(), admin: kc.admin.clone() }
}

/// The demo api, verifying tokens of `issuer` for `audience`; killed on drop.
struct Api {
    child: Child,
    url: Url,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo_api(issuer: &str, audience: &str) -> Option<Api> {
    let python = testkit::require_program("python3", "the demo api")?;
    let port = port();
    let app = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/api/app.py");
    let child = Command::new(python)
        .arg(app)
        .env("PORT", port.to_string())
        .env("OIDC_ISSUER", issuer)
        .env("OIDC_AUDIENCE", audience)
        .spawn()
        .expect("python3 starts");
    // Held from here on, so a panic below still kills and reaps the process.
    let api = Api { child, url: Url::parse(&format!("http://127.0.0.1:{port}/me")).unwrap() };
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(api);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the demo api did not listen on {port}");
}

fn spec(kc: &Keycloak, realm: &Realm, redirect: &Url, password: &str, api: Option<&Api>) -> LoginSpec {
    LoginSpec {
        issuer: Url::parse(&format!("{}/realms/{}", kc.base, realm.name)).unwrap(),
        client_id: "web".into(),
        redirect_uri: redirect.clone(),
        username: "probe".into(),
        password: password.into(),
        api: api.map(|a| a.url.clone()),
    }
}

async fn run(spec: LoginSpec) -> Result<String, kind_parity_probes::Failure> {
    OidcLogin::new(spec, None, None).unwrap().run().await
}

#[tokio::test]
async fn a_browser_login_succeeds_and_the_demo_api_accepts_the_token() {
    let Some(kc) = keycloak("a_browser_login_succeeds") else { return };
    let web = web();
    let realm = realm(&kc, "ok", &format!("{web}*"), web.origin().ascii_serialization().as_str()).await;
    let issuer = format!("{}/realms/{}", kc.base, realm.name);
    let Some(api) = demo_api(&issuer, "api") else { return };
    let found = run(spec(&kc, &realm, &web, PASSWORD, Some(&api))).await.expect("the login passes");
    assert!(found.contains("accepted the token"), "{found}");
}

#[tokio::test]
async fn a_redirect_uri_the_client_does_not_allow_fails_at_authorize() {
    let Some(kc) = keycloak("a_redirect_uri_not_allowed") else { return };
    let web = web();
    let realm = realm(&kc, "redirect", "http://elsewhere.test/*", &web.origin().ascii_serialization()).await;
    let failure = run(spec(&kc, &realm, &web, PASSWORD, None)).await.expect_err("refused");
    assert!(failure.found.starts_with("step authorize:") && failure.found.contains("redirect URI"), "{failure:?}");
    assert!(failure.remediation.contains("redirectUris"), "{failure:?}");
}

#[tokio::test]
async fn a_wrong_password_fails_at_login_without_printing_it() {
    let Some(kc) = keycloak("a_wrong_password") else { return };
    let web = web();
    let realm = realm(&kc, "password", &format!("{web}*"), &web.origin().ascii_serialization()).await;
    let failure = run(spec(&kc, &realm, &web, "not-the-password", None)).await.expect_err("refused");
    assert!(
        failure.found.starts_with("step login:") && failure.found.contains("refused the credentials"),
        "{failure:?}"
    );
    assert!(!format!("{failure:?}").contains("not-the-password"));
}

#[tokio::test]
async fn a_web_origin_the_client_does_not_allow_fails_at_token() {
    let Some(kc) = keycloak("a_web_origin_not_allowed") else { return };
    let web = web();
    let realm = realm(&kc, "origin", &format!("{web}*"), "http://elsewhere.test").await;
    let failure = run(spec(&kc, &realm, &web, PASSWORD, None)).await.expect_err("refused");
    assert!(failure.found.starts_with("step token:") && failure.found.contains("web origin"), "{failure:?}");
    assert!(failure.remediation.contains("webOrigins"), "{failure:?}");
}

#[tokio::test]
async fn an_api_that_expects_another_audience_fails_at_api() {
    let Some(kc) = keycloak("an_api_that_expects_another_audience") else { return };
    let web = web();
    let realm = realm(&kc, "audience", &format!("{web}*"), &web.origin().ascii_serialization()).await;
    let issuer = format!("{}/realms/{}", kc.base, realm.name);
    let Some(api) = demo_api(&issuer, "billing") else { return };
    let failure = run(spec(&kc, &realm, &web, PASSWORD, Some(&api))).await.expect_err("refused");
    assert!(failure.found.starts_with("step api:") && failure.found.contains("401"), "{failure:?}");
    assert!(failure.found.contains("audience"), "the api's reason reaches the user: {failure:?}");
}

#[tokio::test]
async fn a_token_issued_for_another_name_than_the_browsers_fails_at_issuer() {
    let Some(kc) = keycloak("a_token_issued_for_another_name") else { return };
    let web = web();
    // A realm's frontendUrl (or KC_HOSTNAME) naming another host than the one the browser
    // uses: Keycloak writes discovery and issues tokens for that name, which the browser-facing
    // issuer is not.
    let mut elsewhere = Url::parse(&kc.base).unwrap();
    let other = if elsewhere.host_str() == Some("localhost") { "127.0.0.1" } else { "localhost" };
    elsewhere.set_host(Some(other)).unwrap();
    let extra = json!({ "attributes": { "frontendUrl": elsewhere.as_str().trim_end_matches('/') } });
    let realm = realm_with(&kc, "issuer", &format!("{web}*"), &web.origin().ascii_serialization(), extra).await;
    let failure = run(spec(&kc, &realm, &web, PASSWORD, None)).await.expect_err("refused");
    assert!(failure.found.starts_with("step issuer:"), "{failure:?}");
    assert!(
        failure.found.contains(&format!("the token's issuer is {}", elsewhere.as_str().trim_end_matches('/'))),
        "{failure:?}"
    );
}
