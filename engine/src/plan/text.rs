//! The human form of `plan`: phases → waves → actions per host, each with what it does in the
//! vendor's words (the module's essential command lines, [`runbook_modules::Command::summary`]),
//! or with the exact scripts ([`Detail::Scripts`], `plan --scripts`).
//!
//! Why a summary by default: a GT.M script is ~50 lines of shared shell helpers around one or two
//! `mupip` lines; a reviewer approving a change reads the `mupip` lines. The scripts that run stay
//! one flag away and in the JSON plan.

use std::fmt::Write as _;

use runbook_modules::format_duration;

use crate::ast::StepKind;

use super::model::{EstimateSource, Plan, PlanNode};

/// How much of each command the text plan shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Detail {
    /// The module's essential command lines (the vendor's words), where it declares them.
    #[default]
    Summary,
    /// The exact scripts sent to the hosts, environment included.
    Scripts,
}

/// Renders the plan for a person, each command summarised. Deterministic: the same inputs give
/// the same text.
pub fn render_text(plan: &Plan) -> String {
    render_text_with(plan, Detail::Summary)
}

/// Renders the plan for a person with the commands in the given [`Detail`].
pub fn render_text_with(plan: &Plan, detail: Detail) -> String {
    let mut out = String::new();
    let r = &plan.runbook;
    let _ = writeln!(out, "runbook {} {}", r.name, r.version);
    if let Some(d) = &r.description {
        let _ = writeln!(out, "  {}", d.lines().next().unwrap_or_default());
    }
    for s in &r.source {
        let _ = writeln!(out, "  source: {s}");
    }
    let _ = writeln!(
        out,
        "inventory {} ({}, {} hosts)",
        plan.inventory.file,
        word(&plan.inventory.format),
        plan.hosts.len()
    );
    if !plan.params.is_empty() {
        let _ = writeln!(out, "params");
        for p in &plan.params {
            let value = match (&p.value, p.kind) {
                (_, crate::ast::ParamKind::Secret) => "******** (asked for at apply)".to_owned(),
                (Some(v), _) => v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                (None, _) => "(unset)".to_owned(),
            };
            let _ = writeln!(out, "  {} = {value}  ({})", p.name, word(&p.origin));
        }
    }

    if detail == Detail::Scripts {
        for (helper, sha) in crate::transport::wrapper_helpers::of_plan(plan) {
            let _ = writeln!(
                out,
                "helper {} (sha256 {sha}): sent to each host once per run, sourced by the commands that name it",
                helper.name
            );
            for line in helper.text.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    }

    for (p, phase) in plan.phases.iter().enumerate() {
        let (start, end) = plan.phase_span(p);
        let _ = writeln!(out);
        let marker = if phase.outage {
            "  [OUTAGE WINDOW]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "phase {}/{} {}{marker}  (order: {}, est. {} from +{})",
            p + 1,
            plan.phases.len(),
            phase.name,
            word(&phase.order),
            format_duration(end.saturating_sub(start)),
            format_duration(start)
        );
        if !phase.batches.is_empty() {
            let batches: Vec<String> = phase
                .batches
                .iter()
                .map(|b| {
                    format!(
                        "[{}]",
                        b.iter()
                            .map(|&h| plan.hosts[h].name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "  rolling batches: {} (max_fail: {} host(s))",
                batches.join(" "),
                phase.max_failed_hosts
            );
        }
        let mut current_wave = 0;
        for (action_ref, action) in plan.actions() {
            let step = &plan.steps[action.step];
            if step.phase != p {
                continue;
            }
            let wave = plan.wave(action_ref);
            if wave != current_wave {
                current_wave = wave;
                let _ = writeln!(out, "  wave {wave}");
            }
            let mut flags = Vec::new();
            match step.kind {
                StepKind::OnFailure => flags.push("on_failure".to_owned()),
                StepKind::Always => flags.push("always".to_owned()),
                StepKind::Main => {}
            }
            if step.irreversible {
                flags.push("IRREVERSIBLE".to_owned());
            }
            if step.manual {
                flags.push("manual".to_owned());
            }
            match step.freeze {
                Some(crate::ast::Freeze::Start) => flags.push("FREEZE STARTS".to_owned()),
                Some(crate::ast::Freeze::End) => flags.push("FREEZE ENDS".to_owned()),
                None => {}
            }
            if let Some(w) = &step.when {
                flags.push(format!("when: {w}"));
            }
            if let Some(o) = &step.origin {
                flags.push(format!("from: {}", o.describe()));
            }
            if step.retries > 0 {
                flags.push(format!("retries: {}", step.retries));
            }
            if let Some(d) = step.delay {
                flags.push(format!("delay: {}", format_duration(d)));
            }
            if let Some(u) = &step.until {
                flags.push(format!("until: {u}"));
            }
            if let Some(t) = step.timeout {
                flags.push(format!("timeout: {}", format_duration(t)));
            }
            if let Some(reg) = &step.register {
                flags.push(format!("register: {reg}"));
            }
            let estimate = match step.estimate_source {
                EstimateSource::Declared => format_duration(step.estimate),
                EstimateSource::Default => format!("{} default", format_duration(step.estimate)),
                EstimateSource::History => {
                    format!("{} from earlier runs", format_duration(step.estimate))
                }
            };
            let _ = writeln!(
                out,
                "    {} {}  [{}] ~{estimate}{}",
                plan.host_name(action.host),
                step.id,
                step.module,
                if flags.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", flags.join(", "))
                }
            );
            if !action.env.is_empty() {
                let env: Vec<String> = action
                    .env
                    .iter()
                    .map(|(k, v)| format!("{k}={}", runbook_modules::quote(v)))
                    .collect();
                let _ = writeln!(out, "        env: {}", env.join(" "));
            }
            if let Some(items) = &action.items {
                let _ = writeln!(out, "        loop: {}", items.join(", "));
            }
            for op in &action.operations {
                if let (Detail::Summary, runbook_modules::Operation::Remote(cmd)) = (detail, op)
                    && let Some(lines) = &cmd.summary
                {
                    for line in lines {
                        let _ = writeln!(out, "        $ {line}");
                    }
                    if lines.is_empty() {
                        let _ = writeln!(out, "        $ (shell only: see plan --scripts)");
                    }
                    continue;
                }
                if let runbook_modules::Operation::Remote(cmd) = op {
                    for helper in &cmd.helpers {
                        let sha = crate::transport::wrapper_helpers::sha256(helper);
                        let _ = writeln!(
                            out,
                            "        # sources helper {} (sha256 {})",
                            helper.name,
                            &sha[..12]
                        );
                    }
                }
                let text = op.to_string();
                let mut lines = text.lines();
                if let Some(first) = lines.next() {
                    let _ = writeln!(out, "        $ {first}");
                }
                for line in lines {
                    let _ = writeln!(out, "          {line}");
                }
            }
        }
    }

    let _ = writeln!(out);
    let steps = plan.steps.len();
    let declared = plan
        .steps
        .iter()
        .filter(|s| s.estimate_source == EstimateSource::Declared)
        .count();
    let targets: std::collections::BTreeSet<_> =
        plan.steps.iter().flat_map(|s| s.hosts.iter()).collect();
    let hosts = targets.iter().filter(|h| h.is_some()).count();
    let controller = if targets.contains(&None) {
        " and the controller"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "totals: {}, {}, {} on {}{controller}",
        count(plan.phases.len(), "phase"),
        count(steps, "step"),
        count(plan.action_count(), "action"),
        count(hosts, "host"),
    );
    let _ = writeln!(
        out,
        "critical path: ~{} ({declared} of {steps} step estimates declared, the rest defaults)",
        format_duration(plan.critical_path_estimate())
    );
    let path: Vec<String> = plan
        .critical_path()
        .iter()
        .map(|&n| match plan.node(n) {
            PlanNode::Action(a) => plan.action_id(a),
            PlanNode::Gate(g) => g.label.clone(),
        })
        .collect();
    if !path.is_empty() {
        let _ = writeln!(out, "  {}", path.join(" → "));
    }
    let outage: Vec<&str> = plan
        .phases
        .iter()
        .filter(|p| p.outage)
        .map(|p| p.name.as_str())
        .collect();
    if outage.is_empty() {
        let _ = writeln!(out, "outage window: no phase needs it");
    } else {
        let _ = writeln!(
            out,
            "outage window: ~{} planned outage of the ~{} run (phases: {})",
            format_duration(plan.outage_estimate()),
            format_duration(plan.critical_path_estimate()),
            outage.join(", ")
        );
        let ids = |span: &super::outage::PlannedSpan| {
            span.path
                .iter()
                .map(|&n| plan.node_id(n))
                .collect::<Vec<_>>()
                .join(" → ")
        };
        if let Some(span) = plan.planned_outage().filter(|s| !s.path.is_empty()) {
            let _ = writeln!(
                out,
                "  from +{} to +{}: {}",
                format_duration(span.start),
                format_duration(span.end),
                ids(span)
            );
        }
        if let Some(span) = plan.planned_freeze() {
            let _ = writeln!(
                out,
                "write freeze: ~{} planned, from +{} to +{}: {}",
                format_duration(span.length()),
                format_duration(span.start),
                format_duration(span.end),
                ids(span)
            );
        }
    }
    let irreversible: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.irreversible)
        .map(|s| format!("{} (phase {})", s.id, plan.phases[s.phase].name))
        .collect();
    if !irreversible.is_empty() {
        let _ = writeln!(out, "points of no return: {}", irreversible.join(", "));
    }
    out
}

/// The serialized name of an enum value (`per_host`, `command_line`), as JSON spells it.
fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `1 step`, `2 steps`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
