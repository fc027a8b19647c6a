//! The built-in module library of `runbook`.
//!
//! A module is the unit of work a step names (`module: gtm.source_start`). Each one declares its
//! typed parameters, so the compiler can check a step's `with:` arguments before any host is
//! touched, and renders the exact commands it will run, so `plan` can show them. Execution follows
//! query-then-act: a read-only [`Module::check`] (dry-run, resume after a crash, safety gates)
//! whose exit status says whether applying would change anything ([`CHECK_IN_STATE`],
//! [`CHECK_WOULD_CHANGE`]), then the rendered operations; a mutating command that finds nothing
//! to do prints the [`UNCHANGED`] line.
//!
//! Modules never see templates: the engine renders every template first and hands a module
//! plain, typed [`Args`]. Values that are only known at run time (outputs of earlier steps)
//! arrive at plan time as [`Value::Deferred`] and are shown as placeholders.

mod arg;
mod args;
mod command;
pub mod declare;
mod module;
mod param;
mod query;
mod registry;
pub mod transfer;
mod value;
mod vendor_lines;

pub mod generic;
pub mod gtm;
pub mod http;
pub mod iris;
pub mod storage;
pub mod wsadmin;

pub use arg::Arg;
pub use args::{ArgError, Args, closest};
pub use command::{Artifact, Command, Helper, quote};
pub use module::{
    CHECK_IN_STATE, CHECK_WOULD_CHANGE, DEFAULT_ESTIMATE, Module, Operation, Placement,
    RenderError, UNCHANGED,
};
pub use param::{ParamSpec, ParamType};
pub use registry::Registry;
pub use transfer::Transfer;
pub use value::{Value, format_duration, parse_duration};
