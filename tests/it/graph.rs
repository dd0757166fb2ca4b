//! The production Graph client against the simulated tenant, over loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use enroll_core::tenant::{
    AccessPackage, AppRole, Application, AssignmentPolicy, Catalog, Group, ServicePrincipal,
    TenantSnapshot, User,
};
use enroll_graph::{
    Credential, GraphClient, GraphConfig, GraphError, NewAssignment, NewGroupAppRoleAssignment,
    NewInvitation, RetryPolicy, Secret,
};
use enroll_sim::{SimConfig, SimHandle, start};

const CERT: &str = include_str!("../data/auth/test-cert.pem");
const KEY: &str = include_str!("../data/auth/test-key.pem");

const PACKAGE: &str = "11111111-0000-0000-0000-000000000001";
const POLICY: &str = "22222222-0000-0000-0000-000000000001";
const CATALOG: &str = "33333333-0000-0000-0000-000000000001";
const APP_ID: &str = "44444444-0000-0000-0000-000000000001";
const APP_OBJECT: &str = "44444444-0000-0000-0000-0000000000aa";
const SP: &str = "55555555-0000-0000-0000-000000000001";
const GROUP: &str = "66666666-0000-0000-0000-000000000001";
const ROLE: &str = "77777777-0000-0000-0000-000000000001";

fn user_id(i: usize) -> String {
    format!("00000000-0000-0000-0000-{i:012}")
}

fn email(i: usize) -> String {
    format!("person{i}@example.com")
}

/// A tenant with `people` members (person{i}@example.com), one catalog with one package
/// with an admin-only policy, an application with one role, its service principal and a group.
fn tenant(people: usize) -> TenantSnapshot {
    TenantSnapshot {
        users: (0..people)
            .map(|i| User {
                id: user_id(i),
                display_name: Some(format!("Person {i}")),
                user_principal_name: Some(email(i)),
                mail: Some(email(i)),
                user_type: Some("Member".into()),
                ..User::default()
            })
            .collect(),
        catalogs: vec![Catalog {
            id: CATALOG.into(),
            display_name: Some("Projects".into()),
        }],
        access_packages: vec![AccessPackage {
            id: PACKAGE.into(),
            display_name: "Project X | Contributor".into(),
            catalog: Some(Catalog {
                id: CATALOG.into(),
                display_name: Some("Projects".into()),
            }),
            assignment_policies: vec![AssignmentPolicy {
                id: POLICY.into(),
                display_name: Some("Admin direct assignments".into()),
                allowed_target_scope: Some("notSpecified".into()),
                ..AssignmentPolicy::default()
            }],
            ..AccessPackage::default()
        }],
        applications: vec![Application {
            id: APP_OBJECT.into(),
            app_id: APP_ID.into(),
            display_name: Some("Project app".into()),
            app_roles: vec![role(ROLE, "Project.Read", true)],
        }],
        service_principals: vec![ServicePrincipal {
            id: SP.into(),
            app_id: APP_ID.into(),
            display_name: Some("Project app".into()),
            app_roles: vec![role(ROLE, "Project.Read", true)],
        }],
        groups: vec![Group {
            id: GROUP.into(),
            display_name: Some("Project X Readers".into()),
            security_enabled: Some(true),
            ..Group::default()
        }],
        ..TenantSnapshot::default()
    }
}

fn role(id: &str, value: &str, enabled: bool) -> AppRole {
    AppRole {
        id: id.into(),
        allowed_member_types: vec!["User".into()],
        description: Some(value.into()),
        display_name: Some(value.into()),
        is_enabled: enabled,
        origin: None,
        value: Some(value.into()),
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 30,
        max_elapsed: Duration::from_secs(30),
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
        max_wait: Duration::from_secs(60),
    }
}

fn config(sim: &SimHandle, credential: Credential) -> GraphConfig {
    let mut config = GraphConfig::new(sim.tenant_id(), credential);
    config.graph_base_url = format!("{}/v1.0", sim.base_url());
    config.authority_url = sim.base_url();
    config.retry = quick_retries();
    config
}

fn secret_credential() -> Credential {
    Credential::ClientSecret {
        client_id: "enroll-sim-client".into(),
        secret: Secret::new("enroll-sim-secret"),
    }
}

fn client(sim: &SimHandle) -> GraphClient {
    GraphClient::new(config(sim, secret_credential())).unwrap()
}

async fn sim_with(config: SimConfig, people: usize) -> SimHandle {
    start(config, tenant(people)).await.unwrap()
}

/// An invitation to `email`, without a display name or an e-mail from Microsoft.
fn invitation(email: &str) -> NewInvitation {
    NewInvitation {
        invited_user_email_address: email.into(),
        invite_redirect_url: "https://myapps.microsoft.com".into(),
        invited_user_display_name: None,
        send_invitation_message: false,
    }
}

fn adds(range: std::ops::Range<usize>) -> Vec<NewAssignment> {
    range
        .map(|i| NewAssignment {
            target_id: user_id(i),
            access_package_id: PACKAGE.into(),
            assignment_policy_id: POLICY.into(),
        })
        .collect()
}

/// A simulated tenant of `people` whose every assignment request ends `deliveryFailed`
/// (`stuck` false) or stays `delivering` (`stuck` true), once each person was asked for;
/// with a client of it.
async fn with_undelivered_requests(people: usize, stuck: bool) -> (SimHandle, GraphClient) {
    let config = if stuck {
        SimConfig {
            delivery_stuck_rate: 1.0,
            ..SimConfig::default()
        }
    } else {
        SimConfig {
            delivery_failure_rate: 1.0,
            ..SimConfig::default()
        }
    };
    let sim = sim_with(config, people).await;
    let client = client(&sim);
    let made = client.add_assignments(&adds(0..people)).await;
    assert!(made.iter().all(|(_, result)| result.is_ok()), "{made:?}");
    (sim, client)
}

