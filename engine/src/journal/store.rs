//! The SQLite store behind the journal.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod history;
pub use history::{ActionTimes, Approval, Decision, History, Transition};

use rusqlite::{Connection, OptionalExtension, params};

/// Something went wrong with the journal file itself.
#[derive(Debug, thiserror::Error)]
#[error("journal {}: {message}", path.display())]
pub struct JournalError {
    pub path: PathBuf,
    /// What failed and why, in words: for a full disk, "No space left on device".
    pub message: String,
}

/// Says why SQLite could not write, as the operating system would: SQLite reports a full disk
/// as `SQLITE_FULL` ("database or disk is full") and most other failures of the file system
/// (growing `-shm`, `fsync`) as an `SQLITE_IOERR_*` without the `errno`. For those, a small
/// write of our own beside the journal finds the cause ("No space left on device", "Read-only
/// file system"); the probe file is never named, so nothing is left behind.
fn describe(e: &rusqlite::Error, dir: &Path) -> String {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => format!("No space left on device (SQLite: {e})"),
        Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen | ErrorCode::ReadOnly) => {
            let code = e.sqlite_extended_error_code().unwrap_or_default();
            match probe_write(dir) {
                Err(io) => format!("{io} (SQLite: {e}, code {code})"),
                Ok(()) => format!("{e} (SQLite code {code})"),
            }
        }
        _ => e.to_string(),
    }
}

/// Writes and syncs a few pages in `dir`, to learn why the file system refuses writes.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    // Unnamed (O_TMPFILE where it exists): nothing to clean up, and the error is the
    // system's own.
    let mut file = tempfile::tempfile_in(dir)?;
    file.write_all(&[0; 16 * 1024])?;
    file.sync_all()
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Being applied (or the process applying it died: the lock tells which).
    Running,
    Succeeded,
    Failed,
    /// Stopped at a manual step, or at an action whose outcome an operator must decide.
    Waiting,
    /// Stopped at the outage window's end (or before its start).
    Paused,
    Interrupted,
    Abandoned,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Waiting => "waiting",
            Self::Paused => "paused",
            Self::Interrupted => "interrupted",
            Self::Abandoned => "abandoned",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "waiting" => Self::Waiting,
            "paused" => Self::Paused,
            "interrupted" => Self::Interrupted,
            "abandoned" => Self::Abandoned,
            _ => Self::Running,
        }
    }

    /// Whether `apply` resumes a run in this state instead of starting a new one.
    pub fn resumable(self) -> bool {
        matches!(
            self,
            Self::Running | Self::Failed | Self::Waiting | Self::Paused | Self::Interrupted
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub id: String,
    pub operator: String,
    pub started_at: String,
    pub runbook_name: String,
    pub runbook_version: String,
    pub runbook_file: String,
    pub inventory_file: String,
    pub runbook_fp: String,
    pub inventory_fp: String,
    pub params_fp: String,
    /// The `-e` assignments the run was started with (JSON list), for `runbook resume`.
    pub params: String,
    pub state: RunState,
    pub finished_at: Option<String>,
    /// The outage window the run keeps to (`--window`), as given.
    pub window: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRecord {
    pub action: String,
    pub step: String,
    pub host: String,
    /// Fingerprint of the action's definition when it was recorded.
    pub definition_fp: String,
    /// `started`, or a final status (`ok`, `changed`, `failed`, ...).
    pub status: String,
    pub attempt: u32,
    pub duration_ms: Option<i64>,
    pub rc: Option<i32>,
    pub message: Option<String>,
}

/// One transition, for [`Journal::write`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Started {
        action: String,
        step: String,
        host: String,
        definition_fp: String,
        attempt: u32,
    },
    Finished {
        action: String,
        step: String,
        host: String,
        definition_fp: String,
        status: String,
        rc: Option<i32>,
        duration: Duration,
        message: Option<String>,
        /// `(register, JSON value)` when the step registers its output.
        output: Option<(String, String)>,
    },
    /// One apply's piece of the run's outage (or write freeze), as far as it is known: written
    /// when it starts and again with each commit while it lasts (see [`Piece`]).
    Piece(Piece),
}

