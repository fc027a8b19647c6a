//! The text of a block's templates in its caller's terms: `params.NAME` replaced by the
//! argument (as an expression), the block's registers renamed, targets made literal.
//!
//! The scan is lexical (identifiers outside string literals), enough for what templates and
//! expressions say: `params.NAME` is the only way a block reads its parameters.

use super::Frame;
use crate::ast::{ParamDecl, ParamKind};
use crate::template::is_template;
use crate::yaml::{Node, NodeKind};

/// The argument `node` for `param` as a template expression in `caller`'s terms.
pub(super) fn argument(node: &Node, param: &ParamDecl, caller: &Frame) -> Result<String, String> {
    let json = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    match &node.kind {
        NodeKind::Scalar(s, _) if is_template(s) => {
            if s.contains("{%") || s.contains("{#") {
                return Err("only `{{ expression }}` and text, no `{% %}` tags".into());
            }
            let mut parts = Vec::new();
            let mut rest = s.as_str();
            while let Some(open) = rest.find("{{") {
                if open > 0 {
                    parts.push(json(&rest[..open]));
                }
                let Some(close) = rest[open..].find("}}") else {
                    return Err("`{{` without `}}`".into());
                };
                let inner = &rest[open + 2..open + close];
                parts.push(format!("({})", rewrite_expr(inner.trim(), caller)?));
                rest = &rest[open + close + 2..];
            }
            if !rest.is_empty() {
                parts.push(json(rest));
            }
            Ok(if parts.len() == 1 {
                parts.remove(0)
            } else {
                format!("({})", parts.join(" ~ "))
            })
        }
        NodeKind::Scalar(s, _) => match param.kind {
            ParamKind::Secret => Err("a secret comes from a secret parameter: `{{ params.NAME }}`, never written in the file".into()),
            ParamKind::Int => node.as_int().map(|i| i.to_string()).ok_or_else(|| format!("`{s}` is not an integer")),
            ParamKind::Bool => node.as_bool().map(|b| b.to_string()).ok_or_else(|| format!("`{s}` is not `true` or `false`")),
            ParamKind::Duration => runbook_modules::parse_duration(s)
                .map(|_| json(s))
                .ok_or_else(|| format!("`{s}` is not a duration (`30s`, `5m`, `1h30m`)")),
            ParamKind::List => Err(format!("`{s}` is not a list")),
            ParamKind::String if !param.choices.is_empty() && !param.choices.contains(s) => Err(format!(
                "`{s}` is not one of {}",
                param.choices.join(", ")
            )),
            ParamKind::String | ParamKind::Path => Ok(json(s)),
        },
        NodeKind::Seq(items) if param.kind == ParamKind::List => {
            if items.iter().any(|i| i.as_str().is_some_and(is_template)) {
                return Err("list items are literals; pass a whole list as `{{ expression }}`".into());
            }
            Ok(node.to_json().to_string())
        }
        other => Err(format!(
            "found {}",
            Node::new(other.clone(), node.span).describe()
        )),
    }
}

/// The literal text of an argument, when it is one (a scalar without template syntax, or
/// exactly `{{ params.NAME }}` of a caller whose `NAME` is one).
pub(super) fn literal_text(node: &Node, caller: &Frame) -> Option<String> {
    let s = node.as_str()?;
    if !is_template(s) {
        return Some(s.to_owned());
    }
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let name = inner.strip_prefix("params.")?;
    caller.raw.get(name).cloned()
}

/// A target with every `{{ params.NAME }}` replaced by `NAME`'s literal selector (in
/// parentheses when the target says more than that).
pub(super) fn substitute_targets(s: &str, frame: &Frame) -> Result<String, String> {
    let whole =
        s.trim().starts_with("{{") && s.trim().ends_with("}}") && s.matches("{{").count() == 1;
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find("}}") else {
            return Err("`{{` without `}}` in a target".into());
        };
        let inner = rest[open + 2..open + close].trim();
        let Some(name) = inner.strip_prefix("params.") else {
            return Err(format!(
                "a target in a block reads only `{{{{ params.NAME }}}}`, not `{inner}`"
            ));
        };
        match frame.raw.get(name) {
            Some(sel) if whole => out.push_str(sel),
            Some(sel) => {
                out.push('(');
                out.push_str(sel);
                out.push(')');
            }
            None if frame.args.as_ref().is_some_and(|a| a.contains_key(name)) => {
                return Err(format!(
                    "the argument `{name}` is used as a target but is not a literal selector"
                ));
            }
            None => return Err(format!("the block has no parameter `{name}`")),
        }
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `{{ }}` and `{% %}` parts of a template rewritten; text and comments as they are.
pub(super) fn rewrite_template(s: &str, frame: &Frame) -> Result<String, String> {
    if frame.args.is_none() || !is_template(s) {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let next = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|t| rest.find(t).map(|i| (i, *t)))
            .min();
        let Some((open, tag)) = next else {
            out.push_str(rest);
            return Ok(out);
        };
        let close_tag = match tag {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        out.push_str(&rest[..open + 2]);
        let after = &rest[open + 2..];
        let Some(close) = after.find(close_tag) else {
            // Unclosed: the compiler reports the syntax error on the text as written.
            out.push_str(after);
            return Ok(out);
        };
        if tag == "{#" {
            out.push_str(&after[..close]);
        } else {
            out.push_str(&rewrite_expr(&after[..close], frame)?);
        }
        out.push_str(close_tag);
        rest = &after[close + 2..];
    }
}

/// An expression with `params.NAME` replaced by the argument and the block's registers renamed.
/// String literals are left alone.
pub(super) fn rewrite_expr(e: &str, frame: &Frame) -> Result<String, String> {
    let Some(args) = &frame.args else {
        return Ok(e.to_owned());
    };
    let bytes = e.as_bytes();
    let mut out = String::with_capacity(e.len());
    let mut i = 0;
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' || b == b'\'' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != b {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
            out.push_str(&e[start..i]);
            continue;
        }
        let after_dot = out.trim_end().ends_with('.');
        if (b.is_ascii_alphabetic() || b == b'_') && !after_dot {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            let word = &e[start..i];
            if word == "params" {
                let name_start = i + 1;
                if bytes.get(i) != Some(&b'.') {
                    return Err("a block reads its parameters one by one, as `params.NAME`".into());
                }
                let mut j = name_start;
                while j < bytes.len() && ident(bytes[j]) {
                    j += 1;
                }
                let name = &e[name_start..j];
                let Some(expr) = args.get(name) else {
                    let mut m = format!("the block has no parameter `{name}`");
                    if let Some(s) = crate::suggest::closest(name, args.keys().map(String::as_str))
                    {
                        m = format!("{m} (did you mean `{s}`?)");
                    }
                    return Err(m);
                };
                out.push('(');
                out.push_str(expr);
                out.push(')');
                i = j;
            } else if let Some(renamed) = frame.registers.get(word) {
                out.push_str(renamed);
            } else {
                out.push_str(word);
            }
            continue;
        }
        let len = e[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&e[i..i + len]);
        i += len;
    }
    Ok(out)
}
