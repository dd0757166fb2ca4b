//! An in-memory tenant directory and storage, for unit tests of the steps without HTTP.
//!
//! [`FakeDirectory`] answers the [`Directory`] operations from a [`Tenant`] the test sets up,
//! with scripted errors where a test wants Graph to refuse, and writes down every change it
//! is asked for so that tests can assert exactly what a step tried to change.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use enroll_core::audit::AuditRecord;
use enroll_core::roster::email_key;
use enroll_core::tenant::{
    AccessPackage, AppRole, AppRoleAssignment, Application, Assignment, AssignmentPolicy,
    AssignmentRequest, Catalog, Group, Invitation, ObjectRef, RequestedAssignment,
    ServicePrincipal, Subject, User,
};
use enroll_graph::{
    Directory, GraphError, NewAssignment, NewGroupAppRoleAssignment, NewInvitation, StatusError,
    UnfinishedRequest,
};

use crate::{Attempt, Storage, StorageError, StoredRoster};

/// The first delivery of a message, of five.
pub(crate) const FIRST: Attempt = Attempt {
    number: 1,
    last: false,
};

/// The last delivery of a message, of five (the default `max_dequeue_count`).
pub(crate) const LAST: Attempt = Attempt {
    number: 5,
    last: true,
};

/// An error answer as Graph sends it: a status, Graph's code and message, a request id.
pub(crate) fn graph_error(status: u16, code: &str, message: &str) -> GraphError {
    GraphError::Status(Box::new(StatusError {
        method: "POST".into(),
        path: "/$batch".into(),
        status,
        code: code.into(),
        message: message.into(),
        request_id: Some(format!("req-{code}")),
        client_request_id: None,
        detail_codes: Vec::new(),
        retry_after: None,
    }))
}

/// A user with an address, as a member (`mail` and principal name) of contoso.
pub(crate) fn member(id: &str, email: &str) -> User {
    User {
        id: id.into(),
        mail: Some(email.into()),
        user_principal_name: Some(email.into()),
        user_type: Some("Member".into()),
        ..User::default()
    }
}

/// A guest invited with `email`, known only by the `#EXT#` form of its principal name.
pub(crate) fn guest(id: &str, email: &str) -> User {
    User {
        id: id.into(),
        user_principal_name: Some(format!(
            "{}#EXT#@contoso.onmicrosoft.com",
            email.replace('@', "_")
        )),
        user_type: Some("Guest".into()),
        ..User::default()
    }
}

/// The catalog `Projects`.
pub(crate) fn projects() -> Catalog {
    Catalog {
        id: "catalog-projects".into(),
        display_name: Some("Projects".into()),
    }
}

/// A package in catalog `Projects` with one policy for administrator direct assignments.
pub(crate) fn package(id: &str, name: &str, policy: &str) -> AccessPackage {
    AccessPackage {
        id: id.into(),
        display_name: name.into(),
        catalog: Some(projects()),
        assignment_policies: vec![AssignmentPolicy {
            id: policy.into(),
            allowed_target_scope: Some("notSpecified".into()),
            ..AssignmentPolicy::default()
        }],
        ..AccessPackage::default()
    }
}

/// An active (delivered) assignment of a package, held by `user_id` or by nobody known.
pub(crate) fn assignment(id: &str, package: &str, user_id: Option<&str>) -> Assignment {
    Assignment {
        id: id.into(),
        state: Some("delivered".into()),
        target: user_id.map(|user_id| Subject {
            object_id: Some(user_id.into()),
            ..Subject::default()
        }),
        access_package: Some(ObjectRef {
            id: package.into(),
            display_name: None,
        }),
        ..Assignment::default()
    }
}

