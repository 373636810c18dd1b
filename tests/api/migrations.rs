//! Databases written before a migration keep working after it. Each test
//! makes a database at the schema before 0007 (bookkeeping in loose
//! top-level `_twin_*` keys), writes old-format documents into it, and
//! opens it with the store as the server does, which migrates it.
use crate::common;

use std::str::FromStr;

use common::{Backend, TestServer, enc, id, redirect_url, submit};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Row as _, migrate::Migrator};
use stripe_twin::core::bookkeeping::{self, Bookkeeping};

backend_tests!(
    bookkeeping_migration_moves_every_twin_key,
    old_bookkeeping_documents_keep_working,
);

/// The last migration before bookkeeping moved under `_twin`.
const BEFORE_BOOKKEEPING_KEY: i64 = 6;

/// One row of `objects`.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    account: String,
    id: String,
    object: String,
    created: i64,
    customer: Option<String>,
    deleted: bool,
    version: i64,
    data: Value,
}

/// A direct connection to a test database, beside the store.
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Where a database made by [`old_database`] lives, for the store and the
/// server that open it.
struct Place {
    schema: Option<String>,
    dir: Option<tempfile::TempDir>,
}

impl Place {
    fn path(&self) -> Option<std::path::PathBuf> {
        // TestServer::with_store finds the SQLite file by this name.
        self.dir.as_ref().map(|dir| dir.path().join("twin.db"))
    }
}

fn up_to(mut migrator: Migrator, last: i64) -> Migrator {
    let kept: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= last)
        .cloned()
        .collect();
    assert_eq!(kept.len() as i64, last, "migrations 1..={last}");
    migrator.migrations = kept.into();
    migrator
}

async fn sqlite_pool(path: &std::path::Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("sqlite")
}

async fn postgres_pool(schema: &str) -> PgPool {
    let options = PgConnectOptions::from_str(&common::postgres_url())
        .expect("TEST_DATABASE_URL")
        .options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("postgres")
}

/// A new, empty database at the schema before 0007.
async fn old_database(backend: Backend) -> (Db, Place) {
    match backend {
        Backend::Sqlite => {
            let place = Place {
                schema: None,
                dir: Some(tempfile::tempdir().expect("tempdir")),
            };
            let pool = sqlite_pool(&place.path().unwrap()).await;
            up_to(sqlx::migrate!("migrations/sqlite"), BEFORE_BOOKKEEPING_KEY)
                .run(&pool)
                .await
                .expect("migrations up to 0006");
            (Db::Sqlite(pool), place)
        }
        Backend::Postgres => {
            let schema = common::new_schema();
            let admin = PgPool::connect(&common::postgres_url())
                .await
                .expect("postgres");
            sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
                .execute(&admin)
                .await
                .expect("a schema");
            admin.close().await;
            let pool = postgres_pool(&schema).await;
            up_to(
                sqlx::migrate!("migrations/postgres"),
                BEFORE_BOOKKEEPING_KEY,
            )
            .run(&pool)
            .await
            .expect("migrations up to 0006");
            let place = Place {
                schema: Some(schema),
                dir: None,
            };
            (Db::Postgres(pool), place)
        }
    }
}

/// A stored row as a [`Row`]; the backends' row types differ, and so does
/// how they store `deleted`.
macro_rules! row_of {
    ($r:expr, $deleted:expr) => {
        Row {
            account: $r.get("account"),
            id: $r.get("id"),
            object: $r.get("object"),
            created: $r.get("created"),
            customer: $r.get("customer"),
            deleted: $deleted,
            version: $r.get("version"),
            data: serde_json::from_str($r.get("data")).unwrap(),
        }
    };
}

impl Db {
    /// The database of a running test server.
    async fn of(server: &TestServer) -> Self {
        match server.backend {
            Backend::Sqlite => Db::Sqlite(sqlite_pool(server.db_path().unwrap()).await),
            Backend::Postgres => {
                Db::Postgres(postgres_pool(server.schema.as_deref().unwrap()).await)
            }
        }
    }

