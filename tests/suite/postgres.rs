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

pub(crate) fn record(id: &str) -> RunRecord {
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

pub(crate) fn holder(name: &str, pid: i64) -> Holder {
    Holder {
        operator: name.into(),
        host: format!("{name}-laptop"),
        pid,
    }
}

pub(crate) fn started(action: &str) -> Entry {
    Entry::Started {
        action: action.into(),
        step: action.split('@').next().unwrap_or(action).into(),
        host: "a".into(),
        definition_fp: "d".into(),
        attempt: 1,
    }
}

pub(crate) fn finished(action: &str) -> Entry {
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
pub(crate) fn take_after_expiry(db: &Database, run: &str, who: &Holder, ttl: Duration) -> i64 {
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
    assert_eq!(
        first.version().expect("version"),
        runbook::journal::postgres::SCHEMA_VERSION
    );
    // Again through PgBouncer: nothing to migrate, the same version.
    let again = Database::open(&server.bouncer_url()).expect("open through pgbouncer");
    assert_eq!(
        again.version().expect("version"),
        runbook::journal::postgres::SCHEMA_VERSION
    );
    again.create_run(&record("r1")).expect("create");
    assert_eq!(
        first.runs().expect("runs"),
        vec![record("r1")],
        "one journal, whichever way it is reached"
    );
}

#[test]
fn the_journal_tests_of_both_backends_pass_on_postgres_through_pgbouncer() {
    // The same tests the SQLite journal passes (`journal::store::tests`), each reopen a new
    // connection through PgBouncer in transaction mode.
    let server = Server::start();
    let url = server.bouncer_url();
    runbook::journal::conformance::all(&|| {
        Box::new(Database::open(&url).expect("open")) as Box<dyn runbook::journal::Backend>
    });
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

/// Compiles `runbook` against the rig's lab and runs it through a [`Shared`] record in the
/// journal at `url`; `during` runs on this thread while the run goes on.
fn run_shared(
    rig: &crate::apply::Rig,
    db: &Arc<Database>,
    run_id: &str,
    runbook: &str,
    during: impl FnOnce(),
) -> runbook::execute::Report {
    run_shared_with(rig, db, run_id, runbook, Duration::from_secs(30), during)
}

/// [`run_shared`] under a lease of `ttl`.
pub(crate) fn run_shared_with(
    rig: &crate::apply::Rig,
    db: &Arc<Database>,
    run_id: &str,
    runbook: &str,
    ttl: Duration,
    during: impl FnOnce(),
) -> runbook::execute::Report {
    use runbook::compile::{self, Overrides};
    use runbook::transport::{Endpoint, Transports};
    let parsed = runbook::parse::parse_runbook("runbook.yaml", runbook.to_owned());
    let rb = parsed.runbook.expect("the runbook parses");
    let inventory = runbook::inventory::Inventory::load(&rig.inventory()).expect("lab inventory");
    let registry = runbook_modules::Registry::builtin();
    let plan = compile::compile(compile::Input {
        runbook: &rb,
        inventory: &inventory,
        registry: &registry,
        overrides: &Overrides::default(),
        history: None,
    })
    .expect("compiles");
    let mut run = record(run_id);
    run.runbook_name.clone_from(&plan.runbook.name);
    db.create_run(&run).expect("create");
    let run_dir = rig.dir.path().join("runs").join(run_id);
    let log = Shared::take(Arc::clone(db), run_id, &run_dir, &holder("alice", 1), ttl)
        .expect("take")
        .expect("free");
    let transports = Arc::new(
        Transports::new(inventory.hosts.iter().map(Endpoint::from_host).collect())
            .expect("transports"),
    );
    let runner = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let mut opts = runbook::execute::Options::new(run.id.clone(), run_dir);
            opts.generation = 1;
            let mut sink = runbook::event::Recorder::default();
            let report = runbook::execute::execute_with(
                Arc::new(plan),
                &registry,
                transports.clone(),
                &opts,
                Box::new(log),
                &mut sink,
            )
            .await;
            if let Ok(t) = Arc::try_unwrap(transports) {
                t.close().await;
            }
            report
        })
    });
    during();
    runner.join().expect("the run does not panic")
}

pub(crate) fn header(name: &str) -> String {
    format!("apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, version: 1.0.0}}\n")
}

