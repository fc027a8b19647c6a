//! From spanned YAML to the [`ast`](crate::ast): shape checks only.
//!
//! Every structural problem (unknown key, wrong type, missing key, bad duration, bad version)
//! is reported, and parsing goes on with what it could read, so that later checks still run
//! and the user sees everything at once. Whether names refer to anything is left to the
//! compiler, which has the inventory and the modules.

use std::time::Duration;

pub mod blocks;
pub mod defaults;

use crate::ast::{
    API_VERSION, BatchSize, FailBudget, Metadata, Order, ParamDecl, ParamKind, Phase, RoleCount,
    RoleDecl, Runbook, Step, StepKind,
};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile};
use crate::schema::{Reporter, Spanned};
use crate::yaml::{self, Node, Span};

const TOP_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "params",
    "roles",
    "vars",
    "defaults",
    "phases",
    "steps",
];
const METADATA_KEYS: &[&str] = &["name", "version", "description", "source"];
const PARAM_KEYS: &[&str] = &["type", "default", "required", "description", "choices"];
const ROLE_KEYS: &[&str] = &["count", "min", "max", "description"];
const PHASE_KEYS: &[&str] = &[
    "defaults",
    "serial",
    "max_fail",
    "name",
    "description",
    "outage",
    "order",
    "on",
    "steps",
    "on_failure",
    "always",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "source",
    "module",
    "with",
    "on",
    "needs",
    "when",
    "loop",
    "register",
    "retries",
    "until",
    "delay",
    "timeout",
    "estimate",
    "irreversible",
    "freeze",
    "env",
];

/// The result of parsing: the AST when the document had the shape of a runbook (possibly with
/// errors inside), and every diagnostic found.
#[derive(Debug)]
pub struct Parsed {
    pub runbook: Option<Runbook>,
    pub diagnostics: Diagnostics,
}

/// Parses a runbook's text. `name` is what diagnostics call the file; blocks it uses are read
/// from disk relative to it (for a built-in, `builtin:...`, from the binary).
pub fn parse_runbook(name: &str, text: String) -> Parsed {
    if name.starts_with(crate::builtin::PREFIX) {
        // A built-in's blocks are built in with it, never read from the disk.
        return parse_runbook_with(name, text, &crate::builtin::blocks::BuiltinLoader);
    }
    parse_runbook_with(name, text, &blocks::FileLoader)
}

