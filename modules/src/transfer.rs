//! Copying a file or a directory from one inventory host to another, through the controller.
//!
//! Hosts hold no credentials for each other, so a [`Transfer`] is carried out by the engine:
//! it runs small read-only scripts on the source host, reads the data in chunks of
//! [`Transfer::chunk_bytes`] (each chunk is the standard output of one command on the source)
//! and appends each chunk to a partial file on the destination (the standard input of one
//! command there). Memory on the controller stays bounded by one chunk.
//!
//! The protocol, each step a script built here (so it is unit-tested like any module's):
//!
//! 1. [`Transfer::source_script`] on the source: kind, size, mode, owner and sha256 (one line,
//!    parsed by [`SourceState::parse`]).
//! 2. [`Transfer::dest_script`] on the destination: what is there already (and its sha256 when
//!    it could be the same), the size of a partial copy left by an interrupted run, the free
//!    space and whether the copy runs as root ([`DestState::parse`]).
//! 3. Identical ([`identical`]): nothing to do. Too little space ([`needed_bytes`]): fail
//!    before writing anything.
//! 4. A partial copy is resumed, not restarted, once the sha256 of its bytes matches the
//!    sha256 of as many bytes of the source ([`Transfer::source_prefix_script`],
//!    [`Transfer::partial_prefix_script`]); otherwise it is discarded.
//! 5. Chunks: [`Transfer::read_script`] on the source, [`Transfer::append_script`] on the
//!    destination (which refuses to append at any offset but the partial file's size).
//! 6. [`Transfer::finish_script`] on the destination: the sha256 of the whole must match the
//!    source's (or the partial copy is removed and the step fails), owner (as root) and mode
//!    are set, and the copy is renamed over the destination.
//!
//! A directory travels as a tar stream (GNU tar, `--sort=name --numeric-owner --format=gnu`,
//! so the stream is the same byte for byte each time it is produced from an unchanged tree,
//! which is what lets an interrupted copy resume at an offset). On the destination it is
//! unpacked into a staging directory, whose *manifest* (every entry's type, mode, symlink
//! target and path, and every file's sha256; not owners or times) must equal the source's
//! before the staging directory replaces the destination. The manifest's sha256 is also what
//! says whether a directory is already identical.

use std::fmt::{self, Write as _};

use crate::command::quote;

/// Copy `src` on the inventory host `from` to `dest` on the action's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// The inventory name of the source host.
    pub from: String,
    /// A file or a directory on the source host.
    pub src: String,
    /// The path it gets on the action's host.
    pub dest: String,
    /// The most bytes one command carries.
    pub chunk_bytes: u64,
    /// Bytes that must remain free on the destination's file system after the copy.
    pub reserve_bytes: u64,
    /// Only compare (a module's check): exit 0 when the destination is identical, 1 when the
    /// transfer would copy.
    pub probe: bool,
    /// The module name, for messages (`storage.copy`).
    pub module: &'static str,
}

/// A file or a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        match word {
            "file" => Some(Kind::File),
            "dir" => Some(Kind::Dir),
            _ => None,
        }
    }
}

/// What the source is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceState {
    pub kind: Kind,
    /// Bytes to carry: the file's size, or the tar stream's.
    pub size: u64,
    /// Permission bits in octal, as `stat -c %a` prints them.
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    /// The file's sha256, or the directory manifest's.
    pub sha256: String,
}

/// What the destination holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestState {
    /// `None`: nothing there.
    pub kind: Option<Kind>,
    pub mode: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Computed only when the destination could be identical (same kind and, for a file, the
    /// same size).
    pub sha256: Option<String>,
    /// Bytes of a partial copy left by an interrupted transfer.
    pub partial: u64,
    pub free_bytes: u64,
    /// Whether the destination side runs as root (owners can be kept).
    pub root: bool,
}

