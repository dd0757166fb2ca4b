//! Prints what resolving 1,500 e-mails and making 300 assignment changes costs against the
//! simulated tenant with 20 ms latency: the production Graph client next to the way the
//! original PowerShell did it (one request per person and per change, sequential), then the
//! client again under a throttle.
//!
//! Goals (issue 3): at least 20x fewer HTTP requests and 10x less wall time than the
//! baseline; Graph operations no more than ⌈emails/3⌉ lookups + one per change, plus
//! paging (issue 9: every user an address belongs to is found, so each address is asked for
//! in its five forms, 15 clauses to a filter); under `throttle_rps` every change made once, in about the time the throttle
//! allows. Timings are printed, never asserted; that every change landed exactly once is
//! asserted. Run: `scripts/bench graph`.

use std::collections::BTreeMap;
use std::error::Error;
use std::time::{Duration, Instant};

use enroll_core::tenant::{
    AccessPackage, Assignment, AssignmentPolicy, Catalog, ObjectRef, Subject, TenantSnapshot, User,
};
use enroll_graph::{Credential, GraphClient, GraphConfig, GraphStats, NewAssignment, Secret};
use enroll_sim::{Counters, SimConfig, SimHandle, start};
use serde_json::{Value, json};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Users in the tenant (more than the roster names, as in a real tenant).
const TENANT_USERS: usize = 2_000;
/// Addresses to resolve.
const EMAILS: usize = 1_500;
/// Of those, addresses nobody in the tenant answers to.
const UNKNOWN: usize = 60;
/// Assignment changes: half adminRemove, half adminAdd, interleaved.
const CHANGES: usize = 300;
/// Access packages the changes are spread over.
const PACKAGES: usize = 3;
const LATENCY_MS: u64 = 20;
/// Short, so the tenant settles soon after the last request.
const DELIVERY_MS: u64 = 50;
const THROTTLE_RPS: u32 = 50;
/// Addresses one lookup filter can hold: Graph's limit of 15 clauses, five per address
/// (mail, principal name, other mails, proxy addresses, the guest `#EXT#` form).
const ADDRESSES_PER_LOOKUP: usize = 3;

const CATALOG: &str = "33333333-0000-0000-0000-000000000001";

fn user_id(i: usize) -> String {
    format!("00000000-0000-0000-0000-{i:012}")
}

fn package_id(p: usize) -> String {
    format!("11111111-0000-0000-0000-{p:012}")
}

fn policy_id(p: usize) -> String {
    format!("22222222-0000-0000-0000-{p:012}")
}

fn email(i: usize) -> String {
    format!("person{i}@example.com")
}

/// One assignment change of the plan.
#[derive(Debug, Clone)]
enum Change {
    /// adminAdd of person `user` (looked up by e-mail first) to the package.
    Add { user: usize, package: usize },
    /// adminRemove of an existing assignment (its id comes from the plan's tenant snapshot).
    Remove {
        email: String,
        package: usize,
        assignment_id: String,
    },
}

impl Change {
    fn describe(&self) -> String {
        match self {
            Change::Add { user, package } => {
                format!("adminAdd    {} -> package {package}", email(*user))
            }
            Change::Remove {
                email,
                package,
                assignment_id,
            } => format!("adminRemove {email} <- package {package} (assignment {assignment_id})"),
        }
    }
}

/// The tenant, the addresses to resolve and the changes to make.
struct Workload {
    tenant: TenantSnapshot,
    emails: Vec<String>,
    changes: Vec<Change>,
}

