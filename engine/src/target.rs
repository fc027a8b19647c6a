//! Target selectors: the `on:` strings that say which hosts a step runs on.
//!
//! A runbook names hosts by what they do (`primary`), not what they are called, so the same
//! runbook runs against the lab and production inventories. A selector is parsed once into a
//! small AST ([`Selector`]), which the compiler can inspect for role references
//! ([`Selector::terms`]) and [`resolve`](Selector::resolve) against an inventory.
//!
//! ```text
//! expr    := and (('|' | ',') and)*        union
//! and     := unary ('&' unary)*            intersection
//! unary   := '!' unary | primary           complement, relative to all hosts
//! primary := '(' expr ')' | term
//! term    := [ ('role' | 'group' | 'host') ':' ] NAME     NAME: [A-Za-z0-9_.*-]+
//! ```
//!
//! A bare NAME is a declared role if there is one, else a group (`all` is every host), else a
//! host; a glob (`*`) matches host names only. See docs/inventory.md.

mod parse;
mod resolve;

use std::fmt;
use std::ops::Range;

pub use parse::SelectorError;
pub use resolve::ResolveError;

/// A parsed target selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    expr: Expr,
}

/// The selector's syntax tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Term(Term),
    /// Every host not selected by the operand.
    Not(Box<Expr>),
    /// Hosts selected by every operand (two or more).
    And(Vec<Expr>),
    /// Hosts selected by any operand (two or more).
    Or(Vec<Expr>),
}

/// One name, possibly with a `role:`, `group:` or `host:` prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    pub kind: Option<TermKind>,
    pub name: String,
    /// Byte range of the name (without its prefix) in the selector text.
    pub range: Range<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermKind {
    Role,
    Group,
    Host,
}

impl TermKind {
    pub const NAMES: &[&str] = &["role", "group", "host"];

    pub fn as_str(self) -> &'static str {
        match self {
            TermKind::Role => "role",
            TermKind::Group => "group",
            TermKind::Host => "host",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "role" => Some(TermKind::Role),
            "group" => Some(TermKind::Group),
            "host" => Some(TermKind::Host),
            _ => None,
        }
    }
}

impl Selector {
    /// Parses a selector; the error's range is a byte range within `text`.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        parse::parse(text).map(|expr| Selector { expr })
    }

    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Every term, left to right: its kind prefix if written, its name, and the name's range.
    pub fn terms(&self) -> impl Iterator<Item = (Option<&str>, &str, Range<usize>)> {
        fn collect<'a>(expr: &'a Expr, out: &mut Vec<&'a Term>) {
            match expr {
                Expr::Term(term) => out.push(term),
                Expr::Not(inner) => collect(inner, out),
                Expr::And(items) | Expr::Or(items) => {
                    for item in items {
                        collect(item, out);
                    }
                }
            }
        }
        let mut terms = Vec::new();
        collect(&self.expr, &mut terms);
        terms.into_iter().map(|t| {
            (
                t.kind.map(TermKind::as_str),
                t.name.as_str(),
                t.range.clone(),
            )
        })
    }
}

