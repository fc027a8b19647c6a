//! Reading a module's vendor command lines out of the script it renders, for the plan a reviewer
//! reads ([`Command::summary`]): shared by the families' `vendor_lines.rs` files (IRIS, wsadmin,
//! http, storage; GT.M has its own, [`crate::gtm`]).
//!
//! Why from the script: the summary is read from the very text the host runs, so it cannot
//! drift from the command. Each family names its tools (`curl`, `tar`, the `iris` binary); every
//! call of one at a command position (start of a line, after `$(`, `|`, `&&`, `||`, `;`, `{`,
//! `!`, `then`, `do`, `else`) is shown as written, up to the end of its simple command (the
//! first unquoted `)`, `|`, `;`, `&`, `<`, `>`; a trailing `2` of `2>&1` dropped). Lines that
//! define shell functions are not calls.

use crate::command::Command;

/// `cmd` with its summary: the lines `read` finds in its script, each once, in order.
pub(crate) fn summarise(mut cmd: Command, read: impl FnOnce(&str) -> Vec<String>) -> Command {
    let mut lines: Vec<String> = Vec::new();
    for line in read(&cmd.script) {
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    cmd.summary = Some(lines);
    cmd
}

/// Every call in `script` of a tool `is_tool` accepts, as written, each once, in order.
pub(crate) fn tool_lines(script: &str, is_tool: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in script.lines() {
        if defines_a_function(line) {
            continue;
        }
        let mut single = false;
        let mut double = false;
        let mut at_command = true;
        let mut i = 0;
        let bytes = line.as_bytes();
        while i < bytes.len() {
            let c = bytes[i] as char;
            if single {
                single = c != '\'';
                i += 1;
                continue;
            }
            match c {
                '\'' => {
                    single = true;
                    at_command = false;
                }
                '"' => {
                    double = !double;
                    at_command = false;
                }
                '\\' => i += 1,
                _ if double => {}
                '(' | '|' | '&' | ';' | '{' | '!' => at_command = true,
                ' ' | '\t' => {}
                _ if !line.is_char_boundary(i) => {}
                _ => {
                    // At least one character (a `)`, `<`, `>` here starts no word).
                    let first = line[i..].chars().next().map_or(1, char::len_utf8);
                    let end = line[i + first..]
                        .find([' ', '\t', ';', '|', '&', ')', '<', '>'])
                        .map_or(line.len(), |n| i + first + n);
                    let word = &line[i..end];
                    if let Some(p) = word.find("$(") {
                        // `x=$(TOOL ...`: a command starts inside the word.
                        i += p + 2;
                        at_command = true;
                        continue;
                    }
                    if at_command && is_tool(&unquote(word)) {
                        let (call, _) = words(&line[i..]);
                        if !out.contains(&call) {
                            out.push(call);
                        }
                    }
                    at_command = matches!(
                        word,
                        "then" | "do" | "else" | "if" | "elif" | "while" | "until" | "exec"
                    );
                    i = end;
                    continue;
                }
            }
            i += 1;
        }
    }
    out
}

/// Whether `line` starts a shell function definition (`name() {`).
fn defines_a_function(line: &str) -> bool {
    let t = line.trim_start();
    t.find("() {").is_some_and(|at| {
        t[..at]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The words of a simple command at the start of `text`, up to the first unquoted `)`, `|`,
/// `;`, `&`, `<` or `>` (a trailing `2` of `2>&1` dropped), and the length read.
pub(crate) fn words(text: &str) -> (String, usize) {
    let mut single = false;
    let mut double = false;
    let mut escaped = false;
    let mut end = text.len();
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            ')' | '|' | ';' | '&' | '<' | '>' if !single && !double => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let mut shown = text[..end].trim_end();
    if text[end..].starts_with('>') {
        shown = shown.strip_suffix(" 2").unwrap_or(shown);
    }
    (shown.to_owned(), end)
}

/// One shell word as the shell reads it (quotes removed), or as written when it does not parse.
pub(crate) fn unquote(word: &str) -> String {
    match shlex::split(word).as_deref() {
        Some([one]) => one.clone(),
        _ => word.to_owned(),
    }
}

/// The value of a single shell word assigned as `name=WORD` at the start of a line of
/// `script` (the word may span lines), unquoted.
pub(crate) fn assigned(script: &str, name: &str) -> Option<String> {
    let at = script
        .match_indices(&format!("{name}="))
        .find(|(i, _)| *i == 0 || script[..*i].ends_with('\n'))?
        .0;
    let rest = &script[at + name.len() + 1..];
    let mut single = false;
    let mut double = false;
    let mut escaped = false;
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            ' ' | '\n' | ';' if !single && !double => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    shlex::split(&rest[..end]).and_then(|w| w.into_iter().next())
}

/// The basename of a tool path (`/opt/IBM/HTTPServer/bin/apachectl` → `apachectl`).
pub(crate) fn base(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_at_command_positions_only() {
        let script = "fail() { tar -x; }\n\
                      out=$(tar -C \"$p\" -czf \"$tmp\" . 2>&1) || fail \"tar could not\"\n\
                      if ! cp -p -- a b; then echo 'cp x'; fi\n\
                      sum=$(sha256sum < \"$tmp\" | cut -d' ' -f1)\n\
                      tar -C x -czf y .";
        assert_eq!(
            tool_lines(script, |w| matches!(w, "tar" | "cp" | "sha256sum")),
            [
                "tar -C \"$p\" -czf \"$tmp\" .",
                "cp -p -- a b",
                "sha256sum",
                "tar -C x -czf y ."
            ]
        );
    }

    #[test]
    fn any_text_ends_the_scan() {
        for text in [
            "a )b",
            "\\é tar x",
            "x <y >z )",
            "é) tar é",
            "\"unclosed tar",
            "'unclosed",
        ] {
            let _ = tool_lines(text, |w| w == "tar");
        }
        assert_eq!(tool_lines("é; tar é", |w| w == "tar"), ["tar é"]);
    }

    #[test]
    fn assigned_words_are_unquoted_across_lines() {
        let script = "conf=/etc/httpd.conf\nblock='a\nb'\"c\\\">\nd\"\n";
        assert_eq!(assigned(script, "conf").as_deref(), Some("/etc/httpd.conf"));
        assert_eq!(assigned(script, "block").as_deref(), Some("a\nbc\">\nd"));
        assert_eq!(assigned(script, "nothing"), None);
    }
}
