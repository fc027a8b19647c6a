//! `gtm.health`: `-checkhealth` of the Source and Receiver Servers, as JSON.
//!
//! Seed: the `repl_status` script (`mupip replicate -source -check`, `mupip replicate -receive
//! -check`). Prints `{"source": bool, "mode": "active"|"passive"|"none", "active": N,
//! "passive": N, "receiver": bool, "update": bool}`: `source` is true when a Source Server is
//! alive, `mode` is `active` when one is alive in ACTIVE mode, `receiver` and `update` tell
//! whether the Receiver Server and the Update Process are alive. A missing Journal Pool or
//! Receive Pool means "not alive", not an error.
//!
//! With `require` (any of `source`, `active`, `passive`, `receiver`, `update`), the step fails
//! when one of them is not alive, so it works as a gate; its check then tells whether they are.

use std::sync::LazyLock;

use super::{Env, lines, one, with_env};
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};

#[derive(Debug, Clone, Copy, Default)]
pub struct HealthModule;

const REQUIREMENTS: &[&str] = &["source", "active", "passive", "receiver", "update"];

crate::params! {
    struct Params {
require: ParamSpec::optional(ParamType::List(Box::new(ParamType::Enum(REQUIREMENTS))),
        "Fail unless these are alive: source, active, passive, receiver, update",
    ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(Params::specs()));

/// The shell test of one requirement, after `rb_source_health` and `rb_receiver_health`.
fn test(requirement: &str) -> &'static str {
    match requirement {
        "source" => "[ $((rb_active + rb_passive)) -gt 0 ]",
        "active" => "[ \"$rb_active\" -gt 0 ]",
        "passive" => "[ \"$rb_passive\" -gt 0 ]",
        "receiver" => "[ \"$rb_receiver\" = true ]",
        _ => "[ \"$rb_update\" = true ]",
    }
}

fn requirements(args: &Args) -> Vec<String> {
    let p = Params::read(args);
    p.require
        .list()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

const QUERY: &str = "rb_source_health\nrb_receiver_health";

impl Module for HealthModule {
    fn name(&self) -> &'static str {
        "gtm.health"
    }

    fn description(&self) -> &'static str {
        "Report (as JSON) whether the Source Server, Receiver Server and Update Process are alive"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let env = Env::new(args)?;
        let mut body = vec![
            QUERY.to_owned(),
            "rb_mode=none; [ \"$rb_passive\" -gt 0 ] && rb_mode=passive; [ \"$rb_active\" -gt 0 ] && rb_mode=active".to_owned(),
            "rb_source=false; [ $((rb_active + rb_passive)) -gt 0 ] && rb_source=true".to_owned(),
            "printf '{\"source\": %s, \"mode\": \"%s\", \"active\": %s, \"passive\": %s, \"receiver\": %s, \"update\": %s}\\n' \
             \"$rb_source\" \"$rb_mode\" \"$rb_active\" \"$rb_passive\" \"$rb_receiver\" \"$rb_update\"".to_owned(),
        ];
        for r in requirements(args) {
            body.push(format!("{} || rb_fail \"{r} is not alive\"", test(&r)));
        }
        Ok(one(env.query(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let env = Env::new(args)?;
        let mut body = vec![QUERY.to_owned()];
        for r in requirements(args) {
            body.push(format!("{} || exit 1", test(&r)));
        }
        body.push("exit 0".to_owned());
        Ok(Some(one(env.probe(self.name(), 2, &lines(&body)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;
    use crate::value::Value;

    #[test]
    fn parses_verbatim_checkhealth_output_into_json() {
        let dist = crate::gtm::testing::TempDir::new("gtm-health-json");
        fake_dist(dist.path());
        // Source and Receiver -checkhealth on a replicating instance (V7.0-005, all on stderr).
        std::fs::write(
            dist.join("mupip.out"),
            "Mon Nov 23 11:34:03 2026 : Initiating CHECKHEALTH operation on source server pid [31879] for secondary instance name [dummy]\n\
             PID 31879 Source server is alive in PASSIVE mode\nPID 31881 Receiver server is alive\nPID 31882 Update process is alive\n",
        )
        .expect("sample");
        let raw = [
            ("dir", s(&dist.str(""))),
            ("instance", s("B")),
            ("require", Value::List(vec![s("receiver"), s("active")])),
        ];
        let cmd = &remotes(&HealthModule, &raw)[0];
        assert!(!cmd.mutating);
        let out = run_with(cmd, dist.path());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        assert_eq!(
            json,
            serde_json::json!({"source": true, "mode": "passive", "active": 0, "passive": 1, "receiver": true, "update": true})
        );
        assert_eq!(out.status.code(), Some(1), "active is required");
        assert!(String::from_utf8_lossy(&out.stderr).contains("gtm.health: active is not alive"));
        let probe = check_probe(&HealthModule, &raw);
        assert_eq!(run_with(&probe, dist.path()).status.code(), Some(1));
    }
}
