//! Carrying out an [`Operation::Transfer`]: data from one host to another through the
//! controller.
//!
//! Hosts hold no credentials for each other, so the controller is the only path between them.
//! The scripts are the module crate's ([`runbook_modules::transfer`]); this file only drives
//! them through the [`Runner`], which can run a command on any host of the run:
//!
//! 1. the source's state (kind, size, mode, owner, sha256) and the destination's (what is
//!    there, a partial copy, free space);
//! 2. identical: `runbook: unchanged` (a probe exits 0); a probe that finds a difference exits 1;
//! 3. too little space: the step fails before anything is written;
//! 4. a partial copy whose bytes match the source's first bytes is continued, any other is
//!    discarded;
//! 5. chunk by chunk: one command on the source prints the chunk (its standard output, raw
//!    bytes), one on the destination appends it (its standard input). At most one chunk is in
//!    the controller's memory;
//! 6. the destination verifies the sha256 of the whole and renames it into place.
//!
//! The outcome is an [`ExecResult`] like any command's, so the action treats it the same way:
//! exit 0 with a JSON summary on stdout (or the unchanged marker), or a failure whose last
//! stderr line says why. A transport error on either host ends the transfer as it ends a
//! command: the partial copy stays, and the next run resumes it.

use std::fmt::Write as _;
use std::time::Duration;

use runbook_modules::transfer::{DestState, SourceState, Transfer, bytes, identical, needed_bytes};
use runbook_modules::{Operation, UNCHANGED};

use crate::inventory::HostId;
use crate::plan::Plan;
use crate::transport::{Exec, ExecResult, Runner, TransportError};

/// A transfer of an action, its source host resolved.
#[derive(Clone, Debug)]
pub struct Planned {
    pub source: HostId,
    pub spec: Transfer,
}

/// The transfers among `ops`, their `from` resolved to hosts of the plan. The compiler has
/// checked the names (`runbook::module::unknown_host`); a name it could not check (rendered at
/// run time) and that is not a host is an error here.
pub fn planned(plan: &Plan, ops: &[Operation]) -> Result<Vec<Planned>, String> {
    ops.iter()
        .filter_map(|op| match op {
            Operation::Transfer(t) => Some(t),
            _ => None,
        })
        .map(|t| {
            plan.hosts
                .iter()
                .position(|h| h.name == t.from)
                .map(|source| Planned {
                    source,
                    spec: t.clone(),
                })
                .ok_or_else(|| format!("`from: {}` is not a host of the inventory", t.from))
        })
        .collect()
}

/// Why a transfer stopped early.
enum Stop {
    Transport(TransportError),
    Failed(String),
}

impl From<TransportError> for Stop {
    fn from(e: TransportError) -> Self {
        Stop::Transport(e)
    }
}

/// Runs one transfer to `dest`. `key` prefixes the wrapper keys of its commands (it must not
/// look like `ATTEMPT.OP`, which the resume probe counts); `cancelled` is asked between chunks.
pub async fn run<R: Runner>(
    runner: &R,
    t: &Planned,
    dest: HostId,
    dest_name: &str,
    key: &str,
    timeout: Option<Duration>,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<ExecResult, TransportError> {
    let mut driver = Driver {
        runner,
        key,
        timeout,
        n: 0,
        log: String::new(),
    };
    let outcome = driver.transfer(t, dest, dest_name, cancelled).await;
    let mut log = driver.log;
    match outcome {
        Ok((code, stdout)) => Ok(ExecResult {
            code: Some(code),
            stdout: stdout.into_bytes(),
            stderr: log.into_bytes(),
        }),
        Err(Stop::Transport(e)) => Err(e),
        Err(Stop::Failed(message)) => {
            let _ = writeln!(log, "{message}");
            Ok(ExecResult {
                code: Some(2),
                stdout: Vec::new(),
                stderr: log.into_bytes(),
            })
        }
    }
}

struct Driver<'a, R> {
    runner: &'a R,
    key: &'a str,
    timeout: Option<Duration>,
    n: usize,
    /// What the transfer tells the operator (the action's stderr).
    log: String,
}

