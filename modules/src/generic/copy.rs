//! `copy`: write a file on the target host from content given in the runbook.
//!
//! Use it for configuration files, unit files, keys: anything whose full content the runbook
//! knows. The write is atomic and idempotent:
//!
//! - the content travels on standard input (never on a command line, and a secret content stays
//!   a [`Value::Secret`]) into a hidden temporary file next to `dest`, created with mode 0600;
//! - `mode`, `owner` and `group` are applied to the temporary file;
//! - when `dest` already has the same bytes and the same mode (and owner/group when given), the
//!   temporary file is dropped and the step prints the [`UNCHANGED`](crate::UNCHANGED) marker;
//! - otherwise it is renamed over `dest` with `mv -f` (one `rename(2)`: readers see the old or
//!   the new file, never a partial one) and the step prints `changed`.
//!
//! The check ([`check_file`]) answers the same question without writing anything: it hashes the
//! content (on standard input) and `dest` with `sha256sum` and compares mode, owner and group
//! with `stat`.
//!
//! The parent directory must exist. A symbolic link at `dest` is replaced by the file. The
//! scripts use `mktemp`, `cmp`, `sha256sum` and GNU/busybox `stat -c`, all present on Debian.
//!
//! [`render_file`] is shared with `template`, which differs only in the name of its content
//! argument.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::{FAILED, Words, print_unchanged};
use crate::arg::Arg;
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `copy` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyModule;

crate::params! {
    struct Params {
        content: ParamSpec::required(
            ParamType::String,
            "The file's exact content (sent on standard input)",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| file_params(Params::specs()));

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
        render_file(self.name(), args, Params::read(args).content)
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        check_file(self.name(), args, Params::read(args).content).map(Some)
    }
}

crate::params! {
    /// `dest`: the file a write makes.
    struct FileDest {
        dest: ParamSpec::required(ParamType::Path, "The file to write on the target host"),
    }
}

crate::params! {
    /// `mode`, `owner`, `group`: the file's metadata.
    struct FileMeta {
        mode: ParamSpec::optional(
            ParamType::String,
            "Permissions as 3 or 4 octal digits, such as 0644 or 0600",
        )
        .with_default(Value::Str("0644".into())),
        owner: ParamSpec::optional(ParamType::String, "User to own the file (name or uid)"),
        group: ParamSpec::optional(ParamType::String, "Group of the file (name or gid)"),
    }
}

/// The parameters of a file write: `dest`, the content parameter(s), then the metadata.
pub(super) fn file_params(content: Vec<ParamSpec>) -> Vec<ParamSpec> {
    let mut params = FileDest::specs();
    params.extend(content);
    params.extend(FileMeta::specs());
    params
}

/// The checked arguments of a file write, shared by its render and its check.
struct FileArgs<'a> {
    dest: &'a Value,
    /// The directory part of `dest` (empty for a bare file name) and its file name.
    dir: String,
    base: String,
    content: &'a Value,
    mode: Value,
    owner: Option<&'a Value>,
    group: Option<&'a Value>,
}

impl<'a> FileArgs<'a> {
    fn new(args: &'a Args, content_arg: Arg<'a>) -> Result<Self, RenderError> {
        let p = FileDest::read(args);
        let dest = p
            .dest
            .present()
            .ok_or_else(|| RenderError::new(p.dest.name(), "is required"))?;
        let content = content_arg
            .present()
            .ok_or_else(|| RenderError::new(content_arg.name(), "is required"))?;
        let dest_text = dest.to_string();
        let (dir, base) = dest_text
            .rsplit_once('/')
            .unwrap_or(("", dest_text.as_str()));
        if matches!(base, "" | "." | "..") {
            return Err(RenderError::new(
                p.dest.name(),
                format!("`{dest_text}` names a directory; give the path of the file to write"),
            ));
        }
        let m = FileMeta::read(args);
        let mode = m
            .mode
            .present()
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
        let owner = m.owner.present();
        let group = m.group.present();
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
        let (dir, base) = (dir.to_owned(), base.to_owned());
        Ok(Self {
            dest,
            dir,
            base,
            content,
            mode,
            owner,
            group,
        })
    }

