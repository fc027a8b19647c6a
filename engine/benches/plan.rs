//! Benchmark: `plan` of a 50-step runbook over a 1,000-host inventory (50,000 actions).
//!
//!     cargo bench -p runbook-engine --bench plan
//!
//! Writes the generated runbook and inventory to `target/bench-plan/` (so the CLI can be timed
//! too, see docs/performance.md), then parses, compiles and renders the plan in-process several
//! times and prints the wall time of each stage and the peak resident memory. Targets: under
//! 1 s and under 500 MiB for the whole `plan`.

use std::time::{Duration, Instant};

use runbook::compile::{self, Overrides};
use runbook::inventory::Inventory;
use runbook::parse::parse_runbook;
use runbook::plan::{render_json, render_text};
use runbook_modules::Registry;

const RUNS: usize = 5;

#[path = "common/workload.rs"]
mod workload;
use workload::{HOSTS, STEPS, inventory, runbook};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-plan");
    std::fs::create_dir_all(&dir).expect("create target/bench-plan");
    let (rb_text, inv_text) = (runbook(), inventory());
    std::fs::write(dir.join("runbook.yaml"), &rb_text).expect("write runbook");
    std::fs::write(dir.join("inventory.yaml"), &inv_text).expect("write inventory");

    let registry = Registry::builtin();
    let mut totals = Vec::new();
    for run in 0..RUNS {
        let t0 = Instant::now();
        let parsed = parse_runbook("runbook.yaml", rb_text.clone());
        let runbook = parsed.runbook.expect("the generated runbook parses");
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let inventory =
            Inventory::parse("inventory.yaml", inv_text.clone()).expect("inventory loads");
        let t1 = Instant::now();
        let overrides = Overrides::default();
        let plan = compile::compile(compile::Input {
            runbook: &runbook,
            inventory: &inventory,
            registry: &registry,
            overrides: &overrides,
            history: None,
        })
        .expect("the generated runbook compiles");
        let t2 = Instant::now();
        let json = render_json(&plan);
        let t3 = Instant::now();
        let text = render_text(&plan);
        let t4 = Instant::now();
        assert_eq!(plan.action_count(), HOSTS * STEPS);
        println!(
            "run {run}: load {:>7.1?}  compile {:>7.1?}  json {:>7.1?} ({} MB)  text {:>7.1?}  plan total (load+compile+json) {:>7.1?}",
            t1 - t0,
            t2 - t1,
            t3 - t2,
            json.len() / 1_000_000,
            t4 - t3,
            t3 - t0
        );
        totals.push(t3 - t0);
        drop(text);
    }
    totals.sort();
    let median: Duration = totals[totals.len() / 2];
    println!(
        "actions: {}  median plan (json): {median:.1?}  best: {:.1?}  peak RSS: {:.0} MiB",
        HOSTS * STEPS,
        totals[0],
        peak_rss_mib()
    );
    println!(
        "CLI: /usr/bin/time -v target/release/runbook plan {0}/runbook.yaml -i {0}/inventory.yaml --format json > /dev/null",
        dir.display()
    );
}
