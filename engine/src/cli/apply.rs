//! `runbook apply` and `runbook approve`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use runbook::ast::ParamKind;
use runbook::event::{RunStatus, Sink};
use runbook::execute::{Approver, ManualPrompt, Options, execute, execute_with};
use runbook::inventory::Inventory;
use runbook::plan::Plan;
use runbook::session::{Fingerprints, Request, Session, SessionError};
use runbook::target::Selector;
use runbook::transport::{Claim, Endpoint, Transports};
use runbook_modules::Registry;

use super::args::{ApplyArgs, ApproveArgs, Inputs, ProgressFormat, ResumeArgs};
use super::load;
use super::outcome::{CliError, Outcome};
use super::progress::{Bars, JsonLines, Plain, summary};

pub fn run(args: &ApplyArgs) -> Result<Outcome, CliError> {
    apply(args, None)
}

/// `runbook resume RUN`: the runbook, inventory and parameters the run was started with.
pub fn resume(args: &ResumeArgs) -> Result<Outcome, CliError> {
    let state = args.state.dir();
    let journal = super::runs::open(&state)?;
    let record = match journal.run(&args.run) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return invalid(&format!("no run `{}` in {}", args.run, state.display()));
        }
        Err(e) => return not_recorded(&state, &e.to_string(), Some(&args.run)),
    };
    if !record.state.resumable() {
        return invalid(&format!(
            "run `{}` is {}: nothing to resume",
            record.id,
            record.state.as_str()
        ));
    }
    let apply_args = ApplyArgs {
        saved_plan: None,
        inputs: Inputs {
            runbook: PathBuf::from(&record.runbook_file),
            inventory: PathBuf::from(&record.inventory_file),
            extra: serde_json::from_str(&record.params).unwrap_or_default(),
            params: Vec::new(),
            diagnostics: args.diagnostics,
        },
        forks: args.forks,
        limit: None,
        fail_fast: args.fail_fast,
        dry_run: false,
        format: args.format,
        state: super::args::StateArgs {
            dir: Some(state.clone()),
        },
        secrets: args.secrets.clone(),
        operator: args.operator.clone(),
        window: args.window.clone(),
        persist: args.persist.clone(),
    };
    apply(&apply_args, Some(record.id))
}

