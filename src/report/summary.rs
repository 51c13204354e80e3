//! What the junit, markdown and html renderers (and game-day summaries) share: status
//! words, durations, probe rows, totals over several runs, and the run's phases on a time
//! axis reconstructed from its events and fault records.

use chrono::{DateTime, Utc};

use super::EventKind;
use super::{FaultRecord, FaultStatus, RunResult, Verdict};

/// The verdict as a plain upper-case word, for places without colour or emoji.
pub fn status_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Passed => "PASSED",
        Verdict::Failed => "FAILED",
        Verdict::NotSteady => "NOT STEADY",
        Verdict::NoTargets => "NO TARGETS",
        Verdict::Error => "ERROR",
        Verdict::Interrupted => "INTERRUPTED",
        Verdict::RevertIncomplete => "REVERT INCOMPLETE",
    }
}

/// Why the run ended as it did: the message of its `verdict` event.
pub fn reason(r: &RunResult) -> Option<&str> {
    r.events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::Verdict)
        .map(|e| e.message.as_str())
}

/// ` (3 of 5 requested)` when the selection took fewer targets than it asked for.
pub fn shortfall(r: &RunResult) -> String {
    in_brackets(r.selection.as_ref())
}

fn in_brackets(s: Option<&super::Selection>) -> String {
    s.and_then(super::Selection::shortfall)
        .map(|s| format!(" ({s})"))
        .unwrap_or_default()
}

/// The selected targets in words, each with what the selection fell short of:
/// `web-1, web-2 (2 of 3 requested)`, or with named targets, by name:
/// `api: api-2; cache: cache-1`. Empty when there is none.
pub fn target_list(r: &RunResult) -> String {
    let names = |of: &str| -> Vec<&str> {
        r.targets
            .iter()
            .filter(|t| t.target_name == of)
            .map(|t| t.name.as_str())
            .collect()
    };
    let mut named: Vec<&str> = Vec::new();
    for t in &r.targets {
        if !named.contains(&t.target_name.as_str()) {
            named.push(&t.target_name);
        }
    }
    let each: Vec<String> = named
        .into_iter()
        .map(|n| match n {
            "" => format!("{}{}", names(n).join(", "), shortfall(r)),
            _ => format!(
                "{n}: {}{}",
                names(n).join(", "),
                in_brackets(r.selections.get(n))
            ),
        })
        .collect();
    each.join("; ")
}

/// The target a fault acted on, with its named target: `cache-1`, or `cache: cache-1`.
pub fn fault_target(f: &FaultRecord) -> String {
    labelled(&f.target_name, &f.target)
}

/// A selected target, with its named target: `cache-1`, or `cache: cache-1`.
pub fn target_label(t: &super::TargetRef) -> String {
    labelled(&t.target_name, &t.name)
}

fn labelled(target_name: &str, name: &str) -> String {
    match target_name {
        "" => name.to_string(),
        n => format!("{n}: {name}"),
    }
}

pub fn recovery_ms(r: &RunResult) -> Option<u64> {
    r.phases.after.as_ref().and_then(|a| a.recovered_after_ms)
}

/// "recovered 420ms after the kill", with what it was measured from.
pub fn recovery_text(r: &RunResult) -> Option<String> {
    let after = r.phases.after.as_ref()?;
    let ms = after.recovered_after_ms?;
    let from = after
        .measured_from
        .map_or("after the faults ended", super::RecoveryStart::words);
    Some(format!("recovered {} {from}", duration(ms)))
}

/// `37ms`, `4.21s`, `2m 03s`, `1h 02m`.
pub fn duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// How long a fault was active, if it was injected and that ended.
pub fn active_ms(f: &FaultRecord) -> Option<u64> {
    match (f.injected_at, f.reverted_at) {
        (Some(a), Some(b)) => Some((b.timestamp_millis() - a.timestamp_millis()).max(0) as u64),
        _ => None,
    }
}

/// The active time as a table cell: a duration, `one-shot`, `still active` or `never`.
pub fn active_text(f: &FaultRecord) -> String {
    match (f.injected_at, active_ms(f), f.status) {
        (_, Some(ms), _) => duration(ms),
        (Some(_), None, FaultStatus::Completed | FaultStatus::Survived) => "one-shot".into(),
        (Some(_), None, _) => "still active".into(),
        (None, _, _) => "never".into(),
    }
}

