//! What both Ansible formats share: host ranges and the `ansible_*` connection variables.
//!
//! Operators already keep their estate in an Ansible inventory; we read it as it is instead of
//! asking for a copy in our own format that would drift. Connection settings live in
//! variables there (`ansible_host`, `ansible_port`, ...), possibly inherited from a group, so
//! they are mapped onto [`Host`] fields only after variable precedence has been applied.

use serde_json::Value as Json;

use super::draft::{Var, Vars};
use super::model::{Connection, Host};
use super::ssh_values::{self, Field};
use crate::diagnostic::{Code, Diagnostic};
use crate::schema::Reporter;
use crate::yaml::Span;

/// The most hosts one range pattern may expand to; a typo like `[0:99999999]` is an error,
/// not a hang.
const MAX_RANGE_HOSTS: usize = 10_000;

/// Expands Ansible host ranges: `db[01:03].example.com`, `node[a:c]`, `x[0:10:2]`, several per
/// name. A name without `[` is returned as it is.
pub(super) fn expand_host_range(pattern: &str) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    let mut todo = vec![pattern.to_owned()];
    while let Some(name) = todo.pop() {
        let Some(open) = name.find('[') else {
            done.push(name);
            continue;
        };
        let close = name[open..]
            .find(']')
            .map(|i| open + i)
            .ok_or_else(|| format!("unclosed `[` in host range `{pattern}`"))?;
        let (head, range, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
        let expanded = expand_one(range).map_err(|e| format!("{e} in `{pattern}`"))?;
        if expanded.len().saturating_mul(todo.len() + done.len() + 1) > MAX_RANGE_HOSTS {
            return Err(format!(
                "host range `{pattern}` expands to more than {MAX_RANGE_HOSTS} hosts"
            ));
        }
        // Reversed so that popping keeps the natural order.
        todo.extend(
            expanded
                .iter()
                .rev()
                .map(|item| format!("{head}{item}{tail}")),
        );
    }
    Ok(done)
}

/// One `begin:end[:step]`, as Ansible's `expand_hostname_range` reads it.
fn expand_one(range: &str) -> Result<Vec<String>, String> {
    let bounds: Vec<&str> = range.split(':').collect();
    let (begin, end, step) = match bounds.as_slice() {
        [b, e] => (*b, *e, "1"),
        [b, e, s] => (*b, *e, *s),
        _ => return Err("a host range must be `[begin:end]` or `[begin:end:step]`".to_owned()),
    };
    let begin = if begin.is_empty() { "0" } else { begin };
    if end.is_empty() {
        return Err("a host range needs an end value".to_owned());
    }
    let step: usize = match step.parse() {
        Ok(s) if s > 0 => s,
        _ => return Err(format!("invalid host range step `{step}`")),
    };
    let letter = |s: &str| {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
            _ => None,
        }
    };
    if let (Some(b), Some(e)) = (letter(begin), letter(end)) {
        if b > e {
            return Err(format!("host range `{b}:{e}` goes backwards"));
        }
        return Ok((b..=e).step_by(step).map(String::from).collect());
    }
    let (Ok(b), Ok(e)) = (begin.parse::<u64>(), end.parse::<u64>()) else {
        return Err(format!("invalid host range `{range}`"));
    };
    if b > e {
        return Err(format!("host range `{begin}:{end}` goes backwards"));
    }
    if (e - b) / (step as u64) >= MAX_RANGE_HOSTS as u64 {
        return Err(format!(
            "host range `{range}` has more than {MAX_RANGE_HOSTS} values"
        ));
    }
    // `01:10` keeps the leading zero; then both ends must have the same width.
    let width = if begin.len() > 1 && begin.starts_with('0') {
        if begin.len() != end.len() {
            return Err(format!(
                "host range `{begin}:{end}` must have equal-width ends"
            ));
        }
        begin.len()
    } else {
        0
    };
    Ok((b..=e)
        .step_by(step)
        .map(|n| format!("{n:0width$}"))
        .collect())
}

/// Types an unquoted INI value the way Ansible's `literal_eval` does for simple literals.
pub(super) fn ini_value(text: &str) -> Json {
    match text {
        "True" | "true" => return Json::Bool(true),
        "False" | "false" => return Json::Bool(false),
        "None" => return Json::Null,
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let negative = text.starts_with('-');
    let int = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Python 3 rejects `010`; so do we, leaving it a string.
        if digits.len() > 1 && digits.starts_with('0') {
            None
        } else {
            digits.parse().ok()
        }
    } else {
        None
    };
    if let Some(i) = int {
        return Json::from(if negative { -i } else { i });
    }
    let float_like = digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if float_like
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Json::Number(n);
    }
    Json::String(text.to_owned())
}

/// Text of a scalar variable (numbers and booleans included), `None` for lists and maps.
fn scalar_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}

fn first<'v>(vars: &'v Vars, keys: &[&'static str]) -> Option<(&'static str, &'v Var)> {
    keys.iter().find_map(|k| vars.get(*k).map(|v| (*k, v)))
}

