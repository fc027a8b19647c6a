//! Two controllers on one shared journal (issue 14): two `runbook` processes with their own
//! working directories and homes, on the same PostgreSQL database and lab hosts. One is
//! killed or frozen in the middle of a run; the other is refused while the first one's lease
//! is live, then takes the run over, fences and settles what was in flight on the hosts, and
//! finishes it. Every step's effect happens exactly once.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use runbook::journal::postgres::Database;

use crate::postgres_server::Server;

/// One controller: a `runbook` with its own working directory and home.
pub struct Controller {
    pub dir: tempfile::TempDir,
    home: PathBuf,
    /// The lease's TTL it runs with, in seconds.
    ttl: &'static str,
}

impl Controller {
    pub fn new(ttl: &'static str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        fs_err::create_dir_all(&home).expect("home");
        Self { dir, home, ttl }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("HOME", &self.home)
            .env("RUNBOOK_LEASE_TTL", self.ttl)
            .env_remove("RUNBOOK_STATE")
            .env("NO_COLOR", "1");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("runbook runs")
    }

    /// Starts `args` in the background, its JSON events on a pipe.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runbook runs")
    }

    /// `args`, which must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// This controller's copy of the run directories (`./.runbook`).
    pub fn local_state(&self) -> PathBuf {
        self.dir.path().join(".runbook")
    }
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Reads `child`'s JSON events until `kind` of `action`, then waits until the action's command
/// runs on its host (its wrapper recorded it); returns the run id and the events seen.
pub fn until_running(
    child: &mut Child,
    root: &Path,
    kind: &str,
    action: &str,
) -> (String, Vec<serde_json::Value>) {
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        let event: serde_json::Value = serde_json::from_str(&line).expect("JSON event");
        let hit = event["event"] == kind && event["action"] == action;
        seen.push(event);
        if hit {
            let records = root.join(".runbook/actions");
            for _ in 0..400 {
                if crate::apply::all_files(&records)
                    .iter()
                    .any(|p| crate::apply::is_pgid_record(p, Some(action)))
                {
                    // Keep reading its output, so a controller let go on never blocks on it.
                    std::thread::spawn(move || lines.for_each(drop));
                    let run = seen[0]["run_id"].as_str().expect("run id").to_owned();
                    return (run, seen);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("{action} never ran on its host");
        }
    }
    panic!("never saw {kind} {action}: {seen:#?}");
}

/// Starts `args` on `controller` in the background, again after each refusal by a live lease
/// (exit 6), until it took `run`'s lease at `epoch` or more; returns it (still running) and the
/// refusals seen. At most two minutes.
pub fn spawn_until_taken(
    controller: &Controller,
    args: &[&str],
    db: &Database,
    run: &str,
    epoch: i64,
) -> (Child, Vec<String>) {
    let mut refusals = Vec::new();
    let mut child = controller.spawn(args);
    for _ in 0..2400 {
        if has_epoch(db, run, epoch) {
            return (child, refusals);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            assert_eq!(status.code(), Some(6), "only refused: {}", stderr(&out));
            refusals.push(stderr(&out));
            std::thread::sleep(Duration::from_millis(200));
            child = controller.spawn(args);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the lease of {run} never reached epoch {epoch}: {refusals:#?}");
}

fn has_epoch(db: &Database, run: &str, epoch: i64) -> bool {
    db.leases()
        .expect("leases")
        .iter()
        .any(|l| l.run == run && l.epoch >= epoch)
}

fn header(name: &str) -> String {
    format!("apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, version: 1.0.0}}\n")
}

/// `first` waits on the host for a file `go`, then marks; `second` marks after it.
pub(crate) fn gated(rig: &crate::apply::Rig) -> PathBuf {
    let rb = header("gated")
        + "steps:\n  - {id: first, module: shell, on: a, with: {cmd: \"while [ ! -e $RUNBOOK_HOST_ROOT/go ]; do sleep 0.1; done; echo first >> $RUNBOOK_HOST_ROOT/marks\"}}\n"
        + "  - {id: second, module: shell, on: a, needs: [first], with: {cmd: \"echo second >> $RUNBOOK_HOST_ROOT/marks\"}}\n";
    let file = rig.dir.path().join("gated.yaml");
    fs_err::write(&file, rb).expect("write");
    file
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{sig}");
}

#[test]
fn a_frozen_controller_is_taken_over_and_once_thawed_writes_nothing_and_starts_nothing() {
    let server = Server::start();
    let url = server.bouncer_url();
    let rig = crate::apply::Rig::new(1);
    let file = gated(&rig);
    let inventory = rig.inventory();
    // The first controller's lease lives 6 s without a heartbeat (the second is surely refused
    // while it is live), the second's 3 s.
    let (one, two) = (Controller::new("6"), Controller::new("3"));
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
    let mut first = one.spawn(&apply);
    let (run, _) = until_running(&mut first, &rig.root("a"), "action_started", "first@a");
    // Frozen mid-step (SIGSTOP), past its TTL: its heartbeat stops with it.
    signal(&first, "STOP");
    let resume = ["resume", &run, "--format", "json", "--state", &url];
    let db = Database::open(&server.url()).expect("open");
    let (second, refusals) = spawn_until_taken(&two, &resume, &db, &run, 2);
    // Refused while the frozen one's lease was live, naming it and when it expires.
    let said = refusals.first().expect("refused at first");
    assert!(
        said.contains(&format!("(pid {})", first.id())) && said.contains("until 20"),
        "{said}"
    );
    // The second controller holds the run and waits for the step still running on the host.
    fs_err::write(rig.root("a").join("go"), "").expect("let the step end");
    let out = second
        .wait_with_output()
        .expect("the second controller ends");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Thawed, the first controller finds its lease gone: nothing written, nothing started.
    signal(&first, "CONT");
    let out = first.wait_with_output().expect("the first controller ends");
    let said = stderr(&out);
    assert_eq!(code(&out), 6, "refused by the lease: {said}");
    assert!(
        said.contains(&format!("another controller took over run {run}"))
            && said.contains("started nothing more"),
        "{said}"
    );
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("marks")).expect("marks"),
        "first\nsecond\n",
        "each step's effect exactly once"
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
        Some(runbook::journal::RunState::Succeeded)
    );
}

#[test]
fn a_killed_controllers_gtm_switchover_is_taken_over_after_its_lease_expires_and_runs_nothing_twice()
 {
    use crate::runbooks_gtm_switchover as sw;
    let server = Server::start();
    let url = server.bouncer_url();
    let lab = crate::gtm::GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    sw::set_up(&lab);
    sw::stop_receiver(&lab, "b");
    sw::write_lost_updates(&lab);
    // The first controller's lease lives 10 s without a heartbeat, the second's 4 s.
    let (one, two) = (Controller::new("10"), Controller::new("4"));
    let file = sw::switchover_file();
    let inventory = lab.rig.inventory();
    let mut apply = vec![
        "apply",
        file.to_str().expect("utf-8"),
        "-i",
        inventory.to_str().expect("utf-8"),
        "--format",
        "json",
        "--state",
        &url,
    ];
    apply.extend(sw::args(&["-e", "allow_data_loss=true"]));

    // kill -9 of the first controller as soon as B's start as originating runs on B.
    let mut first = one.spawn(&apply);
    let (run, seen) = until_running(
        &mut first,
        &lab.rig.root("b"),
        "action_started",
        "switch.start-b-originating@b",
    );
    let pid = first.id();
    first.kill().expect("kill -9");
    let _ = first.wait();
    let started_first: Vec<String> = seen
        .iter()
        .filter(|e| e["event"] == "action_started")
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(started_first.contains(&"switch.stop-source-a@a".to_owned()));

    // The second controller is refused while the dead one's lease is live, then takes over.
    let db = Database::open(&server.url()).expect("open");
    let resume = ["resume", &run, "--format", "json", "--state", &url];
    let (second, refusals) = spawn_until_taken(&two, &resume, &db, &run, 2);
    let said = refusals.first().expect("refused while the lease was live");
    assert!(
        said.contains(&format!("run {run} is held by"))
            && said.contains(&format!("(pid {pid})"))
            && said.contains("until 20"),
        "names the holder and when it expires: {said}"
    );
    let out = second
        .wait_with_output()
        .expect("the second controller ends");
    let taken = crate::apply::Applied::from_output(&out, two.local_state());
    assert_eq!(taken.code, 0, "{}\n{:#?}", taken.stderr, taken.events);
    let resumed: Vec<String> = taken
        .events
        .iter()
        .filter(|e| e["event"] == "action_resumed")
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    for action in &started_first {
        assert!(resumed.contains(action), "{action} resumed: {resumed:?}");
        assert!(
            !taken.start_order().contains(action),
            "{action} ran twice: {:?}",
            taken.start_order()
        );
    }
    // GT.M's own logs: one start of B's Source Server to A, one of A's Receiver Server; one
    // rollback (no earlier lost-transaction file moved aside).
    assert_eq!(
        sw::starts(&lab, "b", "source_B_A.log", "Source Server with Pid"),
        1
    );
    assert_eq!(
        sw::starts(&lab, "a", "receive.log", "Receiver Server with Pid"),
        1
    );
    let moved: Vec<_> = std::fs::read_dir(lab.dir("a"))
        .expect("A's directory")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("gtm.lost."))
        .collect();
    assert!(moved.is_empty(), "rollback ran twice: {moved:?}");
    sw::assert_swapped(&lab);
    assert_eq!(sw::count(&lab, "b", "losttrans"), 50);
    sw::wait_count(&lab, "a", "losttrans", 50);
    assert_eq!(sw::count(&lab, "a", "A"), 100);

    // The rollback ran under the dead controller; its artifact is in the shared journal, so
    // the second one's report has it (fetched into its own run directory).
    let report = two.run(&["report", &run, "--format", "json", "--state", &url]);
    assert_eq!(code(&report), 0, "{}", stderr(&report));
    assert_eq!(
        sw::sets(&sw::artifact(
            &two.local_state(),
            "rollback-a@a",
            "gtm.lost"
        ))
        .len(),
        50
    );
    let json: serde_json::Value =
        serde_json::from_slice(&report.stdout).expect("the report is JSON");
    assert_eq!(json["state"], "succeeded");
    assert_eq!(
        json["starts"], 2,
        "two applies: the dead one's and the takeover"
    );
}

#[test]
fn lock_show_lists_the_lease_and_lock_steal_frees_it_fencing_its_live_holder_and_is_recorded() {
    let server = Server::start();
    let url = server.bouncer_url();
    let rig = crate::apply::Rig::new(1);
    let file = gated(&rig);
    let inventory = rig.inventory();
    let (one, two) = (Controller::new("30"), Controller::new("30"));
    let mut first = one.spawn(&[
        "apply",
        file.to_str().expect("utf-8"),
        "-i",
        inventory.to_str().expect("utf-8"),
        "--format",
        "json",
        "--state",
        &url,
    ]);
    let (run, _) = until_running(&mut first, &rig.root("a"), "action_started", "first@a");
    let pid = first.id();

    let shown = two.ok(&["lock", "show", "--state", &url]);
    let line = shown
        .lines()
        .find(|l| l.starts_with(&run))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        line.contains(&format!("(pid {pid})")) && line.contains(" 1 ") && line.ends_with("live"),
        "{shown}"
    );
    // While it is live, neither a resume nor an abandon from elsewhere touches the run.
    let out = two.run(&["resume", &run, "--state", &url]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("(pid {pid})")),
        "{}",
        stderr(&out)
    );
    let out = two.run(&[
        "apply",
        file.to_str().expect("utf-8"),
        "-i",
        inventory.to_str().expect("utf-8"),
        "--state",
        &url,
    ]);
    assert_eq!(
        code(&out),
        6,
        "apply of the same runbook and inventory: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("run {run} is held by")),
        "{}",
        stderr(&out)
    );
    let out = two.run(&["abandon", &run, "--state", &url]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be abandoned while a controller runs it"),
        "{}",
        stderr(&out)
    );

    let stolen = two.ok(&[
        "lock",
        "steal",
        &run,
        "--reason",
        "laptop lost at the airport",
        "--by",
        "bob",
        "--state",
        &url,
    ]);
    assert!(
        stolen.contains(&format!("(pid {pid}) (epoch 1)")),
        "{stolen}"
    );
    let shown = two.ok(&["lock", "show", "--state", &url]);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with(&run) && l.contains(" 2 ") && l.ends_with("expired")),
        "{shown}"
    );
    let status = two.ok(&["status", &run, "--state", &url]);
    assert!(
        status.contains(&format!("(pid {pid}) (epoch 1) by bob at "))
            && status.contains(": laptop lost at the airport"),
        "{status}"
    );

    // The next resume takes it at once; the holder it was stolen from (alive) is fenced.
    let db = Database::open(&server.url()).expect("open");
    let (second, refusals) = spawn_until_taken(
        &two,
        &["resume", &run, "--format", "json", "--state", &url],
        &db,
        &run,
        3,
    );
    assert!(
        refusals.is_empty(),
        "not refused after the steal: {refusals:#?}"
    );
    fs_err::write(rig.root("a").join("go"), "").expect("let the step end");
    let out = second.wait_with_output().expect("ends");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = first.wait_with_output().expect("ends");
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another controller took over"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("marks")).expect("marks"),
        "first\nsecond\n",
        "each step's effect exactly once"
    );
    // Recorded with the run: `status --format json` and the report.
    let json: serde_json::Value =
        serde_json::from_str(&two.ok(&["status", &run, "--format", "json", "--state", &url]))
            .expect("json");
    assert_eq!(json["steals"][0]["by"], "bob");
    assert_eq!(json["steals"][0]["epoch"], 1);
    let report = two.ok(&["report", &run, "--state", &url]);
    assert!(
        report.contains("## Lease steals") && report.contains("laptop lost at the airport"),
        "{report}"
    );
    // Nothing to steal, and no leases in a state directory: each says so.
    let out = two.run(&["lock", "steal", "nope", "--reason", "x", "--state", &url]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("has no lease"), "{}", stderr(&out));
    let out = two.run(&["lock", "show", "--state", "somewhere"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no leases to show or steal"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn approve_resolve_and_abandon_work_on_the_shared_journal_from_another_controller() {
    let server = Server::start();
    let url = server.bouncer_url();
    let rig = crate::apply::Rig::new(1);
    let rb = |name: &str| {
        header(name)
            + "steps:\n  - {id: prep, module: shell, on: a, with: {cmd: \"echo prep >> $RUNBOOK_HOST_ROOT/marks\"}}\n"
            + "  - {id: confirm, module: manual, on: a, needs: [prep], with: {instructions: \"Point the application at B.\"}}\n"
            + "  - {id: after, module: shell, on: a, needs: [confirm], with: {cmd: \"echo after >> $RUNBOOK_HOST_ROOT/marks\"}}\n"
    };
    let inventory = rig.inventory();
    let (one, two) = (Controller::new("30"), Controller::new("30"));
    let apply = |file: &Path| {
        let out = one.run(&[
            "apply",
            file.to_str().expect("utf-8"),
            "-i",
            inventory.to_str().expect("utf-8"),
            "--format",
            "json",
            "--state",
            &url,
        ]);
        assert_eq!(code(&out), 3, "awaiting approval: {}", stderr(&out));
        let first = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
            .expect("an event");
        first["run_id"].as_str().expect("run id").to_owned()
    };
    let file = rig.dir.path().join("approve.yaml");
    fs_err::write(&file, rb("approved")).expect("write");
    let run = apply(&file);
    // Approved, resumed and resolved from the other controller.
    let said = two.ok(&[
        "approve", &run, "confirm", "--by", "alice", "--reason", "checked", "--state", &url,
    ]);
    assert!(said.contains(&format!("--state '{url}'")), "{said}");
    two.ok(&["resume", &run, "--state", &url]);
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("marks")).expect("marks"),
        "prep\nafter\n"
    );
    two.ok(&[
        "resolve", &run, "prep@a", "--done", "--by", "carol", "--state", &url,
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&two.ok(&["report", &run, "--format", "json", "--state", &url]))
            .expect("json");
    assert_eq!(report["state"], "succeeded");
    assert_eq!(report["approvals"][0]["by"], "alice");
    assert_eq!(report["decisions"][0]["by"], "carol");
    // `plan` estimates from the runs of the shared journal (`RUNBOOK_STATE` is the URL).
    let out = one
        .command(&[
            "plan",
            file.to_str().expect("utf-8"),
            "-i",
            inventory.to_str().expect("utf-8"),
        ])
        .env("RUNBOOK_STATE", &url)
        .output()
        .expect("plan runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains(" prep ") && l.contains("from earlier runs")),
        "{text}"
    );
    // A second run, waiting at the approval, abandoned from the other controller.
    let other = rig.dir.path().join("abandon.yaml");
    fs_err::write(&other, rb("abandoned")).expect("write");
    let run2 = apply(&other);
    two.ok(&["abandon", &run2, "--state", &url]);
    let json: serde_json::Value =
        serde_json::from_str(&two.ok(&["status", &run2, "--format", "json", "--state", &url]))
            .expect("json");
    assert_eq!(json["state"], "abandoned");
    let out = two.run(&["resume", &run2, "--state", &url]);
    assert_eq!(code(&out), 2, "nothing to resume: {}", stderr(&out));
}