#[test]
fn a_run_over_the_lab_is_recorded_in_postgres_directly_and_through_pgbouncer() {
    let server = Server::start();
    let rig = crate::apply::Rig::new(2);
    let rb = header("shared")
        + "steps:\n  - {id: mark, module: shell, on: all, with: {cmd: \"echo once >> $RUNBOOK_HOST_ROOT/marks\"}}\n"
        + "  - {id: after, module: shell, on: all, needs: [mark], with: {cmd: \"echo after >> $RUNBOOK_HOST_ROOT/marks\"}}\n";
    for (run_id, url) in [("direct", server.url()), ("bounced", server.bouncer_url())] {
        let db = Arc::new(Database::open(&url).expect("open"));
        let report = run_shared(&rig, &db, run_id, &rb, || {});
        assert_eq!(
            report.status,
            runbook::event::RunStatus::Succeeded,
            "{run_id}: {:?}",
            report.unrecorded
        );
        let reader = Database::open(&server.url()).expect("open");
        assert_eq!(
            reader.action_statuses(run_id).expect("actions"),
            ["after@a", "after@b", "mark@a", "mark@b"]
                .map(|a| (a.to_owned(), "changed".to_owned()))
                .to_vec(),
            "{run_id}"
        );
        assert!(
            reader
                .starts(run_id)
                .expect("starts")
                .iter()
                .all(|(_, n)| *n == 1),
            "{run_id}: every action started once"
        );
        assert_eq!(
            reader.run_record(run_id).expect("run").map(|r| r.state),
            Some(RunState::Succeeded),
            "{run_id}"
        );
    }
    for host in ["a", "b"] {
        assert_eq!(
            fs_err::read_to_string(rig.root(host).join("marks")).expect("marks"),
            "once\nafter\nonce\nafter\n",
            "each of the two runs did each step once on {host}"
        );
    }
    // `status` and `runs` read the shared journal (here through PgBouncer), from anywhere.
    let url = server.bouncer_url();
    let status = crate::support::run(&["status", "direct", "--format", "json", "--state", &url]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(json["state"], "succeeded");
    assert_eq!(json["counts"]["changed"], 4);
    assert_eq!(
        json["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .map(|a| a["action"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["mark@a", "mark@b", "after@a", "after@b"],
        "in the order they were first recorded"
    );
    let runs = crate::support::run(&["runs", "--state", &url]);
    assert_eq!(runs.code, 0, "{}", runs.stderr);
    let ids: Vec<&str> = runs
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        ids,
        ["direct", "bounced"],
        "newest first, then by id:\n{}",
        runs.stdout
    );
}

#[test]
fn a_run_whose_lease_is_taken_mid_step_records_nothing_more_and_starts_nothing_more() {
    let server = Server::start();
    let rig = crate::apply::Rig::new(1);
    let go = rig.root("a").join("go");
    let rb = header("fenced")
        + "steps:\n  - {id: first, module: shell, on: a, with: {cmd: \"while [ ! -e $RUNBOOK_HOST_ROOT/go ]; do sleep 0.1; done; echo first >> $RUNBOOK_HOST_ROOT/marks\"}}\n"
        + "  - {id: second, module: shell, on: a, needs: [first], with: {cmd: \"echo second >> $RUNBOOK_HOST_ROOT/marks\"}}\n";
    let db = Arc::new(Database::open(&server.bouncer_url()).expect("open"));
    let other = Database::open(&server.url()).expect("open");
    let report = run_shared(&rig, &db, "r1", &rb, || {
        // Once `first` is recorded as started, the lease is taken from under the run.
        for _ in 0..600 {
            if other
                .starts("r1")
                .expect("starts")
                .iter()
                .any(|(a, _)| a == "first@a")
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        other.expire("r1").expect("expire");
        assert_eq!(
            take_after_expiry(&other, "r1", &holder("bob", 2), Duration::from_secs(30)),
            2
        );
        fs_err::write(&go, "").expect("let the step end");
    });
    assert_eq!(report.status, runbook::event::RunStatus::Unrecorded);
    let why = report.unrecorded.clone().unwrap_or_default();
    assert!(why.contains("taken by another controller"), "{why}");
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("marks")).expect("marks"),
        "first\n",
        "the step after the lost lease never started"
    );
    assert_eq!(
        other.action_statuses("r1").expect("actions"),
        vec![("first@a".to_owned(), "started".to_owned())],
        "nothing written after the takeover"
    );
}

#[test]
fn a_controller_that_cannot_renew_its_lease_starts_nothing_before_it_could_expire() {
    let server = Server::start();
    let db = Arc::new(Database::open(&server.url()).expect("open"));
    db.create_run(&record("r1")).expect("create");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Shared::take(
        Arc::clone(&db),
        "r1",
        dir.path().join("runs/r1"),
        &holder("alice", 1),
        Duration::from_secs(2),
    )
    .expect("take")
    .expect("free");
    log.still_held().expect("held");
    // The server goes away: no renewal can succeed, and the controller fences itself once its
    // last renewal is the TTL less the margin old (bounded wait, not a timed assertion).
    server.stop_postgres();
    let mut fenced = None;
    for _ in 0..600 {
        if let Err(e) = log.still_held() {
            fenced = Some(e.to_string());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let why = fenced.expect("it fences itself");
    assert!(
        why.contains("could not be renewed before its TTL less the margin; nothing more starts"),
        "{why}"
    );
    assert!(
        why.contains("postgres://runbook@127.0.0.1"),
        "names the journal: {why}"
    );
}
