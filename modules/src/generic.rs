//! The generic modules: `command`, `shell`, `script`, `copy`, `fetch`, `template`, `wait_for`, `assert`
//! and `manual`. They know nothing about any product; the replication modules build on them.
//!
//! Every argument value that reaches a rendered script goes through [`quote`] (see `Words`),
//! and secrets never reach a script at all: they travel in the command's environment or on its
//! standard input.

mod assert;
mod command;
mod copy;
mod fetch;
mod manual;
mod script;
mod shell;
mod template;
mod wait_for;

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use assert::AssertModule;
pub use command::CommandModule;
pub use copy::CopyModule;
pub use fetch::FetchModule;
pub use manual::ManualModule;
pub use script::ScriptModule;
pub use shell::ShellModule;
pub use template::TemplateModule;
pub use wait_for::WaitForModule;

use crate::command::{Command, quote};
use crate::module::{CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, UNCHANGED};
use crate::value::Value;

/// Every generic module, for the registry.
pub fn all() -> Vec<Box<dyn Module>> {
    vec![
        Box::new(CommandModule),
        Box::new(ShellModule),
        Box::new(ScriptModule),
        Box::new(CopyModule),
        Box::new(FetchModule),
        Box::new(TemplateModule),
        Box::new(WaitForModule),
        Box::new(AssertModule),
        Box::new(ManualModule),
    ]
}

/// Turns argument values into shell words for a script.
///
/// Plain values are quoted with [`quote`]. A [`Value::Secret`] is moved into an environment
/// variable (`RUNBOOK_SECRET_1`, ...) and the script refers to it as `"$RUNBOOK_SECRET_1"`, so
/// the script text never holds the secret. Deferred values render as their quoted placeholder.
#[derive(Debug, Default)]
struct Words {
    env: BTreeMap<String, Value>,
}

impl Words {
    /// One value as one shell word.
    fn word(&mut self, value: &Value) -> String {
        match value {
            Value::Secret(_) => {
                let name = format!("RUNBOOK_SECRET_{}", self.env.len() + 1);
                let word = format!("\"${name}\"");
                self.env.insert(name, value.clone());
                word
            }
            Value::Str(s) => quote(s),
            other => quote(&other.to_string()),
        }
    }

    /// A path as one shell word. A relative path that starts with `-` gets a `./` prefix so no
    /// command can take it for an option (and `cd` not for `cd -`).
    fn path(&mut self, value: &Value) -> String {
        match value {
            Value::Str(s) if s.starts_with('-') => quote(&format!("./{s}")),
            other => self.word(other),
        }
    }

    /// Attaches the collected secret environment to `cmd`.
    fn attach(self, mut cmd: Command) -> Command {
        cmd.env.extend(self.env);
        cmd
    }
}

/// The exit status of a check probe that could not answer (its stderr says why): anything but
/// [`CHECK_IN_STATE`] and [`CHECK_WOULD_CHANGE`] means that.
const FAILED: i32 = 2;

/// The line that prints the [`UNCHANGED`] marker on standard output.
fn print_unchanged() -> String {
    format!("printf '%s\\n' {}", quote(UNCHANGED))
}

/// The lines a `command` or `shell` body runs after: change to `chdir` (stopping if that fails)
/// and, with `creates`, stop successfully when the path exists, printing the [`UNCHANGED`]
/// marker on stdout and `runbook: <path> exists, skipped` on stderr. A relative `creates` is
/// therefore resolved inside `chdir`, as in Ansible.
///
/// Each piece is a line of its own, so any body (several lines, a trailing `# comment`, a
/// heredoc) can follow it unchanged.
fn preamble(words: &mut Words, chdir: Option<&Value>, creates: Option<&Value>) -> String {
    let mut out = String::new();
    if let Some(dir) = chdir {
        let _ = writeln!(out, "cd {} || exit 1", words.path(dir));
    }
    if let Some(path) = creates {
        let path = words.path(path);
        let _ = writeln!(
            out,
            "if [ -e {path} ]; then {}; printf 'runbook: %s exists, skipped\\n' {path} >&2; \
             exit 0; fi",
            print_unchanged()
        );
    }
    out
}

/// The check of a `command` or `shell` step guarded by `creates`: the same `chdir` and test as
/// [`preamble`], as a probe that exits [`CHECK_IN_STATE`] when the path exists and
/// [`CHECK_WOULD_CHANGE`] when it does not (or when `chdir` cannot be entered: the step would
/// run, and fail). `None` without `creates`: nothing tells whether the command is needed.
fn creates_check(creates: crate::Arg<'_>, chdir: crate::Arg<'_>) -> Option<Vec<Operation>> {
    let creates = creates.present()?;
    let mut words = Words::default();
    let mut script = String::new();
    if let Some(dir) = chdir.present() {
        let _ = writeln!(
            script,
            "cd {} || exit {CHECK_WOULD_CHANGE}",
            words.path(dir)
        );
    }
    let _ = write!(
        script,
        "if [ -e {} ]; then exit {CHECK_IN_STATE}; else exit {CHECK_WOULD_CHANGE}; fi",
        words.path(creates)
    );
    Some(vec![Operation::Remote(
        words.attach(Command::probe(script)),
    )])
}

