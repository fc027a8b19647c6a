//! The machine form of `plan` (`--format json`). Versioned: a consumer checks
//! `format_version`, and a snapshot test pins the shape.
//!
//! The document is a set of borrowed, serializable views of the plan, written straight to the
//! output: no intermediate JSON tree, so a 50,000-action plan stays fast and small.

use std::collections::BTreeMap;

use runbook_modules::Operation;
use serde::Serialize;

use crate::ast::{Order, ParamKind, StepKind};
use crate::compile::ValueOrigin;

use super::model::{
    ActionRef, EdgeKind, EstimateSource, HostInfo, InventoryInfo, Plan, PlanNode, RunbookInfo,
};

/// Bumped on any incompatible change to the JSON shape.
pub const FORMAT_VERSION: u32 = 1;

/// Renders the plan as pretty-printed JSON, ending with a newline.
pub fn render_json(plan: &Plan) -> String {
    let mut out = serde_json::to_string_pretty(&Document::new(plan)).expect("plan views serialize");
    out.push('\n');
    out
}

#[derive(Serialize)]
struct Document<'p> {
    format_version: u32,
    runbook: &'p RunbookInfo,
    inventory: &'p InventoryInfo,
    hosts: &'p [HostInfo],
    params: BTreeMap<&'p str, Param<'p>>,
    phases: Vec<Phase<'p>>,
    steps: Vec<Step<'p>>,
    nodes: Vec<Node<'p>>,
    totals: Totals,
    critical_path: CriticalPath,
    outage: Outage<'p>,
    irreversible: Vec<&'p str>,
    /// The shared helper libraries the commands source, each once (by name, then hash).
    helpers: Vec<HelperText>,
}

/// A shared helper library: what the host keeps as `actions/helpers/SHA256.sh`.
#[derive(Serialize)]
struct HelperText {
    name: &'static str,
    sha256: String,
    script: &'static str,
}

/// A command's reference to a helper library it sources.
#[derive(Serialize)]
struct HelperRef {
    name: &'static str,
    sha256: String,
}

#[derive(Serialize)]
struct Param<'p> {
    #[serde(rename = "type")]
    kind: ParamKind,
    /// Never a secret's value.
    value: Option<&'p serde_json::Value>,
    origin: ValueOrigin,
    secret: bool,
}

#[derive(Serialize)]
struct Phase<'p> {
    name: &'p str,
    description: Option<&'p str>,
    outage: bool,
    order: Order,
    batches: Vec<Vec<&'p str>>,
    max_failed_hosts: usize,
    estimate_start_secs: f64,
    estimate_end_secs: f64,
}

#[derive(Serialize)]
struct Estimate {
    secs: f64,
    source: EstimateSource,
}

#[derive(Serialize)]
struct Step<'p> {
    id: &'p str,
    name: Option<&'p str>,
    phase: &'p str,
    kind: StepKind,
    module: &'p str,
    idempotent: bool,
    manual: bool,
    irreversible: bool,
    freeze: Option<crate::ast::Freeze>,
    needs: &'p [String],
    when: Option<&'p str>,
    until: Option<&'p str>,
    retries: u32,
    delay_secs: Option<f64>,
    timeout_secs: Option<f64>,
    register: Option<&'p str>,
    #[serde(rename = "loop")]
    loop_source: Option<&'p str>,
    source: Option<&'p str>,
    /// The block the step came from (`file`, and `uses`: the chain of `uses:` ids); absent for
    /// the runbook's own steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    block: Option<&'p crate::ast::Origin>,
    estimate: Estimate,
    hosts: Vec<&'p str>,
}

