//! Subscriptions over real HTTP, as a client's test suite drives them:
//! the first invoice paid off-session by card or through an Amazon Pay
//! mandate, trials, each payment_behavior when the payment fails, the
//! client confirming a default_incomplete subscription's PaymentIntent,
//! updates with prorations, cancellation, lists, search, subscription
//! items, invoices and their lines, races and bad input.
use crate::common;

use common::{
    KEY, Reply, TestServer, amazon_pay_with_mandate, enc, events_in_order, id, redirect_url, submit,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(id)
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// Civil calendar arithmetic, to know what "one month later" is.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The same time of day `months` calendar months later, the day clamped to
/// the month's last (Jan 31 → Feb 28).
fn add_months(ts: i64, months: i64) -> i64 {
    let (year, month, day) = civil_from_days(ts.div_euclid(DAY));
    let total = year * 12 + month - 1 + months;
    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let last = days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1);
    days_from_civil(y, m, day.min(last)) * DAY + ts.rem_euclid(DAY)
}

async fn product(server: &TestServer, name: &str) -> String {
    server
        .post("/v1/products", &format!("name={}", enc(name)))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A recurring price of a new product.
async fn price(server: &TestServer, amount: i64, interval: &str) -> String {
    let product = product(server, "Twin Plan").await;
    price_of(server, &product, amount, interval, "usd").await
}

async fn price_of(
    server: &TestServer,
    product: &str,
    amount: i64,
    interval: &str,
    currency: &str,
) -> String {
    let price = server
        .post(
            "/v1/prices",
            &format!(
                "product={product}&unit_amount={amount}&currency={currency}&recurring[interval]={interval}"
            ),
        )
        .await
        .ok();
    assert_eq!(price["type"], "recurring");
    id(&price)
}

async fn customer(server: &TestServer) -> String {
    server
        .post(
            "/v1/customers",
            "email=subscriber%40example.com&name=Subscriber",
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Attaches a fresh copy of a ready-made test method; returns its new ID.
async fn attach(server: &TestServer, test_pm: &str, customer: &str) -> String {
    let attached = server
        .post(
            &format!("/v1/payment_methods/{test_pm}/attach"),
            &format!("customer={customer}"),
        )
        .await
        .ok();
    assert_eq!(attached["customer"], customer);
    id(&attached)
}

async fn set_default(server: &TestServer, customer: &str, pm: &str) {
    let updated = server
        .post(
            &format!("/v1/customers/{customer}"),
            &format!("invoice_settings[default_payment_method]={pm}"),
        )
        .await
        .ok();
    assert_eq!(updated["invoice_settings"]["default_payment_method"], pm);
}

/// A customer whose invoice default is a fresh copy of `test_pm`.
async fn customer_with(server: &TestServer, test_pm: &str) -> (String, String) {
    let customer = customer(server).await;
    let pm = attach(server, test_pm, &customer).await;
    set_default(server, &customer, &pm).await;
    (customer, pm)
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

/// The subscription's first item.
fn item(sub: &Value) -> &Value {
    &sub["items"]["data"][0]
}

/// The PaymentIntent paying an invoice, through its invoice payment.
async fn invoice_intent(server: &TestServer, invoice: &str) -> Value {
    let payments = server
        .get(&format!("/v1/invoice_payments?invoice={invoice}"))
        .await
        .ok();
    assert_eq!(payments["data"].as_array().unwrap().len(), 1, "{payments}");
    let pi = payments["data"][0]["payment"]["payment_intent"]
        .as_str()
        .expect("a payment intent");
    server.get(&format!("/v1/payment_intents/{pi}")).await.ok()
}

fn assert_no_hidden(value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                assert!(!key.starts_with('_'), "{key} leaked");
                assert_no_hidden(value);
            }
        }
        Value::Array(items) => items.iter().for_each(assert_no_hidden),
        _ => {}
    }
}

async fn card_subscription_is_paid_at_once(server: TestServer) {
    let plan = price(&server, 1500, "month").await;
    let (customer, pm) = customer_with(&server, "pm_card_visa").await;
    let before = now();
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&items[0][quantity]=2&metadata[plan]=pro&expand[]=latest_invoice.payments&expand[]=latest_invoice.confirmation_secret"
            ),
        )
        .await
        .ok();
    let sub_id = id(&sub);
    assert!(sub_id.starts_with("sub_"), "{sub_id}");
    assert_eq!(sub["object"], "subscription");
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["customer"], customer.as_str());
    assert_eq!(sub["currency"], "usd");
    assert_eq!(sub["collection_method"], "charge_automatically");
    assert_eq!(sub["metadata"], json!({"plan": "pro"}));
    assert!(sub["default_payment_method"].is_null());
    assert!(sub["canceled_at"].is_null() && sub["ended_at"].is_null());
    assert!(sub["trial_start"].is_null() && sub["trial_end"].is_null());
    let start = sub["start_date"].as_i64().unwrap();
    assert!(start >= before && start <= now(), "{start}");
    assert_eq!(sub["created"], start);
    assert_eq!(sub["billing_cycle_anchor"], start);

    let items = sub["items"]["data"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let si = item(&sub);
    let si_id = id(si);
    assert!(si_id.starts_with("si_"));
    assert_eq!(si["object"], "subscription_item");
    assert_eq!(si["subscription"], sub_id.as_str());
    assert_eq!(si["price"]["id"], plan.as_str());
    assert_eq!(si["plan"]["id"], plan.as_str());
    assert_eq!(si["plan"]["interval"], "month");
    assert_eq!(si["quantity"], 2);
    assert_eq!(si["current_period_start"], start);
    assert_eq!(si["current_period_end"], add_months(start, 1));
    assert_eq!(
        sub["items"]["url"],
        format!("/v1/subscription_items?subscription={sub_id}")
    );

    let invoice = &sub["latest_invoice"];
    let invoice_id = id(invoice);
    assert!(invoice_id.starts_with("in_"));
    assert_eq!(invoice["object"], "invoice");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["billing_reason"], "subscription_create");
    assert_eq!(invoice["customer"], customer.as_str());
    assert_eq!(invoice["amount_due"], 3000);
    assert_eq!(invoice["amount_paid"], 3000);
    assert_eq!(invoice["amount_remaining"], 0);
    assert_eq!(invoice["total"], 3000);
    assert_eq!(invoice["attempted"], true);
    assert_eq!(invoice["attempt_count"], 1);
    assert!(invoice["number"].is_string());
    assert!(invoice["status_transitions"]["finalized_at"].is_i64());
    assert!(invoice["status_transitions"]["paid_at"].is_i64());
    assert_eq!(
        invoice["parent"]["subscription_details"]["subscription"],
        sub_id.as_str()
    );
    let line = &invoice["lines"]["data"][0];
    assert_eq!(invoice["lines"]["data"].as_array().unwrap().len(), 1);
    assert_eq!(line["amount"], 3000);
    assert_eq!(line["quantity"], 2);
    assert_eq!(line["pricing"]["price_details"]["price"], plan.as_str());
    assert_eq!(line["period"]["start"], start);
    assert_eq!(line["period"]["end"], add_months(start, 1));
    assert_eq!(
        line["parent"]["subscription_item_details"]["subscription_item"],
        si_id.as_str()
    );
    assert_eq!(
        line["parent"]["subscription_item_details"]["proration"],
        false
    );

    let secret = &invoice["confirmation_secret"];
    assert_eq!(secret["type"], "payment_intent");
    let payments = invoice["payments"]["data"].as_array().expect("payments");
    assert_eq!(payments.len(), 1);
    let payment = &payments[0];
    assert_eq!(payment["object"], "invoice_payment");
    assert_eq!(payment["status"], "paid");
    assert_eq!(payment["amount_paid"], 3000);
    assert_eq!(payment["amount_requested"], 3000);
    assert_eq!(payment["invoice"], invoice_id.as_str());
    assert_eq!(payment["payment"]["type"], "payment_intent");
    let pi = payment["payment"]["payment_intent"].as_str().unwrap();
    assert!(
        secret["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{pi}_secret_")),
        "{secret}"
    );
    assert_no_hidden(&sub);

    let intent = server.get(&format!("/v1/payment_intents/{pi}")).await.ok();
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 3000);
    assert_eq!(intent["amount_received"], 3000);
    assert_eq!(intent["customer"], customer.as_str());
    assert_eq!(intent["payment_method"], pm.as_str());
    assert_eq!(intent["client_secret"], secret["client_secret"]);
    assert_eq!(intent["description"], "Subscription creation");
    let charge = server
        .get(&format!(
            "/v1/charges/{}",
            intent["latest_charge"].as_str().expect("a charge")
        ))
        .await
        .ok();
    assert_eq!(charge["status"], "succeeded");
    assert_eq!(charge["amount"], 3000);
    assert_eq!(charge["payment_method"], pm.as_str());
    assert_eq!(charge["customer"], customer.as_str());

    // Retrieval shows what creation showed, without the expansions.
    let retrieved = server
        .get(&format!("/v1/subscriptions/{sub_id}"))
        .await
        .ok();
    assert_eq!(retrieved["latest_invoice"], invoice_id.as_str());
    assert_eq!(retrieved["items"], sub["items"]);
    assert_no_hidden(&retrieved);
    let invoice_alone = server.get(&format!("/v1/invoices/{invoice_id}")).await.ok();
    assert!(invoice_alone.get("confirmation_secret").is_none());
    assert!(invoice_alone.get("payments").is_none());
    assert_eq!(invoice_alone["status"], "paid");
    assert_no_hidden(&invoice_alone);

    // Subscription items.
    let listed = server
        .get(&format!("/v1/subscription_items?subscription={sub_id}"))
        .await
        .ok();
    assert_eq!(ids(&listed), [si_id.as_str()]);
    assert_eq!(listed["url"], "/v1/subscription_items");
    let one = server
        .get(&format!("/v1/subscription_items/{si_id}"))
        .await
        .ok();
    assert_eq!(&one, si);
    let missing_item = server.get("/v1/subscription_items/si_missing").await;
    assert_eq!(missing_item.status, StatusCode::NOT_FOUND);
    let no_subscription = server.get("/v1/subscription_items").await;
    assert_eq!(no_subscription.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_subscription.error_param(), "subscription");

    // Invoices and their lines.
    for (query, expected) in [
        (format!("customer={customer}"), vec![invoice_id.as_str()]),
        (format!("subscription={sub_id}"), vec![invoice_id.as_str()]),
        (
            format!("customer={customer}&subscription={sub_id}&status=paid"),
            vec![invoice_id.as_str()],
        ),
        (format!("customer={customer}&status=open"), vec![]),
        ("subscription=sub_other".to_owned(), vec![]),
    ] {
        let list = server.get(&format!("/v1/invoices?{query}")).await.ok();
        assert_eq!(ids(&list), expected, "{query}");
    }
    let lines = server
        .get(&format!("/v1/invoices/{invoice_id}/lines"))
        .await
        .ok();
    assert_eq!(lines["object"], "list");
    assert_eq!(lines["data"], invoice["lines"]["data"]);
    assert_eq!(lines["url"], format!("/v1/invoices/{invoice_id}/lines"));
    assert_eq!(lines["has_more"], false);
    let bad_status = server.get("/v1/invoices?status=weird").await;
    assert_eq!(bad_status.error_param(), "status");
    assert_eq!(
        server.get("/v1/invoices/in_missing").await.status,
        StatusCode::NOT_FOUND
    );

    let types = events_in_order(&server).await;
    assert!(
        types.ends_with(
            &[
                "customer.subscription.created",
                "invoice.created",
                "invoice.finalized",
                "payment_intent.created",
                "charge.succeeded",
                "payment_intent.succeeded",
                "invoice_payment.paid",
                "invoice.paid",
                "invoice.payment_succeeded",
            ]
            .map(str::to_owned)
        ),
        "{types:?}"
    );
    let created_event = &server
        .get("/v1/events?type=customer.subscription.created")
        .await
        .ok()["data"][0];
    assert_eq!(created_event["data"]["object"]["id"], sub_id.as_str());
    assert_eq!(created_event["data"]["object"]["status"], "active");
    assert_no_hidden(created_event);
}

