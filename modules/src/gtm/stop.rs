//! `gtm.source_stop`, `gtm.receiver_stop` and `gtm.rundown`.
//!
//! Seed: `originating_stop` (`mupip replicate -source -shutdown -timeout=2`, `mupip rundown
//! -region "*"`), `replicating_stop` (`mupip replicate -receiver -shutdown -timeout=2`, then the
//! passive Source Server) and the switchover section ("Shut down the Source Server with an
//! appropriate timeout ... The GT.M default Source Server wait period is 30 seconds").
//!
//! Checks: `-checkhealth` says the server is not alive; for `rundown`, `mupip ftok` reports no
//! semaphore and no shared memory for the Journal Pool, the Receive Pool and every database
//! file of the global directory. Apply does nothing (and says so) when already in state.

use std::sync::LazyLock;
use std::time::Duration;

use super::{Env, lines, one, run, secs, tool, with_env};
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub(crate) fn timeout_param(default: u64, what: &'static str) -> ParamSpec {
    ParamSpec::optional("timeout", ParamType::Duration, what)
        .with_default(Value::Duration(Duration::from_secs(default)))
}

/// `-timeout=N` in whole seconds (GT.M takes 0 to 3600).
pub(crate) fn timeout(args: &Args, default: u64) -> Result<String, RenderError> {
    let t = secs(args, "timeout", default);
    if t > 3600 {
        return Err(RenderError::new("timeout", "GT.M waits at most 3600s"));
    }
    Ok(format!("-timeout={t}"))
}

fn instsecondary(args: &Args) -> Result<Option<String>, RenderError> {
    args.str("secondary_instance")
        .map(|name| {
            super::check_name("secondary_instance", &name, 15)?;
            Ok(format!("-instsecondary={name}"))
        })
        .transpose()
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SourceStopModule;

static SOURCE_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| {
    with_env(vec![
        timeout_param(
            30,
            "-timeout: how long the Source Server may take to send pending transactions",
        ),
        ParamSpec::optional(
            "secondary_instance",
            ParamType::String,
            "-instsecondary: only the Source Server replicating to this instance (default: all)",
        ),
    ])
});

