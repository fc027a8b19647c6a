//! Resolving a selector against an inventory and the runbook's declared roles.
//!
//! A bare name could mean a role, a group or a host. Roles win because runbooks are written
//! in terms of roles; a role and a group of the same name are one thing (membership of the
//! group gives the role), but a host that shares its name with either is ambiguous, and the
//! user must say which with a prefix rather than have us guess.

use std::collections::BTreeSet;
use std::ops::Range;

use super::{Expr, Selector, Term, TermKind};
use crate::diagnostic::Code;
use crate::inventory::{HostId, Inventory};

/// A term that does not name anything, or names too many things.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No role, group or host of this name (or no host matches this glob).
    #[error("`{name}` matches no role, group or host")]
    Unknown {
        name: String,
        range: Range<usize>,
        suggestion: Option<String>,
    },
    /// A bare name that is a host and also a declared role or a group.
    #[error("`{name}` is ambiguous: it is a {}", kinds.join(" and a "))]
    Ambiguous {
        name: String,
        range: Range<usize>,
        kinds: Vec<&'static str>,
    },
    /// `role:X` where the runbook declares no role `X`.
    #[error("role `{name}` is not declared by the runbook")]
    UndeclaredRole {
        name: String,
        range: Range<usize>,
        suggestion: Option<String>,
    },
}

impl ResolveError {
    /// Byte range of the offending name within the selector text.
    pub fn range(&self) -> Range<usize> {
        match self {
            ResolveError::Unknown { range, .. }
            | ResolveError::Ambiguous { range, .. }
            | ResolveError::UndeclaredRole { range, .. } => range.clone(),
        }
    }

    pub fn code(&self) -> Code {
        match self {
            ResolveError::Unknown { .. } => Code::TargetUnknown,
            ResolveError::Ambiguous { .. } => Code::TargetAmbiguous,
            ResolveError::UndeclaredRole { .. } => Code::RoleUndeclared,
        }
    }

    pub fn help(&self) -> String {
        match self {
            ResolveError::Unknown {
                suggestion: Some(s),
                ..
            }
            | ResolveError::UndeclaredRole {
                suggestion: Some(s),
                ..
            } => {
                format!("did you mean `{s}`?")
            }
            ResolveError::Unknown {
                suggestion: None, ..
            } => "name a role declared under `roles:`, or a group or host of the inventory".into(),
            ResolveError::UndeclaredRole {
                name,
                suggestion: None,
                ..
            } => {
                format!("declare `{name}` under the runbook's `roles:`")
            }
            ResolveError::Ambiguous { name, kinds, .. } => {
                let options: Vec<String> = kinds.iter().map(|k| format!("`{k}:{name}`")).collect();
                format!("say which with a prefix: {}", options.join(" or "))
            }
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else {
        return rest.is_empty();
    };
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

struct Context<'a> {
    inventory: &'a Inventory,
    roles: &'a BTreeSet<String>,
    errors: Vec<ResolveError>,
}

impl Selector {
    /// The hosts this selector picks, sorted by [`HostId`] and without duplicates; or every
    /// term that names nothing or too much. `declared_roles` are the runbook's `roles:`.
    pub fn resolve(
        &self,
        inventory: &Inventory,
        declared_roles: &BTreeSet<String>,
    ) -> Result<Vec<HostId>, Vec<ResolveError>> {
        let mut cx = Context {
            inventory,
            roles: declared_roles,
            errors: Vec::new(),
        };
        let hosts = cx.eval(&self.expr);
        if cx.errors.is_empty() {
            Ok(hosts.into_iter().collect())
        } else {
            Err(cx.errors)
        }
    }
}

impl Context<'_> {
    fn all(&self) -> BTreeSet<HostId> {
        (0..self.inventory.hosts.len()).collect()
    }

    fn eval(&mut self, expr: &Expr) -> BTreeSet<HostId> {
        match expr {
            Expr::Term(term) => self.term(term),
            Expr::Not(inner) => {
                let excluded = self.eval(inner);
                self.all().difference(&excluded).copied().collect()
            }
            Expr::And(items) => {
                let mut sets = items.iter().map(|item| self.eval(item)).collect::<Vec<_>>();
                let first = sets.pop().unwrap_or_default();
                sets.iter()
                    .fold(first, |acc, set| acc.intersection(set).copied().collect())
            }
            Expr::Or(items) => items.iter().flat_map(|item| self.eval(item)).collect(),
        }
    }

    fn group(&self, name: &str) -> Option<BTreeSet<HostId>> {
        if name == "all" {
            return Some(self.all());
        }
        self.inventory
            .groups
            .get(name)
            .map(|g| g.hosts.iter().copied().collect())
    }

    fn hosts(&self, pattern: &str) -> BTreeSet<HostId> {
        if pattern.contains('*') {
            let hosts = self.inventory.hosts.iter().enumerate();
            hosts
                .filter(|(_, h)| glob_match(pattern, &h.name))
                .map(|(id, _)| id)
                .collect()
        } else {
            self.inventory.host_id(pattern).into_iter().collect()
        }
    }

    fn unknown<'n>(&mut self, term: &Term, candidates: impl Iterator<Item = &'n str>) {
        let suggestion = crate::suggest::closest(&term.name, candidates).map(str::to_owned);
        self.errors.push(ResolveError::Unknown {
            name: term.name.clone(),
            range: term.range.clone(),
            suggestion,
        });
    }

