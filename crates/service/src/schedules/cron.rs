//! What a schedule is: its cron pattern (five fields, or six with seconds first), the zone its
//! fields are read in, what to do about ticks missed, and the ticks it has due.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use orderly_queue::NewJob;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Ticks a pass enqueues at most to catch up after a hiccup.
pub(crate) const CATCH_UP: usize = 10;

/// What to do about ticks missed while no worker ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    Skip,
    RunOnce,
}

impl std::str::FromStr for Missed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "skip" => Ok(Self::Skip),
            "run_once" => Ok(Self::RunOnce),
            other => Err(format!("{other:?}: expected skip or run_once")),
        }
    }
}

impl std::fmt::Display for Missed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Skip => "skip",
            Self::RunOnce => "run_once",
        })
    }
}

/// A cron expression, parsed: five fields, or six with seconds first.
#[derive(Debug, Clone)]
pub struct CronPattern {
    text: String,
    cron: Cron,
}

impl std::str::FromStr for CronPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(text)
            .map_err(|e| format!("{text:?}: {e}"))?;
        Ok(Self {
            text: text.to_owned(),
            cron,
        })
    }
}

impl std::fmt::Display for CronPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The zone a schedule's fields are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// A fixed offset from UTC (`UTC`, `+02:00`): no daylight saving.
    Fixed(FixedOffset),
    /// An IANA zone (`Europe/Lisbon`), daylight saving included: `0 7 * * *` fires at 07:00
    /// local time all year round.
    Named(chrono_tz::Tz),
}

impl std::str::FromStr for Zone {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::parse(name)
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(offset) if offset.local_minus_utc() == 0 => f.write_str("UTC"),
            Self::Fixed(offset) => write!(f, "{offset}"),
            Self::Named(zone) => f.write_str(zone.name()),
        }
    }
}

impl Zone {
    /// Coordinated Universal Time.
    pub fn utc() -> Self {
        Self::Fixed(chrono::Offset::fix(&Utc))
    }

    /// `UTC`, an offset such as `+02:00`, or an IANA name such as `America/New_York`.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "UTC" | "Z" => Ok(Self::utc()),
            _ if name.starts_with(['+', '-']) => name
                .parse::<FixedOffset>()
                .map(Self::Fixed)
                .map_err(|_| format!("timezone {name:?}: not an offset like +02:00")),
            _ => name.parse::<chrono_tz::Tz>().map(Self::Named).map_err(|_| {
                format!(
                    "timezone {name:?}: expected UTC, an offset like +02:00, or an IANA name \
                     like Europe/Lisbon"
                )
            }),
        }
    }
}

/// One schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    cron: Cron,
    /// The pattern as written.
    pub cron_text: String,
    pub job: String,
    pub args: Value,
    pub missed: Missed,
    pub timezone: Zone,
    pub max_attempts: i32,
}

impl Schedule {
    /// A schedule of parsed parts.
    pub fn new(
        name: &str,
        cron: CronPattern,
        job: &str,
        missed: Missed,
        timezone: Zone,
        max_attempts: i32,
    ) -> Self {
        Self {
            name: name.to_owned(),
            cron_text: cron.text,
            cron: cron.cron,
            job: job.to_owned(),
            args: json!({}),
            missed,
            timezone,
            max_attempts,
        }
    }

