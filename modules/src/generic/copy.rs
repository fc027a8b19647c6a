//! `copy`: write a file on the target host from content given in the runbook.
//!
//! Use it for configuration files, unit files, keys: anything whose full content the runbook
//! knows. The write is atomic and idempotent:
//!
//! - the content travels on standard input (never on a command line, and a secret content stays
//!   a [`Value::Secret`]) into a hidden temporary file next to `dest`, created with mode 0600;
//! - `mode`, `owner` and `group` are applied to the temporary file;
//! - when `dest` already has the same bytes and the same mode (and owner/group when given), the
//!   temporary file is dropped and the step prints `unchanged`;
//! - otherwise it is renamed over `dest` with `mv -f` (one `rename(2)`: readers see the old or
//!   the new file, never a partial one) and the step prints `changed`.
//!
//! The parent directory must exist. A symbolic link at `dest` is replaced by the file. The
//! script uses `mktemp`, `cmp` and GNU/busybox `stat -c`, all present on Debian.
//!
//! [`render_file`] is shared with `template`, which differs only in the name of its content
//! argument.

use std::sync::LazyLock;

use super::{Words, present};
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `copy` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyModule;

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| {
    file_params(ParamSpec::required(
        "content",
        ParamType::String,
        "The file's exact content (sent on standard input)",
    ))
});

impl Module for CopyModule {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn description(&self) -> &'static str {
        "Write a file from given content, atomically, only when it differs"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        render_file(self.name(), args, "content")
    }
}

/// The parameters of a file-writing module, `content` being its content parameter.
pub(super) fn file_params(content: ParamSpec) -> Vec<ParamSpec> {
    vec![
        ParamSpec::required(
            "dest",
            ParamType::Path,
            "The file to write on the target host",
        ),
        content,
        ParamSpec::optional(
            "mode",
            ParamType::String,
            "Permissions as 3 or 4 octal digits, such as 0644 or 0600",
        )
        .with_default(Value::Str("0644".into())),
        ParamSpec::optional(
            "owner",
            ParamType::String,
            "User to own the file (name or uid)",
        ),
        ParamSpec::optional(
            "group",
            ParamType::String,
            "Group of the file (name or gid)",
        ),
    ]
}

