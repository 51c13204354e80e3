//! The run lifecycle of spec section 4: targets, before, inject, during, revert, after,
//! verdict. It talks to a [`Platform`] only and never names one.

pub(crate) mod deadman;
pub mod dry_run;
pub(crate) mod gameday;
pub mod observers;
pub mod recover;
pub mod session;
mod signals;
mod steady;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration as StdDuration;

use chrono::Utc;
use futures::future::join_all;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::experiment::LoadedExperiment;
use crate::experiment::model::{self, Fault, KillFault};
use crate::fault;
use crate::journal::audit::AuditLog;
use crate::journal::{Entry, Journal, JournalError};
use crate::platform::{Platform, PlatformError, Target, select};
use crate::probe::{self, ProbeContext};
use crate::report::*;

pub struct RunOptions {
    /// Overrides `target.select.seed`.
    pub seed: Option<u64>,
    /// The targets, already resolved (and confirmed), one resolution per named target in
    /// the order of `Experiment::named_targets`: the run injects exactly these. An error:
    /// the listing failed, and the run reports it without listing again (a second try
    /// that succeeded would inject targets no guard has seen). `None`: the run resolves
    /// them itself.
    pub resolved: Option<Result<Vec<session::Resolution>, PlatformError>>,
    /// Cancelled on SIGINT/SIGTERM: every active fault is reverted and the run ends.
    pub cancel: CancellationToken,
    /// Told when the run enters a phase (progress display); may be a no-op.
    pub observer: Option<Arc<dyn Observer>>,
    /// The journal and audit log; `None` only in tests that need neither.
    pub records: Option<Records>,
    /// The steady state, already checked (by the session, while it listed the targets).
    /// `None`: the run checks it itself.
    pub before: Option<SteadyPhase>,
}

/// Where a run writes down what it does.
#[derive(Clone, Debug)]
pub struct Records {
    pub journal: Journal,
    pub audit: AuditLog,
    /// Names this run in journal entries.
    pub run_id: String,
    /// Numbers the journal entries of every run that shares these records (a game day's
    /// experiments, some of them at the same time), so that no two have the same id.
    seq: Arc<AtomicUsize>,
}

impl Records {
    /// The journal and audit log of this machine's state directory (`--audit-log`
    /// overrides the audit log's place).
    pub fn in_state_dir(audit_log: Option<&std::path::Path>) -> Records {
        let dir = crate::journal::state_dir();
        let audit = audit_log
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| dir.join("audit.jsonl"));
        Records::new(Journal::at(&dir), AuditLog::at(&audit))
    }

    pub fn new(journal: Journal, audit: AuditLog) -> Records {
        let run_id = format!(
            "{}-{}",
            Utc::now().format("%Y%m%dT%H%M%S%3f"),
            std::process::id()
        );
        Records {
            journal,
            audit,
            run_id,
            seq: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// A run's records, or none.
struct Recorder {
    records: Option<Records>,
    next: AtomicUsize,
}

impl Recorder {
    fn journal_open(
        &self,
        ctx: &Ctx<'_>,
        lane: &Lane<'_>,
        f: &Fault,
        undo: &fault::Undo,
    ) -> Result<String, JournalError> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let Some(r) = &self.records else {
            return Ok(n.to_string());
        };
        let n = r.seq.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", r.run_id);
        r.journal.open(&Entry {
            id: id.clone(),
            at: Utc::now(),
            run: r.run_id.clone(),
            pid: std::process::id(),
            experiment: ctx.loaded.experiment.name.clone(),
            fault: ctx.describe(f),
            target: lane.name.to_string(),
            platform: lane.platform.reference(),
            undo: undo.clone(),
        })?;
        Ok(id)
    }

    /// Closes an entry. Failing to write the close leaves the entry open: `recover` will
    /// find the fault already reverted and close it then.
    fn journal_close(&self, id: &str, note: &str) {
        if let Some(r) = &self.records {
            if let Err(e) = r.journal.close(id, note) {
                tracing::warn!("{e}");
            }
        }
    }
}

/// Watches a run's progress, e.g. to draw it on a terminal.
pub trait Observer: Send + Sync {
    /// The run entered `phase`; `window` is how long it is expected to last, if known.
    fn phase(&self, phase: &str, detail: &str, window: Option<StdDuration>);
    /// The run ended.
    fn done(&self);
}

/// One named target of a run (the unnamed `target` is one named ""): its block, its
/// platform, and the targets resolved on it once.
struct Lane<'a> {
    name: &'a str,
    spec: &'a model::Target,
    platform: &'a dyn Platform,
    targets: Vec<Target>,
    seed: u64,
}

impl Lane<'_> {
    /// `cache: ` before what is said about one of its targets; nothing when unnamed.
    fn prefix(&self) -> String {
        if self.name.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.name)
        }
    }

    /// A fault on one of its targets, as events name it: `pause cache: cache-1`.
    fn who(&self, f: &Fault, t: &Target) -> String {
        format!("{} {}{}", f.type_name(), self.prefix(), t.name)
    }
}

/// Shared, append-only state of one run.
struct Ctx<'a> {
    loaded: &'a LoadedExperiment,
    /// The platform of each named target, in the order of `Experiment::named_targets`.
    platforms: &'a [&'a dyn Platform],
    probes: &'a ProbeContext,
    t0: Instant,
    events: Mutex<Vec<Event>>,
    /// Faults currently active (injected, not yet reverted).
    active: AtomicUsize,
    /// Told each time a fault has just been applied: the during probes sample it at once
    /// rather than at their next tick, so a fault shorter than the interval is observed.
    activated: tokio::sync::Notify,
    /// Faults on a schedule of their own (every fault but a command with a rollback and
    /// no `duration`) that have not ended yet, and a wake-up each time one ends: such a
    /// command holds until they all have.
    timed_left: AtomicUsize,
    timed_ended: tokio::sync::Notify,
    /// Revert everything now: a signal, or a during probe below its bar.
    abort: CancellationToken,
    /// A signal: stop as soon as every fault is reverted.
    interrupted: CancellationToken,
    observer: Option<Arc<dyn Observer>>,
    records: Recorder,
}

impl Ctx<'_> {
    /// The fault's parameters in its target's words, secrets redacted.
    fn describe(&self, f: &Fault) -> String {
        self.loaded
            .secrets
            .redact(&self.loaded.experiment.describe_fault(f))
    }

    fn audit(&self, action: &str, t: &Target, f: &Fault, result: &str) {
        if let Some(r) = &self.records.records {
            let params = self.describe(f);
            let result = self.loaded.secrets.redact(result);
            r.audit.record(
                action,
                &self.loaded.experiment.name,
                &t.name,
                f.type_name(),
                &params,
                &result,
            );
        }
    }

    fn phase(&self, phase: &str, detail: &str, window: Option<StdDuration>) {
        if let Some(o) = &self.observer {
            o.phase(phase, detail, window);
        }
    }

    async fn event(&self, kind: EventKind, message: impl Into<String>) {
        let message = self.loaded.secrets.redact(&message.into());
        tracing::info!("{kind}: {message}");
        self.events.lock().await.push(Event {
            at: Utc::now(),
            kind,
            message,
        });
    }
}

/// What a fault's task leaves behind.
#[derive(Default)]
struct FaultOutcome {
    records: Vec<FaultRecord>,
    /// When the last revert (or one-shot injection) happened: recovery is timed from it.
    last_change: Option<Instant>,
    first_injection: Option<Instant>,
    /// An injection failed for a reason other than the target vanishing.
    error: bool,
    /// When the last one-shot injection was applied (before its settling).
    last_injection: Option<Instant>,
    /// Recovery of a one-shot fault is timed from when its targets were confirmed gone.
    gone_confirmed: bool,
    /// Whether it was a fault with a revert (not a one-shot kill).
    reversible: bool,
    /// Every target a round touched (repeated kills select anew each round).
    touched: Vec<Target>,
}

