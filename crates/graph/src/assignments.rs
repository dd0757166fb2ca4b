//! Access package assignments.

use super::GraphClient;
use super::entitlement::EM;
use super::error::GraphError;
use super::odata::{encode_path_segment, quote, relative_url};
use enroll_core::tenant::Assignment;

/// Assignment states that give (or are about to give) access.
const ACTIVE_STATES: [&str; 3] = ["delivered", "delivering", "partiallyDelivered"];
/// What every assignment read expands, so the holder and package are known.
const EXPAND: &str = "target,accessPackage,assignmentPolicy";

impl GraphClient {
    /// The active assignments (delivered, delivering, partially delivered) of the access
    /// package `access_package_id`, with their target, package and policy expanded.
    ///
    /// Graph also lists expired assignments, so each active state is asked for in its own
    /// filter; the three go together in one `$batch`.
    ///
    /// # Errors
    ///
    /// The first page that failed after retries.
    pub async fn assignments(
        &self,
        access_package_id: &str,
    ) -> Result<Vec<Assignment>, GraphError> {
        let filters: Vec<String> = ACTIVE_STATES
            .iter()
            .map(|state| {
                format!(
                    "accessPackage/id eq {} and state eq '{state}'",
                    quote(access_package_id)
                )
            })
            .collect();
        let mut assignments = self.assignments_matching(&filters).await?;
        assignments.retain(Assignment::is_active);
        Ok(assignments)
    }

    /// The active assignments of the package `access_package_id` held by the users
    /// `user_ids`: one filter per user, 20 to a `$batch`, so a step checks its people
    /// without listing the whole package.
    ///
    /// # Errors
    ///
    /// The first lookup that failed after retries.
    pub async fn assignments_of_users<S: AsRef<str>>(
        &self,
        access_package_id: &str,
        user_ids: &[S],
    ) -> Result<Vec<Assignment>, GraphError> {
        let filters: Vec<String> = user_ids
            .iter()
            .map(|user| {
                format!(
                    "accessPackage/id eq {} and target/objectId eq {}",
                    quote(access_package_id),
                    quote(user.as_ref())
                )
            })
            .collect();
        let mut assignments = self.assignments_matching(&filters).await?;
        assignments.retain(Assignment::is_active);
        Ok(assignments)
    }

    /// One assignment by id, with target and package expanded; `None` once Graph no longer
    /// knows it.
    ///
    /// # Errors
    ///
    /// Any failure other than 404.
    pub async fn assignment(&self, id: &str) -> Result<Option<Assignment>, GraphError> {
        let url = relative_url(
            &format!("{EM}/assignments/{}", encode_path_segment(id)),
            &[("$expand", EXPAND)],
        );
        match self.get_json(&url).await {
            Ok(assignment) => Ok(Some(assignment)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn assignments_matching(
        &self,
        filters: &[String],
    ) -> Result<Vec<Assignment>, GraphError> {
        let path = format!("{EM}/assignments");
        let urls = filters
            .iter()
            .map(|filter| relative_url(&path, &[("$expand", EXPAND), ("$filter", filter)]));
        let mut assignments: Vec<Assignment> = self.list_each(&path, urls).await?;
        // The same assignment can match two filters only if Graph changed its state
        // between pages; keep it once.
        assignments.sort_by(|a, b| a.id.cmp(&b.id));
        assignments.dedup_by(|a, b| a.id == b.id);
        Ok(assignments)
    }
}
