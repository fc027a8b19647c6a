//! What can go wrong with a lab, each message saying what failed and how to fix it.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// An error from [`super::Lab`]. Every message names the file, host or command involved and
/// ends with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "sshd not found at {}: install openssh-server (apt-get install -y openssh-server)",
        path.display()
    )]
    SshdNotFound { path: PathBuf },

    #[error(
        "could not run `{program}`: {source}; install openssh-client (apt-get install -y openssh-client)"
    )]
    ToolMissing {
        program: String,
        source: std::io::Error,
    },

    #[error("`{command}` failed: {detail}")]
    ToolFailed { command: String, detail: String },

    #[error("invalid lab configuration: {problem}; {help}")]
    InvalidConfig { problem: String, help: String },

    /// A file or directory could not be read or written (the message names the path).
    #[error("{0}")]
    Io(#[from] std::io::Error),

    #[error(
        "no lab in {}: {} does not exist; start one with `runbook lab up --dir {}`",
        dir.display(), dir.join(super::STATE_FILE).display(), dir.display()
    )]
    NotFound { dir: PathBuf },

    #[error(
        "{} is not a lab state file ({source}); stop its sshd processes by the pids in hosts/*/sshd.pid and remove the file",
        path.display()
    )]
    BadState {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error(
        "a lab is already running in {} (hosts {hosts}); stop it first with `runbook lab down --dir {}`",
        dir.display(), dir.display()
    )]
    AlreadyRunning { dir: PathBuf, hosts: String },

    #[error("the lab has no host `{name}`; its hosts are: {known}")]
    UnknownHost { name: String, known: String },

    #[error(
        "no free port on {address}: {source}; check that the loopback interface is up (ip addr show lo)"
    )]
    NoPort {
        address: Ipv4Addr,
        source: std::io::Error,
    },

    #[error(
        "sshd for lab host `{}` did not start on {}:{}: {}{}\n--- {} (this attempt) ---\n{}",
        .0.host, .0.address, .0.port, .0.reason, .0.hint, .0.log_path.display(), .0.log
    )]
    StartFailed(Box<StartFailure>),

    #[error(
        "sshd for lab host `{host}` (pid {pid}) is still running after SIGTERM and SIGKILL; check it with `ps -o pid,stat,cmd -p {pid}`"
    )]
    StopFailed { host: String, pid: u32 },
}

/// Why a host's sshd did not start: [`LabError::StartFailed`].
#[derive(Debug)]
pub struct StartFailure {
    pub host: String,
    pub address: Ipv4Addr,
    pub port: u16,
    pub reason: String,
    /// `; <what to do>` when the log says what went wrong, else empty.
    pub hint: String,
    pub log_path: PathBuf,
    /// What sshd logged during this attempt.
    pub log: String,
}
