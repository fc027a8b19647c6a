//! The `gtm.*` modules against real GT.M (the Debian `fis-gtm` package): two lab hosts, each
//! with its own instance under `Rig::root(host)/gtm`, replicating over localhost ports, set up
//! and driven by runbooks alone. Every test tears its instances down in a guard, even when it
//! fails: server shutdowns and rundown with each instance's environment, then a kill of any
//! process whose environment points into the test's directories, then `ipcrm` of the IPC ids
//! the database and instance files still record.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apply::{Applied, Rig};

const GTM_DIST: &str = "/usr/lib/x86_64-linux-gnu/fis-gtm/V7.0-005_x86_64";

/// Two lab hosts `a` (instance A) and `b` (instance B), cleaned up on drop (by [`GtmLab`]).
struct Pair {
    lab: GtmLab,
    /// Ports of B's and A's Receiver Servers.
    port_b: u16,
    port_a: u16,
}

fn header(name: &str) -> String {
    format!("apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, version: 1.0.0}}\n")
}

impl Pair {
    fn new() -> Self {
        let lab = GtmLab::new(&[]);
        let (port_b, port_a) = (lab.port("b"), lab.port("a"));
        Self {
            lab,
            port_b,
            port_a,
        }
    }

    fn dir(&self, host: &str) -> PathBuf {
        self.lab.dir(host)
    }

    fn apply(&self, name: &str, steps: &str) -> Applied {
        let rb = header(name) + "steps:\n" + steps;
        self.lab.rig.apply(&rb, &self.lab.rig.inventory(), &[])
    }

    fn tool(&self, host: &str, tool: &str, args: &[&str]) -> std::process::Output {
        self.lab.tool(host, tool, args)
    }

    fn m(&self, host: &str, code: &str) -> String {
        self.lab.m(host, code)
    }

    /// The env arguments of a step on `host`.
    fn env(host: &str) -> String {
        format!(
            "dir: \"{{{{ vars.host_root }}}}/gtm\", instance: {}",
            host.to_uppercase()
        )
    }

    /// Steps that set up A→B as the seed's "A→B replication configuration with empty
    /// databases": db_create, repl_setup, replicating_start on B, originating_start on A.
    fn setup_steps(&self) -> String {
        let (a, b) = (Self::env("a"), Self::env("b"));
        format!(
            "  - {{id: db-a, module: gtm.database_create, on: a, with: {{{a}}}}}\n\
             \x20 - {{id: db-b, module: gtm.database_create, on: b, with: {{{b}}}}}\n\
             \x20 - {{id: repl-a, module: gtm.replication_on, on: a, with: {{{a}}}}}\n\
             \x20 - {{id: repl-b, module: gtm.replication_on, on: b, with: {{{b}}}}}\n\
             \x20 - {{id: recv-b, module: gtm.receiver_start, on: b, with: {{{b}, listen_port: {pb}}}}}\n\
             \x20 - {{id: src-a, module: gtm.source_start, on: a, with: {{{a}, secondary_instance: B, secondary: \"{{{{ hostvars.b.address }}}}:{pb}\"}}}}\n",
            pb = self.port_b
        )
    }

    fn set_up(&self) {
        let run = self.apply("gtm-setup", &self.setup_steps());
        assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    }
}

/// Lab hosts `a`, `b`, ... each with its own real GT.M instance: inventory variables
/// `gtm_dir` (`ROOT/gtm`), `gtm_instance` (`A`, `B`, ...) and `repl_port` (a free port), and the
/// given roles. Dropping it tears every instance down, even when the test failed: server
/// shutdowns and rundown with each instance's environment, a kill of any GT.M process whose
/// environment or working directory is in the lab, and `ipcrm` of the IPC ids the instance's
/// files still record.
pub struct GtmLab {
    pub rig: Rig,
    hosts: Vec<String>,
}

impl GtmLab {
    /// `roles`: `(host, role)`; the number of hosts is the highest host named (at least 2).
    pub fn new(roles: &[(&str, &str)]) -> Self {
        Self::with_hosts(2, roles)
    }

