//! Rendering diagnostics: miette's graphical report for people (colour only on a terminal and
//! without `NO_COLOR`), JSON lines for tools.
//!
//! A label on a very long line (a one-line JSON runbook, a minified inventory) is shown through
//! a window of that line (see [`Printable`]): miette pads the underline with a formatting width,
//! and a width past 65,535 columns panics; a 200 KB line is also no use to read.

use std::fmt;
use std::io::{IsTerminal, Write};

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};
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
                if handler.render_report(&mut out, &Printable::new(d)).is_ok() {
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

/// Lines longer than this (in bytes) are shown through a window around the primary label.
const LONG_LINE: usize = 400;
/// How much of a long line the window shows before the primary label, and at most in all.
const BEFORE: usize = 60;
const WIDTH: usize = 200;
const ELLIPSIS: &str = "…";

/// A diagnostic as the graphical handler sees it: the diagnostic itself, unless one of its
/// labels sits on a long line; then a window of the primary label's line, with the labels that
/// fall inside it. Line and column numbers stay those of the file.
struct Printable<'a> {
    inner: &'a Diagnostic,
    window: Option<(Window, Vec<LabeledSpan>)>,
    related: Vec<Printable<'a>>,
}

impl<'a> Printable<'a> {
    fn new(inner: &'a Diagnostic) -> Self {
        Self {
            inner,
            window: Window::around(inner),
            related: inner.related.iter().map(Printable::new).collect(),
        }
    }
}

/// An excerpt of one long line.
struct Window {
    name: String,
    text: String,
    /// 0-based line of the excerpt in the file.
    line: usize,
    /// What to add to an offset in `text` to get its byte column in the file's line.
    column_base: isize,
}

impl Window {
    fn around(d: &Diagnostic) -> Option<(Window, Vec<LabeledSpan>)> {
        let source = d.source.as_ref()?;
        let text = source.text();
        let line_of = |at: usize| {
            let at = at.min(text.len());
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            (start, end)
        };
        let long = d.labels.iter().any(|l| {
            let (start, end) = line_of(l.span.start);
            end - start > LONG_LINE
        });
        if !long {
            return None;
        }
        let primary = d.primary_span()?;
        let (line_start, line_end) = line_of(primary.start);
        let floor = |mut i: usize| {
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let from = floor(primary.start.saturating_sub(BEFORE).max(line_start));
        let to = floor((from + WIDTH).min(line_end));
        let prefix = if from > line_start { ELLIPSIS } else { "" };
        let suffix = if to < line_end { ELLIPSIS } else { "" };
        let excerpt = format!("{prefix}{}{suffix}", &text[from..to]);
        let shift = |offset: usize| offset - from + prefix.len();
        let labels = d
            .labels
            .iter()
            .filter(|l| (from..=to).contains(&l.span.start))
            .map(|l| {
                let end = l.span.end.min(to).max(l.span.start);
                let span = SourceSpan::from((shift(l.span.start), end - l.span.start));
                let text = (!l.text.is_empty()).then(|| l.text.clone());
                if l.primary {
                    LabeledSpan::new_primary_with_span(text, span)
                } else {
                    LabeledSpan::new_with_span(text, span)
                }
            })
            .collect();
        let line = text[..line_start].matches('\n').count();
        #[allow(clippy::cast_possible_wrap)]
        let column_base = (from - line_start) as isize - prefix.len() as isize;
        Some((
            Window {
                name: source.name().to_owned(),
                text: excerpt,
                line,
                column_base,
            },
            labels,
        ))
    }
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
        let column = (span.offset() as isize + self.column_base).max(0) as usize;
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.name.clone(),
                inner.data(),
                *inner.span(),
                self.line + inner.line(),
                column,
                inner.line_count(),
            )
            .with_language("yaml"),
        ))
    }
}

impl fmt::Debug for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.inner, f)
    }
}

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.inner, f)
    }
}

impl std::error::Error for Printable<'_> {}

impl miette::Diagnostic for Printable<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        miette::Diagnostic::code(self.inner)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        miette::Diagnostic::help(self.inner)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match &self.window {
            Some((window, _)) => Some(window),
            None => miette::Diagnostic::source_code(self.inner),
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match &self.window {
            Some((_, labels)) => Some(Box::new(labels.iter().cloned())),
            None => miette::Diagnostic::labels(self.inner),
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|d| d as &dyn miette::Diagnostic),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runbook::diagnostic::{Code, SourceFile};
    use runbook::yaml::Span;

    fn render(d: &Diagnostic) -> String {
        let handler =
            GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
        let mut out = String::new();
        handler
            .render_report(&mut out, &Printable::new(d))
            .expect("renders");
        out
    }

    #[test]
    fn a_label_past_column_65535_renders_through_a_window() {
        let mut text = format!("{{\"a\": \"{}\", ", "x".repeat(70_000));
        let at = text.len();
        text.push_str("\"module\": \"nope\"}\n");
        let source = SourceFile::new("one-line.json", text);
        let d = Diagnostic::new(Code::ModuleUnknown, "unknown module `nope`")
            .in_file(&source)
            .primary(Span::new(at, at + 8), "not a module")
            .secondary(Span::new(1, 4), "far away");
        let out = render(&d);
        assert!(
            out.contains(&format!("[one-line.json:1:{}]", at + 1)),
            "{out}"
        );
        assert!(out.contains("\"module\""), "{out}");
        assert!(out.contains("not a module"), "{out}");
        assert!(out.lines().all(|l| l.chars().count() < 400), "{out}");
    }

    #[test]
    fn short_lines_render_as_they_are() {
        let source = SourceFile::new("a.yaml", "a: 1\nmodule: nope\n".to_owned());
        let d = Diagnostic::new(Code::ModuleUnknown, "unknown module `nope`")
            .in_file(&source)
            .primary(Span::new(13, 17), "not a module");
        assert!(Printable::new(&d).window.is_none());
        let out = render(&d);
        assert!(out.contains("[a.yaml:2:9]"), "{out}");
        assert!(out.contains("2 │ module: nope"), "{out}");
    }
}
