//! `--report html`: one self-contained page (inline CSS and SVG, no script, no external
//! asset) with the verdict, the targets, and the run drawn on a time axis: the before,
//! during and after phases, each fault's active window per target, every during-probe
//! sample with its latency, and the moment steady state recovered.

use std::fmt::Write as _;

use super::summary::{self, Spans, Totals};
use super::{FaultStatus, RunResult, Verdict};

/// Escapes text for HTML content and quoted attribute values alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// One experiment's page.
pub fn render(r: &RunResult) -> String {
    let title = format!(
        "faultline: {} {}",
        r.experiment.name,
        summary::status_word(r.verdict)
    );
    page(&title, &section(r, 0, "h1"), r)
}

/// Several experiments (a game day) on one page: a summary table, then each experiment.
pub fn render_many(rs: &[RunResult]) -> String {
    if let [one] = rs {
        return render(one);
    }
    let totals = Totals::of(rs);
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<header class=\"summary\"><h1>faultline: {} experiments</h1><p>{}</p></header>",
        rs.len(),
        escape(&totals.sentence())
    );
    body.push_str(
        "<table class=\"grid\"><thead><tr><th>experiment</th><th>verdict</th><th>exit</th>\
         <th>duration</th><th>recovery</th><th>reason</th></tr></thead><tbody>\n",
    );
    for (i, r) in rs.iter().enumerate() {
        let _ = writeln!(
            body,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            section_id(i),
            escape(&r.experiment.name),
            badge(r.verdict),
            r.exit_code,
            summary::duration(r.duration_ms),
            summary::recovery_ms(r)
                .map(summary::duration)
                .unwrap_or_else(|| "-".into()),
            escape(summary::reason(r).unwrap_or(""))
        );
    }
    body.push_str("</tbody></table>\n");
    for (i, r) in rs.iter().enumerate() {
        body.push_str("<hr>\n");
        body.push_str(&section(r, i, "h2"));
    }
    let title = format!("faultline: {}", totals.sentence());
    match rs.first() {
        Some(first) => page(&title, &body, first),
        None => page(&title, &body, &empty_tool()),
    }
}

fn empty_tool() -> RunResult {
    RunResult {
        format_version: 1,
        tool: super::Tool::default(),
        experiment: super::ExperimentRef {
            name: String::new(),
            file: String::new(),
        },
        verdict: Verdict::Passed,
        exit_code: 0,
        started_at: chrono::DateTime::UNIX_EPOCH,
        ended_at: chrono::DateTime::UNIX_EPOCH,
        duration_ms: 0,
        seed: None,
        selection: None,
        selections: Default::default(),
        targets: vec![],
        faults: vec![],
        phases: Default::default(),
        events: vec![],
    }
}

fn section_id(i: usize) -> String {
    format!("experiment-{}", i + 1)
}

/// The first timeline is `timeline`; on a page with several, the others are numbered.
fn timeline_id(i: usize) -> String {
    if i == 0 {
        "timeline".into()
    } else {
        format!("timeline-{}", i + 1)
    }
}

