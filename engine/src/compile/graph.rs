//! The step-level dependency graph: implicit ordering, `needs`, cycles, and ancestry.
//!
//! Ordering rules (docs/runbook-format.md, "Ordering"):
//! 1. Phases run one after the other: a phase starts when the previous one has finished.
//! 2. In a `sequential` phase (the default), each main step starts when the previous main step
//!    has finished on all its hosts. In a `per_host` phase, each host runs the main steps in
//!    order, independently of the other hosts.
//! 3. `on_failure` steps run after all main steps of the phase, only if one of them failed;
//!    `always` steps run after those, whatever happened. Both keep their declared order.
//! 4. `needs: [x]` makes a step wait for step `x` on all of `x`'s hosts, across phases too.
//!
//! Cycles can only come from `needs`. Each is reported once, as its full path, each edge
//! labelled where it comes from.

use std::collections::BTreeSet;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::ast::{Order, Runbook, Step, StepKind};
use crate::diagnostic::{Code, Diagnostic};
use crate::inventory::HostId;
use crate::yaml::Span;

/// Why one step comes after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Declared order within a phase; the span is the later step's id.
    Sequence(Span),
    /// `needs:` entry.
    Needs(Span),
    /// Phase boundaries; the span is the phase name.
    Phase(Span),
    /// on_failure / always come after the main steps; the span is the later step's id.
    Handler(Span),
}

/// How the dependency spreads over hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    /// Every action of the dependent waits for every action of the dependency.
    AllToAll,
    /// Each action of the dependent waits for the dependency's action on the same host.
    SameHost,
}

#[derive(Clone, Debug)]
pub struct StepEdge {
    pub spread: Spread,
    pub completion: bool,
    pub origin: Origin,
}

/// A node of the step graph: a step (by flat index) or the end of a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepNode {
    Step(usize),
    PhaseEnd(usize),
}

#[derive(Debug)]
pub struct StepGraph {
    pub graph: DiGraph<StepNode, StepEdge>,
    pub step_count: usize,
}

