//! Faults on the host side, classified from what the host and the connection say, on the real
//! lab:
//!
//! - only the wrapper shell (`sh -c WRAPPER runbook-wrapper RECORD ...`) is killed while its script
//!   runs on: the host is reachable, so the action is not `unreachable`; its record decides
//!   (`unknown` when the script exited 0, `failed` with its code otherwise), and a resume settles
//!   it from that record without an operator;
//! - a partition mid-step, while the script runs on and finishes: the action is `unreachable`
//!   with a message that says its outcome is unknown (not that the process terminated), and
//!   once the partition heals a resume settles it from the host's record: it ran once.
//!
//! The partition: every sshd process of the lab host (the listener and its per-connection
//! sessions, never the shells they started) is stopped with SIGSTOP. The kernel still accepts
//! the client's packets, but nothing on the host reads or answers them, so to the controller
//! the host is silent exactly as behind a dropped link: its keepalives go unanswered and ssh
//! gives the connection up (`ServerAliveInterval` 5 s, 3 tries). The commands already running
//! on the host go on. This needs neither iptables (not installed here) nor moving the lab into
//! network namespaces. SIGCONT heals it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::apply::{Applied, Rig};

fn header(name: &str) -> String {
    format!("apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, version: 1.0.0}}\n")
}

/// Waits (polling, with a generous deadline that only guards against a hang) until `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the wrapper of `action` has recorded its script's process group on the host.
fn wait_for_pgid(rig: &Rig, action: &str) {
    let host = action.split_once('@').map_or("", |(_, h)| h);
    let actions = rig.root(host).join(".runbook/actions");
    wait_until(&format!("{action} starts on its host"), || {
        crate::apply::recorded_pgid(&actions, action).is_some()
    });
}

fn counter(rig: &Rig) -> String {
    fs_err::read_to_string(rig.root("a").join("counter")).unwrap_or_default()
}

/// Kills (SIGKILL) the wrapper shell of `action` only, not its script's process group: the
/// wrapper leads that group, so its pid is the recorded pgid. (Step ids differ between the
/// tests of this file, which run in parallel.)
fn kill_the_wrapper(rig: &Rig, action: &str) {
    let host = action.split_once('@').map_or("", |(_, h)| h);
    let actions = rig.root(host).join(".runbook/actions");
    let pid = crate::apply::recorded_pgid(&actions, action).expect("the wrapper recorded its pid");
    // Once its script runs (a second process in the group), so that the script is what is
    // left running, not a wrapper killed before it started anything.
    wait_until(&format!("the script of {action} runs"), || {
        let out = Command::new("pgrep")
            .args(["-g", &pid])
            .output()
            .expect("pgrep runs");
        String::from_utf8_lossy(&out.stdout).lines().count() >= 2
    });
    let status = Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "no wrapper of {action} to kill");
}

fn resumed_how(run: &Applied, action: &str) -> String {
    run.events
        .iter()
        .find(|e| e["event"] == "action_resumed" && e["action"] == action)
        .and_then(|e| e["how"].as_str())
        .unwrap_or_else(|| panic!("{action} was not resumed: {:#?}", run.events))
        .to_owned()
}

#[test]
fn a_killed_wrapper_is_not_an_unreachable_host_and_resume_settles_it_from_the_record() {
    let rig = Rig::new(1);
    let rb = header("wrapper")
        + "steps:\n"
        + "  - {id: work, module: shell, on: a, with: {cmd: \"sleep 2; echo did >> $RUNBOOK_HOST_ROOT/counter; echo output\"}}\n"
        + "  - {id: after, module: shell, on: a, with: {cmd: \"echo after >> $RUNBOOK_HOST_ROOT/counter\"}}\n";
    let file = rig.dir.path().join("runbook.yaml");
    fs_err::write(&file, &rb).expect("write");
    let child = rig.spawn_apply(&file);
    wait_for_pgid(&rig, "work@a");
    kill_the_wrapper(&rig, "work@a");
    let run = Applied::from_output(
        &child.wait_with_output().expect("apply ends"),
        Path::new("").into(),
    );
    assert_eq!(run.status("work@a"), "unknown", "{:#?}", run.events);
    let message = run.message("work@a");
    assert!(
        message.contains("wrapper") && message.contains("exited with code 0"),
        "the message says what the host recorded: {message}"
    );
    assert!(!message.contains("unreachable"), "{message}");
    assert_eq!(run.status("after@a"), "blocked");
    assert_eq!(run.code, 3, "an unknown outcome stops the run for a resume");
    assert_eq!(counter(&rig), "did\n", "the script ran on to its end");
    // The output received before the end is kept with the run.
    let stdout = fs_err::read_to_string(crate::apply::find_file(
        &rig.dir.path().join("state"),
        "stdout",
    ))
    .expect("stdout kept");
    assert_eq!(stdout, "output\n");

    // Resume: settled from the host's record, without an operator and without a second run.
    let resumed = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(resumed_how(&resumed, "work@a"), "host: it had finished");
    assert_eq!(resumed.status("work@a"), "changed");
    assert_eq!(counter(&rig), "did\nafter\n", "work ran once, then after");
}

