//! `faultline gameday SCENARIO [--out-dir DIR] [--schedule]`: loads the scenario, starts
//! the game day (`run::gameday`) once or on its schedule, and prints what happens.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;

use super::args::GamedayArgs;
use super::run::{runtime, start_session};
use crate::error::{Error, Exit};
use crate::experiment::{self, Loaded};
use crate::report;
use crate::run::gameday::{Gameday, GamedayEvent};
use crate::run::observers::Observers;
use crate::schedule::{self, Schedule, Tick};

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
        let gameday = Arc::new(Gameday {
            session: Arc::new(start_session(
                records,
                a.session.tc_image.clone(),
                a.session.yes,
            )?),
            observers: Arc::new(Observers::new(&a.session.observe.options())?),
            scenario: Arc::new(loaded),
            out_dir,
            on_event: Arc::new(print),
        });
        if !a.schedule {
            return gameday.once().await;
        }
        let s = &gameday.scenario.scenario;
        let cron = s.schedule.as_deref().ok_or_else(|| {
            Error::Usage(format!(
                "--schedule needs a `schedule:` cron in {}",
                a.scenario.display()
            ))
        })?;
        let sched = Schedule::new(cron, s.window.as_ref()).map_err(Error::Usage)?;
        let upcoming = sched.upcoming(Utc::now(), 5);
        if upcoming.is_empty() {
            return Err(Error::Usage(format!(
                "no time of `{cron}` falls inside the window within a year: nothing would ever run"
            )));
        }
        eprintln!(
            "faultline gameday: `{}` scheduled `{cron}`; next runs:",
            s.name
        );
        for t in &upcoming {
            eprintln!("  {}", schedule::describe(*t, sched.window.tz));
        }
        let exit = gameday.clone().scheduled(&sched).await;
        eprintln!("faultline gameday: stopped");
        Ok(exit)
    })
}

/// Prints a game day's progress on stderr, and each run's summary on stdout.
fn print(event: GamedayEvent<'_>) {
    match event {
        GamedayEvent::Together {
            first,
            last,
            total,
            names,
        } => eprintln!(
            "faultline gameday: [{first}-{last}/{total}] together: {}",
            names.join(", ")
        ),
        GamedayEvent::Starting {
            index,
            total,
            name,
            file,
        } => eprintln!(
            "faultline gameday: [{index}/{total}] {name} ({})",
            file.display()
        ),
        GamedayEvent::DidNotRun { name, error } => {
            eprintln!("faultline gameday: `{name}` did not run: {error}");
        }
        GamedayEvent::Finished { result } => eprintln!(
            "faultline gameday: `{}`: {} (exit {})",
            result.experiment.name,
            result.verdict.as_str(),
            result.verdict.exit().code()
        ),
        GamedayEvent::Ended { results, dir } => {
            super::print_stdout(&report::markdown::render_summary(results));
            eprintln!("faultline gameday: reports in {}", dir.display());
        }
        GamedayEvent::Tick(tick, sched) => match tick {
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
        GamedayEvent::Failed(e) => eprintln!("faultline gameday: {e}"),
    }
}
