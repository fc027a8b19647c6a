//! The scheduler with a fake transport ([`super::super::fake`]): ordering and failure policy
//! without SSH.

use std::sync::Mutex;

use super::*;
use crate::event::Recorder;
use crate::execute::RecordError;
use crate::journal::RunState;

use super::super::fake::{Fake, plan, plan_on, run_with};

fn run(plan: &Arc<Plan>, fake: &Arc<Fake>) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    run_with(plan, fake, &Options::new("r", dir.path())).0
}

#[test]
fn a_failure_blocks_its_dependents_and_independent_lanes_go_on() {
    let plan = plan(
        "phases:\n  - name: p\n    order: per_host\n    steps:\n      - {id: one, module: shell, on: all, with: {cmd: \"{{ 'fail' if host.name == 'a' else 'ok' }}\"}}\n      - {id: two, module: shell, on: all, with: {cmd: next}}\n",
    );
    let fake = Arc::new(Fake::default());
    let report = run(&plan, &fake);
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.status_of("one@a"), Some(Status::Failed));
    assert_eq!(report.status_of("two@a"), Some(Status::Blocked));
    assert_eq!(report.status_of("two@b"), Some(Status::Changed));
    assert!(
        !fake
            .ran
            .lock()
            .expect("lock")
            .contains(&"next@0".to_owned())
    );
}

#[test]
fn until_retries_with_the_fresh_output_and_unreachable_is_never_retried() {
    let plan = plan(
        "steps:\n  - {id: poll, module: shell, on: a, register: c, retries: 5, delay: 0s, until: \"c.stdout | int >= 3\", with: {cmd: count}}\n  - {id: gone, module: shell, on: b, retries: 5, delay: 0s, with: {cmd: drop}}\n",
    );
    let fake = Arc::new(Fake::default());
    let report = run(&plan, &fake);
    assert_eq!(report.status_of("poll@a"), Some(Status::Changed));
    let ran = fake.ran.lock().expect("lock").clone();
    assert_eq!(
        ran.iter().filter(|r| r.starts_with("count")).count(),
        3,
        "stops as soon as `until` holds"
    );
    assert_eq!(report.status_of("gone@b"), Some(Status::Unreachable));
    assert_eq!(
        ran.iter().filter(|r| r.starts_with("drop")).count(),
        1,
        "an unreachable host is not retried"
    );
}

/// A journal in `dir` with run `r` begun, for the executor to record into.
fn journal(dir: &std::path::Path) -> Arc<Mutex<crate::journal::Journal>> {
    let j = crate::journal::Journal::open(dir).expect("open the journal");
    j.create_run(&crate::journal::RunRecord {
        id: "r".into(),
        operator: "test".into(),
        started_at: "2026-11-23T10:00:00Z".into(),
        runbook_name: "t".into(),
        runbook_version: "1.0.0".into(),
        runbook_file: "/t.yaml".into(),
        inventory_file: "/i.yaml".into(),
        runbook_fp: String::new(),
        inventory_fp: String::new(),
        params_fp: String::new(),
        params: "[]".into(),
        state: RunState::Running,
        finished_at: None,
        window: None,
    })
    .expect("create the run");
    Arc::new(Mutex::new(j))
}

fn recorded(journal: &Mutex<crate::journal::Journal>) -> BTreeMap<String, String> {
    journal
        .lock()
        .expect("lock")
        .actions("r")
        .expect("actions")
        .into_iter()
        .map(|a| (a.action, a.status))
        .collect()
}

const FOUR_STEPS: &str = "steps:\n  - {id: s1, module: shell, on: all, with: {cmd: one}}\n  - {id: s2, module: shell, on: all, with: {cmd: two}}\n  - {id: s3, module: shell, on: all, with: {cmd: three}}\n  - {id: s4, module: shell, on: all, with: {cmd: four}}\n";

