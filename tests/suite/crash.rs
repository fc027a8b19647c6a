//! The crash harness: kill -9 the `runbook` process at many points of a run and resume until
//! done; every step's effect must be present exactly once.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::apply::Rig;

const STEPS: usize = 30;
const HOSTS: [&str; 3] = ["a", "b", "c"];

fn runbook() -> String {
    let mut rb = String::from(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: crash, version: 1.0.0}\nsteps:\n",
    );
    for n in 1..=STEPS {
        let _ = writeln!(
            rb,
            "  - {{id: s{n}, module: shell, on: all, with: {{cmd: \"sleep 0.1; echo step-{n} >> $RUNBOOK_HOST_ROOT/counter\"}}}}"
        );
    }
    rb
}

/// The host "crashes" under a running action: its wrapper and its script are killed, so no
/// exit code is recorded. Waits (briefly) for the action to be running on the host first.
pub(crate) fn crash_host_side(rig: &Rig, action: &str) -> bool {
    let host = action.split_once('@').map_or("", |(_, h)| h);
    let actions = rig.root(host).join(".runbook/actions");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let pgid = loop {
        if let Some(pgid) = crate::apply::recorded_pgid(&actions, action) {
            break pgid;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    // The wrapper first (so it cannot record an exit code; it leads the group, so its pid is
    // the pgid), then the rest of the script's process group.
    let _ = Command::new("kill").args(["-9", &pgid]).status();
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{pgid}")])
        .status();
    true
}

#[test]
fn kill_9_at_twenty_points_then_resume_runs_every_step_exactly_once() {
    let rig = Rig::new(3);
    let file = rig.dir.path().join("crash.yaml");
    fs_err::write(&file, runbook()).expect("write");
    let state = rig.dir.path().join("state");
    // Twenty kill points, after each kind of event: (kind, its n-th occurrence in one process).
    let mut points: Vec<(&str, usize)> = vec![("run_started", 1), ("phase_started", 1)];
    for n in 1..=6 {
        points.extend([
            ("action_started", n),
            ("action_finished", n),
            ("action_resumed", n),
        ]);
    }
    let mut kill_points = std::collections::BTreeSet::new();
    let mut decisions = 0;
    let mut crashed = 0;
    let mut host_resolved = 0;
    let mut finished = false;
    for iteration in 0..120 {
        let pending: Vec<_> = points
            .iter()
            .filter(|p| !kill_points.contains(*p))
            .collect();
        let stop_killing = pending.is_empty();
        let kill_after = pending
            .get(iteration % pending.len().max(1))
            .map_or(("none", 0), |p| **p);
        let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .arg("apply")
            .arg(&file)
            .arg("-i")
            .arg(rig.inventory())
            .args(["--format", "json", "--state"])
            .arg(&state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runbook runs");
        let stdout = child.stdout.take().expect("piped");
        let mut seen = 0;
        let mut killed = false;
        let mut last_started = None;
        let mut unknown = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("a line");
            let event: serde_json::Value = serde_json::from_str(&line).expect("JSON event");
            let kind = event["event"].as_str().unwrap_or_default().to_owned();
            if kind == "action_started" {
                last_started = event["action"].as_str().map(str::to_owned);
            }
            if kind == "action_resumed"
                && event["how"].as_str().is_some_and(|h| h.starts_with("host"))
            {
                host_resolved += 1;
            }
            if kind == "action_finished" && event["status"] == "unknown" {
                unknown.push(event["action"].as_str().unwrap_or_default().to_owned());
            }
            if !stop_killing && kind == kill_after.0 {
                seen += 1;
                if seen == kill_after.1 {
                    child.kill().expect("kill -9");
                    killed = true;
                    kill_points.insert(kill_after);
                    // Every third kill mid-step also "crashes the host side" of the action.
                    if kind == "action_started"
                        && kill_after.1 % 2 == 0
                        && let Some(action) = &last_started
                    {
                        crashed += usize::from(crash_host_side(&rig, action));
                    }
                    break;
                }
            }
        }
        let status = child.wait().expect("wait");
        if killed {
            continue;
        }
        match status.code() {
            Some(0) => {
                finished = true;
                break;
            }
            Some(3) => {
                // Actions whose outcome nobody can tell: decide by looking at the host, as an
                // operator would.
                assert!(!unknown.is_empty(), "exit 3 without an unknown action");
                for action in unknown {
                    let (step, host) = action.split_once('@').expect("step@host");
                    let counter =
                        fs_err::read_to_string(rig.root(host).join("counter")).unwrap_or_default();
                    let done = counter.lines().any(|l| l == format!("step-{}", &step[1..]));
                    let run = run_id(&state);
                    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
                        .args([
                            "resolve",
                            &run,
                            &action,
                            if done { "--done" } else { "--redo" },
                            "--by",
                            "test",
                            "--state",
                        ])
                        .arg(&state)
                        .output()
                        .expect("resolve");
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    decisions += 1;
                }
            }
            other => panic!("apply ended with {other:?}"),
        }
    }
    assert!(finished, "the run never completed");
    assert!(
        kill_points.len() >= 20,
        "only {} distinct kill points",
        kill_points.len()
    );
    for host in HOSTS {
        let counter = fs_err::read_to_string(rig.root(host).join("counter")).expect("counter");
        for n in 1..=STEPS {
            let count = counter
                .lines()
                .filter(|l| *l == format!("step-{n}"))
                .count();
            assert_eq!(count, 1, "step-{n} on {host} ran {count} times:\n{counter}");
        }
        assert_eq!(counter.lines().count(), STEPS, "{host}: {counter}");
    }
    assert!(
        host_resolved > 0,
        "no interrupted action was settled from the host's record"
    );
    assert!(
        crashed == 0 || decisions > 0,
        "host-side crashes must end in operator decisions"
    );
    eprintln!(
        "kill points: {}, host-side crashes: {crashed}, operator decisions: {decisions}, settled from host records: {host_resolved}",
        kill_points.len()
    );
}

fn run_id(state: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["runs", "--state"])
        .arg(state)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("a run")
        .to_owned()
}

#[test]
fn a_second_apply_is_refused_and_a_killed_holders_lock_is_free() {
    let rig = Rig::new(1);
    let file = rig.dir.path().join("lock.yaml");
    fs_err::write(
        &file,
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: lock, version: 1.0.0}\nsteps:\n  - {id: slow, module: shell, on: a, with: {cmd: \"sleep 3; echo once >> $RUNBOOK_HOST_ROOT/slow\"}}\n",
    )
    .expect("write");
    let state = rig.dir.path().join("state");
    let apply = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
        cmd.arg("apply")
            .arg(&file)
            .arg("-i")
            .arg(rig.inventory())
            .args(["--format", "json", "--state"])
            .arg(&state);
        cmd
    };
    let mut first = apply()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("first apply");
    // Wait until the first one is running its step.
    let mut lines = BufReader::new(first.stdout.take().expect("piped")).lines();
    while let Some(Ok(line)) = lines.next() {
        if line.contains("action_started") {
            break;
        }
    }
    // ... on its host: the wrapper has recorded it (killed before that, the step may not have
    // reached the host, and the resume has a different case to settle).
    let actions = rig.root("a").join(".runbook/actions");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while crate::apply::recorded_pgid(&actions, "slow@a").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "slow@a never ran on a"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = apply().output().expect("second apply");
    assert_eq!(
        second.status.code(),
        Some(6),
        "refused: another run holds the lock"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("pid {}", first.id())),
        "the holder is named: {stderr}"
    );
    // kill -9 the holder: the kernel frees its lock, and the next apply resumes its run.
    first.kill().expect("kill -9");
    first.wait().expect("reaped");
    let third = apply().output().expect("third apply");
    assert_eq!(
        third.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    let events = String::from_utf8_lossy(&third.stdout);
    assert!(
        events.contains("action_resumed"),
        "it resumed the killed run: {events}"
    );
    let slow = fs_err::read_to_string(rig.root("a").join("slow")).expect("the step ran");
    assert_eq!(slow, "once\n", "the step's effect is there exactly once");
}
