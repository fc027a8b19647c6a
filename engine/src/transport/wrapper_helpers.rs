//! Shared shell helpers, shipped to each host once per run with the wrapper.
//!
//! Many commands call the same shell functions (GT.M's `rb_run`, `rb_fail`, the health
//! parsers: [`runbook_modules::Helper`]). Inlined, they would travel in the argv of every
//! command and fill the plan a reviewer reads (~45 lines before each `mupip` line). Instead a
//! command names its libraries, and:
//!
//! - the library lives on the host as `${RUNBOOK_HOST_ROOT:-$HOME}/.runbook/actions/helpers/
//!   SHA.sh`, SHA being the sha256 of its text (`sha256sum` of the file gives its name back).
//!   Content-addressed: a resume, a later run or another runbook with the same library reuses
//!   the file; a changed library is another file, so a command never sources a text it was not
//!   planned with. Nothing removes them (`forget` removes a run's records, not these): they are
//!   a few kilobytes per version of the engine.
//! - the first command of a run on a host that needs a library carries its text on standard
//!   input (one `.SHA WORD` line before the environment, [`install_lines`]); the wrapper writes
//!   it to a temporary file and renames it into place unless it is already there. Commands that
//!   start on the host before one of those has come back carry it too (the rename makes that
//!   harmless); every later command only names it ([`argument`]).
//! - the script's subshell sources each library before the script, or exits 125 saying which
//!   library is missing; the executor then sends it again with the next command.
//!
//! Everything else the wrapper guarantees stays as it was: the text is not a secret (modules
//! declare only function definitions), the script and its environment travel as before.

use std::collections::HashSet;
use std::sync::Mutex;

use runbook_modules::Helper;

use crate::inventory::HostId;

use super::wrapper::{WRAPPER_FAILED, WRAPPER_FENCED, word};

/// The library's name on the host: the sha256 of its text, lowercase hex. Computed once per
/// library (its text is static): a plan of 50,000 GT.M actions names it 50,000 times.
pub fn sha256(helper: &Helper) -> String {
    static KNOWN: Mutex<Vec<(usize, usize, String)>> = Mutex::new(Vec::new());
    let key = (helper.text.as_ptr() as usize, helper.text.len());
    let mut known = KNOWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, _, sha)) = known.iter().find(|(p, l, _)| (*p, *l) == key) {
        return sha.clone();
    }
    let sha = crate::journal::fingerprint(helper.text.as_bytes());
    known.push((key.0, key.1, sha.clone()));
    sha
}

/// Every helper library the commands of `plan` source, each once, by name then hash: what
/// `plan --scripts` and the JSON plan show once rather than before every command.
pub fn of_plan(plan: &crate::plan::Plan) -> Vec<(Helper, String)> {
    let mut all: Vec<(Helper, String)> = Vec::new();
    for (_, action) in plan.actions() {
        for op in &action.operations {
            if let runbook_modules::Operation::Remote(cmd) = op {
                for h in &cmd.helpers {
                    if !all.iter().any(|(known, _)| known == h) {
                        all.push((*h, sha256(h)));
                    }
                }
            }
        }
    }
    all.sort_by(|a, b| (a.0.name, &a.1).cmp(&(b.0.name, &b.1)));
    all
}

/// The wrapper's HELPERS argument: the libraries' hashes, separated by spaces.
pub fn argument(helpers: &[Helper]) -> String {
    helpers.iter().map(sha256).collect::<Vec<_>>().join(" ")
}

/// The standard-input lines that install `helpers` on the host (`.SHA WORD` each), to go
/// before the environment ([`super::wrapper::stdin_header`]).
pub fn install_lines(helpers: &[Helper]) -> Vec<u8> {
    let mut out = String::new();
    for helper in helpers {
        out.push('.');
        out.push_str(&sha256(helper));
        out.push(' ');
        out.push_str(&word(helper.text));
        out.push('\n');
    }
    out.into_bytes()
}

/// Which libraries each host of this run is known to hold: a command came back from a wrapper
/// that had them (it installs them before it runs anything).
#[derive(Debug, Default)]
pub struct Installed {
    known: Mutex<HashSet<(HostId, String)>>,
}

impl Installed {
    /// Those of `helpers` that `host` is not known to hold: the command must carry them.
    pub fn missing(&self, host: HostId, helpers: &[Helper]) -> Vec<Helper> {
        let known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        helpers
            .iter()
            .filter(|h| !known.contains(&(host, sha256(h))))
            .copied()
            .collect()
    }

