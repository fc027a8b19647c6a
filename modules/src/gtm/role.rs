//! `gtm.role`: what an instance is doing now, as JSON.
//!
//! Prints `{"role": "originating"|"replicating"|"supplementary"|"none", "source":
//! "active"|"passive"|"none", "receiver": bool, "supplementary": bool, "root_primary": bool,
//! "seqno": N, "instance_file": bool}`. The role comes from the live servers (`-checkhealth`):
//! a Receiver Server makes the instance `replicating` (`supplementary` when its instance file
//! is a supplementary one); otherwise an active Source Server makes it `originating`; a lone
//! passive Source Server is a `replicating` instance whose Receiver Server is down; nothing
//! alive is `none`, and so is an instance directory that does not exist or has no replication
//! instance file (an instance that runs alone). `supplementary`, `root_primary` and `seqno` come from the instance file
//! (`mupip replicate -editinstance -show`).

use crate::command::quote;
use std::sync::LazyLock;

use super::{Env, lines, one, with_env};
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::ParamSpec;

#[derive(Debug, Clone, Copy, Default)]
pub struct RoleModule;

crate::params! {
    struct Params {
,
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(Params::specs()));

impl Module for RoleModule {
    fn name(&self) -> &'static str {
        "gtm.role"
    }

    fn description(&self) -> &'static str {
        "Report whether the instance is originating, replicating, supplementary or none, as JSON"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let env = Env::new(args)?;
        // No instance directory, or no replication instance file: nothing replicates there
        // (a new mirror's hosts, an instance that runs alone).
        let absent = "{\"role\": \"none\", \"source\": \"none\", \"receiver\": false, \"supplementary\": false, \"root_primary\": false, \"seqno\": 0, \"instance_file\": false}";
        let alone = format!(
            "[ -f \"$gtm_repl_instance\" ] || {{ printf '%s\\n' {}; exit 0; }}",
            quote(absent)
        );
        let body = [
            alone.as_str(),
            "rb_source_health; rb_receiver_health",
            "rb_file=false; rb_supp=false; rb_root=false; rb_seqno=0",
            "if [ -f \"$gtm_repl_instance\" ]; then",
            "  rb_file=true",
            "  rb_run \"$gtm_dist/mupip\" replicate -editinstance -show \"$gtm_repl_instance\" 2>/dev/null",
            "  printf '%s\\n' \"$rb_out\" | grep -Eq 'HDR Supplementary Instance +TRUE' && rb_supp=true",
            "  printf '%s\\n' \"$rb_out\" | grep -Eq 'HDR Root Primary +TRUE' && rb_root=true",
            "  rb_seqno=$(printf '%s\\n' \"$rb_out\" | awk '/HDR Journal Sequence Number/ { print $5; exit }')",
            "fi",
            "rb_source=none; [ \"$rb_passive\" -gt 0 ] && rb_source=passive; [ \"$rb_active\" -gt 0 ] && rb_source=active",
            "if [ \"$rb_receiver\" = true ]; then rb_role=replicating; [ \"$rb_supp\" = true ] && rb_role=supplementary",
            "elif [ \"$rb_active\" -gt 0 ]; then rb_role=originating",
            "elif [ \"$rb_passive\" -gt 0 ]; then rb_role=replicating",
            "else rb_role=none; fi",
            "printf '{\"role\": \"%s\", \"source\": \"%s\", \"receiver\": %s, \"supplementary\": %s, \"root_primary\": %s, \"seqno\": %s, \"instance_file\": %s}\\n' \\\n  \"$rb_role\" \"$rb_source\" \"$rb_receiver\" \"$rb_supp\" \"$rb_root\" \"${rb_seqno:-0}\" \"$rb_file\"",
        ]
        .map(str::to_owned);
        Ok(one(env.query_or(self.name(), &lines(&body), absent)))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let env = Env::new(args)?;
        Ok(Some(one(env.probe(self.name(), 2, "exit 0"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::{TempDir, fake_dist, remotes, run_with, s};

    #[test]
    fn a_missing_instance_directory_is_role_none() {
        let tmp = TempDir::new("role-none");
        let dist = tmp.join("dist");
        std::fs::create_dir_all(&dist).expect("dist");
        fake_dist(&dist);
        let cmds = remotes(
            &RoleModule,
            &[("dir", s(&tmp.str("nowhere"))), ("instance", s("A"))],
        );
        let out = run_with(&cmds[0], &dist);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        assert_eq!(json["role"], "none");
        assert_eq!(json["instance_file"], false);
        assert!(!tmp.join("nowhere").exists(), "a probe creates nothing");
    }
}
