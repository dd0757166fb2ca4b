//! The whole job side by side: the seed's algorithm (sequential, one lookup per person, one
//! request per change) and `enroll apply --tenant graph` (the release binary), each against
//! its own simulated tenant started from the same generated snapshot with 20 ms latency.
//!
//! Scenario (issue 13): 10 packages × 150 people; 100 invitations, 200 assignments and 100
//! removals. Prints, for each, the HTTP requests, the Graph operations (a `$batch` of n counts
//! n) and the wall time, their ratios (goals: at least 20× fewer requests, 10× less wall
//! time), and the floor the API allows. Checks that both tenants end with the same
//! memberships. Timings are printed, never asserted. Run: `scripts/bench side_by_side`.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use enroll_core::tenant::{Assignment, ObjectRef, Subject, TenantSnapshot};
use enroll_sim::{Counters, SimConfig, SimHandle, start};
use serde_json::{Value, json};

#[path = "support/generated.rs"]
mod generated;
mod support;

use generated::{
    access_package, catalog, email, member, package_id, package_name, policy_id, user_id,
};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const PACKAGES: usize = 10;
/// People in each roster.
const ROSTER: usize = 150;
/// Of each roster: holders that stay, users to assign, and people to invite (then assign).
const KEPT: usize = 130;
const TO_ASSIGN: usize = 10;
const TO_INVITE: usize = 10;
/// Holders of each package whom its roster no longer names.
const TO_REMOVE: usize = 10;
/// Users of the tenant no roster names.
const BYSTANDERS: usize = 500;
const LATENCY_MS: u64 = 20;
const CATALOG: &str = "Bench";
/// Graph's page of assignments, as the simulator serves it.
const PAGE: usize = 100;

/// The tenant before either run, and each package's roster (`Name;address` lines).
fn scenario() -> (TenantSnapshot, Vec<String>) {
    let catalog = catalog(CATALOG);
    let mut tenant = TenantSnapshot {
        catalogs: vec![catalog.clone()],
        ..TenantSnapshot::default()
    };
    let mut rosters = Vec::new();
    for p in 0..PACKAGES {
        tenant.access_packages.push(access_package(p, &catalog));
        let users = (0..KEPT + TO_ASSIGN).chain(ROSTER..ROSTER + TO_REMOVE);
        for i in users {
            tenant.users.push(member(user_id(p, i), email(p, i)));
        }
        let holders = (0..KEPT).chain(ROSTER..ROSTER + TO_REMOVE);
        for i in holders {
            tenant.assignments.push(Assignment {
                id: format!("aaaaaaaa-0000-4000-8000-{p:04}{i:08}"),
                state: Some("delivered".into()),
                target: Some(Subject {
                    object_id: Some(user_id(p, i)),
                    email: Some(email(p, i)),
                    ..Subject::default()
                }),
                access_package: Some(ObjectRef {
                    id: package_id(p),
                    display_name: None,
                }),
                assignment_policy: Some(ObjectRef {
                    id: policy_id(p),
                    display_name: None,
                }),
                ..Assignment::default()
            });
        }
        let roster: String = (0..ROSTER)
            .map(|i| format!("Person {p}.{i};{}\n", email(p, i)))
            .collect();
        rosters.push(roster);
    }
    for b in 0..BYSTANDERS {
        tenant.users.push(member(
            format!("99999999-0000-4000-8000-{b:012}"),
            format!("bystander{b}@example.com"),
        ));
    }
    (tenant, rosters)
}

async fn simulator(tenant: &TenantSnapshot) -> BenchResult<SimHandle> {
    let config = SimConfig {
        latency_ms: LATENCY_MS,
        ..SimConfig::default()
    };
    Ok(start(config, tenant.clone()).await?)
}

/// What one run cost.
struct Run {
    wall: Duration,
    counters: Counters,
}

// ----- (a) the seed's algorithm, with plain reqwest -------------------------------------------

/// A plain client that follows the seed: a token, then one call after another.
struct Seed {
    http: reqwest::Client,
    graph: String,
    token: String,
}

