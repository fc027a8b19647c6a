//! Builds the spanned [`Node`] tree from `saphyr-parser` events.
//!
//! We build the tree ourselves instead of using a serde bridge so that every mapping key keeps
//! its span (for "unknown key" labels), duplicate keys are an error that points at both places,
//! and anchors and aliases still work. The parser counts in characters; miette wants bytes, so
//! positions are converted here, once.
//!
//! Two limits keep a small hostile file from costing unbounded memory or stack (see
//! docs/runbook-format.md, "Input limits"):
//!
//! - nesting: a collection deeper than [`MAX_DEPTH`] (directly, or through an alias to a deep
//!   anchor) is refused where it starts. The tree is built without recursion, but every walk
//!   over it (schema checks, conversion to JSON, dropping it) recurses, so its depth must be
//!   bounded before it exists;
//! - aliases: each alias copies its anchor's nodes, so ten lines of `&a [*b, *b, ...]` can ask
//!   for billions of nodes ("billion laughs"). The nodes copied through aliases are counted, and
//!   an alias that would take the count past [`ALIAS_BUDGET`] is refused where it stands.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle as ParserStyle, Span as ParserSpan};

use super::node::{Node, NodeKind, ScalarStyle, Span};

/// The deepest nesting of collections a document may have. A runbook needs about ten levels
/// (phases, steps, `with:`, a list of mappings in an argument); an Ansible inventory two per
/// level of `children:`.
pub const MAX_DEPTH: usize = 128;

/// How many nodes aliases may copy into one document, all aliases together. Anchors shared by
/// thousands of steps (`<<: *defaults`) stay far below; an alias bomb reaches it at once.
pub const ALIAS_BUDGET: usize = 100_000;

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
    /// Collections nested deeper than [`MAX_DEPTH`]; the span is where the limit is crossed.
    TooDeep { span: Span },
    /// Aliases that together copy more than [`ALIAS_BUDGET`] nodes; the span is the alias that
    /// crosses the budget.
    AliasBudget { span: Span },
}

/// Parses one YAML document. An empty text is a null node.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let offsets = CharOffsets::new(text);
    let mut builder = Builder {
        offsets: &offsets,
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
        copied: 0,
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

/// A collection being built, with the size of what it holds so far.
struct Frame {
    kind: FrameKind,
    start: usize,
    anchor: usize,
    /// Nodes inside, at every depth.
    nodes: usize,
    /// Nesting depth of the deepest collection inside (0: only scalars).
    height: usize,
}

enum FrameKind {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        /// Key text → index in `entries`, once the mapping is large enough for a linear search
        /// per key to cost (see [`INDEX_KEYS_FROM`]).
        index: HashMap<String, usize>,
    },
}

/// A mapping with this many keys gets an index for the duplicate check, so a mapping of
/// 100,000 keys is checked in linear time.
const INDEX_KEYS_FROM: usize = 16;

/// A node with its size: how many nodes it holds (itself included), and how deeply its
/// collections nest (0 for a scalar).
#[derive(Clone)]
struct Sized {
    node: Node,
    nodes: usize,
    height: usize,
}

struct Builder<'a> {
    offsets: &'a CharOffsets,
    anchors: HashMap<usize, Sized>,
    stack: Vec<Frame>,
    root: Option<Node>,
    /// Nodes copied through aliases so far.
    copied: usize,
}

