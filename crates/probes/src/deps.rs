//! The stack's dependencies, checked at protocol level the way the services use them: Postgres
//! (startup, auth with the generated credentials, `SELECT 1`, each database), Redis (AUTH when
//! set, PING), NATS (INFO, CONNECT, PING; JetStream when configured). Each reaches its server at
//! a declared address or through a port-forward to its Service.

use std::time::Duration;

use futures::future::{BoxFuture, FutureExt as _};

use crate::forward::{Forward, ServicePort};
use crate::probe::{Check, Failure, Next, chain};

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The failure of a probe whose protocol client this build left out: an enabled component that
/// cannot be checked fails, never passes or vanishes.
#[cfg(not(all(feature = "postgres", feature = "redis", feature = "nats", feature = "temporal")))]
fn without_client(feature: &str, component: &str) -> Failure {
    Failure::new(
        format!("this build of kind-parity-probes has no {component} client (feature `{feature}` is off)"),
        format!("build kind-parity-probes with its default features, or add `features = [\"{feature}\"]`"),
    )
}

/// Where a dependency is reached.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// `host:port`, e.g. a compose port or a test server.
    Address(String),
    /// A Service in the cluster, through a port-forward.
    Service(ServicePort),
}

impl Endpoint {
    fn describe(&self) -> String {
        match self {
            Self::Address(a) => a.clone(),
            Self::Service(s) => s.describe(),
        }
    }

    /// The `host:port` to connect to, and the forward to keep open while connected.
    async fn open(&self) -> Result<(String, Option<Forward>), Failure> {
        match self {
            Self::Address(a) => Ok((a.clone(), None)),
            Self::Service(s) => {
                let forward = s.open().await?;
                Ok((forward.addr.to_string(), Some(forward)))
            }
        }
    }
}

#[cfg(any(feature = "postgres", feature = "redis"))]
fn split(addr: &str) -> Result<(String, u16), Failure> {
    let bad = || Failure::new(format!("`{addr}` is not host:port"), "this is a bug in kind-parity: please report it");
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    Ok((host.trim_matches(['[', ']']).to_owned(), port.parse().map_err(|_| bad())?))
}

/// One database and the role that owns it, with its password.
#[derive(Clone)]
pub struct Login {
    /// The database.
    pub database: String,
    /// Its owner.
    pub user: String,
    /// The owner's password.
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "{}@{}", self.user, self.database)
    }
}

/// Postgres: each login connects to its database with its credentials and runs `SELECT 1`.
#[derive(Debug, Clone)]
pub struct Postgres {
    endpoint: Endpoint,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    logins: Vec<Login>,
}

impl Postgres {
    /// Checks each of `logins` at `endpoint`.
    pub fn new(endpoint: Endpoint, logins: Vec<Login>) -> Self {
        Self { endpoint, logins }
    }

    #[cfg(not(feature = "postgres"))]
    #[allow(clippy::unused_async)]
    async fn check(&self) -> Result<String, Failure> {
        Err(without_client("postgres", "Postgres"))
    }

    #[cfg(feature = "postgres")]
    async fn check(&self) -> Result<String, Failure> {
        let (addr, _forward) = self.endpoint.open().await?;
        let (host, port) = split(&addr)?;
        let mut done = Vec::new();
        for login in &self.logins {
            let mut config = tokio_postgres::Config::new();
            config
                .host(&host)
                .port(port)
                .user(&login.user)
                .password(&login.password)
                .dbname(&login.database)
                .application_name("kind-parity validate")
                .connect_timeout(CONNECT_TIMEOUT);
            let (client, connection) =
                config.connect(tokio_postgres::NoTls).await.map_err(|e| self.explain(&e, login, &addr))?;
            let connection = tokio::spawn(connection);
            let one: i32 = client
                .query_one("SELECT 1", &[])
                .await
                .map_err(|e| self.explain(&e, login, &addr))?
                .try_get(0)
                .map_err(|e| self.explain(&e, login, &addr))?;
            drop(client);
            connection.abort();
            if one != 1 {
                return Err(Failure::new(format!("SELECT 1 returned {one}"), "this server is not a working Postgres"));
            }
            done.push(format!("{}@{}", login.user, login.database));
        }
        Ok(format!("SELECT 1 as {}", done.join(", ")))
    }

