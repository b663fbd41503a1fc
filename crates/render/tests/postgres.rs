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

#[test]
fn compose_runs_the_same_init_guard_on_the_same_volume_before_postgres() {
    let loaded = load_demo(&[]);
    let plan = render_loaded(&loaded, &secrets_for(&loaded));
    let compose: Value = serde_yaml_ng::from_str(&plan.compose_file).unwrap();
    let guard = &compose["services"][kind_parity_render::POSTGRES_GUARD];
    let command = guard["command"].as_array().expect("the guard's command");
    assert_eq!(command[..2], [Value::from("sh"), Value::from("-c")]);
    // compose reads `$$` as a literal `$`: the script the shell runs is kind's, byte for byte.
    assert_eq!(command[2].as_str().unwrap().replace("$$", "$"), init_guard_script());
    let postgres = &compose["services"]["postgres"];
    assert_eq!(guard["volumes"], postgres["volumes"], "the guard sees the server's volume");
    assert_eq!(guard["environment"]["PGDATA"], "/var/lib/postgresql/data/pgdata");
    assert_eq!(
        postgres["depends_on"][kind_parity_render::POSTGRES_GUARD]["condition"],
        "service_completed_successfully"
    );
}

/// The StatefulSet's init-guard script, rendered for a minimal environment.
fn init_guard_script() -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kind-parity.yaml"),
        "name: kp-guard\nkeycloak: { enabled: false }\nredis: { enabled: false }\n",
    )
    .unwrap();
    let loaded = load(&LoadOptions { dir: dir.path().into(), ..Default::default() }).unwrap();
    let secrets = secrets_for(&loaded);
    let plan = render_loaded(&loaded, &secrets);
    let postgres = plan.manifests.iter().find(|m| m.component == "postgres").unwrap();
    let set = serde_yaml_ng::Deserializer::from_str(&postgres.content)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).unwrap())
        .find(|doc| doc["kind"] == "StatefulSet")
        .expect("the postgres manifest has its StatefulSet");
    let guard = set["spec"]["template"]["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "init-guard")
        .expect("the StatefulSet has its init-guard")
        .clone();
    let pgdata = guard["env"].as_array().unwrap().iter().find(|e| e["name"] == "PGDATA").unwrap()["value"].clone();
    let server = &set["spec"]["template"]["spec"]["containers"][0];
    let server_pgdata =
        server["env"].as_array().unwrap().iter().find(|e| e["name"] == "PGDATA").unwrap()["value"].clone();
    assert_eq!(pgdata, server_pgdata, "the guard looks at the server's data directory");
    assert_eq!(guard["volumeMounts"], server["volumeMounts"], "the guard mounts the server's volume");
    guard["args"][0].as_str().unwrap().to_owned()
}

/// A volume as the pod mounts it, with Postgres's programs run as the `postgres` user (initdb
/// refuses root) and the guard run as its container runs it (root, `sh -c`).
struct Volume {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    uid: u32,
}

impl Volume {
    fn new(test: &str) -> Option<Self> {
        let initdb = kind_parity_testkit::require_program("initdb", test)?;
        let out = Command::new("id").args(["-u", "postgres"]).output().ok().filter(|o| o.status.success());
        let Some(out) = out else {
            return kind_parity_testkit::skip(test, "no `postgres` user to run Postgres as");
        };
        let uid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        for p in [dir.path().to_owned(), dir.path().join("data")] {
            std::os::unix::fs::chown(&p, Some(uid), None).unwrap();
        }
        Some(Self { dir, bin: initdb.parent().unwrap().to_owned(), uid })
    }

    fn pgdata(&self) -> std::path::PathBuf {
        self.dir.path().join("data/pgdata")
    }

    fn marker(&self) -> std::path::PathBuf {
        self.dir.path().join("data/.kind-parity-initialising")
    }

