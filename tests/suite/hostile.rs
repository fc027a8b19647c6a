//! Hostile inputs too large to commit: generated here, run through the real binary under the
//! corpus's memory limit and hang guard (`support::run_bounded`), and expected to be refused
//! with exit code 2 and a located diagnostic of the right code, or, for the large valid ones,
//! to validate. The small hostile files live in `tests/corpus/` (`hostile-*`).
//!
//! Each case here was a crash or a runaway before the input limits (docs/runbook-format.md,
//! "Input limits"): a stack overflow (exit 134), a panic in the report printer (exit 101),
//! memory growing by gigabytes, or a read that never ended.

use std::fmt::Write as _;
use std::path::Path;

use crate::corpus::located;
use crate::support::{MEMORY_LIMIT, Output, run_bounded};

const INVENTORY: &str = "tests/fixtures/demo-inventory.yaml";
const MINIMAL_RUNBOOK: &str = "tests/corpus/runbook-ok/minimal.yaml";

const HEADER: &str =
    "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: hostile, version: 1.0.0}\n";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a generated input");
    path.display().to_string()
}

fn validate(runbook: &str, inventory: &str) -> Output {
    run_bounded(&["validate", runbook, "-i", inventory], MEMORY_LIMIT)
}

/// Exit code 2, no panic, and a diagnostic with `code` at `file:line:col` (`col` 0: any column).
fn assert_refused(out: &Output, file: &str, code: &str, line: usize, col: usize) {
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("[killed"),
        "{file}: crashed:\n{}",
        tail(&out.stderr)
    );
    assert_eq!(out.code, 2, "{file}: exit code\n{}", tail(&out.stderr));
    let found = located(&out.stderr);
    let at = format!("{file}:{line}:");
    assert!(
        found.iter().any(|(c, place)| c == code
            && place.starts_with(&at)
            && (col == 0 || place == &format!("{at}{col}"))),
        "{file}: expected {code} at {line}:{col}, found {found:?}\n{}",
        tail(&out.stderr)
    );
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn step(out: &mut String, id: &str, rest: &str) {
    let _ = writeln!(
        out,
        "      - id: {id}\n        module: shell\n        on: all\n        with: {{cmd: \"true\"}}{rest}"
    );
}

#[test]
fn a_hundred_thousand_steps_validate_under_the_memory_limit() {
    // Ten phases; every step registers its output and runs only if the one before succeeded;
    // one in ten reads the previous output in its command and `needs` it explicitly; each
    // phase ends with an `always` step. A 90,000-step runbook overflowed the stack (a recursive
    // cycle search), and the ancestor matrix alone was 10 GB at this size.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = format!("{HEADER}phases:\n");
    for p in 0..10 {
        let _ = writeln!(text, "  - name: p{p}\n    steps:");
        for k in 0..10_000 {
            let i: usize = p * 10_000 + k;
            let id = format!("s{i}");
            let mut rest = format!("\n        register: r{i}");
            if i > 0 {
                let _ = write!(rest, "\n        when: r{}.rc == 0", i - 1);
            }
            if i > 0 && i.is_multiple_of(10) {
                let _ = writeln!(
                    text,
                    "      - id: {id}\n        module: shell\n        on: all\n        needs: [s{}]\n        register: r{i}\n        with: {{cmd: \"echo {{{{ r{}.stdout }}}}\"}}",
                    i - 1,
                    i - 1
                );
                continue;
            }
            step(&mut text, &id, &rest);
        }
        let _ = writeln!(text, "    always:");
        step(&mut text, &format!("report{p}"), "");
    }
    let file = write(dir.path(), "big.yaml", &text);
    let out = validate(&file, INVENTORY);
    assert_eq!(out.code, 0, "{}", tail(&out.stderr));
    assert!(
        out.stdout.contains("10 phases, 100010 steps"),
        "{}",
        out.stdout
    );
}

#[test]
fn shapes_that_grew_with_the_square_of_the_steps_stay_within_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 20,000 phases of one step (every phase looked at every step).
    let mut phases = format!("{HEADER}phases:\n");
    for p in 0..20_000 {
        let _ = writeln!(phases, "  - name: p{p}\n    steps:");
        step(&mut phases, &format!("s{p}"), "");
    }
    // 10,000 main steps and 10,000 `always` steps (an edge from every main to every handler:
    // 2.5 GB at half this size).
    let mut handlers = format!("{HEADER}phases:\n  - name: main\n    steps:\n");
    for i in 0..10_000 {
        step(&mut handlers, &format!("s{i}"), "");
    }
    handlers.push_str("    always:\n");
    for i in 0..10_000 {
        step(&mut handlers, &format!("h{i}"), "");
    }
    // 20,000 per-host steps, each registering and reading the first output (every action's
    // context held every register).
    let mut registers =
        format!("{HEADER}phases:\n  - name: main\n    order: per_host\n    steps:\n");
    step(&mut registers, "s0", "\n        register: r0");
    for i in 1..20_000 {
        let _ = writeln!(
            registers,
            "      - id: s{i}\n        module: shell\n        on: all\n        register: r{i}\n        with: {{cmd: \"echo {{{{ r0.rc }}}}\"}}"
        );
    }
    for (name, text) in [
        ("phases.yaml", phases),
        ("handlers.yaml", handlers),
        ("registers.yaml", registers),
    ] {
        let file = write(dir.path(), name, &text);
        let out = validate(&file, INVENTORY);
        assert_eq!(out.code, 0, "{name}:\n{}", tail(&out.stderr));
    }
}

