//! The blocks the built-in runbooks use, shipped inside the binary with them.
//!
//! A built-in runbook is named `builtin:PLATFORM/NAME` (its file is
//! `runbooks/PLATFORM/NAME.yaml`); a block it uses is found by the same relative path as on
//! disk (`uses: ../blocks/gtm/switchover.yaml` from `runbooks/gtm/` is
//! `runbooks/blocks/gtm/switchover.yaml`) among [`BLOCKS`], and named
//! `builtin:blocks/gtm/switchover.yaml` in diagnostics, `plan` and the journal's plan. A block
//! file under `runbooks/blocks/` is listed here as `"blocks/..."` with its `include_str!`, so a
//! built-in never reads the disk: the binary is the same wherever it runs.

use std::path::{Component, Path, PathBuf};

use crate::parse::blocks::BlockLoader;

use super::PREFIX;

/// Every block of the built-ins: path under `runbooks/`, and text.
pub const BLOCKS: &[(&str, &str)] = &[];

/// Blocks of the built-ins, found relative to the built-in (or block) that uses them.
pub struct BuiltinLoader;

impl BuiltinLoader {
    /// The lookup itself, over any table (the tests give their own).
    pub fn find(
        table: &[(&str, &str)],
        from: &str,
        uses: &str,
    ) -> Result<(String, String), String> {
        let from = from.strip_prefix(PREFIX).unwrap_or(from);
        // `gtm/switchover` (a runbook) or `blocks/gtm/x.yaml` (a block), under `runbooks/`.
        let from = if Path::new(from).extension().is_some() {
            PathBuf::from(from)
        } else {
            PathBuf::from(format!("{from}.yaml"))
        };
        let mut path = PathBuf::new();
        for c in from
            .parent()
            .unwrap_or(Path::new(""))
            .join(uses)
            .components()
        {
            match c {
                Component::Normal(p) => path.push(p),
                Component::ParentDir if path.pop() => {}
                Component::CurDir => {}
                _ => return Err(format!("`{uses}` leaves the built-in runbooks")),
            }
        }
        let key = path.display().to_string();
        table
            .iter()
            .find(|(p, _)| *p == key)
            .map(|(p, text)| (format!("{PREFIX}{p}"), (*text).to_owned()))
            .ok_or_else(|| {
                format!(
                    "no block `{key}` is built in (a built-in runbook uses only built-in blocks)"
                )
            })
    }
}

impl BlockLoader for BuiltinLoader {
    fn load(&self, from: &str, uses: &str) -> Result<(String, String), String> {
        Self::find(BLOCKS, from, uses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[(&str, &str)] = &[
        ("blocks/gtm/switchover.yaml", "S"),
        ("blocks/gtm/stop.yaml", "T"),
    ];

    #[test]
    fn blocks_are_found_as_on_disk_and_named_as_built_ins() {
        let found = BuiltinLoader::find(
            TABLE,
            "builtin:gtm/rolling-upgrade",
            "../blocks/gtm/switchover.yaml",
        );
        assert_eq!(
            found,
            Ok((
                "builtin:blocks/gtm/switchover.yaml".to_owned(),
                "S".to_owned()
            ))
        );
        // A block that uses a block, relative to itself.
        let nested = BuiltinLoader::find(TABLE, "builtin:blocks/gtm/switchover.yaml", "stop.yaml");
        assert_eq!(
            nested,
            Ok(("builtin:blocks/gtm/stop.yaml".to_owned(), "T".to_owned()))
        );
        assert!(BuiltinLoader::find(TABLE, "builtin:gtm/x", "../../../etc/passwd").is_err());
        assert!(BuiltinLoader::find(TABLE, "builtin:gtm/x", "/etc/passwd").is_err());
        assert!(BuiltinLoader::find(TABLE, "builtin:gtm/x", "nope.yaml").is_err());
    }
}
