//! Ansible's `group_vars/` and `host_vars/` beside an inventory file.
//!
//! Read as Ansible's `host_group_vars` plugin reads them: for a group or host `NAME`, the
//! entries `NAME` (a file, or a directory whose files are read in name order, subdirectories
//! included), `NAME.yml`, `NAME.yaml` and `NAME.json`, in that order, a later file overriding an
//! earlier one. Only the groups and hosts the inventory defines (and `all`) are looked up, as
//! Ansible does. Each file is YAML (JSON included): a mapping of variables, or empty. Each
//! variable keeps its file and span, so a bad `ansible_port` in `group_vars/db.yml` is reported
//! there. Where they go in the precedence is [`super::draft::Draft::finish`]'s business.

use std::path::{Path, PathBuf};

use super::draft::{Draft, Vars};
use super::native::read_vars;
use crate::diagnostic::{Diagnostic, SourceFile};
use crate::schema::Reporter;

/// File name endings Ansible reads in a vars directory (`""`: no extension).
const EXTENSIONS: [&str; 4] = ["", "yml", "yaml", "json"];

/// Reads `group_vars/` and `host_vars/` in `dir` into `draft`; problems go to `r`.
pub(super) fn read(dir: &Path, draft: &mut Draft, r: &mut Reporter) {
    let mut groups: Vec<String> = draft.groups.keys().cloned().collect();
    groups.push("all".to_owned());
    for group in groups {
        let vars = read_entity(&dir.join("group_vars"), &group, "group", r);
        if !vars.is_empty() {
            draft.group_files.insert(group, vars);
        }
    }
    let hosts: Vec<String> = draft.hosts.iter().map(|h| h.name.clone()).collect();
    for host in hosts {
        let vars = read_entity(&dir.join("host_vars"), &host, "host", r);
        if !vars.is_empty() {
            draft.host_files.insert(host, vars);
        }
    }
}

/// The variables of one group or host, over all its files, later files winning.
fn read_entity(base: &Path, name: &str, what: &str, r: &mut Reporter) -> Vars {
    let mut vars = Vars::new();
    if !base.is_dir() {
        return vars;
    }
    let mut files = Vec::new();
    for ext in EXTENSIONS {
        let path = if ext.is_empty() {
            base.join(name)
        } else {
            base.join(format!("{name}.{ext}"))
        };
        if path.is_dir() {
            dir_files(&path, &mut files, 0);
        } else if path.is_file() {
            files.push(path);
        }
    }
    for file in files {
        vars.extend(read_file(
            &file,
            &format!("variables of {what} `{name}`"),
            r,
        ));
    }
    vars
}

/// How deep subdirectories of a vars directory are read.
const MAX_DEPTH: usize = 8;

/// The vars files in `dir` and below, in name order: hidden files and names ending in `~`
/// skipped, as Ansible skips them. Subdirectories are followed only when they are real
/// directories (not symbolic links, so a link to a parent cannot loop), to [`MAX_DEPTH`].
fn dir_files(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<(PathBuf, bool)> = entries
        .filter_map(Result::ok)
        .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir())))
        .collect();
    paths.sort();
    for (path, real_dir) in paths {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file_name.starts_with('.') || file_name.ends_with('~') {
            continue;
        }
        if real_dir {
            if depth < MAX_DEPTH {
                dir_files(&path, out, depth + 1);
            }
            continue;
        }
        if path.is_dir() {
            continue; // a symbolic link to a directory
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        if EXTENSIONS.contains(&ext.as_str()) {
            out.push(path);
        }
    }
}

