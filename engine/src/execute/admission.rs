//! The admission policy: what becomes of an action once everything it depends on has finished.
//!
//! [`admit`] is a pure function of the run so far ([`Run`]) and the action: it decides, the
//! scheduler loop carries the decision out (records, events, queues). The rules, first match
//! wins:
//!
//! 1. finished before the interruption: it keeps that status ([`Admission::Recorded`]);
//! 2. interrupted and resolved by an operator as done: `ok`;
//! 3. the run's record failed, the operator interrupted, or `fail_fast` stopped the main
//!    steps: `blocked`;
//! 4. its host failed in an earlier phase: `blocked`; a dependency did not succeed: `blocked`;
//! 5. outside `--limit`, an `on_failure` step of a phase where nothing failed, `when:` false:
//!    `skipped` (a `when:` that cannot be evaluated: `failed`);
//! 6. the outage window holds it back: [`Admission::Hold`] (never an interrupted action being
//!    settled: looking at its host is not starting it);
//! 7. rendering, manual steps (approved, asked on the terminal ([`Admission::Ask`]), or
//!    awaiting `runbook approve`), assertions, transfers, `--dry-run` without a check, nothing
//!    to send: settled on the controller;
//! 8. otherwise it runs: [`Admission::Run`].

use petgraph::graph::NodeIndex;
use runbook_modules::Operation;

use crate::ast::StepKind;
use crate::event::Status;
use crate::plan::{Action, Gate};

use super::action::{Job, Resolve, commands};
use super::hold::Held;
use super::options::ManualPrompt;
use super::reason::Reason;
use super::run::{Run, Stop};

/// What the scheduler does with a ready action.
pub(super) enum Admission {
    /// It finished before the interruption: it keeps its recorded status; nothing is written.
    Recorded(Status),
    /// It ends here, without reaching its host.
    Settle(Status, Reason),
    /// The outage window holds it back.
    Hold(Held),
    /// A manual step to confirm on the terminal ([`super::Options::approver`]); once confirmed
    /// the action is admitted again.
    Ask(ManualPrompt),
    /// It runs on its host.
    Run(Box<Job>),
}

/// Whether a gate passes: its status, and why it blocks when it does.
pub(super) fn pass(run: &Run<'_>, node: NodeIndex, gate: &Gate) -> (Status, Option<Reason>) {
    if let Some(max) = gate.max_failed_hosts {
        let failed = run.failed_hosts(gate.phase);
        if failed > max {
            let reason = Reason::BudgetSpent {
                phase: run.plan.phases[gate.phase].name.clone(),
                failed,
                max,
            };
            return (Status::Blocked, Some(reason));
        }
    }
    if run.deps_ok(node) {
        (Status::Ok, None)
    } else {
        (Status::Blocked, Some(run.blocked_because(node)))
    }
}