/// [`parse_runbook`], with the blocks found by `loader`.
pub fn parse_runbook_with(name: &str, text: String, loader: &dyn blocks::BlockLoader) -> Parsed {
    let source = SourceFile::new(name, text);
    let mut r = Reporter::new(source.clone());
    let root = match yaml::parse(source.text()) {
        Ok(root) => root,
        Err(err) => {
            r.report(err.into());
            return Parsed {
                runbook: None,
                diagnostics: r.diagnostics,
            };
        }
    };
    if !matches!(root.kind, crate::yaml::NodeKind::Map(_)) {
        r.report(
            Diagnostic::new(
                Code::WrongType,
                format!("a runbook must be a mapping, found {}", root.describe()),
            )
            .primary(
                root.span,
                "expected `apiVersion`, `kind`, `metadata`, `phases`",
            )
            .help("start the file with `apiVersion: runbook/v1` and `kind: Runbook`"),
        );
        return Parsed {
            runbook: None,
            diagnostics: r.diagnostics,
        };
    }
    // `defaults:` first, into the runbook's own steps; then `uses:`: everything below reads
    // the merged, expanded tree.
    let mut root = root;
    if source.text().contains("defaults") && !defaults::apply(&mut root, &mut r) {
        return Parsed {
            runbook: None,
            diagnostics: r.diagnostics,
        };
    }
    let mut origins = std::collections::BTreeMap::new();
    if source.text().contains("uses") {
        let expansion = blocks::expand(&mut root, &mut r, loader);
        source.set_segments(expansion.segments);
        if expansion.over_budget {
            return Parsed {
                runbook: None,
                diagnostics: r.diagnostics,
            };
        }
        origins = expansion.origins;
    }
    let top = r.reader(&root, "the runbook", TOP_KEYS);

    match top
        .require(&mut r, "apiVersion")
        .and_then(|n| r.string(n, "apiVersion"))
    {
        Some(v) if v.value == API_VERSION => {}
        Some(v) => r.report(
            Diagnostic::new(
                Code::ApiVersion,
                format!("unsupported apiVersion `{}`", v.value),
            )
            .primary(v.span, "not supported by this build")
            .help(format!("supported versions: `{API_VERSION}`")),
        ),
        None => {}
    }
    match top
        .require(&mut r, "kind")
        .and_then(|n| r.string(n, "kind"))
    {
        Some(k) if k.value == "Runbook" => {}
        Some(k) => r.report(
            Diagnostic::new(
                Code::Kind,
                format!("expected `kind: Runbook`, found `{}`", k.value),
            )
            .primary(k.span, "wrong kind")
            .help("an inventory goes after `-i`; the runbook file needs `kind: Runbook`"),
        ),
        None => {}
    }

    let metadata = top
        .require(&mut r, "metadata")
        .map(|n| metadata(&mut r, n))
        .unwrap_or_default();
    let params = top
        .get("params")
        .map(|n| params(&mut r, n))
        .unwrap_or_default();
    let roles = top
        .get("roles")
        .map(|n| roles(&mut r, n))
        .unwrap_or_default();
    let vars = top
        .get("vars")
        .map(|n| named_nodes(&mut r, n, "vars"))
        .unwrap_or_default();

    let mut phases_out = Vec::new();
    match (top.get("phases"), top.get("steps")) {
        (Some(_), Some(steps)) => r.report(
            Diagnostic::new(
                Code::InvalidValue,
                "a runbook has either `phases` or `steps`, not both",
            )
            .primary(
                top.key("steps").map_or(steps.span, |k| k.span),
                "remove this or move it into a phase",
            )
            .help("top-level `steps:` is a shorthand for one phase named `main`"),
        ),
        (Some(node), None) => {
            for item in r.seq(node, "phases").unwrap_or(&[]) {
                if let Some(p) = phase(&mut r, item) {
                    phases_out.push(p);
                }
            }
            if node.as_seq().is_some_and(<[Node]>::is_empty) {
                r.report(
                    Diagnostic::new(Code::EmptyPhase, "the runbook has no phases")
                        .primary(node.span, "empty")
                        .help("add a phase with `- name: NAME` and `steps:`"),
                );
            }
        }
        (None, Some(node)) => {
            let steps = step_list(&mut r, node, StepKind::Main);
            phases_out.push(Phase {
                name: Spanned::new(
                    "main".into(),
                    top.key("steps").map_or(node.span, |k| k.span),
                ),
                description: None,
                outage: false,
                order: Order::Sequential,
                on: Vec::new(),
                serial: None,
                max_fail: FailBudget::Hosts(0),
                steps,
                steps_given: true,
                span: node.span,
            });
        }
        (None, None) => {
            top.require(&mut r, "phases");
        }
    }

    let runbook = Runbook {
        source,
        metadata,
        params,
        roles,
        vars,
        phases: phases_out,
        origins,
    };
    Parsed {
        runbook: Some(runbook),
        diagnostics: r.diagnostics,
    }
}

fn metadata(r: &mut Reporter, node: &Node) -> Metadata {
    let m = r.reader(node, "`metadata`", METADATA_KEYS);
    let name = m
        .require(r, "name")
        .and_then(|n| r.string(n, "metadata.name"))
        .unwrap_or_default();
    if !name.value.is_empty() && !is_identifier(&name.value) {
        r.report(
            Diagnostic::new(
                Code::InvalidValue,
                format!("invalid runbook name `{}`", name.value),
            )
            .primary(name.span, "not a valid name")
            .help("use letters, digits, `-` and `_`"),
        );
    }
    let version = m
        .require(r, "version")
        .and_then(|n| r.string(n, "metadata.version"))
        .unwrap_or_default();
    if !version.value.is_empty() && !is_semver(&version.value) {
        r.report(
            Diagnostic::new(
                Code::InvalidValue,
                format!("`{}` is not a semantic version", version.value),
            )
            .primary(version.span, "expected MAJOR.MINOR.PATCH")
            .help("write the runbook's own version as semver, such as `1.0.0`"),
        );
    }
    let description = m
        .get("description")
        .and_then(|n| r.string(n, "metadata.description"))
        .map(|s| s.value);
    let source = m
        .get("source")
        .map(|n| {
            r.string_or_list(n, "metadata.source")
                .into_iter()
                .map(|s| s.value)
                .collect()
        })
        .unwrap_or_default();
    Metadata {
        name,
        version,
        description,
        source,
    }
}

