//! The scheduler loop: ready actions in plan order, admitted by [`super::admission`], sent in
//! group-committed batches, their results recorded before anything that depends on them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;
use runbook_modules::Registry;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::ast::StepKind;
use crate::event::{Event, RunStatus, Sink, Status};

use crate::inventory::HostId;
use crate::plan::{Action, Plan, PlanNode};
use crate::transport::Runner;

use super::action::{Finished, Job, Progress};
use super::admission::{Admission, admit, pass};
use super::hold::Held;
use super::options::Options;
use super::outage::Tracker;
use super::outputs::Output;
use super::reason::Reason;
use super::record::{Record, Transition};
use super::report::{self, Report};
use super::run::{Run, Stop};
use super::run_log::{ActionFiles, Local, RunLog};

/// The loop's own state around the [`Run`] the policy reads.
struct State<'a> {
    run: Run<'a>,
    /// Dependencies not yet finished, per node.
    remaining: Vec<usize>,
    /// Nodes whose dependencies have all finished, by plan order.
    ready: BinaryHeap<Reverse<(usize, usize)>>,
    phase_started: Vec<bool>,
    /// The journal and the run directory, behind their buffer.
    record: Record,
    durations: Vec<Duration>,
    /// Outage actions the window did not let start, in the order they were held.
    held: Vec<NodeIndex>,
    /// This apply's piece of the outage and the write freeze.
    outage: Tracker,
}

/// Runs the plan, recording it in the state directory's journal (`opts.journal`) and its run
/// directory (`opts.run_dir`). Never panics on a host's behaviour: every outcome becomes a
/// [`Status`].
pub async fn execute<R: Runner + 'static>(
    plan: Arc<Plan>,
    registry: &Registry,
    runner: Arc<R>,
    opts: &Options,
    sink: &mut dyn Sink,
) -> Report {
    let log = Local::new(
        opts.journal.clone(),
        opts.run_id.clone(),
        opts.run_dir.clone(),
    );
    execute_with(plan, registry, runner, opts, Box::new(log), sink).await
}

