//! The lab (`runbook::lab`, `runbook lab ...`): real sshd processes on loopback addresses.
//!
//! Every lab lives in its own temporary directory on its own addresses and ports, so these
//! tests run in parallel. Each `Lab` is owned by a guard that stops its sshd processes when
//! dropped, also when an assertion fails half-way.

use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use runbook::inventory::{Inventory, InventoryFormat};
use runbook::lab::{Lab, LabConfig, LabError};
use serde_json::Value as Json;
use tempfile::TempDir;

use crate::support::run;

/// A lab and its directory. Fields drop in order: the lab (stopping its sshd processes), then
/// the directory.
struct TestLab {
    lab: Lab,
    dir: TempDir,
}

fn up(hosts: &[&str]) -> TestLab {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let lab = Lab::up(LabConfig::with_hosts(dir.path(), hosts.iter().copied()))
        .unwrap_or_else(|e| panic!("lab up: {e}"));
    TestLab { lab, dir }
}

fn ssh(lab: &Lab, host: &str, command: &str) -> Output {
    lab.ssh_command(host)
        .arg(command)
        .output()
        .expect("ssh runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether `pid` is a live process (a zombie is not: nothing here reaps daemonized sshd).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s[s.rfind(')').expect("stat has `)`") + 1..]
            .split_whitespace()
            .next()
            .expect("stat has a state");
        !matches!(state, "Z" | "X" | "x")
    })
}

