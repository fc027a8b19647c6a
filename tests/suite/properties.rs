//! Random runbooks, valid or not: the compiler never panics, every diagnostic is located, and
//! every dependency cycle is reported (one diagnostic per strongly connected component).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;
use proptest::prelude::*;
use runbook::diagnostic::Code;

use crate::support::{INVENTORY, compile_str, located};

/// Targets the generator picks from, with the hosts each selects in `INVENTORY`.
const TARGETS: &[(&str, &[&str])] = &[
    ("alpha", &["alpha"]),
    ("beta", &["beta"]),
    ("gamma", &["gamma"]),
    ("lab", &["alpha", "beta", "gamma"]),
    ("originating", &["alpha"]),
    ("nowhere", &[]),
    ("'alpha | beta'", &["alpha", "beta"]),
];

#[derive(Clone, Debug)]
struct GenStep {
    target: usize,
    needs: Vec<usize>,
    bad_need: bool,
    bad_module: bool,
    template: u8,
}

#[derive(Clone, Debug)]
struct GenPhase {
    per_host: bool,
    steps: Vec<GenStep>,
}

fn phases() -> impl Strategy<Value = Vec<GenPhase>> {
    let step = (
        0..TARGETS.len(),
        prop::collection::vec(0usize..12, 0..3),
        any::<bool>(),
        prop::bool::weighted(0.1),
        0u8..5,
    )
        .prop_map(|(target, needs, bad_need, bad_module, template)| GenStep {
            target,
            needs,
            bad_need: bad_need && needs_is_rare(template),
            bad_module,
            template,
        });
    let phase = (any::<bool>(), prop::collection::vec(step, 1..5))
        .prop_map(|(per_host, steps)| GenPhase { per_host, steps });
    prop::collection::vec(phase, 1..4)
}

fn needs_is_rare(template: u8) -> bool {
    template == 0
}

fn render(phases: &[GenPhase]) -> (String, usize) {
    let total: usize = phases.iter().map(|p| p.steps.len()).sum();
    let mut text = String::from(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: p, version: 1.0.0}\nroles:\n  originating: 1\nphases:\n",
    );
    let mut k = 0;
    for (pi, phase) in phases.iter().enumerate() {
        let order = if phase.per_host {
            "per_host"
        } else {
            "sequential"
        };
        let _ = write!(text, "  - name: p{pi}\n    order: {order}\n    steps:\n");
        for step in &phase.steps {
            let mut needs: Vec<String> = step
                .needs
                .iter()
                .filter(|&&n| n < total)
                .map(|n| format!("s{n}"))
                .collect();
            if step.bad_need {
                needs.push("zz".into());
            }
            let module = if step.bad_module { "shel" } else { "shell" };
            let cmd = match step.template {
                0 => "true".to_owned(),
                1 => format!("echo {{{{ r{} .stdout }}}}", (k + 1) % total),
                2 => "echo {{ params.missing }}".to_owned(),
                3 => "echo {{ host.address }} {{ vars.site }}".to_owned(),
                _ => "echo {{ unclosed".to_owned(),
            };
            let _ = write!(
                text,
                "      - id: s{k}\n        module: {module}\n        on: {}\n        needs: [{}]\n        register: r{k}\n        with: {{cmd: \"{cmd}\"}}\n",
                TARGETS[step.target].0,
                needs.join(", ")
            );
            k += 1;
        }
    }
    (text, total)
}

/// The number of cyclic strongly connected components, by the documented ordering rules,
/// computed independently of the compiler: phases are complete barriers, sequential phases
/// chain their steps, per_host phases chain steps that share a host, and `needs` adds edges.
fn reference_cycles(phases: &[GenPhase], total: usize) -> usize {
    let mut g = DiGraph::<usize, ()>::new();
    let nodes: Vec<_> = (0..total).map(|i| g.add_node(i)).collect();
    let mut flat = Vec::new();
    for (pi, phase) in phases.iter().enumerate() {
        for step in &phase.steps {
            flat.push((pi, step));
        }
    }
    let hosts = |s: &GenStep| -> BTreeSet<&str> { TARGETS[s.target].1.iter().copied().collect() };
    for (i, (pi, step)) in flat.iter().enumerate() {
        for (j, (pj, _)) in flat.iter().enumerate() {
            if pj + 1 == *pi || (pj < pi) {
                g.update_edge(nodes[j], nodes[i], ());
            }
        }
        for &n in step.needs.iter().filter(|&&n| n < total) {
            g.update_edge(nodes[n], nodes[i], ());
        }
        let phase = &phases[*pi];
        let earlier: Vec<usize> = (0..i).filter(|&j| flat[j].0 == *pi).collect();
        if phase.per_host {
            for h in hosts(step) {
                if let Some(&j) = earlier
                    .iter()
                    .rev()
                    .find(|&&j| hosts(flat[j].1).contains(h))
                {
                    g.update_edge(nodes[j], nodes[i], ());
                }
            }
        } else if let Some(&j) = earlier.last() {
            g.update_edge(nodes[j], nodes[i], ());
        }
    }
    tarjan_scc(&g)
        .into_iter()
        .filter(|c| c.len() > 1 || g.contains_edge(c[0], c[0]))
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn compiler_never_panics_and_reports_every_cycle(phases in phases()) {
        let (text, total) = render(&phases);
        let expected_cycles = reference_cycles(&phases, total);
        match compile_str(&text, INVENTORY, &[]) {
            Ok(plan) => {
                prop_assert_eq!(expected_cycles, 0, "a cyclic runbook compiled:\n{}", text);
                prop_assert_eq!(plan.steps.len(), total);
            }
            Err(ds) => {
                prop_assert!(!ds.is_empty());
                // Every diagnostic is located (panics inside `located` otherwise).
                let _ = located(&ds);
                let cycles = ds.iter().filter(|d| d.code == Code::Cycle).count();
                prop_assert_eq!(cycles, expected_cycles, "cycle diagnostics for:\n{}\n{:#?}", text, ds);
            }
        }
    }
}
