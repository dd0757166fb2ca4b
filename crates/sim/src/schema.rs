//! Property names of the Graph v1.0 types the simulator serves, from Microsoft's OpenAPI
//! description (msgraph-sdk-powershell `openApiDocs/v1.0`, extracted by
//! `scripts/extract_graph_openapi.py`; a test checks these lists against the extracted files).
//!
//! The simulator uses them to answer `$select` and to refuse request bodies with properties
//! Graph does not define, as Graph itself refuses them.

/// Properties of `microsoft.graph.user`.
const USER: &[&str] = &[
    "aboutMe",
    "accountEnabled",
    "activities",
    "ageGroup",
    "agreementAcceptances",
    "appRoleAssignments",
    "assignedLicenses",
    "assignedPlans",
    "authentication",
    "authorizationInfo",
    "birthday",
    "businessPhones",
    "calendar",
    "calendarGroups",
    "calendarView",
    "calendars",
    "chats",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "contactFolders",
    "contacts",
    "country",
    "createdDateTime",
    "createdObjects",
    "creationType",
    "deletedDateTime",
    "department",
    "deviceEnrollmentLimit",
    "deviceManagementTroubleshootingEvents",
    "directReports",
    "displayName",
    "drive",
    "drives",
    "employeeHireDate",
    "employeeId",
    "employeeOrgData",
    "employeeType",
    "events",
    "extensions",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "faxNumber",
    "followedSites",
    "givenName",
    "hireDate",
    "id",
    "identities",
    "imAddresses",
    "inferenceClassification",
    "insights",
    "interests",
    "isResourceAccount",
    "jobTitle",
    "joinedTeams",
    "lastPasswordChangeDateTime",
    "legalAgeGroupClassification",
    "licenseAssignmentStates",
    "licenseDetails",
    "mail",
    "mailFolders",
    "mailNickname",
    "mailboxSettings",
    "managedAppRegistrations",
    "managedDevices",
    "manager",
    "memberOf",
    "messages",
    "mobilePhone",
    "mySite",
    "oauth2PermissionGrants",
    "officeLocation",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "onenote",
    "onlineMeetings",
    "otherMails",
    "outlook",
    "ownedDevices",
    "ownedObjects",
    "passwordPolicies",
    "passwordProfile",
    "pastProjects",
    "people",
    "photo",
    "photos",
    "planner",
    "postalCode",
    "preferredDataLocation",
    "preferredLanguage",
    "preferredName",
    "presence",
    "provisionedPlans",
    "proxyAddresses",
    "registeredDevices",
    "responsibilities",
    "schools",
    "scopedRoleMemberOf",
    "securityIdentifier",
    "settings",
    "showInAddressList",
    "signInSessionsValidFromDateTime",
    "skills",
    "state",
    "streetAddress",
    "surname",
    "teamwork",
    "todo",
    "transitiveMemberOf",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

/// Properties of `microsoft.graph.invitation`.
const INVITATION: &[&str] = &[
    "id",
    "inviteRedeemUrl",
    "inviteRedirectUrl",
    "invitedUser",
    "invitedUserDisplayName",
    "invitedUserEmailAddress",
    "invitedUserMessageInfo",
    "invitedUserType",
    "resetRedemption",
    "sendInvitationMessage",
    "status",
];

/// Properties of `microsoft.graph.invitedUserMessageInfo`.
const INVITED_USER_MESSAGE_INFO: &[&str] =
    &["ccRecipients", "customizedMessageBody", "messageLanguage"];

/// Properties of `microsoft.graph.recipient`.
const RECIPIENT: &[&str] = &["emailAddress"];

/// Properties of `microsoft.graph.emailAddress`.
const EMAIL_ADDRESS: &[&str] = &["address", "name"];

/// Properties of `microsoft.graph.accessPackageCatalog`.
const ACCESS_PACKAGE_CATALOG: &[&str] = &[
    "accessPackages",
    "catalogType",
    "createdDateTime",
    "description",
    "displayName",
    "id",
    "isExternallyVisible",
    "modifiedDateTime",
    "state",
];

/// Properties of `microsoft.graph.accessPackage`.
const ACCESS_PACKAGE: &[&str] = &[
    "accessPackagesIncompatibleWith",
    "assignmentPolicies",
    "catalog",
    "createdDateTime",
    "description",
    "displayName",
    "id",
    "incompatibleAccessPackages",
    "incompatibleGroups",
    "isHidden",
    "modifiedDateTime",
];

/// Properties of `microsoft.graph.accessPackageAssignmentPolicy`.
const ACCESS_PACKAGE_ASSIGNMENT_POLICY: &[&str] = &[
    "accessPackage",
    "allowedTargetScope",
    "automaticRequestSettings",
    "catalog",
    "createdDateTime",
    "description",
    "displayName",
    "expiration",
    "id",
    "modifiedDateTime",
    "requestApprovalSettings",
    "requestorSettings",
    "reviewSettings",
    "specificAllowedTargets",
];

/// Properties of `microsoft.graph.accessPackageAssignment`.
const ACCESS_PACKAGE_ASSIGNMENT: &[&str] = &[
    "accessPackage",
    "assignmentPolicy",
    "expiredDateTime",
    "id",
    "schedule",
    "state",
    "status",
    "target",
];

/// Properties of `microsoft.graph.accessPackageAssignmentRequest`.
const ACCESS_PACKAGE_ASSIGNMENT_REQUEST: &[&str] = &[
    "accessPackage",
    "assignment",
    "completedDateTime",
    "createdDateTime",
    "id",
    "requestType",
    "requestor",
    "schedule",
    "state",
    "status",
];

/// Properties of `microsoft.graph.accessPackageSubject`.
const ACCESS_PACKAGE_SUBJECT: &[&str] = &[
    "connectedOrganization",
    "displayName",
    "email",
    "id",
    "objectId",
    "onPremisesSecurityIdentifier",
    "principalName",
    "subjectType",
];

/// Properties of `microsoft.graph.entitlementManagementSchedule`.
const ENTITLEMENT_MANAGEMENT_SCHEDULE: &[&str] = &["expiration", "recurrence", "startDateTime"];

/// Properties of `microsoft.graph.expirationPattern`.
const EXPIRATION_PATTERN: &[&str] = &["duration", "endDateTime", "type"];

/// Properties of `microsoft.graph.application`.
const APPLICATION: &[&str] = &[
    "addIns",
    "api",
    "appId",
    "appRoles",
    "applicationTemplateId",
    "certification",
    "createdDateTime",
    "createdOnBehalfOf",
    "defaultRedirectUri",
    "deletedDateTime",
    "description",
    "disabledByMicrosoftStatus",
    "displayName",
    "extensionProperties",
    "federatedIdentityCredentials",
    "groupMembershipClaims",
    "homeRealmDiscoveryPolicies",
    "id",
    "identifierUris",
    "info",
    "isDeviceOnlyAuthSupported",
    "isFallbackPublicClient",
    "keyCredentials",
    "logo",
    "notes",
    "oauth2RequirePostResponse",
    "optionalClaims",
    "owners",
    "parentalControlSettings",
    "passwordCredentials",
    "publicClient",
    "publisherDomain",
    "requiredResourceAccess",
    "samlMetadataUrl",
    "serviceManagementReference",
    "signInAudience",
    "spa",
    "tags",
    "tokenEncryptionKeyId",
    "tokenIssuancePolicies",
    "tokenLifetimePolicies",
    "verifiedPublisher",
    "web",
];

/// Properties of `microsoft.graph.servicePrincipal`.
const SERVICE_PRINCIPAL: &[&str] = &[
    "accountEnabled",
    "addIns",
    "alternativeNames",
    "appDescription",
    "appDisplayName",
    "appId",
    "appOwnerOrganizationId",
    "appRoleAssignedTo",
    "appRoleAssignmentRequired",
    "appRoleAssignments",
    "appRoles",
    "applicationTemplateId",
    "claimsMappingPolicies",
    "createdObjects",
    "delegatedPermissionClassifications",
    "deletedDateTime",
    "description",
    "disabledByMicrosoftStatus",
    "displayName",
    "endpoints",
    "federatedIdentityCredentials",
    "homeRealmDiscoveryPolicies",
    "homepage",
    "id",
    "info",
    "keyCredentials",
    "loginUrl",
    "logoutUrl",
    "memberOf",
    "notes",
    "notificationEmailAddresses",
    "oauth2PermissionGrants",
    "oauth2PermissionScopes",
    "ownedObjects",
    "owners",
    "passwordCredentials",
    "preferredSingleSignOnMode",
    "preferredTokenSigningKeyThumbprint",
    "replyUrls",
    "resourceSpecificApplicationPermissions",
    "samlSingleSignOnSettings",
    "servicePrincipalNames",
    "servicePrincipalType",
    "signInAudience",
    "tags",
    "tokenEncryptionKeyId",
    "tokenIssuancePolicies",
    "tokenLifetimePolicies",
    "transitiveMemberOf",
    "verifiedPublisher",
];

/// Properties of `microsoft.graph.appRole`.
const APP_ROLE: &[&str] = &[
    "allowedMemberTypes",
    "description",
    "displayName",
    "id",
    "isEnabled",
    "origin",
    "value",
];

/// Properties of `microsoft.graph.appRoleAssignment`.
const APP_ROLE_ASSIGNMENT: &[&str] = &[
    "appRoleId",
    "createdDateTime",
    "deletedDateTime",
    "id",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
];

/// Properties of `microsoft.graph.group`.
const GROUP: &[&str] = &[
    "acceptedSenders",
    "allowExternalSenders",
    "appRoleAssignments",
    "assignedLabels",
    "assignedLicenses",
    "autoSubscribeNewMembers",
    "calendar",
    "calendarView",
    "classification",
    "conversations",
    "createdDateTime",
    "createdOnBehalfOf",
    "deletedDateTime",
    "description",
    "displayName",
    "drive",
    "drives",
    "events",
    "expirationDateTime",
    "extensions",
    "groupLifecyclePolicies",
    "groupTypes",
    "hasMembersWithLicenseErrors",
    "hideFromAddressLists",
    "hideFromOutlookClients",
    "id",
    "isArchived",
    "isAssignableToRole",
    "isSubscribedByMail",
    "licenseProcessingState",
    "mail",
    "mailEnabled",
    "mailNickname",
    "memberOf",
    "members",
    "membersWithLicenseErrors",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onenote",
    "owners",
    "permissionGrants",
    "photo",
    "photos",
    "planner",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "rejectedSenders",
    "renewedDateTime",
    "securityEnabled",
    "securityIdentifier",
    "settings",
    "sites",
    "team",
    "theme",
    "threads",
    "transitiveMemberOf",
    "transitiveMembers",
    "unseenCount",
    "visibility",
];

/// The property names Graph defines for `type_name` (e.g. `microsoft.graph.user`), if the simulator knows the type.
pub fn properties(type_name: &str) -> Option<&'static [&'static str]> {
    match type_name {
        "microsoft.graph.user" => Some(USER),
        "microsoft.graph.invitation" => Some(INVITATION),
        "microsoft.graph.invitedUserMessageInfo" => Some(INVITED_USER_MESSAGE_INFO),
        "microsoft.graph.recipient" => Some(RECIPIENT),
        "microsoft.graph.emailAddress" => Some(EMAIL_ADDRESS),
        "microsoft.graph.accessPackageCatalog" => Some(ACCESS_PACKAGE_CATALOG),
        "microsoft.graph.accessPackage" => Some(ACCESS_PACKAGE),
        "microsoft.graph.accessPackageAssignmentPolicy" => Some(ACCESS_PACKAGE_ASSIGNMENT_POLICY),
        "microsoft.graph.accessPackageAssignment" => Some(ACCESS_PACKAGE_ASSIGNMENT),
        "microsoft.graph.accessPackageAssignmentRequest" => Some(ACCESS_PACKAGE_ASSIGNMENT_REQUEST),
        "microsoft.graph.accessPackageSubject" => Some(ACCESS_PACKAGE_SUBJECT),
        "microsoft.graph.entitlementManagementSchedule" => Some(ENTITLEMENT_MANAGEMENT_SCHEDULE),
        "microsoft.graph.expirationPattern" => Some(EXPIRATION_PATTERN),
        "microsoft.graph.application" => Some(APPLICATION),
        "microsoft.graph.servicePrincipal" => Some(SERVICE_PRINCIPAL),
        "microsoft.graph.appRole" => Some(APP_ROLE),
        "microsoft.graph.appRoleAssignment" => Some(APP_ROLE_ASSIGNMENT),
        "microsoft.graph.group" => Some(GROUP),
        _ => None,
    }
}
/// Every type this module describes.
pub const TYPES: &[&str] = &[
    "microsoft.graph.user",
    "microsoft.graph.invitation",
    "microsoft.graph.invitedUserMessageInfo",
    "microsoft.graph.recipient",
    "microsoft.graph.emailAddress",
    "microsoft.graph.accessPackageCatalog",
    "microsoft.graph.accessPackage",
    "microsoft.graph.accessPackageAssignmentPolicy",
    "microsoft.graph.accessPackageAssignment",
    "microsoft.graph.accessPackageAssignmentRequest",
    "microsoft.graph.accessPackageSubject",
    "microsoft.graph.entitlementManagementSchedule",
    "microsoft.graph.expirationPattern",
    "microsoft.graph.application",
    "microsoft.graph.servicePrincipal",
    "microsoft.graph.appRole",
    "microsoft.graph.appRoleAssignment",
    "microsoft.graph.group",
];

