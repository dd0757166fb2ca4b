//! Graph v1.0 resources: routing, OData query options, paging, and each operation's rules.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use super::entities::{
    AssignmentRec, Fate, RequestRec, SubjectRec, USER_DEFAULT_PROPERTIES, UserRec,
    app_role_assignment_json, application_json, group_json, service_principal_json,
};
use super::filter::{self, Allowed, Expr};
use super::http::{Req, Resp, Shared, method_not_allowed};
use super::state::State;
use super::{clock, schema};
use enroll_core::roles::is_guid;
use enroll_core::tenant::{AppRole, AppRoleAssignment};

mod principals;

/// Characters left as they are in query values of `@odata.nextLink`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'$')
    .remove(b',')
    .remove(b'(')
    .remove(b')')
    .remove(b'\'')
    .remove(b'/')
    .remove(b':')
    .remove(b'@');

const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Error codes differ between the directory (Azure AD Graph heritage) and other workloads.
#[derive(Clone, Copy)]
enum Family {
    Directory,
    Governance,
}

impl Family {
    fn bad_request(self) -> &'static str {
        match self {
            Family::Directory => "Request_BadRequest",
            Family::Governance => "BadRequest",
        }
    }

    fn not_found(self, what: &str) -> Resp {
        match self {
            Family::Directory => Resp::error(
                404,
                "Request_ResourceNotFound",
                &format!(
                    "Resource '{what}' does not exist or one of its queried reference-property objects are not present."
                ),
            ),
            Family::Governance => Resp::error(
                404,
                "ResourceNotFound",
                &format!("The requested resource '{what}' was not found."),
            ),
        }
    }
}

/// The query options a request may carry, parsed and checked.
#[derive(Debug, Default)]
struct Query {
    filter: Option<Expr>,
    select: Option<Vec<&'static str>>,
    /// Lower-case navigation property names.
    expand: Vec<String>,
    top: Option<usize>,
    skiptoken: Option<String>,
    /// `$count=true`: the answer carries `@odata.count`.
    count: bool,
    /// `$search` clauses (property, term) and whether they are joined by `OR`.
    search: Option<Search>,
    /// `$orderby`: the property, and whether descending.
    orderby: Option<(&'static str, bool)>,
}

/// What an endpoint accepts.
#[derive(Clone, Copy)]
struct Options {
    type_name: &'static str,
    family: Family,
    filter: Option<Allowed>,
    expand: &'static [&'static str],
    paged: bool,
}

fn parse_query(req: &Req, opts: &Options) -> Result<Query, Resp> {
    let bad = |message: String| Resp::error(400, opts.family.bad_request(), &message);
    let mut q = Query::default();
    let mut seen: Vec<String> = Vec::new();
    let mut advanced: Option<Advanced> = None;
    for (key, value) in &req.query {
        let lower = key.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(bad(format!(
                "Query option '{key}' was specified more than once."
            )));
        }
        seen.push(lower.clone());
        match lower.as_str() {
            "$filter" if opts.filter.is_some() => {
                let allowed = opts.filter.as_ref().ok_or_else(|| bad(String::new()))?;
                let (expr, operator) = filter::parse(value)
                    .and_then(|e| filter::check(&e, allowed).map(|op| (e, op)))
                    .map_err(|e| Resp::error(400, e.code, &e.message))?;
                q.filter = Some(expr);
                if let Some(operator) = operator {
                    advanced.get_or_insert(Advanced::Operator(operator));
                }
            }
            "$count" if directory_queries(opts) => {
                q.count = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(bad(format!(
                            "Invalid value '{value}' for $count: it takes true or false."
                        )));
                    }
                };
            }
            "$search" if directory_queries(opts) => {
                q.search = Some(parse_search(value, opts.type_name).map_err(bad)?);
                advanced.get_or_insert(Advanced::Search);
            }
            "$orderby" if directory_queries(opts) => {
                let mut words = value.split_whitespace();
                let (Some(name), direction, None) = (words.next(), words.next(), words.next())
                else {
                    return Err(bad(format!("Invalid $orderby '{value}'.")));
                };
                let desc = match direction.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("asc") => false,
                    Some("desc") => true,
                    Some(other) => {
                        return Err(bad(format!("Invalid $orderby direction '{other}'.")));
                    }
                };
                let property = ORDERBY
                    .iter()
                    .find(|p| p.eq_ignore_ascii_case(name))
                    .filter(|_| schema::canonical(opts.type_name, name).is_some())
                    .ok_or_else(|| {
                        Resp::error(
                            400,
                            "Request_UnsupportedQuery",
                            "Sorting not supported for current query.",
                        )
                    })?;
                q.orderby = Some((property, desc));
            }
            "$select" => {
                let mut names = Vec::new();
                for name in value.split(',').map(str::trim) {
                    let canonical = schema::canonical(opts.type_name, name).ok_or_else(|| {
                        bad(format!(
                            "Could not find a property named '{name}' on type '{}'.",
                            opts.type_name
                        ))
                    })?;
                    names.push(canonical);
                }
                q.select = Some(names);
            }
            "$expand" if !opts.expand.is_empty() => {
                for name in value.split(',').map(str::trim) {
                    let lower = name.to_ascii_lowercase();
                    if !opts.expand.contains(&lower.as_str()) {
                        return Err(bad(format!(
                            "Parsing OData Select and Expand failed: the simulator supports $expand of {} on '{}', not '{name}'.",
                            opts.expand.join(", "),
                            opts.type_name
                        )));
                    }
                    q.expand.push(lower);
                }
            }
            "$top" if opts.paged => {
                let top: i64 = value
                    .parse()
                    .map_err(|_| bad(format!("Invalid page size specified: '{value}'.")))?;
                if !(1..=999).contains(&top) {
                    return Err(bad(format!(
                        "Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."
                    )));
                }
                q.top = Some(top as usize);
            }
            "$skiptoken" if opts.paged => q.skiptoken = Some(value.clone()),
            _ => {
                return Err(bad(format!(
                    "Query option '{key}' is not supported on this request (the simulator refuses what it does not model)."
                )));
            }
        }
    }
    if q.orderby.is_some() && q.filter.is_some() {
        advanced.get_or_insert(Advanced::OrderedFilter);
    }
    let eventual = eventual(req);
    if q.count && !eventual {
        return Err(count_refused());
    }
    match advanced {
        Some(Advanced::Search) if !eventual => Err(Resp::error(
            400,
            "Request_UnsupportedQuery",
            "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
        )),
        Some(Advanced::Operator(operator)) if !(eventual && q.count) => Err(Resp::error(
            400,
            "Request_UnsupportedQuery",
            &format!(
                "Operator '{operator}' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"
            ),
        )),
        Some(Advanced::OrderedFilter) if !(eventual && q.count) => Err(Resp::error(
            400,
            "Request_UnsupportedQuery",
            "Sorting not supported for current query.",
        )),
        _ => Ok(q),
    }
}

/// What makes a directory query an advanced one, which Graph answers only with
/// `ConsistencyLevel: eventual` (and, but for `$search`, `$count=true`).
enum Advanced {
    /// `ne`, `endsWith`, `eq null` and the like.
    Operator(String),
    /// `$search`.
    Search,
    /// `$orderby` together with `$filter`.
    OrderedFilter,
}

/// The properties `$orderby` sorts by (where the type has them).
const ORDERBY: &[&str] = &["displayName", "userPrincipalName"];

/// The properties `$search` looks in (where the type has them).
const SEARCHABLE: &[&str] = &[
    "displayName",
    "description",
    "mail",
    "mailNickname",
    "userPrincipalName",
    "givenName",
    "surname",
    "appId",
];

/// Whether the endpoint is a directory collection with Graph's advanced query options
/// (`$count`, `$search`, `$orderby`): users, groups, applications, service principals.
fn directory_queries(opts: &Options) -> bool {
    matches!(opts.family, Family::Directory) && opts.paged && opts.filter.is_some()
}

/// Whether the request carries `ConsistencyLevel: eventual`.
fn eventual(req: &Req) -> bool {
    req.header("consistencylevel")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"))
}

/// Graph's answer to `$count` without `ConsistencyLevel: eventual`.
fn count_refused() -> Resp {
    Resp::error(
        400,
        "Request_BadRequest",
        "$count is not currently supported.",
    )
}

