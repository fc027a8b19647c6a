//! Command-line front end: argument parsing, loading inputs, rendering results.
//! The engine never prints; everything a person sees is rendered here.

mod apply;
mod args;
mod builtins;
mod commands;
mod eta;
mod identity;
mod lab;
mod load;
mod lock_cmd;
mod manual;
mod outcome;
mod progress;
mod report;
mod run_report;
mod runs;
mod saved_plan;
mod state;

use std::process::ExitCode;

use clap::Parser as _;

/// Exit codes, documented in docs/cli.md.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A run failed: an action failed, timed out, or its host was unreachable.
    pub const RUN_FAILED: u8 = 1;
    /// Invalid input: the runbook, inventory or parameters have errors; nothing was run.
    pub const INVALID_INPUT: u8 = 2;
    /// A run stopped at a manual step that needs `runbook approve`.
    pub const AWAITING_APPROVAL: u8 = 3;
    /// The run paused at the outage window (before it opened, at its end, or before a step
    /// that would not fit): `apply` again inside the (next) window resumes it.
    pub const PAUSED: u8 = 4;
    /// The run stopped because its state could not be recorded: a write of the journal or of
    /// the run directory failed (a full disk, a read-only or failing file system). Nothing more
    /// started and the hosts' records are kept; once the state directory can be written again,
    /// `apply` resumes the same run and settles what ran from the hosts' records.
    pub const NOT_RECORDED: u8 = 5;
    /// Refused, nothing changed: another run holds a lock this command needs (a host the run
    /// acts on, the state directory's lock for the inventory, or the run itself).
    pub const REFUSED: u8 = 6;
    /// The environment failed the command, not its input: a journal (or the shared journal's
    /// database) that cannot be opened or read, a file that cannot be written (`plan --out`,
    /// `report --out`), a lab directory that cannot be read. Not a failed record of a run:
    /// that is [`NOT_RECORDED`].
    pub const ENVIRONMENT: u8 = 7;
}

pub fn run() -> ExitCode {
    let argv = match saved_plan_argv(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(exit::INVALID_INPUT);
        }
    };
    let cli = args::Cli::parse_from(argv);
    ExitCode::from(outcome::finish(commands::dispatch(cli)))
}

/// `runbook apply PLAN [OPTIONS]` with a saved plan (told by its content): the arguments of the
/// `plan` that wrote it, and `--saved-plan PLAN`, so that `apply` checks the plan is exactly it.
fn saved_plan_argv(mut argv: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>, String> {
    if argv.get(1).is_none_or(|a| a != "apply") || argv.len() < 3 {
        return Ok(argv);
    }
    let path = std::path::PathBuf::from(&argv[2]);
    let Some(saved) = saved_plan::SavedPlan::read(&path) else {
        return Ok(argv);
    };
    let saved = saved?;
    let mut words: Vec<std::ffi::OsString> = vec![
        saved.runbook.path.clone().into(),
        "-i".into(),
        saved.inventory.path.clone().into(),
    ];
    for e in &saved.extra {
        words.push("-e".into());
        words.push(e.into());
    }
    for f in &saved.params_files {
        words.push("--params".into());
        words.push(f.path.clone().into());
    }
    words.push("--saved-plan".into());
    words.push(path.into_os_string());
    argv.splice(2..3, words);
    Ok(argv)
}