#[test]
fn a_failed_journal_write_sends_nothing_more_and_the_run_is_unrecorded() {
    let plan = plan(FOUR_STEPS);
    // Commit 1: s1 started; 2: s1's results and s2 started; 3 (fails): s2's results and s3
    // started. So s3 must never reach a host.
    for (writes, ran_steps) in [(0, 0), (1, 1), (2, 2)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = journal(dir.path());
        journal.lock().expect("lock").fail_writes_after(writes);
        let mut opts = Options::new("r", dir.path().join("runs/r"));
        opts.journal = Some(journal.clone());
        let fake = Arc::new(Fake::default());
        let (report, events) = run_with(&plan, &fake, &opts);

        let ran = fake.ran.lock().expect("lock").clone();
        let expected: Vec<&str> = ["one", "two", "three"][..ran_steps].to_vec();
        let mut steps: Vec<&str> = ran
            .iter()
            .map(|r| r.split('@').next().unwrap_or(""))
            .collect();
        steps.dedup();
        assert_eq!(steps, expected, "after {writes} good write(s): {ran:?}");
        assert_eq!(
            ran.len(),
            2 * ran_steps,
            "both hosts of each step, once: {ran:?}"
        );
        assert_eq!(report.status, RunStatus::Unrecorded);
        let why = report.unrecorded.clone().expect("a reason");
        assert!(why.contains("No space left on device"), "{why}");
        assert!(why.contains("journal.db"), "names the journal: {why}");
        assert_eq!(
            events
                .0
                .iter()
                .filter(|e| matches!(e, Event::RecordFailed { .. }))
                .count(),
            1
        );
        for n in ran_steps + 1..=4 {
            assert_eq!(report.status_of(&format!("s{n}@a")), Some(Status::Blocked));
        }
        // What reached a host is `started` or finished in the journal, never absent; what
        // did not is not recorded at all (a resume runs it as new). The run stays resumable.
        let rec = recorded(&journal);
        for n in 1..=4 {
            for host in ["a", "b"] {
                let id = format!("s{n}@{host}");
                match rec.get(&id).map(String::as_str) {
                    Some("changed") => assert!(n < ran_steps, "{id} {rec:?}"),
                    Some("started") => assert_eq!(n, ran_steps, "{id} {rec:?}"),
                    None => assert!(n > ran_steps, "{id} {rec:?}"),
                    other => panic!("{id} recorded as {other:?}"),
                }
            }
        }
        let run = journal
            .lock()
            .expect("lock")
            .run("r")
            .expect("read")
            .expect("run");
        assert!(run.state.resumable(), "{:?}", run.state);
    }
}

#[test]
fn a_run_directory_that_cannot_be_written_stops_the_run() {
    let plan = plan(FOUR_STEPS);
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = journal(dir.path());
    // A file where the run directory should be: nothing can be written under it.
    fs_err::write(dir.path().join("runs"), "").expect("write");
    let mut opts = Options::new("r", dir.path().join("runs/r"));
    opts.journal = Some(journal.clone());
    let fake = Arc::new(Fake::default());
    let (report, _) = run_with(&plan, &fake, &opts);
    assert_eq!(report.status, RunStatus::Unrecorded);
    let why = report.unrecorded.clone().expect("a reason");
    assert!(why.contains("the output of s1@"), "{why}");
    assert_eq!(fake.ran.lock().expect("lock").len(), 2, "only s1 ran");
    assert_eq!(report.status_of("s2@a"), Some(Status::Blocked));
    // The results still reached the journal: the resume neither loses nor repeats them.
    let rec = recorded(&journal);
    assert_eq!(rec.get("s1@a").map(String::as_str), Some("changed"));
    assert_eq!(rec.get("s2@a"), None);
    let run = journal
        .lock()
        .expect("lock")
        .run("r")
        .expect("read")
        .expect("run");
    assert_eq!(run.state, RunState::Interrupted);
}

/// A record whose writer lost the run (another controller took it over): every write
/// goes through, but it no longer holds the run.
struct Lost;

