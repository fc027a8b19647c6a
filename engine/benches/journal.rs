//! Benchmark: what the journal costs.
//!
//!     cargo bench -p runbook-engine --bench journal
//!
//! 1. **Cost per step** of the journal writes `apply` makes on the workloads W1 (10 hosts × 20
//!    steps) and W2 (1 host × 100 steps) of the `apply` bench, issued exactly as the scheduler
//!    issues them (group commit: one transaction per scheduling round, `synchronous=FULL`, WAL),
//!    into a journal under `target/` (the same disk as a run's default state directory), or
//!    under `RUNBOOK_BENCH_STATE` if set. A result that releases nothing is not committed on its
//!    own: the 10 results of a W1 step share one commit with the next step's 10 `started`, and
//!    in W2 each commit holds step k's result and step k+1's `started`. For comparison, W1 is
//!    also measured as it was before that change (each result committed as it arrived). Divide
//!    by the per-step time of the `apply` bench for the share of a step (docs/performance.md).
//! 2. **`status` and resume of a run with 50,000 recorded actions**: the 50 × 1,000 workload of
//!    the `plan` bench, its run recorded as interrupted with every action finished; then the
//!    release binary's `runbook status RUN` and `runbook apply` (which resumes it: loads and
//!    checks 50,000 records against the plan, finds nothing left to do, opens no connection)
//!    are timed as whole processes. The run is marked interrupted again before each resume.
//!
//! 3. **The shared journal on PostgreSQL** (`-- postgres`, issue 14): the same writes as (1)
//!    for W1 and W2, through the run's [`RunLog`] (what the scheduler calls: [`Local`] over
//!    SQLite, [`Shared`] over PostgreSQL under a lease), in the same run: SQLite in the state
//!    directory as in (1), a throwaway PostgreSQL 15 on localhost started by the bench (as the
//!    tests start it: `initdb`/`pg_ctl` as the `postgres` user, its data on the same disk, with
//!    `fsync` on, as in production), and the same server through PgBouncer in transaction
//!    pooling mode; and a second server with `fsync` off, for the protocol's and the server's
//!    cost alone (the round trips), the disk aside. Needs root (to run the servers as `postgres`) and Debian's `postgresql` and
//!    `pgbouncer`.
//!
//! Each measurement: one warm-up, then `RUNS` runs; median and min are printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runbook::compile::{self, Overrides};
use runbook::event::Status;
use runbook::execute::{ActionFiles, Local, RunLog, Shared};
use runbook::inventory::Inventory;
use runbook::journal::postgres::Database;
use runbook::journal::postgres::lease::Holder;
use runbook::journal::{Entry, Journal, RunRecord, RunState};
use runbook::parse::parse_runbook;
use runbook_modules::Registry;

#[path = "common/workload.rs"]
mod workload;

#[allow(
    dead_code,
    reason = "the bench uses the server, not every helper of the tests"
)]
#[path = "../../tests/suite/postgres_server.rs"]
mod postgres_server;

const RUNBOOK: &str = env!("CARGO_BIN_EXE_runbook");
const RUNS: usize = 5;

fn started(action: &str) -> Entry {
    Entry::Started {
        action: action.to_owned(),
        step: action.split('@').next().unwrap_or_default().to_owned(),
        host: action.split('@').nth(1).unwrap_or_default().to_owned(),
        definition_fp: "0123456789abcdef0123456789abcdef".to_owned(),
        attempt: 1,
    }
}

fn finished(action: &str, millis: u64) -> Entry {
    Entry::Finished {
        action: action.to_owned(),
        step: action.split('@').next().unwrap_or_default().to_owned(),
        host: action.split('@').nth(1).unwrap_or_default().to_owned(),
        definition_fp: "0123456789abcdef0123456789abcdef".to_owned(),
        status: "changed".to_owned(),
        rc: Some(0),
        duration: Duration::from_millis(millis),
        message: None,
        output: None,
    }
}

fn record(id: &str, runbook_file: &str, inventory_file: &str, state: RunState) -> RunRecord {
    RunRecord {
        id: id.to_owned(),
        operator: "bench".to_owned(),
        started_at: jiff::Timestamp::now().to_string(),
        runbook_name: "bench".to_owned(),
        runbook_version: "1.0.0".to_owned(),
        runbook_file: runbook_file.to_owned(),
        inventory_file: inventory_file.to_owned(),
        runbook_fp: String::new(),
        inventory_fp: String::new(),
        params_fp: String::new(),
        params: "[]".to_owned(),
        state,
        finished_at: None,
        window: None,
    }
}

