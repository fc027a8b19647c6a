//! `plan --window`: the plan's estimates against a window, before anything runs.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use runbook_modules::format_duration;

use super::spec::{Occurrence, WindowSpec};
use crate::plan::Plan;

/// How a plan fits a window if the run started at `now`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Fit {
    /// The window as given.
    pub window: String,
    /// The window used (open now, or the next to open); `None` when it has closed.
    #[serde(skip)]
    pub occurrence: Option<Occurrence>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub window_secs: Option<u64>,
    /// Estimated time of the phases that need the window.
    pub outage_secs: u64,
    /// Estimated time from the start of the run to the first outage step (preparation).
    pub before_outage_secs: u64,
    /// Estimated time of the whole run (critical path).
    pub critical_path_secs: u64,
    /// When the outage work would end, started now.
    pub expected_end: Option<String>,
    pub fits: bool,
    /// Time left in the window after the outage work (negative: over by).
    pub spare_secs: i64,
}

/// Compares the plan's estimates with `window`, for a run started at `now`.
pub fn fit(plan: &Plan, window: &WindowSpec, now: Timestamp) -> Fit {
    let outage = plan.outage_estimate();
    let before = plan
        .phases
        .iter()
        .enumerate()
        .filter(|(_, p)| p.outage)
        .map(|(i, _)| plan.phase_span(i).0)
        .min()
        .unwrap_or_default();
    let occurrence = window.occurrence(now);
    let secs = |d: Duration| d.as_secs();
    let signed = |d: Duration| SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    let mut fit = Fit {
        window: window.to_string(),
        occurrence: occurrence.clone(),
        start: None,
        end: None,
        window_secs: None,
        outage_secs: secs(outage),
        before_outage_secs: secs(before),
        critical_path_secs: secs(plan.critical_path_estimate()),
        expected_end: None,
        fits: false,
        spare_secs: 0,
    };
    let Some(occ) = occurrence else {
        return fit;
    };
    // The outage work starts when the window opens, or when preparation is done if later.
    let ready = now.checked_add(signed(before)).unwrap_or(now);
    let outage_start = ready.max(occ.start.timestamp());
    let expected_end = outage_start
        .checked_add(signed(outage))
        .unwrap_or(outage_start);
    let spare = occ.end.timestamp().duration_since(expected_end);
    fit.start = Some(occ.start.strftime("%Y-%m-%d %H:%M %Z").to_string());
    fit.end = Some(occ.end.strftime("%Y-%m-%d %H:%M %Z").to_string());
    fit.window_secs = Some(occ.length().as_secs().max(0).unsigned_abs());
    fit.expected_end = Some(
        expected_end
            .to_zoned(occ.end.time_zone().clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
    );
    fit.fits = !spare.is_negative();
    fit.spare_secs = spare.as_secs();
    fit
}

/// The lines `plan --window` adds to the text plan.
pub fn render_fit(fit: &Fit) -> String {
    let mut out = String::new();
    let d = |s: u64| format_duration(Duration::from_secs(s));
    let Some(occ) = &fit.occurrence else {
        let _ = writeln!(
            out,
            "window {}: it has closed; no outage step would start",
            fit.window
        );
        return out;
    };
    let _ = writeln!(
        out,
        "window {occ} ({}): outage phases ~{}, whole run ~{}",
        d(fit.window_secs.unwrap_or_default()),
        d(fit.outage_secs),
        d(fit.critical_path_secs)
    );
    let verdict = if fit.fits {
        format!("fits, {} to spare", d(fit.spare_secs.unsigned_abs()))
    } else {
        format!(
            "DOES NOT FIT: over by {}; steps that would overrun are not started",
            d(fit.spare_secs.unsigned_abs())
        )
    };
    let _ = writeln!(
        out,
        "  started now: preparation ~{}, outage work done by {}: {verdict}",
        d(fit.before_outage_secs),
        fit.expected_end.as_deref().unwrap_or("?"),
    );
    out
}
