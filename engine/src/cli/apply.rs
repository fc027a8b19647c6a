//! `runbook apply` and `runbook approve`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use runbook::ast::ParamKind;
use runbook::event::{RunStatus, Sink};
use runbook::execute::{Approver, ManualPrompt, Options, execute};
use runbook::inventory::Inventory;
use runbook::plan::Plan;
use runbook::target::Selector;
use runbook::transport::{Endpoint, Transports};
use runbook_modules::Registry;

use super::args::{ApplyArgs, ApproveArgs, ProgressFormat};
use super::exit;
use super::progress::{Bars, JsonLines, Plain, summary};
use super::{load, report};

pub fn run(args: &ApplyArgs) -> u8 {
    let (plan, inventory) = match load::load(&args.inputs) {
        Ok(loaded) => loaded,
        Err(ds) => {
            report::diagnostics(&ds, args.inputs.diagnostics);
            return exit::INVALID_INPUT;
        }
    };
    let secrets = match secrets(&plan, &args.secrets) {
        Ok(s) => s,
        Err(message) => return invalid(&message),
    };
    let limit = match &args.limit {
        None => None,
        Some(text) => match limit(text, &inventory) {
            Ok(hosts) => Some(hosts),
            Err(message) => return invalid(&message),
        },
    };
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| default_state(&args.inputs.runbook));
    let run_id = new_run_id();
    let run_dir = state.join("runs").join(&run_id);
    if let Err(e) = fs_err::create_dir_all(&run_dir) {
        return invalid(&format!("cannot create the run directory: {e}"));
    }
    let endpoints = inventory.hosts.iter().map(Endpoint::from_host).collect();
    let transports = match Transports::new(endpoints) {
        Ok(t) => Arc::new(t),
        Err(e) => return invalid(&format!("cannot create the ssh control directory: {e}")),
    };

    let mut opts = Options::new(run_id.clone(), run_dir.clone());
    opts.forks = args.forks;
    opts.fail_fast = args.fail_fast;
    opts.dry_run = args.dry_run;
    opts.limit = limit;
    opts.secrets = secrets;

    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let format = match args.format {
        ProgressFormat::Auto if std::io::stderr().is_terminal() => None,
        ProgressFormat::Auto | ProgressFormat::Plain => Some(ProgressFormat::Plain),
        ProgressFormat::Json => Some(ProgressFormat::Json),
    };
    let mut sink: Box<dyn Sink> = match format {
        None => {
            let bars = Bars::new();
            if interactive {
                let multi = bars.multi();
                let ask: Approver = Arc::new(move |p: &ManualPrompt| multi.suspend(|| prompt(p)));
                opts.approver = Some(ask);
            }
            Box::new(bars)
        }
        Some(ProgressFormat::Json) => Box::new(JsonLines),
        Some(_) => {
            if interactive {
                opts.approver = Some(Arc::new(prompt));
            }
            Box::new(Plain)
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let plan = Arc::new(plan);
    let registry = Registry::builtin();
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    opts.cancel = Some(cancel_rx);
    let report = runtime.block_on(async {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = writeln!(
                    std::io::stderr(),
                    "\ninterrupted: stopping the running commands on their hosts..."
                );
                let _ = cancel_tx.send(true);
            }
        });
        let report = execute(
            plan.clone(),
            &registry,
            transports.clone(),
            &opts,
            sink.as_mut(),
        )
        .await;
        if let Ok(t) = Arc::try_unwrap(transports) {
            t.close().await;
        }
        report
    });
    drop(sink);
    if format != Some(ProgressFormat::Json) {
        print!("{}", summary(&report, &run_dir));
    }
    match report.status {
        RunStatus::Succeeded => exit::OK,
        RunStatus::Failed => exit::RUN_FAILED,
        RunStatus::AwaitingApproval => exit::AWAITING_APPROVAL,
    }
}

/// Records an approval with the run. Going on from the approved step is `apply`'s resume
/// (docs/cli.md).
pub fn approve(args: &ApproveArgs) -> u8 {
    let dir = args.state.join("runs").join(&args.run);
    if !dir.is_dir() {
        return invalid(&format!(
            "no run `{}` under {}",
            args.run,
            args.state.display()
        ));
    }
    let approvals = dir.join("approvals");
    let record = serde_json::json!({
        "run": args.run, "step": args.step, "by": args.by, "reason": args.reason,
        "at": jiff::Timestamp::now().to_string(),
    });
    let path = approvals.join(format!("{}.json", args.step));
    match fs_err::create_dir_all(&approvals).and_then(|()| fs_err::write(&path, record.to_string()))
    {
        Ok(()) => {
            println!("approved {} of run {} by {}", args.step, args.run, args.by);
            exit::OK
        }
        Err(e) => invalid(&format!("cannot record the approval: {e}")),
    }
}

