//! `faultline run` and `faultline plan` / `--dry-run`: connect to the platform, resolve
//! targets, run, and write the reports.

use std::io::IsTerminal;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::args::{ReportFormat, ReportSpec, RunArgs};
use super::print_stdout;
use crate::error::{Error, Exit};
use crate::experiment::{self, LoadedExperiment};
use crate::platform::{Platform, PlatformError, select};
use crate::probe::ProbeContext;
use crate::report::{self, RunResult};
use crate::run::Records;

/// Connects to the platform the experiment's target block names.
pub async fn platform_for(
    loaded: &LoadedExperiment,
    tc_image: Option<&str>,
) -> Result<Box<dyn Platform>, PlatformError> {
    let opts = crate::platform::ConnectOptions {
        tc_image: tc_image.map(str::to_string),
    };
    crate::platform::connect(&loaded.experiment.target, &opts).await
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// The first SIGINT or SIGTERM cancels the token (every active fault is reverted). A
/// second one says what is still being reverted; a third quits at once and leaves the
/// rest to `faultline recover` (and to the dead-man's switch).
fn on_signals(token: CancellationToken, records: Records) {
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        let mut count = 0;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            count += 1;
            match count {
                1 => {
                    eprintln!("faultline: interrupted: reverting every active fault...");
                    token.cancel();
                }
                2 => {
                    let open: Vec<String> = records
                        .journal
                        .open_entries()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|e| e.run == records.run_id)
                        .map(|e| format!("{} on {}", e.fault, e.undo.target().name))
                        .collect();
                    if open.is_empty() {
                        eprintln!("faultline: still finishing; nothing is left to revert");
                    } else {
                        eprintln!("faultline: still reverting: {}", open.join(", "));
                    }
                    eprintln!(
                        "faultline: interrupt once more to quit now and leave the rest to `faultline recover`"
                    );
                }
                _ => {
                    eprintln!(
                        "faultline: quitting; run `faultline recover` to revert what is left (journal {})",
                        records.journal.path().display()
                    );
                    std::process::exit(Exit::Interrupted.code().into());
                }
            }
        }
    });
}

