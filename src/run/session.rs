//! A session: what the runs of one command share, and everything around a run that keeps
//! it safe: the signal handler, the blast-radius guard, the dead-man's switch. A library
//! caller of [`Session::execute`] gets all of them, as the command line does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use super::{Observer, Records, RunOptions};
use crate::error::Error;
use crate::experiment::LoadedExperiment;
use crate::experiment::model::{self, Experiment, SelectMode};
use crate::platform::{Platform, PlatformError, Target, select};
use crate::probe::ProbeContext;
use crate::report::{RunResult, SteadyPhase};

/// Asked to confirm a large blast radius with the sentence describing it; true proceeds.
pub type Confirm = Arc<dyn Fn(&str) -> bool + Send + Sync>;
/// Makes the observer of each run (e.g. a progress display), if any.
pub type Observe = Arc<dyn Fn() -> Option<Arc<dyn Observer>> + Send + Sync>;

/// The targets of one run, resolved once: the set the guard showed (and a user
/// confirmed) is exactly the set that is injected.
#[derive(Clone, Debug)]
pub struct Resolution {
    pub targets: Vec<Target>,
    pub seed: u64,
    /// How many eligible targets matched before selection.
    pub candidates: usize,
    /// Matches that could not be targets (a paused container), with why.
    pub passed_over: Vec<crate::platform::PassedOver>,
}

/// Lists the eligible targets of one target block and selects from them.
pub async fn resolve(
    platform: &dyn Platform,
    target: &model::Target,
    seed: Option<u64>,
) -> Result<Resolution, PlatformError> {
    let candidates = platform.discover().await?;
    let n = candidates.len();
    let (targets, seed) = select::select(candidates, &target.select, seed);
    // Only informative: a platform that cannot say leaves it empty.
    let passed_over = platform.passed_over().await.unwrap_or_default();
    Ok(Resolution {
        targets,
        seed,
        candidates: n,
        passed_over,
    })
}

/// Resolves every named target of `e` on its platform (`platforms` in the order of
/// `Experiment::named_targets`), once each. `seed` (`--seed`) overrides each target's
/// `select.seed`; without either, the first target's seed is drawn and every other
/// target takes that one too, so that the report's one seed repeats the whole run.
pub async fn resolve_all(
    platforms: &[&dyn Platform],
    e: &Experiment,
    seed: Option<u64>,
) -> Result<Vec<Resolution>, PlatformError> {
    let mut all: Vec<Resolution> = Vec::new();
    for ((name, t), platform) in e.named_targets().into_iter().zip(platforms) {
        let drawn = all.first().map(|r| r.seed);
        let r = resolve(*platform, t, seed.or(t.select.seed).or(drawn)).await;
        all.push(r.map_err(|err| naming(name, err))?);
    }
    Ok(all)
}

/// Connects to the platform of each named target, in the order of
/// `Experiment::named_targets`.
pub async fn connect_all(
    e: &Experiment,
    opts: &crate::platform::ConnectOptions,
) -> Result<Vec<Box<dyn Platform>>, PlatformError> {
    let mut platforms = Vec::new();
    for (name, t) in e.named_targets() {
        let p = crate::platform::connect(t, opts).await;
        platforms.push(p.map_err(|err| naming(name, err))?);
    }
    Ok(platforms)
}

/// An error about a named target says which (the unnamed `target` needs no name).
fn naming(name: &str, err: PlatformError) -> PlatformError {
    match name {
        "" => err,
        _ => PlatformError::Unavailable(format!("target `{name}`: {err}")),
    }
}

/// What the runs of one command share: the signal token, the journal and audit log, the
/// probe clients, and the dead-man's switch (armed once, at the first reversible fault).
pub struct Session {
    pub cancel: CancellationToken,
    pub records: Records,
    probes: ProbeContext,
    tc_image: Option<String>,
    yes: bool,
    confirm: Option<Confirm>,
    observe: Option<Observe>,
    switch_armed: AtomicBool,
    /// The switch's start, once armed.
    switch: std::sync::Mutex<Option<futures::future::Shared<SwitchStart>>>,
}

