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
    let mut st = State {
        run: Run::new(&plan, opts, registry, progress_tx),
        remaining: vec![0; n],
        ready: BinaryHeap::new(),
        phase_started: vec![false; plan.phases.len()],
        record: Record::new(log),
        durations: vec![Duration::ZERO; n],
        held: Vec::new(),
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
    st.flush(sink);
    // Drain progress events of the last actions.
    while let Ok(progress) = progress_rx.try_recv() {
        st.progress(progress, sink);
    }
    st.report(sink, begun.elapsed())
}

impl State<'_> {
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
            sink.emit(&Event::RunPaused {
                action,
                message: hold.message.clone(),
                next_window: hold.next_window.map(|t| t.to_string()),
                held: self.held.len(),
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
        }
    }
}

#[cfg(test)]
mod tests {
    //! The scheduler with a fake transport: ordering and failure policy without SSH.

    use std::sync::Mutex;

    use super::*;
    use crate::event::Recorder;
    use crate::execute::RecordError;
    use crate::journal::RunState;
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

    use super::super::fake::plan;

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

    /// A record whose writer lost the run (another controller took it over): every write
    /// goes through, but it no longer holds the run.
    struct Lost;

    impl crate::execute::RunLog for Lost {
        fn journaled(&self) -> bool {
            true
        }
        fn commit(&mut self, _: &[crate::journal::Entry]) -> Result<(), RecordError> {
            Ok(())
        }
        fn end(&mut self, _: RunState) -> Result<(), RecordError> {
            Ok(())
        }
        fn still_held(&self) -> Result<(), RecordError> {
            Err(RecordError::Io(std::io::Error::other("the lease was lost")))
        }
        fn keep_output(
            &mut self,
            _: &str,
            _: &crate::execute::ActionFiles<'_>,
        ) -> Result<(), RecordError> {
            Ok(())
        }
        fn keep_artifact(&mut self, _: &str, _: &str, _: &[u8]) -> Result<String, RecordError> {
            Ok(String::new())
        }
    }

    #[test]
    fn a_writer_that_no_longer_holds_the_run_sends_nothing() {
        let plan = plan(FOUR_STEPS);
        let fake = Arc::new(Fake::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut events = Recorder::default();
        let report = runtime.block_on(execute_with(
            plan.clone(),
            &Registry::builtin(),
            fake.clone(),
            &Options::new("r", "/nonexistent/runs/r"),
            Box::new(Lost),
            &mut events,
        ));
        assert!(
            fake.ran.lock().expect("lock").is_empty(),
            "nothing reached a host"
        );
        assert_eq!(report.status, RunStatus::Unrecorded);
        let why = report.unrecorded.clone().expect("a reason");
        assert!(why.contains("the lease was lost"), "{why}");
        assert_eq!(report.status_of("s1@a"), Some(Status::Blocked));
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
        assert_eq!(*paused.2, 1);
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
