//! Rendering run events: progress bars on a terminal, plain lines otherwise, JSON lines on
//! request. Everything goes to stderr except JSON lines (stdout, for tools) and the closing
//! summary (stdout).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use runbook::clock::Clock;
use runbook::event::{Event, RunStatus, Sink, Stamped, Status};

/// Plain lines on stderr: one per action start, retry and end.
#[derive(Debug, Default)]
pub struct Plain;

impl Sink for Plain {
    fn emit(&mut self, event: &Event) {
        let line = match event {
            Event::RunStarted {
                run_id,
                runbook,
                version,
                actions,
                hosts,
                dry_run,
                estimate_secs,
            } => {
                let mode = if *dry_run {
                    " (dry run: read-only checks)"
                } else {
                    ""
                };
                // Lines are for logs: no redrawn ETA, but the plan's estimate up front.
                let estimate = runbook_modules::format_duration(Duration::from_secs_f64(
                    estimate_secs.max(0.0),
                ));
                format!(
                    "run {run_id}: {runbook} {version}, {actions} actions on {hosts} hosts{mode}; estimated {estimate} (the plan's critical path)"
                )
            }
            Event::PhaseStarted { phase, outage } => {
                format!(
                    "phase {phase}{}",
                    if *outage { " [outage window]" } else { "" }
                )
            }
            Event::ActionStarted {
                action, attempt, ..
            } => {
                if *attempt > 1 {
                    format!("  start   {action} (attempt {attempt})")
                } else {
                    format!("  start   {action}")
                }
            }
            Event::ActionRetrying {
                action,
                attempt,
                delay_secs,
                reason,
            } => {
                format!("  retry   {action} after attempt {attempt} in {delay_secs:.0}s: {reason}")
            }
            Event::ActionFinished {
                action,
                status,
                duration_secs,
                message,
                ..
            } => {
                let why = message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                format!(
                    "  {:<7} {action} ({duration_secs:.1}s){why}",
                    short(*status)
                )
            }
            Event::AwaitingApproval {
                action,
                instructions,
                ..
            } => {
                format!(
                    "  manual  {action} awaits approval:\n{}",
                    indent(instructions)
                )
            }
            Event::ActionResumed {
                action,
                status,
                how,
            } => {
                format!("  resumed {action}: {} ({how})", status.as_str())
            }
            Event::ArtifactKept { .. } => artifact_line(event),
            Event::WindowWaiting { .. } | Event::RunPaused { .. } => window_line(event),
            Event::RecordFailed { .. } => record_failed_line(event),
            Event::OutageStarted { .. }
            | Event::OutageEnded { .. }
            | Event::FreezeStarted { .. }
            | Event::FreezeEnded { .. } => outage_line(event),
            Event::RunFinished { .. } => return,
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// JSON lines on stdout, one event per line, written out whenever the run waits. Each line
/// carries `ts` (when the event happened, RFC 3339 with milliseconds, by the run's clock) and
/// `run_id` before the event's own fields (docs/events.md).
pub struct JsonLines {
    out: std::io::BufWriter<std::io::Stdout>,
    run_id: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLines")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl JsonLines {
    pub fn new(run_id: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
            run_id: run_id.to_owned(),
            clock,
        }
    }
}

impl Sink for JsonLines {
    fn emit(&mut self, event: &Event) {
        let ts = format!("{:.3}", self.clock.now());
        let _ = serde_json::to_writer(&mut self.out, &Stamped::new(&ts, &self.run_id, event));
        let _ = writeln!(self.out);
    }

    fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

impl Drop for JsonLines {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// Progress bars on a terminal: an overall bar with the ETA from the plan's estimates
/// ([`super::eta`]), and a line per host with the step(s) it is running and how many of its
/// actions are done.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    /// Shared with the overall bar's `{plan_eta}`, redrawn at every tick.
    eta: std::sync::Arc<std::sync::Mutex<super::eta::Eta>>,
    started: std::time::Instant,
    hosts: BTreeMap<String, HostLine>,
}

/// One host's line: what runs there now, and its count of actions.
struct HostLine {
    bar: ProgressBar,
    running: Vec<String>,
    done: usize,
    total: usize,
}

impl HostLine {
    fn render(&self, host: &str) {
        let now = if self.running.is_empty() {
            if self.done == self.total {
                "done".to_owned()
            } else {
                "waiting".to_owned()
            }
        } else {
            self.running.join(", ")
        };
        self.bar.set_prefix(format!("{host:<14}"));
        self.bar
            .set_message(format!("{}/{}  {now}", self.done, self.total));
    }
}

impl std::fmt::Debug for Bars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bars")
            .field("hosts", &self.hosts.len())
            .finish_non_exhaustive()
    }
}

impl Bars {
    pub fn new(plan: &runbook::plan::Plan) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        let started = std::time::Instant::now();
        let eta = std::sync::Arc::new(std::sync::Mutex::new(super::eta::Eta::of(plan)));
        let shown = eta.clone();
        overall.set_style(
            ProgressStyle::with_template(
                "{bar:40.cyan/blue} {pos}/{len} actions  {elapsed_precise} (eta {plan_eta})  {msg}",
            )
            .expect("the template is valid")
            .with_key(
                "plan_eta",
                move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    if let Ok(eta) = shown.lock() {
                        let _ = w.write_str(&eta.text(started.elapsed()));
                    }
                },
            )
            .progress_chars("=> "),
        );
        overall.enable_steady_tick(Duration::from_millis(200));
        let mut totals: BTreeMap<String, usize> = BTreeMap::new();
        for (_, a) in plan.actions() {
            *totals.entry(plan.host_name(a.host).to_owned()).or_default() += 1;
        }
        let hosts = totals
            .into_iter()
            .map(|(host, total)| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix} {msg}")
                        .expect("the template is valid"),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                let line = HostLine {
                    bar,
                    running: Vec::new(),
                    done: 0,
                    total,
                };
                line.render(&host);
                (host, line)
            })
            .collect();
        Self {
            multi,
            overall,
            eta,
            started,
            hosts,
        }
    }

    pub fn multi(&self) -> MultiProgress {
        self.multi.clone()
    }

    /// An action ended or was settled: the host's count, the ETA.
    fn ended(&mut self, action: &str) {
        if let Ok(mut eta) = self.eta.lock() {
            eta.finished(action, self.started.elapsed());
        }
        if let Some((step, host)) = action.rsplit_once('@')
            && let Some(line) = self.hosts.get_mut(host)
        {
            if let Some(i) = line.running.iter().position(|s| s == step) {
                line.running.remove(i);
            }
            line.done += 1;
            line.render(host);
        }
    }

    fn started(&mut self, action: &str, attempt: u32) {
        if let Some((step, host)) = action.rsplit_once('@')
            && let Some(line) = self.hosts.get_mut(host)
        {
            if !line.running.iter().any(|s| s == step) {
                line.running.push(step.to_owned());
            }
            line.render(host);
            if attempt > 1 {
                line.bar.set_message(format!(
                    "{}/{}  {} (attempt {attempt})",
                    line.done,
                    line.total,
                    line.running.join(", ")
                ));
            }
        }
    }
}

