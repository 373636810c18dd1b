//! Subscription items: parsing a request's `items`, the item documents a
//! subscription carries, and what the items' prices say (amount, interval,
//! usage type) and must agree on.

use serde_json::{Value, json};

use crate::core::bookkeeping::{self, Period};
use crate::core::registry::{ObjectSpec, to};
use crate::http::api::Ctx;
use crate::http::error::{ApiError, ApiResult};
use crate::http::params::Params;
use crate::resources::catalog::prices;
use crate::store::{Record, Write};

pub const SPEC: ObjectSpec = ObjectSpec::new("subscription_item", "si")
    .id_length(14)
    .list_url("/v1/subscription_items")
    .fields(&[("price", to("price"))]);

/// The legacy plan view of an item's price, shown on items and lines; it
/// carries its price's id.
pub const PLAN_SPEC: ObjectSpec = ObjectSpec::new("plan", "price")
    .custom_ids()
    .fields(&[("product", to("product"))]);

/// One requested item: its price (loaded or built from price_data).
pub(super) struct ItemSpec {
    pub(super) id: Option<String>,
    pub(super) price: Option<Value>,
    pub(super) quantity: Option<i64>,
    pub(super) metadata: Option<crate::http::params::MetadataUpdate>,
    pub(super) deleted: bool,
    pub(super) writes: Vec<Write>,
}

pub(super) async fn parse_items(
    ctx: &Ctx,
    params: &mut Params,
    updating: bool,
) -> ApiResult<Option<Vec<ItemSpec>>> {
    let Some(items) = params.object_list("items")? else {
        return Ok(None);
    };
    if items.len() > 20 {
        return Err(ApiError::invalid_param(
            "items",
            "A subscription can have at most 20 items.",
        ));
    }
    let mut specs = Vec::with_capacity(items.len());
    for mut item in items {
        let id = if updating { item.string("id")? } else { None };
        let deleted = if updating {
            item.bool("deleted")?.unwrap_or(false)
        } else {
            false
        };
        if updating {
            item.bool("clear_usage")?;
        }
        let price_param = item.name("price");
        let (price, writes) = item_price(ctx, &mut item, &price_param).await?;
        if price.is_none() && id.is_none() {
            return Err(ApiError::missing_param(&price_param));
        }
        let quantity_param = item.name("quantity");
        let quantity = match item.int("quantity")? {
            Some(q) if q < 0 => {
                return Err(ApiError::invalid_param(
                    item.name("quantity"),
                    "Invalid integer: quantity must be at least 0",
                ));
            }
            other => other,
        };
        if let Some(price) = &price {
            let currency = price["currency"].as_str().unwrap_or("usd");
            crate::core::money::times(
                unit_amount(price),
                quantity.unwrap_or(1),
                &quantity_param,
                currency,
            )?;
        }
        let metadata = item.metadata()?;
        item.finish()?;
        specs.push(ItemSpec {
            id,
            price,
            quantity,
            metadata,
            deleted,
            writes,
        });
    }
    Ok(Some(specs))
}

/// An item's recurring price: `price` (an active price's id) or
/// `price_data` (an inline price, with the writes that create it), or
/// neither when an update keeps the item's price.
async fn item_price(
    ctx: &Ctx,
    item: &mut Params,
    price_param: &str,
) -> ApiResult<(Option<Value>, Vec<Write>)> {
    let price_id = item.string("price")?;
    let price_data = item.object("price_data")?;
    let (price, writes) = match (price_id, price_data) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(format!(
                "You may only specify one of these parameters: {price_param}, {}.",
                item.name("price_data")
            ))
            .with_code("parameters_exclusive")
            .with_param(item.name("price_data")));
        }
        (Some(id), None) => {
            let record = prices::load_active_price(ctx, &id, price_param).await?;
            (Some(record.data), Vec::new())
        }
        (None, Some(data)) => {
            let (writes, price) = prices::price_from_data(ctx, data, true, false).await?;
            (Some(price), writes)
        }
        (None, None) => (None, Vec::new()),
    };
    if let Some(price) = &price
        && price["type"] != "recurring"
    {
        return Err(ApiError::invalid_param(
            price_param,
            format!(
                "The price specified ({}) is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
                price["id"].as_str().unwrap_or_default()
            ),
        ));
    }
    Ok((price, writes))
}

fn item_document(
    subscription: &str,
    price: &Value,
    quantity: i64,
    period: (i64, i64),
    now: i64,
) -> Value {
    json!({
        "id": SPEC.new_id(),
        "object": "subscription_item",
        "billing_thresholds": null,
        "created": now,
        "current_period_end": period.1,
        "current_period_start": period.0,
        "discounts": [],
        "metadata": {},
        "plan": plan_of(price),
        "price": price,
        "quantity": quantity,
        "subscription": subscription,
        "tax_rates": [],
    })
}