impl Seed {
    async fn connect(sim: &SimHandle) -> BenchResult<Self> {
        let http = reqwest::Client::new();
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", "enroll-sim-client")
            .append_pair("client_secret", "enroll-sim-secret")
            .append_pair("scope", "https://graph.microsoft.com/.default")
            .finish();
        let token: Value = http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                sim.base_url(),
                sim.tenant_id()
            ))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = token["access_token"]
            .as_str()
            .ok_or("the token endpoint gave no access_token")?
            .to_owned();
        Ok(Self {
            http,
            graph: format!("{}/v1.0", sim.base_url()),
            token,
        })
    }

    async fn get(&self, url: &str) -> BenchResult<Value> {
        Ok(self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn post(&self, path: &str, body: &Value) -> BenchResult<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.graph))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            return Err(format!("POST {path}: HTTP {status}: {body}").into());
        }
        Ok(body)
    }

    /// The package's delivered assignments, page after page: (holder id, assignment id).
    async fn holders(&self, package: &str) -> BenchResult<Vec<(String, String)>> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair(
                "$filter",
                &format!("accessPackage/id eq '{package}' and state eq 'delivered'"),
            )
            .append_pair("$expand", "target")
            .finish();
        let mut url = format!(
            "{}/identityGovernance/entitlementManagement/assignments?{query}",
            self.graph
        );
        let mut holders = Vec::new();
        loop {
            let page = self.get(&url).await?;
            for assignment in page["value"].as_array().into_iter().flatten() {
                if let (Some(user), Some(id)) = (
                    assignment["target"]["objectId"].as_str(),
                    assignment["id"].as_str(),
                ) {
                    holders.push((user.to_owned(), id.to_owned()));
                }
            }
            match page["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_owned(),
                None => return Ok(holders),
            }
        }
    }

    /// The user with this `mail`, if any (one request per person).
    async fn user(&self, address: &str) -> BenchResult<Option<String>> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair(
                "$filter",
                &format!("mail eq '{}'", address.replace('\'', "''")),
            )
            .append_pair("$select", "id,mail")
            .finish();
        let page = self.get(&format!("{}/users?{query}", self.graph)).await?;
        Ok(page["value"][0]["id"].as_str().map(str::to_owned))
    }
}

/// The seed's pipeline: per roster, the package's holders, then per person a lookup, an
/// invitation if nobody has the address and an `adminAdd` if they hold nothing, then an
/// `adminRemove` per holder the roster no longer names; each call awaited before the next.
async fn seed(sim: &SimHandle, rosters: &[String]) -> BenchResult<Run> {
    let started = Instant::now();
    let seed = Seed::connect(sim).await?;
    for (p, roster) in rosters.iter().enumerate() {
        let package = package_id(p);
        let holders: BTreeMap<String, String> = seed.holders(&package).await?.into_iter().collect();
        let mut wanted = BTreeSet::new();
        for line in roster.lines() {
            let Some((name, address)) = line.split_once(';') else {
                continue;
            };
            let id = match seed.user(address).await? {
                Some(id) => id,
                None => {
                    let invitation = seed
                        .post(
                            "/invitations",
                            &json!({
                                "invitedUserEmailAddress": address,
                                "invitedUserDisplayName": name,
                                "inviteRedirectUrl": "https://myapps.microsoft.com",
                                "sendInvitationMessage": true,
                            }),
                        )
                        .await?;
                    invitation["invitedUser"]["id"]
                        .as_str()
                        .ok_or("the invitation named no user")?
                        .to_owned()
                }
            };
            if !holders.contains_key(&id) {
                seed.post(
                    "/identityGovernance/entitlementManagement/assignmentRequests",
                    &json!({
                        "requestType": "adminAdd",
                        "assignment": {
                            "targetId": id,
                            "assignmentPolicyId": policy_id(p),
                            "accessPackageId": package,
                        }
                    }),
                )
                .await?;
            }
            wanted.insert(id);
        }
        for (holder, assignment) in &holders {
            if !wanted.contains(holder) {
                seed.post(
                    "/identityGovernance/entitlementManagement/assignmentRequests",
                    &json!({
                        "requestType": "adminRemove",
                        "assignment": { "id": assignment }
                    }),
                )
                .await?;
            }
        }
    }
    Ok(Run {
        wall: started.elapsed(),
        counters: sim.counters(),
    })
}

// ----- (b) enroll apply --tenant graph ---------------------------------------------------------

/// `enroll apply DIR --tenant graph` (the release binary) against `sim`.
async fn enroll_apply(sim: &SimHandle, rosters: &Path, reports: &Path) -> BenchResult<Run> {
    let applied = support::enroll_apply(sim, rosters, reports, "example.com").await?;
    let (wall, summary) = (applied.wall, applied.summary);
    println!(
        "enroll apply's own account: {} s planning and applying, {} requests sent again, {} throttled; peak memory {}",
        summary["seconds"],
        summary["graph"]["retries"],
        summary["graph"]["throttled"],
        support::mib(applied.peak_kib)
    );
    Ok(Run {
        wall,
        counters: sim.counters(),
    })
}

