//! The journal's cost per step of `runbook apply` itself (issue 14): the same warm applies of
//! W1 and W2 (kept masters) with `--state DIR` (SQLite), `--state postgres://…` directly and
//! through PgBouncer (transaction mode), interleaved in one run. The steady-state step time
//! (steps 2.., from the JSON events' arrival times) of each, and its difference from the state
//! directory's: what the shared journal adds per step. Run with `RUNBOOK_BENCH_POSTGRES=1`.

use std::path::Path;
use std::time::Duration;

use runbook::lab::{Lab, LabConfig};

use super::{
    Conns, RUNS, WORKLOADS, Workload, apply, breakdown, median, min, runbook_yaml, skip_bashrc,
};

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[allow(
    dead_code,
    reason = "the bench uses the server, not every helper of the tests"
)]
#[path = "../../../tests/suite/postgres_server.rs"]
mod postgres_server;

/// Rounds of the three applies (after a warm-up of each).
const ROUNDS: usize = 5;

fn one(w: &Workload) -> [Vec<Duration>; 3] {
    let dir = tempfile::Builder::new()
        .prefix("rbbench-pg-")
        .tempdir_in("/tmp")
        .expect("a temporary directory");
    let mut lab = Lab::up(LabConfig::new(dir.path().join("lab"), w.hosts)).expect("the lab starts");
    if std::env::var_os("RUNBOOK_BENCH_BASHRC").is_none() {
        skip_bashrc(&mut lab);
    }
    let server = postgres_server::Server::start_durable();
    let runbook = dir.path().join("runbook.yaml");
    fs_err::write(&runbook, runbook_yaml(w.steps)).expect("write the runbook");
    let inventory = lab.inventory_path();
    let control = dir.path().join("ctl");
    let (direct, bounced) = (server.url(), server.bouncer_url());
    let states = [
        dir.path().join("state"),
        Path::new(&direct).to_path_buf(),
        Path::new(&bounced).to_path_buf(),
    ];
    for state in &states {
        apply(&runbook, &inventory, state, Conns::Kept(&control));
    }
    let mut steps: [Vec<Duration>; 3] = Default::default();
    // The transactions the server committed for each direct run (its backend's statistics
    // are flushed when the run's connection ends): a profile of the round trips.
    let committed = || -> i64 {
        server
            .scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = 'runbook'")
            .parse()
            .expect("a count")
    };
    let mut transactions = Vec::new();
    for _ in 0..ROUNDS.max(RUNS) {
        for (i, state) in states.iter().enumerate() {
            let before = (i == 1).then(committed);
            let run = apply(&runbook, &inventory, state, Conns::Kept(&control));
            steps[i].push(breakdown(&run).later_step);
            if let Some(before) = before {
                std::thread::sleep(Duration::from_millis(300));
                // Less the one of the read before.
                transactions.push(committed() - before - 1);
            }
        }
    }
    transactions.sort_unstable();
    eprintln!(
        "{}: transactions committed per run on PostgreSQL directly ({} steps, {} actions): {:?}",
        w.name,
        w.steps,
        w.steps * w.hosts,
        transactions
    );
    drop(server);
    lab.shutdown().expect("the lab stops");
    steps
}

pub fn run() {
    println!(
        "runbook apply (warm masters): steady-state step time per --state, {} interleaved rounds",
        ROUNDS.max(RUNS)
    );
    println!(
        "\n| workload | state dir (SQLite) median (min) | postgres:// median (min) | + per step | share | through PgBouncer median (min) | + per step | share |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for w in WORKLOADS.iter().filter(|w| w.name != "W3") {
        eprintln!("{}: {} hosts × {} steps ...", w.name, w.hosts, w.steps);
        let [local, pg, bouncer] = one(w);
        let base = median(&local);
        let cell = |t: &[Duration]| {
            let m = median(t);
            let extra = m.saturating_sub(base);
            format!(
                "{} ({}) | {} | {:.1} %",
                ms(m),
                ms(min(t)),
                ms(extra),
                100.0 * extra.as_secs_f64() / m.as_secs_f64()
            )
        };
        println!(
            "| {} {}×{} | {} ({}) | {} | {} |",
            w.name,
            w.hosts,
            w.steps,
            ms(base),
            ms(min(&local)),
            cell(&pg),
            cell(&bouncer)
        );
    }
}
