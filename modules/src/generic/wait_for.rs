//! `wait_for`: wait on the target host until a condition holds, or fail after a timeout.
//!
//! Use it between a step that starts something and a step that needs it: after starting a
//! database, wait for its port; after a failover, wait for a lock file to go away. It waits for
//! exactly one of:
//!
//! - `port`: a TCP connection to `host:port` succeeds (from the target host, `host` defaulting
//!   to 127.0.0.1). It uses bash's `/dev/tcp`, so it needs no `nc`;
//! - `path`: the path exists;
//! - `path_absent`: the path does not exist;
//! - `command`: the shell command exits 0 (run with `sh -c`, its output discarded).
//!
//! The rendered POSIX `sh` loop checks, then stops with exit status 0 as soon as the condition
//! holds; otherwise it sleeps `interval` and checks again until `timeout` has passed, then exits
//! 1 with `wait_for: timed out after <timeout> waiting for <condition>` on stderr. A port or
//! command attempt is itself cut off (with `timeout`) at the deadline. It only reads, so it is a
//! probe (not mutating) and idempotent. It needs `date +%s`, `timeout` and, for `port`, `bash`:
//! all present on Debian.
//!
//! Its [`Module::check`] tests the condition once, without waiting or sleeping: exit 0 when it
//! holds now, 1 when the step would wait. A port or command attempt is still cut off after
//! `timeout` (at least one second).

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

use super::Words;
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::{Value, format_duration};

/// The `wait_for` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitForModule;

const DEFAULT_HOST: &str = "127.0.0.1";

crate::params! {
    struct Params {

        port: ParamSpec::optional(ParamType::Int,
            "Wait until this TCP port accepts connections",
        ),
        host: ParamSpec::optional(ParamType::String,
            "The host whose `port` to try, from the target host (default 127.0.0.1)",
        ),
        path: ParamSpec::optional(ParamType::Path, "Wait until this path exists"),
        path_absent: ParamSpec::optional(ParamType::Path,
            "Wait until this path does not exist",
        ),
        command: ParamSpec::optional(ParamType::Shell,
            "Wait until this shell command exits 0",
        ),
        timeout: ParamSpec::optional(ParamType::Duration,
            "How long to wait before failing",
        )
        .with_default(Value::Duration(Duration::from_secs(300))),
        interval: ParamSpec::optional(ParamType::Duration,
            "How long to sleep between checks",
        )
        .with_default(Value::Duration(Duration::from_secs(2))),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for WaitForModule {
    fn name(&self) -> &'static str {
        "wait_for"
    }

    fn description(&self) -> &'static str {
        "Wait until a port opens, a path appears or goes away, or a command succeeds"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(30)
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let Wait {
            words,
            test,
            waiting_for,
            bounded,
            timeout,
            interval,
        } = Wait::new(args)?;
        let message = quote(&format!(
            "wait_for: timed out after {} waiting for {waiting_for}",
            format_duration(timeout)
        ));

        let mut script = format!(
            "deadline=$(( $(date +%s) + {} ))\nwhile :; do\n",
            ceil_secs(timeout)
        );
        if bounded {
            script
                .push_str("  left=$(( deadline - $(date +%s) )); [ \"$left\" -gt 0 ] || left=1\n");
            let _ = writeln!(script, "  if timeout \"$left\" {test}; then exit 0; fi");
        } else {
            let _ = writeln!(script, "  if {test}; then exit 0; fi");
        }
        let _ = writeln!(
            script,
            "  if [ \"$(date +%s)\" -ge \"$deadline\" ]; then printf '%s\\n' {message} >&2; exit 1; fi"
        );
        let _ = write!(script, "  sleep {}\ndone", sleep_arg(interval));
        Ok(vec![Operation::Remote(
            words.attach(Command::probe(script)),
        )])
    }

    /// One test of the condition, without waiting: exit 0 when it holds now, 1 when not. A port
    /// or command attempt is cut off after `timeout` (at least 1s), as the loop would.
    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let Wait {
            words,
            test,
            bounded,
            timeout,
            ..
        } = Wait::new(args)?;
        let test = if bounded {
            format!("timeout {} {test}", ceil_secs(timeout).max(1))
        } else {
            test
        };
        let script =
            format!("if {test}; then exit {CHECK_IN_STATE}; else exit {CHECK_WOULD_CHANGE}; fi");
        Ok(Some(vec![Operation::Remote(
            words.attach(Command::probe(script)),
        )]))
    }
}