// ----- checks and printing ----------------------------------------------------------------------

/// Each package's holders by address, once every request is delivered.
async fn memberships(sim: &SimHandle) -> BTreeMap<String, BTreeSet<String>> {
    let tenant = sim.settled().await;
    let mail: BTreeMap<&str, &str> = tenant
        .users
        .iter()
        .filter_map(|u| Some((u.id.as_str(), u.mail.as_deref()?)))
        .collect();
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for assignment in tenant.assignments.iter().filter(|a| a.is_active()) {
        let (Some(package), Some(user)) = (
            assignment.access_package.as_ref(),
            assignment
                .target
                .as_ref()
                .and_then(|t| t.object_id.as_deref()),
        ) else {
            continue;
        };
        held.entry(package.id.clone())
            .or_default()
            .insert(mail.get(user).copied().unwrap_or(user).to_owned());
    }
    held
}

/// What the rosters ask for: each package's roster addresses.
fn expected() -> BTreeMap<String, BTreeSet<String>> {
    (0..PACKAGES)
        .map(|p| (package_id(p), (0..ROSTER).map(|i| email(p, i)).collect()))
        .collect()
}

fn print_run(name: &str, run: &Run) {
    let c = &run.counters;
    println!(
        "{name:<22} {:>6} HTTP requests ({} $batch, {} token) {:>6} Graph operations {:>8.2} s",
        c.http_requests,
        c.batches,
        c.token_requests,
        c.graph_operations,
        run.wall.as_secs_f64()
    );
}

/// Users of the tenant the lookup figure is measured at.
const SCALE_USERS: usize = 100_000;
/// Lookups timed there.
const SCALE_LOOKUPS: usize = 300;

/// How a lookup filter asks for an address's guest principal name.
type GuestClause = dyn Fn(&String) -> String;