fn is_sha(word: &str) -> bool {
    word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_mode(word: &str) -> bool {
    !word.is_empty() && word.len() <= 4 && word.bytes().all(|b| (b'0'..=b'7').contains(&b))
}

impl SourceState {
    /// Parses the line of [`Transfer::source_script`]: `KIND SIZE MODE UID GID SHA256`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let line = text.lines().rev().find(|l| !l.trim().is_empty());
        let bad = || format!("unexpected answer from the source: {:?}", text.trim());
        let words: Vec<&str> = line.ok_or_else(bad)?.split_whitespace().collect();
        let [kind, size, mode, uid, gid, sha] = words.as_slice() else {
            return Err(bad());
        };
        if !is_mode(mode) || !is_sha(sha) {
            return Err(bad());
        }
        Ok(Self {
            kind: Kind::parse(kind).ok_or_else(bad)?,
            size: size.parse().map_err(|_| bad())?,
            mode: (*mode).to_owned(),
            uid: uid.parse().map_err(|_| bad())?,
            gid: gid.parse().map_err(|_| bad())?,
            sha256: (*sha).to_owned(),
        })
    }
}

impl DestState {
    /// Parses the line of [`Transfer::dest_script`]:
    /// `KIND MODE UID GID SHA256 PARTIAL FREE_KIB ROOT`, `-` for what is not known.
    pub fn parse(text: &str) -> Result<Self, String> {
        let line = text.lines().rev().find(|l| !l.trim().is_empty());
        let bad = || format!("unexpected answer from the destination: {:?}", text.trim());
        let words: Vec<&str> = line.ok_or_else(bad)?.split_whitespace().collect();
        let [kind, mode, uid, gid, sha, partial, free_kib, root] = words.as_slice() else {
            return Err(bad());
        };
        let opt = |w: &str| (w != "-").then(|| w.to_owned());
        let num = |w: &str| -> Result<Option<u32>, String> {
            opt(w).map(|w| w.parse().map_err(|_| bad())).transpose()
        };
        let kind = match *kind {
            "none" => None,
            other => Some(Kind::parse(other).ok_or_else(bad)?),
        };
        let mode = opt(mode);
        let sha256 = opt(sha);
        if mode.as_deref().is_some_and(|m| !is_mode(m))
            || sha256.as_deref().is_some_and(|s| !is_sha(s))
        {
            return Err(bad());
        }
        let free_kib: u64 = free_kib.parse().map_err(|_| bad())?;
        Ok(Self {
            kind,
            mode,
            uid: num(uid)?,
            gid: num(gid)?,
            sha256,
            partial: partial.parse().map_err(|_| bad())?,
            free_bytes: free_kib.saturating_mul(1024),
            root: *root == "1",
        })
    }
}

/// Whether the destination already is what the transfer would make it: the same content
/// (sha256 of the file, or of the directory manifest) and mode, and, when the destination runs
/// as root, the same owner and group for a file.
pub fn identical(src: &SourceState, dest: &DestState) -> bool {
    let mode = |m: &str| m.trim_start_matches('0').to_owned();
    dest.kind == Some(src.kind)
        && dest.sha256.as_deref() == Some(src.sha256.as_str())
        && dest.mode.as_deref().map(mode) == Some(mode(&src.mode))
        && (src.kind == Kind::Dir
            || !dest.root
            || (dest.uid == Some(src.uid) && dest.gid == Some(src.gid)))
}

/// Bytes the copy still needs on the destination: the data (twice for a directory: the tar
/// stream and the unpacked tree), less what a partial copy already holds, plus the reserve.
pub fn needed_bytes(t: &Transfer, src: &SourceState, dest: &DestState) -> u64 {
    let data = match src.kind {
        Kind::File => src.size,
        Kind::Dir => src.size.saturating_mul(2),
    };
    let already = if dest.partial <= src.size {
        dest.partial
    } else {
        0
    };
    data.saturating_sub(already).saturating_add(t.reserve_bytes)
}

/// `DIR/.NAME.SUFFIX` for `DIR/NAME`: a temporary name in the same directory (so a rename is
/// atomic), hidden, and the same each time (so an interrupted run finds it).
pub(crate) fn beside(path: &str, suffix: &str) -> String {
    let path = path.trim_end_matches('/');
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), path),
    };
    format!("{dir}.{name}.{suffix}")
}

/// Shell functions the scripts share: `fail`, the deterministic tar `stream` of a directory
/// and its `manifest` sha256.
fn functions(module: &str) -> String {
    format!(
        "fail() {{ printf '%s: %s\\n' {} \"$*\" >&2; exit 2; }}\n{MANIFEST_FN}",
        quote(module)
    )
}

