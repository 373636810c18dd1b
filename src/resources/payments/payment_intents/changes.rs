//! What a create, update or confirm request asks to change on a
//! PaymentIntent (`parse_changes`), and applying the part of it that does
//! not depend on the intent's state (`apply_changes`).

use serde_json::{Value, json};

use super::status::{self, Action};
use super::{check_amount, set_payment_method_types};
use crate::core::state_machine::StateMachine;
use crate::http::api::Ctx;
use crate::http::error::{ApiError, ApiResult};
use crate::http::form::Node;
use crate::http::params::{Params, Patch, Update};
use crate::resources::catalog::prices;
use crate::resources::payments::intents;
use crate::resources::payments::payment_methods::Resolved;
use crate::store::Write;

/// What a request asks to change on an intent.
#[derive(Default)]
pub(super) struct Changes {
    pub(super) patch: Patch,
    pub(super) amount: Option<i64>,
    pub(super) currency: Option<String>,
    pub(super) customer: Option<String>,
    pub(super) payment_method: Option<String>,
    pub(super) payment_method_data: Option<Value>,
    pub(super) payment_method_types: Option<Vec<String>>,
    pub(super) mandate_data: Option<Value>,
    pub(super) return_url: Option<String>,
    pub(super) off_session: bool,
    pub(super) error_on_requires_action: bool,
}

/// Which request the changes come from: each takes its own parameters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    Create,
    Update,
    Confirm,
}

pub(super) fn parse_changes(
    ctx: &Ctx,
    params: &mut Params,
    operation: Operation,
) -> ApiResult<Changes> {
    let mut changes = Changes::default();
    if operation != Operation::Confirm {
        changes.amount = params.int("amount")?;
        changes.currency = params
            .string("currency")?
            .map(|c| prices::check_currency("currency", &c))
            .transpose()?;
        changes.patch.set_metadata(params.metadata()?);
        for field in [
            "description",
            "receipt_email",
            "statement_descriptor",
            "statement_descriptor_suffix",
        ] {
            if let Some(update) = params.nullable_string(field)? {
                let value = match update {
                    Update::Set(v) => json!(v),
                    Update::Unset => Value::Null,
                };
                changes.patch.set(&[static_name(field)], value);
            }
        }
        changes.customer = params.string("customer")?;
        changes.payment_method_types = intents::payment_method_types(params, "charges")?;
        // `manual` was refused before this (not_emulated).
        if let Some(capture) = params.enum_value(
            "capture_method",
            &["automatic", "automatic_async", "manual"],
        )? {
            changes.patch.set(&["capture_method"], json!(capture));
        }
        params.take_node("shipping");
    }
    if let Some(usage) =
        params.nullable_enum("setup_future_usage", &["off_session", "on_session"])?
    {
        changes.patch.set(
            &["setup_future_usage"],
            match usage {
                Update::Set(u) => json!(u),
                Update::Unset => Value::Null,
            },
        );
    }
    (changes.payment_method, changes.payment_method_data) =
        intents::payment_method_choice(ctx, params)?;
    if let Some(mut options) = params.object("payment_method_options")? {
        // Accepted for compatibility; the test outcomes do not depend on them.
        for kind in ["card", "amazon_pay"] {
            options.take_node(kind);
        }
        options.finish()?;
    }
    if operation != Operation::Update {
        changes.off_session = off_session(params)?;
        if let Some(url) = params.string("return_url")? {
            changes.return_url = Some(intents::check_return_url(&url)?);
        }
        if let Some(data) = params.object("mandate_data")? {
            changes.mandate_data = Some(mandate_acceptance(ctx, data)?);
        }
    }
    params.bool("use_stripe_sdk")?;
    changes.error_on_requires_action = params.bool("error_on_requires_action")?.unwrap_or(false);
    if params.contains("confirmation_token") {
        return Err(ApiError::invalid_param(
            "confirmation_token",
            "stripe-twin does not emulate ConfirmationTokens yet: pass payment_method or payment_method_data.",
        ));
    }
    Ok(changes)
}

/// `off_session`: a boolean, or Stripe's `one_off` / `recurring`.
fn off_session(params: &mut Params) -> ApiResult<bool> {
    match params.take_node("off_session") {
        None => Ok(false),
        Some(Node::Str(value)) => match value.as_str() {
            "true" | "one_off" | "recurring" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::invalid_param(
                "off_session",
                "Invalid off_session: must be a boolean, one_off or recurring",
            )),
        },
        Some(_) => Err(ApiError::invalid_param(
            "off_session",
            "Invalid off_session: must be a boolean",
        )),
    }
}

/// `mandate_data[customer_acceptance]`: kept on the intent for the mandate
/// made when the payment saves an amazon_pay method.
fn mandate_acceptance(ctx: &Ctx, mut data: Params) -> ApiResult<Value> {
    let mut acceptance = data
        .object("customer_acceptance")?
        .ok_or_else(|| ApiError::missing_param(&data.name("customer_acceptance")))?;
    let kind = acceptance
        .enum_value("type", &["offline", "online"])?
        .ok_or_else(|| ApiError::missing_param(&acceptance.name("type")))?;
    let accepted_at = acceptance.int("accepted_at")?.unwrap_or_else(|| ctx.now());
    let mut accepted = json!({"accepted_at": accepted_at, "type": kind});
    if let Some(mut online) = acceptance.object("online")? {
        let infer = online.bool("infer_from_client")?.unwrap_or(false);
        let (ip, agent) = if infer {
            (ctx.client.ip_address.clone(), ctx.client.user_agent.clone())
        } else {
            (
                online.required_string("ip_address")?,
                online.required_string("user_agent")?,
            )
        };
        online.finish()?;
        accepted["online"] = json!({"ip_address": ip, "user_agent": agent});
    } else if kind == "online" {
        return Err(ApiError::missing_param(&acceptance.name("online")));
    }
    acceptance.take_node("offline");
    acceptance.finish()?;
    data.finish()?;
    Ok(accepted)
}

fn static_name(field: &str) -> &'static str {
    match field {
        "description" => "description",
        "receipt_email" => "receipt_email",
        "statement_descriptor" => "statement_descriptor",
        _ => "statement_descriptor_suffix",
    }
}

/// Applies what does not depend on the intent's state.
pub(super) fn apply_changes(
    doc: &mut Value,
    changes: &Changes,
    pm: Option<&Resolved>,
    writes: &mut Vec<Write>,
) -> ApiResult<()> {
    changes.patch.apply(doc)?;
    let currency = changes
        .currency
        .clone()
        .unwrap_or_else(|| doc["currency"].as_str().unwrap_or("usd").to_owned());
    if let Some(amount) = changes.amount {
        check_amount("amount", amount, &currency)?;
        doc["amount"] = json!(amount);
    }
    doc["currency"] = json!(currency);
    if let Some(customer) = &changes.customer {
        intents::set_customer(doc, customer, "PaymentIntent")?;
    }
    if let Some(types) = &changes.payment_method_types {
        set_payment_method_types(doc, types);
        doc["automatic_payment_methods"] = Value::Null;
    }
    if let Some(pm) = pm {
        status::Machine::apply(doc, Action::AttachPaymentMethod)?;
        intents::choose_payment_method(doc, pm, writes);
    }
    intents::keep_for_attempt(
        doc,
        changes.mandate_data.as_ref(),
        changes.return_url.as_deref(),
    );
    Ok(())
}
