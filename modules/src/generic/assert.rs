//! `assert`: stop the run unless conditions hold.
//!
//! Use it as a safety gate before a risky step: "the mirror is in sync", "the backlog is
//! empty", "we are on the primary". The conditions are template expressions over variables
//! and outputs of earlier steps (`backlog.stdout | int == 0`); the compiler checks their syntax
//! and variables, and the engine evaluates them on the controller — nothing runs on a host. The
//! step fails with `fail_msg` (or the first false condition) when any is false.
//!
//! It changes nothing, so it is idempotent. Its [`Module::check`] is the same assertion: evaluating
//! it reads nothing on hosts, so a dry-run evaluates it as a run does.

use std::sync::LazyLock;
use std::time::Duration;

use crate::args::Args;
use crate::module::{Module, Operation, Placement, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `assert` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssertModule;

crate::params! {
    struct Params {

        that: ParamSpec::required(ParamType::List(Box::new(ParamType::Expression)),
            "Expressions that must all be true, such as `backlog.stdout | int == 0`",
        ),
        fail_msg: ParamSpec::optional(ParamType::String,
            "The message when one is false",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for AssertModule {
    fn name(&self) -> &'static str {
        "assert"
    }

    fn description(&self) -> &'static str {
        "Fail the step unless every condition (an expression) is true"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn placement(&self) -> Placement {
        Placement::Controller
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let conditions: Vec<String> = match p.that.present() {
            Some(Value::List(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_owned)
                })
                .collect(),
            Some(other) => vec![other.to_string()],
            None => Vec::new(),
        };
        if conditions.is_empty() {
            return Err(RenderError::new(
                p.that.name(),
                "needs at least one condition",
            ));
        }
        if let Some(i) = conditions.iter().position(|c| c.trim().is_empty()) {
            return Err(RenderError::new(
                p.that.name(),
                format!("condition {} is empty", i + 1),
            ));
        }
        Ok(vec![Operation::Assert {
            conditions,
            message: p.fail_msg.str(),
        }])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        self.render(args).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::testing::{check, list, s};

    #[test]
    fn renders_an_assert_operation() {
        let args = check(
            &AssertModule,
            &[
                (
                    "that",
                    list(&["backlog.stdout | int == 0", "role.stdout == 'primary'"]),
                ),
                ("fail_msg", s("not safe to fail over")),
            ],
        );
        let ops = AssertModule.render(&args).expect("renders");
        assert_eq!(
            ops,
            [Operation::Assert {
                conditions: vec![
                    "backlog.stdout | int == 0".into(),
                    "role.stdout == 'primary'".into()
                ],
                message: Some("not safe to fail over".into()),
            }]
        );
        assert_eq!(
            ops[0].to_string(),
            "assert: backlog.stdout | int == 0 and role.stdout == 'primary'"
        );
        assert!(AssertModule.idempotent());

        let args = check(&AssertModule, &[("that", list(&["x"]))]);
        let ops = AssertModule.render(&args).expect("renders");
        assert_eq!(
            ops,
            [Operation::Assert {
                conditions: vec!["x".into()],
                message: None
            }]
        );
    }

    #[test]
    fn refuses_no_or_empty_conditions() {
        let args = check(&AssertModule, &[("that", list(&[]))]);
        assert_eq!(
            AssertModule.render(&args).expect_err("none").arg,
            Some("that")
        );
        let args = check(&AssertModule, &[("that", list(&["a", " "]))]);
        let err = AssertModule.render(&args).expect_err("blank");
        assert_eq!(
            (err.arg, err.message.as_str()),
            (Some("that"), "condition 2 is empty")
        );
    }

    #[test]
    fn check_is_the_same_assertion() {
        let args = check(
            &AssertModule,
            &[
                ("that", list(&["lag.stdout | int < 5"])),
                ("fail_msg", s("lagging")),
            ],
        );
        let ops = AssertModule.check(&args).expect("renders");
        assert_eq!(ops, Some(AssertModule.render(&args).expect("renders")));
        let args = check(&AssertModule, &[("that", list(&[]))]);
        assert_eq!(
            AssertModule.check(&args).expect_err("none").arg,
            Some("that")
        );
    }
}
