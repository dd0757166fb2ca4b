//! When to try again: `Retry-After` parsing and exponential backoff with jitter, bounded in
//! attempts, in the length of one wait and in total time.

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` read from an answer: a day. Any value past it (`1e30`, a date in
/// year 9999) reads as a day, so that no later sum or instant can overflow; it is far past
/// any wait the client takes anyway (see [`RetryPolicy::max_wait`]).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The default of [`RetryPolicy::max_wait`] (`ENROLL_GRAPH_MAX_WAIT_SECONDS`): a minute.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// How hard the client tries before giving up on a call.
///
/// Defaults follow graph.md §6.2 (Graph SDKs retry 3 times; Microsoft recommends a base of
/// about 2 s and a cap of a minute or more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 6). Retries after a throttle whose
    /// `Retry-After` named the wait do not count; `max_elapsed` bounds those.
    pub max_attempts: u32,
    /// Time after which no new attempt starts (default 180 s). Checked before every wait: a
    /// wait that would end past it is not taken, and the call fails at once.
    pub max_elapsed: Duration,
    /// First backoff delay when Graph gives no `Retry-After` (default 2 s).
    pub base_delay: Duration,
    /// Largest backoff wait when Graph names none (default 60 s).
    pub max_delay: Duration,
    /// Longest single wait the client takes, backoff or `Retry-After` (default
    /// [`DEFAULT_MAX_WAIT`]). When Graph asks for a longer wait, the call fails at once with
    /// an error that says how long Graph asked to wait ([`crate::GraphError::retry_after`]),
    /// so that the caller can give the work back (a queue message becomes visible again
    /// later) instead of holding on to it.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            max_elapsed: Duration::from_secs(180),
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            max_wait: DEFAULT_MAX_WAIT,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (after `attempt` failed ones, counting from 1),
    /// when the server named none: exponential, capped by `max_delay` and `max_wait`, with
    /// "equal jitter" (half fixed, half random) so that many clients throttled together do
    /// not come back together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay)
            .min(self.max_wait);
        let half = full / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=jitter_nanos))
    }

    /// The wait before the next attempt, or `None` when the policy says stop: attempts used
    /// up, a `Retry-After` longer than `max_wait`, or a wait that would end past
    /// `max_elapsed`.
    pub fn next_delay(
        &self,
        attempt: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let delay = retry_after.unwrap_or_else(|| self.backoff(attempt));
        self.within_budget(elapsed, delay)
    }

    /// The wait before the next attempt after a throttle (429, 503) whose `Retry-After`
    /// named the wait: that wait, however many throttles came before, or `None` when it is
    /// longer than `max_wait` or would end past `max_elapsed`.
    ///
    /// Such a retry does not use up one of `max_attempts`: Graph asks clients to keep
    /// honouring `Retry-After` on repeated 429s (graph.md §6.2), and in a sustained throttle
    /// a request may be turned away many times before its turn comes; giving up after
    /// `max_attempts` would drop changes that were merely waiting.
    pub fn delay_after_throttle(
        &self,
        elapsed: Duration,
        retry_after: Duration,
    ) -> Option<Duration> {
        self.within_budget(elapsed, retry_after)
    }

    /// `delay`, if the policy allows waiting that long now: the budget is consulted before
    /// any wait is taken.
    fn within_budget(&self, elapsed: Duration, delay: Duration) -> Option<Duration> {
        (delay <= self.max_wait && elapsed.saturating_add(delay) <= self.max_elapsed)
            .then_some(delay)
    }
}

/// Reads a `Retry-After` value: delay-seconds (Graph sends whole seconds; some services send
/// fractions like `2.128`) or an HTTP-date, relative to `now`. Any value reads without
/// panicking: a negative, infinite or unreadable one is `None` (the caller backs off on
/// its own), a date in the past is zero, and anything longer than [`MAX_RETRY_AFTER`] is
/// [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        if !seconds.is_finite() || seconds < 0.0 {
            return None;
        }
        // `Duration::from_secs_f64` panics past u64::MAX seconds: clamp first.
        let seconds = seconds.min(MAX_RETRY_AFTER.as_secs_f64());
        return Some(Duration::try_from_secs_f64(seconds).unwrap_or(MAX_RETRY_AFTER));
    }
    let at = parse_http_date(value)?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Parses an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`, and the two obsolete forms RFC 9110
