//! Reaching hosts: SSH (multiplexed, strict host keys) or the local machine.
//!
//! One master connection per host, opened lazily by the first action on that host and reused
//! by every later one; a host whose connection fails is unreachable for the rest of the run,
//! without a second attempt behind the operator's back. Every command runs inside the
//! [`wrapper`], which makes it killable and lets secrets travel on standard input.

mod endpoint;
mod exec;
mod fault;
mod ssh;
mod upload;
pub mod wrapper;

pub use endpoint::Endpoint;
pub use exec::{Exec, ExecResult, Runner, TransportError, Transports};
pub use fault::ScriptFate;