    fn guard(&self, script: &str) -> String {
        let out = Command::new("sh").arg("-c").arg(script).env("PGDATA", self.pgdata()).output().unwrap();
        assert!(out.status.success(), "the guard failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
        c
    }

    /// initdb as the entrypoint runs it; the volume's folder is the pod's, so it is made here
    /// as the entrypoint's `mkdir -p "$PGDATA"` makes it.
    fn initdb(&self) {
        std::fs::create_dir_all(self.pgdata()).unwrap();
        std::os::unix::fs::chown(self.pgdata(), Some(self.uid), None).unwrap();
        let out = self.as_postgres("initdb").arg("-D").arg(self.pgdata()).args(["-U", "postgres"]).output().unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `pg_ctl start` with `options` (the server's own arguments), sockets in the volume's folder.
    fn start(&self, options: &str) {
        let options = format!("{options} -k {}", self.dir.path().display());
        // The server's output goes to a file: a server holding the pipe of `output()` would
        // keep it waiting for ever.
        let log = self.dir.path().join("server.log");
        let out = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.pgdata())
            .args(["-o", &options, "-w", "-l"])
            .arg(&log)
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn stop(&self) {
        let out = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.pgdata())
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// SIGKILL to the postmaster, as the kubelet sends it after the grace period (the
    /// entrypoint's bash, the pod's PID 1, ignores SIGTERM).
    fn kill(&self) {
        let pid = std::fs::read_to_string(self.pgdata().join("postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().trim().to_owned();
        assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
        // Its children leave when they see it gone; wait, so nothing writes in the folder that
        // the guard may remove. Every server process works in the data directory.
        let in_folder = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .any(|p| std::fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd == self.pgdata()))
        };
        for _ in 0..100 {
            if !in_folder() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the killed server's processes are still there");
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        // A server a failed assertion left running.
        let _ = self.as_postgres("pg_ctl").arg("-D").arg(self.pgdata()).args(["-m", "immediate", "stop"]).output();
    }
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn postgres_init_guard_removes_a_first_initialisation_killed_before_any_server_started() {
    // initdb done (PG_VERSION written, the very file that makes the entrypoint skip
    // initialisation), no server started yet: the state a kill during or right after initdb leaves.
    let test = "postgres_init_guard_removes_a_first_initialisation_killed_before_any_server_started";
    let Some(volume) = Volume::new(test) else { return };
    let script = init_guard_script();
    volume.guard(&script);
    assert!(volume.marker().exists(), "an uninitialised volume is marked");
    volume.initdb();

    let said = volume.guard(&script);
    assert!(!volume.pgdata().join("PG_VERSION").exists(), "the half-initialised data directory is removed");
    assert!(said.contains("was interrupted"), "the guard says why it removes it: {said}");
    assert!(volume.marker().exists(), "the new initialisation is marked again");
}

#[test]
fn postgres_init_guard_removes_a_first_initialisation_killed_in_the_temporary_server() {
    let test = "postgres_init_guard_removes_a_first_initialisation_killed_in_the_temporary_server";
    let Some(volume) = Volume::new(test) else { return };
    let script = init_guard_script();
    volume.guard(&script);
    volume.initdb();
    // As docker-entrypoint.sh's docker_temp_server_start starts it: sockets only.
    volume.start("-c listen_addresses='' -p 5432");
    volume.kill();

    volume.guard(&script);
    assert!(!volume.pgdata().join("PG_VERSION").exists(), "the half-initialised data directory is removed");
    assert!(volume.marker().exists());
}

#[test]
fn postgres_init_guard_keeps_a_data_directory_whose_real_server_started() {
    let test = "postgres_init_guard_keeps_a_data_directory_whose_real_server_started";
    let Some(volume) = Volume::new(test) else { return };
    let script = init_guard_script();
    volume.guard(&script);
    volume.initdb();
    volume.start("-c listen_addresses='' -p 5432");
    volume.stop();
    // The entrypoint's `exec postgres`, killed as a deleted pod's server is.
    volume.start(&format!("-c listen_addresses=127.0.0.1 -p {}", free_port()));
    volume.kill();

    let said = volume.guard(&script);
    assert!(volume.pgdata().join("PG_VERSION").exists(), "an initialised data directory is kept: {said}");
    assert!(!volume.marker().exists(), "and no longer marked");
    volume.guard(&script);
    assert!(volume.pgdata().join("PG_VERSION").exists());
}

#[test]
fn postgres_init_guard_never_touches_a_data_directory_it_did_not_mark() {
    // A volume initialised before the guard existed, or by anything else: no marker, kept
    // whatever its state.
    let test = "postgres_init_guard_never_touches_a_data_directory_it_did_not_mark";
    let Some(volume) = Volume::new(test) else { return };
    let script = init_guard_script();
    volume.initdb();
    volume.start("-c listen_addresses='' -p 5432");
    volume.kill();

    volume.guard(&script);
    assert!(volume.pgdata().join("PG_VERSION").exists());
    assert!(!volume.marker().exists());
}
