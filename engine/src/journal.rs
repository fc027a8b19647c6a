//! The journal: a durable record of every run, so an interrupted run resumes exactly where it
//! stopped, with nothing lost and nothing run twice.
//!
//! Embedded SQLite (bundled, no server), in WAL mode with `synchronous=FULL`: a transition is on
//! disk when the call returns. The executor records `started` before a command is sent and the
//! result before any dependent starts (see [`crate::execute`]). Secrets never reach it: outputs
//! are masked before they are recorded, and secret parameters are asked for again on resume.

mod store;

pub use store::{ActionRecord, Entry, Journal, JournalError, RunRecord, RunState};

use sha2::{Digest, Sha256};

/// Hex SHA-256 of some bytes: the fingerprints of runbooks, inventories, parameters and actions.
pub fn fingerprint(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(bytes);
    digest.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
