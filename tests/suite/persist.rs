//! Connections that outlive a run (`transport/persist.rs`), over real sshd hosts: the next run
//! uses the master it finds and takes its own host lock over it; `--no-persist` leaves nothing
//! behind; an unsafe control directory is not used; a stopped host's master goes at once.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::apply::Rig;

const HEADER: &str =
    "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: persist, version: 1.0.0}\n";

/// The arguments of every ssh master process (`ssh ... -M ...`), by pid.
fn master_processes() -> Vec<(u32, Vec<String>)> {
    let mut out = Vec::new();
    for entry in fs_err::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("ssh")) && args.iter().any(|a| a == "-M") {
            out.push((pid, args));
        }
    }
    out.sort();
    out
}

/// Pids of the masters whose control socket is under `control` (`-S CONTROL/KEY/master`).
fn masters(control: &Path) -> Vec<u32> {
    master_processes()
        .into_iter()
        .filter(|(_, args)| {
            args.windows(2)
                .any(|w| w[0] == "-S" && Path::new(&w[1]).starts_with(control))
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// Pids of the masters to lab host `host`, wherever their socket is.
fn masters_to(rig: &Rig, host: &str) -> Vec<u32> {
    let address = rig.lab.host(host).expect("a lab host").address.to_string();
    master_processes()
        .into_iter()
        .filter(|(_, args)| args.last() == Some(&address))
        .map(|(pid, _)| pid)
        .collect()
}

/// Polls until `ready`, at most `bound` (a guard against a hang, far above what it takes).
fn wait_for(what: &str, bound: Duration, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < bound, "{what} after {bound:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `runbook apply` of a new run of `steps`, with `RUNBOOK_CONTROL_DIR=control`.
fn apply(rig: &Rig, control: &Path, steps: &str, extra: &[&str]) -> crate::apply::Applied {
    let n = fs_err::read_dir(rig.dir.path()).expect("ls").count();
    let file = rig.dir.path().join(format!("persist-{n}.yaml"));
    fs_err::write(&file, format!("{HEADER}steps:\n{steps}")).expect("write the runbook");
    rig.apply_file_env(
        &file,
        &rig.inventory(),
        extra,
        &[("RUNBOOK_CONTROL_DIR", &control.display().to_string())],
    )
}

#[test]
fn the_next_run_uses_the_last_runs_connection_and_takes_its_own_lock_over_it() {
    let mut rig = Rig::new(1);
    let control = rig.dir.path().join("ctl");
    let step = "  - {id: mark, module: shell, on: a, with: {cmd: \"echo x >> $RUNBOOK_HOST_ROOT/marks\"}}\n";
    let first = apply(&rig, &control, step, &["--persist", "30s"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let kept = masters(&control);
    assert_eq!(kept.len(), 1, "the master outlives its run");
    let mode = fs_err::metadata(&control)
        .expect("control dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "owner-only");

    // A dry run (shared lock) and an apply (exclusive): both over the same master, each
    // taking the host lock anew: the last run's lock ended with its command, not with the
    // master.
    let dry = apply(&rig, &control, step, &["--dry-run", "--persist", "30s"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let again = apply(&rig, &control, step, &["--persist", "30s"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(masters(&control), kept, "no new connection");
    let marks = fs_err::read_to_string(rig.root("a").join("marks")).expect("marks");
    assert_eq!(marks, "x\nx\n", "the dry run changed nothing");

    // `lab down` (here: the host stopped) ends its sessions, and so the master, at once.
    rig.lab.stop_host("a").expect("stop a");
    wait_for(
        "the master of a stopped host outlived it",
        Duration::from_secs(20),
        || masters(&control).is_empty(),
    );
}

#[test]
fn no_persist_leaves_no_master_and_an_unsafe_control_directory_is_not_used() {
    let rig = Rig::new(1);
    let control = rig.dir.path().join("ctl");
    let step = "  - {id: one, module: shell, on: a, with: {cmd: \"true\"}}\n";
    let own = apply(&rig, &control, step, &["--no-persist"]);
    assert_eq!(own.code, 0, "{}", own.stderr);
    assert!(
        !control.exists(),
        "the shared directory is not even created"
    );
    wait_for(
        "the master of a --no-persist run outlived it",
        Duration::from_secs(20),
        || masters_to(&rig, "a").is_empty(),
    );

    // A control directory others may enter: refused, with a warning; the run goes on with
    // connections of its own.
    fs_err::create_dir(&control).expect("mkdir");
    fs_err::set_permissions(&control, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let refused = apply(&rig, &control, step, &["--persist", "30s"]);
    assert_eq!(refused.code, 0, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("warning") && refused.stderr.contains("must be 700"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        fs_err::read_dir(&control).expect("ls").count(),
        0,
        "nothing was put in it"
    );
    wait_for(
        "the master of a run that could not share its connection outlived it",
        Duration::from_secs(20),
        || masters_to(&rig, "a").is_empty(),
    );
}
