//! Entitlement management catalogs and access packages.

use super::GraphClient;
use super::error::GraphError;
use super::odata::{quote, relative_url};
use enroll_core::tenant::{AccessPackage, Catalog};

/// Where entitlement management lives.
pub(crate) const EM: &str = "/identityGovernance/entitlementManagement";

impl GraphClient {
    /// Every access package catalog.
    ///
    /// # Errors
    ///
    /// The first page that failed after retries.
    pub async fn catalogs(&self) -> Result<Vec<Catalog>, GraphError> {
        self.get_all(&relative_url(
            &format!("{EM}/catalogs"),
            &[("$select", "id,displayName")],
        ))
        .await
    }

    /// The access packages of the catalog with id `catalog_id`, or of every catalog, each
    /// with its assignment policies and its catalog (`$expand=assignmentPolicies,catalog`),
    /// so a roster in a catalog folder can be matched against a snapshot.
    ///
    /// # Errors
    ///
    /// The first page that failed after retries.
    pub async fn access_packages(
        &self,
        catalog_id: Option<&str>,
    ) -> Result<Vec<AccessPackage>, GraphError> {
        let path = format!("{EM}/accessPackages");
        let url = match catalog_id {
            Some(id) => relative_url(
                &path,
                &[
                    ("$filter", &format!("catalog/id eq {}", quote(id))),
                    ("$expand", "assignmentPolicies,catalog"),
                ],
            ),
            None => relative_url(&path, &[("$expand", "assignmentPolicies,catalog")]),
        };
        self.get_all(&url).await
    }
}
