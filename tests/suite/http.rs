//! `http.*` against a real Apache httpd (Debian `apache2`) started by the test on a lab host.
//!
//! Each test starts its own httpd instance: its own ServerRoot under the host's tree, its own
//! configuration, `Listen` on the host's loopback address and a free port, PidFile and ErrorLog,
//! `mpm_event` and the few modules it needs from /usr/lib/apache2/modules. A Drop guard stops it
//! even when the test fails. Probes go through `curl --interface`, so the same machine can be an
//! allowed client (the host's own address) and a refused one (127.0.0.1).

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::apply::Rig;

const MODULES: &str = "/usr/lib/apache2/modules";
const HTTPD: &str = "/usr/sbin/apache2";
pub const CTL: &str = "/usr/sbin/apachectl";
pub const PAGE: &str = "<h1>Connections is down for scheduled maintenance</h1>\n";

/// One httpd instance under `ROOT/httpd` (documents in `ROOT/httpd/htdocs`: `index.html` and
/// the maintenance page [`PAGE`] as `upgrading.htm`), stopped on drop.
pub struct Httpd {
    pub root: PathBuf,
    pub conf: PathBuf,
    pub address: Ipv4Addr,
    pub port: u16,
}

impl Httpd {
    pub fn start(rig: &Rig, host: &str) -> Self {
        let address = rig.lab.host(host).expect("a lab host").address;
        assert_ne!(
            address,
            Ipv4Addr::LOCALHOST,
            "127.0.0.1 is the refused client"
        );
        let port = TcpListener::bind((address, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let root = rig.root(host).join("httpd");
        let docs = root.join("htdocs");
        fs_err::create_dir_all(root.join("logs")).expect("mkdir logs");
        fs_err::create_dir_all(root.join("conf")).expect("mkdir conf");
        fs_err::create_dir_all(&docs).expect("mkdir htdocs");
        fs_err::write(docs.join("index.html"), "welcome\n").expect("index");
        fs_err::write(docs.join("upgrading.htm"), PAGE).expect("page");
        // As root, httpd serves as `nobody`, who must reach the documents through the test's
        // private temporary directories.
        let root_user = uid() == "0";
        if root_user {
            let mut dir: &Path = &docs;
            while dir.starts_with(rig.dir.path()) {
                let mode = fs_err::metadata(dir).expect("stat").permissions();
                let mode = std::os::unix::fs::PermissionsExt::mode(&mode) | 0o055;
                fs_err::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .expect("chmod");
                dir = dir.parent().expect("a parent");
            }
        }
        let user = if root_user {
            "User #65534\nGroup #65534\n"
        } else {
            ""
        };
        let root_s = root.display();
        let conf = root.join("conf/httpd.conf");
        fs_err::write(
            &conf,
            format!(
                "ServerRoot {root_s}\n\
                 LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n\
                 LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
                 LoadModule alias_module {MODULES}/mod_alias.so\n\
                 LoadModule dir_module {MODULES}/mod_dir.so\n\
                 Listen {address}:{port}\n\
                 ServerName {address}\n\
                 PidFile {root_s}/logs/httpd.pid\n\
                 ErrorLog {root_s}/logs/error.log\n\
                 {user}\
                 DocumentRoot {root_s}/htdocs\n\
                 <Directory {root_s}/htdocs>\n    Require all granted\n</Directory>\n"
            ),
        )
        .expect("write httpd.conf");
        let httpd = Self {
            root,
            conf,
            address,
            port,
        };
        let out = Command::new(HTTPD)
            .arg("-d")
            .arg(&httpd.root)
            .arg("-f")
            .arg(&httpd.conf)
            .args(["-k", "start"])
            .output()
            .expect("apache2 runs");
        assert!(
            out.status.success(),
            "httpd did not start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            httpd.log()
        );
        httpd.wait_for(&address.to_string(), "/", 200);
        httpd
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.address, self.port)
    }

    pub fn log(&self) -> String {
        fs_err::read_to_string(self.root.join("logs/error.log")).unwrap_or_default()
    }

    /// Waits (a graceful restart takes a moment) until a GET from `source` answers `status`.
    pub fn wait_for(&self, source: &str, path: &str, status: u16) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (code, body) = get(source, &self.url(path));
            if code == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} from {source}: {code}, expected {status}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        let _ = Command::new(HTTPD)
            .arg("-d")
            .arg(&self.root)
            .arg("-f")
            .arg(&self.conf)
            .args(["-k", "stop"])
            .output();
        // If the configuration no longer parses, `-k stop` cannot read the PidFile: signal it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(pid) = fs_err::read_to_string(self.root.join("logs/httpd.pid")) {
            let pid = pid.trim().to_owned();
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                break;
            }
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn uid() -> String {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// GET `url` from the local address `source`: the status and the body.
pub fn get(source: &str, url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "--interface", source])
        .args(["-w", "\n%{http_code}", url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn header(name: &str) -> String {
    format!("apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, version: 1.0.0}}\n")
}

/// The server arguments every step shares.
fn server(httpd: &Httpd) -> String {
    format!(
        "config: {}, ctl: {CTL}, server_root: {}",
        httpd.conf.display(),
        httpd.root.display()
    )
}

fn probes(httpd: &Httpd, refused_status: u16) -> String {
    let addr = httpd.address;
    let url = httpd.url("/index.html");
    let contains = if refused_status == 503 {
        ", contains: scheduled maintenance"
    } else {
        ""
    };
    format!(
        "  - {{id: allowed, module: http.probe, on: a, retries: 20, delay: 250ms, register: allowed, \
         with: {{url: \"{url}\", source: \"{addr}\", status: 200}}}}\n\
         \x20 - {{id: refused, module: http.probe, on: a, retries: 20, delay: 250ms, register: refused, \
         with: {{url: \"{url}\", source: 127.0.0.1, status: {refused_status}{contains}}}}}\n"
    )
}

#[test]
fn maintenance_closes_and_reopens_a_real_apache() {
    let rig = Rig::new(1);
    let httpd = Httpd::start(&rig, "a");
    let original = fs_err::read_to_string(&httpd.conf).expect("conf");
    let addr = httpd.address.to_string();
    assert_eq!(get("127.0.0.1", &httpd.url("/index.html")).0, 200);

    let on = header("maint-on")
        + "steps:\n"
        + &format!(
            "  - {{id: close, module: http.maintenance_on, on: a, with: {{{}, allow: [\"{addr}\"]}}}}\n",
            server(&httpd)
        )
        + &probes(&httpd, 503);
    let file = rig.dir.path().join("on.yaml");
    fs_err::write(&file, &on).expect("write");

    // A dry-run says it would change, and changes nothing.
    let dry = rig.apply_file(&file, &rig.inventory(), &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.status("close@a"), "would_change");
    assert_eq!(fs_err::read_to_string(&httpd.conf).expect("conf"), original);

    let run = rig.apply(&on, &rig.inventory(), &[]);
    assert_eq!(
        run.code,
        0,
        "{}\n{:#?}\n{}",
        run.stderr,
        run.events,
        httpd.log()
    );
    assert_eq!(run.status("close@a"), "changed");
    assert_eq!(run.status("allowed@a"), "ok");
    assert_eq!(run.status("refused@a"), "ok");
    // Seen from here too: the allowed address gets the page, any other the 503 and the notice.
    assert_eq!(
        get(&addr, &httpd.url("/index.html")),
        (200, "welcome\n".into())
    );
    assert_eq!(
        get("127.0.0.1", &httpd.url("/index.html")),
        (503, PAGE.into())
    );
    let conf = fs_err::read_to_string(&httpd.conf).expect("conf");
    assert!(conf.starts_with(&original), "appended, the rest untouched");
    assert!(conf.contains("# BEGIN runbook maintenance\n") && conf.contains(&addr));

    // Twice: nothing to do.
    let again = rig.apply(&on, &rig.inventory(), &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.status("close@a"), "ok");
    assert_eq!(fs_err::read_to_string(&httpd.conf).expect("conf"), conf);

    let off = header("maint-off")
        + "steps:\n"
        + &format!(
            "  - {{id: open, module: http.maintenance_off, on: a, with: {{{}}}}}\n",
            server(&httpd)
        )
        + &probes(&httpd, 200);
    let run = rig.apply(&off, &rig.inventory(), &[]);
    assert_eq!(
        run.code,
        0,
        "{}\n{:#?}\n{}",
        run.stderr,
        run.events,
        httpd.log()
    );
    assert_eq!(run.status("open@a"), "changed");
    assert_eq!(run.status("refused@a"), "ok");
    assert_eq!(fs_err::read_to_string(&httpd.conf).expect("conf"), original);
    assert_eq!(get("127.0.0.1", &httpd.url("/index.html")).0, 200);
    assert_eq!(get(&addr, &httpd.url("/index.html")).0, 200);
    let again = rig.apply(&off, &rig.inventory(), &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.status("open@a"), "ok");
}

#[test]
fn a_block_httpd_refuses_is_rolled_back_and_the_server_keeps_serving() {
    let rig = Rig::new(1);
    let httpd = Httpd::start(&rig, "a");
    let original = fs_err::read_to_string(&httpd.conf).expect("conf");
    // Looks like an address to the module; httpd's expression parser refuses it.
    let rb = header("maint-bad")
        + "steps:\n"
        + &format!(
            "  - {{id: close, module: http.maintenance_on, on: a, with: {{{}, allow: [\"999.1.1.1\"]}}}}\n",
            server(&httpd)
        );
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.status("close@a"), "failed");
    let stdout = fs_err::read_to_string(find(&run.state, "close@a", "stderr")).expect("stderr");
    assert!(
        stdout.contains("http.maintenance_on: the configuration test failed")
            && stdout.contains("parsing of subnet/netmask failed"),
        "{stdout}"
    );
    assert_eq!(
        fs_err::read_to_string(&httpd.conf).expect("conf"),
        original,
        "the file is back as it was"
    );
    let leftovers: Vec<_> = fs_err::read_dir(httpd.conf.parent().expect("conf dir"))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file: {leftovers:?}");
    assert_eq!(get("127.0.0.1", &httpd.url("/index.html")).0, 200);
}

/// `STATE/runs/RUN/actions/ACTION/NAME` of the only run under `state`.
fn find(state: &Path, action: &str, name: &str) -> PathBuf {
    crate::apply::all_files(state)
        .into_iter()
        .find(|p| p.ends_with(format!("actions/{action}/{name}")))
        .unwrap_or_else(|| panic!("no {action}/{name} under {}", state.display()))
}
