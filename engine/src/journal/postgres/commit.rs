//! One commit of journal entries in one statement, epoch-fenced and numbered (issue 14).
//!
//! A commit of N entries was 2N + 3 round trips (`BEGIN`, the lease's `FOR UPDATE`, an
//! `INSERT` per action and per transition, `COMMIT`): 10.9 ms for the 20 entries of a W1 step
//! on localhost. Now it is one statement, so one round trip whatever N: the entries travel as
//! arrays, and a server-side function (`runbook.commit`, created by migration 4, [`MIGRATION`])
//! turns them back into rows with `unnest` and writes every table. A single statement is its
//! own transaction (all or nothing), holds nothing between round trips, and needs no prepared
//! statement, so it works the same behind PgBouncer in transaction pooling mode. (Migration 3's
//! build sent the same work as one statement of data-modifying `WITH` clauses, which the server
//! planned again on every commit.)
//!
//! **The fence.** The function first updates the run's lease row where the epoch is the
//! writer's; when that updates nothing (the lease was taken), nothing is written. The update
//! locks the row to the end of the transaction: a takeover (which updates it too) waits for the
//! commit, and a commit after a takeover finds another epoch.
//!
//! **The number.** A controller numbers its commits (1, 2, … within its epoch) and the same
//! update records the number on the lease row, writing only if it is larger than the last one
//! recorded for that epoch. If a reply is lost with the connection and the commit is retried,
//! the retry finds its own number there and writes nothing ([`Landed::Before`]): the
//! transitions, which are appended, are never doubled. Everything else in a commit is an
//! upsert of the same values, but the number makes that the statement's property rather than
//! each table's.
//!
//! **Folding.** One statement cannot upsert the same row twice, so entries for the same action
//! (its `started` and its result in one commit) are folded into the row the statements in turn
//! would have left, and the transitions keep every entry in order.
//!
//! **Files.** An action's files (`stdout`, `stderr`, `result.json`, `artifacts/NAME`) travel in
//! the same statement as its result ([`Database::commit_with_files`]): they land with it or not
//! at all, under the same fence and number. They were a transaction of their own per action
//! (`BEGIN`, the lease's `FOR UPDATE`, an `INSERT` per file, `COMMIT`: 6 round trips), on the
//! scheduler's path: 60 round trips for a W1 step of 10 hosts, 26 ms a step in `apply`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::Database;
use crate::journal::{Entry, JournalError};

impl Database {
    /// Writes `entries` as commit `number` of `epoch` (numbers grow by one from
    /// [`Database::last_commit`]), if `epoch` still holds the run's lease; when the connection
    /// fails, retries on a new one until `until` ([`Database::retrying`]). [`Landed::Before`]
    /// when a try whose answer was lost had written it already.
    pub fn commit(
        &self,
        run: &str,
        epoch: i64,
        number: i64,
        entries: &[Entry],
        until: Instant,
    ) -> Result<Landed, JournalError> {
        self.commit_with_files(run, epoch, number, entries, &[], until)
    }

    /// [`Database::commit`] with actions' files, in the same statement: the entries and the
    /// files land together or not at all. A commit may hold files and no entries.
    pub fn commit_with_files(
        &self,
        run: &str,
        epoch: i64,
        number: i64,
        entries: &[Entry],
        files: &[KeptFile],
        until: Instant,
    ) -> Result<Landed, JournalError> {
        let run: Arc<str> = run.into();
        let batch = Arc::new(Batch::new(entries).with_files(files));
        let outcome = self.retrying(until, move |c| {
            apply(c, Arc::clone(&run), epoch, Some(number), Arc::clone(&batch))
        })?;
        match outcome {
            Outcome::Landed(landed) => Ok(landed),
            Outcome::Taken => Err(self.taken(epoch)),
        }
    }

    /// The number of the last commit recorded for `epoch` (0: none).
    pub fn last_commit(&self, run: &str, epoch: i64) -> Result<i64, JournalError> {
        let run: Arc<str> = run.into();
        self.run(move |c| last_number(c, run, epoch))
    }
}

/// Whether a numbered commit was written by this call or had landed before (a retry whose
/// first try was applied, its reply lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landed {
    Now,
    Before,
}

/// One of an action's files kept in the journal (`runbook.files`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptFile {
    pub action: String,
    /// `stdout`, `stderr`, `result.json` or `artifacts/NAME`.
    pub name: String,
    pub content: Vec<u8>,
}

