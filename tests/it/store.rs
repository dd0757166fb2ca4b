//! Storage layer against a real Azurite, which `./scripts/test` starts and names in
//! `ENROLL_TEST_STORAGE`. Every test works in its own containers and queues, so they run in
//! parallel.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use enroll_store::{
    AccountKey, Layout, MessageEncoding, PutCondition, Resource, StorageConfig, Store, StoreError,
    StoreOptions,
};

/// The connection string of the Azurite started by `./scripts/test`.
fn config() -> StorageConfig {
    let conn = std::env::var("ENROLL_TEST_STORAGE").unwrap_or_else(|_| {
        panic!(
            "ENROLL_TEST_STORAGE is not set: the storage tests need Azurite. \
             Run the tests with ./scripts/test, which installs and starts Azurite and sets it \
             (or start one with `eval \"$(scripts/azurite start)\"` and run cargo test)."
        )
    });
    StorageConfig::from_connection_string(&conn)
        .expect("ENROLL_TEST_STORAGE is a valid connection string")
}

/// A name no other test (or earlier run against the same Azurite) uses.
fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store whose containers are this test's own.
fn store(tag: &str) -> Store {
    Store::new(&config())
        .unwrap()
        .with_layout(Layout::with_prefix(&format!("{}-", unique(tag))))
}

#[tokio::test]
async fn roster_round_trip_keeps_bytes_and_etag() {
    let store = store("roster");
    let name = "2025/class-7b.csv";
    let v1 =
        b"\xef\xbb\xbfName;Email;Package\nUser Z;userz@example.com;Project X | Role Y\n".to_vec();
    let tag1 = store.put_roster(name, v1.clone()).await.unwrap();

    let url = store.blob_url(&store.layout().rosters, name);
    assert!(url.starts_with(config().blob_endpoint().as_str()), "{url}");
    assert!(!url.contains("sig="), "{url}");

    let got = store.get_roster(name, None).await.unwrap();
    assert_eq!(got.bytes, v1, "bytes come back unchanged, BOM included");
    assert_eq!(got.etag, tag1);

    let v2 = b"Name;Email;Package\n".to_vec();
    let tag2 = store.put_roster(name, v2.clone()).await.unwrap();
    assert_ne!(tag1, tag2, "a new upload is a new version");

    // The version a plan saw is gone: reading it by ETag says so instead of handing out v2.
    let err = store.get_roster(name, Some(&tag1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        err.resource(),
        &Resource::Blob {
            container: store.layout().rosters.clone(),
            name: name.into()
        }
    );
    assert_eq!(store.get_roster(name, Some(&tag2)).await.unwrap().bytes, v2);
}

#[tokio::test]
async fn missing_roster_is_not_found_and_named() {
    let store = store("missing");
    store.ensure_containers().await.unwrap();
    let err = store.get_roster("nobody.csv", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(
        msg.contains("nobody.csv") && msg.contains(&store.layout().rosters),
        "{msg}"
    );
    assert_eq!(err.code(), Some("BlobNotFound"));
}

#[tokio::test]
async fn listing_rosters_gives_names_and_current_etags_under_a_prefix() {
    let store = store("list");
    let a = store.put_roster("a.csv", b"a".to_vec()).await.unwrap();
    let b = store
        .put_roster("school-1/b.csv", b"bb".to_vec())
        .await
        .unwrap();
    let c = store
        .put_roster("school-1/c.csv", b"ccc".to_vec())
        .await
        .unwrap();

    let all = store.list_rosters("").await.unwrap();
    let names: Vec<_> = all
        .iter()
        .map(|e| (e.name.as_str(), &e.etag, e.size))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a.csv", &a, 1),
            ("school-1/b.csv", &b, 2),
            ("school-1/c.csv", &c, 3)
        ]
    );

    let some = store.list_rosters("school-1/").await.unwrap();
    assert_eq!(
        some.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["school-1/b.csv", "school-1/c.csv"]
    );
    assert!(
        store
            .list_rosters("nothing-here/")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn conditional_put_lets_exactly_one_concurrent_writer_win() {
    let store = store("cond");
    let run = "run-1";
    let first = store
        .put_report_file(
            run,
            "state.json",
            b"{\"n\":0}".to_vec(),
            "application/json",
            PutCondition::IfNotExists,
        )
        .await
        .unwrap();
    let again = store
        .put_report_file(
            run,
            "state.json",
            b"{\"n\":9}".to_vec(),
            "application/json",
            PutCondition::IfNotExists,
        )
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict { .. }), "{again:?}");

    // Two writers both read version `first` and both try to replace it.
    let w1 = store.put_report_file(
        run,
        "state.json",
        b"{\"n\":1}".to_vec(),
        "application/json",
        PutCondition::IfMatch(first.clone()),
    );
    let w2 = store.put_report_file(
        run,
        "state.json",
        b"{\"n\":2}".to_vec(),
        "application/json",
        PutCondition::IfMatch(first.clone()),
    );
    let (r1, r2) = tokio::join!(w1, w2);
    let (winner, loser) = match (r1, r2) {
        (Ok(tag), Err(e)) => (("{\"n\":1}", tag), e),
        (Err(e), Ok(tag)) => (("{\"n\":2}", tag), e),
        other => panic!("exactly one writer must win: {other:?}"),
    };
    assert!(matches!(loser, StoreError::Conflict { .. }), "{loser:?}");
    assert!(loser.is_retryable(), "re-reading and retrying can help");
    assert!(loser.to_string().contains("run-1/state.json"), "{loser}");

    let now = store.get_report_file(run, "state.json").await.unwrap();
    assert_eq!(
        now.bytes,
        winner.0.as_bytes(),
        "the loser's write left no trace"
    );
    assert_eq!(now.etag, winner.1);
}

