//! A YAML value with the byte span of its source text.

use std::fmt;

/// A half-open byte range into a source text, as miette wants it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    pub fn len(self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }

    #[must_use]
    /// A span that covers both `self` and `other`.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start, span.len()).into()
    }
}

/// How a scalar was written: templates inside plain or quoted scalars map back to exact
/// columns, block scalars only approximately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// The shape of a node. Scalars keep their text; typing (int, bool, ...) is decided by the
/// consumer, which knows what it expects and can say so in its error.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Null,
    Scalar(String, ScalarStyle),
    Seq(Vec<Node>),
    /// Keys in source order; duplicates are rejected by the loader.
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

impl Node {
    pub fn new(kind: NodeKind, span: Span) -> Self {
        Self { kind, span }
    }

    /// The text of a scalar (any style). `None` for null, sequences and mappings.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    pub fn style(&self) -> Option<ScalarStyle> {
        match &self.kind {
            NodeKind::Scalar(_, style) => Some(*style),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A plain scalar read as a YAML 1.2 core-schema boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            NodeKind::Scalar(s, ScalarStyle::Plain) => match s.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// A plain scalar read as an integer (decimal, `0x`, `0o`).
    pub fn as_int(&self) -> Option<i64> {
        match &self.kind {
            NodeKind::Scalar(s, ScalarStyle::Plain) => parse_int(s),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages ("expected a mapping, found a sequence").
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "null",
            NodeKind::Scalar(..) if self.as_bool().is_some() => "a boolean",
            NodeKind::Scalar(..) if self.as_int().is_some() => "an integer",
            NodeKind::Scalar(..) => "a string",
            NodeKind::Seq(_) => "a sequence",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Converts the node to JSON with YAML 1.2 core-schema typing of plain scalars.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Scalar(s, ScalarStyle::Plain) => {
                if let Some(b) = self.as_bool() {
                    Value::Bool(b)
                } else if let Some(i) = parse_int(s) {
                    Value::from(i)
                } else if let Some(f) = parse_float(s) {
                    serde_json::Number::from_f64(f)
                        .map_or_else(|| Value::String(s.clone()), Value::Number)
                } else {
                    Value::String(s.clone())
                }
            }
            NodeKind::Scalar(s, _) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            NodeKind::Null => f.write_str("null"),
            NodeKind::Scalar(s, _) => f.write_str(s),
            NodeKind::Seq(_) => f.write_str("[...]"),
            NodeKind::Map(_) => f.write_str("{...}"),
        }
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if negative { -value } else { value })
}

fn parse_float(s: &str) -> Option<f64> {
    let looks_numeric = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && s.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric { s.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(s: &str) -> Node {
        Node::new(
            NodeKind::Scalar(s.into(), ScalarStyle::Plain),
            Span::default(),
        )
    }

    #[test]
    fn core_schema_typing_of_plain_scalars() {
        assert_eq!(plain("42").as_int(), Some(42));
        assert_eq!(plain("-0x10").as_int(), Some(-16));
        assert_eq!(plain("1_000").as_int(), None);
        assert_eq!(plain("true").as_bool(), Some(true));
        assert_eq!(plain("yes").as_bool(), None, "YAML 1.2: `yes` is a string");
        assert_eq!(plain("2.5").to_json(), serde_json::json!(2.5));
        assert_eq!(plain("1.2.3").to_json(), serde_json::json!("1.2.3"));
        let quoted = Node::new(
            NodeKind::Scalar("42".into(), ScalarStyle::DoubleQuoted),
            Span::default(),
        );
        assert_eq!(quoted.as_int(), None, "a quoted scalar is a string");
    }
}