#[cfg(test)]
pub(crate) mod testing {
    //! Running rendered commands with the real `/bin/sh`.

    use std::collections::BTreeMap;
    use std::io::Write as _;
    use std::os::unix::fs::MetadataExt as _;
    use std::path::{Path, PathBuf};
    use std::process::{Output, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::args::Args;
    use crate::command::Command;
    use crate::module::{Module, Operation};
    use crate::value::Value;

    /// A fresh directory under the system temp dir, removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("runbook-modules-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create the test directory");
            Self(dir)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }

        pub fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        pub fn str(&self, name: &str) -> String {
            self.join(name)
                .to_str()
                .expect("utf-8 temp path")
                .to_owned()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs `cmd` as the executor will: `sh -c script`, with its environment and stdin.
    pub fn run(cmd: &Command, cwd: &Path) -> Output {
        let mut child = std::process::Command::new("/bin/sh");
        child.arg("-c").arg(&cmd.script).current_dir(cwd);
        for (name, value) in &cmd.env {
            child.env(name, value.as_str().expect("text env value"));
        }
        child
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = child.spawn().expect("spawn /bin/sh");
        let mut stdin = child.stdin.take().expect("piped stdin");
        if let Some(content) = &cmd.stdin {
            // A script that fails early (say, `dest` is a directory) never reads its stdin.
            match stdin.write_all(content.as_str().expect("text stdin").as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
                _ => {}
            }
        }
        drop(stdin);
        child.wait_with_output().expect("wait for /bin/sh")
    }

    pub fn stdout(output: &Output) -> String {
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn stderr(output: &Output) -> String {
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// The exit status of a command that was not killed by a signal.
    pub fn code(output: &Output) -> i32 {
        output.status.code().expect("exited, not killed")
    }

    /// Everything under `dir` that a command could change: each path's type, permissions,
    /// owner, size, modification time, inode and content (of files) or target (of links).
    pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
        fn walk(path: &Path, out: &mut BTreeMap<PathBuf, String>) {
            let meta = std::fs::symlink_metadata(path).expect("stat");
            let kind = meta.file_type();
            let body = if kind.is_symlink() {
                format!(
                    "-> {}",
                    std::fs::read_link(path).expect("readlink").display()
                )
            } else if kind.is_file() {
                format!("{:?}", std::fs::read(path).expect("read"))
            } else {
                String::new()
            };
            out.insert(
                path.to_owned(),
                format!(
                    "{kind:?} {:o} {}:{} {} {}.{} {} {body}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    meta.size(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                    meta.ino(),
                ),
            );
            if kind.is_dir() {
                for entry in std::fs::read_dir(path).expect("read dir") {
                    walk(&entry.expect("entry").path(), out);
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(dir, &mut out);
        out
    }

    /// The operations of a module's `check`, `None` when it has none.
    pub fn checks(module: &dyn Module, raw: &[(&str, Value)]) -> Option<Vec<Operation>> {
        module.check(&check(module, raw)).expect("check renders")
    }

    /// The single probe a module's `check` renders; asserts that it is read-only.
    pub fn probe(module: &dyn Module, raw: &[(&str, Value)]) -> Command {
        match checks(module, raw).as_deref() {
            Some([Operation::Remote(cmd)]) => {
                assert!(!cmd.mutating, "a check must be a probe: {cmd}");
                cmd.clone()
            }
            other => panic!("expected one remote probe, got {other:?}"),
        }
    }

    /// Runs a check probe in `cwd` and returns its exit status, asserting that it changed
    /// nothing under `cwd` and wrote nothing on stdout.
    pub fn run_check(cmd: &Command, cwd: &Path) -> i32 {
        assert!(!cmd.mutating, "a check must be a probe: {cmd}");
        let before = snapshot(cwd);
        let out = run(cmd, cwd);
        assert_eq!(before, snapshot(cwd), "the check changed the filesystem");
        assert_eq!(stdout(&out), "", "a check prints nothing on stdout");
        code(&out)
    }

    /// Checks `raw` against the module's params, as the compiler does.
    pub fn check(module: &dyn Module, raw: &[(&str, Value)]) -> Args {
        let raw = raw
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        Args::check(module.params(), raw).expect("valid arguments")
    }

    /// The single remote command a module renders.
    pub fn remote(module: &dyn Module, raw: &[(&str, Value)]) -> Command {
        match module
            .render(&check(module, raw))
            .expect("renders")
            .as_slice()
        {
            [Operation::Remote(cmd)] => cmd.clone(),
            other => panic!("expected one remote command, got {other:?}"),
        }
    }

    pub fn s(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    pub fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|i| s(i)).collect())
    }

    /// A value that would run `touch <marker>` if it ever escaped its quoting, in each of the
    /// usual disguises. `marker` must be named `pwned` and sit in the directory the command runs
    /// in.
    pub fn hostile(marker: &Path) -> Vec<String> {
        assert_eq!(marker.file_name(), Some("pwned".as_ref()));
        let m = marker.display();
        vec![
            format!("x\"; touch {m}; \""),
            format!("x'; touch {m}; '"),
            format!("x\ntouch {m}\n"),
            format!("$(touch {m})"),
            format!("`touch {m}`"),
            format!("-x; touch {m} #"),
            // No slash or blank, for arguments that refuse those; relative to the test's cwd.
            "$(touch${IFS}pwned)".to_owned(),
            "x';touch${IFS}pwned;'".to_owned(),
            "x\";touch${IFS}pwned;\"".to_owned(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn all_modules_are_registered_with_unique_names() {
        let registry = Registry::builtin();
        let mut names: Vec<_> = all().iter().map(|m| m.name()).collect();
        names.sort_unstable();
        assert!(names.iter().all(|n| registry.get(n).is_some()));
        assert_eq!(
            names,
            [
                "assert", "command", "copy", "fetch", "manual", "script", "shell", "template",
                "wait_for"
            ]
        );
        for module in all() {
            assert!(!module.description().is_empty(), "{}", module.name());
            assert!(!module.description().contains('\n'), "{}", module.name());
            assert!(!module.params().is_empty(), "{}", module.name());
        }
    }

    #[test]
    fn words_quote_values_and_move_secrets_to_the_environment() {
        let mut words = Words::default();
        assert_eq!(words.word(&Value::Str("a b".into())), "'a b'");
        assert_eq!(words.word(&Value::Int(5)), "5");
        assert_eq!(
            words.word(&Value::Deferred("x.stdout".into())),
            "'<x.stdout>'"
        );
        assert_eq!(
            words.word(&Value::Secret("hunter2".into())),
            "\"$RUNBOOK_SECRET_1\""
        );
        assert_eq!(
            words.word(&Value::Secret("s3cret".into())),
            "\"$RUNBOOK_SECRET_2\""
        );
        assert_eq!(words.path(&Value::Str("-rf".into())), "./-rf");
        assert_eq!(words.path(&Value::Str("/srv/a b".into())), "'/srv/a b'");
        let cmd = words.attach(Command::new("true"));
        assert_eq!(
            cmd.env.get("RUNBOOK_SECRET_1"),
            Some(&Value::Secret("hunter2".into()))
        );
        assert_eq!(cmd.env.len(), 2);
    }

    #[test]
    fn hostile_values_do_escape_naive_interpolation() {
        // The inertness tests elsewhere are only meaningful if the marker detects an escape.
        let dir = testing::TempDir::new("naive");
        let marker = dir.join("pwned");
        let values = testing::hostile(&marker);
        for (i, wrap) in [
            (0, "echo \"{}\""),
            (1, "echo '{}'"),
            (2, "echo {}"),
            (6, "echo {}"),
        ] {
            let script = wrap.replace("{}", &values[i]);
            let cmd = Command::probe(script.clone());
            let _ = testing::run(&cmd, dir.path());
            assert!(marker.exists(), "{script}");
            std::fs::remove_file(&marker).expect("remove marker");
        }
    }

    #[test]
    fn preamble_changes_directory_then_guards() {
        let mut words = Words::default();
        let dir = Value::Str("/srv/my app".into());
        let creates = Value::Str("out/it's.done".into());
        assert_eq!(
            preamble(&mut words, Some(&dir), Some(&creates)),
            "cd '/srv/my app' || exit 1\n\
             if [ -e \"out/it's.done\" ]; then printf '%s\\n' 'runbook: unchanged'; \
             printf 'runbook: %s exists, skipped\\n' \"out/it's.done\" >&2; exit 0; fi\n"
        );
        assert_eq!(preamble(&mut words, None, None), "");
    }

    #[test]
    fn every_check_is_read_only_or_absent() {
        use testing::{list, s};
        let samples = [
            (
                "command",
                vec![("argv", list(&["true"])), ("creates", s("/x"))],
                true,
            ),
            ("command", vec![("argv", list(&["true"]))], false),
            (
                "shell",
                vec![("cmd", s("true")), ("creates", s("/x"))],
                true,
            ),
            ("script", vec![("source", s("true"))], false),
            ("copy", vec![("dest", s("/x")), ("content", s("x"))], true),
            (
                "template",
                vec![("dest", s("/x")), ("template", s("x"))],
                true,
            ),
            ("wait_for", vec![("port", Value::Int(22))], true),
            ("assert", vec![("that", list(&["true"]))], true),
            ("manual", vec![("instructions", s("x"))], false),
        ];
        let registry = Registry::builtin();
        for (name, raw, has_check) in samples {
            let module = registry.get(name).expect("registered");
            let ops = testing::checks(module, &raw);
            assert_eq!(ops.is_some(), has_check, "{name}");
            for op in ops.unwrap_or_default() {
                if let Operation::Remote(cmd) = op {
                    assert!(!cmd.mutating, "{name}: {cmd}");
                }
            }
        }
    }
}