/// `stream DIR` writes the directory as a tar stream that is the same byte for byte each time
/// (for an unchanged tree); `manifest DIR` prints the sha256 of the tree's manifest.
pub(crate) const MANIFEST_FN: &str = "\
stream() { tar -C \"$1\" --sort=name --numeric-owner --format=gnu -cf - .; }
manifest() { ( cd \"$1\" || exit 2; find . -printf '%y %m %l %p\\n' | LC_ALL=C sort; \
find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum ) | sha256sum | cut -d' ' -f1; }
";

impl Transfer {
    /// The partial copy on the destination: `.NAME.runbook-partial` beside `dest` (for a
    /// directory, the tar stream).
    pub fn partial_path(&self) -> String {
        self.beside("runbook-partial")
    }

    /// Where a directory is unpacked before it replaces `dest`.
    pub fn staging_path(&self) -> String {
        self.beside("runbook-staging")
    }

    fn beside(&self, suffix: &str) -> String {
        beside(&self.dest, suffix)
    }

    /// On the source: `KIND SIZE MODE UID GID SHA256`.
    pub fn source_script(&self) -> String {
        format!(
            "{}src={}\n\
             [ -e \"$src\" ] || fail \"$src: no such file or directory on the source\"\n\
             [ -r \"$src\" ] || fail \"$src: not readable\"\n\
             meta=$(stat -L -c '%a %u %g' -- \"$src\") || exit 2\n\
             if [ -f \"$src\" ]; then\n  \
               size=$(stat -L -c %s -- \"$src\") || exit 2\n  \
               sum=$(sha256sum < \"$src\" | cut -d' ' -f1)\n  \
               [ -n \"$sum\" ] || fail \"cannot read $src\"\n  \
               echo \"file $size $meta $sum\"\n\
             elif [ -d \"$src\" ]; then\n  \
               size=$(stream \"$src\" | wc -c) || exit 2\n  \
               sum=$(manifest \"$src\")\n  \
               echo \"dir $size $meta $sum\"\n\
             else\n  \
               fail \"$src is neither a file nor a directory\"\n\
             fi",
            functions(self.module),
            quote(&self.src)
        )
    }

    /// On the destination, given the source's kind and size:
    /// `KIND MODE UID GID SHA256 PARTIAL FREE_KIB ROOT`.
    pub fn dest_script(&self, src: &SourceState) -> String {
        let hash = match src.kind {
            Kind::File => format!(
                "[ \"$(stat -c %s -- \"$dest\")\" = {} ] && sum=$(sha256sum < \"$dest\" | cut -d' ' -f1)",
                src.size
            ),
            Kind::Dir => "sum=$(manifest \"$dest\")".to_owned(),
        };
        format!(
            "{}dest={}\npart={}\nkind={}\n\
             if [ ! -e \"$dest\" ] && [ ! -L \"$dest\" ]; then have=none\n\
             elif [ -d \"$dest\" ]; then have=dir\n\
             elif [ -f \"$dest\" ]; then have=file\n\
             else have=other; fi\n\
             case \"$kind/$have\" in\n  \
               file/dir) fail \"$dest is a directory\" ;;\n  \
               dir/file|*/other) fail \"$dest exists and is not a directory\" ;;\n\
             esac\n\
             meta='- - -'; sum=-\n\
             if [ \"$have\" = \"$kind\" ]; then\n  \
               meta=$(stat -L -c '%a %u %g' -- \"$dest\") || exit 2\n  \
               {hash}\n  \
               [ -n \"$sum\" ] || sum=-\n\
             fi\n\
             partial=0\n\
             if [ -f \"$part\" ]; then partial=$(stat -c %s -- \"$part\") || exit 2; fi\n\
             a=$(dirname -- \"$dest\")\n\
             while [ ! -d \"$a\" ]; do a=$(dirname -- \"$a\"); done\n\
             free=$(df -Pk -- \"$a\" | awk 'NR == 2 {{ print $4 }}')\n\
             [ -n \"$free\" ] || fail \"cannot tell the free space of $a\"\n\
             root=0; [ \"$(id -u)\" = 0 ] && root=1\n\
             echo \"$have $meta $sum $partial $free $root\"",
            functions(self.module),
            quote(&self.dest),
            quote(&self.partial_path()),
            src.kind.as_str(),
        )
    }

    /// On the source: the sha256 of its first `len` bytes (of the tar stream, for a directory).
    pub fn source_prefix_script(&self, kind: Kind, len: u64) -> String {
        let read = match kind {
            Kind::File => "head -c {len} -- \"$src\"",
            Kind::Dir => "stream \"$src\" | head -c {len}",
        }
        .replace("{len}", &len.to_string());
        format!(
            "{}src={}\n{read} | sha256sum | cut -d' ' -f1",
            functions(self.module),
            quote(&self.src)
        )
    }

    /// On the destination: the sha256 of the partial copy's first `len` bytes.
    pub fn partial_prefix_script(&self, len: u64) -> String {
        format!(
            "head -c {len} -- {} | sha256sum | cut -d' ' -f1",
            quote(&self.partial_path())
        )
    }

    /// On the destination: removes the partial copy (it does not match the source).
    pub fn discard_script(&self) -> String {
        format!("rm -f -- {}", quote(&self.partial_path()))
    }

    /// On the source: `len` bytes from `offset` on standard output.
    pub fn read_script(&self, kind: Kind, offset: u64, len: u64) -> String {
        let from = offset + 1;
        let read = match kind {
            Kind::File => format!("tail -c +{from} -- \"$src\" | head -c {len}"),
            Kind::Dir => format!("stream \"$src\" | tail -c +{from} | head -c {len}"),
        };
        format!(
            "{}src={}\n[ -r \"$src\" ] || fail \"$src: not readable\"\n{read}",
            functions(self.module),
            quote(&self.src)
        )
    }

    /// On the destination: appends standard input to the partial copy, which must hold
    /// exactly `offset` bytes (so a chunk is never written twice), and must then hold `end`.
    pub fn append_script(&self, offset: u64, end: u64) -> String {
        format!(
            "{}part={}\numask 077\n\
             mkdir -p -- \"$(dirname -- \"$part\")\" || exit 2\n\
             have=0\n\
             if [ -f \"$part\" ]; then have=$(stat -c %s -- \"$part\") || exit 2; fi\n\
             [ \"$have\" = {offset} ] || fail \"$part holds $have bytes, expected {offset}: another copy is running, or run again to resume\"\n\
             cat >> \"$part\" || exit 2\n\
             have=$(stat -c %s -- \"$part\")\n\
             [ \"$have\" = {end} ] || fail \"$part holds $have bytes after the chunk, expected {end}\"",
            functions(self.module),
            quote(&self.partial_path()),
        )
    }

    /// On the destination: verifies the whole copy against the source's sha256, keeps the
    /// source's owner (as root) and mode, and renames it over `dest`. A copy that does not
    /// match is removed and the step fails.
    pub fn finish_script(&self, src: &SourceState) -> String {
        let mut out = format!(
            "{}part={}\ndest={}\nwant={}\n",
            functions(self.module),
            quote(&self.partial_path()),
            quote(&self.dest),
            quote(&src.sha256),
        );
        let mismatch = "fail \"the copy's sha256 $sum does not match the source's $want: the partial copy was removed; run again\"";
        let owner = format!(
            "if [ \"$(id -u)\" = 0 ]; then chown -h {}:{} -- \"$t\" || exit 2; fi\nchmod {} -- \"$t\" || exit 2\n",
            src.uid, src.gid, src.mode
        );
        match src.kind {
            Kind::File => {
                let _ = write!(
                    out,
                    "sum=$(sha256sum < \"$part\" | cut -d' ' -f1)\n\
                     [ -n \"$sum\" ] || exit 2\n\
                     if [ \"$sum\" != \"$want\" ]; then rm -f -- \"$part\"; {mismatch}; fi\n\
                     t=$part\n{owner}\
                     mv -f -- \"$part\" \"$dest\" || exit 2"
                );
            }
            Kind::Dir => {
                let _ = write!(
                    out,
                    "stage={}\n\
                     rm -rf -- \"$stage\" \"$dest.runbook-old\" && mkdir -- \"$stage\" || exit 2\n\
                     if ! tar -xpf \"$part\" --numeric-owner -C \"$stage\"; then rm -rf -- \"$stage\" \"$part\"; fail \"cannot unpack the copy: the partial copy was removed; run again\"; fi\n\
                     t=$stage\n{owner}\
                     sum=$(manifest \"$stage\")\n\
                     if [ \"$sum\" != \"$want\" ]; then rm -rf -- \"$stage\" \"$part\"; {mismatch}; fi\n\
                     if [ -e \"$dest\" ]; then\n  \
                       mv -- \"$dest\" \"$dest.runbook-old\" && mv -- \"$stage\" \"$dest\" && rm -rf -- \"$dest.runbook-old\" || exit 2\n\
                     else\n  \
                       mv -- \"$stage\" \"$dest\" || exit 2\n\
                     fi\n\
                     rm -f -- \"$part\"",
                    quote(&self.staging_path())
                );
            }
        }
        out
    }
}

/// `transfer a:/src → /dest (8 MiB chunks, sha256-verified)`; a probe reads
/// `compare a:/src with /dest (sha256)`.
impl fmt::Display for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.probe {
            write!(
                f,
                "compare {}:{} with {} (sha256)",
                self.from, self.src, self.dest
            )
        } else {
            write!(
                f,
                "transfer {}:{} → {} ({} chunks through the controller, sha256-verified",
                self.from,
                self.src,
                self.dest,
                bytes(self.chunk_bytes)
            )?;
            if self.reserve_bytes > 0 {
                write!(f, ", keeping {} free", bytes(self.reserve_bytes))?;
            }
            f.write_str(")")
        }
    }
}