/// `$search` clauses (property, term), and whether they are joined by `OR` (else `AND`).
type Search = (Vec<(&'static str, String)>, bool);

/// Parses Graph's `$search` on directory objects: `"property:term"` clauses in double
/// quotes, joined by `AND` or by `OR` (not both).
fn parse_search(value: &str, type_name: &str) -> Result<Search, String> {
    let invalid = || {
        format!(
            "Syntax error: the $search value '{value}' is not valid: use \"property:term\" clauses joined by AND or OR."
        )
    };
    let mut clauses = Vec::new();
    let mut joiners = Vec::new();
    let mut rest = value.trim();
    loop {
        let inner = rest.strip_prefix('"').ok_or_else(invalid)?;
        let (clause, after) = inner.split_once('"').ok_or_else(invalid)?;
        let (name, term) = clause.split_once(':').ok_or_else(invalid)?;
        let property = SEARCHABLE
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name.trim()))
            .filter(|_| schema::canonical(type_name, name.trim()).is_some())
            .ok_or_else(|| {
                format!(
                    "Invalid $search: the simulator searches {} of '{type_name}', not '{name}'.",
                    SEARCHABLE.join(", ")
                )
            })?;
        clauses.push((*property, term.to_owned()));
        rest = after.trim_start();
        if rest.is_empty() {
            break;
        }
        let (joiner, after) = rest.split_once(' ').ok_or_else(invalid)?;
        joiners.push(joiner.to_ascii_uppercase());
        rest = after.trim_start();
    }
    let or = joiners.first().is_some_and(|j| j == "OR");
    if joiners.iter().any(|j| j != if or { "OR" } else { "AND" }) {
        return Err(invalid());
    }
    Ok((clauses, or))
}

/// Whether `text` matches a `$search` term as Graph's tokenized search does: some word of
/// it (split at spaces, punctuation and case changes aside) starts with the term, case
/// insensitively.
fn search_matches(text: &str, term: &str) -> bool {
    let term = term.to_lowercase();
    let text = text.to_lowercase();
    text.starts_with(&term)
        || text
            .split(|c: char| !c.is_alphanumeric())
            .any(|word| !word.is_empty() && word.starts_with(&term))
}

/// The items a directory query keeps, in its order: `$filter` and `$search` applied to the
/// full entities, then `$orderby`.
fn query_items(q: &Query, items: impl Iterator<Item = Value>) -> Vec<Value> {
    let mut kept: Vec<Value> = items
        .filter(|item| q.filter.as_ref().is_none_or(|f| filter::matches(f, item)))
        .filter(|item| {
            q.search.as_ref().is_none_or(|(clauses, or)| {
                let hit = |(name, term): &(&str, String)| {
                    item.get(*name)
                        .and_then(Value::as_str)
                        .is_some_and(|text| search_matches(text, term))
                };
                if *or {
                    clauses.iter().any(hit)
                } else {
                    clauses.iter().all(hit)
                }
            })
        })
        .collect();
    if let Some((name, desc)) = q.orderby {
        let key = |v: &Value| v.get(name).and_then(Value::as_str).map(str::to_lowercase);
        kept.sort_by(|a, b| {
            let order = key(a).cmp(&key(b));
            if desc { order.reverse() } else { order }
        });
    }
    kept
}

/// `GET /users/$count` and the like: the number of items as plain text, with
/// `ConsistencyLevel: eventual` only.
fn count_only(req: &Req, opts: &Options, items: impl Iterator<Item = Value>) -> Result<Resp, Resp> {
    if !eventual(req) {
        return Err(count_refused());
    }
    let q = parse_query(
        req,
        &Options {
            paged: true,
            ..*opts
        },
    )?;
    if q.top.is_some() || q.skiptoken.is_some() || q.select.is_some() || q.count {
        return Err(Resp::error(
            400,
            "Request_BadRequest",
            "The query specified in the URI is not valid: /$count takes $filter and $search only.",
        ));
    }
    let count = query_items(&q, items).len();
    Ok(Resp {
        status: 200,
        headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
        body: Some(json!(count)),
    })
}

