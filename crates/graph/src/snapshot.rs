//! The tenant snapshot, built straight from Graph's answers.

use super::GraphClient;
use super::error::GraphError;
use std::collections::BTreeMap;

use enroll_core::tenant::{TenantSnapshot, User};

impl GraphClient {
    /// Reads the tenant as the planner sees it: users, catalogs, the access packages (of
    /// `catalog`, given by id or display name, or of every catalog) with their policies, the
    /// delivered assignments of those packages and the open assignment requests for them.
    ///
    /// # Errors
    ///
    /// A read failed after retries, or no catalog has the id or name `catalog`.
    pub async fn snapshot(&self, catalog: Option<&str>) -> Result<TenantSnapshot, GraphError> {
        self.snapshot_of(catalog, None::<&[&str]>).await
    }

    /// Like [`GraphClient::snapshot`], but with only the users who answer to one of
    /// `emails` (as [`GraphClient::users_by_email`] finds them) and the holders of the
    /// packages' assignments (by id): what planning the rosters that name `emails` needs,
    /// without reading every user of the tenant.
    ///
    /// # Errors
    ///
    /// As [`GraphClient::snapshot`].
    pub async fn snapshot_for_people<E: AsRef<str> + Sync>(
        &self,
        catalog: Option<&str>,
        emails: &[E],
    ) -> Result<TenantSnapshot, GraphError> {
        self.snapshot_of(catalog, Some(emails)).await
    }

    /// The snapshot with every user, or with the users of `emails` and the holders.
    async fn snapshot_of<E: AsRef<str> + Sync>(
        &self,
        catalog: Option<&str>,
        emails: Option<&[E]>,
    ) -> Result<TenantSnapshot, GraphError> {
        let catalogs = self.catalogs().await?;
        let catalog_id = match catalog {
            None => None,
            Some(wanted) => {
                let matching: Vec<_> = catalogs
                    .iter()
                    .filter(|c| c.id == wanted || c.display_name.as_deref() == Some(wanted))
                    .collect();
                match matching.as_slice() {
                    [one] => Some(one.id.clone()),
                    [] => {
                        return Err(GraphError::Config(format!(
                            "no access package catalog is named {wanted:?}"
                        )));
                    }
                    _ => {
                        return Err(GraphError::Config(format!(
                            "{} access package catalogs are named {wanted:?}; give the catalog id",
                            matching.len()
                        )));
                    }
                }
            }
        };
        let access_packages = self.access_packages(catalog_id.as_deref()).await?;
        // One package's reads after another would take a round trip each; the client's own
        // limit keeps the parallel reads within Graph's. Open requests are read per package,
        // never tenant-wide.
        let mut reads = tokio::task::JoinSet::new();
        for package in &access_packages {
            let client = self.clone();
            let id = package.id.clone();
            reads.spawn(async move {
                let assignments = client.assignments(&id).await?;
                let requests = client.open_assignment_requests(&id).await?;
                Ok::<_, GraphError>((assignments, requests))
            });
        }
        let mut assignments = Vec::new();
        let mut assignment_requests = Vec::new();
        while let Some(read) = reads.join_next().await {
            let (held, open) = read.map_err(|error| {
                GraphError::Config(format!("an assignment read stopped: {error}"))
            })??;
            assignments.extend(held);
            assignment_requests.extend(open);
        }
        assignments.sort_by(|a, b| a.id.cmp(&b.id));
        assignment_requests.sort_by(|a, b| a.id.cmp(&b.id));
        let users = match emails {
            None => self.users().await?,
            Some(emails) => {
                let mut users: BTreeMap<String, User> = self
                    .users_by_email(emails)
                    .await?
                    .into_values()
                    .flatten()
                    .map(|user| (user.id.clone(), user))
                    .collect();
                let holders: Vec<&str> = assignments
                    .iter()
                    .filter_map(|a| a.target.as_ref()?.object_id.as_deref())
                    .filter(|id| !users.contains_key(*id))
                    .collect();
                for user in self.users_by_id(&holders).await? {
                    users.insert(user.id.clone(), user);
                }
                users.into_values().collect()
            }
        };
        Ok(TenantSnapshot {
            users,
            access_packages,
            assignments,
            assignment_requests,
            catalogs,
            ..TenantSnapshot::default()
        })
    }
}
