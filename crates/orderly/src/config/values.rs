//! The typed values settings hold beyond numbers and durations: [`SecretUrl`], mailboxes, the
//! currency, the retry schedule, and [`text`], which reads and writes any type that parses
//! from a string.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::Mailbox;
use orderly_domain::Currency;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serde for a type that parses from a string (`FromStr`) and prints as one (`Display`): the
/// parse error becomes the configuration error, naming the key.
pub mod text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: Display,
    {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }

    pub fn serialize<S: Serializer, T: Display>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }
}

/// A URL that may hold a password (database, SMTP), so it prints with the password masked.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for connecting. Never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.clone();
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
                None => url.clone(),
            },
            None => url.clone(),
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// The store's ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencySetting(pub Currency);

impl FromStr for CurrencySetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse("store.currency", s)
            .map(Self)
            .map_err(|e| e.message)
    }
}

impl fmt::Display for CurrencySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Mailboxes written as a comma-separated list (`ops@shop.example, Ana <ana@shop.example>`);
/// empty for none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailboxes(pub Vec<Mailbox>);

impl FromStr for Mailboxes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let list = s.trim();
        if list.is_empty() {
            return Ok(Self::default());
        }
        list.parse::<lettre::message::Mailboxes>()
            .map(|m| Self(m.into_iter().collect()))
            .map_err(|e| format!("expected comma-separated mailboxes: {e}"))
    }
}

impl fmt::Display for Mailboxes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&list.join(", "))
    }
}

/// Waits between webhook attempts, written as durations separated by spaces (`5s 5m 2h 1d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl FromStr for RetrySchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split_whitespace()
            .map(|part| {
                humantime_serde::re::humantime::parse_duration(part)
                    .map_err(|e| format!("{part:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|d| humantime_serde::re::humantime::format_duration(*d).to_string())
            .collect();
        f.write_str(&parts.join(" "))
    }
}

/// Reads a mailbox such as `Shop <orders@shop.example>`.
pub fn mailbox<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Mailbox, D::Error> {
    text::deserialize(deserializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedules_read_durations_with_units() {
        let schedule: RetrySchedule = "5s 5m 2h 1d".parse().unwrap();
        assert_eq!(schedule.0, [5, 300, 7_200, 86_400].map(Duration::from_secs));
        assert_eq!(schedule.to_string(), "5s 5m 2h 1day");
        assert!("5 minutes".parse::<RetrySchedule>().is_err());
    }
}
