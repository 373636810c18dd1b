//! The application: the route table, the layers every request passes, the
//! public ways to make a server's state, and serving with its workers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header::CONTENT_TYPE};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::timeout::TimeoutLayer;

use crate::core::registry::Registry;
use crate::fixtures::Fixtures;
use crate::http::api::{API_VERSION, AppState};
use crate::http::error::ApiError;
use crate::http::{form, idempotency, not_emulated, stripe_operations, unit_of_work};
use crate::pages::{authorize as authorize_page, checkout as checkout_page};
use crate::resources::billing::{invoices, subscriptions, test_clocks};
use crate::resources::catalog::{prices, products};
use crate::resources::checkout::sessions as checkout_sessions;
use crate::resources::payments::{
    balance_transactions, charges, mandates, payment_intents, payment_methods, refunds,
    setup_intents,
};
use crate::resources::{customers, events, webhook_endpoints};
use crate::store::Store;
use crate::webhooks::WebhookSettings;
use crate::{clock, control, ids, resources, scheduler, serve as serving, webhooks};

/// The public ways to make a server's state: each serves the resources'
/// object types ([`resources::REGISTRY`]).
impl AppState {
    /// A server whose accounts start empty.
    pub fn new(store: Arc<dyn Store>, public_url: Option<String>) -> Self {
        Self::with_fixtures(store, public_url, Fixtures::none())
    }

    /// A server whose every account starts with its own copy of `fixtures`.
    pub fn with_fixtures(
        store: Arc<dyn Store>,
        public_url: Option<String>,
        fixtures: Fixtures,
    ) -> Self {
        Self::build(store, public_url, fixtures, WebhookSettings::default())
    }

    /// A server with its fixtures and its webhook delivery settings.
    pub fn build(
        store: Arc<dyn Store>,
        public_url: Option<String>,
        fixtures: Fixtures,
        webhooks: WebhookSettings,
    ) -> Self {
        Self::assemble(registry(), store, public_url, fixtures, webhooks)
    }
}

fn registry() -> &'static Registry {
    &resources::REGISTRY
}

const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

/// The whole application: every resource's router behind the shared layers.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(customers::router())
        .merge(events::router())
        .merge(payment_methods::router())
        .merge(setup_intents::router())
        .merge(mandates::router())
        .merge(payment_intents::router())
        .merge(charges::router())
        .merge(refunds::router())
        .merge(balance_transactions::router())
        .merge(invoices::router())
        .merge(subscriptions::router())
        .merge(test_clocks::router())
        .merge(products::router())
        .merge(prices::router())
        .merge(checkout_sessions::router())
        .merge(webhook_endpoints::router())
        .merge(control::router())
        // Inside the unit of work: a panic is a 5xx it does not commit.
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            unit_of_work::run,
        ))
        .layer(middleware::from_fn(not_emulated::refuse_stripe_account));
    Router::new()
        .merge(api)
        .merge(authorize_page::router())
        .merge(checkout_page::router())
        .route("/healthz", get(healthz))
        .fallback(stripe_operations::unrecognized)
        .method_not_allowed_fallback(stripe_operations::unrecognized)
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::Internal("a handler panicked".into()).into_response()
                }))
                .layer(middleware::from_fn(assign_request_id))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(cors())
                .layer(middleware::from_fn(stripe_headers))
                .layer(middleware::from_fn(refuse_undecodable_paths))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    state.limits().request,
                )),
        )
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then
/// finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        state.listening_on(address);
    }
    let (stop_workers, stopped) = tokio::sync::watch::channel(false);
    // Owned by this future: dropping it (a kill) ends them with the server.
    let mut workers = tokio::task::JoinSet::new();
    workers.spawn(webhooks::run(
        state.store_handle(),
        state.webhooks().clone(),
        state.webhook_wake(),
        stopped.clone(),
    ));
    workers.spawn(scheduler::run(state.clone(), due_kinds(), stopped));
    let header_timeout = state.limits().header;
    let served = serving::accept_loop(listener, app(state), header_timeout, shutdown).await;
    // The workers go with the server; what they still owe stays in the store.
    let _ = stop_workers.send(true);
    while workers.join_next().await.is_some() {}
    served
}

