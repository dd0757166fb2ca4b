//! Wall-clock times in Graph's shapes (ISO 8601 UTC).

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Graph's `createdDateTime`: `2021-02-19T17:55:08.336Z`.
const ISO: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Graph's `innerError.date`: `2025-02-13T10:17:05` (no zone, no fraction).
const ERROR_DATE: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// Now as Graph writes `createdDateTime`.
pub(crate) fn now_iso() -> String {
    format(OffsetDateTime::now_utc(), ISO)
}

/// Now as Graph writes `innerError.date`.
pub(crate) fn now_error_date() -> String {
    format(OffsetDateTime::now_utc(), ERROR_DATE)
}

fn format(at: OffsetDateTime, shape: &[BorrowedFormatItem<'_>]) -> String {
    // Formatting fails only for a year past 9999.
    at.format(shape).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn known_dates() {
        let at = |secs: i64, millis: i64| {
            OffsetDateTime::from_unix_timestamp(secs).unwrap()
                + time::Duration::milliseconds(millis)
        };
        assert_eq!(format(at(0, 0), ISO), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format(at(19_798 * 86_400 + 3_661, 336), ISO),
            "2024-03-16T01:01:01.336Z"
        );
        assert_eq!(
            format(at(11_016 * 86_400, 0), ERROR_DATE),
            "2000-02-29T00:00:00"
        );
    }
}
