//! The lock each run holds on its hosts, the run's own lock, and the ssh masters of a killed run,
//! over real sshd hosts.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apply::Rig;

const HEADER: &str =
    "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: hostlock, version: 1.0.0}\n";

/// A step command that records `WHO` in the host's `record` file, then waits (at most two
/// minutes) until `RELEASE` exists.
fn hold(release: &Path) -> String {
    format!(
        "echo {{{{ params.who }}}} >> $RUNBOOK_HOST_ROOT/record; i=0; while [ ! -e {} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done",
        release.display()
    )
}

fn runbook(rig: &Rig, steps: &str) -> PathBuf {
    let file = rig.dir.path().join("hostlock.yaml");
    let text = format!("{HEADER}params:\n  who: {{type: string, default: first}}\nsteps:\n{steps}");
    fs_err::write(&file, text).expect("write the runbook");
    file
}

/// `runbook apply` with JSON events, in the background.
fn spawn(file: &Path, inventory: &Path, state: &Path, operator: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("apply")
        .arg(file)
        .arg("-i")
        .arg(inventory)
        .args(["--format", "json", "--persist", "5s", "--state"])
        .arg(state)
        .env("RUNBOOK_OPERATOR", operator)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runbook runs")
}

/// `runbook ARGS`: exit code and standard error.
fn runbook_cmd(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(args)
        .env("RUNBOOK_OPERATOR", "bob")
        .env("NO_COLOR", "1")
        .output()
        .expect("runbook runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn apply(file: &Path, inventory: &Path, state: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "apply".as_ref(),
        file.as_os_str(),
        "-i".as_ref(),
        inventory.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        // Masters outlive a run (shared with the next) for 5 s, as in the killed run.
        "--persist".as_ref(),
        "5s".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    runbook_cmd(&args)
}

/// Reads events until one matches; returns every event read.
fn read_until(
    lines: &mut std::io::Lines<BufReader<ChildStdout>>,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let event: serde_json::Value =
            serde_json::from_str(&line.expect("a line")).expect("a JSON event");
        let stop = done(&event);
        seen.push(event);
        if stop {
            return seen;
        }
    }
    panic!("the apply ended before the event awaited: {seen:#?}");
}

fn started(action: &str) -> impl Fn(&serde_json::Value) -> bool + '_ {
    move |e| e["event"] == "action_started" && e["action"] == action
}

