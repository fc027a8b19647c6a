//! The run's record, behind one trait: the journal's transitions and the run directory's files.
//!
//! The scheduler writes through [`RunLog`] only, so a second backend (a journal shared between
//! controllers, issue 14) implements this trait and nothing in the loop changes. What every
//! backend must guarantee:
//!
//! - [`RunLog::commit`] is durable when it returns `Ok`, all entries or none. The scheduler
//!   commits every `started` before the command is sent and every result before a dependent
//!   starts ([`super::record`]).
//! - A write that fails is a failure of the run, never a success: the scheduler halts (nothing
//!   more starts) and the run ends [`crate::event::RunStatus::Unrecorded`] (exit 5).
//! - A backend shared between controllers makes each write conditional on its lease's epoch in
//!   the same transaction, and refuses it once another controller took the run; and
//!   [`RunLog::still_held`] lets it fence itself between writes (it cannot renew before its
//!   lease's TTL less a margin: nothing new starts). Both are errors like any failed write.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::event::Status;
use crate::journal::{Entry, Journal, JournalError, Piece, RunState};

/// Why a write of the run's record failed. `Display` is the cause alone (the journal's path
/// and message, or the file's path and the system's error); the scheduler says what was being
/// written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// An action's result as its run directory keeps it.
#[derive(Debug)]
pub struct ActionFiles<'a> {
    pub stdout: &'a str,
    pub stderr: &'a str,
    pub status: Status,
    pub rc: Option<i32>,
    pub message: Option<&'a str>,
    pub duration_secs: f64,
    /// Attempts made (see `Finished::attempts`).
    pub attempts: u32,
}

/// Where a run's record goes. One run, one writer: the scheduler holds it for the whole run.
pub trait RunLog: Send {
    /// Whether transitions are journaled at all (`false`: no journal, as in tests of the
    /// scheduler; the run directory is still written).
    fn journaled(&self) -> bool;

    /// Writes `entries` (never empty) in one transaction.
    fn commit(&mut self, entries: &[Entry]) -> Result<(), RecordError>;

    /// The pieces of the run's outage and write freeze recorded so far (by earlier applies of
    /// it), read once as an apply begins.
    fn pieces(&self) -> Result<Vec<Piece>, RecordError>;

    /// Records how the run ended.
    fn end(&mut self, state: RunState) -> Result<(), RecordError>;

    /// Whether this writer still holds the run, asked before each batch of actions is sent.
    /// An embedded journal always does; a leased one answers from its last renewal, without a
    /// round trip.
    fn still_held(&self) -> Result<(), RecordError> {
        Ok(())
    }

    /// Keeps an action's output and result (`actions/ACTION/{stdout,stderr,result.json}`).
    fn keep_output(&mut self, action: &str, files: &ActionFiles<'_>) -> Result<(), RecordError>;

    /// Keeps a host file an action asked for (`actions/ACTION/artifacts/NAME`); says where.
    fn keep_artifact(
        &mut self,
        action: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<String, RecordError>;
}

/// The embedded record: the SQLite journal of the state directory (when there is one) and the
/// run directory beside it.
pub struct Local {
    journal: Option<Arc<Mutex<Journal>>>,
    run_id: String,
    run_dir: PathBuf,
}

impl Local {
    pub fn new(
        journal: Option<Arc<Mutex<Journal>>>,
        run_id: impl Into<String>,
        run_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            journal,
            run_id: run_id.into(),
            run_dir: run_dir.into(),
        }
    }

    pub(crate) fn action_dir(&self, action: &str) -> PathBuf {
        self.run_dir.join("actions").join(action)
    }
}

impl RunLog for Local {
    fn journaled(&self) -> bool {
        self.journal.is_some()
    }

    fn commit(&mut self, entries: &[Entry]) -> Result<(), RecordError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        journal
            .lock()
            .expect("the journal lock is never poisoned")
            .write(&self.run_id, entries)?;
        Ok(())
    }

    fn pieces(&self) -> Result<Vec<Piece>, RecordError> {
        let Some(journal) = &self.journal else {
            return Ok(Vec::new());
        };
        Ok(journal
            .lock()
            .expect("the journal lock is never poisoned")
            .pieces(&self.run_id)?)
    }

    fn end(&mut self, state: RunState) -> Result<(), RecordError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        journal
            .lock()
            .expect("the journal lock is never poisoned")
            .set_state(&self.run_id, state)?;
        Ok(())
    }

    fn keep_output(&mut self, action: &str, files: &ActionFiles<'_>) -> Result<(), RecordError> {
        let dir = self.action_dir(action);
        fs_err::create_dir_all(&dir)?;
        fs_err::write(dir.join("stdout"), files.stdout)?;
        fs_err::write(dir.join("stderr"), files.stderr)?;
        let result = serde_json::json!({
            "status": files.status,
            "rc": files.rc,
            "message": files.message,
            "duration_secs": files.duration_secs,
            "attempts": files.attempts,
        });
        fs_err::write(dir.join("result.json"), result.to_string())?;
        Ok(())
    }

    fn keep_artifact(
        &mut self,
        action: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<String, RecordError> {
        let dir = self.action_dir(action).join("artifacts");
        let path = dir.join(name);
        fs_err::create_dir_all(&dir)?;
        fs_err::write(&path, bytes)?;
        Ok(path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::{ActionFiles, Local, RunLog};
    use crate::event::Status;

    #[test]
    fn the_local_record_keeps_an_actions_files_in_the_run_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Local::new(None, "r", dir.path().join("runs/r"));
        assert!(!log.journaled());
        let files = ActionFiles {
            stdout: "out\n",
            stderr: "err\n",
            status: Status::Failed,
            rc: Some(3),
            message: Some("exit 3"),
            duration_secs: 1.5,
            attempts: 2,
        };
        log.keep_output("s@a", &files).expect("kept");
        let kept = log.keep_artifact("s@a", "dump.txt", b"x").expect("kept");
        let action = dir.path().join("runs/r/actions/s@a");
        let read = |name: &str| fs_err::read_to_string(action.join(name)).expect("read");
        assert_eq!(read("stdout"), "out\n");
        assert_eq!(read("stderr"), "err\n");
        assert_eq!(
            read("result.json"),
            r#"{"status":"failed","rc":3,"message":"exit 3","duration_secs":1.5,"attempts":2}"#
        );
        assert_eq!(read("artifacts/dump.txt"), "x");
        assert_eq!(
            kept,
            action.join("artifacts/dump.txt").display().to_string()
        );
    }

    #[test]
    fn a_run_directory_that_cannot_be_written_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs_err::write(dir.path().join("runs"), "").expect("write");
        let mut log = Local::new(None, "r", dir.path().join("runs/r"));
        let files = ActionFiles {
            stdout: "",
            stderr: "",
            status: Status::Ok,
            rc: Some(0),
            message: None,
            duration_secs: 0.0,
            attempts: 1,
        };
        let e = log
            .keep_output("s@a", &files)
            .expect_err("a file is in the way");
        assert!(e.to_string().contains("runs/r/actions/s@a"), "{e}");
    }
}
