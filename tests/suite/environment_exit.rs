//! Exit 7: the environment failed the command, not its input. A journal that is there but
//! cannot be read is neither an invalid input (2) nor a failed record of a run (5).

use crate::support::run;

const ENVIRONMENT: i32 = 7;
const INVALID_INPUT: i32 = 2;

/// A state directory whose journal is not a database: every reading command says why and
/// exits 7; a state directory with no journal at all stays exit 2 (the run is elsewhere).
#[test]
fn a_corrupt_journal_exits_7_and_a_missing_one_exits_2() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = dir.path().join("state");
    fs_err::create_dir(&state).expect("the state directory");
    fs_err::write(
        state.join("journal.db"),
        "this is not a SQLite database, only text where the journal should be\n",
    )
    .expect("the corrupt journal");
    let state_arg = state.to_str().expect("a UTF-8 temporary path");
    for args in [
        vec!["runs", "--state", state_arg],
        vec!["status", "--state", state_arg],
        vec!["abandon", "r1", "--state", state_arg],
    ] {
        let out = run(&args);
        assert_eq!(
            out.code,
            ENVIRONMENT,
            "`runbook {}` on a corrupt journal: {out:?}",
            args.join(" ")
        );
        assert!(
            out.stderr.contains("journal.db") && out.stderr.contains("not a database"),
            "the error names the journal and why: {}",
            out.stderr
        );
        assert_eq!(
            out.stderr.matches("error:").count(),
            1,
            "the error is printed once: {}",
            out.stderr
        );
    }
    let missing = dir.path().join("none");
    let out = run(&["runs", "--state", missing.to_str().expect("UTF-8")]);
    assert_eq!(out.code, INVALID_INPUT, "no journal at all: {out:?}");
}

/// `plan --out` into a directory that does not exist: the saved plan cannot be written (7).
#[test]
fn a_saved_plan_that_cannot_be_written_exits_7() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out_file = dir.path().join("no-such-dir").join("plan.json");
    let out = run(&[
        "plan",
        "tests/fixtures/demo.yaml",
        "-i",
        "tests/fixtures/demo-inventory.yaml",
        "--out",
        out_file.to_str().expect("UTF-8"),
    ]);
    assert_eq!(out.code, ENVIRONMENT, "`plan --out` unwritable: {out:?}");
    assert!(out.stderr.contains("no-such-dir"), "{}", out.stderr);
}