/// `8 MiB`, `512 KiB`, `100 B`: exact binary units only.
pub fn bytes(n: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} B")
}

/// Parses a size: `1048576`, `512K`, `8M`, `8MiB`, `2G`, `1T` (binary units).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::testing::TempDir;

    fn transfer(src: &str, dest: &str) -> Transfer {
        Transfer {
            from: "a".into(),
            src: src.into(),
            dest: dest.into(),
            chunk_bytes: 4,
            reserve_bytes: 0,
            probe: false,
            module: "storage.copy",
        }
    }

    fn sh(script: &str, stdin: &[u8]) -> (i32, Vec<u8>, String) {
        use std::io::Write as _;
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut input = child.stdin.take().expect("stdin");
        let _ = input.write_all(stdin);
        drop(input);
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code().unwrap_or(-1),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(script: &str, stdin: &[u8]) -> Vec<u8> {
        let (code, out, err) = sh(script, stdin);
        assert_eq!(code, 0, "{script}\nstderr: {err}");
        out
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("utf-8")
    }

    /// The engine's driver, in miniature: both ends are local directories.
    fn drive(t: &Transfer, stop_after: Option<usize>) -> Result<(u64, usize), String> {
        let src = SourceState::parse(&text(ok(&t.source_script(), b"")))?;
        let dest = DestState::parse(&text(ok(&t.dest_script(&src), b"")))?;
        if identical(&src, &dest) {
            return Ok((0, 0));
        }
        let mut offset = 0;
        if dest.partial > 0 && dest.partial <= src.size {
            let a = ok(&t.source_prefix_script(src.kind, dest.partial), b"");
            let b = ok(&t.partial_prefix_script(dest.partial), b"");
            if a == b {
                offset = dest.partial;
            } else {
                ok(&t.discard_script(), b"");
            }
        } else if dest.partial > 0 {
            ok(&t.discard_script(), b"");
        }
        let resumed = offset;
        let mut chunks = 0;
        loop {
            let len = t.chunk_bytes.min(src.size - offset);
            if len == 0 && offset > 0 {
                break;
            }
            let data = ok(&t.read_script(src.kind, offset, len), b"");
            assert_eq!(data.len() as u64, len);
            ok(&t.append_script(offset, offset + len), &data);
            offset += len;
            chunks += 1;
            if stop_after == Some(chunks) {
                return Err("stopped".into());
            }
            if offset >= src.size {
                break;
            }
        }
        let (code, _, err) = sh(&t.finish_script(&src), b"");
        if code != 0 {
            return Err(err);
        }
        Ok((resumed, chunks))
    }

    #[test]
    fn a_file_is_copied_resumed_and_then_identical() {
        let dir = TempDir::new("transfer-file");
        let src = dir.str("src.dat");
        let dest = dir.str("out/dest.dat");
        std::fs::write(&src, b"0123456789abcdefXYZ").expect("src");
        std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .expect("chmod");
        let t = transfer(&src, &dest);
        assert_eq!(drive(&t, Some(2)), Err("stopped".into()));
        assert_eq!(
            std::fs::read(dir.join("out/.dest.dat.runbook-partial")).expect("partial"),
            b"01234567"
        );
        assert!(!dir.join("out/dest.dat").exists());
        // Resumed at 8 bytes: 3 more chunks (4 + 4 + 3).
        assert_eq!(drive(&t, None), Ok((8, 3)));
        assert_eq!(std::fs::read(&dest).expect("dest"), b"0123456789abcdefXYZ");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&dest).expect("dest").permissions(),
        );
        assert_eq!(mode & 0o7777, 0o640);
        assert!(!dir.join("out/.dest.dat.runbook-partial").exists());
        assert_eq!(drive(&t, None), Ok((0, 0)), "identical now");
    }

    #[test]
    fn a_partial_copy_that_does_not_match_is_restarted() {
        let dir = TempDir::new("transfer-bad-partial");
        let src = dir.str("src.dat");
        let dest = dir.str("dest.dat");
        std::fs::write(&src, b"0123456789").expect("src");
        std::fs::write(dir.join(".dest.dat.runbook-partial"), b"XXXX").expect("partial");
        assert_eq!(drive(&transfer(&src, &dest), None), Ok((0, 3)));
        assert_eq!(std::fs::read(&dest).expect("dest"), b"0123456789");
    }

    #[test]
    fn a_copy_whose_sum_differs_is_removed_and_fails() {
        let dir = TempDir::new("transfer-mismatch");
        let src = dir.str("src.dat");
        std::fs::write(&src, b"0123456789").expect("src");
        let t = transfer(&src, &dir.str("dest.dat"));
        let state = SourceState::parse(&text(ok(&t.source_script(), b""))).expect("source");
        ok(&t.append_script(0, 10), b"0123456780");
        let (code, _, err) = sh(&t.finish_script(&state), b"");
        assert_eq!(code, 2);
        assert!(err.starts_with("storage.copy: the copy's sha256"), "{err}");
        assert!(!dir.join(".dest.dat.runbook-partial").exists());
        assert!(!dir.join("dest.dat").exists());
    }

    #[test]
    fn append_refuses_a_chunk_at_the_wrong_offset() {
        let dir = TempDir::new("transfer-offset");
        let t = transfer(&dir.str("s"), &dir.str("d"));
        ok(&t.append_script(0, 3), b"abc");
        let (code, _, err) = sh(&t.append_script(0, 3), b"abc");
        assert_eq!(code, 2);
        assert!(err.contains("holds 3 bytes, expected 0"), "{err}");
        assert_eq!(
            std::fs::read(dir.join(".d.runbook-partial")).expect("p"),
            b"abc"
        );
    }

    #[test]
    fn a_directory_travels_as_a_tar_stream_and_is_verified_by_manifest() {
        let dir = TempDir::new("transfer-dir");
        let src = dir.join("csp");
        std::fs::create_dir_all(src.join("app/sub")).expect("mkdir");
        std::fs::write(src.join("app/index.csp"), "hello\n").expect("write");
        std::fs::write(src.join("app/sub/big.bin"), vec![7u8; 30_000]).expect("write");
        std::os::unix::fs::symlink("index.csp", src.join("app/link")).expect("symlink");
        std::fs::set_permissions(
            src.join("app"),
            std::os::unix::fs::PermissionsExt::from_mode(0o750),
        )
        .expect("chmod");
        let mut t = transfer(&dir.str("csp"), &dir.str("shared/csp"));
        t.chunk_bytes = 8192;
        let (resumed, chunks) = drive(&t, None).expect("copied");
        assert_eq!(resumed, 0);
        assert!(chunks > 1);
        assert_eq!(
            std::fs::read_to_string(dir.join("shared/csp/app/index.csp")).expect("file"),
            "hello\n"
        );
        assert_eq!(
            std::fs::read_link(dir.join("shared/csp/app/link")).expect("link"),
            std::path::Path::new("index.csp")
        );
        assert!(!dir.join("shared/.csp.runbook-partial").exists());
        assert!(!dir.join("shared/.csp.runbook-staging").exists());
        assert_eq!(drive(&t, None), Ok((0, 0)), "identical now");

        // A change on the source is copied again, over the old tree; an interrupted copy of a
        // directory resumes too.
        std::fs::write(src.join("app/index.csp"), "changed\n").expect("write");
        assert_eq!(drive(&t, Some(1)), Err("stopped".into()));
        let (resumed, _) = drive(&t, None).expect("copied");
        assert_eq!(resumed, 8192);
        assert_eq!(
            std::fs::read_to_string(dir.join("shared/csp/app/index.csp")).expect("file"),
            "changed\n"
        );
        assert!(!dir.join("shared/csp.runbook-old").exists());
    }

    #[test]
    fn the_destination_kind_must_fit() {
        let dir = TempDir::new("transfer-kind");
        std::fs::write(dir.join("f"), "x").expect("f");
        std::fs::create_dir(dir.join("d")).expect("d");
        let t = transfer(&dir.str("f"), &dir.str("d"));
        let src = SourceState::parse(&text(ok(&t.source_script(), b""))).expect("src");
        let (code, _, err) = sh(&t.dest_script(&src), b"");
        assert_eq!(code, 2);
        assert!(err.contains("is a directory"), "{err}");
        let (code, _, err) = sh(&transfer(&dir.str("nope"), "x").source_script(), b"");
        assert_eq!(code, 2);
        assert!(err.contains("no such file or directory"), "{err}");
    }

    #[test]
    fn states_parse_and_space_is_counted() {
        let sha = "a".repeat(64);
        let src = SourceState::parse(&format!("file 100 640 0 0 {sha}\n")).expect("src");
        let dest = DestState::parse(&format!("file 640 0 0 {sha} 0 12 1\n")).expect("dest");
        assert_eq!(dest.free_bytes, 12 * 1024);
        assert!(identical(&src, &dest));
        let other = DestState {
            uid: Some(5),
            ..dest.clone()
        };
        assert!(!identical(&src, &other), "owner differs, as root");
        assert!(identical(
            &src,
            &DestState {
                root: false,
                ..other
            }
        ));
        assert!(!identical(
            &src,
            &DestState {
                mode: Some("644".into()),
                ..dest.clone()
            }
        ));
        let none = DestState::parse("none - - - - 40 1 0").expect("none");
        let mut t = transfer("s", "d");
        t.reserve_bytes = 5;
        assert_eq!(needed_bytes(&t, &src, &none), 100 - 40 + 5);
        assert!(SourceState::parse("file x 640 0 0 abc").is_err());
        assert!(SourceState::parse("file 1 9999 0 0 abc").is_err());
        assert!(DestState::parse("weird - - - - 0 0 0").is_err());
    }

    #[test]
    fn sizes_and_display() {
        assert_eq!(parse_bytes("8M"), Some(8 << 20));
        assert_eq!(parse_bytes("8 MiB"), Some(8 << 20));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("2g"), Some(2 << 30));
        assert_eq!(parse_bytes("eight"), None);
        assert_eq!(parse_bytes("8X"), None);
        assert_eq!(bytes(8 << 20), "8 MiB");
        assert_eq!(bytes(1000), "1000 B");
        let mut t = transfer("/x/IRIS.DAT", "/y/IRIS.DAT");
        t.chunk_bytes = 8 << 20;
        assert_eq!(
            t.to_string(),
            "transfer a:/x/IRIS.DAT → /y/IRIS.DAT (8 MiB chunks through the controller, sha256-verified)"
        );
        t.probe = true;
        assert_eq!(
            t.to_string(),
            "compare a:/x/IRIS.DAT with /y/IRIS.DAT (sha256)"
        );
        assert_eq!(t.partial_path(), "/y/.IRIS.DAT.runbook-partial");
        assert_eq!(transfer("s", "rel").partial_path(), ".rel.runbook-partial");
        assert_eq!(
            transfer("s", "/d/csp/").staging_path(),
            "/d/.csp.runbook-staging"
        );
    }
}
