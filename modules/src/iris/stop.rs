//! `iris.stop`: stop an instance, `iris stop INSTANCE [quietly] [nofailover]`.
//!
//! Seed 000, section 4.22 step 1 ("Stop instance A, the primary failover member, to induce
//! failover to the backup: `iris stop <instance-name>`") and 4.15 step 1 (stop the backup first,
//! then the primary). `quietly` (the default here) skips the vendor's interactive questions;
//! `nofailover` stops a primary failover member without letting the backup take over (the
//! vendor's planned-outage procedure). The query is `iris qlist INSTANCE`: a `down` instance is
//! left alone; after `iris stop` the module fails unless `iris qlist` says `down`.

use std::sync::LazyLock;

use super::{Operate, Plan, Target, plain_params};
use crate::args::Args;
use crate::command::quote;
use crate::module::RenderError;
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub struct Stop;

crate::params! {
    struct Params {
        quietly: ParamSpec::optional(ParamType::Bool,
            "Pass `quietly`: no interactive questions (default true)",
        )
        .with_default(Value::Bool(true)),
        nofailover: ParamSpec::optional(ParamType::Bool,
            "Pass `nofailover`: a primary failover member stops without failing over to the backup",
        )
        .with_default(Value::Bool(false)),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| plain_params(Params::specs()));

impl Operate for Stop {
    fn name(&self) -> &'static str {
        "iris.stop"
    }

    fn description(&self) -> &'static str {
        "Stop an IRIS instance with `iris stop` (optionally `nofailover`) unless it is down"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let p = Params::read(args);
        let target = Target::plain(self.name(), args)?;
        let mut command = format!("{} stop {}", target.iris(), quote(&target.instance));
        if p.quietly.bool().unwrap_or(true) {
            command.push_str(" quietly");
        }
        if p.nofailover.bool().unwrap_or(false) {
            command.push_str(" nofailover");
        }
        let act = format!(
            "out=$({command} </dev/null 2>&1) || fail \"iris stop failed: $(last \"$out\")\"\n\
             {qlist}[ \"$q_running\" = down ] || fail \"iris stop returned but the instance is $q_status\"\n",
            qlist = target.qlist()
        );
        Ok(Plan {
            query: target.qlist(),
            in_state: "[ \"$q_running\" = down ]".into(),
            act,
            session: false,
            artifacts: Vec::new(),
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iris::Iris;
    use crate::iris::testing::{probe, render, s};

    fn stop_line(raw: &[(&str, Value)]) -> String {
        let mut raw = raw.to_vec();
        raw.push(("instance", s("HSPC")));
        let script = render(&Iris(Stop), &raw).script;
        script
            .lines()
            .find(|l| l.contains(" stop "))
            .expect("a stop line")
            .to_owned()
    }

    #[test]
    fn stops_with_the_documented_arguments() {
        assert_eq!(
            stop_line(&[]),
            "out=$(iris stop HSPC quietly </dev/null 2>&1) || fail \"iris stop failed: $(last \"$out\")\""
        );
        assert_eq!(
            stop_line(&[("nofailover", Value::Bool(true))]),
            "out=$(iris stop HSPC quietly nofailover </dev/null 2>&1) || fail \"iris stop failed: $(last \"$out\")\""
        );
        assert_eq!(
            stop_line(&[
                ("quietly", Value::Bool(false)),
                ("nofailover", Value::Bool(true))
            ]),
            "out=$(iris stop HSPC nofailover </dev/null 2>&1) || fail \"iris stop failed: $(last \"$out\")\""
        );
        let script = render(&Iris(Stop), &[("instance", s("HSPC"))]).script;
        assert!(script.contains(
            "if [ \"$q_running\" = down ]; then printf '%s\\n' 'runbook: unchanged'; exit 0; fi\n"
        ));
        assert!(script.ends_with(
            "[ \"$q_running\" = down ] || fail \"iris stop returned but the instance is $q_status\""
        ));
        let check = probe(&Iris(Stop), &[("instance", s("HSPC"))]);
        assert!(
            check
                .script
                .ends_with("if [ \"$q_running\" = down ]; then exit 0; else exit 1; fi")
        );
    }
}
