//! The journal: a durable record of every run, so an interrupted run resumes exactly where it
//! stopped, with nothing lost and nothing run twice.
//!
//! Embedded SQLite (bundled, no server), in WAL mode with `synchronous=FULL`: a transition is on
//! disk when the call returns. The executor records `started` before a command is sent and the
//! result before any dependent starts (see [`crate::execute`]). Secrets never reach it: outputs
//! are masked before they are recorded, and secret parameters are asked for again on resume.

mod backend;
#[doc(hidden)]
pub mod conformance;
pub mod postgres;
mod store;

pub use backend::{Backend, Lease, Steal, open};

pub use store::{
    ActionRecord, ActionTimes, Approval, Decision, Entry, History, Journal, JournalError, Piece,
    RunRecord, RunState, Transition,
};

use sha2::{Digest, Sha256};

/// Hex SHA-256 of some bytes: the fingerprints of runbooks, inventories, parameters and actions.
pub fn fingerprint(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprint_is_lowercase_hex_sha256() {
        assert_eq!(
            super::fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
