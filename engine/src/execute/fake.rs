//! A test kit for the executor's policy: plans compiled from a few lines of YAML on two
//! inventory hosts (`a`, `b`).

use std::sync::Arc;

use runbook_modules::Registry;

use crate::plan::Plan;

/// Compiles `steps` (the runbook's `steps:` or `phases:`, as YAML) on hosts `a` and `b`.
pub fn plan(steps: &str) -> Arc<Plan> {
    let text = format!(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: t, version: 1.0.0}}\n{steps}"
    );
    let parsed = crate::parse::parse_runbook("t.yaml", text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let runbook = parsed.runbook.expect("parses");
    let inventory = crate::inventory::Inventory::parse(
        "i.yaml",
        "kind: Inventory\nhosts: {a: {}, b: {}}\n".into(),
    )
    .expect("inventory");
    let registry = Registry::builtin();
    let overrides = crate::compile::Overrides::default();
    let input = crate::compile::Input {
        runbook: &runbook,
        inventory: &inventory,
        registry: &registry,
        overrides: &overrides,
        history: None,
    };
    Arc::new(crate::compile::compile(input).expect("compiles"))
}
