//! The plan's types.

use std::time::Duration;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use runbook_modules::Operation;

use crate::ast::{Order, StepKind};
use crate::compile::{Contexts, Renderer};
use crate::compile::{ResolvedParam, TemplateArgs};
use crate::diagnostic::SourceFile;
use crate::inventory::{Connection, HostId, InventoryFormat};
use crate::template::Templates;

use super::schedule::Schedule;

#[derive(Clone, Debug, serde::Serialize)]
pub struct RunbookInfo {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub source: Vec<String>,
    pub file: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct InventoryInfo {
    pub file: String,
    pub format: InventoryFormat,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct HostInfo {
    pub name: String,
    pub address: String,
    /// `null` when the inventory gives none: ssh's configuration decides.
    pub port: Option<u16>,
    pub user: Option<String>,
    pub connection: Connection,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PhaseInfo {
    pub name: String,
    pub description: Option<String>,
    /// Whether the phase may only run inside the outage window.
    pub outage: bool,
    pub order: Order,
    /// Rolling batches of hosts, in order (empty when the phase is not rolling).
    pub batches: Vec<Vec<HostId>>,
    /// Hosts of the phase that may fail before the remaining batches stop.
    pub max_failed_hosts: usize,
}

/// Where a step's duration estimate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimateSource {
    /// The step's `estimate:`.
    Declared,
    /// The engine's default for the module.
    Default,
    /// The median of the step's recorded durations in earlier runs (a lab rehearsal counts).
    History,
}

#[derive(Clone, Debug)]
pub struct StepInfo {
    pub id: String,
    /// The block the step came from, and the chain of `uses:` (`None`: the runbook's own).
    pub origin: Option<crate::ast::Origin>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub source: Option<String>,
    pub phase: usize,
    pub kind: StepKind,
    pub module: String,
    pub idempotent: bool,
    pub manual: bool,
    pub irreversible: bool,
    /// Where the write freeze starts or ends (`freeze:`).
    pub freeze: Option<crate::ast::Freeze>,
    pub needs: Vec<String>,
    pub when: Option<String>,
    pub until: Option<String>,
    pub retries: u32,
    pub delay: Option<Duration>,
    pub timeout: Option<Duration>,
    pub register: Option<String>,
    /// The `loop:` as written, when there is one.
    pub loop_source: Option<String>,
    /// The `loop:`, compiled.
    pub loop_spec: Option<crate::compile::LoopSpec>,
    /// Estimated duration of one action of the step.
    pub estimate: Duration,
    pub estimate_source: EstimateSource,
    /// Targets; `None` is the controller (manual and assert steps without `on:`).
    pub hosts: Vec<Option<HostId>>,
    /// The step's arguments as templates, for the executor to render with real outputs.
    pub args: TemplateArgs,
}

/// One step on one host.
#[derive(Clone, Debug)]
pub struct Action {
    pub step: usize,
    pub host: Option<HostId>,
    /// What the action does, rendered with everything known before the run; outputs of earlier
    /// steps appear as `<name.field>` placeholders.
    pub operations: Vec<Operation>,
    /// Loop items, rendered for display, when the step loops.
    pub items: Option<Vec<String>>,
    /// `env:` for display: secrets read `********`.
    pub env: Vec<(String, String)>,
}

/// A synchronisation point with no work of its own (the end of a phase, or "all of step X").
#[derive(Clone, Debug)]
pub struct Gate {
    pub label: String,
    pub phase: usize,
    /// For the gate after a batch of a rolling phase: how many of the phase's hosts may have
    /// failed for the next batch to start.
    pub max_failed_hosts: Option<usize>,
}

#[derive(Clone, Debug)]
pub enum PlanNode {
    Action(Action),
    Gate(Gate),
}

/// How a dependent waits for a dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// The dependent runs only if the dependency succeeded.
    Success,
    /// The dependent runs once the dependency has finished, whatever its outcome (used by
    /// `on_failure` and `always` steps).
    Completion,
}

/// A reference to an action node of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionRef(pub(crate) NodeIndex);

/// The sealed plan.
#[derive(Debug)]
pub struct Plan {
    pub runbook: RunbookInfo,
    pub inventory: InventoryInfo,
    pub params: Vec<ResolvedParam>,
    pub phases: Vec<PhaseInfo>,
    pub steps: Vec<StepInfo>,
    pub hosts: Vec<HostInfo>,
    graph: DiGraph<PlanNode, EdgeKind>,
    schedule: Schedule,
    /// The compiled templates the executor renders step arguments with.
    templates: Templates,
    /// The per-host template contexts.
    contexts: Contexts,
    /// The runbook's text, to locate run-time template errors.
    source: SourceFile,
    /// Definition fingerprints by node index (empty for gates), computed on first use.
    fingerprints: std::sync::OnceLock<Vec<String>>,
}

impl Plan {
    /// Seals a graph built by the compiler. The graph must be acyclic.
    #[allow(clippy::too_many_arguments)] // one private constructor, called once by the compiler
    pub(crate) fn seal(
        runbook: RunbookInfo,
        inventory: InventoryInfo,
        params: Vec<ResolvedParam>,
        phases: Vec<PhaseInfo>,
        steps: Vec<StepInfo>,
        hosts: Vec<HostInfo>,
        graph: DiGraph<PlanNode, EdgeKind>,
        templates: Templates,
        contexts: Contexts,
        source: SourceFile,
    ) -> Self {
        let outage: Vec<bool> = phases.iter().map(|p| p.outage).collect();
        let schedule = Schedule::compute(&graph, &steps, &outage);
        Self {
            runbook,
            inventory,
            params,
            phases,
            steps,
            hosts,
            graph,
            schedule,
            fingerprints: std::sync::OnceLock::new(),
            templates,
            contexts,
            source,
        }
    }