/// Keeps the `$select`ed properties (or `defaults`), plus expanded navigation properties.
fn project(value: Value, q: &Query, defaults: Option<&[&str]>, expanded: &[&str]) -> Value {
    let Value::Object(obj) = value else {
        return value;
    };
    let keep: Vec<&str> = match (&q.select, defaults) {
        (Some(select), _) => select.clone(),
        (None, Some(defaults)) => defaults.to_vec(),
        (None, None) => return Value::Object(obj),
    };
    let mut out = Map::new();
    for name in keep.iter().chain(expanded) {
        out.insert(
            (*name).to_owned(),
            obj.get(*name).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(out)
}

fn fingerprint(req: &Req) -> u64 {
    // FNV-1a over the path and the options other than $skiptoken: a token only pages the
    // query it was issued for.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |s: &str| {
        for b in s.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for s in &req.segments {
        feed(s);
    }
    for (k, v) in &req.query {
        if !k.eq_ignore_ascii_case("$skiptoken") {
            feed(k);
            feed(v);
        }
    }
    hash
}

fn collection(
    req: &Req,
    q: &Query,
    family: Family,
    context: &str,
    items: Vec<Value>,
    page_size: usize,
) -> Resp {
    let size = q.top.unwrap_or(page_size);
    let fp = fingerprint(req);
    let offset = match &q.skiptoken {
        None => 0,
        Some(token) => {
            let decoded = URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let parsed = decoded.as_deref().and_then(|s| {
                let (offset, token_fp) = s.split_once('.')?;
                Some((
                    offset.parse::<usize>().ok()?,
                    u64::from_str_radix(token_fp, 16).ok()?,
                ))
            });
            match parsed {
                Some((offset, token_fp)) if token_fp == fp => offset,
                _ => {
                    return Resp::error(
                        400,
                        family.bad_request(),
                        "The skip token is invalid or does not belong to this query.",
                    );
                }
            }
        }
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".to_owned(),
        Value::String(format!("{}/v1.0/$metadata#{context}", req.origin)),
    );
    if q.count {
        body.insert("@odata.count".to_owned(), json!(total));
    }
    if offset + size < total {
        let token = URL_SAFE_NO_PAD.encode(format!("{}.{fp:x}", offset + size));
        let path: Vec<String> = req
            .segments
            .iter()
            .map(|s| utf8_percent_encode(s, QUERY_VALUE).to_string())
            .collect();
        let mut query: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
            .collect();
        query.push(format!("$skiptoken={token}"));
        body.insert(
            "@odata.nextLink".to_owned(),
            Value::String(format!(
                "{}/v1.0/{}?{}",
                req.origin,
                path.join("/"),
                query.join("&")
            )),
        );
    }
    body.insert("value".to_owned(), Value::Array(page));
    Resp::json(200, Value::Object(body))
}

fn entity(req: &Req, context: &str, value: Value) -> Resp {
    let mut value = value;
    if let Some(obj) = value.as_object_mut() {
        let mut out = Map::new();
        out.insert(
            "@odata.context".to_owned(),
            Value::String(format!("{}/v1.0/$metadata#{context}/$entity", req.origin)),
        );
        out.extend(std::mem::take(obj));
        *obj = out;
    }
    Resp::json(200, value)
}

fn created(resp: Resp) -> Resp {
    Resp {
        status: 201,
        ..resp
    }
}

/// Refuses body properties the Graph type does not define (plus documented write-only ones).
fn check_body(
    body: &Value,
    type_name: &str,
    extra: &[&str],
    family: Family,
) -> Result<Map<String, Value>, Resp> {
    let Some(obj) = body.as_object() else {
        return Err(Resp::error(
            400,
            family.bad_request(),
            "The request body must be a JSON object.",
        ));
    };
    for key in obj.keys() {
        if key.starts_with("@odata.") || extra.contains(&key.as_str()) {
            continue;
        }
        if schema::properties(type_name).is_none_or(|props| !props.contains(&key.as_str())) {
            return Err(Resp::error(
                400,
                family.bad_request(),
                &format!(
                    "The property '{key}' does not exist on type '{type_name}'. Make sure to only use property names that are defined by the type or mark the type as open type."
                ),
            ));
        }
        if let Err(wrong) = schema::check_property(type_name, key, &obj[key]) {
            return Err(Resp::error(400, "BadRequest", &wrong.message));
        }
    }
    Ok(obj.clone())
}

fn unmodelled(type_name: &str, key: &str) -> Resp {
    Resp::error(
        400,
        "BadRequest",
        &format!(
            "The simulator does not model writing property '{key}' of '{type_name}'; refusing rather than ignoring it."
        ),
    )
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

/// Parses Graph's alternate-key segment `name(appId='...')`.
fn alternate_key(segment: &str, name: &str) -> Option<String> {
    let lower = segment.to_ascii_lowercase();
    let rest = lower.strip_prefix(&format!("{}(appid=", name.to_ascii_lowercase()))?;
    let start = segment.len() - rest.len();
    let inner = segment.get(start..)?.strip_suffix(')')?;
    Some(inner.trim_matches('\'').to_owned())
}

pub(crate) fn dispatch(shared: &Shared, state: &mut State, req: &Req) -> Resp {
    state.advance();
    let lower: Vec<String> = req
        .segments
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let seg = |i: usize| req.segments.get(i).map_or("", String::as_str);
    let m = req.method.as_str();
    let result = match (l.as_slice(), m) {
        (["users"], "GET") => list_users(state, req),
        (["users", "$count"], "GET") => count_only(req, &user_options(), visible_users(state)),
        (["users", _], "GET") => get_user(state, req, seg(1)),
        (["invitations"], "POST") => invite(state, req),
        (["identitygovernance", "entitlementmanagement", rest @ ..], _) => {
            governance(shared, state, req, rest, m)
        }
        (["applications"], "GET") => list_applications(state, req),
        (["applications", "$count"], "GET") => count_only(
            req,
            &directory_options(
                "microsoft.graph.application",
                Some(APPLICATION_FILTER),
                true,
            ),
            state.tenant.applications.iter().map(application_json),
        ),
        ([app], _) if alternate_key(seg(0), "applications").is_some() && l.len() == 1 => {
            let app_id = alternate_key(app, "applications").unwrap_or_default();
            let id = state
                .tenant
                .applications
                .iter()
                .find(|a| a.app_id.eq_ignore_ascii_case(&app_id))
                .map(|a| a.id.clone());
            match (id, m) {
                (Some(id), "GET") => get_application(state, req, &id),
                (Some(id), "PATCH") => patch_application(state, req, &id),
                (None, _) => Err(Family::Directory.not_found(&app_id)),
                _ => Err(method_not_allowed()),
            }
        }
        (["applications", _], "GET") => get_application(state, req, seg(1)),
        (["applications", _], "PATCH") => patch_application(state, req, seg(1)),
        (["serviceprincipals"], "GET") => list_service_principals(state, req),
        ([sp], "GET") if alternate_key(seg(0), "servicePrincipals").is_some() => {
            let app_id = alternate_key(sp, "servicePrincipals").unwrap_or_default();
            let id = state
                .tenant
                .service_principals
                .iter()
                .find(|s| s.app_id.eq_ignore_ascii_case(&app_id))
                .map(|s| s.id.clone());
            match id {
                Some(id) => get_service_principal(state, req, &id),
                None => Err(Family::Directory.not_found(&app_id)),
            }
        }
        (["serviceprincipals", _], "GET") => get_service_principal(state, req, seg(1)),
        (["serviceprincipals", _, "approleassignedto"], "GET") => {
            list_assigned_to(state, req, seg(1))
        }
        (["serviceprincipals", _, "approleassignedto"], "POST") => {
            post_app_role_assignment(state, req, Scope::Resource(seg(1)))
        }
        (["serviceprincipals", _, "approleassignedto", _], "DELETE") => {
            delete_app_role_assignment(state, Scope::Resource(seg(1)), seg(3))
        }
        (["serviceprincipals", _, "approleassignments"], "GET") => {
            principals::list_principal_assignments(state, req, seg(1))
        }
        (["groups"], "GET") => list_groups(state, req),
        (["groups", "$count"], "GET") => count_only(
            req,
            &directory_options("microsoft.graph.group", Some(GROUP_FILTER), true),
            state.tenant.groups.iter().map(group_json),
        ),
        (["groups", _], "GET") => get_group(state, req, seg(1)),
        (["groups", _, "approleassignments"], "GET") => list_group_assignments(state, req, seg(1)),
        (["groups", _, "approleassignments"], "POST") => {
            post_app_role_assignment(state, req, Scope::Principal(seg(1)))
        }
        (["groups", _, "approleassignments", _], "DELETE") => {
            delete_app_role_assignment(state, Scope::Principal(seg(1)), seg(3))
        }
        (
            ["users"]
            | ["users", _]
            | ["invitations"]
            | ["applications"]
            | ["applications", _]
            | ["serviceprincipals"]
            | ["serviceprincipals", _]
            | ["serviceprincipals", _, "approleassignedto"]
            | ["serviceprincipals", _, "approleassignedto", _]
            | ["serviceprincipals", _, "approleassignments"]
            | ["groups"]
            | ["groups", _]
            | ["groups", _, "approleassignments"]
            | ["groups", _, "approleassignments", _],
            _,
        ) => Err(method_not_allowed()),
        ([], _) => Err(Resp::error(
            400,
            "BadRequest",
            "Resource not found for the segment ''.",
        )),
        (_, _) => Err(unknown_segment(req)),
    };
    result.unwrap_or_else(|resp| resp)
}

fn unknown_segment(req: &Req) -> Resp {
    let last = req.segments.last().map_or("", String::as_str);
    Resp::error(
        400,
        "BadRequest",
        &format!("Resource not found for the segment '{last}'."),
    )
}

// ----- users -------------------------------------------------------------------------------

const USER_FILTER: Allowed = Allowed {
    type_name: "microsoft.graph.user",
    eq: &["mail", "userPrincipalName", "id", "displayName", "userType"],
    r#in: &["mail", "userPrincipalName", "id", "userType"],
    any_eq: &["otherMails", "proxyAddresses"],
    startswith: &["mail", "userPrincipalName", "displayName"],
    eq_bool: &["accountEnabled"],
    // Graph indexes endsWith on these only (advanced queries).
    endswith: &["mail", "userPrincipalName"],
    null: &["mail", "displayName", "userType"],
    or: true,
    and: true,
    code: "Request_UnsupportedQuery",
};

fn user_options() -> Options {
    Options {
        type_name: "microsoft.graph.user",
        family: Family::Directory,
        filter: Some(USER_FILTER),
        expand: &[],
        paged: true,
    }
}

fn user_context(q: &Query) -> String {
    match &q.select {
        Some(select) => format!("users({})", select.join(",")),
        None => "users".to_owned(),
    }
}

fn list_users(state: &State, req: &Req) -> Result<Resp, Resp> {
    let q = parse_query(req, &user_options())?;
    // A filter that can only match users by the values it names reads just those users.
    let named = q.filter.as_ref().and_then(|f| {
        filter::named_values(
            f,
            &["id", "mail", "userPrincipalName"],
            &["otherMails", "proxyAddresses"],
            &["userPrincipalName"],
        )
    });
    let items = match named {
        Some(values) => {
            let now = Instant::now();
            let users = state.tenant.users_matching(&values);
            query_items(&q, users.filter(|u| u.visible(now)).map(UserRec::full_json))
        }
        None => query_items(&q, visible_users(state)),
    };
    let items = items
        .into_iter()
        .map(|u| project(u, &q, Some(USER_DEFAULT_PROPERTIES), &[]))
        .collect();
    Ok(collection(
        req,
        &q,
        Family::Directory,
        &user_context(&q),
        items,
        state.page_size,
    ))
}

/// The users lists and filters see. Replication: a fresh guest is not yet in the indexes
/// that list and filter read.
fn visible_users(state: &State) -> impl Iterator<Item = Value> + '_ {
    let now = Instant::now();
    state
        .tenant
        .users
        .iter()
        .filter(move |u| u.visible(now))
        .map(UserRec::full_json)
}

fn get_user(state: &State, req: &Req, key: &str) -> Result<Resp, Resp> {
    let q = parse_query(
        req,
        &Options {
            filter: None,
            paged: false,
            ..user_options()
        },
    )?;
    let user = state
        .tenant
        .user_by_key(key)
        .ok_or_else(|| Family::Directory.not_found(key))?;
    let value = project(user.full_json(), &q, Some(USER_DEFAULT_PROPERTIES), &[]);
    Ok(entity(req, &user_context(&q), value))
}

// ----- invitations ---------------------------------------------------------------------------

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    const FORBIDDEN: &str = "~!#$%^&*()+=[]{}\\/|;:\"<>?, ";
    !local.is_empty()
        && domain.contains('.')
        && !local.starts_with(['.', '-'])
        && !local.ends_with(['.', '-'])
        && !email.chars().any(|c| FORBIDDEN.contains(c))
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
}

fn invite(state: &mut State, req: &Req) -> Result<Resp, Resp> {
    let body = req.json_body()?;
    let obj = check_body(&body, "microsoft.graph.invitation", &[], Family::Directory)?;
    let bad = |message: &str| Resp::error(400, "BadRequest", message);
    for key in obj.keys() {
        if ![
            "invitedUserEmailAddress",
            "inviteRedirectUrl",
            "invitedUserDisplayName",
            "sendInvitationMessage",
            "invitedUserMessageInfo",
            "invitedUserType",
        ]
        .contains(&key.as_str())
            && !key.starts_with("@odata.")
        {
            return Err(unmodelled("microsoft.graph.invitation", key));
        }
    }
    let email = str_field(&obj, "invitedUserEmailAddress")
        .ok_or_else(|| bad("The invitedUserEmailAddress property is required."))?
        .trim()
        .to_owned();
    let redirect = str_field(&obj, "inviteRedirectUrl")
        .ok_or_else(|| bad("The inviteRedirectUrl property is required."))?
        .to_owned();
    if !valid_email(&email) {
        return Err(bad(&format!(
            "The specified email address '{email}' is invalid."
        )));
    }
    if let Some(kind) = obj.get("invitedUserType")
        && kind != "Guest"
    {
        return Err(unmodelled("microsoft.graph.invitation", "invitedUserType"));
    }
    let message_info = match obj.get("invitedUserMessageInfo") {
        None | Some(Value::Null) => json!({
            "messageLanguage": null, "customizedMessageBody": null, "ccRecipients": []
        }),
        Some(info) => {
            let info = check_body(
                info,
                "microsoft.graph.invitedUserMessageInfo",
                &[],
                Family::Directory,
            )?;
            json!({
                "messageLanguage": info.get("messageLanguage").cloned().unwrap_or(Value::Null),
                "customizedMessageBody": info.get("customizedMessageBody").cloned().unwrap_or(Value::Null),
                "ccRecipients": info.get("ccRecipients").cloned().unwrap_or(json!([])),
            })
        }
    };
    let display_name = str_field(&obj, "invitedUserDisplayName").map(str::to_owned);
    let send = obj
        .get("sendInvitationMessage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let existing = state
        .tenant
        .users_named(&[&email])
        .find(|u| u.answers_to(&email));
    let (user_id, status) = match existing {
        Some(u) if !u.user_type.eq_ignore_ascii_case("Guest") => {
            return Err(bad(&format!(
                "The invited user already exists in the directory as object ID: {}.",
                u.id
            )));
        }
        Some(u) => {
            let status = if u.external_user_state.as_deref() == Some("Accepted") {
                "Completed"
            } else {
                "PendingAcceptance"
            };
            (u.id.clone(), status)
        }
        None => {
            let id = state.new_guid();
            let upn = format!(
                "{}#EXT#@{}",
                email.replace('@', "_"),
                crate::SIM_TENANT_DOMAIN
            );
            let hidden_until = (!state.consistency_delay.is_zero())
                .then(|| Instant::now() + state.consistency_delay);
            state.tenant.add_user(UserRec {
                id: id.clone(),
                display_name: display_name.clone().or_else(|| Some(email.clone())),
                upn,
                mail: Some(email.clone()),
                other_mails: vec![email.clone()],
                proxy_addresses: Vec::new(),
                user_type: "Guest".to_owned(),
                external_user_state: Some("PendingAcceptance".to_owned()),
                creation_type: Some("Invitation".to_owned()),
                created: Some(clock::now_iso()),
                hidden_until,
            });
            (id, "PendingAcceptance")
        }
    };
    state.invitations.push(email.to_ascii_lowercase());
    let invitation_id = state.new_guid();
    let value = json!({
        "id": invitation_id,
        "inviteRedeemUrl": format!("https://login.microsoftonline.com/redeem?rd=https%3a%2f%2finvitations.microsoft.com%2fredeem%2f%3ftenant%3dsim%26user%3d{invitation_id}"),
        "invitedUserDisplayName": display_name,
        "invitedUserType": "Guest",
        "invitedUserEmailAddress": email,
        "sendInvitationMessage": send,
        "resetRedemption": false,
        "inviteRedirectUrl": redirect,
        "status": status,
        "invitedUserMessageInfo": message_info,
        "invitedUser": { "id": user_id },
    });
    Ok(created(entity(req, "invitations", value)))
}

// ----- entitlement management ---------------------------------------------------------------

const EM: &str = "identityGovernance/entitlementManagement";

fn governance(
    shared: &Shared,
    state: &mut State,
    req: &Req,
    rest: &[&str],
    m: &str,
) -> Result<Resp, Resp> {
    let id = |i: usize| req.segments.get(2 + i).map_or("", String::as_str);
    match (rest, m) {
        (["catalogs"], "GET") => list_catalogs(state, req),
        (["catalogs", _], "GET") => get_catalog(state, req, id(1)),
        (["accesspackages"], "GET") => list_packages(state, req, None),
        (["catalogs", _, "accesspackages"], "GET") => {
            let catalog = id(1);
            if !state
                .tenant
                .catalogs
                .iter()
                .any(|c| c.id.eq_ignore_ascii_case(catalog))
            {
                return Err(Family::Governance.not_found(catalog));
            }
            list_packages(state, req, Some(catalog))
        }
        (["accesspackages", _, "assignmentpolicies"], "GET") => package_policies(state, req, id(1)),
        (["accesspackages", _], "GET") => get_package(state, req, id(1)),
        (["assignmentpolicies"], "GET") => list_policies(state, req),
        (["assignmentpolicies", _], "GET") => get_policy(state, req, id(1)),
        (["assignments"], "GET") => list_assignments(state, req),
        (["assignments", _], "GET") => get_assignment(state, req, id(1)),
        (["assignmentrequests"], "GET") => list_requests(shared, state, req),
        (["assignmentrequests"], "POST") => post_request(state, req),
        (["assignmentrequests", _], "GET") => get_request(shared, state, req, id(1)),
        (["assignmentrequests", _, action], "POST") if is_reprocess(action) => {
            reprocess_request(state, req, id(1))
        }
        (["assignments", _, action], "POST") if is_reprocess(action) => {
            reprocess_assignment(state, req, id(1))
        }
        (
            ["catalogs"]
            | ["catalogs", _]
            | ["catalogs", _, "accesspackages"]
            | ["accesspackages"]
            | ["accesspackages", _]
            | ["accesspackages", _, "assignmentpolicies"]
            | ["assignmentpolicies"]
            | ["assignmentpolicies", _]
            | ["assignments"]
            | ["assignments", _]
            | ["assignmentrequests"]
            | ["assignmentrequests", _],
            _,
        ) => Err(method_not_allowed()),
        (["assignmentrequests" | "assignments", _, action], _) if is_reprocess(action) => {
            Err(method_not_allowed())
        }
        _ => Err(unknown_segment(req)),
    }
}

fn governance_options(
    type_name: &'static str,
    filter: Option<Allowed>,
    expand: &'static [&'static str],
    paged: bool,
) -> Options {
    Options {
        type_name,
        family: Family::Governance,
        filter,
        expand,
        paged,
    }
}

const CATALOG_FILTER: Allowed = Allowed {
    type_name: "microsoft.graph.accessPackageCatalog",
    eq: &["displayName", "id"],
    r#in: &[],
    any_eq: &[],
    startswith: &[],
    eq_bool: &[],
    endswith: &[],
    null: &[],
    or: false,
    and: true,
    code: "BadRequest",
};

fn list_catalogs(state: &State, req: &Req) -> Result<Resp, Resp> {
    let opts = governance_options(
        "microsoft.graph.accessPackageCatalog",
        Some(CATALOG_FILTER),
        &[],
        true,
    );
    let q = parse_query(req, &opts)?;
    let items = state
        .tenant
        .catalogs
        .iter()
        .map(|c| c.json())
        .filter(|c| q.filter.as_ref().is_none_or(|f| filter::matches(f, c)))
        .map(|c| project(c, &q, None, &[]))
        .collect();
    Ok(collection(
        req,
        &q,
        Family::Governance,
        &format!("{EM}/catalogs"),
        items,
        state.page_size,
    ))
}

fn get_catalog(state: &State, req: &Req, id: &str) -> Result<Resp, Resp> {
    let opts = governance_options("microsoft.graph.accessPackageCatalog", None, &[], false);
    let q = parse_query(req, &opts)?;
    let c = state
        .tenant
        .catalogs
        .iter()
        .find(|c| c.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| Family::Governance.not_found(id))?;
    Ok(entity(
        req,
        &format!("{EM}/catalogs"),
        project(c.json(), &q, None, &[]),
    ))
}

const PACKAGE_FILTER: Allowed = Allowed {
    type_name: "microsoft.graph.accessPackage",
    eq: &["displayName", "id", "catalog/id"],
    r#in: &[],
    any_eq: &[],
    startswith: &[],
    eq_bool: &[],
    endswith: &[],
    null: &[],
    or: false,
    and: true,
    code: "BadRequest",
};

const PACKAGE_EXPAND: &[&str] = &["assignmentpolicies", "catalog"];

fn package_value(state: &State, p: &super::entities::PackageRec, q: &Query) -> Value {
    let policies = q.expand.iter().any(|e| e == "assignmentpolicies");
    let catalog = q.expand.iter().any(|e| e == "catalog");
    let mut expanded = Vec::new();
    if policies {
        expanded.push("assignmentPolicies");
    }
    if catalog {
        expanded.push("catalog");
    }
    project(
        state.tenant.package_json(p, policies, catalog),
        q,
        None,
        &expanded,
    )
}

fn list_packages(state: &State, req: &Req, catalog: Option<&str>) -> Result<Resp, Resp> {
    let opts = governance_options(
        "microsoft.graph.accessPackage",
        Some(PACKAGE_FILTER),
        PACKAGE_EXPAND,
        true,
    );
    let q = parse_query(req, &opts)?;
    let items = state
        .tenant
        .packages
        .iter()
        .filter(|p| {
            catalog.is_none_or(|c| {
                p.catalog_id
                    .as_deref()
                    .is_some_and(|id| id.eq_ignore_ascii_case(c))
            })
        })
        .filter(|p| {
            q.filter
                .as_ref()
                .is_none_or(|f| filter::matches(f, &state.tenant.package_json(p, false, true)))
        })
        .map(|p| package_value(state, p, &q))
        .collect();
    let context = match catalog {
        Some(c) => format!("{EM}/catalogs('{c}')/accessPackages"),
        None => format!("{EM}/accessPackages"),
    };
    Ok(collection(
        req,
        &q,
        Family::Governance,
        &context,
        items,
        state.page_size,
    ))
}

fn package_policies(state: &State, req: &Req, package_id: &str) -> Result<Resp, Resp> {
    let opts = governance_options(
        "microsoft.graph.accessPackageAssignmentPolicy",
        None,
        &[],
        true,
    );
    let q = parse_query(req, &opts)?;
    let package = state
        .tenant
        .package(package_id)
        .ok_or_else(|| Family::Governance.not_found(package_id))?;
    let items = package
        .policies
        .iter()
        .map(|p| project(p.json(), &q, None, &[]))
        .collect();
    Ok(collection(
        req,
        &q,
        Family::Governance,
        &format!("{EM}/accessPackages('{}')/assignmentPolicies", package.id),
        items,
        state.page_size,
    ))
}

fn get_package(state: &State, req: &Req, id: &str) -> Result<Resp, Resp> {
    let opts = governance_options("microsoft.graph.accessPackage", None, PACKAGE_EXPAND, false);
    let q = parse_query(req, &opts)?;
    let p = state
        .tenant
        .package(id)
        .ok_or_else(|| Family::Governance.not_found(id))?;
    Ok(entity(
        req,
        &format!("{EM}/accessPackages"),
        package_value(state, p, &q),
    ))
}

const POLICY_FILTER: Allowed = Allowed {
    type_name: "microsoft.graph.accessPackageAssignmentPolicy",
    eq: &["displayName", "id", "accessPackage/id"],
    r#in: &[],
    any_eq: &[],
    startswith: &[],
    eq_bool: &[],
    endswith: &[],
    null: &[],
    or: false,
    and: true,
    code: "BadRequest",
};

fn policy_value(state: &State, package_id: &str, policy: &Value, q: &Query, full: bool) -> Value {
    let mut v = policy.clone();
    let expand_package = full || q.expand.iter().any(|e| e == "accesspackage");
    if let (true, Some(obj)) = (expand_package, v.as_object_mut()) {
        let p = state
            .tenant
            .package(package_id)
            .map_or(Value::Null, |p| p.json());
        obj.insert("accessPackage".to_owned(), p);
    }
    if full {
        return v;
    }
    let expanded: &[&str] = if expand_package {
        &["accessPackage"]
    } else {
        &[]
    };
    project(v, q, None, expanded)
}

fn list_policies(state: &State, req: &Req) -> Result<Resp, Resp> {
    let opts = governance_options(
        "microsoft.graph.accessPackageAssignmentPolicy",
        Some(POLICY_FILTER),
        &["accesspackage"],
        true,
    );
    let q = parse_query(req, &opts)?;
    let mut items = Vec::new();
    for p in &state.tenant.packages {
        for pol in &p.policies {
            let json = pol.json();
            let full = policy_value(state, &p.id, &json, &q, true);
            if q.filter.as_ref().is_none_or(|f| filter::matches(f, &full)) {
                items.push(policy_value(state, &p.id, &json, &q, false));
            }
        }
    }
    Ok(collection(
        req,
        &q,
        Family::Governance,
        &format!("{EM}/assignmentPolicies"),
        items,
        state.page_size,
    ))
}

fn get_policy(state: &State, req: &Req, id: &str) -> Result<Resp, Resp> {
    let opts = governance_options(
        "microsoft.graph.accessPackageAssignmentPolicy",
        None,
        &["accesspackage"],
        false,
    );
    let q = parse_query(req, &opts)?;
    let (p, pol) = state
        .tenant
        .policy(id)
        .ok_or_else(|| Family::Governance.not_found(id))?;
    Ok(entity(
        req,
        &format!("{EM}/assignmentPolicies"),
        policy_value(state, &p.id, &pol.json(), &q, false),
    ))
}

const ASSIGNMENT_FILTER: Allowed = Allowed {
    type_name: "microsoft.graph.accessPackageAssignment",
    eq: &[
        "id",
        "state",
        "accessPackage/id",
        "assignmentPolicy/id",
        "target/objectId",
        "target/email",
    ],
    r#in: &[],
    any_eq: &[],
    startswith: &[],
    eq_bool: &[],
    endswith: &[],
    null: &[],
    or: false,
    and: true,
    code: "BadRequest",
};

const ASSIGNMENT_EXPAND: &[&str] = &["target", "accesspackage", "assignmentpolicy"];

fn assignment_value(state: &State, a: &AssignmentRec, q: &Query) -> Value {
    let expanded: Vec<&str> = ["target", "accessPackage", "assignmentPolicy"]
        .into_iter()
        .filter(|name| q.expand.iter().any(|e| e.eq_ignore_ascii_case(name)))
        .collect();
    project(
        state.tenant.assignment_json(a, &q.expand),
        q,
        None,
        &expanded,
    )
}

fn list_assignments(state: &State, req: &Req) -> Result<Resp, Resp> {
    let opts = governance_options(
        "microsoft.graph.accessPackageAssignment",
        Some(ASSIGNMENT_FILTER),
        ASSIGNMENT_EXPAND,
        true,
    );
    let q = parse_query(req, &opts)?;
    let all: Vec<String> = ASSIGNMENT_EXPAND.iter().map(|s| (*s).to_owned()).collect();
    let packages = packages_named(q.filter.as_ref());
    let items = state
        .tenant
        .assignments
        .iter()
        .filter(|a| in_packages(packages.as_deref(), &a.package_id))
        .filter(|a| {
            q.filter
                .as_ref()
                .is_none_or(|f| filter::matches(f, &state.tenant.assignment_json(a, &all)))
        })
        .map(|a| assignment_value(state, a, &q))
        .collect();
    Ok(collection(
        req,
        &q,
        Family::Governance,
        &format!("{EM}/assignments"),
        items,
        state.page_size,
    ))
}

/// The packages a filter on assignments or requests is confined to (`accessPackage/id eq`),
/// so a list compares package ids before it builds any JSON; `None` for any package.
fn packages_named(expr: Option<&Expr>) -> Option<Vec<String>> {
    filter::equality_literals(expr?, &["accessPackage/id"], &[])
}

/// Whether `package_id` is one of `packages` (any, for `None`).
fn in_packages(packages: Option<&[String]>, package_id: &str) -> bool {
    packages.is_none_or(|ids| ids.iter().any(|id| id.eq_ignore_ascii_case(package_id)))
}

fn get_assignment(state: &State, req: &Req, id: &str) -> Result<Resp, Resp> {
    let opts = governance_options(
        "microsoft.graph.accessPackageAssignment",
        None,
        ASSIGNMENT_EXPAND,
        false,
    );
    let q = parse_query(req, &opts)?;
    let a = state
        .tenant
        .assignments
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| Family::Governance.not_found(id))?;
    Ok(entity(
        req,
        &format!("{EM}/assignments"),
        assignment_value(state, a, &q),
    ))
}

