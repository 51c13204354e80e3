//! `faultline run` and `faultline plan` / `--dry-run`: connect to the platform, resolve
//! targets, run, and write the reports.

use std::io::IsTerminal;
use std::path::Path;

use super::args::{ReportFormat, ReportSpec, RunArgs};
use super::print_stdout;
use crate::error::{Error, Exit};
use crate::experiment::{self, LoadedExperiment};
use crate::platform::{Platform, PlatformError};
use crate::report::{self, RunResult};
use crate::run::Records;
use crate::run::session::{Confirm, Observe, Resolution, Session, resolve_all};
use std::sync::Arc;

/// Connects to the platform of each of the experiment's targets (in the order of
/// `Experiment::named_targets`).
pub(super) async fn platforms_for(
    loaded: &LoadedExperiment,
    tc_image: Option<&str>,
) -> Result<Vec<Box<dyn Platform>>, PlatformError> {
    let opts = crate::platform::ConnectOptions {
        tc_image: tc_image.map(str::to_string),
    };
    crate::run::session::connect_all(&loaded.experiment, &opts).await
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

pub(super) fn run(a: &RunArgs) -> Result<Exit, Error> {
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
    let records = Records::in_state_dir(a.session.audit_log.as_deref());
    if !a.dry_run {
        super::recover::warn_open_entries(&records.journal);
    }
    let rt = runtime();
    rt.block_on(async {
        let session = start_session(records, a.session.tc_image.clone(), a.session.yes)?;
        let observers = Observers::new(&a.session.observe)?;
        let mut results = Vec::new();
        let mut exit = Exit::Passed;
        for l in &loaded {
            if a.dry_run {
                let platforms = platforms_for(l, a.session.tc_image.as_deref())
                    .await
                    .map_err(|e| Error::Platform(format!("{e}; nothing was touched")))?;
                let (plan, code) = dry_run(l, &platforms, a.seed).await?;
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

/// A session for the command line: on a terminal a large blast radius is asked about,
/// and each run draws its progress.
pub(super) fn start_session(
    records: Records,
    tc_image: Option<String>,
    yes: bool,
) -> Result<Session, Error> {
    let prompt: Option<Confirm> = (std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal())
    .then(|| Arc::new(ask) as Confirm);
    let observe: Observe = Arc::new(|| {
        super::progress::Progress::on_terminal().map(|p| p as Arc<dyn crate::run::Observer>)
    });
    Ok(Session::start(records, tc_image, yes)?
        .with_confirm(prompt)
        .with_observer(Some(observe)))
}

/// Asks on the terminal whether to go on.
fn ask(what: &str) -> bool {
    eprint!("faultline: {what}\nProceed? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

/// What a run would do to which target, with the real targets resolved; touches nothing.
/// The exit code is the one the run would start with: 3 when too few targets match.
pub(super) async fn dry_run(
    l: &LoadedExperiment,
    platforms: &[Box<dyn Platform>],
    seed: Option<u64>,
) -> Result<(String, Exit), Error> {
    let platforms: Vec<&dyn Platform> = platforms.iter().map(AsRef::as_ref).collect();
    let resolved = resolve_all(&platforms, &l.experiment, seed)
        .await
        .map_err(|e| Error::Platform(e.to_string()))?;
    let mut out = super::validate::render_plan(l, resolved.first().map(|r| r.seed));
    let mut exit = Exit::Passed;
    let mut targets = String::new();
    let named = l.experiment.named_targets();
    for (((name, t), platform), r) in named.into_iter().zip(platforms).zip(resolved) {
        let (text, code) = resolved_target(l, name, t, platform, r).await;
        targets.push_str(&text);
        exit = exit.max(code);
    }
    targets.push_str("Nothing was touched.\n");
    out = out.replace(super::validate::UNRESOLVED, &targets);
    Ok((l.secrets.redact(&out), exit))
}

/// The plan's lines about one named target (`name` empty for the unnamed `target`):
/// what was resolved, and how each of its faults would reach it.
async fn resolved_target(
    l: &LoadedExperiment,
    name: &str,
    t: &experiment::model::Target,
    platform: &dyn Platform,
    r: Resolution,
) -> (String, Exit) {
    let Resolution {
        targets: chosen,
        seed,
        candidates: n,
        passed_over,
    } = r;
    let who = if name.is_empty() {
        String::new()
    } else {
        format!("Target `{name}`: ")
    };
    let counts = report::Selection::of(&t.select, n, chosen.len()).passing_over(passed_over);
    let what = crate::plan::describe_target(t);
    if let Some(why) = counts.too_few(&what) {
        let s = format!(
            "{who}On {} ({n} candidates): {why}: the run would stop with `no_targets` (exit 3).\n",
            platform.endpoint(),
        );
        return (s, Exit::NotRun);
    }
    let short = counts
        .shortfall()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let mut s = format!(
        "{who}Resolved on {} with seed {seed}: {} of {n} matching target(s){short}:\n",
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
    let e = &l.experiment;
    let mine: Vec<(usize, &experiment::model::Fault)> = e
        .faults
        .iter()
        .enumerate()
        .filter(|(_, f)| e.target_of(f).is_some_and(|(n, _)| n == name))
        .collect();
    for (i, f) in &mine {
        for note in crate::fault::kind(f).plan_notes(platform, &chosen).await {
            s.push_str(&format!("  fault {}: {note}\n", i + 1));
        }
    }
    if let Some(why) = platform.endpoint_source() {
        s.push_str(&format!("Endpoint: {} {why}\n", platform.endpoint()));
        if let Some(t) = chosen.first() {
            let reach = platform.host_reach(t).await;
            if let Err(why) = &reach {
                s.push_str(&format!("From this host: no ({why}).\n"));
            }
            s.push_str("How each fault reaches the targets:\n");
            for (i, f) in &mine {
                if let Some(how) = docker_strategy(f, &reach) {
                    s.push_str(&format!("  fault {} ({}): {how}\n", i + 1, f.type_name()));
                }
            }
        }
    }
    (s, Exit::Passed)
}

/// How a fault reaches a Docker target, given whether this host reaches its namespaces and
/// cgroups (`reach`): what `strategy: auto` picks, or that an explicit `host` would be
/// refused. `None` for faults that do not act on the target this way.
fn docker_strategy(f: &experiment::model::Fault, reach: &Result<(), String>) -> Option<String> {
    use crate::experiment::model::{CpuStrategy, Fault, NetworkStrategy};
    let here = reach.is_ok();
    let refused = || {
        "strategy `host`, which would be refused: the targets' namespaces and cgroups are not on this host".to_string()
    };
    let cpu_like = |strategy: CpuStrategy| -> String {
        match (strategy, here) {
            (CpuStrategy::Host, false) => refused(),
            (CpuStrategy::Host, true) | (CpuStrategy::Auto, true) => {
                "host (faultline's own process in the container's cgroups)".into()
            }
            (CpuStrategy::Exec, _) | (CpuStrategy::Auto, false) => {
                "exec (inside the container, through the Docker API)".into()
            }
        }
    };
    Some(match f {
        Fault::Network(n) => match (n.strategy, here) {
            (NetworkStrategy::Host, false) => refused(),
            (NetworkStrategy::Host, true) | (NetworkStrategy::Auto, true) => {
                "host (setns and this host's tc)".into()
            }
            (NetworkStrategy::Sidecar, _) | (NetworkStrategy::Auto, false) => {
                "sidecar (a helper container sharing the target's network namespace)".into()
            }
        },
        Fault::CpuStress(c) => cpu_like(c.strategy),
        Fault::MemoryStress(m) => cpu_like(m.strategy),
        Fault::DiskFill(d) => cpu_like(d.strategy),
        Fault::IoStress(io) => cpu_like(io.strategy),
        Fault::Kill(k) if k.process.is_some() => {
            if here {
                "the matching processes, found through the container's cgroups".into()
            } else {
                "the matching processes, found through /proc inside the container by exec".into()
            }
        }
        Fault::Kill(_) => {
            if here {
                "a signal to the container's init process (the restart policy applies)".into()
            } else {
                "through the Docker API, which takes it for a manual stop: the restart policy does not restart the container".into()
            }
        }
        Fault::Pause(_) => "the Docker API's pause (the cgroup freezer)".into(),
        Fault::Stop(_) | Fault::Restart(_) => "the Docker API".into(),
        _ => return None,
    })
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
pub(super) fn demo(keep: bool) -> Result<Exit, Error> {
    let rt = runtime();
    rt.block_on(async {
        let endpoint =
            crate::platform::docker_endpoint::resolve_here(None, None).map_err(Error::Platform)?;
        let docker = crate::platform::docker::connect(&endpoint)
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
            let session = start_session(Records::in_state_dir(None), None, true)?;
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
pub(super) struct Observers {
    /// Built only when something is sent: loading the system's certificates would be
    /// most of a short run's start-up.
    client: Option<reqwest::Client>,
    notifier: crate::notify::Notifier,
    metrics_file: Option<std::path::PathBuf>,
    pushgateway: Option<String>,
}

impl Observers {
    pub(super) fn new(a: &super::args::ObserveArgs) -> Result<Observers, Error> {
        let client = if a.notify.is_empty() && a.pushgateway.is_none() {
            None
        } else {
            Some(crate::notify::client().map_err(Error::Platform)?)
        };
        let notifier = match &client {
            Some(c) if !a.notify.is_empty() => {
                crate::notify::Notifier::new(&a.notify, c.clone()).map_err(Error::Usage)?
            }
            _ => crate::notify::Notifier::none(),
        };
        Ok(Observers {
            client,
            notifier,
            metrics_file: a.metrics_file.clone(),
            pushgateway: a.pushgateway.clone(),
        })
    }

    pub(super) async fn started(&self, n: &crate::notify::Notification) {
        self.notifier.send(n).await;
    }

    /// After each run: the notification and the push (a failed push only warns).
    pub(super) async fn finished(&self, result: &RunResult, n: &crate::notify::Notification) {
        self.notifier.send(n).await;
        if let (Some(url), Some(client)) = (&self.pushgateway, &self.client) {
            let text = report::metrics::render(std::slice::from_ref(result));
            if let Err(e) = report::metrics::push(client, url, &result.experiment.name, &text).await
            {
                tracing::warn!("cannot push metrics: {e}");
            }
        }
    }

    /// After all runs: the textfile with every run's metrics.
    pub(super) fn write_metrics(&self, results: &[RunResult]) -> Result<(), Error> {
        if let Some(path) = &self.metrics_file {
            report::metrics::write_textfile(path, &report::metrics::render(results))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Observers;
    use crate::cli::args::ObserveArgs;

    /// The benchmark's finding: every run loaded the system's certificates for an HTTP
    /// client that nothing used.
    #[test]
    fn an_http_client_only_when_something_is_sent() {
        let quiet = Observers::new(&ObserveArgs::default()).unwrap();
        assert!(quiet.client.is_none() && quiet.notifier.is_empty());
        let push = Observers::new(&ObserveArgs {
            pushgateway: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(push.client.is_some() && push.notifier.is_empty());
        let notify = Observers::new(&ObserveArgs {
            notify: vec!["http://127.0.0.1:9/hook".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(notify.client.is_some() && !notify.notifier.is_empty());
    }
}
