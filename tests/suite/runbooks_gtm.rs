//! The built-in GT.M runbooks (`runbooks/gtm/`), run as shipped over lab hosts with real GT.M
//! instances ([`GtmLab`]), and judged by the data on the instances afterwards.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::apply::Applied;
use crate::gtm::GtmLab;

/// A built-in runbook's path.
pub fn runbook(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../runbooks/gtm")
        .join(format!("{name}.yaml"))
}

/// `runbook apply` of a built-in runbook against the lab, with extra arguments.
pub fn apply(lab: &GtmLab, name: &str, extra: &[&str]) -> Applied {
    lab.rig
        .apply_file(&runbook(name), &lab.rig.inventory(), extra)
}

/// Polls `read` on `host` until it prints `want` (replication is asynchronous).
pub fn eventually(lab: &GtmLab, host: &str, read: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = lab.m(host, read);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host}: `{read}` printed `{got}`, not `{want}`, after 60s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The run's write freeze as its journal records it (`runbook status RUN --format json`):
/// measured to its end (`complete`), longer than nothing, inside the run's outage, and the
/// outage inside the run (`started_at` to `finished_at`). No timed assertion: only the order
/// of the three. Returns the freeze's total in seconds.
pub fn assert_freeze_measured(run: &Applied) -> f64 {
    let status = status_json(run);
    let secs = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    let (freeze, outage) = (&status["freeze"], &status["outage"]);
    assert_eq!(
        freeze["complete"], true,
        "the freeze is measured to its end: {status:#}"
    );
    assert_eq!(
        outage["complete"], true,
        "the outage is measured to its end: {status:#}"
    );
    let at = |key: &str| -> jiff::Timestamp {
        status[key]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("`{key}` is a timestamp: {status:#}"))
    };
    let whole = (at("finished_at") - at("started_at"))
        .total(jiff::Unit::Second)
        .expect("a run's length in seconds");
    let (frozen, down) = (secs(&freeze["total_secs"]), secs(&outage["total_secs"]));
    assert!(
        0.0 < frozen && frozen <= down && down <= whole,
        "freeze {frozen} s ≤ outage {down} s ≤ run {whole} s"
    );
    frozen
}

/// A freeze that began and was cut short (the run failed inside it) is recorded as not over.
pub fn assert_freeze_not_over(run: &Applied) {
    let status = status_json(run);
    assert_eq!(status["freeze"]["complete"], false, "{status:#}");
    assert!(
        status["freeze"]["total_secs"].as_f64().is_some(),
        "{status:#}"
    );
}

