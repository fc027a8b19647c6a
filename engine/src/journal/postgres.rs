//! The shared journal on PostgreSQL (issue 14): the same records as the SQLite journal, in a
//! schema of ours (`runbook`) that migrates itself on first use, so several controllers see one
//! set of runs and a second one can take over a run whose controller died.
//!
//! Written to work behind PgBouncer in transaction pooling mode: no session state (no
//! `SET`, no session advisory locks, no `LISTEN`), no named prepared statements (every
//! statement goes through `query_typed`, the protocol's unnamed statement, parsed and run in
//! one round trip), and every write in one explicit transaction. Who may write a run is a
//! [`lease`] row with an epoch; every write checks the epoch in the same transaction.
//!
//! `tokio-postgres` is async; the journal's callers are not (the scheduler's [`RunLog`] is
//! synchronous, as SQLite is). [`Database`] owns a small runtime of its own and waits on its
//! answers through a channel, so it may be called from inside or outside another runtime.
//!
//! [`RunLog`]: crate::execute::RunLog

mod commit;
mod journal_impl;
pub mod lease;
pub(crate) mod reconnect;
pub mod stolen;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio_postgres::types::Type;

use super::{ActionRecord, Entry, JournalError, Piece, RunRecord, RunState};
pub use commit::{KeptFile, Landed};
use reconnect::Connector;

/// How long opening the journal waits for a server that is restarting before it gives up.
const OPEN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether a state location names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// The URL without its password, for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let path = tail.split_once('?').map_or(tail, |(p, _)| p);
    format!("{scheme}://{authority}/{path}")
}

/// The migrations, in order; the schema's version is how many of them ran. Never edit one that
/// shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the records of the SQLite journal, and the leases.
    "
CREATE TABLE runbook.runs (
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
    run_window TEXT,
    generation BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE runbook.actions (
    run_id TEXT NOT NULL REFERENCES runbook.runs (id),
    action TEXT NOT NULL,
    step TEXT NOT NULL,
    host TEXT NOT NULL,
    definition_fp TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    duration_ms BIGINT,
    rc INTEGER,
    message TEXT,
    PRIMARY KEY (run_id, action)
);
CREATE TABLE runbook.transitions (
    seq BIGSERIAL PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runbook.runs (id),
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE runbook.outputs (
    run_id TEXT NOT NULL REFERENCES runbook.runs (id),
    register TEXT NOT NULL,
    host TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, register, host)
);
CREATE TABLE runbook.approvals (
    run_id TEXT NOT NULL REFERENCES runbook.runs (id),
    step TEXT NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE runbook.decisions (
    run_id TEXT NOT NULL REFERENCES runbook.runs (id),
    action TEXT NOT NULL,
    decision TEXT NOT NULL,
    by TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, action)
);
CREATE TABLE runbook.outages (
    run_id TEXT NOT NULL REFERENCES runbook.runs (id),
    generation BIGINT NOT NULL,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    ended BOOLEAN NOT NULL,
    planned_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, generation, kind)
);
CREATE TABLE runbook.leases (
    run_id TEXT PRIMARY KEY REFERENCES runbook.runs (id),
    operator TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    heartbeat TIMESTAMPTZ NOT NULL,
    expires TIMESTAMPTZ NOT NULL
);
CREATE INDEX actions_by_step ON runbook.actions (step, status);
",
    // 2: `runbook lock steal`s, and the actions' files (stdout, stderr, result, artifacts).
    stolen::MIGRATION,
    // 3: the number of the last commit of the lease's epoch, so a retried commit whose reply
    // was lost is not written twice (postgres/commit.rs).
    "
ALTER TABLE runbook.leases
    ADD COLUMN commit_epoch BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN commit_number BIGINT NOT NULL DEFAULT 0;
",
    // 4: the commit as a server-side function, whose plans the server keeps (postgres/commit.rs).
    commit::MIGRATION,
];

/// The schema version this build migrates to.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// A connection to the shared journal, with the runtime that drives it.
pub struct Database {
    runtime: tokio::runtime::Runtime,
    client: Arc<tokio::sync::Mutex<tokio_postgres::Client>>,
    /// The URL without its password: what messages name.
    shown: String,
    /// How to connect again when the connection ended (the server restarted).
    connector: Arc<Connector>,
    /// The run and epoch of the lease this process holds ([`journal_impl`]).
    held: std::sync::Mutex<Option<(String, i64)>>,
}

#[expect(
    clippy::missing_fields_in_debug,
    reason = "the runtime and the client say nothing useful"
)]
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.shown)
            .finish()
    }
}

