//! The compiler: runbook AST + inventory + modules → sealed [`Plan`], or every error at once.
//!
//! Stages, each collecting diagnostics and going on where it safely can:
//! parameters → structure (ids, needs, modules, arguments) → roles and targets → step graph
//! and cycles → templates (syntax and variables, statically) → actions (rendered per host) →
//! the sealed DAG. Anything that depends on a previous stage that failed is skipped rather than
//! reported twice.

mod args;
mod batches;
mod context;
mod dag;
mod graph;
mod params;
mod render;
mod scope;
mod structure;
mod targets;

use std::collections::BTreeMap;
use std::time::Duration;

use runbook_modules::{ParamType, Registry};

use crate::ast::{Runbook, Step};
use crate::diagnostic::{Code, Diagnostic};
use crate::inventory::Inventory;
use crate::plan::{
    EstimateSource, HostInfo, InventoryInfo, PhaseInfo, Plan, RunbookInfo, StepInfo,
};
use crate::template::Templates;

pub use args::{Arg, ArgTemplate, TemplateArgs};
pub use context::Contexts;
pub use params::{Override, OverrideOrigin, Overrides, ResolvedParam, ValueOrigin};
pub use render::{LoopSpec, RenderProblem, Rendered, Renderer};

/// What the compiler needs.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub runbook: &'a Runbook,
    pub inventory: &'a Inventory,
    pub registry: &'a Registry,
    pub overrides: &'a Overrides,
    /// Median durations of steps (by id) in earlier runs of this runbook, from the journal:
    /// the estimate of a step that declares none.
    pub history: Option<&'a BTreeMap<String, Duration>>,
}

/// What can be checked of a runbook without its inventory, for when the inventory itself has
/// errors: the parameters and `-e` values, the steps' structure (modules, arguments, `needs`,
/// ids) and the types of literal arguments. So an operator fixing a broken inventory sees the
/// runbook's own errors in the same report, not after.
pub fn check_without_inventory(
    runbook: &Runbook,
    registry: &Registry,
    overrides: &Overrides,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let _ = params::resolve(runbook, overrides, &mut out);
    let steps = structure::flatten(runbook);
    structure::check(runbook, &steps, registry, &mut out);
    for (_, step) in &steps {
        for (key, node) in &step.with {
            let Some(ty) = structure::arg_type(registry, step, &key.value) else {
                continue;
            };
            if matches!(ty, ParamType::Expression) || has_template(node) {
                continue;
            }
            if let Err(message) = ty.coerce(args::literal(node)) {
                out.push(literal_type_error(
                    runbook, step, &key.value, node.span, &message,
                ));
            }
        }
    }
    out
}

/// Whether any scalar in `node` is a template.
fn has_template(node: &crate::yaml::Node) -> bool {
    use crate::yaml::NodeKind;
    match &node.kind {
        NodeKind::Scalar(text, _) => crate::template::is_template(text),
        NodeKind::Seq(items) => items.iter().any(has_template),
        NodeKind::Map(entries) => entries
            .iter()
            .any(|(k, v)| has_template(k) || has_template(v)),
        NodeKind::Null => false,
    }
}

/// A literal argument of the wrong type (`timeout: 5 minutes`), known before any host.
fn literal_type_error(
    runbook: &Runbook,
    step: &Step,
    arg: &str,
    span: crate::yaml::Span,
    message: &str,
) -> Diagnostic {
    Diagnostic::new(
        Code::ModuleArgType,
        format!("step `{}`: argument `{arg}`: {message}", step.id.value),
    )
    .in_file(&runbook.source)
    .primary(span, "for every host")
    .help("check the argument's type in `runbook modules` or docs/modules/")
}

