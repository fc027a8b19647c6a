//! Rendering one action: templates → typed arguments → the module's operations.
//!
//! The same code runs twice: at plan time, where registered outputs are [`Deferred`]
//! placeholders, and at run time, where they are the real outputs of earlier actions. Sharing it
//! is what makes `plan` show exactly what `apply` will run.

use std::collections::BTreeMap;

use minijinja::value::Value as TValue;
use runbook_modules::{ArgError, Args, Operation, Registry};

use crate::diagnostic::{Code, SourceFile};
use crate::inventory::HostId;
use crate::plan::StepInfo;
use crate::schema::sub_span;
use crate::template::Templates;
use crate::yaml::Span;

use super::args::{self, ArgTemplate, from_template_value};
use super::context::{Contexts, Deferred};

/// A step's `loop:`, compiled.
#[derive(Clone, Debug)]
pub enum LoopSpec {
    /// An expression giving a list (`params.regions`).
    Expression {
        source: String,
        span: Span,
        reads_outputs: bool,
    },
    /// A literal list whose items may be templates.
    Items(Vec<ArgTemplate>),
}

/// A problem rendering an action, located in the runbook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderProblem {
    pub span: Span,
    pub message: String,
    pub code: Code,
}

/// What an action does, rendered.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    pub operations: Vec<Operation>,
    /// Loop items, for display.
    pub items: Option<Vec<String>>,
}

/// Renders actions of one compiled plan.
#[derive(Clone, Copy)]
pub struct Renderer<'a> {
    pub templates: &'a Templates,
    pub registry: &'a Registry,
    pub contexts: &'a Contexts,
    pub source: &'a SourceFile,
    /// At plan time, outputs are placeholders and loops over them are not expanded.
    pub plan_time: bool,
}

