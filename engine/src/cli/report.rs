//! Rendering diagnostics: miette's graphical report for people (colour only on a terminal and
//! without `NO_COLOR`), JSON lines for tools.

use std::io::{IsTerminal, Write};

use miette::{GraphicalReportHandler, GraphicalTheme, JSONReportHandler};
use runbook::diagnostic::Diagnostic;

use super::args::DiagnosticFormat;

pub fn diagnostics(list: &[Diagnostic], format: DiagnosticFormat) {
    let mut stderr = std::io::stderr().lock();
    match format {
        DiagnosticFormat::Json => {
            for d in list {
                let mut line = String::new();
                if JSONReportHandler::new().render_report(&mut line, d).is_ok() {
                    let _ = writeln!(stderr, "{line}");
                }
            }
        }
        DiagnosticFormat::Human => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let theme = if color {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            };
            let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
            for d in list {
                let mut out = String::new();
                if handler.render_report(&mut out, d).is_ok() {
                    let _ = write!(stderr, "{out}");
                }
                if let Some((file, line, col)) = d.location() {
                    let _ = writeln!(stderr, "  at {file}:{line}:{col}\n");
                }
            }
            let n = list.len();
            let _ = writeln!(
                stderr,
                "error: {n} problem{} found; nothing was run",
                if n == 1 { "" } else { "s" }
            );
        }
    }
}