fn params(r: &mut Reporter, node: &Node) -> Vec<ParamDecl> {
    let mut out = Vec::new();
    for (key, value) in r.map(node, "params").unwrap_or(&[]) {
        let Some(name) = r.string(key, "a parameter name") else {
            continue;
        };
        check_variable_name(r, &name, "parameter name");
        let p = r.reader(value, &format!("parameter `{}`", name.value), PARAM_KEYS);
        let kind = match p.get("type").and_then(|n| r.string(n, "type")) {
            None => ParamKind::String,
            Some(t) => ParamKind::from_name(&t.value).unwrap_or_else(|| {
                let mut d = Diagnostic::new(
                    Code::InvalidValue,
                    format!("unknown parameter type `{}`", t.value),
                )
                .primary(t.span, "unknown type");
                d = match crate::suggest::closest(&t.value, ParamKind::NAMES.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("types: {}", ParamKind::NAMES.join(", "))),
                };
                r.report(d);
                ParamKind::String
            }),
        };
        let default = p.get("default").cloned();
        if let (ParamKind::Secret, Some(d)) = (kind, &default) {
            r.report(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("secret parameter `{}` cannot have a default", name.value),
                )
                .primary(d.span, "a secret written in the runbook is no secret")
                .help("remove the default; secrets come from the environment, a file or a prompt"),
            );
        }
        let required = p
            .get("required")
            .and_then(|n| r.bool(n, "required"))
            .unwrap_or(false);
        let description = p
            .get("description")
            .and_then(|n| r.string(n, "description"))
            .map(|s| s.value);
        let choices = p
            .get("choices")
            .and_then(|n| r.seq(n, "choices"))
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| r.string(i, "a choice"))
                    .map(|s| s.value)
                    .collect()
            })
            .unwrap_or_default();
        out.push(ParamDecl {
            name,
            kind,
            default,
            required,
            description,
            choices,
            span: value.span,
        });
    }
    out
}

fn roles(r: &mut Reporter, node: &Node) -> Vec<RoleDecl> {
    let mut out = Vec::new();
    for (key, value) in r.map(node, "roles").unwrap_or(&[]) {
        let Some(name) = r.string(key, "a role name") else {
            continue;
        };
        check_identifier(r, &name, "role name");
        let before = r.diagnostics.len();
        let (mut count, count_span) = role_count(r, &name.value, value, key.span);
        let description = value
            .get("description")
            .and_then(|n| r.string(n, "description"))
            .map(|s| s.value);
        // A count that could not be read is not checked against the inventory: the user
        // already has an error for it, and a second one about "0 hosts" would only mislead.
        if r.diagnostics.len() > before {
            count = RoleCount { min: 0, max: None };
        }
        out.push(RoleDecl {
            name,
            count,
            count_span,
            description,
        });
    }
    out
}

/// `primary: 1`, `primary: {count: 1}` or `primary: {min: 0, max: 1}` (default: at least 1).
fn role_count(r: &mut Reporter, role: &str, value: &Node, key_span: Span) -> (RoleCount, Span) {
    if let Some(n) = value.as_int() {
        let c = non_negative(r, value, n);
        return (
            RoleCount {
                min: c,
                max: Some(c),
            },
            value.span,
        );
    }
    let what = format!("role `{role}`");
    let m = r.reader(value, &what, ROLE_KEYS);
    if let Some(n) = m.get("count") {
        let c = r.int(n, "count").map_or(0, |c| non_negative(r, n, c));
        let range = [m.key("min"), m.key("max")]
            .into_iter()
            .flatten()
            .min_by_key(|k| k.span.start);
        if let Some(k) = range {
            r.report(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("{what} has both `count` and `min`/`max`"),
                )
                .primary(k.span, "conflicts with `count`")
                .help("use `count` for an exact number, or `min`/`max` for a range"),
            );
        }
        return (
            RoleCount {
                min: c,
                max: Some(c),
            },
            n.span,
        );
    }
    let mut count = RoleCount { min: 1, max: None };
    let mut span = key_span;
    if let Some(n) = m.get("min")
        && let Some(c) = r.int(n, "min")
    {
        count.min = non_negative(r, n, c);
        span = n.span;
    }
    if let Some(n) = m.get("max")
        && let Some(c) = r.int(n, "max")
    {
        count.max = Some(non_negative(r, n, c));
        span = if span == key_span {
            n.span
        } else {
            span.join(n.span)
        };
    }
    if count.max.is_some_and(|max| max < count.min) {
        r.report(
            Diagnostic::new(Code::InvalidValue, format!("{what}: `max` is below `min`"))
                .primary(span, "empty range")
                .help("make `max` at least `min`"),
        );
    }
    (count, span)
}