impl crate::execute::RunLog for Lost {
    fn journaled(&self) -> bool {
        true
    }
    fn commit(&mut self, _: &[crate::journal::Entry]) -> Result<(), RecordError> {
        Ok(())
    }
    fn pieces(&self) -> Result<Vec<crate::journal::Piece>, RecordError> {
        Ok(Vec::new())
    }
    fn end(&mut self, _: RunState) -> Result<(), RecordError> {
        Ok(())
    }
    fn still_held(&self) -> Result<(), RecordError> {
        Err(RecordError::Io(std::io::Error::other("the lease was lost")))
    }
    fn keep_output(
        &mut self,
        _: &str,
        _: &crate::execute::ActionFiles<'_>,
    ) -> Result<(), RecordError> {
        Ok(())
    }
    fn keep_artifact(&mut self, _: &str, _: &str, _: &[u8]) -> Result<String, RecordError> {
        Ok(String::new())
    }
}

#[test]
fn a_writer_that_no_longer_holds_the_run_sends_nothing() {
    let plan = plan(FOUR_STEPS);
    let fake = Arc::new(Fake::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut events = Recorder::default();
    let report = runtime.block_on(execute_with(
        plan.clone(),
        &Registry::builtin(),
        fake.clone(),
        &Options::new("r", "/nonexistent/runs/r"),
        Box::new(Lost),
        &mut events,
    ));
    assert!(
        fake.ran.lock().expect("lock").is_empty(),
        "nothing reached a host"
    );
    assert_eq!(report.status, RunStatus::Unrecorded);
    let why = report.unrecorded.clone().expect("a reason");
    assert!(why.contains("the lease was lost"), "{why}");
    assert_eq!(report.status_of("s1@a"), Some(Status::Blocked));
}

#[test]
fn an_interrupted_action_blocked_on_resume_keeps_its_record_for_the_next_probe() {
    // s2@a started before the interruption (its outcome unknown); on resume its
    // dependency s1@a fails, so it is blocked without its host being asked. It must stay
    // `started`: recorded `blocked`, the next resume would run it again unasked.
    let plan = plan(
        "phases:\n  - name: p\n    order: per_host\n    steps:\n      - {id: s1, module: shell, on: a, with: {cmd: fail}}\n      - {id: s2, module: shell, on: a, with: {cmd: two}}\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = journal(dir.path());
    journal
        .lock()
        .expect("lock")
        .action_started("r", "s2@a", "s2", "a", "fp", 1)
        .expect("started");
    let mut opts = Options::new("r", dir.path().join("runs/r"));
    opts.journal = Some(journal.clone());
    let mut resume = super::super::options::Resume::default();
    resume.unknown.insert("s2@a".into());
    opts.resume = Some(resume);
    let fake = Arc::new(Fake::default());
    let (report, _) = run_with(&plan, &fake, &opts);
    assert_eq!(report.status_of("s2@a"), Some(Status::Blocked));
    let rec = recorded(&journal);
    assert_eq!(rec.get("s1@a").map(String::as_str), Some("failed"));
    assert_eq!(rec.get("s2@a").map(String::as_str), Some("started"));
}

use crate::clock::Clock as _;

fn at(s: &str) -> jiff::Timestamp {
    s.parse().expect("a valid instant")
}

fn windowed(
    plan: &Arc<Plan>,
    timed: &Arc<Fake>,
    window: &str,
    configure: impl FnOnce(&mut Options),
) -> (Report, Recorder) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = Options::new("r", dir.path());
    opts.window = Some(crate::window::WindowSpec::parse(window).expect("valid"));
    opts.clock = timed.clock().clone();
    configure(&mut opts);
    run_with(plan, timed, &opts)
}

fn done(report: &Report) -> super::super::options::Resume {
    let mut resume = super::super::options::Resume::default();
    for (id, status) in &report.actions {
        if status.is_success() {
            resume.done.insert(id.clone(), *status);
        }
    }
    resume
}

const OUTAGE: &str = "phases:\n  - name: prep\n    steps:\n      - {id: prep, module: shell, on: a, estimate: 5m, with: {cmd: work 5}}\n  - name: switch\n    outage: true\n    steps:\n      - {id: s1, module: shell, on: a, estimate: 1h, with: {cmd: work 60}}\n      - {id: s2, module: shell, on: a, estimate: 150m, with: {cmd: work 150}}\n      - {id: s3, module: shell, on: a, estimate: 45m, with: {cmd: work 45}}\n";

#[test]
fn the_window_holds_outage_steps_pauses_at_its_end_and_resumes_in_the_next() {
    let plan = plan(OUTAGE);
    let timed = Arc::new(Fake::timed(crate::clock::ManualClock::new(at(
        "2026-11-23T21:00:00Z",
    ))));
    // Before the window: preparation runs, then the run pauses at the boundary.
    let (first, events) = windowed(&plan, &timed, "22:00/02:00 UTC", |_| {});
    assert_eq!(first.status, RunStatus::Paused);
    assert_eq!(first.status_of("prep@a"), Some(Status::Changed));
    assert_eq!(first.status_of("s1@a"), None, "held, not blocked");
    let paused = events
        .0
        .iter()
        .find_map(|e| match e {
            Event::RunPaused {
                action,
                next_window,
                held,
                message,
            } => Some((action.clone(), next_window.clone(), held, message.clone())),
            _ => None,
        })
        .expect("a run_paused event");
    assert_eq!(paused.0, "s1@a");
    assert_eq!(paused.1.as_deref(), Some("2026-11-23T22:00:00Z"));
    assert_eq!(*paused.2, 3, "s1, s2 and s3 are not started");
    assert!(
        paused.3.contains("opens at 2026-11-23 22:00"),
        "{}",
        paused.3
    );

    // Inside the window: s1 (to 23:00) and s2 (to 01:30) fit; s3 (45m) would end at 02:15.
    timed.clock().advance(jiff::SignedDuration::from_mins(55));
    let resume = done(&first);
    let (second, events) = windowed(&plan, &timed, "22:00/02:00 UTC", |o| {
        o.resume = Some(resume);
    });
    assert_eq!(second.status, RunStatus::Paused);
    assert_eq!(second.status_of("s2@a"), Some(Status::Changed));
    assert_eq!(second.status_of("s3@a"), None);
    assert_eq!(timed.clock().now(), at("2026-11-24T01:30:00Z"));
    assert!(
        events.0.iter().any(|e| matches!(e,
        Event::RunPaused { action, next_window: Some(next), message, .. }
            if action == "s3@a" && next == "2026-11-24T22:00:00Z" && message.contains("30m left")))
    );

    // The next night: s3 runs, and nothing ran twice.
    timed.clock().advance(jiff::SignedDuration::from_hours(21));
    let mut resume = done(&first);
    resume.done.extend(done(&second).done);
    let (third, _) = windowed(&plan, &timed, "22:00/02:00 UTC", |o| {
        o.resume = Some(resume);
    });
    assert_eq!(third.status, RunStatus::Succeeded);
    assert_eq!(
        *timed.ran.lock().expect("lock"),
        ["work 5@0", "work 60@0", "work 150@0", "work 45@0"]
    );
}

#[test]
fn with_wait_the_run_sleeps_until_the_window_opens() {
    let plan = plan(OUTAGE);
    let timed = Arc::new(Fake::timed(crate::clock::ManualClock::new(at(
        "2026-11-23T21:00:00Z",
    ))));
    let (report, events) = windowed(&plan, &timed, "22:00/04:00 UTC", |o| o.wait = true);
    assert_eq!(report.status, RunStatus::Succeeded);
    assert!(events.0.iter().any(|e| matches!(e,
        Event::WindowWaiting { until, .. } if until == "2026-11-23T22:00:00Z")));
    // 22:00 + 1h + 150m + 45m.
    assert_eq!(timed.clock().now(), at("2026-11-24T02:15:00Z"));
}

#[test]
fn an_irreversible_step_needs_the_rest_of_the_outage_to_fit_unless_forced() {
    let plan = plan(
        "phases:\n  - name: switch\n    outage: true\n    steps:\n      - {id: point, module: shell, on: a, irreversible: true, estimate: 10m, with: {cmd: work 10}}\n      - {id: after, module: shell, on: a, estimate: 1h, with: {cmd: work 60}}\n",
    );
    let clock = || crate::clock::ManualClock::new(at("2026-11-23T22:00:00Z"));
    let window = "2026-11-23T22:00:00Z/2026-11-23T23:00:00Z";
    let timed = Arc::new(Fake::timed(clock()));
    let (held, events) = windowed(&plan, &timed, window, |_| {});
    assert_eq!(held.status, RunStatus::Paused);
    assert!(
        timed.ran.lock().expect("lock").is_empty(),
        "nothing started"
    );
    assert!(events.0.iter().any(|e| matches!(e,
        Event::RunPaused { message, next_window: None, .. }
            if message.contains("irreversible") && message.contains("~1h10m"))));
    // --force starts it; the step after it still may not overrun the window.
    let timed = Arc::new(Fake::timed(clock()));
    let (forced, _) = windowed(&plan, &timed, window, |o| o.force = true);
    assert_eq!(forced.status_of("point@a"), Some(Status::Changed));
    assert_eq!(forced.status_of("after@a"), None);
    assert_eq!(forced.status, RunStatus::Paused);
}

// Failure budgets. These were end-to-end tests (tests/suite/apply.rs) that started five sshd
// hosts to run `[ $RUNBOOK_HOST != c ]`: what they check is the scheduler's policy, so they
// run on the fake, with their assertions unchanged (the exit code 1 of `apply` is the
// `failed` run status).

/// The message of `action`'s `action_finished` event (empty when it has none).
fn message(events: &Recorder, action: &str) -> String {
    message_of(events, action).unwrap_or_default()
}

/// The message of `action`'s `action_finished` event.
fn message_of(events: &Recorder, action: &str) -> Option<String> {
    events
        .0
        .iter()
        .find_map(|e| match e {
            Event::ActionFinished {
                action: a, message, ..
            } if a == action => Some(message.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{action} never finished"))
}

/// The actions in the order they started.
fn start_order(events: &Recorder) -> Vec<String> {
    events
        .0
        .iter()
        .filter_map(|e| match e {
            Event::ActionStarted { action, .. } => Some(action.clone()),
            _ => None,
        })
        .collect()
}

/// `fail` on `host`, `ok` elsewhere.
fn fails_on(host: &str) -> String {
    format!("\"{{{{ 'fail' if host.name == '{host}' else 'ok' }}}}\"")
}

#[test]
fn rolling_batches_stop_when_the_failure_budget_is_spent() {
    let rb = |max_fail: &str| {
        plan_on(
            &("phases:\n  - name: upgrade\n    serial: [1, 2, 100%]\n".to_owned()
                + &format!("    max_fail: {max_fail}\n")
                + "    steps:\n"
                + &format!(
                    "      - {{id: upgrade, module: shell, on: all, with: {{cmd: {}}}}}\n",
                    fails_on("c")
                )
                + "      - {id: verify, module: shell, on: all, with: {cmd: \"true\"}}\n"),
            &["a", "b", "c", "d", "e"],
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options::new("r", dir.path());
    // Batches: [a], [b, c], [d, e]. c fails in the second batch.
    let (run, events) = run_with(&rb("0"), &Arc::new(Fake::default()), &opts);
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.status_of("upgrade@a"), Some(Status::Changed));
    assert_eq!(
        run.status_of("upgrade@b"),
        Some(Status::Changed),
        "the rest of the failing batch completes"
    );
    assert_eq!(
        run.status_of("verify@b"),
        Some(Status::Blocked),
        "sequential: verify waits for upgrade on the whole batch"
    );
    assert_eq!(run.status_of("upgrade@c"), Some(Status::Failed));
    assert_eq!(run.status_of("verify@c"), Some(Status::Blocked));
    for host in ["d", "e"] {
        let id = format!("upgrade@{host}");
        assert_eq!(run.status_of(&id), Some(Status::Blocked));
        let message = message(&events, &id);
        assert!(message.contains("failure budget"), "{message}");
    }
    // With a budget of one host, the last batch goes on.
    let fake = Arc::new(Fake::default());
    let (run, events) = run_with(&rb("1"), &fake, &opts);
    assert_eq!(run.status_of("upgrade@d"), Some(Status::Changed));
    assert_eq!(run.status_of("verify@e"), Some(Status::Changed));
    let mut ran = fake.ran();
    let sent = ran.len();
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len(), sent, "nothing ran twice: {ran:?}");
    // Batches follow each other: nothing of batch 2 starts before batch 1 is done.
    let order = start_order(&events);
    let pos = |a: &str| {
        order
            .iter()
            .position(|x| x == a)
            .unwrap_or_else(|| panic!("{a} never started"))
    };
    assert!(pos("verify@a") < pos("upgrade@b") && pos("verify@a") < pos("upgrade@c"));
}

#[test]
fn within_the_failure_budget_the_run_goes_on_without_the_failed_hosts() {
    let plan = plan_on(
        &("phases:\n  - name: upgrade\n    serial: 1\n    max_fail: 1\n    steps:\n".to_owned()
            + &format!(
                "      - {{id: upgrade, module: shell, on: all, with: {{cmd: {}}}}}\n",
                fails_on("b")
            )
            + "  - name: after\n    order: per_host\n    steps:\n"
            + "      - {id: verify, module: shell, on: all, with: {cmd: \"true\"}}\n"),
        &["a", "b", "c"],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, events) = run_with(
        &plan,
        &Arc::new(Fake::default()),
        &Options::new("r", dir.path()),
    );
    assert_eq!(
        run.status,
        RunStatus::Failed,
        "a host failed, so the run failed"
    );
    assert_eq!(
        run.status_of("upgrade@c"),
        Some(Status::Changed),
        "the budget allows one failed host"
    );
    assert_eq!(
        run.status_of("verify@a"),
        Some(Status::Changed),
        "the next phase goes on"
    );
    assert_eq!(run.status_of("verify@c"), Some(Status::Changed));
    assert_eq!(
        run.status_of("verify@b"),
        Some(Status::Blocked),
        "the failed host is out of the run"
    );
    let message = message(&events, "verify@b");
    assert!(message.contains("failed in phase `upgrade`"), "{message}");
}

#[test]
fn a_manual_step_asks_the_operator_once_and_goes_on_declines_or_waits_by_the_answer() {
    let plan = plan(
        "steps:\n  - {id: confirm, module: manual, with: {instructions: \"Point the application at B.\"}}\n  - {id: after, module: shell, on: a, with: {cmd: \"true\"}}\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    for (answer, status, message, after) in [
        (Some(true), Status::Ok, None, Some(Status::Changed)),
        (
            Some(false),
            Status::Failed,
            Some("declined by the operator".to_owned()),
            Some(Status::Blocked),
        ),
        (
            None,
            Status::AwaitingApproval,
            Some("run `runbook approve r confirm --by NAME --reason TEXT`".to_owned()),
            Some(Status::Blocked),
        ),
    ] {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let mut opts = Options::new("r", dir.path());
        let log = asked.clone();
        opts.approver = Some(Arc::new(
            move |prompt: &super::super::options::ManualPrompt| {
                log.lock()
                    .expect("lock")
                    .push(format!("{}: {}", prompt.step, prompt.instructions));
                answer
            },
        ));
        let fake = Arc::new(Fake::default());
        let (report, events) = run_with(&plan, &fake, &opts);
        assert_eq!(
            *asked.lock().expect("lock"),
            ["confirm: Point the application at B."],
            "asked once ({answer:?})"
        );
        assert_eq!(report.status_of("confirm@controller"), Some(status));
        assert_eq!(message_of(&events, "confirm@controller"), message);
        assert_eq!(report.status_of("after@a"), after, "{answer:?}");
        assert_eq!(
            events
                .0
                .iter()
                .any(|e| matches!(e, Event::AwaitingApproval { .. })),
            answer.is_none(),
            "the approval request is announced only when nobody answered"
        );
    }
}
