//! The shared journal on a real PostgreSQL server, directly and through PgBouncer in
//! transaction pooling mode (issue 14): the schema migrates itself, a live lease refuses a
//! second controller and names its holder, an expired one is taken with a new epoch, and a
//! controller that lost its lease can neither write nor start anything.

use std::sync::Arc;
use std::time::Duration;

use runbook::execute::{RunLog, Shared};
use runbook::journal::postgres::Database;
use runbook::journal::postgres::lease::Holder;
use runbook::journal::{Entry, RunRecord, RunState};

use crate::postgres_server::Server;

fn record(id: &str) -> RunRecord {
    RunRecord {
        id: id.into(),
        operator: "ops".into(),
        started_at: "2026-12-03T14:00:00Z".into(),
        runbook_name: "r".into(),
        runbook_version: "1".into(),
        runbook_file: "r.yaml".into(),
        inventory_file: "i.yaml".into(),
        runbook_fp: "a".into(),
        inventory_fp: "b".into(),
        params_fp: "c".into(),
        params: "[]".into(),
        state: RunState::Running,
        finished_at: None,
        window: None,
    }
}

fn holder(name: &str, pid: i64) -> Holder {
    Holder {
        operator: name.into(),
        host: format!("{name}-laptop"),
        pid,
    }
}

fn started(action: &str) -> Entry {
    Entry::Started {
        action: action.into(),
        step: action.split('@').next().unwrap_or(action).into(),
        host: "a".into(),
        definition_fp: "d".into(),
        attempt: 1,
    }
}

fn finished(action: &str) -> Entry {
    Entry::Finished {
        action: action.into(),
        step: action.split('@').next().unwrap_or(action).into(),
        host: "a".into(),
        definition_fp: "d".into(),
        status: "ok".into(),
        rc: Some(0),
        duration: Duration::from_millis(5),
        message: None,
        output: Some(("out".into(), "\"masked\"".into())),
    }
}

/// Takes the lease of `run` for `who`, waiting for the live one to expire (bounded: the TTL
/// given is short, and the loop gives up after a minute).
fn take_after_expiry(db: &Database, run: &str, who: &Holder, ttl: Duration) -> i64 {
    for _ in 0..600 {
        match db.acquire(run, who, ttl).expect("acquire") {
            Ok(epoch) => return epoch,
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    panic!("the lease of {run} never expired");
}

#[test]
fn the_schema_migrates_itself_once_directly_and_through_pgbouncer() {
    let server = Server::start();
    let first = Database::open(&server.url()).expect("open");
    assert_eq!(first.version().expect("version"), 1);
    // Again through PgBouncer: nothing to migrate, the same version.
    let again = Database::open(&server.bouncer_url()).expect("open through pgbouncer");
    assert_eq!(again.version().expect("version"), 1);
    again.create_run(&record("r1")).expect("create");
    assert_eq!(
        first.runs().expect("runs"),
        vec![record("r1")],
        "one journal, whichever way it is reached"
    );
}

#[test]
fn a_live_lease_refuses_a_second_controller_and_an_expired_one_is_taken_with_a_new_epoch() {
    let server = Server::start();
    // Two controllers, one through PgBouncer in transaction mode.
    let one = Database::open(&server.url()).expect("open");
    let two = Database::open(&server.bouncer_url()).expect("open");
    one.create_run(&record("r1")).expect("create");
    let ttl = Duration::from_secs(2);
    let (alice, bob) = (holder("alice", 41), holder("bob", 42));
    let epoch1 = one
        .acquire("r1", &alice, ttl)
        .expect("acquire")
        .expect("free");
    assert_eq!(epoch1, 1);
    one.write("r1", epoch1, &[started("s@a")])
        .expect("alice writes");

    let held = two
        .acquire("r1", &bob, ttl)
        .expect("acquire")
        .expect_err("alice's lease is live");
    assert_eq!(held.holder, alice);
    assert_eq!(held.epoch, 1);
    let said = held.to_string();
    assert!(said.contains("alice on alice-laptop (pid 41)"), "{said}");
    assert!(said.contains("until 20"), "{said}");

    // Alice stops renewing (she died); once her lease expires Bob takes it, one epoch on.
    let epoch2 = take_after_expiry(&two, "r1", &bob, ttl);
    assert_eq!(epoch2, 2);
    let refused = one
        .write("r1", epoch1, &[finished("s@a")])
        .expect_err("alice's epoch no longer holds the run");
    assert!(
        refused.message.contains("taken by another controller"),
        "{refused}"
    );
    one.set_state("r1", epoch1, RunState::Failed)
        .expect_err("nor may she end it");
    two.write("r1", epoch2, &[finished("s@a")])
        .expect("bob writes");
    two.set_state("r1", epoch2, RunState::Succeeded)
        .expect("bob ends it");
    assert_eq!(
        one.action_statuses("r1").expect("actions"),
        vec![("s@a".to_owned(), "ok".to_owned())]
    );
    assert_eq!(
        one.run_record("r1").expect("run").map(|r| r.state),
        Some(RunState::Succeeded)
    );
    // Bob's release frees it at once for the next controller, one epoch on again.
    two.release("r1", epoch2).expect("release");
    assert_eq!(one.acquire("r1", &alice, ttl).expect("acquire"), Ok(3));
}

#[test]
fn a_controller_whose_lease_was_taken_starts_nothing_and_writes_nothing() {
    let server = Server::start();
    let db = Arc::new(Database::open(&server.bouncer_url()).expect("open"));
    db.create_run(&record("r1")).expect("create");
    let dir = tempfile::tempdir().expect("tempdir");
    let ttl = Duration::from_secs(3);
    let mut first = Shared::take(
        Arc::clone(&db),
        "r1",
        dir.path().join("runs/r1"),
        &holder("alice", 1),
        ttl,
    )
    .expect("take")
    .expect("free");
    first
        .still_held()
        .expect("held while its heartbeat renews it");
    first.commit(&[started("s@a")]).expect("written");
    // Its heartbeat keeps the lease: a second controller is refused, naming the holder.
    let other = Database::open(&server.url()).expect("open");
    let held = Shared::take(
        Arc::new(other),
        "r1",
        dir.path().join("b"),
        &holder("bob", 2),
        ttl,
    )
    .expect("take")
    .expect_err("live");
    assert_eq!(held.holder, holder("alice", 1));

    // Alice's process is frozen past her TTL (simulated: the row expires, her heartbeat
    // missed); Bob takes the run.
    let bob_db = Database::open(&server.url()).expect("open");
    bob_db.expire("r1").expect("expire");
    let bob = take_after_expiry(&bob_db, "r1", &holder("bob", 2), ttl);
    assert_eq!(bob, 2);
    let e = first
        .commit(&[finished("s@a")])
        .expect_err("her write is refused");
    assert!(e.to_string().contains("taken by another controller"), "{e}");
    let e = first.still_held().expect_err("and she starts nothing more");
    assert!(e.to_string().contains("nothing more starts"), "{e}");
    assert_eq!(
        bob_db.starts("r1").expect("starts"),
        vec![("s@a".to_owned(), 1)],
        "nothing of hers after the takeover"
    );
}
