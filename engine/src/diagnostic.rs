//! Every error about a user's input: one type, with a code, labels on the source text, and a
//! help line.
//!
//! Stages collect these instead of returning at the first problem, so `validate` reports all
//! of a runbook's errors at once. Each code is documented in docs/diagnostics.md (a test keeps
//! the two in step).

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};

use crate::yaml::Span;

mod chain;

pub use chain::{Segment, UsesSite};

/// A file's line starts and its expanded blocks, both computed after the file is made.
type Index = (
    std::sync::OnceLock<Vec<usize>>,
    std::sync::OnceLock<Vec<Segment>>,
);

/// A source file a diagnostic can point into.
#[derive(Clone, Debug)]
pub struct SourceFile {
    inner: Arc<NamedSource<String>>,
    /// Byte offset of the start of every line, built on first use: locating a diagnostic is a
    /// binary search rather than a scan from the top (20,000 diagnostics in a 2 MB file).
    /// And the blocks expanded into this runbook, each at its own range of offsets past the
    /// end of the text (see [`chain`]): set once, by the parser, when the runbook uses blocks.
    /// (One `Arc` for both keeps a `Diagnostic` small.)
    lines: Arc<Index>,
}

impl SourceFile {
    pub fn new(name: impl AsRef<str>, text: String) -> Self {
        Self {
            inner: Arc::new(NamedSource::new(name, text).with_language("yaml")),
            lines: Arc::default(),
        }
    }

    /// Records the blocks expanded into this file (once; later calls are ignored).
    pub fn set_segments(&self, segments: Vec<Segment>) {
        let _ = self.lines.1.set(segments);
    }

    /// The blocks expanded into this file, in offset order.
    pub fn segments(&self) -> &[Segment] {
        self.lines.1.get().map_or(&[], Vec::as_slice)
    }

    pub fn name(&self) -> &str {
        self.inner.name()
    }

    pub fn text(&self) -> &str {
        self.inner.inner()
    }

    /// Byte offsets of the starts of the lines.
    pub fn line_starts(&self) -> &[usize] {
        self.lines.0.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text().match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// 0-based line of a byte offset, and the offset where that line starts.
    pub fn line_of(&self, offset: usize) -> (usize, usize) {
        let starts = self.line_starts();
        let line = starts.partition_point(|&s| s <= offset).saturating_sub(1);
        (line, starts[line])
    }

    /// 1-based line and column of a byte offset, for tests and plain output.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let text = self.text();
        let offset = offset.min(text.len());
        let (line, start) = self.line_of(offset);
        (line + 1, text[start..offset].chars().count() + 1)
    }

    /// The file as miette reads it.
    pub fn source_code(&self) -> &NamedSource<String> {
        &self.inner
    }
}

macro_rules! codes {
    ($($variant:ident => $code:literal,)*) => {
        /// The code of a diagnostic, `runbook::<area>::<what>`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }
        }
    };
}

