//! Journal buffering: the transitions of a run, group-committed through its [`RunLog`].
//!
//! `started` must be durable before its command is sent, and a result before anything that
//! depends on it starts; nothing requires a result to be durable sooner. So transitions wait
//! in a buffer and are written in one transaction just before the next batch of actions is
//! sent (and once more at the end of the run): the results of one step on many hosts share one
//! commit with the next step's `started`s. A crash before a result is written is settled from
//! the host's own record of the command, never by running it again.

use std::time::Duration;

use petgraph::graph::NodeIndex;

use crate::event::{RunStatus, Status};
use crate::journal::{Entry, RunState};
use crate::plan::{Action, Plan};

use super::outputs::Output;
use super::run_log::{ActionFiles, RunLog};

pub(super) struct Record {
    log: Box<dyn RunLog>,
    /// Transitions not yet written.
    buffer: Vec<Entry>,
}

/// A settled or finished action, as the journal records it.
pub(super) struct Transition<'a> {
    pub status: Status,
    pub rc: Option<i32>,
    pub duration: Duration,
    /// Masked.
    pub message: Option<String>,
    pub output: &'a Output,
}

impl Record {
    pub fn new(log: Box<dyn RunLog>) -> Self {
        Self {
            log,
            buffer: Vec::new(),
        }
    }

    /// Buffers `action`'s `started`.
    pub fn started(&mut self, plan: &Plan, node: NodeIndex, action: &Action) {
        if !self.log.journaled() {
            return;
        }
        let step = &plan.steps[action.step];
        self.buffer.push(Entry::Started {
            action: plan.action_id(action),
            step: step.id.clone(),
            host: plan.host_name(action.host).to_owned(),
            definition_fp: plan.definition_fingerprint(node).to_owned(),
            attempt: 1,
        });
    }

    /// Buffers how `action` ended.
    pub fn finished(&mut self, plan: &Plan, node: NodeIndex, action: &Action, t: Transition<'_>) {
        if !self.log.journaled() {
            return;
        }
        let step = &plan.steps[action.step];
        self.buffer.push(Entry::Finished {
            action: plan.action_id(action),
            step: step.id.clone(),
            host: plan.host_name(action.host).to_owned(),
            definition_fp: plan.definition_fingerprint(node).to_owned(),
            status: t.status.as_str().to_owned(),
            rc: t.rc,
            duration: t.duration,
            message: t.message,
            output: step.register.as_ref().map(|r| {
                (
                    r.clone(),
                    serde_json::to_string(t.output).unwrap_or_default(),
                )
            }),
        });
    }

    /// Writes the buffered transitions in one transaction; `Err` says why not (the run halts).
    ///
    /// The jobs a failed commit was for are not sent (their `started` is not on disk). Its
    /// results stay buffered for one more try at the end; if that fails too they are lost, and
    /// the actions stay `started` in the journal: the next apply settles them from the hosts'
    /// records, which are kept because the run did not succeed.
    pub fn commit(&mut self) -> Result<(), String> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.buffer);
        self.log.commit(&entries).map_err(|e| {
            self.buffer = entries
                .into_iter()
                .filter(|e| matches!(e, Entry::Finished { .. }))
                .collect();
            format!("the journal could not record the run: {e}")
        })
    }

    /// Before a batch is sent: whether the run may still start anything.
    pub fn still_held(&self) -> Result<(), String> {
        self.log
            .still_held()
            .map_err(|e| format!("the journal could not record the run: {e}"))
    }

    /// Records how the run ended, before `run_finished` says so. A run is `succeeded` only once
    /// the journal has it: until then the CLI keeps the hosts' records, and the run stays
    /// `running` in the journal, which the next apply resumes.
    pub fn end(&mut self, status: RunStatus) -> Result<(), String> {
        if !self.log.journaled() {
            return Ok(());
        }
        let state = match status {
            RunStatus::Succeeded => RunState::Succeeded,
            RunStatus::Failed => RunState::Failed,
            RunStatus::AwaitingApproval => RunState::Waiting,
            RunStatus::Paused => RunState::Paused,
            RunStatus::Interrupted | RunStatus::Unrecorded => RunState::Interrupted,
        };
        self.log
            .end(state)
            .map_err(|e| format!("the journal could not record how the run ended: {e}"))
    }

    /// Keeps an action's files in the run directory; `Err` says why not (the run halts).
    pub fn keep_output(&mut self, id: &str, files: &ActionFiles<'_>) -> Result<(), String> {
        self.log
            .keep_output(id, files)
            .map_err(|e| format!("the output of {id} could not be kept: {e}"))
    }

    /// Keeps an artifact; says where, or why not (the run halts).
    pub fn keep_artifact(&mut self, id: &str, name: &str, bytes: &[u8]) -> Result<String, String> {
        self.log
            .keep_artifact(id, name, bytes)
            .map_err(|e| format!("the artifact `{name}` of {id} could not be kept: {e}"))
    }
}
