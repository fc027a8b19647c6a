//! Connections that outlive a run, for a short while.
//!
//! Opening an SSH connection costs a key exchange (OpenSSH's default `sntrup761x25519-sha512`
//! takes about 90 ms of client CPU), and `dry run, apply, apply again` would pay it for every
//! host each time. So by default a run's master connections stay up for [`DEFAULT_PERSIST`]
//! after their last command (`ControlPersist`), in a control directory shared by the runs of
//! one user, and the next run on the same endpoint uses the master it finds there.
//!
//! What keeps that safe:
//!
//! - **The directory is the user's alone.** [`shared_dir`] is `$RUNBOOK_CONTROL_DIR`, else
//!   `$XDG_RUNTIME_DIR/runbook-ssh`, else `/tmp/runbook-ssh-UID`. It is created with mode 0700;
//!   one that already exists is used only when it is a real directory (not a symlink), owned by
//!   this user and not accessible to anybody else. Each endpoint's directory below it is checked
//!   the same way, and a control socket is used only when it is a socket owned by this user.
//!   Anything else is refused ([`Unsafe`]) and the run opens its own connections instead.
//! - **One socket per endpoint, keyed by all of it** ([`endpoint_key`]): address, port, user,
//!   identity file and every `ssh_options` entry. Two inventory entries share a master only
//!   when ssh would make the very same connection for both.
//! - **A reused master is checked first** (a round trip over the socket); a dead one's socket
//!   is removed and a new master started.
//! - **Locks are per run, not per master.** The host lock (`host_lock.rs`) is a command of the
//!   run on the connection; when the run ends or dies, that command's input ends and the host
//!   releases the lock, whatever happens to the master. A master kept for the next run holds no
//!   lock of the last one.
//! - **Masters go on their own**: `ControlPersist` ends each master that long after its last
//!   channel closed, whether its run succeeded, failed or was killed; `lab down` stops the lab's
//!   sshd sessions, which ends their masters at once. `--no-persist` restores per-run masters
//!   in a private temporary directory, closed when the run ends.

use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::endpoint::Endpoint;

/// How long a master stays up after its last command, unless `--persist` says otherwise.
pub const DEFAULT_PERSIST: Duration = Duration::from_secs(60);

/// The longest `--persist` accepted: connections are kept briefly, not for a working day.
pub const LONGEST_PERSIST: Duration = Duration::from_secs(3600);

/// Why the shared control directory (or a part of it) is not used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsafe(pub String);

/// The user id this process runs as: the owner of `/proc/self`.
fn own_uid() -> Result<u32, Unsafe> {
    fs_err::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| Unsafe(format!("cannot tell which user runs runbook: {e}")))
}