/// Decides what becomes of a ready action (see the module's documentation for the rules).
#[allow(clippy::too_many_lines)] // one rule after the other, in the order they apply
pub(super) fn admit(run: &Run<'_>, node: NodeIndex, action: &Action) -> Admission {
    use Admission::Settle;
    let plan = run.plan;
    let opts = run.opts;
    let step = &plan.steps[action.step];
    let id = plan.action_id(action);
    if let Some(&status) = run.resume.done.get(&id) {
        return Admission::Recorded(status);
    }
    // Interrupted with its outcome unknown, and no operator's decision to settle it.
    let decision = run.resume.decisions.get(&id).copied();
    let unknown = run.resume.unknown.contains(&id);
    if unknown && decision == Some(true) {
        return Settle(Status::Ok, Reason::ResolvedDone);
    }
    let unknown = unknown && decision.is_none();
    if run.unrecorded.is_some() {
        return Settle(Status::Blocked, Reason::NotRecorded);
    }
    match run.stop {
        Stop::Interrupted => return Settle(Status::Blocked, Reason::Interrupted),
        // fail_fast stops the main steps; on_failure and always steps still run.
        Stop::AfterFailure if step.kind == StepKind::Main => {
            return Settle(Status::Blocked, Reason::FailFast);
        }
        Stop::AfterFailure | Stop::Going => {}
    }
    // A host that failed in an earlier phase (within a failure budget) is out of the run.
    if let Some(&phase) = action.host.and_then(|h| run.host_failed_in.get(&h))
        && phase < step.phase
        && step.kind == StepKind::Main
    {
        let phase = plan.phases[phase].name.clone();
        return Settle(Status::Blocked, Reason::HostFailedIn { phase });
    }
    if !run.deps_ok(node) {
        return Settle(Status::Blocked, run.blocked_because(node));
    }
    if let (Some(limit), Some(host)) = (&opts.limit, action.host)
        && !limit.contains(&host)
    {
        return Settle(Status::Skipped, Reason::OutsideLimit);
    }
    if step.kind == StepKind::OnFailure && !run.phase_failed[step.phase] {
        return Settle(Status::Skipped, Reason::NothingFailed);
    }
    let visible = run.outputs.visible(plan, action.host);
    if let Some(when) = &step.when {
        match plan.eval(when, action.host, &visible) {
            Ok(v) if !v.is_true() => {
                let when = when.clone();
                return Settle(Status::Skipped, Reason::WhenFalse { when });
            }
            Ok(_) => {}
            Err(e) => {
                let (when, error) = (when.clone(), e.message);
                return Settle(Status::Failed, Reason::WhenError { when, error });
            }
        }
    }
    // The outage window: a step that may not start now is held (not settled); the run waits
    // or pauses once nothing else can go on. Settling an interrupted action (the host's record,
    // a read-only check) is not starting it, so it is never held; nor is an action whose manual
    // step the operator just confirmed (it passed the window before it asked).
    let confirmed = run.confirmed.get(&node).copied().unwrap_or(0);
    if !unknown
        && confirmed == 0
        && let Some(hold) = super::hold::holds(run, node, step)
    {
        return Admission::Hold(hold);
    }
    let renderer = plan.renderer(run.registry);
    let (rendered, problems) = renderer.render(step, action.host, &visible);
    if let Some(p) = problems.first() {
        return Settle(Status::Failed, Reason::Render(p.message.clone()));
    }
    // Controller-side operations first: manual steps and assertions.
    let mut manual = 0;
    for op in &rendered.operations {
        match op {
            Operation::Manual { instructions } => {
                if opts.approvals.contains(&step.id) {
                    continue;
                }
                if opts.dry_run {
                    return Settle(Status::WouldRun, Reason::ManualInDryRun);
                }
                manual += 1;
                if manual <= confirmed {
                    continue;
                }
                return Admission::Ask(ManualPrompt {
                    step: step.id.clone(),
                    host: plan.host_name(action.host).to_owned(),
                    instructions: instructions.clone(),
                });
            }
            Operation::Assert {
                conditions,
                message,
            } => {
                for condition in conditions {
                    match plan.eval(condition, action.host, &visible) {
                        Ok(v) if v.is_true() => {}
                        Ok(_) => {
                            let reason = Reason::AssertFalse {
                                condition: condition.clone(),
                                message: message.clone(),
                            };
                            return Settle(Status::Failed, reason);
                        }
                        Err(e) => {
                            let reason = Reason::AssertError {
                                condition: condition.clone(),
                                error: e.message,
                            };
                            return Settle(Status::Failed, reason);
                        }
                    }
                }
            }
            Operation::Remote(_) | Operation::Transfer(_) => {}
        }
    }
    let mut cmds = commands(&rendered.operations);
    let mut copies = match super::transfer::planned(plan, &rendered.operations) {
        Ok(t) => t,
        Err(e) => return Settle(Status::Failed, Reason::Transfer(e)),
    };
    let check_only = opts.dry_run;
    if check_only && !(cmds.is_empty() && copies.is_empty()) {
        let (checks, _) = renderer.render_checks(step, action.host, &visible);
        match checks {
            Some(ops) => {
                cmds = commands(&ops);
                copies = super::transfer::planned(plan, &ops).unwrap_or_default();
            }
            None => return Settle(Status::WouldRun, Reason::NoCheck),
        }
    }
    let Some(host) = action
        .host
        .filter(|_| !(cmds.is_empty() && copies.is_empty()))
    else {
        return Settle(Status::Ok, Reason::NothingToSend);
    };
    let env = match renderer.render_env(step, action.host, &visible, Some(&opts.secrets)) {
        Ok(env) => env,
        Err(p) => return Settle(Status::Failed, Reason::Env(p.message)),
    };
    let resolve = unknown.then(|| {
        let (checks, _) = renderer.render_checks(step, action.host, &visible);
        Resolve {
            check_transfers: checks
                .as_deref()
                .and_then(|ops| super::transfer::planned(plan, ops).ok())
                .unwrap_or_default(),
            checks: checks.map(|ops| commands(&ops)),
            commands: cmds.len(),
            state_arg: opts.state_arg.clone(),
        }
    });
    let shared = &run.shared;
    Admission::Run(Box::new(Job {
        node,
        plan: plan.clone(),
        step: action.step,
        host,
        key: format!("{}/{id}", opts.run_id),
        generation: opts.generation,
        commands: cmds,
        transfers: copies,
        env,
        check_only,
        visible,
        masker: shared.masker.clone(),
        resolve,
        cancel: opts.cancel.clone(),
        stop: opts
            .fail_fast
            .then(|| (shared.stop.clone(), step.kind == StepKind::Main)),
        halt: shared.halt.clone(),
        progress: shared.progress.clone(),
    }))
}

