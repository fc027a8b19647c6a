//! Running one action's operations on its host: attempts, `until`, `delay`, timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::value::Value as TValue;
use runbook_modules::{Command, Operation};

use crate::event::Status;
use crate::inventory::HostId;
use crate::plan::Plan;
use crate::transport::{Exec, Runner, TransportError};

use super::mask::Masker;
use super::outputs::Output;
use super::transfer::{self, Planned};

/// Everything a running action needs, owned (it runs in its own task).
pub struct Job {
    pub node: petgraph::graph::NodeIndex,
    pub plan: Arc<Plan>,
    pub step: usize,
    pub host: HostId,
    /// `RUN/step@host`, where the wrapper keeps its state on the host.
    pub key: String,
    /// This process's generation in the run (1 for its first apply, one more for each
    /// resume): attempt directories are `GENERATION*1000+ATTEMPT.OP`.
    pub generation: u32,
    pub commands: Vec<Command>,
    /// Copies from other hosts through the controller, run after `commands`.
    pub transfers: Vec<Planned>,
    pub env: Vec<(String, String)>,
    /// `--dry-run`: the commands are read-only checks whose exit code says 0 = in state,
    /// 1 = would change.
    pub check_only: bool,
    /// Outputs visible to the action, for `until:`.
    pub visible: Vec<(String, TValue)>,
    pub masker: Arc<Masker>,
    /// Resuming: first find out whether an interrupted earlier attempt took effect.
    pub resolve: Option<Resolve>,
    /// Becomes true on Ctrl-C: no new attempt starts.
    pub cancel: Option<tokio::sync::watch::Receiver<bool>>,
    /// With `fail_fast`: the run's stop flag, and whether this is a main step. A failure sets
    /// the flag before the job gives back its slots, and a main step still waiting for a slot
    /// does not start once it is set.
    pub stop: Option<(Arc<std::sync::atomic::AtomicBool>, bool)>,
    /// Set when the run's state can no longer be recorded (a full disk): a job still waiting
    /// for a slot does not start, and a failed attempt is not retried.
    pub halt: Arc<std::sync::atomic::AtomicBool>,
    /// Called when an attempt starts (attempt number, 1-based) and when one is retried.
    pub progress: tokio::sync::mpsc::UnboundedSender<Progress>,
}

/// How to settle an action whose earlier attempt was interrupted.
#[derive(Debug)]
pub struct Resolve {
    /// The module's read-only checks, when it has them.
    pub checks: Option<Vec<Command>>,
    /// The transfers among those checks (comparisons of both ends).
    pub check_transfers: Vec<Planned>,
    /// The number of commands the action runs (all must have finished for it to be done).
    pub commands: usize,
    /// ` --state DIR` for the `runbook resolve` it may suggest ([`super::Options::state_arg`]).
    pub state_arg: String,
}

/// Progress of a running action, for events.
#[derive(Debug)]
pub enum Progress {
    Started {
        node: petgraph::graph::NodeIndex,
        attempt: u32,
    },
    Retrying {
        node: petgraph::graph::NodeIndex,
        attempt: u32,
        delay: Duration,
        reason: String,
    },
}

/// How an action ended.
#[derive(Debug)]
pub struct Finished {
    pub node: petgraph::graph::NodeIndex,
    pub status: Status,
    pub rc: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub message: Option<String>,
    pub duration: Duration,
    pub output: Output,
    /// Resolution found that the action did not take effect: run it now.
    pub rerun: bool,
    /// How a resolved action's outcome was established.
    pub resolved_by: Option<String>,
    /// Host files the commands asked to keep (name, content), secrets masked in text files.
    pub artifacts: Vec<(String, Vec<u8>)>,
    /// Attempts made (the last one's number; 0 when nothing was sent, as for a settled or
    /// interrupted action). Kept in `result.json` for the run report.
    pub attempts: u32,
}

/// What the wrapper left on the host for an action.
#[derive(Debug, PartialEq, Eq)]
enum HostRecord {
    /// No trace: the command never reached the host.
    NotStarted,
    /// A command of it still runs.
    Running,
    /// Every command of the last attempt exited 0.
    Done,
    /// A command of the last attempt exited non-zero.
    Failed(i32),
    /// Started, but ended without a recorded exit code (killed with its host, say), or only
    /// some of its commands ran.
    Unknown,
}

