//! Webhook delivery: every committed event is matched to the account's
//! enabled endpoints (and to the forwarding URL, when one is set) and POSTed
//! there, signed as Stripe signs it, by a background worker the app owns.
//!
//! Deliveries live in the store, so a restart resumes them and several
//! server processes on one Postgres share the work without doing any
//! attempt twice (the store claims rows with `FOR UPDATE SKIP LOCKED` and a
//! lease). Requests never wait for a delivery.

use std::sync::Arc;

use crate::clock::Stopwatch;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{Notify, OnceCell, watch};
use tokio::task::JoinSet;

use crate::core::bookkeeping::Bookkeeping;
use crate::http::ctx::Ctx;
use crate::http::error::ApiResult;
use crate::ids;
use crate::store::{Delivery, DueItem, Purge, Record, Store, Write};

pub mod settings;
pub use settings::{
    DEFAULT_FORWARD_SECRET, DEFAULT_RETRY_SCHEDULE, WebhookSettings, parse_duration, parse_schedule,
};

/// Stripe keeps events for 30 days.
pub const EVENT_RETENTION: i64 = 30 * 24 * 60 * 60;
/// The periodic due item that forgets older events.
pub const RETENTION_KIND: &str = "sweep_events";
const USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";
/// How much of a receiver's answer an attempt keeps.
const RESPONSE_SNIPPET: usize = 1024;

/// `Stripe-Signature` for `body` sent at `timestamp`: HMAC-SHA256 of
/// `"{timestamp}.{body}"` keyed by the whole `whsec_…` secret, as Stripe's
/// SDKs verify it.
pub fn signature_header(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Whether an endpoint wants this event: enabled, subscribed to its type
/// (or `*`), and existing when it happened (stored before it: timestamps
/// are too coarse to tell).
fn wants(endpoint: &Record, event: &Record) -> bool {
    let kind = event.data["type"].as_str().unwrap_or_default();
    let endpoint_doc = &endpoint.data;
    endpoint_doc["status"] == "enabled"
        && endpoint.seq < event.seq
        && endpoint_doc["enabled_events"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "*" || t == kind))
}

/// The retention sweep (a periodic due item): events older than Stripe
/// keeps them go, with their deliveries.
pub async fn purge_old_events(ctx: Ctx, _: DueItem) -> ApiResult<Vec<Write>> {
    let before = ctx.now() - EVENT_RETENTION;
    Ok(vec![Write::Purge(Purge::Events { before })])
}

/// Delivery times are in milliseconds: retry schedules go below a second.
use crate::clock::wall_ms as now_ms;

fn new_delivery(account: &str, event: &Record, target: Value) -> Delivery {
    Delivery {
        id: ids::new_id("whdel"),
        account: account.to_owned(),
        event_id: event.id.clone(),
        status: "pending".to_owned(),
        next_attempt_at: Some(now_ms()),
        created: event.created,
        data: target,
    }
}

/// The deliveries an event gets: one per endpoint that wants it, plus the
/// forwarding URL.
fn plan(
    settings: &WebhookSettings,
    account: &str,
    event: &Record,
    endpoints: &[Record],
) -> Vec<Delivery> {
    let mut deliveries: Vec<Delivery> = endpoints
        .iter()
        .filter(|endpoint| wants(endpoint, event))
        .map(|endpoint| {
            new_delivery(
                account,
                event,
                json!({
                    "endpoint": endpoint.id,
                    "url": endpoint.data["url"],
                    "attempts": [],
                }),
            )
        })
        .collect();
    if let Some(url) = &settings.forward_to {
        deliveries.push(new_delivery(
            account,
            event,
            json!({"endpoint": null, "url": url, "secret": settings.forward_secret, "attempts": []}),
        ));
    }
    deliveries
}

