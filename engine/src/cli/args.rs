//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  runbook validate runbooks/gtm/switchover.yaml -i inventory/lab.yaml
  runbook plan runbooks/gtm/migrate-existing.yaml -i inventory/gtm-prod.yaml -e sync_timeout=10m
  runbook plan runbooks/gtm/switchover.yaml -i inventory/lab.yaml --format json
  runbook graph runbooks/gtm/switchover.yaml -i inventory/lab.yaml --format mermaid
  runbook modules command

Exit codes: 0 ok, 1 a run failed, 2 invalid input (nothing was run), 3 awaiting an operator (`runbook approve`), 4 paused at the outage window, 5 stopped: the run's state could not be recorded (resume once it can be), 6 refused: another run holds a lock (nothing was changed), 7 the environment failed (a journal that cannot be read, a file that cannot be written).";

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
    /// Show what a runbook will do: phases, waves, actions per host with the vendor commands
    /// (the exact scripts with `--scripts`), the critical-path estimate and the outage window.
    Plan {
        #[command(flatten)]
        inputs: Inputs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Show the exact scripts sent to the hosts instead of each module's command lines
        /// (the JSON plan always has both).
        #[arg(long)]
        scripts: bool,
        /// Also write the sealed plan, with the fingerprints of its runbook, inventory,
        /// parameters and modules, to this file: `runbook apply PLAN` runs exactly it.
        #[arg(long, value_name = "PLAN")]
        out: Option<PathBuf>,
        /// Connect (as `apply --dry-run` does: host keys checked, nothing changed) and run the
        /// plan's read-only checks, showing what each saw; with `--out` the facts are saved and
        /// `apply PLAN` refuses when the hosts no longer match them.
        #[arg(long)]
        probe: bool,
        /// Compare the estimates with this outage window (`START/END` or `22:00/02:00 ZONE`).
        #[arg(long, value_name = "START/END")]
        window: Option<String>,
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
    /// Sandboxed sshd hosts on loopback addresses, to rehearse a runbook (docs/lab.md).
    Lab(LabArgs),
    /// Run a runbook against its inventory's hosts over SSH.
    #[command(
        after_help = "Exit codes: 0 succeeded, 1 an action failed or a host was unreachable, 2 invalid input (nothing was run), 3 stopped at a manual step awaiting `runbook approve`, 4 paused at the outage window (apply again in the window to resume), 5 stopped: the run's state could not be recorded (a full disk: free space in the state directory and apply again to resume), 6 refused: another run holds one of its hosts or its lock (nothing was changed), 7 the environment failed (a journal that cannot be opened or read)."
    )]
    Apply(ApplyArgs),
    /// Approve a manual step of a run that stopped awaiting approval.
    Approve(ApproveArgs),
    /// Resume an interrupted run (`apply` does it by itself for the same runbook and inventory).
    #[command(
        after_help = "Exit codes: as for `apply`: 0 succeeded, 1 failed, 2 invalid input, 3 awaiting an operator, 4 paused at the outage window, 5 stopped: the run's state could not be recorded, 6 refused: another run holds a lock, 7 the environment failed."
    )]
    Resume(ResumeArgs),
    /// List the recorded runs, newest first.
    Runs(StateArgs),
    /// Show a run's progress and each action's state (the newest run by default).
    Status {
        /// The run id (default: the newest).
        run: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Give up an interrupted run: `apply` then starts a new one. Refused (exit 6) while the run
    /// is live.
    Abandon {
        run: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Decide the outcome of an action that was interrupted and cannot be checked.
    Resolve(ResolveArgs),
    /// The runs' leases in the shared journal (`--state postgres://...`): who holds which run.
    #[command(subcommand)]
    Lock(LockCommand),
    /// The run report for the change ticket (the newest run by default): what ran, where, when,
    /// by whom, the windows, approvals and resolutions, artifacts, and a suggested close code.
    /// `apply` also writes it into the run directory when a run ends.
    Report {
        /// The run id (default: the newest).
        run: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
        /// Write it to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Print a shell completion script: `runbook completions bash > /etc/bash_completion.d/runbook`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// List the built-in runbooks: name, platform, version and the seed section it traces to.
    /// `runbook apply NAME -i INVENTORY` runs one by name.
    List,
    /// Print a built-in runbook (`gtm/switchover`, or `switchover`), or a built-in block
    /// (`blocks/gtm/switchover`), to copy and adapt.
    Show {
        /// `PLATFORM/NAME`, or `NAME` when only one platform has it, or `blocks/...`.
        name: String,
        /// Also print every block the runbook uses, each after a `# ---- runbooks/PATH` line.
        #[arg(long)]
        blocks: bool,
    },
    /// Print the manual page (roff): `runbook man | man -l -`.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// List the leases: run, holder (operator, host, pid), epoch, last heartbeat, expiry.
    Show {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Expire a run's lease now, whoever holds it, when its holder is known to be gone; the
    /// steal is recorded with the run (`status`, the report). The next `resume` takes the run.
    Steal {
        run: String,
        /// Why (recorded with the steal).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Who steals it (default: `RUNBOOK_OPERATOR`, else `$USER`).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        state: StateArgs,
    },
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Where runs are recorded (default: `RUNBOOK_STATE`, else `.runbook/` in the working
    /// directory; the same for every command).
    #[arg(long = "state", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl StateArgs {
    /// The state directory: `--state`, else `RUNBOOK_STATE`, else `./.runbook`.
    pub fn dir(&self) -> PathBuf {
        super::state::dir(self.dir.as_deref())
    }
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run id.
    pub run: String,
    #[command(flatten)]
    pub state: StateArgs,
    #[arg(long, default_value_t = 10)]
    pub forks: usize,
    #[arg(long)]
    pub fail_fast: bool,
    #[arg(long, value_enum, default_value_t = ProgressFormat::Auto)]
    pub format: ProgressFormat,
    #[arg(long = "secret", value_name = "NAME=SOURCE")]
    pub secrets: Vec<String>,
    /// Who resumes it, named in its locks (the run keeps the operator who started it).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    #[arg(long = "diagnostics", value_enum, default_value_t = DiagnosticFormat::Human)]
    pub diagnostics: DiagnosticFormat,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub persist: PersistArgs,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    pub run: String,
    /// The action, `STEP@HOST`.
    pub action: String,
    /// It took effect: do not run it again.
    #[arg(long, conflicts_with = "redo", required_unless_present = "redo")]
    pub done: bool,
    /// It did not take effect: run it again.
    #[arg(long)]
    pub redo: bool,
    /// Who decides (recorded).
    #[arg(long, default_value = "")]
    pub by: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Set by `runbook apply PLAN` (a file `plan --out` wrote): the plan must be exactly it.
    #[arg(long, hide = true, value_name = "PLAN")]
    pub saved_plan: Option<PathBuf>,
    /// Actions at once over all hosts.
    #[arg(long, default_value_t = 10)]
    pub forks: usize,
    /// Only these hosts: a target selector such as `a,b` or `group:site_a`.
    #[arg(long, value_name = "SELECTOR")]
    pub limit: Option<String>,
    /// Stop starting new actions after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Connect and run every module's read-only check; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How to show progress: bars on a terminal, plain lines otherwise, or JSON lines.
    #[arg(long, value_enum, default_value_t = ProgressFormat::Auto)]
    pub format: ProgressFormat,
    #[command(flatten)]
    pub state: StateArgs,
    /// Where a secret parameter comes from: `NAME=env:VARIABLE` or `NAME=file:PATH`
    /// (default: the variable `RUNBOOK_SECRET_NAME`, else a prompt on a terminal).
    #[arg(long = "secret", value_name = "NAME=SOURCE")]
    pub secrets: Vec<String>,
    /// Who runs it, recorded with the run and named in its locks and report (default:
    /// `RUNBOOK_OPERATOR`, else `USER@HOSTNAME`).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub persist: PersistArgs,
}

/// How long connections outlive a run (docs/execution.md, "Connections").
#[derive(Clone, Debug, Default, Args)]
pub struct PersistArgs {
    /// Keep each host's connection up this long after the run's last command there, for the
    /// next run to use (default 60s, at most 1h).
    #[arg(long, value_name = "DURATION", value_parser = persist_time)]
    pub persist: Option<std::time::Duration>,
    /// Open this run's own connections and close them when it ends.
    #[arg(long, conflicts_with = "persist")]
    pub no_persist: bool,
}

impl PersistArgs {
    pub fn get(&self) -> runbook::transport::persist::Persist {
        use runbook::transport::persist::Persist;
        if self.no_persist {
            Persist::Off
        } else {
            self.persist.map_or_else(Persist::default, Persist::For)
        }
    }
}

fn persist_time(text: &str) -> Result<std::time::Duration, String> {
    let longest = runbook::transport::persist::LONGEST_PERSIST;
    match runbook_modules::parse_duration(text) {
        Some(d) if d >= std::time::Duration::from_secs(1) && d <= longest => Ok(d),
        Some(_) => Err(format!(
            "between 1s and {}s (or --no-persist)",
            longest.as_secs()
        )),
        None => Err("a duration such as 30s or 2m".into()),
    }
}

/// The outage window of a run (docs/execution.md, "Outage windows").
#[derive(Clone, Debug, Default, Args)]
pub struct WindowArgs {
    /// The outage window: `START/END` in RFC 3339, or `22:00/02:00 Europe/Berlin` (daily).
    /// Default: the runbook parameter `window`, else the window the run was started with.
    #[arg(long, value_name = "START/END")]
    pub window: Option<String>,
    /// Wait for the window to open (or for the next one) instead of pausing.
    #[arg(long)]
    pub wait: bool,
    /// Start an irreversible step although the rest of the outage may not fit in the window.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The run id, as `apply` printed it.
    pub run: String,
    /// The manual step's id.
    pub step: String,
    /// Who approves.
    #[arg(long)]
    pub by: String,
    /// Why (recorded with the run).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressFormat {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    Plain,
    Json,
}

#[derive(Debug, Args)]
pub struct Inputs {
    /// The runbook file (YAML).
    pub runbook: PathBuf,
    /// The inventory: native YAML (`kind: Inventory`), or an Ansible inventory (YAML or INI).
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

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 ok, 2 invalid arguments or a lab that failed to start or stop, 7 a lab directory or file that cannot be read or written."
)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Create the lab's keys and configs and start one sshd per host (they keep running).
    Up {
        #[command(flatten)]
        dir: LabDir,
        /// Host names, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            conflicts_with = "count",
            value_name = "A,B,C"
        )]
        hosts: Vec<String>,
        /// Number of hosts, named a, b, c, ... (default 3).
        #[arg(short = 'n', long = "count", value_name = "N")]
        count: Option<usize>,
        /// The first host's address (127.0.0.0/8); default: a random 127.X.Y.2.
        #[arg(long, value_name = "ADDRESS")]
        first_address: Option<std::net::Ipv4Addr>,
        /// Give a host an inventory role: `--role a=originating` (repeatable).
        #[arg(long = "role", value_name = "HOST=ROLE", value_parser = name_value)]
        roles: Vec<String>,
        /// Set an inventory variable on every host: `--var 'gtm_dir={root}/gtm'` (repeatable).
        /// Placeholders: {name} {NAME} {index} {address} {root} {free_port}.
        #[arg(long = "var", value_name = "NAME=TEMPLATE", value_parser = name_value)]
        vars: Vec<String>,
        /// Give the inventory what the platform's built-in runbooks need: for `gtm`, the
        /// variables `platform`, `gtm_dir`, `gtm_instance`, `repl_port`, and the roles
        /// originating, replicating (and supplementary) unless `--role` gives them.
        #[arg(long, value_name = "PLATFORM", value_parser = ["gtm"])]
        platform: Option<String>,
    },
    /// Stop every sshd of the lab, and their sessions.
    Down {
        #[command(flatten)]
        dir: LabDir,
        /// Also remove the lab directory.
        #[arg(long)]
        purge: bool,
    },
    /// Show each host: up or down, address:port, pid.
    Status {
        #[command(flatten)]
        dir: LabDir,
    },
    /// Print the path of the lab's inventory (for scripts: `-i "$(runbook lab inventory)"`).
    Inventory {
        #[command(flatten)]
        dir: LabDir,
    },
}

#[derive(Debug, Args)]
pub struct LabDir {
    /// The lab directory.
    #[arg(long, default_value = runbook::lab::DEFAULT_DIR, value_name = "DIR")]
    pub dir: PathBuf,
}

/// A `NAME=VALUE` argument.
fn name_value(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((name, _)) if !name.is_empty() => Ok(s.to_owned()),
        _ => Err(format!("expected NAME=VALUE, found `{s}`")),
    }
}

/// Formats of `runbook report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for pasting into a ticket.
    Md,
    /// One self-contained HTML page with an SVG timeline.
    Html,
    /// JSON, with a `format_version`.
    Json,
}
