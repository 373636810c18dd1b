//! Fuzzes the whole router: generated requests (methods, paths with odd
//! ids, query strings, form bodies, headers) go to every route of the app,
//! in process, on one store that accumulates what they create. Any 5xx
//! answer fails the test, with the request that caused it.
//!
//! `FUZZ_CASES` sets how many requests run per store (CI uses the default);
//! the count and the number of answers per status are printed at the end.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use stripe_twin::AppState;
use stripe_twin::fixtures::Fixtures;
use stripe_twin::store::{PostgresStore, SqliteStore, Store};
use tower::ServiceExt;

const KEY: &str = "sk_test_fuzz_key";

/// Every route of the app, with its path variables as `{}`, and the
/// methods it answers (`G`et, `P`ost, `D`elete); two that are not routes.
const ROUTES: &[(&str, &str)] = &[
    ("/healthz", "G"),
    ("/_config/data", "D"),
    ("/_config/webhook_deliveries", "G"),
    ("/authorize/{}", "GP"),
    ("/c/pay/{}/{}", "GP"),
    ("/c/pay/{}/{}/return", "G"),
    ("/v1/balance_transactions", "G"),
    ("/v1/balance_transactions/{}", "G"),
    ("/v1/charges", "G"),
    ("/v1/charges/{}", "G"),
    ("/v1/checkout/sessions", "GP"),
    ("/v1/checkout/sessions/{}", "G"),
    ("/v1/checkout/sessions/{}/expire", "P"),
    ("/v1/checkout/sessions/{}/line_items", "G"),
    ("/v1/customers", "GP"),
    ("/v1/customers/search", "G"),
    ("/v1/customers/{}", "GPD"),
    ("/v1/customers/{}/payment_methods", "G"),
    ("/v1/customers/{}/payment_methods/{}", "G"),
    ("/v1/events", "G"),
    ("/v1/events/{}", "G"),
    ("/v1/invoice_payments", "G"),
    ("/v1/invoice_payments/{}", "G"),
    ("/v1/invoices", "G"),
    ("/v1/invoices/{}", "G"),
    ("/v1/invoices/{}/lines", "G"),
    ("/v1/invoices/{}/pay", "P"),
    ("/v1/mandates/{}", "G"),
    ("/v1/payment_intents", "GP"),
    ("/v1/payment_intents/{}", "GP"),
    ("/v1/payment_intents/{}/cancel", "P"),
    ("/v1/payment_intents/{}/confirm", "P"),
    ("/v1/payment_methods", "GP"),
    ("/v1/payment_methods/{}", "GP"),
    ("/v1/payment_methods/{}/attach", "P"),
    ("/v1/payment_methods/{}/detach", "P"),
    ("/v1/prices", "GP"),
    ("/v1/prices/search", "G"),
    ("/v1/prices/{}", "GP"),
    ("/v1/products", "GP"),
    ("/v1/products/search", "G"),
    ("/v1/products/{}", "GPD"),
    ("/v1/setup_intents", "GP"),
    ("/v1/setup_intents/{}", "GP"),
    ("/v1/setup_intents/{}/cancel", "P"),
    ("/v1/setup_intents/{}/confirm", "P"),
    ("/v1/subscription_items", "G"),
    ("/v1/subscription_items/{}", "G"),
    ("/v1/subscriptions", "GP"),
    ("/v1/subscriptions/search", "G"),
    ("/v1/subscriptions/{}", "GPD"),
    ("/v1/subscriptions/{}/resume", "P"),
    ("/v1/webhook_endpoints", "GP"),
    ("/v1/webhook_endpoints/{}", "GPD"),
    ("/v1/payment_intents/search", "G"),
    ("/v1/charges/search", "G"),
    ("/v1/invoices/search", "G"),
    ("/v1/refunds", "GP"),
    ("/v1/refunds/{}", "GP"),
    ("/v1/refunds/{}/cancel", "P"),
    ("/v1/charges/{}/refunds", "GP"),
    ("/v1/test_helpers/test_clocks", "GP"),
    ("/v1/test_helpers/test_clocks/{}", "GD"),
    ("/v1/test_helpers/test_clocks/{}/advance", "P"),
    ("/v1/nothing/{}", "G"),
];

