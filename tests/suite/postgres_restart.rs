//! The shared journal when its PostgreSQL server restarts or the connection drops in the middle
//! of a run (issue 14): the controller connects again and retries its writes for as long as its
//! lease could still be valid, never writing a commit twice, or stops before starting anything
//! unrecorded and says so. Every test stops and starts a real server (`pg_ctl`).

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use runbook::execute::{RunLog, Shared};
use runbook::journal::RunState;
use runbook::journal::postgres::{Database, Landed};

use crate::postgres::{
    finished, header, holder, record, run_shared_with, started, take_after_expiry,
};
use crate::postgres_server::Server;

fn one_each(actions: &[&str]) -> Vec<(String, i64)> {
    actions.iter().map(|a| ((*a).to_owned(), 1)).collect()
}

#[test]
fn a_commit_made_while_the_server_is_down_waits_for_it_and_lands_once() {
    let server = Server::start();
    for (run, url) in [("direct", server.url()), ("bounced", server.bouncer_url())] {
        let db = Arc::new(Database::open(&url).expect("open"));
        db.create_run(&record(run)).expect("create");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Shared::take(
            Arc::clone(&db),
            run,
            dir.path().join("run"),
            &holder("alice", 1),
            Duration::from_secs(30),
        )
        .expect("take")
        .expect("free");
        log.commit(&[started("s@a")]).expect("written");
        // The server goes away before the next commit and comes back a moment later: the
        // commit waits for it (retrying on new connections) instead of failing the run.
        server.stop_postgres();
        let commit = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(1500));
                server.start_postgres();
            });
            log.commit(&[finished("s@a"), started("t@a")])
        });
        commit.expect("the commit waited for the server and landed");
        log.still_held()
            .expect("the lease is renewed once the server is back");
        log.commit(&[finished("t@a")]).expect("and the run goes on");
        let reader = Database::open(&server.url()).expect("open");
        assert_eq!(
            reader.starts(run).expect("starts"),
            one_each(&["s@a", "t@a"]),
            "{run}: every action started once, nothing written twice"
        );
        assert_eq!(
            reader.action_statuses(run).expect("actions"),
            [("s@a", "ok"), ("t@a", "ok")]
                .map(|(a, s)| (a.to_owned(), s.to_owned()))
                .to_vec(),
            "{run}"
        );
    }
}

#[test]
fn a_connection_closed_by_a_server_restart_is_replaced_between_commits() {
    let server = Server::start();
    let db = Arc::new(Database::open(&server.url()).expect("open"));
    db.create_run(&record("r1")).expect("create");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Shared::take(
        Arc::clone(&db),
        "r1",
        dir.path().join("run"),
        &holder("alice", 1),
        Duration::from_secs(30),
    )
    .expect("take")
    .expect("free");
    log.commit(&[started("s@a")]).expect("written");
    // `pg_ctl restart`: the server closes every connection, and is up again at once.
    server.restart_postgres();
    log.commit(&[finished("s@a")])
        .expect("written on a new connection");
    assert_eq!(db.starts("r1").expect("starts"), one_each(&["s@a"]));
    assert_eq!(
        db.action_statuses("r1").expect("actions"),
        vec![("s@a".to_owned(), "ok".to_owned())]
    );
}

/// A TCP proxy before the server that, when armed, lets the next request through and drops
/// the connection instead of passing its answer on: a commit that lands whose reply is lost.
struct LossyProxy {
    port: u16,
    armed: Arc<AtomicBool>,
}

impl LossyProxy {
    fn start(to: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let armed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&armed);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let (mut c_in, mut s_out) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let flag = Arc::clone(&flag);
                std::thread::spawn(move || {
                    let (mut from, mut to) = (server, client);
                    let mut buf = [0_u8; 16 * 1024];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if flag.swap(false, Ordering::SeqCst) {
                            // The answer is lost with the connection.
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            break;
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Both);
                });
            }
        });
        Self { port, armed }
    }

    fn url(&self) -> String {
        format!(
            "postgres://runbook@127.0.0.1:{}/runbook?sslmode=disable",
            self.port
        )
    }
}

