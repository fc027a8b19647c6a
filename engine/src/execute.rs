//! The executor: walks a sealed [`Plan`](crate::plan::Plan) over a [`Runner`], emitting
//! [`Event`](crate::event::Event)s.
//!
//! One scheduler loop over in-degree counts: an action becomes ready when everything it depends
//! on has finished; ready actions start in plan order (deterministic tie-breaks), limited by
//! `--forks` overall and by each host's session limit. Failure policy: a failed, timed-out or
//! unreachable action blocks what depends on it while independent branches go on (unless
//! `fail_fast`), triggers its phase's `on_failure` steps, and is never retried behind the
//! operator's back when its host dropped (its effect is unknown).

mod action;
mod admission;
#[cfg(test)]
pub(crate) mod fake;
mod hold;
mod mask;
mod options;
mod outage;
mod outputs;
mod reason;
mod record;
mod report;
mod run;
mod run_log;
mod scheduler;
mod shared_log;
mod transfer;

/// Why nothing more starts once a write of the run's record failed (the journal, a file of the
/// run directory): the run stops there, and `apply` resumes it once the cause is fixed.
const NOT_RECORDED: &str = "the run's state could not be recorded";

pub use mask::Masker;
pub use options::{Approver, ManualPrompt, Options, Resume};
pub use outage::{Kind as OutageKind, Outage, PieceTime};
pub use report::Report;
pub use run_log::{ActionFiles, Local, RecordError, RunLog};
pub use scheduler::{execute, execute_with};
pub use shared_log::{Shared, TTL_VARIABLE, ttl as lease_ttl};

/// The hosts a run of `plan` acts on: those of its actions (within `limit`) and the sources of
/// their transfers. The run locks them all before its first action.
pub fn hosts_acted_on(
    plan: &crate::plan::Plan,
    limit: Option<&std::collections::BTreeSet<crate::inventory::HostId>>,
) -> std::collections::BTreeSet<crate::inventory::HostId> {
    let mut hosts = std::collections::BTreeSet::new();
    for (_, action) in plan.actions() {
        let Some(host) = action.host else { continue };
        if limit.is_some_and(|l| !l.contains(&host)) {
            continue;
        }
        hosts.insert(host);
        // A source named by a template rendered at run time is locked when first reached.
        if let Ok(transfers) = transfer::planned(plan, &action.operations) {
            hosts.extend(transfers.iter().map(|t| t.source));
        }
    }
    hosts
}
