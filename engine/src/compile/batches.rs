//! Rolling batches (`serial:`): which hosts of a phase run together, batch after batch.

use std::collections::BTreeSet;

use crate::ast::{BatchSize, FailBudget, Phase, StepKind};
use crate::inventory::HostId;

/// The batches of a phase, in inventory order, and how many of its hosts may fail before
/// the remaining batches stop. A phase without `serial:` has no batches.
pub fn batches(phase: &Phase, step_hosts: &[&[Option<HostId>]]) -> (Vec<Vec<HostId>>, usize) {
    let hosts: Vec<HostId> = phase
        .steps
        .iter()
        .zip(step_hosts)
        .filter(|(s, _)| s.kind == StepKind::Main)
        .flat_map(|(_, hosts)| hosts.iter().flatten().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let budget = match phase.max_fail {
        FailBudget::Hosts(n) => n,
        FailBudget::Percent(p) => hosts.len() * usize::from(p) / 100,
    };
    let Some(sizes) = phase.serial.as_ref().filter(|s| !s.is_empty()) else {
        return (Vec::new(), budget);
    };
    let mut out = Vec::new();
    let mut rest = hosts.as_slice();
    let mut k = 0;
    while !rest.is_empty() {
        let size = match sizes[k.min(sizes.len() - 1)] {
            BatchSize::Hosts(n) => n,
            BatchSize::Percent(p) => (hosts.len() * usize::from(p)).div_ceil(100),
        }
        .clamp(1, rest.len());
        out.push(rest[..size].to_vec());
        rest = &rest[size..];
        k += 1;
    }
    (out, budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(serial: Option<Vec<BatchSize>>, max_fail: FailBudget) -> Phase {
        let text = "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: t, version: 1.0.0}\nsteps:\n  - {id: a, module: shell, on: all, with: {cmd: x}}\n";
        let parsed = crate::parse::parse_runbook("t.yaml", text.to_owned());
        let mut p = parsed.runbook.expect("parses").phases.remove(0);
        p.serial = serial;
        p.max_fail = max_fail;
        p
    }

    #[test]
    fn sizes_repeat_the_last_and_percentages_round_up() {
        let hosts: Vec<Option<HostId>> = (0..10).map(Some).collect();
        let p = phase(
            Some(vec![
                BatchSize::Hosts(1),
                BatchSize::Percent(25),
                BatchSize::Percent(100),
            ]),
            FailBudget::Percent(20),
        );
        let (first, budget) = batches(&p, &[&hosts]);
        let sizes: Vec<usize> = first.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 3, 6]);
        assert_eq!(budget, 2);
        let p = phase(Some(vec![BatchSize::Hosts(4)]), FailBudget::Hosts(0));
        let sizes: Vec<usize> = batches(&p, &[&hosts]).0.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        assert!(
            batches(&phase(None, FailBudget::Hosts(0)), &[&hosts])
                .0
                .is_empty()
        );
    }
}
