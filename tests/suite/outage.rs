//! The outage a run goes through, measured over real SSH: `outage_started` / `outage_ended`
//! and `freeze_*` events in order with the actions that open and close them, the closing
//! summary, `status` (text and JSON), the pieces of a run resumed inside its outage, the
//! planned outage of `plan`, and the `freeze:` markers checked at compile time. No timed
//! assertions: only order and consistency (freeze ≤ outage ≤ run, pieces add up).

use std::path::Path;
use std::process::Command;

use runbook::diagnostic::Code;

use crate::apply::{Applied, Rig};
use crate::support::{INVENTORY, compile_str, located};

fn header(name: &str) -> String {
    format!("apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, version: 1.0.0}}\n")
}

/// Preparation on both hosts, an outage phase whose write freeze runs from `stop@a` to
/// `promote@b`, then a rejoin inside the outage and a verification after it.
fn switchover() -> String {
    header("switch")
        + "\
phases:
  - name: prepare
    steps:
      - {id: prep, module: shell, on: all, estimate: 5s, with: {cmd: 'true'}}
  - name: switch
    outage: true
    steps:
      - {id: stop, module: shell, on: a, freeze: start, estimate: 2s, with: {cmd: 'sleep 0.2'}}
      - {id: promote, module: shell, on: b, needs: [stop], freeze: end, estimate: 3s, with: {cmd: 'sleep 0.2'}}
      - {id: rejoin, module: shell, on: a, needs: [promote], estimate: 4s, with: {cmd: 'true'}}
  - name: verify
    steps:
      - {id: check, module: shell, on: all, estimate: 1s, with: {cmd: 'true'}}
"
}

/// The position of the first event matching `pred`.
fn position(run: &Applied, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> usize {
    run.events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} in {:#?}", run.events))
}

fn event<'a>(run: &'a Applied, name: &str) -> &'a serde_json::Value {
    &run.events[position(run, name, |e| e["event"] == name)]
}

fn count(run: &Applied, name: &str) -> usize {
    run.events.iter().filter(|e| e["event"] == name).count()
}

fn action_event(run: &Applied, event: &str, action: &str) -> usize {
    position(run, &format!("{event} {action}"), |e| {
        e["event"] == event && e["action"] == action
    })
}

fn secs(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn runbook(args: &[&str], state: &Path) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
    cmd.args(args);
    if args[0] != "plan" {
        cmd.arg("--state").arg(state);
    }
    let out = cmd.env("NO_COLOR", "1").output().expect("runbook runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status_json(state: &Path, run_id: &str) -> serde_json::Value {
    let (code, out, err) = runbook(&["status", run_id, "--format", "json"], state);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("status JSON ({e}): {out}"))
}

