//! The rendered postgres-init Job's script, run as its container runs it, against the test bed's
//! real Postgres with the host's `psql`: each role gets its generated password, and no password
//! is ever an argument of a process.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use kind_parity_render::{LoadOptions, load};
use serde_json::Value;

/// Drops the test's database and role, whatever the test did.
struct DropDatabase<'a> {
    psql: &'a Path,
    host: &'a str,
    port: &'a str,
    name: String,
}

impl Drop for DropDatabase<'_> {
    fn drop(&mut self) {
        for sql in
            [format!("DROP DATABASE IF EXISTS \"{}\"", self.name), format!("DROP ROLE IF EXISTS \"{}\"", self.name)]
        {
            let _ = query(self.psql, self.host, self.port, &sql);
        }
    }
}

fn query(psql: &Path, host: &str, port: &str, sql: &str) -> String {
    let out = Command::new(psql)
        .args(["-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-Atc", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The init Job's container.
fn init_container(content: &str) -> Value {
    serde_yaml_ng::Deserializer::from_str(content)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).unwrap())
        .find(|doc| doc["kind"] == "Job")
        .expect("the postgres manifest has its init Job")["spec"]["template"]["spec"]["containers"][0]
        .clone()
}

#[test]
fn postgres_init_sets_each_generated_password_and_passes_none_as_an_argument() {
    // Regression (issue 12): the Job passed the passwords as `psql -v NAME=value` arguments,
    // which every user of the node reads in the process list.
    let test = "postgres_init_sets_each_generated_password_and_passes_none_as_an_argument";
    let Some(addr) = kind_parity_testkit::require(kind_parity_testkit::POSTGRES, test) else { return };
    let Some(psql) = kind_parity_testkit::require_program("psql", test) else { return };
    let Some(pg_isready) = kind_parity_testkit::require_program("pg_isready", test) else { return };
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let name = format!("kp_init_{}", std::process::id());
    let _cleanup = DropDatabase { psql: &psql, host, port, name: name.clone() };

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kind-parity.yaml"),
        format!("name: kp-init\nkeycloak: {{ enabled: false }}\nredis: {{ enabled: false }}\npostgres:\n  databases:\n    {name}: {{}}\n"),
    )
    .unwrap();
    let loaded = load(&LoadOptions { dir: dir.path().into(), ..Default::default() }).unwrap();
    let secrets = secrets_for(&loaded);
    let plan = render_loaded(&loaded, &secrets);
    let postgres = plan.manifests.iter().find(|m| m.component == "postgres").unwrap();
    let container = init_container(&postgres.content);
    let script = container["args"][0].as_str().unwrap();
    let password = secrets.get(&format!("postgres-{}-password", name.replace('_', "-"))).unwrap();
    let var = format!("PW_{}", name.to_ascii_uppercase());
    assert!(container["env"].as_array().unwrap().iter().any(|e| e["name"] == var.as_str()), "{container}");

    // `psql` records its arguments before it runs, as `ps` would show them.
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("arguments");
    let wrapper = bin.path().join("psql");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), psql.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}:{}",
        bin.path().display(),
        pg_isready.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .env("PGHOST", host)
        .env("PGPORT", port)
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", "the test bed trusts every login")
        // md5, so the stored hash can be compared with the generated password below.
        .env("PGOPTIONS", "-c password_encryption=md5")
        .env(&var, password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    let arguments = std::fs::read_to_string(&log).unwrap();
    assert!(!arguments.contains(password), "a password was an argument of psql:\n{arguments}");
    let matches = query(
        &psql,
        host,
        port,
        &format!("SELECT rolpassword = 'md5' || md5('{password}' || rolname) FROM pg_authid WHERE rolname = '{name}'"),
    );
    assert_eq!(matches, "t", "role {name} has the generated password");
    assert_eq!(
        query(&psql, host, port, &format!("SELECT datdba::regrole FROM pg_database WHERE datname = '{name}'")),
        name
    );
}