pub fn fault_status_word(s: FaultStatus) -> &'static str {
    match s {
        FaultStatus::Reverted => "reverted",
        FaultStatus::Completed => "completed",
        FaultStatus::Failed => "failed",
        FaultStatus::Active => "active",
        FaultStatus::Survived => "survived",
    }
}

/// The fault in words: its description, else its type.
pub fn fault_label(f: &FaultRecord) -> &str {
    if f.description.is_empty() {
        &f.kind
    } else {
        &f.description
    }
}

/// The fault in words with what it resolved when it was injected (a scoped network
/// fault's packets and peers, addresses included), for the renderers' fault rows.
pub fn fault_detail(f: &FaultRecord) -> String {
    let label = fault_label(f);
    match &f.effects {
        Some(fx) if !fx.scope.is_empty() || !fx.peers.is_empty() || fx.http.is_some() => {
            let mut only = fx.clone();
            only.oom_kills = None;
            only.oom_killed.clear();
            only.signalled.clear();
            format!("{label}; {}", only.summary())
        }
        _ => label.to_string(),
    }
}

/// A fault went wrong: not injected, or its revert not confirmed.
pub fn fault_failed(f: &FaultRecord) -> bool {
    matches!(f.status, FaultStatus::Failed | FaultStatus::Active)
}

/// One probe of one phase, as every tabular renderer shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeRow<'a> {
    pub phase: &'static str,
    pub name: &'a str,
    pub kind: &'a str,
    pub passed: bool,
    pub detail: String,
}

/// Every probe of every phase that ran, in phase order.
pub fn probe_rows(r: &RunResult) -> Vec<ProbeRow<'_>> {
    fn steady<'a>(phase: &'static str, p: &'a Option<super::SteadyPhase>) -> Vec<ProbeRow<'a>> {
        p.iter()
            .flat_map(|p| p.probes.iter())
            .map(|p| ProbeRow {
                phase,
                name: &p.name,
                kind: &p.kind,
                passed: p.passed,
                detail: if p.attempts > 1 {
                    format!("{} (attempt {})", p.detail, p.attempts)
                } else {
                    p.detail.clone()
                },
            })
            .collect()
    }
    let mut rows = steady("before", &r.phases.before);
    rows.extend(
        r.phases
            .during
            .iter()
            .flat_map(|d| d.probes.iter())
            .map(|p| ProbeRow {
                phase: "during",
                name: &p.name,
                kind: &p.kind,
                passed: p.passed,
                detail: during_detail(p),
            }),
    );
    rows.extend(steady("after", &r.phases.after));
    rows
}

/// `11/20 ok (55%, need 50%); latency p50 2ms, p95 500ms, max 501ms`.
pub fn during_detail(p: &super::DuringProbe) -> String {
    if p.samples == 0 {
        return format!("no samples (need {:.0}%)", p.min_success * 100.0);
    }
    let mut text = format!(
        "{}/{} ok ({:.0}%, need {:.0}%); latency p50 {}ms, p95 {}ms, max {}ms",
        p.successes,
        p.samples,
        p.success_ratio * 100.0,
        p.min_success * 100.0,
        p.latency_ms.p50,
        p.latency_ms.p95,
        p.latency_ms.max
    );
    if let Some(t) = &p.ttfb_ms {
        text.push_str(&format!(
            "; first byte p50 {}ms, p95 {}ms, max {}ms",
            t.p50, t.p95, t.max
        ));
    }
    if !p.latency_bounds.is_empty() {
        text.push_str(&format!("; latency bounds: {}", latency_bounds_text(p)));
    }
    text
}

/// `p50 4ms <= 100ms, p95 812ms > 300ms (failed: p95)`: every bound against its measured
/// value, and which failed.
pub fn latency_bounds_text(p: &super::DuringProbe) -> String {
    let all: Vec<String> = p
        .latency_bounds
        .iter()
        .map(super::LatencyCheck::words)
        .collect();
    let failed: Vec<&str> = p
        .latency_bounds
        .iter()
        .filter(|b| !b.passed)
        .map(|b| b.percentile.as_str())
        .collect();
    let mut text = all.join(", ");
    if !failed.is_empty() {
        text.push_str(&format!(" (failed: {})", failed.join(", ")));
    }
    text
}

