//! Reusable blocks: `uses:` entries expanded into the runbook's own tree, before the runbook is
//! read into the AST (see docs/runbook-format.md, "Blocks").
//!
//! A block is a file of steps or of phases with typed params of its own. A `uses:` entry in a
//! list of steps (or of phases) is replaced by the block's steps (or phases), with
//!
//! - every step id and phase name prefixed by the entry's `id` (`switch-back.stop-source`), and
//!   every `needs:` inside the block prefixed the same way, so the block's steps are ordinary
//!   steps with stable ids for the journal, resume and `resolve`;
//! - every `register:` of the block renamed to `ID__NAME` (dots and dashes as `_`), with the
//!   templates that read it, so the same block used twice registers two distinct results;
//! - every `params.NAME` in the block's templates and expressions replaced by the argument, as
//!   an expression in the caller's terms (`("literal")`, or the caller's own template
//!   expression, itself already rewritten when the caller is a block).
//!
//! Everything else (outage phases, `irreversible:`, `freeze:`) is copied as written. Each
//! expanded instance gets its own range of offsets past the runbook's text, registered as a
//! [`Segment`], so later diagnostics land in the block's file with the chain of `uses:`
//! (see `diagnostic::chain`). Recursion follows `uses:` only, and stops at [`MAX_DEPTH`]; the
//! expanded size is bounded by [`MAX_STEPS`] and [`MAX_NODES`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use crate::ast::{Origin, ParamDecl, ParamKind};
use crate::diagnostic::{Code, Diagnostic, Segment, SourceFile, UsesSite};
use crate::schema::Reporter;
use crate::template::is_template;
use crate::yaml::{self, Node, NodeKind, Span};

/// How deep `uses:` may nest (a runbook using a block using a block ... ).
pub const MAX_DEPTH: usize = 16;
/// Steps a runbook may have once its blocks are expanded (as many as a runbook written out).
pub const MAX_STEPS: usize = 100_000;
/// YAML nodes the expansion may copy, all instances together.
pub const MAX_NODES: usize = 4_000_000;

mod rewrite;

use rewrite::{argument, literal_text, rewrite_expr, rewrite_template, substitute_targets};

const USES_KEYS: &[&str] = &[
    "uses",
    "id",
    "with",
    "needs",
    "when",
    "freeze",
    "name",
    "description",
];
const BLOCK_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "params",
    "defaults",
    "steps",
    "phases",
];

/// Finds the text of a block.
pub trait BlockLoader {
    /// The block `uses` names, as written in the file called `from`: the block's name (what
    /// diagnostics call it, and the key that detects cycles) and its text.
    fn load(&self, from: &str, uses: &str) -> Result<(String, String), String>;
}

/// Blocks on disk, relative to the file that uses them.
pub struct FileLoader;

impl BlockLoader for FileLoader {
    fn load(&self, from: &str, uses: &str) -> Result<(String, String), String> {
        let base = Path::new(from).parent().unwrap_or(Path::new(""));
        let path = normalize(&base.join(uses));
        let name = path.display().to_string();
        crate::input::read_text(&path, "the block")
            .map(|text| (name, text))
            .map_err(|d| d.message)
    }
}

/// `a/b/../c` as `a/c`, without asking the file system (names stay as the user wrote them).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() && !out.ends_with("..") => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// What a block holds, and so where it may be used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    Steps,
    Phases,
}

impl Body {
    fn key(self) -> &'static str {
        match self {
            Body::Steps => "steps",
            Body::Phases => "phases",
        }
    }
}

/// A block file, parsed once however often it is used.
struct BlockFile {
    source: SourceFile,
    params: Vec<ParamDecl>,
    /// `None` when the file did not parse (its errors are already reported).
    body: Option<(Body, Node)>,
}

/// The scope a list is expanded in: the runbook's own (no renaming), or one block instance.
#[derive(Default)]
struct Frame {
    /// The instance's id path (`switch-back`, `upgrade-b1.switch`); empty at the top.
    ns: String,
    /// `params.NAME` → the argument as an expression; `None` at the top (params are the
    /// runbook's own).
    args: Option<BTreeMap<String, String>>,
    /// `params.NAME` → the argument's literal text, for targets (`on:` is a selector, fixed
    /// before the run): only arguments written as literals, or passed on from one.
    raw: BTreeMap<String, String>,
    /// Registers of the block → their renamed form.
    registers: BTreeMap<String, String>,
    chain: Vec<UsesSite>,
    /// Block names of the chain, outermost first, for cycles.
    files: Vec<String>,
    /// The file diagnostics in this frame's text would name, as written by the user.
    file: String,
    /// The ids of the `uses:` entries of the chain, outermost first.
    uses_ids: Vec<String>,
    /// `uses:` ids of this frame → the step ids they expanded to (for `needs:`).
    expanded: BTreeMap<String, Vec<String>>,
    /// Step ids of this frame left out by `include:` (their `needs:` are dropped too).
    dropped: BTreeSet<String>,
}

