//! Game-day schedules: cron expressions, time windows and time zones (spec section 7).
//!
//! The cron is evaluated in the window's time zone (default UTC), so "0 10 * * 1" means
//! 10:00 on Mondays where the team is, across daylight-saving changes. A fire time counts
//! only if it falls inside the window. Everything here is pure: the current time is a
//! parameter, so the tests need no clock.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::experiment::model::{Weekday, Window};

pub(crate) use crate::experiment::schedule_text::{parse_cron, parse_hours, parse_timezone};

/// When runs may start: days, hours (possibly across midnight), in a time zone.
#[derive(Clone, Debug)]
pub(crate) struct TimeWindow {
    /// Days on which a window opens; empty means every day.
    pub days: Vec<chrono::Weekday>,
    pub hours: Option<(NaiveTime, NaiveTime)>,
    pub tz: Tz,
}

impl TimeWindow {
    pub(crate) fn from_model(w: Option<&Window>) -> Result<TimeWindow, String> {
        let Some(w) = w else {
            return Ok(TimeWindow {
                days: Vec::new(),
                hours: None,
                tz: Tz::UTC,
            });
        };
        Ok(TimeWindow {
            days: w.days.iter().map(|d| weekday(*d)).collect(),
            hours: w.hours.as_deref().map(parse_hours).transpose()?,
            tz: w
                .timezone
                .as_deref()
                .map(parse_timezone)
                .transpose()?
                .unwrap_or(Tz::UTC),
        })
    }

    fn day_open(&self, d: chrono::Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&d)
    }

    /// Whether `t` falls inside the window. A window that spans midnight belongs to the
    /// day it opens on: `mon 22:00-06:00` runs from Monday 22:00 to Tuesday 06:00.
    pub(crate) fn contains(&self, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&self.tz);
        let time = local.time();
        let today = local.weekday();
        match self.hours {
            None => self.day_open(today),
            Some((start, end)) if start < end => {
                self.day_open(today) && time >= start && time < end
            }
            Some((start, end)) => {
                (time >= start && self.day_open(today))
                    || (time < end && self.day_open(today.pred()))
            }
        }
    }
}

fn weekday(d: Weekday) -> chrono::Weekday {
    match d {
        Weekday::Mon => chrono::Weekday::Mon,
        Weekday::Tue => chrono::Weekday::Tue,
        Weekday::Wed => chrono::Weekday::Wed,
        Weekday::Thu => chrono::Weekday::Thu,
        Weekday::Fri => chrono::Weekday::Fri,
        Weekday::Sat => chrono::Weekday::Sat,
        Weekday::Sun => chrono::Weekday::Sun,
    }
}

/// A cron inside a window.
#[derive(Clone, Debug)]
pub(crate) struct Schedule {
    pub cron: Cron,
    pub window: TimeWindow,
}

/// How far ahead to look for a fire time inside the window before giving up.
const HORIZON_DAYS: i64 = 400;

impl Schedule {
    pub(crate) fn new(cron: &str, window: Option<&Window>) -> Result<Schedule, String> {
        Ok(Schedule {
            cron: parse_cron(cron)?,
            window: TimeWindow::from_model(window)?,
        })
    }

    /// The first fire time strictly after `after` that falls inside the window.
    pub(crate) fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let horizon = after + Duration::days(HORIZON_DAYS);
        let mut from = after.with_timezone(&self.window.tz);
        loop {
            let next = self.cron.find_next_occurrence(&from, false).ok()?;
            let utc = next.with_timezone(&Utc);
            if utc > horizon {
                return None;
            }
            if self.window.contains(utc) {
                return Some(utc);
            }
            from = next;
        }
    }

    /// The next `n` fire times after `after`.
    pub(crate) fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut t = after;
        while out.len() < n {
            match self.next_after(t) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }
}

/// The wall clock, injected so the scheduler is tested without waiting.
pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What the scheduler did at a fire time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tick {
    Started(DateTime<Utc>),
    /// The previous run was still going: this fire time is skipped, never queued.
    SkippedBusy(DateTime<Utc>),
    /// No fire time falls inside the window any more.
    NothingAhead,
}

