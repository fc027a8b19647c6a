//! `runbook`: declarative runbooks for planned outages, compiled into a sealed dependency graph
//! of `step@host` actions.
//!
//! The stages, each producing a new type and none feeding back:
//! YAML with spans ([`yaml`]) → AST ([`ast`]) → compiled, sealed [`plan::Plan`] → renderers.
//! Execution (the next stage) consumes a `Plan` and emits events; it never sees the AST.

pub mod ast;
pub mod builtin;
pub mod clock;
pub mod compile;
pub mod diagnostic;
pub mod event;
pub mod execute;
pub mod input;
pub mod inventory;
pub mod journal;
pub mod lab;
pub mod lock;
pub mod parse;
pub mod plan;
pub mod report;
pub mod schema;
pub mod session;
pub mod suggest;
pub mod target;
pub mod template;
pub mod transport;
pub mod window;
pub mod yaml;
