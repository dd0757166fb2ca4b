//! OData query text: string literals, `in` filters, and percent-encoding of query values.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Most values an `in` operator (and most expressions a filter clause) may hold on directory
/// objects without advanced query ("filter-query-parameter" note, graph.md §1.2).
pub const MAX_IN_VALUES: usize = 15;

/// Quotes a string as an OData literal: `'` doubled inside single quotes.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `property in ('a','b',...)` for at most [`MAX_IN_VALUES`] values (callers chunk).
pub fn in_filter<S: AsRef<str>>(property: &str, values: &[S]) -> String {
    let list: Vec<String> = values.iter().map(|value| quote(value.as_ref())).collect();
    format!("{property} in ({})", list.join(","))
}

/// What [`encode_query_value`] escapes: everything but letters, digits, RFC 3986's unreserved
/// punctuation, and OData's own (`'`, `(`, `)`, `,`, `/`, `:`, `$`, `@`, `*`, `!`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b',')
    .remove(b'/')
    .remove(b':')
    .remove(b'$')
    .remove(b'@')
    .remove(b'*')
    .remove(b'!');

/// What [`encode_path_segment`] escapes: everything but letters, digits, `-._~` and `@`.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// Percent-encodes a query value (a `$filter` expression, a `$select` list) so that `#`,
/// `+`, `&`, `=`, `%`, spaces and non-ASCII bytes reach Graph as written. OData's own
/// punctuation stays readable.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// Percent-encodes one path segment (an id or a user principal name with `#EXT#`).
pub fn encode_path_segment(value: &str) -> String {
    utf8_percent_encode(value, PATH_SEGMENT).to_string()
}

/// A relative Graph URL (`/path?$a=..&$b=..`) with every query value encoded.
pub fn relative_url(path: &str, query: &[(&str, &str)]) -> String {
    let mut url = path.to_owned();
    for (index, (name, value)) in query.iter().enumerate() {
        url.push(if index == 0 { '?' } else { '&' });
        url.push_str(name);
        url.push('=');
        url.push_str(&encode_query_value(value));
    }
    url
}

/// The user principal name prefix Entra gives a B2B guest invited with `email`:
/// `jane_example.com#EXT#@` (the tenant's initial domain follows).
pub fn guest_upn_prefix(email: &str) -> String {
    format!("{}#EXT#@", email.replacen('@', "_", 1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn quotes_escape_single_quotes() {
        assert_eq!(quote("o'neil@x.com"), "'o''neil@x.com'");
        assert_eq!(
            in_filter("mail", &["a@b.com", "o'neil@x.com"]),
            "mail in ('a@b.com','o''neil@x.com')"
        );
    }

    #[test]
    fn encodes_what_would_break_the_query() {
        assert_eq!(
            encode_query_value("mail in ('a+b@x.com','c&d@y.com')"),
            "mail%20in%20('a%2Bb@x.com','c%26d@y.com')"
        );
        assert_eq!(encode_query_value("x#EXT#=%é"), "x%23EXT%23%3D%25%C3%A9");
        assert_eq!(
            encode_path_segment("a_b.com#EXT#@t.onmicrosoft.com"),
            "a_b.com%23EXT%23@t.onmicrosoft.com"
        );
    }

    #[test]
    fn builds_relative_urls() {
        assert_eq!(
            relative_url(
                "/users",
                &[("$filter", "mail eq 'a@b.com'"), ("$select", "id,mail")]
            ),
            "/users?$filter=mail%20eq%20'a@b.com'&$select=id,mail"
        );
        assert_eq!(
            guest_upn_prefix("jane@example.com"),
            "jane_example.com#EXT#@"
        );
    }
}
