//! Fixtures: the objects every account starts with (the seed document's
//! product, price and customer), one copy per account, restored by a wipe;
//! and the binary's flags and start-up checks for them.
use crate::common;

use std::io::{BufRead, BufReader, Read, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{KEY, TestServer, random_suffix};
use reqwest::Method;
use serde_json::{Value, json};
use stripe_twin::fixtures::Fixtures;
use stripe_twin::store::{ListQuery, Store};

const CUSTOMER: &str = "cus_ODQluYFNl44ODI";
const PRICE: &str = "price_G0FvDp6vZvdwRZ";
const PRODUCT: &str = "prod_NWjs8kKbJWmuuc";
const DOC_KEY: &str = "sk_test_Gx4mWEgHtCMr4DYMUIqfIrsz";

fn embedded() -> Fixtures {
    Fixtures::embedded(&stripe_twin::REGISTRY).expect("the built-in fixtures parse")
}

backend_tests!(
    fixtures = stripe_twin::fixtures::Fixtures::embedded(&stripe_twin::REGISTRY).expect("the built-in fixtures parse");
    embedded_fixtures_are_visible,
    fixtures_make_no_events,
    each_account_has_its_own_copy,
    seed_document_setup_intent_runs_unchanged,
    wipe_restores_the_fixtures,
    no_fixtures_means_an_empty_account,
    fixtures_from_a_directory,
    concurrent_first_requests_seed_once,
    two_servers_seed_one_account_once,
    seeding_races_at_the_store,
);

async fn embedded_fixtures_are_visible(server: TestServer) {
    let customer = server
        .get_as(DOC_KEY, &format!("/v1/customers/{CUSTOMER}"))
        .await
        .ok();
    assert_eq!(customer["id"], CUSTOMER);
    assert_eq!(customer["object"], "customer");
    assert_eq!(
        customer["description"],
        "My First Test Customer (created for API docs)"
    );
    assert_eq!(customer["livemode"], false);
    // Stored like any customer: hidden fields show only when expanded.
    assert!(customer.get("tax").is_none(), "{customer}");
    let expanded = server
        .get_as(
            DOC_KEY,
            &format!("/v1/customers/{CUSTOMER}?expand[]=tax&expand[]=cash_balance"),
        )
        .await
        .ok();
    assert_eq!(expanded["tax"]["automatic_tax"], "unrecognized_location");
    assert_eq!(expanded["cash_balance"]["customer"], CUSTOMER);
    let list = server.get_as(DOC_KEY, "/v1/customers").await.ok();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], CUSTOMER);
    let found = server
        .get_as(DOC_KEY, "/v1/customers/search?query=created%3C2000000000")
        .await
        .ok();
    assert_eq!(found["data"][0]["id"], CUSTOMER);

    // The marker is bookkeeping, not an object anyone can fetch.
    let marker = server.get_as(DOC_KEY, "/v1/customers/_twin_fixtures").await;
    assert_eq!(marker.status, 404);

    // The seed document's product and price.
    let price = server
        .get_as(DOC_KEY, &format!("/v1/prices/{PRICE}?expand[]=product"))
        .await
        .ok();
    assert_eq!(price["id"], PRICE);
    assert_eq!(price["unit_amount"], 1500);
    assert_eq!(price["unit_amount_decimal"], "1500");
    assert_eq!(price["currency"], "usd");
    assert_eq!(price["type"], "recurring");
    assert_eq!(price["recurring"]["interval"], "month");
    assert_eq!(price["recurring"]["interval_count"], 1);
    assert_eq!(price["product"]["id"], PRODUCT);
    assert_eq!(price["product"]["name"], "Stock photo subscription");
    let product = server
        .get_as(DOC_KEY, &format!("/v1/products/{PRODUCT}"))
        .await
        .ok();
    assert_eq!(product["default_price"], PRICE);
    assert_eq!(product["active"], true);
    let prices = server.get_as(DOC_KEY, "/v1/prices").await.ok();
    assert_eq!(prices["data"].as_array().unwrap().len(), 1, "{prices}");
    let products = server.get_as(DOC_KEY, "/v1/products").await.ok();
    assert_eq!(products["data"].as_array().unwrap().len(), 1, "{products}");
}

