//! stripe-twin: a stateful, Stripe-compatible API server for test suites.
//!
//! [`app`] builds the whole HTTP application from an [`AppState`];
//! [`serve`] runs it on a listener until a shutdown signal.

// Stripe objects are large JSON literals.
#![recursion_limit = "256"]

pub mod api;
pub mod auth;
pub mod authorize_page;
pub mod charges;
pub mod checkout_page;
pub mod checkout_sessions;
pub mod config;
pub mod customers;
pub mod error;
pub mod event_types;
pub mod events;
pub mod expand;
pub mod fixtures;
pub mod form;
pub mod idempotency;
pub mod ids;
pub mod intents;
pub mod invoices;
pub mod mandates;
pub mod not_emulated;
pub mod pages;
pub mod params;
pub mod payment_intents;
pub mod payment_methods;
pub mod prices;
pub mod products;
pub mod search;
pub mod setup_intents;
pub mod store;
pub mod stripe_operations;
pub mod subscriptions;
pub mod test_cards;
pub mod webhook_endpoints;
pub mod webhooks;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header::CONTENT_TYPE};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use api::Call;
pub use api::{API_VERSION, AppState};
use error::{ApiError, ApiResult};

const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
        .merge(invoices::router())
        .merge(subscriptions::router())
        .merge(products::router())
        .merge(prices::router())
        .merge(checkout_sessions::router())
        .merge(webhook_endpoints::router())
        .route("/_config/data", delete(wipe_account_data))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
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
                .layer(SetRequestIdLayer::new(REQUEST_ID, StripeRequestId))
                .layer(TraceLayer::new_for_http())
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(cors())
                .layer(middleware::from_fn(stripe_headers))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    REQUEST_TIMEOUT,
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
    let (stop_worker, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(webhooks::run(
        state.store_handle(),
        state.webhooks().clone(),
        state.webhook_wake(),
        stopped,
    ));
    let app = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    // The worker goes with the server; what it still owes stays in the store.
    let _ = stop_worker.send(true);
    let _ = worker.await;
    served
}

#[derive(Clone, Copy)]
struct StripeRequestId;

impl MakeRequestId for StripeRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&format!("req_{}", ids::random_base62(14)))
            .ok()
            .map(RequestId::new)
    }
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
        response = ApiError::Internal("the request timed out".into()).into_response();
    }
    response.headers_mut().insert("stripe-version", version);
    response
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

/// `DELETE /_config/data`: forgets every object of the caller's account,
/// then gives it a fresh copy of the fixtures: the account's starting state.
async fn wipe_account_data(Call { ctx, params }: Call) -> ApiResult<axum::Json<serde_json::Value>> {
    params.finish()?;
    // The fixtures marker is bookkeeping, not one of the caller's objects.
    let marker = ctx
        .store()
        .get(&ctx.account, fixtures::MARKER_ID)
        .await?
        .is_some();
    let removed = ctx.store().wipe_account(&ctx.account).await?;
    ctx.state.reseed(&ctx.account).await?;
    Ok(axum::Json(json!({
        "object": "account_data",
        "deleted": true,
        "objects_removed": removed.saturating_sub(u64::from(marker)),
        "fixtures_restored": ctx.state.fixtures().len(),
    })))
}
