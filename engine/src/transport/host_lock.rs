//! The lock a run holds on each host it acts on.
//!
//! The state directory's lock ([`crate::lock`]) only keeps two applies of one state directory
//! and inventory file apart; two controllers, two state directories or a copy of the inventory
//! would still act on one host at the same time. So each run also locks the host itself: on
//! connecting, it starts one long-lived command over the connection, [`LOCK_SCRIPT`], which takes
//! an `flock` on `${RUNBOOK_HOST_ROOT:-$HOME}/.runbook/host.lock`, records who holds it beside
//! it (`holders/PID`), says `locked` and then only reads its standard input. The lock is therefore
//! held by a process of the run's own connection: when the controller dies (even by `kill -9`),
//! the channel's input ends, that process exits and the host's kernel releases the lock. No
//! stale lock outlives its run, and none needs to be broken by hand — unless the controller's
//! machine itself vanished, when the host only notices once TCP gives up; the refusal then names
//! the process on the host that holds the lock.
//!
//! An apply takes the lock exclusively, a dry run shared (dry runs do not exclude each other,
//! but an apply and a dry run do: what a dry run reads would be changing under it). Two
//! inventory entries that reach the same host find the lock held by their own run (the record
//! carries a random token of the run's connections) and share it.
//!
//! The same command keeps the ssh master busy for the whole run, through approval waits and
//! window waits, so the master's `ControlPersist` can be short: once the controller is gone, the
//! master has no channel left and exits a few seconds later ([`super::ssh`]).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, BufReader};

use super::exec::TransportError;

/// Run on the host as `sh -c LOCK_SCRIPT runbook-host-lock MODE RECORD TOKEN`. MODE is
/// `exclusive`, `shared` or `hold` (no lock, only keep the connection busy); RECORD is the
/// holder line ([`Claim::record`]); TOKEN is the part of it that tells this run's connections
/// from others'. First line of output: `locked`, `ours` (this run already holds it through
/// another inventory entry, or the controller it took the run over from), or `held` followed
/// by the live holders' lines (exit 75). Locked, it execs `cat`, which holds the lock's
/// descriptors until its standard input ends; `ours`, it runs `cat` beside a helper that takes
/// the lock over once the run's other holder is gone, and ends it with `cat`.
pub const LOCK_SCRIPT: &str = r#"
if [ "$1" = hold ]; then echo locked; exec cat; fi
command -v flock >/dev/null 2>&1 || { echo "flock (util-linux) is not installed on the host" >&2; exit 3; }
d="${RUNBOOK_HOST_ROOT:-$HOME}/.runbook"
h="$d/holders"
mkdir -p "$h" || exit 3
exec 9>>"$d/host.lock" || exit 3
if [ "$1" = shared ]; then m=-s; else m=-x; fi
live() {
  for f in "$h"/[0-9]*; do
    [ -f "$f" ] || continue
    if flock -n "$f" true 2>/dev/null; then rm -f -- "$f"; else cat -- "$f"; fi
  done
}
n=0
until flock -n $m 9; do
  others=$(live)
  case "$others" in *"$3"*)
    # This run holds it through another connection (another inventory entry, or the
    # controller this one took the run over from). A helper waits for that holder to go, then
    # holds the lock on this connection's descriptor and records it; both end with `cat`
    # (this connection's input), so the host stays locked for the run when the other holder
    # dies first, and is free the moment this connection ends.
    echo ours
    (
      flock $m 9 || exit
      t="$h/.$$"
      { exec 8>"$t" && flock -n 8 && printf '%s\t%s\n' "$2" "$$" >&8 && mv -f -- "$t" "$h/$$"; } || exit
      exec sleep 2147483647
    ) </dev/null >/dev/null 2>&1 &
    taker=$!
    cat
    rc=$?
    kill "$taker" 2>/dev/null
    exit $rc;;
  esac
  if [ -n "$others" ] || [ "$n" -ge 30 ]; then echo held; printf '%s\n' "$others"; exit 75; fi
  n=$((n + 1))
  sleep 0.1 2>/dev/null || sleep 1
