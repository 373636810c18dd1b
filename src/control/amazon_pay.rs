//! `POST /_config/customers/{customer}/amazon_pay/close_charge_permission`:
//! what a buyer does on Amazon when they close the recurring charge
//! permission they gave a merchant. Stripe learns it from Amazon and the
//! mandates behind that permission become `inactive`; an off-session
//! charge through one of them then fails (`payment_intent_mandate_invalid`).

use axum::Json;
use axum::extract::Path;
use serde_json::{Value, json};

use crate::http::api::{Call, Ctx};
use crate::http::error::{ApiError, ApiResult};
use crate::store::{Filter, ListQuery, Record, Write};

/// Closes the customer's Amazon Pay charge permissions: every active
/// Amazon Pay mandate of theirs becomes `inactive`, each with
/// `mandate.updated`. Answers the mandates as they now are.
pub async fn close_charge_permission(
    Path(customer): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let closed = ctx
        .retry(|| async {
            let record = ctx.load("customer", &customer, "customer").await?;
            if record.deleted {
                return Err(ApiError::no_such("customer", &customer, "customer"));
            }
            let mandates = active_amazon_pay_mandates(&ctx, &customer).await?;
            if mandates.is_empty() {
                return Err(ApiError::invalid_param(
                    "customer",
                    format!(
                        "The customer {customer} has no active Amazon Pay mandate: there is no recurring charge permission to close."
                    ),
                ));
            }
            let mut writes: Vec<Write> = Vec::new();
            let mut docs = Vec::new();
            for mandate in mandates {
                let mut doc = mandate.data.clone();
                doc["status"] = json!("inactive");
                writes.extend(ctx.update_with_event(&mandate, doc.clone(), "mandate.updated"));
                docs.push(ctx.strip_hidden(doc));
            }
            Ok((writes, docs))
        })
        .await?;
    Ok(Json(json!({
        "object": "list",
        "data": closed,
        "has_more": false,
        "url": format!("/_config/customers/{customer}/amazon_pay/close_charge_permission"),
    })))
}

/// The active Amazon Pay mandates of `customer`: those recorded for the
/// customer and those of the customer's payment methods, oldest first.
async fn active_amazon_pay_mandates(ctx: &Ctx, customer: &str) -> ApiResult<Vec<Record>> {
    let mut methods = ListQuery::new("payment_method");
    methods.filters.push(Filter::Customer(customer.to_owned()));
    methods
        .filters
        .push(Filter::Field("type", vec![json!("amazon_pay")]));
    methods.limit = i64::MAX;
    let method_ids: Vec<Value> = ctx
        .list_records(&methods)
        .await?
        .into_iter()
        .map(|pm| json!(pm.id))
        .collect();
    let mut found: Vec<Record> = Vec::new();
    let mut queries = Vec::new();
    let mut by_customer = ListQuery::new("mandate");
    by_customer
        .filters
        .push(Filter::Customer(customer.to_owned()));
    queries.push(by_customer);
    if !method_ids.is_empty() {
        let mut by_method = ListQuery::new("mandate");
        by_method
            .filters
            .push(Filter::Field("payment_method", method_ids));
        queries.push(by_method);
    }
    for mut query in queries {
        query
            .filters
            .push(Filter::Field("status", vec![json!("active")]));
        query.filters.push(Filter::Field(
            "payment_method_details.type",
            vec![json!("amazon_pay")],
        ));
        query.limit = i64::MAX;
        for mandate in ctx.list_records(&query).await? {
            if !found.iter().any(|m| m.id == mandate.id) {
                found.push(mandate);
            }
        }
    }
    found.sort_by_key(|m| m.seq);
    Ok(found)
}
