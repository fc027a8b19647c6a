//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  runbook validate runbooks/gtm/switchover.yaml -i inventory/lab.yaml
  runbook plan runbooks/gtm/migrate-existing.yaml -i inventory/gtm-prod.yaml -e instance=A
  runbook plan runbooks/gtm/switchover.yaml -i inventory/lab.yaml --format json
  runbook graph runbooks/gtm/switchover.yaml -i inventory/lab.yaml --format mermaid
  runbook modules command

Exit codes: 0 ok, 1 a run failed, 2 invalid input (nothing was run).";

/// Declarative runbooks for planned outages, compiled into a dependency graph of step@host
/// actions.
#[derive(Debug, Parser)]
#[command(name = "runbook", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a runbook against an inventory and report every error at once.
    #[command(after_help = "Exit codes: 0 valid, 2 invalid (every error is printed).")]
    Validate(Inputs),
    /// Show what a runbook will do: phases, waves, actions per host with the exact commands,
    /// the critical-path estimate and the outage window.
    Plan {
        #[command(flatten)]
        inputs: Inputs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Print the action graph as Graphviz DOT or Mermaid.
    Graph {
        #[command(flatten)]
        inputs: Inputs,
        #[arg(long, value_enum, default_value_t = GraphFormatArg::Dot)]
        format: GraphFormatArg,
    },
    /// List the built-in modules, or show one module's parameters.
    Modules {
        /// A module name, such as `command` or `copy`.
        name: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct Inputs {
    /// The runbook file (YAML).
    pub runbook: PathBuf,
    /// The inventory: runbook YAML, or an Ansible inventory (YAML or INI).
    #[arg(short = 'i', long = "inventory")]
    pub inventory: PathBuf,
    /// Set a parameter: `-e name=value` (repeatable; later wins). Secrets are refused here.
    #[arg(short = 'e', long = "extra", value_name = "NAME=VALUE")]
    pub extra: Vec<String>,
    /// Read parameters from a YAML file of `name: value` lines (before any `-e`).
    #[arg(long = "params", value_name = "FILE")]
    pub params: Vec<PathBuf>,
    /// Format of diagnostics on stderr.
    #[arg(long = "diagnostics", value_enum, default_value_t = DiagnosticFormat::Human)]
    pub diagnostics: DiagnosticFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormatArg {
    Dot,
    Mermaid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Human,
    Json,
}
