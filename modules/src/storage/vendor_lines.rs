//! The vendor's words of a `storage.*` script: its `cp`, `tar`, `rsync`, `mv`, `ln`, `chown`,
//! `chmod`, `df` ... lines, for the plan a reviewer reads ([`crate::vendor_lines`]).

use crate::command::Command;
use crate::vendor_lines::{base, summarise, tool_lines};

/// The file tools whose calls a storage step's plan shows.
const TOOLS: &[&str] = &[
    "cp",
    "tar",
    "rsync",
    "mv",
    "ln",
    "rm",
    "chown",
    "chmod",
    "df",
    "du",
    "find",
    "gzip",
    "sha256sum",
    "stat",
];

/// `cmd` with its summary: each file tool call of its script.
pub(crate) fn summarised(cmd: Command) -> Command {
    summarise(cmd, |script| {
        tool_lines(script, |w| TOOLS.contains(&base(w)))
    })
}

#[cfg(test)]
mod tests {
    use crate::storage::testing::{remote, s};

    #[test]
    fn an_archive_reads_as_its_tar_lines() {
        let cmd = remote(
            &crate::storage::ArchiveModule,
            &[("path", s("/srv/data")), ("dest", s("/backup/data.tgz"))],
        );
        let lines = cmd.summary.as_ref().expect("a summary");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("tar -C \"$p\" --numeric-owner -czf \"$tmp\" .")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l == "mv -f -- \"$tmp\" \"$a\""),
            "{lines:?}"
        );
    }
}