fn parse_probe(text: &str, commands: usize) -> HostRecord {
    let mut entries: Vec<(u32, usize, Option<i32>, bool)> = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(rc), Some(run)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Some((attempt, op)) = name.split_once('.') else {
            continue;
        };
        let (Ok(attempt), Ok(op)) = (attempt.parse(), op.parse()) else {
            continue;
        };
        entries.push((attempt, op, rc.parse().ok(), run == "1"));
    }
    let Some(last) = entries.iter().map(|e| e.0).max() else {
        return HostRecord::NotStarted;
    };
    if entries.iter().any(|e| e.3) {
        return HostRecord::Running;
    }
    let attempt: Vec<_> = entries.iter().filter(|e| e.0 == last).collect();
    if let Some(rc) = attempt.iter().find_map(|e| e.2.filter(|rc| *rc != 0)) {
        // Killed by a signal (128 + n): it may have done its work before it died.
        return if rc > 128 {
            HostRecord::Unknown
        } else {
            HostRecord::Failed(rc)
        };
    }
    let finished = attempt.iter().filter(|e| e.2 == Some(0)).count();
    if finished == commands && attempt.len() == commands {
        HostRecord::Done
    } else {
        HostRecord::Unknown
    }
}

impl Job {
    /// Settles an action interrupted by a crash: the host's record first, then the module's
    /// check; never a blind second execution.
    async fn resolve<R: Runner>(&self, runner: &R, resolve: &Resolve) -> Finished {
        let started = Instant::now();
        let finished =
            |status: Status, rerun: bool, how: String, message: Option<String>| Finished {
                node: self.node,
                status,
                rc: None,
                stdout: String::new(),
                stderr: String::new(),
                message,
                duration: started.elapsed(),
                output: Output::new(status, None, String::new(), String::new()),
                rerun,
                resolved_by: Some(how),
                artifacts: Vec::new(),
                attempts: 0,
            };
        // First the fence: a command of an earlier process that is still on its way to the host
        // (that process was killed while sending it) will refuse to run once it arrives. So
        // what the probe then finds is all that ever ran, and "never started" is safe to run.
        if let Err(e) = runner
            .fence(self.host, self.key.clone(), self.generation)
            .await
        {
            return finished(
                Status::Unreachable,
                false,
                "host".into(),
                Some(self.masker.mask(&e.to_string())),
            );
        }
        let record = loop {
            match runner.probe(self.host, self.key.clone()).await {
                Ok(text) => match parse_probe(&text, resolve.commands) {
                    // Still running from before the interruption: wait for it rather than start
                    // a second copy.
                    HostRecord::Running => tokio::time::sleep(Duration::from_secs(1)).await,
                    other => break other,
                },
                Err(e) => {
                    return finished(
                        Status::Unreachable,
                        false,
                        "host".into(),
                        Some(self.masker.mask(&e.to_string())),
                    );
                }
            }
        };
        match record {
            HostRecord::NotStarted => {
                finished(Status::Ok, true, "host: never started".into(), None)
            }
            HostRecord::Done => {
                finished(Status::Changed, false, "host: it had finished".into(), None)
            }
            HostRecord::Failed(rc) => finished(
                Status::Failed,
                true,
                format!("host: it had failed with code {rc}"),
                None,
            ),
            HostRecord::Running => unreachable!("the loop waits until it ends"),
            HostRecord::Unknown => match &resolve.checks {
                Some(checks) => {
                    let probe = Job {
                        commands: checks.clone(),
                        transfers: resolve.check_transfers.clone(),
                        check_only: true,
                        resolve: None,
                        ..self.clone_for_check()
                    };
                    let result = probe.attempt(runner, 1).await;
                    match result.status {
                        Status::Ok => finished(
                            Status::Ok,
                            false,
                            "check: already in the desired state".into(),
                            None,
                        ),
                        Status::WouldChange => finished(
                            Status::Ok,
                            true,
                            "check: it had not taken effect".into(),
                            None,
                        ),
                        _ => finished(
                            Status::Unknown,
                            false,
                            "check failed".into(),
                            result.message,
                        ),
                    }
                }
                None => finished(
                    Status::Unknown,
                    false,
                    "undecidable".into(),
                    Some(format!(
                        "it was interrupted and its module cannot tell whether it took effect: inspect the host, then `runbook resolve {} {} --done{}` or `--redo`",
                        self.key.split('/').next().unwrap_or_default(),
                        self.key.split('/').nth(1).unwrap_or_default(),
                        resolve.state_arg
                    )),
                ),
            },
        }
    }

