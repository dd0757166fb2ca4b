//! The simulated tenant's objects, their JSON in Graph's v1.0 shapes, and conversion from and
//! to [`TenantSnapshot`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use serde_json::{Map, Value, json};

use enroll_core::roster::{email_key, same_address};
use enroll_core::tenant::{
    AccessPackage, AppRole, AppRoleAssignment, Application, Assignment, AssignmentPolicy,
    AssignmentRequest, Catalog, Group, ObjectRef, RequestedAssignment, ServicePrincipal, Subject,
    TenantSnapshot, User,
};

use crate::filter::Named;

/// Properties Graph returns for a user when the request has no `$select`.
pub(crate) const USER_DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

#[derive(Debug, Clone)]
pub(crate) struct UserRec {
    pub(crate) id: String,
    pub(crate) display_name: Option<String>,
    pub(crate) upn: String,
    pub(crate) mail: Option<String>,
    pub(crate) other_mails: Vec<String>,
    /// Exchange's addresses with their type (`SMTP:` primary, `smtp:` aliases).
    pub(crate) proxy_addresses: Vec<String>,
    pub(crate) user_type: String,
    pub(crate) external_user_state: Option<String>,
    pub(crate) creation_type: Option<String>,
    pub(crate) created: Option<String>,
    /// Until when the user is invisible to `$filter` and entitlement management (replication).
    pub(crate) hidden_until: Option<Instant>,
}

impl UserRec {
    pub(crate) fn visible(&self, now: Instant) -> bool {
        self.hidden_until.is_none_or(|t| now >= t)
    }

    /// Every property the simulator holds, for `$select` and `$filter`.
    pub(crate) fn full_json(&self) -> Value {
        json!({
            "id": self.id,
            "businessPhones": [],
            "identities": [],
            "displayName": self.display_name,
            "givenName": null,
            "jobTitle": null,
            "mail": self.mail,
            "mobilePhone": null,
            "officeLocation": null,
            "preferredLanguage": null,
            "surname": null,
            "userPrincipalName": self.upn,
            "otherMails": self.other_mails,
            "proxyAddresses": self.proxy_addresses,
            "userType": self.user_type,
            "externalUserState": self.external_user_state,
            "creationType": self.creation_type,
            "accountEnabled": true,
            "createdDateTime": self.created,
            "mailNickname": self.upn.split('@').next().unwrap_or_default(),
        })
    }