#[tokio::test]
async fn reports_are_written_as_json_and_markdown_under_the_run() {
    let store = store("report");
    let loc = store
        .put_report(
            "2026-01-01T00-00-00Z-abc",
            "project-x",
            br#"{"changes":[]}"#.to_vec(),
            "# Project X\n\nNothing to change.\n".to_owned(),
        )
        .await
        .unwrap();
    assert_eq!(loc.json, "2026-01-01T00-00-00Z-abc/project-x.json");
    assert_eq!(loc.markdown, "2026-01-01T00-00-00Z-abc/project-x.md");
    let listed: Vec<_> = store
        .list_blobs(&loc.container, "2026-01-01T00-00-00Z-abc/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(listed, [loc.json.clone(), loc.markdown.clone()]);
    let md = store
        .get_report_file("2026-01-01T00-00-00Z-abc", "project-x.md")
        .await
        .unwrap();
    assert_eq!(md.bytes, b"# Project X\n\nNothing to change.\n");
}

#[tokio::test]
async fn concurrent_audit_appenders_lose_no_record() {
    let store = store("audit");
    let log = "run-42.jsonl";
    // Eight writers start at once on a log that does not exist yet: they race to create it
    // and then append, 25 records each, some one by one and some in batches.
    let writers = (0..8).map(|w| {
        let store = store.clone();
        async move {
            for i in 0..25 {
                let record = serde_json::json!({"writer": w, "seq": i, "what": "adminAdd", "note": "x".repeat(i * 7)});
                if w % 2 == 0 {
                    store.append_audit(log, &[record]).await?;
                } else if i % 5 == 0 {
                    let batch: Vec<_> = (i..i + 5)
                        .map(|j| serde_json::json!({"writer": w, "seq": j, "what": "adminRemove"}))
                        .collect();
                    store.append_audit(log, &batch).await?;
                }
            }
            Ok::<_, StoreError>(())
        }
    });
    for r in futures_util::future::join_all(writers).await {
        r.unwrap();
    }
    let lines = store.read_audit(log).await.unwrap();
    assert_eq!(lines.len(), 8 * 25);
    let seen: BTreeSet<(u64, u64)> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not one JSON record per line: {e}: {l}"));
            (v["writer"].as_u64().unwrap(), v["seq"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(seen.len(), 8 * 25, "every record exactly once");

    // A later run appends to the same log without truncating it.
    store
        .append_audit(log, &[serde_json::json!({"writer": 99, "seq": 0})])
        .await
        .unwrap();
    assert_eq!(store.read_audit(log).await.unwrap().len(), 8 * 25 + 1);
}

#[tokio::test]
async fn queue_send_receive_delete_counts_dequeues() {
    let store = store("q");
    let queue = unique("reconcile");
    store.ensure_queue(&queue).await.unwrap();
    store.ensure_queue(&queue).await.unwrap(); // creating an existing queue is fine

    let body = r#"{"v":1,"run":"r1","roster":"rosters/a.csv","etag":"\"0x8D\""}"#;
    let id = store.send_message(&queue, body, None).await.unwrap();
    assert_eq!(store.approximate_message_count(&queue).await.unwrap(), 1);

    let got = store
        .receive_messages(&queue, 32, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.handle.id, id);
    assert_eq!(m.dequeue_count, 1);
    assert_eq!(m.text.as_deref(), Some(body));

    // Hidden while someone works on it.
    assert!(
        store
            .receive_messages(&queue, 32, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.peek_messages(&queue, 32).await.unwrap().is_empty());

    store.delete_message(&queue, &m.handle).await.unwrap();
    assert_eq!(store.approximate_message_count(&queue).await.unwrap(), 0);
    let err = store.delete_message(&queue, &m.handle).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(&id), "{err}");
}

/// Receives from `queue` until a message is there, for at most about five seconds.
async fn receive_one(
    store: &Store,
    queue: &str,
    visibility: Duration,
) -> enroll_store::ReceivedMessage {
    for _ in 0..50 {
        let mut got = store.receive_messages(queue, 1, visibility).await.unwrap();
        if let Some(m) = got.pop() {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no message became visible in {queue}");
}

#[tokio::test]
async fn undeleted_message_comes_back_after_its_visibility_timeout() {
    let store = store("vis");
    let queue = unique("assign");
    store.ensure_queue(&queue).await.unwrap();
    store
        .send_message(&queue, "{\"person\":\"a\"}", None)
        .await
        .unwrap();

    let first = receive_one(&store, &queue, Duration::from_secs(1)).await;
    assert_eq!(first.dequeue_count, 1);
    // The handler "crashed": no delete. After one second it is delivered again.
    let second = receive_one(&store, &queue, Duration::from_secs(30)).await;
    assert_eq!(second.handle.id, first.handle.id);
    assert_eq!(second.dequeue_count, 2);
    assert_ne!(second.handle.pop_receipt, first.handle.pop_receipt);

    // The first receiver's pop receipt is stale now: it cannot delete the redelivered message.
    let err = store
        .delete_message(&queue, &first.handle)
        .await
        .unwrap_err();
    assert!(!matches!(err, StoreError::Transport { .. }), "{err:?}");

    // Making it visible at once (a retry without backoff) gives a third delivery.
    let handle = store
        .set_visibility(&queue, &second.handle, Duration::ZERO)
        .await
        .unwrap();
    assert_ne!(handle.pop_receipt, second.handle.pop_receipt);
    let peeked = store.peek_messages(&queue, 1).await.unwrap();
    assert_eq!(peeked.len(), 1);
    assert_eq!(
        peeked[0].dequeue_count, 2,
        "peeking does not count as a delivery"
    );
    let third = receive_one(&store, &queue, Duration::from_secs(30)).await;
    assert_eq!(third.dequeue_count, 3);
    store.delete_message(&queue, &third.handle).await.unwrap();
}

#[tokio::test]
async fn messages_are_stored_base64_as_the_functions_host_expects() {
    let base = store("b64");
    let raw_view = base.clone().with_message_encoding(MessageEncoding::None);
    let queue = unique("invite");
    base.ensure_queue(&queue).await.unwrap();

    // "roster01" is itself valid base64: stored raw, the host would decode it into garbage.
    base.send_message(&queue, "roster01", None).await.unwrap();
    let peeked = raw_view.peek_messages(&queue, 1).await.unwrap();
    assert_eq!(peeked[0].raw, "cm9zdGVyMDE=");
    assert_eq!(
        base.peek_messages(&queue, 1).await.unwrap()[0]
            .text
            .as_deref(),
        Some("roster01")
    );
    base.clear_messages(&queue).await.unwrap();

    // Text with XML and non-ASCII characters survives both encodings.
    let tricky = "{\"name\":\"Zoë <admin> & co\"}";
    base.send_message(&queue, tricky, None).await.unwrap();
    raw_view.send_message(&queue, tricky, None).await.unwrap();
    let got = base
        .receive_messages(&queue, 32, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let texts: Vec<_> = got.iter().map(|m| m.text.clone()).collect();
    // The base64 view decodes its own message and flags the raw one as not base64, as the
    // Functions host would fail to bind it.
    assert!(texts.contains(&Some(tricky.to_owned())), "{texts:?}");
    assert!(texts.contains(&None), "{texts:?}");
    assert!(got.iter().any(|m| m.raw == tricky));

    base.clear_messages(&queue).await.unwrap();
    assert_eq!(base.approximate_message_count(&queue).await.unwrap(), 0);
}

#[tokio::test]
async fn oversized_message_is_refused_before_sending() {
    let store = store("big");
    let queue = unique("remove");
    // 48 KiB of text is 64 KiB of base64, just over the limit.
    let err = store
        .send_message(&queue, &"x".repeat(48 * 1024 + 1), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("queue limit"), "{err}");
}

#[tokio::test]
async fn delayed_message_stays_hidden_until_its_delay_ends() {
    let store = store("delay");
    let queue = unique("retry");
    store.ensure_queue(&queue).await.unwrap();
    store
        .send_message(&queue, "later", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(store.peek_messages(&queue, 1).await.unwrap().is_empty());
    let m = receive_one(&store, &queue, Duration::from_secs(30)).await;
    assert_eq!(m.text.as_deref(), Some("later"));
}

#[tokio::test]
async fn signed_sas_is_accepted_and_a_wrong_key_is_refused_clearly() {
    let good = config();
    let container = unique("sas");

    // Our signature over the documented string-to-sign is accepted (every test relies on
    // this; here it is explicit, also for a SAS handed over whole in a connection string).
    let key = AccountKey::new(
        good.account_name().unwrap(),
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    )
    .unwrap();
    let expiry =
        azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::minutes(5);
    let token = key.sign(expiry, false).unwrap();
    let sas_conn = format!(
        "BlobEndpoint={};QueueEndpoint={};SharedAccessSignature={token}",
        good.blob_endpoint(),
        good.queue_endpoint()
    );
    let by_sas = Store::new(&StorageConfig::from_connection_string(&sas_conn).unwrap()).unwrap();
    by_sas.ensure_container(&container).await.unwrap();
    by_sas
        .put_blob(
            &container,
            "x.txt",
            b"x".to_vec(),
            "text/plain",
            PutCondition::Always,
        )
        .await
        .unwrap();

    // An expired token is refused.
    let expired = key
        .sign(
            azure_core::time::OffsetDateTime::now_utc() - azure_core::time::Duration::minutes(5),
            false,
        )
        .unwrap();
    let expired_conn = sas_conn.replace(&token, &expired);
    let old = Store::new(&StorageConfig::from_connection_string(&expired_conn).unwrap()).unwrap();
    let err = old.get_blob(&container, "x.txt", None).await.unwrap_err();
    assert!(matches!(err, StoreError::Unauthorized { .. }), "{err:?}");

    // A wrong key: same account, other bytes.
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let wrong = Store::new(&good.with_account_key(wrong_key).unwrap()).unwrap();
    let err = wrong.get_blob(&container, "x.txt", None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable(), "a wrong key stays wrong");
    let msg = err.to_string();
    assert!(
        msg.contains("refused the credentials") && msg.contains(&container),
        "{msg}"
    );
    for secret in [wrong_key, "d3Jvbmc", "sig="] {
        assert!(!msg.contains(secret), "{msg}");
        assert!(!format!("{err:?}").contains(secret), "{err:?}");
    }
    let err = wrong.ensure_queue(&unique("q")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unauthorized { .. }),
        "queues too: {err:?}"
    );
}

#[tokio::test]
async fn unreachable_storage_is_a_retryable_transport_error_without_secrets() {
    // A loopback port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
         AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;\
         BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1"
    );
    let no_retries = StoreOptions {
        max_retries: 0,
        ..StoreOptions::default()
    };
    let store = Store::with_options(
        &StorageConfig::from_connection_string(&conn).unwrap(),
        &no_retries,
    )
    .unwrap();
    let err = store.list_rosters("").await.unwrap_err();
    assert!(matches!(err, StoreError::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("Eby8") && !text.contains("sig=2") && !text.contains("sig=%"),
        "{text}"
    );
}

/// Rosters, manifests and mapping files over the read limit are refused by the length
/// storage gives before any download; the steps see an error, never a shorter file.
#[tokio::test]
async fn blobs_over_the_read_limit_are_refused_and_blobs_at_it_are_read() {
    use enroll_store::Storage as _;
    let store = store("limit").with_read_limit(16);
    store.put_roster("big.csv", vec![b'a'; 17]).await.unwrap();
    store.put_roster("fits.csv", vec![b'a'; 16]).await.unwrap();
    store
        .put_manifest("big.json", vec![b' '; 17])
        .await
        .unwrap();
    let err = store.get_roster("big.csv", None).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooLarge {
                size: Some(17),
                limit: 16,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!(
            "get blob `{}/big.csv`: too_large: it is 17 bytes; enroll reads files of at most 16 bytes",
            store.layout().rosters
        )
    );
    assert_eq!(
        store.get_roster("fits.csv", None).await.unwrap().bytes,
        vec![b'a'; 16]
    );
    let roster = store.roster("big.csv").await.unwrap_err();
    assert!(!roster.retryable);
    assert!(roster.message.contains("too_large"), "{}", roster.message);
    let manifest = store.manifest("big.json").await.unwrap_err();
    assert!(
        manifest.message.contains("too_large"),
        "{}",
        manifest.message
    );
}

#[tokio::test]
async fn a_roster_is_downloaded_again_only_when_its_etag_changed() {
    use enroll_store::Storage as _;
    let store = store("cached");
    let name = "Projects/Cached.csv";
    let v1 = b"Ann;ann@contoso.com\n".to_vec();
    let tag1 = store.put_roster(name, v1.clone()).await.unwrap();
    // Three steps of one instance read the roster; a clone is another step's handle.
    for reader in [store.clone(), store.clone(), store.clone()] {
        let read = reader.roster(name).await.unwrap().unwrap();
        assert_eq!(
            (read.bytes, read.etag.as_str()),
            (v1.clone(), tag1.as_str())
        );
    }
    assert_eq!(store.roster_downloads(), 1, "unchanged: downloaded once");

    let v2 = b"Ann;ann@contoso.com\nBob;bob@fabrikam.com\n".to_vec();
    let tag2 = store.put_roster(name, v2.clone()).await.unwrap();
    for _ in 0..2 {
        let read = store.roster(name).await.unwrap().unwrap();
        assert_eq!(
            (read.bytes, read.etag.as_str()),
            (v2.clone(), tag2.as_str())
        );
    }
    assert_eq!(store.roster_downloads(), 2, "changed: downloaded once more");

    store
        .delete_blob(&store.layout().rosters, name)
        .await
        .unwrap();
    assert_eq!(
        store.roster(name).await.unwrap(),
        None,
        "a deleted roster is gone"
    );
    let tag3 = store.put_roster(name, v1.clone()).await.unwrap();
    let read = store.roster(name).await.unwrap().unwrap();
    assert_eq!((read.bytes, read.etag.as_str()), (v1, tag3.as_str()));
    assert_eq!(
        store.roster_downloads(),
        3,
        "uploaded again: downloaded again"
    );
}
