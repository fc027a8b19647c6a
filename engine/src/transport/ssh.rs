//! Opening the SSH master connection of one host.
//!
//! We launch the master `ssh` ourselves and hand its control directory to the `openssh` crate
//! ([`Session::new_native_mux`]), which then multiplexes every command over it. The crate's own
//! `SessionBuilder::launch_master` puts the destination on the command line without `--`, so
//! an address that looks like an option (`-oProxyCommand=...`) would be read as one; here `--`
//! always comes first. (The inventory refuses such addresses anyway: this is the second wall.)
//!
//! The system `ssh` keeps the user's `~/.ssh/config`, agent and known_hosts working. Inventory
//! `ssh_options` go into a small per-host config file that `Include`s the user's and the
//! system's configuration after them (the first value found wins in ssh_config). Host keys are
//! checked strictly: an unknown or changed key is refused, and the error quotes the fingerprint
//! the host presented.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use openssh::Session;

use super::endpoint::Endpoint;
use super::exec::TransportError;

/// How long a master of one run only (`--no-persist`) stays up once its last command has ended
/// (`ControlPersist`). Short: the run's host-lock command keeps the master busy while the run
/// lives (`host_lock.rs`), so this only counts once the run is gone, killed or not. Shared
/// masters use the run's `--persist` instead (`persist.rs`).
pub const CONTROL_PERSIST: Duration = Duration::from_secs(5);

/// `ConnectTimeout` of the master.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `ServerAliveInterval` of the master: with ssh's default `ServerAliveCountMax` of 3, a host
/// that stops answering is given up after about 15 s.
const SERVER_ALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// Opens a master of this run only, in a new directory under `control_dir`, closed with the run
/// (`--no-persist`).
pub async fn connect(endpoint: &Endpoint, control_dir: &Path) -> Result<Session, TransportError> {
    let unreachable = |message: String| TransportError::Unreachable {
        host: endpoint.name.clone(),
        message,
    };
    let config = control_dir.join(format!("{}.config", sanitize(&endpoint.name)));
    fs_err::write(&config, config_text(endpoint))
        .map_err(|e| unreachable(format!("cannot write the ssh configuration: {e}")))?;
    // Short: the control socket's path must fit a Unix socket address (~100 bytes).
    let dir = tempfile::Builder::new()
        .prefix("m-")
        .tempdir_in(control_dir)
        .map_err(|e| unreachable(format!("cannot create the control directory: {e}")))?;
    launch(endpoint, &config, dir.path(), CONTROL_PERSIST).await?;
    Ok(Session::new_native_mux(dir))
}

