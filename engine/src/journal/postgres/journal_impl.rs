//! The shared journal as a [`Backend`]: the same records and answers as the SQLite journal.
//!
//! Every write that changes a run (its state, generation, window, fingerprints, transitions)
//! is conditional on the epoch of the run's lease this process holds, checked in the same
//! transaction ([`lease::holds`]); a process that holds none, or whose lease was taken, writes
//! nothing. Approvals and decisions are the operators': recorded from anywhere, unfenced.

use tokio_postgres::types::{ToSql, Type};

use super::Database;
use super::lease::{self, Held, Holder};
use crate::journal::backend::{Backend, Steal};
use crate::journal::store::{ActionTimes, Approval, Decision, Transition};
use crate::journal::{ActionRecord, Entry, History, JournalError, Piece, RunRecord, RunState};

impl Database {
    /// Records that this process holds `run`'s lease at `epoch` (taken by [`Database::acquire`]):
    /// the epoch the trait's writes are fenced by.
    pub fn hold(&self, run: &str, epoch: i64) {
        *self.held.lock().expect("never poisoned") = Some((run.to_owned(), epoch));
    }

    /// The epoch of `run`'s lease this process holds, if it holds one.
    pub fn held_epoch(&self, run: &str) -> Option<i64> {
        self.held
            .lock()
            .expect("never poisoned")
            .as_ref()
            .filter(|(r, _)| r == run)
            .map(|(_, e)| *e)
    }

    fn epoch_of(&self, run: &str) -> Result<i64, JournalError> {
        self.held_epoch(run).ok_or_else(|| {
            self.err(format!(
                "this controller holds no lease of run {run}: it writes nothing to it"
            ))
        })
    }

    /// Runs `sql` (text parameters, `$1` the run) if this process's epoch holds the run's
    /// lease, returning the rows' first column as `i64` when it selects one.
    fn fenced(
        &self,
        run: &str,
        sql: &'static str,
        rest: Vec<Option<String>>,
    ) -> Result<Vec<i64>, JournalError> {
        let epoch = self.epoch_of(run)?;
        let run = run.to_owned();
        let out = self.run(move |c| async move {
            let mut c = c.lock().await;
            let tx = c.transaction().await?;
            if !lease::holds(&tx, &run, epoch).await? {
                tx.rollback().await?;
                return Ok(None);
            }
            let mut params: Vec<(&(dyn ToSql + Sync), Type)> = vec![(&run, Type::TEXT)];
            params.extend(rest.iter().map(|p| (p as &(dyn ToSql + Sync), Type::TEXT)));
            let rows = tx.query_typed(sql, &params).await?;
            tx.commit().await?;
            Ok(Some(
                rows.iter()
                    .filter_map(|r| r.try_get::<_, i64>(0).ok())
                    .collect::<Vec<_>>(),
            ))
        })?;
        out.ok_or_else(|| {
            self.err(format!(
                "the lease of this run (epoch {epoch}) was taken by another controller; nothing more is written or started"
            ))
        })
    }

    /// Upserts an operator's row (approval, decision): `$1` the run, then text parameters.
    fn unfenced(&self, sql: &'static str, all: Vec<String>) -> Result<(), JournalError> {
        self.run(move |c| async move {
            let c = c.lock().await;
            let params: Vec<(&(dyn ToSql + Sync), Type)> = all
                .iter()
                .map(|p| (p as &(dyn ToSql + Sync), Type::TEXT))
                .collect();
            c.execute_typed(sql, &params).await?;
            Ok(())
        })
    }
}

impl Backend for Database {
    fn location(&self) -> String {
        self.shown().to_owned()
    }

    fn shared(&self) -> bool {
        true
    }

    fn create_run(&self, run: &RunRecord) -> Result<(), JournalError> {
        Database::create_run(self, run)
    }

    fn claim(&self, run: &str) -> Result<Result<(), Held>, JournalError> {
        let ttl = crate::execute::lease_ttl();
        Ok(self
            .acquire(run, &Holder::this_process(), ttl)?
            .map(|epoch| self.hold(run, epoch)))
    }

    fn release(&self, run: &str) -> Result<(), JournalError> {
        match self.held_epoch(run) {
            Some(epoch) => Database::release(self, run, epoch),
            None => Ok(()),
        }
    }

    fn set_state(&self, run: &str, state: RunState) -> Result<(), JournalError> {
        Database::set_state(self, run, self.epoch_of(run)?, state)
    }

    fn next_generation(&self, run: &str) -> Result<u32, JournalError> {
        let got = self.fenced(
            run,
            "UPDATE runbook.runs SET generation = generation + 1 WHERE id = $1 RETURNING generation",
            Vec::new(),
        )?;
        let g = got
            .first()
            .ok_or_else(|| self.err(format!("no run {run}")))?;
        Ok(u32::try_from(*g).unwrap_or(u32::MAX))
    }

    fn set_window(&self, run: &str, window: Option<&str>) -> Result<(), JournalError> {
        self.fenced(
            run,
            "UPDATE runbook.runs SET run_window = $2 WHERE id = $1",
            vec![window.map(str::to_owned)],
        )
        .map(drop)
    }

    fn update_fingerprints(
        &self,
        run: &str,
        runbook_fp: &str,
        inventory_fp: &str,
        params_fp: &str,
    ) -> Result<(), JournalError> {
        self.fenced(
            run,
            "UPDATE runbook.runs SET runbook_fp = $2, inventory_fp = $3, params_fp = $4 WHERE id = $1",
            vec![
                Some(runbook_fp.to_owned()),
                Some(inventory_fp.to_owned()),
                Some(params_fp.to_owned()),
            ],
        )
        .map(drop)
    }

    fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError> {
        self.run_record(id)
    }

    fn runs(&self) -> Result<Vec<RunRecord>, JournalError> {
        Database::runs(self)
    }

    fn write(&self, run: &str, entries: &[Entry]) -> Result<(), JournalError> {
        Database::write(self, run, self.epoch_of(run)?, entries)
    }

    fn pieces(&self, run: &str) -> Result<Vec<Piece>, JournalError> {
        Database::pieces(self, run)
    }

    fn actions(&self, run: &str) -> Result<Vec<ActionRecord>, JournalError> {
        Database::actions(self, run)
    }

    fn outputs(&self, run: &str) -> Result<Vec<(String, String, String)>, JournalError> {
        self.rows_of_run(
            "SELECT register, host, value FROM runbook.outputs WHERE run_id = $1 ORDER BY register, host",
            run,
            |r| (r.get(0), r.get(1), r.get(2)),
        )
    }

    fn approve(&self, run: &str, step: &str, by: &str, reason: &str) -> Result<(), JournalError> {
        self.unfenced(
            "INSERT INTO runbook.approvals (run_id, step, by, reason, at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (run_id, step) DO UPDATE SET by = $3, reason = $4, at = $5",
            vec![
                run.to_owned(),
                step.to_owned(),
                by.to_owned(),
                reason.to_owned(),
                jiff::Timestamp::now().to_string(),
            ],
        )
    }

    fn approvals(&self, run: &str) -> Result<Vec<(String, String, String)>, JournalError> {
        self.rows_of_run(
            "SELECT step, by, reason FROM runbook.approvals WHERE run_id = $1 ORDER BY step",
            run,
            |r| (r.get(0), r.get(1), r.get(2)),
        )
    }

    fn decide(
        &self,
        run: &str,
        action: &str,
        decision: &str,
        by: &str,
    ) -> Result<(), JournalError> {
        self.unfenced(
            "INSERT INTO runbook.decisions (run_id, action, decision, by, at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (run_id, action) DO UPDATE SET decision = $3, by = $4, at = $5",
            vec![
                run.to_owned(),
                action.to_owned(),
                decision.to_owned(),
                by.to_owned(),
                jiff::Timestamp::now().to_string(),
            ],
        )
    }

    fn decisions(&self, run: &str) -> Result<Vec<(String, String)>, JournalError> {
        self.rows_of_run(
            "SELECT action, decision FROM runbook.decisions WHERE run_id = $1 ORDER BY action",
            run,
            |r| (r.get(0), r.get(1)),
        )
    }

    fn durations(&self, runbook_name: &str) -> Result<Vec<(String, i64)>, JournalError> {
        self.rows_of_run(
            "SELECT a.step, a.duration_ms FROM runbook.actions a JOIN runbook.runs r ON r.id = a.run_id
             WHERE r.runbook_name = $1 AND a.duration_ms IS NOT NULL AND a.status IN ('ok', 'changed')
             ORDER BY a.run_id, a.action",
            runbook_name,
            |r| (r.get(0), r.get(1)),
        )
    }

    fn history(&self, run: &str) -> Result<History, JournalError> {
        let actions = self.rows_of_run(
            "SELECT a.action, a.step, a.host, a.status, a.attempt, a.started_at, a.finished_at, a.duration_ms, a.rc, a.message
             FROM runbook.actions a WHERE a.run_id = $1
             ORDER BY (SELECT min(t.seq) FROM runbook.transitions t WHERE t.run_id = a.run_id AND t.action = a.action), a.action",
            run,
            |r| ActionTimes {
                action: r.get(0),
                step: r.get(1),
                host: r.get(2),
                status: r.get(3),
                attempt: u32::try_from(r.get::<_, i64>(4)).unwrap_or(u32::MAX),
                started_at: r.get(5),
                finished_at: r.get(6),
                duration_ms: r.get(7),
                rc: r.get(8),
                message: r.get(9),
            },
        )?;
        let transitions = self.rows_of_run(
            "SELECT action, status, at FROM runbook.transitions WHERE run_id = $1 ORDER BY seq",
            run,
            |r| Transition {
                action: r.get(0),
                status: r.get(1),
                at: r.get(2),
            },
        )?;
        let approvals = self.rows_of_run(
            "SELECT step, by, reason, at FROM runbook.approvals WHERE run_id = $1 ORDER BY at, step",
            run,
            |r| Approval {
                step: r.get(0),
                by: r.get(1),
                reason: r.get(2),
                at: r.get(3),
            },
        )?;
        let decisions = self.rows_of_run(
            "SELECT action, decision, by, at FROM runbook.decisions WHERE run_id = $1 ORDER BY at, action",
            run,
            |r| Decision {
                action: r.get(0),
                decision: r.get(1),
                by: r.get(2),
                at: r.get(3),
            },
        )?;
        let generation = self
            .rows_of_run(
                "SELECT generation FROM runbook.runs WHERE id = $1",
                run,
                |r| r.get::<_, i64>(0),
            )?
            .first()
            .copied()
            .ok_or_else(|| self.err(format!("no run {run}")))?;
        Ok(History {
            actions,
            transitions,
            approvals,
            decisions,
            pieces: Database::pieces(self, run)?,
            generation: u32::try_from(generation).unwrap_or(u32::MAX),
            steals: self.stolen(run)?,
        })
    }

    fn steals(&self, run: &str) -> Result<Vec<Steal>, JournalError> {
        self.stolen(run)
    }
}