pub(crate) struct Expansion {
    /// Whether the expansion stopped at a limit (then nothing else is worth checking).
    pub over_budget: bool,
    pub segments: Vec<Segment>,
    pub origins: BTreeMap<String, Origin>,
}

struct Expander<'a> {
    r: &'a mut Reporter,
    loader: &'a dyn BlockLoader,
    files: HashMap<String, Rc<BlockFile>>,
    segments: Vec<Segment>,
    origins: BTreeMap<String, Origin>,
    next_base: usize,
    steps: usize,
    nodes: usize,
    over_budget: bool,
}

/// Expands every `uses:` of the runbook `root` in place.
pub(crate) fn expand(root: &mut Node, r: &mut Reporter, loader: &dyn BlockLoader) -> Expansion {
    let top_file = r.source.name().to_owned();
    let mut x = Expander {
        next_base: r.source.text().len() + 1,
        r,
        loader,
        files: HashMap::new(),
        segments: Vec::new(),
        origins: BTreeMap::new(),
        steps: 0,
        nodes: 0,
        over_budget: false,
    };
    let mut frame = Frame {
        file: top_file,
        ..Frame::default()
    };
    if let Some(list) = get_mut(root, "phases") {
        x.phases(list, &mut frame);
    }
    if let Some(list) = get_mut(root, "steps") {
        x.steps_list(list, &mut frame);
    }
    Expansion {
        over_budget: x.over_budget,
        segments: x.segments,
        origins: x.origins,
    }
}

