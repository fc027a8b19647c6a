//! Static checks of the variables every template and expression reads.
//!
//! Everything that can be known before the run is checked here, for the whole step at once:
//! declared parameters, variables defined for every target host, declared roles, existing
//! groups, loop items only inside loops, and registered outputs only from upstream steps.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{ParamKind, Runbook};
use crate::diagnostic::Code;
use crate::inventory::{HostId, Inventory};

use super::context::{HOST_FIELDS, OUTPUT_FIELDS};
use super::params::ResolvedParam;
use super::structure::RESERVED_ROOTS;

/// A variable a template may not read, with what to say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub code: Code,
    pub message: String,
    pub help: String,
}

/// What is in scope for one step.
#[derive(Debug)]
pub struct Scope<'a> {
    pub runbook: &'a Runbook,
    pub inventory: &'a Inventory,
    pub params: &'a [ResolvedParam],
    pub hosts: &'a [Option<HostId>],
    /// Register name → flat index of the step that registers it.
    pub registers: &'a BTreeMap<String, usize>,
    pub step: usize,
    pub has_loop: bool,
    /// `ancestors.reaches(other, step)`: `other` runs before `step` on at least its own hosts.
    pub ancestors: &'a super::graph::Reach,
    /// Whether the template is the step's own `until:` (which reads the step's own output).
    pub own_output_allowed: bool,
    /// Whether secret parameters may be read (only in `env:` values).
    pub secrets_allowed: bool,
}

