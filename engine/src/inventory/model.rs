//! The loaded inventory, whatever format it came from.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::diagnostic::SourceFile;
use crate::yaml::Span;

/// Index of a host in [`Inventory::hosts`]: declaration order, which is also the order of
/// rolling batches.
pub type HostId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryFormat {
    Native,
    AnsibleYaml,
    AnsibleIni,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    Ssh,
    /// Run on the controller itself, without SSH.
    Local,
}

/// The longest host name, in bytes: with a step id (at most [`crate::ast::MAX_STEP_ID`]) it
/// names an action directory, `STEP@HOST`, which must fit one path component (255 bytes).
pub const MAX_HOST_NAME: usize = 120;

#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    /// Where the host is defined (its key), for diagnostics.
    pub span: Span,
    /// Address to connect to; the host name when none is given.
    pub address: String,
    /// The inventory's port; `None` when it gives none, and then ssh's own configuration
    /// (`Port` in `~/.ssh/config`, else 22) decides: nothing is forced.
    pub port: Option<u16>,
    /// The inventory's user; `None`: ssh's configuration decides (`User`, else the local user).
    pub user: Option<String>,
    pub connection: Connection,
    /// Extra `ssh -o` options, by name.
    pub ssh_options: BTreeMap<String, String>,
    pub identity_file: Option<String>,
    /// Every group the host belongs to, directly or through a parent group (`all` excluded).
    pub groups: BTreeSet<String>,
    /// Roles given explicitly (native `roles:`, Ansible `runbook_roles`). Target resolution
    /// also treats membership of a group named like a role as having that role.
    pub roles: BTreeSet<String>,
    /// Variables after precedence: inventory `vars` < parent group < child group < host.
    pub vars: BTreeMap<String, Json>,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub span: Span,
    /// Hosts in the group, directly or through child groups, in declaration order.
    pub hosts: Vec<HostId>,
    pub children: BTreeSet<String>,
    pub vars: BTreeMap<String, Json>,
}

#[derive(Clone, Debug)]
pub struct Inventory {
    pub source: SourceFile,
    pub format: InventoryFormat,
    /// In declaration order.
    pub hosts: Vec<Host>,
    /// By name; `all` is not stored, it is implied.
    pub groups: BTreeMap<String, Group>,
    /// Variables for every host (native top-level `vars`, Ansible `all: vars`).
    pub vars: BTreeMap<String, Json>,
}

impl Inventory {
    pub fn host_id(&self, name: &str) -> Option<HostId> {
        self.hosts.iter().position(|h| h.name == name)
    }

    pub fn host(&self, id: HostId) -> &Host {
        &self.hosts[id]
    }

    /// Hosts that have `role`: explicitly, or by membership of a group of that name.
    pub fn role_members(&self, role: &str) -> Vec<HostId> {
        (0..self.hosts.len())
            .filter(|&id| {
                let host = &self.hosts[id];
                host.roles.contains(role) || host.groups.contains(role)
            })
            .collect()
    }

    /// Every role name mentioned by some host.
    pub fn role_names(&self) -> BTreeSet<&str> {
        self.hosts
            .iter()
            .flat_map(|h| h.roles.iter().map(String::as_str))
            .collect()
    }
}
