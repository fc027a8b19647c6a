//! Reusable blocks (`uses:` + `with:`): the expansion, its diagnostics through the chain of
//! `uses:`, and a run over the lab that uses a block twice and resumes on namespaced ids.
//! The hostile blocks (a cycle, a block using itself, a fan-out of a million steps, every
//! argument error at once) are corpus files: `tests/corpus/runbook/*blocks*.yaml`.

use std::path::Path;
use std::process::Command;

use runbook::compile::{self, Overrides};
use runbook::diagnostic::{Code, Diagnostic, Diagnostics};
use runbook::inventory::Inventory;
use runbook::parse::parse_runbook;
use runbook::plan::Plan;
use runbook_modules::Registry;

use crate::apply::Rig;
use crate::support::{INVENTORY, root};

/// Parses the runbook at `path` (its blocks relative to it) and compiles it against the
/// suite's inventory; every diagnostic, localized, on failure.
fn compile_path(path: &Path) -> Result<Plan, Vec<Diagnostic>> {
    let text = fs_err::read_to_string(path).expect("the runbook");
    let parsed = parse_runbook(&path.display().to_string(), text);
    let mut all = Diagnostics::default();
    all.extend(parsed.diagnostics.0);
    let inventory = Inventory::parse("inventory.yaml", INVENTORY.to_owned()).expect("inventory");
    if let Some(runbook) = parsed.runbook {
        let input = compile::Input {
            runbook: &runbook,
            inventory: &inventory,
            registry: &Registry::builtin(),
            overrides: &Overrides::default(),
            history: None,
        };
        match compile::compile(input) {
            Ok(plan) if all.is_empty() => return Ok(plan),
            Ok(_) => {}
            Err(more) => all.extend(more),
        }
    }
    Err(all.sorted())
}

fn fixture(name: &str) -> std::path::PathBuf {
    root().join("tests/fixtures/blocks").join(name)
}

/// Writes `files` (relative path, text) into a new directory.
fn scratch(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        fs_err::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs_err::write(path, text).expect("write");
    }
    dir
}

/// `(code, file name, line, column)` of each diagnostic, the file relative to `dir`.
fn located(ds: &[Diagnostic], dir: &Path) -> Vec<(Code, String, usize, usize)> {
    ds.iter()
        .map(|d| {
            let (file, line, col) = d.location().unwrap_or_else(|| panic!("no location: {d:?}"));
            let file = Path::new(&file)
                .strip_prefix(dir)
                .map_or(file.clone(), |p| p.display().to_string());
            (d.code, file, line, col)
        })
        .collect()
}

#[test]
fn a_block_used_twice_gets_namespaced_ids_its_own_registers_and_its_origin() {
    let plan = compile_path(&fixture("twice.yaml")).unwrap_or_else(|ds| panic!("{ds:#?}"));
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "mark-a.write",
            "mark-a.check",
            "mark-b.write",
            "mark-b.check",
            "done"
        ]
    );
    let step = |id: &str| plan.steps.iter().find(|s| s.id == id).expect("the step");
    assert_eq!(
        step("mark-a.check").needs,
        ["mark-a.write"],
        "needs inside the block"
    );
    assert_eq!(
        step("done").needs,
        [
            "mark-a.write",
            "mark-a.check",
            "mark-b.write",
            "mark-b.check"
        ],
        "a `uses:` id stands for all of its steps"
    );
    assert_eq!(
        step("mark-a.write").register.as_deref(),
        Some("mark_a__written")
    );
    assert_eq!(
        step("mark-b.write").register.as_deref(),
        Some("mark_b__written")
    );
    assert_eq!(
        step("mark-b.check").when.as_deref(),
        Some("mark_b__written.rc == 0")
    );
    let origin = step("mark-b.check").origin.as_ref().expect("from a block");
    assert!(origin.file.ends_with("blocks/mark.yaml"), "{origin:?}");
    assert_eq!(origin.uses, ["mark-b"]);
    assert!(step("done").origin.is_none(), "the runbook's own step");

    let text = runbook::plan::render_text(&plan);
    assert!(
        text.contains("mark-b.write") && text.contains("from: ") && text.contains("(uses: mark-b)"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&runbook::plan::render_json(&plan)).expect("JSON");
    let steps = json["steps"].as_array().expect("steps");
    let b = steps
        .iter()
        .find(|s| s["id"] == "mark-b.write")
        .expect("the step");
    assert_eq!(b["block"]["uses"], serde_json::json!(["mark-b"]));
    assert!(
        b["block"]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("blocks/mark.yaml"))
    );
    let done = steps.iter().find(|s| s["id"] == "done").expect("the step");
    assert!(done.get("block").is_none(), "{done}");
    let dot = runbook::plan::render_graph(&plan, runbook::plan::GraphFormat::Dot);
    assert!(
        dot.contains("tooltip=\"from ") && dot.contains("(uses: mark-a)"),
        "{dot}"
    );
}

