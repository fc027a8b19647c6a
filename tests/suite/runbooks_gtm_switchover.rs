//! `runbooks/gtm/switchover.yaml`, the real file, against real GT.M instances in a lab
//! ([`GtmLab`]): A→B set up by the built-in `new-mirror.yaml` (B←A→P by `runbooks_gtm_switchover/setup.yaml`), then the
//! switchover, then the data read back on every instance with `mumps`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::apply::{Applied, all_files};
use crate::gtm::GtmLab;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

pub(crate) fn switchover_file() -> PathBuf {
    repo("runbooks/gtm/switchover.yaml")
}

/// Small timeouts: in the lab a stopped receiver never gets anything, so the default 30s
/// Source Server shutdown timeout would only make the test slow.
const FAST: [&str; 6] = [
    "-e",
    "source_shutdown_timeout=2s",
    "-e",
    "receiver_shutdown_timeout=2s",
    "-e",
    "drain_timeout=90s",
];

pub(crate) fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    FAST.iter().copied().chain(extra.iter().copied()).collect()
}

/// A→B by the built-in `runbooks/gtm/new-mirror.yaml`, then ^A(1..100) written on A and
/// replicated to B.
pub(crate) fn set_up(lab: &GtmLab) {
    let run = crate::runbooks_gtm::apply(lab, "new-mirror", &[]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    lab.m("a", "for i=1:1:100 set ^A(i)=i");
    wait_count(lab, "b", "A", 100);
}

/// B←A→P (the seed's A→B and A→P set-ups, `runbooks_gtm_switchover/setup.yaml`: new-mirror
/// has no supplementary instance) with ^A(1..100) written on A and acknowledged by B and P.
fn set_up_with_p(lab: &GtmLab) {
    let run = lab.rig.apply_file(
        &repo("tests/suite/runbooks_gtm_switchover/setup.yaml"),
        &lab.rig.inventory(),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    assert_eq!(lab.m("b", "write ^A(100)"), "100");
    assert_eq!(lab.m("c", "write ^A(100)"), "100");
}

fn switchover(lab: &GtmLab, extra: &[&str]) -> Applied {
    lab.rig
        .apply_file(&switchover_file(), &lab.rig.inventory(), &args(extra))
}

fn mupip(lab: &GtmLab, host: &str, args: &[&str]) -> String {
    let out = lab.tool(host, "mupip", args);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

pub(crate) fn stop_receiver(lab: &GtmLab, host: &str) {
    let out = mupip(
        lab,
        host,
        &["replicate", "-receiver", "-shutdown", "-timeout=0"],
    );
    assert!(!receiver_alive(lab, host), "{out}");
}

/// `-checkhealth` of the Source Servers of `host`: "ACTIVE", "PASSIVE" or "" (none alive).
fn source_mode(lab: &GtmLab, host: &str) -> String {
    let out = mupip(lab, host, &["replicate", "-source", "-checkhealth"]);
    if out.contains("alive in ACTIVE mode") {
        "ACTIVE".into()
    } else if out.contains("alive in PASSIVE mode") {
        "PASSIVE".into()
    } else {
        String::new()
    }
}

fn receiver_alive(lab: &GtmLab, host: &str) -> bool {
    let out = mupip(lab, host, &["replicate", "-receiver", "-checkhealth"]);
    out.contains("Receiver server is alive") && out.contains("Update process is alive")
}

/// The number of nodes under `^global` on `host`.
pub(crate) fn count(lab: &GtmLab, host: &str, global: &str) -> usize {
    lab.m(
        host,
        &format!(
            "set n=0,i=\"\" for  set i=$order(^{global}(i)) write:i=\"\" n quit:i=\"\"  set n=n+1"
        ),
    )
    .parse()
    .unwrap_or_else(|e| panic!("a count of ^{global} on {host}: {e}"))
}

/// Waits until `^global` on `host` has `n` nodes.
pub(crate) fn wait_count(lab: &GtmLab, host: &str, global: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(lab, host, global) != n {
        assert!(
            Instant::now() < deadline,
            "^{global} on {host} has {} nodes, not {n}",
            count(lab, host, global)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The artifact `name` of `action` in the runs under `state`.
pub(crate) fn artifact(state: &Path, action: &str, name: &str) -> String {
    let file = all_files(state)
        .into_iter()
        .find(|p| p.ends_with(format!("actions/{action}/artifacts/{name}")))
        .unwrap_or_else(|| panic!("no artifact {name} of {action}"));
    std::fs::read_to_string(file).expect("artifact")
}

/// The nodes of the SET records (`05`) of a lost-transaction file, as `name(sub)="value"`.
pub(crate) fn sets(lost: &str) -> Vec<String> {
    lost.lines()
        .filter(|l| l.starts_with("05\\"))
        .filter_map(|l| l.rsplit_once("\\^").map(|(_, node)| node.to_owned()))
        .collect()
}

/// The lost updates the tests write on A while B cannot receive them.
pub(crate) fn write_lost_updates(lab: &GtmLab) {
    lab.m("a", "for i=1:1:50 set ^losttrans(i)=i");
    assert_eq!(count(lab, "a", "losttrans"), 50);
    assert_eq!(count(lab, "b", "losttrans"), 0);
}

/// The roles are swapped, on the live servers: B originates, A receives from B.
pub(crate) fn assert_swapped(lab: &GtmLab) {
    assert_eq!(source_mode(lab, "b"), "ACTIVE", "B originates");
    assert!(!receiver_alive(lab, "b"), "B receives nothing");
    assert_eq!(
        source_mode(lab, "a"),
        "PASSIVE",
        "A's Source Server is passive"
    );
    assert!(receiver_alive(lab, "a"), "A receives from B");
}

#[test]
fn with_data_loss_allowed_a_is_rolled_back_and_its_lost_updates_reach_b() {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    set_up(&lab);
    // The seed's example: B's Receiver Server down, 50 updates on A that B never receives.
    stop_receiver(&lab, "b");
    write_lost_updates(&lab);

    let run = switchover(&lab, &["-e", "allow_data_loss=true"]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    crate::runbooks_gtm::assert_freeze_measured(&run);
    assert_eq!(run.status("health-b@b"), "skipped");
    assert_eq!(run.status("switch.drain@a"), "skipped");
    assert_eq!(run.status("switch.stop-source-a@a"), "changed");
    assert_eq!(
        run.status("switch.stop-receiver-b@b"),
        "changed",
        "the Receiver Server was down already, its passive Source Server is stopped"
    );
    assert_eq!(run.status("switch.start-b-originating@b"), "changed");
    assert_eq!(run.status("rollback-a@a"), "changed");
    assert_eq!(run.status("switch.restore-source-a-to-b@a"), "skipped");
    // The runbook's own verification (gtm.role on both, backlog zero) passed...
    assert_eq!(run.status("switched@controller"), "ok");
    // ...and the live servers agree.
    assert_swapped(&lab);

    // The lost-transaction file, kept with the run, holds exactly the 50 updates.
    let lost = artifact(&run.state, "rollback-a@a", "gtm.lost");
    assert!(lost.starts_with("GDSJEX07 ROLLBACK PRIMARY A"), "{lost}");
    let expected: Vec<String> = (1..=50)
        .map(|i| format!("losttrans({i})=\"{i}\""))
        .collect();
    assert_eq!(sets(&lost), expected);
    assert_eq!(
        std::fs::read_to_string(lab.dir("a").join("gtm.lost")).expect("gtm.lost on A"),
        lost
    );
    assert_eq!(run.status("apply-lost-b@b"), "changed");

    // No update is lost: re-applied on B, replicated back to A, the base data everywhere.
    assert_eq!(count(&lab, "b", "losttrans"), 50);
    assert_eq!(lab.m("b", "write ^losttrans(50),\" \",^A(100)"), "50 100");
    wait_count(&lab, "a", "losttrans", 50);
    assert_eq!(count(&lab, "a", "A"), 100);
    // B is the originating instance: an update there reaches A.
    lab.m("b", "set ^after(1)=\"from B\"");
    wait_count(&lab, "a", "after", 1);
}

#[test]
fn the_preflight_refuses_an_unhealthy_candidate_and_changes_nothing_then_a_drained_switchover_loses_nothing()
 {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    set_up(&lab);
    stop_receiver(&lab, "b");
    write_lost_updates(&lab);

    // B cannot receive and data loss is not allowed: refused before anything changes.
    let refused = switchover(&lab, &[]);
    assert_eq!(refused.code, 1, "{}\n{:#?}", refused.stderr, refused.events);
    assert_eq!(refused.status("health-b@b"), "failed");
    assert!(
        refused.message("health-b@b").contains("receiver"),
        "{}",
        refused.message("health-b@b")
    );
    for action in [
        "switch.drain@a",
        "switch.stop-source-a@a",
        "switch.stop-receiver-b@b",
        "switch.start-b-originating@b",
        "rollback-a@a",
    ] {
        assert_eq!(refused.status(action), "blocked", "{action}");
    }
    assert!(
        !refused.start_order().iter().any(|a| {
            // The step's own id, without the block's prefix (`switch.stop-source-a`).
            let a = a.rsplit_once('.').map_or(a.as_str(), |(_, s)| s);
            a.starts_with("stop-") || a.starts_with("start-") || a.starts_with("rollback")
        }),
        "{:?}",
        refused.start_order()
    );
    // A is still the originating instance, its Source Server running, nothing rolled back.
    assert_eq!(source_mode(&lab, "a"), "ACTIVE");
    assert_eq!(source_mode(&lab, "b"), "PASSIVE");
    assert!(!lab.dir("a").join("gtm.lost").exists());
    assert_eq!(count(&lab, "a", "losttrans"), 50);

    // The operator restarts B's Receiver Server and applies again: the run resumes, the drain
    // gate waits until B has everything, and the rollback finds nothing to roll off.
    let port_b = lab.port("b").to_string();
    let out = mupip(
        &lab,
        "b",
        &[
            "replicate",
            "-receiver",
            "-start",
            &format!("-listenport={port_b}"),
            "-buffsize=1048576",
            &format!("-log={}", lab.dir("b").join("log/receive.log").display()),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !receiver_alive(&lab, "b") {
        assert!(
            Instant::now() < deadline,
            "B's Receiver Server did not start: {out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let run = switchover(&lab, &[]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    crate::runbooks_gtm::assert_freeze_measured(&run);
    assert!(
        run.events.iter().any(|e| e["event"] == "action_resumed"),
        "the refused run was resumed"
    );
    assert_eq!(run.status("health-b@b"), "ok");
    assert_eq!(run.status("switch.drain@a"), "ok");
    assert_eq!(run.status("rollback-a@a"), "changed");
    assert_eq!(run.status("apply-lost-b@b"), "skipped", "nothing was lost");
    assert_eq!(
        sets(&artifact(&run.state, "rollback-a@a", "gtm.lost")),
        Vec::<String>::new()
    );
    assert_swapped(&lab);
    assert_eq!(count(&lab, "b", "losttrans"), 50);
    assert_eq!(count(&lab, "a", "losttrans"), 50);
    lab.m("b", "set ^after(1)=1");
    wait_count(&lab, "a", "after", 1);
}

#[test]
fn b_a_p_becomes_a_b_p_with_a_and_p_rolled_back() {
    // The seed's "B←A→P ... A and P require rollback": P has received from A what B has not,
    // and has local updates of its own after it.
    let lab = GtmLab::with_hosts(
        3,
        &[
            ("a", "originating"),
            ("b", "replicating"),
            ("c", "supplementary"),
        ],
    );
    set_up_with_p(&lab);
    stop_receiver(&lab, "b");
    write_lost_updates(&lab);
    wait_count(&lab, "c", "losttrans", 50);
    lab.m("c", "for i=39:1:40 set ^P(i)=i");

    let run = switchover(&lab, &["-e", "allow_data_loss=true"]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    crate::runbooks_gtm::assert_freeze_measured(&run);
    for action in [
        "role-p-ok@c",
        "stop-p@c",
        "start-b-to-p@b",
        "rollback-p@c",
        "start-receiver-p@c",
        "apply-lost-p@c",
        "switched-p@c",
    ] {
        assert!(
            ["ok", "changed"].contains(&run.status(action).as_str()),
            "{action}: {}",
            run.status(action)
        );
    }
    assert_swapped(&lab);
    assert!(receiver_alive(&lab, "c"), "P receives (from B)");
    assert_eq!(source_mode(&lab, "c"), "PASSIVE");

    // A's lost updates: kept, re-applied on B, replicated to A and to P.
    let lost_a = artifact(&run.state, "rollback-a@a", "gtm.lost");
    assert_eq!(sets(&lost_a).len(), 50);
    // P rolled off A's updates that B never had, and its own later updates.
    let lost_p = artifact(&run.state, "rollback-p@c", "gtm.lost");
    let p_sets = sets(&lost_p);
    assert_eq!(p_sets.len(), 52, "{lost_p}");
    assert!(
        p_sets.contains(&"losttrans(50)=\"50\"".to_owned()),
        "{lost_p}"
    );
    assert!(p_sets.contains(&"P(40)=\"40\"".to_owned()), "{lost_p}");
    // By default P's lost updates are set aside (quarantined) for the application owner.
    let quarantine = artifact(&run.state, "apply-lost-p@c", "lost.quarantine");
    assert_eq!(sets(&quarantine), p_sets);
    assert_eq!(count(&lab, "c", "P"), 0, "P's own updates were rolled off");

    assert_eq!(count(&lab, "b", "losttrans"), 50);
    wait_count(&lab, "a", "losttrans", 50);
    wait_count(&lab, "c", "losttrans", 50);
    // A←B→P: an update on B reaches both; P still accepts its own updates (-updok).
    lab.m("b", "set ^after(1)=1");
    wait_count(&lab, "a", "after", 1);
    wait_count(&lab, "c", "after", 1);
    lab.m("c", "set ^P(41)=41");
    assert_eq!(count(&lab, "c", "P"), 1);
}

/// Starts the switchover in the background and kills it (SIGKILL) right after the event
/// `kind` for `action`; returns the events read until then.
fn apply_and_kill(lab: &GtmLab, extra: &[&str], kind: &str, action: &str) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("apply")
        .arg(switchover_file())
        .arg("-i")
        .arg(lab.rig.inventory())
        .args(["--format", "json", "--state"])
        .arg(lab.rig.dir.path().join("state"))
        .args(args(extra))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runbook runs");
    let stdout = child.stdout.take().expect("piped");
    let mut seen = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        let event: serde_json::Value = serde_json::from_str(&line).expect("JSON event");
        seen.push(line);
        if event["event"] == kind && event["action"] == action {
            // The action's command is running on its host: its wrapper has recorded it.
            let (_, host) = action.split_once('@').expect("STEP@HOST");
            let records = lab.rig.root(host).join(".runbook/actions");
            let deadline = Instant::now() + Duration::from_secs(20);
            while !all_files(&records)
                .iter()
                .any(|p| crate::apply::is_pgid_record(p, Some(action)))
            {
                assert!(Instant::now() < deadline, "{action} never ran on {host}");
                std::thread::sleep(Duration::from_millis(20));
            }
            child.kill().expect("kill -9");
            killed = true;
            break;
        }
    }
    let _ = child.wait();
    assert!(killed, "never saw {kind} {action}: {seen:#?}");
    seen
}

/// How many times GT.M logged the start of a server in `log` on `host`.
pub(crate) fn starts(lab: &GtmLab, host: &str, log: &str, what: &str) -> usize {
    std::fs::read_to_string(lab.dir(host).join("log").join(log))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(what))
        .count()
}

#[test]
fn killed_at_the_point_of_no_return_it_resumes_and_runs_nothing_twice() {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    set_up(&lab);
    stop_receiver(&lab, "b");
    write_lost_updates(&lab);
    let extra = ["-e", "allow_data_loss=true"];

    // kill -9 of `runbook` as soon as B's start as originating runs on B.
    let first = apply_and_kill(
        &lab,
        &extra,
        "action_started",
        "switch.start-b-originating@b",
    );
    let started_first: Vec<String> = first
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "action_started")
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(started_first.contains(&"switch.stop-source-a@a".to_owned()));

    // `runbook apply` again: it resumes the killed run by itself.
    let run = switchover(&lab, &extra);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    crate::runbooks_gtm::assert_freeze_measured(&run);
    let resumed: Vec<String> = run
        .events
        .iter()
        .filter(|e| e["event"] == "action_resumed")
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    // Everything that finished before the kill is resumed, not run again.
    for action in &started_first {
        if action == "switch.start-b-originating@b" {
            continue;
        }
        assert!(resumed.contains(action), "{action} resumed: {resumed:?}");
        assert!(
            !run.start_order().contains(action),
            "{action} ran twice: {:?}",
            run.start_order()
        );
    }
    // The point of no return ran once: its command was on the host when `runbook` died, and
    // the resume settled it from the host's record instead of starting it again.
    let resumed_b = run
        .events
        .iter()
        .find(|e| e["event"] == "action_resumed" && e["action"] == "switch.start-b-originating@b");
    let how = resumed_b.map_or_else(
        || {
            panic!(
                "switch.start-b-originating@b not resumed: {:#?}",
                run.events
            )
        },
        |e| e["how"].to_string(),
    );
    assert!(
        !run.start_order()
            .contains(&"switch.start-b-originating@b".to_owned()),
        "started again ({how}): {:?}",
        run.start_order()
    );
    // GT.M's own logs: one start of B's Source Server to A, one of A's Receiver Server.
    assert_eq!(
        starts(&lab, "b", "source_B_A.log", "Source Server with Pid"),
        1
    );
    assert_eq!(
        starts(&lab, "a", "receive.log", "Receiver Server with Pid"),
        1
    );
    // One rollback: no earlier lost-transaction file was moved aside.
    let moved: Vec<_> = std::fs::read_dir(lab.dir("a"))
        .expect("A's directory")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("gtm.lost."))
        .collect();
    assert!(moved.is_empty(), "rollback ran twice: {moved:?}");

    // The end state: roles swapped, data complete.
    assert_swapped(&lab);
    assert_eq!(
        sets(&artifact(&run.state, "rollback-a@a", "gtm.lost")).len(),
        50
    );
    assert_eq!(count(&lab, "b", "losttrans"), 50);
    wait_count(&lab, "a", "losttrans", 50);
    assert_eq!(count(&lab, "a", "A"), 100);
}

#[test]
fn a_failure_before_the_point_of_no_return_leaves_a_originating() {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    set_up(&lab);
    // The real runbook with one failure injected at the end of phase `stop`, after A's Source
    // Server and B's Receiver Server (and passive Source Server) were stopped.
    let anchor = "    on_failure:\n      # Before the point of no return";
    let file = with_switch_block(&lab, "switchover-sabotaged.yaml", |text| {
        assert!(text.contains(anchor));
        text.replacen(
            anchor,
            &format!(
                "      - {{id: injected-failure, module: shell, on: replicating, needs: [stop-receiver-b], with: {{cmd: \"echo injected >&2; exit 1\"}}}}\n{anchor}"
            ),
            1,
        )
    });
    let run = lab.rig.apply_file(&file, &lab.rig.inventory(), &args(&[]));
    assert_eq!(run.code, 1, "{}\n{:#?}", run.stderr, run.events);
    crate::runbooks_gtm::assert_freeze_not_over(&run);
    assert_eq!(run.status("switch.stop-source-a@a"), "changed");
    assert_eq!(run.status("switch.stop-receiver-b@b"), "changed");
    assert_eq!(run.status("switch.injected-failure@b"), "failed");
    assert_eq!(run.status("switch.start-b-originating@b"), "blocked");
    // What was stopped was restarted: A originates again, B receives again.
    assert_eq!(run.status("switch.restore-receiver-b@b"), "changed");
    assert_eq!(run.status("switch.restore-source-a-to-b@a"), "changed");
    assert_eq!(source_mode(&lab, "a"), "ACTIVE");
    assert_eq!(source_mode(&lab, "b"), "PASSIVE");
    assert!(receiver_alive(&lab, "b"));
    // And replication A→B works as before.
    lab.m("a", "set ^after(1)=1");
    wait_count(&lab, "b", "after", 1);
}

/// The real runbook with `steps` (YAML list items) added at the end of phase `drain` of its
/// switchover block, right after the drain gate passed and before the freeze.
fn after_the_drain_gate(lab: &GtmLab, steps: &str) -> PathBuf {
    let anchor = "  - name: stop\n";
    with_switch_block(lab, "switchover-after-drain.yaml", |text| {
        assert!(text.contains(anchor));
        text.replacen(anchor, &format!("{steps}{anchor}"), 1)
    })
}

/// The real runbook, as `name` next to a copy of the switchover block it uses changed by
/// `change` (the same relative layout as `runbooks/`), so a test can inject steps into the
/// block. Returns the runbook's path.
fn with_switch_block(lab: &GtmLab, name: &str, change: impl Fn(&str) -> String) -> PathBuf {
    let root = lab.rig.dir.path().join("runbooks");
    let block = std::fs::read_to_string(repo("runbooks/blocks/gtm/switchover.yaml"))
        .expect("the switchover block");
    std::fs::create_dir_all(root.join("blocks/gtm")).expect("mkdir");
    std::fs::create_dir_all(root.join("gtm")).expect("mkdir");
    std::fs::write(root.join("blocks/gtm/switchover.yaml"), change(&block)).expect("write");
    let text = std::fs::read_to_string(switchover_file()).expect("the runbook");
    assert!(text.contains("uses: ../blocks/gtm/switchover.yaml"));
    let file = root.join("gtm").join(name);
    std::fs::write(&file, text).expect("write");
    file
}

#[test]
fn a_receiver_lost_after_the_drain_gate_aborts_before_promote_and_a_stays_originating() {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    set_up(&lab);
    // The drain gate passed; then B's Receiver Server goes down while the application still
    // writes on A until the freeze: the drain cannot be confirmed inside the freeze.
    let gtm = "dir: \"{{ vars.gtm_dir }}\", instance: \"{{ vars.gtm_instance }}\"";
    let file = after_the_drain_gate(
        &lab,
        &format!(
            "      - {{id: injected-receiver-down, module: gtm.receiver_stop, on: replicating, with: {{{gtm}, timeout: 2s}}}}\n\
             \x20     - {{id: injected-late-writes, module: gtm.mumps, on: originating, with: {{{gtm}, code: \"for i=1:1:10 set ^late(i)=i\"}}}}\n"
        ),
    );
    let run = lab.rig.apply_file(&file, &lab.rig.inventory(), &args(&[]));
    assert_eq!(run.code, 1, "{}\n{:#?}", run.stderr, run.events);
    crate::runbooks_gtm::assert_freeze_not_over(&run);
    assert_eq!(run.status("switch.drain@a"), "ok");
    assert_eq!(run.status("switch.injected-receiver-down@b"), "changed");
    assert_eq!(run.status("switch.injected-late-writes@a"), "changed");
    // A's Source Server stopped without a confirmed zero backlog (GT.M exits 0): the step fails.
    assert_eq!(run.status("switch.stop-source-a@a"), "failed");
    let message = run.message("switch.stop-source-a@a");
    assert!(
        message.contains("without a confirmed zero backlog") && message.contains("REPLBACKLOG"),
        "{message}"
    );
    for action in [
        "switch.stop-receiver-b@b",
        "switch.start-b-originating@b",
        "rollback-a@a",
    ] {
        assert_eq!(run.status(action), "blocked", "{action}");
    }
    // Restored: A originates again, B receives again, and the late updates reach B.
    assert_eq!(run.status("switch.restore-receiver-b@b"), "changed");
    assert_eq!(run.status("switch.restore-source-a-to-b@a"), "changed");
    assert_eq!(source_mode(&lab, "a"), "ACTIVE");
    assert_eq!(source_mode(&lab, "b"), "PASSIVE");
    assert!(receiver_alive(&lab, "b"));
    assert!(
        !lab.dir("a").join("gtm.lost").exists(),
        "nothing rolled back"
    );
    wait_count(&lab, "b", "late", 10);
    assert_eq!(count(&lab, "b", "A"), 100);
}

#[test]
fn every_update_made_before_the_freeze_is_on_b_afterwards() {
    let lab = GtmLab::new(&[("a", "originating"), ("b", "replicating")]);
    set_up(&lab);
    // The application: one update per mumps process on A until `app_hold` asks it to stop; it
    // says it stopped (`held`) only after its last update returned.
    let hold = lab.dir("a").join("app.hold");
    let held = lab.dir("a").join("app.held");
    let writer = {
        let (dir, hold, held) = (lab.dir("a"), hold.clone(), held.clone());
        std::thread::spawn(move || {
            let mut written = 0usize;
            while !hold.exists() {
                assert!(
                    crate::gtm::m_in(
                        &dir,
                        "A",
                        &format!("set ^w({})={}", written + 1, written + 1)
                    ),
                    "an update on A before the freeze failed"
                );
                written += 1;
            }
            std::fs::write(&held, b"").expect("held");
            written
        })
    };
    while count(&lab, "a", "w") < 20 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let app_hold = format!(
        "app_hold=touch '{}'; while [ ! -f '{}' ]; do sleep 0.05; done",
        hold.display(),
        held.display()
    );
    let run = lab.rig.apply_file(
        &switchover_file(),
        &lab.rig.inventory(),
        &[
            "-e",
            "drain_timeout=90s",
            "-e",
            "drain_max_backlog=1000000",
            "-e",
            &app_hold,
        ],
    );
    let written = writer.join().expect("the writer");
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    crate::runbooks_gtm::assert_freeze_measured(&run);
    assert_eq!(run.status("switch.app-hold@a"), "changed");
    assert_eq!(run.status("switch.stop-source-a@a"), "changed");
    assert_eq!(run.status("apply-lost-b@b"), "skipped", "nothing in flight");
    assert!(written >= 20, "{written}");
    assert_swapped(&lab);
    // Every update A accepted before the freeze is on B, and back on A from B.
    assert_eq!(count(&lab, "b", "w"), written);
    assert_eq!(
        lab.m("b", &format!("write ^w({written})")),
        written.to_string()
    );
    lab.m("b", "set ^after(1)=1");
    wait_count(&lab, "a", "after", 1);
    assert_eq!(count(&lab, "a", "w"), written);
}
