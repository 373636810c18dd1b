//! The parameters of `create` that need more than a line: `line_items`
//! (each price loaded or made from `price_data`, checked against the
//! session's mode and currency) and the `*_intent_data` /
//! `subscription_data` kept on the session for what the buyer's payment
//! creates later.

use serde_json::{Value, json};

use crate::core::registry::{ObjectSpec, to};
use crate::http::api::Ctx;
use crate::http::error::{ApiError, ApiResult};
use crate::http::params::{Params, Patch};
use crate::resources::catalog::prices;
use crate::store::Write;

/// A Checkout Session's line item.
pub const ITEM_SPEC: ObjectSpec = ObjectSpec::new("item", "li").fields(&[("price", to("price"))]);

const MAX_PAYMENT_LINE_ITEMS: usize = 100;
const MAX_SUBSCRIPTION_LINE_ITEMS: usize = 20;

/// One line item as requested: its price (loaded, or made from price_data)
/// and quantity.
pub(super) struct LineItem {
    price: Value,
    quantity: i64,
    description: String,
}

pub(super) fn exclusive(first: &str, second: &str) -> ApiError {
    ApiError::invalid(format!(
        "You may only specify one of these parameters: {first}, {second}."
    ))
    .with_code("parameters_exclusive")
    .with_param(second.to_owned())
}

/// A parameter that only some modes take.
pub(super) fn not_in_mode(param: &str, mode: &str) -> ApiError {
    ApiError::invalid_param(
        param,
        format!("You can not pass `{param}` in `{mode}` mode."),
    )
}

pub(super) async fn parse_line_items(
    ctx: &Ctx,
    params: &mut Params,
    mode: &str,
    writes: &mut Vec<Write>,
) -> ApiResult<Vec<LineItem>> {
    let Some(items) = params.object_list("line_items")? else {
        return Ok(Vec::new());
    };
    let max = if mode == "subscription" {
        MAX_SUBSCRIPTION_LINE_ITEMS
    } else {
        MAX_PAYMENT_LINE_ITEMS
    };
    if items.len() > max {
        return Err(ApiError::invalid_param(
            "line_items",
            format!("You may only specify up to {max} line items in `{mode}` mode."),
        ));
    }
    let mut parsed = Vec::with_capacity(items.len());
    for mut item in items {
        let price_param = item.name("price");
        let data_param = item.name("price_data");
        let price = match (item.string("price")?, item.object("price_data")?) {
            (Some(_), Some(_)) => return Err(exclusive(&price_param, &data_param)),
            (Some(id), None) => {
                let record = prices::load_active_price(ctx, &id, &price_param).await?;
                record.data
            }
            (None, Some(data)) => {
                let (price_writes, price) = prices::price_from_data(ctx, data, false, true).await?;
                writes.extend(price_writes);
                price
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "You must provide either price or price_data for each line item when using prices.",
                )
                .with_param(item.path().to_owned()));
            }
        };
        let quantity = quantity_of(&mut item)?;
        if price["unit_amount"].is_null() {
            return Err(ApiError::invalid_param(
                &price_param,
                "stripe-twin emulates prices with a unit_amount only (no tiers or custom amounts) in Checkout.",
            ));
        }
        // Tax rates and adjustable quantities are refused before this
        // (not_emulated) unless they ask for nothing.
        item.finish()?;
        let description = match price["product"].as_str() {
            Some(product) => ctx
                .get(product)
                .await?
                .and_then(|p| p.data["name"].as_str().map(str::to_owned))
                .or_else(|| {
                    // A product made in this same request by price_data.
                    writes.iter().find_map(|w| match w {
                        Write::Insert(r) if r.id == product => {
                            r.data["name"].as_str().map(str::to_owned)
                        }
                        _ => None,
                    })
                })
                .unwrap_or_default(),
            None => String::new(),
        };
        parsed.push(LineItem {
            price,
            quantity,
            description,
        });
    }
    Ok(parsed)
}

/// A line item's `quantity`: required, from 1 to 999999.
fn quantity_of(item: &mut Params) -> ApiResult<i64> {
    match item.int("quantity")? {
        Some(quantity) if quantity < 1 => Err(ApiError::invalid_param(
            item.name("quantity"),
            "This value must be greater than or equal to 1.",
        )
        .with_code("parameter_invalid_integer")),
        Some(quantity) if quantity > 999_999 => Err(ApiError::invalid_param(
            item.name("quantity"),
            "This value must be less than or equal to 999999.",
        )
        .with_code("parameter_invalid_integer")),
        Some(quantity) => Ok(quantity),
        None => Err(ApiError::invalid_param(
            item.path(),
            format!("Quantity is required. Add `quantity` to `{}`", item.path()),
        )),
    }
}

/// Stripe's line item object (`item`).
pub(super) fn item_document(ctx: &Ctx, item: &LineItem) -> Value {
    let amount = item.price["unit_amount"].as_i64().unwrap_or_default() * item.quantity;
    json!({
        "id": ITEM_SPEC.new_id(),
        "object": "item",
        "adjustable_quantity": null,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": item.price["currency"],
        "description": item.description,
        "metadata": {},
        "price": ctx.strip_hidden(item.price.clone()),
        "quantity": item.quantity,
    })
}

