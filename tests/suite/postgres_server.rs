//! A throwaway PostgreSQL cluster and a PgBouncer in transaction pooling mode in front of it,
//! for the tests of the shared journal (issue 14).
//!
//! Debian's own binaries (`/usr/lib/postgresql/*/bin`, `/usr/sbin/pgbouncer`; `.ci/install-packages`
//! installs them). Both refuse to run as root, so they run as the `postgres` system user the
//! package creates, on a temporary directory that user owns, on free loopback ports. [`Server`]
//! stops both when dropped, so a failing test leaves nothing behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The system user the servers run as.
const USER: &str = "postgres";

/// A running cluster (database `runbook`, user `runbook`, trust authentication on loopback)
/// and a PgBouncer in transaction mode before it.
pub struct Server {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The server's options (`pg_ctl -o`), to start it again on the same port.
    options: String,
    pub port: u16,
    pub bouncer_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free loopback port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The newest installed major version's binaries.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = fs_err::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (.ci/install-packages)")
        .map(|e| e.expect("entry").path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql")
}

/// Runs `program args` as the servers' user; panics with its output when it fails.
fn as_user(program: &Path, args: &[&str]) {
    let out = Command::new("runuser")
        .arg("-u")
        .arg(USER)
        .arg("--")
        .arg(program)
        .args(args)
        .output()
        .expect("runuser runs");
    assert!(
        out.status.success(),
        "{} {args:?}: {}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Server {
    /// A cluster for tests: `fsync=off` (nothing here survives a power cut anyway).
    pub fn start() -> Self {
        Self::start_with("-c fsync=off")
    }

    /// A cluster that syncs its commits as a production one does (the journal benchmark).
    #[allow(
        dead_code,
        reason = "used by engine/benches/journal.rs, not by the tests"
    )]
    pub fn start_durable() -> Self {
        Self::start_with("")
    }

    fn start_with(extra: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("runbook-pg-")
            .tempdir()
            .expect("tempdir");
        let uid_gid = || {
            let out = Command::new("id").args(["-u", USER]).output().expect("id");
            let uid: u32 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("the postgres user exists (the package creates it)");
            let out = Command::new("id").args(["-g", USER]).output().expect("id");
            let gid: u32 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("its group");
            (uid, gid)
        };
        let (uid, gid) = uid_gid();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        let bin = bin_dir();
        let data = dir.path().join("data");
        let path = |p: &Path| p.display().to_string();
        as_user(
            &bin.join("initdb"),
            &[
                "-D",
                &path(&data),
                "-U",
                "runbook",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 {extra}",
            path(dir.path())
        );
        let server = Self {
            bin: bin.clone(),
            options,
            port,
            bouncer_port: 0,
            dir,
        };
        server.start_postgres();
        as_user(
            &bin.join("createdb"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "runbook",
                "runbook",
            ],
        );
        let mut server = server;
        server.bouncer_port = server.start_bouncer();
        server
    }

    fn start_bouncer(&self) -> u16 {
        let dir = self.dir.path();
        let port = free_port();
        fs_err::write(dir.join("users.txt"), "\"runbook\" \"\"\n").expect("write");
        let conf = format!(
            "[databases]\nrunbook = host=127.0.0.1 port={pg} dbname=runbook\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {dir}/users.txt\npool_mode = transaction\n\
             default_pool_size = 2\nmax_prepared_statements = 0\n\
             server_login_retry = 1\n\
             ignore_startup_parameters = extra_float_digits\n\
             pidfile = {dir}/pgbouncer.pid\nlogfile = {dir}/pgbouncer.log\n",
            pg = self.port,
            dir = dir.display(),
        )
        // 1.18 does not know `max_prepared_statements` (1.21 does): it has no protocol-level
        // prepared statements at all, which is what the journal must live with.
        .replace("max_prepared_statements = 0\n", "");
        let ini = dir.join("pgbouncer.ini");
        fs_err::write(&ini, conf).expect("write");
        as_user(
            Path::new("/usr/sbin/pgbouncer"),
            &["-d", &ini.display().to_string()],
        );
        // Ready once it accepts connections (it daemonizes after binding).
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return port;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!(
            "pgbouncer did not listen on {port}: {}",
            self.log("pgbouncer.log")
        );
    }

    /// Stops PostgreSQL at once (PgBouncer stays up), as a crash or a restart of the server
    /// would.
    pub fn stop_postgres(&self) {
        as_user(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.dir.path().join("data").display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts PostgreSQL (again, after [`Server::stop_postgres`]) on the same port, waiting
    /// until it accepts connections.
    pub fn start_postgres(&self) {
        let dir = self.dir.path();
        as_user(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &dir.join("data").display().to_string(),
                "-o",
                &self.options,
                "-l",
                &dir.join("postgres.log").display().to_string(),
                "-w",
                "start",
            ],
        );
    }

    /// Restarts PostgreSQL as `pg_ctl restart` does (every connection is closed by the server),
    /// waiting until it accepts connections again.
    pub fn restart_postgres(&self) {
        as_user(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.dir.path().join("data").display().to_string(),
                "-o",
                &self.options,
                "-l",
                &self.dir.path().join("postgres.log").display().to_string(),
                "-m",
                "fast",
                "-w",
                "restart",
            ],
        );
    }

    /// Runs `sql` with `psql` as the cluster's superuser (`runbook`).
    pub fn psql(&self, sql: &str) {
        as_user(
            &self.bin.join("psql"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "runbook",
                "-d",
                "runbook",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
    }

    /// What `sql` selects (one value), with `psql` as the cluster's superuser.
    #[allow(
        dead_code,
        reason = "used by engine/benches/common/apply_journal.rs, not by the tests"
    )]
    pub fn scalar(&self, sql: &str) -> String {
        let out = Command::new("runuser")
            .args(["-u", USER, "--"])
            .arg(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "runbook", "-d", "runbook", "-Atc", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The URL of the database for another role.
    pub fn url_as(&self, role: &str) -> String {
        format!(
            "postgres://{role}@127.0.0.1:{}/runbook?sslmode=disable",
            self.port
        )
    }

    fn log(&self, name: &str) -> String {
        fs_err::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The URL of the database itself.
    pub fn url(&self) -> String {
        format!(
            "postgres://runbook@127.0.0.1:{}/runbook?sslmode=disable",
            self.port
        )
    }

    /// The URL through PgBouncer (transaction pooling).
    pub fn bouncer_url(&self) -> String {
        format!(
            "postgres://runbook@127.0.0.1:{}/runbook?sslmode=disable",
            self.bouncer_port
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = fs_err::read_to_string(self.dir.path().join("pgbouncer.pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args(["-u", USER, "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
