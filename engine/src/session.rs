//! The set-up of one apply of a run, as a library type: which journal records it (a state
//! directory's SQLite journal or the shared one on PostgreSQL), which run it is (new, or the
//! unfinished one it resumes), the locks that keep it alone (the state directory's, or the
//! run's lease with its heartbeat), what the earlier applies did (the resume), its outage
//! window, its clock, its generation and approvals. The CLI adds what is its own (the hosts'
//! locks over its transports, the progress display, prompts, exit codes).
//!
//! Two stages, around the hosts' locks: [`Session::open`] finds and locks the run and reads
//! what it needs before any host is touched; [`Session::begin`] records the run's start, once
//! the hosts are locked. Every failure is a [`SessionError`] saying how to exit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::Clock;
use crate::event::Status;
use crate::execute::{Options, Resume, RunLog, Shared};
use crate::journal::postgres::{self, Database};
use crate::journal::{Backend, Journal, RunRecord, RunState};
use crate::lock::{LockError, RunLock};
use crate::plan::Plan;
use crate::window::WindowSpec;

/// Why an apply could not be set up; nothing was run.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Bad input (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// Another run or controller holds a lock this one needs (exit 6).
    #[error("{0}")]
    Refused(String),
    /// The journal or the state directory could not be read or written (exit 5), for `run`
    /// when it is known.
    #[error("the run's state could not be recorded: {cause}")]
    NotRecorded { cause: String, run: Option<String> },
}

/// Fingerprints of what a run was started with.
#[derive(Clone, Debug)]
pub struct Fingerprints {
    pub runbook: String,
    pub inventory: String,
    pub params: String,
}

/// What an apply is asked to do.
#[derive(Debug)]
pub struct Request<'a> {
    /// `--state`: a directory, or a `postgres://` URL.
    pub state: &'a Path,
    /// ` --state ...` for the commands messages print (empty for the default directory).
    pub state_arg: String,
    pub runbook_file: String,
    pub inventory_file: String,
    /// `resume RUN`; `None` for `apply` (which resumes the unfinished run of these files).
    pub resume_id: Option<String>,
    pub dry_run: bool,
    pub operator: String,
    /// The `-e` assignments, as JSON, recorded with a new run.
    pub params: String,
    pub fingerprints: Fingerprints,
    /// `--window`, `--wait`, `--force`.
    pub window: Option<String>,
    pub wait: bool,
    pub force: bool,
}

/// The journal an apply records its run in.
#[derive(Debug)]
pub enum Store {
    Local(Journal),
    Shared(Arc<Database>),
}

