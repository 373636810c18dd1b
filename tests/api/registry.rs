//! The object registry against the route table: every object type any
//! served GET route answers with is described in the registry, and every
//! served list route is the list URL of a registered type.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{Method, StatusCode};
use serde_json::Value;
use stripe_twin::REGISTRY;

use crate::common::{self, KEY, TestServer, enc, id};

/// Stripe's operations (the route table's universe), as the server ships them.
const OPERATIONS: &str = include_str!("../../src/http/stripe_operations.txt");

/// Objects of most types: a customer with a subscription (invoice, payment,
/// charge, balance transaction), an Amazon Pay mandate, a Checkout Session,
/// a webhook endpoint.
async fn populate(server: &TestServer) {
    let customer = id(&server
        .post("/v1/customers", "email=walk@example.com")
        .await
        .ok());
    server
        .subscribe_with_card(&customer, "pm_card_visa", 1200)
        .await;
    common::amazon_pay_with_mandate(server, &customer).await;
    let price = server
        .post(
            "/v1/prices",
            "currency=usd&unit_amount=500&product_data[name]=Walk",
        )
        .await
        .ok();
    let session = format!(
        "mode=payment&line_items[0][price]={}&line_items[0][quantity]=1&success_url={}",
        id(&price),
        enc("https://shop.example/ok")
    );
    server.post("/v1/checkout/sessions", &session).await.ok();
    server
        .post(
            "/v1/webhook_endpoints",
            &format!("url={}&enabled_events[]=*", enc("https://hooks.example/h")),
        )
        .await
        .ok();
}

/// Every `object` value in an answer, with the ids of objects by type.
fn collect(value: &Value, types: &mut BTreeSet<String>, ids: &mut BTreeMap<String, Vec<String>>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(object)) = map.get("object") {
                types.insert(object.clone());
                if let Some(Value::String(found)) = map.get("id") {
                    ids.entry(object.clone()).or_default().push(found.clone());
                }
            }
            map.values().for_each(|v| collect(v, types, ids));
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, types, ids)),
        _ => {}
    }
}

/// `expand[]` of every field the registry knows for a type, so hidden and
/// referenced objects are in the answer too.
fn expand_all(object: &str, in_list: bool) -> String {
    let Some(spec) = REGISTRY.get(object) else {
        return String::new();
    };
    let prefix = if in_list { "data." } else { "" };
    spec.fields
        .iter()
        .filter(|(path, _)| !path.contains('.'))
        .map(|(path, _)| format!("expand[]={prefix}{path}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lists that need a filter: (route, parameter, the type it names).
const NEEDS: &[(&str, &str, &str)] = &[("/v1/subscription_items", "subscription", "subscription")];

async fn served(server: &TestServer, path: &str) -> Option<Value> {
    let reply = server.call(Method::GET, path, Some(KEY), "", &[]).await;
    if reply.status == StatusCode::NOT_FOUND
        && reply.headers.contains_key("stripe-twin-unsupported")
    {
        return None;
    }
    assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.body);
    Some(reply.body)
}

async fn route_table_types_are_registered(server: TestServer) {
    populate(&server).await;
    let mut types = BTreeSet::new();
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let gets: Vec<&str> = OPERATIONS
        .lines()
        .filter_map(|line| line.strip_prefix("GET "))
        .collect();
    let mut lists_served = Vec::new();
    // Lists first: their objects' ids fill in the retrieve routes.
    for path in gets.iter().filter(|p| !p.contains('{')) {
        let search = path.strip_suffix("/search");
        let listed = REGISTRY.listed_at(search.unwrap_or(path));
        let mut query = listed
            .map(|spec| expand_all(spec.object, true))
            .unwrap_or_default();
        if let Some((_, param, object)) = NEEDS.iter().find(|(p, _, _)| p == path) {
            let owner = &ids.get(*object).expect("listed earlier")[0];
            query.push_str(&format!("&{param}={owner}"));
        }
        if search.is_some() {
            query.push_str(&format!("&query={}", enc("created>0")));
        }
        let Some(body) = served(&server, &format!("{path}?limit=100&{query}")).await else {
            continue;
        };
        if search.is_none() {
            lists_served.push(path.to_string());
        }
        collect(&body, &mut types, &mut ids);
    }
    let mut retrieves = 0;
    for path in gets.iter().filter(|p| p.matches('{').count() == 1) {
        let (base, rest) = path.split_once('{').unwrap();
        let Some(spec) = REGISTRY.listed_at(base.trim_end_matches('/')) else {
            continue;
        };
        let suffix = rest.split_once('}').unwrap().1;
        for found in ids.get(spec.object).cloned().unwrap_or_default() {
            let query = if suffix.is_empty() {
                expand_all(spec.object, false)
            } else {
                String::new()
            };
            if let Some(body) = served(&server, &format!("{base}{found}{suffix}?{query}")).await {
                retrieves += 1;
                collect(&body, &mut types, &mut ids);
            }
        }
    }
    for envelope in ["list", "search_result"] {
        types.remove(envelope);
    }
    let missing: Vec<&String> = types.iter().filter(|t| REGISTRY.get(t).is_none()).collect();
    assert!(
        missing.is_empty(),
        "types without a registry entry: {missing:?}"
    );
    let unlisted: Vec<&String> = lists_served
        .iter()
        .filter(|p| REGISTRY.listed_at(p).is_none())
        .collect();
    assert!(
        unlisted.is_empty(),
        "list routes no registered type names: {unlisted:?}"
    );
    // The walk reached the routes and the types it is meant to check.
    assert!(lists_served.len() >= 14, "{lists_served:?}");
    assert!(retrieves >= 20, "only {retrieves} retrieves answered");
    for wanted in [
        "customer",
        "subscription",
        "subscription_item",
        "invoice",
        "line_item",
        "invoice_payment",
        "payment_intent",
        "charge",
        "balance_transaction",
        "setup_intent",
        "mandate",
        "payment_method",
        "checkout.session",
        "item",
        "event",
        "webhook_endpoint",
        "product",
        "price",
    ] {
        assert!(
            types.contains(wanted),
            "the walk saw no {wanted}: {types:?}"
        );
    }
}

backend_tests!(route_table_types_are_registered);
