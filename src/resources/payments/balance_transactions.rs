//! `/v1/balance_transactions`: what each successful charge adds to the
//! account's balance, with Stripe's fee (retrieve, list, and
//! `expand[]=balance_transaction` on charges).

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::registry::{ObjectSpec, to};
use crate::http::api::{AppState, Call, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult};
use crate::store::{DueItem, Filter, ListQuery, Record, Write};

const DAY: i64 = 24 * 60 * 60;
/// Funds become available two days after the charge, at midnight UTC (the
/// standard US payout timing; weekends and holidays are not counted).
const AVAILABLE_AFTER_DAYS: i64 = 2;

pub const SPEC: ObjectSpec = ObjectSpec::new("balance_transaction", "txn")
    .list_url("/v1/balance_transactions")
    .fields(&[("source", to("balance_transaction_source"))]);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/balance_transactions", get(list_balance_transactions))
        .route(
            "/v1/balance_transactions/{id}",
            get(retrieve_balance_transaction),
        )
}

/// Stripe's standard US pricing for online payments: 2.9% + 30 (in the
/// currency's minor unit), plus 1.5% for a card issued outside the US.
pub fn stripe_fee(amount: i64, payment_method: &Value) -> i64 {
    let international = payment_method["type"] == "card"
        && payment_method["card"]["country"]
            .as_str()
            .is_some_and(|country| country != "US");
    let basis_points: i128 = if international { 440 } else { 290 };
    let percent = (i128::from(amount) * basis_points + 5_000) / 10_000;
    i64::try_from(percent)
        .unwrap_or(i64::MAX)
        .saturating_add(30)
}

/// The balance transaction of a charge that succeeded (its
/// `balance_transaction` names it).
pub fn for_charge(charge: &Value, payment_method: &Value) -> Record {
    let amount = charge["amount"].as_i64().unwrap_or_default();
    let created = charge["created"].as_i64().unwrap_or_default();
    let fee = stripe_fee(amount, payment_method).min(amount);
    let doc = json!({
        "id": charge["balance_transaction"],
        "object": "balance_transaction",
        "amount": amount,
        "available_on": (created.div_euclid(DAY) + AVAILABLE_AFTER_DAYS) * DAY,
        "balance_type": "payments",
        "created": created,
        "currency": charge["currency"],
        "description": charge["description"],
        "exchange_rate": null,
        "fee": fee,
        "fee_details": [{
            "amount": fee,
            "application": null,
            "currency": charge["currency"],
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }],
        "net": amount - fee,
        "reporting_category": "charge",
        "source": charge["id"],
        "status": "pending",
        "type": "charge",
    });
    Record::new("balance_transaction", doc)
}

/// The scheduler's kind that makes a balance transaction's funds available.
pub const AVAILABLE_KIND: &str = "balance_transaction_available";

/// The due item, written with the balance transaction, that makes it
/// `available` at its `available_on` (one per transaction).
pub fn available_item(ctx: &Ctx, transaction: &Record) -> DueItem {
    available_item_for(&ctx.account, ctx.test_clock(), transaction)
}

/// The same item for a transaction of `account` following `test_clock`.
pub fn available_item_for(
    account: &str,
    test_clock: Option<String>,
    transaction: &Record,
) -> DueItem {
    DueItem {
        id: format!("due_available_{}", transaction.id),
        account: account.to_owned(),
        test_clock,
        due_at: transaction.data["available_on"]
            .as_i64()
            .unwrap_or_default()
            .saturating_mul(1000),
        kind: AVAILABLE_KIND.to_owned(),
        target: transaction.id.clone(),
        payload: json!({}),
        claimed_by: None,
    }
}

/// Runs at `available_on`: the funds of a pending transaction become
/// available, whether or not anyone reads it.
pub async fn make_available(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(record) = ctx.get(&item.target).await? else {
        return Ok(Vec::new()); // its account's data was wiped
    };
    if record.object != "balance_transaction" || record.data["status"] != "pending" {
        return Ok(Vec::new());
    }
    let mut doc = record.data.clone();
    doc["status"] = json!("available");
    Ok(vec![Write::Update(record.with_data(doc))])
}

async fn retrieve_balance_transaction(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load("balance_transaction", &id, "id").await?;
    ctx.respond(ctx.strip_hidden(record.data)).await
}

async fn list_balance_transactions(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let mut query = ListQuery::new("balance_transaction");
    for field in ["source", "type", "currency"] {
        if let Some(value) = params.string(field)? {
            query.filters.push(Filter::Field(field, vec![json!(value)]));
        }
    }
    if let Some(payout) = params.string("payout")? {
        // No payouts are made, so none can be named.
        return Err(ApiError::no_such("payout", &payout, "payout"));
    }
    params.finish()?;
    ctx.list(query, &paging, "/v1/balance_transactions").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_follow_standard_us_pricing() {
        let domestic = json!({"type": "card", "card": {"country": "US"}});
        let abroad = json!({"type": "card", "card": {"country": "FR"}});
        let amazon = json!({"type": "amazon_pay"});
        assert_eq!(stripe_fee(2000, &domestic), 88);
        assert_eq!(stripe_fee(1000, &abroad), 74);
        assert_eq!(stripe_fee(1500, &amazon), 74);
        // No overflow at the largest amounts.
        assert!(stripe_fee(i64::MAX, &domestic) > 0);
    }
}
