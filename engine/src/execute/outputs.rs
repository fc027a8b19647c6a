//! Registered outputs: what `register: NAME` makes visible to later templates.

use std::collections::BTreeMap;

use minijinja::value::Value as TValue;

use crate::event::Status;
use crate::inventory::HostId;
use crate::plan::Plan;

/// The result of one action as templates see it (`NAME.stdout`, `NAME.rc`, ...).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub rc: Option<i32>,
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub status: &'static str,
    pub stdout_lines: Vec<String>,
    /// Standard output parsed as JSON, when it is JSON.
    pub values: serde_json::Value,
}

impl Output {
    pub fn new(status: Status, rc: Option<i32>, stdout: String, stderr: String) -> Self {
        let values = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
        // One final newline is the end of the output, not part of it (as Ansible has it):
        // `x.stdout | int` works.
        let mut stdout = stdout;
        let mut stderr = stderr;
        if stdout.ends_with('\n') {
            stdout.pop();
        }
        if stderr.ends_with('\n') {
            stderr.pop();
        }
        Self {
            stdout_lines: stdout.lines().map(str::to_owned).collect(),
            stdout,
            stderr,
            rc,
            changed: status == Status::Changed,
            failed: status.is_failure(),
            skipped: matches!(status, Status::Skipped | Status::Blocked),
            status: status.as_str(),
            values,
        }
    }

    pub fn value(&self) -> TValue {
        TValue::from(minijinja::value::Serde(self))
    }
}

/// An output as the journal stores it (JSON of [`Output`]).
#[derive(Debug, serde::Deserialize)]
pub struct StoredOutput(serde_json::Value);

impl StoredOutput {
    pub fn into_value(self) -> TValue {
        TValue::from(minijinja::value::Serde(self.0))
    }
}

/// Outputs by register name and host.
#[derive(Debug, Default)]
pub struct Outputs {
    values: BTreeMap<(String, Option<HostId>), TValue>,
}

impl Outputs {
    pub fn insert(&mut self, register: &str, host: Option<HostId>, output: &Output) {
        self.values
            .insert((register.to_owned(), host), output.value());
    }

    pub fn insert_value(&mut self, register: &str, host: Option<HostId>, value: TValue) {
        self.values.insert((register.to_owned(), host), value);
    }

    /// The outputs visible to an action on `host`: each register's value from the same host,
    /// or from the producing step's only host.
    pub fn visible(&self, plan: &Plan, host: Option<HostId>) -> Vec<(String, TValue)> {
        let mut out = Vec::new();
        for step in &plan.steps {
            let Some(name) = &step.register else { continue };
            let from = if step.hosts.contains(&host) {
                Some(host)
            } else if step.hosts.len() == 1 {
                Some(step.hosts[0])
            } else {
                None
            };
            if let Some(v) = from.and_then(|h| self.values.get(&(name.clone(), h))) {
                out.push((name.clone(), v.clone()));
            }
        }
        out
    }
}
