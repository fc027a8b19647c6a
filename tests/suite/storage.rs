//! The `storage.*` modules over real SSH against two lab hosts: real files, real `tar`, `find`,
//! `sha256sum` and `df` on the hosts, and real transfers through the controller.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::apply::{Applied, Rig};

fn header(name: &str) -> String {
    format!("apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, version: 1.0.0}}\n")
}

/// `sha256sum FILE`, the hex digest.
fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

/// Whether two files have the same bytes (`cmp`: quicker than hashing them here).
fn same(a: &Path, b: &Path) -> bool {
    Command::new("cmp")
        .arg("-s")
        .arg(a)
        .arg(b)
        .status()
        .expect("cmp")
        .success()
}

/// A file of `mib` MiB of random bytes (quick: `head -c` from /dev/urandom).
fn random_file(path: &Path, mib: u64, mode: u32) {
    fs_err::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("head -c {mib}M /dev/urandom > \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .expect("head");
    assert!(status.success());
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    fs_err::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// The run directory's copy of an action's stdout, parsed as JSON.
fn values(run: &Applied, action: &str) -> serde_json::Value {
    let id = run
        .events
        .iter()
        .find(|e| e["event"] == "run_started")
        .and_then(|e| e["run_id"].as_str())
        .expect("a run_started event");
    let path = run
        .state
        .join("runs")
        .join(id)
        .join("actions")
        .join(action)
        .join("stdout");
    let text = fs_err::read_to_string(&path).expect("the action's stdout is kept");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn stdout_of(run: &Applied, action: &str) -> String {
    let id = run
        .events
        .iter()
        .find(|e| e["event"] == "run_started")
        .and_then(|e| e["run_id"].as_str())
        .expect("a run_started event");
    fs_err::read_to_string(
        run.state
            .join("runs")
            .join(id)
            .join("actions")
            .join(action)
            .join("stdout"),
    )
    .expect("stdout kept")
}

fn copy_runbook(src: &Path, dest: &Path, extra: &str) -> String {
    header("copy")
        + &format!(
            "steps:\n  - id: hssys\n    module: storage.copy\n    on: \"host:b\"\n    with:\n      from: a\n      src: {}\n      dest: {}\n{extra}",
            src.display(),
            dest.display()
        )
}

struct Paths {
    src: PathBuf,
    dest: PathBuf,
    partial: PathBuf,
}

fn paths(rig: &Rig) -> Paths {
    let dest_dir = rig.root("b").join("usr/irissys/mgr/hssys");
    Paths {
        src: rig.root("a").join("usr/irissys/mgr/hssys/IRIS.DAT"),
        dest: dest_dir.join("IRIS.DAT"),
        partial: dest_dir.join(".IRIS.DAT.runbook-partial"),
    }
}

#[test]
fn a_200_mb_file_is_copied_verified_and_then_unchanged() {
    let rig = Rig::new(2);
    let p = paths(&rig);
    random_file(&p.src, 200, 0o640);
    let rb = copy_runbook(&p.src, &p.dest, "");

    let started = Instant::now();
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    assert_eq!(run.status("hssys@b"), "changed");
    eprintln!("200 MiB copied in {:?}", started.elapsed());
    assert!(same(&p.dest, &p.src), "identical content");
    assert_eq!(mode(&p.dest), 0o640, "mode kept");
    assert!(!p.partial.exists(), "no partial copy left");
    let v = values(&run, "hssys@b");
    assert_eq!(v["bytes"], 200 << 20);
    assert_eq!(v["chunks"], 25, "8 MiB chunks");
    assert_eq!(v["resumed_from"], 0);
    assert_eq!(
        v["sha256"],
        sha256(&p.dest).as_str(),
        "verified on both ends"
    );

    // Identical now: `ok`, nothing transferred (the destination is not even rewritten).
    let inode = std::os::unix::fs::MetadataExt::ino(&fs_err::metadata(&p.dest).expect("dest"));
    let again = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.status("hssys@b"), "ok");
    assert_eq!(stdout_of(&again, "hssys@b"), "runbook: unchanged\n");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fs_err::metadata(&p.dest).expect("dest")),
        inode
    );
}

