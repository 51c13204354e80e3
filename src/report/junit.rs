//! `--report junit`: JUnit XML for CI systems. One `<testsuite>` per experiment (named after
//! it), one `<testcase>` per probe per phase (`before: web answers`), per fault
//! (`fault: pause web-1`), and a `verdict` case when the run ended for a reason no probe or
//! fault case carries (error, interrupted, no targets, revert incomplete).

use std::collections::HashMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::summary::{self, Spans};
use super::{FaultStatus, RunResult, Verdict};

/// Several runs (a game day) give one document with one suite each.
pub fn render(results: &[RunResult]) -> String {
    let mut report = Report::new("faultline");
    for r in results {
        report.add_test_suite(suite(r));
    }
    report
        .to_string()
        .expect("a JUnit report of in-memory strings serializes")
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn failure(
    kind: NonSuccessKind,
    ty: &str,
    message: &str,
    description: Option<String>,
) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(kind);
    s.set_type(ty).set_message(message);
    if let Some(d) = description {
        s.set_description(d);
    }
    s
}

/// One case per steady-state probe of the `before` or `after` check; a failed one is
/// `kind`, described by `description`.
fn steady_cases(
    cases: &mut Cases,
    phase: &str,
    kind: &str,
    probes: &[super::ProbeOutcome],
    description: impl Fn(&super::ProbeOutcome) -> String,
) {
    for p in probes {
        let status = if p.passed {
            TestCaseStatus::success()
        } else {
            failure(
                NonSuccessKind::Failure,
                kind,
                &p.detail,
                Some(description(p)),
            )
        };
        cases.add(format!("{phase}: {}", p.name), status, Some(p.duration_ms));
    }
}

