//! Reaching hosts: SSH (multiplexed, strict host keys) or the local machine.
//!
//! One master connection per host, opened when the run locks its hosts (or by the first command
//! on a host reached later) and reused by every command; a host whose connection fails is
//! unreachable for the rest of the run, without a second attempt behind the operator's back.
//! Each connection first takes the host lock (`host_lock.rs`), so two runs never act on one host
//! at once. Every command runs inside the [`wrapper`], which makes it killable and lets secrets travel on standard input.

mod endpoint;
mod exec;
mod fault;
mod host_lock;
pub mod persist;
mod ssh;
mod upload;
pub mod wrapper;
pub mod wrapper_helpers;

pub use endpoint::Endpoint;
pub use exec::{Exec, ExecResult, Runner, TransportError, Transports};
pub use fault::ScriptFate;
pub use host_lock::{Claim, Holder};
