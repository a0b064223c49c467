//! Money as people read and write it: an amount in minor units of a currency with two
//! decimals (`25.00 EUR`). Amounts are kept and computed as integers everywhere else.

/// An amount in minor units as people read it: `25.00 EUR`, `-0.05 EUR`.
pub fn format_money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", minor / 100, minor % 100)
}

/// An amount as people write it (`25`, `25.5`, `25.00`) in minor units; `None` for anything
/// else (a sign, more than two decimals, other characters, or too large).
pub fn parse_money(text: &str) -> Option<i64> {
    let text = text.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (units, cents) = match text.split_once('.') {
        Some((units, cents)) if digits(cents) && cents.len() <= 2 => (units, cents),
        Some(_) => return None,
        None => (text, ""),
    };
    if !digits(units) {
        return None;
    }
    let cents: i64 = format!("{cents:0<2}").parse().ok()?;
    units
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_read_as_it_is_written() {
        for (text, minor) in [
            ("25", 2_500),
            ("25.5", 2_550),
            ("25.05", 2_505),
            (" 0.99 ", 99),
        ] {
            assert_eq!(parse_money(text), Some(minor), "{text}");
            assert_eq!(
                parse_money(&format_money(minor, "EUR").replace(" EUR", "")),
                Some(minor)
            );
        }
        for text in [
            "",
            "-1",
            "1.234",
            "1,50",
            "1.",
            ".5",
            "1e3",
            "99999999999999999999",
        ] {
            assert_eq!(parse_money(text), None, "{text}");
        }
    }
}
