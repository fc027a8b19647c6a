//! The template language: minijinja in strict mode, with shell quoting on by default.
//!
//! Templates appear in step arguments (`{{ params.instance }}`); expressions appear bare in
//! `when:`, `until:`, `loop:` and `assert`'s `that:` (`backlog.rc == 0`). Three rules:
//!
//! - An undefined variable is an error, never an empty string (`UndefinedBehavior::Strict`).
//! - In arguments that are shell source, every interpolated value is shell-quoted by the
//!   formatter, so an inventory value such as `x"; touch /tmp/pwned; "` stays one inert word.
//!   The opt-out is the filter `unquoted`, visible in the runbook and greppable in review.
//! - Every template is compiled once, when the runbook is compiled, and its variables are
//!   checked statically against what will be in scope (see `compile::scope`).
//!
//! Before minijinja sees a template or an expression, its size is bounded ([`limits`]): how
//! deep minijinja's trees get, and so how deep its recursion goes, is up to the input.

pub mod limits;

use std::collections::BTreeSet;
use std::ops::Range;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, UndefinedBehavior};

/// A template or expression that did not compile or render, with the byte range of the
/// problem inside its source when minijinja knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub range: Option<Range<usize>>,
    /// Refused by [`limits`] before minijinja saw it, rather than a syntax or render error.
    pub too_complex: bool,
}

impl TemplateError {
    fn from_minijinja(err: &Error) -> Self {
        let mut message = err.kind().to_string();
        if let Some(detail) = err.detail() {
            message = format!("{message}: {detail}");
        }
        Self {
            message,
            range: err.range(),
            too_complex: false,
        }
    }
}

impl From<limits::TooComplex> for TemplateError {
    fn from(err: limits::TooComplex) -> Self {
        Self {
            message: err.message,
            range: Some(err.range),
            too_complex: true,
        }
    }
}

/// Whether a string holds template syntax at all; other strings are taken literally.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// How interpolated values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Escape {
    /// Shell-quote every interpolated value.
    Shell,
    /// Insert values as they are (the consumer quotes, or no shell is involved).
    None,
}

/// Handle to a compiled template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TemplateId(String);

/// The template environment of one compilation.
pub struct Templates {
    env: Environment<'static>,
    count: usize,
    /// Templates already compiled, by escape and source, with the variables they read: the
    /// same text in many steps is compiled once (minijinja keeps about 8 KB per template).
    compiled: std::collections::HashMap<(Escape, String), (TemplateId, BTreeSet<String>)>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.starts_with("shell:") {
                AutoEscape::Custom("shell".into())
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(|out, state, value| {
            // `none` prints as nothing and booleans as `true`/`false`, as a shell expects
            // (Jinja's `None`/`True` are Python spellings).
            let text = if value.is_none() {
                String::new()
            } else if value.kind() == minijinja::value::ValueKind::Bool {
                value.is_true().to_string()
            } else {
                value.to_string()
            };
            if matches!(state.auto_escape(), AutoEscape::Custom(name) if name == "shell")
                && !value.is_safe()
            {
                out.write_str(&runbook_modules::quote(&text))
                    .map_err(Error::from)
            } else {
                out.write_str(&text).map_err(Error::from)
            }
        });
        env.add_filter("quote", |value: Value| {
            Value::from_safe_string(runbook_modules::quote(&value.to_string()))
        });
        env.add_filter("unquoted", |value: Value| {
            Value::from_safe_string(value.to_string())
        });
        Self {
            env,
            count: 0,
            compiled: std::collections::HashMap::new(),
        }
    }

    /// Compiles a template once and returns its handle and the variables it reads, as dotted
    /// paths (`params.instance`, `host.address`, `backlog.stdout`).
    pub fn compile(
        &mut self,
        source: &str,
        escape: Escape,
    ) -> Result<(TemplateId, BTreeSet<String>), TemplateError> {
        limits::check_template(source)?;
        if let Some(done) = self.compiled.get(&(escape, source.to_owned())) {
            return Ok(done.clone());
        }
        self.count += 1;
        let prefix = match escape {
            Escape::Shell => "shell",
            Escape::None => "plain",
        };
        let name = format!("{prefix}:{}", self.count);
        self.env
            .add_template_owned(name.clone(), source.to_owned())
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        let template = self
            .env
            .get_template(&name)
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        let vars: BTreeSet<String> = template.undeclared_variables(true).into_iter().collect();
        let done = (TemplateId(name), vars);
        self.compiled
            .insert((escape, source.to_owned()), done.clone());
        Ok(done)
    }

