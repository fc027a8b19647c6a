//! The small shell wrapper every remote step runs inside.
//!
//! openssh cannot signal a remote process (openssh issue #87), and closing an SSH channel does
//! not stop a command started without a terminal. So each step runs as:
//!
//! 1. `exec sh -c WRAPPER runbook-wrapper RECORD SCRIPT`. sshd starts every command in a
//!    session of its own (`setsid` before the user's shell), and `exec` makes the wrapper that
//!    very process, so the wrapper is the leader of the process group the script and all its
//!    children share: no `setsid` process and no second shell. RECORD names the action's
//!    record on the host ([`record`]), SCRIPT is the module's command (never a secret).
//! 2. It records its process id, which is the group's id, in
//!    `${RUNBOOK_HOST_ROOT:-$HOME}/.runbook/actions/RECORD.pgid`. The run's directory
//!    (`actions/RUN/`) is created by the first command of the run on the host, when that
//!    first write fails; every later command writes into it directly.
//! 3. It reads environment variables (secrets among them) from the first lines of its standard
//!    input (`NAME WORD` lines, then an empty line; [`stdin_header`]), so they never appear in
//!    any argv; the rest of standard input is the script's. Before them may come the text of a
//!    shared helper library the script sources (`.SHA WORD` lines), sent with the first command
//!    of the run on the host that needs it; the wrapper keeps it as `actions/helpers/SHA.sh`
//!    ([`super::wrapper_helpers`]).
//! 4. It runs SCRIPT in a subshell (a fork, not a new program) whose `EXIT` trap writes the
//!    exit code to `RECORD.rc`, from inside the group: killing the wrapper alone loses nothing.
//!
//! A timeout or a Ctrl-C is then a second command, [`kill_script`], that signals the whole
//! group, and records the exit code when nothing in the group was left to do it; a later run
//! asks whether the step's process is still alive ([`probe_all_script`]).
//!
//! Every record is one line written with one `write` (shell builtins, no `mv`): a reader takes
//! a record only when it holds a whole line (`read` fails on a line without its newline), so it
//! never takes half of one, and an empty file (created, not yet written) counts as absent.

use std::fmt::Write as _;

/// The wrapper, run as `exec sh -c WRAPPER runbook-wrapper RECORD SCRIPT [HELPERS]`.
///
/// - Its state lives in positional parameters (`$1` the record's path, `$2` the script, `$3` a
///   newline, `$4` the commands that source the helper libraries, `$5` the assignments read
///   from standard input), which no environment variable read from standard input can
///   overwrite; the assignments are made once all are read.
/// - HELPERS names the shared helper libraries the script calls, by their sha256 (lowercase
///   hex, checked: nothing else can become a path); each is `actions/helpers/SHA.sh` on the
///   host ([`super::wrapper_helpers`]). A standard-input line `.SHA WORD` carries a library's
///   text (WORD quoted as a value): the wrapper writes it there (a temporary file, then `mv`)
///   unless it already is, so a second run, a resume or a concurrent command reuses it and a
///   changed library, another hash, never meets the old one. The script's subshell sources
///   each named library before the script, or exits 125 when one is not on the host.
/// - It refuses to run (125) unless it leads its process group (`kill -0 -$$` finds the group
///   only then): a group it does not lead could not be stopped as a whole.
/// - The `pgid` record is written before the fence is read ([`fence_script`]).
/// - A value is a single-quoted shell word in which a newline is `"$3"`; it is assigned with
///   `eval` (an assignment: no splitting, no globbing), so values arrive byte for byte,
///   trailing newlines included, without a process per value.
/// - The script runs in a subshell, so its `exit` or `set -e` ends only the subshell; the
///   subshell's `EXIT` trap writes its code to `rc` through descriptor 7, opened on `rc` by the
///   wrapper. The wrapper traps HUP, INT and TERM (with a handler, so the subshell still gets
///   the default action): a TERM to the group stops the script and the wrapper writes 143. It
///   also writes the code when the subshell could not (the script replaced its `EXIT` trap, or
///   `exec`ed another program). A SIGKILL of the whole group leaves `rc` empty: the kill
///   script then writes it ([`kill_script`]).
pub const WRAPPER: &str = r#"set -u
set -- "${RUNBOOK_HOST_ROOT:-$HOME}/.runbook/actions/$1" "$2" '
' "${3-}"
kill -s 0 -- "-$$" 2>/dev/null || { echo "runbook: the wrapper does not lead its process group (it could not be stopped as a whole): not run" >&2; exit 125; }
{ printf '%s\n' "$$" > "$1.pgid"; } 2>/dev/null || { mkdir -p -- "${1%/*}" && printf '%s\n' "$$" > "$1.pgid"; } || exit 125
case ${1##*,} in
  [0-9]*.*)
    if [ -r "${1%,*}.fence" ]; then
      read -r f 2>/dev/null < "${1%,*}.fence" || f=0
      l=${1##*,}
      [ "$(( ${l%%.*} / 1000 ))" -lt "$f" ] && exit 124
    fi ;;
esac
l=
for f in $4; do
  case $f in ''|*[!0-9a-f]*) echo "runbook: bad helper name: not run" >&2; exit 125 ;; esac
  l="$l[ -r \"\${1%/*/*}/helpers/$f.sh\" ] || { echo 'runbook: the helper library $f is not on the host: not run' >&2; exit 125; }; . \"\${1%/*/*}/helpers/$f.sh\"$3"