    fn from_snapshot(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            display_name: user.display_name.clone(),
            upn: user
                .user_principal_name
                .clone()
                .unwrap_or_else(|| format!("{}@sim.onmicrosoft.com", user.id)),
            mail: user.mail.clone(),
            other_mails: user.other_mails.clone(),
            proxy_addresses: user.proxy_addresses.clone(),
            user_type: user
                .user_type
                .clone()
                .unwrap_or_else(|| "Member".to_owned()),
            external_user_state: None,
            creation_type: None,
            created: None,
            hidden_until: None,
        }
    }

    /// Whether the user is known by `email` (mail, principal name and its guest form, other
    /// mails, SMTP proxy addresses), by the one rule Entra compares addresses with.
    pub(crate) fn answers_to(&self, email: &str) -> bool {
        self.to_snapshot().answers_to(email)
    }

    fn to_snapshot(&self) -> User {
        User {
            id: self.id.clone(),
            display_name: self.display_name.clone(),
            user_principal_name: Some(self.upn.clone()),
            mail: self.mail.clone(),
            other_mails: self.other_mails.clone(),
            proxy_addresses: self.proxy_addresses.clone(),
            user_type: Some(self.user_type.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CatalogRec {
    pub(crate) id: String,
    pub(crate) display_name: Option<String>,
}

impl CatalogRec {
    pub(crate) fn json(&self) -> Value {
        json!({
            "id": self.id,
            "displayName": self.display_name,
            "description": null,
            "catalogType": "userManaged",
            "state": "published",
            "isExternallyVisible": false,
            "createdDateTime": null,
            "modifiedDateTime": null,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PolicyRec {
    pub(crate) id: String,
    pub(crate) display_name: Option<String>,
    pub(crate) allowed_target_scope: String,
    pub(crate) automatic_request_settings: Option<Value>,
}

impl PolicyRec {
    pub(crate) fn json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "displayName": self.display_name,
            "description": null,
            "allowedTargetScope": self.allowed_target_scope,
            "specificAllowedTargets": [],
            "expiration": { "endDateTime": null, "duration": null, "type": "noExpiration" },
            "createdDateTime": null,
            "modifiedDateTime": null,
        });
        // The schema does not allow null here: the property is absent unless the policy
        // assigns automatically.
        if let (Some(settings), Some(obj)) = (&self.automatic_request_settings, v.as_object_mut()) {
            obj.insert("automaticRequestSettings".to_owned(), settings.clone());
        }
        v
    }

    /// Whether an administrator may assign a user of `user_type` through this policy, and if
    /// not, Graph's message.
    pub(crate) fn admits(&self, user_type: &str) -> Result<(), &'static str> {
        if self.automatic_request_settings.is_some() {
            return Err("Assignments through an automatic assignment policy cannot be requested.");
        }
        let guest = user_type.eq_ignore_ascii_case("Guest");
        let ok = match self.allowed_target_scope.as_str() {
            "notSpecified" | "specificDirectoryUsers" | "allDirectoryUsers" => true,
            "allMemberUsers" => !guest,
            "allExternalUsers"
            | "allConfiguredConnectedOrganizationUsers"
            | "specificConnectedOrganizationUsers" => guest,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err("You don't meet policy requirements to request this entitlement.")
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PackageRec {
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) description: Option<String>,
    pub(crate) catalog_id: Option<String>,
    pub(crate) policies: Vec<PolicyRec>,
}

impl PackageRec {
    /// The package without navigation properties.
    pub(crate) fn json(&self) -> Value {
        json!({
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "isHidden": false,
            "createdDateTime": null,
            "modifiedDateTime": null,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SubjectRec {
    pub(crate) id: String,
    pub(crate) object_id: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) principal_name: Option<String>,
    pub(crate) display_name: Option<String>,
}

impl SubjectRec {
    /// The subject a user is to entitlement management, with subject id `id`.
    pub(crate) fn of_user(id: String, user: &UserRec) -> Self {
        Self {
            id,
            object_id: Some(user.id.clone()),
            email: user.mail.clone(),
            principal_name: Some(user.upn.clone()),
            display_name: user.display_name.clone(),
        }
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "id": self.id,
            "objectId": self.object_id,
            "displayName": self.display_name,
            "email": self.email,
            "principalName": self.principal_name,
            "onPremisesSecurityIdentifier": null,
            "subjectType": "user",
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AssignmentRec {
    pub(crate) id: String,
    pub(crate) state: String,
    pub(crate) target: SubjectRec,
    pub(crate) package_id: String,
    pub(crate) policy_id: Option<String>,
    pub(crate) start: Option<String>,
    pub(crate) expired: Option<String>,
}

impl AssignmentRec {
    pub(crate) fn is_active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "delivered" | "delivering" | "partiallyDelivered"
        )
    }

    /// The assignment without navigation properties.
    pub(crate) fn json(&self) -> Value {
        let status = match self.state.as_str() {
            "delivered" => "Delivered",
            "delivering" => "Delivering",
            "expired" => "Expired",
            "deliveryFailed" => "DeliveryFailed",
            _ => "Unknown",
        };
        json!({
            "id": self.id,
            "state": self.state,
            "status": status,
            "expiredDateTime": self.expired,
            "schedule": schedule(self.start.clone()),
        })
    }
}

pub(crate) fn schedule(start: Option<String>) -> Value {
    json!({
        "startDateTime": start,
        "recurrence": null,
        "expiration": { "endDateTime": null, "duration": null, "type": "notSpecified" },
    })
}

#[derive(Debug, Clone)]
pub(crate) struct RequestRec {
    pub(crate) id: String,
    pub(crate) request_type: String,
    pub(crate) state: String,
    pub(crate) created: Option<String>,
    pub(crate) completed: Option<String>,
    pub(crate) package_id: String,
    pub(crate) policy_id: Option<String>,
    pub(crate) target_object_id: Option<String>,
    /// The assignment removed (adminRemove) or added (adminAdd; it exists from the moment
    /// the request is accepted, `delivering` until the request is delivered).
    pub(crate) assignment_id: Option<String>,
    pub(crate) submitted_at: Instant,
    /// How delivery ends ([`crate::SimConfig::delivery_failure_rate`] and
    /// [`crate::SimConfig::delivery_stuck_rate`]).
    pub(crate) fate: Fate,
}

/// How an assignment request's delivery ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Delivered after the delivery delay.
    Deliver,
    /// `deliveryFailed` after the delivery delay.
    Fail,
    /// `delivering` until reprocessed.
    Stick,
}

impl RequestRec {
    /// The request in the snapshot's shape.
    pub(crate) fn to_request(&self) -> AssignmentRequest {
        AssignmentRequest {
            id: self.id.clone(),
            request_type: Some(self.request_type.clone()),
            state: Some(self.state.clone()),
            access_package: Some(ObjectRef {
                id: self.package_id.clone(),
                display_name: None,
            }),
            assignment: Some(RequestedAssignment {
                id: self.assignment_id.clone(),
                target_id: self.target_object_id.clone(),
                target: None,
                access_package_id: Some(self.package_id.clone()),
                assignment_policy_id: self.policy_id.clone(),
            }),
            target: None,
            requestor: None,
            created_date_time: self.created.clone(),
            completed_date_time: self.completed.clone(),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(
            self.state.as_str(),
            "submitted" | "pendingApproval" | "delivering" | "scheduled"
        )
    }

    /// The request without navigation properties.
    pub(crate) fn json(&self) -> Value {
        let status = match self.state.as_str() {
            "submitted" => "Accepted",
            "delivering" => "Delivering",
            "delivered" => "Delivered",
            "deliveryFailed" => "DeliveryFailed",
            _ => "Unknown",
        };
        json!({
            "id": self.id,
            "requestType": self.request_type,
            "state": self.state,
            "status": status,
            "createdDateTime": self.created,
            "completedDateTime": self.completed,
            "schedule": schedule(self.created.clone()),
        })
    }
}

pub(crate) fn app_role_json(role: &AppRole) -> Value {
    json!({
        "allowedMemberTypes": role.allowed_member_types,
        "description": role.description,
        "displayName": role.display_name,
        "id": role.id,
        "isEnabled": role.is_enabled,
        "origin": role.origin.clone().unwrap_or_else(|| "Application".to_owned()),
        "value": role.value,
    })
}

pub(crate) fn application_json(app: &Application) -> Value {
    json!({
        "id": app.id,
        "deletedDateTime": null,
        "appId": app.app_id,
        "displayName": app.display_name,
        "signInAudience": "AzureADMyOrg",
        "identifierUris": [],
        "tags": [],
        "appRoles": app.app_roles.iter().map(app_role_json).collect::<Vec<_>>(),
    })
}

pub(crate) fn service_principal_json(sp: &ServicePrincipal, roles: &[AppRole]) -> Value {
    json!({
        "id": sp.id,
        "deletedDateTime": null,
        "accountEnabled": true,
        "appDisplayName": sp.display_name,
        "appId": sp.app_id,
        "appRoleAssignmentRequired": false,
        "displayName": sp.display_name,
        "servicePrincipalNames": [sp.app_id],
        "servicePrincipalType": "Application",
        "tags": [],
        "appRoles": roles.iter().map(app_role_json).collect::<Vec<_>>(),
        // The rest of Graph's default property set, empty: the simulator does not model them.
        "addIns": [],
        "alternativeNames": [],
        "appOwnerOrganizationId": null,
        "disabledByMicrosoftStatus": null,
        "endpoints": [],
        "homepage": null,
        "info": {
            "logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null,
            "supportUrl": null, "termsOfServiceUrl": null,
        },
        "keyCredentials": [],
        "logoutUrl": null,
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
        "publisherName": null,
        "replyUrls": [],
        "resourceSpecificApplicationPermissions": [],
        "signInAudience": "AzureADMyOrg",
        "tokenEncryptionKeyId": null,
        "verifiedPublisher": { "addedDateTime": null, "displayName": null, "verifiedPublisherId": null },
    })
}

pub(crate) fn group_json(group: &Group) -> Value {
    json!({
        "id": group.id,
        "deletedDateTime": null,
        "createdDateTime": null,
        "description": group.description,
        "displayName": group.display_name,
        "groupTypes": [],
        "mail": null,
        "mailEnabled": group.mail_enabled.unwrap_or(false),
        "mailNickname": group.mail_nickname,
        "securityEnabled": group.security_enabled.unwrap_or(true),
        "visibility": null,
    })
}

pub(crate) fn app_role_assignment_json(a: &AppRoleAssignment) -> Value {
    json!({
        "id": a.id,
        "deletedDateTime": null,
        "appRoleId": a.app_role_id,
        "createdDateTime": a.created_date_time,
        "principalDisplayName": a.principal_display_name,
        "principalId": a.principal_id,
        "principalType": a.principal_type,
        "resourceDisplayName": a.resource_display_name,
        "resourceId": a.resource_id,
    })
}

/// The whole simulated directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tenant {
    /// Users, in the order lists give them; add one with [`Tenant::add_user`], which keeps
    /// `user_keys` up to date.
    pub(crate) users: Vec<UserRec>,
    /// Positions in `users` by every key a lookup names a user by (see [`user_keys`]), so a
    /// lookup reads the few users it names instead of the whole directory.
    user_keys: HashMap<String, Vec<usize>>,
    /// Positions in `users` by principal name's key, sorted, so a `startswith` on principal
    /// names (how a guest's `…#EXT#@` name is looked up) reads a range, not the directory.
    principal_names: BTreeMap<String, Vec<usize>>,
    pub(crate) catalogs: Vec<CatalogRec>,
    pub(crate) packages: Vec<PackageRec>,
    pub(crate) assignments: Vec<AssignmentRec>,
    pub(crate) requests: Vec<RequestRec>,
    pub(crate) applications: Vec<Application>,
    pub(crate) service_principals: Vec<ServicePrincipal>,
    pub(crate) groups: Vec<Group>,
    pub(crate) app_role_assignments: Vec<AppRoleAssignment>,
}

/// The key of a value a lookup names a user by: an `smtp:` proxy address without its type,
/// anything else as it is, folded by the address rule ([`email_key`]), under which two
/// values compare equal exactly when their keys are equal.
fn lookup_key(value: &str) -> String {
    let address = match value.get(..5) {
        Some(kind) if kind.eq_ignore_ascii_case("smtp:") => &value[5..],
        _ => value,
    };
    email_key(address)
}

/// Every key a lookup may find `user` by: its id, principal name, mail, other mails and
/// proxy addresses.
fn user_keys(user: &UserRec) -> impl Iterator<Item = String> + '_ {
    [user.id.as_str(), user.upn.as_str()]
        .into_iter()
        .chain(user.mail.as_deref())
        .chain(user.other_mails.iter().map(String::as_str))
        .chain(user.proxy_addresses.iter().map(String::as_str))
        .map(lookup_key)
}

fn unique<'a>(kind: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id.to_ascii_lowercase()) {
            return Err(format!("two {kind} have the id {id}"));
        }
    }
    Ok(())
}

impl Tenant {
    pub(crate) fn from_snapshot(snapshot: &TenantSnapshot, now: Instant) -> Result<Self, String> {
        unique("users", snapshot.users.iter().map(|u| u.id.as_str()))?;
        unique(
            "access packages",
            snapshot.access_packages.iter().map(|p| p.id.as_str()),
        )?;
        unique(
            "assignments",
            snapshot.assignments.iter().map(|a| a.id.as_str()),
        )?;
        unique(
            "applications",
            snapshot.applications.iter().map(|a| a.id.as_str()),
        )?;
        unique(
            "service principals",
            snapshot.service_principals.iter().map(|a| a.id.as_str()),
        )?;
        unique("groups", snapshot.groups.iter().map(|a| a.id.as_str()))?;
        let mut catalogs: Vec<CatalogRec> = snapshot
            .catalogs
            .iter()
            .map(|c| CatalogRec {
                id: c.id.clone(),
                display_name: c.display_name.clone(),
            })
            .collect();
        for package in &snapshot.access_packages {
            if let Some(c) = &package.catalog
                && !catalogs.iter().any(|k| k.id == c.id)
            {
                catalogs.push(CatalogRec {
                    id: c.id.clone(),
                    display_name: c.display_name.clone(),
                });
            }
        }
        unique("catalogs", catalogs.iter().map(|c| c.id.as_str()))?;
        let packages = snapshot
            .access_packages
            .iter()
            .map(|p| PackageRec {
                id: p.id.clone(),
                display_name: p.display_name.clone(),
                description: p.description.clone(),
                catalog_id: p.catalog.as_ref().map(|c| c.id.clone()),
                policies: p
                    .assignment_policies
                    .iter()
                    .map(|pol| PolicyRec {
                        id: pol.id.clone(),
                        display_name: pol.display_name.clone(),
                        allowed_target_scope: pol
                            .allowed_target_scope
                            .clone()
                            .unwrap_or_else(|| "notSpecified".to_owned()),
                        automatic_request_settings: pol.automatic_request_settings.clone(),
                    })
                    .collect(),
            })
            .collect();
        let mut assignments = Vec::new();
        for a in &snapshot.assignments {
            let package_id = a
                .access_package
                .as_ref()
                .map(|p| p.id.clone())
                .ok_or_else(|| format!("assignment {} has no accessPackage", a.id))?;
            let target = a.target.clone().unwrap_or_default();
            assignments.push(AssignmentRec {
                id: a.id.clone(),
                state: a.state.clone().unwrap_or_else(|| "delivered".to_owned()),
                target: SubjectRec {
                    id: target
                        .id
                        .clone()
                        .or_else(|| target.object_id.clone())
                        .unwrap_or_else(|| a.id.clone()),
                    object_id: target.object_id,
                    email: target.email,
                    principal_name: target.principal_name,
                    display_name: target.display_name,
                },
                package_id,
                policy_id: a.assignment_policy.as_ref().map(|p| p.id.clone()),
                start: None,
                expired: None,
            });
        }
        let mut requests = Vec::new();
        for r in snapshot.assignment_requests.iter() {
            // A request the snapshot shows `delivering` or `deliveryFailed` is taken as stuck
            // there: it stays so until reprocessed, as in Graph. One `pendingApproval` or
            // `scheduled` waits as it is (the simulator has no approvers, and no schedule
            // starts it). Other open requests restart their delivery when the simulator
            // starts; finished ones are history.
            let (state, fate) = match r.state.as_deref() {
                Some("delivering") => ("delivering", Fate::Stick),
                Some("deliveryFailed") => ("deliveryFailed", Fate::Fail),
                Some(waiting @ ("pendingApproval" | "scheduled")) => (waiting, Fate::Stick),
                _ if r.is_open() => ("submitted", Fate::Deliver),
                _ => continue,
            };
            let package_id = r
                .access_package_id()
                .ok_or_else(|| format!("assignment request {} has no access package", r.id))?;
            requests.push(RequestRec {
                id: r.id.clone(),
                request_type: r
                    .request_type
                    .clone()
                    .unwrap_or_else(|| "adminAdd".to_owned()),
                state: state.to_owned(),
                created: r.created_date_time.clone(),
                completed: r.completed_date_time.clone(),
                package_id: package_id.to_owned(),
                policy_id: r
                    .assignment
                    .as_ref()
                    .and_then(|a| a.assignment_policy_id.clone()),
                target_object_id: r.target_object_id().map(str::to_owned),
                assignment_id: r.assignment.as_ref().and_then(|a| a.id.clone()),
                submitted_at: now,
                fate,
            });
        }
        let mut tenant = Self {
            users: Vec::new(),
            user_keys: HashMap::new(),
            principal_names: BTreeMap::new(),
            catalogs,
            packages,
            assignments,
            requests,
            applications: snapshot.applications.clone(),
            service_principals: snapshot.service_principals.clone(),
            groups: snapshot.groups.clone(),
            app_role_assignments: snapshot.app_role_assignments.clone(),
        };
        for user in &snapshot.users {
            tenant.add_user(UserRec::from_snapshot(user));
        }
        Ok(tenant)
    }

    /// Adds a user at the end of the directory, findable by each of its keys.
    pub(crate) fn add_user(&mut self, user: UserRec) {
        let position = self.users.len();
        for key in user_keys(&user) {
            let positions = self.user_keys.entry(key).or_default();
            if positions.last() != Some(&position) {
                positions.push(position);
            }
        }
        self.principal_names
            .entry(email_key(&user.upn))
            .or_default()
            .push(position);
        self.users.push(user);
    }

    /// The users one of `values` may name (an id, an address, a principal name or an
    /// `smtp:` proxy address), in directory order: a superset of those a comparison by the
    /// address rule matches, found without reading the others.
    pub(crate) fn users_named<'t, S: AsRef<str>>(
        &'t self,
        values: &[S],
    ) -> impl Iterator<Item = &'t UserRec> + 't {
        let named: Vec<Named> = values
            .iter()
            .map(|value| Named::Equal(value.as_ref().to_owned()))
            .collect();
        self.users_matching(&named)
    }

    /// The users a filter's named values may match: those with a key equal to a
    /// [`Named::Equal`], and those whose principal name starts with a [`Named::Prefix`], in
    /// directory order (a superset of the filter's matches, which the caller still applies).
    pub(crate) fn users_matching<'t>(
        &'t self,
        named: &[Named],
    ) -> impl Iterator<Item = &'t UserRec> + use<'t> {
        let mut positions = BTreeSet::new();
        for value in named {
            match value {
                Named::Equal(value) => {
                    if let Some(found) = self.user_keys.get(&lookup_key(value)) {
                        positions.extend(found.iter().copied());
                    }
                }
                Named::Prefix(prefix) => {
                    // Keys fold each character to one, so a key's prefix is the prefix's key.
                    let prefix = email_key(prefix);
                    positions.extend(
                        self.principal_names
                            .range(prefix.clone()..)
                            .take_while(|(name, _)| name.starts_with(&prefix))
                            .flat_map(|(_, found)| found.iter().copied()),
                    );
                }
            }
        }
        positions.into_iter().filter_map(move |p| self.users.get(p))
    }

    pub(crate) fn to_snapshot(&self) -> TenantSnapshot {
        let catalog_ref = |id: &Option<String>| {
            id.as_ref().map(|id| Catalog {
                id: id.clone(),
                display_name: self
                    .catalogs
                    .iter()
                    .find(|c| &c.id == id)
                    .and_then(|c| c.display_name.clone()),
            })
        };
        TenantSnapshot {
            users: self.users.iter().map(UserRec::to_snapshot).collect(),
            access_packages: self
                .packages
                .iter()
                .map(|p| AccessPackage {
                    id: p.id.clone(),
                    display_name: p.display_name.clone(),
                    description: p.description.clone(),
                    catalog: catalog_ref(&p.catalog_id),
                    assignment_policies: p
                        .policies
                        .iter()
                        .map(|pol| AssignmentPolicy {
                            id: pol.id.clone(),
                            display_name: pol.display_name.clone(),
                            allowed_target_scope: Some(pol.allowed_target_scope.clone()),
                            automatic_request_settings: pol.automatic_request_settings.clone(),
                        })
                        .collect(),
                })
                .collect(),
            assignments: self
                .assignments
                .iter()
                .map(|a| Assignment {
                    id: a.id.clone(),
                    state: Some(a.state.clone()),
                    status: a.json()["status"].as_str().map(str::to_owned),
                    target: Some(Subject {
                        id: Some(a.target.id.clone()),
                        object_id: a.target.object_id.clone(),
                        email: a.target.email.clone(),
                        principal_name: a.target.principal_name.clone(),
                        display_name: a.target.display_name.clone(),
                    }),
                    access_package: Some(ObjectRef {
                        id: a.package_id.clone(),
                        display_name: self
                            .packages
                            .iter()
                            .find(|p| p.id == a.package_id)
                            .map(|p| p.display_name.clone()),
                    }),
                    assignment_policy: a.policy_id.as_ref().map(|id| ObjectRef {
                        id: id.clone(),
                        display_name: None,
                    }),
                })
                .collect(),
            assignment_requests: self
                .requests
                .iter()
                .filter(|r| r.is_open())
                .map(RequestRec::to_request)
                .collect(),
            catalogs: self
                .catalogs
                .iter()
                .map(|c| Catalog {
                    id: c.id.clone(),
                    display_name: c.display_name.clone(),
                })
                .collect(),
            applications: self.applications.clone(),
            service_principals: self
                .service_principals
                .iter()
                .map(|sp| ServicePrincipal {
                    app_roles: self.sp_roles(sp),
                    ..sp.clone()
                })
                .collect(),
            groups: self.groups.clone(),
            app_role_assignments: self.app_role_assignments.clone(),
        }
    }

    /// A service principal's app roles: its application's when the application is in the
    /// tenant (Graph publishes them there), else its own.
    pub(crate) fn sp_roles(&self, sp: &ServicePrincipal) -> Vec<AppRole> {
        self.applications
            .iter()
            .find(|a| a.app_id.eq_ignore_ascii_case(&sp.app_id))
            .map_or_else(|| sp.app_roles.clone(), |a| a.app_roles.clone())
    }

    pub(crate) fn user_by_key(&self, key: &str) -> Option<&UserRec> {
        self.users_named(&[key])
            .find(|u| u.id.eq_ignore_ascii_case(key) || same_address(&u.upn, key))
    }

    pub(crate) fn package(&self, id: &str) -> Option<&PackageRec> {
        self.packages.iter().find(|p| p.id.eq_ignore_ascii_case(id))
    }

    pub(crate) fn policy(&self, id: &str) -> Option<(&PackageRec, &PolicyRec)> {
        self.packages.iter().find_map(|p| {
            p.policies
                .iter()
                .find(|pol| pol.id.eq_ignore_ascii_case(id))
                .map(|pol| (p, pol))
        })
    }

    /// An access package with the navigation properties asked for by `$expand`.
    pub(crate) fn package_json(&self, p: &PackageRec, policies: bool, catalog: bool) -> Value {
        let mut v = p.json();
        if let Some(obj) = v.as_object_mut() {
            if policies {
                obj.insert(
                    "assignmentPolicies".to_owned(),
                    Value::Array(p.policies.iter().map(PolicyRec::json).collect()),
                );
            }
            if catalog {
                let c = p
                    .catalog_id
                    .as_ref()
                    .and_then(|id| self.catalogs.iter().find(|c| &c.id == id))
                    .map_or(Value::Null, CatalogRec::json);
                obj.insert("catalog".to_owned(), c);
            }
        }
        v
    }

    /// An assignment with the navigation properties in `expand` (lower-case names).
    pub(crate) fn assignment_json(&self, a: &AssignmentRec, expand: &[String]) -> Value {
        let mut v = a.json();
        let mut extra = Map::new();
        for e in expand {
            match e.as_str() {
                "target" => {
                    extra.insert("target".to_owned(), a.target.json());
                }
                "accesspackage" => {
                    let p = self
                        .package(&a.package_id)
                        .map_or(Value::Null, PackageRec::json);
                    extra.insert("accessPackage".to_owned(), p);
                }
                "assignmentpolicy" => {
                    let p = a
                        .policy_id
                        .as_ref()
                        .and_then(|id| self.policy(id))
                        .map_or(Value::Null, |(_, pol)| pol.json());
                    extra.insert("assignmentPolicy".to_owned(), p);
                }
                _ => {}
            }
        }
        if let Some(obj) = v.as_object_mut() {
            obj.extend(extra);
        }
        v
    }

    /// A request with the navigation properties in `expand` (lower-case names).
    pub(crate) fn request_json(&self, r: &RequestRec, expand: &[String], requestor: &str) -> Value {
        let mut v = r.json();
        let mut extra = Map::new();
        let assignment = r
            .assignment_id
            .as_ref()
            .and_then(|id| self.assignments.iter().find(|a| &a.id == id));
        for e in expand {
            match e.as_str() {
                "accesspackage" => {
                    let p = self
                        .package(&r.package_id)
                        .map_or(Value::Null, PackageRec::json);
                    extra.insert("accessPackage".to_owned(), p);
                }
                "assignment" => {
                    extra.insert(
                        "assignment".to_owned(),
                        assignment.map_or(Value::Null, AssignmentRec::json),
                    );
                }
                "requestor" => {
                    // v1.0: "the subject who requested or, if a direct assignment, was
                    // assigned": the person an admin request is for, else the caller.
                    let assigned = assignment.map(|a| a.target.json()).or_else(|| {
                        let user = self.user_by_key(r.target_object_id.as_deref()?)?;
                        Some(SubjectRec::of_user(user.id.clone(), user).json())
                    });
                    extra.insert(
                        "requestor".to_owned(),
                        assigned.unwrap_or_else(|| {
                            json!({
                                "id": requestor,
                                "objectId": requestor,
                                "displayName": "enroll simulator client",
                                "email": null,
                                "principalName": null,
                                "onPremisesSecurityIdentifier": null,
                                "subjectType": "servicePrincipal",
                            })
                        }),
                    );
                }
                _ => {}
            }
        }
        if let Some(obj) = v.as_object_mut() {
            obj.extend(extra);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn user(id: &str, upn: &str) -> User {
        User {
            id: id.into(),
            user_principal_name: Some(upn.into()),
            ..User::default()
        }
    }

    #[test]
    fn a_principal_name_prefix_finds_exactly_the_users_it_starts_without_regard_to_case() {
        let snapshot = TenantSnapshot {
            users: vec![
                user("u-1", "ann_x.com#EXT#@contoso.onmicrosoft.com"),
                user("u-2", "anna_x.com#EXT#@contoso.onmicrosoft.com"),
                user("u-3", "ANN_X.COM#EXT#@fabrikam.onmicrosoft.com"),
                user("u-4", "ann@contoso.com"),
                user("u-5", "bob_x.com#EXT#@contoso.onmicrosoft.com"),
            ],
            ..TenantSnapshot::default()
        };
        let tenant = Tenant::from_snapshot(&snapshot, Instant::now()).unwrap();
        let found = |named: &[Named]| -> Vec<String> {
            tenant.users_matching(named).map(|u| u.id.clone()).collect()
        };
        assert_eq!(
            found(&[Named::Prefix("Ann_x.com#EXT#@".into())]),
            ["u-1", "u-3"]
        );
        assert_eq!(
            found(&[
                Named::Prefix("bob_x.com#EXT#@".into()),
                Named::Equal("ann@contoso.com".into())
            ]),
            ["u-4", "u-5"]
        );
        assert_eq!(
            found(&[Named::Prefix("carl_x.com#EXT#@".into())]),
            Vec::<String>::new()
        );
    }
}