const REQUEST_FILTER: Allowed = Allowed {
    type_name: "microsoft.graph.accessPackageAssignmentRequest",
    eq: &["id", "state", "requestType", "accessPackage/id"],
    r#in: &[],
    any_eq: &[],
    startswith: &[],
    eq_bool: &[],
    endswith: &[],
    null: &[],
    or: false,
    and: true,
    code: "BadRequest",
};

const REQUEST_EXPAND: &[&str] = &["accesspackage", "assignment", "requestor"];

fn request_value(shared: &Shared, state: &State, r: &RequestRec, q: &Query) -> Value {
    let expanded: Vec<&str> = ["accessPackage", "assignment", "requestor"]
        .into_iter()
        .filter(|name| q.expand.iter().any(|e| e.eq_ignore_ascii_case(name)))
        .collect();
    project(
        state
            .tenant
            .request_json(r, &q.expand, &shared.config.client_id),
        q,
        None,
        &expanded,
    )
}

fn list_requests(shared: &Shared, state: &State, req: &Req) -> Result<Resp, Resp> {
    let opts = governance_options(
        "microsoft.graph.accessPackageAssignmentRequest",
        Some(REQUEST_FILTER),
        REQUEST_EXPAND,
        true,
    );
    let q = parse_query(req, &opts)?;
    let all: Vec<String> = vec!["accesspackage".to_owned()];
    let packages = packages_named(q.filter.as_ref());
    let items = state
        .tenant
        .requests
        .iter()
        .filter(|r| in_packages(packages.as_deref(), &r.package_id))
        .filter(|r| {
            q.filter.as_ref().is_none_or(|f| {
                filter::matches(
                    f,
                    &state.tenant.request_json(r, &all, &shared.config.client_id),
                )
            })
        })
        .map(|r| request_value(shared, state, r, &q))
        .collect();
    Ok(collection(
        req,
        &q,
        Family::Governance,
        &format!("{EM}/assignmentRequests"),
        items,
        state.page_size,
    ))
}