/// Uses the live master of `endpoint` in the shared control directory `shared`, or starts one
/// there that stays up `persist` after its last command (`persist.rs`). The session does not
/// own the master: dropping it leaves the master to its `ControlPersist`.
pub async fn connect_shared(
    endpoint: &Endpoint,
    shared: &Path,
    persist: Duration,
) -> Result<Session, TransportError> {
    let unreachable = |message: String| TransportError::Unreachable {
        host: endpoint.name.clone(),
        message,
    };
    let dir = shared.join(super::persist::endpoint_key(endpoint));
    super::persist::private_dir(&dir).map_err(|e| unreachable(e.0))?;
    let socket = dir.join("master");
    let resume = || Session::resume_mux(socket.clone().into(), Some(dir.join("log").into()));
    // One run at a time starts this endpoint's master: a second `ssh -M` on a socket that
    // exists would carry on as a plain connection of its own, with no `ControlPersist`.
    let lock = fs_err::File::create(dir.join("lock"))
        .map_err(|e| unreachable(format!("cannot open the control lock: {e}")))?;
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT * 3;
    while lock.file().try_lock().is_err() {
        if tokio::time::Instant::now() > deadline {
            return Err(unreachable(
                "another runbook process kept the connection's control lock too long".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if super::persist::trusted_socket(&socket).map_err(|e| unreachable(e.0))? {
        let session = resume();
        if session.check().await.is_ok() {
            return Ok(session);
        }
        // A master that is gone (or going): its socket is stale.
        let _ = fs_err::remove_file(&socket);
    }
    let config = dir.join("config");
    let tmp = dir.join("config.tmp");
    fs_err::write(&tmp, config_text(endpoint))
        .and_then(|()| fs_err::rename(&tmp, &config))
        .map_err(|e| unreachable(format!("cannot write the ssh configuration: {e}")))?;
    // A new master's log only: `-E` appends.
    let _ = fs_err::remove_file(dir.join("log"));
    launch(endpoint, &config, &dir, persist).await?;
    Ok(resume())
}

/// Starts a master for `endpoint` with its control socket, log and standard error in `dir`;
/// returns once it is connected and in the background.
async fn launch(
    endpoint: &Endpoint,
    config: &Path,
    dir: &Path,
    persist: Duration,
) -> Result<(), TransportError> {
    let unreachable = |message: String| TransportError::Unreachable {
        host: endpoint.name.clone(),
        message,
    };
    // What ssh says before its log (`-E`) is open (a bad command line, say) goes to standard
    // error: a file, not a pipe, which the backgrounded master would hold open.
    let stderr = fs_err::File::create(dir.join("stderr"))
        .map_err(|e| unreachable(format!("cannot create the ssh log: {e}")))?;
    let status = tokio::process::Command::new("ssh")
        .args(master_args(endpoint, config, dir, persist))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.into_parts().0)
        // Cancelled while connecting (a timeout): the half-started ssh goes with it. Once it has
        // forked into the background (`-f`), this process has exited and nothing is killed.
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| unreachable(format!("cannot run ssh: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let read = |name: &str| fs_err::read_to_string(dir.join(name)).unwrap_or_default();
    let log = format!("{}\n{}", read("stderr").trim(), read("log").trim());
    let log = log.trim();
    let message = if log.is_empty() {
        format!("failed to connect to the remote host: ssh exited with {status}")
    } else {
        format!("failed to connect to the remote host: {log}")
    };
    Err(classify(endpoint, config, message).await)
}

/// The per-host ssh config: the inventory's `ssh_options` first, then the user's and the
/// system's configuration. Keys and values were checked when the inventory was loaded (one
/// keyword, one line each), so none of them can add a line of its own.
fn config_text(endpoint: &Endpoint) -> String {
    let mut text = format!("# written by runbook for host {}\nHost *\n", endpoint.name);
    for (key, value) in &endpoint.ssh_options {
        debug_assert!(
            !key.contains(char::is_control) && !value.contains(char::is_control),
            "checked when the inventory was loaded"
        );
        let _ = writeln!(text, "  {key} {value}");
    }
    let _ = writeln!(
        text,
        "Include {}\nInclude /etc/ssh/ssh_config",
        user_config()
    );
    text
}

/// The user's ssh configuration, `$HOME/.ssh/config`: ssh itself would take the home directory
/// from the password database, but `HOME` is what the operator (and `identity_file`'s `~/`)
/// means. `~/.ssh/config` when `HOME` is unset or cannot be written in a quoted path.
fn user_config() -> String {
    match std::env::var("HOME") {
        Ok(home)
            if home.starts_with('/') && !home.contains(|c: char| c == '"' || c.is_control()) =>
        {
            format!("\"{}/.ssh/config\"", home.trim_end_matches('/'))
        }
        _ => "~/.ssh/config".to_owned(),
    }
}

/// The master's command line (after `ssh`): background (`-f`), no command (`-N`), master of
/// the control socket in `dir`, strict host keys, no prompts, and `--` before the destination.
pub fn master_args(
    endpoint: &Endpoint,
    config: &Path,
    dir: &Path,
    persist: Duration,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "-E".into(),
        dir.join("log").into(),
        "-S".into(),
        dir.join("master").into(),
        "-M".into(),
        "-f".into(),
        "-N".into(),
    ];
    for option in [
        format!("ControlPersist={}s", persist.as_secs().max(1)),
        "BatchMode=yes".to_owned(),
        "StrictHostKeyChecking=yes".to_owned(),
        format!("ConnectTimeout={}", CONNECT_TIMEOUT.as_secs()),
        format!("ServerAliveInterval={}", SERVER_ALIVE_INTERVAL.as_secs()),
    ] {
        args.extend(["-o".into(), option.into()]);
    }
    // Only what the inventory gives: otherwise `~/.ssh/config` (`Port`, `User`) decides.
    if let Some(port) = endpoint.port {
        args.extend(["-p".into(), port.to_string().into()]);
    }
    if let Some(user) = &endpoint.user {
        args.extend(["-l".into(), user.into()]);
    }
    if let Some(key) = &endpoint.identity_file {
        // Only this key, as `openssh` did.
        args.extend(["-o".into(), "IdentitiesOnly=yes".into()]);
        args.extend(["-i".into(), key.into()]);
    }
    args.extend(["-F".into(), config.into()]);
    args.extend(["--".into(), endpoint.address.clone().into()]);
    args
}

async fn classify(endpoint: &Endpoint, config: &Path, message: String) -> TransportError {
    let host_key = [
        "Host key verification failed",
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "host key is known",
        "HOST KEY",
    ]
    .iter()
    .any(|needle| message.contains(needle));
    if host_key {
        let fingerprint = fingerprint(endpoint, config).await;
        return TransportError::HostKey {
            host: endpoint.name.clone(),
            message: message.trim().to_owned(),
            fingerprint,
        };
    }
    TransportError::Unreachable {
        host: endpoint.name.clone(),
        message: message.trim().to_owned(),
    }
}

/// The fingerprints of the keys the host presents, as `ssh-keygen -l` prints them.
async fn fingerprint(endpoint: &Endpoint, config: &Path) -> Option<String> {
    let (hostname, port) = resolved(endpoint, config).await;
    let script = format!(
        "ssh-keyscan -T 5 -p {port} -- {} 2>/dev/null | ssh-keygen -lf - 2>/dev/null",
        runbook_modules::quote(&hostname)
    );
    let out = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The real host name and port ssh connects to for `endpoint`: an alias of `~/.ssh/config`
/// (`HostName`, `Port`) resolved by `ssh -G`, so the fingerprint is the key of the host ssh
/// refused, not of a name that does not resolve. Falls back to the address and 22.
async fn resolved(endpoint: &Endpoint, config: &Path) -> (String, u16) {
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.arg("-G").arg("-F").arg(config);
    if let Some(port) = endpoint.port {
        cmd.arg("-p").arg(port.to_string());
    }
    cmd.arg("--").arg(&endpoint.address).stdin(Stdio::null());
    let text = match cmd.output().await {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => String::new(),
    };
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ').map(str::to_owned))
    };
    (
        value("hostname").unwrap_or_else(|| endpoint.address.clone()),
        value("port")
            .and_then(|p| p.parse().ok())
            .or(endpoint.port)
            .unwrap_or(22),
    )
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::inventory::Connection;

    fn endpoint(address: &str) -> Endpoint {
        Endpoint {
            name: "a".into(),
            address: address.into(),
            port: Some(2222),
            user: Some("ops".into()),
            connection: Connection::Ssh,
            ssh_options: BTreeMap::from([("ServerAliveCountMax".into(), "3".into())]),
            identity_file: Some(PathBuf::from("/k/id")),
            max_sessions: 9,
        }
    }

    #[test]
    fn the_destination_comes_last_after_a_double_dash() {
        for address in ["127.0.0.2", "-oProxyCommand=touch /tmp/pwned", "-v"] {
            let args = master_args(
                &endpoint(address),
                Path::new("/c/a.config"),
                Path::new("/c/m-x"),
                CONTROL_PERSIST,
            );
            let n = args.len();
            assert_eq!(args[n - 2], "--", "{args:?}");
            assert_eq!(args[n - 1], address, "{args:?}");
            assert_eq!(
                args.iter().filter(|a| *a == "--").count(),
                1,
                "one `--`, right before the destination: {args:?}"
            );
            // Nothing else on the command line comes from the address.
            assert!(
                args[..n - 1]
                    .iter()
                    .all(|a| !a.to_string_lossy().contains(address)),
                "{args:?}"
            );
        }
    }

    #[test]
    fn the_master_is_strict_and_persists_as_configured() {
        let args: Vec<String> = master_args(
            &endpoint("h"),
            Path::new("/c/a.config"),
            Path::new("/c/m-x"),
            Duration::from_secs(42),
        )
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
        let pairs: Vec<(&str, &str)> = args
            .windows(2)
            .map(|w| (w[0].as_str(), w[1].as_str()))
            .collect();
        for expected in [
            ("-o", "ControlPersist=42s"),
            ("-o", "BatchMode=yes"),
            ("-o", "StrictHostKeyChecking=yes"),
            ("-S", "/c/m-x/master"),
            ("-E", "/c/m-x/log"),
            ("-p", "2222"),
            ("-l", "ops"),
            ("-i", "/k/id"),
            ("-F", "/c/a.config"),
        ] {
            assert!(pairs.contains(&expected), "{expected:?} in {args:?}");
        }
        for flag in ["-M", "-f", "-N"] {
            assert!(args.iter().any(|a| a == flag), "{flag} in {args:?}");
        }
    }

    #[test]
    fn the_config_has_one_line_per_option_then_the_includes() {
        let text = config_text(&endpoint("h"));
        assert_eq!(
            text,
            format!(
                "# written by runbook for host a\nHost *\n  ServerAliveCountMax 3\nInclude {}\nInclude /etc/ssh/ssh_config\n",
                user_config()
            )
        );
    }

    #[test]
    fn without_a_port_or_user_in_the_inventory_none_is_forced() {
        let mut e = endpoint("gtm-a");
        e.port = None;
        e.user = None;
        let args = master_args(
            &e,
            Path::new("/c/a.config"),
            Path::new("/d"),
            CONTROL_PERSIST,
        );
        assert!(
            !args.iter().any(|a| a == "-p" || a == "-l"),
            "ssh's configuration decides: {args:?}"
        );
    }
}