async fn amazon_pay_subscription_through_mandate(server: TestServer) {
    let plan = price(&server, 990, "month").await;
    // The customer's own default would fail: the subscription's default wins.
    let (customer, _) = customer_with(&server, "pm_card_chargeCustomerFail").await;
    let pm = amazon_pay_with_mandate(&server, &customer).await;
    let created = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&default_payment_method={pm}&payment_settings[payment_method_types][]=amazon_pay&expand[]=latest_invoice.payments.data.payment.payment_intent"
            ),
        )
        .await;
    // Client code in the wild sends exactly this path to reach the
    // first payment's PaymentIntent.
    assert_eq!(
        created.status,
        StatusCode::OK,
        "expand[]=latest_invoice.payments.data.payment.payment_intent refused: {}",
        created.body
    );
    let sub = created.body;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["default_payment_method"], pm.as_str());
    assert_eq!(
        sub["payment_settings"]["payment_method_types"],
        json!(["amazon_pay"])
    );
    let start = sub["start_date"].as_i64().unwrap();
    assert_eq!(item(&sub)["current_period_end"], add_months(start, 1));
    let invoice = &sub["latest_invoice"];
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_paid"], 990);
    let intent = &invoice["payments"]["data"][0]["payment"]["payment_intent"];
    assert_eq!(intent["object"], "payment_intent");
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["payment_method"], pm.as_str());
    assert_eq!(intent["payment_method_types"], json!(["amazon_pay"]));
    assert!(intent["next_action"].is_null());
    let charge = server
        .get(&format!(
            "/v1/charges/{}",
            intent["latest_charge"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(charge["payment_method_details"]["type"], "amazon_pay");
    assert_eq!(charge["amount"], 990);
    let types = events_in_order(&server).await;
    assert_eq!(count(&types, "charge.failed"), 0, "{types:?}");
    assert_eq!(count(&types, "invoice.paid"), 1);
}

/// Stripe sends trial_will_end three days before a trial ends: at once
/// when the trial is shorter than that.
async fn trial_will_end_for_short_trials(server: TestServer) {
    let plan = price(&server, 2000, "month").await;
    let customer = customer(&server).await;
    let long = format!("customer={customer}&items[0][price]={plan}&trial_period_days=14");
    server.post("/v1/subscriptions", &long).await.ok();
    let warned = |types: &[String]| count(types, "customer.subscription.trial_will_end");
    assert_eq!(warned(&events_in_order(&server).await), 0);
    let short = format!("customer={customer}&items[0][price]={plan}&trial_period_days=2");
    let sub = server.post("/v1/subscriptions", &short).await.ok();
    let types = events_in_order(&server).await;
    assert_eq!(warned(&types), 1);
    let created = types
        .iter()
        .rposition(|t| t == "customer.subscription.created")
        .unwrap();
    assert_eq!(types[created + 1], "customer.subscription.trial_will_end");
    let event = &server
        .get("/v1/events?type=customer.subscription.trial_will_end")
        .await
        .ok()["data"][0];
    assert_eq!(event["data"]["object"]["id"], sub["id"]);
}

async fn trials(server: TestServer) {
    let plan = price(&server, 2000, "month").await;
    // No payment method at all: a trial needs none.
    let customer = customer(&server).await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&trial_period_days=14&expand[]=latest_invoice.payments"
            ),
        )
        .await
        .ok();
    assert_eq!(sub["status"], "trialing");
    let start = sub["start_date"].as_i64().unwrap();
    assert_eq!(sub["trial_start"], start);
    assert_eq!(sub["trial_end"], start + 14 * DAY);
    assert_eq!(item(&sub)["current_period_start"], start);
    assert_eq!(item(&sub)["current_period_end"], start + 14 * DAY);
    let invoice = &sub["latest_invoice"];
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_due"], 0);
    assert_eq!(invoice["amount_paid"], 0);
    assert_eq!(invoice["total"], 0);
    assert_eq!(invoice["billing_reason"], "subscription_create");
    assert_eq!(invoice["payments"]["data"], json!([]));
    let line = &invoice["lines"]["data"][0];
    assert_eq!(line["amount"], 0);
    assert!(
        line["description"]
            .as_str()
            .unwrap()
            .starts_with("Trial period for"),
        "{line}"
    );
    assert_eq!(
        server.get("/v1/payment_intents").await.ok()["data"],
        json!([])
    );
    let types = events_in_order(&server).await;
    assert!(
        types.ends_with(
            &[
                "customer.subscription.created",
                "invoice.created",
                "invoice.finalized",
                "invoice.paid",
                "invoice.payment_succeeded",
            ]
            .map(str::to_owned)
        ),
        "{types:?}"
    );

    // trial_end as a timestamp.
    let end = now() + 3 * DAY + 17;
    let until = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={plan}&trial_end={end}"),
        )
        .await
        .ok();
    assert_eq!(until["status"], "trialing");
    assert_eq!(until["trial_end"], end);
    assert_eq!(until["billing_cycle_anchor"], end);
    assert_eq!(item(&until)["current_period_end"], end);

    let trialing = server
        .get(&format!(
            "/v1/subscriptions?customer={customer}&status=trialing"
        ))
        .await
        .ok();
    assert_eq!(ids(&trialing), [id(&until), id(&sub)]);
}

async fn payment_fails_allow_incomplete(server: TestServer) {
    let plan = price(&server, 1200, "month").await;
    let (customer, _) = customer_with(&server, "pm_card_chargeCustomerFail").await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&payment_behavior=allow_incomplete&expand[]=latest_invoice"
            ),
        )
        .await
        .ok();
    let sub_id = id(&sub);
    assert_eq!(sub["status"], "incomplete");
    let invoice = &sub["latest_invoice"];
    let invoice_id = id(invoice);
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["amount_due"], 1200);
    assert_eq!(invoice["amount_paid"], 0);
    assert_eq!(invoice["amount_remaining"], 1200);
    assert_eq!(invoice["attempted"], true);
    assert_eq!(invoice["attempt_count"], 1);
    let intent = invoice_intent(&server, &invoice_id).await;
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(intent["last_payment_error"]["code"], "card_declined");
    assert_eq!(intent["last_payment_error"]["type"], "card_error");
    let types = events_in_order(&server).await;
    for kind in [
        "charge.failed",
        "payment_intent.payment_failed",
        "invoice.payment_failed",
    ] {
        assert_eq!(count(&types, kind), 1, "{kind}: {types:?}");
    }
    assert_eq!(count(&types, "invoice.paid"), 0);
    let incomplete = server
        .get(&format!(
            "/v1/subscriptions?customer={customer}&status=incomplete"
        ))
        .await
        .ok();
    assert_eq!(ids(&incomplete), [sub_id.as_str()]);
    let open = server
        .get(&format!("/v1/invoices?customer={customer}&status=open"))
        .await
        .ok();
    assert_eq!(ids(&open), [invoice_id.as_str()]);

    // Paying the open invoice with a good card settles everything.
    let good = attach(&server, "pm_card_visa", &customer).await;
    let paid = server
        .post(
            &format!("/v1/invoices/{invoice_id}/pay"),
            &format!("payment_method={good}"),
        )
        .await
        .ok();
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["amount_paid"], 1200);
    assert_eq!(paid["amount_remaining"], 0);
    assert_eq!(paid["attempt_count"], 2);
    let active = server
        .get(&format!("/v1/subscriptions/{sub_id}"))
        .await
        .ok();
    assert_eq!(active["status"], "active");
    let intent = invoice_intent(&server, &invoice_id).await;
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["payment_method"], good.as_str());
    let payment = &server
        .get(&format!("/v1/invoice_payments?invoice={invoice_id}"))
        .await
        .ok()["data"][0];
    assert_eq!(payment["status"], "paid");
    assert_eq!(payment["amount_paid"], 1200);
    let updated = &server
        .get("/v1/events?type=customer.subscription.updated")
        .await
        .ok()["data"][0];
    assert_eq!(updated["data"]["object"]["status"], "active");
    assert_eq!(
        updated["data"]["previous_attributes"]["status"],
        "incomplete"
    );
    let types = events_in_order(&server).await;
    assert_eq!(count(&types, "invoice.paid"), 1);
    assert_eq!(count(&types, "invoice_payment.paid"), 1);

    let again = server
        .post(&format!("/v1/invoices/{invoice_id}/pay"), "")
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert_eq!(again.error_code(), "invoice_unexpected_state");
}

