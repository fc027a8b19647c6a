//! Outage windows end to end: `apply` over lab hosts with a fake "now" (`RUNBOOK_FAKE_NOW`), so
//! a whole night fits in a test: the pause at the window's end, `status` in the window, and the
//! resume in the next window from the journal, nothing run twice.

use std::process::Command;

use crate::apply::Rig;

const RUNBOOK: &str = "apiVersion: runbook/v1
kind: Runbook
metadata: {name: windowed, version: 1.0.0}
phases:
  - name: prep
    steps:
      - {id: prep, module: shell, on: a, estimate: 1m, with: {cmd: 'echo prep >> $RUNBOOK_HOST_ROOT/log'}}
  - name: switch
    outage: true
    steps:
      - {id: short, module: shell, on: a, estimate: 10m, with: {cmd: 'echo short >> $RUNBOOK_HOST_ROOT/log'}}
      - {id: long, module: shell, on: a, estimate: 45m, with: {cmd: 'echo long >> $RUNBOOK_HOST_ROOT/log'}}
  - name: after
    steps:
      - {id: verify, module: shell, on: a, with: {cmd: 'echo verify >> $RUNBOOK_HOST_ROOT/log'}}
";

const WINDOW: &str = "22:00/02:00 Europe/Berlin";

#[test]
fn a_run_pauses_at_the_window_end_and_resumes_in_the_next_window() {
    let rig = Rig::new(1);
    let file = rig.dir.path().join("windowed.yaml");
    fs_err::write(&file, RUNBOOK).expect("write");
    let log = rig.root("a").join("log");

    // 01:40 in Berlin: `short` (10m) fits before 02:00, `long` (45m) does not.
    let first = rig.apply_file_env(
        &file,
        &rig.inventory(),
        &["--window", WINDOW],
        &[("RUNBOOK_FAKE_NOW", "2026-11-24T01:40:00+01:00")],
    );
    assert_eq!(first.code, 4, "paused: {}", first.stderr);
    assert_eq!(first.status("short@a"), "changed");
    assert!(
        !first.statuses().contains_key("long@a"),
        "long never started"
    );
    let paused = first
        .events
        .iter()
        .find(|e| e["event"] == "run_paused")
        .expect("a run_paused event");
    assert_eq!(paused["action"], "long@a");
    assert_eq!(paused["next_window"], "2026-11-24T21:00:00Z");
    assert_eq!(
        paused["held"], 2,
        "every action not started: `long` and `verify` behind it"
    );
    let message = paused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("~45m") && message.contains("02:00 CET"),
        "{message}"
    );
    assert_eq!(fs_err::read_to_string(&log).expect("log"), "prep\nshort\n");
    // The outage began with `short` and is not over: the run paused inside it.
    let outage = |run: &crate::apply::Applied, name: &str| {
        run.events
            .iter()
            .filter(|e| e["event"] == name)
            .cloned()
            .collect::<Vec<_>>()
    };
    let ended = outage(&first, "outage_ended");
    assert_eq!(ended.len(), 1, "{:#?}", first.events);
    assert_eq!(ended[0]["complete"], false);
    assert_eq!(ended[0]["pieces"], 1);

    // `status` shows the window: time used and left.
    let status = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["status", "--state"])
        .arg(&first.state)
        .env("RUNBOOK_FAKE_NOW", "2026-11-24T01:41:00+01:00")
        .output()
        .expect("status runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("(paused)"), "{text}");
    assert!(
        text.contains("window 22:00/02:00 Europe/Berlin")
            && text.contains("open, 3h41m")
            && (text.contains("used, 19m left") || text.contains("used, 18m59s left")),
        "{text}"
    );

    // The same night, later: still no room, still paused, nothing runs again.
    let again = rig.apply_file_env(
        &file,
        &rig.inventory(),
        &[],
        &[("RUNBOOK_FAKE_NOW", "2026-11-24T01:55:00+01:00")],
    );
    assert_eq!(again.code, 4, "{}", again.stderr);
    assert_eq!(fs_err::read_to_string(&log).expect("log"), "prep\nshort\n");
    assert!(
        outage(&again, "outage_started").is_empty(),
        "nothing of the outage ran: no piece"
    );

    // The next night: the window comes from the journal, the run resumes and finishes.
    let next = rig.apply_file_env(
        &file,
        &rig.inventory(),
        &[],
        &[("RUNBOOK_FAKE_NOW", "2026-11-24T22:00:30+01:00")],
    );
    assert_eq!(next.code, 0, "{}", next.stderr);
    let resumed: Vec<&str> = next
        .events
        .iter()
        .filter(|e| e["event"] == "action_resumed")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(resumed, ["prep@a", "short@a"]);
    assert_eq!(next.status("long@a"), "changed");
    // The next night's piece adds to the first night's: two pieces, and now it is over.
    let started = outage(&next, "outage_started");
    assert_eq!((started.len(), started[0]["piece"].clone()), (1, 2.into()));
    assert_eq!(started[0]["action"], "long@a");
    let ended = outage(&next, "outage_ended");
    assert_eq!(ended[0]["complete"], true);
    assert_eq!(ended[0]["pieces"], 2);
    assert_eq!(
        fs_err::read_to_string(&log).expect("log"),
        "prep\nshort\nlong\nverify\n",
        "every step exactly once"
    );
}

#[test]
fn before_the_window_only_preparation_runs() {
    let rig = Rig::new(1);
    let run = rig.apply(
        RUNBOOK,
        &rig.inventory(),
        &["--window", "2099-01-01T22:00:00Z/2099-01-02T02:00:00Z"],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(run.status("prep@a"), "changed");
    assert_eq!(run.statuses().len(), 1, "{:?}", run.statuses());
    let paused = run
        .events
        .iter()
        .find(|e| e["event"] == "run_paused")
        .expect("paused");
    assert_eq!(paused["next_window"], "2099-01-01T22:00:00Z");
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("log")).expect("log"),
        "prep\n"
    );
}

#[test]
fn a_malformed_window_is_invalid_input_and_runs_nothing() {
    let rig = Rig::new(1);
    let run = rig.apply(
        RUNBOOK,
        &rig.inventory(),
        &["--window", "22:00/02:00 Mars/Base"],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unknown time zone"), "{}", run.stderr);
    assert!(!rig.root("a").join("log").exists());
}

#[test]
fn plan_compares_the_estimates_with_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("windowed.yaml");
    fs_err::write(&file, RUNBOOK).expect("write");
    let inventory = dir.path().join("inventory.yaml");
    fs_err::write(
        &inventory,
        "kind: Inventory\nhosts: {a: {address: 127.0.0.1}}\n",
    )
    .expect("write");
    let plan = |window: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .arg("plan")
            .arg(&file)
            .arg("-i")
            .arg(&inventory)
            .args(["--window", window])
            .env("TZ", "UTC")
            .env("RUNBOOK_FAKE_NOW", "2026-11-23T12:00:00Z")
            .output()
            .expect("plan runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fits = plan("2026-11-23T22:00:00Z/2026-11-24T02:00:00Z");
    assert!(
        fits.contains(
            "window 2026-11-23 22:00 UTC → 2026-11-24 02:00 UTC (4h): outage phases ~55m"
        ),
        "{fits}"
    );
    assert!(
        fits.contains("done by 2026-11-23 22:55 UTC: fits, 3h5m to spare"),
        "{fits}"
    );
    let tight = plan("2026-11-23T22:00:00Z/2026-11-23T22:30:00Z");
    assert!(tight.contains("DOES NOT FIT: over by 25m"), "{tight}");
}