/// The time of one filtered lookup (three addresses in their five forms) against a
/// simulator of [`SCALE_USERS`] users without latency: a round trip on loopback, so the
/// simulator's own time is at most this. Timed twice: with the guest principal name asked
/// for by equality (`userPrincipalName eq '…#EXT#@domain'`, which the simulator indexes),
/// and as the Graph client asks for it (`startswith(userPrincipalName,'…#EXT#@')`, which it
/// does not: each such filter reads every user).
async fn lookup_at_scale() -> BenchResult<()> {
    let tenant = TenantSnapshot {
        users: (0..SCALE_USERS)
            .map(|i| member(format!("u-{i}"), format!("scale{i}@example.com")))
            .collect(),
        ..TenantSnapshot::default()
    };
    let sim = start(SimConfig::default(), tenant).await?;
    let seed = Seed::connect(&sim).await?;
    let guest_eq = |a: &String| {
        format!(
            "userPrincipalName eq '{}#EXT#@{}'",
            a.replace('@', "_"),
            enroll_sim::SIM_TENANT_DOMAIN
        )
    };
    let guest_startswith = |a: &String| {
        format!(
            "startswith(userPrincipalName,'{}#EXT#@')",
            a.replace('@', "_")
        )
    };
    let forms: [(&str, &GuestClause, usize); 2] = [
        ("guest name by eq (indexed)", &guest_eq, SCALE_LOOKUPS),
        (
            "guest name by startswith (as the client asks)",
            &guest_startswith,
            SCALE_LOOKUPS / 10,
        ),
    ];
    for (name, guest, lookups) in forms {
        let mut times = Vec::with_capacity(lookups);
        for n in 0..lookups {
            let addresses: Vec<String> = (0..3)
                .map(|k| format!("scale{}@example.com", (n * 331 + k * 7919) % SCALE_USERS))
                .collect();
            let clause = |a: &String| {
                format!(
                    "mail eq '{a}' or userPrincipalName eq '{a}' or otherMails/any(x:x eq '{a}') or proxyAddresses/any(x:x eq 'smtp:{a}') or {}",
                    guest(a)
                )
            };
            let filter: Vec<String> = addresses.iter().map(clause).collect();
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("$filter", &filter.join(" or "))
                .finish();
            let started = Instant::now();
            let page = seed.get(&format!("{}/users?{query}", seed.graph)).await?;
            times.push(started.elapsed());
            let found = page["value"].as_array().map_or(0, Vec::len);
            if found != 3 {
                return Err(format!("a lookup of 3 addresses found {found} users").into());
            }
        }
        times.sort();
        let at = |share: f64| times[((times.len() - 1) as f64 * share).round() as usize];
        println!(
            "one filtered lookup (3 addresses x 5 forms, {name}) at {SCALE_USERS} users, no latency: {:.2} ms median, {:.2} ms p99 of {lookups} (HTTP round trip on loopback, simulator time included)",
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3
        );
    }
    sim.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let (tenant, rosters) = scenario();
    let people = PACKAGES * ROSTER;
    let invitations = PACKAGES * TO_INVITE;
    let assignments = PACKAGES * (TO_ASSIGN + TO_INVITE);
    let removals = PACKAGES * TO_REMOVE;
    println!(
        "{PACKAGES} packages x {ROSTER} people ({people} roster lines) in a tenant of {} users: {invitations} invitations, {assignments} assignments, {removals} removals; simulator latency {LATENCY_MS} ms",
        tenant.users.len()
    );
    let dir = tempfile::tempdir()?;
    let roster_dir = dir.path().join("rosters");
    for (p, roster) in rosters.iter().enumerate() {
        let path = roster_dir
            .join(CATALOG)
            .join(format!("{}.csv", package_name(p)));
        std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
        std::fs::write(path, roster)?;
    }

    let seed_sim = simulator(&tenant).await?;
    let enroll_sim = simulator(&tenant).await?;
    let slow = seed(&seed_sim, &rosters).await?;
    let fast = enroll_apply(&enroll_sim, &roster_dir, &dir.path().join("reports")).await?;
    let (seed_held, enroll_held) = (memberships(&seed_sim).await, memberships(&enroll_sim).await);
    let enroll_routes = enroll_sim.operations_by_route();
    seed_sim.shutdown().await;
    enroll_sim.shutdown().await;
    if seed_held != enroll_held {
        return Err("the two tenants ended with different memberships".into());
    }
    if enroll_held != expected() {
        return Err("the tenants do not match the rosters".into());
    }
    println!("both tenants end with the same memberships, which match the rosters");

    print_run("seed (sequential)", &slow);
    print_run("enroll apply", &fast);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
    println!(
        "ratios: {:.1}x fewer HTTP requests (goal >= 20), {:.1}x less wall time (goal >= 10)",
        ratio(
            slow.counters.http_requests as f64,
            fast.counters.http_requests as f64
        ),
        ratio(slow.wall.as_secs_f64(), fast.wall.as_secs_f64())
    );
    // The floor: lookups at 15 addresses to a filter, every write, and one paged read of each
    // package's assignments; as requests, those operations in `$batch`es of 20.
    let lookups = people.div_ceil(15);
    let writes = invitations + assignments + removals;
    let holders = KEPT + TO_REMOVE;
    let reads = PACKAGES * holders.div_ceil(PAGE);
    let floor_operations = lookups + writes + reads;
    let floor_requests = lookups.div_ceil(20) + writes.div_ceil(20) + reads;
    println!(
        "floor: {floor_operations} operations (⌈{people}/15⌉ = {lookups} lookups + {writes} writes + {reads} pages of assignments), {floor_requests} requests (⌈{lookups}/20⌉ + ⌈{writes}/20⌉ + {reads})"
    );
    println!(
        "enroll apply: {:.2}x the floor's operations (goal <= 1.3), {:.2}x its requests",
        ratio(
            fast.counters.graph_operations as f64,
            floor_operations as f64
        ),
        ratio(fast.counters.http_requests as f64, floor_requests as f64)
    );
    // Finding every user an address belongs to asks for it in five forms (mail, principal
    // name, guest principal name, other mails, proxy addresses): three addresses fill a
    // filter's 15 clauses.
    let lookups_5 = people.div_ceil(3);
    let floor_5 = lookups_5 + writes + reads;
    println!(
        "floor with each address asked for in its 5 forms: {floor_5} operations (⌈{people}/3⌉ = {lookups_5} lookups + {writes} + {reads}); enroll apply: {:.2}x",
        ratio(fast.counters.graph_operations as f64, floor_5 as f64)
    );
    support::print_routes("enroll apply", &enroll_routes);
    lookup_at_scale().await
}
