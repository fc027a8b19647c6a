//! What a lab is asked to be: its directory, host names and addresses.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::LabError;

/// The most hosts one lab may have: each is an sshd process.
pub const MAX_HOSTS: usize = 250;

/// How to build a lab; see [`super::Lab::up`].
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// The lab directory (created if missing). Relative paths are relative to the current
    /// directory; everything written inside uses absolute paths.
    pub dir: PathBuf,
    /// Host names, such as `a`, `b`, `c`: letters, digits, `_`, `.`, `-`, starting with a
    /// letter, digit or `_`.
    pub hosts: Vec<String>,
    /// The first host's address; the others get the following addresses. Must be in
    /// 127.0.0.0/8. By default a random-looking base address (never 127.0.0.1) so that labs
    /// started in parallel do not share addresses.
    pub first_address: Option<Ipv4Addr>,
    /// Roles to give hosts in the inventory: `(host, role)`.
    pub roles: Vec<(String, String)>,
    /// Inventory variables for every host, `(name, template)`: the template's placeholders
    /// `{name}`, `{NAME}` (upper-cased), `{index}` (1-based), `{address}`, `{root}` (the host's
    /// tree) and `{free_port}` (a TCP port free on every address and below the ephemeral range, a
    /// new one at each use: see [`super::process::service_port`]) are
    /// filled in per host, so a runbook that needs `gtm_dir` or `repl_port` can be rehearsed.
    pub vars: Vec<(String, String)>,
}

impl LabConfig {
    /// Gives `host` the inventory role `role`.
    #[must_use]
    pub fn role(mut self, host: &str, role: &str) -> Self {
        self.roles.push((host.to_owned(), role.to_owned()));
        self
    }

    /// Sets inventory variable `name` on every host from `template` (see [`LabConfig::vars`]).
    #[must_use]
    pub fn var(mut self, name: &str, template: &str) -> Self {
        self.vars.push((name.to_owned(), template.to_owned()));
        self
    }

    /// A lab in `dir` with hosts named `a`, `b`, `c`, ... ([`default_names`]).
    pub fn new(dir: impl Into<PathBuf>, count: usize) -> Self {
        Self {
            dir: dir.into(),
            hosts: default_names(count),
            first_address: None,
            roles: Vec::new(),
            vars: Vec::new(),
        }
    }

    /// A lab in `dir` with the given host names.
    pub fn with_hosts<S: Into<String>>(
        dir: impl Into<PathBuf>,
        hosts: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            dir: dir.into(),
            hosts: hosts.into_iter().map(Into::into).collect(),
            first_address: None,
            roles: Vec::new(),
            vars: Vec::new(),
        }
    }
}

/// `a`, `b`, ..., `z`, `aa`, `ab`, ...: the default host names.
pub fn default_names(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let mut name = Vec::new();
            let mut n = i + 1;
            while n > 0 {
                n -= 1;
                name.push(b'a' + u8::try_from(n % 26).expect("n % 26 < 26"));
                n /= 26;
            }
            name.reverse();
            String::from_utf8(name).expect("ASCII letters")
        })
        .collect()
}

fn invalid(problem: impl Into<String>, help: impl Into<String>) -> LabError {
    LabError::InvalidConfig {
        problem: problem.into(),
        help: help.into(),
    }
}

