//! Ansible's INI inventory: `[group]` sections of host lines, `[group:vars]` and
//! `[group:children]`.
//!
//! There is no INI crate that keeps byte offsets, and the format is line-based and small, so it
//! is read by hand; every error points at the exact bytes it is about. As in Ansible, a group is
//! declared by `[group]` or `[group:children]` anywhere in the file, while `[group:vars]` and a
//! `children` entry must name a group declared somewhere.

use std::collections::BTreeSet;

use super::ansible::{expand_host_range, ini_value};
use super::draft::{Draft, Var, Vars};
use crate::diagnostic::{Code, Diagnostic};
use crate::schema::{Reporter, Spanned};
use crate::yaml::Span;

const SECTION_KINDS: &[&str] = &["vars", "children"];

/// What the lines under the current header are.
enum Section {
    /// Host lines; `None` before any header and under `[all]`.
    Hosts(Option<String>),
    Vars(usize),
    Children(String),
    /// After a broken header: its lines are skipped rather than misread.
    Skip,
}

/// A `[group:vars]` section, applied once the whole file is read.
struct VarSection {
    group: Spanned<String>,
    vars: Vars,
}

/// A whitespace-separated word of a host line, quotes removed.
struct Word {
    text: String,
    span: Span,
    /// A quote appeared after the first `=`: the value is a string, whatever it looks like.
    value_quoted: bool,
}

fn syntax(r: &mut Reporter, span: Span, message: String, label: &str, help: &str) {
    r.report(
        Diagnostic::new(Code::InventoryIniSyntax, message)
            .primary(span, label)
            .help(help.to_owned()),
    );
}

pub(super) fn read(text: &str, r: &mut Reporter) -> Draft {
    let mut draft = Draft::default();
    let mut section = Section::Hosts(None);
    let mut var_sections: Vec<VarSection> = Vec::new();
    let mut declared: BTreeSet<String> = BTreeSet::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let line_start = offset;
        offset += raw.len();
        let content = raw.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        let at = line_start + (content.len() - content.trim_start().len());
        if trimmed.starts_with('[') {
            section = match header(trimmed, at) {
                Ok((name, kind)) => match (name.value.as_str(), kind) {
                    ("all", None) => Section::Hosts(None),
                    (_, None) => {
                        declared.insert(name.value.clone());
                        draft.group_mut(&name.value, name.span);
                        Section::Hosts(Some(name.value))
                    }
                    (_, Some("vars")) => {
                        var_sections.push(VarSection {
                            group: name,
                            vars: Vars::new(),
                        });
                        Section::Vars(var_sections.len() - 1)
                    }
                    (_, Some(_)) => {
                        declared.insert(name.value.clone());
                        if name.value != "all" {
                            draft.group_mut(&name.value, name.span);
                        }
                        Section::Children(name.value)
                    }
                },
                Err((span, message, label, help)) => {
                    syntax(r, span, message, label, help);
                    Section::Skip
                }
            };
            continue;
        }
        let line = &text[at..at + trimmed.len()];
        match &section {
            Section::Hosts(group) => host_line(r, &mut draft, group.as_deref(), line, at),
            Section::Vars(index) => {
                if let Some((key, var)) = var_line(r, line, at) {
                    var_sections[*index].vars.insert(key, var);
                }
            }
            Section::Children(parent) => {
                let name = strip_comment(line);
                if name.contains(char::is_whitespace) {
                    syntax(
                        r,
                        Span::new(at, at + name.len()),
                        format!("expected one group name, found `{name}`"),
                        "one group name per line",
                        "list each child group on its own line under `[group:children]`",
                    );
                } else if parent != "all" && name != "all" {
                    let child = Spanned::new(name.to_owned(), Span::new(at, at + name.len()));
                    draft.group_mut(parent, child.span).children.push(child);
                }
            }
            Section::Skip => {}
        }
    }
    for VarSection { group, vars } in var_sections {
        if group.value == "all" {
            draft.vars.extend(vars);
        } else if declared.contains(&group.value) {
            draft.group_mut(&group.value, group.span).vars.extend(vars);
        } else {
            let mut d = Diagnostic::new(
                Code::InventoryUnknownGroup,
                format!(
                    "`[{}:vars]` is for undefined group `{}`",
                    group.value, group.value
                ),
            )
            .primary(group.span, "no group of this name");
            d = match crate::suggest::closest(&group.value, declared.iter().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help("declare the group with a `[group]` section of hosts"),
            };
            r.report(d);
        }
    }
    draft
}