#[derive(Serialize)]
struct Dependency {
    id: String,
    kind: EdgeKind,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Node<'p> {
    Action {
        id: String,
        step: &'p str,
        host: &'p str,
        phase: &'p str,
        wave: usize,
        estimate_start_secs: f64,
        loop_items: Option<&'p [String]>,
        env: BTreeMap<&'p str, &'p str>,
        operations: Vec<Op<'p>>,
        depends_on: Vec<Dependency>,
    },
    Gate {
        id: String,
        label: &'p str,
        phase: &'p str,
        depends_on: Vec<Dependency>,
    },
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Op<'p> {
    Remote {
        mutating: bool,
        /// The exact script, environment included (secrets masked); the helper libraries it
        /// sources are named in `helpers`.
        display: String,
        /// The module's essential command lines (`null` when the script is its own summary).
        summary: Option<&'p [String]>,
        /// The helper libraries the wrapper sources before the script (their text is in the
        /// document's `helpers`, once).
        helpers: Vec<HelperRef>,
    },
    /// Data copied from another host through the controller (`storage.copy`).
    Transfer {
        from: &'p str,
        src: &'p str,
        dest: &'p str,
        chunk_bytes: u64,
        display: String,
    },
    Manual {
        instructions: &'p str,
    },
    Assert {
        conditions: &'p [String],
        message: Option<&'p str>,
    },
}

#[derive(Serialize)]
struct Totals {
    phases: usize,
    steps: usize,
    actions: usize,
}

#[derive(Serialize)]
struct CriticalPath {
    estimate_secs: f64,
    actions: Vec<String>,
}

#[derive(Serialize)]
struct Outage<'p> {
    /// The planned outage: the first outage action's estimated start to the last one's end.
    estimate_secs: f64,
    /// Its estimated start and end, from the start of the run (`null` without outage phases).
    start_secs: Option<f64>,
    end_secs: Option<f64>,
    /// The actions of its longest path.
    critical_path: Vec<String>,
    phases: Vec<&'p str>,
    /// The planned write freeze (`null` unless the runbook marks one).
    freeze: Option<Span>,
}

#[derive(Serialize)]
struct Span {
    estimate_secs: f64,
    start_secs: f64,
    end_secs: f64,
    critical_path: Vec<String>,
}

