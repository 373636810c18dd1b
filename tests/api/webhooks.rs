//! Webhooks over real HTTP: a receiver in the test (an axum server on
//! 127.0.0.1:0) records every delivery and answers as its script says;
//! every delivery's `Stripe-Signature` is checked with async-stripe's
//! `Webhook::construct_event` and with an independent HMAC-SHA256. The
//! endpoints API and its errors; the Amazon Pay SetupIntent, Checkout and
//! subscription flows arriving in the order `/v1/events` records them;
//! subscriptions to some types; retries, timeouts and the delivery log;
//! a restart mid-retry; two server processes on one store; forwarding
//! without an endpoint; a hanging receiver that must not slow the API;
//! idempotency keys and `previous_attributes` in delivered events.
use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri};
use common::{KEY, TestServer, amazon_pay_with_mandate, browser, enc, id, submit};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use stripe_twin::store::{Record, Write};
use stripe_twin::webhooks::{DEFAULT_FORWARD_SECRET, WebhookSettings};
use stripe_webhook::Webhook;

backend_tests!(
    fixtures = stripe_twin::fixtures::Fixtures::embedded(&stripe_twin::REGISTRY).unwrap();
    deliveries_are_signed_as_stripe_signs_them,
    endpoint_create_retrieve_update_delete_list,
    endpoint_validation_errors,
    disabled_endpoint_gets_nothing,
    endpoint_gets_no_event_from_before_it_existed,
    deleted_endpoint_gets_no_more_retries,
    amazon_pay_setup_events_arrive_in_order,
    checkout_setup_completion_events_arrive_in_order,
    subscription_creation_events_arrive_in_order,
    endpoints_get_only_the_types_they_subscribe_to,
    failing_receiver_is_retried_until_it_succeeds,
    retry_waits_follow_the_schedule,
    receiver_that_never_answers_fails_after_the_schedule,
    restart_mid_retry_loses_and_duplicates_nothing,
    two_servers_deliver_each_event_once,
    forwarding_delivers_every_account_without_an_endpoint,
    hanging_receiver_does_not_slow_the_api,
    events_carry_idempotency_key_and_previous_attributes,
);

const USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// The fixtures' monthly price (15.00 USD).
const MONTHLY_PRICE: &str = "price_G0FvDp6vZvdwRZ";
/// How long any delivery may take to show up in these tests.
const WAIT: Duration = Duration::from_secs(30);

/// Short settings: a 1 s timeout, retries after 200 ms and 400 ms, a 50 ms
/// poll.
fn fast() -> WebhookSettings {
    WebhookSettings {
        timeout: Duration::from_secs(1),
        retry_schedule: vec![Duration::from_millis(200), Duration::from_millis(400)],
        poll_interval: Duration::from_millis(50),
        ..WebhookSettings::default()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Polls `probe` until it gives `Ok`, or panics after `within` with what
/// it said last.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {within:?} waiting for {what}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

// ---- the receiver ---------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// 200 at once.
    Ok,
    /// 500 at once.
    Fail,
    /// No answer for two minutes (longer than any timeout here).
    Hang,
}

/// What the receiver answers: given the request's path and how many times
/// this event came to this path before.
type Script = Arc<dyn Fn(&str, usize) -> Answer + Send + Sync>;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    /// The raw body, as signed.
    body: String,
    event: Value,
    /// The n-th time this event came to this path (0 for the first).
    attempt: usize,
    at: Instant,
    peer: SocketAddr,
}

impl Received {
    fn event_id(&self) -> &str {
        self.event["id"].as_str().unwrap_or_default()
    }

    fn kind(&self) -> &str {
        self.event["type"].as_str().unwrap_or_default()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("an ASCII header"))
            .unwrap_or_else(|| panic!("no {name} header on {}", self.body))
    }
}

struct Inbox {
    received: Mutex<Vec<Received>>,
    script: Script,
}

#[derive(Clone)]
struct Receiver {
    base: String,
    inbox: Arc<Inbox>,
}

impl Receiver {
    async fn start(script: impl Fn(&str, usize) -> Answer + Send + Sync + 'static) -> Self {
        let inbox = Arc::new(Inbox {
            received: Mutex::new(Vec::new()),
            script: Arc::new(script),
        });
        let app = Router::new().fallback(receive).with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self { base, inbox }
    }

    /// A receiver that answers every request the same way.
    async fn answering(answer: Answer) -> Self {
        Self::start(move |_, _| answer).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn all(&self) -> Vec<Received> {
        self.inbox.received.lock().unwrap().clone()
    }

    /// What came to `path`, in arrival order.
    fn on(&self, path: &str) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.path == path).collect()
    }

    /// Waits until what came to `path` satisfies `done`.
    async fn wait_on(
        &self,
        path: &str,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        eventually(what, WAIT, || async {
            let got = self.on(path);
            if done(&got) {
                Ok(got)
            } else {
                Err(format!("{:?}", summary(&got)))
            }
        })
        .await
    }
}

fn summary(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| format!("{} {} #{}", r.event_id(), r.kind(), r.attempt))
        .collect()
}

async fn receive(
    State(inbox): State<Arc<Inbox>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let body = String::from_utf8(body.to_vec()).expect("a UTF-8 body");
    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    let answer = {
        let mut received = inbox.received.lock().unwrap();
        let attempt = received
            .iter()
            .filter(|r| r.path == path && r.event["id"] == event["id"])
            .count();
        let answer = (inbox.script)(&path, attempt);
        received.push(Received {
            path,
            headers,
            body,
            event,
            attempt,
            at: Instant::now(),
            peer,
        });
        answer
    };
    match answer {
        Answer::Ok => (StatusCode::OK, "received"),
        Answer::Fail => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "receiver failed on purpose",
        ),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            (StatusCode::OK, "too late")
        }
    }
}