/// Parameter names the handlers take, nested and listed as clients send them.
const NAMES: &[&str] = &[
    "amount",
    "currency",
    "customer",
    "description",
    "email",
    "name",
    "phone",
    "metadata[k]",
    "metadata",
    "expand[]",
    "expand[0]",
    "limit",
    "starting_after",
    "ending_before",
    "created",
    "created[gte]",
    "query",
    "page",
    "payment_method",
    "payment_method_types[]",
    "payment_method_types[0]",
    "payment_method_data[type]",
    "confirm",
    "return_url",
    "usage",
    "off_session",
    "mandate_data[customer_acceptance][type]",
    "mandate_data[customer_acceptance][online][ip_address]",
    "items[0][price]",
    "items[0][quantity]",
    "items[0][id]",
    "items[0][deleted]",
    "items[0][price_data][currency]",
    "items[0][price_data][unit_amount]",
    "items[0][price_data][product]",
    "items[0][price_data][recurring][interval]",
    "default_payment_method",
    "trial_period_days",
    "trial_end",
    "billing_cycle_anchor",
    "proration_behavior",
    "cancel_at_period_end",
    "payment_behavior",
    "collection_method",
    "days_until_due",
    "mode",
    "line_items[0][price]",
    "line_items[0][quantity]",
    "success_url",
    "cancel_url",
    "ui_mode",
    "customer_creation",
    "expires_at",
    "unit_amount",
    "unit_amount_decimal",
    "recurring[interval]",
    "recurring[interval_count]",
    "product",
    "product_data[name]",
    "lookup_key",
    "active",
    "type",
    "card[number]",
    "card[exp_month]",
    "card[exp_year]",
    "card[cvc]",
    "card[token]",
    "billing_details[name]",
    "url",
    "enabled_events[]",
    "disabled",
    "capture_method",
    "setup_future_usage",
    "error_on_requires_action",
    "cancellation_reason",
    "client_secret",
    "key",
    "invoice_settings[default_payment_method]",
    "address[line1]",
    "balance",
    "subscription",
    "status",
    "outcome",
    "payment_method_type",
    "cardNumber",
    "cardExpiry",
    "cardCvc",
    "billingName",
    "default_price_data[unit_amount]",
    "default_price_data[currency]",
    "discounts[0][coupon]",
    "a[b][c][d][e][f]",
    "[]",
    "x[",
    "x]y",
];

/// Values: ids of objects made earlier, real ids of the fixtures, numbers
/// at the edges, odd text.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => pooled(),
        8 => value_literal(),
    ]
}

fn value_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("cus_ODQluYFNl44ODI".to_owned()),
        Just("price_G0FvDp6vZvdwRZ".to_owned()),
        Just("prod_NWjs8kKbJWmuuc".to_owned()),
        Just("pm_card_visa".to_owned()),
        Just("pm_card_chargeDeclined".to_owned()),
        Just("pm_card_authenticationRequired".to_owned()),
        Just("tok_visa".to_owned()),
        Just("4242424242424242".to_owned()),
        Just("amazon_pay".to_owned()),
        Just("card".to_owned()),
        Just("usd".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("now".to_owned()),
        Just("month".to_owned()),
        Just("subscription".to_owned()),
        Just("payment".to_owned()),
        Just("setup".to_owned()),
        Just("always_invoice".to_owned()),
        Just("https://shop.example/return".to_owned()),
        Just("https://ééééé.example/é".to_owned()),
        Just("email:'a@b.c' AND metadata['k']:'v'".to_owned()),
        Just(String::new()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("1500".to_owned()),
        Just("99999999".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("6148914691236517206".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("1e308".to_owned()),
        Just("0.0000000000001".to_owned()),
        Just("ab_éé_".to_owned()),
        Just("%".to_owned()),
        Just("%ff%fe".to_owned()),
        "\\PC{0,12}",
        "[a-z_]{1,8}_[A-Za-z0-9]{0,24}",
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// Stands for the id of an object an earlier request created (see `Pool`).
const POOLED: &str = "POOLED";

fn pooled() -> impl Strategy<Value = String> {
    any::<u16>().prop_map(|n| format!("{POOLED}{n}x"))
}

/// Path ids: objects made earlier, fixtures, made-up ids, bytes that are
/// not UTF-8, NUL.
fn path_id() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => pooled(),
        1 => path_literal(),
    ]
}

fn path_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("cus_ODQluYFNl44ODI".to_owned()),
        Just("price_G0FvDp6vZvdwRZ".to_owned()),
        Just("prod_NWjs8kKbJWmuuc".to_owned()),
        Just("search".to_owned()),
        Just("cus_%00abc".to_owned()),
        Just("%ff%fe".to_owned()),
        Just("%C3%A9%C3%A9".to_owned()),
        Just("%".to_owned()),
        Just("a%2Fb".to_owned()),
        Just("é".repeat(5)),
        "[a-z_]{1,8}_[A-Za-z0-9]{0,24}",
        "[A-Za-z0-9._~-]{0,40}",
    ]
}