/// The currency every line item shares, checked against `currency`.
pub(super) fn line_items_currency(
    items: &[LineItem],
    currency: Option<&str>,
) -> ApiResult<Option<String>> {
    let Some(first) = items.first() else {
        return Ok(currency.map(str::to_owned));
    };
    let first_currency = first.price["currency"].as_str().unwrap_or_default();
    for (index, item) in items.iter().enumerate() {
        if item.price["currency"] != json!(first_currency) {
            return Err(ApiError::invalid_param(
                format!("line_items[{index}][price]"),
                "All line items must use the same currency: stripe-twin does not emulate multi-currency prices (currency_options).",
            ));
        }
    }
    if let Some(currency) = currency
        && currency != first_currency
    {
        return Err(ApiError::invalid_param(
            "currency",
            format!(
                "The currency {currency} does not match the currency of the line items ({first_currency}); stripe-twin does not emulate multi-currency prices (currency_options)."
            ),
        ));
    }
    Ok(Some(first_currency.to_owned()))
}

/// Which prices each mode accepts.
pub(super) fn check_items_for_mode(items: &[LineItem], mode: &str) -> ApiResult<()> {
    let recurring = |item: &LineItem| item.price["type"] == "recurring";
    match mode {
        "setup" if !items.is_empty() => Err(not_in_mode("line_items", "setup")),
        "payment" | "subscription" if items.is_empty() => {
            Err(ApiError::missing_param("line_items"))
        }
        "payment" => match items.iter().position(recurring) {
            Some(index) => Err(ApiError::invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.",
            )
            .with_param(format!("line_items[{index}][price]"))),
            None => Ok(()),
        },
        "subscription" => {
            if !items.iter().any(recurring) {
                return Err(ApiError::invalid(
                    "You must provide at least one recurring price in `subscription` mode when using prices.",
                )
                .with_param("line_items"));
            }
            if let Some(index) = items.iter().position(|i| !recurring(i)) {
                return Err(ApiError::invalid_param(
                    format!("line_items[{index}][price]"),
                    "stripe-twin does not emulate one-time prices in `subscription` mode (Stripe adds them to the first invoice): use recurring prices only.",
                ));
            }
            let interval = |item: &LineItem| {
                (
                    item.price["recurring"]["interval"].clone(),
                    item.price["recurring"]["interval_count"].clone(),
                )
            };
            if let Some(index) = items
                .iter()
                .position(|i| interval(i) != interval(&items[0]))
            {
                return Err(ApiError::invalid_param(
                    format!("line_items[{index}][price]"),
                    "All prices in `subscription` mode must have the same billing interval.",
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for (index, item) in items.iter().enumerate() {
                if !seen.insert(item.price["id"].as_str().unwrap_or_default()) {
                    return Err(ApiError::invalid_param(
                        format!("line_items[{index}][price]"),
                        format!(
                            "Cannot add multiple subscription items with the same price: {}",
                            item.price["id"].as_str().unwrap_or_default()
                        ),
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `setup_intent_data`, `payment_intent_data` or `subscription_data`:
/// taken only in their own mode.
pub(super) fn mode_data(
    params: &mut Params,
    key: &str,
    owner: &str,
    mode: &str,
) -> ApiResult<Option<Params>> {
    let data = params.object(key)?;
    if data.is_some() && mode != owner {
        return Err(not_in_mode(key, mode));
    }
    Ok(data)
}

pub(super) fn metadata_of(params: &mut Params) -> ApiResult<Value> {
    let mut holder = json!({"metadata": {}});
    let mut patch = Patch::default();
    patch.set_metadata(params.metadata()?);
    patch.apply(&mut holder)?;
    Ok(holder["metadata"].take())
}

pub(super) fn setup_intent_data(data: Option<Params>) -> ApiResult<Value> {
    let Some(mut data) = data else {
        return Ok(json!({}));
    };
    let description = data.string("description")?;
    let metadata = metadata_of(&mut data)?;
    data.finish()?;
    Ok(json!({"description": description, "metadata": metadata}))
}

pub(super) fn payment_intent_data(data: Option<Params>) -> ApiResult<Value> {
    let Some(mut data) = data else {
        return Ok(json!({}));
    };
    let setup_future_usage =
        data.enum_value("setup_future_usage", &["off_session", "on_session"])?;
    let description = data.string("description")?;
    let metadata = metadata_of(&mut data)?;
    let receipt_email = data.string("receipt_email")?;
    let statement_descriptor = data.string("statement_descriptor")?;
    let suffix = data.string("statement_descriptor_suffix")?;
    // `manual` was refused before this (not_emulated).
    data.enum_value(
        "capture_method",
        &["automatic", "automatic_async", "manual"],
    )?;
    data.finish()?;
    Ok(json!({
        "setup_future_usage": setup_future_usage,
        "description": description,
        "metadata": metadata,
        "receipt_email": receipt_email,
        "statement_descriptor": statement_descriptor,
        "statement_descriptor_suffix": suffix,
    }))
}

/// `subscription_data`, kept as the subscription create parameters it
/// becomes when the buyer pays.
pub(super) fn subscription_data(data: Option<Params>, now: i64) -> ApiResult<Value> {
    let Some(mut data) = data else {
        return Ok(json!({}));
    };
    let trial_days = data.int_in("trial_period_days", 1, 730)?;
    let trial_end = data.int("trial_end")?;
    if trial_days.is_some() && trial_end.is_some() {
        return Err(exclusive(
            &data.name("trial_end"),
            &data.name("trial_period_days"),
        ));
    }
    if let Some(end) = trial_end
        && end < now + 2 * 24 * 60 * 60
    {
        return Err(ApiError::invalid_param(
            data.name("trial_end"),
            "The `trial_end` date has to be at least 2 days in the future.",
        ));
    }
    let description = data.string("description")?;
    let metadata = metadata_of(&mut data)?;
    let billing_mode = crate::resources::billing::subscriptions::billing_mode_param(&mut data)?;
    data.finish()?;
    Ok(json!({
        "trial_period_days": trial_days,
        "trial_end": trial_end,
        "description": description,
        "metadata": metadata,
        "billing_mode": billing_mode,
    }))
}