impl Builder<'_> {
    /// Turns a parser error into ours, pointing where a person would look.
    fn syntax_error(&self, text: &str, message: &str, at: usize) -> YamlError {
        let one = |at: usize| Span::new(at, (at + 1).min(text.len()).max(at));
        if message.contains("unknown anchor") {
            return YamlError::UnknownAlias { span: one(at) };
        }
        if message.contains("recursion limit") {
            // The scanner's own bound on flow collections (`[[[[...`).
            return YamlError::TooDeep { span: one(at) };
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
            matches!(text.as_bytes().get(frame.start), Some(b'{' | b'[')).then(|| one(frame.start))
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
                let node = Sized {
                    node: Node::new(kind, span),
                    nodes: 1,
                    height: 0,
                };
                self.remember(anchor, &node);
                self.push(node)?;
            }
            Event::Alias(id) => {
                let anchored = self
                    .anchors
                    .get(&id)
                    .ok_or(YamlError::UnknownAlias { span })?;
                if self.stack.len() + anchored.height > MAX_DEPTH {
                    return Err(YamlError::TooDeep { span });
                }
                self.copied = self.copied.saturating_add(anchored.nodes);
                if self.copied > ALIAS_BUDGET {
                    return Err(YamlError::AliasBudget { span });
                }
                let mut node = anchored.clone();
                // The alias's own position is the more useful place to point at.
                node.node.span = span;
                self.push(node)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(YamlError::TooDeep {
                        span: Span::new(span.start, span.start + 1),
                    });
                }
                let kind = if matches!(event, Event::SequenceStart(..)) {
                    FrameKind::Seq(Vec::new())
                } else {
                    FrameKind::Map {
                        entries: Vec::new(),
                        pending_key: None,
                        index: HashMap::new(),
                    }
                };
                self.stack.push(Frame {
                    kind,
                    start: span.start,
                    anchor,
                    nodes: 0,
                    height: 0,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self
                    .stack
                    .pop()
                    .expect("the parser balances start and end events");
                let node = match frame.kind {
                    FrameKind::Seq(items) => {
                        let end = items.last().map_or(span.end, |n| n.span.end.max(span.end));
                        Node::new(NodeKind::Seq(items), Span::new(frame.start, end))
                    }
                    FrameKind::Map { entries, .. } => {
                        let entries = merge_keys(entries);
                        let end = entries
                            .last()
                            .map_or(span.end, |(_, v)| v.span.end.max(span.end));
                        Node::new(NodeKind::Map(entries), Span::new(frame.start, end))
                    }
                };
                let node = Sized {
                    node,
                    nodes: frame.nodes + 1,
                    height: frame.height + 1,
                };
                self.remember(frame.anchor, &node);
                self.push(node)?;
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Sized) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn push(&mut self, sized: Sized) -> Result<(), YamlError> {
        let Sized {
            node,
            nodes,
            height,
        } = sized;
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.nodes += nodes;
        frame.height = frame.height.max(height);
        match &mut frame.kind {
            FrameKind::Seq(items) => items.push(node),
            FrameKind::Map {
                entries,
                pending_key,
                index,
            } => match pending_key.take() {
                None => {
                    if matches!(node.kind, NodeKind::Seq(_) | NodeKind::Map(_)) {
                        return Err(YamlError::ComplexKey { span: node.span });
                    }
                    if let Some(first) = find_key(entries, index, &node) {
                        return Err(YamlError::DuplicateKey {
                            key: node.as_str().unwrap_or_default().to_owned(),
                            first,
                            second: node.span,
                        });
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    if entries.len() + 1 == INDEX_KEYS_FROM {
                        index.extend(
                            entries
                                .iter()
                                .enumerate()
                                .filter_map(|(i, (k, _))| k.as_str().map(|t| (t.to_owned(), i))),
                        );
                    }
                    if entries.len() + 1 >= INDEX_KEYS_FROM
                        && let Some(text) = key.as_str()
                    {
                        index.insert(text.to_owned(), entries.len());
                    }
                    entries.push((key, node));
                }
            },
        }
        Ok(())
    }
}

/// The span of an earlier key with the same text as `key`, if any.
fn find_key(entries: &[(Node, Node)], index: &HashMap<String, usize>, key: &Node) -> Option<Span> {
    let text = key.as_str()?;
    if entries.len() >= INDEX_KEYS_FROM {
        return index.get(text).map(|&i| entries[i].0.span);
    }
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(text))
        .map(|(k, _)| k.span)
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
    let mut present: std::collections::HashSet<String> = own
        .iter()
        .filter_map(|(k, _)| k.as_str().map(str::to_owned))
        .collect();
    for (_, value) in merges {
        let maps = match value.kind {
            NodeKind::Map(_) => vec![value],
            NodeKind::Seq(items) => items,
            _ => Vec::new(),
        };
        for map in maps {
            if let NodeKind::Map(merged) = map.kind {
                for (k, v) in merged {
                    let new = k.as_str().is_none_or(|t| present.insert(t.to_owned()));
                    if new {
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
    use std::fmt::Write as _;

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
    fn nesting_is_bounded_where_it_crosses_the_limit() {
        let deep = format!("{}x\n", "- ".repeat(MAX_DEPTH + 1));
        let Err(YamlError::TooDeep { span }) = parse(&deep) else {
            panic!("too deep")
        };
        assert_eq!(span.start, 2 * MAX_DEPTH);
        assert!(parse(&format!("{}x\n", "- ".repeat(MAX_DEPTH))).is_ok());
        // An alias cannot smuggle depth in: a deep anchor used deep down is refused too.
        let half = MAX_DEPTH / 2 + 1;
        let text = format!(
            "a: &a {}1{}\nb: {}*a{}\n",
            "[".repeat(half),
            "]".repeat(half),
            "[".repeat(half),
            "]".repeat(half)
        );
        assert!(matches!(parse(&text), Err(YamlError::TooDeep { .. })));
    }

    #[test]
    fn an_alias_bomb_is_refused_at_the_alias_that_crosses_the_budget() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        for pair in names.windows(2) {
            let refs = vec![format!("*{}", pair[0]); 10].join(", ");
            let _ = writeln!(text, "{}: &{} [{refs}]", pair[1], pair[1]);
        }
        let Err(YamlError::AliasBudget { span }) = parse(&text) else {
            panic!("an alias bomb")
        };
        let line = text[..span.start].matches('\n').count() + 1;
        assert_eq!(
            line, 5,
            "the first line whose aliases copy more than the budget"
        );
        // Sharing an anchor many times is fine while the copies stay under the budget.
        let shared = format!(
            "d: &d {{x: 1, y: 2}}\nl: [{}]\n",
            vec!["*d"; 1000].join(", ")
        );
        assert!(parse(&shared).is_ok());
    }

    #[test]
    fn duplicate_keys_of_large_mappings_are_found() {
        let mut text = String::new();
        for i in 0..100 {
            let _ = writeln!(text, "k{i}: {i}");
        }
        text.push_str("k42: again\n");
        let Err(YamlError::DuplicateKey { key, first, .. }) = parse(&text) else {
            panic!("duplicate")
        };
        assert_eq!(key, "k42");
        assert_eq!(&text[first.start..first.end], "k42");
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