#[test]
fn nested_blocks_prefix_twice_and_keep_the_whole_chain() {
    let plan = compile_path(&fixture("nested.yaml")).unwrap_or_else(|ds| panic!("{ds:#?}"));
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "p.first.write",
            "p.first.check",
            "p.second.write",
            "p.second.check"
        ]
    );
    let second = &plan.steps[3];
    assert_eq!(
        second.origin.as_ref().expect("origin").uses,
        ["p", "second"]
    );
    assert_eq!(second.needs, ["p.second.write"]);
}

const MARK: &str = "\
apiVersion: runbook/v1
kind: Block
params:
  target: {type: string, required: true}
  n: {type: int, default: 1}
steps:
  - id: go
    module: shell
    on: \"{{ params.target }}\"
    with: {cmd: \"echo {{ params.n }}\"}
";

fn runbook(steps: &str) -> String {
    format!(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: t, version: 1.0.0}}\nroles:\n  originating: 1\n  replicating: 1\nphases:\n  - name: main\n    steps:\n{steps}"
    )
}

#[test]
fn an_error_inside_a_nested_block_points_at_its_file_and_names_the_chain() {
    let inner = "\
apiVersion: runbook/v1
kind: Block
steps:
  - id: bad
    module: shel
    on: all
    with: {cmd: \"true\"}
";
    let outer = "\
apiVersion: runbook/v1
kind: Block
steps:
  - uses: inner.yaml
    id: in
";
    let rb = runbook("      - uses: blocks/outer.yaml\n        id: out\n");
    let dir = scratch(&[
        ("rb.yaml", &rb),
        ("blocks/outer.yaml", outer),
        ("blocks/inner.yaml", inner),
    ]);
    let ds = compile_path(&dir.path().join("rb.yaml")).expect_err("an unknown module");
    assert_eq!(
        located(&ds, dir.path()),
        [(Code::ModuleUnknown, "blocks/inner.yaml".to_owned(), 5, 13)]
    );
    let chain: Vec<(String, usize)> = ds[0]
        .related
        .iter()
        .map(|r| {
            let (file, line, _) = r.location().expect("located");
            let file = Path::new(&file)
                .strip_prefix(dir.path())
                .expect("in dir")
                .display();
            (file.to_string(), line)
        })
        .collect();
    assert_eq!(
        chain,
        [
            ("blocks/outer.yaml".to_owned(), 4),
            ("rb.yaml".to_owned(), 10)
        ],
        "the `uses:` that led there, innermost first"
    );
    assert!(
        ds[0].related[0].message.contains("inner.yaml"),
        "{:?}",
        ds[0].related
    );
}

#[test]
fn argument_and_id_errors_of_every_use_are_reported_at_once() {
    let rb = runbook(
        "      - {uses: blocks/mark.yaml, id: x, with: {target: originating, n: lots}}\n\
         \x20     - {uses: blocks/mark.yaml, id: x, with: {target: originating}}\n\
         \x20     - {uses: blocks/mark.yaml, id: y, with: {targte: originating}}\n\
         \x20     - {uses: blocks/mark.yaml, id: z, with: {target: originating, secret: 1}}\n",
    );
    let dir = scratch(&[("rb.yaml", &rb), ("blocks/mark.yaml", MARK)]);
    let ds = compile_path(&dir.path().join("rb.yaml")).expect_err("errors");
    let codes: Vec<(Code, usize)> = located(&ds, dir.path())
        .into_iter()
        .map(|(c, _, line, _)| (c, line))
        .collect();
    assert_eq!(
        codes,
        [
            (Code::ParamInvalid, 10),
            (Code::DuplicateId, 11),
            (Code::ParamMissing, 12),
            (Code::ParamUnknown, 12),
            (Code::ParamUnknown, 13),
        ],
        "{ds:#?}"
    );
    assert!(
        ds[3]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("`target`")),
        "{:?}",
        ds[3].help
    );
}

