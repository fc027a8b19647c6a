//! `gtm.seqno` and `gtm.set_seqno`: the Region Seqno of the database file headers.
//!
//! Seed, "Rolling Software Upgrade": "Open DSE, run DUMP -FILEHEADER for each region (FIND
//! -REGION=<Region_Name>) and note down the largest Region Seqno ... If the largest Region Seqno
//! noted in step 4 and largest Region Seqno noted in this step are the same, proceed ...
//! Otherwise, execute DSE CHANGE -FILEHEADER -REG_SEQNO=<Largest_Region_Seqno_from_step_4> for
//! the region having the largest Region Seqno."
//!
//! `gtm.seqno` prints `{"regions": {"DEFAULT": N, ...}, "max": N, "max_region": "R"}` (decimal).
//! `gtm.set_seqno` sets `seqno` on `region` (default: the region with the largest Region
//! Seqno); its check compares that region's Region Seqno with `seqno`.

use std::sync::LazyLock;

use super::{Env, check_name, lines, one, with_env};
use crate::args::Args;
use crate::command::quote;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};

/// Sets `rb_json_regions`, `rb_max` and `rb_max_region` from every region's file header.
const READ: &str = r#"rb_regions
rb_json_regions=; rb_max=-1; rb_max_region=
for rb_r in $rb_list; do
  rb_fh=$(rb_fhead "$rb_r")
  rb_hex=$(printf '%s\n' "$rb_fh" | sed -n 's/.*Region Seqno *\(0x[0-9A-Fa-f]*\).*/\1/p' | head -n 1)
  [ -n "$rb_hex" ] || rb_fail "no Region Seqno in the file header of $rb_r: $(printf '%s\n' "$rb_fh" | grep -E '%[A-Z]+-[EF]-' | head -n 1)"
  rb_n=$(printf '%d' "$rb_hex")
  rb_json_regions="$rb_json_regions${rb_json_regions:+, }\"$rb_r\": $rb_n"
  if [ "$rb_n" -gt "$rb_max" ]; then rb_max=$rb_n; rb_max_region=$rb_r; fi
done"#;

#[derive(Debug, Clone, Copy, Default)]
pub struct SeqnoModule;

crate::params! {
    struct Params {
,
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(Params::specs()));

impl Module for SeqnoModule {
    fn name(&self) -> &'static str {
        "gtm.seqno"
    }

    fn description(&self) -> &'static str {
        "Report each region's Region Seqno (dse dump -fileheader) and the largest, as JSON"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let env = Env::new(args)?;
        let body = format!(
            "{READ}\nprintf '{{\"regions\": {{%s}}, \"max\": %s, \"max_region\": \"%s\"}}\\n' \"$rb_json_regions\" \"$rb_max\" \"$rb_max_region\""
        );
        Ok(one(env.query(self.name(), &body)))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let env = Env::new(args)?;
        Ok(Some(one(env.probe(self.name(), 2, "exit 0"))))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SetSeqnoModule;

crate::params! {
    struct SetParams {

        seqno: ParamSpec::required(ParamType::Int,
            "The Region Seqno to set (decimal), e.g. `{{ before.values.max }}`",
        ),
        region: ParamSpec::optional(ParamType::String,
            "The region (default: the one with the largest Region Seqno)",
        ),
    }
}

static SET_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(SetParams::specs()));

/// The Region Seqno as a shell word (a registered value known only at run time renders as its
/// placeholder in `plan`, and as the number when the step runs), and the region picker.
fn target(p: &SetParams<'_>) -> Result<(String, String), RenderError> {
    let seqno = match p.seqno.get() {
        Some(v) if v.is_deferred() => quote(&v.to_string()),
        _ => {
            let seqno = p.seqno.int().unwrap_or_default();
            if seqno < 1 {
                return Err(RenderError::new(
                    p.seqno.name(),
                    "a Region Seqno is at least 1",
                ));
            }
            seqno.to_string()
        }
    };
    let pick = match p.region.str() {
        Some(r) => {
            let r = r.to_uppercase();
            check_name("region", &r, 31)?;
            format!("rb_target={}", quote(&r))
        }
        None => "rb_target=$rb_max_region".to_owned(),
    };
    Ok((seqno, pick))
}