/// Runs the delivery worker until `stop` turns true, then lets the attempts
/// in flight finish (each is bounded by the timeout): one task matches new
/// events to endpoints, and `concurrency` slot tasks each claim and deliver
/// one delivery at a time, back to back while any is due.
pub async fn run(
    store: Arc<dyn Store>,
    settings: WebhookSettings,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let client = Arc::new(OnceCell::new());
    let settings = Arc::new(settings);
    let work = Arc::new(Notify::new());
    let mut slots = JoinSet::new();
    for _ in 0..settings.concurrency.max(1) {
        slots.spawn(deliver_while_due(
            store.clone(),
            client.clone(),
            settings.clone(),
            work.clone(),
            stop.clone(),
        ));
    }
    let fan_settings = settings.clone();
    let fan = move |account: &str, event: &Record, endpoints: &[Record]| {
        plan(&fan_settings, account, event, endpoints)
    };
    loop {
        let mut matched = 0;
        while let Ok(taken) = store.fan_out(100, &fan).await {
            matched += taken;
            if taken < 100 {
                break;
            }
        }
        if matched > 0 {
            work.notify_waiters();
        } else {
            // One slot looks for due retries; it wakes another if it found one.
            work.notify_one();
        }
        // Woken at once by this process's commits; the poll finds the
        // events other processes wrote.
        tokio::select! {
            _ = tokio::time::sleep(settings.poll_interval) => {}
            _ = wake.notified() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
    }
    while slots.join_next().await.is_some() {}
}

/// One delivery slot: claims a due delivery, attempts it, and goes on
/// while there are more; otherwise waits until new work is announced.
async fn deliver_while_due(
    store: Arc<dyn Store>,
    client: Arc<OnceCell<reqwest::Client>>,
    settings: Arc<WebhookSettings>,
    work: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    // A lease longer than any attempt: a claim held by a live process never
    // runs out mid-attempt, one held by a dead process does.
    let lease = settings.timeout.as_millis() as i64 + 60_000;
    while !*stop.borrow() {
        // Listen before looking, so work announced meanwhile is not missed.
        let announced = work.notified();
        tokio::pin!(announced);
        announced.as_mut().enable();
        let now = now_ms();
        match store.claim_deliveries(now, now + lease, 1).await {
            Ok(claimed) if !claimed.is_empty() => {
                // There may be more: let another slot look meanwhile.
                work.notify_one();
                for delivery in claimed {
                    let Some(client) = http_client(&client, &settings).await else {
                        // The lease frees the claim for a later try.
                        break;
                    };
                    attempt(store.as_ref(), client, &settings, delivery).await;
                }
                continue;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!("webhooks: claiming deliveries failed: {err}"),
        }
        tokio::select! {
            _ = &mut announced => {}
            _ = stop.changed() => {}
        }
    }
}

/// The worker's HTTP client, made on first use: loading the TLS roots
/// costs memory a server without webhooks never needs.
async fn http_client<'a>(
    cell: &'a OnceCell<reqwest::Client>,
    settings: &WebhookSettings,
) -> Option<&'a reqwest::Client> {
    let made = cell
        .get_or_try_init(|| async {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .tcp_nodelay(true)
                .timeout(settings.timeout)
                .build()
        })
        .await;
    match made {
        Ok(client) => Some(client),
        Err(err) => {
            tracing::error!("webhooks: no HTTP client: {err}");
            None
        }
    }
}

/// One attempt at one delivery, recorded whatever happens.
async fn attempt(
    store: &dyn Store,
    client: &reqwest::Client,
    settings: &WebhookSettings,
    mut delivery: Delivery,
) {
    let event = match store.get(&delivery.account, &delivery.event_id).await {
        Ok(event) => event,
        Err(err) => {
            // Try again when the store answers; the lease frees the claim.
            tracing::warn!("webhooks: loading {} failed: {err}", delivery.event_id);
            return;
        }
    };
    let Some(event) = event else {
        delivery.status = "failed".to_owned();
        delivery.next_attempt_at = None;
        let _ = store.record_attempt(&delivery, false).await;
        return;
    };
    let Some(secret) = follow_endpoint(store, &mut delivery).await else {
        return;
    };
    let body = serde_json::to_string_pretty(&event.data).unwrap_or_default();
    let url = delivery.data["url"].as_str().unwrap_or_default().to_owned();
    let secret = secret.as_str().unwrap_or_default().to_owned();
    let sent_at = crate::clock::wall();
    let started = Stopwatch::start();
    let (status_code, response, error) = send(client, settings, &url, &secret, sent_at, body).await;
    let duration_ms = started.elapsed().as_millis() as i64;
    let succeeded = status_code.is_some_and(|s| (200..300).contains(&s));
    let attempts = delivery.data["attempts"].as_array().map_or(0, Vec::len);
    let next = if succeeded {
        None
    } else {
        settings
            .retry_schedule
            .get(attempts)
            .map(|wait| now_ms() + wait.as_millis() as i64)
    };
    delivery.status = match (succeeded, next) {
        (true, _) => "succeeded",
        (false, Some(_)) => "pending",
        (false, None) => "failed",
    }
    .to_owned();
    delivery.next_attempt_at = next;
    if !succeeded {
        let why = status_code.map_or_else(
            || error.clone().unwrap_or_default(),
            |s| format!("status {s}"),
        );
        warn_failed_attempt(&delivery.event_id, &url, attempts + 1, &why, next);
    }
    let log = json!({
        "attempt": attempts + 1,
        "at": sent_at,
        "status_code": status_code,
        "duration_ms": duration_ms,
        "response": response,
        "error": error,
        "next_retry_at": next.map(|ms| ms / 1000),
    });
    if let Some(list) = delivery.data["attempts"].as_array_mut() {
        list.push(log);
    } else {
        delivery.data["attempts"] = json!([log]);
    }
    if let Err(err) = store.record_attempt(&delivery, succeeded).await {
        tracing::warn!(
            "webhooks: recording an attempt at {} failed: {err}",
            delivery.id
        );
    }
}

