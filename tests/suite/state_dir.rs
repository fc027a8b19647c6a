//! One state directory for every command (docs/cli.md, "The state directory"), and the
//! commands a run prints work when pasted, over a real lab host.

use std::path::Path;
use std::process::Command;

use crate::apply::Rig;

const MANUAL: &str = "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: manual, version: 1.0.0}\nsteps:\n  - {id: before, module: shell, on: a, with: {cmd: \"true\"}}\n  - {id: confirm, module: manual, with: {instructions: \"Point the application at B.\"}}\n  - {id: after, module: shell, on: a, with: {cmd: \"true\"}}\n";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `runbook ARGS` from `cwd`, without a terminal, `RUNBOOK_STATE` as given.
fn runbook(cwd: &Path, args: &[&str], state_env: Option<&Path>) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
    cmd.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUNBOOK_STATE")
        .stdin(std::process::Stdio::null());
    if let Some(dir) = state_env {
        cmd.env("RUNBOOK_STATE", dir);
    }
    let out = cmd.output().expect("runbook runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The first command in backquotes starting with `runbook WHAT` in `text`, with its
/// placeholders filled in, split as a shell would, without the leading `runbook`.
fn printed(text: &str, what: &str) -> Vec<String> {
    let start = format!("`runbook {what} ");
    let at = text
        .find(&start)
        .unwrap_or_else(|| panic!("no `runbook {what}` hint in:\n{text}"));
    let rest = &text[at + 1..];
    let line = &rest[..rest.find('`').expect("a closing backquote")];
    let line = line
        .replace("STEP", "confirm")
        .replace("NAME", "alice")
        .replace("TEXT", "'LB drained'");
    let mut words = shlex::split(&line).expect("a shell line");
    assert_eq!(words.remove(0), "runbook");
    words
}

/// The run id of the first `runbook approve RUN` hint.
fn approve_run_id(text: &str) -> String {
    let words = printed(text, "approve");
    words[1].clone()
}

fn run_pasted(cwd: &Path, words: &[String]) -> Out {
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    runbook(cwd, &refs, None)
}

#[test]
fn every_command_finds_the_run_in_the_working_directory_and_its_hints_paste() {
    let rig = Rig::new(1);
    let ops = rig.dir.path().join("ops");
    fs_err::create_dir_all(ops.join("runbooks")).expect("mkdir");
    fs_err::write(ops.join("runbooks/maint.yaml"), MANUAL).expect("write");
    let inventory = rig.inventory().display().to_string();
    let args = [
        "apply",
        "runbooks/maint.yaml",
        "-i",
        &inventory,
        "--format",
        "plain",
    ];
    let first = runbook(&ops, &args, None);
    assert_eq!(first.code, 3, "{}", first.stderr);
    assert!(
        ops.join(".runbook/journal.db").exists(),
        "state in ./.runbook"
    );
    assert!(
        !ops.join("runbooks/.runbook").exists(),
        "nothing beside the runbook"
    );
    // A misspelt step is refused, naming the manual steps, and records nothing.
    let run_id = approve_run_id(&first.stderr);
    let typo = runbook(
        &ops,
        &["approve", &run_id, "confrim", "--by", "a", "--reason", "b"],
        None,
    );
    assert_eq!(typo.code, 2, "{}", typo.stderr);
    assert!(typo.stderr.contains("confirm"), "{}", typo.stderr);
    // The hint the run printed, pasted with its placeholders filled in.
    let approve = printed(&first.stderr, "approve");
    assert!(!approve.contains(&"--state".to_owned()), "{approve:?}");
    let approved = run_pasted(&ops, &approve);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    let resume = printed(&approved.stdout, "resume");
    let resumed = run_pasted(&ops, &resume);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let status = runbook(&ops, &["status"], None);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("(succeeded)"), "{}", status.stdout);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.contains("ok") && l.contains("confirm@controller")),
        "the approved step is ok, not awaiting approval:\n{}",
        status.stdout
    );
    let runs = runbook(&ops, &["runs"], None);
    assert!(runs.stdout.contains("succeeded"), "{}", runs.stdout);
    // From elsewhere, a read finds nothing, says where it looked, and creates nothing.
    let elsewhere = ops.join("runbooks");
    for cmd in [
        &["status"][..],
        &["runs"],
        &["approve", "X", "confirm", "--by", "a", "--reason", "b"],
        &["abandon", "X"],
        &["resume", "X"],
        &["resolve", "X", "a@b", "--done"],
    ] {
        let out = runbook(&elsewhere, cmd, None);
        assert_eq!(out.code, 2, "{cmd:?}: {}", out.stderr);
        assert!(out.stderr.contains("RUNBOOK_STATE"), "{}", out.stderr);
        assert!(
            !elsewhere.join(".runbook").exists(),
            "{cmd:?} created a stray .runbook"
        );
    }
}

#[test]
fn a_state_directory_elsewhere_is_in_every_printed_hint() {
    let rig = Rig::new(1);
    let ops = rig.dir.path().join("ops");
    let other = rig.dir.path().join("other place");
    fs_err::create_dir_all(&ops).expect("mkdir");
    fs_err::create_dir_all(&other).expect("mkdir");
    let file = rig.dir.path().join("maint.yaml");
    fs_err::write(&file, MANUAL).expect("write");
    let state = rig.dir.path().join("state dir");
    let (file, inventory) = (file.display().to_string(), rig.inventory());
    let inventory = inventory.display().to_string();
    // `RUNBOOK_STATE` names it: the hints must still work in a shell without it.
    let first = runbook(
        &ops,
        &["apply", &file, "-i", &inventory, "--format", "plain"],
        Some(&state),
    );
    assert_eq!(first.code, 3, "{}", first.stderr);
    assert!(state.join("journal.db").exists());
    assert!(!ops.join(".runbook").exists());
    let approve = printed(&first.stdout, "approve");
    assert!(approve.contains(&"--state".to_owned()), "{approve:?}");
    let approved = run_pasted(&other, &approve);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    let resumed = run_pasted(&other, &printed(&approved.stdout, "resume"));
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let status = runbook(&other, &["status"], Some(&state));
    assert!(status.stdout.contains("(succeeded)"), "{}", status.stdout);
    assert!(!other.join(".runbook").exists());
}
