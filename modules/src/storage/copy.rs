//! `storage.copy`: a file or a directory from another inventory host, through the controller.
//!
//! Seed `000_fc9617c117eaba83.txt`, section 3.10 ("Copying HSSYS to the Backup Failover
//! Member"): "Copy the `<installdir>/mgr/hssys/IRIS.DAT` file from the primary member to the
//! same directory on the backup member, overwriting the existing `IRIS.DAT` file." The step runs
//! on the backup (the destination) with `from:` naming the primary.
//!
//! It renders one [`Operation::Transfer`]; the engine carries it out with the scripts of
//! [`crate::transfer`]: chunks of `chunk_size` read on the source and appended to a partial copy
//! on the destination, the sha256 checked against the source's, the owner (as root) and mode of
//! the source kept, and a rename over `dest`. An interrupted copy resumes where its partial copy
//! ends. The check compares both ends (sha256 and mode) without copying anything.

use std::sync::LazyLock;

use super::size;
use crate::arg::Arg;
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::transfer::Transfer;
use crate::value::Value;

/// The `storage.copy` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyModule;

/// The default chunk: 8 MiB, the most one command carries.
pub const DEFAULT_CHUNK: u64 = 8 << 20;

/// The largest chunk accepted (a chunk is held in the controller's memory twice).
const MAX_CHUNK: u64 = 256 << 20;

crate::params! {
    struct Params {

        from: ParamSpec::required(ParamType::String,
            "The inventory host to copy from (checked against the inventory)",
        ),
        src: ParamSpec::required(ParamType::Path, "The file or directory on that host"),
        dest: ParamSpec::required(ParamType::Path,
            "Its path on the step's host (replaced when it differs)",
        ),
        chunk_size: ParamSpec::optional(ParamType::String,
            "Bytes per command through the controller (`8M`)",
        )
        .with_default(Value::Str("8M".into())),
        reserve: ParamSpec::optional(ParamType::String,
            "Space that must stay free on the destination after the copy (`1G`)",
        )
        .with_default(Value::Str("0".into())),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for CopyModule {
    fn name(&self) -> &'static str {
        "storage.copy"
    }

    fn description(&self) -> &'static str {
        "Copy a file or directory from another host through the controller (sha256-verified, resumable)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        Ok(vec![Operation::Transfer(transfer(args, false)?)])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        Ok(Some(vec![Operation::Transfer(transfer(args, true)?)]))
    }
}

fn transfer(args: &Args, probe: bool) -> Result<Transfer, RenderError> {
    let p = Params::read(args);
    let from = match p.from.get() {
        Some(Value::Str(s)) if !s.is_empty() => s.clone(),
        Some(Value::Deferred(_)) => {
            return Err(RenderError::new(
                p.from.name(),
                "must be known when the plan is made (an inventory host name, not an output)",
            ));
        }
        _ => {
            return Err(RenderError::new(
                p.from.name(),
                "expected an inventory host name",
            ));
        }
    };
    let text = |arg: Arg<'_>| match arg.get() {
        Some(Value::Secret(_)) => Err(RenderError::new(arg.name(), "cannot be a secret")),
        Some(v) => Ok(v.to_string()),
        None => Err(RenderError::new(arg.name(), "is required")),
    };
    let (src, dest) = (text(p.src)?, text(p.dest)?);
    for (name, p) in [("src", &src), ("dest", &dest)] {
        if p.trim_end_matches('/').is_empty() || p.ends_with("/.") || p.ends_with("/..") {
            return Err(RenderError::new(
                name,
                format!("expected the path of a file or directory, found `{p}`"),
            ));
        }
    }
    let chunk_bytes = size(p.chunk_size)?.unwrap_or(DEFAULT_CHUNK);
    if chunk_bytes == 0 || chunk_bytes > MAX_CHUNK {
        return Err(RenderError::new(
            p.chunk_size.name(),
            format!("must be from 1 byte to 256M, found {chunk_bytes} bytes"),
        ));
    }
    Ok(Transfer {
        from,
        src,
        dest,
        chunk_bytes,
        reserve_bytes: size(p.reserve)?.unwrap_or(0),
        probe,
        module: "storage.copy",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::{check, s};

    fn render(raw: &[(&str, Value)]) -> Result<Vec<Operation>, RenderError> {
        CopyModule.render(&check(&CopyModule, raw))
    }

    #[test]
    fn renders_one_transfer_and_a_comparing_check() {
        let raw = [
            ("from", s("primary")),
            ("src", s("/usr/irissys/mgr/hssys/IRIS.DAT")),
            ("dest", s("/usr/irissys/mgr/hssys/IRIS.DAT")),
            ("reserve", s("1G")),
        ];
        let ops = render(&raw).expect("renders");
        let want = Transfer {
            from: "primary".into(),
            src: "/usr/irissys/mgr/hssys/IRIS.DAT".into(),
            dest: "/usr/irissys/mgr/hssys/IRIS.DAT".into(),
            chunk_bytes: 8 << 20,
            reserve_bytes: 1 << 30,
            probe: false,
            module: "storage.copy",
        };
        assert_eq!(ops, vec![Operation::Transfer(want.clone())]);
        assert_eq!(
            ops[0].to_string(),
            "transfer primary:/usr/irissys/mgr/hssys/IRIS.DAT → /usr/irissys/mgr/hssys/IRIS.DAT \
             (8 MiB chunks through the controller, sha256-verified, keeping 1 GiB free)"
        );
        let checks = CopyModule
            .check(&check(&CopyModule, &raw))
            .expect("check")
            .expect("has one");
        assert_eq!(
            checks,
            vec![Operation::Transfer(Transfer {
                probe: true,
                ..want
            })]
        );
    }

    #[test]
    fn refuses_bad_arguments() {
        let base = |extra: (&'static str, Value)| {
            let mut raw = vec![("from", s("a")), ("src", s("/x")), ("dest", s("/y"))];
            raw.retain(|(k, _)| *k != extra.0);
            raw.push(extra);
            render(&raw).expect_err("refused")
        };
        assert_eq!(base(("chunk_size", s("0"))).arg, Some("chunk_size"));
        assert_eq!(base(("chunk_size", s("1T"))).arg, Some("chunk_size"));
        assert_eq!(base(("chunk_size", s("lots"))).arg, Some("chunk_size"));
        assert_eq!(base(("reserve", s("-1"))).arg, Some("reserve"));
        assert_eq!(base(("from", s(""))).arg, Some("from"));
        assert_eq!(
            base(("from", Value::Deferred("h.stdout".into()))).arg,
            Some("from")
        );
        assert_eq!(base(("dest", s("/"))).arg, Some("dest"));
        assert_eq!(base(("src", s("/x/.."))).arg, Some("src"));
        assert!(CopyModule.idempotent());
    }
}