fn status_json(run: &Applied) -> serde_json::Value {
    let run_id = run.events[0]["run_id"].as_str().expect("run id");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["status", run_id, "--format", "json", "--state"])
        .arg(&run.state)
        .output()
        .expect("runbook status runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// A second `new-mirror` on a working pair: every set-up step finds its work done.
pub fn assert_new_mirror_found_its_work_done(again: &Applied) {
    assert_eq!(again.code, 0, "{}", again.stderr);
    for step in [
        "db-a@a",
        "repl-a@a",
        "source-a@a",
        "db-b@b",
        "repl-b@b",
        "receiver-b@b",
    ] {
        assert_eq!(
            again.status(step),
            "ok",
            "{step} changed something on a working pair"
        );
    }
}

fn pair() -> GtmLab {
    GtmLab::new(&[("a", "originating"), ("b", "replicating")])
}

#[test]
fn new_mirror_replicates_a_to_b_and_a_second_run_changes_nothing() {
    let lab = pair();
    let run = apply(&lab, "new-mirror", &[]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.statuses());
    // The runbook's own check write made it across.
    assert_ne!(lab.m("b", "write $get(^runbook(\"new-mirror\"))"), "");
    // Writes on A appear on B.
    lab.m("a", "for i=1:1:500 set ^orders(i)=\"order \"_i");
    eventually(
        &lab,
        "b",
        "write ^orders(500),\" \",$order(^orders(\"\"),-1)",
        "order 500 500",
    );
    assert_eq!(lab.m("b", "write $data(^orders(0))"), "0");
    // B refuses local updates: it is a replicating instance.
    let refused = lab.tool("b", "mumps", &["-run", "%XCMD", "set ^local=1"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("SCNDDBNOUPD")
            || String::from_utf8_lossy(&refused.stdout).contains("SCNDDBNOUPD"),
        "B took a local update: {refused:?}"
    );

    // Again, as a new run: every set-up step finds its work done.
    let file = lab.rig.dir.path().join("new-mirror-again.yaml");
    fs_err::copy(runbook("new-mirror"), &file).expect("copy");
    let again = lab.rig.apply_file(&file, &lab.rig.inventory(), &[]);
    assert_new_mirror_found_its_work_done(&again);

    // The shutdown runbook stops both sides: no GT.M shared memory is left.
    let down = apply(&lab, "shutdown", &[]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    for host in ["a", "b"] {
        let ftok = lab.tool(host, "mupip", &["ftok", "-jnlpool"]);
        let text = String::from_utf8_lossy(&ftok.stdout).into_owned()
            + &String::from_utf8_lossy(&ftok.stderr);
        assert!(
            text.lines()
                .filter(|l| l.contains("::") && !l.contains("Semaphore Id"))
                .all(|l| l
                    .split("::")
                    .nth(2)
                    .is_some_and(|id| id.trim().starts_with("-1"))),
            "{host} still has a Journal Pool: {text}"
        );
    }
}

#[test]
fn new_mirror_stops_before_any_change_when_b_is_not_new() {
    let lab = pair();
    // B already originates (as if the roles were swapped in the inventory by mistake).
    let setup = lab.rig.apply(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: wrong, version: 1.0.0}\nsteps:\n  - {id: db, module: gtm.database_create, on: b, with: {dir: \"{{ vars.gtm_dir }}\", instance: \"{{ vars.gtm_instance }}\"}}\n  - {id: repl, module: gtm.replication_on, on: b, with: {dir: \"{{ vars.gtm_dir }}\", instance: \"{{ vars.gtm_instance }}\"}}\n  - {id: src, module: gtm.source_start, on: b, with: {dir: \"{{ vars.gtm_dir }}\", instance: \"{{ vars.gtm_instance }}\", secondary_instance: X, secondary: \"127.0.0.1:1\"}}\n",
        &lab.rig.inventory(),
        &[],
    );
    assert_eq!(setup.code, 0, "{}", setup.stderr);
    let run = apply(&lab, "new-mirror", &[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.status("preconditions@controller"), "failed");
    assert!(
        run.message("preconditions@controller")
            .contains("B new or replicating")
    );
    assert!(
        !lab.dir("a").join("gtm.gld").exists(),
        "nothing was created on A"
    );
}

/// Counts `^data(1..n)` on `host`.
fn count(lab: &GtmLab, host: &str, n: usize) -> String {
    lab.m(
        host,
        &format!("set c=0 xecute \"for i=1:1:{n} set c=c+$data(^data(i))\" write c"),
    )
}

#[test]
fn migrate_existing_builds_b_from_a_backup_inside_the_outage_window() {
    let lab = pair();
    // A holds 10,000 nodes and runs alone: no replication, no instance file.
    let seed = lab.rig.apply(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: existing, version: 1.0.0}\nroles: {originating: 1}\nsteps:\n  - {id: db, module: gtm.database_create, on: originating, with: {dir: \"{{ vars.gtm_dir }}\", instance: \"{{ vars.gtm_instance }}\"}}\n  - {id: data, module: gtm.mumps, on: originating, with: {dir: \"{{ vars.gtm_dir }}\", instance: \"{{ vars.gtm_instance }}\", code: \"for i=1:1:10000 set ^data(i)=\\\"row \\\"_i\"}}\n",
        &lab.rig.inventory(),
        &[],
    );
    assert_eq!(seed.code, 0, "{}", seed.stderr);
    assert_eq!(count(&lab, "a", 10_000), "10000");
    assert!(!lab.dir("a").join("gtm.repl").exists());

    // Before the window: the checks and B's preparation run, then the run pauses at the
    // boundary; A is untouched.
    let window = ["--window", "22:00/02:00 UTC"];
    let early = lab.rig.apply_file_env(
        &runbook("migrate-existing"),
        &lab.rig.inventory(),
        &window,
        &[("RUNBOOK_FAKE_NOW", "2026-11-23T20:00:00Z")],
    );
    assert_eq!(early.code, 4, "{}\n{:#?}", early.stderr, early.statuses());
    assert_eq!(early.status("preconditions@controller"), "ok");
    assert_eq!(early.status("gld-b@b"), "changed");
    assert!(!early.statuses().contains_key("repl-a@a"));
    assert!(
        !lab.dir("a").join("gtm.repl").exists(),
        "A is not touched before the window"
    );

    // Inside the window the run resumes: replication on A, backup, B from the backup.
    let run = lab.rig.apply_file_env(
        &runbook("migrate-existing"),
        &lab.rig.inventory(),
        &[],
        &[("RUNBOOK_FAKE_NOW", "2026-11-23T22:05:00Z")],
    );
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.statuses());
    assert_eq!(run.status("repl-a@a"), "changed");
    assert_eq!(run.status("copy-backup@b"), "changed");
    assert_eq!(run.status("caught-up@a"), "ok");
    assert_eq!(count(&lab, "b", 10_000), "10000", "B holds all of A's data");
    // Updates made afterwards on A arrive on B.
    lab.m("a", "for i=10001:1:10500 set ^data(i)=\"row \"_i");
    eventually(&lab, "b", "write $get(^data(10500))", "row 10500");
    assert_eq!(count(&lab, "b", 10_500), "10500");
    // The staging copy is gone, B is a replicating instance named B.
    assert!(!lab.dir("b").join("migrate-backup").exists());
    let role = lab.tool(
        "b",
        "mupip",
        &["replicate", "-editinstance", "-show", "gtm.repl"],
    );
    let text =
        String::from_utf8_lossy(&role.stdout).into_owned() + &String::from_utf8_lossy(&role.stderr);
    assert!(
        text.lines()
            .any(|l| l.contains("Instance Name") && l.split_whitespace().last() == Some("B")),
        "{text}"
    );
}