type HeaderError = (Span, String, &'static str, &'static str);

/// `[name]`, `[name:vars]` or `[name:children]`, trailing comment allowed.
fn header(line: &str, at: usize) -> Result<(Spanned<String>, Option<&str>), HeaderError> {
    let whole = Span::new(at, at + line.len());
    let Some(close) = line.find(']') else {
        return Err((
            whole,
            "unclosed section header".into(),
            "no `]`",
            "write a section as `[group]`",
        ));
    };
    let rest = &line[close + 1..];
    let after = rest.trim_start();
    if !after.is_empty() && !after.starts_with(['#', ';']) {
        let start = at + close + 1 + (rest.len() - after.len());
        return Err((
            Span::new(start, at + line.len()),
            format!("unexpected `{after}` after the section header"),
            "unexpected text",
            "put nothing but a comment after `]`",
        ));
    }
    let inner = &line[1..close];
    let (name, kind) = match inner.split_once(':') {
        Some((name, kind)) => (name, Some(kind)),
        None => (inner, None),
    };
    let name_span = Span::new(at + 1, at + 1 + name.len());
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return Err((
            name_span,
            format!("invalid group name `{name}` in section header"),
            "expected a group name",
            "write a section as `[group]`, `[group:vars]` or `[group:children]`",
        ));
    }
    if let Some(kind) = kind
        && !SECTION_KINDS.contains(&kind)
    {
        let start = at + 1 + name.len() + 1;
        return Err((
            Span::new(start, start + kind.len()),
            format!("unknown section type `{kind}`"),
            "expected `vars` or `children`",
            "a section is `[group]`, `[group:vars]` or `[group:children]`",
        ));
    }
    Ok((Spanned::new(name.to_owned(), name_span), kind))
}

/// `host [key=value ...]`, where host may be a range and may end in `:port`.
fn host_line(r: &mut Reporter, draft: &mut Draft, group: Option<&str>, line: &str, at: usize) {
    let words = match words(line, at) {
        Ok(words) => words,
        Err(span) => {
            return syntax(
                r,
                span,
                "unterminated quote".into(),
                "this quote is never closed",
                "close the quote, or escape it with `\\` inside double quotes",
            );
        }
    };
    let Some((first, rest)) = words.split_first() else {
        return;
    };
    let mut vars = Vars::new();
    let mut pattern = first.text.as_str();
    // `host:2222`; the `:` inside a range like `db[1:3]` is not a port.
    if let Some((name, port)) = pattern.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        let digits = Span::new(first.span.end - port.len(), first.span.end);
        vars.insert(
            "ansible_port".into(),
            Var {
                value: ini_value(port),
                span: digits,
                file: None,
            },
        );
        pattern = name;
    }
    let mut ok = true;
    for word in rest {
        match word.text.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                let value = if word.value_quoted {
                    value.into()
                } else {
                    ini_value(value)
                };
                vars.insert(
                    key.to_owned(),
                    Var {
                        value,
                        span: word.span,
                        file: None,
                    },
                );
            }
            _ => {
                ok = false;
                syntax(
                    r,
                    word.span,
                    format!("expected `key=value`, found `{}`", word.text),
                    "not a variable",
                    "write host variables as `key=value` after the host name; one host per line",
                );
            }
        }
    }
    let names = match expand_host_range(pattern) {
        Ok(names) => names,
        Err(message) => {
            return syntax(
                r,
                first.span,
                message,
                "invalid host range",
                "write a range as `name[01:10]` or `name[a:f]`",
            );
        }
    };
    if !ok {
        return;
    }
    for name in names {
        draft.host_mut(&name, first.span).vars.extend(vars.clone());
        if let Some(group) = group {
            draft
                .group_mut(group, first.span)
                .hosts
                .push(Spanned::new(name, first.span));
        }
    }
}