fn get_request(shared: &Shared, state: &State, req: &Req, id: &str) -> Result<Resp, Resp> {
    let opts = governance_options(
        "microsoft.graph.accessPackageAssignmentRequest",
        None,
        REQUEST_EXPAND,
        false,
    );
    let q = parse_query(req, &opts)?;
    let r = state
        .tenant
        .requests
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| Family::Governance.not_found(id))?;
    Ok(entity(
        req,
        &format!("{EM}/assignmentRequests"),
        request_value(shared, state, r, &q),
    ))
}

/// Messages of the refusals a client must recognise (see graph.md §3.3).
pub(crate) mod messages {
    /// adminAdd for a target that already holds the package.
    pub(crate) const EXISTING_ASSIGNMENT: &str =
        "The target already has an existing assignment for this access package.";
    /// A second request while one for the same target and package is still open.
    pub(crate) const EXISTING_OPEN_REQUEST: &str =
        "There is already an existing open request for this target and access package.";
    /// The policy is not one of the package's.
    pub(crate) const NO_VALID_POLICY: &str = "No valid policy was found in the request.";
}

fn post_request(state: &mut State, req: &Req) -> Result<Resp, Resp> {
    let bad = |message: &str| Resp::error(400, "BadRequest", message);
    let body = req.json_body()?;
    // `justification` and `answers` are documented on the current v1.0 page, though not in
    // the 2023 OpenAPI description.
    let obj = check_body(
        &body,
        "microsoft.graph.accessPackageAssignmentRequest",
        &["justification", "answers"],
        Family::Governance,
    )?;
    for key in obj.keys() {
        if !["requestType", "assignment", "justification"].contains(&key.as_str())
            && !key.starts_with("@odata.")
        {
            return Err(unmodelled(
                "microsoft.graph.accessPackageAssignmentRequest",
                key,
            ));
        }
    }
    let request_type = str_field(&obj, "requestType")
        .ok_or_else(|| bad("The requestType property is required."))?;
    let assignment = match obj.get("assignment") {
        Some(a) => check_body(
            a,
            "microsoft.graph.accessPackageAssignment",
            // The write-only keys of the v1.0 request body (graph.md §3.3).
            &["targetId", "assignmentPolicyId", "accessPackageId"],
            Family::Governance,
        )?,
        None => return Err(bad("The assignment property is required.")),
    };
    let now = Instant::now();
    let created_at = clock::now_iso();
    let record = if request_type.eq_ignore_ascii_case("adminAdd") {
        if assignment.contains_key("target") {
            return Err(unmodelled(
                "microsoft.graph.accessPackageAssignment",
                "target",
            ));
        }
        let target_id = str_field(&assignment, "targetId")
            .ok_or_else(|| bad("assignment.targetId is required for adminAdd."))?;
        let package_id = str_field(&assignment, "accessPackageId")
            .ok_or_else(|| bad("assignment.accessPackageId is required for adminAdd."))?;
        let policy_id = str_field(&assignment, "assignmentPolicyId")
            .ok_or_else(|| bad(messages::NO_VALID_POLICY))?;
        let package = state
            .tenant
            .package(package_id)
            .ok_or_else(|| bad(&format!("The access package '{package_id}' was not found.")))?;
        let policy = package
            .policies
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(policy_id))
            .ok_or_else(|| bad(messages::NO_VALID_POLICY))?;
        let user = state
            .tenant
            .user_by_key(target_id)
            .filter(|u| u.visible(now))
            .ok_or_else(|| {
                bad(&format!(
                    "The subject '{target_id}' was not found in the directory."
                ))
            })?;
        policy.admits(&user.user_type).map_err(bad)?;
        let target = SubjectRec::of_user(String::new(), user);
        let (package_id, policy_id, user_id) =
            (package.id.clone(), policy.id.clone(), user.id.clone());
        // The open request first: its assignment is active (delivering) already.
        if state.tenant.requests.iter().any(|r| {
            r.is_open()
                && r.package_id == package_id
                && r.target_object_id.as_deref() == Some(user_id.as_str())
        }) {
            return Err(bad(messages::EXISTING_OPEN_REQUEST));
        }
        if state.tenant.assignments.iter().any(|a| {
            a.is_active()
                && a.package_id == package_id
                && a.target.object_id.as_deref() == Some(user_id.as_str())
        }) {
            return Err(bad(messages::EXISTING_ASSIGNMENT));
        }
        // The assignment exists from now on, `delivering` until the request is delivered.
        let assignment_id = state.new_guid();
        let subject_id = state.new_guid();
        state.tenant.assignments.push(AssignmentRec {
            id: assignment_id.clone(),
            state: "delivering".to_owned(),
            target: SubjectRec {
                id: subject_id,
                ..target
            },
            package_id: package_id.clone(),
            policy_id: Some(policy_id.clone()),
            start: Some(created_at.clone()),
            expired: None,
        });
        RequestRec {
            id: state.new_guid(),
            request_type: "adminAdd".to_owned(),
            state: "submitted".to_owned(),
            created: Some(created_at),
            completed: None,
            package_id,
            policy_id: Some(policy_id),
            target_object_id: Some(user_id),
            assignment_id: Some(assignment_id),
            submitted_at: now,
            fate: state.draw_fate(),
        }
    } else if request_type.eq_ignore_ascii_case("adminRemove") {
        if let Some(key) = assignment.keys().find(|k| k.as_str() != "id") {
            return Err(bad(&format!(
                "adminRemove takes only assignment.id, not '{key}'."
            )));
        }
        let assignment_id = str_field(&assignment, "id")
            .ok_or_else(|| bad("assignment.id is required for adminRemove."))?;
        let existing = state
            .tenant
            .assignments
            .iter()
            .find(|a| a.id.eq_ignore_ascii_case(assignment_id))
            .ok_or_else(|| {
                bad(&format!(
                    "The access package assignment '{assignment_id}' was not found."
                ))
            })?;
        if !existing.is_active() {
            return Err(bad(&format!(
                "The access package assignment '{assignment_id}' is not active (state {}).",
                existing.state
            )));
        }
        let (id, package_id, target) = (
            existing.id.clone(),
            existing.package_id.clone(),
            existing.target.object_id.clone(),
        );
        if state.tenant.requests.iter().any(|r| {
            r.is_open()
                && r.package_id == package_id
                && (r.assignment_id.as_deref() == Some(id.as_str())
                    || (target.is_some() && r.target_object_id == target))
        }) {
            return Err(bad(messages::EXISTING_OPEN_REQUEST));
        }
        RequestRec {
            id: state.new_guid(),
            request_type: "adminRemove".to_owned(),
            state: "submitted".to_owned(),
            created: Some(created_at),
            completed: None,
            package_id,
            policy_id: None,
            target_object_id: target,
            assignment_id: Some(id),
            submitted_at: now,
            fate: state.draw_fate(),
        }
    } else {
        return Err(bad(&format!(
            "The simulator models requestType adminAdd and adminRemove, not '{request_type}'."
        )));
    };
    let value = record.json();
    state.tenant.requests.push(record);
    Ok(created(entity(
        req,
        &format!("{EM}/assignmentRequests"),
        value,
    )))
}

