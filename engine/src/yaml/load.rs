//! Builds the spanned [`Node`] tree from `saphyr-parser` events.
//!
//! We build the tree ourselves instead of using a serde bridge so that every mapping key keeps
//! its span (for "unknown key" labels), duplicate keys are an error that points at both places,
//! and anchors and aliases still work. The parser counts in characters; miette wants bytes, so
//! positions are converted here, once.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle as ParserStyle, Span as ParserSpan};

use super::node::{Node, NodeKind, ScalarStyle, Span};

/// Why a text is not a YAML document we can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum YamlError {
    /// The text is not valid YAML.
    Syntax {
        message: String,
        span: Span,
        /// The innermost flow collection (`{` or `[`) still open where the parser gave up:
        /// usually the bracket that is never closed.
        open: Option<Span>,
    },
    /// The same key appears twice in one mapping.
    DuplicateKey {
        key: String,
        first: Span,
        second: Span,
    },
    /// A mapping key that is itself a mapping or sequence.
    ComplexKey { span: Span },
    /// More than one document in the stream (`---` twice).
    MultipleDocuments { span: Span },
    /// An alias to an anchor that was never defined.
    UnknownAlias { span: Span },
}

/// Parses one YAML document. An empty text is a null node.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let offsets = CharOffsets::new(text);
    let mut builder = Builder {
        offsets: &offsets,
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
    };
    for item in Parser::new_from_str(text) {
        match item {
            Ok((event, span)) => builder.event(event, span)?,
            Err(err) => {
                return Err(builder.syntax_error(
                    text,
                    err.info(),
                    offsets.byte(err.marker().index()),
                ));
            }
        }
    }
    Ok(builder
        .root
        .unwrap_or_else(|| Node::new(NodeKind::Null, Span::new(0, 0))))
}

/// Maps character indices (what the parser reports) to byte offsets.
struct CharOffsets {
    /// Byte offset of every character, plus one past the end; empty when the text is ASCII.
    table: Vec<usize>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        let table = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(text.len()))
                .collect()
        };
        Self {
            table,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.table.is_empty() {
            char_index.min(self.len)
        } else {
            self.table.get(char_index).copied().unwrap_or(self.len)
        }
    }

    fn span(&self, span: ParserSpan) -> Span {
        Span::new(self.byte(span.start.index()), self.byte(span.end.index()))
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        start: usize,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        start: usize,
        anchor: usize,
    },
}

struct Builder<'a> {
    offsets: &'a CharOffsets,
    anchors: HashMap<usize, Node>,
    stack: Vec<Frame>,
    root: Option<Node>,
}

