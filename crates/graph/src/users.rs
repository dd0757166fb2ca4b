//! Users: bulk lookup by e-mail, one user by id, all users.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

use super::GraphClient;
use super::batch::SubRequest;
use super::error::GraphError;
use super::odata::{
    self, MAX_IN_VALUES, encode_path_segment, guest_upn_prefix, quote, relative_url,
};
use super::request::Page;
use enroll_core::tenant::User;

/// The user properties matching needs; `otherMails` and `userType` come only when asked for.
pub(crate) const USER_SELECT: &str = "id,displayName,mail,otherMails,userPrincipalName,userType";

/// Whether `user` answers to the lowercase `email`: its mail, its
/// user principal name (also in a guest's `#EXT#` form) or one of its other mails.
fn matches(user: &User, email: &str) -> bool {
    let eq = |value: &Option<String>| {
        value
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case(email))
    };
    eq(&user.mail)
        || eq(&user.user_principal_name)
        || user
            .other_mails
            .iter()
            .any(|other| other.eq_ignore_ascii_case(email))
        || user.user_principal_name.as_deref().is_some_and(|upn| {
            upn.to_ascii_lowercase()
                .starts_with(&guest_upn_prefix(email).to_ascii_lowercase())
        })
}

/// The users of one lookup pass, indexed by every lowercase address [`matches`] compares, so
/// that finding the user of each address costs a hash lookup instead of a scan of all
/// users (the scan made a 1,500-address lookup spend most of its time matching).
struct Answering<'u> {
    users: &'u [User],
    /// Lowercase mail, principal name, other mail or guest `#EXT#@` prefix → the position
    /// of the first user with it, so the first user that matches wins, as with a scan.
    first: FxHashMap<String, usize>,
}

impl<'u> Answering<'u> {
    fn new(users: &'u [User]) -> Self {
        let mut first = FxHashMap::default();
        for (position, user) in users.iter().enumerate() {
            let upn = user
                .user_principal_name
                .as_deref()
                .map(str::to_ascii_lowercase);
            // A guest's principal name starts with the prefix `guest_upn_prefix` makes of
            // its address, which holds no '@' before the one ending `#EXT#@`.
            let guest_prefix = upn
                .as_deref()
                .and_then(|upn| upn.find('@').map(|at| &upn[..=at]))
                .filter(|prefix| prefix.ends_with("#ext#@"))
                .map(str::to_owned);
            let keys = user
                .mail
                .iter()
                .chain(&user.other_mails)
                .map(|mail| mail.to_ascii_lowercase())
                .chain(upn)
                .chain(guest_prefix);
            for key in keys {
                first.entry(key).or_insert(position);
            }
        }
        Answering { users, first }
    }

    /// The first user that answers to the lowercase `email`, as [`matches`] decides.
    fn find(&self, email: &str) -> Option<&'u User> {
        if email.matches('@').count() != 1 {
            // Such a prefix holds an '@' of its own, which the index does not model.
            return self.users.iter().find(|user| matches(user, email));
        }
        let by_address = self.first.get(email);
        let by_guest_form = self
            .first
            .get(&guest_upn_prefix(email).to_ascii_lowercase());
        let position = by_address.into_iter().chain(by_guest_form).min()?;
        self.users.get(*position)
    }
}

/// The filters of one lookup pass over `emails` (lowercase, deduplicated), chunked so that
/// each filter clause holds at most 15 values or expressions.
pub(crate) fn lookup_filters(pass: Pass, emails: &[String]) -> Vec<String> {
    match pass {
        Pass::Mail => emails
            .chunks(MAX_IN_VALUES)
            .map(|chunk| odata::in_filter("mail", chunk))
            .collect(),
        Pass::UserPrincipalName => emails
            .chunks(MAX_IN_VALUES)
            .map(|chunk| odata::in_filter("userPrincipalName", chunk))
            .collect(),
        // Lambda operators take one value each; two expressions per address.
        Pass::OtherMailsAndGuestUpn => emails
            .chunks(MAX_IN_VALUES / 2)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|email| {
                        format!(
                            "otherMails/any(x:x eq {}) or startswith(userPrincipalName,{})",
                            quote(email),
                            quote(&guest_upn_prefix(email))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" or ")
            })
            .collect(),
    }
}

/// The lookups, cheapest and most likely first; each later pass asks only for what the
/// earlier ones did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// `mail in (...)`: finds members and invited guests.
    Mail,
    /// `userPrincipalName in (...)`: members without a mail.
    UserPrincipalName,
    /// `otherMails/any(...)` and the guest `#EXT#` form: guests whose mail changed.
    OtherMailsAndGuestUpn,
}

