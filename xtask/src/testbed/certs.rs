//! The control plane's certificates, made with rcgen: a CA, the API server's serving
//! certificate (for loopback, the node network's gateway and the `kubernetes` Service), an admin
//! client certificate (group `system:masters`) and the service-account signing key (`sa.key`,
//! `sa.pub`).

use std::path::Path;

use anyhow::{Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use super::write_file;

/// Bumped when the names below change, so an older set is made anew.
const GENERATION: &str = "3";

/// Writes `ca.crt`, `apiserver.{crt,key}`, `admin.{crt,key}` and `sa.key` into `dir` unless a set
/// of this generation is there. `ips` are the API server's addresses besides its names.
pub fn ensure(dir: &Path, ips: &[&str]) -> Result<()> {
    let stamp = dir.join("generation");
    if std::fs::read_to_string(&stamp).is_ok_and(|g| g.trim() == GENERATION) {
        return Ok(());
    }
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "kind-parity-testbed-ca");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names: Vec<String> = ips.iter().map(|s| (*s).to_owned()).collect();
    names.extend(
        [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .map(String::from),
    );
    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(names)?;
    server.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let admin_key = KeyPair::generate()?;
    let mut admin = CertificateParams::new(Vec::<String>::new())?;
    // The group the API server's RBAC binds to cluster-admin.
    admin.distinguished_name.push(DnType::OrganizationName, "system:masters");
    admin.distinguished_name.push(DnType::CommonName, "kind-parity-admin");
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    admin.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let admin_cert = admin.signed_by(&admin_key, &issuer)?;

    // ECDSA P-256: the API server signs service-account tokens with it (ES256).
    let sa_key = KeyPair::generate()?;
    for (name, body, mode) in [
        ("ca.crt", ca_cert.pem(), 0o644),
        ("apiserver.crt", server_cert.pem(), 0o644),
        ("apiserver.key", server_key.serialize_pem(), 0o600),
        ("admin.crt", admin_cert.pem(), 0o644),
        ("admin.key", admin_key.serialize_pem(), 0o600),
        ("sa.key", sa_key.serialize_pem(), 0o600),
        // The API server reads verification keys as public keys only.
        ("sa.pub", sa_key.public_key_pem(), 0o644),
    ] {
        write_file(&dir.join(name), body.as_bytes(), mode).with_context(|| format!("writing {name}"))?;
    }
    write_file(&stamp, GENERATION.as_bytes(), 0o644)?;
    Ok(())
}

/// A kubeconfig for `server` with the admin client certificate, context `kind-parity-testbed`.
pub fn kubeconfig(dir: &Path, server: &str) -> Result<String> {
    use base64::Engine as _;
    let b64 = |name: &str| -> Result<String> {
        Ok(base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join(name))?))
    };
    Ok(format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kind-parity-testbed
  cluster:
    server: {server}
    certificate-authority-data: {}
users:
- name: kind-parity-admin
  user:
    client-certificate-data: {}
    client-key-data: {}
contexts:
- name: kind-parity-testbed
  context: {{cluster: kind-parity-testbed, user: kind-parity-admin}}
current-context: kind-parity-testbed
",
        b64("ca.crt")?,
        b64("admin.crt")?,
        b64("admin.key")?
    ))
}
