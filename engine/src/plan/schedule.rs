//! Derived facts about a plan's graph: a deterministic topological order, waves, and the
//! critical path under the step estimates. Computed once, when the plan is sealed.

use std::time::Duration;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::ast::StepKind;

use super::model::{EdgeKind, PlanNode, StepInfo};

#[derive(Debug, Default)]
pub(crate) struct Schedule {
    /// Topological order; ties broken by node index, which the compiler assigns in a stable
    /// order (phase, step, host).
    pub order: Vec<NodeIndex>,
    /// Position of each node in `order`.
    pub position: Vec<usize>,
    /// Wave of each action within its phase (1-based); 0 for gates.
    pub wave: Vec<usize>,
    pub start: Vec<Duration>,
    pub total: Duration,
    pub critical: Vec<NodeIndex>,
    pub phase_spans: Vec<(Duration, Duration)>,
    /// For each node, the estimated outage-phase time on the longest path from its start to the
    /// end of the run (its own estimate included when it is in an outage phase).
    pub outage_tail: Vec<Duration>,
    /// The planned outage: the first outage action's start to the last one's end.
    pub outage: Option<super::outage::PlannedSpan>,
    /// The planned write freeze: the `freeze: start` step's start to the `freeze: end` step's end.
    pub freeze: Option<super::outage::PlannedSpan>,
}

impl Schedule {
    pub fn compute(
        graph: &DiGraph<PlanNode, EdgeKind>,
        steps: &[StepInfo],
        outage_phases: &[bool],
    ) -> Self {
        let n = graph.node_count();
        let order = topological_order(graph);
        let mut position = vec![0; n];
        for (i, node) in order.iter().enumerate() {
            position[node.index()] = i;
        }

        // Waves: an action's level is one more than the deepest action before it in the same
        // phase; gates pass the level through without adding to it.
        let phase_of = |node: &PlanNode| match node {
            PlanNode::Action(a) => steps[a.step].phase,
            PlanNode::Gate(g) => g.phase,
        };
        let mut level = vec![0usize; n];
        let mut wave = vec![0usize; n];
        let mut start = vec![Duration::ZERO; n];
        let mut finish = vec![Duration::ZERO; n];
        let mut via: Vec<Option<NodeIndex>> = vec![None; n];
        let phase_count = steps.iter().map(|s| s.phase + 1).max().unwrap_or(0);
        let mut phase_spans = vec![(Duration::MAX, Duration::ZERO); phase_count];
        for &node in &order {
            let weight = &graph[node];
            let phase = phase_of(weight);
            let mut lvl = 0;
            let mut earliest = Duration::ZERO;
            for edge in graph.edges_directed(node, Direction::Incoming) {
                let pred = edge.source();
                let same_phase = phase_of(&graph[pred]) == phase;
                if same_phase {
                    lvl = lvl.max(level[pred.index()]);
                }
                let f = finish[pred.index()];
                if via[node.index()].is_none() || f > earliest {
                    earliest = f;
                    via[node.index()] = Some(pred);
                }
            }
            start[node.index()] = earliest;
            let own = match weight {
                PlanNode::Action(a) => {
                    lvl += 1;
                    wave[node.index()] = lvl;
                    let step = &steps[a.step];
                    // The happy path: on_failure steps do not run.
                    if step.kind == StepKind::OnFailure {
                        Duration::ZERO
                    } else {
                        step.estimate
                    }
                }
                PlanNode::Gate(_) => Duration::ZERO,
            };
            level[node.index()] = lvl;
            finish[node.index()] = earliest + own;
            if let PlanNode::Action(_) = weight {
                let span = &mut phase_spans[phase];
                span.0 = span.0.min(earliest);
                span.1 = span.1.max(finish[node.index()]);
            }
        }
        for span in &mut phase_spans {
            if span.0 == Duration::MAX {
                *span = (Duration::ZERO, Duration::ZERO);
            }
        }
        let total = finish.iter().copied().max().unwrap_or_default();
        let mut critical = Vec::new();
        let last = order
            .iter()
            .rev()
            .copied()
            .max_by_key(|n| (finish[n.index()], std::cmp::Reverse(position[n.index()])));
        let mut cursor = last;
        while let Some(node) = cursor {
            if matches!(graph[node], PlanNode::Action(_)) {
                critical.push(node);
            }
            cursor = via[node.index()];
        }
        critical.reverse();
        let action_of = |node: NodeIndex| match &graph[node] {
            PlanNode::Action(a) if steps[a.step].kind != StepKind::OnFailure => {
                Some(&steps[a.step])
            }
            _ => None,
        };
        let in_outage = |node: NodeIndex| action_of(node).is_some_and(|s| outage_phases[s.phase]);
        let outage = super::outage::span(
            order.iter().copied().filter(|&n| in_outage(n)),
            order.iter().copied().filter(|&n| in_outage(n)),
            &start,
            &finish,
            &via,
            in_outage,
        );
        let marked = |mark: crate::ast::Freeze| {
            move |node: &NodeIndex| action_of(*node).is_some_and(|s| s.freeze == Some(mark))
        };
        let freeze = super::outage::span(
            order
                .iter()
                .copied()
                .filter(marked(crate::ast::Freeze::Start)),
            order
                .iter()
                .copied()
                .filter(marked(crate::ast::Freeze::End)),
            &start,
            &finish,
            &via,
            |n| action_of(n).is_some(),
        );
        let mut outage_tail = vec![Duration::ZERO; n];
        for &node in order.iter().rev() {
            let own = match &graph[node] {
                PlanNode::Action(a) => {
                    let step = &steps[a.step];
                    if outage_phases[step.phase] && step.kind != StepKind::OnFailure {
                        step.estimate
                    } else {
                        Duration::ZERO
                    }
                }
                PlanNode::Gate(_) => Duration::ZERO,
            };
            let after = graph
                .edges_directed(node, Direction::Outgoing)
                .map(|e| outage_tail[e.target().index()])
                .max()
                .unwrap_or_default();
            outage_tail[node.index()] = own + after;
        }
        Self {
            order,
            position,
            wave,
            start,
            total,
            critical,
            phase_spans,
            outage_tail,
            outage,
            freeze,
        }
    }
}

/// Kahn's algorithm with the smallest ready node index first: deterministic and stable.
fn topological_order(graph: &DiGraph<PlanNode, EdgeKind>) -> Vec<NodeIndex> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|n| graph.edges_directed(n, Direction::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = indegree
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(Reverse(i)) = ready.pop() {
        let node = NodeIndex::new(i);
        order.push(node);
        for edge in graph.edges_directed(node, Direction::Outgoing) {
            let t = edge.target().index();
            indegree[t] -= 1;
            if indegree[t] == 0 {
                ready.push(Reverse(t));
            }
        }
    }
    assert_eq!(
        order.len(),
        graph.node_count(),
        "the compiler only seals acyclic graphs"
    );
    order
}
