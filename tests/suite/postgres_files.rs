//! An action's files in the shared journal (issue 14): they travel in the commit that holds the
//! action's result (one statement, under the same epoch fence and commit number), so they land
//! with it or not at all; a controller whose lease was taken stores neither.

use std::sync::Arc;
use std::time::Duration;

use runbook::event::Status;
use runbook::execute::{ActionFiles, RunLog, Shared};
use runbook::journal::RunState;
use runbook::journal::postgres::Database;

use crate::postgres::{finished, holder, record, started, take_after_expiry};
use crate::postgres_server::Server;

fn output(stdout: &str) -> ActionFiles<'_> {
    ActionFiles {
        stdout,
        stderr: "",
        status: Status::Ok,
        rc: Some(0),
        message: None,
        duration_secs: 0.005,
        attempts: 1,
    }
}

/// The files the journal holds for `run`: `(action, name, content)`.
fn kept(db: &Database, run: &str) -> Vec<(String, String, String)> {
    db.files(run)
        .expect("files")
        .into_iter()
        .map(|(a, n, c)| (a, n, String::from_utf8_lossy(&c).into_owned()))
        .collect()
}

#[test]
fn an_actions_files_land_with_its_result_and_a_stale_epoch_stores_neither() {
    let server = Server::start();
    let db = Arc::new(Database::open(&server.bouncer_url()).expect("open"));
    let reader = Database::open(&server.url()).expect("open");
    db.create_run(&record("r1")).expect("create");
    let dir = tempfile::tempdir().expect("tempdir");
    let ttl = Duration::from_secs(30);
    let mut log = Shared::take(
        Arc::clone(&db),
        "r1",
        dir.path().join("runs/r1"),
        &holder("alice", 1),
        ttl,
    )
    .expect("take")
    .expect("free");
    log.commit(&[started("s@a"), started("t@a")])
        .expect("written");
    log.keep_output("s@a", &output("s out\n")).expect("kept");
    assert_eq!(
        kept(&reader, "r1"),
        [],
        "nothing in the journal before the commit of the result"
    );
    log.commit(&[finished("s@a")]).expect("written");
    let files = kept(&reader, "r1");
    assert_eq!(
        files
            .iter()
            .map(|(a, n, _)| format!("{a}/{n}"))
            .collect::<Vec<_>>(),
        ["s@a/result.json", "s@a/stderr", "s@a/stdout"],
        "with its result"
    );
    assert_eq!(files[2].2, "s out\n");
    assert!(files[0].2.contains("\"status\":\"ok\""), "{}", files[0].2);

    // Her lease is taken while `t@a` runs: its result and its files are refused together.
    log.keep_output("t@a", &output("t out\n")).expect("kept");
    log.keep_artifact("t@a", "dump.txt", b"dump")
        .expect("kept locally");
    reader.expire("r1").expect("expire");
    assert_eq!(take_after_expiry(&reader, "r1", &holder("bob", 2), ttl), 2);
    let e = log
        .commit(&[finished("t@a")])
        .expect_err("her commit is refused");
    assert!(e.to_string().contains("taken by another controller"), "{e}");
    assert_eq!(kept(&reader, "r1"), files, "none of t@a's files");
    assert_eq!(
        reader.action_statuses("r1").expect("actions"),
        [("s@a", "ok"), ("t@a", "started")].map(|(a, s)| (a.to_owned(), s.to_owned())),
        "and not its result"
    );
    // Nor at the run's end, which is refused too.
    assert!(log.end(RunState::Failed).is_err());
    assert_eq!(kept(&reader, "r1"), files);
}

#[test]
fn files_kept_after_the_last_result_are_written_before_the_run_ends() {
    let server = Server::start();
    let db = Arc::new(Database::open(&server.url()).expect("open"));
    db.create_run(&record("r1")).expect("create");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Shared::take(
        Arc::clone(&db),
        "r1",
        dir.path().join("runs/r1"),
        &holder("alice", 1),
        Duration::from_secs(30),
    )
    .expect("take")
    .expect("free");
    log.commit(&[started("s@a")]).expect("written");
    log.keep_output("s@a", &output("late\n")).expect("kept");
    log.end(RunState::Failed).expect("ended");
    let reader = Database::open(&server.url()).expect("open");
    assert!(
        kept(&reader, "r1").contains(&("s@a".into(), "stdout".into(), "late\n".into())),
        "{:?}",
        kept(&reader, "r1")
    );
    assert_eq!(
        reader.run_record("r1").expect("run").map(|r| r.state),
        Some(RunState::Failed)
    );
}