    /// The mode as `stat -c %a` prints it: octal without leading zeros (`0640` is `640`).
    fn stat_mode(&self) -> Value {
        fn trim(text: &str) -> String {
            let digits = text.trim_start_matches('0');
            if digits.is_empty() { "0" } else { digits }.to_owned()
        }
        match &self.mode {
            Value::Str(text) => Value::Str(trim(text)),
            Value::Secret(text) => Value::Secret(trim(text)),
            other => other.clone(),
        }
    }
}

/// Renders the atomic, compare-first write of `copy` and `template`.
pub(super) fn render_file<'a>(
    module: &str,
    args: &'a Args,
    content_arg: Arg<'a>,
) -> Result<Vec<Operation>, RenderError> {
    let file = FileArgs::new(args, content_arg)?;
    let mut words = Words::default();
    let mut script = String::new();
    let mut line = |text: String| {
        script.push_str(&text);
        script.push('\n');
    };
    line(format!("dest={}", words.path(file.dest)));
    line(format!(
        "if [ -d \"$dest\" ]; then printf '{module}: %s is a directory\\n' \"$dest\" >&2; \
         exit 1; fi"
    ));
    let template = if file.dir.is_empty() && !file.dest.to_string().starts_with('/') {
        format!(".{}.XXXXXX", file.base)
    } else {
        format!("{}/.{}.XXXXXX", file.dir, file.base)
    };
    line(format!("tmp=$(mktemp {}) || exit 1", quote(&template)));
    line("trap 'rm -f \"$tmp\"' EXIT".to_owned());
    line("trap 'exit 1' HUP INT TERM".to_owned());
    line("cat > \"$tmp\" || exit 1".to_owned());
    line(format!(
        "chmod {} \"$tmp\" || exit 1",
        words.word(&file.mode)
    ));
    let mut meta = String::from("%a");
    match (file.owner, file.group) {
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
         {}; exit 0; fi",
        print_unchanged()
    ));
    line("mv -f \"$tmp\" \"$dest\" || exit 1".to_owned());
    script.push_str("echo changed");
    let command = Command::new(script).stdin(file.content.clone());
    Ok(vec![Operation::Remote(words.attach(command))])
}

