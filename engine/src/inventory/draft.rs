//! The format-independent middle of inventory loading.
//!
//! Each format parser only records what its file says: hosts with their own settings, groups
//! with their members, children and variables, each with the span it came from. Whatever
//! follows from the file as a whole (undefined references, cycles, transitive membership,
//! variable precedence, Ansible's connection variables) is worked out once, here, so the three
//! formats cannot disagree about it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value as Json;

use super::ansible;
use super::model::{Connection, Group, Host, HostId, Inventory, InventoryFormat};
use super::ssh_values::{self, Field};
use crate::diagnostic::{Code, Diagnostic, SourceFile};
use crate::schema::{Reporter, Spanned};
use crate::yaml::Span;

/// A variable's value and where it was written, so a bad `ansible_port` inherited from a group
/// is reported at the group.
#[derive(Clone, Debug)]
pub(super) struct Var {
    pub value: Json,
    pub span: Span,
    /// The file it was written in when not the inventory itself (`group_vars/NAME.yml`).
    pub file: Option<SourceFile>,
}

impl PartialEq for Var {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.span == other.span
    }
}

pub(super) type Vars = BTreeMap<String, Var>;

/// A host as one file declares it, before groups and variables are resolved.
#[derive(Debug, Default)]
pub(super) struct DraftHost {
    pub name: String,
    pub span: Span,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub connection: Option<Connection>,
    pub ssh_options: BTreeMap<String, String>,
    pub identity_file: Option<String>,
    pub roles: Vec<Spanned<String>>,
    /// Groups the host names itself (native `groups:`); created when not defined.
    pub groups: Vec<Spanned<String>>,
    pub vars: Vars,
}

#[derive(Debug, Default)]
pub(super) struct DraftGroup {
    pub span: Span,
    /// Member host names, each where it is mentioned.
    pub hosts: Vec<Spanned<String>>,
    pub children: Vec<Spanned<String>>,
    pub vars: Vars,
}

/// Everything a format parser found; [`Draft::finish`] turns it into an [`Inventory`].
#[derive(Debug, Default)]
pub(super) struct Draft {
    pub vars: Vars,
    pub hosts: Vec<DraftHost>,
    index: HashMap<String, HostId>,
    pub groups: BTreeMap<String, DraftGroup>,
    /// `group_vars/NAME*` beside an Ansible inventory, by group (`all` included).
    pub group_files: BTreeMap<String, Vars>,
    /// `host_vars/NAME*` beside an Ansible inventory, by host.
    pub host_files: BTreeMap<String, Vars>,
}