async fn fixtures_make_no_events(server: TestServer) {
    server.get(&format!("/v1/customers/{CUSTOMER}")).await.ok();
    assert_eq!(server.get("/v1/events").await.ok()["data"], json!([]));
}

async fn each_account_has_its_own_copy(server: TestServer) {
    let (a, b) = ("sk_test_fixture_owner_a", "sk_test_fixture_owner_b");
    let path = format!("/v1/customers/{CUSTOMER}");
    let changed = server.post_as(a, &path, "name=Changed+in+A").await.ok();
    assert_eq!(changed["name"], "Changed in A");
    assert_eq!(server.get_as(a, &path).await.ok()["name"], "Changed in A");
    let other = server.get_as(b, &path).await.ok();
    assert_eq!(other["name"], Value::Null);
    assert_eq!(
        other["description"],
        "My First Test Customer (created for API docs)"
    );
    // A's change is A's event; B has none.
    let events = server.get_as(a, "/v1/events").await.ok();
    assert_eq!(events["data"][0]["type"], "customer.updated");
    assert_eq!(server.get_as(b, "/v1/events").await.ok()["data"], json!([]));
    // The same for the price.
    let price_path = format!("/v1/prices/{PRICE}");
    let nicknamed = server
        .post_as(a, &price_path, "nickname=Monthly")
        .await
        .ok();
    assert_eq!(nicknamed["nickname"], "Monthly");
    assert_eq!(
        server.get_as(b, &price_path).await.ok()["nickname"],
        Value::Null
    );
    // Deleting under B leaves A's copy alone.
    let deleted = server
        .call(Method::DELETE, &path, Some(b), "", &[])
        .await
        .ok();
    assert_eq!(deleted["deleted"], true);
    assert_eq!(server.get_as(a, &path).await.ok()["name"], "Changed in A");
}

async fn seed_document_setup_intent_runs_unchanged(server: TestServer) {
    // The seed document's curl command, verbatim, against a fresh account.
    let body = format!(
        "confirm=true&return_url=https%3A%2F%2Fwww.stripe.com&usage=off_session&customer={CUSTOMER}&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][ip_address]=127.0.0.0&mandate_data[customer_acceptance][online][user_agent]=device"
    );
    let intent = server
        .post_as(DOC_KEY, "/v1/setup_intents", &body)
        .await
        .ok();
    assert_eq!(intent["status"], "requires_action");
    assert_eq!(intent["customer"], CUSTOMER);
    assert_eq!(intent["next_action"]["type"], "redirect_to_url");
}

async fn wipe_restores_the_fixtures(server: TestServer) {
    let path = format!("/v1/customers/{CUSTOMER}");
    server.post(&path, "name=Edited").await.ok();
    let extra = server.post("/v1/customers", "name=Extra").await.id();
    let wiped = server.delete("/_config/data").await.ok();
    assert_eq!(wiped["deleted"], true);
    assert_eq!(wiped["fixtures_restored"], server.fixtures.len());
    // The fixtures, the extra customer and both events (not the marker).
    assert_eq!(
        wiped["objects_removed"],
        json!(server.fixtures.len() + 1 + 2),
        "{wiped}"
    );
    let customer = server.get(&path).await.ok();
    assert_eq!(customer["name"], Value::Null);
    assert_eq!(
        customer["description"],
        "My First Test Customer (created for API docs)"
    );
    assert_eq!(
        server.get(&format!("/v1/customers/{extra}")).await.status,
        404
    );
    let list = server.get("/v1/customers").await.ok();
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(server.get("/v1/events").await.ok()["data"], json!([]));

    // Again, right away: still exactly the starting state.
    server.delete("/_config/data").await.ok();
    server.delete("/_config/data").await.ok();
    let list = server.get("/v1/customers").await.ok();
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["data"][0]["id"], CUSTOMER);
}

async fn no_fixtures_means_an_empty_account(server: TestServer) {
    let empty = TestServer::start_with_fixtures(server.backend, Fixtures::none())
        .await
        .expect("same backend");
    let missing = empty.get(&format!("/v1/customers/{CUSTOMER}")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code(), "resource_missing");
    assert_eq!(empty.get("/v1/customers").await.ok()["data"], json!([]));
    let wiped = empty.delete("/_config/data").await.ok();
    assert_eq!(wiped["fixtures_restored"], 0);
    assert_eq!(empty.get("/v1/customers").await.ok()["data"], json!([]));
    empty.stop().await;
}

