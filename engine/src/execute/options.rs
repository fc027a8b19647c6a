//! How a run is carried out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::event::Status;
use crate::inventory::HostId;
use crate::journal::Journal;
use crate::window::WindowSpec;

/// A manual step waiting for the operator.
#[derive(Clone, Debug)]
pub struct ManualPrompt {
    pub step: String,
    pub host: String,
    pub instructions: String,
}

/// Asks the operator to confirm a manual step (on a terminal). `Some(true)`: done, go on;
/// `Some(false)`: declined, the step fails; `None`: cannot ask (no terminal), wait for
/// `runbook approve`.
pub type Approver = Arc<dyn Fn(&ManualPrompt) -> Option<bool> + Send + Sync>;

/// What an interrupted run had done, for resuming it.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    /// Actions that finished before the interruption and are not run again, by action id.
    pub done: BTreeMap<String, Status>,
    /// Actions that started and whose outcome was not recorded (or whose host dropped): the
    /// host's wrapper state, the module's check or an operator's decision settles them.
    pub unknown: BTreeSet<String>,
    /// Operators' decisions for unknown actions: `true` = done, `false` = run again.
    pub decisions: BTreeMap<String, bool>,
    /// Registered outputs recorded before the interruption: `(register, host, value)`.
    pub outputs: Vec<(String, String, serde_json::Value)>,
}

#[derive(Clone)]
pub struct Options {
    pub run_id: String,
    /// Which apply of the run this is: 1 for the first, one more for each resume. Commands
    /// carry it, so a command a killed earlier process left on its way can be fenced off.
    pub generation: u32,
    /// Where each action's full output is written (`actions/STEP@HOST/`).
    pub run_dir: PathBuf,
    /// Actions at once, over all hosts.
    pub forks: usize,
    /// Stop starting new actions after the first failure.
    pub fail_fast: bool,
    /// Run read-only checks only; change nothing.
    pub dry_run: bool,
    /// Only these hosts (others are skipped); `None` for all.
    pub limit: Option<BTreeSet<HostId>>,
    /// Secret parameter values, by parameter name.
    pub secrets: BTreeMap<String, String>,
    /// Manual steps already approved (by step id).
    pub approvals: BTreeSet<String>,
    pub approver: Option<Approver>,
    /// Becomes `true` when the operator interrupts the run (Ctrl-C): nothing new starts, and
    /// what runs is stopped on its host.
    pub cancel: Option<tokio::sync::watch::Receiver<bool>>,
    /// Where transitions are recorded durably (started before a command is sent, the result
    /// before any dependent starts).
    pub journal: Option<Arc<std::sync::Mutex<Journal>>>,
    /// The state of the interrupted run this one resumes.
    pub resume: Option<Resume>,
    /// The outage window: steps of `outage: true` phases run only inside it, and only when they
    /// fit ([`crate::window::gate`]). `None`: no window, nothing is held.
    pub window: Option<WindowSpec>,
    /// Wait for the window to open (or for the next one) instead of pausing the run.
    pub wait: bool,
    /// Start an irreversible step although the remaining critical path may not fit.
    pub force: bool,
    /// What "now" is for window decisions.
    pub clock: Arc<dyn Clock>,
    /// Appended to the commands the run's messages suggest (`runbook approve RUN STEP`):
    /// ` --state DIR` when the run is not recorded in the default directory, so they work
    /// when pasted.
    pub state_arg: String,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("run_id", &self.run_id)
            .field("run_dir", &self.run_dir)
            .field("forks", &self.forks)
            .field("fail_fast", &self.fail_fast)
            .field("dry_run", &self.dry_run)
            .field("limit", &self.limit)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("approvals", &self.approvals)
            .field("window", &self.window.as_ref().map(ToString::to_string))
            .field("wait", &self.wait)
            .field("force", &self.force)
            .finish_non_exhaustive()
    }
}

impl Options {
    pub fn new(run_id: impl Into<String>, run_dir: impl Into<PathBuf>) -> Self {
        Self {
            run_id: run_id.into(),
            generation: 1,
            run_dir: run_dir.into(),
            forks: 10,
            fail_fast: false,
            dry_run: false,
            limit: None,
            secrets: BTreeMap::new(),
            approvals: BTreeSet::new(),
            approver: None,
            cancel: None,
            journal: None,
            resume: None,
            window: None,
            wait: false,
            force: false,
            clock: Arc::new(SystemClock),
            state_arg: String::new(),
        }
    }
}