/// What the statement found.
pub(crate) enum Outcome {
    Landed(Landed),
    /// The epoch no longer holds the run (or never did).
    Taken,
}

/// The entries of one commit as the statement's arrays.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    // runbook.actions, one row per action, folded.
    action: Vec<String>,
    step: Vec<String>,
    host: Vec<String>,
    definition_fp: Vec<String>,
    status: Vec<String>,
    attempt: Vec<i64>,
    started_at: Vec<Option<String>>,
    finished_at: Vec<Option<String>>,
    duration_ms: Vec<Option<i64>>,
    rc: Vec<Option<i32>>,
    message: Vec<Option<String>>,
    // runbook.transitions, one per entry, in order.
    t_action: Vec<String>,
    t_status: Vec<String>,
    // runbook.outputs, the last value of each register and host.
    o_register: Vec<String>,
    o_host: Vec<String>,
    o_value: Vec<String>,
    // runbook.outages, the last of each generation and kind.
    p_generation: Vec<i64>,
    p_kind: Vec<String>,
    p_started_at: Vec<String>,
    p_duration_ms: Vec<i64>,
    p_ended: Vec<bool>,
    p_planned_ms: Vec<i64>,
    // runbook.files, the last content of each action and name.
    f_action: Vec<String>,
    f_name: Vec<String>,
    f_content: Vec<Vec<u8>>,
    /// When the commit was made (one time for all its entries, and for its retries).
    at: String,
}