#[test]
fn a_commit_whose_reply_was_lost_is_retried_and_not_written_twice() {
    let server = Server::start();
    let proxy = LossyProxy::start(server.port);
    let db = Database::open(&proxy.url()).expect("open through the proxy");
    db.create_run(&record("r1")).expect("create");
    let epoch = db
        .acquire("r1", &holder("alice", 1), Duration::from_secs(30))
        .expect("acquire")
        .expect("free");
    let until = || Instant::now() + Duration::from_secs(20);
    assert_eq!(
        db.commit("r1", epoch, 1, &[started("s@a")], until())
            .expect("written"),
        Landed::Now
    );
    // The server applies commit 2, and its answer never comes back: the retry, on a new
    // connection, finds commit 2 recorded on the lease and writes nothing more.
    proxy.armed.store(true, Ordering::SeqCst);
    let entries = [finished("s@a"), started("t@a")];
    assert_eq!(
        db.commit("r1", epoch, 2, &entries, until())
            .expect("the retry succeeds"),
        Landed::Before,
        "the first try landed"
    );
    assert!(
        !proxy.armed.load(Ordering::SeqCst),
        "the answer was dropped"
    );
    // The same again (a controller retrying once more) is still a no-op.
    assert_eq!(
        db.commit("r1", epoch, 2, &entries, until()).expect("no-op"),
        Landed::Before
    );
    let reader = Database::open(&server.url()).expect("open");
    assert_eq!(
        reader.starts("r1").expect("starts"),
        one_each(&["s@a", "t@a"]),
        "no transition written twice"
    );
    let history: Vec<(String, String)> = reader.action_statuses("r1").expect("actions");
    assert_eq!(
        history,
        [("s@a", "ok"), ("t@a", "started")]
            .map(|(a, s)| (a.to_owned(), s.to_owned()))
            .to_vec()
    );
    assert_eq!(db.last_commit("r1", epoch).expect("last"), 2);
}

#[test]
fn a_controller_that_cannot_reach_the_journal_before_its_deadline_fails_the_write_and_starts_nothing()
 {
    let server = Server::start();
    let db = Arc::new(Database::open(&server.url()).expect("open"));
    db.create_run(&record("r1")).expect("create");
    let dir = tempfile::tempdir().expect("tempdir");
    let ttl = Duration::from_secs(2);
    let mut log = Shared::take(
        Arc::clone(&db),
        "r1",
        dir.path().join("run"),
        &holder("alice", 1),
        ttl,
    )
    .expect("take")
    .expect("free");
    log.commit(&[started("s@a")]).expect("written");
    server.stop_postgres();
    // Retried until the lease could no longer be trusted (bounded by the TTL), then refused.
    let e = log
        .commit(&[finished("s@a"), started("t@a")])
        .expect_err("the server stays away past the deadline");
    let said = e.to_string();
    assert!(
        said.contains("could not be reached for")
            && said.contains("until this controller's lease could no longer be trusted"),
        "{said}"
    );
    assert!(said.contains("postgres://runbook@127.0.0.1"), "{said}");
    let e = log.still_held().expect_err("it starts nothing more");
    assert!(e.to_string().contains("nothing more starts"), "{e}");
    // The server comes back: nothing of the failed commit is there, and another controller
    // takes the run over once the lease expired (one epoch on).
    server.start_postgres();
    let other = Database::open(&server.url()).expect("open");
    assert_eq!(other.starts("r1").expect("starts"), one_each(&["s@a"]));
    assert_eq!(take_after_expiry(&other, "r1", &holder("bob", 2), ttl), 2);
    log.commit(&[finished("s@a")])
        .expect_err("the first controller's late write is refused");
    assert_eq!(
        other.action_statuses("r1").expect("actions"),
        vec![("s@a".to_owned(), "started".to_owned())]
    );
}

