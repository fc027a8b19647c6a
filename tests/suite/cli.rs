//! The binary: commands, exit codes, help.

use crate::support::run;

#[test]
fn validate_accepts_a_good_runbook() {
    let out = run(&[
        "validate",
        "tests/fixtures/demo.yaml",
        "-i",
        "tests/fixtures/demo-inventory.yaml",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "ok: demo-switchover 1.0.0 is valid: 3 phases, 8 steps, 10 actions\n"
    );
}

#[test]
fn invalid_input_exits_2_and_locates_the_problem() {
    let out = run(&[
        "validate",
        "tests/corpus/runbook/unknown-module.yaml",
        "-i",
        "tests/fixtures/demo-inventory.yaml",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("runbook::module::unknown"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("unknown-module.yaml:"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "nothing on stdout when invalid");
}

#[test]
fn a_missing_file_is_invalid_input() {
    let out = run(&[
        "plan",
        "nope.yaml",
        "-i",
        "tests/fixtures/demo-inventory.yaml",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("nope.yaml"), "{}", out.stderr);
}

#[test]
fn diagnostics_as_json_lines() {
    let out = run(&[
        "validate",
        "tests/corpus/runbook/unknown-module.yaml",
        "-i",
        "tests/fixtures/demo-inventory.yaml",
        "--diagnostics",
        "json",
    ]);
    assert_eq!(out.code, 2);
    let first: serde_json::Value =
        serde_json::from_str(out.stderr.lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["code"], "runbook::module::unknown");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(9), Some(17))
    );
    let last: serde_json::Value =
        serde_json::from_str(out.stderr.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["type"], "summary");
}

#[test]
fn help_has_examples_and_exit_codes() {
    let out = run(&["--help"]);
    assert_eq!(out.code, 0);
    for needle in [
        "validate",
        "plan",
        "graph",
        "Examples:",
        "Exit codes: 0 ok, 1 a run failed, 2 invalid input",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle} missing from help:\n{}",
            out.stdout
        );
    }
}

#[test]
fn modules_lists_the_generic_modules_and_describes_one() {
    let out = run(&["modules"]);
    assert_eq!(out.code, 0);
    for name in [
        "assert", "command", "copy", "manual", "script", "shell", "template", "wait_for",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{}",
            out.stdout
        );
    }
    let out = run(&["modules", "copy"]);
    assert!(
        out.stdout.contains("dest") && out.stdout.contains("required"),
        "{}",
        out.stdout
    );
    assert_eq!(run(&["modules", "cpy"]).code, 2);
}

#[test]
fn graph_formats() {
    let dot = run(&[
        "graph",
        "tests/fixtures/demo.yaml",
        "-i",
        "tests/fixtures/demo-inventory.yaml",
    ]);
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    assert!(dot.stdout.starts_with("digraph \"demo-switchover\""));
    assert!(dot.stdout.contains("promote@beta"));
    let mermaid = run(&[
        "graph",
        "tests/fixtures/demo.yaml",
        "-i",
        "tests/fixtures/demo-inventory.yaml",
        "--format",
        "mermaid",
    ]);
    assert!(mermaid.stdout.starts_with("flowchart LR"));
}

