//! Saved plans, as Terraform's: `runbook plan ... --out PLAN` seals the plan with the
//! fingerprints of what it was made from; `runbook apply PLAN` runs exactly that plan, or refuses
//! (exit 2) naming what changed since.
//!
//! Why fingerprints and a recompile rather than executing the stored JSON: the plan's operations
//! are rebuilt by the same compiler from the same inputs, and the file's fingerprints prove they
//! are the same inputs (runbook, inventory, parameter files, `-e` values) and the same rendered
//! actions (what the modules made of them: a changed binary's modules refuse too). The reviewer
//! approved the plan in the file; nothing else can run under its name.

use std::path::Path;

use runbook::plan::{Plan, render_json};
use serde::{Deserialize, Serialize};

use super::args::Inputs;

pub mod probe;

/// The value of `format`, the file's first field: how `apply` tells a saved plan from a runbook.
pub const FORMAT: &str = "runbook-saved-plan";

#[derive(Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub format_version: u32,
    /// The `runbook` version that wrote it.
    pub engine: String,
    pub runbook: FileFingerprint,
    pub inventory: FileFingerprint,
    pub params_files: Vec<FileFingerprint>,
    /// The `-e NAME=VALUE` given to `plan` (secrets are refused there).
    pub extra: Vec<String>,
    /// The resolved parameter values (secrets left out).
    pub params: String,
    /// Every action's definition as the modules rendered it (ids and operations).
    pub modules: String,
    /// The sealed plan, as `plan --format json` prints it, for the reviewer and for tools.
    pub plan: serde_json::Value,
    /// What the plan's read-only checks saw (`plan --probe`), by action id, sorted; `apply`
    /// probes again and refuses when any differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<probe::Facts>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct FileFingerprint {
    /// As given to `plan`, made absolute (a built-in runbook's name as it is).
    pub path: String,
    pub sha256: String,
}

fn file(path: &Path) -> FileFingerprint {
    let bytes = if path.exists() {
        fs_err::read(path).unwrap_or_default()
    } else {
        // A built-in runbook given by name.
        super::load::runbook_text(path)
            .unwrap_or_default()
            .into_bytes()
    };
    // Absolute, so the plan applies from any directory; a built-in name stays a name.
    let shown = if path.exists() {
        std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    FileFingerprint {
        path: shown.display().to_string(),
        sha256: runbook::journal::fingerprint(&bytes),
    }
}

fn params(plan: &Plan) -> String {
    let values: Vec<(&str, Option<&serde_json::Value>)> = plan
        .params
        .iter()
        .filter(|p| p.kind != runbook::ast::ParamKind::Secret)
        .map(|p| (p.name.as_str(), p.value.as_ref()))
        .collect();
    runbook::journal::fingerprint(
        serde_json::to_string(&values)
            .unwrap_or_default()
            .as_bytes(),
    )
}

fn modules(plan: &Plan) -> String {
    let mut text = String::new();
    for (a, action) in plan.actions() {
        text.push_str(&plan.action_id(action));
        text.push(' ');
        text.push_str(plan.action_fingerprint(a));
        text.push('\n');
    }
    runbook::journal::fingerprint(text.as_bytes())
}

impl SavedPlan {
    pub fn of(inputs: &Inputs, plan: &Plan) -> Self {
        Self {
            format: FORMAT.to_owned(),
            format_version: 1,
            engine: env!("CARGO_PKG_VERSION").to_owned(),
            runbook: file(&inputs.runbook),
            inventory: file(&inputs.inventory),
            params_files: inputs.params.iter().map(|p| file(p)).collect(),
            extra: inputs.extra.clone(),
            params: params(plan),
            modules: modules(plan),
            plan: serde_json::from_str(&render_json(plan)).unwrap_or_default(),
            facts: None,
        }
    }

    /// The saved plan in `path`, when the file is one (its content says so, whatever its name).
    pub fn read(path: &Path) -> Option<Result<Self, String>> {
        let text = fs_err::read_to_string(path).ok()?;
        let head: String = text.chars().take(200).collect();
        if !(head.trim_start().starts_with('{')
            && head.contains(&format!("\"format\": \"{FORMAT}\"")))
        {
            return None;
        }
        Some(
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a readable saved plan: {e}", path.display())),
        )
    }

    /// Why `plan` (compiled now from [`SavedPlan::inputs`]) is not the saved one, naming every
    /// file or fingerprint that changed; `Ok` when it is exactly the plan saved.
    pub fn check(&self, saved: &Path, inputs: &Inputs, plan: &Plan) -> Result<(), String> {
        let now = Self::of(inputs, plan);
        let mut changed = Vec::new();
        let mut compare = |what: &str, then: &FileFingerprint, now: &FileFingerprint| {
            if then != now {
                changed.push(format!(
                    "the {what} {} changed (sha256 {} then, {} now)",
                    then.path,
                    &then.sha256[..12.min(then.sha256.len())],
                    &now.sha256[..12.min(now.sha256.len())]
                ));
            }
        };
        compare("runbook", &self.runbook, &now.runbook);
        compare("inventory", &self.inventory, &now.inventory);
        for (then, now) in self.params_files.iter().zip(&now.params_files) {
            compare("parameter file", then, now);
        }
        if changed.is_empty() && self.params != now.params {
            changed.push("the parameters resolve to other values".to_owned());
        }
        if changed.is_empty() && self.modules != now.modules {
            changed.push(format!(
                "the modules render other actions (saved by runbook {}, this is {})",
                self.engine, now.engine
            ));
        }
        if changed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "refusing the saved plan {}: {}; nothing was run. Plan again (`runbook plan ... --out`), review it and apply the new plan",
                saved.display(),
                changed.join("; ")
            ))
        }
    }

    /// With facts saved (`plan --probe --out`): probes the hosts again and refuses, naming every
    /// fact that changed, before anything runs.
    pub fn check_facts(&self, saved: &Path, inputs: &Inputs, state: &Path) -> Result<(), String> {
        let Some(facts) = &self.facts else {
            return Ok(());
        };
        let now = probe::probe(inputs, Some(state))
            .map_err(|e| format!("refusing the saved plan {}: {e}", saved.display()))?;
        let changed = probe::changed(facts, &now);
        if changed.is_empty() {
            return Ok(());
        }
        Err(format!(
            "refusing the saved plan {}: the hosts changed since it was probed; nothing was run:\n  {}\nPlan again (`runbook plan ... --probe --out`), review it and apply the new plan",
            saved.display(),
            changed.join("\n  ")
        ))
    }
}