impl Store {
    pub fn open(state: &Path) -> Result<Self, crate::journal::JournalError> {
        match state.to_str() {
            Some(url) if postgres::is_url(url) => Ok(Self::Shared(Arc::new(Database::open(url)?))),
            _ => Ok(Self::Local(Journal::open(state)?)),
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        match self {
            Self::Local(j) => j,
            Self::Shared(db) => db.as_ref(),
        }
    }
}

/// One apply of a run, set up.
pub struct Session {
    store: Store,
    state_arg: String,
    dry_run: bool,
    pub run_id: String,
    /// This controller's run directory (for the shared journal, under `./.runbook`).
    pub run_dir: PathBuf,
    /// The unfinished run this apply resumes.
    pub previous: Option<RunRecord>,
    pub resume: Option<Resume>,
    /// The runbook, inventory or parameters changed since the resumed run began (allowed: only
    /// actions not yet started are affected); the CLI says so.
    pub changed_since_start: bool,
    pub window: Option<(WindowSpec, String)>,
    pub clock: Arc<dyn Clock>,
    /// Set by [`Session::begin`].
    pub generation: u32,
    pub approvals: BTreeSet<String>,
    lease: Option<Shared>,
    inventory_lock: Option<RunLock>,
    run_lock: Option<RunLock>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("run_id", &self.run_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

fn lock_error(e: LockError) -> SessionError {
    match e {
        e @ LockError::Io(_) => SessionError::NotRecorded {
            cause: e.to_string(),
            run: None,
        },
        e => SessionError::Refused(e.to_string()),
    }
}

impl Session {
    /// Opens the journal, finds the run (the unfinished one to resume, or a new id), locks it
    /// (a resumed run at once: `abandon` cannot give it up, nor another controller take it,
    /// while this apply prepares it), and reads what the earlier applies did.
    pub fn open(req: &Request<'_>, plan: &Plan) -> Result<Self, SessionError> {
        let not_recorded =
            |e: &dyn std::fmt::Display, run: Option<&str>| SessionError::NotRecorded {
                cause: e.to_string(),
                run: run.map(str::to_owned),
            };
        let store = Store::open(req.state).map_err(|e| not_recorded(&e, None))?;
        let journal = store.backend();
        // Where this controller keeps its copy of the run's files: the state directory, or for
        // the shared journal `./.runbook` (the journal keeps them too).
        let local_dir = match &store {
            Store::Local(_) => req.state.to_path_buf(),
            Store::Shared(_) => PathBuf::from(".runbook"),
        };
        // A journal that cannot be read must not start a new run beside one it could not see.
        let previous = match &req.resume_id {
            Some(id) => journal.run(id),
            None if req.dry_run => Ok(None),
            None => journal.resumable(&req.runbook_file, &req.inventory_file),
        }
        .map_err(|e| not_recorded(&e, None))?;
        let run_id = previous.as_ref().map_or_else(new_run_id, |r| r.id.clone());
        let run_dir = local_dir.join("runs").join(&run_id);
        // The shared journal: its lease is the run's lock, and the hosts' locks keep two runs
        // apart (two controllers have no state directory in common).
        let inventory_lock = match &store {
            Store::Shared(_) => None,
            Store::Local(_) => Some(
                crate::lock::acquire(req.state, Path::new(&req.inventory_file), &run_id)
                    .map_err(lock_error)?,
            ),
        };
        let mut lease = None;
        if let (Store::Shared(db), Some(_), false) = (&store, &previous, req.dry_run) {
            lease = Some(take_lease(db, &run_id, &run_dir, req)?);
        }
        let mut run_lock = None;
        if previous.is_some() && !journal.shared() {
            run_lock = Some(
                crate::lock::acquire_run(req.state, &run_id, &req.operator).map_err(lock_error)?,
            );
        }
        let resume = match &previous {
            None => None,
            Some(run) => Some(
                resume_state(journal, run, plan, &req.state_arg).map_err(SessionError::Invalid)?,
            ),
        };
        let fps = &req.fingerprints;
        let changed_since_start = previous.as_ref().is_some_and(|run| {
            fps.runbook != run.runbook_fp
                || fps.inventory != run.inventory_fp
                || fps.params != run.params_fp
        });
        let window = window_of(req, plan, previous.as_ref()).map_err(SessionError::Invalid)?;
        let clock: Arc<dyn Clock> = match crate::clock::OffsetClock::from_env() {
            Ok(Some(fake)) => Arc::new(fake),
            Ok(None) => Arc::new(crate::clock::SystemClock),
            Err(message) => return Err(SessionError::Invalid(message)),
        };
        Ok(Self {
            store,
            state_arg: req.state_arg.clone(),
            dry_run: req.dry_run,
            run_id,
            run_dir,
            previous,
            resume,
            changed_since_start,
            window,
            clock,
            generation: 1,
            approvals: BTreeSet::new(),
            lease,
            inventory_lock,
            run_lock,
        })
    }

    /// Whether the run is recorded in the shared journal (its hosts' locks are then the run's:
    /// [`crate::transport::Claim::shared_run`]).
    pub fn shared(&self) -> bool {
        matches!(self.store, Store::Shared(_))
    }

    /// Once the hosts are locked: locks a new run, creates its directory, records the start
    /// (a new run, or the resumed one's new fingerprints, state and window), takes a new run's
    /// lease, starts the next generation and reads the approvals.
    pub fn begin(&mut self, req: &Request<'_>, plan: &Plan) -> Result<(), SessionError> {
        let run_id = self.run_id.clone();
        if self.run_lock.is_none() && !self.shared() {
            self.run_lock = Some(
                crate::lock::acquire_run(req.state, &run_id, &req.operator).map_err(lock_error)?,
            );
        }
        if let Err(e) = fs_err::create_dir_all(&self.run_dir) {
            return Err(SessionError::NotRecorded {
                cause: format!("cannot create the run directory: {e}"),
                run: None,
            });
        }
        let journal = self.store.backend();
        let fps = &req.fingerprints;
        if !self.dry_run {
            let recorded = match &self.previous {
                Some(run) => journal
                    .update_fingerprints(&run.id, &fps.runbook, &fps.inventory, &fps.params)
                    .and_then(|()| journal.set_state(&run.id, RunState::Running))
                    .and_then(|()| {
                        journal.set_window(&run.id, self.window.as_ref().map(|(_, t)| t.as_str()))
                    }),
                None => journal.create_run(&RunRecord {
                    id: run_id.clone(),
                    operator: req.operator.clone(),
                    started_at: jiff::Timestamp::now().to_string(),
                    runbook_name: plan.runbook.name.clone(),
                    runbook_version: plan.runbook.version.clone(),
                    runbook_file: req.runbook_file.clone(),
                    inventory_file: req.inventory_file.clone(),
                    runbook_fp: fps.runbook.clone(),
                    inventory_fp: fps.inventory.clone(),
                    params_fp: fps.params.clone(),
                    params: req.params.clone(),
                    state: RunState::Running,
                    finished_at: None,
                    window: self.window.as_ref().map(|(_, text)| text.clone()),
                }),
            };
            recorded.map_err(|e| SessionError::NotRecorded {
                cause: e.to_string(),
                run: self.previous.as_ref().map(|r| r.id.clone()),
            })?;
            // A new run of the shared journal is leased as soon as it exists.
            if let (Store::Shared(db), None) = (&self.store, &self.lease) {
                self.lease = Some(take_lease(db, &run_id, &self.run_dir, req)?);
            }
        }
        let journal = self.store.backend();
        let not_recorded = |e: crate::journal::JournalError| SessionError::NotRecorded {
            cause: e.to_string(),
            run: Some(run_id.clone()),
        };
        // Which apply of the run this is; a dry run changes nothing, so it needs no fence.
        self.generation = if self.dry_run {
            1
        } else {
            journal.next_generation(&run_id).map_err(not_recorded)?
        };
        self.approvals = journal
            .approvals(&run_id)
            .map_err(not_recorded)?
            .into_iter()
            .map(|(step, _, _)| step)
            .collect();
        Ok(())
    }

    /// Hands the run to the executor: fills `opts` with what the session knows, and returns the
    /// record the scheduler writes through (`None`: `opts.journal`, or nothing for a dry run).
    pub fn start(self, opts: &mut Options) -> Started {
        opts.generation = self.generation;
        opts.approvals = self.approvals;
        opts.resume = self.resume;
        opts.window = self.window.map(|(spec, _)| spec);
        opts.clock = self.clock;
        let epoch = self.lease.as_ref().map(Shared::epoch);
        let (log, db): (Option<Box<dyn RunLog>>, _) = match self.store {
            Store::Local(journal) => {
                if !self.dry_run {
                    opts.journal = Some(Arc::new(std::sync::Mutex::new(journal)));
                }
                (None, None)
            }
            Store::Shared(db) => (self.lease.map(|l| Box::new(l) as Box<dyn RunLog>), Some(db)),
        };
        Started {
            log,
            epoch,
            db,
            state_arg: self.state_arg,
            run_id: self.run_id,
            _locks: (self.inventory_lock, self.run_lock),
        }
    }
}

/// A run handed to the executor; keeps its locks until dropped.
pub struct Started {
    /// The record to pass to [`crate::execute::execute_with`], when it is not `opts.journal`.
    pub log: Option<Box<dyn RunLog>>,
    epoch: Option<i64>,
    db: Option<Arc<Database>>,
    state_arg: String,
    run_id: String,
    _locks: (Option<RunLock>, Option<RunLock>),
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("run_id", &self.run_id)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Started {
    /// After a run that stopped unrecorded on the shared journal: when another controller took
    /// the run's lease (this controller was frozen, or cut off, past its TTL), says so.
    pub fn taken_over(&self) -> Option<String> {
        let (db, epoch) = (self.db.as_ref()?, self.epoch?);
        let run = &self.run_id;
        let lease = db.leases().ok()?.into_iter().find(|l| &l.run == run)?;
        (lease.epoch != epoch).then(|| {
            format!(
                "stopped: another controller took over run {run}: {} on {} (pid {}) holds its lease now (epoch {}; this controller held epoch {epoch}). This controller's writes were refused and it started nothing more; the run goes on there (`runbook status {run}{}`).",
                lease.operator, lease.host, lease.pid, lease.epoch, self.state_arg
            )
        })
    }
}

/// Takes the lease of `run` in the shared journal (its heartbeat starts at once), or refuses
/// while another controller's lease is live, naming it and when it expires.
fn take_lease(
    db: &Arc<Database>,
    run: &str,
    run_dir: &Path,
    req: &Request<'_>,
) -> Result<Shared, SessionError> {
    let holder = postgres::lease::Holder::this_process();
    match Shared::take(
        Arc::clone(db),
        run,
        run_dir,
        &holder,
        crate::execute::lease_ttl(),
    ) {
        Ok(Ok(lease)) => Ok(lease),
        Ok(Err(held)) => Err(SessionError::Refused(format!(
            "run {run} is {held}: another controller runs it, so this one changed nothing.\nIt is taken over here once that lease expires (its holder renews it while it lives): run this again then. If the holder is known to be gone, `runbook lock steal {run} --reason TEXT{}` frees it now.",
            req.state_arg
        ))),
        Err(e) => Err(SessionError::NotRecorded {
            cause: e.to_string(),
            run: Some(run.to_owned()),
        }),
    }
}

/// The run's outage window and its text: `--window`, else the runbook parameter `window`, else
/// the window the resumed run was started with.
fn window_of(
    req: &Request<'_>,
    plan: &Plan,
    previous: Option<&RunRecord>,
) -> Result<Option<(WindowSpec, String)>, String> {
    let from_param = plan
        .params
        .iter()
        .find(|p| p.name == "window")
        .and_then(|p| p.value.as_ref())
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| !s.trim().is_empty());
    let text = req
        .window
        .clone()
        .or(from_param)
        .or_else(|| previous.and_then(|r| r.window.clone()));
    match text {
        None => {
            if req.wait || req.force {
                return Err("--wait and --force need an outage window (--window)".into());
            }
            Ok(None)
        }
        Some(text) => WindowSpec::parse(&text)
            .map(|spec| Some((spec, text)))
            .map_err(|e| e.to_string()),
    }
}

/// What the interrupted run did, checked against the plan as it is now. Finished and in-flight
/// actions must not have changed; actions not yet started may.
fn resume_state(
    journal: &dyn Backend,
    run: &RunRecord,
    plan: &Plan,
    state_arg: &str,
) -> Result<Resume, String> {
    let records = journal.actions(&run.id).map_err(|e| e.to_string())?;
    let now: BTreeMap<String, &str> = plan
        .actions()
        .map(|(node, a)| (plan.action_id(a), plan.action_fingerprint(node)))
        .collect();
    let changed: Vec<String> = records
        .iter()
        .filter(|r| now.get(&r.action).copied() != Some(r.definition_fp.as_str()))
        .map(|r| {
            format!(
                "  {} ({}), recorded as {}",
                r.action,
                if now.contains_key(&r.action) {
                    "definition changed"
                } else {
                    "no longer in the plan"
                },
                r.status
            )
        })
        .collect();
    if !changed.is_empty() {
        return Err(format!(
            "run {} cannot resume: these actions ran (or were running) with another definition:\n{}\nrestore the runbook and inventory the run began with, or `runbook abandon {}{}` and start a new run",
            run.id,
            changed.join("\n"),
            run.id,
            state_arg
        ));
    }
    let mut resume = Resume::default();
    for r in records {
        match Status::parse(&r.status) {
            Some(s @ (Status::Ok | Status::Changed | Status::Skipped)) => {
                resume.done.insert(r.action, s);
            }
            // Started without a recorded end, or its host dropped or it timed out: its effect is
            // unknown until the host, the module's check or an operator says.
            None | Some(Status::Unreachable | Status::TimedOut | Status::Unknown) => {
                resume.unknown.insert(r.action);
            }
            Some(_) => {}
        }
    }
    resume.decisions = journal
        .decisions(&run.id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(a, d)| (a, d == "done"))
        .collect();
    resume.outputs = journal
        .outputs(&run.id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|(reg, host, value)| serde_json::from_str(&value).ok().map(|v| (reg, host, v)))
        .collect();
    Ok(resume)
}

fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    format!(
        "{}-{:04x}",
        now.strftime("%Y%m%dT%H%M%SZ"),
        std::process::id() & 0xffff
    )
}
