//! `--report markdown`: a compact summary for `$GITHUB_STEP_SUMMARY` or a merge-request
//! comment (GitHub- and GitLab-flavoured tables, no emoji, no HTML).

use super::summary::{self, Totals};
use super::{RunResult, Verdict};

/// Escapes text for a table cell or inline prose: Markdown punctuation is backslash-escaped
/// (CommonMark allows that for any ASCII punctuation) and line breaks become spaces.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// One experiment's report.
pub fn render(r: &RunResult) -> String {
    let mut out = format!("### faultline: {}\n\n", escape(&r.experiment.name));
    out.push_str(&format!(
        "**{}** (exit {}) in {}",
        summary::status_word(r.verdict),
        r.exit_code,
        summary::duration(r.duration_ms)
    ));
    if let Some(why) = summary::reason(r) {
        out.push_str(&format!(": {}", escape(why)));
    }
    out.push_str(".\n\n");
    match (summary::recovery_ms(r), &r.phases.after) {
        (Some(ms), _) => out.push_str(&format!(
            "Recovery time: **{}**.\n\n",
            summary::duration(ms)
        )),
        (None, Some(_)) => out.push_str("Recovery time: **did not recover in time**.\n\n"),
        (None, None) => {}
    }
    if r.verdict == Verdict::RevertIncomplete {
        out.push_str("**A fault may still be active: run `faultline recover`.**\n\n");
    }
    let mut facts = vec![format!("File: {}", escape(&r.experiment.file))];
    if !r.targets.is_empty() {
        facts.push(format!("targets: {}", escape(&summary::target_list(r))));
    }
    if let Some(seed) = r.seed {
        facts.push(format!("seed: {seed}"));
    }
    facts.push(format!(
        "started: {}",
        r.started_at.format("%Y-%m-%d %H:%M:%S UTC")
    ));
    out.push_str(&facts.join("; "));
    out.push_str(".\n\n");

    let probes = summary::probe_rows(r);
    if !probes.is_empty() {
        out.push_str("| phase | probe | result | detail |\n|---|---|---|---|\n");
        for p in probes {
            out.push_str(&row(&[
                p.phase.to_string(),
                escape(p.name),
                if p.passed { "pass" } else { "**FAIL**" }.to_string(),
                escape(&p.detail),
            ]));
        }
        out.push('\n');
    }
    if !r.faults.is_empty() {
        out.push_str("| fault | target | status | active | error |\n|---|---|---|---|---|\n");
        for f in &r.faults {
            let status = summary::fault_status_word(f.status);
            out.push_str(&row(&[
                escape(&summary::fault_detail(f)),
                escape(&summary::fault_target(f)),
                if summary::fault_failed(f) {
                    format!("**{status}**")
                } else {
                    status.to_string()
                },
                summary::active_text(f),
                escape(f.error.as_deref().unwrap_or("")),
            ]));
        }
        out.push('\n');
    }
    out
}

/// Several experiments (a game day): one table row per experiment and the totals.
pub fn render_summary(rs: &[RunResult]) -> String {
    let totals = Totals::of(rs);
    let mut out = format!(
        "### faultline: {}\n\n",
        if totals.experiments == 1 {
            "1 experiment".to_string()
        } else {
            format!("{} experiments", totals.experiments)
        }
    );
    if !rs.is_empty() {
        out.push_str(
            "| experiment | verdict | exit | duration | recovery | reason |\n|---|---|---|---|---|---|\n",
        );
        for r in rs {
            out.push_str(&row(&[
                escape(&r.experiment.name),
                if r.verdict == Verdict::Passed {
                    "PASSED".to_string()
                } else {
                    format!("**{}**", summary::status_word(r.verdict))
                },
                r.exit_code.to_string(),
                summary::duration(r.duration_ms),
                summary::recovery_ms(r)
                    .map(summary::duration)
                    .unwrap_or_else(|| "-".into()),
                escape(summary::reason(r).unwrap_or("")),
            ]));
        }
        out.push('\n');
    }
    out.push_str(&format!("Totals: {}.\n", totals.sentence()));
    out
}

#[cfg(test)]
mod tests {
    use super::super::summary::fixture;
    use super::*;

    #[test]
    fn tables_of_probes_and_faults() {
        let md = render(&fixture::passed());
        assert!(md.starts_with("### faultline: web-survives-pause\n\n**PASSED** (exit 0) in 6.40s: the hypothesis held.\n\nRecovery time: **37ms**.\n"), "{md}");
        assert!(md.contains("| phase | probe | result | detail |\n|---|---|---|---|\n| before | web answers | pass | 200 OK in 3ms |\n"), "{md}");
        assert!(md.contains("| during | web mostly answers | pass | 11/20 ok (55%, need 50%); latency p50 4ms, p95 500ms, max 500ms |"), "{md}");
        assert!(md.contains("| fault | target | status | active | error |\n|---|---|---|---|---|\n| pause for 5s | web-1 | reverted | 5.02s |  |\n"), "{md}");
    }

    #[test]
    fn cells_are_escaped() {
        let mut r = fixture::passed();
        r.faults[0].error = Some("a|b\n<script> `x`".into());
        let md = render(&r);
        assert!(md.contains("| a\\|b \\<script\\> \\`x\\` |"), "{md}");
    }

    #[test]
    fn summary_has_a_row_per_experiment_and_totals() {
        let mut failed = fixture::ended(Verdict::Failed);
        failed.experiment.name = "api-latency".into();
        failed.phases.after.as_mut().unwrap().recovered_after_ms = None;
        failed.events.last_mut().unwrap().message = "steady state did not recover in time".into();
        let md = render_summary(&[fixture::passed(), failed]);
        assert!(
            md.contains("| web-survives-pause | PASSED | 0 | 6.40s | 37ms | the hypothesis held |"),
            "{md}"
        );
        assert!(md.contains("| api-latency | **FAILED** | 1 | 6.40s | - | steady state did not recover in time |"), "{md}");
        assert!(
            md.ends_with("Totals: 2 experiments: 1 passed, 1 failed; highest exit code 1.\n"),
            "{md}"
        );
    }
}
