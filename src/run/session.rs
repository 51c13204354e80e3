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
use crate::report::RunResult;

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
}

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

    /// Runs one experiment: arm the switch, connect, resolve the targets, guard the blast
    /// radius, run.
    pub async fn execute(
        &self,
        l: &LoadedExperiment,
        seed: Option<u64>,
    ) -> Result<RunResult, Error> {
        self.arm_switch(l);
        let opts = crate::platform::ConnectOptions {
            tc_image: self.tc_image.clone(),
        };
        let platforms = connect_all(&l.experiment, &opts)
            .await
            .map_err(|e| Error::Platform(format!("{e}; nothing was touched")))?;
        let platforms: Vec<&dyn Platform> = platforms.iter().map(AsRef::as_ref).collect();
        self.execute_on(l, &platforms, seed).await
    }

    /// Starts the dead-man's switch once, for the first experiment with a fault to revert.
    /// Armed before anything else: its own start-up (a process of its own) then runs beside
    /// the connection, the listing and the steady-state check, not beside the injection.
    fn arm_switch(&self, l: &LoadedExperiment) {
        let reversible = l
            .experiment
            .faults
            .iter()
            .any(|f| f.duration().is_some() || f.holds_for_the_others());
        if reversible && !self.switch_armed.swap(true, Ordering::SeqCst) {
            super::deadman::spawn(&self.records);
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
        // Each target keeps its own `select.seed` unless `--seed` overrides them all, as
        // `plan` resolves them. An unreachable platform is reported by the run itself.
        let resolved = resolve_all(platforms, &l.experiment, seed).await.ok();
        if let Some(r) = &resolved {
            self.guard(l, r)?;
        }
        Ok(super::run(
            l,
            platforms,
            &self.probes,
            RunOptions {
                seed,
                resolved,
                cancel: self.cancel.clone(),
                observer: self.observe.as_ref().and_then(|o| o()),
                records: Some(self.records.clone()),
            },
        )
        .await)
    }

    /// A large blast radius needs a yes: `--yes`, or the confirmation callback. With
    /// named targets, the radius is their union.
    fn guard(&self, l: &LoadedExperiment, resolved: &[Resolution]) -> Result<(), Error> {
        let named = l.experiment.named_targets();
        let all = named.iter().any(|(_, t)| t.select.mode == SelectMode::All);
        let n: usize = resolved.iter().map(|r| r.targets.len()).sum();
        if self.yes || (n <= TARGET_LIMIT && !(all && n > ALL_LIMIT)) {
            return Ok(());
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
            Some(confirm) if confirm(&what) => Ok(()),
            Some(_) => Err(Error::Usage("not confirmed; nothing was touched".into())),
            None => Err(Error::Usage(format!(
                "{what}; a blast radius this large needs confirmation: pass --yes; nothing was touched"
            ))),
        }
    }
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
