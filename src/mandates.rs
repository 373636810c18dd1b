//! `/v1/mandates/{id}`: the record of a customer's permission to charge a
//! payment method later, created when a SetupIntent succeeds.

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::api::{AppState, Call};
use crate::error::ApiResult;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/mandates/{mandate}", get(retrieve_mandate))
}

async fn retrieve_mandate(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load("mandate", &id, "mandate").await?;
    ctx.respond(record.data).await
}