/// Checks a delivery's headers and its signature, with async-stripe's
/// `Webhook::construct_event` and with an HMAC computed here; returns the
/// event it carried.
#[track_caller]
fn verify(received: &Received, secret: &str) -> Value {
    assert_eq!(received.header("content-type"), CONTENT_TYPE);
    assert_eq!(received.header("user-agent"), USER_AGENT);
    let signature = received.header("stripe-signature");

    // Independently: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by
    // the whole whsec_ string>.
    let mut t = None;
    let mut v1 = Vec::new();
    for part in signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.parse::<i64>().expect("a unix time")),
            Some(("v1", value)) => v1.push(value.to_owned()),
            other => panic!("unexpected part {other:?} in {signature}"),
        }
    }
    let t = t.unwrap_or_else(|| panic!("no t= in {signature}"));
    assert!((unix_now() - t).abs() <= 300, "t={t} is not now");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, vec![expected], "{signature}");

    // As an app verifies it with async-stripe.
    let event = Webhook::construct_event(&received.body, signature, secret).unwrap_or_else(|err| {
        panic!(
            "async-stripe refused {} ({}): {err:?}",
            received.event_id(),
            received.kind()
        )
    });
    assert_eq!(event.id.as_str(), received.event_id());
    assert_eq!(event.type_.as_str(), received.kind());
    // The verification is real: a changed body or another secret fails.
    assert!(Webhook::construct_event(&format!("{} ", received.body), signature, secret).is_err());
    assert!(Webhook::construct_event(&received.body, signature, "whsec_another").is_err());
    assert_eq!(received.event["object"], "event");
    received.event.clone()
}

// ---- the server side ------------------------------------------------------------

/// Creates an endpoint for `url` subscribed to `types`; returns its id and
/// its secret.
async fn endpoint(server: &TestServer, url: &str, types: &[&str]) -> (String, String) {
    let mut body = format!("url={}", enc(url));
    for kind in types {
        body.push_str(&format!("&enabled_events[]={}", enc(kind)));
    }
    let created = server.post("/v1/webhook_endpoints", &body).await.ok();
    let secret = created["secret"].as_str().expect("a secret").to_owned();
    (id(&created), secret)
}

async fn customer(server: &TestServer, body: &str) -> String {
    id(&server.post("/v1/customers", body).await.ok())
}

async fn deliveries(server: &TestServer) -> Vec<Value> {
    deliveries_as(server, KEY).await
}

async fn deliveries_as(server: &TestServer, key: &str) -> Vec<Value> {
    let list = server
        .get_as(key, "/_config/webhook_deliveries?limit=1000")
        .await
        .ok();
    assert_eq!(list["object"], "list");
    list["data"].as_array().expect("a list").clone()
}

/// Waits until the account's deliveries satisfy `done`.
async fn wait_deliveries(
    server: &TestServer,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    eventually(what, WAIT, || async {
        let list = deliveries(server).await;
        if done(&list) {
            Ok(list)
        } else {
            Err(Value::Array(list).to_string())
        }
    })
    .await
}

fn all_succeeded(list: &[Value]) -> bool {
    list.iter().all(|d| d["status"] == "succeeded")
}

/// Every event of the account, oldest first.
async fn all_events(server: &TestServer) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = "/v1/events?limit=100".to_owned();
    loop {
        let page = server.get(&path).await.ok();
        let data = page["data"].as_array().unwrap().clone();
        let last = data.last().map(id);
        events.extend(data);
        match (page["has_more"].as_bool(), last) {
            (Some(true), Some(last)) => {
                path = format!("/v1/events?limit=100&starting_after={last}")
            }
            _ => break,
        }
    }
    events.reverse();
    events
}

async fn event(server: &TestServer, event_id: &str) -> Value {
    server.get(&format!("/v1/events/{event_id}")).await.ok()
}

/// The ids a `/v1/events?…` query lists.
async fn event_ids(server: &TestServer, query: &str) -> Vec<String> {
    let list = server.get(&format!("/v1/events?{query}")).await.ok();
    list["data"].as_array().unwrap().iter().map(id).collect()
}

fn without_pending(event: &Value) -> Value {
    let mut event = event.clone();
    event.as_object_mut().unwrap().remove("pending_webhooks");
    event
}

/// The attempts of a delivery, as the delivery log shows them.
fn attempts(delivery: &Value) -> Vec<Value> {
    delivery["attempts"].as_array().expect("attempts").clone()
}

