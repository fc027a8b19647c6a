//! Who runs a command, and from where: recorded with a run at its start, named in its locks
//! (so a refused colleague knows whom to call) and in its report.

/// `--operator NAME`, else `RUNBOOK_OPERATOR`, else `USER@HOSTNAME` (the login from `USER`, else
/// `LOGNAME`); `unknown` only when none of them says.
pub fn operator(given: Option<&str>) -> String {
    if let Some(name) = given.map(str::trim).filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    if let Some(name) = env("RUNBOOK_OPERATOR") {
        return name;
    }
    let user = env("USER")
        .or_else(|| env("LOGNAME"))
        .unwrap_or_else(|| "unknown".to_owned());
    match controller() {
        Some(host) => format!("{user}@{host}"),
        None => user,
    }
}

/// This machine's host name (Linux: the kernel's; else `/etc/hostname`).
pub fn controller() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}