#[test]
fn an_interrupted_copy_resumes_where_its_partial_copy_ends() {
    let rig = Rig::new(2);
    let p = paths(&rig);
    random_file(&p.src, 64, 0o600);
    let file = rig.dir.path().join("copy.yaml");
    // 2 MiB chunks: 32 of them.
    fs_err::write(
        &file,
        copy_runbook(&p.src, &p.dest, "      chunk_size: 2M\n"),
    )
    .expect("write");

    let mut child = rig.spawn_apply(&file);
    let deadline = Instant::now() + Duration::from_secs(60);
    let size = |path: &Path| fs_err::metadata(path).map_or(0, |m| m.len());
    while size(&p.partial) < 16 << 20 {
        assert!(
            Instant::now() < deadline,
            "the copy did not get to 16 MiB in time"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(300));
    let left = size(&p.partial);
    assert!(
        (16 << 20..64 << 20).contains(&left),
        "a partial copy of {left} bytes"
    );
    assert!(!p.dest.exists(), "nothing renamed into place");

    let resumed = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(resumed.code, 0, "{}\n{:#?}", resumed.stderr, resumed.events);
    assert_eq!(resumed.status("hssys@b"), "changed");
    let v = values(&resumed, "hssys@b");
    let from = v["resumed_from"].as_u64().expect("resumed_from");
    assert!(
        from >= left - (2 << 20) && from > 0,
        "continued at {from}, the partial copy had {left} bytes"
    );
    let chunks = v["chunks"].as_u64().expect("chunks");
    assert!(chunks < 32, "{chunks} chunks: not restarted from zero");
    assert_eq!(v["transferred_bytes"], (64u64 << 20) - from);
    assert!(same(&p.dest, &p.src));
    assert_eq!(mode(&p.dest), 0o600);
    assert!(!p.partial.exists());
}

#[test]
fn a_copy_that_cannot_fit_fails_before_copying_and_the_gate_says_why() {
    let rig = Rig::new(2);
    let p = paths(&rig);
    random_file(&p.src, 1, 0o644);
    // No file system here has an exabyte free: the reserve makes the copy not fit.
    let rb = copy_runbook(&p.src, &p.dest, "      reserve: 1048576T\n")
        + &format!(
            "  - id: room\n    module: storage.free_space\n    on: \"host:b\"\n    register: room\n    with:\n      path: {}\n      needed: 1048576T\n",
            p.dest.display()
        );
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.status("hssys@b"), "failed");
    let message = run.message("hssys@b");
    assert!(
        message.contains("not enough space on `b`") && message.contains("nothing was copied"),
        "{message}"
    );
    assert!(!p.partial.exists() && !p.dest.exists(), "nothing written");

    let gate = header("gate")
        + &format!(
            "steps:\n  - id: room\n    module: storage.free_space\n    on: \"host:b\"\n    with:\n      path: {}\n      needed: 1048576T\n",
            p.dest.display()
        );
    let run = rig.apply(&gate, &rig.inventory(), &[]);
    assert_eq!(run.status("room@b"), "failed");
    let v = values(&run, "room@b");
    assert_eq!(v["needed_bytes"], 1u64 << 60);
    assert!(v["free_bytes"].as_u64().expect("free") < 1 << 60);
    assert_eq!(v["path"], p.dest.display().to_string().as_str());

    // Without the reserve it fits. Then a different mode alone is a difference, which the
    // dry run's check (both ends compared) sees, and apply fixes.
    let rb = copy_runbook(&p.src, &p.dest, "");
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.status("hssys@b"), "changed");
    let dry = rig.apply(&rb, &rig.inventory(), &["--dry-run"]);
    assert_eq!(dry.status("hssys@b"), "ok");
    fs_err::set_permissions(&p.dest, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let dry = rig.apply(&rb, &rig.inventory(), &["--dry-run"]);
    assert_eq!(dry.status("hssys@b"), "would_change");
    let fixed = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(fixed.status("hssys@b"), "changed");
    assert_eq!(mode(&p.dest), 0o644);
    assert!(same(&p.dest, &p.src));
}