impl<'p> Document<'p> {
    fn new(plan: &'p Plan) -> Self {
        let secs = |d: std::time::Duration| d.as_secs_f64();
        let params = plan
            .params
            .iter()
            .map(|p| {
                let secret = p.kind == ParamKind::Secret;
                let value = if secret { None } else { p.value.as_ref() };
                (
                    p.name.as_str(),
                    Param {
                        kind: p.kind,
                        value,
                        origin: p.origin,
                        secret,
                    },
                )
            })
            .collect();
        let phases = plan
            .phases
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (start, end) = plan.phase_span(i);
                Phase {
                    name: &p.name,
                    description: p.description.as_deref(),
                    outage: p.outage,
                    order: p.order,
                    batches: p
                        .batches
                        .iter()
                        .map(|b| b.iter().map(|&h| plan.hosts[h].name.as_str()).collect())
                        .collect(),
                    max_failed_hosts: p.max_failed_hosts,
                    estimate_start_secs: secs(start),
                    estimate_end_secs: secs(end),
                }
            })
            .collect();
        let steps = plan
            .steps
            .iter()
            .map(|s| Step {
                id: &s.id,
                name: s.name.as_deref(),
                phase: &plan.phases[s.phase].name,
                kind: s.kind,
                module: &s.module,
                idempotent: s.idempotent,
                manual: s.manual,
                irreversible: s.irreversible,
                freeze: s.freeze,
                needs: &s.needs,
                when: s.when.as_deref(),
                until: s.until.as_deref(),
                retries: s.retries,
                delay_secs: s.delay.map(secs),
                timeout_secs: s.timeout.map(secs),
                register: s.register.as_deref(),
                loop_source: s.loop_source.as_deref(),
                source: s.source.as_deref(),
                block: s.origin.as_ref(),
                estimate: Estimate {
                    secs: secs(s.estimate),
                    source: s.estimate_source,
                },
                hosts: s.hosts.iter().map(|h| plan.host_name(*h)).collect(),
            })
            .collect();
        let nodes = plan
            .nodes()
            .map(|(n, node)| {
                let depends_on = plan
                    .dependencies(n)
                    .into_iter()
                    .map(|(d, kind)| Dependency {
                        id: plan.node_id(d),
                        kind,
                    })
                    .collect();
                match node {
                    PlanNode::Action(a) => Node::Action {
                        id: plan.node_id(n),
                        step: &plan.steps[a.step].id,
                        host: plan.host_name(a.host),
                        phase: &plan.phases[plan.steps[a.step].phase].name,
                        wave: plan.wave(ActionRef(n)),
                        estimate_start_secs: secs(plan.estimated_start(n)),
                        loop_items: a.items.as_deref(),
                        env: a
                            .env
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect(),
                        operations: a.operations.iter().map(op).collect(),
                        depends_on,
                    },
                    PlanNode::Gate(g) => Node::Gate {
                        id: plan.node_id(n),
                        label: &g.label,
                        phase: &plan.phases[g.phase].name,
                        depends_on,
                    },
                }
            })
            .collect();
        Self {
            format_version: FORMAT_VERSION,
            runbook: &plan.runbook,
            inventory: &plan.inventory,
            hosts: &plan.hosts,
            params,
            phases,
            steps,
            nodes,
            totals: Totals {
                phases: plan.phases.len(),
                steps: plan.steps.len(),
                actions: plan.action_count(),
            },
            critical_path: CriticalPath {
                estimate_secs: secs(plan.critical_path_estimate()),
                actions: plan
                    .critical_path()
                    .iter()
                    .map(|&n| plan.node_id(n))
                    .collect(),
            },
            outage: Outage {
                estimate_secs: secs(plan.outage_estimate()),
                start_secs: plan.planned_outage().map(|s| secs(s.start)),
                end_secs: plan.planned_outage().map(|s| secs(s.end)),
                critical_path: plan
                    .planned_outage()
                    .map(|s| s.path.iter().map(|&n| plan.node_id(n)).collect())
                    .unwrap_or_default(),
                freeze: plan.planned_freeze().map(|s| Span {
                    estimate_secs: secs(s.length()),
                    start_secs: secs(s.start),
                    end_secs: secs(s.end),
                    critical_path: s.path.iter().map(|&n| plan.node_id(n)).collect(),
                }),
                phases: plan
                    .phases
                    .iter()
                    .filter(|p| p.outage)
                    .map(|p| p.name.as_str())
                    .collect(),
            },
            irreversible: plan
                .steps
                .iter()
                .filter(|s| s.irreversible)
                .map(|s| s.id.as_str())
                .collect(),
            helpers: crate::transport::wrapper_helpers::of_plan(plan)
                .into_iter()
                .map(|(h, sha256)| HelperText {
                    name: h.name,
                    sha256,
                    script: h.text,
                })
                .collect(),
        }
    }
}

fn op(op: &Operation) -> Op<'_> {
    match op {
        Operation::Remote(cmd) => Op::Remote {
            mutating: cmd.mutating,
            display: cmd.to_string(),
            summary: cmd.summary.as_deref(),
            helpers: cmd
                .helpers
                .iter()
                .map(|h| HelperRef {
                    name: h.name,
                    sha256: crate::transport::wrapper_helpers::sha256(h),
                })
                .collect(),
        },
        Operation::Transfer(t) => Op::Transfer {
            from: &t.from,
            src: &t.src,
            dest: &t.dest,
            chunk_bytes: t.chunk_bytes,
            display: t.to_string(),
        },
        Operation::Manual { instructions } => Op::Manual { instructions },
        Operation::Assert {
            conditions,
            message,
        } => Op::Assert {
            conditions,
            message: message.as_deref(),
        },
    }
}
