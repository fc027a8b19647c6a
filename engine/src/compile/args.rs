//! Step arguments as templates: compiled once per step, rendered once per action.

use std::collections::BTreeMap;

use minijinja::value::Value as TValue;
use runbook_modules::{ParamType, Value};

use crate::diagnostic::{Code, Diagnostic, SourceFile};
use crate::schema::sub_span;
use crate::template::{Escape, TemplateError, TemplateId, Templates, is_template};
use crate::yaml::{Node, NodeKind, ScalarStyle, Span};

use super::scope::Scope;

/// One argument value, with its templates compiled.
#[derive(Clone, Debug)]
pub enum ArgTemplate {
    Literal(Value),
    Template {
        id: TemplateId,
        source: String,
        span: Span,
        /// Reads outputs of earlier steps, so only known at run time.
        deferred: bool,
        /// Whether the argument expects text (rendered with placeholders at plan time) or a
        /// typed value (shown as deferred).
        textual: bool,
    },
    /// A template expression passed to the module as its source text.
    Expression(String),
    /// A list or mapping argument written as one `{{ expression }}`: the expression's value,
    /// not its text (`allow: "{{ params.allow }}"` passes a list parameter as a list).
    Value {
        source: String,
        span: Span,
        /// Reads outputs of earlier steps, so only known at run time.
        deferred: bool,
    },
    List(Vec<ArgTemplate>),
    Map(Vec<(String, ArgTemplate)>),
}

/// The value of an argument written without any template, or `None`.
pub fn literal_value(template: &ArgTemplate) -> Option<Value> {
    match template {
        ArgTemplate::Literal(v) => Some(v.clone()),
        ArgTemplate::List(items) => items
            .iter()
            .map(literal_value)
            .collect::<Option<Vec<_>>>()
            .map(Value::List),
        ArgTemplate::Map(entries) => entries
            .iter()
            .map(|(k, v)| literal_value(v).map(|v| (k.clone(), v)))
            .collect::<Option<BTreeMap<_, _>>>()
            .map(Value::Map),
        _ => None,
    }
}

/// One `with:` argument.
#[derive(Clone, Debug)]
pub struct Arg {
    pub name: String,
    /// The value's span: where type and render errors point.
    pub span: Span,
    pub template: ArgTemplate,
}

/// A step's `with:`, ready to render.
#[derive(Clone, Debug, Default)]
pub struct TemplateArgs {
    pub args: Vec<Arg>,
    /// The span of `with:` (or of the step id when there is none), for errors about the
    /// arguments as a whole.
    pub span: Span,
    /// Registered outputs read anywhere in the step (arguments, `when`, `loop`, `until`), with
    /// where each is first read.
    pub reads: BTreeMap<String, Span>,
    /// `env:` values, by variable name.
    pub env: Vec<Arg>,
}

/// A template that failed to render for one action.
#[derive(Clone, Debug)]
pub struct RenderFailure {
    /// The scalar the template came from.
    pub span: Span,
    pub source: String,
    /// Where in `source` the problem is, when minijinja knows.
    pub range: Option<std::ops::Range<usize>>,
    pub message: String,
}

/// Compiles the templates of a node and checks their variables against the scope.
pub struct Builder<'a, 'b> {
    pub templates: &'a mut Templates,
    pub scope: &'a Scope<'b>,
    pub source: &'a SourceFile,
    pub out: &'a mut Vec<Diagnostic>,
    /// Registered outputs the step reads, each with where it is first read.
    pub reads: &'a mut BTreeMap<String, Span>,
}

