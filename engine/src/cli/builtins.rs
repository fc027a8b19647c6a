//! `runbook list` and `runbook show`: the built-in runbooks shipped in the binary.

use std::fmt::Write as _;
use std::io::Write as _;

use runbook::builtin::{self, ALL, blocks};

use super::outcome::{CliError, Outcome};

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
    let _ = writeln!(out, "\n{:<34} USED BY", "BLOCK");
    for (path, _) in blocks::BLOCKS {
        let users: Vec<String> = ALL
            .iter()
            .filter(|b| {
                blocks::used_by(&b.source(), b.text)
                    .iter()
                    .any(|u| u.0 == *path)
            })
            .map(builtin::Builtin::id)
            .collect();
        let name = path.strip_suffix(".yaml").unwrap_or(path);
        let _ = writeln!(out, "{name:<34} {}", users.join(", "));
    }
    out.push_str(
        "\nrun one by name: runbook apply NAME -i INVENTORY (a file of that name wins); print it: runbook show NAME [--blocks]\n",
    );
    out
}

/// The text `runbook show` prints: the built-in runbook (then, with `blocks`, every block it
/// uses, each after a comment line naming its path under `runbooks/`), or a block by its name
/// (`blocks/gtm/switchover`).
pub fn show_text(name: &str, with_blocks: bool) -> Result<String, String> {
    if let Some((_, text)) = blocks::lookup(name) {
        return Ok(text.to_owned());
    }
    match builtin::lookup(name, None) {
        Ok(b) => {
            let mut out = b.text.to_owned();
            if with_blocks {
                for (path, text) in blocks::used_by(&b.source(), b.text) {
                    let _ = write!(
                        out,
                        "\n# ---- runbooks/{path} (a block {} uses) ----\n{text}",
                        b.id()
                    );
                }
            }
            Ok(out)
        }
        Err(e) => {
            let mut candidates = e.candidates;
            candidates.extend(
                blocks::BLOCKS
                    .iter()
                    .map(|(p, _)| p.strip_suffix(".yaml").unwrap_or(p).to_owned()),
            );
            Err(format!(
                "{}\n  candidates: {}",
                e.message.replace("no file `", "`"),
                candidates.join(", ")
            ))
        }
    }
}

pub fn show(name: &str, with_blocks: bool) -> Result<Outcome, CliError> {
    let text = show_text(name, with_blocks).map_err(CliError::Invalid)?;
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(Outcome::Ok)
}
