//! A hand-written recursive-descent parser for selectors: the grammar is four rules, and a
//! hand-written parser gives exact error ranges and messages that say what was expected.

use std::fmt;
use std::ops::Range;

use super::{Expr, Term, TermKind};
use crate::diagnostic::Code;

/// Deeper nesting than this is certainly a mistake, and would otherwise risk the stack.
const MAX_DEPTH: usize = 64;

/// Why a selector does not parse; `range` is a byte range within the selector text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectorError {
    pub message: String,
    pub range: Range<usize>,
}

impl SelectorError {
    pub fn code(&self) -> Code {
        Code::TargetSyntax
    }

    pub fn help(&self) -> &'static str {
        "combine `role:`, `group:` and `host:` names with `|` (or `,`), `&`, `!` and parentheses"
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok<'a> {
    Or(char),
    And,
    Not,
    Open,
    Close,
    Colon,
    Name(&'a str),
}

impl fmt::Display for Tok<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Or(c) => write!(f, "`{c}`"),
            Tok::And => f.write_str("`&`"),
            Tok::Not => f.write_str("`!`"),
            Tok::Open => f.write_str("`(`"),
            Tok::Close => f.write_str("`)`"),
            Tok::Colon => f.write_str("`:`"),
            Tok::Name(name) => write!(f, "`{name}`"),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '-')
}

fn error<T>(message: impl Into<String>, range: Range<usize>) -> Result<T, SelectorError> {
    Err(SelectorError {
        message: message.into(),
        range,
    })
}

fn lex(text: &str) -> Result<Vec<(Tok<'_>, Range<usize>)>, SelectorError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let tok = match c {
            c if c.is_whitespace() => continue,
            '|' | ',' => Tok::Or(c),
            '&' => Tok::And,
            '!' => Tok::Not,
            '(' => Tok::Open,
            ')' => Tok::Close,
            ':' => Tok::Colon,
            c if is_name_char(c) => {
                while chars.next_if(|&(_, c)| is_name_char(c)).is_some() {}
                let end = chars.peek().map_or(text.len(), |&(i, _)| i);
                tokens.push((Tok::Name(&text[start..end]), start..end));
                continue;
            }
            other => {
                return error(
                    format!("unexpected character `{other}` in target"),
                    start..start + other.len_utf8(),
                );
            }
        };
        tokens.push((tok, start..start + c.len_utf8()));
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<(Tok<'a>, Range<usize>)>,
    pos: usize,
    depth: usize,
}

/// Parses a whole selector.
pub(super) fn parse(text: &str) -> Result<Expr, SelectorError> {
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return error("empty target", 0..text.len());
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = p.expr()?;
    match p.tokens.get(p.pos) {
        None => Ok(expr),
        Some((Tok::Close, range)) => error("unmatched `)`", range.clone()),
        Some((tok, range)) => error(
            format!("expected `|`, `,` or `&` before {tok}"),
            range.clone(),
        ),
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Tok<'a>> {
        self.tokens.get(self.pos).map(|(tok, _)| tok)
    }

    fn next(&mut self) -> Option<(Tok<'a>, Range<usize>)> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += usize::from(token.is_some());
        token
    }

    fn expr(&mut self) -> Result<Expr, SelectorError> {
        let mut items = vec![self.and()?];
        while matches!(self.peek(), Some(Tok::Or(_))) {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, SelectorError> {
        let mut items = vec![self.unary()?];
        while matches!(self.peek(), Some(Tok::And)) {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, SelectorError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let range = self.tokens[self.pos.min(self.tokens.len() - 1)].1.clone();
            return error("target nests too deeply", range);
        }
        let result = if matches!(self.peek(), Some(Tok::Not)) {
            self.pos += 1;
            self.unary().map(|inner| Expr::Not(Box::new(inner)))
        } else {
            self.primary()
        };
        self.depth -= 1;
        result
    }

    fn primary(&mut self) -> Result<Expr, SelectorError> {
        // What the previous token was, to say what is missing after it.
        let after = self.pos.checked_sub(1).map(|i| self.tokens[i].clone());
        match self.next() {
            Some((Tok::Open, open)) => {
                let inner = self.expr()?;
                match self.next() {
                    Some((Tok::Close, _)) => Ok(inner),
                    None => error("unclosed `(`", open),
                    Some((tok, range)) => {
                        error(format!("expected `)` or an operator, found {tok}"), range)
                    }
                }
            }
            Some((Tok::Name(name), range)) => self.term(name, range),
            Some((tok, range)) => error(
                format!("expected a host, group or role, found {tok}"),
                range,
            ),
            None => {
                let (tok, range) = after.expect("a selector has at least one token");
                error(format!("expected a host, group or role after {tok}"), range)
            }
        }
    }

    /// `name`, or `kind:name` when a `:` follows.
    fn term(&mut self, name: &'a str, range: Range<usize>) -> Result<Expr, SelectorError> {
        if !matches!(self.peek(), Some(Tok::Colon)) {
            return Ok(Expr::Term(Term {
                kind: None,
                name: name.to_owned(),
                range,
            }));
        }
        let (_, colon) = self.next().expect("peeked a colon");
        let prefix = range.start..colon.end;
        let Some(kind) = TermKind::from_name(name) else {
            let hint = crate::suggest::closest(name, TermKind::NAMES.iter().copied())
                .map_or(String::new(), |s| format!(" (did you mean `{s}:`?)"));
            return error(
                format!("unknown prefix `{name}:`; expected `role:`, `group:` or `host:`{hint}"),
                prefix,
            );
        };
        match self.next() {
            Some((Tok::Name(value), value_range)) if value_range.start == colon.end => {
                if value.contains('*') && kind != TermKind::Host {
                    return error(
                        format!("`*` matches host names only, not {}s", kind.as_str()),
                        value_range,
                    );
                }
                Ok(Expr::Term(Term {
                    kind: Some(kind),
                    name: value.to_owned(),
                    range: value_range,
                }))
            }
            _ => error(format!("expected a name after `{name}:`"), prefix),
        }
    }
}