/// Watches `path` for `quiet` more and fails if anything else arrives
/// there: what proves nothing is delivered twice.
async fn assert_nothing_more(receiver: &Receiver, path: &str, expected: usize, quiet: Duration) {
    let until = Instant::now() + quiet;
    while Instant::now() < until {
        let got = receiver.on(path);
        assert_eq!(got.len(), expected, "{:?}", summary(&got));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- 1. signatures and headers ----------------------------------------------------

/// Each delivery: Content-Type, User-Agent, a Stripe-Signature that
/// async-stripe and an HMAC computed here both accept, and a body that is
/// the event `/v1/events/{id}` shows (pending_webhooks aside: 1 when sent,
/// 0 once delivered).
async fn deliveries_are_signed_as_stripe_signs_them(server: TestServer) {
    let server = server.restart_with_webhooks(fast()).await;
    let receiver = Receiver::answering(Answer::Ok).await;
    let (endpoint_id, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");

    let cus = customer(&server, "email=jenny%40example.com").await;
    server
        .post(&format!("/v1/customers/{cus}"), "name=Jenny")
        .await
        .ok();
    server.delete(&format!("/v1/customers/{cus}")).await.ok();

    let got = receiver
        .wait_on("/hooks", "three deliveries", |got| got.len() >= 3)
        .await;
    let list = wait_deliveries(&server, "three succeeded deliveries", |list| {
        list.len() == 3 && all_succeeded(list)
    })
    .await;
    let mut types: Vec<String> = got.iter().map(|r| r.kind().to_owned()).collect();
    types.sort();
    assert_eq!(
        types,
        ["customer.created", "customer.deleted", "customer.updated"]
    );
    for received in &got {
        let delivered = verify(received, &secret);
        // The body is pretty-printed JSON of the event, as Stripe sends it.
        assert!(received.body.contains("\n  \"id\": "), "{}", received.body);
        assert_eq!(delivered["pending_webhooks"], 1, "{delivered}");
        assert_eq!(delivered["data"]["object"]["id"], cus.as_str());
        let stored = event(&server, received.event_id()).await;
        assert_eq!(stored["pending_webhooks"], 0, "{stored}");
        assert_eq!(without_pending(&delivered), without_pending(&stored));
    }
    for delivery in &list {
        assert_eq!(delivery["object"], "webhook_delivery");
        assert_eq!(delivery["endpoint"], endpoint_id.as_str());
        assert_eq!(delivery["url"], receiver.url("/hooks"));
        assert_eq!(delivery["attempt_count"], 1);
        assert_eq!(delivery["last_status_code"], 200);
        assert_eq!(delivery["last_response"], "received");
        assert!(delivery["next_attempt_at"].is_null());
        assert!(
            delivery.get("secret").is_none() && !delivery.to_string().contains(&secret),
            "the delivery log shows no secret: {delivery}"
        );
    }
    assert_nothing_more(&receiver, "/hooks", 3, Duration::from_millis(500)).await;
}

// ---- 2. the endpoints API ----------------------------------------------------------

async fn endpoint_create_retrieve_update_delete_list(server: TestServer) {
    let created = server
        .post(
            "/v1/webhook_endpoints",
            "url=https%3A%2F%2Fapp.example%2Fstripe&enabled_events[]=customer.created&enabled_events[]=setup_intent.succeeded&description=Main&metadata[team]=payments",
        )
        .await
        .ok();
    let endpoint_id = id(&created);
    assert!(endpoint_id.starts_with("we_"), "{endpoint_id}");
    assert_eq!(created["object"], "webhook_endpoint");
    assert_eq!(created["url"], "https://app.example/stripe");
    assert_eq!(
        created["enabled_events"],
        json!(["customer.created", "setup_intent.succeeded"])
    );
    assert_eq!(created["description"], "Main");
    assert_eq!(created["metadata"], json!({"team": "payments"}));
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["livemode"], false);
    assert!(created["application"].is_null());
    assert!(created["api_version"].is_null());
    assert!((created["created"].as_i64().unwrap() - unix_now()).abs() < 60);
    let secret = created["secret"].as_str().expect("the secret on create");
    assert!(
        secret.starts_with("whsec_") && secret.len() > 20,
        "{secret}"
    );
    let keys = created.as_object().unwrap().keys();
    assert!(keys.clone().all(|k| !k.starts_with('_')), "{created}");

    // The secret is shown on create only.
    let path = format!("/v1/webhook_endpoints/{endpoint_id}");
    let retrieved = server.get(&path).await.ok();
    assert!(retrieved.get("secret").is_none(), "{retrieved}");
    assert!(!retrieved.to_string().contains(secret));
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(retrieved, expected);

    // Update: url, enabled_events (replaced), description, metadata.
    let updated = server
        .post(
            &path,
            "url=http%3A%2F%2Flocalhost%3A3000%2Fhooks&enabled_events[]=*&description=Local&metadata[env]=dev",
        )
        .await
        .ok();
    assert_eq!(updated["id"], endpoint_id.as_str());
    assert_eq!(updated["url"], "http://localhost:3000/hooks");
    assert_eq!(updated["enabled_events"], json!(["*"]));
    assert_eq!(updated["description"], "Local");
    assert_eq!(
        updated["metadata"],
        json!({"team": "payments", "env": "dev"})
    );
    assert_eq!(updated["status"], "enabled");
    assert!(updated.get("secret").is_none(), "{updated}");
    let unset = server
        .post(&path, "description=&metadata[team]=")
        .await
        .ok();
    assert!(unset["description"].is_null(), "{unset}");
    assert_eq!(unset["metadata"], json!({"env": "dev"}));
    let disabled = server.post(&path, "disabled=true").await.ok();
    assert_eq!(disabled["status"], "disabled");
    let enabled = server.post(&path, "disabled=false").await.ok();
    assert_eq!(enabled["status"], "enabled");
    assert_eq!(server.get(&path).await.ok(), enabled);

    // List, newest first, with paging; no secrets.
    let mut ids = vec![endpoint_id.clone()];
    for n in 0..3 {
        let (more, _) = endpoint(
            &server,
            &format!("https://app.example/hook/{n}"),
            &["customer.created"],
        )
        .await;
        ids.push(more);
    }
    ids.reverse();
    let list = server.get("/v1/webhook_endpoints").await.ok();
    assert_eq!(list["object"], "list");
    assert_eq!(list["url"], "/v1/webhook_endpoints");
    assert_eq!(list["has_more"], false);
    let listed: Vec<String> = list["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(listed, ids);
    assert!(!list.to_string().contains("whsec_"), "{list}");
    let first = server.get("/v1/webhook_endpoints?limit=2").await.ok();
    assert_eq!(first["has_more"], true);
    let first_ids: Vec<String> = first["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(first_ids, ids[..2]);
    let rest = server
        .get(&format!(
            "/v1/webhook_endpoints?limit=2&starting_after={}",
            ids[1]
        ))
        .await
        .ok();
    assert_eq!(rest["has_more"], false);
    let rest_ids: Vec<String> = rest["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(rest_ids, ids[2..]);
    let before = server
        .get(&format!(
            "/v1/webhook_endpoints?limit=1&ending_before={}",
            ids[2]
        ))
        .await
        .ok();
    assert_eq!(before["data"][0]["id"], ids[1].as_str());

    // Delete: a tombstone, then 404 everywhere.
    let deleted = server.delete(&path).await.ok();
    assert_eq!(
        deleted,
        json!({"id": endpoint_id, "object": "webhook_endpoint", "deleted": true})
    );
    for reply in [
        server.get(&path).await,
        server.post(&path, "description=x").await,
        server.delete(&path).await,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        assert_eq!(reply.error_type(), "invalid_request_error");
        assert_eq!(reply.error_code(), "resource_missing");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&endpoint_id), "{message}");
    }
    let list = server.get("/v1/webhook_endpoints?limit=10").await.ok();
    let listed: Vec<String> = list["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(listed, ids[..3]);
}

/// Creation and update errors, in Stripe's error shape.
async fn endpoint_validation_errors(server: TestServer) {
    const OK_URL: &str = "url=https%3A%2F%2Fapp.example%2Fhooks";
    let cases: Vec<(String, &str, &str)> = vec![
        // (body, param, code or "")
        ("enabled_events[]=*".into(), "url", "parameter_missing"),
        (OK_URL.into(), "enabled_events", "parameter_missing"),
        ("url=not-a-url&enabled_events[]=*".into(), "url", ""),
        (
            "url=ftp%3A%2F%2Fapp.example%2Fhooks&enabled_events[]=*".into(),
            "url",
            "",
        ),
        (
            format!("{OK_URL}&enabled_events[]=customer.exploded"),
            "enabled_events[0]",
            "",
        ),
        (
            format!("{OK_URL}&enabled_events[]=customer.created&enabled_events[]=nope"),
            "enabled_events[1]",
            "",
        ),
        (format!("{OK_URL}&enabled_events="), "enabled_events", ""),
        (
            format!("{OK_URL}&enabled_events[]=*&surprise=1"),
            "surprise",
            "parameter_unknown",
        ),
        (
            format!("{OK_URL}&enabled_events[]=*&api_version=yesterday"),
            "api_version",
            "",
        ),
    ];
    for (body, param, code) in &cases {
        let reply = server.post("/v1/webhook_endpoints", body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
        assert_eq!(
            reply.error_type(),
            "invalid_request_error",
            "{body}: {}",
            reply.body
        );
        assert_eq!(reply.error_param(), *param, "{body}: {}", reply.body);
        if !code.is_empty() {
            assert_eq!(reply.error_code(), *code, "{body}: {}", reply.body);
            assert!(reply.body["error"]["doc_url"].is_string(), "{}", reply.body);
        }
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{body}: {}", reply.body);
    }
    assert_eq!(
        server
            .post("/v1/webhook_endpoints", "enabled_events[]=*")
            .await
            .body["error"]["message"],
        "Missing required param: url."
    );
    let unknown = server
        .post(
            "/v1/webhook_endpoints",
            &format!("{OK_URL}&enabled_events[]=*&surprise=1"),
        )
        .await;
    assert_eq!(
        unknown.body["error"]["message"],
        "Received unknown parameter: surprise"
    );
    // Nothing was created by the failures.
    let list = server.get("/v1/webhook_endpoints").await.ok();
    assert_eq!(list["data"], json!([]));

    // Updates are checked the same way.
    let (endpoint_id, _) = endpoint(&server, "https://app.example/hooks", &["*"]).await;
    let path = format!("/v1/webhook_endpoints/{endpoint_id}");
    for (body, param) in [
        ("url=not-a-url", "url"),
        ("enabled_events[]=customer.exploded", "enabled_events[0]"),
        ("surprise=1", "surprise"),
        ("disabled=maybe", "disabled"),
    ] {
        let reply = server.post(&path, body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
        assert_eq!(reply.error_type(), "invalid_request_error");
        assert_eq!(reply.error_param(), param, "{body}: {}", reply.body);
    }
    let missing = server
        .post("/v1/webhook_endpoints/we_missing", "description=x")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "resource_missing");
    // Unchanged by the failed updates.
    let endpoint = server.get(&path).await.ok();
    assert_eq!(endpoint["url"], "https://app.example/hooks");
    assert_eq!(endpoint["enabled_events"], json!(["*"]));
}

/// `disabled=true`: no deliveries while disabled (a second endpoint shows
/// the event was fanned out); enabled again, the next event arrives.
async fn disabled_endpoint_gets_nothing(server: TestServer) {
    let server = server.restart_with_webhooks(fast()).await;
    let receiver = Receiver::answering(Answer::Ok).await;
    let (off, off_secret) = endpoint(&server, &receiver.url("/off"), &["*"]).await;
    let (_, witness_secret) = endpoint(&server, &receiver.url("/witness"), &["*"]).await;
    let disabled = server
        .post(&format!("/v1/webhook_endpoints/{off}"), "disabled=true")
        .await
        .ok();
    assert_eq!(disabled["status"], "disabled");

    let first = customer(&server, "").await;
    let got = receiver
        .wait_on("/witness", "the witness's delivery", |got| got.len() == 1)
        .await;
    let delivered = verify(&got[0], &witness_secret);
    assert_eq!(delivered["data"]["object"]["id"], first.as_str());
    // Sent while one endpoint (the witness) was owed it.
    assert_eq!(delivered["pending_webhooks"], 1);
    let list = wait_deliveries(&server, "the witness's delivery", |l| {
        l.len() == 1 && all_succeeded(l)
    })
    .await;
    assert_ne!(list[0]["endpoint"], off.as_str());
    assert_eq!(receiver.on("/off").len(), 0);

    server
        .post(&format!("/v1/webhook_endpoints/{off}"), "disabled=false")
        .await
        .ok();
    let second = customer(&server, "").await;
    let got = receiver
        .wait_on("/off", "the re-enabled endpoint's delivery", |got| {
            !got.is_empty()
        })
        .await;
    assert_eq!(got.len(), 1, "{:?}", summary(&got));
    let delivered = verify(&got[0], &off_secret);
    assert_eq!(delivered["data"]["object"]["id"], second.as_str());
}

/// An event recorded before the endpoint was created is not sent to it,
/// even within the same second and even when the worker fans it out only
/// after the endpoint exists. Here the event is written straight to the
/// store, as another server process writes it (this process's worker sees
/// it at its next poll, or at the next local commit); the endpoint is
/// created next, then a customer whose commit wakes the worker.
async fn endpoint_gets_no_event_from_before_it_existed(server: TestServer) {
    let server = server
        .restart_with_webhooks(WebhookSettings {
            poll_interval: Duration::from_secs(5),
            ..fast()
        })
        .await;
    let receiver = Receiver::answering(Answer::Ok).await;
    // The account exists (and has its fixtures) before the timed part.
    server.get("/v1/customers").await.ok();
    // Start just after a second begins, so that all of it shares the second.
    eventually("the start of a second", Duration::from_secs(3), || async {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        if now.subsec_millis() < 300 {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    })
    .await;
    let early = json!({
        "id": format!("evt_early{}", common::random_suffix()),
        "object": "event",
        "api_version": stripe_twin::API_VERSION,
        "created": unix_now(),
        "data": {"object": {"id": "cus_early", "object": "customer"}},
        "livemode": false,
        "pending_webhooks": 0,
        "request": {"id": null, "idempotency_key": null},
        "type": "customer.created",
    });
    server
        .store
        .commit(
            &stripe_twin::http::auth::account_of(KEY),
            &[Write::Insert(Record::new("event", early.clone()))],
        )
        .await
        .unwrap();
    let (endpoint_id, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    let after = customer(&server, "name=After").await;
    let endpoint_created = server
        .get(&format!("/v1/webhook_endpoints/{endpoint_id}"))
        .await
        .ok()["created"]
        .clone();
    let got = receiver
        .wait_on("/hooks", "the later customer's event", |got| {
            got.iter()
                .any(|r| r.event["data"]["object"]["id"] == after.as_str())
        })
        .await;
    let list = wait_deliveries(&server, "deliveries settled", all_succeeded).await;
    let delivered: Vec<Value> = got
        .iter()
        .map(|r| r.event["data"]["object"]["id"].clone())
        .collect();
    assert_eq!(
        delivered,
        [json!(after)],
        "{} (created {}, before the endpoint, created {endpoint_created}) was delivered ({} deliveries)",
        early["id"],
        early["created"],
        list.len()
    );
    verify(&got[0], &secret);
}

/// A deleted endpoint gets no more retries of what it was owed.
async fn deleted_endpoint_gets_no_more_retries(server: TestServer) {
    let server = server
        .restart_with_webhooks(WebhookSettings {
            retry_schedule: vec![Duration::from_secs(1), Duration::from_secs(1)],
            ..fast()
        })
        .await;
    let receiver = Receiver::answering(Answer::Fail).await;
    let (endpoint_id, _) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    customer(&server, "").await;
    receiver
        .wait_on("/hooks", "the first attempt", |got| !got.is_empty())
        .await;
    server
        .delete(&format!("/v1/webhook_endpoints/{endpoint_id}"))
        .await
        .ok();
    let deleted_at = Instant::now();
    let attempts_then = receiver.on("/hooks").len();
    // The schedule would retry twice within about 3 s.
    let until = deleted_at + Duration::from_secs(4);
    while Instant::now() < until {
        let got = receiver.on("/hooks");
        assert_eq!(
            got.len(),
            attempts_then,
            "a deleted endpoint got a retry {:?} after its deletion: {:?}",
            deleted_at.elapsed(),
            summary(&got)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- 3. flows arrive in Stripe's order ------------------------------------------------

/// Settings that deliver one at a time, so that arrival order is the
/// order deliveries are taken in.
fn one_at_a_time() -> WebhookSettings {
    WebhookSettings {
        concurrency: 1,
        ..fast()
    }
}

/// Waits until `/hooks` received every event the account has, then checks
/// each one's signature and that they arrived in the order `/v1/events`
/// lists them (oldest first); returns their types.
async fn received_in_event_order(
    server: &TestServer,
    receiver: &Receiver,
    secret: &str,
) -> Vec<String> {
    let events = all_events(server).await;
    assert!(!events.is_empty());
    let expected: Vec<String> = events.iter().map(id).collect();
    let got = receiver
        .wait_on("/hooks", "every event", |got| got.len() >= expected.len())
        .await;
    wait_deliveries(server, "every delivery succeeded", |list| {
        list.len() == expected.len() && all_succeeded(list)
    })
    .await;
    for received in &got {
        verify(received, secret);
    }
    let arrived: Vec<String> = got.iter().map(|r| r.event_id().to_owned()).collect();
    let types: Vec<String> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    let arrived_types: Vec<String> = got.iter().map(|r| r.kind().to_owned()).collect();
    assert_eq!(
        arrived, expected,
        "arrival order differs from /v1/events:\n arrived {arrived_types:?}\n recorded {types:?}"
    );
    types
}

fn position(types: &[String], kind: &str) -> usize {
    types
        .iter()
        .position(|t| t == kind)
        .unwrap_or_else(|| panic!("{kind} in {types:?}"))
}

/// Seed 001's SetupIntent flow: customer, SetupIntent confirmed with
/// amazon_pay and a return_url, authorized on the page.
async fn amazon_pay_setup_events_arrive_in_order(server: TestServer) {
    let server = server.restart_with_webhooks(one_at_a_time()).await;
    let receiver = Receiver::answering(Answer::Ok).await;
    let (_, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    let cus = customer(&server, "email=buyer%40example.com").await;
    amazon_pay_with_mandate(&server, &cus).await;

    let types = received_in_event_order(&server, &receiver, &secret).await;
    assert_eq!(types[0], "customer.created");
    assert!(
        position(&types, "setup_intent.created") < position(&types, "setup_intent.requires_action")
    );
    assert!(
        position(&types, "setup_intent.requires_action")
            < position(&types, "setup_intent.succeeded")
    );
    assert!(
        position(&types, "payment_method.attached") < position(&types, "setup_intent.succeeded")
    );
}

/// A setup-mode Checkout Session with Amazon Pay, completed on the page.
async fn checkout_setup_completion_events_arrive_in_order(server: TestServer) {
    let server = server.restart_with_webhooks(one_at_a_time()).await;
    let receiver = Receiver::answering(Answer::Ok).await;
    let (_, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    let cus = customer(&server, "").await;
    let session = server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=setup&payment_method_types[]=amazon_pay&customer={cus}&success_url={}&cancel_url={}",
                enc("https://example.com/success"),
                enc("https://example.com/cancel")
            ),
        )
        .await
        .ok();
    let page = session["url"].as_str().unwrap().to_owned();
    let to_amazon = browser()
        .post(&page)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("payment_method_type=amazon_pay")
        .send()
        .await
        .unwrap();
    assert_eq!(to_amazon.status(), StatusCode::SEE_OTHER);
    let authorize = to_amazon.headers()["location"].to_str().unwrap().to_owned();
    let (status, back, body) = submit(&authorize, "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let done = browser().get(&back).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()["location"], "https://example.com/success");
    let session = server
        .get(&format!("/v1/checkout/sessions/{}", id(&session)))
        .await
        .ok();
    assert_eq!(session["status"], "complete");

    let types = received_in_event_order(&server, &receiver, &secret).await;
    assert_eq!(types[0], "customer.created");
    assert!(position(&types, "setup_intent.created") < position(&types, "setup_intent.succeeded"));
    assert_eq!(
        types.last().unwrap(),
        "checkout.session.completed",
        "{types:?}"
    );
    let completed = receiver
        .on("/hooks")
        .into_iter()
        .find(|r| r.kind() == "checkout.session.completed")
        .unwrap();
    assert_eq!(completed.event["data"]["object"]["id"], session["id"]);
    assert_eq!(completed.event["data"]["object"]["status"], "complete");
}

/// A subscription on the fixtures' monthly price, paid by card at once.
async fn subscription_creation_events_arrive_in_order(server: TestServer) {
    let server = server.restart_with_webhooks(one_at_a_time()).await;
    let receiver = Receiver::answering(Answer::Ok).await;
    let (_, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    let cus = customer(&server, "email=subscriber%40example.com").await;
    let pm = id(&server
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
            &format!("customer={cus}"),
        )
        .await
        .ok());
    server
        .post(
            &format!("/v1/customers/{cus}"),
            &format!("invoice_settings[default_payment_method]={pm}"),
        )
        .await
        .ok();
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={cus}&items[0][price]={MONTHLY_PRICE}"),
        )
        .await
        .ok();
    assert_eq!(sub["status"], "active");

    let types = received_in_event_order(&server, &receiver, &secret).await;
    assert!(
        types.ends_with(
            &[
                "customer.subscription.created",
                "invoice.created",
                "invoice.finalized",
                "payment_intent.created",
                "charge.succeeded",
                "payment_intent.succeeded",
                "invoice_payment.paid",
                "invoice.paid",
                "invoice.payment_succeeded",
            ]
            .map(str::to_owned)
        ),
        "{types:?}"
    );
    let created = receiver
        .on("/hooks")
        .into_iter()
        .find(|r| r.kind() == "customer.subscription.created")
        .unwrap();
    assert_eq!(created.event["data"]["object"]["id"], sub["id"]);
}

// ---- 4. subscriptions to types ----------------------------------------------------------

async fn endpoints_get_only_the_types_they_subscribe_to(server: TestServer) {
    let server = server.restart_with_webhooks(fast()).await;
    let receiver = Receiver::answering(Answer::Ok).await;
    let (_, created_secret) =
        endpoint(&server, &receiver.url("/created"), &["customer.created"]).await;
    let (_, some_secret) = endpoint(
        &server,
        &receiver.url("/some"),
        &["customer.updated", "product.created"],
    )
    .await;
    let (_, all_secret) = endpoint(&server, &receiver.url("/all"), &["*"]).await;

    let cus = customer(&server, "").await;
    server
        .post(&format!("/v1/customers/{cus}"), "name=Renamed")
        .await
        .ok();
    server.post("/v1/products", "name=Widget").await.ok();
    server.post("/v1/customers", "").await.ok();

    let all = receiver
        .wait_on("/all", "every event at *", |got| got.len() >= 4)
        .await;
    wait_deliveries(&server, "4 + 2 + 2 deliveries", |list| {
        list.len() == 8 && all_succeeded(list)
    })
    .await;
    let kinds = |got: &[Received], secret: &str| -> Vec<String> {
        let mut kinds: Vec<String> = got
            .iter()
            .map(|r| verify(r, secret)["type"].as_str().unwrap().to_owned())
            .collect();
        kinds.sort();
        kinds
    };
    assert_eq!(
        kinds(&all, &all_secret),
        [
            "customer.created",
            "customer.created",
            "customer.updated",
            "product.created"
        ]
    );
    assert_eq!(
        kinds(&receiver.on("/created"), &created_secret),
        ["customer.created", "customer.created"]
    );
    assert_eq!(
        kinds(&receiver.on("/some"), &some_secret),
        ["customer.updated", "product.created"]
    );
    // pending_webhooks counted the endpoints each event was owed to.
    let created_events = event_ids(&server, "type=customer.created").await;
    for received in receiver.on("/created") {
        assert!(created_events.contains(&received.event_id().to_owned()));
        let sent = received.event["pending_webhooks"].as_i64().unwrap();
        assert!((1..=2).contains(&sent), "{sent}");
    }
    assert_eq!(
        event_ids(&server, "delivery_success=false").await,
        Vec::<String>::new()
    );
}

// ---- 5. retries and timeouts ------------------------------------------------------------

async fn failing_receiver_is_retried_until_it_succeeds(server: TestServer) {
    let server = server.restart_with_webhooks(fast()).await;
    let receiver = Receiver::start(|_, attempt| {
        if attempt < 2 {
            Answer::Fail
        } else {
            Answer::Ok
        }
    })
    .await;
    let (endpoint_id, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    let cus = customer(&server, "").await;
    let event_id = event_ids(&server, "type=customer.created").await[0].clone();

    // After the first failure: owed, listed as not delivered.
    let pending = wait_deliveries(&server, "a failed first attempt", |list| {
        list.len() == 1 && list[0]["attempt_count"].as_i64() >= Some(1)
    })
    .await;
    if pending[0]["status"] == "pending" {
        let owed = event(&server, &event_id).await;
        assert_eq!(owed["pending_webhooks"], 1, "{owed}");
        assert_eq!(
            event_ids(&server, "delivery_success=false").await,
            vec![event_id.clone()]
        );
        assert_eq!(
            event_ids(&server, "delivery_success=true").await,
            Vec::<String>::new()
        );
        assert!(pending[0]["next_attempt_at"].is_i64(), "{}", pending[0]);
    }

    let list = wait_deliveries(&server, "success on the third attempt", |list| {
        list.len() == 1 && list[0]["status"] == "succeeded"
    })
    .await;
    let delivery = &list[0];
    assert_eq!(delivery["event"], event_id.as_str());
    assert_eq!(delivery["endpoint"], endpoint_id.as_str());
    assert_eq!(delivery["attempt_count"], 3);
    assert_eq!(delivery["last_status_code"], 200);
    assert!(delivery["next_attempt_at"].is_null());
    let log = attempts(delivery);
    let codes: Vec<Value> = log.iter().map(|a| a["status_code"].clone()).collect();
    assert_eq!(codes, [json!(500), json!(500), json!(200)]);
    for (n, attempt) in log.iter().enumerate() {
        assert_eq!(attempt["attempt"], n as i64 + 1);
        let duration = attempt["duration_ms"].as_i64().expect("a duration");
        assert!((0..1000).contains(&duration), "{attempt}");
        assert!(attempt["at"].is_i64());
        assert!(attempt["error"].is_null(), "{attempt}");
    }
    assert_eq!(log[0]["response"], "receiver failed on purpose");
    assert_eq!(log[2]["response"], "received");
    let next_1 = log[0]["next_retry_at"].as_i64().expect("a next retry");
    let next_2 = log[1]["next_retry_at"].as_i64().expect("a next retry");
    assert!(next_1 >= log[0]["at"].as_i64().unwrap());
    assert!(next_2 >= log[1]["at"].as_i64().unwrap());
    assert!(log[2]["next_retry_at"].is_null());

    let got = receiver.on("/hooks");
    assert_eq!(got.len(), 3, "{:?}", summary(&got));
    for received in &got {
        assert_eq!(received.event_id(), event_id);
        let delivered = verify(received, &secret);
        assert_eq!(delivered["pending_webhooks"], 1);
        assert_eq!(delivered["data"]["object"]["id"], cus.as_str());
    }
    // Delivered at last: pending_webhooks 0 and delivery_success=true.
    assert_eq!(event(&server, &event_id).await["pending_webhooks"], 0);
    assert_eq!(
        event_ids(&server, "delivery_success=true").await,
        vec![event_id.clone()]
    );
    assert_eq!(
        event_ids(&server, "delivery_success=false").await,
        Vec::<String>::new()
    );
    assert_nothing_more(&receiver, "/hooks", 3, Duration::from_millis(500)).await;
}

/// A retry comes no sooner than the schedule says. A 1500 ms wait is
/// whole seconds apart from nothing, so a server that rounds the wait to
/// whole seconds retries early.
async fn retry_waits_follow_the_schedule(server: TestServer) {
    let wait = Duration::from_millis(1500);
    let server = server
        .restart_with_webhooks(WebhookSettings {
            retry_schedule: vec![wait],
            ..fast()
        })
        .await;
    let receiver = Receiver::start(|_, attempt| {
        if attempt == 0 {
            Answer::Fail
        } else {
            Answer::Ok
        }
    })
    .await;
    let (_, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    customer(&server, "").await;
    let got = receiver
        .wait_on("/hooks", "the retry", |got| got.len() >= 2)
        .await;
    for received in &got {
        verify(received, &secret);
    }
    let gap = got[1].at - got[0].at;
    assert!(
        gap + Duration::from_millis(50) >= wait,
        "retried {gap:?} after the failure; the schedule says {wait:?}"
    );
}

async fn receiver_that_never_answers_fails_after_the_schedule(server: TestServer) {
    let server = server.restart_with_webhooks(fast()).await;
    let receiver = Receiver::answering(Answer::Hang).await;
    let (_, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    customer(&server, "").await;
    let event_id = event_ids(&server, "type=customer.created").await[0].clone();

    let list = wait_deliveries(&server, "the delivery to give up", |list| {
        list.len() == 1 && list[0]["status"] == "failed"
    })
    .await;
    let delivery = &list[0];
    assert_eq!(delivery["attempt_count"], 3, "{delivery}");
    assert!(delivery["next_attempt_at"].is_null());
    assert!(delivery["last_status_code"].is_null());
    for attempt in attempts(delivery) {
        assert!(attempt["status_code"].is_null(), "{attempt}");
        let error = attempt["error"].as_str().expect("an error");
        assert!(error.contains("timed out"), "{error}");
        let duration = attempt["duration_ms"].as_i64().unwrap();
        assert!((900..5000).contains(&duration), "{attempt}");
    }
    assert!(attempts(delivery)[2]["next_retry_at"].is_null());
    let got = receiver.on("/hooks");
    assert_eq!(got.len(), 3, "{:?}", summary(&got));
    for received in &got {
        verify(received, &secret);
    }
    // Never delivered: still owed, and listed as such.
    assert_eq!(event(&server, &event_id).await["pending_webhooks"], 1);
    assert_eq!(
        event_ids(&server, "delivery_success=false").await,
        vec![event_id.clone()]
    );
    assert_eq!(
        event_ids(&server, "delivery_success=true").await,
        Vec::<String>::new()
    );
    assert_nothing_more(&receiver, "/hooks", 3, Duration::from_millis(1500)).await;
}

// ---- 6. restart mid-retry ------------------------------------------------------------------

/// Five events whose first attempts fail; the server stops while their
/// retries wait; a new server on the same store (SQLite file or Postgres
/// schema) delivers each retry once.
async fn restart_mid_retry_loses_and_duplicates_nothing(server: TestServer) {
    let settings = WebhookSettings {
        retry_schedule: vec![Duration::from_secs(3)],
        ..fast()
    };
    let server = server.restart_with_webhooks(settings.clone()).await;
    let receiver = Receiver::start(|_, attempt| {
        if attempt == 0 {
            Answer::Fail
        } else {
            Answer::Ok
        }
    })
    .await;
    let (_, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    for _ in 0..5 {
        customer(&server, "").await;
    }
    let waiting = wait_deliveries(&server, "five failed first attempts", |list| {
        list.len() == 5
            && list
                .iter()
                .all(|d| d["attempt_count"] == 1 && d["status"] == "pending")
    })
    .await;
    let stopped_at = Instant::now();
    let stopped = server.halt().await;
    let first_round = receiver.on("/hooks");
    assert_eq!(first_round.len(), 5, "{:?}", summary(&first_round));
    assert!(
        stopped_at.elapsed() < Duration::from_secs(2),
        "the stop took {:?}: the retries may have been due",
        stopped_at.elapsed()
    );

    let server = stopped.start_with_webhooks(settings).await;
    let got = receiver
        .wait_on("/hooks", "the five retries", |got| got.len() >= 10)
        .await;
    let list = wait_deliveries(&server, "five succeeded deliveries", |list| {
        list.len() == 5 && all_succeeded(list)
    })
    .await;
    let mut per_event: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for received in &got {
        verify(received, &secret);
        per_event
            .entry(received.event_id().to_owned())
            .or_default()
            .push(received.attempt);
    }
    assert_eq!(per_event.len(), 5, "{per_event:?}");
    assert!(per_event.values().all(|a| a == &[0, 1]), "{per_event:?}");
    let before: HashSet<&Value> = waiting.iter().map(|d| &d["id"]).collect();
    let after: HashSet<&Value> = list.iter().map(|d| &d["id"]).collect();
    assert_eq!(before, after, "the same deliveries, none new");
    for delivery in &list {
        let codes: Vec<Value> = attempts(delivery)
            .iter()
            .map(|a| a["status_code"].clone())
            .collect();
        assert_eq!(codes, [json!(500), json!(200)], "{delivery}");
    }
    assert_eq!(
        event_ids(&server, "delivery_success=false").await,
        Vec::<String>::new()
    );
    assert_nothing_more(&receiver, "/hooks", 10, Duration::from_millis(800)).await;
}

// ---- 7. two servers, one store ---------------------------------------------------------------

/// Two server processes with their own workers on one store: 30 events,
/// each delivered once.
async fn two_servers_deliver_each_event_once(server: TestServer) {
    let settings = WebhookSettings {
        concurrency: 4,
        ..fast()
    };
    let server = server.restart_with_webhooks(settings.clone()).await;
    let other = server.sibling_with_webhooks(settings).await;
    let receiver = Receiver::answering(Answer::Ok).await;
    let (_, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    let mut created = Vec::new();
    for n in 0..30 {
        let target = if n % 2 == 0 { &server } else { &other };
        created.push(customer(target, &format!("name=C{n}")).await);
    }
    let got = receiver
        .wait_on("/hooks", "30 deliveries", |got| got.len() >= 30)
        .await;
    wait_deliveries(&server, "30 succeeded deliveries", |list| {
        list.len() == 30 && all_succeeded(list)
    })
    .await;
    assert_nothing_more(&receiver, "/hooks", 30, Duration::from_millis(800)).await;
    let mut per_event: BTreeMap<String, usize> = BTreeMap::new();
    for received in &got {
        verify(received, &secret);
        *per_event.entry(received.event_id().to_owned()).or_default() += 1;
    }
    assert_eq!(per_event.len(), 30);
    assert!(per_event.values().all(|n| *n == 1), "{per_event:?}");
    let customers: HashSet<String> = got
        .iter()
        .map(|r| r.event["data"]["object"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(customers, created.into_iter().collect::<HashSet<_>>());
    let peers: HashSet<SocketAddr> = got.iter().map(|r| r.peer).collect();
    eprintln!("deliveries came over {} connections", peers.len());
    other.stop().await;
}

// ---- 8. forwarding ------------------------------------------------------------------------------

/// `forward_to` with the default secret: every event of every account, no
/// endpoint registered.
async fn forwarding_delivers_every_account_without_an_endpoint(server: TestServer) {
    let receiver = Receiver::answering(Answer::Ok).await;
    let server = server
        .restart_with_webhooks(WebhookSettings {
            forward_to: Some(receiver.url("/forward")),
            ..fast()
        })
        .await;
    assert_eq!(server.webhooks.forward_secret, DEFAULT_FORWARD_SECRET);
    let other_key = format!("sk_test_forwarding_{}", common::random_suffix());
    let mine = customer(&server, "name=Mine").await;
    let theirs = id(&server
        .post_as(&other_key, "/v1/customers", "name=Theirs")
        .await
        .ok());
    server
        .post_as(
            &other_key,
            &format!("/v1/customers/{theirs}"),
            "name=Theirs2",
        )
        .await
        .ok();

    let got = receiver
        .wait_on("/forward", "three forwarded events", |got| got.len() >= 3)
        .await;
    let mut forwarded = HashSet::new();
    for received in &got {
        let delivered = verify(received, DEFAULT_FORWARD_SECRET);
        forwarded.insert(delivered["id"].as_str().unwrap().to_owned());
    }
    let mut expected: HashSet<String> = event_ids(&server, "").await.into_iter().collect();
    let theirs_events = server.get_as(&other_key, "/v1/events").await.ok();
    expected.extend(theirs_events["data"].as_array().unwrap().iter().map(id));
    assert_eq!(forwarded, expected);
    assert!(
        got.iter()
            .any(|r| r.event["data"]["object"]["id"] == mine.as_str())
    );
    assert!(
        got.iter()
            .any(|r| r.event["data"]["object"]["id"] == theirs.as_str())
    );
    // Each account sees its own forwarded deliveries, with no endpoint.
    let list = wait_deliveries(&server, "my forwarded delivery", |l| {
        l.len() == 1 && all_succeeded(l)
    })
    .await;
    assert!(list[0]["endpoint"].is_null(), "{}", list[0]);
    assert_eq!(list[0]["url"], receiver.url("/forward"));
    let theirs_list = deliveries_as(&server, &other_key).await;
    assert_eq!(theirs_list.len(), 2, "{theirs_list:?}");
    assert_nothing_more(&receiver, "/forward", 3, Duration::from_millis(500)).await;
}

// ---- 9. a hanging receiver ----------------------------------------------------------------------

/// Deliveries hang until the timeout; creating customers meanwhile stays
/// fast, and no more deliveries are in flight than the concurrency allows.
async fn hanging_receiver_does_not_slow_the_api(server: TestServer) {
    let settings = WebhookSettings {
        timeout: Duration::from_secs(4),
        retry_schedule: vec![],
        concurrency: 8,
        ..fast()
    };
    let server = server.restart_with_webhooks(settings).await;
    let receiver = Receiver::answering(Answer::Hang).await;
    endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    customer(&server, "").await;
    // A delivery is hanging before the timed requests start.
    receiver
        .wait_on("/hooks", "a hanging delivery", |got| !got.is_empty())
        .await;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let asked = Instant::now();
        customer(&server, "").await;
        let took = asked.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < Duration::from_millis(1500),
            "a customer create took {took:?} with a hanging receiver (timeout 4 s)"
        );
    }
    let total = started.elapsed();
    eprintln!("20 creates with a hanging receiver: {total:?}, slowest {slowest:?}");
    assert!(total < Duration::from_secs(4), "{total:?}");
    // Bounded: no more than `concurrency` attempts hang at once.
    let in_flight = receiver.on("/hooks").len();
    assert!(
        (2..=8).contains(&in_flight),
        "{in_flight} deliveries in flight"
    );
}

// ---- 10. request and previous_attributes --------------------------------------------------------

async fn events_carry_idempotency_key_and_previous_attributes(server: TestServer) {
    let server = server.restart_with_webhooks(fast()).await;
    let receiver = Receiver::answering(Answer::Ok).await;
    let (_, secret) = endpoint(&server, &receiver.url("/hooks"), &["*"]).await;
    let created = server
        .call(
            Method::POST,
            "/v1/customers",
            Some(KEY),
            "name=Before&email=before%40example.com",
            &[("idempotency-key", "create-customer-1")],
        )
        .await
        .ok();
    let cus = id(&created);
    server
        .call(
            Method::POST,
            &format!("/v1/customers/{cus}"),
            Some(KEY),
            "name=After&metadata[tier]=gold",
            &[("idempotency-key", "update-customer-1")],
        )
        .await
        .ok();
    server
        .post(&format!("/v1/customers/{cus}"), "email=after%40example.com")
        .await
        .ok();

    let got = receiver
        .wait_on("/hooks", "three events", |got| got.len() >= 3)
        .await;
    let by_key = |key: Option<&str>| -> Vec<Value> {
        got.iter()
            .map(|r| verify(r, &secret))
            .filter(|e| e["request"]["idempotency_key"].as_str() == key)
            .collect()
    };
    let with_create = by_key(Some("create-customer-1"));
    assert_eq!(with_create.len(), 1);
    assert_eq!(with_create[0]["type"], "customer.created");
    assert!(
        with_create[0]["request"]["id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_")),
        "{}",
        with_create[0]
    );
    assert!(with_create[0]["data"].get("previous_attributes").is_none());
    let with_update = by_key(Some("update-customer-1"));
    assert_eq!(with_update.len(), 1);
    assert_eq!(with_update[0]["type"], "customer.updated");
    assert_eq!(with_update[0]["data"]["object"]["name"], "After");
    assert_eq!(
        with_update[0]["data"]["previous_attributes"],
        json!({"name": "Before", "metadata": {"tier": null}})
    );
    let without = by_key(None);
    assert_eq!(without.len(), 1);
    assert_eq!(without[0]["type"], "customer.updated");
    assert!(without[0]["request"]["idempotency_key"].is_null());
    assert_eq!(
        without[0]["data"]["previous_attributes"],
        json!({"email": "before@example.com"})
    );
}