#[test]
fn the_outage_and_the_write_freeze_are_measured_in_order_and_reported() {
    let rig = Rig::new(2);
    let file = rig.dir.path().join("switch.yaml");
    fs_err::write(&file, switchover()).expect("write the runbook");
    let run = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in [
        "outage_started",
        "outage_ended",
        "freeze_started",
        "freeze_ended",
    ] {
        assert_eq!(count(&run, name), 1, "one {name}: {:#?}", run.events);
    }

    // The outage opens with the first outage action, after the preparation, and closes with
    // the last one, before the verification; the freeze lies inside it, from `stop` to
    // `promote`.
    let outage_started = position(&run, "outage_started", |e| e["event"] == "outage_started");
    let freeze_started = position(&run, "freeze_started", |e| e["event"] == "freeze_started");
    let freeze_ended = position(&run, "freeze_ended", |e| e["event"] == "freeze_ended");
    let outage_ended = position(&run, "outage_ended", |e| e["event"] == "outage_ended");
    for host in ["a", "b"] {
        assert!(action_event(&run, "action_finished", &format!("prep@{host}")) < outage_started);
        assert!(outage_ended < action_event(&run, "action_started", &format!("check@{host}")));
    }
    assert!(outage_started < freeze_started);
    assert!(freeze_started < action_event(&run, "action_started", "stop@a"));
    assert!(action_event(&run, "action_finished", "promote@b") < freeze_ended);
    assert!(freeze_ended < action_event(&run, "action_started", "rejoin@a"));
    assert!(action_event(&run, "action_finished", "rejoin@a") < outage_ended);
    assert!(outage_ended < position(&run, "run_finished", |e| e["event"] == "run_finished"));

    let started = &run.events[outage_started];
    assert_eq!(started["action"], "stop@a");
    assert_eq!(started["piece"], 1);
    assert_eq!(started["earlier_secs"], serde_json::json!(0.0));
    let ended = &run.events[outage_ended];
    let freeze = &run.events[freeze_ended];
    assert_eq!(ended["action"], "rejoin@a");
    assert_eq!(freeze["action"], "promote@b");
    assert_eq!(ended["complete"], true);
    assert_eq!(ended["pieces"], 1);
    assert_eq!(ended["total_secs"], ended["duration_secs"]);
    let (outage, frozen) = (
        secs(&ended["duration_secs"]),
        secs(&freeze["duration_secs"]),
    );
    let whole = secs(&event(&run, "run_finished")["duration_secs"]);
    assert!(
        0.0 < frozen && frozen <= outage && outage <= whole,
        "freeze {frozen} ≤ outage {outage} ≤ run {whole}"
    );

    // Planned: the critical path through the outage (2s + 3s + 4s), the freeze (2s + 3s),
    // as `plan` says.
    assert_eq!(ended["planned_secs"], serde_json::json!(9.0));
    assert_eq!(freeze["planned_secs"], serde_json::json!(5.0));
    let (code, plan, err) = runbook(
        &[
            "plan",
            &file.display().to_string(),
            "-i",
            &rig.inventory().display().to_string(),
            "--format",
            "json",
        ],
        &run.state,
    );
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&plan).expect("plan JSON");
    assert_eq!(plan["outage"]["estimate_secs"], ended["planned_secs"]);
    assert_eq!(
        plan["outage"]["freeze"]["estimate_secs"],
        freeze["planned_secs"]
    );
    assert_eq!(
        plan["outage"]["critical_path"],
        serde_json::json!(["stop@a", "promote@b", "rejoin@a"])
    );
    assert!(secs(&plan["critical_path"]["estimate_secs"]) > 9.0);

    // The journal has it: `status` in JSON (milliseconds) and in words.
    let run_id = run.events[0]["run_id"].as_str().expect("run id");
    let status = status_json(&run.state, run_id);
    let recorded = &status["outage"];
    assert_eq!(recorded["complete"], true);
    assert_eq!(recorded["pieces"].as_array().map(Vec::len), Some(1));
    assert!(
        (secs(&recorded["total_secs"]) - outage).abs() < 0.002,
        "{recorded} vs {outage}"
    );
    assert!((secs(&status["freeze"]["total_secs"]) - frozen).abs() < 0.002);
    assert_eq!(recorded["planned_secs"], serde_json::json!(9.0));
    let (code, text, err) = runbook(&["status", run_id], &run.state);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("\noutage ") && text.contains(", planned 9s\n"),
        "{text}"
    );
    assert!(
        text.contains("\nfreeze ") && text.contains(", planned 5s\n"),
        "{text}"
    );
    assert!(!text.contains("pieces"), "one piece: {text}");

    // The closing summary and the plain lines of a second run (a new one: the first finished).
    let (code, summary, lines) = runbook(
        &[
            "apply",
            &file.display().to_string(),
            "-i",
            &rig.inventory().display().to_string(),
            "--format",
            "plain",
        ],
        &run.state,
    );
    assert_eq!(code, 0, "{lines}");
    assert!(lines.contains("outage  started by stop@a\n"), "{lines}");
    assert!(lines.contains("freeze  started by stop@a\n"), "{lines}");
    assert!(
        lines.contains("outage  ended after ") && lines.contains("(planned 9s)"),
        "{lines}"
    );
    let outage_line = summary
        .lines()
        .find(|l| l.starts_with("outage "))
        .unwrap_or_else(|| panic!("no outage in the summary: {summary}"));
    assert!(outage_line.ends_with(", planned 9s"), "{outage_line}");
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("freeze ") && l.ends_with(", planned 5s")),
        "{summary}"
    );
    let last = summary.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("run ") && last.contains(" succeeded in "),
        "the outcome stays last: {summary}"
    );
}

