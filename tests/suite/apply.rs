//! `runbook apply` against real sshd hosts started by the lab.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use runbook::lab::{Lab, LabConfig};

/// A lab of sshd hosts and a scratch directory for runbooks and run state.
pub struct Rig {
    pub lab: Lab,
    pub dir: tempfile::TempDir,
    runs: std::cell::Cell<usize>,
}

impl Rig {
    pub fn new(hosts: usize) -> Self {
        Self::with_config(hosts, |c| c)
    }

    /// A rig whose lab config `configure` adjusts (roles, inventory variables).
    pub fn with_config(hosts: usize, configure: impl FnOnce(LabConfig) -> LabConfig) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let lab = Lab::up(configure(LabConfig::new(dir.path().join("lab"), hosts)))
            .expect("the lab starts");
        Self {
            lab,
            dir,
            runs: std::cell::Cell::new(0),
        }
    }

    pub fn inventory(&self) -> PathBuf {
        self.lab.inventory_path()
    }

    pub fn root(&self, host: &str) -> PathBuf {
        self.lab.host_root(host).expect("a lab host")
    }

    /// Runs `runbook apply` on a new runbook file (so, a new run), with JSON events.
    pub fn apply(&self, runbook: &str, inventory: &Path, extra: &[&str]) -> Applied {
        self.runs.set(self.runs.get() + 1);
        let file = self
            .dir
            .path()
            .join(format!("runbook-{}.yaml", self.runs.get()));
        fs_err::write(&file, runbook).expect("write the runbook");
        self.apply_file(&file, inventory, extra)
    }

    /// Runs `runbook apply FILE`: an interrupted run of the same file and inventory resumes.
    pub fn apply_file(&self, file: &Path, inventory: &Path, extra: &[&str]) -> Applied {
        self.apply_file_env(file, inventory, extra, &[])
    }

    /// [`Rig::apply_file`] with environment variables set.
    pub fn apply_file_env(
        &self,
        file: &Path,
        inventory: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Applied {
        let state = self.dir.path().join("state");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
        cmd.arg("apply")
            .arg(file)
            .arg("-i")
            .arg(inventory)
            .args(["--format", "json", "--state"])
            .arg(&state)
            .args(extra)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1");
        let out = cmd.output().expect("runbook runs");
        Applied::from_output(&out, state)
    }
}