#[test]
fn ids_that_clash_once_expanded_are_duplicates() {
    let rb = runbook(
        "      - {uses: blocks/mark.yaml, id: m, with: {target: originating}}\n\
         \x20     - {id: m.go, module: shell, on: originating, with: {cmd: \"true\"}}\n",
    );
    let dir = scratch(&[("rb.yaml", &rb), ("blocks/mark.yaml", MARK)]);
    let ds = compile_path(&dir.path().join("rb.yaml")).expect_err("a clash");
    assert!(ds.iter().any(|d| d.code == Code::DuplicateId), "{ds:#?}");
}

#[test]
fn blocks_nested_deeper_than_the_limit_stop_with_one_diagnostic() {
    let depth = runbook::parse::blocks::MAX_DEPTH + 4;
    let mut files: Vec<(String, String)> = (0..depth)
        .map(|i| {
            (
                format!("b{i}.yaml"),
                format!(
                    "apiVersion: runbook/v1\nkind: Block\nsteps:\n  - {{uses: b{}.yaml, id: n}}\n",
                    i + 1
                ),
            )
        })
        .collect();
    files.push((
        format!("b{depth}.yaml"),
        "apiVersion: runbook/v1\nkind: Block\nsteps:\n  - {id: s, module: shell, on: all, with: {cmd: \"true\"}}\n".to_owned(),
    ));
    let rb = runbook("      - {uses: b0.yaml, id: n}\n");
    files.push(("rb.yaml".to_owned(), rb));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let dir = scratch(&refs);
    let ds = compile_path(&dir.path().join("rb.yaml")).expect_err("too deep");
    let deep: Vec<_> = ds.iter().filter(|d| d.code == Code::BlockTooDeep).collect();
    assert_eq!(deep.len(), 1, "{ds:#?}");
    let (file, _, _) = deep[0].location().expect("located");
    assert!(
        file.ends_with("b15.yaml"),
        "the 17th `uses:` is in the 16th block: {file}"
    );
    assert_eq!(
        deep[0].related.len(),
        runbook::parse::blocks::MAX_DEPTH,
        "the whole chain"
    );
}

