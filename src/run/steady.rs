//! The probe phases: steady state before (with retries), sampling during, recovery after.

use std::sync::atomic::Ordering;

use futures::future::join_all;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Ctx, sample_probe};
use crate::experiment::LoadedExperiment;
use crate::experiment::model::{Experiment, ProbeSpec};
use crate::probe::ProbeContext;
use crate::report::{
    DuringPhase, DuringProbe, EventKind, Latency, LatencyCheck, Measured, ProbeOutcome,
    RecoveryStart, SamplePoint, SteadyPhase,
};

/// The experiment's steady-state probes, concurrently, each with its retries. Needs no
/// run: the session checks it while it lists the targets.
pub(super) async fn check(
    loaded: &LoadedExperiment,
    clients: &ProbeContext,
    abort: &CancellationToken,
) -> SteadyPhase {
    let probes = &loaded.experiment.steady_state;
    let outcomes = join_all(probes.iter().map(|p| async move {
        let start = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let s = super::redacted(loaded, crate::probe::sample(p, clients).await);
            if s.ok || attempts > p.retries || abort.is_cancelled() {
                return ProbeOutcome {
                    name: p.name.clone(),
                    kind: p.kind().name().into(),
                    passed: s.ok,
                    attempts,
                    duration_ms: start.elapsed().as_millis() as u64,
                    measured: measured(&s),
                    detail: s.detail,
                };
            }
            tokio::select! {
                _ = tokio::time::sleep(p.retry_interval.std()) => {}
                _ = abort.cancelled() => {}
            }
        }
    }))
    .await;
    SteadyPhase {
        passed: outcomes.iter().all(|o| o.passed),
        recovered_after_ms: None,
        measured_from: None,
        probes: outcomes,
    }
}

/// Polls steady state every `recovery.interval` until every probe passes at once or the
/// timeout passes. Recovery time is measured from `since` (the last revert).
pub(super) async fn recover(
    ctx: &Ctx<'_>,
    probes: &[ProbeSpec],
    since: Instant,
    from: RecoveryStart,
) -> SteadyPhase {
    let r = ctx.loaded.experiment.recovery.clone().unwrap_or_default();
    let deadline = Instant::now() + r.timeout.std();
    let mut polls = 0u32;
    loop {
        polls += 1;
        let round = join_all(probes.iter().map(|p| async move {
            let start = Instant::now();
            let s = sample_probe(ctx, p).await;
            (p, s, start.elapsed())
        }))
        .await;
        let passed = round.iter().all(|(_, s, _)| s.ok);
        let probes_out: Vec<ProbeOutcome> = round
            .into_iter()
            .map(|(p, s, took)| ProbeOutcome {
                name: p.name.clone(),
                kind: p.kind().name().into(),
                passed: s.ok,
                attempts: polls,
                duration_ms: took.as_millis() as u64,
                measured: measured(&s),
                detail: s.detail,
            })
            .collect();
        let now = Instant::now();
        if passed {
            let ms = now.saturating_duration_since(since).as_millis() as u64;
            ctx.event(
                EventKind::Recovered,
                format!("steady state holds again after {ms}ms"),
            )
            .await;
            return SteadyPhase {
                passed: true,
                recovered_after_ms: Some(ms),
                measured_from: Some(from),
                probes: probes_out,
            };
        }
        if now >= deadline || ctx.interrupted.is_cancelled() {
            ctx.event(
                EventKind::NotRecovered,
                format!("steady state did not hold within {}", r.timeout),
            )
            .await;
            return SteadyPhase {
                passed: false,
                recovered_after_ms: None,
                measured_from: Some(from),
                probes: probes_out,
            };
        }
        let next = (now + r.interval.std()).min(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = ctx.interrupted.cancelled() => {}
        }
    }
}

/// Samples collected during the fault window, per during probe.
pub(super) struct DuringSamples {
    probes: Vec<(ProbeSpec, Vec<SamplePoint>)>,
}

impl DuringSamples {
    pub(super) fn new(e: &Experiment) -> Self {
        DuringSamples {
            probes: e
                .during
                .as_ref()
                .map(|d| d.probes.iter().map(|p| (p.clone(), Vec::new())).collect())
                .unwrap_or_default(),
        }
    }

