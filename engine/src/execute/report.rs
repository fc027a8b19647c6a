//! How a run went: every action's final status, each host's tally, and the run's status.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::event::{HostSummary, RunStatus, Status};
use crate::plan::{Plan, PlanNode};

/// How a run went.
#[derive(Debug)]
pub struct Report {
    pub run_id: String,
    pub status: RunStatus,
    /// Every action's final status, in plan order.
    pub actions: Vec<(String, Status)>,
    pub hosts: Vec<HostSummary>,
    pub duration: Duration,
    /// The first write of the run's record that failed, when one did (the run is then
    /// [`RunStatus::Unrecorded`]).
    pub unrecorded: Option<String>,
    /// The run's outage and write freeze, every piece so far (empty without outage phases,
    /// or when no apply has reached them).
    pub outage: Vec<super::outage::Outage>,
}

impl Report {
    pub fn status_of(&self, action: &str) -> Option<Status> {
        self.actions
            .iter()
            .find(|(id, _)| id == action)
            .map(|(_, s)| *s)
    }
}

/// Every action's final status in plan order, and each host's tally (sorted by host name).
/// An action without a status is `blocked`, unless the window holds the run (`held`): then it
/// is pending, and left out.
pub(super) fn tally(
    plan: &Plan,
    status: &[Option<Status>],
    durations: &[Duration],
    held: bool,
) -> (Vec<(String, Status)>, Vec<HostSummary>) {
    let mut hosts: BTreeMap<String, HostSummary> = BTreeMap::new();
    let mut actions = Vec::new();
    for (node, n) in plan.nodes() {
        let PlanNode::Action(a) = n else { continue };
        let Some(status) = status[node.index()] else {
            // Held by the window, or waiting behind a held step: pending, not blocked.
            if held {
                continue;
            }
            actions.push((plan.action_id(a), Status::Blocked));
            continue;
        };
        actions.push((plan.action_id(a), status));
        let name = plan.host_name(a.host).to_owned();
        let h = hosts.entry(name.clone()).or_insert_with(|| HostSummary {
            host: name,
            ..HostSummary::default()
        });
        h.duration_secs += durations[node.index()].as_secs_f64();
        *match status {
            Status::Ok => &mut h.ok,
            Status::Changed => &mut h.changed,
            Status::Failed => &mut h.failed,
            Status::TimedOut => &mut h.timed_out,
            Status::Unreachable => &mut h.unreachable,
            Status::Skipped => &mut h.skipped,
            Status::Blocked => &mut h.blocked,
            Status::AwaitingApproval => &mut h.awaiting_approval,
            Status::WouldChange => &mut h.would_change,
            Status::WouldRun => &mut h.would_run,
            Status::Unknown => &mut h.unknown,
        } += 1;
    }
    (actions, hosts.into_values().collect())
}

/// How the run ended, first match wins. A run whose record failed did not complete, whatever
/// its actions did: what they did may not be on disk, so it must neither look done nor be
/// cleaned up on its hosts.
pub(super) fn outcome(
    unrecorded: bool,
    interrupted: bool,
    actions: &[(String, Status)],
    paused: bool,
) -> RunStatus {
    let statuses = || actions.iter().map(|(_, s)| *s);
    if unrecorded {
        RunStatus::Unrecorded
    } else if interrupted {
        RunStatus::Interrupted
    } else if statuses().any(Status::is_failure) {
        RunStatus::Failed
    } else if paused {
        RunStatus::Paused
    } else if statuses().any(|s| matches!(s, Status::AwaitingApproval | Status::Unknown)) {
        RunStatus::AwaitingApproval
    } else {
        RunStatus::Succeeded
    }
}

#[cfg(test)]
mod tests {
    use super::outcome;
    use crate::event::{RunStatus, Status};

    #[test]
    fn the_run_status_is_the_most_serious_outcome() {
        let acts = |s: &[Status]| -> Vec<(String, Status)> {
            s.iter().map(|s| (String::new(), *s)).collect()
        };
        let failed = acts(&[Status::Ok, Status::Failed, Status::AwaitingApproval]);
        let waiting = acts(&[Status::Ok, Status::Unknown]);
        let fine = acts(&[Status::Ok, Status::Changed, Status::Skipped]);
        let cases = [
            (outcome(true, true, &failed, true), RunStatus::Unrecorded),
            (outcome(false, true, &failed, true), RunStatus::Interrupted),
            (outcome(false, false, &failed, true), RunStatus::Failed),
            (outcome(false, false, &waiting, true), RunStatus::Paused),
            (
                outcome(false, false, &waiting, false),
                RunStatus::AwaitingApproval,
            ),
            (outcome(false, false, &fine, false), RunStatus::Succeeded),
        ];
        for (i, (got, want)) in cases.into_iter().enumerate() {
            assert_eq!(got, want, "case {i}");
        }
    }
}
