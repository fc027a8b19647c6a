//! Who may write a run in the shared journal: one lease row per run (holder, epoch, heartbeat,
//! expiry), never a session advisory lock (those break behind PgBouncer's transaction pooling
//! and collide across schemas, as Terraform's `pg` backend shows).
//!
//! Expiry is decided by the database's clock (`now()`) alone, so controllers whose clocks
//! disagree still agree on whether a lease is live. Taking an expired lease bumps the epoch;
//! every write checks its epoch in its own transaction (`postgres/commit.rs`), so a controller that lost
//! its lease cannot write, even if it does not know yet.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::types::Type;

use super::Database;
use crate::journal::JournalError;

/// The default time a lease lives without a heartbeat.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// Who holds (or asks for) a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub operator: String,
    pub host: String,
    pub pid: i64,
}

impl Holder {
    /// This process: `$USER` (or `$LOGNAME`), the host name, the pid.
    pub fn this_process() -> Self {
        let operator = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = fs_err::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "unknown".into(), |h| h.trim().to_owned());
        Self {
            operator,
            host,
            pid: i64::from(std::process::id()),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {} (pid {})", self.operator, self.host, self.pid)
    }
}

/// A live lease held by someone else.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("held by {holder} (epoch {epoch}) until {expires} unless renewed")]
pub struct Held {
    pub holder: Holder,
    pub epoch: i64,
    /// When it expires unless renewed (RFC 3339, the database's clock).
    pub expires: String,
}

fn secs(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

impl Database {
    /// Takes the run's lease if nobody holds a live one, or this very process (host and pid)
    /// does: `Ok(Ok(epoch))`, the new epoch (one more than the last holder's); `Ok(Err(held))`
    /// names the live holder.
    pub fn acquire(
        &self,
        run: &str,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<Result<i64, Held>, JournalError> {
        let run = run.to_owned();
        let h = holder.clone();
        self.run(move |c| async move {
            let mut c = c.lock().await;
            let tx = c.transaction().await?;
            let ttl = secs(ttl);
            let taken = tx
                .query_typed(
                    "INSERT INTO runbook.leases (run_id, operator, host, pid, epoch, heartbeat, expires)
                     VALUES ($1, $2, $3, $4, 1, now(), now() + make_interval(secs => $5))
                     ON CONFLICT (run_id) DO UPDATE SET operator = EXCLUDED.operator, host = EXCLUDED.host,
                         pid = EXCLUDED.pid, epoch = runbook.leases.epoch + 1, heartbeat = now(),
                         expires = EXCLUDED.expires
                     WHERE runbook.leases.expires <= now()
                        OR (runbook.leases.host = EXCLUDED.host AND runbook.leases.pid = EXCLUDED.pid)
                     RETURNING epoch",
                    &[
                        (&run, Type::TEXT),
                        (&h.operator, Type::TEXT),
                        (&h.host, Type::TEXT),
                        (&h.pid, Type::INT8),
                        (&ttl, Type::FLOAT8),
                    ],
                )
                .await?;
            let out = if let Some(row) = taken.first() {
                Ok(row.get::<_, i64>(0))
            } else {
                let row = tx
                    .query_typed_one(
                        "SELECT operator, host, pid, epoch, to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                         FROM runbook.leases WHERE run_id = $1",
                        &[(&run, Type::TEXT)],
                    )
                    .await?;
                Err(Held {
                    holder: Holder {
                        operator: row.get(0),
                        host: row.get(1),
                        pid: row.get(2),
                    },
                    epoch: row.get(3),
                    expires: row.get(4),
                })
            };
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Ends this holder's lease at once (the run stopped), so another controller may take the
    /// run without waiting for the expiry. Does nothing if the epoch no longer holds it.
    pub fn release(&self, run: &str, epoch: i64) -> Result<(), JournalError> {
        let run = run.to_owned();
        self.run(move |c| async move {
            let c = c.lock().await;
            c.execute_typed(
                "UPDATE runbook.leases SET expires = now() WHERE run_id = $1 AND epoch = $2",
                &[(&run, Type::TEXT), (&epoch, Type::INT8)],
            )
            .await?;
            Ok(())
        })
    }

    /// Expires a run's lease now, whoever holds it: the ground of a future `runbook lock
    /// steal` (issue 14). Its holder can write nothing once another controller took the run.
    pub fn expire(&self, run: &str) -> Result<(), JournalError> {
        let run = run.to_owned();
        self.run(move |c| async move {
            let c = c.lock().await;
            c.execute_typed(
                "UPDATE runbook.leases SET expires = now() WHERE run_id = $1",
                &[(&run, Type::TEXT)],
            )
            .await?;
            Ok(())
        })
    }
}

/// Renews the lease of `epoch` for another `ttl`: `false` when that epoch no longer holds it.
pub(crate) async fn renew(
    client: Arc<tokio::sync::Mutex<tokio_postgres::Client>>,
    run: &str,
    epoch: i64,
    ttl: Duration,
) -> Result<bool, tokio_postgres::Error> {
    let c = client.lock().await;
    let ttl = secs(ttl);
    let rows = c
        .query_typed(
            "UPDATE runbook.leases SET heartbeat = now(), expires = now() + make_interval(secs => $3)
             WHERE run_id = $1 AND epoch = $2 RETURNING epoch",
            &[(&run, Type::TEXT), (&epoch, Type::INT8), (&ttl, Type::FLOAT8)],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Whether `epoch` holds the run's lease, locking the lease row to the end of `tx`: a takeover
/// (which updates that row) waits for `tx`, and `tx` sees a takeover that committed first.
/// (The journal's own writes fence in their one statement now, `postgres/commit.rs`.)
#[allow(
    dead_code,
    reason = "kept for multi-statement writes of the journal trait (issue 14)"
)]
pub(crate) async fn holds(
    tx: &tokio_postgres::Transaction<'_>,
    run: &str,
    epoch: i64,
) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .query_typed_opt(
            "SELECT epoch FROM runbook.leases WHERE run_id = $1 FOR UPDATE",
            &[(&run, Type::TEXT)],
        )
        .await?;
    Ok(row.is_some_and(|r| r.get::<_, i64>(0) == epoch))
}
