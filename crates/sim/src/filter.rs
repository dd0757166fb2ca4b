//! OData `$filter`: a parser for the forms Graph accepts, a per-resource whitelist of the forms
//! the simulator models, and an evaluator over the resource's JSON.

use serde_json::Value;

use enroll_core::roster::{same_address, starts_with_address};

/// Whether `text` ends with `suffix`, compared by the one address rule (each character
/// folded on its own, so lengths agree).
fn ends_with_address(text: &str, suffix: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let suffix: Vec<char> = suffix.chars().collect();
    text.len() >= suffix.len()
        && same_address(
            &text[text.len() - suffix.len()..].iter().collect::<String>(),
            &suffix.iter().collect::<String>(),
        )
}

/// Graph's default limit of `in` values / `or`-ed clauses in one filter.
pub(crate) const MAX_OR_CLAUSES: usize = 15;

/// Deepest nesting of parentheses, functions and lambdas a filter may have. Graph publishes
/// no such limit; any filter a client needs nests a few levels, and the parser and
/// evaluator recurse once per level, so a deeply nested filter (thousands of `(` in a
/// 10 KB URL) is refused with a 400 before it can exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 32;

/// A literal on the right of an operator.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    /// A quoted string (`''` already unescaped).
    Str(String),
    /// Anything unquoted: `null`, `true`, a number or a bare GUID.
    Bare(String),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    /// `path eq lit` (or another comparison operator, kept to refuse it by name).
    Cmp {
        path: String,
        op: String,
        lit: Lit,
    },
    /// `path in (lit, ...)`.
    In {
        path: String,
        lits: Vec<Lit>,
    },
    /// `path/any(x:x eq lit)`: a comparison on each element of a collection.
    Any {
        path: String,
        op: String,
        lit: Lit,
    },
    /// `func(path, lit)` such as `startswith`.
    Func {
        name: String,
        path: String,
        lit: Lit,
    },
}

/// Which filter forms a resource supports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Allowed {
    /// Graph's name of the resource type, for messages.
    pub(crate) type_name: &'static str,
    /// Properties allowed with `eq`.
    pub(crate) eq: &'static [&'static str],
    /// Properties allowed with `in`.
    pub(crate) r#in: &'static [&'static str],
    /// Collection properties allowed with `any(x:x eq ...)`.
    pub(crate) any_eq: &'static [&'static str],
    /// Properties allowed with `startswith(prop, ...)`.
    pub(crate) startswith: &'static [&'static str],
    /// Boolean properties allowed with `eq true` / `eq false`.
    pub(crate) eq_bool: &'static [&'static str],
    /// Properties allowed with `endswith(prop, ...)`: an advanced query.
    pub(crate) endswith: &'static [&'static str],
    /// Properties allowed with `ne null` and `eq null`: an advanced query (so is `ne` on a
    /// property allowed with `eq`).
    pub(crate) null: &'static [&'static str],
    /// Whether clauses may be joined with `or`.
    pub(crate) or: bool,
    /// Whether clauses may be joined with `and`.
    pub(crate) and: bool,
    /// Graph's error code for an unsupported clause on this resource.
    pub(crate) code: &'static str,
}

/// Why a filter was refused: Graph's error code and message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FilterError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

