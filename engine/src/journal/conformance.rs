//! The journal's tests, written once against [`Backend`] and run on both backends: on SQLite
//! by the unit tests of [`super::store`], on a throwaway PostgreSQL server by the suite
//! (`tests/suite/postgres.rs`, where that server's helper lives). Each panics on a difference.
//!
//! `open` opens the same journal again (a reopen: what was written must be there); `claim`
//! takes the right to write a run after it was created (SQLite: nothing to take).

use std::time::Duration;

use super::{Backend, Entry, Piece, RunRecord, RunState};

/// A run of runbook `rb` from `/r.yaml` and `/i.yaml`.
pub fn record(id: &str) -> RunRecord {
    RunRecord {
        id: id.into(),
        operator: "op".into(),
        started_at: format!("2026-11-23T10:00:0{}Z", id.len()),
        runbook_name: "rb".into(),
        runbook_version: "1.0.0".into(),
        runbook_file: "/r.yaml".into(),
        inventory_file: "/i.yaml".into(),
        runbook_fp: "a".into(),
        inventory_fp: "b".into(),
        params_fp: "c".into(),
        params: "[]".into(),
        state: RunState::Running,
        finished_at: None,
        window: None,
    }
}

fn create(j: &dyn Backend, id: &str) {
    j.create_run(&record(id)).expect("create");
    j.claim(id).expect("claim").expect("nobody else holds it");
}

/// Every test, in order, each on its own runs.
pub fn all(open: &dyn Fn() -> Box<dyn Backend>) {
    each_apply_of_a_run_is_a_new_generation(open().as_ref());
    outage_pieces_are_updated_in_place_per_apply_and_read_in_apply_order(open);
    records_survive_reopening(open);
    a_resumed_run_keeps_its_new_window_and_fingerprints_and_its_history(open().as_ref());
}

pub fn each_apply_of_a_run_is_a_new_generation(j: &dyn Backend) {
    create(j, "g1");
    assert_eq!(j.next_generation("g1").expect("gen"), 1);
    assert_eq!(j.next_generation("g1").expect("gen"), 2);
    assert!(j.next_generation("nope").is_err());
}

pub fn outage_pieces_are_updated_in_place_per_apply_and_read_in_apply_order(
    open: &dyn Fn() -> Box<dyn Backend>,
) {
    let j = open();
    create(j.as_ref(), "p1");
    let piece = |kind: &str, generation, ms, ended| {
        Entry::Piece(Piece {
            kind: kind.into(),
            generation,
            started_at: format!("2026-12-03T10:00:0{generation}Z"),
            duration_ms: ms,
            ended,
            planned_ms: 9000,
        })
    };
    // The second apply first, then the first one's piece growing, then its end.
    j.write("p1", &[piece("outage", 2, 100, true)])
        .expect("write");
    j.write(
        "p1",
        &[piece("outage", 1, 0, false), piece("freeze", 1, 0, false)],
    )
    .expect("write");
    j.write("p1", &[piece("outage", 1, 3100, false)])
        .expect("write");
    let got = j.pieces("p1").expect("pieces");
    let summary: Vec<(String, u32, i64, bool)> = got
        .iter()
        .map(|p| (p.kind.clone(), p.generation, p.duration_ms, p.ended))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("outage".into(), 1, 3100, false),
            ("freeze".into(), 1, 0, false),
            ("outage".into(), 2, 100, true),
        ]
    );
    assert!(j.pieces("other").expect("pieces").is_empty());
    // Reopening keeps them.
    drop(j);
    assert_eq!(open().pieces("p1").expect("pieces").len(), 3);
}