impl Rig {
    /// Starts `runbook apply FILE` in the background, JSON events on its stdout.
    pub fn spawn_apply(&self, file: &Path) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_runbook"))
            .arg("apply")
            .arg(file)
            .arg("-i")
            .arg(self.inventory())
            .args(["--format", "json", "--state"])
            .arg(self.dir.path().join("state"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("runs")
    }
}

/// Waits until a wrapper has recorded a running command under `actions` on a host.
fn wait_for_a_running_command(actions: &Path, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while all_files(actions).iter().all(|p| !is_pgid_record(p, None)) {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

pub struct Applied {
    pub code: i32,
    pub events: Vec<serde_json::Value>,
    pub stderr: String,
    #[allow(dead_code)] // kept for tests that inspect the run directory
    pub state: PathBuf,
}

impl Applied {
    pub fn from_output(out: &std::process::Output, state: PathBuf) -> Self {
        let events = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON event ({e}): {l}"))
            })
            .collect();
        Self {
            code: out.status.code().unwrap_or(-1),
            events,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            state,
        }
    }

    /// `runbook approve` of a manual step of this run, which must succeed.
    pub fn approve(&self, step: &str, reason: &str) {
        let run_id = self.events[0]["run_id"].as_str().expect("run id");
        let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["approve", run_id, step, "--by", "test", "--reason", reason])
            .arg("--state")
            .arg(&self.state)
            .output()
            .expect("approve runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Final status of each action.
    pub fn statuses(&self) -> BTreeMap<String, String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "action_finished")
            .map(|e| {
                (
                    e["action"].as_str().unwrap_or_default().to_owned(),
                    e["status"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    pub fn status(&self, action: &str) -> String {
        self.statuses()
            .get(action)
            .cloned()
            .unwrap_or_else(|| panic!("no event for {action}: {:#?}\n{}", self.events, self.stderr))
    }

    pub fn message(&self, action: &str) -> String {
        self.events
            .iter()
            .rev()
            .find(|e| e["event"] == "action_finished" && e["action"] == action)
            .and_then(|e| e["message"].as_str())
            .unwrap_or_default()
            .to_owned()
    }

    /// The order in which actions started.
    pub fn start_order(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "action_started")
            .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn header(name: &str) -> String {
    format!("apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, version: 1.0.0}}\n")
}

#[test]
fn fans_out_over_five_hosts_each_in_its_own_tree() {
    let rig = Rig::new(5);
    let rb = header("fanout")
        + "steps:\n  - {id: mark, module: shell, on: all, with: {cmd: \"echo {{ host.name }} > $RUNBOOK_HOST_ROOT/mark\"}}\n";
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for host in ["a", "b", "c", "d", "e"] {
        assert_eq!(run.status(&format!("mark@{host}")), "changed");
        let mark =
            fs_err::read_to_string(rig.root(host).join("mark")).expect("each host wrote its mark");
        assert_eq!(mark.trim(), host);
    }
    let finished = run.events.last().expect("events");
    assert_eq!(finished["event"], "run_finished");
    assert_eq!(finished["status"], "succeeded");
}

#[test]
fn needs_orders_steps_across_hosts() {
    let rig = Rig::new(2);
    let a_root = rig.root("a");
    let rb = header("order")
        + "phases:\n  - name: p\n    order: per_host\n    steps:\n"
        + "      - {id: later, module: shell, on: b, needs: [first], with: {cmd: \"test -e {{ hostvars.a.vars.host_root }}/first\"}}\n"
        + "      - {id: first, module: shell, on: a, with: {cmd: \"sleep 1; touch $RUNBOOK_HOST_ROOT/first\"}}\n";
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    assert!(a_root.join("first").exists());
    assert_eq!(run.start_order(), vec!["first@a", "later@b"]);
}

#[test]
fn a_timeout_leaves_no_remote_process_behind() {
    let rig = Rig::new(1);
    let rb = header("timeout")
        + "steps:\n  - {id: slow, module: shell, on: a, timeout: 2s, with: {cmd: \"sleep 3137 & sleep 3138\"}}\n";
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.status("slow@a"), "timed_out");
    assert!(
        run.message("slow@a").contains("stopped"),
        "{}",
        run.message("slow@a")
    );
    // Ask the host itself: no live process of the step is left.
    let out = rig
        .lab
        .ssh_command("a")
        .arg("ps -eo stat=,args= | grep -v grep | grep -E 'sleep 313[78]' | grep -v '^Z' | wc -l")
        .output()
        .expect("ssh runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hostile_inventory_values_stay_inert() {
    let rig = Rig::new(1);
    let marker = rig.dir.path().join("pwned");
    let hostile = format!("x\"; touch {}; \"", marker.display());
    let inventory = rig.dir.path().join("hostile.yaml");
    let text = fs_err::read_to_string(rig.inventory()).expect("lab inventory");
    let text = text.replacen(
        "    vars:\n",
        &format!(
            "    vars:\n      hostile: '{}'\n",
            hostile.replace('\'', "''")
        ),
        1,
    );
    fs_err::write(&inventory, text).expect("write");
    let rb = header("inert")
        + "steps:\n  - {id: echo, module: shell, on: a, register: out, with: {cmd: \"echo {{ vars.hostile }} > $RUNBOOK_HOST_ROOT/echoed\"}}\n";
    let run = rig.apply(&rb, &inventory, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!marker.exists(), "the inventory value ran as a command");
    let echoed = fs_err::read_to_string(rig.root("a").join("echoed")).expect("echoed");
    assert_eq!(echoed.trim_end(), hostile);
}

#[test]
fn a_changed_host_key_is_refused_with_its_fingerprint() {
    let rig = Rig::new(2);
    // Give host a the key of host b in known_hosts: a now presents a key that does not match.
    let known = rig.lab.known_hosts_path();
    let text = fs_err::read_to_string(&known).expect("known_hosts");
    let lines: Vec<&str> = text.lines().collect();
    let key_b = lines[1].split_once(' ').expect("host key line").1;
    let host_a = lines[0].split_once(' ').expect("host key line").0;
    fs_err::write(&known, format!("{host_a} {key_b}\n{}\n", lines[1])).expect("write");
    let rb =
        header("hostkey") + "steps:\n  - {id: hi, module: shell, on: all, with: {cmd: \"true\"}}\n";
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.status("hi@a"), "unreachable");
    assert_eq!(run.status("hi@b"), "changed", "the other host goes on");
    let message = run.message("hi@a");
    assert!(message.contains("host key"), "{message}");
    assert!(
        message.contains("SHA256:"),
        "the fingerprint the host presents: {message}"
    );
}

#[test]
fn dry_run_changes_nothing_and_says_what_would() {
    let rig = Rig::new(1);
    let root = rig.root("a");
    fs_err::write(root.join("same.txt"), "same").expect("write");
    let rb = header("dry")
        + "steps:\n"
        + "  - {id: new, module: copy, on: a, with: {dest: \"{{ vars.host_root }}/new.txt\", content: hello}}\n"
        + "  - {id: same, module: copy, on: a, with: {dest: \"{{ vars.host_root }}/same.txt\", content: same, mode: '0644'}}\n"
        + "  - {id: cmd, module: shell, on: a, with: {cmd: \"touch $RUNBOOK_HOST_ROOT/touched\"}}\n";
    let before = listing(&root);
    let run = rig.apply(&rb, &rig.inventory(), &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.status("new@a"), "would_change");
    assert_eq!(run.status("cmd@a"), "would_run");
    assert_eq!(
        listing(&root),
        before,
        "the host's files must stay untouched"
    );
}

/// Names and contents of the files under `dir` (not the `.runbook` bookkeeping).
fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in fs_err::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".runbook" {
            continue;
        }
        let content = fs_err::read_to_string(entry.path()).unwrap_or_default();
        out.push((name, content));
    }
    out.sort();
    out
}

#[test]
fn secrets_reach_the_host_and_nothing_the_run_writes() {
    let rig = Rig::new(1);
    let secret = "s3cr3t-value-xyz";
    let rb = header("secret")
        + "params:\n  token: {type: secret, required: true}\n"
        + "steps:\n  - id: use\n    module: shell\n    on: a\n    env: {TOKEN: \"{{ params.token }}\"}\n"
        + "    with: {cmd: 'printf %s \"$TOKEN\" | md5sum; echo leak: $TOKEN; exit 1'}\n";
    let file = rig.dir.path().join("runbook.yaml");
    fs_err::write(&file, &rb).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("apply")
        .arg(&file)
        .arg("-i")
        .arg(rig.inventory())
        .args(["--format", "json", "--state"])
        .arg(rig.dir.path().join("state"))
        .env("RUNBOOK_SECRET_TOKEN", secret)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "the secret leaked to the terminal"
    );
    let action_out = fs_err::read_to_string(find_file(&rig.dir.path().join("state"), "stdout"))
        .expect("stdout kept");
    let expected = Command::new("sh")
        .args(["-c", &format!("printf %s {secret} | md5sum")])
        .output()
        .expect("md5sum");
    let expected = String::from_utf8_lossy(&expected.stdout).into_owned();
    assert!(
        action_out.contains(expected.trim()),
        "the host got the secret: {action_out}"
    );
    assert!(action_out.contains("leak: ********"), "{action_out}");
    // Nothing the run wrote, here or on the host, holds the secret.
    for root in [rig.dir.path().join("state"), rig.root("a")] {
        for path in all_files(&root) {
            let bytes = fs_err::read(&path).expect("read");
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{} holds the secret",
                path.display()
            );
        }
    }
    // And the plan shows it masked.
    let plan = crate::support::run(&[
        "plan",
        file.to_str().expect("utf-8"),
        "-i",
        rig.inventory().to_str().expect("utf-8"),
    ]);
    assert!(
        plan.stdout.contains("env: TOKEN='********'"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_host_that_drops_mid_step_is_unreachable_and_the_rest_goes_on() {
    let mut rig = Rig::new(2);
    let rb = header("drop")
        + "phases:\n  - name: p\n    order: per_host\n    steps:\n"
        + "      - {id: long, module: shell, on: all, with: {cmd: \"if [ $RUNBOOK_HOST = b ]; then sleep 20; fi; echo done\"}}\n"
        + "      - {id: next, module: shell, on: all, with: {cmd: \"echo next\"}}\n"
        + "    on_failure:\n"
        + "      - {id: cleanup, module: shell, on: a, with: {cmd: \"touch $RUNBOOK_HOST_ROOT/cleanup-ran\"}}\n";
    let file = rig.dir.path().join("runbook.yaml");
    fs_err::write(&file, &rb).expect("write");
    let child = rig.spawn_apply(&file);
    // Wait until the step is running on b, then take b down.
    let actions = rig.root("b").join(".runbook/actions");
    wait_for_a_running_command(&actions, "the step never started on b");
    rig.lab.stop_host("b").expect("stop b");
    let run = Applied::from_output(
        &child.wait_with_output().expect("apply ends"),
        PathBuf::new(),
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.status("long@b"), "unreachable", "{:#?}", run.events);
    assert_eq!(run.status("next@b"), "blocked");
    assert_eq!(
        run.status("next@a"),
        "changed",
        "the independent branch goes on"
    );
    assert_eq!(run.status("cleanup@a"), "changed", "on_failure ran");
    assert!(rig.root("a").join("cleanup-ran").exists());
    // Never retried: one start of long@b.
    assert_eq!(
        run.start_order().iter().filter(|a| *a == "long@b").count(),
        1
    );
}

/// Whether `path` is a wrapper's record of a process group (`RUN/STEP@HOST,ATTEMPT.OP.pgid`,
/// see `transport/wrapper.rs`), of `action` when given.
pub fn is_pgid_record(path: &Path, action: Option<&str>) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.extension().is_some_and(|e| e == "pgid")
        && action.is_none_or(|a| name.starts_with(&format!("{a},")))
}

/// The process group the wrapper of `action` recorded under `actions`, once the record is
/// complete: the wrapper creates the file and then writes the line, so a reader in between sees
/// an empty file (a real race on a loaded machine, not only in theory).
pub fn recorded_pgid(actions: &Path, action: &str) -> Option<String> {
    all_files(actions)
        .into_iter()
        .filter(|p| is_pgid_record(p, Some(action)))
        .find_map(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            let line = text.strip_suffix('\n')?.trim();
            (!line.is_empty()).then(|| line.to_owned())
        })
}

pub fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

pub fn find_file(root: &Path, name: &str) -> PathBuf {
    all_files(root)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("no {name} under {}", root.display()))
}

#[test]
fn limit_and_fail_fast() {
    let rig = Rig::new(3);
    let rb = header("limit")
        + "phases:\n  - name: p\n    order: per_host\n    steps:\n"
        + "      - {id: one, module: shell, on: all, with: {cmd: \"[ $RUNBOOK_HOST != a ]\"}}\n"
        + "      - {id: two, module: shell, on: all, with: {cmd: \"sleep 1\"}}\n";
    let run = rig.apply(&rb, &rig.inventory(), &["--limit", "b"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.status("one@a"), "skipped");
    assert_eq!(run.status("one@b"), "changed");
    assert_eq!(run.status("two@c"), "skipped");
    let run = rig.apply(&rb, &rig.inventory(), &["--fail-fast", "--forks", "1"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.status("one@a"), "failed");
    let blocked = run.statuses().values().filter(|s| *s == "blocked").count();
    assert!(
        blocked >= 3,
        "after the first failure nothing new starts: {:?}",
        run.statuses()
    );
}

#[test]
fn manual_steps_without_a_terminal_wait_for_approval() {
    let rig = Rig::new(1);
    let rb = header("manual")
        + "steps:\n  - {id: before, module: shell, on: a, with: {cmd: \"true\"}}\n"
        + "  - {id: confirm, module: manual, with: {instructions: \"Point the application at B.\"}}\n"
        + "  - {id: after, module: shell, on: a, with: {cmd: \"true\"}}\n";
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 3, "exit 3: awaiting approval\n{}", run.stderr);
    assert_eq!(run.status("before@a"), "changed");
    assert_eq!(run.status("confirm@controller"), "awaiting_approval");
    assert_eq!(run.status("after@a"), "blocked");
    let waiting = run
        .events
        .iter()
        .find(|e| e["event"] == "awaiting_approval")
        .expect("an approval request");
    assert_eq!(waiting["instructions"], "Point the application at B.");
    let run_id = run.events[0]["run_id"].as_str().expect("run id").to_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args([
            "approve",
            &run_id,
            "confirm",
            "--by",
            "alice",
            "--reason",
            "application switched",
        ])
        .arg("--state")
        .arg(&run.state)
        .output()
        .expect("approve runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same apply again resumes the run: `before` is not run twice, the approved step passes.
    let file = rig.dir.path().join("runbook-1.yaml");
    let resumed = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(
        resumed.events[0]["run_id"],
        run_id.as_str(),
        "the same run goes on"
    );
    assert!(
        !resumed.start_order().contains(&"before@a".to_owned()),
        "nothing runs twice"
    );
    assert_eq!(resumed.status("confirm@controller"), "ok");
    assert_eq!(resumed.status("after@a"), "changed");
    let status = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["status", &run_id, "--state"])
        .arg(&run.state)
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("(succeeded)") && text.contains("after@a"),
        "{text}"
    );
}

#[test]
fn local_hosts_run_without_ssh() {
    let rig = Rig::new(1);
    let dir = rig.dir.path().join("local-root");
    fs_err::create_dir_all(&dir).expect("mkdir");
    let inventory = rig.dir.path().join("local.yaml");
    fs_err::write(
        &inventory,
        format!(
            "kind: Inventory\nhosts:\n  here:\n    connection: local\n    vars: {{dir: '{}'}}\n",
            dir.display()
        ),
    )
    .expect("write");
    let rb = header("local")
        + "steps:\n  - {id: touch, module: shell, on: here, with: {cmd: \"touch {{ vars.dir }}/touched\"}}\n";
    let run = rig.apply(&rb, &inventory, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(dir.join("touched").exists());
}

#[test]
fn ctrl_c_stops_the_remote_commands() {
    let rig = Rig::new(1);
    let rb = header("interrupt")
        + "steps:\n  - {id: slow, module: shell, on: a, with: {cmd: \"sleep 3141 & sleep 3142\"}}\n"
        + "  - {id: after, module: shell, on: a, with: {cmd: \"true\"}}\n";
    let file = rig.dir.path().join("runbook.yaml");
    fs_err::write(&file, &rb).expect("write");
    let child = rig.spawn_apply(&file);
    let actions = rig.root("a").join(".runbook/actions");
    wait_for_a_running_command(&actions, "the step never started");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let run = Applied::from_output(
        &child.wait_with_output().expect("apply ends"),
        PathBuf::new(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.status("slow@a"), "failed");
    assert!(
        run.message("slow@a").contains("interrupted"),
        "{}",
        run.message("slow@a")
    );
    assert_eq!(run.status("after@a"), "blocked");
    let ps = rig
        .lab
        .ssh_command("a")
        .arg("ps -eo stat=,args= | grep -v grep | grep -E 'sleep 314[12]' | grep -v '^Z' | wc -l")
        .output()
        .expect("ssh runs");
    assert_eq!(
        String::from_utf8_lossy(&ps.stdout).trim(),
        "0",
        "a remote process survived the interrupt"
    );
}

#[test]
fn sftp_upload_over_the_same_connection_is_atomic() {
    use runbook::transport::{Endpoint, Exec, Runner, Transports};
    let rig = Rig::new(1);
    let inventory = runbook::inventory::Inventory::load(&rig.inventory()).expect("lab inventory");
    let transports = Transports::new(inventory.hosts.iter().map(Endpoint::from_host).collect())
        .expect("transports");
    let dest = rig.root("a").join("big.bin");
    let content: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        // A command first opens the master connection; the upload rides on it.
        let r = transports
            .run(
                0,
                Exec {
                    key: "t/x@a".into(),
                    script: "true".into(),
                    ..Exec::default()
                },
            )
            .await;
        assert_eq!(r.expect("ran").code, Some(0));
        transports
            .upload(0, &dest, &content, 0o640)
            .await
            .expect("upload");
        assert!(
            fs_err::read(&dest).expect("read back") == content,
            "5 MB arrive intact"
        );
        transports
            .upload(0, &dest, b"second version", 0o600)
            .await
            .expect("upload over it");
        transports.close().await;
    });
    assert_eq!(fs_err::read(&dest).expect("read back"), b"second version");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs_err::metadata(&dest).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let leftovers: Vec<_> = fs_err::read_dir(rig.root("a"))
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("runbook-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left behind");
}

#[test]
fn a_required_secret_without_a_value_is_invalid_input() {
    let rig = Rig::new(1);
    let rb = header("nosecret")
        + "params:\n  token: {type: secret, required: true}\n"
        + "steps:\n  - {id: use, module: shell, on: a, env: {TOKEN: \"{{ params.token }}\"}, with: {cmd: \"true\"}}\n";
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("RUNBOOK_SECRET_TOKEN"),
        "{}",
        run.stderr
    );
    assert!(run.events.is_empty(), "nothing ran");
}