/// A runbook that uses a block twice runs over the lab, waits for a manual step inside a third
/// block (`gate-b.confirm`), is approved by that namespaced id, and resumes: the first block's
/// steps do not run again, every word is written once.
#[test]
fn a_run_uses_a_block_twice_and_resumes_on_namespaced_ids() {
    let rig = Rig::with_config(1, |c| c.role("a", "originating"));
    let blocks = rig.dir.path().join("blocks");
    fs_err::create_dir_all(&blocks).expect("mkdir");
    for name in ["mark.yaml", "gate.yaml"] {
        fs_err::copy(fixture("blocks").join(name), blocks.join(name)).expect("copy");
    }
    let marks = rig.root("a").join("marks");
    let rb = format!(
        "apiVersion: runbook/v1
kind: Runbook
metadata: {{name: blocks-e2e, version: 1.0.0}}
roles:
  originating: 1
steps:
  - uses: blocks/mark.yaml
    id: mark-a
    with: {{target: originating, file: {marks}, word: first}}
  - uses: blocks/gate.yaml
    id: gate-b
    with: {{what: the first mark}}
  - uses: blocks/mark.yaml
    id: mark-b
    with: {{target: originating, file: {marks}, word: second}}
",
        marks = marks.display()
    );
    let file = rig.dir.path().join("twice.yaml");
    fs_err::write(&file, rb).expect("write");
    let run = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(run.code, 3, "awaiting approval\n{}", run.stderr);
    assert_eq!(run.status("mark-a.write@a"), "changed");
    assert_eq!(run.status("mark-a.check@a"), "changed");
    assert_eq!(run.status("gate-b.confirm@controller"), "awaiting_approval");
    assert_eq!(run.status("mark-b.write@a"), "blocked");
    let waiting = run
        .events
        .iter()
        .find(|e| e["event"] == "awaiting_approval")
        .expect("an approval request");
    assert_eq!(waiting["instructions"], "Check the first mark.");
    run.approve("gate-b.confirm", "the first mark is there");

    let resumed = rig.apply_file(&file, &rig.inventory(), &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(
        resumed.events[0]["run_id"], run.events[0]["run_id"],
        "the same run"
    );
    let order = resumed.start_order();
    assert!(
        !order.iter().any(|a| a.starts_with("mark-a.")),
        "nothing of the first use runs twice: {order:?}"
    );
    assert_eq!(resumed.status("mark-b.write@a"), "changed");
    assert_eq!(resumed.status("mark-b.check@a"), "changed");
    assert_eq!(
        fs_err::read_to_string(&marks).expect("the marks"),
        "first\nsecond\n",
        "each use wrote its own word, once"
    );

    // The journal knows the steps by their namespaced ids.
    let run_id = run.events[0]["run_id"].as_str().expect("run id");
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["status", run_id, "--state"])
        .arg(&run.state)
        .output()
        .expect("status");
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.contains("gate-b.confirm") && status.contains("mark-b.check"),
        "{status}"
    );
}