#[test]
fn deep_structures_are_refused_where_the_limit_is_crossed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 100,000 nested block sequences (overflowed the stack when the tree was dropped).
    let yaml = format!(
        "{HEADER}vars:\n  deep:\n    {}x\nphases: []\n",
        "- ".repeat(100_000)
    );
    let file = write(dir.path(), "deep.yaml", &yaml);
    assert_refused(
        &validate(&file, INVENTORY),
        &file,
        "runbook::yaml::too_deep",
        6,
        5 + 2 * 126,
    );
    // `when:` chains of 30,000 operators, of every shape that recursed.
    for (name, expression) in [
        ("or", vec!["true"; 30_000].join(" or ")),
        ("not", format!("{}true", "not ".repeat(30_000))),
        ("neg", format!("{}1 > 0", "-".repeat(30_000))),
        ("attr", format!("runbook{} is defined", ".a".repeat(30_000))),
        ("filter", format!("1{} == '1'", "|string".repeat(30_000))),
    ] {
        let mut text = format!("{HEADER}phases:\n  - name: main\n    steps:\n");
        step(&mut text, "a", &format!("\n        when: \"{expression}\""));
        let file = write(dir.path(), &format!("when-{name}.yaml"), &text);
        assert_refused(
            &validate(&file, INVENTORY),
            &file,
            "runbook::template::too_complex",
            11,
            0,
        );
    }
    // An `elif` chain of 20,000 in a command.
    let text = format!(
        "{HEADER}phases:\n  - name: main\n    steps:\n      - id: a\n        module: shell\n        on: all\n        with:\n          cmd: \"{{% if true %}}a{}{{% endif %}}\"\n",
        "{% elif true %}b".repeat(20_000)
    );
    let file = write(dir.path(), "elif.yaml", &text);
    assert_refused(
        &validate(&file, INVENTORY),
        &file,
        "runbook::template::too_complex",
        11,
        0,
    );
    // An INI inventory of 10,000 groups, each the child of the one before: refused at the
    // header of `g128`, the 129th level.
    let mut ini = String::from("[g0]\nalpha ansible_host=127.0.0.2\n");
    for i in 0..10_000 {
        let _ = writeln!(ini, "[g{i}:children]\ng{}", i + 1);
    }
    let file = write(dir.path(), "chain.ini", &ini);
    assert_refused(
        &validate(MINIMAL_RUNBOOK, &file),
        &file,
        "runbook::inventory::group_depth",
        3 + 2 * 128,
        2,
    );
}

#[test]
fn a_diagnostic_past_column_65535_renders() {
    // JSON is YAML: a one-line runbook whose unknown module sits past column 200,000.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut json = String::from(
        r#"{"apiVersion": "runbook/v1", "kind": "Runbook", "metadata": {"name": "j", "version": "1.0.0"}, "phases": [{"name": "main", "steps": ["#,
    );
    for i in 0..3_000 {
        let _ = write!(
            json,
            r#"{{"id": "s{i}", "module": "shell", "on": "all", "with": {{"cmd": "true"}}}}, "#
        );
    }
    let column = json.len() + r#"{"id": "bad", "module": "#.len() + 1;
    json.push_str(r#"{"id": "bad", "module": "nope", "on": "all"}]}]}"#);
    assert!(column > 65_535 * 3);
    let file = write(dir.path(), "one-line.json", &json);
    let out = validate(&file, INVENTORY);
    assert_refused(&out, &file, "runbook::module::unknown", 1, column);
    assert!(
        out.stderr.contains(&format!("[{file}:1:{column}]")),
        "the excerpt is shown, headed by the real position:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.lines().all(|l| l.chars().count() < 400),
        "the long line is shown through a window:\n{}",
        tail(&out.stderr)
    );
}

#[test]
fn devices_pipes_directories_and_oversized_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("inventory.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let fifo = fifo.display().to_string();
    let folder = dir.path().display().to_string();
    // A FIFO that nobody writes to: opening it to read would block for ever.
    assert_refused(
        &validate(MINIMAL_RUNBOOK, &fifo),
        &fifo,
        "runbook::input::not_a_file",
        1,
        1,
    );
    assert_refused(
        &validate("/dev/zero", INVENTORY),
        "/dev/zero",
        "runbook::input::not_a_file",
        1,
        1,
    );
    assert_refused(
        &validate(&folder, INVENTORY),
        &folder,
        "runbook::input::not_a_file",
        1,
        1,
    );
    let out = run_bounded(
        &[
            "validate",
            MINIMAL_RUNBOOK,
            "-i",
            INVENTORY,
            "--params",
            "/dev/urandom",
        ],
        MEMORY_LIMIT,
    );
    assert_refused(&out, "/dev/urandom", "runbook::input::not_a_file", 1, 1);
    // A regular file one byte over 16 MiB (a comment, so only its size is wrong).
    let mut big = String::from("# ");
    big.push_str(&"x".repeat(16 * 1024 * 1024 - 2));
    big.push('\n');
    let file = write(dir.path(), "big.yaml", &big);
    assert_refused(
        &validate(&file, INVENTORY),
        &file,
        "runbook::input::too_large",
        1,
        1,
    );
}