/// Builds the step graph. `hosts[i]` are the targets of flat step `i`.
pub fn build(
    runbook: &Runbook,
    steps: &[(usize, &Step)],
    hosts: &[Vec<Option<HostId>>],
) -> StepGraph {
    let mut graph = DiGraph::new();
    for i in 0..steps.len() {
        graph.add_node(StepNode::Step(i));
    }
    for p in 0..runbook.phases.len() {
        graph.add_node(StepNode::PhaseEnd(p));
    }
    let g = StepGraph {
        graph,
        step_count: steps.len(),
    };
    let mut graph = g.graph;
    let step_node = NodeIndex::new;
    let phase_end = |p: usize| NodeIndex::new(steps.len() + p);
    let index_of = |id: &str| steps.iter().position(|(_, s)| s.id.value == id);

    for (p, phase) in runbook.phases.iter().enumerate() {
        let members: Vec<usize> = (0..steps.len()).filter(|&i| steps[i].0 == p).collect();
        let mains: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| steps[i].1.kind == StepKind::Main)
            .collect();
        let handlers: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| steps[i].1.kind != StepKind::Main)
            .collect();
        for &i in &members {
            if p > 0 {
                let edge = StepEdge {
                    spread: Spread::AllToAll,
                    completion: false,
                    origin: Origin::Phase(phase.name.span),
                };
                graph.add_edge(phase_end(p - 1), step_node(i), edge);
            }
            let completion = steps[i].1.kind != StepKind::Main;
            let edge = StepEdge {
                spread: Spread::AllToAll,
                completion,
                origin: Origin::Phase(phase.name.span),
            };
            graph.add_edge(step_node(i), phase_end(p), edge);
        }
        match phase.order {
            Order::Sequential => {
                for pair in mains.windows(2) {
                    let edge = StepEdge {
                        spread: Spread::AllToAll,
                        completion: false,
                        origin: Origin::Sequence(steps[pair[1]].1.id.span),
                    };
                    graph.add_edge(step_node(pair[0]), step_node(pair[1]), edge);
                }
            }
            Order::PerHost => {
                let lanes: BTreeSet<Option<HostId>> = mains
                    .iter()
                    .flat_map(|&i| hosts[i].iter().copied())
                    .collect();
                let mut linked = BTreeSet::new();
                // Controller steps (manual, assert) are barriers even here: the hosts wait for
                // the operator, and the operator waits for every host before them.
                let is_barrier = |i: usize| hosts[i].as_slice() == [None];
                for (k, &b) in mains.iter().enumerate() {
                    if !is_barrier(b) {
                        continue;
                    }
                    let start = mains[..k]
                        .iter()
                        .rposition(|&m| is_barrier(m))
                        .map_or(0, |p| p + 1);
                    let end = mains[k + 1..]
                        .iter()
                        .position(|&m| is_barrier(m))
                        .map_or(mains.len(), |p| k + 1 + p);
                    for &before in &mains[start..k] {
                        if linked.insert((before, b)) {
                            let origin = Origin::Sequence(steps[b].1.id.span);
                            graph.add_edge(
                                step_node(before),
                                step_node(b),
                                StepEdge {
                                    spread: Spread::AllToAll,
                                    completion: false,
                                    origin,
                                },
                            );
                        }
                    }
                    for &after in &mains[k + 1..end] {
                        if linked.insert((b, after)) {
                            let origin = Origin::Sequence(steps[after].1.id.span);
                            graph.add_edge(
                                step_node(b),
                                step_node(after),
                                StepEdge {
                                    spread: Spread::AllToAll,
                                    completion: false,
                                    origin,
                                },
                            );
                        }
                    }
                }
                for lane in lanes.into_iter().flatten().map(Some) {
                    let on_lane: Vec<usize> = mains
                        .iter()
                        .copied()
                        .filter(|&i| hosts[i].contains(&lane))
                        .collect();
                    for pair in on_lane.windows(2) {
                        if linked.insert((pair[0], pair[1])) {
                            let edge = StepEdge {
                                spread: Spread::SameHost,
                                completion: false,
                                origin: Origin::Sequence(steps[pair[1]].1.id.span),
                            };
                            graph.add_edge(step_node(pair[0]), step_node(pair[1]), edge);
                        }
                    }
                }
            }
        }
        // Handlers: after every main step (completion), in declared order among themselves.
        for (k, &h) in handlers.iter().enumerate() {
            let origin = Origin::Handler(steps[h].1.id.span);
            for &m in &mains {
                graph.add_edge(
                    step_node(m),
                    step_node(h),
                    StepEdge {
                        spread: Spread::AllToAll,
                        completion: true,
                        origin: origin.clone(),
                    },
                );
            }
            if k > 0 {
                let edge = StepEdge {
                    spread: Spread::AllToAll,
                    completion: true,
                    origin,
                };
                graph.add_edge(step_node(handlers[k - 1]), step_node(h), edge);
            }
        }
    }
    for (i, (_, step)) in steps.iter().enumerate() {
        for need in &step.needs {
            if let Some(j) = index_of(&need.value) {
                let edge = StepEdge {
                    spread: Spread::AllToAll,
                    completion: false,
                    origin: Origin::Needs(need.span),
                };
                graph.add_edge(step_node(j), step_node(i), edge);
            }
        }
    }
    StepGraph {
        graph,
        step_count: steps.len(),
    }
}

/// Reports every cycle (one diagnostic per strongly connected component), with its full path.
pub fn check_cycles(
    runbook: &Runbook,
    steps: &[(usize, &Step)],
    g: &StepGraph,
    out: &mut Vec<Diagnostic>,
) -> bool {
    let mut found = false;
    let mut components = tarjan_scc(&g.graph);
    for c in &mut components {
        c.sort();
    }
    components.sort();
    for component in components {
        let self_loop = component.len() == 1 && g.graph.contains_edge(component[0], component[0]);
        if component.len() < 2 && !self_loop {
            continue;
        }
        found = true;
        // Start the path at the first step of the component (by declaration order).
        let start = component
            .iter()
            .copied()
            .find(|n| matches!(g.graph[*n], StepNode::Step(_)))
            .unwrap_or(component[0]);
        let path = cycle_path(g, &component, start);
        out.push(cycle_diagnostic(runbook, steps, g, &path));
    }
    found
}