    fn clone_for_check(&self) -> Job {
        Job {
            node: self.node,
            plan: self.plan.clone(),
            step: self.step,
            host: self.host,
            key: format!("{}/check", self.key),
            generation: self.generation,
            commands: Vec::new(),
            transfers: Vec::new(),
            env: self.env.clone(),
            check_only: true,
            visible: self.visible.clone(),
            masker: self.masker.clone(),
            resolve: None,
            cancel: self.cancel.clone(),
            stop: None,
            halt: self.halt.clone(),
            progress: self.progress.clone(),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| *c.borrow())
    }

    fn interrupted(&self, started: Instant) -> Finished {
        let status = Status::Blocked;
        Finished {
            node: self.node,
            status,
            rc: None,
            stdout: String::new(),
            stderr: String::new(),
            message: Some("interrupted (Ctrl-C) before it started".into()),
            duration: started.elapsed(),
            output: Output::new(status, None, String::new(), String::new()),
            rerun: false,
            resolved_by: None,
            artifacts: Vec::new(),
            attempts: 0,
        }
    }

    pub async fn run<R: Runner>(self, runner: &R) -> Finished {
        if let Some(resolve) = &self.resolve {
            return self.resolve(runner, resolve).await;
        }
        let started = Instant::now();
        let step = &self.plan.steps[self.step];
        let attempts = if self.check_only { 1 } else { step.retries + 1 };
        let mut last = None;
        if self
            .stop
            .as_ref()
            .is_some_and(|(s, main)| *main && s.load(std::sync::atomic::Ordering::SeqCst))
        {
            let mut f = self.interrupted(started);
            f.message =
                Some("the run stopped after a failure (fail_fast) before it started".into());
            return f;
        }
        let mut not_retried = false;
        for attempt in 1..=attempts {
            if self.halt.load(std::sync::atomic::Ordering::SeqCst) {
                if last.is_none() {
                    let mut f = self.interrupted(started);
                    f.message = Some(format!("not started: {}", super::NOT_RECORDED));
                    return f;
                }
                not_retried = true;
                break;
            }
            if self.cancelled() {
                if last.is_none() {
                    return self.interrupted(started);
                }
                break;
            }
            let _ = self.progress.send(Progress::Started {
                node: self.node,
                attempt,
            });
            let outcome = self.attempt(runner, attempt).await;
            let retry_reason = match &outcome.status {
                // A dropped host, a timeout or an unknown outcome is never run again behind the
                // operator's back.
                Status::Unreachable | Status::TimedOut | Status::Unknown => None,
                Status::Failed => Some(outcome.message.clone().unwrap_or_else(|| "failed".into())),
                _ => match &step.until {
                    Some(until) if !self.check_only => {
                        match self.until_holds(until, &outcome.output) {
                            Ok(true) => None,
                            Ok(false) => Some(format!("`until: {until}` is false")),
                            Err(e) => Some(e),
                        }
                    }
                    _ => None,
                },
            };
            let done = retry_reason.is_none();
            let failed_until = !done && !outcome.status.is_failure();
            last = Some((outcome, retry_reason.clone(), failed_until));
            if done {
                break;
            }
            if attempt < attempts {
                let delay = step.delay.unwrap_or(Duration::from_secs(5));
                let reason = retry_reason.unwrap_or_default();
                let _ = self.progress.send(Progress::Retrying {
                    node: self.node,
                    attempt,
                    delay,
                    reason,
                });
                let mut cancel = self.cancel.clone();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = async { match cancel.as_mut() { Some(c) => c.wait_for(|v| *v).await.map(|_| ()), None => std::future::pending().await } } => {}
                }
            }
        }
        let (mut outcome, reason, failed_until) = last.expect("at least one attempt ran");
        if failed_until {
            outcome.status = Status::Failed;
            outcome.message = reason.map(|r| format!("{r} after {attempts} attempt(s)"));
        }
        if not_retried {
            outcome.status = Status::Failed;
            outcome.message = Some(format!(
                "{}; not retried: {}",
                outcome.message.as_deref().unwrap_or("failed"),
                super::NOT_RECORDED
            ));
        }
        if let Some((flag, _)) = &self.stop
            && outcome.status.is_failure()
        {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        outcome.duration = started.elapsed();
        outcome
    }

