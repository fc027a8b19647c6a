//! Benchmark: `runbook apply` against the floor, a plain `ssh` loop over warm ControlMasters.
//!
//!     cargo bench -p runbook-engine --bench apply            # every workload
//!     cargo bench -p runbook-engine --bench apply -- W2      # only W2
//!
//! Workloads (each step a trivial shell command, `true` and `echo x` alternating, one
//! sequential phase: step k starts on any host only when step k-1 is done on every host):
//!
//! | name | hosts × steps |
//! | --- | --- |
//! | W1 | 10 × 20 |
//! | W2 | 1 × 100 |
//! | W3 | 50 × 5 |
//!
//! For each workload a lab of sandboxed sshd hosts is started (`runbook::lab`), its login shells
//! told to skip `~/.bashrc` (see `skip_bashrc`; `RUNBOOK_BENCH_BASHRC=1` keeps them), then:
//!
//! - **floor**: with the lab's client `ssh_config`, one ControlMaster per host is opened first
//!   (not timed), then every step runs as one background `ssh HOST CMD` per host over the warm
//!   master, all hosts at once, waiting for all before the next step. Only the steps are timed.
//! - **runbook**: the release `runbook apply RUNBOOK -i INVENTORY --format json --forks 50`,
//!   timed as a whole process (start, parse, compile, opening one master per host, the steps,
//!   closing the masters). The JSON events are time-stamped as they arrive, to split the run
//!   into start-up, steps, gaps between steps and shut-down.
//! - **floor + wrapper**: the floor again, each command inside runbook's host-side wrapper
//!   (`runbook::transport::wrapper::WRAPPER`), to separate the wrapper's cost from the rest.
//! - **1-step runs** of both on the same hosts give runbook's fixed cost per run:
//!   `fixed = runbook(1 step) - floor(1 step)`, and `adjusted = runbook - fixed`.
//! - **cold**, before any master exists: **raw ssh cold** is the operator's shell loop, one
//!   `ssh HOST CMD` per host and step, all hosts of a step at once, with `ControlMaster=auto`
//!   and `ControlPersist` in a new control directory per run (the first `ssh` to each host
//!   connects in the run, the later ones use its master); **runbook cold** is `apply --no-persist` (its
//!   masters opened and closed in the run; this is the **runbook** column above); **pyinfra
//!   cold**, when `pyinfra` is on `PATH` (never installed by the bench), runs the same steps as
//!   `server.shell` operations on the same hosts (`-y --parallel HOSTS`), else it is skipped
//!   with a note.
//! - **warm**: `apply --persist 120s` with its own `RUNBOOK_CONTROL_DIR`, after one run that
//!   opened the masters: the second run and later of `plan`/`apply` in a row. **One more
//!   step** = (warm run − warm 1-step run) / (steps − 1), against the floor's step over warm
//!   masters.
//!
//! `RUNBOOK_BENCH_STATE=/dev/shm` keeps the run state (the SQLite journal) on tmpfs, to see what
//! its fsyncs cost. One unmeasured warm-up run of each, then `RUNS` measured runs (median and
//! min reported). Everything is cleaned up on failure too: the masters are closed by a guard,
//! the `runbook` process is killed by a guard, and the labs stop when dropped. Results and
//! analysis: docs/performance.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use runbook::lab::{Lab, LabConfig};
use runbook::transport::wrapper::{WRAPPER, record};
use runbook_modules::quote;

#[path = "common/apply_journal.rs"]
mod apply_journal;

/// The `runbook` binary of this package, built by `cargo bench` in the bench (release) profile.
const RUNBOOK: &str = env!("CARGO_BIN_EXE_runbook");
/// Measured runs per workload and side.
const RUNS: usize = 3;
/// `--forks`: enough for every host of the largest workload at once.
const FORKS: usize = 50;

#[derive(Clone, Copy, Debug)]
struct Workload {
    name: &'static str,
    hosts: usize,
    steps: usize,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "W1",
        hosts: 10,
        steps: 20,
    },
    Workload {
        name: "W2",
        hosts: 1,
        steps: 100,
    },
    Workload {
        name: "W3",
        hosts: 50,
        steps: 5,
    },
];