fn apply(args: &ApplyArgs, resume_id: Option<String>) -> Result<Outcome, CliError> {
    let state = args.state.dir();
    let (plan, inventory) = match load::load_with_state(&args.inputs, &state) {
        Ok(loaded) => loaded,
        Err(list) => {
            return Err(CliError::Diagnostics {
                list,
                format: args.inputs.diagnostics,
            });
        }
    };
    if let Some(path) = &args.saved_plan {
        let checked = match super::saved_plan::SavedPlan::read(path) {
            Some(Ok(saved)) => saved
                .check(path, &args.inputs, &plan)
                .and_then(|()| saved.check_facts(path, &args.inputs, &state)),
            Some(Err(message)) => Err(message),
            None => Err(format!("{}: not a saved plan", path.display())),
        };
        if let Err(message) = checked {
            return invalid(&message);
        }
    }
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
    let operator = super::identity::operator(args.operator.as_deref());
    let request = Request {
        state: &state,
        state_arg: super::state::arg(&state),
        runbook_file: absolute(&args.inputs.runbook),
        inventory_file: absolute(&args.inputs.inventory),
        resume_id,
        dry_run: args.dry_run,
        operator: operator.clone(),
        params: serde_json::to_string(&args.inputs.extra).unwrap_or_default(),
        fingerprints: fingerprints(&args.inputs, &plan),
        window: args.window.window.clone(),
        wait: args.window.wait,
        force: args.window.force,
    };
    let mut session = match Session::open(&request, &plan) {
        Ok(s) => s,
        Err(e) => return session_failed(&state, e),
    };
    if session.changed_since_start {
        let _ = writeln!(
            std::io::stderr(),
            "note: the runbook, inventory or parameters changed since run {} began; only actions not yet started are affected, and they follow the new definition",
            session.run_id
        );
    }
    let run_id = session.run_id.clone();
    let run_dir = session.run_dir.clone();
    let resuming = session.previous.is_some();

    // Every host the run acts on is locked before anything is recorded or run.
    // (The runtime first: the connections are dropped before it on every way out.)
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let endpoints = inventory.hosts.iter().map(Endpoint::from_host).collect();
    let transports = match Transports::new(endpoints) {
        Ok(t) => {
            let (t, refused) = t.with_persist(args.persist.get());
            if let Some(why) = refused {
                eprintln!("warning: {why}");
            }
            let claim = Claim::new(&run_id, &operator, args.dry_run);
            Arc::new(t.with_host_lock(if session.shared() && !args.dry_run {
                claim.shared_run()
            } else {
                claim
            }))
        }
        Err(e) => return invalid(&format!("cannot create the ssh control directory: {e}")),
    };
    let hosts = runbook::execute::hosts_acted_on(&plan, limit.as_ref());
    let held = runtime.block_on(transports.lock_hosts(&hosts));
    if !held.is_empty() {
        runtime.block_on(async {
            if let Ok(t) = Arc::try_unwrap(transports) {
                t.close().await;
            }
        });
        let lines: Vec<String> = held.iter().map(|(_, e)| format!("  {e}")).collect();
        return refused(&format!(
            "this {} was refused before it changed anything:\n{}\nwait for that run to end, then apply again (a killed run frees its hosts at once; if its controller itself went down, end the named process on the host)",
            if args.dry_run { "dry run" } else { "apply" },
            lines.join("\n")
        ));
    }
    if let Err(e) = session.begin(&request, &plan) {
        return session_failed(&state, e);
    }

    let mut opts = Options::new(run_id.clone(), run_dir.clone());
    opts.forks = args.forks;
    opts.fail_fast = args.fail_fast;
    opts.dry_run = args.dry_run;
    opts.limit = limit;
    opts.secrets = secrets;
    opts.wait = args.window.wait;
    opts.force = args.window.force;
    opts.state_arg = super::state::arg(&state);
    // The record the scheduler writes through: the lease (shared journal), else the SQLite
    // journal of the state directory (`opts.journal`), else nothing (a dry run).
    let mut started = session.start(&mut opts);
    let log = started.log.take();

    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let format = match args.format {
        ProgressFormat::Auto if std::io::stderr().is_terminal() => None,
        ProgressFormat::Auto | ProgressFormat::Plain => Some(ProgressFormat::Plain),
        ProgressFormat::Json => Some(ProgressFormat::Json),
    };
    if resuming && format != Some(ProgressFormat::Json) {
        let _ = writeln!(
            std::io::stderr(),
            "resuming run {run_id}: finished actions are not run again"
        );
    }
    let mut sink: Box<dyn Sink> = match format {
        None => {
            let bars = Bars::new(&plan);
            if interactive {
                let multi = bars.multi();
                let ask: Approver = Arc::new(move |p: &ManualPrompt| multi.suspend(|| prompt(p)));
                opts.approver = Some(ask);
            }
            Box::new(bars)
        }
        Some(ProgressFormat::Json) => Box::new(JsonLines::new(&run_id, opts.clock.clone())),
        Some(_) => {
            if interactive {
                opts.approver = Some(Arc::new(prompt));
            }
            Box::new(Plain)
        }
    };

    let plan = Arc::new(plan);
    let registry = Registry::builtin();
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    opts.cancel = Some(cancel_rx);
    let dry_run = args.dry_run;
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
        let report = match log {
            Some(log) => {
                execute_with(
                    plan.clone(),
                    &registry,
                    transports.clone(),
                    &opts,
                    log,
                    sink.as_mut(),
                )
                .await
            }
            None => {
                execute(
                    plan.clone(),
                    &registry,
                    transports.clone(),
                    &opts,
                    sink.as_mut(),
                )
                .await
            }
        };
        // Only a run the journal records as succeeded forgets its hosts' records: anything
        // less is resumed, and the resume settles its actions from those records.
        if report.status == RunStatus::Succeeded && !dry_run {
            transports.forget_run(&report.run_id).await;
        }
        if let Ok(t) = Arc::try_unwrap(transports) {
            t.close().await;
        }
        report
    });
    drop(sink);
    if report.status == RunStatus::Unrecorded
        && let Some(message) = started.taken_over()
    {
        return refused(&message);
    }
    drop(started);
    if !dry_run && report.status != RunStatus::Unrecorded {
        super::run_report::write_into_run_dir(&state, &run_id);
    }
    // The engine recorded how the run ended (`record_end`) before `run_finished`.
    if format != Some(ProgressFormat::Json) {
        print!("{}", summary(&report, &run_dir, &super::state::arg(&state)));
    }
    match report.status {
        RunStatus::Succeeded => Ok(Outcome::Ok),
        RunStatus::Failed | RunStatus::Interrupted => Ok(Outcome::RunFailed),
        RunStatus::AwaitingApproval => Ok(Outcome::AwaitingApproval),
        RunStatus::Paused => Ok(Outcome::Paused),
        RunStatus::Unrecorded => not_recorded(
            &state,
            report.unrecorded.as_deref().unwrap_or("a write failed"),
            Some(&run_id),
        ),
    }
}

