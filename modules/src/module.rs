//! The module interface.

use std::fmt;
use std::time::Duration;

use crate::args::Args;
use crate::command::Command;
use crate::param::ParamSpec;
use crate::transfer::Transfer;

/// What a step does once its arguments are known.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    /// A command run on the target host.
    Remote(Command),
    /// Data copied from another inventory host to the target host, through the controller
    /// (hosts hold no credentials for each other). The engine carries it out with the scripts
    /// of [`Transfer`]; the compiler checks that `from` names an inventory host.
    Transfer(Transfer),
    /// Work an operator does by hand; the run waits for an approval.
    Manual { instructions: String },
    /// Conditions (template expressions) that the engine evaluates on the controller; the step
    /// fails with `message` when one is false.
    Assert {
        conditions: Vec<String>,
        message: Option<String>,
    },
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Remote(cmd) => write!(f, "{cmd}"),
            Operation::Transfer(t) => write!(f, "{t}"),
            Operation::Manual { instructions } => {
                write!(
                    f,
                    "manual: {}",
                    instructions.lines().next().unwrap_or_default()
                )
            }
            Operation::Assert { conditions, .. } => {
                write!(f, "assert: {}", conditions.join(" and "))
            }
        }
    }
}

/// A module's arguments are fine by type but do not make sense together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    /// The argument the problem is about, so the compiler can point at it.
    pub arg: Option<&'static str>,
    pub message: String,
}

impl RenderError {
    pub fn new(arg: &'static str, message: impl Into<String>) -> Self {
        Self {
            arg: Some(arg),
            message: message.into(),
        }
    }
}

/// Where a module's work happens, which the engine asks instead of matching module names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On the step's target hosts (a phase's default `on:` applies).
    Hosts,
    /// On the controller, evaluated by the engine (`assert`): without its own `on:` the step
    /// has the controller as its one target.
    Controller,
    /// By an operator: the step gates the run on an approval (`manual`), on the controller
    /// unless it names targets.
    Operator,
}

impl Placement {
    /// Whether a step of this module without its own `on:` runs once, on the controller.
    pub fn on_controller(self) -> bool {
        matches!(self, Placement::Controller | Placement::Operator)
    }
}

/// The estimate of a step whose module declares none and that declares none itself.
pub const DEFAULT_ESTIMATE: Duration = Duration::from_secs(10);

/// The exit status of a [`Module::check`] probe when the host is already in the desired state:
/// applying the step would change nothing.
pub const CHECK_IN_STATE: i32 = 0;

/// The exit status of a [`Module::check`] probe when applying the step would change something
/// (or, for a module that only observes, such as `wait_for`, would have to wait).
pub const CHECK_WOULD_CHANGE: i32 = 1;

/// The line a mutating command prints on standard output when it found nothing to do.
///
/// The executor counts a step whose mutating commands all succeed as `changed`, unless a command
/// printed a line exactly equal to this one (no other text on the line; other lines may come
/// before or after it), in which case that command counts as `ok`. An explanation for the
/// operator, such as `runbook: /srv/app/done exists, skipped`, goes to standard error, so it
/// cannot be mistaken for the marker or for output a later step parses.
pub const UNCHANGED: &str = "runbook: unchanged";

/// A built-in module.
///
/// `render` must be pure and deterministic: `plan` calls it for every action and snapshots its
/// output. The executor follows query-then-act: the read-only [`check`](Module::check) (for
/// dry-run, resume after a crash and safety gates), then the operations of `render` (apply).
///
/// A mutating command that finds nothing to do says so by printing the [`UNCHANGED`] line.
pub trait Module: Send + Sync {
    /// The name steps use, `command` or `gtm.source_start`.
    fn name(&self) -> &'static str;
    /// One line for `runbook modules` and docs.
    fn description(&self) -> &'static str;
    /// The typed parameters accepted in `with:`.
    fn params(&self) -> &[ParamSpec];
    /// Whether applying it twice has the same effect as once. Resume uses this: an interrupted
    /// idempotent step may simply run again; any other needs its `check` or an operator.
    fn idempotent(&self) -> bool;
    /// Where the work happens (docs: "Where a module runs" in docs/architecture.md).
    fn placement(&self) -> Placement {
        Placement::Hosts
    }
    /// How long a step of this module is expected to take when neither the step nor the run
    /// history says (docs/runbook-format.md, "Estimates").
    fn estimate(&self) -> Duration {
        DEFAULT_ESTIMATE
    }
    /// The operations the step performs, in order.
    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError>;

    /// The read-only query of query-then-act: whether applying the step would change anything.
    ///
    /// `None` means the module cannot tell without acting: dry-run then reports "would run", and
    /// resume after a crash must ask the operator.
    ///
    /// `Some(operations)` are run in order instead of `render`'s, with this contract:
    ///
    /// - an [`Operation::Transfer`] has `probe: true`: it only compares both ends;
    /// - every [`Operation::Remote`] is a probe ([`Command::probe`], `mutating: false`) that
    ///   changes nothing on the host, so it is safe in a dry-run and at any point of a resume;
    /// - its exit status means [`CHECK_IN_STATE`] (0): already in the desired state, applying
    ///   would change nothing; [`CHECK_WOULD_CHANGE`] (1): applying would change something; any
    ///   other status (or death by a signal): the check itself failed, and its standard error
    ///   says why;
    /// - anything a check needs that must not be on a command line (file content, secrets)
    ///   travels as it does in `render`: on standard input or in the environment;
    /// - an [`Operation::Assert`] reads nothing on hosts; the engine evaluates it as in apply.
    ///
    /// It fails with the same [`RenderError`]s as `render` for the same arguments.
    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let _ = args;
        Ok(None)
    }
}