fn invalid(message: impl Into<String>) -> FilterError {
    FilterError {
        code: "BadRequest",
        message: format!("Invalid filter clause: {}", message.into()),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
    Colon,
}

fn tokenize(input: &str) -> Result<Vec<Tok>, FilterError> {
    let mut out = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(invalid("unterminated string literal")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            _ => {
                let start = i;
                while i < chars.len() && !" \t\r\n(),:'".contains(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// How many parentheses, functions and lambdas enclose the current position.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), FilterError> {
        match self.next() {
            Some(ref tok) if tok == want => Ok(()),
            _ => Err(invalid(format!("expected {what}"))),
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or_expr(&mut self) -> Result<Expr, FilterError> {
        let mut parts = vec![self.and_expr()?];
        while self.keyword("or") {
            self.pos += 1;
            parts.push(self.and_expr()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and_expr(&mut self) -> Result<Expr, FilterError> {
        let mut parts = vec![self.primary()?];
        while self.keyword("and") {
            self.pos += 1;
            parts.push(self.primary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn literal(&mut self) -> Result<Lit, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Ident(s)) => Ok(Lit::Bare(s)),
            _ => Err(invalid("expected a literal")),
        }
    }

    /// Enters one more level of nesting, or refuses a filter nested past [`MAX_DEPTH`].
    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError {
                code: "BadRequest",
                message: format!(
                    "Invalid filter clause: the filter nests more than {MAX_DEPTH} levels of parentheses."
                ),
            });
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        match self.next() {
            Some(Tok::Open) => {
                self.enter()?;
                let inner = self.or_expr()?;
                self.expect(&Tok::Close, "')'")?;
                self.depth -= 1;
                Ok(inner)
            }
            Some(Tok::Ident(word)) => {
                if self.peek() == Some(&Tok::Open) {
                    self.pos += 1;
                    if let Some(path) = word
                        .strip_suffix("/any")
                        .or_else(|| word.strip_suffix("/ANY"))
                    {
                        return self.lambda(path);
                    }
                    if word.contains('/') {
                        return Err(invalid(format!("unsupported lambda or function '{word}'")));
                    }
                    let path = match self.next() {
                        Some(Tok::Ident(p)) => p,
                        _ => return Err(invalid(format!("expected a property in {word}()"))),
                    };
                    self.expect(&Tok::Comma, "','")?;
                    let lit = self.literal()?;
                    self.expect(&Tok::Close, "')'")?;
                    return Ok(Expr::Func {
                        name: word.to_ascii_lowercase(),
                        path,
                        lit,
                    });
                }
                let op = match self.next() {
                    Some(Tok::Ident(op)) => op.to_ascii_lowercase(),
                    _ => return Err(invalid(format!("expected an operator after '{word}'"))),
                };
                if op == "in" {
                    self.expect(&Tok::Open, "'(' after in")?;
                    let mut lits = vec![self.literal()?];
                    while self.peek() == Some(&Tok::Comma) {
                        self.pos += 1;
                        lits.push(self.literal()?);
                    }
                    self.expect(&Tok::Close, "')'")?;
                    return Ok(Expr::In { path: word, lits });
                }
                let lit = self.literal()?;
                Ok(Expr::Cmp {
                    path: word,
                    op,
                    lit,
                })
            }
            _ => Err(invalid("expected a property, function or '('")),
        }
    }

    fn lambda(&mut self, path: &str) -> Result<Expr, FilterError> {
        let var = match self.next() {
            Some(Tok::Ident(v)) => v,
            _ => return Err(invalid("expected a lambda variable")),
        };
        self.expect(&Tok::Colon, "':'")?;
        match self.next() {
            Some(Tok::Ident(v)) if v == var => {}
            _ => {
                return Err(invalid(format!(
                    "only comparisons of the lambda variable itself ({var} eq '...') are supported in {path}/any"
                )));
            }
        }
        let op = match self.next() {
            Some(Tok::Ident(op)) => op.to_ascii_lowercase(),
            _ => return Err(invalid("expected an operator in the lambda")),
        };
        let lit = self.literal()?;
        self.expect(&Tok::Close, "')'")?;
        Ok(Expr::Any {
            path: path.to_owned(),
            op,
            lit,
        })
    }
}

/// Parses a `$filter` value.
pub(crate) fn parse(input: &str) -> Result<Expr, FilterError> {
    let toks = tokenize(input)?;
    if toks.is_empty() {
        return Err(invalid("the filter is empty"));
    }
    let mut parser = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let expr = parser.or_expr()?;
    if parser.pos != parser.toks.len() {
        return Err(invalid("unexpected text after the end of the expression"));
    }
    Ok(expr)
}

/// How many `or`-ed comparisons the filter amounts to (an `in` counts each value).
fn clause_count(expr: &Expr) -> usize {
    match expr {
        Expr::Or(parts) => parts.iter().map(clause_count).sum(),
        Expr::And(parts) => parts.iter().map(clause_count).max().unwrap_or(0),
        Expr::In { lits, .. } => lits.len(),
        _ => 1,
    }
}

fn listed(list: &[&str], path: &str) -> bool {
    list.iter().any(|p| p.eq_ignore_ascii_case(path))
}

/// Refuses every form `allowed` does not list, and filters over Graph's clause limit.
/// Returns the first operator that makes the filter an advanced query (Graph answers it
/// only with `ConsistencyLevel: eventual` and `$count=true`), if any.
pub(crate) fn check(expr: &Expr, allowed: &Allowed) -> Result<Option<String>, FilterError> {
    let count = clause_count(expr);
    if count > MAX_OR_CLAUSES {
        return Err(FilterError {
            code: "Request_UnsupportedQuery",
            message: format!(
                "Too many child clauses specified in search filter expression containing 'OR' operators: {count}. Max allowed: {MAX_OR_CLAUSES}."
            ),
        });
    }
    let mut advanced = None;
    check_inner(expr, allowed, &mut advanced)?;
    Ok(advanced)
}

fn unsupported(allowed: &Allowed, what: &str) -> FilterError {
    FilterError {
        code: allowed.code,
        message: format!(
            "Unsupported or invalid query filter clause specified for {what} of resource '{}'.",
            allowed.type_name
        ),
    }
}

fn check_inner(
    expr: &Expr,
    allowed: &Allowed,
    advanced: &mut Option<String>,
) -> Result<(), FilterError> {
    let mut needs = |operator: &str| {
        advanced.get_or_insert_with(|| operator.to_owned());
    };
    match expr {
        Expr::Or(parts) => {
            if !allowed.or {
                return Err(unsupported(allowed, "operator 'or'"));
            }
            parts
                .iter()
                .try_for_each(|p| check_inner(p, allowed, advanced))
        }
        Expr::And(parts) => {
            if !allowed.and {
                return Err(unsupported(allowed, "operator 'and'"));
            }
            parts
                .iter()
                .try_for_each(|p| check_inner(p, allowed, advanced))
        }
        Expr::Cmp { path, op, lit } => {
            let ok = match (op.as_str(), lit) {
                ("eq", Lit::Str(_)) => listed(allowed.eq, path),
                ("ne", Lit::Str(_)) => {
                    needs("ne");
                    listed(allowed.eq, path)
                }
                ("eq" | "ne", Lit::Bare(word)) if word == "null" => {
                    needs(op);
                    listed(allowed.null, path)
                }
                ("eq", Lit::Bare(word)) if word == "true" || word == "false" => {
                    listed(allowed.eq_bool, path)
                }
                ("ne", Lit::Bare(word)) if word == "true" || word == "false" => {
                    needs("ne");
                    listed(allowed.eq_bool, path)
                }
                _ => false,
            };
            if !ok {
                return Err(unsupported(
                    allowed,
                    &format!("property '{path}' with operator '{op}'"),
                ));
            }
            Ok(())
        }
        Expr::In { path, lits } => {
            if !listed(allowed.r#in, path) || lits.iter().any(|l| !matches!(l, Lit::Str(_))) {
                return Err(unsupported(
                    allowed,
                    &format!("property '{path}' with operator 'in'"),
                ));
            }
            Ok(())
        }
        Expr::Any { path, op, lit } => {
            if op != "eq" || !listed(allowed.any_eq, path) || !matches!(lit, Lit::Str(_)) {
                return Err(unsupported(
                    allowed,
                    &format!("property '{path}' with lambda operator 'any'"),
                ));
            }
            Ok(())
        }
        Expr::Func { name, path, lit } => {
            let ok = matches!(lit, Lit::Str(_))
                && match name.as_str() {
                    "startswith" => listed(allowed.startswith, path),
                    "endswith" => {
                        needs("endsWith");
                        listed(allowed.endswith, path)
                    }
                    _ => false,
                };
            if !ok {
                return Err(unsupported(
                    allowed,
                    &format!("function '{name}' on property '{path}'"),
                ));
            }
            Ok(())
        }
    }
}

/// The value at a `/`-separated path, matching property names case-insensitively.
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').try_fold(value, |v, key| {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn lit_eq(value: Option<&Value>, lit: &Lit) -> bool {
    match (value, lit) {
        (Some(Value::String(s)), Lit::Str(l)) => same_address(s, l),
        (None | Some(Value::Null), Lit::Bare(l)) => l == "null",
        (Some(Value::Bool(b)), Lit::Bare(l)) => l == if *b { "true" } else { "false" },
        _ => false,
    }
}

/// A value a filter names an entity by, for an index to find it without reading the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Named {
    /// A property equals this value.
    Equal(String),
    /// A property starts with this value (`startswith`).
    Prefix(String),
}

/// The values an entity must equal, or start with, for `expr` to match it, when `expr` can
/// only match that way: an equality (`eq`, `in`, or `any(x:x eq …)` on `any_paths`) on one
/// of `paths`, a `startswith` on one of `prefix_paths`, an `or` of such clauses, or an `and`
/// with one such clause. `None` when some match could come another way; the caller then
/// reads every entity.
pub(crate) fn named_values(
    expr: &Expr,
    paths: &[&str],
    any_paths: &[&str],
    prefix_paths: &[&str],
) -> Option<Vec<Named>> {
    let on = |list: &[&str], path: &str| list.iter().any(|p| p.eq_ignore_ascii_case(path));
    let text = |lit: &Lit| match lit {
        Lit::Str(value) => Some(value.clone()),
        Lit::Bare(_) => None,
    };
    let equal = |lit: &Lit| text(lit).map(Named::Equal);
    match expr {
        Expr::Cmp { path, op, lit } if op == "eq" && on(paths, path) => Some(vec![equal(lit)?]),
        Expr::In { path, lits } if on(paths, path) => lits.iter().map(equal).collect(),
        Expr::Any { path, op, lit } if op == "eq" && on(any_paths, path) => Some(vec![equal(lit)?]),
        Expr::Func { name, path, lit } if name == "startswith" && on(prefix_paths, path) => {
            Some(vec![Named::Prefix(text(lit)?)])
        }
        Expr::Or(clauses) => {
            let mut all = Vec::new();
            for clause in clauses {
                all.extend(named_values(clause, paths, any_paths, prefix_paths)?);
            }
            Some(all)
        }
        Expr::And(clauses) => clauses
            .iter()
            .find_map(|clause| named_values(clause, paths, any_paths, prefix_paths)),
        _ => None,
    }
}

/// The string literals an entity must equal for `expr` to match it, when `expr` can only
/// match that way (see [`named_values`], without prefixes).
pub(crate) fn equality_literals(
    expr: &Expr,
    paths: &[&str],
    any_paths: &[&str],
) -> Option<Vec<String>> {
    named_values(expr, paths, any_paths, &[])?
        .into_iter()
        .map(|named| match named {
            Named::Equal(value) => Some(value),
            Named::Prefix(_) => None,
        })
        .collect()
}

/// Whether `entity` (the resource's JSON with every filterable navigation expanded) matches.
/// String comparisons are case-insensitive, as directory properties are, by the one rule
/// the planner and the steps compare addresses with (`enroll_core::roster::email_key`).
pub(crate) fn matches(expr: &Expr, entity: &Value) -> bool {
    match expr {
        Expr::Or(parts) => parts.iter().any(|p| matches(p, entity)),
        Expr::And(parts) => parts.iter().all(|p| matches(p, entity)),
        Expr::Cmp { path, op, lit } => {
            let equal = lit_eq(lookup(entity, path), lit);
            if op == "ne" { !equal } else { equal }
        }
        Expr::In { path, lits } => {
            let value = lookup(entity, path);
            lits.iter().any(|l| lit_eq(value, l))
        }
        Expr::Any { path, lit, .. } => lookup(entity, path)
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|v| lit_eq(Some(v), lit))),
        Expr::Func { name, path, lit } => match (lookup(entity, path), lit) {
            (Some(Value::String(s)), Lit::Str(prefix)) if name == "startswith" => {
                starts_with_address(s, prefix)
            }
            (Some(Value::String(s)), Lit::Str(suffix)) => ends_with_address(s, suffix),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_or_of_in_eq_and_any() {
        let expr = parse("mail in ('a@x.com','o''neil@x.com') or otherMails/any(x:x eq 'b@x.com') or userPrincipalName eq 'c'").unwrap();
        let Expr::Or(parts) = &expr else {
            panic!("not an or: {expr:?}")
        };
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[0],
            Expr::In {
                path: "mail".into(),
                lits: vec![Lit::Str("a@x.com".into()), Lit::Str("o'neil@x.com".into())]
            }
        );
        assert_eq!(clause_count(&expr), 4);
        let user = serde_json::json!({"mail": "O'Neil@X.com", "otherMails": []});
        assert!(matches(&expr, &user));
    }

    #[test]
    fn equality_literals_name_what_an_address_lookup_can_match_and_nothing_else() {
        let paths = ["mail", "userPrincipalName"];
        let literals =
            |filter: &str| equality_literals(&parse(filter).unwrap(), &paths, &["otherMails"]);
        assert_eq!(
            literals(
                "mail in ('a@x.com','b@x.com') or otherMails/any(x:x eq 'c@x.com') or userPrincipalName eq 'd'"
            ),
            Some(vec![
                "a@x.com".into(),
                "b@x.com".into(),
                "c@x.com".into(),
                "d".into()
            ])
        );
        assert_eq!(
            literals("mail eq 'a@x.com' and userType eq 'Guest'"),
            Some(vec!["a@x.com".into()])
        );
        assert_eq!(literals("mail eq 'a@x.com' or userType eq 'Guest'"), None);
        assert_eq!(literals("startswith(mail,'a')"), None);
        assert_eq!(literals("mail ne 'a@x.com'"), None);
    }

    #[test]
    fn named_values_take_startswith_only_on_the_prefix_paths() {
        let named = |filter: &str| {
            named_values(
                &parse(filter).unwrap(),
                &["mail"],
                &[],
                &["userPrincipalName"],
            )
        };
        assert_eq!(
            named("mail in ('a@x.com') or startswith(userPrincipalName,'a_x.com#EXT#@')"),
            Some(vec![
                Named::Equal("a@x.com".into()),
                Named::Prefix("a_x.com#EXT#@".into())
            ])
        );
        assert_eq!(named("startswith(mail,'a')"), None);
        assert_eq!(
            named("mail eq 'a@x.com' or startswith(displayName,'A')"),
            None
        );
    }

    #[test]
    fn refuses_deep_nesting_without_exhausting_the_stack() {
        let nested = |depth: usize| {
            format!(
                "{}mail eq 'a@x.com'{}",
                "(".repeat(depth),
                ")".repeat(depth)
            )
        };
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        let error = parse(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(error.code, "BadRequest");
        assert!(
            error.message.contains("nests more than 32"),
            "{}",
            error.message
        );
        // 5,000 levels, a 10 KB filter: refused, not a stack overflow; unbalanced too.
        assert!(parse(&nested(5_000)).is_err());
        assert!(parse(&"(".repeat(10_000)).is_err());
    }

    #[test]
    fn directory_strings_compare_by_the_planners_rule() {
        let user = serde_json::json!({
            "mail": "Ĳsbrand@Example.nl",
            "userPrincipalName": "ĲSBRAND_example.nl#EXT#@contoso.onmicrosoft.com",
            "proxyAddresses": ["SMTP:Ĳsbrand@Example.nl", "smtp:ij@example.nl"],
        });
        for filter in [
            "mail eq 'ĳsbrand@example.nl'",
            "proxyAddresses/any(x:x eq 'smtp:ĳsbrand@example.nl')",
            "proxyAddresses/any(x:x eq 'SMTP:IJ@EXAMPLE.NL')",
            "startswith(userPrincipalName,'ĳsbrand_example.nl#EXT#@')",
        ] {
            assert!(matches(&parse(filter).unwrap(), &user), "{filter}");
        }
        assert!(!matches(
            &parse("proxyAddresses/any(x:x eq 'ij@example.nl')").unwrap(),
            &user
        ));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("mail eq").is_err());
        assert!(parse("mail eq 'a' extra").is_err());
        assert!(parse("(mail eq 'a'").is_err());
        assert!(parse("mail eq 'a").is_err());
    }
}