/// Runs an experiment on the platform of each of its named targets (in the order of
/// `Experiment::named_targets`).
pub async fn run(
    loaded: &LoadedExperiment,
    platforms: &[&dyn Platform],
    probes: &ProbeContext,
    opts: RunOptions,
) -> RunResult {
    let e = &loaded.experiment;
    let started_at = Utc::now();
    let ctx = Ctx {
        loaded,
        platforms,
        probes,
        t0: Instant::now(),
        events: Mutex::new(Vec::new()),
        active: AtomicUsize::new(0),
        activated: tokio::sync::Notify::new(),
        timed_left: AtomicUsize::new(
            e.faults
                .iter()
                .filter(|f| !f.holds_for_the_others())
                .count(),
        ),
        timed_ended: tokio::sync::Notify::new(),
        abort: opts.cancel.child_token(),
        interrupted: opts.cancel.clone(),
        observer: opts.observer.clone(),
        records: Recorder {
            records: opts.records.clone(),
            next: AtomicUsize::new(0),
        },
    };
    let mut result = RunResult {
        format_version: 1,
        tool: Tool::default(),
        experiment: ExperimentRef {
            name: e.name.clone(),
            file: loaded.file.display().to_string(),
        },
        verdict: Verdict::Error,
        exit_code: 4,
        started_at,
        ended_at: started_at,
        duration_ms: 0,
        seed: None,
        selection: None,
        selections: Default::default(),
        targets: Vec::new(),
        faults: Vec::new(),
        phases: Phases::default(),
        events: Vec::new(),
    };
    let verdict = lifecycle(&ctx, &opts, &mut result).await;
    if let Some(o) = &ctx.observer {
        o.done();
    }
    ctx.event(EventKind::Verdict, verdict.1.clone()).await;
    result.verdict = verdict.0;
    result.exit_code = verdict.0.exit().code();
    result.ended_at = Utc::now();
    result.duration_ms = ctx.t0.elapsed().as_millis() as u64;
    result.events = ctx.events.into_inner();
    result
}

/// What ends a run early, or its verdict: the verdict and why.
type Ending = (Verdict, String);

async fn lifecycle(ctx: &Ctx<'_>, opts: &RunOptions, result: &mut RunResult) -> Ending {
    let lanes = match select_targets(ctx, opts, result).await {
        Ok(lanes) => lanes,
        Err(ending) => return ending,
    };
    if let Err(ending) = check_before(ctx, opts, result).await {
        return ending;
    }
    let (after, injection_error) = inject_and_recover(ctx, &lanes, result).await;
    verdict(opts, result, after, injection_error)
}

/// Preflight of every fault, then the targets of each named target: resolved (or taken
/// as the session resolved them), counted and named in the report.
async fn select_targets<'a>(
    ctx: &Ctx<'a>,
    opts: &RunOptions,
    result: &mut RunResult,
) -> Result<Vec<Lane<'a>>, Ending> {
    let e = &ctx.loaded.experiment;
    let named = e.named_targets();
    for f in &e.faults {
        let platform = ctx.platforms[e.target_index(f).unwrap_or(0)];
        if let Err(m) = fault::preflight(f, platform).await {
            return Err((Verdict::Error, format!("{m}; nothing was touched")));
        }
    }
    let endpoints: Vec<String> = ctx.platforms.iter().map(|p| p.endpoint()).collect();
    ctx.phase(
        "targets",
        &format!("resolving targets on {}", endpoints.join(", ")),
        None,
    );
    let listed = match &opts.resolved {
        Some(r) => r.clone(),
        None => session::resolve_all(ctx.platforms, e, opts.seed).await,
    };
    let resolved = listed.map_err(|err| {
        (
            Verdict::Error,
            format!("cannot list targets: {err}; nothing was touched"),
        )
    })?;
    result.seed = resolved.first().map(|r| r.seed);
    let mut lanes = Vec::new();
    let mut too_few = Vec::new();
    for (((name, spec), platform), r) in named.into_iter().zip(ctx.platforms).zip(resolved) {
        let counts =
            Selection::of(&spec.select, r.candidates, r.targets.len()).passing_over(r.passed_over);
        let lane = Lane {
            name,
            spec,
            platform: *platform,
            targets: r.targets,
            seed: r.seed,
        };
        if let Some(why) = counts.too_few(&crate::plan::describe_target(spec)) {
            too_few.push(format!("{}{why}", lane.prefix()));
        }
        if name.is_empty() {
            result.selection = Some(counts);
        } else {
            result.selections.insert(name.to_string(), counts);
        }
        result
            .targets
            .extend(lane.targets.iter().map(|t| target_ref(t, name)));
        lanes.push(lane);
    }
    if !too_few.is_empty() {
        return Err((
            Verdict::NoTargets,
            format!("{}; nothing was touched", too_few.join("; ")),
        ));
    }
    let chosen: Vec<String> = lanes
        .iter()
        .map(|l| {
            let names: Vec<&str> = l.targets.iter().map(|t| t.name.as_str()).collect();
            format!("{}{} (seed {})", l.prefix(), names.join(", "), l.seed)
        })
        .collect();
    ctx.event(EventKind::TargetsSelected, chosen.join("; "))
        .await;
    Ok(lanes)
}

/// How the report names a target, and the named target it was selected for.
fn target_ref(t: &Target, target_name: &str) -> TargetRef {
    TargetRef {
        platform: t.platform.clone(),
        id: t.id.clone(),
        name: t.name.clone(),
        target_name: target_name.to_string(),
    }
}

/// Steady state before anything is injected.
async fn check_before(
    ctx: &Ctx<'_>,
    opts: &RunOptions,
    result: &mut RunResult,
) -> Result<(), Ending> {
    let e = &ctx.loaded.experiment;
    if !e.steady_state.is_empty() {
        if opts.cancel.is_cancelled() {
            return Err((
                Verdict::Interrupted,
                "interrupted before injection; nothing was touched".into(),
            ));
        }
        let before = match opts.before.clone() {
            Some(before) => before,
            None => {
                ctx.phase("before", "checking steady state", None);
                steady::check(ctx.loaded, ctx.probes, &ctx.abort).await
            }
        };
        let passed = before.passed;
        result.phases.before = Some(before);
        if !passed {
            return Err((
                Verdict::NotSteady,
                "steady state did not hold before injection; nothing was injected".into(),
            ));
        }
    }
    Ok(())
}