#[test]
fn estimates_come_from_earlier_runs() {
    let rig = Rig::new(1);
    let file = rig.dir.path().join("history.yaml");
    fs_err::write(&file, header("history") + "steps:\n  - {id: nap, module: shell, on: a, with: {cmd: \"sleep 1\"}}\n  - {id: quick, module: shell, on: a, estimate: 2s, with: {cmd: \"true\"}}\n").expect("write");
    // `plan` and `apply` from the same working directory: the default state directory is
    // `./.runbook` for both (docs/cli.md, "The state directory").
    let cwd = rig.dir.path();
    let plan = |file: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .arg("plan")
            .arg(file)
            .arg("-i")
            .arg(rig.inventory())
            .current_dir(cwd)
            .env_remove("RUNBOOK_STATE")
            .output()
            .expect("plan");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(plan(&file).contains("~10s default"), "{}", plan(&file));
    // A rehearsal with the default state directory.
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("apply")
        .arg(&file)
        .arg("-i")
        .arg(rig.inventory())
        .args(["--format", "json"])
        .current_dir(cwd)
        .env_remove("RUNBOOK_STATE")
        .output()
        .expect("apply");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = plan(&file);
    let line = text
        .lines()
        .find(|l| l.contains(" nap "))
        .expect("the step's line");
    assert!(line.contains("from earlier runs"), "{line}");
    assert!(cwd.join(".runbook/journal.db").exists());
    assert!(
        text.lines()
            .any(|l| l.contains(" quick ") && l.contains("~2s") && !l.contains("earlier")),
        "a declared estimate wins:\n{text}"
    );
}

