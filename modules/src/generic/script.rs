//! `script`: run a script body with an interpreter, the body fed on standard input.
//!
//! Use it for logic longer than a one-liner, or in another language (`interpreter: python3`).
//! The body never appears on a command line (so it is not visible in `ps`, has no length limit
//! and needs no quoting) and nothing is left behind on the host: it is piped to the interpreter.
//!
//! Shells (`sh`, `bash`, `dash`, ...) are run as `<interpreter> -s -- <args>`; any other
//! interpreter as `<interpreter> - <args>`, the "program on stdin" convention of `python3`,
//! `perl`, `ruby` and `node`. The interpreter is one word (a name looked up in `PATH` or an
//! absolute path); for options, put them in the script (`set -eu`) or use a wrapper.
//!
//! A script is opaque: it has no [`Module::check`] (`None`), so a dry-run reports that it would
//! run and resume after a crash asks the operator. A script that can tell it has nothing to do
//! should print the [`UNCHANGED`](crate::UNCHANGED) line, so the step reports `ok`.

use std::sync::LazyLock;

use super::Words;
use crate::args::Args;
use crate::command::Command;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `script` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScriptModule;

/// Interpreters that read a program from stdin with `-s` and take arguments after `--`.
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "yash", "posh",
];

crate::params! {
    struct Params {

        source: ParamSpec::required(ParamType::Shell,
            "The script body, fed to the interpreter on standard input",
        ),
        interpreter: ParamSpec::optional(ParamType::String,
            "The program that runs the body: one word, a name in PATH or an absolute path",
        )
        .with_default(Value::Str("sh".into())),
        args: ParamSpec::optional(ParamType::List(Box::new(ParamType::String)),
            "Arguments for the script (`$1`... in a shell, `sys.argv[1:]` in Python)",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for ScriptModule {
    fn name(&self) -> &'static str {
        "script"
    }

    fn description(&self) -> &'static str {
        "Run a script body with an interpreter, the body fed on standard input"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let source = p
            .source
            .present()
            .ok_or_else(|| RenderError::new(p.source.name(), "is required"))?;
        if source.as_str().is_some_and(|text| text.trim().is_empty()) {
            return Err(RenderError::new(
                p.source.name(),
                "the script body is empty",
            ));
        }
        let default = Value::Str("sh".into());
        let interpreter = p.interpreter.present().unwrap_or(&default);
        if let Value::Str(name) = interpreter
            && (name.is_empty() || name.starts_with('-') || name.chars().any(char::is_whitespace))
        {
            return Err(RenderError::new(
                p.interpreter.name(),
                format!(
                    "must be a single word such as `bash` or `/usr/bin/python3`, found `{name}`; \
                     put options in the script itself"
                ),
            ));
        }
        let mut words = Words::default();
        let mut line = vec![words.word(interpreter)];
        let is_shell = interpreter
            .as_str()
            .is_some_and(|name| SHELLS.contains(&name.rsplit('/').next().unwrap_or(name)));
        if is_shell {
            line.extend(["-s".to_owned(), "--".to_owned()]);
        } else {
            line.push("-".to_owned());
        }
        match p.args.present() {
            Some(Value::List(items)) => line.extend(items.iter().map(|v| words.word(v))),
            Some(other) => line.push(words.word(other)),
            None => {}
        }
        let command = Command::new(line.join(" ")).stdin(source.clone());
        Ok(vec![Operation::Remote(words.attach(command))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::testing::{TempDir, check, hostile, list, remote, run, s, stdout};

    #[test]
    fn renders_the_interpreter_and_quoted_args_with_the_body_on_stdin() {
        let body = "echo \"$1\" \"$2\"\n";
        let cmd = remote(
            &ScriptModule,
            &[("source", s(body)), ("args", list(&["a b", "c"]))],
        );
        assert_eq!(cmd.script, "sh -s -- 'a b' c");
        assert_eq!(cmd.stdin, Some(s(body)));
        assert!(cmd.mutating);
        assert_eq!(cmd.to_string(), "sh -s -- 'a b' c <<< (15 bytes)");

        let cmd = remote(
            &ScriptModule,
            &[("source", s("x")), ("interpreter", s("/bin/bash"))],
        );
        assert_eq!(cmd.script, "/bin/bash -s --");
        let cmd = remote(
            &ScriptModule,
            &[
                ("source", s("print(1)")),
                ("interpreter", s("python3")),
                ("args", list(&["-v"])),
            ],
        );
        assert_eq!(cmd.script, "python3 - -v");
    }

    #[test]
    fn runs_with_real_sh() {
        let dir = TempDir::new("script-run");
        let cmd = remote(
            &ScriptModule,
            &[
                ("source", s("set -eu\nprintf '%s|' \"$@\"\n")),
                ("args", list(&["a b", "", "c"])),
            ],
        );
        let out = run(&cmd, dir.path());
        assert!(out.status.success());
        assert_eq!(stdout(&out), "a b||c|");
    }

    #[test]
    fn refuses_an_interpreter_that_is_not_one_word() {
        for bad in ["bash -e", "", "-x", "sh\n"] {
            let args = check(
                &ScriptModule,
                &[("source", s("true")), ("interpreter", s(bad))],
            );
            let err = ScriptModule.render(&args).expect_err(bad);
            assert_eq!(err.arg, Some("interpreter"), "{bad:?}");
        }
        let args = check(&ScriptModule, &[("source", s("\n"))]);
        assert_eq!(
            ScriptModule.render(&args).expect_err("empty body").arg,
            Some("source")
        );
    }

    #[test]
    fn hostile_args_and_interpreter_stay_inert() {
        let dir = TempDir::new("script-hostile");
        let marker = dir.join("pwned");
        for value in hostile(&marker) {
            let cmd = remote(
                &ScriptModule,
                &[
                    ("source", s("printf '%s' \"$1\"")),
                    ("args", list(&[&value])),
                ],
            );
            let out = run(&cmd, dir.path());
            assert_eq!(stdout(&out), value);
            if !value.chars().any(char::is_whitespace) {
                let cmd = remote(
                    &ScriptModule,
                    &[("source", s("true")), ("interpreter", s(&value))],
                );
                let _ = run(&cmd, dir.path());
            }
            assert!(!marker.exists(), "escaped quoting: {value:?}");
        }
    }

    #[test]
    fn secrets_stay_secret() {
        let cmd = remote(
            &ScriptModule,
            &[
                (
                    "source",
                    Value::Secret("printf '%s:%s' hunter2 \"$1\"".into()),
                ),
                ("args", Value::List(vec![Value::Secret("s3cret".into())])),
            ],
        );
        assert_eq!(cmd.script, "sh -s -- \"$RUNBOOK_SECRET_1\"");
        assert!(matches!(cmd.stdin, Some(Value::Secret(_))));
        let shown = cmd.to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        let dir = TempDir::new("script-secret");
        assert_eq!(stdout(&run(&cmd, dir.path())), "hunter2:s3cret");
    }

    #[test]
    fn has_no_check_and_may_report_unchanged() {
        let raw = [(
            "source",
            s("[ -e done ] && { echo 'runbook: unchanged'; exit 0; }\ntouch done"),
        )];
        assert_eq!(ScriptModule.check(&check(&ScriptModule, &raw)), Ok(None));
        let dir = TempDir::new("script-unchanged");
        let cmd = remote(&ScriptModule, &raw);
        assert_eq!(stdout(&run(&cmd, dir.path())), "");
        assert_eq!(
            stdout(&run(&cmd, dir.path())),
            format!("{}\n", crate::UNCHANGED)
        );
    }
}
