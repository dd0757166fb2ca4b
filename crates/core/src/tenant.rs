//! The tenant as Microsoft Graph describes it: users, access packages with their
//! assignment policies, assignments and open assignment requests.
//!
//! Every type keeps Graph's own JSON field names (v1.0), so a snapshot can be written
//! straight from Graph responses (`$expand=assignmentPolicies`, `$expand=target,accessPackage`)
//! and read back for offline planning. Unknown fields are ignored and `null` collections read
//! as empty, because Graph sends both depending on `$select`.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

use crate::roster::same_address;

/// Reads a JSON `null` as the type's default (Graph sends `null` for empty collections).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Everything the planner needs to know about a tenant, in Graph's shapes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSnapshot {
    /// Users (`GET /users?$select=id,displayName,mail,otherMails,proxyAddresses,userPrincipalName,userType`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub users: Vec<User>,
    /// Access packages with `$expand=assignmentPolicies` (and optionally `catalog`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub access_packages: Vec<AccessPackage>,
    /// Assignments with `$expand=target,accessPackage,assignmentPolicy`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignments: Vec<Assignment>,
    /// Assignment requests that are still open (`submitted`, `pendingApproval`, `delivering`, `scheduled`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignment_requests: Vec<AssignmentRequest>,
    /// Access package catalogs, to resolve a catalog named by display name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub catalogs: Vec<Catalog>,
    /// Applications with their app roles (`$select=id,appId,displayName,appRoles`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub applications: Vec<Application>,
    /// Service principals (the resource of app role assignments).
    #[serde(default, deserialize_with = "null_as_default")]
    pub service_principals: Vec<ServicePrincipal>,
    /// Groups that hold app roles.
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<Group>,
    /// App role assignments (`/servicePrincipals/{id}/appRoleAssignedTo`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub app_role_assignments: Vec<AppRoleAssignment>,
}

/// A directory user (`microsoft.graph.user`), the fields used for matching e-mails.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Object id.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// User principal name; a B2B guest's has the form `a_example.com#EXT#@tenant.onmicrosoft.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// Primary SMTP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    /// Additional e-mail addresses (an invited guest's invitation address is here too).
    #[serde(default, deserialize_with = "null_as_default")]
    pub other_mails: Vec<String>,
    /// Exchange's addresses, with their type: `SMTP:` the primary, `smtp:` aliases (others,
    /// such as `x500:` or `sip:`, are not e-mail addresses).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub proxy_addresses: Vec<String>,
    /// `Member` or `Guest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
}

impl User {
    /// Every address the user is known by, as written: `mail`, `userPrincipalName` and the
    /// external address inside a guest's `#EXT#` form of it, `otherMails`, and the SMTP
    /// `proxyAddresses` without their `smtp:` prefix. May repeat an address.
    pub fn addresses(&self) -> impl Iterator<Item = Cow<'_, str>> {
        let upn = self.user_principal_name.as_deref();
        self.mail
            .as_deref()
            .into_iter()
            .chain(upn)
            .map(Cow::Borrowed)
            .chain(upn.and_then(guest_upn_email).map(Cow::Owned))
            .chain(self.other_mails.iter().map(|m| Cow::Borrowed(m.as_str())))
            .chain(
                self.proxy_addresses
                    .iter()
                    .filter_map(|p| smtp_address(p))
                    .map(Cow::Borrowed),
            )
    }

    /// Whether the user is known by `email` under any of [`User::addresses`], compared by
    /// the one rule ([`crate::roster::email_key`]).
    pub fn answers_to(&self, email: &str) -> bool {
        self.addresses()
            .any(|address| same_address(&address, email.trim()))
    }
}

/// The address of an SMTP proxy address (`SMTP:a@b.com` primary, `smtp:a@b.com` alias;
/// Graph's own documentation writes them with a space after the colon, so it is trimmed).
pub fn smtp_address(proxy: &str) -> Option<&str> {
    let (kind, address) = proxy.split_once(':')?;
    kind.trim()
        .eq_ignore_ascii_case("smtp")
        .then_some(address.trim())
}

/// The external address inside a B2B guest's UPN: `jane_example.com#EXT#@t.onmicrosoft.com` → `jane@example.com`.
pub fn guest_upn_email(upn: &str) -> Option<String> {
    let (mangled, _) = upn.split_once("#EXT#")?;
    // A domain has no `_`, so the last one is where the `@` was.
    let cut = mangled.rfind('_')?;
    Some(format!("{}@{}", &mangled[..cut], &mangled[cut + 1..]))
}

/// An access package catalog (`microsoft.graph.accessPackageCatalog`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// Catalog id.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// An access package (`microsoft.graph.accessPackage`) with its assignment policies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPackage {
    /// Access package id.
    pub id: String,
    /// Display name; not unique in Entra, so matching must detect ambiguity.
    #[serde(default)]
    pub display_name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The catalog holding the package (`$expand=catalog`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Catalog>,
    /// Assignment policies (`$expand=assignmentPolicies`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignment_policies: Vec<AssignmentPolicy>,
}

