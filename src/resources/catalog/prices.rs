//! `/v1/prices`: create, retrieve, update, list and search (Stripe has no
//! price deletion), plus the helpers other resources use to resolve a
//! `price` or build one from inline `price_data`.
//!
//! Prices built from `price_data` ("inline prices") are stored as records
//! of type [`INLINE_PRICE_RECORD`] (their documents say `"object": "price"`
//! like any price): Stripe keeps them out of price lists and searches, and
//! they do not stop their product from being deleted.

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::http::api::{AppState, Call, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::params::{Params, Update};
use crate::http::search::{self, FieldKind};
use crate::resources::catalog::products::{self, ProductFields};

pub use super::price_data::{
    INLINE_PRICE_RECORD, MAX_UNIT_AMOUNT, SUPPORTED_CURRENCIES, check_currency, load_active_price,
    load_price,
};
use super::price_data::{
    INTERVALS, TAX_BEHAVIORS, exclusive, load_price_record, new_price_document, set_recurring,
    take_amount, take_recurring,
};
use crate::store::{Filter, ListQuery, Record, Write};

pub use super::price_data::SPEC;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/prices", get(list_prices).post(create_price))
        .route("/v1/prices/search", get(search_prices))
        .route("/v1/prices/{price}", get(retrieve_price).post(update_price))
}

const MAX_LOOKUP_KEY_LEN: usize = 200;
const MAX_LOOKUP_KEYS: usize = 10;
const SEARCH: search::Spec = search::Spec {
    object: "price",
    resource: "prices",
    url: "/v1/prices/search",
    fields: &[
        ("active", FieldKind::Boolean),
        ("currency", FieldKind::Text),
        ("lookup_key", FieldKind::Text),
        ("product", FieldKind::Text),
        ("type", FieldKind::Text),
        ("created", FieldKind::Number),
    ],
    paths: &[],
};

/// Builds (but does not write) a price from inline `price_data` as
/// subscription items and checkout line items send it: currency, product
/// (an existing product ID, required unless `product_data` is given and
/// allow_product_data is true), unit_amount | unit_amount_decimal,
/// recurring[interval|interval_count] (required when `recurring_required`),
/// tax_behavior. Stripe creates such prices as inactive (active=false).
/// Returns the writes to commit (the price insert, a product insert when
/// product_data was used, and their created events) and the price document.
pub async fn price_from_data(
    ctx: &Ctx,
    mut data: Params,
    recurring_required: bool,
    allow_product_data: bool,
) -> ApiResult<(Vec<Write>, Value)> {
    let currency_param = data.name("currency");
    let product_param = data.name("product");
    let product_data_param = data.name("product_data");
    let recurring_param = data.name("recurring");
    let amount_param = data.name("unit_amount");
    let currency = data.required_string("currency")?;
    let product = data.string("product")?;
    let product_data = if allow_product_data {
        data.object("product_data")?
            .map(|d| products::product_from_data(d, ProductFields::LineItemData, ctx.now()))
            .transpose()?
    } else {
        None
    };
    let amount = take_amount(&mut data)?;
    let recurring = take_recurring(&mut data, false)?;
    let tax_behavior = data.enum_value("tax_behavior", TAX_BEHAVIORS)?;
    data.finish()?;
    let currency = check_currency(&currency_param, &currency)?;
    if recurring_required && recurring.is_none() {
        return Err(ApiError::missing_param(&recurring_param));
    }
    let (unit_amount, unit_amount_decimal) =
        amount.ok_or_else(|| ApiError::missing_param(&amount_param))?;
    let mut writes = Vec::new();
    let product_id = match (product, product_data) {
        (Some(_), Some(_)) => {
            return Err(exclusive(&product_param, &product_data_param));
        }
        (Some(id), None) => {
            products::load_product(ctx, &id, Named::InParam(&product_param)).await?;
            id
        }
        (None, Some(product_doc)) => {
            let id = product_doc["id"].as_str().unwrap_or_default().to_owned();
            writes.push(Write::Insert(Record::new("product", product_doc.clone())));
            writes.push(ctx.event("product.created", &product_doc, None));
            id
        }
        (None, None) if allow_product_data => {
            return Err(ApiError::invalid(
                "You must specify either `product` or `product_data` when creating a price.",
            )
            .with_code("parameter_missing")
            .with_param(product_param));
        }
        (None, None) => return Err(ApiError::missing_param(&product_param)),
    };
    let mut doc = new_price_document(&product_id, &currency, ctx.now());
    doc["active"] = json!(false);
    doc["unit_amount"] = json!(unit_amount);
    doc["unit_amount_decimal"] = json!(unit_amount_decimal);
    set_recurring(&mut doc, recurring);
    if let Some(behavior) = tax_behavior {
        doc["tax_behavior"] = json!(behavior);
    }
    writes.push(Write::Insert(Record::new(INLINE_PRICE_RECORD, doc.clone())));
    writes.push(ctx.event("price.created", &doc, None));
    Ok((writes, doc))
}

