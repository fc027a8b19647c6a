//! `iris.production_stop` and `iris.production_start`: stop or start the interoperability
//! production of one namespace, with `Ens.Director.StopProduction(Timeout, Force)` and
//! `Ens.Director.StartProduction(Name)`.
//!
//! Seed 000, sections 4.10 ("Stopping Your Productions", where the planned outage begins) and
//! 4.24 ("Starting Your Productions"). The portal's HealthShare "Stop All" / "Start All" act on
//! every namespace; these modules do one namespace each, so a runbook lists them (or uses
//! `iris.objectscript` with `##class(HS.Director).StopAll()`). The query is
//! `Ens.Director.GetProductionStatus(.name,.state)` (state 1 running, 2 stopped, 3 suspended,
//! 4 troubled): stop leaves a stopped namespace alone, start leaves the named production alone
//! when it is running.

use std::sync::LazyLock;

use super::{Operate, Plan, Target, os_str, report, required_text, session_params, value_line};
use crate::args::Args;
use crate::command::quote;
use crate::module::RenderError;
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub struct ProductionStop;
pub struct ProductionStart;

fn namespace(name: &'static str) -> ParamSpec {
    ParamSpec::required(
        name,
        ParamType::String,
        "The namespace of the production (`iris session INSTANCE -U NAMESPACE`)",
    )
}

crate::params! {
    struct StopParams {

        namespace: namespace(),
        timeout: ParamSpec::optional(ParamType::Int,
            "Seconds StopProduction waits for business hosts (default 120)",
        )
        .with_default(Value::Int(120)),
        force: ParamSpec::optional(ParamType::Bool,
            "Force the stop after the timeout (default false)",
        )
        .with_default(Value::Bool(false)),
    }
}

static STOP_PARAMS: LazyLock<Vec<ParamSpec>> =
    LazyLock::new(|| session_params(StopParams::specs()));

crate::params! {
    struct StartParams {

        namespace: namespace(),
        production: ParamSpec::required(ParamType::String,
            "The production class to start",
        ),
    }
}

static START_PARAMS: LazyLock<Vec<ParamSpec>> =
    LazyLock::new(|| session_params(StartParams::specs()));

/// `state^name` of the namespace's production in `$v`.
fn production_query(target: &Target, namespace: &str) -> String {
    format!(
        "{}value \"$out\"\n",
        target.run(
            namespace,
            &[format!(
                "set sc=##class(Ens.Director).GetProductionStatus(.name,.state) {}",
                value_line("$get(state),\"^\",$get(name)")
            )]
        )
    )
}

impl Operate for ProductionStop {
    fn name(&self) -> &'static str {
        "iris.production_stop"
    }

    fn description(&self) -> &'static str {
        "Stop a namespace's running production (Ens.Director.StopProduction)"
    }

    fn params(&self) -> &[ParamSpec] {
        &STOP_PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let p = StopParams::read(args);
        let target = Target::session(self.name(), args)?;
        let namespace = required_text(p.namespace)?;
        let timeout = p.timeout.int().unwrap_or(120);
        if timeout < 0 {
            return Err(RenderError::new(p.timeout.name(), "must not be negative"));
        }
        let force = u8::from(p.force.bool().unwrap_or(false));
        let act = format!(
            "{}vendor Ens.Director.StopProduction \"$out\"\n",
            target.run(
                &namespace,
                &[
                    format!("set sc=##class(Ens.Director).StopProduction({timeout},{force})"),
                    report("sc"),
                ]
            )
        );
        Ok(Plan {
            query: production_query(&target, &namespace),
            in_state: "case ${v%%^*} in 1|3|4) false;; *) true;; esac".into(),
            act,
            session: true,
            artifacts: Vec::new(),
            target,
        })
    }
}

impl Operate for ProductionStart {
    fn name(&self) -> &'static str {
        "iris.production_start"
    }

    fn description(&self) -> &'static str {
        "Start a namespace's production unless it runs (Ens.Director.StartProduction)"
    }

    fn params(&self) -> &[ParamSpec] {
        &START_PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let p = StartParams::read(args);
        let target = Target::session(self.name(), args)?;
        let namespace = required_text(p.namespace)?;
        let production = required_text(p.production)?;
        let act = format!(
            "{}vendor Ens.Director.StartProduction \"$out\"\n",
            target.run(
                &namespace,
                &[
                    format!(
                        "set sc=##class(Ens.Director).StartProduction({})",
                        os_str(&production)
                    ),
                    report("sc"),
                ]
            )
        );
        Ok(Plan {
            query: production_query(&target, &namespace),
            in_state: format!("[ \"$v\" = {} ]", quote(&format!("1^{production}"))),
            act,
            session: true,
            artifacts: Vec::new(),
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iris::Iris;
    use crate::iris::testing::{objectscript, render, s};

    #[test]
    fn stops_and_starts_with_ens_director() {
        let cmd = render(
            &Iris(ProductionStop),
            &[("instance", s("HSPC")), ("namespace", s("HSCOMMUNITY"))],
        );
        assert_eq!(
            objectscript(&cmd.script),
            [
                vec![
                    "set sc=##class(Ens.Director).GetProductionStatus(.name,.state) write !,\"RUNBOOK\"_\":VALUE:\",$get(state),\"^\",$get(name),!",
                    "halt"
                ],
                vec![
                    "set sc=##class(Ens.Director).StopProduction(120,0)",
                    "if $system.Status.IsOK(sc) { write !,\"RUNBOOK\"_\":OK\",! } else { write !,\"RUNBOOK\"_\":ERROR:\",$system.Status.GetErrorText(sc),! }",
                    "halt"
                ]
            ]
        );
        assert!(cmd.script.contains(" | session HSCOMMUNITY) || fail"));
        assert!(
            cmd.script
                .contains("if case ${v%%^*} in 1|3|4) false;; *) true;; esac; then")
        );

        let cmd = render(
            &Iris(ProductionStart),
            &[
                ("instance", s("HSPC")),
                ("namespace", s("HSCOMMUNITY")),
                ("production", s("HSPC.Production")),
            ],
        );
        assert_eq!(
            objectscript(&cmd.script)[1][0],
            "set sc=##class(Ens.Director).StartProduction(\"HSPC.Production\")"
        );
        assert!(cmd.script.contains(&format!(
            "if [ \"$v\" = {} ]; then",
            quote("1^HSPC.Production")
        )));
    }
}
