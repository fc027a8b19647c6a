//! The one place that knows which YAML crate we use.
//!
//! Runbooks and inventories are parsed with `saphyr-parser` (the maintained successor of
//! `yaml-rust`, see docs/architecture.md) into a small tree of [`Node`]s in which every value,
//! including every mapping key, carries the byte [`Span`] it came from. Everything downstream
//! (AST, inventory, diagnostics) works on this tree, so swapping the YAML crate means rewriting
//! only this module.

mod load;
mod node;

pub use load::{ALIAS_BUDGET, MAX_DEPTH, YamlError, parse};
pub use node::{Node, NodeKind, ScalarStyle, Span};
