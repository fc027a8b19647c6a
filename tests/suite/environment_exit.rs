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

/// A state directory whose journal opens but fails mid-read: `damage` replaces tables with
/// ones that lack columns the reads select (a journal written by something else, a damaged
/// file). The columns the opening checks, and the index on `actions`, are there.
fn journal_failing_mid_read(dir: &std::path::Path, damage: &str) -> std::path::PathBuf {
    let state = dir.join("state");
    fs_err::create_dir(&state).expect("the state directory");
    let conn = rusqlite::Connection::open(state.join("journal.db")).expect("the journal");
    conn.execute_batch(damage).expect("the damaged tables");
    state
}

/// Every reading command on a journal that fails mid-read says why and exits 7; none of them
/// passes the failure off as "no such run" (exit 2), which would send the operator looking for
/// the run elsewhere.
fn assert_environment_failures(state: &std::path::Path, commands: &[&[&str]]) {
    let state_arg = state.to_str().expect("a UTF-8 temporary path");
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["--state", state_arg]);
        let out = run(&args);
        assert_eq!(
            out.code,
            ENVIRONMENT,
            "`runbook {}` on a journal that fails mid-read: {out:?}",
            args.join(" ")
        );
        assert!(
            out.stderr.contains("journal.db") && out.stderr.contains("no such column"),
            "the error names the journal and why: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("no such run") && !out.stderr.contains("no run"),
            "a read failure is not a missing run: {}",
            out.stderr
        );
        assert_eq!(
            out.stderr.matches("error:").count(),
            1,
            "the error is printed once: {}",
            out.stderr
        );
    }
}

/// The runs cannot be read: looking a run up fails, for every command that does.
#[test]
fn a_journal_whose_runs_cannot_be_read_exits_7_not_no_such_run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = journal_failing_mid_read(
        dir.path(),
        "CREATE TABLE runs (id TEXT PRIMARY KEY, window TEXT, generation INTEGER NOT NULL DEFAULT 0);",
    );
    assert_environment_failures(
        &state,
        &[
            &["status"],
            &["status", "r1"],
            &["report"],
            &["report", "r1"],
            &["abandon", "r1"],
            &[
                "approve", "r1", "gate", "--by", "ops", "--reason", "checked",
            ],
        ],
    );
}

/// The run is there but its actions cannot be read: `status` does not show it with no
/// actions, `approve` and `resolve` do not say it has no such step or action.
#[test]
fn a_journal_whose_actions_cannot_be_read_exits_7() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = journal_failing_mid_read(
        dir.path(),
        "CREATE TABLE runs (id TEXT PRIMARY KEY, operator TEXT NOT NULL, started_at TEXT NOT NULL,
             runbook_name TEXT NOT NULL, runbook_version TEXT NOT NULL, runbook_file TEXT NOT NULL,
             inventory_file TEXT NOT NULL, runbook_fp TEXT NOT NULL, inventory_fp TEXT NOT NULL,
             params_fp TEXT NOT NULL, params TEXT NOT NULL, state TEXT NOT NULL, finished_at TEXT,
             window TEXT, generation INTEGER NOT NULL DEFAULT 0);
         INSERT INTO runs VALUES ('r1', 'ops', '2026-12-04T00:00:00Z', 'demo', '1', 'demo.yaml',
             'inventory.yaml', '', '', '', '{}', 'waiting', NULL, NULL, 0);
         CREATE TABLE actions (step TEXT NOT NULL, status TEXT NOT NULL);",
    );
    assert_environment_failures(
        &state,
        &[
            &["status", "r1"],
            &[
                "approve", "r1", "gate", "--by", "ops", "--reason", "checked",
            ],
            &["resolve", "r1", "a@h", "--done"],
        ],
    );
}

/// A journal that reads fine but does not hold the run: "no such run" stays exit 2.
#[test]
fn a_run_the_journal_does_not_hold_stays_exit_2() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = dir.path().join("state");
    fs_err::create_dir(&state).expect("the state directory");
    // Opening the journal once creates it, empty.
    drop(rusqlite::Connection::open(state.join("journal.db")).expect("the journal"));
    let state_arg = state.to_str().expect("a UTF-8 temporary path");
    for (args, said) in [
        (vec!["status", "r1", "--state", state_arg], "no such run"),
        (vec!["report", "r1", "--state", state_arg], "no run `r1`"),
        (vec!["report", "--state", state_arg], "no run recorded"),
        (vec!["abandon", "r1", "--state", state_arg], "no run `r1`"),
    ] {
        let out = run(&args);
        assert_eq!(
            out.code,
            INVALID_INPUT,
            "`runbook {}` of a run not recorded: {out:?}",
            args.join(" ")
        );
        assert!(out.stderr.contains(said), "says `{said}`: {}", out.stderr);
    }
}
