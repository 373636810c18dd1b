//! `/_config`: stripe-twin's own endpoints, not Stripe's: resetting an
//! account to its starting state and reading its webhook deliveries.

use axum::routing::{delete, get};
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