#[test]
fn a_run_resumed_inside_its_outage_adds_up_its_pieces() {
    let rig = Rig::new(1);
    let file = rig.dir.path().join("pieces.yaml");
    let rb = header("pieces")
        + "\
phases:
  - name: switch
    outage: true
    steps:
      - {id: stop, module: shell, on: a, with: {cmd: 'sleep 0.1'}}
      - {id: ask, module: manual, needs: [stop], with: {instructions: 'is the application stopped?'}}
      - {id: start, module: shell, on: a, needs: [ask], with: {cmd: 'sleep 0.1'}}
  - name: after
    steps:
      - {id: verify, module: shell, on: a, with: {cmd: 'true'}}
";
    fs_err::write(&file, rb).expect("write the runbook");

    // The first apply stops at the manual step, inside the outage: the piece is cut short.
    let first = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(first.code, 3, "{}", first.stderr);
    let ended = event(&first, "outage_ended");
    assert_eq!(ended["complete"], false);
    assert_eq!(ended["pieces"], 1);
    assert_eq!(ended["action"], "stop@a");
    let piece1 = secs(&ended["duration_secs"]);
    assert!(piece1 > 0.0);
    let run_id = first.events[0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let status = status_json(&first.state, &run_id);
    assert_eq!(status["outage"]["complete"], false);
    assert_eq!(status["outage"]["pieces"].as_array().map(Vec::len), Some(1));
    let (_, text, _) = runbook(&["status", &run_id], &first.state);
    assert!(
        text.contains("not over: the run stopped inside it"),
        "{text}"
    );

    // Approved and resumed: the second piece starts with the next outage action, after the
    // first piece's time, and the total is both.
    first.approve("ask", "stopped");
    let second = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        second.events[0]["run_id"],
        run_id.as_str(),
        "the same run, resumed"
    );
    let started = event(&second, "outage_started");
    assert_eq!(started["action"], "start@a");
    assert_eq!(started["piece"], 2);
    let earlier = secs(&started["earlier_secs"]);
    assert!(
        (earlier - piece1).abs() < 0.002,
        "{earlier} recorded for {piece1}"
    );
    let ended = event(&second, "outage_ended");
    assert_eq!(ended["complete"], true);
    assert_eq!(ended["pieces"], 2);
    let (piece2, total) = (secs(&ended["duration_secs"]), secs(&ended["total_secs"]));
    assert!(piece2 > 0.0);
    assert!(
        (total - (earlier + piece2)).abs() < 1e-6,
        "{total} = {earlier} + {piece2}"
    );
    assert!(
        position(&second, "outage_ended", |e| e["event"] == "outage_ended")
            < action_event(&second, "action_started", "verify@a")
    );
    assert!(total >= piece2 && piece2 <= secs(&event(&second, "run_finished")["duration_secs"]));

    let status = status_json(&second.state, &run_id);
    let pieces = status["outage"]["pieces"].as_array().expect("pieces");
    assert_eq!(pieces.len(), 2);
    assert_eq!(pieces[0]["ended"], false);
    assert_eq!(pieces[1]["ended"], true);
    assert!(pieces[0]["generation"].as_u64() < pieces[1]["generation"].as_u64());
    assert_eq!(status["outage"]["complete"], true);
    assert!((secs(&status["outage"]["total_secs"]) - total).abs() < 0.002);
    let (_, text, _) = runbook(&["status", &run_id], &second.state);
    assert!(text.contains(" in 2 pieces ("), "{text}");
    assert!(status["freeze"].is_null(), "no freeze marked");
}

#[test]
fn a_run_without_outage_phases_has_no_outage() {
    let rig = Rig::new(1);
    let run = rig.apply(
        &(header("plain") + "steps:\n  - {id: one, module: shell, on: a, with: {cmd: 'true'}}\n"),
        &rig.inventory(),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        count(&run, "outage_started") + count(&run, "outage_ended"),
        0
    );
    let run_id = run.events[0]["run_id"].as_str().expect("run id");
    let status = status_json(&run.state, run_id);
    assert!(
        status["outage"].is_null() && status["freeze"].is_null(),
        "{status}"
    );
    assert_eq!(status["actions"][0]["action"], "one@a");
}

/// A runbook whose outage phase holds `steps` (on host `alpha`), after a preparation step.
fn with_outage(steps: &str) -> String {
    header("t")
        + "phases:\n  - name: prep\n    steps:\n      - {id: p, module: shell, on: alpha, with: {cmd: x}}\n  - name: switch\n    outage: true\n    steps:\n"
        + steps
}