    async fn rows(&self) -> Vec<Row> {
        const SELECT: &str = "SELECT account, id, object, created, customer, deleted, version";
        match self {
            Db::Sqlite(pool) => {
                let sql = format!("{SELECT}, data FROM objects ORDER BY seq");
                let rows = sqlx::query(&sql).fetch_all(pool).await.unwrap();
                rows.iter()
                    .map(|r| row_of!(r, r.get::<i64, _>("deleted") != 0))
                    .collect()
            }
            Db::Postgres(pool) => {
                let sql = format!("{SELECT}, data::text AS data FROM objects ORDER BY seq");
                let rows = sqlx::query(&sql).fetch_all(pool).await.unwrap();
                rows.iter().map(|r| row_of!(r, r.get("deleted"))).collect()
            }
        }
    }

    async fn insert(&self, rows: &[Row]) {
        const INSERT: &str =
            "INSERT INTO objects (account, id, object, created, customer, deleted, version, data)";
        for row in rows {
            let data = row.data.to_string();
            match self {
                Db::Sqlite(pool) => {
                    sqlx::query(&format!("{INSERT} VALUES (?, ?, ?, ?, ?, ?, ?, ?)"))
                        .bind(&row.account)
                        .bind(&row.id)
                        .bind(&row.object)
                        .bind(row.created)
                        .bind(&row.customer)
                        .bind(i64::from(row.deleted))
                        .bind(row.version)
                        .bind(data)
                        .execute(pool)
                        .await
                        .unwrap();
                }
                Db::Postgres(pool) => {
                    sqlx::query(&format!(
                        "{INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)"
                    ))
                    .bind(&row.account)
                    .bind(&row.id)
                    .bind(&row.object)
                    .bind(row.created)
                    .bind(&row.customer)
                    .bind(row.deleted)
                    .bind(row.version)
                    .bind(data)
                    .execute(pool)
                    .await
                    .unwrap();
                }
            };
        }
    }

