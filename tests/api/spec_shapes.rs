//! Every object stripe-twin returns, checked against Stripe's OpenAPI
//! schemas (`tests/spec/schemas.json`, generated from the 2026-08-26 spec by
//! `scripts/gen_spec_schemas.py`), recursively: required keys, keys Stripe
//! sends as null, keys the spec does not have, JSON types and enum values.
//!
//! The flows drive every resource over HTTP the way a test suite would
//! (create, confirm, update, list, search, expand, delete; the Amazon Pay
//! SetupIntent on its page; subscriptions; Checkout through its page's
//! form; errors), record every JSON answer, and check each object in it,
//! nested and expanded ones and every event's `data.object` included.
//! Where API version 2026-10-28.endive (what stripe-twin emulates, per
//! stripe-python 16.1.0's resource classes) differs from the spec, ALLOWED
//! names the difference and why.
use crate::common;
#[path = "spec/mod.rs"]
mod spec;

use std::collections::{BTreeMap, BTreeSet};

use common::TestServer;
use serde_json::{Value, json};
use spec::flows::{self, Recorder};
use spec::{Kind, Problem, Spec};

backend_tests!(
    fixtures = stripe_twin::fixtures::Fixtures::embedded(&stripe_twin::REGISTRY).unwrap();
    every_returned_object_matches_the_spec,
);

/// Differences the check accepts: (schema, key, kind, why).
const ALLOWED: &[(&str, &str, Kind, &str)] = &[
    (
        "invoice",
        "id",
        Kind::WrongType,
        "invoice.upcoming's invoice has no id, as Stripe documents the event",
    ),
    // Includable fields: Stripe leaves them out unless `expand[]` asks.
    (
        "customer",
        "cash_balance",
        Kind::MissingNullable,
        "includable: shown only with expand[]=cash_balance",
    ),
    (
        "charge",
        "refunds",
        Kind::MissingNullable,
        "includable since 2022-11-15: shown only with expand[]=refunds",
    ),
    (
        "invoice",
        "confirmation_secret",
        Kind::MissingNullable,
        "includable: shown only with expand[]=confirmation_secret",
    ),
];

/// Fields API version 2026-10-28.endive has beyond the 2026-08-26 spec
/// (stripe-python 16.1.0's resource classes declare each): (schema, key,
/// the shape of its values, why). Their values are checked like the rest.
const ENDIVE_FIELDS: &[(&str, &str, &str, &str)] = &[
    (
        "payment_intent",
        "source",
        r#"{"type": "string", "nullable": true}"#,
        "legacy Sources ID, still sent as null (PaymentIntent.source)",
    ),
    (
        "product",
        "type",
        r#"{"type": "string", "enum": ["good", "service"]}"#,
        "legacy product type, still sent (Product.type)",
    ),
    (
        "recurring",
        "trial_period_days",
        r#"{"type": "integer", "nullable": true}"#,
        "a price's default trial (Price.Recurring.trial_period_days)",
    ),
    (
        "subscription",
        "status_details",
        r#"{"type": "object", "nullable": true}"#,
        "why a subscription is paused, null otherwise (Subscription.status_details)",
    ),
    (
        "subscription_item",
        "plan",
        r#"{"$ref": "plan"}"#,
        "the legacy plan view of the item's price (SubscriptionItem.plan)",
    ),
];

// ---- the check ---------------------------------------------------------------

struct Report {
    /// Objects checked against a named schema, nested ones included.
    objects: usize,
    /// Named schemas exercised, with how many objects each.
    schemas: BTreeMap<String, usize>,
    /// `object` types of the answers and the objects in them.
    types: BTreeSet<String>,
    problems: Vec<Problem>,
}

fn check_all(spec: &Spec, answers: &[(String, Value)]) -> Report {
    let mut report = Report {
        objects: 0,
        schemas: BTreeMap::new(),
        types: BTreeSet::new(),
        problems: Vec::new(),
    };
    for (request, body) in answers {
        let top = if body.get("error").is_some() {
            "error"
        } else {
            match body["object"].as_str() {
                Some("list") => {
                    list_wrapper(
                        body,
                        &["object", "data", "has_more", "url"],
                        request,
                        &mut report,
                    );
                    continue_items(spec, body, request, &mut report);
                    continue;
                }
                Some("search_result") => {
                    let keys = ["object", "data", "has_more", "next_page", "url"];
                    list_wrapper(body, &keys, request, &mut report);
                    continue_items(spec, body, request, &mut report);
                    continue;
                }
                _ => spec
                    .schema_of(body)
                    .unwrap_or_else(|| panic!("{request}: no schema for {body}")),
            }
        };
        record(spec.check(body, top, request), &mut report);
    }
    report
}

fn continue_items(spec: &Spec, list: &Value, request: &str, report: &mut Report) {
    for (i, item) in list["data"].as_array().unwrap().iter().enumerate() {
        let schema = spec
            .schema_of(item)
            .unwrap_or_else(|| panic!("{request}: no schema for {item}"));
        record(
            spec.check(item, schema, &format!("{request} data[{i}]")),
            report,
        );
    }
}

/// A top-level list's own keys: exactly Stripe's.
fn list_wrapper(list: &Value, keys: &[&str], request: &str, report: &mut Report) {
    report
        .types
        .insert(list["object"].as_str().unwrap().to_owned());
    let map = list.as_object().unwrap();
    for key in keys {
        if !map.contains_key(*key) {
            report.problems.push(Problem {
                schema: list["object"].as_str().unwrap().to_owned(),
                key: (*key).to_owned(),
                kind: Kind::MissingRequired,
                path: request.to_owned(),
                detail: "absent".into(),
            });
        }
    }
    for key in map.keys().filter(|k| !keys.contains(&k.as_str())) {
        report.problems.push(Problem {
            schema: list["object"].as_str().unwrap().to_owned(),
            key: key.clone(),
            kind: Kind::ExtraKey,
            path: request.to_owned(),
            detail: "not in the spec".into(),
        });
    }
}