/// Every fault on its own schedule while the during probes sample, then recovery, timed
/// from the moment the faults ended. Returns the after phase and whether an injection
/// failed.
async fn inject_and_recover(
    ctx: &Ctx<'_>,
    lanes: &[Lane<'_>],
    result: &mut RunResult,
) -> (Option<SteadyPhase>, bool) {
    let e = &ctx.loaded.experiment;
    let names: Vec<String> = lanes
        .iter()
        .flat_map(|l| {
            l.targets
                .iter()
                .map(move |t| format!("{}{}", l.prefix(), t.name))
        })
        .collect();
    let window = e
        .faults
        .iter()
        .map(|f| {
            f.after().std()
                + f.duration()
                    .map(super::experiment::units::Duration::std)
                    .unwrap_or_default()
        })
        .max();
    ctx.phase(
        "inject",
        &format!("{} fault(s) on {}", e.faults.len(), names.join(", ")),
        window,
    );
    let samples = Mutex::new(steady::DuringSamples::new(e));
    let faults_done = CancellationToken::new();
    // Each fault on the target it names, all of them concurrently, each on its own
    // `after`/`duration` schedule.
    let lane_of = |f: &Fault| &lanes[e.target_index(f).unwrap_or(0)];
    let fault_runs = join_all(
        e.faults
            .iter()
            .enumerate()
            .map(|(i, f)| run_fault(ctx, lane_of(f), i, f)),
    );
    // Recovery is polled from the moment the faults end, while a one-shot fault's during
    // window may still be sampled: a container restarted 0.4 s after a kill has
    // recovered in 0.4 s, whatever the during window.
    let faults_then_recovery = async {
        let outcomes = fault_runs.await;
        faults_done.cancel();
        let ended = ended(&outcomes);
        let after = match ended {
            Ended::Cleanly { at, from } if !e.steady_state.is_empty() => {
                let timeout = e.recovery.clone().unwrap_or_default().timeout.std();
                ctx.phase(
                    "after",
                    "waiting for steady state to recover",
                    Some(timeout),
                );
                Some(steady::recover(ctx, &e.steady_state, at, from).await)
            }
            _ => None,
        };
        (outcomes, after)
    };
    let ((outcomes, after), ()) = tokio::join!(
        faults_then_recovery,
        steady::sample_during(ctx, &samples, &faults_done)
    );
    let mut injection_error = false;
    for (o, f) in outcomes.into_iter().zip(&e.faults) {
        result.faults.extend(o.records);
        injection_error |= o.error;
        let name = lane_of(f).name;
        for t in o.touched {
            // Two named targets may select the same container: it is listed under each.
            if !result
                .targets
                .iter()
                .any(|r| r.id == t.id && r.target_name == name)
            {
                result.targets.push(target_ref(&t, name));
            }
        }
    }
    if steady::sampled(e) {
        result.phases.during = Some(samples.into_inner().finish());
    }
    (after, injection_error)
}

/// The verdict from what the faults, the during window and recovery came to.
fn verdict(
    opts: &RunOptions,
    result: &mut RunResult,
    after: Option<SteadyPhase>,
    injection_error: bool,
) -> Ending {
    let unreverted: Vec<String> = result
        .faults
        .iter()
        .filter(|f| f.status == FaultStatus::Active)
        .map(|f| format!("{} on {}", f.kind, f.target))
        .collect();
    if !unreverted.is_empty() {
        return (
            Verdict::RevertIncomplete,
            format!(
                "revert not confirmed for {}; run `faultline recover`",
                unreverted.join(", ")
            ),
        );
    }
    if opts.cancel.is_cancelled() {
        return (
            Verdict::Interrupted,
            "interrupted; every fault was reverted".into(),
        );
    }
    if injection_error {
        let why: Vec<String> = result
            .faults
            .iter()
            .filter_map(|f| {
                f.error
                    .as_ref()
                    .map(|e| format!("{} on {}: {e}", f.kind, f.target))
            })
            .collect();
        return (
            Verdict::Error,
            format!(
                "a fault could not be injected ({}); every fault was reverted",
                why.join("; ")
            ),
        );
    }

    let during_ok = result.phases.during.as_ref().is_none_or(|d| d.passed);
    let after_ok = after.as_ref().is_none_or(|a| a.passed);
    result.phases.after = after;
    let why = result
        .phases
        .during
        .as_ref()
        .map(during_shortfall)
        .unwrap_or_default();
    match (during_ok, after_ok) {
        (true, true) => (Verdict::Passed, "the hypothesis held".into()),
        (false, true) => (
            Verdict::Failed,
            format!("a during probe fell below its bar{why}"),
        ),
        (true, false) => (
            Verdict::Failed,
            "steady state did not recover in time".into(),
        ),
        (false, false) => (
            Verdict::Failed,
            format!(
                "a during probe fell below its bar{why} and steady state did not recover in time"
            ),
        ),
    }
}

/// ` (`web`: p95 812ms > 300ms)` when a latency bound is what failed; empty when only
/// success ratios fell short (the reports show those per probe).
fn during_shortfall(d: &DuringPhase) -> String {
    let broken: Vec<String> = d
        .probes
        .iter()
        .filter(|p| !p.passed)
        .filter_map(|p| {
            let bounds: Vec<String> = p
                .latency_bounds
                .iter()
                .filter(|b| !b.passed)
                .map(LatencyCheck::words)
                .collect();
            (!bounds.is_empty()).then(|| format!("`{}`: {}", p.name, bounds.join(", ")))
        })
        .collect();
    if broken.is_empty() {
        String::new()
    } else {
        format!(" ({})", broken.join("; "))
    }
}

/// How the faults ended, which says whether recovery is worth checking and from when.
enum Ended {
    Cleanly {
        at: Instant,
        from: RecoveryStart,
    },
    /// A revert is unconfirmed, an injection failed, or the run was interrupted: the
    /// verdict is decided without the after phase.
    Otherwise,
}

fn ended(outcomes: &[FaultOutcome]) -> Ended {
    let trouble = outcomes
        .iter()
        .any(|o| o.error || o.records.iter().any(|r| r.status == FaultStatus::Active));
    if trouble {
        return Ended::Otherwise;
    }
    let reversible = outcomes.iter().any(|o| o.reversible);
    let at = outcomes
        .iter()
        .filter_map(|o| o.last_change)
        .max()
        .unwrap_or_else(Instant::now);
    Ended::Cleanly {
        at,
        from: if reversible {
            RecoveryStart::LastRevert
        } else if outcomes.iter().any(|o| o.gone_confirmed) {
            RecoveryStart::TargetsGone
        } else {
            RecoveryStart::LastInjection
        },
    }
}

/// Sleeps, or returns false early when the run is aborted.
async fn wait(ctx: &Ctx<'_>, d: StdDuration) -> bool {
    wait_until(ctx, Instant::now() + d).await
}

/// Sleeps until `deadline`, or returns false early when the run is aborted.
async fn wait_until(ctx: &Ctx<'_>, deadline: Instant) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => true,
        _ = ctx.abort.cancelled() => false,
    }
}

fn record(ctx: &Ctx<'_>, lane: &Lane<'_>, f: &Fault, t: &Target) -> FaultRecord {
    FaultRecord {
        kind: f.type_name().into(),
        target: t.name.clone(),
        target_name: lane.name.to_string(),
        injected_at: None,
        reverted_at: None,
        status: FaultStatus::Failed,
        error: None,
        description: ctx.describe(f),
        effects: None,
    }
}

/// Waits until every fault on a schedule of its own has ended; false when the run is
/// aborted first.
async fn until_the_others_end(ctx: &Ctx<'_>) -> bool {
    loop {
        // Registered before the count is read, so an end in between still wakes it.
        let ended = ctx.timed_ended.notified();
        if ctx.timed_left.load(Ordering::SeqCst) == 0 {
            return true;
        }
        tokio::select! {
            _ = ended => {}
            _ = ctx.abort.cancelled() => return false,
        }
    }
}

async fn run_fault(ctx: &Ctx<'_>, lane: &Lane<'_>, index: usize, f: &Fault) -> FaultOutcome {
    let out = run_fault_on_schedule(ctx, lane, index, f).await;
    if !f.holds_for_the_others() {
        ctx.timed_left.fetch_sub(1, Ordering::SeqCst);
        ctx.timed_ended.notify_waiters();
    }
    out
}

async fn run_fault_on_schedule(
    ctx: &Ctx<'_>,
    lane: &Lane<'_>,
    index: usize,
    f: &Fault,
) -> FaultOutcome {
    let mut out = FaultOutcome {
        reversible: (f.duration().is_some() && !matches!(f, Fault::Kill(_)))
            || f.holds_for_the_others(),
        ..Default::default()
    };
    if !wait(ctx, f.after().std()).await {
        return out;
    }
    // A fault that runs once for the whole experiment (a command on this host) is
    // recorded against the host, not against a target.
    let once = fault::kind(f).once();
    let host = [fault::command::host_target()];
    let targets = if once { &host[..] } else { &lane.targets[..] };
    match f {
        Fault::Kill(k) if k.every.is_some() => {
            repeated_kills(ctx, lane, index, k, &mut out).await;
        }
        Fault::Kill(_) => {
            inject_all(ctx, lane, f, targets, &mut out).await;
            out.last_change = out.last_injection.or_else(|| Some(Instant::now()));
        }
        _ => {
            let pending = inject_all(ctx, lane, f, targets, &mut out).await;
            // Active from the moment it is applied (not while it is being applied): the
            // during probes take their first sample now.
            let applied = !pending.is_empty();
            if applied {
                ctx.active.fetch_add(1, Ordering::SeqCst);
                ctx.activated.notify_one();
            }
            // The duration counts from when the fault took effect, not from when its
            // journal and audit records were written.
            let since = out.last_injection.unwrap_or_else(Instant::now);
            let held = async {
                match f.duration() {
                    Some(d) => wait_until(ctx, since + d.std()).await,
                    None => until_the_others_end(ctx).await,
                }
            };
            if applied && !held.await {
                ctx.event(
                    EventKind::Abort,
                    format!("fault {}: reverting early", index + 1),
                )
                .await;
            }
            revert_all(ctx, lane, f, pending, &mut out).await;
            if applied {
                ctx.active.fetch_sub(1, Ordering::SeqCst);
            }
            out.last_change = Some(Instant::now());
        }
    }
    if once {
        out.touched.clear();
    }
    out
}

/// An injection whose revert is pending: its record, its undo, its journal entry.
struct Pending {
    record: usize,
    undo: fault::Undo,
    journal_id: String,
}

/// What one injection came to, before it is recorded.
struct Injected<'t> {
    target: &'t Target,
    /// When it was asked for, and when it was applied (for a one-shot fault that took
    /// its target down: when the target was confirmed gone).
    at: chrono::DateTime<Utc>,
    applied: Instant,
    result: Result<Option<FaultEffects>, PlatformError>,
    /// The undo and journal entry of a reversible fault still (possibly) in effect.
    kept: Option<(fault::Undo, String)>,
    settled: fault::Settled,
}

