//! Prints how fast rosters are validated and planned (figures, not assertions).
//!
//! Goals (issue 2): validating a 200,000-row roster above 1 million rows per second on one
//! core; planning 100 packages × 2,000 people below 100 ms. Run: `cargo bench -p enroll-tests --bench roster_plan`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use enroll_core::plan::{PlanOptions, RosterSource, plan};
use enroll_core::roster::{Limits, parse};
use enroll_core::tenant::{
    AccessPackage, Assignment, AssignmentPolicy, Catalog, ObjectRef, Subject, TenantSnapshot, User,
};

/// Runs `work` repeatedly for about a second and returns the fastest and median times.
fn measure(mut work: impl FnMut()) -> (Duration, Duration) {
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 5 || (started.elapsed() < Duration::from_secs(2) && times.len() < 50) {
        let start = Instant::now();
        work();
        times.push(start.elapsed());
    }
    times.sort();
    (times[0], times[times.len() / 2])
}

fn roster_bytes(rows: usize, offset: usize) -> Vec<u8> {
    let mut text = String::with_capacity(rows * 60);
    text.push_str("DisplayName;Email;Role\n");
    for i in offset..offset + rows {
        text.push_str(&format!(
            "Person Zoë {i};person.{i}@company{}.example.com;Project {} | Contributor\n",
            i % 7,
            i % 20
        ));
    }
    text.into_bytes()
}

fn bench_validation() {
    let rows = 200_000;
    let bytes = roster_bytes(rows, 0);
    let (best, median) = measure(|| {
        let roster = parse("big.csv", black_box(&bytes), Limits::default());
        assert!(roster.is_valid());
        black_box(roster);
    });
    println!(
        "validate {rows} rows ({:.1} MiB): best {:.1} ms, median {:.1} ms -> {:.2} million rows/s (goal > 1)",
        bytes.len() as f64 / 1048576.0,
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        rows as f64 / median.as_secs_f64() / 1e6
    );
}

fn bench_plan() {
    let packages = 100;
    let people = 2_000;
    let pool = 20_000;
    let users: Vec<User> = (0..pool)
        .map(|i| User {
            id: format!("user-{i}"),
            user_principal_name: Some(format!(
                "person.{i}_company{}.example.com#EXT#@contoso.onmicrosoft.com",
                i % 7
            )),
            mail: Some(format!("person.{i}@company{}.example.com", i % 7)),
            other_mails: vec![format!("Person.{i}@Company{}.example.com", i % 7)],
            ..User::default()
        })
        .collect();
    let catalog = Catalog {
        id: "cat".into(),
        display_name: Some("Projects".into()),
    };
    let mut tenant = TenantSnapshot {
        users,
        catalogs: vec![catalog.clone()],
        ..TenantSnapshot::default()
    };
    let mut sources = Vec::new();
    for p in 0..packages {
        let id = format!("pkg-{p}");
        tenant.access_packages.push(AccessPackage {
            id: id.clone(),
            display_name: format!("Package {p}"),
            catalog: Some(catalog.clone()),
            assignment_policies: vec![AssignmentPolicy {
                id: format!("pol-{p}"),
                allowed_target_scope: Some("notSpecified".into()),
                ..AssignmentPolicy::default()
            }],
            ..AccessPackage::default()
        });
        let first = p * 150;
        // Assigned: the package's people shifted by 100, so each plan has adds and removes.
        for i in first + 100..first + people + 100 {
            let user = i % pool;
            tenant.assignments.push(Assignment {
                id: format!("as-{p}-{user}"),
                state: Some("delivered".into()),
                target: Some(Subject {
                    object_id: Some(format!("user-{user}")),
                    ..Subject::default()
                }),
                access_package: Some(ObjectRef {
                    id: id.clone(),
                    display_name: None,
                }),
                ..Assignment::default()
            });
        }
        let bytes = roster_bytes(people, first);
        sources.push(RosterSource {
            path: format!("Package {p}.csv"),
            version: "v".into(),
            roster: parse("r.csv", &bytes, Limits::default()),
        });
    }
    let (index_best, _) = measure(|| {
        black_box(enroll_core::plan::TenantIndex::new(black_box(&tenant)));
    });
    println!(
        "  of which indexing the tenant: best {:.1} ms",
        index_best.as_secs_f64() * 1e3
    );
    let options = PlanOptions::default();
    let mut changes = 0;
    let (best, median) = measure(|| {
        let result = plan(black_box(&sources), black_box(&tenant), &options);
        changes = result
            .packages
            .iter()
            .map(|p| p.assign.len() + p.invite.len() + p.remove.len())
            .sum();
        black_box(result);
    });
    println!(
        "plan {packages} packages x {people} people ({pool} users, {} assignments, {changes} changes): best {:.1} ms, median {:.1} ms (goal < 100 ms)",
        tenant.assignments.len(),
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3
    );
}

fn main() {
    bench_validation();
    bench_plan();
}