/// The schema's spelling of `name` among `type_name`'s properties, matched case-insensitively
/// as Graph matches property names in query options.
pub fn canonical(type_name: &str, name: &str) -> Option<&'static str> {
    properties(type_name)?
        .iter()
        .copied()
        .find(|p| p.eq_ignore_ascii_case(name))
}

/// The property types of the Graph extract (`tests/data/graph-openapi`, the same files the
/// conformance tests read), parsed once.
fn extract() -> &'static serde_json::Map<String, serde_json::Value> {
    static TYPES: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> =
        std::sync::OnceLock::new();
    TYPES.get_or_init(|| {
        let mut schemas = serde_json::Map::new();
        for text in [
            include_str!("../../../tests/data/graph-openapi/Users.json"),
            include_str!("../../../tests/data/graph-openapi/Identity.SignIns.json"),
            include_str!("../../../tests/data/graph-openapi/Identity.Governance.json"),
            include_str!("../../../tests/data/graph-openapi/Applications.json"),
            include_str!("../../../tests/data/graph-openapi/Groups.json"),
        ] {
            // The files are part of the source; a broken one fails the conformance tests.
            if let Ok(serde_json::Value::Object(doc)) = serde_json::from_str(text)
                && let Some(serde_json::Value::Object(types)) = doc.get("schemas")
            {
                schemas.extend(types.clone());
            }
        }
        schemas
    })
}

