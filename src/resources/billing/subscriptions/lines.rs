//! The invoice lines a subscription bills: a whole period of an item, and
//! prorations (credit for unused time, charge for the remaining time) when
//! items change mid-period, which may wait on the subscription until
//! invoiced.

use serde_json::{Value, json};

use super::items::{interval_of, metered, unit_amount};
use crate::core::money::display as money;
use crate::http::api::Ctx;
use crate::http::error::ApiResult;
use crate::resources::billing::invoices::Line;

async fn product_name(ctx: &Ctx, price: &Value) -> ApiResult<String> {
    let id = price["product"].as_str().unwrap_or_default();
    Ok(match ctx.get(id).await? {
        Some(product) => product.data["name"].as_str().unwrap_or(id).to_owned(),
        None => id.to_owned(),
    })
}

/// A line billing one item for a whole period.
pub(super) async fn period_line(ctx: &Ctx, item: &Value, trial: bool) -> ApiResult<Line> {
    let price = &item["price"];
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let name = product_name(ctx, price).await?;
    let (interval, count) = interval_of(price);
    let every = if count == 1 {
        interval
    } else {
        format!("every {count} {interval}s")
    };
    let currency = price["currency"].as_str().unwrap_or("usd");
    let (amount, description) = if trial {
        (0, format!("Trial period for {name}"))
    } else if metered(price) {
        // Usage is billed in arrears: nothing is due up front.
        (
            0,
            format!(
                "{quantity} × {name} (at {} / {every}, metered)",
                money(unit_amount(price), currency)
            ),
        )
    } else {
        (
            crate::core::money::times(unit_amount(price), quantity, "quantity", currency)?,
            format!(
                "{quantity} × {name} (at {} / {every})",
                money(unit_amount(price), currency)
            ),
        )
    };
    Ok(Line {
        amount,
        description,
        price: price.clone(),
        quantity,
        period: (
            item["current_period_start"].as_i64().unwrap_or_default(),
            item["current_period_end"].as_i64().unwrap_or_default(),
        ),
        subscription_item: item["id"].as_str().map(str::to_owned),
        proration: false,
    })
}

/// Credit for the unused part of the current period, and the charge for
/// the rest of it at the new terms, as proration lines.
pub(super) async fn proration_lines(
    ctx: &Ctx,
    old: &[Value],
    new: &[Value],
    now: i64,
) -> ApiResult<Vec<Line>> {
    let mut lines = Vec::new();
    let quantity = |item: &Value| item["quantity"].as_i64().unwrap_or(1);
    let same = |a: &Value, b: &Value| {
        a["id"] == b["id"] && a["price"]["id"] == b["price"]["id"] && quantity(a) == quantity(b)
    };
    for (items, others, sign, prefix) in [
        (old, new, -1, "Unused time on"),
        (new, old, 1, "Remaining time on"),
    ] {
        for item in items {
            if others.iter().any(|o| same(item, o)) || metered(&item["price"]) {
                continue;
            }
            let start = item["current_period_start"].as_i64().unwrap_or(now);
            let end = item["current_period_end"].as_i64().unwrap_or(now);
            if end <= now || end <= start {
                continue;
            }
            let mut line = period_line(ctx, item, false).await?;
            line.amount = sign * crate::core::money::prorate(line.amount, end - now, end - start);
            line.description = format!("{prefix} {}", line.description);
            line.period = (now, end);
            line.proration = true;
            lines.push(line);
        }
    }
    Ok(lines)
}

pub(super) fn stored_line(line: &Line) -> Value {
    json!({
        "amount": line.amount, "description": line.description, "price": line.price,
        "quantity": line.quantity, "period": [line.period.0, line.period.1],
        "subscription_item": line.subscription_item,
    })
}

pub(super) fn line_from_stored(value: &Value) -> Line {
    Line {
        amount: value["amount"].as_i64().unwrap_or_default(),
        description: value["description"].as_str().unwrap_or_default().to_owned(),
        price: value["price"].clone(),
        quantity: value["quantity"].as_i64().unwrap_or(1),
        period: (
            value["period"][0].as_i64().unwrap_or_default(),
            value["period"][1].as_i64().unwrap_or_default(),
        ),
        subscription_item: value["subscription_item"].as_str().map(str::to_owned),
        proration: true,
    }
}
