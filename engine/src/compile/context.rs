//! The variables templates see, built once per host and shared by every action.
//!
//! | name | what |
//! | --- | --- |
//! | `params.NAME` | runbook parameters (unset optional ones are `none`) |
//! | `vars.NAME` | runbook `vars`, overridden by the inventory's variables for the host |
//! | `host` | `name`, `address`, `port`, `user`, `connection`, `groups`, `roles` of the target host |
//! | `hostvars[NAME]` | the same for any host, plus its `vars` |
//! | `groups.NAME` | host names of a group (`groups.all`: every host) |
//! | `roles.NAME` | host names that have a declared role |
//! | `item` | the current loop item |
//! | `REGISTER` | the output of a step with `register: REGISTER` |

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, Serde, Value};
use serde_json::Value as Json;

use crate::ast::{ParamKind, Runbook};
use crate::inventory::{HostId, Inventory};

use super::params::ResolvedParam;

/// Fields of `host` and `hostvars[NAME]`.
pub const HOST_FIELDS: &[&str] = &[
    "name",
    "address",
    "port",
    "user",
    "connection",
    "groups",
    "roles",
    "vars",
];

/// Fields of a registered output.
pub const OUTPUT_FIELDS: &[&str] = &[
    "stdout",
    "stderr",
    "rc",
    "changed",
    "failed",
    "skipped",
    "status",
    "stdout_lines",
    "values",
];

/// A value known only at run time. Renders as `<path>` so `plan` shows where it goes.
#[derive(Debug)]
pub struct Deferred(pub String);

impl Object for Deferred {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from_object(Deferred(format!("{}.{key}", self.0))))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

#[derive(Debug)]
pub struct Contexts {
    params: Value,
    hostvars: Value,
    groups: Value,
    roles: Value,
    hosts: Vec<(Value, Value)>,
    controller_vars: Value,
    runbook: Value,
    /// Parameters by name (secrets masked), to rebuild `params` with real secrets at run time.
    param_entries: BTreeMap<String, Value>,
    /// Names of secret parameters.
    secret_names: Vec<String>,
    /// Registered outputs at plan time: placeholders, one per register name.
    deferred: Vec<(String, Value)>,
    /// Inventory host names, by host id.
    host_names: Vec<String>,
}

impl Contexts {
    pub fn new(
        runbook: &Runbook,
        inventory: &Inventory,
        params: &[ResolvedParam],
        registers: &[String],
        templates: &crate::template::Templates,
        out: &mut Vec<crate::diagnostic::Diagnostic>,
    ) -> Self {
        let params_map: BTreeMap<&str, Value> = params
            .iter()
            .map(|p| {
                let v = match (&p.value, p.kind) {
                    (_, ParamKind::Secret) => Value::from_safe_string("********".to_owned()),
                    (Some(json), _) => Value::from(Serde(json)),
                    (None, _) => Value::from(()),
                };
                (p.name.as_str(), v)
            })
            .collect();
        let runbook_value = Value::from(BTreeMap::from([
            ("name", Value::from(runbook.metadata.name.value.as_str())),
            (
                "version",
                Value::from(runbook.metadata.version.value.as_str()),
            ),
        ]));
        let param_entries: BTreeMap<String, Value> = params_map
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let params_value = Value::from(params_map);
        let runbook_vars = render_vars(runbook, templates, &params_value, &runbook_value, out);
        let host_value = |id: HostId, with_vars: bool| {
            let h = inventory.host(id);
            let mut m: BTreeMap<&str, Value> = BTreeMap::new();
            m.insert("name", Value::from(h.name.as_str()));
            m.insert("address", Value::from(h.address.as_str()));
            // None when the inventory gives no port (ssh's configuration decides).
            m.insert("port", h.port.map_or(Value::from(()), Value::from));
            m.insert(
                "user",
                h.user.as_deref().map_or(Value::from(()), Value::from),
            );
            m.insert("connection", Value::from(Serde(h.connection)));
            m.insert("groups", Value::from(Serde(&h.groups)));
            m.insert("roles", Value::from(Serde(&h.roles)));
            if with_vars {
                m.insert("vars", merged_vars(&runbook_vars, &h.vars));
            }
            Value::from(m)
        };
        let hosts: Vec<(Value, Value)> = (0..inventory.hosts.len())
            .map(|id| {
                (
                    host_value(id, false),
                    merged_vars(&runbook_vars, &inventory.host(id).vars),
                )
            })
            .collect();
        let hostvars: BTreeMap<&str, Value> = (0..inventory.hosts.len())
            .map(|id| (inventory.host(id).name.as_str(), host_value(id, true)))
            .collect();
        let mut groups: BTreeMap<&str, Vec<&str>> = inventory
            .groups
            .iter()
            .map(|(name, g)| {
                (
                    name.as_str(),
                    g.hosts
                        .iter()
                        .map(|&h| inventory.host(h).name.as_str())
                        .collect(),
                )
            })
            .collect();
        groups.insert(
            "all",
            inventory.hosts.iter().map(|h| h.name.as_str()).collect(),
        );
        let roles: BTreeMap<&str, Vec<&str>> = runbook
            .roles
            .iter()
            .map(|r| {
                let members = inventory.role_members(&r.name.value);
                (
                    r.name.value.as_str(),
                    members
                        .iter()
                        .map(|&h| inventory.host(h).name.as_str())
                        .collect(),
                )
            })
            .collect();
        Self {
            params: params_value,
            hostvars: Value::from(hostvars),
            groups: Value::from(Serde(&groups)),
            roles: Value::from(Serde(&roles)),
            hosts,
            controller_vars: merged_vars(&runbook_vars, &inventory.vars),
            runbook: runbook_value,
            param_entries,
            secret_names: params
                .iter()
                .filter(|p| p.kind == ParamKind::Secret)
                .map(|p| p.name.clone())
                .collect(),
            deferred: {
                let mut deferred: Vec<(String, Value)> = registers
                    .iter()
                    .map(|r| (r.clone(), Value::from_object(Deferred(r.clone()))))
                    .collect();
                // Sorted by name for `deferred_for`.
                deferred.sort_by(|a, b| a.0.cmp(&b.0));
                deferred
            },
            host_names: inventory.hosts.iter().map(|h| h.name.clone()).collect(),
        }
    }

