//! Runbook parameters: declared types, defaults, and values from `-e` and `--params`.

use serde_json::Value as Json;

use crate::ast::{ParamKind, Runbook};
use crate::diagnostic::{Code, Diagnostic, SourceFile};
use crate::yaml::{self, Node, Span};

/// Where a value given on the command line came from.
#[derive(Clone, Debug)]
pub enum OverrideOrigin {
    /// `-e name=value`.
    Flag,
    /// A `--params` file, with the span of the value.
    File { source: SourceFile, span: Span },
}

/// One value for a parameter, before it is checked against the parameter's type.
#[derive(Clone, Debug)]
pub struct Override {
    pub name: String,
    pub value: Node,
    pub origin: OverrideOrigin,
}

/// Parameter values given on the command line, in the order given (later wins).
#[derive(Clone, Debug, Default)]
pub struct Overrides(pub Vec<Override>);

impl Overrides {
    /// Parses `-e name=value`. The value is read as a YAML scalar or flow sequence, so
    /// `-e regions=[a,b]` gives a list and `-e port=8080` an int.
    pub fn push_flag(&mut self, assignment: &str) -> Result<(), Diagnostic> {
        let Some((name, text)) = assignment.split_once('=') else {
            return Err(Diagnostic::new(
                Code::ParamInvalid,
                format!("`-e {assignment}` is not `name=value`"),
            )
            .help("write parameters as `-e name=value`"));
        };
        let value = match yaml::parse(text) {
            // `-e name=` is the empty string, not null.
            Ok(node)
                if !matches!(node.kind, yaml::NodeKind::Map(_) | yaml::NodeKind::Null)
                    || text.trim() == "null" =>
            {
                node
            }
            _ => Node::new(
                yaml::NodeKind::Scalar(text.to_owned(), yaml::ScalarStyle::DoubleQuoted),
                Span::default(),
            ),
        };
        self.0.push(Override {
            name: name.trim().to_owned(),
            value,
            origin: OverrideOrigin::Flag,
        });
        Ok(())
    }

    /// Reads a `--params` YAML file: a mapping from parameter names to values.
    pub fn push_file(&mut self, name: &str, text: String) -> Result<(), Vec<Diagnostic>> {
        let source = SourceFile::new(name, text);
        let root =
            yaml::parse(source.text()).map_err(|e| vec![Diagnostic::from(e).in_file(&source)])?;
        let Some(entries) = root.as_map() else {
            if root.is_null() {
                return Ok(());
            }
            return Err(vec![
                Diagnostic::new(
                    Code::WrongType,
                    "a params file must be a mapping of names to values",
                )
                .in_file(&source)
                .primary(root.span, "expected a mapping")
                .help("write one `name: value` line per parameter"),
            ]);
        };
        for (key, value) in entries {
            self.0.push(Override {
                name: key.as_str().unwrap_or_default().to_owned(),
                value: value.clone(),
                origin: OverrideOrigin::File {
                    source: source.clone(),
                    span: key.span,
                },
            });
        }
        Ok(())
    }
}

/// Where a parameter's value came from, for `plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueOrigin {
    Default,
    CommandLine,
    /// No value: an optional parameter without default, or a secret asked for at apply time.
    Unset,
}

#[derive(Clone, Debug)]
pub struct ResolvedParam {
    pub name: String,
    pub kind: ParamKind,
    /// The typed value; `None` when unset. Never holds a secret's text.
    pub value: Option<Json>,
    pub origin: ValueOrigin,
    pub required: bool,
}

