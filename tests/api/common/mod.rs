//! The test harness: a real server on 127.0.0.1:0 with a fresh store per
//! test, on SQLite always and on Postgres when TEST_DATABASE_URL is set.
#![allow(dead_code)]

pub mod driver;
pub mod observed;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
pub use stripe_twin::fixtures::Fixtures;
use stripe_twin::store::{PostgresStore, SqliteStore, Store};
use stripe_twin::webhooks::WebhookSettings;
use stripe_twin::{AppState, Limits};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const KEY: &str = "sk_test_twin_default_key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed test
/// function (`async fn name(server: TestServer)`). The Postgres variants are
/// ignored (reported so, not passed) when TEST_DATABASE_URL is unset outside
/// CI, and fail when it is unset under CI (see build.rs).
///
/// `backend_tests!(fixtures = EXPR; a, b)` starts each server with the
/// fixtures `EXPR` gives (a `stripe_twin::fixtures::Fixtures`) instead;
/// `EXPR` runs inside the generated modules, so spell paths in full, e.g.
/// `stripe_twin::fixtures::Fixtures::embedded(&stripe_twin::REGISTRY).unwrap()`.
/// `backend_tests!(browser; a, b)` marks tests that drive Chromium: they are
/// ignored where chromedriver is not installed (outside CI).
#[macro_export]
macro_rules! backend_tests {
    (browser; $($name:ident),* $(,)?) => {
        $crate::backend_tests!(browser; fixtures = $crate::common::Fixtures::none(); $($name),*);
    };
    (browser; fixtures = $fixtures:expr; $($name:ident),* $(,)?) => {
        $crate::backend_tests!(@each
            [cfg_attr(twin_no_browser, ignore = "install chromium and chromium-driver")]
            [cfg_attr(
                any(twin_no_browser, twin_no_postgres),
                ignore = "install chromium and chromium-driver, set TEST_DATABASE_URL"
            )]
            $fixtures; $($name),*);
    };
    (fixtures = $fixtures:expr; $($name:ident),* $(,)?) => {
        $crate::backend_tests!(@each [cfg_attr(any(), ignore)] [cfg_attr(twin_no_postgres, ignore = "set TEST_DATABASE_URL")]
            $fixtures; $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        $crate::backend_tests!(@each [cfg_attr(any(), ignore)] [cfg_attr(twin_no_postgres, ignore = "set TEST_DATABASE_URL")]
            $crate::common::Fixtures::none(); $($name),*);
    };
    (@each [$sqlite:meta] [$postgres:meta] $fixtures:expr; $($name:ident),*) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[$sqlite]
                async fn $name() {
                    let server = $crate::common::TestServer::start_with_fixtures(
                        $crate::common::Backend::Sqlite,
                        $fixtures,
                    )
                    .await
                    .expect("sqlite always runs");
                    super::$name(server).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[$postgres]
                async fn $name() {
                    let server = $crate::common::TestServer::start_with_fixtures(
                        $crate::common::Backend::Postgres,
                        $fixtures,
                    )
                    .await
                    .expect($crate::common::NEEDS_POSTGRES);
                    super::$name(server).await;
                }
            )*
        }
    };
}

/// The Postgres database the tests use; panics (with the reason) when
/// TEST_DATABASE_URL is unset, as tests that need it are ignored then.
pub fn postgres_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect(NEEDS_POSTGRES)
}

/// Why a Postgres test could not start.
pub const NEEDS_POSTGRES: &str =
    "TEST_DATABASE_URL must name a Postgres database (postgres://postgres@127.0.0.1:5432/db)";

