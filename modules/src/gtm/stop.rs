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

use super::backlog::PARSE_RECEIVER;
use super::{Env, lines, one, run, secs, tool, with_env};
use crate::arg::Arg;
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub(crate) fn timeout_param(name: &'static str, default: u64, what: &'static str) -> ParamSpec {
    ParamSpec::optional(name, ParamType::Duration, what)
        .with_default(Value::Duration(Duration::from_secs(default)))
}

/// `-timeout=N` in whole seconds (GT.M takes 0 to 3600).
pub(crate) fn timeout(arg: Arg<'_>, default: u64) -> Result<String, RenderError> {
    let t = secs(arg, default);
    if t > 3600 {
        return Err(RenderError::new(arg.name(), "GT.M waits at most 3600s"));
    }
    Ok(format!("-timeout={t}"))
}

fn instsecondary(arg: Arg<'_>) -> Result<Option<String>, RenderError> {
    arg.str()
        .map(|name| {
            super::check_name(arg.name(), &name, 15)?;
            Ok(format!("-instsecondary={name}"))
        })
        .transpose()
}

/// Tells a Source Server shutdown's output (`$1`) that ends with a confirmed zero backlog:
/// `%GTM-S-REPL0BACKLOG` and no `%GTM-E-REPLBACKLOG`. GT.M V7.0-005 exits 0 either way (with a
/// backlog it prints `REPLNORESP`, maybe `SHUT2QUICK`, then `REPLBACKLOG`, and shuts down
/// anyway), so the exit status proves nothing.
pub(crate) const ZERO_BACKLOG: &str = r"rb_zero_backlog() {
  case $1 in *-REPLBACKLOG,*) return 1 ;; esac
  case $1 in *-REPL0BACKLOG,*) return 0 ;; esac
  return 1
}";

/// Sets `rb_seqno` to the last sequence number this instance committed (the largest Region
/// Seqno of its file headers, minus one: the Region Seqno is the next one to assign), or `null`
/// when the headers cannot be read. On an originating instance whose Source Server is down it is
/// final: with no Journal Pool the instance accepts no update (`%GTM-E-NOJNLPOOL`). On a
/// replicating instance it is the last transaction its Update Process applied.
const LAST_SEQNO: &str = r#"rb_last_seqno() {
  rb_seqno=null
  rb_list=$("$gtm_dist/mumps" -run %XCMD 'set r=$view("GVFIRST") for  quit:r=""  write r,! set r=$view("GVNEXT",r)' 2>/dev/null) || return 0
  rb_m=-1
  for rb_r in $rb_list; do
    rb_hex=$(rb_fhead "$rb_r" | sed -n 's/.*Region Seqno *\(0x[0-9A-Fa-f]*\).*/\1/p' | head -n 1)
    [ -n "$rb_hex" ] || return 0
    rb_n=$(printf '%d' "$rb_hex")
    if [ "$rb_n" -gt "$rb_m" ]; then rb_m=$rb_n; fi
  done
  if [ "$rb_m" -gt 0 ]; then rb_seqno=$((rb_m - 1)); fi
}"#;

/// The default `timeout` of both stops. GT.M's own defaults disagree (30 s in the switchover
/// section of the seed, 120 s in the shutdown reference), so every rendered command passes
/// `-timeout=N` explicitly. With `-zerobacklog` it is only an upper bound: GT.M returns within
/// about a second of the replicating instance's acknowledgement, which comes with the heartbeat
/// (15 s by default; `gtm.source_start` starts with a 1 s heartbeat), so 30 s covers two
/// default heartbeats and a timeout never cuts a healthy drain short (`SHUT2QUICK`).
pub(crate) const STOP_TIMEOUT: u64 = 30;

#[derive(Debug, Clone, Copy, Default)]
pub struct SourceStopModule;

crate::params! {
    struct SourceParams {

        timeout: timeout_param(
            STOP_TIMEOUT,
            "-timeout: for an active Source Server, the longest wait for a zero backlog (-zerobacklog); for a passive one, GT.M's wait before it forces the shutdown",
        ),
        secondary_instance: ParamSpec::optional(ParamType::String,
            "-instsecondary: only the Source Server replicating to this instance (default: all)",
        ),
        allow_backlog: ParamSpec::optional(ParamType::Bool,
            "true: an active Source Server that shuts down without a confirmed zero backlog (or with timeout 0s, which turns -zerobacklog off) does not fail the step: what the replicating instance lacks is rolled off this instance later (lost-transaction file)",
        )
        .with_default(Value::Bool(false)),
    }
}