impl<'t> Injected<'t> {
    /// Nothing was applied.
    fn not_applied(target: &'t Target, at: chrono::DateTime<Utc>, err: PlatformError) -> Self {
        Injected {
            target,
            at,
            applied: Instant::now(),
            result: Err(err),
            kept: None,
            settled: fault::Settled::Done { gone_at: None },
        }
    }
}

/// Injects on every target concurrently. A reversible fault is journaled (and synced)
/// before it is applied; returns the pending reverts of the successes.
async fn inject_all(
    ctx: &Ctx<'_>,
    lane: &Lane<'_>,
    f: &Fault,
    targets: &[Target],
    out: &mut FaultOutcome,
) -> Vec<Pending> {
    for t in targets {
        if !out.touched.contains(t) {
            out.touched.push(t.clone());
        }
    }
    let results = join_all(targets.iter().map(|t| inject_one(ctx, lane, f, t))).await;
    out.first_injection.get_or_insert_with(Instant::now);
    let mut pending = Vec::new();
    for injected in results {
        record_injection(ctx, lane, f, injected, out, &mut pending).await;
    }
    pending
}

/// Prepares, journals and applies the fault on one target; gives back what it prepared
/// when it could not be applied.
async fn inject_one<'t>(ctx: &Ctx<'_>, lane: &Lane<'_>, f: &Fault, t: &'t Target) -> Injected<'t> {
    let at = Utc::now();
    let undo = match fault::prepare(lane.platform, f, t).await {
        Ok(u) => u,
        Err(e) => return Injected::not_applied(t, at, e),
    };
    let journal_id = match &undo {
        Some(u) => match ctx.records.journal_open(ctx, lane, f, u) {
            Ok(id) => Some(id),
            Err(e) => {
                // Not journaled, so not applied: a command's rollback has nothing to
                // undo, anything else gives back what it prepared.
                if !matches!(
                    u.record,
                    fault::UndoRecord::RunRollback { .. } | fault::UndoRecord::HttpRollback { .. }
                ) {
                    fault::release(lane.platform, u).await;
                }
                let err = PlatformError::Refused(format!("{e}; the fault was not applied"));
                return Injected::not_applied(t, at, err);
            }
        },
        None => None,
    };
    let mut r = fault::inject_reporting(lane.platform, f, t, undo.as_ref()).await;
    let applied = Instant::now();
    let mut kept = undo.clone().zip(journal_id);
    if let Err(e) = &r {
        let released = match &kept {
            Some((u, _)) => fault::release(lane.platform, u).await,
            None => true,
        };
        if released {
            if let Some((_, id)) = kept.take() {
                ctx.records
                    .journal_close(&id, &format!("not injected: {e}"));
            }
        } else {
            // It may still be in effect (a command's rollback failed): the entry stays
            // open for `recover`, and the fault counts as not reverted.
            r = Err(PlatformError::Refused(format!(
                "{e}; its rollback did not succeed either: run `faultline recover`"
            )));
        }
    }
    let result = match &r {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    ctx.audit("inject", t, f, &result);
    // A one-shot fault: did it take effect (a target may survive a signal)?
    let settled = match (&r, &undo) {
        // An interrupt (or an abort) does not wait out the grace period: the signal
        // was sent, whether the target outlived it is left unsaid.
        (Ok(_), None) => tokio::select! {
            s = fault::kind(f).settle(lane.platform, t, at) => s,
            () = ctx.abort.cancelled() => fault::Settled::Done { gone_at: None },
        },
        _ => fault::Settled::Done { gone_at: None },
    };
    Injected {
        target: t,
        at,
        applied,
        result: r,
        kept,
        settled,
    }
}

/// Writes one injection into the fault's record and events; a reversible one that is
/// (possibly) in effect joins `pending`.
async fn record_injection(
    ctx: &Ctx<'_>,
    lane: &Lane<'_>,
    f: &Fault,
    injected: Injected<'_>,
    out: &mut FaultOutcome,
    pending: &mut Vec<Pending>,
) {
    let Injected {
        target: t,
        at,
        applied,
        result: r,
        kept: undo,
        settled,
    } = injected;
    let mut rec = record(ctx, lane, f, t);
    let who = lane.who(f, t);
    match r {
        Ok(effects) => {
            rec.injected_at = Some(at);
            let applied = match &settled {
                fault::Settled::Done {
                    gone_at: Some(gone),
                } => {
                    out.gone_confirmed = true;
                    *gone
                }
                _ => applied,
            };
            out.last_injection = out.last_injection.max(Some(applied));
            ctx.event(EventKind::FaultInjected, who.clone()).await;
            if let Some(fx) = effects {
                let fx = fx.redacted(|s| ctx.loaded.secrets.redact(s));
                ctx.event(EventKind::FaultEffect, format!("{who}: {}", fx.summary()))
                    .await;
                rec.effects = Some(fx);
            }
            match (undo, settled) {
                (Some((undo, journal_id)), _) => {
                    rec.status = FaultStatus::Active;
                    pending.push(Pending {
                        record: out.records.len(),
                        undo,
                        journal_id,
                    });
                }
                (None, fault::Settled::Done { .. }) => rec.status = FaultStatus::Completed,
                (None, fault::Settled::Survived { note, expected }) => {
                    rec.status = FaultStatus::Survived;
                    if expected {
                        ctx.event(EventKind::TargetSurvived, format!("{note}, as expected"))
                            .await;
                    } else {
                        out.error = true;
                        ctx.event(EventKind::TargetSurvived, note.clone()).await;
                        rec.error = Some(format!(
                            "{note}; set `expect: survive` if that is what the experiment expects"
                        ));
                    }
                }
            }
        }
        Err(err) => {
            // A target removed by someone else is reported, not an error of the run.
            if !matches!(err, PlatformError::Gone(_)) {
                out.error = true;
            }
            ctx.event(EventKind::FaultFailed, format!("{who}: {err}"))
                .await;
            rec.error = Some(ctx.loaded.secrets.redact(&err.to_string()));
            if undo.is_some() {
                rec.status = FaultStatus::Active;
            }
        }
    }
    out.records.push(rec);
}

/// Reverts concurrently, each with its own timeout so one stuck target does not hold back
/// the others; the journal entry is closed only when the revert is confirmed.
async fn revert_all(
    ctx: &Ctx<'_>,
    lane: &Lane<'_>,
    f: &Fault,
    pending: Vec<Pending>,
    out: &mut FaultOutcome,
) {
    let results = join_all(pending.into_iter().map(|p| async move {
        // What the fault caused is read before its revert removes the evidence.
        let effects = fault::kind(f).effects(lane.platform, &p.undo).await;
        let r = fault::revert_until(lane.platform, &p.undo, fault::REVERT_TIMEOUT).await;
        (p, effects, r)
    }))
    .await;
    for (p, effects, r) in results {
        let target = p.undo.target();
        let who = lane.who(f, target);
        if let Some(fx) = effects {
            ctx.event(EventKind::FaultEffect, format!("{who}: {}", fx.summary()))
                .await;
            merge_effects(ctx, &mut out.records[p.record], fx);
        }
        let r = match r {
            Some(Ok(Some(fx))) => {
                ctx.event(EventKind::FaultEffect, format!("{who}: {}", fx.summary()))
                    .await;
                merge_effects(ctx, &mut out.records[p.record], fx);
                Some(Ok(()))
            }
            Some(Ok(None)) => Some(Ok(())),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        };
        let rec = &mut out.records[p.record];
        match r {
            Some(Ok(())) => {
                rec.status = FaultStatus::Reverted;
                rec.reverted_at = Some(Utc::now());
                ctx.records.journal_close(&p.journal_id, "reverted");
                ctx.audit("revert", target, f, "ok");
                ctx.event(EventKind::FaultReverted, who.clone()).await;
            }
            Some(Err(PlatformError::Gone(name))) => {
                rec.status = FaultStatus::Reverted;
                rec.reverted_at = Some(Utc::now());
                rec.error = Some(format!(
                    "target `{name}` vanished during the fault (removed by someone else)"
                ));
                ctx.records
                    .journal_close(&p.journal_id, "target no longer exists");
                ctx.audit("revert", target, f, "target no longer exists");
                ctx.event(
                    EventKind::TargetVanished,
                    format!("{} {name}: the target no longer exists", f.type_name()),
                )
                .await;
            }
            Some(Err(err)) => {
                let err = ctx.loaded.secrets.redact(&err.to_string());
                rec.error = Some(format!("revert failed: {err}"));
                ctx.audit("revert", target, f, &format!("failed: {err}"));
                ctx.event(EventKind::RevertFailed, format!("{who}: {err}"))
                    .await;
            }
            None => {
                rec.error = Some(format!(
                    "revert not confirmed within {}s",
                    fault::REVERT_TIMEOUT.as_secs()
                ));
                ctx.audit("revert", target, f, "not confirmed: timed out");
                ctx.event(EventKind::RevertFailed, format!("{who}: timed out"))
                    .await;
            }
        }
    }
}

