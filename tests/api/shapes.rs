//! Object shapes over HTTP, one behaviour at a time: subscriptions'
//! `billing_mode` (flexible by default, `billing_mode` on create and
//! Checkout's `subscription_data[billing_mode]`), `expand[]` through lists
//! and parents, balance transactions, what charges say about the payment
//! method, and the keys Stripe sends as null or leaves out.
//! (tests/spec_shapes.rs checks every object against the spec as a whole.)
use crate::common;

use common::{TestServer, browser, enc, id, redirect_url, submit};
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_tests!(
    billing_mode_defaults_to_flexible,
    billing_mode_on_create,
    billing_mode_through_checkout,
    expand_through_lists_and_parents,
    balance_transactions_of_charges,
    card_charge_details,
    three_d_secure_charge_details,
    amazon_pay_charge_details,
    keys_sent_as_null_or_left_out,
);

const CANCEL_URL: &str = "https://example.com/cancel";
const SUCCESS_URL: &str = "https://example.com/success";

async fn monthly_price(server: &TestServer, amount: i64, interval: &str) -> String {
    let product = server.post("/v1/products", "name=Plan").await.ok();
    let price = server
        .post(
            "/v1/prices",
            &format!(
                "product={}&currency=usd&unit_amount={amount}&recurring[interval]={interval}",
                id(&product)
            ),
        )
        .await
        .ok();
    id(&price)
}

/// A customer whose invoice default is a fresh copy of `test_pm`.
async fn paying_customer(server: &TestServer, test_pm: &str) -> String {
    let customer = id(&server.post("/v1/customers", "").await.ok());
    let pm = server
        .post(
            &format!("/v1/payment_methods/{test_pm}/attach"),
            &format!("customer={customer}"),
        )
        .await
        .ok();
    server
        .post(
            &format!("/v1/customers/{customer}"),
            &format!("invoice_settings[default_payment_method]={}", id(&pm)),
        )
        .await
        .ok();
    customer
}

async fn subscribe(server: &TestServer, customer: &str, price: &str, extra: &str) -> Value {
    server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={price}{extra}"),
        )
        .await
        .ok()
}

/// The newest event's object.
async fn newest_event(server: &TestServer, kind: &str) -> Value {
    let events = server
        .get(&format!("/v1/events?type={kind}&limit=1"))
        .await
        .ok();
    events["data"][0]["data"]["object"].clone()
}

async fn billing_mode_defaults_to_flexible(server: TestServer) {
    let price = monthly_price(&server, 1000, "month").await;
    let customer = paying_customer(&server, "pm_card_visa").await;
    let sub = subscribe(&server, &customer, &price, "").await;
    let flexible = json!({"flexible": {"proration_discounts": "included"}, "type": "flexible"});
    // `updated_at` is an integer present only once set: never `null`.
    assert_eq!(sub["billing_mode"], flexible, "{sub}");
    let retrieved = server
        .get(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .ok();
    assert_eq!(retrieved["billing_mode"], flexible);
    let event = newest_event(&server, "customer.subscription.created").await;
    assert_eq!(event["billing_mode"], flexible);
    // Flexible billing allows mixed intervals, which stripe-twin refuses
    // saying so (classic gets Stripe's own refusal).
    let yearly = monthly_price(&server, 9000, "year").await;
    let mixed = format!("customer={customer}&items[0][price]={price}&items[1][price]={yearly}");
    let refused = server.post("/v1/subscriptions", &mixed).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.error_param(), "items");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("stripe-twin does not emulate"),
        "{message}"
    );
    let classic = server
        .post(
            "/v1/subscriptions",
            &format!("{mixed}&billing_mode[type]=classic"),
        )
        .await;
    let message = classic.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Found mismatch in interval field"),
        "{message}"
    );
}