#[test]
fn fetched_files_are_kept_with_the_run_and_a_missing_one_fails() {
    let rig = Rig::new(1);
    let rb = header("artifacts")
        + "params:\n  token: {type: secret, required: true}\n"
        + "steps:\n"
        + "  - {id: write, module: shell, on: a, with: {cmd: \"printf 'line 1\\\\nkey=%s\\\\n' \\\"$TOKEN\\\" > $RUNBOOK_HOST_ROOT/report.txt\"}, env: {TOKEN: \"{{ params.token }}\"}}\n"
        + "  - {id: keep, module: fetch, on: a, needs: [write], with: {path: \"{{ vars.host_root }}/report.txt\", name: report}}\n"
        + "  - {id: missing, module: fetch, on: a, needs: [keep], with: {path: \"{{ vars.host_root }}/nope.txt\"}}\n";
    let file = rig.dir.path().join("artifacts.yaml");
    fs_err::write(&file, rb).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("apply")
        .arg(&file)
        .arg("-i")
        .arg(rig.inventory())
        .args(["--format", "json", "--state"])
        .arg(rig.dir.path().join("state"))
        .env("RUNBOOK_SECRET_TOKEN", "s3cr3t-value")
        .output()
        .expect("runs");
    let run = Applied::from_output(&out, rig.dir.path().join("state"));
    assert_eq!(run.status("keep@a"), "ok", "{}", run.stderr);
    assert_eq!(run.status("missing@a"), "failed");
    assert!(
        run.message("missing@a").contains("not a readable file"),
        "{}",
        run.message("missing@a")
    );
    let kept = run
        .events
        .iter()
        .find(|e| e["event"] == "artifact_kept")
        .expect("an artifact_kept event");
    assert_eq!(kept["action"], "keep@a");
    assert_eq!(kept["name"], "report");
    let path = PathBuf::from(kept["path"].as_str().expect("a path"));
    assert!(
        path.ends_with("actions/keep@a/artifacts/report"),
        "{}",
        path.display()
    );
    assert!(path.starts_with(rig.dir.path().join("state")));
    // The host's file, with the secret masked in the kept copy.
    let text = fs_err::read_to_string(&path).expect("kept");
    assert_eq!(text, "line 1\nkey=********\n");
    let on_host = fs_err::read_to_string(rig.root("a").join("report.txt")).expect("host file");
    assert!(on_host.contains("s3cr3t-value"));
}