    /// Learns from a command's exit code whether `host` now holds `helpers`: yes after any code
    /// of the script; not after the wrapper refused (fenced before it read its input) or failed
    /// to set up (a library missing or not written), so the next command sends them again.
    pub fn learn(&self, host: HostId, helpers: &[Helper], code: Option<i32>) {
        if helpers.is_empty() {
            return;
        }
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match code {
            // Fenced before it read its input, or no code at all: nothing learnt.
            Some(WRAPPER_FENCED) | None => {}
            Some(WRAPPER_FAILED) => {
                for h in helpers {
                    known.remove(&(host, sha256(h)));
                }
            }
            Some(_) => {
                for h in helpers {
                    known.insert((host, sha256(h)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};

    use super::super::wrapper::{WRAPPER, record, stdin_header};

    const LIB: Helper = Helper {
        name: "t",
        text: "rb_hello() { printf 'hello %s\\n' \"$1\"; }\nrb_quote() { printf '%s' \"it's \\\"q\\\"\"; }",
    };

    /// Runs `script` in the wrapper with `helpers` named, carrying the text of `carried`.
    fn run(
        root: &std::path::Path,
        key: &str,
        script: &str,
        helpers: &[Helper],
        carried: &[Helper],
    ) -> std::process::Output {
        let mut child = Command::new("sh")
            .args(["-c", WRAPPER, "runbook-wrapper", &record(key), script])
            .arg(argument(helpers))
            .env("RUNBOOK_HOST_ROOT", root)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut input = install_lines(carried);
        input.extend(stdin_header(&[(
            "SECRET".to_owned(),
            "s3 cr'et\n".to_owned(),
        )]));
        input.extend_from_slice(b"payload");
        let _ = child.stdin.take().expect("piped").write_all(&input);
        child.wait_with_output().expect("wait")
    }

    #[test]
    fn a_library_sent_once_is_sourced_by_every_later_command() {
        let root = tempfile::tempdir().expect("tempdir");
        let first = run(
            root.path(),
            "r1/a@h/1001.0",
            r#"rb_hello "$SECRET"; cat"#,
            &[LIB],
            &[LIB],
        );
        assert_eq!(first.status.code(), Some(0), "{first:?}");
        assert_eq!(
            String::from_utf8_lossy(&first.stdout),
            "hello s3 cr'et\n\npayload",
            "the library, the environment and stdin all arrive"
        );
        // Kept under its hash, byte for byte (`sha256sum` of the file gives its name).
        let file = root
            .path()
            .join(".runbook/actions/helpers")
            .join(format!("{}.sh", sha256(&LIB)));
        assert_eq!(fs_err::read_to_string(&file).expect("installed"), LIB.text);
        // A later command, of this run or another, only names it.
        let later = run(root.path(), "r2/b@h/1001.0", "rb_quote", &[LIB], &[]);
        assert_eq!(later.status.code(), Some(0), "{later:?}");
        assert_eq!(String::from_utf8_lossy(&later.stdout), "it's \"q\"");
        // Sent again (a command that started before the first came back): nothing changes.
        let again = run(root.path(), "r2/c@h/1001.0", "rb_quote", &[LIB], &[LIB]);
        assert_eq!(again.status.code(), Some(0), "{again:?}");
        assert_eq!(
            fs_err::read_to_string(&file).expect("still there"),
            LIB.text
        );
    }

    #[test]
    fn a_missing_library_stops_the_command_before_it_runs() {
        let root = tempfile::tempdir().expect("tempdir");
        let ran = root.path().join("ran");
        let out = run(
            root.path(),
            "r1/a@h/1001.0",
            &format!("touch {}; rb_hello x", ran.display()),
            &[LIB],
            &[],
        );
        assert_eq!(out.status.code(), Some(WRAPPER_FAILED), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "the helper library {} is not on the host",
                sha256(&LIB)
            )),
            "{stderr}"
        );
        assert!(!ran.exists(), "the script did not run");
        // The executor forgets the host holds it, so the next command carries it.
        let installed = Installed::default();
        installed.learn(0, &[LIB], Some(0));
        assert!(installed.missing(0, &[LIB]).is_empty());
        installed.learn(0, &[LIB], out.status.code());
        assert_eq!(installed.missing(0, &[LIB]), vec![LIB]);
        installed.learn(0, &[LIB], Some(WRAPPER_FENCED));
        assert_eq!(
            installed.missing(0, &[LIB]),
            vec![LIB],
            "a fenced command read nothing"
        );
    }

    #[test]
    fn a_changed_library_is_another_file() {
        let root = tempfile::tempdir().expect("tempdir");
        let v2 = Helper {
            name: "t",
            text: "rb_hello() { printf 'v2 %s\\n' \"$1\"; }",
        };
        assert_ne!(sha256(&LIB), sha256(&v2));
        let one = run(root.path(), "r1/a@h/1001.0", "rb_hello a", &[LIB], &[LIB]);
        let two = run(root.path(), "r1/b@h/1001.0", "rb_hello b", &[v2], &[v2]);
        assert_eq!(String::from_utf8_lossy(&one.stdout), "hello a\n");
        assert_eq!(String::from_utf8_lossy(&two.stdout), "v2 b\n");
        let old = run(root.path(), "r1/c@h/1001.0", "rb_hello c", &[LIB], &[]);
        assert_eq!(String::from_utf8_lossy(&old.stdout), "hello c\n");
    }

    #[test]
    fn a_helper_name_that_is_not_a_hash_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let out = Command::new("sh")
            .args(["-c", WRAPPER, "runbook-wrapper", &record("r1/a@h/1001.0")])
            .args(["echo ran", "../../../etc/x"])
            .env("RUNBOOK_HOST_ROOT", root.path())
            .process_group(0)
            .stdin(Stdio::null())
            .output()
            .expect("sh runs");
        assert_eq!(out.status.code(), Some(WRAPPER_FAILED), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).is_empty(),
            "nothing ran"
        );
    }
}
