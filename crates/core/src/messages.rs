//! The messages steps pass through storage queues.
//!
//! Each is a small JSON document with a version, the run id, the roster blob and the ETag
//! the plan saw, and at most [`MAX_PEOPLE`] people, so that one message is one Graph `$batch`
//! and stays far below the 64 KiB queue limit (about 48 KiB after base64) whatever the
//! roster's size.

use serde::{Deserialize, Serialize};

use crate::plan::PackagePlan;

/// The message format version; a step refuses versions it does not know.
pub const VERSION: u32 = 1;
/// People per message: one Graph `$batch` holds 20 requests.
pub const MAX_PEOPLE: usize = 20;

/// Why a reconcile was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// A roster blob was written.
    Upload,
    /// The nightly timer.
    Schedule,
    /// Another system called the HTTP API.
    Api,
    /// A one-machine run (`enroll apply`).
    Cli,
}

/// Queue `reconcile`: plan one roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileMessage {
    /// Format version.
    pub v: u32,
    /// The run this belongs to.
    pub run_id: String,
    /// Roster blob name within the rosters container (`Catalog/Package.csv`).
    pub roster: String,
    /// The ETag of the blob that triggered this, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Why.
    pub reason: Reason,
    /// Whether the caller explicitly allowed removals past the guards (honoured only with
    /// `overrideBy` and `overrideReason`).
    #[serde(default)]
    pub allow_removals: bool,
    /// Whether the caller explicitly allowed additions past the addition guard (honoured
    /// only with `overrideBy` and `overrideReason`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_additions: bool,
    /// Who allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_by: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
}

/// Queue `map-roles`: bring one application's app roles and group assignments in line
/// with a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapRolesMessage {
    /// Format version.
    pub v: u32,
    /// The run this belongs to.
    pub run_id: String,
    /// Manifest blob name within the manifests container (`app.json`).
    pub manifest: String,
    /// The ETag of the blob that triggered this, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Why.
    pub reason: Reason,
    /// Whether the caller explicitly allowed removing roles that are still held.
    #[serde(default)]
    pub allow_role_removals: bool,
}

/// Reads a map-roles message.
///
/// # Errors
/// [`MessageError`] when it is malformed or of another version.
pub fn read_map_roles(text: &str) -> Result<MapRolesMessage, MessageError> {
    let message: MapRolesMessage =
        serde_json::from_str(text).map_err(|source| MessageError::Malformed {
            kind: "map-roles",
            source,
        })?;
    if message.v != VERSION {
        return Err(MessageError::Version { found: message.v });
    }
    Ok(message)
}

/// Where a change message comes from: which roster version and package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeContext {
    /// Format version.
    pub v: u32,
    /// The run this belongs to.
    pub run_id: String,
    /// Roster blob name.
    pub roster: String,
    /// The roster ETag the plan saw.
    pub etag: String,
    /// The access package.
    pub access_package_id: String,
    /// The policy for `adminAdd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_policy_id: Option<String>,
}

/// Someone to invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitePerson {
    /// Address.
    pub email: String,
    /// Display name for the invitation.
    pub display_name: String,
}

/// Someone to assign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignPerson {
    /// Address in the roster.
    pub email: String,
    /// The user's object id, when known (from the plan or the invitation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// An assignment to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovePerson {
    /// The holder's address.
    pub email: String,
    /// The holder's object id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The assignment to remove.
    pub assignment_id: String,
}

/// Queues `invite`, `assign` and `remove`: up to [`MAX_PEOPLE`] people for one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeMessage<P> {
    /// Where the change comes from.
    #[serde(flatten)]
    pub context: ChangeContext,
    /// The people.
    pub people: Vec<P>,
}

/// A message that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not JSON of the expected shape.
    #[error("the message is not a valid {kind} message: {source}")]
    Malformed {
        /// Which message kind.
        kind: &'static str,
        /// Cause.
        source: serde_json::Error,
    },
    /// A version this code does not know.
    #[error("the message has version {found}; this handler reads version {VERSION}")]
    Version {
        /// The version found.
        found: u32,
    },
    /// More people than one batch holds.
    #[error("the message holds {0} people; at most {MAX_PEOPLE} are allowed")]
    TooManyPeople(usize),
}

/// Reads a reconcile message.
///
/// # Errors
/// [`MessageError`] when it is malformed or of another version.
pub fn read_reconcile(text: &str) -> Result<ReconcileMessage, MessageError> {
    let message: ReconcileMessage =
        serde_json::from_str(text).map_err(|source| MessageError::Malformed {
            kind: "reconcile",
            source,
        })?;
    if message.v != VERSION {
        return Err(MessageError::Version { found: message.v });
    }
    Ok(message)
}

/// Reads a change message (`invite`, `assign` or `remove`).
///
/// # Errors
/// [`MessageError`] when it is malformed, of another version, or too big.
pub fn read_change<P: for<'de> Deserialize<'de>>(
    text: &str,
    kind: &'static str,
) -> Result<ChangeMessage<P>, MessageError> {
    let message: ChangeMessage<P> =
        serde_json::from_str(text).map_err(|source| MessageError::Malformed { kind, source })?;
    if message.context.v != VERSION {
        return Err(MessageError::Version {
            found: message.context.v,
        });
    }
    if message.people.len() > MAX_PEOPLE {
        return Err(MessageError::TooManyPeople(message.people.len()));
    }
    Ok(message)
}

