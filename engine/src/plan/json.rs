//! The machine form of `plan` (`--format json`). Versioned: a consumer checks
//! `format_version`, and a snapshot test pins the shape.

use serde_json::{Value, json};

use runbook_modules::Operation;

use super::model::{Plan, PlanNode};

/// Bumped on any incompatible change to the JSON shape.
pub const FORMAT_VERSION: u32 = 1;

pub fn render_json(plan: &Plan) -> Value {
    let secs = |d: std::time::Duration| d.as_secs_f64();
    let params: serde_json::Map<String, Value> = plan
        .params
        .iter()
        .map(|p| {
            let value = if p.kind == crate::ast::ParamKind::Secret { Value::Null } else { p.value.clone().unwrap_or(Value::Null) };
            (p.name.clone(), json!({ "type": p.kind, "value": value, "origin": p.origin, "secret": p.kind == crate::ast::ParamKind::Secret }))
        })
        .collect();
    let phases: Vec<Value> = plan
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (start, end) = plan.phase_span(i);
            json!({
                "name": p.name, "description": p.description, "outage": p.outage, "order": p.order,
                "estimate_start_secs": secs(start), "estimate_end_secs": secs(end),
            })
        })
        .collect();
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "name": s.name, "phase": plan.phases[s.phase].name, "kind": s.kind,
                "module": s.module, "idempotent": s.idempotent, "manual": s.manual,
                "irreversible": s.irreversible, "needs": s.needs, "when": s.when, "until": s.until,
                "retries": s.retries, "delay_secs": s.delay.map(secs), "timeout_secs": s.timeout.map(secs),
                "register": s.register, "loop": s.loop_source, "source": s.source,
                "estimate": { "secs": secs(s.estimate), "source": s.estimate_source },
                "hosts": s.hosts.iter().map(|h| plan.host_name(*h)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let nodes: Vec<Value> = plan
        .nodes()
        .map(|(n, node)| {
            let depends_on: Vec<Value> = plan
                .dependencies(n)
                .into_iter()
                .map(|(d, kind)| json!({ "id": plan.node_id(d), "kind": kind }))
                .collect();
            match node {
                PlanNode::Action(a) => json!({
                    "id": plan.node_id(n), "type": "action", "step": plan.steps[a.step].id,
                    "host": plan.host_name(a.host), "phase": plan.phases[plan.steps[a.step].phase].name,
                    "wave": plan.wave(super::model::ActionRef(n)),
                    "estimate_start_secs": secs(plan.estimated_start(n)),
                    "loop_items": a.items,
                    "operations": a.operations.iter().map(operation).collect::<Vec<_>>(),
                    "depends_on": depends_on,
                }),
                PlanNode::Gate(g) => json!({
                    "id": plan.node_id(n), "type": "gate", "label": g.label,
                    "phase": plan.phases[g.phase].name, "depends_on": depends_on,
                }),
            }
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "runbook": plan.runbook,
        "inventory": plan.inventory,
        "hosts": plan.hosts,
        "params": params,
        "phases": phases,
        "steps": steps,
        "nodes": nodes,
        "totals": {
            "phases": plan.phases.len(), "steps": plan.steps.len(), "actions": plan.action_count(),
        },
        "critical_path": {
            "estimate_secs": secs(plan.critical_path_estimate()),
            "actions": plan.critical_path().iter().map(|&n| plan.node_id(n)).collect::<Vec<_>>(),
        },
        "outage": {
            "estimate_secs": secs(plan.outage_estimate()),
            "phases": plan.phases.iter().filter(|p| p.outage).map(|p| p.name.clone()).collect::<Vec<_>>(),
        },
        "irreversible": plan.steps.iter().filter(|s| s.irreversible).map(|s| s.id.clone()).collect::<Vec<_>>(),
    })
}

fn operation(op: &Operation) -> Value {
    match op {
        Operation::Remote(cmd) => {
            json!({ "kind": "remote", "mutating": cmd.mutating, "display": cmd.to_string() })
        }
        Operation::Manual { instructions } => {
            json!({ "kind": "manual", "instructions": instructions })
        }
        Operation::Assert {
            conditions,
            message,
        } => json!({ "kind": "assert", "conditions": conditions, "message": message }),
    }
}
