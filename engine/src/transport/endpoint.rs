//! How to reach one host, taken from the inventory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::inventory::{Connection, Host};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub address: String,
    /// `None`: the inventory gives no port, and ssh's configuration decides.
    pub port: Option<u16>,
    pub user: Option<String>,
    pub connection: Connection,
    pub ssh_options: BTreeMap<String, String>,
    pub identity_file: Option<PathBuf>,
    /// Commands at once on this host; kept below the server's `MaxSessions` (default 10).
    pub max_sessions: usize,
}

impl Endpoint {
    pub fn from_host(host: &Host) -> Self {
        let max_sessions = host
            .vars
            .get("runbook_max_sessions")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(9)
            .max(1);
        Self {
            name: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            user: host.user.clone(),
            connection: host.connection,
            ssh_options: host.ssh_options.clone(),
            identity_file: host.identity_file.as_ref().map(|p| expand_home(p)),
            max_sessions,
        }
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}
