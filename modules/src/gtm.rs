//! The GT.M replication modules (`gtm.*`): typed steps for the procedures of the FIS GT.M
//! "Database Replication" chapter (`004_8da226f5892b92ae.txt`), one module per operation of
//! the chapter's example scripts (`db_create`, `repl_setup`, `originating_start`,
//! `replicating_start`, `repl_status`, `rollback`, `originating_stop`, `replicating_stop`,
//! `backup_repl`) and of its switchover, rollback and rolling-upgrade sections.
//!
//! Why typed modules rather than `shell` steps: the compiler checks every qualifier before a
//! host is touched, every value reaches `mupip` as one quoted word, each step has a read-only
//! query (`checkhealth`, file headers, instance file) so dry-run and resume know whether it
//! would change anything, and results come back as JSON (`health.values.receiver`) instead of
//! text a later step must grep.
//!
//! # The instance environment
//!
//! The seed's `env` script sets the environment every GT.M command of an instance needs. Every
//! `gtm.*` module takes the same environment parameters ([`env_params`]) and passes them to each
//! command it renders as environment variables (never in the script text):
//!
//! | parameter | variable | default |
//! | --- | --- | --- |
//! | `dir` | (the working directory) | required: the instance directory |
//! | `instance` | `gtm_repl_instname` | required: the replication instance name |
//! | `gtm_dist` | `gtm_dist` | the Debian `fis-gtm` install |
//! | `repl_instance` | `gtm_repl_instance` | `DIR/gtm.repl` |
//! | `gld` | `gtmgbldir` | `DIR/gtm.gld` |
//! | `routines` | `gtmroutines` | `DIR $gtm_dist/libgtmutil.so` |
//! | `log_dir` | `gtm_log` | `DIR/log` |
//! | `tmp_dir` | `gtm_tmp` | `DIR/tmp` |
//!
//! Commands run in `dir`. Mutating commands create `log_dir` and `tmp_dir`; probes only use
//! them when they exist, and change nothing.
//!
//! # Scripts
//!
//! Each rendered script calls a few POSIX `sh` helpers ([`PRELUDE`], sent to each host once per
//! run and sourced by the wrapper: [`HELPERS`]): `rb_run` runs a GT.M
//! tool with its output on standard error and, when it fails, fails the step with a message
//! that quotes GT.M's own error lines (`gtm.source_start: mupip failed (exit 250):
//! %GTM-E-RECVPOOLSETUP, ...`). Vendor output is parsed inside the script (`sed`, `awk`), and
//! a module with results prints one JSON object as its last line of standard output.

mod apply_lost;
mod backlog;
mod backup;
mod database_create;
mod health;
mod journal;
mod mumps;
mod replication_on;
mod role;
mod rollback;
mod seqno;
mod servers;
mod shutdown;
mod stop;
mod vendor_lines;

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use apply_lost::ApplyLostModule;
pub use backlog::{BacklogModule, WaitBacklogModule};
pub use backup::{BackupModule, EditInstanceModule, RestoreModule};
pub use database_create::DatabaseCreateModule;
pub use health::HealthModule;
pub use journal::JournalModule;
pub use mumps::MumpsModule;
pub use replication_on::ReplicationOnModule;
pub use role::RoleModule;
pub use rollback::RollbackModule;
pub use seqno::{SeqnoModule, SetSeqnoModule};
pub use servers::{ReceiverStartModule, SourceStartModule};
pub use shutdown::ShutdownModule;
pub use stop::{ReceiverStopModule, RundownModule, SourceStopModule};

use crate::arg::Arg;
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{Module, Operation, RenderError, UNCHANGED};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// Every GT.M module, for the registry.
pub fn all() -> Vec<Box<dyn Module>> {
    vec![
        Box::new(DatabaseCreateModule),
        Box::new(ReplicationOnModule),
        Box::new(SourceStartModule),
        Box::new(ReceiverStartModule),
        Box::new(HealthModule),
        Box::new(BacklogModule),
        Box::new(WaitBacklogModule),
        Box::new(SourceStopModule),
        Box::new(ReceiverStopModule),
        Box::new(RundownModule),
        Box::new(ShutdownModule),
        Box::new(MumpsModule),
        Box::new(RoleModule),
        Box::new(RollbackModule),
        Box::new(ApplyLostModule),
        Box::new(BackupModule),
        Box::new(RestoreModule),
        Box::new(EditInstanceModule),
        Box::new(JournalModule),
        Box::new(SeqnoModule),
        Box::new(SetSeqnoModule),
    ]
}

