//! The rule that decides whether an outage step may start now.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::spec::WindowSpec;
use runbook_modules::format_duration;

/// Whether a step may start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Go,
    Hold(Hold),
}

/// Why a step may not start, and when it could.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub kind: HoldKind,
    /// For the operator, one line.
    pub message: String,
    /// When the next window opens (what `--wait` waits for); `None` when there is none.
    pub next_window: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// The window has not opened yet.
    NotOpen,
    /// The window has closed.
    Closed,
    /// The step's estimate runs past the window's end.
    Overrun,
    /// The step is irreversible and the remaining critical path runs past the window's end.
    Irreversible,
}

/// What the gate knows about the step.
#[derive(Clone, Copy, Debug)]
pub struct StepTiming {
    pub estimate: Duration,
    /// The estimated outage time from this step to the end of the run (its longest path).
    pub remaining: Duration,
    pub irreversible: bool,
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

fn unsigned(d: SignedDuration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// Decides whether a step of an outage phase may start at `now` in `window`.
///
/// `force` lets an irreversible step start although the rest of the run may not fit (the
/// operator takes the risk); it never lets a step start outside the window or past its end.
pub fn gate(now: Timestamp, window: &WindowSpec, step: StepTiming, force: bool) -> Decision {
    let Some(occ) = window.occurrence(now) else {
        return Decision::Hold(Hold {
            kind: HoldKind::Closed,
            message: format!(
                "the outage window {window} has closed; run again with a new --window"
            ),
            next_window: None,
        });
    };
    let next = window
        .occurrence(occ.end.timestamp())
        .map(|o| o.start.timestamp());
    if now < occ.start.timestamp() {
        return Decision::Hold(Hold {
            kind: HoldKind::NotOpen,
            message: format!(
                "the outage window opens at {} (in {})",
                occ.start.strftime("%Y-%m-%d %H:%M %Z"),
                format_duration(unsigned(occ.start.timestamp().duration_since(now)))
            ),
            next_window: Some(occ.start.timestamp()),
        });
    }
    let left = unsigned(occ.end.timestamp().duration_since(now));
    let closes = occ.end.strftime("%H:%M %Z");
    if signed(step.estimate) > signed(left) {
        return Decision::Hold(Hold {
            kind: HoldKind::Overrun,
            message: format!(
                "its estimate (~{}) runs past the window's end at {closes} ({} left); paused before it",
                format_duration(step.estimate),
                format_duration(left)
            ),
            next_window: next,
        });
    }
    if step.irreversible && !force && signed(step.remaining) > signed(left) {
        return Decision::Hold(Hold {
            kind: HoldKind::Irreversible,
            message: format!(
                "it is irreversible and the rest of the outage (~{} on the critical path) would not finish before {closes} ({} left); paused before it (--force to go on anyway)",
                format_duration(step.remaining),
                format_duration(left)
            ),
            next_window: next,
        });
    }
    Decision::Go
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("a valid instant")
    }

    fn timing(estimate: u64, remaining: u64, irreversible: bool) -> StepTiming {
        StepTiming {
            estimate: Duration::from_secs(estimate * 60),
            remaining: Duration::from_secs(remaining * 60),
            irreversible,
        }
    }

    #[test]
    fn steps_start_only_inside_and_only_when_they_fit() {
        let w = WindowSpec::parse("22:00/02:00 UTC").expect("valid");
        let before = gate(ts("2026-11-23T21:30:00Z"), &w, timing(5, 5, false), false);
        let Decision::Hold(h) = before else {
            panic!("held before the window")
        };
        assert_eq!(h.kind, HoldKind::NotOpen);
        assert_eq!(h.next_window, Some(ts("2026-11-23T22:00:00Z")));
        assert!(h.message.contains("in 30m"), "{}", h.message);

        assert_eq!(
            gate(ts("2026-11-23T22:00:00Z"), &w, timing(5, 5, false), false),
            Decision::Go
        );
        // 01:50 with a 15-minute step: 5 minutes short.
        let Decision::Hold(h) = gate(ts("2026-11-24T01:50:00Z"), &w, timing(15, 15, false), false)
        else {
            panic!("held at the end")
        };
        assert_eq!(h.kind, HoldKind::Overrun);
        assert_eq!(h.next_window, Some(ts("2026-11-24T22:00:00Z")));
        assert!(h.message.contains("10m left"), "{}", h.message);
        // Exactly fitting is fine.
        assert_eq!(
            gate(ts("2026-11-24T01:50:00Z"), &w, timing(10, 10, false), false),
            Decision::Go
        );
    }

    #[test]
    fn an_irreversible_step_needs_the_rest_to_fit_unless_forced() {
        let w = WindowSpec::parse("2026-11-23T22:00:00Z/2026-11-24T02:00:00Z").expect("valid");
        let now = ts("2026-11-24T01:00:00Z");
        let Decision::Hold(h) = gate(now, &w, timing(5, 90, true), false) else {
            panic!("held")
        };
        assert_eq!(h.kind, HoldKind::Irreversible);
        assert_eq!(h.next_window, None, "a fixed window has no next one");
        assert_eq!(gate(now, &w, timing(5, 90, true), true), Decision::Go);
        assert_eq!(gate(now, &w, timing(5, 90, false), false), Decision::Go);
        assert_eq!(gate(now, &w, timing(5, 60, true), false), Decision::Go);
        // Force never starts a step past the end.
        assert!(matches!(
            gate(now, &w, timing(61, 61, true), true),
            Decision::Hold(Hold {
                kind: HoldKind::Overrun,
                ..
            })
        ));
        let Decision::Hold(h) = gate(ts("2026-11-24T03:00:00Z"), &w, timing(1, 1, false), true)
        else {
            panic!("held")
        };
        assert_eq!(h.kind, HoldKind::Closed);
    }
}