fn workload() -> Workload {
    let catalog = Catalog {
        id: CATALOG.into(),
        display_name: Some("Projects".into()),
    };
    let mut tenant = TenantSnapshot {
        users: (0..TENANT_USERS)
            .map(|i| User {
                id: user_id(i),
                display_name: Some(format!("Person {i}")),
                user_principal_name: Some(email(i)),
                mail: Some(email(i)),
                user_type: Some("Member".into()),
                ..User::default()
            })
            .collect(),
        catalogs: vec![catalog.clone()],
        access_packages: (0..PACKAGES)
            .map(|p| AccessPackage {
                id: package_id(p),
                display_name: format!("Project {p} | Contributor"),
                catalog: Some(catalog.clone()),
                assignment_policies: vec![AssignmentPolicy {
                    id: policy_id(p),
                    display_name: Some("Admin direct assignments".into()),
                    allowed_target_scope: Some("notSpecified".into()),
                    ..AssignmentPolicy::default()
                }],
                ..AccessPackage::default()
            })
            .collect(),
        ..TenantSnapshot::default()
    };
    let half = CHANGES / 2;
    let mut changes = Vec::with_capacity(CHANGES);
    for k in 0..half {
        // Person k holds package k % 3 and leaves it; person half + k joins package k % 3.
        let package = k % PACKAGES;
        let assignment_id = format!("aaaaaaaa-0000-0000-0000-{k:012}");
        tenant.assignments.push(Assignment {
            id: assignment_id.clone(),
            state: Some("delivered".into()),
            target: Some(Subject {
                object_id: Some(user_id(k)),
                email: Some(email(k)),
                ..Subject::default()
            }),
            access_package: Some(ObjectRef {
                id: package_id(package),
                display_name: None,
            }),
            assignment_policy: Some(ObjectRef {
                id: policy_id(package),
                display_name: None,
            }),
            ..Assignment::default()
        });
        changes.push(Change::Remove {
            email: email(k),
            package,
            assignment_id,
        });
        changes.push(Change::Add {
            user: half + k,
            package,
        });
    }
    let mut emails: Vec<String> = (0..EMAILS - UNKNOWN)
        .map(email)
        .chain((0..UNKNOWN).map(|i| format!("left.company{i}@example.org")))
        .collect();
    fastrand::Rng::with_seed(7).shuffle(&mut emails);
    Workload {
        tenant,
        emails,
        changes,
    }
}

async fn simulator(workload: &Workload, throttle_rps: Option<u32>) -> BenchResult<SimHandle> {
    let config = SimConfig {
        latency_ms: LATENCY_MS,
        delivery_delay_ms: DELIVERY_MS,
        throttle_rps,
        ..SimConfig::default()
    };
    Ok(start(config, workload.tenant.clone()).await?)
}

/// What one run cost, from the simulator's counters.
struct Run {
    wall: Duration,
    counters: Counters,
    found: usize,
    /// The production client's own count, which the simulator's should match.
    client: Option<GraphStats>,
}

// ----- production: the enroll Graph client ---------------------------------------------------

/// The client as production builds it (default retries and concurrency), aimed at `sim`.
fn client(sim: &SimHandle) -> BenchResult<GraphClient> {
    let mut config = GraphConfig::new(
        sim.tenant_id(),
        Credential::ClientSecret {
            client_id: "enroll-sim-client".into(),
            secret: Secret::new("enroll-sim-secret"),
        },
    );
    config.graph_base_url = format!("{}/v1.0", sim.base_url());
    config.authority_url = sim.base_url();
    Ok(GraphClient::new(config)?)
}

/// Bulk lookup (`in` filters packed into `$batch`), then the changes in `$batch`es of 20;
/// returns the run and, per change, the id of the request Graph created.
async fn production(
    sim: &SimHandle,
    workload: &Workload,
) -> BenchResult<(Run, Vec<(Change, String)>)> {
    let client = client(sim)?;
    let started = Instant::now();
    let found = client.users_by_email(&workload.emails).await?;
    let mut adds = Vec::new();
    let mut add_changes = Vec::new();
    let mut removes = Vec::new();
    let mut remove_changes = Vec::new();
    for change in &workload.changes {
        match change {
            Change::Add { user, package } => {
                let email = email(*user);
                let user = match found.get(&email).map(Vec::as_slice) {
                    Some([user]) => user,
                    Some(several) => {
                        return Err(format!("{email} has {} users", several.len()).into());
                    }
                    None => return Err(format!("{email} was not found").into()),
                };
                adds.push(NewAssignment {
                    target_id: user.id.clone(),
                    access_package_id: package_id(*package),
                    assignment_policy_id: policy_id(*package),
                });
                add_changes.push(change.clone());
            }
            Change::Remove { assignment_id, .. } => {
                removes.push(assignment_id.clone());
                remove_changes.push(change.clone());
            }
        }
    }
    // Both lists go out at once, within the client's one concurrency limit.
    let (added, removed) = tokio::join!(
        client.add_assignments(&adds),
        client.remove_assignments(&removes)
    );
    let wall = started.elapsed();
    let mut made = Vec::with_capacity(CHANGES);
    let answers = added
        .into_iter()
        .map(|(_, answer)| answer)
        .zip(add_changes)
        .chain(
            removed
                .into_iter()
                .map(|(_, answer)| answer)
                .zip(remove_changes),
        );
    for (answer, change) in answers {
        match answer {
            Ok(request) => made.push((change, request.id)),
            Err(error) => return Err(format!("{}: {error}", change.describe()).into()),
        }
    }
    Ok((
        Run {
            wall,
            counters: sim.counters(),
            found: found.len(),
            client: Some(client.stats()),
        },
        made,
    ))
}

