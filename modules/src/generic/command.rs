//! `command`: run one program with its arguments, without a shell.
//!
//! Use it whenever a step runs a single program: every word of `argv` is quoted, so a value
//! interpolated into it (a file name with spaces, a password with `$`) arrives as exactly one
//! argument and no shell syntax in it is interpreted. Reach for `shell` only when the step needs
//! pipes, redirections or `&&`.
//!
//! `creates` is the idempotency guard: when the path exists the command is not run, and the
//! step prints the [`UNCHANGED`](crate::UNCHANGED) marker (so it reports `ok`), with
//! `runbook: <path> exists, skipped` on stderr. A `command` without `creates` is not idempotent,
//! and since [`Module::idempotent`] cannot look at arguments it always answers `false`; resume
//! relies on the guard instead: with `creates`, [`Module::check`] tests the path (exit 0 when it
//! exists, 1 when not), and without it there is no check (`None`).

use std::sync::LazyLock;

use super::{Words, creates_check, preamble};
use crate::args::Args;
use crate::command::Command;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `command` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandModule;

crate::params! {
    struct Params {

        argv: ParamSpec::required(ParamType::List(Box::new(ParamType::String)),
            "The program and its arguments, one word each; nothing in them is shell syntax",
        ),
        chdir: ParamSpec::optional(ParamType::Path, "Directory to run the program in"),
        creates: ParamSpec::optional(ParamType::Path,
            "Skip the program when this path exists (a relative path is inside `chdir`)",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for CommandModule {
    fn name(&self) -> &'static str {
        "command"
    }

    fn description(&self) -> &'static str {
        "Run one program with its arguments, each quoted, without a shell"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let argv = match p.argv.get() {
            Some(Value::List(items)) => items.as_slice(),
            // Known at run time only: show it as one placeholder word.
            Some(deferred @ Value::Deferred(_)) => std::slice::from_ref(deferred),
            _ => &[],
        };
        match argv.first() {
            None => {
                return Err(RenderError::new(
                    p.argv.name(),
                    "must name at least the program to run",
                ));
            }
            Some(Value::Str(program)) if program.is_empty() => {
                return Err(RenderError::new(
                    p.argv.name(),
                    "the program name (first word) is empty",
                ));
            }
            Some(_) => {}
        }
        let mut words = Words::default();
        let mut script = preamble(&mut words, p.chdir.present(), p.creates.present());
        let line: Vec<String> = argv.iter().map(|v| words.word(v)).collect();
        script.push_str(&line.join(" "));
        Ok(vec![Operation::Remote(words.attach(Command::new(script)))])
    }

    /// With `creates`: a probe that exits 0 when the path exists and 1 when not. Without: `None`.
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
        TempDir, check, checks, hostile, list, probe, remote, run, run_check, s, stderr, stdout,
    };
    use crate::module::{CHECK_IN_STATE, CHECK_WOULD_CHANGE, UNCHANGED};

    #[test]
    fn renders_each_word_quoted() {
        let cmd = remote(
            &CommandModule,
            &[("argv", list(&["systemctl", "restart", "my app"]))],
        );
        assert_eq!(cmd.script, "systemctl restart 'my app'");
        assert_eq!(
            cmd.script,
            Command::argv(["systemctl", "restart", "my app"]).script
        );
        assert!(cmd.mutating);
        assert!(cmd.env.is_empty() && cmd.stdin.is_none());
        assert!(!CommandModule.idempotent());
    }

    #[test]
    fn renders_chdir_and_creates_as_a_preamble() {
        let cmd = remote(
            &CommandModule,
            &[
                ("argv", list(&["make", "build"])),
                ("chdir", s("/srv/app")),
                ("creates", s("build/out")),
            ],
        );
        assert_eq!(
            cmd.script,
            "cd /srv/app || exit 1\n\
             if [ -e build/out ]; then printf '%s\\n' 'runbook: unchanged'; \
             printf 'runbook: %s exists, skipped\\n' build/out >&2; exit 0; fi\n\
             make build"
        );
    }

    #[test]
    fn refuses_an_empty_argv() {
        let args = check(&CommandModule, &[("argv", list(&[]))]);
        let err = CommandModule.render(&args).expect_err("empty argv");
        assert_eq!(err.arg, Some("argv"));
        let args = check(&CommandModule, &[("argv", list(&["", "x"]))]);
        assert_eq!(
            CommandModule.render(&args).expect_err("empty program").arg,
            Some("argv")
        );
    }

    #[test]
    fn deferred_argv_renders_as_a_placeholder() {
        let cmd = remote(
            &CommandModule,
            &[("argv", Value::Deferred("prep.argv".into()))],
        );
        assert_eq!(cmd.script, "'<prep.argv>'");
    }

    #[test]
    fn hostile_values_stay_single_inert_words() {
        let dir = TempDir::new("command-hostile");
        let marker = dir.join("pwned");
        for value in hostile(&marker) {
            let cmd = remote(&CommandModule, &[("argv", list(&["printf", "%s", &value]))]);
            let words = shlex::split(&cmd.script).expect("re-parses");
            assert_eq!(words, ["printf", "%s", value.as_str()]);
            let out = run(&cmd, dir.path());
            assert!(out.status.success(), "{value:?}");
            assert_eq!(stdout(&out), value);

            let cmd = remote(
                &CommandModule,
                &[
                    ("argv", list(&["true"])),
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
    fn creates_makes_a_rerun_a_no_op() {
        let dir = TempDir::new("command-creates");
        let cmd = remote(
            &CommandModule,
            &[
                ("argv", list(&["sh", "-c", "echo ran >> log; touch made"])),
                ("chdir", s(&dir.str("."))),
                ("creates", s("made")),
            ],
        );
        let first = run(&cmd, dir.path());
        assert!(first.status.success());
        assert_eq!(stdout(&first), "");
        let second = run(&cmd, dir.path());
        assert!(second.status.success());
        assert_eq!(stdout(&second), "runbook: unchanged\n");
        assert_eq!(stderr(&second), "runbook: made exists, skipped\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("log")).expect("log"),
            "ran\n"
        );
    }

    #[test]
    fn a_missing_chdir_stops_the_command() {
        let dir = TempDir::new("command-chdir");
        let cmd = remote(
            &CommandModule,
            &[
                ("argv", list(&["touch", "made"])),
                ("chdir", s(&dir.str("missing"))),
            ],
        );
        assert!(!run(&cmd, dir.path()).status.success());
        assert!(!dir.join("made").exists());
    }

    #[test]
    fn secrets_travel_in_the_environment() {
        let cmd = remote(
            &CommandModule,
            &[(
                "argv",
                Value::List(vec![
                    s("printf"),
                    s("%s"),
                    Value::Secret("hun'ter 2".into()),
                ]),
            )],
        );
        assert_eq!(cmd.script, "printf '%s' \"$RUNBOOK_SECRET_1\"");
        assert!(!cmd.to_string().contains("hun'ter"));
        let dir = TempDir::new("command-secret");
        assert_eq!(stdout(&run(&cmd, dir.path())), "hun'ter 2");
    }

    #[test]
    fn check_renders_the_guard_as_a_probe() {
        let raw = [
            ("argv", list(&["make", "build"])),
            ("chdir", s("/srv/my app")),
            ("creates", s("-out/it's")),
        ];
        let cmd = probe(&CommandModule, &raw);
        assert_eq!(
            cmd.script,
            "cd '/srv/my app' || exit 1\n\
             if [ -e \"./-out/it's\" ]; then exit 0; else exit 1; fi"
        );
        assert!(cmd.env.is_empty() && cmd.stdin.is_none());
        let cmd = probe(
            &CommandModule,
            &[("argv", list(&["true"])), ("creates", s("/srv/done"))],
        );
        assert_eq!(
            cmd.script,
            "if [ -e /srv/done ]; then exit 0; else exit 1; fi"
        );
    }

    #[test]
    fn without_creates_there_is_no_check() {
        assert_eq!(checks(&CommandModule, &[("argv", list(&["true"]))]), None);
        assert_eq!(
            checks(
                &CommandModule,
                &[("argv", list(&["true"])), ("chdir", s("/srv"))]
            ),
            None
        );
        // Arguments render cannot use are refused by check too.
        let args = check(&CommandModule, &[("argv", list(&[])), ("creates", s("/x"))]);
        assert_eq!(
            CommandModule.check(&args).expect_err("empty argv").arg,
            Some("argv")
        );
    }

    #[test]
    fn check_then_apply_then_check_with_real_sh() {
        let dir = TempDir::new("command-check");
        std::fs::create_dir(dir.join("work")).expect("mkdir");
        let raw = [
            ("argv", list(&["sh", "-c", "echo ran >> log; touch made"])),
            ("chdir", s(&dir.str("work"))),
            ("creates", s("made")),
        ];
        let check = probe(&CommandModule, &raw);
        let apply = remote(&CommandModule, &raw);
        assert_eq!(run_check(&check, dir.path()), CHECK_WOULD_CHANGE);
        let first = run(&apply, dir.path());
        assert!(first.status.success());
        assert!(!stdout(&first).lines().any(|l| l == UNCHANGED));
        assert_eq!(run_check(&check, dir.path()), CHECK_IN_STATE);
        let second = run(&apply, dir.path());
        assert!(stdout(&second).lines().any(|l| l == UNCHANGED));
        assert_eq!(
            std::fs::read_to_string(dir.join("work/log")).expect("log"),
            "ran\n"
        );
        std::fs::remove_file(dir.join("work/made")).expect("rm");
        assert_eq!(run_check(&check, dir.path()), CHECK_WOULD_CHANGE);

        // A chdir that cannot be entered: the step would run (and fail), it is not in state.
        let raw = [
            ("argv", list(&["true"])),
            ("chdir", s(&dir.str("missing"))),
            ("creates", s(&dir.str("work/log"))),
        ];
        assert_eq!(
            run_check(&probe(&CommandModule, &raw), dir.path()),
            CHECK_WOULD_CHANGE
        );
    }

    #[test]
    fn hostile_guard_paths_stay_inert_in_the_check() {
        let dir = TempDir::new("command-check-hostile");
        let marker = dir.join("pwned");
        for value in hostile(&marker) {
            let cmd = probe(
                &CommandModule,
                &[
                    ("argv", list(&["true"])),
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
}
