//! Opening the SSH master connection of one host.
//!
//! The `openssh` crate drives the system `ssh` with a ControlMaster, so the user's
//! `~/.ssh/config`, agent and known_hosts behave as they expect. Inventory `ssh_options` go into
//! a small per-host config file that `Include`s the user's and the system's configuration after
//! them (the first value found wins in ssh_config). Host keys are checked strictly: an unknown
//! or changed key is refused, and the error quotes the fingerprint the host presented.

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};

use super::endpoint::Endpoint;
use super::exec::TransportError;

/// How long a master outlives its last channel (`ControlPersist`), in seconds.
pub const CONTROL_PERSIST_SECS: usize = 5;

pub async fn connect(endpoint: &Endpoint, control_dir: &Path) -> Result<Session, TransportError> {
    let config = control_dir.join(format!("{}.config", sanitize(&endpoint.name)));
    let mut text = format!("# written by runbook for host {}\nHost *\n", endpoint.name);
    for (key, value) in &endpoint.ssh_options {
        let _ = writeln!(text, "  {key} {value}");
    }
    text.push_str("Include ~/.ssh/config\nInclude /etc/ssh/ssh_config\n");
    fs_err::write(&config, text).map_err(|e| TransportError::Unreachable {
        host: endpoint.name.clone(),
        message: format!("cannot write the ssh configuration: {e}"),
    })?;

    let mut builder = SessionBuilder::default();
    builder
        .known_hosts_check(KnownHosts::Strict)
        .control_directory(control_dir)
        .config_file(&config)
        .port(endpoint.port)
        .connect_timeout(Duration::from_secs(10))
        .server_alive_interval(Duration::from_secs(5))
        // Short: the run's host-lock command keeps the master busy while the run lives
        // (`host_lock`), so this only counts once the run is gone, killed or not.
        .control_persist(ControlPersist::IdleFor(
            NonZeroUsize::new(CONTROL_PERSIST_SECS).expect("not zero"),
        ));
    if let Some(user) = &endpoint.user {
        builder.user(user.clone());
    }
    if let Some(key) = &endpoint.identity_file {
        builder.keyfile(key);
    }
    match builder.connect_mux(&endpoint.address).await {
        Ok(session) => Ok(session),
        Err(err) => Err(classify(endpoint, &err).await),
    }
}

async fn classify(endpoint: &Endpoint, err: &openssh::Error) -> TransportError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let _ = write!(message, ": {s}");
        source = s.source();
    }
    let host_key = [
        "Host key verification failed",
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "host key is known",
        "HOST KEY",
    ]
    .iter()
    .any(|needle| message.contains(needle));
    if host_key {
        let fingerprint = fingerprint(endpoint).await;
        return TransportError::HostKey {
            host: endpoint.name.clone(),
            message: message.trim().to_owned(),
            fingerprint,
        };
    }
    TransportError::Unreachable {
        host: endpoint.name.clone(),
        message: message.trim().to_owned(),
    }
}

/// The fingerprints of the keys the host presents, as `ssh-keygen -l` prints them.
async fn fingerprint(endpoint: &Endpoint) -> Option<String> {
    let script = format!(
        "ssh-keyscan -T 5 -p {} {} 2>/dev/null | ssh-keygen -lf - 2>/dev/null",
        endpoint.port,
        runbook_modules::quote(&endpoint.address)
    );
    let out = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