    /// All nodes (actions and gates) in a deterministic topological order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeIndex, &PlanNode)> {
        self.schedule.order.iter().map(|&n| (n, &self.graph[n]))
    }

    /// Actions in deterministic topological order.
    pub fn actions(&self) -> impl Iterator<Item = (ActionRef, &Action)> {
        self.nodes().filter_map(|(n, node)| match node {
            PlanNode::Action(a) => Some((ActionRef(n), a)),
            PlanNode::Gate(_) => None,
        })
    }

    pub fn action_count(&self) -> usize {
        self.graph
            .node_weights()
            .filter(|n| matches!(n, PlanNode::Action(_)))
            .count()
    }

    pub fn node(&self, index: NodeIndex) -> &PlanNode {
        &self.graph[index]
    }

    /// Direct dependencies of a node, sorted by topological position.
    pub fn dependencies(&self, index: NodeIndex) -> Vec<(NodeIndex, EdgeKind)> {
        let mut deps: Vec<_> = self
            .graph
            .edges_directed(index, Direction::Incoming)
            .map(|e| (petgraph::visit::EdgeRef::source(&e), *e.weight()))
            .collect();
        deps.sort_by_key(|(n, _)| self.schedule.position[n.index()]);
        deps.dedup();
        deps
    }

    /// Direct dependents of a node.
    pub fn dependents(&self, index: NodeIndex) -> Vec<NodeIndex> {
        let mut out: Vec<NodeIndex> = self
            .graph
            .neighbors_directed(index, Direction::Outgoing)
            .collect();
        out.sort_by_key(|n| self.schedule.position[n.index()]);
        out.dedup();
        out
    }

    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Position of a node in the deterministic topological order.
    pub fn order_position(&self, index: NodeIndex) -> usize {
        self.schedule.position[index.index()]
    }

    /// The stable name of a node: `step@host`, `step@controller`, or the gate's label.
    pub fn node_id(&self, index: NodeIndex) -> String {
        match &self.graph[index] {
            PlanNode::Action(a) => self.action_id(a),
            PlanNode::Gate(g) => format!("gate:{}", g.label),
        }
    }

