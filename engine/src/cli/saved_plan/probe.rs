//! `runbook plan ... --probe`: the facts the plan's read-only checks see on the hosts now, and
//! the comparison `apply PLAN` makes with the facts saved in the plan.
//!
//! Why a child `runbook apply --dry-run --format json` rather than a second executor: the dry
//! run already is the read-only path (the modules' checks only, host keys verified, host locks
//! taken shared, nothing changed on the hosts), and its JSON events are its stable interface.
//! Probing through it means the probe and the dry run can never disagree about what is safe.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use super::super::args::Inputs;

/// Every action's fact, by action id (sorted): what its read-only check saw.
pub type Facts = BTreeMap<String, String>;

/// What a dry-run status says about the host: the fact saved for the action.
fn fact(status: &str, message: Option<&str>) -> String {
    match status {
        "ok" => "in state".to_owned(),
        "would_change" => "would change".to_owned(),
        "would_run" => "would run (no read-only check)".to_owned(),
        "skipped" => "skipped".to_owned(),
        other => match message {
            Some(m) if !m.is_empty() => format!("cannot tell ({other}: {m})"),
            _ => format!("cannot tell ({other})"),
        },
    }
}

/// Runs the read-only checks of the plan made from `inputs`; the facts, or why they could not
/// be gathered (the dry run's own diagnostics).
pub fn probe(inputs: &Inputs, state: Option<&std::path::Path>) -> Result<Facts, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the runbook executable to probe with: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("apply")
        .arg(&inputs.runbook)
        .arg("-i")
        .arg(&inputs.inventory);
    for p in &inputs.params {
        cmd.arg("--params").arg(p);
    }
    for e in &inputs.extra {
        cmd.arg("-e").arg(e);
    }
    if let Some(state) = state {
        cmd.arg("--state").arg(state);
    }
    cmd.args(["--dry-run", "--format", "json"]);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start the probe (a dry run): {e}"))?;
    let mut facts = Facts::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if event["event"] == "action_finished"
            && let (Some(action), Some(status)) =
                (event["action"].as_str(), event["status"].as_str())
        {
            facts.insert(action.to_owned(), fact(status, event["message"].as_str()));
        }
    }
    // Exit 0 (all checks ran) or 1 (some could not tell: kept as facts); anything else is a
    // probe that did not happen (invalid input, refused by a lock, not recorded).
    match out.status.code() {
        Some(0 | 1) => Ok(facts),
        code => Err(format!(
            "the probe (a dry run) did not run ({}): {}",
            code.map_or_else(|| "a signal".to_owned(), |c| format!("exit {c}")),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Each fact that differs between `saved` and `now`, as `action: fact saved → now`.
pub fn changed(saved: &Facts, now: &Facts) -> Vec<String> {
    let mut lines = Vec::new();
    let missing = "absent".to_owned();
    let actions: std::collections::BTreeSet<&String> = saved.keys().chain(now.keys()).collect();
    for action in actions {
        let then = saved.get(action).unwrap_or(&missing);
        let is = now.get(action).unwrap_or(&missing);
        if then != is {
            lines.push(format!("{action}: check saw `{then}` then, `{is}` now"));
        }
    }
    lines
}

/// The facts as `plan --probe` shows them, one line per action.
pub fn render(facts: &Facts) -> String {
    let mut text = String::from("probe (read-only checks on the hosts):\n");
    for (action, fact) in facts {
        let _ = writeln!(text, "  {action}: {fact}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_facts_and_changes_are_named() {
        assert_eq!(fact("ok", None), "in state");
        assert_eq!(fact("would_change", None), "would change");
        assert_eq!(
            fact("failed", Some("no such file")),
            "cannot tell (failed: no such file)"
        );
        let saved: Facts = [("a@h".into(), "in state".into())].into();
        let now: Facts = [("a@h".into(), "would change".into())].into();
        assert_eq!(
            changed(&saved, &now),
            ["a@h: check saw `in state` then, `would change` now"]
        );
        assert!(changed(&saved, &saved).is_empty());
    }
}