/// Compiles a runbook against an inventory. All errors are returned together, sorted by
/// position.
pub fn compile(input: Input<'_>) -> Result<Plan, Vec<Diagnostic>> {
    let Input {
        runbook,
        inventory,
        registry,
        overrides,
        history,
    } = input;
    let mut out = Vec::new();
    let params = params::resolve(runbook, overrides, &mut out);
    let steps = structure::flatten(runbook);
    structure::check(runbook, &steps, registry, &mut out);
    targets::check_roles(runbook, inventory, &mut out);
    let hosts: Vec<_> = steps
        .iter()
        .map(|(p, step)| {
            let on_controller = registry
                .get(&step.module.value)
                .is_some_and(|m| m.placement().on_controller());
            let phase_on = &runbook.phases[*p].on;
            targets::resolve_step(runbook, inventory, phase_on, step, on_controller, &mut out)
        })
        .collect();

    let step_graph = graph::build(runbook, &steps, &hosts);
    // With a cycle there is no "upstream"; the template checks still run (treating every step
    // as upstream) so that the user sees their errors in the same report.
    let cyclic = graph::check_cycles(runbook, &steps, &step_graph, &mut out);
    let (ancestors, global) = if cyclic {
        (graph::Reach::everything(), graph::Reach::everything())
    } else {
        (
            graph::any_ancestors(&step_graph),
            graph::global_ancestors(&step_graph),
        )
    };

    let registers: BTreeMap<String, usize> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, (_, s))| s.register.as_ref().map(|r| (r.value.clone(), i)))
        .rev() // the first registration wins, as reported by `structure`
        .collect();

    let mut templates = Templates::new();
    let mut compiled = Vec::with_capacity(steps.len());
    for (i, (_, step)) in steps.iter().enumerate() {
        compiled.push(compile_step(
            runbook,
            inventory,
            registry,
            &params,
            &hosts[i],
            &registers,
            &ancestors,
            i,
            step,
            &mut templates,
            &mut out,
        ));
    }
    if !out.is_empty() {
        return Err(sorted(out));
    }

    let contexts = context::Contexts::new(
        runbook,
        inventory,
        &params,
        &registers.keys().cloned().collect::<Vec<_>>(),
        &templates,
        &mut out,
    );
    if !out.is_empty() {
        return Err(sorted(out));
    }
    let infos: Vec<StepInfo> = steps
        .iter()
        .enumerate()
        .zip(compiled)
        .map(|((i, (p, step)), (args, spec))| {
            let mut info = step_info(registry, history, *p, step, hosts[i].clone(), args, spec);
            info.origin = runbook.origins.get(&step.id.value).cloned();
            info
        })
        .collect();
    let mut step_hosts: Vec<Vec<&[Option<usize>]>> = vec![Vec::new(); runbook.phases.len()];
    for (i, (p, _)) in steps.iter().enumerate() {
        step_hosts[*p].push(hosts[i].as_slice());
    }
    let phase_batches: Vec<(Vec<Vec<usize>>, usize)> = runbook
        .phases
        .iter()
        .zip(&step_hosts)
        .map(|(phase, step_hosts)| batches::batches(phase, step_hosts))
        .collect();
    let graph = dag::build(&mut dag::Inputs {
        phase_batches: &phase_batches,
        runbook,
        inventory,
        registry,
        steps: &steps,
        infos: &infos,
        step_graph: &step_graph,
        global_ancestors: &global,
        registers: &registers,
        templates: &templates,
        contexts: &contexts,
        out: &mut out,
    });
    if !out.is_empty() {
        return Err(sorted(out));
    }
    Ok(Plan::seal(
        RunbookInfo {
            name: runbook.metadata.name.value.clone(),
            version: runbook.metadata.version.value.clone(),
            description: runbook.metadata.description.clone(),
            source: runbook.metadata.source.clone(),
            file: runbook.source.name().to_owned(),
        },
        InventoryInfo {
            file: inventory.source.name().to_owned(),
            format: inventory.format,
        },
        params,
        runbook
            .phases
            .iter()
            .zip(phase_batches)
            .map(|(p, (batches, max_failed_hosts))| PhaseInfo {
                name: p.name.value.clone(),
                description: p.description.clone(),
                outage: p.outage,
                order: p.order,
                batches,
                max_failed_hosts,
            })
            .collect(),
        infos,
        inventory
            .hosts
            .iter()
            .map(|h| HostInfo {
                name: h.name.clone(),
                address: h.address.clone(),
                port: h.port,
                user: h.user.clone(),
                connection: h.connection,
            })
            .collect(),
        graph,
        templates,
        contexts,
        runbook.source.clone(),
    ))
}

