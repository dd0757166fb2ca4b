//! Users: bulk lookup by e-mail (every user an address belongs to), by id, one user, all users.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

use super::GraphClient;
use super::batch::SubRequest;
use super::error::GraphError;
use super::odata::{
    self, MAX_IN_VALUES, encode_path_segment, guest_upn_prefix, quote, relative_url,
};
use super::request::Page;
use enroll_core::roster::email_key;
use enroll_core::tenant::User;

/// The user properties matching needs; `otherMails`, `proxyAddresses` and `userType` come
/// only when asked for.
pub(crate) const USER_SELECT: &str =
    "id,displayName,mail,otherMails,proxyAddresses,userPrincipalName,userType";

/// Ways one address is looked for: `mail`, `userPrincipalName`, `otherMails`, the SMTP
/// `proxyAddresses`, and the guest `#EXT#` form of `userPrincipalName`.
const CLAUSES_PER_ADDRESS: usize = 5;

/// Addresses per filter, so that a filter holds at most 15 values or expressions.
const ADDRESSES_PER_FILTER: usize = MAX_IN_VALUES / CLAUSES_PER_ADDRESS;

/// The users of one lookup, indexed by the key ([`email_key`]) of every address each is
/// known by ([`User::addresses`]), so that finding the users of each address asked for
/// costs a hash lookup instead of a scan of all users.
struct Answering<'u> {
    users: &'u [User],
    /// Address key → the positions of the users known by it, in order, each once.
    by_key: FxHashMap<String, Vec<usize>>,
}

impl<'u> Answering<'u> {
    fn new(users: &'u [User]) -> Self {
        let mut by_key: FxHashMap<String, Vec<usize>> = FxHashMap::default();
        for (position, user) in users.iter().enumerate() {
            for address in user.addresses() {
                let holders = by_key.entry(email_key(&address)).or_default();
                if !holders.contains(&position) {
                    holders.push(position);
                }
            }
        }
        Answering { users, by_key }
    }

    /// Every user known by `email`, as [`User::answers_to`] decides, each once.
    fn find(&self, email: &str) -> Vec<&'u User> {
        self.by_key
            .get(&email_key(email))
            .map(|positions| positions.iter().map(|p| &self.users[*p]).collect())
            .unwrap_or_default()
    }
}

/// The filters that find every user each of `emails` (distinct keys) belongs to: three
/// addresses to a filter, each looked for in every way a user can be known by. Graph
/// compares these properties without case.
pub(crate) fn lookup_filters(emails: &[String]) -> Vec<String> {
    emails
        .chunks(ADDRESSES_PER_FILTER)
        .map(|chunk| {
            let mut clauses = vec![
                odata::in_filter("mail", chunk),
                odata::in_filter("userPrincipalName", chunk),
            ];
            for email in chunk {
                clauses.push(format!("otherMails/any(x:x eq {})", quote(email)));
                clauses.push(format!(
                    "proxyAddresses/any(x:x eq {})",
                    quote(&format!("smtp:{email}"))
                ));
                clauses.push(format!(
                    "startswith(userPrincipalName,{})",
                    quote(&guest_upn_prefix(email))
                ));
            }
            clauses.join(" or ")
        })
        .collect()
}

impl GraphClient {
    /// Finds every user who answers to each of `emails`: by mail, user principal name (also
    /// a guest's `#EXT#` form), other mails or SMTP proxy address, compared by the one
    /// rule ([`email_key`]). The map is keyed by the [`email_key`] of each address asked
    /// for, with its users in id order; addresses nobody answers to are absent. An address
    /// with two users or more is ambiguous: the caller must not pick one.
    ///
    /// Three addresses go to a filter (15 clauses, Graph's limit) and 20 filters to a
    /// `$batch`, so `n` addresses cost ⌈n/3⌉ operations: finding every user of an address
    /// means asking for each of its five forms.
    ///
    /// # Errors
    ///
    /// The first lookup that failed after retries, or a page Graph answered without `value`.
    pub async fn users_by_email<S: AsRef<str>>(
        &self,
        emails: &[S],
    ) -> Result<BTreeMap<String, Vec<User>>, GraphError> {
        let wanted: BTreeMap<String, &str> = emails
            .iter()
            .map(|email| email.as_ref().trim())
            .filter(|email| !email.is_empty())
            .map(|email| (email_key(email), email))
            .collect();
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let asked: Vec<String> = wanted.values().map(|email| (*email).to_owned()).collect();
        let mut users = self.users_matching(&lookup_filters(&asked)).await?;
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users.dedup_by(|a, b| a.id == b.id);
        let answering = Answering::new(&users);
        Ok(wanted
            .into_iter()
            .filter_map(|(key, email)| {
                let found = answering.find(email);
                (!found.is_empty()).then(|| (key, found.into_iter().cloned().collect()))
            })
            .collect())
    }