impl Builder<'_, '_> {
    pub fn build(&mut self, node: &Node, ty: &ParamType) -> ArgTemplate {
        match (&node.kind, ty) {
            (NodeKind::Seq(items), ParamType::List(inner)) => {
                ArgTemplate::List(items.iter().map(|i| self.build(i, inner)).collect())
            }
            (NodeKind::Seq(items), _) => ArgTemplate::List(
                items
                    .iter()
                    .map(|i| self.build(i, &ParamType::Any))
                    .collect(),
            ),
            (NodeKind::Map(entries), ParamType::Map(inner)) => ArgTemplate::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().unwrap_or_default().to_owned(),
                            self.build(v, inner),
                        )
                    })
                    .collect(),
            ),
            (NodeKind::Map(entries), _) => ArgTemplate::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().unwrap_or_default().to_owned(),
                            self.build(v, &ParamType::Any),
                        )
                    })
                    .collect(),
            ),
            (NodeKind::Scalar(text, _), ParamType::Expression) => {
                self.expression(text, node.span);
                ArgTemplate::Expression(text.clone())
            }
            (NodeKind::Scalar(text, _), ParamType::List(_) | ParamType::Map(_))
                if whole_expression(text).is_some() =>
            {
                let source = whole_expression(text).expect("matched by the guard");
                let deferred = self.expression(source, node.span);
                ArgTemplate::Value {
                    source: source.to_owned(),
                    span: node.span,
                    deferred,
                }
            }
            (NodeKind::Scalar(text, _), _) if is_template(text) => {
                let escape = if *ty == ParamType::Shell {
                    Escape::Shell
                } else {
                    Escape::None
                };
                if escape == Escape::Shell {
                    self.check_unquoted_interpolations(text, node.span);
                }
                match self.templates.compile(text, escape) {
                    Ok((id, vars)) => {
                        self.report_vars(text, node.span, &vars);
                        let deferred = !self.scope.registers_read(&vars).is_empty();
                        let textual = matches!(
                            ty,
                            ParamType::String | ParamType::Shell | ParamType::Path | ParamType::Any
                        );
                        ArgTemplate::Template {
                            id,
                            source: text.clone(),
                            span: node.span,
                            deferred,
                            textual,
                        }
                    }
                    Err(e) => {
                        self.syntax_error(text, node.span, &e);
                        ArgTemplate::Literal(Value::Null)
                    }
                }
            }
            // Text arguments take a scalar's text as written: `cmd: true` is the command `true`.
            (NodeKind::Scalar(text, _), ParamType::String | ParamType::Shell | ParamType::Path) => {
                ArgTemplate::Literal(Value::Str(text.clone()))
            }
            _ => ArgTemplate::Literal(literal(node)),
        }
    }

    /// Checks an expression (`when:`, `until:`, `loop:`, `that:`).
    /// Returns whether it reads registered outputs.
    pub fn expression(&mut self, text: &str, span: Span) -> bool {
        match self.templates.check_expression(text) {
            Ok(vars) => {
                self.report_vars(text, span, &vars);
                !self.scope.registers_read(&vars).is_empty()
            }
            Err(e) => {
                self.syntax_error(text, span, &e);
                false
            }
        }
    }

    /// In shell templates every interpolation is quoted already; one written inside quotes
    /// (`"{{ x }}"`) ends up as `"'x'"`, which is both wrong and open to `$(...)` inside the
    /// double quotes. Refuse it at compile time.
    fn check_unquoted_interpolations(&mut self, text: &str, span: Span) {
        for range in interpolations_inside_quotes(text) {
            self.out.push(
                Diagnostic::new(Code::TemplateQuoted, "interpolation inside shell quotes")
                    .in_file(self.source)
                    .primary(sub_span(self.source, span, text, range), "already quoted by the template")
                    .help("remove the quotes around `{{ ... }}`: every interpolated value is shell-quoted for you (`| unquoted` opts out)"),
            );
        }
    }

    fn syntax_error(&mut self, text: &str, span: Span, e: &TemplateError) {
        let at = e
            .range
            .clone()
            .map_or(span, |r| sub_span(self.source, span, text, r));
        if e.too_complex {
            self.out.push(
                Diagnostic::new(Code::TemplateTooComplex, e.message.clone())
                    .in_file(self.source)
                    .primary(at, "the limit is crossed here")
                    .help("split the condition or script over several steps or variables; templates are bounded so that checking them cannot exhaust the stack"),
            );
            return;
        }
        self.out.push(
            Diagnostic::new(Code::TemplateSyntax, format!("template error: {}", e.message))
                .in_file(self.source)
                .primary(at, "here")
                .help("templates use minijinja (Jinja2) syntax: `{{ params.name }}`; `when:` and `until:` take a bare expression"),
        );
    }

    fn report_vars(&mut self, text: &str, span: Span, vars: &std::collections::BTreeSet<String>) {
        for name in self.scope.registers_read(vars) {
            let at = find(text, name).map_or(span, |r| sub_span(self.source, span, text, r));
            self.reads.entry(name.to_owned()).or_insert(at);
        }
        for p in self.scope.check(vars) {
            // `vars.x | default(...)` and `vars.x is defined` are the runbook saying the
            // variable is optional.
            if p.code == Code::TemplateUndefined && guarded(text, &p.path) {
                continue;
            }
            let at = find(text, &p.path).map_or(span, |r| sub_span(self.source, span, text, r));
            self.out.push(
                Diagnostic::new(p.code, p.message)
                    .in_file(self.source)
                    .primary(at, "used here")
                    .help(p.help),
            );
        }
    }
}

