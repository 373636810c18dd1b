//! `/v1/refunds` (create, retrieve, update, list, cancel) and the legacy
//! routes under `/v1/charges/{charge}` (`/refund`, `/refunds`).
//!
//! A refund returns part or all of a charge's captured amount; several
//! partial refunds may follow each other up to it. Card refunds succeed at
//! once, except the test cards that refund later (`pm_card_pendingRefund`:
//! pending, then succeeded) or fail later (`pm_card_refundFail`); Amazon Pay
//! refunds are asynchronous, as Stripe documents them: pending, then
//! succeeded a moment later. Those later moves are due items.

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::registry::{ObjectSpec, to};
use crate::http::api::{AppState, Call, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult};
use crate::http::params::{MetadataUpdate, Params};
use crate::resources::payments::test_cards;
use crate::store::{DueItem, Filter, ListQuery, Record, Write};

pub const SPEC: ObjectSpec = ObjectSpec::new("refund", "re")
    .list_url("/v1/refunds")
    .fields(&[
        ("charge", to("charge")),
        ("payment_intent", to("payment_intent")),
        ("balance_transaction", to("balance_transaction")),
        ("failure_balance_transaction", to("balance_transaction")),
        ("customer", to("customer")),
        ("payment_method", to("payment_method")),
    ]);

/// The scheduler's kind for a refund that settles later.
pub const SETTLE_KIND: &str = "refund_settlement";
/// How long an asynchronous test-mode refund takes to settle.
const SETTLES_AFTER: i64 = 2;

const REASONS: &[&str] = &["duplicate", "fraudulent", "requested_by_customer"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/refunds", get(list_refunds).post(create_refund))
        .route(
            "/v1/refunds/{refund}",
            get(retrieve_refund).post(update_refund),
        )
        .route("/v1/refunds/{refund}/cancel", post(cancel_refund))
        .route("/v1/charges/{charge}/refund", post(refund_charge))
        .route(
            "/v1/charges/{charge}/refunds",
            get(list_charge_refunds).post(create_charge_refund),
        )
        .route(
            "/v1/charges/{charge}/refunds/{refund}",
            get(retrieve_charge_refund).post(update_charge_refund),
        )
}

/// What a refund request asks for.
struct RefundRequest {
    amount: Option<i64>,
    reason: Option<String>,
    metadata: Option<MetadataUpdate>,
}

fn parse_request(params: &mut Params) -> ApiResult<RefundRequest> {
    for connect in ["refund_application_fee", "reverse_transfer"] {
        if params.bool(connect)?.is_some() {
            return Err(crate::http::not_emulated::not_emulated(
                connect,
                connect,
                "stripe-twin has no Connect accounts yet; remove the parameter.",
            ));
        }
    }
    let amount = params.int_in("amount", 1, i64::MAX)?;
    let reason = params.enum_value("reason", REASONS)?;
    let metadata = params.metadata()?;
    params.string("instructions_email")?;
    if params
        .enum_value("origin", &["customer_balance"])?
        .is_some()
    {
        return Err(crate::http::not_emulated::not_emulated(
            "origin",
            "origin=customer_balance",
            "refund a charge or a PaymentIntent.",
        ));
    }
    Ok(RefundRequest {
        amount,
        reason,
        metadata,
    })
}

async fn create_refund(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let charge = params.string("charge")?;
    let intent = params.string("payment_intent")?;
    // Only for refunds of a customer's cash balance (`origin`).
    for unused in ["currency", "customer"] {
        params.string(unused)?;
    }
    let request = parse_request(&mut params)?;
    params.finish()?;
    let charge_id = match (charge, intent) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You can only specify one of these parameters: charge, payment_intent.",
            )
            .with_code("parameters_exclusive"));
        }
        (Some(charge), None) => charge,
        (None, Some(intent)) => {
            let record = ctx
                .load("payment_intent", &intent, "payment_intent")
                .await?;
            match record.data["latest_charge"].as_str() {
                Some(charge) if record.data["status"] == "succeeded" => charge.to_owned(),
                _ => {
                    return Err(ApiError::invalid_param(
                        "payment_intent",
                        format!("This PaymentIntent ({intent}) does not have a successful charge to refund."),
                    )
                    .with_code("charge_not_refundable"));
                }
            }
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "One of the following params should be provided for this request: payment_intent or charge.",
            ));
        }
    };
    let (_, refund) = refund_now(&ctx, &charge_id, &request).await?;
    ctx.respond(ctx.strip_hidden(refund)).await
}