static SOURCE_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(SourceParams::specs()));

/// One declaration of a Source Server stop, for both the check and the apply.
struct SourceStop {
    env: Env,
    /// `rb_source_health` with the `-instsecondary` of the step.
    health: String,
    /// The shutdown of an active Source Server (or the refusal of one).
    active: String,
    /// The shutdown of passive Source Servers only.
    passive: String,
}

impl SourceStop {
    fn new(args: &Args) -> Result<Self, RenderError> {
        let p = SourceParams::read(args);
        let env = Env::new(args)?;
        let sec = instsecondary(p.secondary_instance)?;
        let t = timeout(p.timeout, STOP_TIMEOUT)?;
        let allow = p.allow_backlog.bool() == Some(true);
        let mut words = vec![
            "replicate".to_owned(),
            "-source".to_owned(),
            "-shutdown".to_owned(),
            t.clone(),
        ];
        words.extend(sec.clone());
        let passive = run("mupip", &words);
        let active = if t == "-timeout=0" {
            // GT.M ignores -zerobacklog at -timeout=0: an update in flight is lost to B.
            if allow {
                format!("{passive}\nrb_zero=false")
            } else {
                "rb_fail \"an active Source Server is alive and timeout is 0s, which turns -zerobacklog off (updates in flight would not reach the replicating instance); nothing was stopped. Give a timeout of at least 1s, or allow_backlog: true\"".to_owned()
            }
        } else {
            let mut z = words.clone();
            z.push("-zerobacklog".to_owned());
            let refuse = if allow {
                ":".to_owned()
            } else {
                "rb_fail \"the Source Server shut down without a confirmed zero backlog: $(printf '%s\\n' \"$rb_out\" | grep -Eo '%GTM-[A-Z]-(REPLNORESP|SHUT2QUICK|REPLBACKLOG)[^%]*' | tr '\\n' ' ')- the replicating instance may lack updates this instance has; restart the Source Server to send them (or allow_backlog: true)\"".to_owned()
            };
            format!(
                "{}\nif rb_zero_backlog \"$rb_out\"; then rb_zero=true; else rb_zero=false; {refuse}; fi",
                run("mupip", &z)
            )
        };
        Ok(Self {
            health: format!(
                "rb_source_health {}",
                sec.as_deref().map(super::word_of).unwrap_or_default()
            )
            .trim_end()
            .to_owned(),
            env,
            active,
            passive,
        })
    }
}

const SOURCE_RESULT: &str =
    "printf '{\"posted\": %s, \"zero_backlog\": %s}\\n' \"$rb_posted\" \"$rb_zero\"";

