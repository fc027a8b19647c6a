//! How a command ends: an [`Outcome`] (it did its work; the run it drove may still have failed
//! or stopped) or a [`CliError`] (it could not). Commands return `Result<Outcome, CliError>`
//! and print nothing about an error; [`finish`] prints it once and maps both to the exit code,
//! so that the codes of docs/cli.md are decided in one place.

use std::io::Write as _;

use runbook::diagnostic::Diagnostic;

use super::args::DiagnosticFormat;
use super::exit;

/// What a command that did its work ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: the run failed (an action failed, timed out, its host was unreachable, or the
    /// run was interrupted).
    RunFailed,
    /// Exit 3: the run stopped at a manual step that needs `runbook approve`.
    AwaitingApproval,
    /// Exit 4: the run paused at the outage window.
    Paused,
}

/// Why a command could not do its work. The message is said once, by [`finish`].
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Exit 2: the input (runbook, inventory, parameters, arguments) is wrong; nothing was run.
    #[error("{0}")]
    Invalid(String),
    /// Exit 2: the input has errors, reported as miette diagnostics (or JSON lines with
    /// `--diagnostics json`).
    #[error("{} errors in the input", .list.len())]
    Diagnostics {
        list: Vec<Diagnostic>,
        format: DiagnosticFormat,
    },
    /// Exit 5: the run's state could not be recorded (the message says where, why and how the
    /// run resumes).
    #[error("{0}")]
    NotRecorded(String),
    /// Exit 6: another run holds a lock this command needs; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// Exit 7: the environment failed the command, not its input: a journal that cannot be
    /// opened or read, a file that cannot be written, a lab directory that cannot be read. It
    /// is not a failed record of a run (that is [`CliError::NotRecorded`]).
    #[error("{0}")]
    Environment(String),
}

impl CliError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn environment(message: impl std::fmt::Display) -> Self {
        Self::Environment(message.to_string())
    }

    /// The process exit code of this error.
    pub fn code(&self) -> u8 {
        match self {
            Self::Invalid(_) | Self::Diagnostics { .. } => exit::INVALID_INPUT,
            Self::NotRecorded(_) => exit::NOT_RECORDED,
            Self::Refused(_) => exit::REFUSED,
            Self::Environment(_) => exit::ENVIRONMENT,
        }
    }
}

impl Outcome {
    /// The process exit code of this outcome.
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => exit::OK,
            Self::RunFailed => exit::RUN_FAILED,
            Self::AwaitingApproval => exit::AWAITING_APPROVAL,
            Self::Paused => exit::PAUSED,
        }
    }
}

/// The one place an error is printed (diagnostics as miette reports or JSON lines, everything
/// else as one `error:` line on standard error) and a result becomes an exit code.
pub fn finish(result: Result<Outcome, CliError>) -> u8 {
    match result {
        Ok(outcome) => outcome.code(),
        Err(e) => {
            match &e {
                CliError::Diagnostics { list, format } => super::report::diagnostics(list, *format),
                other => {
                    let _ = writeln!(std::io::stderr(), "error: {other}");
                }
            }
            e.code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_and_error_has_its_documented_code() {
        assert_eq!(
            [
                Outcome::Ok,
                Outcome::RunFailed,
                Outcome::AwaitingApproval,
                Outcome::Paused
            ]
            .map(Outcome::code),
            [0, 1, 3, 4]
        );
        assert_eq!(
            [
                CliError::invalid("x"),
                CliError::NotRecorded("x".into()),
                CliError::Refused("x".into()),
                CliError::environment("x"),
            ]
            .map(|e| e.code()),
            [2, 5, 6, 7]
        );
    }
}