const CSS: &str = r#"
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --fault: #d4622a; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: var(--ink); background: #f6f8fa; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 32px; background: #fff; min-height: 100vh; }
h1, h2, h3 { margin: 0; line-height: 1.25; }
h1 { font-size: 24px; } h2 { font-size: 20px; } h3 { font-size: 16px; margin: 22px 0 8px; }
.head { display: flex; align-items: center; gap: 14px; flex-wrap: wrap; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-weight: 700; font-size: 13px; letter-spacing: .04em; color: #fff; white-space: nowrap; }
.v-passed { background: var(--ok); } .v-failed { background: var(--bad); }
.v-not_steady, .v-no_targets { background: var(--warn); }
.v-error, .v-interrupted, .v-revert_incomplete { background: #8250df; }
.reason { margin: 6px 0 10px; font-size: 16px; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0; padding: 0; list-style: none; color: var(--muted); font-size: 14px; }
.facts b { color: var(--ink); font-weight: 600; }
.alert { margin: 10px 0; padding: 8px 12px; border-left: 4px solid var(--bad); background: #ffebe9; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
svg.timeline { display: block; width: 100%; height: auto; margin-top: 4px; font-family: inherit; }
svg.timeline text { font-size: 12px; fill: var(--ink); }
svg.timeline .muted { fill: var(--muted); }
svg.timeline .on-band { fill: #fff; font-weight: 600; }
svg.timeline .grid { stroke: #eaeef2; stroke-width: 1; }
svg.timeline .axis { stroke: #8c959f; stroke-width: 1; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 6px 0 0; padding: 0; list-style: none; font-size: 13px; color: var(--muted); }
.legend svg { vertical-align: -2px; margin-right: 5px; }
table.grid { border-collapse: collapse; width: 100%; font-size: 14px; }
table.grid th, table.grid td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.grid th { font-weight: 600; background: #f6f8fa; }
td.pass { color: var(--ok); font-weight: 600; } td.fail { color: var(--bad); font-weight: 700; }
details { margin-top: 18px; } summary { cursor: pointer; font-weight: 600; }
hr { border: 0; border-top: 2px solid var(--line); margin: 28px 0; }
footer { margin-top: 26px; color: var(--muted); font-size: 12px; }
a { color: #0969da; }
"#;

fn page(title: &str, body: &str, r: &RunResult) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}\
         <footer>Generated by {} {} (report format {}).</footer>\n</main>\n</body>\n</html>\n",
        escape(title),
        escape(&r.tool.name),
        escape(&r.tool.version),
        r.format_version
    )
}

fn badge(v: Verdict) -> String {
    format!(
        "<span class=\"badge v-{}\">{}</span>",
        v.as_str(),
        summary::status_word(v)
    )
}

fn section(r: &RunResult, index: usize, heading: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<section class=\"experiment\" id=\"{}\">\n<div class=\"head\">{}<{heading}>{}</{heading}></div>\n",
        section_id(index),
        badge(r.verdict),
        escape(&r.experiment.name)
    );
    if let Some(why) = summary::reason(r) {
        let _ = writeln!(s, "<p class=\"reason\">{}</p>", escape(why));
    }
    facts(&mut s, r);
    if r.verdict == Verdict::RevertIncomplete {
        s.push_str(
            "<p class=\"alert\">A fault may still be active: run <code>faultline recover</code>.</p>\n",
        );
    }
    s.push_str("<h3>Timeline</h3>\n");
    s.push_str(&timeline(r, &timeline_id(index)));
    let probes: Vec<String> = summary::probe_rows(r).into_iter().map(probe_row).collect();
    let columns = "<th>phase</th><th>probe</th><th>kind</th><th>result</th><th>detail</th>";
    grid(&mut s, "<h3>Probes</h3>\n", columns, &probes, "");
    let faults: Vec<String> = r.faults.iter().map(|f| fault_row(r, f)).collect();
    let columns = "<th>fault</th><th>target</th><th>status</th><th>injected</th><th>active</th><th>error</th>";
    grid(&mut s, "<h3>Faults</h3>\n", columns, &faults, "");
    let targets: Vec<String> = r.targets.iter().map(target_row).collect();
    let columns = "<th>name</th><th>platform</th><th>id</th>";
    grid(&mut s, "<h3>Targets</h3>\n", columns, &targets, "");
    let events: Vec<String> = r.events.iter().map(|e| event_row(r, e)).collect();
    let columns = "<th>at</th><th>event</th><th>message</th>";
    let open = "<details open><summary>Events</summary>\n";
    grid(&mut s, open, columns, &events, "</details>");
    s.push_str("</section>\n");
    s
}

/// The run's facts: exit code, duration, recovery, targets, start, seed, file.
fn facts(s: &mut String, r: &RunResult) {
    s.push_str("<ul class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(s, "<li>{k} <b>{v}</b></li>");
    };
    fact("exit code", r.exit_code.to_string());
    fact("duration", summary::duration(r.duration_ms));
    match (summary::recovery_ms(r), &r.phases.after) {
        (Some(_), _) => fact("recovery", summary::recovery_text(r).unwrap_or_default()),
        (None, Some(_)) => fact("recovery", "not in time".into()),
        (None, None) => {}
    }
    if !r.targets.is_empty() {
        let key = if r.targets.len() == 1 {
            "target"
        } else {
            "targets"
        };
        fact(key, escape(&summary::target_list(r)));
    }
    fact(
        "started",
        r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    if let Some(seed) = r.seed {
        fact("seed", seed.to_string());
    }
    fact(
        "file",
        format!("<span class=\"mono\">{}</span>", escape(&r.experiment.file)),
    );
    s.push_str("</ul>\n");
}

/// A table of rows (each one `<tr>…</tr>` line) under its `<thead>` columns; nothing
/// without rows.
fn grid(s: &mut String, open: &str, columns: &str, rows: &[String], close: &str) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "{open}<table class=\"grid\"><thead><tr>{columns}</tr></thead><tbody>"
    );
    for row in rows {
        s.push_str(row);
        s.push('\n');
    }
    let _ = writeln!(s, "</tbody></table>{close}");
}

fn probe_row(p: summary::ProbeRow<'_>) -> String {
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
        p.phase,
        escape(p.name),
        escape(p.kind),
        if p.passed { "pass" } else { "fail" },
        if p.passed { "pass" } else { "FAIL" },
        escape(&p.detail)
    )
}

fn fault_row(r: &RunResult, f: &super::FaultRecord) -> String {
    let injected = f
        .injected_at
        .map(|t| format!("+{}", summary::duration(summary::offset(r, t))))
        .unwrap_or_else(|| "-".into());
    format!(
        "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{injected}</td><td>{}</td><td>{}</td></tr>",
        escape(&summary::fault_detail(f)),
        escape(&summary::fault_target(f)),
        if summary::fault_failed(f) { "fail" } else { "" },
        summary::fault_status_word(f.status),
        summary::active_text(f),
        escape(f.error.as_deref().unwrap_or(""))
    )
}

fn target_row(t: &super::TargetRef) -> String {
    let short: String = t.id.chars().take(12).collect();
    format!(
        "<tr><td>{}</td><td>{}</td><td class=\"mono\" title=\"{}\">{}</td></tr>",
        escape(&t.name),
        escape(&t.platform),
        escape(&t.id),
        escape(&short)
    )
}

fn event_row(r: &RunResult, e: &super::Event) -> String {
    let at = summary::duration(summary::offset(r, e.at));
    let kind = escape(e.kind.as_str());
    format!(
        "<tr><td class=\"mono\">+{at}</td><td>{kind}</td><td>{}</td></tr>",
        escape(&e.message)
    )
}

// Geometry of the timeline, in SVG user units (the SVG scales to the page's width).
const WIDTH: f64 = 1000.0;
const LEFT: f64 = 128.0;
const RIGHT: f64 = 18.0;
const ROW: f64 = 22.0;
const GAP: f64 = 6.0;
const CHART: f64 = 190.0;

const BEFORE: &str = "#54aeff";
const DURING: &str = "#fb8f44";
const AFTER: &str = "#4ac26b";
const FAULT: &str = "#d4622a";
const OK: &str = "#1a7f37";
const BAD: &str = "#cf222e";

struct Scale {
    end: u64,
}

impl Scale {
    fn x(&self, ms: u64) -> f64 {
        LEFT + (ms.min(self.end) as f64 / self.end as f64) * (WIDTH - LEFT - RIGHT)
    }
}

/// Round tick steps: 1, 2 or 5 times a power of ten, at most about `n` ticks up to `max`.
fn tick_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// A rough text width, to decide whether a label fits inside a band.
fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * 6.6
}

fn time_label(ms: f64, step: f64) -> String {
    if step >= 1000.0 {
        format!("{}s", (ms / 1000.0).round())
    } else if step >= 100.0 {
        format!("{:.1}s", ms / 1000.0)
    } else if step >= 10.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{}ms", ms.round())
    }
}