/// One vars file: a mapping of variables (or nothing), each kept with its file.
fn read_file(path: &Path, what: &str, r: &mut Reporter) -> Vars {
    let text = match crate::input::read_text(path, "a vars file") {
        Ok(text) => text,
        Err(d) => {
            r.diagnostics.push(d);
            return Vars::new();
        }
    };
    let source = SourceFile::new(path.display().to_string(), text);
    let mut sub = Reporter::new(source.clone());
    let vars = match crate::yaml::parse(source.text()) {
        Ok(root) => read_vars(&mut sub, &root, what),
        Err(err) => {
            sub.report(Diagnostic::from(err));
            Vars::new()
        }
    };
    r.diagnostics.extend(sub.diagnostics.0);
    vars.into_iter()
        .map(|(k, mut v)| {
            v.file = Some(source.clone());
            (k, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::model::Inventory;

    fn write(dir: &std::path::Path, path: &str, text: &str) {
        let path = dir.join(path);
        fs_err::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs_err::write(path, text).expect("write");
    }

    /// `site` > `db` (child) > host `db1`; every level written in the inventory and in files.
    fn estate() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "hosts.yml",
            "all:\n  vars: {v_all_inv: inv, over: all-inv}\n  children:\n    site:\n      vars: {over: site-inv, site_inv: yes}\n      children:\n        db:\n          vars: {over: db-inv, db_only: inv}\n          hosts:\n            db1: {host_inv: inv}\n            db2:\n",
        );
        write(
            dir.path(),
            "group_vars/all.yml",
            "over: all-file\nall_file: 1\n",
        );
        write(dir.path(), "group_vars/site", "over: site-file\n");
        write(
            dir.path(),
            "group_vars/db/10-first.yml",
            "over: db-dir-1\ndb_only: dir\n",
        );
        write(
            dir.path(),
            "group_vars/db/20-second.yaml",
            "over: db-dir-2\n",
        );
        write(dir.path(), "group_vars/db/README.md", "not: read\n");
        write(dir.path(), "group_vars/db/.hidden.yml", "over: hidden\n");
        write(dir.path(), "group_vars/db.yml", "gtm_dir: /srv/gtm\n");
        write(dir.path(), "group_vars/nowhere.yml", "ignored: yes\n");
        write(
            dir.path(),
            "host_vars/db1.yaml",
            "over: db1-file\nhost_inv: file\n",
        );
        dir
    }

    #[test]
    fn group_and_host_vars_files_follow_ansibles_precedence() {
        let dir = estate();
        let inv = Inventory::load(&dir.path().join("hosts.yml")).expect("loads");
        let db1 = &inv.hosts[inv.host_id("db1").expect("db1")];
        let db2 = &inv.hosts[inv.host_id("db2").expect("db2")];
        // host_vars file > host in the inventory > group_vars of the child > of the parent >
        // group_vars/all > every group's inventory vars.
        assert_eq!(db1.vars["over"], json!("db1-file"));
        assert_eq!(db1.vars["host_inv"], json!("file"));
        assert_eq!(
            db2.vars["over"],
            json!("db-dir-2"),
            "a directory's files in order"
        );
        assert_eq!(
            db2.vars["db_only"],
            json!("dir"),
            "group_vars over the inventory's"
        );
        assert_eq!(db2.vars["gtm_dir"], json!("/srv/gtm"));
        assert_eq!(db2.vars["all_file"], json!(1));
        assert_eq!(db2.vars["v_all_inv"], json!("inv"));
        assert!(!db2.vars.contains_key("not") && !db2.vars.contains_key("ignored"));
    }

    #[test]
    fn a_link_to_a_parent_directory_does_not_loop() {
        let dir = estate();
        std::os::unix::fs::symlink(
            dir.path().join("group_vars"),
            dir.path().join("group_vars/db/loop"),
        )
        .expect("symlink");
        let inv = Inventory::load(&dir.path().join("hosts.yml")).expect("loads");
        let db2 = &inv.hosts[inv.host_id("db2").expect("db2")];
        assert_eq!(db2.vars["over"], json!("db-dir-2"));
    }

    #[test]
    fn ini_inventories_read_them_too() {
        let dir = estate();
        write(
            dir.path(),
            "hosts.ini",
            "[db]\ndb1\ndb2\n[site:children]\ndb\n",
        );
        let inv = Inventory::load(&dir.path().join("hosts.ini")).expect("loads");
        let db2 = &inv.hosts[inv.host_id("db2").expect("db2")];
        assert_eq!(db2.vars["over"], json!("db-dir-2"));
        assert_eq!(db2.vars["gtm_dir"], json!("/srv/gtm"));
    }

    #[test]
    fn problems_in_a_vars_file_are_located_in_it() {
        let dir = estate();
        write(
            dir.path(),
            "group_vars/site",
            "ansible_become: true\nansible_port: nope\n",
        );
        write(dir.path(), "host_vars/db2.yml", "ansible_password: x\n");
        let errors = Inventory::load(&dir.path().join("hosts.yml")).expect_err("refused");
        let located: Vec<(String, String)> = errors
            .iter()
            .map(|d| {
                (
                    d.code.as_str().to_owned(),
                    d.source
                        .as_ref()
                        .map(|s| s.name().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let site = dir.path().join("group_vars/site").display().to_string();
        let db2 = dir.path().join("host_vars/db2.yml").display().to_string();
        assert!(
            located.contains(&(
                "runbook::inventory::unsupported_variable".into(),
                site.clone()
            )),
            "{located:?}"
        );
        assert!(
            located.contains(&("runbook::inventory::invalid_host".into(), site)),
            "{located:?}"
        );
        assert!(
            located.contains(&("runbook::inventory::unsupported_variable".into(), db2)),
            "{located:?}"
        );
    }
}