async fn payment_fails_error_if_incomplete(server: TestServer) {
    let plan = price(&server, 1200, "month").await;
    let (customer, _) = customer_with(&server, "pm_card_chargeCustomerFail").await;
    let before = server.get(&format!("/v1/customers/{customer}")).await.ok();
    let refused = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&payment_behavior=error_if_incomplete"
            ),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    assert_eq!(refused.error_type(), "card_error");
    assert_eq!(refused.error_code(), "card_declined");
    // Nothing is left behind.
    for path in [
        format!("/v1/subscriptions?customer={customer}"),
        format!("/v1/subscriptions?customer={customer}&status=all"),
        format!("/v1/invoices?customer={customer}"),
        format!("/v1/payment_intents?customer={customer}"),
        format!("/v1/charges?customer={customer}"),
        "/v1/invoice_payments".to_owned(),
    ] {
        assert_eq!(server.get(&path).await.ok()["data"], json!([]), "{path}");
    }
    let after = server.get(&format!("/v1/customers/{customer}")).await.ok();
    assert_eq!(after, before);
    let types = events_in_order(&server).await;
    assert!(
        !types.iter().any(|t| t.starts_with("customer.subscription.")
            || t.starts_with("invoice")
            || t.starts_with("charge")
            || t.starts_with("payment_intent")),
        "{types:?}"
    );

    // amazon_pay without a mandate: the same.
    let bare = server
        .post("/v1/payment_methods", "type=amazon_pay")
        .await
        .ok();
    let bare = id(&bare);
    server
        .post(
            &format!("/v1/payment_methods/{bare}/attach"),
            &format!("customer={customer}"),
        )
        .await
        .ok();
    let no_mandate = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&default_payment_method={bare}&payment_behavior=error_if_incomplete"
            ),
        )
        .await;
    assert_eq!(
        no_mandate.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        no_mandate.body
    );
    assert_eq!(no_mandate.error_type(), "card_error");

    // No payment method at all.
    let nobody = self::customer(&server).await;
    let no_pm = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={nobody}&items[0][price]={plan}&payment_behavior=error_if_incomplete"
            ),
        )
        .await;
    assert_eq!(no_pm.status, StatusCode::BAD_REQUEST, "{}", no_pm.body);
    assert_eq!(no_pm.error_type(), "invalid_request_error");
    assert_eq!(
        server.get("/v1/subscriptions?status=all").await.ok()["data"],
        json!([])
    );
}

async fn amazon_pay_without_mandate_is_incomplete(server: TestServer) {
    let plan = price(&server, 1200, "month").await;
    let customer = customer(&server).await;
    let bare = server
        .post("/v1/payment_methods", "type=amazon_pay")
        .await
        .ok();
    let bare = id(&bare);
    server
        .post(
            &format!("/v1/payment_methods/{bare}/attach"),
            &format!("customer={customer}"),
        )
        .await
        .ok();
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={plan}&default_payment_method={bare}"),
        )
        .await
        .ok();
    assert_eq!(sub["status"], "incomplete");
    let invoice = server
        .get(&format!(
            "/v1/invoices/{}",
            sub["latest_invoice"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(invoice["status"], "open");
    let intent = invoice_intent(&server, &id(&invoice)).await;
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(
        intent["last_payment_error"]["code"],
        "payment_method_provider_decline"
    );
    assert_eq!(
        intent["last_payment_error"]["payment_method"]["id"],
        bare.as_str()
    );
}

async fn default_incomplete_then_client_confirms(server: TestServer) {
    let plan = price(&server, 2500, "month").await;
    let customer = customer(&server).await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&payment_behavior=default_incomplete&payment_settings[save_default_payment_method]=on_subscription&expand[]=latest_invoice.confirmation_secret&expand[]=latest_invoice.payments"
            ),
        )
        .await
        .ok();
    let sub_id = id(&sub);
    assert_eq!(sub["status"], "incomplete");
    assert_eq!(
        sub["payment_settings"]["save_default_payment_method"],
        "on_subscription"
    );
    let invoice = &sub["latest_invoice"];
    let invoice_id = id(invoice);
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["amount_remaining"], 2500);
    assert_eq!(invoice["attempted"], false);
    let secret = invoice["confirmation_secret"]["client_secret"]
        .as_str()
        .expect("a confirmation secret")
        .to_owned();
    let pi = invoice["payments"]["data"][0]["payment"]["payment_intent"]
        .as_str()
        .expect("a payment intent")
        .to_owned();
    assert!(secret.starts_with(&format!("{pi}_secret_")));
    let intent = server.get(&format!("/v1/payment_intents/{pi}")).await.ok();
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(intent["amount"], 2500);
    assert_eq!(intent["customer"], customer.as_str());
    let types = events_in_order(&server).await;
    assert_eq!(count(&types, "payment_intent.created"), 1);
    assert_eq!(
        count(&types, "charge.failed") + count(&types, "charge.succeeded"),
        0
    );
    assert_eq!(count(&types, "invoice.payment_failed"), 0);

    // The client confirms with a payment method.
    let pm = attach(&server, "pm_card_visa", &customer).await;
    let confirmed = server
        .post(
            &format!("/v1/payment_intents/{pi}/confirm"),
            &format!("payment_method={pm}"),
        )
        .await
        .ok();
    assert_eq!(confirmed["status"], "succeeded");
    let active = server
        .get(&format!("/v1/subscriptions/{sub_id}"))
        .await
        .ok();
    assert_eq!(active["status"], "active");
    assert_eq!(active["default_payment_method"], pm.as_str());
    let paid = server.get(&format!("/v1/invoices/{invoice_id}")).await.ok();
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["amount_paid"], 2500);
    assert_eq!(paid["amount_remaining"], 0);
    let payment = &server
        .get(&format!("/v1/invoice_payments?invoice={invoice_id}"))
        .await
        .ok()["data"][0];
    assert_eq!(payment["status"], "paid");
    let types = events_in_order(&server).await;
    assert!(
        types.ends_with(
            &[
                "charge.succeeded",
                "payment_intent.succeeded",
                "invoice_payment.paid",
                "invoice.paid",
                "invoice.payment_succeeded",
                "customer.subscription.updated",
            ]
            .map(str::to_owned)
        ),
        "{types:?}"
    );
    // A paid invoice's PaymentIntent is done.
    let twice = server
        .post(
            &format!("/v1/payment_intents/{pi}/confirm"),
            &format!("payment_method={pm}"),
        )
        .await;
    assert_eq!(twice.error_code(), "payment_intent_unexpected_state");
    // An invoice's PaymentIntent keeps its amount.
    let open_sub = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={}&payment_behavior=default_incomplete&expand[]=latest_invoice.payments",
                price_of(&server, &product(&server, "Other").await, 700, "month", "usd").await
            ),
        )
        .await
        .ok();
    let other_pi = open_sub["latest_invoice"]["payments"]["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    let amount = server
        .post(&format!("/v1/payment_intents/{other_pi}"), "amount=1")
        .await;
    assert_eq!(amount.status, StatusCode::BAD_REQUEST);
    assert_eq!(amount.error_param(), "amount");
    let cancel = server
        .post(&format!("/v1/payment_intents/{other_pi}/cancel"), "")
        .await;
    assert_eq!(cancel.status, StatusCode::BAD_REQUEST);
}