fn take_transform_quantity(params: &mut Params) -> ApiResult<Option<Value>> {
    let Some(mut transform) = params.object("transform_quantity")? else {
        return Ok(None);
    };
    let divide_param = transform.name("divide_by");
    let divide_by = transform
        .int("divide_by")?
        .ok_or_else(|| ApiError::missing_param(&divide_param))?;
    if divide_by < 1 {
        return Err(ApiError::invalid_param(
            divide_param,
            "This value must be greater than or equal to 1.",
        ));
    }
    let round_param = transform.name("round");
    let round = transform
        .enum_value("round", &["down", "up"])?
        .ok_or_else(|| ApiError::missing_param(&round_param))?;
    transform.finish()?;
    Ok(Some(json!({"divide_by": divide_by, "round": round})))
}

fn check_lookup_key(key: &str) -> ApiResult<()> {
    if key.chars().count() > MAX_LOOKUP_KEY_LEN {
        return Err(ApiError::invalid_param(
            "lookup_key",
            format!(
                "Invalid string: {}...; must be at most {MAX_LOOKUP_KEY_LEN} characters",
                key.chars().take(10).collect::<String>()
            ),
        ));
    }
    Ok(())
}

/// The price (other than `except`) holding a lookup key, active or not.
async fn lookup_key_holder(
    ctx: &Ctx,
    key: &str,
    except: Option<&str>,
) -> ApiResult<Option<Record>> {
    let mut query = ListQuery::new("price");
    query
        .filters
        .push(Filter::Field("lookup_key", vec![json!(key)]));
    query.limit = 2;
    let holders = ctx.list_records(&query).await?;
    Ok(holders
        .into_iter()
        .find(|record| Some(record.id.as_str()) != except))
}

/// Frees `key` for a price: refused unless `transfer`, else the holder
/// loses it (with its `price.updated`).
async fn claim_lookup_key(
    ctx: &Ctx,
    key: &str,
    transfer: bool,
    claimant: Option<&str>,
    writes: &mut Vec<Write>,
) -> ApiResult<()> {
    let Some(holder) = lookup_key_holder(ctx, key, claimant).await? else {
        return Ok(());
    };
    if !transfer {
        return Err(ApiError::invalid_param(
            "lookup_key",
            format!("A price (`{}`) already uses that lookup key.", holder.id),
        ));
    }
    let mut doc = holder.data.clone();
    doc["lookup_key"] = Value::Null;
    writes.extend(ctx.update_with_event(&holder, doc, "price.updated"));
    Ok(())
}