/// Splits a host line into words, shell-style; `#` at the start of a word ends the line.
/// On an unterminated quote, returns the quote's span.
fn words(line: &str, at: usize) -> Result<Vec<Word>, Span> {
    let mut words = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, first)) = chars.peek() else {
            break;
        };
        if first == '#' {
            break;
        }
        let mut word = Word {
            text: String::new(),
            span: Span::default(),
            value_quoted: false,
        };
        let mut seen_eq = false;
        let mut end = line.len();
        while let Some((i, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
            match c {
                '\'' | '"' => {
                    word.value_quoted |= seen_eq;
                    let mut closed = false;
                    while let Some((_, q)) = chars.next() {
                        if q == c {
                            closed = true;
                            break;
                        }
                        if c == '"' && q == '\\' {
                            if let Some((_, escaped)) = chars.next() {
                                word.text.push(escaped);
                            }
                            continue;
                        }
                        word.text.push(q);
                    }
                    if !closed {
                        return Err(Span::new(at + i, at + i + 1));
                    }
                }
                _ => {
                    seen_eq |= c == '=';
                    word.text.push(c);
                }
            }
            end = chars.peek().map_or(line.len(), |&(j, _)| j);
        }
        word.span = Span::new(at + start, at + end);
        words.push(word);
    }
    Ok(words)
}

/// A line with its trailing ` # comment` removed.
fn strip_comment(line: &str) -> &str {
    let cut = line
        .char_indices()
        .find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with(char::is_whitespace)))
        .map_or(line.len(), |(i, _)| i);
    line[..cut].trim_end()
}

