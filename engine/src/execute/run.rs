//! What a run has done so far: the state the admission policy ([`super::admission`]) reads and
//! the scheduler loop updates.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use petgraph::graph::NodeIndex;
use runbook_modules::Registry;

use crate::ast::StepKind;
use crate::event::Status;
use crate::inventory::HostId;
use crate::plan::{EdgeKind, Plan, PlanNode};
use crate::window::Hold;

use super::action::Progress;
use super::mask::Masker;
use super::options::{Options, Resume};
use super::outputs::Outputs;
use super::reason::Reason;

/// Whether new main steps may still start. Only ever rises: an interruption outranks a
/// `fail_fast` stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Stop {
    #[default]
    Going,
    /// `fail_fast` after a failure: main steps stop, `on_failure` and `always` steps run.
    AfterFailure,
    /// The operator interrupted the run (Ctrl-C): nothing new starts.
    Interrupted,
}

pub(super) struct Run<'a> {
    pub plan: &'a Arc<Plan>,
    pub opts: &'a Options,
    pub registry: &'a Registry,
    /// Each node's final status, once it has one.
    pub status: Vec<Option<Status>>,
    /// When each action was sent (`None`: not yet).
    pub started_at: Vec<Option<Instant>>,
    /// Phases with a failed main action.
    pub phase_failed: Vec<bool>,
    /// Hosts with a failed main action, and the first phase where that happened.
    pub host_failed_in: BTreeMap<HostId, usize>,
    /// Why a gate (or what it blocked) did not pass, when it says more than "a dependency
    /// failed".
    pub block_reason: Vec<Option<Reason>>,
    pub outputs: Outputs,
    /// The interrupted run this one resumes, if any.
    pub resume: Resume,
    pub stop: Stop,
    /// A write of the run's record failed (the journal, a file of the run directory), and
    /// why: nothing more may start.
    pub unrecorded: Option<String>,
    /// The first hold of this stretch: once a step is held at the window's end, no other outage
    /// step starts (the run pauses at one safe point, not step by step).
    pub hold: Option<(NodeIndex, Hold)>,
    /// Manual operations the operator confirmed on the terminal, per action (the first `n` of
    /// the action's manual operations).
    pub confirmed: BTreeMap<NodeIndex, usize>,
    /// What queued and running jobs share with the loop.
    pub shared: Shared,
}

/// Handed to every job.
#[derive(Clone)]
pub(super) struct Shared {
    pub masker: Arc<Masker>,
    /// Set with `unrecorded`, so a job waiting for a slot does not start.
    pub halt: Arc<AtomicBool>,
    /// Set when fail_fast stops the run.
    pub stop: Arc<AtomicBool>,
    pub progress: tokio::sync::mpsc::UnboundedSender<Progress>,
}

impl<'a> Run<'a> {
    pub fn new(
        plan: &'a Arc<Plan>,
        opts: &'a Options,
        registry: &'a Registry,
        progress: tokio::sync::mpsc::UnboundedSender<Progress>,
    ) -> Self {
        let n = plan.node_count();
        let mut run = Self {
            plan,
            opts,
            registry,
            status: vec![None; n],
            started_at: vec![None; n],
            phase_failed: vec![false; plan.phases.len()],
            host_failed_in: BTreeMap::new(),
            block_reason: vec![None; n],
            outputs: Outputs::default(),
            resume: opts.resume.clone().unwrap_or_default(),
            stop: Stop::Going,
            unrecorded: None,
            hold: None,
            confirmed: BTreeMap::new(),
            shared: Shared {
                masker: Arc::new(Masker::new(opts.secrets.values().cloned())),
                halt: Arc::new(AtomicBool::new(false)),
                stop: Arc::new(AtomicBool::new(false)),
                progress,
            },
        };
        run.restore_outputs();
        run
    }

    /// Outputs registered before the interruption, so later templates see them.
    fn restore_outputs(&mut self) {
        for (register, host, value) in std::mem::take(&mut self.resume.outputs) {
            let host = self.plan.hosts.iter().position(|h| h.name == host);
            if let Ok(output) = serde_json::from_value::<super::outputs::StoredOutput>(value) {
                self.outputs
                    .insert_value(&register, host, output.into_value());
            }
        }
    }

    pub fn cancelled(&self) -> bool {
        self.stop == Stop::Interrupted
    }

    /// Raises the stop level (never lowers it).
    pub fn stop(&mut self, stop: Stop) {
        self.stop = self.stop.max(stop);
    }

    pub fn deps_ok(&self, node: NodeIndex) -> bool {
        self.plan.dependencies(node).iter().all(|(d, kind)| {
            *kind == EdgeKind::Completion || self.status[d.index()].is_some_and(Status::is_success)
        })
    }

    /// Hosts with a failed main action in `phase` so far.
    pub fn failed_hosts(&self, phase: usize) -> usize {
        let mut hosts = BTreeSet::new();
        for (node, n) in self.plan.nodes() {
            if let PlanNode::Action(a) = n {
                let step = &self.plan.steps[a.step];
                if step.phase == phase
                    && step.kind == StepKind::Main
                    && self.status[node.index()].is_some_and(Status::is_failure)
                {
                    hosts.insert(a.host);
                }
            }
        }
        hosts.len()
    }

    /// Why `node` cannot run: the reason a blocking dependency gave, or the general one.
    pub fn blocked_because(&self, node: NodeIndex) -> Reason {
        for (dep, kind) in self.plan.dependencies(node) {
            if kind == EdgeKind::Success
                && !self.status[dep.index()].is_some_and(Status::is_success)
                && let Some(reason) = &self.block_reason[dep.index()]
            {
                return reason.clone();
            }
        }
        Reason::DependencyFailed
    }
}
