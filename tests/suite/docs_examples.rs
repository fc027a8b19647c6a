//! The examples operators copy: every command line of README.md and docs/guide.md, and every
//! example of `runbook --help`, run as written (extracted from the documents here, so a change
//! to them that breaks a command fails this test). The guide's rehearsal runs for real: a lab of
//! two sshd hosts with GT.M, migrate-existing, the switchover and the shutdown.
//!
//! They run from a scratch directory that links the repository's `runbooks/`, `tests/`,
//! `inventory/` and `docs/`, with `runbook` first on `PATH`; the guide's `/tmp/lab` becomes a
//! directory of the test's own, and its `prod.yaml` is the example `inventory/gtm-prod.yaml`
//! (as the guide says to copy it). Lines with placeholders (`RUNBOOK`, `RUN STEP`) are
//! synopses: each command they name must exist and take the options they show.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::root;

/// Lines not run, each with why: they act on production hosts.
const NOT_RUN: &[(&str, &str)] = &[(
    "runbook apply runbooks/gtm/switchover.yaml -i prod.yaml --window \"22:00/02:00 Europe/Berlin\" --wait",
    "the night itself: production hosts",
)];

/// The shell lines of the ```sh blocks of a Markdown file, continuation lines joined and
/// trailing comments removed.
fn sh_lines(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_block = !in_block && trimmed.trim_start_matches('`').trim() == "sh";
            continue;
        }
        if !in_block {
            continue;
        }
        let line = strip_comment(line);
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(line.trim());
        let whole = std::mem::take(&mut pending);
        if !whole.is_empty() {
            out.push(whole.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    out
}

/// The line without a comment of two or more spaces and `#`, outside quotes.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single
                && !double
                && i >= 2
                && bytes[i - 1] == b' '
                && bytes[i - 2] == b' ' =>
            {
                return line[..i].trim_end();
            }
            _ => {}
        }
    }
    line.trim_end()
}

/// A synopsis rather than a command: it shows placeholders or alternatives.
fn is_synopsis(line: &str) -> bool {
    line.contains(" | ")
        || line.split_whitespace().any(|w| {
            let w = w.trim_matches(|c: char| "[]".contains(c));
            w.len() >= 3 && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
}

/// Each command a synopsis names exists, and takes every `--option` it shows.
fn check_synopsis(line: &str, bin: &Path) {
    for part in line.trim_start_matches("runbook").split(" | ") {
        let words: Vec<&str> = part.split_whitespace().collect();
        let Some(command) = words.first() else {
            continue;
        };
        let help = Command::new(bin)
            .args([command, "--help"])
            .output()
            .expect("runbook runs");
        assert!(help.status.success(), "`runbook {command}` in `{line}`");
        let text = String::from_utf8_lossy(&help.stdout);
        for option in words.iter().filter(|w| w.contains("--")) {
            let option = option
                .trim_matches(|c: char| "[]".contains(c))
                .split(['=', ' '])
                .next()
                .unwrap_or_default();
            assert!(
                text.contains(option),
                "`{option}` of `{line}` is not an option of `runbook {command}`:\n{text}"
            );
        }
    }
}

/// A scratch working directory that sees the repository's inputs.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["runbooks", "tests", "inventory", "docs"] {
        std::os::unix::fs::symlink(root().join(name), dir.path().join(name)).expect("symlink");
    }
    std::os::unix::fs::symlink(
        root().join("inventory/gtm-prod.yaml"),
        dir.path().join("prod.yaml"),
    )
    .expect("symlink");
    dir
}

