//! The outage window in the scheduler: which outage steps it holds back, and waiting for it to
//! open (`--wait`). The rule itself is [`crate::window::gate`]; this file feeds it the run's
//! state.

use std::time::Duration;

use petgraph::graph::NodeIndex;

use crate::event::{Event, Sink};
use crate::plan::StepInfo;
use crate::window::{Decision, Hold, StepTiming, gate};

use super::run::{Run, Stop};

/// Why the window holds an action back.
#[derive(Debug)]
pub(super) enum Held {
    /// It is the first step held: the run pauses here.
    First(Hold),
    /// It waits behind an earlier hold (one safe point, not step by step).
    Behind,
}

/// Whether the window holds `node` back now (`None`: it may start).
pub(super) fn holds(run: &Run<'_>, node: NodeIndex, step: &StepInfo) -> Option<Held> {
    let window = run.opts.window.as_ref()?;
    if !run.plan.phases[step.phase].outage || run.opts.dry_run {
        return None;
    }
    if run.hold.is_some() {
        return Some(Held::Behind);
    }
    let timing = StepTiming {
        estimate: step.estimate,
        remaining: remaining_outage(run, node),
        irreversible: step.irreversible,
    };
    match gate(run.opts.clock.now(), window, timing, run.opts.force) {
        Decision::Go => None,
        Decision::Hold(hold) => Some(Held::First(hold)),
    }
}

/// The outage time that must still fit when `node` starts: the longest remaining path from
/// it, or from anything already running or ready, whichever is longer.
fn remaining_outage(run: &Run<'_>, node: NodeIndex) -> Duration {
    let frontier = run
        .started_at
        .iter()
        .enumerate()
        .filter(|(i, s)| s.is_some() && run.status[*i].is_none())
        .map(|(i, _)| run.plan.remaining_outage(NodeIndex::new(i)));
    frontier
        .chain(std::iter::once(run.plan.remaining_outage(node)))
        .max()
        .unwrap_or_default()
}

/// With `--wait` and a window to wait for, sleeps until it opens (or the operator interrupts)
/// and lifts the hold: `true`, the held steps go back in the queue. Otherwise leaves them held,
/// and the run pauses (`false`).
pub(super) async fn wait_for_window(
    run: &mut Run<'_>,
    sink: &mut dyn Sink,
    cancel: &mut Option<tokio::sync::watch::Receiver<bool>>,
) -> bool {
    let Some((_, hold)) = &run.hold else {
        return false;
    };
    let Some(until) = hold
        .next_window
        .filter(|_| run.opts.wait && !run.cancelled())
    else {
        return false;
    };
    sink.emit(&Event::WindowWaiting {
        message: hold.message.clone(),
        until: until.to_string(),
    });
    sink.flush();
    let cancelled = async {
        match cancel.as_mut() {
            Some(rx) => rx.wait_for(|c| *c).await.map(|_| ()).map_err(|_| ()),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = run.opts.clock.sleep_until(until) => {}
        Ok(()) = cancelled => run.stop(Stop::Interrupted),
    }
    run.hold = None;
    true
}
