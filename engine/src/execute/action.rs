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

/// Everything a running action needs, owned (it runs in its own task).
pub struct Job {
    pub node: petgraph::graph::NodeIndex,
    pub plan: Arc<Plan>,
    pub step: usize,
    pub host: HostId,
    /// `RUN/step@host`, where the wrapper keeps its state on the host.
    pub key: String,
    pub commands: Vec<Command>,
    pub env: Vec<(String, String)>,
    /// `--dry-run`: the commands are read-only checks whose exit code says 0 = in state,
    /// 1 = would change.
    pub check_only: bool,
    /// Outputs visible to the action, for `until:`.
    pub visible: Vec<(String, TValue)>,
    pub masker: Arc<Masker>,
    /// Called when an attempt starts (attempt number, 1-based) and when one is retried.
    pub progress: tokio::sync::mpsc::UnboundedSender<Progress>,
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
}

impl Job {
    pub async fn run<R: Runner>(self, runner: &R) -> Finished {
        let started = Instant::now();
        let step = &self.plan.steps[self.step];
        let attempts = if self.check_only { 1 } else { step.retries + 1 };
        let mut last = None;
        for attempt in 1..=attempts {
            let _ = self.progress.send(Progress::Started {
                node: self.node,
                attempt,
            });
            let outcome = self.attempt(runner, attempt).await;
            let retry_reason = match &outcome.status {
                // A dropped host or a timeout is never run again behind the operator's back.
                Status::Unreachable | Status::TimedOut => None,
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
                tokio::time::sleep(delay).await;
            }
        }
        let (mut outcome, reason, failed_until) = last.expect("at least one attempt ran");
        if failed_until {
            outcome.status = Status::Failed;
            outcome.message = reason.map(|r| format!("{r} after {attempts} attempt(s)"));
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
        for (i, cmd) in self.commands.iter().enumerate() {
            let exec = Exec {
                key: format!("{}/{attempt}.{i}", self.key),
                script: cmd.script.clone(),
                env: self.env_for(cmd),
                stdin: cmd
                    .stdin
                    .as_ref()
                    .and_then(|v| v.as_str().map(|s| s.as_bytes().to_vec()))
                    .unwrap_or_default(),
                timeout: self.plan.steps[self.step].timeout,
            };
            match runner.run(self.host, exec).await {
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
                        changed |= cmd.mutating && !unchanged;
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
                    status = match e {
                        TransportError::TimedOut { .. } => Status::TimedOut,
                        TransportError::Unreachable { .. } | TransportError::HostKey { .. } => {
                            Status::Unreachable
                        }
                    };
                    rc = None;
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
        }
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
            Operation::Manual { .. } | Operation::Assert { .. } => None,
        })
        .collect()
}