/// A sample mark; several during probes get different shapes.
fn mark(class: &str, shape: usize, x: f64, y: f64, fill: &str, title: &str) -> String {
    let t = format!("<title>{}</title>", escape(title));
    match shape % 4 {
        0 => format!(
            "<circle class=\"{class}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.6\" fill=\"{fill}\">{t}</circle>"
        ),
        1 => format!(
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"7\" height=\"7\" fill=\"{fill}\">{t}</rect>",
            x - 3.5,
            y - 3.5
        ),
        2 => format!(
            "<path class=\"{class}\" d=\"M{x:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z\" fill=\"{fill}\">{t}</path>",
            y - 4.5,
            x + 4.2,
            y + 3.2,
            x - 4.2,
            y + 3.2
        ),
        _ => format!(
            "<path class=\"{class}\" d=\"M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}Z\" fill=\"{fill}\">{t}</path>",
            y - 4.5,
            x + 4.5,
            y + 4.5,
            x - 4.5
        ),
    }
}

fn legend_swatch(inner: &str) -> String {
    format!(
        "<svg width=\"18\" height=\"12\" viewBox=\"0 0 18 12\" aria-hidden=\"true\">{inner}</svg>"
    )
}

/// A fault placed on the time axis.
struct Band<'a> {
    fault: &'a super::FaultRecord,
    from: u64,
    to: u64,
    x0: f64,
    x1: f64,
    one_shot: bool,
}

/// One row of fault bands; a target gets more than one when its faults overlap in time.
struct Lane<'a> {
    /// The target, with its named target when it has one (`cache: cache-1`).
    target: String,
    first_of_target: bool,
    bands: Vec<Band<'a>>,
}