/// Refunds `charge_id` as `request` says: the refund and the charge's new
/// state commit together (of two refunds racing for the last amount, one
/// wins and the other is refused).
async fn refund_now(
    ctx: &Ctx,
    charge_id: &str,
    request: &RefundRequest,
) -> ApiResult<(Value, Value)> {
    ctx.retry(|| async {
        let charge = ctx.load("charge", charge_id, "charge").await?;
        let (writes, charge, refund) = refund_writes(ctx, &charge, request)?;
        Ok((writes, (charge, refund)))
    })
    .await
}

fn refund_writes(
    ctx: &Ctx,
    charge: &Record,
    request: &RefundRequest,
) -> ApiResult<(Vec<Write>, Value, Value)> {
    let mut doc = charge.data.clone();
    let currency = doc["currency"].as_str().unwrap_or("usd").to_owned();
    let captured = doc["amount_captured"].as_i64().unwrap_or(0);
    let refunded = doc["amount_refunded"].as_i64().unwrap_or(0);
    if doc["status"] != "succeeded" || captured == 0 {
        return Err(ApiError::invalid_param(
            "charge",
            format!("Charge {} has no captured amount to refund.", charge.id),
        )
        .with_code("charge_not_refundable"));
    }
    if refunded >= captured {
        return Err(ApiError::invalid_param(
            "charge",
            format!("Charge {} has already been refunded.", charge.id),
        )
        .with_code("charge_already_refunded"));
    }
    let remaining = captured - refunded;
    let amount = request.amount.unwrap_or(remaining);
    if amount > remaining {
        let (what, limit) = if refunded == 0 {
            ("charge amount", captured)
        } else {
            ("unrefunded amount on charge", remaining)
        };
        return Err(ApiError::invalid_param(
            "amount",
            format!(
                "Refund amount ({}) is greater than {what} ({}).",
                crate::core::money::display(amount, &currency),
                crate::core::money::display(limit, &currency)
            ),
        )
        .with_code("amount_too_large"));
    }
    let now = ctx.now();
    let kind = doc["payment_method_details"]["type"]
        .as_str()
        .unwrap_or("card")
        .to_owned();
    let later = settles_later(&doc, &kind);
    let mut refund = json!({
        "id": SPEC.new_id(),
        "object": "refund",
        "amount": amount,
        "balance_transaction": null,
        "charge": charge.id,
        "created": now,
        "currency": currency,
        "customer": doc["customer"],
        "customer_account": null,
        "destination_details": destination(&kind),
        "metadata": {},
        "payment_intent": doc["payment_intent"],
        "payment_method": doc["payment_method"],
        "reason": request.reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": if later == Some("succeeded") { "pending" } else { "succeeded" },
        "transfer_reversal": null,
    });
    if let Some(metadata) = &request.metadata {
        metadata.apply(&mut refund["metadata"])?;
    }
    doc["amount_refunded"] = json!(refunded + amount);
    doc["refunded"] = json!(refunded + amount == captured);
    let mut writes = ctx.update_with_event(charge, doc.clone(), "charge.refunded");
    writes.push(Write::Insert(Record::new("refund", refund.clone())));
    writes.push(ctx.event("refund.created", &refund, None));
    if let Some(to) = later {
        let id = refund["id"].as_str().unwrap_or_default();
        let item = ctx.due_item(
            format!("due_{SETTLE_KIND}_{id}"),
            SETTLE_KIND,
            id,
            now + SETTLES_AFTER,
            json!({"to": to}),
        );
        writes.push(Write::Schedule(item));
    }
    Ok((writes, doc, refund))
}

/// What a refund of this charge becomes later, if anything: Amazon Pay
/// and the pending-refund card settle (`succeeded`), the refund-fail card
/// fails.
fn settles_later(charge: &Value, kind: &str) -> Option<&'static str> {
    if kind == "amazon_pay" {
        return Some("succeeded");
    }
    match test_cards::refund_behavior(&charge["payment_method_details"]["card"]) {
        test_cards::RefundBehavior::Pending => Some("succeeded"),
        test_cards::RefundBehavior::FailsLater => Some("failed"),
        test_cards::RefundBehavior::Succeeds => None,
    }
}

/// Where the money goes back to (`destination_details`).
fn destination(kind: &str) -> Value {
    match kind {
        "card" => json!({
            // The acquirer's reference comes days later, in live mode only.
            "card": {"reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"},
            "type": "card",
        }),
        other => json!({other: {}, "type": other}),
    }
}

