//! `runbook apply --state postgres://…` (through PgBouncer) when the PostgreSQL server goes
//! away in the middle of a step (issue 14): for a moment, the run waits, retries its writes and
//! succeeds; past the lease, it stops (exit 5) before starting anything unrecorded, and
//! `runbook resume` completes it once the server is back. Every step's effect exactly once.

use std::time::Duration;

use runbook::journal::RunState;
use runbook::journal::postgres::Database;

use crate::postgres_server::Server;
use crate::postgres_takeover::{Controller, code, gated, stderr, until_running};

#[test]
fn an_apply_on_postgres_goes_on_and_succeeds_when_the_server_restarts_mid_step() {
    let server = Server::start();
    let url = server.bouncer_url();
    let rig = crate::apply::Rig::new(1);
    let file = gated(&rig);
    let inventory = rig.inventory();
    let one = Controller::new("30");
    let apply = [
        "apply",
        file.to_str().expect("utf-8"),
        "-i",
        inventory.to_str().expect("utf-8"),
        "--format",
        "json",
        "--state",
        &url,
    ];
    let mut child = one.spawn(&apply);
    let (run, _) = until_running(&mut child, &rig.root("a"), "action_started", "first@a");
    // The server goes away while `first` runs on its host; `first` ends, and the commit of its
    // result and of `second`'s start wait for the server, which comes back a moment later.
    server.stop_postgres();
    fs_err::write(rig.root("a").join("go"), "").expect("let the step end");
    std::thread::sleep(Duration::from_millis(1500));
    server.start_postgres();
    let out = child.wait_with_output().expect("the apply ends");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("marks")).expect("marks"),
        "first\nsecond\n",
        "each step's effect exactly once"
    );
    let db = Database::open(&server.url()).expect("open");
    assert_eq!(
        db.starts(&run).expect("starts"),
        vec![("first@a".to_owned(), 1), ("second@a".to_owned(), 1)],
        "every action started once"
    );
    assert_eq!(
        db.run_record(&run).expect("run").map(|r| r.state),
        Some(RunState::Succeeded)
    );
}

#[test]
fn an_apply_on_postgres_down_past_its_lease_exits_5_unstarted_and_resume_completes_it() {
    let server = Server::start();
    let url = server.bouncer_url();
    let rig = crate::apply::Rig::new(1);
    let file = gated(&rig);
    let inventory = rig.inventory();
    // A 3 s lease: the controller's writes give up at its self-fence deadline.
    let one = Controller::new("3");
    let apply = [
        "apply",
        file.to_str().expect("utf-8"),
        "-i",
        inventory.to_str().expect("utf-8"),
        "--format",
        "json",
        "--state",
        &url,
    ];
    let mut child = one.spawn(&apply);
    let (run, _) = until_running(&mut child, &rig.root("a"), "action_started", "first@a");
    server.stop_postgres();
    fs_err::write(rig.root("a").join("go"), "").expect("let the step end");
    let out = child.wait_with_output().expect("the apply ends");
    let said = stderr(&out);
    assert_eq!(code(&out), 5, "not recorded: {said}");
    assert!(said.contains("could not be reached for"), "{said}");
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("marks")).expect("marks"),
        "first\n",
        "the step whose start could not be recorded never started"
    );

    // The server is back: a resume (here from the same controller, its lease long expired)
    // settles `first` from its host's record and runs `second` once.
    server.start_postgres();
    // PgBouncer refuses logins for `server_login_retry` after the failed ones of the outage:
    // wait until it lets one through, as an operator retrying would.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while Database::open(&url).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "PgBouncer never let a login through"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let resume = ["resume", &run, "--format", "json", "--state", &url];
    let out = one.run(&resume);
    let resumed = crate::apply::Applied::from_output(&out, one.local_state());
    assert_eq!(resumed.code, 0, "{}\n{:#?}", resumed.stderr, resumed.events);
    assert!(
        resumed
            .events
            .iter()
            .any(|e| e["event"] == "action_resumed" && e["action"] == "first@a"),
        "first settled, not run again: {:#?}",
        resumed.events
    );
    assert_eq!(resumed.start_order(), vec!["second@a".to_owned()]);
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("marks")).expect("marks"),
        "first\nsecond\n",
        "each step's effect exactly once"
    );
    let db = Database::open(&server.url()).expect("open");
    assert_eq!(
        db.starts(&run).expect("starts"),
        vec![("first@a".to_owned(), 1), ("second@a".to_owned(), 1)],
        "every action started once over both controllers' processes"
    );
    assert_eq!(
        db.action_statuses(&run).expect("actions"),
        vec![
            ("first@a".to_owned(), "changed".to_owned()),
            ("second@a".to_owned(), "changed".to_owned())
        ]
    );
    assert_eq!(
        db.run_record(&run).expect("run").map(|r| r.state),
        Some(RunState::Succeeded)
    );
}
