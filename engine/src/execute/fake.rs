//! A fake transport and a plan builder, so that the executor's policy (ordering, failure
//! budgets, blocks, retries, the window, the journal's guarantees) is tested without SSH.
//! Tests of what a command does on a real host stay in the end-to-end suite (`tests/suite/`).

use std::sync::{Arc, Mutex};

use runbook_modules::Registry;

use crate::clock::ManualClock;
use crate::event::Recorder;
use crate::inventory::HostId;
use crate::plan::Plan;
use crate::transport::{Exec, ExecResult, Runner, TransportError};

use super::options::Options;
use super::report::Report;

/// Answers by script text: `fail` exits 1, `drop` is an unreachable host, `count` prints the
/// number of times it ran, `work N` is N minutes of work on [`Fake::clock`]; everything else
/// exits 0. Records what ran, in order, as `SCRIPT@HOST` (the host's index).
#[derive(Default)]
pub struct Fake {
    pub ran: Mutex<Vec<String>>,
    /// The clock `work N` advances, when there is one.
    pub clock: Option<Arc<ManualClock>>,
}

impl Fake {
    /// A fake whose `work N` takes N minutes of `clock`.
    pub fn timed(clock: ManualClock) -> Self {
        Self {
            ran: Mutex::default(),
            clock: Some(Arc::new(clock)),
        }
    }

    /// The clock of a [`Fake::timed`].
    pub fn clock(&self) -> &Arc<ManualClock> {
        self.clock.as_ref().expect("a timed fake")
    }

    /// What ran so far, in order.
    pub fn ran(&self) -> Vec<String> {
        self.ran.lock().expect("not poisoned").clone()
    }
}

impl Runner for Fake {
    async fn run(&self, host: HostId, exec: Exec) -> Result<ExecResult, TransportError> {
        let n = {
            let mut ran = self.ran.lock().expect("not poisoned");
            ran.push(format!("{}@{host}", exec.script));
            ran.iter().filter(|r| r.starts_with(&exec.script)).count()
        };
        let ok = |stdout: Vec<u8>| ExecResult {
            code: Some(0),
            stdout,
            stderr: Vec::new(),
        };
        if let Some(minutes) = exec.script.strip_prefix("work ") {
            let minutes: i64 = minutes.parse().unwrap_or(0);
            if let Some(clock) = &self.clock {
                clock.advance(jiff::SignedDuration::from_mins(minutes));
            }
            return Ok(ok(Vec::new()));
        }
        match exec.script.as_str() {
            "drop" => Err(TransportError::Unreachable {
                host: host.to_string(),
                message: "gone".into(),
            }),
            "fail" => Ok(ExecResult {
                code: Some(1),
                stdout: Vec::new(),
                stderr: b"boom\n".to_vec(),
            }),
            "count" => Ok(ok(format!("{n}\n").into_bytes())),
            _ => Ok(ok(Vec::new())),
        }
    }
}

/// Compiles `steps` (the runbook's `steps:` or `phases:`, as YAML) on hosts `a` and `b`.
pub fn plan(steps: &str) -> Arc<Plan> {
    plan_on(steps, &["a", "b"])
}

/// Compiles `steps` on an inventory of `hosts`.
pub fn plan_on(steps: &str, hosts: &[&str]) -> Arc<Plan> {
    let text = format!(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: t, version: 1.0.0}}\n{steps}"
    );
    let parsed = crate::parse::parse_runbook("t.yaml", text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let runbook = parsed.runbook.expect("parses");
    let hosts: Vec<String> = hosts.iter().map(|h| format!("{h}: {{}}")).collect();
    let inventory = crate::inventory::Inventory::parse(
        "i.yaml",
        format!("kind: Inventory\nhosts: {{{}}}\n", hosts.join(", ")),
    )
    .expect("inventory");
    let registry = Registry::builtin();
    let overrides = crate::compile::Overrides::default();
    let input = crate::compile::Input {
        runbook: &runbook,
        inventory: &inventory,
        registry: &registry,
        overrides: &overrides,
        history: None,
    };
    Arc::new(crate::compile::compile(input).expect("compiles"))
}

/// Runs `plan` over `runner` on a runtime of its own; the report and every event.
pub fn run_with<R: Runner + 'static>(
    plan: &Arc<Plan>,
    runner: &Arc<R>,
    opts: &Options,
) -> (Report, Recorder) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut events = Recorder::default();
    let report = runtime.block_on(super::execute(
        plan.clone(),
        &Registry::builtin(),
        runner.clone(),
        opts,
        &mut events,
    ));
    (report, events)
}