fn port_open(address: Ipv4Addr, port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((address, port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// An ssh client, killed when dropped (a failing test leaves no client behind; the remote
/// `sleep` ends by itself).
struct Session(Child);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A long-running session on `host`; returns the ssh client and the remote shell's pid.
fn long_session(lab: &Lab, host: &str) -> (Session, u32) {
    let mut child = lab
        .ssh_command(host)
        .arg("echo $$; exec sleep 30")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("the remote pid");
    let pid = line.trim().parse().expect("a pid");
    (Session(child), pid)
}

/// Waits (bounded) for a child to exit.
fn exits_within(session: &mut Session, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if session.0.try_wait().expect("try_wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn each_host_has_its_own_name_and_tree() {
    let t = up(&["a", "b", "c"]);
    for h in t.lab.hosts() {
        let out = ssh(&t.lab, &h.name, "echo $RUNBOOK_HOST $RUNBOOK_HOST_ROOT");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            format!("{} {}\n", h.name, h.root().display())
        );
        assert!(h.address.is_loopback() && h.address != Ipv4Addr::LOCALHOST);
    }
    // Consecutive addresses, distinct ports.
    let hosts = t.lab.hosts();
    assert_eq!(u32::from(hosts[1].address), u32::from(hosts[0].address) + 1);
    assert_eq!(u32::from(hosts[2].address), u32::from(hosts[1].address) + 1);

    let out = ssh(&t.lab, "a", "echo hello > \"$RUNBOOK_HOST_ROOT/only-a\"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let a_root = t.lab.host_root("a").expect("host a");
    let b_root = t.lab.host_root("b").expect("host b");
    assert_eq!(
        std::fs::read_to_string(a_root.join("only-a")).expect("written by a"),
        "hello\n"
    );
    assert!(!b_root.join("only-a").exists());
    let out = ssh(&t.lab, "b", "test -e \"$RUNBOOK_HOST_ROOT/only-a\"");
    assert_eq!(out.status.code(), Some(1), "b must not see a's file");
}

#[test]
fn strict_host_key_checking_stays_on() {
    let t = up(&["a", "b", "c"]);
    let known_hosts = t.lab.known_hosts_path();
    let original = std::fs::read_to_string(&known_hosts).expect("known_hosts");
    let lines: Vec<&str> = original.lines().collect();
    assert_eq!(lines.len(), 3, "{original}");
    for (line, h) in lines.iter().zip(t.lab.hosts()) {
        assert!(
            line.starts_with(&format!("[{}]:{} ssh-ed25519 AAAA", h.address, h.port)),
            "{line}"
        );
    }
    let key_of = |line: &str| line.split_once(' ').expect("host and key").1.to_owned();
    // b's entry now holds a's key; c's entry is gone.
    let b = &t.lab.hosts()[1];
    let corrupted = format!(
        "{}\n[{}]:{} {}\n",
        lines[0],
        b.address,
        b.port,
        key_of(lines[0])
    );
    std::fs::write(&known_hosts, corrupted).expect("rewrite known_hosts");

    let out = ssh(&t.lab, "b", "true");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || stderr.contains("Host key verification failed"),
        "{stderr}"
    );
    // An unknown host key is refused too (no accept-new), and not added.
    let out = ssh(&t.lab, "c", "true");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("Host key verification failed"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&known_hosts)
            .expect("known_hosts")
            .lines()
            .count(),
        2
    );
    // The intact entry still works.
    let out = ssh(&t.lab, "a", "true");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_stopped_host_is_unreachable_until_started_again() {
    let mut t = up(&["a", "b"]);
    let port = t.lab.host("b").expect("b").port;
    let (mut session, remote_pid) = long_session(&t.lab, "b");

    t.lab.stop_host("b").expect("stop b");
    assert!(!t.lab.is_up("b"));
    assert!(t.lab.is_up("a"));
    // Established sessions go down with the host.
    assert!(
        exits_within(&mut session, Duration::from_secs(5)),
        "the session on b survived stop_host"
    );
    assert!(!alive(remote_pid), "b's remote command survived stop_host");
    let out = ssh(&t.lab, "b", "true");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    let status = Lab::status(t.lab.dir()).expect("status");
    assert!(status[0].up && status[0].pid.is_some());
    assert!(!status[1].up && status[1].pid.is_none());

    t.lab.start_host("b").expect("start b");
    assert_eq!(t.lab.host("b").expect("b").port, port, "same port");
    let out = ssh(&t.lab, "b", "echo $RUNBOOK_HOST");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "b\n");
    assert!(
        Lab::status(t.lab.dir())
            .expect("status")
            .iter()
            .all(|h| h.up)
    );
    // Starting a running host changes nothing.
    let pid = t.lab.host("b").expect("b").pid;
    t.lab.start_host("b").expect("start b again");
    assert_eq!(t.lab.host("b").expect("b").pid, pid);
    assert!(matches!(
        t.lab.stop_host("zz"),
        Err(LabError::UnknownHost { .. })
    ));
}

#[test]
fn down_leaves_nothing_running() {
    let t = up(&["a", "b"]);
    let hosts = t.lab.hosts().to_vec();
    let pids: Vec<u32> = hosts.iter().map(|h| h.pid.expect("running")).collect();
    assert!(pids.iter().all(|&p| alive(p)));
    let (mut session, remote_pid) = long_session(&t.lab, "a");

    let report = Lab::down(t.lab.dir()).expect("down");
    assert!(report.found);
    assert_eq!(report.stopped.len(), 2, "{report:?}");
    for (h, pid) in hosts.iter().zip(&pids) {
        assert!(!alive(*pid), "sshd of {} (pid {pid}) still runs", h.name);
        assert!(!port_open(h.address, h.port), "{} still listens", h.name);
    }
    assert!(!alive(remote_pid), "a session's command survived down");
    assert!(exits_within(&mut session, Duration::from_secs(5)));
    assert!(!t.lab.dir().join("lab.json").exists());
    assert!(t.lab.dir().join("hosts/a/root").is_dir(), "files are kept");
    assert!(matches!(
        Lab::status(t.lab.dir()),
        Err(LabError::NotFound { .. })
    ));
    // Again: nothing to do, no error.
    assert!(
        Lab::down(t.lab.dir())
            .expect("down again")
            .stopped
            .is_empty()
    );

    // The directory can host a new lab, with the same keys.
    let key = std::fs::read(t.lab.identity_path()).expect("client key");
    let again = Lab::up(LabConfig::new(t.dir.path(), 2)).expect("up again");
    assert_eq!(
        std::fs::read(again.identity_path()).expect("client key"),
        key
    );
    let out = ssh(&again, "b", "true");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn dropping_a_lab_stops_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let hosts = {
        let lab = Lab::up(LabConfig::new(dir.path(), 2)).expect("up");
        lab.hosts().to_vec()
    };
    for h in &hosts {
        assert!(
            !alive(h.pid.expect("was running")),
            "{} survived drop",
            h.name
        );
        assert!(!port_open(h.address, h.port));
    }
    assert!(!dir.path().join("lab.json").exists());
}

#[test]
fn up_refuses_a_directory_with_a_running_lab() {
    let t = up(&["a"]);
    let err = Lab::up(LabConfig::new(t.dir.path(), 1)).expect_err("already running");
    assert!(matches!(err, LabError::AlreadyRunning { .. }), "{err}");
    assert!(err.to_string().contains("runbook lab down --dir"), "{err}");
    assert!(t.lab.is_up("a"), "the running lab is untouched");
}

#[test]
fn the_inventory_loads_and_matches_the_lab() {
    let t = up(&["a", "b", "c"]);
    let inv = Inventory::load(&t.lab.inventory_path())
        .unwrap_or_else(|ds| panic!("the lab inventory loads: {ds:?}"));
    assert_eq!(inv.format, InventoryFormat::Native);
    let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let client = t.lab.dir().join("client");
    for (h, l) in inv.hosts.iter().zip(t.lab.hosts()) {
        assert_eq!(h.address, l.address.to_string());
        assert_eq!(h.port, Some(l.port));
        assert_eq!(h.user.as_deref(), Some(t.lab.user()));
        let opt = |k: &str| h.ssh_options.get(k).map(String::as_str);
        let path = |p: PathBuf| p.display().to_string();
        assert_eq!(
            opt("UserKnownHostsFile"),
            Some(path(client.join("known_hosts")).as_str())
        );
        assert_eq!(
            opt("IdentityFile"),
            Some(path(client.join("id_ed25519")).as_str())
        );
        assert_eq!(opt("IdentitiesOnly"), Some("yes"));
        assert_eq!(opt("StrictHostKeyChecking"), Some("yes"));
        assert_eq!(h.vars.get("host_root"), Some(&Json::String(path(l.root()))));
        assert!(h.groups.contains("lab"));
    }
    assert_eq!(inv.groups["lab"].hosts, [0, 1, 2]);

    // The inventory's options alone reach the host, with strict checking.
    let h = &inv.hosts[1];
    let mut cmd = Command::new("ssh");
    cmd.args([
        "-p",
        &h.port.expect("lab hosts have a port").to_string(),
        "-o",
        "BatchMode=yes",
    ]);
    for (k, v) in &h.ssh_options {
        cmd.arg("-o").arg(format!("{k}={v}"));
    }
    let out = cmd
        .arg(format!(
            "{}@{}",
            h.user.as_deref().expect("user"),
            h.address
        ))
        .arg("echo $RUNBOOK_HOST")
        .stdin(Stdio::null())
        .output()
        .expect("ssh runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "b\n");
}

#[test]
fn the_first_address_is_honoured() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = LabConfig {
        first_address: Some(Ipv4Addr::new(127, 42, 7, 255)),
        ..LabConfig::with_hosts(dir.path(), ["x", "y"])
    };
    let lab = Lab::up(config).expect("up");
    let addresses: Vec<Ipv4Addr> = lab.hosts().iter().map(|h| h.address).collect();
    assert_eq!(
        addresses,
        [Ipv4Addr::new(127, 42, 7, 255), Ipv4Addr::new(127, 42, 8, 0)]
    );
    let out = ssh(&lab, "y", "echo $RUNBOOK_HOST");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "y\n");
}

#[test]
fn bad_configurations_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cases: Vec<(LabConfig, &str)> = vec![
        (
            LabConfig::with_hosts(dir.path().join("n"), ["a", "a"]),
            "named twice",
        ),
        (
            LabConfig::with_hosts(dir.path().join("n"), ["-a"]),
            "invalid host name",
        ),
        (
            LabConfig::with_hosts(dir.path().join("n"), [".."]),
            "invalid host name",
        ),
        (LabConfig::new(dir.path().join("n"), 0), "at least one host"),
        (
            LabConfig {
                first_address: Some(Ipv4Addr::new(10, 0, 0, 1)),
                ..LabConfig::new(dir.path().join("n"), 1)
            },
            "127.0.0.0/8",
        ),
        (
            LabConfig::new(dir.path().join("with space"), 1),
            "without spaces",
        ),
    ];
    for (config, expected) in cases {
        let err = Lab::up(config).expect_err("refused");
        assert!(matches!(err, LabError::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    assert!(!dir.path().join("n").exists(), "nothing was created");
}

#[test]
fn purge_removes_a_lab_but_not_any_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let lab_dir = dir.path().join("lab");
    let mut lab = Lab::up(LabConfig::new(&lab_dir, 1)).expect("up");
    lab.detach();
    let pid = lab.hosts()[0].pid.expect("running");
    let report = Lab::purge(&lab_dir).expect("purge");
    assert_eq!(report.stopped, [("a".to_owned(), pid)]);
    assert!(!alive(pid));
    assert!(!lab_dir.exists());

    let other = dir.path().join("precious");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("data"), "keep me").expect("write");
    let err = Lab::purge(&other).expect_err("not a lab");
    assert!(
        err.to_string().contains("does not look like a lab"),
        "{err}"
    );
    assert!(other.join("data").exists());
}

/// Runs `runbook lab down` for a lab started through the CLI, however the test ends.
struct CliLab(PathBuf);

impl Drop for CliLab {
    fn drop(&mut self) {
        let _ = Lab::down(&self.0);
    }
}

fn recorded_pids(dir: &Path) -> Vec<(String, u32)> {
    let state: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).expect("lab.json"))
            .expect("lab.json is JSON");
    state["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().expect("name").to_owned(),
                u32::try_from(h["pid"].as_u64().expect("pid")).expect("a pid"),
            )
        })
        .collect()
}

