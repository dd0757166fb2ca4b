//! A message of one of the people queues (`invite`, `assign`, `remove`), whichever it is:
//! what the Functions handler and the one-process runner both carry from a queue to its step
//! and, when it is given up on, to the poison queue and the records.

use enroll_core::audit::AuditRecord;
use enroll_core::messages::{
    AssignPerson, ChangeMessage, InvitePerson, MessageError, RemovePerson, read_change,
};
use enroll_graph::Directory;
use serde::Serialize;

use super::{Attempt, Person, StepError, StepOutput, Storage, World};

/// A change message of one of the people queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Queue `invite`.
    Invite(ChangeMessage<InvitePerson>),
    /// Queue `assign`.
    Assign(ChangeMessage<AssignPerson>),
    /// Queue `remove`.
    Remove(ChangeMessage<RemovePerson>),
}

impl Change {
    /// Reads a message of `queue`; `None` when `queue` is not a people queue.
    pub fn read(queue: &str, text: &str) -> Option<Result<Self, MessageError>> {
        Some(match queue {
            "invite" => read_change(text, "invite").map(Self::Invite),
            "assign" => read_change(text, "assign").map(Self::Assign),
            "remove" => read_change(text, "remove").map(Self::Remove),
            _ => return None,
        })
    }

    /// Every change message a step handed on, in queue order.
    pub fn all_of(output: StepOutput) -> impl Iterator<Item = Self> {
        output
            .invite
            .into_iter()
            .map(Self::Invite)
            .chain(output.assign.into_iter().map(Self::Assign))
            .chain(output.remove.into_iter().map(Self::Remove))
    }

    /// The queue the message belongs to.
    pub fn queue(&self) -> &'static str {
        match self {
            Self::Invite(_) => "invite",
            Self::Assign(_) => "assign",
            Self::Remove(_) => "remove",
        }
    }

    /// The roster the message acts for.
    pub fn roster(&self) -> &str {
        match self {
            Self::Invite(m) => &m.context.roster,
            Self::Assign(m) => &m.context.roster,
            Self::Remove(m) => &m.context.roster,
        }
    }

    /// How many people the message holds.
    pub fn people(&self) -> usize {
        match self {
            Self::Invite(m) => m.people.len(),
            Self::Assign(m) => m.people.len(),
            Self::Remove(m) => m.people.len(),
        }
    }

    /// Runs the message's step.
    ///
    /// # Errors
    /// [`StepError`] when the whole message must be tried again (or set aside).
    pub async fn run<S: Storage, D: Directory>(
        &self,
        world: &World<S, D>,
        attempt: Attempt,
    ) -> Result<StepOutput, StepError> {
        match self {
            Self::Invite(message) => super::invite(world, message, attempt).await,
            Self::Assign(message) => super::assign(world, message, attempt).await,
            Self::Remove(message) => super::remove(world, message, attempt).await,
        }
    }

    /// Records everyone in the message as failed, because it is given up on as a whole
    /// (see [`super::record_set_aside`]).
    ///
    /// # Errors
    /// [`StepError::Storage`] when the records cannot be written.
    pub async fn record_set_aside<S: Storage, D: Directory>(
        &self,
        world: &World<S, D>,
        reason: &str,
    ) -> Result<Vec<AuditRecord>, StepError> {
        match self {
            Self::Invite(message) => super::record_set_aside(world, message, reason).await,
            Self::Assign(message) => super::record_set_aside(world, message, reason).await,
            Self::Remove(message) => super::record_set_aside(world, message, reason).await,
        }
    }

    /// The same message with only the people with these addresses: what goes to the poison
    /// queue when the step finished for the rest.
    pub fn only(&self, emails: &[String]) -> Self {
        fn keep<P: Person + Clone>(
            message: &ChangeMessage<P>,
            emails: &[String],
        ) -> ChangeMessage<P> {
            ChangeMessage {
                context: message.context.clone(),
                people: message
                    .people
                    .iter()
                    .filter(|p| emails.iter().any(|email| email == p.email()))
                    .cloned()
                    .collect(),
            }
        }
        match self {
            Self::Invite(m) => Self::Invite(keep(m, emails)),
            Self::Assign(m) => Self::Assign(keep(m, emails)),
            Self::Remove(m) => Self::Remove(keep(m, emails)),
        }
    }
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Invite(m) => m.serialize(serializer),
            Self::Assign(m) => m.serialize(serializer),
            Self::Remove(m) => m.serialize(serializer),
        }
    }
}
