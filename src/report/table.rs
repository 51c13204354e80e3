//! `--report table`: what a person at a terminal reads.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};

use super::{RunResult, Verdict, summary};

fn mark(ok: bool) -> Cell {
    if ok {
        Cell::new("pass").fg(Color::Green)
    } else {
        Cell::new("FAIL").fg(Color::Red)
    }
}

pub fn render(r: &RunResult, color: bool) -> String {
    let mut out = String::new();
    let mut probes = Table::new();
    probes
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec!["phase", "probe", "kind", "result", "detail"]);
    for row in summary::probe_rows(r) {
        probes.add_row(vec![
            Cell::new(row.phase),
            Cell::new(row.name),
            Cell::new(row.kind),
            mark(row.passed),
            Cell::new(row.detail),
        ]);
    }
    let mut faults = Table::new();
    faults
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec!["fault", "target", "status", "active", "error"]);
    for f in &r.faults {
        let status = Cell::new(summary::fault_status_word(f.status));
        faults.add_row(vec![
            Cell::new(summary::fault_detail(f)),
            Cell::new(summary::fault_target(f)),
            if summary::fault_failed(f) {
                status.fg(Color::Red)
            } else {
                status
            },
            Cell::new(summary::active_text(f)),
            Cell::new(f.error.clone().unwrap_or_default()),
        ]);
    }
    if !color {
        probes.force_no_tty();
        faults.force_no_tty();
    }
    out.push_str(&format!(
        "Experiment `{}` ({})\n",
        r.experiment.name, r.experiment.file
    ));
    if !r.targets.is_empty() {
        out.push_str(&format!("Targets: {}\n", summary::target_list(r)));
    }
    if probes.row_count() > 0 {
        out.push_str(&format!("{probes}\n"));
    }
    if faults.row_count() > 0 {
        out.push_str(&format!("{faults}\n"));
    }
    let recovery = summary::recovery_text(r)
        .map(|t| format!(", {t}"))
        .unwrap_or_default();
    let reason = r
        .events
        .iter()
        .rev()
        .find(|e| e.kind == super::EventKind::Verdict)
        .map(|e| format!(": {}", e.message))
        .unwrap_or_default();
    out.push_str(&format!(
        "Verdict: {} (exit {}) in {}ms{recovery}{reason}\n",
        r.verdict.as_str().to_uppercase(),
        r.exit_code,
        r.duration_ms
    ));
    if r.verdict == Verdict::RevertIncomplete {
        out.push_str("A fault may still be active: run `faultline recover`.\n");
    }
    out
}
