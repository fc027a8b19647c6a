//! `gtm.source_start` and `gtm.receiver_start`: the replication servers.
//!
//! Seed: `originating_start` (`mupip replicate -source -start -instsecondary=B
//! -secondary=host:port -buffsize=1048576 -log=...`, then `-checkhealth`), `replicating_start`
//! (a passive Source Server to create the Journal Pool, then `mupip replicate -receive -start
//! -listenport=PORT -buffsize=... -log=...`, then `-checkhealth`), `suppl_setup` and
//! `replicating_start_suppl_n` (`-updok`/`-updnotok` on the passive Source Server,
//! `-updateresync=FILE -initialize`, `-autorollback`, `-noresync` on the Receiver Server), the
//! A→B→C example (`-propagateprimary`) and the TLS section (`-tlsid`, `-reneg`).
//!
//! Check: `-checkhealth` says the server is alive (in the requested mode; for the Receiver
//! Server, with its Update Process). Apply starts it only when it is not, then waits up to
//! `wait` for `-checkhealth` to report it alive, and fails quoting the end of its log if not.

use std::sync::LazyLock;
use std::time::Duration;

use super::{Env, lines, one, port, qualifiers, run, secs, with_env};
use crate::args::Args;
use crate::command::quote;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

const BUFFSIZE: i64 = 1_048_576;

/// The default heartbeat of an active Source Server, in seconds. Measured on V7.0-005 (lab,
/// docs/modules/gtm.md): a `-zerobacklog` shutdown right after updates takes 15-16 s at GT.M's
/// default 15 s heartbeat and 3.0 s at 1 s; the traffic of one heartbeat a second is nothing.
/// The soft connection retry is 1 s too (GT.M: 5 s): a Source Server started before its
/// Receiver Server listens (B's, before A's FETCHRESYNC rollback in a switchover) connects
/// within a second of it instead of up to five.
const HEARTBEAT: u64 = 1;

crate::params! {
    /// The parameters both servers take, after their own.
    struct Common {

        buffsize: ParamSpec::optional(ParamType::Int,
            "-buffsize: the pool size in bytes",
        )
        .with_default(Value::Int(BUFFSIZE)),
        tlsid: ParamSpec::optional(ParamType::String,
            "-tlsid: the TLS id in $gtmcrypt_config",
        ),
        extra: ParamSpec::optional(ParamType::List(Box::new(ParamType::String)),
            "More qualifiers, each one word starting with `-`",
        ),
        wait: ParamSpec::optional(ParamType::Duration,
            "How long to wait for -checkhealth to report the server alive after starting it",
        )
        .with_default(Value::Duration(Duration::from_secs(15))),
    }
}

fn common(own: Vec<ParamSpec>) -> Vec<ParamSpec> {
    let mut params = own;
    params.extend(Common::specs());
    with_env(params)
}

/// The shell loop that waits up to `wait` seconds for `test` to hold, then fails with `what`
/// and the end of `log`.
fn wait_alive(wait: u64, test: &str, what: &str, log: &str) -> String {
    format!(
        "rb_i=0\nuntil {test}; do\n  if [ \"$rb_i\" -ge {ticks} ]; then\n    \
         rb_fail \"{what} is not alive {wait}s after starting; end of its log: $(tail -n 5 {log} 2>/dev/null | tr '\\n' ' ')\"\n  \
         fi\n  sleep 0.5; rb_i=$((rb_i + 1))\ndone",
        ticks = wait * 2,
        log = quote(log),
    )
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SourceStartModule;

crate::params! {
    struct SourceParams {

        mode: ParamSpec::optional(ParamType::Enum(&["active", "passive"]), "active (replicates to `secondary`) or passive (only the Journal Pool, on a replicating instance)")
            .with_default(Value::Str("active".into())),
        secondary_instance: ParamSpec::optional(ParamType::String,
            "-instsecondary: the name of the replicating instance (passive: default `dummy`)",
        ),
        secondary: ParamSpec::optional(ParamType::String,
            "-secondary: HOST:PORT of the replicating instance's Receiver Server (active only)",
        ),
        log: ParamSpec::optional(ParamType::Path, "-log: default LOG_DIR/source_INSTANCE_SECONDARY.log"),
        propagate: ParamSpec::optional(ParamType::Bool, "-propagateprimary: this instance propagates (A→B→C, on B)")
            .with_default(Value::Bool(false)),
        updok: ParamSpec::optional(ParamType::Bool, "-updok (true) or -updnotok (false): whether a supplementary instance accepts local updates"),
        reneg: ParamSpec::optional(ParamType::Int, "-renegotiate_interval in minutes (TLS)"),
        heartbeat: ParamSpec::optional(ParamType::Duration, "The replication heartbeat of an active Source Server (-connectparams=5,500,1,30,H,60: GT.M's defaults but a soft connection retry every 1s instead of 5s): the replicating instance's acknowledgement arrives with it, so the drain gate and a -zerobacklog shutdown wait up to one period (GT.M's default 15s; see docs/modules/gtm.md for the measurements). Ignored when `extra` has -connectparams")
            .with_default(Value::Duration(Duration::from_secs(HEARTBEAT))),
    }
}

static SOURCE_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| common(SourceParams::specs()));

