//! What went wrong when a command ended without an exit status, told from what the host and
//! the connection say rather than guessed.
//!
//! Over a multiplexed ssh connection, "the remote process was killed by a signal" and "the
//! connection dropped" look the same to the client: the channel closes with no exit status
//! (openssh's `RemoteProcessTerminated`; the mux protocol cannot tell them apart). So:
//!
//! 1. the connection is asked whether it is still up (`Session::check`). If not, the host is
//!    unreachable, and the message says that the command's outcome on the host is unknown (it
//!    may have finished, or be running still), with the reason ssh gave for giving up;
//! 2. if it is up, the host itself is asked what the wrapper recorded for the command
//!    ([`record_script`]): the wrapper was killed (by a signal: ssh does not say which), and its
//!    script had not started, is still running, ended with a recorded exit code, or ended
//!    without one. The action's status follows from that ([`ScriptFate::status`]), never
//!    `unreachable` for a host that answers.

use crate::event::Status;

/// What the host's record says about the script of a command whose wrapper was killed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptFate {
    /// No process group was recorded: the script never started.
    NotStarted,
    /// Its process group is alive.
    Running { pgid: String },
    /// It ended with this exit code, recorded on the host.
    Exited(i32),
    /// Its process group is gone and no exit code was recorded (the group was killed).
    Vanished { pgid: String },
}

impl ScriptFate {
    /// The action's status. A script that failed is `failed` (and may be retried like any
    /// failure); one that never started is `failed` (nothing ran). Everything else is
    /// `unknown`: the step is not counted as done behind the operator's back, and a resume
    /// settles it from the host's record (which is conclusive once the script has ended with
    /// a code).
    pub fn status(&self) -> Status {
        match self {
            Self::NotStarted => Status::Failed,
            Self::Exited(rc) if *rc != 0 => Status::Failed,
            Self::Exited(_) | Self::Running { .. } | Self::Vanished { .. } => Status::Unknown,
        }
    }

    /// The exit code, when the host recorded one.
    pub fn rc(&self) -> Option<i32> {
        match self {
            Self::Exited(rc) => Some(*rc),
            _ => None,
        }
    }
}

impl std::fmt::Display for ScriptFate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotStarted => write!(f, "its script had not started, so nothing ran"),
            Self::Running { pgid } => write!(
                f,
                "its script is still running on the host (process group {pgid}); its outcome is unknown until it ends, and a resume waits for it and settles it from the host's record"
            ),
            Self::Exited(0) => write!(
                f,
                "its script ran on and exited with code 0, as recorded on the host; a resume settles it from that record"
            ),
            Self::Exited(rc) => write!(
                f,
                "its script ran on and exited with code {rc}, as recorded on the host"
            ),
            Self::Vanished { pgid } => write!(
                f,
                "its script (process group {pgid}) is no longer running and left no exit code, so whether it took effect is unknown"
            ),
        }
    }
}

/// A command (no wrapper) that prints what the wrapper recorded for the command keyed `key`:
/// `rc N`, `running PGID`, `ended PGID` (gone without an exit code), or `none`.
pub fn record_script(key: &str) -> String {
    format!(
        r#"r="${{RUNBOOK_HOST_ROOT:-$HOME}}/.runbook/actions/"{record}
if read -r c 2>/dev/null < "$r.rc"; then echo "rc $c"
elif read -r g 2>/dev/null < "$r.pgid"; then
  if kill -s 0 -- "-$g" 2>/dev/null; then echo "running $g"
  elif read -r c 2>/dev/null < "$r.rc"; then echo "rc $c"
  else echo "ended $g"; fi
else echo none; fi
"#,
        record = runbook_modules::quote(&super::wrapper::record(key))
    )
}

/// Reads [`record_script`]'s answer; `None` when it is not one.
pub fn parse_record(text: &str) -> Option<ScriptFate> {
    let line = text.trim();
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    match word {
        "none" if rest.is_empty() => Some(ScriptFate::NotStarted),
        "rc" => rest.parse().ok().map(ScriptFate::Exited),
        "running" if !rest.is_empty() => Some(ScriptFate::Running {
            pgid: rest.to_owned(),
        }),
        "ended" if !rest.is_empty() => Some(ScriptFate::Vanished {
            pgid: rest.to_owned(),
        }),
        _ => None,
    }
}