/// A body that a route accepts, so mutations of it reach deep into the
/// handlers (charges, invoices, prorations) instead of stopping at the
/// first unknown parameter.
fn base_body(template: &str) -> &'static str {
    match template {
        "/v1/customers" => "email=fuzz%40example.com&payment_method=pm_card_visa",
        "/v1/subscriptions" => {
            "customer=cus_ODQluYFNl44ODI&items[0][price]=price_G0FvDp6vZvdwRZ&items[0][quantity]=2&payment_behavior=default_incomplete"
        }
        "/v1/subscriptions/{}" => "items[0][quantity]=3&proration_behavior=always_invoice",
        "/v1/payment_intents" => {
            "amount=1500&currency=usd&payment_method=pm_card_visa&confirm=true&payment_method_types[]=card"
        }
        "/v1/setup_intents" => {
            "confirm=true&usage=off_session&payment_method_types[]=amazon_pay&payment_method_data[type]=amazon_pay&return_url=https%3A%2F%2Fshop.example%2Fr&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][ip_address]=127.0.0.1&mandate_data[customer_acceptance][online][user_agent]=fuzz"
        }
        "/v1/checkout/sessions" => {
            "mode=subscription&line_items[0][price]=price_G0FvDp6vZvdwRZ&line_items[0][quantity]=1&success_url=https%3A%2F%2Fshop.example%2Fs"
        }
        "/v1/prices" => {
            "currency=usd&unit_amount=1500&product=prod_NWjs8kKbJWmuuc&recurring[interval]=month"
        }
        "/v1/products" => {
            "name=Fuzz&default_price_data[currency]=usd&default_price_data[unit_amount]=700"
        }
        "/v1/payment_methods" => {
            "type=card&card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2031&card[cvc]=123"
        }
        "/v1/payment_methods/{}/attach" => "customer=cus_ODQluYFNl44ODI",
        "/v1/webhook_endpoints" => "url=https%3A%2F%2Fhooks.example%2Fh&enabled_events[]=*",
        "/c/pay/{}/{}" => {
            "payment_method_type=card&cardNumber=4242424242424242&cardExpiry=12%2F31&cardCvc=123&email=b%40example.com"
        }
        "/authorize/{}" => "outcome=authorize",
        _ => "",
    }
}

/// A route's accepted body with some parameters replaced or added.
fn mutated_body(template: &'static str) -> impl Strategy<Value = String> {
    (form_body(), prop::collection::vec(value(), 0..3)).prop_map(move |(extra, values)| {
        let mut pairs: Vec<(String, String)> = base_body(template)
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let count = pairs.len().max(1);
        for (n, value) in values.into_iter().enumerate() {
            if let Some(pair) = pairs.get_mut(n * 2 % count) {
                pair.1 = encode(&value);
            }
        }
        let mut body: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !extra.is_empty() {
            body.push(extra);
        }
        body.join("&")
    })
}

fn form_body() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(NAMES), value()), 0..8).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(&value)))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            // Some escapes stay as sent, malformed or not.
            b'%' => "%".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Generated {
    method: &'static str,
    path: String,
    query: String,
    body: String,
    auth: Option<String>,
    content_type: Option<&'static str>,
    idempotency_key: Option<Vec<u8>>,
    origin: bool,
}

