//! The planned outage: on the critical-path schedule (every action at its earliest start, each
//! taking its estimate), from the start of the first action of the first outage phase to the
//! end of the last action of the last one; and likewise the write freeze between the
//! `freeze: start` and `freeze: end` steps. The executor measures the same spans on a real run
//! ([`crate::execute`]), so the two compare.

use std::time::Duration;

use petgraph::graph::NodeIndex;

/// A planned span: its estimated start and end from the start of the run, and the actions of
/// the longest path through it (the ones whose estimates make it as long as it is).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlannedSpan {
    pub start: Duration,
    pub end: Duration,
    pub path: Vec<NodeIndex>,
}

impl PlannedSpan {
    pub fn length(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// The span of the `members` under the schedule (`start`, `finish` by node index; `via` is
/// each node's latest-finishing predecessor). `None` when no node is a member. The path is
/// walked back from the member that finishes last through `via`, keeping the members that
/// `on_path` accepts, for as long as the walk stays inside the span.
pub(crate) fn span(
    starts_at: impl Iterator<Item = NodeIndex>,
    ends_at: impl Iterator<Item = NodeIndex>,
    start: &[Duration],
    finish: &[Duration],
    via: &[Option<NodeIndex>],
    on_path: impl Fn(NodeIndex) -> bool,
) -> Option<PlannedSpan> {
    let first = starts_at.map(|n| start[n.index()]).min()?;
    // The last to finish; among equals the lowest index, so the path is deterministic.
    let last = ends_at.max_by_key(|n| (finish[n.index()], std::cmp::Reverse(n.index())))?;
    let end = finish[last.index()].max(first);
    let mut path = Vec::new();
    let mut cursor = Some(last);
    while let Some(node) = cursor {
        if finish[node.index()] <= first && node != last {
            break;
        }
        if on_path(node) {
            path.push(node);
        }
        if start[node.index()] <= first {
            break;
        }
        cursor = via[node.index()];
    }
    path.reverse();
    Some(PlannedSpan {
        start: first,
        end,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: usize) -> NodeIndex {
        NodeIndex::new(i)
    }

    fn secs(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    /// prep(0..10) → stop(10..13) → {promote(13..20), copy(13..15)} → verify(20..30)
    /// with stop, promote and copy in the outage.
    fn chain() -> (Vec<Duration>, Vec<Duration>, Vec<Option<NodeIndex>>) {
        let start = secs(&[0, 10, 13, 13, 20]);
        let finish = secs(&[10, 13, 20, 15, 30]);
        let via = vec![None, Some(n(0)), Some(n(1)), Some(n(1)), Some(n(2))];
        (start, finish, via)
    }

    #[test]
    fn the_span_runs_from_the_first_start_to_the_last_end_along_the_longest_path() {
        let (start, finish, via) = chain();
        let outage = [1, 2, 3].map(n);
        let got = span(
            outage.iter().copied(),
            outage.iter().copied(),
            &start,
            &finish,
            &via,
            |x| outage.contains(&x),
        )
        .expect("members");
        assert_eq!(got.start, Duration::from_secs(10));
        assert_eq!(got.end, Duration::from_secs(20));
        assert_eq!(got.length(), Duration::from_secs(10));
        // The short branch (copy) is not on the path; the preparation before it is not either.
        assert_eq!(got.path, vec![n(1), n(2)]);
    }

    #[test]
    fn a_span_between_two_marked_steps_counts_from_the_start_step_to_the_end_step() {
        let (start, finish, via) = chain();
        // freeze: start on stop, freeze: end on promote.
        let got = span(
            std::iter::once(n(1)),
            std::iter::once(n(2)),
            &start,
            &finish,
            &via,
            |_| true,
        )
        .expect("members");
        assert_eq!(
            (got.start, got.end),
            (Duration::from_secs(10), Duration::from_secs(20))
        );
        assert_eq!(got.path, vec![n(1), n(2)]);
    }

    #[test]
    fn phases_that_are_not_outage_inside_the_span_count_but_are_not_on_its_path() {
        let (start, finish, via) = chain();
        // The outage is stop and verify; promote (not outage) lies between them.
        let outage = [1, 4].map(n);
        let got = span(
            outage.iter().copied(),
            outage.iter().copied(),
            &start,
            &finish,
            &via,
            |x| outage.contains(&x),
        )
        .expect("members");
        assert_eq!(got.length(), Duration::from_secs(20));
        assert_eq!(got.path, vec![n(1), n(4)]);
    }

    #[test]
    fn no_members_no_span_and_zero_estimates_give_an_empty_one() {
        let (start, finish, via) = chain();
        assert_eq!(
            span(
                std::iter::empty(),
                std::iter::empty(),
                &start,
                &finish,
                &via,
                |_| true
            ),
            None
        );
        let zero = secs(&[5, 5]);
        let got = span(
            [n(0), n(1)].into_iter(),
            [n(0), n(1)].into_iter(),
            &zero,
            &zero,
            &[None, Some(n(0))],
            |_| true,
        )
        .expect("members");
        assert_eq!(got.length(), Duration::ZERO);
        assert_eq!(got.path, vec![n(0)]);
    }
}
