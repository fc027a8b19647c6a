//! `gtm.backup`, `gtm.restore` and `gtm.edit_instance`: a replicating instance from a backup of
//! the originating one.
//!
//! Seed, "Replicating Instance Starts from Backup of Originating Instance": `mupip backup
//! -replinst=currentstateA -newjnlfile=prevlink -bkupdbjnl=disable DEFAULT backupA` on A; on
//! the new instance, restore the database, copy the instance file and `mupip replicate
//! -editinstance -name=backupA backupA/gtm.repl`, then start the Receiver Server without
//! `-updateresync`. `backup_repl` is `gtm.backup` with `database: false`.
//!
//! - `gtm.backup` writes `BACKUP_DIR/gtm.repl` (the instance file) and, with `database: true`,
//!   the database files of `regions` into `backup_dir`. Prints `{"backup_dir", "instance_file"}`.
//!   A backup is an event, not a state: no check.
//! - `gtm.restore` copies each region's database file (by its base name) and the instance file
//!   from `backup_dir` into place, then renames the instance file to `instance`. It refuses to
//!   run while the instance has shared memory (run `gtm.shutdown` first). No check.
//! - `gtm.edit_instance` renames an instance file; its check reads the name with `-show`.

use std::sync::LazyLock;

use super::stop::open_ipc;
use super::{Env, check_name, lines, one, run, tool, with_env};
use crate::args::Args;
use crate::command::quote;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

#[derive(Debug, Clone, Copy, Default)]
pub struct BackupModule;

crate::params! {
    struct BackupParams {

        backup_dir: ParamSpec::required(ParamType::Path, "Where the backup goes (created)"),
        database: ParamSpec::optional(ParamType::Bool, "Back up the database files too (false: only the instance file, as backup_repl)")
            .with_default(Value::Bool(true)),
        regions: ParamSpec::optional(ParamType::String, "The regions to back up")
            .with_default(Value::Str("*".into())),
        newjnlfile: ParamSpec::optional(ParamType::Enum(&["prevlink", "noprevlink", "nonewjnlfile"]), "-newjnlfile=prevlink (default), -newjnlfile=noprevlink or -nonewjnlfile")
            .with_default(Value::Str("prevlink".into())),
        bkupdbjnl: ParamSpec::optional(ParamType::Enum(&["disable", "off", "keep"]), "-bkupdbjnl=disable (default: scrub journal information from the backup), off, or keep (no qualifier)")
            .with_default(Value::Str("disable".into())),
    }
}

static BACKUP_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(BackupParams::specs()));

impl Module for BackupModule {
    fn name(&self) -> &'static str {
        "gtm.backup"
    }

    fn description(&self) -> &'static str {
        "Back up the instance file and database (mupip backup -replinstance -newjnlfile=prevlink -bkupdbjnl=disable)"
    }

    fn params(&self) -> &[ParamSpec] {
        &BACKUP_PARAMS
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = BackupParams::read(args);
        let env = Env::new(args)?;
        let dir = p
            .backup_dir
            .str()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let repl = format!("{dir}/gtm.repl");
        let mut words = vec!["backup".to_owned(), format!("-replinstance={repl}")];
        if p.database.bool() != Some(false) {
            match p.newjnlfile.str().as_deref() {
                Some("noprevlink") => words.push("-newjnlfile=noprevlink".to_owned()),
                Some("nonewjnlfile") => words.push("-nonewjnlfile".to_owned()),
                _ => words.push("-newjnlfile=prevlink".to_owned()),
            }
            match p.bkupdbjnl.str().as_deref() {
                Some("off") => words.push("-bkupdbjnl=off".to_owned()),
                Some("keep") => {}
                _ => words.push("-bkupdbjnl=disable".to_owned()),
            }
            words.push(p.regions.str().unwrap_or_else(|| "*".into()));
            words.push(dir.clone());
        }
        let body = [
            format!(
                "mkdir -p {} || rb_fail \"cannot create the backup directory\"",
                quote(&dir)
            ),
            format!("rm -f {}", quote(&repl)),
            run("mupip", &words),
            format!(
                "printf '{{\"backup_dir\": %s, \"instance_file\": %s}}\\n' \"$(rb_json_str {})\" \"$(rb_json_str {})\"",
                quote(&dir),
                quote(&repl)
            ),
        ];
        Ok(one(env.command(self.name(), &lines(&body))))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreModule;

crate::params! {
    struct RestoreParams {

        backup_dir: ParamSpec::required(ParamType::Path,
            "The backup made by gtm.backup",
        ),
        instance_file: ParamSpec::optional(ParamType::Bool,
            "Also install the backed-up instance file, renamed to `instance`",
        )
        .with_default(Value::Bool(true)),
    }
}

static RESTORE_PARAMS: LazyLock<Vec<ParamSpec>> =
    LazyLock::new(|| with_env(RestoreParams::specs()));

impl Module for RestoreModule {
    fn name(&self) -> &'static str {
        "gtm.restore"
    }

    fn description(&self) -> &'static str {
        "Restore database files and the instance file from a backup, renaming the instance file"
    }

    fn params(&self) -> &[ParamSpec] {
        &RESTORE_PARAMS
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = RestoreParams::read(args);
        let env = Env::new(args)?;
        let dir = p.backup_dir.str().unwrap_or_default();
        let mut body = vec![
            format!("rb_b={}", quote(&dir)),
            open_ipc(),
            "[ -z \"$rb_open\" ] || rb_fail \"the instance is in use ($rb_open); shut it down first\"".to_owned(),
            "rb_files=$(\"$gtm_dist/mumps\" -run %XCMD 'set r=$view(\"GVFIRST\") for  quit:r=\"\"  write $view(\"GVFILE\",r),! set r=$view(\"GVNEXT\",r)' 2>&1) || rb_fail \"cannot read $gtmgbldir: $rb_files\"".to_owned(),
            "for rb_f in $rb_files; do".to_owned(),
            "  [ -f \"$rb_b/${rb_f##*/}\" ] || rb_fail \"no ${rb_f##*/} in $rb_b\"".to_owned(),
            "  cp \"$rb_b/${rb_f##*/}\" \"$rb_f.rbtmp\" && mv \"$rb_f.rbtmp\" \"$rb_f\" || rb_fail \"cannot restore $rb_f\"".to_owned(),
            "done".to_owned(),
        ];
        if p.instance_file.bool() != Some(false) {
            body.push("cp \"$rb_b/gtm.repl\" \"$gtm_repl_instance\" || rb_fail \"cannot install the instance file\"".to_owned());
            body.push(format!(
                "rb_run {} \"$gtm_repl_instance\"",
                tool(
                    "mupip",
                    [
                        "replicate",
                        "-editinstance",
                        &format!("-name={}", env.instance)
                    ]
                )
            ));
        }
        Ok(one(env.command(self.name(), &lines(&body))))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct EditInstanceModule;

crate::params! {
    struct EditParams {

        name: ParamSpec::required(ParamType::String, "The new instance name"),
        file: ParamSpec::optional(ParamType::Path,
            "The instance file (default: the instance's, gtm_repl_instance)",
        ),
    }
}

static EDIT_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(EditParams::specs()));