impl Expander<'_> {
    fn phases(&mut self, list: &mut Node, frame: &mut Frame) {
        let NodeKind::Seq(items) = &mut list.kind else {
            return;
        };
        let mut out = Vec::with_capacity(items.len());
        for mut item in std::mem::take(items) {
            if item.get("uses").is_some() {
                if let Some((_, phases)) = self.use_block(&item, frame, Body::Phases) {
                    out.extend(phases);
                }
                continue;
            }
            if frame.args.is_some() {
                if let Some(name) = get_mut(&mut item, "name") {
                    prefix(name, &frame.ns);
                }
                if let Some(on) = get_mut(&mut item, "on") {
                    self.targets(on, frame);
                }
            }
            for key in ["steps", "on_failure", "always"] {
                if let Some(steps) = get_mut(&mut item, key) {
                    self.steps_list(steps, frame);
                }
            }
            out.push(item);
        }
        list.kind = NodeKind::Seq(out);
    }

    fn steps_list(&mut self, list: &mut Node, frame: &mut Frame) {
        let NodeKind::Seq(items) = &mut list.kind else {
            return;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut kept = Vec::with_capacity(items.len());
        for mut item in std::mem::take(items) {
            if frame.args.is_some() && item.get("include").is_some() {
                if !self.included(&item, frame) {
                    if let Some(id) = item.get("id").and_then(Node::as_str) {
                        frame.dropped.insert(id.to_owned());
                    }
                    continue;
                }
                if let NodeKind::Map(entries) = &mut item.kind {
                    entries.retain(|(k, _)| k.as_str() != Some("include"));
                }
            }
            kept.push(item);
        }
        for mut item in kept {
            if item.get("uses").is_some() {
                if let Some((_, steps)) = self.use_block(&item, frame, Body::Steps) {
                    out.extend(steps);
                }
                continue;
            }
            self.steps += 1;
            if self.steps > MAX_STEPS {
                self.budget(item.span, frame);
                break;
            }
            self.step(&mut item, frame);
            out.push(item);
        }
        list.kind = NodeKind::Seq(out);
    }

    /// One step of `frame`: ids, needs, registers and templates in the caller's terms.
    fn step(&mut self, step: &mut Node, frame: &Frame) {
        if step.as_map().is_none() {
            return;
        }
        let module = step.get("module").and_then(Node::as_str).map(str::to_owned);
        if frame.args.is_some() {
            // Everything but the fields below is template text (names, targets, arguments).
            for (key, value) in step_entries(step) {
                match key.as_str() {
                    "id" | "needs" | "register" | "module" | "when" | "until" => {}
                    "on" => self.targets(value, frame),
                    "loop" if value.as_str().is_some_and(|s| !is_template(s)) => {
                        self.rewrite_scalar(value, frame, true);
                    }
                    "with" => {
                        for (k, v) in map_entries(value) {
                            // An expression argument (`assert`'s `that`) is rewritten whole,
                            // as `when:` is; its spec says so, not the module's name.
                            let whole =
                                module.as_deref().is_some_and(|m| builtin_expression(m, &k));
                            if whole {
                                self.rewrite_whole_all(v, frame);
                            } else {
                                self.rewrite_all(v, frame);
                            }
                        }
                    }
                    _ => self.rewrite_all(value, frame),
                }
            }
            for key in ["when", "until"] {
                if let Some(v) = get_mut(step, key) {
                    self.rewrite_scalar(v, frame, true);
                }
            }
            if let Some(id) = get_mut(step, "id") {
                prefix(id, &frame.ns);
            }
            if let Some(reg) = get_mut(step, "register")
                && let NodeKind::Scalar(s, _) = &mut reg.kind
                && let Some(renamed) = frame.registers.get(s.as_str())
            {
                *s = renamed.clone();
            }
        }
        if let Some(needs) = get_mut(step, "needs") {
            Self::needs(needs, frame);
        }
        if frame.args.is_some()
            && let Some(id) = step.get("id").and_then(Node::as_str)
        {
            self.origins.insert(
                id.to_owned(),
                Origin {
                    file: frame.file.clone(),
                    uses: frame.uses_ids.clone(),
                },
            );
        }
    }

    /// Whether a block's step with `include:` is in the expansion: `params.NAME` or
    /// `not params.NAME`, a `bool` parameter given a literal (decided before the run, so a
    /// step the caller never wants is not in its plan at all).
    fn included(&mut self, step: &Node, frame: &Frame) -> bool {
        let Some(node) = step.get("include") else {
            return true;
        };
        let text = node.as_str().unwrap_or_default().trim();
        let (negated, rest) = match text.strip_prefix("not ") {
            Some(r) => (true, r.trim()),
            None => (false, text),
        };
        let value = rest
            .strip_prefix("params.")
            .and_then(|name| frame.raw.get(name))
            .and_then(|v| match v.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            });
        if let Some(v) = value {
            return v != negated;
        }
        self.r.report(
            Diagnostic::new(
                Code::InvalidValue,
                format!("`include: {text}` is not decided before the run"),
            )
            .primary(node.span, "here")
            .help("`include:` takes `params.NAME` or `not params.NAME`, a bool parameter given a literal `true` or `false`"),
        );
        true
    }

    /// `needs:` of `frame`: a `uses:` id names every step it expanded to; other names are
    /// steps of the same frame (those left out by `include:` are dropped).
    fn needs(needs: &mut Node, frame: &Frame) {
        let one = |n: &Node| -> Vec<Node> {
            let Some(name) = n.as_str() else {
                return vec![n.clone()];
            };
            if frame.dropped.contains(name) {
                return Vec::new();
            }
            if let Some(ids) = frame.expanded.get(name) {
                return ids
                    .iter()
                    .map(|id| {
                        Node::new(
                            NodeKind::Scalar(id.clone(), yaml::ScalarStyle::Plain),
                            n.span,
                        )
                    })
                    .collect();
            }
            let mut n = n.clone();
            prefix(&mut n, &frame.ns);
            vec![n]
        };
        match &needs.kind {
            NodeKind::Seq(items) => {
                let out = items.iter().flat_map(one).collect();
                needs.kind = NodeKind::Seq(out);
            }
            NodeKind::Scalar(..) => {
                let out = one(needs);
                *needs = Node::new(NodeKind::Seq(out), needs.span);
            }
            _ => {}
        }
    }

    /// Expands one `uses:` entry of `parent`: the block's steps (or phases), renamed.
    fn use_block(
        &mut self,
        entry: &Node,
        parent: &mut Frame,
        want: Body,
    ) -> Option<(String, Vec<Node>)> {
        if self.over_budget {
            return None;
        }
        let e = self.r.reader(entry, "a `uses:` entry", USES_KEYS);
        let uses = e.get("uses").and_then(|n| self.r.string(n, "uses"))?;
        let id = e
            .require(self.r, "id")
            .and_then(|n| self.r.string(n, "block id"))?;
        super::check_identifier(self.r, &id, "block id");
        let with = e.get("with").cloned();
        let extra_needs = e.get("needs").cloned();
        let extra_when = e.get("when").cloned();
        let keep_freeze = match e.get("freeze") {
            None => true,
            Some(n) => n.as_bool().unwrap_or_else(|| {
                self.r.report(
                    Diagnostic::new(
                        Code::InvalidValue,
                        "`freeze:` of a `uses:` entry is `true` or `false`",
                    )
                    .primary(n.span, "not a boolean")
                    .help("`freeze: false` drops the block's `freeze:` markers (a runbook measures one write freeze)"),
                );
                true
            }),
        };
        // The caller's condition, in the caller's terms, added to every step of the block.
        let extra_when = extra_when.and_then(|n| {
            let Some(text) = n.as_str() else {
                self.r.report(
                    Diagnostic::new(
                        Code::InvalidValue,
                        "`when:` of a `uses:` entry is an expression",
                    )
                    .primary(n.span, "not an expression"),
                );
                return None;
            };
            match rewrite_expr(text, parent) {
                Ok(t) => Some((t, n.span)),
                Err(message) => {
                    self.r.report(
                        Diagnostic::new(Code::TemplateUndefined, message)
                            .primary(n.span, "in this condition"),
                    );
                    None
                }
            }
        });
        let site = UsesSite {
            span: uses.span,
            uses: uses.value.clone(),
        };
        let mut chain = parent.chain.clone();
        chain.push(site);
        if parent.expanded.contains_key(&id.value) {
            self.r.report(
                Diagnostic::new(
                    Code::DuplicateId,
                    format!("the block id `{}` is used twice here", id.value),
                )
                .primary(id.span, "used again")
                .help("give each `uses:` of a list its own `id`: the block's step ids are prefixed by it"),
            );
            return None;
        }
        if parent.chain.len() >= MAX_DEPTH {
            self.r.report(
                Diagnostic::new(
                    Code::BlockTooDeep,
                    format!("blocks nested more than {MAX_DEPTH} deep"),
                )
                .primary(uses.span, "this `uses:` is one too many")
                .help(format!(
                    "chain: {}; no procedure needs this depth: flatten the blocks",
                    chain_text(&parent.files, &uses.value)
                )),
            );
            return None;
        }
        let (name, text) = match self.loader.load(&parent.file, &uses.value) {
            Ok(found) => found,
            Err(message) => {
                self.r.report(
                    Diagnostic::new(
                        Code::BlockNotFound,
                        format!("block `{}`: {message}", uses.value),
                    )
                    .primary(uses.span, "this block")
                    .help("`uses:` takes a path relative to the file that holds it"),
                );
                return None;
            }
        };
        let mut files = if parent.files.is_empty() {
            vec![parent.file.clone()]
        } else {
            parent.files.clone()
        };
        if let Some(at) = files.iter().position(|f| *f == name) {
            let mut cycle = files[at..].to_vec();
            cycle.push(name.clone());
            self.r.report(
                Diagnostic::new(
                    Code::BlockCycle,
                    format!("blocks use each other in a cycle: {}", cycle.join(" → ")),
                )
                .primary(uses.span, "this `uses:` closes the cycle")
                .help("a block cannot use itself, directly or through other blocks"),
            );
            return None;
        }
        let file = self.block_file(&name, text, &chain);
        let params = file.params.clone();
        let (body, node) = file.body.clone()?;
        if body != want {
            self.r.report(
                Diagnostic::new(
                    Code::BlockKind,
                    format!(
                        "the block `{}` holds {}, but this `uses:` is in a list of {}",
                        uses.value,
                        body.key(),
                        want.key()
                    ),
                )
                .primary(uses.span, "wrong kind of block")
                .help("a block of `steps:` goes in a phase's `steps:`, a block of `phases:` in `phases:`"),
            );
            return None;
        }
        // Arguments, in the caller's terms.
        let (args, raw) = self.arguments(&params, with.as_ref(), &id, parent, &file.source);
        // This instance's own offsets.
        let base = self.next_base;
        let len = file.source.text().len();
        self.next_base = base + len + 1;
        let mut node = node;
        let copied = shift(&mut node, base);
        self.nodes += copied;
        if self.nodes > MAX_NODES {
            self.budget(uses.span, parent);
            return None;
        }
        self.segments.push(Segment {
            base,
            len,
            file: file.source.clone(),
            chain: chain.clone(),
        });
        let ns = if parent.ns.is_empty() {
            id.value.clone()
        } else {
            format!("{}.{}", parent.ns, id.value)
        };
        let mut registers = BTreeMap::new();
        collect_registers(&node, &mut registers, &ns);
        files.push(name.clone());
        let mut uses_ids = parent.uses_ids.clone();
        uses_ids.push(id.value.clone());
        let mut frame = Frame {
            ns,
            args: Some(args),
            raw,
            registers,
            chain,
            files,
            file: name,
            uses_ids,
            expanded: BTreeMap::new(),
            dropped: BTreeSet::new(),
        };
        match body {
            Body::Steps => self.steps_list(&mut node, &mut frame),
            Body::Phases => self.phases(&mut node, &mut frame),
        }
        let NodeKind::Seq(items) = node.kind else {
            return None;
        };
        let mut ids = Vec::new();
        let mut items = items;
        for item in &mut items {
            let steps: Vec<&mut Node> = match body {
                Body::Steps => vec![item],
                Body::Phases => phase_steps(item),
            };
            for step in steps {
                if let Some(sid) = step.get("id").and_then(Node::as_str) {
                    ids.push(sid.to_owned());
                }
                if let Some(extra) = &extra_needs {
                    let mut extra = extra.clone();
                    Self::needs(&mut extra, parent);
                    append_needs(step, extra);
                }
                if let Some((when, span)) = &extra_when {
                    and_when(step, when, *span);
                }
                if !keep_freeze && let NodeKind::Map(entries) = &mut step.kind {
                    entries.retain(|(k, _)| k.as_str() != Some("freeze"));
                }
            }
        }
        parent.expanded.insert(id.value.clone(), ids);
        Some((id.value, items))
    }

    fn budget(&mut self, span: Span, frame: &Frame) {
        if self.over_budget {
            return;
        }
        self.over_budget = true;
        let _ = frame;
        self.r.report(
            Diagnostic::new(
                Code::BlockTooLarge,
                format!(
                    "the blocks expand to more than {MAX_STEPS} steps or {MAX_NODES} YAML nodes"
                ),
            )
            .primary(span, "the limit is crossed here")
            .help("a block used by a block used many times multiplies; no procedure needs this many steps"),
        );
    }

    /// Parses a block file once; its own errors are reported once, with the first chain.
    fn block_file(&mut self, name: &str, text: String, chain: &[UsesSite]) -> Rc<BlockFile> {
        if let Some(f) = self.files.get(name) {
            return Rc::clone(f);
        }
        let source = SourceFile::new(name, text);
        let mut r = Reporter::new(source.clone());
        let parsed = parse_block(&mut r, &source);
        let used_here = |d: Diagnostic| {
            let mut d = d;
            let code = d.code;
            for site in chain.iter().rev() {
                d = d.related(
                    Diagnostic::new(code, format!("in the block `{}` used here", site.uses))
                        .in_file(&self.r.source)
                        .primary(site.span, "used here"),
                );
            }
            d
        };
        let found: Vec<Diagnostic> = r.diagnostics.0.into_iter().map(used_here).collect();
        self.r.diagnostics.extend(found);
        let file = Rc::new(parsed);
        self.files.insert(name.to_owned(), Rc::clone(&file));
        file
    }

    /// Binds a `with:` to the block's params: every argument as an expression for the block's
    /// templates. Unknown, missing and mistyped arguments are reported.
    fn arguments(
        &mut self,
        params: &[ParamDecl],
        with: Option<&Node>,
        id: &crate::schema::Spanned<String>,
        parent: &Frame,
        block: &SourceFile,
    ) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let mut raw = BTreeMap::new();
        let mut given: BTreeMap<String, &Node> = BTreeMap::new();
        if let Some(with) = with.filter(|w| !w.is_null()) {
            for (k, v) in self.r.map(with, "with").unwrap_or(&[]) {
                let Some(key) = self.r.string(k, "an argument name") else {
                    continue;
                };
                if params.iter().any(|p| p.name.value == key.value) {
                    given.insert(key.value, v);
                } else {
                    let mut d = Diagnostic::new(
                        Code::ParamUnknown,
                        format!("the block has no parameter `{}`", key.value),
                    )
                    .primary(key.span, "unknown parameter");
                    d = match crate::suggest::closest(
                        &key.value,
                        params.iter().map(|p| p.name.value.as_str()),
                    ) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None if params.is_empty() => d.help("the block takes no parameters"),
                        None => d.help(format!(
                            "the block's parameters: {}",
                            params
                                .iter()
                                .map(|p| p.name.value.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    };
                    self.r.report(d);
                }
            }
        }
        let mut out = BTreeMap::new();
        for p in params {
            let value = given.get(&p.name.value).copied().or(p.default.as_ref());
            if let Some(text) = value.and_then(|v| literal_text(v, parent)) {
                raw.insert(p.name.value.clone(), text);
            }
            let expr = match given.get(&p.name.value) {
                Some(node) => match argument(node, p, parent) {
                    Ok(e) => Some(e),
                    Err(message) => {
                        self.r.report(
                            Diagnostic::new(
                                Code::ParamInvalid,
                                format!("argument `{}` of the block: {message}", p.name.value),
                            )
                            .primary(node.span, format!("expected {}", p.kind.name()))
                            .help("a block argument is a literal of the parameter's type, or `{{ expression }}` in the caller's terms"),
                        );
                        None
                    }
                },
                None => match &p.default {
                    Some(d) => match argument(d, p, &Frame::default()) {
                        Ok(e) => Some(e),
                        Err(message) => {
                            self.r.diagnostics.push(
                                Diagnostic::new(
                                    Code::ParamInvalid,
                                    format!("default of `{}`: {message}", p.name.value),
                                )
                                .in_file(block)
                                .primary(d.span, format!("expected {}", p.kind.name())),
                            );
                            None
                        }
                    },
                    None if p.required || p.kind == ParamKind::Secret => {
                        self.r.report(
                            Diagnostic::new(
                                Code::ParamMissing,
                                format!("the block needs the argument `{}`", p.name.value),
                            )
                            .primary(id.span, "in this `uses:`")
                            .help(format!("add `{}:` under `with:`", p.name.value)),
                        );
                        None
                    }
                    // Not required, no default: absent (`none`), as a runbook param is.
                    None => Some("none".to_owned()),
                },
            };
            // A placeholder keeps the block's own checks quiet after a reported argument.
            if expr.is_none() {
                raw.entry(p.name.value.clone())
                    .or_insert_with(|| "all".to_owned());
            }
            out.insert(
                p.name.value.clone(),
                expr.unwrap_or_else(|| "none".to_owned()),
            );
        }
        (out, raw)
    }

    /// `on:` of a block: `{{ params.NAME }}` replaced by the argument's literal selector.
    fn targets(&mut self, node: &mut Node, frame: &Frame) {
        match &mut node.kind {
            NodeKind::Seq(items) => {
                for i in items {
                    self.targets(i, frame);
                }
            }
            NodeKind::Scalar(s, _) if is_template(s) => {
                match substitute_targets(s, frame) {
                    Ok(new) => *s = new,
                    Err(message) => {
                        self.r.report(
                            Diagnostic::new(Code::TemplateUndefined, message)
                                .primary(node.span, "in this target")
                                .help("targets are fixed before the run: pass a role, group or host selector, written out, as the argument"),
                        );
                        // Reported: the compiler need not say it again in other words.
                        "all".clone_into(s);
                    }
                }
            }
            _ => {}
        }
    }

    /// Every scalar under `node`: the template parts rewritten.
    fn rewrite_all(&mut self, node: &mut Node, frame: &Frame) {
        match &mut node.kind {
            NodeKind::Scalar(..) => self.rewrite_scalar(node, frame, false),
            NodeKind::Seq(items) => {
                for i in items {
                    self.rewrite_all(i, frame);
                }
            }
            NodeKind::Map(entries) => {
                for (_, v) in entries {
                    self.rewrite_all(v, frame);
                }
            }
            NodeKind::Null => {}
        }
    }

    /// Every scalar under `node`, read as a bare expression.
    fn rewrite_whole_all(&mut self, node: &mut Node, frame: &Frame) {
        match &mut node.kind {
            NodeKind::Scalar(..) => self.rewrite_scalar(node, frame, true),
            NodeKind::Seq(items) => {
                for i in items {
                    self.rewrite_whole_all(i, frame);
                }
            }
            _ => self.rewrite_all(node, frame),
        }
    }

    fn rewrite_scalar(&mut self, node: &mut Node, frame: &Frame, whole: bool) {
        let span = node.span;
        let NodeKind::Scalar(s, _) = &mut node.kind else {
            return;
        };
        let result = if whole && !is_template(s) {
            rewrite_expr(s, frame)
        } else {
            rewrite_template(s, frame)
        };
        match result {
            Ok(new) => *s = new,
            Err(message) => {
                self.r.report(
                    Diagnostic::new(Code::TemplateUndefined, message)
                        .primary(span, "in this template")
                        .help("a block reads its own parameters as `params.NAME`; pass the runbook's values through `with:`"),
                );
                // Reported once, here: the template text alone goes on to the compiler.
                *s = strip_templates(s);
            }
        }
    }
}