impl Sink for Bars {
    fn emit(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                actions,
                runbook,
                version,
                ..
            } => {
                self.overall.set_length(*actions as u64);
                self.overall.set_message(format!("{runbook} {version}"));
            }
            Event::PhaseStarted { phase, outage } => {
                let _ = self.multi.println(format!(
                    "phase {phase}{}",
                    if *outage { " [outage window]" } else { "" }
                ));
            }
            Event::ActionStarted {
                action, attempt, ..
            } => self.started(action, *attempt),
            Event::ActionRetrying { action, reason, .. } => {
                let _ = self.multi.println(format!("  retry   {action}: {reason}"));
            }
            Event::ActionFinished {
                action,
                status,
                duration_secs,
                message,
                ..
            } => {
                self.ended(action);
                let why = message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                let _ = self.multi.println(format!(
                    "  {:<7} {action} ({duration_secs:.1}s){why}",
                    short(*status)
                ));
                self.overall.inc(1);
            }
            Event::AwaitingApproval {
                action,
                instructions,
                ..
            } => {
                let _ = self.multi.println(format!(
                    "  manual  {action} awaits approval:\n{}",
                    indent(instructions)
                ));
            }
            Event::ActionResumed {
                action,
                status,
                how,
            } => {
                let _ = self
                    .multi
                    .println(format!("  resumed {action}: {} ({how})", status.as_str()));
                if status.is_success() {
                    self.overall.inc(1);
                    self.ended(action);
                }
            }
            Event::ArtifactKept { .. } => {
                let _ = self.multi.println(artifact_line(event));
            }
            Event::WindowWaiting { .. } | Event::RunPaused { .. } => {
                let _ = self.multi.println(window_line(event));
            }
            Event::RecordFailed { .. } => {
                let _ = self.multi.println(record_failed_line(event));
            }
            Event::OutageStarted { .. }
            | Event::OutageEnded { .. }
            | Event::FreezeStarted { .. }
            | Event::FreezeEnded { .. } => {
                let _ = self.multi.println(outage_line(event));
            }
            Event::RunFinished { .. } => {
                for line in self.hosts.values() {
                    line.bar.finish_and_clear();
                }
                self.overall.finish_and_clear();
            }
        }
    }
}

fn window_line(event: &Event) -> String {
    match event {
        Event::WindowWaiting { message, until } => {
            format!("  window  {message}; waiting until {until} (--wait)")
        }
        Event::RunPaused {
            action,
            message,
            next_window,
            held,
        } => {
            let next = next_window.as_deref().map_or_else(
                || "give a new --window".to_owned(),
                |t| format!("the next window opens at {t}"),
            );
            format!(
                "paused before {action}: {message}\n  {held} action(s) not started; `runbook apply` again resumes the run ({next})"
            )
        }
        _ => String::new(),
    }
}