/// Graph's refusal of a request body value whose type is not the property's: the OData
/// reader's message, naming the property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongType {
    /// Where in the body, e.g. `invitedUserMessageInfo.ccRecipients[0].emailAddress`.
    pub path: String,
    /// The OData reader's sentence.
    pub message: String,
}

/// The EDM name of a JSON Schema primitive type, as the OData reader names it.
fn edm(kind: &str) -> &'static str {
    match kind {
        "boolean" => "Edm.Boolean",
        "integer" => "Edm.Int32",
        "number" => "Edm.Double",
        _ => "Edm.String",
    }
}

fn node(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Object(_) => "StartObject",
        serde_json::Value::Array(_) => "StartArray",
        _ => "PrimitiveValue",
    }
}

/// Checks the value of property `name` of `type_name` in a request body against the
/// property's type in Graph's OpenAPI description: primitive types, nullability, arrays,
/// enums, and nested objects of the types the extract holds (recursively). A property the
/// extract does not know is not checked here (property names are checked on their own).
///
/// # Errors
///
/// [`WrongType`] with Graph's message for the first value of the wrong type.
pub fn check_property(
    type_name: &str,
    name: &str,
    value: &serde_json::Value,
) -> Result<(), WrongType> {
    let Some(spec) = extract()
        .get(type_name)
        .and_then(|t| t.get("properties"))
        .and_then(|p| p.get(name))
    else {
        return Ok(());
    };
    check_value(spec, value, name)
}

