//! The `storage` family: files and directories of an instance during a planned outage.
//!
//! The HealthShare mirroring procedure (seed `000_fc9617c117eaba83.txt`) moves data by hand:
//! section 3.10 / 4.10 copies `<installdir>/mgr/hssys/IRIS.DAT` from the primary to the backup
//! member and sets its permissions; section 3.2 / 4.11 copies the `csp/` and
//! `hscommunity-content/` folders to a shared drive, deletes them on both instances and leaves
//! symbolic links in their place. These modules do that work so it can be checked, resumed and
//! repeated:
//!
//! - `storage.copy` copies a file or a directory from another inventory host, through the
//!   controller (hosts hold no credentials for each other), in chunks, verified by sha256 on
//!   both ends, renamed into place atomically, and resumable after an interruption (see
//!   [`crate::transfer`]);
//! - `storage.permissions` sets mode, owner and group (optionally recursively);
//! - `storage.relocate` moves a directory to a shared drive and leaves a symbolic link;
//! - `storage.archive` and `storage.restore` make a verified `.tar.gz` backup and put it back;
//! - `storage.free_space` is a gate: it fails when a file system has too little room.
//!
//! Every module is query-then-act: its check compares what is on the host (sha256 sums, a
//! directory *manifest* — type, mode, symlink target and path of each entry and the sha256 of
//! each file — modes and owners) with what the step asks for, and a mutating command that finds
//! nothing to do prints `runbook: unchanged`. They need GNU coreutils, findutils and tar on the
//! hosts (`stat -c`, `find -printf`, `tar --sort=name`).

mod archive;
mod copy;
mod free_space;
mod permissions;
mod relocate;
mod vendor_lines;

pub use archive::{ArchiveModule, RestoreModule};
pub use copy::CopyModule;
pub use free_space::FreeSpaceModule;
pub use permissions::PermissionsModule;
pub use relocate::RelocateModule;

use crate::arg::Arg;
use crate::command::quote;
use crate::module::{Module, RenderError};
use crate::transfer::parse_bytes;
use crate::value::Value;

/// Every `storage` module, for the registry.
pub fn all() -> Vec<Box<dyn Module>> {
    vec![
        Box::new(CopyModule),
        Box::new(PermissionsModule),
        Box::new(RelocateModule),
        Box::new(ArchiveModule),
        Box::new(RestoreModule),
        Box::new(FreeSpaceModule),
    ]
}

/// The `fail` function every script starts with: the module's name and the message on stderr,
/// exit 2. Plus the `stream` and `manifest` functions of [`crate::transfer`].
fn preamble(module: &str) -> String {
    format!(
        "fail() {{ printf '%s: %s\\n' {} \"$*\" >&2; exit 2; }}\n{}",
        quote(module),
        crate::transfer::MANIFEST_FN
    )
}

/// A path argument as a shell word. Paths may not be secrets.
fn path(arg: Arg<'_>) -> Result<String, RenderError> {
    let name = arg.name();
    match arg.get() {
        Some(Value::Secret(_)) => Err(RenderError::new(name, "cannot be a secret")),
        Some(Value::Str(s)) => Ok(quote(s)),
        Some(other) => Ok(quote(&other.to_string())),
        None => Err(RenderError::new(name, "is required")),
    }
}

/// A path as a JSON string, itself quoted as one shell word (for `printf '%s'`).
fn json_word(arg: Arg<'_>) -> String {
    let text = arg.get().map(ToString::to_string).unwrap_or_default();
    quote(&serde_json::to_string(&text).expect("a string serializes"))
}

/// A size argument (`8M`, `10GiB`, `1048576`) in bytes.
fn size(arg: Arg<'_>) -> Result<Option<u64>, RenderError> {
    let name = arg.name();
    match arg.get() {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Int(i)) => u64::try_from(*i)
            .map(Some)
            .map_err(|_| RenderError::new(name, format!("must not be negative, found {i}"))),
        Some(Value::Str(s)) => parse_bytes(s).map(Some).ok_or_else(|| {
            RenderError::new(
                name,
                format!("expected a size such as `512K`, `8M` or `10G`, found `{s}`"),
            )
        }),
        Some(other) => Err(RenderError::new(
            name,
            format!("must be known when the plan is made, found `{other}`"),
        )),
    }
}

/// An octal mode (`640`, `0750`, `2775`).
fn mode(arg: Arg<'_>) -> Result<Option<String>, RenderError> {
    match arg.get() {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Str(m))
            if (3..=4).contains(&m.len()) && m.bytes().all(|b| (b'0'..=b'7').contains(&b)) =>
        {
            Ok(Some(m.clone()))
        }
        Some(other) => Err(RenderError::new(
            arg.name(),
            format!("expected an octal mode such as `0640`, found `{other}`"),
        )),
    }
}

#[cfg(test)]
mod testing {
    //! Helpers shared by the family's unit tests.

    use std::process::Output;

    pub use crate::generic::testing::{TempDir, check, probe, remote, run, run_check, s, stdout};

    pub fn stderr(out: &Output) -> String {
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `sh -n`: the script parses.
    pub fn syntax_ok(script: &str) {
        let out = std::process::Command::new("/bin/sh")
            .args(["-n", "-c", script])
            .output()
            .expect("sh -n");
        assert!(out.status.success(), "{script}\n{}", stderr(&out));
    }
}
