//! The outage a run goes through, measured: from the start of the first action of its first
//! outage phase to the end of the last action of its last one; and, when the runbook marks it,
//! the write freeze inside it (`freeze: start` to `freeze: end`).
//!
//! Each apply of a run measures its own piece with the monotonic clock, emits
//! `outage_started` / `outage_ended` (`freeze_*` likewise) and writes the piece to the journal
//! with the scheduler's group commits, so a resumed run adds the pieces of earlier applies to
//! its own. Only actions that run on a host (or the controller's shell) count: settling an
//! action on the controller (a skip, an approved manual step, an assertion) takes no time of
//! its own, and an action recorded done before an interruption belongs to an earlier piece.

use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;

use crate::ast::Freeze;
use crate::event::{Event, Status};
use crate::journal::{Entry, Piece};
use crate::plan::{Plan, PlanNode};

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The outage phases.
    Outage,
    /// The write freeze between the `freeze: start` and `freeze: end` steps.
    Freeze,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outage => "outage",
            Self::Freeze => "freeze",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "outage" => Some(Self::Outage),
            "freeze" => Some(Self::Freeze),
            _ => None,
        }
    }
}

/// A run's outage or freeze: its pieces (one per apply that went through part of it), and the
/// plan's estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct Outage {
    pub kind: Kind,
    /// In apply order.
    pub pieces: Vec<PieceTime>,
    pub planned: Duration,
}

/// One apply's piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceTime {
    pub generation: u32,
    /// RFC 3339: when its first action was sent.
    pub started_at: String,
    pub duration: Duration,
    /// Whether it reached the end of the outage (or freeze) in that apply.
    pub ended: bool,
}

impl PieceTime {
    fn of(p: &Piece) -> Self {
        Self {
            generation: p.generation,
            started_at: p.started_at.clone(),
            duration: millis(p.duration_ms),
            ended: p.ended,
        }
    }
}

impl Outage {
    pub fn total(&self) -> Duration {
        self.pieces.iter().map(|p| p.duration).sum()
    }

    /// Whether the last piece reached the end (the outage is over).
    pub fn complete(&self) -> bool {
        self.pieces.last().is_some_and(|p| p.ended)
    }

    /// From the journal's pieces of one run: one [`Outage`] per kind that has any, outage
    /// first.
    pub fn from_pieces(pieces: &[Piece]) -> Vec<Self> {
        let mut out: Vec<Self> = Vec::new();
        for kind in [Kind::Outage, Kind::Freeze] {
            let mine: Vec<&Piece> = pieces
                .iter()
                .filter(|p| Kind::parse(&p.kind) == Some(kind))
                .collect();
            let Some(last) = mine.last() else { continue };
            out.push(Self {
                kind,
                pieces: mine.iter().map(|p| PieceTime::of(p)).collect(),
                planned: millis(last.planned_ms),
            });
        }
        out
    }

