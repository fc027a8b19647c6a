//! The malformed-input corpus: every file under `tests/corpus/runbook/` and
//! `tests/corpus/inventory/` is rejected by `runbook validate` with exit code 2, without a
//! panic, and with each diagnostic its header announces at the exact line and column.
//!
//! A corpus file starts with a header of comment lines (`#` is a comment in YAML and in INI):
//!
//! ```text
//! # expect: runbook::module::unknown at 9:17     the first line; more `# expect:` lines may follow
//! # inventory: tests/corpus/inventory-ok/x.yaml  runbooks only, optional
//! ```
//!
//! LINE:COL are 1-based (the header lines count) and locate the primary label of a diagnostic
//! with that code, as printed on its `  at FILE:LINE:COL` line. A runbook is validated against
//! the demo inventory unless its header names another (valid ones live in
//! `tests/corpus/inventory-ok/`); an inventory is validated with
//! `tests/corpus/runbook-ok/minimal.yaml`, which is valid against any valid inventory.
//! Paths are relative to the repository root, where the binary runs.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use runbook::diagnostic::Code;

use crate::support::{root, run};

const RUNBOOKS: &str = "tests/corpus/runbook";
const INVENTORIES: &str = "tests/corpus/inventory";
const VALID_INVENTORIES: &str = "tests/corpus/inventory-ok";
const DEFAULT_INVENTORY: &str = "tests/fixtures/demo-inventory.yaml";
const MINIMAL_RUNBOOK: &str = "tests/corpus/runbook-ok/minimal.yaml";

/// The corpus may grow, never silently shrink.
const MIN_RUNBOOKS: usize = 30;
const MIN_INVENTORIES: usize = 15;

/// One `# expect: CODE at LINE:COL` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expectation {
    code: String,
    line: usize,
    col: usize,
}

/// What a corpus file's header says.
#[derive(Debug, Default)]
struct Header {
    expectations: Vec<Expectation>,
    inventory: Option<String>,
}

/// Files of a corpus directory (relative to the repository root), sorted by name.
fn files(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|entry| entry.expect("a directory entry"))
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().map(|n| format!("{dir}/{n}")).collect()
}

/// Reads the leading comment lines of a corpus file.
fn header(text: &str) -> Result<Header, String> {
    let mut out = Header::default();
    let mut lines = text.lines().take_while(|l| l.starts_with('#'));
    match lines.next() {
        Some(first) if first.starts_with("# expect:") => {
            out.expectations.push(expectation(first)?);
        }
        _ => {
            let first = text.lines().next().unwrap_or_default();
            return Err(format!(
                "the first line must be `# expect: CODE at LINE:COL`, found {first:?}"
            ));
        }
    }
    for line in lines {
        if line.starts_with("# expect:") {
            out.expectations.push(expectation(line)?);
        } else if let Some(path) = line.strip_prefix("# inventory:") {
            if out.inventory.is_some() {
                return Err("more than one `# inventory:` line".to_owned());
            }
            out.inventory = Some(path.trim().to_owned());
        }
    }
    Ok(out)
}

/// Parses `# expect: CODE at LINE:COL`, checking that CODE is one the engine defines.
fn expectation(line: &str) -> Result<Expectation, String> {
    let bad = || format!("malformed expectation {line:?}; write `# expect: CODE at LINE:COL`");
    let rest = line.strip_prefix("# expect:").ok_or_else(bad)?.trim();
    let (code, position) = rest.split_once(" at ").ok_or_else(bad)?;
    let (line_no, col) = position.trim().split_once(':').ok_or_else(bad)?;
    let code = code.trim();
    if !Code::ALL.iter().any(|c| c.as_str() == code) {
        return Err(format!("unknown diagnostic code `{code}` in {line:?}"));
    }
    let number = |s: &str| s.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(bad);
    Ok(Expectation {
        code: code.to_owned(),
        line: number(line_no)?,
        col: number(col)?,
    })
}

/// `(code, "FILE:LINE:COL")` of every located diagnostic in human-readable stderr: each
/// `  at FILE:LINE:COL` line paired with the code that heads its report.
fn located(stderr: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut code: Option<&str> = None;
    for line in stderr.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("runbook::") && !trimmed.contains(char::is_whitespace) {
            code = Some(trimmed);
        } else if let Some(place) = line.strip_prefix("  at ") {
            out.push((
                code.unwrap_or("(no code)").to_owned(),
                place.trim().to_owned(),
            ));
        }
    }
    out
}

