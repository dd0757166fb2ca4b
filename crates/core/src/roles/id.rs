//! Deterministic app role ids for manifest roles written without one.
//!
//! An app role's id is stable forever (tokens, assignments and consent refer to it), so a
//! role without an id must get the same one on every run and on every machine: a name-based
//! UUID (version 5, RFC 9562 §5.5) of the role's `value` in a fixed namespace. Anyone can
//! compute it too, e.g. Python's `uuid.uuid5(uuid.UUID(ROLE_ID_NAMESPACE), value)`.

/// The namespace of derived role ids. Never change it: every derived id depends on it.
pub const ROLE_ID_NAMESPACE: &str = "0b6a2c5e-9f1d-4c3b-8e7a-5d2f1c0e9b84";

/// The id a role with this `value` gets when the manifest gives none.
pub fn derived_role_id(value: &str) -> String {
    // The namespace is a constant that parses; the fallback only keeps this total.
    let namespace = parse_guid(ROLE_ID_NAMESPACE).unwrap_or_default();
    uuid_v5(namespace, value.as_bytes())
}

/// A version-5 UUID of `name` in `namespace`, in Graph's lower-case hyphenated form.
pub fn uuid_v5(namespace: [u8; 16], name: &[u8]) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::from_bytes(namespace), name).to_string()
}

/// Whether `text` is a GUID in the 8-4-4-4-12 hex form Graph uses for ids.
pub fn is_guid(text: &str) -> bool {
    parse_guid(text).is_some()
}

/// The 16 bytes of a GUID in 8-4-4-4-12 hex form (any case).
pub fn parse_guid(text: &str) -> Option<[u8; 16]> {
    // `uuid` also reads the simple, braced and URN forms; Graph writes only the hyphenated
    // one, the only form 36 characters long.
    if text.len() != 36 {
        return None;
    }
    uuid::Uuid::try_parse(text).ok().map(uuid::Uuid::into_bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn matches_the_rfc_namespace_example() {
        // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
        let dns = parse_guid("6ba7b810-9dad-11d1-80b4-00c04fd430c8").unwrap();
        assert_eq!(
            uuid_v5(dns, b"python.org"),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
    }

    #[test]
    fn derived_ids_are_stable_and_differ_per_value() {
        let id = derived_role_id("Reports.Read");
        assert_eq!(id, derived_role_id("Reports.Read"));
        assert_ne!(id, derived_role_id("Reports.Write"));
        assert_ne!(
            id,
            derived_role_id("reports.read"),
            "values are case-sensitive"
        );
        assert!(is_guid(&id));
        assert_eq!(&id[14..15], "5", "version 5");
        assert!("89ab".contains(&id[19..20]), "RFC variant");
    }

    #[test]
    fn guids_are_recognised_in_any_case_and_nothing_else() {
        assert!(is_guid("0B6A2C5E-9F1D-4C3B-8E7A-5D2F1C0E9B84"));
        assert!(!is_guid("0b6a2c5e9f1d4c3b8e7a5d2f1c0e9b84"));
        assert!(!is_guid("0b6a2c5e-9f1d-4c3b-8e7a-5d2f1c0e9b8g"));
        assert!(!is_guid("0b6a2c5e-9f1d-4c3b-8e7a-5d2f1c0e9b+4"));
        assert!(!is_guid("APP-Alpha.Approver"));
        assert!(!is_guid(""));
    }
}
