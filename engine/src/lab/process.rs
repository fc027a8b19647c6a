//! Starting and stopping sshd processes, through `/proc` and the `kill` command (the workspace
//! forbids `unsafe`, so no direct system calls).
//!
//! Only processes this lab started are ever signalled: an sshd listener is identified by its
//! `/proc/PID/cmdline` containing the host's (absolute, unique) config path, and the session
//! processes below it by being its descendants, each re-checked by its start time before it
//! is killed, so a pid reused by an unrelated process is never touched.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::LabError;
use super::error::StartFailure;
use super::state::LabHost;

/// How long sshd gets to write its pid file and accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long processes get to exit after SIGTERM, then after SIGKILL.
const TERM_TIMEOUT: Duration = Duration::from_secs(3);
const KILL_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(20);

/// `/proc/PID/stat`, the fields we use.
#[derive(Clone, Copy, Debug)]
struct Stat {
    state: char,
    ppid: u32,
    start_time: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may contain spaces and parentheses, so split after
    // the last `)`. After it, field 3 (state) is at index 0 and field 22 (starttime) at 19.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` is a live process. A zombie is not: nothing reaps a daemonized sshd when
/// the init process of a container does not, and its `/proc` entry stays behind.
pub fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X' | 'x'))
}

/// Whether `pid` is a live sshd started with `config`.
pub fn is_our_sshd(pid: u32, config: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    // sshd rewrites its command line (`sshd: /usr/sbin/sshd -f CONFIG ... [listener] ...`),
    // keeping the original arguments, so a substring match works before and after.
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = config.as_os_str().as_encoded_bytes();
    !needle.is_empty() && cmdline.windows(needle.len()).any(|w| w == needle)
}

/// `pid` and all its live descendants, each with its start time, parents first.
fn tree(pid: u32) -> Vec<(u32, u64)> {
    let mut children: BTreeMap<u32, Vec<(u32, u64)>> = BTreeMap::new();
    let mut root = None;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(s) = stat(p) else { continue };
            if matches!(s.state, 'Z' | 'X' | 'x') {
                continue;
            }
            if p == pid {
                root = Some((p, s.start_time));
            }
            children.entry(s.ppid).or_default().push((p, s.start_time));
        }
    }
    let Some(root) = root else { return Vec::new() };
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i].0) {
            out.extend(kids.iter().copied());
        }
        i += 1;
    }
    out
}

/// Whether `pid` is still the process that started at `start_time`, and alive.
fn same_process(pid: u32, start_time: u64) -> bool {
    stat(pid).is_some_and(|s| s.start_time == start_time && !matches!(s.state, 'Z' | 'X' | 'x'))
}

fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    // Processes that exited meanwhile make `kill` fail for them; the others are still
    // signalled, and the caller checks the outcome.
    let _ = Command::new("kill")
        .arg("-s")
        .arg(signal)
        .arg("--")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn wait_gone(procs: &[(u32, u64)], timeout: Duration) -> Vec<(u32, u64)> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<_> = procs
            .iter()
            .copied()
            .filter(|&(p, t)| same_process(p, t))
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(POLL);
    }
}

/// Stops host's sshd listener and every process below it (the sessions and the commands
/// they run), if `pid` is still that sshd. `Ok(false)` when it was not running.
pub fn stop(host: &LabHost, pid: u32) -> Result<bool, LabError> {
    if !is_our_sshd(pid, &host.sshd_config()) {
        return Ok(false);
    }
    // The whole tree is taken before the listener dies: its children are then reparented
    // and could no longer be found. Sessions do not end with the listener, and a stopped
    // host must not keep serving established (multiplexed) connections.
    let procs = tree(pid);
    let pids: Vec<u32> = procs.iter().map(|&(p, _)| p).collect();
    signal("TERM", &pids);
    let left = wait_gone(&procs, TERM_TIMEOUT);
    if left.is_empty() {
        return Ok(true);
    }
    let pids: Vec<u32> = left.iter().map(|&(p, _)| p).collect();
    signal("KILL", &pids);
    let left = wait_gone(&left, KILL_TIMEOUT);
    if left.is_empty() {
        Ok(true)
    } else {
        Err(LabError::StopFailed {
            host: host.name.clone(),
            pid: left[0].0,
        })
    }
}