/// Stripe.js pays a default_incomplete subscription with Amazon Pay: the
/// publishable key, the invoice's confirmation secret, the page.
async fn default_incomplete_paid_with_amazon_pay_in_the_browser(server: TestServer) {
    let plan = price(&server, 1800, "month").await;
    let customer = customer(&server).await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&payment_behavior=default_incomplete&payment_settings[save_default_payment_method]=on_subscription&expand[]=latest_invoice.confirmation_secret"
            ),
        )
        .await
        .ok();
    let secret = sub["latest_invoice"]["confirmation_secret"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let pi = secret.split("_secret_").next().unwrap().to_owned();
    let body = format!(
        "key=pk_test_shop&client_secret={secret}&payment_method_data[type]=amazon_pay&return_url={}&setup_future_usage=off_session&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][infer_from_client]=true",
        enc("https://shop.example/subscribed")
    );
    let confirmed = server
        .call(
            Method::POST,
            &format!("/v1/payment_intents/{pi}/confirm"),
            None,
            &body,
            &[],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "requires_action");
    assert!(confirmed.body.get("customer").is_none());
    let still = server
        .get(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .ok();
    assert_eq!(still["status"], "incomplete");

    let (status, location, _) = submit(&redirect_url(&confirmed.body), "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.ends_with("redirect_status=succeeded"),
        "{location}"
    );
    let active = server
        .get(&format!(
            "/v1/subscriptions/{}?expand[]=latest_invoice",
            id(&sub)
        ))
        .await
        .ok();
    assert_eq!(active["status"], "active");
    assert_eq!(active["latest_invoice"]["status"], "paid");
    let pm = active["default_payment_method"]
        .as_str()
        .expect("saved on the subscription");
    let saved = server.get(&format!("/v1/payment_methods/{pm}")).await.ok();
    assert_eq!(saved["type"], "amazon_pay");
    assert_eq!(saved["customer"], customer.as_str());
    // The payment set up a mandate: the next invoice charges off-session.
    let next = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={}&default_payment_method={pm}",
                price_of(
                    &server,
                    &product(&server, "Add-on").await,
                    300,
                    "month",
                    "usd"
                )
                .await
            ),
        )
        .await
        .ok();
    assert_eq!(next["status"], "active");
}

async fn concurrent_confirms_pay_the_invoice_once(server: TestServer) {
    let plan = price(&server, 4000, "month").await;
    let customer = customer(&server).await;
    let pm = attach(&server, "pm_card_visa", &customer).await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&payment_behavior=default_incomplete&expand[]=latest_invoice.payments"
            ),
        )
        .await
        .ok();
    let invoice_id = id(&sub["latest_invoice"]);
    let pi = sub["latest_invoice"]["payments"]["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/payment_intents/{pi}/confirm");
    let body = format!("payment_method={pm}");
    let replies: Vec<Reply> =
        futures_util::future::join_all((0..6).map(|_| server.post(&path, &body))).await;
    let won = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(
        won,
        1,
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for lost in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(lost.status, StatusCode::BAD_REQUEST, "{}", lost.body);
        assert_eq!(lost.error_code(), "payment_intent_unexpected_state");
    }
    let invoice = server.get(&format!("/v1/invoices/{invoice_id}")).await.ok();
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_paid"], 4000);
    assert_eq!(invoice["attempt_count"], 1);
    let sub = server
        .get(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .ok();
    assert_eq!(sub["status"], "active");
    let charges = server
        .get(&format!("/v1/charges?payment_intent={pi}"))
        .await
        .ok();
    assert_eq!(charges["data"].as_array().unwrap().len(), 1);
    let types = events_in_order(&server).await;
    for kind in [
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice_payment.paid",
        "payment_intent.succeeded",
        "charge.succeeded",
    ] {
        assert_eq!(count(&types, kind), 1, "{kind}: {types:?}");
    }
}

async fn updates(server: TestServer) {
    let product = product(&server, "Seats").await;
    let basic = price_of(&server, &product, 1000, "month", "usd").await;
    let pro = price_of(&server, &product, 2000, "month", "usd").await;
    let extra = price_of(&server, &product, 500, "month", "usd").await;
    let yearly = price_of(&server, &product, 10_000, "year", "usd").await;
    let euro = price_of(&server, &product, 900, "month", "eur").await;
    let (customer, _) = customer_with(&server, "pm_card_visa").await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={basic}&metadata[plan]=basic"),
        )
        .await
        .ok();
    let sub_id = id(&sub);
    let path = format!("/v1/subscriptions/{sub_id}");
    let si = id(item(&sub));
    let first_invoice = sub["latest_invoice"].as_str().unwrap().to_owned();
    let period_end = item(&sub)["current_period_end"].as_i64().unwrap();

    // Metadata.
    let updated = server
        .post(&path, "metadata[plan]=pro&metadata[team]=red")
        .await
        .ok();
    assert_eq!(updated["metadata"], json!({"plan": "pro", "team": "red"}));
    let event = &server.get("/v1/events?limit=1").await.ok()["data"][0];
    assert_eq!(event["type"], "customer.subscription.updated");
    assert_eq!(
        event["data"]["previous_attributes"]["metadata"],
        json!({"plan": "basic", "team": null})
    );

    // default_payment_method: attached methods only.
    let second = attach(&server, "pm_card_mastercard", &customer).await;
    let updated = server
        .post(&path, &format!("default_payment_method={second}"))
        .await
        .ok();
    assert_eq!(updated["default_payment_method"], second.as_str());
    let loose = id(&server
        .post("/v1/payment_methods", "type=card&card[token]=tok_visa")
        .await
        .ok());
    let not_attached = server
        .post(&path, &format!("default_payment_method={loose}"))
        .await;
    assert_eq!(not_attached.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_attached.error_param(), "default_payment_method");
    let cleared = server.post(&path, "default_payment_method=").await.ok();
    assert!(cleared["default_payment_method"].is_null());

    // cancel_at_period_end.
    let ending = server.post(&path, "cancel_at_period_end=true").await.ok();
    assert_eq!(ending["cancel_at_period_end"], true);
    assert_eq!(ending["cancel_at"], period_end);
    assert_eq!(ending["status"], "active");
    let kept = server.post(&path, "cancel_at_period_end=false").await.ok();
    assert_eq!(kept["cancel_at_period_end"], false);
    assert!(kept["cancel_at"].is_null());

    // Adding an item without prorations: no invoice.
    let added = server
        .post(
            &path,
            &format!(
                "items[0][id]={si}&items[1][price]={extra}&items[1][quantity]=2&proration_behavior=none"
            ),
        )
        .await
        .ok();
    let items = added["items"]["data"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let extra_item = items
        .iter()
        .find(|i| i["price"]["id"] == extra.as_str())
        .expect("the new item");
    let extra_si = id(extra_item);
    assert_eq!(extra_item["quantity"], 2);
    assert_eq!(extra_item["current_period_end"], period_end);
    assert_eq!(added["latest_invoice"], first_invoice.as_str());
    let listed = server
        .get(&format!("/v1/subscription_items?subscription={sub_id}"))
        .await
        .ok();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        server
            .get(&format!("/v1/subscription_items/{extra_si}"))
            .await
            .ok()["quantity"],
        2
    );

    // Removing it.
    let removed = server
        .post(
            &path,
            &format!("items[0][id]={extra_si}&items[0][deleted]=true&proration_behavior=none"),
        )
        .await
        .ok();
    assert_eq!(ids(&removed["items"]), [si.as_str()]);
    assert_eq!(
        server
            .get(&format!("/v1/subscription_items/{extra_si}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // A quantity change with create_prorations: pending, not invoiced yet.
    let more = server
        .post(
            &path,
            &format!("items[0][id]={si}&items[0][quantity]=3&proration_behavior=create_prorations"),
        )
        .await
        .ok();
    assert_eq!(item(&more)["quantity"], 3);
    assert_eq!(more["latest_invoice"], first_invoice.as_str());

    // A price change with always_invoice: a new invoice, paid at once,
    // carrying the pending prorations too.
    let upgraded = server
        .post(
            &format!("{path}?expand[]=latest_invoice"),
            &format!("items[0][id]={si}&items[0][price]={pro}&proration_behavior=always_invoice"),
        )
        .await
        .ok();
    assert_eq!(item(&upgraded)["price"]["id"], pro.as_str());
    assert_eq!(item(&upgraded)["quantity"], 3);
    assert_eq!(item(&upgraded)["current_period_end"], period_end);
    assert_eq!(upgraded["status"], "active");
    let invoice = &upgraded["latest_invoice"];
    assert_ne!(id(invoice), first_invoice);
    assert_eq!(invoice["billing_reason"], "subscription_update");
    assert_eq!(invoice["status"], "paid");
    // -1000 + 3000 (quantity 1 → 3), then -3000 + 6000 (basic → pro).
    assert_eq!(invoice["amount_due"], 5000, "{invoice}");
    assert_eq!(invoice["amount_paid"], 5000);
    let lines = invoice["lines"]["data"].as_array().unwrap();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l["parent"]["subscription_item_details"]["proration"] == true)
    );
    let intent = invoice_intent(&server, &id(invoice)).await;
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 5000);
    assert_eq!(intent["description"], "Subscription update");
    let invoices = server
        .get(&format!("/v1/invoices?subscription={sub_id}"))
        .await
        .ok();
    assert_eq!(invoices["data"].as_array().unwrap().len(), 2);
    // Its lines, a page at a time.
    let invoice_id = id(invoice);
    let all_lines: Vec<String> = lines.iter().map(id).collect();
    let first_page = server
        .get(&format!("/v1/invoices/{invoice_id}/lines?limit=3"))
        .await
        .ok();
    assert_eq!(ids(&first_page), all_lines[..3]);
    assert_eq!(first_page["has_more"], true);
    let second_page = server
        .get(&format!(
            "/v1/invoices/{invoice_id}/lines?limit=3&starting_after={}",
            all_lines[2]
        ))
        .await
        .ok();
    assert_eq!(ids(&second_page), all_lines[3..]);
    assert_eq!(second_page["has_more"], false);
    let before_last = server
        .get(&format!(
            "/v1/invoices/{invoice_id}/lines?limit=2&ending_before={}",
            all_lines[3]
        ))
        .await
        .ok();
    assert_eq!(ids(&before_last), all_lines[1..3]);
    assert_eq!(before_last["has_more"], true);
    let unknown_line = server
        .get(&format!(
            "/v1/invoices/{invoice_id}/lines?starting_after=il_missing"
        ))
        .await;
    // As the other lists answer an unknown cursor.
    assert_eq!(
        unknown_line.status,
        StatusCode::NOT_FOUND,
        "{}",
        unknown_line.body
    );
    assert_eq!(unknown_line.error_code(), "resource_missing");
    assert_eq!(unknown_line.error_param(), "starting_after");

    // A new interval restarts the period and bills it in full.
    let before = now();
    let to_yearly = server
        .post(
            &format!("{path}?expand[]=latest_invoice"),
            &format!("items[0][id]={si}&items[0][price]={yearly}&items[0][quantity]=1"),
        )
        .await
        .ok();
    let start = item(&to_yearly)["current_period_start"].as_i64().unwrap();
    assert!(start >= before, "{start}");
    assert_eq!(
        item(&to_yearly)["current_period_end"],
        add_months(start, 12)
    );
    assert_eq!(to_yearly["billing_cycle_anchor"], start);
    assert_eq!(item(&to_yearly)["plan"]["interval"], "year");
    let invoice = &to_yearly["latest_invoice"];
    assert_eq!(invoice["status"], "paid");
    // The full year, less the credit for the unused month at pro × 3.
    assert_eq!(invoice["amount_due"], 10_000 - 6000, "{invoice}");

    // Refusals leave the subscription as it was.
    let snapshot = server.get(&path).await.ok();
    for (body, param) in [
        (format!("items[0][id]={si}&items[0][deleted]=true"), "items"),
        (
            "items[0][id]=si_missing&items[0][quantity]=2".to_owned(),
            "items",
        ),
        (format!("items[0][price]={euro}"), "items"),
        (format!("items[0][price]={basic}"), "items"),
        (
            "items[0][price]=price_missing".to_owned(),
            "items[0][price]",
        ),
        (
            "proration_behavior=sometimes".to_owned(),
            "proration_behavior",
        ),
        (
            "cancel_at_period_end=perhaps".to_owned(),
            "cancel_at_period_end",
        ),
        ("surprise=1".to_owned(), "surprise"),
    ] {
        let refused = server.post(&path, &body).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.body
        );
        assert_eq!(refused.error_param(), param, "{body}: {}", refused.body);
    }
    assert_eq!(server.get(&path).await.ok(), snapshot);
}