/// A `during` probe's case: passed, or which bar it missed (success ratio or a latency
/// bound) with its failed samples.
fn during_status(p: &super::DuringProbe) -> TestCaseStatus {
    if p.passed {
        return TestCaseStatus::success();
    }
    let broken: Vec<String> = p
        .latency_bounds
        .iter()
        .filter(|b| !b.passed)
        .map(super::LatencyCheck::words)
        .collect();
    let ratio_short = p.samples == 0 || p.success_ratio < p.min_success;
    let (kind, message) = if ratio_short || broken.is_empty() {
        (
            "below_min_success",
            format!(
                "success ratio {:.2} below min_success {:.2} ({} of {} samples ok)",
                p.success_ratio, p.min_success, p.successes, p.samples
            ),
        )
    } else {
        (
            "above_latency_bound",
            format!("latency above its bound: {}", broken.join(", ")),
        )
    };
    let failed: Vec<String> = p
        .timeline
        .iter()
        .filter(|s| !s.ok)
        .map(|s| summary::duration(s.at_ms))
        .collect();
    let mut description = summary::during_detail(p);
    if !failed.is_empty() {
        let more = failed.len().saturating_sub(20);
        description.push_str(&format!(
            "\nfailed samples at (from the run's start): {}{}",
            failed[..failed.len().min(20)].join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    failure(NonSuccessKind::Failure, kind, &message, Some(description))
}

/// A fault's case: an error when it could not be injected or its revert was not
/// confirmed; its details and times as the case's output.
fn fault_case(cases: &mut Cases, r: &RunResult, f: &super::FaultRecord) {
    let error = f.error.as_deref().unwrap_or("");
    let (status, out) = match f.status {
        FaultStatus::Reverted | FaultStatus::Completed | FaultStatus::Survived => {
            // e.g. a target removed by someone else mid-fault: worth a note, not a failure.
            let out = (!error.is_empty()).then(|| error.to_string());
            (TestCaseStatus::success(), out)
        }
        FaultStatus::Failed => {
            let message = if error.is_empty() {
                "could not be injected"
            } else {
                error
            };
            let desc = format!(
                "{} on {} could not be injected: {message}",
                summary::fault_label(f),
                summary::fault_target(f)
            );
            (
                failure(NonSuccessKind::Error, "fault_failed", message, Some(desc)),
                None,
            )
        }
        FaultStatus::Active => {
            let message = format!(
                "revert not confirmed{}; the fault may still be active: run `faultline recover`",
                if error.is_empty() {
                    String::new()
                } else {
                    format!(" ({error})")
                }
            );
            (
                failure(NonSuccessKind::Error, "revert_incomplete", &message, None),
                None,
            )
        }
    };
    let name = format!("fault: {} {}", f.kind, summary::fault_target(f));
    let case = cases.add(name, status, summary::active_ms(f));
    let mut text = format!(
        "{} on {}",
        summary::fault_detail(f),
        summary::fault_target(f)
    );
    if let Some(at) = f.injected_at {
        text.push_str(&format!(
            ", injected at +{}",
            summary::duration(summary::offset(r, at))
        ));
    }
    if let Some(at) = f.reverted_at {
        text.push_str(&format!(
            ", reverted at +{}",
            summary::duration(summary::offset(r, at))
        ));
    }
    if let Some(out) = out {
        text.push_str(&format!("\n{out}"));
    }
    case.set_system_out(text);
}

fn suite(r: &RunResult) -> TestSuite {
    let mut suite = TestSuite::new(&r.experiment.name);
    suite
        .set_timestamp(r.started_at)
        .set_time(ms(r.duration_ms));
    suite.add_property(Property::new("file", &r.experiment.file));
    suite.add_property(Property::new("verdict", r.verdict.as_str()));
    suite.add_property(Property::new("exit_code", r.exit_code.to_string()));
    if let Some(seed) = r.seed {
        suite.add_property(Property::new("seed", seed.to_string()));
    }
    if !r.targets.is_empty() {
        suite.add_property(Property::new("targets", summary::target_list(r)));
    }
    if let Some(ms) = summary::recovery_ms(r) {
        suite.add_property(Property::new("recovered_after_ms", ms.to_string()));
    }

    let mut cases = Cases::new(&r.experiment.name);
    if let Some(before) = &r.phases.before {
        steady_cases(&mut cases, "before", "not_steady", &before.probes, |p| {
            format!(
                "steady state did not hold before injection after {} attempt(s); nothing was injected\n{}",
                p.attempts, p.detail
            )
        });
    }
    let spans = Spans::of(r);
    if let Some(during) = &r.phases.during {
        for p in &during.probes {
            let status = during_status(p);
            let time = match (p.timeline.first(), p.timeline.last()) {
                (Some(a), Some(b)) => Some(b.at_ms.saturating_sub(a.at_ms)),
                _ => spans.during.map(|(a, b)| b - a),
            };
            cases.add(format!("during: {}", p.name), status, time);
        }
    }
    if let Some(after) = &r.phases.after {
        steady_cases(&mut cases, "after", "not_recovered", &after.probes, |p| {
            format!(
                "steady state did not recover in time (last of {} attempt(s)): {}",
                p.attempts, p.detail
            )
        });
    }
    for f in &r.faults {
        fault_case(&mut cases, r, f);
    }
    let verdict_case = match r.verdict {
        Verdict::Passed | Verdict::Failed | Verdict::NotSteady => None,
        Verdict::NoTargets => Some(NonSuccessKind::Failure),
        Verdict::Error | Verdict::Interrupted | Verdict::RevertIncomplete => {
            Some(NonSuccessKind::Error)
        }
    };
    if let Some(kind) = verdict_case {
        let message = summary::reason(r).unwrap_or(summary::status_word(r.verdict));
        let description = format!(
            "verdict {} (exit {}): {message}",
            r.verdict.as_str(),
            r.exit_code
        );
        cases.add(
            "verdict".to_string(),
            failure(kind, r.verdict.as_str(), message, Some(description)),
            None,
        );
    }
    suite.add_test_cases(cases.done());

    let log: Vec<String> = r
        .events
        .iter()
        .map(|e| {
            format!(
                "{:>8} {}: {}",
                format!("+{}", summary::duration(summary::offset(r, e.at))),
                e.kind,
                e.message
            )
        })
        .collect();
    if !log.is_empty() {
        suite.set_system_out(log.join("\n"));
    }
    suite
}

/// Test cases with unique names: CI systems merge cases that share a name.
struct Cases {
    classname: String,
    cases: Vec<TestCase>,
    seen: HashMap<String, usize>,
}

impl Cases {
    fn new(classname: &str) -> Cases {
        Cases {
            classname: classname.to_string(),
            cases: Vec::new(),
            seen: HashMap::new(),
        }
    }

    fn add(&mut self, name: String, status: TestCaseStatus, time_ms: Option<u64>) -> &mut TestCase {
        let n = self.seen.entry(name.clone()).or_insert(0);
        *n += 1;
        let name = if *n == 1 {
            name
        } else {
            format!("{name} ({n})")
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(&self.classname);
        if let Some(t) = time_ms {
            case.set_time(ms(t));
        }
        self.cases.push(case);
        self.cases.last_mut().expect("just pushed")
    }

    fn done(self) -> Vec<TestCase> {
        self.cases
    }
}

#[cfg(test)]
mod tests {
    use super::super::summary::fixture;
    use super::*;

    fn count(xml: &str, needle: &str) -> usize {
        xml.matches(needle).count()
    }

    #[track_caller]
    fn assert_has(xml: &str, piece: &str) {
        assert!(xml.contains(piece), "`{piece}` is missing from:\n{xml}");
    }

    #[test]
    fn one_suite_with_a_case_per_probe_and_fault() {
        let xml = render(&[fixture::passed()]);
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{xml}"
        );
        assert_has(
            &xml,
            "<testsuites name=\"faultline\" tests=\"4\" failures=\"0\" errors=\"0\"",
        );
        assert_has(&xml, "<testsuite name=\"web-survives-pause\" tests=\"4\"");
        for name in [
            "before: web answers",
            "during: web mostly answers",
            "after: web answers",
            "fault: pause web-1",
        ] {
            assert!(
                xml.contains(&format!(
                    "<testcase name=\"{name}\" classname=\"web-survives-pause\""
                )),
                "{name}: {xml}"
            );
        }
        assert!(!xml.contains("<testcase name=\"verdict\""));
        assert!(xml.contains("<property name=\"seed\" value=\"7\"/>"));
    }

    #[test]
    fn a_broken_latency_bound_says_which_and_by_how_much() {
        let mut r = fixture::ended(Verdict::Failed);
        let d = &mut r.phases.during.as_mut().unwrap().probes[0];
        d.passed = false;
        d.latency_bounds = vec![crate::report::LatencyCheck {
            percentile: "p95".into(),
            bound_ms: 300,
            measured_ms: 500,
            passed: false,
        }];
        let xml = render(&[r]);
        assert_has(
            &xml,
            "<failure message=\"latency above its bound: p95 500ms &gt; 300ms\" type=\"above_latency_bound\">",
        );
        assert_has(&xml, "latency bounds: p95 500ms &gt; 300ms (failed: p95)");
    }

    #[test]
    fn a_failed_during_probe_says_why() {
        let mut r = fixture::ended(Verdict::Failed);
        let d = &mut r.phases.during.as_mut().unwrap().probes[0];
        d.min_success = 0.9;
        d.passed = false;
        let xml = render(&[r]);
        assert_has(&xml, "failures=\"1\"");
        assert_has(
            &xml,
            "<failure message=\"success ratio 0.55 below min_success 0.90 (11 of 20 samples ok)\" type=\"below_min_success\">",
        );
        assert_has(
            &xml,
            "failed samples at (from the run&apos;s start): 1.37s, 1.62s",
        );
    }

    #[test]
    fn not_steady_fails_the_before_probe_and_nothing_else() {
        let mut r = fixture::ended(Verdict::NotSteady);
        r.faults.clear();
        r.phases.during = None;
        r.phases.after = None;
        let b = r.phases.before.as_mut().unwrap();
        b.passed = false;
        b.probes[0].passed = false;
        b.probes[0].detail = "status 503 not in [200]".into();
        let xml = render(&[r]);
        assert_has(&xml, "tests=\"1\" failures=\"1\" errors=\"0\"");
        assert_has(
            &xml,
            "<failure message=\"status 503 not in [200]\" type=\"not_steady\">",
        );
    }

    #[test]
    fn errors_add_a_verdict_case_and_fault_errors() {
        let mut r = fixture::ended(Verdict::RevertIncomplete);
        r.faults[0].status = FaultStatus::Active;
        r.faults[0].reverted_at = None;
        r.faults[0].error = Some("revert not confirmed within 30s".into());
        r.faults.push(r.faults[0].clone());
        r.events.last_mut().unwrap().message =
            "revert not confirmed for pause on web-1 & <web-2>".into();
        let xml = render(&[r]);
        assert_has(&xml, "name=\"fault: pause web-1 (2)\"");
        assert_has(&xml, "<testcase name=\"verdict\"");
        assert_has(
            &xml,
            "message=\"revert not confirmed for pause on web-1 &amp; &lt;web-2&gt;\" type=\"revert_incomplete\"",
        );
        assert_eq!(count(&xml, "<error "), 3, "{xml}");
        assert_has(&xml, "errors=\"3\"");
    }

    #[test]
    fn several_runs_give_several_suites() {
        let mut b = fixture::passed();
        b.experiment.name = "api-latency".into();
        let xml = render(&[fixture::passed(), b]);
        assert_eq!(count(&xml, "<testsuite "), 2);
        assert_has(&xml, "<testsuites name=\"faultline\" tests=\"8\"");
    }
}