/// Adds what a fault's revert (or a late look) says to its record, secrets redacted.
fn merge_effects(ctx: &Ctx<'_>, rec: &mut FaultRecord, fx: FaultEffects) {
    let fx = fx.redacted(|s| ctx.loaded.secrets.redact(s));
    match &mut rec.effects {
        Some(have) => have.merge(fx),
        None => rec.effects = Some(fx),
    }
}

/// `kill` with `every`: kill, wait, select again among the current matches, kill again,
/// until `duration` has passed.
async fn repeated_kills(
    ctx: &Ctx<'_>,
    lane: &Lane<'_>,
    index: usize,
    k: &KillFault,
    out: &mut FaultOutcome,
) {
    let f = &ctx.loaded.experiment.faults[index];
    let seed = lane.seed;
    let every = k.every.expect("checked by the caller").std();
    let total = k
        .duration
        .map(super::experiment::units::Duration::std)
        .unwrap_or(every);
    let start = Instant::now();
    ctx.active.fetch_add(1, Ordering::SeqCst);
    let mut round = 0u64;
    let mut targets = lane.targets.clone();
    loop {
        inject_all(ctx, lane, f, &targets, out).await;
        out.last_change = out.last_injection.or_else(|| Some(Instant::now()));
        round += 1;
        let next = every * round as u32;
        if next >= total
            || !wait(
                ctx,
                (start + next).saturating_duration_since(Instant::now()),
            )
            .await
        {
            break;
        }
        match lane.platform.discover().await {
            Ok(candidates) => {
                let sel = &lane.spec.select;
                // A different but reproducible seed per round: same run seed, same rounds.
                targets = select::select(candidates, sel, Some(seed.wrapping_add(round))).0;
                if targets.is_empty() {
                    ctx.event(
                        EventKind::NoTargets,
                        format!(
                            "fault {}: no target matched in round {}",
                            index + 1,
                            round + 1
                        ),
                    )
                    .await;
                }
            }
            Err(err) => {
                out.error = true;
                ctx.event(
                    EventKind::FaultFailed,
                    format!("fault {}: cannot list targets: {err}", index + 1),
                )
                .await;
                break;
            }
        }
    }
    ctx.active.fetch_sub(1, Ordering::SeqCst);
}

/// Runs one probe attempt and redacts its detail.
async fn sample_probe(ctx: &Ctx<'_>, p: &crate::experiment::ProbeSpec) -> probe::Sample {
    redacted(ctx.loaded, probe::sample(p, ctx.probes).await)
}

