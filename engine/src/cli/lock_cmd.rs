//! `runbook lock show` and `runbook lock steal RUN --reason TEXT`: the runs' leases in the
//! shared journal. A state directory has no leases: its locks are held by live processes
//! and freed by the kernel when they end, so there is nothing to steal.

use std::fmt::Write as _;
use std::path::Path;

use runbook::journal::postgres::{self, Database};

use super::args::LockCommand;
use super::outcome::{CliError, Outcome};

pub fn run(command: &LockCommand) -> Result<Outcome, CliError> {
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
fn open(state: &Path) -> Result<Database, CliError> {
    let Some(url) = state.to_str().filter(|s| postgres::is_url(s)) else {
        return Err(CliError::Invalid(format!(
            "{} is a state directory: its locks are held by the processes of the runs (the kernel frees them when a process ends), so there are no leases to show or steal; leases are in the shared journal (`--state postgres://...`)",
            state.display()
        )));
    };
    Database::open(url).map_err(CliError::environment)
}

fn show(state: &Path) -> Result<Outcome, CliError> {
    let db = open(state)?;
    let leases = db.leases().map_err(CliError::environment)?;
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
    Ok(Outcome::Ok)
}

fn steal(state: &Path, run: &str, reason: &str, by: Option<&str>) -> Result<Outcome, CliError> {
    if reason.trim().is_empty() {
        return Err(CliError::invalid(
            "`--reason` must say why the lease is stolen (it is recorded with the run)",
        ));
    }
    let db = open(state)?;
    let by = super::identity::operator(by);
    match db.steal(run, &by, reason) {
        Ok(Ok(s)) => {
            println!(
                "stole the lease of run {run} from {} (epoch {}); recorded with the run. `runbook resume {run}{}` takes it over (a new epoch) and settles its in-flight actions from their hosts",
                s.from,
                s.epoch,
                super::state::arg(state)
            );
            Ok(Outcome::Ok)
        }
        Ok(Err(postgres::stolen::Refusal::NoLease)) => Err(CliError::Invalid(format!(
            "run `{run}` has no lease in {}: nothing to steal (`runbook lock show{}` lists them)",
            db.shown(),
            super::state::arg(state)
        ))),
        Err(e) => Err(CliError::environment(e)),
    }
}
