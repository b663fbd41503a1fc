//! The `services` part: Debian's PostgreSQL, Redis and NATS (JetStream) servers and Temporal's
//! development server (the Temporal CLI's `server start-dev`, built from its Go module) on fixed
//! loopback ports, for the probes' protocol-level tests.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::gobuild::{GoBuild, Wrap};
use super::{Testbed, apt_install, proc, say};

pub const PG_PORT: u16 = 15432;
pub const REDIS_PORT: u16 = 16379;
pub const NATS_PORT: u16 = 14222;
pub const TEMPORAL_PORT: u16 = 17233;
/// The Temporal CLI whose `server start-dev` runs a whole Temporal server (frontend, history,
/// matching, worker; SQLite in memory) in one process: Server 1.29.1 in CLI v1.5.1.
pub const TEMPORAL_CLI: &str = "v1.5.1";
/// The namespace the dev server registers beside `default`, for the namespace probe's tests.
pub const TEMPORAL_NAMESPACE: &str = "orders";
pub const PG_DATA: &str = "pg";
pub const NATS_DATA: &str = "nats";

/// Debian's packages of the servers. The tests also start private instances of these programs
/// (`kind_parity_testkit::require_program`, whose skip says the test bed installs them), and
/// docker-registry only that way: the local-registry tests start their own on a free port.
pub const PACKAGES: [&str; 4] = ["postgresql", "redis-server", "nats-server", "docker-registry"];

const DAEMONS: [(&str, u16); 4] =
    [("postgres", PG_PORT), ("redis", REDIS_PORT), ("nats", NATS_PORT), ("temporal", TEMPORAL_PORT)];

/// The newest installed PostgreSQL's `bin` folder.
fn pg_bin() -> Result<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (/usr/lib/postgresql)")?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("postgres").is_file())
        .collect();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().context("no PostgreSQL server under /usr/lib/postgresql")
}

/// The server's pid, the first line of `postmaster.pid` in its data folder.
fn postmaster_pid(data: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(data.join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
}

pub fn up(tb: &Testbed) -> Result<()> {
    apt_install(tb, &PACKAGES)?;
    let pg = pg_bin()?;
    let data = tb.dir.join(PG_DATA);
    if proc::running(tb, "postgres").is_none() {
        if !data.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&data)?;
            proc::output(Command::new("chown").arg("postgres").arg(&data))?;
            proc::logged(
                Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(pg.join("initdb"))
                    .arg("-D")
                    .arg(&data)
                    .args(["-A", "trust", "-U", "postgres"]),
                &tb.log("initdb"),
                "initdb",
            )?;
        }
        let sockets = tb.dir.join("run/postgres");
        std::fs::create_dir_all(&sockets)?;
        proc::output(Command::new("chown").arg("postgres").arg(&sockets))?;
        // postmaster.pid names the live server, if any: adopt it rather than start a second one.
        // A server killed with its session leaves the file, and its pid may since be another's.
        let adopted = postmaster_pid(&data)
            .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"));
        match adopted {
            Some(pid) => proc::record(tb, "postgres", pid, &pg.join("postgres").display().to_string())?,
            None => {
                let _ = std::fs::remove_file(data.join("postmaster.pid"));
                proc::clear_port(tb, "postgres", "postgres", PG_PORT)?;
                let mut postgres = Command::new("runuser");
                postgres
                    .args(["-u", "postgres", "--"])
                    .arg(pg.join("postgres"))
                    .arg("-D")
                    .arg(&data)
                    .args(["-p", &PG_PORT.to_string(), "-c", "listen_addresses=127.0.0.1", "-c"])
                    .arg(format!("unix_socket_directories={}", sockets.display()));
                proc::start(tb, "postgres-runuser", postgres)?;
                proc::wait_for("postgres", Duration::from_secs(30), &tb.log("postgres-runuser"), || {
                    std::fs::read_to_string(data.join("postmaster.pid")).is_ok_and(|t| t.lines().count() > 1)
                })?;
                let pid = postmaster_pid(&data).context("reading postmaster.pid")?;
                proc::record(tb, "postgres", pid, &pg.join("postgres").display().to_string())?;
                let _ = std::fs::remove_file(tb.run("postgres-runuser"));
            }
        }
    }
    if proc::running(tb, "redis").is_none() {
        proc::clear_port(tb, "redis", "redis-server", REDIS_PORT)?;
        let mut redis = Command::new("redis-server");
        redis.args(["--bind", "127.0.0.1", "--port", &REDIS_PORT.to_string(), "--save", "", "--appendonly", "no"]);
        proc::start(tb, "redis", redis)?;
    }
    if proc::running(tb, "nats").is_none() {
        proc::clear_port(tb, "nats", "nats-server", NATS_PORT)?;
        let mut nats = Command::new("nats-server");
        nats.args(["-a", "127.0.0.1", "-p", &NATS_PORT.to_string(), "-js", "-sd"]).arg(tb.dir.join(NATS_DATA));
        proc::start(tb, "nats", nats)?;
    }
    if proc::running(tb, "temporal").is_none() {
        let temporal = temporal_cli(tb)?;
        proc::clear_port(tb, "temporal", "temporal", TEMPORAL_PORT)?;
        let mut server = Command::new(temporal);
        // temporalcli/commands.gen.go (v1.5.1): `--ip` binds the frontend (default localhost),
        // `--headless` leaves out the web UI, `-n` registers namespaces beside `default`; the
        // metrics and HTTP API ports are random free ones unless given.
        server.args(["server", "start-dev", "--ip", "127.0.0.1", "--port", &TEMPORAL_PORT.to_string()]).args([
            "--headless",
            "--namespace",
            TEMPORAL_NAMESPACE,
            "--log-level",
            "warn",
        ]);
        proc::start(tb, "temporal", server)?;
    }
    for (name, port) in DAEMONS {
        proc::wait_for(name, Duration::from_secs(60), &tb.log(name), || proc::listening(port))?;
    }
    say(format!(
        "services: postgres :{PG_PORT}, redis :{REDIS_PORT}, nats :{NATS_PORT}, temporal :{TEMPORAL_PORT} on 127.0.0.1"
    ));
    Ok(())
}