/// Renders the atomic, compare-first write of `copy` and `template`.
pub(super) fn render_file(
    module: &str,
    args: &Args,
    content_arg: &'static str,
) -> Result<Vec<Operation>, RenderError> {
    let dest = present(args, "dest").ok_or_else(|| RenderError::new("dest", "is required"))?;
    let content =
        present(args, content_arg).ok_or_else(|| RenderError::new(content_arg, "is required"))?;
    let dest_text = dest.to_string();
    let (dir, base) = dest_text
        .rsplit_once('/')
        .unwrap_or(("", dest_text.as_str()));
    if matches!(base, "" | "." | "..") {
        return Err(RenderError::new(
            "dest",
            format!("`{dest_text}` names a directory; give the path of the file to write"),
        ));
    }
    let mode = present(args, "mode")
        .cloned()
        .unwrap_or_else(|| Value::Str("0644".into()));
    if let Value::Str(text) = &mode
        && (!(3..=4).contains(&text.len()) || !text.bytes().all(|b| matches!(b, b'0'..=b'7')))
    {
        return Err(RenderError::new(
            "mode",
            format!("expected 3 or 4 octal digits such as 0644 or 755, found `{text}`"),
        ));
    }
    let owner = present(args, "owner");
    let group = present(args, "group");
    for (name, value) in [("owner", owner), ("group", group)] {
        if let Some(Value::Str(text)) = value
            && (text.is_empty() || text.contains(':') || text.chars().any(char::is_whitespace))
        {
            return Err(RenderError::new(
                name,
                format!("expected a {name} name or id, found `{text}`"),
            ));
        }
    }

    let mut words = Words::default();
    let mut script = String::new();
    let mut line = |text: String| {
        script.push_str(&text);
        script.push('\n');
    };
    line(format!("dest={}", words.path(dest)));
    line(format!(
        "if [ -d \"$dest\" ]; then printf '{module}: %s is a directory\\n' \"$dest\" >&2; \
         exit 1; fi"
    ));
    let template = if dir.is_empty() && !dest_text.starts_with('/') {
        format!(".{base}.XXXXXX")
    } else {
        format!("{dir}/.{base}.XXXXXX")
    };
    line(format!("tmp=$(mktemp {}) || exit 1", quote(&template)));
    line("trap 'rm -f \"$tmp\"' EXIT".to_owned());
    line("trap 'exit 1' HUP INT TERM".to_owned());
    line("cat > \"$tmp\" || exit 1".to_owned());
    line(format!("chmod {} \"$tmp\" || exit 1", words.word(&mode)));
    let mut meta = String::from("%a");
    match (owner, group) {
        (Some(owner), Some(group)) => {
            meta.push_str(" %u %g");
            let (owner, group) = (words.word(owner), words.word(group));
            line(format!("chown {owner}:{group} \"$tmp\" || exit 1"));
        }
        (Some(owner), None) => {
            meta.push_str(" %u");
            line(format!("chown {} \"$tmp\" || exit 1", words.word(owner)));
        }
        (None, Some(group)) => {
            meta.push_str(" %g");
            line(format!("chgrp {} \"$tmp\" || exit 1", words.word(group)));
        }
        (None, None) => {}
    }
    let meta = quote(&meta);
    line(format!(
        "if cmp -s \"$tmp\" \"$dest\" && \
         [ \"$(stat -c {meta} \"$tmp\")\" = \"$(stat -c {meta} \"$dest\")\" ]; then \
         echo unchanged; exit 0; fi"
    ));
    line("mv -f \"$tmp\" \"$dest\" || exit 1".to_owned());
    script.push_str("echo changed");
    let command = Command::new(script).stdin(content.clone());
    Ok(vec![Operation::Remote(words.attach(command))])
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::generic::testing::{TempDir, check, hostile, remote, run, s, stdout};

    const SCRIPT: &str = "dest=/etc/app/app.conf
if [ -d \"$dest\" ]; then printf 'copy: %s is a directory\\n' \"$dest\" >&2; exit 1; fi
tmp=$(mktemp /etc/app/.app.conf.XXXXXX) || exit 1
trap 'rm -f \"$tmp\"' EXIT
trap 'exit 1' HUP INT TERM
cat > \"$tmp\" || exit 1
chmod 0640 \"$tmp\" || exit 1
chown app:adm \"$tmp\" || exit 1
if cmp -s \"$tmp\" \"$dest\" && [ \"$(stat -c '%a %u %g' \"$tmp\")\" = \"$(stat -c '%a %u %g' \"$dest\")\" ]; then echo unchanged; exit 0; fi
mv -f \"$tmp\" \"$dest\" || exit 1
echo changed";

    #[test]
    fn renders_an_atomic_compare_first_write() {
        let cmd = remote(
            &CopyModule,
            &[
                ("dest", s("/etc/app/app.conf")),
                ("content", s("port = 80\n")),
                ("mode", s("0640")),
                ("owner", s("app")),
                ("group", s("adm")),
            ],
        );
        assert_eq!(cmd.script, SCRIPT);
        assert_eq!(cmd.stdin, Some(s("port = 80\n")));
        assert!(cmd.mutating && cmd.env.is_empty());
        assert!(CopyModule.idempotent());

        let cmd = remote(&CopyModule, &[("dest", s("app.conf")), ("content", s(""))]);
        assert!(
            cmd.script
                .contains("\ntmp=$(mktemp .app.conf.XXXXXX) || exit 1\n")
        );
        assert!(cmd.script.contains("\nchmod 0644 \"$tmp\" || exit 1\n"));
        assert!(cmd.script.contains("[ \"$(stat -c '%a' \"$tmp\")\""));
        assert!(!cmd.script.contains("chown"));
    }

    #[test]
    fn refuses_bad_mode_owner_and_dest() {
        for bad in ["644x", "99", "0648", "12345", "rw-r--r--", "+x", ""] {
            let args = check(
                &CopyModule,
                &[("dest", s("/x")), ("content", s("")), ("mode", s(bad))],
            );
            assert_eq!(
                CopyModule.render(&args).expect_err(bad).arg,
                Some("mode"),
                "{bad:?}"
            );
        }
        for good in ["755", "0600", "2755"] {
            let args = check(
                &CopyModule,
                &[("dest", s("/x")), ("content", s("")), ("mode", s(good))],
            );
            assert!(CopyModule.render(&args).is_ok(), "{good}");
        }
        let args = check(
            &CopyModule,
            &[("dest", s("/x")), ("content", s("")), ("owner", s("a:b"))],
        );
        assert_eq!(
            CopyModule.render(&args).expect_err("colon").arg,
            Some("owner")
        );
        for bad in ["/etc/", "/etc/..", "."] {
            let args = check(&CopyModule, &[("dest", s(bad)), ("content", s(""))]);
            assert_eq!(
                CopyModule.render(&args).expect_err(bad).arg,
                Some("dest"),
                "{bad:?}"
            );
        }
    }

    fn write(dest: &str, content: &str, mode: &str, cwd: &std::path::Path) -> String {
        let cmd = remote(
            &CopyModule,
            &[
                ("dest", s(dest)),
                ("content", s(content)),
                ("mode", s(mode)),
            ],
        );
        let out = run(&cmd, cwd);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    }

    fn entries(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_atomically_then_reports_unchanged() {
        let dir = TempDir::new("copy-run");
        let dest = dir.str("app.conf");
        let content = "a = 'b'\n$HOME `x`\n";
        assert_eq!(write(&dest, content, "0640", dir.path()), "changed\n");
        assert_eq!(std::fs::read_to_string(&dest).expect("written"), content);
        let meta = std::fs::metadata(&dest).expect("dest");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert_eq!(entries(dir.path()), ["app.conf"], "no temporary file left");

        assert_eq!(write(&dest, content, "0640", dir.path()), "unchanged\n");
        assert_eq!(
            std::fs::metadata(&dest).expect("dest").ino(),
            meta.ino(),
            "untouched"
        );

        // Same content, other mode: fixed, by replacing the file.
        assert_eq!(write(&dest, content, "600", dir.path()), "changed\n");
        let meta2 = std::fs::metadata(&dest).expect("dest");
        assert_eq!(meta2.permissions().mode() & 0o7777, 0o600);
        assert_ne!(
            meta2.ino(),
            meta.ino(),
            "replaced by rename, not rewritten in place"
        );

        assert_eq!(write(&dest, "new\n", "600", dir.path()), "changed\n");
        assert_eq!(std::fs::read_to_string(&dest).expect("written"), "new\n");
        assert_eq!(entries(dir.path()), ["app.conf"]);

        // A relative dest is relative to the working directory.
        assert_eq!(write("rel.conf", "r", "644", dir.path()), "changed\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("rel.conf")).expect("written"),
            "r"
        );
    }

    #[test]
    fn a_failed_write_leaves_dest_and_no_temporary_file() {
        let dir = TempDir::new("copy-fail");
        let dest = dir.str("app.conf");
        assert_eq!(write(&dest, "old\n", "644", dir.path()), "changed\n");
        let cmd = remote(
            &CopyModule,
            &[
                ("dest", s(&dest)),
                ("content", s("new\n")),
                ("owner", s("no-such-user-rb")),
            ],
        );
        assert!(!run(&cmd, dir.path()).status.success());
        assert_eq!(std::fs::read_to_string(&dest).expect("kept"), "old\n");
        assert_eq!(entries(dir.path()), ["app.conf"]);

        std::fs::create_dir(dir.join("sub")).expect("mkdir");
        let cmd = remote(
            &CopyModule,
            &[("dest", s(&dir.str("sub"))), ("content", s("x"))],
        );
        let out = run(&cmd, dir.path());
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
        assert!(entries(&dir.join("sub")).is_empty());
    }

    #[test]
    fn hostile_values_stay_inert() {
        let dir = TempDir::new("copy-hostile");
        let marker = dir.join("pwned");
        for value in hostile(&marker) {
            for arg in ["dest", "owner", "group", "mode"] {
                let mut raw = vec![("dest", s(&dir.str("f"))), ("content", s("x"))];
                if arg == "dest" {
                    raw[0].1 = s(&value);
                } else {
                    raw.push((arg, s(&value)));
                }
                let Ok(ops) = CopyModule.render(&check(&CopyModule, &raw)) else {
                    continue;
                };
                let [Operation::Remote(cmd)] = ops.as_slice() else {
                    panic!("one command")
                };
                let _ = run(cmd, dir.path());
                assert!(!marker.exists(), "escaped quoting via {arg}: {value:?}");
            }
            // As content it is written verbatim.
            assert_eq!(write(&dir.str("f"), &value, "644", dir.path()), "changed\n");
            assert_eq!(std::fs::read_to_string(dir.join("f")).expect("f"), value);
            assert!(!marker.exists());
        }
    }

    #[test]
    fn secret_content_stays_secret_on_stdin() {
        let secret = Value::Secret("password=hunter2\n".into());
        let cmd = remote(
            &CopyModule,
            &[("dest", s("/etc/app/key")), ("content", secret.clone())],
        );
        assert_eq!(cmd.stdin, Some(secret));
        assert!(!cmd.script.contains("hunter2"));
        assert!(!cmd.to_string().contains("hunter2"));
        assert!(cmd.to_string().ends_with("echo changed <<< ********"));
    }
}
