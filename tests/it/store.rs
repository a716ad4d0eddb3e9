//! The store on both backends: every test body runs once on a SQLite file and once on a fresh
//! PostgreSQL database. PostgreSQL must be running (CI starts it): when it is not, the
//! PostgreSQL half fails and says so; it is never skipped.

use std::future::Future;

use chrono::{TimeZone, Utc};
use migration::MigratorTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;
use tessera::store::{Backend, LinkedAccountUpdate, NewLinkedAccount, Store, StoreError};

/// The server the tests create their databases on; `TESSERA_TEST_POSTGRES_URL` overrides it.
const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn postgres_admin_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_ADMIN_URL.to_owned())
}

/// Creates an empty PostgreSQL database for one test and returns its URL. Drop it with
/// [`drop_postgres_database`] when done.
pub async fn fresh_postgres_url() -> String {
    let admin_url = postgres_admin_url();
    let mut options = sea_orm::ConnectOptions::new(admin_url.as_str());
    // Fail fast when the server is down instead of waiting out the pool's 30 s.
    options.acquire_timeout(std::time::Duration::from_secs(5));
    let admin = Database::connect(options).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required by the store tests and is not reachable at {admin_url} \
                 ({e}); start it (CI does) or point TESSERA_TEST_POSTGRES_URL at a server"
        )
    });
    let name = format!("tessera_t_{}", uuid::Uuid::new_v4().simple());
    // Identifiers cannot be bound; the name is ours and only [a-z0-9_].
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name} on {admin_url}: {e}"));
    let _ = admin.close().await;
    with_database(&admin_url, &name)
}

/// Best effort: a failure leaves a `tessera_t_*` database behind, nothing worse.
pub async fn drop_postgres_database(url: &str) {
    let Some(name) = database_name(url) else {
        return;
    };
    if !name.starts_with("tessera_t_") {
        return;
    }
    if let Ok(admin) = Database::connect(postgres_admin_url()).await {
        // FORCE ends the sessions a pool that was not closed may still hold.
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        let _ = admin.close().await;
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

fn database_name(url: &str) -> Option<String> {
    let base = url.split('?').next()?;
    let (_, name) = base.rsplit_once('/')?;
    Some(name.to_owned())
}

/// Runs `body` with the URL of an empty SQLite file in a temporary directory.
async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/tessera.db", dir.path().display());
    let outcome = tokio::spawn(body(url)).await;
    drop(dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs `body` with the URL of a fresh PostgreSQL database, dropped afterwards even when the
/// body panics.
async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = fresh_postgres_url().await;
    let outcome = tokio::spawn(body(url.clone())).await;
    drop_postgres_database(&url).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// One module per test body, with a `sqlite` and a `postgres` test in it.
macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::on_sqlite(super::$body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::on_postgres(super::$body).await;
            }
        }
    )*};
}

on_both_backends!(
    migrations_run_twice,
    concurrent_first_starts,
    environments,
    api_keys,
    linked_accounts_scoped_by_environment,
    credentials_round_trip_exactly,
    cas_has_exactly_one_winner,
    corrupt_settings_are_reported,
    concurrent_writers_wait,
    idempotency_keys_claim_once,
    concurrent_deliveries_share_commits_and_fail_alone,
    reconcile_state_keeps_the_feed_token,
);

fn new_account(environment_id: &str, credentials: &[u8]) -> NewLinkedAccount {
    NewLinkedAccount {
        id: uuid::Uuid::new_v4().to_string(),
        environment_id: environment_id.to_owned(),
        provider: "hubspot".to_owned(),
        status: "ACTIVE".to_owned(),
        credentials: credentials.to_vec(),
        settings: json!({"baseUrl": "http://127.0.0.1:4010/hubspot", "z": 1, "a": [true, null]}),
        expires_at: Some(Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()),
    }
}

fn update(status: &str, credentials: &[u8]) -> LinkedAccountUpdate {
    LinkedAccountUpdate {
        status: status.to_owned(),
        status_reason: Some("refreshed".to_owned()),
        credentials: credentials.to_vec(),
        expires_at: Some(Utc::now() + chrono::Duration::hours(1)),
        last_refreshed_at: Some(Utc::now()),
    }
}

async fn migrations_run_twice(url: String) {
    let first = Store::connect(&url).await.unwrap();
    let env = first.create_environment("acme").await.unwrap();
    first.ping().await.unwrap();
    let expected = if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    assert_eq!(first.backend(), expected);

    // A second start on the same database finds nothing pending and loses nothing.
    let second = Store::connect(&url).await.unwrap();
    assert_eq!(second.get_environment(&env.id).await.unwrap(), Some(env));

    let raw = Database::connect(url.as_str()).await.unwrap();
    let applied = migration::Migrator::get_applied_migrations(&raw)
        .await
        .unwrap();
    assert_eq!(applied.len(), migration::Migrator::migrations().len());
    let _ = raw.close().await;
    first.close().await.unwrap();
}

