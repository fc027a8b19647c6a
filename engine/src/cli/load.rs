//! Reading the runbook, the inventory and parameter files, and compiling them.

use std::path::Path;

use runbook::compile::{self, Overrides};
use runbook::diagnostic::{Code, Diagnostic};
use runbook::inventory::Inventory;
use runbook::parse::parse_runbook;
use runbook::plan::Plan;
use runbook_modules::Registry;

use super::args::Inputs;

/// Loads and compiles. On failure, every diagnostic from every input.
pub fn plan(inputs: &Inputs) -> Result<Plan, Vec<Diagnostic>> {
    load(inputs).map(|(plan, _)| plan)
}

/// Loads and compiles, keeping the inventory (how to reach each host) for `apply`.
pub fn load(inputs: &Inputs) -> Result<(Plan, Inventory), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let runbook = match read(&inputs.runbook) {
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
        match read(file) {
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
    let (Some(runbook), Some(inventory)) = (runbook, inventory) else {
        return Err(errors);
    };
    // The parser keeps going after shape errors, so the compiler still runs and everything is
    // reported in one go.
    let registry = Registry::builtin();
    let input = compile::Input {
        runbook: &runbook,
        inventory: &inventory,
        registry: &registry,
        overrides: &overrides,
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

fn read(path: &Path) -> Result<String, Diagnostic> {
    fs_err::read_to_string(path).map_err(|e| {
        Diagnostic::new(Code::Io, e.to_string())
            .help("check the path and that the file is readable")
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
