//! One active apply per state directory and inventory.
//!
//! The lock is an OS file lock (`flock`), so the kernel releases it when the holder dies, even
//! by `kill -9`: a lock left by a dead process is simply free. Beside it, a small JSON file
//! names the holder (pid, host, run id, since when) for the message a second apply prints.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub run_id: String,
    pub since: String,
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

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another apply holds it.
    Held {
        holder: Option<Holder>,
        path: PathBuf,
    },
    Io(std::io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Held {
                holder: Some(h),
                path,
            } => write!(
                f,
                "another apply is running against this inventory: pid {} on {}, run {}, since {} (lock {})",
                h.pid,
                h.host,
                h.run_id,
                h.since,
                path.display()
            ),
            Self::Held { holder: None, path } => {
                write!(
                    f,
                    "another apply is running against this inventory (lock {})",
                    path.display()
                )
            }
            Self::Io(e) => write!(f, "cannot take the run lock: {e}"),
        }
    }
}

/// Takes the lock of `state` for `inventory`, or says who holds it. Never waits.
pub fn acquire(state: &Path, inventory: &Path, run_id: &str) -> Result<RunLock, LockError> {
    let dir = state.join("locks");
    fs_err::create_dir_all(&dir).map_err(LockError::Io)?;
    let key = crate::journal::fingerprint(inventory.to_string_lossy().as_bytes());
    let path = dir.join(format!("{}.lock", &key[..16]));
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
            return Err(LockError::Held { holder, path });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
    }
    let holder = Holder {
        pid: std::process::id(),
        host: fs_err::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "?".to_owned(), |h| h.trim().to_owned()),
        run_id: run_id.to_owned(),
        since: jiff::Timestamp::now().to_string(),
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
}
