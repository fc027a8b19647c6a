//! A state directory that fills up: on a real, small tmpfs mounted as `--state`, filled before
//! a run, by a step of the run itself, and while a step runs. Each time the run must stop at
//! once with exit 5 and a message naming the state directory and the cause, keep the hosts'
//! records, and, once space is back, resume the same run with every step run exactly once.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::apply::{Applied, Rig};

const STEPS: usize = 8;
const HOSTS: [&str; 2] = ["a", "b"];
/// `runbook apply`'s exit code for a run whose state could not be recorded.
const NOT_RECORDED: i32 = 5;

/// A tmpfs mounted for the test's life; unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Self {
        fs_err::create_dir_all(&dir).expect("create the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "these tests need a real full file system: cannot mount a tmpfs at {} (they must run as root, with mount(2) allowed): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// Writes filler files until the file system refuses with ENOSPC.
    fn fill(&self) {
        use std::io::Write as _;
        let mut file = fs_err::File::create(self.dir.join("filler-test")).expect("create");
        let chunk = vec![0u8; 64 * 1024];
        for size in [chunk.len(), 4096, 1] {
            loop {
                match file.write_all(&chunk[..size]) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                    Err(e) => panic!("filling {}: {e}", self.dir.display()),
                }
            }
        }
    }

    /// Removes every filler file (the test's and the steps').
    fn free(&self) {
        for entry in fs_err::read_dir(&self.dir).expect("read the tmpfs") {
            let path = entry.expect("an entry").path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("filler"))
            {
                fs_err::remove_file(&path).expect("remove a filler");
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Eight steps on both hosts, each appending `step-N` to the host's `counter`; `extra` adds a
/// command to some steps (after the line is written).
fn runbook(counter: &str, extra: &[(usize, String)]) -> String {
    let mut rb = String::from(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: full-disk, version: 1.0.0}\nsteps:\n",
    );
    for n in 1..=STEPS {
        let mut more = String::new();
        for (_, cmd) in extra.iter().filter(|(step, _)| *step == n) {
            let _ = write!(more, "; {cmd}");
        }
        let _ = writeln!(
            rb,
            "  - {{id: s{n}, module: shell, on: all, with: {{cmd: \"echo step-{n} >> $RUNBOOK_HOST_ROOT/{counter}{more}\"}}}}"
        );
    }
    rb
}

/// A step command that fills `tmpfs` from host `host` (lab hosts share the controller's disk).
fn fill_from(host: &str, tmpfs: &Tmpfs, name: &str) -> String {
    format!(
        "test $RUNBOOK_HOST != {host} || cat /dev/zero > {}/{name} 2>/dev/null; true",
        tmpfs.dir.display()
    )
}

fn apply_cmd(rig: &Rig, file: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
    cmd.arg("apply")
        .arg(file)
        .arg("-i")
        .arg(rig.inventory())
        .args(["--format", "json", "--state"])
        .arg(state)
        .env("NO_COLOR", "1");
    cmd
}

fn apply(rig: &Rig, file: &Path, state: &Path) -> Applied {
    let out = apply_cmd(rig, file, state).output().expect("runbook runs");
    Applied::from_output(&out, state.to_path_buf())
}

fn run_id(applied: &Applied) -> String {
    applied.events[0]["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run_started: {:?}\n{}", applied.events, applied.stderr))
        .to_owned()
}

/// How many times each step's line is on `host`.
fn counts(rig: &Rig, host: &str, counter: &str) -> Vec<usize> {
    let text = fs_err::read_to_string(rig.root(host).join(counter)).unwrap_or_default();
    (1..=STEPS)
        .map(|n| text.lines().filter(|l| *l == format!("step-{n}")).count())
        .collect()
}

/// Steps `1..=upto` ran exactly once on every host, and no later one ran.
fn ran_once_up_to(rig: &Rig, counter: &str, upto: usize) {
    for host in HOSTS {
        let want: Vec<usize> = (1..=STEPS).map(|n| usize::from(n <= upto)).collect();
        assert_eq!(
            counts(rig, host, counter),
            want,
            "on {host}: steps 1..={upto} once each, nothing after"
        );
    }
}

/// The run stopped as it must: exit 5, an event and a message that name the state directory and
/// the cause, the hosts' records kept.
fn stopped_unrecorded(applied: &Applied, rig: &Rig, state: &Path) {
    assert_eq!(
        applied.code, NOT_RECORDED,
        "exit 5 when the state cannot be recorded: {}",
        applied.stderr
    );
    let wanted = format!("could not be recorded in {}", state.display());
    assert!(applied.stderr.contains(&wanted), "{}", applied.stderr);
    assert!(
        applied.stderr.contains("No space left on device"),
        "the cause is named: {}",
        applied.stderr
    );
    let failed: Vec<&serde_json::Value> = applied
        .events
        .iter()
        .filter(|e| e["event"] == "record_failed")
        .collect();
    if applied.events.iter().any(|e| e["event"] == "run_started") {
        assert_eq!(
            failed.len(),
            1,
            "one record_failed event: {:?}",
            applied.events
        );
        let message = failed[0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("No space left on device")
                && message.contains(&*state.to_string_lossy()),
            "{message}"
        );
        let finished = applied.events.last().expect("events");
        assert_eq!(finished["event"], "run_finished");
        assert_eq!(finished["status"], "unrecorded");
        let run = run_id(applied);
        for host in HOSTS {
            let records = rig.root(host).join(".runbook/actions").join(&run);
            assert!(
                records.is_dir(),
                "the host records of {host} are kept: {}",
                records.display()
            );
        }
    }
}