/// Names of hosts, groups and roles: what a target selector can spell.
pub(super) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Draft {
    /// The host called `name`, added (at `span`) when this is its first mention.
    pub fn host_mut(&mut self, name: &str, span: Span) -> &mut DraftHost {
        let id = *self.index.entry(name.to_owned()).or_insert_with(|| {
            self.hosts.push(DraftHost {
                name: name.to_owned(),
                span,
                ..DraftHost::default()
            });
            self.hosts.len() - 1
        });
        &mut self.hosts[id]
    }

    /// The group called `name`, added (at `span`) when this is its first mention.
    pub fn group_mut(&mut self, name: &str, span: Span) -> &mut DraftGroup {
        self.groups
            .entry(name.to_owned())
            .or_insert_with(|| DraftGroup {
                span,
                ..DraftGroup::default()
            })
    }

    /// Resolves references, membership and variables, and reports everything wrong at once
    /// (together with what the format parser already reported). `empty_span` is where to point
    /// when there are no hosts.
    pub fn finish(
        mut self,
        format: InventoryFormat,
        mut r: Reporter,
        empty_span: Span,
    ) -> Result<Inventory, Vec<Diagnostic>> {
        // A host may name a group that is not otherwise defined: it is created.
        for host in &self.hosts {
            for group in &host.groups {
                self.groups
                    .entry(group.value.clone())
                    .or_insert_with(|| DraftGroup {
                        span: group.span,
                        ..DraftGroup::default()
                    });
            }
        }
        self.check_names(&mut r);
        if format != InventoryFormat::Native {
            // Each place a variable is written, once (not once per host that inherits it).
            ansible::check_unsupported(&self.vars, &mut r);
            for vars in self
                .groups
                .values()
                .map(|g| &g.vars)
                .chain(self.hosts.iter().map(|h| &h.vars))
                .chain(self.group_files.values())
                .chain(self.host_files.values())
            {
                ansible::check_unsupported(vars, &mut r);
            }
        }
        let members = self.direct_members(&mut r);
        self.check_children(&mut r);
        self.check_cycles(&mut r);

        let names: Vec<&String> = self.groups.keys().collect();
        let depths = self.depths(&names);
        if self.check_depth(&names, &depths, &mut r) {
            // Membership through so many levels is what the limit is there to avoid.
            return Err(r.diagnostics.sorted());
        }
        let descendants: Vec<BTreeSet<usize>> = (0..names.len())
            .map(|g| self.descendants(&names, g))
            .collect();
        let group_hosts: Vec<Vec<HostId>> = descendants
            .iter()
            .map(|below| {
                let set: BTreeSet<HostId> = below
                    .iter()
                    .flat_map(|&g| members[g].iter().copied())
                    .collect();
                set.into_iter().collect()
            })
            .collect();
        // The groups of each host, from the hosts of each group (a search of every group for
        // every host costs hosts × groups).
        let mut host_groups: Vec<Vec<usize>> = vec![Vec::new(); self.hosts.len()];
        for (g, members) in group_hosts.iter().enumerate() {
            for &h in members {
                host_groups[h].push(g);
            }
        }

        let mut hosts = Vec::with_capacity(self.hosts.len());
        for (id, draft) in self.hosts.iter().enumerate() {
            let mut in_groups = std::mem::take(&mut host_groups[id]);
            // Ansible's order: shallower groups first, then by name; the host's own last.
            in_groups.sort_by_key(|&g| (depths[g], names[g]));
            let mut vars = self.vars.clone();
            for &g in &in_groups {
                vars.extend(
                    self.groups[names[g]]
                        .vars
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
            // Ansible's precedence: every inventory-file group variable (above), then
            // `group_vars/all`, then `group_vars/GROUP` in the same group order, then the
            // host's inventory-file variables, then `host_vars/HOST`.
            let files = |name: &str| self.group_files.get(name).into_iter().flatten();
            vars.extend(files("all").map(|(k, v)| (k.clone(), v.clone())));
            for &g in &in_groups {
                vars.extend(files(names[g]).map(|(k, v)| (k.clone(), v.clone())));
            }
            vars.extend(draft.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            if let Some(own) = self.host_files.get(&draft.name) {
                vars.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
            }

            let mut host = Host {
                name: draft.name.clone(),
                span: draft.span,
                address: draft.address.clone().unwrap_or_else(|| draft.name.clone()),
                port: draft.port,
                user: draft.user.clone(),
                connection: draft.connection.unwrap_or(Connection::Ssh),
                ssh_options: draft.ssh_options.clone(),
                identity_file: draft.identity_file.clone(),
                groups: in_groups.iter().map(|&g| names[g].clone()).collect(),
                roles: draft.roles.iter().map(|r| r.value.clone()).collect(),
                vars: BTreeMap::new(),
            };
            if format != InventoryFormat::Native {
                ansible::apply_connection_vars(&mut host, &vars, &mut r);
            }
            // Without an address of its own, the host's name is the ssh destination.
            let own_address = draft.address.is_some()
                || (format != InventoryFormat::Native
                    && ["ansible_host", "ansible_ssh_host"]
                        .iter()
                        .any(|k| vars.contains_key(*k)));
            // (A name that is not a valid name at all is reported as such, once.)
            if !own_address && is_valid_name(&host.name) {
                ssh_values::check(&mut r, &host.name, Field::Address, &host.name, host.span);
            }
            host.vars = vars.into_iter().map(|(k, v)| (k, v.value)).collect();
            hosts.push(host);
        }

        if hosts.is_empty() && r.diagnostics.is_empty() {
            r.report(
                Diagnostic::new(Code::InventoryEmpty, "the inventory defines no hosts")
                    .primary(empty_span, "no hosts here")
                    .help(match format {
                        InventoryFormat::Native => "add hosts under `hosts:`",
                        InventoryFormat::AnsibleYaml => "add hosts under `all: hosts:` or a group",
                        InventoryFormat::AnsibleIni => "add host lines under a `[group]` section",
                    }),
            );
        }
        if !r.diagnostics.is_empty() {
            return Err(r.diagnostics.sorted());
        }

        let groups = self
            .groups
            .into_iter()
            .zip(group_hosts)
            .map(|((name, draft), hosts)| {
                let group = Group {
                    name: name.clone(),
                    span: draft.span,
                    hosts,
                    children: draft.children.into_iter().map(|c| c.value).collect(),
                    vars: draft.vars.into_iter().map(|(k, v)| (k, v.value)).collect(),
                };
                (name, group)
            })
            .collect();
        Ok(Inventory {
            source: r.source,
            format,
            hosts,
            groups,
            vars: self.vars.into_iter().map(|(k, v)| (k, v.value)).collect(),
        })
    }

    fn check_names(&self, r: &mut Reporter) {
        for host in &self.hosts {
            if !is_valid_name(&host.name) {
                r.report(
                    Diagnostic::new(Code::InventoryInvalidHost, format!("invalid host name `{}`", host.name))
                        .primary(host.span, "not a valid host name")
                        .help("use letters, digits, `_`, `.` and `-`; give the real address as `address` (Ansible: `ansible_host`)"),
                );
            } else if host.name.len() > super::model::MAX_HOST_NAME {
                r.report(
                    Diagnostic::new(
                        Code::NameTooLong,
                        format!(
                            "host name of {} bytes; the limit is {}",
                            host.name.len(),
                            super::model::MAX_HOST_NAME
                        ),
                    )
                    .primary(host.span, "too long")
                    .help(format!(
                        "a host name names its action directories (`RUN/STEP@HOST/`), one path component of at most 255 bytes: keep names to {} bytes and give a long DNS name as `address` (Ansible: `ansible_host`)",
                        super::model::MAX_HOST_NAME
                    )),
                );
            }
            for role in &host.roles {
                if !is_valid_name(&role.value) {
                    r.report(
                        Diagnostic::new(
                            Code::InvalidValue,
                            format!("invalid role name `{}`", role.value),
                        )
                        .primary(role.span, "not a valid role name")
                        .help("use letters, digits, `_`, `.` and `-`"),
                    );
                }
            }
        }
        for (name, group) in &self.groups {
            if !is_valid_name(name) {
                r.report(
                    Diagnostic::new(Code::InvalidValue, format!("invalid group name `{name}`"))
                        .primary(group.span, "not a valid group name")
                        .help("use letters, digits, `_`, `.` and `-`, so that `on:` can name the group"),
                );
            }
        }
    }

    /// Hosts each group names directly (by group index), reporting undefined hosts.
    fn direct_members(&self, r: &mut Reporter) -> Vec<BTreeSet<HostId>> {
        let mut members = vec![BTreeSet::new(); self.groups.len()];
        for (g, (name, group)) in self.groups.iter().enumerate() {
            for host in &group.hosts {
                if let Some(&id) = self.index.get(&host.value) {
                    members[g].insert(id);
                } else {
                    let mut d = Diagnostic::new(
                        Code::InventoryUnknownHost,
                        format!("group `{name}` names undefined host `{}`", host.value),
                    )
                    .primary(host.span, "no host of this name");
                    d = match crate::suggest::closest(
                        &host.value,
                        self.hosts.iter().map(|h| h.name.as_str()),
                    ) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help("define the host under `hosts:` first"),
                    };
                    r.report(d);
                }
            }
        }
        let index: HashMap<&str, usize> = self
            .groups
            .keys()
            .enumerate()
            .map(|(g, name)| (name.as_str(), g))
            .collect();
        for (id, host) in self.hosts.iter().enumerate() {
            for group in &host.groups {
                if let Some(&g) = index.get(group.value.as_str()) {
                    members[g].insert(id);
                }
            }
        }
        members
    }

    fn check_children(&self, r: &mut Reporter) {
        for (name, group) in &self.groups {
            for child in &group.children {
                if self.groups.contains_key(&child.value) {
                    continue;
                }
                let mut d = Diagnostic::new(
                    Code::InventoryUnknownGroup,
                    format!("group `{name}` has undefined child group `{}`", child.value),
                )
                .primary(child.span, "no group of this name");
                d = match crate::suggest::closest(
                    &child.value,
                    self.groups.keys().map(String::as_str),
                ) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("define the group before naming it as a child"),
                };
                r.report(d);
            }
        }
    }

    /// Reports every `children` edge that closes a cycle, with the path around it.
    ///
    /// A depth-first walk with an explicit stack: an INI file of 10,000 groups, each the child
    /// of the one before, is a path that deep, and a recursive walk overflowed the stack.
    fn check_cycles(&self, r: &mut Reporter) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
        for root in self.groups.keys() {
            if marks.get(root.as_str()).copied().unwrap_or(Mark::New) != Mark::New {
                continue;
            }
            marks.insert(root, Mark::Open);
            let mut path: Vec<&str> = vec![root];
            // Each open group, with the index of the next child to look at.
            let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
            while let Some(&(name, next)) = stack.last() {
                let children = &self.groups[name].children;
                let Some(child) = children.get(next) else {
                    stack.pop();
                    path.pop();
                    marks.insert(name, Mark::Done);
                    continue;
                };
                stack.last_mut().expect("the loop looked at it").1 += 1;
                let Some((child_name, _)) = self.groups.get_key_value(&child.value) else {
                    continue;
                };
                match marks.get(child_name.as_str()).copied().unwrap_or(Mark::New) {
                    Mark::New => {
                        marks.insert(child_name, Mark::Open);
                        path.push(child_name);
                        stack.push((child_name, 0));
                    }
                    Mark::Done => {}
                    Mark::Open => {
                        let start = path.iter().position(|p| *p == child_name).unwrap_or(0);
                        let cycle: Vec<String> = path[start..]
                            .iter()
                            .chain(std::iter::once(&child_name.as_str()))
                            .map(|n| format!("`{n}`"))
                            .collect();
                        r.report(
                            Diagnostic::new(
                                Code::InventoryGroupCycle,
                                format!("group `{child_name}` contains itself: {}", cycle.join(" → ")),
                            )
                            .primary(child.span, "this child closes the cycle")
                            .secondary(self.groups[child_name].span, "group defined here")
                            .help("a group cannot be its own descendant; remove one of these `children` entries"),
                        );
                    }
                }
            }
        }
    }

    /// Group `g` and every group below it (cycle-safe).
    fn descendants(&self, names: &[&String], g: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::from([g]);
        let mut todo = vec![g];
        while let Some(next) = todo.pop() {
            for child in &self.groups[names[next]].children {
                if let Ok(c) = names.binary_search(&&child.value)
                    && seen.insert(c)
                {
                    todo.push(c);
                }
            }
        }
        seen
    }

    /// Ansible's group depth: 1 under `all`, one more than the deepest parent otherwise.
    /// Longest paths in topological order (Kahn's algorithm), linear in the groups and their
    /// `children`; groups on a cycle (reported already) keep what they reached.
    fn depths(&self, names: &[&String]) -> Vec<usize> {
        let children: Vec<Vec<usize>> = names
            .iter()
            .map(|name| {
                self.groups[*name]
                    .children
                    .iter()
                    .filter_map(|c| names.binary_search(&&c.value).ok())
                    .collect()
            })
            .collect();
        let mut parents = vec![0usize; names.len()];
        for list in &children {
            for &c in list {
                parents[c] += 1;
            }
        }
        let mut depth = vec![1; names.len()];
        let mut ready: Vec<usize> = (0..names.len()).filter(|&g| parents[g] == 0).collect();
        while let Some(p) = ready.pop() {
            for &c in &children[p] {
                depth[c] = depth[c].max(depth[p] + 1);
                parents[c] -= 1;
                if parents[c] == 0 {
                    ready.push(c);
                }
            }
        }
        depth
    }

    /// Reports a `children` hierarchy deeper than [`MAX_GROUP_DEPTH`], at the first group (by
    /// name) one level too deep. Returns whether it did.
    fn check_depth(&self, names: &[&String], depths: &[usize], r: &mut Reporter) -> bool {
        let Some(g) = (0..names.len()).find(|&g| depths[g] == MAX_GROUP_DEPTH + 1) else {
            return false;
        };
        r.report(
            Diagnostic::new(
                Code::InventoryGroupDepth,
                format!("groups nested more than {MAX_GROUP_DEPTH} levels deep"),
            )
            .primary(
                self.groups[names[g]].span,
                format!("group `{}` is one level too deep", names[g]),
            )
            .help("no inventory needs this depth; flatten the `children` hierarchy"),
        );
        true
    }
}

/// The deepest `children` hierarchy of groups. Every host's variables are merged along its
/// groups and membership is resolved through every level, so the depth bounds that work.
pub const MAX_GROUP_DEPTH: usize = 128;

/// Helpers for the format parsers' tests.
#[cfg(test)]
pub(super) mod testing {
    use crate::diagnostic::{Code, Diagnostic};

    /// Code and 1-based line and column of each diagnostic's primary label.
    pub fn located(diagnostics: &[Diagnostic]) -> Vec<(Code, usize, usize)> {
        diagnostics
            .iter()
            .map(|d| {
                let (_, line, col) = d.location().expect("every inventory diagnostic is located");
                (d.code, line, col)
            })
            .collect()
    }

    /// A sorted list of names, for comparing with a host's groups or roles.
    pub fn names(items: &[&str]) -> std::collections::BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }
}