/// Every injected fault, by target (in the order of `targets`), in as few lanes as keep
/// bands and markers from overlapping.
fn fault_lanes<'a>(r: &'a RunResult, scale: &Scale, end: u64) -> Vec<Lane<'a>> {
    let mut targets: Vec<String> = r.targets.iter().map(summary::target_label).collect();
    for f in &r.faults {
        let label = summary::fault_target(f);
        if !targets.contains(&label) {
            targets.push(label);
        }
    }
    let mut lanes = Vec::new();
    for target in targets {
        let mut bands: Vec<Band> = r
            .faults
            .iter()
            .filter(|f| summary::fault_target(f) == target)
            .filter_map(|f| {
                let from = summary::offset(r, f.injected_at?);
                let one_shot = f.reverted_at.is_none() && f.status == FaultStatus::Completed;
                let to = match f.reverted_at {
                    Some(t) => summary::offset(r, t),
                    None if one_shot => from,
                    None => end,
                };
                let x0 = scale.x(from);
                let x1 = scale.x(to).max(x0 + 3.0);
                Some(Band {
                    fault: f,
                    from,
                    to,
                    x0,
                    x1,
                    one_shot,
                })
            })
            .collect();
        bands.sort_by(|a, b| a.x0.total_cmp(&b.x0));
        let mut mine: Vec<Vec<Band>> = Vec::new();
        for b in bands {
            let (left, _) = extent(&b);
            match mine
                .iter_mut()
                .find(|l| l.last().is_none_or(|p| extent(p).1 + 4.0 <= left))
            {
                Some(l) => l.push(b),
                None => mine.push(vec![b]),
            }
        }
        for (i, bands) in mine.into_iter().enumerate() {
            lanes.push(Lane {
                target: target.clone(),
                first_of_target: i == 0,
                bands,
            });
        }
    }
    lanes
}

/// The horizontal extent a band or marker covers.
fn extent(b: &Band) -> (f64, f64) {
    if b.one_shot {
        (b.x0 - 9.0, b.x0 + 9.0)
    } else {
        (b.x0, b.x1)
    }
}

/// Where everything of one run's timeline goes: the time scale, the fault lanes and the
/// vertical layout, computed once for the drawing's parts.
struct Frame<'a> {
    spans: Spans,
    scale: Scale,
    probes: Vec<&'a super::DuringProbe>,
    samples: usize,
    lanes: Vec<Lane<'a>>,
    phase_y: f64,
    rows_y: f64,
    chart_top: f64,
    chart_bottom: f64,
    height: f64,
    id: &'a str,
}

impl<'a> Frame<'a> {
    fn of(r: &'a RunResult, id: &'a str) -> Frame<'a> {
        let spans = Spans::of(r);
        let scale = Scale { end: spans.end };
        let probes: Vec<&super::DuringProbe> = r
            .phases
            .during
            .iter()
            .flat_map(|d| d.probes.iter())
            .collect();
        let samples = probes.iter().map(|p| p.timeline.len()).sum::<usize>();
        let lanes = fault_lanes(r, &scale, spans.end);
        let phase_y = 8.0;
        let rows_y = phase_y + ROW + GAP + 4.0;
        let chart_top = rows_y + lanes.len() as f64 * (ROW + GAP) + 14.0;
        let chart_bottom = chart_top + if samples > 0 { CHART } else { 0.0 };
        Frame {
            spans,
            scale,
            probes,
            samples,
            lanes,
            phase_y,
            rows_y,
            chart_top,
            chart_bottom,
            height: chart_bottom + 44.0,
            id,
        }
    }
}

/// The run on a time axis, as SVG with an HTML legend: phases, one row per target with
/// its faults, the probes' samples, recovery, and the axis.
fn timeline(r: &RunResult, id: &str) -> String {
    let f = Frame::of(r, id);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg id=\"{id}\" class=\"timeline\" viewBox=\"0 0 {WIDTH} {:.0}\" role=\"img\" \
         aria-label=\"Timeline of {}: phases, faults per target, probe samples and recovery\">",
        f.height,
        escape(&r.experiment.name)
    );
    let _ = writeln!(
        s,
        "<defs><pattern id=\"{id}-hatch\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\">\
         <rect width=\"8\" height=\"8\" fill=\"{BAD}\"/>\
         <path d=\"M-2 2L2 -2M0 8L8 0M6 10L10 6\" stroke=\"#ff8182\" stroke-width=\"2.5\"/></pattern></defs>"
    );
    timeline_phases(&mut s, &f);
    timeline_faults(&mut s, &f);
    timeline_samples(&mut s, &f);
    timeline_recovery(&mut s, &f, r);
    timeline_axis(&mut s, &f);
    timeline_legend(&mut s, &f, r);
    s
}