fn request() -> impl Strategy<Value = Generated> {
    let route = prop::sample::select(ROUTES).prop_flat_map(|(template, methods)| {
        let method = prop_oneof![
            9 => prop::sample::select(methods.chars().collect::<Vec<_>>()).prop_map(|m| match m {
                'G' => "GET",
                'D' => "DELETE",
                _ => "POST",
            }),
            1 => prop::sample::select(&["GET", "POST", "DELETE", "PUT"][..]),
        ];
        let holes = template.matches("{}").count();
        let body = prop_oneof![3 => mutated_body(template), 1 => form_body()];
        (method, prop::collection::vec(path_id(), holes), body).prop_map(
            move |(method, ids, body)| {
                let mut path = template.to_owned();
                for id in ids {
                    path = path.replacen("{}", &id, 1);
                }
                (method, path, body)
            },
        )
    });
    let auth = prop_oneof![
        12 => Just(Some(format!("Bearer {KEY}"))),
        1 => Just(Some("Bearer pk_test_fuzz".to_owned())),
        1 => Just(None),
        1 => Just(Some("Basic YWJfw6nDqV86".to_owned())),
        1 => "\\PC{0,20}".prop_map(|s| Some(format!("Bearer {s}"))),
    ];
    let content_type = prop_oneof![
        12 => Just(Some("application/x-www-form-urlencoded")),
        1 => Just(None),
        1 => Just(Some("application/json")),
        1 => Just(Some("multipart/form-data; boundary=x")),
    ];
    let key = prop_oneof![
        12 => Just(None),
        1 => "[ -~]{1,40}".prop_map(|k| Some(k.into_bytes())),
        1 => Just(Some("clé-1".as_bytes().to_vec())),
        1 => Just(Some(vec![b'k'; 300])),
    ];
    let query = prop_oneof![6 => Just(String::new()), 1 => form_body()];
    (
        route,
        query,
        auth,
        content_type,
        key,
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |((method, path, body), query, auth, content_type, idempotency_key, origin)| {
                Generated {
                    method,
                    path,
                    query,
                    body,
                    auth,
                    content_type,
                    idempotency_key,
                    origin,
                }
            },
        )
}

/// What earlier answers made: object ids, and the pages (Checkout,
/// authorization) they link to.
#[derive(Default)]
struct Pool {
    ids: Vec<String>,
    pages: Vec<String>,
}

impl Pool {
    fn learn(&mut self, body: &[u8]) {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return;
        };
        let mut found = Vec::new();
        collect(&value, &mut found);
        for text in found {
            if let Some(page) = ["/c/pay/", "/authorize/"]
                .iter()
                .find_map(|p| text.find(p).map(|at| text[at..].to_owned()))
            {
                if !self.pages.contains(&page) {
                    self.pages.push(page);
                }
            } else if text.contains('_') && !text.contains(['/', ' ']) && !self.ids.contains(&text)
            {
                self.ids.push(text);
            }
        }
    }

    /// A path with each placeholder replaced by a known id of the type its
    /// resource segment names, when there is one.
    fn fill_path(&self, path: &str) -> String {
        let segments: Vec<&str> = path.split('/').collect();
        let mut out = Vec::with_capacity(segments.len());
        for (n, segment) in segments.iter().enumerate() {
            let prefix = n
                .checked_sub(1)
                .and_then(|p| id_prefix(segments[p]))
                .filter(|_| segment.starts_with(POOLED));
            let typed: Vec<&String> = match prefix {
                Some(prefix) => self
                    .ids
                    .iter()
                    .filter(|id| id.starts_with(prefix))
                    .collect(),
                None => Vec::new(),
            };
            match typed.as_slice() {
                [] => out.push(self.fill(segment)),
                ids => {
                    let pick = segment.len() + n + ids.len() * 7;
                    out.push(ids[pick % ids.len()].clone());
                }
            }
        }
        out.join("/")
    }

    /// `text` with each placeholder replaced by a known id.
    fn fill(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(POOLED) {
            out.push_str(&rest[..at]);
            let after = &rest[at + POOLED.len()..];
            let digits = after.find('x').unwrap_or(after.len());
            let n: usize = after[..digits].parse().unwrap_or(0);
            match self.ids.get(n % self.ids.len().max(1)) {
                Some(id) => out.push_str(id),
                None => out.push_str("cus_ODQluYFNl44ODI"),
            }
            rest = after.get(digits + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        out
    }
}

/// The id prefix of the objects a path segment lists.
fn id_prefix(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "customers" => "cus_",
        "prices" => "price_",
        "products" => "prod_",
        "payment_intents" => "pi_",
        "setup_intents" => "seti_",
        "payment_methods" => "pm_",
        "subscriptions" => "sub_",
        "subscription_items" => "si_",
        "invoices" => "in_",
        "invoice_payments" => "inpay_",
        "sessions" => "cs_",
        "events" => "evt_",
        "mandates" => "mandate_",
        "charges" => "ch_",
        "webhook_endpoints" => "we_",
        _ => return None,
    })
}