fn invalid(message: &str) -> u8 {
    let _ = writeln!(std::io::stderr(), "error: {message}");
    exit::INVALID_INPUT
}

fn default_state(runbook: &Path) -> PathBuf {
    runbook
        .parent()
        .map_or_else(|| PathBuf::from(".runbook"), |p| p.join(".runbook"))
}

fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    format!(
        "{}-{:04x}",
        now.strftime("%Y%m%dT%H%M%SZ"),
        std::process::id() & 0xffff
    )
}

/// The hosts of a `--limit` selector. Roles are those the inventory assigns.
fn limit(text: &str, inventory: &Inventory) -> Result<BTreeSet<usize>, String> {
    let selector =
        Selector::parse(text).map_err(|e| format!("invalid --limit `{text}`: {}", e.message))?;
    let roles: BTreeSet<String> = inventory
        .role_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let hosts = selector.resolve(inventory, &roles).map_err(|errors| {
        format!(
            "invalid --limit `{text}`: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    if hosts.is_empty() {
        return Err(format!("--limit `{text}` selects no host"));
    }
    Ok(hosts.into_iter().collect())
}

/// Secret parameter values: `--secret NAME=env:VAR|file:PATH`, else `RUNBOOK_SECRET_NAME`,
/// else a prompt on a terminal. Never from the command line itself.
fn secrets(plan: &Plan, sources: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    for s in sources {
        let (name, source) = s
            .split_once('=')
            .ok_or_else(|| format!("`--secret {s}` is not NAME=env:VAR or NAME=file:PATH"))?;
        if !plan
            .params
            .iter()
            .any(|p| p.name == name && p.kind == ParamKind::Secret)
        {
            return Err(format!(
                "`--secret {name}`: the runbook has no secret parameter `{name}`"
            ));
        }
        given.insert(name, source);
    }
    let mut out = BTreeMap::new();
    for p in plan.params.iter().filter(|p| p.kind == ParamKind::Secret) {
        let value = match given.get(p.name.as_str()) {
            Some(source) => Some(read_source(&p.name, source)?),
            None => match std::env::var(format!("RUNBOOK_SECRET_{}", p.name.to_uppercase())) {
                Ok(v) => Some(v),
                Err(_) if std::io::stdin().is_terminal() => Some(ask_secret(&p.name)?),
                Err(_) => None,
            },
        };
        if let Some(v) = value {
            out.insert(p.name.clone(), v);
        }
    }
    Ok(out)
}

fn read_source(name: &str, source: &str) -> Result<String, String> {
    if let Some(var) = source.strip_prefix("env:") {
        std::env::var(var)
            .map_err(|_| format!("secret `{name}`: environment variable `{var}` is not set"))
    } else if let Some(path) = source.strip_prefix("file:") {
        let text = fs_err::read_to_string(path).map_err(|e| format!("secret `{name}`: {e}"))?;
        Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned())
    } else {
        Err(format!(
            "secret `{name}`: the source must be `env:VARIABLE` or `file:PATH`"
        ))
    }
}

/// Reads a secret from the terminal without echo.
fn ask_secret(name: &str) -> Result<String, String> {
    let _ = write!(std::io::stderr(), "secret `{name}`: ");
    let _ = std::io::stderr().flush();
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(
                std::fs::File::open("/dev/tty")
                    .map_or_else(|_| std::process::Stdio::null(), Into::into),
            )
            .status()
    };
    let _ = stty("-echo");
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    let _ = stty("echo");
    let _ = writeln!(std::io::stderr());
    read.map_err(|e| format!("secret `{name}`: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Asks the operator to confirm a manual step on the terminal.
fn prompt(p: &ManualPrompt) -> Option<bool> {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\nmanual step `{}` ({}):", p.step, p.host);
    for line in p.instructions.lines() {
        let _ = writeln!(err, "  | {line}");
    }
    loop {
        let _ = write!(err, "type `done` when it is done, or `no` to stop: ");
        let _ = err.flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).ok()? == 0 {
            return None;
        }
        match answer.trim() {
            "done" => return Some(true),
            "no" => return Some(false),
            _ => {}
        }
    }
}
