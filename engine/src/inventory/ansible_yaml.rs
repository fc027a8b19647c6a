//! Ansible's YAML inventory: `all:` with `hosts`, `children` and `vars`, nested to any depth.
//!
//! In this format a group is defined wherever it appears, and may appear under several
//! parents; every appearance adds to the same group, and a host listed twice gets the union of
//! its variables (later wins), as Ansible does. Other top-level keys are groups under `all`.

use super::ansible::expand_host_range;
use super::draft::Draft;
use super::native::{map_or_null, read_vars};
use crate::diagnostic::{Code, Diagnostic};
use crate::schema::{Reporter, Spanned};
use crate::yaml::{Node, Span};

const GROUP_KEYS: &[&str] = &["hosts", "children", "vars"];

/// Reads an Ansible YAML inventory. Returns what it found and where to point if it has no hosts.
pub(super) fn read(root: &Node, r: &mut Reporter) -> (Draft, Span) {
    let mut draft = Draft::default();
    let mut empty_span = Span::new(0, 0);
    for (key, value) in map_or_null(r, root, "an Ansible inventory").unwrap_or(&[]) {
        let Some(name) = r.string(key, "a group name") else {
            continue;
        };
        if name.value == "all" {
            empty_span = key.span;
        }
        group(r, &mut draft, &name, value);
    }
    (draft, empty_span)
}