/// The journal writes of one run of `steps` sequential steps over `hosts` hosts; returns the
/// time per step.
fn journal_run(dir: &Path, run: &str, hosts: usize, steps: usize, batched: bool) -> Duration {
    let journal = Journal::open(dir).expect("the journal opens");
    journal
        .create_run(&record(run, "/r.yaml", "/i.yaml", RunState::Running))
        .expect("run recorded");
    let id = |s: usize, h: usize| format!("s{s}@h{h}");
    let t = Instant::now();
    let mut carry: Vec<Entry> = Vec::new();
    for s in 0..steps {
        // The round that starts step `s`: its `started`, with the previous step's results
        // when they arrived together.
        let mut round = std::mem::take(&mut carry);
        round.extend((0..hosts).map(|h| started(&id(s, h))));
        journal.write(run, &round).expect("written");
        let results: Vec<Entry> = (0..hosts).map(|h| finished(&id(s, h), 20)).collect();
        if batched {
            carry = results;
        } else {
            for r in results {
                journal.write(run, &[r]).expect("written");
            }
        }
    }
    if !carry.is_empty() {
        journal.write(run, &carry).expect("written");
    }
    t.elapsed() / u32::try_from(steps).expect("few steps")
}

/// An action's files as `apply` keeps them for `echo x` (its `stdout`, `stderr` and result).
const FILES: ActionFiles<'static> = ActionFiles {
    stdout: "x\n",
    stderr: "",
    status: Status::Changed,
    rc: Some(0),
    message: None,
    duration_secs: 0.02,
    attempts: 1,
};

/// The same writes as [`journal_run`] (batched), through a run's [`RunLog`], with each
/// action's files ([`RunLog::keep_output`]): what the scheduler's writes cost on that backend;
/// returns the time per step.
fn log_run(log: &mut dyn RunLog, hosts: usize, steps: usize) -> Duration {
    let id = |s: usize, h: usize| format!("s{s}@h{h}");
    let t = Instant::now();
    let mut carry: Vec<Entry> = Vec::new();
    for s in 0..steps {
        let mut round = std::mem::take(&mut carry);
        round.extend((0..hosts).map(|h| started(&id(s, h))));
        log.commit(&round).expect("written");
        // Each result's files are kept just before it is buffered, as the scheduler does.
        for h in 0..hosts {
            log.keep_output(&id(s, h), &FILES).expect("kept");
        }
        carry = (0..hosts).map(|h| finished(&id(s, h), 20)).collect();
    }
    log.commit(&carry).expect("written");
    t.elapsed() / u32::try_from(steps).expect("few steps")
}

/// SQLite against PostgreSQL (directly and through PgBouncer), through the run's `RunLog`.
fn postgres(base: &Path) {
    let dir = base.join("postgres");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the bench directory");
    let server = postgres_server::Server::start_durable();
    // The same without fsync: what the protocol and the server's work cost, the disk aside.
    let nosync = postgres_server::Server::start();
    let sqlite = Arc::new(Mutex::new(
        Journal::open(&dir.join("state")).expect("journal"),
    ));
    let direct = Arc::new(Database::open(&server.url()).expect("PostgreSQL"));
    let bounced = Arc::new(Database::open(&server.bouncer_url()).expect("PgBouncer"));
    let unsynced = Arc::new(Database::open(&nosync.url()).expect("PostgreSQL, fsync off"));
    let holder = Holder::this_process();
    println!(
        "journal writes per step through the run's RunLog: SQLite ({}) against PostgreSQL on localhost (fsync on)",
        dir.display()
    );
    for (name, hosts, steps) in [("W1 10x20", 10, 20), ("W2 1x100", 1, 100)] {
        for backend in ["sqlite", "postgres", "pgbouncer", "pg-nosync"] {
            let mut times = Vec::new();
            for i in 0..=RUNS {
                let run = format!("{name}-{backend}-{i}");
                let rec = record(&run, "/r.yaml", "/i.yaml", RunState::Running);
                let run_dir = dir.join("runs").join(&run);
                let mut log: Box<dyn RunLog> = if backend == "sqlite" {
                    sqlite
                        .lock()
                        .expect("not poisoned")
                        .create_run(&rec)
                        .expect("run recorded");
                    Box::new(Local::new(Some(Arc::clone(&sqlite)), &run, run_dir))
                } else {
                    let db = match backend {
                        "postgres" => &direct,
                        "pgbouncer" => &bounced,
                        _ => &unsynced,
                    };
                    db.create_run(&rec).expect("run recorded");
                    Box::new(
                        Shared::take(
                            Arc::clone(db),
                            &run,
                            run_dir,
                            &holder,
                            Duration::from_secs(60),
                        )
                        .expect("take")
                        .expect("free"),
                    )
                };
                let t = log_run(log.as_mut(), hosts, steps);
                if i > 0 {
                    times.push(t);
                }
            }
            let (med, min) = median(times);
            println!("  {name:<10} {backend:<10} median {med:>9.2?} per step   min {min:>9.2?}");
        }
    }
}

fn median(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[0])
}

