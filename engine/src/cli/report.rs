//! Rendering diagnostics: miette's graphical report for people (colour only on a terminal and
//! without `NO_COLOR`), JSON lines for tools.

use std::io::{IsTerminal, Write};

use miette::{GraphicalReportHandler, GraphicalTheme};
use runbook::diagnostic::Diagnostic;

use super::args::DiagnosticFormat;

pub fn diagnostics(list: &[Diagnostic], format: DiagnosticFormat) {
    let mut stderr = std::io::stderr().lock();
    match format {
        DiagnosticFormat::Json => {
            for d in list {
                let _ = writeln!(stderr, "{}", json(d));
            }
            let _ = writeln!(
                stderr,
                "{}",
                serde_json::json!({ "type": "summary", "errors": list.len() })
            );
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

/// One diagnostic as a JSON object: code, message, help, and every label with its file, line
/// and column (1-based) as well as its byte offset and length.
fn json(d: &Diagnostic) -> serde_json::Value {
    let labels: Vec<serde_json::Value> = d
        .labels
        .iter()
        .map(|l| {
            let (line, column) = d
                .source
                .as_ref()
                .map_or((0, 0), |s| s.line_col(l.span.start));
            serde_json::json!({
                "label": l.text, "primary": l.primary, "line": line, "column": column,
                "offset": l.span.start, "length": l.span.len(),
            })
        })
        .collect();
    let location = d.location();
    serde_json::json!({
        "type": "diagnostic",
        "severity": "error",
        "code": d.code.as_str(),
        "message": d.message,
        "file": d.source.as_ref().map(runbook::diagnostic::SourceFile::name),
        "line": location.as_ref().map(|l| l.1),
        "column": location.as_ref().map(|l| l.2),
        "labels": labels,
        "help": d.help,
        "related": d.related.iter().map(json).collect::<Vec<_>>(),
    })
}
