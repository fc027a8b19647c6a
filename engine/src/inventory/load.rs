//! Reading an inventory file: choosing the format, then parsing it into an [`Inventory`].
//!
//! The format is guessed from the file rather than given with a flag, so `-i hosts.ini`,
//! `-i inventory.yml` (Ansible) and `-i lab.yaml` (ours) all just work.

use std::path::Path;

use super::model::{Inventory, InventoryFormat};
use super::{ansible_yaml, ini, native};
use crate::diagnostic::{Code, Diagnostic, SourceFile};
use crate::schema::Reporter;
use crate::yaml::{self, Node, NodeKind, Span};

const INI_HINT: &str = "this looks like an Ansible INI inventory; name the file `*.ini`";

impl Inventory {
    /// Reads and parses the inventory at `path`; see [`Inventory::parse`].
    pub fn load(path: &Path) -> Result<Inventory, Vec<Diagnostic>> {
        match crate::input::read_text(path, "the inventory") {
            Ok(text) => {
                // An Ansible inventory's `group_vars/` and `host_vars/` are beside it.
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                Self::parse_in(&path.display().to_string(), text, Some(dir))
            }
            Err(d) => Err(vec![d]),
        }
    }

    /// Parses an inventory in any of the three formats (see docs/inventory.md). `name` is what
    /// diagnostics call the file, and its `.ini` extension selects the INI format. Every problem
    /// found is returned at once.
    pub fn parse(name: &str, text: String) -> Result<Inventory, Vec<Diagnostic>> {
        Self::parse_in(name, text, None)
    }

    /// [`Inventory::parse`], reading an Ansible inventory's `group_vars/` and `host_vars/` in
    /// `vars_dir` (docs/inventory.md, "group_vars and host_vars").
    pub fn parse_in(
        name: &str,
        text: String,
        vars_dir: Option<&Path>,
    ) -> Result<Inventory, Vec<Diagnostic>> {
        let source = SourceFile::new(name, text);
        let mut r = Reporter::new(source.clone());
        let text = source.text();
        if looks_like_ini(name, text) {
            let mut draft = ini::read(text, &mut r);
            if let Some(dir) = vars_dir {
                super::vars_files::read(dir, &mut draft, &mut r);
            }
            return draft.finish(InventoryFormat::AnsibleIni, r, Span::new(0, 0));
        }
        let root = match yaml::parse(text) {
            Ok(root) => root,
            Err(err) => {
                let mut d = Diagnostic::from(err);
                if text.lines().any(is_section_header) {
                    d = d.help(INI_HINT);
                }
                r.report(d);
                return Err(r.diagnostics.sorted());
            }
        };
        if !matches!(root.kind, NodeKind::Map(_) | NodeKind::Null) {
            r.report(
                Diagnostic::new(
                    Code::WrongType,
                    format!("an inventory must be a mapping, found {}", root.describe()),
                )
                .primary(root.span, "expected `hosts:` or Ansible's `all:`")
                .help(if text.lines().any(is_section_header) {
                    INI_HINT
                } else {
                    "see docs/inventory.md for the inventory formats"
                }),
            );
            return Err(r.diagnostics.sorted());
        }
        let (format, (mut draft, empty_span)) = if is_ansible_yaml(&root) {
            (
                InventoryFormat::AnsibleYaml,
                ansible_yaml::read(&root, &mut r),
            )
        } else {
            (InventoryFormat::Native, native::read(&root, &mut r))
        };
        if let (Some(dir), InventoryFormat::AnsibleYaml) = (vars_dir, format) {
            super::vars_files::read(dir, &mut draft, &mut r);
        }
        draft.finish(format, r, empty_span)
    }
}

/// INI when the name says so, or when the first line that is not blank or a comment is a
/// `[section]` header (which no YAML inventory starts with).
fn looks_like_ini(name: &str, text: &str) -> bool {
    if Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ini"))
    {
        return true;
    }
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(['#', ';']));
    first.is_some_and(is_section_header)
}

/// `[name]`, `[name:vars]`, ..., possibly followed by a comment; not a YAML flow sequence.
fn is_section_header(line: &str) -> bool {
    let header = line
        .trim()
        .split([' ', '\t', '#', ';'])
        .next()
        .unwrap_or_default();
    header.len() > 2
        && header.starts_with('[')
        && header.ends_with(']')
        && !header[1..header.len() - 1].contains([',', '[', ']', '{', '}', '"', '\''])
}

