//! The test bed's own processes: started detached, recorded by pid and start time, so a pid file
//! left by a killed run (whose pid may since belong to another process) is never taken for a
//! running daemon.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::Testbed;

/// A process's start time in clock ticks since boot (`/proc/PID/stat`, field 22): with the pid,
/// it names one process for the life of the machine.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The pid of daemon `name` when the process its pid file records is still that process.
pub fn running(tb: &Testbed, name: &str) -> Option<u32> {
    running_program(tb, name).map(|(pid, _)| pid)
}

/// The pid of daemon `name` and the program it was started from, when it still runs.
pub fn running_program(tb: &Testbed, name: &str) -> Option<(u32, String)> {
    let text = fs::read_to_string(tb.run(name)).ok()?;
    let mut fields = text.splitn(3, ' ');
    let pid: u32 = fields.next()?.trim().parse().ok()?;
    let recorded: u64 = fields.next()?.trim().parse().ok()?;
    let program = fields.next().unwrap_or_default().trim().to_owned();
    (start_time(pid) == Some(recorded) && !is_zombie(pid)).then_some((pid, program))
}

/// Records `pid`, started from `program`, as daemon `name`.
pub fn record(tb: &Testbed, name: &str, pid: u32, program: &str) -> Result<()> {
    let started = start_time(pid)
        .with_context(|| format!("{name} (pid {pid}) exited at once; see {}", tb.log(name).display()))?;
    fs::write(tb.run(name), format!("{pid} {started} {program}\n")).with_context(|| format!("recording {name}'s pid"))
}

/// Makes way for daemon `name` on `port`: a daemon recorded but gone is forgotten; one left by an
/// earlier test bed whose pid file no longer names it (an older format, a killed `up`) is stopped
/// when its process is `program`; any other process on the port is an error naming it.
pub fn clear_port(tb: &Testbed, name: &str, program: &str, port: u16) -> Result<()> {
    if running(tb, name).is_some() || !listening(port) {
        return Ok(());
    }
    let stale = fs::read_to_string(tb.run(name))
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()))
        .filter(|pid| fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == program));
    match stale {
        Some(pid) => {
            super::say(format!("stopping {name} (pid {pid}) left by an earlier test bed"));
            signal(pid, "KILL");
            wait_for(&format!("port {port} to be free"), Duration::from_secs(10), &tb.log(name), || !listening(port))
        }
        None => bail!(
            "port {port}, which the test bed's {name} uses, is taken by another process: stop it (`ss -ltnp 'sport = :{port}'` names it), then rerun"
        ),
    }
}

/// Starts `command` as daemon `name`: in its own process group (a Ctrl-C of the command that
/// started it does not reach it), output appended to `log/NAME.log`.
pub fn start(tb: &Testbed, name: &str, mut command: Command) -> Result<u32> {
    use std::os::unix::process::CommandExt as _;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(tb.log(name))
        .with_context(|| format!("opening {}", tb.log(name).display()))?;
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
    let pid = child.id();
    // The child is not waited for: it outlives this command. Its exit is seen through `running`.
    drop(child);
    std::thread::sleep(Duration::from_millis(50));
    record(tb, name, pid, &command.get_program().to_string_lossy())?;
    Ok(pid)
}

/// Stops daemon `name` if it runs: SIGTERM, then SIGKILL after `grace`. Removes its pid file.
pub fn stop(tb: &Testbed, name: &str, grace: Duration) -> Result<Option<u32>> {
    let pid = running(tb, name);
    if let Some(pid) = pid {
        signal(pid, "TERM");
        let deadline = Instant::now() + grace;
        while start_time(pid).is_some() && !is_zombie(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if start_time(pid).is_some() && !is_zombie(pid) {
            signal(pid, "KILL");
        }
    }
    let _ = fs::remove_file(tb.run(name));
    Ok(pid)
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(false)
}

fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// Polls `ready` every 250 ms until it holds; after `limit`, fails naming `what` and its log.
pub fn wait_for(what: &str, limit: Duration, log: &Path, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("{what} did not come up within {}s; see {}", limit.as_secs(), log.display())
}

/// Runs `command` to completion: its stdout, or an error with the command, status and stderr.
pub fn output(command: &mut Command) -> Result<String> {
    let out = command.stdin(Stdio::null()).output().with_context(|| format!("running {:?}", command.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} {:?} failed ({}): {}",
            command.get_program(),
            command.get_args().collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `command` to completion with its output appended to `log`; fails naming the log.
pub fn logged(command: &mut Command, log: &Path, what: &str) -> Result<()> {
    let file = fs::OpenOptions::new().create(true).append(true).open(log)?;
    let status = command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status}); see {}", log.display());
    }
    Ok(())
}

/// Whether something listens on `127.0.0.1:port`.
pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}
