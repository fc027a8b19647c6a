//! `runbook runs`, `status`, `abandon`, `resolve`: reading and steering recorded runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use runbook::journal::{Backend, RunState};

use super::args::ResolveArgs;
use super::outcome::{CliError, Outcome};

/// The journal of `state`: the shared one when it is a `postgres://` URL (its schema migrates
/// itself there), else the SQLite journal of the directory, which must exist: a command that
/// finds none creates none (it would leave a stray `.runbook` behind and hide where the runs
/// are).
/// A journal that is there but cannot be opened is the environment failing (exit 7).
pub fn open(state: &Path) -> Result<Box<dyn Backend>, CliError> {
    let shared = state
        .to_str()
        .is_some_and(runbook::journal::postgres::is_url);
    if !shared && !state.join("journal.db").exists() {
        return Err(CliError::Invalid(format!(
            "no runs recorded in {}{}",
            state.display(),
            elsewhere(state)
        )));
    }
    runbook::journal::open(state).map_err(CliError::environment)
}

/// Where a run was looked for, for a message about a run not found there.
pub fn looked_in(journal: &dyn Backend, state: &Path) -> String {
    if journal.shared() {
        journal.location()
    } else {
        format!("{}{}", state.display(), elsewhere(state))
    }
}

/// Where else to look, for a message about a run not found in `state`.
pub fn elsewhere(state: &Path) -> String {
    format!(
        " (runs are recorded in `--state DIR`, else `${}`, else `{}` in the working directory; this command looked in {})",
        super::state::VARIABLE,
        super::state::DEFAULT,
        fs_err::canonicalize(state)
            .unwrap_or_else(|_| std::env::current_dir().unwrap_or_default().join(state))
            .display()
    )
}

pub fn list(state: &Path) -> Result<Outcome, CliError> {
    let journal = open(state)?;
    let runs = journal.runs().map_err(CliError::environment)?;
    let mut out = format!(
        "{:<26} {:<11} {:<28} {:<20} {:<24} {}\n",
        "RUN", "STATE", "RUNBOOK", "OPERATOR", "STARTED", "ENDED"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{:<26} {:<11} {:<28} {:<20} {:<24} {}",
            r.id,
            r.state.as_str(),
            format!("{} {}", r.runbook_name, r.runbook_version),
            r.operator,
            runbook::report::shown(&r.started_at),
            r.finished_at
                .as_deref()
                .map_or_else(|| "–".to_owned(), runbook::report::shown)
        );
    }
    print!("{out}");
    Ok(Outcome::Ok)
}

