//! The record of a run in the shared journal on PostgreSQL ([`crate::journal::postgres`]),
//! under a lease: what a controller writes when several may take the run over.
//!
//! The lease is renewed by a heartbeat on the journal's own runtime every third of its TTL.
//! [`RunLog::still_held`] answers from the last renewal without a round trip: the run starts
//! nothing new once the lease was taken by another controller (a renewal or a write found
//! another epoch), or once no renewal succeeded for the TTL less a margin (a sixth of it) —
//! before the lease can expire and be taken, so two controllers never both start actions.
//! Every write is conditional on the epoch besides ([`Database::commit`]).
//!
//! **The server restarts.** When the connection drops (the server restarted, a PgBouncer or
//! the network in between dropped it), the heartbeat and the commits connect again, with a
//! backoff of 50 ms doubling to 1 s, and a commit is retried for as long as this controller's
//! lease could still be valid: until the self-fence deadline above, never later. A commit that
//! cannot be written by then fails like any failed write (the run halts before sending
//! anything whose `started` is not written, and ends unrecorded, exit 5), saying how long the
//! journal could not be reached. Commits are numbered, so a retry of a commit whose reply was
//! lost writes nothing twice (`journal/postgres/commit.rs`); when a commit failed with its
//! outcome unknown, the next one first asks whether it landed and leaves out what it held.
//!
//! The action's files (stdout, stderr, `result.json`, artifacts; masked as for [`Local`]) are
//! kept in the journal (`runbook.files`) and in the run directory of the controller that ran
//! it, so a controller on another machine sees them. In the journal they go with the next
//! commit, the one that holds the action's result (the scheduler keeps an action's files just
//! before it buffers its result): in the same statement, so under the same fence and number,
//! and all or nothing with the result. A commit that fails keeps them for the next one; files
//! still waiting when the run ends are committed before its state. They were a transaction of
//! their own per action (6 round trips on the scheduler's path, 26 ms per W1 step).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::run_log::{ActionFiles, Local, RecordError, RunLog};
use crate::journal::postgres::lease::{self, Held, Holder};
use crate::journal::postgres::reconnect::{self, Backoff, Connector};
use crate::journal::postgres::{Database, KeptFile};
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
    /// The number of the next commit.
    next: i64,
    /// A commit that failed with its outcome unknown (its answer may have been lost): its
    /// number and entries.
    unsure: Option<(i64, Vec<Entry>)>,
    /// Actions' files kept since the last commit that succeeded: they go with the next one.
    files_waiting: Vec<KeptFile>,
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
        let next = db.last_commit(run_id, epoch)? + 1;
        let heartbeat = db.handle().spawn(beat(
            db.client(),
            db.connector(),
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
            next,
            unsure: None,
            files_waiting: Vec::new(),
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

    /// Until when a write may be retried: the self-fence deadline.
    fn deadline(&self) -> Instant {
        self.state.lock().expect("never poisoned").valid_until
    }

    /// `entries` less what an earlier commit whose answer was lost wrote, if it landed.
    fn not_yet_written(&mut self, entries: &[Entry]) -> Result<Vec<Entry>, RecordError> {
        let Some((number, earlier)) = self.unsure.take() else {
            return Ok(entries.to_vec());
        };
        match self.db.last_commit(&self.run_id, self.epoch) {
            Ok(last) if last >= number => Ok(entries
                .iter()
                .filter(|e| !earlier.contains(e))
                .cloned()
                .collect()),
            Ok(_) => Ok(entries.to_vec()),
            Err(e) => {
                self.unsure = Some((number, earlier));
                Err(e.into())
            }
        }
    }
}

/// Renews the lease every third of the TTL until it is lost; while the server cannot be
/// reached, tries again on a new connection with a backoff (so the lease is renewed as soon as
/// the server is back, not a third of the TTL later).
async fn beat(
    client: Arc<tokio::sync::Mutex<tokio_postgres::Client>>,
    connector: Arc<Connector>,
    run: String,
    epoch: i64,
    ttl: Duration,
    state: Arc<Mutex<State>>,
) {
    let mut pause = ttl / 3;
    let mut backoff = Backoff::default();
    let mut force = false;
    loop {
        tokio::time::sleep(pause).await;
        let asked = Instant::now();
        {
            // Fenced (no renewal in time): it stays fenced. Renewing once the server is back
            // would keep a lease whose holder starts nothing from expiring for a taker.
            let mut state = state.lock().expect("never poisoned");
            if asked >= state.valid_until {
                state.lost.get_or_insert_with(|| {
                    format!("the lease of run {run} (epoch {epoch}) could not be renewed before its TTL less the margin")
                });
                return;
            }
        }
        let renewal = async {
            reconnect::ensure(&client, &connector, force).await?;
            lease::renew(Arc::clone(&client), &run, epoch, ttl).await
        };
        match tokio::time::timeout(ttl / 3, renewal).await {
            Ok(Ok(true)) => {
                state.lock().expect("never poisoned").valid_until = asked + live(ttl);
                (pause, backoff, force) = (ttl / 3, Backoff::default(), false);
            }
            Ok(Ok(false)) => {
                state.lock().expect("never poisoned").lost = Some(format!(
                    "another controller took the lease of run {run} (this one held epoch {epoch})"
                ));
                return;
            }
            // The server is away: keep trying; `still_held` fences once the margin is reached.
            Ok(Err(_)) => pause = backoff.pause().min(ttl / 3),
            // No answer: the connection may hang behind a dead path; the next try opens another.
            Err(_) => {
                force = true;
                pause = backoff.pause().min(ttl / 3);
            }
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
        let entries = self.not_yet_written(entries)?;
        if entries.is_empty() && self.files_waiting.is_empty() {
            return Ok(());
        }
        let number = self.next;
        self.next += 1;
        match self.db.commit_with_files(
            &self.run_id,
            self.epoch,
            number,
            &entries,
            &self.files_waiting,
            self.deadline(),
        ) {
            Ok(_) => {
                self.files_waiting.clear();
                Ok(())
            }
            Err(e) => {
                // It starts nothing more, and no longer renews the lease: another controller
                // takes the run over once it expires. The files wait for one more try (an
                // upsert of the same bytes, harmless if this one landed after all).
                self.lose(&e.message);
                self.heartbeat.abort();
                self.unsure = Some((number, entries));
                Err(e.into())
            }
        }
    }

    fn pieces(&self) -> Result<Vec<Piece>, RecordError> {
        Ok(self.db.pieces(&self.run_id)?)
    }

    fn end(&mut self, state: RunState) -> Result<(), RecordError> {
        // Files kept after the last commit (an action whose result was not buffered, the run
        // having failed to record already) are written before the run's state says it ended.
        self.commit(&[])?;
        self.db
            .set_state_until(&self.run_id, self.epoch, state, Some(self.deadline()))?;
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
        // The same bytes as the local copy, so a controller elsewhere sees them; written with
        // the next commit, the one that holds this result.
        let dir = self.files.action_dir(action);
        let result = fs_err::read(dir.join("result.json"))?;
        for (name, content) in [
            ("stdout", files.stdout.as_bytes().to_vec()),
            ("stderr", files.stderr.as_bytes().to_vec()),
            ("result.json", result),
        ] {
            self.files_waiting.push(KeptFile {
                action: action.to_owned(),
                name: name.to_owned(),
                content,
            });
        }
        Ok(())
    }

    fn keep_artifact(
        &mut self,
        action: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<String, RecordError> {
        let kept = self.files.keep_artifact(action, name, bytes)?;
        self.files_waiting.push(KeptFile {
            action: action.to_owned(),
            name: format!("artifacts/{name}"),
            content: bytes.to_vec(),
        });
        Ok(kept)
    }
}