async fn concurrent_first_starts(url: String) {
    // Replicas (or processes on one SQLite file) starting together on an empty database.
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().unwrap());
    }
    stores[0].create_environment("acme").await.unwrap();
    assert_eq!(stores[2].list_environments().await.unwrap().len(), 1);

    let raw = Database::connect(url.as_str()).await.unwrap();
    let applied = migration::Migrator::get_applied_migrations(&raw)
        .await
        .unwrap();
    assert_eq!(applied.len(), migration::Migrator::migrations().len());
    let _ = raw.close().await;
}

async fn environments(url: String) {
    let store = Store::connect(&url).await.unwrap();
    assert!(store.list_environments().await.unwrap().is_empty());

    let beta = store.create_environment("beta").await.unwrap();
    let alpha = store.create_environment("alpha").await.unwrap();
    assert_ne!(alpha.id, beta.id);
    assert!(uuid::Uuid::parse_str(&alpha.id).is_ok());

    assert_eq!(
        store.get_environment(&alpha.id).await.unwrap(),
        Some(alpha.clone())
    );
    assert_eq!(
        store.find_environment_by_name("beta").await.unwrap(),
        Some(beta.clone())
    );
    assert_eq!(store.find_environment_by_name("gamma").await.unwrap(), None);
    assert_eq!(store.get_environment("no-such-id").await.unwrap(), None);
    assert_eq!(store.list_environments().await.unwrap(), vec![alpha, beta]);

    let err = store.create_environment("alpha").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(!err.to_string().contains("alpha"), "{err}");
    assert_eq!(store.list_environments().await.unwrap().len(), 2);
}