    /// The inventory's host names, by host id.
    pub fn host_names(&self) -> &[String] {
        &self.host_names
    }

    /// The context of an action with the real values of secret parameters: for `env:` only.
    pub fn for_action_with_secrets(
        &self,
        host: Option<HostId>,
        registers: &[(String, Value)],
        secrets: &BTreeMap<String, String>,
    ) -> Value {
        let base = self.for_action(host, None, registers);
        let mut params = self.param_entries.clone();
        // A secret without a value is `none`, never its display mask.
        for name in &self.secret_names {
            params.insert(
                name.clone(),
                secrets
                    .get(name)
                    .map_or_else(|| Value::from(()), |v| Value::from(v.as_str())),
            );
        }
        let mut m: BTreeMap<String, Value> = BTreeMap::new();
        if let Ok(keys) = base.try_iter() {
            for key in keys {
                if let Some(k) = key.as_str() {
                    m.insert(k.to_owned(), base.get_item(&key).unwrap_or_default());
                }
            }
        }
        m.insert("params".to_owned(), Value::from(params));
        Value::from(m)
    }

    /// Registered outputs as plan-time placeholders.
    pub fn deferred(&self) -> &[(String, Value)] {
        &self.deferred
    }

    /// The placeholders of the registered outputs named (those one step reads), by name. A
    /// context holding every placeholder costs the number of registers for every action: the
    /// square of the steps in a runbook where each step registers its output.
    pub fn deferred_for<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Vec<(String, Value)> {
        names
            .into_iter()
            .filter_map(|name| {
                self.deferred
                    .binary_search_by(|(k, _)| k.as_str().cmp(name))
                    .ok()
                    .map(|i| self.deferred[i].clone())
            })
            .collect()
    }

    /// The context of one action: the host's facts and variables, `item` in a loop, and the
    /// registered outputs visible to it (placeholders at plan time, real values at run time).
    pub fn for_action(
        &self,
        host: Option<HostId>,
        item: Option<&Value>,
        registers: &[(String, Value)],
    ) -> Value {
        let mut m: BTreeMap<&str, Value> = BTreeMap::new();
        for (name, value) in registers {
            m.insert(name.as_str(), value.clone());
        }
        m.insert("params", self.params.clone());
        m.insert("hostvars", self.hostvars.clone());
        m.insert("groups", self.groups.clone());
        m.insert("roles", self.roles.clone());
        m.insert("runbook", self.runbook.clone());
        match host {
            Some(id) => {
                m.insert("host", self.hosts[id].0.clone());
                m.insert("vars", self.hosts[id].1.clone());
            }
            None => {
                m.insert("vars", self.controller_vars.clone());
            }
        }
        if let Some(item) = item {
            m.insert("item", item.clone());
        }
        Value::from(m)
    }
}

/// The runbook's `vars:`, with templates in string values rendered. They may read `params`
/// and `runbook` only: they are the same for every host.
fn render_vars(
    runbook: &Runbook,
    templates: &crate::template::Templates,
    params: &Value,
    meta: &Value,
    out: &mut Vec<crate::diagnostic::Diagnostic>,
) -> BTreeMap<String, Json> {
    use crate::diagnostic::{Code, Diagnostic};
    let ctx = Value::from(BTreeMap::from([
        ("params", params.clone()),
        ("runbook", meta.clone()),
    ]));
    let mut rendered = BTreeMap::new();
    let secrets: Vec<&str> = runbook
        .params
        .iter()
        .filter(|p| p.kind == ParamKind::Secret)
        .map(|p| p.name.value.as_str())
        .collect();
    for (key, node) in &runbook.vars {
        if let Some(text) = node.as_str().filter(|t| crate::template::is_template(t))
            && let Some(secret) = secrets
                .iter()
                .find(|s| text.contains(&format!("params.{s}")))
        {
            out.push(
                Diagnostic::new(
                    Code::ParamSecretInTemplate,
                    format!(
                        "runbook variable `{}` reads secret parameter `{secret}`",
                        key.value
                    ),
                )
                .in_file(&runbook.source)
                .primary(node.span, "a variable is interpolated into commands")
                .help("secrets reach a host only through a step's `env:`"),
            );
            continue;
        }
        let value = match node.as_str() {
            Some(text) if crate::template::is_template(text) => {
                match templates.render_once(text, &ctx) {
                    Ok(s) => Json::String(s),
                    Err(e) => {
                        let at = e.range.map_or(node.span, |r| {
                            crate::schema::sub_span(&runbook.source, node.span, text, r)
                        });
                        out.push(
                            Diagnostic::new(Code::TemplateRender, format!("runbook variable `{}`: {}", key.value, e.message))
                                .in_file(&runbook.source)
                                .primary(at, "here")
                                .help("runbook `vars` may read `params` and `runbook` only; host facts belong in the steps"),
                        );
                        Json::Null
                    }
                }
            }
            _ => node.to_json(),
        };
        rendered.insert(key.value.clone(), value);
    }
    rendered
}

fn merged_vars(defaults: &BTreeMap<String, Json>, vars: &BTreeMap<String, Json>) -> Value {
    let mut merged = defaults.clone();
    merged.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    Value::from(Serde(&merged))
}