    async fn close(self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// A document as stripe-twin stored it before 0007: each bookkeeping field
/// a top-level `_twin_<name>` key.
fn old_format(mut doc: Value) -> Value {
    let kept = doc.as_object_mut().unwrap().remove(bookkeeping::KEY);
    if let Some(Value::Object(kept)) = kept {
        for (name, value) in kept {
            doc[format!("_twin_{name}")] = value;
        }
    }
    doc
}

fn has_old_keys(doc: &Value) -> bool {
    doc.as_object()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("_twin_"))
}

/// Opens the database as the server does (migrating it) and starts a
/// server on it.
async fn migrated_server(backend: Backend, place: Place) -> TestServer {
    let store = common::open_store_at(backend, place.schema.as_deref(), place.path().as_deref())
        .await
        .expect("the store opens the old database");
    TestServer::with_store(backend, store, place.schema, place.dir).await
}

/// Hand-written old documents with every kind of JSON value in their
/// bookkeeping: the migration moves each `_twin_*` key, value untouched,
/// and leaves everything else as it was (the fixtures marker's id, too).
async fn bookkeeping_migration_moves_every_twin_key(server: TestServer) {
    let backend = server.backend;
    server.stop().await;
    let (db, place) = old_database(backend).await;
    let stripe_shaped = json!({
        "id": "seti_old", "object": "setup_intent", "livemode": false,
        "amount": 1.5, "big": 12_345_678_901_234_567_i64, "next_action": null,
        "metadata": {"_twin_not_top_level": "stays", "empty": ""},
        "description": "caf\u{e9} \"quoted\"",
    });
    let mut old = stripe_shaped.clone();
    for (key, value) in [
        (
            "_twin_return_url",
            json!("https://shop.example/back?a=1&b=2"),
        ),
        ("_twin_redirect", json!("rdr_token")),
        ("_twin_set_up", json!(true)),
        ("_twin_framed", json!(false)),
        ("_twin_mandate_acceptance", Value::Null),
        ("_twin_period", json!({"start": 10, "end": null})),
        ("_twin_prices", json!(["price_a", "price_b"])),
        (
            "_twin_agreement",
            json!({"amount": 1500, "currency": "usd", "interval": "month", "interval_count": 1}),
        ),
    ] {
        old[key] = value;
    }
    let untouched = json!({"id": "_twin_fixtures", "object": "customer", "_stripe_version": "x"});
    let row = |id: &str, object: &str, data: Value| Row {
        account: "acct_old".into(),
        id: id.into(),
        object: object.into(),
        created: 1_700_000_000,
        customer: None,
        deleted: false,
        version: 3,
        data,
    };
    db.insert(&[
        row("seti_old", "setup_intent", old),
        row("_twin_fixtures", "customer", untouched.clone()),
    ])
    .await;
    db.close().await;

    let migrated = migrated_server(backend, place).await;
    let db = Db::of(&migrated).await;
    let rows = db.rows().await;
    db.close().await;
    let mut expected = stripe_shaped;
    expected["_twin"] = json!({
        "return_url": "https://shop.example/back?a=1&b=2",
        "redirect": "rdr_token",
        "set_up": true,
        "framed": false,
        "mandate_acceptance": null,
        "period": {"start": 10, "end": null},
        "prices": ["price_a", "price_b"],
        "agreement": {"amount": 1500, "currency": "usd", "interval": "month", "interval_count": 1},
    });
    assert_eq!(rows[0].data, expected);
    assert_eq!(
        (rows[0].version, rows[0].created, rows[0].deleted),
        (3, 1_700_000_000, false)
    );
    assert_eq!(rows[1].data, untouched);
    // The field names the migration wrote are the ones the server reads.
    let read = Bookkeeping::of(&rows[0].data);
    assert_eq!(
        read.return_url.as_deref(),
        Some("https://shop.example/back?a=1&b=2")
    );
    assert_eq!(read.redirect.as_deref(), Some("rdr_token"));
    assert!(read.set_up && !read.framed);
    assert_eq!(read.prices, ["price_a", "price_b"]);
    assert_eq!(read.period.and_then(|p| p.start), Some(10));
    assert_eq!(read.agreement.map(|a| a.amount), Some(1500));
    migrated.stop().await;
}

/// What [`make_objects`] made: the objects the checks after the migration
/// look at.
struct Made {
    sub: Value,
    pending: Value,
    session: Value,
    /// Answers that must read the same after the migration.
    answers: Vec<(String, Value)>,
}

const RETURN_URL: &str = "https://shop.example/setup";

/// A subscription, a SetupIntent waiting on its authorization page, a set
/// up card, a Checkout Session and a webhook endpoint: between them every
/// kind of bookkeeping the migration must carry.
async fn make_objects(server: &TestServer) -> Made {
    let customer = id(&server
        .post("/v1/customers", "email=old%40example.com")
        .await
        .ok());
    let sub = server
        .subscribe_with_card(&customer, "pm_card_visa", 1200)
        .await;
    assert_eq!(sub["status"], "active");
    let pending = server
        .post(
            "/v1/setup_intents",
            &format!(
                "confirm=true&return_url={}&usage=off_session&customer={customer}&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][ip_address]=127.0.0.0&mandate_data[customer_acceptance][online][user_agent]=device",
                enc(RETURN_URL)
            ),
        )
        .await
        .ok();
    assert_eq!(pending["status"], "requires_action");
    let set_up = server
        .post(
            "/v1/setup_intents",
            &format!("confirm=true&customer={customer}&payment_method=pm_card_visa"),
        )
        .await
        .ok();
    assert_eq!(set_up["status"], "succeeded");
    let session = server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=500&line_items[0][price_data][product_data][name]=Old&line_items[0][quantity]=1&success_url={}",
                enc("https://shop.example/done")
            ),
        )
        .await
        .ok();
    server
        .post(
            "/v1/webhook_endpoints",
            "url=https://hooks.example/&enabled_events[]=customer.deleted",
        )
        .await
        .ok();
    let mut answers = Vec::new();
    for path in [
        format!("/v1/subscriptions/{}", id(&sub)),
        format!("/v1/setup_intents/{}", id(&pending)),
        format!("/v1/setup_intents/{}", id(&set_up)),
        format!(
            "/v1/payment_methods/{}",
            set_up["payment_method"].as_str().unwrap()
        ),
        format!("/v1/checkout/sessions/{}", id(&session)),
    ] {
        let answer = server.get(&path).await.ok();
        answers.push((path, answer));
    }
    Made {
        sub,
        pending,
        session,
        answers,
    }
}