codes! {
    Io => "runbook::io",
    InputNotAFile => "runbook::input::not_a_file",
    InputTooLarge => "runbook::input::too_large",
    InputNotUtf8 => "runbook::input::not_utf8",
    YamlSyntax => "runbook::yaml::syntax",
    YamlDuplicateKey => "runbook::yaml::duplicate_key",
    YamlComplexKey => "runbook::yaml::complex_key",
    YamlMultipleDocuments => "runbook::yaml::multiple_documents",
    YamlUnknownAlias => "runbook::yaml::unknown_alias",
    YamlTooDeep => "runbook::yaml::too_deep",
    YamlAliasBudget => "runbook::yaml::alias_budget",
    UnknownKey => "runbook::schema::unknown_key",
    MissingKey => "runbook::schema::missing_key",
    WrongType => "runbook::schema::wrong_type",
    InvalidValue => "runbook::schema::invalid_value",
    ApiVersion => "runbook::header::api_version",
    Kind => "runbook::header::kind",
    ParamUnknown => "runbook::param::unknown",
    ParamInvalid => "runbook::param::invalid",
    ParamMissing => "runbook::param::missing",
    ParamSecretInArgv => "runbook::param::secret_in_argv",
    ParamSecretInTemplate => "runbook::param::secret_in_template",
    ModuleUnknown => "runbook::module::unknown",
    ModuleArgUnknown => "runbook::module::unknown_arg",
    ModuleArgMissing => "runbook::module::missing_arg",
    ModuleArgType => "runbook::module::arg_type",
    ModuleArgInvalid => "runbook::module::invalid_args",
    ModuleUnknownHost => "runbook::module::unknown_host",
    DuplicateId => "runbook::step::duplicate_id",
    DuplicatePhase => "runbook::phase::duplicate_name",
    EmptyPhase => "runbook::phase::empty",
    UnknownNeed => "runbook::step::unknown_need",
    Cycle => "runbook::step::cycle",
    RegisterConflict => "runbook::step::register_conflict",
    FreezeMarker => "runbook::step::freeze",
    NameTooLong => "runbook::name::too_long",
    TemplateSyntax => "runbook::template::syntax",
    TemplateUndefined => "runbook::template::undefined",
    TemplateNotUpstream => "runbook::template::not_upstream",
    TemplateAmbiguousOutput => "runbook::template::ambiguous_output",
    TemplateRender => "runbook::template::render",
    TemplateQuoted => "runbook::template::quoted_interpolation",
    TemplateTooComplex => "runbook::template::too_complex",
    EnvNulByte => "runbook::env::nul_byte",
    TargetSyntax => "runbook::target::syntax",
    TargetUnknown => "runbook::target::unknown",
    TargetAmbiguous => "runbook::target::ambiguous",
    TargetEmpty => "runbook::target::empty",
    RoleUndeclared => "runbook::role::undeclared",
    RoleCount => "runbook::role::count",
    BlockNotFound => "runbook::block::not_found",
    BlockKind => "runbook::block::kind",
    BlockCycle => "runbook::block::cycle",
    BlockTooDeep => "runbook::block::too_deep",
    BlockTooLarge => "runbook::block::too_large",
    DefaultsUnknownModule => "runbook::defaults::unknown_module",
    DefaultsUnknownParameter => "runbook::defaults::unknown_parameter",
    DefaultsTooLarge => "runbook::defaults::too_large",
    InventoryUnknownHost => "runbook::inventory::unknown_host",
    InventoryUnknownGroup => "runbook::inventory::unknown_group",
    InventoryInvalidHost => "runbook::inventory::invalid_host",
    InventoryGroupCycle => "runbook::inventory::group_cycle",
    InventoryGroupDepth => "runbook::inventory::group_depth",
    InventoryIniSyntax => "runbook::inventory::ini_syntax",
    InventoryEmpty => "runbook::inventory::empty",
    InventoryUnsafeSshValue => "runbook::inventory::unsafe_ssh_value",
    InventoryUnsupportedVariable => "runbook::inventory::unsupported_variable",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One label: a span of the diagnostic's source with a short text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
    pub primary: bool,
}

/// A problem with the user's input, located in a source file.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    pub source: Option<SourceFile>,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    /// Further diagnostics shown under this one, possibly in other files (the inventory side of
    /// a role count violation, say).
    pub related: Vec<Diagnostic>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
            labels: Vec::new(),
            help: None,
            related: Vec::new(),
        }
    }

    /// Attaches the source file the labels point into.
    #[must_use]
    pub fn in_file(mut self, source: &SourceFile) -> Self {
        self.source = Some(source.clone());
        self
    }

    /// The main label: where the problem is.
    #[must_use]
    pub fn primary(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: text.into(),
            primary: true,
        });
        self
    }

    /// A secondary label: context for the problem (the first definition of a duplicate, say).
    #[must_use]
    pub fn secondary(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: text.into(),
            primary: false,
        });
        self
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn related(mut self, other: Diagnostic) -> Self {
        self.related.push(other);
        self
    }

    /// The first primary label's span.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels
            .iter()
            .find(|l| l.primary)
            .or(self.labels.first())
            .map(|l| l.span)
    }

    /// `file:line:col` of the primary label, 1-based.
    pub fn location(&self) -> Option<(String, usize, usize)> {
        let source = self.source.as_ref()?;
        let span = self.primary_span()?;
        let (line, col) = source.line_col(span.start);
        Some((source.name().to_owned(), line, col))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source
            .as_ref()
            .map(|s| s.inner.as_ref() as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.source.is_none() || self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().map(|l| {
            let text = (!l.text.is_empty()).then(|| l.text.clone());
            if l.primary {
                LabeledSpan::new_primary_with_span(text, l.span)
            } else {
                LabeledSpan::new_with_span(text, l.span)
            }
        })))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|d| d as &dyn miette::Diagnostic),
            ))
        }
    }
}