fn edit_parts(args: &Args) -> Result<(String, String), RenderError> {
    let p = EditParams::read(args);
    let name = p.name.str().unwrap_or_default();
    check_name("name", &name, 15)?;
    let file = p
        .file
        .str()
        .map_or_else(|| "\"$gtm_repl_instance\"".to_owned(), |f| quote(&f));
    Ok((name, file))
}

const SHOWN_NAME: &str = "rb_name=$(\"$gtm_dist/mupip\" replicate -editinstance -show \"$rb_file\" 2>&1 | awk '/HDR Instance Name/ { print $NF; exit }')";

impl Module for EditInstanceModule {
    fn name(&self) -> &'static str {
        "gtm.edit_instance"
    }

    fn description(&self) -> &'static str {
        "Rename a replication instance file (mupip replicate -editinstance -name)"
    }

    fn params(&self) -> &[ParamSpec] {
        &EDIT_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let env = Env::new(args)?;
        let (name, file) = edit_parts(args)?;
        let body = [
            format!("rb_file={file}"),
            "[ -f \"$rb_file\" ] || rb_fail \"no instance file $rb_file\"".to_owned(),
            SHOWN_NAME.to_owned(),
            format!(
                "if [ \"$rb_name\" = {} ]; then rb_unchanged; exit 0; fi",
                quote(&name)
            ),
            format!(
                "rb_run {} \"$rb_file\"",
                tool(
                    "mupip",
                    ["replicate", "-editinstance", &format!("-name={name}")]
                )
            ),
        ];
        Ok(one(env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let env = Env::new(args)?;
        let (name, file) = edit_parts(args)?;
        let body = [
            format!("rb_file={file}"),
            "[ -f \"$rb_file\" ] || exit 1".to_owned(),
            SHOWN_NAME.to_owned(),
            format!(
                "if [ \"$rb_name\" = {} ]; then exit 0; else exit 1; fi",
                quote(&name)
            ),
        ];
        Ok(Some(one(env.probe(self.name(), 1, &lines(&body)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;

    #[test]
    fn renders_the_seed_backup() {
        let raw = [
            ("dir", s("/g/A")),
            ("instance", s("A")),
            ("backup_dir", s("/g/backupA")),
            ("regions", s("DEFAULT")),
        ];
        assert!(remotes(&BackupModule, &raw)[0].script.contains(
            "rb_run \"$gtm_dist/mupip\" backup -replinstance=/g/backupA/gtm.repl -newjnlfile=prevlink -bkupdbjnl=disable DEFAULT /g/backupA\n"
        ));
        let raw = [
            ("dir", s("/g/A")),
            ("instance", s("A")),
            ("backup_dir", s("/g/startA")),
            ("database", Value::Bool(false)),
        ];
        assert!(
            remotes(&BackupModule, &raw)[0]
                .script
                .contains("rb_run \"$gtm_dist/mupip\" backup -replinstance=/g/startA/gtm.repl\n")
        );
    }
}