    /// The first tick after `after`.
    pub fn next_tick(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = to_chrono(after);
        let next = match self.timezone {
            Zone::Fixed(offset) => self
                .cron
                .find_next_occurrence(&after.with_timezone(&offset), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            Zone::Named(zone) => self
                .cron
                .find_next_occurrence(&after.with_timezone(&zone), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        };
        next.map(to_time)
    }

    /// What a pass at `now` enqueues for a schedule whose last recorded tick was `last`: the
    /// ticks to enqueue, as their labels (RFC 3339, to the second), and the latest tick due,
    /// to record as the last one (`None`: nothing was due). Every tick since `last` when there
    /// are at most [`CATCH_UP`] (a hiccup), else by the schedule's `missed` policy; none while
    /// `paused`.
    pub(crate) fn pass(
        &self,
        last: OffsetDateTime,
        now: OffsetDateTime,
        paused: bool,
    ) -> (Vec<String>, Option<OffsetDateTime>) {
        let due = self.due(to_chrono(last), to_chrono(now));
        let Some(&latest) = due.last() else {
            return (Vec::new(), None);
        };
        let ticks: Vec<DateTime<Utc>> = if paused {
            Vec::new()
        } else if due.len() <= CATCH_UP {
            due
        } else {
            tracing::warn!(schedule = %self.name, policy = ?self.missed, "ticks were missed while no worker ran");
            match self.missed {
                Missed::Skip => Vec::new(),
                Missed::RunOnce => vec![latest],
            }
        };
        let labels = ticks
            .iter()
            .map(|tick| tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .collect();
        (labels, Some(to_time(latest)))
    }

    /// The job of the tick labelled `tick`; its unique key (`schedule:<name>:<tick>`, with
    /// `manual:` before the tick of one an operator asked for) keeps a tick from being
    /// enqueued twice, even by two schedulers at once.
    pub(crate) fn tick_job(&self, tick: &str, manual: bool) -> NewJob {
        let mut args = self.args.clone();
        args["tick"] = json!(tick);
        let run = if manual { "manual:" } else { "" };
        NewJob::named(&self.job, args)
            .max_attempts(self.max_attempts)
            .unique(format!("schedule:{}:{run}{tick}", self.name))
    }

    /// The ticks after `after` up to and including `now`, at most `CATCH_UP + 1` of them.
    fn due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        match self.timezone {
            Zone::Fixed(offset) => self.due_in(&offset, after, now),
            Zone::Named(zone) => self.due_in(&zone, after, now),
        }
    }

    fn due_in<Z: TimeZone>(
        &self,
        zone: &Z,
        after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let mut ticks = Vec::new();
        let mut cursor = after.with_timezone(zone);
        while ticks.len() <= CATCH_UP {
            match self.cron.find_next_occurrence(&cursor, false) {
                Ok(next) if next.with_timezone(&Utc) <= now => {
                    ticks.push(next.with_timezone(&Utc));
                    cursor = next;
                }
                _ => break,
            }
        }
        ticks
    }
}

fn to_chrono(t: OffsetDateTime) -> DateTime<Utc> {
    Utc.timestamp_nanos(t.unix_timestamp_nanos() as i64)
}

fn to_time(t: DateTime<Utc>) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.timestamp_nanos_opt().unwrap_or(0)))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
#[cfg(test)]
mod tests {
    use orderly_queue::JobKind;
    use orderly_queue::kinds::Noop;

    use super::*;

    /// A schedule from its written parts, as configuration gives them.
    fn parse(
        name: &str,
        cron: &str,
        job: &str,
        missed: &str,
        timezone: &str,
        max_attempts: i32,
    ) -> Result<Schedule, String> {
        Ok(Schedule::new(
            name,
            cron.parse()?,
            job,
            missed.parse()?,
            Zone::parse(timezone)?,
            max_attempts,
        ))
    }

    #[test]
    fn due_ticks_are_the_ones_between_the_last_and_now() {
        let s = parse("t", "*/10 * * * * *", Noop::NAME, "skip", "UTC", 1).unwrap();
        let last = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 35).unwrap();
        let due: Vec<u32> = s
            .due(last, now)
            .iter()
            .map(chrono::Timelike::second)
            .collect();
        assert_eq!(due, [10, 20, 30]);
    }

    #[test]
    fn five_field_patterns_and_offsets_parse_and_bad_ones_do_not() {
        let s = parse("daily", "0 7 * * *", Noop::NAME, "run_once", "+02:00", 1).unwrap();
        let last = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 6, 0, 0).unwrap();
        // 07:00 at +02:00 is 05:00 UTC.
        assert_eq!(
            s.due(last, now),
            [Utc.with_ymd_and_hms(2026, 1, 1, 5, 0, 0).unwrap()]
        );
        assert!(parse("x", "not cron", Noop::NAME, "skip", "UTC", 1).is_err());
        assert!(parse("x", "* * * * *", Noop::NAME, "sometimes", "UTC", 1).is_err());
        assert!(parse("x", "* * * * *", Noop::NAME, "skip", "Mars/Olympus", 1).is_err());
        assert!(parse("x", "* * * * *", Noop::NAME, "skip", "+25:00", 1).is_err());
    }

    #[test]
    fn named_zones_follow_daylight_saving() {
        let s = parse("d", "0 7 * * *", Noop::NAME, "skip", "Europe/Lisbon", 1).unwrap();
        let day = |m, d, h| Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap();
        // 07:00 in Lisbon is 07:00 UTC in winter and 06:00 UTC in summer.
        assert_eq!(s.due(day(1, 15, 0), day(1, 15, 12)), [day(1, 15, 7)]);
        assert_eq!(s.due(day(7, 15, 0), day(7, 15, 12)), [day(7, 15, 6)]);
        let ny = parse(
            "d",
            "30 9 * * 1-5",
            Noop::NAME,
            "skip",
            "America/New_York",
            1,
        );
        assert_eq!(
            ny.unwrap().timezone,
            Zone::parse("America/New_York").unwrap()
        );
    }
}