/// The resumed run finished: same run, exit 0, hosts' records cleaned up.
fn completed(applied: &Applied, rig: &Rig, run: &str) {
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert_eq!(run_id(applied), run, "the same run resumed");
    for host in HOSTS {
        assert!(
            !rig.root(host).join(".runbook/actions").join(run).exists(),
            "a succeeded run forgets its host records"
        );
    }
}

#[test]
fn a_state_directory_full_before_the_run_stops_it_before_anything_runs() {
    let rig = Rig::new(2);
    let tmpfs = Tmpfs::mount(rig.dir.path().join("state"), "2m");
    let state = tmpfs.dir.clone();

    // No journal yet: SQLite cannot even create it.
    let file = rig.dir.path().join("first.yaml");
    fs_err::write(&file, runbook("first", &[])).expect("write");
    tmpfs.fill();
    let refused = apply(&rig, &file, &state);
    stopped_unrecorded(&refused, &rig, &state);
    assert!(
        refused.stderr.contains("nothing was started"),
        "{}",
        refused.stderr
    );
    ran_once_up_to(&rig, "first", 0);
    tmpfs.free();
    let done = apply(&rig, &file, &state);
    assert_eq!(done.code, 0, "{}", done.stderr);
    ran_once_up_to(&rig, "first", STEPS);

    // A journal that exists (WAL closed and removed): it opens, then cannot record a new run.
    let file = rig.dir.path().join("second.yaml");
    fs_err::write(&file, runbook("second", &[])).expect("write");
    tmpfs.fill();
    let refused = apply(&rig, &file, &state);
    stopped_unrecorded(&refused, &rig, &state);
    ran_once_up_to(&rig, "second", 0);
    tmpfs.free();
    let done = apply(&rig, &file, &state);
    assert_eq!(done.code, 0, "{}", done.stderr);
    ran_once_up_to(&rig, "second", STEPS);
    ran_once_up_to(&rig, "first", STEPS);
}

#[test]
fn the_journal_filling_up_at_two_points_of_a_run_then_resumes_with_every_step_once() {
    let rig = Rig::new(2);
    let tmpfs = Tmpfs::mount(rig.dir.path().join("state"), "2m");
    let state = tmpfs.dir.clone();
    // The run directory elsewhere, so that the journal is what fails (not the action files).
    let runs = rig.dir.path().join("runs");
    fs_err::create_dir_all(&runs).expect("mkdir");
    std::os::unix::fs::symlink(&runs, state.join("runs")).expect("symlink");
    let file = rig.dir.path().join("full.yaml");
    let extra = [
        (3, fill_from("a", &tmpfs, "filler-3")),
        (6, fill_from("b", &tmpfs, "filler-6")),
    ];
    fs_err::write(&file, runbook("counter", &extra)).expect("write");

    // Step 3 fills the disk on `a`: its result and step 4's `started` cannot be committed, so
    // step 4 is never sent.
    let first = apply(&rig, &file, &state);
    stopped_unrecorded(&first, &rig, &state);
    let why = first
        .events
        .iter()
        .find(|e| e["event"] == "record_failed")
        .and_then(|e| e["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(why.contains("journal"), "the journal failed: {why}");
    let run = run_id(&first);
    ran_once_up_to(&rig, "counter", 3);
    assert_eq!(first.status("s4@a"), "blocked");

    // Space back: the same run resumes, settles step 3 from the hosts, and step 6 fills the
    // disk again (from `b`), with the journal now behind a resumed run.
    tmpfs.free();
    let second = apply(&rig, &file, &state);
    stopped_unrecorded(&second, &rig, &state);
    assert_eq!(run_id(&second), run, "the same run resumed");
    let settled: Vec<String> = second
        .events
        .iter()
        .filter(|e| e["event"] == "action_resumed" && e["action"] == "s3@a")
        .map(|e| e["how"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        settled,
        ["host: it had finished"],
        "the lost result is settled from the host's record"
    );
    ran_once_up_to(&rig, "counter", 6);

    tmpfs.free();
    let third = apply(&rig, &file, &state);
    completed(&third, &rig, &run);
    ran_once_up_to(&rig, "counter", STEPS);
}

#[test]
fn the_state_directory_filling_while_a_step_runs_stops_the_run_after_it() {
    let rig = Rig::new(2);
    let tmpfs = Tmpfs::mount(rig.dir.path().join("state"), "2m");
    let state = tmpfs.dir.clone();
    let go = rig.dir.path().join("go");
    let file = rig.dir.path().join("mid.yaml");
    let wait = format!("while [ ! -e {} ]; do sleep 0.1; done", go.display());
    fs_err::write(&file, runbook("counter", &[(3, wait)])).expect("write");

    // The disk fills while step 3 runs on both hosts; then step 3 ends.
    let mut child = apply_cmd(&rig, &file, &state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runbook runs");
    let mut stdout = Vec::new();
    let mut filled = false;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.expect("a line");
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON event");
        if !filled && event["event"] == "action_started" && event["action"] == "s3@b" {
            tmpfs.fill();
            fs_err::write(&go, "").expect("release step 3");
            filled = true;
        }
        stdout.extend_from_slice(line.as_bytes());
        stdout.push(b'\n');
    }
    let mut stderr = Vec::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_end(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("wait");
    assert!(filled, "step 3 started");
    let first = Applied::from_output(
        &std::process::Output {
            status,
            stdout,
            stderr,
        },
        state.clone(),
    );
    stopped_unrecorded(&first, &rig, &state);
    let run = run_id(&first);
    ran_once_up_to(&rig, "counter", 3);

    tmpfs.free();
    let second = apply(&rig, &file, &state);
    completed(&second, &rig, &run);
    ran_once_up_to(&rig, "counter", STEPS);
}