async fn failed_update_payments(server: TestServer) {
    let product = product(&server, "Seats").await;
    let basic = price_of(&server, &product, 1000, "month", "usd").await;
    let pro = price_of(&server, &product, 2000, "month", "usd").await;
    let (customer, _) = customer_with(&server, "pm_card_visa").await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={basic}"),
        )
        .await
        .ok();
    let path = format!("/v1/subscriptions/{}", id(&sub));
    let si = id(item(&sub));
    let failing = attach(&server, "pm_card_chargeCustomerFail", &customer).await;
    server
        .post(&path, &format!("default_payment_method={failing}"))
        .await
        .ok();
    let snapshot = server.get(&path).await.ok();

    // error_if_incomplete: a 402 and no change at all.
    let refused = server
        .post(
            &path,
            &format!(
                "items[0][id]={si}&items[0][price]={pro}&proration_behavior=always_invoice&payment_behavior=error_if_incomplete"
            ),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    assert_eq!(refused.error_type(), "card_error");
    assert_eq!(server.get(&path).await.ok(), snapshot);
    assert_eq!(
        server
            .get(&format!("/v1/invoices?customer={customer}"))
            .await
            .ok()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // allow_incomplete (the default): the change applies, the subscription
    // is past_due with an open invoice, and the answer is the subscription.
    let applied = server
        .post(
            &format!("{path}?expand[]=latest_invoice"),
            &format!("items[0][id]={si}&items[0][price]={pro}&proration_behavior=always_invoice"),
        )
        .await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    assert_eq!(applied.body["status"], "past_due");
    assert_eq!(item(&applied.body)["price"]["id"], pro.as_str());
    assert_eq!(applied.body["latest_invoice"]["status"], "open");
    assert_eq!(
        applied.body["latest_invoice"]["billing_reason"],
        "subscription_update"
    );
    let types = events_in_order(&server).await;
    assert_eq!(count(&types, "invoice.payment_failed"), 1);

    // Paying that invoice brings the subscription back.
    let good = attach(&server, "pm_card_visa", &customer).await;
    let paid = server
        .post(
            &format!("/v1/invoices/{}/pay", id(&applied.body["latest_invoice"])),
            &format!("payment_method={good}"),
        )
        .await
        .ok();
    assert_eq!(paid["status"], "paid");
    assert_eq!(server.get(&path).await.ok()["status"], "active");
}

async fn send_invoice_subscriptions(server: TestServer) {
    let plan = price(&server, 4500, "month").await;
    let customer = customer(&server).await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&collection_method=send_invoice&days_until_due=30&expand[]=latest_invoice"
            ),
        )
        .await
        .ok();
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["collection_method"], "send_invoice");
    assert_eq!(sub["days_until_due"], 30);
    let invoice = &sub["latest_invoice"];
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["collection_method"], "send_invoice");
    assert_eq!(
        invoice["due_date"],
        invoice["created"].as_i64().unwrap() + 30 * DAY
    );
    assert_eq!(invoice["attempted"], false);
    let listed = server
        .get(&format!(
            "/v1/invoices?customer={customer}&collection_method=send_invoice"
        ))
        .await
        .ok();
    assert_eq!(ids(&listed), [id(invoice)]);
    let no_pm = server
        .post(&format!("/v1/invoices/{}/pay", id(invoice)), "")
        .await;
    assert_eq!(no_pm.status, StatusCode::BAD_REQUEST, "{}", no_pm.body);
    let out_of_band = server
        .post(
            &format!("/v1/invoices/{}/pay", id(invoice)),
            "paid_out_of_band=true",
        )
        .await
        .ok();
    assert_eq!(out_of_band["status"], "paid");
    assert_eq!(out_of_band["amount_paid_off_stripe"], 4500);
    // Paid outside Stripe, the invoice's PaymentIntent can no longer take
    // the customer's money a second time.
    let intent = invoice_intent(&server, &id(invoice)).await;
    let confirm = server
        .post(
            &format!("/v1/payment_intents/{}/confirm", id(&intent)),
            "payment_method=pm_card_visa",
        )
        .await;
    assert_eq!(confirm.status, StatusCode::BAD_REQUEST, "{}", confirm.body);
    assert_eq!(confirm.error_code(), "payment_intent_unexpected_state");
    assert_eq!(intent["status"], "canceled");
    assert_eq!(
        server
            .get(&format!("/v1/charges?customer={customer}"))
            .await
            .ok()["data"],
        json!([])
    );
    let again = server
        .post(
            &format!("/v1/invoices/{}/pay", id(invoice)),
            "paid_out_of_band=true",
        )
        .await;
    assert_eq!(again.error_code(), "invoice_unexpected_state");
}

async fn cancel_and_resume(server: TestServer) {
    let plan = price(&server, 1000, "month").await;
    let (customer, _) = customer_with(&server, "pm_card_visa").await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={plan}"),
        )
        .await
        .ok();
    let sub_id = id(&sub);
    let path = format!("/v1/subscriptions/{sub_id}");

    // Resuming a subscription that is not paused is an error.
    let resume = server.post(&format!("{path}/resume"), "").await;
    assert_eq!(resume.status, StatusCode::BAD_REQUEST, "{}", resume.body);
    assert_eq!(resume.error_type(), "invalid_request_error");
    assert!(
        resume.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("paused")
    );

    let before = now();
    let canceled = server
        .call(
            Method::DELETE,
            &format!(
                "{path}?cancellation_details[comment]={}&cancellation_details[feedback]=too_expensive",
                enc("Too pricey")
            ),
            Some(KEY),
            "",
            &[],
        )
        .await
        .ok();
    assert_eq!(canceled["status"], "canceled");
    let at = canceled["canceled_at"].as_i64().expect("canceled_at");
    assert!(at >= before && at <= now());
    assert_eq!(canceled["ended_at"], at);
    assert_eq!(canceled["cancel_at_period_end"], false);
    assert_eq!(
        canceled["cancellation_details"],
        json!({"comment": "Too pricey", "feedback": "too_expensive", "feedback_option": null, "reason": "cancellation_requested"})
    );
    assert_no_hidden(&canceled);
    let stored = server.get(&path).await.ok();
    assert_eq!(stored, canceled);
    let event = &server.get("/v1/events?limit=1").await.ok()["data"][0];
    assert_eq!(event["type"], "customer.subscription.deleted");
    assert_eq!(event["data"]["object"]["status"], "canceled");

    // Lists hide canceled subscriptions unless asked.
    let default = server
        .get(&format!("/v1/subscriptions?customer={customer}"))
        .await
        .ok();
    assert_eq!(default["data"], json!([]));
    for status in ["canceled", "all", "ended"] {
        let listed = server
            .get(&format!(
                "/v1/subscriptions?customer={customer}&status={status}"
            ))
            .await
            .ok();
        assert_eq!(ids(&listed), [sub_id.as_str()], "{status}");
    }

    // What a canceled subscription still allows.
    let noted = server.post(&path, "metadata[reason]=moved").await.ok();
    assert_eq!(noted["metadata"]["reason"], "moved");
    assert_eq!(noted["status"], "canceled");
    let items = server
        .post(
            &path,
            &format!("items[0][id]={}&items[0][quantity]=2", id(item(&sub))),
        )
        .await;
    assert_eq!(items.status, StatusCode::BAD_REQUEST, "{}", items.body);
    let again = server.delete(&path).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
    assert_eq!(again.error_code(), "resource_missing");
    let resume = server.post(&format!("{path}/resume"), "").await;
    assert_eq!(resume.status, StatusCode::BAD_REQUEST);
    let missing = server.delete("/v1/subscriptions/sub_missing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "resource_missing");

    let types = events_in_order(&server).await;
    assert_eq!(count(&types, "customer.subscription.deleted"), 1);
}

