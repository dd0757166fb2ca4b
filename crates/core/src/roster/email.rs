//! E-mail address checks: reject what Entra would reject for a B2B invitation.
//!
//! Entra's invitation API refuses addresses whose local part contains
//! `~ ! # $ % ^ & * ( ) + = [ ] { } \ / | ; : " < > ? ,`, or starts or ends with `.` or `-`
//! (<https://learn.microsoft.com/graph/api/invitation-post>). We check that and the usual
//! shape rules here, so a roster fails in the pull request instead of at invitation time.

/// The longest address Entra and RFC 5321 accept.
pub const MAX_EMAIL_LEN: usize = 254;
/// The longest local part RFC 5321 accepts.
const MAX_LOCAL_LEN: usize = 64;
/// Characters Entra's invitation API refuses in the local part.
const FORBIDDEN_LOCAL: &[char] = &[
    '~', '!', '#', '$', '%', '^', '&', '*', '(', ')', '+', '=', '[', ']', '{', '}', '\\', '/', '|',
    ';', ':', '"', '<', '>', '?', ',',
];

/// Checks one address; on failure returns a sentence saying what is wrong with it.
pub fn check_email(address: &str) -> Result<(), String> {
    let length = address.chars().count();
    if length > MAX_EMAIL_LEN {
        return Err(format!(
            "is {length} characters long; an e-mail address may have at most {MAX_EMAIL_LEN}"
        ));
    }
    if address.contains('<') || address.contains('>') {
        return Err("is in display-name form (`Name <address>`); write only the address".into());
    }
    if address.chars().any(char::is_whitespace) {
        return Err("contains a space".into());
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err("has no `@`".into());
    };
    if domain.contains('@') {
        return Err("has more than one `@`".into());
    }
    check_local_part(local)?;
    check_domain(domain)
}

fn check_local_part(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("has nothing before the `@`".into());
    }
    if local.chars().count() > MAX_LOCAL_LEN {
        return Err(format!(
            "has more than {MAX_LOCAL_LEN} characters before the `@`"
        ));
    }
    if let Some(bad) = local.chars().find(|c| FORBIDDEN_LOCAL.contains(c)) {
        return Err(format!(
            "contains `{bad}` before the `@`, which Entra refuses in invitations"
        ));
    }
    if local.contains("..") {
        return Err("has two dots in a row".into());
    }
    if local.starts_with(['.', '-']) || local.ends_with(['.', '-']) {
        return Err("starts or ends the part before the `@` with `.` or `-`".into());
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("has nothing after the `@`".into());
    }
    if domain.contains("..") {
        return Err("has two dots in a row".into());
    }
    if !domain.contains('.') {
        return Err(format!(
            "has the domain `{domain}` without a dot (expected something like `example.com`)"
        ));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("has a domain that starts or ends with a dot".into());
        }
        if let Some(bad) = label.chars().find(|c| !(c.is_alphanumeric() || *c == '-')) {
            return Err(format!("contains `{bad}` in the domain"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "has the domain part `{label}` that starts or ends with `-`"
            ));
        }
    }
    let top_level = domain.rsplit('.').next().unwrap_or_default();
    if top_level.chars().count() < 2 || top_level.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "ends in `.{top_level}`, which is not a top-level domain"
        ));
    }
    Ok(())
}

/// [`email_key`] without a copy when the address is already in that form (most are).
pub fn email_key_borrowed(address: &str) -> std::borrow::Cow<'_, str> {
    if address
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        std::borrow::Cow::Borrowed(address)
    } else {
        std::borrow::Cow::Owned(email_key(address))
    }
}

/// The form in which two addresses are compared: each character folded on its own, so two
/// addresses are the same person exactly when their keys are equal (see [`same_address`]).
///
/// Entra compares directory strings, addresses included, without regard to case, character
/// by character, the way an ordinal case-insensitive comparison does: `Ĳsbrand@` and
/// `ĳsbrand@` are one address, and so are `ΣΑΣ@` and `σας@`, but `ß` is not `ss` (no
/// character becomes two) and `İ` is not `i`. The planner, the Graph lookups, the simulated
/// tenant's filters and the steps all compare through this function.
pub fn email_key(address: &str) -> String {
    if address.is_ascii() {
        address.to_ascii_lowercase()
    } else {
        address.chars().map(fold_case).collect()
    }
}

/// Whether two addresses (or any two directory strings) are the same without regard to case,
/// by the rule of [`email_key`].
pub fn same_address(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.chars().map(fold_case).eq(b.chars().map(fold_case))
    }
}

/// Whether `text` starts with `prefix` without regard to case, by the rule of [`email_key`]
/// (Graph's `startswith` on directory strings).
pub fn starts_with_address(text: &str, prefix: &str) -> bool {
    let mut text = text.chars().map(fold_case);
    prefix
        .chars()
        .map(fold_case)
        .all(|c| text.next() == Some(c))
}

