//! The JSON lines of `apply --format json` over a real lab: every event carries `ts` (by the
//! run's clock) and `run_id`, in order; and the generated completions and manual page cover the
//! command line.

use std::process::Command;

use crate::apply::Rig;

fn header(name: &str) -> String {
    format!("apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, version: 1.0.0}}\n")
}

fn ts(event: &serde_json::Value) -> jiff::Timestamp {
    let text = event["ts"]
        .as_str()
        .unwrap_or_else(|| panic!("no ts: {event}"));
    // RFC 3339 with milliseconds: `…T13:20:41.507Z`.
    let (_, fraction) = text.rsplit_once('.').expect("fractional seconds");
    assert_eq!(fraction.len(), 4, "milliseconds then Z: {text}");
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn every_json_event_carries_the_run_and_when_it_happened_by_the_run_clock() {
    let rig = Rig::new(2);
    let rb = header("stamped")
        + "steps:\n"
        + "  - {id: first, module: shell, on: all, with: {cmd: 'sleep 0.3'}}\n"
        + "  - {id: second, module: shell, on: a, needs: [first], with: {cmd: 'true'}}\n";
    let file = rig.dir.path().join("stamped.yaml");
    fs_err::write(&file, rb).expect("write");
    let fake = "2031-05-04T22:00:00Z";
    let run = rig.apply_file_env(&file, &rig.inventory(), &[], &[("RUNBOOK_FAKE_NOW", fake)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_id = run.events[0]["run_id"]
        .as_str()
        .expect("run_started names the run");
    let start: jiff::Timestamp = fake.parse().expect("instant");
    let mut last = start;
    for event in &run.events {
        assert_eq!(event["run_id"], run_id, "{event}");
        let at = ts(event);
        assert!(at >= last, "events in the order they happened: {event}");
        last = at;
    }
    // The run's clock, not the system's: the rehearsal instant, plus the run's real duration.
    let span = last.duration_since(start);
    assert!(
        span >= jiff::SignedDuration::from_millis(300)
            && span < jiff::SignedDuration::from_secs(600),
        "from {fake} to {last}"
    );
    let when = |kind: &str, action: &str| {
        ts(run
            .events
            .iter()
            .find(|e| e["event"] == kind && e["action"] == action)
            .unwrap_or_else(|| panic!("no {kind} of {action}")))
    };
    let slept =
        when("action_finished", "first@a").duration_since(when("action_started", "first@a"));
    assert!(slept >= jiff::SignedDuration::from_millis(300), "{slept:?}");
    assert!(when("action_started", "second@a") >= when("action_finished", "first@b"));
}

fn runbook(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(args)
        .output()
        .expect("runbook runs")
}

#[test]
fn bash_completion_completes_commands_and_options() {
    let script = runbook(&["completions", "bash"]);
    assert!(script.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runbook.bash");
    fs_err::write(&path, &script.stdout).expect("write");
    let complete = |words: &str, cword: usize| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; _runbook runbook \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                path.display()
            ))
            .output()
            .expect("bash runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let commands = complete("runbook ap", 1);
    assert_eq!(commands.lines().collect::<Vec<_>>(), ["apply", "approve"]);
    let options = complete("runbook apply --dry", 2);
    assert_eq!(options.trim(), "--dry-run");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = runbook(&["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
}

#[test]
fn the_manual_page_has_every_command_its_options_and_the_exit_codes() {
    let out = runbook(&["man"]);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).expect("roff is text");
    assert!(
        page.starts_with(".ie") || page.contains(".TH runbook"),
        "{}",
        &page[..200]
    );
    for command in [
        "VALIDATE",
        "PLAN",
        "GRAPH",
        "MODULES",
        "LAB",
        "LAB UP",
        "LAB DOWN",
        "APPLY",
        "APPROVE",
        "RESUME",
        "RUNS",
        "STATUS",
        "ABANDON",
        "RESOLVE",
        "COMPLETIONS",
        "MAN",
    ] {
        assert!(
            page.contains(&format!(".SH \"RUNBOOK {command}\"")),
            "{command}"
        );
    }
    assert!(
        page.contains("\\-\\-dry\\-run") || page.contains("-dry-run"),
        "apply's options"
    );
    for code in [
        "0 ok",
        "1 a run failed",
        "2 invalid input",
        "5 stopped",
        "6 refused",
        "7 the environment failed",
    ] {
        assert!(page.contains(code), "exit code `{code}` in the page");
    }
}
