//! What a run would do, step by step: the timeline derived from an experiment. Pure, so
//! `faultline plan`, `--dry-run` and the run itself agree on offsets and order.

pub mod text;

use crate::experiment::model::{Experiment, Fault, ProbeKind, ProbeSpec, SelectMode, Target};
use crate::experiment::units::Duration;

/// One step of the run, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub phase: Phase,
    /// Offset from the start of the injection phase, for timed steps.
    pub at: Option<Duration>,
    pub action: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Before,
    Inject,
    During,
    Revert,
    After,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::Inject => "inject",
            Phase::During => "during",
            Phase::Revert => "revert",
            Phase::After => "after",
        }
    }
}

/// The timeline of an experiment, without targets.
pub fn steps(e: &Experiment) -> Vec<Step> {
    let mut out = before(e);
    out.extend(timed(e));
    out.extend(during(e));
    out.extend(after(e));
    out
}

fn step(phase: Phase, at: Option<Duration>, action: String) -> Step {
    Step { phase, at, action }
}

fn before(e: &Experiment) -> Vec<Step> {
    if e.steady_state.is_empty() {
        let skip = "no steady_state: skip the before check".to_string();
        return vec![step(Phase::Before, None, skip)];
    }
    e.steady_state
        .iter()
        .map(|p| {
            let check = format!("check `{}`: {}{}", p.name, describe_probe(p), retries(p));
            step(Phase::Before, None, check)
        })
        .collect()
}

/// Every injection and revert at its offset, in time order.
fn timed(e: &Experiment) -> Vec<Step> {
    let mut timed = Vec::new();
    for (i, f) in e.faults.iter().enumerate() {
        let fault = fault_label(e, i, f);
        let at = |d: std::time::Duration| Some(Duration(f.after().std() + d));
        let inject = format!("{fault}: {}", e.describe_fault(f));
        timed.push(step(Phase::Inject, at(Default::default()), inject));
        if let Fault::Kill(k) = f
            && let (Some(every), Some(d)) = (k.every, k.duration)
        {
            let mut t = every;
            while t < d {
                let again = format!("{fault}: kill again (targets selected anew)");
                timed.push(step(Phase::Inject, at(t.std()), again));
                t = Duration(t.std() + every.std());
            }
        }
        if let (Some(d), false) = (f.duration(), matches!(f, Fault::Kill(_))) {
            let revert = format!("{fault}: revert {}", f.type_name());
            timed.push(step(Phase::Revert, at(d.std()), revert));
        } else if f.holds_for_the_others() {
            // A command or http_call with a rollback and no duration: rolled back when
            // every other fault has ended (at its start, when there is none).
            let end = e
                .faults
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, g)| g.after().std() + g.duration().map(Duration::std).unwrap_or_default())
                .max()
                .unwrap_or_default()
                .max(f.after().std());
            let rollback = format!(
                "{fault}: rollback {} (the other faults have ended)",
                f.type_name()
            );
            timed.push(step(Phase::Revert, Some(Duration(end)), rollback));
        }
    }
    timed.sort_by_key(|s| s.at);
    timed
}

fn during(e: &Experiment) -> Vec<Step> {
    let Some(d) = &e.during else {
        return Vec::new();
    };
    let window = match d.duration {
        Some(w) => format!("for {w} after the first injection"),
        None => "while any fault is active".into(),
    };
    let abort = if d.abort_on_failure {
        " (abort on failure)"
    } else {
        ""
    };
    d.probes
        .iter()
        .map(|p| {
            let latency = p
                .latency
                .as_ref()
                .map(|l| {
                    let b: Vec<String> = l
                        .bounds()
                        .iter()
                        .map(|(n, _, d)| format!("{n} <= {d}"))
                        .collect();
                    format!(" and latency {}", b.join(", "))
                })
                .unwrap_or_default();
            let sample = format!(
                "sample `{}` every {} {window}: {}; must keep {:.0}% success{latency}{abort}",
                p.name,
                d.interval,
                describe_probe(p),
                p.min_success() * 100.0,
            );
            step(Phase::During, None, sample)
        })
        .collect()
}

fn after(e: &Experiment) -> Option<Step> {
    if e.steady_state.is_empty() {
        return None;
    }
    let r = e.recovery.clone().unwrap_or_default();
    let poll = format!(
        "poll steady state every {} for up to {}; the time to the first full pass is the recovery time",
        r.interval, r.timeout
    );
    Some(step(Phase::After, None, poll))
}

fn retries(p: &ProbeSpec) -> String {
    match p.retries {
        0 => String::new(),
        n => format!(" (up to {n} retries, {} apart)", p.retry_interval),
    }
}

