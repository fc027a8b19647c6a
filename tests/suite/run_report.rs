//! `runbook report` and the reports written into the run directory, from a real lab run with
//! an approval, a retry and a resume; the HTML checked in a real headless Chromium.

use std::path::Path;
use std::process::Command;

use crate::apply::Rig;

const RUNBOOK: &str = "apiVersion: runbook/v1
kind: Runbook
metadata: {name: report-demo, version: 1.2.0}
phases:
  - name: prepare
    steps:
      - {id: preflight, module: shell, on: all, with: {cmd: 'echo checking; echo ready'}}
  - name: switch
    outage: true
    steps:
      - id: confirm
        module: manual
        on: a
        needs: [preflight]
        with: {instructions: 'Confirm the application is stopped.'}
      - id: stop
        module: shell
        on: a
        needs: [confirm]
        retries: 1
        delay: 0s
        with: {cmd: 'if [ -f $RUNBOOK_HOST_ROOT/tried ]; then echo stopped; else touch $RUNBOOK_HOST_ROOT/tried; echo not yet >&2; exit 1; fi'}
      - {id: start, module: shell, on: b, needs: [stop], with: {cmd: 'echo started'}}
  - name: verify
    steps:
      - {id: verify, module: shell, on: all, needs: [start], with: {cmd: 'echo fine'}}
";

const ACTIONS: [&str; 7] = [
    "preflight@a",
    "preflight@b",
    "confirm@a",
    "stop@a",
    "start@b",
    "verify@a",
    "verify@b",
];

fn report(state: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("report")
        .args(args)
        .arg("--state")
        .arg(state)
        .output()
        .expect("runbook report runs")
}

/// Replaces what changes from run to run (times, ids, paths, digests of paths) by its kind.
fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let volatile = matches!(
                    key.as_str(),
                    "run_id"
                        | "started_at"
                        | "finished_at"
                        | "at"
                        | "start"
                        | "end"
                        | "file"
                        | "sha256"
                        | "secs"
                        | "duration_secs"
                        | "actual_secs"
                );
                if volatile && !v.is_null() {
                    *v = serde_json::Value::String(format!("[{key}]"));
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn chromium(args: &[&str], profile: &Path) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs (the Debian package `chromium`, installed by .ci/install-packages)")
}

#[test]
fn a_lab_run_gets_a_report_with_every_action_the_approval_and_a_close_code() {
    let rig = Rig::new(2);
    let file = rig.dir.path().join("report-demo.yaml");
    fs_err::write(&file, RUNBOOK).expect("write");
    let operator = ["--operator", "alice@ops"];
    let first = rig.apply_file(&file, &rig.inventory(), &operator);
    assert_eq!(first.code, 3, "stops at the manual step: {}", first.stderr);
    first.approve("confirm", "application stopped, CHG-42");
    let run = rig.apply_file(&file, &rig.inventory(), &operator);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_id = run.events[0]["run_id"].as_str().expect("run id").to_owned();
    let run_dir = run.state.join("runs").join(&run_id);

    // Written into the run directory when the run ended, and the same as `runbook report`.
    let kept = fs_err::read_to_string(run_dir.join("report.json")).expect("report.json kept");
    let out = report(&run.state, &[&run_id, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), kept);
    let json: serde_json::Value = serde_json::from_str(&kept).expect("JSON");
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["operator"], "alice@ops");
    assert_eq!(json["state"], "succeeded");
    assert_eq!(
        json["starts"], 2,
        "the first apply and the resume after the approval"
    );
    let actions: Vec<&str> = json["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["action"].as_str().expect("id"))
        .collect();
    for action in ACTIONS {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let stop = json["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["action"] == "stop@a"))
        .expect("stop@a");
    assert_eq!(stop["attempts"], 2);
    assert_eq!(stop["rc"], 0);
    assert!(
        stop["output"]["excerpt"]
            .as_str()
            .expect("excerpt")
            .contains("stopped")
    );
    assert_eq!(
        stop["output"]["stdout_sha256"],
        runbook::journal::fingerprint(
            &fs_err::read(run_dir.join("actions/stop@a/stdout")).expect("stdout kept")
        )
    );
    assert_eq!(json["approvals"][0]["step"], "confirm");
    assert_eq!(json["approvals"][0]["by"], "test");
    assert_eq!(
        json["approvals"][0]["reason"],
        "application stopped, CHG-42"
    );
    assert_eq!(json["close"]["code"], "successful_with_issues");
    assert!(
        json["close"]["reason"]
            .as_str()
            .expect("reason")
            .contains("retries"),
        "{}",
        json["close"]
    );
    // The outage phase `switch`: measured, planned from the estimates, over.
    let outage = &json["outage"];
    assert_eq!(outage["complete"], true, "{outage}");
    assert!(
        outage["actual_secs"].as_f64().expect("secs") > 0.0,
        "{outage}"
    );
    assert!(
        !outage["pieces"].as_array().expect("pieces").is_empty(),
        "{outage}"
    );
    let used = &json["window"]["used"];
    assert!(used["secs"].as_f64().expect("secs") > 0.0, "{used}");

    // The shape of the JSON report is pinned (what varies from run to run redacted).
    let mut shape = json.clone();
    redact(&mut shape);
    insta::assert_snapshot!(
        "run_report_json",
        serde_json::to_string_pretty(&shape).expect("JSON")
    );

    // Markdown for the ticket.
    let md = fs_err::read_to_string(run_dir.join("report.md")).expect("report.md kept");
    assert!(
        md.contains("**Close code: successful_with_issues**"),
        "{md}"
    );
    for action in ACTIONS {
        assert!(
            md.contains(&format!("| `{action}` |")),
            "{action} in the Markdown"
        );
    }
    assert!(md.contains("| approved `confirm` | test |"), "{md}");

    // The newest run by default; an unknown run is invalid input.
    let newest = report(&run.state, &["--format", "md"]);
    assert_eq!(String::from_utf8_lossy(&newest.stdout), md);
    let unknown = report(&run.state, &["nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no run `nope`"));

    // HTML: one self-contained page, read back by a real browser.
    let html_path = run_dir.join("report.html");
    let html = fs_err::read_to_string(&html_path).expect("report.html kept");
    assert!(!html.contains("<script"), "no script");
    for fetch in ["src=", "href=", "url(", "@import"] {
        assert!(!html.contains(fetch), "nothing fetched: `{fetch}`");
    }
    let profile = rig.dir.path().join("chromium-profile");
    let url = format!("file://{}", html_path.display());
    let dom = chromium(&["--dump-dom", &url], &profile);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    for action in ACTIONS {
        let attr = format!("data-action=\"{action}\"");
        assert!(
            dom.contains(&format!("<tr class=\"action-row\" {attr}")),
            "{action}: a row"
        );
        if action != "confirm@a" {
            // A manual step has no duration on a host: no bar.
            assert!(
                dom.contains(&format!("<rect class=\"action\" {attr}")),
                "{action}: a bar"
            );
        }
    }
    assert!(
        dom.contains("class=\"approval\" data-step=\"confirm\""),
        "the approval marked"
    );
    assert!(
        dom.contains("class=\"window-used\""),
        "the used window shaded"
    );
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("run-report.png");
    let _ = fs_err::remove_file(&shot);
    let out = chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1100,900",
            &url,
        ],
        &profile,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = fs_err::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