    #[cfg(feature = "postgres")]
    fn explain(&self, e: &tokio_postgres::Error, login: &Login, addr: &str) -> Failure {
        use tokio_postgres::error::SqlState;
        let code = e.code();
        let message = e.as_db_error().map_or_else(|| chain(e), |db| db.message().to_owned());
        let reset = "the environment's generated credentials and the database's differ (its volume outlived the state folder?): recreating the environment recreates both";
        if code == Some(&SqlState::INVALID_PASSWORD) {
            Failure::new(format!("password authentication failed for {}: {message}", login.user), reset)
                .then(Next::Reset)
        } else if code == Some(&SqlState::INVALID_CATALOG_NAME) {
            Failure::new(
                format!("database {} does not exist: {message}", login.database),
                "the init job creates the configured databases: read its logs, or recreate the environment",
            )
            .then(Next::logs_of("postgres"))
            .then(Next::Reset)
        } else if code == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION) {
            Failure::new(format!("role {} cannot log in: {message}", login.user), reset).then(Next::Reset)
        } else if e.as_db_error().is_none() {
            Failure::new(
                format!("cannot reach Postgres at {addr} ({}): {message}", self.endpoint.describe()),
                "check that postgres is ready",
            )
            .then(Next::Status)
        } else {
            Failure::new(
                format!("Postgres refused {}@{}: {message}", login.user, login.database),
                "read Postgres's logs",
            )
        }
    }
}

impl Check for Postgres {
    fn target(&self) -> String {
        format!("postgres at {}", self.endpoint.describe())
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        self.check().boxed()
    }
}

/// Redis: AUTH when a password is set, then PING answers PONG.
#[derive(Clone)]
pub struct Redis {
    endpoint: Endpoint,
    password: Option<String>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("endpoint", &self.endpoint).field("auth", &self.password.is_some()).finish()
    }
}

impl Redis {
    /// Checks Redis at `endpoint`, authenticating with `password` when given.
    pub fn new(endpoint: Endpoint, password: Option<String>) -> Self {
        Self { endpoint, password }
    }

    #[cfg(not(feature = "redis"))]
    #[allow(clippy::unused_async)]
    async fn check(&self) -> Result<String, Failure> {
        Err(without_client("redis", "Redis"))
    }

    #[cfg(feature = "redis")]
    async fn check(&self) -> Result<String, Failure> {
        let (addr, _forward) = self.endpoint.open().await?;
        let (host, port) = split(&addr)?;
        let info = redis::ConnectionInfo {
            addr: redis::ConnectionAddr::Tcp(host, port),
            redis: redis::RedisConnectionInfo { password: self.password.clone(), ..Default::default() },
        };
        let fail = |e: redis::RedisError| {
            let text = e.to_string();
            if e.kind() == redis::ErrorKind::AuthenticationFailed || text.contains("WRONGPASS") {
                Failure::new(
                    format!("AUTH failed: {text}"),
                    "the environment's generated Redis password and the server's differ: bringing the environment up re-applies the secret; restart redis",
                )
                .then(Next::Up)
            } else if text.contains("NOAUTH") {
                Failure::new(
                    "the server requires a password and none is configured".to_owned(),
                    "this is a bug in kind-parity's Redis template: please report it",
                )
            } else if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() {
                Failure::new(
                    format!("cannot reach Redis at {addr} ({}): {text}", self.endpoint.describe()),
                    "check that redis is ready",
                )
                .then(Next::Status)
            } else {
                Failure::new(format!("Redis answered with an error: {text}"), "read Redis's logs")
            }
        };
        let client = redis::Client::open(info).map_err(fail)?;
        let config = redis::AsyncConnectionConfig::new().set_connection_timeout(CONNECT_TIMEOUT);
        let mut connection = client.get_multiplexed_async_connection_with_config(&config).await.map_err(fail)?;
        let pong: String = redis::cmd("PING").query_async(&mut connection).await.map_err(fail)?;
        if pong != "PONG" {
            return Err(Failure::new(format!("PING answered {pong:?}"), "this server is not a working Redis"));
        }
        Ok(if self.password.is_some() { "AUTH ok, PING answered PONG".into() } else { "PING answered PONG".into() })
    }
}

impl Check for Redis {
    fn target(&self) -> String {
        format!("redis at {}", self.endpoint.describe())
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        self.check().boxed()
    }
}