fn not_a_string(r: &mut Reporter, key: &str, var: &Var) {
    r.report(
        Diagnostic::new(Code::WrongType, format!("`{key}` must be a string"))
            .primary(var.span, "expected a string")
            .help(format!("write `{key}` as a plain value")),
    );
}

/// Sets the host's connection fields from its (merged) Ansible variables.
pub(super) fn apply_connection_vars(host: &mut Host, vars: &Vars, r: &mut Reporter) {
    // A variable may come from a `group_vars/` or `host_vars/` file: what is reported about it
    // (right after it is read, below) is located in that file. Restored at the end.
    let inventory_file = r.source.clone();
    let name = host.name.clone();
    let text = |r: &mut Reporter, keys: &[&'static str]| -> Option<(String, Span)> {
        let (key, var) = first(vars, keys)?;
        r.source = var.file.clone().unwrap_or_else(|| inventory_file.clone());
        let text = scalar_text(&var.value);
        if text.is_none() {
            not_a_string(r, key, var);
        }
        Some((text?, var.span))
    };

    if let Some((address, span)) = text(r, &["ansible_host", "ansible_ssh_host"]) {
        if address.trim().is_empty() {
            r.report(
                Diagnostic::new(
                    Code::InventoryInvalidHost,
                    format!("host `{name}` has an empty address"),
                )
                .primary(span, "empty `ansible_host`")
                .help(
                    "set `ansible_host` to a name or IP address, or remove it to use the host name",
                ),
            );
        } else {
            ssh_values::check(r, &name, Field::Address, &address, span);
            host.address = address;
        }
    }
    if let Some((port, span)) = text(r, &["ansible_port", "ansible_ssh_port"]) {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => host.port = Some(p),
            _ => r.report(
                Diagnostic::new(
                    Code::InventoryInvalidHost,
                    format!("invalid port `{port}` for host `{name}`"),
                )
                .primary(span, "not a port number")
                .help("a port is a number from 1 to 65535"),
            ),
        }
    }
    if let Some((user, span)) = text(r, &["ansible_user", "ansible_ssh_user"]) {
        ssh_values::check(r, &name, Field::User, &user, span);
        host.user = Some(user);
    }
    if let Some((key_file, span)) = text(
        r,
        &["ansible_ssh_private_key_file", "ansible_private_key_file"],
    ) {
        ssh_values::check(r, &name, Field::IdentityFile, &key_file, span);
        host.identity_file = Some(key_file);
    }
    if let Some((connection, span)) = text(r, &["ansible_connection"]) {
        match connection.as_str() {
            "local" => host.connection = Connection::Local,
            "ssh" | "smart" | "paramiko" => host.connection = Connection::Ssh,
            other => r.report(
                Diagnostic::new(Code::InvalidValue, format!("unsupported connection `{other}` for host `{name}`"))
                    .primary(span, "not `ssh` or `local`")
                    .help("runbook connects over `ssh` or runs `local`; set `ansible_connection` to one of them"),
            ),
        }
    }
    for key in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        if let Some((args, span)) = text(r, &[key]) {
            ssh_args(host, key, &args, span, r);
        }
    }
    if let Some(var) = vars.get("runbook_roles") {
        r.source = var.file.clone().unwrap_or_else(|| inventory_file.clone());
        roles(host, var, r);
    }
    r.source = inventory_file;
}

/// The `ansible_*` variables runbook reads ([`apply_connection_vars`]).
const HONOURED: [&str; 11] = [
    "ansible_host",
    "ansible_ssh_host",
    "ansible_port",
    "ansible_ssh_port",
    "ansible_user",
    "ansible_ssh_user",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
    "ansible_connection",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
];

/// `ansible_*` variables that change nothing runbook does, kept as plain variables without a
/// word (docs/inventory.md): interpreters (runbook runs no Python on the hosts), pipelining,
/// retries and timeouts of Ansible's own connection, and host-key checking (always strict).
fn ignored(key: &str) -> bool {
    key.ends_with("_interpreter")
        || matches!(
            key,
            "ansible_pipelining"
                | "ansible_ssh_pipelining"
                | "ansible_ssh_retries"
                | "ansible_timeout"
                | "ansible_ssh_timeout"
                | "ansible_host_key_checking"
                | "ansible_ssh_host_key_checking"
        )
}

/// Every other `ansible_*` variable would change how Ansible runs or reaches the host in a way
/// runbook does not follow (`ansible_become`, a password, a shell): refused where it is written,
/// never dropped without a word.
pub(super) fn check_unsupported(vars: &Vars, r: &mut Reporter) {
    for (key, var) in vars {
        if !key.starts_with("ansible_") || HONOURED.contains(&key.as_str()) || ignored(key) {
            continue;
        }
        let help = if key.starts_with("ansible_become")
            || key.starts_with("ansible_sudo")
            || key.starts_with("ansible_su")
        {
            "runbook runs each command as the ssh user and does not escalate: log in as the user the commands need (`ansible_user`), or write `sudo -n` in the step's command; then remove this variable"
        } else if key.contains("pass") {
            "runbook logs in with keys or an agent only (no password prompts): remove this variable and give `ansible_ssh_private_key_file` or load the key into ssh-agent"
        } else {
            "runbook reads only the connection variables listed in docs/inventory.md; remove this one, or rename it if a runbook reads it as a plain variable"
        };
        let d = Diagnostic::new(
            Code::InventoryUnsupportedVariable,
            format!("`{key}` is not supported by runbook"),
        )
        .primary(var.span, "Ansible would act on this; runbook would not")
        .help(help);
        match &var.file {
            Some(file) => r.diagnostics.push(d.in_file(file)),
            None => r.report(d),
        }
    }
}