impl Module for SourceStopModule {
    fn name(&self) -> &'static str {
        "gtm.source_stop"
    }

    fn description(&self) -> &'static str {
        "Shut down the Source Server(s) with a timeout, if alive"
    }

    fn params(&self) -> &[ParamSpec] {
        &SOURCE_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let env = Env::new(args)?;
        let sec = instsecondary(args)?;
        let mut words = vec![
            "replicate".to_owned(),
            "-source".to_owned(),
            "-shutdown".to_owned(),
            timeout(args, 30)?,
        ];
        words.extend(sec.clone());
        let body = [
            format!(
                "rb_source_health {}",
                sec.as_deref().map(super::word_of).unwrap_or_default()
            )
            .trim_end()
            .to_owned(),
            "if [ $((rb_active + rb_passive)) -eq 0 ]; then rb_unchanged; exit 0; fi".to_owned(),
            run("mupip", &words),
        ];
        Ok(one(env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let env = Env::new(args)?;
        timeout(args, 30)?;
        let sec = instsecondary(args)?;
        let body = format!(
            "rb_source_health {}\nif [ $((rb_active + rb_passive)) -eq 0 ]; then exit 0; else exit 1; fi",
            sec.as_deref().map(super::word_of).unwrap_or_default()
        );
        Ok(Some(one(env.probe(self.name(), 0, &body))))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiverStopModule;

static RECEIVER_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| {
    with_env(vec![timeout_param(
        30,
        "-timeout: how long to wait for the Receiver Server and Update Process",
    )])
});

pub(crate) const RECEIVER_DOWN: &str = "[ \"$rb_receiver\" = false ] && [ \"$rb_update\" = false ]";

impl Module for ReceiverStopModule {
    fn name(&self) -> &'static str {
        "gtm.receiver_stop"
    }

    fn description(&self) -> &'static str {
        "Shut down the Receiver Server and the Update Process, if alive"
    }

    fn params(&self) -> &[ParamSpec] {
        &RECEIVER_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let env = Env::new(args)?;
        let body = [
            "rb_receiver_health".to_owned(),
            format!("if {RECEIVER_DOWN}; then rb_unchanged; exit 0; fi"),
            run(
                "mupip",
                ["replicate", "-receiver", "-shutdown", &timeout(args, 30)?],
            ),
        ];
        Ok(one(env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let env = Env::new(args)?;
        timeout(args, 30)?;
        let body = format!("rb_receiver_health\nif {RECEIVER_DOWN}; then exit 0; else exit 1; fi");
        Ok(Some(one(env.probe(self.name(), 0, &body))))
    }
}

/// Sets `rb_open` to the pools and files that still have a semaphore or shared memory.
pub(crate) fn open_ipc() -> String {
    format!(
        r#"rb_ftok() {{ {} ftok "$@" 2>&1 | awk -F'::' 'NF >= 3 {{ split($2, s, " "); split($3, m, " "); if ((s[1] ~ /^-?[0-9]+$/ && s[1] != -1) || (m[1] ~ /^-?[0-9]+$/ && m[1] != -1)) {{ gsub(/^ +| +$/, "", $1); print $1 }} }}'; }}
rb_open=$(rb_ftok -jnlpool; rb_ftok -recvpool)
if [ -f "$gtmgbldir" ]; then
  rb_files=$("$gtm_dist/mumps" -run %XCMD 'set r=$view("GVFIRST") for  quit:r=""  write $view("GVFILE",r),! set r=$view("GVNEXT",r)' 2>&1) || rb_fail "cannot read $gtmgbldir: $rb_files"
  for rb_f in $rb_files; do [ -f "$rb_f" ] && rb_open="$rb_open $(rb_ftok "$rb_f")"; done
fi
rb_open=$(echo $rb_open)"#,
        tool("mupip", Vec::<String>::new())
    )
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RundownModule;

static RUNDOWN_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(vec![]));

impl Module for RundownModule {
    fn name(&self) -> &'static str {
        "gtm.rundown"
    }

    fn description(&self) -> &'static str {
        "Run down the database, Journal Pool and Receive Pool shared memory (mupip rundown -region \"*\")"
    }

    fn params(&self) -> &[ParamSpec] {
        &RUNDOWN_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let env = Env::new(args)?;
        let body = [
            open_ipc(),
            "if [ -z \"$rb_open\" ]; then rb_unchanged; exit 0; fi".to_owned(),
            run("mupip", ["rundown", "-region", "*"]),
        ];
        Ok(one(env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let env = Env::new(args)?;
        let body = format!(
            "{}\nif [ -z \"$rb_open\" ]; then exit 0; else exit 1; fi",
            open_ipc()
        );
        Ok(Some(one(env.probe(self.name(), 0, &body))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;

    #[test]
    fn renders_the_seed_shutdowns() {
        let raw = [
            ("dir", s("/g/A")),
            ("instance", s("A")),
            ("timeout", s("2s")),
        ];
        assert!(
            remotes(&SourceStopModule, &raw)[0]
                .script
                .ends_with("rb_run \"$gtm_dist/mupip\" replicate -source -shutdown -timeout=2")
        );
        assert!(
            remotes(&ReceiverStopModule, &raw)[0]
                .script
                .ends_with("rb_run \"$gtm_dist/mupip\" replicate -receiver -shutdown -timeout=2")
        );
        assert!(
            remotes(&RundownModule, &raw[..2])[0]
                .script
                .ends_with("rb_run \"$gtm_dist/mupip\" rundown -region '*'")
        );
        let raw = [
            ("dir", s("/g/A")),
            ("instance", s("A")),
            ("timeout", s("2h")),
        ];
        assert_eq!(
            SourceStopModule
                .render(&args(&SourceStopModule, &raw))
                .expect_err("too long")
                .arg,
            Some("timeout")
        );
    }

    #[test]
    fn ftok_output_tells_open_from_closed() {
        let dist = crate::gtm::testing::TempDir::new("gtm-ftok");
        fake_dist(dist.path());
        // Verbatim `mupip ftok -jnlpool` (V7.0-005) with no pool, and with one.
        let closed = "                File ::            Semaphore Id ::        Shared Memory Id ::                FTOK Key ::                             FileId\n\
-------------------------------------------------------------------------------------------------------------------------------------------\n\
  /tmp/gx/A/gtm.repl ::         -1 [0xffffffff] ::         -1 [0xffffffff] ::  747843724 [0x2c93308c] :: 0xc9c099000000000000fe000000000000\n\
             jnlpool ::         -1 [0xffffffff] ::         -1 [0xffffffff]\n";
        std::fs::write(dist.join("mupip.stdout"), closed).expect("sample");
        let raw = [("dir", s(&dist.str(""))), ("instance", s("A"))];
        let probe = check_probe(&RundownModule, &raw);
        let out = run_with(&probe, dist.path());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(
            dist.join("mupip.stdout"),
            closed.replace(
                "jnlpool ::         -1 [0xffffffff] ::         -1",
                "jnlpool ::      32770 [0x00008002] ::      65538",
            ),
        )
        .expect("sample");
        assert_eq!(run_with(&probe, dist.path()).status.code(), Some(1));
    }
}