#[test]
fn a_host_stays_locked_for_the_run_when_the_controller_it_was_taken_from_dies_after_the_takeover() {
    let server = Server::start();
    let url = server.bouncer_url();
    let rig = crate::apply::Rig::new(1);
    let file = gated(&rig);
    let inventory = rig.inventory();
    let (one, two) = (Controller::new("3"), Controller::new("3"));
    let mut first = one.spawn(&[
        "apply",
        file.to_str().expect("utf-8"),
        "-i",
        inventory.to_str().expect("utf-8"),
        "--format",
        "json",
        "--state",
        &url,
    ]);
    let (run, _) = until_running(&mut first, &rig.root("a"), "action_started", "first@a");
    signal(&first, "STOP");
    let db = Database::open(&server.url()).expect("open");
    let (mut second, _) = spawn_until_taken(
        &two,
        &["resume", &run, "--format", "json", "--state", &url],
        &db,
        &run,
        2,
    );
    // The second controller is past the hosts' locks once its run has started: it found the
    // host locked by the run itself (the frozen controller's connection).
    let mut lines = BufReader::new(second.stdout.take().expect("piped")).lines();
    let started = lines.next().expect("an event").expect("a line");
    assert!(started.contains("run_started"), "{started}");
    std::thread::spawn(move || lines.for_each(drop));
    // The frozen controller dies: its connection's lock ends, and the host stays locked for
    // the run, now on the second controller's connection.
    first.kill().expect("kill -9");
    let _ = first.wait();
    let holders = rig.root("a").join(".runbook/holders");
    let mine = format!("\t{}\t", second.id());
    for _ in 0..400 {
        let recorded = crate::apply::all_files(&holders)
            .iter()
            .any(|p| fs_err::read_to_string(p).is_ok_and(|t| t.contains(&mine)));
        if recorded {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Another run on the same host (its own runbook and state directory) is refused.
    let other = rig.apply(
        &(header("other") + "steps:\n  - {id: touch, module: shell, on: a, with: {cmd: \"echo other >> $RUNBOOK_HOST_ROOT/marks\"}}\n"),
        &inventory,
        &[],
    );
    assert_eq!(other.code, 6, "the host is locked: {}", other.stderr);
    assert!(
        other.stderr.contains(&run),
        "names the run holding it: {}",
        other.stderr
    );
    fs_err::write(rig.root("a").join("go"), "").expect("let the step end");
    let out = second.wait_with_output().expect("ends");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fs_err::read_to_string(rig.root("a").join("marks")).expect("marks"),
        "first\nsecond\n"
    );
}
