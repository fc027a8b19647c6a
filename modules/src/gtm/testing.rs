//! Test helpers of the GT.M modules: arguments, `sh -n`, and a fake `$gtm_dist` whose tools
//! print verbatim GT.M output, so the parsers in the rendered scripts run for real.

use std::path::Path;

use crate::args::Args;
use crate::command::Command;
use crate::module::{Module, Operation};
use crate::value::Value;

pub fn s(text: &str) -> Value {
    Value::Str(text.to_owned())
}

/// Checks `raw` against the module's params, as the compiler does.
pub fn args(module: &dyn Module, raw: &[(&str, Value)]) -> Args {
    let raw = raw
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    Args::check(module.params(), raw).expect("valid arguments")
}

/// `sh -n` on a script.
pub fn sh_n(script: &str, what: &str) {
    let out = std::process::Command::new("/bin/sh")
        .args(["-n", "-c", script])
        .output()
        .expect("sh -n");
    assert!(
        out.status.success(),
        "{what}: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The remote commands a module renders.
pub fn remotes(module: &dyn Module, raw: &[(&str, Value)]) -> Vec<Command> {
    module
        .render(&args(module, raw))
        .expect("renders")
        .into_iter()
        .filter_map(|op| match op {
            Operation::Remote(cmd) => Some(cmd),
            _ => None,
        })
        .collect()
}

/// The probe of a module's check.
pub fn check_probe(module: &dyn Module, raw: &[(&str, Value)]) -> Command {
    match module
        .check(&args(module, raw))
        .expect("check renders")
        .as_deref()
    {
        Some([Operation::Remote(cmd)]) => {
            assert!(!cmd.mutating);
            cmd.clone()
        }
        other => panic!("one probe expected, got {other:?}"),
    }
}

/// Arguments that render, for every module.
pub fn minimal_args(name: &str) -> Option<Vec<(&'static str, Value)>> {
    let mut raw = vec![("dir", s("/srv/gtm/A")), ("instance", s("A"))];
    match name {
        "gtm.source_start" => {
            raw.extend([
                ("secondary_instance", s("B")),
                ("secondary", s("localhost:4001")),
            ]);
        }
        "gtm.receiver_start" => raw.push(("listen_port", Value::Int(4001))),
        "gtm.rollback" => raw.push(("fetchresync", Value::Int(4001))),
        "gtm.apply_lost" => raw.push(("file", s("/srv/gtm/A/gtm.lost"))),
        "gtm.backup" | "gtm.restore" => raw.push(("backup_dir", s("/srv/backup"))),
        "gtm.mumps" => raw.push(("code", s("write 1"))),
        "gtm.set_seqno" => raw.push(("seqno", Value::Int(42))),
        "gtm.edit_instance" => raw.push(("name", s("B"))),
        "gtm.shutdown" => raw.push(("kind", s("originating"))),
        "gtm.database_create"
        | "gtm.replication_on"
        | "gtm.health"
        | "gtm.backlog"
        | "gtm.wait_backlog"
        | "gtm.source_stop"
        | "gtm.receiver_stop"
        | "gtm.rundown"
        | "gtm.role"
        | "gtm.journal"
        | "gtm.seqno" => {}
        _ => return None,
    }
    Some(raw)
}

/// A fake `$gtm_dist` in `dir`: each tool prints the file `TOOL.out` on stderr (or, for a call
/// with the qualifier `-Q`, `TOOL.Q.out` when there is one; and the file `TOOL.stdout` on stdout) and exits with the content of `TOOL.rc` (default 0).
pub fn fake_dist(dir: &Path) {
    for tool in ["mupip", "dse", "mumps"] {
        let path = dir.join(tool);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nd=$(dirname \"$0\")\necho \"$*\" >> \"$d/{tool}.calls\"\n\
                 [ -f \"$d/{tool}.stdout\" ] && cat \"$d/{tool}.stdout\"\n\
                 o=\"$d/{tool}.out\"; for a in \"$@\"; do [ -f \"$d/{tool}.${{a#-}}.out\" ] && o=\"$d/{tool}.${{a#-}}.out\"; done\n\
                 [ -f \"$o\" ] && cat \"$o\" >&2\n\
                 exit $(cat \"$d/{tool}.rc\" 2>/dev/null || echo 0)\n"
            ),
        )
        .expect("write a fake tool");
        let mut perms = std::fs::metadata(&path).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).expect("chmod");
    }
}

/// Runs a command with its environment, `gtm_dist` replaced by `dist`.
pub fn run_with(cmd: &Command, dist: &Path) -> std::process::Output {
    let mut child = std::process::Command::new("/bin/sh");
    child.arg("-c").arg(cmd.inlined());
    for (name, value) in &cmd.env {
        child.env(name, value.as_str().expect("text env"));
    }
    child.env("gtm_dist", dist);
    if let Some(stdin) = &cmd.stdin {
        let tmp = dist.join("stdin");
        std::fs::write(&tmp, stdin.as_str().expect("text stdin")).expect("stdin file");
        child.stdin(std::fs::File::open(&tmp).expect("open stdin"));
    }
    child.output().expect("run sh")
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("runbook-gtm-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
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
