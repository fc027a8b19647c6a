//! Reading the runbook, the inventory and parameter files, and compiling them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use runbook::builtin;
use runbook::compile::{self, Overrides};
use runbook::diagnostic::Diagnostic;
use runbook::inventory::Inventory;
use runbook::parse::parse_runbook;
use runbook::plan::Plan;
use runbook_modules::Registry;

use super::args::Inputs;

/// Loads and compiles. On failure, every diagnostic from every input.
pub fn plan(inputs: &Inputs) -> Result<Plan, Vec<Diagnostic>> {
    load(inputs).map(|(plan, _)| plan)
}

/// Loads and compiles, keeping the inventory (how to reach each host). Step estimates come
/// from earlier runs recorded in the state directory (`RUNBOOK_STATE`, else `./.runbook`: the
/// one `apply` records in by default).
pub fn load(inputs: &Inputs) -> Result<(Plan, Inventory), Vec<Diagnostic>> {
    load_with_state(inputs, &super::state::dir(None))
}

/// Median recorded duration of each step of `runbook`, from the journal in `state` (if any:
/// a directory's, or the shared one a `postgres://` URL names).
fn history(state: &Path, runbook: &str) -> BTreeMap<String, Duration> {
    let shared = state
        .to_str()
        .is_some_and(runbook::journal::postgres::is_url);
    if !shared && !state.join("journal.db").exists() {
        return BTreeMap::new();
    }
    let Ok(journal) = runbook::journal::open(state) else {
        return BTreeMap::new();
    };
    let mut by_step: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (step, ms) in journal.durations(runbook).unwrap_or_default() {
        by_step.entry(step).or_default().push(ms);
    }
    by_step
        .into_iter()
        .map(|(step, mut ms)| {
            ms.sort_unstable();
            let median = u64::try_from(ms[ms.len() / 2]).unwrap_or(0);
            (step, Duration::from_millis(median))
        })
        .collect()
}

/// [`load`], with the estimates' history read from `state`.
pub fn load_with_state(
    inputs: &Inputs,
    state: &Path,
) -> Result<(Plan, Inventory), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let runbook = match runbook_text(&inputs.runbook) {
        Ok(text) => {
            let parsed = parse_runbook(&display(&inputs.runbook), text);
            errors.extend(parsed.diagnostics.sorted());
            parsed.runbook
        }
        Err(d) => {
            errors.push(d);
            None
        }
    };
    let inventory = match Inventory::load(&inputs.inventory) {
        Ok(inv) => Some(inv),
        Err(ds) => {
            errors.extend(ds);
            None
        }
    };
    let mut overrides = Overrides::default();
    for file in &inputs.params {
        match read(file, "the parameter file") {
            Ok(text) => {
                if let Err(ds) = overrides.push_file(&display(file), text) {
                    errors.extend(ds);
                }
            }
            Err(d) => errors.push(d),
        }
    }
    for flag in &inputs.extra {
        if let Err(d) = overrides.push_flag(flag) {
            errors.push(d);
        }
    }
    let (runbook, inventory) = match (runbook, inventory) {
        (Some(runbook), Some(inventory)) => (runbook, inventory),
        (Some(runbook), None) => {
            // Without an inventory, still everything the runbook alone tells.
            errors.extend(compile::check_without_inventory(
                &runbook,
                &Registry::builtin(),
                &overrides,
            ));
            return Err(sorted(errors));
        }
        _ => return Err(errors),
    };
    // The parser keeps going after shape errors, so the compiler still runs and everything is
    // reported in one go.
    let registry = Registry::builtin();
    let history = history(state, &runbook.metadata.name.value);
    let input = compile::Input {
        runbook: &runbook,
        inventory: &inventory,
        registry: &registry,
        overrides: &overrides,
        history: Some(&history),
    };
    match compile::compile(input) {
        Ok(plan) if errors.is_empty() => Ok((plan, inventory)),
        Ok(_) => Err(sorted(errors)),
        Err(more) => {
            errors.extend(more);
            Err(sorted(errors))
        }
    }
}

fn sorted(errors: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut all = runbook::diagnostic::Diagnostics::default();
    all.extend(errors);
    all.sorted()
}

/// Reads an input file: a regular file of bounded size, UTF-8 (see `runbook::input`).
fn read(path: &Path, what: &str) -> Result<String, Diagnostic> {
    runbook::input::read_text(path, what)
}

/// The runbook's text: a built-in (`builtin:PLATFORM/NAME`, as [`resolve`] names it), else the
/// file. A file that does not exist gets the built-ins offered.
pub fn runbook_text(path: &Path) -> Result<String, Diagnostic> {
    let name = path.to_string_lossy();
    if name.starts_with(builtin::PREFIX) {
        return builtin::lookup(&name, None)
            .map(|b| b.text.to_owned())
            .map_err(|e| not_found(&e));
    }
    read(path, "the runbook").map_err(|d| {
        if path.exists() {
            d
        } else {
            not_found(
                &builtin::lookup(&name, None)
                    .err()
                    .unwrap_or_else(|| builtin::NotFound {
                        message: format!("no file `{name}`"),
                        candidates: Vec::new(),
                    }),
            )
        }
    })
}

fn not_found(e: &builtin::NotFound) -> Diagnostic {
    Diagnostic::new(
        runbook::diagnostic::Code::Io,
        format!("cannot read the runbook: {}", e.message),
    )
    .help(if e.candidates.is_empty() {
        "check the path".to_owned()
    } else {
        format!(
            "give a runbook file, or one of the built-in runbooks (`runbook list`): {}",
            e.candidates.join(", ")
        )
    })
}

/// A runbook named rather than given as a file: `switchover`, `gtm/switchover.yaml`. When no
/// file of that name exists and it names one built-in (for the inventory's platform), the
/// inputs name it as `builtin:PLATFORM/NAME` from here on (the journal records that, so a
/// resume uses the same one), and it says so on standard error. Otherwise the inputs stay as
/// they are, and reading them says what is wrong.
pub fn resolve(inputs: &mut Inputs) {
    let name = inputs.runbook.to_string_lossy().into_owned();
    if inputs.runbook.exists() || name.starts_with(builtin::PREFIX) {
        return;
    }
    let platform = Inventory::load(&inputs.inventory)
        .ok()
        .and_then(|inv| builtin::platform_of(&inv));
    if let Ok(b) = builtin::lookup(&name, platform.as_deref()) {
        let (name, version, _) = builtin::metadata(b);
        eprintln!("using the built-in runbook {} ({name} {version})", b.id());
        inputs.runbook = std::path::PathBuf::from(b.source());
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
