//! `manual`: a step an operator does by hand.
//!
//! Use it for what cannot or should not be automated — "switch the VIP in the load balancer
//! console", "call the DBA on duty" — so the runbook still records it in order. The run stops at
//! the step, shows the instructions and waits for an operator's approval. With `confirm`, the
//! instructions end with the text the operator must confirm (such as the name of the host being
//! failed over), so approving is a deliberate act.
//!
//! Nobody can know whether a manual action may be repeated, so it is not idempotent: resume asks
//! the operator again. Nor whether it was done: it has no [`Module::check`] (`None`), so a
//! dry-run reports that it would run.

use std::sync::LazyLock;
use std::time::Duration;

use crate::args::Args;
use crate::module::{Module, Operation, Placement, RenderError};
use crate::param::{ParamSpec, ParamType};

/// The `manual` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManualModule;

crate::params! {
    struct Params {

        instructions: ParamSpec::required(ParamType::String,
            "What the operator must do; the first line is the summary",
        ),
        confirm: ParamSpec::optional(ParamType::String,
            "Text the operator must confirm before the run continues",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for ManualModule {
    fn name(&self) -> &'static str {
        "manual"
    }

    fn description(&self) -> &'static str {
        "Pause for an operator to do a step by hand and approve it"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn placement(&self) -> Placement {
        Placement::Operator
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(300)
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let mut instructions = p.instructions.str().unwrap_or_default();
        if instructions.trim().is_empty() {
            return Err(RenderError::new(p.instructions.name(), "are empty"));
        }
        if let Some(confirm) = p.confirm.present() {
            let confirm = confirm.to_string();
            if confirm.trim().is_empty() {
                return Err(RenderError::new(p.confirm.name(), "is empty"));
            }
            instructions = format!("{}\n\nConfirm: {confirm}", instructions.trim_end());
        }
        Ok(vec![Operation::Manual { instructions }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::testing::{check, s};
    use crate::value::Value;

    #[test]
    fn renders_a_manual_operation() {
        let args = check(
            &ManualModule,
            &[("instructions", s("Move the VIP to db2\nIn the LB UI."))],
        );
        let ops = ManualModule.render(&args).expect("renders");
        assert_eq!(
            ops,
            [Operation::Manual {
                instructions: "Move the VIP to db2\nIn the LB UI.".into()
            }]
        );
        assert_eq!(ops[0].to_string(), "manual: Move the VIP to db2");
        assert!(!ManualModule.idempotent());
    }

    #[test]
    fn confirm_text_ends_the_instructions() {
        let args = check(
            &ManualModule,
            &[
                ("instructions", s("Stop the old primary.\n")),
                ("confirm", s("db1")),
            ],
        );
        assert_eq!(
            ManualModule.render(&args).expect("renders"),
            [Operation::Manual {
                instructions: "Stop the old primary.\n\nConfirm: db1".into()
            }]
        );
    }

    #[test]
    fn refuses_empty_text_and_masks_secrets() {
        let args = check(&ManualModule, &[("instructions", s(" \n"))]);
        assert_eq!(
            ManualModule.render(&args).expect_err("empty").arg,
            Some("instructions")
        );
        let args = check(
            &ManualModule,
            &[("instructions", s("x")), ("confirm", s(""))],
        );
        assert_eq!(
            ManualModule.render(&args).expect_err("empty").arg,
            Some("confirm")
        );
        let args = check(
            &ManualModule,
            &[("instructions", Value::Secret("hunter2".into()))],
        );
        let ops = ManualModule.render(&args).expect("renders");
        assert!(!ops[0].to_string().contains("hunter2"));
    }

    #[test]
    fn has_no_check() {
        let args = check(&ManualModule, &[("instructions", s("Move the VIP"))]);
        assert_eq!(ManualModule.check(&args), Ok(None));
    }
}