impl Database {
    /// Connects (TLS as `sslmode` says: `disable`, `prefer`, the default, or `require`) and
    /// brings the schema to the current version.
    pub fn open(url: &str) -> Result<Self, JournalError> {
        let shown = redacted(url);
        let err = |message: String| JournalError {
            path: PathBuf::from(&shown),
            message,
        };
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| err(format!("not a valid URL: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("runbook-journal")
            .enable_all()
            .build()
            .map_err(|e| err(format!("cannot start its runtime: {e}")))?;
        let tls =
            native_tls::TlsConnector::new().map_err(|e| err(format!("cannot set up TLS: {e}")))?;
        let connector = Arc::new(Connector::new(
            config,
            postgres_native_tls::MakeTlsConnector::new(tls),
        ));
        let (tx, rx) = std::sync::mpsc::channel();
        let first = Arc::clone(&connector);
        runtime.spawn(async move {
            // A server that is restarting (or a PgBouncer that pauses logins after failed
            // ones, `server_login_retry`) is waited for a few seconds, as a write would be;
            // anything else (a wrong password, an unknown database) fails at once.
            let deadline = Instant::now() + OPEN_PATIENCE;
            let mut backoff = reconnect::Backoff::default();
            let connected = loop {
                match first.connect().await {
                    Err(e) if reconnect::transient(&e) && Instant::now() < deadline => {
                        tokio::time::sleep(backoff.pause()).await;
                    }
                    other => break other,
                }
            };
            let _ = tx.send(connected);
        });
        let client = rx
            .recv()
            .map_err(|_| err("its runtime stopped".into()))?
            .map_err(|e| err(describe(&e)))?;
        let db = Self {
            runtime,
            client: Arc::new(tokio::sync::Mutex::new(client)),
            shown,
            connector,
            held: std::sync::Mutex::new(None),
        };
        db.migrate()?;
        Ok(db)
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub(crate) fn err(&self, message: impl Into<String>) -> JournalError {
        JournalError {
            path: PathBuf::from(&self.shown),
            message: message.into(),
        }
    }

    pub(crate) fn pg_err(&self, e: &tokio_postgres::Error) -> JournalError {
        self.err(explain(e, &self.connector))
    }

    /// Runs `f` with the client on the journal's runtime and waits for it, from any thread.
    /// The rows `sql` selects for one run (`$1` is the run id), each mapped by `map`.
    fn rows_of_run<T: Send + 'static>(
        &self,
        sql: &'static str,
        run: &str,
        map: fn(&tokio_postgres::Row) -> T,
    ) -> Result<Vec<T>, JournalError> {
        let run = run.to_owned();
        self.run(move |c| async move {
            let c = c.lock().await;
            let rows = c.query_typed(sql, &[(&run, Type::TEXT)]).await?;
            Ok(rows.iter().map(map).collect())
        })
    }

    pub(crate) fn run<T, F, Fut>(&self, f: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<tokio::sync::Mutex<tokio_postgres::Client>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let client = Arc::clone(&self.client);
        let connector = Arc::clone(&self.connector);
        self.runtime.spawn(async move {
            // A connection that ended (the server restarted) is replaced before it is used.
            let answer = match reconnect::ensure(&client, &connector, false).await {
                Ok(()) => f(client).await,
                Err(e) => Err(e),
            };
            let _ = tx.send(answer);
        });
        rx.recv()
            .map_err(|_| self.err("its runtime stopped"))?
            .map_err(|e| self.pg_err(&e))
    }

    /// The runtime, for the lease's heartbeat.
    pub(crate) fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    pub(crate) fn client(&self) -> Arc<tokio::sync::Mutex<tokio_postgres::Client>> {
        Arc::clone(&self.client)
    }

    /// How to connect again, for the lease's heartbeat.
    pub(crate) fn connector(&self) -> Arc<Connector> {
        Arc::clone(&self.connector)
    }

    /// The schema's version (how many [`MIGRATIONS`] ran).
    pub fn version(&self) -> Result<usize, JournalError> {
        let v: i64 = self.run(|c| async move {
            let c = c.lock().await;
            let row = c
                .query_typed_one("SELECT count(*) FROM runbook.migrations", &[])
                .await?;
            Ok(row.get(0))
        })?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// Brings the schema up to date. Concurrent first uses are serialized by a lock on the
    /// migrations table held to the end of the transaction (never a session lock). A schema
    /// that is up to date is only read.
    fn migrate(&self) -> Result<(), JournalError> {
        self.run(|c| async move {
            let mut c = c.lock().await;
            // Up to date: nothing to create or lock, so a role that may only read (`status`,
            // `runs`; docs/team.md) opens the journal too.
            let exists: bool = c
                .query_typed_one("SELECT to_regclass('runbook.migrations') IS NOT NULL", &[])
                .await?
                .get(0);
            if exists {
                let row = c
                    .query_typed_one("SELECT count(*) FROM runbook.migrations", &[])
                    .await?;
                if usize::try_from(row.get::<_, i64>(0)).unwrap_or(0) >= MIGRATIONS.len() {
                    return Ok(());
                }
            }
            c.batch_execute(
                "CREATE SCHEMA IF NOT EXISTS runbook;
                 CREATE TABLE IF NOT EXISTS runbook.migrations (
                     version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
            let tx = c.transaction().await?;
            tx.batch_execute("LOCK TABLE runbook.migrations IN EXCLUSIVE MODE")
                .await?;
            let row = tx
                .query_typed_one("SELECT count(*) FROM runbook.migrations", &[])
                .await?;
            let done = usize::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
                tx.batch_execute(sql).await?;
                let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
                tx.execute_typed(
                    "INSERT INTO runbook.migrations (version) VALUES ($1)",
                    &[(&version, Type::INT8)],
                )
                .await?;
            }
            tx.commit().await
        })
    }

    /// Records a new run.
    pub fn create_run(&self, run: &RunRecord) -> Result<(), JournalError> {
        let r = run.clone();
        self.run(move |c| async move {
            let c = c.lock().await;
            let state = r.state.as_str();
            c.execute_typed(
                "INSERT INTO runbook.runs (id, operator, started_at, runbook_name, runbook_version, runbook_file, inventory_file, runbook_fp, inventory_fp, params_fp, params, state, run_window)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                &[
                    (&r.id, Type::TEXT),
                    (&r.operator, Type::TEXT),
                    (&r.started_at, Type::TEXT),
                    (&r.runbook_name, Type::TEXT),
                    (&r.runbook_version, Type::TEXT),
                    (&r.runbook_file, Type::TEXT),
                    (&r.inventory_file, Type::TEXT),
                    (&r.runbook_fp, Type::TEXT),
                    (&r.inventory_fp, Type::TEXT),
                    (&r.params_fp, Type::TEXT),
                    (&r.params, Type::TEXT),
                    (&state, Type::TEXT),
                    (&r.window, Type::TEXT),
                ],
            )
            .await?;
            Ok(())
        })
    }

    /// Every run, newest first (as [`super::Journal::runs`]).
    pub fn runs(&self) -> Result<Vec<RunRecord>, JournalError> {
        self.run(|c| async move {
            let c = c.lock().await;
            let rows = c
                .query_typed(
                    "SELECT id, operator, started_at, runbook_name, runbook_version, runbook_file, inventory_file, runbook_fp, inventory_fp, params_fp, params, state, finished_at, run_window
                     FROM runbook.runs ORDER BY started_at DESC, id DESC",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| RunRecord {
                    id: row.get(0),
                    operator: row.get(1),
                    started_at: row.get(2),
                    runbook_name: row.get(3),
                    runbook_version: row.get(4),
                    runbook_file: row.get(5),
                    inventory_file: row.get(6),
                    runbook_fp: row.get(7),
                    inventory_fp: row.get(8),
                    params_fp: row.get(9),
                    params: row.get(10),
                    state: RunState::parse(row.get(11)),
                    finished_at: row.get(12),
                    window: row.get(13),
                })
                .collect())
        })
    }

    /// One run.
    pub fn run_record(&self, id: &str) -> Result<Option<RunRecord>, JournalError> {
        Ok(self.runs()?.into_iter().find(|r| r.id == id))
    }

    /// The actions of a run in the order they were first recorded (as
    /// [`super::Journal::actions`]).
    pub fn actions(&self, run: &str) -> Result<Vec<ActionRecord>, JournalError> {
        self.rows_of_run(
            "SELECT a.action, a.step, a.host, a.definition_fp, a.status, a.attempt, a.duration_ms, a.rc, a.message
                     FROM runbook.actions a
                     WHERE a.run_id = $1
                     ORDER BY (SELECT min(t.seq) FROM runbook.transitions t WHERE t.run_id = a.run_id AND t.action = a.action), a.action",
            run,
            |row| ActionRecord {
                    action: row.get(0),
                    step: row.get(1),
                    host: row.get(2),
                    definition_fp: row.get(3),
                    status: row.get(4),
                    attempt: u32::try_from(row.get::<_, i64>(5)).unwrap_or(u32::MAX),
                    duration_ms: row.get(6),
                    rc: row.get(7),
                    message: row.get(8),
                },
        )
    }

    /// `(action, status)` of every action of a run, sorted by action.
    pub fn action_statuses(&self, run: &str) -> Result<Vec<(String, String)>, JournalError> {
        self.rows_of_run(
            "SELECT action, status FROM runbook.actions WHERE run_id = $1 ORDER BY action",
            run,
            |r| (r.get(0), r.get(1)),
        )
    }

    /// How many `started` transitions each action has, sorted by action: what "every step
    /// exactly once" is checked against.
    pub fn starts(&self, run: &str) -> Result<Vec<(String, i64)>, JournalError> {
        self.rows_of_run(
            "SELECT action, count(*) FROM runbook.transitions WHERE run_id = $1 AND status = 'started' GROUP BY action ORDER BY action",
            run,
            |r| (r.get(0), r.get(1)),
        )
    }

    /// The pieces of a run's outage and write freeze, by generation, outage before freeze.
    pub fn pieces(&self, run: &str) -> Result<Vec<Piece>, JournalError> {
        self.rows_of_run(
            "SELECT kind, generation, started_at, duration_ms, ended, planned_ms FROM runbook.outages WHERE run_id = $1 ORDER BY generation, kind DESC",
            run,
            |row| Piece {
                    kind: row.get(0),
                    generation: u32::try_from(row.get::<_, i64>(1)).unwrap_or(u32::MAX),
                    started_at: row.get(2),
                    duration_ms: row.get(3),
                    ended: row.get(4),
                    planned_ms: row.get(5),
                },
        )
    }

    /// Writes `entries` in one statement (one round trip, one transaction), if `epoch` still
    /// holds the run's lease ([`commit`]). Not numbered, and tried once: a controller under a
    /// lease writes through [`Database::commit`].
    pub fn write(&self, run: &str, epoch: i64, entries: &[Entry]) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        let run: Arc<str> = run.into();
        let batch = Arc::new(commit::Batch::new(entries));
        match self.run(move |c| commit::apply(c, run, epoch, None, batch))? {
            commit::Outcome::Landed(_) => Ok(()),
            commit::Outcome::Taken => Err(self.taken(epoch)),
        }
    }