/// The tenant a [`FakeDirectory`] answers from, and what it was asked to change.
#[derive(Default)]
pub(crate) struct Tenant {
    /// Catalogs.
    pub(crate) catalogs: Vec<Catalog>,
    /// Access packages, with their catalog and policies.
    pub(crate) packages: Vec<AccessPackage>,
    /// Users lookups find.
    pub(crate) users: Vec<User>,
    /// Users that exist but that lookups do not find yet (a fresh invitation replicating).
    pub(crate) not_yet_visible: Vec<User>,
    /// Assignments, whatever their state.
    pub(crate) assignments: Vec<Assignment>,
    /// Assignment requests (all open).
    pub(crate) requests: Vec<AssignmentRequest>,
    /// Scripted answers to invitations, by invited address.
    pub(crate) invite_errors: HashMap<String, GraphError>,
    /// Scripted answers to `adminAdd`, by target user id.
    pub(crate) add_errors: HashMap<String, GraphError>,
    /// Scripted answers to `adminRemove`, by assignment id.
    pub(crate) remove_errors: HashMap<String, GraphError>,
    /// Addresses invited, in order.
    pub(crate) invited: Vec<String>,
    /// Assignments asked for, in order.
    pub(crate) added: Vec<NewAssignment>,
    /// Assignments asked to be removed, in order.
    pub(crate) removed: Vec<String>,
    /// Reads of assignments and assignment requests (what a step planned on an unchanged
    /// roster does without).
    pub(crate) assignment_reads: usize,
    /// Requests that did not deliver, or not yet (all packages).
    pub(crate) unfinished: Vec<(String, UnfinishedRequest)>,
    /// Scripted answers to `reprocess`, by request or assignment id.
    pub(crate) reprocess_errors: HashMap<String, GraphError>,
    /// Requests asked to be reprocessed, in order.
    pub(crate) reprocessed_requests: Vec<String>,
    /// Assignments asked to be reprocessed, in order.
    pub(crate) reprocessed_assignments: Vec<String>,
    /// Addresses whose invitation makes the directory panic: a step that stops without an
    /// answer, which only a test can provoke.
    pub(crate) panic_on_invite: Vec<String>,
    /// Addresses whose lookup makes the directory panic (Plan looks everyone up first).
    pub(crate) panic_on_lookup: Vec<String>,
}

impl Tenant {
    /// The active assignments of a package.
    fn active<'t>(&'t self, package_id: &'t str) -> impl Iterator<Item = &'t Assignment> {
        self.assignments.iter().filter(move |a| {
            a.is_active()
                && a.access_package
                    .as_ref()
                    .is_some_and(|p| p.id == package_id)
        })
    }

    /// Writes down each of `ids` as asked to be reprocessed (in the list `asked` picks)
    /// and answers it: the scripted error, else success.
    fn reprocess(
        &mut self,
        ids: &[String],
        asked: fn(&mut Tenant) -> &mut Vec<String>,
    ) -> Vec<(String, Result<(), GraphError>)> {
        ids.iter()
            .map(|id| {
                asked(self).push(id.clone());
                let answer = self
                    .reprocess_errors
                    .get(id)
                    .map_or(Ok(()), |error| Err(error.clone()));
                (id.clone(), answer)
            })
            .collect()
    }

    /// The first user (visible or not) invited with `email`, as Graph answers an invitation
    /// to an existing guest with that guest.
    fn guest_invited_as(&self, email: &str) -> Option<&User> {
        self.users
            .iter()
            .chain(&self.not_yet_visible)
            .find(|user| user.answers_to(email))
    }
}

/// An in-memory [`Directory`]. Clones share the tenant.
#[derive(Clone, Default)]
pub(crate) struct FakeDirectory {
    tenant: Arc<Mutex<Tenant>>,
}

impl FakeDirectory {
    /// A directory answering from `tenant`.
    pub(crate) fn new(tenant: Tenant) -> Self {
        Self {
            tenant: Arc::new(Mutex::new(tenant)),
        }
    }

    /// The tenant as it is now, with what was asked of it.
    pub(crate) fn tenant(&self) -> MutexGuard<'_, Tenant> {
        self.tenant.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers at once from the tenant (a concrete future, so it borrows nothing of `f`).
    fn answer<T>(&self, f: impl FnOnce(&mut Tenant) -> T) -> std::future::Ready<T> {
        std::future::ready(f(&mut self.tenant()))
    }
}

fn no_such(what: &str) -> GraphError {
    graph_error(
        404,
        "Request_ResourceNotFound",
        &format!("{what} does not exist"),
    )
}