pub fn records_survive_reopening(open: &dyn Fn() -> Box<dyn Backend>) {
    {
        let j = open();
        create(j.as_ref(), "r1");
        let started = |action: &str, fp: &str| Entry::Started {
            action: action.into(),
            step: action.split('@').next().unwrap_or_default().into(),
            host: "a".into(),
            definition_fp: fp.into(),
            attempt: 1,
        };
        j.write("r1", &[started("s@a", "fp")]).expect("started");
        j.write("r1", &[started("t@a", "fp2")]).expect("started");
        j.write(
            "r1",
            &[Entry::Finished {
                action: "s@a".into(),
                step: "s".into(),
                host: "a".into(),
                definition_fp: "fp".into(),
                status: "changed".into(),
                rc: Some(0),
                duration: Duration::from_millis(1500),
                message: None,
                output: Some(("out".into(), "{\"rc\":0}".into())),
            }],
        )
        .expect("finished");
        j.approve("r1", "confirm", "alice", "ok").expect("approve");
        j.decide("r1", "t@a", "done", "bob").expect("decide");
    }
    let j = open();
    let actions = j.actions("r1").expect("actions");
    assert_eq!(actions.len(), 2);
    assert_eq!(
        (
            actions[0].action.as_str(),
            actions[0].status.as_str(),
            actions[0].duration_ms
        ),
        ("s@a", "changed", Some(1500))
    );
    assert_eq!(
        (actions[1].action.as_str(), actions[1].status.as_str()),
        ("t@a", "started")
    );
    assert_eq!(
        j.outputs("r1").expect("outputs"),
        vec![("out".into(), "a".into(), "{\"rc\":0}".into())]
    );
    assert_eq!(
        j.approvals("r1").expect("approvals"),
        vec![("confirm".into(), "alice".into(), "ok".into())]
    );
    assert_eq!(
        j.decisions("r1").expect("decisions"),
        vec![("t@a".into(), "done".into())]
    );
    assert_eq!(
        j.resumable("/r.yaml", "/i.yaml")
            .expect("query")
            .map(|r| r.id),
        Some("r1".into())
    );
    j.claim("r1").expect("claim").expect("its own lease");
    j.set_state("r1", RunState::Succeeded).expect("state");
    assert_eq!(
        j.run("r1").expect("run").map(|r| r.state),
        Some(RunState::Succeeded)
    );
    assert!(
        j.run("r1")
            .expect("run")
            .and_then(|r| r.finished_at)
            .is_some(),
        "an ended run has its end"
    );
    assert_eq!(
        j.resumable("/r.yaml", "/i.yaml")
            .expect("query")
            .map(|r| r.id),
        Some("p1".into()),
        "the finished run is not resumable; the older unfinished one is"
    );
    assert_eq!(
        j.durations("rb").expect("durations"),
        vec![("s".into(), 1500)]
    );
}

pub fn a_resumed_run_keeps_its_new_window_and_fingerprints_and_its_history(j: &dyn Backend) {
    create(j, "w1");
    j.set_window("w1", Some("2026-12-03T20:00Z/4h"))
        .expect("window");
    j.update_fingerprints("w1", "a2", "b2", "c2")
        .expect("fingerprints");
    let run = j.run("w1").expect("run").expect("there");
    assert_eq!(run.window.as_deref(), Some("2026-12-03T20:00Z/4h"));
    assert_eq!(
        (
            run.runbook_fp.as_str(),
            run.inventory_fp.as_str(),
            run.params_fp.as_str()
        ),
        ("a2", "b2", "c2")
    );
    assert_eq!(j.next_generation("w1").expect("gen"), 1);
    j.write(
        "w1",
        &[Entry::Started {
            action: "x@a".into(),
            step: "x".into(),
            host: "a".into(),
            definition_fp: "d".into(),
            attempt: 1,
        }],
    )
    .expect("write");
    j.approve("w1", "gate", "carol", "checked")
        .expect("approve");
    let history = j.history("w1").expect("history");
    assert_eq!(history.generation, 1);
    assert_eq!(
        history
            .transitions
            .iter()
            .map(|t| (t.action.as_str(), t.status.as_str()))
            .collect::<Vec<_>>(),
        vec![("x@a", "started")]
    );
    assert_eq!(history.actions.len(), 1);
    assert!(history.actions[0].started_at.is_some());
    assert_eq!(history.approvals.len(), 1);
    assert_eq!(history.approvals[0].by, "carol");
    assert!(history.steals.is_empty());
    j.release("w1").expect("release");
}