    pub fn action_id(&self, action: &Action) -> String {
        format!(
            "{}@{}",
            self.steps[action.step].id,
            self.host_name(action.host)
        )
    }

    pub fn host_name(&self, host: Option<HostId>) -> &str {
        host.map_or("controller", |h| self.hosts[h].name.as_str())
    }

    /// The wave (1-based, within its phase) of an action: waves are the levels of the DAG,
    /// all actions of one wave can run at once.
    pub fn wave(&self, action: ActionRef) -> usize {
        self.schedule.wave[action.0.index()]
    }

    /// Estimated start of a node on the critical-path schedule.
    pub fn estimated_start(&self, index: NodeIndex) -> Duration {
        self.schedule.start[index.index()]
    }

    /// The estimated duration of the whole run (the critical path, happy path: `on_failure`
    /// steps are assumed not to run).
    pub fn critical_path_estimate(&self) -> Duration {
        self.schedule.total
    }

    /// The estimated outage-phase time on the longest path from `node` to the end of the run,
    /// `node` included: what must still fit in the window when `node` starts.
    pub fn remaining_outage(&self, node: NodeIndex) -> Duration {
        self.schedule.outage_tail[node.index()]
    }

    /// The fingerprint of an action's definition (the step and its rendered operations), as the
    /// journal records it; empty for a gate.
    pub fn definition_fingerprint(&self, node: NodeIndex) -> &str {
        let all = self.fingerprints.get_or_init(|| {
            self.graph
                .node_indices()
                .map(|n| match &self.graph[n] {
                    PlanNode::Action(a) => super::fingerprint::definition_fingerprint(self, a),
                    PlanNode::Gate(_) => String::new(),
                })
                .collect()
        });
        &all[node.index()]
    }

    /// [`Plan::definition_fingerprint`] of an action.
    pub fn action_fingerprint(&self, action: ActionRef) -> &str {
        self.definition_fingerprint(action.0)
    }

    /// The actions on the critical path, in order.
    pub fn critical_path(&self) -> &[NodeIndex] {
        &self.schedule.critical
    }

    /// Estimated start and end of each phase.
    pub fn phase_span(&self, phase: usize) -> (Duration, Duration) {
        self.schedule.phase_spans[phase]
    }

    /// The planned outage: on the critical-path schedule, from the start of the first action
    /// of the first outage phase to the end of the last action of the last one (what a run
    /// measures, [`crate::execute::Report::outage`]). Zero without outage phases.
    pub fn outage_estimate(&self) -> Duration {
        self.schedule
            .outage
            .as_ref()
            .map_or(Duration::ZERO, super::outage::PlannedSpan::length)
    }

    /// The planned outage with the actions of its longest path; `None` without outage phases.
    pub fn planned_outage(&self) -> Option<&super::outage::PlannedSpan> {
        self.schedule.outage.as_ref()
    }

    /// The planned write freeze, when the runbook marks one (`freeze: start` / `freeze: end`).
    pub fn planned_freeze(&self) -> Option<&super::outage::PlannedSpan> {
        self.schedule.freeze.as_ref()
    }

    /// A renderer for this plan's actions, with real outputs (`plan_time: false`).
    pub fn renderer<'a>(&'a self, registry: &'a runbook_modules::Registry) -> Renderer<'a> {
        Renderer {
            templates: &self.templates,
            registry,
            contexts: &self.contexts,
            source: &self.source,
            plan_time: false,
        }
    }

    /// Evaluates a run-time expression (`when:`, `until:`) in an action's context.
    pub fn eval(
        &self,
        expression: &str,
        host: Option<HostId>,
        registers: &[(String, minijinja::Value)],
    ) -> Result<minijinja::Value, crate::template::TemplateError> {
        let ctx = self.contexts.for_action(host, None, registers);
        self.templates.eval(expression, &ctx)
    }

    pub(crate) fn position(&self, index: NodeIndex) -> usize {
        self.schedule.position[index.index()]
    }
}