/// Phase tints behind everything, and the phase bar on top.
fn timeline_phases(s: &mut String, f: &Frame<'_>) {
    let Frame {
        ref spans,
        ref scale,
        phase_y,
        chart_bottom,
        ..
    } = *f;
    // Phase tints behind everything, and the phase bar on top.
    let phases = [
        ("before", spans.before, BEFORE),
        ("during", spans.during, DURING),
        ("after", spans.after, AFTER),
    ];
    for (_, span, color) in phases {
        if let Some((a, b)) = span {
            let (x0, x1) = (scale.x(a), scale.x(b));
            let _ = writeln!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\" opacity=\"0.09\"/>",
                phase_y + ROW,
                (x1 - x0).max(1.0),
                chart_bottom - phase_y - ROW
            );
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"muted\">phase</text>",
        LEFT - 10.0,
        phase_y + 15.0
    );
    let present: Vec<(&str, (u64, u64), &str)> = phases
        .iter()
        .filter_map(|(n, sp, c)| sp.map(|sp| (*n, sp, *c)))
        .collect();
    for (i, (name, (a, b), color)) in present.iter().enumerate() {
        let (x0, x1) = (scale.x(*a), scale.x(*b));
        let w = (x1 - x0).max(2.0);
        let _ = writeln!(
            s,
            "<rect class=\"phase phase-{name}\" x=\"{x0:.1}\" y=\"{phase_y:.1}\" width=\"{w:.1}\" height=\"{ROW}\" \
             fill=\"{color}\" rx=\"3\"><title>{name}: +{} to +{}</title></rect>",
            summary::duration(*a),
            summary::duration(*b)
        );
        // The label goes inside the band (with its length if that fits too), else just right
        // of it if the next band leaves room.
        let next = present
            .get(i + 1)
            .map(|(_, (a, _), _)| scale.x(*a))
            .unwrap_or(WIDTH - RIGHT);
        let long = format!("{name} {}", summary::duration(b - a));
        if text_width(name) + 10.0 <= w {
            let label = if text_width(&long) + 10.0 <= w {
                &long
            } else {
                *name
            };
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"on-band\">{label}</text>",
                x0 + w / 2.0,
                phase_y + 15.0
            );
        } else if x0 + w + 4.0 + text_width(name) <= next {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{name}</text>",
                x0 + w + 4.0,
                phase_y + 15.0
            );
        }
    }
}

/// One row per target (more where its faults overlap in time), each fault's active
/// window a band, a one-shot fault (a kill) a marker.
fn timeline_faults(s: &mut String, f: &Frame<'_>) {
    for (i, lane) in f.lanes.iter().enumerate() {
        let y = f.rows_y + i as f64 * (ROW + GAP);
        if lane.first_of_target {
            lane_label(s, &lane.target, y);
        }
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            WIDTH - RIGHT,
            y + ROW / 2.0,
            y + ROW / 2.0
        );
        for (j, b) in lane.bands.iter().enumerate() {
            // Room for a label outside the band: up to the next band in this lane.
            let room = lane
                .bands
                .get(j + 1)
                .map(|n| n.x0 - 4.0)
                .unwrap_or(WIDTH - RIGHT);
            if b.one_shot {
                marker(s, b, y, room);
            } else {
                band(s, b, y, room, f.id);
            }
        }
    }
}

/// The target's name left of its first lane, shortened to 16 characters (whole on hover).
fn lane_label(s: &mut String, target: &str, y: f64) {
    let label: String = if target.chars().count() > 16 {
        format!("{}…", target.chars().take(15).collect::<String>())
    } else {
        target.to_string()
    };
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{}</title>{}</text>",
        LEFT - 10.0,
        y + 15.0,
        escape(target),
        escape(&label)
    );
}

/// What hovering a band or marker says: the fault, its target, when it was injected and
/// reverted, and its error.
fn band_title(b: &Band<'_>) -> String {
    let f = b.fault;
    let mut title = format!(
        "{} on {}: injected at +{}",
        summary::fault_label(f),
        summary::fault_target(f),
        summary::duration(b.from)
    );
    match (f.reverted_at, b.one_shot) {
        (Some(_), _) => {
            let _ = write!(
                title,
                ", reverted at +{} ({} active)",
                summary::duration(b.to),
                summary::active_text(f)
            );
        }
        (None, true) => title.push_str(" (one-shot)"),
        (None, false) => title.push_str(", revert not confirmed: may still be active"),
    }
    if let Some(e) = &f.error {
        let _ = write!(title, "; {e}");
    }
    title
}

/// A one-shot fault: a diamond at its moment, labelled on its right when there is room.
fn marker(s: &mut String, b: &Band<'_>, y: f64, room: f64) {
    let label = summary::fault_label(b.fault);
    let x0 = b.x0;
    let _ = writeln!(
        s,
        "<path class=\"fault\" d=\"M{x0:.1} {:.1}L{:.1} {:.1}L{x0:.1} {:.1}L{:.1} {:.1}Z\" fill=\"{FAULT}\">\
         <title>{}</title></path>",
        y + 2.0,
        x0 + 9.0,
        y + ROW / 2.0,
        y + ROW - 2.0,
        x0 - 9.0,
        y + ROW / 2.0,
        escape(&band_title(b))
    );
    if x0 + 12.0 + text_width(label) <= room {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x0 + 12.0,
            y + 15.0,
            escape(label)
        );
    }
}

