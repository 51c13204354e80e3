//! A game day (spec section 7): a scenario's experiments in order (a `parallel` group
//! together), once or at each cron time inside its window. Each run's reports and the
//! summary land in a directory of their own; what happens is told as [`GamedayEvent`]s.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::observers::Observers;
use super::session::Session;
use crate::error::{Error, Exit};
use crate::experiment::{self, LoadedScenario};
use crate::notify::Notification;
use crate::report::{self, RunResult};
use crate::schedule::{self, Schedule, SystemClock, Tick};

/// What a game day tells as it goes.
pub(crate) enum GamedayEvent<'a> {
    /// A `parallel` group starts: experiments `first` to `last` (1-based) of `total`.
    Together {
        first: usize,
        last: usize,
        total: usize,
        names: Vec<&'a str>,
    },
    /// Experiment `index` (1-based) of `total` starts on its own.
    Starting {
        index: usize,
        total: usize,
        name: &'a str,
        file: &'a Path,
    },
    /// An experiment could not run (its platform, its targets).
    DidNotRun { name: &'a str, error: &'a Error },
    /// An experiment ended with its verdict.
    Finished { result: &'a RunResult },
    /// Every experiment has ended: the results, and where the reports are.
    Ended {
        results: &'a [RunResult],
        dir: &'a Path,
    },
    /// A scheduled run started, or was skipped, or no time is left in the window.
    Tick(&'a Tick, &'a Schedule),
    /// A scheduled run failed before any experiment ran.
    Failed(&'a Error),
}

/// Receives a game day's events (the command line prints them).
pub(crate) type OnEvent = Arc<dyn Fn(GamedayEvent<'_>) + Send + Sync>;

/// What a game day shares between its runs.
pub(crate) struct Gameday {
    pub(crate) session: Arc<Session>,
    pub(crate) observers: Arc<Observers>,
    pub(crate) scenario: Arc<LoadedScenario>,
    /// Each run's reports go into a directory below this one, named by its start time.
    pub(crate) out_dir: PathBuf,
    pub(crate) on_event: OnEvent,
}

/// A run's directory name: its start time.
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

impl Gameday {
    /// Runs the scenario once now.
    pub(crate) async fn once(&self) -> Result<Exit, Error> {
        self.run_at(Utc::now()).await
    }

    /// Runs the scenario at each time of `sched` until cancelled or no time is left in its
    /// window. Returns the highest exit code of the runs (interrupted when cancelled).
    pub(crate) async fn scheduled(self: Arc<Self>, sched: &Schedule) -> Exit {
        let worst = Arc::new(Mutex::new(Exit::Passed));
        let cancel = self.session.cancel.clone();
        schedule::drive(
            sched,
            &SystemClock,
            cancel,
            |at| {
                let (me, worst) = (self.clone(), worst.clone());
                async move {
                    let exit = match me.run_at(at).await {
                        Ok(e) => e,
                        Err(e) => {
                            (me.on_event)(GamedayEvent::Failed(&e));
                            e.exit()
                        }
                    };
                    let mut w = worst.lock().expect("not poisoned");
                    *w = (*w).max(exit);
                }
            },
            |tick| (self.on_event)(GamedayEvent::Tick(tick, sched)),
        )
        .await;
        let worst = *worst.lock().expect("not poisoned");
        if self.session.cancel.is_cancelled() {
            Exit::Interrupted.max(worst)
        } else {
            worst
        }
    }

    /// Runs the experiments in order, writes each one's reports and the summary into the
    /// run's directory, and returns the highest exit code.
    async fn run_at(&self, at: DateTime<Utc>) -> Result<Exit, Error> {
        let dir = self.out_dir.join(stamp(at));
        std::fs::create_dir_all(&dir)?;
        let s = &*self.scenario;
        let name = &s.scenario.name;
        self.observers
            .started(&Notification::gameday_started(name, s.experiments.len()))
            .await;
        let mut secrets = experiment::Secrets::default();
        let mut results: Vec<RunResult> = Vec::new();
        let mut exit = Exit::Passed;
        for step in &s.steps {
            let (step_exit, ran) = self.step(step, &dir, &mut secrets).await?;
            results.extend(ran);
            exit = exit.max(step_exit);
            if self.session.cancel.is_cancelled()
                || (step_exit != Exit::Passed && !s.scenario.continue_on_failure)
            {
                break;
            }
        }
        let summary = dir.join("summary.html");
        std::fs::write(
            dir.join("summary.md"),
            report::markdown::render_summary(&results),
        )?;
        std::fs::write(&summary, report::html::render_many(&results))?;
        std::fs::write(dir.join("junit.xml"), report::junit::render(&results))?;
        self.observers.write_metrics(&results)?;
        self.observers
            .started(
                &Notification::gameday_finished(name, &results)
                    .with_secrets(&secrets)
                    .with_report(&summary),
            )
            .await;
        (self.on_event)(GamedayEvent::Ended {
            results: &results,
            dir: &dir,
        });
        Ok(exit)
    }

    /// One step: an experiment, or a `parallel` group whose experiments start together
    /// and whose exit code is the highest among them.
    async fn step(
        &self,
        step: &[usize],
        dir: &Path,
        secrets: &mut experiment::Secrets,
    ) -> Result<(Exit, Vec<RunResult>), Error> {
        let s = &*self.scenario;
        let total = s.experiments.len();
        if step.len() > 1 {
            (self.on_event)(GamedayEvent::Together {
                first: step[0] + 1,
                last: step[step.len() - 1] + 1,
                total,
                names: step
                    .iter()
                    .map(|&i| s.experiments[i].experiment.name.as_str())
                    .collect(),
            });
        }
        let runs = futures::future::join_all(step.iter().map(|&i| {
            let l = &s.experiments[i];
            async move {
                if step.len() == 1 {
                    (self.on_event)(GamedayEvent::Starting {
                        index: i + 1,
                        total,
                        name: &l.experiment.name,
                        file: &l.file,
                    });
                }
                (i, l, self.session.execute(l, None).await)
            }
        }))
        .await;
        let mut step_exit = Exit::Passed;
        let mut results = Vec::new();
        for (i, l, outcome) in runs {
            let result = match outcome {
                Ok(r) => r,
                Err(e) => {
                    (self.on_event)(GamedayEvent::DidNotRun {
                        name: &l.experiment.name,
                        error: &e,
                    });
                    step_exit = step_exit.max(e.exit());
                    continue;
                }
            };
            secrets.extend(&l.secrets);
            self.observers
                .finished(
                    &result,
                    &Notification::run_finished(&result, &l.secrets).in_scenario(&s.scenario.name),
                )
                .await;
            let base = dir.join(format!("{:02}-{}", i + 1, result.experiment.name));
            std::fs::write(base.with_extension("json"), report::json::render(&result))?;
            std::fs::write(base.with_extension("md"), report::markdown::render(&result))?;
            std::fs::write(base.with_extension("html"), report::html::render(&result))?;
            (self.on_event)(GamedayEvent::Finished { result: &result });
            step_exit = step_exit.max(result.verdict.exit());
            results.push(result);
        }
        Ok((step_exit, results))
    }
}