/// Diagnostics collected by a stage; a stage fails when any were collected.
#[derive(Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.0.extend(other);
    }

    /// Sorts by file, then position, then code, so output is stable. A diagnostic inside a
    /// block is moved into the block's file first, with the chain of `uses:` as related labels.
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.0 = self.0.into_iter().map(Diagnostic::localized).collect();
        self.0.sort_by(|a, b| {
            let key = |d: &Diagnostic| {
                (
                    d.source.as_ref().map(|s| s.name().to_owned()),
                    d.primary_span().map(|s| s.start),
                    d.code,
                    d.message.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        self.0
    }
}

impl From<crate::yaml::YamlError> for Diagnostic {
    fn from(err: crate::yaml::YamlError) -> Self {
        use crate::yaml::YamlError;
        match err {
            YamlError::Syntax {
                message,
                span,
                open,
            } => {
                let mut d = Diagnostic::new(Code::YamlSyntax, format!("invalid YAML: {message}"))
                    .primary(span, "here");
                if let Some(open) = open {
                    d = d
                        .secondary(open, "inside the flow collection opened here")
                        .help("check that every `{` and `[` is closed, on the same line or with its items indented");
                } else if message.contains("tab") {
                    d = d.help("YAML indents with spaces; replace the tab");
                } else {
                    d = d.help(
                        "fix the YAML syntax; a linter such as `yamllint` shows the structure",
                    );
                }
                d
            }
            YamlError::DuplicateKey { key, first, second } => {
                Diagnostic::new(Code::YamlDuplicateKey, format!("duplicate key `{key}`"))
                    .primary(second, "defined again here")
                    .secondary(first, "first defined here")
                    .help("a key may appear once per mapping; remove or rename one of them")
            }
            YamlError::ComplexKey { span } => {
                Diagnostic::new(Code::YamlComplexKey, "a mapping key must be a plain value")
                    .primary(span, "this key is a sequence or mapping")
                    .help("use a string as the key")
            }
            YamlError::MultipleDocuments { span } => Diagnostic::new(
                Code::YamlMultipleDocuments,
                "more than one YAML document in this file",
            )
            .primary(span, "a second document starts here")
            .help("keep one runbook or inventory per file"),
            YamlError::UnknownAlias { span } => {
                Diagnostic::new(Code::YamlUnknownAlias, "alias to an undefined anchor")
                    .primary(span, "no anchor with this name was defined before")
                    .help("define the anchor (`&name`) before using the alias (`*name`)")
            }
            YamlError::TooDeep { span } => Diagnostic::new(
                Code::YamlTooDeep,
                format!(
                    "collections nested more than {} levels deep",
                    crate::yaml::MAX_DEPTH
                ),
            )
            .primary(span, "this level is one too many")
            .help("no runbook or inventory needs this depth; flatten the structure"),
            YamlError::AliasBudget { span } => Diagnostic::new(
                Code::YamlAliasBudget,
                format!(
                    "aliases copy more than {} nodes into this file",
                    crate::yaml::ALIAS_BUDGET
                ),
            )
            .primary(span, "this alias crosses the limit")
            .help("each alias copies its anchor; aliases of aliases multiply (an alias bomb): write the values out, or share fewer of them"),
        }
    }
}
