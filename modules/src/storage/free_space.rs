//! `storage.free_space`: a gate on the free space of a file system.
//!
//! Before the copy of seed `000_fc9617c117eaba83.txt` section 3.10 (an `IRIS.DAT` can be large)
//! or before an archive, fail early rather than halfway. `path` may not exist yet: the nearest
//! existing parent is measured (`df -Pk`). It prints
//! `{"path": ..., "free_bytes": N, "needed_bytes": M}` and fails (exit 1, the numbers on stderr)
//! when `free_bytes < needed_bytes`. Its check is the same comparison: 0 when there is room.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::{json_word, path, preamble, size};
use crate::args::Args;
use crate::command::Command;
use crate::module::{CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};

/// The `storage.free_space` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct FreeSpaceModule;

crate::params! {
    struct Params {

        path: ParamSpec::required(ParamType::Path,
            "A path on the file system to measure (need not exist yet)",
        ),
        needed: ParamSpec::required(ParamType::String,
            "Free space required: bytes, or `512M`, `10G`",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for FreeSpaceModule {
    fn name(&self) -> &'static str {
        "storage.free_space"
    }

    fn description(&self) -> &'static str {
        "Fail unless a file system has at least the given free space"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        Ok(vec![Operation::Remote(super::vendor_lines::summarised(
            Command::probe(script(args, true)?),
        ))])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        Ok(Some(vec![Operation::Remote(Command::probe(script(
            args, false,
        )?))]))
    }
}

fn script(args: &Args, json: bool) -> Result<String, RenderError> {
    let p = Params::read(args);
    let needed = size(p.needed)?.ok_or_else(|| RenderError::new(p.needed.name(), "is required"))?;
    let mut s = preamble("storage.free_space");
    let _ = write!(
        s,
        "p={}\n\
         a=$p\n\
         while [ ! -d \"$a\" ]; do a=$(dirname -- \"$a\"); done\n\
         kib=$(df -Pk -- \"$a\" | awk 'NR == 2 {{ print $4 }}')\n\
         [ -n \"$kib\" ] || fail \"cannot tell the free space of $a\"\n\
         free=$((kib * 1024))\n",
        path(p.path)?
    );
    if json {
        let _ = write!(
            s,
            "printf '{{\"path\":%s,\"free_bytes\":%s,\"needed_bytes\":%s}}\\n' {} \"$free\" {needed}\n\
             [ \"$free\" -ge {needed} ] || {{ printf 'storage.free_space: %s has %s bytes free, %s needed\\n' \"$a\" \"$free\" {needed} >&2; exit 1; }}",
            json_word(p.path),
        );
    } else {
        let _ = write!(
            s,
            "if [ \"$free\" -ge {needed} ]; then exit {CHECK_IN_STATE}; else exit {CHECK_WOULD_CHANGE}; fi"
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::{TempDir, check, probe, run, run_check, s, stderr, stdout};
    use crate::value::Value;

    fn gate(raw: &[(&str, Value)]) -> Command {
        match FreeSpaceModule
            .render(&check(&FreeSpaceModule, raw))
            .expect("renders")
            .as_slice()
        {
            [Operation::Remote(cmd)] => cmd.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn passes_with_room_and_fails_without() {
        let dir = TempDir::new("free");
        let path = dir.str("not/yet/there");
        let ok = gate(&[("path", s(&path)), ("needed", s("1K"))]);
        assert!(!ok.mutating);
        let out = run(&ok, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        assert_eq!(json["needed_bytes"], 1024);
        assert_eq!(json["path"], path.as_str());
        assert!(json["free_bytes"].as_u64().expect("free") > 1024);

        let huge = [("path", s(&path)), ("needed", s("1048576T"))];
        let out = run(&gate(&huge), dir.path());
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("bytes free, 1152921504606846976 needed"),
            "{}",
            stderr(&out)
        );
        assert_eq!(run_check(&probe(&FreeSpaceModule, &huge), dir.path()), 1);
        assert_eq!(
            run_check(
                &probe(
                    &FreeSpaceModule,
                    &[("path", s(&path)), ("needed", Value::Int(1))]
                ),
                dir.path()
            ),
            0
        );
        let err = FreeSpaceModule
            .render(&check(
                &FreeSpaceModule,
                &[("path", s(&path)), ("needed", s("lots"))],
            ))
            .expect_err("refused");
        assert_eq!(err.arg, Some("needed"));
    }
}
