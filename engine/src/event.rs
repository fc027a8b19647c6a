//! What the engine tells the outside world while it runs. The engine never prints: it emits
//! these, and the CLI renders them (progress bars on a terminal, plain lines otherwise, JSON
//! lines with `--format json`). Secrets are masked before an event is built.

use serde::Serialize;

/// How one action ended (or why it did not run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Ran and changed nothing (a probe, or a module that found the host in the desired state).
    Ok,
    /// Ran and changed the host.
    Changed,
    /// Ran and failed (non-zero exit, failed `until`, failed assertion).
    Failed,
    /// Ran past its timeout and was stopped on the host.
    TimedOut,
    /// The host could not be reached, or dropped while the action ran: its effect is unknown.
    Unreachable,
    /// Not run: its `when:` was false, it is an `on_failure` step and nothing failed, or the host
    /// is outside `--limit`. Counts as success for the steps after it.
    Skipped,
    /// Not run because something it depends on did not succeed (or the run stopped).
    Blocked,
    /// A manual step waiting for `runbook approve`.
    AwaitingApproval,
    /// `--dry-run`: the read-only check says applying would change the host.
    WouldChange,
    /// `--dry-run`: the module has no read-only check; applying would run its command.
    WouldRun,
    /// Started before an interruption, and neither the host nor the module's check can tell
    /// whether it took effect: an operator decides with `runbook resolve`.
    Unknown,
}

impl Status {
    /// Whether steps that need this one may go on.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            Self::Ok | Self::Changed | Self::Skipped | Self::WouldChange | Self::WouldRun
        )
    }

    /// Whether this counts against the failure budget and triggers `on_failure` steps.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut | Self::Unreachable)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Changed => "changed",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Unreachable => "unreachable",
            Self::Skipped => "skipped",
            Self::Blocked => "blocked",
            Self::AwaitingApproval => "awaiting_approval",
            Self::WouldChange => "would_change",
            Self::WouldRun => "would_run",
            Self::Unknown => "unknown",
        }
    }

    /// The status recorded under `name` in the journal.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "ok" => Self::Ok,
            "changed" => Self::Changed,
            "failed" => Self::Failed,
            "timed_out" => Self::TimedOut,
            "unreachable" => Self::Unreachable,
            "skipped" => Self::Skipped,
            "blocked" => Self::Blocked,
            "awaiting_approval" => Self::AwaitingApproval,
            "would_change" => Self::WouldChange,
            "would_run" => Self::WouldRun,
            "unknown" => Self::Unknown,
            _ => return None,
        })
    }
}

/// Per-host totals for the closing summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostSummary {
    pub host: String,
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub timed_out: usize,
    pub unreachable: usize,
    pub skipped: usize,
    pub blocked: usize,
    pub awaiting_approval: usize,
    pub would_change: usize,
    pub would_run: usize,
    pub unknown: usize,
    pub duration_secs: f64,
}

/// How a whole run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    /// Stopped at a manual step that needs `runbook approve`, or at an action whose outcome
    /// needs `runbook resolve`.
    AwaitingApproval,
    /// Interrupted by the operator (Ctrl-C).
    Interrupted,
    /// Stopped at a safe point because of the outage window: before it opened, at its end, or
    /// before a step that would not fit. It resumes in the (next) window.
    Paused,
    /// Stopped because a write of the run's record failed (the journal or a file of the run
    /// directory: a full disk, say). Nothing more started; the hosts' records are kept, and
    /// `apply` resumes the run once the cause is fixed, settling what ran from the hosts.
    Unrecorded,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        runbook: String,
        version: String,
        actions: usize,
        hosts: usize,
        estimate_secs: f64,
        dry_run: bool,
    },
    PhaseStarted {
        phase: String,
        outage: bool,
    },
    ActionStarted {
        action: String,
        step: String,
        host: String,
        attempt: u32,
    },
    ActionRetrying {
        action: String,
        attempt: u32,
        delay_secs: f64,
        reason: String,
    },
    ActionFinished {
        action: String,
        step: String,
        host: String,
        status: Status,
        rc: Option<i32>,
        duration_secs: f64,
        /// Why it failed or was skipped, in one line.
        message: Option<String>,
    },
    AwaitingApproval {
        action: String,
        step: String,
        instructions: String,
    },
    /// Steps of outage phases are held by the window; with `--wait`, the run sleeps until
    /// `until`.
    WindowWaiting {
        /// Why (one line).
        message: String,
        /// RFC 3339.
        until: String,
    },
    /// The run stops at a safe point because of the outage window; `apply` resumes it.
    RunPaused {
        /// The first step held and why.
        action: String,
        message: String,
        /// When the next window opens (RFC 3339), if there is one.
        next_window: Option<String>,
        /// Actions not started.
        held: usize,
    },
    /// A write of the run's record failed: nothing more starts, and the run ends
    /// [`RunStatus::Unrecorded`]. Emitted once, at the first failure.
    RecordFailed {
        /// What could not be written and why (names the file and the cause).
        message: String,
    },
    /// A file from a host kept with the run (`Command::collect`).
    ArtifactKept {
        action: String,
        name: String,
        /// Where it is kept on the controller.
        path: String,
        bytes: u64,
    },
    /// An action recorded by an earlier, interrupted run of the same plan.
    ActionResumed {
        action: String,
        status: Status,
        /// How its outcome was known: recorded, the host's wrapper state, the module's check, or
        /// an operator's decision.
        how: String,
    },
    /// The run's outage began in this apply: the first action of its outage phases started
    /// (see [`crate::execute::Outage`]).
    OutageStarted {
        /// The action that started it.
        action: String,
        /// Which piece this is: 1, or more in a resumed run that was stopped inside it.
        piece: usize,
        /// The pieces recorded by earlier applies of the run, in seconds.
        earlier_secs: f64,
        /// The plan's estimate of the whole outage.
        planned_secs: f64,
    },
    /// The outage ended: every action of its outage phases is done and none failed; or the
    /// apply stopped inside it (`complete: false`), and a resume adds the next piece.
    OutageEnded {
        /// The last action that ended in it.
        action: Option<String>,
        /// This piece.
        duration_secs: f64,
        /// Every piece so far.
        total_secs: f64,
        pieces: usize,
        planned_secs: f64,
        complete: bool,
    },
    /// Like `outage_started`, for the write freeze (`freeze: start`).
    FreezeStarted {
        action: String,
        piece: usize,
        earlier_secs: f64,
        planned_secs: f64,
    },
    /// Like `outage_ended`, for the write freeze (`freeze: end`).
    FreezeEnded {
        action: Option<String>,
        duration_secs: f64,
        total_secs: f64,
        pieces: usize,
        planned_secs: f64,
        complete: bool,
    },
    RunFinished {
        run_id: String,
        status: RunStatus,
        duration_secs: f64,
        hosts: Vec<HostSummary>,
        /// Where every action's full output is kept.
        run_dir: String,
    },
}