    pub(super) fn finish(self) -> DuringPhase {
        let probes: Vec<DuringProbe> = self
            .probes
            .into_iter()
            .map(|(p, points)| {
                let samples = points.len() as u32;
                let successes = points.iter().filter(|s| s.ok).count() as u32;
                let ratio = if samples == 0 {
                    0.0
                } else {
                    f64::from(successes) / f64::from(samples)
                };
                let latencies: Vec<u64> = points.iter().map(|s| s.latency_ms).collect();
                let ttfbs: Vec<u64> = points.iter().filter_map(|s| s.measured.ttfb_ms).collect();
                let latency_bounds: Vec<LatencyCheck> = p
                    .latency
                    .as_ref()
                    .map(|l| {
                        l.bounds()
                            .into_iter()
                            .map(|(name, q, bound)| {
                                let measured = Latency::percentile(&latencies, q);
                                LatencyCheck {
                                    percentile: name.into(),
                                    bound_ms: bound.as_millis(),
                                    measured_ms: measured,
                                    passed: samples > 0 && measured <= bound.as_millis(),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let bounds_ok = latency_bounds.iter().all(|b| b.passed);
                DuringProbe {
                    name: p.name.clone(),
                    kind: p.kind().name().into(),
                    samples,
                    successes,
                    success_ratio: (ratio * 10_000.0).round() / 10_000.0,
                    min_success: p.min_success(),
                    passed: samples > 0 && ratio >= p.min_success() && bounds_ok,
                    latency_ms: Latency::of(&latencies),
                    ttfb_ms: (!ttfbs.is_empty()).then(|| Latency::of(&ttfbs)),
                    latency_bounds,
                    timeline: points,
                }
            })
            .collect();
        DuringPhase {
            passed: probes.iter().all(|p| p.passed),
            probes,
        }
    }
}

/// How many samples the during window should give: its length over the interval. The
/// window is the span from the first fault's start to the last one's end (for one-shot
/// faults, `during.duration`).
/// What a probe attempt measured, for the report.
fn measured(s: &crate::probe::Sample) -> Measured {
    Measured {
        value: s.value,
        ttfb_ms: s.ttfb.map(|t| t.as_millis() as u64),
    }
}

fn expected_samples(e: &Experiment, interval: std::time::Duration) -> usize {
    let start = e
        .faults
        .iter()
        .map(|f| f.after().std())
        .min()
        .unwrap_or_default();
    let end = e
        .faults
        .iter()
        .filter_map(|f| f.duration().map(|d| f.after().std() + d.std()))
        .max();
    let window = match end {
        Some(end) => end.saturating_sub(start),
        None => e
            .during
            .as_ref()
            .and_then(|d| d.duration)
            .map(super::super::experiment::units::Duration::std)
            .unwrap_or_default(),
    };
    let per = interval.as_secs_f64().max(0.001);
    (window.as_secs_f64() / per).floor() as usize + 1
}

/// `abort_on_failure`: whether the probe can no longer reach `min_success` over the
/// window, i.e. it has failed more samples than the window allows. An early failure
/// or two does not abort a run whose bar can still be met.
fn bar_lost(points: &[SamplePoint], min_success: f64, expected: usize) -> bool {
    let failures = points.iter().filter(|p| !p.ok).count();
    let total = expected.max(points.len());
    let allowed = ((1.0 - min_success) * total as f64 + 1e-9).floor() as usize;
    failures > allowed
}

/// Whether the run has a during phase: during probes, and a window to sample them in
/// (a fault that lasts, or `during.duration` after one-shot faults; its default 0s
/// means none, as the format says).
pub(super) fn sampled(e: &Experiment) -> bool {
    let Some(d) = &e.during else { return false };
    if d.probes.is_empty() {
        return false;
    }
    e.faults.iter().any(|f| f.duration().is_some()) || d.duration.is_some_and(|w| w.as_millis() > 0)
}

/// Samples the during probes every interval while any fault is active (or, when every
/// fault is one-shot, for `during.duration` after the first injection), until `done`. The
/// first sample of a fault is taken as soon as it is applied.
pub(super) async fn sample_during(
    ctx: &Ctx<'_>,
    samples: &Mutex<DuringSamples>,
    done: &CancellationToken,
) {
    let e = &ctx.loaded.experiment;
    let Some(during) = e.during.as_ref().filter(|_| sampled(e)) else {
        return;
    };
    let one_shot_only = e.faults.iter().all(|f| f.duration().is_none());
    let interval = during.interval.std();
    let expected = expected_samples(e, interval);
    let mut window_end: Option<Instant> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            // A fault was just applied: sample it now, then every interval from here.
            _ = ctx.activated.notified() => ticker.reset(),
            _ = done.cancelled(), if !one_shot_only => return,
        }
        let active = ctx.active.load(Ordering::SeqCst) > 0;
        if one_shot_only {
            let Some(w) = during
                .duration
                .map(super::super::experiment::units::Duration::std)
                .filter(|d| !d.is_zero())
            else {
                if done.is_cancelled() {
                    return;
                }
                continue;
            };
            // The window opens at the first injection, which `done` marks for one-shot runs.
            if window_end.is_none() && done.is_cancelled() {
                window_end = Some(Instant::now() + w);
            }
            match window_end {
                Some(end) if Instant::now() > end => return,
                Some(_) => {}
                None => continue,
            }
        } else if !active {
            if done.is_cancelled() {
                return;
            }
            continue;
        }
        let round = join_all(during.probes.iter().map(|p| async move {
            let at = ctx.t0.elapsed();
            let s = sample_probe(ctx, p).await;
            (at, s)
        }))
        .await;
        let mut guard = samples.lock().await;
        for (i, (at, s)) in round.into_iter().enumerate() {
            let (p, points) = &mut guard.probes[i];
            points.push(SamplePoint {
                at_ms: at.as_millis() as u64,
                ok: s.ok,
                latency_ms: s.latency.as_millis() as u64,
                measured: measured(&s),
            });
            if during.abort_on_failure
                && bar_lost(points, p.min_success(), expected)
                && !ctx.abort.is_cancelled()
            {
                let msg = format!(
                    "during probe `{}` fell below {:.0}% ({}); reverting every fault",
                    p.name,
                    p.min_success() * 100.0,
                    s.detail
                );
                ctx.abort.cancel();
                drop(guard);
                ctx.event(EventKind::Abort, msg).await;
                guard = samples.lock().await;
            }
        }
    }
}
