//! `defaults:` at runbook, block and phase level: arguments, environment variables and
//! estimates given once for a module or a module family, merged under each step's own (see
//! docs/runbook-format.md, "Defaults"), as Ansible's `module_defaults`.
//!
//! The merge is a rewrite of the document's own tree, before its `uses:` are expanded: a step
//! ends up with the `with:`, `env:` and `estimate:` it would have had written out, the defaults'
//! nodes keeping their spans (a wrong default is reported where it is written). So everything
//! after this (blocks, the AST, the compiler, `plan`) sees ordinary steps. A block's defaults
//! apply to the block's own steps only, and a runbook's never reach into a block: a block is
//! self-contained, its users pass params.
//!
//! Precedence, first wins: the step's own value, the phase's defaults, the file's; inside one
//! scope an entry for the exact module before one for its family (`gtm` = every `gtm.*`).
//! A `with:` default fills only parameters the step's module declares, so a family default
//! never becomes an unknown-parameter error; a default that no module of its family declares is
//! one, located at the default.

use std::collections::BTreeSet;

use runbook_modules::Registry;

use crate::diagnostic::{Code, Diagnostic};
use crate::schema::Reporter;
use crate::yaml::{Node, NodeKind, ScalarStyle, Span};

/// YAML nodes the merge may copy into the steps of one file (the budget of block expansion).
pub const MAX_NODES: usize = super::blocks::MAX_NODES;

const DEFAULTS_KEYS: &[&str] = &["with", "env", "estimate"];

/// One scope's defaults: per module or family (the key as written), its entries.
#[derive(Default)]
struct Scope {
    with: Vec<(String, Vec<(Node, Node)>)>,
    env: Vec<(String, Vec<(Node, Node)>)>,
    estimate: Vec<(String, Node)>,
}

impl Scope {
    fn is_empty(&self) -> bool {
        self.with.is_empty() && self.env.is_empty() && self.estimate.is_empty()
    }
}

/// Whether a defaults key (`gtm`, `gtm.seqno`) applies to `module`, and how closely: 2 for the
/// module itself, 1 for its family.
fn rank(key: &str, module: &str) -> Option<u8> {
    if key == module {
        Some(2)
    } else if module.len() > key.len()
        && module.starts_with(key)
        && module.as_bytes()[key.len()] == b'.'
    {
        Some(1)
    } else {
        None
    }
}

struct Merger<'a> {
    r: &'a mut Reporter,
    registry: Registry,
    nodes: usize,
    over_budget: bool,
}

/// Merges the `defaults:` of a runbook or block document (`root`) and of its phases into its
/// steps, and reports every problem of the defaults themselves. `false` when the merge stopped
/// at [`MAX_NODES`] (then nothing else of the document is worth checking).
pub(crate) fn apply(root: &mut Node, r: &mut Reporter) -> bool {
    let has_defaults = |n: &Node| n.get("defaults").is_some();
    let phase_defaults = root
        .get("phases")
        .and_then(Node::as_seq)
        .is_some_and(|p| p.iter().any(has_defaults));
    if !has_defaults(root) && !phase_defaults {
        return true;
    }
    let mut m = Merger {
        r,
        registry: Registry::builtin(),
        nodes: 0,
        over_budget: false,
    };
    let file = root.get("defaults").map(|n| m.scope(n)).unwrap_or_default();
    if let Some(steps) = get_mut(root, "steps") {
        m.steps(steps, &[&file]);
    }
    if let Some(NodeKind::Seq(phases)) = get_mut(root, "phases").map(|n| &mut n.kind) {
        for phase in phases {
            if phase.get("uses").is_some() {
                continue;
            }
            let own = phase
                .get("defaults")
                .map(|n| m.scope(n))
                .unwrap_or_default();
            for key in ["steps", "on_failure", "always"] {
                if let Some(steps) = get_mut(phase, key) {
                    m.steps(steps, &[&own, &file]);
                }
            }
        }
    }
    !m.over_budget
}