async fn fixtures_from_a_directory(server: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let mut team = embedded().get(CUSTOMER).unwrap().data.clone();
    team["id"] = json!("cus_TeamFixture0001");
    team["cash_balance"]["customer"] = json!("cus_TeamFixture0001");
    team["name"] = json!("Team fixture");
    team["email"] = json!("team@example.com");
    std::fs::write(
        dir.path().join("team.json"),
        serde_json::to_string_pretty(&team).unwrap(),
    )
    .unwrap();
    let fixtures = Fixtures::from_dir(dir.path(), &stripe_twin::REGISTRY).unwrap();
    assert_eq!(fixtures.len(), 1);
    let custom = TestServer::start_with_fixtures(server.backend, fixtures)
        .await
        .expect("same backend");
    let customer = custom.get("/v1/customers/cus_TeamFixture0001").await.ok();
    assert_eq!(customer["name"], "Team fixture");
    assert_eq!(
        custom
            .get(&format!("/v1/customers/{CUSTOMER}"))
            .await
            .status,
        404
    );
    // It behaves like any customer.
    let updated = custom
        .post(
            "/v1/customers/cus_TeamFixture0001",
            "metadata[team]=core&invoice_settings[footer]=Thanks",
        )
        .await
        .ok();
    assert_eq!(updated["metadata"]["team"], "core");
    assert_eq!(updated["invoice_settings"]["footer"], "Thanks");
    let found = custom
        .get("/v1/customers?email=team%40example.com")
        .await
        .ok();
    assert_eq!(found["data"][0]["id"], "cus_TeamFixture0001");
    custom.stop().await;
}

/// The fixture customer's ids in an account's customer list.
async fn fixture_customer_copies(server: &TestServer, key: &str) -> (usize, usize) {
    let list = server.get_as(key, "/v1/customers?limit=100").await.ok();
    let data = list["data"].as_array().unwrap();
    let copies = data.iter().filter(|c| c["id"] == CUSTOMER).count();
    (copies, data.len())
}

async fn concurrent_first_requests_seed_once(server: TestServer) {
    let server = Arc::new(server);
    let key = format!("sk_test_race_{}", random_suffix());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (server, key) = (server.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                server
                    .get_as(&key, &format!("/v1/customers/{CUSTOMER}"))
                    .await
            } else {
                server
                    .post_as(&key, "/v1/customers", &format!("name=Racer{i}"))
                    .await
            }
        }));
    }
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert_eq!(fixture_customer_copies(&server, &key).await, (1, 5));
}

async fn two_servers_seed_one_account_once(server: TestServer) {
    if server.backend != common::Backend::Postgres {
        return; // several processes share state through Postgres only
    }
    let sibling = server.sibling().await;
    assert_eq!(sibling.fixtures, server.fixtures);
    let (a, b) = (Arc::new(server), Arc::new(sibling));
    for round in 0..3 {
        let key = format!("sk_test_shared_{round}_{}", random_suffix());
        let mut tasks = Vec::new();
        for i in 0..8 {
            let target = if i % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                target
                    .get_as(&key, &format!("/v1/customers/{CUSTOMER}"))
                    .await
            }));
        }
        for task in tasks {
            let reply = task.await.unwrap();
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        assert_eq!(fixture_customer_copies(&a, &key).await, (1, 1));
        assert_eq!(fixture_customer_copies(&b, &key).await, (1, 1));
    }
    // A wipe on one server restores the account for both.
    let edited = a
        .post(&format!("/v1/customers/{CUSTOMER}"), "name=Edited")
        .await
        .ok();
    assert_eq!(edited["name"], "Edited");
    b.get(&format!("/v1/customers/{CUSTOMER}")).await.ok();
    a.delete("/_config/data").await.ok();
    let seen = b.get(&format!("/v1/customers/{CUSTOMER}")).await.ok();
    assert_eq!(seen["name"], Value::Null);
    assert_eq!(fixture_customer_copies(&b, KEY).await, (1, 1));
}

