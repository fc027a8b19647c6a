//! `runbook list` and `runbook show`: the built-in runbooks shipped in the binary.

use std::fmt::Write as _;
use std::io::Write as _;

use runbook::builtin::{self, ALL};

use super::exit;

pub fn list() -> String {
    let mut out = format!(
        "{:<34} {:<12} {:<8} {}\n",
        "NAME", "PLATFORM", "VERSION", "SOURCE"
    );
    for b in ALL {
        let (_, version, source) = builtin::metadata(b);
        let _ = writeln!(
            out,
            "{:<34} {:<12} {:<8} {}",
            b.id(),
            b.platform,
            version,
            source.first().map_or("", String::as_str)
        );
        for more in source.iter().skip(1) {
            let _ = writeln!(out, "{:<56} {more}", "");
        }
    }
    out.push_str(
        "\nrun one by name: runbook apply NAME -i INVENTORY (a file of that name wins); print it: runbook show NAME\n",
    );
    out
}

pub fn show(name: &str) -> u8 {
    match builtin::lookup(name, None) {
        Ok(b) => {
            let _ = std::io::stdout().write_all(b.text.as_bytes());
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: {}\n  candidates: {}",
                e.message.replace("no file `", "`"),
                e.candidates.join(", ")
            );
            exit::INVALID_INPUT
        }
    }
}
