//! The vendor's words of a GT.M script: the `mupip`, `mumps`, `dse` command lines it runs, for
//! the plan a reviewer reads ([`Command::summary`](crate::Command)).
//!
//! They are read from the script body that [`Env`](super::Env) renders, the same text the host
//! runs, so the summary cannot drift from the command: every `"$gtm_dist/TOOL" WORDS` is shown as
//! `TOOL WORDS` (with the `printf ... |` that feeds it, for `dse`), and each call of a shared
//! helper of [`PRELUDE`](super::PRELUDE) that runs a GT.M tool is shown as the line it runs.

use crate::vendor_lines::words;

/// The shared helpers that run a GT.M tool, and the command line each one runs (`$@` = its
/// arguments).
const HELPERS: &[(&str, &str)] = &[
    ("rb_source_health", "mupip replicate -source -checkhealth"),
    (
        "rb_receiver_health",
        "mupip replicate -receiver -checkhealth",
    ),
    ("rb_fhead", "dse find -region=$1 / dump -fileheader"),
    ("rb_regions", "mumps -run %XCMD (the list of regions)"),
];

/// The GT.M command lines of `body`, in order, each once.
pub(crate) fn vendor_lines(body: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut push = |line: String| {
        if !lines.contains(&line) {
            lines.push(line);
        }
    };
    for line in body.lines() {
        let mut rest = line;
        let mut consumed = 0;
        loop {
            let next_tool = rest.find("\"$gtm_dist/");
            let next_helper = HELPERS
                .iter()
                .filter_map(|(name, shown)| helper_call(rest, name).map(|at| (at, *name, *shown)))
                .min_by_key(|(at, _, _)| *at);
            match (next_tool, next_helper) {
                (Some(t), h) if h.is_none_or(|(at, _, _)| t < at) => {
                    let before = &line[..consumed + t];
                    let (shown, len) = tool_call(&rest[t..]);
                    push(match feeder(before) {
                        Some(feed) => format!("{feed} | {shown}"),
                        None => shown,
                    });
                    consumed += t + len.max(1);
                    rest = &line[consumed..];
                }
                (_, Some((at, name, shown))) => {
                    let (args, len) = words(&rest[at + name.len()..]);
                    push(if shown.contains("$1") {
                        shown.replace("$1", args.trim())
                    } else if args.trim().is_empty() {
                        shown.to_owned()
                    } else {
                        format!("{shown} {}", args.trim())
                    });
                    consumed += at + name.len() + len;
                    rest = &line[consumed..];
                }
                _ => break,
            }
        }
    }
    lines
}

/// Where `rest` calls the helper `name` (a whole word, not its definition `name()`).
fn helper_call(rest: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = rest[from..].find(name) {
        let at = from + i;
        let end = at + name.len();
        let before_ok = at == 0
            || rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let after = rest[end..].chars().next();
        let after_ok = after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '('));
        if before_ok && after_ok {
            return Some(at);
        }
        from = end;
    }
    None
}

/// `"$gtm_dist/TOOL" WORDS...` at the start of `call`: `TOOL WORDS` and the length read.
fn tool_call(call: &str) -> (String, usize) {
    let start = "\"$gtm_dist/".len();
    let Some(close) = call[start..].find('"') else {
        return (call.to_owned(), call.len());
    };
    let tool = &call[start..start + close];
    let (args, len) = words(&call[start + close + 1..]);
    let args = args.trim();
    let shown = if args.is_empty() {
        tool.to_owned()
    } else {
        format!("{tool} {args}")
    };
    (shown, start + close + 1 + len)
}

/// The `printf ...` that feeds a tool through a pipe, when `before` ends with `|`.
fn feeder(before: &str) -> Option<String> {
    let before = before.trim_end().strip_suffix('|')?.trim_end();
    let start = before.rfind("$(").map_or(0, |i| i + 2);
    let feed = before[start..].trim();
    (!feed.is_empty() && !feed.contains("\"$gtm_dist/")).then(|| feed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::vendor_lines;

    #[test]
    fn tool_calls_read_as_the_vendor_writes_them() {
        let body = "rb_out=$(\"$gtm_dist/mupip\" replicate -source -shutdown -zerobacklog -timeout=30 2>&1); rb_rc=$?\n\
                    if x; then rb_run \"$gtm_dist/mupip\" rundown -region '*'; fi\n\
                    rb_out=$(printf 'find -region=%s\\n' \"$rb_r\" | \"$gtm_dist/dse\" 2>&1) || rb_fail \"dse failed\"\n\
                    rb_source_health -instsecondary=B\n\
                    rb_receiver_health\n\
                    rb_run \"$gtm_dist/mupip\" rundown -region '*'";
        assert_eq!(
            vendor_lines(body),
            [
                "mupip replicate -source -shutdown -zerobacklog -timeout=30",
                "mupip rundown -region '*'",
                "printf 'find -region=%s\\n' \"$rb_r\" | dse",
                "mupip replicate -source -checkhealth -instsecondary=B",
                "mupip replicate -receiver -checkhealth",
            ]
        );
    }

    #[test]
    fn helper_definitions_and_longer_names_are_not_calls() {
        assert!(vendor_lines("rb_source_health() { :; }\nrb_source_healthy x").is_empty());
    }
}
