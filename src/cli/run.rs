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
use crate::run::observers::Observers;
use crate::run::session::{Confirm, Observe, Session};
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
        let observers = Observers::new(&a.session.observe.options())?;
        let mut results = Vec::new();
        let mut exit = Exit::Passed;
        for l in &loaded {
            if a.dry_run {
                let platforms = platforms_for(l, a.session.tc_image.as_deref())
                    .await
                    .map_err(|e| Error::Platform(format!("{e}; nothing was touched")))?;
                let (plan, code) = crate::run::dry_run::resolved(l, &platforms, a.seed).await?;
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

/// `faultline plan FILE`: the plan with the targets resolved. The exit code is the one a
/// run would start with: 3 when too few targets match, 4 when the platform is unreachable.
pub(super) fn plan(a: &super::args::PlanArgs) -> Result<Exit, Error> {
    let overrides = a.vars.overrides()?;
    let loaded = experiment::load_experiment(&a.file, &overrides).map_err(Error::Invalid)?;
    let (out, exit) = runtime().block_on(crate::run::dry_run::plan(&loaded, a.seed));
    print_stdout(&out);
    if exit == Exit::Error {
        eprintln!("faultline: the platform could not be reached; a run would fail (exit 4)");
    }
    Ok(exit)
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
