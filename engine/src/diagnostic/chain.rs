//! Diagnostics inside blocks: where they are, and the chain of `uses:` that led there.
//!
//! The parser expands every `uses:` into the runbook's own tree before anything else reads it
//! (see `parse::blocks`). Each expanded instance of a block gets its own range of byte offsets
//! past the end of the runbook's text, so every span downstream (parser, compiler) stays one
//! plain `Span` into "the runbook". Before a diagnostic is shown, [`Diagnostic::localized`]
//! moves it into the block's file (its spans made local again) and adds one related label per
//! `uses:` of the chain, innermost first.

use super::{Diagnostic, Label, SourceFile};
use crate::yaml::Span;

/// Where a `uses:` was written: a span in the runbook's offset space (the runbook itself, or
/// another instance's range), and the block it named.
#[derive(Clone, Debug)]
pub struct UsesSite {
    pub span: Span,
    pub uses: String,
}

/// One expanded instance of a block: offsets `base..base + len` are the block file's text.
#[derive(Clone, Debug)]
pub struct Segment {
    pub base: usize,
    pub len: usize,
    pub file: SourceFile,
    /// The `uses:` that led here, outermost first.
    pub chain: Vec<UsesSite>,
}

/// The file and local span of a span in `root`'s offset space, and the chain that led there.
fn locate(root: &SourceFile, span: Span) -> Option<(&Segment, Span)> {
    let segments = root.segments();
    let i = segments.partition_point(|s| s.base <= span.start);
    let seg = segments.get(i.checked_sub(1)?)?;
    (span.start <= seg.base + seg.len).then(|| {
        let end = span.end.min(seg.base + seg.len);
        (seg, Span::new(span.start - seg.base, end - seg.base))
    })
}

impl Diagnostic {
    /// This diagnostic in the file its primary label points into, with the chain of `uses:`
    /// as related diagnostics; unchanged when it is not inside a block.
    #[must_use]
    pub fn localized(mut self) -> Diagnostic {
        self.related = std::mem::take(&mut self.related)
            .into_iter()
            .map(Diagnostic::localized)
            .collect();
        let Some(root) = self.source.clone() else {
            return self;
        };
        if root.segments().is_empty() {
            return self;
        }
        let Some(primary) = self.primary_span() else {
            return self;
        };
        let Some((seg, _)) = locate(&root, primary) else {
            // In the runbook itself: labels that point into blocks become related notes.
            let (inside, outside): (Vec<Label>, Vec<Label>) = self
                .labels
                .drain(..)
                .partition(|l| locate(&root, l.span).is_none());
            self.labels = inside;
            for l in outside {
                self.related.push(note(&root, l, self.code));
            }
            return self;
        };
        let (base, len) = (seg.base, seg.len);
        let (inside, outside): (Vec<Label>, Vec<Label>) = self
            .labels
            .drain(..)
            .partition(|l| l.span.start >= base && l.span.start <= base + len);
        self.labels = inside
            .into_iter()
            .map(|l| Label {
                span: Span::new(l.span.start - base, l.span.end.min(base + len) - base),
                ..l
            })
            .collect();
        for l in outside {
            self.related.push(note(&root, l, self.code));
        }
        self.source = Some(seg.file.clone());
        for site in seg.chain.iter().rev() {
            let mut d =
                Diagnostic::new(self.code, format!("in the block `{}` used here", site.uses));
            let (file, span) = match locate(&root, site.span) {
                Some((s, local)) => (s.file.clone(), local),
                None => (root.clone(), site.span),
            };
            d = d.in_file(&file).primary(span, "used here");
            self.related.push(d);
        }
        self
    }
}

/// A secondary label of another file, as a related diagnostic of its own.
fn note(root: &SourceFile, label: Label, code: super::Code) -> Diagnostic {
    let (file, span) = match locate(root, label.span) {
        Some((s, local)) => (s.file.clone(), local),
        None => (root.clone(), label.span),
    };
    Diagnostic::new(code, label.text.clone())
        .in_file(&file)
        .secondary(span, label.text)
}
