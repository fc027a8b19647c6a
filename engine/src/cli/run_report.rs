//! `runbook report`: the run report of one run (the newest by default), and the copies written
//! into the run directory when a run ends.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use runbook::report::{Report, html, markdown};

use super::args::ReportFormat;
use super::outcome::{CliError, Outcome};

/// The report of a run. A journal that cannot be opened or read, and action files that cannot
/// be fetched, are the environment failing (exit 7); a run the journal does not hold is the
/// input being wrong (exit 2).
fn build(state: &Path, run: Option<&str>) -> Result<Report, CliError> {
    let shared = state
        .to_str()
        .is_some_and(runbook::journal::postgres::is_url);
    let journal = runbook::journal::open(state).map_err(CliError::environment)?;
    let record = match run {
        Some(id) => journal.run(id),
        None => journal.runs().map(|r| r.into_iter().next()),
    }
    .map_err(CliError::environment)?;
    let Some(record) = record else {
        return Err(CliError::Invalid(match run {
            Some(id) => format!("no run `{id}` in {}", journal.location()),
            None => format!("no run recorded in {}", journal.location()),
        }));
    };
    let history = journal.history(&record.id).map_err(CliError::environment)?;
    let run_dir = run_dir(state, &record.id);
    if shared {
        fetch_files(state, &record.id, &run_dir)?;
    }
    Ok(Report::build(&record, &history, &run_dir))
}

/// This controller's copy of a run's directory: in the state directory, or for the shared
/// journal in `./.runbook` (where `apply` keeps it).
fn run_dir(state: &Path, run: &str) -> PathBuf {
    let shared = state
        .to_str()
        .is_some_and(runbook::journal::postgres::is_url);
    let base = if shared {
        Path::new(super::state::DEFAULT)
    } else {
        state
    };
    base.join("runs").join(run)
}

/// Copies the actions' files the shared journal keeps (from whichever controller ran them)
/// into this controller's run directory, so the report reads them as for a local run.
fn fetch_files(state: &Path, run: &str, run_dir: &Path) -> Result<(), CliError> {
    let url = state.to_str().unwrap_or_default();
    let db = runbook::journal::postgres::Database::open(url).map_err(CliError::environment)?;
    for (action, name, content) in db.files(run).map_err(CliError::environment)? {
        // Names are the engine's own (`stdout`, `artifacts/NAME`); never a path out of the
        // run's directory.
        if action.contains('/') || name.split('/').any(|p| p.is_empty() || p == "..") {
            continue;
        }
        let path = run_dir.join("actions").join(&action).join(&name);
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir).map_err(CliError::environment)?;
        }
        fs_err::write(&path, content).map_err(CliError::environment)?;
    }
    Ok(())
}

fn render(report: &Report, format: ReportFormat) -> String {
    match format {
        ReportFormat::Json => report.json(),
        ReportFormat::Md => markdown(report),
        ReportFormat::Html => html(report),
    }
}

pub fn run(
    state: &Path,
    run: Option<&str>,
    format: ReportFormat,
    out: Option<&PathBuf>,
) -> Result<Outcome, CliError> {
    let report = build(state, run)?;
    let text = render(&report, format);
    let Some(path) = out else {
        let _ = std::io::stdout().write_all(text.as_bytes());
        return Ok(Outcome::Ok);
    };
    // A report that cannot be written is the environment failing, not a run's record: the
    // journal holds the run, and `runbook report` makes the report again.
    fs_err::write(path, text).map_err(CliError::environment)?;
    Ok(Outcome::Ok)
}

/// Writes `report.json`, `report.md` and `report.html` into the run directory. The report is
/// evidence derived from the journal, not the record itself: a failure here is said, and the
/// run's outcome and exit code stay what the journal recorded (`runbook report RUN` makes it
/// again).
pub fn write_into_run_dir(state: &Path, run_id: &str) {
    let written = build(state, Some(run_id)).and_then(|report| {
        let dir = run_dir(state, run_id);
        for (name, format) in [
            ("report.json", ReportFormat::Json),
            ("report.md", ReportFormat::Md),
            ("report.html", ReportFormat::Html),
        ] {
            fs_err::write(dir.join(name), render(&report, format))
                .map_err(CliError::environment)?;
        }
        Ok(())
    });
    if let Err(e) = written {
        let _ = writeln!(
            std::io::stderr(),
            "warning: the run report could not be written into the run directory ({e}); `runbook report {run_id}` makes it again"
        );
    }
}