#[test]
fn a_block_of_phases_keeps_its_outage_irreversible_and_freeze_markers() {
    let block = "\
apiVersion: runbook/v1
kind: Block
params:
  old: {type: string, required: true}
  new: {type: string, required: true}
phases:
  - name: prepare
    steps:
      - {id: check, module: shell, on: \"{{ params.new }}\", with: {cmd: \"true\"}}
  - name: switch
    outage: true
    steps:
      - {id: stop, module: shell, on: \"{{ params.old }}\", freeze: start, with: {cmd: \"true\"}}
      - {id: promote, module: shell, on: \"{{ params.new }}\", irreversible: true, freeze: end, with: {cmd: \"true\"}}
";
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
roles:
  originating: 1
  replicating: 1
phases:
  - uses: blocks/switch.yaml
    id: over
    with: {old: originating, new: replicating}
  - name: after
    steps:
      - {id: report, module: shell, on: originating, with: {cmd: \"true\"}}
";
    let dir = scratch(&[("rb.yaml", rb), ("blocks/switch.yaml", block)]);
    let plan = compile_path(&dir.path().join("rb.yaml")).unwrap_or_else(|ds| panic!("{ds:#?}"));
    let phases: Vec<(&str, bool)> = plan
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.outage))
        .collect();
    assert_eq!(
        phases,
        [
            ("over.prepare", false),
            ("over.switch", true),
            ("after", false)
        ]
    );
    let step = |id: &str| plan.steps.iter().find(|s| s.id == id).expect("the step");
    assert!(step("over.promote").irreversible);
    assert_eq!(step("over.stop").freeze, Some(runbook::ast::Freeze::Start));
    assert_eq!(step("over.promote").freeze, Some(runbook::ast::Freeze::End));
    assert_eq!(plan.phases[step("over.stop").phase].name, "over.switch");
    // The targets came from the arguments: the old primary stops, the new one is promoted.
    let hosts = |id: &str| -> Vec<String> {
        step(id)
            .hosts
            .iter()
            .map(|h| h.map_or("controller".to_owned(), |h| plan.hosts[h].name.clone()))
            .collect()
    };
    assert_eq!(hosts("over.stop"), ["alpha"]);
    assert_eq!(hosts("over.promote"), ["beta"]);
    // A block of phases goes in `phases:`, not in `steps:`.
    let misplaced = rb.replace(
        "  - uses: blocks/switch.yaml\n    id: over\n    with: {old: originating, new: replicating}\n",
        "",
    )
    .replace(
        "      - {id: report",
        "      - {uses: blocks/switch.yaml, id: over, with: {old: originating, new: replicating}}\n      - {id: report",
    );
    fs_err::write(dir.path().join("rb.yaml"), misplaced).expect("write");
    let ds = compile_path(&dir.path().join("rb.yaml")).expect_err("wrong kind");
    assert_eq!(
        located(&ds, dir.path()),
        [(Code::BlockKind, "rb.yaml".to_owned(), 10, 16)],
        "{ds:#?}"
    );
}

/// `when:` on a `uses:` guards every step of the block, `freeze: false` drops its freeze
/// markers (the second switchover of a rolling upgrade), and `include:` leaves a step out of
/// the expansion before the run (with the `needs:` that named it).
#[test]
fn uses_when_freeze_false_and_include_shape_the_expansion() {
    let block = "\
apiVersion: runbook/v1
kind: Block
params:
  old: {type: string, required: true}
  new: {type: string, required: true}
  hold: {type: bool, default: false}
phases:
  - name: switch
    outage: true
    steps:
      - {id: hold, module: manual, include: params.hold, with: {instructions: hold}}
      - {id: stop, module: shell, on: \"{{ params.old }}\", freeze: start, needs: [hold], with: {cmd: \"true\"}}
      - {id: promote, module: shell, on: \"{{ params.new }}\", when: \"params.hold or true\", freeze: end, with: {cmd: \"true\"}}
";
    let rb = "\
apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, version: 1.0.0}
params:
  back: {type: bool, default: false}
roles:
  originating: 1
  replicating: 1
phases:
  - uses: blocks/switch.yaml
    id: over
    with: {old: originating, new: replicating}
  - uses: blocks/switch.yaml
    id: back
    when: params.back
    freeze: false
    with: {old: replicating, new: originating, hold: true}
";
    let dir = scratch(&[("rb.yaml", rb), ("blocks/switch.yaml", block)]);
    let plan = compile_path(&dir.path().join("rb.yaml")).unwrap_or_else(|ds| panic!("{ds:#?}"));
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "over.stop",
            "over.promote",
            "back.hold",
            "back.stop",
            "back.promote"
        ],
        "`over` has no hold: not a skipped step, no step at all"
    );
    let step = |id: &str| plan.steps.iter().find(|s| s.id == id).expect("the step");
    assert!(
        step("over.stop").needs.is_empty(),
        "the need of a left-out step is dropped"
    );
    assert!(
        !step("back.stop").needs.is_empty(),
        "{:?}",
        step("back.stop").needs
    );
    // One freeze: the first use's; the second's markers are gone.
    assert_eq!(step("over.stop").freeze, Some(runbook::ast::Freeze::Start));
    assert_eq!(step("over.promote").freeze, Some(runbook::ast::Freeze::End));
    assert_eq!(step("back.stop").freeze, None);
    assert_eq!(step("back.promote").freeze, None);
    // The caller's condition on every step of the second use, and-ed with the step's own.
    assert_eq!(step("over.stop").when, None);
    assert_eq!(step("back.hold").when.as_deref(), Some("params.back"));
    assert_eq!(
        step("back.promote").when.as_deref(),
        Some("(params.back) and ((true) or true)")
    );
    // `include:` must be decided before the run: a template argument is refused, located.
    let undecided = rb.replace("hold: true}", "hold: \"{{ params.back }}\"}");
    fs_err::write(dir.path().join("rb.yaml"), undecided).expect("write");
    let ds = compile_path(&dir.path().join("rb.yaml")).expect_err("not decided");
    assert_eq!(
        located(&ds, dir.path()),
        [(Code::InvalidValue, "blocks/switch.yaml".to_owned(), 11, 45)],
        "{ds:#?}"
    );
}

/// The controller is killed while a step of the second use of a block runs on the host, and the
/// host side of that action too (so no record says how it ended): the next apply reports the
/// namespaced action `b.slow@a` in doubt, `runbook resolve RUN b.slow@a --redo` decides it, and
/// the run finishes with every word written once.
#[test]
fn a_kill_inside_a_block_resumes_or_is_resolved_by_its_namespaced_id() {
    use std::io::{BufRead, BufReader};

    let rig = Rig::new(1);
    let out = rig.root("a").join("words");
    let block = "\
apiVersion: runbook/v1
kind: Block
params:
  word: {type: string, required: true}
  file: {type: path, required: true}
steps:
  - id: slow
    module: shell
    on: a
    with: {cmd: \"sleep 2; echo {{ params.word }} >> {{ params.file }}\"}
";
    let rb = format!(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: blocks-kill, version: 1.0.0}}\nsteps:\n  - {{uses: blocks/slow.yaml, id: a, with: {{word: one, file: {f}}}}}\n  - {{uses: blocks/slow.yaml, id: b, with: {{word: two, file: {f}}}}}\n",
        f = out.display()
    );
    let file = rig.dir.path().join("kill.yaml");
    fs_err::create_dir_all(rig.dir.path().join("blocks")).expect("mkdir");
    fs_err::write(rig.dir.path().join("blocks/slow.yaml"), block).expect("write");
    fs_err::write(&file, rb).expect("write");
    let state = rig.dir.path().join("state");

    let mut child = rig.spawn_apply(&file);
    let stdout = child.stdout.take().expect("piped");
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let event: serde_json::Value = serde_json::from_str(&line.expect("a line")).expect("JSON");
        if event["event"] == "action_started" && event["action"] == "b.slow@a" {
            // Once the command runs on the host (its wrapper's record is there), not before.
            let actions = rig.root("a").join(".runbook/actions");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !crate::apply::all_files(&actions)
                .iter()
                .any(|p| crate::apply::is_pgid_record(p, Some("b.slow@a")))
            {
                assert!(std::time::Instant::now() < deadline, "b.slow@a never ran");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            child.kill().expect("kill -9");
            killed = true;
            break;
        }
    }
    child.wait().expect("wait");
    assert!(killed, "the second use's step started");
    let crashed = crate::crash::crash_host_side(&rig, "b.slow@a");
    assert!(crashed, "the host side of b.slow@a was found and killed");

    let mut resolved = false;
    let mut last = None;
    for _ in 0..3 {
        let run = rig.apply_file(&file, &rig.inventory(), &[]);
        let unknown: Vec<String> = run
            .events
            .iter()
            .filter(|e| e["event"] == "action_finished" && e["status"] == "unknown")
            .filter_map(|e| e["action"].as_str().map(str::to_owned))
            .collect();
        assert!(
            !run.start_order().iter().any(|a| a.starts_with("a.")),
            "the first use does not run again"
        );
        if run.code == 0 {
            last = Some(run);
            break;
        }
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert_eq!(unknown, ["b.slow@a"], "only the killed action is in doubt");
        let written = fs_err::read_to_string(&out).unwrap_or_default();
        let done = written.lines().any(|l| l == "two");
        let run_id = run.events[0]["run_id"].as_str().expect("run id");
        let res = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["resolve", run_id, "b.slow@a"])
            .arg(if done { "--done" } else { "--redo" })
            .args(["--by", "test", "--state"])
            .arg(&state)
            .output()
            .expect("resolve");
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        resolved = true;
    }
    let last = last.expect("the run finished");
    assert_eq!(
        resolved, crashed,
        "an action whose host side died is decided by `resolve`, on its namespaced id"
    );
    assert_eq!(
        fs_err::read_to_string(&out).expect("the words"),
        "one\ntwo\n",
        "each word once (resolved by hand: {resolved}); statuses {:?}",
        last.statuses()
    );
}
