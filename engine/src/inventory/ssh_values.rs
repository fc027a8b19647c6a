//! Inventory values that reach `ssh`: the address (its destination), the user (`-l`), the
//! identity file (`-i`) and `ssh_options` (lines of the per-host ssh config file, see
//! `transport/ssh.rs`).
//!
//! Nothing from an inventory may become an ssh option or a line of ssh configuration of its
//! own. So, at load time, in every format: an address or user that starts with `-` (ssh would
//! read it as an option), an address with anything but a host name's or IP address's
//! characters (`user@host` or `ssh://...` would change whom ssh logs in as), and any control
//! character (a newline in an option's value would add a config line, such as a
//! `ProxyCommand`) are refused, each at the value's own line and column. The transport puts
//! `--` before the destination as well, so an address that slipped through would still be a
//! host name.

use crate::diagnostic::{Code, Diagnostic};
use crate::schema::Reporter;
use crate::yaml::Span;

/// Which value: decides the rules and the words of the diagnostic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    Address,
    User,
    IdentityFile,
    OptionKey,
    OptionValue,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::User => "user",
            Self::IdentityFile => "identity file",
            Self::OptionKey => "ssh option",
            Self::OptionValue => "ssh option value",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Self::Address => {
                "give a host name or IP address (letters, digits, `.`, `-`, `_`, `:`), not starting with `-`; the user goes in `user` (Ansible: `ansible_user`), the port in `port`"
            }
            Self::User => {
                "a user name is letters, digits, `.`, `_`, `-` and `@`, and does not start with `-`"
            }
            Self::IdentityFile => {
                "give the key's path on one line; a relative path that starts with `-` can be written `./-key`"
            }
            Self::OptionKey => {
                "an ssh option is one ssh_config keyword such as `ServerAliveInterval` (see `man ssh_config`); `Host` and `Match` blocks cannot be opened from an inventory"
            }
            Self::OptionValue => {
                "an ssh option's value is one line of text without control characters"
            }
        }
    }
}

/// Why `value` cannot be given to ssh as `field`, or `None` when it can.
pub(super) fn problem(field: Field, value: &str) -> Option<String> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Some(format!(
            "it contains the control character {c:?}, which could end the ssh command line's or configuration's line and start another"
        ));
    }
    let leading_dash = "it starts with `-`, so ssh could read it as an option".to_owned();
    match field {
        Field::Address => {
            if value.starts_with('-') {
                return Some(leading_dash);
            }
            // `%` only as an IPv6 zone (`fe80::1%eth0`).
            let ipv6 = value.contains(':');
            let bad = value.chars().find(|&c| {
                !(c.is_ascii_alphanumeric()
                    || matches!(c, '.' | '-' | '_' | ':')
                    || (ipv6 && c == '%'))
            });
            bad.map(|c| match c {
                '@' => "it contains `@`: ssh would read `USER@HOST` and log in as another user".to_owned(),
                '/' => "it contains `/`: ssh would read `ssh://...` as a URI with its own user and port".to_owned(),
                c if c.is_whitespace() => "it contains a space, which is not part of a host name".to_owned(),
                c => format!("it contains `{c}`, which is not part of a host name or IP address"),
            })
        }
        Field::User => {
            if value.is_empty() {
                return Some("it is empty".to_owned());
            }
            if value.starts_with('-') {
                return Some(leading_dash);
            }
            value
                .chars()
                .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
                .map(|c| format!("it contains `{c}`, which ssh may expand in a `%r` token of a command (ProxyCommand, LocalCommand)"))
        }
        Field::IdentityFile => {
            if value.is_empty() {
                Some("it is empty".to_owned())
            } else if value.starts_with('-') {
                Some(leading_dash)
            } else {
                None
            }
        }
        Field::OptionKey => {
            let mut chars = value.chars();
            let keyword = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric());
            if !keyword {
                Some("it is not one ssh_config keyword (letters and digits)".to_owned())
            } else if value.eq_ignore_ascii_case("host") || value.eq_ignore_ascii_case("match") {
                Some(format!(
                    "`{value}` would open a block of its own, and the rest of the configuration would apply only inside it"
                ))
            } else {
                None
            }
        }
        Field::OptionValue => value
            .trim()
            .is_empty()
            .then(|| "it is empty: ssh needs a value for every option".to_owned()),
    }
}

/// Reports `value` at `span` when it cannot be given to ssh as `field` of host `host`.
pub(super) fn check(r: &mut Reporter, host: &str, field: Field, value: &str, span: Span) {
    let Some(why) = problem(field, value) else {
        return;
    };
    let shown: String = value
        .chars()
        .flat_map(char::escape_debug)
        .take(80)
        .collect();
    r.report(
        Diagnostic::new(
            Code::InventoryUnsafeSshValue,
            format!(
                "{} `{shown}` of host `{host}` is refused: {why}",
                field.name()
            ),
        )
        .primary(span, format!("this {} reaches ssh", field.name()))
        .help(field.help()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_like_and_multi_line_values_are_refused() {
        for (field, value) in [
            (Field::Address, "-oProxyCommand=touch /tmp/x"),
            (Field::Address, "-v"),
            (Field::Address, "root@db1"),
            (Field::Address, "ssh://root@db1:2222"),
            (Field::Address, "db1 -v"),
            (Field::Address, "db1\n"),
            (Field::Address, "db1%h"),
            (Field::User, "-oProxyCommand=x"),
            (Field::User, ""),
            (Field::User, "ops$(id)"),
            (Field::User, "ops\nx"),
            (Field::IdentityFile, "-F/tmp/evil"),
            (Field::IdentityFile, "/k\nProxyCommand x"),
            (Field::OptionKey, "ProxyCommand x\nUser"),
            (Field::OptionKey, "Host"),
            (Field::OptionKey, "match"),
            (Field::OptionKey, "-o"),
            (Field::OptionKey, ""),
            (Field::OptionValue, "5\nProxyCommand touch /tmp/x"),
            (Field::OptionValue, "yes\r"),
            (Field::OptionValue, "a\0b"),
            (Field::OptionValue, " "),
        ] {
            assert!(
                problem(field, value).is_some(),
                "{field:?} {value:?} is accepted"
            );
        }
    }

    #[test]
    fn ordinary_values_pass() {
        for (field, value) in [
            (Field::Address, "127.0.0.2"),
            (Field::Address, "db-1.example.com"),
            (Field::Address, "::1"),
            (Field::Address, "fe80::1%eth0"),
            (Field::Address, "my_host"),
            (Field::User, "gtm"),
            (Field::User, "first.last@CORP.EXAMPLE"),
            (Field::User, "svc-db_1"),
            (Field::IdentityFile, "~/.ssh/id_ed25519"),
            (Field::IdentityFile, "./-key"),
            (Field::IdentityFile, "/keys/with space"),
            (Field::OptionKey, "ServerAliveInterval"),
            (Field::OptionKey, "ProxyJump"),
            (Field::OptionValue, "ssh -W %h:%p bastion"),
            (Field::OptionValue, "\"/path with space/known_hosts\""),
        ] {
            assert_eq!(problem(field, value), None, "{field:?} {value:?}");
        }
    }
}