async fn lists_and_search(server: TestServer) {
    let monthly = price(&server, 1000, "month").await;
    let yearly = price(&server, 9000, "year").await;
    let (alice, _) = customer_with(&server, "pm_card_visa").await;
    let (bob, _) = customer_with(&server, "pm_card_visa").await;
    let first = server
        .post(
            "/v1/subscriptions",
            &format!("customer={alice}&items[0][price]={monthly}&metadata[tier]=silver"),
        )
        .await
        .ok();
    let created = first["created"].as_i64().unwrap();
    let first = id(&first);
    let second = id(&server
        .post(
            "/v1/subscriptions",
            &format!("customer={bob}&items[0][price]={yearly}&metadata[tier]=gold"),
        )
        .await
        .ok());
    let third = server
        .post(
            "/v1/subscriptions",
            &format!("customer={bob}&items[0][price]={monthly}&trial_period_days=7"),
        )
        .await
        .ok();
    let third = id(&third);
    let fourth = id(&server
        .post(
            "/v1/subscriptions",
            &format!("customer={alice}&items[0][price]={yearly}&metadata[tier]=gold"),
        )
        .await
        .ok());
    server
        .delete(&format!("/v1/subscriptions/{fourth}"))
        .await
        .ok();
    let t = now();

    for (query, expected) in [
        ("".to_owned(), vec![&third, &second, &first]),
        (format!("customer={alice}"), vec![&first]),
        (format!("customer={bob}"), vec![&third, &second]),
        (format!("price={monthly}"), vec![&third, &first]),
        (format!("price={yearly}"), vec![&second]),
        (format!("price={yearly}&status=all"), vec![&fourth, &second]),
        ("status=active".to_owned(), vec![&second, &first]),
        ("status=trialing".to_owned(), vec![&third]),
        ("status=canceled".to_owned(), vec![&fourth]),
        (
            "status=all".to_owned(),
            vec![&fourth, &third, &second, &first],
        ),
        (format!("customer={bob}&status=active"), vec![&second]),
        (
            format!("created[gte]={created}&status=all&limit=100"),
            vec![&fourth, &third, &second, &first],
        ),
        (format!("created[gt]={}", t + 10), vec![]),
        (format!("created[lt]={created}&status=all"), vec![]),
        (
            format!("current_period_end[gte]={}", t + 40 * DAY),
            vec![&second],
        ),
        (
            format!("current_period_end[lt]={}", t + 20 * DAY),
            vec![&third],
        ),
        (
            format!(
                "current_period_end[gte]={}&current_period_end[lte]={}",
                t + 20 * DAY,
                t + 40 * DAY
            ),
            vec![&first],
        ),
    ] {
        let listed = server.get(&format!("/v1/subscriptions?{query}")).await;
        assert_eq!(listed.status, StatusCode::OK, "{query}: {}", listed.body);
        let got = ids(&listed.body);
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        // Objects made in the same second may list in either order.
        let mut sorted_got = got.clone();
        let mut sorted_expected = expected.clone();
        sorted_got.sort();
        sorted_expected.sort();
        assert_eq!(sorted_got, sorted_expected, "{query}");
        assert_eq!(listed.body["url"], "/v1/subscriptions");
        assert_no_hidden(&listed.body);
    }
    let page = server.get("/v1/subscriptions?limit=2").await.ok();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], true);
    let last = page["data"][1]["id"].as_str().unwrap();
    let rest = server
        .get(&format!("/v1/subscriptions?limit=2&starting_after={last}"))
        .await
        .ok();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["has_more"], false);

    for (query, expected) in [
        ("status:'active'", vec![&second, &first]),
        ("status:'trialing'", vec![&third]),
        ("metadata['tier']:'gold'", vec![&fourth, &second]),
        ("metadata['tier']:'gold' AND status:'active'", vec![&second]),
        ("status:'canceled'", vec![&fourth]),
    ] {
        let found = server
            .get(&format!("/v1/subscriptions/search?query={}", enc(query)))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{query}: {}", found.body);
        assert_eq!(found.body["object"], "search_result");
        assert_eq!(found.body["url"], "/v1/subscriptions/search");
        let mut got = ids(&found.body);
        let mut expected: Vec<String> = expected.into_iter().cloned().collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{query}");
        assert_no_hidden(&found.body);
    }
    for (query, param) in [
        ("/v1/subscriptions?status=sleeping", "status"),
        ("/v1/subscriptions?surprise=1", "surprise"),
        (
            "/v1/subscriptions?current_period_end[around]=5",
            "current_period_end[around]",
        ),
        ("/v1/subscriptions/search", "query"),
        ("/v1/subscriptions/search?query=email%3A%27x%27", "query"),
    ] {
        let refused = server.get(query).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            refused.body
        );
        assert_eq!(refused.error_param(), param, "{query}: {}", refused.body);
    }
}

async fn bad_input_gets_stripe_errors(server: TestServer) {
    let plan = price(&server, 1000, "month").await;
    let product = product(&server, "Once").await;
    let one_time = id(&server
        .post(
            "/v1/prices",
            &format!("product={product}&unit_amount=500&currency=usd"),
        )
        .await
        .ok());
    let (customer, _) = customer_with(&server, "pm_card_visa").await;
    let loose = id(&server
        .post("/v1/payment_methods", "type=card&card[token]=tok_visa")
        .await
        .ok());
    let stranger = customer_with(&server, "pm_card_visa").await.1;
    let past = now() - 3600;
    let future = now() + 10 * DAY;
    let base = format!("customer={customer}&items[0][price]={plan}");
    let cases: Vec<(String, StatusCode, &str, &str)> = vec![
        (
            format!("items[0][price]={plan}"),
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "customer",
        ),
        (
            format!("customer={customer}"),
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "items",
        ),
        (
            format!("customer={customer}&items[0][price]=price_missing"),
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "items[0][price]",
        ),
        (
            format!("customer={customer}&items[0][price]={one_time}"),
            StatusCode::BAD_REQUEST,
            "",
            "items[0][price]",
        ),
        (
            format!("customer={customer}&items[0][quantity]=2"),
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "items[0][price]",
        ),
        (
            format!("customer=cus_missing&items[0][price]={plan}"),
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "customer",
        ),
        (
            format!("{base}&default_payment_method={loose}"),
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "default_payment_method",
        ),
        (
            format!("{base}&default_payment_method={stranger}"),
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "default_payment_method",
        ),
        (
            format!("{base}&default_payment_method=pm_missing"),
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "default_payment_method",
        ),
        (
            format!("{base}&trial_period_days=7&trial_end={future}"),
            StatusCode::BAD_REQUEST,
            "parameters_exclusive",
            "trial_end",
        ),
        (
            format!("{base}&trial_end={past}"),
            StatusCode::BAD_REQUEST,
            "",
            "trial_end",
        ),
        (
            format!("{base}&trial_end=soon"),
            StatusCode::BAD_REQUEST,
            "",
            "trial_end",
        ),
        (
            format!("{base}&trial_period_days=-1"),
            StatusCode::BAD_REQUEST,
            "",
            "trial_period_days",
        ),
        (
            format!("{base}&collection_method=send_invoice"),
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "days_until_due",
        ),
        (
            format!("{base}&days_until_due=30"),
            StatusCode::BAD_REQUEST,
            "",
            "days_until_due",
        ),
        (
            format!("{base}&payment_behavior=pending_if_incomplete"),
            StatusCode::BAD_REQUEST,
            "",
            "payment_behavior",
        ),
        (
            format!("{base}&payment_behavior=whenever"),
            StatusCode::BAD_REQUEST,
            "",
            "payment_behavior",
        ),
        (
            format!("{base}&surprise=1"),
            StatusCode::BAD_REQUEST,
            "parameter_unknown",
            "surprise",
        ),
        (
            format!("{base}&items[0][quantity]=-1"),
            StatusCode::BAD_REQUEST,
            "",
            "items[0][quantity]",
        ),
        (
            format!("{base}&items[1][price]={plan}"),
            StatusCode::BAD_REQUEST,
            "",
            "items",
        ),
        (
            format!("{base}&cancel_at_period_end=true&cancel_at={future}"),
            StatusCode::BAD_REQUEST,
            "parameters_exclusive",
            "cancel_at",
        ),
        (
            format!("{base}&currency=eur"),
            StatusCode::BAD_REQUEST,
            "",
            "currency",
        ),
    ];
    for (body, status, code, param) in &cases {
        let reply = server.post("/v1/subscriptions", body).await;
        assert_eq!(reply.status, *status, "{body}: {}", reply.body);
        assert_eq!(
            reply.error_type(),
            "invalid_request_error",
            "{body}: {}",
            reply.body
        );
        assert_eq!(reply.error_param(), *param, "{body}: {}", reply.body);
        if !code.is_empty() {
            assert_eq!(reply.error_code(), *code, "{body}: {}", reply.body);
        }
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}: {}",
            reply.body
        );
    }
    assert_eq!(
        server.get("/v1/subscriptions?status=all").await.ok()["data"],
        json!([]),
        "no bad request left a subscription behind"
    );
    assert_eq!(server.get("/v1/invoices").await.ok()["data"], json!([]));
    // An unknown expansion is refused before anything is created.
    let bad_expand = server
        .post(
            "/v1/subscriptions",
            &format!("{base}&expand[]=nothing_here"),
        )
        .await;
    assert_eq!(
        bad_expand.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_expand.body
    );
    assert_eq!(bad_expand.error_param(), "expand");
    assert_eq!(
        server.get("/v1/subscriptions?status=all").await.ok()["data"],
        json!([]),
        "a refused expand[] left a subscription (and a charge) behind"
    );
    let missing = server.get("/v1/subscriptions/sub_missing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "resource_missing");
    let missing = server
        .post("/v1/subscriptions/sub_missing", "metadata[a]=b")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing_pay = server.post("/v1/invoices/in_missing/pay", "").await;
    assert_eq!(missing_pay.status, StatusCode::NOT_FOUND);
}