done
set -- "$1" "$2" "$3" "$l" ''
while IFS= read -r l; do
  [ -z "$l" ] && break
  case $l in
    .*)
      f=${l%% *}; f=${f#.}
      case $f in ''|*[!0-9a-f]*) exit 125 ;; esac
      f=${1%/*/*}/helpers/$f
      [ -r "$f.sh" ] || { mkdir -p -- "${f%/*}" && eval "t=${l#* }" && printf '%s' "$t" > "$f.$$" && mv -f -- "$f.$$" "$f.sh"; } || exit 125 ;;
    *) set -- "$1" "$2" "$3" "$4" "$5${l%% *}=${l#* }; export ${l%% *}$3" ;;
  esac
done
eval "$5" || exit 125
exec 7>"$1.rc" || exit 125
trap : HUP INT TERM
( trap 'printf "%s\n" "$?" >&7' EXIT; set +u; eval "$4"; eval "set --
$2" )
c=$?
read -r l 2>/dev/null < "$1.rc" || printf '%s\n' "$c" >&7
exit "$c"
"#;

/// Exit code of a command that arrived after a later process of the same run fenced its
/// action ([`fence_script`]): it did not run.
pub const WRAPPER_FENCED: i32 = 124;

/// Attempts of one process generation: an operation's directory is `G*1000+ATTEMPT.OP`.
pub const ATTEMPTS_PER_GENERATION: u32 = 1000;

/// Exit code of the wrapper itself when it cannot set up (no state directory, bad secret
/// encoding, not a process group leader); scripts should not use it.
pub const WRAPPER_FAILED: i32 = 125;

/// Longest name of an action's records before it is replaced by a hash: with the longest
/// leaf (`ATTEMPT.OP.artifactN`) and suffix it stays within one path component (255 bytes).
const LONGEST_STEM: usize = 160;

/// The stem of the records of the action keyed `prefix` (`RUN/step@host`, or deeper), relative
/// to `.runbook/actions`: `RUN/step@host`, with any further `/` as `,`. Step ids and host
/// names hold neither `/` nor `,`, so stems of different actions never share a `STEM,` prefix.
fn stem(prefix: &str) -> String {
    let (run, rest) = prefix.split_once('/').unwrap_or((prefix, ""));
    let flat = rest.replace('/', ",");
    if flat.len() <= LONGEST_STEM {
        format!("{run}/{flat}")
    } else {
        let hash: String = crate::journal::fingerprint(rest.as_bytes())
            .chars()
            .take(32)
            .collect();
        format!("{run}/~{hash}")
    }
}

/// Where the wrapper records the command keyed `key` (`PREFIX/LEAF`), relative to
/// `.runbook/actions`: `STEM,LEAF`, beside the other records of its action, in the run's one
/// directory. The wrapper appends `.pgid` and `.rc`; the fence is `STEM.fence`.
pub fn record(key: &str) -> String {
    match key.rsplit_once('/') {
        Some((prefix, leaf)) if prefix.contains('/') => format!("{},{leaf}", stem(prefix)),
        _ => stem(key),
    }
}

/// `"${RUNBOOK_HOST_ROOT:-$HOME}/.runbook/actions/"'REL'`: a shell word for a path under the
/// records.
fn under_actions(rel: &str) -> String {
    format!(
        r#""${{RUNBOOK_HOST_ROOT:-$HOME}}/.runbook/actions/"{}"#,
        runbook_modules::quote(rel)
    )
}

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

/// The header the wrapper reads from standard input: one `NAME WORD` line per variable and an
/// empty line. WORD is the value as one line of shell: single-quoted, a `'` as `'\''`, a
/// newline as `'"$3"'` (the wrapper's `$3` is a newline). Nothing else is special inside
/// single quotes, so `eval` gives back the value byte for byte.
pub fn stdin_header(env: &[(String, String)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, value) in env {
        debug_assert!(valid_env_name(name), "checked when the plan was compiled");
        debug_assert!(!value.contains('\0'), "refused before the command is sent");
        let _ = writeln!(out, "{name} {}", word(value));
    }
    out.push('\n');
    out.into_bytes()
}

/// `value` as one line of shell for the wrapper's `eval`: single-quoted, a `'` as `'\''`, a
/// newline as `'"$3"'` (see [`stdin_header`]).
pub(crate) fn word(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str(r"'\''"),
            '\n' => out.push_str(r#"'"$3"'"#),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A command that signals the process group of an action: TERM, then KILL after `grace`
/// seconds if anything is left. Prints what it did and what it saw afterwards: `terminated`
/// (gone after TERM), `killed` (gone after KILL), `survived` (still there 2 s after KILL),
/// `not running` (the group had already ended) or `no such action` (no group recorded). When
/// the group is gone and nothing in it recorded an exit code (the whole group was killed
/// before its wrapper could), it records the signal's: 143 after TERM, 137 after KILL.
pub fn kill_script(key: &str, grace_secs: u64) -> String {
    format!(
        r#"r={r}
read -r g 2>/dev/null < "$r.pgid" || {{ echo 'no such action'; exit 0; }}
kill -s TERM -- "-$g" 2>/dev/null || {{ echo 'not running'; exit 0; }}
i=0
while kill -s 0 -- "-$g" 2>/dev/null && [ "$i" -lt {ticks} ]; do sleep 0.1; i=$((i+1)); done
if ! kill -s 0 -- "-$g" 2>/dev/null; then
  read -r c 2>/dev/null < "$r.rc" || printf '143\n' > "$r.rc"
  echo terminated; exit 0
fi
kill -s KILL -- "-$g" 2>/dev/null
i=0
while kill -s 0 -- "-$g" 2>/dev/null && [ "$i" -lt 20 ]; do sleep 0.1; i=$((i+1)); done
if kill -s 0 -- "-$g" 2>/dev/null; then echo survived; else
  read -r c 2>/dev/null < "$r.rc" || printf '137\n' > "$r.rc"
  echo killed
fi
"#,
        r = under_actions(&record(key)),
        ticks = grace_secs * 10,
    )
}

/// A command that stops every still-running command recorded under `prefix` (all attempts and
/// operations of one action): TERM to each process group, then KILL after `grace_secs`; a
/// group killed before anything in it recorded its exit code gets 137.
pub fn kill_all_script(prefix: &str, grace_secs: u64) -> String {
    format!(
        r#"base={base}
for f in "$base",*.pgid; do
  read -r g 2>/dev/null < "$f" || continue
  kill -s TERM -- "-$g" 2>/dev/null && echo "stopped $g"
done
alive() {{
  for f in "$base",*.pgid; do read -r g 2>/dev/null < "$f" && kill -s 0 -- "-$g" 2>/dev/null && return 0; done
  return 1
}}
i=0
while [ "$i" -lt {ticks} ]; do
  alive || exit 0
  sleep 0.1; i=$((i+1))
done
for f in "$base",*.pgid; do
  read -r g 2>/dev/null < "$f" || continue
  kill -s KILL -- "-$g" 2>/dev/null || continue
  sleep 0.2
  kill -s 0 -- "-$g" 2>/dev/null || read -r c 2>/dev/null < "${{f%.pgid}}.rc" || printf '137\n' > "${{f%.pgid}}.rc"
done
exit 0
"#,
        base = under_actions(&stem(prefix)),
        ticks = grace_secs * 10,
    )
}

/// A command that fences an action (`prefix` = `RUN/step@host`) for process generation
/// `generation`: a command of an earlier generation that reaches the host from now on (sent by
/// a `runbook` process that was killed while the command was on its way) refuses to run, with
/// [`WRAPPER_FENCED`]. The wrapper writes its `pgid` record before it reads the fence, so after
/// the fence is written a probe sees every earlier command that will ever run.
pub fn fence_script(prefix: &str, generation: u32) -> String {
    format!(
        r#"f={f}.fence
mkdir -p -- "${{f%/*}}" && printf '%s\n' {generation} > "$f.tmp" && mv -f -- "$f.tmp" "$f""#,
        f = under_actions(&stem(prefix)),
    )
}

/// A command that removes everything the wrapper recorded on the host for run `run`.
pub fn forget_script(run: &str) -> String {
    format!("rm -rf -- {}", under_actions(run))
}

/// A command that lists what the wrapper recorded for every attempt and operation of an action
/// (`prefix` = `RUN/step@host`): one line `ATTEMPT.OP RC RUNNING` each (`RC` is `-` while
/// unknown, `RUNNING` is 1 when its process group is alive), or `none`.
pub fn probe_all_script(prefix: &str) -> String {
    format!(
        r#"base={base}
found=0
for f in "$base",[0-9]*.pgid; do
  [ -e "$f" ] || continue
  found=1
  n=${{f#"$base",}}; n=${{n%.pgid}}; rc=-; run=0
  read -r c 2>/dev/null < "${{f%.pgid}}.rc" && rc=$c
  read -r g 2>/dev/null < "$f" && kill -s 0 -- "-$g" 2>/dev/null && run=1
  echo "$n $rc $run"
done
[ "$found" -eq 1 ] || echo none
"#,
        base = under_actions(&stem(prefix)),
    )
}

/// A command that reports an action's state on its host: `running`, `exited RC`, or `unknown`.
pub fn probe_script(key: &str) -> String {
    format!(
        r#"r={r}
if read -r c 2>/dev/null < "$r.rc"; then echo "exited $c"
elif read -r g 2>/dev/null < "$r.pgid" && kill -s 0 -- "-$g" 2>/dev/null; then echo running
else echo unknown; fi
"#,
        r = under_actions(&record(key)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};

    /// Where the record `suffix` (`pgid`, `rc`) of the command keyed `key` is under `root`.
    fn file(root: &std::path::Path, key: &str, suffix: &str) -> std::path::PathBuf {
        root.join(".runbook/actions")
            .join(format!("{}.{suffix}", record(key)))
    }

    fn run(
        key: &str,
        script: &str,
        env: &[(String, String)],
        stdin: &[u8],
        root: &std::path::Path,
    ) -> std::process::Output {
        let mut child = Command::new("sh")
            .args(["-c", WRAPPER, "runbook-wrapper", &record(key), script])
            .env("RUNBOOK_HOST_ROOT", root)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut input = stdin_header(env);
        input.extend_from_slice(stdin);
        // A fenced command exits without reading its input: a broken pipe is no error.
        let _ = child.stdin.take().expect("piped").write_all(&input);
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
        assert_eq!(
            fs_err::read_to_string(file(root.path(), "r1/a@h", "rc")).expect("rc"),
            "3\n"
        );
        assert!(
            fs_err::read_to_string(file(root.path(), "r1/a@h", "pgid"))
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
        let started = root.path().join("started");
        let script = format!(
            ": > {}; while [ ! -e {} ]; do sleep 0.05; done; echo ran > {}/ran; exit 7",
            started.display(),
            release.display(),
            root.path().display()
        );
        let mut child = Command::new("sh")
            .args(["-c", WRAPPER, "runbook-wrapper", &record("r1/w@h"), &script])
            .env("RUNBOOK_HOST_ROOT", &path)
            .process_group(0)
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
        let (pgid, rc) = (
            file(root.path(), "r1/w@h", "pgid"),
            file(root.path(), "r1/w@h", "rc"),
        );
        while !pgid.exists() || !started.exists() {
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
        while fs_err::read_to_string(&rc).unwrap_or_default().is_empty() {
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
        let pgid_file = file(root.path(), "r1/slow@h", "pgid");
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

    #[test]
    fn a_wrapper_that_does_not_lead_its_group_refuses_to_run() {
        let root = tempfile::tempdir().expect("tempdir");
        // Without `process_group(0)`: in the test process's group, led by someone else.
        let out = Command::new("sh")
            .args(["-c", WRAPPER, "runbook-wrapper", &record("r1/n@h/1001.0")])
            .arg(format!("touch {}/ran", root.path().display()))
            .env("RUNBOOK_HOST_ROOT", root.path())
            .stdin(Stdio::null())
            .output()
            .expect("sh runs");
        assert_eq!(out.status.code(), Some(WRAPPER_FAILED));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("does not lead its process group"),
            "{out:?}"
        );
        assert!(!root.path().join("ran").exists(), "nothing ran");
    }

    #[test]
    fn variables_named_like_the_wrappers_own_change_nothing_of_its_records() {
        let root = tempfile::tempdir().expect("tempdir");
        let env: Vec<(String, String)> = ["l", "c", "f", "r", "IFS"]
            .iter()
            .map(|n| ((*n).to_owned(), format!("/tmp/{n} x\n")))
            .collect();
        let out = run(
            "r1/v@h/1001.0",
            r#"printf '%s|' "$l" "$c" "$f" "$r" "$IFS"; exit 5"#,
            &env,
            b"",
            root.path(),
        );
        assert_eq!(out.status.code(), Some(5), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "/tmp/l x\n|/tmp/c x\n|/tmp/f x\n|/tmp/r x\n|/tmp/IFS x\n|"
        );
        assert_eq!(
            fs_err::read_to_string(file(root.path(), "r1/v@h/1001.0", "rc")).expect("rc"),
            "5\n"
        );
    }

    #[test]
    fn a_group_killed_whole_gets_its_exit_code_from_the_kill_script() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().to_owned();
        // The script ignores TERM, so only the KILL after the grace time stops it: nothing in
        // the group is left to record an exit code.
        let handle = std::thread::spawn(move || {
            run(
                "r1/stubborn@h/1001.0",
                "trap '' TERM; sleep 30",
                &[],
                b"",
                &path,
            )
        });
        let pgid = file(root.path(), "r1/stubborn@h/1001.0", "pgid");
        while !pgid.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let kill = Command::new("sh")
            .args(["-c", &kill_script("r1/stubborn@h/1001.0", 1)])
            .env("RUNBOOK_HOST_ROOT", root.path())
            .output()
            .expect("kill");
        assert_eq!(String::from_utf8_lossy(&kill.stdout), "killed\n");
        let out = handle.join().expect("wrapper thread");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9)
        );
        let probe = Command::new("sh")
            .args(["-c", &probe_all_script("r1/stubborn@h")])
            .env("RUNBOOK_HOST_ROOT", root.path())
            .output()
            .expect("probe");
        assert_eq!(String::from_utf8_lossy(&probe.stdout), "1001.0 137 0\n");
    }

    #[test]
    fn records_of_one_action_never_mix_with_another_s() {
        // `a@h` and `a@h.x` (hosts may hold dots), and the check commands under `/check`.
        assert_eq!(record("r/a@h/1001.0"), "r/a@h,1001.0");
        assert_eq!(record("r/a@h.x/1001.0"), "r/a@h.x,1001.0");
        assert_eq!(record("r/a@h/check/1001.0"), "r/a@h,check,1001.0");
        assert!(probe_all_script("r/a@h").contains(r#""$base",[0-9]*.pgid"#));
        let long = format!(
            "r/{}@{}/1001.0.artifact12",
            "s".repeat(120),
            "h".repeat(120)
        );
        let name = record(&long);
        let leaf = name.rsplit('/').next().expect("leaf");
        assert!(leaf.len() + ".pgid".len() <= 255, "{leaf}");
        assert!(name.ends_with(",1001.0.artifact12"), "{name}");
    }
}
