//! The `iris.*` modules over real SSH against lab hosts, each with the recording stand-in for
//! the vendor's `iris` command (`tests/standins/iris`) in `Rig::root(host)/bin`. The stand-in
//! logs every invocation; the tests assert that log, command by command and ObjectScript line
//! by line. This verifies the family against a stand-in, not a real IRIS.

use std::fmt::Write as _;
use std::path::Path;

use crate::apply::Rig;

const STANDIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/standins/iris");

/// Installs the stand-in on `host` with instance HSPC running and the given state files.
pub fn install(rig: &Rig, host: &str, files: &[(&str, &str)]) {
    let root = rig.root(host);
    let bin = root.join("bin");
    fs_err::create_dir_all(&bin).expect("bin");
    fs_err::copy(STANDIN, bin.join("iris")).expect("install the stand-in");
    let status = std::process::Command::new("chmod")
        .arg("+x")
        .arg(bin.join("iris"))
        .status()
        .expect("chmod");
    assert!(status.success());
    let mut all = vec![("iris-standin/instances/HSPC/status", "running\n")];
    all.extend_from_slice(files);
    for (path, content) in all {
        let path = root.join(path);
        fs_err::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs_err::write(&path, content).expect("write state");
    }
}

/// What the stand-in on the host with this root recorded.
pub fn log(root: &Path) -> String {
    fs_err::read_to_string(root.join("iris-standin/log")).unwrap_or_default()
}

fn report(status: &str) -> String {
    format!(
        "if $system.Status.IsOK({status}) {{ write !,\"RUNBOOK\"_\":OK\",! }} else {{ write !,\"RUNBOOK\"_\":ERROR:\",$system.Status.GetErrorText({status}),! }}"
    )
}

/// One recorded session: the command line, then each ObjectScript line, then `halt`.
fn session(namespace: &str, lines: &[String]) -> String {
    let mut out = format!("$ iris session HSPC -U {namespace}\n");
    for line in lines {
        let _ = writeln!(out, "< {line}");
    }
    out.push_str("< halt\n");
    out
}

fn value(expr: &str) -> String {
    format!("write !,\"RUNBOOK\"_\":VALUE:\",{expr},!")
}

fn production_query() -> String {
    session(
        "HSCOMMUNITY",
        &[format!(
            "set sc=##class(Ens.Director).GetProductionStatus(.name,.state) {}",
            value("$get(state),\"^\",$get(name)")
        )],
    )
}

fn mirror_query() -> String {
    format!(
        "$ iris qlist HSPC\n{}",
        session("%SYS", &[value("$SYSTEM.Mirror.MirrorName()")])
    )
}

fn db_query(dirs: &[String], expr: &str) -> String {
    let lines: Vec<String> = dirs
        .iter()
        .map(|d| {
            format!(
                "set db=##class(SYS.Database).%OpenId(\"{d}\") {}",
                value(&format!("$s($isobject(db):{expr},1:\"missing\")"))
            )
        })
        .collect();
    session("%SYS", &lines)
}

const TASKS: [&str; 2] = [
    "Cube Manager Build - HSCOMMUNITYREPORTS",
    "Cube Manager Synch - HSCOMMUNITYREPORTS",
];

fn task_lookup() -> Vec<String> {
    let mut lines = vec!["set ids=\"\"".to_owned()];
    for t in TASKS {
        lines.push(format!("set rs=##class(%SQL.Statement).%ExecDirect(,\"SELECT ID FROM %SYS.Task WHERE Name = ?\",\"{t}\") if rs.%Next() {{ set ids=ids_$lb(rs.ID) }}"));
    }
    lines
}

fn task_count() -> String {
    let mut lines = task_lookup();
    lines.push(value("$ll(ids)"));
    session("%SYS", &lines)
}

const ZMIRROR: &str = "ZMIRROR\n    quit\nNotifyBecomePrimary() public {\n    New $namespace\n    set $namespace=\"HSLIB\"\n    do ##class(HS.Director).StartAll()\n}";

