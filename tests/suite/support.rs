//! Helpers shared by the suite: compile from strings, run the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use runbook::compile::{self, Overrides};
use runbook::diagnostic::{Code, Diagnostic};
use runbook::inventory::Inventory;
use runbook::parse::parse_runbook;
use runbook::plan::Plan;
use runbook_modules::Registry;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("engine/ has a parent")
        .to_path_buf()
}

/// A small inventory most compile tests run against: `alpha` (originating), `beta`
/// (replicating), `gamma` (no role), groups `site_a` = [alpha], `lab` = all three.
pub const INVENTORY: &str = "\
kind: Inventory
vars:
  site: lab
hosts:
  alpha:
    address: 127.0.0.2
    roles: [originating]
    groups: [site_a]
    vars: {instance: A}
  beta:
    address: 127.0.0.3
    roles: [replicating]
    vars: {instance: B}
  gamma:
    address: 127.0.0.4
groups:
  site_a: {}
  lab:
    hosts: [alpha, beta, gamma]
";

/// Parses and compiles; all diagnostics (parse and compile) on failure.
pub fn compile_str(
    runbook: &str,
    inventory: &str,
    flags: &[&str],
) -> Result<Plan, Vec<Diagnostic>> {
    let parsed = parse_runbook("runbook.yaml", runbook.to_owned());
    let mut errors = parsed.diagnostics.sorted();
    let inventory = Inventory::parse("inventory.yaml", inventory.to_owned())?;
    let Some(runbook) = parsed.runbook else {
        return Err(errors);
    };
    let mut overrides = Overrides::default();
    for f in flags {
        overrides.push_flag(f).map_err(|d| vec![d])?;
    }
    let registry = Registry::builtin();
    let input = compile::Input {
        runbook: &runbook,
        inventory: &inventory,
        registry: &registry,
        overrides: &overrides,
        history: None,
    };
    match compile::compile(input) {
        Ok(plan) if errors.is_empty() => Ok(plan),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            Err(errors)
        }
    }
}

/// `(code, line, column)` of each diagnostic's primary label, in report order.
pub fn located(diagnostics: &[Diagnostic]) -> Vec<(Code, usize, usize)> {
    diagnostics
        .iter()
        .map(|d| {
            let (_, line, col) = d
                .location()
                .unwrap_or_else(|| panic!("diagnostic without location: {d:?}"));
            (d.code, line, col)
        })
        .collect()
}

/// A runbook with one phase `main` and the given steps (YAML, indented by 6 spaces under
/// `steps:`), roles `originating` and `replicating` (exactly one each).
pub fn runbook_with_steps(steps: &str) -> String {
    let mut out = String::from(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata:\n  name: t\n  version: 1.0.0\nroles:\n  originating: 1\n  replicating: 1\nphases:\n  - name: main\n    steps:\n",
    );
    out.push_str(steps);
    out
}

/// Output of one run of the real binary.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `runbook ARGS` from the repository root, without colour.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the runbook binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
