//! "Did you mean `x`?" within a budget.
//!
//! A suggestion compares the unknown name with every candidate (an edit distance each). Over a
//! runbook's step ids or registers, or an inventory's hosts, that is the number of names for
//! every unknown one: 20,000 steps each naming an unknown step in `needs:` took minutes. So the
//! comparisons of one process are counted, and once [`BUDGET`] of them are spent, diagnostics
//! fall back to their general help. Ordinary inputs never come near (a runbook of 100 steps
//! with 100 typos spends 10,000); the order of diagnostics is fixed, so which ones get a
//! suggestion is deterministic.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Edit distances computed for suggestions, per process.
pub const BUDGET: usize = 500_000;

static LEFT: AtomicUsize = AtomicUsize::new(BUDGET);

/// The candidate closest to `name`, if one is close enough and the budget allows comparing.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    if LEFT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let candidates: Vec<&'a str> = candidates.collect();
    let cost = candidates.len();
    let spent = LEFT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        left.checked_sub(cost)
    });
    if spent.is_err() {
        LEFT.store(0, Ordering::Relaxed);
        return None;
    }
    runbook_modules::closest(name, candidates.into_iter())
}