/// Where the Debian package `fis-gtm` installs GT.M.
pub const DEFAULT_GTM_DIST: &str = "/usr/lib/x86_64-linux-gnu/fis-gtm/V7.0-005_x86_64";

/// The environment parameters every `gtm.*` module takes, followed by its own.
pub(crate) fn with_env(own: Vec<ParamSpec>) -> Vec<ParamSpec> {
    let mut params = env_params();
    params.extend(own);
    params
}

crate::params! {
    /// The instance environment parameters (see the module docs).
    pub struct EnvParams {
        dir: ParamSpec::required(ParamType::Path,
            "The instance directory: commands run there; default home of gtm.gld, gtm.dat, gtm.repl, log/ and tmp/",
        ),
        instance: ParamSpec::required(ParamType::String,
            "The replication instance name (gtm_repl_instname)",
        ),
        gtm_dist: ParamSpec::optional(ParamType::Path,
            "The GT.M installation (gtm_dist)",
        )
        .with_default(Value::Str(DEFAULT_GTM_DIST.to_owned())),
        repl_instance: ParamSpec::optional(ParamType::Path,
            "The replication instance file (gtm_repl_instance; default DIR/gtm.repl)",
        ),
        gld: ParamSpec::optional(ParamType::Path,
            "The global directory (gtmgbldir; default DIR/gtm.gld)",
        ),
        routines: ParamSpec::optional(ParamType::String,
            "The routine search path (gtmroutines; default `DIR $gtm_dist/libgtmutil.so`)",
        ),
        log_dir: ParamSpec::optional(ParamType::Path,
            "Directory of GT.M and server logs (gtm_log; default DIR/log)",
        ),
        tmp_dir: ParamSpec::optional(ParamType::Path,
            "GT.M's temporary directory (gtm_tmp; default DIR/tmp)",
        ),
    }
}

pub fn env_params() -> Vec<ParamSpec> {
    EnvParams::specs()
}

/// The instance environment of a step, resolved from its arguments.
#[derive(Clone, Debug)]
pub(crate) struct Env {
    pub dir: String,
    pub instance: String,
    pub gtm_dist: String,
    pub repl_instance: String,
    pub gld: String,
    pub routines: String,
    pub log_dir: String,
    pub tmp_dir: String,
}

impl Env {
    pub fn new(args: &Args) -> Result<Self, RenderError> {
        let p = EnvParams::read(args);
        let dir = p
            .dir
            .str()
            .ok_or_else(|| RenderError::new(p.dir.name(), "the instance directory is required"))?;
        let dir = dir.trim_end_matches('/').to_owned();
        if dir.is_empty() || !dir.starts_with('/') && !dir.starts_with('<') {
            return Err(RenderError::new(
                p.dir.name(),
                "must be an absolute path (GT.M records file names in the global directory)",
            ));
        }
        let instance = p.instance.str().unwrap_or_default();
        check_name("instance", &instance, 15)?;
        let gtm_dist = p
            .gtm_dist
            .str()
            .unwrap_or_else(|| DEFAULT_GTM_DIST.to_owned());
        let or = |arg: Arg<'_>, default: String| arg.str().unwrap_or(default);
        Ok(Self {
            repl_instance: or(p.repl_instance, format!("{dir}/gtm.repl")),
            gld: or(p.gld, format!("{dir}/gtm.gld")),
            routines: or(p.routines, format!("{dir} {gtm_dist}/libgtmutil.so")),
            log_dir: or(p.log_dir, format!("{dir}/log")),
            tmp_dir: or(p.tmp_dir, format!("{dir}/tmp")),
            gtm_dist,
            instance,
            dir,
        })
    }