/// A new item from a request's item: its price, quantity (default 1) and metadata.
pub(super) fn new_item(
    spec: &ItemSpec,
    subscription: &str,
    period: (i64, i64),
    now: i64,
) -> ApiResult<Value> {
    let price = spec.price.as_ref().expect("new items carry a price");
    let mut item = item_document(subscription, price, spec.quantity.unwrap_or(1), period, now);
    if let Some(metadata) = &spec.metadata {
        metadata.apply(&mut item["metadata"])?;
    }
    Ok(item)
}

/// What the buyer agrees to be charged each period (an Amazon Pay
/// recurring agreement's amount).
pub(super) fn agreement_amount(items: &[Value], currency: &str) -> ApiResult<i64> {
    let amounts = items
        .iter()
        .map(|i| {
            let quantity = i["quantity"].as_i64().unwrap_or(1);
            crate::core::money::times(unit_amount(&i["price"]), quantity, "quantity", currency)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    crate::core::money::sum(amounts, "items", currency)
}

/// The legacy `plan` view of a recurring price that items still carry.
pub(super) fn plan_of(price: &Value) -> Value {
    json!({
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"],
        "livemode": false,
        "metadata": price["metadata"],
        "meter": price["recurring"]["meter"],
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": null,
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": price["recurring"]["usage_type"],
    })
}

pub(super) fn unit_amount(price: &Value) -> i64 {
    price["unit_amount"].as_i64().unwrap_or_else(|| {
        price["unit_amount_decimal"]
            .as_str()
            .and_then(|d| d.parse::<f64>().ok())
            .map_or(0, |d| d.round() as i64)
    })
}

pub(super) fn metered(price: &Value) -> bool {
    price["recurring"]["usage_type"] == "metered"
}

pub(super) fn interval_of(price: &Value) -> (String, i64) {
    (
        price["recurring"]["interval"]
            .as_str()
            .unwrap_or("month")
            .to_owned(),
        price["recurring"]["interval_count"].as_i64().unwrap_or(1),
    )
}

/// Hidden index fields lists filter on: the prices and the period.
pub(super) fn index(doc: &mut Value) {
    let items = doc["items"]["data"].as_array().cloned().unwrap_or_default();
    let prices = items
        .iter()
        .filter_map(|i| i["price"]["id"].as_str().map(str::to_owned))
        .collect();
    let start = items
        .iter()
        .filter_map(|i| i["current_period_start"].as_i64())
        .min();
    let end = items
        .iter()
        .filter_map(|i| i["current_period_end"].as_i64())
        .max();
    bookkeeping::update(doc, |b| {
        b.prices = prices;
        b.period = Some(Period { start, end });
    });
}

pub(super) fn item_pointer(item: &Value, customer: &str) -> Record {
    let mut record = Record::new(
        "subscription_item",
        json!({"id": item["id"], "object": "subscription_item", "created": item["created"], "subscription": item["subscription"]}),
    );
    record.customer = Some(customer.to_owned());
    record
}

/// The prices' shared currency and interval (Stripe's classic billing needs
/// both to match; flexible billing allows mixed intervals, which stripe-twin
/// does not emulate yet).
pub(super) fn check_items_agree(
    items: &[ItemSpec],
    currency: Option<&str>,
    billing_mode: &Value,
) -> ApiResult<(String, (String, i64))> {
    let prices: Vec<&Value> = items.iter().filter_map(|i| i.price.as_ref()).collect();
    let first = prices[0];
    let currency_of = |p: &Value| p["currency"].as_str().unwrap_or_default().to_owned();
    for price in &prices {
        if currency_of(price) != currency_of(first) {
            return Err(ApiError::invalid_param(
                "items",
                "Currency and interval fields must match across all prices on this subscription. Found mismatch in currency field.",
            ));
        }
        if interval_of(price) != interval_of(first) {
            let message = if billing_mode["type"] == "flexible" {
                "stripe-twin does not emulate prices with different intervals on one subscription yet (flexible billing mode allows them): use prices of one interval."
            } else {
                "Currency and interval fields must match across all prices on this subscription. Found mismatch in interval field."
            };
            return Err(ApiError::invalid_param("items", message));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for price in &prices {
        if !seen.insert(price["id"].as_str().unwrap_or_default()) {
            return Err(ApiError::invalid_param(
                "items",
                format!(
                    "Cannot add multiple subscription items with the same price: {}",
                    price["id"].as_str().unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(currency) = currency
        && currency != currency_of(first)
    {
        return Err(ApiError::invalid_param(
            "currency",
            format!(
                "The currency {currency} does not match the currency of the prices on this subscription ({}).",
                currency_of(first)
            ),
        ));
    }
    Ok((currency_of(first), interval_of(first)))
}
