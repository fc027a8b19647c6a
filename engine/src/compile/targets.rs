//! Roles and targets: which hosts each step runs on.

use std::collections::BTreeSet;

use crate::ast::{Runbook, Step};
use crate::diagnostic::{Code, Diagnostic};
use crate::inventory::{HostId, Inventory};
use crate::schema::{Spanned, sub_span};
use crate::target::{ResolveError, Selector};

/// Checks each declared role's host count against the inventory.
pub fn check_roles(runbook: &Runbook, inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    for role in &runbook.roles {
        let members = inventory.role_members(&role.name.value);
        if role.count.allows(members.len()) {
            continue;
        }
        let names: Vec<&str> = members
            .iter()
            .map(|&h| inventory.host(h).name.as_str())
            .collect();
        let found = if names.is_empty() {
            "no host has it".to_owned()
        } else {
            format!("{} host(s) have it: {}", names.len(), names.join(", "))
        };
        let mut d = Diagnostic::new(
            Code::RoleCount,
            format!(
                "role `{}` needs {} host(s), but {found}",
                role.name.value,
                role.count.describe()
            ),
        )
        .in_file(&runbook.source)
        .primary(
            role.count_span,
            format!("requires {}", role.count.describe()),
        )
        .secondary(role.name.span, "role declared here")
        .help(format!(
            "assign the role in the inventory (`roles: [{}]` on a host, or a group named `{}`)",
            role.name.value, role.name.value
        ));
        for &h in members.iter().skip(role.count.max.unwrap_or(usize::MAX)) {
            let host = inventory.host(h);
            d = d.related(
                Diagnostic::new(
                    Code::RoleCount,
                    format!("host `{}` has role `{}`", host.name, role.name.value),
                )
                .in_file(&inventory.source)
                .primary(host.span, "one host too many"),
            );
        }
        out.push(d);
    }
}

/// Resolves the hosts of one step: its `on:`, else its phase's `on:`. `None` stands for the
/// controller, which the steps of a module placed there (`manual`, `assert`: its spec's
/// [`Placement`](runbook_modules::Placement)) use when they have no targets.
pub fn resolve_step(
    runbook: &Runbook,
    inventory: &Inventory,
    phase_on: &[Spanned<String>],
    step: &Step,
    on_controller: bool,
    out: &mut Vec<Diagnostic>,
) -> Vec<Option<HostId>> {
    let source = &runbook.source;
    let declared: BTreeSet<String> = runbook.roles.iter().map(|r| r.name.value.clone()).collect();
    // Manual and assert steps run on the controller unless they name targets themselves; a
    // phase's default `on:` is for the steps that do work on hosts.
    let controller_step = on_controller;
    let targets = if !step.on.is_empty() {
        &step.on
    } else if controller_step {
        return vec![None];
    } else {
        phase_on
    };
    if targets.is_empty() {
        out.push(
            Diagnostic::new(Code::TargetEmpty, format!("step `{}` has no targets", step.id.value))
                .in_file(source)
                .primary(step.id.span, "no `on:` here or on its phase")
                .help("add `on:` with a role, a group, a host or a selector such as `role:primary & !host:b`"),
        );
        return Vec::new();
    }
    let mut hosts = BTreeSet::new();
    let mut failed = false;
    for target in targets {
        let selector = match Selector::parse(&target.value) {
            Ok(s) => s,
            Err(e) => {
                out.push(
                    Diagnostic::new(Code::TargetSyntax, format!("invalid target `{}`: {}", target.value, e.message))
                        .in_file(source)
                        .primary(sub_span(source, target.span, &target.value, e.range), e.message.clone())
                        .help("targets are role, group or host names combined with `&`, `|`, `!` and parentheses, such as `role:replicating & !host:b`"),
                );
                failed = true;
                continue;
            }
        };
        match selector.resolve(inventory, &declared) {
            Ok(ids) => hosts.extend(ids),
            Err(errors) => {
                failed = true;
                for e in errors {
                    out.push(resolve_diagnostic(runbook, target, e));
                }
            }
        }
    }
    // A step aimed only at optional roles (`min: 0`) that no host has is simply not needed in
    // this estate (no arbiter, say): it has no actions.
    if hosts.is_empty() && !failed && only_optional_roles(runbook, targets) {
        return Vec::new();
    }
    if hosts.is_empty() && !failed {
        let shown = targets
            .iter()
            .map(|t| format!("`{}`", t.value))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(
            Diagnostic::new(
                Code::TargetEmpty,
                format!("step `{}` selects no host", step.id.value),
            )
            .in_file(source)
            .primary(
                targets[0].span.join(targets[targets.len() - 1].span),
                format!("{shown} matches no host of the inventory"),
            )
            .help("check the inventory's roles and groups, or the selector"),
        );
    }
    hosts.into_iter().map(Some).collect()
}

/// Whether every target is a union of declared roles that may have no host.
fn only_optional_roles(runbook: &Runbook, targets: &[Spanned<String>]) -> bool {
    let optional = |name: &str| {
        runbook
            .roles
            .iter()
            .any(|r| r.name.value == name && r.count.min == 0)
    };
    targets.iter().all(|t| {
        Selector::parse(&t.value).is_ok_and(|s| {
            let mut terms = s.terms().peekable();
            terms.peek().is_some()
                && !t.value.contains(['&', '!'])
                && terms
                    .all(|(kind, name, _)| matches!(kind, None | Some("role")) && optional(name))
        })
    })
}

fn resolve_diagnostic(
    runbook: &Runbook,
    target: &Spanned<String>,
    err: ResolveError,
) -> Diagnostic {
    let source = &runbook.source;
    let at = |range| sub_span(source, target.span, &target.value, range);
    match err {
        ResolveError::Unknown {
            name,
            range,
            suggestion,
        } => {
            let d = Diagnostic::new(
                Code::TargetUnknown,
                format!("`{name}` is not a role, group or host"),
            )
            .in_file(source)
            .primary(at(range), "unknown name");
            match suggestion {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(
                    "name a role declared under `roles:`, or a group or host of the inventory",
                ),
            }
        }
        ResolveError::Ambiguous { name, range, kinds } => Diagnostic::new(
            Code::TargetAmbiguous,
            format!("`{name}` is ambiguous: it is a {}", kinds.join(" and a ")),
        )
        .in_file(source)
        .primary(at(range), "ambiguous")
        .help(format!(
            "say which one you mean: {}",
            kinds
                .iter()
                .map(|k| format!("`{k}:{name}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )),
        ResolveError::UndeclaredRole {
            name,
            range,
            suggestion,
        } => {
            let d = Diagnostic::new(
                Code::RoleUndeclared,
                format!("role `{name}` is not declared by the runbook"),
            )
            .in_file(source)
            .primary(at(range), "undeclared role");
            match suggestion {
                Some(s) => d.help(format!(
                    "did you mean `{s}`? Roles are declared under `roles:`"
                )),
                None => d.help(format!(
                    "declare it under `roles:` (for example `{name}: {{count: 1}}`)"
                )),
            }
        }
    }
}