/// The start of the dead-man's switch, which every run waits for before it injects.
type SwitchStart = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl Session {
    /// Must be called inside the runtime: it installs the signal handler. `yes` accepts
    /// any blast radius; otherwise a large one needs [`Session::with_confirm`].
    pub fn start(records: Records, tc_image: Option<String>, yes: bool) -> Result<Session, Error> {
        let cancel = CancellationToken::new();
        super::signals::on_signals(cancel.clone(), records.clone());
        Ok(Session {
            cancel,
            records,
            probes: ProbeContext::new().map_err(Error::Platform)?,
            tc_image,
            yes,
            confirm: None,
            observe: None,
            switch_armed: AtomicBool::new(false),
            switch: std::sync::Mutex::new(None),
        })
    }

    /// How a large blast radius is confirmed (a prompt on a terminal).
    pub fn with_confirm(mut self, confirm: Option<Confirm>) -> Session {
        self.confirm = confirm;
        self
    }

    /// Who watches each run (a progress display).
    pub fn with_observer(mut self, observe: Option<Observe>) -> Session {
        self.observe = observe;
        self
    }

    /// Runs one experiment: arm the switch, connect and resolve the targets while the
    /// steady state is checked, guard the blast radius, run.
    pub async fn execute(
        &self,
        l: &LoadedExperiment,
        seed: Option<u64>,
    ) -> Result<RunResult, Error> {
        self.arm_switch(l);
        let opts = crate::platform::ConnectOptions {
            tc_image: self.tc_image.clone(),
        };
        let targets = async {
            let platforms = connect_all(&l.experiment, &opts).await?;
            let refs: Vec<&dyn Platform> = platforms.iter().map(AsRef::as_ref).collect();
            let resolved = resolve_all(&refs, &l.experiment, seed).await;
            Ok::<_, PlatformError>((platforms, resolved))
        };
        let listed = |t: &Result<(_, Result<_, _>), _>| matches!(t, Ok((_, Ok(_))));
        let (targets, before) = self.beside_the_check(l, targets, listed).await;
        let (platforms, resolved) =
            targets.map_err(|e| Error::Platform(format!("{e}; nothing was touched")))?;
        let platforms: Vec<&dyn Platform> = platforms.iter().map(AsRef::as_ref).collect();
        self.guarded_run(l, &platforms, seed, resolved, before)
            .await
    }

    /// Asks `confirm` on a thread of its own: a prompt waiting for its answer must not hold
    /// up the other experiments of a game day's step, which may have faults to revert. An
    /// interrupt is a no.
    async fn ask(&self, confirm: &Confirm, what: String) -> bool {
        let confirm = confirm.clone();
        let answer = tokio::task::spawn_blocking(move || confirm(&what));
        tokio::select! {
            yes = answer => yes.unwrap_or(false),
            () = self.cancel.cancelled() => false,
        }
    }

    /// Starts the dead-man's switch once, for the first experiment with a fault to revert.
    /// Armed before anything else, and on a thread of its own (a spawn returns only once
    /// the child has started the program): its start-up then runs beside the connection,
    /// the listing and the steady-state check. [`Session::switch_ready`] waits for it
    /// before anything is injected.
    fn arm_switch(&self, l: &LoadedExperiment) {
        let reversible = l
            .experiment
            .faults
            .iter()
            .any(|f| f.duration().is_some() || f.holds_for_the_others());
        // Armed and stored under one lock: a run beside this one either arms it itself or
        // finds it stored when it waits for it.
        let mut slot = self.switch.lock().unwrap();
        if reversible && !self.switch_armed.swap(true, Ordering::SeqCst) {
            let records = self.records.clone();
            let spawning = tokio::task::spawn_blocking(move || super::deadman::spawn(&records));
            let started = futures::FutureExt::shared(Box::pin(async move {
                let _ = spawning.await;
            }) as SwitchStart);
            *slot = Some(started);
        }
    }

    /// Waits until the dead-man's switch armed by [`Session::arm_switch`] is started (every
    /// run of the session, as each may be the first to inject).
    async fn switch_ready(&self) {
        let started = self.switch.lock().unwrap().clone();
        if let Some(started) = started {
            started.await;
        }
    }

    /// [`Session::execute`] on the platforms already connected, one per named target in
    /// the order of `Experiment::named_targets`.
    pub async fn execute_on(
        &self,
        l: &LoadedExperiment,
        platforms: &[&dyn Platform],
        seed: Option<u64>,
    ) -> Result<RunResult, Error> {
        self.arm_switch(l);
        let listing = resolve_all(platforms, &l.experiment, seed);
        let (resolved, before) = self.beside_the_check(l, listing, Result::is_ok).await;
        self.guarded_run(l, platforms, seed, resolved, before).await
    }

    /// Runs `work` (connecting, listing: nothing that touches a target) while the steady
    /// state is checked, so that neither waits for the other. When `work` ends and `ok`
    /// says it failed, the check is dropped: a failed listing does not wait out the
    /// probes' retries, and the run stops without it.
    async fn beside_the_check<T>(
        &self,
        l: &LoadedExperiment,
        work: impl Future<Output = T>,
        ok: impl Fn(&T) -> bool,
    ) -> (T, Option<SteadyPhase>) {
        let check = async {
            if l.experiment.steady_state.is_empty() {
                return None;
            }
            Some(super::steady::check(l, &self.probes, &self.cancel).await)
        };
        tokio::pin!(work, check);
        tokio::select! {
            done = &mut work => {
                if !ok(&done) {
                    return (done, None);
                }
                (done, check.await)
            }
            before = &mut check => (work.await, before),
        }
    }

    /// Guards the blast radius of the resolved targets and runs on exactly those. Each
    /// target keeps its own `select.seed` unless `--seed` overrides them all, as `plan`
    /// resolves them; a listing that failed (`resolved` is an error) is reported by the
    /// run without a second listing. A steady state checked before a confirmation prompt
    /// is checked again: the answer may have taken a while.
    async fn guarded_run(
        &self,
        l: &LoadedExperiment,
        platforms: &[&dyn Platform],
        seed: Option<u64>,
        resolved: Result<Vec<Resolution>, PlatformError>,
        before: Option<SteadyPhase>,
    ) -> Result<RunResult, Error> {
        self.switch_ready().await;
        let mut before = before;
        if let Ok(r) = &resolved {
            if self.guard(l, r).await? == Guarded::Confirmed {
                before = None;
            }
        }
        Ok(super::run(
            l,
            platforms,
            &self.probes,
            RunOptions {
                seed,
                resolved: Some(resolved),
                cancel: self.cancel.clone(),
                observer: self.observe.as_ref().and_then(|o| o()),
                records: Some(self.records.clone()),
                before,
            },
        )
        .await)
    }

    /// A large blast radius needs a yes: `--yes`, or the confirmation callback. With
    /// named targets, the radius is their union.
    async fn guard(&self, l: &LoadedExperiment, resolved: &[Resolution]) -> Result<Guarded, Error> {
        let named = l.experiment.named_targets();
        let all = named.iter().any(|(_, t)| t.select.mode == SelectMode::All);
        let n: usize = resolved.iter().map(|r| r.targets.len()).sum();
        if self.yes || (n <= TARGET_LIMIT && !(all && n > ALL_LIMIT)) {
            return Ok(Guarded::Allowed);
        }
        let names: Vec<String> = named
            .iter()
            .zip(resolved)
            .flat_map(|((name, _), r)| {
                r.targets.iter().map(move |t| match *name {
                    "" => t.name.clone(),
                    _ => format!("{name}: {}", t.name),
                })
            })
            .collect();
        let what = format!(
            "`{}` would inject faults into {n} targets{}: {}",
            l.experiment.name,
            if all { " (mode: all)" } else { "" },
            names.join(", ")
        );
        match &self.confirm {
            Some(confirm) if self.ask(confirm, what.clone()).await => Ok(Guarded::Confirmed),
            Some(_) => Err(Error::Usage("not confirmed; nothing was touched".into())),
            None => Err(Error::Usage(format!(
                "{what}; a blast radius this large needs confirmation: pass --yes; nothing was touched"
            ))),
        }
    }
}

