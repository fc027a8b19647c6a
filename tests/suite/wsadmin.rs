//! `wsadmin.*` over real SSH on a lab host, against the recording stand-in
//! `tests/standins/wsadmin` installed as the host's Deployment Manager `wsadmin.sh`.
//!
//! The stand-in records its argv, working directory, login properties and every statement it
//! runs, and writes the export and report files the real commands write; the test runs the
//! seed's recovery sequence (003, steps 2 to 6) for two features and checks the order of the
//! calls, that the password reached wsadmin only through the properties file, and that the
//! produced files were kept as run artifacts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apply::{Applied, Rig};

/// The Deployment Manager profile's `bin`, under a host's tree.
pub const BIN: &str = "opt/IBM/WebSphere/AppServer/profiles/Dmgr01/bin";
const PASSWORD: &str = "wsadmin-s3cret-pw";

/// Installs the stand-in as `ROOT/BIN/wsadmin.sh` of a host tree and returns its path. It logs
/// to `ROOT/wsadmin-standin.log` (`$RUNBOOK_HOST_ROOT` in the host's sessions).
pub fn install_standin(root: &Path) -> PathBuf {
    let bin = root.join(BIN);
    fs_err::create_dir_all(&bin).expect("mkdir bin");
    let wsadmin = bin.join("wsadmin.sh");
    fs_err::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/standins/wsadmin"),
        &wsadmin,
    )
    .expect("install the stand-in");
    wsadmin
}