fn record(outcome: spec::Outcome, report: &mut Report) {
    report.objects += outcome.checked.len();
    for name in outcome.checked {
        *report.schemas.entry(name).or_default() += 1;
    }
    report.problems.extend(outcome.problems);
}

fn allowed(problem: &Problem) -> bool {
    ALLOWED.iter().any(|(schema, key, kind, _)| {
        *schema == problem.schema && *key == problem.key && *kind == problem.kind
    })
}

async fn every_returned_object_matches_the_spec(server: TestServer) {
    let twin = Recorder::new(&server);
    flows::drive_everything(&twin).await;

    let mut spec = Spec::load();
    for (schema, key, node, _) in ENDIVE_FIELDS {
        spec.add_property(schema, key, serde_json::from_str(node).unwrap());
    }
    let answers = twin.answers.lock().unwrap().clone();
    let report = check_all(&spec, &answers);
    let groups = spec::summarize(&report.problems);
    let (allowed_groups, found): (Vec<_>, Vec<_>) =
        groups.iter().partition(|(_, (_, p))| allowed(p));
    let roots: Vec<&String> = report
        .schemas
        .keys()
        .filter(|name| spec.is_root(name))
        .collect();
    eprintln!(
        "spec {}: {} answers; {} objects checked: {} object types ({}) + lists {:?}, {} schemas in all; \
         problems: {} kinds ({} occurrences), {} kinds allowed",
        spec.version,
        answers.len(),
        report.objects,
        roots.len(),
        roots
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        report.types,
        report.schemas.len(),
        groups.len(),
        report.problems.len(),
        allowed_groups.len(),
    );
    let mut listing = String::new();
    for ((schema, key, kind), (count, example)) in found.iter().map(|(k, v)| (k, v)) {
        listing.push_str(&format!(
            "  {schema}.{key}: {kind:?} ×{count} — {} at {}\n",
            example.detail, example.path
        ));
    }
    assert!(
        found.is_empty(),
        "{} shape problems not in ALLOWED:\n{listing}",
        found.len()
    );
    for (schema, key, _, why) in ENDIVE_FIELDS {
        let named = (schema.to_string(), key.to_string());
        assert!(
            spec.added_seen.borrow().contains(&named),
            "ENDIVE_FIELDS lists {schema}.{key} ({why}) but no answer has it"
        );
    }
    // Each allowance is still needed: a fixed difference leaves the list.
    for (schema, key, kind, why) in ALLOWED {
        assert!(
            groups.contains_key(&(schema.to_string(), key.to_string(), *kind)),
            "ALLOWED lists {schema}.{key} {kind:?} ({why}) but no answer shows it"
        );
    }
}

/// The check itself: each kind of problem, found where it is.
#[test]
fn the_check_finds_each_kind_of_problem() {
    let spec = Spec::load();
    let fixtures: Value =
        serde_json::from_str(include_str!("../../fixtures/customers.json")).unwrap();
    let customer = fixtures[0].clone();
    let clean = spec.check(&customer, "customer", "customer");
    assert_eq!(clean.problems, [], "the shipped fixture matches the spec");
    assert!(
        clean
            .checked
            .contains(&"invoice_setting_customer_setting".to_owned())
    );

    let mut broken = customer.clone();
    let map = broken.as_object_mut().unwrap();
    map.remove("created");
    map.remove("email");
    map.insert("colour".into(), json!("red"));
    map.insert("balance".into(), json!("lots"));
    map.insert("tax_exempt".into(), json!("sometimes"));
    map.insert("business_name".into(), Value::Null);
    map.insert(
        "default_source".into(),
        json!({"id": "card_1", "object": "card"}),
    );
    broken["invoice_settings"]["footer"] = json!(5);
    let found: BTreeSet<(String, String, Kind)> = spec
        .check(&broken, "customer", "customer")
        .problems
        .into_iter()
        .map(|p| (p.schema, p.key, p.kind))
        .collect();
    let expected: BTreeSet<(String, String, Kind)> = [
        ("customer", "created", Kind::MissingRequired),
        ("customer", "email", Kind::MissingNullable),
        ("customer", "colour", Kind::ExtraKey),
        ("customer", "balance", Kind::WrongType),
        ("customer", "tax_exempt", Kind::EnumValue),
        ("customer", "business_name", Kind::WrongType),
        ("customer", "default_source", Kind::WrongType),
        (
            "invoice_setting_customer_setting",
            "footer",
            Kind::WrongType,
        ),
    ]
    .into_iter()
    .map(|(s, k, kind)| (s.to_owned(), k.to_owned(), kind))
    .collect();
    assert_eq!(found, expected);

    // An event's data.object is checked as the object it names.
    let mut object = customer;
    object.as_object_mut().unwrap().remove("livemode");
    let event = json!({
        "id": "evt_1", "object": "event", "api_version": "2026-10-28.endive", "created": 1,
        "data": {"object": object}, "livemode": false, "pending_webhooks": 0,
        "request": {"id": null, "idempotency_key": null}, "type": "customer.created",
    });
    let problems = spec.check(&event, "event", "event").problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        (problems[0].schema.as_str(), problems[0].key.as_str()),
        ("customer", "livemode")
    );
    assert_eq!(problems[0].path, "event.data.object");
}
