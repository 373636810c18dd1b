//! `/v1/payment_methods` and a customer's payment methods: create, retrieve,
//! update, list, attach and detach, for the `card` and `amazon_pay` types.

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::core::bookkeeping::{self, Bookkeeping};
use crate::core::registry::{FixtureLink, ObjectSpec, to};
use crate::http::api::{AppState, Call, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::params::{Params, Patch, Update, one_of};
use crate::http::params::{address, nullable_text};
use crate::resources::payments::test_cards::{self, Behavior, TestCard};
use crate::store::{Filter, ListQuery, Record, Write};

pub const SPEC: ObjectSpec = ObjectSpec::new("payment_method", "pm")
    .display_name("PaymentMethod")
    .list_url("/v1/payment_methods")
    .fields(&[("customer", to("customer"))])
    .fixture(&[FixtureLink {
        field: "customer",
        object: "customer",
        optional: true,
        back: None,
    }]);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/payment_methods",
            get(list_payment_methods).post(create_payment_method),
        )
        .route(
            "/v1/payment_methods/{payment_method}",
            get(retrieve_payment_method).post(update_payment_method),
        )
        .route(
            "/v1/payment_methods/{payment_method}/attach",
            post(attach_payment_method),
        )
        .route(
            "/v1/payment_methods/{payment_method}/detach",
            post(detach_payment_method),
        )
        .route(
            "/v1/customers/{customer}/payment_methods",
            get(list_customer_payment_methods),
        )
        .route(
            "/v1/customers/{customer}/payment_methods/{payment_method}",
            get(retrieve_customer_payment_method),
        )
}

/// The payment method types stripe-twin can set up and charge.
pub const SUPPORTED_TYPES: &[&str] = &["amazon_pay", "card"];

const REDISPLAY: &[&str] = &["always", "limited", "unspecified"];

const PREVIOUSLY_USED: &str = "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with a connected account without Customer attachment, or was detached from a Customer. It may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first.";