/// Checks host names: present, unique, and safe as an ssh host alias, a directory name and an
/// inventory host name.
pub(super) fn check_names(hosts: &[String]) -> Result<(), LabError> {
    if hosts.is_empty() {
        return Err(invalid(
            "a lab needs at least one host",
            "give host names (`--hosts a,b,c`) or a count (`-n 3`)",
        ));
    }
    if hosts.len() > MAX_HOSTS {
        return Err(invalid(
            format!("{} hosts asked for", hosts.len()),
            format!("a lab has at most {MAX_HOSTS} hosts"),
        ));
    }
    let mut seen = BTreeSet::new();
    for name in hosts {
        let valid = name.len() <= 64
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(invalid(
                format!("invalid host name `{name}`"),
                "use letters, digits, `_`, `.` and `-` (at most 64), starting with a letter, digit or `_`",
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(invalid(
                format!("host `{name}` is named twice"),
                "give each host a different name",
            ));
        }
    }
    Ok(())
}

/// The addresses of `count` hosts starting at `first`, or at a random-looking base.
pub(super) fn addresses(first: Option<Ipv4Addr>, count: usize) -> Result<Vec<Ipv4Addr>, LabError> {
    let count = u32::try_from(count).expect("at most MAX_HOSTS hosts");
    let base = match first {
        Some(first) => u32::from(first),
        None => random_base(),
    };
    let last = base.checked_add(count.saturating_sub(1));
    let in_range = |a: u32| {
        let a = Ipv4Addr::from(a);
        a.is_loopback()
            && a != Ipv4Addr::new(127, 0, 0, 0)
            && a != Ipv4Addr::new(127, 255, 255, 255)
    };
    match last {
        Some(last) if in_range(base) && in_range(last) => {
            Ok((base..=last).map(Ipv4Addr::from).collect())
        }
        _ => Err(invalid(
            format!(
                "the first address {} with {count} hosts does not stay inside 127.0.0.0/8",
                Ipv4Addr::from(base)
            ),
            "use a loopback address such as 127.0.0.2 (lab hosts listen on loopback only)",
        )),
    }
}

/// 127.X.Y.2 with X in 1..=250 and Y in 0..=255, from the process id, the time and a counter,
/// so parallel labs (threads of one test binary, several test binaries) rarely share
/// addresses. Sharing would still work, since every host has its own port.
fn random_base() -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u32(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    let r = h.finish();
    let x = 1 + (r % 250);
    let y = (r >> 16) % 256;
    let base = (127 << 24) | (x << 16) | (y << 8) | 2;
    u32::try_from(base).expect("an IPv4 address fits in 32 bits")
}

/// Fills in a variable template for one host (see [`LabConfig::vars`]).
pub fn fill(
    template: &str,
    name: &str,
    index: usize,
    address: Ipv4Addr,
    root: &std::path::Path,
) -> Result<String, LabError> {
    let mut out = template
        .replace("{name}", name)
        .replace("{NAME}", &name.to_uppercase())
        .replace("{index}", &index.to_string())
        .replace("{address}", &address.to_string())
        .replace("{root}", &root.display().to_string());
    while let Some(at) = out.find("{free_port}") {
        let port = super::process::service_port(Ipv4Addr::UNSPECIFIED)?;
        out.replace_range(at..at + "{free_port}".len(), &port.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_count_like_spreadsheet_columns() {
        assert_eq!(default_names(3), ["a", "b", "c"]);
        let many = default_names(28);
        assert_eq!(many[25], "z");
        assert_eq!(many[26], "aa");
        assert_eq!(many[27], "ab");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_names(&["a".into(), "b-1".into(), "_x.y".into()]).is_ok());
        for bad in ["", "-a", ".", "..", "a b", "a/b", "a*"] {
            assert!(check_names(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
        assert!(check_names(&["a".into(), "a".into()]).is_err());
        assert!(check_names(&[]).is_err());
    }

    #[test]
    fn addresses_are_consecutive_loopback() {
        let a = addresses(Some(Ipv4Addr::new(127, 0, 0, 254)), 3).expect("fits");
        assert_eq!(
            a,
            [
                Ipv4Addr::new(127, 0, 0, 254),
                Ipv4Addr::new(127, 0, 0, 255),
                Ipv4Addr::new(127, 0, 1, 0)
            ]
        );
        assert!(addresses(Some(Ipv4Addr::new(10, 0, 0, 1)), 1).is_err());
        assert!(addresses(Some(Ipv4Addr::new(127, 255, 255, 250)), 10).is_err());
        for _ in 0..100 {
            let a = addresses(None, 250).expect("random base fits");
            assert!(
                a.iter()
                    .all(|a| a.is_loopback() && *a != Ipv4Addr::LOCALHOST)
            );
        }
    }

    #[test]
    fn free_ports_are_new_each_time_free_and_below_the_ephemeral_range() {
        let filled = fill(
            "{free_port} {free_port}",
            "a",
            1,
            Ipv4Addr::LOCALHOST,
            std::path::Path::new("/"),
        )
        .expect("two ports");
        let ports: Vec<u16> = filled
            .split(' ')
            .map(|p| p.parse().expect("a port"))
            .collect();
        assert_ne!(ports[0], ports[1]);
        let low: u16 = fs_err::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(32768);
        for port in ports {
            assert!(
                port < low,
                "{port} is not an ephemeral port (they start at {low})"
            );
            std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).expect("free");
        }
    }
}
