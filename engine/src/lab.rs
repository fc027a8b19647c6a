//! A lab: N sandboxed `sshd` hosts on loopback addresses, each with its own directory tree,
//! host key and authorized key, for the test suites, the demo, and operators rehearsing a
//! runbook before production. See docs/lab.md.
//!
//! ```text
//! DIR/
//!   lab.json                 state: hosts, addresses, ports, sshd pids (written atomically)
//!   inventory.yaml           native inventory of every host, group `lab`
//!   client/                  id_ed25519{,.pub}, known_hosts, ssh_config
//!   hosts/NAME/              sshd_config, ssh_host_ed25519_key{,.pub}, authorized_keys,
//!                            sshd.pid, sshd.log, root/ (the host's own tree)
//! ```
//!
//! A [`Lab`] returned by [`Lab::up`] stops its sshd processes when dropped, so a failing test
//! leaves nothing running; [`Lab::detach`] keeps them (the CLI's `lab up`). Only processes the
//! lab started are ever signalled (see `process`).

mod config;
mod error;
mod files;
mod platform;
mod process;
mod state;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use config::{LabConfig, MAX_HOSTS, default_names};
pub use error::{LabError, StartFailure};
pub use platform::PLATFORMS;
pub use state::LabHost;

use state::State;

/// The sshd binary a lab runs (an absolute path: sshd re-executes itself for each connection).
pub const SSHD: &str = "/usr/sbin/sshd";
/// The state file in a lab directory.
pub const STATE_FILE: &str = "lab.json";
/// The inventory file in a lab directory.
pub const INVENTORY_FILE: &str = "inventory.yaml";
/// The default lab directory of the CLI, relative to the current directory.
pub const DEFAULT_DIR: &str = ".runbook/lab";

/// How many times `up` picks a new port when another process took the chosen one first.
const PORT_ATTEMPTS: usize = 5;

/// One host as [`Lab::status`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostStatus {
    pub name: String,
    pub address: Ipv4Addr,
    pub port: u16,
    /// The pid of the host's live sshd, if it runs.
    pub pid: Option<u32>,
    /// Its sshd runs and answers on its port.
    pub up: bool,
}

/// What [`Lab::down`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DownReport {
    /// There was a lab (state file or host directories) in the directory.
    pub found: bool,
    /// `(host, pid)` of each sshd that was running and was stopped.
    pub stopped: Vec<(String, u32)>,
}

/// A running (or partly running) lab; see the module documentation.
#[derive(Debug)]
pub struct Lab {
    state: State,
    stop_on_drop: bool,
}

