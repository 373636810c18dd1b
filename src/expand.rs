//! `expand[]`: replacing the IDs an object points at with the objects, up to
//! four levels deep, and showing the fields Stripe includes only on request.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Value, json};

use crate::api::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::store::{Filter, ListQuery};

pub const MAX_EXPAND_DEPTH: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expansion {
    /// An ID string that expands to the object it names.
    Reference,
    /// Stored with the object but shown only when expanded.
    Hidden,
    /// A list or object always shown in place, which deeper paths step
    /// into (`items.data.price.product` on a subscription).
    Embedded,
    /// A list of the customer's related objects, built when expanded.
    Related {
        object: &'static str,
        url_suffix: &'static str,
    },
    /// A list of the objects whose `field` names this one (an invoice's
    /// payments, a charge's refunds); `url` with `{id}` for this one's ID.
    Children {
        object: &'static str,
        field: &'static str,
        url: &'static str,
    },
}

/// What can be expanded on each object type (from the spec's
/// `x-expandableFields`, for the resources this server has).
fn expansion(object: &str, path: &str) -> Option<Expansion> {
    use Expansion::*;
    let kind = match (object, path) {
        (
            "customer",
            "default_source" | "invoice_settings.default_payment_method" | "test_clock",
        ) => Reference,
        ("customer", "tax" | "cash_balance" | "invoice_credit_balance") => Hidden,
        ("customer", "subscriptions") => Related {
            object: "subscription",
            url_suffix: "subscriptions",
        },
        ("customer", "sources") => Related {
            object: "source",
            url_suffix: "sources",
        },
        ("customer", "tax_ids") => Related {
            object: "tax_id",
            url_suffix: "tax_ids",
        },
        ("payment_method", "customer") => Reference,
        (
            "setup_intent",
            "customer" | "payment_method" | "mandate" | "single_use_mandate" | "latest_attempt"
            | "on_behalf_of" | "application",
        ) => Reference,
        ("mandate", "payment_method") => Reference,
        ("price", "product") => Reference,
        ("product", "default_price") => Reference,
        (
            "subscription",
            "customer"
            | "default_payment_method"
            | "default_source"
            | "latest_invoice"
            | "pending_setup_intent"
            | "schedule"
            | "test_clock"
            | "on_behalf_of"
            | "application",
        ) => Reference,
        ("subscription", "items") => Embedded,
        ("subscription_item", "price") => Reference,
        (
            "invoice",
            "customer"
            | "default_payment_method"
            | "default_source"
            | "subscription"
            | "test_clock"
            | "on_behalf_of"
            | "parent.subscription_details.subscription",
        ) => Reference,
        ("invoice", "lines") => Embedded,
        ("line_item", "subscription" | "parent.subscription_item_details.subscription") => {
            Reference
        }
        ("invoice", "confirmation_secret") => Hidden,
        ("invoice", "payments") => Children {
            object: "invoice_payment",
            field: "invoice",
            url: "/v1/invoice_payments?invoice={id}",
        },
        ("invoice_payment", "invoice" | "payment.payment_intent" | "payment.charge") => Reference,
        (
            "payment_intent",
            "customer" | "payment_method" | "latest_charge" | "review" | "on_behalf_of"
            | "application",
        ) => Reference,
        ("charge", "customer" | "payment_intent" | "balance_transaction" | "invoice") => Reference,
        // Stripe stopped including refunds in 2022-11-15; none are made here.
        ("charge", "refunds") => Children {
            object: "refund",
            field: "charge",
            url: "/v1/charges/{id}/refunds",
        },
        ("balance_transaction", "source") => Reference,
        (
            "checkout.session",
            "customer" | "setup_intent" | "payment_intent" | "subscription" | "invoice"
            | "payment_link",
        ) => Reference,
        ("checkout.session", "line_items") => Hidden,
        ("item", "price") => Reference,
        _ => return None,
    };
    Some(kind)
}

fn hidden_fields(object: &str) -> &'static [&'static str] {
    match object {
        "customer" => &["tax", "cash_balance", "invoice_credit_balance"],
        "invoice" => &["confirmation_secret", "payments"],
        "checkout.session" => &["line_items"],
        "charge" => &["refunds"],
        _ => &[],
    }
}

/// The object as shown when nothing is expanded (also what events carry).
pub fn strip_hidden(value: Value) -> Value {
    strip_hidden_except(value, &[])
}

fn strip_hidden_except(mut value: Value, keep: &[&str]) -> Value {
    let object = value["object"].as_str().unwrap_or_default().to_owned();
    if let Value::Object(map) = &mut value {
        // `_`-prefixed keys are stripe-twin's own bookkeeping, never shown.
        map.retain(|key, _| !key.starts_with('_'));
        for field in hidden_fields(&object) {
            if !keep.contains(field) {
                map.remove(*field);
            }
        }
    }
    if object == "balance_transaction" {
        crate::balance_transactions::as_of_now(&mut value);
    }
    value
}

/// Refuses, before anything is written, `expand[]` paths whose first step
/// an object of this type does not have (deeper steps are checked when the
/// answer is expanded).
pub fn check_paths(object: &str, paths: &[String]) -> ApiResult<()> {
    for path in paths {
        let segments: Vec<&str> = path.split('.').collect();
        let known =
            (1..=segments.len()).any(|n| expansion(object, &segments[..n].join(".")).is_some());
        if !known {
            return Err(cannot_expand(path));
        }
    }
    Ok(())
}

