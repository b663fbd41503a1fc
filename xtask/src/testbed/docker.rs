//! The `docker` part: a Docker Engine. The machine's own when one answers; otherwise Debian's
//! `dockerd`, started here. Where the capability bounding set lacks CAP_SYS_RESOURCE (this
//! machine's), `--privileged` containers, which kind's nodes and the test bed's node are, start
//! only through `runc-capfix` as the engine's default runtime (its header says why).

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::{Testbed, apt_install, proc, say, write_file};

const RUNC_CAPFIX: &str = include_str!("files/runc-capfix");

/// Whether this machine's capability bounding set holds CAP_SYS_RESOURCE (bit 24).
pub fn has_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_owned())))
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_none_or(|bits| bits & (1 << 24) != 0)
}

/// Whether an engine answers on the default socket.
pub fn answers() -> bool {
    Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output().is_ok_and(|o| o.status.success())
}

/// The engine's default runtime (`runc`, `capfix`…).
fn default_runtime() -> Option<String> {
    let out = Command::new("docker").args(["info", "--format", "{{.DefaultRuntime}}"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub fn up(tb: &Testbed) -> Result<()> {
    if answers() {
        if proc::running(tb, "dockerd").is_none() {
            say("docker: using the engine already running");
        }
        return Ok(());
    }
    if super::which("docker").is_none() || super::which("dockerd").is_none() {
        apt_install(tb, &["docker.io"])?;
    }
    apt_install(tb, &["jq", "iptables"])?;
    let capfix = tb.dir.join("bin/runc-capfix");
    write_file(&capfix, RUNC_CAPFIX.as_bytes(), 0o755)?;
    // A dockerd killed with its session leaves its pid file, and a new one refuses to start.
    if let Ok(pid) = std::fs::read_to_string("/var/run/docker.pid") {
        let alive = pid.trim().parse::<u32>().ok().and_then(proc::start_time).is_some();
        if !alive {
            let _ = std::fs::remove_file("/var/run/docker.pid");
        }
    }
    let mut dockerd = Command::new("dockerd");
    if !has_sys_resource() {
        dockerd.arg(format!("--add-runtime=capfix={}", capfix.display())).arg("--default-runtime=capfix");
    }
    proc::start(tb, "dockerd", dockerd)?;
    proc::wait_for("dockerd", Duration::from_secs(60), &tb.log("dockerd"), answers)?;
    say("docker: started dockerd");
    Ok(())
}

/// Fails with the fix when this engine cannot start `--privileged` containers here.
pub fn check_privileged() -> Result<()> {
    if has_sys_resource() {
        return Ok(());
    }
    match default_runtime() {
        Some(runtime) if runtime != "runc" => Ok(()),
        _ => bail!(
            "the running Docker engine cannot start --privileged containers on this machine (its capability bounding set lacks CAP_SYS_RESOURCE): \
             stop it and let `cargo xtask testbed up docker` start dockerd with runc-capfix as its default runtime, \
             or register xtask/src/testbed/files/runc-capfix as the engine's default runtime (its header says how)"
        ),
    }
}

pub fn down(tb: &Testbed) -> Result<()> {
    if let Some(pid) = proc::stop(tb, "dockerd", Duration::from_secs(20))? {
        say(format!("stopped dockerd ({pid})"));
    }
    Ok(())
}

pub fn status(tb: &Testbed) -> Vec<(String, String)> {
    let state = match (proc::running(tb, "dockerd"), answers()) {
        (Some(pid), true) => format!("dockerd started by the test bed (pid {pid})"),
        (None, true) => "the machine's engine".to_owned(),
        (_, false) => "not running".to_owned(),
    };
    vec![("docker".to_owned(), state)]
}

/// `docker ARGS…`, its stdout.
pub fn docker(args: &[&str]) -> Result<String> {
    proc::output(Command::new("docker").args(args)).with_context(|| format!("docker {}", args.join(" ")))
}