/// Runs a moment after an asynchronous refund was made: it settles (or
/// fails, and its amount is no longer refunded on the charge).
pub async fn settle_when_due(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(record) = ctx
        .get(&item.target)
        .await?
        .filter(|r| r.object == "refund")
    else {
        return Ok(Vec::new());
    };
    let to = item.payload["to"].as_str().unwrap_or("succeeded");
    let mut refund = record.data.clone();
    if !matches!(refund["status"].as_str(), Some("pending" | "succeeded")) || refund["status"] == to
    {
        return Ok(Vec::new());
    }
    refund["status"] = json!(to);
    let mut writes = Vec::new();
    if to == "failed" {
        refund["failure_reason"] = json!("expired_or_canceled_card");
        if let Some(charge) = ctx
            .get(refund["charge"].as_str().unwrap_or_default())
            .await?
        {
            let mut doc = charge.data.clone();
            let refunded = doc["amount_refunded"].as_i64().unwrap_or(0);
            let amount = refund["amount"].as_i64().unwrap_or(0);
            doc["amount_refunded"] = json!((refunded - amount).max(0));
            doc["refunded"] = json!(false);
            writes.push(Write::Update(charge.with_data(doc)));
        }
    }
    writes.extend(ctx.update_with_event(&record, refund.clone(), "refund.updated"));
    writes.push(ctx.event("charge.refund.updated", &refund, None));
    Ok(writes)
}

async fn retrieve_refund(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load("refund", &id, "refund").await?;
    ctx.respond(ctx.strip_hidden(record.data)).await
}

async fn update_refund(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let metadata = params.metadata()?;
    params.finish()?;
    let updated = update_metadata(&ctx, &id, metadata).await?;
    ctx.respond(ctx.strip_hidden(updated)).await
}

async fn update_metadata(
    ctx: &Ctx,
    id: &str,
    metadata: Option<MetadataUpdate>,
) -> ApiResult<Value> {
    ctx.mutate("refund", id, "refund", |record| {
        let mut doc = record.data.clone();
        if let Some(metadata) = &metadata {
            metadata.apply(&mut doc["metadata"])?;
        }
        Ok((
            ctx.update_with_event(&record, doc.clone(), "refund.updated"),
            doc,
        ))
    })
    .await
}

/// Stripe cancels only refunds waiting for the customer's action, which no
/// emulated payment method asks for.
async fn cancel_refund(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load("refund", &id, "refund").await?;
    Err(ApiError::invalid(format!(
        "Refund {id} cannot be canceled because it has a status of {}. Only refunds with a status of `requires_action` can be canceled.",
        record.data["status"].as_str().unwrap_or_default()
    ))
    .with_code("refund_cancel_invalid_status"))
}

async fn list_refunds(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let mut query = ListQuery::new("refund");
    for field in ["charge", "payment_intent"] {
        if let Some(value) = params.string(field)? {
            query.filters.push(Filter::Field(field, vec![json!(value)]));
        }
    }
    params.finish()?;
    ctx.list(query, &paging, "/v1/refunds").await
}

/// `POST /v1/charges/{charge}/refund` (legacy): answers the charge.
async fn refund_charge(
    Path(charge): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    params.string("payment_intent")?;
    let request = parse_request(&mut params)?;
    params.finish()?;
    let (charge, _) = refund_now(&ctx, &charge, &request).await?;
    ctx.respond(ctx.strip_hidden(charge)).await
}

async fn create_charge_refund(
    Path(charge): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let request = parse_request(&mut params)?;
    params.finish()?;
    let (_, refund) = refund_now(&ctx, &charge, &request).await?;
    ctx.respond(ctx.strip_hidden(refund)).await
}

async fn list_charge_refunds(
    Path(charge): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    params.finish()?;
    ctx.load("charge", &charge, "charge").await?;
    let mut query = ListQuery::new("refund");
    query
        .filters
        .push(Filter::Field("charge", vec![json!(charge)]));
    ctx.list(query, &paging, &format!("/v1/charges/{charge}/refunds"))
        .await
}

async fn charge_refund(ctx: &Ctx, charge: &str, id: &str) -> ApiResult<Record> {
    let record = ctx.load("refund", id, "refund").await?;
    if record.data["charge"] != json!(charge) {
        return Err(ApiError::no_such("refund", id, "refund"));
    }
    Ok(record)
}

async fn retrieve_charge_refund(
    Path((charge, id)): Path<(String, String)>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = charge_refund(&ctx, &charge, &id).await?;
    ctx.respond(ctx.strip_hidden(record.data)).await
}

async fn update_charge_refund(
    Path((charge, id)): Path<(String, String)>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let metadata = params.metadata()?;
    params.finish()?;
    charge_refund(&ctx, &charge, &id).await?;
    let updated = update_metadata(&ctx, &id, metadata).await?;
    ctx.respond(ctx.strip_hidden(updated)).await
}