/// The part of a run's outage (`kind` `outage`) or write freeze (`freeze`) that one apply of
/// it (one generation) went through. A resumed run has one per apply that reached it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Piece {
    pub kind: String,
    pub generation: u32,
    /// RFC 3339, when its first action started.
    pub started_at: String,
    /// To the end of its last action so far.
    pub duration_ms: i64,
    /// Whether it reached its end in this apply (its last action succeeded); `false` while it
    /// lasts, and when the apply stopped inside it.
    pub ended: bool,
    /// The plan's estimate of the whole span.
    pub planned_ms: i64,
}

/// The journal of one state directory.
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// Tests of the executor: [`Journal::write`] fails once this many more calls succeeded.
    #[cfg(test)]
    fail_writes_after: std::cell::Cell<Option<usize>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    started_at TEXT NOT NULL,
    runbook_name TEXT NOT NULL,
    runbook_version TEXT NOT NULL,
    runbook_file TEXT NOT NULL,
    inventory_file TEXT NOT NULL,
    runbook_fp TEXT NOT NULL,
    inventory_fp TEXT NOT NULL,
    params_fp TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    finished_at TEXT,
    window TEXT,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS actions (
    run_id TEXT NOT NULL,
    action TEXT NOT NULL,
    step TEXT NOT NULL,
    host TEXT NOT NULL,
    definition_fp TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    duration_ms INTEGER,
    rc INTEGER,
    message TEXT,
    PRIMARY KEY (run_id, action)
);
CREATE TABLE IF NOT EXISTS transitions (
    run_id TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (
    run_id TEXT NOT NULL,
    register TEXT NOT NULL,
    host TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, register, host)
);
CREATE TABLE IF NOT EXISTS approvals (
    run_id TEXT NOT NULL,
    step TEXT NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS decisions (
    run_id TEXT NOT NULL,
    action TEXT NOT NULL,
    decision TEXT NOT NULL,
    by TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, action)
);
CREATE TABLE IF NOT EXISTS outages (
    run_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    ended INTEGER NOT NULL,
    planned_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, generation, kind)
);
CREATE INDEX IF NOT EXISTS actions_by_step ON actions (step, status);
";

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

