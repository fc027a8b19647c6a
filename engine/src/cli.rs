//! Command-line front end: argument parsing, loading inputs, rendering results.
//! The engine never prints; everything a person sees is rendered here.

mod args;
mod commands;
mod load;
mod report;

use std::process::ExitCode;

use clap::Parser as _;

/// Exit codes, documented in docs/cli.md.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    // 1 is reserved for "a run failed" (an action failed or a host was unreachable), which
    // `apply` (issue 3) returns.
    /// Invalid input: the runbook, inventory or parameters have errors; nothing was run.
    pub const INVALID_INPUT: u8 = 2;
}

pub fn run() -> ExitCode {
    let cli = args::Cli::parse();
    ExitCode::from(commands::dispatch(cli))
}
