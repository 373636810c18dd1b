//! Parameters Stripe takes that stripe-twin does not emulate yet, refused
//! in one place for every endpoint (before any handler reads them) rather
//! than ignored: a coupon, a tax rate or a transfer that silently did
//! nothing would charge or pay out another amount than the caller expects.
//!
//! A value that asks for nothing (`discounts=`, `automatic_tax[enabled]=false`)
//! is what stripe-twin does anyway: it is accepted and removed here, so
//! handlers never see these parameters.

use std::collections::BTreeMap;

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::error::{ApiError, ApiResult};
use crate::http::form::Node;

/// When a parameter asks for something stripe-twin does not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// Any value but an empty one (which unsets it); an empty one is removed.
    Given,
    /// A hash whose `enabled` is `true`; any other hash is removed.
    Enabled,
    /// The value `true`; `false` is left to the handler.
    True,
    /// This value; any other is left to the handler.
    Equals(&'static str),
}

struct Rule {
    /// The parameter's name, `[]` standing for every element of a list.
    param: &'static str,
    when: When,
    /// What the caller can do instead.
    advice: &'static str,
}

const REMOVE: &str = "remove it from the request.";
const PER_UNIT: &str = "use a per-unit price with unit_amount or unit_amount_decimal.";

const fn given(param: &'static str) -> Rule {
    Rule {
        param,
        when: When::Given,
        advice: REMOVE,
    }
}

const fn enabled(param: &'static str) -> Rule {
    Rule {
        param,
        when: When::Enabled,
        advice: REMOVE,
    }
}

const fn pricing(param: &'static str) -> Rule {
    Rule {
        param,
        when: When::Given,
        advice: PER_UNIT,
    }
}

/// Taxes, discounts and Connect money movement on a subscription.
const SUBSCRIPTION: &[Rule] = &[
    given("discounts"),
    given("coupon"),
    given("promotion_code"),
    given("default_tax_rates"),
    enabled("automatic_tax"),
    given("items[][discounts]"),
    given("items[][tax_rates]"),
    given("items[][billing_thresholds]"),
    given("add_invoice_items"),
    given("application_fee_percent"),
    given("on_behalf_of"),
    given("transfer_data"),
    given("billing_thresholds"),
    given("pending_invoice_item_interval"),
];

const MANUAL_CAPTURE: Rule = Rule {
    param: "capture_method",
    when: When::Equals("manual"),
    advice: "use capture_method=automatic (no separate authorization and capture).",
};

const PAYMENT_INTENT: &[Rule] = &[
    MANUAL_CAPTURE,
    given("application_fee_amount"),
    given("on_behalf_of"),
    given("transfer_data"),
    given("payment_method_configuration"),
];

const SETUP_INTENT: &[Rule] = &[given("on_behalf_of"), given("payment_method_configuration")];

const CUSTOMER: &[Rule] = &[given("coupon"), given("promotion_code"), given("discounts")];

const PRICE: &[Rule] = &[
    pricing("custom_unit_amount"),
    pricing("tiers"),
    pricing("tiers_mode"),
    pricing("currency_options"),
    Rule {
        param: "billing_scheme",
        when: When::Equals("tiered"),
        advice: PER_UNIT,
    },
];

const PRODUCT: &[Rule] = &[
    pricing("default_price_data[currency_options]"),
    pricing("default_price_data[custom_unit_amount]"),
    pricing("default_price_data[tiers]"),
    pricing("default_price_data[tiers_mode]"),
];

const CHECKOUT_SESSION: &[Rule] = &[
    given("discounts"),
    Rule {
        param: "allow_promotion_codes",
        when: When::True,
        advice: REMOVE,
    },
    enabled("automatic_tax"),
    given("line_items[][tax_rates]"),
    given("line_items[][dynamic_tax_rates]"),
    enabled("line_items[][adjustable_quantity]"),
    given("subscription_data[default_tax_rates]"),
    given("subscription_data[application_fee_percent]"),
    given("subscription_data[billing_cycle_anchor]"),
    given("subscription_data[on_behalf_of]"),
    given("subscription_data[transfer_data]"),
    given("subscription_data[invoice_settings]"),
    given("subscription_data[proration_behavior]"),
    given("subscription_data[trial_settings]"),
    Rule {
        param: "payment_intent_data[capture_method]",
        ..MANUAL_CAPTURE
    },
    given("payment_intent_data[application_fee_amount]"),
    given("payment_intent_data[on_behalf_of]"),
    given("payment_intent_data[transfer_data]"),
    given("payment_intent_data[transfer_group]"),
    given("payment_intent_data[shipping]"),
    given("setup_intent_data[on_behalf_of]"),
    // What the buyer would see or be asked for on Stripe's page.
    given("consent_collection"),
    given("custom_fields"),
    given("customer_update"),
    given("invoice_creation"),
    given("optional_items"),
    given("payment_method_configuration"),
    given("payment_method_data"),
    given("payment_method_options"),
    given("saved_payment_method_options"),
    given("shipping_address_collection"),
    given("shipping_options"),
    given("tax_id_collection"),
    given("after_expiration"),
    given("branding_settings"),
    given("name_collection"),
    given("permissions"),
    given("excluded_payment_method_types"),
    given("customer_account"),
];