    /// The environment variables of every command.
    fn vars(&self) -> BTreeMap<String, Value> {
        [
            ("RB_DIR", &self.dir),
            ("gtm_dist", &self.gtm_dist),
            ("gtm_repl_instname", &self.instance),
            ("gtm_repl_instance", &self.repl_instance),
            ("gtmgbldir", &self.gld),
            ("gtmroutines", &self.routines),
            ("gtm_log", &self.log_dir),
            ("gtm_tmp", &self.tmp_dir),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::Str(v.clone())))
        .collect()
    }

    /// A mutating command of `module`: creates the instance, log and tmp directories, enters
    /// the instance directory, then runs `body`.
    pub fn command(&self, module: &str, body: &str) -> Command {
        let script = format!(
            "{}\nmkdir -p \"$RB_DIR\" \"$gtm_log\" \"$gtm_tmp\" || rb_fail \"cannot create the instance directories\"\n\
             cd \"$RB_DIR\" || rb_fail \"cannot enter $RB_DIR\"\n{body}",
            prelude(module, 1)
        );
        let mut cmd = Command::new(script)
            .summarised(vendor_lines::vendor_lines(body))
            .helper(HELPERS);
        cmd.env = self.vars();
        cmd
    }

    /// A read-only probe of `module` for [`Module::check`]: enters the instance directory (or
    /// exits `missing_dir` when there is none) and runs `body`. It fails with status 2.
    pub fn probe(&self, module: &str, missing_dir: i32, body: &str) -> Command {
        let script = format!(
            "{}\n[ -d \"$gtm_log\" ] || unset gtm_log\n[ -d \"$gtm_tmp\" ] || unset gtm_tmp\n\
             cd \"$RB_DIR\" 2>/dev/null || exit {missing_dir}\n{body}",
            prelude(module, 2)
        );
        let mut cmd = Command::probe(script)
            .summarised(vendor_lines::vendor_lines(body))
            .helper(HELPERS);
        cmd.env = self.vars();
        cmd
    }

    /// [`Env::query`] for a question a missing instance directory answers: then it prints
    /// `absent` (one line, as is) and succeeds.
    pub fn query_or(&self, module: &str, body: &str, absent: &str) -> Command {
        let mut cmd = self.query(module, body);
        cmd.script = cmd.script.replacen(
            "cd \"$RB_DIR\" || rb_fail",
            &format!(
                "[ -d \"$RB_DIR\" ] || {{ printf '%s\\n' {}; exit 0; }}\ncd \"$RB_DIR\" || rb_fail",
                quote(absent)
            ),
            1,
        );
        cmd
    }

    /// A read-only command with results (JSON on stdout): like [`Env::probe`] but a missing
    /// instance directory is an error.
    pub fn query(&self, module: &str, body: &str) -> Command {
        let script = format!(
            "{}\n[ -d \"$gtm_log\" ] || unset gtm_log\n[ -d \"$gtm_tmp\" ] || unset gtm_tmp\n\
             cd \"$RB_DIR\" || rb_fail \"no instance directory $RB_DIR\"\n{body}",
            prelude(module, 1)
        );
        let mut cmd = Command::probe(script)
            .summarised(vendor_lines::vendor_lines(body))
            .helper(HELPERS);
        cmd.env = self.vars();
        cmd
    }
}

