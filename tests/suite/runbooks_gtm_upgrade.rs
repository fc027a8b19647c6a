//! `runbooks/gtm/rolling-upgrade.yaml`, run as it ships against two real GT.M instances (A
//! originating, B replicating), in both orders of the seed's "Rolling Software Upgrade". The
//! upgrade is the seed's "Changing the global directory" kind: a new region ZREG (file z.dat)
//! for the globals `^Z*`, added by `upgrade_cmd` with GDE and `mupip create`. The tests write
//! data before the run, at every pause of the run (while the current originating instance still
//! takes updates), and after it, then read all of it back on both instances.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::apply::Applied;
use crate::gtm::GtmLab;

/// The seed's global directory change as an upgrade command (run in the instance directory
/// with its GT.M environment): keep the prior global directory, map `^Z*` to a new region, and
/// create its database file.
const ADD_REGION: &str = "cp gtm.gld prior.gld && \
    printf 'add -segment ZSEG -file_name=%s/z.dat\\nadd -region ZREG -dynamic_segment=ZSEG\\nadd -name Z* -region=ZREG\\nexit\\n' \"$GTM_DIR\" \
    | \"$gtm_dist/mumps\" -run ^GDE && \"$gtm_dist/mupip\" create -region=ZREG";

/// An upgrade that also moves B's Region Seqno (what the seed's Region Seqno check is for).
fn add_region_and_bump_seqno_on_b() -> String {
    format!(
        "{ADD_REGION} && if [ \"$gtm_repl_instname\" = B ]; then \
         printf 'find -region=DEFAULT\\nchange -fileheader -reg_seqno=%x\\n' 1000 | \"$gtm_dist/dse\"; fi"
    )
}

fn runbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks/gtm/rolling-upgrade.yaml")
}

