//! `/v1/charges`: the charges PaymentIntents make, as far as they need them
//! (`latest_charge`, retrieve and list); refunds change them (`refunds`).

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::bookkeeping::Bookkeeping;
use crate::core::registry::{Expansion, ObjectSpec, to};
use crate::http::api::{AppState, Call, ListParams};
use crate::http::error::{ApiError, ApiResult};
use crate::http::search::{self, FieldKind};
use crate::ids;
use crate::store::{Filter, ListQuery};

/// Stripe's search fields for charges (card details under `card`).
pub const SPEC: ObjectSpec = ObjectSpec::new("charge", "ch")
    .list_url("/v1/charges")
    .fields(&[
        ("customer", to("customer")),
        ("payment_intent", to("payment_intent")),
        ("balance_transaction", to("balance_transaction")),
        ("invoice", to("invoice")),
        // Stripe stopped including refunds in 2022-11-15: listed when expanded.
        (
            "refunds",
            Expansion::Children {
                object: "refund",
                field: "charge",
                url: "/v1/charges/{id}/refunds",
            },
        ),
    ]);

const SEARCH: search::Spec = search::Spec {
    object: "charge",
    resource: "charges",
    url: "/v1/charges/search",
    fields: &[
        ("amount", FieldKind::Number),
        ("billing_details.address.postal_code", FieldKind::Token),
        ("created", FieldKind::Number),
        ("currency", FieldKind::Text),
        ("customer", FieldKind::Text),
        ("disputed", FieldKind::Boolean),
        ("payment_method_details.card.brand", FieldKind::Token),
        ("payment_method_details.card.exp_month", FieldKind::Token),
        ("payment_method_details.card.exp_year", FieldKind::Token),
        ("payment_method_details.card.fingerprint", FieldKind::Token),
        ("payment_method_details.card.last4", FieldKind::Token),
        ("refunded", FieldKind::Boolean),
        ("status", FieldKind::Text),
    ],
    paths: &[],
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/charges", get(list_charges))
        .route("/v1/charges/search", get(search_charges))
        .route("/v1/charges/{charge}", get(retrieve_charge))
}

/// The charge a payment attempt makes: succeeded, or failed with `failure`.
pub fn charge_document(
    intent: &Value,
    payment_method: &Value,
    failure: Option<&ApiError>,
    now: i64,
) -> Value {
    let id = SPEC.new_id();
    let kind = payment_method["type"].as_str().unwrap_or("card");
    let mut details = json!({"type": kind});
    details[kind] = match kind {
        "card" => card_details(intent, &payment_method["card"], failure.is_none()),
        // Amazon Pay reports neither its transaction nor its funding in test mode.
        "amazon_pay" => json!({"funding": {"type": null}, "transaction_id": null}),
        _ => json!({}),
    };
    let body = failure.map(ApiError::body).unwrap_or(Value::Null);
    let error = &body["error"];
    let succeeded = failure.is_none();
    let risk_level = crate::resources::payments::test_cards::risk_level_of(payment_method);
    json!({
        "id": id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": if succeeded { intent["amount"].clone() } else { json!(0) },
        "amount_refunded": 0,
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": succeeded.then(|| super::balance_transactions::SPEC.new_id()),
        "billing_details": payment_method["billing_details"],
        "calculated_statement_descriptor": "STRIPE-TWIN",
        "captured": succeeded,
        "created": now,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": error["code"],
        "failure_message": error["message"],
        "fraud_details": {},
        "livemode": false,
        "metadata": intent["metadata"],
        "on_behalf_of": null,
        "outcome": if succeeded {
            json!({
                "advice_code": null, "network_advice_code": null, "network_decline_code": null,
                "network_status": "approved_by_network", "reason": null, "risk_level": risk_level,
                "seller_message": "Payment complete.", "type": "authorized",
            })
        } else if risk_level == "highest" {
            // Radar's default rules block the highest risk level: the
            // payment never reaches the card network.
            json!({
                "advice_code": error["advice_code"], "network_advice_code": null, "network_decline_code": null,
                "network_status": "not_sent_to_network", "reason": "highest_risk_level", "risk_level": risk_level,
                "seller_message": "Stripe blocked this payment as too risky.", "type": "blocked",
            })
        } else {
            json!({
                "advice_code": error["advice_code"], "network_advice_code": null, "network_decline_code": null,
                "network_status": "declined_by_network", "reason": error["decline_code"], "risk_level": risk_level,
                "seller_message": "The bank did not return any further details with this decline.", "type": "issuer_declined",
            })
        },
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": payment_method["id"],
        "payment_method_details": details,
        "receipt_email": intent["receipt_email"],
        "receipt_number": null,
        "receipt_url": null,
        "refunded": false,
        "review": null,
        "shipping": null,
        "source_transfer": null,
        "statement_descriptor": intent["statement_descriptor"],
        "statement_descriptor_suffix": null,
        "status": if succeeded { "succeeded" } else { "failed" },
        "transfer_data": null,
        "transfer_group": null,
    })
}

/// `payment_method_details.card`: the card's details and what the network
/// said, with every key Stripe returns for an online card payment. (Endive
/// also declares `description`, `iin` and `issuer`, internal-only, and
/// `moto`, `electronic_commerce_indicator` and `*_credential_usage`, which
/// only some payments have: left out, as the 2026-08-26 spec has none.)
fn card_details(intent: &Value, card: &Value, succeeded: bool) -> Value {
    // Paid after the authorization page: the card was authenticated.
    let authenticated = Bookkeeping::of(intent).redirect.is_some();
    json!({
        "amount_authorized": succeeded.then_some(&intent["amount"]),
        "authorization_code": null,
        "brand": card["brand"],
        "checks": card["checks"],
        "country": card["country"],
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "extended_authorization": {"status": "disabled"},
        "fingerprint": card["fingerprint"],
        "funding": card["funding"],
        "incremental_authorization": {"status": "unavailable"},
        "installments": null,
        "last4": card["last4"],
        "mandate": null,
        "multicapture": {"status": "unavailable"},
        "network": card["networks"]["preferred"].as_str().or(card["brand"].as_str()),
        "network_token": {"used": false},
        "network_transaction_id": succeeded.then(|| ids::random_digits(15)),
        "overcapture": {"maximum_amount_capturable": intent["amount"], "status": "unavailable"},
        "regulated_status": card["regulated_status"],
        "three_d_secure": authenticated.then(|| json!({
            "authentication_flow": "challenge",
            "electronic_commerce_indicator": "05",
            "exemption_indicator": null,
            "result": if succeeded { "authenticated" } else { "failed" },
            "result_reason": null,
            "transaction_id": ids::random_uuid(),
            "version": "2.2.0",
        })),
        "transaction_link_id": null,
        "wallet": null,
    })
}

async fn retrieve_charge(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load("charge", &id, "charge").await?;
    ctx.respond(ctx.strip_hidden(record.data)).await
}

async fn list_charges(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let customer = params.string("customer")?;
    let payment_intent = params.string("payment_intent")?;
    params.finish()?;
    let mut query = ListQuery::new("charge");
    if let Some(customer) = customer {
        query.filters.push(Filter::Customer(customer));
    }
    if let Some(intent) = payment_intent {
        query
            .filters
            .push(Filter::Field("payment_intent", vec![json!(intent)]));
    }
    ctx.list(query, &paging, "/v1/charges").await
}

async fn search_charges(Call { ctx, params }: Call) -> ApiResult<Json<Value>> {
    ctx.search_resource(params, &SEARCH).await
}