#[test]
fn the_seed_sequence_runs_in_order_and_keeps_its_files() {
    let rig = Rig::new(1);
    let root = rig.root("a");
    let wsadmin = install_standin(&root);
    let bin = root.join(BIN);
    let temp = root.join("temp-dir");
    let reports = root.join("reports");
    let conn = format!(
        "wsadmin: {}, host: dmgr.example.com, port: 8879, user: wasadmin",
        wsadmin.display()
    );
    let rb = format!(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: communities-recovery, version: 1.0.0}}\n\
         params:\n  was_password: {{type: secret, required: true}}\n\
         steps:\n\
         \x20 - {{id: pause, module: wsadmin.pause_retry_task, on: a, env: {{WSADMIN_PASSWORD: \"{{{{ params.was_password }}}}\"}}, with: {{{conn}}}}}\n\
         \x20 - {{id: clear, module: wsadmin.clear_event_queue, on: a, env: {{WSADMIN_PASSWORD: \"{{{{ params.was_password }}}}\"}}, with: {{{conn}, features: [blogs, wikis]}}}}\n\
         \x20 - {{id: export, module: wsadmin.export_synced_resources, on: a, register: exported, env: {{WSADMIN_PASSWORD: \"{{{{ params.was_password }}}}\"}}, with: {{{conn}, features: [blogs, wikis], dir: {temp}}}}}\n\
         \x20 - {{id: report, module: wsadmin.sync_report, on: a, env: {{WSADMIN_PASSWORD: \"{{{{ params.was_password }}}}\"}}, with: {{{conn}, features: [blogs, wikis], dir: {temp}, output_dir: {reports}}}}}\n\
         \x20 - {{id: check, module: assert, needs: [export], with: {{that: [\"exported.values.exports.wikis == '{temp}/wikisOutput.xml'\"]}}}}\n\
         \x20 - {{id: resume, module: wsadmin.resume_retry_task, on: a, env: {{WSADMIN_PASSWORD: \"{{{{ params.was_password }}}}\"}}, with: {{{conn}}}}}\n",
        temp = temp.display(),
        reports = reports.display(),
    );
    let file = rig.dir.path().join("recovery.yaml");
    fs_err::write(&file, &rb).expect("write");
    let state = rig.dir.path().join("state");
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("apply")
        .arg(&file)
        .arg("-i")
        .arg(rig.inventory())
        .args(["--format", "json", "--state"])
        .arg(&state)
        .env("RUNBOOK_SECRET_WAS_PASSWORD", PASSWORD)
        .output()
        .expect("runs");
    let run = Applied::from_output(&out, state.clone());
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    for step in ["pause", "clear", "export", "report", "resume"] {
        assert_eq!(run.status(&format!("{step}@a")), "changed", "{step}");
    }
    assert_eq!(run.status("check@controller"), "ok");

    // The calls, in the seed's order, each in a session started from the profile's bin.
    let log = fs_err::read_to_string(root.join("wsadmin-standin.log")).expect("the stand-in's log");
    let calls: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("call "))
        .collect();
    let t = temp.display();
    let r = reports.display();
    assert_eq!(
        calls,
        [
            "CommunitiesSchedulerService.pauseSchedulingTask(\"LifecycleRetryQueuedEvents\")"
                .to_owned(),
            "CommunitiesQEventService.clearQueuedEventsByRemoteAppDefId(\"Blog\")".to_owned(),
            "CommunitiesQEventService.clearQueuedEventsByRemoteAppDefId(\"Wiki\")".to_owned(),
            format!(
                "BlogsAdminService.exportSyncedResourceInfo(\"{t}/blogsOutput.xml\", \"community\")"
            ),
            format!(
                "WikisLibraryService.exportSyncedResourceInfo(\"{t}/wikisOutput.xml\", \"community\")"
            ),
            format!(
                "CommunitiesRemoteAppService.generateSyncReport(\"{t}/blogsOutput.xml\", \"{r}/blogs\")"
            ),
            format!(
                "CommunitiesRemoteAppService.generateSyncReport(\"{t}/wikisOutput.xml\", \"{r}/wikis\")"
            ),
            "CommunitiesSchedulerService.resumeSchedulingTask(\"LifecycleRetryQueuedEvents\")"
                .to_owned(),
        ]
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.starts_with("cwd "))
            .collect::<Vec<_>>(),
        vec![format!("cwd {}", bin.display()).as_str(); 5],
        "five sessions, each from the profile's bin directory"
    );
    // The password reached wsadmin in the properties file, never on its command line.
    let logins: Vec<&str> = log.lines().filter(|l| l.starts_with("login ")).collect();
    assert_eq!(
        logins,
        vec![format!("login user=wasadmin password={PASSWORD}").as_str(); 5]
    );
    for line in log.lines().filter(|l| l.starts_with("argv ")) {
        assert!(!line.contains(PASSWORD), "{line}");
        assert!(
            line.contains("-lang jython -conntype SOAP -host dmgr.example.com -port 8879 -p "),
            "{line}"
        );
    }
    assert_eq!(
        fs_err::read_to_string(root.join("wsadmin-standin.log.task-state")).expect("state"),
        "SCHEDULED\n"
    );
    // Nothing the run kept holds the password.
    for path in crate::apply::all_files(&state) {
        let bytes = fs_err::read(&path).expect("read");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{} holds the password",
            path.display()
        );
    }

    // The files, on the host and as artifacts of their steps.
    let kept: Vec<(String, String)> = run
        .events
        .iter()
        .filter(|e| e["event"] == "artifact_kept")
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("export@a", "blogsOutput.xml"),
        ("export@a", "wikisOutput.xml"),
        ("report@a", "blogs-communityDifferences.html"),
        ("report@a", "blogs-orphanedRemoteApplications.html"),
        ("report@a", "wikis-communityDifferences.html"),
        ("report@a", "wikis-orphanedRemoteApplications.html"),
    ]
    .iter()
    .map(|(a, n)| ((*a).to_owned(), (*n).to_owned()))
    .collect();
    assert_eq!(kept, expected);
    for (action, name) in &expected {
        let artifact = crate::apply::all_files(&state)
            .into_iter()
            .find(|p| p.ends_with(format!("actions/{action}/artifacts/{name}")))
            .unwrap_or_else(|| panic!("no artifact {action}/{name}"));
        let host_file = if name.contains("Output.") {
            temp.join(name)
        } else {
            let (feature, report) = name.split_once('-').expect("FEATURE-REPORT");
            reports.join(feature).join(report)
        };
        assert_eq!(
            fs_err::read_to_string(&artifact).expect("artifact"),
            fs_err::read_to_string(&host_file).expect("host file"),
            "{name}"
        );
    }
    let report =
        fs_err::read_to_string(reports.join("wikis/orphanedRemoteApplications.html")).expect("r");
    assert!(
        report.contains("Wiki: orphanedRemoteApplications"),
        "{report}"
    );

    // A failing wsadmin command fails its step and quotes wsadmin's message.
    let bad = rb.replace(
        "module: wsadmin.resume_retry_task, on: a, env: {WSADMIN_PASSWORD: \"{{ params.was_password }}\"}, with: {",
        "module: wsadmin.resume_retry_task, on: a, env: {WSADMIN_PASSWORD: \"{{ params.was_password }}\"}, with: {task: NoSuchTask, ",
    );
    let bad_file = rig.dir.path().join("bad.yaml");
    fs_err::write(&bad_file, bad).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("apply")
        .arg(&bad_file)
        .arg("-i")
        .arg(rig.inventory())
        .args(["--format", "json", "--state"])
        .arg(&state)
        .env("RUNBOOK_SECRET_WAS_PASSWORD", PASSWORD)
        .output()
        .expect("runs");
    let run = Applied::from_output(&out, state);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.status("resume@a"), "failed");
    let stderr = crate::apply::all_files(&run.state)
        .into_iter()
        .filter(|p| p.ends_with("actions/resume@a/stderr"))
        .map(|p| fs_err::read_to_string(p).expect("stderr"))
        .find(|s| s.contains("NoSuchTask"))
        .expect("the failed step's stderr");
    assert!(
        stderr.contains("wsadmin.resume_retry_task: wsadmin failed (exit 105): WASX7017E"),
        "{stderr}"
    );
}