/// A→B with `^A(1..10)` replicated, set up with the `gtm.*` modules.
fn set_up_a_to_b(lab: &GtmLab) {
    let env = "dir: \"{{ vars.gtm_dir }}\", instance: \"{{ vars.gtm_instance }}\"";
    let to_b = "secondary_instance: \"{{ hostvars[roles.replicating[0]].vars.gtm_instance }}\", \
                secondary: \"{{ hostvars[roles.replicating[0]].address }}:{{ hostvars[roles.replicating[0]].vars.repl_port }}\"";
    let rb = format!(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: gtm-a-to-b, version: 1.0.0}}\n\
         roles: {{originating: 1, replicating: 1}}\nsteps:\n\
         \x20 - {{id: db, module: gtm.database_create, on: [originating, replicating], with: {{{env}}}}}\n\
         \x20 - {{id: repl, module: gtm.replication_on, on: [originating, replicating], with: {{{env}}}}}\n\
         \x20 - {{id: recv, module: gtm.receiver_start, on: replicating, with: {{{env}, listen_port: \"{{{{ vars.repl_port }}}}\"}}}}\n\
         \x20 - {{id: src, module: gtm.source_start, on: originating, with: {{{env}, {to_b}}}}}\n\
         \x20 - {{id: write, module: gtm.mumps, on: originating, with: {{{env}, code: \"for i=1:1:10 set ^A(i)=i\"}}}}\n\
         \x20 - {{id: drain, module: gtm.wait_backlog, on: originating, with: {{{env}, timeout: 90s, interval: 1s}}}}\n"
    );
    let run = lab.rig.apply(&rb, &lab.rig.inventory(), &[]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    wait_for(lab, "b", "write $get(^A(10))", "10");
}

/// Polls `code` on `host` until it prints `want`.
fn wait_for(lab: &GtmLab, host: &str, code: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = lab.m(host, code);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host}: `{code}` printed {got:?}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Which instance has an active Source Server now.
fn originating(lab: &GtmLab) -> &'static str {
    ["a", "b"]
        .into_iter()
        .find(|h| {
            let out = lab.tool(h, "mupip", &["replicate", "-source", "-checkhealth"]);
            String::from_utf8_lossy(&out.stdout).contains("alive in ACTIVE mode")
                || String::from_utf8_lossy(&out.stderr).contains("alive in ACTIVE mode")
        })
        .expect("an active Source Server")
}

fn receiving(lab: &GtmLab, host: &str) -> bool {
    let out = lab.tool(host, "mupip", &["replicate", "-receiver", "-checkhealth"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.contains("Receiver server is alive") && text.contains("Update process is alive")
}

/// Runs the rolling upgrade to its end. At each manual step (holding updates before a
/// switchover) the current originating instance takes one more update `^W(n)` first, then the
/// step is approved and the run resumed. Returns the last apply, the final status of every
/// action over all the applies of the run, and the number of pauses.
fn run_upgrade(lab: &GtmLab, extra: &[&str]) -> (Applied, BTreeMap<String, String>, usize) {
    let file = runbook();
    let mut pauses = 0;
    let mut statuses = BTreeMap::new();
    loop {
        let run = lab.rig.apply_file(&file, &lab.rig.inventory(), extra);
        statuses.extend(run.statuses());
        if run.code != 3 {
            return (run, statuses, pauses);
        }
        pauses += 1;
        assert!(pauses <= 2, "at most two holds: {:#?}", run.events);
        let waiting = run
            .events
            .iter()
            .find(|e| e["event"] == "awaiting_approval")
            .expect("a manual step awaits approval");
        let step = waiting["step"].as_str().expect("step").to_owned();
        let from = originating(lab);
        assert_eq!(lab.m(from, &format!("set ^W({pauses})={pauses}")), "");
        run.approve(&step, "updates held");
    }
}

fn extras(order: &str, upgrade: &str) -> Vec<String> {
    vec![
        "-e".into(),
        format!("order={order}"),
        "-e".into(),
        format!("upgrade_cmd={upgrade}"),
        "-e".into(),
        "source_shutdown_timeout=10s".into(),
        "-e".into(),
        "server_shutdown_timeout=5s".into(),
        "-e".into(),
        "drain_timeout=3m".into(),
        "-e".into(),
        "catchup_timeout=3m".into(),
    ]
}

/// Everything written before, during and after the upgrade is on both instances; ^Z lives in
/// the new region ZREG on both.
fn assert_upgraded_and_replicating(lab: &GtmLab, from: &str, to: &str, pauses: usize) {
    assert_eq!(
        originating(lab),
        from,
        "the originating instance at the end"
    );
    assert!(receiving(lab, to), "{to} replicates from {from}");
    // Data written after the upgrade, into the new region and the old one.
    assert_eq!(lab.m(from, "set ^Z(1)=\"new region\",^B(1)=1"), "");
    for host in ["a", "b"] {
        wait_for(lab, host, "write $get(^B(1))", "1");
        wait_for(lab, host, "write $get(^Z(1))", "new region");
        assert_eq!(
            lab.m(host, "write $order(^A(\"\"),-1)"),
            "10",
            "{host}: data from before"
        );
        for n in 1..=pauses {
            assert_eq!(
                lab.m(host, &format!("write $get(^W({n}))")),
                n.to_string(),
                "{host}: ^W({n})"
            );
        }
        assert_eq!(
            lab.m(host, "write $view(\"REGION\",\"^Z\")"),
            "ZREG",
            "{host}"
        );
        assert!(lab.dir(host).join("z.dat").exists(), "{host}: z.dat");
        assert!(
            lab.dir(host).join("prior.gld").exists(),
            "{host}: the upgrade command ran"
        );
        assert!(
            lab.dir(host)
                .join("backup-rolling-upgrade/gtm.dat")
                .exists(),
            "{host}: the backup before the upgrade"
        );
    }
}

#[test]
fn replica_first_upgrades_b_then_a_resets_a_moved_seqno_and_ends_b_to_a() {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    set_up_a_to_b(&lab);
    let upgrade = add_region_and_bump_seqno_on_b();
    let extra = extras("replica_first", &upgrade);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let (run, statuses, pauses) = run_upgrade(&lab, &extra);
    let status = |action: &str| {
        statuses
            .get(action)
            .cloned()
            .unwrap_or_else(|| panic!("no status for {action}: {statuses:#?}"))
    };
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    assert_eq!(pauses, 1, "one switchover");
    // The first switchover's write freeze (A's Source Server stopped to B originating).
    crate::runbooks_gtm::assert_freeze_measured(&run);
    for step in [
        "b1.upgrade@b",
        "switchover.start-b-originating@b",
        "a.upgrade@a",
        "a.receiver@a",
    ] {
        assert_eq!(status(step), "changed", "{step}");
    }
    // The seed's Region Seqno check: B's upgrade moved it to 1000; the runbook put it back.
    assert_eq!(status("b1.seqno-reset@b"), "changed");
    assert_eq!(
        status("a.seqno-reset@a"),
        "skipped",
        "A's upgrade left it alone"
    );
    for step in ["switch-back.start-b-originating@a", "b2.upgrade@b"] {
        assert_eq!(status(step), "skipped", "{step}: originating_first only");
    }
    assert_upgraded_and_replicating(&lab, "b", "a", pauses);
}

#[test]
fn originating_first_upgrades_a_then_b_and_ends_a_to_b() {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    set_up_a_to_b(&lab);
    let extra = extras("originating_first", ADD_REGION);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let (run, statuses, pauses) = run_upgrade(&lab, &extra);
    let status = |action: &str| {
        statuses
            .get(action)
            .cloned()
            .unwrap_or_else(|| panic!("no status for {action}: {statuses:#?}"))
    };
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    assert_eq!(pauses, 2, "a switchover and a switch back");
    // The first switchover's write freeze (A's Source Server stopped to B originating).
    crate::runbooks_gtm::assert_freeze_measured(&run);
    for step in [
        "switchover.start-b-originating@b",
        "a.upgrade@a",
        "switch-back.start-b-originating@a",
        "b2.upgrade@b",
        "b2.receiver@b",
    ] {
        assert_eq!(status(step), "changed", "{step}");
    }
    assert_eq!(status("b1.upgrade@b"), "skipped", "replica_first only");
    for step in ["a.seqno-reset@a", "b2.seqno-reset@b"] {
        assert_eq!(
            status(step),
            "skipped",
            "{step}: the Region Seqno did not move"
        );
    }
    assert_upgraded_and_replicating(&lab, "a", "b", pauses);
}

#[test]
fn a_moved_seqno_with_on_seqno_mismatch_stop_halts_before_the_roles_change() {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    set_up_a_to_b(&lab);
    let upgrade = add_region_and_bump_seqno_on_b();
    let mut extra = extras("replica_first", &upgrade);
    extra.extend(["-e".into(), "on_seqno_mismatch=stop".into()]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let run = lab.rig.apply_file(&runbook(), &lab.rig.inventory(), &extra);
    assert_ne!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    assert_eq!(run.status("b1.upgrade@b"), "changed");
    assert_eq!(run.status("b1.seqno-unchanged@controller"), "failed");
    assert!(
        run.message("b1.seqno-unchanged@controller")
            .contains("changed the largest Region Seqno"),
        "{}",
        run.message("b1.seqno-unchanged@controller")
    );
    for step in ["b1.seqno-reset@b", "b1.receiver@b"] {
        assert_ne!(run.status(step), "changed", "{step}");
    }
    assert!(
        !run.statuses()
            .contains_key("switchover.start-b-originating@b")
            || run.status("switchover.start-b-originating@b") == "blocked",
        "the roles did not change"
    );
    // A is untouched: still originating, and still takes updates.
    assert_eq!(originating(&lab), "a");
    assert_eq!(lab.m("a", "set ^A(11)=11 write $get(^A(11))"), "11");
    assert!(!receiving(&lab, "b"), "B stays down for the operator");
}