/// Many seeders released at once on one account (on Postgres, half of
/// them through a second connection pool, as a second server would):
/// exactly one seeds, none fails, one copy results.
async fn seeding_races_at_the_store(server: TestServer) {
    let other: Arc<dyn Store> = match server.backend {
        common::Backend::Postgres => {
            common::open_store(server.backend, server.schema.as_deref(), None)
                .await
                .expect("a second pool")
        }
        common::Backend::Sqlite => server.store.clone(),
    };
    for round in 0..5 {
        let account = format!("acct_race_{round}_{}", random_suffix());
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = if i % 2 == 0 {
                server.store.clone()
            } else {
                other.clone()
            };
            let (fixtures, account, barrier) =
                (server.fixtures.clone(), account.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                stripe_twin::fixtures::seed(store.as_ref(), &account, &fixtures, 1_700_000_000)
                    .await
            }));
        }
        let mut seeded = 0;
        for task in tasks {
            if task.await.unwrap().expect("no seeder fails") {
                seeded += 1;
            }
        }
        assert_eq!(seeded, 1, "exactly one seeder wrote the fixtures");
        let customers = server
            .store
            .list(&account, &ListQuery::new("customer"))
            .await
            .unwrap();
        assert_eq!(customers.len(), 1);
        assert_eq!(customers[0].id, CUSTOMER);
        let markers = server
            .store
            .list(
                &account,
                &ListQuery::new(stripe_twin::fixtures::MARKER_OBJECT),
            )
            .await
            .unwrap();
        assert_eq!(markers.len(), 1);
    }
}

// ---------------------------------------------------------------------------
// The binary: flags and start-up checks.

/// The real binary on an in-memory store and a free port, with no fixture
/// settings inherited from the environment.
fn twin(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stripe-twin"));
    command
        .args(["--in-memory", "--bind", "127.0.0.1", "--port", "0"])
        .args(args)
        .env_remove("STRIPE_TWIN_FIXTURES")
        .env_remove("STRIPE_TWIN_NO_FIXTURES")
        .env_remove("PUBLIC_URL")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs a binary that must refuse to start: its status and stderr.
fn refused(args: &[&str]) -> (i32, String) {
    let mut child = twin(args).spawn().expect("spawn stripe-twin");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stripe-twin {args:?} kept running instead of refusing to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code().unwrap_or(-1), stderr)
}

/// A running binary and its start-up line; killed when dropped.
struct Running {
    child: Child,
    line: String,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = twin(args).spawn().expect("spawn stripe-twin");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if !line.is_empty() => line,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let mut stderr = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!("stripe-twin {args:?} printed no start-up line; stderr: {stderr}");
            }
        };
        Self { child, line }
    }

    /// `host:port` from `listening on http://host:port (…)`.
    fn address(&self) -> String {
        let rest = self.line.split("http://").nth(1).expect("a URL");
        rest.split_whitespace().next().unwrap().to_owned()
    }

    /// A plain HTTP/1.1 GET with a secret key: (status line, body).
    fn get(&self, path: &str) -> (String, String) {
        let address = self.address();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {DOC_KEY}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.lines().next().unwrap_or_default().to_owned();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn binary_serves_the_built_in_fixtures() {
    let server = Running::start(&[]);
    assert!(
        server.line.contains("listening on http://"),
        "{}",
        server.line
    );
    let count = embedded().len();
    assert!(
        server
            .line
            .contains(&format!("fixtures: {count} objects from built-in")),
        "{}",
        server.line
    );
    let (status, body) = server.get(&format!("/v1/customers/{CUSTOMER}"));
    assert!(status.contains(" 200 "), "{status}: {body}");
    assert!(body.contains("My First Test Customer"), "{body}");
}

#[test]
fn binary_with_no_fixtures_starts_empty() {
    let server = Running::start(&["--no-fixtures"]);
    assert!(
        server.line.contains("listening on http://"),
        "{}",
        server.line
    );
    assert!(server.line.contains("fixtures: none"), "{}", server.line);
    let (status, body) = server.get(&format!("/v1/customers/{CUSTOMER}"));
    assert!(status.contains(" 404 "), "{status}: {body}");
    let (status, body) = server.get("/v1/customers");
    assert!(status.contains(" 200 "), "{status}: {body}");
    assert!(body.contains("\"data\":[]"), "{body}");
    drop(server);

    // STRIPE_TWIN_NO_FIXTURES=1 does the same (as container settings write it).
    let mut command = twin(&[]);
    command.env("STRIPE_TWIN_NO_FIXTURES", "1");
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("fixtures: none"), "{line}");
}

