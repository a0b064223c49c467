//! How a section states the bounds of its values: each bound is written once, as a range or
//! a limit, and the message a value outside it gets is derived from it, in the units the
//! configuration is written in (`must be between 100ms and 1m`).

use std::ops::RangeInclusive;
use std::time::Duration;

use super::ConfigError;

/// A value with bounds: how it is written in configuration, and how it is quoted back in the
/// message about it.
pub(super) trait Bounded: PartialOrd + Copy {
    /// As written in configuration: `1m 30s`, `64`.
    fn written(&self) -> String;
}

impl Bounded for Duration {
    fn written(&self) -> String {
        humantime_serde::re::humantime::format_duration(*self).to_string()
    }
}

macro_rules! bounded_numbers {
    ($($t:ty),*) => {$(
        impl Bounded for $t {
            fn written(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

bounded_numbers!(u8, u32, u64, usize, i32, i64);

/// The error for `key`, whose value (as written) is `value`, and what it must be.
pub(super) fn invalid(
    key: &'static str,
    value: impl std::fmt::Debug,
    message: &str,
) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: format!("{value:?}"),
        message: message.to_owned(),
    }
}

/// `Err(invalid(..))` unless `ok`: for rules that are not a range (a URL's scheme, a name's
/// characters, one value against another).
pub(super) fn check(
    ok: bool,
    key: &'static str,
    value: impl std::fmt::Debug,
    message: &str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, value, message))
    }
}

/// `value` of `key` must lie in `range`, both ends included.
pub(super) fn within<T: Bounded>(
    key: &'static str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), ConfigError> {
    let message = format!(
        "must be between {} and {}",
        range.start().written(),
        range.end().written()
    );
    check(range.contains(&value), key, quoted(value), &message)
}

/// `value` of `key` must be at most `max`.
pub(super) fn at_most<T: Bounded>(key: &'static str, value: T, max: T) -> Result<(), ConfigError> {
    let message = format!("must be at most {}", max.written());
    check(value <= max, key, quoted(value), &message)
}

/// `value` of `key` must be above zero.
pub(super) fn above_zero<T: Bounded + Default>(
    key: &'static str,
    value: T,
) -> Result<(), ConfigError> {
    check(
        value > T::default(),
        key,
        quoted(value),
        "must be above zero",
    )
}

/// A value quoted as the message shows it: a duration as its written text, a number bare.
fn quoted<T: Bounded>(value: T) -> Quoted {
    Quoted(value.written())
}

struct Quoted(String);

impl std::fmt::Debug for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.parse::<f64>().is_ok() {
            f.write_str(&self.0)
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_derived_from_the_bound() {
        let error = within(
            "worker.lease",
            Duration::from_secs(1),
            Duration::from_secs(2)..=Duration::from_secs(3_600),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid setting `worker.lease` = \"1s\": must be between 2s and 1h"
        );
        let error = within("orders.writers", 65_usize, 1..=64).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid setting `orders.writers` = 65: must be between 1 and 64"
        );
        assert!(within("orders.writers", 64_usize, 1..=64).is_ok());
        assert!(at_most("reports.top_products", 101_u32, 100).is_err());
        assert!(above_zero("cache.ttl", Duration::ZERO).is_err());
        assert!(above_zero("cache.max_entries", 1_u64).is_ok());
    }
}
