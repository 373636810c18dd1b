//! What SetupIntents and PaymentIntents share: the payment method a request
//! names, the types an intent accepts, the return_url, and the redirect to
//! this server's authorization page.

use serde_json::{Value, json};

use crate::core::bookkeeping::{self, Bookkeeping};
use crate::http::api::Ctx;
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::params::{Params, one_of};
use crate::ids;
use crate::resources::payments::payment_methods::{self, Resolved, SUPPORTED_TYPES};
use crate::store::{Record, Write};

/// `payment_method_types[]`, or its 2026 name `allowed_payment_method_types[]`;
/// `verb` says what stripe-twin does with the types ("sets up", "charges").
pub fn payment_method_types(params: &mut Params, verb: &str) -> ApiResult<Option<Vec<String>>> {
    let old = params.string_list("payment_method_types")?;
    let new = params.string_list("allowed_payment_method_types")?;
    let (param, types) = match (old, new) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: allowed_payment_method_types, payment_method_types.",
            )
            .with_code("parameters_exclusive")
            .with_param("allowed_payment_method_types"));
        }
        (Some(types), None) => ("payment_method_types", types),
        (None, Some(types)) => ("allowed_payment_method_types", types),
        (None, None) => return Ok(None),
    };
    check_types(param, &types, verb)?;
    Ok(Some(types))
}

/// A non-empty list of types stripe-twin supports.
pub fn check_types(param: &str, types: &[String], verb: &str) -> ApiResult<()> {
    if types.is_empty() {
        return Err(ApiError::invalid_param(
            param,
            format!("{param} must contain at least one payment method type."),
        ));
    }
    for kind in types {
        if !SUPPORTED_TYPES.contains(&kind.as_str()) {
            return Err(ApiError::invalid_param(
                param,
                format!(
                    "The payment method type provided: {kind} is invalid. stripe-twin {verb} {}.",
                    one_of(SUPPORTED_TYPES)
                ),
            ));
        }
    }
    Ok(())
}

/// The types an intent accepts.
pub fn accepted_types(doc: &Value) -> Vec<String> {
    doc["payment_method_types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `payment_method` or `payment_method_data` (exclusive): the ID, or the
/// new PaymentMethod's document.
pub fn payment_method_choice(
    ctx: &Ctx,
    params: &mut Params,
) -> ApiResult<(Option<String>, Option<Value>)> {
    let id = params.string("payment_method")?;
    if id.is_some() && params.contains("payment_method_data") {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: payment_method, payment_method_data.",
        )
        .with_code("parameters_exclusive")
        .with_param("payment_method_data"));
    }
    let Some(mut data) = params.object("payment_method_data")? else {
        return Ok((id, None));
    };
    // Stripe.js bookkeeping that carries no meaning here.
    for browser_field in [
        "payment_user_agent",
        "time_on_page",
        "referrer",
        "guid",
        "muid",
        "sid",
    ] {
        data.take_node(browser_field);
    }
    let doc = payment_methods::document_from_params(ctx, &mut data)?;
    data.finish()?;
    Ok((id, Some(doc)))
}

/// The PaymentMethod a request names, if any: a new one from
/// `payment_method_data` or one resolved by ID.
pub async fn requested_payment_method(
    ctx: &Ctx,
    id: Option<&str>,
    data: Option<&Value>,
) -> ApiResult<Option<Resolved>> {
    if let Some(doc) = data {
        return Ok(Some(Resolved::Fresh(Record::new(
            "payment_method",
            doc.clone(),
        ))));
    }
    match id {
        Some(id) => Ok(Some(
            payment_methods::resolve(ctx, id, Named::InParam("payment_method")).await?,
        )),
        None => Ok(None),
    }
}

pub fn check_return_url(url: &str) -> ApiResult<String> {
    check_url("return_url", url)
}

/// An absolute http(s) URL that can later be sent as a `Location` header.
pub fn check_url(param: &str, url: &str) -> ApiResult<String> {
    let valid = ["http://", "https://"]
        .iter()
        .any(|scheme| {
            url.len() > scheme.len()
                && url
                    .get(..scheme.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
        })
        // A Location header carries it later: printable ASCII only.
        && url.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::invalid_param(param, "Not a valid URL"));
    }
    Ok(url.to_owned())
}

/// Sends the buyer to this server's authorization page: a redirect record
/// for this one attempt and `<object>.requires_action` (the caller's state
/// machine has moved the intent to `requires_action`).
pub fn require_action(ctx: &Ctx, mut doc: Value, kind: &str, writes: &mut Vec<Write>) -> Value {
    let token = ids::new_id("rdr") + &ids::random_base62(16);
    let url = format!("{}/authorize/{token}", ctx.origin);
    let object = doc["object"].as_str().unwrap_or_default().to_owned();
    let mut redirect = json!({
        "id": token,
        "object": "redirect",
        "created": ctx.now(),
        "kind": kind,
    });
    redirect[&object] = doc["id"].clone();
    writes.push(Write::Insert(Record::new("redirect", redirect)));
    let return_url = bookkeeping::update(&mut doc, |b| {
        b.redirect = Some(token.clone());
        b.return_url.clone()
    });
    doc["next_action"] = json!({
        "type": "redirect_to_url",
        "redirect_to_url": {"return_url": return_url, "url": url},
    });
    writes.push(ctx.event(&format!("{object}.requires_action"), &doc, None));
    doc
}

/// The authorization page of a previous attempt no longer applies.
pub fn forget_redirect(doc: &mut Value) {
    bookkeeping::update(doc, |b| b.redirect = None);
}

/// A Checkout Session's intent moves only through the session: `refusal`
/// (its status module's error) otherwise.
pub fn refuse_checkout_owned(record: &Record, refusal: impl FnOnce() -> ApiError) -> ApiResult<()> {
    if Bookkeeping::of(&record.data).checkout_session.is_some() {
        return Err(refusal());
    }
    Ok(())
}

/// Sets an intent's customer; once set, it cannot change (`title` names
/// the intent in the error, `PaymentIntent` or `SetupIntent`).
pub fn set_customer(doc: &mut Value, customer: &str, title: &str) -> ApiResult<()> {
    match doc["customer"].as_str() {
        Some(current) if current != customer => Err(ApiError::invalid_param(
            "customer",
            format!("You cannot change the customer of a {title} once it is set."),
        )),
        _ => {
            doc["customer"] = json!(customer);
            Ok(())
        }
    }
}

/// Gives an intent the payment method a request chose (a fresh one is
/// written along), which ends any previous attempt's redirect; the status
/// move is the caller's, through its machine.
pub fn choose_payment_method(doc: &mut Value, pm: &Resolved, writes: &mut Vec<Write>) {
    if let Resolved::Fresh(record) = pm {
        writes.push(Write::Insert(record.clone()));
    }
    doc["payment_method"] = json!(pm.record().id);
    doc["next_action"] = Value::Null;
    forget_redirect(doc);
}

/// Keeps what a request sent for the attempt to come: the mandate
/// acceptance and the return URL.
pub fn keep_for_attempt(doc: &mut Value, mandate_data: Option<&Value>, return_url: Option<&str>) {
    bookkeeping::update(doc, |b| {
        if let Some(acceptance) = mandate_data {
            b.mandate_acceptance = Some(acceptance.clone());
        }
        if let Some(url) = return_url {
            b.return_url = Some(url.to_owned());
        }
    });
}