/// A fault's active window: a band (hatched when its revert was not confirmed), labelled
/// inside when it fits, else on its right when there is room.
fn band(s: &mut String, b: &Band<'_>, y: f64, room: f64, id: &str) {
    let label = summary::fault_label(b.fault);
    let fill = if b.fault.reverted_at.is_none() {
        format!("url(#{id}-hatch)")
    } else {
        FAULT.to_string()
    };
    let (x0, w) = (b.x0, b.x1 - b.x0);
    let _ = writeln!(
        s,
        "<rect class=\"fault\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{ROW}\" rx=\"3\" fill=\"{fill}\">\
         <title>{}</title></rect>",
        escape(&band_title(b))
    );
    if text_width(label) + 12.0 <= w {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"on-band\">{}</text>",
            x0 + 6.0,
            y + 15.0,
            escape(label)
        );
    } else if x0 + w + 4.0 + text_width(label) <= room {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x0 + w + 4.0,
            y + 15.0,
            escape(label)
        );
    }
}

/// The latency chart: one mark per sample, green passed, red failed.
fn timeline_samples(s: &mut String, f: &Frame<'_>) {
    let (scale, probes) = (&f.scale, &f.probes);
    let (chart_top, chart_bottom) = (f.chart_top, f.chart_bottom);
    if f.samples > 0 {
        let max_latency = probes
            .iter()
            .flat_map(|p| p.timeline.iter().map(|s| s.latency_ms))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let step = tick_step(max_latency, 4.0);
        let ymax = (max_latency / step).ceil() * step;
        let plot_top = chart_top + 6.0;
        // 0 ms sits a little above the time axis, so that those marks stay visible.
        let zero = chart_bottom - 7.0;
        let y = |ms: f64| zero - (ms / ymax) * (zero - plot_top);
        let mut tick = 0.0;
        while tick <= ymax + step / 2.0 {
            let _ = writeln!(
                s,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"muted\">{} ms</text>",
                WIDTH - RIGHT,
                y(tick),
                y(tick),
                LEFT - 10.0,
                y(tick) + 4.0,
                tick
            );
            tick += step;
        }
        let _ = writeln!(
            s,
            "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\" class=\"muted\">latency</text>",
            (plot_top + chart_bottom) / 2.0,
            (plot_top + chart_bottom) / 2.0
        );
        let _ = writeln!(
            s,
            "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{plot_top:.1}\" y2=\"{chart_bottom:.1}\"/>"
        );
        for (i, p) in probes.iter().enumerate() {
            let _ = writeln!(s, "<g class=\"probe\" data-probe=\"{}\">", escape(&p.name));
            if p.timeline.len() > 1 {
                let points: Vec<String> = p
                    .timeline
                    .iter()
                    .map(|pt| format!("{:.1},{:.1}", scale.x(pt.at_ms), y(pt.latency_ms as f64)))
                    .collect();
                let _ = writeln!(
                    s,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"#8c959f\" stroke-width=\"1\" opacity=\"0.55\"/>",
                    points.join(" ")
                );
            }
            for pt in &p.timeline {
                let title = format!(
                    "{} at +{}: {} in {}ms{}",
                    p.name,
                    summary::duration(pt.at_ms),
                    if pt.ok { "passed" } else { "failed" },
                    pt.latency_ms,
                    pt.measured
                        .ttfb_ms
                        .map(|t| format!(" (first byte {t}ms)"))
                        .unwrap_or_default()
                );
                s.push_str(&mark(
                    "sample",
                    i,
                    scale.x(pt.at_ms),
                    y(pt.latency_ms as f64),
                    if pt.ok { OK } else { BAD },
                    &title,
                ));
                s.push('\n');
            }
            s.push_str("</g>\n");
        }
    }
}

