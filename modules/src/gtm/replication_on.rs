//! `gtm.replication_on`: before-image journaling and replication on every region, and the
//! replication instance file.
//!
//! Seed: the `repl_setup` script (`mupip set -replication=on -region "*"`, `mupip replicate
//! -instance_create -noreplace`) and `suppl_setup` (`-supplementary`). A region is in state when
//! its file header (DSE `dump -fileheader`) says `Replication State ON` and `Journal Before
//! imaging TRUE`; a region that is not gets `mupip set -journal=enable,on,before[,file=...]
//! -replication=on -region R`. The instance file is created only when it does not exist
//! (`-noreplace` also guards against a race), unless `replace: true`, which recreates it (GT.M
//! keeps a backup copy): "Creating a new Replication Instance File".

use std::sync::LazyLock;

use super::{Env, lines, one, run, tool, with_env};
use crate::args::Args;
use crate::command::quote;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

#[derive(Debug, Clone, Copy, Default)]
pub struct ReplicationOnModule;

crate::params! {
    struct Params {

        supplementary: ParamSpec::optional(ParamType::Bool,
            "Create a supplementary instance file (-supplementary), for an SI replicating instance",
        )
        .with_default(Value::Bool(false)),
        replace: ParamSpec::optional(ParamType::Bool,
            "Recreate the instance file even if it exists (GT.M keeps a backup of the old one)",
        )
        .with_default(Value::Bool(false)),
        journal_dir: ParamSpec::optional(ParamType::Path,
            "Directory of the journal files of regions whose journaling is turned on (REGION.mjl); default: GT.M's default, next to the database file",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(Params::specs()));

fn create_instance(env: &Env, args: &Args) -> String {
    let p = Params::read(args);
    let mut words = vec![
        "replicate".to_owned(),
        "-instance_create".to_owned(),
        format!("-name={}", env.instance),
    ];
    if p.supplementary.bool() == Some(true) {
        words.push("-supplementary".to_owned());
    }
    if p.replace.bool() != Some(true) {
        words.push("-noreplace".to_owned());
    }
    run("mupip", words)
}

impl Module for ReplicationOnModule {
    fn name(&self) -> &'static str {
        "gtm.replication_on"
    }

    fn description(&self) -> &'static str {
        "Turn on before-image journaling and replication on all regions and create the replication instance file"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let env = Env::new(args)?;
        let journal = match p.journal_dir.str() {
            Some(dir) => format!(
                "-journal=enable,on,before,file={}/$(printf '%s' \"$rb_r\" | tr 'A-Z' 'a-z').mjl",
                quote(dir.trim_end_matches('/'))
            ),
            None => "-journal=enable,on,before".to_owned(),
        };
        let instance = if p.replace.bool() == Some(true) {
            format!("{}; rb_changed=1", create_instance(&env, args))
        } else {
            format!(
                "if [ ! -f \"$gtm_repl_instance\" ]; then {}; rb_changed=1; fi",
                create_instance(&env, args)
            )
        };
        let body = [
            "rb_changed=".to_owned(),
            "rb_regions".to_owned(),
            "for rb_r in $rb_list; do".to_owned(),
            "  rb_replicated \"$(rb_fhead \"$rb_r\")\" && continue".to_owned(),
            format!(
                "  rb_run {} {journal} -replication=on -region \"$rb_r\"",
                tool("mupip", ["set"])
            ),
            "  rb_changed=1".to_owned(),
            "done".to_owned(),
            instance,
            "[ -n \"$rb_changed\" ] || rb_unchanged".to_owned(),
        ];
        Ok(one(env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let p = Params::read(args);
        let env = Env::new(args)?;
        let mut body = vec![
            "[ -f \"$gtm_repl_instance\" ] || exit 1".to_owned(),
            "[ -f \"$gtmgbldir\" ] || exit 1".to_owned(),
            "rb_regions".to_owned(),
            "for rb_r in $rb_list; do rb_replicated \"$(rb_fhead \"$rb_r\")\" || exit 1; done"
                .to_owned(),
        ];
        if p.replace.bool() == Some(true) {
            body = vec!["exit 1".to_owned()];
        }
        body.push("exit 0".to_owned());
        Ok(Some(one(env.probe(self.name(), 1, &lines(&body)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;

    #[test]
    fn creates_the_instance_file_with_its_name_and_noreplace() {
        let raw = [
            ("dir", s("/srv/gtm/P")),
            ("instance", s("P")),
            ("supplementary", Value::Bool(true)),
            ("journal_dir", s("/srv/jnl")),
        ];
        let cmd = &remotes(&ReplicationOnModule, &raw)[0];
        assert!(
            cmd.script.contains(
                "if [ ! -f \"$gtm_repl_instance\" ]; then rb_run \"$gtm_dist/mupip\" replicate \
             -instance_create -name=P -supplementary -noreplace; rb_changed=1; fi"
            ),
            "{}",
            cmd.script
        );
        assert!(cmd.script.contains(
            "rb_run \"$gtm_dist/mupip\" set -journal=enable,on,before,file=/srv/jnl/$(printf '%s' \"$rb_r\" | tr 'A-Z' 'a-z').mjl -replication=on -region \"$rb_r\""
        ), "{}", cmd.script);
    }

    #[test]
    fn a_region_is_replicated_with_replication_on_and_before_images() {
        // Verbatim from `dse dump -fileheader` (V7.0-005).
        let on = "  Journal State                       [inactive] ON  Journal Before imaging                TRUE\n  Replication State                              ON  Region Seqno            0x0000000000000001\n";
        let was_on = on.replace(
            "                   ON  Region",
            "               WAS_ON  Region",
        );
        let nobefore = on.replace("TRUE", "FALSE");
        for (text, want) in [(on.to_owned(), true), (was_on, false), (nobefore, false)] {
            let script = format!(
                "RB_MODULE=t; RB_FAIL=2\n{}\nrb_replicated \"$1\"",
                crate::gtm::PRELUDE
            );
            let ok = std::process::Command::new("/bin/sh")
                .args(["-c", &script, "sh", &text])
                .status()
                .expect("sh")
                .success();
            assert_eq!(ok, want, "{text}");
        }
    }
}