/// Counts over several runs, e.g. a game day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub experiments: usize,
    pub passed: usize,
    pub failed: usize,
    /// `not_steady` and `no_targets`.
    pub not_run: usize,
    /// `error`.
    pub errors: usize,
    /// `interrupted` (a signal; every fault was reverted): kept apart from errors.
    pub interrupted: usize,
    /// `revert_incomplete`: a fault may still be active; kept apart from errors.
    pub revert_incomplete: usize,
    pub highest_exit: u8,
}

impl Totals {
    pub fn of(rs: &[RunResult]) -> Totals {
        let mut t = Totals {
            experiments: rs.len(),
            ..Totals::default()
        };
        for r in rs {
            match r.verdict {
                Verdict::Passed => t.passed += 1,
                Verdict::Failed => t.failed += 1,
                Verdict::NotSteady | Verdict::NoTargets => t.not_run += 1,
                Verdict::Error => t.errors += 1,
                Verdict::Interrupted => t.interrupted += 1,
                Verdict::RevertIncomplete => t.revert_incomplete += 1,
            }
            t.highest_exit = t.highest_exit.max(r.exit_code);
        }
        t
    }

    /// `3 experiments: 1 passed, 1 failed, 1 not run; highest exit code 3`.
    pub fn sentence(&self) -> String {
        let mut parts = vec![format!("{} passed", self.passed)];
        if self.failed > 0 {
            parts.push(format!("{} failed", self.failed));
        }
        if self.not_run > 0 {
            parts.push(format!("{} not run", self.not_run));
        }
        if self.errors > 0 {
            parts.push(format!(
                "{} error{}",
                self.errors,
                if self.errors == 1 { "" } else { "s" }
            ));
        }
        if self.interrupted > 0 {
            parts.push(format!("{} interrupted", self.interrupted));
        }
        if self.revert_incomplete > 0 {
            parts.push(format!(
                "{} revert incomplete (run `faultline recover`)",
                self.revert_incomplete
            ));
        }
        format!(
            "{} experiment{}: {}; highest exit code {}",
            self.experiments,
            if self.experiments == 1 { "" } else { "s" },
            parts.join(", "),
            self.highest_exit
        )
    }
}

/// A span `[start, end]` in milliseconds since the run started.
pub type Span = (u64, u64);

/// The run's phases on a time axis. The report records no phase boundaries, so they are
/// reconstructed: injection starts at the first injection attempt, the faults end at the
/// last revert (or one-shot injection), recovery ends at the `recovered` event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spans {
    /// Where the time axis ends (at least 1).
    pub end: u64,
    pub before: Option<Span>,
    /// From the first injection to the last revert (and the last during sample).
    pub during: Option<Span>,
    pub after: Option<Span>,
    /// The last revert or one-shot injection: recovery is timed from here.
    pub last_change: Option<u64>,
    /// `last_change` + `recovered_after_ms`.
    pub recovered: Option<u64>,
}

/// Milliseconds from the run's start to `t` (0 if earlier). Whole milliseconds of both, so
/// that a live result and its saved JSON (which keeps milliseconds) render alike.
pub fn offset(r: &RunResult, t: DateTime<Utc>) -> u64 {
    (t.timestamp_millis() - r.started_at.timestamp_millis()).max(0) as u64
}

