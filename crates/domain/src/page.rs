//! Page sizes for cursor-paginated listings.

use crate::validation::{FieldError, check_range};

/// How many items one page of a listing holds: 1 to 100, 50 when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const MAX: u32 = 100;
    pub const DEFAULT: PageLimit = PageLimit(50);

    pub fn parse(value: i64) -> Result<Self, FieldError> {
        check_range("limit", value, 1, i64::from(Self::MAX), "").map(|v| Self(v as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused() {
        assert!(PageLimit::parse(0).is_err());
        assert!(PageLimit::parse(101).is_err());
        assert!(PageLimit::parse(-1).is_err());
        assert_eq!(PageLimit::parse(100).unwrap().get(), 100);
    }
}