pub fn status(state: &Path, run: Option<&str>, json: bool) -> Result<Outcome, CliError> {
    let journal = open(state)?;
    // A journal that fails mid-read is the environment failing (exit 7); "no such run" is
    // said only when the journal answered and the run is not in it.
    let record = match run {
        Some(id) => journal.run(id),
        None => journal.runs().map(|r| r.into_iter().next()),
    }
    .map_err(CliError::environment)?;
    let Some(record) = record else {
        return Err(CliError::Invalid(format!(
            "no such run in {}",
            looked_in(journal.as_ref(), state)
        )));
    };
    let actions = journal.actions(&record.id).map_err(CliError::environment)?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &actions {
        *counts.entry(a.status.as_str()).or_default() += 1;
    }
    let used: i64 = actions.iter().filter_map(|a| a.duration_ms).sum();
    let steals = journal.steals(&record.id).map_err(CliError::environment)?;
    let pieces = journal.pieces(&record.id).map_err(CliError::environment)?;
    let outage = runbook::execute::Outage::from_pieces(&pieces);
    if json {
        let mut json = status_json(&record, &actions, &counts, used, &outage);
        if !steals.is_empty() {
            json["steals"] = serde_json::json!(steals);
        }
        println!("{json}");
        return Ok(Outcome::Ok);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}: {} {} ({})",
        record.id,
        record.runbook_name,
        record.runbook_version,
        record.state.as_str()
    );
    let _ = writeln!(
        out,
        "started {} by {}, ended {}; {} actions recorded",
        runbook::report::shown(&record.started_at),
        record.operator,
        record
            .finished_at
            .as_deref()
            .map_or_else(|| "–".to_owned(), runbook::report::shown),
        actions.len()
    );
    let _ = writeln!(
        out,
        "{}",
        counts
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    #[allow(clippy::cast_precision_loss)] // milliseconds of a run fit an f64 exactly
    let used = used as f64 / 1000.0;
    let _ = writeln!(out, "time in actions: {used:.1}s");
    for s in &steals {
        let _ = writeln!(
            out,
            "lease stolen from {} (epoch {}) by {} at {}: {}",
            s.from,
            s.epoch,
            s.by,
            runbook::report::shown(&s.at),
            s.reason
        );
    }
    for o in &outage {
        let _ = writeln!(out, "{}", o.describe());
    }
    if let Some(text) = &record.window {
        match runbook::window::WindowSpec::parse(text) {
            Ok(spec) => {
                let _ = writeln!(out, "{}", spec.position(super::commands::now()));
            }
            Err(e) => {
                let _ = writeln!(out, "window: {e}");
            }
        }
    }
    for a in &actions {
        let extra = a
            .message
            .as_deref()
            .map(|m| format!("  {m}"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {:<12} {}{extra}", a.status, a.action);
    }
    print!("{out}");
    Ok(Outcome::Ok)
}

/// `status --format json`: one object, keys sorted.
fn status_json(
    record: &runbook::journal::RunRecord,
    actions: &[runbook::journal::ActionRecord],
    counts: &BTreeMap<&str, usize>,
    used_ms: i64,
    outage: &[runbook::execute::Outage],
) -> serde_json::Value {
    #[allow(clippy::cast_precision_loss)] // milliseconds of a run fit an f64 exactly
    let secs = |ms: i64| ms as f64 / 1000.0;
    let span = |kind: runbook::execute::OutageKind| {
        outage.iter().find(|o| o.kind == kind).map(|o| {
            serde_json::json!({
                "total_secs": o.total().as_secs_f64(),
                "planned_secs": o.planned.as_secs_f64(),
                "complete": o.complete(),
                "pieces": o.pieces.iter().map(|p| serde_json::json!({
                    "generation": p.generation,
                    "started_at": p.started_at,
                    "duration_secs": p.duration.as_secs_f64(),
                    "ended": p.ended,
                })).collect::<Vec<_>>(),
            })
        })
    };
    serde_json::json!({
        "run_id": record.id,
        "runbook": record.runbook_name,
        "version": record.runbook_version,
        "state": record.state.as_str(),
        "operator": record.operator,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "window": record.window,
        "counts": counts,
        "time_in_actions_secs": secs(used_ms),
        "outage": span(runbook::execute::OutageKind::Outage),
        "freeze": span(runbook::execute::OutageKind::Freeze),
        "actions": actions.iter().map(|a| serde_json::json!({
            "action": a.action,
            "status": a.status,
            "attempt": a.attempt,
            "rc": a.rc,
            "duration_secs": a.duration_ms.map(secs),
            "message": a.message,
        })).collect::<Vec<_>>(),
    })
}

pub fn abandon(state: &Path, run: &str) -> Result<Outcome, CliError> {
    let journal = open(state)?;
    // The run's own lock (a directory) or lease (the shared journal), held by any apply or
    // resume of it while it lives; held here too, so none starts while the run is given up.
    let mut _run_lock = None;
    match journal.run(run).map_err(CliError::environment)? {
        Some(r) if r.state.resumable() => {
            if journal.shared() {
                match journal.claim(run) {
                    Ok(Ok(())) => {}
                    Ok(Err(held)) => {
                        return Err(CliError::Refused(format!(
                            "run {run} is {held}: it cannot be abandoned while a controller runs it; stop it first (or, if that controller is known to be gone, `runbook lock steal {run} --reason TEXT{}`)",
                            super::state::arg(state)
                        )));
                    }
                    Err(e) => return Err(CliError::environment(e)),
                }
            } else {
                let by = std::env::var("RUNBOOK_OPERATOR")
                    .or_else(|_| std::env::var("USER"))
                    .unwrap_or_default();
                match runbook::lock::acquire_run(state, run, &by) {
                    Ok(lock) => _run_lock = Some(lock),
                    Err(e @ runbook::lock::LockError::Held { .. }) => {
                        return Err(CliError::Refused(format!(
                            "{e}: it cannot be abandoned while it runs; stop it first"
                        )));
                    }
                    Err(e) => return Err(CliError::environment(e)),
                }
            }
        }
        _ => {}
    }
    match journal.run(run).map_err(CliError::environment)? {
        Some(r) if r.state.resumable() => {
            let done = journal
                .set_state(run, RunState::Abandoned)
                .and_then(|()| journal.release(run));
            done.map_err(CliError::environment)?;
            println!("abandoned run {run}: the next apply starts a new run");
            Ok(Outcome::Ok)
        }
        Some(r) => Err(CliError::Invalid(format!(
            "run {run} is {}: nothing to abandon",
            r.state.as_str()
        ))),
        None => Err(CliError::Invalid(format!(
            "no run `{run}` in {}",
            looked_in(journal.as_ref(), state)
        ))),
    }
}

pub fn resolve(args: &ResolveArgs) -> Result<Outcome, CliError> {
    let state = args.state.dir();
    let journal = open(&state)?;
    let known = journal
        .actions(&args.run)
        .map_err(CliError::environment)?
        .into_iter()
        .any(|a| a.action == args.action);
    if !known {
        return Err(CliError::Invalid(format!(
            "run `{}` has no recorded action `{}`",
            args.run, args.action
        )));
    }
    let decision = if args.done { "done" } else { "redo" };
    let by = if args.by.is_empty() {
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    } else {
        args.by.clone()
    };
    journal
        .decide(&args.run, &args.action, decision, &by)
        .map_err(CliError::environment)?;
    println!(
        "{} of run {}: {decision} (by {by}); `runbook resume {}{}` goes on",
        args.action,
        args.run,
        args.run,
        super::state::arg(&state)
    );
    Ok(Outcome::Ok)
}
