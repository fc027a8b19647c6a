//! The shape of compiled plans: which action waits for which, waves, estimates, determinism.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use petgraph::graph::NodeIndex;
use runbook::plan::{EdgeKind, Plan, PlanNode, render_json};

use crate::support::{INVENTORY, compile_str};

/// The actions an action waits for, looking through gates, as `step@host` ids.
fn deps(plan: &Plan, id: &str) -> BTreeSet<String> {
    let node = find(plan, id);
    let mut out = BTreeSet::new();
    let mut stack: Vec<NodeIndex> = plan
        .dependencies(node)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    while let Some(n) = stack.pop() {
        match plan.node(n) {
            PlanNode::Action(_) => {
                out.insert(plan.node_id(n));
            }
            PlanNode::Gate(_) => stack.extend(plan.dependencies(n).into_iter().map(|(d, _)| d)),
        }
    }
    out
}

/// Only the nearest actions (drop those that are themselves reached through another dep).
fn direct(plan: &Plan, id: &str) -> BTreeSet<String> {
    let all = deps(plan, id);
    let implied: BTreeSet<String> = all.iter().flat_map(|d| deps(plan, d)).collect();
    all.difference(&implied).cloned().collect()
}

fn find(plan: &Plan, id: &str) -> NodeIndex {
    plan.nodes()
        .find(|(n, _)| plan.node_id(*n) == id)
        .unwrap_or_else(|| panic!("no node {id}"))
        .0
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

const TWO_PHASES: &str = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
phases:
  - name: one
    steps:
      - {id: a, module: shell, on: lab, with: {cmd: x}}
      - {id: b, module: shell, on: 'alpha | beta', with: {cmd: x}}
      - {id: c, module: shell, on: gamma, with: {cmd: x}}
  - name: two
    order: per_host
    steps:
      - {id: d, module: shell, on: lab, with: {cmd: x}}
      - {id: e, module: shell, on: 'alpha | beta', with: {cmd: x}}
      - {id: f, module: shell, on: gamma, needs: [e], with: {cmd: x}}
";

#[test]
fn sequential_steps_wait_for_the_previous_step_on_every_host() {
    let plan = compile_str(TWO_PHASES, INVENTORY, &[]).expect("compiles");
    assert_eq!(
        direct(&plan, "b@alpha"),
        set(&["a@alpha", "a@beta", "a@gamma"])
    );
    assert_eq!(direct(&plan, "c@gamma"), set(&["b@alpha", "b@beta"]));
    assert!(direct(&plan, "a@alpha").is_empty());
}

#[test]
fn phases_are_barriers_and_per_host_lanes_are_independent() {
    let plan = compile_str(TWO_PHASES, INVENTORY, &[]).expect("compiles");
    // First steps of phase two wait for all of phase one.
    assert_eq!(direct(&plan, "d@alpha"), set(&["c@gamma"]));
    // per_host: e on alpha follows d on alpha only.
    assert_eq!(direct(&plan, "e@alpha"), set(&["d@alpha"]));
    assert_eq!(direct(&plan, "e@beta"), set(&["d@beta"]));
    // f on gamma follows d on gamma (lane) and all of e (needs).
    assert_eq!(
        direct(&plan, "f@gamma"),
        set(&["d@gamma", "e@alpha", "e@beta"])
    );
}

#[test]
fn waves_are_levels_within_a_phase() {
    let plan = compile_str(TWO_PHASES, INVENTORY, &[]).expect("compiles");
    let wave = |id: &str| {
        let (r, _) = plan
            .actions()
            .find(|(_, a)| plan.action_id(a) == id)
            .expect("action");
        plan.wave(r)
    };
    assert_eq!(
        (wave("a@alpha"), wave("b@beta"), wave("c@gamma")),
        (1, 2, 3)
    );
    assert_eq!(
        (
            wave("d@alpha"),
            wave("d@gamma"),
            wave("e@alpha"),
            wave("f@gamma")
        ),
        (1, 1, 2, 3)
    );
}

#[test]
fn handlers_wait_for_completion_not_success() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
phases:
  - name: p
    steps:
      - {id: a, module: shell, on: alpha, with: {cmd: x}}
      - {id: b, module: shell, on: beta, with: {cmd: x}}
    on_failure:
      - {id: undo, module: shell, on: alpha, with: {cmd: x}}
    always:
      - {id: report, module: shell, on: lab, with: {cmd: x}}
  - name: q
    steps:
      - {id: z, module: shell, on: alpha, with: {cmd: x}}
";
    let plan = compile_str(rb, INVENTORY, &[]).expect("compiles");
    assert_eq!(deps(&plan, "undo@alpha"), set(&["a@alpha", "b@beta"]));
    let undo = find(&plan, "undo@alpha");
    assert!(
        plan.dependencies(undo)
            .iter()
            .all(|(_, k)| *k == EdgeKind::Completion)
    );
    assert_eq!(direct(&plan, "report@gamma"), set(&["undo@alpha"]));
    // The next phase waits for everything, the handlers included.
    assert_eq!(
        direct(&plan, "z@alpha"),
        set(&["report@alpha", "report@beta", "report@gamma"])
    );
}

#[test]
fn estimates_give_the_critical_path_and_the_outage() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
phases:
  - name: prepare
    order: per_host
    steps:
      - {id: slow, module: shell, on: alpha, estimate: 2m, with: {cmd: x}}
      - {id: fast, module: shell, on: beta, estimate: 10s, with: {cmd: x}}
  - name: outage
    outage: true
    steps:
      - {id: stop, module: shell, on: alpha, estimate: 30s, with: {cmd: x}}
      - {id: go, module: manual, with: {instructions: do it}}