async fn create_price(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let currency = params.required_string("currency")?;
    let product = params.string("product")?;
    let product_data = params
        .object("product_data")?
        .map(|d| products::product_from_data(d, ProductFields::PriceData, ctx.now()))
        .transpose()?;
    let amount = take_amount(&mut params)?;
    let recurring = take_recurring(&mut params, true)?;
    let tax_behavior = params.enum_value("tax_behavior", TAX_BEHAVIORS)?;
    // `tiered` was refused before this (not_emulated).
    params.enum_value("billing_scheme", &["per_unit", "tiered"])?;
    let transform_quantity = take_transform_quantity(&mut params)?;
    let active = params.bool("active")?;
    let nickname = params.string("nickname")?;
    let lookup_key = params.string("lookup_key")?;
    if let Some(key) = &lookup_key {
        check_lookup_key(key)?;
    }
    let transfer = params.bool("transfer_lookup_key")?.unwrap_or(false);
    let metadata = params.metadata()?;
    params.finish()?;
    let currency = check_currency("currency", &currency)?;
    let product_id = match (&product, &product_data) {
        (Some(_), Some(_)) => return Err(exclusive("product", "product_data")),
        (Some(id), None) => {
            products::load_product(&ctx, id, Named::InParam("product")).await?;
            id.clone()
        }
        (None, Some(doc)) => doc["id"].as_str().unwrap_or_default().to_owned(),
        (None, None) => {
            return Err(ApiError::invalid(
                "You must specify either `product` or `product_data` when creating a price.",
            )
            .with_code("parameter_missing")
            .with_param("product"));
        }
    };
    let (unit_amount, unit_amount_decimal) = amount.ok_or_else(|| {
        ApiError::invalid(
            "Prices require an `unit_amount` or `unit_amount_decimal` parameter to be set.",
        )
        .with_code("parameter_missing")
        .with_param("unit_amount")
    })?;
    let mut doc = new_price_document(&product_id, &currency, ctx.now());
    doc["unit_amount"] = json!(unit_amount);
    doc["unit_amount_decimal"] = json!(unit_amount_decimal);
    set_recurring(&mut doc, recurring);
    if let Some(behavior) = tax_behavior {
        doc["tax_behavior"] = json!(behavior);
    }
    if let Some(active) = active {
        doc["active"] = json!(active);
    }
    if let Some(transform) = transform_quantity {
        doc["transform_quantity"] = transform;
    }
    doc["nickname"] = json!(nickname);
    doc["lookup_key"] = json!(lookup_key);
    if let Some(metadata) = metadata {
        metadata.apply(&mut doc["metadata"])?;
    }
    ctx.retry(|| async {
        let mut writes = Vec::new();
        if let Some(key) = &lookup_key {
            claim_lookup_key(&ctx, key, transfer, None, &mut writes).await?;
        }
        if let Some(product_doc) = &product_data {
            products::ensure_id_free(&ctx, &product_id).await?;
            writes.push(Write::Insert(Record::new("product", product_doc.clone())));
            writes.push(ctx.event("product.created", product_doc, None));
        }
        writes.push(Write::Insert(Record::new("price", doc.clone())));
        writes.push(ctx.event("price.created", &doc, None));
        Ok((writes, ()))
    })
    .await?;
    ctx.respond(doc).await
}

async fn retrieve_price(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = load_price_record(&ctx, &id, Named::InPath("price")).await?;
    ctx.respond(record.data).await
}

