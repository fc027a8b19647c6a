//! `runbooks/connections/communities-recovery.yaml`, end to end over lab hosts: a real Apache
//! httpd (the `http.rs` helper) is closed and reopened around the recovery, and the wsadmin
//! recording stand-in (`wsadmin.rs`) receives the seed's commands.
//!
//! The stand-in is installed behind a small wrapper that, before each wsadmin session, asks the
//! site for the probe page from a refused address (127.0.0.1) and writes the answer to the
//! stand-in's log: the log then shows, in order, what users saw while each command ran.
//!
//! The manual steps (the database-restored gate and the owners' follow-ups) are approved with
//! `runbook approve`, and the same `apply` resumes the run, as an operator without a terminal
//! would do it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apply::{Applied, Rig, all_files};
use crate::http::{CTL, Httpd, get};
use crate::wsadmin::{BIN, install_standin};

const PASSWORD: &str = "cnx-Adm1n-pw";
const TITLE: &str = "IBM Connections is temporarily unavailable due to scheduled maintenance";

fn runbook() -> PathBuf {
    crate::support::root().join("runbooks/connections/communities-recovery.yaml")
}

/// The wsadmin stand-in on a host tree, behind a wrapper that records what a refused client
/// gets from `site` when each session starts (`site CODE` lines in the stand-in's log).
fn install_wsadmin(root: &Path, site: &str) -> PathBuf {
    let wsadmin = install_standin(root);
    let standin = wsadmin.with_file_name("wsadmin-standin");
    fs_err::rename(&wsadmin, &standin).expect("rename the stand-in");
    fs_err::write(
        &wsadmin,
        format!(
            "#!/bin/sh\n\
             code=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 --interface 127.0.0.1 '{site}')\n\
             echo \"site $code\" >> \"$RUNBOOK_HOST_ROOT/wsadmin-standin.log\"\n\
             exec \"$(dirname \"$0\")/wsadmin-standin\" \"$@\"\n"
        ),
    )
    .expect("write the wrapper");
    fs_err::set_permissions(
        &wsadmin,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    wsadmin
}

/// One lab host of the test inventory: its name, roles and extra variables.
type HostSpec<'a> = (&'a str, &'a [&'a str], Vec<(&'a str, String)>);

/// The lab inventory with roles and the variables the runbook reads, per host.
fn inventory(rig: &Rig, hosts: &[HostSpec<'_>]) -> PathBuf {
    let text = fs_err::read_to_string(rig.inventory()).expect("lab inventory");
    let mut out = String::new();
    let mut current: Option<&HostSpec<'_>> = None;
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("  \"")
            .and_then(|l| l.strip_suffix("\":"))
        {
            current = hosts.iter().find(|(h, _, _)| *h == name);
        }
        if line == "    vars:"
            && let Some((_, roles, _)) = current
        {
            let _ = writeln!(out, "    roles: [{}]", roles.join(", "));
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("      host_root: ")
            && let Some((_, _, vars)) = current
        {
            for (k, v) in vars {
                let _ = writeln!(
                    out,
                    "      {k}: {}",
                    serde_json::to_string(v).expect("json")
                );
            }
        }
    }
    let path = rig.dir.path().join("connections.yaml");
    fs_err::write(&path, out).expect("write the inventory");
    path
}

fn http_vars(httpd: &Httpd) -> Vec<(&'static str, String)> {
    vec![
        ("httpd_root", httpd.root.display().to_string()),
        ("httpd_conf", httpd.conf.display().to_string()),
        ("httpd_ctl", CTL.to_owned()),
        (
            "httpd_docroot",
            httpd.root.join("htdocs").display().to_string(),
        ),
        ("http_port", httpd.port.to_string()),
        ("probe_path", "/index.html".to_owned()),
    ]
}

/// Every apply of one run, until it ends without a manual step waiting: each waiting step is
/// approved with `runbook approve` and the same apply resumes the run.
struct Rounds {
    applies: Vec<Applied>,
    /// The instructions of each manual step, by step id, in the order they were approved.
    approved: Vec<(String, String)>,
}

impl Rounds {
    fn run(rig: &Rig, inventory: &Path, extra: &[&str], approve: bool) -> Self {
        let mut rounds = Self {
            applies: Vec::new(),
            approved: Vec::new(),
        };
        for _ in 0..6 {
            let run = rig.apply_file_env(
                &runbook(),
                inventory,
                extra,
                &[("RUNBOOK_SECRET_WAS_PASSWORD", PASSWORD)],
            );
            let waiting: Vec<(String, String)> = run
                .events
                .iter()
                .filter(|e| e["event"] == "awaiting_approval")
                .map(|e| {
                    (
                        e["step"].as_str().unwrap_or_default().to_owned(),
                        e["instructions"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let code = run.code;
            let run_id = run
                .events
                .first()
                .and_then(|e| e["run_id"].as_str())
                .unwrap_or_default()
                .to_owned();
            let state = run.state.clone();
            rounds.applies.push(run);
            if code != 3 || !approve || run_id.is_empty() {
                return rounds;
            }
            assert!(!waiting.is_empty(), "exit 3 without a manual step waiting");
            for (step, instructions) in waiting {
                let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
                    .args([
                        "approve", &run_id, &step, "--by", "test", "--reason", "done",
                    ])
                    .arg("--state")
                    .arg(&state)
                    .output()
                    .expect("approve runs");
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                rounds.approved.push((step, instructions));
            }
        }
        panic!("the run did not end after 6 applies");
    }

    /// The last status of each action over all the applies.
    fn statuses(&self) -> BTreeMap<String, String> {
        let mut all = BTreeMap::new();
        for run in &self.applies {
            all.extend(run.statuses());
        }
        all
    }

    fn status(&self, action: &str) -> String {
        self.statuses()
            .get(action)
            .cloned()
            .unwrap_or_else(|| panic!("no status for {action}: {:#?}", self.statuses()))
    }

    fn last(&self) -> &Applied {
        self.applies.last().expect("one apply at least")
    }

    fn dump(&self) -> String {
        self.applies
            .iter()
            .map(|r| format!("{}\n{:#?}", r.stderr, r.statuses()))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// `(action, name, path)` of each kept artifact.
    fn artifacts(&self) -> Vec<(String, String, PathBuf)> {
        self.applies
            .iter()
            .flat_map(|r| &r.events)
            .filter(|e| e["event"] == "artifact_kept")
            .map(|e| {
                (
                    e["action"].as_str().unwrap_or_default().to_owned(),
                    e["name"].as_str().unwrap_or_default().to_owned(),
                    PathBuf::from(e["path"].as_str().unwrap_or_default()),
                )
            })
            .collect()
    }
}

/// The JSON an action printed (the last line of its kept stdout).
fn values(state: &Path, action: &str) -> serde_json::Value {
    let path = all_files(state)
        .into_iter()
        .find(|p| p.ends_with(format!("actions/{action}/stdout")))
        .unwrap_or_else(|| panic!("no stdout of {action}"));
    let text = fs_err::read_to_string(&path).expect("stdout");
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{action} printed no JSON ({e}): {text}"))
}

/// The `site ...` and `call ...` lines of the stand-in's log.
fn sessions(log: &Path) -> Vec<String> {
    fs_err::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("site ") || l.starts_with("call "))
        .map(str::to_owned)
        .collect()
}

fn address(rig: &Rig, host: &str) -> Ipv4Addr {
    rig.lab.host(host).expect("a lab host").address
}

#[test]
fn communities_recovery_closes_the_site_runs_the_seed_and_reopens() {
    let rig = Rig::new(2);
    let httpd = Httpd::start(&rig, "a");
    let original = fs_err::read_to_string(&httpd.conf).expect("conf");
    let site = httpd.url("/index.html");
    let dmgr_root = rig.root("b");
    let wsadmin = install_wsadmin(&dmgr_root, &site);
    let log = dmgr_root.join("wsadmin-standin.log");
    let recovery = dmgr_root.join("recovery");
    let inv = inventory(
        &rig,
        &[
            ("a", &["http_server"], http_vars(&httpd)),
            (
                "b",
                &["dmgr"],
                vec![("wsadmin", wsadmin.display().to_string())],
            ),
        ],
    );
    let allow = format!("allow={}", address(&rig, "a"));
    let dir = format!("recovery_dir={}", recovery.display());
    let params = [
        "-e",
        "data_loss=features",
        "-e",
        "features=blogs,wikis",
        "-e",
        &allow,
        "-e",
        &dir,
    ];

    let rounds = Rounds::run(&rig, &inv, &params, true);
    let dump = rounds.dump();
    assert_eq!(rounds.last().code, 0, "{dump}");
    let finished = rounds.last().events.last().expect("events");
    assert_eq!(finished["event"], "run_finished", "{dump}");
    assert_eq!(finished["status"], "succeeded", "{dump}");

    // The manual steps, in order: the gate before the outage, then the owners' follow-ups,
    // which point at the kept reports of each chosen feature.
    let steps: Vec<&str> = rounds.approved.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        steps,
        [
            "database-restored",
            "contact-community-owners",
            "orphaned-remote-apps"
        ]
    );
    let reports = recovery.join("reports");
    let owners = &rounds.approved[1].1;
    let orphans = &rounds.approved[2].1;
    for feature in ["blogs", "wikis"] {
        assert!(
            owners.contains(&format!("{feature}-communityDifferences.html"))
                && owners.contains(
                    &reports
                        .join(feature)
                        .join("communityDifferences.html")
                        .display()
                        .to_string()
                ),
            "{owners}"
        );
        assert!(
            orphans.contains(&format!("{feature}-orphanedRemoteApplications.html")),
            "{orphans}"
        );
    }
    assert!(owners.contains("sync-report@b/artifacts/"), "{owners}");
    assert!(
        owners.contains("toggle") && orphans.contains("CommunitiesRemoteAppService"),
        "the seed's instructions: {owners}\n{orphans}"
    );

    for (action, status) in [
        ("features-chosen@controller", "ok"),
        ("httpd-configtest@a", "ok"),
        ("maintenance-page@a", "changed"),
        ("probe-addresses@a", "ok"),
        ("wsadmin-reachable@b", "ok"),
        ("maintenance-on@a", "changed"),
        ("closed-allowed@a", "ok"),
        ("closed-refused@a", "ok"),
        ("pause-retry@b", "changed"),
        ("clear-remote-app-queues@b", "changed"),
        ("clear-community-queues@b", "skipped"),
        ("export@b", "changed"),
        ("sync-report@b", "changed"),
        ("resume-retry@b", "changed"),
        ("validate@controller", "ok"),
        ("maintenance-off@a", "changed"),
        ("open-allowed@a", "ok"),
        ("open-refused@a", "ok"),
        ("contact-community-owners@controller", "ok"),
        ("orphaned-remote-apps@controller", "ok"),
    ] {
        assert_eq!(rounds.status(action), status, "{action}\n{dump}");
    }
    assert!(
        !rounds.statuses().contains_key("recovery-failed@controller")
            || rounds.status("recovery-failed@controller") == "skipped"
    );

    // During the outage: the allowed address got the page, a refused one the 503 and the
    // maintenance page; afterwards both got the page.
    let state = &rounds.last().state;
    let closed_allowed = values(state, "closed-allowed@a");
    assert_eq!(closed_allowed["status"], 200, "{closed_allowed}");
    let closed_refused = values(state, "closed-refused@a");
    assert_eq!(closed_refused["status"], 503, "{closed_refused}");
    assert_eq!(closed_refused["contains"], true, "{closed_refused}");
    assert_eq!(values(state, "open-refused@a")["status"], 200);
    assert_eq!(values(state, "open-allowed@a")["status"], 200);

    // wsadmin: the seed's commands in the seed's order, and every session of the recovery
    // started while refused clients got 503 (the check before the outage saw the site open).
    let exports = recovery.join("exports");
    let (t, r) = (exports.display(), reports.display());
    assert_eq!(
        sessions(&log),
        [
            "site 200".to_owned(),
            "site 503".to_owned(),
            "call CommunitiesSchedulerService.pauseSchedulingTask(\"LifecycleRetryQueuedEvents\")"
                .to_owned(),
            "site 503".to_owned(),
            "call CommunitiesQEventService.clearQueuedEventsByRemoteAppDefId(\"Blog\")".to_owned(),
            "call CommunitiesQEventService.clearQueuedEventsByRemoteAppDefId(\"Wiki\")".to_owned(),
            "site 503".to_owned(),
            format!(
                "call BlogsAdminService.exportSyncedResourceInfo(\"{t}/blogsOutput.xml\", \"community\")"
            ),
            "site 503".to_owned(),
            format!(
                "call WikisLibraryService.exportSyncedResourceInfo(\"{t}/wikisOutput.xml\", \"community\")"
            ),
            "site 503".to_owned(),
            format!(
                "call CommunitiesRemoteAppService.generateSyncReport(\"{t}/blogsOutput.xml\", \"{r}/blogs\")"
            ),
            "site 503".to_owned(),
            format!(
                "call CommunitiesRemoteAppService.generateSyncReport(\"{t}/wikisOutput.xml\", \"{r}/wikis\")"
            ),
            "site 503".to_owned(),
            "call CommunitiesSchedulerService.resumeSchedulingTask(\"LifecycleRetryQueuedEvents\")"
                .to_owned(),
        ]
    );
    let text = fs_err::read_to_string(&log).expect("log");
    assert!(
        text.lines()
            .filter(|l| l.starts_with("login "))
            .all(|l| l == format!("login user=wasadmin password={PASSWORD}")),
        "the password reached wsadmin in its properties file:\n{text}"
    );
    for line in text.lines().filter(|l| l.starts_with("argv ")) {
        assert!(!line.contains(PASSWORD), "{line}");
    }
    assert!(
        text.lines()
            .filter(|l| l.starts_with("cwd "))
            .all(|l| l == format!("cwd {}", dmgr_root.join(BIN).display())),
        "{text}"
    );

    // The exports and the reports, kept with the run, identical to the host's files.
    let kept: Vec<(String, String)> = rounds
        .artifacts()
        .into_iter()
        .map(|(a, n, _)| (a, n))
        .collect();
    let expected: Vec<(String, String)> = [
        ("export@b", "blogsOutput.xml"),
        ("export@b", "wikisOutput.xml"),
        ("sync-report@b", "blogs-communityDifferences.html"),
        ("sync-report@b", "blogs-orphanedRemoteApplications.html"),
        ("sync-report@b", "wikis-communityDifferences.html"),
        ("sync-report@b", "wikis-orphanedRemoteApplications.html"),
    ]
    .iter()
    .map(|(a, n)| ((*a).to_owned(), (*n).to_owned()))
    .collect();
    assert_eq!(kept, expected);
    for (action, name, path) in rounds.artifacts() {
        assert!(
            path.starts_with(state) && path.ends_with(format!("actions/{action}/artifacts/{name}")),
            "{}",
            path.display()
        );
        let host_file = if action == "export@b" {
            exports.join(&name)
        } else {
            let (feature, report) = name.split_once('-').expect("FEATURE-REPORT");
            reports.join(feature).join(report)
        };
        assert_eq!(
            fs_err::read_to_string(&path).expect("artifact"),
            fs_err::read_to_string(&host_file).expect("host file"),
            "{name}"
        );
    }
    for path in all_files(state) {
        let bytes = fs_err::read(&path).expect("read");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{} holds the password",
            path.display()
        );
    }

    // The site is open again and httpd.conf is byte for byte what it was.
    assert_eq!(fs_err::read_to_string(&httpd.conf).expect("conf"), original);
    assert_eq!(get("127.0.0.1", &site).0, 200);
    let page = fs_err::read_to_string(httpd.root.join("htdocs/upgrading.htm")).expect("page");
    assert!(page.contains(TITLE), "{page}");

    // Applied again after completion: a new run that checks (nothing changes: the page is the
    // same, the checks only read) and stops at the gate, before anything is closed or cleared.
    let first_run = rounds.applies[0].events[0]["run_id"].clone();
    let before = sessions(&log).len();
    let again = Rounds::run(&rig, &inv, &params, false);
    let run = again.last();
    assert_eq!(run.code, 3, "{}", again.dump());
    assert_ne!(run.events[0]["run_id"], first_run, "a new run");
    assert_eq!(run.status("maintenance-page@a"), "ok");
    assert_eq!(run.status("httpd-configtest@a"), "ok");
    assert_eq!(run.status("wsadmin-reachable@b"), "ok");
    assert_eq!(
        run.status("database-restored@controller"),
        "awaiting_approval"
    );
    for action in [
        "maintenance-on@a",
        "pause-retry@b",
        "clear-remote-app-queues@b",
    ] {
        assert_eq!(run.status(action), "blocked", "{action}");
    }
    assert_eq!(fs_err::read_to_string(&httpd.conf).expect("conf"), original);
    assert_eq!(get("127.0.0.1", &site).0, 200);
    let after = sessions(&log);
    assert_eq!(
        after.len(),
        before + 1,
        "one more connection check, no wsadmin command: {after:#?}"
    );
    assert_eq!(after.last().map(String::as_str), Some("site 200"));
}

#[test]
fn communities_failure_on_one_host_clears_by_resource_type_for_every_feature() {
    let rig = Rig::new(1);
    let httpd = Httpd::start(&rig, "a");
    let original = fs_err::read_to_string(&httpd.conf).expect("conf");
    let root = rig.root("a");
    let wsadmin = install_wsadmin(&root, &httpd.url("/index.html"));
    let log = root.join("wsadmin-standin.log");
    let recovery = root.join("recovery");
    let mut vars = http_vars(&httpd);
    vars.push(("wsadmin", wsadmin.display().to_string()));
    let inv = inventory(&rig, &[("a", &["http_server", "dmgr"], vars)]);
    let allow = format!("allow={}", address(&rig, "a"));
    let dir = format!("recovery_dir={}", recovery.display());

    let all = [
        "-e",
        "data_loss=communities",
        "-e",
        "features=activities,blogs,files,wikis",
        "-e",
        &allow,
        "-e",
        &dir,
    ];

    // The Communities database lost data, but only two features are named: refused before
    // anything is touched.
    let partial = [
        "-e",
        "data_loss=communities",
        "-e",
        "features=blogs,wikis",
        "-e",
        &allow,
        "-e",
        &dir,
    ];
    let refused = Rounds::run(&rig, &inv, &partial, true);
    let run = refused.last();
    assert_eq!(run.code, 1, "{}", refused.dump());
    assert_eq!(run.status("features-chosen@controller"), "failed");
    assert!(
        run.message("features-chosen@controller")
            .contains("every feature is affected"),
        "{}",
        run.message("features-chosen@controller")
    );
    assert!(sessions(&log).is_empty(), "wsadmin never ran");
    assert_eq!(fs_err::read_to_string(&httpd.conf).expect("conf"), original);

    abandon(run);

    // The refused probe's address on the allow-list: refused before the outage too.
    let loose = format!("allow={},127.0.0.1", address(&rig, "a"));
    let mut args = all.to_vec();
    args[5] = &loose;
    let refused = Rounds::run(&rig, &inv, &args, true);
    let run = refused.last();
    assert_eq!(run.code, 1, "{}", refused.dump());
    assert_eq!(run.status("probe-addresses@a"), "failed");
    assert_eq!(run.status("maintenance-on@a"), "blocked");
    assert!(sessions(&log).iter().all(|l| !l.starts_with("call ")));
    assert_eq!(fs_err::read_to_string(&httpd.conf).expect("conf"), original);
    abandon(run);
    let rounds = Rounds::run(&rig, &inv, &all, true);
    assert_eq!(rounds.last().code, 0, "{}", rounds.dump());
    assert_eq!(rounds.status("clear-remote-app-queues@a"), "skipped");
    assert_eq!(rounds.status("clear-community-queues@a"), "changed");
    let calls: Vec<String> = sessions(&log)
        .into_iter()
        .filter_map(|l| l.strip_prefix("call ").map(str::to_owned))
        .collect();
    let t = recovery.join("exports").display().to_string();
    assert_eq!(
        calls[1],
        "CommunitiesQEventService.clearQueuedEventsByResourceType(\"community\")"
    );
    let exported: Vec<&str> = calls
        .iter()
        .filter(|c| c.contains("exportSyncedResourceInfo"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        exported,
        [
            format!(
                "ActivitiesService.exportSyncedResourceInfo(\"{t}/activitiesOutput.xml\", \"community\")"
            ),
            format!(
                "BlogsAdminService.exportSyncedResourceInfo(\"{t}/blogsOutput.xml\", \"community\")"
            ),
            format!(
                "FilesLibraryService.exportSyncedResourceInfo(\"{t}/filesOutput.xml\", \"community\")"
            ),
            format!(
                "WikisLibraryService.exportSyncedResourceInfo(\"{t}/wikisOutput.xml\", \"community\")"
            ),
        ]
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.contains("generateSyncReport("))
            .count(),
        4
    );
    assert_eq!(rounds.artifacts().len(), 12, "4 exports and 8 reports");
    assert!(
        sessions(&log)
            .iter()
            .filter(|l| l.starts_with("site "))
            .skip(1)
            .all(|l| l == "site 503"),
        "{:#?}",
        sessions(&log)
    );
    assert_eq!(fs_err::read_to_string(&httpd.conf).expect("conf"), original);
}

/// `runbook abandon` of the run an apply ended, so that the next apply starts a new run.
fn abandon(run: &Applied) {
    let id = run.events[0]["run_id"].as_str().expect("run id");
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["abandon", id, "--state"])
        .arg(&run.state)
        .output()
        .expect("abandon runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plan_of_the_communities_recovery_against_the_example_inventory() {
    let out = crate::support::run(&[
        "plan",
        "runbooks/connections/communities-recovery.yaml",
        "-i",
        "inventory/connections-prod.yaml",
        "-e",
        "data_loss=features",
        "-e",
        "features=blogs,wikis",
        "-e",
        "allow=10.30.9.5,10.30.1.0/24,10.30.2.0/24",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("plan_communities_recovery", out.stdout);
}
