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
    /// A large file, read through its line index (see [`Indexed`]).
    indexed: Option<Indexed>,
    related: Vec<Printable<'a>>,
}

impl<'a> Printable<'a> {
    fn new(inner: &'a Diagnostic) -> Self {
        let window = Window::around(inner);
        let indexed = match (&window, &inner.source) {
            (None, Some(source)) if source.text().len() > INDEXED_FROM => {
                Some(Indexed(source.clone()))
            }
            _ => None,
        };
        Self {
            inner,
            window,
            indexed,
            related: inner.related.iter().map(Printable::new).collect(),
        }
    }
}

/// Files larger than this are read through their line index: miette's reader of a `String`
/// scans from the top for every excerpt, which costs the file's size for every diagnostic.
const INDEXED_FROM: usize = 64 * 1024;

/// A source file whose excerpts are found by binary search in its line index, with what
/// miette's own reader returns: whole context lines (or just the span without context), the
/// 0-based line of the first one, and the byte column of the span when there is no context.
struct Indexed(runbook::diagnostic::SourceFile);

impl SourceCode for Indexed {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let text = self.0.text();
        let starts = self.0.line_starts();
        let start = span.offset();
        let end = start + span.len();
        if end > text.len() {
            return Err(MietteError::OutOfBounds);
        }
        let (first, first_start) = self.0.line_of(start);
        let (last, _) = self.0.line_of(end.saturating_sub(1).max(start));
        let (line, from, column) = if before == 0 {
            (first, start, start - first_start)
        } else {
            let line = first.saturating_sub(before);
            (line, starts[line], 0)
        };
        let to = if after == 0 {
            end
        } else {
            starts.get(last + after + 1).copied().unwrap_or(text.len())
        };
        let data = &text.as_bytes()[from..to];
        let covered = text[from..to].matches('\n').count() + 1;
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.0.name().to_owned(),
                data,
                SourceSpan::from((from, to - from)),
                line,
                column,
                covered,
            )
            .with_language("yaml"),
        ))
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
        match (&self.window, &self.indexed) {
            (Some((window, _)), _) => Some(window),
            (None, Some(indexed)) => Some(indexed),
            (None, None) => miette::Diagnostic::source_code(self.inner),
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
    fn large_files_render_as_miette_renders_them() {
        use std::fmt::Write as _;
        let mut text = String::new();
        for i in 0..5_000 {
            let _ = writeln!(text, "key{i}: value {i}");
        }
        let at = text.find("key2500:").expect("present");
        text.push_str("last: 1\n");
        let source = SourceFile::new("big.yaml", text);
        let d = Diagnostic::new(Code::UnknownKey, "unknown key `key2500`")
            .in_file(&source)
            .primary(Span::new(at, at + 7), "not a key")
            .secondary(Span::new(at - 16, at - 9), "before");
        let printable = Printable::new(&d);
        assert!(printable.indexed.is_some());
        let handler =
            GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
        let mut plain = String::new();
        handler.render_report(&mut plain, &d).expect("renders");
        assert_eq!(render(&d), plain);
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
