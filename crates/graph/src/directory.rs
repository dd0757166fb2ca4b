//! [`Directory`]: the directory operations the steps use, as a trait, so that their rules
//! can be tested against an in-memory tenant without HTTP. [`GraphClient`] implements it by
//! calling its own methods; their documentation says how each reaches Graph.

use std::collections::BTreeMap;
use std::future::Future;

use super::{
    GraphClient, GraphError, NewAssignment, NewGroupAppRoleAssignment, NewInvitation,
    PackageRequests, UnfinishedRequest,
};
use enroll_core::tenant::{
    AccessPackage, AppRole, AppRoleAssignment, Application, Assignment, AssignmentRequest, Catalog,
    Group, Invitation, ServicePrincipal, User,
};

/// What the steps read from and change in the tenant's directory.
///
/// Batched changes answer each item on its own, in the order given, with the item it is
/// about; an error for which one of [`GraphError`]'s recognisers holds (for example
/// [`GraphError::is_already_done`]) means what it means from Graph. Cheap to clone, so
/// that a step can look several things up at once on other tasks.
pub trait Directory: Clone + Send + Sync + 'static {
    /// Every user who answers to each of `emails` (mail, user principal name, a guest's
    /// `#EXT#` principal name, other mails, SMTP proxy addresses; compared by
    /// [`enroll_core::roster::email_key`]), keyed by the key of the address asked for, in
    /// id order; addresses nobody answers to are absent. Two users or more for an address
    /// means the address is ambiguous. See [`GraphClient::users_by_email`].
    fn users_by_email<E: AsRef<str> + Sync>(
        &self,
        emails: &[E],
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<User>>, GraphError>> + Send;

    /// The users with these object ids that the directory knows; unknown ids are absent.
    /// See [`GraphClient::users_by_id`].
    fn users_by_id<E: AsRef<str> + Sync>(
        &self,
        ids: &[E],
    ) -> impl Future<Output = Result<Vec<User>, GraphError>> + Send;

    /// Invites guests, answering per invitation keyed by the invited address. See
    /// [`GraphClient::invite`].
    fn invite(
        &self,
        invitations: &[NewInvitation],
    ) -> impl Future<Output = Vec<(String, Result<Invitation, GraphError>)>> + Send;

    /// Every access package catalog. See [`GraphClient::catalogs`].
    fn catalogs(&self) -> impl Future<Output = Result<Vec<Catalog>, GraphError>> + Send;

    /// The access packages of one catalog (or of all), with their policies. See
    /// [`GraphClient::access_packages`].
    fn access_packages(
        &self,
        catalog_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<AccessPackage>, GraphError>> + Send;

    /// The active assignments of a package. See [`GraphClient::assignments`].
    fn assignments(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<Vec<Assignment>, GraphError>> + Send;

    /// The active assignments of a package held by the users `user_ids`. See
    /// [`GraphClient::assignments_of_users`].
    fn assignments_of_users<E: AsRef<str> + Sync>(
        &self,
        access_package_id: &str,
        user_ids: &[E],
    ) -> impl Future<Output = Result<Vec<Assignment>, GraphError>> + Send;

    /// One assignment by id; `None` once the directory no longer knows it. See
    /// [`GraphClient::assignment`].
    fn assignment(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Assignment>, GraphError>> + Send;

    /// The assignment requests of a package that are still open. See
    /// [`GraphClient::open_assignment_requests`].
    fn open_assignment_requests(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<Vec<AssignmentRequest>, GraphError>> + Send;

    /// The requests of a package that did not deliver, or not yet. See
    /// [`GraphClient::unfinished_assignment_requests`].
    fn unfinished_assignment_requests(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<Vec<UnfinishedRequest>, GraphError>> + Send;

    /// The requests of a package a plan needs, each state read once. See
    /// [`GraphClient::package_requests`]. By default, the open and the unfinished ones read
    /// apart, for a directory that has no cheaper way.
    fn package_requests(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<PackageRequests, GraphError>> + Send {
        async move {
            Ok(PackageRequests {
                open: self.open_assignment_requests(access_package_id).await?,
                unfinished: self
                    .unfinished_assignment_requests(access_package_id)
                    .await?,
            })
        }
    }

    /// Asks Graph to deliver requests again. See
    /// [`GraphClient::reprocess_assignment_requests`].
    fn reprocess_assignment_requests(
        &self,
        request_ids: &[String],
    ) -> impl Future<Output = Vec<(String, Result<(), GraphError>)>> + Send;

    /// Asks Graph to enforce assignments again. See [`GraphClient::reprocess_assignments`].
    fn reprocess_assignments(
        &self,
        assignment_ids: &[String],
    ) -> impl Future<Output = Vec<(String, Result<(), GraphError>)>> + Send;

    /// Asks for assignments (`adminAdd`). See [`GraphClient::add_assignments`].
    fn add_assignments(
        &self,
        assignments: &[NewAssignment],
    ) -> impl Future<Output = Vec<(NewAssignment, Result<AssignmentRequest, GraphError>)>> + Send;

    /// Asks to remove assignments by id (`adminRemove`). See
    /// [`GraphClient::remove_assignments`].
    fn remove_assignments(
        &self,
        assignment_ids: &[String],
    ) -> impl Future<Output = Vec<(String, Result<AssignmentRequest, GraphError>)>> + Send;

    /// The application registration with a client id. See
    /// [`GraphClient::application_by_app_id`].
    fn application_by_app_id(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<Application>, GraphError>> + Send;

    /// The service principal of the application with a client id. See
    /// [`GraphClient::service_principal_by_app_id`].
    fn service_principal_by_app_id(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<ServicePrincipal>, GraphError>> + Send;

    /// The groups with one of these display names (a name may match several). See
    /// [`GraphClient::groups_by_display_name`].
    fn groups_by_display_name<E: AsRef<str> + Sync>(
        &self,
        names: &[E],
    ) -> impl Future<Output = Result<Vec<Group>, GraphError>> + Send;

    /// The groups with one of these object ids. See [`GraphClient::groups_by_id`].
    fn groups_by_id<E: AsRef<str> + Sync>(
        &self,
        ids: &[E],
    ) -> impl Future<Output = Result<Vec<Group>, GraphError>> + Send;

    /// Who holds app roles of a service principal. See
    /// [`GraphClient::app_role_assignments_of_service_principal`].
    fn app_role_assignments_of_service_principal(
        &self,
        service_principal_id: &str,
    ) -> impl Future<Output = Result<Vec<AppRoleAssignment>, GraphError>> + Send;

    /// Replaces an application's app roles by the complete list `app_roles`. See
    /// [`GraphClient::update_app_roles`].
    fn update_app_roles(
        &self,
        application_id: &str,
        app_roles: &[AppRole],
    ) -> impl Future<Output = Result<(), GraphError>> + Send;

    /// Grants app roles to groups. See [`GraphClient::add_group_app_role_assignments`].
    fn add_group_app_role_assignments(
        &self,
        assignments: &[NewGroupAppRoleAssignment],
    ) -> impl Future<
        Output = Vec<(
            NewGroupAppRoleAssignment,
            Result<AppRoleAssignment, GraphError>,
        )>,
    > + Send;

    /// Removes app role assignments given as `(group id, assignment id)`. See
    /// [`GraphClient::remove_group_app_role_assignments`].
    fn remove_group_app_role_assignments(
        &self,
        assignments: &[(String, String)],
    ) -> impl Future<Output = Vec<((String, String), Result<(), GraphError>)>> + Send;
}

// Each method names `GraphClient::…`, which resolves to the inherent method (inherent
// methods come before trait methods), so none of these calls itself.
impl Directory for GraphClient {
    fn users_by_email<E: AsRef<str> + Sync>(
        &self,
        emails: &[E],
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<User>>, GraphError>> + Send {
        GraphClient::users_by_email(self, emails)
    }

    fn users_by_id<E: AsRef<str> + Sync>(
        &self,
        ids: &[E],
    ) -> impl Future<Output = Result<Vec<User>, GraphError>> + Send {
        GraphClient::users_by_id(self, ids)
    }

    fn invite(
        &self,
        invitations: &[NewInvitation],
    ) -> impl Future<Output = Vec<(String, Result<Invitation, GraphError>)>> + Send {
        GraphClient::invite(self, invitations)
    }

    fn catalogs(&self) -> impl Future<Output = Result<Vec<Catalog>, GraphError>> + Send {
        GraphClient::catalogs(self)
    }

    fn access_packages(
        &self,
        catalog_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<AccessPackage>, GraphError>> + Send {
        GraphClient::access_packages(self, catalog_id)
    }

    fn assignments(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<Vec<Assignment>, GraphError>> + Send {
        GraphClient::assignments(self, access_package_id)
    }

    fn assignments_of_users<E: AsRef<str> + Sync>(
        &self,
        access_package_id: &str,
        user_ids: &[E],
    ) -> impl Future<Output = Result<Vec<Assignment>, GraphError>> + Send {
        GraphClient::assignments_of_users(self, access_package_id, user_ids)
    }

    fn assignment(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Assignment>, GraphError>> + Send {
        GraphClient::assignment(self, id)
    }

    fn open_assignment_requests(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<Vec<AssignmentRequest>, GraphError>> + Send {
        GraphClient::open_assignment_requests(self, access_package_id)
    }

    fn unfinished_assignment_requests(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<Vec<UnfinishedRequest>, GraphError>> + Send {
        GraphClient::unfinished_assignment_requests(self, access_package_id)
    }

    fn package_requests(
        &self,
        access_package_id: &str,
    ) -> impl Future<Output = Result<PackageRequests, GraphError>> + Send {
        GraphClient::package_requests(self, access_package_id)
    }

    fn reprocess_assignment_requests(
        &self,
        request_ids: &[String],
    ) -> impl Future<Output = Vec<(String, Result<(), GraphError>)>> + Send {
        GraphClient::reprocess_assignment_requests(self, request_ids)
    }

    fn reprocess_assignments(
        &self,
        assignment_ids: &[String],
    ) -> impl Future<Output = Vec<(String, Result<(), GraphError>)>> + Send {
        GraphClient::reprocess_assignments(self, assignment_ids)
    }

    fn add_assignments(
        &self,
        assignments: &[NewAssignment],
    ) -> impl Future<Output = Vec<(NewAssignment, Result<AssignmentRequest, GraphError>)>> + Send
    {
        GraphClient::add_assignments(self, assignments)
    }

    fn remove_assignments(
        &self,
        assignment_ids: &[String],
    ) -> impl Future<Output = Vec<(String, Result<AssignmentRequest, GraphError>)>> + Send {
        GraphClient::remove_assignments(self, assignment_ids)
    }

    fn application_by_app_id(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<Application>, GraphError>> + Send {
        GraphClient::application_by_app_id(self, app_id)
    }

    fn service_principal_by_app_id(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<ServicePrincipal>, GraphError>> + Send {
        GraphClient::service_principal_by_app_id(self, app_id)
    }

    fn groups_by_display_name<E: AsRef<str> + Sync>(
        &self,
        names: &[E],
    ) -> impl Future<Output = Result<Vec<Group>, GraphError>> + Send {
        GraphClient::groups_by_display_name(self, names)
    }

    fn groups_by_id<E: AsRef<str> + Sync>(
        &self,
        ids: &[E],
    ) -> impl Future<Output = Result<Vec<Group>, GraphError>> + Send {
        GraphClient::groups_by_id(self, ids)
    }

    fn app_role_assignments_of_service_principal(
        &self,
        service_principal_id: &str,
    ) -> impl Future<Output = Result<Vec<AppRoleAssignment>, GraphError>> + Send {
        GraphClient::app_role_assignments_of_service_principal(self, service_principal_id)
    }

    fn update_app_roles(
        &self,
        application_id: &str,
        app_roles: &[AppRole],
    ) -> impl Future<Output = Result<(), GraphError>> + Send {
        GraphClient::update_app_roles(self, application_id, app_roles)
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
        GraphClient::add_group_app_role_assignments(self, assignments)
    }

    fn remove_group_app_role_assignments(
        &self,
        assignments: &[(String, String)],
    ) -> impl Future<Output = Vec<((String, String), Result<(), GraphError>)>> + Send {
        GraphClient::remove_group_app_role_assignments(self, assignments)
    }
}