/// `env:`: a mapping of environment variable names to values.
fn env_vars(r: &mut Reporter, node: &Node) -> Vec<(Spanned<String>, Node)> {
    let vars = named_nodes(r, node, "env");
    for (name, _) in &vars {
        if !crate::transport::wrapper::valid_env_name(&name.value) {
            r.report(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("invalid environment variable name `{}`", name.value),
                )
                .primary(name.span, "not a variable name")
                .help("use letters, digits and `_`, starting with a letter or `_`"),
            );
        }
    }
    vars
}

/// `serial: 2`, `serial: 25%` or `serial: [1, 25%, 100%]`.
fn serial(r: &mut Reporter, node: &Node) -> Vec<BatchSize> {
    let items: Vec<&Node> = match node.as_seq() {
        Some(items) => items.iter().collect(),
        None => vec![node],
    };
    let mut out = Vec::new();
    for item in items {
        match count_or_percent(item) {
            Some(Ok(n)) if n > 0 => out.push(BatchSize::Hosts(n)),
            Some(Err(p)) if (1..=100).contains(&p) => out.push(BatchSize::Percent(p)),
            _ => r.report(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("`serial` entry `{item}` is not a batch size"),
                )
                .primary(
                    item.span,
                    "expected a number of hosts (at least 1) or a percentage",
                )
                .help("write batch sizes as `1`, `25%`, or a list such as `[1, 25%, 100%]`"),
            ),
        }
    }
    if out.is_empty() && node.as_seq().is_some() {
        r.report(
            Diagnostic::new(Code::InvalidValue, "`serial` is empty")
                .primary(node.span, "no batch sizes")
                .help("give at least one batch size, such as `[1, 100%]`"),
        );
    }
    out
}

/// `max_fail: 1` or `max_fail: 10%`.
fn max_fail(r: &mut Reporter, node: &Node) -> FailBudget {
    match count_or_percent(node) {
        Some(Ok(n)) => FailBudget::Hosts(n),
        Some(Err(p)) if p <= 100 => FailBudget::Percent(p),
        _ => {
            r.report(
                Diagnostic::new(Code::InvalidValue, format!("`max_fail` is not a number of hosts or a percentage: `{node}`"))
                    .primary(node.span, "expected `2` or `10%`")
                    .help("`max_fail` is how many hosts of the phase may fail before the remaining batches stop"),
            );
            FailBudget::Hosts(0)
        }
    }
}

/// `Ok(n)` for a non-negative integer, `Err(p)` for `p%`.
fn count_or_percent(node: &Node) -> Option<Result<usize, u8>> {
    if let Some(n) = node.as_int() {
        return usize::try_from(n).ok().map(Ok);
    }
    let text = node.as_str()?.trim();
    let p = text.strip_suffix('%')?.trim().parse::<u8>().ok()?;
    Some(Err(p))
}

fn non_negative(r: &mut Reporter, node: &Node, n: i64) -> usize {
    usize::try_from(n).unwrap_or_else(|_| {
        r.report(
            Diagnostic::new(Code::InvalidValue, format!("a host count cannot be {n}"))
                .primary(node.span, "negative")
                .help("use 0 or more"),
        );
        0
    })
}

fn named_nodes(r: &mut Reporter, node: &Node, what: &str) -> Vec<(Spanned<String>, Node)> {
    r.map(node, what)
        .unwrap_or(&[])
        .iter()
        .filter_map(|(k, v)| r.string(k, what).map(|k| (k, v.clone())))
        .collect()
}

