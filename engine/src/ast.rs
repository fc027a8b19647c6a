//! The runbook as written: a faithful, typed mirror of the YAML with a span on everything the
//! compiler may need to point at. No inventory, no modules, no I/O: checking that names refer
//! to something is the compiler's job.

use std::time::Duration;

use crate::diagnostic::SourceFile;
use crate::schema::Spanned;
use crate::yaml::{Node, Span};

/// The only `apiVersion` this build understands.
pub const API_VERSION: &str = "runbook/v1";

/// The longest step id, in bytes. A step's id names its action directory on every host and on
/// the controller (`RUN/STEP@HOST/`), one path component, which Linux caps at 255 bytes
/// (`NAME_MAX`): a step id and a host name of at most 120 bytes each always fit.
pub const MAX_STEP_ID: usize = 120;

#[derive(Clone, Debug)]
pub struct Runbook {
    pub source: SourceFile,
    pub metadata: Metadata,
    /// In declaration order.
    pub params: Vec<ParamDecl>,
    pub roles: Vec<RoleDecl>,
    /// Runbook-level variables (templates allowed), visible as `vars.NAME`.
    pub vars: Vec<(Spanned<String>, Node)>,
    pub phases: Vec<Phase>,
    /// Where each step that came from a block came from, by step id (see [`Origin`]).
    pub origins: std::collections::BTreeMap<String, Origin>,
}

/// Where a step of a block came from: the block's file and the ids of the `uses:` entries
/// that led there, outermost first (`["upgrade-b1", "switch"]` for `upgrade-b1.switch.stop`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    pub file: String,
    pub uses: Vec<String>,
}

impl Origin {
    /// `blocks/mark.yaml (uses: pair > first)`.
    pub fn describe(&self) -> String {
        format!("{} (uses: {})", self.file, self.uses.join(" > "))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Metadata {
    pub name: Spanned<String>,
    pub version: Spanned<String>,
    pub description: Option<String>,
    /// The seed document and section(s) the runbook implements.
    pub source: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    String,
    Int,
    Bool,
    Duration,
    Path,
    Secret,
    List,
}

impl ParamKind {
    pub const NAMES: &'static [&'static str] = &[
        "string", "int", "bool", "duration", "path", "secret", "list",
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "int" => Self::Int,
            "bool" => Self::Bool,
            "duration" => Self::Duration,
            "path" => Self::Path,
            "secret" => Self::Secret,
            "list" => Self::List,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Clone, Debug)]
pub struct ParamDecl {
    pub name: Spanned<String>,
    pub kind: ParamKind,
    pub default: Option<Node>,
    pub required: bool,
    pub description: Option<String>,
    /// Allowed values, for strings.
    pub choices: Vec<String>,
    pub span: Span,
}

/// How many hosts a role must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleCount {
    pub min: usize,
    pub max: Option<usize>,
}

impl RoleCount {
    pub fn describe(self) -> String {
        match (self.min, self.max) {
            (min, Some(max)) if min == max => format!("exactly {min}"),
            (0, Some(max)) => format!("at most {max}"),
            (min, None) => format!("at least {min}"),
            (min, Some(max)) => format!("between {min} and {max}"),
        }
    }

    pub fn allows(self, n: usize) -> bool {
        n >= self.min && self.max.is_none_or(|max| n <= max)
    }
}

#[derive(Clone, Debug)]
pub struct RoleDecl {
    pub name: Spanned<String>,
    pub count: RoleCount,
    pub count_span: Span,
    pub description: Option<String>,
}

/// One entry of `serial:`: a number of hosts or a percentage of the phase's hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchSize {
    Hosts(usize),
    Percent(u8),
}

/// `max_fail:`: how many hosts of a rolling phase may fail before the remaining batches stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailBudget {
    Hosts(usize),
    Percent(u8),
}

/// Ordering of steps inside a phase; see docs/runbook-format.md, "Ordering".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Each step starts when the previous step has finished on all of its hosts.
    #[default]
    Sequential,
    /// Each host runs the phase's steps in order, independently of the other hosts.
    PerHost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A step of the phase's main list.
    Main,
    /// Runs only when a main step of the phase failed or its host became unreachable.
    OnFailure,
    /// Runs after the phase whatever happened.
    Always,
}

#[derive(Clone, Debug)]
pub struct Phase {
    pub name: Spanned<String>,
    pub description: Option<String>,
    /// Whether the phase's steps may only run inside the outage window.
    pub outage: bool,
    pub order: Order,
    /// Default targets for steps without `on:`.
    pub on: Vec<Spanned<String>>,
    /// Rolling batches: the phase runs on these many hosts at a time, batch after batch.
    pub serial: Option<Vec<BatchSize>>,
    /// Failure budget of a rolling phase (default 0: the first failed host stops the rest).
    pub max_fail: FailBudget,
    pub steps: Vec<Step>,
    /// Whether the phase has a `steps:` key at all (its absence is reported by the parser).
    pub steps_given: bool,
    pub span: Span,
}

/// A step's place in the write freeze: the freeze starts when the first action of the
/// `start` step starts, and ends when the last action of the `end` step ends (for a
/// switchover: the step after which the new primary accepts writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freeze {
    Start,
    End,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub id: Spanned<String>,
    pub kind: StepKind,
    pub name: Option<String>,
    pub description: Option<String>,
    /// The seed section this step implements.
    pub source: Option<String>,
    pub module: Spanned<String>,
    /// The `with:` arguments, values still templates.
    pub with: Vec<(Spanned<String>, Node)>,
    pub with_span: Span,
    /// Whether `with:` was a mapping (when not, its error is reported and argument checks
    /// that would only repeat it are skipped).
    pub with_ok: bool,
    /// Target selectors; the step runs on their union.
    pub on: Vec<Spanned<String>>,
    pub needs: Vec<Spanned<String>>,
    /// Expressions (no braces), as in `when: backlog.rc == 0`.
    pub when: Option<Spanned<String>>,
    pub loop_items: Option<Node>,
    pub register: Option<Spanned<String>>,
    pub retries: u32,
    pub until: Option<Spanned<String>>,
    pub delay: Option<Duration>,
    pub timeout: Option<Duration>,
    pub estimate: Option<Duration>,
    pub irreversible: bool,
    /// `freeze: start` / `freeze: end`: where the write freeze inside the outage begins and
    /// ends (see [`Freeze`]).
    pub freeze: Option<Spanned<Freeze>>,
    /// Environment variables for the step's commands (templates; the only place secrets may
    /// be read). They reach the host on standard input, never in a command line.
    pub env: Vec<(Spanned<String>, Node)>,
    pub span: Span,
}