impl Spans {
    pub fn of(r: &RunResult) -> Spans {
        let events = |kinds: &[EventKind]| -> Vec<u64> {
            r.events
                .iter()
                .filter(|e| kinds.contains(&e.kind))
                .map(|e| offset(r, e.at))
                .collect()
        };
        let samples: Vec<u64> = r
            .phases
            .during
            .iter()
            .flat_map(|d| d.probes.iter())
            .flat_map(|p| p.timeline.iter().map(|s| s.at_ms))
            .collect();
        let injected: Vec<u64> = r
            .faults
            .iter()
            .filter_map(|f| f.injected_at)
            .map(|t| offset(r, t))
            .collect();
        let inject_start = injected
            .iter()
            .copied()
            .chain(events(&[EventKind::FaultInjected, EventKind::FaultFailed]))
            .chain(samples.iter().copied())
            .min();
        let changes: Vec<u64> = r
            .faults
            .iter()
            .filter_map(|f| match (f.status, f.reverted_at, f.injected_at) {
                (_, Some(t), _) => Some(offset(r, t)),
                (FaultStatus::Completed, None, Some(t)) => Some(offset(r, t)),
                _ => None,
            })
            .collect();
        let last_change = changes.iter().copied().max().or_else(|| {
            events(&[
                EventKind::FaultReverted,
                EventKind::TargetVanished,
                EventKind::RevertFailed,
            ])
            .into_iter()
            .max()
        });
        let verdict_at = events(&[EventKind::Verdict]).into_iter().max();
        let end = [r.duration_ms, verdict_at.unwrap_or(0)]
            .into_iter()
            .chain(r.events.iter().map(|e| offset(r, e.at)))
            .chain(samples.iter().copied())
            .max()
            .unwrap_or(0)
            .max(1);
        let finish = verdict_at.unwrap_or(end);

        let before = r.phases.before.as_ref().map(|_| {
            let start = events(&[EventKind::TargetsSelected])
                .into_iter()
                .min()
                .unwrap_or(0);
            let stop = inject_start.unwrap_or(finish).max(start);
            (start, stop)
        });
        let during = inject_start.map(|start| {
            let stop = last_change
                .into_iter()
                .chain(samples.iter().copied())
                .chain(injected.iter().copied())
                .max()
                .unwrap_or(start)
                .max(start);
            (start, stop)
        });
        let after = r.phases.after.as_ref().map(|_| {
            let start = last_change.or(during.map(|d| d.1)).unwrap_or(0).min(finish);
            let stop = events(&[EventKind::Recovered, EventKind::NotRecovered])
                .into_iter()
                .max()
                .unwrap_or(finish)
                .max(start);
            (start, stop)
        });
        let recovered = match (last_change, recovery_ms(r)) {
            (Some(at), Some(ms)) => Some(at + ms),
            _ => None,
        };
        Spans {
            end: end.max(recovered.unwrap_or(0)),
            before,
            during,
            after,
            last_change,
            recovered,
        }
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A realistic run: steady state, one paused target of two, a during probe that
    //! fails while the target is frozen, recovery.
    use super::super::*;
    use chrono::{Duration, TimeZone};

    pub(crate) fn t(ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + Duration::milliseconds(ms)
    }

    fn ev(ms: i64, kind: &str, message: &str) -> Event {
        let kind: EventKind = serde_json::from_value(serde_json::Value::from(kind)).unwrap();
        Event {
            at: t(ms),
            kind,
            message: message.into(),
        }
    }

    /// A steady-state phase whose one http probe `web answers` passed in `ms`.
    fn web_answers(ms: u64, recovered_after_ms: Option<u64>) -> SteadyPhase {
        SteadyPhase {
            passed: true,
            recovered_after_ms,
            measured_from: None,
            probes: vec![ProbeOutcome {
                name: "web answers".into(),
                kind: "http".into(),
                passed: true,
                attempts: 1,
                duration_ms: ms,
                detail: format!("200 OK in {ms}ms"),
                measured: Default::default(),
            }],
        }
    }

    /// The realistic run, ended with `verdict` and its exit code.
    /// [`passed`] with `select: {mode: count, value: 5}` that matched one target.
    pub(crate) fn short_of_targets() -> RunResult {
        let select = crate::experiment::model::Select {
            mode: crate::experiment::model::SelectMode::Count,
            value: Some(5),
            ..Default::default()
        };
        let mut r = passed();
        r.selection = Some(Selection::of(&select, 1, 1));
        r
    }

    /// [`passed`] with its fault made a `kind` fault, described as `description`, that
    /// had `effects`.
    pub(crate) fn fault_with_effects(
        kind: &str,
        description: &str,
        effects: FaultEffects,
    ) -> RunResult {
        let mut r = passed();
        r.faults[0].kind = kind.into();
        r.faults[0].description = description.into();
        r.faults[0].effects = Some(effects);
        r
    }

    pub(crate) fn ended(verdict: Verdict) -> RunResult {
        let mut r = passed();
        r.verdict = verdict;
        r.exit_code = verdict.exit().code();
        r
    }

    pub(crate) fn passed() -> RunResult {
        let timeline: Vec<SamplePoint> = (0..20)
            .map(|i| {
                let ok = !(5..14).contains(&i);
                SamplePoint {
                    at_ms: 120 + i * 250,
                    ok,
                    latency_ms: if ok { 2 + i % 3 } else { 500 },
                    measured: Default::default(),
                }
            })
            .collect();
        RunResult {
            format_version: 1,
            tool: Tool::default(),
            experiment: ExperimentRef {
                name: "web-survives-pause".into(),
                file: "experiments/web-pause.yaml".into(),
            },
            verdict: Verdict::Passed,
            exit_code: 0,
            started_at: t(0),
            ended_at: t(6400),
            duration_ms: 6400,
            seed: Some(7),
            selection: None,
            selections: Default::default(),
            targets: vec![TargetRef {
                platform: "docker".into(),
                id: "3f2a9c0d11e4b5a6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0".into(),
                name: "web-1".into(),
                target_name: String::new(),
            }],
            faults: vec![FaultRecord {
                kind: "pause".into(),
                target: "web-1".into(),
                target_name: String::new(),
                injected_at: Some(t(110)),
                reverted_at: Some(t(5130)),
                status: FaultStatus::Reverted,
                error: None,
                description: "pause for 5s".into(),
                effects: None,
            }],
            phases: Phases {
                before: Some(web_answers(3, None)),
                during: Some(DuringPhase {
                    passed: true,
                    probes: vec![DuringProbe {
                        name: "web mostly answers".into(),
                        kind: "http".into(),
                        samples: 20,
                        successes: 11,
                        success_ratio: 0.55,
                        min_success: 0.5,
                        passed: true,
                        latency_ms: Latency {
                            p50: 4,
                            p95: 500,
                            p99: Some(500),
                            max: 500,
                        },
                        ttfb_ms: None,
                        latency_bounds: Vec::new(),
                        timeline,
                    }],
                }),
                after: Some(web_answers(2, Some(37))),
            },
            events: vec![
                ev(20, "targets_selected", "web-1 (seed 7)"),
                ev(110, "fault_injected", "pause web-1"),
                ev(5130, "fault_reverted", "pause web-1"),
                ev(5167, "recovered", "steady state holds again after 37ms"),
                ev(6400, "verdict", "the hypothesis held"),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each renderer in `formats` shows `needle` in what it renders of `r`.
    #[track_caller]
    fn assert_rendered(r: &RunResult, formats: &[&str], needle: &str) {
        for format in formats {
            let text = match *format {
                "table" => crate::report::table::render(r, false),
                "markdown" => crate::report::markdown::render(r),
                "html" => crate::report::html::render(r),
                "junit" => crate::report::junit::render(std::slice::from_ref(r)),
                "json" => crate::report::json::render(r),
                other => panic!("no renderer `{other}`"),
            };
            assert!(text.contains(needle), "{format} lacks `{needle}`:\n{text}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration(37), "37ms");
        assert_eq!(duration(4210), "4.21s");
        assert_eq!(duration(123_000), "2m 03s");
        assert_eq!(duration(3_720_000), "1h 02m");
    }

    #[test]
    fn every_renderer_names_a_scoped_faults_packets_and_peers() {
        let r = fixture::fault_with_effects(
            "network",
            "network delay 200ms (to containers web-b) on eth0 for 8s",
            crate::report::FaultEffects {
                scope: vec!["to 172.18.0.3/32 tcp port 8080 (egress)".into()],
                peers: vec![crate::report::PeerRef {
                    name: "web-b".into(),
                    addresses: vec!["172.18.0.3".into()],
                }],
                ..Default::default()
            },
        );
        let want = "network delay 200ms (to containers web-b) on eth0 for 8s; only packets to 172.18.0.3/32 tcp port 8080 (egress); peers web-b (172.18.0.3)";
        assert_eq!(fault_detail(&r.faults[0]), want);
        let every = ["table", "markdown", "html", "junit", "json"];
        assert_rendered(&r, &every, "172.18.0.3/32");
        // Without a scope the label is the description alone.
        assert_eq!(fault_detail(&fixture::passed().faults[0]), "pause for 5s");
    }

    #[test]
    fn every_renderer_counts_an_http_faults_requests() {
        let r = fixture::fault_with_effects(
            "http",
            "answer 503 to 30% of requests to port 80, for 10s",
            crate::report::FaultEffects {
                http: Some(crate::report::HttpCounts {
                    matched: 31,
                    aborted: 31,
                    delayed: 0,
                    replaced: 0,
                    passed: 69,
                    not_http: 2,
                }),
                ..Default::default()
            },
        );
        let want = "answer 503 to 30% of requests to port 80, for 10s; its proxy saw 31 matching request(s) (31 aborted, 0 delayed, 0 replaced) and passed 69 untouched; 2 connection(s) were not HTTP/1.1 (HTTPS among them) and passed through uninspected";
        assert_eq!(fault_detail(&r.faults[0]), want);
        assert_rendered(&r, &["table", "markdown", "html"], "31 matching request(s)");
    }

    #[test]
    fn spans_from_events_and_faults() {
        let s = Spans::of(&fixture::passed());
        assert_eq!(s.before, Some((20, 110)));
        assert_eq!(s.during, Some((110, 5130)));
        assert_eq!(s.after, Some((5130, 5167)));
        assert_eq!(s.last_change, Some(5130));
        assert_eq!(s.recovered, Some(5167));
        assert_eq!(s.end, 6400);
    }

    #[test]
    fn not_steady_has_only_a_before_span() {
        let mut r = fixture::passed();
        r.faults.clear();
        r.phases.during = None;
        r.phases.after = None;
        r.events
            .retain(|e| e.kind == EventKind::TargetsSelected || e.kind == EventKind::Verdict);
        let s = Spans::of(&r);
        assert_eq!(s.before, Some((20, 6400)));
        assert_eq!((s.during, s.after, s.recovered), (None, None, None));
    }

    #[test]
    fn probe_rows_in_phase_order() {
        let r = fixture::passed();
        let phases: Vec<&str> = probe_rows(&r).iter().map(|p| p.phase).collect();
        assert_eq!(phases, ["before", "during", "after"]);
        let mut r = r;
        r.phases.before = None;
        let phases: Vec<&str> = probe_rows(&r).iter().map(|p| p.phase).collect();
        assert_eq!(phases, ["during", "after"]);
    }

    /// Regression: `count: 5` with 3 matches silently took 3; every report says so now.
    #[test]
    fn every_report_says_when_fewer_targets_than_requested() {
        assert_eq!(shortfall(&fixture::passed()), "");
        let r = fixture::short_of_targets();
        assert_rendered(&r, &["table"], "Targets: web-1 (1 of 5 requested)\n");
        assert_rendered(&r, &["markdown"], "targets: web-1 (1 of 5 requested)");
        assert_rendered(&r, &["html", "junit"], "web-1 (1 of 5 requested)");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["selection"]["requested"], 5);
        assert_eq!(json["selection"]["selected"], 1);
    }

    #[test]
    fn every_report_lists_named_targets_by_name() {
        let mut r = fixture::passed();
        r.targets[0].target_name = "cache".into();
        r.faults[0].target_name = "cache".into();
        let mut api = r.targets[0].clone();
        (api.target_name, api.name, api.id) = ("api".into(), "api-2".into(), "a2".into());
        r.targets.push(api);
        let mut kill = r.faults[0].clone();
        (kill.kind, kill.target, kill.target_name) = ("kill".into(), "api-2".into(), "api".into());
        kill.status = FaultStatus::Completed;
        kill.reverted_at = None;
        r.faults.push(kill);
        let mut counts = crate::report::Selection::of(&Default::default(), 3, 1);
        r.selections.insert("api".into(), counts.clone());
        counts.matched = 1;
        r.selections.insert("cache".into(), counts);
        assert_eq!(target_list(&r), "cache: web-1; api: api-2");
        let table = crate::report::table::render(&r, false);
        assert!(
            table.contains("Targets: cache: web-1; api: api-2\n"),
            "{table}"
        );
        assert!(
            table.contains("cache: web-1") && table.contains("api: api-2"),
            "{table}"
        );
        let metrics = crate::report::metrics::render(&[r.clone()]);
        for target in ["cache", "api"] {
            let line = format!(
                "faultline_faults_injected_total{{experiment=\"web-survives-pause\",target=\"{target}\"}} 1\n"
            );
            assert!(metrics.contains(&line), "{metrics}");
        }
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["faults"][1]["target_name"], "api");
        assert_eq!(json["selections"]["api"]["matched"], 3);
        // The unnamed target's report has none of these fields.
        let plain = serde_json::to_value(fixture::passed()).unwrap();
        assert!(plain["faults"][0].get("target_name").is_none());
        assert!(plain.get("selections").is_none());
    }

    #[test]
    fn during_detail_shows_each_latency_bound_against_its_measure_and_which_failed() {
        let mut r = fixture::passed();
        let p = &mut r.phases.during.as_mut().unwrap().probes[0];
        assert!(!during_detail(p).contains("bounds"));
        p.latency_bounds = vec![
            crate::report::LatencyCheck {
                percentile: "p50".into(),
                bound_ms: 100,
                measured_ms: 4,
                passed: true,
            },
            crate::report::LatencyCheck {
                percentile: "p95".into(),
                bound_ms: 300,
                measured_ms: 500,
                passed: false,
            },
        ];
        assert!(
            during_detail(p)
                .ends_with("; latency bounds: p50 4ms <= 100ms, p95 500ms > 300ms (failed: p95)"),
            "{}",
            during_detail(p)
        );
    }

    #[test]
    fn during_detail_shows_time_to_first_byte_apart() {
        let mut r = fixture::passed();
        let p = &mut r.phases.during.as_mut().unwrap().probes[0];
        assert!(!during_detail(p).contains("first byte"));
        p.ttfb_ms = Some(crate::report::Latency {
            p50: 1,
            p95: 2,
            p99: Some(3),
            max: 3,
        });
        assert!(
            during_detail(p).ends_with(
                "latency p50 4ms, p95 500ms, max 500ms; first byte p50 1ms, p95 2ms, max 3ms"
            ),
            "{}",
            during_detail(p)
        );
        p.timeline[0].measured.ttfb_ms = Some(1);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["phases"]["during"]["probes"][0]["ttfb_ms"]["max"], 3);
        assert_eq!(
            json["phases"]["during"]["probes"][0]["timeline"][0]["ttfb_ms"],
            1
        );
        assert!(
            json["phases"]["during"]["probes"][0]["timeline"][1]
                .get("ttfb_ms")
                .is_none()
        );
        let html = crate::report::html::render(&r);
        assert!(
            html.contains("ms (first byte 1ms)"),
            "the sample's hover text"
        );
    }

    #[test]
    fn totals() {
        let failed = fixture::ended(Verdict::Failed);
        let t = Totals::of(&[fixture::passed(), failed]);
        assert_eq!((t.passed, t.failed, t.highest_exit), (1, 1, 1));
        assert_eq!(
            t.sentence(),
            "2 experiments: 1 passed, 1 failed; highest exit code 1"
        );
    }

    #[test]
    fn interrupted_and_revert_incomplete_are_not_counted_as_errors() {
        let error = fixture::ended(Verdict::Error);
        let incomplete = fixture::ended(Verdict::RevertIncomplete);
        let interrupted = fixture::ended(Verdict::Interrupted);
        let t = Totals::of(&[fixture::passed(), error, incomplete, interrupted]);
        assert_eq!((t.errors, t.interrupted, t.revert_incomplete), (1, 1, 1));
        assert_eq!(
            t.sentence(),
            "4 experiments: 1 passed, 1 error, 1 interrupted, 1 revert incomplete (run `faultline recover`); highest exit code 130"
        );
    }
}