#[test]
fn cli_up_status_inventory_down() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("lab");
    let guard = CliLab(dir.clone());
    let d = dir.to_str().expect("UTF-8 path");

    let out = run(&["lab", "up", "--dir", d, "-n", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let inventory = dir.join("inventory.yaml");
    assert!(
        out.stdout.contains(&inventory.display().to_string()),
        "{}",
        out.stdout
    );
    let pids = recorded_pids(&dir);
    assert_eq!(pids.len(), 2);
    for (name, pid) in &pids {
        assert!(alive(*pid), "{name}");
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(name.as_str()) && l.contains(&pid.to_string())),
            "{}",
            out.stdout
        );
    }

    let out = run(&["lab", "status", "--dir", d]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    for (row, name) in rows.iter().zip(["a", "b"]) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[..2], [name, "up"], "{}", out.stdout);
    }

    let out = run(&["lab", "inventory", "--dir", d]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{}\n", inventory.display()));
    Inventory::load(Path::new(out.stdout.trim())).expect("the printed inventory loads");

    // A second `up` in the same directory is refused.
    let out = run(&["lab", "up", "--dir", d, "-n", "2"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("already running"), "{}", out.stderr);

    let out = run(&["lab", "down", "--dir", d]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("stopped"), "{}", out.stdout);
    for (name, pid) in &pids {
        assert!(!alive(*pid), "{name} (pid {pid}) survived `lab down`");
    }
    let out = run(&["lab", "status", "--dir", d]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no lab in"), "{}", out.stderr);

    let out = run(&["lab", "down", "--dir", d, "--purge"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!dir.exists());
    drop(guard);
}

#[test]
fn cli_refuses_bad_input() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("lab");
    let _guard = CliLab(dir.clone());
    let d = dir.to_str().expect("UTF-8 path");
    for (args, expected) in [
        (vec!["--hosts", "a,a"], "named twice"),
        (vec!["-n", "0"], "at least one host"),
        (vec!["--first-address", "10.1.1.1"], "127.0.0.0/8"),
        (vec!["--hosts", "a", "-n", "2"], "cannot be used with"),
    ] {
        let mut full = vec!["lab", "up", "--dir", d];
        full.extend(args);
        let out = run(&full);
        assert_eq!(out.code, 2, "{full:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{full:?}: {}", out.stderr);
    }
    assert!(!dir.join("lab.json").exists());
}

#[test]
fn a_host_that_cannot_start_is_reported_with_its_log() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A lab reuses existing keys: plant a broken host key for `b`.
    let b = dir.path().join("hosts/b");
    std::fs::create_dir_all(&b).expect("mkdir");
    std::fs::write(b.join("ssh_host_ed25519_key"), "not a key\n").expect("write");
    std::fs::write(b.join("ssh_host_ed25519_key.pub"), "ssh-ed25519 AAAAnope\n").expect("write");

    let err = Lab::up(LabConfig::new(dir.path(), 3)).expect_err("b cannot start");
    let message = err.to_string();
    let LabError::StartFailed(failure) = err else {
        panic!("{message}");
    };
    assert_eq!(failure.host, "b");
    assert!(message.contains("sshd.log"), "{message}");
    assert!(message.contains("no hostkeys available"), "{message}");
    assert!(
        message.contains("delete hosts/b/ssh_host_ed25519_key"),
        "{message}"
    );
    // `a` had started; it was stopped again, and no state is left.
    let a_log = std::fs::read_to_string(dir.path().join("hosts/a/sshd.log")).expect("a's log");
    assert!(a_log.contains("Server listening on"), "{a_log}");
    assert!(a_log.contains("terminating"), "{a_log}");
    assert!(!dir.path().join("hosts/a/sshd.pid").exists());
    assert!(!dir.path().join("lab.json").exists());
    assert!(Lab::down(dir.path()).expect("down").stopped.is_empty());
}

#[test]
fn start_host_reports_a_taken_port() {
    let mut t = up(&["a", "b"]);
    t.lab.stop_host("b").expect("stop b");
    let b = t.lab.host("b").expect("b").clone();
    let squatter = std::net::TcpListener::bind((b.address, b.port)).expect("take b's port");
    let err = t.lab.start_host("b").expect_err("b's port is taken");
    assert!(matches!(err, LabError::StartFailed(_)), "{err}");
    assert!(err.to_string().contains("another process"), "{err}");
    assert!(!t.lab.is_up("b"));
    drop(squatter);
    t.lab
        .start_host("b")
        .expect("b starts once its port is free");
    assert!(t.lab.is_up("b"));
}

#[test]
fn roles_and_variables_reach_the_inventory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let lab = Lab::up(
        LabConfig::new(dir.path(), 2)
            .role("a", "originating")
            .role("b", "replicating")
            .var("gtm_dir", "{root}/gtm")
            .var("instance", "{NAME}{index}@{name}")
            .var("repl_port", "{free_port}"),
    )
    .expect("up");
    let inventory = runbook::inventory::Inventory::load(&lab.inventory_path()).expect("loads");
    let a = inventory.hosts.iter().find(|h| h.name == "a").expect("a");
    let b = inventory.hosts.iter().find(|h| h.name == "b").expect("b");
    assert!(a.roles.contains("originating") && a.roles.len() == 1);
    assert!(b.roles.contains("replicating") && b.roles.len() == 1);
    let var = |h: &runbook::inventory::Host, k: &str| {
        h.vars
            .get(k)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    assert_eq!(
        var(a, "gtm_dir"),
        lab.host_root("a")
            .expect("a")
            .join("gtm")
            .display()
            .to_string()
    );
    assert_eq!(var(b, "instance"), "B2@b");
    let (pa, pb) = (var(a, "repl_port"), var(b, "repl_port"));
    assert!(pa.parse::<u16>().is_ok() && pa != pb, "{pa} {pb}");
    let unknown = Lab::up(LabConfig::new(dir.path().join("x"), 1).role("z", "originating"))
        .expect_err("z is not a host");
    assert!(unknown.to_string().contains("`z`"), "{unknown}");
}