impl Lab {
    /// Creates the lab's files and starts one sshd per host. On failure, the hosts already
    /// started are stopped again.
    pub fn up(config: LabConfig) -> Result<Lab, LabError> {
        let LabConfig {
            dir,
            hosts: names,
            first_address,
            roles,
            vars,
        } = config;
        config::check_names(&names)?;
        if let Some((host, _)) = roles.iter().find(|(h, _)| !names.contains(h)) {
            return Err(LabError::InvalidConfig {
                problem: format!("a role is given to `{host}`, which is not a host of the lab"),
                help: "give roles as HOST=ROLE with a host of the lab".into(),
            });
        }
        let addresses = config::addresses(first_address, names.len())?;
        let sshd = Path::new(SSHD);
        if !sshd.is_file() {
            return Err(LabError::SshdNotFound {
                path: sshd.to_path_buf(),
            });
        }
        check_dir(&std::path::absolute(&dir)?)?;
        fs_err::create_dir_all(&dir)?;
        // Symbolic links resolved: sshd and ssh get plain absolute paths.
        let dir = fs_err::canonicalize(&dir)?;
        check_dir(&dir)?;
        let running = running_hosts(&dir)?;
        if !running.is_empty() {
            return Err(LabError::AlreadyRunning {
                dir,
                hosts: running.join(", "),
            });
        }
        if is_root() {
            ensure_privsep_dir()?;
        }
        let user = current_user()?;

        let client = dir.join("client");
        fs_err::create_dir_all(&client)?;
        let identity = client.join("id_ed25519");
        files::ensure_key(&identity, &format!("runbook-lab-client@{}", dir.display()))?;
        let client_key = files::read_public_key(&identity)?;

        let mut hosts = Vec::with_capacity(names.len());
        for (i, (name, address)) in names.into_iter().zip(addresses).enumerate() {
            let host_dir = dir.join("hosts").join(&name);
            let mut host_vars = std::collections::BTreeMap::new();
            for (var, template) in &vars {
                let value = config::fill(template, &name, i + 1, address, &host_dir.join("root"))?;
                host_vars.insert(var.clone(), value);
            }
            let host_roles = roles
                .iter()
                .filter(|(h, _)| *h == name)
                .map(|(_, r)| r.clone())
                .collect();
            fs_err::create_dir_all(host_dir.join("root"))?;
            files::ensure_key(
                &host_dir.join("ssh_host_ed25519_key"),
                &format!("runbook-lab-host-{name}"),
            )?;
            fs_err::write(
                host_dir.join("authorized_keys"),
                format!("{client_key} runbook-lab-client\n"),
            )?;
            hosts.push(LabHost {
                name,
                address,
                port: 0,
                pid: None,
                dir: host_dir,
                roles: host_roles,
                vars: host_vars,
            });
        }

        // From here on, a failure drops `lab`, which stops what was started.
        let mut lab = Lab {
            state: State::new(dir, user, hosts),
            stop_on_drop: true,
        };
        for i in 0..lab.state.hosts.len() {
            lab.start_new(i)?;
            // Recorded after each host, so `lab down` finds every sshd even if this process
            // dies half-way.
            lab.state.write()?;
        }
        lab.write_client_files()?;
        Ok(lab)
    }

    /// The lab recorded in `dir`. It is not stopped on drop.
    pub fn load(dir: &Path) -> Result<Lab, LabError> {
        let state = State::read(dir)?.ok_or_else(|| LabError::NotFound {
            dir: dir.to_path_buf(),
        })?;
        Ok(Lab {
            state,
            stop_on_drop: false,
        })
    }

    /// Each host of the lab in `dir`: whether its sshd runs and answers.
    pub fn status(dir: &Path) -> Result<Vec<HostStatus>, LabError> {
        Ok(Lab::load(dir)?.host_status())
    }

