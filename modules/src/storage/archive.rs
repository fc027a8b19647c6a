//! `storage.archive` and `storage.restore`: a verified `.tar.gz` backup of a directory, and
//! putting it back.
//!
//! Seed `000_fc9617c117eaba83.txt`, section 3.10: "Alternatively, you can use a backup/restore
//! procedure"; and before the folders of section 3.2 are deleted on instance B, a backup of them
//! is the way back.
//!
//! `storage.archive` writes `dest` (`tar -czf`, numeric owners) through a temporary name and two
//! sidecars beside it: `dest.sha256` (`HASH  NAME`, as `sha256sum` prints it) and
//! `dest.manifest` (the sha256 of the directory's manifest: every entry's type, mode, symlink
//! target and path, and every file's sha256). The directory must not change while it is
//! archived (its manifest is taken before and after). It prints
//! `{"archive": ..., "sha256": ..., "bytes": N, "manifest": ...}`. In state (check 0,
//! `runbook: unchanged`): the archive matches its `.sha256` and its `.manifest` is the
//! directory's manifest now.
//!
//! `storage.restore` verifies the archive against its `.sha256` (a damaged archive is never
//! unpacked), unpacks it into a staging directory beside `dest`, compares the staging
//! directory's manifest with `.manifest` (when there is one), and only then puts it in place of
//! `dest` (the old `dest` is renamed aside and removed afterwards). It prints
//! `{"dest": ..., "archive": ..., "manifest": ...}`. In state: `dest`'s manifest equals the
//! archive's `.manifest`.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::{json_word, path, preamble};
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{
    CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, RenderError, UNCHANGED,
};
use crate::param::{ParamSpec, ParamType};
use crate::transfer::beside;

/// The `storage.archive` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArchiveModule;

/// The `storage.restore` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreModule;

crate::params! {
    struct ArchiveParams {

        path: ParamSpec::required(ParamType::Path, "The directory to back up"),
        dest: ParamSpec::required(ParamType::Path,
            "The archive to write (`.tar.gz`), with `.sha256` and `.manifest` beside it",
        ),
    }
}

static ARCHIVE_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(ArchiveParams::specs);

crate::params! {
    struct RestoreParams {

        archive: ParamSpec::required(ParamType::Path,
            "An archive made by `storage.archive` (its `.sha256` beside it)",
        ),
        dest: ParamSpec::required(ParamType::Path,
            "The directory to restore (replaced as a whole)",
        ),
    }
}

static RESTORE_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(RestoreParams::specs);