    fn until_holds(&self, until: &str, own: &Output) -> Result<bool, String> {
        let step = &self.plan.steps[self.step];
        let mut registers = self.visible.clone();
        if let Some(name) = &step.register {
            registers.retain(|(n, _)| n != name);
            registers.push((name.clone(), own.value()));
        }
        self.plan
            .eval(until, Some(self.host), &registers)
            .map(|v| v.is_true())
            .map_err(|e| format!("`until: {until}` cannot be evaluated: {}", e.message))
    }

    async fn attempt<R: Runner>(&self, runner: &R, attempt: u32) -> Finished {
        let mut stdout = String::new();
        let mut stderr = String::new();
        let mut rc = Some(0);
        let mut changed = false;
        let mut would_change = false;
        let mut message = None;
        let mut status = Status::Ok;
        let mut artifacts = Vec::new();
        let timeout = self.plan.steps[self.step].timeout;
        let numbered =
            self.generation * crate::transport::wrapper::ATTEMPTS_PER_GENERATION + attempt;
        for i in 0..self.commands.len() + self.transfers.len() {
            let (ran, mutating, cmd) = if let Some(cmd) = self.commands.get(i) {
                let env = self.env_for(cmd);
                if let Some(why) = crate::transport::wrapper::env_problem(&env) {
                    status = Status::Failed;
                    rc = None;
                    message = Some(why);
                    break;
                }
                let exec = Exec {
                    key: format!("{}/{numbered}.{i}", self.key),
                    script: cmd.script.clone(),
                    env,
                    stdin: cmd
                        .stdin
                        .as_ref()
                        .and_then(|v| v.as_str().map(|s| s.as_bytes().to_vec()))
                        .unwrap_or_default(),
                    timeout,
                    helpers: cmd.helpers.clone(),
                };
                (runner.run(self.host, exec).await, cmd.mutating, Some(cmd))
            } else {
                // Not `ATTEMPT.OP`: the resume probe must not count a transfer's commands.
                let j = i - self.commands.len();
                let t = &self.transfers[j];
                let key = format!("{}/{numbered}.t{j}", self.key);
                let host = self.plan.host_name(Some(self.host));
                let cancelled = || self.cancelled();
                let ran = transfer::run(runner, t, self.host, host, &key, timeout, &cancelled);
                (ran.await, !t.spec.probe, None)
            };
            match ran {
                Ok(result) => {
                    let out = self.masker.mask_bytes(&result.stdout);
                    let err = self.masker.mask_bytes(&result.stderr);
                    let unchanged = out.lines().any(|l| l == runbook_modules::UNCHANGED);
                    stdout.push_str(&out);
                    stderr.push_str(&err);
                    rc = result.code;
                    if self.check_only {
                        match result.code {
                            Some(runbook_modules::CHECK_IN_STATE) => {}
                            Some(runbook_modules::CHECK_WOULD_CHANGE) => would_change = true,
                            code => {
                                status = Status::Failed;
                                message = Some(format!(
                                    "the read-only check failed ({}): {}",
                                    describe_exit(code),
                                    last_line(&err)
                                ));
                                break;
                            }
                        }
                    } else if result.code == Some(0) {
                        changed |= mutating && !unchanged;
                        if let Some(cmd) = cmd
                            && let Err(e) = self
                                .collect(runner, cmd, &format!("{numbered}.{i}"), &mut artifacts)
                                .await
                        {
                            status = Status::Failed;
                            message = Some(self.masker.mask(&e));
                            break;
                        }
                    } else {
                        status = Status::Failed;
                        message = Some(format!(
                            "exited with {}: {}",
                            describe_exit(result.code),
                            last_line(&err)
                        ));
                        break;
                    }
                }
                Err(e) => {
                    rc = None;
                    status = match &e {
                        TransportError::TimedOut { .. } => Status::TimedOut,
                        // Another run holds the host: this action did not start there.
                        TransportError::HostLock { .. } => Status::Failed,
                        TransportError::Unreachable { .. } | TransportError::HostKey { .. } => {
                            Status::Unreachable
                        }
                        // The host answers: its record decides (failed or unknown).
                        TransportError::WrapperKilled {
                            fate,
                            stdout: out,
                            stderr: err,
                            ..
                        } => {
                            stdout.push_str(&self.masker.mask_bytes(out));
                            stderr.push_str(&self.masker.mask_bytes(err));
                            rc = fate.rc();
                            fate.status()
                        }
                    };
                    message = Some(self.masker.mask(&e.to_string()));
                    break;
                }
            }
        }
        if status == Status::Ok {
            if would_change {
                status = Status::WouldChange;
            } else if changed {
                status = Status::Changed;
            }
        }
        let output = Output::new(status, rc, stdout.clone(), stderr.clone());
        Finished {
            node: self.node,
            status,
            rc,
            stdout,
            stderr,
            message,
            duration: Duration::ZERO,
            output,
            rerun: false,
            resolved_by: None,
            artifacts,
            attempts: attempt,
        }
    }

