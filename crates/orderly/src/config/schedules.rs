//! `[schedules.<name>]`: cron schedules, each enqueuing a job kind on its ticks.

use std::collections::BTreeMap;

use orderly_service::{CronPattern, Missed, Zone};
use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::bounds::check;
use super::values::text;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Five fields, or six with seconds first.
    #[serde(with = "text")]
    pub cron: CronPattern,
    /// The job kind each tick enqueues.
    pub job: String,
    /// `skip` or `run_once`.
    #[serde(with = "text", default = "skip")]
    pub missed: Missed,
    /// `UTC`, a fixed offset such as `+02:00`, or an IANA name such as `Europe/Lisbon`.
    #[serde(with = "text", default = "utc")]
    pub timezone: Zone,
}

fn skip() -> Missed {
    Missed::Skip
}

fn utc() -> Zone {
    Zone::utc()
}

/// Every schedule must name a job kind there is.
pub(super) fn validate(schedules: &BTreeMap<String, ScheduleConfig>) -> Result<(), ConfigError> {
    for (name, schedule) in schedules {
        check(
            orderly_queue::kinds::KindInfo::named(&schedule.job).is_some(),
            "schedules",
            format!("{name}.job = {}", schedule.job),
            "must name a job kind",
        )?;
    }
    Ok(())
}