    fn taken(&self, epoch: i64) -> JournalError {
        self.err(format!(
            "the lease of this run (epoch {epoch}) was taken by another controller; nothing more is written or started"
        ))
    }

    /// Sets a run's state, if `epoch` still holds its lease (tried once).
    pub fn set_state(&self, run: &str, epoch: i64, state: RunState) -> Result<(), JournalError> {
        self.set_state_until(run, epoch, state, None)
    }

    /// Sets a run's state, if `epoch` still holds its lease; retried on a new connection until
    /// `until` when the connection fails (the same values again: a retry cannot do harm).
    pub(crate) fn set_state_until(
        &self,
        run: &str,
        epoch: i64,
        state: RunState,
        until: Option<Instant>,
    ) -> Result<(), JournalError> {
        let run: Arc<str> = run.into();
        let finished =
            (!matches!(state, RunState::Running)).then(|| jiff::Timestamp::now().to_string());
        let finished: Arc<Option<String>> = Arc::new(finished);
        let set = move |c: Arc<tokio::sync::Mutex<tokio_postgres::Client>>| {
            let (run, finished) = (Arc::clone(&run), Arc::clone(&finished));
            async move {
                let c = c.lock().await;
                let (run, s): (&str, &str) = (&run, state.as_str());
                let rows = c
                    .query_typed(
                        "WITH lease AS (SELECT run_id FROM runbook.leases WHERE run_id = $1 AND epoch = $4 FOR UPDATE)
                         UPDATE runbook.runs SET state = $2, finished_at = $3 FROM lease WHERE runbook.runs.id = lease.run_id
                         RETURNING 1",
                        &[
                            (&run, Type::TEXT),
                            (&s, Type::TEXT),
                            (finished.as_ref(), Type::TEXT),
                            (&epoch, Type::INT8),
                        ],
                    )
                    .await?;
                Ok(!rows.is_empty())
            }
        };
        let held = match until {
            Some(until) => self.retrying(until, set)?,
            None => self.run(set)?,
        };
        if held {
            Ok(())
        } else {
            Err(self.err(format!(
                "the lease of this run (epoch {epoch}) was taken by another controller; its state is not written"
            )))
        }
    }
}

/// The error in words, with why the connection ended when it did.
fn explain(e: &tokio_postgres::Error, connector: &Connector) -> String {
    let message = describe(e);
    match connector.closed() {
        Some(why) if !message.contains(&why) => format!("{message} ({why})"),
        _ => message,
    }
}

/// The server's message, with its detail, rather than "db error".
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn messages_never_show_the_password() {
        assert_eq!(
            redacted("postgres://ops:s3cret@db.example:5432/runs?sslmode=require"),
            "postgres://ops@db.example:5432/runs"
        );
        assert_eq!(
            redacted("postgresql://db.example/runs"),
            "postgresql://db.example/runs"
        );
    }
}
