//! `gtm.rollback`: `mupip journal -rollback`, keeping the lost-transaction file.
//!
//! Seed: the `rollback` script (`mupip journal -rollback -fetchresync=PORT -backward "*"`, or
//! `-forward`), the switchover section ("Perform a FETCHRESYNC ROLLBACK BACKWARD ... Process the
//! lost transaction file as soon as possible") and "Rollback data from crashed (idle) regions"
//! (`-backward "*"` without a fetch). `-losttrans=FILE` names the lost-transaction file
//! (default `DIR/gtm.lost`) and `-brokentrans=FILE` the broken-transaction file (default
//! `DIR/gtm.broken`); an existing file of either name is first moved aside with a timestamp, so
//! an earlier rollback's lost transactions are never overwritten.
//!
//! The lost-transaction file is kept as the run artifact `gtm.lost` and parsed (GT.M journal
//! extract format: `05` SET, `04` KILL, `10` ZKILL, `08`/`09` TSTART/TCOM; field 6 is the
//! sequence number). Prints `{"lost_file", "transactions", "updates", "sets", "kills",
//! "zkills", "seqno"}` (`seqno`: "Journal seqno of the instance after rollback"), plus
//! `"extract"` (the file's text) with `print_extract: true`, so a later step on another host
//! can re-apply it with `gtm.apply_lost` (`content: "{{ rb.values.extract }}"`).
//!
//! A rollback is not repeated blindly (not idempotent) and whether one is needed is only known
//! by asking the other instance, so there is no check.

use std::sync::LazyLock;

use super::mumps::JSON_TEXT;
use super::{Env, lines, one, port, run, with_env};
use crate::args::Args;
use crate::command::quote;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

#[derive(Debug, Clone, Copy, Default)]
pub struct RollbackModule;

