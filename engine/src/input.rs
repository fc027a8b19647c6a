//! Reading an input file (runbook, inventory, `--params` file) without trusting it.
//!
//! A file given on the command line may be a device (`/dev/zero`), a FIFO that a process feeds
//! forever, or simply huge. So:
//!
//! - only regular files are read: anything else is refused before a byte is read, since a read
//!   from a device or a pipe may never end;
//! - the read is bounded: at most [`MAX_FILE_BYTES`] bytes are taken, one more tells that the
//!   file is larger, and the file is refused (a regular file can still grow while it is read);
//! - the text must be UTF-8; the first byte that is not is located by line and column.
//!
//! Every refusal is a located diagnostic (the whole-file ones at 1:1), so the usual report
//! shows which file and why. Limits and their reasons: docs/runbook-format.md, "Input limits".

use std::io::Read;
use std::path::Path;

use crate::diagnostic::{Code, Diagnostic, SourceFile};
use crate::yaml::Span;

/// The largest input file read, in bytes (16 MiB). A runbook of 100,000 steps is about 8.5 MB;
/// nothing written by a person comes near, and every stage after the read is linear in the size,
/// so this bounds the memory and time a file can cost.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a text file of at most [`MAX_FILE_BYTES`]. `what` names the file in messages ("the
/// runbook", "the inventory", "the parameter file").
pub fn read_text(path: &Path, what: &str) -> Result<String, Diagnostic> {
    read_text_limited(path, what, MAX_FILE_BYTES)
}

/// [`read_text`] with another limit (for tests).
pub fn read_text_limited(path: &Path, what: &str, limit: u64) -> Result<String, Diagnostic> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| {
        Diagnostic::new(Code::Io, format!("cannot read {what}: {e}"))
            .help("check the path and that the file is readable")
    };
    let whole_file = |code: Code, message: String, label: &str, help: &str| {
        Diagnostic::new(code, message)
            .in_file(&SourceFile::new(&name, String::new()))
            .primary(Span::new(0, 0), label)
            .help(help)
    };
    // `metadata` follows symlinks, as `open` does: a link to a regular file is fine.
    let meta = fs_err::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(whole_file(
            Code::InputNotAFile,
            format!("{what} `{name}` is not a regular file ({})", kind(&meta)),
            "not a regular file",
            "give the path of a file; devices, pipes and directories are not read, since a read from them may never end",
        ));
    }
    let file = fs_err::File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(limit)).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(whole_file(
            Code::InputTooLarge,
            format!("{what} `{name}` is larger than {}", human(limit)),
            "this file is too large",
            &format!(
                "runbooks, inventories and parameter files are read up to {}; split the file, or check that it is the right one",
                human(limit)
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| not_utf8(&name, what, e))
}

/// The largest secret file read (`--secret NAME=file:PATH`), in bytes (64 KiB): a password, a
/// token or a key is far smaller.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Reads a secret from a file, as [`read_text`] reads an input but with messages that never
/// quote the content (no source snippet, no bytes shown): a regular file of at most
/// [`MAX_SECRET_BYTES`], in UTF-8.
pub fn read_secret(path: &Path) -> Result<String, String> {
    read_secret_limited(path, MAX_SECRET_BYTES)
}

fn read_secret_limited(path: &Path, limit: u64) -> Result<String, String> {
    let meta = fs_err::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!(
            "`{}` is not a regular file ({}); a read from it may never end",
            path.display(),
            kind(&meta)
        ));
    }
    let file = fs_err::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "`{}` is larger than {}, too large for a secret",
            path.display(),
            human(limit)
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "`{}` is not UTF-8 (at byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// A located diagnostic for the first byte that is not UTF-8.
fn not_utf8(name: &str, what: &str, err: std::string::FromUtf8Error) -> Diagnostic {
    let at = err.utf8_error().valid_up_to();
    let bad = err.utf8_error().error_len().unwrap_or(1);
    let bytes = err.into_bytes();
    let shown: Vec<String> = bytes[at..(at + bad).min(bytes.len())]
        .iter()
        .map(|b| format!("0x{b:02x}"))
        .collect();
    // The text before the bad byte is valid and unchanged by the lossy conversion, so the
    // replacement character stands at the same byte offset.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    Diagnostic::new(
        Code::InputNotUtf8,
        format!(
            "{what} is not UTF-8 text: byte {} is not valid here",
            shown.join(" ")
        ),
    )
    .in_file(&SourceFile::new(name, text))
    .primary(Span::new(at, end), "not UTF-8")
    .help("save the file as UTF-8; a Latin-1 or UTF-16 file, or a binary file, cannot be read")
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_is_bounded_and_its_content_never_quoted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").expect("write");
        assert_eq!(read_secret(&path).expect("reads"), "s3cret\n");
        let err = read_secret_limited(&path, 3).expect_err("too large");
        assert!(err.contains("too large for a secret"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        std::fs::write(&path, b"s3cret\xff").expect("write");
        let err = read_secret(&path).expect_err("not utf-8");
        assert!(
            err.contains("not UTF-8 (at byte 6)") && !err.contains("s3cret"),
            "{err}"
        );
        let err = read_secret(Path::new("/dev/zero")).expect_err("a device");
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn reads_a_small_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "a: 1\n").expect("write");
        assert_eq!(read_text(&path, "the runbook").expect("reads"), "a: 1\n");
    }

    #[test]
    fn refuses_a_file_over_the_limit_without_reading_it_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, "x".repeat(11)).expect("write");
        assert!(read_text_limited(&path, "the runbook", 11).is_ok());
        let d = read_text_limited(&path, "the runbook", 10).expect_err("too large");
        assert_eq!(d.code, Code::InputTooLarge);
        assert_eq!(d.location().map(|l| (l.1, l.2)), Some((1, 1)));
    }

    #[test]
    fn refuses_devices_directories_and_pipes() {
        let dir = tempfile::tempdir().expect("tempdir");
        for path in [Path::new("/dev/zero"), dir.path()] {
            let d = read_text(path, "the runbook").expect_err("not a file");
            assert_eq!(d.code, Code::InputNotAFile, "{}", d.message);
        }
    }

    #[test]
    fn locates_the_first_byte_that_is_not_utf8() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("latin1.yaml");
        std::fs::write(&path, b"a: 1\nname: caf\xe9 x\n").expect("write");
        let d = read_text(&path, "the runbook").expect_err("not utf-8");
        assert_eq!(d.code, Code::InputNotUtf8);
        assert!(d.message.contains("0xe9"), "{}", d.message);
        assert_eq!(d.location().map(|l| (l.1, l.2)), Some((2, 10)));
    }
}