// ----- baseline: the original PowerShell's way, with plain reqwest ----------------------------

/// One request per person (`mail eq`), one POST per change, each awaited before the next, as
/// the original script's `Get-MgUser` / `New-MgEntitlementManagementAssignmentRequest` loop.
async fn baseline(sim: &SimHandle, workload: &Workload) -> BenchResult<Run> {
    let http = reqwest::Client::new();
    let graph = format!("{}/v1.0", sim.base_url());
    let started = Instant::now();
    let token_url = format!("{}/{}/oauth2/v2.0/token", sim.base_url(), sim.tenant_id());
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", "enroll-sim-client")
        .append_pair("client_secret", "enroll-sim-secret")
        .append_pair("scope", "https://graph.microsoft.com/.default")
        .finish();
    let token: Value = http
        .post(&token_url)
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

    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for email in &workload.emails {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair(
                "$filter",
                &format!("mail eq '{}'", email.replace('\'', "''")),
            )
            .append_pair("$select", "id,mail")
            .finish();
        let page: Value = http
            .get(format!("{graph}/users?{query}"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if let Some(id) = page["value"][0]["id"].as_str() {
            ids.insert(email.clone(), id.to_owned());
        }
    }

    let url = format!("{graph}/identityGovernance/entitlementManagement/assignmentRequests");
    for change in &workload.changes {
        let body = match change {
            Change::Add { user, package } => json!({
                "requestType": "adminAdd",
                "assignment": {
                    "targetId": ids.get(&email(*user)).ok_or_else(|| format!("{} was not found", email(*user)))?,
                    "assignmentPolicyId": policy_id(*package),
                    "accessPackageId": package_id(*package),
                }
            }),
            Change::Remove { assignment_id, .. } => json!({
                "requestType": "adminRemove",
                "assignment": { "id": assignment_id }
            }),
        };
        let response = http
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?;
        if response.status().as_u16() != 201 {
            return Err(format!(
                "{}: HTTP {} {}",
                change.describe(),
                response.status(),
                response.text().await?
            )
            .into());
        }
    }
    Ok(Run {
        wall: started.elapsed(),
        counters: sim.counters(),
        found: ids.len(),
        client: None,
    })
}

// ----- checks and printing -------------------------------------------------------------------

/// Waits until no request is open, then checks that every change landed exactly once: one
/// successful write per change and no other, one new assignment per adminAdd and no other,
/// each added person holding exactly one active assignment to the package, each removed
/// assignment expired.
async fn verify(sim: &SimHandle, workload: &Workload) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let snapshot = loop {
        let snapshot = sim.snapshot().await;
        if !snapshot.assignment_requests.iter().any(|r| r.is_open()) {
            break snapshot;
        }
        if Instant::now() > deadline {
            return Err("assignment requests still open after 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(DELIVERY_MS)).await;
    };
    // The snapshot keeps only open requests (what a plan needs); delivered ones show as
    // assignments: one new per adminAdd, the removed ones expired.
    let adds = workload
        .changes
        .iter()
        .filter(|c| matches!(c, Change::Add { .. }))
        .count();
    let expected = workload.tenant.assignments.len() + adds;
    if snapshot.assignments.len() != expected {
        return Err(format!(
            "{} assignments in the tenant, expected {expected}",
            snapshot.assignments.len()
        )
        .into());
    }
    let active: Vec<&Assignment> = snapshot
        .assignments
        .iter()
        .filter(|a| a.is_active())
        .collect();
    let holders = |user: &str, package: &str| {
        active
            .iter()
            .filter(|a| {
                a.target.as_ref().and_then(|t| t.object_id.as_deref()) == Some(user)
                    && a.access_package.as_ref().map(|p| p.id.as_str()) == Some(package)
            })
            .count()
    };
    for change in &workload.changes {
        match change {
            Change::Add { user, package } => {
                let held = holders(&user_id(*user), &package_id(*package));
                if held != 1 {
                    return Err(format!("{}: {held} active assignments", change.describe()).into());
                }
            }
            Change::Remove { assignment_id, .. } => {
                let state = snapshot
                    .assignments
                    .iter()
                    .find(|a| &a.id == assignment_id)
                    .and_then(|a| a.state.as_deref());
                if state != Some("expired") {
                    return Err(format!("{}: state {state:?}", change.describe()).into());
                }
            }
        }
    }
    let writes = sim.counters().writes;
    if writes != CHANGES as u64 {
        return Err(format!("{writes} writes for {CHANGES} changes").into());
    }
    Ok(())
}

fn print_run(name: &str, run: &Run) {
    let c = &run.counters;
    println!(
        "{name:<11} {:>6} HTTP requests ({} $batch, {} token) {:>6} Graph operations {:>9.2} s   {} of {EMAILS} e-mails found",
        c.http_requests,
        c.batches,
        c.token_requests,
        c.graph_operations,
        run.wall.as_secs_f64(),
        run.found
    );
    if let Some(stats) = run.client {
        println!(
            "{:<11} (client's own count: {} HTTP requests, {} operations, {} sent again, {} throttled)",
            "", stats.http_requests, stats.operations, stats.retries, stats.throttled
        );
    }
}

fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// The client and the baseline doing the same work, side by side.
async fn compare(workload: &Workload) -> BenchResult<()> {
    let sim = simulator(workload, None).await?;
    let (fast, _) = production(&sim, workload).await?;
    verify(&sim, workload).await?;
    sim.shutdown().await;

    let sim = simulator(workload, None).await?;
    let slow = baseline(&sim, workload).await?;
    verify(&sim, workload).await?;
    sim.shutdown().await;

    print_run("client", &fast);
    print_run("PowerShell", &slow);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
    println!(
        "ratios: {:.0}x fewer HTTP requests (goal >= 20), {:.1}x less wall time (goal >= 10)",
        ratio(
            slow.counters.http_requests as f64,
            fast.counters.http_requests as f64
        ),
        ratio(slow.wall.as_secs_f64(), fast.wall.as_secs_f64())
    );
    let minimum_lookups = ceil_div(EMAILS, ADDRESSES_PER_LOOKUP);
    let minimum = minimum_lookups + CHANGES;
    println!(
        "operations: {} (the API's minimum to find every user of each address: ⌈{EMAILS}/{ADDRESSES_PER_LOOKUP}⌉ = {minimum_lookups} lookups + {CHANGES} changes = {minimum}); no paging (each filter matches few users)",
        fast.counters.graph_operations
    );
    Ok(())
}

/// The client under a throttle: every change made once, in about the time the throttle allows.
async fn throttled(workload: &Workload) -> BenchResult<()> {
    println!(
        "\nclient again with throttle_rps = {THROTTLE_RPS} (operations beyond {THROTTLE_RPS} in any second answered 429 with Retry-After):"
    );
    let sim = simulator(workload, Some(THROTTLE_RPS)).await?;
    let (run, made) = production(&sim, workload).await?;
    for (n, (change, request)) in made.iter().enumerate() {
        println!("  {:>3} {}  request {request}", n + 1, change.describe());
    }
    verify(&sim, workload).await?;
    sim.shutdown().await;
    let c = run.counters;
    let admitted = c.graph_operations - c.throttled;
    print_run("throttled", &run);
    println!(
        "  {} changes made, each delivered once (checked against the simulator's snapshot and write count); {admitted} operations admitted, {} answered 429 and sent again",
        made.len(),
        c.throttled
    );
    // The window admits THROTTLE_RPS at once, then THROTTLE_RPS per second.
    let allowed = admitted.saturating_sub(u64::from(THROTTLE_RPS)) as f64 / f64::from(THROTTLE_RPS);
    println!(
        "  wall time {:.2} s; the throttle lets {admitted} operations through in no less than {allowed:.2} s ({:.2} s at a steady {THROTTLE_RPS}/s): {:.0}% of the rate it allows",
        run.wall.as_secs_f64(),
        admitted as f64 / f64::from(THROTTLE_RPS),
        100.0 * allowed / run.wall.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let workload = workload();
    println!(
        "resolve {EMAILS} e-mails ({UNKNOWN} unknown) in a tenant of {TENANT_USERS} users, then {CHANGES} assignment changes ({} adminAdd, {} adminRemove over {PACKAGES} packages); simulator latency {LATENCY_MS} ms",
        CHANGES / 2,
        CHANGES / 2
    );
    compare(&workload).await?;
    throttled(&workload).await
}
