//! The journal behind one trait, so the executor's set-up and the commands that steer recorded
//! runs (`apply`, `resume`, `approve`, `resolve`, `abandon`, `status`, `runs`, `report`) read
//! and write a run the same way whether it lives in the embedded SQLite journal of a state
//! directory ([`Journal`]) or in the shared one on PostgreSQL ([`Database`]).
//!
//! Who may write a run differs, and stays each backend's own: SQLite is guarded by the state
//! directory's locks ([`crate::lock`]), taken by the command; on PostgreSQL every write that
//! changes a run is conditional on the epoch of the run's lease this process holds
//! ([`Backend::claim`], or [`crate::execute::Shared::take`] with its heartbeat), checked in the
//! same transaction. Approvals and decisions are not fenced on either: an operator records them
//! while the run waits, from anywhere, and the next apply reads them.
//!
//! [`Database`]: super::postgres::Database

use super::postgres::lease::Held;
use super::{ActionRecord, Entry, History, Journal, JournalError, Piece, RunRecord, RunState};

/// A lease of the shared journal as `runbook lock show` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    pub run: String,
    pub operator: String,
    pub host: String,
    pub pid: i64,
    pub epoch: i64,
    /// RFC 3339 (UTC, the database's clock).
    pub heartbeat: String,
    pub expires: String,
    /// Whether it is still live by the database's clock.
    pub live: bool,
}

/// A `runbook lock steal`: who broke a run's lease, why, and whose it was.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Steal {
    pub by: String,
    pub reason: String,
    /// The holder the lease was taken from, as `Holder` shows it.
    pub from: String,
    pub epoch: i64,
    pub at: String,
}

/// Everything a command needs of a journal. Every method is durable when it returns `Ok`.
pub trait Backend: Send + std::fmt::Debug {
    /// What messages name: the journal file, or the database's URL without its password.
    fn location(&self) -> String;

    /// Whether several controllers share it (PostgreSQL): runs are then leased.
    fn shared(&self) -> bool;

    /// Records a new run.
    fn create_run(&self, run: &RunRecord) -> Result<(), JournalError>;

    /// Takes the right to write `run` for this process: always granted on SQLite (the state
    /// directory's run lock is the command's to take); on PostgreSQL the run's lease, refused
    /// (`Ok(Err)`, naming the holder) while another controller's lease is live.
    fn claim(&self, run: &str) -> Result<Result<(), Held>, JournalError>;

    /// Gives the right back at once (PostgreSQL: the lease expires now).
    fn release(&self, run: &str) -> Result<(), JournalError>;

    fn set_state(&self, run: &str, state: RunState) -> Result<(), JournalError>;

    /// Starts the next process generation of a run (its first apply is 1) and returns it.
    fn next_generation(&self, run: &str) -> Result<u32, JournalError>;

    /// Records the window a resumed run keeps to from now on (a new `--window`).
    fn set_window(&self, run: &str, window: Option<&str>) -> Result<(), JournalError>;

    /// Records new fingerprints when a run is resumed with allowed changes.
    fn update_fingerprints(
        &self,
        run: &str,
        runbook_fp: &str,
        inventory_fp: &str,
        params_fp: &str,
    ) -> Result<(), JournalError>;

    fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError>;

    /// Every run, newest first.
    fn runs(&self) -> Result<Vec<RunRecord>, JournalError>;

    /// The newest run of this runbook file and inventory file that did not finish.
    fn resumable(
        &self,
        runbook_file: &str,
        inventory_file: &str,
    ) -> Result<Option<RunRecord>, JournalError> {
        Ok(self.runs()?.into_iter().find(|r| {
            r.runbook_file == runbook_file
                && r.inventory_file == inventory_file
                && r.state.resumable()
        }))
    }

    /// Writes several transitions in one transaction: the executor's group commit.
    fn write(&self, run: &str, entries: &[Entry]) -> Result<(), JournalError>;

    /// The pieces of a run's outage and write freeze, by generation, outage before freeze.
    fn pieces(&self, run: &str) -> Result<Vec<Piece>, JournalError>;

    /// A run's actions in the order they were first recorded.
    fn actions(&self, run: &str) -> Result<Vec<ActionRecord>, JournalError>;

    /// Registered outputs of a run: `(register, host, JSON value)`, masked.
    fn outputs(&self, run: &str) -> Result<Vec<(String, String, String)>, JournalError>;

    fn approve(&self, run: &str, step: &str, by: &str, reason: &str) -> Result<(), JournalError>;