crate::params! {
    struct Params {

        fetchresync: ParamSpec::optional(ParamType::Int,
            "-fetchresync=PORT: get the resync point from the new originating instance's Source Server on this port",
        ),
        direction: ParamSpec::optional(ParamType::Enum(&["backward", "forward"]),
            "-backward (the switchover) or -forward",
        )
        .with_default(Value::Str("backward".into())),
        resync: ParamSpec::optional(ParamType::Int,
            "-resync=SEQNO: roll back to this journal sequence number instead",
        ),
        online: ParamSpec::optional(ParamType::Bool,
            "-online: roll back while processes are attached",
        )
        .with_default(Value::Bool(false)),
        lost_file: ParamSpec::optional(ParamType::Path,
            "-losttrans: default DIR/gtm.lost",
        ),
        broken_file: ParamSpec::optional(ParamType::Path,
            "-brokentrans: default DIR/gtm.broken",
        ),
        print_extract: ParamSpec::optional(ParamType::Bool,
            "Add the lost-transaction file's text to the JSON as `extract`",
        )
        .with_default(Value::Bool(false)),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(Params::specs()));

/// Parses the lost-transaction file `$1` into `rb_counts` (JSON members).
pub(crate) const COUNT_LOST: &str = r#"rb_count_lost() {
  rb_counts=$(awk -F'\\' '
    FNR == 1 && /^GDSJEX/ { next }
    $1 == "05" { s++; q[$6] = 1 } $1 == "04" { k++; q[$6] = 1 } $1 == "10" { z++; q[$6] = 1 }
    END { n = 0; for (x in q) n++; printf "\"transactions\": %d, \"updates\": %d, \"sets\": %d, \"kills\": %d, \"zkills\": %d", n, s + k + z, s, k, z }' "$1")
}"#;

impl Module for RollbackModule {
    fn name(&self) -> &'static str {
        "gtm.rollback"
    }

    fn description(&self) -> &'static str {
        "Roll the instance back (mupip journal -rollback), keeping and counting the lost-transaction file"
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
        let lost = p
            .lost_file
            .str()
            .unwrap_or_else(|| format!("{}/gtm.lost", env.dir));
        let broken = p
            .broken_file
            .str()
            .unwrap_or_else(|| format!("{}/gtm.broken", env.dir));
        let mut words = vec!["journal".to_owned(), "-rollback".to_owned()];
        words.push(format!(
            "-{}",
            p.direction.str().unwrap_or_else(|| "backward".into())
        ));
        if let Some(fetch) = port(p.fetchresync)? {
            if p.resync.int().is_some() {
                return Err(RenderError::new(
                    p.resync.name(),
                    "cannot be combined with `fetchresync`",
                ));
            }
            words.push(format!("-fetchresync={fetch}"));
        }
        if let Some(seqno) = p.resync.int() {
            words.push(format!("-resync={seqno}"));
        }
        if p.online.bool() == Some(true) {
            words.push("-online".to_owned());
        }
        words.push(format!("-losttrans={lost}"));
        words.push(format!("-brokentrans={broken}"));
        words.push("*".to_owned());
        let mut body = vec![
            COUNT_LOST.to_owned(),
            JSON_TEXT.to_owned(),
            format!("rb_lost={}", quote(&lost)),
            format!("rb_stamp=$(date +%Y%m%d%H%M%S)"),
            format!(
                "for rb_f in \"$rb_lost\" {}; do if [ -e \"$rb_f\" ]; then mv \"$rb_f\" \"$rb_f.$rb_stamp\" || rb_fail \"cannot move $rb_f aside\"; printf 'runbook: kept the earlier %s as %s\\n' \"$rb_f\" \"$rb_f.$rb_stamp\" >&2; fi; done",
                quote(&broken)
            ),
            run("mupip", &words),
            "rb_seqno=$(printf '%s\\n' \"$rb_out\" | sed -n 's/.*Journal seqno of the instance after rollback is \\([0-9]*\\).*/\\1/p' | tail -n 1)".to_owned(),
            "[ -f \"$rb_lost\" ] || : > \"$rb_lost\"".to_owned(),
            "rb_count_lost \"$rb_lost\"".to_owned(),
        ];
        if p.print_extract.bool() == Some(true) {
            body.push("printf '{\"lost_file\": %s, %s, \"seqno\": %s, \"extract\": \"%s\"}\\n' \"$(rb_json_str \"$rb_lost\")\" \"$rb_counts\" \"${rb_seqno:-null}\" \"$(rb_json_text \"$(cat \"$rb_lost\")\")\"".to_owned());
        } else {
            body.push("printf '{\"lost_file\": %s, %s, \"seqno\": %s}\\n' \"$(rb_json_str \"$rb_lost\")\" \"$rb_counts\" \"${rb_seqno:-null}\"".to_owned());
        }
        let cmd = env
            .command(self.name(), &lines(&body))
            .collect(lost, "gtm.lost");
        Ok(one(cmd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;

    /// Verbatim from a switchover on V7.0-005 (`cat A/gtm.lost`).
    pub const LOST: &str = r#"GDSJEX07 ROLLBACK PRIMARY A
05\67897,41692\22\1213\0\22\0\0\0\0\^losttrans(1)="1"
05\67897,41692\23\1213\0\23\0\0\0\0\^losttrans(2)="2"
02\67897,41692\27\1213\0
01\67897,41692\27\1214\vm\root\\0\\\
04\67897,41692\27\1214\0\27\0\0\0\0\^A(3)
05\67897,41692\28\1214\0\28\0\0\0\0\^A("x y")="a""b"
02\67897,41692\29\1214\0
01\67897,41692\29\1215\vm\root\\0\\\
08\67897,41692\29\1215\0\29\0\0
05\67897,41692\29\1215\0\29\0\0\1\0\^T(1)="1"
05\67897,41692\29\1215\0\29\0\0\2\0\^T(2)="2"
09\67897,41692\29\1215\0\29\0\0\1\
02\67897,41692\30\1215\0
03\67897,41697\30\31851\0\30
"#;

    #[test]
    fn renders_the_fetchresync_rollback_and_collects_the_lost_file() {
        let cmd = &remotes(
            &RollbackModule,
            &[
                ("dir", s("/g/A")),
                ("instance", s("A")),
                ("fetchresync", Value::Int(4001)),
            ],
        )[0];
        assert!(
            cmd.script.contains(
                "rb_run \"$gtm_dist/mupip\" journal -rollback -backward -fetchresync=4001 \
             -losttrans=/g/A/gtm.lost -brokentrans=/g/A/gtm.broken '*'\n"
            ),
            "{}",
            cmd.script
        );
        assert_eq!(cmd.artifacts[0].path, "/g/A/gtm.lost");
        assert_eq!(cmd.artifacts[0].name, "gtm.lost");
    }

    #[test]
    fn counts_the_records_of_a_lost_transaction_file() {
        let dist = crate::gtm::testing::TempDir::new("gtm-rollback");
        fake_dist(dist.path());
        let dir = dist.str("");
        std::fs::write(
            dist.join("mupip.out"),
            "%GTM-I-RLBKJNSEQ, Journal seqno of the instance after rollback is 22 [0x0000000000000016]\n%GTM-S-JNLSUCCESS, Rollback successful\n",
        )
        .expect("sample");
        // The fake mupip "creates" the lost file: it is already there, and moved aside first.
        std::fs::write(dist.join("gtm.lost"), "earlier").expect("earlier");
        let raw = [
            ("dir", s(&dir)),
            ("instance", s("A")),
            ("fetchresync", Value::Int(4001)),
            ("print_extract", Value::Bool(true)),
        ];
        let mut cmd = remotes(&RollbackModule, &raw)[0].clone();
        cmd.script = cmd.script.replace(
            "rb_run \"$gtm_dist/mupip\" journal",
            &format!(
                "printf '%s' {} > \"$rb_lost\"; rb_run \"$gtm_dist/mupip\" journal",
                quote(LOST)
            ),
        );
        let out = run_with(&cmd, dist.path());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(json["transactions"], 5);
        assert_eq!(json["updates"], 6);
        assert_eq!(json["sets"], 5);
        assert_eq!(json["kills"], 1);
        assert_eq!(json["seqno"], 22);
        assert_eq!(json["extract"], LOST.trim_end());
        let kept: Vec<_> = std::fs::read_dir(dist.path())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("gtm.lost."))
            .collect();
        assert_eq!(kept.len(), 1, "the earlier file is kept");
    }
}
