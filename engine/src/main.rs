//! The `runbook` command. Thin: parse arguments, run one command, map the outcome to an exit
//! code in one place (docs/cli.md, "Exit codes").

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