    /// Approved steps of a run: `(step, by, reason)`.
    fn approvals(&self, run: &str) -> Result<Vec<(String, String, String)>, JournalError>;

    /// An operator's decision about an action whose outcome is unknown: `done` or `redo`.
    fn decide(&self, run: &str, action: &str, decision: &str, by: &str)
    -> Result<(), JournalError>;

    /// `(action, decision)` of a run.
    fn decisions(&self, run: &str) -> Result<Vec<(String, String)>, JournalError>;

    /// Recorded durations of a runbook's steps over all its runs: `(step, milliseconds)`.
    fn durations(&self, runbook_name: &str) -> Result<Vec<(String, i64)>, JournalError>;

    /// Everything recorded of one run, for `runbook report`.
    fn history(&self, run: &str) -> Result<History, JournalError>;

    /// The `runbook lock steal`s of a run, oldest first (none on SQLite, which has no leases).
    fn steals(&self, _run: &str) -> Result<Vec<Steal>, JournalError> {
        Ok(Vec::new())
    }
}

impl Backend for Journal {
    fn location(&self) -> String {
        self.path().display().to_string()
    }
    fn shared(&self) -> bool {
        false
    }
    fn create_run(&self, run: &RunRecord) -> Result<(), JournalError> {
        Journal::create_run(self, run)
    }
    fn claim(&self, _run: &str) -> Result<Result<(), Held>, JournalError> {
        Ok(Ok(()))
    }
    fn release(&self, _run: &str) -> Result<(), JournalError> {
        Ok(())
    }
    fn set_state(&self, run: &str, state: RunState) -> Result<(), JournalError> {
        Journal::set_state(self, run, state)
    }
    fn next_generation(&self, run: &str) -> Result<u32, JournalError> {
        Journal::next_generation(self, run)
    }
    fn set_window(&self, run: &str, window: Option<&str>) -> Result<(), JournalError> {
        Journal::set_window(self, run, window)
    }
    fn update_fingerprints(
        &self,
        run: &str,
        runbook_fp: &str,
        inventory_fp: &str,
        params_fp: &str,
    ) -> Result<(), JournalError> {
        Journal::update_fingerprints(self, run, runbook_fp, inventory_fp, params_fp)
    }
    fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError> {
        Journal::run(self, id)
    }
    fn runs(&self) -> Result<Vec<RunRecord>, JournalError> {
        Journal::runs(self)
    }
    fn resumable(
        &self,
        runbook_file: &str,
        inventory_file: &str,
    ) -> Result<Option<RunRecord>, JournalError> {
        Journal::resumable(self, runbook_file, inventory_file)
    }
    fn write(&self, run: &str, entries: &[Entry]) -> Result<(), JournalError> {
        Journal::write(self, run, entries)
    }
    fn pieces(&self, run: &str) -> Result<Vec<Piece>, JournalError> {
        Journal::pieces(self, run)
    }
    fn actions(&self, run: &str) -> Result<Vec<ActionRecord>, JournalError> {
        Journal::actions(self, run)
    }
    fn outputs(&self, run: &str) -> Result<Vec<(String, String, String)>, JournalError> {
        Journal::outputs(self, run)
    }
    fn approve(&self, run: &str, step: &str, by: &str, reason: &str) -> Result<(), JournalError> {
        Journal::approve(self, run, step, by, reason)
    }
    fn approvals(&self, run: &str) -> Result<Vec<(String, String, String)>, JournalError> {
        Journal::approvals(self, run)
    }
    fn decide(
        &self,
        run: &str,
        action: &str,
        decision: &str,
        by: &str,
    ) -> Result<(), JournalError> {
        Journal::decide(self, run, action, decision, by)
    }
    fn decisions(&self, run: &str) -> Result<Vec<(String, String)>, JournalError> {
        Journal::decisions(self, run)
    }
    fn durations(&self, runbook_name: &str) -> Result<Vec<(String, i64)>, JournalError> {
        Journal::durations(self, runbook_name)
    }
    fn history(&self, run: &str) -> Result<History, JournalError> {
        Journal::history(self, run)
    }
}

/// Opens the journal a state location names: the shared one for a `postgres://` URL (its
/// schema migrates itself), else the SQLite journal of that directory (created if need be).
pub fn open(location: &std::path::Path) -> Result<Box<dyn Backend>, JournalError> {
    match location.to_str() {
        Some(url) if super::postgres::is_url(url) => {
            Ok(Box::new(super::postgres::Database::open(url)?))
        }
        _ => Ok(Box::new(Journal::open(location)?)),
    }
}
