//! Our own inventory format (`kind: Inventory`): connection settings are plain fields with
//! their types checked, instead of `ansible_*` variables, and roles are first-class.

use super::draft::{Draft, DraftHost, Var, Vars};
use super::model::Connection;
use super::ssh_values::{self, Field};
use crate::diagnostic::{Code, Diagnostic};
use crate::schema::{Reporter, Spanned};
use crate::yaml::{Node, Span};

const TOP_KEYS: &[&str] = &["kind", "vars", "hosts", "groups"];
const HOST_KEYS: &[&str] = &[
    "address",
    "port",
    "user",
    "connection",
    "ssh_options",
    "identity_file",
    "roles",
    "groups",
    "vars",
];
const GROUP_KEYS: &[&str] = &["hosts", "children", "vars"];
const CONNECTIONS: &[&str] = &["ssh", "local"];

/// Reads a native inventory. Returns what it found and where to point if it has no hosts.
pub(super) fn read(root: &Node, r: &mut Reporter) -> (Draft, Span) {
    let mut draft = Draft::default();
    if root.is_null() {
        return (draft, root.span);
    }
    let top = r.reader(root, "the inventory", TOP_KEYS);
    if let Some(kind) = top.get("kind").and_then(|n| r.string(n, "kind"))
        && kind.value != "Inventory"
    {
        r.report(
            Diagnostic::new(Code::Kind, format!("expected `kind: Inventory`, found `{}`", kind.value))
                .primary(kind.span, "wrong kind")
                .help("pass the runbook with `-f` and the inventory with `-i`; an inventory says `kind: Inventory` or nothing"),
        );
    }
    if let Some(vars) = top.get("vars") {
        draft.vars = read_vars(r, vars, "`vars`");
    }
    for (key, value) in top
        .get("hosts")
        .and_then(|n| map_or_null(r, n, "`hosts`"))
        .unwrap_or(&[])
    {
        host(r, &mut draft, key, value);
    }
    for (key, value) in top
        .get("groups")
        .and_then(|n| map_or_null(r, n, "`groups`"))
        .unwrap_or(&[])
    {
        group(r, &mut draft, key, value);
    }
    let empty_span = top.key("hosts").map_or(Span::new(0, 0), |k| k.span);
    (draft, empty_span)
}

/// A mapping's entries; a null (`hosts:` with nothing after it) is empty.
pub(super) fn map_or_null<'n>(
    r: &mut Reporter,
    node: &'n Node,
    what: &str,
) -> Option<&'n [(Node, Node)]> {
    if node.is_null() {
        Some(&[])
    } else {
        r.map(node, what)
    }
}

/// A `vars:` mapping, each value converted to JSON and kept with its span.
pub(super) fn read_vars(r: &mut Reporter, node: &Node, what: &str) -> Vars {
    let mut vars = Vars::new();
    for (key, value) in map_or_null(r, node, what).unwrap_or(&[]) {
        if let Some(name) = r.string(key, "a variable name") {
            vars.insert(
                name.value,
                Var {
                    value: value.to_json(),
                    span: value.span,
                    file: None,
                },
            );
        }
    }
    vars
}

