//! The vendor's words of an `http.*` script, for the plan a reviewer reads
//! ([`crate::vendor_lines`]): the `curl` request of a probe; for the maintenance modules the
//! Apache configuration lines they put in (`+ ErrorDocument 503 ...`) or the block they take out,
//! then the `apachectl -t` and `apachectl -k graceful` lines.

use crate::command::Command;
use crate::vendor_lines::{assigned, base, summarise, tool_lines};

/// The HTTP clients and server controls whose calls the plan shows.
const TOOLS: &[&str] = &[
    "curl",
    "wget",
    "apachectl",
    "apache2ctl",
    "httpd",
    "systemctl",
];

/// `cmd` with its summary.
pub(crate) fn summarised(cmd: Command) -> Command {
    summarise(cmd, |script| {
        let mut lines = Vec::new();
        if let Some(conf) = assigned(script, "conf") {
            match assigned(script, "block") {
                Some(block) => {
                    lines.push(format!("{conf} gets:"));
                    lines.extend(block.lines().map(|l| format!("+ {l}")));
                }
                None => lines.push(format!("{conf}: the runbook maintenance block is removed")),
            }
        }
        lines.extend(tool_lines(script, |w| TOOLS.contains(&base(w))));
        lines
    })
}

#[cfg(test)]
mod tests {
    use crate::generic::testing::{remote, s};

    #[test]
    fn a_probe_reads_as_its_curl_request() {
        let cmd = remote(
            &crate::http::ProbeModule,
            &[("url", s("http://10.0.0.1/health"))],
        );
        let lines = cmd.summary.expect("a summary");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("curl -sS -o \"$body\" -w '%{http_code}'")
                && lines[0].ends_with("-- http://10.0.0.1/health"),
            "{lines:?}"
        );
    }
}