    /// Stops every sshd the lab in `dir` started, and their sessions, then removes `lab.json`.
    /// The files stay (keys are reused by the next `up`). Also finds sshd processes of hosts
    /// missing from `lab.json` (a `lab up` that died half-way) by their `hosts/*/sshd.pid`.
    pub fn down(dir: &Path) -> Result<DownReport, LabError> {
        let (found, candidates) = recorded_sshds(dir)?;
        let mut report = DownReport {
            found,
            stopped: Vec::new(),
        };
        let mut first_error = None;
        for (host, pid) in candidates {
            match process::stop(&host, pid) {
                Ok(true) => report.stopped.push((host.name, pid)),
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        remove_if_exists(&dir.join(STATE_FILE))?;
        Ok(report)
    }

    /// [`Lab::down`], then removes the whole lab directory. Refuses a directory that does not
    /// look like a lab (no `lab.json`, `client/` or `hosts/`).
    pub fn purge(dir: &Path) -> Result<DownReport, LabError> {
        if !dir.exists() {
            return Ok(DownReport::default());
        }
        let looks_like_lab = [STATE_FILE, "client", "hosts"]
            .iter()
            .any(|p| dir.join(p).exists());
        if !looks_like_lab {
            return Err(LabError::InvalidConfig {
                problem: format!(
                    "{} does not look like a lab directory (no {STATE_FILE}, client/ or hosts/)",
                    dir.display()
                ),
                help: "not removing it; check the --dir argument".to_owned(),
            });
        }
        let report = Lab::down(dir)?;
        fs_err::remove_dir_all(dir)?;
        Ok(report)
    }

    /// Stops every host and removes `lab.json`, reporting errors (which dropping ignores).
    pub fn shutdown(mut self) -> Result<DownReport, LabError> {
        self.stop_on_drop = false;
        let mut report = DownReport {
            found: true,
            stopped: Vec::new(),
        };
        let mut first_error = None;
        for i in 0..self.state.hosts.len() {
            let name = self.state.hosts[i].name.clone();
            let pid = self.state.hosts[i].pid;
            match self.stop_index(i) {
                Ok(true) => report
                    .stopped
                    .push((name, pid.expect("a stopped host had a pid"))),
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        remove_if_exists(&self.state.dir.join(STATE_FILE))?;
        Ok(report)
    }

    /// Keeps the sshd processes running when this value is dropped (`runbook lab up`).
    pub fn detach(&mut self) {
        self.stop_on_drop = false;
    }

    /// Stops one host's sshd and every session on it, as if the host went down. Its files,
    /// address and port are kept for [`Lab::start_host`].
    pub fn stop_host(&mut self, name: &str) -> Result<(), LabError> {
        let i = self.index(name)?;
        self.stop_index(i)?;
        self.state.write()
    }

    /// Starts a stopped host again, on the same address and port (those are in the inventory).
    /// Does nothing if it is up.
    pub fn start_host(&mut self, name: &str) -> Result<(), LabError> {
        let i = self.index(name)?;
        if self.is_up(name) {
            return Ok(());
        }
        let host = &self.state.hosts[i];
        match process::start(Path::new(SSHD), host) {
            Ok(pid) => self.state.hosts[i].pid = Some(pid),
            Err(process::StartError::Failed(e)) => return Err(e),
            Err(process::StartError::PortTaken) => {
                return Err(LabError::StartFailed(Box::new(StartFailure {
                    host: host.name.clone(),
                    address: host.address,
                    port: host.port,
                    reason: "another process now listens on its port".to_owned(),
                    hint: "; stop that process, or bring the lab down and up again (new ports)"
                        .to_owned(),
                    log_path: host.log_file(),
                    log: String::new(),
                })));
            }
        }
        self.state.write()
    }

    /// Whether the host's sshd runs and answers on its port.
    pub fn is_up(&self, name: &str) -> bool {
        self.host(name).is_some_and(|h| {
            h.pid
                .is_some_and(|pid| process::is_our_sshd(pid, &h.sshd_config()))
                && process::answers(h.address, h.port)
        })
    }

    /// Each host: whether its sshd runs and answers.
    pub fn host_status(&self) -> Vec<HostStatus> {
        self.state
            .hosts
            .iter()
            .map(|h| {
                let pid = h
                    .pid
                    .filter(|&pid| process::is_our_sshd(pid, &h.sshd_config()));
                HostStatus {
                    name: h.name.clone(),
                    address: h.address,
                    port: h.port,
                    pid,
                    up: pid.is_some() && process::answers(h.address, h.port),
                }
            })
            .collect()
    }

    /// `ssh -F DIR/client/ssh_config HOST`, with stdin closed; add the remote command with
    /// `.arg(...)`. An unknown host name is left for ssh to reject.
    pub fn ssh_command(&self, host: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(self.ssh_config_path())
            .arg(host)
            .stdin(Stdio::null());
        cmd
    }

    /// Logs in to `host` and runs `true`, to check that the lab is usable (sshd may start and
    /// still refuse the login, for example for a locked account).
    pub fn check_login(&self, host: &str) -> Result<(), LabError> {
        let h = self.host(host).ok_or_else(|| self.unknown(host))?;
        let out = self
            .ssh_command(host)
            .arg("true")
            .output()
            .map_err(|source| LabError::ToolMissing {
                program: "ssh".to_owned(),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let log = fs_err::read_to_string(h.log_file()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        let hint = if log.contains("account is locked") {
            format!(
                "; sshd runs without PAM and refuses accounts whose password is locked (`!` in /etc/shadow): unlock `{}` without giving it a password, `usermod -p '*' {}`",
                self.state.user, self.state.user
            )
        } else {
            format!("; see {}", h.log_file().display())
        };
        Err(LabError::ToolFailed {
            command: format!("ssh -F {} {host} true", self.ssh_config_path().display()),
            detail: format!(
                "{}: {}{hint}\nsshd log (last lines):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ),
        })
    }

    /// The lab directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.state.dir
    }

    /// The hosts, in the order they were given.
    pub fn hosts(&self) -> &[LabHost] {
        &self.state.hosts
    }

    pub fn host(&self, name: &str) -> Option<&LabHost> {
        self.state.hosts.iter().find(|h| h.name == name)
    }

    /// The user every host logs in as.
    pub fn user(&self) -> &str {
        &self.state.user
    }

    /// `hosts/NAME/root`, the host's own tree (`$RUNBOOK_HOST_ROOT` in its sessions).
    pub fn host_root(&self, name: &str) -> Option<PathBuf> {
        self.host(name).map(LabHost::root)
    }

    pub fn inventory_path(&self) -> PathBuf {
        self.state.dir.join(INVENTORY_FILE)
    }

    pub fn ssh_config_path(&self) -> PathBuf {
        self.state.dir.join("client").join("ssh_config")
    }

    pub fn known_hosts_path(&self) -> PathBuf {
        self.state.dir.join("client").join("known_hosts")
    }

    pub fn identity_path(&self) -> PathBuf {
        self.state.dir.join("client").join("id_ed25519")
    }

    fn index(&self, name: &str) -> Result<usize, LabError> {
        self.state
            .hosts
            .iter()
            .position(|h| h.name == name)
            .ok_or_else(|| self.unknown(name))
    }

    fn unknown(&self, name: &str) -> LabError {
        LabError::UnknownHost {
            name: name.to_owned(),
            known: self
                .state
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Starts host `i` for the first time: a free port, its config, sshd; a new port when
    /// another process takes the chosen one first.
    fn start_new(&mut self, i: usize) -> Result<(), LabError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let host = &mut self.state.hosts[i];
            host.port = process::free_port(host.address)?;
            fs_err::write(host.sshd_config(), files::sshd_config(host))?;
            match process::start(Path::new(SSHD), host) {
                Ok(pid) => {
                    host.pid = Some(pid);
                    return Ok(());
                }
                Err(process::StartError::PortTaken) if attempt < PORT_ATTEMPTS => {}
                Err(process::StartError::PortTaken) => {
                    return Err(LabError::StartFailed(Box::new(StartFailure {
                        host: host.name.clone(),
                        address: host.address,
                        port: host.port,
                        reason: format!(
                            "every port tried ({PORT_ATTEMPTS}) was taken before sshd could bind it"
                        ),
                        hint: "; try again, or give another --first-address".to_owned(),
                        log_path: host.log_file(),
                        log: String::new(),
                    })));
                }
                Err(process::StartError::Failed(e)) => return Err(e),
            }
        }
    }

    /// Stops host `i` if it runs; `Ok(true)` if it did.
    fn stop_index(&mut self, i: usize) -> Result<bool, LabError> {
        let host = &self.state.hosts[i];
        let stopped = match host.pid {
            Some(pid) => process::stop(host, pid)?,
            None => false,
        };
        self.state.hosts[i].pid = None;
        Ok(stopped)
    }

    fn write_client_files(&self) -> Result<(), LabError> {
        let client = self.state.dir.join("client");
        let mut keyed = Vec::with_capacity(self.state.hosts.len());
        for h in &self.state.hosts {
            let key = files::read_public_key(&h.dir.join("ssh_host_ed25519_key"))?;
            keyed.push((h.clone(), key));
        }
        fs_err::write(client.join("known_hosts"), files::known_hosts(&keyed))?;
        fs_err::write(
            client.join("ssh_config"),
            files::ssh_config(&client, &self.state.user, &self.state.hosts),
        )?;
        fs_err::write(
            self.inventory_path(),
            files::inventory(&client, &self.state.user, &self.state.hosts),
        )?;
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.stop_on_drop {
            return;
        }
        for i in 0..self.state.hosts.len() {
            let _ = self.stop_index(i);
        }
        let _ = std::fs::remove_file(self.state.dir.join(STATE_FILE));
    }
}

/// Whether `dir` holds a lab (state file or host directories), and every `(host, pid)` it
/// records: the pids in `lab.json`, and those in `hosts/*/sshd.pid` that `lab.json` lacks (a
/// `lab up` that died half-way, a removed `lab.json`). Not yet checked to be our sshd.
fn recorded_sshds(dir: &Path) -> Result<(bool, Vec<(LabHost, u32)>), LabError> {
    let state = State::read(dir)?;
    let hosts_dir = dir.join("hosts");
    let found = state.is_some() || hosts_dir.is_dir();
    let mut out: Vec<(LabHost, u32)> = state
        .iter()
        .flat_map(|s| s.hosts.iter())
        .filter_map(|h| h.pid.map(|pid| (h.clone(), pid)))
        .collect();
    if let Ok(entries) = fs_err::read_dir(&hosts_dir) {
        for entry in entries.flatten() {
            let host_dir = entry.path();
            let pid = fs_err::read_to_string(host_dir.join("sshd.pid"))
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
            if let Some(pid) = pid.filter(|pid| out.iter().all(|(_, p)| p != pid)) {
                let host = LabHost {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    address: Ipv4Addr::LOCALHOST,
                    port: 0,
                    pid: Some(pid),
                    dir: host_dir,
                    roles: Vec::new(),
                    vars: std::collections::BTreeMap::new(),
                };
                out.push((host, pid));
            }
        }
    }
    Ok((found, out))
}

/// Hosts of a lab in `dir` whose sshd still runs.
fn running_hosts(dir: &Path) -> Result<Vec<String>, LabError> {
    let (_, recorded) = recorded_sshds(dir)?;
    Ok(recorded
        .into_iter()
        .filter(|(h, pid)| process::is_our_sshd(*pid, &h.sshd_config()))
        .map(|(h, _)| h.name)
        .collect())
}

/// sshd_config and ssh_config take paths unquoted, and expand `%` and `$` in some of them.
fn check_dir(dir: &Path) -> Result<(), LabError> {
    let bad = dir.to_str().is_none_or(|s| {
        s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'\\%$#".contains(c))
    });
    if bad {
        return Err(LabError::InvalidConfig {
            problem: format!("the lab directory {} cannot be used", dir.display()),
            help: "choose a path without spaces, quotes, `\\`, `%`, `$` or `#` (sshd_config and ssh_config do not quote paths)".to_owned(),
        });
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<(), LabError> {
    match fs_err::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Whether this process runs as root (effective uid 0), from `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// sshd started as root refuses to run without its privilege separation directory, which
/// containers often lack (it is normally created by the service manager).
fn ensure_privsep_dir() -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = Path::new("/run/sshd");
    if !dir.is_dir() {
        fs_err::create_dir_all(dir)?;
        fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// The current user's name (`id -un`; `$USER` if `id` is missing).
fn current_user() -> Result<String, LabError> {
    if let Ok(out) = Command::new("id").arg("-un").stdin(Stdio::null()).output() {
        let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !name.is_empty() {
            return Ok(name);
        }
    }
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| LabError::ToolFailed {
            command: "id -un".to_owned(),
            detail: "cannot tell the current user's name; set USER".to_owned(),
        })
}