impl Module for SetSeqnoModule {
    fn name(&self) -> &'static str {
        "gtm.set_seqno"
    }

    fn description(&self) -> &'static str {
        "Set a region's Region Seqno (dse change -fileheader -reg_seqno), for the rolling upgrade"
    }

    fn params(&self) -> &[ParamSpec] {
        &SET_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let env = Env::new(args)?;
        let (seqno, pick) = target(&SetParams::read(args))?;
        let body = [
            READ.to_owned(),
            pick,
            "rb_cur=$(printf '%s\\n' \"$rb_json_regions\" | tr ',' '\\n' | sed -n \"s/.*\\\"$rb_target\\\": \\([0-9]*\\).*/\\1/p\")".to_owned(),
            "[ -n \"$rb_cur\" ] || rb_fail \"no region $rb_target\"".to_owned(),
            format!("if [ \"$rb_cur\" -eq {seqno} ]; then rb_unchanged; exit 0; fi"),
            format!("rb_out=$(printf 'find -region=%s\\nchange -fileheader -reg_seqno=%x\\n' \"$rb_target\" {seqno} | \"$gtm_dist/dse\" 2>&1) || rb_fail \"dse failed: $rb_out\""),
            "printf '%s\\n' \"$rb_out\" >&2".to_owned(),
            "if printf '%s\\n' \"$rb_out\" | grep -Eq '%[A-Z]+-[EF]-'; then rb_fail \"dse failed: $(printf '%s\\n' \"$rb_out\" | grep -E '%[A-Z]+-[EF]-' | head -n 1)\"; fi".to_owned(),
            format!("printf '{{\"region\": \"%s\", \"from\": %s, \"to\": %s}}\\n' \"$rb_target\" \"$rb_cur\" {seqno}"),
        ];
        Ok(one(env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let env = Env::new(args)?;
        let (seqno, pick) = target(&SetParams::read(args))?;
        let body = [
            READ.to_owned(),
            pick,
            format!(
                "printf '%s\\n' \"$rb_json_regions\" | tr ',' '\\n' | grep -q \"\\\"$rb_target\\\": {seqno}$\" && exit 0 || exit 1"
            ),
        ];
        Ok(Some(one(env.probe(self.name(), 2, &lines(&body)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;
    use crate::value::Value;

    #[test]
    fn set_seqno_takes_a_registered_value_known_only_at_run_time() {
        let raw = [
            ("dir", s("/g/B")),
            ("instance", s("B")),
            ("seqno", Value::Deferred("before.values.max".into())),
        ];
        let cmd = &remotes(&SetSeqnoModule, &raw)[0];
        assert!(
            cmd.script.contains(
                "change -fileheader -reg_seqno=%x\\n' \"$rb_target\" '<before.values.max>' |"
            ),
            "{}",
            cmd.script
        );
        sh_n(&cmd.script, "set_seqno with a deferred seqno");
        let cmd = &remotes(
            &SetSeqnoModule,
            &[
                ("dir", s("/g/B")),
                ("instance", s("B")),
                ("seqno", Value::Int(42)),
            ],
        )[0];
        assert!(
            cmd.script
                .contains("if [ \"$rb_cur\" -eq 42 ]; then rb_unchanged; exit 0; fi")
        );
        assert!(
            cmd.script.ends_with("\"$rb_target\" \"$rb_cur\" 42"),
            "{}",
            cmd.script
        );
        let err = SetSeqnoModule
            .render(&args(
                &SetSeqnoModule,
                &[
                    ("dir", s("/g/B")),
                    ("instance", s("B")),
                    ("seqno", Value::Int(0)),
                ],
            ))
            .expect_err("0 is no Region Seqno");
        assert_eq!(err.arg, Some("seqno"));
    }
}