async fn api_keys(url: String) {
    let store = Store::connect(&url).await.unwrap();
    let env = store.create_environment("acme").await.unwrap();
    assert!(!store.has_admin_key().await.unwrap());

    let key = store
        .insert_api_key(Some(&env.id), &"a".repeat(64), "tsk_abcd")
        .await
        .unwrap();
    assert_eq!(key.environment_id.as_deref(), Some(env.id.as_str()));
    assert_eq!(key.revoked_at, None);
    assert!(
        !store.has_admin_key().await.unwrap(),
        "an environment key is not an admin key"
    );

    let admin = store
        .insert_api_key(None, &"b".repeat(64), "tsk_admn")
        .await
        .unwrap();
    assert!(store.has_admin_key().await.unwrap());

    assert_eq!(
        store.find_api_key(&"a".repeat(64)).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(
        store.find_api_key(&"b".repeat(64)).await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(store.find_api_key(&"c".repeat(64)).await.unwrap(), None);

    assert!(store.revoke_api_key(&key.id).await.unwrap());
    assert!(
        !store.revoke_api_key(&key.id).await.unwrap(),
        "already revoked"
    );
    assert!(!store.revoke_api_key("no-such-id").await.unwrap());
    assert_eq!(store.find_api_key(&"a".repeat(64)).await.unwrap(), None);

    assert!(store.revoke_api_key(&admin.id).await.unwrap());
    assert!(!store.has_admin_key().await.unwrap());

    // A hash stays taken after revocation: a leaked key must not come back under a new row.
    let err = store
        .insert_api_key(Some(&env.id), &"a".repeat(64), "tsk_abcd")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    let err = store
        .insert_api_key(Some("no-such-env"), &"d".repeat(64), "tsk_dddd")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

async fn linked_accounts_scoped_by_environment(url: String) {
    let store = Store::connect(&url).await.unwrap();
    let acme = store.create_environment("acme").await.unwrap();
    let globex = store.create_environment("globex").await.unwrap();

    let first = store
        .insert_linked_account(new_account(&acme.id, b"one"))
        .await
        .unwrap();
    let second = store
        .insert_linked_account(new_account(&acme.id, b"two"))
        .await
        .unwrap();
    let other = store
        .insert_linked_account(new_account(&globex.id, b"three"))
        .await
        .unwrap();
    assert_eq!(first.version, 0);
    assert_eq!(first.status, "ACTIVE");
    assert_eq!(first.status_reason, None);
    assert_eq!(first.last_refreshed_at, None);
    assert_eq!(first.created_at, first.updated_at);

    let read = store.get_linked_account(&first.id).await.unwrap().unwrap();
    assert_eq!(read, first, "what insert returns is what a read returns");
    assert_eq!(
        serde_json::to_string(&read.settings).unwrap(),
        r#"{"baseUrl":"http://127.0.0.1:4010/hubspot","z":1,"a":[true,null]}"#,
        "settings keep their key order"
    );
    assert_eq!(store.get_linked_account("no-such-id").await.unwrap(), None);

    let ids = |accounts: Vec<tessera::store::LinkedAccount>| {
        accounts.into_iter().map(|a| a.id).collect::<Vec<_>>()
    };
    // Newest first; ties on created_at fall back to id, descending.
    let newest_first = |mut accounts: Vec<&tessera::store::LinkedAccount>| {
        accounts.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        accounts
            .into_iter()
            .map(|a| a.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list_linked_accounts(Some(&acme.id)).await.unwrap()),
        newest_first(vec![&first, &second])
    );
    assert_eq!(
        ids(store.list_linked_accounts(Some(&globex.id)).await.unwrap()),
        vec![other.id.clone()]
    );
    assert_eq!(
        ids(store.list_linked_accounts(None).await.unwrap()),
        newest_first(vec![&first, &second, &other])
    );
    assert!(
        store
            .list_linked_accounts(Some("no-such-env"))
            .await
            .unwrap()
            .is_empty()
    );

    let err = store
        .insert_linked_account(new_account("no-such-env", b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    let mut bad = new_account(&acme.id, b"x");
    bad.status = "active".to_owned();
    let err = store.insert_linked_account(bad).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
}

async fn credentials_round_trip_exactly(url: String) {
    let store = Store::connect(&url).await.unwrap();
    let env = store.create_environment("acme").await.unwrap();
    // Every byte value, NUL and invalid UTF-8 included, as ciphertext has.
    let mut bytes: Vec<u8> = (0..=255u8).collect();
    bytes.extend((0..=255u8).rev());
    let mut new = new_account(&env.id, &bytes);
    new.expires_at = Some(Utc.timestamp_opt(1_900_000_000, 123_456_789).unwrap());

    let inserted = store.insert_linked_account(new).await.unwrap();
    assert_eq!(inserted.credentials, bytes);
    assert_eq!(
        inserted.expires_at,
        Some(Utc.timestamp_opt(1_900_000_000, 123_456_000).unwrap()),
        "timestamps are kept to the microsecond on both backends"
    );
    let read = store
        .get_linked_account(&inserted.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.credentials, bytes);
    assert_eq!(read, inserted);

    let empty = store
        .insert_linked_account(new_account(&env.id, b""))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_linked_account(&empty.id)
            .await
            .unwrap()
            .unwrap()
            .credentials,
        b""
    );

    let secret = b"super-secret-token";
    let new = new_account(&env.id, secret);
    let upd = update("ACTIVE", secret);
    let account = store.insert_linked_account(new.clone()).await.unwrap();
    for text in [
        format!("{new:?}"),
        format!("{account:?}"),
        format!("{upd:?}"),
        format!("{new:#?}"),
        format!("{account:#?}"),
    ] {
        assert!(!text.contains("super-secret-token"), "{text}");
        // How `Vec<u8>` would print them.
        assert!(!text.contains("115, 117, 112"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }
}

async fn cas_has_exactly_one_winner(url: String) {
    let store = Store::connect(&url).await.unwrap();
    let env = store.create_environment("acme").await.unwrap();
    let account = store
        .insert_linked_account(new_account(&env.id, b"v0"))
        .await
        .unwrap();

    // Eight replicas refresh the same account at once from version 0.
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..8u8 {
        let store = store.clone();
        let id = account.id.clone();
        racers.spawn(async move {
            store
                .update_linked_account_cas(&id, 0, update("ACTIVE", &[b'v', b'1', i]))
                .await
                .unwrap()
        });
    }
    let winners: Vec<_> = racers.join_all().await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "exactly one compare-and-swap wins");
    let winner = &winners[0];
    assert_eq!(winner.version, 1);
    assert_eq!(winner.status_reason.as_deref(), Some("refreshed"));
    assert!(winner.last_refreshed_at.is_some());
    assert!(winner.updated_at >= account.updated_at);
    assert_eq!(winner.created_at, account.created_at);
    assert_eq!(
        store
            .get_linked_account(&account.id)
            .await
            .unwrap()
            .as_ref(),
        Some(winner),
        "the returned row is the stored row"
    );

    // A writer still holding version 0 loses and changes nothing.
    let stale = store
        .update_linked_account_cas(&account.id, 0, update("ERROR", b"stale"))
        .await
        .unwrap();
    assert_eq!(stale, None);
    assert_eq!(
        store
            .get_linked_account(&account.id)
            .await
            .unwrap()
            .unwrap()
            .credentials,
        winner.credentials
    );

    let mut next = update("NEEDS_REAUTH", b"v2");
    next.expires_at = None;
    let second = store
        .update_linked_account_cas(&account.id, 1, next)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(second.status, "NEEDS_REAUTH");
    assert_eq!(second.expires_at, None);
    assert_eq!(second.credentials, b"v2");

    assert_eq!(
        store
            .update_linked_account_cas("no-such-id", 0, update("ACTIVE", b"x"))
            .await
            .unwrap(),
        None
    );
    let err = store
        .update_linked_account_cas(&account.id, 2, update("Bogus", b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
}

async fn corrupt_settings_are_reported(url: String) {
    let store = Store::connect(&url).await.unwrap();
    let env = store.create_environment("acme").await.unwrap();
    let account = store
        .insert_linked_account(new_account(&env.id, b"x"))
        .await
        .unwrap();

    let raw = Database::connect(url.as_str()).await.unwrap();
    let corrupt = Query::update()
        .table(Alias::new("linked_accounts"))
        .value(Alias::new("settings"), "{not json")
        .and_where(Expr::col(Alias::new("id")).eq(account.id.as_str()))
        .to_owned();
    raw.execute(&corrupt).await.unwrap();
    let _ = raw.close().await;

    let err = store.get_linked_account(&account.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let err = store.list_linked_accounts(None).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

async fn concurrent_writers_wait(url: String) {
    // Two pools on one database stand for two processes (or replicas).
    let a = Store::connect(&url).await.unwrap();
    let b = Store::connect(&url).await.unwrap();
    let env = a.create_environment("acme").await.unwrap();
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..40u8 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let env_id = env.id.clone();
        writers.spawn(async move {
            store
                .insert_linked_account(new_account(&env_id, &[i]))
                .await
                .unwrap();
        });
    }
    writers.join_all().await;
    assert_eq!(
        a.list_linked_accounts(Some(&env.id)).await.unwrap().len(),
        40
    );
}

/// Many deliveries at once (they share transactions): each is told exactly how many of
/// its events were new, every event is stored once, and a delivery that cannot be stored
/// (its account is gone) fails alone while the others in its batch are stored.
async fn concurrent_deliveries_share_commits_and_fail_alone(url: String) {
    let store = Store::connect(&url).await.unwrap();
    let env = store.create_environment("acme").await.unwrap();
    let account = store
        .insert_linked_account(new_account(&env.id, b"sealed"))
        .await
        .unwrap();
    let event = |key: String| tessera::store::InboxEvent {
        dedup_key: key,
        event: "{}".into(),
        source: "WEBHOOK".into(),
    };
    let mut deliveries = tokio::task::JoinSet::new();
    for i in 0..40usize {
        let store = store.clone();
        // Delivery i carries events i..i+10: each overlaps its neighbours.
        let account = if i == 7 {
            "no-such-account".to_owned()
        } else {
            account.id.clone()
        };
        deliveries.spawn(async move {
            let events: Vec<_> = (i..i + 10).map(|k| event(format!("e{k}"))).collect();
            (
                i,
                store
                    .accept_webhook_events("hubspot", vec![(account, events)])
                    .await,
            )
        });
    }
    let mut fresh = 0;
    for (i, outcome) in deliveries.join_all().await {
        match outcome {
            Ok(counts) => {
                assert_ne!(i, 7, "a delivery for a missing account is refused");
                assert!(counts[0] <= 10);
                fresh += counts[0];
            }
            Err(e) => assert_eq!(i, 7, "only the bad delivery fails: {e}"),
        }
    }
    // Keys e0..e48 (e7..e16 are covered by neighbours of the failed delivery too).
    assert_eq!(fresh, 49, "every distinct event stored once, counted once");
    assert_eq!(store.pending_inbox().await.unwrap(), 49);
}

#[tokio::test]
async fn sqlite_creates_directories_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/deeper/tessera.db");
    // No `mode=` in the URL: the file is created all the same.
    let url = format!("sqlite://{}", file.display());
    let store = Store::connect(&url).await.unwrap();
    store.create_environment("acme").await.unwrap();
    assert!(file.exists());

    let raw = Database::connect(url.as_str()).await.unwrap();
    let row = raw
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "PRAGMA journal_mode",
        ))
        .await
        .unwrap()
        .unwrap();
    let mode: String = row.try_get_by_index(0).unwrap();
    assert_eq!(mode, "wal");
    let _ = raw.close().await;
    store.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let env = store.create_environment("acme").await.unwrap();
    let account = store
        .insert_linked_account(new_account(&env.id, b"x"))
        .await
        .unwrap();
    assert_eq!(
        store.list_linked_accounts(None).await.unwrap(),
        vec![account]
    );
    assert_eq!(store.backend(), Backend::Sqlite);
}

#[tokio::test]
async fn default_url_shape_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data/tessera.db?mode=rwc", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    store.ping().await.unwrap();
    assert!(dir.path().join("data/tessera.db").exists());
}

#[tokio::test]
async fn connection_errors_do_not_leak_the_url() {
    let err = Store::connect("postgres://tessera:hunter2@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");

    let err = Store::connect("postgres://tessera:hunter2@[::1/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Config { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");

    let err = Store::connect("mysql://root:hunter2@127.0.0.1/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Config { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

async fn idempotency_keys_claim_once(url: String) {
    use tessera::store::Claim;
    let store = Store::connect(&url).await.unwrap();
    let env = store.create_environment("acme").await.unwrap();
    let other = store.create_environment("globex").await.unwrap();
    assert_eq!(
        store
            .claim_idempotency_key(&env.id, "k", "create", "h1")
            .await
            .unwrap(),
        Claim::Fresh
    );
    assert_eq!(
        store
            .claim_idempotency_key(&env.id, "k", "create", "h1")
            .await
            .unwrap(),
        Claim::InProgress
    );
    assert_eq!(
        store
            .claim_idempotency_key(&env.id, "k", "create", "h2")
            .await
            .unwrap(),
        Claim::Mismatch
    );
    assert_eq!(
        store
            .claim_idempotency_key(&other.id, "k", "create", "h1")
            .await
            .unwrap(),
        Claim::Fresh,
        "keys are per environment"
    );
    store
        .complete_idempotency_key(&env.id, "k", r#"{"remoteId":"1"}"#)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency_key(&env.id, "k", "create", "h1")
            .await
            .unwrap(),
        Claim::Done {
            response: r#"{"remoteId":"1"}"#.into()
        }
    );
    // A released (failed) claim frees the key; a completed one is not released.
    store.release_idempotency_key(&other.id, "k").await.unwrap();
    assert_eq!(
        store
            .claim_idempotency_key(&other.id, "k", "create", "h1")
            .await
            .unwrap(),
        Claim::Fresh
    );
    store.release_idempotency_key(&env.id, "k").await.unwrap();
    assert!(matches!(
        store
            .claim_idempotency_key(&env.id, "k", "create", "h1")
            .await
            .unwrap(),
        Claim::Done { .. }
    ));
}

/// A change feed's token (and the request it was taken with) is stored with the
/// watermark, read back by the next claim, and cleared when the pass drops it.
async fn reconcile_state_keeps_the_feed_token(url: String) {
    let store = Store::connect(&url).await.unwrap();
    let env = store.create_environment("acme").await.unwrap();
    let account = store
        .insert_linked_account(new_account(&env.id, b"one"))
        .await
        .unwrap();
    let linked = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let past = Utc::now() - chrono::Duration::minutes(1);
    store
        .ensure_reconcile_state(&account.id, "contacts", linked, past)
        .await
        .unwrap();
    let lease = chrono::Duration::minutes(5);
    let mut claimed = store
        .claim_due_reconciles(Some(&account.id), 10, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let (mut state, claim) = claimed.remove(0);
    assert_eq!(
        state.sync_token, None,
        "no token before the first full listing"
    );
    assert_eq!(state.watermark, linked);
    // A token as long and odd as vendors make them.
    let token = tessera::store::FeedToken {
        token: format!("EgQI{}+/=~", "x".repeat(2000)),
        request: "3f2a9c".to_owned(),
    };
    state.sync_token = Some(token.clone());
    state.next_run_at = past;
    assert!(store.save_reconcile_state(&state, &claim).await.unwrap());
    // Enrolling the account again (every replica does, every minute) leaves it alone.
    store
        .ensure_reconcile_state(&account.id, "contacts", Utc::now(), Utc::now())
        .await
        .unwrap();
    let (mut again, claim) = store
        .claim_due_reconciles(Some(&account.id), 10, lease)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(again.sync_token, Some(token));
    again.sync_token = None;
    again.next_run_at = past;
    assert!(store.save_reconcile_state(&again, &claim).await.unwrap());
    let (last, _) = store
        .claim_due_reconciles(Some(&account.id), 10, lease)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(last.sync_token, None);
    assert_eq!(last.watermark, linked);
}
