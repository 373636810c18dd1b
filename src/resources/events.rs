//! `/v1/events`: the record of every change, written in the same
//! transaction as the change itself (see `Ctx::event`).

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::http::api::{AppState, Call, ListParams};
use crate::http::error::{ApiError, ApiResult};
use crate::store::{Filter, ListQuery, Range};
use crate::webhooks::EVENT_RETENTION;

pub use crate::core::event_types::SPEC;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list_events))
        .route("/v1/events/{id}", get(retrieve_event))
}

async fn retrieve_event(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load("event", &id, "id").await?;
    ctx.respond(record.data).await
}

async fn list_events(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let mut paging = ListParams::take(&mut params)?;
    let kind = params.string("type")?;
    let kinds = params.string_list("types")?;
    let delivered = params.bool("delivery_success")?;
    params.finish()?;
    let mut query = ListQuery::new("event");
    match delivered {
        // Every endpoint got it (or none was owed it).
        Some(true) => query
            .filters
            .push(Filter::Field("pending_webhooks", vec![json!(0)])),
        // Still owed to some endpoint: pending retries or given up.
        Some(false) => query.filters.push(Filter::FieldRange(
            "pending_webhooks",
            Range {
                gt: Some(0),
                ..Range::default()
            },
        )),
        None => {}
    }
    // Stripe keeps events for 30 days; older ones are purged by an hourly
    // due item (see `webhooks::purge_old_events`), and hidden here until then.
    let oldest = ctx.now() - EVENT_RETENTION;
    paging.created.gte = Some(paging.created.gte.map_or(oldest, |gte| gte.max(oldest)));
    match (kind, kinds) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: type, types.",
            )
            .with_code("parameters_exclusive")
            .with_param("types"));
        }
        (Some(kind), None) => match kind.strip_suffix('*') {
            Some(prefix) => query
                .filters
                .push(Filter::FieldPrefix("type", prefix.to_owned())),
            None => query.filters.push(Filter::Field("type", vec![json!(kind)])),
        },
        (None, Some(kinds)) => {
            if kinds.len() > 20 {
                return Err(ApiError::invalid_param(
                    "types",
                    "Invalid types: you may pass at most 20 event types.",
                ));
            }
            query.filters.push(Filter::Field(
                "type",
                kinds.into_iter().map(Value::String).collect(),
            ));
        }
        (None, None) => {}
    }
    ctx.list(query, &paging, "/v1/events").await
}