/// A shortest cycle through `start` inside the component, as a list of edges.
fn cycle_path(
    g: &StepGraph,
    component: &[NodeIndex],
    start: NodeIndex,
) -> Vec<petgraph::graph::EdgeIndex> {
    use std::collections::{HashMap, VecDeque};
    let inside: BTreeSet<NodeIndex> = component.iter().copied().collect();
    let mut came_from: HashMap<NodeIndex, petgraph::graph::EdgeIndex> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    let mut seen = BTreeSet::from([start]);
    let mut closing = None;
    'search: while let Some(node) = queue.pop_front() {
        let mut edges: Vec<_> = g
            .graph
            .edges(node)
            .filter(|e| inside.contains(&e.target()))
            .collect();
        edges.sort_by_key(|e| (e.target(), e.id()));
        for edge in edges {
            if edge.target() == start {
                closing = Some((node, edge.id()));
                break 'search;
            }
            if seen.insert(edge.target()) {
                came_from.insert(edge.target(), edge.id());
                queue.push_back(edge.target());
            }
        }
    }
    let Some((mut node, last)) = closing else {
        return Vec::new();
    };
    let mut path = vec![last];
    while node != start {
        let edge = came_from[&node];
        path.push(edge);
        node = g.graph.edge_endpoints(edge).expect("edge of this graph").0;
    }
    path.reverse();
    path
}

fn cycle_diagnostic(
    runbook: &Runbook,
    steps: &[(usize, &Step)],
    g: &StepGraph,
    path: &[petgraph::graph::EdgeIndex],
) -> Diagnostic {
    let name = |n: NodeIndex| match g.graph[n] {
        StepNode::Step(i) => format!("`{}`", steps[i].1.id.value),
        StepNode::PhaseEnd(p) => format!("(end of phase `{}`)", runbook.phases[p].name.value),
    };
    let mut names = Vec::new();
    let mut d = Diagnostic::new(Code::Cycle, String::new()).in_file(&runbook.source);
    let mut primary_set = false;
    let mut first_need = None;
    for &e in path {
        let (from, to) = g.graph.edge_endpoints(e).expect("edge of this graph");
        if names.is_empty() {
            names.push(name(from));
        }
        names.push(name(to));
        let (span, text, is_need) = match &g.graph[e].origin {
            Origin::Needs(span) => (*span, format!("{} needs {}", name(to), name(from)), true),
            Origin::Sequence(span) => (
                *span,
                format!("{} comes after {} in its phase", name(to), name(from)),
                false,
            ),
            Origin::Handler(span) => (
                *span,
                format!("{} runs after the phase's main steps", name(to)),
                false,
            ),
            Origin::Phase(span) => (
                *span,
                format!("{} runs before {}", name(from), name(to)),
                false,
            ),
        };
        if is_need && !primary_set {
            d = d.primary(span, text);
            primary_set = true;
            first_need = Some((name(to), name(from)));
        } else {
            d = d.secondary(span, text);
        }
    }
    d.message = format!("dependency cycle: {}", names.join(" → "));
    match first_need {
        Some((to, from)) => d.help(format!(
            "break the cycle, for example by removing {from} from the `needs` of {to}"
        )),
        None => d.help("remove one of the `needs` on this path"),
    }
}

/// For each step, the set of steps that finish before it starts on every host (ancestors
/// through all-to-all edges, including phase order), as a bit matrix row per step.
pub fn global_ancestors(g: &StepGraph) -> Vec<Vec<bool>> {
    ancestors(g, |e| e.spread == Spread::AllToAll)
}

/// Ancestors through any edge (same-host edges included).
pub fn any_ancestors(g: &StepGraph) -> Vec<Vec<bool>> {
    ancestors(g, |_| true)
}

fn ancestors(g: &StepGraph, keep: impl Fn(&StepEdge) -> bool) -> Vec<Vec<bool>> {
    let order = petgraph::algo::toposort(&g.graph, None).expect("checked acyclic before");
    let n = g.graph.node_count();
    let mut anc = vec![vec![false; n]; n];
    for node in order {
        for edge in g.graph.edges_directed(node, petgraph::Direction::Incoming) {
            if !keep(edge.weight()) {
                continue;
            }
            let src = edge.source().index();
            let (before, after) = if src < node.index() {
                let (a, b) = anc.split_at_mut(node.index());
                (&a[src], &mut b[0])
            } else {
                let (a, b) = anc.split_at_mut(src);
                (&b[0], &mut a[node.index()])
            };
            for (k, &v) in before.iter().enumerate() {
                if v {
                    after[k] = true;
                }
            }
            after[src] = true;
        }
    }
    anc.truncate(g.step_count);
    for row in &mut anc {
        row.truncate(g.step_count);
    }
    anc
}
