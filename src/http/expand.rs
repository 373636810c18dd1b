//! `expand[]`: replacing the IDs an object points at with the objects, up to
//! four levels deep, and showing the fields Stripe includes only on request.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::http::api::Ctx;
use crate::http::error::{ApiError, ApiResult};
use crate::store::Owner;

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

/// At most this many distinct `expand[]` paths in one request.
pub const MAX_EXPAND_PATHS: usize = 32;

/// Applies every `expand[]` path to a response (an object or a list).
pub async fn expand(ctx: &Ctx, value: &mut Value, paths: &[String]) -> ApiResult<()> {
    let paths = distinct(paths)?;
    let is_list = matches!(value["object"].as_str(), Some("list" | "search_result"));
    for path in &paths {
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

/// The paths, each once, refused beyond [`MAX_EXPAND_PATHS`].
fn distinct(paths: &[String]) -> ApiResult<Vec<&str>> {
    let mut unique: Vec<&str> = Vec::new();
    for path in paths {
        if !unique.contains(&path.as_str()) {
            unique.push(path);
        }
    }
    if unique.len() > MAX_EXPAND_PATHS {
        return Err(ApiError::invalid_param(
            "expand",
            format!(
                "You cannot expand more than {MAX_EXPAND_PATHS} different properties in one request (you sent {}).",
                unique.len()
            ),
        ));
    }
    Ok(unique)
}

/// What one level of a path does to the objects it reaches: the slots
/// (JSON pointers) of references to load and of lists to build, and the
/// objects to walk on from, each with the segment its next step starts at.
#[derive(Default)]
struct Level {
    /// (slot, id, next): IDs to replace with their objects.
    references: Vec<(String, String, usize)>,
    /// (slot, owner id, what to list, next): embedded lists to build.
    lists: Vec<(String, String, Expansion, usize)>,
    /// (next, slot): objects reached without loading anything.
    onward: Vec<(usize, String)>,
}

/// Expands one path over every object it reaches, a level at a time, so
/// each level over a list page costs one query, not one per object.
async fn expand_path(ctx: &Ctx, root: &mut Value, segments: &[&str], full: &str) -> ApiResult<()> {
    // Segment index → the objects (JSON pointers) whose step starts there.
    let mut work: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    work.insert(0, vec![String::new()]);
    while let Some((at, nodes)) = work.pop_first() {
        if at >= segments.len() {
            continue;
        }
        let level = plan_level(root, &nodes, segments, at, full)?;
        let mut reached = level.onward;
        load_references(ctx, root, &level.references, segments, full).await?;
        for (slot, _, next) in level.references {
            if root.pointer(&slot).is_some_and(Value::is_object) {
                reached.push((next, slot));
            }
        }
        build_lists(ctx, root, &level.lists).await?;
        reached.extend(
            level
                .lists
                .into_iter()
                .map(|(slot, _, _, next)| (next, slot)),
        );
        for (next, slot) in reached {
            work.entry(next).or_default().push(slot);
        }
    }
    Ok(())
}

/// Finds, for each object at segment `at`, what the path's next step is.
fn plan_level(
    root: &mut Value,
    nodes: &[String],
    segments: &[&str],
    at: usize,
    full: &str,
) -> ApiResult<Level> {
    let mut level = Level::default();
    for pointer in nodes {
        let Some(node) = root.pointer_mut(pointer).filter(|n| n.is_object()) else {
            continue;
        };
        if matches!(node["object"].as_str(), Some("list" | "search_result")) {
            if segments[at] != "data" {
                return Err(cannot_expand(full));
            }
            let count = node["data"].as_array().map_or(0, Vec::len);
            level
                .onward
                .extend((0..count).map(|k| (at + 1, format!("{pointer}/data/{k}"))));
            continue;
        }
        let object = node["object"].as_str().unwrap_or_default().to_owned();
        let rest = &segments[at..];
        let (taken, kind) = (1..=rest.len())
            .find_map(|n| expansion(&object, &rest[..n].join(".")).map(|k| (n, k)))
            .ok_or_else(|| cannot_expand(full))?;
        let next = at + taken;
        let owner = node["id"].as_str().unwrap_or_default().to_owned();
        let is_list = matches!(kind, Expansion::Related { .. } | Expansion::Children { .. });
        if is_list && node.get(rest[0]).is_none() {
            node[rest[0]] = Value::Null;
        }
        let slot = format!("{pointer}/{}", rest[..taken].join("/"));
        // A missing or null parent leaves nothing to expand.
        let Some(field) = root.pointer(&slot) else {
            continue;
        };
        match kind {
            Expansion::Reference => match field {
                Value::String(id) => level.references.push((slot, id.clone(), next)),
                // Expanded by an earlier path: walk on through it.
                Value::Object(_) => level.onward.push((next, slot)),
                _ => {}
            },
            Expansion::Hidden | Expansion::Embedded => {
                if field.is_object() {
                    level.onward.push((next, slot));
                }
            }
            Expansion::Related { .. } | Expansion::Children { .. } => {
                level.lists.push((slot, owner, kind, next));
            }
        }
    }
    Ok(level)
}

/// Replaces the IDs of one level with their objects, loaded in one query.
async fn load_references(
    ctx: &Ctx,
    root: &mut Value,
    references: &[(String, String, usize)],
    segments: &[&str],
    full: &str,
) -> ApiResult<()> {
    if references.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = references.iter().map(|(_, id, _)| id.clone()).collect();
    let records: HashMap<String, Value> = ctx
        .get_many(&ids)
        .await?
        .into_iter()
        .map(|r| (r.id, r.data))
        .collect();
    for (slot, id, next) in references {
        let (Some(data), Some(target)) = (records.get(id), root.pointer_mut(slot)) else {
            continue;
        };
        // Keep the hidden fields that any requested path reaches through
        // this object, not only this path's next step.
        let walked = segments[..*next].join(".");
        let keep: Vec<&str> = ctx
            .expand
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(full))
            .filter_map(|p| p.strip_prefix(walked.as_str())?.strip_prefix('.'))
            .filter_map(|p| p.split('.').next())
            .collect();
        *target = strip_hidden_except(data.clone(), &keep);
    }
    Ok(())
}

/// The first page (10) of each list of one level, in one query per kind.
async fn build_lists(
    ctx: &Ctx,
    root: &mut Value,
    lists: &[(String, String, Expansion, usize)],
) -> ApiResult<()> {
    let mut kinds: Vec<Expansion> = Vec::new();
    for (_, _, kind, _) in lists {
        if !kinds.contains(kind) {
            kinds.push(*kind);
        }
    }
    for kind in kinds {
        let (object, owner) = match kind {
            Expansion::Related { object, .. } => (object, Owner::Customer),
            Expansion::Children { object, field, .. } => (object, Owner::Field(field)),
            _ => continue,
        };
        let mine: Vec<_> = lists.iter().filter(|(_, _, k, _)| *k == kind).collect();
        let owners: Vec<String> = mine.iter().map(|(_, o, _, _)| o.clone()).collect();
        let records = ctx.list_per_owner(object, owner, &owners, 11).await?;
        for (slot, owner_id, _, _) in mine {
            let data: Vec<Value> = records
                .iter()
                .filter(|r| owner.of(r) == Some(owner_id.as_str()))
                .take(11)
                .map(|r| strip_hidden(r.data.clone()))
                .collect();
            let url = match kind {
                Expansion::Related { url_suffix, .. } => {
                    format!("/v1/customers/{owner_id}/{url_suffix}")
                }
                Expansion::Children { url, .. } => url.replace("{id}", owner_id),
                _ => String::new(),
            };
            if let Some(target) = root.pointer_mut(slot) {
                let has_more = data.len() > 10;
                *target = json!({
                    "object": "list",
                    "data": data.into_iter().take(10).collect::<Vec<_>>(),
                    "has_more": has_more,
                    "url": url,
                });
            }
        }
    }
    Ok(())
}
