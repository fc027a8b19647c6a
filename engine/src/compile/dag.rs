//! Expands the step graph into the action DAG: one node per `step@host`, each rendered.
//!
//! All-to-all dependencies between multi-host steps go through a gate node, so a 50-step,
//! 1,000-host plan has edges in proportion to its actions, not to their square.

use std::collections::{BTreeMap, HashSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use runbook_modules::Registry;

use crate::ast::{Runbook, Step, StepKind};
use crate::diagnostic::{Code, Diagnostic};
use crate::inventory::{HostId, Inventory};
use crate::plan::{Action, EdgeKind, Gate, PlanNode, StepInfo};
use crate::template::Templates;
use crate::yaml::Span;

use super::context::Contexts;
use super::graph::{Spread, StepGraph, StepNode};
use super::render::Renderer;

pub struct Inputs<'a> {
    /// Rolling batches of each phase (empty when not rolling) and its failure budget.
    pub phase_batches: &'a [(Vec<Vec<HostId>>, usize)],
    pub runbook: &'a Runbook,
    pub inventory: &'a Inventory,
    pub registry: &'a Registry,
    pub steps: &'a [(usize, &'a Step)],
    pub infos: &'a [StepInfo],
    pub step_graph: &'a StepGraph,
    pub global_ancestors: &'a super::graph::Reach,
    pub registers: &'a BTreeMap<String, usize>,
    pub templates: &'a Templates,
    pub contexts: &'a Contexts,
    pub out: &'a mut Vec<Diagnostic>,
}

struct Builder {
    graph: DiGraph<PlanNode, EdgeKind>,
    edges: HashSet<(NodeIndex, NodeIndex)>,
    /// Action nodes of each step, in host order.
    actions: Vec<Vec<(Option<HostId>, NodeIndex)>>,
    /// "All of step X" gates, by (step, completion, batch).
    step_gates: BTreeMap<(usize, bool, usize), NodeIndex>,
    /// The batch of each (phase, host) in rolling phases.
    batch_of: BTreeMap<(usize, HostId), usize>,
    phase_ends: Vec<NodeIndex>,
}

impl Builder {
    fn edge(&mut self, from: NodeIndex, to: NodeIndex, kind: EdgeKind) {
        if self.edges.insert((from, to)) {
            self.graph.add_edge(from, to, kind);
        }
    }

    /// A gate that finishes when every action of `step` (in `batch`, for a rolling phase) has
    /// succeeded, or finished.
    fn step_gate(
        &mut self,
        step: usize,
        completion: bool,
        batch: Option<usize>,
        label: String,
        phase: usize,
    ) -> NodeIndex {
        let key = (step, completion, batch.unwrap_or(usize::MAX));
        if let Some(&g) = self.step_gates.get(&key) {
            return g;
        }
        let gate = self.graph.add_node(PlanNode::Gate(Gate {
            label,
            phase,
            max_failed_hosts: None,
        }));
        let kind = if completion {
            EdgeKind::Completion
        } else {
            EdgeKind::Success
        };
        for (h, a) in self.actions[step].clone() {
            if batch.is_none() || self.batch(phase, h) == batch {
                self.edge(a, gate, kind);
            }
        }
        self.step_gates.insert(key, gate);
        gate
    }

    /// The batch of a host in a rolling phase; `None` outside rolling phases.
    fn batch(&self, phase: usize, host: Option<HostId>) -> Option<usize> {
        host.and_then(|h| self.batch_of.get(&(phase, h)).copied())
    }
}

