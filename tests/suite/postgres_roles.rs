//! Who may read the shared journal (docs/team.md): the grants that page gives, run as written,
//! let a read-only role open the journal and read runs, and refuse its writes.

use runbook::journal::postgres::Database;

use crate::postgres::record;
use crate::postgres_server::Server;

/// The `sql` block of docs/team.md, less the line creating the controllers' role `runbook`:
/// in the tests' cluster that role is the superuser `initdb` made.
fn team_grants() -> String {
    let doc = fs_err::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/team.md"))
        .expect("docs/team.md");
    let (_, rest) = doc
        .split_once("```sql\n")
        .expect("team.md has an sql block");
    let (block, _) = rest.split_once("```").expect("the block ends");
    block
        .lines()
        .filter(|l| !l.starts_with("CREATE ROLE runbook LOGIN"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_role_granted_as_team_md_says_reads_the_journal_and_cannot_write_it() {
    let server = Server::start();
    server.psql(&team_grants());
    // The first controller creates the tables; the default privileges let the reader read them.
    let controller = Database::open(&server.url()).expect("the controllers' role");
    controller.create_run(&record("r1")).expect("create");
    let reader =
        Database::open(&server.url_as("runbook_read")).expect("the read-only role opens it");
    assert_eq!(reader.runs().expect("runs"), vec![record("r1")]);
    let refused = reader
        .create_run(&record("r2"))
        .expect_err("the read-only role cannot write");
    assert!(refused.message.contains("permission denied"), "{refused}");
    let status = crate::support::run(&[
        "status",
        "r1",
        "--format",
        "json",
        "--state",
        &server.url_as("runbook_read"),
    ]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(
        controller.runs().expect("runs"),
        vec![record("r1")],
        "nothing written"
    );
}