/// Polls `ready` every 50 ms until it holds; panics after `bound` (a guard against a hang, far
/// above what it takes). Returns how long it took.
fn wait_for(what: &str, bound: Duration, ready: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < bound, "{what} after {bound:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

fn lines(path: &Path) -> Vec<String> {
    fs_err::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn hostname() -> String {
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned()
}

/// Pids of the ssh master processes to `address` port `port` (`ssh ... -M ... -p PORT ...
/// ADDRESS`).
fn masters(address: &str, port: u16) -> Vec<u32> {
    let port = port.to_string();
    let mut out = Vec::new();
    for entry in fs_err::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_master = args.first().is_some_and(|a| a.ends_with("ssh"))
            && args.iter().any(|a| a == "-M")
            && args.windows(2).any(|w| w[0] == "-p" && w[1] == port)
            && args.last().is_some_and(|a| a == address);
        if is_master {
            out.push(pid);
        }
    }
    out
}

fn endpoint(rig: &Rig, host: &str) -> (String, u16) {
    let inventory = runbook::inventory::Inventory::load(&rig.inventory()).expect("lab inventory");
    let h = inventory
        .hosts
        .iter()
        .find(|h| h.name == host)
        .expect("a lab host");
    (h.address.clone(), h.port.expect("lab hosts have a port"))
}

/// A copy of the lab's inventory at another path.
fn copied_inventory(rig: &Rig) -> PathBuf {
    let copy = rig.dir.path().join("copy-of-inventory.yaml");
    fs_err::copy(rig.inventory(), &copy).expect("copy the inventory");
    copy
}

#[test]
fn a_second_run_on_the_same_hosts_is_refused_before_it_changes_anything() {
    let rig = Rig::new(2);
    let release = rig.dir.path().join("release");
    let file = runbook(
        &rig,
        &format!(
            "  - {{id: work, module: shell, on: all, with: {{cmd: \"{}\"}}}}\n",
            hold(&release)
        ),
    );
    let first_state = rig.dir.path().join("state-1");
    let mut first = spawn(&file, &rig.inventory(), &first_state, "alice");
    let mut events = BufReader::new(first.stdout.take().expect("piped")).lines();
    let run_id = read_until(&mut events, |e| e["event"] == "run_started")[0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let records = [rig.root("a").join("record"), rig.root("b").join("record")];
    wait_for(
        "the first run's step never started",
        Duration::from_secs(60),
        || records.iter().all(|r| lines(r) == ["first"]),
    );

    // Another state directory and a copy of the inventory: today's local lock does not see it.
    let copy = copied_inventory(&rig);
    let second_state = rig.dir.path().join("state-2");
    let (code, _, stderr) = apply(&file, &copy, &second_state, &["-e", "who=second"]);
    assert_eq!(code, 6, "refused: {stderr}");
    assert!(
        stderr.contains("this apply was refused before it changed anything"),
        "{stderr}"
    );
    for host in ["a", "b"] {
        let named = format!(
            "host `{host}` is in use by another run: run {run_id} (apply) by alice from controller {} (pid {})",
            hostname(),
            first.id()
        );
        assert!(stderr.contains(&named), "{named}\nin:\n{stderr}");
    }
    let (code, _, stderr) = apply(&file, &copy, &second_state, &["--dry-run"]);
    assert_eq!(code, 6, "a dry run is refused too: {stderr}");
    assert!(stderr.contains("this dry run was refused"), "{stderr}");
    for record in &records {
        assert_eq!(lines(record), ["first"], "only the first run acted");
    }
    let state = second_state.as_os_str();
    let (_, listed, _) = runbook_cmd(&["runs".as_ref(), "--state".as_ref(), state]);
    assert!(
        !listed.contains("hostlock"),
        "the refused apply recorded no run: {listed}"
    );

    fs_err::write(&release, "").expect("release");
    let status = first.wait().expect("the first apply ends");
    assert!(status.success(), "the first apply succeeds");
    let (code, _, stderr) = apply(&file, &copy, &second_state, &["-e", "who=second"]);
    assert_eq!(code, 0, "free once the first run ended: {stderr}");
    for record in &records {
        assert_eq!(lines(record), ["first", "second"]);
    }
}

#[test]
fn a_killed_run_frees_its_hosts_and_its_idle_masters_go_within_seconds() {
    let rig = Rig::new(2);
    let release = rig.dir.path().join("release");
    let file = runbook(
        &rig,
        &format!(
            "  - {{id: quick, module: shell, on: a, with: {{cmd: \"true\"}}}}\n  - {{id: long, module: shell, on: b, with: {{cmd: \"{}\"}}}}\n",
            hold(&release)
        ),
    );
    let mut run = spawn(
        &file,
        &rig.inventory(),
        &rig.dir.path().join("state-1"),
        "alice",
    );
    let mut events = BufReader::new(run.stdout.take().expect("piped")).lines();
    let seen = read_until(&mut events, started("long@b"));
    if !seen
        .iter()
        .any(|e| e["event"] == "action_finished" && e["action"] == "quick@a")
    {
        read_until(&mut events, |e| {
            e["event"] == "action_finished" && e["action"] == "quick@a"
        });
    }
    let record = rig.root("b").join("record");
    wait_for(
        "the long step never started",
        Duration::from_secs(60),
        || lines(&record) == ["first"],
    );
    let (a, b) = (endpoint(&rig, "a"), endpoint(&rig, "b"));
    let (master_a, master_b) = (masters(&a.0, a.1), masters(&b.0, b.1));
    assert_eq!(master_a.len(), 1, "one master for a");
    assert_eq!(master_b.len(), 1, "one master for b");
    let alive = |pids: &[u32]| {
        pids.iter()
            .any(|p| Path::new("/proc").join(p.to_string()).exists())
    };

    run.kill().expect("kill -9 the apply");
    run.wait().expect("reaped");
    let killed = Instant::now();

    // The host locks are freed by the hosts' kernels as the killed run's connections notice:
    // another run, from another state directory and inventory path, takes both at once.
    let copy = copied_inventory(&rig);
    let other = rig.dir.path().join("state-2");
    let quick = rig.dir.path().join("quick.yaml");
    fs_err::write(
        &quick,
        format!(
            "{HEADER}steps:\n  - {{id: mark, module: shell, on: all, with: {{cmd: \"echo next >> $RUNBOOK_HOST_ROOT/next\"}}}}\n"
        ),
    )
    .expect("write");
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        let attempt = apply(&quick, &copy, &other, &[]);
        if attempt.0 != 6 {
            break attempt;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "the killed run's host locks were never released: {}",
            attempt.2
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(outcome.0, 0, "{}", outcome.2);
    eprintln!(
        "measured: a new run started right after kill -9 held both hosts at attempt {attempts}, done {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(lines(&rig.root("a").join("next")), ["next"]);
    assert_eq!(lines(&rig.root("b").join("next")), ["next"]);
    // It did so over the killed run's own masters (the same endpoints: shared, `persist.rs`):
    // a master kept for the next run holds no lock of the dead one.
    assert_eq!(masters(&a.0, a.1), master_a, "a's master was reused");
    assert_eq!(masters(&b.0, b.1), master_b, "b's master was reused");

    // Nothing of either run is running on `a` now: its master goes ControlPersist (5 s) after
    // the last lock command's channel closed.
    wait_for(
        "the master of an idle host outlived its killed run",
        Duration::from_secs(60),
        || !alive(&master_a),
    );
    eprintln!(
        "measured: the idle host's master exited {:?} after kill -9 of apply",
        killed.elapsed()
    );
    assert!(
        alive(&master_b),
        "the master carrying the killed run's still-running command is kept (its output pipe is the connection)"
    );

    // Once the killed run's command ends, its master goes too.
    fs_err::write(&release, "").expect("release");
    let after = wait_for(
        "the master outlived the killed run's last command",
        Duration::from_secs(90),
        || !alive(&master_b),
    );
    eprintln!(
        "measured: the busy host's master exited {after:?} after its last command was released"
    );
}

#[test]
fn abandon_is_refused_while_the_run_lives_and_accepted_once_it_is_dead() {
    let rig = Rig::new(1);
    let release = rig.dir.path().join("release");
    let file = runbook(
        &rig,
        &format!(
            "  - {{id: work, module: shell, on: a, with: {{cmd: \"{}\"}}}}\n",
            hold(&release)
        ),
    );
    let state = rig.dir.path().join("state");
    let mut run = spawn(&file, &rig.inventory(), &state, "alice");
    let mut events = BufReader::new(run.stdout.take().expect("piped")).lines();
    let seen = read_until(&mut events, started("work@a"));
    let run_id = seen[0]["run_id"].as_str().expect("run id").to_owned();
    let abandon = || {
        runbook_cmd(&[
            "abandon".as_ref(),
            run_id.as_ref(),
            "--state".as_ref(),
            state.as_os_str(),
        ])
    };
    let (code, _, stderr) = abandon();
    assert_eq!(code, 6, "{stderr}");
    let named = format!(
        "run {run_id} is live: pid {} on {} by alice",
        run.id(),
        hostname()
    );
    assert!(stderr.contains(&named), "{named}\nin:\n{stderr}");

    run.kill().expect("kill -9 the apply");
    run.wait().expect("reaped");
    let (code, stdout, stderr) = abandon();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("abandoned run {run_id}")),
        "{stdout}"
    );
    fs_err::write(&release, "").expect("release the orphaned command");
}

#[test]
fn a_connection_stays_up_through_idle_gaps_and_two_entries_for_one_host_share_its_lock() {
    let rig = Rig::new(2);
    // `a2` is `a` under another name: the run must not refuse itself.
    let text = fs_err::read_to_string(rig.inventory()).expect("read");
    let start = text.find("  \"a\":\n").expect("host a");
    let end = text.find("  \"b\":\n").expect("host b");
    let alias = text[start..end].replacen("  \"a\":", "  \"a2\":", 1);
    let inventory = rig.dir.path().join("aliases.yaml");
    fs_err::write(
        &inventory,
        format!("{}{alias}{}", &text[..end], &text[end..]),
    )
    .expect("write");
    let file = rig.dir.path().join("gaps.yaml");
    // `a` is idle for longer than ControlPersist while `b` works; its master must still be there.
    fs_err::write(
        &file,
        format!(
            "{HEADER}phases:\n  - name: main\n    order: sequential\n    steps:\n      - {{id: one, module: shell, on: [a, a2], with: {{cmd: \"echo one >> $RUNBOOK_HOST_ROOT/gaps\"}}}}\n      - {{id: gap, module: shell, on: b, with: {{cmd: \"sleep 7\"}}}}\n      - {{id: two, module: shell, on: a, with: {{cmd: \"echo two >> $RUNBOOK_HOST_ROOT/gaps\"}}}}\n"
        ),
    )
    .expect("write");
    let (code, _, stderr) = apply(&file, &inventory, &rig.dir.path().join("state"), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines(&rig.root("a").join("gaps")), ["one", "one", "two"]);
}

#[test]
fn a_run_whose_host_lock_ends_sends_nothing_more_to_that_host() {
    let rig = Rig::new(1);
    let release = rig.dir.path().join("release");
    let file = runbook(
        &rig,
        &format!(
            "  - {{id: work, module: shell, on: a, with: {{cmd: \"{}\"}}}}\n  - {{id: after, module: shell, on: a, with: {{cmd: \"echo after >> $RUNBOOK_HOST_ROOT/after\"}}}}\n",
            hold(&release)
        ),
    );
    let mut run = spawn(
        &file,
        &rig.inventory(),
        &rig.dir.path().join("state"),
        "alice",
    );
    let mut events = BufReader::new(run.stdout.take().expect("piped")).lines();
    read_until(&mut events, started("work@a"));
    // The process on the host that holds the run's lock, as its record names it.
    let holders = rig.root("a").join(".runbook/holders");
    let holder = fs_err::read_dir(&holders)
        .expect("the lock's holders")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.parse::<u32>().is_ok())
        .expect("a holder record");
    let killed = Command::new("kill")
        .args(["-9", &holder])
        .status()
        .expect("kill");
    assert!(killed.success());
    wait_for(
        "the lock's process survived kill -9",
        Duration::from_secs(30),
        || !Path::new("/proc").join(&holder).exists(),
    );
    // The channel's end travels to the controller in moments; leave it a wide margin before the
    // next action is sent (a late notice would let `after` run, and the test fail, not pass).
    std::thread::sleep(Duration::from_secs(1));
    fs_err::write(&release, "").expect("release");
    let rest: Vec<String> = events.map(|l| l.expect("a line")).collect();
    assert!(!run.wait().expect("ends").success(), "the run fails");
    let after = rest
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "action_finished" && e["action"] == "after@a")
        .expect("after@a finished");
    assert_eq!(after["status"], "unreachable", "{after}");
    assert!(
        after["message"]
            .as_str()
            .is_some_and(|m| m.contains("the run's lock on the host ended")),
        "{after}"
    );
    assert!(
        !rig.root("a").join("after").exists(),
        "nothing more ran on the host"
    );
}