";
    let plan = compile_str(rb, INVENTORY, &[]).expect("compiles");
    // 2m (slow, parallel to fast) + 30s + the manual default of 5m.
    assert_eq!(
        plan.critical_path_estimate(),
        Duration::from_secs(120 + 30 + 300)
    );
    assert_eq!(plan.outage_estimate(), Duration::from_secs(330));
    let path: Vec<String> = plan
        .critical_path()
        .iter()
        .map(|&n| plan.node_id(n))
        .collect();
    assert_eq!(path, vec!["slow@alpha", "stop@alpha", "go@controller"]);
}

#[test]
fn hostile_inventory_values_stay_inert_in_rendered_commands() {
    let inventory = INVENTORY.replace(
        "vars: {instance: A}",
        "vars: {instance: 'x\"; touch /tmp/pwned; \"'}",
    );
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
steps:
  - {id: a, module: shell, on: alpha, with: {cmd: \"echo {{ vars.instance }}\"}}
";
    let plan = compile_str(rb, &inventory, &[]).expect("compiles");
    let (_, action) = plan.actions().next().expect("one action");
    let text = action.operations[0].to_string();
    assert_eq!(
        shlex::split(&text),
        Some(vec![
            "echo".to_owned(),
            "x\"; touch /tmp/pwned; \"".to_owned()
        ])
    );
}

#[test]
fn compiling_twice_gives_identical_plans() {
    let a = compile_str(TWO_PHASES, INVENTORY, &[]).expect("compiles");
    let b = compile_str(TWO_PHASES, INVENTORY, &[]).expect("compiles");
    assert_eq!(render_json(&a), render_json(&b));
}

#[test]
fn gates_keep_the_graph_linear_in_the_number_of_actions() {
    let mut inventory = String::from("kind: Inventory\nhosts:\n");
    for i in 0..200 {
        let _ = writeln!(inventory, "  h{i}: {{address: 10.0.0.1}}");
    }
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
steps:
  - {id: a, module: shell, on: all, with: {cmd: x}}
  - {id: b, module: shell, on: all, with: {cmd: x}}
  - {id: c, module: shell, on: all, needs: [a], with: {cmd: x}}
";
    let plan = compile_str(rb, &inventory, &[]).expect("compiles");
    assert_eq!(plan.action_count(), 600);
    let edges: usize = plan.nodes().map(|(n, _)| plan.dependencies(n).len()).sum();
    assert!(
        edges < 4 * 600,
        "{edges} edges: all-to-all dependencies must go through gates"
    );
    assert_eq!(direct(&plan, "c@h7").len(), 200);
}

#[test]
fn loops_render_each_item() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
params:
  regions: {type: list, default: [DEFAULT, HSSYS]}
steps:
  - {id: a, module: command, on: alpha, loop: params.regions, with: {argv: [mupip, set, '-region', '{{ item }}']}}
";
    let plan = compile_str(rb, INVENTORY, &[]).expect("compiles");
    let (_, action) = plan.actions().next().expect("one action");
    assert_eq!(
        action.items.as_deref(),
        Some(&["DEFAULT".to_owned(), "HSSYS".to_owned()][..])
    );
    let ops: Vec<String> = action.operations.iter().map(ToString::to_string).collect();
    assert_eq!(
        ops,
        vec!["mupip set -region DEFAULT", "mupip set -region HSSYS"]
    );
}

#[test]
fn controller_steps_are_barriers_in_per_host_phases() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
phases:
  - name: p
    order: per_host
    on: lab
    steps:
      - {id: a, module: shell, with: {cmd: x}}
      - {id: confirm, module: manual, with: {instructions: check the application}}
      - {id: b, module: shell, with: {cmd: x}}
";
    let plan = compile_str(rb, INVENTORY, &[]).expect("compiles");
    // The manual step runs once, on the controller, not once per host of the phase's `on:`.
    assert!(
        plan.nodes()
            .any(|(n, _)| plan.node_id(n) == "confirm@controller")
    );
    assert_eq!(
        deps(&plan, "confirm@controller"),
        set(&["a@alpha", "a@beta", "a@gamma"])
    );
    assert_eq!(direct(&plan, "b@beta"), set(&["confirm@controller"]));
}

#[test]
fn steps_on_an_optional_role_nobody_has_are_no_ops_that_keep_the_order() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
roles:
  arbiter: {min: 0, max: 1}
steps:
  - {id: a, module: shell, on: alpha, with: {cmd: x}}
  - {id: arb, module: shell, on: arbiter, with: {cmd: x}}
  - {id: b, module: shell, on: beta, with: {cmd: x}}
";
    let plan = compile_str(rb, INVENTORY, &[]).expect("compiles");
    assert_eq!(plan.action_count(), 2);
    assert_eq!(deps(&plan, "b@beta"), set(&["a@alpha"]));
}

#[test]
fn runbook_vars_may_use_params_and_hosts_override_them() {
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
params:
  base: {type: path, default: /srv}
vars:
  dir: \"{{ params.base }}/gtm\"
  instance: default
steps:
  - {id: a, module: shell, on: 'alpha | gamma', with: {cmd: \"ls {{ vars.dir }} {{ vars.instance }}\"}}
";
    let plan = compile_str(rb, INVENTORY, &["base=/data"]).expect("compiles");
    let ops: Vec<String> = plan
        .actions()
        .map(|(_, a)| a.operations[0].to_string())
        .collect();
    assert_eq!(ops, vec!["ls /data/gtm A", "ls /data/gtm default"]);
}