/// A card that needs 3-D Secure, charged with the customer present: the
/// first invoice waits for the customer on the authorization page.
async fn three_d_secure_first_payment(server: TestServer) {
    let plan = price(&server, 1600, "month").await;
    let (customer, pm) = customer_with(&server, "pm_card_authenticationRequired").await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={plan}&expand[]=latest_invoice"),
        )
        .await
        .ok();
    assert_eq!(sub["status"], "incomplete");
    let invoice_id = id(&sub["latest_invoice"]);
    assert_eq!(sub["latest_invoice"]["status"], "open");
    let intent = invoice_intent(&server, &invoice_id).await;
    assert_eq!(intent["status"], "requires_action");
    assert_eq!(intent["payment_method"], pm.as_str());
    let url = redirect_url(&intent);
    let (status, _, _) = submit(&url, "authorize").await;
    assert!(status.is_success() || status.is_redirection(), "{status}");
    let active = server
        .get(&format!(
            "/v1/subscriptions/{}?expand[]=latest_invoice",
            id(&sub)
        ))
        .await
        .ok();
    assert_eq!(active["status"], "active");
    assert_eq!(active["latest_invoice"]["status"], "paid");
    assert_eq!(
        invoice_intent(&server, &invoice_id).await["status"],
        "succeeded"
    );

    // error_if_incomplete: a 402 saying the payment needs the customer.
    let refused = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={plan}&payment_behavior=error_if_incomplete"
            ),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.error_code(),
        "subscription_payment_intent_requires_action"
    );
    // off_session=true: nobody can authenticate, so the charge fails.
    let off = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={plan}&off_session=true"),
        )
        .await
        .ok();
    assert_eq!(off["status"], "incomplete");
    let intent = invoice_intent(&server, off["latest_invoice"].as_str().unwrap()).await;
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(
        intent["last_payment_error"]["code"],
        "authentication_required"
    );
    let all = server
        .get(&format!("/v1/subscriptions?customer={customer}&status=all"))
        .await
        .ok();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
}

async fn intervals_and_billing_cycle_anchor(server: TestServer) {
    let product = product(&server, "Cadence").await;
    let customer = customer_with(&server, "pm_card_visa").await.0;
    for (recurring, months, days) in [
        ("recurring[interval]=week", 0, 7),
        (
            "recurring[interval]=day&recurring[interval_count]=10",
            0,
            10,
        ),
        (
            "recurring[interval]=month&recurring[interval_count]=3",
            3,
            0,
        ),
        ("recurring[interval]=year", 12, 0),
    ] {
        let price = id(&server
            .post(
                "/v1/prices",
                &format!("product={product}&unit_amount=1000&currency=usd&{recurring}"),
            )
            .await
            .ok());
        let sub = server
            .post(
                "/v1/subscriptions",
                &format!("customer={customer}&items[0][price]={price}"),
            )
            .await
            .ok();
        let start = sub["start_date"].as_i64().unwrap();
        assert_eq!(
            item(&sub)["current_period_end"],
            add_months(start, months) + days * DAY,
            "{recurring}"
        );
        assert_eq!(sub["status"], "active");
    }

    // A later billing_cycle_anchor: the first invoice covers the time up to
    // it, prorated.
    let monthly = price_of(&server, &product, 3000, "month", "usd").await;
    let anchor = now() + 10 * DAY;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={monthly}&billing_cycle_anchor={anchor}&expand[]=latest_invoice"
            ),
        )
        .await
        .ok();
    let start = sub["start_date"].as_i64().unwrap();
    assert_eq!(sub["billing_cycle_anchor"], anchor);
    assert_eq!(item(&sub)["current_period_end"], anchor);
    let full = (add_months(start, 1) - start) as f64;
    let expected = (3000.0 * (anchor - start) as f64 / full).round() as i64;
    let invoice = &sub["latest_invoice"];
    assert_eq!(invoice["amount_due"], expected);
    assert_eq!(invoice["status"], "paid");
    assert_eq!(
        invoice["lines"]["data"][0]["parent"]["subscription_item_details"]["proration"],
        true
    );
    let too_late = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={monthly}&billing_cycle_anchor={}",
                now() + 40 * DAY
            ),
        )
        .await;
    assert_eq!(too_late.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_late.error_param(), "billing_cycle_anchor");
}

async fn concurrent_creations_and_idempotency(server: TestServer) {
    let plan = price(&server, 1000, "month").await;
    let (customer, _) = customer_with(&server, "pm_card_visa").await;
    let body = format!("customer={customer}&items[0][price]={plan}&expand[]=latest_invoice");
    let replies: Vec<Reply> =
        futures_util::future::join_all((0..4).map(|_| server.post("/v1/subscriptions", &body)))
            .await;
    let mut numbers = Vec::new();
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["status"], "active");
        numbers.push(
            reply.body["latest_invoice"]["number"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 4, "invoice numbers repeat: {numbers:?}");
    let customer_doc = server.get(&format!("/v1/customers/{customer}")).await.ok();
    assert_eq!(customer_doc["next_invoice_sequence"], 5);
    assert_eq!(customer_doc["currency"], "usd");

    // The customer pays in dollars now: euros are refused.
    let product = product(&server, "Euro").await;
    let euro = price_of(&server, &product, 900, "month", "eur").await;
    let mixed = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={euro}"),
        )
        .await;
    assert_eq!(mixed.status, StatusCode::BAD_REQUEST, "{}", mixed.body);
    assert_eq!(mixed.error_param(), "currency");

    // A retried request with its idempotency key makes one subscription.
    let key = format!("sub-create-{}", common::random_suffix());
    let first = server
        .call(
            Method::POST,
            "/v1/subscriptions",
            Some(KEY),
            &body,
            &[("idempotency-key", &key)],
        )
        .await
        .ok();
    let second = server
        .call(
            Method::POST,
            "/v1/subscriptions",
            Some(KEY),
            &body,
            &[("idempotency-key", &key)],
        )
        .await
        .ok();
    assert_eq!(first["id"], second["id"]);
    let listed = server
        .get(&format!("/v1/subscriptions?customer={customer}&limit=100"))
        .await
        .ok();
    assert_eq!(listed["data"].as_array().unwrap().len(), 5);
    let types = events_in_order(&server).await;
    assert_eq!(count(&types, "customer.subscription.created"), 5);
    assert_eq!(count(&types, "invoice.paid"), 5);
}

async fn cancel_with_prorated_credit(server: TestServer) {
    let plan = price(&server, 3000, "month").await;
    let (customer, _) = customer_with(&server, "pm_card_visa").await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={plan}"),
        )
        .await
        .ok();
    let first_invoice = sub["latest_invoice"].as_str().unwrap().to_owned();
    let canceled = server
        .call(
            Method::DELETE,
            &format!(
                "/v1/subscriptions/{}?invoice_now=true&prorate=true&expand[]=latest_invoice",
                id(&sub)
            ),
            Some(KEY),
            "",
            &[],
        )
        .await
        .ok();
    assert_eq!(canceled["status"], "canceled");
    let invoice = &canceled["latest_invoice"];
    assert_ne!(id(invoice), first_invoice);
    // The unused month comes back as credit on the customer's balance.
    assert_eq!(invoice["total"], -3000, "{invoice}");
    assert_eq!(invoice["amount_due"], 0);
    assert_eq!(invoice["status"], "paid");
    let customer_doc = server.get(&format!("/v1/customers/{customer}")).await.ok();
    assert_eq!(customer_doc["balance"], -3000);
    // No money moved for the credit.
    let intents = server
        .get(&format!("/v1/payment_intents?customer={customer}"))
        .await
        .ok();
    assert_eq!(intents["data"].as_array().unwrap().len(), 1);
}

