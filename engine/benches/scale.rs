//! Benchmark: `runbook validate` of very large runbooks (10,000, 50,000 and 100,000 steps).
//!
//!     cargo bench -p runbook-engine --bench scale
//!
//! Writes two runbooks of each size to `target/bench-scale/` and validates each with the
//! release binary under `/usr/bin/time`, printing wall time and peak resident memory:
//!
//! - `plain-N`: N shell steps on every host, one phase;
//! - `mixed-N`: ten phases, every step registering its output and conditional (`when:`) on the
//!   one before, one in ten reading that output in a templated command with `needs:`, and an
//!   `always` step per phase: the shapes that grew with the square of the steps.
//!
//! Target (issue 10): 100,000 steps in seconds and under 1 GB. Figures: docs/performance.md.

use std::fmt::Write as _;
use std::process::Command;

const INVENTORY: &str = "tests/fixtures/demo-inventory.yaml";

fn plain(n: usize) -> String {
    let mut text = String::from(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: plain, version: 1.0.0}\nphases:\n  - name: main\n    steps:\n",
    );
    for i in 0..n {
        let _ = writeln!(
            text,
            "      - id: s{i}\n        module: shell\n        on: all\n        with: {{cmd: \"true\"}}"
        );
    }
    text
}

fn mixed(n: usize) -> String {
    let mut text = String::from(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: mixed, version: 1.0.0}\nphases:\n",
    );
    let per_phase = n / 10;
    for p in 0..10 {
        let _ = writeln!(text, "  - name: p{p}\n    steps:");
        for k in 0..per_phase {
            let i = p * per_phase + k;
            let _ = write!(
                text,
                "      - id: s{i}\n        module: shell\n        on: all\n        register: r{i}\n"
            );
            if i > 0 {
                let _ = writeln!(text, "        when: r{}.rc == 0", i - 1);
            }
            if i > 0 && i.is_multiple_of(10) {
                let _ = writeln!(
                    text,
                    "        needs: [s{}]\n        with: {{cmd: \"echo {{{{ r{}.stdout }}}}\"}}",
                    i - 1,
                    i - 1
                );
            } else {
                text.push_str("        with: {cmd: \"true\"}\n");
            }
        }
        let _ = writeln!(
            text,
            "    always:\n      - id: report{p}\n        module: shell\n        on: all\n        with: {{cmd: \"true\"}}"
        );
    }
    text
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("target/bench-scale");
    std::fs::create_dir_all(&dir).expect("create target/bench-scale");
    println!(
        "{:<14} {:>10} {:>10} {:>12}",
        "runbook", "bytes", "seconds", "max RSS MB"
    );
    for n in [10_000, 50_000, 100_000] {
        for (kind, text) in [("plain", plain(n)), ("mixed", mixed(n))] {
            let path = dir.join(format!("{kind}-{n}.yaml"));
            std::fs::write(&path, &text).expect("write the runbook");
            let out = Command::new("/usr/bin/time")
                .args(["-f", "%e %M"])
                .arg(env!("CARGO_BIN_EXE_runbook"))
                .arg("validate")
                .arg(&path)
                .args(["-i", INVENTORY])
                .current_dir(&root)
                .output()
                .expect("/usr/bin/time runs the binary");
            assert!(
                out.status.success(),
                "{kind}-{n} did not validate:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or_default();
            let mut fields = last.split_whitespace();
            let secs = fields.next().unwrap_or("?");
            let kb: f64 = fields
                .next()
                .and_then(|k| k.parse().ok())
                .unwrap_or(f64::NAN);
            println!(
                "{:<14} {:>10} {:>10} {:>12.0}",
                format!("{kind}-{n}"),
                text.len(),
                secs,
                kb / 1024.0
            );
        }
    }
}
