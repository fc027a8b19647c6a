//! Reading a run's whole history back: when each action started and ended, every transition,
//! approvals and decisions with who and when. For `runbook report`; the executor never reads
//! this (it resumes from [`Journal::actions`]).

use rusqlite::params;
use serde::Serialize;

use super::{Journal, JournalError, Piece};

/// An action as last recorded, with its times (RFC 3339).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActionTimes {
    pub action: String,
    pub step: String,
    pub host: String,
    pub status: String,
    pub attempt: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub rc: Option<i32>,
    pub message: Option<String>,
}

/// One recorded transition of an action: `started`, then its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub action: String,
    pub status: String,
    pub at: String,
}

/// An approval of a manual step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub step: String,
    pub by: String,
    pub reason: String,
    pub at: String,
}

/// An operator's decision on an action whose outcome was unknown (`runbook resolve`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub action: String,
    pub decision: String,
    pub by: String,
    pub at: String,
}

/// Everything the journal holds of one run, in recorded order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct History {
    pub actions: Vec<ActionTimes>,
    pub transitions: Vec<Transition>,
    pub approvals: Vec<Approval>,
    pub decisions: Vec<Decision>,
    /// The pieces of the run's outage and write freeze, one per apply that reached them.
    pub pieces: Vec<Piece>,
    /// How many times the run was started (the first `apply`, then each resume); 0 for a dry run.
    pub generation: u32,
    /// The `runbook lock steal`s of the run (the shared journal only).
    pub steals: Vec<crate::journal::Steal>,
}

impl Journal {
    pub fn history(&self, run: &str) -> Result<History, JournalError> {
        let actions = self.rows(
            "SELECT action, step, host, status, attempt, started_at, finished_at, duration_ms, rc, message FROM actions WHERE run_id = ?1 ORDER BY rowid",
            run,
            |row| {
                Ok(ActionTimes {
                    action: row.get(0)?,
                    step: row.get(1)?,
                    host: row.get(2)?,
                    status: row.get(3)?,
                    attempt: row.get(4)?,
                    started_at: row.get(5)?,
                    finished_at: row.get(6)?,
                    duration_ms: row.get(7)?,
                    rc: row.get(8)?,
                    message: row.get(9)?,
                })
            },
        )?;
        let transitions = self.rows(
            "SELECT action, status, at FROM transitions WHERE run_id = ?1 ORDER BY rowid",
            run,
            |row| {
                Ok(Transition {
                    action: row.get(0)?,
                    status: row.get(1)?,
                    at: row.get(2)?,
                })
            },
        )?;
        let approvals = self.rows(
            "SELECT step, by, reason, at FROM approvals WHERE run_id = ?1 ORDER BY at, step",
            run,
            |row| {
                Ok(Approval {
                    step: row.get(0)?,
                    by: row.get(1)?,
                    reason: row.get(2)?,
                    at: row.get(3)?,
                })
            },
        )?;
        let decisions = self.rows(
            "SELECT action, decision, by, at FROM decisions WHERE run_id = ?1 ORDER BY at, action",
            run,
            |row| {
                Ok(Decision {
                    action: row.get(0)?,
                    decision: row.get(1)?,
                    by: row.get(2)?,
                    at: row.get(3)?,
                })
            },
        )?;
        let generation = self
            .conn
            .query_row(
                "SELECT generation FROM runs WHERE id = ?1",
                params![run],
                |row| row.get(0),
            )
            .map_err(|e| self.err(&e))?;
        Ok(History {
            actions,
            transitions,
            approvals,
            decisions,
            pieces: self.pieces(run)?,
            generation,
            steals: Vec::new(),
        })
    }

    fn rows<T>(
        &self,
        sql: &str,
        run: &str,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, JournalError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(&e))?;
        let rows = stmt.query_map([run], map).map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }
}