/// Renders the check of `copy` and `template`: a probe that reads the content on standard input
/// (as the write does; never on a command line) and compares its sha256 with that of `dest`,
/// then the mode and, when given, the owner and group. It exits [`CHECK_IN_STATE`] when all
/// match, [`CHECK_WOULD_CHANGE`] when one differs or `dest` is missing, and [`FAILED`] with a
/// message on stderr when `dest` is a directory or cannot be read.
///
/// An owner (group) matches when it equals the file's uid (gid) or its user (group) name, so
/// both names and ids work without a lookup.
pub(super) fn check_file<'a>(
    module: &str,
    args: &'a Args,
    content_arg: Arg<'a>,
) -> Result<Vec<Operation>, RenderError> {
    let file = FileArgs::new(args, content_arg)?;
    let mut words = Words::default();
    let mut script = String::new();
    let mut line = |text: String| {
        script.push_str(&text);
        script.push('\n');
    };
    line(format!("dest={}", words.path(file.dest)));
    // Read the content first, so it is always consumed, whatever the answer.
    line(format!("want=$(sha256sum) || exit {FAILED}"));
    line(format!(
        "if [ -d \"$dest\" ]; then printf '{module}: %s is a directory\\n' \"$dest\" >&2; \
         exit {FAILED}; fi"
    ));
    line(format!("[ -e \"$dest\" ] || exit {CHECK_WOULD_CHANGE}"));
    line(format!("have=$(sha256sum < \"$dest\") || exit {FAILED}"));
    line(format!(
        "[ \"$have\" = \"$want\" ] || exit {CHECK_WOULD_CHANGE}"
    ));
    line(format!(
        "[ \"$(stat -c %a \"$dest\")\" = {} ] || exit {CHECK_WOULD_CHANGE}",
        words.word(&file.stat_mode())
    ));
    for (value, id, name) in [(file.owner, "%u", "%U"), (file.group, "%g", "%G")] {
        if let Some(value) = value {
            let word = words.word(value);
            line(format!(
                "[ \"$(stat -c {id} \"$dest\")\" = {word} ] || \
                 [ \"$(stat -c {name} \"$dest\")\" = {word} ] || exit {CHECK_WOULD_CHANGE}"
            ));
        }
    }
    let _ = write!(script, "exit {CHECK_IN_STATE}");
    let command = Command::probe(script).stdin(file.content.clone());
    Ok(vec![Operation::Remote(words.attach(command))])
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::generic::testing::{
        TempDir, check, hostile, probe, remote, run, run_check, s, stderr, stdout,
    };
    use crate::module::UNCHANGED;

    const SCRIPT: &str = "dest=/etc/app/app.conf
if [ -d \"$dest\" ]; then printf 'copy: %s is a directory\\n' \"$dest\" >&2; exit 1; fi
tmp=$(mktemp /etc/app/.app.conf.XXXXXX) || exit 1
trap 'rm -f \"$tmp\"' EXIT
trap 'exit 1' HUP INT TERM
cat > \"$tmp\" || exit 1
chmod 0640 \"$tmp\" || exit 1
chown app:adm \"$tmp\" || exit 1
if cmp -s \"$tmp\" \"$dest\" && [ \"$(stat -c '%a %u %g' \"$tmp\")\" = \"$(stat -c '%a %u %g' \"$dest\")\" ]; then printf '%s\\n' 'runbook: unchanged'; exit 0; fi
mv -f \"$tmp\" \"$dest\" || exit 1
echo changed";

    const CHECK: &str = "dest=/etc/app/app.conf
want=$(sha256sum) || exit 2
if [ -d \"$dest\" ]; then printf 'copy: %s is a directory\\n' \"$dest\" >&2; exit 2; fi
[ -e \"$dest\" ] || exit 1
have=$(sha256sum < \"$dest\") || exit 2
[ \"$have\" = \"$want\" ] || exit 1
[ \"$(stat -c %a \"$dest\")\" = 640 ] || exit 1
[ \"$(stat -c %u \"$dest\")\" = app ] || [ \"$(stat -c %U \"$dest\")\" = app ] || exit 1
[ \"$(stat -c %g \"$dest\")\" = adm ] || [ \"$(stat -c %G \"$dest\")\" = adm ] || exit 1
exit 0";

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

        assert_eq!(
            write(&dest, content, "0640", dir.path()),
            "runbook: unchanged\n"
        );
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

    #[test]
    fn renders_a_read_only_sha256_check() {
        let raw = [
            ("dest", s("/etc/app/app.conf")),
            ("content", s("port = 80\n")),
            ("mode", s("0640")),
            ("owner", s("app")),
            ("group", s("adm")),
        ];
        let cmd = probe(&CopyModule, &raw);
        assert_eq!(cmd.script, CHECK);
        assert_eq!(cmd.stdin, Some(s("port = 80\n")), "content on stdin");
        assert!(cmd.env.is_empty());

        // Modes as `stat -c %a` prints them; no owner or group line when not given.
        for (mode, stat) in [
            ("0644", "644"),
            ("755", "755"),
            ("2755", "2755"),
            ("0000", "0"),
        ] {
            let cmd = probe(
                &CopyModule,
                &[("dest", s("f")), ("content", s("")), ("mode", s(mode))],
            );
            assert!(
                cmd.script.ends_with(&format!(
                    "\n[ \"$(stat -c %a \"$dest\")\" = {stat} ] || exit 1\nexit 0"
                )),
                "{mode}: {}",
                cmd.script
            );
        }
        let cmd = probe(
            &CopyModule,
            &[("dest", s("f")), ("content", s("")), ("group", s("0"))],
        );
        assert!(cmd.script.contains(
            "\n[ \"$(stat -c %g \"$dest\")\" = 0 ] || [ \"$(stat -c %G \"$dest\")\" = 0 ] || exit 1\n"
        ));
        assert!(!cmd.script.contains("%u"));

        // A value known only at run time shows as its placeholder.
        let cmd = probe(
            &CopyModule,
            &[
                ("dest", s("f")),
                ("content", Value::Deferred("gen.stdout".into())),
                ("mode", Value::Deferred("m.stdout".into())),
            ],
        );
        assert!(cmd.script.contains("= '<m.stdout>' ] || exit 1"));
        assert_eq!(cmd.stdin, Some(Value::Deferred("gen.stdout".into())));
    }

    #[test]
    fn check_refuses_what_render_refuses() {
        let args = check(
            &CopyModule,
            &[("dest", s("/x")), ("content", s("")), ("mode", s("rw"))],
        );
        assert_eq!(CopyModule.check(&args).expect_err("mode").arg, Some("mode"));
        let args = check(&CopyModule, &[("dest", s("/etc/")), ("content", s(""))]);
        assert_eq!(CopyModule.check(&args).expect_err("dest").arg, Some("dest"));
    }

    /// The current user's uid and name, and gid and group name, as `id` prints them.
    fn me() -> [String; 4] {
        ["-u", "-un", "-g", "-gn"].map(|flag| {
            let out = std::process::Command::new("id")
                .arg(flag)
                .output()
                .expect("id");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
    }

    #[test]
    fn check_apply_check_with_real_sh() {
        let dir = TempDir::new("copy-check");
        let dest = dir.str("app.conf");
        let content = "a = 'b'\n$HOME `x`\n";
        let raw = [
            ("dest", s(&dest)),
            ("content", s(content)),
            ("mode", s("0640")),
        ];
        let check = probe(&CopyModule, &raw);
        let apply = remote(&CopyModule, &raw);

        assert_eq!(run_check(&check, dir.path()), 1, "dest missing");
        assert_eq!(stdout(&run(&apply, dir.path())), "changed\n");
        assert_eq!(run_check(&check, dir.path()), 0, "in state after apply");
        assert_eq!(stdout(&run(&apply, dir.path())), format!("{UNCHANGED}\n"));

        std::fs::write(&dest, "a = 'c'\n").expect("modify");
        std::fs::set_permissions(&dest, PermissionsExt::from_mode(0o640)).expect("chmod");
        assert_eq!(run_check(&check, dir.path()), 1, "content differs");
        assert_eq!(stdout(&run(&apply, dir.path())), "changed\n");
        assert_eq!(run_check(&check, dir.path()), 0);

        std::fs::set_permissions(&dest, PermissionsExt::from_mode(0o644)).expect("chmod");
        assert_eq!(run_check(&check, dir.path()), 1, "mode differs");
        assert_eq!(stdout(&run(&apply, dir.path())), "changed\n");
        assert_eq!(run_check(&check, dir.path()), 0);

        std::fs::write(&dest, format!("{content}x")).expect("append");
        assert_eq!(run_check(&check, dir.path()), 1, "a byte more");
        std::fs::write(&dest, "").expect("truncate");
        assert_eq!(run_check(&check, dir.path()), 1, "empty");

        // A symbolic link to a file with the same content is replaced, so it is not in state.
        std::fs::write(dir.join("target"), content).expect("target");
        std::fs::remove_file(&dest).expect("rm");
        std::os::unix::fs::symlink(dir.join("target"), &dest).expect("symlink");
        assert_eq!(run_check(&check, dir.path()), 1, "a symlink");
        assert_eq!(stdout(&run(&apply, dir.path())), "changed\n");
        assert_eq!(run_check(&check, dir.path()), 0);
        assert!(!std::fs::symlink_metadata(&dest).expect("dest").is_symlink());
    }

    #[test]
    fn check_compares_owner_and_group_by_id_or_name() {
        let dir = TempDir::new("copy-check-owner");
        let dest = dir.str("f");
        let [uid, user, gid, group] = me();
        let other_uid = (uid.parse::<u32>().expect("uid") + 1).to_string();
        assert_eq!(write(&dest, "x\n", "644", dir.path()), "changed\n");
        for (owner, group, want) in [
            (&uid, &gid, 0),
            (&user, &group, 0),
            (&uid, &group, 0),
            (&other_uid, &gid, 1),
            (&uid, &other_uid, 1),
            (&"no-such-user-rb".to_owned(), &gid, 1),
        ] {
            let cmd = probe(
                &CopyModule,
                &[
                    ("dest", s(&dest)),
                    ("content", s("x\n")),
                    ("owner", s(owner)),
                    ("group", s(group)),
                ],
            );
            assert_eq!(run_check(&cmd, dir.path()), want, "{owner}:{group}");
        }
    }

    #[test]
    fn a_check_that_cannot_answer_fails_with_a_reason() {
        let dir = TempDir::new("copy-check-fail");
        std::fs::create_dir(dir.join("sub")).expect("mkdir");
        let cmd = probe(
            &CopyModule,
            &[("dest", s(&dir.str("sub"))), ("content", s("x"))],
        );
        let before = crate::generic::testing::snapshot(dir.path());
        let out = run(&cmd, dir.path());
        assert_eq!(before, crate::generic::testing::snapshot(dir.path()));
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("copy: ") && stderr(&out).contains("sub is a directory"));

        // Unreadable for an unprivileged user; root reads it anyway.
        if me()[0] != "0" {
            let dest = dir.str("secret.conf");
            std::fs::write(&dest, "x").expect("write");
            std::fs::set_permissions(&dest, PermissionsExt::from_mode(0o000)).expect("chmod");
            let cmd = probe(&CopyModule, &[("dest", s(&dest)), ("content", s("x"))]);
            let out = run(&cmd, dir.path());
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
            assert!(!stderr(&out).is_empty());
        }
    }

    #[test]
    fn the_check_agrees_with_what_apply_then_does() {
        let dir = TempDir::new("copy-agree");
        let dest = dir.str("f");
        let raw = [
            ("dest", s(&dest)),
            ("content", s("v1\n")),
            ("mode", s("600")),
        ];
        let (check, apply) = (probe(&CopyModule, &raw), remote(&CopyModule, &raw));
        let states: [&dyn Fn(); 5] = [
            &|| {},
            &|| std::fs::write(&dest, "v2\n").expect("write"),
            &|| {
                std::fs::set_permissions(&dest, PermissionsExt::from_mode(0o604)).expect("chmod");
            },
            &|| std::fs::remove_file(&dest).expect("rm"),
            &|| {},
        ];
        for (i, state) in states.iter().enumerate() {
            state();
            let answer = run_check(&check, dir.path());
            let applied = stdout(&run(&apply, dir.path()));
            let expected = if answer == 0 {
                format!("{UNCHANGED}\n")
            } else {
                "changed\n".into()
            };
            assert_eq!(applied, expected, "state {i}: check said {answer}");
        }
    }

    #[test]
    fn hostile_values_stay_inert_in_the_check() {
        let dir = TempDir::new("copy-check-hostile");
        let marker = dir.join("pwned");
        for value in hostile(&marker) {
            for arg in ["dest", "owner", "group", "mode", "content"] {
                let mut raw = vec![("dest", s(&dir.str("f"))), ("content", s("x"))];
                match arg {
                    "dest" => raw[0].1 = s(&value),
                    "content" => raw[1].1 = s(&value),
                    _ => raw.push((arg, s(&value))),
                }
                let Ok(Some(ops)) = CopyModule.check(&check(&CopyModule, &raw)) else {
                    continue;
                };
                let [Operation::Remote(cmd)] = ops.as_slice() else {
                    panic!("one command")
                };
                let code = run(cmd, dir.path()).status.code();
                assert!(!marker.exists(), "escaped quoting via {arg}: {value:?}");
                assert!(matches!(code, Some(1 | 2)), "{arg} {value:?}: {code:?}");
            }
        }
    }

    #[test]
    fn secret_content_reaches_the_check_on_stdin_only() {
        let dir = TempDir::new("copy-check-secret");
        let dest = dir.str("key");
        let secret = Value::Secret("password=hunter2\n".into());
        let raw = [
            ("dest", s(&dest)),
            ("content", secret.clone()),
            ("mode", s("600")),
        ];
        let cmd = probe(&CopyModule, &raw);
        assert_eq!(cmd.stdin, Some(secret));
        assert!(cmd.env.is_empty());
        assert!(!cmd.script.contains("hunter2"));
        assert!(!cmd.to_string().contains("hunter2"));
        assert!(cmd.to_string().ends_with("exit 0 <<< ********"));

        assert_eq!(run_check(&cmd, dir.path()), 1);
        assert!(run(&remote(&CopyModule, &raw), dir.path()).status.success());
        assert_eq!(run_check(&cmd, dir.path()), 0);
    }
}