/// Runs the `runbook` lines (and shell assignments such as `inv=...`) of `lines` in order,
/// each one as written, in `dir`; every one must exit 0. Returns how many ran.
fn run_lines(lines: &[String], dir: &Path, lab: &Path) -> usize {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_runbook"));
    let path = format!(
        "{}:{}",
        bin.parent().expect("a directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut assignments = String::new();
    let mut ran = 0;
    for line in lines {
        let line = line.replace("/tmp/lab", &lab.display().to_string());
        let first = line.split_whitespace().next().unwrap_or_default();
        if first.contains('=') && !first.starts_with('-') {
            assignments.push_str(&line);
            assignments.push('\n');
            continue;
        }
        if first != "runbook" {
            continue; // installation steps (`.ci/install-packages`, `cargo build`, `./demo.sh`)
        }
        if NOT_RUN.iter().any(|(l, _)| *l == line) {
            continue;
        }
        if is_synopsis(&line) {
            check_synopsis(&line, &bin);
            continue;
        }
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("set -e\n{assignments}{line}"))
            .current_dir(dir)
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env("RUNBOOK_STATE", dir.join("state"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "`{line}` exited {:?}:\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    ran
}

/// Stops a lab the lines started, whatever happened.
struct LabGuard(PathBuf);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = runbook::lab::Lab::purge(&self.0);
    }
}

#[test]
fn the_help_examples_run_as_written() {
    let help = crate::support::run(&["--help"]);
    let lines: Vec<String> = help
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Examples:"))
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| l.starts_with("runbook "))
        .map(str::to_owned)
        .collect();
    assert!(lines.len() >= 4, "{}", help.stdout);
    let dir = scratch();
    let ran = run_lines(&lines, dir.path(), &dir.path().join("lab"));
    assert_eq!(ran, lines.len(), "every example ran");
    for code in 0..=6 {
        assert!(
            help.stdout.contains(&format!(" {code} ")),
            "exit code {code} in the help:\n{}",
            help.stdout
        );
    }
}

#[test]
fn the_readme_tour_runs_as_written() {
    let lines = sh_lines(&fs_err::read_to_string(root().join("README.md")).expect("README"));
    assert!(
        lines.iter().any(|l| l.starts_with("runbook lab up")),
        "{lines:?}"
    );
    let dir = scratch();
    let _lab = LabGuard(dir.path().join(".runbook/lab"));
    let ran = run_lines(&lines, dir.path(), &dir.path().join("lab"));
    assert!(ran >= 8, "{ran} commands ran of {lines:?}");
}

#[test]
fn the_guide_rehearsal_runs_as_written() {
    let text = fs_err::read_to_string(root().join("docs/guide.md")).expect("guide");
    let lines = sh_lines(&text);
    for (line, why) in NOT_RUN {
        assert!(
            lines.contains(&(*line).to_owned()),
            "NOT_RUN names a line the guide no longer has ({why}): {line}"
        );
    }
    let dir = scratch();
    let lab = dir.path().join("lab");
    let _lab = LabGuard(lab.clone());
    let ran = run_lines(&lines, dir.path(), &lab);
    assert!(ran >= 9, "{ran} commands ran of {lines:?}");
    // The rehearsal recorded its runs where every command finds them.
    let runs = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["runs"])
        .current_dir(dir.path())
        .env("RUNBOOK_STATE", dir.path().join("state"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&runs.stdout);
    for name in ["gtm-migrate-existing", "gtm-switchover"] {
        assert!(text.contains(name), "{name} in:\n{text}");
    }
}

#[test]
fn the_line_reader_joins_continuations_and_drops_comments() {
    let md = "```sh\nrunbook lab up -n 2 \\\n  --var 'a={x}'   # rehearse\ninv=/tmp/lab/x  # c\n```\n```text\nrunbook no\n```\n";
    assert_eq!(
        sh_lines(md),
        ["runbook lab up -n 2 --var 'a={x}'", "inv=/tmp/lab/x"]
    );
    assert!(is_synopsis(
        "runbook apply RUNBOOK -i INVENTORY [--dry-run]"
    ));
    assert!(!is_synopsis(
        "runbook validate runbooks/gtm/switchover.yaml -i inventory/lab.yaml"
    ));
}
