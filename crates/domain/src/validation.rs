//! Field-level validation problems, collected so that a client learns about every problem in a
//! request at once rather than one per round trip.

use std::fmt;

/// One problem with one field of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Where the problem is, as a dotted path into the input (`sku`, `lines[2].quantity`).
    pub field: String,
    /// A stable, machine-readable reason (`required`, `too_long`, `out_of_range`, …).
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// Every problem found in one input. Never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(error: FieldError) -> Self {
        Self(vec![error])
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Records the error of `result` under `field` (replacing the field the parser assumed), and
    /// gives back the value when there was none.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(error);
                None
            }
        }
    }

    /// `Ok(value)` when nothing was recorded, otherwise every recorded problem.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Self> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Checks free text from a client: no control characters (which break logs, terminals and
/// e-mail headers) other than those `allowed`, and no NUL, which PostgreSQL cannot store.
pub fn check_text(field: &str, value: &str, allowed: &[char]) -> Result<(), FieldError> {
    match value
        .chars()
        .find(|c| c.is_control() && !allowed.contains(c))
    {
        Some(c) => Err(FieldError::new(
            field,
            "invalid_character",
            format!("must not contain the control character U+{:04X}", c as u32),
        )),
        None => Ok(()),
    }
}

/// Checks a length in characters (not bytes) against an inclusive range.
pub fn check_length(field: &str, value: &str, min: usize, max: usize) -> Result<(), FieldError> {
    let len = value.chars().count();
    if len < min {
        let message = if min == 1 {
            "must not be empty".to_owned()
        } else {
            format!("must be at least {min} characters")
        };
        Err(FieldError::new(field, "too_short", message))
    } else if len > max {
        Err(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        ))
    } else {
        Ok(())
    }
}

/// Checks a whole number against an inclusive range; `unit` ends the message (`" minor units"`).
pub fn check_range(
    field: &str,
    value: i64,
    min: i64,
    max: i64,
    unit: &str,
) -> Result<i64, FieldError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            field,
            "out_of_range",
            format!("must be between {min} and {max}{unit}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_text_rejects_nul_and_escape_but_allows_newline_when_asked() {
        assert!(check_text("f", "a\0b", &[]).is_err());
        assert!(check_text("f", "a\u{1b}[31m", &['\n']).is_err());
        assert!(check_text("f", "line\nline", &['\n']).is_ok());
        assert!(check_text("f", "line\nline", &[]).is_err());
        assert!(check_text("f", "café ☕ 𝄞", &[]).is_ok());
    }

    #[test]
    fn check_length_counts_characters_not_bytes() {
        assert!(check_length("f", "ééé", 1, 3).is_ok());
        assert_eq!(check_length("f", "", 1, 3).unwrap_err().code, "too_short");
        assert_eq!(
            check_length("f", "abcd", 1, 3).unwrap_err().code,
            "too_long"
        );
    }

    #[test]
    fn finish_returns_every_recorded_problem() {
        let mut errors = ValidationErrors::new();
        errors.push(FieldError::new("a", "required", "is required"));
        errors.push(FieldError::new("b", "required", "is required"));
        let result = errors.finish(|| ());
        assert_eq!(result.unwrap_err().errors().len(), 2);
    }
}
