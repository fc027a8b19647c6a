//! The small shell wrapper every remote step runs inside.
//!
//! openssh cannot signal a remote process (openssh issue #87), and closing an SSH channel does
//! not stop a command started without a terminal. So each step runs as:
//!
//! 1. `sh -c WRAPPER runbook-wrapper KEY SCRIPT`, where KEY names the action
//!    (`RUN/step@host`) and SCRIPT is the module's command (never a secret).
//! 2. The wrapper reads secret environment variables from the first lines of its standard input
//!    (`NAME BASE64` lines, then an empty line), so secrets never appear in any argv.
//! 3. It starts SCRIPT in a new session with `setsid`, so the script and all its children share
//!    one process group, and records that group's id in
//!    `${RUNBOOK_HOST_ROOT:-$HOME}/.runbook/actions/KEY/pgid`; the rest of standard input is
//!    the script's standard input.
//! 4. When the script ends it records the exit code in `.../rc`.
//!
//! A timeout or a Ctrl-C is then a second command, [`kill_script`], that signals the whole
//! group; and a later run can ask whether the step's process is still alive ([`probe_script`]).

use std::fmt::Write as _;

use base64::Engine as _;

/// The wrapper, run with `sh -c`. `$1` is the action key, `$2` the script.
///
/// - A value is decoded with a sentinel `x` after it, stripped afterwards: command substitution
///   removes trailing newlines, and a value's own trailing newlines must arrive.
/// - The script runs under a small recorder (`runbook-recorder`, the `setsid sh -c` text) in a
///   session of its own: the recorder writes its process id (which `setsid` made the group's id)
///   to `pgid`, runs the script, and writes its exit code to `rc`, from inside the script's
///   process group, so killing the wrapper alone loses nothing. It traps HUP, INT and TERM (with
///   a handler, not "ignore", so the script still gets the default action): a TERM to the group
///   stops the script, and the recorder still writes its code (143). The wrapper writes `rc`
///   itself only when the recorder did not (SIGKILL of the whole group).
/// - Records are written to a temporary file and renamed, so a probe never reads half of one.
pub const WRAPPER: &str = r#"set -u
d="${RUNBOOK_HOST_ROOT:-$HOME}/.runbook/actions/$1"
mkdir -p "$d" || exit 125
a=${1##*/}
case $a in
  [0-9]*.*)
    f=$(cat "${d%/*}/fence" 2>/dev/null || echo 0)
    [ "$(( ${a%%.*} / 1000 ))" -lt "$f" ] && exit 124 ;;
