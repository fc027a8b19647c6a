//! `runbook lock show` and `runbook lock steal RUN --reason TEXT`: the runs' leases in the
//! shared journal. A state directory has no leases: its locks are held by live processes
//! and freed by the kernel when they end, so there is nothing to steal.

use std::fmt::Write as _;
use std::path::Path;

use runbook::journal::postgres::{self, Database};

use super::args::LockCommand;
use super::exit;

pub fn run(command: &LockCommand) -> u8 {
    match command {
        LockCommand::Show { state } => show(&state.dir()),
        LockCommand::Steal {
            run,
            reason,
            by,
            state,
        } => steal(&state.dir(), run, reason, by.as_deref()),
    }
}

/// The shared journal `state` names, or a message why there is none.
fn open(state: &Path) -> Result<Database, u8> {
    let Some(url) = state.to_str().filter(|s| postgres::is_url(s)) else {
        eprintln!(
            "error: {} is a state directory: its locks are held by the processes of the runs (the kernel frees them when a process ends), so there are no leases to show or steal; leases are in the shared journal (`--state postgres://...`)",
            state.display()
        );
        return Err(exit::INVALID_INPUT);
    };
    Database::open(url).map_err(|e| {
        eprintln!("error: {e}");
        exit::INVALID_INPUT
    })
}

fn show(state: &Path) -> u8 {
    let db = match open(state) {
        Ok(db) => db,
        Err(code) => return code,
    };
    let leases = match db.leases() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let mut out = format!(
        "{:<26} {:<40} {:>5} {:<20} {:<20} {}\n",
        "RUN", "HOLDER", "EPOCH", "HEARTBEAT", "EXPIRES", "STATE"
    );
    for l in leases {
        let _ = writeln!(
            out,
            "{:<26} {:<40} {:>5} {:<20} {:<20} {}",
            l.run,
            format!("{} on {} (pid {})", l.operator, l.host, l.pid),
            l.epoch,
            l.heartbeat,
            l.expires,
            if l.live { "live" } else { "expired" }
        );
    }
    print!("{out}");
    exit::OK
}

fn steal(state: &Path, run: &str, reason: &str, by: Option<&str>) -> u8 {
    if reason.trim().is_empty() {
        eprintln!(
            "error: `--reason` must say why the lease is stolen (it is recorded with the run)"
        );
        return exit::INVALID_INPUT;
    }
    let db = match open(state) {
        Ok(db) => db,
        Err(code) => return code,
    };
    let by = super::identity::operator(by);
    match db.steal(run, &by, reason) {
        Ok(Ok(s)) => {
            println!(
                "stole the lease of run {run} from {} (epoch {}); recorded with the run. `runbook resume {run}{}` takes it over (a new epoch) and settles its in-flight actions from their hosts",
                s.from,
                s.epoch,
                super::state::arg(state)
            );
            exit::OK
        }
        Ok(Err(postgres::stolen::Refusal::NoLease)) => {
            eprintln!(
                "error: run `{run}` has no lease in {}: nothing to steal (`runbook lock show{}` lists them)",
                db.shown(),
                super::state::arg(state)
            );
            exit::INVALID_INPUT
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INVALID_INPUT
        }
    }
}