fn phase(r: &mut Reporter, node: &Node) -> Option<Phase> {
    let p = r.reader(node, "a phase", PHASE_KEYS);
    if p.entries().is_empty() {
        if node.as_map().is_some() {
            r.report(
                Diagnostic::new(Code::MissingKey, "empty phase")
                    .primary(node.span, "a phase needs `name` and `steps`")
                    .help("write the phase as `- name: NAME` with `steps:` under it, or remove it"),
            );
        }
        return None;
    }
    let name = p
        .require(r, "name")
        .and_then(|n| r.string(n, "phase name"))?;
    check_namespaced(r, &name, "phase name");
    let description = p
        .get("description")
        .and_then(|n| r.string(n, "description"))
        .map(|s| s.value);
    let outage = p
        .get("outage")
        .and_then(|n| r.bool(n, "outage"))
        .unwrap_or(false);
    let order = match p.get("order").and_then(|n| r.string(n, "order")) {
        None => Order::Sequential,
        Some(o) => match o.value.as_str() {
            "sequential" => Order::Sequential,
            "per_host" => Order::PerHost,
            other => {
                r.report(
                    Diagnostic::new(Code::InvalidValue, format!("unknown order `{other}`"))
                        .primary(o.span, "unknown order")
                        .help("use `sequential` (the default) or `per_host`"),
                );
                Order::Sequential
            }
        },
    };
    let on = p
        .get("on")
        .map(|n| r.string_or_list(n, "on"))
        .unwrap_or_default();
    let mut steps = if let Some(n) = p.get("steps") {
        step_list(r, n, StepKind::Main)
    } else {
        p.require(r, "steps");
        Vec::new()
    };
    if let Some(n) = p.get("on_failure") {
        steps.extend(step_list(r, n, StepKind::OnFailure));
    }
    if let Some(n) = p.get("always") {
        steps.extend(step_list(r, n, StepKind::Always));
    }
    Some(Phase {
        name,
        description,
        outage,
        order,
        on,
        serial: p.get("serial").map(|n| serial(r, n)),
        max_fail: p
            .get("max_fail")
            .map_or(FailBudget::Hosts(0), |n| max_fail(r, n)),
        steps_given: p.get("steps").is_some(),
        steps,
        span: node.span,
    })
}

fn step_list(r: &mut Reporter, node: &Node, kind: StepKind) -> Vec<Step> {
    let what = match kind {
        StepKind::Main => "steps",
        StepKind::OnFailure => "on_failure",
        StepKind::Always => "always",
    };
    r.seq(node, what)
        .unwrap_or(&[])
        .iter()
        .filter_map(|n| step(r, n, kind))
        .collect()
}

fn step(r: &mut Reporter, node: &Node, kind: StepKind) -> Option<Step> {
    let s = r.reader(node, "a step", STEP_KEYS);
    if s.entries().is_empty() {
        if node.as_map().is_some() {
            r.report(
                Diagnostic::new(Code::MissingKey, "empty step")
                    .primary(node.span, "a step needs `id` and `module`")
                    .help("write the step as `- id: ID` with `module:` and `on:`, or remove it"),
            );
        }
        return None;
    }
    let id = s.require(r, "id").and_then(|n| r.string(n, "step id"))?;
    check_namespaced(r, &id, "step id");
    if id.value.len() > crate::ast::MAX_STEP_ID {
        r.report(
            Diagnostic::new(
                Code::NameTooLong,
                format!(
                    "step id of {} bytes; the limit is {}",
                    id.value.len(),
                    crate::ast::MAX_STEP_ID
                ),
            )
            .primary(id.span, "too long")
            .help(format!(
                "a step id names the step's directory on every host (`RUN/STEP@HOST/`), one path component of at most 255 bytes: keep ids to {} bytes",
                crate::ast::MAX_STEP_ID
            )),
        );
    }
    let text = |r: &mut Reporter, key: &str| s.get(key).and_then(|n| r.string(n, key));
    let module = s
        .require(r, "module")
        .and_then(|n| r.string(n, "module"))
        .unwrap_or_else(|| Spanned::new(String::new(), id.span));
    let (with, with_span, with_ok) = match s.get("with") {
        Some(n) if n.is_null() => (Vec::new(), n.span, true),
        Some(n) => (named_nodes(r, n, "with"), n.span, n.as_map().is_some()),
        None => (Vec::new(), id.span, true),
    };
    let on = s
        .get("on")
        .map(|n| r.string_or_list(n, "on"))
        .unwrap_or_default();
    let needs = s
        .get("needs")
        .map(|n| r.string_or_list(n, "needs"))
        .unwrap_or_default();
    let register = text(r, "register");
    if let Some(reg) = &register {
        check_variable_name(r, reg, "register name");
    }
    let retries = match s
        .get("retries")
        .and_then(|n| r.int(n, "retries").map(|v| (n, v)))
    {
        Some((n, v)) => u32::try_from(v).unwrap_or_else(|_| {
            r.report(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("`retries` must be between 0 and {}", u32::MAX),
                )
                .primary(n.span, "out of range")
                .help("retries counts extra attempts after the first"),
            );
            0
        }),
        // `until:` without `retries:` retries 3 times, as Ansible does.
        None if s.get("until").is_some() => 3,
        None => 0,
    };
    Some(Step {
        kind,
        name: text(r, "name").map(|s| s.value),
        description: text(r, "description").map(|s| s.value),
        source: text(r, "source").map(|s| s.value),
        module,
        with,
        with_span,
        with_ok,
        on,
        needs,
        when: text(r, "when"),
        loop_items: s.get("loop").cloned(),
        register,
        retries,
        until: text(r, "until"),
        delay: s.get("delay").and_then(|n| duration(r, n, "delay")),
        timeout: s.get("timeout").and_then(|n| duration(r, n, "timeout")),
        estimate: s.get("estimate").and_then(|n| duration(r, n, "estimate")),
        irreversible: s
            .get("irreversible")
            .and_then(|n| r.bool(n, "irreversible"))
            .unwrap_or(false),
        freeze: s.get("freeze").and_then(|n| freeze(r, n)),
        env: s.get("env").map(|n| env_vars(r, n)).unwrap_or_default(),
        span: node.span,
        id,
    })
}

