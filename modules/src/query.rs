//! The query-then-act adapter: one typed declaration from which a module's read-only
//! [`check`](crate::Module::check) and its [`render`](crate::Module::render) both come.
//!
//! A module that follows it declares, for given arguments, a [`Declared`]: the shell `query`
//! (read-only: it only sets variables), the shell condition `in_state` on what the query found,
//! and the `act` that does the work. The adapter builds both scripts from it:
//!
//! - apply: `prelude(1)`, the query, then `if IN_STATE; then print UNCHANGED; exit 0; fi`, the act;
//! - check: `prelude(2)`, the query, then `if IN_STATE; then exit 0; else exit 1; fi`, as a probe.
//!
//! The check is the apply's own query and condition, so it cannot drift from it; a module only
//! writes how to ask and how to act. A family says how its scripts start (its shell functions,
//! a failure's exit status) and what every command carries (its environment) through
//! [`Shell`].

use crate::args::Args;
use crate::command::{Artifact, Command, quote};
use crate::module::{CHECK_WOULD_CHANGE, Module, Operation, RenderError, UNCHANGED};
use crate::param::ParamSpec;

/// The exit status of a check that could not answer (its stderr says why).
pub(crate) const CHECK_FAILED: i32 = 2;

/// How a family's scripts start and what its commands carry.
pub(crate) trait Shell {
    /// The shell functions both scripts use; a failure exits with `status` (1 in apply,
    /// [`CHECK_FAILED`] in a check).
    fn prelude(&self, status: i32) -> String;
    /// Adds what the command needs besides its script (environment variables).
    fn attach(&self, cmd: Command) -> Command {
        cmd
    }
    /// Sets the command's summary in the vendor's words (see [`Command::summary`]); the
    /// command is shown whole when a family has none.
    fn summarise(&self, cmd: Command) -> Command {
        cmd
    }
}

/// One query-then-act declaration, for given arguments.
pub(crate) struct Declared<S> {
    pub shell: S,
    /// Read-only shell lines that set variables.
    pub query: String,
    /// A shell condition on those variables: true when nothing is to be done.
    pub in_state: String,
    /// The lines that do the work.
    pub act: String,
    pub artifacts: Vec<Artifact>,
}

impl<S: Shell> Declared<S> {
    /// Query; in state: `runbook: unchanged`; otherwise act.
    pub fn apply(&self) -> Vec<Operation> {
        let script = format!(
            "{}{}if {}; then printf '%s\\n' {}; exit 0; fi\n{}",
            self.shell.prelude(1),
            self.query,
            self.in_state,
            quote(UNCHANGED),
            self.act.trim_end()
        );
        let mut cmd = self
            .shell
            .summarise(self.shell.attach(Command::new(script)));
        cmd.artifacts.clone_from(&self.artifacts);
        vec![Operation::Remote(cmd)]
    }

    /// The query alone: exit 0 in state, 1 when the step would act, 2 when it cannot tell.
    pub fn check(&self) -> Vec<Operation> {
        let script = format!(
            "{}{}if {}; then exit 0; else exit {CHECK_WOULD_CHANGE}; fi",
            self.shell.prelude(CHECK_FAILED),
            self.query,
            self.in_state,
        );
        vec![Operation::Remote(self.shell.attach(Command::probe(script)))]
    }
}

/// What a query-then-act module provides: its spec and its declaration.
pub(crate) trait QueryThenAct: Send + Sync {
    type Shell: Shell;
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn params(&self) -> &[ParamSpec];
    fn declare(&self, args: &Args) -> Result<Declared<Self::Shell>, RenderError>;
}

/// Every [`QueryThenAct`] declaration is a [`Module`]: idempotent, its check and its apply
/// from one declaration.
impl<T: QueryThenAct> Module for T {
    fn name(&self) -> &'static str {
        QueryThenAct::name(self)
    }

    fn description(&self) -> &'static str {
        QueryThenAct::description(self)
    }

    fn params(&self) -> &[ParamSpec] {
        QueryThenAct::params(self)
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        Ok(self.declare(args)?.apply())
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        Ok(Some(self.declare(args)?.check()))
    }
}
