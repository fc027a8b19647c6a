//! The report as Markdown, for pasting into a change ticket.

use std::fmt::Write as _;

use super::{Report, shown};

/// A table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

fn secs(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |s| format!("{s:.1} s"))
}

pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Run report: {} {} (run `{}`)\n",
        r.runbook.name, r.runbook.version, r.run_id
    );
    let _ = writeln!(o, "**Close code: {}** — {}\n", r.close.code, r.close.reason);
    let _ = writeln!(o, "| | |\n| --- | --- |");
    let rows = r.facts(|file, sha| format!("`{file}` (sha256 `{}`)", short(sha)));
    for (k, v) in rows {
        let _ = writeln!(o, "| {k} | {} |", cell(&v));
    }
    if !r.params.is_empty() {
        let _ = writeln!(o, "\n## Parameters\n\n| name | value |\n| --- | --- |");
        for (k, v) in &r.params {
            let _ = writeln!(o, "| `{}` | `{}` |", cell(k), cell(v));
        }
    }
    let _ = writeln!(
        o,
        "\n## Actions\n\n| action | status | rc | attempts | started | ended | duration |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for a in &r.actions {
        let _ = writeln!(
            o,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            a.action,
            a.status,
            a.rc.map_or_else(|| "–".into(), |rc| rc.to_string()),
            a.attempts,
            a.started_at.as_deref().map_or_else(|| "–".into(), shown),
            a.finished_at.as_deref().map_or_else(|| "–".into(), shown),
            secs(a.duration_secs)
        );
    }
    let troubled: Vec<_> = r
        .actions
        .iter()
        .filter(|a| a.message.is_some() || !matches!(a.status.as_str(), "ok" | "changed"))
        .collect();
    if !troubled.is_empty() {
        let _ = writeln!(o, "\n## Messages\n");
        for a in troubled {
            let _ = writeln!(
                o,
                "- `{}` {}: {}",
                a.action,
                a.status,
                cell(a.message.as_deref().unwrap_or(""))
            );
        }
    }
    if !r.steals.is_empty() {
        let _ = writeln!(
            o,
            "\n## Lease steals\n\n| by | when | from | why |\n| --- | --- | --- | --- |"
        );
        for s in &r.steals {
            let _ = writeln!(
                o,
                "| {} | {} | {} (epoch {}) | {} |",
                cell(&s.by),
                shown(&s.at),
                cell(&s.from),
                s.epoch,
                cell(&s.reason)
            );
        }
    }
    if !r.approvals.is_empty() || !r.decisions.is_empty() {
        let _ = writeln!(
            o,
            "\n## Approvals and resolutions\n\n| what | by | when | why |\n| --- | --- | --- | --- |"
        );
        for a in &r.approvals {
            let _ = writeln!(
                o,
                "| approved `{}` | {} | {} | {} |",
                a.step,
                cell(&a.by),
                shown(&a.at),
                cell(&a.reason)
            );
        }
        for d in &r.decisions {
            let _ = writeln!(
                o,
                "| resolved `{}` as {} | {} | {} | |",
                d.action,
                d.decision,
                cell(&d.by),
                shown(&d.at)
            );
        }
    }
    if !r.artifacts.is_empty() {
        let _ = writeln!(
            o,
            "\n## Artifacts\n\n| action | file | bytes | lines | sha256 |\n| --- | --- | --- | --- | --- |"
        );
        for a in &r.artifacts {
            let _ = writeln!(
                o,
                "| `{}` | `{}` | {} | {} | `{}` |",
                a.action,
                cell(&a.name),
                a.bytes,
                a.lines,
                short(&a.sha256)
            );
        }
    }
    let _ = writeln!(o, "\n## Output excerpts\n");
    for a in &r.actions {
        let Some(out) = &a.output else { continue };
        if out.excerpt.trim().is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "<details><summary><code>{}</code> (stdout {} B, sha256 <code>{}</code>)</summary>\n\n```text\n{}```\n\n</details>\n",
            a.action,
            out.stdout_bytes,
            short(&out.stdout_sha256),
            out.excerpt.replace("```", "` ` `")
        );
    }
    o
}

/// The first 16 hex digits of a digest: enough to compare by eye, the whole one is in the JSON.
fn short(sha: &str) -> &str {
    &sha[..sha.len().min(16)]
}