/// The ids and URLs in an answer.
fn collect(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("id" | "url", serde_json::Value::String(text)) => out.push(text.clone()),
                    _ => collect(child, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        _ => {}
    }
}

impl Generated {
    fn build(&self, pool: &Pool) -> Option<Request<Body>> {
        let path = match (
            self.path.starts_with("/c/pay/") || self.path.starts_with("/authorize/"),
            self.path.bytes().map(usize::from).sum::<usize>(),
        ) {
            (true, n) if !pool.pages.is_empty() && n % 4 != 0 => {
                let page = &pool.pages[n % pool.pages.len()];
                if self.path.ends_with("/return") && page.starts_with("/c/pay/") {
                    format!("{page}/return")
                } else {
                    page.clone()
                }
            }
            _ => pool.fill_path(&self.path),
        };
        let query = pool.fill(&self.query);
        let uri = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let mut builder = Request::builder().method(self.method).uri(uri);
        if let Some(auth) = &self.auth {
            builder = builder.header("authorization", auth.as_bytes());
        }
        if let Some(content_type) = self.content_type {
            builder = builder.header("content-type", content_type);
        }
        if let Some(key) = &self.idempotency_key {
            builder = builder.header("idempotency-key", key.as_slice());
        }
        if self.origin {
            builder = builder.header("origin", "https://page.example");
        }
        // Some generated headers are not valid HTTP at all: no server sees those.
        builder.body(Body::from(pool.fill(&self.body))).ok()
    }
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500)
}

/// Sends `cases` generated requests to an app on the store `open` gives,
/// opened on the runtime the requests run on (a Postgres pool is bound to
/// the runtime it was made on).
fn fuzz(open: impl Future<Output = Arc<dyn Store>>, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = runtime.block_on(open);
    let state = AppState::with_fixtures(
        store,
        None,
        Fixtures::embedded(&stripe_twin::REGISTRY).unwrap(),
    );
    let app = stripe_twin::app(state);
    let statuses: std::cell::RefCell<BTreeMap<u16, u32>> = Default::default();
    let pool: std::cell::RefCell<Pool> = Default::default();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&request(), |generated| {
        let Some(request) = generated.build(&pool.borrow()) else {
            return Ok(());
        };
        let sent = format!("{} {}", request.method(), request.uri());
        let app = app.clone();
        let response = runtime.block_on(async move { app.oneshot(request).await.unwrap() });
        let status = response.status();
        *statuses.borrow_mut().entry(status.as_u16()).or_default() += 1;
        let body = runtime
            .block_on(axum::body::to_bytes(response.into_body(), 8 << 20))
            .unwrap_or_default();
        if status.is_server_error() {
            return Err(TestCaseError::fail(format!(
                "{status} for {sent} ({generated:?}): {}",
                String::from_utf8_lossy(&body)
            )));
        }
        if std::env::var_os("FUZZ_DEBUG").is_some() {
            eprintln!(
                "{status} {sent} {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(150)
                    .collect::<String>()
            );
        }
        if status.is_success() {
            pool.borrow_mut().learn(&body);
        }
        Ok(())
    });
    let statuses = statuses.into_inner();
    let sent: u32 = statuses.values().sum();
    eprintln!("fuzz: {sent} requests, answers by status: {statuses:?}");
    if let Err(err) = result {
        panic!("{err}");
    }
    assert!(
        statuses.get(&StatusCode::OK.as_u16()).copied().unwrap_or(0) > 0,
        "no request succeeded: the generator no longer reaches the handlers"
    );
}

#[test]
fn no_input_gets_a_5xx_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.db");
    fuzz(
        async move {
            let store = SqliteStore::open_file(path.to_str().unwrap()).await;
            Arc::new(store.expect("sqlite store")) as Arc<dyn Store>
        },
        cases(),
    );
}

#[test]
#[cfg_attr(twin_no_postgres, ignore = "set TEST_DATABASE_URL")]
fn no_input_gets_a_5xx_on_postgres() {
    let url = common::postgres_url();
    let schema = common::new_schema();
    fuzz(
        async move {
            let store = PostgresStore::connect(&url, Some(&schema)).await;
            Arc::new(store.expect("postgres store")) as Arc<dyn Store>
        },
        cases() / 2,
    );
}