#[test]
fn binary_loads_a_fixtures_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut customer = embedded().get(CUSTOMER).unwrap().data.clone();
    customer["id"] = json!("cus_FromDirectory01");
    customer["cash_balance"]["customer"] = json!("cus_FromDirectory01");
    std::fs::write(dir.path().join("one.json"), customer.to_string()).unwrap();
    let path = dir.path().to_str().unwrap();
    let server = Running::start(&["--fixtures", path]);
    assert!(
        server
            .line
            .contains(&format!("fixtures: 1 object from {path}")),
        "{}",
        server.line
    );
    let (status, _) = server.get("/v1/customers/cus_FromDirectory01");
    assert!(status.contains(" 200 "), "{status}");
    let (status, _) = server.get(&format!("/v1/customers/{CUSTOMER}"));
    assert!(status.contains(" 404 "), "{status}");
    drop(server);

    // The environment variable does the same.
    let mut command = twin_with_env(path);
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("fixtures: 1 object from"), "{line}");
}

fn twin_with_env(dir: &str) -> Command {
    let mut command = twin(&[]);
    command.env("STRIPE_TWIN_FIXTURES", dir);
    command
}

#[test]
fn malformed_fixture_file_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a_good.json"),
        r#"[{"id": "cus_Good", "object": "customer", "created": 1}]"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prices.json"),
        "[\n  {\"id\": \"price_1\",\n    oops\n]\n",
    )
    .unwrap();
    let started = Instant::now();
    let (code, stderr) = refused(&["--fixtures", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let file = dir.path().join("prices.json");
    let wanted = format!("stripe-twin: {}: line 3 column 5: ", file.display());
    assert!(stderr.contains(&wanted), "{stderr}");
}

#[test]
fn fixture_without_an_id_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("customers.json"),
        r#"[{"id": "cus_One", "object": "customer", "created": 1}, {"object": "customer", "created": 2}]"#,
    )
    .unwrap();
    let (code, stderr) = refused(&["--fixtures", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    let file = dir.path().join("customers.json");
    assert!(
        stderr.contains(&format!("{}: object 2 has no \"id\"", file.display())),
        "{stderr}"
    );
}

#[test]
fn unusable_fixtures_directory_stops_start_up() {
    let (code, stderr) = refused(&["--fixtures", "/nonexistent/stripe-twin-fixtures"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("/nonexistent/stripe-twin-fixtures: cannot read the fixtures directory"),
        "{stderr}"
    );
    let empty = tempfile::tempdir().unwrap();
    let (code, stderr) = refused(&["--fixtures", empty.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no *.json fixture files"), "{stderr}");
}

#[test]
fn healthcheck_subcommand_answers_for_the_server_on_its_port() {
    let server = Running::start(&[]);
    let port = server.address().rsplit(':').next().unwrap().to_owned();
    let check = |port: &str| {
        Command::new(env!("CARGO_BIN_EXE_stripe-twin"))
            .arg("healthcheck")
            .env("PORT", port)
            .env("RUST_LOG", "off")
            .output()
            .expect("run healthcheck")
    };
    let healthy = check(&port);
    assert!(healthy.status.success(), "{healthy:?}");
    drop(server);
    let gone = check(&port);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("healthcheck"),
        "{gone:?}"
    );
}

#[test]
fn bad_webhook_settings_stop_start_up() {
    for (args, message) in [
        (
            &["--webhook-retry-schedule", "5x"][..],
            "--webhook-retry-schedule: '5x' has an unknown unit",
        ),
        (
            &["--forward-webhooks-to", "ftp://example.com"][..],
            "--forward-webhooks-to must be an http:// or https:// URL",
        ),
        (
            &["--webhook-secret", "nope"][..],
            "--webhook-secret must start with whsec_",
        ),
        (&["--webhook-timeout", "ten"][..], "--webhook-timeout:"),
    ] {
        let (code, stderr) = refused(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