fn cannot_expand(path: &str) -> ApiError {
    ApiError::invalid_param(
        "expand",
        format!("This property cannot be expanded ({path})."),
    )
}

/// Applies every `expand[]` path to a response (an object or a list).
pub async fn expand(ctx: &Ctx, value: &mut Value, paths: &[String]) -> ApiResult<()> {
    let is_list = matches!(value["object"].as_str(), Some("list" | "search_result"));
    for path in paths {
        let segments: Vec<&str> = path.split('.').collect();
        // `data` steps into a list; only properties count as levels.
        let levels = segments.iter().filter(|s| **s != "data").count();
        if levels > MAX_EXPAND_DEPTH {
            return Err(ApiError::invalid_param(
                "expand",
                format!("You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property."),
            ));
        }
        if segments.iter().any(|s| s.is_empty()) {
            return Err(cannot_expand(path));
        }
        expand_path(ctx, value, &segments, path).await?;
    }
    // Hidden fields stay only where a path asked for them.
    let keep_for = |prefix: &str| -> Vec<&str> {
        paths
            .iter()
            .filter_map(|p| p.strip_prefix(prefix))
            .filter_map(|p| p.split('.').next())
            .collect()
    };
    if is_list {
        let keep = keep_for("data.");
        if let Some(items) = value["data"].as_array_mut() {
            for item in items {
                *item = strip_hidden_except(item.take(), &keep);
            }
        }
    } else {
        let keep = keep_for("");
        *value = strip_hidden_except(value.take(), &keep);
    }
    Ok(())
}

fn expand_path<'a>(
    ctx: &'a Ctx,
    value: &'a mut Value,
    segments: &'a [&'a str],
    full: &'a str,
) -> Pin<Box<dyn Future<Output = ApiResult<()>> + Send + 'a>> {
    Box::pin(async move {
        let Some(first) = segments.first() else {
            return Ok(());
        };
        if matches!(value["object"].as_str(), Some("list" | "search_result")) {
            if *first != "data" {
                return Err(cannot_expand(full));
            }
            if let Some(items) = value["data"].as_array_mut() {
                for item in items {
                    expand_path(ctx, item, &segments[1..], full).await?;
                }
            }
            return Ok(());
        }
        let object = value["object"].as_str().unwrap_or_default().to_owned();
        let (taken, kind) = (1..=segments.len())
            .find_map(|n| expansion(&object, &segments[..n].join(".")).map(|k| (n, k)))
            .ok_or_else(|| cannot_expand(full))?;
        let rest = &segments[taken..];
        let owner_id = value["id"].as_str().unwrap_or_default().to_owned();
        if matches!(kind, Expansion::Related { .. } | Expansion::Children { .. })
            && value.get(first).is_none()
        {
            value[*first] = Value::Null;
        }
        // Walk to the field; a missing or null parent leaves nothing to expand.
        let mut slot = &mut *value;
        for key in &segments[..taken] {
            match slot.get_mut(*key) {
                Some(next) => slot = next,
                None => return Ok(()),
            }
        }
        match kind {
            Expansion::Reference => {
                if let Value::String(id) = slot
                    && let Some(record) = ctx.get(id).await?
                {
                    // Keep the hidden fields that any requested path reaches
                    // through this object, not only this path's next step.
                    let full_segments: Vec<&str> = full.split('.').collect();
                    let walked = full_segments[..full_segments.len() - rest.len()].join(".");
                    let keep: Vec<&str> = ctx
                        .expand
                        .iter()
                        .map(String::as_str)
                        .chain(std::iter::once(full))
                        .filter_map(|p| p.strip_prefix(walked.as_str())?.strip_prefix('.'))
                        .filter_map(|p| p.split('.').next())
                        .collect();
                    *slot = strip_hidden_except(record.data, &keep);
                }
            }
            Expansion::Hidden | Expansion::Embedded => {}
            Expansion::Related { object, url_suffix } => {
                let filter = Filter::Customer(owner_id.clone());
                let url = format!("/v1/customers/{owner_id}/{url_suffix}");
                *slot = first_page(ctx, object, filter, url).await?;
            }
            Expansion::Children { object, field, url } => {
                let filter = Filter::Field(field, vec![json!(owner_id)]);
                let url = url.replace("{id}", &owner_id);
                *slot = first_page(ctx, object, filter, url).await?;
            }
        }
        if !rest.is_empty() && slot.is_object() {
            expand_path(ctx, slot, rest, full).await?;
        }
        Ok(())
    })
}

/// The first page (10) of the objects a filter selects, as an embedded list.
async fn first_page(
    ctx: &Ctx,
    object: &'static str,
    filter: Filter,
    url: String,
) -> ApiResult<Value> {
    let mut query = ListQuery::new(object);
    query.filters.push(filter);
    query.limit = 11;
    let mut records = ctx.list_records(&query).await?;
    let has_more = records.len() > 10;
    records.truncate(10);
    Ok(json!({
        "object": "list",
        "data": records.into_iter().map(|r| strip_hidden(r.data)).collect::<Vec<_>>(),
        "has_more": has_more,
        "url": url,
    }))
}