/// The normalized form: `,` written as `|`, single spaces around binary operators, and only
/// the parentheses that precedence needs.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operand = |f: &mut fmt::Formatter<'_>, e: &Expr, parens: bool| {
            if parens {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        };
        match self {
            Expr::Term(term) => match term.kind {
                Some(kind) => write!(f, "{}:{}", kind.as_str(), term.name),
                None => f.write_str(&term.name),
            },
            Expr::Not(inner) => {
                f.write_str("!")?;
                operand(f, inner, matches!(**inner, Expr::And(_) | Expr::Or(_)))
            }
            Expr::And(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" & ")?;
                    }
                    operand(f, item, matches!(item, Expr::Or(_)))?;
                }
                Ok(())
            }
            Expr::Or(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    operand(f, item, false)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::inventory::Inventory;

    const INVENTORY: &str = "hosts:
  a: {roles: [primary], groups: [site_a]}
  b: {roles: [backup], groups: [site_a]}
  c: {groups: [site_b, arbiter]}
  db: {groups: [site_b]}
  web1: {}
  web2: {}
groups:
  db: {hosts: [web1]}
  primary: {hosts: [web2]}
";

    fn inventory() -> Inventory {
        Inventory::parse("i.yaml", INVENTORY.into()).expect("test inventory is valid")
    }

    fn roles() -> BTreeSet<String> {
        ["primary", "backup", "arbiter", "standby"]
            .map(String::from)
            .into()
    }

    fn resolve(text: &str) -> Result<Vec<usize>, Vec<ResolveError>> {
        Selector::parse(text)
            .expect("valid selector")
            .resolve(&inventory(), &roles())
    }

    fn syntax_error(text: &str) -> (String, Range<usize>) {
        let err = Selector::parse(text).expect_err("invalid selector");
        (err.message, err.range)
    }

    #[test]
    fn resolves_roles_groups_hosts_and_globs() {
        // Role `primary`: explicit on `a`, and membership of group `primary` for `web2`.
        assert_eq!(resolve("primary"), Ok(vec![0, 5]));
        assert_eq!(resolve("role:primary"), Ok(vec![0, 5]));
        assert_eq!(resolve("group:primary"), Ok(vec![5]));
        // A declared role and a group of one name are one thing, not an ambiguity.
        assert_eq!(resolve("arbiter"), Ok(vec![2]));
        assert_eq!(resolve("site_a"), Ok(vec![0, 1]));
        assert_eq!(resolve("host:a"), Ok(vec![0]));
        assert_eq!(resolve("web*"), Ok(vec![4, 5]));
        assert_eq!(resolve("host:w*2"), Ok(vec![5]));
        assert_eq!(resolve("all"), Ok(vec![0, 1, 2, 3, 4, 5]));
        assert_eq!(resolve("group:all"), Ok(vec![0, 1, 2, 3, 4, 5]));
        assert_eq!(
            resolve("standby"),
            Ok(vec![]),
            "a declared role without hosts is empty"
        );
    }

    #[test]
    fn operators_and_precedence() {
        assert_eq!(resolve("site_a, site_b"), Ok(vec![0, 1, 2, 3]));
        assert_eq!(
            resolve("site_b | site_a | a"),
            Ok(vec![0, 1, 2, 3]),
            "sorted, deduplicated"
        );
        // `&` binds tighter than `|`: a | (b & c).
        assert_eq!(resolve("a | b & c"), Ok(vec![0]));
        assert_eq!(resolve("(a | b) & c"), Ok(vec![]));
        assert_eq!(resolve("(a | b) & site_a"), Ok(vec![0, 1]));
        assert_eq!(resolve("!site_a"), Ok(vec![2, 3, 4, 5]));
        assert_eq!(resolve("!!site_a"), Ok(vec![0, 1]));
        assert_eq!(resolve("site_a & !role:backup"), Ok(vec![0]));
        assert_eq!(resolve("!(site_a | site_b) & !web1"), Ok(vec![5]));
        assert_eq!(resolve("!a & b"), Ok(vec![1]), "`!` binds tighter than `&`");
    }

    #[test]
    fn ambiguous_unknown_and_undeclared() {
        assert_eq!(
            resolve("db"),
            Err(vec![ResolveError::Ambiguous {
                name: "db".into(),
                range: 0..2,
                kinds: vec!["group", "host"]
            }])
        );
        assert_eq!(resolve("group:db"), Ok(vec![4]));
        assert_eq!(resolve("host:db"), Ok(vec![3]));
        let errs = resolve("a | site_c").expect_err("unknown");
        assert_eq!(
            errs,
            [ResolveError::Unknown {
                name: "site_c".into(),
                range: 4..10,
                suggestion: Some("site_a".into())
            }]
        );
        assert_eq!(
            errs[0].to_string(),
            "`site_c` matches no role, group or host"
        );
        assert_eq!(errs[0].help(), "did you mean `site_a`?");
        assert_eq!(errs[0].code(), crate::diagnostic::Code::TargetUnknown);
        // Every bad term at once.
        let errs = resolve("role:primray & (zzzzzz | host:x*)").expect_err("three errors");
        assert_eq!(
            errs,
            [
                ResolveError::UndeclaredRole {
                    name: "primray".into(),
                    range: 5..12,
                    suggestion: Some("primary".into())
                },
                ResolveError::Unknown {
                    name: "zzzzzz".into(),
                    range: 16..22,
                    suggestion: None
                },
                ResolveError::Unknown {
                    name: "x*".into(),
                    range: 30..32,
                    suggestion: None
                },
            ]
        );
        assert_eq!(errs[0].code(), crate::diagnostic::Code::RoleUndeclared);
        let amb = resolve("db").expect_err("ambiguous");
        assert_eq!(
            amb[0].help(),
            "say which with a prefix: `group:db` or `host:db`"
        );
    }

    #[test]
    fn syntax_errors_have_ranges() {
        let cases: &[(&str, &str, Range<usize>)] = &[
            ("role:", "expected a name after `role:`", 0..5),
            ("a &", "expected a host, group or role after `&`", 2..3),
            ("(a", "unclosed `(`", 0..1),
            ("a b", "expected `|`, `,` or `&` before `b`", 2..3),
            ("", "empty target", 0..0),
            ("  ", "empty target", 0..2),
            ("a )", "unmatched `)`", 2..3),
            ("!", "expected a host, group or role after `!`", 0..1),
            ("a | | b", "expected a host, group or role, found `|`", 4..5),
            ("role: x", "expected a name after `role:`", 0..5),
            ("(a b)", "expected `)` or an operator, found `b`", 3..4),
            ("a $", "unexpected character `$` in target", 2..3),
            ("é", "unexpected character `é` in target", 0..2),
            ("group:db*", "`*` matches host names only, not groups", 6..9),
            (
                "rol:x",
                "unknown prefix `rol:`; expected `role:`, `group:` or `host:` (did you mean `role:`?)",
                0..4,
            ),
        ];
        for (text, message, range) in cases {
            assert_eq!(
                syntax_error(text),
                ((*message).to_owned(), range.clone()),
                "{text:?}"
            );
        }
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(syntax_error(&deep).0, "target nests too deeply");
        assert!(Selector::parse(&format!("{}a{}", "(".repeat(20), ")".repeat(20))).is_ok());
    }

    #[test]
    fn terms_list_every_name() {
        let selector = Selector::parse("role:primary & !(site_a | host:web*)").expect("valid");
        let terms: Vec<_> = selector.terms().collect();
        assert_eq!(
            terms,
            [
                (Some("role"), "primary", 5..12),
                (None, "site_a", 17..23),
                (Some("host"), "web*", 31..35),
            ]
        );
    }

    #[test]
    fn display_is_normalized() {
        for (text, shown) in [
            ("a,b&(c|d)", "a | b & (c | d)"),
            ("!(a&b)", "!(a & b)"),
            ("!!a", "!!a"),
            ("((a))", "a"),
            ("(a|b)|c", "a | b | c"),
            ("role:x & !host:y*", "role:x & !host:y*"),
        ] {
            let selector = Selector::parse(text).expect("valid");
            assert_eq!(selector.to_string(), shown);
            let again = Selector::parse(shown).expect("the normalized form parses");
            assert_eq!(again.to_string(), shown);
        }
    }

    #[test]
    fn garbage_never_panics() {
        let inventory = inventory();
        for text in [
            "",
            "(",
            ")",
            "((",
            "))",
            "!",
            "!!",
            "&",
            "|",
            ",",
            ":",
            "::",
            "role",
            "role:",
            "role::a",
            "host:*",
            "*",
            "**",
            "a&&b",
            "a||b",
            "a,,",
            "(a|)",
            "(|a)",
            "!(",
            "a:b:c",
            "ü",
            "a\u{0}",
            "\t\n",
            "role:a)",
            "(((((((",
            "a & (b | !c",
            "é:é",
            "---",
            "a-b.c_d",
        ] {
            if let Ok(selector) = Selector::parse(text) {
                let _ = selector.resolve(&inventory, &roles());
                let _ = selector.terms().count();
                let _ = selector.to_string();
            }
        }
    }
}
