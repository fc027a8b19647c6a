//! The vendor's words of an `iris.*` script, for the plan a reviewer reads
//! ([`crate::vendor_lines`]): its `iris qlist|start|stop INSTANCE` lines and the ObjectScript
//! it runs in `iris session`, each line as the IRIS terminal shows it after its namespace's
//! prompt (`%SYS> set sc=##class(SYS.Mirror).CreateNewMirrorSet("HSMIRROR","HSMIRA",.info)`),
//! in script order. The markers the script reads the session's answer by (`RUNBOOK:VALUE:`,
//! the `IsOK` line that prints `RUNBOOK:OK`) are left out: they are runbook's, not InterSystems'.

use crate::command::Command;
use crate::vendor_lines::{base, summarise, tool_lines, unquote};

/// `cmd` with its summary.
pub(crate) fn summarised(cmd: Command) -> Command {
    summarise(cmd, read)
}

fn read(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut session: Option<Vec<String>> = None;
    for line in script.lines() {
        if let Some(code) = session.as_mut() {
            let t = line.trim();
            if let Some(at) = t.find("| session ") {
                let ns = t[at + "| session ".len()..]
                    .split(')')
                    .next()
                    .map(unquote)
                    .unwrap_or_default();
                for l in code.drain(..) {
                    out.push(format!("{ns}> {l}"));
                }
                session = None;
            } else {
                let word = unquote(t.trim_end_matches('\\').trim_end());
                if let Some(l) = objectscript(&word) {
                    code.push(l);
                }
            }
            continue;
        }
        if line.trim_start().starts_with("out=$(printf '%s\\n' \\") {
            session = Some(Vec::new());
            continue;
        }
        out.extend(tool_lines(line, |w| base(w) == "iris"));
    }
    out
}

/// An ObjectScript line as the reviewer reads it: runbook's answer markers removed, the line
/// that only reports a status left out (and `halt`, which ends every session).
fn objectscript(line: &str) -> Option<String> {
    if line == "halt" || line.starts_with("if $system.Status.IsOK(") && line.contains("RUNBOOK") {
        return None;
    }
    Some(
        line.replace("!,\"RUNBOOK\"_\":VALUE:\",", "")
            .replace("!,\"RUNBOOK\"_\":LINE:\",", ""),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn sessions_read_as_objectscript_after_their_prompt() {
        let script = "session() { { cat; } | iris session HSCOMM -U \"$1\" 2>&1; }\n\
                      qlist=$(iris qlist HSCOMM 2>&1) || fail \"iris qlist failed\"\n\
                      out=$(printf '%s\\n' \\\n  \
                      'write !,\"RUNBOOK\"_\":VALUE:\",$SYSTEM.Mirror.MirrorName(),!' \\\n  \
                      'set sc=##class(SYS.Mirror).CreateNewMirrorSet(\"M\",\"A\",.info)' \\\n  \
                      'if $system.Status.IsOK(sc) { write !,\"RUNBOOK\"_\":OK\",! } else { write 1 }' \\\n  \
                      halt | session '%SYS') || fail \"iris session failed\"\n\
                      iris start HSCOMM quietly";
        assert_eq!(
            super::read(script),
            [
                "iris qlist HSCOMM",
                "%SYS> write $SYSTEM.Mirror.MirrorName(),!",
                "%SYS> set sc=##class(SYS.Mirror).CreateNewMirrorSet(\"M\",\"A\",.info)",
                "iris start HSCOMM quietly",
            ]
        );
    }
}