/// The two messages of Temporal's `DescribeNamespace` call the probe needs, as prost messages:
/// the request's `namespace` field, and a response whose fields are not read (prost skips them).
#[cfg(feature = "temporal")]
pub mod temporal_api {
    /// `temporal.api.workflowservice.v1.DescribeNamespaceRequest`.
    #[derive(Clone, PartialEq, Eq, prost::Message)]
    pub struct DescribeNamespaceRequest {
        /// The namespace's name.
        #[prost(string, tag = "1")]
        pub namespace: String,
    }

    /// `temporal.api.workflowservice.v1.DescribeNamespaceResponse`, fields unread.
    #[derive(Clone, PartialEq, Eq, prost::Message)]
    pub struct DescribeNamespaceResponse {}

    /// The gRPC path of the call.
    pub const DESCRIBE_NAMESPACE: &str = "/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace";
}

/// Temporal: the frontend's gRPC health service reports the workflow service SERVING, and each
/// declared namespace is registered (`DescribeNamespace` answers).
#[derive(Debug, Clone)]
pub struct Temporal {
    endpoint: Endpoint,
    namespaces: Vec<String>,
}

impl Temporal {
    /// The gRPC service a Temporal frontend reports the health of.
    pub const SERVICE: &'static str = "temporal.api.workflowservice.v1.WorkflowService";

    /// Checks the Temporal frontend at `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        Self { endpoint, namespaces: Vec::new() }
    }

    /// Also checks that each of `namespaces` is registered.
    #[must_use]
    pub fn with_namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.namespaces = namespaces;
        self
    }

    #[cfg(not(feature = "temporal"))]
    #[allow(clippy::unused_async)]
    async fn check(&self) -> Result<String, Failure> {
        Err(without_client("temporal", "Temporal"))
    }

    #[cfg(feature = "temporal")]
    async fn check(&self) -> Result<String, Failure> {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let (addr, _forward) = self.endpoint.open().await?;
        let unreachable = |e: &dyn std::error::Error| {
            Failure::new(
                format!("cannot reach Temporal's frontend at {addr} ({}): {e}", self.endpoint.describe()),
                "check that temporal is ready; its schema job must complete first",
            )
            .then(Next::Status)
        };
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| unreachable(&e))?
            .connect_timeout(CONNECT_TIMEOUT)
            .connect()
            .await
            .map_err(|e| unreachable(&e))?;
        let request = HealthCheckRequest { service: Self::SERVICE.to_owned() };
        let response =
            HealthClient::new(channel.clone()).check(request).await.map_err(|status| match status.code() {
                tonic::Code::NotFound => Failure::new(
                    format!("the server at {addr} does not serve {}: not a Temporal frontend", Self::SERVICE),
                    "check that the Service `temporal` points at the frontend (port 7233)",
                ),
                tonic::Code::Unimplemented => Failure::new(
                    format!("the server at {addr} has no gRPC health service: not a Temporal frontend"),
                    "check that the Service `temporal` points at the frontend (port 7233)",
                ),
                _ => unreachable(&status),
            })?;
        let status = response.into_inner().status();
        if status != ServingStatus::Serving {
            return Err(Failure::new(
                format!("gRPC health: {} is {}", Self::SERVICE, status.as_str_name()),
                "Temporal's frontend is up but not serving: read its logs; the persistence (Postgres) must be reachable",
            )
            .then(Next::logs_of("temporal")));
        }
        let mut missing = Vec::new();
        for namespace in &self.namespaces {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.map_err(|e| unreachable(&e))?;
            let path = tonic::codegen::http::uri::PathAndQuery::from_static(temporal_api::DESCRIBE_NAMESPACE);
            let codec = tonic_prost::ProstCodec::<
                temporal_api::DescribeNamespaceRequest,
                temporal_api::DescribeNamespaceResponse,
            >::default();
            let request = temporal_api::DescribeNamespaceRequest { namespace: namespace.clone() };
            match grpc.unary(tonic::Request::new(request), path, codec).await {
                Ok(_) => {}
                Err(status) if status.code() == tonic::Code::NotFound => missing.push(namespace.as_str()),
                Err(status) => return Err(unreachable(&status)),
            }
        }
        if !missing.is_empty() {
            return Err(Failure::new(
                format!("namespace(s) not registered: {}", missing.join(", ")),
                "the setup job registers `temporal.namespaces`: read its log, or bring the environment up to re-run it",
            )
            .then(Next::logs_of("temporal"))
            .then(Next::Up));
        }
        let described = if self.namespaces.is_empty() {
            String::new()
        } else {
            format!(", {} namespace(s) registered", self.namespaces.len())
        };
        Ok(format!("gRPC health: {} SERVING{described}", Self::SERVICE))
    }
}