/// Runs `run` at every fire time until `cancel`, never while the previous run is still
/// going. On cancel it waits for a run in progress (which sees the same token and reverts
/// its faults) before it returns.
pub(crate) async fn drive<R, F>(
    schedule: &Schedule,
    clock: &dyn Clock,
    cancel: tokio_util::sync::CancellationToken,
    mut run: R,
    mut on_tick: impl FnMut(&Tick),
) where
    R: FnMut(DateTime<Utc>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut current: Option<tokio::task::JoinHandle<()>> = None;
    let mut after = clock.now();
    loop {
        let Some(next) = schedule.next_after(after) else {
            on_tick(&Tick::NothingAhead);
            break;
        };
        let wait = (next - clock.now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => break,
        }
        after = next;
        let busy = current.as_ref().is_some_and(|h| !h.is_finished());
        let tick = if busy {
            Tick::SkippedBusy(next)
        } else {
            current = Some(tokio::spawn(run(next)));
            Tick::Started(next)
        };
        on_tick(&tick);
    }
    if let Some(h) = current {
        let _ = h.await;
    }
}

/// Formats a fire time for people: in the window's zone, with the UTC time.
pub(crate) fn describe(t: DateTime<Utc>, tz: Tz) -> String {
    let local = tz.from_utc_datetime(&t.naive_utc());
    format!(
        "{} ({})",
        local.format("%a %Y-%m-%d %H:%M %Z"),
        t.format("%H:%M UTC")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn window(days: &[Weekday], hours: Option<&str>, tz: &str) -> Window {
        Window {
            days: days.to_vec(),
            hours: hours.map(Into::into),
            timezone: Some(tz.into()),
        }
    }

    /// `cron` inside a window of `hours` on `days` (any day when empty), in zone `tz`.
    fn in_window(cron: &str, days: &[Weekday], hours: Option<&str>, tz: &str) -> Schedule {
        Schedule::new(cron, Some(&window(days, hours, tz))).unwrap()
    }

    /// `schedule`'s next run after `from` is `next` (RFC 3339 both).
    #[track_caller]
    fn assert_next(schedule: &Schedule, from: &str, next: Option<&str>) {
        assert_eq!(
            schedule.next_after(utc(from)),
            next.map(utc),
            "after {from}"
        );
    }

    #[test]
    fn parses_cron_hours_and_zones() {
        assert!(parse_cron("0 10 * * 1").is_ok());
        assert!(parse_cron("61 10 * * 1").is_err());
        assert!(parse_hours("09:00-17:00").is_ok());
        assert!(parse_hours("22:00-06:00").is_ok());
        assert!(parse_hours("9-5").is_err());
        assert!(parse_timezone("Europe/Berlin").is_ok());
        assert!(
            parse_timezone("Europe/Berln")
                .unwrap_err()
                .contains("Europe/Berlin")
        );
    }

    #[test]
    fn next_fire_times_of_several_crons() {
        let s = Schedule::new("0 10 * * 1", None).unwrap();
        // 2026-11-30 is a Monday.
        assert_next(&s, "2026-11-30T09:00:00Z", Some("2026-11-30T10:00:00Z"));
        assert_next(&s, "2026-11-30T10:00:00Z", Some("2026-12-07T10:00:00Z"));
        let every15 = Schedule::new("*/15 * * * *", None).unwrap();
        assert_eq!(
            every15.upcoming(utc("2026-11-30T10:07:00Z"), 3),
            vec![
                utc("2026-11-30T10:15:00Z"),
                utc("2026-11-30T10:30:00Z"),
                utc("2026-11-30T10:45:00Z")
            ]
        );
        let monthly = Schedule::new("30 6 1 * *", None).unwrap();
        assert_next(
            &monthly,
            "2026-11-30T00:00:00Z",
            Some("2026-12-01T06:30:00Z"),
        );
    }

    #[test]
    fn the_cron_runs_in_the_windows_time_zone() {
        let s = in_window("0 10 * * *", &[], None, "Europe/Berlin");
        // Winter: Berlin is UTC+1.
        assert_next(&s, "2026-12-01T00:00:00Z", Some("2026-12-01T09:00:00Z"));
        // Summer: UTC+2.
        assert_next(&s, "2026-07-01T00:00:00Z", Some("2026-07-01T08:00:00Z"));
    }

    #[test]
    fn a_dst_change_keeps_the_local_time() {
        let s = in_window("0 10 * * *", &[], Some("09:00-17:00"), "Europe/Berlin");
        // Europe moves to summer time on Sunday 2027-03-28.
        let runs = s.upcoming(utc("2027-03-27T00:00:00Z"), 2);
        assert_eq!(
            runs,
            vec![utc("2027-03-27T09:00:00Z"), utc("2027-03-28T08:00:00Z")]
        );
        // A cron at 02:30 local does not exist on the change day; it never fires twice.
        let night = Schedule::new("30 2 * * *", None).unwrap();
        let runs = night.upcoming(utc("2027-03-27T00:00:00Z"), 3);
        assert_eq!(runs.len(), 3);
        assert!(runs.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn windows_respect_days_and_hours() {
        let w = window(
            &[
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            Some("09:00-17:00"),
            "Europe/Berlin",
        );
        let s = Schedule::new("0 * * * *", Some(&w)).unwrap();
        // Saturday 2026-12-05 10:00 UTC is outside (weekend): the next run is Monday 09:00 Berlin.
        assert_next(&s, "2026-12-05T10:00:00Z", Some("2026-12-07T08:00:00Z"));
        // 17:00 Berlin is the end, exclusive.
        let tw = TimeWindow::from_model(Some(&w)).unwrap();
        assert!(tw.contains(utc("2026-12-07T15:59:00Z")));
        assert!(!tw.contains(utc("2026-12-07T16:00:00Z")));
    }

    #[test]
    fn windows_that_span_midnight_belong_to_the_day_they_open() {
        let w = window(&[Weekday::Mon], Some("22:00-06:00"), "UTC");
        let tw = TimeWindow::from_model(Some(&w)).unwrap();
        assert!(tw.contains(utc("2026-11-30T23:00:00Z")), "Monday 23:00");
        assert!(
            tw.contains(utc("2026-12-01T05:59:00Z")),
            "Tuesday 05:59 is still Monday's window"
        );
        assert!(!tw.contains(utc("2026-12-01T06:00:00Z")));
        assert!(
            !tw.contains(utc("2026-12-01T23:00:00Z")),
            "Tuesday night is not listed"
        );
        assert!(
            !tw.contains(utc("2026-11-30T05:00:00Z")),
            "Monday early morning belongs to Sunday"
        );
        let s = Schedule::new("0 * * * *", Some(&w)).unwrap();
        assert_next(&s, "2026-11-30T12:00:00Z", Some("2026-11-30T22:00:00Z"));
        assert_next(&s, "2026-12-01T05:00:00Z", Some("2026-12-07T22:00:00Z"));
    }

    #[test]
    fn a_cron_that_never_meets_its_window_has_no_next_run() {
        let s = in_window("0 12 * * *", &[], Some("09:00-10:00"), "UTC");
        assert_next(&s, "2026-11-30T00:00:00Z", None);
    }

    /// A clock that follows tokio's (paused) time from a fixed start.
    struct TestClock {
        start: DateTime<Utc>,
        t0: tokio::time::Instant,
    }

    impl Clock for TestClock {
        fn now(&self) -> DateTime<Utc> {
            self.start + Duration::from_std(self.t0.elapsed()).unwrap()
        }
    }

    /// `drive` with a cron that fires every minute, on a clock that starts at `start` (RFC
    /// 3339) and follows tokio's paused time; `on_tick` gets each tick and what stops it.
    async fn drive_every_minute<R, F>(
        start: &str,
        run: R,
        mut on_tick: impl FnMut(&Tick, &tokio_util::sync::CancellationToken),
    ) where
        R: FnMut(DateTime<Utc>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let schedule = Schedule::new("* * * * *", None).unwrap();
        let clock = TestClock {
            start: utc(start),
            t0: tokio::time::Instant::now(),
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let stop = cancel.clone();
        drive(&schedule, &clock, cancel, run, |t| on_tick(t, &stop)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_still_going_makes_the_next_fire_times_skip() {
        let mut ticks = Vec::new();
        drive_every_minute(
            "2026-11-30T10:00:30Z",
            // Each run takes 150s: it overlaps the next two fire times.
            |_| async { tokio::time::sleep(std::time::Duration::from_secs(150)).await },
            |t, stop| {
                ticks.push(t.clone());
                if ticks.len() == 5 {
                    stop.cancel();
                }
            },
        )
        .await;
        assert_eq!(
            ticks,
            vec![
                Tick::Started(utc("2026-11-30T10:01:00Z")),
                Tick::SkippedBusy(utc("2026-11-30T10:02:00Z")),
                Tick::SkippedBusy(utc("2026-11-30T10:03:00Z")),
                Tick::Started(utc("2026-11-30T10:04:00Z")),
                Tick::SkippedBusy(utc("2026-11-30T10:05:00Z")),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_waits_for_the_run_in_progress() {
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f = finished.clone();
        drive_every_minute(
            "2026-11-30T10:00:59Z",
            move |_| {
                let f = f.clone();
                async move {
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    f.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            },
            |_, stop| stop.cancel(),
        )
        .await;
        assert!(
            finished.load(std::sync::atomic::Ordering::SeqCst),
            "drive returned before the run ended"
        );
    }
}
