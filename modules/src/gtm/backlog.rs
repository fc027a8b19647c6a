//! `gtm.backlog` and `gtm.wait_backlog`: `-showbacklog`, as JSON, and a gate on it.
//!
//! Seed: `repl_status` (`mupip replicate -source -showbacklog`, `mupip replicate -receiver
//! -showbacklog`) and the switchover section ("A and B are in sync ... all pending updates are
//! replicated to B"). GT.M V7 prints, for each Source Server:
//!
//! ```text
//! %GTM-I-LASTTRANS, Last transaction sequence number posted         : 21
//! %GTM-I-LASTTRANS, Last transaction sequence number sent           : 21
//! %GTM-I-LASTTRANS, Last transaction sequence number acknowledged   : 21
//! %GTM-I-SRCBACKLOGSTATUS, Instance B is behind by 0 transaction(s)
//! ```
//!
//! `gtm.backlog` prints `{"posted", "sent", "acknowledged", "backlog", "unsent", "servers"}`
//! for the source side (`backlog`: the transactions the replicating instance has not
//! acknowledged, the largest over the Source Servers reported; `unsent`: posted − sent), or
//! `{"backlog", "received", "processed"}` for the receiver side.
//!
//! `gtm.wait_backlog` polls until the backlog is zero (`measure: acknowledged`, the default,
//! or `sent`), then prints the same JSON; after `timeout` it fails quoting the last backlog.
//! The acknowledgement reaches the originating instance with the replication heartbeat, some
//! seconds after the transactions themselves.

use std::sync::LazyLock;
use std::time::Duration;

use super::{Env, lines, one, secs, tool, with_env};
use crate::arg::Arg;
use crate::args::Args;
use crate::command::quote;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// Parses `$rb_bl` (source -showbacklog output) into `rb_json` and `rb_backlog`/`rb_unsent`.
const PARSE_SOURCE: &str = r#"rb_parse_source() {
  rb_json=$(printf '%s\n' "$rb_bl" | awk '
    /sequence number posted/ {p=$NF} /sequence number sent/ {s=$NF} /sequence number acknowledged/ {a=$NF}
    /SRCBACKLOGSTATUS/ { for (i = 2; i <= NF; i++) if ($i ~ /^transaction/) b = $(i-1) + 0; if (b > mb) mb = b; n++ }
    END { if (n == 0) exit 1; printf "{\"posted\": %d, \"sent\": %d, \"acknowledged\": %d, \"backlog\": %d, \"unsent\": %d, \"servers\": %d}\n", p, s, a, mb, p - s, n }') ||
    rb_fail "no backlog in the output of mupip -showbacklog: $(printf '%s\n' "$rb_bl" | tail -n 1)"
  rb_backlog=$(printf '%s\n' "$rb_json" | sed 's/.*"backlog": \([0-9]*\).*/\1/')
  rb_unsent=$(printf '%s\n' "$rb_json" | sed 's/.*"unsent": \([0-9-]*\).*/\1/')
}"#;

pub(crate) const PARSE_RECEIVER: &str = r#"rb_parse_receiver() {
  rb_json=$(printf '%s\n' "$rb_bl" | awk '
    /number of backlog transactions received/ {b=$1; n++} /last transaction received/ {r=$1} /last transaction processed/ {u=$1}
    END { if (n == 0) exit 1; printf "{\"backlog\": %d, \"received\": %d, \"processed\": %d}\n", b, r, u }') ||
    rb_fail "no backlog in the output of mupip -receiver -showbacklog: $(printf '%s\n' "$rb_bl" | tail -n 1)"
}"#;

fn secondary(arg: Arg<'_>) -> Result<Vec<String>, RenderError> {
    match arg.str() {
        Some(name) => {
            super::check_name(arg.name(), &name, 15)?;
            Ok(vec![format!("-instsecondary={name}")])
        }
        None => Ok(vec![]),
    }
}

