//! Parsing subscription create and update parameters into requests the
//! `create` and `update` modules apply, and the checks they need.

use serde_json::{Value, json};

use super::items::{ItemSpec, parse_items};
use super::{BEHAVIORS, DAY, MAX_TRIAL_DAYS};
use crate::http::api::Ctx;
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::form::Node;
use crate::http::params::{Params, Patch, Update};
use crate::resources::catalog::prices;
use crate::resources::payments::{intents, payment_methods};

/// Since 2025-09-30, API-created subscriptions bill in flexible mode.
/// (`updated_at` appears only when a migration sets it.)
pub(super) fn default_billing_mode() -> Value {
    json!({"flexible": {"proration_discounts": "included"}, "type": "flexible"})
}

/// `billing_mode[type]` and `billing_mode[flexible][proration_discounts]`
/// (subscription create, and Checkout's `subscription_data`). Without
/// discounts the two proration displays are the same here.
pub fn billing_mode_param(params: &mut Params) -> ApiResult<Value> {
    let Some(mut mode) = params.object("billing_mode")? else {
        return Ok(default_billing_mode());
    };
    let kind = mode
        .enum_value("type", &["classic", "flexible"])?
        .ok_or_else(|| ApiError::missing_param(&mode.name("type")))?;
    let flexible_param = mode.name("flexible");
    let value = match (kind.as_str(), mode.object("flexible")?) {
        ("flexible", Some(mut flexible)) => {
            let discounts = flexible
                .enum_value("proration_discounts", &["included", "itemized"])?
                .unwrap_or_else(|| "included".to_owned());
            flexible.finish()?;
            json!({"flexible": {"proration_discounts": discounts}, "type": "flexible"})
        }
        ("flexible", None) => default_billing_mode(),
        (_, Some(_)) => {
            return Err(ApiError::invalid_param(
                flexible_param,
                "`billing_mode[flexible]` can only be set when `billing_mode[type]` is `flexible`.",
            ));
        }
        (_, None) => json!({"flexible": null, "type": "classic"}),
    };
    mode.finish()?;
    Ok(value)
}

/// `trial_end=now|<timestamp>`.
fn trial_end_param(params: &mut Params, now: i64) -> ApiResult<Option<Option<i64>>> {
    match params.take_node("trial_end") {
        None => Ok(None),
        Some(Node::Str(value)) if value == "now" => Ok(Some(None)),
        Some(Node::Str(value)) => {
            let ts: i64 = value.parse().map_err(|_| {
                ApiError::invalid_param(
                    "trial_end",
                    format!("Invalid trial_end: must be `now` or a timestamp (you sent {value})"),
                )
            })?;
            if ts <= now {
                return Err(ApiError::invalid_param(
                    "trial_end",
                    "Invalid timestamp: must be an integer Unix timestamp in the future.",
                ));
            }
            if ts > now + MAX_TRIAL_DAYS * DAY {
                return Err(ApiError::invalid_param(
                    "trial_end",
                    "Invalid timestamp: can be no more than two years in the future",
                ));
            }
            Ok(Some(Some(ts)))
        }
        Some(_) => Err(ApiError::invalid_param(
            "trial_end",
            "Invalid trial_end: must be `now` or a timestamp",
        )),
    }
}

fn future_timestamp(params: &mut Params, key: &str, now: i64) -> ApiResult<Option<i64>> {
    match params.int(key)? {
        Some(ts) if ts <= now => Err(ApiError::invalid_param(
            key,
            format!("Invalid timestamp: {key} must be in the future."),
        )),
        other => Ok(other),
    }
}

