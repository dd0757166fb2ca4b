//! A nightly run at tenant scale: `enroll apply --tenant graph` (the release binary) only,
//! against a simulated tenant with 20 ms latency. The seed's way (one request per person
//! and per change, in sequence) would take hours here, so it is not run.
//!
//! Scenario: [`PACKAGES`] packages, each with a roster of 100 people, 2 % churn: per
//! package one person to add (every other one has no account yet and is invited first) and
//! one holder the roster no longer names: 100,000 roster lines and about 100,500 users, the
//! size issue 13 asks for. Change [`PACKAGES`] to run another size.
//! Prints requests, operations, wall time, the floor (as `side_by_side` computes it),
//! operations over the floor (goal <= 1.3) and the peak memory of `enroll apply` (goal
//! under 300 MiB), and checks that the tenant then matches the rosters. Timings are
//! printed, never asserted. Run: `scripts/bench scale`.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;

use enroll_core::tenant::{Assignment, ObjectRef, Subject, TenantSnapshot};
use enroll_sim::{SimConfig, start};

#[path = "support/generated.rs"]
mod generated;
mod support;

use generated::{
    access_package, catalog, email, member, package_id, package_name, policy_id, user_id,
};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Access packages (issue 13 asks for 1,000).
const PACKAGES: usize = 1_000;
/// People in each roster: `ROSTER - 1` holders that stay, and one person to add.
const ROSTER: usize = 100;
const LATENCY_MS: u64 = 20;
const CATALOG: &str = "Scale";
/// Graph's page of assignments, as the simulator serves it.
const PAGE: usize = 100;

/// Whether the person this package's roster adds has no account yet (every other package).
fn invites(package: usize) -> bool {
    package % 2 == 1
}

/// The tenant before the run, and each package's roster (`Name;address` lines). Person
/// `ROSTER - 1` is the one to add; person `ROSTER` holds the package and is no longer named.
fn scenario() -> (TenantSnapshot, Vec<String>) {
    let catalog = catalog(CATALOG);
    let mut tenant = TenantSnapshot {
        catalogs: vec![catalog.clone()],
        ..TenantSnapshot::default()
    };
    let mut rosters = Vec::new();
    for p in 0..PACKAGES {
        tenant.access_packages.push(access_package(p, &catalog));
        let holders: Vec<usize> = (0..ROSTER - 1).chain([ROSTER]).collect();
        let mut users = holders.clone();
        if !invites(p) {
            users.push(ROSTER - 1);
        }
        for i in users {
            tenant.users.push(member(user_id(p, i), email(p, i)));
        }
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
    (tenant, rosters)
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let (tenant, rosters) = scenario();
    let people = PACKAGES * ROSTER;
    let invitations = (0..PACKAGES).filter(|&p| invites(p)).count();
    let assignments = PACKAGES;
    let removals = PACKAGES;
    println!(
        "{PACKAGES} packages x {ROSTER} people ({people} roster lines) in a tenant of {} users and {} assignments: {invitations} invitations, {assignments} assignments, {removals} removals (2 % churn); simulator latency {LATENCY_MS} ms; enroll apply only (the seed's way would take hours)",
        tenant.users.len(),
        tenant.assignments.len()
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
    let config = SimConfig {
        latency_ms: LATENCY_MS,
        ..SimConfig::default()
    };
    let sim = start(config, tenant).await?;
    let applied = support::enroll_apply(
        &sim,
        &roster_dir,
        &dir.path().join("reports"),
        "example.com",
    )
    .await?;
    let counters = sim.counters();
    let routes = sim.operations_by_route();

    // The tenant afterwards: each package's holders by address, against its roster.
    let state = sim.settled().await;
    sim.shutdown().await;
    let mail: BTreeMap<&str, &str> = state
        .users
        .iter()
        .filter_map(|u| Some((u.id.as_str(), u.mail.as_deref()?)))
        .collect();
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for assignment in state.assignments.iter().filter(|a| a.is_active()) {
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
            .insert(mail.get(user).copied().unwrap_or(user).to_lowercase());
    }
    let expected: BTreeMap<String, BTreeSet<String>> = (0..PACKAGES)
        .map(|p| (package_id(p), (0..ROSTER).map(|i| email(p, i)).collect()))
        .collect();
    if held != expected {
        let wrong = expected
            .iter()
            .filter(|(package, want)| held.get(*package) != Some(want))
            .count();
        return Err(format!("{wrong} packages' holders do not match their rosters").into());
    }
    println!("the tenant ends with every package's holders matching its roster");

    println!(
        "enroll apply: {} HTTP requests ({} $batch, {} token), {} Graph operations, {:.1} s wall ({} s by its own account, {} requests sent again, {} throttled); peak memory {} (goal < 300 MiB)",
        counters.http_requests,
        counters.batches,
        counters.token_requests,
        counters.graph_operations,
        applied.wall.as_secs_f64(),
        applied.summary["seconds"],
        applied.summary["graph"]["retries"],
        applied.summary["graph"]["throttled"],
        support::mib(applied.peak_kib)
    );
    // The floor, as side_by_side computes it: lookups at 15 addresses to a filter, every
    // write, and one paged read of each package's assignments; as requests, those
    // operations in `$batch`es of 20.
    let lookups = people.div_ceil(15);
    let writes = invitations + assignments + removals;
    let reads = PACKAGES * ROSTER.div_ceil(PAGE);
    let floor_operations = lookups + writes + reads;
    let floor_requests = lookups.div_ceil(20) + writes.div_ceil(20) + reads;
    let ratio = |a: u64, b: usize| a as f64 / b.max(1) as f64;
    println!(
        "floor: {floor_operations} operations (⌈{people}/15⌉ = {lookups} lookups + {writes} writes + {reads} pages of assignments), {floor_requests} requests; enroll apply: {:.2}x its operations (goal <= 1.3), {:.2}x its requests",
        ratio(counters.graph_operations, floor_operations),
        ratio(counters.http_requests, floor_requests)
    );
    let lookups_5 = people.div_ceil(3);
    let floor_5 = lookups_5 + writes + reads;
    println!(
        "floor with each address asked for in its 5 forms: {floor_5} operations (⌈{people}/3⌉ = {lookups_5} lookups + {writes} + {reads}); enroll apply: {:.2}x",
        ratio(counters.graph_operations, floor_5)
    );
    support::print_routes("enroll apply", &routes);
    Ok(())
}
