//! [`Timestamp`]: an instant as both backends keep it.
//!
//! PostgreSQL keeps `timestamptz`. SQLite has no time type, so every time there is TEXT of one
//! fixed form, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, always six fractional digits). Fixed width
//! makes text order time order, so the same `<`, `MIN` and `ORDER BY` work on both backends and
//! the SQL is written once; a person reading the file with `sqlite3` sees plain dates. (sqlx's
//! own encoding of `OffsetDateTime` drops trailing zeros of the fraction, which breaks the
//! ordering: `…:01.5Z` sorts before `…:01Z`.)

use std::fmt;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// An instant, stored to the microsecond.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(at)
    }

    pub fn get(self) -> OffsetDateTime {
        self.0
    }

    /// The SQLite form: UTC, six fractional digits, `Z`.
    pub fn to_sqlite_text(self) -> String {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        self.0
            .to_offset(UtcOffset::UTC)
            .format(&format)
            .unwrap_or_else(|_| self.0.to_string())
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(at: OffsetDateTime) -> Self {
        Self(at)
    }
}

impl From<Timestamp> for OffsetDateTime {
    fn from(at: Timestamp) -> Self {
        at.0
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Type<Sqlite> for Timestamp {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <OffsetDateTime as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Timestamp {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.to_sqlite_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Timestamp {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        <OffsetDateTime as Decode<Sqlite>>::decode(value).map(Self)
    }
}

impl Type<Postgres> for Timestamp {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
}

impl PgHasArrayType for Timestamp {
    fn array_type_info() -> PgTypeInfo {
        <OffsetDateTime as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for Timestamp {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }

    fn size_hint(&self) -> usize {
        Encode::<Postgres>::size_hint(&self.0)
    }
}

impl<'r> Decode<'r, Postgres> for Timestamp {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <OffsetDateTime as Decode<Postgres>>::decode(value).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_sqlite_form_is_utc_with_six_fractional_digits() {
        let cases = [
            (
                datetime!(2026-12-02 06:29:36 UTC),
                "2026-12-02T06:29:36.000000Z",
            ),
            (
                datetime!(2026-12-02 06:29:36.5 UTC),
                "2026-12-02T06:29:36.500000Z",
            ),
            (
                datetime!(2026-12-02 08:29:36.123456 +02:00),
                "2026-12-02T06:29:36.123456Z",
            ),
        ];
        for (at, text) in cases {
            assert_eq!(Timestamp::new(at).to_sqlite_text(), text);
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let base = datetime!(2026-12-02 06:29:59 UTC);
        let mut times: Vec<OffsetDateTime> = [0, 1, 10, 999_999, 1_000_000, 500_000, 100]
            .into_iter()
            .map(|us| base + time::Duration::microseconds(us))
            .collect();
        let mut texts: Vec<String> = times
            .iter()
            .map(|t| Timestamp::new(*t).to_sqlite_text())
            .collect();
        times.sort();
        texts.sort();
        let sorted: Vec<String> = times
            .iter()
            .map(|t| Timestamp::new(*t).to_sqlite_text())
            .collect();
        assert_eq!(texts, sorted);
    }

    #[tokio::test]
    async fn a_time_comes_back_from_sqlite_as_it_went_in() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let at = datetime!(2026-12-02 06:29:36.000120 UTC);
        let (text, back): (String, Timestamp) = sqlx::query_as("SELECT CAST($1 AS TEXT), $1")
            .bind(Timestamp::new(at))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(text, "2026-12-02T06:29:36.000120Z");
        assert_eq!(back.get(), at);
    }
}
