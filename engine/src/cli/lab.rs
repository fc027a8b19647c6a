//! `runbook lab up|down|status|inventory`: the lab of sandboxed sshd hosts (docs/lab.md).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use runbook::lab::{Lab, LabConfig, LabError, default_names};

use super::args::{LabArgs, LabCommand};
use super::outcome::{CliError, Outcome};

/// Hosts `lab up` starts when neither `--hosts` nor `-n` is given.
const DEFAULT_COUNT: usize = 3;

pub fn run(args: LabArgs) -> Result<Outcome, CliError> {
    let result = match args.command {
        LabCommand::Up {
            dir,
            hosts,
            count,
            first_address,
            roles,
            vars,
            platform,
        } => up(
            dir.dir,
            hosts,
            count,
            first_address,
            pairs(roles),
            pairs(vars),
            platform.as_deref(),
        ),
        LabCommand::Down { dir, purge } => down(&dir.dir, purge),
        LabCommand::Status { dir } => status(&dir.dir),
        LabCommand::Inventory { dir } => inventory(&dir.dir),
    };
    match result {
        Ok(text) => {
            // A closed pipe is not worth a panic.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            Ok(Outcome::Ok)
        }
        // A lab directory or file that cannot be read or written: the environment, not the
        // arguments (a lab that fails to start or stop stays exit 2, as docs/cli.md says).
        Err(e @ LabError::Io(_)) => Err(CliError::environment(e)),
        Err(e) => Err(CliError::invalid(e.to_string())),
    }
}

/// `NAME=VALUE` arguments (clap checks the `=`).
fn pairs(raw: Vec<String>) -> Vec<(String, String)> {
    raw.into_iter()
        .filter_map(|s| s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

fn up(
    dir: PathBuf,
    hosts: Vec<String>,
    count: Option<usize>,
    first_address: Option<std::net::Ipv4Addr>,
    roles: Vec<(String, String)>,
    vars: Vec<(String, String)>,
    platform: Option<&str>,
) -> Result<String, LabError> {
    let hosts = if hosts.is_empty() {
        default_names(count.unwrap_or(DEFAULT_COUNT))
    } else {
        hosts
    };
    let mut config = LabConfig {
        dir,
        hosts,
        first_address,
        roles,
        vars,
    };
    if let Some(platform) = platform {
        config = config
            .platform(platform)
            .map_err(|problem| LabError::InvalidConfig {
                problem,
                help: "give the variables with `--var` instead".into(),
            })?;
    }
    let mut lab = Lab::up(config)?;
    // sshd may start and still refuse logins (a locked account, for one): a lab nobody can
    // log in to is stopped again (by dropping `lab`) rather than left running.
    for h in lab.hosts() {
        lab.check_login(&h.name)?;
    }
    lab.detach();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lab up: {} host{} in {}",
        lab.hosts().len(),
        if lab.hosts().len() == 1 { "" } else { "s" },
        lab.dir().display()
    );
    let _ = writeln!(out, "inventory: {}", lab.inventory_path().display());
    let first = &lab.hosts()[0].name;
    let _ = writeln!(
        out,
        "ssh:       ssh -F {} {first}\n",
        lab.ssh_config_path().display()
    );
    let _ = writeln!(
        out,
        "{:<12} {:<22} {:<8} ROOT",
        "HOST", "ADDRESS:PORT", "PID"
    );
    for h in lab.hosts() {
        let _ = writeln!(
            out,
            "{:<12} {:<22} {:<8} {}",
            h.name,
            format!("{}:{}", h.address, h.port),
            h.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            h.root().display()
        );
    }
    let _ = writeln!(
        out,
        "\nstop it with: runbook lab down --dir {}",
        lab.dir().display()
    );
    Ok(out)
}

fn down(dir: &Path, purge: bool) -> Result<String, LabError> {
    let report = if purge {
        Lab::purge(dir)?
    } else {
        Lab::down(dir)?
    };
    let mut out = String::new();
    if !report.found {
        let _ = writeln!(out, "no lab in {}; nothing to stop", dir.display());
    } else if report.stopped.is_empty() {
        let _ = writeln!(out, "lab down: nothing was running in {}", dir.display());
    } else {
        let list: Vec<String> = report
            .stopped
            .iter()
            .map(|(name, pid)| format!("{name} (pid {pid})"))
            .collect();
        let _ = writeln!(out, "lab down: stopped {}", list.join(", "));
    }
    if purge && report.found {
        let _ = writeln!(out, "removed {}", dir.display());
    }
    Ok(out)
}

fn status(dir: &Path) -> Result<String, LabError> {
    let hosts = Lab::status(dir)?;
    let mut out = format!(
        "{:<12} {:<6} {:<22} {}\n",
        "HOST", "STATE", "ADDRESS:PORT", "PID"
    );
    for h in hosts {
        let _ = writeln!(
            out,
            "{:<12} {:<6} {:<22} {}",
            h.name,
            if h.up { "up" } else { "down" },
            format!("{}:{}", h.address, h.port),
            h.pid.map_or_else(|| "-".to_owned(), |p| p.to_string())
        );
    }
    Ok(out)
}

fn inventory(dir: &Path) -> Result<String, LabError> {
    let lab = Lab::load(dir)?;
    let path = lab.inventory_path();
    fs_err::metadata(&path)?;
    Ok(format!("{}\n", path.display()))
}