impl Check for Temporal {
    fn target(&self) -> String {
        format!("temporal at {}", self.endpoint.describe())
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        self.check().boxed()
    }
}

/// Vault: each declared KV path is readable with the environment's token and holds the keys the
/// config seeds it with (KV version 2, as Vault's dev server mounts `secret/`).
#[derive(Clone)]
pub struct Vault {
    endpoint: Endpoint,
    token: String,
    paths: Vec<(String, Vec<String>)>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Vault").field("endpoint", &self.endpoint).field("paths", &self.paths).finish()
    }
}

impl Vault {
    /// Checks `paths` (`secret/app` with its keys) at `endpoint` with `token`.
    pub fn new(endpoint: Endpoint, token: impl Into<String>, paths: Vec<(String, Vec<String>)>) -> Self {
        Self { endpoint, token: token.into(), paths }
    }

    async fn check(&self) -> Result<String, Failure> {
        let (addr, _forward) = self.endpoint.open().await?;
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| Failure::new(chain(&e), "this is a bug in kind-parity: please report it"))?;
        for (path, keys) in &self.paths {
            // `secret/app` is read at `/v1/secret/data/app`: KV v2 puts `data/` after the mount.
            let (mount, rest) = path.split_once('/').unwrap_or((path.as_str(), ""));
            let url = format!("http://{addr}/v1/{mount}/data/{rest}");
            let response = client.get(&url).header("X-Vault-Token", &self.token).send().await.map_err(|e| {
                Failure::new(
                    format!("cannot reach Vault at {addr} ({}): {}", self.endpoint.describe(), chain(&e)),
                    "check that vault is ready",
                )
                .then(Next::Status)
            })?;
            let status = response.status();
            match status.as_u16() {
                200 => {}
                403 => {
                    return Err(Failure::new(
                        format!("HTTP 403 reading {path}: the environment's token is refused"),
                        "the Vault token Secret and the server disagree: bringing the environment up re-applies it; a dev server keeps its token only until it restarts",
                    )
                    .then(Next::Up));
                }
                404 => {
                    return Err(Failure::new(
                        format!("{path} does not exist"),
                        "the seed container writes the declared paths when Vault starts: read its log",
                    )
                    .then(Next::logs_of("vault")));
                }
                _ => return Err(Failure::new(format!("HTTP {status} reading {path}"), "read Vault's logs")),
            }
            let body: serde_json::Value = response.json().await.map_err(|e| {
                Failure::new(format!("Vault's answer for {path} is not JSON: {}", chain(&e)), "read Vault's logs")
            })?;
            let data = &body["data"]["data"];
            let missing: Vec<&str> =
                keys.iter().filter(|k| data.get(k.as_str()).is_none()).map(String::as_str).collect();
            if !missing.is_empty() {
                return Err(Failure::new(
                    format!("{path} lacks {}", missing.join(", ")),
                    "the seed container writes the declared keys: read its log",
                )
                .then(Next::logs_of("vault")));
            }
        }
        Ok(format!("{} path(s) readable with the environment's token, every declared key present", self.paths.len()))
    }
}

impl Check for Vault {
    fn target(&self) -> String {
        format!("vault at {}", self.endpoint.describe())
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        self.check().boxed()
    }
}

