//! Benchmark: `plan` of a 50-step runbook over a 1,000-host inventory (50,000 actions).
//!
//!     cargo bench -p runbook-engine --bench plan
//!
//! Writes the generated runbook and inventory to `target/bench-plan/` (so the CLI can be timed
//! too, see docs/performance.md), then parses, compiles and renders the plan in-process several
//! times and prints the wall time of each stage and the peak resident memory. Targets: under
//! 1 s and under 500 MiB for the whole `plan`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use runbook::compile::{self, Overrides};
use runbook::inventory::Inventory;
use runbook::parse::parse_runbook;
use runbook::plan::{render_json, render_text};
use runbook_modules::Registry;

const HOSTS: usize = 1_000;
const STEPS: usize = 50;
const RUNS: usize = 5;

fn inventory() -> String {
    let mut s = String::from(
        "kind: Inventory\nvars:\n  gtm_dist: /usr/lib/x86_64-linux-gnu/fis-gtm/V7.0-005_x86_64\n  repl_port: 4000\nhosts:\n",
    );
    for i in 0..HOSTS {
        let role = if i == 0 { "originating" } else { "replicating" };
        let _ = writeln!(
            s,
            "  db{i:04}:\n    address: 10.{}.{}.{}\n    port: 22\n    user: gtm\n    roles: [{role}]\n    groups: [site{}]\n    vars: {{instance: I{i}, dir: /srv/gtm/db{i:04}}}",
            i / 65_536,
            (i / 256) % 256,
            i % 256,
            i % 4
        );
    }
    s
}

fn runbook() -> String {
    let mut s = String::from(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: bench, version: 1.0.0}\nparams:\n  timeout: {type: duration, default: 2m}\n  region: {type: string, default: DEFAULT}\nroles:\n  originating: 1\n  replicating: {min: 1}\nphases:\n",
    );
    for phase in 0..5 {
        let order = if phase % 2 == 0 {
            "sequential"
        } else {
            "per_host"
        };
        let outage = phase == 2;
        let _ = writeln!(
            s,
            "  - name: phase{phase}\n    order: {order}\n    outage: {outage}\n    steps:"
        );
        for k in 0..STEPS / 5 {
            let n = phase * (STEPS / 5) + k;
            let needs = if k == 3 && n > 10 {
                format!("[s{}]", n - 10)
            } else {
                "[]".to_owned()
            };
            let _ = writeln!(
                s,
                "      - id: s{n}\n        module: shell\n        on: all\n        needs: {needs}\n        estimate: {}s\n        with:\n          cmd: \"cd {{{{ vars.dir }}}} && mupip set -region {{{{ params.region }}}} -journal=on -instance={{{{ vars.instance }}}} -port={{{{ vars.repl_port }}}} -host={{{{ host.address }}}}\"",
                1 + n % 7
            );
        }
    }
    s
}

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