/// How the guard let a run through.
#[derive(Debug, PartialEq)]
enum Guarded {
    /// Small enough, or `--yes`.
    Allowed,
    /// Someone said yes at the prompt.
    Confirmed,
}

/// More targets than this, or `mode: all` on more than [`ALL_LIMIT`], asks first.
const TARGET_LIMIT: usize = 10;
const ALL_LIMIT: usize = 3;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::platform::fake::Fake;

    const ALL_WEB: &str = "version: 1\nname: all-web\ntarget:\n  docker: {labels: {app: web}}\n  select: {mode: all}\nfaults:\n  - pause: {duration: 100ms}\n";

    fn session(dir: &tempfile::TempDir, confirm: Option<Confirm>) -> Session {
        let records = Records::new(
            crate::journal::Journal::at(dir.path()),
            crate::journal::audit::AuditLog::at(&dir.path().join("audit.jsonl")),
        );
        let s = Session::start(records, None, false)
            .unwrap()
            .with_confirm(confirm);
        // No dead-man's switch process for a fake platform.
        s.switch_armed.store(true, Ordering::SeqCst);
        s
    }

    fn load(yaml: &str) -> LoadedExperiment {
        crate::experiment::load_experiment_str("t.yaml", yaml, &Default::default(), &|_| None)
            .unwrap()
    }

    #[tokio::test]
    async fn the_confirmed_targets_are_the_injected_ones() {
        // The host changes between any two listings: a guard that listed again, or a run
        // that resolved again, would inject into containers nobody confirmed.
        let platform = Fake {
            listings: Mutex::new(vec![
                vec!["web-1", "web-2", "web-3", "web-4"],
                vec!["web-5", "web-6", "web-7", "web-8"],
            ]),
            ..Default::default()
        };
        let confirmed = Arc::new(Mutex::new(String::new()));
        let seen = confirmed.clone();
        let dir = tempfile::tempdir().unwrap();
        let session = session(
            &dir,
            Some(Arc::new(move |what: &str| {
                *seen.lock().unwrap() = what.to_string();
                true
            })),
        );
        let result = session
            .execute_on(&load(ALL_WEB), &[&platform], Some(1))
            .await
            .unwrap();
        let confirmed = confirmed.lock().unwrap().clone();
        assert!(
            confirmed.ends_with("web-1, web-2, web-3, web-4"),
            "{confirmed}"
        );
        let log = platform.log.lock().unwrap().clone();
        let paused: Vec<&String> = log.iter().filter(|l| l.starts_with("pause")).collect();
        assert_eq!(
            paused,
            ["pause web-1", "pause web-2", "pause web-3", "pause web-4"]
        );
        let reported: Vec<&str> = result.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(reported, ["web-1", "web-2", "web-3", "web-4"]);
    }

    #[tokio::test]
    async fn runs_at_the_same_time_in_one_session_never_share_a_journal_id() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(&dir, None);
        let platform = Fake::default();
        let few = "version: 1\nname: few\ntarget:\n  docker: {labels: {app: web}}\n  select: {mode: all}\nfaults:\n  - pause: {duration: 200ms}\n";
        let l = load(few);
        let platforms: [&dyn Platform; 1] = [&platform];
        let (a, b) = tokio::join!(
            s.execute_on(&l, &platforms, Some(1)),
            s.execute_on(&l, &platforms, Some(1))
        );
        assert!(a.is_ok() && b.is_ok());
        let text = std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
        let opened: Vec<String> = text
            .lines()
            .filter(|l| l.contains("\"op\":\"open\""))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect();
        let unique: std::collections::BTreeSet<&String> = opened.iter().collect();
        assert_eq!((opened.len(), unique.len()), (4, 4), "{text}");
        assert!(
            crate::journal::Journal::at(dir.path())
                .open_entries()
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn the_guard_counts_the_union_of_named_targets() {
        // Two per target is small for each, four in all is not.
        let two = "version: 1\nname: two\ntargets:\n  api:\n    docker: {labels: {app: api}}\n    select: {mode: all}\n  cache:\n    docker: {labels: {app: cache}}\n    select: {mode: all}\nfaults:\n  - pause: {target: api, duration: 100ms}\n  - pause: {target: cache, duration: 100ms}\n";
        let l = load(two);
        let (api, cache) = (Fake::default(), Fake::default());
        let dir = tempfile::tempdir().unwrap();
        let err = session(&dir, None)
            .execute_on(&l, &[&api, &cache], Some(1))
            .await
            .unwrap_err();
        let err = err.to_string();
        assert!(err.contains("into 4 targets"), "{err}");
        assert!(err.contains("api: a, api: b, cache: a, cache: b"), "{err}");
        assert!(api.log.lock().unwrap().is_empty() && cache.log.lock().unwrap().is_empty());
    }

    /// Each named target keeps its own `select.seed`: the run picks what `plan` shows.
    #[tokio::test]
    async fn each_named_target_keeps_its_own_seed() {
        let yaml = "version: 1\nname: seeds\ntargets:\n  api:\n    docker: {labels: {app: api}}\n    select: {mode: one, seed: 1}\n  cache:\n    docker: {labels: {app: cache}}\n    select: {mode: one, seed: 2}\nfaults:\n  - pause: {target: api, duration: 10ms}\n  - pause: {target: cache, duration: 10ms}\n";
        let l = load(yaml);
        let names = vec!["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"];
        let fake = || Fake {
            listings: Mutex::new(vec![names.clone()]),
            ..Default::default()
        };
        let (api, cache) = (fake(), fake());
        let planned: Vec<String> = resolve_all(&[&api, &cache], &l.experiment, None)
            .await
            .unwrap()
            .iter()
            .map(|r| r.targets[0].name.clone())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let result = session(&dir, None)
            .execute_on(&l, &[&api, &cache], None)
            .await
            .unwrap();
        let ran: Vec<String> = result.targets.iter().map(|t| t.name.clone()).collect();
        assert_eq!(ran, planned);
        // Seeds 1 and 2 pick differently among eight here: a shared seed would not.
        assert_ne!(planned[0], planned[1], "{planned:?}");
    }

    /// A web server for steady-state probes that answers 200, or 503 when `down`; gives
    /// its address and when each request came.
    async fn web(down: bool) -> (std::net::SocketAddr, Arc<Mutex<Vec<std::time::Instant>>>) {
        use tokio::io::AsyncWriteExt;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let addr = crate::test_support::serve(move |mut stream, _request| {
            log.lock().unwrap().push(std::time::Instant::now());
            async move {
                let status = if down { "503 Unavailable" } else { "200 OK" };
                let reply =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        })
        .await;
        (addr, seen)
    }

    /// `faults` on every `app: web` container (`select` as given), with a steady state of
    /// one http probe of `addr` (`retries` as given).
    fn probed(addr: std::net::SocketAddr, select: &str, retries: u32) -> LoadedExperiment {
        load(&format!(
            "version: 1\nname: probed\ntarget:\n  docker: {{labels: {{app: web}}}}\n  select: {select}\nsteady_state:\n  - name: web\n    http: {{url: \"http://{addr}/\", status: [200], timeout: 2s}}\n    retries: {retries}\n    retry_interval: 1s\nfaults:\n  - pause: {{duration: 10ms}}\n"
        ))
    }

    /// Runs an experiment ([`probed`]) on `platform` in a fresh session that confirms with `confirm`;
    /// gives the result and when the run started.
    async fn run_probed(
        platform: &Fake,
        experiment: LoadedExperiment,
        confirm: Option<Confirm>,
    ) -> (RunResult, std::time::Instant) {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let result = session(&dir, confirm)
            .execute_on(&experiment, &[platform], Some(1))
            .await
            .unwrap();
        (result, started)
    }

    #[tokio::test]
    async fn the_steady_state_is_checked_while_the_targets_are_listed() {
        let (addr, seen) = web(false).await;
        let platform = Fake {
            list_delay: Some(std::time::Duration::from_millis(400)),
            ..Default::default()
        };
        let (result, started) = run_probed(&platform, probed(addr, "{mode: one}", 0), None).await;
        assert_eq!(result.verdict, crate::report::Verdict::Passed, "{result:?}");
        let first = seen.lock().unwrap()[0];
        // One after the other, the probe would come once the 400 ms listing had ended.
        assert!(
            first.duration_since(started) < std::time::Duration::from_millis(300),
            "the steady-state probe came {:?} after the start",
            first.duration_since(started)
        );
        assert!(result.phases.before.as_ref().is_some_and(|b| b.passed));
        assert_eq!(platform.log.lock().unwrap()[0], "pause a");
    }

    #[tokio::test]
    async fn a_steady_state_checked_before_a_confirmation_is_checked_again() {
        let (addr, seen) = web(false).await;
        let platform = Fake {
            listings: Mutex::new(vec![vec!["web-1", "web-2", "web-3", "web-4"]]),
            ..Default::default()
        };
        let asked = Arc::new(Mutex::new(None));
        let when = asked.clone();
        let confirm: Confirm = Arc::new(move |_: &str| {
            *when.lock().unwrap() = Some(std::time::Instant::now());
            true
        });
        let (result, _) =
            run_probed(&platform, probed(addr, "{mode: all}", 0), Some(confirm)).await;
        assert_eq!(result.verdict, crate::report::Verdict::Passed, "{result:?}");
        let asked = asked.lock().unwrap().expect("the guard asked");
        let seen = seen.lock().unwrap().clone();
        // Beside the listing, again after the answer, and once after the faults.
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            seen[1] > asked,
            "no steady-state check after the confirmation"
        );
    }

    #[tokio::test]
    async fn a_failed_listing_does_not_wait_out_the_probes_retries() {
        // The steady state fails too and would retry for 5 s.
        let (addr, _) = web(true).await;
        let platform = Fake {
            fail_listing: true,
            ..Default::default()
        };
        let (result, started) = run_probed(&platform, probed(addr, "{mode: one}", 5), None).await;
        assert_eq!(result.verdict, crate::report::Verdict::Error, "{result:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        assert!(platform.log.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_listing_through_a_real_connection_does_not_wait_out_the_retries() {
        use tokio::io::AsyncWriteExt;
        // A Docker daemon that answers its version and fails every listing.
        let daemon = crate::test_support::serve(|mut stream, request| async move {
            let path = request.head.split(' ').nth(1).unwrap_or("").to_string();
            let (status, body) = if path.ends_with("/version") {
                ("200 OK", r#"{"ApiVersion":"1.41","Version":"20.10.24"}"#)
            } else {
                ("500 Internal Server Error", r#"{"message":"the listing broke"}"#)
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        })
        .await;
        let (web, _) = web(true).await;
        let yaml = format!(
            "version: 1\nname: unlisted\ntarget:\n  docker: {{host: \"tcp://{daemon}\", labels: {{app: web}}}}\nsteady_state:\n  - name: web\n    http: {{url: \"http://{web}/\", status: [200], timeout: 2s}}\n    retries: 5\n    retry_interval: 1s\nfaults:\n  - pause: {{duration: 10ms}}\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let result = session(&dir, None)
            .execute(&load(&yaml), Some(1))
            .await
            .unwrap();
        assert_eq!(result.verdict, crate::report::Verdict::Error, "{result:?}");
        let why = &result.events.last().unwrap().message;
        assert!(why.contains("cannot list targets"), "{why}");
        assert!(result.phases.before.is_none(), "{result:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_large_radius_without_a_yes_touches_nothing() {
        let platform = Fake {
            listings: Mutex::new(vec![vec!["web-1", "web-2", "web-3", "web-4"]]),
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let err = session(&dir, None)
            .execute_on(&load(ALL_WEB), &[&platform], Some(1))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("pass --yes"), "{err}");
        assert!(platform.log.lock().unwrap().is_empty());
    }
}