#[test]
fn directories_are_copied_relocated_archived_and_restored() {
    let rig = Rig::new(2);
    let a = rig.root("a");
    let b = rig.root("b");
    // Instance A's web content, as in the seed's section 3.2.
    let csp = a.join("install/csp");
    fs_err::create_dir_all(csp.join("hscommlib/HSCOMMUNITY")).expect("mkdir");
    fs_err::create_dir_all(csp.join("public")).expect("mkdir");
    fs_err::write(csp.join("public/index.csp"), "<csp:page/>\n").expect("write");
    random_file(&csp.join("hscommlib/HSCOMMUNITY/lib.bin"), 3, 0o640);
    std::os::unix::fs::symlink("index.csp", csp.join("public/home.csp")).expect("symlink");
    random_file(&a.join("install/IRIS.DAT"), 1, 0o600);

    let rb = header("storage")
        + &format!(
            "steps:
  - id: copy-csp
    module: storage.copy
    on: \"host:b\"
    with: {{from: a, src: {csp}, dest: {b_csp}, chunk_size: 1M}}
  - id: backup
    module: storage.archive
    on: \"host:a\"
    with: {{path: {csp}, dest: {backup}}}
  - id: relocate
    module: storage.relocate
    on: \"host:a\"
    with: {{path: {csp}, target: {shared}}}
  - id: perms
    module: storage.permissions
    on: \"host:a\"
    with: {{path: {dat}, mode: \"0660\"}}
",
            csp = csp.display(),
            b_csp = b.join("install/csp").display(),
            backup = a.join("backup/csp.tar.gz").display(),
            shared = a.join("mydrive/csp").display(),
            dat = a.join("install/IRIS.DAT").display(),
        );
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    for step in ["copy-csp@b", "backup@a", "relocate@a", "perms@a"] {
        assert_eq!(run.status(step), "changed", "{step}");
    }
    // The copy on b: same tree, symlink kept, verified by manifest.
    assert_eq!(
        sha256(&b.join("install/csp/hscommlib/HSCOMMUNITY/lib.bin")),
        sha256(&a.join("mydrive/csp/hscommlib/HSCOMMUNITY/lib.bin"))
    );
    assert_eq!(
        fs_err::read_link(b.join("install/csp/public/home.csp")).expect("a link"),
        Path::new("index.csp")
    );
    assert_eq!(values(&run, "copy-csp@b")["kind"], "dir");
    // Relocated: a link to the shared drive, the content there.
    assert_eq!(
        fs_err::read_link(&csp).expect("a link"),
        a.join("mydrive/csp")
    );
    assert_eq!(
        fs_err::read_to_string(csp.join("public/index.csp")).expect("through the link"),
        "<csp:page/>\n"
    );
    assert_eq!(mode(&a.join("install/IRIS.DAT")), 0o660);

    // Everything again: all in state.
    let again = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    for step in ["copy-csp@b", "backup@a", "relocate@a", "perms@a"] {
        assert_eq!(again.status(step), "ok", "{step}");
    }

    // Half done: the link is gone; relocate finishes the job without copying again.
    fs_err::remove_file(&csp).expect("rm link");
    let relocate = header("relocate")
        + &format!(
            "steps:\n  - id: relocate\n    module: storage.relocate\n    on: \"host:a\"\n    with: {{path: {}, target: {}}}\n",
            csp.display(),
            a.join("mydrive/csp").display()
        );
    let relink = rig.apply(&relocate, &rig.inventory(), &[]);
    assert_eq!(relink.status("relocate@a"), "changed");
    assert_eq!(values(&relink, "relocate@a")["copied"], false);

    // Restore the archive (taken before the permissions changed) into a new place.
    let restore = header("restore")
        + &format!(
            "steps:\n  - id: restore\n    module: storage.restore\n    on: \"host:a\"\n    with: {{archive: {}, dest: {}}}\n",
            a.join("backup/csp.tar.gz").display(),
            a.join("restored/csp").display()
        );
    let run = rig.apply(&restore, &rig.inventory(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.status("restore@a"), "changed");
    assert_eq!(
        sha256(&a.join("restored/csp/hscommlib/HSCOMMUNITY/lib.bin")),
        sha256(&b.join("install/csp/hscommlib/HSCOMMUNITY/lib.bin"))
    );
    assert_eq!(mode(&a.join("restored/csp/public/index.csp")), 0o644);
    let run = rig.apply(&restore, &rig.inventory(), &[]);
    assert_eq!(run.status("restore@a"), "ok");
}
