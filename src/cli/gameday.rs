//! `faultline gameday SCENARIO [--out-dir DIR] [--schedule]`: a suite of experiments, once
//! or at each cron time inside the scenario's window (spec section 7).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;

use super::args::GamedayArgs;
use super::run::{Observers, runtime, start_session};
use crate::error::{Error, Exit};
use crate::experiment::{self, Loaded, LoadedScenario};
use crate::notify::Notification;
use crate::report::{self, RunResult};
use crate::run::session::Session;
use crate::schedule::{self, Schedule, SystemClock, Tick};

pub(super) fn run(a: &GamedayArgs) -> Result<Exit, Error> {
    let overrides = a.vars.overrides()?;
    let loaded = match experiment::load(&a.scenario, &overrides).map_err(Error::Invalid)? {
        Loaded::Scenario(s) => s,
        Loaded::Experiment(_) => {
            return Err(Error::Usage(format!(
                "{} is an experiment, not a scenario: run it with `faultline run`, or write a `kind: scenario` file",
                a.scenario.display()
            )));
        }
    };
    let out_dir = a
        .out_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("gameday-reports"));
    let records = crate::run::Records::in_state_dir(a.session.audit_log.as_deref());
    super::recover::warn_open_entries(&records.journal);
    let rt = runtime();
    rt.block_on(async {
        let session = Arc::new(start_session(
            records,
            a.session.tc_image.clone(),
            a.session.yes,
        )?);
        let observers = Arc::new(Observers::new(&a.session.observe)?);
        if !a.schedule {
            return run_once(&session, &observers, &loaded, &out_dir.join(stamp())).await;
        }
        let cron = loaded.scenario.schedule.as_deref().ok_or_else(|| {
            Error::Usage(format!(
                "--schedule needs a `schedule:` cron in {}",
                a.scenario.display()
            ))
        })?;
        let sched = Schedule::new(cron, loaded.scenario.window.as_ref()).map_err(Error::Usage)?;
        let upcoming = sched.upcoming(Utc::now(), 5);
        if upcoming.is_empty() {
            return Err(Error::Usage(format!(
                "no time of `{cron}` falls inside the window within a year: nothing would ever run"
            )));
        }
        eprintln!(
            "faultline gameday: `{}` scheduled `{cron}`; next runs:",
            loaded.scenario.name
        );
        for t in &upcoming {
            eprintln!("  {}", schedule::describe(*t, sched.window.tz));
        }
        let loaded = Arc::new(loaded);
        let cancel = session.cancel.clone();
        let worst = Arc::new(std::sync::Mutex::new(Exit::Passed));
        schedule::drive(
            &sched,
            &SystemClock,
            cancel,
            |at| {
                let (session, observers, loaded, out_dir, worst) = (
                    session.clone(),
                    observers.clone(),
                    loaded.clone(),
                    out_dir.clone(),
                    worst.clone(),
                );
                async move {
                    let dir = out_dir.join(at.format("%Y%m%dT%H%M%SZ").to_string());
                    let exit = match run_once(&session, &observers, &loaded, &dir).await {
                        Ok(e) => e,
                        Err(e) => {
                            eprintln!("faultline gameday: {e}");
                            e.exit()
                        }
                    };
                    let mut w = worst.lock().expect("not poisoned");
                    *w = (*w).max(exit);
                }
            },
            |tick| match tick {
                Tick::Started(t) => eprintln!(
                    "faultline gameday: run started at {}",
                    schedule::describe(*t, sched.window.tz)
                ),
                Tick::SkippedBusy(t) => eprintln!(
                    "faultline gameday: skipped {}: the previous run is still going",
                    schedule::describe(*t, sched.window.tz)
                ),
                Tick::NothingAhead => {
                    eprintln!("faultline gameday: no further run falls inside the window");
                }
            },
        )
        .await;
        eprintln!("faultline gameday: stopped");
        let worst = *worst.lock().expect("not poisoned");
        Ok(if session.cancel.is_cancelled() {
            Exit::Interrupted.max(worst)
        } else {
            worst
        })
    })
}

fn stamp() -> String {
    Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

/// Runs the experiments in order, writes each one's reports and the summary into `dir`,
/// and returns the highest exit code.
async fn run_once(
    session: &Session,
    observers: &Observers,
    s: &LoadedScenario,
    dir: &Path,
) -> Result<Exit, Error> {
    std::fs::create_dir_all(dir)?;
    let name = &s.scenario.name;
    observers
        .started(&Notification::gameday_started(name, s.experiments.len()))
        .await;
    let mut secrets = experiment::Secrets::default();
    let mut results: Vec<RunResult> = Vec::new();
    let mut exit = Exit::Passed;
    let total = s.experiments.len();
    for step in &s.steps {
        // A `parallel` group: its experiments start together; the step ends when all
        // have ended, and the highest exit code among them is the step's.
        if step.len() > 1 {
            let names: Vec<&str> = step
                .iter()
                .map(|&i| s.experiments[i].experiment.name.as_str())
                .collect();
            eprintln!(
                "faultline gameday: [{}-{}/{total}] together: {}",
                step[0] + 1,
                step[step.len() - 1] + 1,
                names.join(", ")
            );
        }
        let runs = futures::future::join_all(step.iter().map(|&i| {
            let l = &s.experiments[i];
            async move {
                if step.len() == 1 {
                    eprintln!(
                        "faultline gameday: [{}/{total}] {} ({})",
                        i + 1,
                        l.experiment.name,
                        l.file.display()
                    );
                }
                (i, l, session.execute(l, None).await)
            }
        }))
        .await;
        let mut step_exit = Exit::Passed;
        for (i, l, outcome) in runs {
            let result = match outcome {
                Ok(r) => r,
                Err(e) => {
                    eprintln!(
                        "faultline gameday: `{}` did not run: {e}",
                        l.experiment.name
                    );
                    step_exit = step_exit.max(e.exit());
                    continue;
                }
            };
            secrets.extend(&l.secrets);
            observers
                .finished(
                    &result,
                    &Notification::run_finished(&result, &l.secrets).in_scenario(name),
                )
                .await;
            let base = dir.join(format!("{:02}-{}", i + 1, result.experiment.name));
            std::fs::write(base.with_extension("json"), report::json::render(&result))?;
            std::fs::write(base.with_extension("md"), report::markdown::render(&result))?;
            std::fs::write(base.with_extension("html"), report::html::render(&result))?;
            let code = result.verdict.exit();
            eprintln!(
                "faultline gameday: `{}`: {} (exit {})",
                result.experiment.name,
                result.verdict.as_str(),
                code.code()
            );
            step_exit = step_exit.max(code);
            results.push(result);
        }
        exit = exit.max(step_exit);
        if session.cancel.is_cancelled()
            || (step_exit != Exit::Passed && !s.scenario.continue_on_failure)
        {
            break;
        }
    }
    std::fs::write(
        dir.join("summary.md"),
        report::markdown::render_summary(&results),
    )?;
    std::fs::write(
        dir.join("summary.html"),
        report::html::render_many(&results),
    )?;
    std::fs::write(dir.join("junit.xml"), report::junit::render(&results))?;
    observers.write_metrics(&results)?;
    observers
        .started(
            &Notification::gameday_finished(name, &results)
                .with_secrets(&secrets)
                .with_report(&dir.join("summary.html")),
        )
        .await;
    let summary = report::markdown::render_summary(&results);
    super::print_stdout(&summary);
    eprintln!("faultline gameday: reports in {}", dir.display());
    Ok(exit)
}
