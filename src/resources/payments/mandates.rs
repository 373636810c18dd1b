//! `/v1/mandates/{id}`: the record of a customer's permission to charge a
//! payment method later, created when a SetupIntent succeeds.

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::registry::{ObjectSpec, to};
use crate::http::api::{AppState, Call, Ctx};
use crate::http::error::ApiResult;
use crate::store::{Filter, ListQuery, Record};

pub const SPEC: ObjectSpec =
    ObjectSpec::new("mandate", "mandate").fields(&[("payment_method", to("payment_method"))]);

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

/// A new active mandate: the customer's `acceptance` to be charged later
/// through `payment_method`, once (`single_use` terms) or repeatedly.
pub fn new_mandate(
    payment_method: &Value,
    acceptance: Value,
    customer: Option<&str>,
    single_use: Option<Value>,
) -> Record {
    let kind = payment_method["type"].as_str().unwrap_or_default();
    let mut mandate = json!({
        "id": SPEC.new_id(),
        "object": "mandate",
        "customer_acceptance": acceptance,
        "livemode": false,
        "payment_method": payment_method["id"],
        "payment_method_details": {kind: {}, "type": kind},
        "status": "active",
    });
    match single_use {
        Some(terms) => {
            mandate["type"] = json!("single_use");
            mandate["single_use"] = terms;
        }
        None => {
            mandate["type"] = json!("multi_use");
            mandate["multi_use"] = json!({});
        }
    }
    let mut record = Record::new("mandate", mandate);
    record.customer = customer.map(str::to_owned);
    record
}

/// The active mandate that lets `payment_method` be charged off-session.
pub async fn active_for(ctx: &Ctx, payment_method: &str) -> ApiResult<Option<Record>> {
    let mut query = ListQuery::new("mandate");
    query
        .filters
        .push(Filter::Field("payment_method", vec![json!(payment_method)]));
    query
        .filters
        .push(Filter::Field("status", vec![json!("active")]));
    query.limit = 1;
    Ok(ctx.list_records(&query).await?.into_iter().next())
}

/// The newest mandate of `payment_method`, whatever its status: why a
/// method without an active one cannot be charged off-session.
pub async fn latest_for(ctx: &Ctx, payment_method: &str) -> ApiResult<Option<Record>> {
    let mut query = ListQuery::new("mandate");
    query
        .filters
        .push(Filter::Field("payment_method", vec![json!(payment_method)]));
    query.limit = 1;
    Ok(ctx.list_records(&query).await?.into_iter().next())
}
