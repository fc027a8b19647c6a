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