impl Merger<'_> {
    /// Reads and checks one `defaults:` mapping.
    fn scope(&mut self, node: &Node) -> Scope {
        let d = self.r.reader(node, "`defaults`", DEFAULTS_KEYS);
        let mut scope = Scope::default();
        if let Some(n) = d.get("with") {
            scope.with = self.per_module(n, "defaults.with", true);
        }
        if let Some(n) = d.get("env") {
            scope.env = self.per_module(n, "defaults.env", false);
            for (_, vars) in &scope.env {
                for (name, _) in vars {
                    let valid = name
                        .as_str()
                        .is_some_and(crate::transport::wrapper::valid_env_name);
                    if !valid {
                        self.r.report(
                            Diagnostic::new(
                                Code::InvalidValue,
                                format!("invalid environment variable name `{name}`"),
                            )
                            .primary(name.span, "not a variable name")
                            .help("use letters, digits and `_`, starting with a letter or `_`"),
                        );
                    }
                }
            }
        }
        if let Some(n) = d.get("estimate") {
            for (key, value) in self.r.map(n, "defaults.estimate").unwrap_or(&[]) {
                let Some(target) = self.target(key) else {
                    continue;
                };
                if super::duration(self.r, value, "defaults.estimate").is_some() {
                    scope.estimate.push((target, value.clone()));
                }
            }
        }
        if scope.is_empty() && node.as_map().is_some_and(<[(Node, Node)]>::is_empty) {
            self.r.report(
                Diagnostic::new(Code::InvalidValue, "`defaults` is empty")
                    .primary(node.span, "no defaults")
                    .help("give `with:`, `env:` or `estimate:` per module or family, or remove it"),
            );
        }
        scope
    }

    /// `MODULE-OR-FAMILY: {NAME: VALUE, ...}`; with `params`, each name must be a parameter of
    /// the module or of at least one module of the family.
    fn per_module(
        &mut self,
        node: &Node,
        what: &str,
        params: bool,
    ) -> Vec<(String, Vec<(Node, Node)>)> {
        let mut out = Vec::new();
        for (key, value) in self.r.map(node, what).unwrap_or(&[]) {
            let Some(target) = self.target(key) else {
                continue;
            };
            let Some(entries) = self.r.map(value, &format!("{what}.{target}")) else {
                continue;
            };
            let mut kept = Vec::new();
            for (name, v) in entries {
                let Some(text) = self.r.string(name, what).map(|s| s.value) else {
                    continue;
                };
                if params && !self.declared_by(&target, &text) {
                    self.unknown_parameter(&target, &text, name.span);
                    continue;
                }
                kept.push((name.clone(), v.clone()));
            }
            out.push((target, kept));
        }
        out
    }

    /// A defaults key: a module name, or a family (`gtm` for every `gtm.*` module).
    fn target(&mut self, key: &Node) -> Option<String> {
        let name = self.r.string(key, "a module or module family")?.value;
        if self.registry.names().any(|m| rank(&name, m).is_some()) {
            return Some(name);
        }
        let families: BTreeSet<&str> = self
            .registry
            .names()
            .filter_map(|m| m.split_once('.').map(|(f, _)| f))
            .collect();
        let candidates: Vec<&str> = self.registry.names().chain(families).collect();
        let mut d = Diagnostic::new(
            Code::DefaultsUnknownModule,
            format!("defaults for `{name}`, which is no module and no module family"),
        )
        .primary(key.span, "no such module or family");
        d = match crate::suggest::closest(&name, candidates.iter().copied()) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help("name a module (`gtm.seqno`) or a family (`gtm`: every `gtm.*` module)"),
        };
        self.r.report(d);
        None
    }

    fn declared_by(&self, target: &str, param: &str) -> bool {
        self.registry
            .iter()
            .filter(|m| rank(target, m.name()).is_some())
            .any(|m| m.params().iter().any(|p| p.name == param))
    }

    fn unknown_parameter(&mut self, target: &str, param: &str, span: Span) {
        let declared: BTreeSet<&str> = self
            .registry
            .iter()
            .filter(|m| rank(target, m.name()).is_some())
            .flat_map(|m| m.params().iter().map(|p| p.name))
            .collect();
        let mut d = Diagnostic::new(
            Code::DefaultsUnknownParameter,
            format!("no module of `{target}` has a parameter `{param}`"),
        )
        .primary(span, "unknown parameter");
        d = match crate::suggest::closest(param, declared.iter().copied()) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help(format!(
                "the parameters of `{target}`: {}",
                declared.into_iter().collect::<Vec<_>>().join(", ")
            )),
        };
        self.r.report(d);
    }

    /// Merges `scopes` (innermost first) into every step of a list (`uses:` entries are
    /// blocks: their steps get their own file's defaults).
    fn steps(&mut self, list: &mut Node, scopes: &[&Scope]) {
        if scopes.iter().all(|s| s.is_empty()) {
            return;
        }
        let NodeKind::Seq(items) = &mut list.kind else {
            return;
        };
        for step in items {
            if self.over_budget {
                return;
            }
            if step.get("uses").is_some() || step.as_map().is_none() {
                continue;
            }
            let Some(module) = step.get("module").and_then(Node::as_str).map(str::to_owned) else {
                continue;
            };
            self.step(step, &module, scopes);
        }
    }

    fn step(&mut self, step: &mut Node, module: &str, scopes: &[&Scope]) {
        let declared: Option<BTreeSet<&'static str>> = self
            .registry
            .get(module)
            .map(|m| m.params().iter().map(|p| p.name).collect());
        let anchor = step.get("id").map_or(step.span, |n| n.span);
        // `with:`: only what the module declares (an unknown module is the compiler's error).
        if let Some(declared) = &declared {
            let found = ordered(scopes, module, |s| &s.with);
            let found: Vec<(Node, Node)> = found
                .into_iter()
                .filter(|(k, _)| k.as_str().is_some_and(|k| declared.contains(k)))
                .collect();
            self.merge(step, "with", found, anchor);
        }
        let found = ordered(scopes, module, |s| &s.env);
        self.merge(step, "env", found, anchor);
        if step.get("estimate").is_none() {
            let estimate = scopes.iter().find_map(|s| {
                s.estimate
                    .iter()
                    .filter_map(|(k, v)| rank(k, module).map(|r| (r, v)))
                    .max_by_key(|(r, _)| *r)
                    .map(|(_, v)| v.clone())
            });
            if let Some(v) = estimate {
                Self::push(step, "estimate", v, anchor);
            }
        }
    }

    /// Puts `found` under the step's `key` mapping (created when absent), the step's own
    /// entries winning; defaults go first, in the order they were written.
    fn merge(&mut self, step: &mut Node, key: &str, found: Vec<(Node, Node)>, anchor: Span) {
        if found.is_empty() {
            return;
        }
        if step.get(key).is_none() {
            Self::push(
                step,
                key,
                Node::new(NodeKind::Map(Vec::new()), anchor),
                anchor,
            );
        }
        let Some(target) = get_mut(step, key) else {
            return;
        };
        if target.is_null() {
            target.kind = NodeKind::Map(Vec::new());
        }
        let NodeKind::Map(own) = &mut target.kind else {
            // Not a mapping: the parser reports it; nothing is merged into it.
            return;
        };
        // As `{**defaults, **own}`: the defaults' order, a step's own value in its default's
        // place, then the step's other entries as written.
        let mut own: Vec<Option<(Node, Node)>> =
            std::mem::take(own).into_iter().map(Some).collect();
        let mut merged = Vec::new();
        for (k, v) in found {
            let name = k.as_str().unwrap_or_default();
            let mine = own
                .iter_mut()
                .find(|o| o.as_ref().is_some_and(|(o, _)| o.as_str() == Some(name)));
            if let Some(entry) = mine.and_then(Option::take) {
                merged.push(entry);
                continue;
            }
            self.nodes += size(&v) + 1;
            merged.push((k, v));
        }
        if self.nodes > MAX_NODES {
            self.over_budget = true;
            self.r.report(
                Diagnostic::new(
                    Code::DefaultsTooLarge,
                    format!("the defaults copy more than {MAX_NODES} YAML nodes into the steps"),
                )
                .primary(anchor, "the limit is crossed here")
                .help("keep defaults to a few scalars per module; no procedure needs this much"),
            );
        }
        merged.extend(own.into_iter().flatten());
        if let Some(NodeKind::Map(entries)) = get_mut(step, key).map(|n| &mut n.kind) {
            *entries = merged;
        }
    }

    fn push(step: &mut Node, key: &str, value: Node, anchor: Span) {
        if let NodeKind::Map(entries) = &mut step.kind {
            let k = Node::new(NodeKind::Scalar(key.to_owned(), ScalarStyle::Plain), anchor);
            entries.push((k, value));
        }
    }
}

