//! `gtm.mumps`: run M code in the instance's environment (`mumps -run %XCMD 'code'`).
//!
//! Seed: every example's `$gtm_dist/mumps -r %XCMD 'for i=1:1:10 set ^A(i)=i'`. The code is one
//! quoted argument. Its standard output is passed through, or with `json: true` printed as
//! `{"output": ...}`: a number when the output is an integer (`write $order(^A(""),-1)`), else
//! the text (lines joined with `\n`). A failure quotes GT.M's error (`%GTM-E-...`).
//!
//! M code can change anything, so the check cannot tell; `read_only: true` declares the code a
//! query: the step is then a probe, and its check reports "in state".

use std::sync::LazyLock;

use super::{Env, lines, one, tool, with_env};
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

#[derive(Debug, Clone, Copy, Default)]
pub struct MumpsModule;

crate::params! {
    struct Params {

        code: ParamSpec::required(ParamType::String,
            "M code, one line (run with %XCMD)",
        ),
        json: ParamSpec::optional(ParamType::Bool,
            "Print the output as {\"output\": ...}",
        )
        .with_default(Value::Bool(false)),
        read_only: ParamSpec::optional(ParamType::Bool,
            "The code only reads: run it as a probe",
        )
        .with_default(Value::Bool(false)),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(Params::specs()));

/// Escapes `$1` (several lines) as the body of a JSON string.
pub(crate) const JSON_TEXT: &str = r#"rb_json_text() { printf '%s' "$1" | tr -d '\000-\010\013-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' | awk 'BEGIN { ORS = "" } { if (NR > 1) print "\\n"; print }'; }"#;

impl Module for MumpsModule {
    fn name(&self) -> &'static str {
        "gtm.mumps"
    }

    fn description(&self) -> &'static str {
        "Run one line of M code with mumps -run %XCMD, optionally printing its output as JSON"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let env = Env::new(args)?;
        let code = p.code.str().unwrap_or_default();
        if code.trim().is_empty() || code.contains('\n') {
            return Err(RenderError::new(
                p.code.name(),
                "must be one non-empty line of M",
            ));
        }
        let mut body = vec![
            JSON_TEXT.to_owned(),
            "rb_e=$(mktemp) || rb_fail \"mktemp failed\"".to_owned(),
            format!("rb_o=$({} 2>\"$rb_e\"); rb_rc=$?", tool("mumps", ["-run", "%XCMD", &code])),
            "rb_err=$(cat \"$rb_e\"); rm -f \"$rb_e\"".to_owned(),
            "[ -z \"$rb_err\" ] || printf '%s\\n' \"$rb_err\" >&2".to_owned(),
            "rb_gerr=$(printf '%s\\n%s\\n' \"$rb_o\" \"$rb_err\" | grep -E '%[A-Z]+-[EF]-' | head -n 3 | tr '\\n' ' ')".to_owned(),
            "if [ \"$rb_rc\" -ne 0 ] || [ -n \"$rb_gerr\" ]; then [ -z \"$rb_o\" ] || printf '%s\\n' \"$rb_o\" >&2; rb_fail \"mumps failed (exit $rb_rc): $rb_gerr\"; fi".to_owned(),
        ];
        if p.json.bool() == Some(true) {
            body.push("case $rb_o in ''|-|-0*|0?*|*[!0-9-]*|?*-*) printf '{\"output\": \"%s\"}\\n' \"$(rb_json_text \"$rb_o\")\" ;; *) printf '{\"output\": %s}\\n' \"$rb_o\" ;; esac".to_owned());
        } else {
            body.push("[ -z \"$rb_o\" ] || printf '%s\\n' \"$rb_o\"".to_owned());
        }
        let mut cmd = env.command(self.name(), &lines(&body));
        if p.read_only.bool() == Some(true) {
            cmd = env.query(self.name(), &lines(&body));
        }
        Ok(one(cmd))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let p = Params::read(args);
        self.render(args)?;
        if p.read_only.bool() == Some(true) {
            let env = Env::new(args)?;
            return Ok(Some(one(env.probe(self.name(), 2, "exit 0"))));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;

    #[test]
    fn code_is_one_quoted_word_and_output_becomes_json() {
        let dist = crate::gtm::testing::TempDir::new("gtm-mumps");
        fake_dist(dist.path());
        let raw = [
            ("dir", s(&dist.str(""))),
            ("instance", s("A")),
            ("code", s("write $order(^A(\"\"),-1)")),
            ("json", Value::Bool(true)),
        ];
        let cmd = &remotes(&MumpsModule, &raw)[0];
        let line = cmd
            .script
            .lines()
            .find(|l| l.starts_with("rb_o="))
            .expect("the mumps line");
        let word =
            &line[line.find("%XCMD ").expect("xcmd") + 6..line.find(" 2>").expect("redirect")];
        assert_eq!(
            shlex::split(word).expect("one word"),
            ["write $order(^A(\"\"),-1)"],
            "{line}"
        );
        std::fs::write(dist.join("mumps.stdout"), "10\n").expect("out");
        let out = run_with(cmd, dist.path());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"output\": 10}\n");
        std::fs::write(dist.join("mumps.stdout"), "a \"b\"\nc\\d\n").expect("out");
        let out = run_with(cmd, dist.path());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(json["output"], "a \"b\"\nc\\d");
        std::fs::write(
            dist.join("mumps.out"),
            "%GTM-E-UNDEF, Undefined local variable: x\n",
        )
        .expect("err");
        let out = run_with(cmd, dist.path());
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("gtm.mumps: mumps failed (exit 0): %GTM-E-UNDEF")
        );
    }
}