/// The run's state could not be recorded (exit 5): says where, why, and what to do.
fn not_recorded(state: &Path, cause: &str, run: Option<&str>) -> Result<Outcome, CliError> {
    let resume = match run {
        Some(run) => format!(
            "nothing more was started and the hosts' records are kept; once {} can be written again (free space there), `runbook apply` with the same runbook and inventory (or `runbook resume {run}{}`) resumes run {run} and settles every action from its host's record",
            state.display(),
            super::state::arg(state)
        ),
        None => format!(
            "nothing was started; `runbook apply` again once {} can be written (free space there)",
            state.display()
        ),
    };
    Err(CliError::NotRecorded(format!(
        "stopped: the run's state could not be recorded in {}: {cause}\n{resume}",
        state.display()
    )))
}

/// Fingerprints of what a run is started with.
fn fingerprints(inputs: &Inputs, plan: &Plan) -> Fingerprints {
    let file = |p: &Path| runbook::journal::fingerprint(&fs_err::read(p).unwrap_or_default());
    let runbook_text = |p: &Path| {
        runbook::journal::fingerprint(super::load::runbook_text(p).unwrap_or_default().as_bytes())
    };
    let params: Vec<(&str, Option<&serde_json::Value>)> = plan
        .params
        .iter()
        .filter(|p| p.kind != ParamKind::Secret)
        .map(|p| (p.name.as_str(), p.value.as_ref()))
        .collect();
    Fingerprints {
        runbook: runbook_text(&inputs.runbook),
        inventory: file(&inputs.inventory),
        params: runbook::journal::fingerprint(
            serde_json::to_string(&params)
                .unwrap_or_default()
                .as_bytes(),
        ),
    }
}

/// A session that could not be set up: says why and exits as it says.
fn session_failed(state: &Path, e: SessionError) -> Result<Outcome, CliError> {
    match e {
        SessionError::Invalid(message) => invalid(&message),
        SessionError::Refused(message) => refused(&message),
        SessionError::NotRecorded { cause, run } => not_recorded(state, &cause, run.as_deref()),
    }
}