    pub fn with_hosts(count: usize, roles: &[(&str, &str)]) -> Self {
        assert!(
            Path::new(GTM_DIST).join("mupip").exists(),
            "GT.M is not installed at {GTM_DIST}: `apt-get install fis-gtm` (.ci/install-packages does)"
        );
        let rig = Rig::with_config(count, |mut c| {
            for (host, role) in roles {
                c = c.role(host, role);
            }
            // What `lab up --platform gtm` gives: the one list of what the GT.M runbooks need.
            c.platform("gtm").expect("a GT.M lab")
        });
        let hosts = runbook::lab::default_names(count);
        Self { rig, hosts }
    }

    pub fn dir(&self, host: &str) -> PathBuf {
        self.rig.root(host).join("gtm")
    }

    /// The host's `repl_port` inventory variable.
    pub fn port(&self, host: &str) -> u16 {
        let inventory =
            runbook::inventory::Inventory::load(&self.rig.inventory()).expect("the lab inventory");
        inventory
            .hosts
            .iter()
            .find(|h| h.name == host)
            .and_then(|h| h.vars.get("repl_port"))
            .and_then(|v| v.as_str().and_then(|s| s.parse().ok()))
            .expect("a repl_port")
    }

    /// Runs a GT.M tool on the controller with `host`'s instance environment.
    pub fn tool(&self, host: &str, tool: &str, args: &[&str]) -> std::process::Output {
        tool_in(&self.dir(host), &host.to_uppercase(), tool, args)
    }

