//! Running one command on one host, with a timeout that really stops it.

use std::future::Future;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;

use crate::inventory::{Connection, HostId};

use super::endpoint::Endpoint;
use super::fault::{self, ScriptFate};
use super::host_lock::{self, Claim, HostLock};
use super::wrapper::{WRAPPER, kill_script, stdin_header};

/// One command to run.
#[derive(Clone, Debug, Default)]
pub struct Exec {
    /// Names the action on the host (`RUN/step@host`): where the wrapper records its state.
    pub key: String,
    /// The module's shell command; never contains a secret.
    pub script: String,
    /// Environment for the script, sent on standard input (secrets included, never in argv).
    pub env: Vec<(String, String)>,
    /// The script's standard input.
    pub stdin: Vec<u8>,
    pub timeout: Option<Duration>,
    /// The shared helper libraries the script calls: installed on the host once per run and
    /// sourced by the wrapper ([`super::wrapper_helpers`]).
    pub helpers: Vec<runbook_modules::Helper>,
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecResult {
    /// The exit code; `None` when the command was killed by a signal.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why a command has no result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The host could not be reached, or the connection dropped while the command ran (its
    /// effect is then unknown).
    #[error("host `{host}` is unreachable: {message}")]
    Unreachable { host: String, message: String },
    /// The host's key is unknown or changed: refused, as strict checking demands.
    #[error("{}", host_key_message(host, message, fingerprint.as_deref()))]
    HostKey {
        host: String,
        message: String,
        fingerprint: Option<String>,
    },
    /// The host is locked by another run (or its lock cannot be taken): nothing was run on it
    /// (`host_lock.rs`).
    #[error("{message}; nothing was run on it")]
    HostLock { host: String, message: String },
    /// The wrapper on the host ended without an exit status (killed by a signal) while the
    /// connection stayed up: the host answers, and its record says what became of the script.
    /// The output received until then is kept.
    #[error(
        "the wrapper of the command on `{host}` was killed by a signal (ssh does not say which) while the host stayed reachable; {fate}"
    )]
    WrapperKilled {
        host: String,
        fate: ScriptFate,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// The command ran past its timeout and was stopped; `cleanup` says how.
    #[error("timed out on `{host}` after {}: {cleanup}", runbook_modules::format_duration(*after))]
    TimedOut {
        host: String,
        after: Duration,
        cleanup: String,
    },
}

/// The refusal of a host key: what ssh said, then, when the host presented a key, its
/// fingerprint and how to accept it.
fn host_key_message(host: &str, message: &str, fingerprint: Option<&str>) -> String {
    let refused = format!("host key of `{host}` refused: {message}");
    match fingerprint {
        Some(fp) => format!(
            "{refused}\nthe host presents: {fp}\nif this key is right, add it to your known_hosts (ssh-keyscan) and run again"
        ),
        None => refused,
    }
}

/// What the executor needs from a transport. Implemented by [`Transports`]; the scheduler's
/// unit tests use a fake.
pub trait Runner: Send + Sync {
    fn run(
        &self,
        host: HostId,
        exec: Exec,
    ) -> impl Future<Output = Result<ExecResult, TransportError>> + Send;

    /// Commands at once on `host`.
    fn max_sessions(&self, host: HostId) -> usize {
        let _ = host;
        9
    }

    /// What the wrapper recorded on `host` for the action keyed `prefix` (see
    /// [`probe_all_script`](super::wrapper::probe_all_script)); `none` when nothing.
    fn probe(
        &self,
        host: HostId,
        prefix: String,
    ) -> impl Future<Output = Result<String, TransportError>> + Send {
        let _ = (host, prefix);
        async { Ok("none".to_owned()) }
    }

    /// Fences the action keyed `prefix` on `host` for process generation `generation`
    /// ([`fence_script`](super::wrapper::fence_script)): commands of earlier generations that
    /// arrive from now on do not run.
    fn fence(
        &self,
        host: HostId,
        prefix: String,
        generation: u32,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        let _ = (host, prefix, generation);
        async { Ok(()) }
    }

    /// Stops whatever still runs on `host` for the action keyed `prefix` (Ctrl-C).
    fn cancel(&self, host: HostId, prefix: String) -> impl Future<Output = ()> + Send {
        let _ = (host, prefix);
        async {}
    }
}

enum Conn {
    Ssh(Arc<openssh::Session>),
    Local,
}

