//! Outage windows: when the steps of an `outage: true` phase may run.
//!
//! A window is given as `--window START/END` (or a runbook parameter named `window`) in one of
//! two forms:
//!
//! - two RFC 3339 instants, `2026-11-28T22:00:00+01:00/2026-11-29T02:00:00+01:00`: one window;
//! - two wall-clock times and a time zone, `22:00/02:00 Europe/Berlin`: every day, crossing
//!   midnight when the end is earlier than the start, correct across DST changes (the times are
//!   civil times in that zone).
//!
//! The engine never starts work it cannot finish inside the window ([`gate`]): an outage step
//! waits for the window to open, is not started when its estimate would overrun the end, and an
//! `irreversible` step needs the whole remaining critical path to fit. Where it stops, the run
//! is *paused* at a safe point and resumes in the next window.

mod fit;
mod gate;
mod spec;

pub use fit::{Fit, fit, render_fit};
pub use gate::{Decision, Hold, HoldKind, StepTiming, gate};
pub use spec::{Occurrence, WindowError, WindowSpec};