#[allow(clippy::too_many_arguments)]
fn compile_step(
    runbook: &Runbook,
    inventory: &Inventory,
    registry: &Registry,
    params: &[ResolvedParam],
    hosts: &[Option<usize>],
    registers: &BTreeMap<String, usize>,
    ancestors: &graph::Reach,
    index: usize,
    step: &Step,
    templates: &mut Templates,
    out: &mut Vec<Diagnostic>,
) -> (TemplateArgs, Option<LoopSpec>) {
    let mut scope = scope::Scope {
        runbook,
        inventory,
        params,
        hosts,
        registers,
        step: index,
        has_loop: step.loop_items.is_some(),
        ancestors,
        own_output_allowed: false,
        secrets_allowed: false,
    };
    let mut compiled = TemplateArgs::default();
    let mut reads = BTreeMap::new();
    let mut spec = None;
    // The loop's own items are checked first, without `item` in scope.
    if let Some(items) = &step.loop_items {
        scope.has_loop = false;
        let mut b = args::Builder {
            templates,
            scope: &scope,
            source: &runbook.source,
            out,
            reads: &mut reads,
        };
        spec = Some(loop_spec(&mut b, items));
        scope.has_loop = true;
    }
    {
        let mut b = args::Builder {
            templates,
            scope: &scope,
            source: &runbook.source,
            out,
            reads: &mut reads,
        };
        for (key, node) in &step.with {
            let ty = structure::arg_type(registry, step, &key.value)
                .cloned()
                .unwrap_or(ParamType::Any);
            let before = b.out.len();
            let arg = b.build(node, &ty);
            // A literal value's type is known now: reported with every other error, not
            // only once they are fixed and the arguments are rendered for each host. (Not
            // when building it failed: a template that does not compile stands as null.)
            if b.out.len() == before
                && let Some(value) = args::literal_value(&arg)
                && let Err(message) = ty.coerce(value)
            {
                b.out.push(literal_type_error(
                    runbook, step, &key.value, node.span, &message,
                ));
            }
            compiled.args.push(args::Arg {
                name: key.value.clone(),
                span: node.span,
                template: arg,
            });
        }
        if let Some(when) = &step.when {
            b.expression(&when.value, when.span);
        }
    }
    if !step.env.is_empty() {
        // `env:` values are the one place a secret may be read: they travel on stdin.
        scope.secrets_allowed = true;
        let mut b = args::Builder {
            templates,
            scope: &scope,
            source: &runbook.source,
            out,
            reads: &mut reads,
        };
        for (key, node) in &step.env {
            let template = b.build(node, &ParamType::String);
            compiled.env.push(args::Arg {
                name: key.value.clone(),
                span: node.span,
                template,
            });
        }
        scope.secrets_allowed = false;
    }
    if let Some(until) = &step.until {
        // `until:` reads the step's own output; reading it is not a cross-host read.
        scope.own_output_allowed = true;
        let mut own = BTreeMap::new();
        let mut b = args::Builder {
            templates,
            scope: &scope,
            source: &runbook.source,
            out,
            reads: &mut own,
        };
        b.expression(&until.value, until.span);
        own.retain(|name, _| registers.get(name) != Some(&index));
        for (name, span) in own {
            reads.entry(name).or_insert(span);
        }
    }
    compiled.reads = reads;
    compiled.span = step.with_span;
    (compiled, spec)
}

/// `loop:` is a list (items may be templates) or an expression that gives one.
fn loop_spec(b: &mut args::Builder<'_, '_>, items: &crate::yaml::Node) -> LoopSpec {
    match &items.kind {
        crate::yaml::NodeKind::Scalar(text, _) => {
            let reads_outputs = b.expression(text, items.span);
            LoopSpec::Expression {
                source: text.clone(),
                span: items.span,
                reads_outputs,
            }
        }
        _ => match b.build(items, &ParamType::List(Box::new(ParamType::Any))) {
            ArgTemplate::List(list) => LoopSpec::Items(list),
            other => LoopSpec::Items(vec![other]),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn step_info(
    registry: &Registry,
    history: Option<&BTreeMap<String, Duration>>,
    phase: usize,
    step: &Step,
    hosts: Vec<Option<usize>>,
    args: TemplateArgs,
    loop_spec: Option<LoopSpec>,
) -> StepInfo {
    let module = registry.get(&step.module.value);
    let (estimate, estimate_source) = match step.estimate {
        Some(d) => (d, EstimateSource::Declared),
        None if history.and_then(|h| h.get(&step.id.value)).is_some() => (
            history
                .and_then(|h| h.get(&step.id.value))
                .copied()
                .unwrap_or_default(),
            EstimateSource::History,
        ),
        None => (
            module.map_or(
                runbook_modules::DEFAULT_ESTIMATE,
                runbook_modules::Module::estimate,
            ),
            EstimateSource::Default,
        ),
    };
    StepInfo {
        id: step.id.value.clone(),
        name: step.name.clone(),
        description: step.description.clone(),
        source: step.source.clone(),
        phase,
        kind: step.kind,
        module: step.module.value.clone(),
        idempotent: module.is_some_and(runbook_modules::Module::idempotent),
        manual: module.is_some_and(|m| m.placement() == runbook_modules::Placement::Operator),
        irreversible: step.irreversible,
        freeze: step.freeze.as_ref().map(|f| f.value),
        needs: step.needs.iter().map(|n| n.value.clone()).collect(),
        when: step.when.as_ref().map(|w| w.value.clone()),
        until: step.until.as_ref().map(|u| u.value.clone()),
        retries: step.retries,
        delay: step.delay,
        timeout: step.timeout,
        register: step.register.as_ref().map(|r| r.value.clone()),
        loop_source: step.loop_items.as_ref().map(|n| match n.as_str() {
            Some(s) => s.to_owned(),
            None => n.to_json().to_string(),
        }),
        estimate,
        estimate_source,
        hosts,
        args,
        loop_spec,
        origin: None,
    }
}

fn sorted(out: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut d = crate::diagnostic::Diagnostics::default();
    d.extend(out);
    d.sorted()
}