impl Scope<'_> {
    /// Registers the template reads (root names).
    pub fn registers_read<'v>(&self, vars: &'v BTreeSet<String>) -> Vec<&'v str> {
        vars.iter()
            .map(|v| root(v))
            .filter(|r| self.registers.contains_key(*r))
            .collect()
    }

    pub fn check(&self, vars: &BTreeSet<String>) -> Vec<Problem> {
        let mut problems = Vec::new();
        for path in vars {
            let mut parts = path.split('.');
            let head = parts.next().unwrap_or_default();
            let field = parts.next();
            let problem = |code, message: String, help: String| Problem {
                path: path.clone(),
                code,
                message,
                help,
            };
            match head {
                "params" => {
                    let Some(name) = field else { continue };
                    match self.params.iter().find(|p| p.name == name) {
                        None => problems.push(problem(
                            Code::TemplateUndefined,
                            format!("undefined parameter `{name}`"),
                            suggest(name, self.params.iter().map(|p| p.name.as_str()), "declare it under `params:`"),
                        )),
                        Some(p) if p.kind == ParamKind::Secret && !self.secrets_allowed => problems.push(problem(
                            Code::ParamSecretInTemplate,
                            format!("secret parameter `{name}` cannot be interpolated into a command"),
                            "a command line is visible in process lists and logs; secrets reach the host through the environment or standard input of modules that take them".into(),
                        )),
                        Some(_) => {}
                    }
                }
                "vars" => {
                    let Some(name) = field else { continue };
                    if self.runbook.vars.iter().any(|(k, _)| k.value == name) {
                        continue;
                    }
                    let missing: Vec<&str> = self
                        .hosts
                        .iter()
                        .filter(|h| match h {
                            Some(id) => !self.inventory.host(*id).vars.contains_key(name),
                            None => !self.inventory.vars.contains_key(name),
                        })
                        .map(|h| h.map_or("controller", |id| self.inventory.host(id).name.as_str()))
                        .collect();
                    if !missing.is_empty() {
                        let known: BTreeSet<&str> = self
                            .runbook
                            .vars
                            .iter()
                            .map(|(k, _)| k.value.as_str())
                            .chain(self.inventory.hosts.iter().flat_map(|h| h.vars.keys().map(String::as_str)))
                            .collect();
                        problems.push(problem(
                            Code::TemplateUndefined,
                            format!("variable `{name}` is not defined for {}", list_hosts(&missing)),
                            suggest(name, known.into_iter(), "define it in the inventory (host or group `vars`) or under the runbook's `vars:`"),
                        ));
                    }
                }
                "host" => {
                    if self.hosts.contains(&None) {
                        problems.push(problem(
                            Code::TemplateUndefined,
                            "`host` is undefined in a step that runs on the controller".into(),
                            "give the step targets with `on:`, or use `hostvars[NAME]`".into(),
                        ));
                    } else if let Some(f) = field
                        && (!HOST_FIELDS.contains(&f) || f == "vars") {
                            problems.push(problem(
                                Code::TemplateUndefined,
                                format!("`host` has no field `{f}`"),
                                suggest(f, HOST_FIELDS.iter().copied().filter(|f| *f != "vars"), "inventory variables are under `vars.NAME`"),
                            ));
                        }
                }
                "groups" => {
                    if let Some(g) = field
                        && g != "all" && !self.inventory.groups.contains_key(g) {
                            problems.push(problem(
                                Code::TemplateUndefined,
                                format!("the inventory has no group `{g}`"),
                                suggest(g, self.inventory.groups.keys().map(String::as_str), "name a group of the inventory"),
                            ));
                        }
                }
                "roles" => {
                    if let Some(r) = field
                        && !self.runbook.roles.iter().any(|d| d.name.value == r) {
                            problems.push(problem(
                                Code::RoleUndeclared,
                                format!("role `{r}` is not declared by the runbook"),
                                suggest(r, self.runbook.roles.iter().map(|d| d.name.value.as_str()), "declare it under `roles:`"),
                            ));
                        }
                }
                "hostvars" | "loop" => {}
                "runbook" => {
                    if let Some(f) = field
                        && !["name", "version"].contains(&f) {
                            problems.push(problem(
                                Code::TemplateUndefined,
                                format!("`runbook` has no field `{f}`"),
                                "`runbook` has `name` and `version`".into(),
                            ));
                        }
                }
                "item" => {
                    if !self.has_loop {
                        problems.push(problem(
                            Code::TemplateUndefined,
                            "`item` is only defined in a step with `loop:`".into(),
                            "add `loop:` to the step, or remove `item`".into(),
                        ));
                    }
                }
                name => match self.registers.get(name) {
                    Some(&producer) => {
                        if producer == self.step && !self.own_output_allowed {
                            problems.push(problem(
                                Code::TemplateNotUpstream,
                                format!("step reads its own output `{name}` before it exists"),
                                "a step's own output is only visible in its `until:`".into(),
                            ));
                        } else if producer != self.step && !self.ancestors.reaches(producer, self.step) {
                            let producer_id = &self.runbook_step_id(producer);
                            problems.push(problem(
                                Code::TemplateNotUpstream,
                                format!("`{name}` is registered by step `{producer_id}`, which does not run before this step"),
                                format!("add `needs: [{producer_id}]` to this step, or move it after `{producer_id}`"),
                            ));
                        }
                        if let Some(f) = field
                            && !OUTPUT_FIELDS.contains(&f) {
                                problems.push(problem(
                                    Code::TemplateUndefined,
                                    format!("registered output `{name}` has no field `{f}`"),
                                    suggest(f, OUTPUT_FIELDS.iter().copied(), "outputs have stdout, stderr, rc, changed, failed, skipped, status, stdout_lines and values"),
                                ));
                            }
                    }
                    None => problems.push(problem(
                        Code::TemplateUndefined,
                        format!("undefined variable `{name}`"),
                        suggest(
                            name,
                            RESERVED_ROOTS.iter().copied().chain(self.registers.keys().map(String::as_str)),
                            "templates see params, vars, host, hostvars, groups, roles, item and registered outputs",
                        ),
                    )),
                },
            }
        }
        problems
    }

    fn runbook_step_id(&self, index: usize) -> String {
        super::structure::flatten(self.runbook)
            .get(index)
            .map(|(_, s)| s.id.value.clone())
            .unwrap_or_default()
    }
}

fn root(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>, fallback: &str) -> String {
    match crate::suggest::closest(name, candidates) {
        Some(s) => format!("did you mean `{s}`?"),
        None => fallback.to_owned(),
    }
}

fn list_hosts(hosts: &[&str]) -> String {
    let shown: Vec<String> = hosts.iter().take(3).map(|h| format!("`{h}`")).collect();
    let more = hosts.len().saturating_sub(3);
    if more > 0 {
        format!("host(s) {} and {more} more", shown.join(", "))
    } else {
        format!("host(s) {}", shown.join(", "))
    }
}