/// The connections of one run, one per host, opened on first use.
pub struct Transports {
    endpoints: Vec<Endpoint>,
    conns: Vec<OnceCell<Result<Arc<Conn>, TransportError>>>,
    sftp: Vec<OnceCell<Result<Arc<openssh_sftp_client::Sftp>, TransportError>>>,
    control_dir: tempfile::TempDir,
    /// Who this run is, for the host locks; [`Claim::hold`] unless set.
    claim: Claim,
    /// The lock command of each connected host ([`super::host_lock`]).
    locks: Vec<std::sync::Mutex<Option<HostLock>>>,
    /// The shared control directory and `ControlPersist` of masters that outlive the run
    /// ([`super::persist`]); `None`: this run's own masters, closed with it.
    shared: Option<(std::path::PathBuf, Duration)>,
    /// The helper libraries each host is known to hold ([`super::wrapper_helpers`]).
    helpers: super::wrapper_helpers::Installed,
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transports")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl Transports {
    /// `endpoints[i]` is how to reach the host with id `i`.
    pub fn new(endpoints: Vec<Endpoint>) -> std::io::Result<Self> {
        // Control sockets need a short path (Unix sockets are limited to ~100 bytes).
        let control_dir = tempfile::Builder::new()
            .prefix("rb-ssh-")
            .tempdir_in("/tmp")?;
        let conns = endpoints.iter().map(|_| OnceCell::new()).collect();
        let sftp = endpoints.iter().map(|_| OnceCell::new()).collect();
        let locks = endpoints
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        Ok(Self {
            endpoints,
            conns,
            sftp,
            control_dir,
            claim: Claim::hold(),
            locks,
            shared: None,
            helpers: super::wrapper_helpers::Installed::default(),
        })
    }

    /// Masters that outlive the run for `persist` ([`super::persist`]), in the shared control
    /// directory. When that directory is not safe to use, the run keeps its own masters and
    /// the reason is returned (to be shown as a warning).
    #[must_use]
    pub fn with_persist(mut self, persist: super::persist::Persist) -> (Self, Option<String>) {
        let super::persist::Persist::For(time) = persist else {
            return (self, None);
        };
        match super::persist::shared_dir() {
            Ok(dir) => {
                super::persist::prune(&dir);
                self.shared = Some((dir, time));
                (self, None)
            }
            Err(why) => (
                self,
                Some(format!("{why}; this run's connections close when it ends")),
            ),
        }
    }

    /// Locks each host this run connects to for `claim` (`host_lock.rs`). Without it,
    /// hosts are not locked (their connections are only kept busy).
    #[must_use]
    pub fn with_host_lock(mut self, mut claim: Claim) -> Self {
        // A token no other run's connections carry: this process, now, and the control
        // directory's random name (unless the claim carries its run's: `Claim::shared_run`).
        if !claim.token.is_empty() {
            self.claim = claim;
            return self;
        }
        claim.token = crate::journal::fingerprint(
            format!(
                "{}/{:?}/{}",
                std::process::id(),
                std::time::SystemTime::now(),
                self.control_dir.path().display()
            )
            .as_bytes(),
        )
        .chars()
        .take(32)
        .collect();
        self.claim = claim;
        self
    }

