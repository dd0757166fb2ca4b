//! Access package assignments.

use super::GraphClient;
use super::entitlement::EM;
use super::error::GraphError;
use super::odata::{quote, relative_url};
use crate::tenant::Assignment;

impl GraphClient {
    /// The delivered assignments of the access package `access_package_id`, with their
    /// target, package and policy expanded.
    ///
    /// Graph also lists expired assignments, so the state is filtered; assignments still
    /// being delivered show up as open assignment requests instead.
    ///
    /// # Errors
    ///
    /// The first page that failed after retries.
    pub async fn assignments(
        &self,
        access_package_id: &str,
    ) -> Result<Vec<Assignment>, GraphError> {
        let filter = format!(
            "accessPackage/id eq {} and state eq 'delivered'",
            quote(access_package_id)
        );
        self.get_all(&relative_url(
            &format!("{EM}/assignments"),
            &[
                ("$expand", "target,accessPackage,assignmentPolicy"),
                ("$filter", &filter),
            ],
        ))
        .await
    }
}