impl<R: Runner> Driver<'_, R> {
    /// Runs `script` on `host`; a non-zero exit stops the transfer with the script's message.
    async fn on(
        &mut self,
        host: HostId,
        what: &str,
        script: String,
        stdin: Vec<u8>,
    ) -> Result<Vec<u8>, Stop> {
        self.n += 1;
        let exec = Exec {
            key: format!("{}.{what}{}", self.key, self.n),
            script,
            env: Vec::new(),
            stdin,
            timeout: self.timeout,
            helpers: Vec::new(),
        };
        let result = self.runner.run(host, exec).await?;
        if result.code == Some(0) {
            return Ok(result.stdout);
        }
        let err = String::from_utf8_lossy(&result.stderr);
        let line = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim()
            .to_owned();
        Err(Stop::Failed(match result.code {
            Some(_) if !line.is_empty() => line,
            Some(code) => format!("the {what} command exited with code {code}"),
            None => format!("the {what} command was killed by a signal"),
        }))
    }

    async fn transfer(
        &mut self,
        t: &Planned,
        dest: HostId,
        dest_name: &str,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<(i32, String), Stop> {
        let spec = &t.spec;
        let module = spec.module;
        let out = self
            .on(t.source, "stat", spec.source_script(), Vec::new())
            .await?;
        let src = SourceState::parse(&String::from_utf8_lossy(&out))
            .map_err(|e| Stop::Failed(format!("{module}: {e}")))?;
        let out = self
            .on(dest, "state", spec.dest_script(&src), Vec::new())
            .await?;
        let have = DestState::parse(&String::from_utf8_lossy(&out))
            .map_err(|e| Stop::Failed(format!("{module}: {e}")))?;
        if identical(&src, &have) {
            let _ = writeln!(
                self.log,
                "{module}: {} on `{dest_name}` is identical to {}:{} (sha256 {})",
                spec.dest, spec.from, spec.src, src.sha256
            );
            let stdout = if spec.probe {
                String::new()
            } else {
                format!("{UNCHANGED}\n")
            };
            return Ok((0, stdout));
        }
        if spec.probe {
            return Ok((1, String::new()));
        }
        let needed = needed_bytes(spec, &src, &have);
        if have.free_bytes < needed {
            return Err(Stop::Failed(format!(
                "{module}: not enough space on `{dest_name}` for {}: {} bytes free, {needed} needed \
                 ({} bytes of {} from {}, reserve {}); nothing was copied",
                spec.dest,
                have.free_bytes,
                src.size,
                src.kind.as_str(),
                spec.from,
                spec.reserve_bytes
            )));
        }
        let mut offset = 0;
        if have.partial > 0 {
            let mut resume = false;
            if have.partial <= src.size {
                let theirs = self
                    .on(
                        t.source,
                        "prefix",
                        spec.source_prefix_script(src.kind, have.partial),
                        Vec::new(),
                    )
                    .await?;
                let ours = self
                    .on(
                        dest,
                        "prefix",
                        spec.partial_prefix_script(have.partial),
                        Vec::new(),
                    )
                    .await?;
                resume = theirs.trim_ascii() == ours.trim_ascii() && !ours.trim_ascii().is_empty();
            }
            if resume {
                offset = have.partial;
                let _ = writeln!(
                    self.log,
                    "{module}: resuming the partial copy at {offset} of {} bytes",
                    src.size
                );
            } else {
                self.on(dest, "discard", spec.discard_script(), Vec::new())
                    .await?;
                let _ = writeln!(
                    self.log,
                    "{module}: discarded a partial copy of {} bytes that does not match the source",
                    have.partial
                );
            }
        }
        let resumed_from = offset;
        let mut chunks = 0u64;
        loop {
            if cancelled() {
                return Err(Stop::Failed(format!(
                    "{module}: interrupted after {offset} of {} bytes; the partial copy is kept and the next run resumes it",
                    src.size
                )));
            }
            let len = spec.chunk_bytes.min(src.size - offset);
            let data = self
                .on(
                    t.source,
                    "read",
                    spec.read_script(src.kind, offset, len),
                    Vec::new(),
                )
                .await?;
            if data.len() as u64 != len {
                return Err(Stop::Failed(format!(
                    "{module}: the source gave {} bytes at offset {offset}, expected {len}: did {} change during the copy?",
                    data.len(),
                    spec.src
                )));
            }
            self.on(
                dest,
                "append",
                spec.append_script(offset, offset + len),
                data,
            )
            .await?;
            offset += len;
            chunks += 1;
            if offset >= src.size {
                break;
            }
        }
        self.on(dest, "finish", spec.finish_script(&src), Vec::new())
            .await?;
        let _ = writeln!(
            self.log,
            "{module}: copied {} bytes in {chunks} chunk(s) of {} from {}:{}, sha256 {} verified",
            src.size - resumed_from,
            bytes(spec.chunk_bytes),
            spec.from,
            spec.src,
            src.sha256
        );
        let summary = serde_json::json!({
            "from": spec.from,
            "src": spec.src,
            "dest": spec.dest,
            "kind": src.kind.as_str(),
            "bytes": src.size,
            "sha256": src.sha256,
            "mode": src.mode,
            "chunks": chunks,
            "chunk_bytes": spec.chunk_bytes,
            "transferred_bytes": src.size - resumed_from,
            "resumed_from": resumed_from,
        });
        Ok((0, format!("{summary}\n")))
    }
}
