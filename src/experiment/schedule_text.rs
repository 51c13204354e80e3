//! The text forms of a game-day schedule (cron, hours, time zone), parsed for validation
//! here and evaluated by `schedule`.

use std::str::FromStr;

use chrono::NaiveTime;
use chrono_tz::Tz;
use croner::Cron;

/// Parses a five- or six-field cron expression.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    Cron::from_str(expr).map_err(|e| {
        format!("invalid cron expression `{expr}`: {e} (five fields: minute hour day-of-month month day-of-week, e.g. \"0 10 * * 1\")")
    })
}

/// Parses `HH:MM-HH:MM`. The end may be earlier than the start: the window spans midnight.
pub fn parse_hours(text: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let bad = || {
        format!(
            "invalid hours `{text}`: write HH:MM-HH:MM, e.g. 09:00-17:00 (22:00-06:00 spans midnight)"
        )
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
    let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
    if start == end {
        return Err(format!(
            "hours `{text}` start and end at the same time: the window would be empty"
        ));
    }
    Ok((start, end))
}

/// Parses an IANA time-zone name.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    Tz::from_str(name).map_err(|_| {
        let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()).collect();
        match super::node::nearest(name, &names) {
            Some(best) => format!("unknown time zone `{name}`; did you mean `{best}`?"),
            None => {
                format!("unknown time zone `{name}`: use an IANA name such as Europe/Berlin or UTC")
            }
        }
    })
}