fn payment_settings(params: &mut Params, doc: &mut Value) -> ApiResult<()> {
    let Some(mut settings) = params.object("payment_settings")? else {
        return Ok(());
    };
    if let Some(types) = settings.string_list("payment_method_types")? {
        intents::check_types(&settings.name("payment_method_types"), &types, "charges")?;
        doc["payment_settings"]["payment_method_types"] = json!(types);
    }
    if let Some(save) =
        settings.enum_value("save_default_payment_method", &["off", "on_subscription"])?
    {
        doc["payment_settings"]["save_default_payment_method"] = json!(save);
    }
    settings.take_node("payment_method_options");
    settings.finish()
}

/// The payment method the subscription charges, checked to belong to the customer.
pub(super) async fn check_default_payment_method(
    ctx: &Ctx,
    pm_id: &str,
    customer: &str,
) -> ApiResult<()> {
    let pm = payment_methods::resolve(ctx, pm_id, Named::InParam("default_payment_method")).await?;
    if pm.data()["customer"].as_str() != Some(customer) {
        return Err(ApiError::invalid_param(
            "default_payment_method",
            format!(
                "The customer does not have a payment method with the ID {pm_id}. The payment method must be attached to the customer."
            ),
        )
        .with_code("resource_missing"));
    }
    Ok(())
}

pub(super) struct CreateRequest {
    pub(super) customer: String,
    pub(super) items: Vec<ItemSpec>,
    pub(super) default_payment_method: Option<String>,
    pub(super) off_session: bool,
    pub(super) behavior: String,
    pub(super) trial_end: Option<i64>,
    pub(super) cancel_at_period_end: bool,
    pub(super) cancel_at: Option<i64>,
    pub(super) collection_method: String,
    pub(super) days_until_due: Option<i64>,
    pub(super) billing_cycle_anchor: Option<i64>,
    pub(super) currency: Option<String>,
    pub(super) patch: Patch,
    pub(super) settings: Value,
    pub(super) billing_mode: Value,
}

pub(super) async fn parse_create(
    ctx: &Ctx,
    params: &mut Params,
    now: i64,
) -> ApiResult<CreateRequest> {
    let customer = params.required_string("customer")?;
    let items = parse_items(ctx, params, false)
        .await?
        .filter(|items| !items.is_empty())
        .ok_or_else(|| ApiError::missing_param("items"))?;
    parse_create_options(params, now, customer, items)
}

pub(super) fn parse_create_options(
    params: &mut Params,
    now: i64,
    customer: String,
    items: Vec<ItemSpec>,
) -> ApiResult<CreateRequest> {
    let default_payment_method = params.string("default_payment_method")?;
    let off_session = params.bool("off_session")?.unwrap_or(false);
    let behavior = params
        .enum_value("payment_behavior", BEHAVIORS)?
        .unwrap_or_else(|| "allow_incomplete".to_owned());
    if behavior == "pending_if_incomplete" {
        return Err(ApiError::invalid_param(
            "payment_behavior",
            "payment_behavior=pending_if_incomplete is only supported when updating a subscription.",
        ));
    }
    let trial_end = create_trial_end(params, now, &items)?;
    let cancel_at_period_end = params.bool("cancel_at_period_end")?.unwrap_or(false);
    let cancel_at = future_timestamp(params, "cancel_at", now)?;
    if cancel_at_period_end && cancel_at.is_some() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
        )
        .with_code("parameters_exclusive")
        .with_param("cancel_at"));
    }
    let (collection_method, days_until_due) = create_collection(params)?;
    let billing_cycle_anchor = future_timestamp(params, "billing_cycle_anchor", now)?;
    let currency = params
        .string("currency")?
        .map(|c| prices::check_currency("currency", &c))
        .transpose()?;
    let mut patch = Patch::default();
    patch.set_metadata(params.metadata()?);
    if let Some(description) = params.string("description")? {
        patch.set(&["description"], json!(description));
    }
    let mut settings = json!({"payment_settings": {}});
    payment_settings(params, &mut settings)?;
    let billing_mode = billing_mode_param(params)?;
    params.enum_value(
        "proration_behavior",
        &["always_invoice", "create_prorations", "none"],
    )?;
    // Taxes, discounts and Connect are refused before this (not_emulated).
    trial_settings(params, &mut patch)?;
    Ok(CreateRequest {
        customer,
        items,
        default_payment_method,
        off_session,
        behavior,
        trial_end,
        cancel_at_period_end,
        cancel_at,
        collection_method,
        days_until_due,
        billing_cycle_anchor,
        currency,
        patch,
        settings: settings["payment_settings"].take(),
        billing_mode,
    })
}

