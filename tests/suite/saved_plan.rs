//! Saved plans over the lab: `plan --out PLAN` then `apply PLAN` runs exactly it; a runbook or
//! inventory edited after `--out` is refused (exit 2) naming the file, and nothing runs.

use std::path::Path;
use std::process::Command;

use crate::apply::{Applied, Rig};

fn runbook(args: &[&std::ffi::OsStr], state: &Path) -> Applied {
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(args)
        .args(["--format", "json", "--state"])
        .arg(state)
        .env("NO_COLOR", "1")
        .output()
        .expect("runbook runs");
    Applied::from_output(&out, state.to_path_buf())
}

fn plan_out(file: &Path, inventory: &Path, out: &Path) {
    let plan = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("plan")
        .arg(file)
        .arg("-i")
        .arg(inventory)
        .args(["-e", "word=planned", "--out"])
        .arg(out)
        .output()
        .expect("plan runs");
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
}

#[test]
fn a_saved_plan_applies_and_one_whose_runbook_or_inventory_changed_is_refused() {
    let rig = Rig::new(1);
    let file = rig.dir.path().join("saved.yaml");
    let text = "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: saved, version: 1.0.0}\n\
                params:\n  word: {type: string, default: unset}\n\
                steps:\n  - {id: mark, module: shell, on: a, with: {cmd: \"echo {{ params.word }} >> $RUNBOOK_HOST_ROOT/mark\"}}\n";
    fs_err::write(&file, text).expect("write");
    let saved = rig.dir.path().join("change-42.plan");
    plan_out(&file, &rig.inventory(), &saved);
    let content = fs_err::read_to_string(&saved).expect("the plan is written");
    assert!(
        content.starts_with("{\n  \"format\": \"runbook-saved-plan\""),
        "{content}"
    );
    let state = rig.dir.path().join("state");
    let mark = rig.root("a").join("mark");

    // Applied as saved: with the `-e` of the plan, no runbook or inventory given again.
    let run = runbook(&["apply".as_ref(), saved.as_os_str()], &state);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fs_err::read_to_string(&mark).expect("mark"), "planned\n");

    // The runbook edited after `--out`: refused, naming it; nothing ran.
    fs_err::write(&file, text.replace(">>", "> ")).expect("edit");
    let run = runbook(&["apply".as_ref(), saved.as_os_str()], &state);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("the runbook") && run.stderr.contains(&file.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(run.events.is_empty(), "{:?}", run.events);
    fs_err::write(&file, text).expect("restore");

    // The inventory edited after `--out`: refused, naming it.
    let inventory = rig.inventory();
    let before = fs_err::read_to_string(&inventory).expect("inventory");
    fs_err::write(&inventory, before.clone() + "# edited after the review\n").expect("edit");
    let run = runbook(&["apply".as_ref(), saved.as_os_str()], &state);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("the inventory")
            && run.stderr.contains(&inventory.display().to_string()),
        "{}",
        run.stderr
    );
    fs_err::write(&inventory, before).expect("restore");
    assert_eq!(
        fs_err::read_to_string(&mark).expect("mark"),
        "planned\n",
        "a refused plan runs nothing"
    );

    // Restored, the same plan applies again.
    let run = runbook(&["apply".as_ref(), saved.as_os_str()], &state);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        fs_err::read_to_string(&mark).expect("mark"),
        "planned\nplanned\n"
    );
}

#[test]
fn a_probed_plan_applies_while_the_hosts_match_and_is_refused_naming_the_fact_that_changed() {
    let rig = Rig::new(1);
    let root = rig.root("a");
    let conf = root.join("app.conf");
    fs_err::write(&conf, "port=1\n").expect("write");
    let file = rig.dir.path().join("probed.yaml");
    let text = "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: probed, version: 1.0.0}\n\
                steps:\n  - {id: conf, module: copy, on: a, with: {dest: \"{{ vars.host_root }}/app.conf\", content: \"port=1\\n\"}}\n";
    fs_err::write(&file, text).expect("write");
    let state = rig.dir.path().join("state");
    let saved = rig.dir.path().join("probed.plan");
    let plan = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("plan")
        .arg(&file)
        .arg("-i")
        .arg(rig.inventory())
        .args(["--probe", "--out"])
        .arg(&saved)
        .env("RUNBOOK_STATE", &state)
        .output()
        .expect("plan runs");
    let shown = String::from_utf8_lossy(&plan.stderr);
    assert_eq!(plan.status.code(), Some(0), "{shown}");
    assert!(shown.contains("conf@a: in state"), "{shown}");
    let content: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&saved).expect("saved")).expect("json");
    assert_eq!(content["facts"]["conf@a"], "in state", "{content}");

    // Unchanged hosts: the plan applies.
    let run = runbook(&["apply".as_ref(), saved.as_os_str()], &state);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // The host changed after the probe: refused, naming the action and the fact; nothing ran.
    fs_err::write(&conf, "port=2\n").expect("edit on the host");
    let run = runbook(&["apply".as_ref(), saved.as_os_str()], &state);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("conf@a: check saw `in state` then, `would change` now"),
        "{}",
        run.stderr
    );
    assert!(run.events.is_empty(), "{:?}", run.events);
    assert_eq!(
        fs_err::read_to_string(&conf).expect("conf"),
        "port=2\n",
        "a refused plan changes nothing"
    );
}
