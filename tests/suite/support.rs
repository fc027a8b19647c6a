//! Helpers shared by the suite: compile from strings, run the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use runbook::compile::{self, Overrides};
use runbook::diagnostic::{Code, Diagnostic};
use runbook::inventory::Inventory;
use runbook::parse::parse_runbook;
use runbook::plan::Plan;
use runbook_modules::Registry;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("engine/ has a parent")
        .to_path_buf()
}

/// A small inventory most compile tests run against: `alpha` (originating), `beta`
/// (replicating), `gamma` (no role), groups `site_a` = [alpha], `lab` = all three.
pub const INVENTORY: &str = "\
kind: Inventory
vars:
  site: lab
hosts:
  alpha:
    address: 127.0.0.2
    roles: [originating]
    groups: [site_a]
    vars: {instance: A}
  beta:
    address: 127.0.0.3
    roles: [replicating]
    vars: {instance: B}
  gamma:
    address: 127.0.0.4
groups:
  site_a: {}
  lab:
    hosts: [alpha, beta, gamma]
";

/// Parses and compiles; all diagnostics (parse and compile) on failure.
pub fn compile_str(
    runbook: &str,
    inventory: &str,
    flags: &[&str],
) -> Result<Plan, Vec<Diagnostic>> {
    let parsed = parse_runbook("runbook.yaml", runbook.to_owned());
    let mut errors = parsed.diagnostics.sorted();
    let inventory = Inventory::parse("inventory.yaml", inventory.to_owned())?;
    let Some(runbook) = parsed.runbook else {
        return Err(errors);
    };
    let mut overrides = Overrides::default();
    for f in flags {
        overrides.push_flag(f).map_err(|d| vec![d])?;
    }
    let registry = Registry::builtin();
    let input = compile::Input {
        runbook: &runbook,
        inventory: &inventory,
        registry: &registry,
        overrides: &overrides,
        history: None,
    };
    match compile::compile(input) {
        Ok(plan) if errors.is_empty() => Ok(plan),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            Err(errors)
        }
    }
}

/// `(code, line, column)` of each diagnostic's primary label, in report order.
pub fn located(diagnostics: &[Diagnostic]) -> Vec<(Code, usize, usize)> {
    diagnostics
        .iter()
        .map(|d| {
            let (_, line, col) = d
                .location()
                .unwrap_or_else(|| panic!("diagnostic without location: {d:?}"));
            (d.code, line, col)
        })
        .collect()
}

/// A runbook with one phase `main` and the given steps (YAML, indented by 6 spaces under
/// `steps:`), roles `originating` and `replicating` (exactly one each).
pub fn runbook_with_steps(steps: &str) -> String {
    let mut out = String::from(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata:\n  name: t\n  version: 1.0.0\nroles:\n  originating: 1\n  replicating: 1\nphases:\n  - name: main\n    steps:\n",
    );
    out.push_str(steps);
    out
}

/// Output of one run of the real binary.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `runbook ARGS` from the repository root, without colour.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the runbook binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// How much address space a bounded run may use: a regression that makes a hostile input cost
/// memory (an alias bomb grew past 6 GB in seconds) fails the run instead of eating the machine.
pub const MEMORY_LIMIT: u64 = 1 << 30;

/// How long a bounded run may take before it is killed and the test fails: a guard against a
/// read without end (a device, a FIFO), not a measure of speed.
pub const HANG_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// [`run`], under a limit of `memory` bytes of address space (`ulimit -v`, set by `sh` before
/// it execs the binary) and killed after [`HANG_LIMIT`]. A run that was killed, by the limit or
/// a signal, has code -1 and says why on stderr.
pub fn run_bounded(args: &[&str], memory: u64) -> Output {
    use std::fmt::Write as _;
    use std::io::Read as _;
    use std::process::Stdio;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {} && exec \"$0\" \"$@\"", memory / 1024))
        .arg(env!("CARGO_BIN_EXE_runbook"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    // Drain both pipes while waiting, so a chatty run cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the binary") {
            break Some(status);
        }
        if started.elapsed() > HANG_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stdout = out_reader.join().expect("stdout reader");
    let mut stderr =
        String::from_utf8_lossy(&err_reader.join().expect("stderr reader")).into_owned();
    let code = match status {
        None => {
            let _ = write!(
                stderr,
                "\n[killed: still running after {} s]\n",
                HANG_LIMIT.as_secs()
            );
            -1
        }
        Some(status) => {
            use std::os::unix::process::ExitStatusExt as _;
            if let Some(signal) = status.signal() {
                let _ = write!(
                    stderr,
                    "\n[killed by signal {signal}; a memory limit of {} MiB was set]\n",
                    memory >> 20
                );
            }
            status.code().unwrap_or(-1)
        }
    };
    Output {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
    }
}