/// `outage started by stop@a`, `outage ended after 5.2s (planned 9s)`; with the pieces of a
/// resumed run.
fn outage_line(event: &Event) -> String {
    let (what, started) = match event {
        Event::OutageStarted { .. } | Event::OutageEnded { .. } => ("outage", "started"),
        Event::FreezeStarted { .. } | Event::FreezeEnded { .. } => ("freeze", "started"),
        _ => return String::new(),
    };
    match event {
        Event::OutageStarted {
            action,
            piece,
            earlier_secs,
            ..
        }
        | Event::FreezeStarted {
            action,
            piece,
            earlier_secs,
            ..
        } => {
            let resumed = if *piece > 1 {
                format!(" (piece {piece}; {earlier_secs:.1}s in earlier applies)")
            } else {
                String::new()
            };
            format!("{what:<7} {started} by {action}{resumed}")
        }
        Event::OutageEnded {
            duration_secs,
            total_secs,
            pieces,
            planned_secs,
            complete,
            ..
        }
        | Event::FreezeEnded {
            duration_secs,
            total_secs,
            pieces,
            planned_secs,
            complete,
            ..
        } => {
            let planned = runbook_modules::format_duration(Duration::from_secs_f64(*planned_secs));
            let total = if *pieces > 1 {
                format!(", {total_secs:.1}s in {pieces} pieces")
            } else {
                String::new()
            };
            if *complete {
                format!("{what:<7} ended after {duration_secs:.1}s{total} (planned {planned})")
            } else {
                format!(
                    "{what:<7} NOT OVER: the run stopped inside it after {duration_secs:.1}s{total} (planned {planned}); a resume adds the next piece"
                )
            }
        }
        _ => String::new(),
    }
}

fn record_failed_line(event: &Event) -> String {
    match event {
        Event::RecordFailed { message } => format!(
            "STOPPED the run's state could not be recorded: {message}\n  nothing more starts; what runs now finishes"
        ),
        _ => String::new(),
    }
}

fn artifact_line(event: &Event) -> String {
    match event {
        Event::ArtifactKept {
            action,
            name,
            path,
            bytes,
        } => format!("  kept    {action}: {name} ({bytes} bytes) in {path}"),
        _ => String::new(),
    }
}

fn short(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Changed => "changed",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMEOUT",
        Status::Unreachable => "UNREACH",
        Status::Skipped => "skipped",
        Status::Blocked => "blocked",
        Status::AwaitingApproval => "manual",
        Status::WouldChange => "would",
        Status::WouldRun => "wouldrun",
        Status::Unknown => "UNKNOWN",
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The closing summary: per host, counts and time; then the run's outcome.
/// The closing summary. `state_arg` is ` --state DIR` when the run is not recorded in the
/// default directory, so the commands it suggests work when pasted.
pub fn summary(
    report: &runbook::execute::Report,
    run_dir: &std::path::Path,
    state_arg: &str,
) -> String {
    let run = &report.run_id;
    let mut out = String::new();
    let _ = std::fmt::Write::write_fmt(
        &mut out,
        format_args!(
            "{:<16} {:>4} {:>7} {:>6} {:>7} {:>7} {:>7} {:>7}  {:>8}\n",
            "host", "ok", "changed", "failed", "timeout", "unreach", "skipped", "blocked", "time"
        ),
    );
    for h in &report.hosts {
        let _ = std::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                "{:<16} {:>4} {:>7} {:>6} {:>7} {:>7} {:>7} {:>7}  {:>7.1}s\n",
                h.host,
                h.ok + h.would_change + h.would_run,
                h.changed,
                h.failed,
                h.timed_out,
                h.unreachable,
                h.skipped,
                h.blocked + h.awaiting_approval,
                h.duration_secs
            ),
        );
    }
    let outcome = match report.status {
        RunStatus::Succeeded => "succeeded".to_owned(),
        RunStatus::Failed => "FAILED".to_owned(),
        RunStatus::AwaitingApproval => format!(
            "stopped: a manual step awaits `runbook approve {run} STEP --by NAME --reason TEXT{state_arg}`, or an action's outcome is unknown (`runbook resume {run}{state_arg}` settles it from its host's record when that tells, else `runbook resolve {run} STEP@HOST --done|--redo{state_arg}`; `runbook status {run}{state_arg}` shows which)"
        ),
        RunStatus::Interrupted => format!(
            "INTERRUPTED (resume it with `runbook apply` or `runbook resume {run}{state_arg}`)"
        ),
        RunStatus::Paused => format!(
            "PAUSED at the outage window (resume it with `runbook apply` or `runbook resume {run}{state_arg}`)"
        ),
        RunStatus::Unrecorded => format!(
            "STOPPED: its state could not be recorded (resume it with `runbook apply` or `runbook resume {run}{state_arg}` once it can be)"
        ),
    };
    for outage in &report.outage {
        out.push_str(&outage.describe());
        out.push('\n');
    }
    let _ = std::fmt::Write::write_fmt(
        &mut out,
        format_args!(
            "run {} {outcome} in {:.1}s; output of every action under {}\n",
            report.run_id,
            report.duration.as_secs_f64(),
            run_dir.display()
        ),
    );
    out
}