done
t="$h/.$$"
{ exec 8>"$t" && flock -n 8 && printf '%s\t%s\n' "$2" "$$" >&8 && mv -f -- "$t" "$h/$$"; } || { echo "cannot record the lock's holder in $h" >&2; exit 3; }
if [ "$m" = -x ]; then
  for f in "$h"/* "$h"/.[!.]*; do [ "$f" = "$h/$$" ] || rm -f -- "$f"; done
fi
echo locked
exec cat
"#;

/// Exit code of [`LOCK_SCRIPT`] when another run holds the lock.
const HELD: i32 = 75;

/// How long a lock held by a dead process of this controller is waited for: its channel is
/// closing, the host releases it within moments.
const DEAD_HOLDER_GRACE: Duration = Duration::from_secs(15);

/// How long the host may take to answer the lock command.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How a run takes the host locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// An apply: no other run on the host.
    Exclusive,
    /// A dry run: other dry runs may read the host too, no apply may change it.
    Shared,
    /// No lock; the command only keeps the connection busy (a [`super::Transports`] without a
    /// claim, as in tests of the transport).
    Hold,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Self::Exclusive => "exclusive",
            Self::Shared => "shared",
            Self::Hold => "hold",
        }
    }
}

/// Who a run is, as its host-lock record says.
#[derive(Clone, Debug)]
pub struct Claim {
    pub mode: Mode,
    pub run_id: String,
    pub operator: String,
    /// Set by [`super::Transports::with_host_lock`].
    pub(super) token: String,
}

impl Claim {
    /// The claim of run `run_id` by `operator`; `dry_run` takes the locks shared.
    pub fn new(run_id: &str, operator: &str, dry_run: bool) -> Self {
        Self {
            mode: if dry_run {
                Mode::Shared
            } else {
                Mode::Exclusive
            },
            run_id: run_id.to_owned(),
            operator: operator.to_owned(),
            token: String::new(),
        }
    }

    /// The claim of a run recorded in the shared journal: every controller of the run carries
    /// the same token (derived from the run's id), so the controller that took the run over
    /// finds the host locked by the run itself (`ours`), even while the one it was taken from
    /// is frozen with its connections open. That one can start nothing more: its lease's epoch
    /// no longer writes, and the takeover fences its in-flight actions on the host.
    #[must_use]
    pub fn shared_run(mut self) -> Self {
        self.token = crate::journal::fingerprint(format!("shared run {}", self.run_id).as_bytes())
            .chars()
            .take(32)
            .collect();
        self
    }

    /// No lock at all.
    pub fn hold() -> Self {
        Self {
            mode: Mode::Hold,
            run_id: String::new(),
            operator: String::new(),
            token: String::new(),
        }
    }

    /// The holder line: token, run, mode, operator, controller, pid, since, tab-separated; the
    /// host appends its own pid. Fields never hold a tab, newline or other control character.
    fn record(&self) -> String {
        let mode = if self.mode == Mode::Shared {
            "dry-run"
        } else {
            "apply"
        };
        [
            self.token.as_str(),
            &self.run_id,
            mode,
            &self.operator,
            &crate::lock::controller_host(),
            &std::process::id().to_string(),
            &jiff::Timestamp::now().to_string(),
        ]
        .iter()
        .map(|f| clean(f))
        .collect::<Vec<_>>()
        .join("\t")
    }
}

fn clean(field: &str) -> String {
    field
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect()
}

/// One holder of a host's lock, as its record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub run_id: String,
    /// `apply` or `dry-run`.
    pub mode: String,
    pub operator: String,
    pub controller: String,
    pub pid: u32,
    pub since: String,
    /// The process on the host that holds the lock.
    pub host_pid: u32,
}

impl Holder {
    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split('\t').collect();
        let [
            _token,
            run,
            mode,
            operator,
            controller,
            pid,
            since,
            host_pid,
        ] = f[..]
        else {
            return None;
        };
        Some(Self {
            run_id: run.to_owned(),
            mode: mode.to_owned(),
            operator: operator.to_owned(),
            controller: controller.to_owned(),
            pid: pid.parse().ok()?,
            since: since.to_owned(),
            host_pid: host_pid.parse().ok()?,
        })
    }

    /// A process of this controller that no longer exists: its lock is being released.
    fn is_dead_here(&self) -> bool {
        self.controller == crate::lock::controller_host()
            && self.pid != std::process::id()
            && !std::path::Path::new("/proc")
                .join(self.pid.to_string())
                .exists()
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} ({}) by {} from controller {} (pid {}), since {}; on the host, process {} holds the lock",
            self.run_id,
            self.mode,
            self.operator,
            self.controller,
            self.pid,
            self.since,
            self.host_pid
        )
    }
}

/// The message of a host another run holds.
fn held_message(host: &str, holders: &[Holder]) -> String {
    if holders.is_empty() {
        return format!(
            "host `{host}` is locked by another run, which did not say who it is (see ~/.runbook/holders on the host)"
        );
    }
    let list: Vec<String> = holders.iter().map(ToString::to_string).collect();
    format!(
        "host `{host}` is in use by another run: {}",
        list.join("; and ")
    )
}

/// The lock command, running: dropping it (or [`HostLock::release`]) ends it.
pub(super) struct HostLock {
    child: LockChild,
    /// Set when the command ended while the run still needed it (killed on the host, or the
    /// connection dropped): the host may no longer be this run's.
    lost: Arc<AtomicBool>,
}

enum LockChild {
    Ssh(openssh::Child<Arc<openssh::Session>>),
    Local(tokio::process::Child),
}

impl HostLock {
    pub(super) fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Ends the lock command (its input closes) and waits a little for it to go.
    pub(super) async fn release(self) {
        match self.child {
            LockChild::Ssh(mut child) => {
                drop(child.stdin().take());
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            }
            LockChild::Local(mut child) => {
                drop(child.stdin.take());
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            }
        }
    }
}

/// Where the lock command runs.
pub(super) enum Target<'a> {
    Ssh(&'a Arc<openssh::Session>),
    /// The controller; `Some(root)` sets `RUNBOOK_HOST_ROOT` for the command (tests).
    Local(Option<&'a std::path::Path>),
}

/// Takes the lock of `host` for `claim`, or says why not ([`TransportError::HostLock`] when
/// another run holds it or it cannot be taken, `Unreachable` when the command cannot be sent).
pub(super) async fn take(
    host: &str,
    target: &Target<'_>,
    claim: &Claim,
) -> Result<HostLock, TransportError> {
    let record = claim.record();
    let started = tokio::time::Instant::now();
    loop {
        match attempt(host, target, claim, &record).await? {
            Attempt::Locked(lock) => return Ok(*lock),
            Attempt::Held(holders) => {
                let dying = !holders.is_empty() && holders.iter().all(Holder::is_dead_here);
                if dying && started.elapsed() < DEAD_HOLDER_GRACE {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                return Err(TransportError::HostLock {
                    host: host.to_owned(),
                    message: held_message(host, &holders),
                });
            }
        }
    }
}

enum Attempt {
    Locked(Box<HostLock>),
    Held(Vec<Holder>),
}

async fn attempt(
    host: &str,
    target: &Target<'_>,
    claim: &Claim,
    record: &str,
) -> Result<Attempt, TransportError> {
    let args = [
        "-c",
        LOCK_SCRIPT,
        "runbook-host-lock",
        claim.mode.arg(),
        record,
        &claim.token,
    ];
    let unreachable = |message: String| TransportError::Unreachable {
        host: host.to_owned(),
        message,
    };
    let (child, stdout, stderr) = match target {
        Target::Ssh(session) => {
            let mut cmd = Arc::clone(session).arc_command("sh");
            cmd.args(args)
                .stdin(openssh::Stdio::piped())
                .stdout(openssh::Stdio::piped())
                .stderr(openssh::Stdio::piped());
            let mut child = cmd
                .spawn()
                .await
                .map_err(|e| unreachable(format!("cannot start the host lock command: {e}")))?;
            let out: Box<dyn AsyncRead + Send + Unpin> =
                Box::new(child.stdout().take().expect("stdout is piped"));
            let err: Box<dyn AsyncRead + Send + Unpin> =
                Box::new(child.stderr().take().expect("stderr is piped"));
            (LockChild::Ssh(child), out, err)
        }
        Target::Local(root) => {
            let mut cmd = tokio::process::Command::new("sh");
            if let Some(root) = root {
                cmd.env("RUNBOOK_HOST_ROOT", root);
            }
            let mut child = cmd
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // Its own process group, so a Ctrl-C at the terminal does not end the lock
                // before the run has stopped its commands.
                .process_group(0)
                .kill_on_drop(false)
                .spawn()
                .map_err(|e| unreachable(format!("cannot start sh: {e}")))?;
            let out: Box<dyn AsyncRead + Send + Unpin> =
                Box::new(child.stdout.take().expect("stdout is piped"));
            let err: Box<dyn AsyncRead + Send + Unpin> =
                Box::new(child.stderr.take().expect("stderr is piped"));
            (LockChild::Local(child), out, err)
        }
    };
    let mut stdout = BufReader::new(stdout);
    let mut first = String::new();
    let answered = tokio::time::timeout(ANSWER_TIMEOUT, stdout.read_line(&mut first)).await;
    match (answered, first.trim_end()) {
        (Ok(Ok(_)), "locked" | "ours") => {
            let lost = Arc::new(AtomicBool::new(false));
            let flag = lost.clone();
            // The command prints nothing more; its output ends when it does.
            tokio::spawn(async move {
                let mut rest = Vec::new();
                let _ = stdout.read_to_end(&mut rest).await;
                flag.store(true, Ordering::SeqCst);
            });
            drop(stderr);
            Ok(Attempt::Locked(Box::new(HostLock { child, lost })))
        }
        (Ok(Ok(_)), "held") => {
            let mut rest = String::new();
            let _ = tokio::time::timeout(ANSWER_TIMEOUT, stdout.read_to_string(&mut rest)).await;
            let _ = finish(child).await;
            Ok(Attempt::Held(
                rest.lines().filter_map(Holder::parse).collect(),
            ))
        }
        (Ok(_), _) => {
            let mut text = String::new();
            let mut stderr = stderr;
            let _ = tokio::time::timeout(ANSWER_TIMEOUT, stderr.read_to_string(&mut text)).await;
            let code = finish(child).await;
            match code {
                // The command ended without a word: the connection dropped.
                None if text.trim().is_empty() => Err(unreachable(
                    "the connection dropped while taking the host lock".into(),
                )),
                _ => Err(TransportError::HostLock {
                    host: host.to_owned(),
                    message: format!(
                        "cannot take the lock of host `{host}`: {}{}",
                        last_line(&text),
                        code.filter(|c| *c != HELD)
                            .map(|c| format!(" (exit {c})"))
                            .unwrap_or_default()
                    ),
                }),
            }
        }
        (Err(_), _) => Err(TransportError::HostLock {
            host: host.to_owned(),
            message: format!(
                "cannot take the lock of host `{host}`: it did not answer within {}s",
                ANSWER_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// Waits for a lock command that gave up; its exit code.
async fn finish(child: LockChild) -> Option<i32> {
    let wait = async {
        match child {
            LockChild::Ssh(mut c) => {
                drop(c.stdin().take());
                c.wait().await.ok().and_then(|s| s.code())
            }
            LockChild::Local(mut c) => {
                drop(c.stdin.take());
                c.wait().await.ok().and_then(|s| s.code())
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .ok()
        .flatten()
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or("the lock command failed", str::trim)
}

#[cfg(test)]
mod tests {
    //! The lock script on the local machine, with `RUNBOOK_HOST_ROOT` in a temporary directory.
    use super::*;

    fn claim(run: &str, token: &str, mode: Mode) -> Claim {
        Claim {
            mode,
            run_id: run.into(),
            operator: "op\tera\ntor".into(),
            token: token.into(),
        }
    }

    async fn take_in(root: &std::path::Path, claim: &Claim) -> Result<HostLock, TransportError> {
        take("h", &Target::Local(Some(root)), claim).await
    }

    #[tokio::test]
    async fn exclusive_excludes_everyone_and_names_itself() {
        let root = tempfile::tempdir().expect("tempdir");
        let first = take_in(root.path(), &claim("run-1", "t1", Mode::Exclusive))
            .await
            .expect("free");
        let refused = take_in(root.path(), &claim("run-2", "t2", Mode::Exclusive)).await;
        let Err(TransportError::HostLock { message, .. }) = refused else {
            panic!("a second apply must be refused");
        };
        assert!(
            message.contains("run run-1 (apply) by op?era?tor"),
            "{message}"
        );
        assert!(
            message.contains(&format!("(pid {})", std::process::id())),
            "{message}"
        );
        assert!(
            take_in(root.path(), &claim("run-3", "t3", Mode::Shared))
                .await
                .is_err(),
            "a dry run cannot read what an apply changes"
        );
        let same_run = take_in(root.path(), &claim("run-1", "t1", Mode::Exclusive)).await;
        assert!(
            same_run.is_ok(),
            "a second entry for the same host shares the lock"
        );
        same_run.expect("ours").release().await;
        first.release().await;
        let again = take_in(root.path(), &claim("run-2", "t2", Mode::Exclusive)).await;
        assert!(again.is_ok(), "released when the holder's input ends");
    }

    #[tokio::test]
    async fn shared_holders_coexist_but_exclude_an_apply() {
        let root = tempfile::tempdir().expect("tempdir");
        let a = take_in(root.path(), &claim("dry-1", "t1", Mode::Shared))
            .await
            .expect("free");
        let b = take_in(root.path(), &claim("dry-2", "t2", Mode::Shared))
            .await
            .expect("shared with another dry run");
        let refused = take_in(root.path(), &claim("run-3", "t3", Mode::Exclusive)).await;
        let Err(TransportError::HostLock { message, .. }) = refused else {
            panic!("an apply must wait for the dry runs");
        };
        assert!(
            message.contains("run dry-1 (dry-run)") && message.contains("run dry-2 (dry-run)"),
            "{message}"
        );
        a.release().await;
        b.release().await;
        assert!(
            take_in(root.path(), &claim("run-3", "t3", Mode::Exclusive))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_killed_holder_is_no_holder() {
        let root = tempfile::tempdir().expect("tempdir");
        let lock = take_in(root.path(), &claim("run-1", "t1", Mode::Exclusive))
            .await
            .expect("free");
        let LockChild::Local(mut child) = lock.child else {
            unreachable!("local")
        };
        child.kill().await.expect("kill");
        let next = take_in(root.path(), &claim("run-2", "t2", Mode::Exclusive)).await;
        assert!(next.is_ok(), "the kernel released the dead holder's lock");
    }

    #[test]
    fn records_parse_back() {
        let c = Claim {
            mode: Mode::Exclusive,
            run_id: "r".into(),
            operator: "o".into(),
            token: "tok".into(),
        };
        let line = format!("{}\t4242", c.record());
        let h = Holder::parse(&line).expect("parses");
        assert_eq!(h.run_id, "r");
        assert_eq!(h.mode, "apply");
        assert_eq!(h.pid, std::process::id());
        assert_eq!(h.host_pid, 4242);
        assert!(!h.is_dead_here(), "this process is alive");
    }
}