pub fn run(a: &RunArgs) -> Result<Exit, Error> {
    let overrides = a.vars.overrides()?;
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    for file in &a.files {
        match experiment::load_experiment(file, &overrides) {
            Ok(l) => loaded.push(l),
            Err(d) => problems.extend(d),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    let reports = ReportSpec::with_terminal_table(&a.report, std::io::stdout().is_terminal());
    let records = super::recover::records(a.audit_log.as_deref());
    if !a.dry_run {
        super::recover::warn_open_entries(&records.journal);
    }
    let rt = runtime();
    rt.block_on(async {
        let session = Session::start(records, a.tc_image.clone(), a.yes)?;
        let observers = Observers::new(&a.observe)?;
        let mut results = Vec::new();
        let mut exit = Exit::Passed;
        for l in &loaded {
            if a.dry_run {
                let platform = platform_for(l, a.tc_image.as_deref())
                    .await
                    .map_err(|e| Error::Platform(format!("{e}; nothing was touched")))?;
                let (plan, code) = dry_run(l, platform.as_ref(), a.seed).await?;
                print_stdout(&plan);
                exit = exit.max(code);
                continue;
            }
            observers
                .started(&crate::notify::Notification::run_started(l))
                .await;
            let result = session.execute(l, a.seed).await?;
            write_reports(&result, &reports, loaded.len() > 1)?;
            observers
                .finished(
                    &result,
                    &crate::notify::Notification::run_finished(&result, &l.secrets),
                )
                .await;
            exit = exit.max(result.verdict.exit());
            results.push(result);
            if session.cancel.is_cancelled() {
                break;
            }
        }
        observers.write_metrics(&results)?;
        Ok(exit)
    })
}

/// What the runs of one command share: the signal token, the journal and audit log, the
/// probe clients, and the dead-man's switch (armed once, at the first reversible fault).
pub struct Session {
    pub cancel: CancellationToken,
    pub records: Records,
    probes: ProbeContext,
    tc_image: Option<String>,
    yes: bool,
    switch_armed: std::sync::atomic::AtomicBool,
}

impl Session {
    /// Must be called inside the runtime: it installs the signal handler.
    pub fn start(records: Records, tc_image: Option<String>, yes: bool) -> Result<Session, Error> {
        let cancel = CancellationToken::new();
        on_signals(cancel.clone(), records.clone());
        Ok(Session {
            cancel,
            records,
            probes: ProbeContext::new().map_err(Error::Platform)?,
            tc_image,
            yes,
            switch_armed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Runs one experiment: connect, guard the blast radius, arm the switch, run.
    pub async fn execute(
        &self,
        l: &LoadedExperiment,
        seed: Option<u64>,
    ) -> Result<RunResult, Error> {
        let platform = platform_for(l, self.tc_image.as_deref())
            .await
            .map_err(|e| Error::Platform(format!("{e}; nothing was touched")))?;
        // The seed is fixed here so that the guard sees the selection the run will make.
        let seed = seed
            .or(l.experiment.target.select.seed)
            .unwrap_or_else(rand::random);
        blast_radius_guard(l, platform.as_ref(), seed, self.yes).await?;
        let reversible = l.experiment.faults.iter().any(|f| f.duration().is_some());
        if reversible
            && !self
                .switch_armed
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            super::recover::spawn_dead_mans_switch(&self.records);
        }
        Ok(crate::run::run(
            l,
            platform.as_ref(),
            &self.probes,
            crate::run::RunOptions {
                seed: Some(seed),
                cancel: self.cancel.clone(),
                observer: super::progress::Progress::on_terminal()
                    .map(|p| p as std::sync::Arc<dyn crate::run::Observer>),
                records: Some(self.records.clone()),
            },
        )
        .await)
    }
}

/// More targets than this, or `mode: all` on more than [`ALL_LIMIT`], asks first.
const TARGET_LIMIT: usize = 10;
const ALL_LIMIT: usize = 3;

/// A large blast radius needs a yes: on a terminal a prompt, elsewhere `--yes`.
async fn blast_radius_guard(
    l: &LoadedExperiment,
    platform: &dyn Platform,
    seed: u64,
    yes: bool,
) -> Result<(), Error> {
    let select = &l.experiment.target.select;
    let candidates = match platform.discover().await {
        Ok(c) => c,
        // The run reports an unreachable platform itself, with its verdict.
        Err(_) => return Ok(()),
    };
    let (chosen, _) = select::select(candidates, select, Some(seed));
    let all = select.mode == crate::experiment::model::SelectMode::All;
    if chosen.len() <= TARGET_LIMIT && !(all && chosen.len() > ALL_LIMIT) || yes {
        return Ok(());
    }
    let names: Vec<&str> = chosen.iter().map(|t| t.name.as_str()).collect();
    let what = format!(
        "`{}` would inject faults into {} targets{}: {}",
        l.experiment.name,
        chosen.len(),
        if all { " (mode: all)" } else { "" },
        names.join(", ")
    );
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprint!("faultline: {what}\nProceed? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
        return Err(Error::Usage("not confirmed; nothing was touched".into()));
    }
    Err(Error::Usage(format!(
        "{what}; a blast radius this large needs confirmation: pass --yes; nothing was touched"
    )))
}

/// What a run would do to which target, with the real targets resolved; touches nothing.
/// The exit code is the one the run would start with: 3 when too few targets match.
pub async fn dry_run(
    l: &LoadedExperiment,
    platform: &dyn Platform,
    seed: Option<u64>,
) -> Result<(String, Exit), Error> {
    let candidates = platform
        .discover()
        .await
        .map_err(|e| Error::Platform(e.to_string()))?;
    let n = candidates.len();
    let (chosen, seed, counts) =
        select::select_counted(candidates, &l.experiment.target.select, seed);
    let mut out = super::validate::render_plan(l, Some(seed));
    let what = crate::plan::describe_target(&l.experiment.target);
    let mut exit = Exit::Passed;
    let targets = if let Some(why) = select::too_few(&counts, &what) {
        exit = Exit::NotRun;
        format!(
            "On {} ({n} candidates): {why}: the run would stop with `no_targets` (exit 3).\n",
            platform.endpoint(),
        )
    } else {
        let short = counts
            .shortfall()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let mut s = format!(
            "Resolved on {} with seed {seed}: {} of {n} matching target(s){short}:\n",
            platform.endpoint(),
            chosen.len()
        );
        for t in &chosen {
            s.push_str(&format!(
                "  - {} ({})\n",
                t.name,
                &t.id[..t.id.len().min(12)]
            ));
        }
        s.push_str("Nothing was touched.\n");
        s
    };
    out = out.replace(super::validate::UNRESOLVED, &targets);
    Ok((l.secrets.redact(&out), exit))
}

fn write_reports(result: &RunResult, specs: &[ReportSpec], several: bool) -> Result<(), Error> {
    for spec in specs {
        let text = match spec.format {
            ReportFormat::Table => {
                let color = spec.path.is_none() && std::io::stdout().is_terminal();
                report::table::render(result, color)
            }
            ReportFormat::Json => report::json::render(result),
            ReportFormat::Junit => report::junit::render(std::slice::from_ref(result)),
            ReportFormat::Markdown => report::markdown::render(result),
            ReportFormat::Html => report::html::render(result),
        };
        match &spec.path {
            None => print_stdout(&text),
            Some(path) => {
                let path = if several {
                    per_experiment(path, &result.experiment.name)
                } else {
                    path.clone()
                };
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, text)?;
                eprintln!("faultline: wrote {}", path.display());
            }
        }
    }
    Ok(())
}

/// With several experiments, `report.json` becomes `report-<experiment>.json`.
fn per_experiment(path: &Path, name: &str) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("report");
    let file = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!("{stem}-{name}.{ext}"),
        None => format!("{stem}-{name}"),
    };
    path.with_file_name(file)
}

/// `faultline demo`: builds the demo service locally, runs the bundled experiment against
/// it, prints the report, and tears the service down unless `keep`.
pub fn demo(keep: bool) -> Result<Exit, Error> {
    let rt = runtime();
    rt.block_on(async {
        let docker = crate::platform::docker::connect(None)
            .await
            .map_err(Error::Platform)?;
        let binary = std::env::current_exe()?;
        eprintln!(
            "faultline demo: building the demo service (three web replicas behind a balancer)..."
        );
        let env = crate::demo::Environment::start(&docker, &binary)
            .await
            .map_err(Error::Platform)?;
        eprintln!("faultline demo: the service answers at {}", env.url());
        let yaml = env.experiment_yaml();
        let outcome = async {
            let loaded = experiment::load_experiment_str(
                "demo/web-survives-pause.yaml",
                &yaml,
                &experiment::VarOverrides::default(),
                &experiment::process_env,
            )
            .map_err(Error::Invalid)?;
            print_stdout(&format!("The bundled experiment:\n\n{yaml}\n"));
            let session = Session::start(super::recover::records(None), None, true)?;
            let result = session.execute(&loaded, None).await?;
            let color = std::io::stdout().is_terminal();
            print_stdout(&report::table::render(&result, color));
            Ok::<Exit, Error>(result.verdict.exit())
        }
        .await;
        if keep {
            eprintln!(
                "faultline demo: left running (--keep): {}; remove them with `docker rm -f {}`",
                env.url(),
                env.containers().join(" ")
            );
        } else {
            env.teardown().await.map_err(Error::Platform)?;
            eprintln!("faultline demo: the demo service was removed");
        }
        outcome
    })
}

/// The run's results beyond its reports: metrics (file, Pushgateway) and notifications.
pub struct Observers {
    client: reqwest::Client,
    notifier: crate::notify::Notifier,
    metrics_file: Option<std::path::PathBuf>,
    pushgateway: Option<String>,
}

impl Observers {
    pub fn new(a: &super::args::ObserveArgs) -> Result<Observers, Error> {
        let client = crate::notify::client().map_err(Error::Platform)?;
        let notifier =
            crate::notify::Notifier::new(&a.notify, client.clone()).map_err(Error::Usage)?;
        Ok(Observers {
            client,
            notifier,
            metrics_file: a.metrics_file.clone(),
            pushgateway: a.pushgateway.clone(),
        })
    }

    pub async fn started(&self, n: &crate::notify::Notification) {
        self.notifier.send(n).await;
    }

    /// After each run: the notification and the push (a failed push only warns).
    pub async fn finished(&self, result: &RunResult, n: &crate::notify::Notification) {
        self.notifier.send(n).await;
        if let Some(url) = &self.pushgateway {
            let text = crate::report::metrics::render(std::slice::from_ref(result));
            if let Err(e) =
                crate::report::metrics::push(&self.client, url, &result.experiment.name, &text)
                    .await
            {
                tracing::warn!("cannot push metrics: {e}");
            }
        }
    }

    /// After all runs: the textfile with every run's metrics.
    pub fn write_metrics(&self, results: &[RunResult]) -> Result<(), Error> {
        if let Some(path) = &self.metrics_file {
            crate::report::metrics::write_textfile(path, &crate::report::metrics::render(results))?;
        }
        Ok(())
    }
}
