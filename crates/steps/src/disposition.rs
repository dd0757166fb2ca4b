//! The one error policy: what becomes of a queue message after a step ran on it. The
//! Functions handler, the one-process runner and the CLI's `roles apply` all ask
//! [`disposition`] and only carry the answer out (a 500 or the poison output; the runner's
//! queue; another try), so "retry, set aside or done" is decided in one place.

use super::{StepError, StepOutput};

/// Which delivery of a queue message this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 on the first delivery.
    pub number: u32,
    /// Whether the queue will give up after this one.
    pub last: bool,
}

impl Attempt {
    /// The attempt given a dequeue count and the most tries the queue makes.
    pub fn of(dequeue_count: u32, max_dequeue_count: u32) -> Self {
        Self {
            number: dequeue_count,
            last: dequeue_count >= max_dequeue_count,
        }
    }

    /// Whether a failure is tried again: only when another try can help and this is not
    /// the last one. Steps ask this for each person or change, [`disposition`] for the
    /// whole message.
    pub fn may_retry(self, retry_can_help: bool) -> bool {
        retry_can_help && !self.last
    }
}

/// What a caller does with a message after a step ran on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The step finished: its follow-up messages and logs go on.
    Done,
    /// Deliver the whole message again later. The step's output is dropped; the next try
    /// makes it again (steps are idempotent).
    RetryLater {
        /// Why: the step's error.
        reason: String,
        /// Not before this long from now, when Graph said so ([`StepError::retry_after`]);
        /// otherwise the caller's own delay (the queue's visibility timeout) applies.
        after: Option<std::time::Duration>,
    },
    /// Set aside for a person to look at (the poison queue); no further tries.
    SetAside {
        /// What is set aside.
        aside: Aside,
        /// Why: the step's error, or how many tries were made.
        reason: String,
    },
}

/// What of a message is set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aside {
    /// The whole message: the step failed and nothing of it goes on.
    Message,
    /// Only these people (their addresses as in the message): the step finished for the
    /// rest, and its follow-up messages and logs go on.
    People(Vec<String>),
}