/// Where the shared control directory is: `$RUNBOOK_CONTROL_DIR`, else
/// `$XDG_RUNTIME_DIR/runbook-ssh`, else `/tmp/runbook-ssh-UID`. Short, as control socket paths
/// must fit a Unix socket address (about 100 bytes).
pub fn shared_dir_path() -> Result<PathBuf, Unsafe> {
    if let Some(dir) = std::env::var_os("RUNBOOK_CONTROL_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && run.is_absolute()
        && run.as_os_str().len() < 40
    {
        return Ok(run.join("runbook-ssh"));
    }
    Ok(PathBuf::from(format!("/tmp/runbook-ssh-{}", own_uid()?)))
}

/// The shared control directory, created owner-only if missing, checked if present.
pub fn shared_dir() -> Result<PathBuf, Unsafe> {
    let dir = shared_dir_path()?;
    private_dir(&dir)?;
    Ok(dir)
}

/// Creates `dir` with mode 0700, or checks that the existing one is a directory of this user's
/// that nobody else may enter (not a symlink, owned by this user, no group or other bits).
pub fn private_dir(dir: &Path) -> Result<(), Unsafe> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Unsafe(format!(
                "cannot create the control directory {}: {e}",
                dir.display()
            )));
        }
    }
    let meta = fs_err::symlink_metadata(dir).map_err(|e| Unsafe(e.to_string()))?;
    let uid = own_uid()?;
    if !meta.file_type().is_dir() {
        return Err(Unsafe(format!(
            "the control directory {} is not a directory (a symlink?): not used",
            dir.display()
        )));
    }
    if meta.uid() != uid {
        return Err(Unsafe(format!(
            "the control directory {} belongs to user {}, not to this user ({uid}): not used",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(Unsafe(format!(
            "the control directory {} may be entered by other users (mode {:o}; it must be 700): not used",
            dir.display(),
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

/// Whether `socket` may be trusted as a master's control socket: a socket owned by this user.
/// `Ok(false)` when there is none.
pub fn trusted_socket(socket: &Path) -> Result<bool, Unsafe> {
    let meta = match std::fs::symlink_metadata(socket) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Unsafe(format!("{}: {e}", socket.display()))),
    };
    if !meta.file_type().is_socket() || meta.uid() != own_uid()? {
        return Err(Unsafe(format!(
            "{} is not a control socket of this user's: not used",
            socket.display()
        )));
    }
    Ok(true)
}

/// The name of an endpoint's directory in the shared control directory: a hash of everything
/// that makes the connection (address, port, user, identity file, every `ssh_options` entry),
/// never of the host's inventory name.
pub fn endpoint_key(endpoint: &Endpoint) -> String {
    let mut text = format!(
        "v1\0{}\0{}\0{}\0{}\0",
        endpoint.address,
        endpoint.port.map(|p| p.to_string()).unwrap_or_default(),
        endpoint.user.as_deref().unwrap_or(""),
        endpoint
            .identity_file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    for (key, value) in &endpoint.ssh_options {
        text.push_str(key);
        text.push('\0');
        text.push_str(value);
        text.push('\0');
    }
    crate::journal::fingerprint(text.as_bytes())
        .chars()
        .take(24)
        .collect()
}

/// An endpoint directory with no master for this long is removed when a run next uses the
/// shared control directory: longer than any `--persist` (at most an hour), so a directory whose
/// master may still come back is never touched.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// Removes the endpoint directories of `shared` whose master is gone: no control socket, not
/// changed for [`STALE_AFTER`], and whose control lock nobody holds. Only names of the
/// [`endpoint_key`] shape are looked at; errors are ignored (the next run tries again).
pub fn prune(shared: &Path) {
    let Ok(entries) = fs_err::read_dir(shared) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.len() != 24 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let dir = entry.path();
        let Ok(meta) = fs_err::symlink_metadata(&dir) else {
            continue;
        };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if !meta.is_dir() || !old || fs_err::symlink_metadata(dir.join("master")).is_ok() {
            continue;
        }
        let Ok(lock) = std::fs::File::open(dir.join("lock")) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// How long masters outlive their run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    /// Masters of this run only, in a temporary directory, closed when the run ends.
    Off,
    /// Shared masters, kept this long after their last command.
    For(Duration),
}

impl Default for Persist {
    fn default() -> Self {
        Self::For(DEFAULT_PERSIST)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::inventory::Connection;

    fn endpoint() -> Endpoint {
        Endpoint {
            name: "a".into(),
            address: "127.0.0.2".into(),
            port: Some(2222),
            user: Some("ops".into()),
            connection: Connection::Ssh,
            ssh_options: BTreeMap::from([("UserKnownHostsFile".into(), "/k/known".into())]),
            identity_file: Some(PathBuf::from("/k/id")),
            max_sessions: 9,
        }
    }

    #[test]
    fn every_part_of_the_endpoint_changes_its_key_and_its_name_does_not() {
        let base = endpoint_key(&endpoint());
        assert_eq!(base.len(), 24);
        let renamed = Endpoint {
            name: "other".into(),
            max_sessions: 3,
            ..endpoint()
        };
        assert_eq!(endpoint_key(&renamed), base, "the same connection");
        let variants = [
            Endpoint {
                address: "127.0.0.3".into(),
                ..endpoint()
            },
            Endpoint {
                port: Some(2223),
                ..endpoint()
            },
            Endpoint {
                user: None,
                ..endpoint()
            },
            Endpoint {
                user: Some("root".into()),
                ..endpoint()
            },
            Endpoint {
                identity_file: Some(PathBuf::from("/k/other")),
                ..endpoint()
            },
            Endpoint {
                ssh_options: BTreeMap::from([("UserKnownHostsFile".into(), "/k/other".into())]),
                ..endpoint()
            },
            Endpoint {
                ssh_options: BTreeMap::new(),
                ..endpoint()
            },
        ];
        for v in &variants {
            assert_ne!(endpoint_key(v), base, "{v:?}");
        }
    }

    #[test]
    fn endpoint_directories_whose_master_is_long_gone_are_pruned_and_no_other() {
        let shared = tempfile::tempdir().expect("tempdir");
        let old = std::time::SystemTime::now() - STALE_AFTER - std::time::Duration::from_secs(60);
        let make = |name: &str, socket: bool, aged: bool| {
            let dir = shared.path().join(name);
            fs_err::create_dir(&dir).expect("mkdir");
            fs_err::write(dir.join("lock"), "").expect("lock");
            if socket {
                fs_err::write(dir.join("master"), "").expect("socket stand-in");
            }
            if aged {
                std::fs::File::open(&dir)
                    .and_then(|d| d.set_modified(old))
                    .expect("age the directory");
            }
            dir
        };
        let stale = make("0123456789abcdef01234567", false, true);
        let live = make("1123456789abcdef01234567", true, true);
        let recent = make("2123456789abcdef01234567", false, false);
        let other = make("not-an-endpoint", false, true);
        let held = make("3123456789abcdef01234567", false, true);
        let guard = std::fs::File::open(held.join("lock")).expect("open");
        guard.lock().expect("held by another run");
        prune(shared.path());
        assert!(!stale.exists(), "no master for hours: removed");
        for kept in [&live, &recent, &other, &held] {
            assert!(kept.exists(), "{} kept", kept.display());
        }
    }

    #[test]
    fn the_control_directory_is_owner_only_or_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("ctl");
        private_dir(&dir).expect("created");
        let mode = fs_err::metadata(&dir).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o700);
        private_dir(&dir).expect("the existing one is fine");
        fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let refused = private_dir(&dir).expect_err("others may enter");
        assert!(refused.0.contains("must be 700"), "{refused}");
        fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        // A symlink to a private directory is not the directory.
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        let refused = private_dir(&link).expect_err("a symlink");
        assert!(refused.0.contains("not a directory"), "{refused}");
        // A plain file where a socket should be.
        let fake = dir.join("master");
        fs_err::write(&fake, "").expect("file");
        assert!(trusted_socket(&fake).is_err());
        assert!(!trusted_socket(&dir.join("none")).expect("absent is fine"));
    }
}