    /// The users with these object ids that Graph knows (15 ids to an `in` filter, 20
    /// filters to a `$batch`); ids it does not know are absent.
    ///
    /// # Errors
    ///
    /// The first lookup that failed after retries, or a page Graph answered without `value`.
    pub async fn users_by_id<S: AsRef<str>>(&self, ids: &[S]) -> Result<Vec<User>, GraphError> {
        let ids: Vec<&str> = ids
            .iter()
            .map(AsRef::as_ref)
            .filter(|id| !id.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let filters: Vec<String> = ids
            .chunks(MAX_IN_VALUES)
            .map(|chunk| odata::in_filter("id", chunk))
            .collect();
        let mut users = self.users_matching(&filters).await?;
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users.dedup_by(|a, b| a.id == b.id);
        Ok(users)
    }

    /// The users matching any of `filters`, each filter one request in a `$batch`.
    pub(crate) async fn users_matching(&self, filters: &[String]) -> Result<Vec<User>, GraphError> {
        let requests = filters
            .iter()
            .map(|filter| {
                SubRequest::get(relative_url(
                    "/users",
                    &[
                        ("$filter", filter),
                        ("$select", USER_SELECT),
                        ("$top", "999"),
                    ],
                ))
            })
            .collect();
        let mut users = Vec::new();
        for answer in self.batch(requests).await {
            let response = answer?;
            let page: Page<User> =
                serde_json::from_value(response.body).map_err(|source| GraphError::Decode {
                    method: "GET".into(),
                    path: "/users".into(),
                    source: std::sync::Arc::new(source),
                })?;
            users.extend(self.rest_of(page).await?);
        }
        Ok(users)
    }

    /// One user by object id or user principal name; `None` when Graph does not know it
    /// (yet: a freshly invited guest may take a while to replicate).
    ///
    /// # Errors
    ///
    /// Any failure other than 404.
    pub async fn user(&self, id_or_upn: &str) -> Result<Option<User>, GraphError> {
        let url = relative_url(
            &format!("/users/{}", encode_path_segment(id_or_upn)),
            &[("$select", USER_SELECT)],
        );
        match self.get_json(&url).await {
            Ok(user) => Ok(Some(user)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every user of the tenant (paged, 999 per page), with the properties matching needs.
    ///
    /// # Errors
    ///
    /// The first page that failed after retries.
    pub async fn users(&self) -> Result<Vec<User>, GraphError> {
        self.get_all(&relative_url(
            "/users",
            &[("$select", USER_SELECT), ("$top", "999")],
        ))
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn emails(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("p{i}@example.com")).collect()
    }

    #[test]
    fn each_filter_looks_for_three_addresses_in_five_ways() {
        let filters = lookup_filters(&["o'neil@x.com".to_owned()]);
        assert_eq!(
            filters,
            vec![
                "mail in ('o''neil@x.com') or userPrincipalName in ('o''neil@x.com') or otherMails/any(x:x eq 'o''neil@x.com') or proxyAddresses/any(x:x eq 'smtp:o''neil@x.com') or startswith(userPrincipalName,'o''neil_x.com#EXT#@')"
            ]
        );
        let filters = lookup_filters(&emails(31));
        assert_eq!(filters.len(), 11, "⌈31/3⌉");
        for filter in &filters[..10] {
            // Two `in` lists of three values, and three expressions for each address: 15
            // clauses, as Graph counts them.
            let parts = filter.matches(" or ").count() + 1;
            assert_eq!(parts, 2 + 3 * 3, "{filter}");
            assert_eq!(filter.matches("@example.com'").count(), 3 * 4, "{filter}");
            assert_eq!(filter.matches("#EXT#@'").count(), 3, "{filter}");
        }
        assert_eq!(filters[10].matches("p30@example.com").count(), 4);
    }

    fn user(id: &str, mail: Option<&str>, upn: &str, other: &[&str], proxies: &[&str]) -> User {
        User {
            id: id.into(),
            mail: mail.map(Into::into),
            user_principal_name: Some(upn.into()),
            other_mails: other.iter().map(|m| (*m).into()).collect(),
            proxy_addresses: proxies.iter().map(|m| (*m).into()).collect(),
            ..User::default()
        }
    }

    #[test]
    fn the_index_finds_every_user_of_an_address_as_a_scan_does() {
        let users = vec![
            user("1", Some("Ann@Example.com"), "ann@contoso.com", &[], &[]),
            // Claims ann's address too: both are found, so nobody picks one.
            user("2", None, "other@contoso.com", &["ann@example.com"], &[]),
            user(
                "3",
                None,
                "Bob_Example.org#EXT#@contoso.onmicrosoft.com",
                &[],
                &[],
            ),
            user(
                "4",
                Some("new@example.net"),
                "x@contoso.com",
                &["Old@Example.net"],
                &["SMTP:new@example.net", "smtp:Ĳsbrand@Example.net"],
            ),
            user(
                "5",
                None,
                "carl_example.com#EXT#@contoso.onmicrosoft.com",
                &[],
                &[],
            ),
            user("6", Some("carl@example.com"), "carl@contoso.com", &[], &[]),
            user("7", None, "weird@contoso.com", &["a@b@c.com"], &[]),
        ];
        let answering = Answering::new(&users);
        let addresses = [
            "ann@example.com",
            "ann@contoso.com",
            "bob@example.org",
            "old@example.net",
            "new@example.net",
            "ĳsbrand@example.net",
            "x@contoso.com",
            "carl@example.com",
            "a@b@c.com",
            "nobody@example.com",
            "bob_example.org#ext#@contoso.onmicrosoft.com",
        ];
        for address in addresses {
            let scanned: Vec<&str> = users
                .iter()
                .filter(|user| user.answers_to(address))
                .map(|u| u.id.as_str())
                .collect();
            let found: Vec<&str> = answering
                .find(address)
                .iter()
                .map(|u| u.id.as_str())
                .collect();
            assert_eq!(found, scanned, "{address}");
        }
        let ids = |address| -> Vec<String> {
            answering
                .find(address)
                .iter()
                .map(|u| u.id.clone())
                .collect()
        };
        assert_eq!(ids("ANN@example.com"), ["1", "2"]);
        assert_eq!(ids("bob@example.org"), ["3"]);
        assert_eq!(ids("Ĳsbrand@example.net"), ["4"]);
        assert_eq!(ids("carl@example.com"), ["5", "6"]);
        assert!(ids("nobody@example.com").is_empty());
    }
}