/// Whether a path segment names the `reprocess` action, bare or qualified as the OpenAPI
/// description writes it (`microsoft.graph.reprocess`).
fn is_reprocess(segment: &str) -> bool {
    matches!(segment, "reprocess" | "microsoft.graph.reprocess")
}

/// Graph's answer to an accepted action: 202 without a body.
fn accepted() -> Resp {
    Resp {
        status: 202,
        ..Resp::no_content()
    }
}

/// The body of an action must be empty (the reference pages: "Don't supply a request body").
fn no_body(req: &Req) -> Result<(), Resp> {
    let body = String::from_utf8_lossy(&req.body);
    match body.trim() {
        "" | "{}" => Ok(()),
        _ => Err(Resp::error(
            400,
            "BadRequest",
            "The reprocess action takes no request body.",
        )),
    }
}

/// `POST …/assignmentRequests/{id}/reprocess` (v1.0): a request that ended `deliveryFailed`
/// or `partiallyDelivered` is delivered again (202 Accepted).
fn reprocess_request(state: &mut State, req: &Req, id: &str) -> Result<Resp, Resp> {
    no_body(req)?;
    let half = state.delivery_delay / 2;
    let request = state
        .tenant
        .requests
        .iter_mut()
        .find(|r| r.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| Family::Governance.not_found(id))?;
    if !matches!(
        request.state.as_str(),
        "deliveryFailed" | "partiallyDelivered"
    ) {
        return Err(Resp::error(
            400,
            "BadRequest",
            &format!(
                "Only requests in the deliveryFailed or partiallyDelivered state can be reprocessed; this one is {}.",
                request.state
            ),
        ));
    }
    // Delivering again from now: delivered after the second half of the delivery delay.
    request.state = "delivering".to_owned();
    request.completed = None;
    request.fate = Fate::Deliver;
    request.submitted_at = Instant::now()
        .checked_sub(half)
        .unwrap_or_else(Instant::now);
    let (is_add, assignment_id) = (
        request.request_type.eq_ignore_ascii_case("adminAdd"),
        request.assignment_id.clone(),
    );
    if is_add
        && let Some(a) = state
            .tenant
            .assignments
            .iter_mut()
            .find(|a| Some(&a.id) == assignment_id.as_ref())
    {
        a.state = "delivering".to_owned();
    }
    Ok(accepted())
}