/// The kinds of due work and what runs them: resources register theirs
/// here, so the scheduler depends on none of them.
fn due_kinds() -> scheduler::Kinds {
    const HOURLY: Duration = Duration::from_secs(3600);
    scheduler::Kinds::default()
        .on(
            checkout_sessions::EXPIRY_KIND,
            checkout_sessions::expire_when_due,
        )
        .on(
            balance_transactions::AVAILABLE_KIND,
            balance_transactions::make_available,
        )
        .on(refunds::SETTLE_KIND, refunds::settle_when_due)
        .on(subscriptions::RENEWAL_KIND, subscriptions::renew_when_due)
        .on(
            subscriptions::TRIAL_WILL_END_KIND,
            subscriptions::warn_trial_end,
        )
        .on(
            subscriptions::UPCOMING_KIND,
            subscriptions::announce_upcoming,
        )
        .on(
            subscriptions::INCOMPLETE_EXPIRY_KIND,
            subscriptions::expire_incomplete,
        )
        .on(
            subscriptions::FINALIZATION_KIND,
            subscriptions::finalize_when_due,
        )
        .on(subscriptions::RETRY_KIND, subscriptions::retry_when_due)
        .on(subscriptions::OVERDUE_KIND, subscriptions::overdue_when_due)
        .advancing(test_clocks::ADVANCE_KIND, test_clocks::finish_advance)
        .every(webhooks::RETENTION_KIND, HOURLY, webhooks::purge_old_events)
        .every(idempotency::RETENTION_KIND, HOURLY, |_, _| async {
            Ok(idempotency::purge_old_keys())
        })
}

/// Every request gets a `Request-Id` of ours; one the client sent is
/// replaced, as Stripe's request ids are its own. Each request then gets
/// one log line: method, path (never the query, which may hold a key),
/// status, duration and that id.
async fn assign_request_id(mut request: Request, next: Next) -> Response {
    let started = clock::Stopwatch::start();
    let id = format!("req_{}", ids::random_base62(14));
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        target: "stripe_twin::request",
        "{method} {path} {} {}ms {id}",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// Browsers (Stripe.js-style callers, hosted pages' tests) may call the API.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers([
            REQUEST_ID,
            HeaderName::from_static("stripe-version"),
            HeaderName::from_static("idempotent-replayed"),
            HeaderName::from_static("original-request"),
            HeaderName::from_static("stripe-should-retry"),
            HeaderName::from_static("stripe-twin-unsupported"),
        ])
        .max_age(Duration::from_secs(600))
}

/// `Stripe-Version` echoes the request's, else the emulated version; a
/// timeout's bare 408 becomes a Stripe error body.
async fn stripe_headers(request: Request, next: Next) -> Response {
    let version = request
        .headers()
        .get("stripe-version")
        .cloned()
        .unwrap_or(HeaderValue::from_static(API_VERSION));
    let mut response = next.run(request).await;
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && !response.headers().contains_key(CONTENT_TYPE)
    {
        response = ApiError::Unavailable {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "stripe-twin did not finish this request in time (its database may be unreachable); retry the request.".to_owned(),
        }
        .into_response();
    }
    response.headers_mut().insert("stripe-version", version);
    response
}

/// A path whose percent-escapes are not UTF-8 (`/v1/customers/%ff%fe`)
/// names no object: Stripe's JSON 404, not the router's plain-text 400.
async fn refuse_undecodable_paths(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.split('/').collect();
    let decoded: Vec<Option<Vec<u8>>> = segments
        .iter()
        .map(|s| form::percent_bytes(s.as_bytes(), false).ok())
        .collect();
    let Some(bad) = decoded
        .iter()
        .position(|d| d.as_ref().is_some_and(|b| std::str::from_utf8(b).is_err()))
    else {
        return next.run(request).await;
    };
    let kind = match segments[..bad] {
        [] => "object".to_owned(),
        ref listed => {
            let url = listed.join("/");
            match registry().listed_at(&url) {
                Some(spec) => spec.display_name.to_owned(),
                None => {
                    let last = listed.last().copied().unwrap_or_default();
                    last.strip_suffix('s').unwrap_or(last).to_owned()
                }
            }
        }
    };
    let id = String::from_utf8_lossy(decoded[bad].as_deref().unwrap_or_default()).into_owned();
    ApiError::no_such(&kind, &id, "id").into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store().ping().await {
        Ok(()) => axum::Json(json!({"status": "ok", "store": state.store().backend()})).into_response(),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "store": state.store().backend(), "error": err.to_string()})),
        )
            .into_response(),
    }
}