async fn update_price(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let active = params.bool("active")?;
    let nickname = params.nullable_string("nickname")?;
    let lookup_key = params.nullable_string("lookup_key")?;
    if let Some(Update::Set(key)) = &lookup_key {
        check_lookup_key(key)?;
    }
    let transfer = params.bool("transfer_lookup_key")?.unwrap_or(false);
    let tax_behavior = params.enum_value("tax_behavior", TAX_BEHAVIORS)?;
    let metadata = params.metadata()?;
    params.finish()?;
    let updated = ctx
        .retry(|| async {
            let record = load_price_record(&ctx, &id, Named::InPath("price")).await?;
            let mut doc = record.data.clone();
            let mut writes = Vec::new();
            if let Some(active) = active {
                if !active && doc["active"] == json!(true) {
                    refuse_archiving_default(&ctx, &doc).await?;
                }
                doc["active"] = json!(active);
            }
            if let Some(nickname) = &nickname {
                doc["nickname"] = match nickname {
                    Update::Set(name) => json!(name),
                    Update::Unset => Value::Null,
                };
            }
            if let Some(behavior) = &tax_behavior {
                let current = doc["tax_behavior"].as_str().unwrap_or("unspecified");
                if current != "unspecified" && current != behavior {
                    return Err(ApiError::invalid_param(
                        "tax_behavior",
                        format!(
                            "This price's tax_behavior is `{current}`: once a price's tax_behavior is inclusive or exclusive, it cannot be changed."
                        ),
                    ));
                }
                doc["tax_behavior"] = json!(behavior);
            }
            match &lookup_key {
                Some(Update::Set(key)) => {
                    claim_lookup_key(&ctx, key, transfer, Some(&id), &mut writes).await?;
                    doc["lookup_key"] = json!(key);
                }
                Some(Update::Unset) => doc["lookup_key"] = Value::Null,
                None => {}
            }
            if let Some(metadata) = &metadata {
                metadata.apply(&mut doc["metadata"])?;
            }
            writes.extend(ctx.update_with_event(&record, doc.clone(), "price.updated"));
            Ok((writes, doc))
        })
        .await?;
    ctx.respond(updated).await
}

/// Stripe keeps a product's default price active.
async fn refuse_archiving_default(ctx: &Ctx, price: &Value) -> ApiResult<()> {
    let product = price["product"].as_str().unwrap_or_default();
    if let Some(record) = ctx.get(product).await?
        && record.data["default_price"] == price["id"]
    {
        return Err(ApiError::invalid_param(
            "active",
            "This price cannot be archived because it is the default price of its product.",
        ));
    }
    Ok(())
}

async fn list_prices(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let active = params.bool("active")?;
    let currency = params.string("currency")?;
    let product = params.string("product")?;
    let kind = params.enum_value("type", &["one_time", "recurring"])?;
    let lookup_keys = params.string_list("lookup_keys")?;
    let (mut interval, mut usage_type, mut meter) = (None, None, None);
    if let Some(mut recurring) = params.object("recurring")? {
        interval = recurring.enum_value("interval", INTERVALS)?;
        usage_type = recurring.enum_value("usage_type", &["licensed", "metered"])?;
        meter = recurring.string("meter")?;
        recurring.finish()?;
    }
    params.finish()?;
    let mut query = ListQuery::new("price");
    if let Some(active) = active {
        query
            .filters
            .push(Filter::Field("active", vec![json!(active)]));
    }
    if let Some(currency) = currency {
        let currency = check_currency("currency", &currency)?;
        query
            .filters
            .push(Filter::Field("currency", vec![json!(currency)]));
    }
    if let Some(product) = product {
        products::load_product(&ctx, &product, Named::InParam("product")).await?;
        query
            .filters
            .push(Filter::Field("product", vec![json!(product)]));
    }
    if let Some(kind) = kind {
        query.filters.push(Filter::Field("type", vec![json!(kind)]));
    }
    if let Some(keys) = lookup_keys {
        if keys.len() > MAX_LOOKUP_KEYS {
            return Err(ApiError::invalid_param(
                "lookup_keys",
                format!(
                    "You can pass up to {MAX_LOOKUP_KEYS} lookup_keys, but you passed {}.",
                    keys.len()
                ),
            ));
        }
        query.filters.push(Filter::Field(
            "lookup_key",
            keys.into_iter().map(Value::String).collect(),
        ));
    }
    for (path, value) in [
        ("recurring.interval", interval),
        ("recurring.usage_type", usage_type),
        ("recurring.meter", meter),
    ] {
        if let Some(value) = value {
            query.filters.push(Filter::Field(path, vec![json!(value)]));
        }
    }
    ctx.list(query, &paging, "/v1/prices").await
}

async fn search_prices(Call { ctx, params }: Call) -> ApiResult<Json<Value>> {
    ctx.search_resource(params, &SEARCH).await
}