/// Object ids holding a delivered assignment to the package, as the simulator has it, with
/// how many assignments each holds.
async fn assigned(sim: &SimHandle) -> Vec<String> {
    let snapshot = sim.snapshot().await;
    let mut holders: Vec<String> = snapshot
        .assignments
        .iter()
        .filter(|assignment| assignment.is_active())
        .filter_map(|assignment| assignment.target.as_ref()?.object_id.clone())
        .collect();
    holders.sort();
    holders
}

#[tokio::test]
async fn lists_follow_next_link_across_pages() {
    let mut snapshot = tenant(0);
    let template = snapshot.access_packages[0].clone();
    snapshot.access_packages = (0..23)
        .map(|i| AccessPackage {
            id: format!("11111111-0000-0000-0000-{i:012}"),
            display_name: format!("Package {i}"),
            assignment_policies: vec![AssignmentPolicy {
                id: format!("22222222-0000-0000-0000-{i:012}"),
                ..template.assignment_policies[0].clone()
            }],
            ..template.clone()
        })
        .collect();
    let sim = start(
        SimConfig {
            page_size: 4,
            ..SimConfig::default()
        },
        snapshot,
    )
    .await
    .unwrap();
    let client = client(&sim);
    let packages = client.access_packages(Some(CATALOG)).await.unwrap();
    let ids: BTreeSet<String> = packages.iter().map(|package| package.id.clone()).collect();
    assert_eq!(
        packages.len(),
        23,
        "no package lost or repeated across pages"
    );
    assert_eq!(ids.len(), 23);
    assert!(
        packages
            .iter()
            .all(|package| package.assignment_policies.len() == 1)
    );
    assert_eq!(
        client.stats().http_requests,
        6,
        "⌈23/4⌉ pages: {:?}",
        client.stats()
    );
}

/// The ids of the users found for `email`, in the order the lookup gives them.
fn ids_of(found: &std::collections::BTreeMap<String, Vec<User>>, email: &str) -> Vec<String> {
    found
        .get(email)
        .map(|users| users.iter().map(|u| u.id.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn bulk_lookup_costs_one_operation_per_three_addresses() {
    let sim = sim_with(SimConfig::default(), 100).await;
    let client = client(&sim);
    let wanted: Vec<String> = (0..100).map(|i| email(i).to_uppercase()).collect();
    let found = client.users_by_email(&wanted).await.unwrap();
    assert_eq!(found.len(), 100);
    assert_eq!(ids_of(&found, "person42@example.com"), [user_id(42)]);
    let stats = client.stats();
    // Every user of an address is looked for, in its five forms: 15 clauses a filter.
    assert_eq!(stats.operations, 34, "⌈100/3⌉ lookups: {stats:?}");
    assert_eq!(
        stats.http_requests, 2,
        "34 lookups take two $batch requests of at most 20: {stats:?}"
    );
    assert_eq!(sim.counters().graph_operations, 34);
}

#[tokio::test]
async fn lookup_finds_users_by_principal_name_other_mails_proxy_addresses_and_guest_form() {
    let mut snapshot = tenant(0);
    snapshot.users = vec![
        User {
            id: user_id(1),
            user_principal_name: Some("no.mail@example.com".into()),
            ..User::default()
        },
        User {
            id: user_id(2),
            mail: Some("new.address@example.org".into()),
            other_mails: vec!["o'neil+tag@example.com".into()],
            user_principal_name: Some("oneil_example.org#EXT#@enroll.onmicrosoft.com".into()),
            user_type: Some("Guest".into()),
            ..User::default()
        },
        User {
            id: user_id(3),
            user_principal_name: Some("jane_example.net#EXT#@enroll.onmicrosoft.com".into()),
            user_type: Some("Guest".into()),
            ..User::default()
        },
        User {
            id: user_id(4),
            mail: Some("Ĳsbrand.Visser@Contoso.nl".into()),
            user_principal_name: Some("ijsbrand@contoso.nl".into()),
            proxy_addresses: vec![
                "SMTP:Ĳsbrand.Visser@Contoso.nl".into(),
                "smtp:i.visser@contoso.nl".into(),
            ],
            ..User::default()
        },
    ];
    let sim = start(SimConfig::default(), snapshot).await.unwrap();
    let client = client(&sim);
    let found = client
        .users_by_email(&[
            "No.Mail@example.com",
            "o'neil+tag@example.com",
            "jane@example.net",
            "ĳsbrand.visser@contoso.nl",
            "I.Visser@Contoso.nl",
            "nobody@example.com",
        ])
        .await
        .unwrap();
    assert_eq!(ids_of(&found, "no.mail@example.com"), [user_id(1)]);
    assert_eq!(ids_of(&found, "o'neil+tag@example.com"), [user_id(2)]);
    assert_eq!(ids_of(&found, "jane@example.net"), [user_id(3)]);
    // Keys follow the one rule, non-ASCII letters included.
    assert_eq!(ids_of(&found, "ĳsbrand.visser@contoso.nl"), [user_id(4)]);
    assert_eq!(ids_of(&found, "i.visser@contoso.nl"), [user_id(4)]);
    assert!(!found.contains_key("nobody@example.com"));
    assert_eq!(found.len(), 5);
}

#[tokio::test]
async fn lookup_finds_every_user_an_address_belongs_to() {
    let mut snapshot = tenant(0);
    snapshot.users = vec![
        User {
            id: user_id(1),
            mail: Some("sam@contoso.com".into()),
            user_principal_name: Some("sam@contoso.com".into()),
            ..User::default()
        },
        // A guest invited with the same address, and a user holding it as an alias.
        User {
            id: user_id(2),
            user_principal_name: Some("sam_contoso.com#EXT#@enroll.onmicrosoft.com".into()),
            user_type: Some("Guest".into()),
            ..User::default()
        },
        User {
            id: user_id(3),
            mail: Some("samuel@contoso.com".into()),
            user_principal_name: Some("samuel@contoso.com".into()),
            proxy_addresses: vec!["smtp:SAM@contoso.com".into()],
            ..User::default()
        },
    ];
    let sim = start(SimConfig::default(), snapshot).await.unwrap();
    let client = client(&sim);
    let found = client.users_by_email(&["Sam@Contoso.com"]).await.unwrap();
    assert_eq!(
        ids_of(&found, "sam@contoso.com"),
        [user_id(1), user_id(2), user_id(3)]
    );
    let by_id = client
        .users_by_id(&[
            user_id(3),
            user_id(1),
            "99999999-0000-0000-0000-000000000000".into(),
        ])
        .await
        .unwrap();
    let ids: Vec<&str> = by_id.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, [user_id(1), user_id(3)]);
    assert_eq!(by_id[1].proxy_addresses, ["smtp:SAM@contoso.com"]);
}

#[tokio::test]
async fn batched_writes_report_each_outcome_on_its_own() {
    let sim = sim_with(SimConfig::default(), 5).await;
    let client = client(&sim);
    // Person 0 already holds the package.
    let first = client.add_assignments(&adds(0..1)).await;
    assert!(first[0].1.is_ok(), "{:?}", first[0].1);
    wait_until_assigned(&sim, 1).await;

    let mut batch = adds(0..3);
    batch.push(NewAssignment {
        target_id: user_id(4),
        access_package_id: PACKAGE.into(),
        assignment_policy_id: "99999999-0000-0000-0000-000000000000".into(),
    });
    let results = client.add_assignments(&batch).await;
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].0.target_id, user_id(0));
    let duplicate = results[0].1.as_ref().unwrap_err();
    assert!(duplicate.is_already_done(), "{duplicate}");
    assert!(results[1].1.is_ok() && results[2].1.is_ok());
    let bad_policy = results[3].1.as_ref().unwrap_err();
    assert_eq!(bad_policy.status(), Some(400));
    assert!(
        !bad_policy.is_already_done() && !bad_policy.is_retryable(),
        "{bad_policy}"
    );
    wait_until_assigned(&sim, 3).await;
    assert_eq!(
        assigned(&sim).await,
        vec![user_id(0), user_id(1), user_id(2)]
    );
}

