//! The built-in IRIS runbooks, `runbooks/iris/new-mirror.yaml` (seed 000 chapter 3) and
//! `runbooks/iris/migrate-existing.yaml` (chapter 4):
//!
//! - `validate` and `plan` against `inventory/iris-prod.yaml`, pinned with insta;
//! - end to end over two lab hosts with the recording stand-in for `iris`
//!   (`tests/standins/iris`, installed as in `iris.rs`), manual steps approved with
//!   `runbook approve`: the vendor operations each stand-in recorded, in the seed's order;
//! - migrate-existing with an outage window: before the window only the preparation runs and the
//!   run pauses at the outage boundary, with nothing from "Stopping Your Productions" on recorded;
//!   in the window it resumes and finishes;
//! - a version mismatch fails the preflight before anything changes.
//!
//! This verifies the runbooks against a stand-in, not a real IRIS.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apply::{Applied, Rig};
use crate::iris::{install, log};
use crate::support::{root, run};

const PASSWORD: &str = "s3cret-Mirror-pw";
const WINDOW: &str = "22:00/06:00 UTC";
const DATABASES: [&str; 4] = ["HSSYS", "HSCOMMUNITY", "HSCOMMUNITYREPORTS", "HSAUDIT"];
const PRODUCTION: &str = "HSCOMMUNITYPKG.FoundationProduction";
const REPORTS_PRODUCTION: &str = "HSCOMMUNITYREPORTSPKG.FoundationProduction";

fn plan_args(runbook: &str) -> [String; 6] {
    [
        "plan".into(),
        format!("runbooks/iris/{runbook}.yaml"),
        "-i".into(),
        "inventory/iris-prod.yaml".into(),
        "--params".into(),
        format!("inventory/iris-prod.{runbook}.params.yaml"),
    ]
}

