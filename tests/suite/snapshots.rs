//! `plan` (human and JSON) and rendered diagnostics, pinned. Review changes with
//! `INSTA_UPDATE=always cargo test` and `git diff tests/suite/snapshots`.

use crate::support::run;

const DEMO: [&str; 3] = [
    "tests/fixtures/demo.yaml",
    "-i",
    "tests/fixtures/demo-inventory.yaml",
];

#[test]
fn plan_text() {
    let out = run(&["plan", DEMO[0], DEMO[1], DEMO[2]]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("plan_text", out.stdout);
}

#[test]
fn plan_json() {
    let out = run(&["plan", DEMO[0], DEMO[1], DEMO[2], "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("valid JSON");
    assert_eq!(json["format_version"], 1);
    insta::assert_snapshot!("plan_json", out.stdout);
}

/// The prod switchover as a change reviewer reads it: each action in the vendor's words (its
/// `mupip` lines), short enough to read, the scripts one flag away and in the JSON.
#[test]
fn plan_of_the_prod_switchover_reads_in_the_vendors_words() {
    let args = [
        "plan",
        "runbooks/gtm/switchover.yaml",
        "-i",
        "inventory/gtm-prod.yaml",
    ];
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = out.stdout.lines().count();
    assert!(lines < 200, "{lines} lines:\n{}", out.stdout);
    for vendor in [
        "$ mupip replicate -source -shutdown -timeout=30 -zerobacklog",
        "$ mupip replicate -receiver -shutdown -timeout=0",
        "$ mupip replicate -source -start -instsecondary=SITEA -secondary=10.10.1.11:4000",
        "$ mupip journal -rollback -backward -fetchresync=4000",
        "$ mumps -run rblost",
    ] {
        assert!(
            out.stdout.contains(vendor),
            "{vendor} missing:\n{}",
            out.stdout
        );
    }
    // Every GT.M action says what it runs; the shared helpers are not shown.
    let mut actions: Vec<Vec<&str>> = Vec::new();
    for line in out.stdout.lines() {
        if line.starts_with("    ") && !line.starts_with("     ") {
            actions.push(vec![line]);
        } else if line.starts_with("        ")
            && let Some(action) = actions.last_mut()
        {
            action.push(line);
        }
    }
    assert_eq!(actions.len(), 30, "{}", out.stdout);
    for action in actions.iter().filter(|a| a[0].contains("[gtm.")) {
        let looped_over_nothing = action.len() == 2 && action[1].trim() == "loop:";
        assert!(
            looped_over_nothing
                || action[1..].iter().any(|l| {
                    let l = l.trim_start();
                    l.starts_with("$ mupip") || l.starts_with("$ mumps") || l.starts_with("$ dse")
                }),
            "{action:?}"
        );
    }
    assert!(!out.stdout.contains("rb_fail"), "{}", out.stdout);
    insta::assert_snapshot!("plan_gtm_switchover_prod", out.stdout);

    let scripts = run(&[args.as_slice(), &["--scripts"]].concat());
    assert_eq!(scripts.code, 0, "{}", scripts.stderr);
    assert!(scripts.stdout.contains("rb_run() {"), "{}", scripts.stdout);
    assert!(scripts.stdout.contains("gtm_repl_instname=SITEA"));

    let json = run(&[args.as_slice(), &["--format", "json"]].concat());
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("valid JSON");
    let stop = json["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["step"] == "switch.stop-source-a")
        .expect("switch.stop-source-a");
    let op = &stop["operations"][0];
    assert!(
        op["summary"]
            .as_array()
            .expect("a summary")
            .contains(&serde_json::json!(
                "mupip replicate -source -shutdown -timeout=30 -zerobacklog"
            )),
        "{op}"
    );
    // The shared helpers are named by each command and shown once, not inlined in every one.
    assert!(
        !op["display"]
            .as_str()
            .expect("display")
            .contains("rb_run() {"),
        "{op}"
    );
    let sha = op["helpers"][0]["sha256"].as_str().expect("a helper named");
    let helpers = json["helpers"].as_array().expect("helpers");
    assert_eq!(helpers.len(), 1, "{helpers:?}");
    assert_eq!(helpers[0]["sha256"], sha);
    assert!(
        helpers[0]["script"]
            .as_str()
            .expect("its text")
            .contains("rb_run() {")
    );
    assert_eq!(scripts.stdout.matches("rb_run() {").count(), 1);
}

#[test]
fn plan_with_overrides() {
    let out = run(&[
        "plan",
        DEMO[0],
        DEMO[1],
        DEMO[2],
        "-e",
        "instance=B",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("valid JSON");
    assert_eq!(json["params"]["instance"]["value"], "B");
    assert_eq!(json["params"]["instance"]["origin"], "command_line");
    let health = json["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["id"] == "health@alpha")
        .expect("health");
    assert_eq!(
        health["operations"][0]["display"],
        "mupip replicate -source -checkhealth -instsecondary=B"
    );
}

#[test]
fn rendered_diagnostics() {
    let out = run(&[
        "validate",
        "tests/fixtures/broken.yaml",
        "-i",
        "tests/fixtures/demo-inventory.yaml",
    ]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!("diagnostics", out.stderr);
}