/// Decides what becomes of a message from the step's result and the attempt:
///
/// - a failure that another try can help with, before the last try: [`Disposition::RetryLater`],
///   with how long Graph asked to wait when it did;
/// - a failure no try can help with, or any failure on the last try: the whole message is
///   set aside ([`Aside::Message`]);
/// - success, except for people given up on after their last try: just those are set aside
///   ([`Aside::People`]) and the rest goes on;
/// - success: [`Disposition::Done`].
///
/// Takes the step's output by reference so that every step's result fits
/// (`result.as_ref().map(|outcome| &outcome.output)` for Plan and MapRoles).
pub fn disposition(result: Result<&StepOutput, &StepError>, attempt: Attempt) -> Disposition {
    match result {
        Ok(output) if output.gave_up.is_empty() => Disposition::Done,
        Ok(output) => Disposition::SetAside {
            aside: Aside::People(output.gave_up.clone()),
            reason: format!("gave up after {} tries", attempt.number),
        },
        Err(error) if attempt.may_retry(error.is_retryable()) => Disposition::RetryLater {
            reason: error.to_string(),
            after: error.retry_after(),
        },
        Err(error) => Disposition::SetAside {
            aside: Aside::Message,
            reason: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StorageError;
    use crate::fake::{FIRST, LAST};
    use enroll_core::messages::MessageError;

    fn people_to_retry() -> StepError {
        StepError::PeopleToRetry {
            count: 1,
            first: "ann@contoso.com: throttled".into(),
            emails: vec!["ann@contoso.com".into()],
            retry_after: None,
        }
    }

    fn bad_message() -> StepError {
        StepError::Message(MessageError::Version { found: 9 })
    }

    #[test]
    fn the_last_try_is_the_one_the_queue_gives_up_after() {
        assert_eq!(Attempt::of(1, 5), FIRST);
        assert_eq!(Attempt::of(5, 5), LAST);
        // A message delivered more often than configured (settings changed) is past its last.
        assert!(Attempt::of(7, 5).last);
        assert!(FIRST.may_retry(true));
        assert!(!FIRST.may_retry(false));
        assert!(!LAST.may_retry(true));
    }

    #[test]
    fn a_finished_step_is_done() {
        let output = StepOutput {
            logs: vec!["Projects/Alpha.csv: 2 invited or found, 0 to retry".into()],
            ..StepOutput::default()
        };
        assert_eq!(disposition(Ok(&output), FIRST), Disposition::Done);
        assert_eq!(disposition(Ok(&output), LAST), Disposition::Done);
    }

    #[test]
    fn people_given_up_on_are_set_aside_alone() {
        let output = StepOutput {
            gave_up: vec!["ann@contoso.com".into(), "bo@fabrikam.com".into()],
            ..StepOutput::default()
        };
        assert_eq!(
            disposition(Ok(&output), LAST),
            Disposition::SetAside {
                aside: Aside::People(vec!["ann@contoso.com".into(), "bo@fabrikam.com".into()]),
                reason: "gave up after 5 tries".into(),
            }
        );
    }

    #[test]
    fn a_failure_a_retry_can_help_with_is_retried_before_the_last_try() {
        assert_eq!(
            disposition(Err(&people_to_retry()), FIRST),
            Disposition::RetryLater {
                reason: "1 of the message's people must be tried again: ann@contoso.com: throttled"
                    .into(),
                after: None,
            }
        );
        let storage = StepError::Storage(StorageError {
            message: "blob rosters/Alpha.csv: 503".into(),
            retryable: true,
        });
        assert_eq!(
            disposition(Err(&storage), Attempt::of(4, 5)),
            Disposition::RetryLater {
                reason: "storage: blob rosters/Alpha.csv: 503".into(),
                after: None,
            }
        );
    }

    #[test]
    fn a_wait_graph_asked_for_goes_with_the_retry() {
        let hour = std::time::Duration::from_secs(3_600);
        let people = StepError::PeopleToRetry {
            count: 1,
            first: "ann@contoso.com: throttled".into(),
            emails: vec!["ann@contoso.com".into()],
            retry_after: Some(hour),
        };
        assert!(matches!(
            disposition(Err(&people), FIRST),
            Disposition::RetryLater { after: Some(after), .. } if after == hour
        ));
        let mut throttled =
            crate::fake::graph_error(429, "TooManyRequests", "Please retry again later.");
        if let enroll_graph::GraphError::Status(status) = &mut throttled {
            status.retry_after = Some(hour);
        }
        let whole = StepError::Graph(throttled);
        assert_eq!(whole.retry_after(), Some(hour));
        assert!(matches!(
            disposition(Err(&whole), Attempt::of(2, 5)),
            Disposition::RetryLater { after: Some(after), ref reason }
                if after == hour && reason.contains("asked to wait 3600 s")
        ));
        // On the last try the message is set aside as before: a wait cannot help any more.
        assert!(matches!(
            disposition(Err(&whole), LAST),
            Disposition::SetAside {
                aside: Aside::Message,
                ..
            }
        ));
    }

    #[test]
    fn a_retryable_failure_on_the_last_try_sets_the_whole_message_aside() {
        assert_eq!(
            disposition(Err(&people_to_retry()), LAST),
            Disposition::SetAside {
                aside: Aside::Message,
                reason: "1 of the message's people must be tried again: ann@contoso.com: throttled"
                    .into(),
            }
        );
    }

    #[test]
    fn a_failure_no_retry_can_help_with_is_set_aside_at_once() {
        let expected = Disposition::SetAside {
            aside: Aside::Message,
            reason: "the message has version 9; this handler reads version 1".into(),
        };
        assert_eq!(disposition(Err(&bad_message()), FIRST), expected);
        assert_eq!(disposition(Err(&bad_message()), LAST), expected);
        let storage = StepError::Storage(StorageError {
            message: "blob rosters/Alpha.csv: 403 AuthorizationFailure".into(),
            retryable: false,
        });
        assert!(matches!(
            disposition(Err(&storage), FIRST),
            Disposition::SetAside {
                aside: Aside::Message,
                ..
            }
        ));
    }
}