#[test]
fn a_local_host_is_locked_the_same_way() {
    let rig = Rig::new(1);
    let root = rig.dir.path().join("local-root");
    fs_err::create_dir_all(&root).expect("mkdir");
    let inventory = rig.dir.path().join("local.yaml");
    fs_err::write(
        &inventory,
        "kind: Inventory\nhosts:\n  here:\n    connection: local\n",
    )
    .expect("write");
    let release = rig.dir.path().join("release");
    let file = runbook(
        &rig,
        &format!(
            "  - {{id: work, module: shell, on: here, with: {{cmd: \"{}\"}}}}\n",
            hold(&release)
        ),
    );
    let command = |state: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
        cmd.arg("apply")
            .arg(&file)
            .arg("-i")
            .arg(&inventory)
            .args(["--format", "json", "--state"])
            .arg(rig.dir.path().join(state))
            .env("RUNBOOK_HOST_ROOT", &root)
            .env("RUNBOOK_OPERATOR", "alice");
        cmd
    };
    let mut first = command("state-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs");
    let mut events = BufReader::new(first.stdout.take().expect("piped")).lines();
    read_until(&mut events, started("work@here"));
    let second = command("state-2").output().expect("runs");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "host `here` is in use by another run: run {}",
            fs_err::read_dir(rig.dir.path().join("state-1/runs"))
                .expect("the first run's directory")
                .flatten()
                .next()
                .expect("one run")
                .file_name()
                .to_string_lossy()
        )),
        "{stderr}"
    );
    fs_err::write(&release, "").expect("release");
    assert!(first.wait().expect("ends").success());
    assert_eq!(
        lines(&root.join("record")),
        ["first"],
        "only the first run acted"
    );
}