/// An event as a JSON line carries it (`--format json`): `ts`, when it happened (RFC 3339 with
/// milliseconds), and `run_id`, then the event's own fields. The events that name their run
/// themselves (`run_started`, `run_finished`) carry `run_id` once, in their own place.
#[derive(Debug, Serialize)]
pub struct Stamped<'a> {
    pub ts: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<&'a str>,
    #[serde(flatten)]
    pub event: &'a Event,
}

impl<'a> Stamped<'a> {
    pub fn new(ts: &'a str, run_id: &'a str, event: &'a Event) -> Self {
        let own = matches!(event, Event::RunStarted { .. } | Event::RunFinished { .. });
        Self {
            ts,
            run_id: (!own).then_some(run_id),
            event,
        }
    }
}

/// Receives events. Implemented by the CLI's renderers and by tests.
pub trait Sink: Send {
    fn emit(&mut self, event: &Event);

    /// Called before the executor waits (for a command, a window): a sink that buffers writes
    /// out what it holds, so events are never late while bursts (50,000 resumed actions) cost
    /// one write.
    fn flush(&mut self) {}
}

/// Collects events in memory.
#[derive(Debug, Default)]
pub struct Recorder(pub Vec<Event>);

impl Sink for Recorder {
    fn emit(&mut self, event: &Event) {
        self.0.push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One event of every kind. The match in [`name`] has no wildcard: a new variant does not
    /// compile until it is named there, and [`every_kind_has_a_sample`] then wants a sample here
    /// (and the docs test wants it in docs/events.md).
    fn samples() -> Vec<Event> {
        let action = || "stop-source@a".to_owned();
        vec![
            Event::RunStarted {
                run_id: "R1".into(),
                runbook: "switchover".into(),
                version: "1.2.0".into(),
                actions: 27,
                hosts: 2,
                estimate_secs: 95.5,
                dry_run: false,
            },
            Event::PhaseStarted {
                phase: "switch".into(),
                outage: true,
            },
            Event::ActionStarted {
                action: action(),
                step: "stop-source".into(),
                host: "a".into(),
                attempt: 1,
            },
            Event::ActionRetrying {
                action: action(),
                attempt: 2,
                delay_secs: 5.0,
                reason: "exited with code 1".into(),
            },
            Event::ActionFinished {
                action: action(),
                step: "stop-source".into(),
                host: "a".into(),
                status: Status::Changed,
                rc: Some(0),
                duration_secs: 2.25,
                message: None,
            },
            Event::AwaitingApproval {
                action: "confirm@a".into(),
                step: "confirm".into(),
                instructions: "Confirm the application is stopped.".into(),
            },
            Event::WindowWaiting {
                message: "the outage window opens at 22:00".into(),
                until: "2026-12-03T22:00:00Z".into(),
            },
            Event::RunPaused {
                action: action(),
                message: "the window closes before it would end".into(),
                next_window: Some("2026-12-04T22:00:00Z".into()),
                held: 3,
            },
            Event::RecordFailed {
                message: "cannot write the journal in .runbook: No space left on device".into(),
            },
            Event::ArtifactKept {
                action: "rollback@a".into(),
                name: "lost.lost".into(),
                path: ".runbook/runs/R1/artifacts/rollback@a/lost.lost".into(),
                bytes: 120,
            },
            Event::ActionResumed {
                action: action(),
                status: Status::Changed,
                how: "recorded".into(),
            },
            Event::OutageStarted {
                action: "stop-source@a".into(),
                piece: 2,
                earlier_secs: 3.5,
                planned_secs: 70.0,
            },
            Event::OutageEnded {
                action: Some("rejoin@a".into()),
                duration_secs: 4.25,
                total_secs: 7.75,
                pieces: 2,
                planned_secs: 70.0,
                complete: true,
            },
            Event::FreezeStarted {
                action: "stop-source@a".into(),
                piece: 1,
                earlier_secs: 0.0,
                planned_secs: 30.0,
            },
            Event::FreezeEnded {
                action: None,
                duration_secs: 1.5,
                total_secs: 1.5,
                pieces: 1,
                planned_secs: 30.0,
                complete: false,
            },
            Event::RunFinished {
                run_id: "R1".into(),
                status: RunStatus::Succeeded,
                duration_secs: 61.0,
                hosts: vec![HostSummary {
                    host: "a".into(),
                    changed: 12,
                    duration_secs: 40.5,
                    ..HostSummary::default()
                }],
                run_dir: ".runbook/runs/R1".into(),
            },
        ]
    }

    fn name(event: &Event) -> &'static str {
        match event {
            Event::RunStarted { .. } => "run_started",
            Event::PhaseStarted { .. } => "phase_started",
            Event::ActionStarted { .. } => "action_started",
            Event::ActionRetrying { .. } => "action_retrying",
            Event::ActionFinished { .. } => "action_finished",
            Event::AwaitingApproval { .. } => "awaiting_approval",
            Event::WindowWaiting { .. } => "window_waiting",
            Event::RunPaused { .. } => "run_paused",
            Event::RecordFailed { .. } => "record_failed",
            Event::ArtifactKept { .. } => "artifact_kept",
            Event::ActionResumed { .. } => "action_resumed",
            Event::OutageStarted { .. } => "outage_started",
            Event::OutageEnded { .. } => "outage_ended",
            Event::FreezeStarted { .. } => "freeze_started",
            Event::FreezeEnded { .. } => "freeze_ended",
            Event::RunFinished { .. } => "run_finished",
        }
    }

