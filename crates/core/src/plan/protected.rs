//! People no plan removes: break-glass and service accounts, named by address or object id.

use std::collections::BTreeSet;

use crate::roster::email_key;

/// People no plan removes, from the setting `ENROLL_PROTECTED_PEOPLE` and the mapping
/// file's `protectedPeople`: an entry with an `@` is an address (compared by the one rule,
/// [`email_key`]), any other entry a user's object id (compared without case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    keys: BTreeSet<String>,
    ids: BTreeSet<String>,
}

impl Protected {
    /// The people named by `entries` (addresses or object ids; blanks are ignored).
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> Self {
        let mut protected = Self::default();
        protected.extend(entries);
        protected
    }

    /// Reads a comma-separated list (the setting's form).
    pub fn parse(list: &str) -> Self {
        Self::new(list.split([',', ';', ' ']))
    }

    /// Adds the people named by `entries`.
    pub fn extend<'a>(&mut self, entries: impl IntoIterator<Item = &'a str>) {
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            if entry.contains('@') {
                self.keys.insert(email_key(entry));
            } else {
                self.ids.insert(entry.to_ascii_lowercase());
            }
        }
    }

    /// Whether nobody is protected.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.ids.is_empty()
    }

    /// Whether the holder with this object id, known by these addresses, is protected.
    pub fn covers<A: AsRef<str>>(
        &self,
        user_id: Option<&str>,
        addresses: impl IntoIterator<Item = A>,
    ) -> bool {
        user_id.is_some_and(|id| self.ids.contains(&id.to_ascii_lowercase()))
            || (!self.keys.is_empty()
                && addresses
                    .into_iter()
                    .any(|address| self.keys.contains(&email_key(address.as_ref()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_object_ids_are_protected() {
        let protected =
            Protected::parse("BreakGlass@Contoso.com, 5B7E0000-0000-4000-8000-000000000001;;");
        assert!(protected.covers(None, ["breakglass@contoso.COM"]));
        assert!(protected.covers(
            Some("5b7e0000-0000-4000-8000-000000000001"),
            Vec::<&str>::new()
        ));
        assert!(!protected.covers(Some("u-ann"), ["ann@contoso.com"]));
        assert!(!protected.is_empty());
        assert!(Protected::parse(" , ").is_empty());
    }
}