#[test]
fn a_killed_wrapper_whose_script_failed_is_failed_with_its_code() {
    let rig = Rig::new(1);
    let rb = header("wrapper-fails")
        + "steps:\n  - {id: failing, module: shell, on: a, with: {cmd: \"sleep 2; exit 3\"}}\n";
    let file = rig.dir.path().join("runbook.yaml");
    fs_err::write(&file, &rb).expect("write");
    let child = rig.spawn_apply(&file);
    wait_for_pgid(&rig, "failing@a");
    kill_the_wrapper(&rig, "failing@a");
    let run = Applied::from_output(
        &child.wait_with_output().expect("apply ends"),
        Path::new("").into(),
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.status("failing@a"), "failed", "{:#?}", run.events);
    let finished = run
        .events
        .iter()
        .find(|e| e["event"] == "action_finished" && e["action"] == "failing@a")
        .expect("finished");
    assert_eq!(finished["rc"], 3, "the code the host recorded");
    assert!(
        run.message("failing@a").contains("exited with code 3"),
        "{}",
        run.message("failing@a")
    );
}

/// The sshd processes of a lab host: the listener and its descendants that are sshd too.
fn sshd_processes(listener: u32) -> Vec<u32> {
    let mut found = vec![listener];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        let out = Command::new("pgrep")
            .args(["-P", &parent.to_string()])
            .output()
            .expect("pgrep runs");
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let comm = fs_err::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim().starts_with("sshd") {
                found.push(pid);
            }
        }
        i += 1;
    }
    found
}

/// Stops a host's sshd processes; continues them when dropped (also when a test fails).
struct Partition(Vec<u32>);

impl Partition {
    fn start(rig: &Rig, host: &str) -> Self {
        let listener = rig
            .lab
            .host(host)
            .and_then(|h| h.pid)
            .expect("the host is up");
        let pids = sshd_processes(listener);
        assert!(
            pids.len() >= 2,
            "the listener and the run's session: {pids:?}"
        );
        signal("-STOP", &pids);
        Self(pids)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        signal("-CONT", &self.0);
    }
}

fn signal(which: &str, pids: &[u32]) {
    let status = Command::new("kill")
        .arg(which)
        .args(pids.iter().map(u32::to_string))
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {which} {pids:?}");
}

#[test]
fn a_partition_mid_step_leaves_the_outcome_unknown_and_resume_after_it_heals_runs_nothing_twice() {
    let rig = Rig::new(1);
    let rb = header("partition")
        + "steps:\n  - {id: partitioned, module: shell, on: a, with: {cmd: \"sleep 1; echo did >> $RUNBOOK_HOST_ROOT/counter\"}}\n";
    let file = rig.dir.path().join("runbook.yaml");
    fs_err::write(&file, &rb).expect("write");
    let child = rig.spawn_apply(&file);
    wait_for_pgid(&rig, "partitioned@a");
    let partition = Partition::start(&rig, "a");
    // The step runs on behind the partition and finishes there.
    wait_until("the step finishes on the partitioned host", || {
        counter(&rig) == "did\n"
    });
    let run = Applied::from_output(
        &child.wait_with_output().expect("apply ends"),
        Path::new("").into(),
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.status("partitioned@a"),
        "unreachable",
        "{:#?}",
        run.events
    );
    let message = run.message("partitioned@a");
    assert!(
        message.contains("whether the command finished on the host is unknown"),
        "{message}"
    );
    assert!(
        !message.contains("terminated"),
        "nothing verified that the process stopped: {message}"
    );
    drop(partition);

    let resumed = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(
        resumed_how(&resumed, "partitioned@a"),
        "host: it had finished"
    );
    assert_eq!(counter(&rig), "did\n", "the step ran exactly once");
}