/// Runs one corpus file and describes everything wrong with the result, if anything.
fn check(file: &str, runbook: &str, inventory: &str, header: &Header) -> Option<String> {
    let out = run(&["validate", runbook, "-i", inventory]);
    let mut problems = Vec::new();
    if out.stderr.contains("panicked") {
        let at = out
            .stderr
            .lines()
            .find(|l| l.contains("panicked"))
            .unwrap_or_default();
        problems.push(format!("the binary panicked: {}", at.trim()));
    }
    if out.code != 2 {
        problems.push(format!("exit code {} instead of 2", out.code));
    }
    let found = located(&out.stderr);
    for e in &header.expectations {
        let place = format!("{file}:{}:{}", e.line, e.col);
        if found
            .iter()
            .any(|(code, at)| *code == e.code && *at == place)
        {
            continue;
        }
        let detail = if !out.stderr.contains(&e.code) {
            "no diagnostic has this code"
        } else if out.stderr.contains(&place) {
            "both appear, but not in the same diagnostic"
        } else {
            "the code appears, at another place"
        };
        problems.push(format!("missing {} at {place} ({detail})", e.code));
    }
    if problems.is_empty() {
        return None;
    }
    let mut report = format!("{file}:\n");
    for p in &problems {
        let _ = writeln!(report, "    - {p}");
    }
    let _ = writeln!(
        report,
        "    command: runbook validate {runbook} -i {inventory}"
    );
    if found.is_empty() {
        let first: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(8)
            .collect();
        let _ = writeln!(
            report,
            "    no located diagnostic; stderr begins:\n      {}",
            first.join("\n      ")
        );
    } else {
        let _ = writeln!(report, "    reported:");
        for (code, at) in &found {
            let _ = writeln!(report, "      {code} at {at}");
        }
    }
    Some(report)
}

#[test]
fn every_malformed_input_is_rejected_with_a_located_diagnostic() {
    let runbooks = files(RUNBOOKS);
    let inventories = files(INVENTORIES);
    let mut failures = Vec::new();

    let cases = runbooks
        .iter()
        .map(|f| (f, true))
        .chain(inventories.iter().map(|f| (f, false)));
    for (file, is_runbook) in cases {
        let text = match fs::read_to_string(root().join(file)) {
            Ok(text) => text,
            Err(e) => {
                failures.push(format!("{file}:\n    - cannot read: {e}\n"));
                continue;
            }
        };
        let header = match header(&text) {
            Ok(h) => h,
            Err(e) => {
                failures.push(format!("{file}:\n    - bad header: {e}\n"));
                continue;
            }
        };
        let failure = if is_runbook {
            let inventory = header.inventory.as_deref().unwrap_or(DEFAULT_INVENTORY);
            if root().join(inventory).is_file() {
                check(file, file, inventory, &header)
            } else {
                Some(format!("{file}:\n    - no inventory file `{inventory}`\n"))
            }
        } else if header.inventory.is_some() {
            Some(format!(
                "{file}:\n    - `# inventory:` is for runbooks only\n"
            ))
        } else {
            check(file, MINIMAL_RUNBOOK, file, &header)
        };
        failures.extend(failure);
    }

    assert!(
        failures.is_empty(),
        "{} of {} corpus files are not rejected as their header says:\n\n{}",
        failures.len(),
        runbooks.len() + inventories.len(),
        failures.join("\n")
    );
    assert!(
        runbooks.len() >= MIN_RUNBOOKS,
        "only {} malformed runbooks in {RUNBOOKS}, expected at least {MIN_RUNBOOKS}",
        runbooks.len()
    );
    assert!(
        inventories.len() >= MIN_INVENTORIES,
        "only {} malformed inventories in {INVENTORIES}, expected at least {MIN_INVENTORIES}",
        inventories.len()
    );
    assert!(
        inventories.iter().any(|f| Path::new(f)
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("ini"))),
        "the inventory corpus has no Ansible INI file"
    );
}

/// The helpers the corpus relies on are valid, so that every error a corpus case reports comes
/// from the malformed file itself.
#[test]
fn corpus_helpers_are_valid() {
    let mut inventories = files(VALID_INVENTORIES);
    inventories.push(DEFAULT_INVENTORY.to_owned());
    for inventory in &inventories {
        let out = run(&["validate", MINIMAL_RUNBOOK, "-i", inventory]);
        assert_eq!(
            out.code, 0,
            "{MINIMAL_RUNBOOK} with {inventory} should be valid:\n{}",
            out.stderr
        );
    }
}

#[test]
fn headers_are_read_strictly() {
    let h = header("# expect: runbook::step::cycle at 3:14\n# inventory: x.yaml\n# expect: runbook::role::count at 1:2\nkind: Runbook\n# expect: runbook::io at 1:1\n")
        .expect("a valid header");
    assert_eq!(
        h.expectations,
        [
            Expectation {
                code: "runbook::step::cycle".into(),
                line: 3,
                col: 14
            },
            Expectation {
                code: "runbook::role::count".into(),
                line: 1,
                col: 2
            },
        ],
        "only the leading comment lines are the header"
    );
    assert_eq!(h.inventory.as_deref(), Some("x.yaml"));
    for bad in [
        "kind: Runbook\n",
        "# inventory: x.yaml\n# expect: runbook::io at 1:1\n",
        "# expect: runbook::nope at 1:1\n",
        "# expect: runbook::io 1:1\n",
        "# expect: runbook::io at 0:1\n",
        "# expect: runbook::io at 1\n",
    ] {
        assert!(header(bad).is_err(), "{bad:?} should be refused");
    }
    let stderr = "runbook::module::unknown\n\n  × unknown module\n  at a.yaml:9:17\n\nrunbook::step::cycle\n  at a.yaml:3:1\n\nerror: 2 problems found; nothing was run\n";
    assert_eq!(
        located(stderr),
        [
            (
                "runbook::module::unknown".to_owned(),
                "a.yaml:9:17".to_owned()
            ),
            ("runbook::step::cycle".to_owned(), "a.yaml:3:1".to_owned()),
        ]
    );
}