/// `freeze: start` or `freeze: end`.
fn freeze(r: &mut Reporter, node: &Node) -> Option<Spanned<crate::ast::Freeze>> {
    let value = match node.as_str() {
        Some("start") => crate::ast::Freeze::Start,
        Some("end") => crate::ast::Freeze::End,
        _ => {
            r.report(
                Diagnostic::new(
                    Code::FreezeMarker,
                    format!("`freeze` is `start` or `end`, not `{node}`"),
                )
                .primary(node.span, "expected `start` or `end`")
                .help("mark the step that begins the write freeze `freeze: start` and the one after which writes are accepted again `freeze: end`"),
            );
            return None;
        }
    };
    Some(Spanned::new(value, node.span))
}

/// A duration literal: `30s`, `5m`, `1h30m`, `250ms`, or whole seconds.
pub(crate) fn duration(r: &mut Reporter, node: &Node, what: &str) -> Option<Duration> {
    let text = node.as_str().map(str::to_owned);
    let parsed = text.as_deref().and_then(runbook_modules::parse_duration);
    if parsed.is_none() {
        r.report(
            Diagnostic::new(
                Code::InvalidValue,
                format!("`{what}` is not a duration: `{node}`"),
            )
            .primary(node.span, "expected a duration")
            .help("write durations as `30s`, `5m`, `1h30m` or `250ms`"),
        );
    }
    parsed
}

fn check_identifier(r: &mut Reporter, name: &Spanned<String>, what: &str) {
    if !is_identifier(&name.value) {
        r.report(
            Diagnostic::new(
                Code::InvalidValue,
                format!("invalid {what} `{}`", name.value),
            )
            .primary(name.span, "not a valid identifier")
            .help(format!(
                "a {what} starts with a letter or `_` and uses letters, digits, `_` and `-`"
            )),
        );
    }
}

/// A step id or phase name: an identifier, or identifiers joined by `.` (the steps of a block
/// are `USES-ID.STEP-ID`).
fn check_namespaced(r: &mut Reporter, name: &Spanned<String>, what: &str) {
    if !name.value.split('.').all(is_identifier) {
        check_identifier(r, name, what);
    }
}

/// Names templates read as variables (`params.NAME`, `NAME.stdout`) cannot contain `-`.
fn check_variable_name(r: &mut Reporter, name: &Spanned<String>, what: &str) {
    let mut chars = name.value.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        r.report(
            Diagnostic::new(Code::InvalidValue, format!("invalid {what} `{}`", name.value))
                .primary(name.span, "not a valid variable name")
                .help(format!(
                    "templates read a {what} as a variable: start with a letter or `_` and use letters, digits and `_`"
                )),
        );
    }
}

/// Letters, digits, `_` and `-`, starting with a letter or `_`.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl Default for Spanned<String> {
    fn default() -> Self {
        Spanned::new(String::new(), Span::default())
    }
}