impl Journal {
    /// Opens (creating if needed) `STATE/journal.db`.
    pub fn open(state_dir: &Path) -> Result<Self, JournalError> {
        let path = state_dir.join("journal.db");
        let err = |e: &rusqlite::Error| JournalError {
            path: path.clone(),
            message: format!("cannot open: {}", describe(e, state_dir)),
        };
        fs_err::create_dir_all(state_dir).map_err(|e| JournalError {
            path: path.clone(),
            message: format!("cannot create the state directory: {e}"),
        })?;
        let conn = Connection::open(&path).map_err(|e| err(&e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| err(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| err(&e))?;
        // Journals written before runs had a window get the column.
        let has_window = conn.prepare("SELECT window FROM runs LIMIT 0").is_ok();
        if !has_window {
            conn.execute_batch("ALTER TABLE runs ADD COLUMN window TEXT")
                .map_err(|e| err(&e))?;
        }
        if conn.prepare("SELECT generation FROM runs LIMIT 0").is_err() {
            conn.execute_batch("ALTER TABLE runs ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")
                .map_err(|e| err(&e))?;
        }
        Ok(Self {
            conn,
            path,
            #[cfg(test)]
            fail_writes_after: std::cell::Cell::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: &rusqlite::Error) -> JournalError {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        JournalError {
            path: self.path.clone(),
            message: describe(e, dir),
        }
    }

    /// Makes [`Journal::write`] fail, as on a full disk, after `n` more successful calls.
    #[cfg(test)]
    pub(crate) fn fail_writes_after(&self, n: usize) {
        self.fail_writes_after.set(Some(n));
    }

    pub fn create_run(&self, run: &RunRecord) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT INTO runs (id, operator, started_at, runbook_name, runbook_version, runbook_file, inventory_file, runbook_fp, inventory_fp, params_fp, params, state, window) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![run.id, run.operator, run.started_at, run.runbook_name, run.runbook_version, run.runbook_file, run.inventory_file, run.runbook_fp, run.inventory_fp, run.params_fp, run.params, run.state.as_str(), run.window],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    pub fn set_state(&self, run: &str, state: RunState) -> Result<(), JournalError> {
        let finished = (!matches!(state, RunState::Running)).then(now);
        self.conn
            .execute(
                "UPDATE runs SET state = ?2, finished_at = ?3 WHERE id = ?1",
                params![run, state.as_str(), finished],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    /// Starts the next process generation of a run (its first apply is 1) and returns it.
    pub fn next_generation(&self, run: &str) -> Result<u32, JournalError> {
        self.conn
            .query_row(
                "UPDATE runs SET generation = generation + 1 WHERE id = ?1 RETURNING generation",
                [run],
                |row| row.get(0),
            )
            .map_err(|e| self.err(&e))
    }

    /// Records the window a resumed run keeps to from now on (a new `--window`).
    pub fn set_window(&self, run: &str, window: Option<&str>) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE runs SET window = ?2 WHERE id = ?1",
                params![run, window],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    /// Records new fingerprints when a run is resumed with allowed changes.
    pub fn update_fingerprints(
        &self,
        run: &str,
        runbook_fp: &str,
        inventory_fp: &str,
        params_fp: &str,
    ) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE runs SET runbook_fp = ?2, inventory_fp = ?3, params_fp = ?4 WHERE id = ?1",
                params![run, runbook_fp, inventory_fp, params_fp],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
        Ok(RunRecord {
            id: row.get(0)?,
            operator: row.get(1)?,
            started_at: row.get(2)?,
            runbook_name: row.get(3)?,
            runbook_version: row.get(4)?,
            runbook_file: row.get(5)?,
            inventory_file: row.get(6)?,
            runbook_fp: row.get(7)?,
            inventory_fp: row.get(8)?,
            params_fp: row.get(9)?,
            params: row.get(10)?,
            state: RunState::parse(&row.get::<_, String>(11)?),
            finished_at: row.get(12)?,
            window: row.get(13)?,
        })
    }

    const RUN_COLUMNS: &'static str = "id, operator, started_at, runbook_name, runbook_version, runbook_file, inventory_file, runbook_fp, inventory_fp, params_fp, params, state, finished_at, window";

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM runs WHERE id = ?1", Self::RUN_COLUMNS),
                [id],
                Self::run_from_row,
            )
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, JournalError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM runs ORDER BY started_at DESC, id DESC",
                Self::RUN_COLUMNS
            ))
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map([], Self::run_from_row)
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// The newest run of this runbook file and inventory file that did not finish.
    pub fn resumable(
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

    /// Writes several transitions in one transaction (one fsync): the executor's group commit.
    pub fn write(&self, run: &str, entries: &[Entry]) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        #[cfg(test)]
        match self.fail_writes_after.get() {
            Some(0) => {
                return Err(JournalError {
                    path: self.path.clone(),
                    message: "No space left on device (a test's failing journal)".into(),
                });
            }
            Some(n) => self.fail_writes_after.set(Some(n - 1)),
            None => {}
        }
        let at = now();
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.err(&e))?;
        // Prepared once per transaction, not once per entry: a W1 round holds 20 entries.
        let mut started_action = tx.prepare("INSERT INTO actions (run_id, action, step, host, definition_fp, status, attempt, started_at) VALUES (?1, ?2, ?3, ?4, ?5, 'started', ?6, ?7)
                         ON CONFLICT (run_id, action) DO UPDATE SET status = 'started', definition_fp = ?5, attempt = ?6, started_at = ?7, finished_at = NULL, rc = NULL, message = NULL, duration_ms = NULL").map_err(|e| self.err(&e))?;
        let mut started_transition = tx.prepare("INSERT INTO transitions (run_id, action, status, at) VALUES (?1, ?2, 'started', ?3)").map_err(|e| self.err(&e))?;
        let mut finished_action = tx.prepare("INSERT INTO actions (run_id, action, step, host, definition_fp, status, attempt, finished_at, duration_ms, rc, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10)
                         ON CONFLICT (run_id, action) DO UPDATE SET status = ?6, definition_fp = ?5, finished_at = ?7, duration_ms = ?8, rc = ?9, message = ?10").map_err(|e| self.err(&e))?;
        let mut finished_transition = tx
            .prepare("INSERT INTO transitions (run_id, action, status, at) VALUES (?1, ?2, ?3, ?4)")
            .map_err(|e| self.err(&e))?;
        let mut upsert_piece = tx.prepare("INSERT INTO outages (run_id, generation, kind, started_at, duration_ms, ended, planned_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (run_id, generation, kind) DO UPDATE SET started_at = ?4, duration_ms = ?5, ended = ?6, planned_ms = ?7").map_err(|e| self.err(&e))?;
        let mut upsert_output = tx.prepare("INSERT INTO outputs (run_id, register, host, value) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (run_id, register, host) DO UPDATE SET value = ?4").map_err(|e| self.err(&e))?;
        for entry in entries {
            match entry {
                Entry::Started {
                    action,
                    step,
                    host,
                    definition_fp,
                    attempt,
                } => {
                    started_action
                        .execute(params![run, action, step, host, definition_fp, attempt, at])
                        .map_err(|e| self.err(&e))?;
                    started_transition
                        .execute(params![run, action, at])
                        .map_err(|e| self.err(&e))?;
                }
                Entry::Finished {
                    action,
                    step,
                    host,
                    definition_fp,
                    status,
                    rc,
                    duration,
                    message,
                    output,
                } => {
                    let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
                    finished_action
                        .execute(params![
                            run,
                            action,
                            step,
                            host,
                            definition_fp,
                            status,
                            at,
                            ms,
                            rc,
                            message
                        ])
                        .map_err(|e| self.err(&e))?;
                    finished_transition
                        .execute(params![run, action, status, at])
                        .map_err(|e| self.err(&e))?;
                    if let Some((register, value)) = output {
                        upsert_output
                            .execute(params![run, register, host, value])
                            .map_err(|e| self.err(&e))?;
                    }
                }
                Entry::Piece(p) => {
                    upsert_piece
                        .execute(params![
                            run,
                            p.generation,
                            p.kind,
                            p.started_at,
                            p.duration_ms,
                            p.ended,
                            p.planned_ms
                        ])
                        .map_err(|e| self.err(&e))?;
                }
            }
        }
        drop((
            upsert_piece,
            started_action,
            started_transition,
            finished_action,
            finished_transition,
            upsert_output,
        ));
        tx.commit().map_err(|e| self.err(&e))
    }

    /// The pieces of a run's outage and write freeze, by generation, outage before freeze.
    pub fn pieces(&self, run: &str) -> Result<Vec<Piece>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, generation, started_at, duration_ms, ended, planned_ms FROM outages WHERE run_id = ?1 ORDER BY generation, kind DESC")
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map([run], |row| {
                Ok(Piece {
                    kind: row.get(0)?,
                    generation: row.get(1)?,
                    started_at: row.get(2)?,
                    duration_ms: row.get(3)?,
                    ended: row.get(4)?,
                    planned_ms: row.get(5)?,
                })
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// `started`: durable before the command is sent.
    pub fn action_started(
        &self,
        run: &str,
        action: &str,
        step: &str,
        host: &str,
        definition_fp: &str,
        attempt: u32,
    ) -> Result<(), JournalError> {
        let entry = Entry::Started {
            action: action.to_owned(),
            step: step.to_owned(),
            host: host.to_owned(),
            definition_fp: definition_fp.to_owned(),
            attempt,
        };
        self.write(run, &[entry])
    }

    /// The result: durable before any dependent starts. `output` is the registered value
    /// (masked), when the step registers one.
    #[allow(clippy::too_many_arguments)]
    pub fn action_finished(
        &self,
        run: &str,
        action: &str,
        step: &str,
        host: &str,
        definition_fp: &str,
        status: &str,
        rc: Option<i32>,
        duration: Duration,
        message: Option<&str>,
        output: Option<(&str, &str)>,
    ) -> Result<(), JournalError> {
        let entry = Entry::Finished {
            action: action.to_owned(),
            step: step.to_owned(),
            host: host.to_owned(),
            definition_fp: definition_fp.to_owned(),
            status: status.to_owned(),
            rc,
            duration,
            message: message.map(str::to_owned),
            output: output.map(|(r, v)| (r.to_owned(), v.to_owned())),
        };
        self.write(run, &[entry])
    }

    pub fn actions(&self, run: &str) -> Result<Vec<ActionRecord>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT action, step, host, definition_fp, status, attempt, duration_ms, rc, message FROM actions WHERE run_id = ?1 ORDER BY rowid")
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map([run], |row| {
                Ok(ActionRecord {
                    action: row.get(0)?,
                    step: row.get(1)?,
                    host: row.get(2)?,
                    definition_fp: row.get(3)?,
                    status: row.get(4)?,
                    attempt: row.get(5)?,
                    duration_ms: row.get(6)?,
                    rc: row.get(7)?,
                    message: row.get(8)?,
                })
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// Registered outputs of a run: `(register, host, JSON value)`.
    pub fn outputs(&self, run: &str) -> Result<Vec<(String, String, String)>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT register, host, value FROM outputs WHERE run_id = ?1")
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map([run], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    pub fn approve(
        &self,
        run: &str,
        step: &str,
        by: &str,
        reason: &str,
    ) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT INTO approvals (run_id, step, by, reason, at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id, step) DO UPDATE SET by = ?3, reason = ?4, at = ?5",
                params![run, step, by, reason, now()],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    /// Approved steps of a run: `(step, by, reason)`.
    pub fn approvals(&self, run: &str) -> Result<Vec<(String, String, String)>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT step, by, reason FROM approvals WHERE run_id = ?1")
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map([run], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// An operator's decision about an action whose outcome is unknown: `done` or `redo`.
    pub fn decide(
        &self,
        run: &str,
        action: &str,
        decision: &str,
        by: &str,
    ) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT INTO decisions (run_id, action, decision, by, at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id, action) DO UPDATE SET decision = ?3, by = ?4, at = ?5",
                params![run, action, decision, by, now()],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    pub fn decisions(&self, run: &str) -> Result<Vec<(String, String)>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT action, decision FROM decisions WHERE run_id = ?1")
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map([run], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// Recorded durations of a runbook's steps over all its runs (finished actions only), for
    /// estimates: `(step, milliseconds)`.
    pub fn durations(&self, runbook_name: &str) -> Result<Vec<(String, i64)>, JournalError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT a.step, a.duration_ms FROM actions a JOIN runs r ON r.id = a.run_id
                 WHERE r.runbook_name = ?1 AND a.duration_ms IS NOT NULL AND a.status IN ('ok', 'changed')",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map([runbook_name], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::journal::conformance::record;

    #[test]
    fn the_journal_tests_of_both_backends_pass_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::journal::conformance::all(&|| {
            Box::new(Journal::open(dir.path()).expect("open")) as Box<dyn crate::journal::Backend>
        });
    }

    #[test]
    fn a_full_database_says_no_space_left_and_names_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(dir.path()).expect("open");
        j.create_run(&record("r1")).expect("create");
        // SQLite's own size limit gives the same SQLITE_FULL a full disk does.
        let pages: i64 = j
            .conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .expect("page count");
        j.conn
            .pragma_update(None, "max_page_count", pages)
            .expect("limit");
        let big = "x".repeat(64 * 1024);
        let err = j
            .action_finished(
                "r1",
                "s@a",
                "s",
                "a",
                "fp",
                "changed",
                Some(0),
                Duration::ZERO,
                Some(&big),
                None,
            )
            .expect_err("the database is full");
        let text = err.to_string();
        assert!(text.contains("No space left on device"), "{text}");
        assert!(text.contains("journal.db"), "{text}");
        assert!(
            j.actions("r1").expect("read").is_empty(),
            "nothing half-written"
        );
    }
}