async fn billing_mode_on_create(server: TestServer) {
    let price = monthly_price(&server, 1000, "month").await;
    let customer = paying_customer(&server, "pm_card_visa").await;
    let classic = subscribe(&server, &customer, &price, "&billing_mode[type]=classic").await;
    assert_eq!(
        classic["billing_mode"],
        json!({"flexible": null, "type": "classic"})
    );
    let other = monthly_price(&server, 1200, "month").await;
    let itemized = subscribe(
        &server,
        &customer,
        &other,
        "&billing_mode[type]=flexible&billing_mode[flexible][proration_discounts]=itemized",
    )
    .await;
    assert_eq!(
        itemized["billing_mode"],
        json!({"flexible": {"proration_discounts": "itemized"}, "type": "flexible"})
    );
    let base = format!("/v1/subscriptions?customer={customer}&items[0][price]={price}");
    let cases: &[(&str, &str)] = &[
        ("billing_mode[type]=monthly", "billing_mode[type]"),
        (
            "billing_mode[flexible][proration_discounts]=included",
            "billing_mode[type]",
        ),
        (
            "billing_mode[type]=flexible&billing_mode[flexible][proration_discounts]=all",
            "billing_mode[flexible][proration_discounts]",
        ),
        (
            "billing_mode[type]=classic&billing_mode[flexible][proration_discounts]=included",
            "billing_mode[flexible]",
        ),
        (
            "billing_mode[type]=flexible&billing_mode[x]=1",
            "billing_mode[x]",
        ),
    ];
    for (body, param) in cases {
        let reply = server
            .post(
                "/v1/subscriptions",
                &format!("customer={customer}&items[0][price]={price}&{body}"),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
        assert_eq!(reply.error_param(), *param, "{body}: {}", reply.body);
    }
    // Nothing was made by the refusals.
    let listed = server
        .get(&base.replace("&items[0][price]=", "&price="))
        .await
        .ok();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
}

/// Pays a subscription-mode session for `price` with a card on its page;
/// returns the subscription it made.
async fn checkout_subscription(server: &TestServer, price: &str, extra: &str) -> Value {
    let session = server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=subscription&line_items[0][price]={price}&line_items[0][quantity]=1\
                 &success_url={}&cancel_url={}{extra}",
                enc(SUCCESS_URL),
                enc(CANCEL_URL)
            ),
        )
        .await
        .ok();
    let form = format!(
        "payment_method_type=card&cardNumber=4242424242424242&cardExpiry={}&cardCvc=123\
         &email=buyer%40example.com",
        enc("12 / 34")
    );
    let response = browser()
        .post(session["url"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let done = server
        .get(&format!(
            "/v1/checkout/sessions/{}?expand[]=subscription",
            id(&session)
        ))
        .await
        .ok();
    assert_eq!(done["status"], "complete", "{done}");
    assert!(done["optional_items"].is_null() && done.get("optional_items").is_some());
    done["subscription"].clone()
}

async fn billing_mode_through_checkout(server: TestServer) {
    let price = monthly_price(&server, 1500, "month").await;
    let default = checkout_subscription(&server, &price, "").await;
    assert_eq!(default["billing_mode"]["type"], "flexible", "{default}");
    let classic = checkout_subscription(
        &server,
        &price,
        "&subscription_data[billing_mode][type]=classic",
    )
    .await;
    assert_eq!(
        classic["billing_mode"],
        json!({"flexible": null, "type": "classic"})
    );
    let itemized = checkout_subscription(
        &server,
        &price,
        "&subscription_data[billing_mode][type]=flexible\
         &subscription_data[billing_mode][flexible][proration_discounts]=itemized",
    )
    .await;
    assert_eq!(
        itemized["billing_mode"]["flexible"]["proration_discounts"],
        "itemized"
    );
    let bad = server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=subscription&line_items[0][price]={price}&line_items[0][quantity]=1\
                 &success_url={}&subscription_data[billing_mode][type]=sometimes",
                enc(SUCCESS_URL)
            ),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.error_param(), "subscription_data[billing_mode][type]");
}