/// The helpers every script starts with. `RB_FAIL` is the exit status of a failure.
pub(crate) const PRELUDE: &str = r#"rb_fail() { printf '%s: %s\n' "$RB_MODULE" "$*" >&2; exit "$RB_FAIL"; }
rb_run() {
  rb_out=$("$@" 2>&1); rb_rc=$?
  [ -z "$rb_out" ] || printf '%s\n' "$rb_out" >&2
  [ "$rb_rc" -eq 0 ] && return 0
  rb_msg=$(printf '%s\n' "$rb_out" | grep -E '%[A-Z]+-[EF]-' | head -n 3 | tr '\n' ' ')
  [ -n "$rb_msg" ] || rb_msg=$(printf '%s\n' "$rb_out" | tail -n 1)
  rb_fail "${1##*/} failed (exit $rb_rc): $rb_msg"
}
rb_unchanged() { printf '%s\n' 'runbook: unchanged'; }
rb_json_str() { printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed 's/[\\"]/\\&/g')"; }
rb_source_health() {
  rb_sh=$("$gtm_dist/mupip" replicate -source -checkhealth "$@" 2>&1)
  case $rb_sh in
    *NOJNLPOOL*|*REPLINSTSECNONE*|*SRCSRVNOTEXIST*) ;;
    *%GTM-E-*|*%GTM-F-*|*%YDB-E-*) rb_fail "mupip -source -checkhealth failed: $(printf '%s\n' "$rb_sh" | grep -E '%[A-Z]+-[EF]-' | head -n 1)" ;;
  esac
  rb_active=$(printf '%s\n' "$rb_sh" | grep -c 'Source server is alive in ACTIVE mode')
  rb_passive=$(printf '%s\n' "$rb_sh" | grep -c 'Source server is alive in PASSIVE mode')
}
rb_regions() {
  rb_list=$("$gtm_dist/mumps" -run %XCMD 'set r=$view("GVFIRST") for  quit:r=""  write r,! set r=$view("GVNEXT",r)' 2>&1) ||
    rb_fail "cannot read the regions of $gtmgbldir: $rb_list"
}
rb_fhead() { printf 'find -region=%s\ndump -fileheader\n' "$1" | "$gtm_dist/dse" 2>&1; }
rb_replicated() {
  printf '%s\n' "$1" | grep -Eq 'Replication State +ON( |$)' &&
    printf '%s\n' "$1" | grep -Eq 'Journal Before imaging +TRUE'
}
rb_receiver_health() {
  rb_rh=$("$gtm_dist/mupip" replicate -receiver -checkhealth 2>&1)
  case $rb_rh in
    *NORECVPOOL*|*NOJNLPOOL*) ;;
    *%GTM-E-*|*%GTM-F-*|*%YDB-E-*) rb_fail "mupip -receiver -checkhealth failed: $(printf '%s\n' "$rb_rh" | grep -E '%[A-Z]+-[EF]-' | head -n 1)" ;;
  esac
  rb_receiver=false; rb_update=false
  case $rb_rh in *'Receiver server is alive'*) rb_receiver=true ;; esac
  case $rb_rh in *'Update process is alive'*) rb_update=true ;; esac
}"#;

/// The shared helpers of every GT.M command ([`PRELUDE`]), sent to each host once per run.
pub(crate) const HELPERS: crate::command::Helper = crate::command::Helper {
    name: "gtm",
    text: PRELUDE,
};

/// The first line of a script: the module's name and failure status for [`PRELUDE`]'s
/// `rb_fail` (the helpers themselves come with the wrapper: [`HELPERS`]).
fn prelude(module: &str, fail: i32) -> String {
    format!("RB_MODULE={}; RB_FAIL={fail}", quote(module))
}

/// `"$gtm_dist/TOOL"` followed by the quoted words: a command line for [`PRELUDE`]'s `rb_run`.
pub(crate) fn tool<I, S>(tool: &str, words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut line = format!("\"$gtm_dist/{tool}\"");
    for word in words {
        line.push(' ');
        line.push_str(&word_of(word.as_ref()));
    }
    line
}

/// One shell word for a GT.M command line: left as it is when it only has characters no shell
/// treats specially after the first word (so `-secondary=host:4001` reads as in the seed),
/// otherwise quoted with [`quote`].
pub(crate) fn word_of(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=,@%+-".contains(c));
    if plain { word.to_owned() } else { quote(word) }
}

/// `rb_run "$gtm_dist/TOOL" WORDS...`
pub(crate) fn run<I, S>(t: &str, words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    format!("rb_run {}", tool(t, words))
}

/// Checks a GT.M name (instance, region): a letter, then letters, digits and `_`.
pub(crate) fn check_name(arg: &'static str, name: &str, max: usize) -> Result<(), RenderError> {
    if name.starts_with('<') {
        return Ok(()); // deferred: checked by GT.M at run time
    }
    let ok = !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(RenderError::new(
            arg,
            format!(
                "`{name}` is not a GT.M name: a letter, then letters, digits or `_`, at most {max} characters"
            ),
        ))
    }
}

/// The single remote operation of a step.
pub(crate) fn one(cmd: Command) -> Vec<Operation> {
    vec![Operation::Remote(cmd)]
}

/// A port argument, checked.
pub(crate) fn port(arg: Arg<'_>) -> Result<Option<i64>, RenderError> {
    match arg.int() {
        Some(p) if !(1..=65535).contains(&p) => Err(RenderError::new(
            arg.name(),
            format!("{p} is not a TCP port"),
        )),
        other => Ok(other),
    }
}

