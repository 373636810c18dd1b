//! `/_config`: stripe-twin's own endpoints, not Stripe's: resetting an
//! account to its starting state, reading its webhook deliveries, the
//! billing settings Stripe keeps in its Dashboard, and what buyers do
//! outside Stripe (closing an Amazon Pay charge permission).

mod amazon_pay;

use axum::routing::{delete, get, post};

use crate::core::billing_settings::{AfterRetries, Retries};
use crate::resources::billing::settings;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::fixtures;
use crate::http::api::{AppState, Call};
use crate::http::error::{ApiError, ApiResult};
use crate::webhooks;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/_config/data", delete(wipe_account_data))
        .route("/_config/webhook_deliveries", get(list_webhook_deliveries))
        .route(
            "/_config/billing",
            get(retrieve_billing_settings).post(update_billing_settings),
        )
        .route(
            "/_config/customers/{customer}/amazon_pay/close_charge_permission",
            post(amazon_pay::close_charge_permission),
        )
}

/// `GET /_config/billing`: the caller's billing settings.
async fn retrieve_billing_settings(Call { ctx, params }: Call) -> ApiResult<Json<Value>> {
    params.finish()?;
    Ok(Json(settings::for_account(&ctx).await?.to_json()))
}

/// `POST /_config/billing`: changes the caller's billing settings (what
/// Stripe's Dashboard sets: retries, the end of retries, renewal notices).
async fn update_billing_settings(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let mut changed = settings::for_account(&ctx).await?;
    if let Some(text) = params.string("retry_schedule")? {
        changed.retries =
            Retries::parse(&text).map_err(|why| ApiError::invalid_param("retry_schedule", why))?;
    }
    if let Some(text) = params.enum_value("after_retries", &["cancel", "unpaid", "past_due"])? {
        changed.after_retries = AfterRetries::parse(&text)
            .map_err(|why| ApiError::invalid_param("after_retries", why))?;
    }
    if let Some(hours) = params.int("incomplete_expires_after_hours")? {
        if !(1..=720).contains(&hours) {
            return Err(ApiError::invalid_param(
                "incomplete_expires_after_hours",
                "Must be between 1 and 720 hours.",
            ));
        }
        changed.incomplete_hours = hours;
    }
    if let Some(days) = params.int("upcoming_renewal_days")? {
        if !(0..=60).contains(&days) {
            return Err(ApiError::invalid_param(
                "upcoming_renewal_days",
                "Must be between 0 and 60 days (0: no invoice.upcoming).",
            ));
        }
        changed.upcoming_days = days;
    }
    if let Some(limits) = params.enum_value("test_clock_limits", &["stripe", "none"])? {
        changed.test_clock_limits = limits == "stripe";
    }
    params.finish()?;
    settings::store(&ctx, &changed).await?;
    Ok(Json(changed.to_json()))
}

/// `DELETE /_config/data`: forgets every object of the caller's account,
/// then gives it a fresh copy of the fixtures: the account's starting state.
async fn wipe_account_data(Call { ctx, params }: Call) -> ApiResult<Json<Value>> {
    params.finish()?;
    // The fixtures marker is bookkeeping, not one of the caller's objects.
    let marker = ctx.get(fixtures::MARKER_ID).await?.is_some();
    let removed = ctx.store().wipe_account(&ctx.account).await?;
    ctx.state.reseed(&ctx.account).await?;
    Ok(Json(json!({
        "object": "account_data",
        "deleted": true,
        "objects_removed": removed.saturating_sub(u64::from(marker)),
        "fixtures_restored": ctx.state.fixtures().len(),
    })))
}

/// `GET /_config/webhook_deliveries`: the caller's webhook deliveries,
/// newest first, each with its attempts (status code, duration, the
/// receiver's answer, the next retry).
async fn list_webhook_deliveries(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let limit = params.int("limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_param(
            "limit",
            format!("Invalid limit: must be between 1 and 1000 (you sent {limit})"),
        ));
    }
    params.finish()?;
    let deliveries = ctx.store().list_deliveries(&ctx.account, limit).await?;
    Ok(Json(json!({
        "object": "list",
        "data": deliveries.iter().map(webhooks::delivery_view).collect::<Vec<_>>(),
        "url": "/_config/webhook_deliveries",
    })))
}