/// Whether every use of `path` in `text` is guarded: followed by `| default(...)` (or its alias
/// `| d(...)`), or tested with `is defined` / `is not defined`.
fn guarded(text: &str, path: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let mut uses = 0;
    for (at, _) in text.match_indices(path) {
        let before = text[..at].chars().next_back();
        let rest = &text[at + path.len()..];
        if before.is_some_and(is_ident) || rest.chars().next().is_some_and(is_ident) {
            continue;
        }
        uses += 1;
        let rest = rest.trim_start();
        let filtered = rest
            .strip_prefix('|')
            .map(str::trim_start)
            .is_some_and(|f| {
                ["default", "d"].iter().any(|name| {
                    f.strip_prefix(name)
                        .is_some_and(|after| !after.starts_with(|c: char| is_ident(c)))
                })
            });
        let tested = rest
            .strip_prefix("is")
            .map(str::trim_start)
            .is_some_and(|t| {
                let t = t.strip_prefix("not").map_or(t, str::trim_start);
                t.starts_with("defined") || t.starts_with("undefined")
            });
        if !filtered && !tested {
            return false;
        }
    }
    uses > 0
}

/// The expression of a template that is exactly one `{{ expression }}` (blanks around it
/// allowed), or `None`.
fn whole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let nested = ["{{", "}}", "{%", "%}", "{#", "#}"];
    (!nested.iter().any(|n| inner.contains(n))).then(|| inner.trim())
}

/// Byte ranges of `{{ ... }}` blocks that sit inside single or double shell quotes.
fn interpolations_inside_quotes(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' && matches!(bytes.get(i + 1), Some(b'{' | b'%' | b'#')) {
            let close = match bytes[i + 1] {
                b'{' => "}}",
                b'%' => "%}",
                _ => "#}",
            };
            let end = text[i + 2..]
                .find(close)
                .map_or(bytes.len(), |e| i + 2 + e + 2);
            if bytes[i + 1] == b'{' && quote.is_some() {
                found.push(i..end);
            }
            i = end;
            continue;
        }
        match (quote, bytes[i]) {
            (None | Some(b'"'), b'\\') => i += 1,
            (None, q @ (b'\'' | b'"')) => quote = Some(q),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        i += 1;
    }
    found
}

/// Byte range of a dotted variable path inside template text (or of its root name).
fn find(text: &str, path: &str) -> Option<std::ops::Range<usize>> {
    let root = path.split('.').next().unwrap_or(path);
    for candidate in [path, root] {
        let mut from = 0;
        while let Some(pos) = text[from..].find(candidate) {
            let start = from + pos;
            let end = start + candidate.len();
            let before = text[..start].chars().next_back();
            let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            if boundary(before) && boundary(text[end..].chars().next()) {
                return Some(start..end);
            }
            from = end;
        }
    }
    None
}

/// A non-template scalar or structure as a typed value (YAML 1.2 core schema for plain scalars).
pub fn literal(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Scalar(s, ScalarStyle::Plain) => {
            if let Some(b) = node.as_bool() {
                Value::Bool(b)
            } else if let Some(i) = node.as_int() {
                Value::Int(i)
            } else {
                match node.to_json() {
                    serde_json::Value::Number(n) => n
                        .as_f64()
                        .map_or_else(|| Value::Str(s.clone()), Value::Float),
                    _ => Value::Str(s.clone()),
                }
            }
        }
        NodeKind::Scalar(s, _) => Value::Str(s.clone()),
        NodeKind::Seq(items) => Value::List(items.iter().map(literal).collect()),
        NodeKind::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), literal(v)))
                .collect(),
        ),
    }
}