/// One character folded for comparison: its simple uppercase, then that character's simple
/// lowercase (a mapping to several characters, such as `ß` → `SS`, leaves it as it is).
/// Going through the uppercase folds the characters an ordinal comparison equates, such as
/// `ς` and `σ`, or `ſ` and `s`, to one.
fn fold_case(c: char) -> char {
    fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
        let first = chars.next()?;
        chars.next().is_none().then_some(first)
    }
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase()).unwrap_or(upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "userz@example.com",
            "first.last@sub.example.co.uk",
            "o'neil@example.ie",
            "a_b-c@example-domain.nl",
            "zoë@exämple.de",
            "x@a.io",
        ] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_what_entra_rejects_with_a_reason() {
        let cases = [
            ("userz.example.com", "no `@`"),
            ("@example.com", "nothing before"),
            ("userz@", "nothing after"),
            ("user z@example.com", "space"),
            ("userz@localhost", "without a dot"),
            ("user..z@example.com", "two dots"),
            ("userz@example..com", "two dots"),
            ("User Z <userz@example.com>", "display-name form"),
            ("userz@@example.com", "more than one"),
            ("a@b@example.com", "more than one"),
            (".userz@example.com", "starts or ends"),
            ("userz-@example.com", "starts or ends"),
            ("user+tag@example.com", "`+`"),
            ("user,z@example.com", "`,`"),
            ("userz@exa_mple.com", "`_` in the domain"),
            ("userz@example.c", "not a top-level domain"),
            ("userz@10.0.0.1", "not a top-level domain"),
            ("userz@-example.com", "starts or ends with `-`"),
            ("userz@example.com.", "starts or ends with a dot"),
        ];
        for (bad, expected) in cases {
            let message = check_email(bad).expect_err(bad);
            assert!(message.contains(expected), "{bad}: {message}");
        }
    }

    #[test]
    fn rejects_addresses_over_254_characters() {
        let long = format!("a@{}.com", "b".repeat(250));
        assert!(check_email(&long).unwrap_err().contains("at most 254"));
        let just_fits = format!("{}@{}.com", "a".repeat(60), "b".repeat(189));
        assert_eq!(just_fits.len(), 254);
        assert_eq!(check_email(&just_fits), Ok(()));
    }

    #[test]
    fn borrowed_keys_equal_owned_keys() {
        for address in [
            "userz@example.com",
            "UserZ@Example.COM",
            "zoë@exämple.de",
            "ZOË@EXAMPLE.DE",
        ] {
            assert_eq!(email_key_borrowed(address), email_key(address), "{address}");
        }
        assert!(matches!(
            email_key_borrowed("a@b.co"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn keys_ignore_case_including_non_ascii() {
        assert_eq!(email_key("UserZ@Example.COM"), "userz@example.com");
        assert_eq!(email_key("ZOË@EXAMPLE.DE"), "zoë@example.de");
    }

    #[test]
    fn one_rule_decides_which_addresses_are_one_person() {
        for (a, b) in [
            ("Ĳsbrand@example.nl", "ĳsbrand@example.nl"),
            ("ΣΑΣ@example.gr", "σας@example.gr"),
            ("σασ@example.gr", "σας@example.gr"),
            ("ſam@example.com", "SAM@example.com"),
            ("ẞ@example.de", "ß@example.de"),
            ("Ǆ@example.com", "ǆ@example.com"),
            ("ǅ@example.com", "ǆ@example.com"),
        ] {
            assert!(same_address(a, b), "{a} = {b}");
            assert_eq!(email_key(a), email_key(b), "{a} = {b}");
        }
        for (a, b) in [
            ("ß@example.de", "ss@example.de"),
            ("İ@example.tr", "i@example.tr"),
            ("ann@example.com", "anne@example.com"),
        ] {
            assert!(!same_address(a, b), "{a} ≠ {b}");
            assert_ne!(email_key(a), email_key(b), "{a} ≠ {b}");
        }
        assert!(starts_with_address(
            "ĲSBRAND_example.nl#EXT#@contoso.onmicrosoft.com",
            "ĳsbrand_example.nl#ext#@"
        ));
        assert!(!starts_with_address("ĳs@x.nl", "ĳsbrand"));
    }

    #[test]
    fn folding_is_stable_for_every_character() {
        // A key folded again is the same key, so keys can be kept and compared later.
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let folded = fold_case(c);
            assert_eq!(fold_case(folded), folded, "U+{:04X}", u32::from(c));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn comparing_and_keys_agree(
            a in "[a-zA-ZĳĲσςΣßẞſİıKk\u{212A}éÉ.@]{0,8}",
            b in "[a-zA-ZĳĲσςΣßẞſİıKk\u{212A}éÉ.@]{0,8}",
        ) {
            proptest::prop_assert_eq!(same_address(&a, &b), email_key(&a) == email_key(&b));
            proptest::prop_assert_eq!(email_key_borrowed(&a), email_key(&a));
            proptest::prop_assert_eq!(
                starts_with_address(&a, &b),
                email_key(&a).starts_with(&email_key(&b))
            );
            // Changing the case of letters that have one uppercase changes no key.
            if a.chars().all(|c| c.to_uppercase().count() == 1) {
                proptest::prop_assert!(same_address(&a, &a.to_uppercase()));
            }
        }
    }
}
