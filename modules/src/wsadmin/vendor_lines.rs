//! The vendor's words of a `wsadmin.*` script, for the plan a reviewer reads
//! ([`crate::vendor_lines`]): the `wsadmin.sh -lang jython ...` session (its login file and
//! script file left out) and the Jython statements it runs, each as `wsadmin> STATEMENT`, as
//! the IBM Connections documentation writes them.

use crate::command::Command;
use crate::vendor_lines::{base, summarise, tool_lines, unquote};

/// `cmd` with its summary.
pub(crate) fn summarised(cmd: Command) -> Command {
    summarise(cmd, |script| {
        let mut lines: Vec<String> = tool_lines(script, |w| base(w).starts_with("wsadmin"))
            .into_iter()
            .map(|l| {
                l.replace(" -p \"$work/login.properties\"", "")
                    .replace(" -f \"$work/step.py\"", "")
            })
            .collect();
        lines.extend(
            jython(script)
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.contains(super::DONE))
                .map(|l| format!("wsadmin> {l}")),
        );
        lines
    })
}

/// The Jython the script writes to `$work/step.py` (one quoted word of `printf '%s\n'`).
fn jython(script: &str) -> String {
    const INTO: &str = " > \"$work/step.py\"";
    const FEED: &str = "printf '%s\\n' ";
    let Some(end) = script.find(INTO) else {
        return String::new();
    };
    let Some(start) = script[..end].rfind(FEED) else {
        return String::new();
    };
    unquote(&script[start + FEED.len()..end])
}
