//! Progress on a terminal, over a lab host: the ETA comes from the plan's estimates before the
//! first action ends, and each host has a line with the step it is running. The terminal is a
//! pseudo-terminal from `script` (util-linux), as an operator's would be.

use std::process::Command;

use crate::apply::Rig;

const SLOW: &str = "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: slow, version: 1.0.0}\nsteps:\n  - {id: nap, module: shell, on: a, estimate: 2m, with: {cmd: \"sleep 2\"}}\n  - {id: after, module: shell, on: a, estimate: 1m, with: {cmd: \"true\"}}\n";

/// The terminal's text without escape sequences, one redraw per line.
fn screen(raw: &str) -> Vec<String> {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            out.push('\n');
        } else if c == '\r' {
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn on_a_terminal_the_eta_comes_from_the_plan_and_each_host_shows_its_step() {
    let rig = Rig::new(1);
    let file = rig.dir.path().join("slow.yaml");
    fs_err::write(&file, SLOW).expect("write");
    let log = rig.dir.path().join("tty.log");
    let command = format!(
        "{} apply {} -i {} --state {}",
        env!("CARGO_BIN_EXE_runbook"),
        file.display(),
        rig.inventory().display(),
        rig.dir.path().join("state").display()
    );
    let status = Command::new("script")
        .args(["-qec", &command])
        .arg(&log)
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script (util-linux) runs");
    assert!(status.success());
    let lines = screen(&fs_err::read_to_string(&log).expect("the terminal's log"));
    let first_end = lines
        .iter()
        .position(|l| l.contains("changed nap@a"))
        .unwrap_or_else(|| panic!("nap ends: {lines:#?}"));
    let before = &lines[..first_end];
    // The plan's critical path is 3m: before anything ends the ETA says about that, not 0s.
    assert!(
        before
            .iter()
            .any(|l| l.contains("(eta ~3m)") || l.contains("(eta ~2m5")),
        "{before:#?}"
    );
    assert!(
        !before
            .iter()
            .any(|l| l.contains("(eta 0s)") || l.contains("behind the plan")),
        "{before:#?}"
    );
    // Host a's line: its count of actions and the step it runs.
    assert!(
        before.iter().any(|l| l.ends_with("a 0/2 nap")),
        "a line for host a with its current step: {before:#?}"
    );
    assert!(
        lines[first_end..].iter().any(|l| l.ends_with("a 2/2 done")),
        "{lines:#?}"
    );
}