/// `-o Key=Value`, `-oKey=Value`, `-o "Key Value"` and `-J jump` into `ssh_options`.
fn ssh_args(host: &mut Host, key: &str, args: &str, span: Span, r: &mut Reporter) {
    let bad = |r: &mut Reporter, what: String| {
        r.report(
            Diagnostic::new(Code::InvalidValue, format!("cannot read `{key}`: {what}"))
                .primary(span, "in these ssh arguments")
                .help("write ssh options as `-o Key=Value`; runbook passes them on with `ssh -o`"),
        );
    };
    let Some(words) = shlex::split(args) else {
        bad(r, "unbalanced quotes".to_owned());
        return;
    };
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let option = match word.as_str() {
            "-o" => words.next(),
            "-J" => words.next().map(|jump| format!("ProxyJump={jump}")),
            w if w.starts_with("-o") && w.len() > 2 => Some(w[2..].to_owned()),
            _ => {
                bad(r, format!("unsupported argument `{word}`"));
                return;
            }
        };
        let Some(option) = option else {
            bad(r, format!("`{word}` needs a value"));
            return;
        };
        let split = option
            .split_once('=')
            .or_else(|| option.trim().split_once(char::is_whitespace));
        match split {
            Some((k, v)) if !k.trim().is_empty() => {
                let name = host.name.clone();
                ssh_values::check(r, &name, Field::OptionKey, k.trim(), span);
                ssh_values::check(r, &name, Field::OptionValue, v.trim(), span);
                host.ssh_options
                    .insert(k.trim().to_owned(), v.trim().to_owned());
            }
            _ => {
                bad(r, format!("option `{option}` is not `Key=Value`"));
                return;
            }
        }
    }
}

/// `runbook_roles`: a list, or a comma-separated string (`[a, b]` tolerated, as INI writes it).
fn roles(host: &mut Host, var: &Var, r: &mut Reporter) {
    let names: Vec<String> = match &var.value {
        Json::Array(items) => {
            let names: Vec<String> = items.iter().filter_map(scalar_text).collect();
            if names.len() != items.len() {
                not_a_string(r, "runbook_roles", var);
            }
            names
        }
        Json::String(s) => s
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(|s| s.trim().trim_matches(['"', '\'']).to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        Json::Null => Vec::new(),
        _ => {
            r.report(
                Diagnostic::new(
                    Code::WrongType,
                    "`runbook_roles` must be a list or a comma-separated string",
                )
                .primary(var.span, "expected role names")
                .help("write `runbook_roles: [primary, backup]` or `runbook_roles=primary,backup`"),
            );
            Vec::new()
        }
    };
    for name in names {
        if super::draft::is_valid_name(&name) {
            host.roles.insert(name);
        } else {
            r.report(
                Diagnostic::new(Code::InvalidValue, format!("invalid role name `{name}`"))
                    .primary(var.span, "in `runbook_roles`")
                    .help("use letters, digits, `_`, `.` and `-`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ranges_expand_like_ansible() {
        assert_eq!(
            expand_host_range("db[01:03].example.com").expect("valid"),
            ["db01.example.com", "db02.example.com", "db03.example.com"]
        );
        assert_eq!(
            expand_host_range("n[a:c]").expect("valid"),
            ["na", "nb", "nc"]
        );
        assert_eq!(
            expand_host_range("x[0:6:3]").expect("valid"),
            ["x0", "x3", "x6"]
        );
        assert_eq!(
            expand_host_range("r[1:2]c[a:b]").expect("valid"),
            ["r1ca", "r1cb", "r2ca", "r2cb"]
        );
        assert_eq!(expand_host_range("plain").expect("valid"), ["plain"]);
        for bad in [
            "a[3:1]",
            "a[1:]",
            "a[01:3]",
            "a[1:2",
            "a[x]",
            "a[1:9:0]",
            "a[0:99999999]",
            "a[a:1]",
        ] {
            assert!(expand_host_range(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn ini_values_are_typed_like_literals() {
        assert_eq!(ini_value("42"), json!(42));
        assert_eq!(ini_value("-7"), json!(-7));
        assert_eq!(ini_value("2.5"), json!(2.5));
        assert_eq!(ini_value("True"), json!(true));
        assert_eq!(ini_value("false"), json!(false));
        assert_eq!(ini_value("None"), json!(null));
        assert_eq!(ini_value("010"), json!("010"));
        assert_eq!(ini_value("1.2.3"), json!("1.2.3"));
        assert_eq!(ini_value("inf"), json!("inf"));
        assert_eq!(ini_value("/usr/lib"), json!("/usr/lib"));
    }
}