/// The message for a connection that was lost while a command ran.
pub fn lost(reason: &str) -> String {
    format!(
        "the connection was lost while the command ran ({reason}); whether the command finished on the host is unknown (it may have, or may still be running there): a resume settles it from the host's record"
    )
}

/// The last thing the master said in its log (`Timeout, server ... not responding.`), if any.
pub fn master_reason(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.trim_end_matches('.').to_owned())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use std::os::unix::process::CommandExt as _;

    use crate::transport::wrapper::{self, WRAPPER};

    #[test]
    fn records_are_read_strictly() {
        assert_eq!(parse_record("none\n"), Some(ScriptFate::NotStarted));
        assert_eq!(parse_record("rc 0\n"), Some(ScriptFate::Exited(0)));
        assert_eq!(parse_record("rc 143\n"), Some(ScriptFate::Exited(143)));
        assert_eq!(
            parse_record("running 42\n"),
            Some(ScriptFate::Running { pgid: "42".into() })
        );
        assert_eq!(
            parse_record("ended 42\n"),
            Some(ScriptFate::Vanished { pgid: "42".into() })
        );
        for bad in [
            "", "rc \n", "rc x", "running", "ended\n", "what 1", "none 1",
        ] {
            assert_eq!(parse_record(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_dead_wrapper_is_never_taken_for_success_or_for_a_dead_host() {
        assert_eq!(ScriptFate::NotStarted.status(), Status::Failed);
        assert_eq!(ScriptFate::Exited(3).status(), Status::Failed);
        assert_eq!(ScriptFate::Exited(0).status(), Status::Unknown);
        assert_eq!(
            ScriptFate::Running { pgid: "1".into() }.status(),
            Status::Unknown
        );
        assert_eq!(
            ScriptFate::Vanished { pgid: "1".into() }.status(),
            Status::Unknown
        );
        assert!(ScriptFate::Exited(3).to_string().contains("code 3"));
        assert!(
            ScriptFate::Running { pgid: "7".into() }
                .to_string()
                .contains("still running")
        );
    }

    #[test]
    fn the_master_log_gives_the_reason() {
        assert_eq!(
            master_reason("debug\nTimeout, server 127.0.0.2 not responding.\n\n").as_deref(),
            Some("Timeout, server 127.0.0.2 not responding")
        );
        assert_eq!(master_reason(" \n"), None);
    }

    /// The record script against the real wrapper: every state it can report.
    #[test]
    fn the_record_script_reads_what_the_wrapper_wrote() {
        let root = tempfile::tempdir().expect("tempdir");
        let record = |key: &str| {
            let out = Command::new("sh")
                .args(["-c", &record_script(key)])
                .env("RUNBOOK_HOST_ROOT", root.path())
                .output()
                .expect("record script");
            parse_record(&String::from_utf8_lossy(&out.stdout))
        };
        assert_eq!(record("r/a@h/1001.0"), Some(ScriptFate::NotStarted));
        let ran = Command::new("sh")
            .args([
                "-c",
                WRAPPER,
                "runbook-wrapper",
                &wrapper::record("r/a@h/1001.0"),
                "exit 4",
            ])
            .process_group(0)
            .env("RUNBOOK_HOST_ROOT", root.path())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("wrapper");
        assert_eq!(ran.status.code(), Some(4));
        assert_eq!(record("r/a@h/1001.0"), Some(ScriptFate::Exited(4)));
        // A group that is gone without an exit code: a pgid no process has.
        let dir = root.path().join(".runbook/actions/r");
        fs_err::create_dir_all(&dir).expect("mkdir");
        fs_err::write(dir.join("b@h,1001.0.pgid"), "2147483646\n").expect("pgid");
        assert_eq!(
            record("r/b@h/1001.0"),
            Some(ScriptFate::Vanished {
                pgid: "2147483646".into()
            })
        );
    }
}
