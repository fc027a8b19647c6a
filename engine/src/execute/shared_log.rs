//! The record of a run in the shared journal on PostgreSQL ([`crate::journal::postgres`]),
//! under a lease: what a controller writes when several may take the run over.
//!
//! The lease is renewed by a heartbeat on the journal's own runtime every third of its TTL.
//! [`RunLog::still_held`] answers from the last renewal without a round trip: the run starts
//! nothing new once the lease was taken by another controller (a renewal or a write found
//! another epoch), or once no renewal succeeded for the TTL less a margin (a sixth of it) —
//! before the lease can expire and be taken, so two controllers never both start actions.
//! Every write is conditional on the epoch besides ([`Database::write`]).
//!
//! The action's files (stdout, stderr, `result.json`, artifacts; masked as for [`Local`]) are
//! kept in the journal (`runbook.files`, fenced by the epoch like every write) and in the run
//! directory of the controller that ran it, so a controller on another machine sees them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::run_log::{ActionFiles, Local, RecordError, RunLog};
use crate::journal::postgres::Database;
use crate::journal::postgres::lease::{self, Held, Holder};
use crate::journal::{Entry, Piece, RunState};

/// The environment variable that sets the lease's TTL in seconds (tests use a short one).
pub const TTL_VARIABLE: &str = "RUNBOOK_LEASE_TTL";

/// The lease's TTL: `RUNBOOK_LEASE_TTL` seconds, else 30 s.
pub fn ttl() -> Duration {
    std::env::var(TTL_VARIABLE)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(lease::DEFAULT_TTL, Duration::from_secs_f64)
}

#[derive(Debug)]
struct State {
    /// Until when this controller may start actions: the last renewal's request time plus
    /// the TTL less the margin.
    valid_until: Instant,
    /// Why the lease is gone for good.
    lost: Option<String>,
}

/// A run recorded in the shared journal, under this controller's lease.
pub struct Shared {
    db: Arc<Database>,
    run_id: String,
    epoch: i64,
    files: Local,
    state: Arc<Mutex<State>>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("run", &self.run_id)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// How long after a renewal was asked for this controller may still start actions: the TTL
/// less a margin of a sixth of it (5 s of the default 30 s).
fn live(ttl: Duration) -> Duration {
    ttl.saturating_sub(ttl / 6)
}

impl Shared {
    /// Takes the run's lease (a new epoch) and starts its heartbeat; `Ok(Err(held))` when
    /// another controller holds a live lease, naming it.
    pub fn take(
        db: Arc<Database>,
        run_id: &str,
        run_dir: impl Into<PathBuf>,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<Result<Self, Held>, RecordError> {
        let asked = Instant::now();
        let epoch = match db.acquire(run_id, holder, ttl)? {
            Ok(epoch) => epoch,
            Err(held) => return Ok(Err(held)),
        };
        db.hold(run_id, epoch);
        let state = Arc::new(Mutex::new(State {
            valid_until: asked + live(ttl),
            lost: None,
        }));
        let heartbeat = db.handle().spawn(beat(
            db.client(),
            run_id.to_owned(),
            epoch,
            ttl,
            Arc::clone(&state),
        ));
        Ok(Ok(Self {
            files: Local::new(None, run_id, run_dir),
            db,
            run_id: run_id.to_owned(),
            epoch,
            state,
            heartbeat,
        }))
    }

    /// This controller's epoch.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    fn lose(&self, why: &str) {
        let mut state = self.state.lock().expect("never poisoned");
        state.lost.get_or_insert_with(|| why.to_owned());
    }
}

/// Renews the lease every third of the TTL until it is lost.
async fn beat(
    client: Arc<tokio::sync::Mutex<tokio_postgres::Client>>,
    run: String,
    epoch: i64,
    ttl: Duration,
    state: Arc<Mutex<State>>,
) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let asked = Instant::now();
        match lease::renew(Arc::clone(&client), &run, epoch, ttl).await {
            Ok(true) => {
                state.lock().expect("never poisoned").valid_until = asked + live(ttl);
            }
            Ok(false) => {
                state.lock().expect("never poisoned").lost = Some(format!(
                    "another controller took the lease of run {run} (this one held epoch {epoch})"
                ));
                return;
            }
            // The server is away: keep trying; `still_held` fences once the margin is reached.
            Err(_) => {}
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl RunLog for Shared {
    fn journaled(&self) -> bool {
        true
    }

    fn commit(&mut self, entries: &[Entry]) -> Result<(), RecordError> {
        self.db
            .write(&self.run_id, self.epoch, entries)
            .inspect_err(|e| self.lose(&e.message))?;
        Ok(())
    }

    fn pieces(&self) -> Result<Vec<Piece>, RecordError> {
        Ok(self.db.pieces(&self.run_id)?)
    }

    fn end(&mut self, state: RunState) -> Result<(), RecordError> {
        self.db.set_state(&self.run_id, self.epoch, state)?;
        self.heartbeat.abort();
        self.db.release(&self.run_id, self.epoch)?;
        Ok(())
    }

    fn still_held(&self) -> Result<(), RecordError> {
        let state = self.state.lock().expect("never poisoned");
        if let Some(why) = &state.lost {
            return Err(self.db.err(format!("{why}; nothing more starts")).into());
        }
        if Instant::now() >= state.valid_until {
            return Err(self
                .db
                .err(format!(
                    "the lease of run {} (epoch {}) could not be renewed before its TTL less the margin; nothing more starts",
                    self.run_id, self.epoch
                ))
                .into());
        }
        Ok(())
    }

    fn keep_output(&mut self, action: &str, files: &ActionFiles<'_>) -> Result<(), RecordError> {
        self.files.keep_output(action, files)?;
        // The same bytes as the local copy, so a controller elsewhere sees them.
        let dir = self.files.action_dir(action);
        let result = fs_err::read(dir.join("result.json"))?;
        self.db
            .keep_files(
                &self.run_id,
                self.epoch,
                action,
                &[
                    ("stdout", files.stdout.as_bytes()),
                    ("stderr", files.stderr.as_bytes()),
                    ("result.json", &result),
                ],
            )
            .inspect_err(|e| self.lose(&e.message))?;
        Ok(())
    }

    fn keep_artifact(
        &mut self,
        action: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<String, RecordError> {
        let kept = self.files.keep_artifact(action, name, bytes)?;
        self.db
            .keep_files(
                &self.run_id,
                self.epoch,
                action,
                &[(&format!("artifacts/{name}"), bytes)],
            )
            .inspect_err(|e| self.lose(&e.message))?;
        Ok(kept)
    }
}