impl Builder<'_> {
    /// Turns a parser error into ours, pointing where a person would look.
    fn syntax_error(&self, text: &str, message: &str, at: usize) -> YamlError {
        let one = |at: usize| Span::new(at, (at + 1).min(text.len()).max(at));
        if message.contains("unknown anchor") {
            return YamlError::UnknownAlias { span: one(at) };
        }
        let mut at = at;
        if message.contains("tab") {
            // The parser notices a tab after it, or at the end of the line before: point at
            // the tab itself, the first one from the start of that line on.
            let line_start = text[..at.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
            if let Some(tab) = text[line_start..].find('\t') {
                at = line_start + tab;
            }
        }
        let open = self.stack.iter().rev().find_map(|frame| {
            let start = match frame {
                Frame::Seq { start, .. } | Frame::Map { start, .. } => *start,
            };
            matches!(text.as_bytes().get(start), Some(b'{' | b'[')).then(|| one(start))
        });
        YamlError::Syntax {
            message: message.to_owned(),
            span: one(at),
            open,
        }
    }

    fn event(&mut self, event: Event<'_>, span: ParserSpan) -> Result<(), YamlError> {
        let span = self.offsets.span(span);
        match event {
            Event::DocumentStart(_) => {
                if self.root.is_some() {
                    return Err(YamlError::MultipleDocuments { span });
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let is_null_tag = tag.as_ref().is_some_and(|t| t.suffix == "null");
                let kind = if matches!(style, ParserStyle::Plain)
                    && (is_null_tag
                        || matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL"))
                {
                    NodeKind::Null
                } else {
                    NodeKind::Scalar(value.into_owned(), convert_style(style))
                };
                let node = Node::new(kind, span);
                self.remember(anchor, &node);
                self.push(node)?;
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or(YamlError::UnknownAlias { span })?;
                // The alias's own position is the more useful place to point at.
                self.push(Node::new(node.kind, span))?;
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    start: span.start,
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                entries: Vec::new(),
                pending_key: None,
                start: span.start,
                anchor,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self
                    .stack
                    .pop()
                    .expect("the parser balances start and end events");
                let (node, anchor) = match frame {
                    Frame::Seq {
                        items,
                        start,
                        anchor,
                    } => {
                        let end = items.last().map_or(span.end, |n| n.span.end.max(span.end));
                        (
                            Node::new(NodeKind::Seq(items), Span::new(start, end)),
                            anchor,
                        )
                    }
                    Frame::Map {
                        entries,
                        start,
                        anchor,
                        ..
                    } => {
                        let entries = merge_keys(entries);
                        let end = entries
                            .last()
                            .map_or(span.end, |(_, v)| v.span.end.max(span.end));
                        (
                            Node::new(NodeKind::Map(entries), Span::new(start, end)),
                            anchor,
                        )
                    }
                };
                self.remember(anchor, &node);
                self.push(node)?;
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn push(&mut self, node: Node) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    if matches!(node.kind, NodeKind::Seq(_) | NodeKind::Map(_)) {
                        return Err(YamlError::ComplexKey { span: node.span });
                    }
                    if let Some((first, _)) = entries
                        .iter()
                        .find(|(k, _)| k.as_str().is_some() && k.as_str() == node.as_str())
                    {
                        return Err(YamlError::DuplicateKey {
                            key: node.as_str().unwrap_or_default().to_owned(),
                            first: first.span,
                            second: node.span,
                        });
                    }
                    *pending_key = Some(node);
                }
                Some(key) => entries.push((key, node)),
            },
        }
        Ok(())
    }
}

/// YAML merge keys: `<<: *defaults` (or `<<: [*a, *b]`) adds the entries of the merged
/// mappings that the mapping does not set itself; its own entries win, then earlier merged
/// mappings over later ones. A `<<` whose value is not a mapping (or a list of them) stays an
/// ordinary key, for the schema to report.
fn merge_keys(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    let is_merge = |k: &Node, v: &Node| {
        matches!(&k.kind, NodeKind::Scalar(text, ScalarStyle::Plain) if text == "<<")
            && match &v.kind {
                NodeKind::Map(_) => true,
                NodeKind::Seq(items) => items.iter().all(|i| matches!(i.kind, NodeKind::Map(_))),
                _ => false,
            }
    };
    if !entries.iter().any(|(k, v)| is_merge(k, v)) {
        return entries;
    }
    let (merges, mut own): (Vec<_>, Vec<_>) =
        entries.into_iter().partition(|(k, v)| is_merge(k, v));
    for (_, value) in merges {
        let maps = match value.kind {
            NodeKind::Map(_) => vec![value],
            NodeKind::Seq(items) => items,
            _ => Vec::new(),
        };
        for map in maps {
            if let NodeKind::Map(merged) = map.kind {
                for (k, v) in merged {
                    if !own
                        .iter()
                        .any(|(o, _)| o.as_str().is_some() && o.as_str() == k.as_str())
                    {
                        own.push((k, v));
                    }
                }
            }
        }
    }
    own
}

fn convert_style(style: ParserStyle) -> ScalarStyle {
    match style {
        ParserStyle::SingleQuoted => ScalarStyle::SingleQuoted,
        ParserStyle::DoubleQuoted => ScalarStyle::DoubleQuoted,
        ParserStyle::Literal => ScalarStyle::Literal,
        ParserStyle::Folded => ScalarStyle::Folded,
        ParserStyle::Plain => ScalarStyle::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(text: &str, span: Span) -> &str {
        &text[span.start..span.end]
    }

    #[test]
    fn merge_keys_add_what_the_mapping_does_not_set() {
        let text = "base: &b {dir: /x, instance: A}\nother: &o {instance: Z, extra: 1}\nstep: {<<: [*b, *o], instance: B, require: [source]}\nodd: {<<: 3}\n";
        let root = parse(text).expect("valid yaml");
        let map = root.as_map().expect("mapping");
        let step = map[2].1.as_map().expect("map");
        let keys: Vec<(&str, String)> = step
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().unwrap_or_default(),
                    v.as_str().map_or_else(|| "[..]".to_owned(), str::to_owned),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("instance", "B".to_owned()),
                ("require", "[..]".to_owned()),
                ("dir", "/x".to_owned()),
                ("extra", "1".to_owned()),
            ]
        );
        let odd = map[3].1.as_map().expect("map");
        assert_eq!(
            odd[0].0.as_str(),
            Some("<<"),
            "not a mapping: left for the schema"
        );
    }

    #[test]
    fn keys_and_values_carry_byte_spans() {
        let text = "name: café\nsteps:\n  - id: stop\n    with: {a: 1}\n";
        let root = parse(text).expect("valid yaml");
        let map = root.as_map().expect("mapping");
        assert_eq!(slice(text, map[0].0.span), "name");
        assert_eq!(slice(text, map[0].1.span), "café");
        let step = &map[1].1.as_seq().expect("seq")[0];
        let (key, value) = &step.as_map().expect("map")[0];
        assert_eq!(slice(text, key.span), "id");
        assert_eq!(slice(text, value.span), "stop");
    }

    #[test]
    fn duplicate_keys_point_at_both() {
        let text = "a: 1\nb: 2\na: 3\n";
        let YamlError::DuplicateKey { key, first, second } = parse(text).expect_err("duplicate")
        else {
            panic!("expected a duplicate key error");
        };
        assert_eq!(key, "a");
        assert_eq!(first.start, 0);
        assert_eq!(second.start, 10);
    }

    #[test]
    fn syntax_errors_are_located() {
        let text = "a: [1, 2\nb: 3\n";
        assert!(matches!(
            parse(text),
            Err(YamlError::Syntax {
                open: Some(Span { start: 3, .. }),
                ..
            })
        ));
    }

    #[test]
    fn tabs_and_unknown_aliases_point_at_the_culprit() {
        let text = "metadata:\n\tname: t\n";
        let Err(YamlError::Syntax { span, .. }) = parse(text) else {
            panic!("tab is an error")
        };
        assert_eq!(span.start, 10);
        assert!(matches!(
            parse("a: *nope\n"),
            Err(YamlError::UnknownAlias { .. })
        ));
    }

    #[test]
    fn anchors_and_aliases_resolve() {
        let root = parse("base: &b {x: 1}\nother: *b\n").expect("valid");
        assert_eq!(
            root.get("other")
                .and_then(|o| o.get("x"))
                .and_then(Node::as_int),
            Some(1)
        );
    }

    #[test]
    fn nulls_and_empty_documents() {
        assert!(parse("").expect("empty is fine").is_null());
        assert!(parse("a: ~").expect("valid").get("a").expect("a").is_null());
        assert!(matches!(
            parse("a: 1\n---\nb: 2\n"),
            Err(YamlError::MultipleDocuments { .. })
        ));
    }
}