pub fn build(i: &mut Inputs<'_>) -> DiGraph<PlanNode, EdgeKind> {
    let mut b = Builder {
        graph: DiGraph::new(),
        edges: HashSet::new(),
        actions: vec![Vec::new(); i.steps.len()],
        step_gates: BTreeMap::new(),
        phase_ends: Vec::new(),
        batch_of: i
            .phase_batches
            .iter()
            .enumerate()
            .flat_map(|(p, (batches, _))| {
                batches
                    .iter()
                    .enumerate()
                    .flat_map(move |(k, hosts)| hosts.iter().map(move |&h| ((p, h), k)))
            })
            .collect(),
    };
    let mut batch_gates: Vec<Vec<NodeIndex>> = vec![Vec::new(); i.runbook.phases.len()];
    let mut problems: BTreeMap<(usize, Span, String, Code), Vec<String>> = BTreeMap::new();

    // The steps of each phase, in order (a loop over all steps per phase costs phases × steps).
    let mut phase_steps: Vec<Vec<usize>> = vec![Vec::new(); i.runbook.phases.len()];
    for (s, (p, _)) in i.steps.iter().enumerate() {
        phase_steps[*p].push(s);
    }

    // Nodes, phase by phase: the actions of each step, then the phase's end gate.
    for (p, phase) in i.runbook.phases.iter().enumerate() {
        for &s in &phase_steps[p] {
            let hosts = &i.infos[s].hosts;
            for (&host, action) in hosts.iter().zip(render_all(i, s, hosts, &mut problems)) {
                let node = b.graph.add_node(PlanNode::Action(action));
                b.actions[s].push((host, node));
            }
            // A step with no hosts (only optional roles that nobody has) keeps its place in the
            // order through a gate, so the steps around it stay ordered.
            if i.infos[s].hosts.is_empty() {
                let label = format!("{} (no hosts)", i.infos[s].id);
                let gate = b.graph.add_node(PlanNode::Gate(Gate {
                    label,
                    phase: p,
                    max_failed_hosts: None,
                }));
                b.actions[s].push((None, gate));
            }
        }
        // Rolling phase: a gate after each batch but the last, holding the failure budget.
        let (batches, budget) = &i.phase_batches[p];
        for k in 0..batches.len().saturating_sub(1) {
            let gate = b.graph.add_node(PlanNode::Gate(Gate {
                label: format!("batch {} of phase {} finished", k + 1, phase.name.value),
                phase: p,
                max_failed_hosts: Some(*budget),
            }));
            for &s in &phase_steps[p] {
                if i.steps[s].1.kind == StepKind::Main {
                    for (h, n) in b.actions[s].clone() {
                        if b.batch(p, h) == Some(k) {
                            b.edge(n, gate, EdgeKind::Completion);
                        }
                    }
                }
            }
            batch_gates[p].push(gate);
        }
        let end = b.graph.add_node(PlanNode::Gate(Gate {
            label: format!("end of phase {}", phase.name.value),
            phase: p,
            max_failed_hosts: (!i.phase_batches[p].0.is_empty()).then_some(i.phase_batches[p].1),
        }));
        b.phase_ends.push(end);
    }

    // Edges, from the step graph.
    let g = &i.step_graph.graph;
    // A phase's body node sorts as its first main step, where the edges from each main step to
    // each handler stood before the body node replaced them: plan node and edge order (and so
    // the ties of the critical path) stay as they were.
    let sort_key = |n: NodeIndex| match g[n] {
        StepNode::PhaseBody(p) => phase_steps[p]
            .iter()
            .copied()
            .find(|&s| i.steps[s].1.kind == StepKind::Main)
            .map_or(n.index(), |s| s),
        _ => n.index(),
    };
    let mut edges: Vec<_> = g.edge_references().collect();
    edges.sort_by_key(|e| (sort_key(e.source()), e.target(), e.id()));
    for e in edges {
        let w = e.weight();
        let kind = if w.completion {
            EdgeKind::Completion
        } else {
            EdgeKind::Success
        };
        match (g[e.source()], g[e.target()]) {
            (StepNode::Step(a), StepNode::Step(c)) => {
                let handler =
                    i.steps[c].1.kind != StepKind::Main && i.steps[a].1.kind == StepKind::Main;
                // A handler waits for every main step of its phase through the body gate (its
                // edge from the body node), a `needs` on a main step included.
                if !handler {
                    connect(&mut b, i, a, c, w.spread, kind);
                }
            }
            (StepNode::PhaseBody(phase), StepNode::Step(c)) => {
                // Handlers wait for the phase's whole body through one gate per phase.
                let gate = body_gate(&mut b, i.runbook, phase, &phase_steps[phase], i.steps);
                for (_, t) in b.actions[c].clone() {
                    b.edge(gate, t, EdgeKind::Completion);
                }
            }

            (StepNode::Step(a), StepNode::PhaseEnd(p)) => {
                let end = b.phase_ends[p];
                // A rolling phase ends when every batch has finished; its failure budget (on the
                // end gate) decides whether the run goes on, without the hosts that failed.
                let kind = if i.phase_batches[p].0.is_empty() {
                    kind
                } else {
                    EdgeKind::Completion
                };
                for (_, n) in b.actions[a].clone() {
                    b.edge(n, end, kind);
                }
            }
            // Phase entry is wired below; the body gate gathers the phase's main steps itself.
            (StepNode::Step(_), StepNode::PhaseBody(_))
            | (
                StepNode::PhaseEnd(_) | StepNode::PhaseBody(_),
                StepNode::Step(_) | StepNode::PhaseEnd(_) | StepNode::PhaseBody(_),
            ) => {}
        }
    }
    // Rolling phases: every action of batch k waits for the gate after batch k-1.
    for (s, (p, step)) in i.steps.iter().enumerate() {
        if step.kind != StepKind::Main {
            continue;
        }
        for (h, n) in b.actions[s].clone() {
            if let Some(k) = b.batch(*p, h).filter(|&k| k > 0) {
                b.edge(batch_gates[*p][k - 1], n, EdgeKind::Success);
            }
        }
    }
    // Phase entry: an action with no predecessor inside its own phase waits for the end of the
    // previous phase.
    for (s, (p, _)) in i.steps.iter().enumerate() {
        if *p == 0 {
            continue;
        }
        for (_, n) in b.actions[s].clone() {
            let inside = b
                .graph
                .edges_directed(n, petgraph::Direction::Incoming)
                .any(|e| phase_of(&b.graph[e.source()], i.infos) == *p);
            if !inside {
                let end = b.phase_ends[p - 1];
                b.edge(end, n, EdgeKind::Success);
            }
        }
    }

    for ((s, span, message, code), hosts) in problems {
        let step = i.steps[s].1;
        let on = if hosts.len() > 3 {
            format!(
                "{} and {} more hosts",
                hosts[..3].join(", "),
                hosts.len() - 3
            )
        } else {
            hosts.join(", ")
        };
        i.out.push(
            Diagnostic::new(code, format!("step `{}`: {message}", step.id.value))
                .in_file(&i.runbook.source)
                .primary(span, format!("on {on}"))
                .help(match code {
                    Code::ModuleArgType => "check the argument's type in `runbook modules` or docs/modules/".to_owned(),
                    Code::TemplateAmbiguousOutput => "read the output through a step that runs on the same host, or give the producing step a single host".to_owned(),
                    Code::TemplateNotUpstream => {
                        format!("make step `{}` wait for the producing step with `needs:`", step.id.value)
                    }
                    Code::ModuleArgInvalid => {
                        format!("see `runbook modules {}` for how the arguments fit together", step.module.value)
                    }
                    Code::ModuleUnknownHost => "`from` names the host to copy from: one of the inventory's hosts".to_owned(),
                    Code::EnvNulByte => "a shell variable cannot hold a NUL byte; pass binary data in a file or base64-encoded".to_owned(),
                    _ => "fix the value so that it renders for every target host".to_owned(),
                }),
        );
    }
    b.graph
}