pub struct TestServer {
    pub base: String,
    pub backend: Backend,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    /// Postgres: the schema this test's store lives in.
    pub schema: Option<String>,
    /// What every account starts with (none unless `start_with_fixtures`).
    pub fixtures: Fixtures,
    /// How this server delivers webhooks (the default unless started with
    /// `start_with_webhooks` or restarted with `restart_with_webhooks`).
    pub webhooks: WebhookSettings,
    /// SQLite: the database file, for siblings and restarts.
    db_path: Option<PathBuf>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// A stopped server's store (its SQLite file or Postgres schema), for a
/// new server process to start on.
pub struct Stopped {
    backend: Backend,
    schema: Option<String>,
    dir: Option<tempfile::TempDir>,
    db_path: Option<PathBuf>,
    fixtures: Fixtures,
}

impl Stopped {
    /// A new server on the stopped one's store, with the same fixtures.
    pub async fn start_with_webhooks(self, webhooks: WebhookSettings) -> TestServer {
        self.start_wrapped(webhooks, |store| store).await
    }

    /// A new server on the stopped one's store, seen through `wrap` (a
    /// store that injects faults, say).
    pub async fn start_wrapped(
        self,
        webhooks: WebhookSettings,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> TestServer {
        self.start_wrapped_tuned(webhooks, wrap, None).await
    }

    /// `start_wrapped`, with the server's state adjusted by `tune`.
    pub async fn start_wrapped_tuned(
        self,
        webhooks: WebhookSettings,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
        tune: Option<Tune>,
    ) -> TestServer {
        let store = open_store_at(
            self.backend,
            self.schema.as_deref(),
            self.db_path.as_deref(),
        )
        .await
        .expect("store");
        let store = wrap(store);
        let launch = Launch {
            backend: self.backend,
            schema: self.schema,
            dir: self.dir,
            db_path: self.db_path,
            fixtures: self.fixtures,
            webhooks,
            tune,
        };
        TestServer::launch(launch, store).await
    }
}

/// Where and how `TestServer::launch` starts a server.
struct Launch {
    backend: Backend,
    schema: Option<String>,
    dir: Option<tempfile::TempDir>,
    db_path: Option<PathBuf>,
    fixtures: Fixtures,
    webhooks: WebhookSettings,
    /// Settings of the server beyond the defaults (limits, CORS origins).
    tune: Option<Tune>,
}

pub type Tune = Box<dyn FnOnce(AppState) -> AppState + Send>;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn error_param(&self) -> &str {
        self.body["error"]["param"].as_str().unwrap_or_default()
    }

    pub fn error_type(&self) -> &str {
        self.body["error"]["type"].as_str().unwrap_or_default()
    }

    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_default().to_owned()
    }

    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "unexpected answer: {}",
            self.body
        );
        self.body
    }
}

pub fn random_suffix() -> String {
    stripe_twin::ids::random_base62(12).to_lowercase()
}

/// Schemas this test process made, dropped when it exits.
static SCHEMAS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> i32;
}

/// A fresh Postgres schema name for one test's store. The schema is
/// dropped when the test process exits, however its tests ended: a store
/// outlives the server (restarts, siblings, killed processes), so no one
/// server owns it.
pub fn new_schema() -> String {
    static CLEANUP: std::sync::Once = std::sync::Once::new();
    // SAFETY: atexit only records a plain function to call at exit.
    CLEANUP.call_once(|| unsafe {
        atexit(drop_schemas);
    });
    let name = format!("t_{}", random_suffix());
    SCHEMAS.lock().unwrap().push(name.clone());
    name
}