/// A one-line description of a probe.
pub fn describe_probe(p: &ProbeSpec) -> String {
    let kinds = p.kinds();
    let Some(kind) = kinds.first() else {
        return "no kind".into();
    };
    match kind {
        ProbeKind::Http(h) => format!("http {} {}", h.method, h.url),
        ProbeKind::Tcp(t) => format!("tcp connect {}", t.address),
        ProbeKind::Command(c) => match (&c.run, &c.shell) {
            (Some(run), _) => format!("command {}", run.join(" ")),
            (_, Some(sh)) => format!("shell `{sh}`"),
            _ => "command".into(),
        },
        ProbeKind::Docker(d) => {
            let mut s = format!("docker containers{}", labels(&d.labels));
            if let Some(n) = &d.name {
                s.push_str(&format!(" named {n}"));
            }
            if let Some(r) = d.running {
                s.push_str(&format!(", running {r}"));
            }
            if let Some(h) = d.healthy {
                s.push_str(&format!(", healthy {h}"));
            }
            s
        }
        ProbeKind::Kubernetes(k) => match (&k.selector, &k.deployment) {
            (Some(sel), _) => format!(
                "kubernetes pods {sel} in {}, ready {}",
                k.namespace,
                k.ready.map(|c| c.to_string()).unwrap_or_default()
            ),
            (_, Some(dep)) => format!(
                "kubernetes deployment {}/{dep}, available {}",
                k.namespace,
                k.available.map(|c| c.to_string()).unwrap_or_default()
            ),
            _ => "kubernetes".into(),
        },
        ProbeKind::Prometheus(p) => {
            let mut s = format!("prometheus `{}`", p.query);
            if let Some(min) = p.min {
                s.push_str(&format!(" >= {min}"));
            }
            if let Some(max) = p.max {
                s.push_str(&format!(" <= {max}"));
            }
            s
        }
    }
}

fn labels(l: &std::collections::BTreeMap<String, String>) -> String {
    if l.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(" with labels {}", pairs.join(","))
}

/// A one-line description of what the target block selects.
/// `fault 2`, or `fault 2 on cache` when the experiment names its targets: one timeline
/// for every target.
pub fn fault_label(e: &Experiment, i: usize, f: &Fault) -> String {
    match e.target_of(f) {
        Some((name, _)) if !name.is_empty() => format!("fault {} on {name}", i + 1),
        _ => format!("fault {}", i + 1),
    }
}

pub fn describe_target(t: &Target) -> String {
    let what = if let Some(d) = &t.docker {
        let mut s = match &d.compose {
            Some(c) => format!(
                "docker containers of compose project `{}`{}{}",
                c.project,
                c.service
                    .as_ref()
                    .map(|s| format!(", service `{s}`"))
                    .unwrap_or_default(),
                labels(&d.labels).replace(" with labels", ", with labels")
            ),
            None => format!("docker containers{}", labels(&d.labels)),
        };
        if let Some(n) = &d.name {
            s.push_str(&format!(" named {n}"));
        }
        if d.labels.is_empty() && d.name.is_none() && d.compose.is_none() {
            s.push_str(" (every running container)");
        }
        s
    } else if let Some(k) = &t.kubernetes {
        let mut s = format!("kubernetes pods in namespace {}", k.namespace);
        if let Some(sel) = &k.selector {
            s.push_str(&format!(" matching {sel}"));
        }
        if let Some(f) = &k.field_selector {
            s.push_str(&format!(" with fields {f}"));
        }
        s
    } else {
        "no platform".into()
    };
    let how = match (t.select.mode, t.select.value) {
        (SelectMode::One, _) => "pick one".to_string(),
        (SelectMode::All, _) => "pick all".to_string(),
        (SelectMode::Count, Some(n)) => format!("pick {n}"),
        (SelectMode::Percent, Some(p)) => format!("pick {p}% (rounded up, at least 1)"),
        (_, None) => "pick ?".to_string(),
    };
    let min = t
        .select
        .min
        .map(|m| format!(", at least {m}"))
        .unwrap_or_default();
    let seed = t
        .select
        .seed
        .map(|s| format!(", seed {s}"))
        .unwrap_or_default();
    format!("{what}; {how}{min}{seed}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::experiment;

    #[test]
    fn timeline_orders_injections_and_reverts() {
        let yaml = "version: 1\nname: t\ntarget: {docker: {labels: {app: web}}}\nfaults:\n  - pause: {duration: 5s, after: 2s}\n  - kill: {every: 2s, duration: 5s}\n";
        let e = experiment(yaml);
        let timed: Vec<(u64, Phase)> = steps(&e)
            .iter()
            .filter_map(|s| s.at.map(|a| (a.as_millis(), s.phase)))
            .collect();
        assert_eq!(
            timed,
            vec![
                (0, Phase::Inject),
                (2000, Phase::Inject),
                (2000, Phase::Inject),
                (4000, Phase::Inject),
                (7000, Phase::Revert)
            ]
        );
    }

    #[test]
    fn a_command_without_duration_is_rolled_back_when_the_others_end_and_bounds_are_shown() {
        let yaml = "version: 1\nname: t\ntarget: {docker: {labels: {app: web}}}\nduring:\n  probes:\n    - name: fast\n      latency: {p95: 300ms}\n      tcp: {address: \"127.0.0.1:80\"}\nfaults:\n  - pause: {duration: 4s, after: 1s}\n  - command: {run: [touch, /f], rollback: [rm, /f]}\n";
        let e = experiment(yaml);
        let s = steps(&e);
        let rollback = s
            .iter()
            .find(|s| s.action.starts_with("fault 2: rollback command"))
            .expect("a rollback step");
        assert_eq!(rollback.at.map(|a| a.as_millis()), Some(5000));
        assert!(
            s.iter().any(|s| s
                .action
                .ends_with("must keep 100% success and latency p95 <= 300ms")),
            "{s:?}"
        );
    }
}
