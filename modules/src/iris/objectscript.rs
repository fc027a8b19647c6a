//! `iris.objectscript`: run ObjectScript in a namespace, `iris session INSTANCE -U NAMESPACE`
//! with the code on standard input.
//!
//! For the steps of seed 000 that have no module of their own (`##class(HS.Director).StopAll()`
//! of section 4.10, `%DeepSee.Utils.%Reset` of 4.23, site-specific settings). Each line of
//! `code` is one terminal command line; the module adds a last line that writes the
//! `RUNBOOK:OK` marker, then `halt`, so do not end the code with `halt` yourself. The step fails
//! when the session cannot start, when the output has a terminal error (`<UNDEFINED>`,
//! `<SYNTAX>`, ...), quoted, or when the marker is missing. The session's output (without the
//! marker) is the step's stdout.
//!
//! A `code` that is a secret as a whole travels in the environment (`IRIS_CODE`), not in the
//! script. It can do anything, so it is not idempotent and has no check.

use std::sync::LazyLock;

use super::{Target, namespace_param, session_params};
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub struct ObjectScriptModule;

crate::params! {
    struct Params {

        code: ParamSpec::required(ParamType::String,
            "ObjectScript, one terminal command per line (no `halt`)",
        ),
        namespace: namespace_param("USER"),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| session_params(Params::specs()));

impl Module for ObjectScriptModule {
    fn name(&self) -> &'static str {
        "iris.objectscript"
    }

    fn description(&self) -> &'static str {
        "Run ObjectScript in a namespace through `iris session`, code on standard input"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let target = Target::session(self.name(), args)?;
        let namespace = super::required_text(p.namespace)?;
        let mut env = Vec::new();
        let code = match p.code.present() {
            Some(secret @ Value::Secret(_)) => {
                env.push(("IRIS_CODE", secret.clone()));
                "\"$IRIS_CODE\"".to_owned()
            }
            _ => quote(super::required_text(p.code)?.trim_end_matches('\n')),
        };
        let script = format!(
            "{}out=$(printf '%s\\n' \\\n  {code} \\\n  {} \\\n  halt | session {}) || fail \"iris session failed: $(last \"$out\")\"\n\
             printf '%s\\n' \"$out\" | sed '/RUNBOOK:OK/d'\n\
             err=$(printf '%s\\n' \"$out\" | grep -E '<[A-Z][A-Z0-9 ]*>' | head -n 1)\n\
             [ -z \"$err\" ] || fail \"ObjectScript error: $err\"\n\
             case $out in *RUNBOOK:OK*) ;; *) fail \"iris session failed: $(last \"$out\")\";; esac",
            target.prelude(1, true),
            quote("write !,\"RUNBOOK\"_\":OK\",!"),
            quote(&namespace),
        );
        let mut cmd = super::vendor_lines::summarised(target.attach(Command::new(script)));
        for (name, value) in env {
            cmd = cmd.env(name, value);
        }
        Ok(vec![Operation::Remote(cmd)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iris::testing::{objectscript, render, s};

    #[test]
    fn sends_the_code_then_the_marker_on_stdin() {
        let cmd = render(
            &ObjectScriptModule,
            &[
                ("instance", s("HSPC")),
                ("namespace", s("HSLIB")),
                (
                    "code",
                    s("do ##class(HS.Director).StopAll()\nwrite \"done\",!\n"),
                ),
            ],
        );
        assert_eq!(
            objectscript(&cmd.script),
            [vec![
                "do ##class(HS.Director).StopAll()\nwrite \"done\",!",
                "write !,\"RUNBOOK\"_\":OK\",!",
                "halt"
            ]]
        );
        assert!(cmd.script.contains(" | session HSLIB) || fail"));
        assert!(!ObjectScriptModule.idempotent());

        let secret = Value::Secret("set ^pw=\"hunter2\"".into());
        let cmd = render(
            &ObjectScriptModule,
            &[("instance", s("HSPC")), ("code", secret.clone())],
        );
        assert!(!cmd.script.contains("hunter2"));
        assert_eq!(cmd.env.get("IRIS_CODE"), Some(&secret));
        assert!(
            cmd.script
                .contains("printf '%s\\n' \\\n  \"$IRIS_CODE\" \\\n")
        );
    }
}