impl Batch {
    /// Folds `entries` into rows: an action's `started` sets its attempt and start and clears
    /// its result; its result sets the result and keeps the attempt and start (as the upserts
    /// of the SQLite journal do, one after the other).
    pub(crate) fn new(entries: &[Entry]) -> Self {
        let at = jiff::Timestamp::now().to_string();
        let mut b = Self {
            at: at.clone(),
            ..Self::default()
        };
        let mut row_of: HashMap<String, usize> = HashMap::new();
        let mut outputs: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut pieces: BTreeMap<(i64, String), usize> = BTreeMap::new();
        for entry in entries {
            match entry {
                Entry::Started {
                    action,
                    step,
                    host,
                    definition_fp,
                    attempt,
                } => {
                    let i = b.row(&mut row_of, action, step, host);
                    "started".clone_into(&mut b.status[i]);
                    b.definition_fp[i].clone_from(definition_fp);
                    b.attempt[i] = i64::from(*attempt);
                    b.started_at[i] = Some(at.clone());
                    b.finished_at[i] = None;
                    b.duration_ms[i] = None;
                    b.rc[i] = None;
                    b.message[i] = None;
                    b.t_action.push(action.clone());
                    b.t_status.push("started".to_owned());
                }
                Entry::Finished {
                    action,
                    step,
                    host,
                    definition_fp,
                    status,
                    rc,
                    duration,
                    message,
                    output,
                } => {
                    let i = b.row(&mut row_of, action, step, host);
                    b.status[i].clone_from(status);
                    b.definition_fp[i].clone_from(definition_fp);
                    b.finished_at[i] = Some(at.clone());
                    b.duration_ms[i] =
                        Some(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
                    b.rc[i] = *rc;
                    b.message[i].clone_from(message);
                    b.t_action.push(action.clone());
                    b.t_status.push(status.clone());
                    if let Some((register, value)) = output {
                        outputs.insert((register.clone(), host.clone()), value.clone());
                    }
                }
                Entry::Piece(p) => {
                    let key = (i64::from(p.generation), p.kind.clone());
                    let i = *pieces.entry(key).or_insert_with(|| {
                        b.p_generation.push(i64::from(p.generation));
                        b.p_kind.push(p.kind.clone());
                        b.p_started_at.push(String::new());
                        b.p_duration_ms.push(0);
                        b.p_ended.push(false);
                        b.p_planned_ms.push(0);
                        b.p_kind.len() - 1
                    });
                    b.p_started_at[i].clone_from(&p.started_at);
                    b.p_duration_ms[i] = p.duration_ms;
                    b.p_ended[i] = p.ended;
                    b.p_planned_ms[i] = p.planned_ms;
                }
            }
        }
        for ((register, host), value) in outputs {
            b.o_register.push(register);
            b.o_host.push(host);
            b.o_value.push(value);
        }
        b
    }

    /// Adds `files` (the last of each action and name wins: one statement cannot upsert a row
    /// twice).
    pub(crate) fn with_files(mut self, files: &[KeptFile]) -> Self {
        let mut last: BTreeMap<(&str, &str), &[u8]> = BTreeMap::new();
        for f in files {
            last.insert((&f.action, &f.name), &f.content);
        }
        for ((action, name), content) in last {
            self.f_action.push(action.to_owned());
            self.f_name.push(name.to_owned());
            self.f_content.push(content.to_vec());
        }
        self
    }

    /// The row of `action`, added (as a result with no start yet) when it has none.
    fn row(
        &mut self,
        row_of: &mut HashMap<String, usize>,
        action: &str,
        step: &str,
        host: &str,
    ) -> usize {
        if let Some(i) = row_of.get(action) {
            return *i;
        }
        self.action.push(action.to_owned());
        self.step.push(step.to_owned());
        self.host.push(host.to_owned());
        self.definition_fp.push(String::new());
        self.status.push(String::new());
        self.attempt.push(0);
        self.started_at.push(None);
        self.finished_at.push(None);
        self.duration_ms.push(None);
        self.rc.push(None);
        self.message.push(None);
        row_of.insert(action.to_owned(), self.action.len() - 1);
        self.action.len() - 1
    }
}

/// Migration 4 (see [`super::MIGRATIONS`]): the commit as a server-side function. The
/// statement of data-modifying `WITH` clauses it replaces was parsed and planned on every
/// commit (unnamed statements, as PgBouncer's transaction mode needs, have no plan cache):
/// 1.25 ms of planning for a W1 commit of 20 entries and 30 files, more than a round trip.
/// PL/pgSQL keeps the plans of its statements per server connection, which survives
/// PgBouncer's pooling (the server connections stay). The function runs as its caller
/// (`SECURITY INVOKER`): a role that may not write the tables cannot write through it.
///
/// The fence: its first statement updates the run's lease row where the epoch is the writer's
/// (and records the commit's number, `p_number`, when it is larger than the last of that
/// epoch; NULL: not numbered); when that updates nothing, nothing else is written, and the
/// lease row as it is tells a lost lease from a landed retry. The update locks the row until
/// the commit's transaction ends, so a takeover waits for it. Each table is written only when
/// the batch has rows for it.
pub(super) const MIGRATION: &str = "
CREATE FUNCTION runbook.commit(
    p_run text, p_epoch bigint, p_number bigint, p_at text,
    a_action text[], a_step text[], a_host text[], a_fp text[], a_status text[],
    a_attempt bigint[], a_started_at text[], a_finished_at text[], a_duration_ms bigint[],
    a_rc int[], a_message text[],
    t_action text[], t_status text[],
    o_register text[], o_host text[], o_value text[],
    p_generation bigint[], p_kind text[], p_started_at text[], p_duration_ms bigint[],
    p_ended boolean[], p_planned_ms bigint[],
    f_action text[], f_name text[], f_content bytea[])
RETURNS TABLE (wrote bigint, lease_epoch bigint, last_epoch bigint, last_number bigint)
LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE runbook.leases AS l
       SET commit_epoch = CASE WHEN p_number IS NULL THEN l.commit_epoch ELSE p_epoch END,
           commit_number = COALESCE(p_number, l.commit_number)
     WHERE l.run_id = p_run AND l.epoch = p_epoch
       AND (p_number IS NULL OR l.commit_epoch <> p_epoch OR l.commit_number < p_number);
    IF NOT FOUND THEN
        RETURN QUERY SELECT 0::bigint, l.epoch, l.commit_epoch, l.commit_number
          FROM (SELECT 1) AS one LEFT JOIN runbook.leases AS l ON l.run_id = p_run;
        RETURN;
    END IF;
    IF cardinality(a_action) > 0 THEN
        INSERT INTO runbook.actions AS x (run_id, action, step, host, definition_fp, status,
                                          attempt, started_at, finished_at, duration_ms, rc, message)
        SELECT p_run, a.action, a.step, a.host, a.fp, a.status, a.attempt,
               a.started_at, a.finished_at, a.duration_ms, a.rc, a.message
          FROM unnest(a_action, a_step, a_host, a_fp, a_status, a_attempt, a_started_at,
                      a_finished_at, a_duration_ms, a_rc, a_message)
               AS a(action, step, host, fp, status, attempt, started_at, finished_at,
                    duration_ms, rc, message)
        ON CONFLICT (run_id, action) DO UPDATE SET
            status = EXCLUDED.status,
            definition_fp = EXCLUDED.definition_fp,
            attempt = CASE WHEN EXCLUDED.started_at IS NULL THEN x.attempt
                           ELSE EXCLUDED.attempt END,
            started_at = COALESCE(EXCLUDED.started_at, x.started_at),
            finished_at = EXCLUDED.finished_at,
            duration_ms = EXCLUDED.duration_ms,
            rc = EXCLUDED.rc,
            message = EXCLUDED.message;
    END IF;
    IF cardinality(t_action) > 0 THEN
        INSERT INTO runbook.transitions (run_id, action, status, epoch, at)
        SELECT p_run, t.action, t.status, p_epoch, p_at
          FROM unnest(t_action, t_status) WITH ORDINALITY AS t(action, status, n)
         ORDER BY t.n;
    END IF;
    IF cardinality(o_register) > 0 THEN
        INSERT INTO runbook.outputs (run_id, register, host, value)
        SELECT p_run, o.register, o.host, o.value
          FROM unnest(o_register, o_host, o_value) AS o(register, host, value)
        ON CONFLICT (run_id, register, host) DO UPDATE SET value = EXCLUDED.value;
    END IF;
    IF cardinality(p_kind) > 0 THEN
        INSERT INTO runbook.outages (run_id, generation, kind, started_at, duration_ms, ended,
                                     planned_ms)
        SELECT p_run, p.generation, p.kind, p.started_at, p.duration_ms, p.ended, p.planned_ms
          FROM unnest(p_generation, p_kind, p_started_at, p_duration_ms, p_ended, p_planned_ms)
               AS p(generation, kind, started_at, duration_ms, ended, planned_ms)
        ON CONFLICT (run_id, generation, kind) DO UPDATE SET
            started_at = EXCLUDED.started_at,
            duration_ms = EXCLUDED.duration_ms,
            ended = EXCLUDED.ended,
            planned_ms = EXCLUDED.planned_ms;
    END IF;
    IF cardinality(f_action) > 0 THEN
        INSERT INTO runbook.files (run_id, action, name, content, epoch)
        SELECT p_run, f.action, f.name, f.content, p_epoch
          FROM unnest(f_action, f_name, f_content) AS f(action, name, content)
        ON CONFLICT (run_id, action, name) DO UPDATE SET
            content = EXCLUDED.content,
            epoch = EXCLUDED.epoch;
    END IF;
    RETURN QUERY SELECT 1::bigint, p_epoch, NULL::bigint, NULL::bigint;
END
$fn$;
";

/// The call: one statement, its own transaction.
const CALL: &str = "SELECT wrote, lease_epoch, last_epoch, last_number FROM runbook.commit(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
    $21, $22, $23, $24, $25, $26, $27, $28, $29)";