fn phase_of(node: &PlanNode, infos: &[StepInfo]) -> usize {
    match node {
        PlanNode::Action(a) => infos[a.step].phase,
        PlanNode::Gate(g) => g.phase,
    }
}

fn body_gate(
    b: &mut Builder,
    runbook: &Runbook,
    phase: usize,
    members: &[usize],
    steps: &[(usize, &Step)],
) -> NodeIndex {
    let key = (usize::MAX - phase, true, usize::MAX);
    if let Some(&g) = b.step_gates.get(&key) {
        return g;
    }
    let gate = b.graph.add_node(PlanNode::Gate(Gate {
        label: format!(
            "main steps of phase {} finished",
            runbook.phases[phase].name.value
        ),
        phase,
        max_failed_hosts: None,
    }));
    for &s in members {
        if steps[s].1.kind == StepKind::Main {
            for (_, n) in b.actions[s].clone() {
                b.edge(n, gate, EdgeKind::Completion);
            }
        }
    }
    b.step_gates.insert(key, gate);
    gate
}

fn connect(
    b: &mut Builder,
    i: &Inputs<'_>,
    from: usize,
    to: usize,
    spread: Spread,
    kind: EdgeKind,
) {
    let (pf, pt) = (i.steps[from].0, i.steps[to].0);
    // Inside a rolling phase, order holds within each batch; batches follow each other through
    // their gates.
    if pf == pt && !i.phase_batches[pf].0.is_empty() {
        for k in 0..i.phase_batches[pf].0.len() {
            let in_batch = |actions: &[(Option<HostId>, NodeIndex)]| {
                actions
                    .iter()
                    .copied()
                    .filter(|(h, _)| b.batch(pf, *h) == Some(k))
                    .collect::<Vec<_>>()
            };
            let (sources, targets) = (in_batch(&b.actions[from]), in_batch(&b.actions[to]));
            link(b, i, from, Some(k), &sources, &targets, spread, kind);
        }
        return;
    }
    let (sources, targets) = (b.actions[from].clone(), b.actions[to].clone());
    link(b, i, from, None, &sources, &targets, spread, kind);
}