/// Each endpoint's rules, by method and route (as the router declares it).
const ENDPOINTS: &[(&str, &str, &[Rule])] = &[
    ("POST", "/v1/customers", CUSTOMER),
    ("POST", "/v1/customers/{customer}", CUSTOMER),
    ("POST", "/v1/subscriptions", SUBSCRIPTION),
    ("POST", "/v1/subscriptions/{subscription}", SUBSCRIPTION),
    ("POST", "/v1/payment_intents", PAYMENT_INTENT),
    ("POST", "/v1/payment_intents/{intent}", PAYMENT_INTENT),
    (
        "POST",
        "/v1/payment_intents/{intent}/confirm",
        &[MANUAL_CAPTURE],
    ),
    ("POST", "/v1/setup_intents", SETUP_INTENT),
    ("POST", "/v1/setup_intents/{intent}", SETUP_INTENT),
    ("POST", "/v1/prices", PRICE),
    ("POST", "/v1/prices/{price}", PRICE),
    ("POST", "/v1/products", PRODUCT),
    ("POST", "/v1/checkout/sessions", CHECKOUT_SESSION),
];

/// Refuses the first parameter of this request that asks for something
/// stripe-twin does not emulate, and removes the ones that ask for nothing.
pub fn refuse(method: &Method, route: &str, params: &mut BTreeMap<String, Node>) -> ApiResult<()> {
    let Some((_, _, rules)) = ENDPOINTS
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
    else {
        return Ok(());
    };
    for rule in *rules {
        visit(params, &segments(rule.param), None, rule)?;
    }
    Ok(())
}

/// `items[][tax_rates]` as `["items", "[]", "tax_rates"]`.
fn segments(param: &str) -> Vec<&str> {
    let (first, mut rest) = param.split_once('[').map_or((param, ""), |(a, b)| (a, b));
    let mut out = vec![first];
    while let Some((inside, after)) = rest.split_once(']') {
        out.push(if inside.is_empty() { "[]" } else { inside });
        rest = after.strip_prefix('[').unwrap_or(after);
    }
    out
}

/// Refuses requests made on behalf of a connected account: without
/// Connect, serving them in the platform's own account would create or
/// change objects where the caller does not expect them.
pub async fn refuse_stripe_account(request: Request, next: Next) -> Response {
    let account = request
        .headers()
        .get("stripe-account")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .filter(|v| !v.is_empty());
    match account {
        Some(account) => ApiError::invalid(format!(
            "stripe-twin does not emulate Connect yet, so it cannot act on behalf of the connected account '{account}' named by the Stripe-Account header. Remove the header to act on the account of your API key."
        ))
        .into_response(),
        None => next.run(request).await,
    }
}

/// The error for parameter `param` (as the request spelled it), whose use
/// `what` shows (the parameter, or `param=value`).
pub fn not_emulated(param: &str, what: &str, advice: &str) -> ApiError {
    ApiError::invalid_param(
        param,
        format!("stripe-twin does not emulate `{what}` yet: {advice}"),
    )
}

enum Verdict {
    /// The parameter to name, and what to show of it.
    Refuse(String, String),
    Remove,
    Keep,
}

impl Rule {
    fn verdict(&self, node: &Node, name: &str) -> Verdict {
        let text = match node {
            Node::Str(s) => Some(s.as_str()),
            _ => None,
        };
        match self.when {
            When::Given => match node {
                Node::Str(s) if s.is_empty() => Verdict::Remove,
                Node::List(items) if items.is_empty() => Verdict::Remove,
                _ => Verdict::Refuse(name.to_owned(), name.to_owned()),
            },
            When::Enabled => match node {
                Node::Map(map) if map.get("enabled") == Some(&Node::Str("true".into())) => {
                    let enabled = format!("{name}[enabled]");
                    Verdict::Refuse(enabled.clone(), enabled)
                }
                _ => Verdict::Remove,
            },
            When::True if text == Some("true") => Verdict::Refuse(name.to_owned(), name.to_owned()),
            When::Equals(value) if text == Some(value) => {
                Verdict::Refuse(name.to_owned(), format!("{name}={value}"))
            }
            When::True | When::Equals(_) => Verdict::Keep,
        }
    }
}