/// The command of step `k`.
fn command(k: usize) -> &'static str {
    if k.is_multiple_of(2) {
        "true"
    } else {
        "echo x"
    }
}

fn runbook_yaml(steps: usize) -> String {
    let mut s = String::from(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: bench-apply, version: 1.0.0}\nsteps:\n",
    );
    for k in 0..steps {
        let _ = writeln!(
            s,
            "  - {{id: s{k}, module: shell, on: all, with: {{cmd: \"{}\"}}}}",
            command(k)
        );
    }
    s
}

/// Kills and reaps a child process that is still running when dropped (a failed run).
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the child is held until waited for")
    }

    fn wait(mut self) -> ExitStatus {
        let mut child = self.0.take().expect("the child is held until waited for");
        child.wait().expect("waiting for a child process works")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Removes a directory when dropped (the run state when it lives outside the temporary
/// directory).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One ControlMaster per lab host for the floor; closed (`ssh -O exit`) when dropped.
struct Masters {
    config: PathBuf,
    control_path: String,
    hosts: Vec<String>,
}

impl Masters {
    /// Opens every master at once; returns them and how long that took.
    fn open(lab: &Lab, log: &Path) -> (Self, Duration) {
        let masters = Masters {
            config: lab.ssh_config_path(),
            // `%C` is a hash of the connection: one socket per host, a short path.
            control_path: format!("/tmp/rbbench-{}-%C", std::process::id()),
            hosts: lab.hosts().iter().map(|h| h.name.clone()).collect(),
        };
        let started = Instant::now();
        let mut children = Vec::new();
        for host in &masters.hosts {
            // The master goes to the background holding its stderr: a file, never a pipe
            // (waiting for a pipe's end would wait for the master to exit).
            let stderr = fs_err::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("the master log file opens");
            let child = masters
                .base()
                .args(["-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-fN"])
                .arg(host)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr.into_parts().0)
                .spawn()
                .expect("ssh starts");
            children.push(ChildGuard(Some(child)));
        }
        for (host, child) in masters.hosts.iter().zip(children) {
            let status = child.wait();
            assert!(
                status.success(),
                "opening the master of `{host}` failed ({status}): {}",
                fs_err::read_to_string(log).unwrap_or_default()
            );
        }
        let took = started.elapsed();
        (masters, took)
    }

    /// `ssh -F CONFIG -o ControlPath=...`, stdin closed.
    fn base(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(&self.config)
            .arg("-o")
            .arg(format!("ControlPath={}", self.control_path))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs every step on every host over the masters: all hosts of a step at once, one step
    /// after the other. Returns the time of each step. With `wrapped = Some(RUN)`, each command
    /// runs inside runbook's own host-side wrapper (key `RUN/STEP@HOST`), as `apply` runs it:
    /// the difference to the plain floor is the wrapper's cost.
    fn run(&self, steps: usize, wrapped: Option<&str>) -> Vec<Duration> {
        let mut times = Vec::with_capacity(steps);
        for k in 0..steps {
            let started = Instant::now();
            let children: Vec<(&String, ChildGuard)> = self
                .hosts
                .iter()
                .map(|host| {
                    let remote = match wrapped {
                        None => command(k).to_owned(),
                        Some(run) => format!(
                            "exec sh -c {} runbook-wrapper {} {}",
                            quote(WRAPPER),
                            quote(&record(&format!("{run}/s{k}@{host}/1001.0"))),
                            quote(command(k))
                        ),
                    };
                    let child = self
                        .base()
                        .args(["-o", "ControlMaster=no"])
                        .arg(host)
                        .arg(remote)
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("ssh starts");
                    (host, ChildGuard(Some(child)))
                })
                .collect();
            for (host, mut guard) in children {
                let child = guard.0.take().expect("the child is held until waited for");
                let out = child.wait_with_output().expect("waiting for ssh works");
                assert!(
                    out.status.success(),
                    "floor: step {k} on `{host}` failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            times.push(started.elapsed());
        }
        times
    }
}

/// The operator's shell loop: for each step, one `ssh HOST CMD` per host, all hosts at once,
/// waiting for all before the next step, with OpenSSH's own multiplexing as an operator would
/// configure it (`ControlMaster=auto`, `ControlPersist`): the first `ssh` to each host connects
/// in the run (a new control directory for each run) and leaves a master behind for the next
/// steps. Timed as a whole; the masters are closed afterwards, untimed.
fn cold_ssh(lab: &Lab, steps: usize, control: &Path) -> Duration {
    let hosts: Vec<String> = lab.hosts().iter().map(|h| h.name.clone()).collect();
    let _ = std::fs::remove_dir_all(control);
    fs_err::create_dir_all(control).expect("the control directory");
    let ssh = || {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(lab.ssh_config_path())
            .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=60", "-o"])
            .arg(format!("ControlPath={}/%C", control.display()))
            .stdin(Stdio::null());
        cmd
    };
    let started = Instant::now();
    for k in 0..steps {
        let children: Vec<(&String, ChildGuard)> = hosts
            .iter()
            .map(|host| {
                let child = ssh()
                    .arg(host)
                    .arg(command(k))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("ssh starts");
                (host, ChildGuard(Some(child)))
            })
            .collect();
        for (host, mut guard) in children {
            let child = guard.0.take().expect("the child is held until waited for");
            let out = child.wait_with_output().expect("waiting for ssh works");
            assert!(
                out.status.success(),
                "cold ssh: step {k} on `{host}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let took = started.elapsed();
    for host in &hosts {
        let _ = ssh()
            .args(["-O", "exit"])
            .arg(host)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    took
}

/// pyinfra, when it is installed (`pyinfra` on `PATH`): the same steps as `server.shell`
/// operations on the same hosts (each operation on every host before the next), connecting
/// in the run. `None` when it is not installed.
struct Pyinfra {
    inventory: PathBuf,
    deploy: PathBuf,
}

impl Pyinfra {
    fn new(lab: &Lab, dir: &Path, steps: usize) -> Option<Self> {
        let found = Command::new("pyinfra")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return None;
        }
        let mut inventory = String::from("hosts = [\n");
        for h in lab.hosts() {
            let _ = writeln!(
                inventory,
                "    ({:?}, {{'ssh_hostname': {:?}, 'ssh_port': {}, 'ssh_user': {:?}, 'ssh_key': {:?}, 'ssh_known_hosts_file': {:?}, 'ssh_strict_host_key_checking': 'yes'}}),",
                h.name,
                h.address.to_string(),
                h.port,
                lab.user(),
                lab.identity_path().display().to_string(),
                lab.known_hosts_path().display().to_string(),
            );
        }
        inventory.push_str("]\n");
        let mut deploy = String::from("from pyinfra.operations import server\n");
        for k in 0..steps {
            let _ = writeln!(
                deploy,
                "server.shell(name='s{k}', commands=[{:?}])",
                command(k)
            );
        }
        let p = Pyinfra {
            inventory: dir.join("pyinfra_inventory.py"),
            deploy: dir.join("pyinfra_deploy.py"),
        };
        fs_err::write(&p.inventory, inventory).expect("write the pyinfra inventory");
        fs_err::write(&p.deploy, deploy).expect("write the pyinfra deploy");
        Some(p)
    }

    fn run(&self, hosts: usize) -> Duration {
        let started = Instant::now();
        let out = Command::new("pyinfra")
            .arg(&self.inventory)
            .arg(&self.deploy)
            .args(["-y", "--parallel", &hosts.max(1).to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("pyinfra runs");
        assert!(
            out.status.success(),
            "pyinfra failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed()
    }
}

impl Drop for Masters {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = self
                .base()
                .args(["-O", "exit"])
                .arg(host)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Makes the hosts' login shell skip `~/.bashrc`, by restarting each sshd with `SHLVL=1` added
/// to its `SetEnv`.
///
/// sshd runs every command as `$SHELL -c COMMAND`; Debian's bash sources `~/.bashrc` when run by
/// sshd as a top-level shell (`SHLVL` below 2). On the development machine root's `~/.bashrc`
/// runs `pyenv init`, about 300 ms of forks per command on *both* sides, which would bury what
/// this benchmark is after (the orchestrator's own cost). `RUNBOOK_BENCH_BASHRC=1` keeps the
/// hosts as `lab up` made them.
fn skip_bashrc(lab: &mut Lab) {
    let hosts: Vec<(String, PathBuf)> = lab
        .hosts()
        .iter()
        .map(|h| (h.name.clone(), h.dir.join("sshd_config")))
        .collect();
    for (name, config) in hosts {
        let text = fs_err::read_to_string(&config).expect("the host's sshd_config reads");
        // sshd uses the first `SetEnv` line only: extend it.
        assert!(
            text.contains("\nSetEnv "),
            "no SetEnv in {}",
            config.display()
        );
        fs_err::write(&config, text.replacen("\nSetEnv ", "\nSetEnv SHLVL=1 ", 1))
            .expect("the host's sshd_config writes");
        lab.stop_host(&name).expect("the host stops");
        lab.start_host(&name).expect("the host starts again");
    }
}

/// One `runbook apply`: its wall time and its JSON events, each with the time it arrived.
struct Applied {
    wall: Duration,
    events: Vec<(Duration, serde_json::Value)>,
}

/// How a `runbook apply` of the bench connects.
#[derive(Clone, Copy)]
enum Conns<'a> {
    /// `--no-persist`: every run opens its own masters and closes them (cold).
    Cold,
    /// Masters kept in this control directory between runs (`--persist 120s`): after a first
    /// run, warm.
    Kept(&'a Path),
}

fn apply(runbook: &Path, inventory: &Path, state: &Path, conns: Conns<'_>) -> Applied {
    let started = Instant::now();
    let mut cmd = Command::new(RUNBOOK);
    cmd.arg("apply")
        .arg(runbook)
        .arg("-i")
        .arg(inventory)
        .args(["--format", "json", "--forks", &FORKS.to_string(), "--state"])
        .arg(state);
    match conns {
        Conns::Cold => {
            cmd.arg("--no-persist");
        }
        Conns::Kept(control) => {
            cmd.args(["--persist", "120s"])
                .env("RUNBOOK_CONTROL_DIR", control);
        }
    }
    let child = cmd
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the runbook binary starts");
    let mut guard = ChildGuard(Some(child));
    let mut stderr = guard.child().stderr.take().expect("stderr is piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stdout = guard.child().stdout.take().expect("stdout is piped");
    let mut events = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("runbook writes UTF-8 lines");
        let at = started.elapsed();
        let event: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"));
        events.push((at, event));
    }
    let status = guard.wait();
    let wall = started.elapsed();
    let stderr = stderr.join().expect("the stderr reader does not panic");
    let succeeded = events
        .last()
        .is_some_and(|(_, e)| e["event"] == "run_finished" && e["status"] == "succeeded");
    assert!(
        status.success() && succeeded,
        "runbook apply {} failed ({status}):\n{stderr}\nlast event: {:?}",
        runbook.display(),
        events.last().map(|(_, e)| e)
    );
    Applied { wall, events }
}

/// Where the time of one `runbook apply` went, from its events' arrival times.
#[derive(Debug, Default)]
struct Breakdown {
    /// Process start to the first `action_started` (start-up, parse, compile).
    to_first_action: Duration,
    /// Process start to the last `action_finished` of step 1, which opens every master.
    first_step_done: Duration,
    /// Steps 2..: last `action_finished` of step k-1 to that of step k, averaged: the
    /// steady-state cost of one step, to compare with the floor's step.
    later_step: Duration,
    /// Steps 2..: last `action_finished` of step k-1 to first `action_started` of step k,
    /// averaged (scheduler, journal and event latency before a step starts).
    later_gap: Duration,
    /// Steps 2..: the engine's own `duration_secs` of each action, averaged.
    later_action: Duration,
    /// Last `action_finished` to process exit (run summary, closing the masters).
    after_last_action: Duration,
}

fn breakdown(run: &Applied) -> Breakdown {
    // Per step: first start, last finish, sum of action durations, actions.
    let mut steps: BTreeMap<usize, (Duration, Duration, Duration, u32)> = BTreeMap::new();
    for (at, e) in &run.events {
        let Some(step) = e["step"]
            .as_str()
            .and_then(|s| s.strip_prefix('s'))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let span = steps
            .entry(step)
            .or_insert((Duration::MAX, Duration::ZERO, Duration::ZERO, 0));
        match e["event"].as_str() {
            Some("action_started") => span.0 = span.0.min(*at),
            Some("action_finished") => {
                span.1 = span.1.max(*at);
                span.2 += Duration::from_secs_f64(e["duration_secs"].as_f64().unwrap_or(0.0));
                span.3 += 1;
            }
            _ => {}
        }
    }
    let spans: Vec<_> = steps.into_values().collect();
    let mut b = Breakdown::default();
    let Some(&(first_start, first_end, _, _)) = spans.first() else {
        return b;
    };
    b.to_first_action = first_start;
    b.first_step_done = first_end;
    let (mut step_total, mut gap_total, mut action_total, mut actions) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0u32);
    for pair in spans.windows(2) {
        let ((_, prev_end, _, _), (start, end, total, n)) = (pair[0], pair[1]);
        step_total += end.saturating_sub(prev_end);
        gap_total += start.saturating_sub(prev_end);
        action_total += total;
        actions += n;
    }
    let later = u32::try_from(spans.len() - 1).expect("few steps");
    if later > 0 {
        b.later_step = step_total / later;
        b.later_gap = gap_total / later;
    }
    if actions > 0 {
        b.later_action = action_total / actions;
    }
    let last_end = spans.iter().map(|s| s.1).max().unwrap_or(run.wall);
    b.after_last_action = run.wall.saturating_sub(last_end);
    b
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn min(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64())
}

/// The figures of one workload.
struct Measured {
    workload: Workload,
    masters_open: Duration,
    cold_ssh: Vec<Duration>,
    warm: Vec<Duration>,
    warm_one: Vec<Duration>,
    pyinfra: Option<Vec<Duration>>,
    floor: Vec<Duration>,
    floor_step: Duration,
    wrapped: Vec<Duration>,
    wrapped_step: Duration,
    runbook: Vec<Duration>,
    floor_one: Vec<Duration>,
    runbook_one: Vec<Duration>,
    breakdown: Breakdown,
}

fn measure(w: Workload) -> Measured {
    let dir = tempfile::Builder::new()
        .prefix("rbbench-")
        .tempdir_in("/tmp")
        .expect("a temporary directory");
    let mut lab = Lab::up(LabConfig::new(dir.path().join("lab"), w.hosts)).expect("the lab starts");
    if std::env::var_os("RUNBOOK_BENCH_BASHRC").is_none() {
        skip_bashrc(&mut lab);
    }
    let runbook = dir.path().join("runbook.yaml");
    let one = dir.path().join("one.yaml");
    fs_err::write(&runbook, runbook_yaml(w.steps)).expect("write the runbook");
    fs_err::write(&one, runbook_yaml(1)).expect("write the 1-step runbook");
    // `RUNBOOK_BENCH_STATE=/dev/shm` puts the run state (the journal) on tmpfs, to see what
    // its fsyncs cost.
    let state = std::env::var_os("RUNBOOK_BENCH_STATE").map_or_else(
        || dir.path().join("state"),
        |base| PathBuf::from(base).join(format!("rbbench-state-{}", std::process::id())),
    );
    let _state_guard = RemoveOnDrop(state.clone());
    let inventory = lab.inventory_path();

    // Short: control sockets must fit a Unix socket address.
    let control = dir.path().join("ctl");
    let pyinfra = Pyinfra::new(&lab, dir.path(), w.steps);

    // Cold first, before any master of this bench exists: every tool connects in its run.
    let loop_control = dir.path().join("loop");
    cold_ssh(&lab, w.steps, &loop_control);
    apply(&runbook, &inventory, &state, Conns::Cold);
    let mut cold_ssh_times = Vec::new();
    let mut pyinfra_times = pyinfra.as_ref().map(|_| Vec::new());
    if let Some(p) = &pyinfra {
        p.run(w.hosts);
    }
    for _ in 0..RUNS {
        cold_ssh_times.push(cold_ssh(&lab, w.steps, &loop_control));
        if let (Some(p), Some(times)) = (&pyinfra, pyinfra_times.as_mut()) {
            times.push(p.run(w.hosts));
        }
    }

    // Declared after the lab: dropped (closed) before it.
    let (masters, masters_open) = Masters::open(&lab, &dir.path().join("masters.log"));

    // Warm-up: caches, the hosts' shells, the sshd processes' first connections; the first
    // run with kept masters opens them.
    masters.run(w.steps, None);
    masters.run(w.steps, Some("bench-warm-up"));
    apply(&runbook, &inventory, &state, Conns::Kept(&control));

    let (mut floor, mut runbook_times, mut floor_steps, mut runs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut wrapped, mut wrapped_steps) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let steps = masters.run(w.steps, None);
        floor.push(steps.iter().sum());
        floor_steps.extend(steps);
        let steps = masters.run(w.steps, Some(&format!("bench-{}-{i}", std::process::id())));
        wrapped.push(steps.iter().sum());
        wrapped_steps.extend(steps);
        let run = apply(&runbook, &inventory, &state, Conns::Cold);
        runbook_times.push(run.wall);
        runs.push(run);
    }
    let (mut floor_one, mut runbook_one) = (Vec::new(), Vec::new());
    let (mut warm, mut warm_one) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        floor_one.push(masters.run(1, None)[0]);
        runbook_one.push(apply(&one, &inventory, &state, Conns::Cold).wall);
        warm.push(apply(&runbook, &inventory, &state, Conns::Kept(&control)).wall);
        warm_one.push(apply(&one, &inventory, &state, Conns::Kept(&control)).wall);
    }
    drop(masters);
    // The kept masters go with the lab's sshd sessions.
    lab.shutdown().expect("the lab stops");

    let median_run = |runs: &[Applied]| {
        let m = median(&runs.iter().map(|r| r.wall).collect::<Vec<_>>());
        breakdown(
            runs.iter()
                .find(|r| r.wall == m)
                .expect("the median is one of the runs"),
        )
    };
    Measured {
        workload: w,
        masters_open,
        cold_ssh: cold_ssh_times,
        warm,
        warm_one,
        pyinfra: pyinfra_times,
        floor_step: median(&floor_steps),
        wrapped_step: median(&wrapped_steps),
        wrapped,
        breakdown: median_run(&runs),
        floor,
        runbook: runbook_times,
        floor_one,
        runbook_one,
    }
}

fn main() {
    if std::env::var_os("RUNBOOK_BENCH_POSTGRES").is_some() {
        apply_journal::run();
        return;
    }
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let workloads: Vec<Workload> = WORKLOADS
        .into_iter()
        .filter(|w| only.is_empty() || only.iter().any(|o| o == w.name))
        .collect();
    println!(
        "runbook apply vs. ssh over warm ControlMasters; {RUNS} runs each (after a warm-up); binary {RUNBOOK}"
    );
    let mut results = Vec::new();
    for w in workloads {
        eprintln!("{}: {} hosts × {} steps ...", w.name, w.hosts, w.steps);
        results.push(measure(w));
    }

    println!(
        "\n| workload | hosts × steps | floor median (min) | runbook median (min) | ratio | runbook 1-step | floor 1-step | fixed cost | runbook adjusted | adjusted ratio | floor + wrapper median |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for m in &results {
        let (floor, rb) = (median(&m.floor), median(&m.runbook));
        let (floor_one, rb_one) = (median(&m.floor_one), median(&m.runbook_one));
        let fixed = rb_one.saturating_sub(floor_one);
        let adjusted = rb.saturating_sub(fixed);
        println!(
            "| {} | {} × {} | {} ({}) | {} ({}) | {} | {} | {} | {} | {} | {} | {} ({}) |",
            m.workload.name,
            m.workload.hosts,
            m.workload.steps,
            ms(floor),
            ms(min(&m.floor)),
            ms(rb),
            ms(min(&m.runbook)),
            ratio(rb, floor),
            ms(rb_one),
            ms(floor_one),
            ms(fixed),
            ms(adjusted),
            ratio(adjusted, floor),
            ms(median(&m.wrapped)),
            ratio(median(&m.wrapped), floor),
        );
    }

    println!(
        "\nWhere runbook's time goes (its median run; from the JSON events' arrival times). Step 1 opens every master; steps 2.. are the steady state:\n"
    );
    println!(
        "| workload | start → 1st action | end of step 1 | runbook step 2.. (mean) | of which gap before it | action 2.. (engine, mean) | floor step (median) | steady-state ratio | floor + wrapper step | after last action | floor: opening the masters |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for m in &results {
        let b = &m.breakdown;
        let later = if m.workload.steps > 1 {
            (
                format!("{:.1} ms", b.later_step.as_secs_f64() * 1e3),
                format!("{:.1} ms", b.later_gap.as_secs_f64() * 1e3),
                format!("{:.1} ms", b.later_action.as_secs_f64() * 1e3),
                ratio(b.later_step, m.floor_step),
            )
        } else {
            Default::default()
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1} ms | {} | {:.1} ms | {} | {} |",
            m.workload.name,
            ms(b.to_first_action),
            ms(b.first_step_done),
            later.0,
            later.1,
            later.2,
            m.floor_step.as_secs_f64() * 1e3,
            later.3,
            m.wrapped_step.as_secs_f64() * 1e3,
            ms(b.after_last_action),
            ms(m.masters_open),
        );
    }

    println!(
        "\nCold (every tool opens its connections in the run) and warm (runbook's masters kept from the run before, `--persist`):\n"
    );
    println!(
        "| workload | raw ssh per step, cold | runbook cold (--no-persist) | ratio | runbook warm 2nd run | pyinfra cold | runbook one more step (warm) | ssh step over a warm master | ratio |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut pyinfra_missing = false;
    for m in &results {
        let (cold, rb) = (median(&m.cold_ssh), median(&m.runbook));
        let (warm, warm_one) = (median(&m.warm), median(&m.warm_one));
        let steps = u32::try_from(m.workload.steps).expect("few steps");
        let marginal = warm.saturating_sub(warm_one) / (steps - 1).max(1);
        let pyinfra = if let Some(times) = &m.pyinfra {
            format!("{} ({})", ms(median(times)), ms(min(times)))
        } else {
            pyinfra_missing = true;
            "not installed".to_owned()
        };
        println!(
            "| {} {} × {} | {} ({}) | {} ({}) | {} | {} ({}) | {} | {:.1} ms | {:.1} ms | {} |",
            m.workload.name,
            m.workload.hosts,
            m.workload.steps,
            ms(cold),
            ms(min(&m.cold_ssh)),
            ms(rb),
            ms(min(&m.runbook)),
            ratio(rb, cold),
            ms(warm),
            ms(min(&m.warm)),
            pyinfra,
            marginal.as_secs_f64() * 1e3,
            m.floor_step.as_secs_f64() * 1e3,
            ratio(marginal, m.floor_step),
        );
    }
    if pyinfra_missing {
        println!(
            "\npyinfra is not installed (`pyinfra` not on PATH): its column is skipped. (`pip install pyinfra` to include it; CI does not.)"
        );
    }
    println!(
        "\nOne more step = (warm run of all steps − warm 1-step run) / (steps − 1), for all hosts of the workload; the ssh step is one step over warm masters, all hosts at once (the floor's median step)."
    );
    println!(
        "Targets: cold within 1.2× of raw ssh cold; one more step within 1.2× of ssh over a warm master; W3's warm 2nd run ahead of pyinfra cold. (Ansible is quoted at ~35× the floor on W1; not measured here.)"
    );
}