fn checked(runbook: &str, command: &str) -> String {
    let mut args = plan_args(runbook);
    command.clone_into(&mut args[0]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(out.code, 0, "{runbook}: {}", out.stderr);
    out.stdout
}

#[test]
fn new_mirror_validates_and_plans_against_the_example_inventory() {
    insta::assert_snapshot!(
        "iris_new_mirror_validate",
        checked("new-mirror", "validate")
    );
    let plan = checked("new-mirror", "plan");
    assert!(plan.contains("points of no return: link-content"), "{plan}");
    insta::assert_snapshot!("iris_new_mirror_plan", plan);
}

#[test]
fn migrate_existing_validates_and_plans_against_the_example_inventory() {
    insta::assert_snapshot!(
        "iris_migrate_existing_validate",
        checked("migrate-existing", "validate")
    );
    let plan = checked("migrate-existing", "plan");
    assert!(
        plan.contains("outage window: ~")
            && plan.contains("(phases: stop-and-share, mirror-databases, reactivate, failover)"),
        "{plan}"
    );
    insta::assert_snapshot!("iris_migrate_existing_plan", plan);
}

// ---------------------------------------------------------------------------------------------
// End to end.

/// A lab of two IRIS stand-ins, `a` (instance A, role `primary`) and `b` (instance B, role
/// `backup`), with a shared drive both see, and an inventory for the IRIS runbooks.
struct Estate {
    rig: Rig,
    shared: PathBuf,
    inventory: PathBuf,
}

impl Estate {
    /// `databases_b`: whether B already has the databases of §4.2.
    fn new(databases: &[&str], databases_b: bool) -> Self {
        let rig = Rig::new(2);
        let sum = Command::new("sh")
            .args(["-c", &format!("printf %s '{PASSWORD}' | cksum")])
            .output()
            .expect("cksum");
        let sum = String::from_utf8_lossy(&sum.stdout).into_owned();
        let (root_a, root_b) = (rig.root("a"), rig.root("b"));
        let instance = |root: &Path| format!("{}/iris-standin/instances/HSPC", root.display());
        let peer_a = instance(&root_b);
        let peer_b = instance(&root_a);
        let tasks =
            "Cube Manager Build - HSCOMMUNITYREPORTS\nCube Manager Synch - HSCOMMUNITYREPORTS\n";
        let production = format!("1^{PRODUCTION}\n");
        let reports = format!("1^{REPORTS_PRODUCTION}\n");
        let mut files_a: Vec<(String, String)> = vec![
            ("iris-standin/instances/HSPC/password".into(), sum.clone()),
            ("iris-standin/instances/HSPC/peer".into(), peer_a),
            (
                "iris-standin/instances/HSPC/productions/HSCOMMUNITY".into(),
                production,
            ),
            (
                "iris-standin/instances/HSPC/productions/HSCOMMUNITYREPORTS".into(),
                reports,
            ),
            ("iris-standin/instances/HSPC/tasks".into(), tasks.into()),
            (
                "csp/hscommlib/HSCOMMUNITY/portal.js".into(),
                "// built UI\n".into(),
            ),
            ("csp/public/index.csp".into(), "public\n".into()),
            (
                "hscommunity-content/HSCOMMUNITY/welcome.html".into(),
                "<p>customized</p>\n".into(),
            ),
            // What the Installer Wizard's activation (§4.18) leaves: the highest log counts.
            (
                "mgr/HS.Util.Installer.HSCOMMUNITY-1.log".into(),
                "[ERROR] an earlier attempt\n".into(),
            ),
            (
                "mgr/HS.Util.Installer.HSCOMMUNITY-2.log".into(),
                "[INFO] Activation Done\n".into(),
            ),
            (
                "mgr/HS.Util.Installer.HSCOMMUNITYREPORTS-1.log".into(),
                "[WARNING] cube build pending\n".into(),
            ),
        ];
        let mut files_b: Vec<(String, String)> = vec![
            ("iris-standin/instances/HSPC/password".into(), sum),
            ("iris-standin/instances/HSPC/peer".into(), peer_b),
            ("csp/hscommlib/fresh.js".into(), "// fresh install\n".into()),
            ("hscommunity-content/README".into(), "fresh\n".into()),
        ];
        for db in databases {
            files_a.push((format!("mgr/{db}/IRIS.DAT"), format!("data of {db} on A\n")));
            if databases_b || *db == "HSSYS" {
                files_b.push((format!("mgr/{db}/IRIS.DAT"), "empty\n".into()));
            }
        }
        for (host, files) in [("a", &files_a), ("b", &files_b)] {
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(p, c)| (p.as_str(), c.as_str()))
                .collect();
            install(&rig, host, &refs);
        }
        let shared = rig.dir.path().join("shared-drive");
        fs_err::create_dir_all(&shared).expect("the shared drive");
        let inventory = rig.dir.path().join("iris-lab.yaml");
        fs_err::write(&inventory, inventory_text(&rig)).expect("write the inventory");
        Self {
            rig,
            shared,
            inventory,
        }
    }

    /// A parameters file for `runbook` (new-mirror or migrate-existing).
    fn params(&self, runbook: &str) -> PathBuf {
        let mut text = format!(
            "instance_a: HSPC\ninstance_b: HSPC\nmirror_name: HSMIRROR\nmember_a: HSPC_A\n\
             member_b: HSPC_B\nnamespace: HSCOMMUNITY\nreporting_namespace: HSCOMMUNITYREPORTS\n\
             shared_drive: {}\n",
            json(&self.shared.display().to_string())
        );
        if runbook == "migrate-existing" {
            let _ = write!(
                text,
                "databases: [{}]\nproductions:\n  - {{namespace: HSCOMMUNITY, production: {PRODUCTION}}}\n  \
                 - {{namespace: HSCOMMUNITYREPORTS, production: {REPORTS_PRODUCTION}}}\n\
                 public_app: /public\nworkbench_app: /workbench\n",
                DATABASES.join(", ")
            );
        }
        let path = self.rig.dir.path().join(format!("{runbook}.params.yaml"));
        fs_err::write(&path, text).expect("write the parameters");
        path
    }

    /// `runbook apply` of the built-in runbook (a repeated apply resumes the same run).
    fn apply(&self, runbook: &str, extra: &[&str], now: Option<&str>) -> Applied {
        let file = root().join(format!("runbooks/iris/{runbook}.yaml"));
        let params = self.params(runbook);
        let mut args = vec!["--params", params.to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        let mut env = vec![("RUNBOOK_SECRET_IRIS_PASSWORD", PASSWORD)];
        if let Some(now) = now {
            env.push(("RUNBOOK_FAKE_NOW", now));
        }
        self.rig.apply_file_env(&file, &self.inventory, &args, &env)
    }

    /// Approves every manual step of the runbook in the run (before they are reached, too).
    fn approve_all(runbook: &str, run: &Applied) {
        let run_id = run.events[0]["run_id"].as_str().expect("a run id");
        for step in manual_steps(runbook) {
            let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
                .args([
                    "approve",
                    run_id,
                    &step,
                    "--by",
                    "test",
                    "--reason",
                    "rehearsal",
                ])
                .arg("--state")
                .arg(&run.state)
                .output()
                .expect("approve runs");
            assert_eq!(
                out.status.code(),
                Some(0),
                "{step}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn file(&self, host: &str, path: &str) -> String {
        fs_err::read_to_string(self.rig.root(host).join(path)).unwrap_or_default()
    }
}

fn json(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// The lab inventory with the IRIS estate: roles, install directories (each host's own tree),
/// the stand-in as `iris`, the arbiter and the ISCAgents (the hosts' sshd ports stand in for
/// their listeners), the VIP, and the scp options A needs to reach B.
fn inventory_text(rig: &Rig) -> String {
    let lab = fs_err::read_to_string(rig.inventory()).expect("the lab inventory");
    let host = |name: &str| rig.lab.host(name).expect("a lab host");
    let (a, b) = (host("a"), host("b"));
    let group = Command::new("id").arg("-gn").output().expect("id");
    let group = String::from_utf8_lossy(&group.stdout).trim().to_owned();
    let vars = format!(
        "vars:\n  iris_owner: {}\n  iris_group: {}\n  mirror_vip: 127.0.0.100\n  mirror_vip_prefix: 32\n  \
         mirror_vip_interface: lo\n  mirror_dns_name: hs-mirror.lab\n",
        json(rig.lab.user()),
        json(&group)
    );
    let arbiter = format!(
        "  arb:\n    address: {}\n    roles: [arbiter]\n    vars: {{arbiter_port: {}}}\n",
        a.address, a.port
    );
    let member = |name: &str, role: &str, port: u16, scp: &str| {
        let root = rig.root(name).display().to_string();
        format!(
            "  {role}:\n    hosts: [{name}]\n    vars:\n      iris_install_dir: {}\n      iris_bin: {}\n      \
             iscagent_port: {port}\n      scp_options: {scp}\n",
            json(&root),
            json(&format!("{root}/bin/iris")),
        )
    };
    let scp = format!(
        "[-P, '{}', -i, {}, -o, {}, -o, StrictHostKeyChecking=yes, -o, IdentitiesOnly=yes]",
        b.port,
        json(&rig.lab.identity_path().display().to_string()),
        json(&format!(
            "UserKnownHostsFile={}",
            rig.lab.known_hosts_path().display()
        )),
    );
    let lab = lab
        .replacen("kind: Inventory\n", &format!("kind: Inventory\n{vars}"), 1)
        .replacen("groups:\n", &format!("{arbiter}groups:\n"), 1);
    format!(
        "{lab}{}{}",
        member("a", "primary", a.port, &scp),
        member("b", "backup", b.port, "[]")
    )
}

/// The ids of the runbook's manual steps, in the file's order.
fn manual_steps(runbook: &str) -> Vec<String> {
    let text = fs_err::read_to_string(root().join(format!("runbooks/iris/{runbook}.yaml")))
        .expect("the runbook");
    let mut last = "";
    let mut steps = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(id) = line.strip_prefix("- id: ") {
            last = id;
        } else if line == "module: manual" {
            steps.push(last.to_owned());
        }
    }
    assert!(steps.len() > 5, "manual steps of {runbook}: {steps:?}");
    steps
}

/// The operations a stand-in recorded that change something, in order: instance control and the
/// mutating API calls. Read-only queries (`qlist`, statuses, `%OpenId`, `Exists`) are left out.
fn operations(log: &str) -> Vec<String> {
    let db = |line: &str| {
        let dir = line.split('"').nth(1).unwrap_or_default();
        dir.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let mut namespace = String::new();
    let mut ops = Vec::new();
    for line in log.lines() {
        if let Some(args) = line.strip_prefix("$ iris ") {
            let words: Vec<&str> = args.split_whitespace().collect();
            match words.first().copied() {
                Some("stop") if words.contains(&"nofailover") => ops.push("stop nofailover".into()),
                Some("stop") => ops.push("stop".into()),
                Some("start") => ops.push("start".into()),
                Some("session") => namespace = words.get(3).copied().unwrap_or_default().into(),
                _ => {}
            }
            continue;
        }
        let Some(code) = line.strip_prefix("< ") else {
            continue;
        };
        let calls = [
            ("Ens.Director).StopProduction(", "StopProduction"),
            ("Ens.Director).StartProduction(", "StartProduction"),
        ];
        for (needle, name) in calls {
            if code.contains(needle) {
                ops.push(format!("{name} {namespace}"));
            }
        }
        for name in ["CreateNewMirrorSet", "JoinMirrorAsFailoverMember"] {
            if code.contains(&format!("SYS.Mirror).{name}(")) {
                ops.push(name.into());
            }
        }
        for name in ["AddDatabase", "ActivateMirroredDatabase", "CatchupDB"] {
            if code.contains(&format!("SYS.Mirror).{name}(")) {
                ops.push(format!("{name} {}", db(code)));
            }
        }
        for name in [
            "ExportTasks",
            "ImportTasks",
            "%CreatePublicCSPApplication",
            "%CreateWorkbenchCSPApplication",
        ] {
            if code.contains(&format!("{name}(")) {
                ops.push(name.trim_start_matches('%').into());
            }
        }
        if code.contains("%Routine).%New(\"ZMIRROR.mac\")") {
            ops.push("ZMIRROR".into());
        }
    }
    ops
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Every `action_started` of the runs, in order.
fn started(runs: &[&Applied]) -> Vec<String> {
    runs.iter().flat_map(|r| r.start_order()).collect()
}

fn before(order: &[String], first: &str, then: &str) -> bool {
    let at = |a: &str| {
        order
            .iter()
            .position(|x| x == a)
            .unwrap_or_else(|| panic!("{a} never started: {order:?}"))
    };
    at(first) < at(then)
}

#[test]
fn new_mirror_runs_the_seed_chapter_3_in_order_over_two_hosts() {
    let estate = Estate::new(&["HSSYS"], false);
    let first = estate.apply("new-mirror", &[], None);
    assert_eq!(
        first.code, 3,
        "stops at the first manual step: {}",
        first.stderr
    );
    assert_eq!(first.status("arbiter@controller"), "awaiting_approval");
    assert_eq!(
        operations(&log(&estate.rig.root("a"))),
        Vec::<String>::new(),
        "the preflight only reads"
    );
    Estate::approve_all("new-mirror", &first);
    let done = estate.apply("new-mirror", &[], None);
    assert_eq!(done.code, 0, "{}\n{:#?}", done.stderr, done.statuses());

    assert_eq!(
        operations(&log(&estate.rig.root("a"))),
        strings(&[
            "CreateNewMirrorSet", // §3.7 step 1
            "AddDatabase HSSYS",  // §3.9
            "stop nofailover",    // §3.10 step 1b, after B
            "start",              // §3.10 step 3a, before B
            "stop",               // §3.14 step 1: failover to B
            "start",              // §3.14 step 3: A comes back as the backup
            "ZMIRROR",            // §3.15 steps 7-8
        ])
    );
    assert_eq!(
        operations(&log(&estate.rig.root("b"))),
        strings(&[
            "JoinMirrorAsFailoverMember",     // §3.7 step 2
            "stop",                           // §3.10 step 1a
            "start",                          // §3.10 step 3b
            "ActivateMirroredDatabase HSSYS", // §3.11
            "CatchupDB HSSYS",
            "ZMIRROR", // §3.15 steps 1-6, on the new primary
        ])
    );
    let order = started(&[&first, &done]);
    assert!(before(&order, "stop-b@b", "stop-a@a"), "{order:?}");
    assert!(before(&order, "start-a@a", "start-b@b"), "{order:?}");
    assert!(
        before(&order, "join-mirror@b", "add-databases@a"),
        "{order:?}"
    );

    // The mirror as the seed leaves it, and what the stand-ins hold.
    let mirror = "iris-standin/instances/HSPC/mirror";
    assert_eq!(estate.file("a", mirror), "HSMIRROR^Failover^Backup\n");
    assert_eq!(estate.file("b", mirror), "HSMIRROR^Failover^Primary\n");
    assert!(
        estate
            .file("b", "mgr/HSSYS/IRIS.DAT")
            .starts_with("mirrored HSMIRROR"),
        "B's HSSYS is A's mirrored copy"
    );
    let create = log(&estate.rig.root("a"));
    assert!(
        create.contains("< set info(\"UseSSL\")=1\n")
            && create.contains("< set info(\"VirtualAddress\")=\"127.0.0.100/32,lo\"\n"),
        "{create}"
    );
    for host in ["a", "b"] {
        assert_eq!(
            estate.file(host, "iris-standin/instances/HSPC/routines/ZMIRROR.mac"),
            estate.file("a", "iris-standin/instances/HSPC/routines/ZMIRROR.mac")
        );
        assert_shared_content(&estate, host);
    }
    assert!(
        estate
            .file("a", "iris-standin/instances/HSPC/routines/ZMIRROR.mac")
            .contains("set $namespace=\"HSCOMMUNITYREPORTS\"")
    );
}

/// `csp/` and `hscommunity-content/` of the host are links to the shared drive, which holds A's.
fn assert_shared_content(estate: &Estate, host: &str) {
    for dir in ["csp", "hscommunity-content"] {
        let link = estate.rig.root(host).join(dir);
        assert_eq!(
            fs_err::read_link(&link).expect("a symbolic link"),
            estate.shared.join(dir),
            "{host}: {dir}"
        );
    }
    assert_eq!(
        estate.file(host, "hscommunity-content/HSCOMMUNITY/welcome.html"),
        "<p>customized</p>\n"
    );
    assert!(
        !estate
            .rig
            .root(host)
            .join("csp/hscommlib/fresh.js")
            .exists()
    );
}

#[test]
fn migrate_existing_prepares_before_the_window_then_runs_the_outage_inside_it() {
    let estate = Estate::new(&DATABASES, true);
    let (a, b) = (estate.rig.root("a"), estate.rig.root("b"));

    // Before the window (noon; the window opens at 22:00 UTC): the preflight, then the first
    // manual step of the preparation.
    let window = ["--window", WINDOW];
    let first = estate.apply("migrate-existing", &window, Some("2026-11-24T12:00:00Z"));
    assert_eq!(first.code, 3, "{}", first.stderr);
    assert_eq!(
        first.status("create-databases-b@controller"),
        "awaiting_approval"
    );
    Estate::approve_all("migrate-existing", &first);

    // Still before the window: the whole preparation runs, the mirror is created with both
    // members, and the run pauses at the outage boundary.
    let prepared = estate.apply("migrate-existing", &[], Some("2026-11-24T12:10:00Z"));
    assert_eq!(prepared.code, 4, "paused: {}", prepared.stderr);
    let paused = prepared
        .events
        .iter()
        .find(|e| e["event"] == "run_paused")
        .expect("a run_paused event");
    assert_eq!(paused["next_window"], "2026-11-24T22:00:00Z");
    assert_eq!(prepared.status("mirror-b@b"), "ok");
    assert!(
        !prepared.statuses().contains_key("stop-productions@a"),
        "{:?}",
        prepared.statuses()
    );
    assert_eq!(operations(&log(&a)), strings(&["CreateNewMirrorSet"]));
    assert_eq!(
        operations(&log(&b)),
        strings(&["JoinMirrorAsFailoverMember"])
    );
    assert_eq!(
        estate.file("a", "iris-standin/instances/HSPC/productions/HSCOMMUNITY"),
        format!("1^{PRODUCTION}\n"),
        "the productions still run"
    );
    assert!(!estate.shared.join("csp").exists(), "nothing moved yet");

    // In the window: the run resumes and finishes.
    let outage = estate.apply("migrate-existing", &[], Some("2026-11-24T22:00:30Z"));
    assert_eq!(
        outage.code,
        0,
        "{}\n{:#?}",
        outage.stderr,
        outage.statuses()
    );
    assert_eq!(
        outage.events[0]["run_id"], first.events[0]["run_id"],
        "the same run"
    );

    let mut expected_a = vec![
        "CreateNewMirrorSet".to_owned(),     // §4.9 step 1, before the outage
        "StopProduction HSCOMMUNITY".into(), // §4.10: the outage starts
        "StopProduction HSCOMMUNITYREPORTS".into(),
    ];
    expected_a.extend(DATABASES.iter().map(|d| format!("AddDatabase {d}"))); // §4.14
    expected_a.extend(strings(&[
        "stop nofailover", // §4.15 step 1b, after B
        "start",           // §4.15 step 3a, before B
        "ExportTasks",     // §4.21
        "stop",            // §4.22 step 1: failover to B
        "start",           // §4.22 step 3: back as the backup
        "ZMIRROR",         // §4.23 steps 7-8
    ]));
    assert_eq!(operations(&log(&a)), expected_a);
    let mut expected_b = strings(&[
        "JoinMirrorAsFailoverMember", // §4.9 step 2
        "stop",                       // §4.15 step 1a
        "start",                      // §4.15 step 3b
    ]);
    for d in DATABASES {
        expected_b.push(format!("ActivateMirroredDatabase {d}")); // §4.16
        expected_b.push(format!("CatchupDB {d}"));
    }
    expected_b.extend(strings(&[
        "ImportTasks",                   // §4.22 step 4
        "CreatePublicCSPApplication",    // §4.22 step 5a
        "CreateWorkbenchCSPApplication", // §4.22 step 5c
        "ZMIRROR",                       // §4.23 steps 1-6
        "StartProduction HSCOMMUNITY",   // §4.24: the outage ends
        "StartProduction HSCOMMUNITYREPORTS",
    ]));
    assert_eq!(operations(&log(&b)), expected_b);

    let order = started(&[&first, &prepared, &outage]);
    assert!(before(&order, "stop-b@b", "stop-a@a"), "{order:?}");
    assert!(before(&order, "start-a@a", "start-b@b"), "{order:?}");
    assert!(before(&order, "copy-databases@a", "start-a@a"), "{order:?}");
    assert!(
        before(&order, "b-is-primary@b", "import-tasks@b"),
        "{order:?}"
    );

    // The state the seed ends in.
    let mirror = "iris-standin/instances/HSPC/mirror";
    assert_eq!(estate.file("a", mirror), "HSMIRROR^Failover^Backup\n");
    assert_eq!(estate.file("b", mirror), "HSMIRROR^Failover^Primary\n");
    for d in DATABASES {
        let copy = estate.file("b", &format!("mgr/{d}/IRIS.DAT"));
        assert_eq!(copy, estate.file("a", &format!("mgr/{d}/IRIS.DAT")), "{d}");
        assert!(copy.starts_with("mirrored HSMIRROR"), "{d}: {copy}");
    }
    assert_eq!(
        estate.file("b", "iris-standin/instances/HSPC/tasks"),
        "Cube Manager Build - HSCOMMUNITYREPORTS\nCube Manager Synch - HSCOMMUNITYREPORTS\n"
    );
    assert_eq!(
        estate.file("b", "iris-standin/instances/HSPC/applications"),
        "/public\n/public/report\n/workbench\n/workbench/report\n"
    );
    assert_eq!(
        estate.file("b", "iris-standin/instances/HSPC/productions/HSCOMMUNITY"),
        format!("1^{PRODUCTION}\n")
    );
    for host in ["a", "b"] {
        assert_shared_content(&estate, host);
    }
    // Every session logged in with the password, which the stand-in saw only on stdin.
    assert!(log(&a).contains("$ iris session HSPC -U HSCOMMUNITY\n< _SYSTEM\n< ********\n"));
    for path in crate::apply::all_files(&estate.rig.dir.path().join("state")) {
        let bytes = fs_err::read(&path).expect("read");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{} holds the password",
            path.display()
        );
    }
}

#[test]
fn migrate_existing_stops_before_any_change_when_the_versions_differ() {
    let estate = Estate::new(&DATABASES, true);
    fs_err::write(
        estate
            .rig
            .root("b")
            .join("iris-standin/instances/HSPC/version"),
        "2023.1.0.235.1\n",
    )
    .expect("an older B");
    let run = estate.apply("migrate-existing", &[], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.status("status-b@b"), "ok");
    assert_eq!(run.status("instances-match@controller"), "failed");
    assert!(
        run.message("instances-match@controller")
            .contains("the same version"),
        "{}",
        run.message("instances-match@controller")
    );
    for host in ["a", "b"] {
        assert_eq!(
            log(&estate.rig.root(host)),
            "$ iris qlist HSPC\n",
            "{host}: only the status query"
        );
    }
    assert!(
        !run.events.iter().any(|e| e["event"] == "awaiting_approval"),
        "no manual step was reached"
    );
}