/// `key = value` in a `[group:vars]` section; a quoted value stays a string.
fn var_line(r: &mut Reporter, line: &str, at: usize) -> Option<(String, Var)> {
    let Some((key, rest)) = line.split_once('=') else {
        syntax(
            r,
            Span::new(at, at + line.len()),
            format!("expected `key=value`, found `{line}`"),
            "not a variable",
            "write one `key=value` per line in a `[group:vars]` section",
        );
        return None;
    };
    let key = key.trim_end();
    if key.is_empty() || key.contains(char::is_whitespace) {
        syntax(
            r,
            Span::new(at, at + key.len()),
            format!("invalid variable name `{key}`"),
            "not a variable name",
            "a variable name has no spaces",
        );
        return None;
    }
    let value_start = at + line.len() - rest.trim_start().len();
    let rest = rest.trim_start();
    let value = if let Some(quote) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) {
        let Some(close) = rest[1..].find(quote) else {
            syntax(
                r,
                Span::new(value_start, value_start + 1),
                "unterminated quote".into(),
                "this quote is never closed",
                "close the quote",
            );
            return None;
        };
        let after = rest[close + 2..].trim_start();
        if !after.is_empty() && !after.starts_with(['#', ';']) {
            let start = value_start + rest.len() - after.len();
            syntax(
                r,
                Span::new(start, start + after.len()),
                format!("unexpected `{after}` after the quoted value"),
                "unexpected text",
                "quote the whole value",
            );
            return None;
        }
        Var {
            value: rest[1..=close].into(),
            span: Span::new(value_start, value_start + close + 2),
            file: None,
        }
    } else {
        let text = strip_comment(rest);
        Var {
            value: ini_value(text),
            span: Span::new(value_start, value_start + text.len()),
            file: None,
        }
    };
    Some((key.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::draft::testing::{located, names};
    use super::super::model::{Connection, Inventory, InventoryFormat};
    use crate::diagnostic::Code;

    const ESTATE: &str = r#"# estate
lonely ansible_connection=local
[web]
web[01:02].example.com ansible_user=deploy http_port=8080 note="a b" quoted='42' flag=True ratio=0.5
db1:2201 ansible_host=10.0.0.9  # a comment

[db]
db1 runbook_roles=primary,backup

[web:vars]
tier = frontend   # comment
http_port=80

[prod:children]
web
db

[prod:vars]
env="prod"
ansible_ssh_common_args=-o StrictHostKeyChecking=yes

[all:vars]
env=none
"#;

    #[test]
    fn sections_ranges_and_typed_values() {
        let inv = Inventory::parse("hosts.ini", ESTATE.into()).expect("valid");
        assert_eq!(inv.format, InventoryFormat::AnsibleIni);
        let order: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            order,
            ["lonely", "web01.example.com", "web02.example.com", "db1"]
        );
        assert_eq!(inv.vars, [("env".into(), json!("none"))].into());

        let lonely = &inv.hosts[0];
        assert_eq!(lonely.connection, Connection::Local);
        assert!(lonely.groups.is_empty());
        assert_eq!(lonely.vars["env"], json!("none"));

        let web = &inv.hosts[1];
        assert_eq!(
            (web.address.as_str(), web.port, web.user.as_deref()),
            ("web01.example.com", None, Some("deploy"))
        );
        assert_eq!(web.groups, names(&["prod", "web"]));
        assert_eq!(
            web.vars["http_port"],
            json!(8080),
            "host line beats `[web:vars]`"
        );
        assert_eq!(web.vars["note"], json!("a b"));
        assert_eq!(web.vars["quoted"], json!("42"), "quoted stays a string");
        assert_eq!(web.vars["flag"], json!(true));
        assert_eq!(web.vars["ratio"], json!(0.5));
        assert_eq!(web.vars["tier"], json!("frontend"));
        assert_eq!(web.vars["env"], json!("prod"), "a group beats `all`");
        assert_eq!(
            web.ssh_options,
            [("StrictHostKeyChecking".into(), "yes".into())].into()
        );
        assert_eq!(inv.hosts[2].vars["http_port"], json!(8080));

        let db1 = &inv.hosts[3];
        assert_eq!((db1.address.as_str(), db1.port), ("10.0.0.9", Some(2201)));
        assert_eq!(db1.roles, names(&["backup", "primary"]));
        assert_eq!(db1.groups, names(&["db", "prod", "web"]));
        assert_eq!(db1.vars["http_port"], json!(80));
        assert_eq!(db1.vars["runbook_roles"], json!("primary,backup"));

        assert_eq!(inv.groups["prod"].hosts, [1, 2, 3]);
        assert_eq!(inv.groups["prod"].children, names(&["db", "web"]));
        assert_eq!(inv.groups["web"].vars["tier"], json!("frontend"));
        let span = inv.hosts[1].span;
        assert_eq!(&ESTATE[span.start..span.end], "web[01:02].example.com");
    }

    #[test]
    fn precedence_by_depth_then_name() {
        let text = "[zz]\nh\n[mid:children]\naa\n[aa]\nh\n[q]\nh\n[p]\nh\n[zz:vars]\nv=zz\n[aa:vars]\nv=aa\n[p:vars]\nw=p\n[q:vars]\nw=q\n[all:vars]\nv=all\nw=all\nu=all\n";
        let inv = Inventory::parse("hosts.ini", text.into()).expect("valid");
        let h = &inv.hosts[0];
        assert_eq!(h.vars["v"], json!("aa"));
        assert_eq!(h.vars["w"], json!("q"));
        assert_eq!(h.vars["u"], json!("all"));
        assert_eq!(h.groups, names(&["aa", "mid", "p", "q", "zz"]));
    }

    #[test]
    fn syntax_errors_point_into_the_ini_text() {
        let text = "[web\n[db:kids]\nh1\n[g]\nh2 novalue\nh3 x='unterminated\nbad[5:1]\n[nope:vars]\na=1\n[g:children]\nmissing\n[ok]\nfine ansible_port=99999\n";
        let errs = Inventory::parse("hosts.ini", text.into()).expect_err("invalid");
        assert_eq!(
            located(&errs),
            [
                (Code::InventoryIniSyntax, 1, 1),
                (Code::InventoryIniSyntax, 2, 5),
                (Code::InventoryIniSyntax, 5, 4),
                (Code::InventoryIniSyntax, 6, 6),
                (Code::InventoryIniSyntax, 7, 1),
                (Code::InventoryUnknownGroup, 8, 2),
                (Code::InventoryUnknownGroup, 11, 1),
                (Code::InventoryInvalidHost, 13, 6),
            ]
        );
        assert_eq!(errs[1].message, "unknown section type `kids`");
        assert_eq!(errs[2].message, "expected `key=value`, found `novalue`");
        assert_eq!(
            errs[5].message,
            "`[nope:vars]` is for undefined group `nope`"
        );
    }

    #[test]
    fn no_hosts_is_an_error() {
        let errs = Inventory::parse("hosts.ini", "[g]\n".into()).expect_err("empty");
        assert_eq!(located(&errs), [(Code::InventoryEmpty, 1, 1)]);
        // With another error, "no hosts" would only repeat it.
        let errs = Inventory::parse("hosts.ini", "[g:vars]\n".into()).expect_err("empty");
        assert_eq!(located(&errs), [(Code::InventoryUnknownGroup, 1, 2)]);
    }
}