#[cfg(test)]
mod tests {
    //! The policy as a table: a plan, the run so far, an action, and what becomes of it. No
    //! runtime, no host.

    use std::collections::BTreeSet;
    use std::sync::Arc;

    use petgraph::graph::NodeIndex;
    use runbook_modules::Registry;

    use super::super::fake::plan;
    use super::super::options::Options;
    use super::super::reason::Reason;
    use super::super::run::{Run, Stop};
    use super::{Admission, Held, admit, pass};
    use crate::event::Status;
    use crate::plan::{Plan, PlanNode};

    /// What [`admit`] decided, in a form a table can hold.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Recorded(Status),
        Settle(Status, Reason),
        HoldFirst,
        HoldBehind,
        Ask(String),
        Run { resolve: bool },
    }

    fn node(plan: &Plan, id: &str) -> NodeIndex {
        plan.nodes()
            .find(|(_, n)| matches!(n, PlanNode::Action(a) if plan.action_id(a) == id))
            .map_or_else(|| panic!("no action {id}"), |(i, _)| i)
    }

    fn set(run: &mut Run<'_>, id: &str, status: Status) {
        let index = node(run.plan, id).index();
        run.status[index] = Some(status);
    }

    /// Everything `id` depends on (actions, or the gate between steps) ended with `status`.
    fn deps(run: &mut Run<'_>, id: &str, status: Status) {
        for (dep, _) in run.plan.dependencies(node(run.plan, id)) {
            run.status[dep.index()] = Some(status);
        }
    }

    fn admitted(
        steps: &str,
        id: &str,
        configure: impl FnOnce(&mut Options),
        given: impl FnOnce(&mut Run<'_>),
    ) -> Got {
        let plan = plan(steps);
        let mut opts = Options::new("r", "/nonexistent/runs/r");
        configure(&mut opts);
        let registry = Registry::builtin();
        let (progress, _) = tokio::sync::mpsc::unbounded_channel();
        let mut run = Run::new(&plan, &opts, &registry, progress);
        given(&mut run);
        let at = node(&plan, id);
        let PlanNode::Action(action) = plan.node(at) else {
            unreachable!("node() finds actions")
        };
        match admit(&run, at, action) {
            Admission::Recorded(status) => Got::Recorded(status),
            Admission::Settle(status, reason) => Got::Settle(status, reason),
            Admission::Hold(Held::First(_)) => Got::HoldFirst,
            Admission::Hold(Held::Behind) => Got::HoldBehind,
            Admission::Ask(prompt) => Got::Ask(format!("{}@{}", prompt.step, prompt.host)),
            Admission::Run(job) => {
                assert_eq!(job.key, format!("r/{id}"), "the wrapper's key");
                Got::Run {
                    resolve: job.resolve.is_some(),
                }
            }
        }
    }

    const TWO: &str = "steps:\n  - {id: s1, module: shell, on: all, with: {cmd: one}}\n  - {id: s2, module: shell, on: all, with: {cmd: two}}\n";
    const PHASES: &str = "phases:\n  - name: p\n    steps:\n      - {id: s1, module: shell, on: a, with: {cmd: one}}\n    on_failure:\n      - {id: fix, module: shell, on: a, with: {cmd: fix}}\n  - name: q\n    steps:\n      - {id: s2, module: shell, on: a, with: {cmd: two}}\n";
    const MANUAL: &str =
        "steps:\n  - {id: m, module: manual, on: a, with: {instructions: check the lights}}\n";
    const OUTAGE: &str = "phases:\n  - name: switch\n    outage: true\n    steps:\n      - {id: s1, module: shell, on: a, estimate: 1h, with: {cmd: one}}\n";

    fn none(_: &mut Options) {}
    fn nothing(_: &mut Run<'_>) {}
    fn settle(status: Status, reason: Reason) -> Got {
        Got::Settle(status, reason)
    }
    const RUN: Got = Got::Run { resolve: false };

    #[test]
    fn the_first_rule_that_applies_decides() {
        let cases: Vec<(&str, Got)> = vec![
            ("plain", admitted(TWO, "s1@a", none, nothing)),
            (
                "done before the interruption",
                admitted(TWO, "s1@a", none, |r| {
                    r.resume.done.insert("s1@a".into(), Status::Changed);
                    r.unrecorded = Some("disk full".into());
                }),
            ),
            (
                "unknown, resolved done",
                admitted(TWO, "s1@a", none, |r| {
                    r.resume.unknown.insert("s1@a".into());
                    r.resume.decisions.insert("s1@a".into(), true);
                }),
            ),
            (
                "unknown",
                admitted(TWO, "s1@a", none, |r| {
                    r.resume.unknown.insert("s1@a".into());
                }),
            ),
            (
                "unknown, resolved run again",
                admitted(TWO, "s1@a", none, |r| {
                    r.resume.unknown.insert("s1@a".into());
                    r.resume.decisions.insert("s1@a".into(), false);
                }),
            ),
            (
                "record failed",
                admitted(TWO, "s1@a", none, |r| {
                    r.unrecorded = Some("disk full".into());
                    r.stop(Stop::Interrupted);
                }),
            ),
            (
                "interrupted",
                admitted(TWO, "s1@a", none, |r| {
                    r.stop(Stop::AfterFailure);
                    r.stop(Stop::Interrupted);
                }),
            ),
            (
                "fail_fast",
                admitted(TWO, "s1@a", none, |r| r.stop(Stop::AfterFailure)),
            ),
            (
                "a dependency failed",
                admitted(TWO, "s2@a", none, |r| deps(r, "s2@a", Status::Failed)),
            ),
            (
                "a dependency was blocked by a spent budget",
                admitted(TWO, "s2@a", none, |r| {
                    // Whatever s2@a depends on (s1@a, or a gate behind it) was blocked.
                    for (dep, _) in r.plan.dependencies(node(r.plan, "s2@a")) {
                        r.status[dep.index()] = Some(Status::Blocked);
                        r.block_reason[dep.index()] = Some(Reason::BudgetSpent {
                            phase: "p".into(),
                            failed: 2,
                            max: 1,
                        });
                    }
                }),
            ),
            (
                "its dependencies succeeded",
                admitted(TWO, "s2@a", none, |r| deps(r, "s2@a", Status::Ok)),
            ),
            (
                "outside --limit",
                admitted(
                    TWO,
                    "s1@a",
                    |o| o.limit = Some(BTreeSet::from([1])),
                    nothing,
                ),
            ),
            (
                "on_failure, nothing failed",
                admitted(PHASES, "fix@a", none, |r| set(r, "s1@a", Status::Ok)),
            ),
            (
                "on_failure after a failure, fail_fast",
                admitted(PHASES, "fix@a", none, |r| {
                    set(r, "s1@a", Status::Failed);
                    r.phase_failed[0] = true;
                    r.stop(Stop::AfterFailure);
                }),
            ),
            (
                "its host failed in an earlier phase",
                admitted(PHASES, "s2@a", none, |r| {
                    r.host_failed_in.insert(0, 0);
                }),
            ),
            (
                "when false",
                admitted(
                    "steps:\n  - {id: w, module: shell, on: a, when: \"host.name == 'b'\", with: {cmd: x}}\n",
                    "w@a",
                    none,
                    nothing,
                ),
            ),
            ("manual", admitted(MANUAL, "m@a", none, nothing)),
            (
                "manual, confirmed on the terminal",
                admitted(MANUAL, "m@a", none, |r| {
                    r.confirmed.insert(node(r.plan, "m@a"), 1);
                }),
            ),
            (
                "manual, approved",
                admitted(
                    MANUAL,
                    "m@a",
                    |o| {
                        o.approvals.insert("m".into());
                    },
                    nothing,
                ),
            ),
            (
                "manual, dry run",
                admitted(MANUAL, "m@a", |o| o.dry_run = true, nothing),
            ),
            (
                "assertion false",
                admitted(
                    "steps:\n  - {id: t, module: assert, on: a, with: {that: [\"1 > 2\"], fail_msg: not safe}}\n",
                    "t@a",
                    none,
                    nothing,
                ),
            ),
            (
                "assertion false, no message",
                admitted(
                    "steps:\n  - {id: t, module: assert, on: a, with: {that: [\"1 > 2\"]}}\n",
                    "t@a",
                    none,
                    nothing,
                ),
            ),
            (
                "assertion true",
                admitted(
                    "steps:\n  - {id: t, module: assert, on: a, with: {that: [\"2 > 1\"]}}\n",
                    "t@a",
                    none,
                    nothing,
                ),
            ),
            (
                "dry run, no check",
                admitted(TWO, "s1@a", |o| o.dry_run = true, nothing),
            ),
        ];
        let expected: Vec<(&str, Got)> = vec![
            ("plain", RUN),
            (
                "done before the interruption",
                Got::Recorded(Status::Changed),
            ),
            (
                "unknown, resolved done",
                settle(Status::Ok, Reason::ResolvedDone),
            ),
            ("unknown", Got::Run { resolve: true }),
            ("unknown, resolved run again", RUN),
            (
                "record failed",
                settle(Status::Blocked, Reason::NotRecorded),
            ),
            ("interrupted", settle(Status::Blocked, Reason::Interrupted)),
            ("fail_fast", settle(Status::Blocked, Reason::FailFast)),
            (
                "a dependency failed",
                settle(Status::Blocked, Reason::DependencyFailed),
            ),
            (
                "a dependency was blocked by a spent budget",
                settle(
                    Status::Blocked,
                    Reason::BudgetSpent {
                        phase: "p".into(),
                        failed: 2,
                        max: 1,
                    },
                ),
            ),
            ("its dependencies succeeded", RUN),
            (
                "outside --limit",
                settle(Status::Skipped, Reason::OutsideLimit),
            ),
            (
                "on_failure, nothing failed",
                settle(Status::Skipped, Reason::NothingFailed),
            ),
            ("on_failure after a failure, fail_fast", RUN),
            (
                "its host failed in an earlier phase",
                settle(Status::Blocked, Reason::HostFailedIn { phase: "p".into() }),
            ),
            (
                "when false",
                settle(
                    Status::Skipped,
                    Reason::WhenFalse {
                        when: "host.name == 'b'".into(),
                    },
                ),
            ),
            ("manual", Got::Ask("m@a".into())),
            (
                "manual, confirmed on the terminal",
                settle(Status::Ok, Reason::NothingToSend),
            ),
            (
                "manual, approved",
                settle(Status::Ok, Reason::NothingToSend),
            ),
            (
                "manual, dry run",
                settle(Status::WouldRun, Reason::ManualInDryRun),
            ),
            (
                "assertion false",
                settle(
                    Status::Failed,
                    Reason::AssertFalse {
                        condition: "1 > 2".into(),
                        message: Some("not safe".into()),
                    },
                ),
            ),
            (
                "assertion false, no message",
                settle(
                    Status::Failed,
                    Reason::AssertFalse {
                        condition: "1 > 2".into(),
                        message: None,
                    },
                ),
            ),
            ("assertion true", settle(Status::Ok, Reason::NothingToSend)),
            (
                "dry run, no check",
                settle(Status::WouldRun, Reason::NoCheck),
            ),
        ];
        assert_eq!(cases.len(), expected.len());
        for ((case, got), (name, want)) in cases.into_iter().zip(expected) {
            assert_eq!(case, name, "the tables are in the same order");
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn the_window_holds_outage_steps_but_never_the_settling_of_an_interrupted_one() {
        let clock = Arc::new(crate::clock::ManualClock::new(
            "2026-11-23T21:00:00Z".parse().expect("an instant"),
        ));
        let windowed = |o: &mut Options| {
            o.window = Some(crate::window::WindowSpec::parse("22:00/02:00 UTC").expect("valid"));
            o.clock = clock.clone();
        };
        assert_eq!(admitted(OUTAGE, "s1@a", windowed, nothing), Got::HoldFirst);
        assert_eq!(
            admitted(OUTAGE, "s1@a", windowed, |r| {
                r.hold = Some((NodeIndex::new(0), hold()));
            }),
            Got::HoldBehind
        );
        assert_eq!(
            admitted(OUTAGE, "s1@a", windowed, |r| {
                r.resume.unknown.insert("s1@a".into());
            }),
            Got::Run { resolve: true }
        );
        // --dry-run starts nothing, so the window does not hold it.
        assert_eq!(
            admitted(
                OUTAGE,
                "s1@a",
                |o| {
                    windowed(o);
                    o.dry_run = true;
                },
                nothing
            ),
            settle(Status::WouldRun, Reason::NoCheck)
        );
        // Inside the window it fits.
        clock.advance(jiff::SignedDuration::from_mins(90));
        assert_eq!(admitted(OUTAGE, "s1@a", windowed, nothing), RUN);
    }

    fn hold() -> crate::window::Hold {
        crate::window::Hold {
            kind: crate::window::HoldKind::NotOpen,
            message: "held".into(),
            next_window: None,
        }
    }

    #[test]
    fn a_gate_blocks_once_the_failure_budget_is_spent() {
        let plan = plan(
            "phases:\n  - name: upgrade\n    serial: 1\n    max_fail: 0\n    steps:\n      - {id: s, module: shell, on: all, with: {cmd: x}}\n",
        );
        let opts = Options::new("r", "/nonexistent/runs/r");
        let registry = Registry::builtin();
        let (progress, _) = tokio::sync::mpsc::unbounded_channel();
        let mut run = Run::new(&plan, &opts, &registry, progress);
        let (at, gate) = plan
            .nodes()
            .find_map(|(i, n)| match n {
                PlanNode::Gate(g) if g.max_failed_hosts.is_some() => Some((i, g)),
                _ => None,
            })
            .expect("a batch gate");
        set(&mut run, "s@a", Status::Ok);
        assert_eq!(pass(&run, at, gate), (Status::Ok, None));
        set(&mut run, "s@a", Status::Failed);
        assert_eq!(
            pass(&run, at, gate),
            (
                Status::Blocked,
                Some(Reason::BudgetSpent {
                    phase: "upgrade".into(),
                    failed: 1,
                    max: 0,
                })
            )
        );
    }

    #[test]
    fn reasons_read_as_they_always_did() {
        let run_id = "r1".to_owned();
        let cases = [
            (Reason::ResolvedDone, "resolved by an operator: done"),
            (
                Reason::NotRecorded,
                "not started: the run's state could not be recorded",
            ),
            (Reason::Interrupted, "the run was interrupted (Ctrl-C)"),
            (
                Reason::FailFast,
                "the run stopped after a failure (fail_fast)",
            ),
            (
                Reason::HostFailedIn { phase: "p".into() },
                "its host failed in phase `p`",
            ),
            (
                Reason::DependencyFailed,
                "a step it depends on did not succeed",
            ),
            (
                Reason::BudgetSpent {
                    phase: "p".into(),
                    failed: 2,
                    max: 1,
                },
                "the failure budget of phase `p` is spent: 2 host(s) failed, max_fail allows 1",
            ),
            (Reason::OutsideLimit, "outside --limit"),
            (Reason::NothingFailed, "nothing failed in its phase"),
            (Reason::WhenFalse { when: "x".into() }, "`when: x` is false"),
            (
                Reason::WhenError {
                    when: "x".into(),
                    error: "bad".into(),
                },
                "`when: x`: bad",
            ),
            (Reason::Render("r".into()), "r"),
            (Reason::Transfer("t".into()), "t"),
            (Reason::Env("e".into()), "e"),
            (
                Reason::ManualInDryRun,
                "a manual step: apply would ask the operator",
            ),
            (Reason::Declined, "declined by the operator"),
            (
                Reason::AwaitingApproval {
                    run_id,
                    step: "m".into(),
                    state_arg: String::new(),
                },
                "run `runbook approve r1 m --by NAME --reason TEXT`",
            ),
            (
                Reason::AssertFalse {
                    condition: "c".into(),
                    message: None,
                },
                "assertion `c` is false",
            ),
            (
                Reason::AssertFalse {
                    condition: "c".into(),
                    message: Some("lagging".into()),
                },
                "lagging",
            ),
            (
                Reason::AssertError {
                    condition: "c".into(),
                    error: "bad".into(),
                },
                "assertion `c`: bad",
            ),
            (Reason::NoCheck, "no read-only check; apply would run it"),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.message().as_deref(), Some(text), "{reason:?}");
        }
        assert_eq!(Reason::NothingToSend.message(), None, "settled silently");
    }
}
