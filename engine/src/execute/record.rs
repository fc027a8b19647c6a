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
use crate::journal::{Entry, Piece, RunState};
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

    /// The pieces of the outage that earlier applies of this run recorded (none without a
    /// journal, or when they cannot be read: the measure then starts from this apply).
    pub fn pieces(&self) -> Vec<Piece> {
        if !self.log.journaled() {
            return Vec::new();
        }
        self.log.pieces().unwrap_or_default()
    }

    /// Buffers the outage pieces that changed ([`super::outage::Tracker::entries`]), for the
    /// next commit.
    pub fn pieces_changed(&mut self, entries: Vec<Entry>) {
        if self.log.journaled() {
            self.buffer.extend(entries);
        }
    }

    /// Writes the buffered transitions in one transaction; `Err` says why not (the run halts).
    ///
    /// The jobs a failed commit was for are not sent (their `started` is not on disk). Its
    /// results and outage pieces stay buffered for one more try at the end; if that fails too they are lost, and
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
                .filter(|e| matches!(e, Entry::Finished { .. } | Entry::Piece(_)))
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::Record;
    use crate::execute::run_log::{ActionFiles, RecordError, RunLog};
    use crate::journal::{Entry, Piece, RunState};

    /// Fails its first commit, then keeps what each commit wrote.
    #[derive(Clone, Default)]
    struct Flaky {
        failed_once: Arc<Mutex<bool>>,
        written: Arc<Mutex<Vec<Vec<Entry>>>>,
    }

    impl RunLog for Flaky {
        fn journaled(&self) -> bool {
            true
        }
        fn commit(&mut self, entries: &[Entry]) -> Result<(), RecordError> {
            let mut failed = self.failed_once.lock().expect("lock");
            if !*failed {
                *failed = true;
                return Err(RecordError::Io(std::io::Error::other("disk full")));
            }
            self.written.lock().expect("lock").push(entries.to_vec());
            Ok(())
        }
        fn pieces(&self) -> Result<Vec<Piece>, RecordError> {
            Ok(Vec::new())
        }
        fn end(&mut self, _: RunState) -> Result<(), RecordError> {
            Ok(())
        }
        fn keep_output(&mut self, _: &str, _: &ActionFiles<'_>) -> Result<(), RecordError> {
            Ok(())
        }
        fn keep_artifact(&mut self, _: &str, _: &str, _: &[u8]) -> Result<String, RecordError> {
            Ok(String::new())
        }
    }

    fn piece(ms: i64) -> Entry {
        Entry::Piece(Piece {
            kind: "outage".into(),
            generation: 1,
            started_at: "2026-12-03T10:00:00Z".into(),
            duration_ms: ms,
            ended: false,
            planned_ms: 9000,
        })
    }

    #[test]
    fn outage_pieces_go_into_the_next_commit_and_survive_a_failed_one() {
        let log = Flaky::default();
        let mut record = Record::new(Box::new(log.clone()));
        record.pieces_changed(vec![piece(100)]);
        let e = record.commit().expect_err("the first commit fails");
        assert!(e.contains("disk full"), "{e}");
        record.pieces_changed(vec![piece(250)]);
        record.commit().expect("the second commit goes through");
        let written = log.written.lock().expect("lock");
        let durations: Vec<Vec<i64>> = written
            .iter()
            .map(|commit| {
                commit
                    .iter()
                    .map(|e| match e {
                        Entry::Piece(p) => p.duration_ms,
                        other => panic!("only pieces were buffered, got {other:?}"),
                    })
                    .collect()
            })
            .collect();
        // The failed commit's piece is kept and written before the newer one (an upsert: the
        // newer wins).
        assert_eq!(durations, vec![vec![100, 250]]);
    }
}