/// Finds the rule's parameter under `map` (`segments` still to follow;
/// `"[]"` steps into every element of a list) and applies its verdict.
fn visit(
    map: &mut BTreeMap<String, Node>,
    segments: &[&str],
    prefix: Option<&str>,
    rule: &Rule,
) -> ApiResult<()> {
    let Some((key, rest)) = segments.split_first() else {
        return Ok(());
    };
    let name = match prefix {
        Some(prefix) => format!("{prefix}[{key}]"),
        None => (*key).to_owned(),
    };
    let Some(node) = map.get_mut(*key) else {
        return Ok(());
    };
    let Some((next, after)) = rest.split_first() else {
        return match rule.verdict(node, &name) {
            Verdict::Refuse(param, what) => Err(not_emulated(&param, &what, rule.advice)),
            Verdict::Remove => {
                map.remove(*key);
                Ok(())
            }
            Verdict::Keep => Ok(()),
        };
    };
    if *next != "[]" {
        return match node {
            Node::Map(inner) => visit(inner, rest, Some(&name), rule),
            _ => Ok(()),
        };
    }
    // Every element of a list: `items[0][…]` (indexed keys) or `items[][…]`.
    let elements: Vec<(String, &mut Node)> = match node {
        Node::List(items) => items
            .iter_mut()
            .enumerate()
            .map(|(i, n)| (i.to_string(), n))
            .collect(),
        Node::Map(items) => items.iter_mut().map(|(k, n)| (k.clone(), n)).collect(),
        Node::Str(_) => Vec::new(),
    };
    for (index, element) in elements {
        if let Node::Map(inner) = element {
            visit(inner, after, Some(&format!("{name}[{index}]")), rule)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::form::decode;

    fn check(route: &str, body: &str) -> Result<BTreeMap<String, Node>, String> {
        let mut map = decode(body.as_bytes()).unwrap();
        refuse(&Method::POST, route, &mut map)
            .map(|()| map)
            .map_err(|e| e.body()["error"]["param"].as_str().unwrap().to_owned())
    }

    #[test]
    fn refuses_what_changes_the_amount() {
        let sub = "/v1/subscriptions";
        assert_eq!(
            check(sub, "discounts[0][coupon]=HALF").unwrap_err(),
            "discounts"
        );
        assert_eq!(
            check(sub, "automatic_tax[enabled]=true").unwrap_err(),
            "automatic_tax[enabled]"
        );
        assert_eq!(
            check(sub, "items[0][price]=p&items[1][tax_rates][0]=txr").unwrap_err(),
            "items[1][tax_rates]"
        );
        assert_eq!(
            check(sub, "items[][price]=p&items[][discounts][][coupon]=c").unwrap_err(),
            "items[0][discounts]"
        );
        assert_eq!(
            check("/v1/prices", "billing_scheme=tiered").unwrap_err(),
            "billing_scheme"
        );
        assert_eq!(
            check(
                "/v1/checkout/sessions",
                "subscription_data[default_tax_rates][]=txr"
            )
            .unwrap_err(),
            "subscription_data[default_tax_rates]"
        );
    }

    #[test]
    fn accepts_and_removes_what_asks_for_nothing() {
        let sub = "/v1/subscriptions";
        let left = check(
            sub,
            "customer=c&discounts=&automatic_tax[enabled]=false&items[0][price]=p&items[0][tax_rates]=",
        )
        .unwrap();
        assert!(!left.contains_key("discounts") && !left.contains_key("automatic_tax"));
        let Node::Map(items) = &left["items"] else {
            panic!("items")
        };
        let Node::Map(item) = &items["0"] else {
            panic!("an item")
        };
        assert!(item.contains_key("price") && !item.contains_key("tax_rates"));
        // Left to the handler, which knows these parameters.
        let left = check("/v1/prices", "billing_scheme=per_unit").unwrap();
        assert!(left.contains_key("billing_scheme"));
        let left = check("/v1/checkout/sessions", "allow_promotion_codes=false").unwrap();
        assert!(left.contains_key("allow_promotion_codes"));
        // Other endpoints are not touched.
        assert!(
            check("/v1/invoices/{invoice}/pay", "discounts=x")
                .unwrap()
                .contains_key("discounts")
        );
    }

    #[test]
    fn every_endpoint_is_a_stripe_operation() {
        for (method, route, _) in ENDPOINTS {
            assert!(
                crate::http::stripe_operations::find(method, route).is_some(),
                "{method} {route} is not one of Stripe's operations"
            );
        }
    }
}
