//! The built-in runbooks, shipped inside the binary, found by name.
//!
//! `runbook apply switchover -i prod.yaml` works from anywhere: a path that exists is a file;
//! otherwise the name is looked up here, for the inventory's platform (its `platform` variable,
//! or a group named after a platform). A run of a built-in is recorded as `builtin:NAME`, so a
//! resume uses the same one, and its fingerprint (as for a file) refuses a resume across a
//! change of its text.

use crate::inventory::Inventory;

pub mod blocks;

/// One built-in runbook: `PLATFORM/NAME` and its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtin {
    pub platform: &'static str,
    pub name: &'static str,
    pub text: &'static str,
}

impl Builtin {
    /// `gtm/switchover`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.platform, self.name)
    }

    /// How a run of it is recorded, and read back: `builtin:gtm/switchover`.
    pub fn source(&self) -> String {
        format!("{PREFIX}{}", self.id())
    }
}

/// The prefix of a built-in's recorded source.
pub const PREFIX: &str = "builtin:";

macro_rules! builtin {
    ($platform:literal, $name:literal) => {
        Builtin {
            platform: $platform,
            name: $name,
            text: include_str!(concat!("../../runbooks/", $platform, "/", $name, ".yaml")),
        }
    };
}

/// Every built-in runbook, by platform then name.
pub const ALL: &[Builtin] = &[
    builtin!("connections", "communities-recovery"),
    builtin!("gtm", "dr-shadow-refresh"),
    builtin!("gtm", "migrate-existing"),
    builtin!("gtm", "new-mirror"),
    builtin!("gtm", "rolling-upgrade"),
    builtin!("gtm", "shutdown"),
    builtin!("gtm", "switchover"),
    builtin!("iris", "migrate-existing"),
    builtin!("iris", "new-mirror"),
];

/// A built-in's `metadata`: name, version and the seed sections it traces to (read from its
/// text; a built-in always parses, which a test checks).
pub fn metadata(b: &Builtin) -> (String, String, Vec<String>) {
    let parsed = crate::parse::parse_runbook(&b.source(), b.text.to_owned());
    parsed.runbook.map_or_else(
        || (b.name.to_owned(), String::new(), Vec::new()),
        |r| {
            (
                r.metadata.name.value.clone(),
                r.metadata.version.value.clone(),
                r.metadata.source.clone(),
            )
        },
    )
}

/// The platforms the built-ins are for.
pub fn platforms() -> Vec<&'static str> {
    let mut all: Vec<&str> = ALL.iter().map(|b| b.platform).collect();
    all.dedup();
    all
}

/// Why a name matched no single built-in, with the candidates to offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotFound {
    pub message: String,
    pub candidates: Vec<String>,
}

/// Finds `name` (`switchover`, `switchover.yaml`, `gtm/switchover`, `builtin:gtm/switchover`)
/// for `platform`, when the name alone does not say which.
pub fn lookup(name: &str, platform: Option<&str>) -> Result<&'static Builtin, NotFound> {
    let bare = name.strip_prefix(PREFIX).unwrap_or(name);
    let bare = bare
        .strip_suffix(".yaml")
        .or_else(|| bare.strip_suffix(".yml"))
        .unwrap_or(bare);
    let matches: Vec<&Builtin> = match bare.split_once('/') {
        Some((p, n)) => ALL
            .iter()
            .filter(|b| b.platform == p && b.name == n)
            .collect(),
        None => ALL.iter().filter(|b| b.name == bare).collect(),
    };
    // A platform the path names wins; else the inventory's, when it has one.
    let chosen: Vec<&Builtin> = match platform {
        Some(p) if !bare.contains('/') => matches
            .iter()
            .copied()
            .filter(|b| b.platform == p)
            .collect(),
        _ => matches.clone(),
    };
    match chosen.as_slice() {
        [one] => Ok(one),
        [] if matches.is_empty() => Err(NotFound {
            message: format!("no file `{name}`, and no built-in runbook of that name"),
            candidates: ALL.iter().map(Builtin::id).collect(),
        }),
        [] => Err(NotFound {
            message: format!(
                "no file `{name}`, and no built-in runbook `{bare}` for platform `{}`",
                platform.unwrap_or_default()
            ),
            candidates: matches.iter().map(|b| b.id()).collect(),
        }),
        _ => Err(NotFound {
            message: format!(
                "no file `{name}`, and the built-in runbook `{bare}` exists for several platforms; the inventory says none (a `platform` variable, or a group named {})",
                platforms().join(", ")
            ),
            candidates: chosen.iter().map(|b| b.id()).collect(),
        }),
    }
}

/// The inventory's platform: its `platform` variable (for every host, or the inventory's own),
/// else the one group named after a platform.
pub fn platform_of(inventory: &Inventory) -> Option<String> {
    let known = platforms();
    if let Some(p) = inventory.vars.get("platform").and_then(|v| v.as_str()) {
        return Some(p.to_owned());
    }
    let mut from_hosts: Vec<&str> = inventory
        .hosts
        .iter()
        .filter_map(|h| h.vars.get("platform").and_then(|v| v.as_str()))
        .collect();
    from_hosts.sort_unstable();
    from_hosts.dedup();
    if let [one] = from_hosts.as_slice() {
        return Some((*one).to_owned());
    }
    let groups: Vec<&str> = known
        .into_iter()
        .filter(|p| inventory.groups.contains_key(*p))
        .collect();
    match groups.as_slice() {
        [one] => Some((*one).to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_records_find_the_same_builtin() {
        for name in [
            "gtm/switchover",
            "gtm/switchover.yaml",
            "builtin:gtm/switchover",
            "switchover",
        ] {
            let b = lookup(name, None).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(b.source(), "builtin:gtm/switchover");
        }
        assert!(
            lookup("switchover", None)
                .expect("one")
                .text
                .contains("name: gtm-switchover")
        );
    }

    #[test]
    fn a_name_of_several_platforms_needs_the_inventorys_platform() {
        let e = lookup("migrate-existing", None).expect_err("ambiguous");
        assert_eq!(
            e.candidates,
            ["gtm/migrate-existing", "iris/migrate-existing"]
        );
        assert_eq!(
            lookup("migrate-existing", Some("iris")).expect("iris").id(),
            "iris/migrate-existing"
        );
        let e = lookup("switchover", Some("iris")).expect_err("not for iris");
        assert_eq!(e.candidates, ["gtm/switchover"]);
        let e = lookup("nope", Some("gtm")).expect_err("unknown");
        assert_eq!(e.candidates.len(), ALL.len());
    }

    #[test]
    fn every_builtin_parses_and_has_a_version_and_a_source() {
        for b in ALL {
            let (name, version, source) = metadata(b);
            assert!(
                !version.is_empty() && !source.is_empty(),
                "{}: {name}",
                b.id()
            );
        }
    }

    #[test]
    fn every_builtin_is_a_file_of_the_repository() {
        for b in ALL {
            let path = format!("{}/../runbooks/{}.yaml", env!("CARGO_MANIFEST_DIR"), b.id());
            assert_eq!(fs_err::read_to_string(path).expect("the file"), b.text);
        }
        let files = fs_err::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../runbooks"))
            .expect("runbooks/")
            .filter_map(Result::ok)
            .flat_map(|d| {
                fs_err::read_dir(d.path())
                    .into_iter()
                    .flatten()
                    .filter_map(Result::ok)
            })
            .filter(|f| f.path().extension().is_some_and(|e| e == "yaml"))
            .count();
        assert_eq!(
            files,
            ALL.len(),
            "every runbook of runbooks/ ships in the binary"
        );
    }
}