/// Runs the commit once.
pub(crate) async fn apply(
    client: Arc<tokio::sync::Mutex<Client>>,
    run: Arc<str>,
    epoch: i64,
    number: Option<i64>,
    b: Arc<Batch>,
) -> Result<Outcome, tokio_postgres::Error> {
    let c = client.lock().await;
    let run: &str = &run;
    let row = c
        .query_typed_one(
            CALL,
            &[
                (&run, Type::TEXT),
                (&epoch, Type::INT8),
                (&number, Type::INT8),
                (&b.at, Type::TEXT),
                (&b.action, Type::TEXT_ARRAY),
                (&b.step, Type::TEXT_ARRAY),
                (&b.host, Type::TEXT_ARRAY),
                (&b.definition_fp, Type::TEXT_ARRAY),
                (&b.status, Type::TEXT_ARRAY),
                (&b.attempt, Type::INT8_ARRAY),
                (&b.started_at, Type::TEXT_ARRAY),
                (&b.finished_at, Type::TEXT_ARRAY),
                (&b.duration_ms, Type::INT8_ARRAY),
                (&b.rc, Type::INT4_ARRAY),
                (&b.message, Type::TEXT_ARRAY),
                (&b.t_action, Type::TEXT_ARRAY),
                (&b.t_status, Type::TEXT_ARRAY),
                (&b.o_register, Type::TEXT_ARRAY),
                (&b.o_host, Type::TEXT_ARRAY),
                (&b.o_value, Type::TEXT_ARRAY),
                (&b.p_generation, Type::INT8_ARRAY),
                (&b.p_kind, Type::TEXT_ARRAY),
                (&b.p_started_at, Type::TEXT_ARRAY),
                (&b.p_duration_ms, Type::INT8_ARRAY),
                (&b.p_ended, Type::BOOL_ARRAY),
                (&b.p_planned_ms, Type::INT8_ARRAY),
                (&b.f_action, Type::TEXT_ARRAY),
                (&b.f_name, Type::TEXT_ARRAY),
                (&b.f_content, Type::BYTEA_ARRAY),
            ],
        )
        .await?;
    if row.get::<_, i64>(0) == 1 {
        return Ok(Outcome::Landed(Landed::Now));
    }
    let held = row.get::<_, Option<i64>>(1) == Some(epoch);
    let landed = match number {
        Some(n) => {
            row.get::<_, Option<i64>>(2) == Some(epoch)
                && row.get::<_, Option<i64>>(3).is_some_and(|last| last >= n)
        }
        None => false,
    };
    Ok(if held && landed {
        Outcome::Landed(Landed::Before)
    } else {
        Outcome::Taken
    })
}