/// Ansible's YAML: a top-level `all:` and no `hosts:`.
fn is_ansible_yaml(root: &Node) -> bool {
    root.get("all").is_some() && root.get("hosts").is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_detection() {
        assert!(looks_like_ini("hosts.ini", "a: 1"));
        assert!(looks_like_ini("hosts", "# comment\n\n[web]\nw1\n"));
        assert!(looks_like_ini("hosts", "; c\n[web:vars] # c\nx=1\n"));
        assert!(!looks_like_ini("hosts.yaml", "[a, b]\n"));
        assert!(!looks_like_ini("hosts.yaml", "hosts:\n  a:\n"));
        assert!(
            !looks_like_ini("hosts", "web1\n[web]\n"),
            "first line decides"
        );
        let ansible = Inventory::parse("i.yaml", "all:\n  hosts:\n    a:\n".into()).expect("valid");
        assert_eq!(ansible.format, InventoryFormat::AnsibleYaml);
        let native = Inventory::parse("i.yaml", "hosts:\n  a:\n".into()).expect("valid");
        assert_eq!(native.format, InventoryFormat::Native);
        let ini = Inventory::parse("i", "[g]\na\n".into()).expect("valid");
        assert_eq!(ini.format, InventoryFormat::AnsibleIni);
        for text in ["h1 a=1\n[g]\nh2\n", "h1:\n[g]\nh2\n"] {
            let errs = Inventory::parse("hosts", text.into()).expect_err("read as YAML");
            assert!(
                matches!(errs[0].code, Code::YamlSyntax | Code::WrongType),
                "{text}"
            );
            assert_eq!(errs[0].help.as_deref(), Some(INI_HINT), "{text}");
        }
    }

    #[test]
    fn io_errors_are_diagnostics() {
        let errs = Inventory::load(Path::new("/nonexistent/inventory.yaml")).expect_err("missing");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].code, Code::Io);
        assert!(
            errs[0].message.contains("/nonexistent/inventory.yaml"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn not_a_mapping() {
        let errs = Inventory::parse("i.yaml", "- a\n- b\n".into()).expect_err("a list");
        assert_eq!(errs[0].code, Code::WrongType);
        assert_eq!(errs[0].location(), Some(("i.yaml".into(), 1, 1)));
        let errs = Inventory::parse("i.yaml", "hosts: {a: [\n".into()).expect_err("bad yaml");
        assert_eq!(errs[0].code, Code::YamlSyntax);
    }

    #[test]
    fn example_inventories_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory");
        for (file, format, hosts) in [
            ("lab.yaml", InventoryFormat::Native, 3),
            ("gtm-prod.yaml", InventoryFormat::Native, 4),
            ("iris-prod.yaml", InventoryFormat::Native, 4),
            ("ansible-hosts.ini", InventoryFormat::AnsibleIni, 4),
            ("ansible-hosts.yaml", InventoryFormat::AnsibleYaml, 4),
        ] {
            let inventory = Inventory::load(&dir.join(file)).unwrap_or_else(|errs| {
                panic!(
                    "{file}: {:?}",
                    errs.iter()
                        .map(|e| (&e.message, e.location()))
                        .collect::<Vec<_>>()
                )
            });
            assert_eq!(inventory.format, format, "{file}");
            assert_eq!(inventory.hosts.len(), hosts, "{file}");
        }
    }

    /// The two Ansible examples describe the same estate and must load identically.
    #[test]
    fn ansible_examples_agree() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory");
        let ini = Inventory::load(&dir.join("ansible-hosts.ini")).expect("ini loads");
        let yaml = Inventory::load(&dir.join("ansible-hosts.yaml")).expect("yaml loads");
        let summary = |inv: &Inventory| {
            inv.hosts
                .iter()
                .map(|h| {
                    (
                        h.name.clone(),
                        h.address.clone(),
                        h.port,
                        h.user.clone(),
                        h.roles.clone(),
                        h.groups.clone(),
                        h.vars.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(summary(&ini), summary(&yaml));
        assert_eq!(ini.vars, yaml.vars);
    }

    #[test]
    fn garbage_never_panics() {
        let inputs = [
            "",
            " ",
            "\n\n",
            "#",
            ";",
            "[",
            "]",
            "[]",
            "[:]",
            "[a:]",
            "[:vars]",
            "[a:b:c]",
            "[a]\n[",
            "[a]\n'",
            "[a]\nh x",
            "[a]\nh k='v",
            "[a]\nh[1:",
            "[a]\nh[9:1]",
            "[a:vars]\n=",
            "[a:vars]\nk='v' x",
            "[a:children]\nb c",
            "[a]\nh:99999999999",
            "[é]\nü=1",
            "[a]\nh \"\\",
            "hosts:",
            "hosts: [",
            "hosts: {a: {port: x}}",
            "all:",
            "all: [1]",
            "all: {hosts: [a]}",
            "all: {children: {b: {children: {all: }}}}",
            "{",
            "- - -",
            "hosts: {a: {vars: [1]}}",
            "groups: {g: {hosts: {x: y}}}",
            "kind: [",
            "hosts:\n  ? [a]\n  : b",
            "ümlaut: ☃",
            "\u{feff}hosts: {a: }",
            "hosts: {a: {port: 99999999999999999999}}",
            "all: {hosts: {'h[0:99999999]': }}",
            "hosts: &a {b: *a}",
            "\t",
            "hosts: {'': }",
            "all:\n  children:\n    x:\n      hosts:\n        'a[1:3': \n",
        ];
        for text in inputs {
            for name in ["g.yaml", "g.ini"] {
                let _ = Inventory::parse(name, text.to_owned());
            }
        }
        // Every truncation of a real inventory, at every character boundary.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory");
        for file in ["gtm-prod.yaml", "ansible-hosts.ini", "ansible-hosts.yaml"] {
            let text = std::fs::read_to_string(dir.join(file)).expect("example exists");
            for (i, _) in text.char_indices().step_by(7) {
                let _ = Inventory::parse(file, text[..i].to_owned());
            }
        }
    }
}
