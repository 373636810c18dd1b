//! `/v1/webhook_endpoints`: create, retrieve, update, delete and list the
//! URLs events are delivered to (see `webhooks.rs`). The signing secret is
//! shown on create only, as Stripe does. `GET /_config/webhook_deliveries`
//! shows what was delivered to them.

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::bookkeeping;
use crate::core::event_types;
use crate::core::registry::ObjectSpec;
use crate::http::api::{AppState, Call, ListParams};
use crate::http::error::{ApiError, ApiResult};
use crate::http::params::{Params, Patch, Update};
use crate::ids;
use crate::resources::payments::intents;
use crate::store::{ListQuery, Record, Write};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/webhook_endpoints",
            get(list_webhook_endpoints).post(create_webhook_endpoint),
        )
        .route(
            "/v1/webhook_endpoints/{webhook_endpoint}",
            get(retrieve_webhook_endpoint)
                .post(update_webhook_endpoint)
                .delete(delete_webhook_endpoint),
        )
}

pub const SPEC: ObjectSpec = ObjectSpec::new(OBJECT, "we").list_url("/v1/webhook_endpoints");

const OBJECT: &str = "webhook_endpoint";
const PARAM: &str = "webhook_endpoint";
/// Stripe's limit on endpoints per account in test mode.
const MAX_ENDPOINTS: usize = 16;

fn enabled_events(params: &mut Params) -> ApiResult<Option<Vec<String>>> {
    let Some(types) = params.string_list("enabled_events")? else {
        return Ok(None);
    };
    if types.is_empty() {
        return Err(ApiError::invalid_param(
            "enabled_events",
            "enabled_events must contain at least one event type.",
        ));
    }
    for (index, kind) in types.iter().enumerate() {
        if !event_types::is_known(kind) {
            return Err(ApiError::invalid_param(
                format!("enabled_events[{index}]"),
                format!(
                    "Invalid enabled_events[{index}]: must be one of Stripe's event types (see https://docs.stripe.com/api/events/types) or `*`; got {kind}."
                ),
            ));
        }
    }
    Ok(Some(types))
}

/// What create and update share: url, enabled_events, description, metadata.
fn endpoint_patch(params: &mut Params) -> ApiResult<Patch> {
    let mut patch = Patch::default();
    if let Some(url) = params.string("url")? {
        patch.set(&["url"], json!(intents::check_url("url", &url)?));
    }
    if let Some(types) = enabled_events(params)? {
        patch.set(&["enabled_events"], json!(types));
    }
    if let Some(description) = params.nullable_string("description")? {
        patch.set(
            &["description"],
            match description {
                Update::Set(text) => json!(text),
                Update::Unset => Value::Null,
            },
        );
    }
    patch.set_metadata(params.metadata()?);
    Ok(patch)
}

async fn create_webhook_endpoint(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    if !params.contains("url") {
        return Err(ApiError::missing_param("url"));
    }
    if !params.contains("enabled_events") {
        return Err(ApiError::missing_param("enabled_events"));
    }
    let patch = endpoint_patch(&mut params)?;
    let api_version = params.string("api_version")?;
    if let Some(version) = &api_version {
        let date = version.split('.').next().unwrap_or_default();
        let valid = date.len() == 10
            && date.chars().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            });
        if !valid {
            return Err(ApiError::invalid_param(
                "api_version",
                format!("Invalid api_version: {version}"),
            ));
        }
    }
    if params.bool("connect")? == Some(true) {
        return Err(ApiError::invalid_param(
            "connect",
            "stripe-twin does not emulate Connect: remove `connect` from the request.",
        ));
    }
    params.finish()?;
    let mut query = ListQuery::new(OBJECT);
    query.limit = MAX_ENDPOINTS as i64 + 1;
    if ctx.list_records(&query).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::invalid(format!(
            "You have reached the maximum of {MAX_ENDPOINTS} test webhook endpoints."
        )));
    }
    let secret = format!("whsec_{}", ids::random_base62(32));
    let mut doc = json!({
        "id": SPEC.new_id(),
        "object": OBJECT,
        "api_version": api_version,
        "application": null,
        "created": ctx.now(),
        "description": null,
        "enabled_events": [],
        "livemode": false,
        "metadata": {},
        "status": "enabled",
        "url": "",
    });
    bookkeeping::update(&mut doc, |b| b.secret = Some(secret.clone()));
    patch.apply(&mut doc)?;
    ctx.commit(&[Write::Insert(Record::new(OBJECT, doc.clone()))])
        .await?;
    let mut shown = ctx.strip_hidden(doc);
    shown["secret"] = json!(secret);
    ctx.respond(shown).await
}

async fn load_endpoint(ctx: &crate::http::api::Ctx, id: &str) -> ApiResult<Record> {
    match ctx.get(id).await? {
        Some(record) if record.object == OBJECT && !record.deleted => Ok(record),
        _ => Err(ApiError::no_such(OBJECT, id, PARAM)),
    }
}

async fn retrieve_webhook_endpoint(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = load_endpoint(&ctx, &id).await?;
    ctx.respond(record.data).await
}

async fn update_webhook_endpoint(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let patch = endpoint_patch(&mut params)?;
    let disabled = params.bool("disabled")?;
    params.finish()?;
    let updated = ctx
        .retry(|| async {
            let record = load_endpoint(&ctx, &id).await?;
            let mut doc = record.data.clone();
            patch.apply(&mut doc)?;
            if let Some(disabled) = disabled {
                doc["status"] = json!(if disabled { "disabled" } else { "enabled" });
            }
            // Stripe records no event for endpoint changes.
            Ok((vec![Write::Update(record.with_data(doc.clone()))], doc))
        })
        .await?;
    ctx.respond(updated).await
}

async fn delete_webhook_endpoint(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let deleted = ctx
        .retry(|| async {
            let record = load_endpoint(&ctx, &id).await?;
            let tombstone = json!({"id": id, "object": OBJECT, "deleted": true});
            let mut replaced = record.with_data(tombstone.clone());
            replaced.deleted = true;
            Ok((vec![Write::Update(replaced)], tombstone))
        })
        .await?;
    Ok(Json(deleted))
}

async fn list_webhook_endpoints(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    params.finish()?;
    ctx.list(ListQuery::new(OBJECT), &paging, "/v1/webhook_endpoints")
        .await
}