/// The secret to sign with, the delivery pointed at its endpoint's current
/// URL; None when there is nothing to send now.
async fn follow_endpoint(store: &dyn Store, delivery: &mut Delivery) -> Option<Value> {
    // An endpoint's retries follow it: none once it is deleted or
    // disabled, to its current URL and secret otherwise (the forwarding
    // URL's delivery carries its own).
    let mut secret = delivery.data["secret"].clone();
    if let Some(endpoint_id) = delivery.data["endpoint"].as_str().map(str::to_owned) {
        match store.get(&delivery.account, &endpoint_id).await {
            Ok(Some(endpoint)) if !endpoint.deleted && endpoint.data["status"] == "enabled" => {
                delivery.data["url"] = endpoint.data["url"].clone();
                secret = json!(Bookkeeping::of(&endpoint.data).secret);
            }
            Ok(_) => {
                delivery.status = "failed".to_owned();
                delivery.next_attempt_at = None;
                delivery.data["canceled"] = json!("the endpoint was deleted or disabled");
                let _ = store.record_attempt(delivery, false).await;
                return None;
            }
            Err(err) => {
                tracing::warn!("webhooks: loading {endpoint_id} failed: {err}");
                return None;
            }
        }
    }
    Some(secret)
}

/// Posts the signed event; the answer's status and the start of its body,
/// or why there was none.
async fn send(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    url: &str,
    secret: &str,
    sent_at: i64,
    body: String,
) -> (Option<u16>, String, Option<String>) {
    let result = client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", USER_AGENT)
        .header("stripe-signature", signature_header(secret, sent_at, &body))
        .body(body)
        .send()
        .await;
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let snippet: String = text.chars().take(RESPONSE_SNIPPET).collect();
            (Some(status), snippet, None)
        }
        Err(err) => {
            let why = if err.is_timeout() {
                format!("timed out after {:?}", settings.timeout)
            } else {
                format!("{err}")
            };
            (None, String::new(), Some(why))
        }
    }
}

/// The operator's line for a failed attempt: which event, where, why, and
/// whether another try follows.
fn warn_failed_attempt(event_id: &str, url: &str, attempt: usize, why: &str, next: Option<i64>) {
    let then = match next {
        Some(at) => format!("next try in {} ms", (at - now_ms()).max(0)),
        None => "no more tries".to_owned(),
    };
    tracing::warn!(
        "webhooks: delivering {event_id} to {url} failed (attempt {attempt}: {why}); {then}"
    );
}

/// A delivery as `GET /_config/webhook_deliveries` shows it (no secret).
pub fn delivery_view(delivery: &Delivery) -> Value {
    let attempts = delivery.data["attempts"].clone();
    let last = attempts.as_array().and_then(|a| a.last()).cloned();
    json!({
        "id": delivery.id,
        "object": "webhook_delivery",
        "event": delivery.event_id,
        "endpoint": delivery.data["endpoint"],
        "url": delivery.data["url"],
        "status": delivery.status,
        "attempt_count": attempts.as_array().map_or(0, Vec::len),
        "last_status_code": last.as_ref().map(|l| l["status_code"].clone()),
        "last_duration_ms": last.as_ref().map(|l| l["duration_ms"].clone()),
        "last_response": last.as_ref().map(|l| l["response"].clone()),
        "last_error": last.as_ref().map(|l| l["error"].clone()),
        "next_attempt_at": delivery.next_attempt_at.map(|ms| ms / 1000),
        "canceled": delivery.data["canceled"],
        "attempts": attempts,
        "created": delivery.created,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn schedules_parse() {
        assert_eq!(
            parse_schedule("1s, 2s,5m,1h,250ms").unwrap(),
            vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(300),
                Duration::from_secs(3600),
                Duration::from_millis(250)
            ]
        );
        assert!(parse_schedule("1").is_err());
        assert!(parse_schedule("1d").is_err());
        assert!(parse_schedule("s").is_err());
        assert_eq!(parse_schedule("").unwrap(), vec![]);
    }

    #[test]
    fn signature_matches_stripe_scheme() {
        // Python: hmac.new(b"whsec_test", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature_header("whsec_test", 1_700_000_000, "{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn endpoints_get_what_they_subscribe_to() {
        let record = |seq: i64, data: Value| Record {
            seq,
            ..Record::new("x", data)
        };
        let event = record(10, json!({"type": "invoice.paid"}));
        let endpoint = |types: Value, status: &str, seq: i64| {
            record(seq, json!({"enabled_events": types, "status": status}))
        };
        assert!(wants(&endpoint(json!(["*"]), "enabled", 9), &event));
        assert!(wants(
            &endpoint(json!(["invoice.paid"]), "enabled", 5),
            &event
        ));
        assert!(!wants(
            &endpoint(json!(["invoice.created"]), "enabled", 5),
            &event
        ));
        assert!(!wants(&endpoint(json!(["*"]), "disabled", 5), &event));
        // Stored after the event: it did not exist when the event happened.
        assert!(!wants(&endpoint(json!(["*"]), "enabled", 11), &event));
    }
}
