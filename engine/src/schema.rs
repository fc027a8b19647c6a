//! Reading spanned YAML into typed structures, collecting every problem on the way.
//!
//! Both the runbook and the inventory parsers read mappings with a fixed set of keys. A
//! [`MapReader`] takes the keys a mapping may have, reports unknown ones (with "did you mean")
//! and wrong types, and keeps going, so the user sees all such errors in one run.

use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile};
use crate::yaml::{Node, NodeKind, Span};

/// A value together with the span it was read from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Collects diagnostics for one source file.
#[derive(Debug)]
pub struct Reporter {
    pub source: SourceFile,
    pub diagnostics: Diagnostics,
}

impl Reporter {
    pub fn new(source: SourceFile) -> Self {
        Self {
            source,
            diagnostics: Diagnostics::default(),
        }
    }

    /// Records a diagnostic, attached to this reporter's file.
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic.in_file(&self.source));
    }

    pub fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        // Bare key names get backticks; descriptions ("a step", "`metadata`") are used as given.
        let bare = what
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        let what = if bare {
            format!("`{what}`")
        } else {
            what.to_owned()
        };
        self.report(
            Diagnostic::new(
                Code::WrongType,
                format!("{what} must be {expected}, found {}", node.describe()),
            )
            .primary(node.span, format!("expected {expected}"))
            .help(format!("write {what} as {expected}")),
        );
    }

    /// A mapping, or a diagnostic.
    pub fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        if let NodeKind::Map(entries) = &node.kind {
            Some(entries)
        } else {
            self.wrong_type(node, what, "a mapping");
            None
        }
    }

    /// A sequence (a null counts as empty), or a diagnostic.
    pub fn seq<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.kind {
            NodeKind::Seq(items) => Some(items),
            NodeKind::Null => Some(&[]),
            _ => {
                self.wrong_type(node, what, "a sequence");
                None
            }
        }
    }

    /// A scalar's text (numbers and booleans included), or a diagnostic.
    pub fn string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        if let NodeKind::Scalar(s, _) = &node.kind {
            Some(Spanned::new(s.clone(), node.span))
        } else {
            self.wrong_type(node, what, "a string");
            None
        }
    }

    /// A string, or a list of strings: `on: primary` and `on: [a, b]` both work.
    pub fn string_or_list(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        match &node.kind {
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|item| self.string(item, what))
                .collect(),
            NodeKind::Null => Vec::new(),
            _ => self.string(node, what).into_iter().collect(),
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        let value = node.as_bool();
        if value.is_none() {
            self.wrong_type(node, what, "a boolean (`true` or `false`)");
        }
        value
    }

    pub fn int(&mut self, node: &Node, what: &str) -> Option<i64> {
        let value = node.as_int();
        if value.is_none() {
            let digits = node.style() == Some(crate::yaml::ScalarStyle::Plain)
                && node.as_str().is_some_and(|s| {
                    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
                    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
                });
            if digits {
                self.report(
                    Diagnostic::new(Code::InvalidValue, format!("`{what}` is out of range"))
                        .primary(node.span, "too large")
                        .help(format!("`{what}` must fit in a 64-bit integer")),
                );
            } else {
                self.wrong_type(node, what, "an integer");
            }
        }
        value
    }

    /// Starts reading a mapping whose keys must be among `allowed`.
    pub fn reader<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &'static [&'static str],
    ) -> MapReader<'n> {
        let entries = self.map(node, what).unwrap_or(&[]);
        for (key, _) in entries {
            let Some(name) = key.as_str() else {
                self.wrong_type(key, what, "a mapping with string keys");
                continue;
            };
            if !allowed.contains(&name) {
                let mut d =
                    Diagnostic::new(Code::UnknownKey, format!("unknown key `{name}` in {what}"))
                        .primary(key.span, "unknown key");
                d = match crate::suggest::closest(name, allowed.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("{what} accepts: {}", allowed.join(", "))),
                };
                self.report(d);
            }
        }
        MapReader {
            entries,
            span: node.span,
            what: what.to_owned(),
        }
    }
}

/// A mapping being read; see [`Reporter::reader`].
#[derive(Debug)]
pub struct MapReader<'n> {
    entries: &'n [(Node, Node)],
    pub span: Span,
    pub what: String,
}

impl<'n> MapReader<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key node itself, for labels that point at the key.
    pub fn key(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k)
    }

    /// A key that must be present; reports it missing otherwise.
    pub fn require(&self, reporter: &mut Reporter, key: &str) -> Option<&'n Node> {
        let found = self.get(key);
        if found.is_none() {
            reporter.report(
                Diagnostic::new(
                    Code::MissingKey,
                    format!("{} is missing `{key}`", self.what),
                )
                .primary(
                    Span::new(self.span.start, self.span.start),
                    format!("`{key}` is required here"),
                )
                .help(format!("add `{key}:` to {}", self.what)),
            );
        }
        found
    }

    pub fn entries(&self) -> &'n [(Node, Node)] {
        self.entries
    }
}

/// The span of `range` (byte offsets into a scalar's value) within the source, when the value
/// appears verbatim in the source (plain or quoted without escapes); the whole scalar's span
/// otherwise (block scalars, escapes), which is still the right line.
pub fn sub_span(
    source: &SourceFile,
    whole: Span,
    value: &str,
    range: std::ops::Range<usize>,
) -> Span {
    let text = source.text();
    let Some(slice) = text.get(whole.start..whole.end) else {
        return whole;
    };
    let offset = if slice == value {
        Some(0)
    } else if slice.len() == value.len() + 2 && slice.get(1..slice.len() - 1) == Some(value) {
        Some(1)
    } else {
        None
    };
    match offset {
        Some(o) if range.end <= value.len() => Span::new(
            whole.start + o + range.start,
            whole.start + o + range.end.max(range.start + 1).min(value.len()),
        ),
        _ => whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    #[test]
    fn unknown_keys_are_reported_with_a_suggestion() {
        let text = "nmae: x\nid: y\n";
        let node = parse(text).expect("yaml");
        let mut reporter = Reporter::new(SourceFile::new("t.yaml", text.to_owned()));
        let reader = reporter.reader(&node, "a step", &["name", "id"]);
        assert!(reader.get("id").is_some());
        let diags = reporter.diagnostics.sorted();
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, Code::UnknownKey);
        assert_eq!(diags[0].help.as_deref(), Some("did you mean `name`?"));
        assert_eq!(diags[0].location(), Some(("t.yaml".to_owned(), 1, 1)));
    }
}