/// Renders an argument for one action. Errors carry the span to point at. At plan time
/// (`plan_time`), a typed argument that reads outputs is a placeholder; at run time it is
/// rendered like any other, and the type check converts it (`seqno: "{{ before.values.max }}"`
/// is the int).
pub fn render(
    templates: &Templates,
    arg: &ArgTemplate,
    ctx: &TValue,
    plan_time: bool,
) -> Result<Value, RenderFailure> {
    Ok(match arg {
        ArgTemplate::Literal(v) => v.clone(),
        ArgTemplate::Expression(src) => Value::Str(src.clone()),
        ArgTemplate::Value {
            source,
            deferred: true,
            ..
        }
        | ArgTemplate::Template {
            source,
            deferred: true,
            textual: false,
            ..
        } if plan_time => Value::Deferred(source.clone()),
        ArgTemplate::Value { source, span, .. } => {
            from_template_value(&templates.eval(source, ctx).map_err(|e| RenderFailure {
                span: *span,
                source: source.clone(),
                range: e.range,
                message: e.message,
            })?)
        }
        ArgTemplate::Template {
            id, span, source, ..
        } => Value::Str(templates.render(id, ctx).map_err(|e| RenderFailure {
            span: *span,
            source: source.clone(),
            range: e.range,
            message: e.message,
        })?),
        ArgTemplate::List(items) => Value::List(
            items
                .iter()
                .map(|i| render(templates, i, ctx, plan_time))
                .collect::<Result<_, _>>()?,
        ),
        ArgTemplate::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| render(templates, v, ctx, plan_time).map(|v| (k.clone(), v)))
                .collect::<Result<BTreeMap<_, _>, _>>()?,
        ),
    })
}

/// Converts a template value (a loop item) to a module value.
pub fn from_template_value(v: &TValue) -> Value {
    serde_json::to_value(v).map_or_else(|_| Value::Str(v.to_string()), |j| json_to_value(&j))
}

fn json_to_value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Float(n.as_f64().unwrap_or_default()), Value::Int),
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(items) => Value::List(items.iter().map(json_to_value).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{interpolations_inside_quotes, whole_expression};

    #[test]
    fn a_whole_expression_is_one_interpolation_and_nothing_else() {
        assert_eq!(whole_expression("{{ params.allow }}"), Some("params.allow"));
        assert_eq!(whole_expression(" {{a|list}} "), Some("a|list"));
        assert_eq!(whole_expression("{{ a }}-{{ b }}"), None);
        assert_eq!(whole_expression("x {{ a }}"), None);
        assert_eq!(whole_expression("{% if a %}{{ a }}{% endif %}"), None);
    }

    #[test]
    fn default_and_defined_guard_a_variable() {
        use super::guarded;
        assert!(guarded("{{ vars.x | default('y') }}", "vars.x"));
        assert!(guarded("{{ vars.x|d('y') }}", "vars.x"));
        assert!(guarded(
            "{% if vars.x is defined %}{{ vars.x | default(1) }}{% endif %}",
            "vars.x"
        ));
        assert!(!guarded("{{ vars.x | upper }}", "vars.x"));
        assert!(!guarded("{{ vars.x | default(1) }} {{ vars.x }}", "vars.x"));
        assert!(!guarded("{{ vars.xy | default(1) }}", "vars.x"));
        assert!(!guarded("{{ vars.x | defaults }}", "vars.x"));
    }

    #[test]
    fn finds_interpolations_inside_quotes_only() {
        assert!(interpolations_inside_quotes("echo {{ x }} 'literal' \"text\"").is_empty());
        assert_eq!(
            interpolations_inside_quotes("echo {{ x }}"),
            Vec::<std::ops::Range<usize>>::new()
        );
        assert_eq!(
            interpolations_inside_quotes("echo \"{{ x }}\""),
            vec![6..13]
        );
        assert_eq!(
            interpolations_inside_quotes("echo 'a {{ x }} b'"),
            vec![8..15]
        );
        assert_eq!(
            interpolations_inside_quotes("echo \"a\" {{ x }} \"\\\"{{ y }}\""),
            vec![20..27]
        );
        assert_eq!(
            interpolations_inside_quotes("{% if a %}'x'{% endif %} {{ y }}"),
            Vec::<std::ops::Range<usize>>::new()
        );
    }
}