struct Source {
    env: Env,
    active: bool,
    secondary_instance: String,
    start: String,
    log: String,
    wait: u64,
}

impl Source {
    fn new(args: &Args) -> Result<Self, RenderError> {
        let p = SourceParams::read(args);
        let c = Common::read(args);
        let env = Env::new(args)?;
        let active = p.mode.str().as_deref() != Some("passive");
        let secondary_instance = match (p.secondary_instance.str(), active) {
            (Some(name), _) => name,
            (None, false) => "dummy".to_owned(),
            (None, true) => {
                return Err(RenderError::new(
                    p.secondary_instance.name(),
                    "an active Source Server needs the replicating instance's name",
                ));
            }
        };
        super::check_name("secondary_instance", &secondary_instance, 15)?;
        let log = p.log.str().unwrap_or_else(|| {
            format!(
                "{}/source_{}_{secondary_instance}.log",
                env.log_dir, env.instance
            )
        });
        let mut words = vec![
            "replicate".to_owned(),
            "-source".to_owned(),
            "-start".to_owned(),
        ];
        match (active, p.secondary.str()) {
            (true, Some(secondary)) => {
                let valid = secondary.rsplit_once(':').is_some_and(|(host, p)| {
                    !host.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if !valid && !secondary.starts_with('<') {
                    return Err(RenderError::new(
                        p.secondary.name(),
                        format!("`{secondary}` is not HOST:PORT"),
                    ));
                }
                words.push(format!("-instsecondary={secondary_instance}"));
                words.push(format!("-secondary={secondary}"));
                let own = qualifiers(c.extra)?
                    .iter()
                    .any(|q| q.starts_with("-connectparams"));
                if !own {
                    let beat = secs(p.heartbeat, HEARTBEAT);
                    if !(1..=60).contains(&beat) {
                        return Err(RenderError::new(
                            p.heartbeat.name(),
                            "from 1s to 60s (GT.M's longest wait for a heartbeat)",
                        ));
                    }
                    words.push(format!("-connectparams=5,500,1,30,{beat},60"));
                }
            }
            (true, None) => {
                return Err(RenderError::new(
                    p.secondary.name(),
                    "an active Source Server needs HOST:PORT of the Receiver Server",
                ));
            }
            (false, Some(_)) => {
                return Err(RenderError::new(
                    p.secondary.name(),
                    "a passive Source Server does not connect anywhere",
                ));
            }
            (false, None) => {
                words.push("-passive".to_owned());
                words.push(format!("-instsecondary={secondary_instance}"));
            }
        }
        words.push(format!(
            "-buffsize={}",
            c.buffsize.int().unwrap_or(BUFFSIZE)
        ));
        words.push(format!("-log={log}"));
        if p.propagate.bool() == Some(true) {
            words.push("-propagateprimary".to_owned());
        }
        match p.updok.bool() {
            Some(true) => words.push("-updok".to_owned()),
            Some(false) => words.push("-updnotok".to_owned()),
            None => {}
        }
        if let Some(tlsid) = c.tlsid.str() {
            words.push(format!("-tlsid={tlsid}"));
        }
        if let Some(reneg) = p.reneg.int() {
            words.push(format!("-renegotiate_interval={reneg}"));
        }
        words.extend(qualifiers(c.extra)?);
        Ok(Self {
            env,
            active,
            start: run("mupip", &words),
            secondary_instance,
            log,
            wait: secs(c.wait, 15),
        })
    }

    /// Sets `rb_active`/`rb_passive` for this secondary.
    fn health(&self) -> String {
        format!(
            "rb_source_health {}",
            super::word_of(&format!("-instsecondary={}", self.secondary_instance))
        )
    }

    fn alive(&self) -> &'static str {
        if self.active {
            "[ \"$rb_active\" -gt 0 ]"
        } else {
            "[ \"$rb_passive\" -gt 0 ]"
        }
    }
}

impl Module for SourceStartModule {
    fn name(&self) -> &'static str {
        "gtm.source_start"
    }