impl Renderer<'_> {
    /// Renders the action of `step` on `host`. `registers` are the outputs visible to it
    /// (placeholders at plan time). Problems are returned with whatever did render.
    pub fn render(
        &self,
        step: &StepInfo,
        host: Option<HostId>,
        registers: &[(String, TValue)],
    ) -> (Rendered, Vec<RenderProblem>) {
        let mut problems = Vec::new();
        let base = self.contexts.for_action(host, None, registers);
        let items = step
            .loop_spec
            .as_ref()
            .map(|spec| match self.items(spec, &base) {
                Ok(items) => items,
                Err(p) => {
                    problems.push(p);
                    Vec::new()
                }
            });
        // A step without a usable module was reported (by the parser when `module:` is missing,
        // by the structure check when it is unknown); it renders to nothing.
        let Some(module) = self.registry.get(&step.module) else {
            return (Rendered::default(), problems);
        };
        let mut operations = Vec::new();
        let passes: Vec<Option<&TValue>> = match &items {
            None => vec![None],
            Some(items) => items.iter().map(Some).collect(),
        };
        for item in passes {
            let ctx = match item {
                Some(_) => self.contexts.for_action(host, item, registers),
                None => base.clone(),
            };
            let Some((args, spans)) = self.args(step, &ctx, &mut problems) else {
                continue;
            };
            match module.render(&args) {
                Ok(ops) => {
                    problems.extend(self.unknown_sources(step, &spans, &ops));
                    operations.extend(ops);
                }
                Err(e) => problems.push(invalid(step, &spans, e)),
            }
        }
        let items = items.map(|items| {
            items
                .iter()
                .map(|v| from_template_value(v).to_string())
                .collect()
        });
        (Rendered { operations, items }, problems)
    }

    /// A transfer's `from:` must name a host of the inventory (its commands run there).
    fn unknown_sources(
        &self,
        step: &StepInfo,
        spans: &BTreeMap<String, Span>,
        ops: &[Operation],
    ) -> Vec<RenderProblem> {
        let names = self.contexts.host_names();
        ops.iter()
            .filter_map(|op| match op {
                Operation::Transfer(t) if !names.contains(&t.from) => Some(t),
                _ => None,
            })
            .map(|t| {
                let hint = crate::suggest::closest(&t.from, names.iter().map(String::as_str))
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                RenderProblem {
                    span: spans.get("from").copied().unwrap_or(step.args.span),
                    message: format!(
                        "argument `from`: `{}` is not a host of the inventory{hint}",
                        t.from
                    ),
                    code: Code::ModuleUnknownHost,
                }
            })
            .collect()
    }

    /// The action's `env:` values. With `secrets`, secret parameters have their real values
    /// (at run time); without, they read `********` (for display).
    pub fn render_env(
        &self,
        step: &StepInfo,
        host: Option<HostId>,
        registers: &[(String, TValue)],
        secrets: Option<&BTreeMap<String, String>>,
    ) -> Result<Vec<(String, String)>, RenderProblem> {
        let ctx = match secrets {
            Some(secrets) => self
                .contexts
                .for_action_with_secrets(host, registers, secrets),
            None => self.contexts.for_action(host, None, registers),
        };
        step.args
            .env
            .iter()
            .map(
                |arg| match args::render(self.templates, &arg.template, &ctx, self.plan_time) {
                    // No shell variable can hold a NUL: refused, never silently shortened. At
                    // plan time a value known then (a literal, an inventory variable) is a
                    // located error; at run time (an output, a secret) the step fails.
                    Ok(v) if v.as_str().is_some_and(|s| s.contains('\0')) => Err(RenderProblem {
                        span: arg.span,
                        message: format!(
                            "`env: {}` contains a NUL byte, which no environment variable can hold",
                            arg.name
                        ),
                        code: Code::EnvNulByte,
                    }),
                    Ok(v) => Ok((
                        arg.name.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )),
                    Err(f) => Err(RenderProblem {
                        span: f
                            .range
                            .clone()
                            .map_or(f.span, |r| sub_span(self.source, f.span, &f.source, r)),
                        message: format!("`env: {}` does not render: {}", arg.name, f.message),
                        code: Code::TemplateRender,
                    }),
                },
            )
            .collect()
    }

    /// The read-only checks of the action (query-then-act), or `None` when its module cannot
    /// tell what applying would change.
    pub fn render_checks(
        &self,
        step: &StepInfo,
        host: Option<HostId>,
        registers: &[(String, TValue)],
    ) -> (Option<Vec<Operation>>, Vec<RenderProblem>) {
        let mut problems = Vec::new();
        let Some(module) = self.registry.get(&step.module) else {
            return (None, problems);
        };
        let base = self.contexts.for_action(host, None, registers);
        let items = match &step.loop_spec {
            None => vec![None],
            Some(spec) => match self.items(spec, &base) {
                Ok(items) => items.into_iter().map(Some).collect(),
                Err(p) => return (None, vec![p]),
            },
        };
        let mut checks = Vec::new();
        for item in &items {
            let ctx = match item {
                Some(v) => self.contexts.for_action(host, Some(v), registers),
                None => base.clone(),
            };
            let Some((args, spans)) = self.args(step, &ctx, &mut problems) else {
                return (None, problems);
            };
            match module.check(&args) {
                Ok(Some(ops)) => checks.extend(ops),
                Ok(None) => return (None, problems),
                Err(e) => {
                    problems.push(invalid(step, &spans, e));
                    return (None, problems);
                }
            }
        }
        (Some(checks), problems)
    }

    /// Renders and type-checks the arguments for one pass (one loop item).
    fn args(
        &self,
        step: &StepInfo,
        ctx: &TValue,
        problems: &mut Vec<RenderProblem>,
    ) -> Option<(Args, BTreeMap<String, Span>)> {
        let module = self.registry.get(&step.module)?;
        let mut raw = BTreeMap::new();
        let mut spans = BTreeMap::new();
        let mut failed = false;
        for arg in &step.args.args {
            spans.insert(arg.name.clone(), arg.span);
            match args::render(self.templates, &arg.template, ctx, self.plan_time) {
                Ok(v) => {
                    raw.insert(arg.name.clone(), v);
                }
                Err(f) => {
                    let at = f
                        .range
                        .clone()
                        .map_or(f.span, |r| sub_span(self.source, f.span, &f.source, r));
                    problems.push(RenderProblem {
                        span: at,
                        message: format!("argument `{}` does not render: {}", arg.name, f.message),
                        code: Code::TemplateRender,
                    });
                    failed = true;
                }
            }
        }
        if failed {
            return None;
        }
        match Args::check(module.params(), raw) {
            Ok(args) => Some((args, spans)),
            Err(errors) => {
                for e in errors {
                    // Unknown and missing arguments were reported once per step already.
                    if let ArgError::Type { name, message } = e {
                        let span = spans.get(&name).copied().unwrap_or(step.args.span);
                        problems.push(RenderProblem {
                            span,
                            message: format!("argument `{name}`: {message}"),
                            code: Code::ModuleArgType,
                        });
                    }
                }
                None
            }
        }
    }

    /// The loop's items for one host; a single placeholder item at plan time when they depend
    /// on outputs.
    fn items(&self, spec: &LoopSpec, ctx: &TValue) -> Result<Vec<TValue>, RenderProblem> {
        match spec {
            LoopSpec::Expression {
                source,
                span,
                reads_outputs,
            } => {
                let fail = |message: String| RenderProblem {
                    span: *span,
                    message,
                    code: Code::TemplateRender,
                };
                if *reads_outputs && self.plan_time {
                    return Ok(vec![TValue::from_object(Deferred("item".into()))]);
                }
                let value = self
                    .templates
                    .eval(source, ctx)
                    .map_err(|e| fail(e.message))?;
                match value.try_iter() {
                    Ok(iter) if !value.is_undefined() && value.as_str().is_none() => {
                        Ok(iter.collect())
                    }
                    _ => Err(fail(format!(
                        "`loop:` must give a list, `{source}` gave `{value}`"
                    ))),
                }
            }
            LoopSpec::Items(items) => items
                .iter()
                .map(|item| {
                    args::render(self.templates, item, ctx, self.plan_time)
                        .map(|v| TValue::from(minijinja::value::Serde(module_value_json(&v))))
                        .map_err(|f| RenderProblem {
                            span: f
                                .range
                                .clone()
                                .map_or(f.span, |r| sub_span(self.source, f.span, &f.source, r)),
                            message: f.message,
                            code: Code::TemplateRender,
                        })
                })
                .collect(),
        }
    }
}

fn invalid(
    step: &StepInfo,
    spans: &BTreeMap<String, Span>,
    e: runbook_modules::RenderError,
) -> RenderProblem {
    let span = e
        .arg
        .and_then(|a| spans.get(a).copied())
        .unwrap_or(step.args.span);
    let message = match e.arg {
        Some(arg) => format!("argument `{arg}`: {}", e.message),
        None => e.message,
    };
    RenderProblem {
        span,
        message,
        code: Code::ModuleArgInvalid,
    }
}

fn module_value_json(v: &runbook_modules::Value) -> serde_json::Value {
    use runbook_modules::Value;
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::List(items) => {
            serde_json::Value::Array(items.iter().map(module_value_json).collect())
        }
        Value::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), module_value_json(v)))
                .collect(),
        ),
        other => serde_json::Value::String(other.to_string()),
    }
}
