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
mod mask;
mod options;
mod outputs;
mod scheduler;
mod transfer;

/// Why nothing more starts once a write of the run's record failed (the journal, a file of the
/// run directory): the run stops there, and `apply` resumes it once the cause is fixed.
const NOT_RECORDED: &str = "the run's state could not be recorded";

pub use mask::Masker;
pub use options::{Approver, ManualPrompt, Options, Resume};
pub use scheduler::{Report, execute};