/// The entries of `scopes` (innermost first) for `module`, each name once: the innermost
/// scope's, and inside a scope the module's own before its family's.
fn ordered<'s>(
    scopes: &[&'s Scope],
    module: &str,
    pick: impl Fn(&'s Scope) -> &'s Vec<(String, Vec<(Node, Node)>)>,
) -> Vec<(Node, Node)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for scope in scopes {
        let mut matching: Vec<(u8, &Vec<(Node, Node)>)> = pick(scope)
            .iter()
            .filter_map(|(k, entries)| rank(k, module).map(|r| (r, entries)))
            .collect();
        matching.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
        for (_, entries) in matching {
            for (k, v) in entries {
                let Some(name) = k.as_str() else { continue };
                if seen.insert(name.to_owned()) {
                    out.push((k.clone(), v.clone()));
                }
            }
        }
    }
    out
}

/// Nodes under `node`, itself included (an explicit stack: no recursion).
fn size(node: &Node) -> usize {
    let mut count = 0;
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        count += 1;
        match &n.kind {
            NodeKind::Seq(items) => stack.extend(items.iter()),
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

fn get_mut<'n>(node: &'n mut Node, key: &str) -> Option<&'n mut Node> {
    match &mut node.kind {
        NodeKind::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::ast::Step;
    use crate::diagnostic::Code;
    use crate::parse::blocks::BlockLoader;
    use crate::parse::{Parsed, parse_runbook_with};

    /// Blocks from memory, by the name `uses:` gives.
    struct Blocks(BTreeMap<&'static str, &'static str>);

    impl BlockLoader for Blocks {
        fn load(&self, _from: &str, uses: &str) -> Result<(String, String), String> {
            self.0
                .get(uses)
                .map(|t| (uses.to_owned(), (*t).to_owned()))
                .ok_or_else(|| format!("no block `{uses}`"))
        }
    }

    fn parse(text: &str, blocks: &[(&'static str, &'static str)]) -> Parsed {
        let loader = Blocks(blocks.iter().copied().collect());
        parse_runbook_with("rb.yaml", text.to_owned(), &loader)
    }

    fn steps(p: &Parsed) -> Vec<&Step> {
        let rb = p.runbook.as_ref().expect("the runbook parses");
        rb.phases.iter().flat_map(|ph| &ph.steps).collect()
    }

    fn step<'p>(p: &'p Parsed, id: &str) -> &'p Step {
        steps(p)
            .into_iter()
            .find(|s| s.id.value == id)
            .unwrap_or_else(|| panic!("no step `{id}`"))
    }

    /// `name=value` of a step's `with:` (or `env:`), in order.
    fn entries(list: &[(crate::schema::Spanned<String>, crate::yaml::Node)]) -> Vec<String> {
        list.iter()
            .map(|(k, v)| format!("{}={}", k.value, v.as_str().unwrap_or("?")))
            .collect()
    }

    fn codes(p: &Parsed) -> Vec<(Code, usize, usize)> {
        p.diagnostics
            .0
            .iter()
            .map(|d| {
                let (_, line, col) = d.location().expect("located");
                (d.code, line, col)
            })
            .collect()
    }

    const HEAD: &str =
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: t, version: 1.0.0}\n";

    #[test]
    fn a_family_default_fills_only_declared_parameters_and_the_step_wins_in_place() {
        let text = format!(
            "{HEAD}defaults:
  with:
    gtm: {{dir: /d, instance: I, gtm_dist: /old, region: '*'}}
    gtm.seqno: {{gtm_dist: /seqno}}
  env:
    shell: {{GTM_DIR: /d, gtm_dist: /old}}
  estimate: {{gtm: 5s, gtm.journal: 7s}}
steps:
  - id: role
    module: gtm.role
  - id: seqno
    module: gtm.seqno
  - id: journal
    module: gtm.journal
    with: {{gtm_dist: /new, noprevjnlfile: true}}
  - id: sh
    module: shell
    env: {{gtm_dist: /mine, EXTRA: x}}
    with: {{cmd: 'true'}}
    estimate: 2s
"
        );
        let p = parse(&text, &[]);
        assert!(p.diagnostics.0.is_empty(), "{:?}", p.diagnostics.0);
        // `region` is no parameter of gtm.role: not filled, and no error.
        assert_eq!(
            entries(&step(&p, "role").with),
            ["dir=/d", "instance=I", "gtm_dist=/old"]
        );
        // The module's own entry wins over its family's.
        assert_eq!(
            entries(&step(&p, "seqno").with),
            ["gtm_dist=/seqno", "dir=/d", "instance=I"]
        );
        // The step's own value in its default's place, its other entries after.
        assert_eq!(
            entries(&step(&p, "journal").with),
            [
                "dir=/d",
                "instance=I",
                "gtm_dist=/new",
                "region=*",
                "noprevjnlfile=true"
            ]
        );
        assert_eq!(
            entries(&step(&p, "sh").env),
            ["GTM_DIR=/d", "gtm_dist=/mine", "EXTRA=x"]
        );
        assert!(step(&p, "role").env.is_empty(), "env is per module too");
        let secs = |id| step(&p, id).estimate.map(|d| d.as_secs());
        assert_eq!(
            [secs("role"), secs("journal"), secs("sh")],
            [Some(5), Some(7), Some(2)]
        );
    }

    #[test]
    fn a_phase_default_wins_over_the_file_default() {
        let text = format!(
            "{HEAD}defaults: {{with: {{gtm: {{dir: /file, instance: I}}}}}}
phases:
  - name: one
    defaults: {{with: {{gtm: {{dir: /phase}}}}}}
    steps:
      - {{id: a, module: gtm.role}}
  - name: two
    steps:
      - {{id: b, module: gtm.role}}
"
        );
        let p = parse(&text, &[]);
        assert!(p.diagnostics.0.is_empty(), "{:?}", p.diagnostics.0);
        assert_eq!(entries(&step(&p, "a").with), ["dir=/phase", "instance=I"]);
        assert_eq!(entries(&step(&p, "b").with), ["dir=/file", "instance=I"]);
    }

    #[test]
    fn a_block_gets_its_own_defaults_only_and_the_runbooks_stop_at_uses() {
        let block = "apiVersion: runbook/v1
kind: Block
params: {dist: {type: path, required: true}}
defaults: {with: {gtm: {dir: /block, gtm_dist: '{{ params.dist }}'}}}
steps:
  - {id: seqno, module: gtm.seqno, with: {instance: I}}
";
        let text = format!(
            "{HEAD}defaults: {{with: {{gtm: {{dir: /runbook, instance: R}}}}}}
steps:
  - {{id: own, module: gtm.role}}
  - uses: b.yaml
    id: blk
    with: {{dist: /opt/x}}
"
        );
        let p = parse(&text, &[("b.yaml", block)]);
        assert!(p.diagnostics.0.is_empty(), "{:?}", p.diagnostics.0);
        assert_eq!(
            entries(&step(&p, "own").with),
            ["dir=/runbook", "instance=R"]
        );
        // The block's default, its param substituted; nothing of the runbook's.
        let blk = entries(&step(&p, "blk.seqno").with);
        assert_eq!(blk.len(), 3, "{blk:?}");
        assert_eq!(blk[0], "dir=/block");
        assert!(
            blk[1].starts_with("gtm_dist=") && blk[1].contains("/opt/x"),
            "{blk:?}"
        );
        assert_eq!(blk[2], "instance=I");
    }

    #[test]
    fn unknown_modules_families_and_parameters_are_located_at_the_default() {
        let text = format!(
            "{HEAD}defaults:
  with:
    gmt: {{dir: /d}}
    gtm: {{dri: /d}}
    gtm.role: {{region: x}}
  env:
    shel: {{A: b}}
    shell: {{1BAD: x}}
  estimate: {{gtm: soon}}
steps:
  - {{id: a, module: gtm.role}}
"
        );
        let p = parse(&text, &[]);
        let mut found = codes(&p);
        found.sort_by_key(|(_, line, col)| (*line, *col));
        assert_eq!(
            found,
            [
                (Code::DefaultsUnknownModule, 6, 5),
                (Code::DefaultsUnknownParameter, 7, 11),
                (Code::DefaultsUnknownParameter, 8, 16),
                (Code::DefaultsUnknownModule, 10, 5),
                (Code::InvalidValue, 11, 13),
                (Code::InvalidValue, 12, 19),
            ]
        );
        let help = |code| {
            p.diagnostics
                .0
                .iter()
                .find(|d| d.code == code)
                .and_then(|d| d.help.clone())
                .unwrap_or_default()
        };
        assert!(help(Code::DefaultsUnknownModule).contains("`gtm`"));
        assert!(help(Code::DefaultsUnknownParameter).contains("`dir`"));
    }

    #[test]
    fn a_block_default_error_names_the_block_file() {
        let block = "apiVersion: runbook/v1
kind: Block
defaults: {with: {gtm: {dri: /d}}}
steps:
  - {id: s, module: gtm.role}
";
        let text = format!("{HEAD}steps:\n  - {{uses: b.yaml, id: blk}}\n");
        let p = parse(&text, &[("b.yaml", block)]);
        let d = p
            .diagnostics
            .0
            .iter()
            .find(|d| d.code == Code::DefaultsUnknownParameter)
            .expect("the block's default is reported");
        assert_eq!(d.location(), Some(("b.yaml".to_owned(), 3, 25)));
        assert!(!d.related.is_empty(), "the chain of `uses:` is shown");
    }

    #[test]
    fn defaults_copied_past_the_budget_stop_the_parse_with_one_diagnostic() {
        let big: Vec<String> = (0..1000).map(|i| format!("x{i}")).collect();
        let mut text = format!(
            "{HEAD}defaults: {{env: {{shell: {{BIG: [{}]}}}}}}\nsteps:\n",
            big.join(", ")
        );
        for i in 0..=(super::MAX_NODES / 1000) {
            text.push_str("  - {id: s");
            text.push_str(&i.to_string());
            text.push_str(", module: shell, with: {cmd: 'true'}}\n");
        }
        let p = parse(&text, &[]);
        assert!(p.runbook.is_none());
        let found: Vec<Code> = p.diagnostics.0.iter().map(|d| d.code).collect();
        assert_eq!(found, [Code::DefaultsTooLarge]);
    }
}
