//! Locks in the state directory: one active apply per state directory and inventory, and one
//! process per run.
//!
//! Both are OS file locks (`flock`), so the kernel releases them when the holder dies, even by
//! `kill -9`: a lock left by a dead process is simply free. Beside each, a small JSON file names
//! the holder (pid, host, operator, run id, since when) for the message a refused command prints.
//! The run's lock (`runs/RUN/lock`) is held by every apply or resume of the run for as long as it
//! lives; `abandon` takes it too, so a live run cannot be given up under its feet. The locks on
//! the hosts themselves are [`crate::transport`]'s.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub run_id: String,
    pub since: String,
    #[serde(default)]
    pub operator: String,
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    holder_path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.holder_path);
    }
}

/// What a lock keeps to one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Applies of one inventory file with one state directory.
    Inventory,
    /// One run (its id).
    Run(String),
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{} (lock {})", held_message(scope, holder.as_deref()), path.display())]
    Held {
        scope: Scope,
        holder: Option<Box<Holder>>,
        path: PathBuf,
    },
    #[error("cannot take the run lock: {0}")]
    Io(std::io::Error),
}

/// Who holds a lock, in words: the scope, then the holder when its record could be read.
fn held_message(scope: &Scope, holder: Option<&Holder>) -> String {
    use std::fmt::Write as _;
    let mut text = match scope {
        Scope::Inventory => "another apply is running against this inventory".to_owned(),
        Scope::Run(id) => format!("run {id} is live"),
    };
    if let Some(h) = holder {
        let _ = write!(text, ": pid {} on {}", h.pid, h.host);
        if !h.operator.is_empty() {
            let _ = write!(text, " by {}", h.operator);
        }
        let _ = write!(text, ", run {}, since {}", h.run_id, h.since);
    }
    text
}

/// This machine's host name, as the holders of locks are named.
pub fn controller_host() -> String {
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "?".to_owned(), |h| h.trim().to_owned())
}

/// Takes the lock of run `run_id` in `state` (`runs/RUN/lock`) for `operator`, or says who
/// holds it. Never waits.
pub fn acquire_run(state: &Path, run_id: &str, operator: &str) -> Result<RunLock, LockError> {
    let dir = state.join("runs").join(run_id);
    fs_err::create_dir_all(&dir).map_err(LockError::Io)?;
    take(
        dir.join("lock"),
        Scope::Run(run_id.to_owned()),
        run_id,
        operator,
    )
}

/// Takes the lock of `state` for `inventory`, or says who holds it. Never waits.
pub fn acquire(state: &Path, inventory: &Path, run_id: &str) -> Result<RunLock, LockError> {
    let dir = state.join("locks");
    fs_err::create_dir_all(&dir).map_err(LockError::Io)?;
    let key = crate::journal::fingerprint(inventory.to_string_lossy().as_bytes());
    let path = dir.join(format!("{}.lock", &key[..16]));
    take(path, Scope::Inventory, run_id, "")
}

fn take(path: PathBuf, scope: Scope, run_id: &str, operator: &str) -> Result<RunLock, LockError> {
    let holder_path = path.with_extension("holder");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(LockError::Io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = fs_err::read_to_string(&holder_path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            return Err(LockError::Held {
                scope,
                holder,
                path,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
    }
    let holder = Holder {
        pid: std::process::id(),
        host: controller_host(),
        run_id: run_id.to_owned(),
        since: jiff::Timestamp::now().to_string(),
        operator: operator.to_owned(),
    };
    let tmp = holder_path.with_extension("holder.tmp");
    fs_err::write(&tmp, serde_json::to_string(&holder).unwrap_or_default())
        .and_then(|()| fs_err::rename(&tmp, &holder_path))
        .map_err(LockError::Io)?;
    Ok(RunLock {
        _file: file,
        holder_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = Path::new("/tmp/inventory.yaml");
        let lock = acquire(dir.path(), inv, "run-1").expect("first");
        match acquire(dir.path(), inv, "run-2") {
            Err(LockError::Held {
                holder: Some(h), ..
            }) => {
                assert_eq!(h.run_id, "run-1");
                assert_eq!(h.pid, std::process::id());
            }
            other => panic!("expected the lock to be held: {other:?}"),
        }
        assert!(
            acquire(dir.path(), Path::new("/tmp/other.yaml"), "run-3").is_ok(),
            "another inventory has its own lock"
        );
        drop(lock);
        assert!(
            acquire(dir.path(), inv, "run-2").is_ok(),
            "released on drop"
        );
    }

    #[test]
    fn a_run_is_held_by_one_process_and_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = acquire_run(dir.path(), "run-1", "alice").expect("first");
        let err = acquire_run(dir.path(), "run-1", "bob").expect_err("held");
        let text = err.to_string();
        assert!(
            text.starts_with("run run-1 is live: pid ") && text.contains(" by alice, run run-1"),
            "{text}"
        );
        assert!(acquire_run(dir.path(), "run-2", "bob").is_ok(), "per run");
        drop(lock);
        assert!(acquire_run(dir.path(), "run-1", "bob").is_ok(), "released");
    }
}