/// NATS: the connection handshake (INFO, CONNECT) and a PING round trip; JetStream answers when
/// it is configured, and each declared stream exists.
#[derive(Clone)]
pub struct Nats {
    endpoint: Endpoint,
    jetstream: bool,
    streams: Vec<String>,
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Nats")
            .field("endpoint", &self.endpoint)
            .field("jetstream", &self.jetstream)
            .field("streams", &self.streams)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl Nats {
    /// Checks NATS at `endpoint`, and that JetStream answers when `jetstream`.
    pub fn new(endpoint: Endpoint, jetstream: bool) -> Self {
        Self { endpoint, jetstream, streams: Vec::new(), credentials: None }
    }

    /// Authenticates as `user` with `password`.
    #[must_use]
    pub fn with_credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Also checks that each of `streams` exists (JetStream only).
    #[must_use]
    pub fn with_streams(mut self, streams: Vec<String>) -> Self {
        self.streams = streams;
        self
    }

    #[cfg(not(feature = "nats"))]
    #[allow(clippy::unused_async)]
    async fn check(&self) -> Result<String, Failure> {
        Err(without_client("nats", "NATS"))
    }

    #[cfg(feature = "nats")]
    async fn check(&self) -> Result<String, Failure> {
        let (addr, _forward) = self.endpoint.open().await?;
        let options = match &self.credentials {
            Some((user, password)) => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            None => async_nats::ConnectOptions::new(),
        };
        let client = options
            .connection_timeout(CONNECT_TIMEOUT)
            .name("kind-parity validate")
            .connect(addr.as_str())
            .await
            .map_err(|e| match e.kind() {
                async_nats::ConnectErrorKind::AuthorizationViolation => Failure::new(
                    match &self.credentials {
                        Some((user, _)) => format!("NATS refused user {user}: authorization violation"),
                        None => "NATS requires credentials and none are configured".to_owned(),
                    },
                    "`nats.auth` and the server's authorization disagree, or the password changed: bringing the environment up re-applies the `nats` Secret; restart nats",
                )
                .then(Next::Up),
                _ => Failure::new(
                    format!("cannot connect to NATS at {addr} ({}): {e}", self.endpoint.describe()),
                    "check that nats is ready",
                )
                .then(Next::Status),
            })?;
        client
            .flush()
            .await
            .map_err(|e| Failure::new(format!("PING got no PONG: {e}"), "read the NATS server's logs"))?;
        let version = client.server_info().version;
        if !self.jetstream {
            return Ok(format!("connected to nats-server {version}, PING answered"));
        }
        // The account-info request itself, read loosely: servers of different versions answer
        // with different fields, and only "does JetStream answer, without an error" matters.
        let off = |found: String| {
            Failure::new(
                found,
                "the config has `nats.jetstream: true` but the server runs without it: start nats-server with `--jetstream` (the template does: bring the environment up to re-apply it)",
            )
            .then(Next::Up)
        };
        let reply = client
            .request("$JS.API.INFO", bytes::Bytes::new())
            .await
            .map_err(|e| off(format!("JetStream does not answer: {e}")))?;
        let info: serde_json::Value = serde_json::from_slice(&reply.payload)
            .map_err(|e| off(format!("JetStream's account info is not JSON: {e}")))?;
        if let Some(error) = info.get("error") {
            let text = error.get("description").and_then(|d| d.as_str()).unwrap_or("an error");
            return Err(off(format!("JetStream answered with an error: {text}")));
        }
        let streams = info.get("streams").and_then(serde_json::Value::as_u64).unwrap_or(0);
        let mut missing = Vec::new();
        for stream in &self.streams {
            let reply = client
                .request(format!("$JS.API.STREAM.INFO.{stream}"), bytes::Bytes::new())
                .await
                .map_err(|e| off(format!("JetStream does not answer about stream {stream}: {e}")))?;
            let info: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_default();
            if info.get("error").is_some() {
                missing.push(stream.as_str());
            }
        }
        if !missing.is_empty() {
            return Err(Failure::new(
                format!("declared stream(s) missing: {}", missing.join(", ")),
                "the service that owns a stream creates it when it starts: check its logs; or remove it from `nats.streams`",
            )
            .then(Next::Logs { of: None }));
        }
        let declared = if self.streams.is_empty() {
            String::new()
        } else {
            format!(", the {} declared present", self.streams.len())
        };
        Ok(format!("connected to nats-server {version}, PING answered, JetStream on ({streams} streams{declared})"))
    }
}

impl Check for Nats {
    fn target(&self) -> String {
        format!("nats at {}", self.endpoint.describe())
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        self.check().boxed()
    }
}

/// Run by `.ci/run` with `--no-default-features`: a probe whose client the build left out fails.
#[cfg(all(test, not(feature = "nats")))]
mod without_features {
    use super::{Check as _, Endpoint, Nats};

    #[tokio::test]
    async fn a_probe_whose_client_is_left_out_fails_naming_its_feature() {
        let failure = Nats::new(Endpoint::Address("127.0.0.1:1".into()), false).run().await.unwrap_err();
        assert!(failure.found.contains("feature `nats` is off"), "{failure:?}");
    }
}