fn group(r: &mut Reporter, draft: &mut Draft, name: &Spanned<String>, value: &Node) {
    // `all` holds the inventory-wide variables; its hosts and children need no membership.
    let is_all = name.value == "all";
    if !is_all {
        draft.group_mut(&name.value, name.span);
    }
    if value.is_null() {
        return;
    }
    let what = format!("group `{}`", name.value);
    let m = r.reader(value, &what, GROUP_KEYS);
    if let Some(hosts) = m.get("hosts") {
        for (key, vars) in map_or_null(r, hosts, &format!("`hosts` of {what}")).unwrap_or(&[]) {
            let Some(pattern) = r.string(key, "a host name") else {
                continue;
            };
            let names = match expand_host_range(&pattern.value) {
                Ok(names) => names,
                Err(message) => {
                    r.report(
                        Diagnostic::new(Code::InventoryInvalidHost, message)
                            .primary(key.span, "invalid host range")
                            .help("write a range as `name[01:10]` or `name[a:f]`"),
                    );
                    continue;
                }
            };
            let vars = read_vars(r, vars, &format!("variables of host `{}`", pattern.value));
            for host in names {
                draft.host_mut(&host, key.span).vars.extend(vars.clone());
                if !is_all {
                    draft
                        .group_mut(&name.value, name.span)
                        .hosts
                        .push(Spanned::new(host, key.span));
                }
            }
        }
    }
    if let Some(children) = m.get("children") {
        for (key, value) in
            map_or_null(r, children, &format!("`children` of {what}")).unwrap_or(&[])
        {
            let Some(child) = r.string(key, "a group name") else {
                continue;
            };
            if child.value == "all" {
                r.report(
                    Diagnostic::new(Code::InvalidValue, format!("{what} cannot contain `all`"))
                        .primary(key.span, "`all` is the parent of every group")
                        .help("move this to the top level"),
                );
                continue;
            }
            if !is_all {
                draft
                    .group_mut(&name.value, name.span)
                    .children
                    .push(child.clone());
            }
            group(r, draft, &child, value);
        }
    }
    if let Some(vars) = m.get("vars") {
        let vars = read_vars(r, vars, &format!("`vars` of {what}"));
        if is_all {
            draft.vars.extend(vars);
        } else {
            draft.group_mut(&name.value, name.span).vars.extend(vars);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::draft::testing::{located, names};
    use super::super::model::{Connection, Inventory, InventoryFormat};
    use crate::diagnostic::Code;

    const ESTATE: &str = r#"all:
  vars:
    x: all
    ansible_user: root
  hosts:
    solo:
  children:
    web:
      hosts:
        web[1:2].example.com:
          ansible_port: 2222
      vars: {x: web}
      children:
        canary:
          hosts:
            web1.example.com:
              x: host
    db:
      hosts:
        db1:
          ansible_host: 10.0.0.5
          ansible_connection: local
          ansible_ssh_private_key_file: /k
          ansible_ssh_extra_args: "-o ProxyJump=bastion -oConnectTimeout=3"
          runbook_roles: [primary, backup]
      vars:
        x: db
"#;

    #[test]
    fn nested_groups_ranges_and_connection_vars() {
        let inv = Inventory::parse("hosts.yml", ESTATE.into()).expect("valid");
        assert_eq!(inv.format, InventoryFormat::AnsibleYaml);
        let order: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            order,
            ["solo", "web1.example.com", "web2.example.com", "db1"]
        );
        assert_eq!(
            inv.vars,
            [
                ("ansible_user".into(), json!("root")),
                ("x".into(), json!("all"))
            ]
            .into()
        );

        let solo = &inv.hosts[0];
        assert_eq!(
            (solo.address.as_str(), solo.port, solo.user.as_deref()),
            ("solo", None, Some("root"))
        );
        assert!(solo.groups.is_empty());
        assert_eq!(solo.vars["x"], json!("all"));

        let web1 = &inv.hosts[1];
        assert_eq!(web1.port, Some(2222));
        assert_eq!(web1.groups, names(&["canary", "web"]));
        assert_eq!(
            web1.vars["x"],
            json!("host"),
            "a host's own vars beat every group"
        );
        assert_eq!(
            web1.vars["ansible_port"],
            json!(2222),
            "mapped keys stay in vars"
        );
        let web2 = &inv.hosts[2];
        assert_eq!(
            (web2.port, web2.vars["x"].clone()),
            (Some(2222), json!("web"))
        );
        assert_eq!(web2.groups, names(&["web"]));

        let db1 = &inv.hosts[3];
        assert_eq!(db1.address, "10.0.0.5");
        assert_eq!(db1.connection, Connection::Local);
        assert_eq!(db1.identity_file.as_deref(), Some("/k"));
        assert_eq!(
            db1.ssh_options,
            [
                ("ConnectTimeout".into(), "3".into()),
                ("ProxyJump".into(), "bastion".into())
            ]
            .into()
        );
        assert_eq!(db1.roles, names(&["backup", "primary"]));
        assert_eq!(db1.vars["x"], json!("db"));
        assert_eq!(db1.user.as_deref(), Some("root"));

        assert_eq!(inv.groups["web"].hosts, [1, 2]);
        assert_eq!(inv.groups["web"].children, names(&["canary"]));
        assert_eq!(inv.groups["canary"].hosts, [1]);
        assert_eq!(inv.groups["db"].hosts, [3]);
        assert_eq!(inv.role_members("primary"), [3]);
    }

    #[test]
    fn deeper_groups_win_then_alphabetical() {
        let text = r"all:
  vars: {v: all, w: all, u: all}
  children:
    zz:
      hosts: {h: }
      vars: {v: zz}
    mid:
      children:
        aa:
          hosts: {h: }
          vars: {v: aa}
    q:
      hosts: {h: }
      vars: {w: q}
    p:
      hosts: {h: }
      vars: {w: p}
";
        let inv = Inventory::parse("i.yaml", text.into()).expect("valid");
        let h = &inv.hosts[0];
        assert_eq!(
            h.vars["v"],
            json!("aa"),
            "depth 2 beats depth 1 whatever the names"
        );
        assert_eq!(
            h.vars["w"],
            json!("q"),
            "same depth: alphabetical, last wins"
        );
        assert_eq!(h.vars["u"], json!("all"));
        assert_eq!(h.groups, names(&["aa", "mid", "p", "q", "zz"]));
    }

    #[test]
    fn errors_point_at_their_source() {
        let text = r"all:
  hosts:
    bad[3:1]:
    ok:
      ansible_port: 0
  children:
    g:
      hostz: {}
      hosts: {m: }
      vars:
        ansible_connection: winrm
";
        let errs = Inventory::parse("i.yaml", text.into()).expect_err("invalid");
        assert_eq!(
            located(&errs),
            [
                (Code::InventoryInvalidHost, 3, 5),
                (Code::InventoryInvalidHost, 5, 21),
                (Code::UnknownKey, 8, 7),
                (Code::InvalidValue, 11, 29),
            ]
        );
        assert_eq!(errs[2].help.as_deref(), Some("did you mean `hosts`?"));
        assert_eq!(
            errs[3].message,
            "unsupported connection `winrm` for host `m`"
        );
    }

    #[test]
    fn group_cycles_in_yaml() {
        let text = "all:\n  children:\n    a:\n      hosts: {h: }\n      children:\n        b:\n          children:\n            a:\n";
        let errs = Inventory::parse("i.yaml", text.into()).expect_err("cycle");
        assert_eq!(located(&errs), [(Code::InventoryGroupCycle, 8, 13)]);
        assert_eq!(
            errs[0].message,
            "group `a` contains itself: `a` → `b` → `a`"
        );
    }
}