/// The documents in the old format, which must have the loose keys the
/// objects made carried before 0007 (else the test proves nothing).
fn old_documents(current: &[Row]) -> Vec<Row> {
    let old: Vec<Row> = current
        .iter()
        .map(|r| Row {
            data: old_format(r.data.clone()),
            ..r.clone()
        })
        .collect();
    for (object, keys) in [
        ("subscription", &["_twin_period", "_twin_prices"][..]),
        (
            "setup_intent",
            &[
                "_twin_redirect",
                "_twin_return_url",
                "_twin_mandate_acceptance",
            ],
        ),
        ("payment_method", &["_twin_set_up", "_twin_behavior"]),
        ("checkout.session", &["_twin_page_secret"]),
        ("webhook_endpoint", &["_twin_secret"]),
    ] {
        let found = old
            .iter()
            .any(|r| r.object == object && keys.iter().all(|k| r.data.get(*k).is_some()));
        assert!(found, "an old {object} with {keys:?}");
    }
    old
}

/// The subscription's ids that `GET /v1/subscriptions?{query}` lists.
async fn listed(server: &TestServer, query: &str) -> Vec<String> {
    let list = server.get(&format!("/v1/subscriptions?{query}")).await.ok();
    list["data"].as_array().unwrap().iter().map(id).collect()
}

/// Through the API, on the migrated database: the same answers, the
/// subscription list's filters on the period and prices, the pending
/// SetupIntent's authorization page, the Checkout Session's page.
async fn check_objects_work(migrated: &TestServer, made: &Made) {
    for (path, answer) in &made.answers {
        assert_eq!(&migrated.get(path).await.ok(), answer, "{path}");
    }
    let item = &made.sub["items"]["data"][0];
    let price = item["price"]["id"].as_str().unwrap();
    let start = item["current_period_start"].as_i64().unwrap();
    let end = item["current_period_end"].as_i64().unwrap();
    let within =
        format!("price={price}&current_period_start[lte]={start}&current_period_end[gte]={end}");
    assert_eq!(listed(migrated, &within).await, [id(&made.sub)]);
    let after = format!("price={price}&current_period_start[gt]={start}");
    assert!(listed(migrated, &after).await.is_empty());
    assert!(listed(migrated, "price=price_other").await.is_empty());

    // The authorization page (on the new server's address) still knows its
    // token, and sends the buyer back to the return_url.
    let page = redirect_url(&made.pending);
    let token = page.rsplit('/').next().unwrap();
    let page = migrated.url(&format!("/authorize/{token}"));
    let (status, location, _) = submit(&page, "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let back = format!("{RETURN_URL}?setup_intent={}", id(&made.pending));
    assert!(location.starts_with(&back), "{location}");
    let done = migrated
        .get(&format!("/v1/setup_intents/{}", id(&made.pending)))
        .await
        .ok();
    assert_eq!(done["status"], "succeeded");
    assert!(done["mandate"].is_string());

    // The Checkout Session's page opens with its secret.
    let url = made.session["url"].as_str().unwrap();
    let path = &url[url.find("/c/pay/").unwrap()..];
    let page = common::browser()
        .get(migrated.url(path))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

/// Objects made by the server, written back in the old format into a
/// database before 0007: after the migration every document is exactly
/// what the server writes today, and the objects still work through the
/// API.
async fn old_bookkeeping_documents_keep_working(server: TestServer) {
    let made = make_objects(&server).await;
    let source = Db::of(&server).await;
    let current = source.rows().await;
    source.close().await;
    // Events, and the webhook bodies made of them, never carry bookkeeping.
    let events: Vec<&Row> = current.iter().filter(|r| r.object == "event").collect();
    assert!(!events.is_empty());
    for event in events {
        let text = event.data.to_string();
        assert!(!text.contains("\"_twin"), "{text}");
    }
    let (db, place) = old_database(server.backend).await;
    db.insert(&old_documents(&current)).await;
    db.close().await;
    let backend = server.backend;
    server.stop().await;

    let migrated = migrated_server(backend, place).await;
    let db = Db::of(&migrated).await;
    let rows = db.rows().await;
    db.close().await;
    assert!(rows.iter().all(|r| !has_old_keys(&r.data)));
    assert_eq!(rows, current, "the migration gives back today's documents");
    check_objects_work(&migrated, &made).await;
    migrated.stop().await;
}
