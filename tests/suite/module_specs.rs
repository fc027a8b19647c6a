//! What the engine learns from a module's spec rather than its name (docs/architecture.md,
//! "Modules"): a module placed with the operator gates the run, and `runbook approve` knows
//! the runbook's manual steps from the same spec.

use std::process::Command;

use crate::apply::Rig;

#[test]
fn approve_lists_the_steps_whose_module_the_spec_places_with_the_operator() {
    let rig = Rig::new(1);
    let rb = "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: specs, version: 1.0.0}\n\
              steps:\n  - {id: confirm, module: manual, with: {instructions: \"Switch.\"}}\n  \
              - {id: check, module: assert, with: {that: [\"1 == 1\"]}}\n  \
              - {id: later, module: manual, with: {instructions: \"Again.\"}}\n";
    let run = rig.apply(rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 3, "exit 3: awaiting approval\n{}", run.stderr);
    assert_eq!(run.status("confirm@controller"), "awaiting_approval");
    let run_id = run.events[0]["run_id"].as_str().expect("run id");
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["approve", run_id, "check", "--by", "t", "--reason", "r"])
        .arg("--state")
        .arg(&run.state)
        .output()
        .expect("approve runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("has no manual step `check`; its manual steps: confirm, later"),
        "{stderr}"
    );
    run.approve("later", "approved ahead");
}