/// An assignment policy (`microsoft.graph.accessPackageAssignmentPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentPolicy {
    /// Policy id.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Who may be assigned: `notSpecified` is the portal's "None (administrator direct assignments only)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_target_scope: Option<String>,
    /// Present only on automatic-assignment policies, which admins cannot assign through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_request_settings: Option<serde_json::Value>,
}

/// A reference to another object by id, as `$expand` returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Object id.
    pub id: String,
    /// Display name, when Graph includes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The subject of an assignment (`microsoft.graph.accessPackageSubject`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// Subject id (not the user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The user's object id; `null` until an external person exists in the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// User principal name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_name: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// An access package assignment (`microsoft.graph.accessPackageAssignment`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// Assignment id (what `adminRemove` takes).
    pub id: String,
    /// `delivering`, `partiallyDelivered`, `delivered`, `expired`, `deliveryFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Free-text status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Who holds it (`$expand=target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Subject>,
    /// Which package (`$expand=accessPackage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_package: Option<ObjectRef>,
    /// Through which policy (`$expand=assignmentPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_policy: Option<ObjectRef>,
}

impl Assignment {
    /// Whether the assignment gives (or is about to give) access: delivering, partially delivered or delivered.
    pub fn is_active(&self) -> bool {
        // Graph sends the v1.0 enum spelling; other cases (older docs show `Delivered`) are
        // accepted too, at the cost of a second look.
        match self.state.as_deref() {
            Some("delivered" | "delivering" | "partiallyDelivered") => true,
            Some(state) => ["delivering", "partiallyDelivered", "delivered"]
                .iter()
                .any(|active| state.eq_ignore_ascii_case(active)),
            None => false,
        }
    }
}

/// The assignment an assignment request is about, as v1.0 and the older beta shape send it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedAssignment {
    /// Existing assignment id (remove and update requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Target user's object id (`adminAdd` body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Expanded target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Subject>,
    /// Access package id (`adminAdd` body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_package_id: Option<String>,
    /// Assignment policy id (`adminAdd` body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_policy_id: Option<String>,
}

/// An assignment request (`microsoft.graph.accessPackageAssignmentRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentRequest {
    /// Request id.
    pub id: String,
    /// `adminAdd`, `adminRemove`, `userAdd`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_type: Option<String>,
    /// `submitted`, `pendingApproval`, `delivering`, `delivered`, `deliveryFailed`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The package (`$expand=accessPackage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_package: Option<ObjectRef>,
    /// The assignment (`$expand=assignment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<RequestedAssignment>,
    /// Who the request is for, where a snapshot names it (Graph's v1.0 request has no such
    /// property; see [`AssignmentRequest::requestor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Subject>,
    /// `$expand=requestor`: "the subject who requested or, if a direct assignment, was
    /// assigned" (v1.0), so for an `adminAdd` or `adminRemove`, and a user's own request,
    /// the person concerned; an expanded `assignment` does not carry its target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requestor: Option<Subject>,
    /// When the request was made (`createdDateTime`, RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    /// When the request ended (`completedDateTime`, RFC 3339), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_date_time: Option<String>,
}

impl AssignmentRequest {
    /// Whether the request is still open: it will yet change an assignment.
    pub fn is_open(&self) -> bool {
        self.state.as_deref().is_some_and(|state| {
            ["submitted", "pendingApproval", "delivering", "scheduled"]
                .iter()
                .any(|open| state.eq_ignore_ascii_case(open))
        })
    }

    /// Whether the request is under way (`submitted`, `delivering`): the open states enroll's
    /// own requests pass through. A plan counts a person with such an add as pending; one
    /// whose request waits in `pendingApproval` or `scheduled` is planned to be assigned,
    /// and Graph's "existing open request" answer to that is already done.
    pub fn is_under_way(&self) -> bool {
        self.state.as_deref().is_some_and(|state| {
            ["submitted", "delivering"]
                .iter()
                .any(|open| state.eq_ignore_ascii_case(open))
        })
    }

    /// Whether the request adds access (`adminAdd`, `userAdd`, `systemAdd`).
    pub fn is_add(&self) -> bool {
        self.request_type
            .as_deref()
            .is_some_and(|kind| kind.to_ascii_lowercase().ends_with("add"))
    }

    /// The id of the package the request is for, from either shape.
    pub fn access_package_id(&self) -> Option<&str> {
        self.access_package
            .as_ref()
            .map(|package| package.id.as_str())
            .or_else(|| self.assignment.as_ref()?.access_package_id.as_deref())
    }