    fn term(&mut self, term: &Term) -> BTreeSet<HostId> {
        let inventory = self.inventory;
        let name = term.name.as_str();
        let host_names = || inventory.hosts.iter().map(|h| h.name.as_str());
        let group_names = || inventory.groups.keys().map(String::as_str).chain(["all"]);
        match term.kind {
            Some(TermKind::Role) => {
                if self.roles.contains(name) {
                    return inventory.role_members(name).into_iter().collect();
                }
                let suggestion =
                    crate::suggest::closest(name, self.roles.iter().map(String::as_str))
                        .map(str::to_owned);
                self.errors.push(ResolveError::UndeclaredRole {
                    name: name.to_owned(),
                    range: term.range.clone(),
                    suggestion,
                });
            }
            Some(TermKind::Group) => match self.group(name) {
                Some(hosts) => return hosts,
                None => self.unknown(term, group_names()),
            },
            Some(TermKind::Host) => {
                let hosts = self.hosts(name);
                if !hosts.is_empty() {
                    return hosts;
                }
                self.unknown(term, host_names());
            }
            None => {
                let is_role = self.roles.contains(name);
                let group = self.group(name);
                let hosts = self.hosts(name);
                let is_host = !name.contains('*') && !hosts.is_empty();
                if is_host && (is_role || group.is_some()) {
                    let kinds = [
                        (is_role, "role"),
                        (group.is_some(), "group"),
                        (true, "host"),
                    ];
                    self.errors.push(ResolveError::Ambiguous {
                        name: name.to_owned(),
                        range: term.range.clone(),
                        kinds: kinds
                            .iter()
                            .filter(|(is, _)| *is)
                            .map(|(_, k)| *k)
                            .collect(),
                    });
                } else if is_role {
                    return inventory.role_members(name).into_iter().collect();
                } else if let Some(hosts) = group {
                    return hosts;
                } else if !hosts.is_empty() {
                    return hosts;
                } else if inventory.role_names().contains(name) {
                    // An inventory role the runbook does not declare: say so, rather than
                    // "unknown", since the name is right and the declaration is missing.
                    self.errors.push(ResolveError::UndeclaredRole {
                        name: name.to_owned(),
                        range: term.range.clone(),
                        suggestion: None,
                    });
                } else {
                    let roles = self.roles.iter().map(String::as_str);
                    let known: Vec<&str> = roles.chain(group_names()).chain(host_names()).collect();
                    self.unknown(term, known.into_iter());
                }
            }
        }
        BTreeSet::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("web*", "web1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*.example.com", "a.example.com"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(
            !glob_match("ab*ba", "aba"),
            "prefix and suffix must not overlap"
        );
        assert!(!glob_match("web", "web1"));
        assert!(glob_match("db0*", "db0"));
    }
}