/// A free TCP port on `address`: bind port 0, read the port, release it. Another process may
/// take it before sshd binds it; [`start`] reports that as [`StartError::PortTaken`].
pub fn free_port(address: Ipv4Addr) -> Result<u16, LabError> {
    TcpListener::bind((address, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| LabError::NoPort { address, source })
}

/// A TCP port for a service the lab's hosts listen on later (a GT.M Receiver Server's
/// `repl_port`, `{free_port}` in a lab's variables): free now on `address`, and below the
/// kernel's ephemeral range. A port from [`free_port`] (bind port 0) is an ephemeral one: any
/// outgoing connection made meanwhile (the runbook's SSH sessions, a Source Server connecting,
/// another session's tests) may be given it as its local port, and a listen on it minutes later
/// fails with `EADDRINUSE` (seen once in `benches/switchover_freeze.sh`: A's rollback could not
/// listen on A's replication port). The kernel never hands out a port below the ephemeral range
/// by itself; only an explicit listener can take it, and the search starts at a different place
/// in each process, so parallel labs rarely try the same one. Ports handed out by this process
/// are not handed out again.
pub fn service_port(address: Ipv4Addr) -> Result<u16, LabError> {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let high = ephemeral_low();
    let low = 10_000u16.min(high / 2);
    let span = u32::from(high - low);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().rotate_left(16);
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for i in 0..span {
        let port = low + u16::try_from((seed.wrapping_add(i)) % span).expect("below the range");
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind((address, port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    drop(given);
    free_port(address)
}

/// The first port of the kernel's ephemeral range (Linux: `ip_local_port_range`; 32768, its
/// default, when it cannot be read).
fn ephemeral_low() -> u16 {
    fs_err::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .filter(|low: &u16| *low > 1024)
        .unwrap_or(32768)
}

/// Whether an SSH server answers on `address:port` (it sends its `SSH-` banner first).
pub fn answers(address: Ipv4Addr, port: u16) -> bool {
    let addr = SocketAddr::from((address, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut banner = [0u8; 4];
    stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
}

/// Why sshd did not start.
pub enum StartError {
    /// The port was taken between choosing it and sshd binding it: choose another.
    PortTaken,
    Failed(LabError),
}

impl From<LabError> for StartError {
    fn from(e: LabError) -> Self {
        StartError::Failed(e)
    }
}

/// Starts the host's sshd (`sshd -f CONFIG -E LOG`), which daemonizes, and waits until its pid
/// file is written and it answers on its port. Returns the listener's pid.
pub fn start(sshd: &Path, host: &LabHost) -> Result<u32, StartError> {
    let pid_file = host.pid_file();
    let log_file = host.log_file();
    match fs_err::remove_file(&pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(LabError::from(e).into()),
        _ => {}
    }
    // sshd appends to its log: only what this attempt wrote is quoted in errors.
    let log_start = std::fs::metadata(&log_file).map_or(0, |m| m.len());
    let log_since = || {
        let text = std::fs::read(&log_file).unwrap_or_default();
        let from = usize::try_from(log_start)
            .unwrap_or(usize::MAX)
            .min(text.len());
        String::from_utf8_lossy(&text[from..]).trim_end().to_owned()
    };
    let failed = |reason: String, log: String| {
        let hint = hint(&log).replace("hosts/NAME/", &format!("hosts/{}/", host.name));
        StartError::Failed(LabError::StartFailed(Box::new(StartFailure {
            host: host.name.clone(),
            address: host.address,
            port: host.port,
            reason,
            hint,
            log_path: log_file.clone(),
            log: if log.is_empty() {
                "(empty)".to_owned()
            } else {
                log
            },
        })))
    };

    // A clean environment: nothing of the caller's leaks into the daemon. sshd builds each
    // session's environment itself (plus `SetEnv` from the config).
    let out = Command::new(sshd)
        .arg("-f")
        .arg(host.sshd_config())
        .arg("-E")
        .arg(&log_file)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| LabError::ToolFailed {
            command: format!("{} -f {}", sshd.display(), host.sshd_config().display()),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        // Configuration errors end the first process, before it daemonizes.
        let mut log = log_since();
        let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
        if !stderr.is_empty() {
            log = if log.is_empty() {
                stderr
            } else {
                format!("{log}\n{stderr}")
            };
        }
        return Err(failed(format!("sshd exited with {}", out.status), log));
    }

    // The daemon binds its port, then writes its pid file.
    let deadline = Instant::now() + START_TIMEOUT;
    let mut pid = None;
    loop {
        if pid.is_none() {
            pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
        }
        if let Some(p) = pid {
            if answers(host.address, host.port) && is_our_sshd(p, &host.sshd_config()) {
                return Ok(p);
            }
            if !is_alive(p) {
                return Err(failed(format!("sshd (pid {p}) exited"), log_since()));
            }
        } else {
            let log = log_since();
            if log.contains("Address already in use") || log.contains("Cannot bind any address") {
                return Err(StartError::PortTaken);
            }
        }
        if Instant::now() >= deadline {
            if let Some(p) = pid {
                let _ = stop(host, p);
            }
            return Err(failed(
                format!(
                    "no answer within {} s (pid file {})",
                    START_TIMEOUT.as_secs(),
                    if pid.is_some() {
                        "written"
                    } else {
                        "never written"
                    }
                ),
                log_since(),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// What to do, for errors sshd's log explains.
fn hint(log: &str) -> String {
    let hints: &[(&str, &str)] = &[
        (
            "no hostkeys available",
            "the host key is broken: delete hosts/NAME/ssh_host_ed25519_key and its .pub, and run `lab up` again (a new key is generated)",
        ),
        (
            "privilege separation directory",
            "create it: mkdir -p /run/sshd && chmod 0755 /run/sshd",
        ),
        (
            "Privilege separation user",
            "sshd running as root needs its unprivileged user: reinstall openssh-server, or run the lab as a non-root user",
        ),
        (
            "account is locked",
            "the lab runs sshd without PAM, which refuses accounts whose password is locked (`!` in /etc/shadow): unlock it without a password with `usermod -p '*' USER`",
        ),
        (
            "Cannot assign requested address",
            "the loopback address is not configured: use 127.0.0.x (lab hosts listen on loopback)",
        ),
        (
            "Permission denied",
            "check that the lab directory and its files are readable and writable by the current user",
        ),
    ];
    hints
        .iter()
        .find(|(needle, _)| log.contains(needle))
        .map_or_else(String::new, |(_, help)| format!("; {help}"))
}