fn host(r: &mut Reporter, draft: &mut Draft, key: &Node, value: &Node) {
    let Some(name) = r.string(key, "a host name") else {
        return;
    };
    let mut host = DraftHost {
        name: name.value.clone(),
        span: key.span,
        ..DraftHost::default()
    };
    if !value.is_null() {
        let what = format!("host `{}`", name.value);
        let m = r.reader(value, &what, HOST_KEYS);
        if let Some(address) = m.get("address").and_then(|n| r.string(n, "address")) {
            if address.value.trim().is_empty() {
                r.report(
                    Diagnostic::new(
                        Code::InventoryInvalidHost,
                        format!("host `{}` has an empty address", name.value),
                    )
                    .primary(address.span, "empty address")
                    .help("give a name or IP address, or remove `address` to use the host name"),
                );
            } else {
                ssh_values::check(r, &name.value, Field::Address, &address.value, address.span);
            }
            host.address = Some(address.value);
        }
        if let Some(node) = m.get("port")
            && let Some(port) = r.int(node, "port")
        {
            match u16::try_from(port) {
                Ok(p) if p > 0 => host.port = Some(p),
                _ => r.report(
                    Diagnostic::new(
                        Code::InventoryInvalidHost,
                        format!("invalid port `{port}` for host `{}`", name.value),
                    )
                    .primary(node.span, "not a port number")
                    .help("a port is a number from 1 to 65535"),
                ),
            }
        }
        if let Some(user) = m.get("user").and_then(|n| r.string(n, "user")) {
            ssh_values::check(r, &name.value, Field::User, &user.value, user.span);
            host.user = Some(user.value);
        }
        if let Some(file) = m
            .get("identity_file")
            .and_then(|n| r.string(n, "identity_file"))
        {
            ssh_values::check(r, &name.value, Field::IdentityFile, &file.value, file.span);
            host.identity_file = Some(file.value);
        }
        if let Some(connection) = m.get("connection").and_then(|n| r.string(n, "connection")) {
            host.connection = match connection.value.as_str() {
                "ssh" => Some(Connection::Ssh),
                "local" => Some(Connection::Local),
                other => {
                    let mut d = Diagnostic::new(
                        Code::InvalidValue,
                        format!("unknown connection `{other}` for host `{}`", name.value),
                    )
                    .primary(connection.span, "not `ssh` or `local`");
                    d = match crate::suggest::closest(other, CONNECTIONS.iter().copied()) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help("`connection` is `ssh` (the default) or `local`"),
                    };
                    r.report(d);
                    None
                }
            };
        }
        if let Some(options) = m
            .get("ssh_options")
            .and_then(|n| map_or_null(r, n, "`ssh_options`"))
        {
            for (k, v) in options {
                if let (Some(k), Some(v)) = (
                    r.string(k, "an ssh option"),
                    r.string(v, "an ssh option value"),
                ) {
                    ssh_values::check(r, &name.value, Field::OptionKey, &k.value, k.span);
                    ssh_values::check(r, &name.value, Field::OptionValue, &v.value, v.span);
                    host.ssh_options.insert(k.value, v.value);
                }
            }
        }
        host.roles = m
            .get("roles")
            .map(|n| r.string_or_list(n, "roles"))
            .unwrap_or_default();
        host.groups = m
            .get("groups")
            .map(|n| r.string_or_list(n, "groups"))
            .unwrap_or_default()
            .into_iter()
            // Every host is in `all` anyway.
            .filter(|g| g.value != "all")
            .collect();
        if let Some(vars) = m.get("vars") {
            host.vars = read_vars(r, vars, &format!("`vars` of {what}"));
        }
    }
    let slot = draft.host_mut(&name.value, key.span);
    *slot = host;
}