/// `a=ARCHIVE` and the test that it matches its `.sha256` (`$sum`, `$want` set).
const VERIFY: &str = "\
[ -f \"$a\" ] || fail \"$a: no such archive\"
[ -f \"$a.sha256\" ] || fail \"$a.sha256: no checksum beside the archive\"
want=$(cut -d' ' -f1 < \"$a.sha256\")
sum=$(sha256sum < \"$a\" | cut -d' ' -f1)
";

impl Module for ArchiveModule {
    fn name(&self) -> &'static str {
        "storage.archive"
    }

    fn description(&self) -> &'static str {
        "Back up a directory to a .tar.gz with sha256 and manifest sidecars"
    }

    fn params(&self) -> &[ParamSpec] {
        &ARCHIVE_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = ArchiveParams::read(args);
        let mut s = archive_head(args)?;
        let _ = write!(
            s,
            "if [ \"$ok\" = 1 ]; then printf '%s\\n' {}; exit 0; fi\n\
             mkdir -p -- \"$(dirname -- \"$a\")\" || exit 2\n\
             tmp=\"$a.runbook-tmp\"\n\
             tar -C \"$p\" --numeric-owner -czf \"$tmp\" . || {{ rm -f -- \"$tmp\"; fail \"tar could not archive $p\"; }}\n\
             gzip -t \"$tmp\" || {{ rm -f -- \"$tmp\"; fail \"the archive of $p does not read back\"; }}\n\
             [ \"$(manifest \"$p\")\" = \"$m\" ] || {{ rm -f -- \"$tmp\"; fail \"$p changed while it was archived; run again when it is quiet\"; }}\n\
             sum=$(sha256sum < \"$tmp\" | cut -d' ' -f1)\n\
             mv -f -- \"$tmp\" \"$a\" || exit 2\n\
             printf '%s  %s\\n' \"$sum\" \"$(basename -- \"$a\")\" > \"$a.sha256\" || exit 2\n\
             printf '%s\\n' \"$m\" > \"$a.manifest\" || exit 2\n\
             printf '{{\"archive\":%s,\"sha256\":\"%s\",\"bytes\":%s,\"manifest\":\"%s\"}}\\n' {} \"$sum\" \"$(stat -c %s -- \"$a\")\" \"$m\"",
            quote(UNCHANGED),
            json_word(p.dest),
        );
        Ok(vec![Operation::Remote(super::vendor_lines::summarised(
            Command::new(s),
        ))])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let mut s = archive_head(args)?;
        let _ = write!(
            s,
            "if [ \"$ok\" = 1 ]; then exit {CHECK_IN_STATE}; else exit {CHECK_WOULD_CHANGE}; fi"
        );
        Ok(Some(vec![Operation::Remote(Command::probe(s))]))
    }
}

/// Sets `ok=1` when the archive is in state.
fn archive_head(args: &Args) -> Result<String, RenderError> {
    let p = ArchiveParams::read(args);
    let mut s = preamble("storage.archive");
    let _ = write!(
        s,
        "p={}\na={}\n\
         [ -d \"$p\" ] || fail \"$p is not a directory\"\n\
         m=$(manifest \"$p\")\n\
         ok=0\n\
         if [ -f \"$a\" ] && [ -f \"$a.sha256\" ] && [ -f \"$a.manifest\" ] && [ \"$(cat -- \"$a.manifest\")\" = \"$m\" ] \
         && [ \"$(sha256sum < \"$a\" | cut -d' ' -f1)\" = \"$(cut -d' ' -f1 < \"$a.sha256\")\" ]; then ok=1; fi\n",
        path(p.path)?,
        path(p.dest)?,
    );
    Ok(s)
}

impl Module for RestoreModule {
    fn name(&self) -> &'static str {
        "storage.restore"
    }

    fn description(&self) -> &'static str {
        "Restore a directory from a verified storage.archive backup"
    }

    fn params(&self) -> &[ParamSpec] {
        &RESTORE_PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = RestoreParams::read(args);
        let mut s = preamble("storage.restore");
        let stage = p
            .dest
            .get()
            .map(|d| beside(&d.to_string(), "runbook-staging"))
            .unwrap_or_default();
        let _ = write!(
            s,
            "a={}\nd={}\nstage={}\n{VERIFY}\
             [ \"$sum\" = \"$want\" ] || fail \"$a has sha256 $sum but its checksum file says $want: not restoring a damaged archive\"\n\
             m=\n[ ! -f \"$a.manifest\" ] || m=$(cat -- \"$a.manifest\")\n\
             if [ -n \"$m\" ] && [ -d \"$d\" ] && [ \"$(manifest \"$d\")\" = \"$m\" ]; then printf '%s\\n' {}; exit 0; fi\n\
             [ ! -e \"$d\" ] || [ -d \"$d\" ] || fail \"$d exists and is not a directory\"\n\
             mkdir -p -- \"$(dirname -- \"$d\")\" || exit 2\n\
             rm -rf -- \"$stage\" \"$d.runbook-old\" && mkdir -- \"$stage\" || exit 2\n\
             tar -xpzf \"$a\" --numeric-owner -C \"$stage\" || {{ rm -rf -- \"$stage\"; fail \"cannot unpack $a\"; }}\n\
             got=$(manifest \"$stage\")\n\
             [ -z \"$m\" ] || [ \"$got\" = \"$m\" ] || {{ rm -rf -- \"$stage\"; fail \"the unpacked tree's manifest $got differs from the archive's $m\"; }}\n\
             if [ -e \"$d\" ]; then\n  \
               mv -- \"$d\" \"$d.runbook-old\" && mv -- \"$stage\" \"$d\" && rm -rf -- \"$d.runbook-old\" || exit 2\n\
             else\n  \
               mv -- \"$stage\" \"$d\" || exit 2\n\
             fi\n\
             printf '{{\"dest\":%s,\"archive\":%s,\"manifest\":\"%s\"}}\\n' {} {} \"$got\"",
            path(p.archive)?,
            path(p.dest)?,
            quote(&stage),
            quote(UNCHANGED),
            json_word(p.dest),
            json_word(p.archive),
        );
        Ok(vec![Operation::Remote(super::vendor_lines::summarised(
            Command::new(s),
        ))])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let p = RestoreParams::read(args);
        let mut s = preamble("storage.restore");
        let _ = write!(
            s,
            "a={}\nd={}\n{VERIFY}\
             [ \"$sum\" = \"$want\" ] || fail \"$a has sha256 $sum but its checksum file says $want\"\n\
             if [ -f \"$a.manifest\" ] && [ -d \"$d\" ] && [ \"$(manifest \"$d\")\" = \"$(cat -- \"$a.manifest\")\" ]; then exit {CHECK_IN_STATE}; fi\n\
             exit {CHECK_WOULD_CHANGE}",
            path(p.archive)?,
            path(p.dest)?,
        );
        Ok(Some(vec![Operation::Remote(Command::probe(s))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::{
        TempDir, probe, remote, run, run_check, s, stderr, stdout, syntax_ok,
    };

    #[test]
    fn archive_then_restore_round_trip() {
        let dir = TempDir::new("archive");
        let src = dir.join("content");
        std::fs::create_dir_all(src.join("USER")).expect("mkdir");
        std::fs::write(src.join("USER/page.html"), "<p>hi</p>").expect("write");
        std::os::unix::fs::symlink("page.html", src.join("USER/index.html")).expect("link");
        let a = [
            ("path", s(&dir.str("content"))),
            ("dest", s(&dir.str("backup/content.tar.gz"))),
        ];
        let (achk, apply) = (probe(&ArchiveModule, &a), remote(&ArchiveModule, &a));
        syntax_ok(&apply.script);
        assert_eq!(run_check(&achk, dir.path()), 1);
        let out = run(&apply, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        let sidecar =
            std::fs::read_to_string(dir.join("backup/content.tar.gz.sha256")).expect("sidecar");
        assert_eq!(
            sidecar,
            format!(
                "{}  content.tar.gz\n",
                json["sha256"].as_str().expect("sum")
            )
        );
        assert_eq!(run_check(&achk, dir.path()), 0);
        assert_eq!(stdout(&run(&apply, dir.path())), "runbook: unchanged\n");

        // A change makes the archive stale.
        std::fs::write(src.join("USER/new.html"), "new").expect("write");
        assert_eq!(run_check(&achk, dir.path()), 1);
        assert!(run(&apply, dir.path()).status.success());
        assert_eq!(run_check(&achk, dir.path()), 0);

        // Restore somewhere else, then over a damaged tree.
        let r = [
            ("archive", s(&dir.str("backup/content.tar.gz"))),
            ("dest", s(&dir.str("restored"))),
        ];
        let (rchk, restore) = (probe(&RestoreModule, &r), remote(&RestoreModule, &r));
        syntax_ok(&restore.script);
        assert_eq!(run_check(&rchk, dir.path()), 1);
        let out = run(&restore, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(dir.join("restored/USER/new.html")).expect("restored"),
            "new"
        );
        assert_eq!(run_check(&rchk, dir.path()), 0);
        assert_eq!(stdout(&run(&restore, dir.path())), "runbook: unchanged\n");
        std::fs::write(dir.join("restored/USER/page.html"), "damaged").expect("write");
        assert_eq!(run_check(&rchk, dir.path()), 1);
        assert!(run(&restore, dir.path()).status.success());
        assert_eq!(
            std::fs::read_to_string(dir.join("restored/USER/page.html")).expect("restored"),
            "<p>hi</p>"
        );
        assert!(!dir.join(".restored.runbook-staging").exists());
        assert!(!dir.join("restored.runbook-old").exists());
    }

    #[test]
    fn a_damaged_archive_is_not_restored() {
        let dir = TempDir::new("archive-damaged");
        std::fs::create_dir(dir.join("c")).expect("mkdir");
        std::fs::write(dir.join("c/f"), "x").expect("write");
        let a = [
            ("path", s(&dir.str("c"))),
            ("dest", s(&dir.str("c.tar.gz"))),
        ];
        assert!(
            run(&remote(&ArchiveModule, &a), dir.path())
                .status
                .success()
        );
        let mut bytes = std::fs::read(dir.join("c.tar.gz")).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(dir.join("c.tar.gz"), bytes).expect("write");
        let r = [
            ("archive", s(&dir.str("c.tar.gz"))),
            ("dest", s(&dir.str("out"))),
        ];
        let out = run(&remote(&RestoreModule, &r), dir.path());
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("not restoring a damaged archive"),
            "{}",
            stderr(&out)
        );
        assert!(!dir.join("out").exists());
    }
}