fn zmirror_query() -> String {
    session(
        "%SYS",
        &[format!(
            "set r=##class(%Routine).%OpenId(\"ZMIRROR.mac\") if $isobject(r) {{ while 'r.AtEnd {{ write !,\"RUNBOOK\"_\":LINE:\",r.ReadLine() }} }} {}",
            value("$isobject(r)")
        )],
    )
}

fn zmirror_write() -> String {
    let mut lines = vec!["set r=##class(%Routine).%New(\"ZMIRROR.mac\")".to_owned()];
    for l in ZMIRROR.lines() {
        lines.push(format!("do r.WriteLine(\"{}\")", l.replace('"', "\"\"")));
    }
    lines.push("set sc=r.Save() if $system.Status.IsOK(sc) { set sc=r.Compile() }".into());
    lines.push(report("sc"));
    session("%SYS", &lines)
}

fn runbook() -> String {
    let zmirror = ZMIRROR.replace('\n', "\\n").replace('"', "\\\"");
    format!(
        r#"apiVersion: runbook/v1
kind: Runbook
metadata: {{name: hs-mirror-existing, version: 1.0.0, source: "000_fc9617c117eaba83.txt chapter 4"}}
steps:
  - {{id: before, module: iris.mirror_status, on: a, register: before, with: {{instance: HSPC, iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: stop-productions, module: iris.production_stop, on: a, when: "not before.values.member", with: {{instance: HSPC, namespace: HSCOMMUNITY, iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: create, module: iris.mirror_create, on: a, with: {{instance: HSPC, mirror_name: HSMIRROR, system_name: HSPC_A, use_ssl: false, iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: join, module: iris.mirror_join, on: b, with: {{instance: HSPC, mirror_name: HSMIRROR, system_name: HSPC_B, agent_address: 127.0.0.1, iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: add-hssys, module: iris.mirror_add_database, on: a, with: {{instance: HSPC, directory: "{{{{ vars.host_root }}}}/mgr/hssys/", iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: add-hspc, module: iris.mirror_add_database, on: a, with: {{instance: HSPC, directory: "{{{{ vars.host_root }}}}/mgr/hspc/", mirror_db_name: HSPC, iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - id: copy
    module: shell
    on: b
    with:
      creates: "{{{{ vars.host_root }}}}/mgr/copied"
      cmd: "for d in hssys hspc; do cp {{{{ hostvars.a.vars.host_root }}}}/mgr/$d/IRIS.DAT {{{{ vars.host_root }}}}/mgr/$d/IRIS.DAT; done; touch {{{{ vars.host_root }}}}/mgr/copied"
  - {{id: activate, module: iris.mirror_activate, on: b, with: {{instance: HSPC, directories: ["{{{{ vars.host_root }}}}/mgr/hssys/", "{{{{ vars.host_root }}}}/mgr/hspc/"], iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: export-tasks, module: iris.task_export, on: a, with: {{instance: HSPC, tasks: ["{t0}", "{t1}"], file: "{{{{ vars.host_root }}}}/tasks.xml", iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: import-tasks, module: iris.task_import, on: b, with: {{instance: HSPC, tasks: ["{t0}", "{t1}"], file: "{{{{ hostvars.a.vars.host_root }}}}/tasks.xml", iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: zmirror, module: iris.zmirror_install, on: lab, with: {{instance: HSPC, content: "{zmirror}", iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: web-app, module: iris.csp_application, on: b, with: {{instance: HSPC, namespace: HSCOMMUNITY, application: /public, iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: start-productions, module: iris.production_start, on: a, with: {{instance: HSPC, namespace: HSCOMMUNITY, production: HSPC.Production, iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: mirror, module: iris.mirror_status, on: lab, register: mirror, with: {{instance: HSPC, iris: "{{{{ vars.host_root }}}}/bin/iris"}}}}
  - {{id: show, module: shell, on: lab, with: {{cmd: "echo {{{{ mirror.values.status }}}} > {{{{ vars.host_root }}}}/mirror-status"}}}}
"#,
        t0 = TASKS[0],
        t1 = TASKS[1],
    )
}

fn setup(rig: &Rig) {
    let tasks = format!("{}\n{}\n", TASKS[0], TASKS[1]);
    install(
        rig,
        "a",
        &[
            (
                "iris-standin/instances/HSPC/productions/HSCOMMUNITY",
                "1^HSPC.Production\n",
            ),
            ("iris-standin/instances/HSPC/tasks", &tasks),
            ("mgr/hssys/IRIS.DAT", "plain\n"),
            ("mgr/hspc/IRIS.DAT", "plain\n"),
        ],
    );
    install(
        rig,
        "b",
        &[
            ("mgr/hssys/IRIS.DAT", "plain\n"),
            ("mgr/hspc/IRIS.DAT", "plain\n"),
        ],
    );
}

#[test]
fn mirrors_an_existing_instance_with_the_vendor_commands_then_changes_nothing() {
    let rig = Rig::new(2);
    setup(&rig);
    let (a, b) = (rig.root("a"), rig.root("b"));
    let (mgr_a, mgr_b) = (
        format!("{}/mgr", a.display()),
        format!("{}/mgr", b.display()),
    );
    let file = rig.dir.path().join("mirror.yaml");
    fs_err::write(&file, runbook()).expect("write the runbook");

    let run = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    for (action, status) in run.statuses() {
        if !action.starts_with("mirror@") && !action.starts_with("before@") {
            assert_eq!(status, "changed", "{action}");
        }
    }

    let dbs_a = [format!("{mgr_a}/hssys/"), format!("{mgr_a}/hspc/")];
    let dbs_b = [format!("{mgr_b}/hssys/"), format!("{mgr_b}/hspc/")];
    let tasks_file = format!("{}/tasks.xml", a.display());
    let flags = "db.Mirrored_\"^\"_db.MirrorActivationRequired_\"^\"_db.MirrorDBCatchup";
    let expected_a = [
        "$ iris qlist HSPC\n".into(),
        production_query(),
        session(
            "HSCOMMUNITY",
            &[
                "set sc=##class(Ens.Director).StopProduction(120,0)".into(),
                report("sc"),
            ],
        ),
        mirror_query(),
        session(
            "%SYS",
            &[
                "set info(\"UseSSL\")=0".into(),
                "set sc=##class(SYS.Mirror).CreateNewMirrorSet(\"HSMIRROR\",\"HSPC_A\",.info)"
                    .into(),
                report("sc"),
            ],
        ),
        db_query(&dbs_a[..1], "db.Mirrored"),
        session(
            "%SYS",
            &[
                format!("set sc=##class(SYS.Mirror).AddDatabase(\"{}\")", dbs_a[0]),
                report("sc"),
            ],
        ),
        db_query(&dbs_a[1..], "db.Mirrored"),
        session(
            "%SYS",
            &[
                format!(
                    "set sc=##class(SYS.Mirror).AddDatabase(\"{}\",\"HSPC\")",
                    dbs_a[1]
                ),
                report("sc"),
            ],
        ),
        task_count(),
        session("%SYS", &{
            let mut l = task_lookup();
            l.push(format!(
                "set sc=##class(%SYS.Task).ExportTasks(ids,\"{tasks_file}\")"
            ));
            l.push(report("sc"));
            l
        }),
        zmirror_query(),
        zmirror_write(),
        production_query(),
        session(
            "HSCOMMUNITY",
            &[
                "set sc=##class(Ens.Director).StartProduction(\"HSPC.Production\")".into(),
                report("sc"),
            ],
        ),
        "$ iris qlist HSPC\n".into(),
    ]
    .concat();
    assert_eq!(log(&a), expected_a);

    let expected_b = [
        mirror_query(),
        session(
            "%SYS",
            &[
                "set sc=##class(SYS.Mirror).JoinMirrorAsFailoverMember(\"HSMIRROR\",\"HSPC_B\",\"HSPC\",\"127.0.0.1\",2188,.info)".into(),
                report("sc"),
            ],
        ),
        db_query(&dbs_b, flags),
        session(
            "%SYS",
            &[format!("set sc=##class(SYS.Mirror).ActivateMirroredDatabase(\"{}\")", dbs_b[0]), report("sc")],
        ),
        session(
            "%SYS",
            &[format!("set sc=##class(SYS.Mirror).CatchupDB($lb(##class(SYS.Database).%OpenId(\"{}\").SFN))", dbs_b[0]), report("sc")],
        ),
        session(
            "%SYS",
            &[format!("set sc=##class(SYS.Mirror).ActivateMirroredDatabase(\"{}\")", dbs_b[1]), report("sc")],
        ),
        session(
            "%SYS",
            &[format!("set sc=##class(SYS.Mirror).CatchupDB($lb(##class(SYS.Database).%OpenId(\"{}\").SFN))", dbs_b[1]), report("sc")],
        ),
        task_count(),
        session(
            "%SYS",
            &[format!("set sc=##class(%SYS.Task).ImportTasks(\"{tasks_file}\")"), report("sc")],
        ),
        zmirror_query(),
        zmirror_write(),
        session(
            "%SYS",
            &[value("##class(Security.Applications).Exists(\"/public\")_##class(Security.Applications).Exists(\"/public/report\")")],
        ),
        session(
            "HSCOMMUNITY",
            &[
                "set pCSPApplication=\"/public\"".into(),
                "set status=##class(HSPortal.Utils).%CreatePublicCSPApplication(pCSPApplication)".into(),
                report("status"),
            ],
        ),
        "$ iris qlist HSPC\n".into(),
    ]
    .concat();
    assert_eq!(log(&b), expected_b);

    // What the stand-in now holds, and what the status module registered.
    assert_eq!(
        fs_err::read_to_string(a.join("mirror-status"))
            .expect("a")
            .trim(),
        "Primary"
    );
    assert_eq!(
        fs_err::read_to_string(b.join("mirror-status"))
            .expect("b")
            .trim(),
        "Backup"
    );
    let routine =
        fs_err::read_to_string(b.join("iris-standin/instances/HSPC/routines/ZMIRROR.mac"))
            .expect("routine on b");
    assert_eq!(routine.trim_end(), ZMIRROR);

    // A second run changes nothing: every step is ok, and only read-only queries reach iris.
    let (before_a, before_b) = (log(&a), log(&b));
    let again = rig.apply(&runbook(), &rig.inventory(), &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    for (action, status) in again.statuses() {
        match action.as_str() {
            "show@a" | "show@b" => {}
            "stop-productions@a" => assert_eq!(status, "skipped", "the mirror exists"),
            _ => assert_eq!(status, "ok", "{action}: {}", again.message(&action)),
        }
    }
    let rerun_a = log(&a)[before_a.len()..].to_owned();
    let rerun_b = log(&b)[before_b.len()..].to_owned();
    assert_eq!(
        rerun_a,
        [
            "$ iris qlist HSPC\n".into(),
            mirror_query(),
            db_query(&dbs_a[..1], "db.Mirrored"),
            db_query(&dbs_a[1..], "db.Mirrored"),
            zmirror_query(),
            production_query(),
            "$ iris qlist HSPC\n".into(),
        ]
        .concat()
    );
    assert_eq!(
        rerun_b,
        [
            mirror_query(),
            db_query(&dbs_b, flags),
            task_count(),
            zmirror_query(),
            session(
                "%SYS",
                &[value("##class(Security.Applications).Exists(\"/public\")_##class(Security.Applications).Exists(\"/public/report\")")],
            ),
            "$ iris qlist HSPC\n".into(),
        ]
        .concat()
    );
}

#[test]
fn a_vendor_error_fails_the_step_and_quotes_the_vendor() {
    let rig = Rig::new(2);
    setup(&rig);
    fs_err::write(
        rig.root("a").join("iris-standin/fail"),
        "CreateNewMirrorSet|ERROR #2087: Mirror name 'HSMIRROR' is in use by another mirror\n",
    )
    .expect("inject");
    let run = rig.apply(&runbook(), &rig.inventory(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.status("stop-productions@a"), "changed");
    assert_eq!(run.status("create@a"), "failed");
    assert_eq!(
        run.message("create@a"),
        "exited with code 1: iris.mirror_create: SYS.Mirror.CreateNewMirrorSet failed: ERROR #2087: Mirror name 'HSMIRROR' is in use by another mirror"
    );
    assert!(!run.statuses().contains_key("join@b") || run.status("join@b") != "changed");
}

#[test]
fn start_and_stop_use_qlist_then_the_documented_commands() {
    let rig = Rig::new(1);
    install(&rig, "a", &[]);
    let rb = |module: &str, extra: &str| {
        format!(
            "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: s, version: 1.0.0}}\nsteps:\n  - {{id: s, module: {module}, on: a, with: {{instance: HSPC, iris: \"{{{{ vars.host_root }}}}/bin/iris\"{extra}}}}}\n"
        )
    };
    let a = rig.root("a");
    let stop = rig.apply(
        &rb("iris.stop", ", nofailover: true"),
        &rig.inventory(),
        &[],
    );
    assert_eq!(stop.code, 0, "{}", stop.stderr);
    assert_eq!(stop.status("s@a"), "changed");
    let again = rig.apply(
        &rb("iris.stop", ", nofailover: true"),
        &rig.inventory(),
        &[],
    );
    assert_eq!(again.status("s@a"), "ok");
    let start = rig.apply(&rb("iris.start", ""), &rig.inventory(), &[]);
    assert_eq!(start.status("s@a"), "changed");
    let again = rig.apply(&rb("iris.start", ""), &rig.inventory(), &[]);
    assert_eq!(again.status("s@a"), "ok");
    assert_eq!(
        log(&a),
        "$ iris qlist HSPC\n$ iris stop HSPC quietly nofailover\n$ iris qlist HSPC\n\
         $ iris qlist HSPC\n\
         $ iris qlist HSPC\n$ iris start HSPC\n$ iris qlist HSPC\n\
         $ iris qlist HSPC\n"
    );

    // The vendor's refusal is quoted.
    fs_err::write(
        a.join("iris-standin/fail"),
        "stop HSPC|Shutdown of HSPC aborted: the instance is busy\n",
    )
    .expect("inject");
    let failed = rig.apply(&rb("iris.stop", ""), &rig.inventory(), &[]);
    assert_eq!(failed.status("s@a"), "failed");
    assert_eq!(
        failed.message("s@a"),
        "exited with code 1: iris.stop: iris stop failed: Shutdown of HSPC aborted: the instance is busy"
    );
}

#[test]
fn a_login_reaches_the_session_on_stdin_and_never_the_disk() {
    let rig = Rig::new(1);
    let secret = "pa55-w0rd-xyz";
    let sum = std::process::Command::new("sh")
        .args(["-c", &format!("printf %s '{secret}' | cksum")])
        .output()
        .expect("cksum");
    let sum = String::from_utf8_lossy(&sum.stdout).into_owned();
    install(
        &rig,
        "a",
        &[
            ("iris-standin/instances/HSPC/password", &sum),
            (
                "iris-standin/instances/HSPC/productions/HSCOMMUNITY",
                "2^HSPC.Production\n",
            ),
        ],
    );
    let rb = "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: s, version: 1.0.0}\n\
              params:\n  pw: {type: secret, required: true}\nsteps:\n\
              - {id: start, module: iris.production_start, on: a, env: {IRIS_PASSWORD: \"{{ params.pw }}\"}, with: {instance: HSPC, namespace: HSCOMMUNITY, production: HSPC.Production, username: _SYSTEM, iris: \"{{ vars.host_root }}/bin/iris\"}}\n";
    let file = rig.dir.path().join("login.yaml");
    fs_err::write(&file, rb).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("apply")
        .arg(&file)
        .arg("-i")
        .arg(rig.inventory())
        .args(["--format", "json", "--state"])
        .arg(rig.dir.path().join("state"))
        .env("RUNBOOK_SECRET_PW", secret)
        .output()
        .expect("runs");
    let run = crate::apply::Applied::from_output(&out, rig.dir.path().join("state"));
    assert_eq!(run.code, 0, "{}\n{:#?}", run.stderr, run.events);
    assert_eq!(run.status("start@a"), "changed");
    let a = rig.root("a");
    assert!(log(&a).starts_with("$ iris session HSPC -U HSCOMMUNITY\n< _SYSTEM\n< ********\n"));
    for root in [rig.dir.path().join("state"), a] {
        for path in crate::apply::all_files(&root) {
            let bytes = fs_err::read(&path).expect("read");
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{} holds the password",
                path.display()
            );
        }
    }
}