    /// One line: `outage 5.2s in 2 pieces, planned 9s`.
    pub fn describe(&self) -> String {
        let pieces = match self.pieces.len() {
            1 => String::new(),
            n => format!(
                " in {n} pieces ({})",
                self.pieces
                    .iter()
                    .map(|p| format!("{:.1}s", p.duration.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        };
        let open = if self.complete() {
            ""
        } else {
            ", not over: the run stopped inside it"
        };
        format!(
            "{} {:.1}s{pieces}, planned {}{open}",
            self.kind.as_str(),
            self.total().as_secs_f64(),
            runbook_modules::format_duration(self.planned)
        )
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or_default())
}

fn to_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One interval being measured in this apply.
#[derive(Debug)]
struct Span {
    kind: Kind,
    planned: Duration,
    /// Actions whose start opens it.
    opens: Vec<bool>,
    /// Actions that must all be done for it to end.
    closes: Vec<bool>,
    /// Of `closes`, how many are not settled yet.
    pending: usize,
    /// One of `closes` did not succeed: the span does not end before the apply does.
    failed: bool,
    start: Option<(Instant, jiff::Timestamp)>,
    last_end: Option<Instant>,
    last_action: Option<String>,
    ended: bool,
    /// Changed since it was last handed to the journal.
    dirty: bool,
    /// Pieces recorded by earlier applies.
    earlier: Vec<PieceTime>,
}

impl Span {
    /// A span not yet open: its members (`opens`, `closes` per node) and earlier pieces.
    fn new(
        kind: Kind,
        planned: Duration,
        opens: Vec<bool>,
        closes: Vec<bool>,
        earlier: Vec<PieceTime>,
    ) -> Self {
        let pending = closes.iter().filter(|c| **c).count();
        Self {
            kind,
            planned,
            opens,
            closes,
            pending,
            failed: false,
            start: None,
            last_end: None,
            last_action: None,
            ended: false,
            dirty: false,
            earlier,
        }
    }

    fn length(&self) -> Duration {
        match (self.start, self.last_end) {
            (Some((start, _)), Some(end)) => end.saturating_duration_since(start),
            _ => Duration::ZERO,
        }
    }

    fn earlier_total(&self) -> Duration {
        self.earlier.iter().map(|p| p.duration).sum()
    }

    fn open_at(&mut self, at: Instant, action: &str, events: &mut Vec<Event>) {
        if self.start.is_some() || self.ended {
            return;
        }
        let wall = jiff::Timestamp::now();
        let ago = jiff::SignedDuration::try_from(Instant::now().saturating_duration_since(at))
            .unwrap_or_default();
        self.start = Some((at, wall.checked_sub(ago).unwrap_or(wall)));
        self.dirty = true;
        let (piece, earlier_secs, planned_secs) = (
            self.earlier.len() + 1,
            self.earlier_total().as_secs_f64(),
            self.planned.as_secs_f64(),
        );
        let action = action.to_owned();
        events.push(match self.kind {
            Kind::Outage => Event::OutageStarted {
                action,
                piece,
                earlier_secs,
                planned_secs,
            },
            Kind::Freeze => Event::FreezeStarted {
                action,
                piece,
                earlier_secs,
                planned_secs,
            },
        });
    }

    fn close(&mut self, complete: bool, events: &mut Vec<Event>) {
        if self.start.is_none() || self.ended {
            return;
        }
        self.ended = true;
        self.dirty = true;
        let duration = self.length();
        let (action, duration_secs, total_secs, pieces, planned_secs) = (
            self.last_action.clone(),
            duration.as_secs_f64(),
            (self.earlier_total() + duration).as_secs_f64(),
            self.earlier.len() + 1,
            self.planned.as_secs_f64(),
        );
        // Only a complete end is recorded as the end; a piece cut short stays open in the
        // journal, so a reader knows the outage went on after it.
        self.failed |= !complete;
        events.push(match self.kind {
            Kind::Outage => Event::OutageEnded {
                action,
                duration_secs,
                total_secs,
                pieces,
                planned_secs,
                complete,
            },
            Kind::Freeze => Event::FreezeEnded {
                action,
                duration_secs,
                total_secs,
                pieces,
                planned_secs,
                complete,
            },
        });
    }

    fn complete(&self) -> bool {
        self.ended && !self.failed
    }
}

/// Measures this apply's pieces. The scheduler calls it when a job is handed out, when an
/// action's result comes back and when a node is settled, takes its events and journal
/// entries, and closes it at the end of the apply.
#[derive(Debug)]
pub(super) struct Tracker {
    generation: u32,
    spans: Vec<Span>,
    events: Vec<Event>,
    /// The end of the last action this apply ran: where a span cut short ends.
    last_end: Option<Instant>,
    /// Actions whose job was handed out ([`Tracker::sent`]).
    seen: Vec<bool>,
}

impl Tracker {
    /// `earlier`: the run's pieces in the journal (those of other generations are earlier
    /// applies'). A dry run measures nothing.
    pub fn new(plan: &Plan, generation: u32, dry_run: bool, earlier: &[Piece]) -> Self {
        let n = plan.node_count();
        let member = |pick: &dyn Fn(&crate::plan::StepInfo) -> bool| -> Vec<bool> {
            (0..n)
                .map(|i| match plan.node(NodeIndex::new(i)) {
                    PlanNode::Action(a) => pick(&plan.steps[a.step]),
                    PlanNode::Gate(_) => false,
                })
                .collect()
        };
        let mut spans = Vec::new();
        let earlier_of = |kind: Kind| -> Vec<PieceTime> {
            earlier
                .iter()
                .filter(|p| Kind::parse(&p.kind) == Some(kind) && p.generation != generation)
                .map(PieceTime::of)
                .collect()
        };
        let mut add = |kind: Kind, planned: Duration, opens: Vec<bool>, closes: Vec<bool>| {
            let pending = closes.iter().filter(|c| **c).count();
            if dry_run || pending == 0 {
                return;
            }
            spans.push(Span::new(kind, planned, opens, closes, earlier_of(kind)));
        };
        let outage = member(&|s| plan.phases[s.phase].outage);
        add(
            Kind::Outage,
            plan.outage_estimate(),
            outage.clone(),
            outage.clone(),
        );
        // A freeze an earlier apply left open (killed or stopped between its start and its
        // end) goes on in this one: its start step is recorded done and does not run again, so
        // this apply's piece opens with its first outage action instead.
        let freeze_open = earlier
            .iter()
            .filter(|p| Kind::parse(&p.kind) == Some(Kind::Freeze) && p.generation != generation)
            .max_by_key(|p| p.generation)
            .is_some_and(|p| !p.ended);
        let mut freeze_opens = member(&|s| s.freeze == Some(Freeze::Start));
        if freeze_open {
            for (opens, in_outage) in freeze_opens.iter_mut().zip(&outage) {
                *opens |= *in_outage;
            }
        }
        add(
            Kind::Freeze,
            plan.planned_freeze()
                .map_or(Duration::ZERO, crate::plan::PlannedSpan::length),
            freeze_opens,
            member(&|s| s.freeze == Some(Freeze::End)),
        );
        Self {
            generation,
            spans,
            events: Vec::new(),
            last_end: None,
            seen: vec![false; n],
        }
    }

    /// A job for the action is handed out: its `started` (or, for an interrupted action, the
    /// look at its host) goes into the commit just before its command is sent, and so does the
    /// piece it opens, so even an apply killed during its first outage action leaves its
    /// piece in the journal.
    pub fn sent(&mut self, plan: &Plan, node: NodeIndex) {
        let i = node.index();
        self.seen[i] = true;
        for span in &mut self.spans {
            if span.opens[i] && span.start.is_none() {
                span.open_at(Instant::now(), &plan.node_id(node), &mut self.events);
            }
        }
    }

    /// An action ended now, `duration` after it began. It counts when its job was handed out
    /// in this apply, or when it is an interrupted action settled from its host (`resolved`:
    /// its wait for the command was part of the outage).
    pub fn ran(&mut self, plan: &Plan, node: NodeIndex, duration: Duration, resolved: bool) {
        let i = node.index();
        if !(self.seen[i] || resolved) {
            return;
        }
        let end = Instant::now();
        let start = end.checked_sub(duration).unwrap_or(end);
        self.last_end = Some(self.last_end.map_or(end, |e| e.max(end)));
        for span in &mut self.spans {
            if span.opens[i] && span.start.is_none() {
                // Not seen handed out (a caller that only reports results): it began
                // `duration` ago.
                span.open_at(start, &plan.node_id(node), &mut self.events);
            }
            if (span.opens[i] || span.closes[i]) && span.start.is_some() && !span.ended {
                span.last_end = Some(span.last_end.map_or(end, |e| e.max(end)));
                span.last_action = Some(plan.node_id(node));
                span.dirty = true;
            }
        }
    }

    /// An action has its final status. The span ends once every action it waits for is done
    /// and all succeeded.
    pub fn settled(&mut self, node: NodeIndex, status: Status) {
        let i = node.index();
        for span in &mut self.spans {
            if !span.closes[i] {
                continue;
            }
            span.pending = span.pending.saturating_sub(1);
            span.failed |= !status.is_success();
            if span.pending == 0 && !span.failed {
                if span.last_end.is_none() {
                    // Nothing of it ran after the start (all skipped): it ends where it began.
                    span.last_end = span.start.map(|s| s.0);
                }
                span.close(true, &mut self.events);
            }
        }
    }

    /// The end of the apply: a span still open was cut short (a failure, the window, Ctrl-C,
    /// a failed record) and ends with the last action the apply ran.
    pub fn close(&mut self) {
        for span in &mut self.spans {
            if span.start.is_some() && !span.ended {
                let end = span.last_end.max(self.last_end);
                span.last_end = end.or(span.start.map(|s| s.0));
                span.close(false, &mut self.events);
            }
        }
    }

    /// Events to emit, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The journal entries of the pieces that changed since the last call.
    pub fn entries(&mut self) -> Vec<Entry> {
        let generation = self.generation;
        self.spans
            .iter_mut()
            .filter(|s| s.dirty && s.start.is_some())
            .map(|s| {
                s.dirty = false;
                Entry::Piece(Piece {
                    kind: s.kind.as_str().to_owned(),
                    generation,
                    started_at: s.start.map(|st| st.1.to_string()).unwrap_or_default(),
                    duration_ms: to_ms(s.length()),
                    ended: s.complete(),
                    planned_ms: to_ms(s.planned),
                })
            })
            .collect()
    }

    /// Every piece, earlier applies' and this one's, per kind.
    pub fn measured(&self) -> Vec<Outage> {
        self.spans
            .iter()
            .filter_map(|s| {
                let mut pieces = s.earlier.clone();
                if let Some((_, wall)) = s.start {
                    pieces.push(PieceTime {
                        generation: self.generation,
                        started_at: wall.to_string(),
                        duration: s.length(),
                        ended: s.complete(),
                    });
                }
                (!pieces.is_empty()).then_some(Outage {
                    kind: s.kind,
                    pieces,
                    planned: s.planned,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(kind: &str, generation: u32, ms: i64, ended: bool) -> Piece {
        Piece {
            kind: kind.into(),
            generation,
            started_at: String::new(),
            duration_ms: ms,
            ended,
            planned_ms: 9000,
        }
    }

    #[test]
    fn pieces_add_up_per_kind_and_the_last_says_whether_it_is_over() {
        let all = Outage::from_pieces(&[
            piece("outage", 1, 3100, false),
            piece("freeze", 1, 1000, false),
            piece("outage", 2, 2100, true),
            piece("freeze", 2, 500, true),
        ]);
        assert_eq!(all.len(), 2);
        let outage = &all[0];
        assert_eq!(outage.kind, Kind::Outage);
        assert_eq!(outage.total(), Duration::from_millis(5200));
        assert_eq!(outage.pieces.len(), 2);
        assert!(outage.complete());
        assert_eq!(
            outage.describe(),
            "outage 5.2s in 2 pieces (3.1s + 2.1s), planned 9s"
        );
        assert_eq!(all[1].kind, Kind::Freeze);
        assert_eq!(all[1].total(), Duration::from_millis(1500));
    }

    #[test]
    fn a_piece_cut_short_says_the_outage_is_not_over() {
        let all = Outage::from_pieces(&[piece("outage", 1, 4000, false)]);
        assert!(!all[0].complete());
        assert_eq!(
            all[0].describe(),
            "outage 4.0s, planned 9s, not over: the run stopped inside it"
        );
        assert!(Outage::from_pieces(&[]).is_empty());
    }

    fn span(opens: Vec<bool>, closes: Vec<bool>) -> Span {
        Span::new(
            Kind::Outage,
            Duration::from_secs(9),
            opens,
            closes,
            vec![PieceTime {
                generation: 1,
                started_at: String::new(),
                duration: Duration::from_secs(3),
                ended: false,
            }],
        )
    }

    fn tracker(spans: Vec<Span>) -> Tracker {
        Tracker {
            generation: 2,
            spans,
            events: Vec::new(),
            last_end: None,
            seen: vec![false; 4],
        }
    }

    /// Node 0 runs before the outage, 1 and 2 are the outage, 3 runs after it.
    fn outage_tracker() -> Tracker {
        let members = vec![false, true, true, false];
        tracker(vec![span(members.clone(), members)])
    }

    fn open(t: &mut Tracker, node: usize, ago: Duration) {
        let at = Instant::now()
            .checked_sub(ago)
            .expect("the clock is past boot");
        let events = &mut t.events;
        for s in &mut t.spans {
            if s.opens[node] {
                s.open_at(at, &format!("n{node}"), events);
            }
        }
    }

    fn end(t: &mut Tracker, node: usize, status: Status) {
        let end = Instant::now();
        t.last_end = Some(end);
        for s in &mut t.spans {
            if (s.opens[node] || s.closes[node]) && s.start.is_some() && !s.ended {
                s.last_end = Some(end);
                s.last_action = Some(format!("n{node}"));
                s.dirty = true;
            }
        }
        t.settled(NodeIndex::new(node), status);
    }

    #[test]
    fn an_outage_ends_when_its_last_action_is_done_and_adds_to_the_earlier_piece() {
        let mut t = outage_tracker();
        t.settled(NodeIndex::new(0), Status::Ok);
        assert!(
            t.take_events().is_empty(),
            "a preparation action is not the outage"
        );
        open(&mut t, 1, Duration::from_millis(50));
        open(&mut t, 2, Duration::ZERO);
        end(&mut t, 1, Status::Changed);
        let events = t.take_events();
        assert_eq!(
            events.len(),
            1,
            "one start, and not ended while 2 runs: {events:?}"
        );
        assert!(matches!(
            &events[0],
            Event::OutageStarted { action, piece: 2, earlier_secs, .. } if action == "n1" && (*earlier_secs - 3.0).abs() < 1e-9
        ));
        end(&mut t, 2, Status::Ok);
        let events = t.take_events();
        let Some(Event::OutageEnded {
            action,
            duration_secs,
            total_secs,
            pieces: 2,
            complete: true,
            ..
        }) = events.first()
        else {
            panic!("ended: {events:?}");
        };
        assert_eq!(action.as_deref(), Some("n2"));
        assert!(
            *duration_secs >= 0.05,
            "from the first start: {duration_secs}"
        );
        assert!(*total_secs >= 3.0 + duration_secs - 1e-9);
        // Closing the apply adds nothing more; the journal gets the finished piece.
        t.close();
        assert!(t.take_events().is_empty());
        let entries = t.entries();
        assert!(matches!(&entries[..], [Entry::Piece(p)] if p.ended && p.generation == 2));
        assert!(t.entries().is_empty(), "written once until it changes");
        let measured = t.measured();
        assert_eq!(measured[0].pieces.len(), 2);
        assert!(measured[0].complete());
    }

    #[test]
    fn a_failure_inside_the_outage_leaves_it_open_until_the_apply_ends() {
        let mut t = outage_tracker();
        open(&mut t, 1, Duration::ZERO);
        end(&mut t, 1, Status::Failed);
        end(&mut t, 2, Status::Blocked);
        assert_eq!(t.take_events().len(), 1, "started, not ended");
        t.close();
        let events = t.take_events();
        assert!(matches!(
            &events[..],
            [Event::OutageEnded {
                complete: false,
                ..
            }]
        ));
        let entries = t.entries();
        assert!(matches!(&entries[..], [Entry::Piece(p)] if !p.ended));
        assert!(!t.measured()[0].complete());
    }

    #[test]
    fn an_outage_that_did_not_start_in_this_apply_is_only_the_earlier_pieces() {
        let mut t = outage_tracker();
        // Both recorded done before the interruption.
        t.settled(NodeIndex::new(1), Status::Ok);
        t.settled(NodeIndex::new(2), Status::Ok);
        t.close();
        assert!(t.take_events().is_empty());
        assert!(t.entries().is_empty());
        let measured = t.measured();
        assert_eq!(measured[0].pieces.len(), 1);
        assert_eq!(measured[0].total(), Duration::from_secs(3));
        assert!(!measured[0].complete());
    }

    #[test]
    fn a_freeze_opens_at_its_start_step_and_ends_with_its_end_step() {
        // 1 is `freeze: start`, 2 is `freeze: end`.
        let mut s = span(
            vec![false, true, false, false],
            vec![false, false, true, false],
        );
        s.kind = Kind::Freeze;
        s.earlier.clear();
        let mut t = tracker(vec![s]);
        open(&mut t, 2, Duration::ZERO);
        assert!(t.take_events().is_empty(), "the end step does not open it");
        open(&mut t, 1, Duration::ZERO);
        end(&mut t, 1, Status::Changed);
        assert!(matches!(
            &t.take_events()[..],
            [Event::FreezeStarted { piece: 1, .. }]
        ));
        end(&mut t, 2, Status::Changed);
        assert!(matches!(
            &t.take_events()[..],
            [Event::FreezeEnded { pieces: 1, complete: true, action: Some(a), .. }] if a == "n2"
        ));
    }
}
