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
    check_freeze(runbook, steps, out);
}

/// `freeze: start` and `freeze: end`: both or neither, once each, on main steps of outage
/// phases, the end not before the start.
fn check_freeze(runbook: &Runbook, steps: &[(usize, &Step)], out: &mut Vec<Diagnostic>) {
    use crate::ast::{Freeze, StepKind};
    let source = &runbook.source;
    let mut marks: [Option<(usize, usize, &Step)>; 2] = [None, None];
    for (position, (phase, step)) in steps.iter().enumerate() {
        let Some(mark) = &step.freeze else { continue };
        let (slot, word) = match mark.value {
            Freeze::Start => (0, "start"),
            Freeze::End => (1, "end"),
        };
        if !runbook.phases[*phase].outage || step.kind != StepKind::Main {
            out.push(
                Diagnostic::new(
                    Code::FreezeMarker,
                    format!(
                        "step `{}` marks the write freeze but is not a main step of an outage phase",
                        step.id.value
                    ),
                )
                .in_file(source)
                .primary(mark.span, "outside the outage")
                .help("the write freeze is inside the outage: mark main steps of `outage: true` phases"),
            );
            continue;
        }
        if let Some((_, _, first)) = marks[slot] {
            let first_span = first.freeze.as_ref().map_or(first.id.span, |f| f.span);
            out.push(
                Diagnostic::new(
                    Code::FreezeMarker,
                    format!("two steps are marked `freeze: {word}`"),
                )
                .in_file(source)
                .primary(mark.span, "marked again here")
                .secondary(first_span, "first marked here")
                .help("a run has one write freeze: mark one step where it starts and one where it ends"),
            );
            continue;
        }
        marks[slot] = Some((position, *phase, step));
    }
    match marks {
        [Some((sp, sphase, start)), Some((ep, ephase, end))] => {
            if ephase < sphase || ep < sp {
                let span = |s: &Step| s.freeze.as_ref().map_or(s.id.span, |f| f.span);
                out.push(
                    Diagnostic::new(
                        Code::FreezeMarker,
                        format!(
                            "the write freeze ends at `{}`, before it starts at `{}`",
                            end.id.value, start.id.value
                        ),
                    )
                    .in_file(source)
                    .primary(span(end), "the end")
                    .secondary(span(start), "the start")
                    .help("mark the step that stops the writes `freeze: start` and a later one `freeze: end`"),
                );
            }
        }
        [Some((_, _, only)), None] | [None, Some((_, _, only))] => {
            let (has, lacks) = if marks[0].is_some() {
                ("start", "end")
            } else {
                ("end", "start")
            };
            out.push(
                Diagnostic::new(
                    Code::FreezeMarker,
                    format!("the write freeze has a `{has}` but no `{lacks}`"),
                )
                .in_file(source)
                .primary(
                    only.freeze.as_ref().map_or(only.id.span, |f| f.span),
                    format!("`freeze: {has}`"),
                )
                .help(format!(
                    "mark the step where the freeze {lacks}s `freeze: {lacks}`"
                )),
            );
        }
        [None, None] => {}
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