/// Recovery: from the last revert to the first full pass of steady state, and the run's
/// events on the rows.
fn timeline_recovery(s: &mut String, f: &Frame<'_>, r: &RunResult) {
    let Frame {
        ref spans,
        ref scale,
        ref lanes,
        phase_y,
        rows_y,
        chart_bottom,
        ..
    } = *f;
    // Recovery: from the last revert to the first full pass of steady state.
    let marker_bottom = chart_bottom.max(rows_y + lanes.len() as f64 * (ROW + GAP));
    if let Some(at) = spans.recovered {
        let x = scale.x(at);
        let text = format!(
            "recovered after {}",
            summary::duration(summary::recovery_ms(r).unwrap_or(0))
        );
        let (tx, anchor) = if x + 6.0 + text_width(&text) <= WIDTH - RIGHT {
            (x + 6.0, "start")
        } else {
            (x - 6.0, "end")
        };
        let _ = writeln!(
            s,
            "<g class=\"recovery\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{phase_y:.1}\" y2=\"{marker_bottom:.1}\" \
             stroke=\"{OK}\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"{OK}\" style=\"fill:{OK};font-weight:600\">{}</text>\
             <title>{}: last revert at +{}, steady state held again at +{}</title></g>",
            rows_y - 4.0 + lanes.len() as f64 * (ROW + GAP) + 8.0,
            escape(&text),
            escape(&text),
            summary::duration(spans.last_change.unwrap_or(at)),
            summary::duration(at)
        );
    } else if let (Some(after), Some(false)) =
        (spans.after, r.phases.after.as_ref().map(|a| a.passed))
    {
        let x = scale.x(after.1);
        let _ = writeln!(
            s,
            "<g class=\"recovery\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{phase_y:.1}\" y2=\"{marker_bottom:.1}\" \
             stroke=\"{BAD}\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" style=\"fill:{BAD};font-weight:600\">not recovered in time</text></g>",
            x - 6.0,
            rows_y - 4.0 + lanes.len() as f64 * (ROW + GAP) + 8.0,
        );
    }
    for e in r
        .events
        .iter()
        .filter(|e| e.kind == super::EventKind::Abort)
    {
        let x = scale.x(summary::offset(r, e.at));
        let _ = writeln!(
            s,
            "<path class=\"abort\" d=\"M{:.1} {:.1}L{:.1} {:.1}L{x:.1} {:.1}Z\" fill=\"{BAD}\"><title>abort at +{}: {}</title></path>",
            x - 5.0,
            phase_y - 6.0 + ROW,
            x + 5.0,
            phase_y - 6.0 + ROW,
            phase_y + ROW + 3.0,
            summary::duration(summary::offset(r, e.at)),
            escape(&e.message)
        );
    }
}

/// The time axis.
fn timeline_axis(s: &mut String, f: &Frame<'_>) {
    let Frame {
        ref spans,
        ref scale,
        ref lanes,
        rows_y,
        chart_bottom,
        ..
    } = *f;
    // Time axis.
    let axis_y = chart_bottom.max(rows_y + lanes.len() as f64 * (ROW + GAP));
    let _ = writeln!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{axis_y:.1}\" y2=\"{axis_y:.1}\"/>",
        WIDTH - RIGHT
    );
    let step = tick_step(spans.end as f64, 10.0);
    let mut t = 0.0;
    while t <= spans.end as f64 + 0.5 {
        let x = scale.x(t as u64);
        let _ = writeln!(
            s,
            "<line class=\"axis\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{axis_y:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"muted\">{}</text>",
            axis_y + 5.0,
            axis_y + 18.0,
            time_label(t, step)
        );
        t += step;
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"muted\">time since the run started</text>",
        WIDTH - RIGHT,
        axis_y + 36.0
    );
    s.push_str("</svg>\n");
}

