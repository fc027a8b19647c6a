//! Why the scheduler settled an action without running it, or why a gate blocked what follows.
//!
//! One variant per rule of the admission policy ([`super::admission`]); `Display` gives the
//! message the operator reads (in events, the journal and the reports), so the wording lives
//! here and nowhere else.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// An operator resolved the interrupted action as done (`runbook resolve --done`).
    ResolvedDone,
    /// A write of the run's record failed: nothing more starts.
    NotRecorded,
    /// The operator interrupted the run (Ctrl-C).
    Interrupted,
    /// `fail_fast`: a failure stopped the main steps.
    FailFast,
    /// The action's host failed in an earlier phase (within its failure budget).
    HostFailedIn { phase: String },
    /// A step it depends on did not succeed (and gave no better reason).
    DependencyFailed,
    /// A phase's `max_fail` budget is spent.
    BudgetSpent {
        phase: String,
        failed: usize,
        max: usize,
    },
    /// `--limit` leaves the action's host out.
    OutsideLimit,
    /// An `on_failure` step of a phase where nothing failed.
    NothingFailed,
    /// `when:` is false.
    WhenFalse { when: String },
    /// `when:` could not be evaluated.
    WhenError { when: String, error: String },
    /// A parameter did not render (the renderer's message).
    Render(String),
    /// A transfer could not be planned.
    Transfer(String),
    /// An environment value did not render.
    Env(String),
    /// `--dry-run` reached a manual step.
    ManualInDryRun,
    /// The operator declined a manual step.
    Declined,
    /// A manual step waits for `runbook approve`.
    /// `state_arg`: ` --state DIR` when the run is not in the default directory
    /// ([`super::Options::state_arg`]), so the command works when pasted.
    AwaitingApproval {
        run_id: String,
        step: String,
        state_arg: String,
    },
    /// An assertion is false: its own message, or the condition.
    AssertFalse {
        condition: String,
        message: Option<String>,
    },
    /// An assertion could not be evaluated.
    AssertError { condition: String, error: String },
    /// `--dry-run` of a module with no read-only check.
    NoCheck,
    /// Nothing to send to a host (a controller-side step that passed): settled `ok`, silently.
    NothingToSend,
}

impl Reason {
    /// The message recorded and shown with the status; `None` for [`Reason::NothingToSend`],
    /// which needs none.
    pub fn message(&self) -> Option<String> {
        (*self != Self::NothingToSend).then(|| self.to_string())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ResolvedDone => f.write_str("resolved by an operator: done"),
            Self::NotRecorded => write!(f, "not started: {}", super::NOT_RECORDED),
            Self::Interrupted => f.write_str("the run was interrupted (Ctrl-C)"),
            Self::FailFast => f.write_str("the run stopped after a failure (fail_fast)"),
            Self::HostFailedIn { phase } => write!(f, "its host failed in phase `{phase}`"),
            Self::DependencyFailed => f.write_str("a step it depends on did not succeed"),
            Self::BudgetSpent { phase, failed, max } => write!(
                f,
                "the failure budget of phase `{phase}` is spent: {failed} host(s) failed, max_fail allows {max}"
            ),
            Self::OutsideLimit => f.write_str("outside --limit"),
            Self::NothingFailed => f.write_str("nothing failed in its phase"),
            Self::WhenFalse { when } => write!(f, "`when: {when}` is false"),
            Self::WhenError { when, error } => write!(f, "`when: {when}`: {error}"),
            Self::Render(message) | Self::Transfer(message) | Self::Env(message) => {
                f.write_str(message)
            }
            Self::ManualInDryRun => f.write_str("a manual step: apply would ask the operator"),
            Self::Declined => f.write_str("declined by the operator"),
            Self::AwaitingApproval {
                run_id,
                step,
                state_arg,
            } => write!(
                f,
                "run `runbook approve {run_id} {step} --by NAME --reason TEXT{state_arg}`"
            ),
            Self::AssertFalse {
                message: Some(message),
                ..
            } => f.write_str(message),
            Self::AssertFalse {
                condition,
                message: None,
            } => write!(f, "assertion `{condition}` is false"),
            Self::AssertError { condition, error } => write!(f, "assertion `{condition}`: {error}"),
            Self::NoCheck => f.write_str("no read-only check; apply would run it"),
            Self::NothingToSend => f.write_str("nothing to send to a host"),
        }
    }
}