/// Extra qualifiers: each must be one word starting with `-`.
pub(crate) fn qualifiers(arg: Arg<'_>) -> Result<Vec<String>, RenderError> {
    let mut out = Vec::new();
    for item in arg.list().unwrap_or_default() {
        let text = item.to_string();
        if !text.starts_with('-') || text.contains(char::is_whitespace) {
            return Err(RenderError::new(
                arg.name(),
                format!("`{text}` is not a qualifier: one word starting with `-`"),
            ));
        }
        out.push(text);
    }
    Ok(out)
}

/// Seconds of a duration argument, rounded up.
pub(crate) fn secs(arg: Arg<'_>, default: u64) -> u64 {
    arg.duration()
        .map_or(default, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// Joins script lines.
pub(crate) fn lines(parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        let _ = writeln!(out, "{p}");
    }
    out.trim_end().to_owned()
}

/// The line that prints the [`UNCHANGED`] marker (for tests and docs: scripts call
/// `rb_unchanged`).
#[allow(dead_code)]
pub(crate) fn unchanged_marker() -> &'static str {
    UNCHANGED
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn every_module_is_registered_with_the_environment_parameters() {
        let registry = Registry::builtin();
        for module in all() {
            assert!(module.name().starts_with("gtm."), "{}", module.name());
            assert!(registry.get(module.name()).is_some(), "{}", module.name());
            assert!(!module.description().contains('\n'), "{}", module.name());
            let names: Vec<_> = module.params().iter().map(|p| p.name).collect();
            for env in [
                "dir",
                "instance",
                "gtm_dist",
                "repl_instance",
                "gld",
                "routines",
            ] {
                assert!(names.contains(&env), "{} lacks {env}", module.name());
            }
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                names.len(),
                "{}: duplicate params",
                module.name()
            );
        }
    }

    #[test]
    fn the_environment_goes_in_variables_not_in_the_script() {
        let args = args(
            &HealthModule,
            &[("dir", s("/srv/gtm/A")), ("instance", s("A"))],
        );
        let env = Env::new(&args).expect("env");
        let cmd = env.query("gtm.health", "true");
        assert_eq!(cmd.env["gtm_repl_instance"], s("/srv/gtm/A/gtm.repl"));
        assert_eq!(cmd.env["gtmgbldir"], s("/srv/gtm/A/gtm.gld"));
        assert_eq!(cmd.env["gtm_repl_instname"], s("A"));
        assert_eq!(cmd.env["gtm_dist"], s(DEFAULT_GTM_DIST));
        assert_eq!(
            cmd.env["gtmroutines"],
            s(&format!("/srv/gtm/A {DEFAULT_GTM_DIST}/libgtmutil.so"))
        );
        assert_eq!(cmd.env["gtm_log"], s("/srv/gtm/A/log"));
        assert_eq!(cmd.env["gtm_tmp"], s("/srv/gtm/A/tmp"));
        assert!(!cmd.script.contains("/srv/gtm"));
    }

    #[test]
    fn bad_environments_are_refused() {
        for (dir, instance, arg) in [
            ("relative/A", "A", "dir"),
            ("/srv/A", "A B", "instance"),
            ("/srv/A", "1A", "instance"),
            ("/srv/A", "ABCDEFGHIJKLMNOPQ", "instance"),
        ] {
            let args = args(&HealthModule, &[("dir", s(dir)), ("instance", s(instance))]);
            let err = HealthModule.render(&args).expect_err("refused");
            assert_eq!(err.arg, Some(arg), "{dir} {instance}");
        }
    }

    #[test]
    fn every_rendered_script_is_valid_sh() {
        for module in all() {
            let Some(raw) = minimal_args(module.name()) else {
                panic!("no sample arguments for {}", module.name())
            };
            let a = args(module.as_ref(), &raw);
            let mut ops = module.render(&a).expect("renders");
            if let Some(check) = module.check(&a).expect("check renders") {
                for op in &check {
                    if let Operation::Remote(cmd) = op {
                        assert!(!cmd.mutating, "{}: check must be a probe", module.name());
                    }
                }
                ops.extend(check);
            }
            for op in ops {
                if let Operation::Remote(cmd) = op {
                    sh_n(&cmd.script, module.name());
                }
            }
        }
    }
}