#[allow(clippy::too_many_arguments)]
fn link(
    b: &mut Builder,
    i: &Inputs<'_>,
    from: usize,
    batch: Option<usize>,
    sources: &[(Option<HostId>, NodeIndex)],
    targets: &[(Option<HostId>, NodeIndex)],
    spread: Spread,
    kind: EdgeKind,
) {
    match spread {
        Spread::SameHost => {
            for (h, t) in targets {
                if let Some((_, s)) = sources.iter().find(|(sh, _)| sh == h) {
                    b.edge(*s, *t, kind);
                }
            }
        }
        Spread::AllToAll if sources.len() <= 1 || targets.len() <= 1 => {
            for (_, s) in sources {
                for (_, t) in targets {
                    b.edge(*s, *t, kind);
                }
            }
        }
        Spread::AllToAll => {
            let phase = i.steps[from].0;
            let label = match batch {
                Some(k) => format!("all of {} in batch {}", i.steps[from].1.id.value, k + 1),
                None => format!("all of {}", i.steps[from].1.id.value),
            };
            let gate = b.step_gate(from, kind == EdgeKind::Completion, batch, label, phase);
            for (_, t) in targets {
                b.edge(gate, *t, kind);
            }
        }
    }
}

type Problems = BTreeMap<(usize, Span, String, Code), Vec<String>>;

/// Renders a step's actions, on several threads when it has many hosts (a 1,000-host plan
/// spends most of its compile time here). The result and the problems are in host order
/// whatever the threads do, so plans stay reproducible.
fn render_all(
    i: &Inputs<'_>,
    s: usize,
    hosts: &[Option<HostId>],
    problems: &mut Problems,
) -> Vec<Action> {
    const PER_THREAD: usize = 128;
    // Asked once: the answer reads cgroup files, and a plan of 100,000 steps asked per step.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let threads = cores.min(hosts.len() / PER_THREAD).min(8);
    if threads < 2 {
        return hosts
            .iter()
            .map(|&h| render_action(i, s, h, problems))
            .collect();
    }
    let chunk = hosts.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = hosts
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut found = Problems::new();
                    let actions: Vec<Action> = part
                        .iter()
                        .map(|&h| render_action(i, s, h, &mut found))
                        .collect();
                    (actions, found)
                })
            })
            .collect();
        let mut out = Vec::with_capacity(hosts.len());
        for part in parts {
            let (actions, found) = part.join().expect("rendering an action does not panic");
            out.extend(actions);
            for (key, names) in found {
                problems.entry(key).or_default().extend(names);
            }
        }
        out
    })
}

fn render_action(
    i: &Inputs<'_>,
    s: usize,
    host: Option<HostId>,
    problems: &mut Problems,
) -> Action {
    let info = &i.infos[s];
    let host_name = host.map_or_else(
        || "controller".to_owned(),
        |h| i.inventory.host(h).name.clone(),
    );
    let mut report = |span: Span, message: String, code: Code| {
        problems
            .entry((s, span, message, code))
            .or_default()
            .push(host_name.clone());
    };

    // Which host's output each register read resolves to, and whether it is upstream.
    for (name, &at) in &info.args.reads {
        let Some(&producer) = i.registers.get(name) else {
            continue;
        };
        let producer_hosts = &i.infos[producer].hosts;
        if producer == s || producer_hosts.contains(&host) {
            continue;
        }
        if producer_hosts.len() == 1 {
            if !i.global_ancestors.reaches(producer, s) {
                report(
                    at,
                    format!(
                        "`{name}` comes from a host whose step does not finish before this one"
                    ),
                    Code::TemplateNotUpstream,
                );
            }
        } else {
            report(
                at,
                format!(
                    "`{name}` was registered on {} hosts, none of them this one, so it is ambiguous",
                    producer_hosts.len()
                ),
                Code::TemplateAmbiguousOutput,
            );
        }
    }

    let renderer = Renderer {
        templates: i.templates,
        registry: i.registry,
        contexts: i.contexts,
        source: &i.runbook.source,
        plan_time: true,
    };
    // Only the outputs this step reads (and its own, for `until:`) are in its context.
    let deferred = i.contexts.deferred_for(
        info.args
            .reads
            .keys()
            .chain(info.register.as_ref())
            .map(String::as_str),
    );
    let (rendered, render_problems) = renderer.render(info, host, &deferred);
    for p in render_problems {
        report(p.span, p.message, p.code);
    }
    let env = match renderer.render_env(info, host, &deferred, None) {
        Ok(env) => env,
        Err(p) => {
            report(p.span, p.message, p.code);
            Vec::new()
        }
    };
    Action {
        step: s,
        host,
        operations: rendered.operations,
        items: rendered.items,
        env,
    }
}