esac
while IFS= read -r l; do
  [ -z "$l" ] && break
  n=${l%% *}; v=${l#* }
  v=$(printf %s "$v" | base64 -d && echo x) || exit 125
  export "$n=${v%x}"
done
exec 3<&0
setsid sh -c 'printf "%s\n" "$$" > "$1/pgid.r" && mv -f "$1/pgid.r" "$1/pgid" || exit 125
trap : HUP INT TERM
sh -c "$2" <&3 3<&-; c=$?
printf "%s\n" "$c" > "$1/rc.r" && mv -f "$1/rc.r" "$1/rc"
exit "$c"' runbook-recorder "$d" "$2" &
p=$!
wait "$p"; rc=$?
[ -e "$d/rc" ] || { printf '%s\n' "$rc" > "$d/rc.w" && mv -f "$d/rc.w" "$d/rc"; }
exit "$rc"
"#;

/// Exit code of a command that arrived after a later process of the same run fenced its
/// action ([`fence_script`]): it did not run.
pub const WRAPPER_FENCED: i32 = 124;

/// Attempts of one process generation: an operation's directory is `G*1000+ATTEMPT.OP`.
pub const ATTEMPTS_PER_GENERATION: u32 = 1000;

/// Exit code of the wrapper itself when it cannot set up (no state directory, bad secret
/// encoding); scripts should not use it.
pub const WRAPPER_FAILED: i32 = 125;

/// Whether an environment variable name is safe to `export` in the wrapper.
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why `env` cannot reach the script intact, or `None`: a value with a NUL byte, which no
/// shell variable (and no environment variable) can hold, so the shell would drop it without
/// a word. The message names the variable, never the value (it may be a secret).
pub fn env_problem(env: &[(String, String)]) -> Option<String> {
    env.iter().find(|(_, v)| v.contains('\0')).map(|(name, _)| {
        format!(
            "the value of environment variable `{name}` contains a NUL byte, which no environment variable can hold: the step was not run"
        )
    })
}

/// The header the wrapper reads from standard input: one `NAME BASE64` line per variable and
/// an empty line.
pub fn stdin_header(env: &[(String, String)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, value) in env {
        debug_assert!(valid_env_name(name), "checked when the plan was compiled");
        debug_assert!(!value.contains('\0'), "refused before the command is sent");
        let _ = writeln!(
            out,
            "{name} {}",
            base64::engine::general_purpose::STANDARD.encode(value)
        );
    }
    out.push('\n');
    out.into_bytes()
}

/// A command that signals the process group of an action: TERM, then KILL after `grace`
/// seconds if anything is left. Prints what it did and what it saw afterwards: `terminated`
/// (gone after TERM), `killed` (gone after KILL), `survived` (still there 2 s after KILL),
/// `not running` (the group had already ended) or `no such action` (no group recorded).
pub fn kill_script(key: &str, grace_secs: u64) -> String {
    format!(
        r#"d="${{RUNBOOK_HOST_ROOT:-$HOME}}/.runbook/actions/"{key}
[ -r "$d/pgid" ] || {{ echo 'no such action'; exit 0; }}
g=$(cat "$d/pgid")
kill -s TERM -- "-$g" 2>/dev/null || {{ echo 'not running'; exit 0; }}
i=0
while kill -s 0 -- "-$g" 2>/dev/null && [ "$i" -lt {ticks} ]; do sleep 0.1; i=$((i+1)); done
kill -s 0 -- "-$g" 2>/dev/null || {{ echo terminated; exit 0; }}
kill -s KILL -- "-$g" 2>/dev/null
i=0
while kill -s 0 -- "-$g" 2>/dev/null && [ "$i" -lt 20 ]; do sleep 0.1; i=$((i+1)); done
if kill -s 0 -- "-$g" 2>/dev/null; then echo survived; else echo killed; fi
"#,
        key = runbook_modules::quote(key),
        ticks = grace_secs * 10,
    )
}

/// A command that stops every still-running command recorded under `prefix` (all attempts and
/// operations of one action): TERM to each process group, then KILL after `grace_secs`.
pub fn kill_all_script(prefix: &str, grace_secs: u64) -> String {
    format!(
        r#"base="${{RUNBOOK_HOST_ROOT:-$HOME}}/.runbook/actions/"{prefix}
for f in "$base"/*/pgid; do
  [ -r "$f" ] || continue
  g=$(cat "$f"); kill -s TERM -- "-$g" 2>/dev/null && echo "stopped $g"
done
i=0
while [ "$i" -lt {ticks} ]; do
  alive=0
  for f in "$base"/*/pgid; do [ -r "$f" ] && kill -s 0 -- "-$(cat "$f")" 2>/dev/null && alive=1; done
  [ "$alive" -eq 0 ] && exit 0
  sleep 0.1; i=$((i+1))
done
for f in "$base"/*/pgid; do [ -r "$f" ] && kill -s KILL -- "-$(cat "$f")" 2>/dev/null; done
exit 0
"#,
        prefix = runbook_modules::quote(prefix),
        ticks = grace_secs * 10,
    )
}

/// A command that fences an action (`prefix` = `RUN/step@host`) for process generation
/// `generation`: a command of an earlier generation that reaches the host from now on (sent by
/// a `runbook` process that was killed while the command was on its way) refuses to run, with
/// [`WRAPPER_FENCED`]. The wrapper creates its directory before it reads the fence, so after
/// the fence is written a probe sees every earlier command that will ever run.
pub fn fence_script(prefix: &str, generation: u32) -> String {
    format!(
        r#"base="${{RUNBOOK_HOST_ROOT:-$HOME}}/.runbook/actions/"{prefix}
mkdir -p "$base" && printf '%s
' {generation} > "$base/fence.tmp" && mv -f "$base/fence.tmp" "$base/fence""#,
        prefix = runbook_modules::quote(prefix)
    )
}

/// A command that removes everything the wrapper recorded on the host for run `run`.
pub fn forget_script(run: &str) -> String {
    format!(
        r#"rm -rf -- "${{RUNBOOK_HOST_ROOT:-$HOME}}/.runbook/actions/"{}"#,
        runbook_modules::quote(run)
    )
}

/// A command that lists what the wrapper recorded for every attempt and operation of an action
/// (`prefix` = `RUN/step@host`): one line `ATTEMPT.OP RC RUNNING` each (`RC` is `-` while
/// unknown, `RUNNING` is 1 when its process group is alive), or `none`.
pub fn probe_all_script(prefix: &str) -> String {
    format!(
        r#"base="${{RUNBOOK_HOST_ROOT:-$HOME}}/.runbook/actions/"{prefix}
[ -d "$base" ] || {{ echo none; exit 0; }}
found=0
for d in "$base"/*/; do
  [ -d "$d" ] || continue
  found=1
  n=$(basename "$d"); rc=-; run=0
  [ -r "$d/rc" ] && rc=$(cat "$d/rc")
  [ -r "$d/pgid" ] && kill -s 0 -- "-$(cat "$d/pgid")" 2>/dev/null && run=1
  echo "$n $rc $run"
done
[ "$found" -eq 1 ] || echo none
"#,
        prefix = runbook_modules::quote(prefix)
    )
}

/// A command that reports an action's state on its host: `running`, `exited RC`, or `unknown`.
pub fn probe_script(key: &str) -> String {
    format!(
        r#"d="${{RUNBOOK_HOST_ROOT:-$HOME}}/.runbook/actions/"{key}
if [ -r "$d/rc" ]; then echo "exited $(cat "$d/rc")"
elif [ -r "$d/pgid" ] && kill -s 0 -- "-$(cat "$d/pgid")" 2>/dev/null; then echo running
else echo unknown; fi
"#,
        key = runbook_modules::quote(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;
    use std::process::{Command, Stdio};

    fn run(
        key: &str,
        script: &str,
        env: &[(String, String)],
        stdin: &[u8],
        root: &std::path::Path,
    ) -> std::process::Output {
        let mut child = Command::new("sh")
            .args(["-c", WRAPPER, "runbook-wrapper", key, script])
            .env("RUNBOOK_HOST_ROOT", root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut input = stdin_header(env);
        input.extend_from_slice(stdin);
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(&input)
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }

    #[test]
    fn secrets_arrive_in_the_environment_and_stdin_passes_through() {
        let root = tempfile::tempdir().expect("tempdir");
        let env = vec![("SECRET".to_owned(), "p@ss word\n'\"$(x)".to_owned())];
        let out = run(
            "r1/a@h",
            r#"printf '%s|' "$SECRET"; cat; exit 3"#,
            &env,
            b"payload",
            root.path(),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "p@ss word\n'\"$(x)|payload"
        );
        assert_eq!(out.status.code(), Some(3));
        let dir = root.path().join(".runbook/actions/r1/a@h");
        assert_eq!(fs_err::read_to_string(dir.join("rc")).expect("rc"), "3\n");
        assert!(
            fs_err::read_to_string(dir.join("pgid"))
                .expect("pgid")
                .trim()
                .parse::<u32>()
                .is_ok()
        );
    }

    #[test]
    fn values_arrive_byte_for_byte_trailing_newlines_included() {
        let root = tempfile::tempdir().expect("tempdir");
        let values = [
            "two\n\n",
            "\n",
            "",
            "crlf\r\n",
            "x",
            "ends in x\nx",
            " \t lead",
        ];
        let env: Vec<(String, String)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("V{i}"), (*v).to_owned()))
            .collect();
        let mut script = String::new();
        for i in 0..values.len() {
            let _ = write!(script, "printf '%s|' \"$V{i}\"; ");
        }
        let out = run("r1/env@h", &script, &env, b"", root.path());
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let expected = values.join("|") + "|";
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    }

    #[test]
    fn a_nul_byte_is_named_not_dropped() {
        let env = vec![
            ("OK".to_owned(), "fine\n".to_owned()),
            ("BAD".to_owned(), "a\0b".to_owned()),
        ];
        let why = env_problem(&env).expect("refused");
        assert!(why.contains("`BAD`") && why.contains("NUL"), "{why}");
        assert!(!why.contains("a\0b"), "the value is not shown");
        assert_eq!(env_problem(&env[..1]), None);
    }

    #[test]
    fn killing_only_the_wrapper_loses_neither_the_script_nor_its_exit_code() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().to_owned();
        let release = root.path().join("release");
        let script = format!(
            "while [ ! -e {} ]; do sleep 0.05; done; echo ran > {}/ran; exit 7",
            release.display(),
            root.path().display()
        );
        let mut child = Command::new("sh")
            .args(["-c", WRAPPER, "runbook-wrapper", "r1/w@h", &script])
            .env("RUNBOOK_HOST_ROOT", &path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(&stdin_header(&[]))
            .expect("write stdin");
        let dir = root.path().join(".runbook/actions/r1/w@h");
        while !dir.join("pgid").exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // SIGKILL to the wrapper alone, not to the script's group.
        child.kill().expect("kill -9 the wrapper");
        let status = child.wait().expect("reaped");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        let probe = |key: &str| {
            let out = Command::new("sh")
                .args(["-c", &probe_script(key)])
                .env("RUNBOOK_HOST_ROOT", root.path())
                .output()
                .expect("probe");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert_eq!(probe("r1/w@h"), "running\n", "the script runs on");
        fs_err::write(&release, "").expect("release the script");
        while !dir.join("rc").exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            probe("r1/w@h"),
            "exited 7\n",
            "its recorder wrote its exit code"
        );
        assert!(root.path().join("ran").exists());
    }

    #[test]
    fn a_fenced_action_refuses_commands_of_earlier_generations() {
        let root = tempfile::tempdir().expect("tempdir");
        let fence = Command::new("sh")
            .args(["-c", &fence_script("r1/a@h", 2)])
            .env("RUNBOOK_HOST_ROOT", root.path())
            .output()
            .expect("fence");
        assert!(fence.status.success());
        // Generation 1 (attempt 1001), on its way when its process died: refused.
        let late = run("r1/a@h/1001.0", "echo ran", &[], b"", root.path());
        assert_eq!(late.status.code(), Some(WRAPPER_FENCED));
        assert!(
            String::from_utf8_lossy(&late.stdout).is_empty(),
            "it did not run"
        );
        // Generation 2 runs.
        let now = run("r1/a@h/2001.0", "echo ran", &[], b"", root.path());
        assert_eq!(now.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&now.stdout), "ran\n");
        // The probe sees both: the refused one as a directory without an exit code.
        let probe = Command::new("sh")
            .args(["-c", &probe_all_script("r1/a@h")])
            .env("RUNBOOK_HOST_ROOT", root.path())
            .output()
            .expect("probe");
        let text = String::from_utf8_lossy(&probe.stdout);
        assert!(
            text.contains("1001.0 - 0") && text.contains("2001.0 0 0"),
            "{text}"
        );
    }

    #[test]
    fn kill_stops_the_whole_process_group() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().to_owned();
        let handle = std::thread::spawn(move || {
            run(
                "r1/slow@h",
                "sleep 30 & sleep 31; echo never",
                &[],
                b"",
                &path,
            )
        });
        let pgid_file = root.path().join(".runbook/actions/r1/slow@h/pgid");
        for _ in 0..50 {
            if pgid_file.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let pgid = fs_err::read_to_string(&pgid_file)
            .expect("pgid written")
            .trim()
            .to_owned();
        let probe = Command::new("sh")
            .args(["-c", &probe_script("r1/slow@h")])
            .env("RUNBOOK_HOST_ROOT", root.path())
            .output()
            .expect("probe");
        assert_eq!(String::from_utf8_lossy(&probe.stdout), "running\n");
        let kill = Command::new("sh")
            .args(["-c", &kill_script("r1/slow@h", 2)])
            .env("RUNBOOK_HOST_ROOT", root.path())
            .output()
            .expect("kill");
        assert_eq!(String::from_utf8_lossy(&kill.stdout), "terminated\n");
        let out = handle.join().expect("wrapper thread");
        assert_eq!(out.status.code(), Some(143), "the script died of SIGTERM");
        assert!(String::from_utf8_lossy(&out.stdout).is_empty());
        // No live member of the group is left (zombies awaiting their reaper do not count).
        let alive = Command::new("sh")
            .args([
                "-c",
                &format!("ps -o stat= -g {pgid} | grep -v '^Z' | wc -l"),
            ])
            .output()
            .expect("ps");
        assert_eq!(String::from_utf8_lossy(&alive.stdout).trim(), "0");
        let probe = Command::new("sh")
            .args(["-c", &probe_script("r1/slow@h")])
            .env("RUNBOOK_HOST_ROOT", root.path())
            .output()
            .expect("probe");
        assert_eq!(String::from_utf8_lossy(&probe.stdout), "exited 143\n");
    }
}
