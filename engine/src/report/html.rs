//! The report as one self-contained HTML page (no script, no network): the facts, an SVG
//! timeline with a lane per host and a bar per action coloured by its status, the planned and
//! used windows shaded and approvals marked, then every action with its output excerpt.

use std::fmt::Write as _;

use super::{Report, Span, shown};

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(status: &str) -> &'static str {
    match status {
        "ok" => "#4caf50",
        "changed" => "#1e88e5",
        "failed" | "timed_out" => "#e53935",
        "unreachable" | "unknown" => "#8e24aa",
        "skipped" => "#bdbdbd",
        "blocked" => "#757575",
        "awaiting_approval" => "#fb8c00",
        _ => "#9e9e9e",
    }
}

fn ts(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

const LANE: f64 = 28.0;
const LEFT: f64 = 140.0;
const WIDTH: f64 = 1000.0;
const TOP: f64 = 24.0;

/// The timeline: x is time from the earliest instant shown to the latest.
fn timeline(r: &Report) -> String {
    let hosts = r.hosts();
    let mut instants: Vec<jiff::Timestamp> = Vec::new();
    for a in &r.actions {
        instants.extend(a.started_at.as_deref().and_then(ts));
        instants.extend(a.finished_at.as_deref().and_then(ts));
    }
    instants.extend(r.approvals.iter().filter_map(|a| ts(&a.at)));
    let (Some(&t0), Some(&t1)) = (instants.iter().min(), instants.iter().max()) else {
        return "<p>No action started: nothing to draw.</p>".into();
    };
    let total = t1.duration_since(t0).as_secs_f64().max(1.0);
    let x = |t: jiff::Timestamp| {
        LEFT + (t.duration_since(t0).as_secs_f64() / total) * (WIDTH - LEFT - 10.0)
    };
    let clamp = |v: f64| v.clamp(LEFT, WIDTH - 10.0);
    #[allow(clippy::cast_precision_loss)] // a handful of hosts
    let height = TOP + LANE * hosts.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="timeline of the run">"#
    );
    let shade = |s: &mut String, span: &Span, class: &str, fill: &str, label: &str| {
        if let (Some(a), Some(b)) = (ts(&span.start), ts(&span.end)) {
            let (xa, xb) = (clamp(x(a)), clamp(x(b)));
            if xb > xa {
                let _ = writeln!(
                    s,
                    r#"<rect class="{class}" x="{xa:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}"><title>{}</title></rect>"#,
                    TOP - 14.0,
                    xb - xa,
                    height - TOP - 2.0,
                    esc(label)
                );
            }
        }
    };
    if let Some(p) = &r.window.planned_span {
        shade(
            &mut s,
            p,
            "window-planned",
            "#fff3e0",
            &format!("window planned: {} → {}", p.start, p.end),
        );
    }
    if let Some(u) = &r.window.used {
        shade(
            &mut s,
            u,
            "window-used",
            "#e3f2fd",
            &format!("window used: {:.1} s", u.secs),
        );
    }
    for (o, class, fill) in [
        (&r.outage, "outage", "#ffcdd2"),
        (&r.freeze, "freeze", "#ef9a9a"),
    ] {
        for piece in o.iter().flat_map(|o| &o.pieces) {
            shade(
                &mut s,
                piece,
                class,
                fill,
                &format!("{class}: {:.1} s", piece.secs),
            );
        }
    }
    for (i, host) in hosts.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let y = TOP + LANE * i as f64;
        let _ = writeln!(
            s,
            r##"<text x="4" y="{:.1}" font-family="sans-serif" font-size="13">{}</text><line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#eeeeee"/>"##,
            y + 17.0,
            esc(host),
            WIDTH - 10.0,
            y + LANE,
            y + LANE
        );
        for a in r.actions.iter().filter(|a| &a.host == host) {
            // From its recorded start for its measured duration (the recorded end is when the
            // result was committed, with others of its batch); else to its recorded end.
            let Some(start) = a.started_at.as_deref().and_then(ts) else {
                continue;
            };
            let end = a
                .duration_secs
                .and_then(|d| {
                    start
                        .checked_add(jiff::SignedDuration::from_secs_f64(d))
                        .ok()
                })
                .or_else(|| a.finished_at.as_deref().and_then(ts))
                .unwrap_or(t1);
            let (xa, xb) = (x(start), x(end.max(start)));
            let _ = writeln!(
                s,
                r#"<rect class="action" data-action="{}" data-status="{}" x="{xa:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="2" fill="{}"><title>{} {} ({})</title></rect>"#,
                esc(&a.action),
                esc(&a.status),
                y + 4.0,
                (xb - xa).max(2.0),
                LANE - 8.0,
                colour(&a.status),
                esc(&a.action),
                esc(&a.status),
                a.duration_secs
                    .map_or_else(|| "–".into(), |d| format!("{d:.1} s"))
            );
        }
    }
    for ap in &r.approvals {
        if let Some(t) = ts(&ap.at) {
            let xa = clamp(x(t));
            let _ = writeln!(
                s,
                r##"<line class="approval" data-step="{}" x1="{xa:.1}" x2="{xa:.1}" y1="{:.1}" y2="{:.1}" stroke="#fb8c00" stroke-width="2" stroke-dasharray="4 2"><title>approved {} by {}: {}</title></line>"##,
                esc(&ap.step),
                TOP - 14.0,
                height - 16.0,
                esc(&ap.step),
                esc(&ap.by),
                esc(&ap.reason)
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="{:.1}" font-family="sans-serif" font-size="11">{}</text><text x="{:.1}" y="{:.1}" font-family="sans-serif" font-size="11" text-anchor="end">+{total:.1} s</text>"#,
        height - 4.0,
        esc(&format!("{t0:.3}")),
        WIDTH - 10.0,
        height - 4.0
    );
    s.push_str("</svg>\n");
    s
}

pub fn html(r: &Report) -> String {
    let mut o = String::new();
    let title = format!(
        "{} {} — run {}",
        r.runbook.name, r.runbook.version, r.run_id
    );
    let _ = writeln!(
        o,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #212121; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; font-size: 13px; vertical-align: top; }}
code, pre {{ font-family: monospace; font-size: 12px; }}
pre {{ background: #fafafa; padding: 6px; margin: 0; white-space: pre-wrap; }}
.close {{ font-size: 18px; padding: 8px; border-radius: 4px; display: inline-block; }}
.successful {{ background: #e8f5e9; }} .successful_with_issues {{ background: #fff8e1; }} .unsuccessful {{ background: #ffebee; }}
.legend span {{ display: inline-block; padding: 1px 6px; margin-right: 6px; color: white; font-size: 12px; }}
</style></head><body>"#,
        esc(&title)
    );
    let _ = writeln!(o, "<h1>{}</h1>", esc(&title));
    let _ = writeln!(
        o,
        r#"<p class="close {}" id="close">Close code: <b>{}</b> — {}</p>"#,
        r.close.code,
        r.close.code,
        esc(&r.close.reason)
    );
    let _ = writeln!(o, "<table id=\"facts\">");
    let facts = r.facts(|file, sha| format!("{file} (sha256 {sha})"));
    for (k, v) in facts {
        let _ = writeln!(o, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    for (k, v) in &r.params {
        let _ = writeln!(
            o,
            "<tr><th>param <code>{}</code></th><td><code>{}</code></td></tr>",
            esc(k),
            esc(v)
        );
    }
    o.push_str("</table>\n<h2>Timeline</h2>\n<p class=\"legend\">");
    for status in [
        "ok",
        "changed",
        "failed",
        "unreachable",
        "skipped",
        "blocked",
        "awaiting_approval",
    ] {
        let _ = write!(
            o,
            r#"<span style="background:{}">{status}</span>"#,
            colour(status)
        );
    }
    o.push_str("</p>\n");
    o.push_str(&timeline(r));
    o.push_str("<h2>Actions</h2>\n<table id=\"actions\"><tr><th>action</th><th>status</th><th>rc</th><th>attempts</th><th>started</th><th>ended</th><th>duration</th><th>message</th><th>output</th></tr>\n");
    for a in &r.actions {
        let output = a.output.as_ref().map_or_else(String::new, |out| {
            format!(
                "<pre>{}</pre><small>stdout {} B, sha256 <code>{}</code></small>",
                esc(&out.excerpt),
                out.stdout_bytes,
                esc(&out.stdout_sha256)
            )
        });
        let _ = writeln!(
            o,
            r#"<tr class="action-row" data-action="{}"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{output}</td></tr>"#,
            esc(&a.action),
            esc(&a.action),
            esc(&a.status),
            a.rc.map_or_else(|| "–".into(), |rc| rc.to_string()),
            a.attempts,
            esc(&a.started_at.as_deref().map_or_else(|| "–".into(), shown)),
            esc(&a.finished_at.as_deref().map_or_else(|| "–".into(), shown)),
            a.duration_secs
                .map_or_else(|| "–".into(), |d| format!("{d:.1} s")),
            esc(a.message.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</table>\n");
    if !r.steals.is_empty() {
        o.push_str("<h2>Lease steals</h2>\n<table id=\"steals\"><tr><th>by</th><th>when</th><th>from</th><th>why</th></tr>\n");
        for s in &r.steals {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{} (epoch {})</td><td>{}</td></tr>",
                esc(&s.by),
                esc(&shown(&s.at)),
                esc(&s.from),
                s.epoch,
                esc(&s.reason)
            );
        }
        o.push_str("</table>\n");
    }
    if !r.approvals.is_empty() || !r.decisions.is_empty() {
        o.push_str("<h2>Approvals and resolutions</h2>\n<table id=\"approvals\"><tr><th>what</th><th>by</th><th>when</th><th>why</th></tr>\n");
        for a in &r.approvals {
            let _ = writeln!(
                o,
                "<tr><td>approved <code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.step),
                esc(&a.by),
                esc(&shown(&a.at)),
                esc(&a.reason)
            );
        }
        for d in &r.decisions {
            let _ = writeln!(
                o,
                "<tr><td>resolved <code>{}</code> as {}</td><td>{}</td><td>{}</td><td></td></tr>",
                esc(&d.action),
                esc(&d.decision),
                esc(&d.by),
                esc(&shown(&d.at))
            );
        }
        o.push_str("</table>\n");
    }
    if !r.artifacts.is_empty() {
        o.push_str("<h2>Artifacts</h2>\n<table id=\"artifacts\"><tr><th>action</th><th>file</th><th>bytes</th><th>lines</th><th>sha256</th></tr>\n");
        for a in &r.artifacts {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&a.action),
                esc(&a.name),
                a.bytes,
                a.lines,
                esc(&a.sha256)
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("</body></html>\n");
    o
}