fn empty_billing_details() -> Value {
    json!({
        "address": {"city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null},
        "email": null,
        "name": null,
        "phone": null,
        "tax_id": null,
    })
}

fn new_document(kind: &str, now: i64) -> Value {
    json!({
        "id": SPEC.new_id(),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": empty_billing_details(),
        "created": now,
        "customer": null,
        "customer_account": null,
        "livemode": false,
        "metadata": {},
        "type": kind,
    })
}

/// A fresh card PaymentMethod for a test card.
pub fn card_document(
    account: &str,
    card: TestCard,
    exp_month: i64,
    exp_year: i64,
    cvc: bool,
    now: i64,
) -> Value {
    let mut doc = new_document("card", now);
    doc["card"] = card.details(account, exp_month, exp_year, cvc);
    bookkeeping::update(&mut doc, |b| {
        b.card = Some(card.number.to_owned());
        b.behavior = Some(card.behavior_name().to_owned());
        if card.risk_level != "normal" {
            b.risk_level = Some(card.risk_level.to_owned());
        }
    });
    doc
}

fn test_card_document(account: &str, card: TestCard, now: i64) -> Value {
    // Stripe's ready-made test methods expire in the December of a few years ahead.
    let year = crate::clock::year_of(now) + 3;
    card_document(account, card, 12, year, true, now)
}

/// Billing details (`billing_details[...]`) into the document's hash.
fn billing_details(mut params: Params, doc: &mut Value) -> ApiResult<()> {
    if let Some(update) = params.nullable_object("address")? {
        doc["billing_details"]["address"] = match update {
            Update::Set(p) => address(p)?,
            Update::Unset => empty_billing_details()["address"].clone(),
        };
    }
    for field in ["email", "name", "phone"] {
        if let Some(value) = nullable_text(params.nullable_string(field)?) {
            doc["billing_details"][field] = value;
        }
    }
    params.finish()
}

fn card_from_params(ctx: &Ctx, mut card: Params) -> ApiResult<Value> {
    if let Some(token) = card.string("token")? {
        card.finish()?;
        let test_card = test_cards::by_token(&token)
            .ok_or_else(|| ApiError::no_such_reference("token", &token, "card[token]"))?;
        return Ok(test_card_document(&ctx.account, test_card, ctx.now()));
    }
    let number = card.required_string("number")?;
    let test_card = test_cards::by_number(&number, &card.name("number"))?;
    let exp_month = card
        .int("exp_month")?
        .ok_or_else(|| ApiError::missing_param(&card.name("exp_month")))?;
    let exp_year = card
        .int("exp_year")?
        .ok_or_else(|| ApiError::missing_param(&card.name("exp_year")))?;
    test_cards::check_expiry(exp_month, exp_year, ctx.year(), &|field| card.name(field))?;
    let cvc = card.string("cvc")?;
    if let Some(cvc) = &cvc
        && !(3..=4).contains(&cvc.len())
    {
        return Err(ApiError::invalid_param(
            card.name("cvc"),
            "Your card's security code is invalid.",
        )
        .with_status(StatusCode::PAYMENT_REQUIRED)
        .with_type(crate::http::error::ErrorType::Card)
        .with_code("invalid_cvc"));
    }
    card.take_node("networks");
    card.finish()?;
    let year = if exp_year < 100 {
        2000 + exp_year
    } else {
        exp_year
    };
    Ok(card_document(
        &ctx.account,
        test_card,
        exp_month,
        year,
        cvc.is_some(),
        ctx.now(),
    ))
}

/// A new PaymentMethod from `type` and its details: the parameters of
/// `POST /v1/payment_methods`, also used as a SetupIntent's
/// `payment_method_data`. Leaves other keys in `params` for the caller.
pub fn document_from_params(ctx: &Ctx, params: &mut Params) -> ApiResult<Value> {
    let kind = params.required_string("type")?;
    if !SUPPORTED_TYPES.contains(&kind.as_str()) {
        return Err(ApiError::invalid_param(
            params.name("type"),
            format!(
                "stripe-twin supports the payment method types {}; '{kind}' is not one of them.",
                one_of(SUPPORTED_TYPES)
            ),
        ));
    }
    let mut doc = match kind.as_str() {
        "card" => {
            let card = params
                .object("card")?
                .ok_or_else(|| ApiError::missing_param(&params.name("card")))?;
            card_from_params(ctx, card)?
        }
        _ => {
            if let Some(details) = params.object("amazon_pay")? {
                details.finish()?;
            }
            let mut doc = new_document("amazon_pay", ctx.now());
            doc["amazon_pay"] = json!({});
            doc
        }
    };
    for other in SUPPORTED_TYPES.iter().filter(|t| **t != kind) {
        if params.contains(other) {
            return Err(ApiError::invalid_param(
                params.name(other),
                format!(
                    "You passed a `{other}` hash, but the payment method type is `{kind}`. Pass `{kind}` details only."
                ),
            ));
        }
    }
    if let Some(details) = params.object("billing_details")? {
        billing_details(details, &mut doc)?;
    }
    test_cards::check_address(&mut doc);
    if let Some(redisplay) = params.enum_value("allow_redisplay", REDISPLAY)? {
        doc["allow_redisplay"] = json!(redisplay);
    }
    let mut patch = Patch::default();
    patch.set_metadata(params.metadata()?);
    patch.apply(&mut doc)?;
    Ok(doc)
}

/// A PaymentMethod named by ID in a request. Stripe's ready-made test IDs
/// (`pm_card_visa`) stand for a fresh PaymentMethod each time: `Fresh` must
/// be inserted by whoever uses it.
pub enum Resolved {
    Stored(Record),
    Fresh(Record),
}

impl Resolved {
    pub fn record(&self) -> &Record {
        match self {
            Resolved::Stored(r) | Resolved::Fresh(r) => r,
        }
    }

    pub fn data(&self) -> &Value {
        &self.record().data
    }

    /// The same PaymentMethod, now set up for later payments (a SetupIntent
    /// or `setup_future_usage` saved it): cards that need authentication
    /// unless set up then pay off-session.
    pub fn set_up(&self) -> Resolved {
        let mut record = self.record().clone();
        bookkeeping::update(&mut record.data, |b| b.set_up = true);
        match self {
            Resolved::Stored(_) => Resolved::Stored(record),
            Resolved::Fresh(_) => Resolved::Fresh(record),
        }
    }

    /// The write that stores `data` as this PaymentMethod's new state.
    pub fn write(&self, data: Value) -> Write {
        match self {
            Resolved::Stored(r) => Write::Update(r.with_data(data)),
            Resolved::Fresh(r) => Write::Insert(r.with_data(data)),
        }
    }
}

pub async fn resolve(ctx: &Ctx, id: &str, named: Named<'_>) -> ApiResult<Resolved> {
    if let Some(card) = test_cards::by_payment_method_id(id) {
        return Ok(Resolved::Fresh(Record::new(
            "payment_method",
            test_card_document(&ctx.account, card, ctx.now()),
        )));
    }
    match ctx.get(id).await? {
        Some(record) if record.object == "payment_method" => Ok(Resolved::Stored(record)),
        _ => Err(named.missing("PaymentMethod", id)),
    }
}

/// Whether a PaymentMethod may still be used: one that was detached, or
/// used once without a customer, may not.
pub fn check_reusable(pm: &Value) -> ApiResult<()> {
    if Bookkeeping::of(pm).consumed {
        return Err(ApiError::invalid_param("payment_method", PREVIOUSLY_USED));
    }
    Ok(())
}

/// A live (not deleted) customer of the caller's account.
pub async fn load_customer(ctx: &Ctx, id: &str, named: Named<'_>) -> ApiResult<Record> {
    match ctx.get(id).await? {
        Some(record) if record.object == "customer" && !record.deleted => Ok(record),
        _ => Err(named.missing("customer", id)),
    }
}

/// Attaches a PaymentMethod to a customer: the card must not decline,
/// and it must not belong to someone else. `None` when already attached.
pub fn attach_writes(
    ctx: &Ctx,
    pm: &Resolved,
    customer: &str,
) -> ApiResult<Option<(Vec<Write>, Value)>> {
    let data = pm.data();
    check_reusable(data)?;
    match data["customer"].as_str() {
        Some(owner) if owner == customer => return Ok(None),
        Some(_) => {
            return Err(ApiError::invalid_param(
                "payment_method",
                "The payment method you provided has already been attached to a customer.",
            ));
        }
        None => {}
    }
    if let Behavior::Declines(decline) = test_cards::behavior_of(data) {
        return Err(decline.error());
    }
    let mut attached = data.clone();
    attached["customer"] = json!(customer);
    let writes = vec![
        pm.write(attached.clone()),
        ctx.event(
            "payment_method.attached",
            &attached,
            Some(json!({"customer": null})),
        ),
    ];
    Ok(Some((writes, attached)))
}

async fn create_payment_method(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    if params.contains("customer") || params.contains("payment_method") {
        // Cloning a customer's PaymentMethod is a Connect feature.
        let param = if params.contains("customer") {
            "customer"
        } else {
            "payment_method"
        };
        return Err(ApiError::invalid_param(
            param,
            "Sharing PaymentMethods with connected accounts (customer / payment_method on create) is a Connect feature that stripe-twin does not emulate.",
        ));
    }
    let doc = document_from_params(&ctx, &mut params)?;
    params.finish()?;
    ctx.commit(&[Write::Insert(Record::new("payment_method", doc.clone()))])
        .await?;
    ctx.respond(doc).await
}

async fn retrieve_payment_method(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load("payment_method", &id, "payment_method").await?;
    ctx.respond(record.data).await
}

async fn update_payment_method(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let mut patch = Patch::default();
    patch.set_metadata(params.metadata()?);
    if let Some(redisplay) = params.enum_value("allow_redisplay", REDISPLAY)? {
        patch.set(&["allow_redisplay"], json!(redisplay));
    }
    let details = params.object("billing_details")?;
    let mut card_update = None;
    if let Some(mut card) = params.object("card")? {
        let month = card.int_in("exp_month", 1, 12)?;
        let year = card.int("exp_year")?;
        card.take_node("networks");
        card.finish()?;
        card_update = Some((month, year));
    }
    params.finish()?;
    let updated = ctx
        .mutate("payment_method", &id, "payment_method", |record| {
            if record.data["customer"].is_null() {
                return Err(ApiError::invalid(
                    "You must save this PaymentMethod to a customer before you can update it.",
                ));
            }
            let mut doc = record.data.clone();
            patch.apply(&mut doc)?;
            if let Some(details) = &details {
                billing_details(details.clone(), &mut doc)?;
                test_cards::check_address(&mut doc);
            }
            if let Some((month, year)) = card_update {
                if doc["type"] != "card" {
                    return Err(ApiError::invalid_param(
                        "card",
                        "You can only update card details on a PaymentMethod of type card.",
                    ));
                }
                let this_year = ctx.year();
                let month =
                    month.unwrap_or_else(|| doc["card"]["exp_month"].as_i64().unwrap_or(12));
                let year =
                    year.unwrap_or_else(|| doc["card"]["exp_year"].as_i64().unwrap_or(this_year));
                test_cards::check_expiry(month, year, ctx.year(), &|field| {
                    format!("card[{field}]")
                })?;
                doc["card"]["exp_month"] = json!(month);
                doc["card"]["exp_year"] = json!(if year < 100 { 2000 + year } else { year });
            }
            Ok((
                ctx.update_with_event(&record, doc.clone(), "payment_method.updated"),
                doc,
            ))
        })
        .await?;
    ctx.respond(updated).await
}

async fn attach_payment_method(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let customer = params.required_string("customer")?;
    params.finish()?;
    let attached = ctx
        .retry(|| async {
            load_customer(&ctx, &customer, Named::InParam("customer")).await?;
            let pm = resolve(&ctx, &id, Named::InPath("payment_method")).await?;
            Ok(match attach_writes(&ctx, &pm, &customer)? {
                Some(done) => done,
                None => (Vec::new(), pm.data().clone()),
            })
        })
        .await?;
    ctx.respond(attached).await
}

async fn detach_payment_method(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let detached = ctx
        .retry(|| async {
            let pm = ctx.load("payment_method", &id, "payment_method").await?;
            let Some(customer_id) = pm.data["customer"].as_str().map(str::to_owned) else {
                return Err(ApiError::invalid_param(
                    "payment_method",
                    "The payment method you provided is not attached to a customer so detachment is impossible.",
                ));
            };
            let mut doc = pm.data.clone();
            doc["customer"] = Value::Null;
            bookkeeping::update(&mut doc, |b| b.consumed = true);
            let mut writes = ctx.update_with_event(&pm, doc.clone(), "payment_method.detached");
            writes.extend(customer_forgets(&ctx, &customer_id, &id).await?);
            writes.extend(mandates_lapse(&ctx, &id).await?);
            Ok((writes, doc))
        })
        .await?;
    ctx.respond(detached).await
}

/// A customer whose default payment method is detached has none.
async fn customer_forgets(ctx: &Ctx, customer_id: &str, pm: &str) -> ApiResult<Vec<Write>> {
    let Some(customer) = ctx.get(customer_id).await? else {
        return Ok(Vec::new());
    };
    if customer.data["invoice_settings"]["default_payment_method"] != json!(pm) {
        return Ok(Vec::new());
    }
    let mut doc = customer.data.clone();
    doc["invoice_settings"]["default_payment_method"] = Value::Null;
    Ok(ctx.update_with_event(&customer, doc, "customer.updated"))
}

/// Mandates of a detached PaymentMethod become inactive.
async fn mandates_lapse(ctx: &Ctx, pm: &str) -> ApiResult<Vec<Write>> {
    let mut query = ListQuery::new("mandate");
    query.limit = 100;
    query
        .filters
        .push(Filter::Field("payment_method", vec![json!(pm)]));
    let mut writes = Vec::new();
    for mandate in ctx.list_records(&query).await? {
        if mandate.data["status"] == "inactive" {
            continue;
        }
        let mut doc = mandate.data.clone();
        doc["status"] = json!("inactive");
        writes.extend(ctx.update_with_event(&mandate, doc, "mandate.updated"));
    }
    Ok(writes)
}

fn take_type_filter(params: &mut Params) -> ApiResult<Option<Filter>> {
    Ok(params
        .string("type")?
        .map(|kind| Filter::Field("type", vec![json!(kind)])))
}

async fn list_payment_methods(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let customer = params.string("customer")?;
    let mut query = ListQuery::new("payment_method");
    query.filters.extend(take_type_filter(&mut params)?);
    params.finish()?;
    if let Some(customer) = customer {
        load_customer(&ctx, &customer, Named::InParam("customer")).await?;
        query.filters.push(Filter::Customer(customer));
    }
    ctx.list(query, &paging, "/v1/payment_methods").await
}

async fn list_customer_payment_methods(
    Path(customer): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let mut query = ListQuery::new("payment_method");
    query.filters.extend(take_type_filter(&mut params)?);
    if let Some(redisplay) = params.enum_value("allow_redisplay", REDISPLAY)? {
        query
            .filters
            .push(Filter::Field("allow_redisplay", vec![json!(redisplay)]));
    }
    params.finish()?;
    load_customer(&ctx, &customer, Named::InPath("customer")).await?;
    query.filters.push(Filter::Customer(customer.clone()));
    ctx.list(
        query,
        &paging,
        &format!("/v1/customers/{customer}/payment_methods"),
    )
    .await
}

async fn retrieve_customer_payment_method(
    Path((customer, id)): Path<(String, String)>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    load_customer(&ctx, &customer, Named::InPath("customer")).await?;
    let record = ctx.load("payment_method", &id, "payment_method").await?;
    if record.data["customer"] != json!(customer) {
        return Err(ApiError::no_such("PaymentMethod", &id, "payment_method"));
    }
    ctx.respond(record.data).await
}