    fn description(&self) -> &'static str {
        "Start an active or passive Source Server unless -checkhealth says it is alive"
    }

    fn params(&self) -> &[ParamSpec] {
        &SOURCE_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let src = Source::new(args)?;
        let (other, other_alive) = if src.active {
            ("PASSIVE", "[ \"$rb_passive\" -gt 0 ]")
        } else {
            ("ACTIVE", "[ \"$rb_active\" -gt 0 ]")
        };
        let body = [
            src.health(),
            format!("if {}; then rb_unchanged; exit 0; fi", src.alive()),
            format!(
                "if {other_alive}; then rb_fail \"the Source Server for {} is alive in {other} mode; shut it down first\"; fi",
                src.secondary_instance
            ),
            src.start.clone(),
            wait_alive(
                src.wait,
                &format!("{{ {}; {}; }}", src.health(), src.alive()),
                "the Source Server",
                &src.log,
            ),
        ];
        Ok(one(src.env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let src = Source::new(args)?;
        let body = format!(
            "{}\nif {}; then exit 0; else exit 1; fi",
            src.health(),
            src.alive()
        );
        Ok(Some(one(src.env.probe(self.name(), 1, &body))))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiverStartModule;

crate::params! {
    struct ReceiverParams {

        listen_port: ParamSpec::required(ParamType::Int, "-listenport: the port the Receiver Server listens on"),
        log: ParamSpec::optional(ParamType::Path, "-log: default LOG_DIR/receive.log"),
        updateresync: ParamSpec::optional(ParamType::Bool, "-updateresync without a value (pre-V5.5 instance files)")
            .with_default(Value::Bool(false)),
        updateresync_file: ParamSpec::optional(ParamType::Path, "-updateresync=FILE: a backup of the originating instance file (first start of an SI instance, or a new instance file)"),
        initialize: ParamSpec::optional(ParamType::Bool, "-initialize: the first time A and P replicate (with updateresync)")
            .with_default(Value::Bool(false)),
        resume: ParamSpec::optional(ParamType::Int, "-resume=STREAM: A and P replicated before (with updateresync)"),
        autorollback: ParamSpec::optional(ParamType::Bool, "-autorollback: roll back automatically when the source asks")
            .with_default(Value::Bool(false)),
        noresync: ParamSpec::optional(ParamType::Bool, "-noresync: resume from the last common transaction (SI, by application design)")
            .with_default(Value::Bool(false)),
        passive_source: ParamSpec::optional(ParamType::Bool, "Also start a passive Source Server (-instsecondary=dummy) first when no Source Server runs, as `replicating_start` does")
            .with_default(Value::Bool(true)),
        updok: ParamSpec::optional(ParamType::Bool, "On that passive Source Server: -updok (true) or -updnotok (false), for a supplementary instance"),
    }
}

static RECEIVER_PARAMS: LazyLock<Vec<ParamSpec>> =
    LazyLock::new(|| common(ReceiverParams::specs()));

struct Receiver {
    env: Env,
    passive: Option<String>,
    start: String,
    log: String,
    wait: u64,
}

impl Receiver {
    fn new(args: &Args) -> Result<Self, RenderError> {
        let p = ReceiverParams::read(args);
        let c = Common::read(args);
        let env = Env::new(args)?;
        let listen = port(p.listen_port)?.unwrap_or_default();
        let log = p
            .log
            .str()
            .unwrap_or_else(|| format!("{}/receive.log", env.log_dir));
        let mut words = vec![
            "replicate".to_owned(),
            "-receiver".to_owned(),
            "-start".to_owned(),
            format!("-listenport={listen}"),
            format!("-buffsize={}", c.buffsize.int().unwrap_or(BUFFSIZE)),
            format!("-log={log}"),
        ];
        let resync = match (p.updateresync_file.str(), p.updateresync.bool()) {
            (Some(file), _) => {
                words.push(format!("-updateresync={file}"));
                true
            }
            (None, Some(true)) => {
                words.push("-updateresync".to_owned());
                true
            }
            _ => false,
        };
        if p.initialize.bool() == Some(true) {
            if !resync {
                return Err(RenderError::new(
                    p.initialize.name(),
                    "only applies with `updateresync_file` or `updateresync`",
                ));
            }
            words.push("-initialize".to_owned());
        }
        if let Some(stream) = p.resume.int() {
            if !resync {
                return Err(RenderError::new(
                    p.resume.name(),
                    "only applies with `updateresync_file` or `updateresync`",
                ));
            }
            words.push(format!("-resume={stream}"));
        }
        if p.autorollback.bool() == Some(true) {
            if p.noresync.bool() == Some(true) {
                return Err(RenderError::new(
                    p.noresync.name(),
                    "cannot be combined with `autorollback`",
                ));
            }
            words.push("-autorollback".to_owned());
        }
        if p.noresync.bool() == Some(true) {
            words.push("-noresync".to_owned());
        }
        if let Some(tlsid) = c.tlsid.str() {
            words.push(format!("-tlsid={tlsid}"));
        }
        words.extend(qualifiers(c.extra)?);
        let passive = if p.passive_source.bool() == Some(false) {
            if p.updok.bool().is_some() {
                return Err(RenderError::new(
                    p.updok.name(),
                    "only applies with `passive_source: true`",
                ));
            }
            None
        } else {
            let mut w = vec![
                "replicate".to_owned(),
                "-source".to_owned(),
                "-start".to_owned(),
                "-passive".to_owned(),
                "-instsecondary=dummy".to_owned(),
                format!("-buffsize={}", c.buffsize.int().unwrap_or(BUFFSIZE)),
                format!("-log={}/source_{}_dummy.log", env.log_dir, env.instance),
            ];
            match p.updok.bool() {
                Some(true) => w.push("-updok".to_owned()),
                Some(false) => w.push("-updnotok".to_owned()),
                None => {}
            }
            Some(run("mupip", &w))
        };
        Ok(Self {
            env,
            passive,
            start: run("mupip", &words),
            log,
            wait: secs(c.wait, 15),
        })
    }
}

const RECEIVER_ALIVE: &str = "[ \"$rb_receiver\" = true ] && [ \"$rb_update\" = true ]";

impl Module for ReceiverStartModule {
    fn name(&self) -> &'static str {
        "gtm.receiver_start"
    }

    fn description(&self) -> &'static str {
        "Start the Receiver Server and Update Process (and a passive Source Server) unless they are alive"
    }

    fn params(&self) -> &[ParamSpec] {
        &RECEIVER_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let r = Receiver::new(args)?;
        let mut body = vec![
            "rb_receiver_health".to_owned(),
            format!("if {RECEIVER_ALIVE}; then rb_unchanged; exit 0; fi"),
            "if [ \"$rb_receiver\" = true ]; then rb_fail \"the Receiver Server is alive but its Update Process is not; shut the Receiver Server down first\"; fi".to_owned(),
        ];
        if let Some(passive) = &r.passive {
            body.push("rb_source_health".to_owned());
            body.push(format!(
                "if [ $((rb_active + rb_passive)) -eq 0 ]; then {passive}; fi"
            ));
        }
        body.push(r.start.clone());
        body.push(wait_alive(
            r.wait,
            &format!("{{ rb_receiver_health; {RECEIVER_ALIVE}; }}"),
            "the Receiver Server or its Update Process",
            &r.log,
        ));
        Ok(one(r.env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let r = Receiver::new(args)?;
        let body = format!("rb_receiver_health\nif {RECEIVER_ALIVE}; then exit 0; else exit 1; fi");
        Ok(Some(one(r.env.probe(self.name(), 1, &body))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;

    #[test]
    fn the_originating_start_of_the_seed() {
        let cmd = &remotes(
            &SourceStartModule,
            &[
                ("dir", s("/g/A")),
                ("instance", s("A")),
                ("secondary_instance", s("B")),
                ("secondary", s("localhost:4001")),
                ("tlsid", s("Alice")),
                ("reneg", Value::Int(2)),
            ],
        )[0];
        assert!(
            cmd.script.contains(
                "rb_run \"$gtm_dist/mupip\" replicate -source -start -instsecondary=B \
             -secondary=localhost:4001 -connectparams=5,500,1,30,1,60 -buffsize=1048576 -log=/g/A/log/source_A_B.log \
             -tlsid=Alice -renegotiate_interval=2\n"
            ),
            "{}",
            cmd.script
        );
        assert!(cmd.script.contains("rb_source_health -instsecondary=B\nif [ \"$rb_active\" -gt 0 ]; then rb_unchanged; exit 0; fi"));
    }

    #[test]
    fn the_replicating_start_of_the_seed() {
        let cmd = &remotes(
            &ReceiverStartModule,
            &[
                ("dir", s("/g/P")),
                ("instance", s("P")),
                ("listen_port", Value::Int(4011)),
                ("updateresync_file", s("/g/startA")),
                ("initialize", Value::Bool(true)),
                ("updok", Value::Bool(true)),
            ],
        )[0];
        assert!(cmd.script.contains(
            "then rb_run \"$gtm_dist/mupip\" replicate -source -start -passive -instsecondary=dummy \
             -buffsize=1048576 -log=/g/P/log/source_P_dummy.log -updok; fi"
        ), "{}", cmd.script);
        assert!(cmd.script.contains(
            "rb_run \"$gtm_dist/mupip\" replicate -receiver -start -listenport=4011 -buffsize=1048576 \
             -log=/g/P/log/receive.log -updateresync=/g/startA -initialize\n"
        ), "{}", cmd.script);
    }

    #[test]
    fn inconsistent_qualifiers_are_refused() {
        let base = [("dir", s("/g/A")), ("instance", s("A"))];
        for (module, extra, arg) in [
            (
                &SourceStartModule as &dyn Module,
                vec![("secondary", s("h:1"))],
                "secondary_instance",
            ),
            (
                &SourceStartModule,
                vec![("secondary_instance", s("B"))],
                "secondary",
            ),
            (
                &SourceStartModule,
                vec![("secondary_instance", s("B")), ("secondary", s("nohost"))],
                "secondary",
            ),
            (
                &SourceStartModule,
                vec![("mode", s("passive")), ("secondary", s("h:1"))],
                "secondary",
            ),
            (
                &SourceStartModule,
                vec![
                    ("secondary_instance", s("B")),
                    ("secondary", s("h:1")),
                    ("extra", Value::List(vec![s("; rm")])),
                ],
                "extra",
            ),
            (
                &ReceiverStartModule,
                vec![("listen_port", Value::Int(70000))],
                "listen_port",
            ),
            (
                &ReceiverStartModule,
                vec![
                    ("listen_port", Value::Int(1)),
                    ("initialize", Value::Bool(true)),
                ],
                "initialize",
            ),
            (
                &ReceiverStartModule,
                vec![
                    ("listen_port", Value::Int(1)),
                    ("autorollback", Value::Bool(true)),
                    ("noresync", Value::Bool(true)),
                ],
                "noresync",
            ),
        ] {
            let mut raw = base.to_vec();
            raw.extend(extra);
            let err = module.render(&args(module, &raw)).expect_err("refused");
            assert_eq!(err.arg, Some(arg), "{raw:?}");
        }
    }

    #[test]
    fn health_parsing_of_verbatim_checkhealth_output() {
        let dist = crate::gtm::testing::TempDir::new("gtm-health");
        fake_dist(dist.path());
        std::fs::write(
            dist.join("mupip.out"),
            "Mon Nov 23 11:34:03 2026 : Initiating CHECKHEALTH operation on source server pid [31879] for secondary instance name [dummy]\nPID 31879 Source server is alive in PASSIVE mode\n",
        )
        .expect("sample");
        let raw = [
            ("dir", s(&dist.str(""))),
            ("instance", s("B")),
            ("mode", s("passive")),
        ];
        let probe = check_probe(&SourceStartModule, &raw);
        assert_eq!(run_with(&probe, dist.path()).status.code(), Some(0));
        let raw = [
            ("dir", s(&dist.str(""))),
            ("instance", s("B")),
            ("secondary_instance", s("dummy")),
            ("secondary", s("h:1")),
        ];
        let probe = check_probe(&SourceStartModule, &raw);
        assert_eq!(
            run_with(&probe, dist.path()).status.code(),
            Some(1),
            "passive is not active"
        );
        std::fs::write(dist.join("mupip.out"), "%GTM-E-NOJNLPOOL, No journal pool info found in the replication instance of /x/gtm.repl\n").expect("sample");
        std::fs::write(dist.join("mupip.rc"), "138").expect("rc");
        assert_eq!(
            run_with(&probe, dist.path()).status.code(),
            Some(1),
            "no journal pool: not alive"
        );
        std::fs::write(
            dist.join("mupip.out"),
            "%GTM-E-REPLINSTOPEN, Error opening replication instance file /x/gtm.repl\n",
        )
        .expect("sample");
        let out = run_with(&probe, dist.path());
        assert_eq!(out.status.code(), Some(2), "another error: the check fails");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(
                "gtm.source_start: mupip -source -checkhealth failed: %GTM-E-REPLINSTOPEN"
            )
        );
    }
}
