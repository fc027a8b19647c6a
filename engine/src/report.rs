//! The run report: the evidence a change ticket wants after a planned outage. What ran, where,
//! when, by whom, how long, what an operator decided, and a suggested close code.
//!
//! Built from the journal and the run directory only (never from the hosts), so it can be made
//! again at any time (`runbook report RUN`) and says exactly what was recorded. Rendered as JSON
//! (versioned, [`FORMAT_VERSION`]), Markdown for pasting into a ticket, and one self-contained
//! HTML page with an SVG timeline ([`html`]).

mod html;
mod markdown;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::journal::{Approval, Decision, History, RunRecord, fingerprint};

pub use html::html;
pub use markdown::markdown;

/// The version of the JSON report's shape. Fields may be added within a version; a rename or a
/// removal bumps it.
pub const FORMAT_VERSION: u32 = 1;

/// How much of an action's output the report quotes (its last lines); the whole output stays
/// in the run directory, and its SHA-256 is in the report.
const EXCERPT_LINES: usize = 8;
const EXCERPT_BYTES: usize = 1500;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub run_id: String,
    pub runbook: RunbookRef,
    pub operator: String,
    pub state: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub inventory: FileRef,
    /// The `-e` parameters the run was started with (secrets are never among them: they are
    /// refused on the command line).
    pub params: BTreeMap<String, String>,
    pub window: Window,
    /// The outage (from the start of the first action of the first `outage: true` phase to the
    /// end of the last one's), planned and actual, in the pieces of the applies that went
    /// through it; `None` for a runbook without outage phases, or a run that never reached one.
    pub outage: Option<Outage>,
    /// The write freeze inside it, where the runbook marks one (`freeze: start`/`end`).
    pub freeze: Option<Outage>,
    /// How many times the run was started: 1, plus one per resume.
    pub starts: u32,
    pub actions: Vec<ActionReport>,
    pub approvals: Vec<Approval>,
    pub decisions: Vec<Decision>,
    /// The `runbook lock steal`s of the run's lease (the shared journal only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steals: Vec<crate::journal::Steal>,
    pub artifacts: Vec<Artifact>,
    pub close: Close,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunbookRef {
    pub name: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileRef {
    pub file: String,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Window {
    /// The outage window the run kept to, as given (`--window`), if any.
    pub planned: Option<String>,
    /// That window's occurrence the run started in (or the next one after its start).
    pub planned_span: Option<Span>,
    /// From the first action's start to the last action's end.
    pub used: Option<Span>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Span {
    pub start: String,
    pub end: String,
    pub secs: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActionReport {
    pub action: String,
    pub step: String,
    pub host: String,
    pub status: String,
    pub rc: Option<i32>,
    pub attempts: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_secs: Option<f64>,
    pub message: Option<String>,
    /// How many times it was started across the run's starts (more than `attempts` when an
    /// interruption came in between).
    pub starts: usize,
    pub output: Option<Output>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Output {
    /// The last lines of standard output, then of standard error (as recorded: secrets masked).
    pub excerpt: String,
    pub stdout_bytes: u64,
    pub stdout_sha256: String,
    pub stderr_bytes: u64,
    pub stderr_sha256: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Artifact {
    pub action: String,
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    /// Lines in it: for a lost-transaction file, about the number of transactions kept.
    pub lines: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outage {
    pub planned_secs: f64,
    /// The pieces added up.
    pub actual_secs: f64,
    /// Whether it reached its end (its last action succeeded).
    pub complete: bool,
    pub pieces: Vec<Span>,
}

/// The suggested close code of the change.
#[derive(Clone, Debug, Serialize)]
pub struct Close {
    /// `successful`, `successful_with_issues` or `unsuccessful`.
    pub code: &'static str,
    pub reason: String,
}

impl Report {
    /// The report of `run` from its journal record, history and run directory.
    pub fn build(run: &RunRecord, history: &History, run_dir: &Path) -> Self {
        let params = serde_json::from_str::<Vec<String>>(&run.params)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect();
        let mut starts: BTreeMap<&str, usize> = BTreeMap::new();
        for t in history.transitions.iter().filter(|t| t.status == "started") {
            *starts.entry(t.action.as_str()).or_default() += 1;
        }
        let actions: Vec<ActionReport> = history
            .actions
            .iter()
            .map(|a| ActionReport {
                action: a.action.clone(),
                step: a.step.clone(),
                host: a.host.clone(),
                status: a.status.clone(),
                rc: a.rc,
                attempts: attempts(&run_dir.join("actions").join(&a.action)).unwrap_or(a.attempt),
                started_at: a.started_at.clone(),
                finished_at: a.finished_at.clone(),
                #[allow(clippy::cast_precision_loss)] // milliseconds of one action
                duration_secs: a.duration_ms.map(|ms| ms as f64 / 1000.0),
                message: a.message.clone(),
                starts: starts.get(a.action.as_str()).copied().unwrap_or(0),
                output: output(&run_dir.join("actions").join(&a.action)),
            })
            .collect();
        let used = used_window(&actions);
        let artifacts = artifacts(run_dir, &actions);
        let close = close(run, history, &actions);
        Self {
            format_version: FORMAT_VERSION,
            run_id: run.id.clone(),
            runbook: RunbookRef {
                name: run.runbook_name.clone(),
                version: run.runbook_version.clone(),
                file: run.runbook_file.clone(),
                sha256: run.runbook_fp.clone(),
            },
            operator: run.operator.clone(),
            state: run.state.as_str().to_owned(),
            started_at: run.started_at.clone(),
            finished_at: run.finished_at.clone(),
            inventory: FileRef {
                file: run.inventory_file.clone(),
                sha256: run.inventory_fp.clone(),
            },
            params,
            window: Window {
                planned: run.window.clone(),
                planned_span: planned_span(run),
                used,
            },
            outage: outage(history, "outage"),
            freeze: outage(history, "freeze"),
            starts: history.generation.max(1),
            actions,
            approvals: history.approvals.clone(),
            decisions: history.decisions.clone(),
            steals: history.steals.clone(),
            artifacts,
            close,
        }
    }

    /// The JSON report, pretty-printed.
    pub fn json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).expect("a report always serializes");
        out.push('\n');
        out
    }

    /// The facts at the head of the Markdown and HTML reports, as `(label, text)`, in order:
    /// files (each written by `file(path, sha256)`), who, when, windows, outage and freeze.
    pub fn facts(&self, file: impl Fn(&str, &str) -> String) -> Vec<(&'static str, String)> {
        let mut facts = vec![
            ("runbook", file(&self.runbook.file, &self.runbook.sha256)),
            (
                "inventory",
                file(&self.inventory.file, &self.inventory.sha256),
            ),
            ("operator", self.operator.clone()),
            ("outcome", self.state.clone()),
            ("started", shown(&self.started_at)),
            (
                "finished",
                self.finished_at
                    .as_deref()
                    .map_or_else(|| "–".into(), shown),
            ),
            ("starts", format!("{} (1 + resumes)", self.starts)),
            (
                "window planned",
                self.window.planned.clone().unwrap_or_else(|| "none".into()),
            ),
            (
                "window used",
                self.window.used.as_ref().map_or_else(
                    || "–".into(),
                    |u| format!("{} → {} ({:.1} s)", shown(&u.start), shown(&u.end), u.secs),
                ),
            ),
        ];
        for (name, o) in [("outage", &self.outage), ("write freeze", &self.freeze)] {
            if let Some(o) = o {
                facts.push((name, outage_line(o)));
            }
        }
        facts
    }

    /// The hosts in the order their first action appears.
    pub fn hosts(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = Vec::new();
        for a in &self.actions {
            if !hosts.contains(&a.host.as_str()) {
                hosts.push(&a.host);
            }
        }
        hosts
    }
}

/// `5.2 s in 2 pieces, planned 9.0 s` (and `NOT OVER` when it did not reach its end).
pub fn outage_line(o: &Outage) -> String {
    let pieces = if o.pieces.len() > 1 {
        format!(" in {} pieces", o.pieces.len())
    } else {
        String::new()
    };
    let over = if o.complete { "" } else { " (NOT OVER)" };
    format!(
        "{:.1} s{pieces}, planned {:.1} s{over}",
        o.actual_secs, o.planned_secs
    )
}

/// An instant as the Markdown and HTML reports show it: RFC 3339 to the millisecond.
pub fn shown(text: &str) -> String {
    parse_ts(text).map_or_else(|| text.to_owned(), |t| format!("{t:.3}"))
}

fn parse_ts(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

fn used_window(actions: &[ActionReport]) -> Option<Span> {
    let start = actions
        .iter()
        .filter_map(|a| a.started_at.as_deref().and_then(parse_ts))
        .min()?;
    let end = actions
        .iter()
        .filter_map(|a| a.finished_at.as_deref().and_then(parse_ts))
        .max()?;
    Some(Span {
        start: start.to_string(),
        end: end.to_string(),
        secs: end.duration_since(start).as_secs_f64().max(0.0),
    })
}

#[allow(clippy::cast_precision_loss)] // milliseconds of an outage
fn outage(history: &History, kind: &str) -> Option<Outage> {
    let pieces: Vec<_> = history.pieces.iter().filter(|p| p.kind == kind).collect();
    let last = pieces.last()?;
    let spans = pieces
        .iter()
        .filter_map(|p| {
            let start = parse_ts(&p.started_at)?;
            let end = start
                .checked_add(jiff::SignedDuration::from_millis(p.duration_ms))
                .ok()?;
            Some(Span {
                start: start.to_string(),
                end: end.to_string(),
                secs: p.duration_ms as f64 / 1000.0,
            })
        })
        .collect();
    Some(Outage {
        planned_secs: last.planned_ms as f64 / 1000.0,
        actual_secs: pieces.iter().map(|p| p.duration_ms).sum::<i64>() as f64 / 1000.0,
        complete: last.ended,
        pieces: spans,
    })
}

fn planned_span(run: &RunRecord) -> Option<Span> {
    let spec = crate::window::WindowSpec::parse(run.window.as_deref()?).ok()?;
    let at = parse_ts(&run.started_at)?;
    let o = spec.occurrence(at)?;
    let (start, end) = (o.start.timestamp(), o.end.timestamp());
    Some(Span {
        start: start.to_string(),
        end: end.to_string(),
        secs: end.duration_since(start).as_secs_f64(),
    })
}

/// The attempts the run directory's `result.json` counts (the journal has the number of the
/// attempt that started, not of the retries within it); `None` when it says nothing or 0 (an
/// action settled without running).
fn attempts(dir: &Path) -> Option<u32> {
    let text = fs_err::read_to_string(dir.join("result.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let n = u32::try_from(value.get("attempts")?.as_u64()?).ok()?;
    (n > 0).then_some(n)
}

fn output(dir: &Path) -> Option<Output> {
    let stdout = fs_err::read(dir.join("stdout")).ok()?;
    let stderr = fs_err::read(dir.join("stderr")).unwrap_or_default();
    let mut excerpt = String::new();
    for bytes in [&stdout, &stderr] {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[lines.len().saturating_sub(EXCERPT_LINES)..] {
            excerpt.push_str(line);
            excerpt.push('\n');
        }
    }
    if excerpt.len() > EXCERPT_BYTES {
        let mut cut = excerpt.len() - EXCERPT_BYTES;
        while !excerpt.is_char_boundary(cut) {
            cut += 1;
        }
        excerpt = format!("…{}", &excerpt[cut..]);
    }
    Some(Output {
        excerpt,
        stdout_bytes: stdout.len() as u64,
        stdout_sha256: fingerprint(&stdout),
        stderr_bytes: stderr.len() as u64,
        stderr_sha256: fingerprint(&stderr),
    })
}

fn artifacts(run_dir: &Path, actions: &[ActionReport]) -> Vec<Artifact> {
    let mut out = Vec::new();
    for a in actions {
        let dir = run_dir.join("actions").join(&a.action).join("artifacts");
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let Ok(bytes) = fs_err::read(dir.join(&name)) else {
                continue;
            };
            out.push(Artifact {
                action: a.action.clone(),
                lines: String::from_utf8_lossy(&bytes).lines().count(),
                bytes: bytes.len() as u64,
                sha256: fingerprint(&bytes),
                name,
            });
        }
    }
    out
}

fn close(run: &RunRecord, history: &History, actions: &[ActionReport]) -> Close {
    let count = |pred: &dyn Fn(&ActionReport) -> bool| actions.iter().filter(|a| pred(a)).count();
    if run.state.as_str() != "succeeded" {
        let failed = count(&|a| {
            matches!(
                a.status.as_str(),
                "failed" | "timed_out" | "unreachable" | "unknown"
            )
        });
        return Close {
            code: "unsuccessful",
            reason: format!(
                "the run ended `{}`{}",
                run.state.as_str(),
                if failed > 0 {
                    format!(", {failed} action(s) did not succeed")
                } else {
                    String::new()
                }
            ),
        };
    }
    let mut issues = Vec::new();
    let failed = count(&|a| matches!(a.status.as_str(), "failed" | "timed_out" | "unreachable"));
    if failed > 0 {
        issues.push(format!(
            "{failed} action(s) failed within the failure budget"
        ));
    }
    let retried = count(&|a| a.attempts > 1);
    if retried > 0 {
        issues.push(format!("{retried} action(s) needed retries"));
    }
    if !history.decisions.is_empty() {
        issues.push(format!(
            "{} outcome(s) decided by an operator (`runbook resolve`)",
            history.decisions.len()
        ));
    }
    if !history.steals.is_empty() {
        issues.push(format!(
            "its lease was stolen {} time(s) (`runbook lock steal`)",
            history.steals.len()
        ));
    }
    let interrupted = count(&|a| a.starts > 1);
    if interrupted > 0 {
        issues.push(format!(
            "{interrupted} action(s) were interrupted in flight and settled on resume"
        ));
    }
    if issues.is_empty() {
        Close {
            code: "successful",
            reason: if history.generation > 1 {
                format!(
                    "every action succeeded at its first attempt; the run stopped {} time(s) at a safe point (an approval, the window) and was resumed",
                    history.generation - 1
                )
            } else {
                "every action succeeded at its first attempt, without interruption".into()
            },
        }
    } else {
        Close {
            code: "successful_with_issues",
            reason: issues.join("; "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{ActionTimes, RunState};

    fn run(state: RunState) -> RunRecord {
        RunRecord {
            id: "R".into(),
            operator: "op".into(),
            started_at: "2026-12-03T22:00:00Z".into(),
            runbook_name: "rb".into(),
            runbook_version: "1".into(),
            runbook_file: "rb.yaml".into(),
            inventory_file: "inv.yaml".into(),
            runbook_fp: "f".into(),
            inventory_fp: "f".into(),
            params_fp: "f".into(),
            params: r#"["instance=A"]"#.into(),
            state,
            finished_at: None,
            window: Some("2026-12-03T21:00:00Z/2026-12-04T01:00:00Z".into()),
        }
    }

    fn action(id: &str, status: &str, attempt: u32) -> ActionTimes {
        ActionTimes {
            action: id.into(),
            step: id.split('@').next().unwrap_or_default().into(),
            host: id.split('@').nth(1).unwrap_or_default().into(),
            status: status.into(),
            attempt,
            started_at: Some("2026-12-03T22:00:01Z".into()),
            finished_at: Some("2026-12-03T22:00:03Z".into()),
            duration_ms: Some(2000),
            rc: Some(0),
            message: None,
        }
    }

    fn code(run: &RunRecord, history: &History) -> &'static str {
        let dir = tempfile::tempdir().expect("tempdir");
        Report::build(run, history, dir.path()).close.code
    }

    #[test]
    fn the_close_code_follows_the_outcome_and_what_went_wrong_on_the_way() {
        let clean = History {
            actions: vec![action("a@x", "changed", 1), action("b@x", "ok", 1)],
            generation: 1,
            ..History::default()
        };
        assert_eq!(code(&run(RunState::Succeeded), &clean), "successful");
        assert_eq!(code(&run(RunState::Failed), &clean), "unsuccessful");
        assert_eq!(code(&run(RunState::Waiting), &clean), "unsuccessful");
        let mut tolerated = clean.clone();
        tolerated.actions.push(action("c@y", "failed", 1));
        assert_eq!(
            code(&run(RunState::Succeeded), &tolerated),
            "successful_with_issues"
        );
        let mut resolved = clean.clone();
        resolved.decisions.push(Decision {
            action: "a@x".into(),
            decision: "done".into(),
            by: "bob".into(),
            at: "2026-12-03T22:10:00Z".into(),
        });
        assert_eq!(
            code(&run(RunState::Succeeded), &resolved),
            "successful_with_issues"
        );
        let mut twice = clean.clone();
        for _ in 0..2 {
            twice.transitions.push(crate::journal::Transition {
                action: "a@x".into(),
                status: "started".into(),
                at: "2026-12-03T22:00:01Z".into(),
            });
        }
        twice.generation = 2;
        assert_eq!(
            code(&run(RunState::Succeeded), &twice),
            "successful_with_issues"
        );
        // Stopped at an approval and resumed: nothing went wrong.
        let mut approved = clean;
        approved.generation = 2;
        assert_eq!(code(&run(RunState::Succeeded), &approved), "successful");
    }

    #[test]
    fn the_report_carries_params_windows_and_renders_without_a_run_directory() {
        let history = History {
            actions: vec![action("a@x", "changed", 1)],
            generation: 1,
            ..History::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Report::build(&run(RunState::Succeeded), &history, dir.path());
        assert_eq!(r.params.get("instance").map(String::as_str), Some("A"));
        let planned = r.window.planned_span.as_ref().expect("a fixed window");
        assert!((planned.secs - 4.0 * 3600.0).abs() < 1e-6);
        let used = r.window.used.as_ref().expect("an action ran");
        assert!((used.secs - 2.0).abs() < 1e-6);
        assert!(r.actions[0].output.is_none(), "no run directory, no output");
        assert!(markdown(&r).contains("| `a@x` | changed | 0 | 1 |"));
        let page = html(&r);
        assert!(page.contains(r#"data-action="a@x""#) && page.contains("window-planned"));
        let json: serde_json::Value = serde_json::from_str(&r.json()).expect("JSON");
        assert_eq!(json["format_version"], FORMAT_VERSION);
    }
}