impl GraphClient {
    /// Finds the users who answer to `emails` (case-insensitively: mail, user principal name,
    /// a guest's `#EXT#` principal name, other mails). The map is keyed by the lowercase
    /// address asked for; addresses nobody answers to are absent.
    ///
    /// Addresses go 15 to an `in` filter and 20 filters to a `$batch`, so `n` addresses cost
    /// ⌈n/15⌉ operations when all are found by mail; only the rest are looked up again by
    /// principal name and then by other mails.
    ///
    /// # Errors
    ///
    /// The first lookup that failed after retries.
    pub async fn users_by_email<S: AsRef<str>>(
        &self,
        emails: &[S],
    ) -> Result<BTreeMap<String, User>, GraphError> {
        let mut missing: Vec<String> = emails
            .iter()
            .map(|email| email.as_ref().trim().to_ascii_lowercase())
            .filter(|email| !email.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut found = BTreeMap::new();
        for pass in [
            Pass::Mail,
            Pass::UserPrincipalName,
            Pass::OtherMailsAndGuestUpn,
        ] {
            if missing.is_empty() {
                break;
            }
            let filters = lookup_filters(pass, &missing);
            let users = self.users_matching(&filters).await?;
            let answering = Answering::new(&users);
            missing.retain(|email| match answering.find(email) {
                Some(user) => {
                    found.insert(email.clone(), user.clone());
                    false
                }
                None => true,
            });
        }
        Ok(found)
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
    fn mail_pass_packs_fifteen_per_filter() {
        let filters = lookup_filters(Pass::Mail, &emails(31));
        assert_eq!(filters.len(), 3);
        assert!(filters[0].starts_with("mail in ('p0@example.com','p1@example.com'"));
        assert_eq!(filters[0].matches('@').count(), 15);
        assert_eq!(filters[2].matches('@').count(), 1);
    }

    #[test]
    fn fallback_pass_stays_within_fifteen_expressions() {
        let filters = lookup_filters(Pass::OtherMailsAndGuestUpn, &["o'neil@x.com".to_owned()]);
        assert_eq!(
            filters,
            vec![
                "otherMails/any(x:x eq 'o''neil@x.com') or startswith(userPrincipalName,'o''neil_x.com#EXT#@')"
            ]
        );
        for filter in lookup_filters(Pass::OtherMailsAndGuestUpn, &emails(40)) {
            assert!(filter.matches(" or ").count() < MAX_IN_VALUES);
        }
    }

    #[test]
    fn index_finds_the_same_user_as_a_scan() {
        let user = |id: &str, mail: Option<&str>, upn: &str, other: &[&str]| User {
            id: id.into(),
            mail: mail.map(Into::into),
            user_principal_name: Some(upn.into()),
            other_mails: other.iter().map(|m| (*m).into()).collect(),
            ..User::default()
        };
        let users = vec![
            user("1", Some("Ann@Example.com"), "ann@contoso.com", &[]),
            // Claims ann's address too, but comes later: ann's user wins, as with a scan.
            user("2", None, "other@contoso.com", &["ann@example.com"]),
            user(
                "3",
                None,
                "Bob_Example.org#EXT#@contoso.onmicrosoft.com",
                &[],
            ),
            user(
                "4",
                Some("new@example.net"),
                "x@contoso.com",
                &["Old@Example.net"],
            ),
            // Its guest form and user 5's mail name the same person; the earlier one wins.
            user(
                "5",
                None,
                "carl_example.com#EXT#@contoso.onmicrosoft.com",
                &[],
            ),
            user("6", Some("carl@example.com"), "carl@contoso.com", &[]),
            user("7", None, "weird@contoso.com", &["a@b@c.com"]),
        ];
        let answering = Answering::new(&users);
        let addresses = [
            "ann@example.com",
            "ann@contoso.com",
            "bob@example.org",
            "old@example.net",
            "new@example.net",
            "x@contoso.com",
            "carl@example.com",
            "a@b@c.com",
            "nobody@example.com",
            "bob_example.org#ext#@contoso.onmicrosoft.com",
        ];
        for address in addresses {
            let scanned = users.iter().find(|user| matches(user, address));
            assert_eq!(
                answering.find(address).map(|u| &u.id),
                scanned.map(|u| &u.id),
                "{address}"
            );
        }
        assert_eq!(answering.find("ann@example.com").unwrap().id, "1");
        assert_eq!(answering.find("bob@example.org").unwrap().id, "3");
        assert_eq!(answering.find("carl@example.com").unwrap().id, "5");
        assert!(answering.find("nobody@example.com").is_none());
    }

    #[test]
    fn matching_covers_mail_upn_guest_form_and_other_mails() {
        let guest = User {
            id: "1".into(),
            user_principal_name: Some("Jane_Example.com#EXT#@contoso.onmicrosoft.com".into()),
            other_mails: vec!["jane.old@example.org".into()],
            ..User::default()
        };
        assert!(matches(&guest, "jane@example.com"));
        assert!(matches(&guest, "jane.old@example.org"));
        assert!(!matches(&guest, "jan@example.com"));
        let member = User {
            id: "2".into(),
            mail: Some("Bob@Contoso.com".into()),
            ..User::default()
        };
        assert!(matches(&member, "bob@contoso.com"));
    }
}
