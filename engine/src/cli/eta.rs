//! The time a run has left, from the plan's estimates (docs/cli.md, "Progress").
//!
//! Each action has an estimated start and duration on the plan's critical-path schedule. How
//! far the run has come is the estimated start of the earliest action not yet finished (all of
//! the schedule before it is done); what is left is the critical path's total from there. So
//! before anything ends, the ETA is the plan's whole estimate, and it counts down with the time
//! since the last action ended; it never reads `0s` just because nothing has finished yet.
//! A run that is slower than planned stays at `0s` until its next action ends (the CLI then
//! says it is behind the plan).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use runbook::plan::{Plan, PlanNode};

#[derive(Debug, Default)]
pub struct Eta {
    /// Estimated start on the schedule, by action id.
    start: BTreeMap<String, Duration>,
    unfinished: BTreeSet<String>,
    total: Duration,
    /// What was left on the schedule at the last change, and when (time into the run).
    left_at_change: Duration,
    changed_at: Duration,
}

impl Eta {
    pub fn of(plan: &Plan) -> Self {
        let start: BTreeMap<String, Duration> = plan
            .nodes()
            .filter_map(|(node, n)| match n {
                PlanNode::Action(a) => Some((plan.action_id(a), plan.estimated_start(node))),
                PlanNode::Gate(_) => None,
            })
            .collect();
        Self::new(start, plan.critical_path_estimate())
    }

    pub fn new(start: BTreeMap<String, Duration>, total: Duration) -> Self {
        Self {
            unfinished: start.keys().cloned().collect(),
            start,
            total,
            left_at_change: total,
            changed_at: Duration::ZERO,
        }
    }

    /// An action ended (or was settled from a resume) `at` into the run.
    pub fn finished(&mut self, action: &str, at: Duration) {
        if !self.unfinished.remove(action) {
            return;
        }
        let reached = self
            .unfinished
            .iter()
            .filter_map(|a| self.start.get(a))
            .min()
            .copied()
            .unwrap_or(self.total);
        self.left_at_change = self.total.saturating_sub(reached);
        self.changed_at = at;
    }

    /// What is left, `now` into the run: the schedule's rest at the last change, less the time
    /// since.
    pub fn remaining(&self, now: Duration) -> Duration {
        self.left_at_change
            .saturating_sub(now.saturating_sub(self.changed_at))
    }

    /// The text shown: `~4m10s`, or `behind the plan` once the estimate is spent.
    pub fn text(&self, now: Duration) -> String {
        if self.unfinished.is_empty() {
            return "0s".to_owned();
        }
        let left = self.remaining(now);
        if left.is_zero() {
            "behind the plan".to_owned()
        } else {
            format!(
                "~{}",
                runbook_modules::format_duration(Duration::from_secs(left.as_secs().max(1)))
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eta() -> Eta {
        // a (0..60s) then b and c at once (60..180s, 60..120s), then d (180..200s).
        let s = |n| Duration::from_secs(n);
        Eta::new(
            BTreeMap::from([
                ("a@h".to_owned(), s(0)),
                ("b@h".to_owned(), s(60)),
                ("c@i".to_owned(), s(60)),
                ("d@h".to_owned(), s(180)),
            ]),
            s(200),
        )
    }

    #[test]
    fn before_anything_ends_it_is_the_plans_estimate_counting_down() {
        let e = eta();
        assert_eq!(e.remaining(Duration::ZERO), Duration::from_secs(200));
        assert_eq!(
            e.remaining(Duration::from_secs(30)),
            Duration::from_secs(170)
        );
        assert_eq!(e.text(Duration::from_secs(30)), "~2m50s");
    }

    #[test]
    fn it_follows_the_schedule_as_actions_end() {
        let mut e = eta();
        e.finished("a@h", Duration::from_secs(90));
        assert_eq!(
            e.remaining(Duration::from_secs(90)),
            Duration::from_secs(140)
        );
        e.finished("c@i", Duration::from_secs(100));
        assert_eq!(
            e.remaining(Duration::from_secs(100)),
            Duration::from_secs(140),
            "b still runs"
        );
        e.finished("b@h", Duration::from_secs(150));
        assert_eq!(
            e.remaining(Duration::from_secs(150)),
            Duration::from_secs(20)
        );
        assert_eq!(e.text(Duration::from_secs(400)), "behind the plan");
        e.finished("d@h", Duration::from_secs(401));
        assert_eq!(e.text(Duration::from_secs(401)), "0s");
    }
}