/// Waits (bounded) until `action` is recorded as started.
fn wait_started(reader: &Database, run: &str, action: &str) {
    for _ in 0..600 {
        if reader
            .starts(run)
            .expect("starts")
            .iter()
            .any(|(a, _)| a == action)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{action} never started");
}

const TWO_STEPS: &str = "steps:\n  - {id: first, module: shell, on: a, with: {cmd: \"while [ ! -e $RUNBOOK_HOST_ROOT/go ]; do sleep 0.1; done; echo first >> $RUNBOOK_HOST_ROOT/marks\"}}\n  - {id: second, module: shell, on: a, needs: [first], with: {cmd: \"echo second >> $RUNBOOK_HOST_ROOT/marks\"}}\n";

#[test]
fn a_run_over_the_lab_goes_on_when_postgres_is_down_for_a_moment_mid_step() {
    let server = Server::start();
    let rig = crate::apply::Rig::new(1);
    let go = rig.root("a").join("go");
    let db = Arc::new(Database::open(&server.url()).expect("open"));
    let rb = header("restarted") + TWO_STEPS;
    let report = run_shared_with(&rig, &db, "r1", &rb, Duration::from_secs(30), || {
        let reader = Database::open(&server.url()).expect("open");
        wait_started(&reader, "r1", "first@a");
        drop(reader);
        // The server stops while `first` runs; `first` ends, and the commit of its result and
        // of `second`'s start waits for the server, which comes back a moment later.
        server.stop_postgres();
        fs_err::write(&go, "").expect("let the step end");
        std::thread::sleep(Duration::from_millis(1500));
        server.start_postgres();
    });
    assert_eq!(
        report.status,
        runbook::event::RunStatus::Succeeded,
        "{:?}",
        report.unrecorded
    );
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("marks")).expect("marks"),
        "first\nsecond\n",
        "each step once"
    );
    let reader = Database::open(&server.url()).expect("open");
    assert_eq!(
        reader.starts("r1").expect("starts"),
        one_each(&["first@a", "second@a"]),
        "every action started once"
    );
    assert_eq!(
        reader.run_record("r1").expect("run").map(|r| r.state),
        Some(RunState::Succeeded)
    );
}

#[test]
fn a_run_whose_journal_stays_down_past_the_lease_stops_before_starting_anything_unrecorded() {
    let server = Server::start();
    let rig = crate::apply::Rig::new(1);
    let go = rig.root("a").join("go");
    let db = Arc::new(Database::open(&server.url()).expect("open"));
    let rb = header("stranded") + TWO_STEPS;
    let report = run_shared_with(&rig, &db, "r1", &rb, Duration::from_secs(3), || {
        let reader = Database::open(&server.url()).expect("open");
        wait_started(&reader, "r1", "first@a");
        drop(reader);
        server.stop_postgres();
        fs_err::write(&go, "").expect("let the step end");
    });
    assert_eq!(report.status, runbook::event::RunStatus::Unrecorded);
    let why = report.unrecorded.clone().unwrap_or_default();
    // The first write after the server went away fails: the action's files or the commit.
    assert!(why.contains("could not be reached for"), "{why}");
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("marks")).expect("marks"),
        "first\n",
        "the step whose start could not be recorded never started"
    );
    // Once the server is back, the journal has the run as it was: `first` started (its host
    // keeps its record, from which a resume settles it), `second` never, the run not ended.
    server.start_postgres();
    let reader = Database::open(&server.url()).expect("open");
    assert_eq!(
        reader.action_statuses("r1").expect("actions"),
        vec![("first@a".to_owned(), "started".to_owned())]
    );
    assert_eq!(
        reader.run_record("r1").expect("run").map(|r| r.state),
        Some(RunState::Running)
    );
}
