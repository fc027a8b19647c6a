//! A bound on how deeply a template or expression can nest, checked before minijinja sees it.
//!
//! minijinja's parser stops parentheses and nested blocks at 150 levels, but builds chains of
//! operators (`a or a or ...`, `not not ...`, `x.a.a.a...`, `1|f|f|...`) and `elif` chains
//! into trees as deep as the chain is long, and then compiles, analyses and drops those trees
//! recursively: a 30,000-term `when:` overflowed the stack. The depth of such a tree is at most
//! the number of operators of one expression plus the number of block tags around it, so both
//! are counted here, without parsing:
//!
//! - each expression (a bare `when:`, or one `{{ ... }}` / `{% ... %}` tag of a template) may
//!   hold at most [`MAX_OPERATORS`] operator tokens (punctuation, and the words `and`, `or`,
//!   `not`, `is`, `in`, `if`, `else`), strings not counted;
//! - a template may hold at most [`MAX_BLOCK_TAGS`] `{% ... %}` tags.
//!
//! The count is an over-estimate of the depth (`a and b and c` counts 2, and so is 2 deep; `f(a,
//! b)` counts 3 and is 2 deep), so nothing a person writes comes near: the longest `when:` of the
//! built-in runbooks has about 10 operators.

use std::ops::Range;

/// Operators one expression may hold.
pub const MAX_OPERATORS: usize = 200;
/// `{% ... %}` tags one template may hold.
pub const MAX_BLOCK_TAGS: usize = 500;

/// Why a template is refused: what was exceeded, and the byte range in the source to point at
/// (the operator or tag that crossed the limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooComplex {
    pub message: String,
    pub range: Range<usize>,
}

/// Checks a bare expression (`when:`, `until:`, `loop:`).
pub fn check_expression(source: &str) -> Result<(), TooComplex> {
    let bytes = source.as_bytes();
    let (_, crossed) = count_operators(bytes, 0, None);
    match crossed {
        Some(at) => Err(too_many_operators(at)),
        None => Ok(()),
    }
}

/// Checks a template: each tag's expression, and the number of block tags.
pub fn check_template(source: &str) -> Result<(), TooComplex> {
    let bytes = source.as_bytes();
    let mut blocks = 0;
    let mut i = 0;
    while let Some(open) = find(bytes, i, b"{") {
        let Some(&kind) = bytes.get(open + 1) else {
            break;
        };
        match kind {
            b'{' | b'%' => {
                if kind == b'%' {
                    blocks += 1;
                    if blocks > MAX_BLOCK_TAGS {
                        return Err(TooComplex {
                            message: format!(
                                "the template has more than {MAX_BLOCK_TAGS} `{{% ... %}}` tags"
                            ),
                            range: open..open + 2,
                        });
                    }
                }
                let close = if kind == b'{' { b'}' } else { b'%' };
                let (end, crossed) = count_operators(bytes, open + 2, Some(close));
                if let Some(at) = crossed {
                    return Err(too_many_operators(at));
                }
                i = end;
            }
            b'#' => i = find(bytes, open + 2, b"#}").map_or(bytes.len(), |c| c + 2),
            _ => i = open + 1,
        }
    }
    Ok(())
}

fn too_many_operators(at: usize) -> TooComplex {
    TooComplex {
        message: format!("the expression has more than {MAX_OPERATORS} operators"),
        range: at..at + 1,
    }
}

/// Counts operator tokens from `start` up to the closing `X}` of a tag (`close` = `X`), or to
/// the end for a bare expression. Returns where counting stopped (past the closing delimiter)
/// and, when the count crossed [`MAX_OPERATORS`], the offset of the operator that did.
fn count_operators(bytes: &[u8], start: usize, close: Option<u8>) -> (usize, Option<usize>) {
    let mut count = 0usize;
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(c) = close
            && b == c
            && bytes.get(i + 1) == Some(&b'}')
        {
            return (i + 2, None);
        }
        match b {
            b'\'' | b'"' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let word_end = bytes[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                    .map_or(bytes.len(), |n| i + n);
                let word = &bytes[i..word_end];
                if matches!(
                    word,
                    b"and" | b"or" | b"not" | b"is" | b"in" | b"if" | b"else" | b"elif"
                ) {
                    count += 1;
                }
                if count > MAX_OPERATORS {
                    return (word_end, Some(i));
                }
                i = word_end;
                continue;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'~' | b'|' | b'.' | b'[' | b'(' | b'{' | b','
            | b':' | b'=' | b'!' | b'<' | b'>' => {
                count += 1;
                if count > MAX_OPERATORS {
                    return (i + 1, Some(i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    (bytes.len(), None)
}

/// The offset just past the string literal that starts at `start` (or the end of the text).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_expressions_and_templates_pass() {
        for e in [
            "backlog.rc == 0 and params.mode in ['a', 'b']",
            "not (x.stdout | trim | int > 3)",
            "'a or b or c ' ~ name",
        ] {
            assert_eq!(check_expression(e), Ok(()), "{e}");
        }
        let script =
            "{% for h in groups.lab %}ssh {{ h }} {{ params.x | quote }}\n{% endfor %}".repeat(100);
        assert_eq!(check_template(&script), Ok(()));
    }

    #[test]
    fn long_operator_chains_are_refused_at_the_operator_that_crosses_the_limit() {
        let chain = vec!["true"; MAX_OPERATORS + 2].join(" or ");
        let err = check_expression(&chain).expect_err("too long");
        assert_eq!(&chain[err.range.clone()], "o");
        assert_eq!(err.range.start, (MAX_OPERATORS + 1) * 8 - 3);
        assert!(check_expression(&vec!["true"; MAX_OPERATORS + 1].join(" or ")).is_ok());
        for deep in [
            format!("{}1", "-".repeat(MAX_OPERATORS + 1)),
            format!("x{}", ".a".repeat(MAX_OPERATORS + 1)),
            format!("1{}", "|string".repeat(MAX_OPERATORS + 1)),
        ] {
            assert!(check_expression(&deep).is_err(), "{deep}");
        }
    }

    #[test]
    fn strings_do_not_count_and_each_tag_counts_alone() {
        let quoted = format!("'{}' == x", "+".repeat(1000));
        assert_eq!(check_expression(&quoted), Ok(()));
        let tag = format!("{{{{ {} }}}}", vec!["a"; 150].join(" ~ "));
        assert_eq!(check_template(&tag.repeat(20)), Ok(()));
        let long = format!(
            "echo {{{{ {} }}}}",
            vec!["a"; MAX_OPERATORS + 2].join(" ~ ")
        );
        assert!(check_template(&long).is_err());
        // `}}` inside a string does not end the tag early.
        let sneaky = format!("{{{{ '}}}}' {} }}}}", " ~ a".repeat(MAX_OPERATORS + 1));
        assert!(check_template(&sneaky).is_err());
    }

    #[test]
    fn elif_chains_are_bounded_by_the_number_of_block_tags() {
        let chain = format!(
            "{{% if a %}}x{}{{% endif %}}",
            "{% elif a %}x".repeat(MAX_BLOCK_TAGS)
        );
        let err = check_template(&chain).expect_err("too many tags");
        assert!(err.message.contains("tags"), "{}", err.message);
        assert_eq!(&chain[err.range], "{%");
    }
}