fn check_value(
    spec: &serde_json::Value,
    value: &serde_json::Value,
    path: &str,
) -> Result<(), WrongType> {
    use serde_json::Value;
    let wrong = |message: String| {
        Err(WrongType {
            path: path.to_owned(),
            message,
        })
    };
    let property = path
        .rsplit(['.', ']'])
        .find(|p| !p.is_empty())
        .unwrap_or(path);
    if value.is_null() {
        if spec["nullable"] == true {
            return Ok(());
        }
        let expected = match spec["type"].as_str() {
            Some("array") => "Collection".to_owned(),
            Some(kind) => edm(kind).to_owned(),
            None => spec["ref"].as_str().unwrap_or("object").to_owned(),
        };
        return wrong(format!(
            "A null value was found for the property named '{property}', which has the expected type '{expected}[Nullable=False]'. The expected type '{expected}[Nullable=False]' does not allow null values."
        ));
    }
    match (spec["type"].as_str(), spec["ref"].as_str()) {
        (Some("array"), _) => {
            let Value::Array(items) = value else {
                return wrong(format!(
                    "An unexpected '{}' node was found for property named '{property}' when reading from the JSON reader. A 'StartArray' node was expected.",
                    node(value)
                ));
            };
            for (i, item) in items.iter().enumerate() {
                check_value(&spec["items"], item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Some(kind), _) => {
            let fits = match kind {
                "boolean" => value.is_boolean(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                _ => value.is_string(),
            };
            match value {
                _ if fits => Ok(()),
                Value::Object(_) | Value::Array(_) => wrong(format!(
                    "An unexpected '{}' node was found for property named '{property}' when reading from the JSON reader. A 'PrimitiveValue' node was expected.",
                    node(value)
                )),
                other => wrong(format!(
                    "Cannot convert the literal '{}' to the expected type '{}'.",
                    other
                        .as_str()
                        .map_or_else(|| other.to_string(), str::to_owned),
                    edm(kind)
                )),
            }
        }
        (None, Some(reference)) => {
            let Some(target) = extract().get(reference) else {
                return Ok(());
            };
            if let Some(members) = target["enum"].as_array() {
                let known = value.as_str().is_some_and(|s| {
                    members
                        .iter()
                        .any(|m| m.as_str().is_some_and(|m| m.eq_ignore_ascii_case(s)))
                });
                return if known {
                    Ok(())
                } else {
                    wrong(format!(
                        "Cannot convert the literal '{}' to the expected type '{reference}'.",
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned)
                    ))
                };
            }
            let Value::Object(fields) = value else {
                return wrong(format!(
                    "An unexpected '{}' node was found for property named '{property}' when reading from the JSON reader. A 'StartObject' node was expected.",
                    node(value)
                ));
            };
            for (key, field) in fields {
                if let Some(field_spec) = target["properties"].get(key) {
                    check_value(field_spec, field, &format!("{path}.{key}"))?;
                }
            }
            Ok(())
        }
        (None, None) => Ok(()),
    }
}