/// `POST …/assignments/{id}/reprocess` (v1.0): the assignment is evaluated and enforced
/// again (202 Accepted). A request stuck delivering it is delivered now. Graph's page asks
/// for a delivered assignment; the simulator also takes one still delivering or partially
/// delivered, and refuses one that expired or failed.
fn reprocess_assignment(state: &mut State, req: &Req, id: &str) -> Result<Resp, Resp> {
    no_body(req)?;
    let assignment = state
        .tenant
        .assignments
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| Family::Governance.not_found(id))?;
    if !assignment.is_active() {
        return Err(Resp::error(
            400,
            "BadRequest",
            &format!(
                "Only delivered assignments can be reprocessed; this one is {}.",
                assignment.state
            ),
        ));
    }
    let assignment_id = assignment.id.clone();
    let stuck =
        state.tenant.requests.iter().position(|r| {
            r.is_open() && r.assignment_id.as_deref() == Some(assignment_id.as_str())
        });
    if let Some(index) = stuck {
        state.deliver(index);
    } else if let Some(a) = state
        .tenant
        .assignments
        .iter_mut()
        .find(|a| a.id == assignment_id)
    {
        a.state = "delivered".to_owned();
    }
    Ok(accepted())
}

// ----- applications and service principals ---------------------------------------------------

const APPLICATION_FILTER: Allowed = Allowed {
    type_name: "microsoft.graph.application",
    eq: &["appId", "displayName", "id"],
    r#in: &["appId", "id"],
    any_eq: &[],
    startswith: &["displayName"],
    eq_bool: &[],
    endswith: &[],
    null: &["displayName"],
    or: true,
    and: true,
    code: "Request_UnsupportedQuery",
};

fn directory_options(type_name: &'static str, filter: Option<Allowed>, paged: bool) -> Options {
    Options {
        type_name,
        family: Family::Directory,
        filter,
        expand: &[],
        paged,
    }
}

/// A directory collection (`/applications`, `/groups`, ...): the query checked against what
/// Graph supports for it, filtered, projected by `$select` and paged.
fn list_directory(
    state: &State,
    req: &Req,
    type_name: &'static str,
    filter_rules: Allowed,
    entity_set: &str,
    items: impl Iterator<Item = Value>,
) -> Result<Resp, Resp> {
    let q = parse_query(req, &directory_options(type_name, Some(filter_rules), true))?;
    let items = query_items(&q, items)
        .into_iter()
        .map(|item| project(item, &q, None, &[]))
        .collect();
    Ok(collection(
        req,
        &q,
        Family::Directory,
        entity_set,
        items,
        state.page_size,
    ))
}

/// One directory object by id, projected by `$select`, or Graph's 404.
fn get_directory(
    req: &Req,
    type_name: &'static str,
    entity_set: &str,
    id: &str,
    found: Option<Value>,
) -> Result<Resp, Resp> {
    let q = parse_query(req, &directory_options(type_name, None, false))?;
    let item = found.ok_or_else(|| Family::Directory.not_found(id))?;
    Ok(entity(req, entity_set, project(item, &q, None, &[])))
}

fn list_applications(state: &State, req: &Req) -> Result<Resp, Resp> {
    let items = state.tenant.applications.iter().map(application_json);
    list_directory(
        state,
        req,
        "microsoft.graph.application",
        APPLICATION_FILTER,
        "applications",
        items,
    )
}

fn get_application(state: &State, req: &Req, id: &str) -> Result<Resp, Resp> {
    let found = state
        .tenant
        .applications
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(id));
    get_directory(
        req,
        "microsoft.graph.application",
        "applications",
        id,
        found.map(application_json),
    )
}

/// Characters Graph allows in an app role's `value` besides letters and digits.
const ROLE_VALUE_PUNCTUATION: &str = ":!#$%&'()*+,-./;<=>?@[]^_`{|}~";

fn parse_app_roles(value: &Value) -> Result<Vec<AppRole>, Resp> {
    let bad = |message: String| Resp::error(400, "Request_BadRequest", &message);
    let Some(items) = value.as_array() else {
        return Err(bad("appRoles must be an array.".to_owned()));
    };
    let mut roles = Vec::new();
    for item in items {
        check_body(item, "microsoft.graph.appRole", &[], Family::Directory)?;
        let role: AppRole = serde_json::from_value(item.clone())
            .map_err(|e| bad(format!("Invalid appRole: {e}.")))?;
        if !is_guid(&role.id) {
            return Err(bad(format!("appRole id '{}' is not a GUID.", role.id)));
        }
        if role.allowed_member_types.is_empty()
            || role
                .allowed_member_types
                .iter()
                .any(|t| t != "User" && t != "Application")
        {
            return Err(bad(format!(
                "appRole '{}' must have allowedMemberTypes of User and/or Application.",
                role.id
            )));
        }
        if let Some(v) = &role.value {
            let valid = !v.is_empty()
                && v.len() <= 120
                && !v.starts_with('.')
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ROLE_VALUE_PUNCTUATION.contains(c));
            if !valid {
                return Err(bad(format!(
                    "appRole value '{v}' is invalid: at most 120 characters, no spaces, letters, digits and :!#$%&'()*+,-./;<=>?@[]^_`{{|}}~ only."
                )));
            }
        }
        if role.origin.as_deref().is_some_and(|o| o != "Application") {
            return Err(bad(
                "appRole origin is read-only and must be 'Application'.".to_owned(),
            ));
        }
        roles.push(AppRole {
            origin: Some("Application".to_owned()),
            ..role
        });
    }
    Ok(roles)
}

fn duplicate_value() -> Resp {
    let message = "Request contains a property with duplicate values.";
    Resp::json(
        400,
        json!({ "error": {
            "code": "Request_BadRequest",
            "message": message,
            "details": [ { "code": "DuplicateValue", "message": message, "target": "appRoles" } ],
        }}),
    )
}

fn patch_application(state: &mut State, req: &Req, id: &str) -> Result<Resp, Resp> {
    if !req.query.is_empty() {
        return Err(Resp::error(
            400,
            "Request_BadRequest",
            "PATCH takes no query options.",
        ));
    }
    let body = req.json_body()?;
    let obj = check_body(&body, "microsoft.graph.application", &[], Family::Directory)?;
    for key in obj.keys() {
        if !["appRoles", "displayName"].contains(&key.as_str()) && !key.starts_with("@odata.") {
            return Err(unmodelled("microsoft.graph.application", key));
        }
    }
    let index = state
        .tenant
        .applications
        .iter()
        .position(|a| a.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| Family::Directory.not_found(id))?;
    let new_roles = match obj.get("appRoles") {
        Some(v) => Some(parse_app_roles(v)?),
        None => None,
    };
    if let Some(new_roles) = &new_roles {
        let mut ids = std::collections::BTreeSet::new();
        let mut values = std::collections::BTreeSet::new();
        for r in new_roles {
            if !ids.insert(r.id.to_ascii_lowercase()) {
                return Err(duplicate_value());
            }
            if let Some(v) = &r.value
                && !values.insert(v.to_ascii_lowercase())
            {
                return Err(duplicate_value());
            }
        }
        // A role must be disabled in one PATCH before it is removed or changed in the next.
        for old in state.tenant.applications[index]
            .app_roles
            .iter()
            .filter(|r| r.is_enabled)
        {
            let changed = match new_roles
                .iter()
                .find(|r| r.id.eq_ignore_ascii_case(&old.id))
            {
                None => true,
                Some(new) => {
                    new.value != old.value || new.allowed_member_types != old.allowed_member_types
                }
            };
            if changed {
                return Err(Resp::error(
                    400,
                    "CannotDeleteOrUpdateEnabledEntitlement",
                    "Permission (scope or role) cannot be deleted or updated unless disabled first.",
                ));
            }
        }
    }
    let display_name = match obj.get("displayName") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(Resp::error(
                400,
                "Request_BadRequest",
                "displayName must be a string.",
            ));
        }
    };
    let app = &mut state.tenant.applications[index];
    if let Some(roles) = new_roles {
        app.app_roles = roles;
    }
    if let Some(name) = display_name {
        app.display_name = Some(name);
    }
    Ok(Resp::no_content())
}

