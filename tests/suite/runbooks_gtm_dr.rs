//! `runbooks/gtm/dr-shadow-refresh.yaml`, run as it ships against two real GT.M instances:
//! production A (originating) and its DR shadow B (replicating), set up by the built-in
//! `new-mirror.yaml`. The refresh must rebuild B from a fresh backup of A (B's divergent junk
//! gone), and B must catch up with the updates A takes while and after the backup is made.
//! Promotion and fallback switch the roles and back, with data flowing both ways.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::apply::Applied;
use crate::gtm::GtmLab;
use crate::runbooks_gtm::{apply, eventually};

const NODES: usize = 500;
/// The number of `^N` nodes.
const COUNT_N: &str =
    "xecute \"set c=0,i=\"\"\"\" for  set i=$order(^N(i)) quit:i=\"\"\"\"  set c=c+1\" write c";

fn production_and_shadow() -> GtmLab {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    let run = apply(&lab, "new-mirror", &[]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    assert_eq!(lab.m("a", &format!("for i=1:1:{NODES} set ^N(i)=i*2")), "");
    eventually(
        &lab,
        "b",
        &format!("write $get(^N({NODES}))"),
        &(NODES * 2).to_string(),
    );
    lab
}

/// B diverges: its servers stop, replication is turned off, and it takes updates of its own
/// (junk nodes, and a changed production node), as a shadow that drifted would.
fn make_shadow_diverge(lab: &GtmLab) {
    for args in [
        &["replicate", "-receiver", "-shutdown", "-timeout=0"][..],
        &["replicate", "-source", "-shutdown", "-timeout=0"],
        &["set", "-replication=off", "-region", "*"],
    ] {
        let out = lab.tool("b", "mupip", args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        lab.m("b", "for i=1:1:5 set ^JUNK(i)=i  set ^N(1)=\"junk\""),
        ""
    );
    assert_eq!(lab.m("b", "write $get(^JUNK(5)),\" \",^N(1)"), "5 junk");
}

/// Runs `runbook apply` again after approving whatever manual step it waits for.
fn apply_approving(lab: &GtmLab, extra: &[&str]) -> Applied {
    for _ in 0..3 {
        let run = apply(lab, "dr-shadow-refresh", extra);
        if run.code != 3 {
            return run;
        }
        let step = run
            .events
            .iter()
            .find(|e| e["event"] == "awaiting_approval")
            .and_then(|e| e["step"].as_str())
            .expect("a manual step")
            .to_owned();
        run.approve(&step, "updates held");
    }
    panic!("still awaiting approval");
}

#[test]
fn refresh_rebuilds_the_shadow_from_a_fresh_backup_and_it_catches_up() {
    let lab = production_and_shadow();
    make_shadow_diverge(&lab);

    // Production keeps taking updates all through the refresh: ^LIVE(i), with the time of each.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let dir = lab.dir("a");
        std::thread::spawn(move || {
            let mut written = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let ok = crate::gtm::m_in(&dir, "A", &format!("set ^LIVE({i})={i}"));
                assert!(ok, "write ^LIVE({i}) on A");
                written.push(SystemTime::now());
                std::thread::sleep(Duration::from_millis(200));
            }
            written
        })
    };
    let run = apply(&lab, "dr-shadow-refresh", &[]);
    // A few more after the run, then stop writing.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("the writer");
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    for step in [
        "backup-a@a",
        "copy-backup@b",
        "restore-shadow@b",
        "replication-on-shadow@b",
        "receiver-shadow@b",
    ] {
        assert_eq!(run.status(step), "changed", "{step}");
    }
    assert_eq!(
        run.status("stop-shadow@b"),
        "ok",
        "the drifted shadow was already down"
    );
    assert_eq!(run.status("promote.start-b-originating@b"), "skipped");

    // Updates made after the backup was taken exist, and every update reached B.
    let backup = lab.dir("a").join("dr-refresh-backup/gtm.dat");
    let backup_time = std::fs::metadata(&backup)
        .and_then(|m| m.modified())
        .expect("A's backup");
    let after = written.iter().filter(|t| **t > backup_time).count();
    assert!(after >= 3, "{after} updates after the backup");
    let n = written.len().to_string();
    assert_eq!(lab.m("a", "write $order(^LIVE(\"\"),-1)"), n);
    eventually(&lab, "b", "write $order(^LIVE(\"\"),-1)", &n);
    eventually(&lab, "b", "write $data(^LIVE(1))", "1");

    // B is A's copy: all N production nodes, none of its junk, ^N(1) as production has it.
    assert_eq!(lab.m("b", COUNT_N), NODES.to_string());
    assert_eq!(
        lab.m("b", &format!("write $get(^N({NODES}))")),
        (NODES * 2).to_string()
    );
    assert_eq!(lab.m("b", "write $data(^JUNK),\" \",^N(1)"), "0 2");
    // The old shadow's files were kept aside (keep_old_shadow), out of service.
    let kept = std::fs::read_dir(lab.dir("b"))
        .expect("B's directory")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("old-shadow."));
    assert!(kept, "the old shadow's files are kept");
    // And B replicates: a new update on A arrives.
    assert_eq!(lab.m("a", "set ^AFTER=1"), "");
    eventually(&lab, "b", "write $get(^AFTER)", "1");
}

#[test]
fn promote_then_fallback_switches_roles_and_back_with_data_both_ways() {
    let lab = production_and_shadow();
    let run = apply_approving(
        &lab,
        &["-e", "mode=promote", "-e", "source_shutdown_timeout=10s"],
    );
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    // The promote's write freeze (A's Source Server stopped to B originating).
    crate::runbooks_gtm::assert_freeze_measured(&run);
    // B is production now; its updates are copied to A (the reversed journal copy).
    assert_eq!(
        lab.m("b", "set ^DR(1)=\"written on the promoted shadow\""),
        ""
    );
    eventually(
        &lab,
        "a",
        "write $get(^DR(1))",
        "written on the promoted shadow",
    );
    let refused = lab.tool("a", "mumps", &["-run", "%XCMD", "set ^X=1"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("SCNDDBNOUPD")
            || String::from_utf8_lossy(&refused.stdout).contains("SCNDDBNOUPD"),
        "A refuses updates while it replicates: {refused:?}"
    );

    let run = apply_approving(
        &lab,
        &["-e", "mode=fallback", "-e", "source_shutdown_timeout=10s"],
    );
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    assert_eq!(lab.m("a", "set ^DR(2)=\"back on production\""), "");
    eventually(&lab, "b", "write $get(^DR(2))", "back on production");
    assert_eq!(
        lab.m("b", "write $get(^DR(1))"),
        "written on the promoted shadow"
    );
    assert_eq!(
        lab.m("b", &format!("write $get(^N({NODES}))")),
        (NODES * 2).to_string()
    );
}
