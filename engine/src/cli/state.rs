//! Where runs are recorded: one rule for every command (docs/cli.md, "The state directory").
//!
//! `--state DIR`, else the environment variable `RUNBOOK_STATE`, else `.runbook` in the working
//! directory. `apply`, `resume`, `approve`, `status`, `runs`, `resolve`, `abandon` and the
//! estimates of `plan` all read the same place, so a run started from a directory is found
//! from it, and the commands a run prints to go on with it carry `--state` whenever the
//! directory is not the default one, so they work when pasted.

use std::path::{Path, PathBuf};

/// The directory used when neither `--state` nor `RUNBOOK_STATE` names one.
pub const DEFAULT: &str = ".runbook";

/// The environment variable naming the state directory (below `--state`).
pub const VARIABLE: &str = "RUNBOOK_STATE";

/// The state directory of a command: `--state`, else `RUNBOOK_STATE`, else `./.runbook`.
pub fn dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    match std::env::var_os(VARIABLE) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT),
    }
}

/// ` --state DIR` (shell-quoted) for the commands a run prints, or nothing for the default
/// directory; so a printed hint, pasted in the same working directory, finds the run.
pub fn arg(dir: &Path) -> String {
    if dir == Path::new(DEFAULT) || dir == Path::new("./.runbook") {
        return String::new();
    }
    format!(
        " --state {}",
        runbook_modules::quote(&dir.display().to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_directory_needs_no_flag_and_others_are_quoted() {
        assert_eq!(arg(Path::new(".runbook")), "");
        assert_eq!(arg(Path::new("/srv/runs")), " --state /srv/runs");
        assert_eq!(arg(Path::new("/srv/my runs")), " --state '/srv/my runs'");
    }

    #[test]
    fn the_flag_wins() {
        assert_eq!(dir(Some(Path::new("/x"))), PathBuf::from("/x"));
    }
}