/// When a new subscription's trial ends, from `trial_period_days`,
/// `trial_end` or `trial_from_plan` (one of them at most); `None` for no trial.
fn create_trial_end(params: &mut Params, now: i64, items: &[ItemSpec]) -> ApiResult<Option<i64>> {
    let trial_days = params.int_in("trial_period_days", 0, MAX_TRIAL_DAYS)?;
    let trial_end = trial_end_param(params, now)?;
    if trial_days.is_some() && trial_end.is_some() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: trial_end, trial_period_days.",
        )
        .with_code("parameters_exclusive")
        .with_param("trial_end"));
    }
    let trial_from_plan = params.bool("trial_from_plan")?.unwrap_or(false);
    if trial_from_plan && (trial_days.is_some() || trial_end.is_some()) {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: trial_from_plan, trial_end, trial_period_days.",
        )
        .with_code("parameters_exclusive")
        .with_param("trial_from_plan"));
    }
    // trial_from_plan: the prices' own trial_period_days.
    let plan_days = items
        .iter()
        .filter_map(|i| i.price.as_ref()?["recurring"]["trial_period_days"].as_i64())
        .max()
        .filter(|_| trial_from_plan);
    let trial_end = match (trial_days.or(plan_days), trial_end) {
        (Some(0), _) => None,
        (Some(days), _) => Some(now + days * DAY),
        (None, Some(end)) => end,
        (None, None) => None,
    };
    Ok(trial_end)
}

/// `collection_method` (default `charge_automatically`) and the
/// `days_until_due` that `send_invoice`, and only it, needs.
fn create_collection(params: &mut Params) -> ApiResult<(String, Option<i64>)> {
    let collection_method = params
        .enum_value(
            "collection_method",
            &["charge_automatically", "send_invoice"],
        )?
        .unwrap_or_else(|| "charge_automatically".to_owned());
    let days_until_due = params.int_in("days_until_due", 0, 730)?;
    match (collection_method.as_str(), days_until_due) {
        ("send_invoice", None) => return Err(ApiError::missing_param("days_until_due")),
        ("charge_automatically", Some(_)) => {
            return Err(ApiError::invalid_param(
                "days_until_due",
                "Days until due can only be set when collection_method is send_invoice.",
            ));
        }
        _ => {}
    }
    Ok((collection_method, days_until_due))
}

pub(super) struct UpdateRequest {
    pub(super) patch: Patch,
    pub(super) items: Option<Vec<ItemSpec>>,
    pub(super) default_payment_method: Option<Update<String>>,
    pub(super) cancel_at_period_end: Option<bool>,
    pub(super) cancel_at: Option<Update<i64>>,
    pub(super) proration_behavior: String,
    pub(super) behavior: String,
    pub(super) trial_end: Option<Option<i64>>,
    pub(super) settings: Value,
    pub(super) cancellation_details: Option<Value>,
    pub(super) collection_method: Option<String>,
    pub(super) days_until_due: Option<i64>,
}