fn secondary_param(name: &'static str) -> ParamSpec {
    ParamSpec::optional(
        name,
        ParamType::String,
        "-instsecondary: only the Source Server replicating to this instance",
    )
}

#[derive(Debug, Clone, Copy, Default)]
pub struct BacklogModule;

crate::params! {
    struct BacklogParams {

        side: ParamSpec::optional(ParamType::Enum(&["source", "receiver"]),
            "The Source Server's backlog (originating) or the Receiver Server's (replicating)",
        )
        .with_default(Value::Str("source".into())),
        secondary_instance: secondary_param(),
    }
}

static BACKLOG_PARAMS: LazyLock<Vec<ParamSpec>> =
    LazyLock::new(|| with_env(BacklogParams::specs()));

impl Module for BacklogModule {
    fn name(&self) -> &'static str {
        "gtm.backlog"
    }

    fn description(&self) -> &'static str {
        "Report the replication backlog (-showbacklog) as JSON numbers"
    }

    fn params(&self) -> &[ParamSpec] {
        &BACKLOG_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = BacklogParams::read(args);
        let env = Env::new(args)?;
        let body = if p.side.str().as_deref() == Some("receiver") {
            if p.secondary_instance.str().is_some() {
                return Err(RenderError::new(
                    p.secondary_instance.name(),
                    "only applies to `side: source`",
                ));
            }
            [
                PARSE_RECEIVER.to_owned(),
                format!(
                    "rb_run {}",
                    tool("mupip", ["replicate", "-receiver", "-showbacklog"])
                ),
                "rb_bl=$rb_out; rb_parse_receiver".to_owned(),
                "printf '%s\\n' \"$rb_json\"".to_owned(),
            ]
        } else {
            let mut words = vec![
                "replicate".to_owned(),
                "-source".to_owned(),
                "-showbacklog".to_owned(),
            ];
            words.extend(secondary(p.secondary_instance)?);
            [
                PARSE_SOURCE.to_owned(),
                format!("rb_run {}", tool("mupip", &words)),
                "rb_bl=$rb_out; rb_parse_source".to_owned(),
                "printf '%s\\n' \"$rb_json\"".to_owned(),
            ]
        };
        Ok(one(env.query(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        self.render(args)?;
        let env = Env::new(args)?;
        Ok(Some(one(env.probe(self.name(), 2, "exit 0"))))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct WaitBacklogModule;

crate::params! {
    struct WaitParams {

        secondary_instance: secondary_param(),
        measure: ParamSpec::optional(ParamType::Enum(&["acknowledged", "sent"]),
            "Wait until the replicating instance acknowledged everything, or until everything was sent",
        )
        .with_default(Value::Str("acknowledged".into())),
        max_backlog: ParamSpec::optional(ParamType::Int,
            "Pass when the backlog is at most this many transactions (default 0). Under a live application the acknowledged backlog is rarely 0: acknowledgements come with the heartbeat; a gate before a freeze can accept a few, the -zerobacklog stop inside the freeze confirms zero",
        )
        .with_default(Value::Int(0)),
        timeout: ParamSpec::optional(ParamType::Duration, "How long to wait before failing")
            .with_default(Value::Duration(Duration::from_secs(300))),
        interval: ParamSpec::optional(ParamType::Duration, "How long to sleep between checks")
            .with_default(Value::Duration(Duration::from_secs(2))),
    }
}

static WAIT_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(WaitParams::specs()));

struct Wait {
    env: Env,
    showbacklog: String,
    zero: String,
}

impl Wait {
    fn new(args: &Args) -> Result<Self, RenderError> {
        let p = WaitParams::read(args);
        let env = Env::new(args)?;
        let mut words = vec![
            "replicate".to_owned(),
            "-source".to_owned(),
            "-showbacklog".to_owned(),
        ];
        words.extend(secondary(p.secondary_instance)?);
        let max = p.max_backlog.int().unwrap_or(0);
        if max < 0 {
            return Err(RenderError::new(p.max_backlog.name(), "must be 0 or more"));
        }
        let zero = if p.measure.str().as_deref() == Some("sent") {
            format!("[ \"$rb_unsent\" -le {max} ]")
        } else {
            format!("[ \"$rb_backlog\" -le {max} ]")
        };
        Ok(Self {
            env,
            showbacklog: tool("mupip", &words),
            zero,
        })
    }

    /// Sets `rb_bl` and parses it; fails when mupip fails (no Source Server: it never drains).
    fn poll(&self) -> String {
        format!(
            "rb_poll() {{\n  rb_bl=$({} 2>&1) || rb_fail \"mupip -showbacklog failed: $(printf '%s\\n' \"$rb_bl\" | grep -E '%[A-Z]+-[EF]-' | head -n 1)\"\n  rb_parse_source\n}}",
            self.showbacklog
        )
    }
}

impl Module for WaitBacklogModule {
    fn name(&self) -> &'static str {
        "gtm.wait_backlog"
    }

    fn description(&self) -> &'static str {
        "Wait until the Source Server's backlog is zero, or fail after a timeout quoting the last backlog"
    }

    fn params(&self) -> &[ParamSpec] {
        &WAIT_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = WaitParams::read(args);
        let w = Wait::new(args)?;
        let timeout = secs(p.timeout, 300);
        let interval = p.interval.duration().unwrap_or(Duration::from_secs(2));
        if interval.is_zero() {
            return Err(RenderError::new(
                p.interval.name(),
                "must be longer than 0s",
            ));
        }
        let body = [
            PARSE_SOURCE.to_owned(),
            w.poll(),
            format!("rb_deadline=$(( $(date +%s) + {timeout} ))"),
            "while :; do".to_owned(),
            "  rb_poll".to_owned(),
            format!(
                "  if {}; then printf '%s\\n' \"$rb_json\"; exit 0; fi",
                w.zero
            ),
            format!(
                "  if [ \"$(date +%s)\" -ge \"$rb_deadline\" ]; then rb_fail \"backlog not zero after {}: $(printf '%s\\n' \"$rb_bl\" | grep SRCBACKLOGSTATUS | tr '\\n' ' ')$rb_json\"; fi",
                crate::value::format_duration(Duration::from_secs(timeout))
            ),
            format!(
                "  sleep {}",
                quote(&format!("{:.3}", interval.as_secs_f64()))
            ),
            "done".to_owned(),
        ];
        Ok(one(w.env.query(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let w = Wait::new(args)?;
        let body = [
            PARSE_SOURCE.to_owned(),
            w.poll(),
            "rb_poll".to_owned(),
            format!("if {}; then exit 0; else exit 1; fi", w.zero),
        ];
        Ok(Some(one(w.env.probe(self.name(), 2, &lines(&body)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;

    const BEHIND: &str = "Mon Nov 23 11:34:07 2026 : Initiating SHOWBACKLOG operation on source server pid [31851] for secondary instance [B]\n\
%GTM-I-LASTTRANS, Last transaction sequence number posted         : 21\n\
%GTM-I-LASTTRANS, Last transaction sequence number sent           : 20\n\
%GTM-I-LASTTRANS, Last transaction sequence number acknowledged   : 0\n\
%GTM-I-SRCBACKLOGSTATUS, Instance B has not acknowledged 21 transaction(s)\n";

    const IN_SYNC: &str = "Mon Nov 23 11:34:38 2026 : Initiating SHOWBACKLOG operation on source server pid [31851] for secondary instance [B]\n\
%GTM-I-LASTTRANS, Last transaction sequence number posted         : 21\n\
%GTM-I-LASTTRANS, Last transaction sequence number sent           : 21\n\
%GTM-I-LASTTRANS, Last transaction sequence number acknowledged   : 21\n\
%GTM-I-SRCBACKLOGSTATUS, Instance B is behind by 0 transaction(s)\n";

    fn json(out: &std::process::Output) -> serde_json::Value {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    #[test]
    fn parses_the_source_and_receiver_backlogs() {
        let dist = crate::gtm::testing::TempDir::new("gtm-backlog");
        fake_dist(dist.path());
        let dir = dist.str("");
        std::fs::write(dist.join("mupip.out"), BEHIND).expect("sample");
        let cmd = &remotes(
            &BacklogModule,
            &[
                ("dir", s(&dir)),
                ("instance", s("A")),
                ("secondary_instance", s("B")),
            ],
        )[0];
        assert!(cmd.script.contains(
            "rb_run \"$gtm_dist/mupip\" replicate -source -showbacklog -instsecondary=B\n"
        ));
        assert_eq!(
            json(&run_with(cmd, dist.path())),
            serde_json::json!({"posted": 21, "sent": 20, "acknowledged": 0, "backlog": 21, "unsent": 1, "servers": 1})
        );
        std::fs::write(
            dist.join("mupip.out"),
            "0 : number of backlog transactions received by receiver server and yet to be processed by update process\n\
             20 : sequence number of last transaction received from Source Server and written to receive pool\n\
             19 : sequence number of last transaction processed by update process\n",
        )
        .expect("sample");
        let cmd = &remotes(
            &BacklogModule,
            &[
                ("dir", s(&dir)),
                ("instance", s("B")),
                ("side", s("receiver")),
            ],
        )[0];
        assert_eq!(
            json(&run_with(cmd, dist.path())),
            serde_json::json!({"backlog": 0, "received": 20, "processed": 19})
        );
    }

    #[test]
    fn the_gate_opens_at_zero_and_times_out_quoting_the_backlog() {
        let dist = crate::gtm::testing::TempDir::new("gtm-wait");
        fake_dist(dist.path());
        let dir = dist.str("");
        let raw = [
            ("dir", s(&dir)),
            ("instance", s("A")),
            ("timeout", s("1s")),
            ("interval", s("200ms")),
        ];
        std::fs::write(dist.join("mupip.out"), BEHIND).expect("sample");
        let cmd = &remotes(&WaitBacklogModule, &raw)[0];
        let out = run_with(cmd, dist.path());
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("gtm.wait_backlog: backlog not zero after 1s: %GTM-I-SRCBACKLOGSTATUS, Instance B has not acknowledged 21 transaction(s)"), "{err}");
        assert_eq!(
            run_with(&check_probe(&WaitBacklogModule, &raw), dist.path())
                .status
                .code(),
            Some(1)
        );

        std::fs::write(dist.join("mupip.out"), IN_SYNC).expect("sample");
        let out = run_with(cmd, dist.path());
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(json(&out)["backlog"], 0);
        assert_eq!(
            run_with(&check_probe(&WaitBacklogModule, &raw), dist.path())
                .status
                .code(),
            Some(0)
        );

        // `max_backlog`: a gate before a freeze accepts a small backlog (21 here).
        std::fs::write(dist.join("mupip.out"), BEHIND).expect("sample");
        let mut some = raw.to_vec();
        some.push(("max_backlog", Value::Int(21)));
        let out = run_with(&remotes(&WaitBacklogModule, &some)[0], dist.path());
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(json(&out)["backlog"], 21);
        some.pop();
        some.push(("max_backlog", Value::Int(20)));
        let out = run_with(&remotes(&WaitBacklogModule, &some)[0], dist.path());
        assert_eq!(out.status.code(), Some(1), "{out:?}");

        // Without a Source Server the backlog never drains: fail at once.
        std::fs::write(
            dist.join("mupip.out"),
            "%GTM-E-NOJNLPOOL, No journal pool info found in the replication instance of /x\n",
        )
        .expect("sample");
        std::fs::write(dist.join("mupip.rc"), "138").expect("rc");
        let out = run_with(cmd, dist.path());
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("mupip -showbacklog failed: %GTM-E-NOJNLPOOL")
        );
    }
}
