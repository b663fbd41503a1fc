//! The certificate a browser-facing host is served with: its chain verifies against the
//! environment's local CA, its SAN covers the host, and it is valid for at least a week more.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt as _};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

use crate::error::{Error, Result};
use crate::probe::{Check, Failure, Next};

/// The environment's local CA as a root store.
pub fn roots(ca_pem: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let mut any = false;
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| Error::BadCa(e.to_string()))?;
        roots.add(cert).map_err(|e| Error::BadCa(e.to_string()))?;
        any = true;
    }
    if !any {
        return Err(Error::BadCa("no PEM certificate in it".into()));
    }
    Ok(roots)
}

/// A client configuration that trusts only `roots` and records the certificate it was shown,
/// so a failure can say what the certificate covers and when it expires.
fn client_config(roots: RootCertStore, seen: Arc<Mutex<Option<Vec<u8>>>>) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .map_err(|e| Error::BadCa(e.to_string()))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::BadCa(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recording { inner, seen }))
        .with_no_client_auth();
    Ok(config)
}

/// Verifies like webpki, remembering the end-entity certificate it was given.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().expect("not poisoned") = Some(end_entity.to_vec());
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What a certificate says about itself.
struct Seen {
    names: Vec<String>,
    issuer: String,
    not_after: OffsetDateTime,
}

fn describe(der: &[u8]) -> Option<Seen> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| match n {
                    GeneralName::DNSName(d) => (*d).to_owned(),
                    GeneralName::IPAddress(ip) => format!("{ip:?}"),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Seen { names, issuer: cert.issuer().to_string(), not_after: cert.validity().not_after.to_datetime() })
}

fn date(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// Checks the certificate served for `host` at `connect`.
#[derive(Debug, Clone)]
pub struct Certificate {
    host: String,
    connect: SocketAddr,
    config: Arc<ClientConfig>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
    min_validity: Duration,
}

impl Certificate {
    /// How long a certificate must stay valid to pass.
    pub const MIN_VALIDITY: Duration = Duration::days(7);

    /// Checks the certificate `connect` serves for `host` against the CA in `ca_pem`.
    pub fn new(host: impl Into<String>, connect: SocketAddr, ca_pem: &str) -> Result<Self> {
        let seen = Arc::new(Mutex::new(None));
        let config = Arc::new(client_config(roots(ca_pem)?, Arc::clone(&seen))?);
        Ok(Self { host: host.into(), connect, config, seen, min_validity: Self::MIN_VALIDITY })
    }

    async fn check(&self) -> std::result::Result<String, Failure> {
        let tcp = tokio::net::TcpStream::connect(self.connect).await.map_err(|e| {
            Failure::new(
                format!("cannot connect to {}: {e}", self.connect),
                format!("nothing answers on {}: is the environment up and the host port mapped?", self.connect),
            )
            .then(Next::Status)
        })?;
        let name = ServerName::try_from(self.host.clone()).map_err(|e| {
            Failure::new(format!("`{}` is not a valid TLS server name: {e}", self.host), "fix the host in the config")
        })?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        let handshake = connector.connect(name, tcp).await;
        let seen = self.seen.lock().expect("not poisoned").take().and_then(|der| describe(&der));
        match handshake {
            Ok(_) => {
                let Some(seen) = seen else {
                    return Err(Failure::new(
                        "the server sent no readable certificate",
                        "check the ingress's TLS secret",
                    ));
                };
                let left = seen.not_after - OffsetDateTime::now_utc();
                if left < self.min_validity {
                    return Err(Failure::new(
                        format!("the certificate expires on {} (in {} days)", date(seen.not_after), left.whole_days()),
                        "bringing the environment up renews certificates that expire within 30 days",
                    )
                    .then(Next::Up));
                }
                Ok(format!("verifies against the local CA, covers {}, valid until {}", self.host, date(seen.not_after)))
            }
            Err(e) => Err(self.explain(e, seen)),
        }
    }

    fn explain(&self, e: std::io::Error, seen: Option<Seen>) -> Failure {
        let rustls_error = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let covers = seen.as_ref().map(|s| s.names.join(", ")).unwrap_or_else(|| "unknown names".into());
        match rustls_error {
            Some(rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            )) => Failure::new(
                match &seen {
                    Some(s) => format!("the certificate expired on {}", date(s.not_after)),
                    None => "the certificate has expired".into(),
                },
                "bringing the environment up renews the certificate and re-applies it",
            )
            .then(Next::Up),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Failure::new(
                format!("the certificate does not cover {} (it covers {covers})", self.host),
                "bringing the environment up issues a certificate for every host in the config; if the host is not in it, add it",
            )
            .then(Next::Up),
            Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => Failure::new(
                format!(
                    "the certificate is not signed by this environment's CA (issuer {})",
                    seen.as_ref().map_or("unknown", |s| s.issuer.as_str())
                ),
                "another certificate is served for this host (the ingress controller's default?): check the ingress's TLS secret; bringing the environment up re-applies it",
            )
            .then(Next::Up),
            Some(other) => Failure::new(format!("the TLS handshake failed: {other}"), "check the ingress's TLS setup"),
            None => Failure::new(
                format!("the TLS handshake with {} failed: {e}", self.connect),
                "check that the host port is the ingress's HTTPS port",
            ),
        }
    }
}

impl Check for Certificate {
    fn target(&self) -> String {
        format!("{} at {}", self.host, self.connect)
    }

    fn run(&self) -> BoxFuture<'_, std::result::Result<String, Failure>> {
        self.check().boxed()
    }
}