pub(super) async fn parse_update(
    ctx: &Ctx,
    params: &mut Params,
    now: i64,
) -> ApiResult<UpdateRequest> {
    let mut patch = Patch::default();
    patch.set_metadata(params.metadata()?);
    if let Some(description) = params.nullable_string("description")? {
        patch.set(
            &["description"],
            match description {
                Update::Set(d) => json!(d),
                Update::Unset => Value::Null,
            },
        );
    }
    let items = parse_items(ctx, params, true).await?;
    let default_payment_method = params.nullable_string("default_payment_method")?;
    let cancel_at_period_end = params.bool("cancel_at_period_end")?;
    let cancel_at = match params.nullable_string("cancel_at")? {
        None => None,
        Some(Update::Unset) => Some(Update::Unset),
        Some(Update::Set(value)) => {
            let ts: i64 = value
                .parse()
                .map_err(|_| ApiError::invalid_param("cancel_at", "Invalid integer"))?;
            if ts <= now {
                return Err(ApiError::invalid_param(
                    "cancel_at",
                    "Invalid timestamp: cancel_at must be in the future.",
                ));
            }
            Some(Update::Set(ts))
        }
    };
    if cancel_at_period_end == Some(true) && matches!(cancel_at, Some(Update::Set(_))) {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
        )
        .with_code("parameters_exclusive")
        .with_param("cancel_at"));
    }
    let proration_behavior = params
        .enum_value(
            "proration_behavior",
            &["always_invoice", "create_prorations", "none"],
        )?
        .unwrap_or_else(|| "create_prorations".to_owned());
    params.int("proration_date")?;
    let behavior = params
        .enum_value("payment_behavior", BEHAVIORS)?
        .unwrap_or_else(|| "allow_incomplete".to_owned());
    params.bool("off_session")?;
    let trial_end = trial_end_param(params, now)?;
    let mut settings = json!({"payment_settings": {}});
    payment_settings(params, &mut settings)?;
    let cancellation_details = cancellation_details(params)?;
    let collection_method = params.enum_value(
        "collection_method",
        &["charge_automatically", "send_invoice"],
    )?;
    let days_until_due = params.int_in("days_until_due", 0, 730)?;
    if params
        .enum_value("billing_cycle_anchor", &["now", "unchanged"])?
        .as_deref()
        == Some("now")
    {
        return Err(ApiError::invalid_param(
            "billing_cycle_anchor",
            "stripe-twin does not emulate resetting the billing cycle (billing_cycle_anchor=now) on updates yet.",
        ));
    }
    trial_settings(params, &mut patch)?;
    // Prices are a subscription's own here: there is no plan trial to take.
    params.bool("trial_from_plan")?;
    Ok(UpdateRequest {
        patch,
        items,
        default_payment_method,
        cancel_at_period_end,
        cancel_at,
        proration_behavior,
        behavior,
        trial_end,
        settings: settings["payment_settings"].take(),
        cancellation_details,
        collection_method,
        days_until_due,
    })
}

pub(super) fn cancellation_details(params: &mut Params) -> ApiResult<Option<Value>> {
    let Some(mut details) = params.object("cancellation_details")? else {
        return Ok(None);
    };
    let comment = details.string("comment")?;
    let feedback = details.enum_value(
        "feedback",
        &[
            "customer_service",
            "low_quality",
            "missing_features",
            "other",
            "switched_service",
            "too_complex",
            "too_expensive",
            "unused",
        ],
    )?;
    details.finish()?;
    Ok(Some(json!({"comment": comment, "feedback": feedback})))
}

/// `trial_settings[end_behavior][missing_payment_method]`: what a trial
/// that ends without a payment method does (create_invoice, pause, cancel).
fn trial_settings(params: &mut Params, patch: &mut Patch) -> ApiResult<()> {
    let Some(mut settings) = params.object("trial_settings")? else {
        return Ok(());
    };
    let mut end = settings
        .object("end_behavior")?
        .ok_or_else(|| ApiError::missing_param(&settings.name("end_behavior")))?;
    let missing = end
        .enum_value(
            "missing_payment_method",
            &["cancel", "create_invoice", "pause"],
        )?
        .ok_or_else(|| ApiError::missing_param(&end.name("missing_payment_method")))?;
    end.finish()?;
    settings.finish()?;
    patch.set(
        &["trial_settings", "end_behavior", "missing_payment_method"],
        json!(missing),
    );
    Ok(())
}