    /// `mumps -run %XCMD code` on `host`'s instance, its stdout.
    pub fn m(&self, host: &str, code: &str) -> String {
        let out = self.tool(host, "mumps", &["-run", "%XCMD", code]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// Runs a GT.M tool on the controller with the environment of the instance in `dir`.
pub fn tool_in(dir: &Path, instance: &str, tool: &str, args: &[&str]) -> std::process::Output {
    let dir = dir.to_path_buf();
    Command::new(Path::new(GTM_DIST).join(tool))
        .args(args)
        .current_dir(if dir.exists() {
            dir.clone()
        } else {
            std::env::temp_dir()
        })
        .env("gtm_dist", GTM_DIST)
        .env("gtm_repl_instname", instance)
        .env("gtm_repl_instance", dir.join("gtm.repl"))
        .env("gtmgbldir", dir.join("gtm.gld"))
        .env(
            "gtmroutines",
            format!("{} {GTM_DIST}/libgtmutil.so", dir.display()),
        )
        .env("gtm_log", dir.join("log"))
        .env("gtm_tmp", dir.join("tmp"))
        .output()
        .expect("run a GT.M tool")
}

/// `mumps -run %XCMD code` in the instance in `dir`; whether it succeeded (for threads, which
/// cannot share a [`GtmLab`]).
pub fn m_in(dir: &Path, instance: &str, code: &str) -> bool {
    tool_in(dir, instance, "mumps", &["-run", "%XCMD", code])
        .status
        .success()
}

impl Drop for GtmLab {
    fn drop(&mut self) {
        for host in self.hosts.iter().rev() {
            if !self.dir(host).join("gtm.gld").exists() {
                continue;
            }
            let _ = self.tool(
                host,
                "mupip",
                &["replicate", "-receiver", "-shutdown", "-timeout=0"],
            );
            let _ = self.tool(
                host,
                "mupip",
                &["replicate", "-source", "-shutdown", "-timeout=0"],
            );
            let _ = self.tool(host, "mupip", &["rundown", "-region", "*"]);
        }
        // Whatever survived: processes whose environment or working directory is ours.
        let root = self.rig.dir.path().to_string_lossy().into_owned();
        let me = std::process::id().to_string();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if pid == me || !pid.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
            let exe = std::fs::read_link(entry.path().join("exe")).unwrap_or_default();
            let ours = String::from_utf8_lossy(&environ).contains(&format!("{root}/"))
                || cwd.starts_with(&root);
            if ours && exe.starts_with(GTM_DIST) {
                let _ = Command::new("kill").args(["-9", &pid]).status();
            }
        }
        // IPC the files still record (ours: nobody else's file names them).
        for host in &self.hosts {
            let dir = self.dir(host);
            let mut targets: Vec<String> = vec!["-jnlpool".into(), "-recvpool".into()];
            for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if f.path().extension().is_some_and(|e| e == "dat") {
                    targets.push(f.path().to_string_lossy().into_owned());
                }
            }
            if !dir.join("gtm.gld").exists() {
                continue;
            }
            for t in targets {
                let out = self.tool(host, "mupip", &["ftok", &t]);
                for line in String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .chain(String::from_utf8_lossy(&out.stderr).lines())
                {
                    let cols: Vec<&str> = line.split("::").collect();
                    if cols.len() < 3 {
                        continue;
                    }
                    let id = |c: &str| {
                        c.split_whitespace()
                            .next()
                            .and_then(|w| w.parse::<i64>().ok())
                    };
                    if let Some(sem) = id(cols[1]).filter(|i| *i >= 0) {
                        let _ = Command::new("ipcrm")
                            .args(["-s", &sem.to_string()])
                            .output();
                    }
                    if let Some(shm) = id(cols[2]).filter(|i| *i >= 0) {
                        let _ = Command::new("ipcrm")
                            .args(["-m", &shm.to_string()])
                            .output();
                    }
                }
            }
        }
    }
}

#[test]
fn a_to_b_set_up_by_modules_replicates_data_and_is_idempotent() {
    let pair = Pair::new();
    let (a, b) = (Pair::env("a"), Pair::env("b"));
    let steps = pair.setup_steps()
        + &format!(
            "  - {{id: write, module: gtm.mumps, on: a, with: {{{a}, code: \"for i=1:1:10 set ^A(i)=i\"}}}}\n\
             \x20 - {{id: drain, module: gtm.wait_backlog, on: a, register: drain, with: {{{a}, timeout: 90s, interval: 1s}}}}\n\
             \x20 - {{id: count, module: gtm.mumps, on: b, register: count, retries: 20, delay: 1s, until: \"count.values.output == 10\", with: {{{b}, code: \"write $order(^A(\\\"\\\"),-1)\", json: true, read_only: true}}}}\n\
             \x20 - {{id: health-b, module: gtm.health, on: b, register: health_b, with: {{{b}, require: [receiver, update, passive]}}}}\n\
             \x20 - {{id: health-a, module: gtm.health, on: a, register: health_a, with: {{{a}, require: [active]}}}}\n\
             \x20 - {{id: role-a, module: gtm.role, on: a, register: role_a, with: {{{a}}}}}\n\
             \x20 - {{id: role-b, module: gtm.role, on: b, register: role_b, with: {{{b}}}}}\n\
             \x20 - {{id: backlog-b, module: gtm.backlog, on: b, register: backlog_b, with: {{{b}, side: receiver}}}}\n\
             \x20 - {{id: seqno-a, module: gtm.seqno, on: a, register: seqno_a, with: {{{a}}}}}\n\
             \x20 - id: verdict\n    module: assert\n    with:\n      that:\n\
             \x20       - \"drain.values.backlog == 0 and drain.values.posted == 10\"\n\
             \x20       - \"health_b.values.receiver and health_b.values.update and health_b.values.mode == 'passive'\"\n\
             \x20       - \"health_a.values.mode == 'active' and not health_a.values.receiver\"\n\
             \x20       - \"role_a.values.role == 'originating' and role_b.values.role == 'replicating'\"\n\
             \x20       - \"role_a.values.root_primary and role_a.values.seqno >= 1\"\n\
             \x20       - \"backlog_b.values.backlog == 0 and backlog_b.values.processed == 10\"\n\
             \x20       - \"seqno_a.values.max == 11 and seqno_a.values.regions.DEFAULT == 11\"\n"
        );
    let run = pair.apply("gtm-a-to-b", &steps);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    for step in [
        "db-a@a", "db-b@b", "repl-a@a", "repl-b@b", "recv-b@b", "src-a@a", "write@a",
    ] {
        assert_eq!(run.status(step), "changed", "{step}");
    }
    // Read back on B, outside runbook.
    assert_eq!(pair.m("b", "write ^A(7)"), "7");
    assert!(
        pair.dir("b").join("gtm.repl").exists() && pair.dir("b").join("log/receive.log").exists()
    );

    // The same set-up again changes nothing: every check and apply says so.
    let again = pair.apply("gtm-a-to-b-again", &pair.setup_steps());
    assert_eq!(again.code, 0, "{}", again.stderr);
    for step in [
        "db-a@a", "db-b@b", "repl-a@a", "repl-b@b", "recv-b@b", "src-a@a",
    ] {
        assert_eq!(again.status(step), "ok", "{step}: {:#?}", again.events);
    }

    // Orderly shutdown in the seed's order: B (propagating side) first, then A.
    let stop = pair.apply(
        "gtm-stop",
        &format!(
            "  - {{id: stop-b, module: gtm.shutdown, on: b, register: stop_b, with: {{{b}, kind: propagating, timeout: 2s}}}}\n\
             \x20 - {{id: stop-a, module: gtm.shutdown, on: a, with: {{{a}, kind: originating, timeout: 2s}}}}\n\
             \x20 - {{id: role-a, module: gtm.role, on: a, register: role_a, with: {{{a}}}}}\n\
             \x20 - {{id: down, module: assert, with: {{that: [\"role_a.values.role == 'none'\", \"stop_b.values.receiver_stopped and stop_b.values.source_stopped\"]}}}}\n"
        ),
    );
    assert_eq!(stop.code, 0, "{}\n{:#?}", stop.stderr, stop.events);
    let ftok = pair.tool("a", "mupip", &["ftok", "-jnlpool"]);
    let text =
        String::from_utf8_lossy(&ftok.stdout).into_owned() + &String::from_utf8_lossy(&ftok.stderr);
    let pool = text
        .lines()
        .find(|l| l.trim_start().starts_with("jnlpool ::"))
        .unwrap_or_else(|| panic!("{text}"));
    let ids: Vec<&str> = pool
        .split("::")
        .skip(1)
        .filter_map(|c| c.split_whitespace().next())
        .collect();
    assert_eq!(ids, ["-1", "-1"], "no Journal Pool left: {text}");
}

/// `gtm.receiver_stop` with `passive: true` is the switchover's last step before B starts as
/// originating (the point of no return): it confirms the passive Source Server's shutdown
/// brought down the Journal Pool. A process still attached to B's database keeps the pool up;
/// the step then fails, naming it, instead of letting the promotion fail after the point of no
/// return. Once the process is gone the step confirms it and succeeds.
#[test]
fn a_passive_stop_fails_while_a_process_keeps_the_journal_pool_up() {
    let pair = Pair::new();
    pair.set_up();
    let b = Pair::env("b");
    // A reader of B's database (a report, say): attached to the Journal Pool while it runs.
    let dir = pair.dir("b");
    let mut holder = Command::new(Path::new(GTM_DIST).join("mumps"))
        .args([
            "-run",
            "%XCMD",
            "set x=$zpeek(\"JPCREPL\",0,4,\"U\") write \"attached\",! hang 300",
        ])
        .current_dir(&dir)
        .env("gtm_dist", GTM_DIST)
        .env("gtm_repl_instname", "B")
        .env("gtm_repl_instance", dir.join("gtm.repl"))
        .env("gtmgbldir", dir.join("gtm.gld"))
        .env(
            "gtmroutines",
            format!("{} {GTM_DIST}/libgtmutil.so", dir.display()),
        )
        .env("gtm_log", dir.join("log"))
        .env("gtm_tmp", dir.join("tmp"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("a mumps process on B");
    {
        use std::io::BufRead as _;
        let out = holder.stdout.take().expect("piped");
        let mut line = String::new();
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("a line");
        assert_eq!(line.trim(), "attached");
    }
    let stop = format!(
        "  - {{id: stop-b, module: gtm.receiver_stop, on: b, with: {{{b}, timeout: 2s, passive: true}}}}\n"
    );
    // GT.M itself refuses to delete the pool (exit 1), but its passive Source Server is gone.
    let held = pair.apply("gtm-passive-held", &stop);
    assert_eq!(held.code, 1, "{}\n{:#?}", held.stderr, held.events);
    assert_eq!(held.status("stop-b@b"), "failed");
    assert!(
        held.message("stop-b@b")
            .contains("still attached to jnlpool"),
        "{}",
        held.message("stop-b@b")
    );
    let health = pair.tool("b", "mupip", &["replicate", "-source", "-checkhealth"]);
    let text = String::from_utf8_lossy(&health.stdout).into_owned()
        + &String::from_utf8_lossy(&health.stderr);
    assert!(!text.contains("alive in PASSIVE mode"), "{text}");
    // So the step run again finds nothing to stop: without the confirmation it passed here, and
    // B's promotion failed after the point of no return. Now it fails, naming the pool.
    let again = pair.apply("gtm-passive-again", &stop);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(again.code, 1, "{}\n{:#?}", again.stderr, again.events);
    assert_eq!(again.status("stop-b@b"), "failed");
    assert!(
        again
            .message("stop-b@b")
            .contains("the Journal Pool is still up"),
        "{}",
        again.message("stop-b@b")
    );

    assert!(
        again
            .message("stop-b@b")
            .contains("mupip rundown -region \"*\"")
    );
    // The reader gone and the pool run down, as the message says: the step confirms it.
    let rundown = pair.tool("b", "mupip", &["rundown", "-region", "*"]);
    assert!(rundown.status.success(), "{rundown:?}");
    let free = pair.apply("gtm-passive-free", &stop);
    assert_eq!(free.code, 0, "{}\n{:#?}", free.stderr, free.events);
    assert_eq!(free.status("stop-b@b"), "ok", "nothing left to stop");
    let ftok = pair.tool("b", "mupip", &["ftok", "-jnlpool"]);
    let ftok =
        String::from_utf8_lossy(&ftok.stdout).into_owned() + &String::from_utf8_lossy(&ftok.stderr);
    // `mupip ftok -jnlpool`: no semaphore and no shared memory left for the pool.
    let pool: Vec<&str> = ftok
        .lines()
        .find(|l| l.split("::").next().is_some_and(|f| f.trim() == "jnlpool"))
        .unwrap_or_else(|| panic!("no jnlpool line: {ftok}"))
        .split("::")
        .map(str::trim)
        .collect();
    assert!(
        pool[1].starts_with("-1") && pool[2].starts_with("-1"),
        "{ftok}"
    );
}

#[test]
fn the_backlog_gate_holds_while_the_receiver_is_down_and_opens_after() {
    let pair = Pair::new();
    pair.set_up();
    let (a, b) = (Pair::env("a"), Pair::env("b"));
    let hold = pair.apply(
        "gtm-gate-hold",
        &format!(
            "  - {{id: stop-recv, module: gtm.receiver_stop, on: b, with: {{{b}, timeout: 2s}}}}\n\
             \x20 - {{id: write, module: gtm.mumps, on: a, with: {{{a}, code: \"for i=1:1:5 set ^G(i)=i\"}}}}\n\
             \x20 - {{id: gate, module: gtm.wait_backlog, on: a, with: {{{a}, timeout: 4s, interval: 1s}}}}\n"
        ),
    );
    assert_eq!(hold.code, 1, "{}\n{:#?}", hold.stderr, hold.events);
    assert_eq!(hold.status("stop-recv@b"), "changed");
    assert_eq!(hold.status("gate@a"), "failed");
    let msg = hold.message("gate@a");
    assert!(
        msg.contains("backlog not zero after 4s")
            && msg.contains("SRCBACKLOGSTATUS")
            && msg.contains("\"posted\": 5"),
        "{msg}"
    );
    assert_eq!(pair.m("b", "write $data(^G)"), "0");

    let open = pair.apply(
        "gtm-gate-open",
        &format!(
            "  - {{id: start-recv, module: gtm.receiver_start, on: b, with: {{{b}, listen_port: {}}}}}\n\
             \x20 - {{id: gate, module: gtm.wait_backlog, on: a, register: gate, with: {{{a}, timeout: 120s, interval: 1s}}}}\n",
            pair.port_b
        ),
    );
    assert_eq!(open.code, 0, "{}\n{:#?}", open.stderr, open.events);
    assert_eq!(open.status("start-recv@b"), "changed");
    assert_eq!(open.status("gate@a"), "ok");
    assert_eq!(pair.m("b", "write ^G(5)"), "5");
}

#[test]
fn switchover_rolls_back_a_and_reapplies_its_lost_transactions_on_b() {
    let pair = Pair::new();
    pair.set_up();
    let (a, b) = (Pair::env("a"), Pair::env("b"));
    let pa = pair.port_a;
    // The seed's "Switchover possibilities in an A→B replication configuration", with updates
    // on A while B's Receiver Server is down, so A is ahead of B.
    let steps = format!(
        "  - {{id: base, module: gtm.mumps, on: a, with: {{{a}, code: \"for i=1:1:10 set ^A(i)=i\"}}}}\n\
         \x20 - {{id: drain, module: gtm.wait_backlog, on: a, with: {{{a}, timeout: 90s, interval: 1s}}}}\n\
         \x20 - {{id: stop-b, module: gtm.shutdown, on: b, with: {{{b}, kind: propagating, timeout: 2s}}}}\n\
         \x20 - {{id: lost1, module: gtm.mumps, on: a, with: {{{a}, code: \"for i=1:1:5 set ^losttrans(i)=i\"}}}}\n\
         \x20 - {{id: lost2, module: gtm.mumps, on: a, with: {{{a}, code: \"kill ^A(3)\"}}}}\n\
         \x20 - {{id: stop-a, module: gtm.shutdown, on: a, with: {{{a}, kind: originating, timeout: 2s}}}}\n\
         \x20 - {{id: b-originating, module: gtm.source_start, on: b, with: {{{b}, secondary_instance: A, secondary: \"{{{{ hostvars.a.address }}}}:{pa}\"}}}}\n\
         \x20 - {{id: rollback, module: gtm.rollback, on: a, register: rb, timeout: 120s, with: {{{a}, fetchresync: {pa}, print_extract: true}}}}\n\
         \x20 - {{id: a-replicating, module: gtm.receiver_start, on: a, with: {{{a}, listen_port: {pa}}}}}\n\
         \x20 - {{id: reapply, module: gtm.apply_lost, on: b, register: applied, with: {{{b}, content: \"{{{{ rb.values.extract }}}}\"}}}}\n\
         \x20 - {{id: drain-b, module: gtm.wait_backlog, on: b, with: {{{b}, timeout: 120s, interval: 1s}}}}\n\
         \x20 - {{id: role-a, module: gtm.role, on: a, register: role_a, with: {{{a}}}}}\n\
         \x20 - {{id: role-b, module: gtm.role, on: b, register: role_b, with: {{{b}}}}}\n\
         \x20 - id: verdict\n    module: assert\n    with:\n      that:\n\
         \x20       - \"rb.values.transactions == 6 and rb.values.sets == 5 and rb.values.kills == 1\"\n\
         \x20       - \"applied.values.sets == 5 and applied.values.kills == 1\"\n\
         \x20       - \"role_a.values.role == 'replicating' and role_b.values.role == 'originating'\"\n"
    );
    let run = pair.apply("gtm-switchover", &steps);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);

    // The lost-transaction file on A holds exactly the updates B never saw.
    let lost = std::fs::read_to_string(pair.dir("a").join("gtm.lost")).expect("gtm.lost");
    assert!(lost.starts_with("GDSJEX07 ROLLBACK PRIMARY A"), "{lost}");
    let updates: Vec<&str> = lost
        .lines()
        .filter(|l| l.starts_with("05\\") || l.starts_with("04\\"))
        .map(|l| l.rsplit_once("\\^").map_or(l, |(_, node)| node))
        .collect();
    assert_eq!(
        updates,
        [
            "losttrans(1)=\"1\"",
            "losttrans(2)=\"2\"",
            "losttrans(3)=\"3\"",
            "losttrans(4)=\"4\"",
            "losttrans(5)=\"5\"",
            "A(3)"
        ],
        "{lost}"
    );
    // Kept with the run as the rollback step's artifact.
    assert!(
        run.events.iter().any(|e| e["event"] == "artifact_kept"
            && e["action"] == "rollback@a"
            && e["name"] == "gtm.lost"),
        "{:#?}",
        run.events
    );
    let artifact = crate::apply::all_files(&run.state)
        .into_iter()
        .find(|p| p.ends_with("actions/rollback@a/artifacts/gtm.lost"))
        .expect("the lost-transaction file among the run's artifacts");
    assert_eq!(std::fs::read_to_string(artifact).expect("artifact"), lost);
    // Re-applied on the new originating instance B, and replicated back to A.
    assert_eq!(
        pair.m("b", "write ^losttrans(5),\" \",$data(^A(3)),\" \",^A(4)"),
        "5 0 4"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pair.m("a", "write $get(^losttrans(5))") != "5" {
        assert!(
            std::time::Instant::now() < deadline,
            "A never received the re-applied updates"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(pair.m("a", "write $data(^A(3))"), "0");
}