/// Checks every override and default against the declared types.
pub fn resolve(
    runbook: &Runbook,
    overrides: &Overrides,
    out: &mut Vec<Diagnostic>,
) -> Vec<ResolvedParam> {
    let source = &runbook.source;
    for o in &overrides.0 {
        if !runbook.params.iter().any(|p| p.name.value == o.name) {
            let mut d = Diagnostic::new(
                Code::ParamUnknown,
                format!("unknown parameter `{}`", o.name),
            );
            d = match crate::suggest::closest(
                &o.name,
                runbook.params.iter().map(|p| p.name.value.as_str()),
            ) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None if runbook.params.is_empty() => d.help("this runbook declares no parameters"),
                None => d.help(format!(
                    "declared parameters: {}",
                    runbook
                        .params
                        .iter()
                        .map(|p| format!("`{}`", p.name.value))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            out.push(locate(d, &o.origin, "not declared by the runbook"));
        }
    }
    let mut resolved = Vec::new();
    for decl in &runbook.params {
        let given = overrides.0.iter().rev().find(|o| o.name == decl.name.value);
        let (value, origin) = match (given, &decl.default) {
            (Some(o), _) if decl.kind == ParamKind::Secret => {
                let d = Diagnostic::new(
                    Code::ParamSecretInArgv,
                    format!("secret parameter `{}` cannot be given on the command line or in a params file", o.name),
                )
                .help("command lines end up in shell history and process lists; secrets are read from the environment, a file or a prompt when the run starts");
                out.push(locate(d, &o.origin, "secret given here"));
                (None, ValueOrigin::Unset)
            }
            (Some(o), _) => match typed(decl.kind, &decl.choices, &o.value) {
                Ok(v) => (Some(v), ValueOrigin::CommandLine),
                Err(why) => {
                    let d = Diagnostic::new(
                        Code::ParamInvalid,
                        format!("invalid value for parameter `{}`: {why}", o.name),
                    )
                    .help(format!(
                        "`{}` is declared as {} in the runbook",
                        o.name,
                        describe(decl.kind, &decl.choices)
                    ));
                    out.push(locate(d, &o.origin, "invalid value"));
                    (None, ValueOrigin::Unset)
                }
            },
            (None, Some(default)) => match typed(decl.kind, &decl.choices, default) {
                Ok(v) => (Some(v), ValueOrigin::Default),
                Err(why) => {
                    out.push(
                        Diagnostic::new(
                            Code::ParamInvalid,
                            format!("invalid default for parameter `{}`: {why}", decl.name.value),
                        )
                        .in_file(source)
                        .primary(
                            default.span,
                            format!("not {}", describe(decl.kind, &decl.choices)),
                        )
                        .help("make the default match the declared type"),
                    );
                    (None, ValueOrigin::Unset)
                }
            },
            (None, None) => {
                if decl.required && decl.kind != ParamKind::Secret {
                    out.push(
                        Diagnostic::new(
                            Code::ParamMissing,
                            format!("parameter `{}` is required", decl.name.value),
                        )
                        .in_file(source)
                        .primary(decl.name.span, "required, and no value was given")
                        .help(format!(
                            "pass it with `-e {}=VALUE` or in a `--params` file",
                            decl.name.value
                        )),
                    );
                }
                (None, ValueOrigin::Unset)
            }
        };
        resolved.push(ResolvedParam {
            name: decl.name.value.clone(),
            kind: decl.kind,
            value,
            origin,
            required: decl.required,
        });
    }
    resolved
}

fn locate(d: Diagnostic, origin: &OverrideOrigin, label: &str) -> Diagnostic {
    match origin {
        OverrideOrigin::Flag => d,
        OverrideOrigin::File { source, span } => d.in_file(source).primary(*span, label),
    }
}

fn describe(kind: ParamKind, choices: &[String]) -> String {
    if choices.is_empty() {
        let article = if kind.name().starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {}", kind.name())
    } else {
        format!(
            "one of {}",
            choices
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// A value checked against a parameter type, as JSON.
fn typed(kind: ParamKind, choices: &[String], node: &Node) -> Result<Json, String> {
    let text = || {
        node.as_str()
            .ok_or_else(|| format!("expected a {}, found {}", kind.name(), node.describe()))
    };
    let value = match kind {
        ParamKind::String | ParamKind::Secret => Json::String(text()?.to_owned()),
        ParamKind::Path => {
            let t = text()?;
            if t.is_empty() || t.contains('\0') {
                return Err("a path cannot be empty".into());
            }
            Json::String(t.to_owned())
        }
        ParamKind::Int => {
            let t = text()?;
            Json::from(
                t.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("`{t}` is not an integer"))?,
            )
        }
        ParamKind::Bool => match text()? {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            t => return Err(format!("`{t}` is not `true` or `false`")),
        },
        ParamKind::Duration => {
            let t = text()?;
            let d = runbook_modules::parse_duration(t)
                .ok_or_else(|| format!("`{t}` is not a duration such as `30s`, `5m` or `1h30m`"))?;
            Json::String(runbook_modules::format_duration(d))
        }
        ParamKind::List => match &node.kind {
            yaml::NodeKind::Seq(_) => node.to_json(),
            yaml::NodeKind::Scalar(s, _) => Json::Array(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Json::String(s.to_owned()))
                    .collect(),
            ),
            _ => return Err(format!("expected a list, found {}", node.describe())),
        },
    };
    let shown = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    if !choices.is_empty() && !choices.contains(&shown) {
        return Err(format!(
            "`{shown}` is not one of {}",
            choices
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(value)
}