#[test]
fn host_records_are_removed_after_success_and_kept_for_resume_otherwise() {
    let rig = Rig::new(2);
    let records = |host: &str| {
        let dir = rig.root(host).join(".runbook/actions");
        fs_err::read_dir(&dir).map_or(0, |d| d.filter_map(Result::ok).count())
    };
    let ok = rig.apply(
        &(header("clean") + "steps:\n  - {id: one, module: shell, on: all, with: {cmd: 'true'}}\n"),
        &rig.inventory(),
        &[],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(
        (records("a"), records("b")),
        (0, 0),
        "a finished run leaves nothing"
    );
    let failed = rig.apply(
        &(header("keep")
            + "steps:\n  - {id: one, module: shell, on: all, with: {cmd: \"{{ 'false' if host.name == 'a' else 'true' }}\"}}\n"),
        &rig.inventory(),
        &[],
    );
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(
        (records("a"), records("b")),
        (1, 1),
        "a failed run keeps its records for resume"
    );
}

#[test]
fn a_typed_argument_read_from_an_output_gets_its_value_at_run_time() {
    // `port` (an int) comes from an earlier step's JSON: a placeholder in `plan`, the number
    // when the step runs (not the placeholder, which the module could not use).
    let rig = Rig::new(1);
    let rb = header("typed-output")
        + "steps:\n  - {id: facts, module: shell, on: a, register: facts, with: {cmd: \"printf '{\\\"port\\\": %s}\\\\n' {{ host.port }}\"}}\n"
        + "  - {id: wait, module: wait_for, on: a, with: {port: \"{{ facts.values.port }}\", host: \"{{ host.address }}\", timeout: 5s}}\n";
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    assert_eq!(run.status("wait@a"), "ok");
}
