//! `shell`: run a snippet of shell source with `sh -c`.
//!
//! Use it when a step needs shell features — pipes, redirections, `&&`, globs, variables. The
//! engine renders `cmd` as a [`ParamType::Shell`] template, so every interpolated value is
//! already shell-quoted (unless the runbook opted out with `| unquoted`); the module sends the
//! text as it is. Prefer `command` for a single program: it needs no shell quoting at all.
//!
//! `chdir` and `creates` work as in `command`, as lines of their own before `cmd`, so `cmd` may
//! span several lines or end in a comment. As there, a rerun guarded by `creates` prints the
//! [`UNCHANGED`](crate::UNCHANGED) marker, and [`Module::check`] tests the `creates` path (`None`
//! without it). A `cmd` that is a secret as a whole is fed to `sh -s`
//! on standard input, never put in the script.

use std::sync::LazyLock;

use super::{Words, creates_check, preamble};
use crate::args::Args;
use crate::command::Command;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `shell` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellModule;

crate::params! {
    struct Params {

        cmd: ParamSpec::required(ParamType::Shell,
            "Shell source run with `sh -c`; interpolated values are quoted by the engine",
        ),
        chdir: ParamSpec::optional(ParamType::Path, "Directory to run in"),
        creates: ParamSpec::optional(ParamType::Path,
            "Skip the command when this path exists (a relative path is inside `chdir`)",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for ShellModule {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn description(&self) -> &'static str {
        "Run shell source (pipes, redirections, `&&`) with `sh -c`"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let cmd = p
            .cmd
            .present()
            .ok_or_else(|| RenderError::new(p.cmd.name(), "is required"))?;
        if cmd.as_str().is_some_and(|text| text.trim().is_empty()) {
            return Err(RenderError::new(p.cmd.name(), "is empty"));
        }
        let mut words = Words::default();
        let mut script = preamble(&mut words, p.chdir.present(), p.creates.present());
        let command = match cmd {
            Value::Secret(_) => {
                script.push_str("sh -s");
                Command::new(script).stdin(cmd.clone())
            }
            Value::Str(text) => {
                script.push_str(text);
                Command::new(script)
            }
            other => {
                script.push_str(&other.to_string());
                Command::new(script)
            }
        };
        Ok(vec![Operation::Remote(words.attach(command))])
    }

    /// With `creates`: whether the path exists, as in `command`. Without: `None`.
    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        self.render(args)?;
        let p = Params::read(args);
        Ok(creates_check(p.creates, p.chdir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::testing::{
        TempDir, check, checks, hostile, probe, remote, run, run_check, s, stderr, stdout,
    };
    use crate::module::{CHECK_IN_STATE, CHECK_WOULD_CHANGE};

    #[test]
    fn sends_cmd_as_is() {
        let cmd = remote(
            &ShellModule,
            &[("cmd", s("journalctl -u app | tail -n 5 > /tmp/x"))],
        );
        assert_eq!(cmd.script, "journalctl -u app | tail -n 5 > /tmp/x");
        assert!(cmd.mutating && cmd.stdin.is_none());
        assert!(!ShellModule.idempotent());
    }

    #[test]
    fn guards_precede_a_multi_line_cmd_with_a_comment() {
        let cmd = remote(
            &ShellModule,
            &[
                ("cmd", s("echo one >> log # first\necho two >> log")),
                ("chdir", s("/srv/app")),
                ("creates", s("/srv/app/done")),
            ],
        );
        assert_eq!(
            cmd.script,
            "cd /srv/app || exit 1\n\
             if [ -e /srv/app/done ]; then printf '%s\\n' 'runbook: unchanged'; \
             printf 'runbook: %s exists, skipped\\n' /srv/app/done >&2; exit 0; fi\n\
             echo one >> log # first\necho two >> log"
        );

        let dir = TempDir::new("shell-guard");
        let raw = [
            (
                "cmd",
                s("echo one >> log # first\necho two >> log\ntouch done"),
            ),
            ("chdir", s(&dir.str("."))),
            ("creates", s("done")),
        ];
        let cmd = remote(&ShellModule, &raw);
        let check = probe(&ShellModule, &raw);
        assert_eq!(run_check(&check, dir.path()), CHECK_WOULD_CHANGE);
        let first = run(&cmd, dir.path());
        assert!(first.status.success());
        assert_eq!(stdout(&first), "");
        assert_eq!(run_check(&check, dir.path()), CHECK_IN_STATE);
        let second = run(&cmd, dir.path());
        assert!(second.status.success());
        assert_eq!(stdout(&second), "runbook: unchanged\n");
        assert_eq!(stderr(&second), "runbook: done exists, skipped\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("log")).expect("log"),
            "one\ntwo\n"
        );
    }

    #[test]
    fn refuses_an_empty_cmd() {
        let err = ShellModule
            .render(&check(&ShellModule, &[("cmd", s("  \n"))]))
            .expect_err("empty");
        assert_eq!(err.arg, Some("cmd"));
    }

    #[test]
    fn hostile_guard_paths_stay_inert() {
        let dir = TempDir::new("shell-hostile");
        let marker = dir.join("pwned");
        for value in hostile(&marker) {
            let cmd = remote(
                &ShellModule,
                &[
                    ("cmd", s("true")),
                    ("chdir", s(&value)),
                    ("creates", s(&value)),
                ],
            );
            let _ = run(&cmd, dir.path());
            assert!(
                !marker.exists(),
                "escaped quoting: {value:?}\n{}",
                cmd.script
            );
        }
    }

    #[test]
    fn a_secret_cmd_goes_to_stdin() {
        let secret = Value::Secret("printf '%s' hunter2".into());
        let cmd = remote(&ShellModule, &[("cmd", secret.clone())]);
        assert_eq!(cmd.script, "sh -s");
        assert_eq!(cmd.stdin, Some(secret));
        assert!(!cmd.to_string().contains("hunter2"));
        let dir = TempDir::new("shell-secret");
        assert_eq!(stdout(&run(&cmd, dir.path())), "hunter2");
    }

    #[test]
    fn check_tests_the_guard_only() {
        let cmd = probe(
            &ShellModule,
            &[
                ("cmd", s("make install")),
                ("chdir", s("/srv/app")),
                ("creates", s("/usr/local/bin/app")),
            ],
        );
        assert_eq!(
            cmd.script,
            "cd /srv/app || exit 1\n\
             if [ -e /usr/local/bin/app ]; then exit 0; else exit 1; fi"
        );
        assert!(!cmd.script.contains("make"));
        assert_eq!(checks(&ShellModule, &[("cmd", s("make install"))]), None);
        // A secret cmd never reaches the check at all.
        let cmd = probe(
            &ShellModule,
            &[
                ("cmd", Value::Secret("echo hunter2".into())),
                ("creates", s("/x")),
            ],
        );
        assert!(cmd.stdin.is_none() && !cmd.to_string().contains("hunter2"));
        let args = check(&ShellModule, &[("cmd", s(" ")), ("creates", s("/x"))]);
        assert_eq!(
            ShellModule.check(&args).expect_err("empty").arg,
            Some("cmd")
        );
    }
}