impl Module for SourceStopModule {
    fn name(&self) -> &'static str {
        "gtm.source_stop"
    }

    fn description(&self) -> &'static str {
        "Shut down the Source Server(s), if alive; an active one with -zerobacklog, failing unless GT.M confirms a zero backlog"
    }

    fn params(&self) -> &[ParamSpec] {
        &SOURCE_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let s = SourceStop::new(args)?;
        let body = [
            ZERO_BACKLOG.to_owned(),
            LAST_SEQNO.to_owned(),
            "rb_posted=null; rb_zero=null".to_owned(),
            s.health.clone(),
            format!(
                "if [ $((rb_active + rb_passive)) -eq 0 ]; then rb_unchanged; rb_last_seqno; rb_posted=$rb_seqno; {SOURCE_RESULT}; exit 0; fi"
            ),
            "if [ \"$rb_active\" -gt 0 ]; then".to_owned(),
            s.active.clone(),
            "rb_last_seqno; rb_posted=$rb_seqno".to_owned(),
            "else".to_owned(),
            s.passive.clone(),
            "fi".to_owned(),
            SOURCE_RESULT.to_owned(),
        ];
        Ok(one(s.env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let s = SourceStop::new(args)?;
        let body = format!(
            "{}\nif [ $((rb_active + rb_passive)) -eq 0 ]; then exit 0; else exit 1; fi",
            s.health
        );
        Ok(Some(one(s.env.probe(self.name(), 0, &body))))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiverStopModule;

crate::params! {
    struct ReceiverParams {

        timeout: timeout_param(
            STOP_TIMEOUT,
            "Without `posted`: -timeout, how long GT.M waits for the Receiver Server and Update Process. With `posted`: how long to wait for the Update Process to process it (then -timeout=0)",
        ),
        posted: ParamSpec::optional(ParamType::Int,
            "The last sequence number the originating instance posted (e.g. `{{ stop_a.values.posted }}` from its gtm.source_stop): the step waits until the Update Process has processed it, then stops without waiting (-timeout=0); it fails, stopping nothing, if that is not confirmed within `timeout`",
        ),
        allow_backlog: ParamSpec::optional(ParamType::Bool,
            "With `posted`: true stops after `timeout` even when the Update Process is behind (what it lacks is rolled off the originating instance later)",
        )
        .with_default(Value::Bool(false)),
        passive: ParamSpec::optional(ParamType::Bool,
            "Then shut down the passive Source Server too, bringing down the Journal Pool, as the seed's `replicating_stop` does (with `posted`: -timeout=0, nothing is left to send), and confirm the pool is down; fails, stopping it not, if an active Source Server is alive",
        )
        .with_default(Value::Bool(false)),
    }
}

static RECEIVER_PARAMS: LazyLock<Vec<ParamSpec>> =
    LazyLock::new(|| with_env(ReceiverParams::specs()));

pub(crate) const RECEIVER_DOWN: &str = "[ \"$rb_receiver\" = false ] && [ \"$rb_update\" = false ]";

/// One declaration of a Receiver Server stop, for both the check and the apply.
struct ReceiverStop {
    env: Env,
    /// What the step does when the Receiver Server is down already: with `posted`, the same
    /// confirmation from the file headers (a receiver that died after the drain gate may have
    /// left transactions unprocessed).
    down: String,
    /// The confirmation (when `posted` is given) and the shutdown.
    stop: Vec<String>,
    /// With `passive: true`, the passive Source Server's shutdown afterwards.
    passive: Option<String>,
}

/// The passive Source Server's shutdown of `gtm.receiver_stop` with `passive: true`, then the
/// confirmation that it brought down the Journal Pool (the seed's reason to stop it): a process
/// still attached keeps the pool up, and the instance could then not start as originating after
/// the switchover's point of no return. So the step fails here, before it, naming the pool.
fn passive_stop(t: &str) -> String {
    format!(
        "rb_source_health
         if [ \"$rb_active\" -gt 0 ]; then rb_fail \"an active Source Server is alive: not a replicating instance, not stopping it\"; fi
         if [ \"$rb_passive\" -gt 0 ]; then {}; rb_stopped=true; fi
         rb_i=0; while [ -n \"$({} 2>&1 | {FTOK_OPEN})\" ]; do
           rb_i=$((rb_i + 1))
           if [ \"$rb_i\" -ge 25 ]; then rb_fail \"the Journal Pool is still up after the passive Source Server's shutdown (a process still attached to it?): the instance cannot start as originating; stop what uses its database, run it down (mupip rundown -region \\\"*\\\", gtm.rundown) and run the step again\"; fi
           sleep 0.2
         done",
        run("mupip", ["replicate", "-source", "-shutdown", t]),
        tool("mupip", ["ftok", "-jnlpool"]),
    )
}

/// Reads `mupip ftok` output: the name of each pool or file that still has a semaphore or
/// shared memory.
const FTOK_OPEN: &str = r#"awk -F'::' 'NF >= 3 { split($2, s, " "); split($3, m, " "); if ((s[1] ~ /^-?[0-9]+$/ && s[1] != -1) || (m[1] ~ /^-?[0-9]+$/ && m[1] != -1)) { gsub(/^ +| +$/, "", $1); print $1 } }'"#;

/// `rb_ftok ARGS`: `mupip ftok ARGS`, printing the name of each pool or file that still has a
/// semaphore or shared memory.
fn ftok_fn() -> String {
    format!(
        "rb_ftok() {{ {} ftok \"$@\" 2>&1 | {FTOK_OPEN}; }}",
        tool("mupip", Vec::<String>::new())
    )
}

impl ReceiverStop {
    fn new(args: &Args) -> Result<Self, RenderError> {
        let p = ReceiverParams::read(args);
        let env = Env::new(args)?;
        let t = timeout(p.timeout, STOP_TIMEOUT)?;
        let Some(posted) = p.posted.get() else {
            if t == "-timeout=0" {
                return Err(RenderError::new(
                    p.timeout.name(),
                    "0s stops the Update Process without waiting: only with `posted`, once it has processed everything the originating instance posted",
                ));
            }
            return Ok(Self {
                env,
                down: ":".to_owned(),
                stop: vec![run("mupip", ["replicate", "-receiver", "-shutdown", &t])],
                passive: (p.passive.bool() == Some(true)).then(|| passive_stop(&t)),
            });
        };
        let posted = match posted {
            Value::Int(n) if *n >= 0 => n.to_string(),
            Value::Int(n) => {
                return Err(RenderError::new(
                    p.posted.name(),
                    format!("{n} is not a sequence number"),
                ));
            }
            // Deferred at compile time: the value of a register, known at run time.
            v if v.is_deferred() => "0".to_owned(),
            _ => {
                return Err(RenderError::new(
                    p.posted.name(),
                    "no sequence number (null): what the originating instance posted is unknown, so nothing can be confirmed",
                ));
            }
        };
        let wait = secs(p.timeout, STOP_TIMEOUT);
        let allow = p.allow_backlog.bool() == Some(true);
        let down = format!(
            "rb_posted={posted}; rb_last_seqno; rb_processed=$rb_seqno; rb_confirmed=true\n\
             if [ \"$rb_processed\" = null ] || [ \"$rb_processed\" -lt {posted} ]; then {}; fi",
            if allow {
                "rb_confirmed=false".to_owned()
            } else {
                format!(
                    "rb_fail \"the Receiver Server is down and this instance has processed up to $rb_processed, not the originating instance's last posted {posted}\""
                )
            }
        );
        let late = if allow {
            "rb_confirmed=false; break".to_owned()
        } else {
            format!(
                "rb_fail \"the Update Process processed up to $rb_processed, not the originating instance's last posted {posted}, after {}; nothing was stopped\"",
                crate::value::format_duration(Duration::from_secs(wait))
            )
        };
        Ok(Self {
            env,
            down,
            passive: (p.passive.bool() == Some(true)).then(|| passive_stop("-timeout=0")),
            stop: vec![
                format!("rb_posted={posted}; rb_confirmed=true"),
                format!("rb_deadline=$(( $(date +%s) + {wait} ))"),
                "while :; do".to_owned(),
                format!(
                    "  rb_bl=$({} 2>&1) || rb_fail \"mupip -receiver -showbacklog failed: $(printf '%s\\n' \"$rb_bl\" | grep -E '%[A-Z]+-[EF]-' | head -n 1)\"",
                    tool("mupip", ["replicate", "-receiver", "-showbacklog"])
                ),
                "  rb_parse_receiver".to_owned(),
                "  rb_processed=$(printf '%s\\n' \"$rb_json\" | sed 's/.*\"processed\": \\([0-9]*\\).*/\\1/')".to_owned(),
                "  if [ \"$rb_processed\" -ge \"$rb_posted\" ]; then break; fi".to_owned(),
                format!("  if [ \"$(date +%s)\" -ge \"$rb_deadline\" ]; then {late}; fi"),
                "  sleep 0.2".to_owned(),
                "done".to_owned(),
                run("mupip", ["replicate", "-receiver", "-shutdown", "-timeout=0"]),
            ],
        })
    }
}

const RECEIVER_RESULT: &str = "printf '{\"posted\": %s, \"processed\": %s, \"confirmed\": %s}\\n' \"$rb_posted\" \"$rb_processed\" \"$rb_confirmed\"";

impl Module for ReceiverStopModule {
    fn name(&self) -> &'static str {
        "gtm.receiver_stop"
    }

    fn description(&self) -> &'static str {
        "Shut down the Receiver Server and the Update Process, if alive; with `posted`, once the Update Process has processed it"
    }

    fn params(&self) -> &[ParamSpec] {
        &RECEIVER_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let r = ReceiverStop::new(args)?;
        let mut body = vec![
            LAST_SEQNO.to_owned(),
            PARSE_RECEIVER.to_owned(),
            "rb_confirmed=null; rb_processed=null; rb_posted=null; rb_stopped=false".to_owned(),
            "rb_receiver_health".to_owned(),
            format!("if {RECEIVER_DOWN}; then\n{}\nelse", r.down),
        ];
        body.extend(r.stop.iter().cloned());
        body.push("rb_stopped=true\nfi".to_owned());
        body.extend(r.passive.iter().cloned());
        body.push("[ \"$rb_stopped\" = true ] || rb_unchanged".to_owned());
        body.push(RECEIVER_RESULT.to_owned());
        Ok(one(r.env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let r = ReceiverStop::new(args)?;
        let passive_down = if r.passive.is_some() {
            "rb_source_health\n[ $((rb_active + rb_passive)) -eq 0 ] || exit 1\n"
        } else {
            ""
        };
        let body = format!(
            "rb_receiver_health\nif {RECEIVER_DOWN}; then :; else exit 1; fi\n{passive_down}exit 0"
        );
        Ok(Some(one(r.env.probe(self.name(), 0, &body))))
    }
}

/// Sets `rb_open` to the pools and files that still have a semaphore or shared memory.
pub(crate) fn open_ipc() -> String {
    format!(
        r#"{}
rb_open=$(rb_ftok -jnlpool; rb_ftok -recvpool)
if [ -f "$gtmgbldir" ]; then
  rb_files=$("$gtm_dist/mumps" -run %XCMD 'set r=$view("GVFIRST") for  quit:r=""  write $view("GVFILE",r),! set r=$view("GVNEXT",r)' 2>&1) || rb_fail "cannot read $gtmgbldir: $rb_files"
  for rb_f in $rb_files; do [ -f "$rb_f" ] && rb_open="$rb_open $(rb_ftok "$rb_f")"; done
fi
rb_open=$(echo $rb_open)"#,
        ftok_fn()
    )
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RundownModule;

crate::params! {
    struct RundownParams {
,
    }
}

static RUNDOWN_PARAMS: LazyLock<Vec<ParamSpec>> =
    LazyLock::new(|| with_env(RundownParams::specs()));

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
    fn renders_the_seed_shutdowns_with_an_explicit_timeout() {
        let raw = [
            ("dir", s("/g/A")),
            ("instance", s("A")),
            ("timeout", s("2s")),
        ];
        let src = &remotes(&SourceStopModule, &raw)[0].script;
        assert!(
            src.contains(
                "rb_run \"$gtm_dist/mupip\" replicate -source -shutdown -timeout=2 -zerobacklog\n"
            ),
            "{src}"
        );
        // A passive Source Server has nothing to send: no -zerobacklog.
        assert!(
            src.contains(
                "else\nrb_run \"$gtm_dist/mupip\" replicate -source -shutdown -timeout=2\nfi"
            ),
            "{src}"
        );
        let recv = &remotes(&ReceiverStopModule, &raw)[0].script;
        assert!(
            recv.contains("rb_run \"$gtm_dist/mupip\" replicate -receiver -shutdown -timeout=2\n"),
            "{recv}"
        );
        assert!(
            remotes(&RundownModule, &raw[..2])[0]
                .script
                .ends_with("rb_run \"$gtm_dist/mupip\" rundown -region '*'")
        );
        // Without an argument the timeout is still explicit (GT.M's defaults disagree).
        let src = &remotes(&SourceStopModule, &raw[..2])[0].script;
        assert!(src.contains("-shutdown -timeout=30 -zerobacklog"), "{src}");
        let recv = &remotes(&ReceiverStopModule, &raw[..2])[0].script;
        assert!(recv.contains("-receiver -shutdown -timeout=30"), "{recv}");
        for script in [src, recv] {
            sh_n(script, "stop");
        }
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
    fn a_receiver_stops_without_waiting_only_after_the_posted_seqno_is_processed() {
        let zero = [
            ("dir", s("/g/B")),
            ("instance", s("B")),
            ("timeout", s("0s")),
        ];
        let err = ReceiverStopModule
            .render(&args(&ReceiverStopModule, &zero))
            .expect_err("-timeout=0 without a confirmation");
        assert_eq!(err.arg, Some("timeout"));
        assert!(
            ReceiverStopModule
                .check(&args(&ReceiverStopModule, &zero))
                .is_err()
        );

        let dist = crate::gtm::testing::TempDir::new("gtm-recv-stop");
        fake_dist(dist.path());
        // Verbatim V7.0-005 `-receiver -checkhealth` and `-receiver -showbacklog`, in one
        // output (the fake mupip prints the same text for every call).
        let out = |processed: u64| {
            format!(
                "PID 5911 Receiver server is alive\nPID 5912 Update process is alive\n\
                 0 : number of backlog transactions received by receiver server and yet to be processed by update process\n\
                 {processed} : sequence number of last transaction received from Source Server and written to receive pool\n\
                 {processed} : sequence number of last transaction processed by update process\n"
            )
        };
        let raw = |posted: i64, allow: bool| {
            vec![
                ("dir", s(&dist.str(""))),
                ("instance", s("B")),
                ("timeout", s("1s")),
                ("posted", Value::Int(posted)),
                ("allow_backlog", Value::Bool(allow)),
            ]
        };
        std::fs::write(dist.join("mupip.out"), out(300)).expect("sample");
        let cmd = &remotes(&ReceiverStopModule, &raw(300, false))[0];
        let run = run_with(cmd, dist.path());
        assert_eq!(run.status.code(), Some(0), "{run:?}");
        assert!(
            String::from_utf8_lossy(&run.stdout)
                .ends_with("{\"posted\": 300, \"processed\": 300, \"confirmed\": true}\n")
        );
        let calls = std::fs::read_to_string(dist.join("mupip.calls")).expect("calls");
        assert!(
            calls.ends_with("replicate -receiver -shutdown -timeout=0\n"),
            "{calls}"
        );

        // B is behind A: the step fails and stops nothing.
        std::fs::remove_file(dist.join("mupip.calls")).expect("reset");
        std::fs::write(dist.join("mupip.out"), out(299)).expect("sample");
        let cmd = &remotes(&ReceiverStopModule, &raw(300, false))[0];
        let run = run_with(cmd, dist.path());
        assert_eq!(run.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&run.stderr)
                .contains("processed up to 299, not the originating instance's last posted 300"),
            "{run:?}"
        );
        let calls = std::fs::read_to_string(dist.join("mupip.calls")).expect("calls");
        assert!(!calls.contains("-shutdown"), "{calls}");
        // ... unless the runbook allows the backlog.
        let cmd = &remotes(&ReceiverStopModule, &raw(300, true))[0];
        let run = run_with(cmd, dist.path());
        assert_eq!(run.status.code(), Some(0), "{run:?}");
        assert!(String::from_utf8_lossy(&run.stdout).contains("\"confirmed\": false"));

        // The Receiver Server died after the drain gate: B's file headers say what it applied.
        std::fs::write(dist.join("mupip.out"), "%GTM-E-NORECVPOOL, No receiver pool info found in the replication instance of /g/B/gtm.repl\n").expect("sample");
        std::fs::write(dist.join("mumps.stdout"), "DEFAULT\n").expect("regions");
        std::fs::write(
            dist.join("dse.out"),
            "  Replication State                              ON  Region Seqno            0x0000000000000065\n",
        )
        .expect("header");
        let _ = std::fs::remove_file(dist.join("mupip.calls"));
        let run = run_with(
            &remotes(&ReceiverStopModule, &raw(100, false))[0],
            dist.path(),
        );
        assert_eq!(run.status.code(), Some(0), "{run:?}");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(stdout.contains("runbook: unchanged"), "{stdout}");
        assert!(
            stdout.ends_with("{\"posted\": 100, \"processed\": 100, \"confirmed\": true}\n"),
            "{stdout}"
        );
        let run = run_with(
            &remotes(&ReceiverStopModule, &raw(101, false))[0],
            dist.path(),
        );
        assert_eq!(run.status.code(), Some(1), "{run:?}");
        assert!(
            String::from_utf8_lossy(&run.stderr).contains("down and this instance has processed up to 100, not the originating instance's last posted 101"),
            "{run:?}"
        );
        let calls = std::fs::read_to_string(dist.join("mupip.calls")).expect("calls");
        assert!(!calls.contains("-shutdown"), "{calls}");

        // `passive: true`: then the passive Source Server, without waiting (the seed's
        // replicating_stop in one step).
        std::fs::write(
            dist.join("mupip.checkhealth.out"),
            "PID 5911 Receiver server is alive\nPID 5912 Update process is alive\nPID 5900 Source server is alive in PASSIVE mode\n",
        )
        .expect("sample");
        std::fs::write(dist.join("mupip.showbacklog.out"), out(300)).expect("sample");
        let _ = std::fs::remove_file(dist.join("mupip.calls"));
        let mut with_passive = raw(300, false);
        with_passive.push(("passive", Value::Bool(true)));
        let run = run_with(&remotes(&ReceiverStopModule, &with_passive)[0], dist.path());
        assert_eq!(run.status.code(), Some(0), "{run:?}");
        let calls = std::fs::read_to_string(dist.join("mupip.calls")).expect("calls");
        assert!(
            calls.ends_with("replicate -receiver -shutdown -timeout=0\nreplicate -source -checkhealth\nreplicate -source -shutdown -timeout=0\nftok -jnlpool\n"),
            "{calls}"
        );
        assert!(!String::from_utf8_lossy(&run.stdout).contains("unchanged"));
        // An active Source Server is never stopped by it.
        std::fs::write(
            dist.join("mupip.checkhealth.out"),
            "PID 5911 Receiver server is alive\nPID 5912 Update process is alive\nPID 5900 Source server is alive in ACTIVE mode\n",
        )
        .expect("sample");
        let _ = std::fs::remove_file(dist.join("mupip.calls"));
        let run = run_with(&remotes(&ReceiverStopModule, &with_passive)[0], dist.path());
        assert_eq!(run.status.code(), Some(1), "{run:?}");
        let calls = std::fs::read_to_string(dist.join("mupip.calls")).expect("calls");
        assert!(!calls.contains("-source -shutdown"), "{calls}");
    }

    /// Verbatim GT.M V7.0-005 output of `mupip replicate -source -shutdown -zerobacklog`.
    const CONFIRMED: &str = "Thu Dec  3 12:53:37 2026 : Initiating ZEROBACKLOG shutdown operation. Waiting for up to 30 second(s) for backlog to clear
Thu Dec  3 12:53:38 2026 : %GTM-S-REPL0BACKLOG, Total backlog for the specified replicating instance(s) is 0
Thu Dec  3 12:53:38 2026 : Initiating SHUTDOWN operation on source server pid [5909] for secondary instance [B]
Thu Dec  3 12:53:38 2026 : Waiting for upto [120] seconds for the source server to shutdown
Thu Dec  3 12:53:40 2026 : Journal pool shared memory removed
Thu Dec  3 12:53:40 2026 : Journal pool semaphore removed
";
    /// With B's Receiver Server down (exit status 0).
    const BACKLOG: &str = "Thu Dec  3 12:56:11 2026 : Initiating ZEROBACKLOG shutdown operation. Waiting for up to 3 second(s) for backlog to clear
Thu Dec  3 12:56:14 2026 : %GTM-W-REPLNORESP, No sequence number confirmation from the replicating instance [B] after waiting for [3] second(s)
Thu Dec  3 12:56:14 2026 : %GTM-E-REPLBACKLOG, Timeout occurred while there was a backlog
Thu Dec  3 12:56:14 2026 : Initiating SHUTDOWN operation on source server pid [12452] for secondary instance [B]
Thu Dec  3 12:56:14 2026 : Waiting for upto [120] seconds for the source server to shutdown
Thu Dec  3 12:56:16 2026 : Journal pool shared memory removed
Thu Dec  3 12:56:16 2026 : Journal pool semaphore removed
";
    /// A timeout shorter than the heartbeat (exit status 0).
    const SHUT2QUICK: &str = "Thu Dec  3 12:56:30 2026 : Initiating ZEROBACKLOG shutdown operation. Waiting for up to 2 second(s) for backlog to clear
Thu Dec  3 12:56:32 2026 : %GTM-W-REPLNORESP, No sequence number confirmation from the replicating instance [B] after waiting for [2] second(s)
Thu Dec  3 12:56:32 2026 : %GTM-W-SHUT2QUICK, Shutdown timeout [2] shorter than the heartbeat period [15]; cannot confirm the backlog at the replicating instance [B]
Thu Dec  3 12:56:32 2026 : %GTM-E-REPLBACKLOG, Timeout occurred while there was a backlog
Thu Dec  3 12:56:32 2026 : Initiating SHUTDOWN operation on source server pid [16976] for secondary instance [B]
Thu Dec  3 12:56:32 2026 : Waiting for upto [120] seconds for the source server to shutdown
Thu Dec  3 12:56:34 2026 : Journal pool shared memory removed
Thu Dec  3 12:56:34 2026 : Journal pool semaphore removed
";

    #[test]
    fn zero_backlog_is_confirmed_by_the_output_never_by_the_exit_status() {
        let classify = |out: &str| {
            let script = format!("{ZERO_BACKLOG}\nrb_zero_backlog \"$1\"");
            std::process::Command::new("/bin/sh")
                .args(["-c", &script, "sh", out])
                .status()
                .expect("sh")
                .success()
        };
        assert!(classify(CONFIRMED));
        assert!(!classify(BACKLOG), "REPLNORESP + REPLBACKLOG");
        assert!(
            !classify(SHUT2QUICK),
            "REPLNORESP + SHUT2QUICK + REPLBACKLOG"
        );
        assert!(
            !classify(
                "Thu Dec  3 12:57:33 2026 : Initiating SHUTDOWN operation on source server pid [25763] for secondary instance [dummy]\n"
            ),
            "no REPL0BACKLOG at all"
        );
        assert!(
            !classify(&format!("{CONFIRMED}{BACKLOG}")),
            "REPLBACKLOG wins"
        );
    }

    #[test]
    fn an_active_source_without_a_confirmed_zero_backlog_fails_the_step_despite_exit_0() {
        let dist = crate::gtm::testing::TempDir::new("gtm-src-stop");
        fake_dist(dist.path());
        std::fs::write(dist.join("mumps.stdout"), "DEFAULT\n").expect("regions");
        std::fs::write(
            dist.join("dse.out"),
            "  Replication State                              ON  Region Seqno            0x0000000000000065\n",
        )
        .expect("header");
        let alive = "PID 5909 Source server is alive in ACTIVE mode\n";
        let raw = |allow: bool, timeout: &str| {
            vec![
                ("dir", s(&dist.str(""))),
                ("instance", s("A")),
                ("timeout", s(timeout)),
                ("allow_backlog", Value::Bool(allow)),
            ]
        };
        let stop = |out: &str, allow: bool, timeout: &str| {
            std::fs::write(dist.join("mupip.out"), alive).expect("sample");
            std::fs::write(dist.join("mupip.shutdown.out"), out).expect("sample");
            let _ = std::fs::remove_file(dist.join("mupip.calls"));
            run_with(
                &remotes(&SourceStopModule, &raw(allow, timeout))[0],
                dist.path(),
            )
        };
        let ok = stop(CONFIRMED, false, "30s");
        assert_eq!(ok.status.code(), Some(0), "{ok:?}");
        assert!(
            String::from_utf8_lossy(&ok.stdout)
                .ends_with("{\"posted\": 100, \"zero_backlog\": true}\n"),
            "{ok:?}"
        );
        for out in [BACKLOG, SHUT2QUICK] {
            let failed = stop(out, false, "30s");
            assert_eq!(failed.status.code(), Some(1), "{failed:?}");
            let err = String::from_utf8_lossy(&failed.stderr);
            assert!(
                err.contains("shut down without a confirmed zero backlog: %GTM-W-REPLNORESP"),
                "{err}"
            );
            assert!(err.contains("%GTM-E-REPLBACKLOG"), "{err}");
            let allowed = stop(out, true, "30s");
            assert_eq!(allowed.status.code(), Some(0), "{allowed:?}");
            assert!(String::from_utf8_lossy(&allowed.stdout).contains("\"zero_backlog\": false"));
        }
        // timeout 0 turns -zerobacklog off: refused before anything is stopped...
        let refused = stop(CONFIRMED, false, "0s");
        assert_eq!(refused.status.code(), Some(1));
        let calls = std::fs::read_to_string(dist.join("mupip.calls")).expect("calls");
        assert!(!calls.contains("-shutdown"), "{calls}");
        // ... unless allowed, and then never reported as confirmed.
        let allowed = stop(CONFIRMED, true, "0s");
        assert_eq!(allowed.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&allowed.stdout).contains("\"zero_backlog\": false"));
        let calls = std::fs::read_to_string(dist.join("mupip.calls")).expect("calls");
        assert!(calls.contains("-source -shutdown -timeout=0\n"), "{calls}");
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
