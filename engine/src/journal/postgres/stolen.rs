//! `runbook lock show` and `runbook lock steal` on the shared journal, and the actions' files
//! kept in it, so a controller on another machine sees what a run printed and fetched (they are
//! written with the commit of the action's result, `commit.rs`).
//!
//! A steal expires the lease now, whoever holds it, and moves its epoch on, so the holder it
//! was taken from can write nothing more even if it still lives (its epoch no longer holds the
//! lease row; its heartbeat finds out and it starts nothing more). Who broke it, why, and whose
//! it was are recorded in the same transaction: `status` and the run's report show it.

use tokio_postgres::types::Type;

use super::Database;
use super::lease::Holder;
use crate::journal::JournalError;
use crate::journal::backend::{Lease, Steal};

/// Migration 2 (see [`super::MIGRATIONS`]).
pub(super) const MIGRATION: &str = "
CREATE TABLE runbook.steals (
    seq BIGSERIAL PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runbook.runs (id),
    by TEXT NOT NULL,
    reason TEXT NOT NULL,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE runbook.files (
    run_id TEXT NOT NULL REFERENCES runbook.runs (id),
    action TEXT NOT NULL,
    name TEXT NOT NULL,
    content BYTEA NOT NULL,
    epoch BIGINT NOT NULL,
    PRIMARY KEY (run_id, action, name)
);
";

/// Why a steal was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The run has no lease (it never ran here, or no such run).
    NoLease,
}

impl Database {
    /// Every lease, by run: `runbook lock show`.
    pub fn leases(&self) -> Result<Vec<Lease>, JournalError> {
        let sql = "SELECT run_id, operator, host, pid, epoch,
                to_char(heartbeat AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), expires > now()
             FROM runbook.leases ORDER BY run_id";
        self.run(move |c| async move {
            let c = c.lock().await;
            let rows = c.query_typed(sql, &[]).await?;
            Ok(rows
                .iter()
                .map(|r| Lease {
                    run: r.get(0),
                    operator: r.get(1),
                    host: r.get(2),
                    pid: r.get(3),
                    epoch: r.get(4),
                    heartbeat: r.get(5),
                    expires: r.get(6),
                    live: r.get(7),
                })
                .collect())
        })
    }

    /// Expires `run`'s lease now and records the steal: `Ok(Ok(steal))`, or why not.
    pub fn steal(
        &self,
        run: &str,
        by: &str,
        reason: &str,
    ) -> Result<Result<Steal, Refusal>, JournalError> {
        let (run, by, reason) = (run.to_owned(), by.to_owned(), reason.to_owned());
        self.run(move |c| async move {
            let mut c = c.lock().await;
            let tx = c.transaction().await?;
            let row = tx
                .query_typed_opt(
                    "SELECT operator, host, pid, epoch FROM runbook.leases WHERE run_id = $1 FOR UPDATE",
                    &[(&run, Type::TEXT)],
                )
                .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(Err(Refusal::NoLease));
            };
            let from = Holder {
                operator: row.get(0),
                host: row.get(1),
                pid: row.get(2),
            }
            .to_string();
            let epoch: i64 = row.get(3);
            tx.execute_typed(
                "UPDATE runbook.leases SET expires = now(), epoch = epoch + 1 WHERE run_id = $1",
                &[(&run, Type::TEXT)],
            )
            .await?;
            let at = jiff::Timestamp::now().to_string();
            tx.execute_typed(
                "INSERT INTO runbook.steals (run_id, by, reason, holder, epoch, at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    (&run, Type::TEXT),
                    (&by, Type::TEXT),
                    (&reason, Type::TEXT),
                    (&from, Type::TEXT),
                    (&epoch, Type::INT8),
                    (&at, Type::TEXT),
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(Ok(Steal {
                by,
                reason,
                from,
                epoch,
                at,
            }))
        })
    }

    /// The steals of a run, oldest first.
    pub fn stolen(&self, run: &str) -> Result<Vec<Steal>, JournalError> {
        self.rows_of_run(
            "SELECT by, reason, holder, epoch, at FROM runbook.steals WHERE run_id = $1 ORDER BY seq",
            run,
            |r| Steal {
                by: r.get(0),
                reason: r.get(1),
                from: r.get(2),
                epoch: r.get(3),
                at: r.get(4),
            },
        )
    }

    /// The files kept of a run: `(action, name, content)`, sorted.
    pub fn files(&self, run: &str) -> Result<Vec<(String, String, Vec<u8>)>, JournalError> {
        self.rows_of_run(
            "SELECT action, name, content FROM runbook.files WHERE run_id = $1 ORDER BY action, name",
            run,
            |r| (r.get(0), r.get(1), r.get(2)),
        )
    }
}
