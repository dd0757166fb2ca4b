//! B2B invitations (`POST /invitations`).

use serde::Serialize;

use super::GraphClient;
use super::error::GraphError;
use enroll_core::tenant::Invitation;

/// An invitation to send (graph.md §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewInvitation {
    /// The address to invite.
    pub invited_user_email_address: String,
    /// Where the person lands after redeeming.
    pub invite_redirect_url: String,
    /// The guest's display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invited_user_display_name: Option<String>,
    /// Whether Microsoft sends the invitation e-mail.
    pub send_invitation_message: bool,
}

impl GraphClient {
    /// Invites `invitations` as B2B guests through `$batch`, each answer on its own, in the
    /// order given, keyed by the invited address.
    ///
    /// Inviting an existing guest answers with that guest again; inviting a member fails
    /// with an error for which [`GraphError::is_existing_user_invitation`] holds. So does an
    /// invitation whose answer was lost when a user with the address is found afterwards;
    /// one not found is not sent again (see `crate::writes`).
    pub async fn invite(
        &self,
        invitations: &[NewInvitation],
    ) -> Vec<(String, Result<Invitation, GraphError>)> {
        let answers = self.write(invitations).await;
        invitations
            .iter()
            .zip(answers)
            .map(|(invitation, answer)| {
                let result =
                    answer.and_then(|response| decode_body("POST", "/invitations", response.body));
                (invitation.invited_user_email_address.clone(), result)
            })
            .collect()
    }
}

/// Reads a batched answer's body as `T`.
pub(crate) fn decode_body<T: serde::de::DeserializeOwned>(
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<T, GraphError> {
    serde_json::from_value(body).map_err(|source| GraphError::Decode {
        method: method.to_owned(),
        path: path.to_owned(),
        source: std::sync::Arc::new(source),
    })
}
