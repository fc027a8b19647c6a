//! `runbook report`: the run report of one run (the newest by default), and the copies written
//! into the run directory when a run ends.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use runbook::journal::Journal;
use runbook::report::{Report, html, markdown};

use super::args::ReportFormat;
use super::exit;

fn build(state: &Path, run: Option<&str>) -> Result<Report, String> {
    let journal = Journal::open(state).map_err(|e| e.to_string())?;
    let record = match run {
        Some(id) => journal.run(id).map_err(|e| e.to_string())?,
        None => journal
            .runs()
            .map_err(|e| e.to_string())?
            .into_iter()
            .next(),
    };
    let Some(record) = record else {
        return Err(match run {
            Some(id) => format!("no run `{id}` in {}", state.display()),
            None => format!("no run recorded in {}", state.display()),
        });
    };
    let history = journal.history(&record.id).map_err(|e| e.to_string())?;
    let run_dir = state.join("runs").join(&record.id);
    Ok(Report::build(&record, &history, &run_dir))
}

fn render(report: &Report, format: ReportFormat) -> String {
    match format {
        ReportFormat::Json => report.json(),
        ReportFormat::Md => markdown(report),
        ReportFormat::Html => html(report),
    }
}

pub fn run(state: &Path, run: Option<&str>, format: ReportFormat, out: Option<&PathBuf>) -> u8 {
    let report = match build(state, run) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let text = render(&report, format);
    let Some(path) = out else {
        let _ = std::io::stdout().write_all(text.as_bytes());
        return exit::OK;
    };
    match fs_err::write(path, text) {
        Ok(()) => exit::OK,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            exit::NOT_RECORDED
        }
    }
}

/// Writes `report.json`, `report.md` and `report.html` into the run directory. The report is
/// evidence derived from the journal, not the record itself: a failure here is said, and the
/// run's outcome and exit code stay what the journal recorded (`runbook report RUN` makes it
/// again).
pub fn write_into_run_dir(state: &Path, run_id: &str) {
    let written = build(state, Some(run_id)).and_then(|report| {
        let dir = state.join("runs").join(run_id);
        for (name, format) in [
            ("report.json", ReportFormat::Json),
            ("report.md", ReportFormat::Md),
            ("report.html", ReportFormat::Html),
        ] {
            fs_err::write(dir.join(name), render(&report, format)).map_err(|e| e.to_string())?;
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
