//! `--report table`: what a person at a terminal reads.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};

use super::{RunResult, Verdict};

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
    if let Some(b) = &r.phases.before {
        for p in &b.probes {
            probes.add_row(vec![
                Cell::new("before"),
                Cell::new(&p.name),
                Cell::new(&p.kind),
                mark(p.passed),
                Cell::new(format!("{} (attempt {})", p.detail, p.attempts)),
            ]);
        }
    }
    if let Some(d) = &r.phases.during {
        for p in &d.probes {
            probes.add_row(vec![
                Cell::new("during"),
                Cell::new(&p.name),
                Cell::new(&p.kind),
                mark(p.passed),
                Cell::new(format!(
                    "{}/{} ok ({:.0}%, need {:.0}%); latency p50 {}ms p95 {}ms max {}ms",
                    p.successes,
                    p.samples,
                    p.success_ratio * 100.0,
                    p.min_success * 100.0,
                    p.latency_ms.p50,
                    p.latency_ms.p95,
                    p.latency_ms.max
                )),
            ]);
        }
    }
    if let Some(a) = &r.phases.after {
        for p in &a.probes {
            probes.add_row(vec![
                Cell::new("after"),
                Cell::new(&p.name),
                Cell::new(&p.kind),
                mark(p.passed),
                Cell::new(format!("{} (attempt {})", p.detail, p.attempts)),
            ]);
        }
    }
    let mut faults = Table::new();
    faults
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec!["fault", "target", "status", "active", "error"]);
    for f in &r.faults {
        let active = match (f.injected_at, f.reverted_at) {
            (Some(a), Some(b)) => format!("{}ms", (b - a).num_milliseconds()),
            (Some(_), None) => "-".into(),
            _ => "never".into(),
        };
        let status = format!("{:?}", f.status).to_lowercase();
        let ok = !matches!(
            f.status,
            super::FaultStatus::Failed | super::FaultStatus::Active
        );
        faults.add_row(vec![
            Cell::new(&f.description),
            Cell::new(&f.target),
            if ok {
                Cell::new(status)
            } else {
                Cell::new(status).fg(Color::Red)
            },
            Cell::new(active),
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
        let names: Vec<&str> = r.targets.iter().map(|t| t.name.as_str()).collect();
        out.push_str(&format!("Targets: {}\n", names.join(", ")));
    }
    if probes.row_count() > 0 {
        out.push_str(&format!("{probes}\n"));
    }
    if faults.row_count() > 0 {
        out.push_str(&format!("{faults}\n"));
    }
    let recovery = r
        .phases
        .after
        .as_ref()
        .and_then(|a| a.recovered_after_ms)
        .map(|ms| format!(", recovered after {ms}ms"))
        .unwrap_or_default();
    let reason = r
        .events
        .iter()
        .rev()
        .find(|e| e.kind == "verdict")
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