/// The text of a template without its `{{ }}`, `{% %}` and `{# #}` parts.
fn strip_templates(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = ["{{", "{%", "{#"].iter().filter_map(|t| rest.find(t)).min() {
        out.push_str(&rest[..open]);
        let close = rest[open..].find(['}', '%', '#']).map_or(rest.len(), |c| {
            rest[open + c..]
                .find('}')
                .map_or(rest.len(), |e| open + c + e + 1)
        });
        rest = &rest[close.max(open + 2).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// Reads a block file's header, params and body.
fn parse_block(r: &mut Reporter, source: &SourceFile) -> BlockFile {
    let empty = BlockFile {
        source: source.clone(),
        params: Vec::new(),
        body: None,
    };
    let root = match yaml::parse(source.text()) {
        Ok(root) => root,
        Err(err) => {
            r.report(err.into());
            return empty;
        }
    };
    if root.as_map().is_none() {
        r.report(
            Diagnostic::new(
                Code::WrongType,
                format!("a block must be a mapping, found {}", root.describe()),
            )
            .primary(
                root.span,
                "expected `apiVersion`, `kind: Block`, `params`, `steps`",
            )
            .help("start the file with `apiVersion: runbook/v1` and `kind: Block`"),
        );
        return empty;
    }
    // The block's own defaults, into its own steps (a runbook's never reach them).
    let mut root = root;
    if !super::defaults::apply(&mut root, r) {
        return empty;
    }
    let top = r.reader(&root, "the block", BLOCK_KEYS);
    match top
        .require(r, "apiVersion")
        .and_then(|n| r.string(n, "apiVersion"))
    {
        Some(v) if v.value == crate::ast::API_VERSION => {}
        Some(v) => r.report(
            Diagnostic::new(
                Code::ApiVersion,
                format!("unsupported apiVersion `{}`", v.value),
            )
            .primary(v.span, "not supported by this build")
            .help(format!("supported versions: `{}`", crate::ast::API_VERSION)),
        ),
        None => {}
    }
    match top.require(r, "kind").and_then(|n| r.string(n, "kind")) {
        Some(k) if k.value == "Block" => {}
        Some(k) => r.report(
            Diagnostic::new(
                Code::BlockKind,
                format!("expected `kind: Block`, found `{}`", k.value),
            )
            .primary(k.span, "not a block")
            .help("`uses:` names a block file (`kind: Block`), not a runbook"),
        ),
        None => {}
    }
    if let Some(m) = top.get("metadata") {
        let _ = r.reader(
            m,
            "the block's metadata",
            &["name", "description", "source"],
        );
    }
    let params = top
        .get("params")
        .map(|n| super::params(r, n))
        .unwrap_or_default();
    let body = match (top.get("steps"), top.get("phases")) {
        (Some(s), None) => Some((Body::Steps, s.clone())),
        (None, Some(p)) => Some((Body::Phases, p.clone())),
        (Some(_), Some(p)) => {
            r.report(
                Diagnostic::new(
                    Code::InvalidValue,
                    "a block has either `steps` or `phases`, not both",
                )
                .primary(top.key("phases").map_or(p.span, |k| k.span), "remove one"),
            );
            None
        }
        (None, None) => {
            top.require(r, "steps");
            None
        }
    };
    let body = body.filter(|(_, n)| r.seq(n, "the block's body").is_some());
    BlockFile {
        source: source.clone(),
        params,
        body,
    }
}

fn chain_text(files: &[String], last: &str) -> String {
    let mut all: Vec<&str> = files.iter().map(String::as_str).collect();
    all.push(last);
    all.join(" → ")
}

/// Adds `base` to every span under `node`; returns how many nodes it visited.
fn shift(node: &mut Node, base: usize) -> usize {
    // An explicit stack: the tree's depth is bounded by the YAML loader, but no recursion is
    // needed here at all.
    let mut count = 0;
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        count += 1;
        n.span = Span::new(n.span.start + base, n.span.end + base);
        match &mut n.kind {
            NodeKind::Seq(items) => stack.extend(items.iter_mut()),
            NodeKind::Map(entries) => {
                for (k, v) in entries {
                    stack.push(k);
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    count
}

/// The block's own `register:` names (not those of the blocks it uses), renamed for `ns`.
fn collect_registers(body: &Node, out: &mut BTreeMap<String, String>, ns: &str) {
    let mangled = ns.replace(['-', '.'], "_");
    let mut visit = |step: &Node| {
        if step.get("uses").is_none()
            && let Some(reg) = step.get("register").and_then(Node::as_str)
        {
            out.insert(reg.to_owned(), format!("{mangled}__{reg}"));
        }
    };
    for item in body.as_seq().unwrap_or(&[]) {
        if item.get("module").is_some() || item.get("register").is_some() {
            visit(item);
        }
        for key in ["steps", "on_failure", "always"] {
            for step in item.get(key).and_then(Node::as_seq).unwrap_or(&[]) {
                visit(step);
            }
        }
    }
}

fn get_mut<'n>(node: &'n mut Node, key: &str) -> Option<&'n mut Node> {
    match &mut node.kind {
        NodeKind::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn step_entries(node: &mut Node) -> Vec<(String, &mut Node)> {
    match &mut node.kind {
        NodeKind::Map(entries) => entries
            .iter_mut()
            .filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), v)))
            .collect(),
        _ => Vec::new(),
    }
}

fn map_entries(node: &mut Node) -> Vec<(String, &mut Node)> {
    step_entries(node)
}

/// The steps of a phase node, all three lists.
fn phase_steps(phase: &mut Node) -> Vec<&mut Node> {
    let NodeKind::Map(entries) = &mut phase.kind else {
        return Vec::new();
    };
    entries
        .iter_mut()
        .filter(|(k, _)| matches!(k.as_str(), Some("steps" | "on_failure" | "always")))
        .flat_map(|(_, v)| match &mut v.kind {
            NodeKind::Seq(items) => items.iter_mut().collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect()
}

/// `when` (the caller's condition) and the step's own, both to hold.
fn and_when(step: &mut Node, when: &str, span: Span) {
    if let Some(own) = get_mut(step, "when") {
        if let NodeKind::Scalar(s, _) = &mut own.kind {
            *s = format!("({when}) and ({s})");
        }
        return;
    }
    if let NodeKind::Map(entries) = &mut step.kind {
        entries.push((
            Node::new(
                NodeKind::Scalar("when".into(), yaml::ScalarStyle::Plain),
                span,
            ),
            Node::new(
                NodeKind::Scalar(when.to_owned(), yaml::ScalarStyle::DoubleQuoted),
                span,
            ),
        ));
    }
}

fn append_needs(step: &mut Node, extra: Node) {
    let extra: Vec<Node> = match extra.kind {
        NodeKind::Seq(items) => items,
        _ => vec![extra],
    };
    if let Some(needs) = get_mut(step, "needs") {
        if let NodeKind::Seq(items) = &mut needs.kind {
            items.extend(extra);
        }
        return;
    }
    if let NodeKind::Map(entries) = &mut step.kind {
        let span = extra.first().map_or(step.span, |n| n.span);
        entries.push((
            Node::new(
                NodeKind::Scalar("needs".into(), yaml::ScalarStyle::Plain),
                span,
            ),
            Node::new(NodeKind::Seq(extra), span),
        ));
    }
}

/// `ns.value` for a scalar id or name (unchanged at the top).
fn prefix(node: &mut Node, ns: &str) {
    if ns.is_empty() {
        return;
    }
    if let NodeKind::Scalar(s, _) = &mut node.kind {
        *s = format!("{ns}.{s}");
    }
}

/// Whether parameter `param` of the built-in module `module` takes template expressions
/// (`ParamType::Expression`, or a list of them).
fn builtin_expression(module: &str, param: &str) -> bool {
    static MODULES: std::sync::LazyLock<runbook_modules::Registry> =
        std::sync::LazyLock::new(runbook_modules::Registry::builtin);
    MODULES
        .get(module)
        .and_then(|m| m.params().iter().find(|p| p.name == param))
        .is_some_and(|p| p.ty.is_expression())
}
