//! A browser-facing host resolves, on this machine, to the address the ingress listens on.

use std::net::IpAddr;

use futures::future::{BoxFuture, FutureExt as _};

use crate::probe::{Check, Failure};

/// Checks that `host` resolves to `expected` (any loopback address when `expected` is
/// unspecified, as a listener on 0.0.0.0 answers there).
#[derive(Debug, Clone)]
pub struct Resolves {
    host: String,
    expected: IpAddr,
}

impl Resolves {
    /// Checks `host` against `expected`.
    pub fn new(host: impl Into<String>, expected: IpAddr) -> Self {
        Self { host: host.into(), expected }
    }

    fn fix(&self) -> String {
        let ip = if self.expected.is_unspecified() { "127.0.0.1".to_owned() } else { self.expected.to_string() };
        format!(
            "add `{ip} {}` to /etc/hosts, or set `domain` to one whose names resolve to {ip} (localtest.me does through public DNS)",
            self.host
        )
    }

    async fn check(&self) -> Result<String, Failure> {
        let found: Vec<IpAddr> = match tokio::net::lookup_host((self.host.as_str(), 443)).await {
            Ok(addrs) => addrs.map(|a| a.ip()).collect(),
            Err(e) => return Err(Failure::new(format!("{} does not resolve: {e}", self.host), self.fix())),
        };
        let good = |ip: &IpAddr| if self.expected.is_unspecified() { ip.is_loopback() } else { *ip == self.expected };
        let list = found.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        if found.iter().any(good) {
            Ok(format!("resolves to {list}"))
        } else {
            Err(Failure::new(format!("{} resolves to {list}, not {}", self.host, self.expected), self.fix()))
        }
    }
}

impl Check for Resolves {
    fn target(&self) -> String {
        self.host.clone()
    }

    fn run(&self) -> BoxFuture<'_, Result<String, Failure>> {
        self.check().boxed()
    }

    fn on_timeout(&self) -> String {
        format!("the resolver did not answer for {}: {}", self.host, self.fix())
    }
}
