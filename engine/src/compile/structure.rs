//! Checks on the runbook's own structure: unique names, known modules and arguments, `needs`
//! that name real steps, register names that do not shadow the template scope.

use std::collections::BTreeMap;

use runbook_modules::{ParamType, Registry};

use crate::ast::{Runbook, Step};
use crate::diagnostic::{Code, Diagnostic};

/// Template roots the engine defines; a `register:` may not reuse them.
pub const RESERVED_ROOTS: &[&str] = &[
    "params", "vars", "host", "hostvars", "groups", "roles", "item", "loop", "runbook",
];

/// Every step in declaration order, with its phase index.
pub fn flatten(runbook: &Runbook) -> Vec<(usize, &Step)> {
    runbook
        .phases
        .iter()
        .enumerate()
        .flat_map(|(p, phase)| phase.steps.iter().map(move |s| (p, s)))
        .collect()
}

pub fn check(
    runbook: &Runbook,
    steps: &[(usize, &Step)],
    registry: &Registry,
    out: &mut Vec<Diagnostic>,
) {
    let source = &runbook.source;
    let mut phases: BTreeMap<&str, &crate::schema::Spanned<String>> = BTreeMap::new();
    for phase in &runbook.phases {
        if let Some(first) = phases.insert(&phase.name.value, &phase.name) {
            out.push(
                Diagnostic::new(
                    Code::DuplicatePhase,
                    format!("duplicate phase name `{}`", phase.name.value),
                )
                .in_file(source)
                .primary(phase.name.span, "used again here")
                .secondary(first.span, "first used here")
                .help("give each phase a unique name"),
            );
        }
        if phase.steps_given
            && !phase
                .steps
                .iter()
                .any(|s| s.kind == crate::ast::StepKind::Main)
        {
            out.push(
                Diagnostic::new(
                    Code::EmptyPhase,
                    format!("phase `{}` has no steps", phase.name.value),
                )
                .in_file(source)
                .primary(phase.name.span, "no steps")
                .help("add steps to the phase or remove it"),
            );
        }
    }

    let mut ids: BTreeMap<&str, &Step> = BTreeMap::new();
    for (_, step) in steps {
        if let Some(first) = ids.insert(&step.id.value, step) {
            out.push(
                Diagnostic::new(Code::DuplicateId, format!("duplicate step id `{}`", step.id.value))
                    .in_file(source)
                    .primary(step.id.span, "used again here")
                    .secondary(first.id.span, "first used here")
                    .help("step ids are the stable names of steps (checkpoints and `needs` use them): make each unique"),
            );
            // Keep the first definition for lookups.
            ids.insert(&first.id.value, first);
        }
    }

    let mut registers: BTreeMap<&str, &Step> = BTreeMap::new();
    for (_, step) in steps {
        for need in &step.needs {
            if !ids.contains_key(need.value.as_str()) {
                let mut d = Diagnostic::new(
                    Code::UnknownNeed,
                    format!(
                        "step `{}` needs unknown step `{}`",
                        step.id.value, need.value
                    ),
                )
                .in_file(source)
                .primary(need.span, "no step has this id");
                d = match crate::suggest::closest(&need.value, ids.keys().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("`needs` lists ids of other steps in this runbook"),
                };
                out.push(d);
            }
        }
        if let Some(reg) = &step.register {
            if RESERVED_ROOTS.contains(&reg.value.as_str()) {
                out.push(
                    Diagnostic::new(
                        Code::RegisterConflict,
                        format!("`{}` is reserved and cannot be a register name", reg.value),
                    )
                    .in_file(source)
                    .primary(reg.span, "reserved name")
                    .help(format!("reserved names: {}", RESERVED_ROOTS.join(", "))),
                );
            } else if let Some(first) = registers.insert(&reg.value, step) {
                let first_span = first.register.as_ref().map_or(first.id.span, |r| r.span);
                out.push(
                    Diagnostic::new(
                        Code::RegisterConflict,
                        format!("register name `{}` is used by two steps", reg.value),
                    )
                    .in_file(source)
                    .primary(reg.span, "registered again here")
                    .secondary(first_span, "first registered here")
                    .help("give each registered output its own name"),
                );
            }
        }
        check_module(runbook, step, registry, out);
    }
}

fn check_module(runbook: &Runbook, step: &Step, registry: &Registry, out: &mut Vec<Diagnostic>) {
    let source = &runbook.source;
    if step.module.value.is_empty() {
        return; // reported as a missing key by the parser
    }
    let Some(module) = registry.get(&step.module.value) else {
        let mut d = Diagnostic::new(
            Code::ModuleUnknown,
            format!("unknown module `{}`", step.module.value),
        )
        .in_file(source)
        .primary(step.module.span, "no such module");
        d = match crate::suggest::closest(&step.module.value, registry.names()) {
            Some(s) => d.help(format!(
                "did you mean `{s}`? (`runbook modules` lists them all)"
            )),
            None => d.help("`runbook modules` lists the available modules"),
        };
        out.push(d);
        return;
    };
    let specs = module.params();
    for (key, _) in &step.with {
        if !specs.iter().any(|s| s.name == key.value) {
            let mut d = Diagnostic::new(
                Code::ModuleArgUnknown,
                format!(
                    "module `{}` has no argument `{}`",
                    step.module.value, key.value
                ),
            )
            .in_file(source)
            .primary(key.span, "unknown argument");
            d = match crate::suggest::closest(&key.value, specs.iter().map(|s| s.name)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!(
                    "`{}` accepts: {}",
                    step.module.value,
                    specs
                        .iter()
                        .map(|s| format!("`{}`", s.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            out.push(d);
        }
    }
    for spec in specs {
        if step.with_ok
            && spec.required
            && spec.default.is_none()
            && !step.with.iter().any(|(k, _)| k.value == spec.name)
        {
            out.push(
                Diagnostic::new(
                    Code::ModuleArgMissing,
                    format!(
                        "module `{}` needs argument `{}`",
                        step.module.value, spec.name
                    ),
                )
                .in_file(source)
                .primary(step.with_span, format!("`{}` is missing", spec.name))
                .help(format!(
                    "add `{}:` ({}: {}) under `with:`",
                    spec.name,
                    spec.ty.describe(),
                    spec.description
                )),
            );
        }
    }
}

/// The parameter type of a module argument, if both are known.
pub fn arg_type<'r>(registry: &'r Registry, step: &Step, arg: &str) -> Option<&'r ParamType> {
    registry
        .get(&step.module.value)?
        .params()
        .iter()
        .find(|s| s.name == arg)
        .map(|s| &s.ty)
}
