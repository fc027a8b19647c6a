//! The files a lab writes: keys, `sshd_config`, the client's `ssh_config` and `known_hosts`,
//! and the inventory.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::LabError;
use super::state::LabHost;

/// Generates an ed25519 key pair at `path` and `path.pub`, unless both already exist (a lab
/// brought up again in the same directory keeps its keys).
pub fn ensure_key(path: &Path, comment: &str) -> Result<(), LabError> {
    let public = public_path(path);
    if path.is_file() && public.is_file() {
        // ssh and sshd ignore a private key others can read (a lab copied without `cp -p`).
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        return Ok(());
    }
    for p in [path, public.as_path()] {
        match fs_err::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    let out = Command::new("ssh-keygen")
        .args(["-t", "ed25519", "-N", "", "-q", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::ToolMissing {
            program: "ssh-keygen".to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(LabError::ToolFailed {
            command: format!("ssh-keygen -t ed25519 -f {}", path.display()),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

pub fn public_path(private: &Path) -> PathBuf {
    let mut p = private.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `ssh-ed25519 AAAA...` from a `.pub` file, without its comment.
pub fn read_public_key(private: &Path) -> Result<String, LabError> {
    let path = public_path(private);
    let text = fs_err::read_to_string(&path)?;
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind), Some(key)) => Ok(format!("{kind} {key}")),
        _ => Err(LabError::ToolFailed {
            command: format!("reading {}", path.display()),
            detail: "not an OpenSSH public key; delete it and run `lab up` again".to_owned(),
        }),
    }
}

/// The host's `sshd_config`. Every path is absolute; nothing from /etc/ssh is read.
pub fn sshd_config(host: &LabHost) -> String {
    let d = &host.dir;
    format!(
        "\
# Written by `runbook lab up` for lab host `{name}`; rewritten on every `lab up`.
ListenAddress {address}
Port {port}
HostKey {host_key}
AuthorizedKeysFile {authorized_keys}
PidFile {pid_file}
# The lab lives under directories sshd's ownership checks would reject (such as /tmp).
StrictModes no
# Without PAM, sshd runs as any user, not only as root.
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
MaxSessions 10
MaxStartups 100:30:200
LogLevel VERBOSE
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
Subsystem sftp internal-sftp
SetEnv RUNBOOK_HOST_ROOT={root} RUNBOOK_HOST={name}
",
        name = host.name,
        address = host.address,
        port = host.port,
        host_key = d.join("ssh_host_ed25519_key").display(),
        authorized_keys = d.join("authorized_keys").display(),
        pid_file = host.pid_file().display(),
        root = host.root().display(),
    )
}

/// One `Host` block per lab host, for `ssh -F client/ssh_config NAME`.
pub fn ssh_config(client: &Path, user: &str, hosts: &[LabHost]) -> String {
    let mut out = String::from(
        "# Written by `runbook lab up`: `ssh -F THIS_FILE HOST` reaches a lab host.\n",
    );
    for h in hosts {
        let _ = write!(
            out,
            "\nHost {name}\n  HostName {address}\n  Port {port}\n  User {user}\n  IdentityFile {identity}\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 5\n",
            name = h.name,
            address = h.address,
            port = h.port,
            identity = client.join("id_ed25519").display(),
            known_hosts = client.join("known_hosts").display(),
        );
    }
    out
}

/// `[ADDRESS]:PORT KEY` for each host.
pub fn known_hosts(hosts: &[(LabHost, String)]) -> String {
    let mut out = String::new();
    for (h, key) in hosts {
        let _ = writeln!(out, "[{}]:{} {key}", h.address, h.port);
    }
    out
}

/// A native inventory (docs/inventory.md) with every host and a group `lab`.
pub fn inventory(client: &Path, user: &str, hosts: &[LabHost]) -> String {
    // JSON strings are valid YAML double-quoted scalars.
    let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let path = |p: PathBuf| q(&p.display().to_string());
    let mut out = String::from(
        "# Written by `runbook lab up`; rewritten on every `lab up` (ports change).\nkind: Inventory\nhosts:\n",
    );
    for h in hosts {
        let _ = write!(
            out,
            "  {name}:\n    address: {address}\n    port: {port}\n    user: {user}\n    ssh_options:\n      UserKnownHostsFile: {known_hosts}\n      IdentityFile: {identity}\n      IdentitiesOnly: \"yes\"\n      StrictHostKeyChecking: \"yes\"\n    vars:\n      host_root: {root}\n",
            name = q(&h.name),
            address = h.address,
            port = h.port,
            user = q(user),
            known_hosts = path(client.join("known_hosts")),
            identity = path(client.join("id_ed25519")),
            root = path(h.root()),
        );
        for (name, value) in &h.vars {
            let _ = writeln!(out, "      {}: {}", q(name), q(value));
        }
        if !h.roles.is_empty() {
            let roles: Vec<String> = h.roles.iter().map(|r| q(r)).collect();
            let _ = writeln!(out, "    roles: [{}]", roles.join(", "));
        }
    }
    let names: Vec<String> = hosts.iter().map(|h| q(&h.name)).collect();
    let _ = writeln!(out, "groups:\n  lab:\n    hosts: [{}]", names.join(", "));
    out
}