extern "C" fn drop_schemas() {
    let names = std::mem::take(&mut *SCHEMAS.lock().unwrap_or_else(|e| e.into_inner()));
    let Some(url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return;
    };
    // A thread of its own: exit handlers must not unwind, and the tests'
    // runtimes are gone.
    let dropped = std::thread::spawn(move || {
        use sqlx::{Connection, Executor};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let mut db = sqlx::PgConnection::connect(&url).await?;
            db.execute("SET lock_timeout = '10s'").await?;
            for name in &names {
                db.execute(format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE").as_str())
                    .await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
    })
    .join();
    match dropped {
        Ok(Ok(())) => {}
        Ok(Err(err)) => eprintln!("could not drop the tests' Postgres schemas: {err}"),
        Err(_) => eprintln!("could not drop the tests' Postgres schemas: the cleanup panicked"),
    }
}

pub async fn open_store(
    backend: Backend,
    schema: Option<&str>,
    dir: Option<&tempfile::TempDir>,
) -> Option<Arc<dyn Store>> {
    let path = dir.map(|dir| db_file(dir.path()));
    open_store_at(backend, schema, path.as_deref()).await
}

/// The SQLite file of a test's store in its directory.
fn db_file(dir: &Path) -> PathBuf {
    dir.join("twin.db")
}

/// `open_store` with the SQLite file named (Postgres ignores it).
pub async fn open_store_at(
    backend: Backend,
    schema: Option<&str>,
    path: Option<&Path>,
) -> Option<Arc<dyn Store>> {
    Some(match backend {
        Backend::Sqlite => {
            let path = path.expect("a SQLite file");
            Arc::new(
                SqliteStore::open_file(path.to_str().unwrap())
                    .await
                    .expect("sqlite store"),
            )
        }
        Backend::Postgres => {
            let url = std::env::var("TEST_DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty())?;
            Arc::new(
                PostgresStore::connect(&url, schema)
                    .await
                    .expect("postgres store"),
            )
        }
    })
}

impl TestServer {
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with_fixtures(backend, Fixtures::none()).await
    }

    /// A server whose every account starts with its own copy of `fixtures`
    /// (`Fixtures::embedded(&stripe_twin::REGISTRY)` for what the binary ships).
    pub async fn start_with_fixtures(backend: Backend, fixtures: Fixtures) -> Option<Self> {
        let dir = (backend == Backend::Sqlite).then(|| tempfile::tempdir().expect("tempdir"));
        let schema = (backend == Backend::Postgres).then(new_schema);
        let store = open_store(backend, schema.as_deref(), dir.as_ref()).await?;
        Some(Self::with_store_and_fixtures(backend, store, schema, dir, fixtures).await)
    }

    /// Another server process on the same store (Postgres: same schema),
    /// with the same fixtures.
    pub async fn sibling(&self) -> Self {
        let store = open_store(self.backend, self.schema.as_deref(), None)
            .await
            .expect("store");
        Self::with_store_and_fixtures(
            self.backend,
            store,
            self.schema.clone(),
            None,
            self.fixtures.clone(),
        )
        .await
    }

    pub async fn with_store(
        backend: Backend,
        store: Arc<dyn Store>,
        schema: Option<String>,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        Self::with_store_and_fixtures(backend, store, schema, dir, Fixtures::none()).await
    }

    pub async fn with_store_and_fixtures(
        backend: Backend,
        store: Arc<dyn Store>,
        schema: Option<String>,
        dir: Option<tempfile::TempDir>,
        fixtures: Fixtures,
    ) -> Self {
        let db_path = dir.as_ref().map(|dir| db_file(dir.path()));
        Self::launch(
            Launch {
                backend,
                schema,
                dir,
                db_path,
                fixtures,
                webhooks: WebhookSettings::default(),
                tune: None,
            },
            store,
        )
        .await
    }

    /// A server (no fixtures) that delivers webhooks as `webhooks` says.
    pub async fn start_with_webhooks(backend: Backend, webhooks: WebhookSettings) -> Option<Self> {
        let dir = (backend == Backend::Sqlite).then(|| tempfile::tempdir().expect("tempdir"));
        let schema = (backend == Backend::Postgres).then(new_schema);
        let store = open_store(backend, schema.as_deref(), dir.as_ref()).await?;
        let db_path = dir.as_ref().map(|dir| db_file(dir.path()));
        let launch = Launch {
            backend,
            schema,
            dir,
            db_path,
            fixtures: Fixtures::none(),
            webhooks,
            tune: None,
        };
        Some(Self::launch(launch, store).await)
    }

    /// A server (no fixtures) with these time limits.
    pub async fn start_with_limits(backend: Backend, limits: Limits) -> Option<Self> {
        Self::start_tuned(backend, Box::new(move |state| state.with_limits(limits))).await
    }

    /// A server (no fixtures) whose state `tune` adjusts before it serves.
    pub async fn start_tuned(backend: Backend, tune: Tune) -> Option<Self> {
        let dir = (backend == Backend::Sqlite).then(|| tempfile::tempdir().expect("tempdir"));
        let schema = (backend == Backend::Postgres).then(new_schema);
        let store = open_store(backend, schema.as_deref(), dir.as_ref()).await?;
        let db_path = dir.as_ref().map(|dir| db_file(dir.path()));
        let launch = Launch {
            backend,
            schema,
            dir,
            db_path,
            fixtures: Fixtures::none(),
            webhooks: WebhookSettings::default(),
            tune: Some(tune),
        };
        Some(Self::launch(launch, store).await)
    }

    /// SQLite: the database file.
    pub fn db_path(&self) -> Option<&Path> {
        self.db_path.as_deref()
    }

    /// Stops this server and starts a new one on the same store (a new
    /// connection pool on the same SQLite file or Postgres schema), with the
    /// same fixtures and these webhook settings: a process restart.
    pub async fn restart_with_webhooks(self, webhooks: WebhookSettings) -> Self {
        self.halt().await.start_with_webhooks(webhooks).await
    }

    /// Stops this server (its worker finishes the attempts in flight) and
    /// keeps its store for `Stopped::start_with_webhooks`.
    pub async fn halt(mut self) -> Stopped {
        let stopped = Stopped {
            backend: self.backend,
            schema: self.schema.clone(),
            dir: self._dir.take(),
            db_path: self.db_path.clone(),
            fixtures: self.fixtures.clone(),
        };
        self.stop().await;
        stopped
    }

    /// Stops this server as a crash would: its task is aborted with its
    /// requests in flight, nothing finishes. Keeps its store.
    pub async fn kill(mut self) -> Stopped {
        let stopped = Stopped {
            backend: self.backend,
            schema: self.schema.clone(),
            dir: self._dir.take(),
            db_path: self.db_path.clone(),
            fixtures: self.fixtures.clone(),
        };
        self.shutdown.take();
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        stopped
    }

    /// Another server process on the same store (the same SQLite file or
    /// Postgres schema) with these webhook settings and its own worker.
    /// A SQLite sibling must stop before the server that owns the file.
    pub async fn sibling_with_webhooks(&self, webhooks: WebhookSettings) -> Self {
        let store = open_store_at(
            self.backend,
            self.schema.as_deref(),
            self.db_path.as_deref(),
        )
        .await
        .expect("store");
        Self::launch(
            Launch {
                backend: self.backend,
                schema: self.schema.clone(),
                dir: None,
                db_path: self.db_path.clone(),
                fixtures: self.fixtures.clone(),
                webhooks,
                tune: None,
            },
            store,
        )
        .await
    }

    async fn launch(launch: Launch, store: Arc<dyn Store>) -> Self {
        let Launch {
            backend,
            schema,
            dir,
            db_path,
            fixtures,
            webhooks,
            tune,
        } = launch;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let mut state = AppState::build(store.clone(), None, fixtures.clone(), webhooks.clone());
        if let Some(tune) = tune {
            state = tune(state);
        }
        let task = tokio::spawn(async move {
            stripe_twin::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            base,
            backend,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            store,
            schema,
            fixtures,
            webhooks,
            db_path,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with `Authorization: Bearer <key>` (None: no auth header).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        if method == Method::POST {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_owned());
        }
        for (name, value) in headers {
            request = request.header(*name, HeaderValue::from_str(value).unwrap());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A monthly subscription of `customer` to a new USD price of
    /// `unit_amount`, paid with a fresh copy of the test card `card`
    /// (`pm_card_…`): the subscription as its create answered.
    pub async fn subscribe_with_card(&self, customer: &str, card: &str, unit_amount: i64) -> Value {
        let attach = format!("/v1/payment_methods/{card}/attach");
        let pm = self
            .post(&attach, &format!("customer={customer}"))
            .await
            .ok();
        let product = self.post("/v1/products", "name=Plan").await.ok();
        let price = format!(
            "product={}&unit_amount={unit_amount}&currency=usd&recurring[interval]=month",
            product["id"].as_str().unwrap()
        );
        let price = self.post("/v1/prices", &price).await.ok();
        let subscribe = format!(
            "customer={customer}&items[0][price]={}&default_payment_method={}",
            price["id"].as_str().unwrap(),
            pm["id"].as_str().unwrap()
        );
        self.post("/v1/subscriptions", &subscribe).await.ok()
    }

    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.call(Method::POST, path, Some(KEY), body, &[]).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Some(KEY), "", &[]).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, Some(KEY), "", &[]).await
    }

    pub async fn post_as(&self, key: &str, path: &str, body: &str) -> Reply {
        self.call(Method::POST, path, Some(key), body, &[]).await
    }

    /// The types of the events a `GET /v1/events?…` query lists, newest first.
    pub async fn event_types(&self, query: &str) -> Vec<String> {
        let events = self.get(&format!("/v1/events?{query}")).await.ok();
        events["data"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|e| e["type"].as_str().expect("a type").to_owned())
            .collect()
    }

    /// POSTs each case's body to `path`: each must fail with its status and
    /// param, and with its code unless that is empty.
    pub async fn expect_errors(&self, path: &str, cases: &[(&str, StatusCode, &str, &str)]) {
        for (body, status, code, param) in cases {
            let reply = self.post(path, body).await;
            assert_eq!(reply.status, *status, "{body}: {}", reply.body);
            assert_eq!(reply.error_param(), *param, "{body}: {}", reply.body);
            if !code.is_empty() {
                assert_eq!(reply.error_code(), *code, "{body}: {}", reply.body);
            }
        }
    }

    pub async fn get_as(&self, key: &str, path: &str) -> Reply {
        self.call(Method::GET, path, Some(key), "", &[]).await
    }
}

/// Percent-encodes a value for a form body.
pub fn enc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A client that shows redirects instead of following them, as a test
/// browser.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("TestBrowser/1.0")
        .build()
        .unwrap()
}

/// Submits the authorization page's form; returns status, Location and body.
pub async fn submit(url: &str, outcome: &str) -> (StatusCode, String, String) {
    let response = browser()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("outcome={outcome}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, response.text().await.unwrap())
}

/// An intent's authorization page.
pub fn redirect_url(intent: &Value) -> String {
    intent["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("a redirect: {intent}"))
        .to_owned()
}

/// The account's event types, oldest first.
pub async fn events_in_order(server: &TestServer) -> Vec<String> {
    let mut types = server.event_types("limit=100").await;
    types.reverse();
    types
}

/// A Unix timestamp as `2026-02-01 00:00:00 UTC`.
pub fn utc(timestamp: i64) -> String {
    stripe_twin::clock::utc_text(timestamp)
}

/// An object's id.
pub fn id(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an id: {value}"))
        .to_owned()
}

/// An amazon_pay PaymentMethod with an active mandate, through the
/// SetupIntent flow and the authorization page.
pub async fn amazon_pay_with_mandate(server: &TestServer, customer: &str) -> String {
    let intent = server
        .post(
            "/v1/setup_intents",
            &format!(
                "confirm=true&return_url={}&usage=off_session&customer={customer}&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][ip_address]=127.0.0.0&mandate_data[customer_acceptance][online][user_agent]=device",
                enc("https://shop.example/setup")
            ),
        )
        .await
        .ok();
    assert_eq!(intent["status"], "requires_action");
    let (status, _, _) = submit(&redirect_url(&intent), "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let done = server
        .get(&format!("/v1/setup_intents/{}", id(&intent)))
        .await
        .ok();
    assert_eq!(done["status"], "succeeded");
    assert!(done["mandate"].is_string());
    done["payment_method"].as_str().unwrap().to_owned()
}
