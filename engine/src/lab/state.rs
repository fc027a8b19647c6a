//! `lab.json`: which hosts a lab has and which sshd processes it started.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::LabError;

/// The version of the `lab.json` layout.
const VERSION: u32 = 1;

/// One lab host, as recorded in `lab.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabHost {
    pub name: String,
    pub address: Ipv4Addr,
    pub port: u16,
    /// The sshd listener's pid while the host is up; `None` once stopped.
    pub pid: Option<u32>,
    /// `hosts/NAME`, absolute.
    pub dir: PathBuf,
    /// Inventory roles of the host.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Extra inventory variables of the host (templates filled in).
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
}

impl LabHost {
    pub fn sshd_config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("sshd.pid")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    /// The host's own directory tree (`hosts/NAME/root`), exported to its sessions as
    /// `RUNBOOK_HOST_ROOT`.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct State {
    pub version: u32,
    /// The lab directory, absolute.
    pub dir: PathBuf,
    /// The user every host logs in as (the user who ran `lab up`).
    pub user: String,
    pub hosts: Vec<LabHost>,
}

impl State {
    pub fn new(dir: PathBuf, user: String, hosts: Vec<LabHost>) -> Self {
        Self {
            version: VERSION,
            dir,
            user,
            hosts,
        }
    }

    /// Reads `lab.json`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>, LabError> {
        let path = dir.join(super::STATE_FILE);
        let text = match fs_err::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| LabError::BadState { path, source })
    }

    /// Writes `lab.json` atomically: a temporary file in the same directory, then a rename, so
    /// a reader never sees half a file.
    pub fn write(&self) -> Result<(), LabError> {
        let path = self.dir.join(super::STATE_FILE);
        let tmp = self
            .dir
            .join(format!(".{}.{}.tmp", super::STATE_FILE, std::process::id()));
        let mut text = serde_json::to_string_pretty(self).expect("the lab state is plain data");
        text.push('\n');
        fs_err::write(&tmp, text)?;
        fs_err::rename(&tmp, &path)?;
        Ok(())
    }
}
