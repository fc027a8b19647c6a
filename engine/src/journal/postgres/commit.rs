//! One commit of journal entries in one statement, epoch-fenced and numbered (issue 14).
//!
//! A commit of N entries was 2N + 3 round trips (`BEGIN`, the lease's `FOR UPDATE`, an
//! `INSERT` per action and per transition, `COMMIT`): 10.9 ms for the 20 entries of a W1 step
//! on localhost. Now it is one statement, so one round trip whatever N: the entries travel as
//! arrays, `unnest` turns them back into rows, and data-modifying `WITH` clauses write every
//! table. A single statement is its own transaction (all or nothing), holds nothing between
//! round trips, and needs no prepared statement, so it works the same behind PgBouncer in
//! transaction pooling mode.
//!
//! **The fence.** The statement's first clause updates the run's lease row where the epoch is
//! the writer's; every insert is joined to that clause, so when the lease was taken nothing is
//! written. The update locks the row to the end of the statement: a takeover (which updates it
//! too) waits for the commit, and a commit after a takeover finds another epoch.
//!
//! **The number.** A controller numbers its commits (1, 2, … within its epoch) and the same
//! clause records the number on the lease row, writing only if it is larger than the last one
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

/// The statement, in parts: the fence, a clause per table (only those the batch has rows for:
/// a statement that names fewer tables is planned sooner, and the server plans every commit,
/// as it must with unnamed statements), and the answer. `$3` is the commit's number (NULL: not
/// numbered, written whenever the epoch holds). The final `SELECT` reads the lease row as it
/// was before the statement (all clauses share one snapshot), which tells a landed retry from
/// a lost lease when nothing was written.
const FENCE: &str = "
WITH lease AS (
    UPDATE runbook.leases
       SET commit_epoch = CASE WHEN $3::bigint IS NULL THEN commit_epoch ELSE $2 END,
           commit_number = COALESCE($3::bigint, commit_number)
     WHERE run_id = $1 AND epoch = $2
       AND ($3::bigint IS NULL OR commit_epoch <> $2 OR commit_number < $3::bigint)
    RETURNING run_id
)";

const ACTIONS: &str = ",
acts AS (
    INSERT INTO runbook.actions (run_id, action, step, host, definition_fp, status, attempt,
                                 started_at, finished_at, duration_ms, rc, message)
    SELECT lease.run_id, a.action, a.step, a.host, a.fp, a.status, a.attempt,
           a.started_at, a.finished_at, a.duration_ms, a.rc, a.message
      FROM lease, unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                         $10::bigint[], $11::text[], $12::text[], $13::bigint[], $14::int[],
                         $15::text[])
           AS a(action, step, host, fp, status, attempt, started_at, finished_at,
                duration_ms, rc, message)
    ON CONFLICT (run_id, action) DO UPDATE SET
        status = EXCLUDED.status,
        definition_fp = EXCLUDED.definition_fp,
        attempt = CASE WHEN EXCLUDED.started_at IS NULL THEN runbook.actions.attempt
                       ELSE EXCLUDED.attempt END,
        started_at = COALESCE(EXCLUDED.started_at, runbook.actions.started_at),
        finished_at = EXCLUDED.finished_at,
        duration_ms = EXCLUDED.duration_ms,
        rc = EXCLUDED.rc,
        message = EXCLUDED.message
)";

const TRANSITIONS: &str = ",
trans AS (
    INSERT INTO runbook.transitions (run_id, action, status, epoch, at)
    SELECT lease.run_id, t.action, t.status, $2, $4
      FROM lease, unnest($16::text[], $17::text[]) WITH ORDINALITY AS t(action, status, n)
     ORDER BY t.n
)";

const OUTPUTS: &str = ",
outs AS (
    INSERT INTO runbook.outputs (run_id, register, host, value)
    SELECT lease.run_id, o.register, o.host, o.value
      FROM lease, unnest($18::text[], $19::text[], $20::text[]) AS o(register, host, value)
    ON CONFLICT (run_id, register, host) DO UPDATE SET value = EXCLUDED.value
)";

const PIECES: &str = ",
pieces AS (
    INSERT INTO runbook.outages (run_id, generation, kind, started_at, duration_ms, ended,
                                 planned_ms)
    SELECT lease.run_id, p.generation, p.kind, p.started_at, p.duration_ms, p.ended,
           p.planned_ms
      FROM lease, unnest($21::bigint[], $22::text[], $23::text[], $24::bigint[],
                         $25::boolean[], $26::bigint[])
           AS p(generation, kind, started_at, duration_ms, ended, planned_ms)
    ON CONFLICT (run_id, generation, kind) DO UPDATE SET
        started_at = EXCLUDED.started_at,
        duration_ms = EXCLUDED.duration_ms,
        ended = EXCLUDED.ended,
        planned_ms = EXCLUDED.planned_ms
)";

const FILES: &str = ",
files AS (
    INSERT INTO runbook.files (run_id, action, name, content, epoch)
    SELECT lease.run_id, f.action, f.name, f.content, $2
      FROM lease, unnest($27::text[], $28::text[], $29::bytea[]) AS f(action, name, content)
    ON CONFLICT (run_id, action, name) DO UPDATE SET
        content = EXCLUDED.content,
        epoch = EXCLUDED.epoch
)";

const ANSWER: &str = "
SELECT (SELECT count(*) FROM lease), l.epoch, l.commit_epoch, l.commit_number
  FROM (SELECT 1) AS one LEFT JOIN runbook.leases l ON l.run_id = $1";

/// The statement for `b`.
fn statement(b: &Batch) -> String {
    let mut sql = String::from(FENCE);
    for (rows, clause) in [
        (b.action.len(), ACTIONS),
        (b.t_action.len(), TRANSITIONS),
        (b.o_register.len(), OUTPUTS),
        (b.p_kind.len(), PIECES),
        (b.f_action.len(), FILES),
    ] {
        if rows > 0 {
            sql.push_str(clause);
        }
    }
    sql.push_str(ANSWER);
    sql
}

/// Runs the statement once.
pub(crate) async fn apply(
    client: Arc<tokio::sync::Mutex<Client>>,
    run: Arc<str>,
    epoch: i64,
    number: Option<i64>,
    b: Arc<Batch>,
) -> Result<Outcome, tokio_postgres::Error> {
    let sql = statement(&b);
    let c = client.lock().await;
    let run: &str = &run;
    let row = c
        .query_typed_one(
            &sql,
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
