//! Platform images (postgres, keycloak, traefik, ...) cached on the host: pulled once through the
//! Docker API while a registry is reachable, then loaded into nodes like the apps, so that a reset
//! needs no pull and works offline after the first time.

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt as _;

use crate::{Error, Result};

/// What [`cache`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// The image was already on the host: nothing was pulled.
    Present,
    /// The image was pulled.
    Pulled,
}

/// Makes sure `image` is on the host, pulling it when it is not; `progress` hears the pull's
/// status lines. Without a reachable registry the error says so and names the image.
pub async fn cache(docker: &Docker, image: &str, progress: &(dyn Fn(&str) + Sync)) -> Result<Cached> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(Cached::Present),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(source) => return Err(Error::Docker { action: format!("looking up image {image}"), source }),
    }
    let options = CreateImageOptionsBuilder::default().from_image(image).build();
    let mut pull = docker.create_image(Some(options), None, None);
    while let Some(item) = pull.next().await {
        let message = match item {
            Ok(info) => match info.error_detail.and_then(|d| d.message) {
                Some(message) => message,
                None => {
                    if let Some(status) = info.status {
                        tracing::debug!(%image, "{status}");
                        progress(&status);
                    }
                    continue;
                }
            },
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
            | Err(bollard::errors::Error::DockerStreamError { error: message }) => message,
            Err(source) => return Err(Error::Docker { action: format!("pulling {image}"), source }),
        };
        return Err(pull_error(image, message));
    }
    Ok(Cached::Pulled)
}

/// Tells an unreachable registry (the network) from a registry that answered (a wrong name, no
/// access), from the engine's message.
fn pull_error(image: &str, message: String) -> Error {
    const UNREACHABLE: &[&str] = &[
        "no such host",
        "dial tcp",
        "connection refused",
        "network is unreachable",
        "i/o timeout",
        "timeout exceeded",
        "TLS handshake timeout",
        "server misbehaving",
        "temporary failure in name resolution",
        "no route to host",
    ];
    let lower = message.to_lowercase();
    if UNREACHABLE.iter().any(|needle| lower.contains(&needle.to_lowercase())) {
        Error::RegistryUnreachable { image: image.to_owned(), message }
    } else {
        Error::PullFailed { image: image.to_owned(), message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_registries_are_told_from_refusals() {
        let check = |message: &str, unreachable: bool| {
            let error = pull_error("postgres:16", message.to_owned());
            assert_eq!(matches!(error, Error::RegistryUnreachable { .. }), unreachable, "{message}");
        };
        check(
            "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: server misbehaving",
            true,
        );
        check("Get \"https://registry-1.docker.io/v2/\": dial tcp 1.2.3.4:443: connect: network is unreachable", true);
        check("Get \"https://registry-1.docker.io/v2/\": net/http: TLS handshake timeout", true);
        check("pull access denied for nosuch, repository does not exist or may require 'docker login'", false);
        check("manifest for postgres:99 not found: manifest unknown: manifest unknown", false);
    }
}