async fn expand_through_lists_and_parents(server: TestServer) {
    let price = monthly_price(&server, 1000, "month").await;
    let customer = paying_customer(&server, "pm_card_visa").await;
    let sub = subscribe(
        &server,
        &customer,
        &price,
        "&expand[]=items.data.price.product",
    )
    .await;
    let product = &sub["items"]["data"][0]["price"]["product"];
    assert_eq!(product["object"], "product", "{sub}");
    assert_eq!(product["name"], "Plan");
    let path = format!("/v1/subscriptions/{}", id(&sub));
    let again = server
        .get(&format!("{path}?expand[]=items.data.price.product"))
        .await
        .ok();
    assert_eq!(again["items"]["data"][0]["price"]["product"], *product);
    let listed = server
        .get(&format!(
            "/v1/subscriptions?customer={customer}&expand[]=data.items.data.price.product"
        ))
        .await
        .ok();
    assert_eq!(
        listed["data"][0]["items"]["data"][0]["price"]["product"]["object"],
        "product"
    );
    let invoice_id = sub["latest_invoice"].as_str().unwrap();
    let invoice = server
        .get(&format!(
            "/v1/invoices/{invoice_id}?expand[]=parent.subscription_details.subscription"
        ))
        .await
        .ok();
    let parent_sub = &invoice["parent"]["subscription_details"]["subscription"];
    assert_eq!(parent_sub["object"], "subscription", "{invoice}");
    assert_eq!(parent_sub["id"], id(&sub).as_str());
    let lines = server
        .get(&format!(
            "/v1/invoices/{invoice_id}/lines?expand[]=data.subscription"
        ))
        .await
        .ok();
    assert_eq!(lines["data"][0]["subscription"]["id"], id(&sub).as_str());
    for bad in [
        "items.data.nope",
        "items.data.price.nope",
        "parent.nope",
        "items.nope",
    ] {
        let reply = server.get(&format!("{path}?expand[]={bad}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
        assert_eq!(reply.error_param(), "expand");
    }
}

/// A confirmed PaymentIntent of `amount` with `pm`; returns its charge.
async fn charge_of(server: &TestServer, amount: i64, pm: &str) -> Value {
    let intent = server
        .post(
            "/v1/payment_intents",
            &format!("amount={amount}&currency=usd&payment_method={pm}&confirm=true&expand[]=latest_charge"),
        )
        .await
        .ok();
    intent["latest_charge"].clone()
}

async fn balance_transactions_of_charges(server: TestServer) {
    let charge = charge_of(&server, 2000, "pm_card_visa").await;
    let txn_id = charge["balance_transaction"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert!(txn_id.starts_with("txn_"), "{txn_id}");
    let expanded = server
        .get(&format!(
            "/v1/charges/{}?expand[]=balance_transaction",
            id(&charge)
        ))
        .await
        .ok();
    let txn = &expanded["balance_transaction"];
    assert_eq!(txn["object"], "balance_transaction", "{expanded}");
    assert_eq!(txn["id"], txn_id.as_str());
    assert_eq!(txn["amount"], 2000);
    // Stripe's standard US pricing: 2.9% + 30¢.
    assert_eq!(txn["fee"], 88);
    assert_eq!(txn["net"], 1912);
    assert_eq!(
        txn["fee_details"],
        json!([{"amount": 88, "application": null, "currency": "usd", "description": "Stripe processing fees", "type": "stripe_fee"}])
    );
    assert_eq!(txn["source"], id(&charge).as_str());
    assert_eq!(txn["type"], "charge");
    assert_eq!(txn["reporting_category"], "charge");
    assert_eq!(txn["status"], "pending");
    assert_eq!(txn["currency"], "usd");
    let created = txn["created"].as_i64().unwrap();
    assert!(txn["available_on"].as_i64().unwrap() > created + 86_400);
    let retrieved = server
        .get(&format!("/v1/balance_transactions/{txn_id}"))
        .await
        .ok();
    assert_eq!(retrieved, *txn);
    let by_source = server
        .get(&format!(
            "/v1/balance_transactions?source={}&expand[]=data.source",
            id(&charge)
        ))
        .await
        .ok();
    assert_eq!(by_source["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_source["data"][0]["source"]["object"], "charge");
    assert_eq!(by_source["url"], "/v1/balance_transactions");
    // A declined charge moves no money.
    let declined = server
        .post(
            "/v1/payment_intents",
            "amount=500&currency=usd&payment_method=pm_card_chargeDeclined&confirm=true",
        )
        .await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    let failed = server
        .get(&format!(
            "/v1/charges/{}",
            declined.body["error"]["charge"].as_str().unwrap()
        ))
        .await
        .ok();
    assert!(failed["balance_transaction"].is_null());
    let all = server
        .get("/v1/balance_transactions?type=charge")
        .await
        .ok();
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    let missing = server.get("/v1/balance_transactions/txn_missing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "resource_missing");
    let payout = server.get("/v1/balance_transactions?payout=po_1").await;
    assert_eq!(payout.status, StatusCode::NOT_FOUND);
    assert_eq!(payout.error_param(), "payout");
}

async fn card_charge_details(server: TestServer) {
    let charge = charge_of(&server, 1500, "pm_card_visa").await;
    let card = &charge["payment_method_details"]["card"];
    let mut keys: Vec<&str> = card
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "amount_authorized",
            "authorization_code",
            "brand",
            "checks",
            "country",
            "exp_month",
            "exp_year",
            "extended_authorization",
            "fingerprint",
            "funding",
            "incremental_authorization",
            "installments",
            "last4",
            "mandate",
            "multicapture",
            "network",
            "network_token",
            "network_transaction_id",
            "overcapture",
            "regulated_status",
            "three_d_secure",
            "transaction_link_id",
            "wallet",
        ]
    );
    assert_eq!(card["amount_authorized"], 1500);
    assert_eq!(
        card["extended_authorization"],
        json!({"status": "disabled"})
    );
    assert_eq!(
        card["incremental_authorization"],
        json!({"status": "unavailable"})
    );
    assert_eq!(card["multicapture"], json!({"status": "unavailable"}));
    assert_eq!(card["network_token"], json!({"used": false}));
    assert_eq!(
        card["overcapture"],
        json!({"maximum_amount_capturable": 1500, "status": "unavailable"})
    );
    let network_id = card["network_transaction_id"].as_str().unwrap();
    assert!(network_id.len() == 15 && network_id.bytes().all(|b| b.is_ascii_digit()));
    assert!(card["three_d_secure"].is_null());
    // Refunds are includable (since 2022-11-15).
    assert!(charge.get("refunds").is_none(), "{charge}");
    let path = format!("/v1/charges/{}", id(&charge));
    assert!(server.get(&path).await.ok().get("refunds").is_none());
    let with_refunds = server.get(&format!("{path}?expand[]=refunds")).await.ok();
    assert_eq!(
        with_refunds["refunds"],
        json!({"object": "list", "data": [], "has_more": false, "url": format!("{path}/refunds")})
    );
    // A declined charge was never authorized.
    let declined = server
        .post(
            "/v1/payment_intents",
            "amount=500&currency=usd&payment_method=pm_card_chargeDeclined&confirm=true",
        )
        .await;
    let failed = server
        .get(&format!(
            "/v1/charges/{}",
            declined.body["error"]["charge"].as_str().unwrap()
        ))
        .await
        .ok();
    let card = &failed["payment_method_details"]["card"];
    assert!(card["amount_authorized"].is_null() && card["network_transaction_id"].is_null());
}

/// Authenticated on the 3-D Secure page: the charge says how.
async fn three_d_secure_charge_details(server: TestServer) {
    let intent = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=900&currency=usd&payment_method=pm_card_authenticationRequired&confirm=true&return_url={}",
                enc("https://shop.example/done")
            ),
        )
        .await
        .ok();
    let (status, _, _) = submit(&redirect_url(&intent), "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let paid = server
        .get(&format!(
            "/v1/payment_intents/{}?expand[]=latest_charge",
            id(&intent)
        ))
        .await
        .ok();
    let secure = &paid["latest_charge"]["payment_method_details"]["card"]["three_d_secure"];
    assert_eq!(secure["result"], "authenticated", "{paid}");
    assert_eq!(secure["authentication_flow"], "challenge");
    assert_eq!(secure["version"], "2.2.0");
}

async fn amazon_pay_charge_details(server: TestServer) {
    let intent = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1500&currency=usd&payment_method_types[]=amazon_pay&payment_method_data[type]=amazon_pay&confirm=true&return_url={}",
                enc("https://shop.example/pay")
            ),
        )
        .await
        .ok();
    // Only the options Stripe has (none set here).
    assert_eq!(intent["payment_method_options"]["amazon_pay"], json!({}));
    let (status, _, _) = submit(&redirect_url(&intent), "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let paid = server
        .get(&format!(
            "/v1/payment_intents/{}?expand[]=latest_charge.balance_transaction",
            id(&intent)
        ))
        .await
        .ok();
    let charge = &paid["latest_charge"];
    assert_eq!(
        charge["payment_method_details"],
        json!({"amazon_pay": {"funding": {"type": null}, "transaction_id": null}, "type": "amazon_pay"})
    );
    assert_eq!(charge["balance_transaction"]["fee"], 74);
}

async fn keys_sent_as_null_or_left_out(server: TestServer) {
    // Customers: business_name and individual_name only while set.
    let customer = server
        .post(
            "/v1/customers",
            "shipping[name]=Jo&shipping[address][line1]=1+Main&expand[]=cash_balance",
        )
        .await
        .ok();
    assert!(customer.get("business_name").is_none() && customer.get("individual_name").is_none());
    assert_eq!(
        customer["shipping"],
        json!({
            "address": {"city": null, "country": null, "line1": "1 Main", "line2": null, "postal_code": null, "state": null},
            "carrier": null, "name": "Jo", "phone": null, "tracking_number": null,
        })
    );
    assert!(customer["cash_balance"]["customer_account"].is_null());
    assert!(customer["cash_balance"].get("customer_account").is_some());
    let path = format!("/v1/customers/{}", id(&customer));
    let named = server
        .post(&path, "business_name=Acme&individual_name=Jo")
        .await
        .ok();
    assert_eq!(named["business_name"], "Acme");
    assert_eq!(named["individual_name"], "Jo");
    let unnamed = server.post(&path, "business_name=").await.ok();
    assert!(unnamed.get("business_name").is_none(), "{unnamed}");
    assert_eq!(unnamed["individual_name"], "Jo");
    let updated = server
        .get("/v1/events?type=customer.updated&limit=1")
        .await
        .ok();
    assert_eq!(
        updated["data"][0]["data"]["previous_attributes"],
        json!({"business_name": "Acme"})
    );
    // Subscriptions: no presentment_details; feedback_option null; lines
    // name their subscription.
    let price = monthly_price(&server, 700, "month").await;
    let payer = paying_customer(&server, "pm_card_visa").await;
    let sub = subscribe(&server, &payer, &price, "&expand[]=latest_invoice").await;
    assert!(sub.get("presentment_details").is_none(), "{sub}");
    assert_eq!(
        sub["cancellation_details"],
        json!({"comment": null, "feedback": null, "feedback_option": null, "reason": null})
    );
    let line = &sub["latest_invoice"]["lines"]["data"][0];
    assert_eq!(line["subscription"], id(&sub).as_str(), "{line}");
    assert_eq!(
        line["parent"]["subscription_item_details"]["subscription"],
        id(&sub).as_str()
    );
}
