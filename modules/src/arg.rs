//! One argument of a step, as a module reads it through its parameter struct.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::value::Value;

/// The argument of one declared parameter (see [`params!`](crate::params)): its name, for
/// [`RenderError`](crate::RenderError)s, and its checked value, if the step gave one or the
/// parameter has a default. The readers mirror those of [`Args`](crate::Args) by name.
#[derive(Clone, Copy, Debug)]
pub struct Arg<'a> {
    name: &'static str,
    value: Option<&'a Value>,
}

impl<'a> Arg<'a> {
    pub(crate) fn new(name: &'static str, value: Option<&'a Value>) -> Self {
        Self { name, value }
    }

    /// The parameter's name, as steps spell it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn get(&self) -> Option<&'a Value> {
        self.value
    }

    /// The value unless it is absent or null.
    pub fn present(&self) -> Option<&'a Value> {
        self.value.filter(|v| !matches!(v, Value::Null))
    }

    /// A string argument, or the display form of a deferred one. `None` when absent.
    pub fn str(&self) -> Option<String> {
        match self.value? {
            Value::Str(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The raw text of a string or secret argument (for the executor, never for display).
    pub fn text(&self) -> Option<&'a str> {
        self.value?.as_str()
    }

    pub fn int(&self) -> Option<i64> {
        match self.value? {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn bool(&self) -> Option<bool> {
        match self.value? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        match self.value? {
            Value::Duration(d) => Some(*d),
            _ => None,
        }
    }

    pub fn list(&self) -> Option<&'a [Value]> {
        match self.value? {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn map(&self) -> Option<&'a BTreeMap<String, Value>> {
        match self.value? {
            Value::Map(map) => Some(map),
            _ => None,
        }
    }
}
