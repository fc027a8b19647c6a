//! The generated 50-step × 1,000-host workload shared by the `plan` and `journal` benches.

use std::fmt::Write as _;

pub const HOSTS: usize = 1_000;
pub const STEPS: usize = 50;

pub fn inventory() -> String {
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

pub fn runbook() -> String {
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