#[test]
fn freeze_markers_are_checked_when_the_runbook_compiles() {
    let errors = |rb: &str| match compile_str(rb, INVENTORY, &[]) {
        Ok(_) => panic!("expected errors, the runbook compiled"),
        Err(ds) => located(&ds),
    };
    // Not `start` or `end`.
    let rb =
        with_outage("      - {id: s, module: shell, on: alpha, freeze: begin, with: {cmd: x}}\n");
    assert_eq!(errors(&rb), vec![(Code::FreezeMarker, 11, 51)]);
    // A start without an end.
    let rb =
        with_outage("      - {id: s, module: shell, on: alpha, freeze: start, with: {cmd: x}}\n");
    assert_eq!(errors(&rb), vec![(Code::FreezeMarker, 11, 51)]);
    // Two starts, and an end before them.
    let rb = with_outage(
        "      - {id: e, module: shell, on: alpha, freeze: end, with: {cmd: x}}\n      - {id: s, module: shell, on: alpha, freeze: start, with: {cmd: x}}\n      - {id: t, module: shell, on: alpha, freeze: start, with: {cmd: x}}\n",
    );
    assert_eq!(
        errors(&rb),
        vec![(Code::FreezeMarker, 11, 51), (Code::FreezeMarker, 13, 51)]
    );
    // Outside the outage.
    let rb = header("t")
        + "phases:\n  - name: prep\n    steps:\n      - {id: s, module: shell, on: alpha, freeze: start, with: {cmd: x}}\n      - {id: e, module: shell, on: alpha, freeze: end, with: {cmd: x}}\n";
    assert_eq!(
        errors(&rb),
        vec![(Code::FreezeMarker, 7, 51), (Code::FreezeMarker, 8, 51)]
    );

    // Marked right, the plan has the freeze inside the outage, in text and JSON.
    let rb = with_outage(
        "      - {id: s, module: shell, on: alpha, freeze: start, estimate: 2s, with: {cmd: x}}\n      - {id: e, module: shell, on: alpha, needs: [s], freeze: end, estimate: 3s, with: {cmd: x}}\n      - {id: after, module: shell, on: alpha, needs: [e], estimate: 10s, with: {cmd: x}}\n",
    );
    let plan = compile_str(&rb, INVENTORY, &[]).expect("compiles");
    let freeze = plan.planned_freeze().expect("a freeze");
    let outage = plan.planned_outage().expect("an outage");
    assert_eq!(freeze.length(), std::time::Duration::from_secs(5));
    assert_eq!(outage.length(), std::time::Duration::from_secs(15));
    assert!(outage.start <= freeze.start && freeze.end <= outage.end);
    assert!(outage.end <= plan.critical_path_estimate());
    let text = runbook::plan::render_text(&plan);
    assert!(text.contains("write freeze: ~5s planned"), "{text}");
    assert!(
        text.contains("outage window: ~15s planned outage of the ~"),
        "{text}"
    );
    assert!(
        text.contains("FREEZE STARTS") && text.contains("FREEZE ENDS"),
        "{text}"
    );
}

#[test]
fn an_apply_killed_inside_the_outage_leaves_its_piece_and_the_resume_adds_the_next() {
    let rig = Rig::new(1);
    let file = rig.dir.path().join("killed.yaml");
    let rb = header("killed")
        + "\
phases:
  - name: switch
    outage: true
    steps:
      - {id: stop, module: shell, on: a, with: {cmd: 'sleep 0.1'}}
      - {id: long, module: shell, on: a, needs: [stop], with: {cmd: 'touch $RUNBOOK_HOST_ROOT/long-started; sleep 2'}}
      - {id: start, module: shell, on: a, needs: [long], with: {cmd: 'true'}}
  - name: after
    steps:
      - {id: verify, module: shell, on: a, with: {cmd: 'true'}}
";
    fs_err::write(&file, rb).expect("write the runbook");
    let mut child = rig.spawn_apply(&file);
    let marker = rig.root("a").join("long-started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !marker.exists() {
        assert!(std::time::Instant::now() < deadline, "long@a never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    let out = child.wait_with_output().expect("reaped");
    let killed = Applied::from_output(&out, rig.dir.path().join("state"));
    let run_id = killed.events[0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    assert!(
        killed.events.iter().all(|e| e["event"] != "outage_ended"),
        "killed before it could say"
    );

    // The killed apply's piece is in the journal, open: it went on after the last commit.
    let status = status_json(&killed.state, &run_id);
    let pieces = status["outage"]["pieces"]
        .as_array()
        .expect("a piece")
        .clone();
    assert_eq!(pieces.len(), 1, "{status}");
    assert_eq!(pieces[0]["ended"], false);
    assert_eq!(status["outage"]["complete"], false);

    // The resume settles long@a from its host, runs the rest, and adds its piece.
    let resumed = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(resumed.events[0]["run_id"], run_id.as_str());
    assert_eq!(resumed.status("long@a"), "changed");
    let started = event(&resumed, "outage_started");
    assert_eq!(started["piece"], 2);
    assert_eq!(
        started["action"], "long@a",
        "settling the interrupted action is in the outage"
    );
    let ended = event(&resumed, "outage_ended");
    assert_eq!(ended["complete"], true);
    assert_eq!(ended["pieces"], 2);
    let status = status_json(&resumed.state, &run_id);
    let pieces = status["outage"]["pieces"].as_array().expect("pieces");
    assert_eq!(pieces.len(), 2);
    let at = |p: &serde_json::Value| {
        p["started_at"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .unwrap_or_else(|| panic!("a time: {p}"))
    };
    assert!(at(&pieces[0]) < at(&pieces[1]));
    assert_eq!(
        (pieces[0]["ended"].clone(), pieces[1]["ended"].clone()),
        (false.into(), true.into())
    );
    let total = secs(&status["outage"]["total_secs"]);
    let sum: f64 = pieces.iter().map(|p| secs(&p["duration_secs"])).sum();
    assert!((total - sum).abs() < 1e-6 && total >= secs(&pieces[1]["duration_secs"]));
    // long@a ran once: the resume waited for it on its host rather than start it again.
    assert_eq!(
        resumed
            .events
            .iter()
            .filter(|e| e["event"] == "action_started" && e["action"] == "long@a")
            .count(),
        0
    );
}