/// The change messages of one package plan, at most [`MAX_PEOPLE`] people each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeMessages {
    /// For queue `invite`.
    pub invite: Vec<ChangeMessage<InvitePerson>>,
    /// For queue `assign`.
    pub assign: Vec<ChangeMessage<AssignPerson>>,
    /// For queue `remove`.
    pub remove: Vec<ChangeMessage<RemovePerson>>,
}

/// People split into messages of at most [`MAX_PEOPLE`], all with the same context.
pub fn chunked<P: Clone>(context: &ChangeContext, people: Vec<P>) -> Vec<ChangeMessage<P>> {
    people
        .chunks(MAX_PEOPLE)
        .map(|chunk| ChangeMessage {
            context: context.clone(),
            people: chunk.to_vec(),
        })
        .collect()
}

/// Splits a package plan into change messages; a blocked plan gives none.
pub fn change_messages(plan: &PackagePlan, run_id: &str, roster_blob: &str) -> ChangeMessages {
    if plan.blocked.is_some() {
        return ChangeMessages::default();
    }
    let context = ChangeContext {
        v: VERSION,
        run_id: run_id.to_owned(),
        roster: roster_blob.to_owned(),
        etag: plan.roster_version.clone(),
        access_package_id: plan.access_package.id.clone(),
        assignment_policy_id: plan.access_package.assignment_policy_id.clone(),
    };
    ChangeMessages {
        invite: chunked(
            &context,
            plan.invite
                .iter()
                .map(|i| InvitePerson {
                    email: i.email.clone(),
                    display_name: i.display_name.clone(),
                })
                .collect(),
        ),
        assign: chunked(
            &context,
            plan.assign
                .iter()
                .map(|a| AssignPerson {
                    email: a.email.clone(),
                    user_id: Some(a.user_id.clone()),
                })
                .collect(),
        ),
        remove: chunked(
            &context,
            plan.remove
                .iter()
                .map(|r| RemovePerson {
                    email: r.email.clone(),
                    user_id: r.user_id.clone(),
                    assignment_id: r.assignment_id.clone(),
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Invite, PackageRef, Remove};

    fn plan(invites: usize) -> PackagePlan {
        PackagePlan {
            roster: "Key Users.csv".into(),
            roster_version: "\"0x8DC\"".into(),
            access_package: PackageRef {
                id: "pkg".into(),
                display_name: "Key Users".into(),
                assignment_policy_id: Some("pol".into()),
            },
            invite: (0..invites)
                .map(|i| Invite {
                    // The longest address a roster accepts, and a long name.
                    email: format!("{i:03}{}@{}.com", "a".repeat(61), "b".repeat(186)),
                    display_name: "Ĳsbrand \"Zoë\" ".repeat(20),
                })
                .collect(),
            assign: Vec::new(),
            remove: vec![Remove {
                email: "x@y.com".into(),
                user_id: None,
                assignment_id: "as-1".into(),
                not_before: None,
            }],
            unchanged: 0,
            pending: 0,
            skipped: Vec::new(),
            current_members: 1,
            blocked: None,
            blocked_message: None,
            overridden: None,
            guards: Vec::new(),
            override_by: None,
            override_refused: None,
            kept: Vec::new(),
        }
    }

    #[test]
    fn plans_split_into_batches_of_twenty_that_fit_a_queue_message() {
        let messages = change_messages(&plan(41), "run-1", "Key Users.csv");
        let sizes: Vec<usize> = messages.invite.iter().map(|m| m.people.len()).collect();
        assert_eq!(sizes, [20, 20, 1]);
        for message in &messages.invite {
            let text = serde_json::to_string(message).unwrap();
            // Base64 grows text by a third; the queue holds 64 KiB.
            assert!(text.len() * 4 / 3 < 64 * 1024, "{} bytes", text.len());
            let back: ChangeMessage<InvitePerson> = read_change(&text, "invite").unwrap();
            assert_eq!(&back, message);
        }
        assert_eq!(messages.remove[0].people[0].assignment_id, "as-1");
        assert_eq!(messages.remove[0].context.etag, "\"0x8DC\"");
    }

    #[test]
    fn a_blocked_plan_sends_nothing() {
        let mut blocked = plan(3);
        blocked.blocked = Some(crate::plan::BlockReason::RemovalGuard);
        assert_eq!(
            change_messages(&blocked, "r", "k.csv"),
            ChangeMessages::default()
        );
    }

    #[test]
    fn unknown_versions_and_oversized_messages_are_refused() {
        let text = r#"{"v":2,"runId":"r","roster":"k.csv","reason":"upload"}"#;
        assert!(matches!(
            read_reconcile(text),
            Err(MessageError::Version { found: 2 })
        ));
        let mut message = change_messages(&plan(20), "r", "k.csv").invite.remove(0);
        message.people.push(message.people[0].clone());
        let text = serde_json::to_string(&message).unwrap();
        assert!(matches!(
            read_change::<InvitePerson>(&text, "invite"),
            Err(MessageError::TooManyPeople(21))
        ));
        assert!(
            read_reconcile("not json")
                .unwrap_err()
                .to_string()
                .contains("not a valid reconcile message")
        );
    }
}