/// The condition of a step, checked, as one shell test.
struct Wait {
    /// Holds the secrets the test refers to.
    words: Words,
    /// The shell test: exits 0 when the condition holds.
    test: String,
    /// What the timeout message says the step waited for.
    waiting_for: String,
    /// Whether one test may hang (a port or a command), so needs `timeout`.
    bounded: bool,
    timeout: Duration,
    interval: Duration,
}

impl Wait {
    fn new(args: &Args) -> Result<Self, RenderError> {
        let p = Params::read(args);
        // The conditions, exactly one of which a step sets.
        let given: Vec<(&'static str, &Value)> = [p.port, p.path, p.path_absent, p.command]
            .into_iter()
            .filter_map(|arg| arg.present().map(|value| (arg.name(), value)))
            .collect();
        let (condition, value) = match given.as_slice() {
            [one] => *one,
            [] => {
                return Err(RenderError {
                    arg: None,
                    message: "set one of `port`, `path`, `path_absent` or `command` to wait for"
                        .into(),
                });
            }
            [(first, _), (second, _), ..] => {
                return Err(RenderError::new(
                    second,
                    format!("cannot be combined with `{first}`: wait_for waits for one condition"),
                ));
            }
        };
        if condition != "port" && p.host.present().is_some() {
            return Err(RenderError::new(p.host.name(), "only applies to `port`"));
        }
        let timeout = p.timeout.duration().unwrap_or(Duration::from_secs(300));
        let interval = p.interval.duration().unwrap_or(Duration::from_secs(2));
        if interval.is_zero() {
            return Err(RenderError::new(
                p.interval.name(),
                "must be longer than 0s",
            ));
        }

        let mut words = Words::default();
        let (test, waiting_for, bounded) = match condition {
            "port" => {
                if let Some(port) = p.port.int().filter(|p| !(1..=65_535).contains(p)) {
                    return Err(RenderError::new(
                        p.port.name(),
                        format!("expected a TCP port from 1 to 65535, found {port}"),
                    ));
                }
                let default_host = Value::Str(DEFAULT_HOST.into());
                let host = p.host.present().unwrap_or(&default_host);
                if let Value::Str(text) = host
                    && (text.is_empty() || text.contains('/') || text.contains(char::is_whitespace))
                {
                    return Err(RenderError::new(
                        p.host.name(),
                        format!("expected a host name or address, found `{text}`"),
                    ));
                }
                let test = format!(
                    "bash -c ': < \"/dev/tcp/$1/$2\"' wait_for {} {} >/dev/null 2>&1",
                    words.word(host),
                    words.word(value)
                );
                (
                    test,
                    format!("port {value} on {host} to accept connections"),
                    true,
                )
            }
            "path" => (
                format!("[ -e {} ]", words.path(value)),
                format!("{value} to exist"),
                false,
            ),
            "path_absent" => (
                format!("[ ! -e {} ]", words.path(value)),
                format!("{value} to be absent"),
                false,
            ),
            _ => (
                format!("sh -c {} >/dev/null 2>&1", words.word(value)),
                "the command to succeed".to_owned(),
                true,
            ),
        };
        Ok(Self {
            words,
            test,
            waiting_for,
            bounded,
            timeout,
            interval,
        })
    }
}

/// Whole seconds, rounded up: the deadline is kept in `date +%s` seconds.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The argument of `sleep`: whole seconds, or a decimal fraction (GNU and busybox `sleep`).
fn sleep_arg(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        return d.as_secs().to_string();
    }
    let fraction = format!("{:09}", d.subsec_nanos());
    format!("{}.{}", d.as_secs(), fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Instant;

    use super::*;
    use crate::generic::testing::{TempDir, check, hostile, probe, remote, run, run_check, s};

    fn dur(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    #[test]
    fn renders_a_port_loop_with_a_deadline() {
        let cmd = remote(&WaitForModule, &[("port", Value::Int(5432))]);
        assert_eq!(
            cmd.script,
            "deadline=$(( $(date +%s) + 300 ))
while :; do
  left=$(( deadline - $(date +%s) )); [ \"$left\" -gt 0 ] || left=1
  if timeout \"$left\" bash -c ': < \"/dev/tcp/$1/$2\"' wait_for 127.0.0.1 5432 >/dev/null 2>&1; then exit 0; fi
  if [ \"$(date +%s)\" -ge \"$deadline\" ]; then printf '%s\\n' 'wait_for: timed out after 5m waiting for port 5432 on 127.0.0.1 to accept connections' >&2; exit 1; fi
  sleep 2
done"
        );
        assert!(!cmd.mutating, "a probe");
        assert!(WaitForModule.idempotent());
    }

    #[test]
    fn renders_path_checks_and_durations() {
        let cmd = remote(
            &WaitForModule,
            &[
                ("path", s("/run/app.pid")),
                ("timeout", dur("90s")),
                ("interval", dur("500ms")),
            ],
        );
        assert_eq!(
            cmd.script,
            "deadline=$(( $(date +%s) + 90 ))
while :; do
  if [ -e /run/app.pid ]; then exit 0; fi
  if [ \"$(date +%s)\" -ge \"$deadline\" ]; then printf '%s\\n' 'wait_for: timed out after 1m30s waiting for /run/app.pid to exist' >&2; exit 1; fi
  sleep 0.5
done"
        );
        let cmd = remote(
            &WaitForModule,
            &[("path_absent", s("/run/lock")), ("interval", dur("1500ms"))],
        );
        assert!(
            cmd.script
                .contains("\n  if [ ! -e /run/lock ]; then exit 0; fi\n")
        );
        assert!(cmd.script.contains("\n  sleep 1.5\n"));
        let cmd = remote(&WaitForModule, &[("command", s("pg_isready -q # up?"))]);
        assert!(cmd.script.contains(
            "\n  if timeout \"$left\" sh -c 'pg_isready -q # up?' >/dev/null 2>&1; then exit 0; fi\n"
        ));
    }

    #[test]
    fn needs_exactly_one_condition() {
        let err = WaitForModule
            .render(&check(&WaitForModule, &[]))
            .expect_err("none");
        assert_eq!(err.arg, None);
        assert!(err.message.contains("`port`") && err.message.contains("`command`"));

        let args = check(
            &WaitForModule,
            &[("path", s("/a")), ("port", Value::Int(80))],
        );
        let err = WaitForModule.render(&args).expect_err("several");
        assert_eq!(err.arg, Some("path"));
        assert!(err.message.contains("`port`"), "{}", err.message);

        let args = check(&WaitForModule, &[("path", s("/a")), ("host", s("db"))]);
        assert_eq!(
            WaitForModule.render(&args).expect_err("host").arg,
            Some("host")
        );
        for port in [0, 65_536, -1] {
            let args = check(&WaitForModule, &[("port", Value::Int(port))]);
            assert_eq!(
                WaitForModule.render(&args).expect_err("port").arg,
                Some("port")
            );
        }
        let args = check(
            &WaitForModule,
            &[("port", Value::Int(80)), ("host", s("a b"))],
        );
        assert_eq!(
            WaitForModule.render(&args).expect_err("host").arg,
            Some("host")
        );
        let args = check(
            &WaitForModule,
            &[("path", s("/a")), ("interval", dur("0s"))],
        );
        assert_eq!(
            WaitForModule.render(&args).expect_err("interval").arg,
            Some("interval")
        );
    }

    fn wait(raw: &[(&str, Value)], dir: &TempDir) -> (bool, String, Duration) {
        let cmd = remote(&WaitForModule, raw);
        let start = Instant::now();
        let out = run(&cmd, dir.path());
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            start.elapsed(),
        )
    }

    #[test]
    fn waits_for_paths_with_real_sh() {
        let dir = TempDir::new("wait-path");
        std::fs::write(dir.join("here"), "").expect("write");
        let here = s(&dir.str("here"));
        let gone = s(&dir.str("gone"));
        let fast = [("timeout", dur("1s")), ("interval", dur("200ms"))];

        let (ok, _, took) = wait(&[("path", here.clone())], &dir);
        assert!(ok);
        assert!(took < Duration::from_secs(2), "{took:?}");
        let (ok, stderr, took) = wait(&[&[("path", gone.clone())][..], &fast].concat(), &dir);
        assert!(!ok);
        assert!(
            stderr.contains("wait_for: timed out after 1s waiting for"),
            "{stderr}"
        );
        assert!(stderr.contains("gone to exist"), "{stderr}");
        assert!(took < Duration::from_secs(5), "{took:?}");

        assert!(wait(&[("path_absent", gone)], &dir).0);
        assert!(!wait(&[&[("path_absent", here)][..], &fast].concat(), &dir).0);
    }

    #[test]
    fn waits_for_commands_and_ports_with_real_sh() {
        let dir = TempDir::new("wait-cmd");
        let fast = [("timeout", dur("1s")), ("interval", dur("200ms"))];
        assert!(wait(&[("command", s("true # fine"))], &dir).0);
        assert!(wait(&[("command", s("exit 0"))], &dir).0);
        let (ok, stderr, _) = wait(&[&[("command", s("exit 3"))][..], &fast].concat(), &dir);
        assert!(!ok);
        assert!(
            stderr.contains("waiting for the command to succeed"),
            "{stderr}"
        );
        // A hanging check is cut off at the deadline.
        let (ok, _, took) = wait(&[&[("command", s("sleep 30"))][..], &fast].concat(), &dir);
        assert!(!ok);
        assert!(took < Duration::from_secs(10), "{took:?}");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = i64::from(listener.local_addr().expect("addr").port());
        assert!(wait(&[("port", Value::Int(port))], &dir).0);
        drop(listener);
        let (ok, stderr, _) = wait(&[&[("port", Value::Int(port))][..], &fast].concat(), &dir);
        assert!(!ok);
        assert!(
            stderr.contains(&format!("port {port} on 127.0.0.1")),
            "{stderr}"
        );
    }

    #[test]
    fn hostile_values_stay_inert() {
        let dir = TempDir::new("wait-hostile");
        let marker = dir.join("pwned");
        let fast = [("timeout", dur("0s")), ("interval", dur("100ms"))];
        for value in hostile(&marker) {
            let _ = wait(&[&[("path", s(&value))][..], &fast].concat(), &dir);
            let _ = wait(&[&[("path_absent", s(&value))][..], &fast].concat(), &dir);
            let raw = [&[("port", Value::Int(1)), ("host", s(&value))][..], &fast].concat();
            if let Ok(ops) = WaitForModule.render(&check(&WaitForModule, &raw)) {
                let [Operation::Remote(cmd)] = ops.as_slice() else {
                    panic!("one command")
                };
                let _ = run(cmd, dir.path());
            }
            assert!(!marker.exists(), "escaped quoting: {value:?}");
        }
    }

    #[test]
    fn secret_commands_stay_in_the_environment() {
        let cmd = remote(
            &WaitForModule,
            &[("command", Value::Secret("test hunter2".into()))],
        );
        assert!(cmd.script.contains("sh -c \"$RUNBOOK_SECRET_1\""));
        assert!(!cmd.to_string().contains("hunter2"));
    }

    #[test]
    fn check_renders_one_test_without_waiting() {
        let cmd = probe(
            &WaitForModule,
            &[("port", Value::Int(5432)), ("host", s("db-1"))],
        );
        assert_eq!(
            cmd.script,
            "if timeout 300 bash -c ': < \"/dev/tcp/$1/$2\"' wait_for db-1 5432 >/dev/null 2>&1; \
             then exit 0; else exit 1; fi"
        );
        let cmd = probe(&WaitForModule, &[("path", s("/run/app.pid"))]);
        assert_eq!(
            cmd.script,
            "if [ -e /run/app.pid ]; then exit 0; else exit 1; fi"
        );
        let cmd = probe(&WaitForModule, &[("path_absent", s("-lock"))]);
        assert_eq!(
            cmd.script,
            "if [ ! -e ./-lock ]; then exit 0; else exit 1; fi"
        );
        let cmd = probe(
            &WaitForModule,
            &[("command", s("pg_isready -q")), ("timeout", dur("0s"))],
        );
        assert_eq!(
            cmd.script,
            "if timeout 1 sh -c 'pg_isready -q' >/dev/null 2>&1; then exit 0; else exit 1; fi"
        );
        let cmd = probe(
            &WaitForModule,
            &[
                ("command", Value::Secret("test hunter2".into())),
                ("timeout", dur("1500ms")),
            ],
        );
        assert_eq!(
            cmd.script,
            "if timeout 2 sh -c \"$RUNBOOK_SECRET_1\" >/dev/null 2>&1; then exit 0; else exit 1; fi"
        );
        assert!(!cmd.to_string().contains("hunter2"));

        let args = check(
            &WaitForModule,
            &[("path", s("/a")), ("port", Value::Int(80))],
        );
        assert_eq!(
            WaitForModule.check(&args).expect_err("two").arg,
            Some("path")
        );
    }

    fn answer(raw: &[(&str, Value)], dir: &TempDir) -> (i32, Duration) {
        let start = Instant::now();
        let code = run_check(&probe(&WaitForModule, raw), dir.path());
        (code, start.elapsed())
    }

    #[test]
    fn checks_paths_and_commands_once_with_real_sh() {
        let dir = TempDir::new("wait-check");
        let path = s(&dir.str("ready"));
        // The default 5m timeout: an answer comes at once anyway.
        let (code, took) = answer(&[("path", path.clone())], &dir);
        assert_eq!(code, 1);
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(answer(&[("path_absent", path.clone())], &dir).0, 0);

        // The apply waits until the condition holds; afterwards the check says so.
        let cmd = remote(
            &WaitForModule,
            &[
                ("path", path.clone()),
                ("interval", dur("100ms")),
                ("timeout", dur("10s")),
            ],
        );
        let target = dir.join("ready");
        let maker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(target, "").expect("write");
        });
        assert!(run(&cmd, dir.path()).status.success());
        maker.join().expect("join");
        assert_eq!(answer(&[("path", path.clone())], &dir).0, 0);
        assert_eq!(answer(&[("path_absent", path)], &dir).0, 1);

        assert_eq!(answer(&[("command", s("true # fine"))], &dir).0, 0);
        assert_eq!(answer(&[("command", s("exit 3"))], &dir).0, 1);
        let (code, took) = answer(&[("command", s("sleep 30")), ("timeout", dur("1s"))], &dir);
        assert_eq!(code, 1, "a hanging command is cut off");
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn checks_ports_once_with_real_sh() {
        let dir = TempDir::new("wait-check-port");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = i64::from(listener.local_addr().expect("addr").port());
        assert_eq!(answer(&[("port", Value::Int(port))], &dir).0, 0);
        drop(listener);
        let (code, took) = answer(&[("port", Value::Int(port))], &dir);
        assert_eq!(code, 1);
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn hostile_values_stay_inert_in_the_check() {
        let dir = TempDir::new("wait-check-hostile");
        let marker = dir.join("pwned");
        for value in hostile(&marker) {
            for raw in [
                vec![("path", s(&value))],
                vec![("path_absent", s(&value))],
                vec![("port", Value::Int(1)), ("host", s(&value))],
            ] {
                if let Ok(Some(ops)) = WaitForModule.check(&check(&WaitForModule, &raw)) {
                    let [Operation::Remote(cmd)] = ops.as_slice() else {
                        panic!("one command")
                    };
                    let _ = run(cmd, dir.path());
                }
                assert!(!marker.exists(), "escaped quoting: {value:?}");
            }
        }
    }
}
