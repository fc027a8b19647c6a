//! The compiled, sealed plan: a petgraph DAG of `step@host` actions.
//!
//! A [`Plan`] is only built by the compiler and cannot be changed afterwards: every field that
//! could break its invariants (acyclic, deterministic order, waves and critical path consistent
//! with the graph) is private and read through accessors. The executor walks it; the
//! renderers in this module print it.

mod dot;
mod fingerprint;
mod json;
mod model;
mod outage;
mod schedule;
mod text;

pub use dot::{GraphFormat, render_graph};
pub use json::{FORMAT_VERSION, render_json};
pub use model::{
    Action, ActionRef, EdgeKind, EstimateSource, Gate, HostInfo, InventoryInfo, PhaseInfo, Plan,
    PlanNode, RunbookInfo, StepInfo,
};
pub use outage::PlannedSpan;
pub use text::{Detail, render_text, render_text_with};
