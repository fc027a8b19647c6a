//! `env:` values reach the script byte for byte, over real SSH: trailing newlines included. A
//! value with a NUL byte (which no shell variable can hold) is never silently shortened: when it
//! is only known at run time (a step's output, a secret), the step fails and says why.

use crate::apply::Rig;

fn header(name: &str) -> String {
    format!("apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, version: 1.0.0}}\n")
}

#[test]
fn trailing_newlines_arrive_and_a_nul_at_run_time_fails_the_step() {
    let rig = Rig::new(1);
    let secret_file = rig.dir.path().join("secret");
    fs_err::write(&secret_file, b"pass\0word").expect("write the secret");
    let rb = header("env")
        + "steps:\n"
        // `produce` prints a NUL; `lines` gets values that end in newlines.
        + "  - id: produce\n    module: shell\n    on: a\n    register: out\n    with: {cmd: 'printf \"a\\0b\"'}\n"
        + "  - id: lines\n    module: shell\n    on: a\n"
        + "    env: {TWO: \"end\\n\\n\", LONE: \"\\n\"}\n"
        + "    with: {cmd: 'printf \"%s|%s|\" \"$TWO\" \"$LONE\" > $RUNBOOK_HOST_ROOT/lines'}\n"
        + "  - id: from-output\n    module: shell\n    on: a\n    needs: [produce]\n"
        + "    env: {X: \"{{ out.stdout }}\"}\n"
        + "    with: {cmd: 'touch $RUNBOOK_HOST_ROOT/output-ran'}\n";
    let run = rig.apply(&rb, &rig.inventory(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.status("lines@a"), "changed");
    let lines = fs_err::read_to_string(rig.root("a").join("lines")).expect("lines written");
    assert_eq!(lines, "end\n\n|\n|", "the trailing newlines arrived");
    // A secret is read when the run starts: known only then.
    let rb = header("secret")
        + "params:\n  token: {type: secret, required: true}\n"
        + "steps:\n  - id: from-secret\n    module: shell\n    on: a\n"
        + "    env: {TOKEN: \"{{ params.token }}\"}\n"
        + "    with: {cmd: 'touch $RUNBOOK_HOST_ROOT/secret-ran'}\n";
    let secret_arg = format!("token=file:{}", secret_file.display());
    let secret_run = rig.apply(&rb, &rig.inventory(), &["--secret", &secret_arg]);
    assert_eq!(secret_run.code, 1, "{}", secret_run.stderr);
    for (run, action, marker) in [
        (&run, "from-output@a", "output-ran"),
        (&secret_run, "from-secret@a", "secret-ran"),
    ] {
        assert_eq!(run.status(action), "failed", "{:#?}", run.events);
        let message = run.message(action);
        assert!(message.contains("NUL byte"), "{action}: {message}");
        assert!(
            !rig.root("a").join(marker).exists(),
            "{action} ran with a shortened value"
        );
    }
    assert!(
        !secret_run.message("from-secret@a").contains("word"),
        "the secret's value is not shown"
    );
}

#[test]
fn a_secret_file_that_is_a_device_or_too_large_is_refused_before_anything_runs() {
    let rig = Rig::new(1);
    let big = rig.dir.path().join("big-secret");
    fs_err::write(&big, "k".repeat(64 * 1024 + 1)).expect("write the secret");
    let rb = header("secret-file")
        + "params:\n  token: {type: secret, required: true}\n"
        + "steps:\n  - id: use\n    module: shell\n    on: a\n"
        + "    env: {TOKEN: \"{{ params.token }}\"}\n"
        + "    with: {cmd: 'touch $RUNBOOK_HOST_ROOT/ran'}\n";
    for (source, says) in [
        (big.display().to_string(), "too large for a secret"),
        ("/dev/zero".to_owned(), "not a regular file"),
    ] {
        let arg = format!("token=file:{source}");
        let run = rig.apply(&rb, &rig.inventory(), &["--secret", &arg]);
        assert_eq!(run.code, 2, "{source}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{source}: {}", run.stderr);
        assert!(!run.stderr.contains("kkkk"), "the content is never shown");
        assert!(!rig.root("a").join("ran").exists(), "nothing ran");
    }
}