    /// Checks an expression's syntax and returns the variables it reads.
    pub fn check_expression(&self, source: &str) -> Result<BTreeSet<String>, TemplateError> {
        limits::check_expression(source)?;
        let expr = self
            .env
            .compile_expression(source)
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        Ok(expr.undeclared_variables(true).into_iter().collect())
    }

    pub fn render(&self, id: &TemplateId, context: &Value) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(&id.0)
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        template
            .render(context)
            .map_err(|e| TemplateError::from_minijinja(&e))
    }

    /// Renders a template that is used once (loop items), without keeping it.
    pub fn render_once(&self, source: &str, context: &Value) -> Result<String, TemplateError> {
        limits::check_template(source)?;
        self.env
            .render_str(source, context)
            .map_err(|e| TemplateError::from_minijinja(&e))
    }

    /// Checks a one-off template's syntax and returns the variables it reads.
    pub fn check_once(&self, source: &str) -> Result<BTreeSet<String>, TemplateError> {
        limits::check_template(source)?;
        let template = self
            .env
            .template_from_str(source)
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        Ok(template.undeclared_variables(true).into_iter().collect())
    }

    pub fn eval(&self, source: &str, context: &Value) -> Result<Value, TemplateError> {
        limits::check_expression(source)?;
        let expr = self
            .env
            .compile_expression(source)
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        expr.eval(context)
            .map_err(|e| TemplateError::from_minijinja(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn shell_templates_quote_every_value_unless_opted_out() {
        let mut t = Templates::new();
        let (id, vars) = t
            .compile("echo {{ v }} {{ v | unquoted }} {{ n }}", Escape::Shell)
            .expect("compiles");
        assert_eq!(vars, BTreeSet::from(["n".to_owned(), "v".to_owned()]));
        let out = t
            .render(&id, &context! { v => "x\"; touch /tmp/pwned; \"", n => 5 })
            .expect("renders");
        assert_eq!(
            out,
            "echo 'x\"; touch /tmp/pwned; \"' x\"; touch /tmp/pwned; \" 5"
        );
    }

    #[test]
    fn none_and_booleans_print_as_a_shell_expects() {
        let mut t = Templates::new();
        let (id, _) = t
            .compile("[{{ n }}] {{ b }} {{ f }}", Escape::None)
            .expect("compiles");
        let out = t
            .render(&id, &context! { n => (), b => true, f => false })
            .expect("renders");
        assert_eq!(out, "[] true false");
    }

    #[test]
    fn explicit_quote_filter_is_not_quoted_twice() {
        let mut t = Templates::new();
        let (id, _) = t
            .compile("ls {{ p | quote }}", Escape::Shell)
            .expect("compiles");
        assert_eq!(
            t.render(&id, &context! { p => "a b" }).expect("renders"),
            "ls 'a b'"
        );
    }

    #[test]
    fn undefined_variables_are_errors_with_a_range() {
        let mut t = Templates::new();
        let (id, vars) = t
            .compile("x {{ params.nope }}", Escape::None)
            .expect("compiles");
        assert!(vars.contains("params.nope"));
        let err = t
            .render(&id, &context! { params => context! {} })
            .expect_err("must fail");
        assert!(err.message.contains("undefined"), "{}", err.message);
        assert!(err.range.is_some());
    }

    #[test]
    fn syntax_errors_carry_a_range() {
        let mut t = Templates::new();
        let err = t
            .compile("a {{ b + }}", Escape::None)
            .expect_err("must fail");
        assert!(err.range.is_some(), "{err:?}");
        assert!(t.check_expression("rc ==").is_err());
        assert_eq!(
            t.check_expression("r.rc == 0 and params.x")
                .expect("ok")
                .len(),
            2
        );
    }
}