    /// Fetches the files `cmd` asked to keep, as base64 over the same transport (so it works for
    /// `connection: local` too). A file that cannot be read fails the step: an artifact the
    /// runbook relies on (a lost-transaction file) must not go missing silently.
    async fn collect<R: Runner>(
        &self,
        runner: &R,
        cmd: &Command,
        op: &str,
        into: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), String> {
        use base64::Engine as _;
        for (j, artifact) in cmd.artifacts.iter().enumerate() {
            let exec = Exec {
                // Not `ATTEMPT.OP`: the resume probe must not count it as a command of the step.
                key: format!("{}/{op}.artifact{j}", self.key),
                script: format!(
                    "base64 < {} | tr -d '\\n'",
                    runbook_modules::quote(&artifact.path)
                ),
                timeout: Some(Duration::from_secs(600)),
                ..Exec::default()
            };
            let failed = |why: String| {
                format!(
                    "could not keep artifact `{}` from {}: {why}",
                    artifact.name, artifact.path
                )
            };
            let result = runner
                .run(self.host, exec)
                .await
                .map_err(|e| failed(e.to_string()))?;
            if result.code != Some(0) {
                return Err(failed(last_line(&String::from_utf8_lossy(&result.stderr))));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(result.stdout.trim_ascii())
                .map_err(|e| failed(format!("bad transfer: {e}")))?;
            let bytes = match String::from_utf8(bytes) {
                Ok(text) => self.masker.mask(&text).into_bytes(),
                Err(binary) => binary.into_bytes(),
            };
            into.push((artifact.name.clone(), bytes));
        }
        Ok(())
    }

    fn env_for(&self, cmd: &Command) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        for (name, value) in &cmd.env {
            if let Some(text) = value.as_str() {
                env.push((name.clone(), text.to_owned()));
            }
        }
        env
    }
}

fn describe_exit(code: Option<i32>) -> String {
    code.map_or_else(|| "a signal".to_owned(), |c| format!("code {c}"))
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// The remote commands of an action's operations.
pub fn commands(ops: &[Operation]) -> Vec<Command> {
    ops.iter()
        .filter_map(|op| match op {
            Operation::Remote(cmd) => Some(cmd.clone()),
            Operation::Transfer(_) | Operation::Manual { .. } | Operation::Assert { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_records_are_read_conservatively() {
        assert_eq!(parse_probe("none\n", 1), HostRecord::NotStarted);
        assert_eq!(parse_probe("1.0 0 0\n", 1), HostRecord::Done);
        assert_eq!(parse_probe("1.0 - 1\n", 1), HostRecord::Running);
        assert_eq!(
            parse_probe("1.0 - 0\n", 1),
            HostRecord::Unknown,
            "killed without an exit code"
        );
        assert_eq!(
            parse_probe("1.0 0 0\n", 2),
            HostRecord::Unknown,
            "only one of two commands ran"
        );
        assert_eq!(
            parse_probe("1.0 3 0\n2.0 0 0\n", 1),
            HostRecord::Done,
            "the last attempt counts"
        );
        assert_eq!(parse_probe("1.0 0 0\n1.1 2 0\n", 2), HostRecord::Failed(2));
        assert_eq!(
            parse_probe("1.0 137 0\n", 1),
            HostRecord::Unknown,
            "killed: maybe it did its work"
        );
    }
}