async fn default_incomplete_retries(server: TestServer) {
    let plan = price(&server, 2200, "month").await;
    // With a default payment method the intent waits for confirmation.
    let (customer, pm) = customer_with(&server, "pm_card_visa").await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={plan}&payment_behavior=default_incomplete&expand[]=latest_invoice.payments"),
        )
        .await
        .ok();
    assert_eq!(sub["status"], "incomplete");
    let pi = sub["latest_invoice"]["payments"]["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiting = server.get(&format!("/v1/payment_intents/{pi}")).await.ok();
    assert_eq!(waiting["status"], "requires_confirmation");
    assert_eq!(waiting["payment_method"], pm.as_str());
    let confirmed = server
        .post(&format!("/v1/payment_intents/{pi}/confirm"), "")
        .await
        .ok();
    assert_eq!(confirmed["status"], "succeeded");
    assert_eq!(
        server
            .get(&format!("/v1/subscriptions/{}", id(&sub)))
            .await
            .ok()["status"],
        "active"
    );

    // A declined confirmation leaves the invoice open, then a good card pays it.
    let other = self::customer(&server).await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={other}&items[0][price]={plan}&payment_behavior=default_incomplete&expand[]=latest_invoice.payments"),
        )
        .await
        .ok();
    let invoice_id = id(&sub["latest_invoice"]);
    let pi = sub["latest_invoice"]["payments"]["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    let declined = server
        .post(
            &format!("/v1/payment_intents/{pi}/confirm"),
            "payment_method=pm_card_chargeDeclined",
        )
        .await;
    assert_eq!(
        declined.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        declined.body
    );
    let invoice = server.get(&format!("/v1/invoices/{invoice_id}")).await.ok();
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["attempt_count"], 1);
    assert_eq!(
        server
            .get(&format!("/v1/subscriptions/{}", id(&sub)))
            .await
            .ok()["status"],
        "incomplete"
    );
    assert_eq!(
        count(&events_in_order(&server).await, "invoice.payment_failed"),
        1
    );
    let good = server
        .post(
            &format!("/v1/payment_intents/{pi}/confirm"),
            "payment_method=pm_card_visa",
        )
        .await
        .ok();
    assert_eq!(good["status"], "succeeded");
    let invoice = server.get(&format!("/v1/invoices/{invoice_id}")).await.ok();
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["attempt_count"], 2);
    assert_eq!(
        server
            .get(&format!("/v1/subscriptions/{}", id(&sub)))
            .await
            .ok()["status"],
        "active"
    );

    // A trial without a payment method: a pending SetupIntent collects one.
    let trial_customer = self::customer(&server).await;
    let trial = server
        .post(
            "/v1/subscriptions",
            &format!("customer={trial_customer}&items[0][price]={plan}&trial_period_days=7&payment_behavior=default_incomplete&expand[]=pending_setup_intent"),
        )
        .await
        .ok();
    assert_eq!(trial["status"], "trialing");
    let seti = &trial["pending_setup_intent"];
    assert_eq!(seti["object"], "setup_intent");
    assert_eq!(seti["customer"], trial_customer.as_str());
    assert_eq!(seti["usage"], "off_session");
    assert_eq!(seti["status"], "requires_payment_method");
    assert_no_hidden(&trial);
}

async fn ending_and_extending_trials(server: TestServer) {
    let plan = price(&server, 2000, "month").await;
    let (customer, pm) = customer_with(&server, "pm_card_visa").await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={plan}&trial_period_days=14"),
        )
        .await
        .ok();
    assert_eq!(sub["status"], "trialing");
    let trial_invoice = sub["latest_invoice"].as_str().unwrap().to_owned();
    let path = format!("/v1/subscriptions/{}", id(&sub));

    // Ending the trial now bills the first paid period at once.
    let before = now();
    let ended = server
        .post(&format!("{path}?expand[]=latest_invoice"), "trial_end=now")
        .await
        .ok();
    assert_eq!(ended["status"], "active");
    let end = ended["trial_end"].as_i64().unwrap();
    assert!(end >= before && end <= now(), "{end}");
    assert_eq!(ended["trial_start"], sub["trial_start"]);
    assert_eq!(ended["billing_cycle_anchor"], end);
    assert_eq!(item(&ended)["current_period_start"], end);
    assert_eq!(item(&ended)["current_period_end"], add_months(end, 1));
    let invoice = &ended["latest_invoice"];
    assert_ne!(id(invoice), trial_invoice);
    assert_eq!(invoice["billing_reason"], "subscription_update");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_paid"], 2000);
    assert_eq!(
        invoice_intent(&server, &id(invoice)).await["payment_method"],
        pm.as_str()
    );
    assert_eq!(count(&events_in_order(&server).await, "invoice.paid"), 2);

    // A trial can start again on an active subscription.
    let until = now() + 5 * DAY;
    let extended = server.post(&path, &format!("trial_end={until}")).await.ok();
    assert_eq!(extended["status"], "trialing");
    assert_eq!(extended["trial_end"], until);
    assert_eq!(item(&extended)["current_period_end"], until);

    // A card that fails: error_if_incomplete changes nothing…
    let (failing_customer, _) = customer_with(&server, "pm_card_chargeCustomerFail").await;
    let trial = server
        .post(
            "/v1/subscriptions",
            &format!("customer={failing_customer}&items[0][price]={plan}&trial_period_days=3"),
        )
        .await
        .ok();
    let trial_path = format!("/v1/subscriptions/{}", id(&trial));
    let snapshot = server.get(&trial_path).await.ok();
    let refused = server
        .post(
            &trial_path,
            "trial_end=now&payment_behavior=error_if_incomplete",
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    assert_eq!(server.get(&trial_path).await.ok(), snapshot);
    // …allow_incomplete leaves it past_due with the invoice open.
    let past_due = server
        .post(
            &format!("{trial_path}?expand[]=latest_invoice"),
            "trial_end=now",
        )
        .await
        .ok();
    assert_eq!(past_due["status"], "past_due");
    assert_eq!(past_due["latest_invoice"]["status"], "open");
    assert_eq!(past_due["latest_invoice"]["amount_remaining"], 2000);

    // trial_from_plan takes the price's own trial.
    let product = product(&server, "Trial plan").await;
    let with_trial = id(&server
        .post(
            "/v1/prices",
            &format!(
                "product={product}&unit_amount=1000&currency=usd&recurring[interval]=month&recurring[trial_period_days]=9"
            ),
        )
        .await
        .ok());
    let from_plan = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={with_trial}&trial_from_plan=true"),
        )
        .await
        .ok();
    assert_eq!(from_plan["status"], "trialing");
    let start = from_plan["start_date"].as_i64().unwrap();
    assert_eq!(from_plan["trial_end"], start + 9 * DAY);
    let plain = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={with_trial}"),
        )
        .await
        .ok();
    assert_eq!(
        plain["status"], "active",
        "without trial_from_plan, no trial"
    );
    let both = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={with_trial}&trial_from_plan=true&trial_period_days=3"
            ),
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(both.error_code(), "parameters_exclusive");
}

async fn collection_method_and_metered_prices(server: TestServer) {
    let plan = price(&server, 1000, "month").await;
    let (customer, _) = customer_with(&server, "pm_card_visa").await;
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={plan}"),
        )
        .await
        .ok();
    let path = format!("/v1/subscriptions/{}", id(&sub));
    let days_only = server.post(&path, "days_until_due=10").await;
    assert_eq!(
        days_only.status,
        StatusCode::BAD_REQUEST,
        "{}",
        days_only.body
    );
    assert_eq!(days_only.error_param(), "days_until_due");
    let no_days = server.post(&path, "collection_method=send_invoice").await;
    assert_eq!(no_days.status, StatusCode::BAD_REQUEST, "{}", no_days.body);
    assert_eq!(no_days.error_code(), "parameter_missing");
    assert_eq!(no_days.error_param(), "days_until_due");
    let invoiced = server
        .post(&path, "collection_method=send_invoice&days_until_due=14")
        .await
        .ok();
    assert_eq!(invoiced["collection_method"], "send_invoice");
    assert_eq!(invoiced["days_until_due"], 14);
    let later = server.post(&path, "days_until_due=21").await.ok();
    assert_eq!(later["days_until_due"], 21);
    let back = server
        .post(&path, "collection_method=charge_automatically")
        .await
        .ok();
    assert_eq!(back["collection_method"], "charge_automatically");
    assert!(back["days_until_due"].is_null());

    // Resetting the cycle is not emulated: refused, not ignored.
    let anchor = server.post(&path, "billing_cycle_anchor=now").await;
    assert_eq!(anchor.status, StatusCode::BAD_REQUEST, "{}", anchor.body);
    assert_eq!(anchor.error_param(), "billing_cycle_anchor");
    server
        .post(&path, "billing_cycle_anchor=unchanged")
        .await
        .ok();

    // Metered usage is billed in arrears: nothing is charged up front.
    let product = product(&server, "API calls").await;
    let metered = id(&server
        .post(
            "/v1/prices",
            &format!(
                "product={product}&unit_amount=5&currency=usd&recurring[interval]=month&recurring[usage_type]=metered&recurring[meter]=mtr_calls"
            ),
        )
        .await
        .ok());
    let usage = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={metered}&expand[]=latest_invoice"),
        )
        .await
        .ok();
    assert_eq!(usage["status"], "active");
    assert_eq!(usage["latest_invoice"]["amount_due"], 0);
    assert_eq!(usage["latest_invoice"]["status"], "paid");
    assert_eq!(
        server
            .get(&format!("/v1/payment_intents?customer={customer}"))
            .await
            .ok()["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the licensed subscription was charged"
    );
}

backend_tests!(
    card_subscription_is_paid_at_once,
    amazon_pay_subscription_through_mandate,
    trials,
    trial_will_end_for_short_trials,
    payment_fails_allow_incomplete,
    payment_fails_error_if_incomplete,
    amazon_pay_without_mandate_is_incomplete,
    default_incomplete_then_client_confirms,
    default_incomplete_paid_with_amazon_pay_in_the_browser,
    concurrent_confirms_pay_the_invoice_once,
    updates,
    failed_update_payments,
    send_invoice_subscriptions,
    cancel_and_resume,
    lists_and_search,
    bad_input_gets_stripe_errors,
    three_d_secure_first_payment,
    intervals_and_billing_cycle_anchor,
    concurrent_creations_and_idempotency,
    cancel_with_prorated_credit,
    default_incomplete_retries,
    ending_and_extending_trials,
    collection_method_and_metered_prices,
);