fn per_step(base: &Path) {
    let dir = base.join("per-step");
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "journal writes per step (group commit, synchronous=FULL) in {}",
        dir.display()
    );
    for (name, hosts, steps, batched) in [
        ("W1 10x20", 10, 20, true),
        ("W1 10x20, before (each result alone)", 10, 20, false),
        ("W2 1x100", 1, 100, true),
    ] {
        let mut times = Vec::new();
        for i in 0..=RUNS {
            let t = journal_run(&dir, &format!("{name}-{i}"), hosts, steps, batched);
            if i > 0 {
                times.push(t);
            }
        }
        let (med, min) = median(times);
        println!("  {name:<38} median {med:>9.2?} per step   min {min:>9.2?}");
    }
}

fn time(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("runbook runs");
    let elapsed = t.elapsed();
    assert!(status.success(), "{cmd:?} failed: {status}");
    elapsed
}

fn fifty_thousand(base: &Path) {
    let dir = base.join("50k");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the bench directory");
    let (rb_text, inv_text) = (workload::runbook(), workload::inventory());
    let rb_file = dir.join("runbook.yaml");
    let inv_file = dir.join("inventory.yaml");
    std::fs::write(&rb_file, &rb_text).expect("write runbook");
    std::fs::write(&inv_file, &inv_text).expect("write inventory");
    let abs = |p: &PathBuf| {
        std::fs::canonicalize(p)
            .expect("exists")
            .display()
            .to_string()
    };
    let parsed = parse_runbook("runbook.yaml", rb_text);
    let runbook = parsed.runbook.expect("the generated runbook parses");
    let inventory = Inventory::parse("inventory.yaml", inv_text).expect("inventory loads");
    let registry = Registry::builtin();
    let overrides = Overrides::default();
    let plan = compile::compile(compile::Input {
        runbook: &runbook,
        inventory: &inventory,
        registry: &registry,
        overrides: &overrides,
        history: None,
    })
    .expect("compiles");

    let state = dir.join("state");
    let journal = Journal::open(&state).expect("journal");
    let run = "20261123T000000Z-bench";
    let mut rec = record(run, &abs(&rb_file), &abs(&inv_file), RunState::Interrupted);
    rec.runbook_name.clone_from(&plan.runbook.name);
    rec.runbook_version.clone_from(&plan.runbook.version);
    journal.create_run(&rec).expect("run recorded");
    let t = Instant::now();
    let entries: Vec<Entry> = plan
        .actions()
        .flat_map(|(node, a)| {
            let step = &plan.steps[a.step];
            let fp = plan.action_fingerprint(node).to_owned();
            let (action, host) = (plan.action_id(a), plan.host_name(a.host).to_owned());
            [
                Entry::Started {
                    action: action.clone(),
                    step: step.id.clone(),
                    host: host.clone(),
                    definition_fp: fp.clone(),
                    attempt: 1,
                },
                Entry::Finished {
                    action,
                    step: step.id.clone(),
                    host,
                    definition_fp: fp,
                    status: "changed".to_owned(),
                    rc: Some(0),
                    duration: Duration::from_millis(250),
                    message: None,
                    output: None,
                },
            ]
        })
        .collect();
    for chunk in entries.chunks(2_000) {
        journal.write(run, chunk).expect("written");
    }
    println!(
        "recorded {} actions in {:.1?} (setup, not a target)",
        plan.action_count(),
        t.elapsed()
    );

    let mut status = Vec::new();
    let mut resume = Vec::new();
    for i in 0..=RUNS {
        let s = time(
            Command::new(RUNBOOK)
                .args(["status", run, "--state"])
                .arg(&state),
        );
        journal
            .set_state(run, RunState::Interrupted)
            .expect("interrupted again");
        let r = time(
            Command::new(RUNBOOK)
                .arg("apply")
                .arg(&rb_file)
                .arg("-i")
                .arg(&inv_file)
                .args(["--format", "json", "--state"])
                .arg(&state),
        );
        let after = journal.run(run).expect("read").expect("the run");
        assert_eq!(
            after.state,
            RunState::Succeeded,
            "the resume finished the run"
        );
        if i > 0 {
            status.push(s);
            resume.push(r);
        }
    }
    let (s_med, s_min) = median(status);
    let (r_med, r_min) = median(resume);
    println!("50,000 recorded actions:");
    println!("  runbook status RUN              median {s_med:>9.1?}   min {s_min:>9.1?}");
    println!("  runbook apply (resume, nothing left) median {r_med:>9.1?}   min {r_min:>9.1?}");
}

fn main() {
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let base = std::env::var_os("RUNBOOK_BENCH_STATE").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-journal"),
        |d| PathBuf::from(d).join("bench-journal"),
    );
    std::fs::create_dir_all(&base).expect("create the bench directory");
    if filter.as_deref().is_none_or(|f| "per-step".contains(f)) {
        per_step(&base);
    }
    if filter.as_deref().is_none_or(|f| "50k".contains(f)) {
        fifty_thousand(&base);
    }
    if filter.as_deref().is_none_or(|f| "postgres".contains(f)) {
        postgres(&base);
    }
}
