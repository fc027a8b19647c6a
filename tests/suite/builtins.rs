//! The built-in runbooks shipped in the binary: `runbook list`, `runbook show`, and a runbook
//! given by name (`runbook apply new-mirror -i INVENTORY`) instead of a file.

use std::path::Path;
use std::process::Command;

use crate::gtm::GtmLab;

fn runbook(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("runbook runs")
}

fn repo(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn list_show_and_a_name_instead_of_a_file() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let list = runbook(&["list"], cwd.path());
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    for b in runbook::builtin::ALL {
        assert!(text.contains(&b.id()), "{} in `runbook list`", b.id());
    }
    assert!(
        text.contains("gtm/switchover                     gtm          1.0.0    004_"),
        "{text}"
    );

    let show = runbook(&["show", "switchover"], cwd.path());
    assert!(show.status.success());
    let file = fs_err::read(repo("runbooks/gtm/switchover.yaml")).expect("the file");
    assert_eq!(show.stdout, file, "`show` prints the shipped file");

    // With its blocks: the runbook, then each block it uses after a line naming its file.
    let with = runbook(&["show", "rolling-upgrade", "--blocks"], cwd.path());
    assert!(with.status.success());
    let mut expected =
        fs_err::read_to_string(repo("runbooks/gtm/rolling-upgrade.yaml")).expect("the runbook");
    for block in ["upgrade-instance", "switchover"] {
        expected.push_str("\n# ---- runbooks/blocks/gtm/");
        expected.push_str(block);
        expected.push_str(".yaml (a block gtm/rolling-upgrade uses) ----\n");
        expected.push_str(
            &fs_err::read_to_string(repo(&format!("runbooks/blocks/gtm/{block}.yaml")))
                .expect("the block"),
        );
    }
    assert_eq!(String::from_utf8_lossy(&with.stdout), expected);
    // A block by its name, and `list` lists the blocks with the built-ins that use them.
    let block = runbook(&["show", "blocks/gtm/switchover"], cwd.path());
    assert!(block.status.success());
    let file = fs_err::read(repo("runbooks/blocks/gtm/switchover.yaml")).expect("the block");
    assert_eq!(block.stdout, file);
    assert!(
        text.contains(
            "blocks/gtm/switchover              gtm/dr-shadow-refresh, gtm/rolling-upgrade, gtm/switchover"
        ),
        "{text}"
    );
    let unknown = runbook(&["show", "blocks/gtm/nope"], cwd.path());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("blocks/gtm/upgrade-instance"));

    // From a directory with no runbooks in it, by name, for the inventory's platform.
    let inventory = repo("inventory/gtm-prod.yaml");
    let ok = runbook(
        &["validate", "switchover.yaml", "-i", &inventory],
        cwd.path(),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        String::from_utf8_lossy(&ok.stderr)
            .contains("using the built-in runbook gtm/switchover (gtm-switchover 1.0.0)")
    );
    // A name two platforms have: the inventory must say which.
    let both = runbook(
        &["validate", "migrate-existing", "-i", &inventory],
        cwd.path(),
    );
    assert_eq!(both.status.code(), Some(2));
    // (miette wraps long lines: compare without the white space)
    let err: String = String::from_utf8_lossy(&both.stderr)
        .split_whitespace()
        .collect();
    assert!(
        err.contains("gtm/migrate-existing") && err.contains("iris/migrate-existing"),
        "{err}"
    );
    // An inventory that says its platform picks that one.
    let gtm = cwd.path().join("gtm.yaml");
    let text = fs_err::read_to_string(&inventory).expect("the inventory");
    fs_err::write(
        &gtm,
        text.replacen("\nvars:\n", "\nvars:\n  platform: gtm\n", 1),
    )
    .expect("write");
    let picked = runbook(
        &[
            "validate",
            "migrate-existing",
            "-i",
            &gtm.display().to_string(),
            "-e",
            "instance=A",
        ],
        cwd.path(),
    );
    assert!(
        String::from_utf8_lossy(&picked.stderr)
            .contains("using the built-in runbook gtm/migrate-existing"),
        "{}",
        String::from_utf8_lossy(&picked.stderr)
    );
    let unknown = runbook(&["plan", "no-such-runbook", "-i", &inventory], cwd.path());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("runbook list"));
    // A file of that name wins over the built-in.
    fs_err::write(cwd.path().join("switchover.yaml"), "not: a runbook\n").expect("write");
    let file_wins = runbook(
        &["validate", "switchover.yaml", "-i", &inventory],
        cwd.path(),
    );
    assert_eq!(
        file_wins.status.code(),
        Some(2),
        "the local file, which is invalid"
    );
}

#[test]
fn a_builtin_applied_by_name_is_recorded_as_such_and_runs_as_shipped() {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    let run = lab
        .rig
        .apply_file(Path::new("new-mirror"), &lab.rig.inventory(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("using the built-in runbook gtm/new-mirror")
    );
    let journal = runbook::journal::Journal::open(&run.state).expect("journal");
    let runs = journal.runs().expect("runs");
    assert_eq!(runs[0].runbook_file, "builtin:gtm/new-mirror");
    assert_eq!(
        runs[0].runbook_fp,
        runbook::journal::fingerprint(
            &fs_err::read(repo("runbooks/gtm/new-mirror.yaml")).expect("the file")
        )
    );
    // It replicates, as the file does.
    lab.m("a", "set ^byname=42");
    crate::runbooks_gtm::eventually(&lab, "b", "write $get(^byname)", "42");
    // The same name again: the same built-in, nothing to change.
    let again = lab
        .rig
        .apply_file(Path::new("gtm/new-mirror.yaml"), &lab.rig.inventory(), &[]);
    crate::runbooks_gtm::assert_new_mirror_found_its_work_done(&again);
    let runs = runbook::journal::Journal::open(&again.state)
        .expect("journal")
        .runs()
        .expect("runs");
    assert!(
        runs.iter()
            .all(|r| r.runbook_file == "builtin:gtm/new-mirror")
    );
}
