//! Definition fingerprints: what an action does, as planned, in one hash.
//!
//! The journal records each action's fingerprint; resume compares it with the plan's to refuse a
//! run whose finished or in-flight actions were redefined (runbook or inventory edited). They are
//! computed once per plan, on first use, since a resume of a large run compares every action.

use super::model::{Action, Plan};

/// The fingerprint of one action: the step's definition and its rendered operations.
pub(crate) fn definition_fingerprint(plan: &Plan, action: &Action) -> String {
    let step = &plan.steps[action.step];
    let ops: Vec<String> = action.operations.iter().map(ToString::to_string).collect();
    let text = format!(
        "{}\n{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        step.id,
        step.module,
        ops,
        action.env,
        action.items,
        step.when,
        step.until,
        step.retries,
        step.timeout
    );
    crate::journal::fingerprint(text.as_bytes())
}