fn group(r: &mut Reporter, draft: &mut Draft, key: &Node, value: &Node) {
    let Some(name) = r.string(key, "a group name") else {
        return;
    };
    if name.value == "all" {
        r.report(
            Diagnostic::new(Code::InvalidValue, "`all` cannot be defined as a group")
                .primary(key.span, "`all` is implicit")
                .help(
                    "every host is in `all`; put variables for all hosts in the top-level `vars:`",
                ),
        );
        return;
    }
    let group = draft.group_mut(&name.value, key.span);
    if value.is_null() {
        return;
    }
    let what = format!("group `{}`", name.value);
    let m = r.reader(value, &what, GROUP_KEYS);
    group.hosts = m
        .get("hosts")
        .map(|n| r.string_or_list(n, "hosts"))
        .unwrap_or_default();
    let children: Vec<Spanned<String>> = m
        .get("children")
        .map(|n| r.string_or_list(n, "children"))
        .unwrap_or_default();
    for child in children {
        if child.value == "all" {
            r.report(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("group `{}` cannot contain `all`", name.value),
                )
                .primary(child.span, "`all` is the parent of every group")
                .help("remove `all` from `children`"),
            );
        } else {
            group.children.push(child);
        }
    }
    if let Some(vars) = m.get("vars") {
        group.vars = read_vars(r, vars, &format!("`vars` of {what}"));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::draft::testing::{located, names};
    use super::super::model::{Connection, Inventory, InventoryFormat};
    use crate::diagnostic::Code;

    const FULL: &str = r#"kind: Inventory
vars: {dist: /usr/lib/gtm, level: 0}
hosts:
  a:
    address: 127.0.0.2
    port: 2201
    user: gtm
    connection: ssh
    ssh_options: {ServerAliveInterval: "5"}
    identity_file: ~/.ssh/id_ed25519
    roles: [originating]
    groups: [site_a]
    vars: {instance_name: A, level: 3}
  b:
    roles: replicating
    groups: [extra, all]
  c:
    connection: local
groups:
  site_a:
    hosts: [c]
    children: [inner]
    vars: {level: 1, site: A}
  inner:
    hosts: [b]
    vars: {level: 2}
"#;

    #[test]
    fn every_field_is_read() {
        let inv = Inventory::parse("lab.yaml", FULL.into()).expect("valid inventory");
        assert_eq!(inv.format, InventoryFormat::Native);
        assert_eq!(
            inv.vars,
            [
                ("dist".into(), json!("/usr/lib/gtm")),
                ("level".into(), json!(0))
            ]
            .into()
        );
        let names_in_order: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names_in_order, ["a", "b", "c"]);

        let a = &inv.hosts[0];
        assert_eq!(
            (a.address.as_str(), a.port, a.user.as_deref()),
            ("127.0.0.2", Some(2201), Some("gtm"))
        );
        assert_eq!(a.connection, Connection::Ssh);
        assert_eq!(
            a.ssh_options,
            [("ServerAliveInterval".into(), "5".into())].into()
        );
        assert_eq!(a.identity_file.as_deref(), Some("~/.ssh/id_ed25519"));
        assert_eq!(a.roles, names(&["originating"]));
        assert_eq!(a.groups, names(&["site_a"]));
        // Host vars beat group vars, which beat inventory vars.
        assert_eq!(
            a.vars,
            [
                ("dist".into(), json!("/usr/lib/gtm")),
                ("instance_name".into(), json!("A")),
                ("level".into(), json!(3)),
                ("site".into(), json!("A")),
            ]
            .into()
        );

        let b = &inv.hosts[1];
        assert_eq!(
            (b.address.as_str(), b.port, b.user.as_deref()),
            ("b", None, None)
        );
        assert_eq!(b.roles, names(&["replicating"]));
        // Through `inner`, a child of `site_a`; `extra` is created by the mention; never `all`.
        assert_eq!(b.groups, names(&["extra", "inner", "site_a"]));
        // The child group (deeper) beats its parent.
        assert_eq!(b.vars["level"], json!(2));
        assert_eq!(b.vars["site"], json!("A"));

        let c = &inv.hosts[2];
        assert_eq!(c.connection, Connection::Local);
        assert_eq!(c.groups, names(&["site_a"]));
        assert_eq!(c.vars["level"], json!(1));

        assert_eq!(inv.groups["site_a"].hosts, [0, 1, 2]);
        assert_eq!(inv.groups["site_a"].children, names(&["inner"]));
        assert_eq!(inv.groups["site_a"].vars["site"], json!("A"));
        assert_eq!(inv.groups["inner"].hosts, [1]);
        assert_eq!(inv.groups["extra"].hosts, [1]);
        assert_eq!(inv.groups.len(), 3, "`all` is not stored");
        assert_eq!(inv.role_members("originating"), [0]);
        assert_eq!(
            inv.role_members("inner"),
            [1],
            "group membership counts as the role"
        );
        assert_eq!(&FULL[a.span.start..a.span.end], "a");
    }

    #[test]
    fn same_depth_groups_merge_alphabetically() {
        let text = "hosts:\n  h: {groups: [zeta, alpha]}\ngroups:\n  zeta: {vars: {x: zeta}}\n  alpha: {vars: {x: alpha, y: alpha}}\n";
        let inv = Inventory::parse("i.yaml", text.into()).expect("valid");
        assert_eq!(inv.hosts[0].vars["x"], json!("zeta"));
        assert_eq!(inv.hosts[0].vars["y"], json!("alpha"));
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let text = r#"hosts:
  a:
    port: 70000
    adress: x
  "bad name":
  b:
    address: ""
    connection: sssh
groups:
  g:
    hosts: [a, bb]
    children: [missing]
"#;
        let errs = Inventory::parse("i.yaml", text.into()).expect_err("invalid");
        assert_eq!(
            located(&errs),
            [
                (Code::InventoryInvalidHost, 3, 11),
                (Code::UnknownKey, 4, 5),
                (Code::InventoryInvalidHost, 5, 3),
                (Code::InventoryInvalidHost, 7, 14),
                (Code::InvalidValue, 8, 17),
                (Code::InventoryUnknownHost, 11, 16),
                (Code::InventoryUnknownGroup, 12, 16),
            ]
        );
        assert_eq!(errs[1].help.as_deref(), Some("did you mean `address`?"));
        assert_eq!(errs[4].help.as_deref(), Some("did you mean `ssh`?"));
        assert_eq!(errs[5].message, "group `g` names undefined host `bb`");
        assert_eq!(errs[5].help.as_deref(), Some("did you mean `b`?"));
        for e in &errs {
            assert!(e.help.is_some(), "{} has no help", e.message);
            assert!(!e.message.ends_with('.'), "{}", e.message);
        }
    }

    #[test]
    fn two_bad_ports_two_diagnostics() {
        let text = "hosts:\n  a: {port: 0}\n  b: {port: -1}\n  c: {port: abc}\n";
        let errs = Inventory::parse("i.yaml", text.into()).expect_err("invalid");
        assert_eq!(
            located(&errs),
            [
                (Code::InventoryInvalidHost, 2, 13),
                (Code::InventoryInvalidHost, 3, 13),
                (Code::WrongType, 4, 13),
            ]
        );
        assert_eq!(errs[0].message, "invalid port `0` for host `a`");
    }

    #[test]
    fn group_cycles_show_the_path() {
        let text = "hosts: {a: }\ngroups:\n  x:\n    children: [y]\n  y:\n    children: [z]\n  z:\n    children: [x]\n    hosts: [a]\n  w:\n    children: [w]\n";
        let errs = Inventory::parse("i.yaml", text.into()).expect_err("cycles");
        assert_eq!(
            located(&errs),
            [
                (Code::InventoryGroupCycle, 8, 16),
                (Code::InventoryGroupCycle, 11, 16)
            ]
        );
        assert_eq!(
            errs[0].message,
            "group `x` contains itself: `x` → `y` → `z` → `x`"
        );
        assert_eq!(errs[1].message, "group `w` contains itself: `w` → `w`");
    }

    #[test]
    fn empty_inventories_and_wrong_kind() {
        let errs =
            Inventory::parse("i.yaml", "kind: Inventory\nhosts: {}\n".into()).expect_err("empty");
        assert_eq!(located(&errs), [(Code::InventoryEmpty, 2, 1)]);
        let errs = Inventory::parse("i.yaml", String::new()).expect_err("empty");
        assert_eq!(located(&errs), [(Code::InventoryEmpty, 1, 1)]);
        let errs =
            Inventory::parse("i.yaml", "kind: Runbook\nhosts: {a: }\n".into()).expect_err("kind");
        assert_eq!(located(&errs), [(Code::Kind, 1, 7)]);
        let errs = Inventory::parse("i.yaml", "hosts: {a: }\ngroups: {all: }\n".into())
            .expect_err("all is implicit");
        assert_eq!(located(&errs), [(Code::InvalidValue, 2, 10)]);
    }
}
