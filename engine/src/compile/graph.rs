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

use petgraph::algo::kosaraju_scc;
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

/// A node of the step graph: a step (by flat index), the end of a phase, or the end of a phase's
/// main steps (only in phases with `on_failure` or `always` steps: every main step leads to it,
/// and it to the phase's first handler, so that handlers cost edges in proportion to the steps
/// rather than mains × handlers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepNode {
    Step(usize),
    PhaseEnd(usize),
    PhaseBody(usize),
}

#[derive(Debug)]
pub struct StepGraph {
    pub graph: DiGraph<StepNode, StepEdge>,
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
    let step_node = NodeIndex::new;
    let phase_end = |p: usize| NodeIndex::new(steps.len() + p);
    // The first step of each id (a duplicate is reported by `structure`).
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, (_, s)) in steps.iter().enumerate().rev() {
        index.insert(s.id.value.as_str(), i);
    }
    let index_of = |id: &str| index.get(id).copied();
    let mut by_phase: Vec<Vec<usize>> = vec![Vec::new(); runbook.phases.len()];
    for (i, (p, _)) in steps.iter().enumerate() {
        by_phase[*p].push(i);
    }

    for (p, phase) in runbook.phases.iter().enumerate() {
        let members = std::mem::take(&mut by_phase[p]);
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
        // Handlers: after every main step (completion, through the phase's body node), in
        // declared order among themselves.
        let body = (!handlers.is_empty() && !mains.is_empty()).then(|| {
            let body = graph.add_node(StepNode::PhaseBody(p));
            for &m in &mains {
                let edge = StepEdge {
                    spread: Spread::AllToAll,
                    completion: true,
                    origin: Origin::Phase(phase.name.span),
                };
                graph.add_edge(step_node(m), body, edge);
            }
            body
        });
        for (k, &h) in handlers.iter().enumerate() {
            let origin = Origin::Handler(steps[h].1.id.span);
            if let Some(body) = body {
                let edge = StepEdge {
                    spread: Spread::AllToAll,
                    completion: true,
                    origin: origin.clone(),
                };
                graph.add_edge(body, step_node(h), edge);
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
    StepGraph { graph }
}

/// Reports every cycle (one diagnostic per strongly connected component), with its full path.
pub fn check_cycles(
    runbook: &Runbook,
    steps: &[(usize, &Step)],
    g: &StepGraph,
    out: &mut Vec<Diagnostic>,
) -> bool {
    let mut found = false;
    // Kosaraju's algorithm walks with an explicit stack; petgraph's Tarjan recurses once per
    // node of a path, and a runbook of 90,000 steps overflowed the stack there.
    let mut components = kosaraju_scc(&g.graph);
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
        StepNode::PhaseBody(p) => {
            format!("(main steps of phase `{}`)", runbook.phases[p].name.value)
        }
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

/// Which steps finish before which: `global.reaches(a, b)` when step `a` finishes before step `b`
/// starts on every host (through all-to-all edges, phase order included), `any.reaches(a, b)`
/// when it does on at least `a`'s own hosts (same-host edges too).
pub fn global_ancestors(g: &StepGraph) -> Reach {
    Reach::new(g, |e| e.spread == Spread::AllToAll)
}

/// Ancestors through any edge (same-host edges included); see [`global_ancestors`].
pub fn any_ancestors(g: &StepGraph) -> Reach {
    Reach::new(g, |_| true)
}

/// Reachability between the nodes of the step graph, answered per query in about constant time
/// for the usual shapes, in memory linear in the graph.
///
/// A matrix of all ancestors (what this replaced) costs the square of the steps: 100,000 steps
/// asked for 10 GB. Instead, the nodes are put in topological order and the *cuts* are found:
/// nodes that every earlier node reaches and that reach every later node (each main step of a
/// sequential phase, each phase end). `a` reaches `b` when a cut lies between them (`a` itself
/// or `b` itself included); otherwise a backward search from `b` that never goes before `a`
/// in the order decides, and it stays between two cuts.
#[derive(Debug)]
pub struct Reach {
    /// Every node reaches every other (the graph has a cycle: there is no "upstream").
    all: bool,
    /// Topological position of each node.
    position: Vec<usize>,
    /// For each position, the first cut at or after it (`usize::MAX`: none).
    next_cut: Vec<usize>,
    /// Kept predecessors of each node.
    preds: Vec<Vec<usize>>,
}

impl Reach {
    /// Every step counts as upstream of every other (used when the graph has a cycle, so that
    /// the template checks can still run).
    pub fn everything() -> Self {
        Self {
            all: true,
            position: Vec::new(),
            next_cut: Vec::new(),
            preds: Vec::new(),
        }
    }

    fn new(g: &StepGraph, keep: impl Fn(&StepEdge) -> bool) -> Self {
        let order = petgraph::algo::toposort(&g.graph, None).expect("checked acyclic before");
        let n = order.len();
        let mut position = vec![0; n];
        for (k, node) in order.iter().enumerate() {
            position[node.index()] = k;
        }
        let mut preds = vec![Vec::new(); n];
        // Per position: the earliest successor, the latest predecessor (kept edges only).
        let mut min_out = vec![usize::MAX; n];
        let mut max_in: Vec<Option<usize>> = vec![None; n];
        for e in g.graph.edge_references() {
            if !keep(e.weight()) {
                continue;
            }
            let (s, t) = (e.source().index(), e.target().index());
            preds[t].push(s);
            let (ps, pt) = (position[s], position[t]);
            min_out[ps] = min_out[ps].min(pt);
            max_in[pt] = Some(max_in[pt].map_or(ps, |m| m.max(ps)));
        }
        // Position k is a cut when every earlier node has a successor at or before k (then, by
        // induction from k down, each reaches k) and every later node a predecessor at or after
        // k (each is reached from k).
        let mut earlier_ok = vec![false; n];
        let mut worst_out = 0;
        for k in 0..n {
            earlier_ok[k] = k == 0 || worst_out <= k;
            worst_out = worst_out.max(min_out[k]);
        }
        let mut next_cut = vec![usize::MAX; n + 1];
        let mut worst_in: Option<usize> = None; // min over later nodes of max_in; None: no later node
        let mut has_later = false;
        for k in (0..n).rev() {
            let later_ok = !has_later || worst_in.is_some_and(|w| w >= k);
            next_cut[k] = if earlier_ok[k] && later_ok {
                k
            } else {
                next_cut[k + 1]
            };
            // Fold node k into "later" for position k - 1.
            worst_in = if has_later {
                match (worst_in, max_in[k]) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                }
            } else {
                max_in[k]
            };
            has_later = true;
        }
        next_cut.truncate(n);
        Self {
            all: false,
            position,
            next_cut,
            preds,
        }
    }

    /// Whether step `from` finishes before step `to` starts (`from` is an ancestor of `to`).
    pub fn reaches(&self, from: usize, to: usize) -> bool {
        if self.all {
            return true;
        }
        let (pf, pt) = (self.position[from], self.position[to]);
        if pf >= pt {
            return false;
        }
        if self.next_cut[pf] <= pt {
            return true;
        }
        let mut seen = std::collections::HashSet::from([to]);
        let mut todo = vec![to];
        while let Some(node) = todo.pop() {
            for &p in &self.preds[node] {
                if p == from {
                    return true;
                }
                if self.position[p] > pf && seen.insert(p) {
                    todo.push(p);
                }
            }
        }
        false
    }
}
