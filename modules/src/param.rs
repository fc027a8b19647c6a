//! Typed parameter declarations: what a module accepts in `with:`.

use std::time::Duration;

use crate::value::{Value, parse_duration};

/// The type of one parameter. The compiler checks literal arguments against it and coerces
/// them (a `"5m"` string to a duration, `"8080"` to an int) before a module sees them.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamType {
    /// Any text. Interpolated values are not shell-quoted here: the module quotes when it
    /// builds a command.
    String,
    /// Shell source: templates in it are rendered with every interpolated value shell-quoted
    /// (the `quote` default), unless the runbook opts out with `| unquoted`.
    Shell,
    Int,
    Bool,
    Duration,
    Path,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    List(Box<ParamType>),
    /// A mapping from strings to values of one type.
    Map(Box<ParamType>),
    /// A template expression (`x.rc == 0`) evaluated by the engine at run time; modules receive
    /// its source text. The compiler checks its syntax and variables.
    Expression,
    /// Anything: passed through as given.
    Any,
}

impl ParamType {
    /// A human name used in errors and docs: `int`, `list of string`, `one of a, b`.
    pub fn describe(&self) -> String {
        match self {
            ParamType::String => "string".into(),
            ParamType::Shell => "shell command".into(),
            ParamType::Int => "int".into(),
            ParamType::Bool => "bool".into(),
            ParamType::Duration => "duration".into(),
            ParamType::Path => "path".into(),
            ParamType::Enum(words) => format!("one of {}", words.join(", ")),
            ParamType::List(inner) => format!("list of {}", inner.describe()),
            ParamType::Map(inner) => format!("map of {}", inner.describe()),
            ParamType::Expression => "expression".into(),
            ParamType::Any => "any value".into(),
        }
    }

    /// Whether values of this type are template expressions (an expression, or a list of them):
    /// the engine rewrites them as expressions, not as text.
    pub fn is_expression(&self) -> bool {
        match self {
            ParamType::Expression => true,
            ParamType::List(inner) => inner.is_expression(),
            _ => false,
        }
    }

    /// Checks a value against the type and converts it to the canonical form (durations as
    /// [`Value::Duration`], numeric strings as ints). Deferred values pass: they are checked
    /// again when they are known.
    pub fn coerce(&self, value: Value) -> Result<Value, String> {
        if value.is_deferred() {
            return Ok(value);
        }
        let mismatch = |v: &Value| format!("expected {}, found `{v}`", self.describe());
        match (self, value) {
            (ParamType::Any, v)
            | (
                ParamType::String | ParamType::Shell | ParamType::Expression,
                v @ (Value::Str(_) | Value::Secret(_)),
            ) => Ok(v),
            (ParamType::String, Value::Int(i)) => Ok(Value::Str(i.to_string())),
            (ParamType::String, Value::Bool(b)) => Ok(Value::Str(b.to_string())),
            (ParamType::String, Value::Float(f)) => Ok(Value::Str(f.to_string())),
            (ParamType::Path, Value::Str(s)) if !s.is_empty() && !s.contains('\0') => {
                Ok(Value::Str(s))
            }
            (ParamType::Int, Value::Int(i)) => Ok(Value::Int(i)),
            (ParamType::Int, Value::Str(s)) => s
                .trim()
                .parse()
                .map(Value::Int)
                .map_err(|_| mismatch(&Value::Str(s))),
            (ParamType::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
            (ParamType::Bool, Value::Str(s)) => match s.as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(mismatch(&Value::Str(s))),
            },
            (ParamType::Duration, Value::Duration(d)) => Ok(Value::Duration(d)),
            (ParamType::Duration, Value::Int(i)) if i >= 0 => {
                Ok(Value::Duration(Duration::from_secs(i.unsigned_abs())))
            }
            (ParamType::Duration, Value::Str(s)) => {
                parse_duration(&s).map(Value::Duration).ok_or_else(|| {
                    format!("expected a duration such as `30s`, `5m` or `1h30m`, found `{s}`")
                })
            }
            (ParamType::Enum(words), Value::Str(s)) if words.contains(&s.as_str()) => {
                Ok(Value::Str(s))
            }
            (ParamType::List(inner), Value::List(items)) => items
                .into_iter()
                .map(|item| inner.coerce(item))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            (ParamType::Map(inner), Value::Map(map)) => map
                .into_iter()
                .map(|(k, v)| inner.coerce(v).map(|v| (k, v)))
                .collect::<Result<_, _>>()
                .map(Value::Map),
            (_, v) => Err(mismatch(&v)),
        }
    }
}

/// One declared parameter of a module.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    /// Used when the argument is absent; `None` with `required: false` means "not set".
    pub default: Option<Value>,
    pub description: &'static str,
}

impl ParamSpec {
    pub fn required(name: &'static str, ty: ParamType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            required: true,
            default: None,
            description,
        }
    }

    pub fn optional(name: &'static str, ty: ParamType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            required: false,
            default: None,
            description,
        }
    }

    #[must_use]
    pub fn with_default(mut self, default: Value) -> Self {
        self.default = Some(default);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercion_converts_and_refuses() {
        assert_eq!(
            ParamType::Int.coerce(Value::Str("8080".into())),
            Ok(Value::Int(8080))
        );
        assert_eq!(
            ParamType::Duration.coerce(Value::Str("5m".into())),
            Ok(Value::Duration(Duration::from_secs(300)))
        );
        assert!(ParamType::Int.coerce(Value::Str("eighty".into())).is_err());
        assert!(
            ParamType::Enum(&["active", "passive"])
                .coerce(Value::Str("pasive".into()))
                .is_err()
        );
        assert!(
            ParamType::List(Box::new(ParamType::Int))
                .coerce(Value::List(vec![Value::Bool(true)]))
                .is_err()
        );
        assert_eq!(
            ParamType::Int.coerce(Value::Deferred("x".into())),
            Ok(Value::Deferred("x".into()))
        );
    }
}