/// The legend, as HTML below the drawing.
fn timeline_legend(s: &mut String, f: &Frame<'_>, r: &RunResult) {
    let Frame {
        ref spans,
        ref probes,
        samples,
        id,
        ..
    } = *f;
    // Legend, as HTML below the drawing.
    let mut items = vec![
        format!(
            "{}before",
            legend_swatch(&format!(
                "<rect width=\"18\" height=\"12\" rx=\"2\" fill=\"{BEFORE}\"/>"
            ))
        ),
        format!(
            "{}during",
            legend_swatch(&format!(
                "<rect width=\"18\" height=\"12\" rx=\"2\" fill=\"{DURING}\"/>"
            ))
        ),
        format!(
            "{}after",
            legend_swatch(&format!(
                "<rect width=\"18\" height=\"12\" rx=\"2\" fill=\"{AFTER}\"/>"
            ))
        ),
        format!(
            "{}fault active",
            legend_swatch(&format!(
                "<rect width=\"18\" height=\"12\" rx=\"2\" fill=\"{FAULT}\"/>"
            ))
        ),
    ];
    if r.faults.iter().any(|f| {
        f.injected_at.is_some() && f.reverted_at.is_none() && f.status != FaultStatus::Completed
    }) {
        items.push(format!(
            "{}revert not confirmed",
            legend_swatch(&format!(
                "<rect width=\"18\" height=\"12\" rx=\"2\" fill=\"url(#{id}-hatch)\"/>"
            ))
        ));
    }
    if samples > 0 {
        items.push(format!(
            "{}sample passed",
            legend_swatch(&format!(
                "<circle cx=\"9\" cy=\"6\" r=\"4\" fill=\"{OK}\"/>"
            ))
        ));
        items.push(format!(
            "{}sample failed",
            legend_swatch(&format!(
                "<circle cx=\"9\" cy=\"6\" r=\"4\" fill=\"{BAD}\"/>"
            ))
        ));
    }
    if probes.len() > 1 {
        for (i, p) in probes.iter().enumerate() {
            items.push(format!(
                "{}{}",
                legend_swatch(&mark("key", i, 9.0, 6.0, "#59636e", &p.name)),
                escape(&p.name)
            ));
        }
    } else if let Some(p) = probes.first() {
        items.push(format!("samples of <b>{}</b>", escape(&p.name)));
    }
    if spans.recovered.is_some() {
        items.push(format!(
            "{}recovery",
            legend_swatch(&format!(
                "<line x1=\"9\" x2=\"9\" y1=\"0\" y2=\"12\" stroke=\"{OK}\" stroke-width=\"2\" stroke-dasharray=\"3 2\"/>"
            ))
        ));
    }
    s.push_str("<ul class=\"legend\">");
    for i in items {
        let _ = write!(s, "<li>{i}</li>");
    }
    s.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use super::super::summary::fixture;
    use super::*;

    #[test]
    fn a_timeline_with_every_sample_and_fault() {
        let html = render(&fixture::passed());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<svg id=\"timeline\""), "{html}");
        assert_eq!(html.matches("class=\"sample\"").count(), 20);
        assert_eq!(html.matches("fill=\"#cf222e\"><title>").count(), 9);
        assert_eq!(html.matches("<rect class=\"fault\"").count(), 1);
        for phase in ["before", "during", "after"] {
            assert!(
                html.contains(&format!("class=\"phase phase-{phase}\"")),
                "{phase}"
            );
        }
        assert!(html.contains("recovered after 37ms"), "{html}");
        assert!(html.contains("<span class=\"badge v-passed\">PASSED</span>"));
    }

    #[test]
    fn text_is_escaped_and_nothing_is_loaded() {
        let mut r = fixture::passed();
        r.experiment.name = "<script>alert('x')</script>".into();
        r.phases.before.as_mut().unwrap().probes[0].detail =
            "GET https://example.com/?a=1&b=\"2\"".into();
        let html = render(&r);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(html.contains("GET https://example.com/?a=1&amp;b=&quot;2&quot;"));
        assert!(!html.contains("src="));
        assert!(!html.contains("href=\"http"));
        assert!(!html.contains("url(http"));
    }

    #[test]
    fn an_active_fault_and_a_kill() {
        let mut r = fixture::passed();
        r.verdict = Verdict::RevertIncomplete;
        r.faults[0].status = FaultStatus::Active;
        r.faults[0].reverted_at = None;
        r.faults.push(super::super::FaultRecord {
            kind: "kill".into(),
            target: "web-2".into(),
            target_name: String::new(),
            injected_at: Some(fixture::t(300)),
            reverted_at: None,
            status: FaultStatus::Completed,
            error: None,
            description: "kill with SIGKILL".into(),
            effects: None,
        });
        r.phases.after = None;
        let html = render(&r);
        assert!(html.contains("fill=\"url(#timeline-hatch)\""), "{html}");
        assert!(html.contains("<path class=\"fault\""), "{html}");
        assert!(html.contains(">web-2</text>"), "{html}");
        assert!(html.contains("run <code>faultline recover</code>"));
    }

    #[test]
    fn overlapping_faults_on_one_target_get_their_own_lanes() {
        let mut r = fixture::passed();
        let mut kill = r.faults[0].clone();
        kill.kind = "kill".into();
        kill.reverted_at = None;
        kill.status = FaultStatus::Completed;
        kill.injected_at = Some(fixture::t(2000));
        let mut later = r.faults[0].clone();
        later.injected_at = Some(fixture::t(5500));
        later.reverted_at = Some(fixture::t(6000));
        r.faults.extend([kill, later]);
        let lanes = fault_lanes(&r, &Scale { end: 6400 }, 6400);
        let shape: Vec<(bool, Vec<&str>)> = lanes
            .iter()
            .map(|l| {
                let kinds = l.bands.iter().map(|b| b.fault.kind.as_str()).collect();
                (l.first_of_target, kinds)
            })
            .collect();
        assert_eq!(
            shape,
            [(true, vec!["pause", "pause"]), (false, vec!["kill"])]
        );
    }

    #[test]
    fn several_experiments_on_one_page() {
        let mut b = fixture::passed();
        b.experiment.name = "api-latency".into();
        let html = render_many(&[fixture::passed(), b]);
        assert_eq!(html.matches("<!DOCTYPE html>").count(), 1);
        assert!(html.contains("<svg id=\"timeline\""));
        assert!(html.contains("<svg id=\"timeline-2\""));
        assert!(html.contains("<a href=\"#experiment-2\">api-latency</a>"));
        assert!(html.contains("2 experiments: 2 passed; highest exit code 0"));
    }

    #[test]
    fn ticks() {
        assert_eq!(tick_step(6400.0, 10.0), 1000.0);
        assert_eq!(tick_step(500.0, 4.0), 200.0);
        assert_eq!(tick_step(3.0, 4.0), 1.0);
    }
}