async fn wait_until_assigned(sim: &SimHandle, count: usize) {
    for _ in 0..200 {
        if assigned(sim).await.len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("assignments not delivered: {:?}", assigned(sim).await);
}

#[tokio::test]
async fn throttling_storm_makes_every_change_once() {
    let sim = sim_with(
        SimConfig {
            throttle_rps: Some(30),
            ..SimConfig::default()
        },
        60,
    )
    .await;
    let client = client(&sim);
    let results = client.add_assignments(&adds(0..60)).await;
    for (add, result) in &results {
        assert!(result.is_ok(), "{}: {:?}", add.target_id, result);
    }
    let stats = client.stats();
    assert!(
        stats.throttled > 0,
        "the storm throttled nothing: {stats:?}"
    );
    assert!(
        stats.operations > 60,
        "throttled requests were sent again: {stats:?}"
    );
    wait_until_assigned(&sim, 60).await;
    let holders = assigned(&sim).await;
    assert_eq!(
        holders,
        (0..60)
            .map(user_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn reads_survive_server_faults_and_dropped_connections() {
    let sim = sim_with(
        SimConfig {
            fault_rate: 0.3,
            drop_rate: 0.2,
            page_size: 5,
            seed: 7,
            ..SimConfig::default()
        },
        40,
    )
    .await;
    let client = client(&sim);
    let users = client.users().await.unwrap();
    assert_eq!(users.len(), 40);
    let found = client
        .users_by_email(&(0..40).map(email).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(found.len(), 40);
    let counters = sim.counters();
    assert!(
        counters.faulted + counters.dropped > 0,
        "no fault was injected: {counters:?}"
    );
}

#[tokio::test]
async fn writes_are_not_resent_blindly_on_server_errors() {
    let sim = sim_with(
        SimConfig {
            fault_rate: 0.5,
            seed: 3,
            ..SimConfig::default()
        },
        30,
    )
    .await;
    let client = client(&sim);
    let results = client.add_assignments(&adds(0..30)).await;
    // A fault on a write either was retried (503/504: Graph did not take it, or the retry is
    // recognised as already done) or is reported with its status; none becomes two assignments.
    let mut made = 0;
    for (add, result) in &results {
        match result {
            Ok(_) => made += 1,
            Err(error) if error.is_already_done() => made += 1,
            Err(error) => assert_eq!(error.status(), Some(500), "{}: {error}", add.target_id),
        }
    }
    assert!(made > 0);
    wait_until_assigned(&sim, made).await;
    let holders = assigned(&sim).await;
    let unique: BTreeSet<&String> = holders.iter().collect();
    assert_eq!(unique.len(), holders.len(), "an assignment was doubled");
}

#[tokio::test]
async fn invited_user_is_retried_until_replicated() {
    let sim = sim_with(
        SimConfig {
            consistency_delay_ms: 300,
            ..SimConfig::default()
        },
        0,
    )
    .await;
    let client = client(&sim);
    let invitations = client
        .invite(&[NewInvitation {
            invited_user_display_name: Some("Guest".into()),
            ..invitation("guest@partner.example")
        }])
        .await;
    let invited = invitations[0].1.as_ref().unwrap();
    let guest_id = invited.invited_user.as_ref().unwrap().id.clone();
    let add = NewAssignment {
        target_id: guest_id.clone(),
        access_package_id: PACKAGE.into(),
        assignment_policy_id: POLICY.into(),
    };
    let mut early_refusals = 0;
    let mut done = false;
    for _ in 0..100 {
        let result = client
            .add_assignments(std::slice::from_ref(&add))
            .await
            .remove(0)
            .1;
        match result {
            Ok(_) => {
                done = true;
                break;
            }
            Err(error) => {
                assert!(
                    error.is_not_yet_replicated() && error.is_retryable(),
                    "{error}"
                );
                early_refusals += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert!(done, "never accepted");
    assert!(
        early_refusals > 0,
        "entitlement management knew the guest at once"
    );
    // Once replicated, the lookup finds the guest by the invited address.
    let found = client
        .users_by_email(&["guest@partner.example"])
        .await
        .unwrap();
    assert_eq!(
        ids_of(&found, "guest@partner.example"),
        std::slice::from_ref(&guest_id)
    );
    // Inviting again answers with the same user.
    let again = client.invite(&[invitation("guest@partner.example")]).await;
    assert_eq!(
        again[0]
            .1
            .as_ref()
            .unwrap()
            .invited_user
            .as_ref()
            .unwrap()
            .id,
        guest_id
    );
}

#[tokio::test]
async fn tokens_are_renewed_before_expiry() {
    let sim = sim_with(
        SimConfig {
            token_lifetime_ms: 300,
            ..SimConfig::default()
        },
        3,
    )
    .await;
    let client = client(&sim);
    for _ in 0..6 {
        assert_eq!(client.users().await.unwrap().len(), 3);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(client.stats().token_requests >= 2, "{:?}", client.stats());
    assert_eq!(sim.counters().unauthorized, 0, "an expired token was sent");
}

#[tokio::test]
async fn a_rejected_token_is_replaced_once() {
    let sim = sim_with(SimConfig::default(), 3).await;
    let port = sim.port();
    let client = client(&sim);
    assert_eq!(client.users().await.unwrap().len(), 3);
    // A new tenant on the same port knows none of the tokens the old one issued.
    sim.shutdown().await;
    let sim = sim_with(
        SimConfig {
            port,
            ..SimConfig::default()
        },
        4,
    )
    .await;
    assert_eq!(client.users().await.unwrap().len(), 4);
    assert_eq!(sim.counters().unauthorized, 1);
    assert_eq!(client.stats().token_requests, 2);
}

#[tokio::test]
async fn certificate_credential_signs_a_client_assertion() {
    let sim = sim_with(
        SimConfig {
            client_certificate_pem: Some(CERT.into()),
            ..SimConfig::default()
        },
        2,
    )
    .await;
    let credential = Credential::Certificate {
        client_id: "enroll-sim-client".into(),
        certificate_pem: CERT.into(),
        private_key_pem: Secret::new(KEY),
    };
    let client = GraphClient::new(config(&sim, credential)).unwrap();
    assert_eq!(client.users().await.unwrap().len(), 2);

    let wrong_client = Credential::Certificate {
        client_id: "someone-else".into(),
        certificate_pem: CERT.into(),
        private_key_pem: Secret::new(KEY),
    };
    let error = GraphClient::new(config(&sim, wrong_client))
        .unwrap()
        .users()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            GraphError::Auth {
                retryable: false,
                ..
            }
        ),
        "{error}"
    );
    assert!(!error.to_string().contains("PRIVATE KEY"));
}

/// `enroll snapshot` in a process of its own with the environment Functions gives a managed
/// identity: the production client reads IDENTITY_ENDPOINT and IDENTITY_HEADER from the
/// process environment (through azure_identity), which a test cannot set in its own process.
fn snapshot_with_managed_identity(
    sim: &SimHandle,
    header: &str,
    out: &std::path::Path,
) -> std::process::Output {
    std::process::Command::new(crate::enroll_binary())
        .args(["snapshot", "--out", out.to_str().unwrap()])
        .env_clear()
        .envs(sim.managed_identity_settings())
        .env("IDENTITY_HEADER", header)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn managed_identity_uses_the_identity_header() {
    let sim = sim_with(SimConfig::default(), 2).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot.json");
    let output = tokio::task::block_in_place(|| {
        snapshot_with_managed_identity(&sim, "enroll-sim-identity", &out)
    });
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let snapshot: TenantSnapshot = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(snapshot.users.len(), 2);
    assert_eq!(
        sim.counters().token_requests,
        1,
        "one token serves every Graph call of the run"
    );

    let wrong = tokio::task::block_in_place(|| {
        snapshot_with_managed_identity(&sim, "not-the-identity-header-xyz", &out)
    });
    let stderr = String::from_utf8_lossy(&wrong.stderr).into_owned();
    assert_eq!(wrong.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot get an access token from")
            && stderr.contains("/msi/token")
            && stderr.contains("X-IDENTITY-HEADER header is missing or wrong"),
        "the error names the endpoint and what it answered: {stderr}"
    );
    assert!(!stderr.contains("not-the-identity-header-xyz"), "{stderr}");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_errors() {
    let sim = sim_with(SimConfig::default(), 1).await;
    let credential = Credential::ClientSecret {
        client_id: "enroll-sim-client".into(),
        secret: Secret::new("wrong-secret-value-123"),
    };
    let config = config(&sim, credential);
    let client = GraphClient::new(config.clone()).unwrap();
    let error = client.users().await.unwrap_err();
    assert!(
        matches!(
            error,
            GraphError::Auth {
                retryable: false,
                ..
            }
        ),
        "{error}"
    );
    for text in [
        format!("{error}"),
        format!("{error:?}"),
        format!("{config:?}"),
        format!("{client:?}"),
    ] {
        assert!(!text.contains("wrong-secret-value-123"), "{text}");
    }
    // A working client's errors carry no bearer token either.
    let good = self::client(&sim);
    let missing = good.user("nobody@example.com").await.unwrap();
    assert!(missing.is_none());
    let error = good.update_app_roles("no-such-app", &[]).await.unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(
        !text.to_lowercase().contains("bearer") && !text.contains("eyJ"),
        "{text}"
    );
    assert!(
        error.request_id().is_some(),
        "Graph's request-id is kept: {text}"
    );
}

#[tokio::test]
async fn snapshot_reads_the_tenant_as_the_simulator_holds_it() {
    let sim = sim_with(SimConfig::default(), 12).await;
    let client = client(&sim);
    client.add_assignments(&adds(0..4)).await;
    wait_until_assigned(&sim, 4).await;
    let snapshot = client.snapshot(Some("Projects")).await.unwrap();
    assert_eq!(snapshot.users.len(), 12);
    assert_eq!(snapshot.access_packages.len(), 1);
    assert_eq!(
        snapshot.access_packages[0].assignment_policies[0].id,
        POLICY
    );
    let mut holders: Vec<String> = snapshot
        .assignments
        .iter()
        .filter_map(|assignment| assignment.target.as_ref()?.object_id.clone())
        .collect();
    holders.sort();
    assert_eq!(holders, (0..4).map(user_id).collect::<Vec<_>>());
    assert!(matches!(
        client.snapshot(Some("Nope")).await,
        Err(GraphError::Config(_))
    ));
}

#[tokio::test]
async fn removals_go_through_admin_remove() {
    let sim = sim_with(SimConfig::default(), 3).await;
    let client = client(&sim);
    client.add_assignments(&adds(0..3)).await;
    wait_until_assigned(&sim, 3).await;
    let current = client.assignments(PACKAGE).await.unwrap();
    assert_eq!(current.len(), 3);
    let remove: Vec<String> = current
        .iter()
        .filter(|assignment| {
            assignment
                .target
                .as_ref()
                .and_then(|t| t.object_id.as_deref())
                != Some(&user_id(1))
        })
        .map(|assignment| assignment.id.clone())
        .collect();
    let results = client.remove_assignments(&remove).await;
    assert!(
        results.iter().all(|(_, result)| result.is_ok()),
        "{results:?}"
    );
    for _ in 0..200 {
        if assigned(&sim).await == vec![user_id(1)] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("removals not delivered: {:?}", assigned(&sim).await);
}

#[tokio::test]
async fn app_roles_and_group_assignments() {
    let sim = sim_with(SimConfig::default(), 0).await;
    let client = client(&sim);
    let app = client.application_by_app_id(APP_ID).await.unwrap().unwrap();
    assert_eq!(app.id, APP_OBJECT);
    let sp = client
        .service_principal_by_app_id(APP_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sp.id, SP);
    assert!(
        client
            .application_by_app_id("00000000-0000-0000-0000-00000000dead")
            .await
            .unwrap()
            .is_none()
    );

    let writer = "77777777-0000-0000-0000-000000000002";
    let mut roles = app.app_roles.clone();
    roles.push(role(writer, "Project.Write", true));
    client.update_app_roles(&app.id, &roles).await.unwrap();
    let app = client.application_by_app_id(APP_ID).await.unwrap().unwrap();
    assert_eq!(app.app_roles.len(), 2);
    // Removing an enabled role in one step is refused.
    let error = client
        .update_app_roles(&app.id, &roles[..1])
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(400));

    let groups = client
        .groups_by_display_name(&["Project X Readers", "Missing"])
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
    let grant = NewGroupAppRoleAssignment {
        principal_id: GROUP.into(),
        resource_id: SP.into(),
        app_role_id: ROLE.into(),
    };
    let created = client
        .add_group_app_role_assignments(std::slice::from_ref(&grant))
        .await;
    let assignment = created[0].1.as_ref().unwrap().clone();
    let again = client.add_group_app_role_assignments(&[grant]).await;
    let duplicate = again[0].1.as_ref().unwrap_err();
    assert!(
        duplicate.is_existing_app_role_assignment() && duplicate.is_already_done(),
        "{duplicate}"
    );
    assert_eq!(
        client
            .app_role_assignments_of_group(GROUP)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        client
            .app_role_assignments_of_service_principal(SP)
            .await
            .unwrap()
            .len(),
        1
    );
    let removed = client
        .remove_group_app_role_assignments(&[(GROUP.into(), assignment.id.clone())])
        .await;
    assert!(removed[0].1.is_ok(), "{:?}", removed[0].1);
    let gone = client
        .remove_group_app_role_assignments(&[(GROUP.into(), assignment.id)])
        .await;
    assert!(gone[0].1.as_ref().unwrap_err().is_already_removed());
    assert!(
        client
            .app_role_assignments_of_group(GROUP)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_sustained_throttle_drops_no_change_even_without_attempts_to_spare() {
    // Two envelopes of 20 against 20 operations a second: the second is turned away with
    // Retry-After, maybe more than once; waiting as told must not use up the one attempt.
    let sim = sim_with(
        SimConfig {
            throttle_rps: Some(20),
            ..SimConfig::default()
        },
        40,
    )
    .await;
    let mut config = config(&sim, secret_credential());
    config.retry.max_attempts = 1;
    let client = GraphClient::new(config).unwrap();
    let results = client.add_assignments(&adds(0..40)).await;
    for (add, result) in &results {
        assert!(result.is_ok(), "{}: {:?}", add.target_id, result);
    }
    assert!(
        client.stats().throttled > 0,
        "nothing was throttled: {:?}",
        client.stats()
    );
    wait_until_assigned(&sim, 40).await;
    assert_eq!(assigned(&sim).await.len(), 40);
}

#[tokio::test]
async fn a_throttled_answer_holds_back_the_clients_other_requests() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    use warp::Filter;

    // A stand-in for Graph that throttles the first call for 300 ms and records when the
    // others arrive.
    let throttled_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let arrivals: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let first = Arc::new(AtomicBool::new(true));
    let routes = warp::path::full().map({
        let (throttled_at, arrivals) = (throttled_at.clone(), arrivals.clone());
        move |path: warp::path::FullPath| {
            let path = path.as_str().to_owned();
            let reply = |status: u16, body: serde_json::Value| {
                let mut response = warp::reply::json(&body).into_response();
                *response.status_mut() = warp::http::StatusCode::from_u16(status).unwrap();
                response
            };
            if path.ends_with("/oauth2/v2.0/token") {
                return reply(
                    200,
                    serde_json::json!({"access_token": "t", "expires_in": 3600, "token_type": "Bearer"}),
                );
            }
            if first.swap(false, Ordering::SeqCst) {
                *throttled_at.lock().unwrap() = Some(Instant::now());
                let mut response = reply(
                    429,
                    serde_json::json!({"error": {"code": "TooManyRequests", "message": "Please retry again later."}}),
                );
                response
                    .headers_mut()
                    .insert("Retry-After", warp::http::HeaderValue::from_static("0.3"));
                return response;
            }
            arrivals.lock().unwrap().push((path.clone(), Instant::now()));
            reply(200, serde_json::json!({"id": path.rsplit('/').next().unwrap()}))
        }
    });
    use warp::Reply;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(routes).incoming(listener).run());

    let mut config = GraphConfig::new("tenant", secret_credential());
    config.graph_base_url = format!("{base}/v1.0");
    config.authority_url = base;
    config.retry = quick_retries();
    let client = GraphClient::new(config).unwrap();
    let first_call = tokio::spawn({
        let client = client.clone();
        async move { client.user("a").await }
    });
    while client.stats().throttled == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The client now knows it is throttled: a new call waits out the same Retry-After.
    let second = client.user("b").await.unwrap().unwrap();
    let first = first_call.await.unwrap().unwrap().unwrap();
    assert_eq!((first.id.as_str(), second.id.as_str()), ("a", "b"));
    let throttled_at = throttled_at.lock().unwrap().unwrap();
    for (path, arrived) in arrivals.lock().unwrap().iter() {
        assert!(
            arrived.duration_since(throttled_at) >= Duration::from_millis(300),
            "{path} arrived {:?} after the 429 that asked for 300 ms",
            arrived.duration_since(throttled_at)
        );
    }
}

/// An answer of the stand-ins below.
fn reply(status: u16, body: serde_json::Value) -> warp::reply::Response {
    use warp::Reply;
    let mut response = warp::reply::json(&body).into_response();
    *response.status_mut() = warp::http::StatusCode::from_u16(status).unwrap();
    response
}

/// A 429 with the given `Retry-After`, taken as sent.
fn throttled_with(retry_after: &str) -> warp::reply::Response {
    let mut response = reply(
        429,
        serde_json::json!({"error": {"code": "TooManyRequests", "message": "Please retry again later."}}),
    );
    response.headers_mut().insert(
        "Retry-After",
        warp::http::HeaderValue::from_bytes(retry_after.as_bytes()).unwrap(),
    );
    response
}

/// A stand-in for Graph on a free port that grants every token and answers every other
/// request with `answer(path, body)`; its base URL.
async fn stand_in(
    answer: impl Fn(&str, &[u8]) -> warp::reply::Response + Clone + Send + Sync + 'static,
) -> String {
    use warp::Filter;
    let routes = warp::path::full().and(warp::body::bytes()).map(
        move |path: warp::path::FullPath, body: warp::hyper::body::Bytes| {
            if path.as_str().ends_with("/oauth2/v2.0/token") {
                return reply(
                    200,
                    serde_json::json!({"access_token": "t", "expires_in": 3600, "token_type": "Bearer"}),
                );
            }
            answer(path.as_str(), &body)
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    base
}

/// A client of the stand-in at `base`.
fn stand_in_client(base: &str, retry: RetryPolicy, concurrency: usize) -> GraphClient {
    let mut config = GraphConfig::new("tenant", secret_credential());
    config.graph_base_url = format!("{base}/v1.0");
    config.authority_url = base.to_owned();
    config.retry = retry;
    config.concurrency = concurrency;
    GraphClient::new(config).unwrap()
}

/// A user the stand-in answers with: its id is the last segment of the path.
fn user_answer(path: &str) -> warp::reply::Response {
    reply(
        200,
        serde_json::json!({"id": path.rsplit('/').next().unwrap()}),
    )
}

#[tokio::test]
async fn any_retry_after_is_read_without_panic_and_none_holds_the_client_for_long() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    // Each user's first answer is a 429 with one of these Retry-After values; later ones
    // succeed. (value, whether the client waits and tries again, the wait it reports).
    let day = Duration::from_secs(86_400);
    let cases: Vec<(&str, bool, Option<Duration>)> = vec![
        ("1e30", false, Some(day)),
        ("99999999999999999999999", false, Some(day)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", false, Some(day)),
        ("3600", false, Some(Duration::from_secs(3_600))),
        ("61", false, Some(Duration::from_secs(61))),
        ("-1", true, None),
        ("NaN", true, None),
        ("inf", true, None),
        ("a while", true, None),
        ("Thu, 01 Jan 1970 00:00:00 GMT", true, None),
        ("0", true, None),
    ];
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let values: HashMap<String, String> = cases
        .iter()
        .enumerate()
        .map(|(i, (value, ..))| (format!("/v1.0/users/u{i}"), (*value).to_owned()))
        .collect();
    let base = stand_in({
        let seen = seen.clone();
        move |path, _body| {
            let count = {
                let mut seen = seen.lock().unwrap();
                let count = seen.entry(path.to_owned()).or_default();
                *count += 1;
                *count
            };
            match values.get(path) {
                Some(value) if count == 1 => throttled_with(value),
                _ => user_answer(path),
            }
        }
    })
    .await;
    let client = stand_in_client(&base, quick_retries(), 4);
    for (i, (value, retried, reported)) in cases.iter().enumerate() {
        let id = format!("u{i}");
        // A stall shows as this guard running out, not as a hung test.
        let result = tokio::time::timeout(Duration::from_secs(30), client.user(&id))
            .await
            .unwrap_or_else(|_| panic!("Retry-After {value:?} held the call"));
        let answers = seen.lock().unwrap()[&format!("/v1.0/users/{id}")];
        if *retried {
            assert_eq!(result.unwrap().unwrap().id, id, "Retry-After {value:?}");
            assert_eq!(answers, 2, "Retry-After {value:?}");
        } else {
            let error = result.unwrap_err();
            assert_eq!(answers, 1, "Retry-After {value:?} was waited out");
            assert!(error.is_throttled() && error.is_retryable(), "{error}");
            assert_eq!(error.retry_after(), *reported, "Retry-After {value:?}");
            assert!(error.to_string().contains("asked to wait"), "{error}");
        }
    }
    // Nobody is held back by the answers the client gave up on: the next call goes at once.
    let after = tokio::time::timeout(Duration::from_secs(30), client.user("after"))
        .await
        .expect("a long Retry-After held back the client's other requests");
    assert_eq!(after.unwrap().unwrap().id, "after");
}

#[tokio::test]
async fn a_long_retry_after_inside_a_batch_gives_the_write_back_at_once() {
    // The $batch envelope succeeds; the one adminAdd in it is throttled for an hour.
    let base = stand_in(|path, _body| {
        assert_eq!(path, "/v1.0/$batch");
        reply(
            200,
            serde_json::json!({"responses": [{
                "id": "0", "status": 429,
                "headers": {"Retry-After": "3600"},
                "body": {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}
            }]}),
        )
    })
    .await;
    let client = stand_in_client(&base, quick_retries(), 4);
    let results =
        tokio::time::timeout(Duration::from_secs(30), client.add_assignments(&adds(0..1)))
            .await
            .expect("the client waited out an hour's Retry-After");
    let error = results[0].1.as_ref().unwrap_err();
    assert_eq!(
        error.retry_after(),
        Some(Duration::from_secs(3_600)),
        "{error}"
    );
    assert_eq!(
        client.stats().batches,
        1,
        "the throttled write was sent again"
    );
}

#[tokio::test]
async fn another_request_goes_out_while_one_waits_to_try_again() {
    use std::sync::{Arc, Mutex};

    // One request at a time. The first answer to user `a` is a 500; the client waits (backoff
    // of at least a quarter second) before trying it again. Meanwhile `b` must go out.
    let arrivals: Arc<Mutex<Vec<String>>> = Arc::default();
    let base = stand_in({
        let arrivals = arrivals.clone();
        move |path, _body| {
            let first = {
                let mut arrivals = arrivals.lock().unwrap();
                arrivals.push(path.to_owned());
                arrivals.len() == 1
            };
            if first {
                return reply(
                    500,
                    serde_json::json!({"error": {"code": "UnknownError", "message": "An internal server error occurred."}}),
                );
            }
            user_answer(path)
        }
    })
    .await;
    let retry = RetryPolicy {
        base_delay: Duration::from_millis(500),
        ..quick_retries()
    };
    let client = stand_in_client(&base, retry, 1);
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.user("a").await }
    });
    while arrivals.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(client.user("b").await.unwrap().unwrap().id, "b");
    assert_eq!(waiting.await.unwrap().unwrap().unwrap().id, "a");
    assert_eq!(
        *arrivals.lock().unwrap(),
        ["/v1.0/users/a", "/v1.0/users/b", "/v1.0/users/a"],
        "b waited for a's retry"
    );
}

#[tokio::test]
async fn writes_whose_answers_are_lost_are_found_made_by_a_read_and_not_sent_again() {
    // Every write takes effect and is then answered 504: the answer is lost, not the work.
    let sim = sim_with(
        SimConfig {
            lost_answer_rate: 1.0,
            ..SimConfig::default()
        },
        3,
    )
    .await;
    let client = client(&sim);

    let invited = client
        .invite(&[
            invitation("ann@partner.example"),
            invitation("bo@partner.example"),
        ])
        .await;
    for (email, result) in &invited {
        let error = result.as_ref().unwrap_err();
        assert!(error.is_existing_user_invitation(), "{email}: {error}");
        assert!(
            error.to_string().contains("has the invited address"),
            "{error}"
        );
    }
    let added = client.add_assignments(&adds(0..2)).await;
    for (add, result) in &added {
        let error = result.as_ref().unwrap_err();
        assert!(error.is_already_done(), "{}: {error}", add.target_id);
    }
    assert_eq!(assigned(&sim).await, vec![user_id(0), user_id(1)]);
    let first = sim
        .snapshot()
        .await
        .assignments
        .into_iter()
        .find(|a| a.target.as_ref().and_then(|t| t.object_id.as_deref()) == Some(&user_id(0)))
        .unwrap();
    let removed = client
        .remove_assignments(std::slice::from_ref(&first.id))
        .await;
    let error = removed[0].1.as_ref().unwrap_err();
    assert!(error.is_already_removed(), "{error}");
    assert_eq!(assigned(&sim).await, vec![user_id(1)]);
    let granted = client
        .add_group_app_role_assignments(&[NewGroupAppRoleAssignment {
            principal_id: GROUP.into(),
            resource_id: SP.into(),
            app_role_id: ROLE.into(),
        }])
        .await;
    let error = granted[0].1.as_ref().unwrap_err();
    assert!(error.is_existing_app_role_assignment(), "{error}");

    // Each change was sent once: two invitations (no second e-mail), two adminAdd, one
    // adminRemove, one app role assignment.
    assert_eq!(sim.counters().writes, 6);
    let snapshot = sim.snapshot().await;
    for email in ["ann@partner.example", "bo@partner.example"] {
        let guests = snapshot
            .users
            .iter()
            .filter(|u| u.mail.as_deref() == Some(email))
            .count();
        assert_eq!(guests, 1, "{email}");
    }
    assert_eq!(snapshot.app_role_assignments.len(), 1);
}

#[tokio::test]
async fn a_lost_invitation_whose_guest_is_not_visible_yet_is_left_unclear_not_sent_again() {
    let sim = sim_with(
        SimConfig {
            lost_answer_rate: 1.0,
            consistency_delay_ms: 60_000,
            ..SimConfig::default()
        },
        0,
    )
    .await;
    let client = client(&sim);
    let invited = client.invite(&[invitation("cy@partner.example")]).await;
    let error = invited[0].1.as_ref().unwrap_err();
    // The read cannot see the guest yet: the caller is told to try later, when it looks the
    // address up before inviting.
    assert_eq!(error.status(), Some(504), "{error}");
    assert!(error.is_retryable() && !error.is_already_done(), "{error}");
    assert_eq!(sim.counters().writes, 1, "the invitation was sent again");
}

#[tokio::test]
async fn a_write_lost_before_it_was_made_is_sent_again_once_a_read_finds_nothing() {
    use std::sync::{Arc, Mutex};

    // The first adminAdd is answered 500 without being made; the reads that follow find
    // neither an assignment nor an open request; the second adminAdd is made.
    let writes: Arc<Mutex<usize>> = Arc::default();
    let base = stand_in({
        let writes = writes.clone();
        move |path, body| {
            assert_eq!(path, "/v1.0/$batch");
            let envelope: serde_json::Value = serde_json::from_slice(body).unwrap();
            let responses: Vec<serde_json::Value> = envelope["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| {
                    let id = item["id"].clone();
                    if item["method"] == "GET" {
                        return serde_json::json!({"id": id, "status": 200, "body": {"value": []}});
                    }
                    let mut writes = writes.lock().unwrap();
                    *writes += 1;
                    if *writes == 1 {
                        serde_json::json!({"id": id, "status": 500, "body": {"error": {"code": "UnknownError", "message": "An internal server error occurred."}}})
                    } else {
                        serde_json::json!({"id": id, "status": 201, "body": {"id": "request-2", "requestType": "adminAdd", "state": "submitted"}})
                    }
                })
                .collect();
            reply(200, serde_json::json!({"responses": responses}))
        }
    })
    .await;
    let client = stand_in_client(&base, quick_retries(), 4);
    let results = client.add_assignments(&adds(0..1)).await;
    let request = results[0].1.as_ref().unwrap();
    assert_eq!(request.id, "request-2");
    assert_eq!(*writes.lock().unwrap(), 2);
}

#[tokio::test]
async fn failed_and_stuck_requests_are_listed_with_their_dates_and_reprocessed() {
    let before = std::time::SystemTime::now() - Duration::from_secs(1);
    let (failing, client) = with_undelivered_requests(2, false).await;
    let unfinished = client
        .unfinished_assignment_requests(PACKAGE)
        .await
        .unwrap();
    assert_eq!(unfinished.len(), 2);
    for request in &unfinished {
        assert_eq!(request.state, "deliveryFailed");
        assert!(request.is_add());
        assert!(
            request.created.is_some_and(|at| at >= before),
            "{request:?}"
        );
        assert!(request.completed.is_some(), "{request:?}");
        assert_eq!(request.assignment_state.as_deref(), Some("deliveryFailed"));
    }
    assert!(assigned(&failing).await.is_empty());
    let ids: Vec<String> = unfinished.iter().map(|r| r.id.clone()).collect();
    let answers = client.reprocess_assignment_requests(&ids).await;
    assert!(
        answers.iter().all(|(_, answer)| answer.is_ok()),
        "{answers:?}"
    );
    wait_until_assigned(&failing, 2).await;
    assert_eq!(assigned(&failing).await, vec![user_id(0), user_id(1)]);
    assert!(
        client
            .unfinished_assignment_requests(PACKAGE)
            .await
            .unwrap()
            .is_empty()
    );

    let (_stuck, client) = with_undelivered_requests(1, true).await;
    let unfinished = client
        .unfinished_assignment_requests(PACKAGE)
        .await
        .unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].state, "delivering");
    let assignment = unfinished[0].assignment_id.clone().unwrap();
    let answers = client.reprocess_assignments(&[assignment]).await;
    assert!(answers[0].1.is_ok(), "{answers:?}");
    assert!(
        client
            .unfinished_assignment_requests(PACKAGE)
            .await
            .unwrap()
            .is_empty()
    );
    // A second reprocess of a request that delivered is refused, per request.
    let refused = client
        .reprocess_assignment_requests(&[unfinished[0].id.clone()])
        .await;
    assert_eq!(refused[0].1.as_ref().unwrap_err().status(), Some(400));
}

#[tokio::test]
async fn a_plan_reads_each_state_of_enroll_s_own_requests_once_for_open_and_unfinished_ones() {
    let (failing, client) = with_undelivered_requests(2, false).await;
    let before = failing.counters().graph_operations;
    let requests = client.package_requests(PACKAGE).await.unwrap();
    // The four states enroll's own requests pass through or end in, one list each.
    assert_eq!(failing.counters().graph_operations - before, 4);
    assert!(requests.open.is_empty(), "{:?}", requests.open);
    assert_eq!(requests.unfinished.len(), 2);
    assert!(
        requests
            .unfinished
            .iter()
            .all(|r| r.state == "deliveryFailed" && r.is_add())
    );

    let (_stuck, client) = with_undelivered_requests(1, true).await;
    let requests = client.package_requests(PACKAGE).await.unwrap();
    assert_eq!(requests.open.len(), 1);
    assert_eq!(requests.open[0].state.as_deref(), Some("delivering"));
    // The requestor of an admin's request is the person it is for.
    assert_eq!(
        requests.open[0].target_object_id(),
        Some(user_id(0).as_str())
    );
    assert_eq!(requests.unfinished.len(), 1);
    assert_eq!(requests.unfinished[0].id, requests.open[0].id);
}