/// Each platform's built-in runbooks validate against that platform's example inventory: the GT.M
/// ones against the lab, the IRIS ones against `iris-prod.yaml` with their example parameters.
#[test]
fn built_in_runbooks_validate_against_their_example_inventory() {
    let dir = crate::support::root().join("runbooks");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("runbooks/ is readable") {
            let path = entry.expect("entry").path();
            if path.ends_with("runbooks/blocks") {
                // Blocks are not runbooks: each is validated through the built-ins that use
                // it (builtin::blocks's tests check that every block is used).
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no built-in runbooks found");
    for file in files {
        let rel = file
            .strip_prefix(crate::support::root())
            .expect("under root")
            .display()
            .to_string();
        let mut args = vec!["validate".to_owned(), rel.clone(), "-i".to_owned()];
        if let Some((_, extra)) = EXAMPLE_ARGS.iter().find(|(f, _)| *f == rel) {
            args.pop();
            args.extend(extra.iter().map(|a| (*a).to_owned()));
        } else if rel.starts_with("runbooks/iris/") {
            let name = file.file_stem().expect("a name").to_string_lossy();
            args.push("inventory/iris-prod.yaml".to_owned());
            args.push("--params".to_owned());
            args.push(format!("inventory/iris-prod.{name}.params.yaml"));
        } else {
            args.push("inventory/lab.yaml".to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert_eq!(out.code, 0, "{rel}:\n{}", out.stderr);
    }
}

/// Built-in runbooks whose roles the GT.M lab inventory does not have, or that have required
/// parameters: the example inventory and the values they validate with.
const EXAMPLE_ARGS: &[(&str, &[&str])] = &[
    (
        "runbooks/gtm/rolling-upgrade.yaml",
        &[
            "-i",
            "inventory/gtm-prod.yaml",
            "-e",
            "upgrade_cmd=/data/gtm/upgrade/apply-release.sh",
        ],
    ),
    (
        "runbooks/connections/communities-recovery.yaml",
        &[
            "-i",
            "inventory/connections-prod.yaml",
            "-e",
            "data_loss=communities",
            "-e",
            "features=activities,blogs,files,wikis",
            "-e",
            "allow=10.30.9.5,10.30.1.0/24,10.30.2.0/24",
        ],
    ),
];

#[test]
fn example_inventories_in_every_format_load() {
    for inventory in [
        "inventory/lab.yaml",
        "inventory/ansible-hosts.ini",
        "inventory/ansible-hosts.yaml",
    ] {
        let out = run(&[
            "validate",
            "tests/corpus/runbook-ok/minimal.yaml",
            "-i",
            inventory,
        ]);
        assert_eq!(out.code, 0, "{inventory}:\n{}", out.stderr);
    }
}

#[test]
fn every_diagnostic_code_is_documented() {
    let doc = std::fs::read_to_string(crate::support::root().join("docs/diagnostics.md"))
        .expect("docs/diagnostics.md");
    let missing: Vec<&str> = runbook::diagnostic::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !doc.contains(&format!("## `{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a section in docs/diagnostics.md: {missing:?}"
    );
}

/// An Ansible inventory whose variables live in `group_vars/` and `host_vars/`, as most do: the
/// switchover validates with them, and fails on the missing `gtm_dir` without them.
#[test]
fn ansible_group_vars_and_host_vars_reach_the_runbook() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        fs_err::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs_err::write(path, text).expect("write");
    };
    write(
        "hosts.ini",
        "[gtm]\ngtm-a ansible_host=127.0.0.2 runbook_roles=originating\ngtm-b ansible_host=127.0.0.3 runbook_roles=replicating\n",
    );
    let inventory = dir.path().join("hosts.ini").display().to_string();
    let args = [
        "validate",
        "runbooks/gtm/switchover.yaml",
        "-i",
        inventory.as_str(),
    ];
    let without = run(&args);
    assert_eq!(without.code, 2, "{}", without.stderr);
    assert!(without.stderr.contains("gtm_dir"), "{}", without.stderr);
    write(
        "group_vars/all.yml",
        "gtm_dist: /usr/lib/x86_64-linux-gnu/fis-gtm/V7.0-005_x86_64\n",
    );
    write("group_vars/gtm/paths.yml", "gtm_dir: /srv/gtm\n");
    write("group_vars/gtm/repl.yaml", "repl_port: 4000\n");
    write("host_vars/gtm-a.yml", "gtm_instance: A\n");
    write("host_vars/gtm-b", "gtm_instance: B\n");
    let with = run(&args);
    assert_eq!(with.code, 0, "{}", with.stderr);
}

/// An inventory with errors does not hide the runbook's own: its structure, `-e` values and
/// literal argument types are reported in the same run.
#[test]
fn a_broken_inventory_does_not_hide_the_runbooks_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runbook = dir.path().join("rb.yaml");
    fs_err::write(
        &runbook,
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: t, version: 1.0.0}\nsteps:\n  - {id: a, module: wait_for, on: a, with: {path: /tmp/x, timeout: 5 minutes}}\n  - {id: d, module: shell, on: a, needs: [zz], with: {cmd: x}}\n  - {id: e, module: shel, on: a, with: {cmd: x}}\n",
    )
    .expect("write");
    let inventory = dir.path().join("inv.yaml");
    fs_err::write(&inventory, "kind: Inventory\nhosts:\n  a: {port: abc}\n").expect("write");
    let out = run(&[
        "validate",
        runbook.to_str().expect("utf-8"),
        "-i",
        inventory.to_str().expect("utf-8"),
        "-e",
        "nosuch=1",
        "--diagnostics",
        "json",
    ]);
    assert_eq!(out.code, 2);
    for code in [
        "runbook::schema::wrong_type",
        "runbook::module::arg_type",
        "runbook::step::unknown_need",
        "runbook::module::unknown",
        "runbook::param::unknown",
    ] {
        assert!(out.stderr.contains(code), "{code} in:\n{}", out.stderr);
    }
}
