//! The reads of `runbook runs` and `status`, on either journal: the embedded SQLite one of a
//! state directory, or the shared one on PostgreSQL (`--state postgres://...`).

use super::postgres::{self, Database};
use super::{ActionRecord, Journal, JournalError, Piece, RunRecord};

/// A journal to read runs from.
#[derive(Debug)]
pub enum Reader {
    Local(Journal),
    Shared(Database),
}

impl Reader {
    /// The shared journal when `location` is a `postgres://` URL, else `None` (a directory).
    pub fn shared(location: &str) -> Option<Result<Self, JournalError>> {
        postgres::is_url(location).then(|| Database::open(location).map(Self::Shared))
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, JournalError> {
        match self {
            Self::Local(j) => j.runs(),
            Self::Shared(db) => db.runs(),
        }
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError> {
        match self {
            Self::Local(j) => j.run(id),
            Self::Shared(db) => db.run_record(id),
        }
    }

    /// A run's actions, in the order they were first recorded.
    pub fn actions(&self, run: &str) -> Result<Vec<ActionRecord>, JournalError> {
        match self {
            Self::Local(j) => j.actions(run),
            Self::Shared(db) => db.actions(run),
        }
    }

    /// The pieces of a run's outage and write freeze.
    pub fn pieces(&self, run: &str) -> Result<Vec<Piece>, JournalError> {
        match self {
            Self::Local(j) => j.pieces(run),
            Self::Shared(db) => db.pieces(run),
        }
    }
}