    /// The object id of the user the request is for, from either shape.
    pub fn target_object_id(&self) -> Option<&str> {
        let assignment = self.assignment.as_ref();
        assignment
            .and_then(|a| a.target_id.as_deref())
            .or_else(|| assignment?.target.as_ref()?.object_id.as_deref())
            .or_else(|| self.target.as_ref()?.object_id.as_deref())
            .or_else(|| self.requestor.as_ref()?.object_id.as_deref())
    }
}

/// An app role (`microsoft.graph.appRole`) of an application or service principal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    /// Who may hold the role: `User` (users and groups), `Application`, or both.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_member_types: Vec<String>,
    /// Description shown in consent and assignment screens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Role id, chosen by the caller and stable forever.
    pub id: String,
    /// Whether the role can be assigned; a role must be disabled before it is removed.
    #[serde(default)]
    pub is_enabled: bool,
    /// `Application` for roles defined on the application (read-only in Graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The value that appears in the token's `roles` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// An application registration (`microsoft.graph.application`), the fields app-role sync uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Object id (what `PATCH /applications/{id}` takes).
    pub id: String,
    /// Application (client) id.
    pub app_id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The app roles the application defines.
    #[serde(default, deserialize_with = "null_as_default")]
    pub app_roles: Vec<AppRole>,
}

/// A service principal (`microsoft.graph.servicePrincipal`): the application's enterprise app in the tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// Object id (the `resourceId` of app role assignments).
    pub id: String,
    /// Application (client) id of the application it instantiates.
    pub app_id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// App roles, as published from the application.
    #[serde(default, deserialize_with = "null_as_default")]
    pub app_roles: Vec<AppRole>,
}

/// A group (`microsoft.graph.group`), the fields app-role mapping uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Object id.
    pub id: String,
    /// Display name; not unique in Entra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether it is a security group (only security groups can hold app roles for their members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_enabled: Option<bool>,
    /// Whether it is mail-enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_enabled: Option<bool>,
    /// Mail alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_nickname: Option<String>,
}

/// An app role assignment (`microsoft.graph.appRoleAssignment`): a principal holds an app role of a resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    /// Assignment id (an opaque string, not a GUID).
    pub id: String,
    /// The app role's id; all zeros is "default access".
    pub app_role_id: String,
    /// The group, user or service principal holding the role.
    pub principal_id: String,
    /// `User`, `Group` or `ServicePrincipal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    /// The principal's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_display_name: Option<String>,
    /// The resource service principal's id.
    pub resource_id: String,
    /// The resource's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_display_name: Option<String>,
    /// When the assignment was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
}

/// A B2B invitation as Graph answers `POST /invitations` (`microsoft.graph.invitation`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    /// Invitation id.
    #[serde(default)]
    pub id: String,
    /// The address invited.
    #[serde(default)]
    pub invited_user_email_address: String,
    /// Display name given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_display_name: Option<String>,
    /// Where the person lands after redeeming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_redirect_url: Option<String>,
    /// The redemption link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_redeem_url: Option<String>,
    /// `PendingAcceptance`, `Completed`, `InProgress` or `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The guest user (its `id` is the user object id to use everywhere else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user: Option<ObjectRef>,
}

#[cfg(test)]
mod state_tests {
    use super::*;

    #[test]
    fn a_user_is_known_by_every_address() {
        let user = User {
            id: "u".into(),
            mail: Some("Jane.Doe@Contoso.com".into()),
            user_principal_name: Some("jane_example.org#EXT#@contoso.onmicrosoft.com".into()),
            other_mails: vec!["jd@old.example".into()],
            proxy_addresses: vec![
                "SMTP:Jane.Doe@Contoso.com".into(),
                "smtp: ĳsbrand@contoso.nl".into(),
                "x500:/o=ExchangeLabs/cn=jane".into(),
                "SIP:jane@contoso.com".into(),
            ],
            ..User::default()
        };
        for known in [
            "jane.doe@contoso.com",
            "JANE_EXAMPLE.ORG#EXT#@contoso.onmicrosoft.com",
            "jane@example.org",
            "JD@old.example",
            "Ĳsbrand@Contoso.nl",
        ] {
            assert!(user.answers_to(known), "{known}");
        }
        for unknown in [
            "jane@contoso.com",
            "/o=ExchangeLabs/cn=jane",
            "x500:/o=ExchangeLabs/cn=jane",
        ] {
            assert!(!user.answers_to(unknown), "{unknown}");
        }
    }

    #[test]
    fn active_states_in_any_spelling() {
        let with = |state: Option<&str>| Assignment {
            state: state.map(str::to_owned),
            ..Assignment::default()
        };
        for active in [
            "delivered",
            "Delivered",
            "delivering",
            "partiallyDelivered",
            "PARTIALLYDELIVERED",
        ] {
            assert!(with(Some(active)).is_active(), "{active}");
        }
        for inactive in [Some("expired"), Some("deliveryFailed"), None] {
            assert!(!with(inactive).is_active(), "{inactive:?}");
        }
    }
}