impl Directory for FakeDirectory {
    fn users_by_email<E: AsRef<str> + Sync>(
        &self,
        emails: &[E],
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<User>>, GraphError>> + Send {
        self.answer(|tenant| {
            for email in emails {
                assert!(
                    !tenant.panic_on_lookup.iter().any(|e| e == email.as_ref()),
                    "the test made the lookup of {} panic",
                    email.as_ref()
                );
            }
            Ok(emails
                .iter()
                .map(|email| email.as_ref().trim())
                .filter_map(|email| {
                    // Every user that answers, in id order, as GraphClient::users_by_email.
                    let mut users: Vec<User> = tenant
                        .users
                        .iter()
                        .filter(|user| user.answers_to(email))
                        .cloned()
                        .collect();
                    users.sort_by(|a, b| a.id.cmp(&b.id));
                    (!users.is_empty()).then(|| (email_key(email), users))
                })
                .collect())
        })
    }

    fn users_by_id<E: AsRef<str> + Sync>(
        &self,
        ids: &[E],
    ) -> impl Future<Output = Result<Vec<User>, GraphError>> + Send {
        self.answer(|tenant| {
            Ok(tenant
                .users
                .iter()
                .filter(|user| ids.iter().any(|id| id.as_ref() == user.id))
                .cloned()
                .collect())
        })
    }

    fn invite(
        &self,
        invitations: &[NewInvitation],
    ) -> impl Future<Output = Vec<(String, Result<Invitation, GraphError>)>> + Send {
        self.answer(|tenant| {
            invitations
                .iter()
                .map(|invitation| {
                    let email = invitation.invited_user_email_address.clone();
                    assert!(
                        !tenant.panic_on_invite.contains(&email),
                        "the test made the invitation of {email} panic"
                    );
                    tenant.invited.push(email.clone());
                    if let Some(error) = tenant.invite_errors.get(&email) {
                        return (email, Err(error.clone()));
                    }
                    let number = tenant.invited.len();
                    let user_id = match tenant.guest_invited_as(&email) {
                        Some(existing) => existing.id.clone(),
                        None => {
                            // A new guest takes a while to show up in lookups.
                            let id = format!("guest-{number}");
                            tenant.not_yet_visible.push(guest(&id, &email));
                            id
                        }
                    };
                    let answer = Invitation {
                        id: format!("invitation-{number}"),
                        invited_user_email_address: email.clone(),
                        invited_user: Some(ObjectRef {
                            id: user_id,
                            display_name: None,
                        }),
                        ..Invitation::default()
                    };
                    (email, Ok(answer))
                })
                .collect()
        })
    }

    fn catalogs(&self) -> impl Future<Output = Result<Vec<Catalog>, GraphError>> + Send {
        self.answer(|tenant| Ok(tenant.catalogs.clone()))
    }

    fn access_packages(
        &self,
        catalog_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<AccessPackage>, GraphError>> + Send {
        self.answer(|tenant| {
            Ok(tenant
                .packages
                .iter()
                .filter(|package| {
                    catalog_id.is_none_or(|id| {
                        package
                            .catalog
                            .as_ref()
                            .is_some_and(|catalog| catalog.id == id)
                    })
                })
                .cloned()
                .collect())
        })
    }

    fn assignments(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<Vec<Assignment>, GraphError>> + Send {
        self.answer(|tenant| Ok(tenant.active(access_package_id).cloned().collect()))
    }

    fn assignments_of_users<E: AsRef<str> + Sync>(
        &self,
        access_package_id: &str,
        user_ids: &[E],
    ) -> impl Future<Output = Result<Vec<Assignment>, GraphError>> + Send {
        self.answer(|tenant| {
            tenant.assignment_reads += 1;
            Ok(tenant
                .active(access_package_id)
                .filter(|a| {
                    let holder = a.target.as_ref().and_then(|t| t.object_id.as_deref());
                    user_ids.iter().any(|id| Some(id.as_ref()) == holder)
                })
                .cloned()
                .collect())
        })
    }

    fn assignment(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Assignment>, GraphError>> + Send {
        self.answer(|tenant| {
            tenant.assignment_reads += 1;
            Ok(tenant.assignments.iter().find(|a| a.id == id).cloned())
        })
    }

    fn open_assignment_requests(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<Vec<AssignmentRequest>, GraphError>> + Send {
        self.answer(|tenant| {
            tenant.assignment_reads += 1;
            Ok(tenant
                .requests
                .iter()
                .filter(|request| request.access_package_id() == Some(access_package_id))
                .cloned()
                .collect())
        })
    }

    fn unfinished_assignment_requests(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<Vec<UnfinishedRequest>, GraphError>> + Send {
        self.answer(|tenant| {
            Ok(tenant
                .unfinished
                .iter()
                .filter(|(package, _)| package == access_package_id)
                .map(|(_, request)| request.clone())
                .collect())
        })
    }

    fn reprocess_assignment_requests(
        &self,
        request_ids: &[String],
    ) -> impl Future<Output = Vec<(String, Result<(), GraphError>)>> + Send {
        self.answer(|tenant| tenant.reprocess(request_ids, |t| &mut t.reprocessed_requests))
    }

    fn reprocess_assignments(
        &self,
        assignment_ids: &[String],
    ) -> impl Future<Output = Vec<(String, Result<(), GraphError>)>> + Send {
        self.answer(|tenant| tenant.reprocess(assignment_ids, |t| &mut t.reprocessed_assignments))
    }

    fn add_assignments(
        &self,
        assignments: &[NewAssignment],
    ) -> impl Future<Output = Vec<(NewAssignment, Result<AssignmentRequest, GraphError>)>> + Send
    {
        self.answer(|tenant| {
            assignments
                .iter()
                .map(|new| {
                    tenant.added.push(new.clone());
                    if let Some(error) = tenant.add_errors.get(&new.target_id) {
                        return (new.clone(), Err(error.clone()));
                    }
                    // Graph refuses a second assignment or request, as the sim does.
                    let target = Some(new.target_id.as_str());
                    if tenant
                        .active(&new.access_package_id)
                        .any(|a| a.target.as_ref().and_then(|t| t.object_id.as_deref()) == target)
                    {
                        let error = graph_error(
                            400,
                            "ExistingAssignment",
                            "The user already has an active assignment.",
                        );
                        return (new.clone(), Err(error));
                    }
                    if tenant.requests.iter().any(|r| {
                        r.is_add()
                            && r.access_package_id() == Some(new.access_package_id.as_str())
                            && r.target_object_id() == target
                    }) {
                        let error = graph_error(
                            400,
                            "ExistingOpenRequest",
                            "There is already an open request for this user",
                        );
                        return (new.clone(), Err(error));
                    }
                    let request = AssignmentRequest {
                        id: format!("request-{}", tenant.added.len()),
                        request_type: Some("adminAdd".into()),
                        state: Some("submitted".into()),
                        assignment: Some(RequestedAssignment {
                            target_id: Some(new.target_id.clone()),
                            access_package_id: Some(new.access_package_id.clone()),
                            assignment_policy_id: Some(new.assignment_policy_id.clone()),
                            ..RequestedAssignment::default()
                        }),
                        ..AssignmentRequest::default()
                    };
                    tenant.requests.push(request.clone());
                    (new.clone(), Ok(request))
                })
                .collect()
        })
    }

    fn remove_assignments(
        &self,
        assignment_ids: &[String],
    ) -> impl Future<Output = Vec<(String, Result<AssignmentRequest, GraphError>)>> + Send {
        self.answer(|tenant| {
            assignment_ids
                .iter()
                .map(|id| {
                    tenant.removed.push(id.clone());
                    if let Some(error) = tenant.remove_errors.get(id) {
                        return (id.clone(), Err(error.clone()));
                    }
                    // Graph's answers for an assignment that is gone or no longer active.
                    match tenant.assignments.iter().find(|a| &a.id == id) {
                        None => {
                            let error = graph_error(
                                404,
                                "ResourceNotFound",
                                "The assignment was not found.",
                            );
                            return (id.clone(), Err(error));
                        }
                        Some(a) if !a.is_active() => {
                            let error = graph_error(
                                400,
                                "BadRequest",
                                "The assignment has already expired.",
                            );
                            return (id.clone(), Err(error));
                        }
                        Some(_) => {}
                    }
                    let request = AssignmentRequest {
                        id: format!("request-remove-{}", tenant.removed.len()),
                        request_type: Some("adminRemove".into()),
                        state: Some("submitted".into()),
                        ..AssignmentRequest::default()
                    };
                    (id.clone(), Ok(request))
                })
                .collect()
        })
    }

    // The people steps use no applications or groups: this tenant has none.

    fn application_by_app_id(
        &self,
        _app_id: &str,
    ) -> impl Future<Output = Result<Option<Application>, GraphError>> + Send {
        std::future::ready(Ok(None))
    }

    fn service_principal_by_app_id(
        &self,
        _app_id: &str,
    ) -> impl Future<Output = Result<Option<ServicePrincipal>, GraphError>> + Send {
        std::future::ready(Ok(None))
    }

    fn groups_by_display_name<E: AsRef<str> + Sync>(
        &self,
        _names: &[E],
    ) -> impl Future<Output = Result<Vec<Group>, GraphError>> + Send {
        std::future::ready(Ok(Vec::new()))
    }

    fn groups_by_id<E: AsRef<str> + Sync>(
        &self,
        _ids: &[E],
    ) -> impl Future<Output = Result<Vec<Group>, GraphError>> + Send {
        std::future::ready(Ok(Vec::new()))
    }

    fn app_role_assignments_of_service_principal(
        &self,
        _service_principal_id: &str,
    ) -> impl Future<Output = Result<Vec<AppRoleAssignment>, GraphError>> + Send {
        std::future::ready(Ok(Vec::new()))
    }

    fn update_app_roles(
        &self,
        _application_id: &str,
        _app_roles: &[AppRole],
    ) -> impl Future<Output = Result<(), GraphError>> + Send {
        std::future::ready(Err(no_such("the application")))
    }

    fn add_group_app_role_assignments(
        &self,
        assignments: &[NewGroupAppRoleAssignment],
    ) -> impl Future<
        Output = Vec<(
            NewGroupAppRoleAssignment,
            Result<AppRoleAssignment, GraphError>,
        )>,
    > + Send {
        std::future::ready(
            assignments
                .iter()
                .map(|a| (a.clone(), Err(no_such("the group"))))
                .collect(),
        )
    }

    fn remove_group_app_role_assignments(
        &self,
        assignments: &[(String, String)],
    ) -> impl Future<Output = Vec<((String, String), Result<(), GraphError>)>> + Send {
        std::future::ready(
            assignments
                .iter()
                .map(|a| (a.clone(), Err(no_such("the group"))))
                .collect(),
        )
    }
}

/// Storage in memory: rosters by name (each version its content), the mapping file, and
/// what steps write.
#[derive(Default)]
pub(crate) struct MemoryStorage {
    rosters: BTreeMap<String, StoredRoster>,
    /// The mapping file (`access-packages.json`), when there is one.
    pub(crate) mapping: Option<String>,
    /// The audit trail, as appended.
    audit: Mutex<Vec<AuditRecord>>,
    /// Failures appended to reports: (run id, roster, the Markdown lines people read).
    failures: Mutex<Vec<(String, String, String)>>,
    /// Reports written: (run id, roster, the Markdown people read).
    reports: Mutex<Vec<(String, String, String)>>,
}

impl MemoryStorage {
    /// Storage holding one roster, versioned `v1`.
    pub(crate) fn with_roster(name: &str, text: &str) -> Self {
        let mut storage = Self::default();
        storage.rosters.insert(
            name.into(),
            StoredRoster {
                bytes: text.as_bytes().to_vec(),
                etag: "v1".into(),
            },
        );
        storage
    }

    /// The audit trail written so far.
    pub(crate) fn audit(&self) -> Vec<AuditRecord> {
        self.audit.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The reports written so far.
    pub(crate) fn reports(&self) -> Vec<(String, String, String)> {
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The failure lines written so far.
    pub(crate) fn failures(&self) -> Vec<(String, String, String)> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Storage for MemoryStorage {
    async fn roster(&self, name: &str) -> Result<Option<StoredRoster>, StorageError> {
        Ok(self.rosters.get(name).cloned())
    }

    async fn roster_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.rosters.keys().cloned().collect())
    }

    async fn manifest(&self, _name: &str) -> Result<Option<StoredRoster>, StorageError> {
        Ok(None)
    }

    async fn manifest_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    async fn mapping(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.mapping.as_ref().map(|text| text.as_bytes().to_vec()))
    }

    async fn put_report(
        &self,
        run_id: &str,
        roster: &str,
        _json: &[u8],
        markdown: &str,
    ) -> Result<(), StorageError> {
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((run_id.into(), roster.into(), markdown.into()));
        Ok(())
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StorageError> {
        self.audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(records);
        Ok(())
    }

    async fn append_failures(
        &self,
        run_id: &str,
        roster: &str,
        _jsonl: &str,
        markdown: &str,
    ) -> Result<(), StorageError> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((run_id.into(), roster.into(), markdown.into()));
        Ok(())
    }
}