/// A sample with the experiment's secrets taken out of its detail.
fn redacted(loaded: &LoadedExperiment, mut s: probe::Sample) -> probe::Sample {
    s.detail = loaded.secrets.redact(&s.detail);
    s
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    use crate::experiment::{VarOverrides, load_experiment_str};

    use crate::platform::fake::Fake;

    fn experiment(faults: &str) -> LoadedExperiment {
        let yaml = format!(
            "version: 1\nname: t\ntarget:\n  docker: {{all_containers: true}}\n  select: {{mode: all}}\nfaults:\n{faults}"
        );
        load_experiment_str("t.yaml", &yaml, &VarOverrides::default(), &|_| None).unwrap()
    }

    async fn go(e: &LoadedExperiment, p: &Fake, cancel: CancellationToken) -> RunResult {
        go_on(e, &[p], cancel, None).await
    }

    /// Runs `e` with seed 1 on `platforms`, one per named target.
    async fn go_on(
        e: &LoadedExperiment,
        platforms: &[&dyn Platform],
        cancel: CancellationToken,
        records: Option<Records>,
    ) -> RunResult {
        let probes = ProbeContext::new().unwrap();
        let opts = RunOptions {
            seed: Some(1),
            resolved: None,
            cancel,
            observer: None,
            records,
            before: None,
        };
        run(e, platforms, &probes, opts).await
    }

    /// A temporary directory, a log file in it, and the experiment of `faults` with `LOG`
    /// standing for that file.
    fn logging(faults: &str) -> (tempfile::TempDir, std::path::PathBuf, LoadedExperiment) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let e = experiment(&faults.replace("LOG", &log.display().to_string()));
        (dir, log, e)
    }

    /// A 10 ms pause of every target of a fake platform `set` up, run to the end.
    async fn pause_briefly(set: impl FnOnce(&mut Fake)) -> RunResult {
        let mut p = Fake::default();
        set(&mut p);
        run_faults("  - pause: {duration: 10ms}\n", &p).await
    }

    /// A token cancelled `ms` milliseconds from now, as a signal would.
    fn cancelled_after(ms: u64) -> CancellationToken {
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(StdDuration::from_millis(ms)).await;
            c.cancel();
        });
        cancel
    }

    /// A journal and audit log in `dir`.
    fn records_in(dir: &std::path::Path) -> Records {
        Records::new(Journal::at(dir), AuditLog::at(&dir.join("audit.jsonl")))
    }

    /// Runs `faults` on every container `p` knows, to the end.
    async fn run_faults(faults: &str, p: &Fake) -> RunResult {
        go(&experiment(faults), p, CancellationToken::new()).await
    }

    /// Asserts the verdict and the exit code, showing the events when they differ.
    #[track_caller]
    fn assert_ended(r: &RunResult, verdict: Verdict, exit_code: u8) {
        assert_eq!(
            (r.verdict, r.exit_code),
            (verdict, exit_code),
            "{:?}",
            r.events
        );
    }

    fn with_probes(rest: &str, faults: &str) -> LoadedExperiment {
        let yaml = format!(
            "version: 1\nname: t\ntarget:\n  docker: {{labels: {{app: web}}}}\n  select: {{mode: all}}\n{rest}faults:\n{faults}"
        );
        load_experiment_str("t.yaml", &yaml, &VarOverrides::default(), &|_| None).unwrap()
    }

    const PASSES: &str = "command: {run: [\"true\"]}";

    /// Runs `e` on the fake platform with a journal and audit log in `dir`.
    async fn go_recorded(e: &LoadedExperiment, p: &Fake, dir: &std::path::Path) -> RunResult {
        go_on(e, &[p], CancellationToken::new(), Some(records_in(dir))).await
    }

    fn lines(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(ToString::to_string)
            .collect()
    }

    #[tokio::test]
    async fn faults_on_named_targets_run_on_their_own_platforms_and_schedules() {
        let yaml = "version: 1\nname: t\ntargets:\n  api:\n    docker: {labels: {app: api}}\n  cache:\n    docker: {labels: {app: cache}}\n    select: {mode: all}\nfaults:\n  - pause: {target: cache, duration: 400ms}\n  - kill: {target: api, after: 100ms}\n";
        let e = load_experiment_str("t.yaml", yaml, &VarOverrides::default(), &|_| None).unwrap();
        let fake = |names: Vec<&'static str>| Fake {
            listings: StdMutex::new(vec![names]),
            ..Default::default()
        };
        let (api, cache) = (fake(vec!["api-1", "api-2", "api-3"]), fake(vec!["cache-1"]));
        let dir = tempfile::tempdir().unwrap();
        let records = Some(records_in(dir.path()));
        // `named_targets` is in name order: api, then cache.
        let r = go_on(&e, &[&api, &cache], CancellationToken::new(), records).await;
        assert_ended(&r, Verdict::Passed, 0);
        // Each platform saw only the faults on its own target.
        assert_eq!(
            *cache.log.lock().unwrap(),
            ["pause cache-1", "unpause cache-1"]
        );
        let api_log = api.log.lock().unwrap().clone();
        assert_eq!(api_log.len(), 1, "{api_log:?}");
        assert!(api_log[0].starts_with("kill api-"), "{api_log:?}");
        let pause = r.faults.iter().find(|f| f.kind == "pause").unwrap();
        let kill = r.faults.iter().find(|f| f.kind == "kill").unwrap();
        assert_eq!(
            (pause.target_name.as_str(), pause.target.as_str()),
            ("cache", "cache-1")
        );
        assert_eq!(kill.target_name, "api");
        assert_eq!(
            (pause.status, kill.status),
            (FaultStatus::Reverted, FaultStatus::Completed)
        );
        // The kill starts on its own schedule, while the pause holds.
        let gap = (kill.injected_at.unwrap() - pause.injected_at.unwrap()).num_milliseconds();
        assert!((80..400).contains(&gap), "kill {gap} ms after the pause");
        assert!(kill.injected_at.unwrap() < pause.reverted_at.unwrap());
        assert_eq!(r.selection, None);
        let named: Vec<&str> = r.selections.keys().map(String::as_str).collect();
        assert_eq!(named, ["api", "cache"]);
        assert_eq!(
            (r.selections["api"].matched, r.selections["api"].selected),
            (3, 1)
        );
        let by_name: Vec<(&str, &str)> = r
            .targets
            .iter()
            .map(|t| (t.target_name.as_str(), t.name.as_str()))
            .filter(|(n, _)| *n == "cache")
            .collect();
        assert_eq!(by_name, [("cache", "cache-1")]);
        // The journal entry of the pause names its target.
        let journal = lines(&dir.path().join("journal.jsonl"));
        let open: Vec<serde_json::Value> = journal
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["op"] == "open")
            .collect();
        assert_eq!(open.len(), 1, "{journal:?}");
        assert_eq!(open[0]["target"], "cache", "{journal:?}");
    }

    #[tokio::test]
    async fn a_host_command_runs_once_and_its_rollback_once_when_its_duration_ends() {
        let (dir, log, e) = logging(
            "  - command:\n      run: [sh, -c, \"echo run >> LOG; echo flag off\"]\n      rollback: [sh, -c, \"echo rollback >> LOG\"]\n      duration: 300ms\n",
        );
        let start = Instant::now();
        let r = go_recorded(&e, &Fake::default(), dir.path()).await;
        assert_ended(&r, Verdict::Passed, 0);
        assert!(start.elapsed() >= StdDuration::from_millis(300));
        // Once for the experiment, not once per target (the fake has two).
        assert_eq!(lines(&log), ["run", "rollback"]);
        assert_eq!(r.faults.len(), 1, "{:?}", r.faults);
        let f = &r.faults[0];
        assert_eq!(
            (f.target.as_str(), f.status),
            ("host", FaultStatus::Reverted)
        );
        let fx = f.effects.as_ref().unwrap();
        let run = fx.run.as_ref().unwrap();
        assert_eq!((run.exit_code, run.output.as_str()), (Some(0), "flag off"));
        assert_eq!(fx.rollback.as_ref().unwrap().exit_code, Some(0));
        assert!(
            r.targets.iter().all(|t| t.name != "host"),
            "{:?}",
            r.targets
        );
        assert!(Journal::at(dir.path()).open_entries().unwrap().is_empty());
        let effects: Vec<&str> = r
            .events
            .iter()
            .filter(|e| e.kind == EventKind::FaultEffect)
            .map(|e| e.message.as_str())
            .collect();
        assert_eq!(effects.len(), 2, "{effects:?}");
        assert!(
            effects[0].starts_with("command host: run exited 0 in "),
            "{effects:?}"
        );
        assert!(
            effects[1].starts_with("command host: rollback exited 0 in "),
            "{effects:?}"
        );
    }

    #[tokio::test]
    async fn a_target_command_execs_in_each_target_and_rolls_back_when_the_others_end() {
        let p = Fake::default();
        let e = experiment(
            "  - command: {run: [touch, /tmp/flag], rollback: [rm, /tmp/flag], where: target}\n  - pause: {duration: 400ms}\n",
        );
        let r = go(&e, &p, CancellationToken::new()).await;
        assert_ended(&r, Verdict::Passed, 0);
        let log = p.log.lock().unwrap().clone();
        let pos = |l: &str| {
            log.iter()
                .position(|x| x == l)
                .unwrap_or_else(|| panic!("{l} not in {log:?}"))
        };
        for t in ["a", "b"] {
            // Without a duration, the rollback waits for the pause to end.
            assert!(pos(&format!("exec {t} touch /tmp/flag")) < pos(&format!("unpause {t}")));
            assert!(pos(&format!("unpause {t}")) < pos(&format!("exec {t} rm /tmp/flag")));
        }
        assert_eq!(log.iter().filter(|l| l.contains("rm /tmp/flag")).count(), 2);
        let cmds: Vec<&FaultRecord> = r.faults.iter().filter(|f| f.kind == "command").collect();
        assert_eq!(cmds.len(), 2);
        assert!(cmds.iter().all(|f| f.status == FaultStatus::Reverted));
    }

    #[tokio::test]
    async fn a_failing_run_is_an_error_with_its_rollback_run_once_and_every_other_fault_reverted() {
        let (dir, log, e) = logging(
            "  - pause: {duration: 500ms}\n  - command:\n      run: [sh, -c, \"echo half-done; exit 3\"]\n      rollback: [sh, -c, \"echo rollback >> LOG\"]\n      duration: 1s\n",
        );
        let p = Fake::default();
        let r = go_recorded(&e, &p, dir.path()).await;
        assert_ended(&r, Verdict::Error, 4);
        assert_eq!(lines(&log), ["rollback"]);
        let cmd = r.faults.iter().find(|f| f.kind == "command").unwrap();
        assert_eq!(cmd.status, FaultStatus::Failed);
        let err = cmd.error.as_deref().unwrap();
        assert!(
            err.contains("`run` exited 3") && err.contains("half-done"),
            "{err}"
        );
        assert!(p.paused.lock().unwrap().is_empty());
        assert!(
            r.faults
                .iter()
                .filter(|f| f.kind == "pause")
                .all(|f| f.status == FaultStatus::Reverted)
        );
        assert!(Journal::at(dir.path()).open_entries().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failing_run_whose_rollback_fails_too_stays_in_the_journal_for_recover() {
        let dir = tempfile::tempdir().unwrap();
        let e = experiment(
            "  - command: {run: [sh, -c, \"exit 3\"], rollback: [sh, -c, \"exit 4\"], duration: 1s}\n",
        );
        let r = go_recorded(&e, &Fake::default(), dir.path()).await;
        assert_ended(&r, Verdict::RevertIncomplete, 5);
        assert_eq!(r.faults[0].status, FaultStatus::Active);
        let err = r.faults[0].error.as_deref().unwrap();
        assert!(err.contains("faultline recover"), "{err}");
        let open = Journal::at(dir.path()).open_entries().unwrap();
        assert_eq!(open.len(), 1, "{open:?}");
    }

    /// A loopback HTTP server that answers 500 on paths with `fail`, else 200, and logs
    /// `METHOD PATH AUTHORIZATION BODY` per request.
    async fn admin_api() -> (String, Arc<StdMutex<Vec<String>>>) {
        use tokio::io::AsyncWriteExt;
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let log = seen.clone();
        let addr = crate::test_support::serve(move |mut s, request| {
            let first: Vec<&str> = request.head.lines().next().unwrap().split(' ').collect();
            let auth = request.header("authorization").unwrap_or_default();
            log.lock()
                .unwrap()
                .push(format!("{} {} {auth} {}", first[0], first[1], request.body));
            let status = if first[1].contains("fail") {
                "500 Oops"
            } else {
                "200 OK"
            };
            let reply =
                format!("HTTP/1.1 {status}\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndone");
            async move {
                let _ = s.write_all(reply.as_bytes()).await;
            }
        })
        .await;
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn an_http_call_and_its_rollback_request_are_each_sent_once_with_secrets_redacted() {
        let (url, seen) = admin_api().await;
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "version: 1\nname: t\ntarget:\n  docker: {{all_containers: true}}\nfaults:\n  - http_call:\n      url: {url}/flags/v2\n      method: put\n      headers: {{Authorization: \"Bearer ${{env:TOKEN}}\"}}\n      body: \"off\"\n      duration: 200ms\n      rollback: {{method: PUT, url: {url}/flags/v2, body: \"on\", headers: {{Authorization: \"Bearer ${{env:TOKEN}}\"}}}}\n"
        );
        let env = |k: &str| (k == "TOKEN").then(|| "s3cr3t-value".to_string());
        let e = load_experiment_str("t.yaml", &yaml, &VarOverrides::default(), &env).unwrap();
        let r = go_recorded(&e, &Fake::default(), dir.path()).await;
        assert_ended(&r, Verdict::Passed, 0);
        assert_eq!(
            seen.lock().unwrap().clone(),
            [
                "PUT /flags/v2 Bearer s3cr3t-value off",
                "PUT /flags/v2 Bearer s3cr3t-value on"
            ]
        );
        let f = &r.faults[0];
        assert_eq!(
            (f.target.as_str(), f.status),
            ("host", FaultStatus::Reverted)
        );
        let fx = f.effects.as_ref().unwrap();
        assert_eq!(fx.run.as_ref().unwrap().status, Some(200));
        assert_eq!(fx.rollback.as_ref().unwrap().output, "done");
        let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        assert!(
            !audit.contains("s3cr3t-value") && audit.contains("http_call"),
            "{audit}"
        );
        assert!(Journal::at(dir.path()).open_entries().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refused_http_call_is_an_error_and_its_rollback_is_sent_once() {
        let (url, seen) = admin_api().await;
        let e = experiment(&format!(
            "  - pause: {{duration: 300ms}}\n  - http_call: {{url: {url}/fail, duration: 1s, rollback: {{url: {url}/undo}}}}\n"
        ));
        let p = Fake::default();
        let r = go(&e, &p, CancellationToken::new()).await;
        assert_ended(&r, Verdict::Error, 4);
        assert_eq!(
            seen.lock().unwrap().clone(),
            ["POST /fail  ", "POST /undo  "]
        );
        let call = r.faults.iter().find(|f| f.kind == "http_call").unwrap();
        assert!(
            call.error.as_deref().unwrap().contains("answered 500"),
            "{call:?}"
        );
        assert!(p.paused.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn secrets_in_a_command_never_reach_the_audit_log_or_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "version: 1\nname: t\ntarget:\n  docker: {all_containers: true}\nfaults:\n  - command: {run: [echo, \"token=${env:TOKEN}\"], rollback: [echo, \"${env:TOKEN}\"], duration: 100ms}\n";
        let env = |k: &str| (k == "TOKEN").then(|| "s3cr3t-value".to_string());
        let e = load_experiment_str("t.yaml", yaml, &VarOverrides::default(), &env).unwrap();
        let r = go_recorded(&e, &Fake::default(), dir.path()).await;
        assert_ended(&r, Verdict::Passed, 0);
        let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        assert!(audit.contains("token=***"), "{audit}");
        let report = serde_json::to_string(&r).unwrap();
        for text in [&audit, &report] {
            assert!(!text.contains("s3cr3t-value"), "{text}");
        }
        assert_eq!(
            r.faults[0]
                .effects
                .as_ref()
                .unwrap()
                .run
                .as_ref()
                .unwrap()
                .output,
            "token=***"
        );
    }

    /// Runs a during probe that takes ~150 ms per sample, with `latency` bounds, under a
    /// 1 s pause of every container the fake knows.
    async fn slow_probe_under_pause(bounds: &str) -> RunResult {
        let e = with_probes(
            &format!(
                "during:\n  interval: 100ms\n  probes:\n    - name: slow\n      latency: {bounds}\n      command: {{run: [sleep, \"0.15\"]}}\n"
            ),
            "  - pause: {duration: 1s}\n",
        );
        go(&e, &Fake::default(), CancellationToken::new()).await
    }

    #[tokio::test]
    async fn a_broken_latency_bound_fails_the_run_with_the_measured_percentile() {
        let r = slow_probe_under_pause("{p50: 10ms, p95: 50ms, p99: 5s}").await;
        assert_ended(&r, Verdict::Failed, 1);
        let p = &r.phases.during.as_ref().unwrap().probes[0];
        assert_eq!(p.successes, p.samples, "every sample succeeded: {p:?}");
        assert_eq!(p.latency_bounds.len(), 3, "{p:?}");
        let [p50, p95, p99] = [0, 1, 2].map(|i| &p.latency_bounds[i]);
        assert_eq!((p99.percentile.as_str(), p99.passed), ("p99", true));
        for (b, name, bound) in [(p50, "p50", 10), (p95, "p95", 50)] {
            assert_eq!((b.percentile.as_str(), b.bound_ms), (name, bound));
            assert!(!b.passed && b.measured_ms >= 150, "{b:?}");
        }
        assert_eq!(p95.measured_ms, p.latency_ms.p95);
        let verdict = &r.events.last().unwrap().message;
        assert!(
            verdict.contains(&format!(
                "`slow`: p50 {}ms > 10ms, p95 {}ms > 50ms",
                p50.measured_ms, p95.measured_ms
            )),
            "{verdict}"
        );
    }

    #[tokio::test]
    async fn latency_bounds_the_window_meets_pass() {
        let r = slow_probe_under_pause("{p95: 5s, p99: 5s}").await;
        assert_ended(&r, Verdict::Passed, 0);
        let p = &r.phases.during.as_ref().unwrap().probes[0];
        assert!(p.latency_bounds.iter().all(|b| b.passed), "{p:?}");
        assert_eq!(Some(p.latency_bounds[1].measured_ms), p.latency_ms.p99);
    }

    #[tokio::test]
    async fn recovery_after_a_kill_is_timed_from_the_kill() {
        // The during window runs 2 s after the kill; the target is back at once. The
        // recovery time is the time to steady state from the kill, not the window.
        let e = with_probes(
            &format!(
                "steady_state:\n  - name: up\n    {PASSES}\nduring:\n  interval: 100ms\n  duration: 2s\n  probes:\n    - name: up\n      {PASSES}\n"
            ),
            "  - kill: {}\n",
        );
        let r = go(&e, &Fake::default(), CancellationToken::new()).await;
        assert_ended(&r, Verdict::Passed, 0);
        let after = r.phases.after.as_ref().unwrap();
        assert!(
            after.recovered_after_ms.unwrap() < 1000,
            "recovered after {:?}",
            after.recovered_after_ms
        );
        assert_eq!(after.measured_from, Some(RecoveryStart::LastInjection));
        assert!(r.phases.during.as_ref().unwrap().probes[0].samples >= 10);
    }

    #[tokio::test]
    async fn recovery_after_a_pod_delete_is_timed_from_when_the_pod_is_gone() {
        // A deleted pod terminates for a while, and its Deployment's status still counts
        // it: recovery is measured from when it has left the platform.
        let p = Fake {
            gone_after: Some(StdDuration::from_millis(800)),
            ..Default::default()
        };
        let e = with_probes(
            &format!("steady_state:\n  - name: up\n    {PASSES}\n"),
            "  - kill: {}\n",
        );
        let started = Instant::now();
        let r = go(&e, &p, CancellationToken::new()).await;
        assert_ended(&r, Verdict::Passed, 0);
        let after = r.phases.after.as_ref().unwrap();
        assert_eq!(after.measured_from, Some(RecoveryStart::TargetsGone));
        assert!(after.recovered_after_ms.unwrap() < 500, "{after:?}");
        assert!(started.elapsed() >= StdDuration::from_millis(800));
    }

    #[tokio::test]
    async fn one_shot_faults_without_a_window_have_no_during_phase() {
        // The format: during.duration defaults to 0s for one-shot faults, no during phase.
        let e = with_probes(
            &format!("during:\n  probes:\n    - name: up\n      {PASSES}\n"),
            "  - kill: {}\n",
        );
        let r = go(&e, &Fake::default(), CancellationToken::new()).await;
        assert_ended(&r, Verdict::Passed, 0);
        assert!(r.phases.during.is_none());
    }

    #[tokio::test]
    async fn an_early_failure_does_not_abort_a_bar_that_can_still_be_met() {
        // 1 failure in the first 2 samples is below 90 %, but 20 samples over the window
        // allow 2 failures: the run goes on, and passes.
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("failed-once");
        let probe = format!(
            "command: {{shell: \"test -e {f} || {{ touch {f}; exit 1; }}\"}}",
            f = flag.display()
        );
        let e = with_probes(
            &format!(
                "during:\n  interval: 100ms\n  abort_on_failure: true\n  probes:\n    - name: flaky\n      min_success: 0.9\n      {probe}\n"
            ),
            "  - pause: {duration: 2s}\n",
        );
        let r = go(&e, &Fake::default(), CancellationToken::new()).await;
        assert!(
            !r.events.iter().any(|e| e.kind == EventKind::Abort),
            "{:?}",
            r.events
        );
        assert_ended(&r, Verdict::Passed, 0);
    }

    #[tokio::test]
    async fn a_bar_that_can_no_longer_be_met_aborts_early() {
        let e = with_probes(
            "during:\n  interval: 100ms\n  abort_on_failure: true\n  probes:\n    - name: down\n      min_success: 0.9\n      command: {run: [\"false\"]}\n",
            "  - pause: {duration: 5s}\n",
        );
        let started = Instant::now();
        let r = go(&e, &Fake::default(), CancellationToken::new()).await;
        assert!(r.events.iter().any(|e| e.kind == EventKind::Abort));
        assert_ended(&r, Verdict::Failed, 1);
        assert!(
            started.elapsed() < StdDuration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    /// Regression (issue 18): the wait for a killed target to end ignored SIGINT.
    #[tokio::test]
    async fn an_interrupt_does_not_wait_out_a_kills_grace_period() {
        let p = Fake {
            survives_kills: true,
            ..Default::default()
        };
        let cancel = cancelled_after(200);
        let started = Instant::now();
        let e = with_probes("", "  - kill: {signal: SIGTERM, grace_period: 30s}\n");
        let r = go(&e, &p, cancel).await;
        assert!(
            started.elapsed() < StdDuration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_ended(&r, Verdict::Interrupted, 130);
        assert!(
            r.faults.iter().all(|f| f.status != FaultStatus::Survived),
            "an interrupted wait says nothing of survival"
        );
    }

    #[tokio::test]
    async fn a_target_that_survives_its_kill_is_reported_so() {
        let p = Fake {
            survives_kills: true,
            ..Default::default()
        };
        let e = with_probes("", "  - kill: {signal: SIGTERM, grace_period: 300ms}\n");
        let r = go(&e, &p, CancellationToken::new()).await;
        assert_ended(&r, Verdict::Error, 4);
        assert!(r.faults.iter().all(|f| f.status == FaultStatus::Survived));
        let why = r.faults[0].error.as_deref().unwrap_or_default();
        assert!(
            why.contains("still runs") && why.contains("SIGTERM"),
            "{why}"
        );
        assert!(r.events.iter().any(|e| e.kind == EventKind::TargetSurvived));

        // The experiment can say that is the point (a graceful process ignoring it).
        let e = with_probes(
            "",
            "  - kill: {signal: SIGTERM, grace_period: 300ms, expect: survive}\n",
        );
        let r = go(&e, &p, CancellationToken::new()).await;
        assert_ended(&r, Verdict::Passed, 0);
        assert!(r.faults.iter().all(|f| f.status == FaultStatus::Survived));

        // A target that does end is a completed kill, without waiting for the grace.
        let started = Instant::now();
        let e = with_probes("", "  - kill: {signal: SIGTERM, grace_period: 5s}\n");
        let r = go(&e, &Fake::default(), CancellationToken::new()).await;
        assert!(r.faults.iter().all(|f| f.status == FaultStatus::Completed));
        assert!(started.elapsed() < StdDuration::from_secs(2));
    }

    #[tokio::test]
    async fn every_target_of_every_round_is_listed() {
        let p = Fake {
            listings: StdMutex::new(vec![vec!["api-1"], vec!["api-2"], vec!["api-3"]]),
            ..Default::default()
        };
        let e = with_probes("", "  - kill: {every: 100ms, duration: 250ms}\n");
        let r = go(&e, &p, CancellationToken::new()).await;
        let names: Vec<&str> = r.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["api-1", "api-2", "api-3"]);
    }

    #[tokio::test]
    async fn pause_then_revert_on_every_target() {
        let p = Fake::default();
        let r = run_faults("  - pause: {duration: 50ms}\n", &p).await;
        assert_ended(&r, Verdict::Passed, 0);
        assert_eq!(r.faults.len(), 2);
        assert!(r.faults.iter().all(|f| f.status == FaultStatus::Reverted));
        assert!(p.paused.lock().unwrap().is_empty());
        assert!(r.phases.before.is_none() && r.phases.after.is_none());
    }

    #[tokio::test]
    async fn an_unconfirmed_revert_is_exit_5_naming_the_fault() {
        let r = pause_briefly(|p| p.fail_unpause = true).await;
        assert_ended(&r, Verdict::RevertIncomplete, 5);
        assert!(r.faults.iter().all(|f| f.status == FaultStatus::Active));
        let last = r.events.last().unwrap();
        assert!(
            last.message.contains("pause on a") && last.message.contains("faultline recover"),
            "{}",
            last.message
        );
    }

    #[tokio::test]
    async fn a_failed_injection_is_exit_4_and_the_rest_is_reverted() {
        let r = pause_briefly(|p| p.fail_pause = true).await;
        assert_ended(&r, Verdict::Error, 4);
        assert!(
            r.faults
                .iter()
                .all(|f| f.status == FaultStatus::Failed && f.error.is_some())
        );
    }

    /// A pause whose call fails after it took (a timeout): it is not left paused with its
    /// journal entry closed, but reverted like one that succeeded.
    #[tokio::test]
    async fn a_pause_that_took_although_its_call_failed_is_reverted() {
        let p = Fake {
            pause_times_out: true,
            ..Fake::default()
        };
        let r = run_faults("  - pause: {duration: 10ms}\n", &p).await;
        assert!(p.paused.lock().unwrap().is_empty(), "left paused");
        assert!(
            r.faults.iter().all(|f| f.status == FaultStatus::Reverted),
            "{:?}",
            r.faults
        );
    }

    #[tokio::test]
    async fn a_vanished_target_counts_as_reverted_and_is_reported() {
        let r = pause_briefly(|p| p.vanish_on_unpause = true).await;
        assert_ended(&r, Verdict::Passed, 0);
        assert!(r.faults.iter().all(|f| f.status == FaultStatus::Reverted));
        assert!(r.events.iter().any(|e| e.kind == EventKind::TargetVanished));
    }

    #[tokio::test]
    async fn an_interrupt_reverts_early_and_is_exit_130() {
        let p = Fake::default();
        let cancel = cancelled_after(100);
        let start = Instant::now();
        let r = go(&experiment("  - pause: {duration: 30s}\n"), &p, cancel).await;
        assert!(start.elapsed() < StdDuration::from_secs(5));
        assert_ended(&r, Verdict::Interrupted, 130);
        assert!(r.faults.iter().all(|f| f.status == FaultStatus::Reverted));
        assert!(p.paused.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_fault_shorter_than_the_interval_is_still_sampled() {
        let p = Fake::default();
        let yaml = "version: 1\nname: t\ntarget:\n  docker: {all_containers: true}\n  select: {mode: all}\nduring:\n  interval: 1s\n  probes:\n    - name: ok\n      command: {run: [\"true\"]}\nfaults:\n  - pause: {duration: 100ms}\n";
        let e = load_experiment_str("t.yaml", yaml, &VarOverrides::default(), &|_| None).unwrap();
        let r = go(&e, &p, CancellationToken::new()).await;
        let during = r.phases.during.as_ref().unwrap();
        assert!(
            during.probes[0].samples >= 1,
            "the first sample is taken when the fault is applied, not a full interval later"
        );
        assert_ended(&r, Verdict::Passed, 0);
    }

    #[tokio::test]
    async fn faults_start_at_their_offsets() {
        let p = Fake::default();
        let r = run_faults(
            "  - kill: {after: 150ms}\n  - pause: {duration: 50ms}\n",
            &p,
        )
        .await;
        assert_ended(&r, Verdict::Passed, 0);
        let log = p.log.lock().unwrap().clone();
        let first_kill = log.iter().position(|l| l.starts_with("kill")).unwrap();
        let first_unpause = log.iter().position(|l| l.starts_with("unpause")).unwrap();
        assert!(
            first_unpause < first_kill,
            "the pause (0s) ends before the kill at 150ms: {log:?}"
        );
        assert_eq!(
            r.faults
                .iter()
                .filter(|f| f.status == FaultStatus::Completed)
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn repeated_kills_select_again_each_round() {
        let p = Fake::default();
        let r = run_faults("  - kill: {every: 50ms, duration: 160ms}\n", &p).await;
        assert_ended(&r, Verdict::Passed, 0);
        let kills = p
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("kill"))
            .count();
        assert_eq!(kills, 8, "4 rounds (0, 50, 100, 150ms) of 2 targets");
    }
}
