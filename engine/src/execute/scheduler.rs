//! The scheduler loop.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;
use runbook_modules::{Operation, Registry};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::ast::StepKind;
use crate::event::{Event, HostSummary, RunStatus, Sink, Status};

use crate::inventory::HostId;
use crate::journal::{Entry, RunState};
use crate::plan::{Action, EdgeKind, Plan, PlanNode, StepInfo};
use crate::transport::Runner;
use crate::window::{Decision, Hold, StepTiming, gate};

use super::action::{Finished, Job, Progress, commands};
use super::mask::Masker;
use super::options::{ManualPrompt, Options};
use super::outputs::{Output, Outputs};

/// How a run went.
#[derive(Debug)]
pub struct Report {
    pub run_id: String,
    pub status: RunStatus,
    /// Every action's final status, in plan order.
    pub actions: Vec<(String, Status)>,
    pub hosts: Vec<HostSummary>,
    pub duration: Duration,
    /// The first write of the run's record that failed, when one did (the run is then
    /// [`RunStatus::Unrecorded`]).
    pub unrecorded: Option<String>,
}

impl Report {
    pub fn status_of(&self, action: &str) -> Option<Status> {
        self.actions
            .iter()
            .find(|(id, _)| id == action)
            .map(|(_, s)| *s)
    }
}

struct State<'a> {
    plan: &'a Arc<Plan>,
    opts: &'a Options,
    status: Vec<Option<Status>>,
    remaining: Vec<usize>,
    ready: BinaryHeap<Reverse<(usize, usize)>>,
    phase_failed: Vec<bool>,
    phase_started: Vec<bool>,
    stopped: bool,
    /// The operator interrupted the run.
    cancelled: bool,
    /// A write of the run's record failed (the journal, a file of the run directory), and
    /// why: nothing more may start.
    halt: Option<String>,
    /// Shared with queued jobs: set with `halt`, so a job waiting for a slot does not start.
    halt_flag: Arc<std::sync::atomic::AtomicBool>,
    /// Shared with queued jobs: set when fail_fast stops the run.
    stop_flag: Arc<std::sync::atomic::AtomicBool>,
    /// Transitions not yet written (see [`State::flush`]).
    journal_buffer: Vec<Entry>,
    /// Hosts with a failed main action, and the first phase where that happened.
    host_failed_in: BTreeMap<HostId, usize>,
    outputs: Outputs,
    masker: Arc<Masker>,
    started_at: Vec<Option<Instant>>,
    durations: Vec<Duration>,
    /// The interrupted run this one resumes, if any.
    resume: super::options::Resume,
    /// Why a gate blocked what follows it (a spent failure budget), when it says more than
    /// "a dependency failed".
    block_reason: Vec<Option<String>>,
    /// Outage actions the window did not let start, in the order they were held.
    held: Vec<NodeIndex>,
    /// The first hold of this stretch: once a step is held at the window's end, no other outage
    /// step starts (the run pauses at one safe point, not step by step).
    hold: Option<(NodeIndex, Hold)>,
}

