//! The module interface.

use std::fmt;

use crate::args::Args;
use crate::command::Command;
use crate::param::ParamSpec;

/// What a step does once its arguments are known.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    /// A command run on the target host.
    Remote(Command),
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

/// A built-in module.
///
/// `render` must be pure and deterministic: `plan` calls it for every action and snapshots its
/// output. The executor (a later stage) adds the read-only `check` and the `apply` that run the
/// rendered operations over a transport.
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
    /// The operations the step performs, in order.
    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError>;
}
