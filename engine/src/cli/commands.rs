//! One function per command; each returns how it ended ([`Outcome`] or [`CliError`]), which
//! `outcome::finish` prints and maps to the exit code.

use std::fmt::Write as _;
use std::io::Write;

use runbook::plan::{Detail, GraphFormat, render_graph, render_json, render_text_with};
use runbook_modules::Registry;

use super::args::{Cli, Command, GraphFormatArg, OutputFormat};
use super::load;
use super::outcome::{CliError, Outcome};

pub fn dispatch(mut cli: Cli) -> Result<Outcome, CliError> {
    // A runbook named rather than given as a file is a built-in (`runbook list`).
    match &mut cli.command {
        Command::Validate(inputs)
        | Command::Plan { inputs, .. }
        | Command::Graph { inputs, .. } => load::resolve(inputs),
        Command::Apply(args) => load::resolve(&mut args.inputs),
        _ => {}
    }
    match cli.command {
        Command::Validate(inputs) => match load::plan(&inputs) {
            Ok(plan) => {
                println!(
                    "ok: {} {} is valid: {} phases, {} steps, {} actions",
                    plan.runbook.name,
                    plan.runbook.version,
                    plan.phases.len(),
                    plan.steps.len(),
                    plan.action_count()
                );
                Ok(Outcome::Ok)
            }
            Err(list) => Err(CliError::Diagnostics {
                list,
                format: inputs.diagnostics,
            }),
        },
        Command::Plan {
            inputs,
            format,
            scripts,
            out,
            probe,
            window,
        } => match load::plan(&inputs) {
            Ok(plan) => {
                let facts = if probe {
                    match super::saved_plan::probe::probe(&inputs, None) {
                        Ok(facts) => {
                            eprint!("{}", super::saved_plan::probe::render(&facts));
                            Some(facts)
                        }
                        Err(e) => return Err(CliError::invalid(e)),
                    }
                } else {
                    None
                };
                if let Some(out) = &out {
                    let mut saved = super::saved_plan::SavedPlan::of(&inputs, &plan);
                    saved.facts = facts;
                    let text = serde_json::to_string_pretty(&saved)
                        .expect("a saved plan is plain data, always serializable");
                    fs_err::write(out, text + "\n").map_err(CliError::environment)?;
                    eprintln!(
                        "saved the plan to {}: `runbook apply {}` runs exactly it",
                        out.display(),
                        out.display()
                    );
                }
                let fit = match window.as_deref().map(runbook::window::WindowSpec::parse) {
                    None => None,
                    Some(Ok(spec)) => Some(runbook::window::fit(&plan, &spec, now())),
                    Some(Err(e)) => return Err(CliError::invalid(e.to_string())),
                };
                let text = match format {
                    OutputFormat::Text => {
                        let detail = if scripts {
                            Detail::Scripts
                        } else {
                            Detail::Summary
                        };
                        let mut text = render_text_with(&plan, detail);
                        if let Some(fit) = &fit {
                            text.push_str(&runbook::window::render_fit(fit));
                        }
                        text
                    }
                    OutputFormat::Json => match &fit {
                        None => render_json(&plan),
                        Some(fit) => with_window(&render_json(&plan), fit),
                    },
                };
                print(&text)
            }
            Err(list) => Err(CliError::Diagnostics {
                list,
                format: inputs.diagnostics,
            }),
        },
        Command::Graph { inputs, format } => match load::plan(&inputs) {
            Ok(plan) => {
                let format = match format {
                    GraphFormatArg::Dot => GraphFormat::Dot,
                    GraphFormatArg::Mermaid => GraphFormat::Mermaid,
                };
                print(&render_graph(&plan, format))
            }
            Err(list) => Err(CliError::Diagnostics {
                list,
                format: inputs.diagnostics,
            }),
        },
        Command::Modules { name } => modules(name.as_deref()),
        Command::Lab(args) => super::lab::run(args),
        Command::Apply(args) => super::apply::run(&args),
        Command::Approve(args) => super::apply::approve(&args),
        Command::Resume(args) => super::apply::resume(&args),
        Command::Runs(state) => super::runs::list(&state.dir()),
        Command::Status { run, format, state } => {
            super::runs::status(&state.dir(), run.as_deref(), format == OutputFormat::Json)
        }
        Command::Abandon { run, state } => super::runs::abandon(&state.dir(), &run),
        Command::Resolve(args) => super::runs::resolve(&args),
        Command::Lock(command) => super::lock_cmd::run(&command),
        Command::Report {
            run,
            format,
            out,
            state,
        } => super::run_report::run(&state.dir(), run.as_deref(), format, out.as_ref()),
        Command::Completions { shell } => print(&super::manual::completions(shell)),
        Command::List => print(&super::builtins::list()),
        Command::Show { name, blocks } => super::builtins::show(&name, blocks),
        Command::Man => super::manual::man_page().map_or_else(
            |e| {
                Err(CliError::Environment(format!(
                    "cannot render the manual page: {e}"
                )))
            },
            |page| print(&page),
        ),
    }
}

/// Now, or `RUNBOOK_FAKE_NOW` (rehearsals and tests).
pub(crate) fn now() -> jiff::Timestamp {
    runbook::clock::OffsetClock::from_env()
        .ok()
        .flatten()
        .map_or_else(jiff::Timestamp::now, |c| runbook::clock::Clock::now(&c))
}

/// The JSON plan with a `window` object added at the end.
fn with_window(json: &str, fit: &runbook::window::Fit) -> String {
    let Ok(serde_json::Value::Object(mut plan)) = serde_json::from_str(json) else {
        return json.to_owned();
    };
    plan.insert(
        "window".to_owned(),
        serde_json::to_value(fit).unwrap_or_default(),
    );
    let mut out =
        serde_json::to_string_pretty(&serde_json::Value::Object(plan)).unwrap_or_default();
    out.push('\n');
    out
}

#[expect(
    clippy::unnecessary_wraps,
    reason = "the result of the commands that end by printing, as every command returns it"
)]
fn print(text: &str) -> Result<Outcome, CliError> {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`runbook plan ... | head`) is not an error worth a panic.
    let _ = stdout.write_all(text.as_bytes());
    Ok(Outcome::Ok)
}

fn modules(name: Option<&str>) -> Result<Outcome, CliError> {
    let registry = Registry::builtin();
    let mut out = String::new();
    match name {
        None => {
            for m in registry.iter() {
                let _ = writeln!(out, "{:<24} {}", m.name(), m.description());
            }
        }
        Some(name) => {
            let Some(m) = registry.get(name) else {
                let hint = runbook_modules::closest(name, registry.names())
                    .map_or_else(String::new, |s| format!("; did you mean `{s}`?"));
                return Err(CliError::invalid(format!("unknown module `{name}`{hint}")));
            };
            let _ = write!(
                out,
                "{}: {}\nidempotent: {}\n\nparameters:\n",
                m.name(),
                m.description(),
                m.idempotent()
            );
            for p in m.params() {
                let req = if p.required {
                    "required".to_owned()
                } else {
                    p.default
                        .as_ref()
                        .map_or_else(|| "optional".to_owned(), |d| format!("default {d}"))
                };
                let _ = writeln!(
                    out,
                    "  {:<16} {:<20} {:<16} {}",
                    p.name,
                    p.ty.describe(),
                    req,
                    p.description
                );
            }
        }
    }
    print(&out)
}