    fn line(event: &Event) -> serde_json::Map<String, serde_json::Value> {
        let json = serde_json::to_value(Stamped::new("2026-12-03T13:20:41.507Z", "R1", event))
            .expect("events serialize");
        let serde_json::Value::Object(map) = json else {
            panic!("an event is a JSON object")
        };
        map
    }

    #[test]
    fn every_kind_has_a_sample_whose_tag_is_its_name() {
        let samples = samples();
        let names: std::collections::BTreeSet<_> = samples.iter().map(name).collect();
        assert_eq!(names.len(), samples.len(), "one sample per kind");
        for event in &samples {
            assert_eq!(line(event)["event"], name(event));
        }
    }

    #[test]
    fn every_line_carries_ts_and_run_id_once() {
        for event in samples() {
            let map = line(&event);
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            assert_eq!(keys[0], "ts", "{keys:?}");
            assert_eq!(map["run_id"], "R1", "{keys:?}");
            assert_eq!(keys.iter().filter(|k| **k == "run_id").count(), 1);
            let ts = map["ts"].as_str().expect("a string");
            assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{ts}");
        }
    }

    #[test]
    fn the_json_lines_are_pinned() {
        let lines: Vec<String> = samples()
            .iter()
            .map(|e| serde_json::to_string(&line(e)).expect("serializes"))
            .collect();
        insta::assert_snapshot!("event_lines", lines.join("\n"));
    }

    /// docs/events.md has a section per event listing each of its fields, and nothing else.
    #[test]
    fn docs_events_md_lists_every_event_and_field() {
        let doc = fs_err::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md"))
            .expect("docs/events.md");
        let mut sections: std::collections::BTreeMap<&str, &str> =
            std::collections::BTreeMap::new();
        for part in doc.split("\n## `").skip(1) {
            let (title, body) = part.split_once('`').expect("a section title in backticks");
            sections.insert(title, body);
        }
        let samples = samples();
        for event in &samples {
            let body = sections
                .get(name(event))
                .unwrap_or_else(|| panic!("docs/events.md has no section `{}`", name(event)));
            for key in line(event).keys() {
                if matches!(key.as_str(), "ts" | "event") {
                    continue;
                }
                if key == "run_id"
                    && !matches!(event, Event::RunStarted { .. } | Event::RunFinished { .. })
                {
                    continue;
                }
                assert!(
                    body.contains(&format!("| `{key}` |")),
                    "docs/events.md: `{}` does not list its field `{key}`",
                    name(event)
                );
            }
        }
        let known: std::collections::BTreeSet<_> = samples.iter().map(name).collect();
        for title in sections.keys() {
            assert!(
                known.contains(title),
                "docs/events.md documents `{title}`, which is no event"
            );
        }
    }
}