fn absolute(path: &Path) -> String {
    fs_err::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Records an approval with the run; the next `apply` (or `resume`) goes on past the step.
pub fn approve(args: &ApproveArgs) -> Result<Outcome, CliError> {
    let state = args.state.dir();
    // A journal that is not there is not created: the run is elsewhere.
    let journal = super::runs::open(&state)?;
    let record = match journal.run(&args.run) {
        Ok(Some(record)) => record,
        Ok(None) => {
            return invalid(&format!(
                "no run `{}` in {}",
                args.run,
                super::runs::looked_in(journal.as_ref(), &state)
            ));
        }
        Err(e) => return Err(CliError::environment(e)),
    };
    // Only a manual step of the run: an approval of a misspelt step would be recorded, and the
    // run would stop at the real one again. A step the run stopped at, or one of its runbook's
    // manual steps not reached yet (approved ahead).
    let actions = journal.actions(&args.run).map_err(CliError::environment)?;
    let waiting: Vec<&str> = actions
        .iter()
        .filter(|a| a.status == "awaiting_approval")
        .filter_map(|a| a.action.split_once('@').map(|(step, _)| step))
        .collect();
    let manual = manual_steps(&record.runbook_file);
    let known = waiting.contains(&args.step.as_str())
        || manual
            .as_ref()
            .is_none_or(|steps| steps.contains(&args.step));
    if !known {
        let list = manual.unwrap_or_default().join(", ");
        return invalid(&format!(
            "run `{}` has no manual step `{}`; its manual steps: {}{}",
            args.run,
            args.step,
            if list.is_empty() { "none" } else { &list },
            if waiting.is_empty() {
                String::new()
            } else {
                format!("; awaiting approval now: {}", waiting.join(", "))
            }
        ));
    }
    match journal.approve(&args.run, &args.step, &args.by, &args.reason) {
        Ok(()) => {
            println!(
                "approved {} of run {} by {}; `runbook resume {}{}` goes on (or `runbook apply` of the same runbook and inventory)",
                args.step,
                args.run,
                args.by,
                args.run,
                super::state::arg(&state)
            );
            Ok(Outcome::Ok)
        }
        Err(e) => Err(CliError::environment(e)),
    }
}

/// The manual steps of the runbook at `file`, or `None` when it cannot be read now (then any
/// step may be approved: the run's record is what counts).
fn manual_steps(file: &str) -> Option<Vec<String>> {
    let text = fs_err::read_to_string(file).ok()?;
    let runbook = runbook::parse::parse_runbook(file, text).runbook?;
    let registry = runbook_modules::Registry::builtin();
    Some(
        runbook
            .phases
            .iter()
            .flat_map(|p| &p.steps)
            .filter(|s| {
                registry
                    .get(&s.module.value)
                    .is_some_and(|m| m.placement() == runbook_modules::Placement::Operator)
            })
            .map(|s| s.id.value.clone())
            .collect(),
    )
}

/// Another run holds a lock this one needs; nothing was changed.
fn refused(message: &str) -> Result<Outcome, CliError> {
    Err(CliError::Refused(message.to_owned()))
}

fn invalid(message: &str) -> Result<Outcome, CliError> {
    Err(CliError::invalid(message))
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
        match value {
            Some(v) => {
                out.insert(p.name.clone(), v);
            }
            None if p.required => {
                return Err(format!(
                    "secret parameter `{0}` is required and has no value: set RUNBOOK_SECRET_{1}, or pass `--secret {0}=env:VARIABLE` or `--secret {0}=file:PATH`",
                    p.name,
                    p.name.to_uppercase()
                ));
            }
            None => {}
        }
    }
    Ok(out)
}

fn read_source(name: &str, source: &str) -> Result<String, String> {
    if let Some(var) = source.strip_prefix("env:") {
        std::env::var(var)
            .map_err(|_| format!("secret `{name}`: environment variable `{var}` is not set"))
    } else if let Some(path) = source.strip_prefix("file:") {
        let text = runbook::input::read_secret(std::path::Path::new(path))
            .map_err(|e| format!("secret `{name}`: {e}"))?;
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