/// Runs the plan. Never panics on a host's behaviour: every outcome becomes a [`Status`].
pub async fn execute<R: Runner + 'static>(
    plan: Arc<Plan>,
    registry: &Registry,
    runner: Arc<R>,
    opts: &Options,
    sink: &mut dyn Sink,
) -> Report {
    let begun = Instant::now();
    let n = plan.node_count();
    let masker = Arc::new(Masker::new(opts.secrets.values().cloned()));
    let mut st = State {
        plan: &plan,
        opts,
        status: vec![None; n],
        remaining: vec![0; n],
        ready: BinaryHeap::new(),
        phase_failed: vec![false; plan.phases.len()],
        phase_started: vec![false; plan.phases.len()],
        stopped: false,
        cancelled: false,
        halt: None,
        halt_flag: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        stop_flag: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        journal_buffer: Vec::new(),
        host_failed_in: BTreeMap::new(),
        outputs: Outputs::default(),
        masker: masker.clone(),
        started_at: vec![None; n],
        durations: vec![Duration::ZERO; n],
        block_reason: vec![None; n],
        held: Vec::new(),
        hold: None,
        resume: opts.resume.clone().unwrap_or_default(),
    };
    st.restore_outputs();
    for (node, _) in plan.nodes() {
        st.remaining[node.index()] = plan.dependencies(node).len();
        if st.remaining[node.index()] == 0 {
            st.ready
                .push(Reverse((plan.order_position(node), node.index())));
        }
    }
    sink.emit(&Event::RunStarted {
        run_id: opts.run_id.clone(),
        runbook: plan.runbook.name.clone(),
        version: plan.runbook.version.clone(),
        actions: plan.action_count(),
        hosts: plan.hosts.len(),
        estimate_secs: plan.critical_path_estimate().as_secs_f64(),
        dry_run: opts.dry_run,
    });

    let forks = Arc::new(Semaphore::new(opts.forks.max(1)));
    let host_limits: Vec<Arc<Semaphore>> = (0..plan.hosts.len())
        .map(|h| Arc::new(Semaphore::new(runner.max_sessions(h).max(1))))
        .collect();
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut in_flight: BTreeMap<usize, (HostId, String)> = BTreeMap::new();
    let mut cancel = opts.cancel.clone();

    let mut jobs: Vec<Job> = Vec::new();
    loop {
        while let Some(Reverse((_, index))) = st.ready.pop() {
            let node = NodeIndex::new(index);
            match plan.node(node) {
                PlanNode::Gate(gate) => {
                    let mut status = if st.deps_ok(node) {
                        Status::Ok
                    } else {
                        Status::Blocked
                    };
                    if let Some(max) = gate.max_failed_hosts {
                        let failed = st.failed_hosts(gate.phase);
                        if failed > max {
                            status = Status::Blocked;
                            st.block_reason[index] = Some(format!(
                                "the failure budget of phase `{}` is spent: {failed} host(s) failed, max_fail allows {max}",
                                plan.phases[gate.phase].name
                            ));
                        }
                    }
                    if status == Status::Blocked && st.block_reason[index].is_none() {
                        let why = st.blocked_because(node);
                        st.block_reason[index] = Some(why);
                    }
                    st.finish(node, status);
                }
                PlanNode::Action(action) => {
                    if let Some(job) = st.decide(node, action, registry, sink, &progress_tx) {
                        jobs.push(job);
                    }
                }
            }
        }
        // Group commit: every `started` (and every result that released these jobs) is on
        // disk before the first of their commands is sent. Results that release nothing wait
        // for the next such commit (or the end of the run): a result only has to be durable
        // before a dependent starts, and a crash before then is settled from the host's own
        // record of the command, never by running it again. So the results of one step on many
        // hosts share one commit with the next step's `started`.
        if !jobs.is_empty() {
            st.flush(sink);
        }
        for job in jobs.drain(..) {
            let index = job.node.index();
            if st.halt.is_some() {
                // Its `started` is not on disk: it must not be sent. Nothing is recorded for it
                // (an interrupted action keeps its earlier record, so a resume probes its host).
                let node = job.node;
                if let PlanNode::Action(action) = plan.node(node) {
                    sink.emit(&st.action_event(
                        node,
                        action,
                        Status::Blocked,
                        None,
                        Some(format!("not started: {}", super::NOT_RECORDED)),
                    ));
                }
                st.finish(node, Status::Blocked);
                continue;
            }
            in_flight.insert(index, (job.host, job.key.clone()));
            let (runner, forks, host) =
                (runner.clone(), forks.clone(), host_limits[job.host].clone());
            st.started_at[index] = Some(Instant::now());
            running.spawn(async move {
                // The host's slot first, so one busy host cannot hold every fork.
                let _host = host
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let _all = forks
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                job.run(runner.as_ref()).await
            });
        }
        if !st.ready.is_empty() {
            continue;
        }
        if running.is_empty() {
            // Only held steps are left: wait for the window (`--wait`), or pause.
            if st.wait_for_window(sink, &mut cancel).await {
                continue;
            }
            break;
        }
        sink.flush();
        let cancelled = async {
            match cancel.as_mut() {
                Some(rx) => rx.wait_for(|c| *c).await.map(|_| ()).map_err(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(progress) = progress_rx.recv() => st.progress(progress, sink),
            Some(joined) = running.join_next() => {
                let finished = joined.expect("action tasks do not panic");
                in_flight.remove(&finished.node.index());
                st.completed(finished, sink);
                // Whatever else finished meanwhile goes into the same commit.
                while let Some(joined) = running.try_join_next() {
                    let finished = joined.expect("action tasks do not panic");
                    in_flight.remove(&finished.node.index());
                    st.completed(finished, sink);
                }
            }
            Ok(()) = cancelled, if !st.cancelled => {
                // Stop everything still running, on its host; the jobs then end on their own.
                st.cancelled = true;
                st.stopped = true;
                for (host, key) in in_flight.values() {
                    runner.cancel(*host, key.clone()).await;
                }
            }
        }
    }
    st.flush(sink);
    // Drain progress events of the last actions.
    while let Ok(progress) = progress_rx.try_recv() {
        st.progress(progress, sink);
    }
    st.report(sink, begun.elapsed())
}

impl State<'_> {
    /// With `--wait` and a window to wait for, sleeps until it opens and puts the held steps
    /// back in the queue (`true`). Otherwise leaves them held, and the run pauses (`false`).
    async fn wait_for_window(
        &mut self,
        sink: &mut dyn Sink,
        cancel: &mut Option<tokio::sync::watch::Receiver<bool>>,
    ) -> bool {
        let Some((_, hold)) = &self.hold else {
            return false;
        };
        let Some(until) = hold
            .next_window
            .filter(|_| self.opts.wait && !self.cancelled)
        else {
            return false;
        };
        sink.emit(&Event::WindowWaiting {
            message: hold.message.clone(),
            until: until.to_string(),
        });
        sink.flush();
        let cancelled = async {
            match cancel.as_mut() {
                Some(rx) => rx.wait_for(|c| *c).await.map(|_| ()).map_err(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.opts.clock.sleep_until(until) => {}
            Ok(()) = cancelled => {
                self.cancelled = true;
                self.stopped = true;
            }
        }
        self.hold = None;
        for node in std::mem::take(&mut self.held) {
            self.ready
                .push(Reverse((self.plan.order_position(node), node.index())));
        }
        true
    }

    /// Whether the outage window holds this action back now.
    fn window_holds(&mut self, node: NodeIndex, step: &StepInfo) -> bool {
        let Some(window) = &self.opts.window else {
            return false;
        };
        if !self.plan.phases[step.phase].outage || self.opts.dry_run {
            return false;
        }
        if self.hold.is_some() {
            self.held.push(node);
            return true;
        }
        let timing = StepTiming {
            estimate: step.estimate,
            remaining: self.remaining_outage(node),
            irreversible: step.irreversible,
        };
        match gate(self.opts.clock.now(), window, timing, self.opts.force) {
            Decision::Go => false,
            Decision::Hold(hold) => {
                self.hold = Some((node, hold));
                self.held.push(node);
                true
            }
        }
    }

    /// The outage time that must still fit when `node` starts: the longest remaining path from
    /// it, or from anything already running or ready, whichever is longer.
    fn remaining_outage(&self, node: NodeIndex) -> Duration {
        let frontier = self
            .started_at
            .iter()
            .enumerate()
            .filter(|(i, s)| s.is_some() && self.status[*i].is_none())
            .map(|(i, _)| self.plan.remaining_outage(NodeIndex::new(i)));
        frontier
            .chain(std::iter::once(self.plan.remaining_outage(node)))
            .max()
            .unwrap_or_default()
    }

    fn deps_ok(&self, node: NodeIndex) -> bool {
        self.plan.dependencies(node).iter().all(|(d, kind)| {
            *kind == EdgeKind::Completion || self.status[d.index()].is_some_and(Status::is_success)
        })
    }

    fn record_started(&mut self, node: NodeIndex, action: &Action) {
        if self.opts.journal.is_none() {
            return;
        }
        let step = &self.plan.steps[action.step];
        self.journal_buffer.push(Entry::Started {
            action: self.plan.action_id(action),
            step: step.id.clone(),
            host: self.plan.host_name(action.host).to_owned(),
            definition_fp: self.plan.definition_fingerprint(node).to_owned(),
            attempt: 1,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn record_finished(
        &mut self,
        node: NodeIndex,
        action: &Action,
        status: Status,
        rc: Option<i32>,
        duration: Duration,
        message: Option<&str>,
        output: &Output,
    ) {
        // Once the record failed, what did not start is not recorded as blocked: it has no
        // record to keep, and the fewer writes on a failing disk the likelier the results are
        // to reach it.
        if self.opts.journal.is_none() || (self.halt.is_some() && status == Status::Blocked) {
            return;
        }
        let step = &self.plan.steps[action.step];
        self.journal_buffer.push(Entry::Finished {
            action: self.plan.action_id(action),
            step: step.id.clone(),
            host: self.plan.host_name(action.host).to_owned(),
            definition_fp: self.plan.definition_fingerprint(node).to_owned(),
            status: status.as_str().to_owned(),
            rc,
            duration,
            message: message.map(|m| self.masker.mask(m)),
            output: step
                .register
                .as_ref()
                .map(|r| (r.clone(), serde_json::to_string(output).unwrap_or_default())),
        });
    }

    /// Writes the buffered transitions in one transaction. Called before anything new is sent
    /// to a host, so every `started` is durable before its command, and every result before a
    /// dependent starts; and once more at the end of the run.
    ///
    /// A failure halts the run: the jobs this commit was for are not sent (their `started` is
    /// not on disk), nothing more starts. The results of the failed commit stay buffered for
    /// one more try at the end; if that fails too they are lost, and the actions stay
    /// `started` in the journal: the next apply settles them from the hosts' records, which
    /// are kept because the run did not succeed.
    fn flush(&mut self, sink: &mut dyn Sink) {
        let Some(journal) = &self.opts.journal else {
            return;
        };
        if self.journal_buffer.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.journal_buffer);
        let result = journal
            .lock()
            .expect("the journal lock is never poisoned")
            .write(&self.opts.run_id, &entries);
        if let Err(e) = result {
            self.journal_buffer = entries
                .into_iter()
                .filter(|e| matches!(e, Entry::Finished { .. }))
                .collect();
            self.halt(&format!("the journal could not record the run: {e}"), sink);
        }
    }

    /// Records how the run ended, before `run_finished` says so. A run is `succeeded` only once
    /// the journal has it: until then the CLI keeps the hosts' records, and the run stays
    /// `running` in the journal, which the next apply resumes.
    fn record_end(&mut self, status: RunStatus, sink: &mut dyn Sink) -> RunStatus {
        let Some(journal) = &self.opts.journal else {
            return status;
        };
        let state = match status {
            RunStatus::Succeeded => RunState::Succeeded,
            RunStatus::Failed => RunState::Failed,
            RunStatus::AwaitingApproval => RunState::Waiting,
            RunStatus::Paused => RunState::Paused,
            RunStatus::Interrupted | RunStatus::Unrecorded => RunState::Interrupted,
        };
        let result = journal
            .lock()
            .expect("the journal lock is never poisoned")
            .set_state(&self.opts.run_id, state);
        match result {
            Ok(()) => status,
            Err(e) => {
                self.halt(
                    &format!("the journal could not record how the run ended: {e}"),
                    sink,
                );
                RunStatus::Unrecorded
            }
        }
    }

    /// A write of the run's record failed: nothing more starts (see [`State::flush`]).
    fn halt(&mut self, message: &str, sink: &mut dyn Sink) {
        self.halt_flag
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if self.halt.is_none() {
            let message = self.masker.mask(message);
            sink.emit(&Event::RecordFailed {
                message: message.clone(),
            });
            self.halt = Some(message);
        }
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

    /// Hosts with a failed main action in `phase` so far.
    fn failed_hosts(&self, phase: usize) -> usize {
        let mut hosts = std::collections::BTreeSet::new();
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
    fn blocked_because(&self, node: NodeIndex) -> String {
        for (dep, kind) in self.plan.dependencies(node) {
            if kind == EdgeKind::Success
                && !self.status[dep.index()].is_some_and(Status::is_success)
                && let Some(reason) = &self.block_reason[dep.index()]
            {
                return reason.clone();
            }
        }
        "a step it depends on did not succeed".to_owned()
    }

    fn finish(&mut self, node: NodeIndex, status: Status) {
        self.status[node.index()] = Some(status);
        if let PlanNode::Action(a) = self.plan.node(node) {
            let step = &self.plan.steps[a.step];
            if status.is_failure() && step.kind == StepKind::Main {
                self.phase_failed[step.phase] = true;
                if let Some(h) = a.host {
                    self.host_failed_in.entry(h).or_insert(step.phase);
                }
            }
            if status.is_failure() && self.opts.fail_fast {
                self.stopped = true;
                self.stop_flag
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        for next in self.plan.dependents(node) {
            self.remaining[next.index()] -= 1;
            if self.remaining[next.index()] == 0 {
                self.ready
                    .push(Reverse((self.plan.order_position(next), next.index())));
            }
        }
    }

    fn action_event(
        &self,
        node: NodeIndex,
        action: &Action,
        status: Status,
        rc: Option<i32>,
        message: Option<String>,
    ) -> Event {
        let step = &self.plan.steps[action.step];
        Event::ActionFinished {
            action: self.plan.action_id(action),
            step: step.id.clone(),
            host: self.plan.host_name(action.host).to_owned(),
            status,
            rc,
            duration_secs: self.durations[node.index()].as_secs_f64(),
            message: message.map(|m| self.masker.mask(&m)),
        }
    }

    /// Decides what to do with a ready action: settle it here, or hand back a job to run.
    fn decide(
        &mut self,
        node: NodeIndex,
        action: &Action,
        registry: &Registry,
        sink: &mut dyn Sink,
        progress: &tokio::sync::mpsc::UnboundedSender<Progress>,
    ) -> Option<Job> {
        let plan = self.plan;
        let step = &plan.steps[action.step];
        if !self.phase_started[step.phase] {
            self.phase_started[step.phase] = true;
            let phase = &plan.phases[step.phase];
            sink.emit(&Event::PhaseStarted {
                phase: phase.name.clone(),
                outage: phase.outage,
            });
        }
        let settle =
            |st: &mut Self, sink: &mut dyn Sink, status: Status, message: Option<String>| {
                let output = Output::new(status, None, String::new(), String::new());
                // An interrupted action blocked or failed here was not looked at on its host:
                // it keeps its record (`started`, `unreachable`...), so the next resume probes
                // the host rather than read a `blocked` or `failed` written now as "run it".
                let unsettled = st.resume.unknown.contains(&plan.action_id(action))
                    && matches!(status, Status::Blocked | Status::Failed);
                if !unsettled {
                    st.record_finished(
                        node,
                        action,
                        status,
                        None,
                        Duration::ZERO,
                        message.as_deref(),
                        &output,
                    );
                }
                sink.emit(&st.action_event(node, action, status, None, message));
                if let Some(name) = &step.register {
                    st.outputs.insert(name, action.host, &output);
                }
                st.finish(node, status);
                None
            };
        // Resuming: what finished before the interruption stays finished.
        let id = plan.action_id(action);
        if let Some(&status) = self.resume.done.get(&id) {
            sink.emit(&Event::ActionResumed {
                action: id,
                status,
                how: "recorded before the interruption".into(),
            });
            self.finish(node, status);
            return None;
        }
        match self.resume.decisions.get(&id).copied() {
            Some(true) if self.resume.unknown.remove(&id) => {
                sink.emit(&Event::ActionResumed {
                    action: id,
                    status: Status::Ok,
                    how: "an operator decided it was done".into(),
                });
                return settle(
                    self,
                    sink,
                    Status::Ok,
                    Some("resolved by an operator: done".into()),
                );
            }
            Some(false) => {
                self.resume.unknown.remove(&id);
            }
            _ => {}
        }
        if self.halt.is_some() {
            return settle(
                self,
                sink,
                Status::Blocked,
                Some(format!("not started: {}", super::NOT_RECORDED)),
            );
        }
        if self.cancelled {
            return settle(
                self,
                sink,
                Status::Blocked,
                Some("the run was interrupted (Ctrl-C)".into()),
            );
        }
        // fail_fast stops the main steps; on_failure and always steps still run.
        if self.stopped && step.kind == StepKind::Main {
            return settle(
                self,
                sink,
                Status::Blocked,
                Some("the run stopped after a failure (fail_fast)".into()),
            );
        }
        // A host that failed in an earlier phase (within a failure budget) is out of the run.
        if let Some(&phase) = action.host.and_then(|h| self.host_failed_in.get(&h))
            && phase < step.phase
            && step.kind == StepKind::Main
        {
            return settle(
                self,
                sink,
                Status::Blocked,
                Some(format!(
                    "its host failed in phase `{}`",
                    plan.phases[phase].name
                )),
            );
        }
        if !self.deps_ok(node) {
            let why = self.blocked_because(node);
            return settle(self, sink, Status::Blocked, Some(why));
        }
        if let (Some(limit), Some(host)) = (&self.opts.limit, action.host)
            && !limit.contains(&host)
        {
            return settle(self, sink, Status::Skipped, Some("outside --limit".into()));
        }
        if step.kind == StepKind::OnFailure && !self.phase_failed[step.phase] {
            return settle(
                self,
                sink,
                Status::Skipped,
                Some("nothing failed in its phase".into()),
            );
        }
        let visible = self.outputs.visible(plan, action.host);
        if let Some(when) = &step.when {
            match plan.eval(when, action.host, &visible) {
                Ok(v) if !v.is_true() => {
                    return settle(
                        self,
                        sink,
                        Status::Skipped,
                        Some(format!("`when: {when}` is false")),
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    return settle(
                        self,
                        sink,
                        Status::Failed,
                        Some(format!("`when: {when}`: {}", e.message)),
                    );
                }
            }
        }
        // The outage window: a step that may not start now is held (not settled); the run
        // waits or pauses once nothing else can go on. Settling an interrupted action (the
        // host's record, a read-only check) is not starting it, so it is never held.
        if !self.resume.unknown.contains(&id) && self.window_holds(node, step) {
            return None;
        }
        let (rendered, problems) = plan.renderer(registry).render(step, action.host, &visible);
        if let Some(p) = problems.first() {
            return settle(self, sink, Status::Failed, Some(p.message.clone()));
        }
        // Controller-side operations first: manual steps and assertions.
        for op in &rendered.operations {
            match op {
                Operation::Manual { instructions } => {
                    if self.opts.approvals.contains(&step.id) {
                        continue;
                    }
                    if self.opts.dry_run {
                        return settle(
                            self,
                            sink,
                            Status::WouldRun,
                            Some("a manual step: apply would ask the operator".into()),
                        );
                    }
                    let prompt = ManualPrompt {
                        step: step.id.clone(),
                        host: plan.host_name(action.host).to_owned(),
                        instructions: instructions.clone(),
                    };
                    match self.opts.approver.as_ref().and_then(|ask| ask(&prompt)) {
                        Some(true) => {}
                        Some(false) => {
                            return settle(
                                self,
                                sink,
                                Status::Failed,
                                Some("declined by the operator".into()),
                            );
                        }
                        None => {
                            sink.emit(&Event::AwaitingApproval {
                                action: plan.action_id(action),
                                step: step.id.clone(),
                                instructions: instructions.clone(),
                            });
                            return settle(
                                self,
                                sink,
                                Status::AwaitingApproval,
                                Some(format!(
                                    "run `runbook approve {} {} --by NAME --reason TEXT{}`",
                                    self.opts.run_id, step.id, self.opts.state_arg
                                )),
                            );
                        }
                    }
                }
                Operation::Assert {
                    conditions,
                    message,
                } => {
                    for condition in conditions {
                        match plan.eval(condition, action.host, &visible) {
                            Ok(v) if v.is_true() => {}
                            Ok(_) => {
                                let why = message
                                    .clone()
                                    .unwrap_or_else(|| format!("assertion `{condition}` is false"));
                                return settle(self, sink, Status::Failed, Some(why));
                            }
                            Err(e) => {
                                return settle(
                                    self,
                                    sink,
                                    Status::Failed,
                                    Some(format!("assertion `{condition}`: {}", e.message)),
                                );
                            }
                        }
                    }
                }
                Operation::Remote(_) | Operation::Transfer(_) => {}
            }
        }
        let mut cmds = commands(&rendered.operations);
        let mut copies = match super::transfer::planned(plan, &rendered.operations) {
            Ok(t) => t,
            Err(e) => return settle(self, sink, Status::Failed, Some(e)),
        };
        let check_only = self.opts.dry_run;
        if check_only && !(cmds.is_empty() && copies.is_empty()) {
            let (checks, _) = plan
                .renderer(registry)
                .render_checks(step, action.host, &visible);
            match checks {
                Some(ops) => {
                    cmds = commands(&ops);
                    copies = super::transfer::planned(plan, &ops).unwrap_or_default();
                }
                None => {
                    return settle(
                        self,
                        sink,
                        Status::WouldRun,
                        Some("no read-only check; apply would run it".into()),
                    );
                }
            }
        }
        let Some(host) = action
            .host
            .filter(|_| !(cmds.is_empty() && copies.is_empty()))
        else {
            return settle(self, sink, Status::Ok, None);
        };
        let env = match plan.renderer(registry).render_env(
            step,
            action.host,
            &visible,
            Some(&self.opts.secrets),
        ) {
            Ok(env) => env,
            Err(p) => return settle(self, sink, Status::Failed, Some(p.message)),
        };
        let resolve = if self.resume.unknown.contains(&id) {
            let (checks, _) = plan
                .renderer(registry)
                .render_checks(step, action.host, &visible);
            Some(super::action::Resolve {
                check_transfers: checks
                    .as_deref()
                    .and_then(|ops| super::transfer::planned(plan, ops).ok())
                    .unwrap_or_default(),
                checks: checks.map(|ops| commands(&ops)),
                commands: cmds.len(),
                state_arg: self.opts.state_arg.clone(),
            })
        } else {
            self.record_started(node, action);
            None
        };
        Some(Job {
            node,
            plan: plan.clone(),
            step: action.step,
            host,
            key: format!("{}/{}", self.opts.run_id, plan.action_id(action)),
            generation: self.opts.generation,
            commands: cmds,
            transfers: copies,
            env,
            check_only,
            visible,
            masker: self.masker.clone(),
            resolve,
            cancel: self.opts.cancel.clone(),
            stop: self
                .opts
                .fail_fast
                .then(|| (self.stop_flag.clone(), step.kind == StepKind::Main)),
            halt: self.halt_flag.clone(),
            progress: progress.clone(),
        })
    }

    fn progress(&mut self, progress: Progress, sink: &mut dyn Sink) {
        match progress {
            Progress::Started { node, attempt } => {
                if let PlanNode::Action(a) = self.plan.node(node) {
                    sink.emit(&Event::ActionStarted {
                        action: self.plan.action_id(a),
                        step: self.plan.steps[a.step].id.clone(),
                        host: self.plan.host_name(a.host).to_owned(),
                        attempt,
                    });
                }
            }
            Progress::Retrying {
                node,
                attempt,
                delay,
                reason,
            } => {
                if let PlanNode::Action(a) = self.plan.node(node) {
                    sink.emit(&Event::ActionRetrying {
                        action: self.plan.action_id(a),
                        attempt,
                        delay_secs: delay.as_secs_f64(),
                        reason: self.masker.mask(&reason),
                    });
                }
            }
        }
    }

    fn completed(&mut self, mut f: Finished, sink: &mut dyn Sink) {
        if self.cancelled && f.status.is_failure() {
            // Stopped is only said when the command's own end came back from the host.
            let how = if f.status == Status::Unreachable {
                "interrupted (Ctrl-C); whether it stopped on its host is unknown"
            } else {
                "interrupted (Ctrl-C) and stopped on its host"
            };
            f.message = Some(format!("{how}; {}", f.message.unwrap_or_default()));
        }
        let PlanNode::Action(action) = self.plan.node(f.node) else {
            return;
        };
        self.durations[f.node.index()] = f.duration;
        let step = &self.plan.steps[action.step];
        let id = self.plan.action_id(action);
        if let Some(how) = f.resolved_by.take() {
            self.resume.unknown.remove(&id);
            if f.rerun {
                // It did not take effect: run it now, as if for the first time.
                sink.emit(&Event::ActionResumed {
                    action: id,
                    status: Status::Blocked,
                    how: format!("{how}; running it"),
                });
                self.ready
                    .push(Reverse((self.plan.order_position(f.node), f.node.index())));
                return;
            }
            sink.emit(&Event::ActionResumed {
                action: id.clone(),
                status: f.status,
                how,
            });
        }
        let dir = self
            .opts
            .run_dir
            .join("actions")
            .join(self.plan.action_id(action));
        // The action's files are part of the run's record: one that cannot be written stops
        // the run like a failed journal write. The result itself still goes to the journal,
        // so the resume neither loses it nor runs the action again.
        let written = fs_err::create_dir_all(&dir)
            .and_then(|()| fs_err::write(dir.join("stdout"), &f.stdout))
            .and_then(|()| fs_err::write(dir.join("stderr"), &f.stderr))
            .and_then(|()| {
                let result = serde_json::json!({
                    "status": f.status, "rc": f.rc, "message": f.message, "duration_secs": f.duration.as_secs_f64(),
                });
                fs_err::write(dir.join("result.json"), result.to_string())
            });
        if let Err(e) = written {
            self.halt(&format!("the output of {id} could not be kept: {e}"), sink);
        }
        for (name, bytes) in &f.artifacts {
            let path = dir.join("artifacts").join(name);
            let kept = fs_err::create_dir_all(dir.join("artifacts"))
                .and_then(|()| fs_err::write(&path, bytes));
            match kept {
                Ok(()) => sink.emit(&Event::ArtifactKept {
                    action: self.plan.action_id(action),
                    name: name.clone(),
                    path: path.display().to_string(),
                    bytes: bytes.len() as u64,
                }),
                Err(e) => self.halt(
                    &format!("the artifact `{name}` of {id} could not be kept: {e}"),
                    sink,
                ),
            }
        }
        if let Some(name) = &step.register {
            self.outputs.insert(name, action.host, &f.output);
        }
        // Durable before any dependent starts.
        self.record_finished(
            f.node,
            action,
            f.status,
            f.rc,
            f.duration,
            f.message.as_deref(),
            &f.output,
        );
        sink.emit(&self.action_event(f.node, action, f.status, f.rc, f.message));
        self.finish(f.node, f.status);
    }

    fn report(&mut self, sink: &mut dyn Sink, duration: Duration) -> Report {
        let mut hosts: BTreeMap<String, HostSummary> = BTreeMap::new();
        let mut actions = Vec::new();
        for (node, n) in self.plan.nodes() {
            let PlanNode::Action(a) = n else { continue };
            let Some(status) = self.status[node.index()] else {
                // Held by the window, or waiting behind a held step: pending, not blocked.
                if self.hold.is_some() {
                    continue;
                }
                actions.push((self.plan.action_id(a), Status::Blocked));
                continue;
            };
            actions.push((self.plan.action_id(a), status));
            let name = self.plan.host_name(a.host).to_owned();
            let h = hosts.entry(name.clone()).or_insert_with(|| HostSummary {
                host: name,
                ..HostSummary::default()
            });
            h.duration_secs += self.durations[node.index()].as_secs_f64();
            *match status {
                Status::Ok => &mut h.ok,
                Status::Changed => &mut h.changed,
                Status::Failed => &mut h.failed,
                Status::TimedOut => &mut h.timed_out,
                Status::Unreachable => &mut h.unreachable,
                Status::Skipped => &mut h.skipped,
                Status::Blocked => &mut h.blocked,
                Status::AwaitingApproval => &mut h.awaiting_approval,
                Status::WouldChange => &mut h.would_change,
                Status::WouldRun => &mut h.would_run,
                Status::Unknown => &mut h.unknown,
            } += 1;
        }
        let statuses: Vec<Status> = actions.iter().map(|(_, s)| *s).collect();
        // A run whose record failed did not complete, whatever its actions did: what they did
        // may not be on disk, so it must neither look done nor be cleaned up on its hosts.
        let status = if self.halt.is_some() {
            RunStatus::Unrecorded
        } else if self.cancelled {
            RunStatus::Interrupted
        } else if statuses.iter().any(|s| s.is_failure()) {
            RunStatus::Failed
        } else if let Some((node, hold)) = self.hold.as_ref().filter(|_| !self.held.is_empty()) {
            let action = match self.plan.node(*node) {
                PlanNode::Action(a) => self.plan.action_id(a),
                PlanNode::Gate(_) => String::new(),
            };
            // Every action not started: the held ones and those waiting behind them.
            let not_started = self
                .plan
                .nodes()
                .filter(|(node, n)| {
                    matches!(n, PlanNode::Action(_)) && self.status[node.index()].is_none()
                })
                .count();
            sink.emit(&Event::RunPaused {
                action,
                message: hold.message.clone(),
                next_window: hold.next_window.map(|t| t.to_string()),
                held: not_started,
            });
            RunStatus::Paused
        } else if statuses.contains(&Status::AwaitingApproval)
            || statuses.contains(&Status::Unknown)
        {
            RunStatus::AwaitingApproval
        } else {
            RunStatus::Succeeded
        };
        let status = self.record_end(status, sink);
        let hosts: Vec<HostSummary> = hosts.into_values().collect();
        sink.emit(&Event::RunFinished {
            run_id: self.opts.run_id.clone(),
            status,
            duration_secs: duration.as_secs_f64(),
            hosts: hosts.clone(),
            run_dir: self.opts.run_dir.display().to_string(),
        });
        sink.flush();
        Report {
            run_id: self.opts.run_id.clone(),
            status,
            actions,
            hosts,
            duration,
            unrecorded: self.halt.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The scheduler with a fake transport: ordering and failure policy without SSH.

    use std::sync::Mutex;

    use super::*;
    use crate::event::Recorder;
    use crate::transport::{Exec, ExecResult, TransportError};

    /// Answers by script text: `fail` exits 1, `drop` is an unreachable host, `count` prints the
    /// number of times it ran; everything else exits 0. Records what ran, in order.
    #[derive(Default)]
    struct Fake {
        ran: Mutex<Vec<String>>,
    }

    impl Runner for Fake {
        async fn run(&self, host: HostId, exec: Exec) -> Result<ExecResult, TransportError> {
            let n = {
                let mut ran = self.ran.lock().expect("not poisoned");
                ran.push(format!("{}@{host}", exec.script));
                ran.iter().filter(|r| r.starts_with(&exec.script)).count()
            };
            match exec.script.as_str() {
                "drop" => Err(TransportError::Unreachable {
                    host: host.to_string(),
                    message: "gone".into(),
                }),
                "fail" => Ok(ExecResult {
                    code: Some(1),
                    stdout: Vec::new(),
                    stderr: b"boom\n".to_vec(),
                }),
                "count" => Ok(ExecResult {
                    code: Some(0),
                    stdout: format!("{n}\n").into_bytes(),
                    stderr: Vec::new(),
                }),
                _ => Ok(ExecResult {
                    code: Some(0),
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                }),
            }
        }
    }

    fn plan(steps: &str) -> Arc<Plan> {
        let text = format!(
            "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: t, version: 1.0.0}}\n{steps}"
        );
        let parsed = crate::parse::parse_runbook("t.yaml", text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let runbook = parsed.runbook.expect("parses");
        let inventory = crate::inventory::Inventory::parse(
            "i.yaml",
            "kind: Inventory\nhosts: {a: {}, b: {}}\n".into(),
        )
        .expect("inventory");
        let registry = Registry::builtin();
        let overrides = crate::compile::Overrides::default();
        let input = crate::compile::Input {
            runbook: &runbook,
            inventory: &inventory,
            registry: &registry,
            overrides: &overrides,
            history: None,
        };
        Arc::new(crate::compile::compile(input).expect("compiles"))
    }

    fn run(plan: &Arc<Plan>, fake: &Arc<Fake>) -> Report {
        let dir = tempfile::tempdir().expect("tempdir");
        run_with(plan, fake, &Options::new("r", dir.path())).0
    }

    #[test]
    fn a_failure_blocks_its_dependents_and_independent_lanes_go_on() {
        let plan = plan(
            "phases:\n  - name: p\n    order: per_host\n    steps:\n      - {id: one, module: shell, on: all, with: {cmd: \"{{ 'fail' if host.name == 'a' else 'ok' }}\"}}\n      - {id: two, module: shell, on: all, with: {cmd: next}}\n",
        );
        let fake = Arc::new(Fake::default());
        let report = run(&plan, &fake);
        assert_eq!(report.status, RunStatus::Failed);
        assert_eq!(report.status_of("one@a"), Some(Status::Failed));
        assert_eq!(report.status_of("two@a"), Some(Status::Blocked));
        assert_eq!(report.status_of("two@b"), Some(Status::Changed));
        assert!(
            !fake
                .ran
                .lock()
                .expect("lock")
                .contains(&"next@0".to_owned())
        );
    }

    #[test]
    fn until_retries_with_the_fresh_output_and_unreachable_is_never_retried() {
        let plan = plan(
            "steps:\n  - {id: poll, module: shell, on: a, register: c, retries: 5, delay: 0s, until: \"c.stdout | int >= 3\", with: {cmd: count}}\n  - {id: gone, module: shell, on: b, retries: 5, delay: 0s, with: {cmd: drop}}\n",
        );
        let fake = Arc::new(Fake::default());
        let report = run(&plan, &fake);
        assert_eq!(report.status_of("poll@a"), Some(Status::Changed));
        let ran = fake.ran.lock().expect("lock").clone();
        assert_eq!(
            ran.iter().filter(|r| r.starts_with("count")).count(),
            3,
            "stops as soon as `until` holds"
        );
        assert_eq!(report.status_of("gone@b"), Some(Status::Unreachable));
        assert_eq!(
            ran.iter().filter(|r| r.starts_with("drop")).count(),
            1,
            "an unreachable host is not retried"
        );
    }

    /// A journal in `dir` with run `r` begun, for the executor to record into.
    fn journal(dir: &std::path::Path) -> Arc<Mutex<crate::journal::Journal>> {
        let j = crate::journal::Journal::open(dir).expect("open the journal");
        j.create_run(&crate::journal::RunRecord {
            id: "r".into(),
            operator: "test".into(),
            started_at: "2026-11-23T10:00:00Z".into(),
            runbook_name: "t".into(),
            runbook_version: "1.0.0".into(),
            runbook_file: "/t.yaml".into(),
            inventory_file: "/i.yaml".into(),
            runbook_fp: String::new(),
            inventory_fp: String::new(),
            params_fp: String::new(),
            params: "[]".into(),
            state: RunState::Running,
            finished_at: None,
            window: None,
        })
        .expect("create the run");
        Arc::new(Mutex::new(j))
    }

    fn run_with<R: Runner + 'static>(
        plan: &Arc<Plan>,
        runner: &Arc<R>,
        opts: &Options,
    ) -> (Report, Recorder) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut events = Recorder::default();
        let report = runtime.block_on(execute(
            plan.clone(),
            &Registry::builtin(),
            runner.clone(),
            opts,
            &mut events,
        ));
        (report, events)
    }

    fn recorded(journal: &Mutex<crate::journal::Journal>) -> BTreeMap<String, String> {
        journal
            .lock()
            .expect("lock")
            .actions("r")
            .expect("actions")
            .into_iter()
            .map(|a| (a.action, a.status))
            .collect()
    }

    const FOUR_STEPS: &str = "steps:\n  - {id: s1, module: shell, on: all, with: {cmd: one}}\n  - {id: s2, module: shell, on: all, with: {cmd: two}}\n  - {id: s3, module: shell, on: all, with: {cmd: three}}\n  - {id: s4, module: shell, on: all, with: {cmd: four}}\n";

    #[test]
    fn a_failed_journal_write_sends_nothing_more_and_the_run_is_unrecorded() {
        let plan = plan(FOUR_STEPS);
        // Commit 1: s1 started; 2: s1's results and s2 started; 3 (fails): s2's results and s3
        // started. So s3 must never reach a host.
        for (writes, ran_steps) in [(0, 0), (1, 1), (2, 2)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let journal = journal(dir.path());
            journal.lock().expect("lock").fail_writes_after(writes);
            let mut opts = Options::new("r", dir.path().join("runs/r"));
            opts.journal = Some(journal.clone());
            let fake = Arc::new(Fake::default());
            let (report, events) = run_with(&plan, &fake, &opts);

            let ran = fake.ran.lock().expect("lock").clone();
            let expected: Vec<&str> = ["one", "two", "three"][..ran_steps].to_vec();
            let mut steps: Vec<&str> = ran
                .iter()
                .map(|r| r.split('@').next().unwrap_or(""))
                .collect();
            steps.dedup();
            assert_eq!(steps, expected, "after {writes} good write(s): {ran:?}");
            assert_eq!(
                ran.len(),
                2 * ran_steps,
                "both hosts of each step, once: {ran:?}"
            );
            assert_eq!(report.status, RunStatus::Unrecorded);
            let why = report.unrecorded.clone().expect("a reason");
            assert!(why.contains("No space left on device"), "{why}");
            assert!(why.contains("journal.db"), "names the journal: {why}");
            assert_eq!(
                events
                    .0
                    .iter()
                    .filter(|e| matches!(e, Event::RecordFailed { .. }))
                    .count(),
                1
            );
            for n in ran_steps + 1..=4 {
                assert_eq!(report.status_of(&format!("s{n}@a")), Some(Status::Blocked));
            }
            // What reached a host is `started` or finished in the journal, never absent; what
            // did not is not recorded at all (a resume runs it as new). The run stays resumable.
            let rec = recorded(&journal);
            for n in 1..=4 {
                for host in ["a", "b"] {
                    let id = format!("s{n}@{host}");
                    match rec.get(&id).map(String::as_str) {
                        Some("changed") => assert!(n < ran_steps, "{id} {rec:?}"),
                        Some("started") => assert_eq!(n, ran_steps, "{id} {rec:?}"),
                        None => assert!(n > ran_steps, "{id} {rec:?}"),
                        other => panic!("{id} recorded as {other:?}"),
                    }
                }
            }
            let run = journal
                .lock()
                .expect("lock")
                .run("r")
                .expect("read")
                .expect("run");
            assert!(run.state.resumable(), "{:?}", run.state);
        }
    }

    #[test]
    fn a_run_directory_that_cannot_be_written_stops_the_run() {
        let plan = plan(FOUR_STEPS);
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = journal(dir.path());
        // A file where the run directory should be: nothing can be written under it.
        fs_err::write(dir.path().join("runs"), "").expect("write");
        let mut opts = Options::new("r", dir.path().join("runs/r"));
        opts.journal = Some(journal.clone());
        let fake = Arc::new(Fake::default());
        let (report, _) = run_with(&plan, &fake, &opts);
        assert_eq!(report.status, RunStatus::Unrecorded);
        let why = report.unrecorded.clone().expect("a reason");
        assert!(why.contains("the output of s1@"), "{why}");
        assert_eq!(fake.ran.lock().expect("lock").len(), 2, "only s1 ran");
        assert_eq!(report.status_of("s2@a"), Some(Status::Blocked));
        // The results still reached the journal: the resume neither loses nor repeats them.
        let rec = recorded(&journal);
        assert_eq!(rec.get("s1@a").map(String::as_str), Some("changed"));
        assert_eq!(rec.get("s2@a"), None);
        let run = journal
            .lock()
            .expect("lock")
            .run("r")
            .expect("read")
            .expect("run");
        assert_eq!(run.state, RunState::Interrupted);
    }

    #[test]
    fn an_interrupted_action_blocked_on_resume_keeps_its_record_for_the_next_probe() {
        // s2@a started before the interruption (its outcome unknown); on resume its
        // dependency s1@a fails, so it is blocked without its host being asked. It must stay
        // `started`: recorded `blocked`, the next resume would run it again unasked.
        let plan = plan(
            "phases:\n  - name: p\n    order: per_host\n    steps:\n      - {id: s1, module: shell, on: a, with: {cmd: fail}}\n      - {id: s2, module: shell, on: a, with: {cmd: two}}\n",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = journal(dir.path());
        journal
            .lock()
            .expect("lock")
            .action_started("r", "s2@a", "s2", "a", "fp", 1)
            .expect("started");
        let mut opts = Options::new("r", dir.path().join("runs/r"));
        opts.journal = Some(journal.clone());
        let mut resume = super::super::options::Resume::default();
        resume.unknown.insert("s2@a".into());
        opts.resume = Some(resume);
        let fake = Arc::new(Fake::default());
        let (report, _) = run_with(&plan, &fake, &opts);
        assert_eq!(report.status_of("s2@a"), Some(Status::Blocked));
        let rec = recorded(&journal);
        assert_eq!(rec.get("s1@a").map(String::as_str), Some("failed"));
        assert_eq!(rec.get("s2@a").map(String::as_str), Some("started"));
    }

    use crate::clock::Clock as _;

    /// `work N`: N minutes of work, on a manual clock.
    #[derive(Debug)]
    struct Timed {
        clock: Arc<crate::clock::ManualClock>,
        ran: Mutex<Vec<String>>,
    }

    impl Runner for Timed {
        async fn run(&self, host: HostId, exec: Exec) -> Result<ExecResult, TransportError> {
            let minutes: i64 = exec
                .script
                .strip_prefix("work ")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            self.clock.advance(jiff::SignedDuration::from_mins(minutes));
            self.ran
                .lock()
                .expect("not poisoned")
                .push(format!("{}@{host}", exec.script));
            Ok(ExecResult {
                code: Some(0),
                stdout: Vec::new(),
                stderr: Vec::new(),
            })
        }
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("a valid instant")
    }

    fn windowed(
        plan: &Arc<Plan>,
        timed: &Arc<Timed>,
        window: &str,
        configure: impl FnOnce(&mut Options),
    ) -> (Report, Recorder) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = Options::new("r", dir.path());
        opts.window = Some(crate::window::WindowSpec::parse(window).expect("valid"));
        opts.clock = timed.clock.clone();
        configure(&mut opts);
        run_with(plan, timed, &opts)
    }

    fn done(report: &Report) -> super::super::options::Resume {
        let mut resume = super::super::options::Resume::default();
        for (id, status) in &report.actions {
            if status.is_success() {
                resume.done.insert(id.clone(), *status);
            }
        }
        resume
    }

    const OUTAGE: &str = "phases:\n  - name: prep\n    steps:\n      - {id: prep, module: shell, on: a, estimate: 5m, with: {cmd: work 5}}\n  - name: switch\n    outage: true\n    steps:\n      - {id: s1, module: shell, on: a, estimate: 1h, with: {cmd: work 60}}\n      - {id: s2, module: shell, on: a, estimate: 150m, with: {cmd: work 150}}\n      - {id: s3, module: shell, on: a, estimate: 45m, with: {cmd: work 45}}\n";

    #[test]
    fn the_window_holds_outage_steps_pauses_at_its_end_and_resumes_in_the_next() {
        let plan = plan(OUTAGE);
        let timed = Arc::new(Timed {
            clock: Arc::new(crate::clock::ManualClock::new(at("2026-11-23T21:00:00Z"))),
            ran: Mutex::default(),
        });
        // Before the window: preparation runs, then the run pauses at the boundary.
        let (first, events) = windowed(&plan, &timed, "22:00/02:00 UTC", |_| {});
        assert_eq!(first.status, RunStatus::Paused);
        assert_eq!(first.status_of("prep@a"), Some(Status::Changed));
        assert_eq!(first.status_of("s1@a"), None, "held, not blocked");
        let paused = events
            .0
            .iter()
            .find_map(|e| match e {
                Event::RunPaused {
                    action,
                    next_window,
                    held,
                    message,
                } => Some((action.clone(), next_window.clone(), held, message.clone())),
                _ => None,
            })
            .expect("a run_paused event");
        assert_eq!(paused.0, "s1@a");
        assert_eq!(paused.1.as_deref(), Some("2026-11-23T22:00:00Z"));
        assert_eq!(*paused.2, 3, "s1, s2 and s3 are not started");
        assert!(
            paused.3.contains("opens at 2026-11-23 22:00"),
            "{}",
            paused.3
        );

        // Inside the window: s1 (to 23:00) and s2 (to 01:30) fit; s3 (45m) would end at 02:15.
        timed.clock.advance(jiff::SignedDuration::from_mins(55));
        let resume = done(&first);
        let (second, events) = windowed(&plan, &timed, "22:00/02:00 UTC", |o| {
            o.resume = Some(resume);
        });
        assert_eq!(second.status, RunStatus::Paused);
        assert_eq!(second.status_of("s2@a"), Some(Status::Changed));
        assert_eq!(second.status_of("s3@a"), None);
        assert_eq!(timed.clock.now(), at("2026-11-24T01:30:00Z"));
        assert!(events.0.iter().any(|e| matches!(e,
            Event::RunPaused { action, next_window: Some(next), message, .. }
                if action == "s3@a" && next == "2026-11-24T22:00:00Z" && message.contains("30m left"))));

        // The next night: s3 runs, and nothing ran twice.
        timed.clock.advance(jiff::SignedDuration::from_hours(21));
        let mut resume = done(&first);
        resume.done.extend(done(&second).done);
        let (third, _) = windowed(&plan, &timed, "22:00/02:00 UTC", |o| {
            o.resume = Some(resume);
        });
        assert_eq!(third.status, RunStatus::Succeeded);
        assert_eq!(
            *timed.ran.lock().expect("lock"),
            ["work 5@0", "work 60@0", "work 150@0", "work 45@0"]
        );
    }

    #[test]
    fn with_wait_the_run_sleeps_until_the_window_opens() {
        let plan = plan(OUTAGE);
        let timed = Arc::new(Timed {
            clock: Arc::new(crate::clock::ManualClock::new(at("2026-11-23T21:00:00Z"))),
            ran: Mutex::default(),
        });
        let (report, events) = windowed(&plan, &timed, "22:00/04:00 UTC", |o| o.wait = true);
        assert_eq!(report.status, RunStatus::Succeeded);
        assert!(events.0.iter().any(|e| matches!(e,
            Event::WindowWaiting { until, .. } if until == "2026-11-23T22:00:00Z")));
        // 22:00 + 1h + 150m + 45m.
        assert_eq!(timed.clock.now(), at("2026-11-24T02:15:00Z"));
    }

    #[test]
    fn an_irreversible_step_needs_the_rest_of_the_outage_to_fit_unless_forced() {
        let plan = plan(
            "phases:\n  - name: switch\n    outage: true\n    steps:\n      - {id: point, module: shell, on: a, irreversible: true, estimate: 10m, with: {cmd: work 10}}\n      - {id: after, module: shell, on: a, estimate: 1h, with: {cmd: work 60}}\n",
        );
        let clock = || Arc::new(crate::clock::ManualClock::new(at("2026-11-23T22:00:00Z")));
        let window = "2026-11-23T22:00:00Z/2026-11-23T23:00:00Z";
        let timed = Arc::new(Timed {
            clock: clock(),
            ran: Mutex::default(),
        });
        let (held, events) = windowed(&plan, &timed, window, |_| {});
        assert_eq!(held.status, RunStatus::Paused);
        assert!(
            timed.ran.lock().expect("lock").is_empty(),
            "nothing started"
        );
        assert!(events.0.iter().any(|e| matches!(e,
            Event::RunPaused { message, next_window: None, .. }
                if message.contains("irreversible") && message.contains("~1h10m"))));
        // --force starts it; the step after it still may not overrun the window.
        let timed = Arc::new(Timed {
            clock: clock(),
            ran: Mutex::default(),
        });
        let (forced, _) = windowed(&plan, &timed, window, |o| o.force = true);
        assert_eq!(forced.status_of("point@a"), Some(Status::Changed));
        assert_eq!(forced.status_of("after@a"), None);
        assert_eq!(forced.status, RunStatus::Paused);
    }
}
