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

macro_rules! block {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../runbooks/", $path)))
    };
}

/// Every block of the built-ins: path under `runbooks/`, and text (sorted by path).
pub const BLOCKS: &[(&str, &str)] = &[
    block!("blocks/gtm/switchover.yaml"),
    block!("blocks/gtm/upgrade-instance.yaml"),
];

/// A built-in block by the name `runbook show` takes: `blocks/gtm/switchover`, with or
/// without `.yaml` or `builtin:`.
pub fn lookup(name: &str) -> Option<(&'static str, &'static str)> {
    let bare = name.strip_prefix(PREFIX).unwrap_or(name);
    let bare = bare.strip_suffix(".yaml").unwrap_or(bare);
    BLOCKS
        .iter()
        .copied()
        .find(|(p, _)| p.strip_suffix(".yaml") == Some(bare))
}

/// The blocks `text` (the built-in or block called `from`) uses, and the blocks they use,
/// each once, in the order first met: `(path under runbooks/, text)`. A `uses:` that does not
/// resolve is left out (`validate` reports it).
pub fn used_by(from: &str, text: &str) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    let mut todo = vec![(from.to_owned(), text.to_owned())];
    while let Some((from, text)) = todo.pop() {
        let mut found = Vec::new();
        for line in text.lines() {
            let line = line.trim_start();
            let line = line.strip_prefix("- ").unwrap_or(line);
            let Some(uses) = line.strip_prefix("uses:") else {
                continue;
            };
            let uses = uses.split(" #").next().unwrap_or_default().trim();
            let uses = uses.trim_matches(|c| c == '"' || c == '\'');
            let Ok((name, _)) = BuiltinLoader::find(BLOCKS, &from, uses) else {
                continue;
            };
            let path = name.strip_prefix(PREFIX).unwrap_or(&name);
            if let Some(block) = BLOCKS.iter().copied().find(|(p, _)| *p == path)
                && !out.contains(&block)
            {
                out.push(block);
                found.push((name.clone(), block.1.to_owned()));
            }
        }
        // Depth first, in the order written.
        todo.extend(found.into_iter().rev());
    }
    out
}

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
    use crate::builtin::ALL;

    /// Every file under `runbooks/blocks/`, as `blocks/...`, sorted.
    fn block_files() -> Vec<String> {
        fn walk(dir: &Path, under: &str, out: &mut Vec<String>) {
            for entry in fs_err::read_dir(dir).expect("a directory") {
                let entry = entry.expect("an entry");
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = format!("{under}/{name}");
                if entry.file_type().expect("a file type").is_dir() {
                    walk(&entry.path(), &path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks/blocks");
        let mut out = Vec::new();
        walk(&root, "blocks", &mut out);
        out.sort();
        out
    }

    #[test]
    fn the_blocks_a_builtin_uses_are_listed_once_in_order() {
        let sw = crate::builtin::lookup("gtm/switchover", None).expect("switchover");
        let used: Vec<&str> = used_by(&sw.source(), sw.text).iter().map(|b| b.0).collect();
        assert_eq!(used, ["blocks/gtm/switchover.yaml"]);
        let ru = crate::builtin::lookup("gtm/rolling-upgrade", None).expect("rolling-upgrade");
        let used: Vec<&str> = used_by(&ru.source(), ru.text).iter().map(|b| b.0).collect();
        assert_eq!(
            used,
            [
                "blocks/gtm/upgrade-instance.yaml",
                "blocks/gtm/switchover.yaml"
            ]
        );
        assert_eq!(
            lookup("blocks/gtm/switchover").map(|b| b.0),
            Some("blocks/gtm/switchover.yaml")
        );
        assert_eq!(
            lookup("builtin:blocks/gtm/upgrade-instance.yaml").map(|b| b.0),
            Some("blocks/gtm/upgrade-instance.yaml")
        );
        assert!(lookup("gtm/switchover").is_none());
    }

    #[test]
    fn every_block_file_of_the_repository_is_built_in_as_it_is() {
        let table: Vec<String> = BLOCKS.iter().map(|(p, _)| (*p).to_owned()).collect();
        assert_eq!(
            table,
            block_files(),
            "BLOCKS lists runbooks/blocks/, sorted"
        );
        for (path, text) in BLOCKS {
            let file = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../runbooks")
                .join(path);
            assert_eq!(
                fs_err::read_to_string(file).expect("the file"),
                *text,
                "{path}"
            );
        }
    }

    /// Every `uses:` of every built-in (and of the blocks they use) resolves inside the
    /// binary, and the expanded runbook has no diagnostic at all.
    #[test]
    fn every_uses_of_every_builtin_resolves_inside_the_binary() {
        let mut used = std::collections::BTreeSet::new();
        for b in ALL {
            let parsed = crate::parse::parse_runbook(&b.source(), b.text.to_owned());
            assert!(
                parsed.diagnostics.0.is_empty(),
                "{}: {:#?}",
                b.id(),
                parsed.diagnostics.0
            );
            let runbook = parsed.runbook.expect("a runbook");
            for origin in runbook.origins.values() {
                used.insert(origin.file.clone());
            }
        }
        // Every built-in block is used by some built-in.
        for (path, _) in BLOCKS {
            assert!(
                used.contains(&format!("{PREFIX}{path}")),
                "{path} is used by no built-in: {used:?}"
            );
        }
    }

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