    /// Connects to `hosts` in parallel and takes their locks, before the run acts on any of
    /// them. Returns the hosts another run holds (or whose lock cannot be taken), with why; a
    /// host that cannot be reached is not among them: its actions fail as unreachable, as
    /// they would without the lock.
    pub async fn lock_hosts(
        self: &Arc<Self>,
        hosts: &std::collections::BTreeSet<HostId>,
    ) -> Vec<(HostId, TransportError)> {
        // Bounded, so a large inventory does not start hundreds of `ssh` at once.
        let slots = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for &host in hosts {
            let (this, slots) = (self.clone(), slots.clone());
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                (host, this.conn(host).await)
            });
        }
        let mut refused = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((host, Err(e @ TransportError::HostLock { .. }))) = joined {
                refused.push((host, e));
            }
        }
        refused.sort_by_key(|(host, _)| *host);
        refused
    }
    pub fn endpoint(&self, host: HostId) -> &Endpoint {
        &self.endpoints[host]
    }

    async fn conn(&self, host: HostId) -> Result<Arc<Conn>, TransportError> {
        self.conns[host]
            .get_or_init(|| async {
                let endpoint = &self.endpoints[host];
                let conn = match endpoint.connection {
                    Connection::Local => Ok(Arc::new(Conn::Local)),
                    Connection::Ssh => match &self.shared {
                        Some((dir, persist)) => {
                            super::ssh::connect_shared(endpoint, dir, *persist).await
                        }
                        None => super::ssh::connect(endpoint, self.control_dir.path()).await,
                    }
                    .map(|s| Arc::new(Conn::Ssh(Arc::new(s)))),
                }?;
                // Before anything else runs there: the host is this run's, or nothing runs.
                let target = match &*conn {
                    Conn::Ssh(session) => host_lock::Target::Ssh(session),
                    Conn::Local => host_lock::Target::Local(None),
                };
                let lock = host_lock::take(&endpoint.name, &target, &self.claim).await?;
                *self.locks[host]
                    .lock()
                    .expect("the host lock slot is never poisoned") = Some(lock);
                Ok(conn)
            })
            .await
            .clone()
    }

    /// Writes a file on the host over the same connection (SFTP), atomically (temporary file,
    /// fsync, rename). On a local host, the same with the local file system.
    pub async fn upload(
        &self,
        host: HostId,
        dest: &std::path::Path,
        content: &[u8],
        mode: u32,
    ) -> Result<(), TransportError> {
        let name = &self.endpoints[host].name;
        match &*self.conn(host).await? {
            Conn::Local => {
                let io = |e: std::io::Error| TransportError::Unreachable {
                    host: name.clone(),
                    message: e.to_string(),
                };
                let tmp = dest.with_extension("runbook-tmp");
                tokio::fs::write(&tmp, content).await.map_err(io)?;
                let perms =
                    <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(mode);
                tokio::fs::set_permissions(&tmp, perms).await.map_err(io)?;
                tokio::fs::rename(&tmp, dest).await.map_err(io)
            }
            Conn::Ssh(session) => {
                let sftp = self.sftp[host]
                    .get_or_init(|| async {
                        super::upload::open(name, session.clone())
                            .await
                            .map(Arc::new)
                    })
                    .await
                    .clone()?;
                super::upload::upload(name, &sftp, dest, content, mode).await
            }
        }
    }

    /// Releases the host locks, then closes every master connection of this run's own; a
    /// shared master is left to its `ControlPersist` (its last channel, the lock, just ended).
    pub async fn close(self) {
        for slot in &self.locks {
            let lock = slot
                .lock()
                .expect("the host lock slot is never poisoned")
                .take();
            if let Some(lock) = lock {
                lock.release().await;
            }
        }
        if self.shared.is_some() {
            return;
        }
        for cell in self.conns {
            if let Some(Ok(conn)) = cell.into_inner()
                && let Ok(Conn::Ssh(session)) = Arc::try_unwrap(conn)
                && let Ok(session) = Arc::try_unwrap(session)
            {
                let _ = session.close().await;
            }
        }
    }

    /// Removes what the wrapper recorded for `run` on every host the run connected to (in
    /// parallel; errors ignored). For a run that finished: nothing will resume it, and its
    /// records would only pile up. A host the run never reached is not connected to for this.
    pub async fn forget_run(self: &Arc<Self>, run: &str) {
        if run.is_empty() || run.contains('/') || run.starts_with('.') {
            return;
        }
        let script = super::wrapper::forget_script(run);
        let mut tasks = tokio::task::JoinSet::new();
        for host in 0..self.endpoints.len() {
            if matches!(self.conns[host].get(), Some(Ok(_))) {
                let (this, script) = (self.clone(), script.clone());
                tasks.spawn(async move {
                    let _ = this.plain(host, &script).await;
                });
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Runs a plain command (no wrapper) and returns its output: for the kill and probe scripts.
    async fn plain(&self, host: HostId, script: &str) -> Result<ExecResult, TransportError> {
        let exec = Exec {
            script: script.to_owned(),
            ..Exec::default()
        };
        self.spawn_and_wait(host, &exec, false).await
    }

    async fn spawn_and_wait(
        &self,
        host: HostId,
        exec: &Exec,
        wrapped: bool,
    ) -> Result<ExecResult, TransportError> {
        let name = &self.endpoints[host].name;
        let unreachable = |message: String| TransportError::Unreachable {
            host: name.clone(),
            message,
        };
        let record = super::wrapper::record(&exec.key);
        let helpers = super::wrapper_helpers::argument(&exec.helpers);
        let mut args: Vec<&str> = if wrapped {
            vec!["-c", WRAPPER, "runbook-wrapper", &record, &exec.script]
        } else {
            vec!["-c", &exec.script]
        };
        if wrapped && !helpers.is_empty() {
            args.push(&helpers);
        }
        let mut input = if wrapped {
            // The libraries the host is not known to hold travel before the environment.
            let mut header =
                super::wrapper_helpers::install_lines(&self.helpers.missing(host, &exec.helpers));
            header.extend(stdin_header(&exec.env));
            header
        } else {
            Vec::new()
        };
        input.extend_from_slice(&exec.stdin);
        let conn = self.conn(host).await?;
        if wrapped && self.lock_lost(host) {
            return Err(unreachable(
                "the run's lock on the host ended (its command there was killed, or the connection dropped): nothing more is run there".into(),
            ));
        }
        match &*conn {
            Conn::Local => {
                let mut child = tokio::process::Command::new("sh")
                    .args(&args)
                    // The wrapper leads its own process group, as sshd's `setsid` makes it
                    // over ssh.
                    .process_group(0)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(false)
                    .spawn()
                    .map_err(|e| unreachable(format!("cannot start sh: {e}")))?;
                let (stdin, stdout, stderr) =
                    (child.stdin.take(), child.stdout.take(), child.stderr.take());
                let (out, err) = pump(stdin, input, stdout, stderr).await;
                let status = child.wait().await.map_err(|e| unreachable(e.to_string()))?;
                if wrapped && std::os::unix::process::ExitStatusExt::signal(&status).is_some() {
                    // The wrapper itself was killed: ask its record what became of the script.
                    return Err(self.dead_wrapper(host, exec, out, err).await);
                }
                Ok(ExecResult {
                    code: status.code(),
                    stdout: out,
                    stderr: err,
                })
            }
            Conn::Ssh(session) => {
                // `exec`: the wrapper is then the process sshd started in a session of its
                // own, so it leads the process group of its script (`wrapper.rs`).
                let mut cmd = session.command("exec");
                cmd.arg("sh")
                    .args(&args)
                    .stdin(openssh::Stdio::piped())
                    .stdout(openssh::Stdio::piped())
                    .stderr(openssh::Stdio::piped());
                let mut child = cmd
                    .spawn()
                    .await
                    .map_err(|e| unreachable(format!("the command could not be sent: {e}")))?;
                let (stdin, stdout, stderr) = (
                    child.stdin().take(),
                    child.stdout().take(),
                    child.stderr().take(),
                );
                let (out, err) = pump(stdin, input, stdout, stderr).await;
                let status = match child.wait().await {
                    Ok(status) => status,
                    Err(e) => {
                        return Err(self
                            .without_status(host, session, exec, wrapped, &e, out, err)
                            .await);
                    }
                };
                Ok(ExecResult {
                    code: status.code(),
                    stdout: out,
                    stderr: err,
                })
            }
        }
    }
}

impl Transports {
    fn lock_lost(&self, host: HostId) -> bool {
        self.locks[host]
            .lock()
            .expect("the host lock slot is never poisoned")
            .as_ref()
            .is_some_and(HostLock::lost)
    }

    /// A command over ssh ended without an exit status: a lost connection, or a remote process
    /// killed by a signal. The connection's state decides which ([`fault`]).
    #[allow(clippy::too_many_arguments)] // one call site; the pieces of one command's end
    async fn without_status(
        &self,
        host: HostId,
        session: &openssh::Session,
        exec: &Exec,
        wrapped: bool,
        error: &openssh::Error,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    ) -> TransportError {
        let name = self.endpoints[host].name.clone();
        if session.check().await.is_err() {
            let log = session
                .control_socket()
                .parent()
                .and_then(|dir| fs_err::read_to_string(dir.join("log")).ok())
                .unwrap_or_default();
            let reason = fault::master_reason(&log).unwrap_or_else(|| error.to_string());
            return TransportError::Unreachable {
                host: name,
                message: fault::lost(&reason),
            };
        }
        if !wrapped {
            return TransportError::Unreachable {
                host: name,
                message: format!(
                    "a control command ended without an exit status ({error}) although the connection is up"
                ),
            };
        }
        self.dead_wrapper(host, exec, stdout, stderr).await
    }

    /// The wrapper of `exec` died of a signal while the host stayed reachable: what its record
    /// on the host says.
    async fn dead_wrapper(
        &self,
        host: HostId,
        exec: &Exec,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    ) -> TransportError {
        let name = self.endpoints[host].name.clone();
        let script = fault::record_script(&exec.key);
        // Boxed: `plain` runs through `spawn_and_wait`, which may land here again (never for a
        // plain command, but the compiler cannot know).
        let record = Box::pin(self.plain(host, &script)).await;
        let fate = match &record {
            Ok(r) => fault::parse_record(&String::from_utf8_lossy(&r.stdout)),
            Err(_) => None,
        };
        match (fate, record) {
            (Some(fate), _) => TransportError::WrapperKilled {
                host: name,
                fate,
                stdout,
                stderr,
            },
            (None, Err(e)) => TransportError::Unreachable {
                host: name,
                message: format!(
                    "the command's wrapper ended without an exit status, and the host's record of it could not be read ({e}): its outcome is unknown"
                ),
            },
            (None, Ok(r)) => TransportError::Unreachable {
                host: name,
                message: format!(
                    "the command's wrapper ended without an exit status, and the host's record of it is unreadable ({:?}): its outcome is unknown",
                    String::from_utf8_lossy(&r.stdout).trim()
                ),
            },
        }
    }
}

impl Runner for Transports {
    fn max_sessions(&self, host: HostId) -> usize {
        self.endpoints[host].max_sessions
    }

    async fn probe(&self, host: HostId, prefix: String) -> Result<String, TransportError> {
        let out = self
            .plain(host, &super::wrapper::probe_all_script(&prefix))
            .await?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn cancel(&self, host: HostId, prefix: String) {
        let _ = self
            .plain(host, &super::wrapper::kill_all_script(&prefix, 5))
            .await;
    }

    async fn fence(
        &self,
        host: HostId,
        prefix: String,
        generation: u32,
    ) -> Result<(), TransportError> {
        let out = self
            .plain(host, &super::wrapper::fence_script(&prefix, generation))
            .await?;
        if out.code == Some(0) {
            Ok(())
        } else {
            Err(TransportError::Unreachable {
                host: self.endpoints[host].name.clone(),
                message: format!(
                    "cannot fence {prefix} on the host: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })
        }
    }

    async fn run(&self, host: HostId, exec: Exec) -> Result<ExecResult, TransportError> {
        let wrapped = async {
            let result = self.spawn_and_wait(host, &exec, true).await;
            if let Ok(r) = &result {
                self.helpers.learn(host, &exec.helpers, r.code);
            }
            result
        };
        let Some(limit) = exec.timeout else {
            return wrapped.await;
        };
        if let Ok(result) = tokio::time::timeout(limit, wrapped).await {
            result
        } else {
            // Stop the command's whole process group on the host, then report.
            let cleanup = match self.plain(host, &kill_script(&exec.key, 5)).await {
                // Each message says only what the kill script saw on the host.
                Ok(r) => match String::from_utf8_lossy(&r.stdout).trim() {
                    "killed" => "its processes did not stop on SIGTERM and were killed".to_owned(),
                    "terminated" => "its processes were stopped with SIGTERM".to_owned(),
                    "survived" => "its processes did not stop on SIGTERM, and some were still there after SIGKILL".to_owned(),
                    "not running" => "its process group had already ended".to_owned(),
                    "no such action" => "the host had no record of its process group, so nothing was stopped; whether it started is unknown".to_owned(),
                    other => format!("the host's answer to stopping it is unclear ({other:?}): it may still be running"),
                },
                Err(e) => format!("it could not be stopped ({e}): it may still be running on the host"),
            };
            Err(TransportError::TimedOut {
                host: self.endpoints[host].name.clone(),
                after: limit,
                cleanup,
            })
        }
    }
}

/// Writes standard input and reads both outputs at once, so no pipe fills up and blocks.
async fn pump<W, R, E>(
    stdin: Option<W>,
    input: Vec<u8>,
    stdout: Option<R>,
    stderr: Option<E>,
) -> (Vec<u8>, Vec<u8>)
where
    W: tokio::io::AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let write = async move {
        if let Some(mut w) = stdin {
            // A command may exit without reading its input: a broken pipe is not an error.
            let _ = w.write_all(&input).await;
            let _ = w.shutdown().await;
        }
    };
    let read_out = async move {
        let mut buf = Vec::new();
        if let Some(mut r) = stdout {
            let _ = r.read_to_end(&mut buf).await;
        }
        buf
    };
    let read_err = async move {
        let mut buf = Vec::new();
        if let Some(mut r) = stderr {
            let _ = r.read_to_end(&mut buf).await;
        }
        buf
    };
    let ((), out, err) = tokio::join!(write, read_out, read_err);
    (out, err)
}