const SP_FILTER: Allowed = Allowed {
    type_name: "microsoft.graph.servicePrincipal",
    eq: &["appId", "displayName", "id"],
    r#in: &["appId", "id"],
    any_eq: &[],
    startswith: &["displayName"],
    eq_bool: &[],
    endswith: &[],
    null: &[],
    or: true,
    and: false,
    code: "Request_UnsupportedQuery",
};

fn list_service_principals(state: &State, req: &Req) -> Result<Resp, Resp> {
    let items = state
        .tenant
        .service_principals
        .iter()
        .map(|sp| service_principal_json(sp, &state.tenant.sp_roles(sp)));
    list_directory(
        state,
        req,
        "microsoft.graph.servicePrincipal",
        SP_FILTER,
        "servicePrincipals",
        items,
    )
}

fn get_service_principal(state: &State, req: &Req, id: &str) -> Result<Resp, Resp> {
    let found = state
        .tenant
        .service_principals
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(id));
    let json = found.map(|sp| service_principal_json(sp, &state.tenant.sp_roles(sp)));
    get_directory(
        req,
        "microsoft.graph.servicePrincipal",
        "servicePrincipals",
        id,
        json,
    )
}

// ----- groups and app role assignments --------------------------------------------------------

const GROUP_FILTER: Allowed = Allowed {
    type_name: "microsoft.graph.group",
    eq: &["displayName", "id", "mailNickname"],
    r#in: &["displayName", "id"],
    any_eq: &[],
    startswith: &["displayName", "mailNickname"],
    eq_bool: &["securityEnabled", "mailEnabled"],
    endswith: &["mail"],
    null: &["mail", "description"],
    or: true,
    and: true,
    code: "Request_UnsupportedQuery",
};

fn list_groups(state: &State, req: &Req) -> Result<Resp, Resp> {
    let items = state.tenant.groups.iter().map(group_json);
    list_directory(
        state,
        req,
        "microsoft.graph.group",
        GROUP_FILTER,
        "groups",
        items,
    )
}

fn get_group(state: &State, req: &Req, id: &str) -> Result<Resp, Resp> {
    let found = state
        .tenant
        .groups
        .iter()
        .find(|g| g.id.eq_ignore_ascii_case(id));
    get_directory(
        req,
        "microsoft.graph.group",
        "groups",
        id,
        found.map(group_json),
    )
}

/// Which side of app role assignments a URL addresses.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// `/groups/{id}/appRoleAssignments`: the principal.
    Principal(&'a str),
    /// `/servicePrincipals/{id}/appRoleAssignedTo`: the resource.
    Resource(&'a str),
}

fn list_app_role_assignments(
    state: &State,
    req: &Req,
    scope: Scope<'_>,
    context: &str,
) -> Result<Resp, Resp> {
    let q = parse_query(
        req,
        &directory_options("microsoft.graph.appRoleAssignment", None, true),
    )?;
    let now = Instant::now();
    let items = state
        .tenant
        .app_role_assignments
        .iter()
        .filter(|a| match scope {
            Scope::Principal(id) => a.principal_id.eq_ignore_ascii_case(id),
            Scope::Resource(id) => a.resource_id.eq_ignore_ascii_case(id),
        })
        // Lists lag recent writes.
        .filter(|a| {
            state
                .app_role_assignment_created
                .get(&a.id)
                .is_none_or(|created| now.duration_since(*created) >= state.app_role_assignment_lag)
        })
        .map(app_role_assignment_json)
        .map(|a| project(a, &q, None, &[]))
        .collect();
    Ok(collection(
        req,
        &q,
        Family::Directory,
        context,
        items,
        state.page_size,
    ))
}

fn list_group_assignments(state: &State, req: &Req, group_id: &str) -> Result<Resp, Resp> {
    let group = state
        .tenant
        .groups
        .iter()
        .find(|g| g.id.eq_ignore_ascii_case(group_id))
        .ok_or_else(|| Family::Directory.not_found(group_id))?;
    let context = format!("groups('{}')/appRoleAssignments", group.id);
    list_app_role_assignments(state, req, Scope::Principal(group_id), &context)
}

fn list_assigned_to(state: &State, req: &Req, sp_id: &str) -> Result<Resp, Resp> {
    let sp = state
        .tenant
        .service_principals
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(sp_id))
        .ok_or_else(|| Family::Directory.not_found(sp_id))?;
    let context = format!("servicePrincipals('{}')/appRoleAssignedTo", sp.id);
    list_app_role_assignments(state, req, Scope::Resource(sp_id), &context)
}

fn post_app_role_assignment(state: &mut State, req: &Req, scope: Scope<'_>) -> Result<Resp, Resp> {
    let bad = |message: &str| Resp::error(400, "Request_BadRequest", message);
    let body = req.json_body()?;
    let obj = check_body(
        &body,
        "microsoft.graph.appRoleAssignment",
        &[],
        Family::Directory,
    )?;
    let principal_id = str_field(&obj, "principalId")
        .ok_or_else(|| bad("principalId is required."))?
        .to_owned();
    let resource_id = str_field(&obj, "resourceId")
        .ok_or_else(|| bad("resourceId is required."))?
        .to_owned();
    let app_role_id = str_field(&obj, "appRoleId")
        .ok_or_else(|| bad("appRoleId is required."))?
        .to_owned();
    let context = match scope {
        Scope::Principal(group_id) => {
            let group = state
                .tenant
                .groups
                .iter()
                .find(|g| g.id.eq_ignore_ascii_case(group_id))
                .ok_or_else(|| Family::Directory.not_found(group_id))?;
            if !principal_id.eq_ignore_ascii_case(&group.id) {
                return Err(bad("principalId must be the id of the group in the URL."));
            }
            format!("groups('{}')/appRoleAssignments", group.id)
        }
        Scope::Resource(sp_id) => {
            if !resource_id.eq_ignore_ascii_case(sp_id) {
                return Err(bad(
                    "resourceId must be the id of the service principal in the URL.",
                ));
            }
            format!("servicePrincipals('{sp_id}')/appRoleAssignedTo")
        }
    };
    let now = Instant::now();
    let (principal_type, principal_name) = if let Some(g) = state
        .tenant
        .groups
        .iter()
        .find(|g| g.id.eq_ignore_ascii_case(&principal_id))
    {
        ("Group", g.display_name.clone())
    } else if let Some(u) = state
        .tenant
        .user_by_key(&principal_id)
        .filter(|u| u.visible(now))
    {
        ("User", u.display_name.clone())
    } else if let Some(sp) = state
        .tenant
        .service_principals
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(&principal_id))
    {
        ("ServicePrincipal", sp.display_name.clone())
    } else {
        return Err(Family::Directory.not_found(&principal_id));
    };
    let sp = state
        .tenant
        .service_principals
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(&resource_id))
        .ok_or_else(|| Family::Directory.not_found(&resource_id))?;
    let member_type = if principal_type == "ServicePrincipal" {
        "Application"
    } else {
        "User"
    };
    let role_ok = app_role_id == ZERO_GUID
        || state.tenant.sp_roles(sp).iter().any(|r| {
            r.id.eq_ignore_ascii_case(&app_role_id)
                && r.is_enabled
                && r.allowed_member_types.iter().any(|t| t == member_type)
        });
    if !role_ok {
        return Err(bad(&format!(
            "Permission being assigned was not found on application '{}'.",
            sp.app_id
        )));
    }
    let resource_name = sp.display_name.clone();
    let resource_id = sp.id.clone();
    if state.tenant.app_role_assignments.iter().any(|a| {
        a.principal_id.eq_ignore_ascii_case(&principal_id)
            && a.resource_id.eq_ignore_ascii_case(&resource_id)
            && a.app_role_id.eq_ignore_ascii_case(&app_role_id)
    }) {
        return Err(bad(
            "Permission being assigned already exists on the object.",
        ));
    }
    let assignment = AppRoleAssignment {
        id: state.new_opaque_id(),
        app_role_id,
        principal_id,
        principal_type: Some(principal_type.to_owned()),
        principal_display_name: principal_name,
        resource_id,
        resource_display_name: resource_name,
        created_date_time: Some(clock::now_iso()),
    };
    let value = app_role_assignment_json(&assignment);
    state
        .app_role_assignment_created
        .insert(assignment.id.clone(), now);
    state.tenant.app_role_assignments.push(assignment);
    Ok(created(entity(req, &context, value)))
}

fn delete_app_role_assignment(state: &mut State, scope: Scope<'_>, id: &str) -> Result<Resp, Resp> {
    let position = state.tenant.app_role_assignments.iter().position(|a| {
        a.id == id
            && match scope {
                Scope::Principal(p) => a.principal_id.eq_ignore_ascii_case(p),
                Scope::Resource(r) => a.resource_id.eq_ignore_ascii_case(r),
            }
    });
    match position {
        Some(i) => {
            state.tenant.app_role_assignments.remove(i);
            Ok(Resp::no_content())
        }
        None => Err(Family::Directory.not_found(id)),
    }
}