/// asks recipients to accept).
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn retry_after_in_seconds_fractions_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 2.128 ", now),
            Some(Duration::from_millis(2128))
        );
        // RFC 9110's example date is 784111777 seconds after the epoch.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", now),
            None
        );
    }

    #[test]
    fn http_date_matches_known_epochs() {
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(951_825_600))
        );
    }

    #[test]
    fn backoff_grows_within_bounds() {
        let policy = RetryPolicy {
            max_attempts: 10,
            max_elapsed: Duration::from_secs(1_000),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1_000),
            max_wait: Duration::from_secs(60),
        };
        for attempt in 1..=12 {
            let full = (Duration::from_millis(100) * 2u32.pow(attempt.min(20) - 1))
                .min(Duration::from_millis(1_000));
            for _ in 0..50 {
                let delay = policy.backoff(attempt);
                assert!(
                    delay >= full / 2 && delay <= full,
                    "attempt {attempt}: {delay:?}"
                );
            }
        }
    }

    #[test]
    fn next_delay_stops_at_attempts_and_total_time() {
        let policy = RetryPolicy {
            max_attempts: 3,
            max_elapsed: Duration::from_secs(10),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_wait: Duration::from_secs(10),
        };
        assert_eq!(
            policy.next_delay(1, Duration::ZERO, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        // Retry-After longer than the backoff cap is honoured, within the total time.
        assert_eq!(
            policy.next_delay(1, Duration::ZERO, Some(Duration::from_secs(8))),
            Some(Duration::from_secs(8))
        );
        assert_eq!(
            policy.next_delay(1, Duration::ZERO, Some(Duration::from_secs(50))),
            None
        );
        assert_eq!(policy.next_delay(3, Duration::ZERO, None), None);
        assert_eq!(
            policy.next_delay(1, Duration::from_secs(9), Some(Duration::from_secs(2))),
            None
        );
    }

    #[test]
    fn named_throttle_waits_are_bounded_by_time_only() {
        let policy = RetryPolicy {
            max_attempts: 1,
            max_elapsed: Duration::from_secs(10),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_wait: Duration::from_secs(10),
        };
        assert_eq!(
            policy.next_delay(1, Duration::ZERO, Some(Duration::from_secs(2))),
            None
        );
        assert_eq!(
            policy.delay_after_throttle(Duration::from_secs(7), Duration::from_secs(2)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.delay_after_throttle(Duration::from_secs(9), Duration::from_secs(2)),
            None
        );
    }

    #[test]
    fn any_retry_after_reads_without_panic_and_within_a_day() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let day = Duration::from_secs(86_400);
        // Too long to be true: read as the longest wait there is, never a panic.
        assert_eq!(parse_retry_after("1e30", now), Some(day));
        assert_eq!(
            parse_retry_after("99999999999999999999999999", now),
            Some(day)
        );
        assert_eq!(parse_retry_after("86401", now), Some(day));
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(day)
        );
        // Unreadable: no wait named (the client backs off on its own).
        for value in [
            "-1",
            "NaN",
            "inf",
            "-inf",
            "",
            "soon",
            "1,5",
            "0x10",
            "\u{1F600}",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
        // Far in the past is now; the tiniest fraction is kept.
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("0.001", now),
            Some(Duration::from_millis(1))
        );
    }

    #[test]
    fn no_wait_is_longer_than_max_wait() {
        let policy = RetryPolicy {
            max_attempts: 10,
            max_elapsed: Duration::from_secs(3_600),
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(600),
            max_wait: Duration::from_secs(30),
        };
        // Graph asks for an hour: the client does not wait at all.
        assert_eq!(
            policy.delay_after_throttle(Duration::ZERO, Duration::from_secs(3_600)),
            None
        );
        assert_eq!(
            policy.next_delay(1, Duration::ZERO, Some(Duration::from_secs(31))),
            None
        );
        assert_eq!(
            policy.delay_after_throttle(Duration::ZERO, Duration::from_secs(30)),
            Some(Duration::from_secs(30))
        );
        // Backoff stays within max_wait even where max_delay allows more.
        for attempt in 1..=9 {
            assert!(policy.backoff(attempt) <= Duration::from_secs(30));
        }
        // The largest Retry-After there is, at the end of a long call: no overflow.
        assert_eq!(
            policy.delay_after_throttle(Duration::MAX, MAX_RETRY_AFTER),
            None
        );
    }
}
