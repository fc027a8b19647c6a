//! Definition fingerprints: what an action does, as planned, in one hash.
//!
//! The journal records each action's fingerprint; resume compares it with the plan's to refuse a
//! run whose finished or in-flight actions were redefined (runbook or inventory edited). They are
//! computed once per plan, on first use, since a resume of a large run compares every action.

use super::model::{Action, Plan};

/// The fingerprint of one action: the step's definition and its rendered operations.
pub(crate) fn definition_fingerprint(plan: &Plan, action: &Action) -> String {
    let step = &plan.steps[action.step];
    // A command's shared helpers are part of what it runs: their hashes, as the host names them.
    let ops: Vec<String> = action
        .operations
        .iter()
        .map(|op| match op {
            runbook_modules::Operation::Remote(cmd) if !cmd.helpers.is_empty() => format!(
                "{op}\nhelpers {}",
                crate::transport::wrapper_helpers::argument(&cmd.helpers)
            ),
            _ => op.to_string(),
        })
        .collect();
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