/// The Temporal CLI, built from its Go module once per version.
fn temporal_cli(tb: &Testbed) -> Result<PathBuf> {
    let bin = GoBuild {
        name: "temporal-cli",
        module: "github.com/temporalio/cli",
        version: TEMPORAL_CLI,
        // Its go.mod has no replace directives: `go install …/cmd/temporal@v1.5.1` works as is.
        wrap: Wrap::Require,
        programs: &[("github.com/temporalio/cli/cmd/temporal", "temporal")],
        // The version stamp its release build sets (.goreleaser.yml), else it says 0.0.0-DEV.
        ldflags: format!(
            "-s -w -X github.com/temporalio/cli/temporalcli.Version={}",
            TEMPORAL_CLI.trim_start_matches('v')
        ),
        expected: "4 minutes",
    }
    .ensure(tb)?;
    Ok(bin.join("temporal"))
}

pub fn down(tb: &Testbed) -> Result<()> {
    for (name, _) in DAEMONS {
        if let Some(pid) = proc::stop(tb, name, Duration::from_secs(10))? {
            say(format!("stopped {name} ({pid})"));
        }
    }
    Ok(())
}

pub fn env(tb: &Testbed) -> Vec<(String, String)> {
    let vars = [
        ("postgres", "KIND_PARITY_TEST_POSTGRES", PG_PORT),
        ("redis", "KIND_PARITY_TEST_REDIS", REDIS_PORT),
        ("nats", "KIND_PARITY_TEST_NATS", NATS_PORT),
        ("temporal", "KIND_PARITY_TEST_TEMPORAL", TEMPORAL_PORT),
    ];
    vars.iter()
        .filter(|(name, ..)| proc::running(tb, name).is_some())
        .map(|(_, var, port)| ((*var).to_owned(), format!("127.0.0.1:{port}")))
        .collect()
}

pub fn status(tb: &Testbed) -> Vec<(String, String)> {
    DAEMONS
        .iter()
        .map(|(name, port)| {
            let state = match proc::running(tb, name) {
                Some(pid) => format!("pid {pid}, 127.0.0.1:{port}"),
                None => "not running".into(),
            };
            ((*name).to_owned(), state)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_programs_the_tests_start_come_with_the_services_part() {
        // Regression: a skip said "the test bed installs it" of docker-registry, which it did not.
        // testkit's require_program names these programs; each comes with one of the packages.
        for (program, package) in [
            ("docker-registry", "docker-registry"),
            ("redis-server", "redis-server"),
            ("nats-server", "nats-server"),
            ("initdb", "postgresql"),
        ] {
            assert!(super::PACKAGES.contains(&package), "{program} needs {package}");
        }
    }
}