/// The last commit number recorded for `epoch` (0 when none): where a controller's numbering
/// goes on from, so two holders of one epoch never reuse a number.
pub(crate) async fn last_number(
    client: Arc<tokio::sync::Mutex<Client>>,
    run: Arc<str>,
    epoch: i64,
) -> Result<i64, tokio_postgres::Error> {
    let c = client.lock().await;
    let run: &str = &run;
    let row = c
        .query_typed_opt(
            "SELECT commit_number FROM runbook.leases WHERE run_id = $1 AND commit_epoch = $2",
            &[(&run, Type::TEXT), (&epoch, Type::INT8)],
        )
        .await?;
    Ok(row.map_or(0, |r| r.get(0)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Batch;
    use crate::journal::{Entry, Piece};

    fn started(action: &str, attempt: u32) -> Entry {
        Entry::Started {
            action: action.into(),
            step: "s".into(),
            host: "a".into(),
            definition_fp: format!("fp{attempt}"),
            attempt,
        }
    }

    fn finished(action: &str, status: &str, output: Option<&str>) -> Entry {
        Entry::Finished {
            action: action.into(),
            step: "s".into(),
            host: "a".into(),
            definition_fp: "fpf".into(),
            status: status.into(),
            rc: Some(1),
            duration: Duration::from_millis(7),
            message: Some("m".into()),
            output: output.map(|v| ("out".into(), v.into())),
        }
    }

    #[test]
    fn a_start_and_a_result_of_one_action_fold_into_one_row_and_two_transitions() {
        let b = Batch::new(&[
            started("s@a", 2),
            finished("s@a", "ok", Some("1")),
            started("t@a", 1),
        ]);
        assert_eq!(b.action, ["s@a", "t@a"]);
        assert_eq!(b.status, ["ok", "started"]);
        assert_eq!(b.attempt, [2, 1], "the result keeps the start's attempt");
        assert!(b.started_at[0].is_some() && b.finished_at[0].is_some());
        assert_eq!(b.duration_ms, [Some(7), None]);
        assert_eq!(b.definition_fp, ["fpf", "fp1"]);
        assert_eq!(b.t_action, ["s@a", "s@a", "t@a"]);
        assert_eq!(b.t_status, ["started", "ok", "started"]);
        assert_eq!(b.o_value, ["1"]);
    }

    #[test]
    fn a_start_after_a_result_clears_it_and_the_last_output_and_piece_win() {
        let piece = |ms| {
            Entry::Piece(Piece {
                kind: "outage".into(),
                generation: 1,
                started_at: "t".into(),
                duration_ms: ms,
                ended: false,
                planned_ms: 9,
            })
        };
        let b = Batch::new(&[
            finished("s@a", "failed", Some("1")),
            piece(1),
            started("s@a", 2),
            finished("s@a", "ok", Some("2")),
            piece(5),
        ]);
        assert_eq!(b.status, ["ok"]);
        assert_eq!(b.rc, [Some(1)]);
        assert_eq!(b.o_value, ["2"], "one row per register and host, the last");
        assert_eq!(
            b.p_duration_ms,
            [5],
            "one row per generation and kind, the last"
        );
        let c = Batch::new(&[finished("s@a", "failed", None), started("s@a", 2)]);
        assert_eq!(c.status, ["started"]);
        assert_eq!(
            (c.finished_at[0].clone(), c.rc[0], c.message[0].clone()),
            (None, None, None),
            "a new start clears the earlier result"
        );
    }
}