/// Runs the plan, recording it through `log`: `opts.journal` is not used, and `opts.run_dir`
/// only names the run directory in `run_finished`.
pub async fn execute_with<R: Runner + 'static>(
    plan: Arc<Plan>,
    registry: &Registry,
    runner: Arc<R>,
    opts: &Options,
    log: Box<dyn RunLog>,
    sink: &mut dyn Sink,
) -> Report {
    let begun = Instant::now();
    let n = plan.node_count();
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
    let record = Record::new(log);
    let outage = Tracker::new(&plan, opts.generation, opts.dry_run, &record.pieces());
    let mut st = State {
        run: Run::new(&plan, opts, registry, progress_tx),
        remaining: vec![0; n],
        ready: BinaryHeap::new(),
        phase_started: vec![false; plan.phases.len()],
        record,
        durations: vec![Duration::ZERO; n],
        held: Vec::new(),
        outage,
    };
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
    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut in_flight: BTreeMap<usize, (HostId, String)> = BTreeMap::new();
    let mut cancel = opts.cancel.clone();

    let mut jobs: Vec<Job> = Vec::new();
    loop {
        st.emit_outage(sink);
        while let Some(Reverse((_, index))) = st.ready.pop() {
            let node = NodeIndex::new(index);
            match plan.node(node) {
                PlanNode::Gate(gate) => {
                    let (status, reason) = pass(&st.run, node, gate);
                    st.run.block_reason[index] = reason;
                    st.finish(node, status);
                }
                PlanNode::Action(action) => {
                    if let Some(job) = st.admit(node, action, sink) {
                        st.outage.sent(&plan, node);
                        st.emit_outage(sink);
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
            if let Err(message) = st.record.still_held() {
                st.halt(&message, sink);
            }
        }
        for job in jobs.drain(..) {
            let index = job.node.index();
            if st.run.unrecorded.is_some() {
                // Its `started` is not on disk: it must not be sent. Nothing is recorded for it
                // (an interrupted action keeps its earlier record, so a resume probes its host).
                let node = job.node;
                if let PlanNode::Action(action) = plan.node(node) {
                    sink.emit(&st.action_event(
                        node,
                        action,
                        Status::Blocked,
                        None,
                        Some(Reason::NotRecorded.to_string()),
                    ));
                }
                st.finish(node, Status::Blocked);
                continue;
            }
            in_flight.insert(index, (job.host, job.key.clone()));
            let (runner, forks, host) =
                (runner.clone(), forks.clone(), host_limits[job.host].clone());
            st.run.started_at[index] = Some(Instant::now());
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
            if super::hold::wait_for_window(&mut st.run, sink, &mut cancel).await {
                st.release_held();
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
            Ok(()) = cancelled, if !st.run.cancelled() => {
                // Stop everything still running, on its host; the jobs then end on their own.
                st.run.stop(Stop::Interrupted);
                for (host, key) in in_flight.values() {
                    runner.cancel(*host, key.clone()).await;
                }
            }
        }
    }
    // Drain progress events of the last actions.
    while let Ok(progress) = progress_rx.try_recv() {
        st.progress(progress, sink);
    }
    // What is still open of the outage ends with the apply, and its piece goes into the
    // final commit.
    st.outage.close();
    st.emit_outage(sink);
    st.flush(sink);
    st.report(sink, begun.elapsed())
}

impl State<'_> {
    /// What the outage tracker has to say, before anything that follows it.
    fn emit_outage(&mut self, sink: &mut dyn Sink) {
        for event in self.outage.take_events() {
            sink.emit(&event);
        }
    }

    /// Admits a ready action ([`admit`]) and carries the decision out: the job to send, or
    /// `None` when it was settled here or held.
    fn admit(&mut self, node: NodeIndex, action: &Action, sink: &mut dyn Sink) -> Option<Job> {
        let plan = self.run.plan;
        let step = &plan.steps[action.step];
        if !self.phase_started[step.phase] {
            self.phase_started[step.phase] = true;
            let phase = &plan.phases[step.phase];
            sink.emit(&Event::PhaseStarted {
                phase: phase.name.clone(),
                outage: phase.outage,
            });
        }
        let id = plan.action_id(action);
        loop {
            let admission = admit(&self.run, node, action);
            if matches!(admission, Admission::Recorded(_)) {
                // Resuming: what finished before the interruption stays finished.
            } else if self.run.resume.decisions.contains_key(&id) {
                // An operator's decision settles the question the interruption left.
                self.run.resume.unknown.remove(&id);
            }
            match admission {
                Admission::Recorded(status) => {
                    sink.emit(&Event::ActionResumed {
                        action: id,
                        status,
                        how: "recorded before the interruption".into(),
                    });
                    self.finish(node, status);
                }
                Admission::Settle(status, reason) => {
                    if reason == Reason::ResolvedDone {
                        sink.emit(&Event::ActionResumed {
                            action: id,
                            status: Status::Ok,
                            how: "an operator decided it was done".into(),
                        });
                    }
                    self.settle(node, action, status, &reason, sink);
                }
                Admission::Hold(held) => {
                    if let Held::First(hold) = held {
                        self.run.hold = Some((node, hold));
                    }
                    self.held.push(node);
                }
                Admission::Ask(prompt) => {
                    let answer = self.run.opts.approver.as_ref().and_then(|ask| ask(&prompt));
                    match answer {
                        Some(true) => {
                            *self.run.confirmed.entry(node).or_default() += 1;
                            continue;
                        }
                        Some(false) => {
                            self.settle(node, action, Status::Failed, &Reason::Declined, sink);
                        }
                        None => {
                            sink.emit(&Event::AwaitingApproval {
                                action: id,
                                step: step.id.clone(),
                                instructions: prompt.instructions,
                            });
                            let reason = Reason::AwaitingApproval {
                                run_id: self.run.opts.run_id.clone(),
                                step: step.id.clone(),
                                state_arg: self.run.opts.state_arg.clone(),
                            };
                            self.settle(node, action, Status::AwaitingApproval, &reason, sink);
                        }
                    }
                }
                Admission::Run(job) => {
                    if job.resolve.is_none() {
                        self.record_started(node, action);
                    }
                    return Some(*job);
                }
            }
            return None;
        }
    }

    /// Ends an action on the controller: recorded, reported, its output registered (empty).
    fn settle(
        &mut self,
        node: NodeIndex,
        action: &Action,
        status: Status,
        reason: &Reason,
        sink: &mut dyn Sink,
    ) {
        let plan = self.run.plan;
        let step = &plan.steps[action.step];
        let message = reason.message();
        let output = Output::new(status, None, String::new(), String::new());
        // An interrupted action blocked or failed here was not looked at on its host: it keeps
        // its record (`started`, `unreachable`...), so the next resume probes the host rather
        // than read a `blocked` or `failed` written now as "run it".
        let unsettled = self.run.resume.unknown.contains(&plan.action_id(action))
            && matches!(status, Status::Blocked | Status::Failed);
        if !unsettled {
            self.record_finished(
                node,
                action,
                status,
                None,
                Duration::ZERO,
                message.as_deref(),
                &output,
            );
        }
        sink.emit(&self.action_event(node, action, status, None, message));
        if let Some(name) = &step.register {
            self.run.outputs.insert(name, action.host, &output);
        }
        self.finish(node, status);
    }

    /// The window opened: the held steps go back in the queue.
    fn release_held(&mut self) {
        for node in std::mem::take(&mut self.held) {
            self.ready
                .push(Reverse((self.run.plan.order_position(node), node.index())));
        }
    }

    fn record_started(&mut self, node: NodeIndex, action: &Action) {
        self.record.started(self.run.plan, node, action);
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
        if self.run.unrecorded.is_some() && status == Status::Blocked {
            return;
        }
        let message = message.map(|m| self.run.shared.masker.mask(m));
        let transition = Transition {
            status,
            rc,
            duration,
            message,
            output,
        };
        self.record
            .finished(self.run.plan, node, action, transition);
    }

    /// Commits the buffered transitions ([`Record::commit`]): called before anything new is
    /// sent to a host, and once more at the end of the run. A failure halts the run.
    fn flush(&mut self, sink: &mut dyn Sink) {
        self.record.pieces_changed(self.outage.entries());
        if let Err(message) = self.record.commit() {
            self.halt(&message, sink);
        }
    }

    /// Records how the run ended ([`Record::end`]); a run whose end is not recorded is
    /// [`RunStatus::Unrecorded`].
    fn record_end(&mut self, status: RunStatus, sink: &mut dyn Sink) -> RunStatus {
        match self.record.end(status) {
            Ok(()) => status,
            Err(message) => {
                self.halt(&message, sink);
                RunStatus::Unrecorded
            }
        }
    }

    /// A write of the run's record failed: nothing more starts (see [`State::flush`]).
    fn halt(&mut self, message: &str, sink: &mut dyn Sink) {
        self.run
            .shared
            .halt
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if self.run.unrecorded.is_none() {
            let message = self.run.shared.masker.mask(message);
            sink.emit(&Event::RecordFailed {
                message: message.clone(),
            });
            self.run.unrecorded = Some(message);
        }
    }

    fn finish(&mut self, node: NodeIndex, status: Status) {
        self.run.status[node.index()] = Some(status);
        self.outage.settled(node, status);
        if let PlanNode::Action(a) = self.run.plan.node(node) {
            let step = &self.run.plan.steps[a.step];
            if status.is_failure() && step.kind == StepKind::Main {
                self.run.phase_failed[step.phase] = true;
                if let Some(h) = a.host {
                    self.run.host_failed_in.entry(h).or_insert(step.phase);
                }
            }
            if status.is_failure() && self.run.opts.fail_fast {
                self.run.stop(Stop::AfterFailure);
                self.run
                    .shared
                    .stop
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        for next in self.run.plan.dependents(node) {
            self.remaining[next.index()] -= 1;
            if self.remaining[next.index()] == 0 {
                self.ready
                    .push(Reverse((self.run.plan.order_position(next), next.index())));
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
        let step = &self.run.plan.steps[action.step];
        Event::ActionFinished {
            action: self.run.plan.action_id(action),
            step: step.id.clone(),
            host: self.run.plan.host_name(action.host).to_owned(),
            status,
            rc,
            duration_secs: self.durations[node.index()].as_secs_f64(),
            message: message.map(|m| self.run.shared.masker.mask(&m)),
        }
    }

    fn progress(&mut self, progress: Progress, sink: &mut dyn Sink) {
        self.emit_outage(sink);
        match progress {
            Progress::Started { node, attempt } => {
                if let PlanNode::Action(a) = self.run.plan.node(node) {
                    sink.emit(&Event::ActionStarted {
                        action: self.run.plan.action_id(a),
                        step: self.run.plan.steps[a.step].id.clone(),
                        host: self.run.plan.host_name(a.host).to_owned(),
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
                if let PlanNode::Action(a) = self.run.plan.node(node) {
                    sink.emit(&Event::ActionRetrying {
                        action: self.run.plan.action_id(a),
                        attempt,
                        delay_secs: delay.as_secs_f64(),
                        reason: self.run.shared.masker.mask(&reason),
                    });
                }
            }
        }
    }

    fn completed(&mut self, mut f: Finished, sink: &mut dyn Sink) {
        if self.run.cancelled() && f.status.is_failure() {
            // Stopped is only said when the command's own end came back from the host.
            let how = if f.status == Status::Unreachable {
                "interrupted (Ctrl-C); whether it stopped on its host is unknown"
            } else {
                "interrupted (Ctrl-C) and stopped on its host"
            };
            f.message = Some(format!("{how}; {}", f.message.unwrap_or_default()));
        }
        let PlanNode::Action(action) = self.run.plan.node(f.node) else {
            return;
        };
        self.durations[f.node.index()] = f.duration;
        let resolved = f.resolved_by.is_some();
        let step = &self.run.plan.steps[action.step];
        let id = self.run.plan.action_id(action);
        if let Some(how) = f.resolved_by.take() {
            self.run.resume.unknown.remove(&id);
            if f.rerun {
                // It did not take effect: run it now, as if for the first time.
                sink.emit(&Event::ActionResumed {
                    action: id,
                    status: Status::Blocked,
                    how: format!("{how}; running it"),
                });
                self.ready.push(Reverse((
                    self.run.plan.order_position(f.node),
                    f.node.index(),
                )));
                return;
            }
            sink.emit(&Event::ActionResumed {
                action: id.clone(),
                status: f.status,
                how,
            });
        }
        // The action's files are part of the run's record: one that cannot be written stops
        // the run like a failed journal write. The result itself still goes to the journal,
        // so the resume neither loses it nor runs the action again.
        let files = ActionFiles {
            stdout: &f.stdout,
            stderr: &f.stderr,
            status: f.status,
            rc: f.rc,
            message: f.message.as_deref(),
            duration_secs: f.duration.as_secs_f64(),
            attempts: f.attempts,
        };
        if let Err(message) = self.record.keep_output(&id, &files) {
            self.halt(&message, sink);
        }
        for (name, bytes) in &f.artifacts {
            match self.record.keep_artifact(&id, name, bytes) {
                Ok(path) => sink.emit(&Event::ArtifactKept {
                    action: id.clone(),
                    name: name.clone(),
                    path,
                    bytes: bytes.len() as u64,
                }),
                Err(message) => self.halt(&message, sink),
            }
        }
        if let Some(name) = &step.register {
            self.run.outputs.insert(name, action.host, &f.output);
        }
        self.outage.ran(self.run.plan, f.node, f.duration, resolved);
        self.emit_outage(sink);
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

    /// Ends the run: its status ([`report::outcome`]), recorded before `run_finished` says
    /// so.
    fn report(&mut self, sink: &mut dyn Sink, duration: Duration) -> Report {
        let run = &self.run;
        let (actions, hosts) =
            report::tally(run.plan, &run.status, &self.durations, run.hold.is_some());
        let paused = run.hold.as_ref().filter(|_| !self.held.is_empty());
        let status = report::outcome(
            run.unrecorded.is_some(),
            run.cancelled(),
            &actions,
            paused.is_some(),
        );
        if status == RunStatus::Paused
            && let Some((node, hold)) = paused
        {
            let action = match run.plan.node(*node) {
                PlanNode::Action(a) => run.plan.action_id(a),
                PlanNode::Gate(_) => String::new(),
            };
            // Every action not started: the held ones and those waiting behind them.
            let not_started = run
                .plan
                .nodes()
                .filter(|(node, n)| {
                    matches!(n, PlanNode::Action(_)) && run.status[node.index()].is_none()
                })
                .count();
            sink.emit(&Event::RunPaused {
                action,
                message: hold.message.clone(),
                next_window: hold.next_window.map(|t| t.to_string()),
                held: not_started,
            });
        }
        let status = self.record_end(status, sink);
        sink.emit(&Event::RunFinished {
            run_id: self.run.opts.run_id.clone(),
            status,
            duration_secs: duration.as_secs_f64(),
            hosts: hosts.clone(),
            run_dir: self.run.opts.run_dir.display().to_string(),
        });
        sink.flush();
        Report {
            run_id: self.run.opts.run_id.clone(),
            status,
            actions,
            hosts,
            duration,
            unrecorded: self.run.unrecorded.clone(),
            outage: self.outage.measured(),
        }
    }
}

#[cfg(test)]
mod tests;
