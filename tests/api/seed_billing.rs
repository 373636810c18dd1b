//! The whole of shared/seeds/000 against stripe-twin with its shipped
//! fixtures: the document's customer and price exist in every account, the
//! Amazon Pay SetupIntent is authorized on the page, and the subscription
//! for the 15 USD monthly price is charged off-session: active, with a paid
//! first invoice. Once as raw HTTP with the document's exact form bodies,
//! once through async-stripe.
use crate::common;

use common::{TestServer, browser};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stripe::ClientBuilder;

const DOC_KEY: &str = "sk_test_Gx4mWEgHtCMr4DYMUIqfIrsz";
const DOC_CUSTOMER: &str = "cus_ODQluYFNl44ODI";
const DOC_PRICE: &str = "price_G0FvDp6vZvdwRZ";

/// POSTs a form body exactly as curl sends it, with `-u key:`.
async fn curl_post(server: &TestServer, path: &str, body: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .basic_auth(DOC_KEY, Some(""))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.text().await.unwrap()).unwrap(),
    )
}

async fn curl_get(server: &TestServer, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(server.url(path))
        .basic_auth(DOC_KEY, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

async fn authorize(url: &str) {
    let response = browser()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("outcome=authorize")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn seed_000_raw_http(server: TestServer) {
    // "Create or retrieve a Customer": the document's first command.
    let (status, created) = curl_post(
        &server,
        "/v1/customers",
        "description=My%20First%20Test%20Customer%20%28created%20for%20API%20docs%29",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        created["description"],
        "My First Test Customer (created for API docs)"
    );

    // The product and price the document creates in the Dashboard ship as fixtures.
    let price = curl_get(&server, &format!("/v1/prices/{DOC_PRICE}?expand[]=product")).await;
    assert_eq!(price["unit_amount"], 1500);
    assert_eq!(price["currency"], "usd");
    assert_eq!(price["recurring"]["interval"], "month");
    assert_eq!(price["product"]["name"], "Stock photo subscription");

    // "Create a SetupIntent", verbatim (the customer is the document's).
    let (status, intent) = curl_post(
        &server,
        "/v1/setup_intents",
        "confirm=true&return_url=https%3A%2F%2Fwww.stripe.com&usage=off_session&customer=cus_ODQluYFNl44ODI&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][ip_address]=127.0.0.0&mandate_data[customer_acceptance][online][user_agent]=device",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{intent}");
    assert_eq!(intent["status"], "requires_action");
    authorize(
        intent["next_action"]["redirect_to_url"]["url"]
            .as_str()
            .unwrap(),
    )
    .await;
    let intent = curl_get(
        &server,
        &format!("/v1/setup_intents/{}", intent["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(intent["status"], "succeeded");
    let payment_method = intent["payment_method"].as_str().unwrap().to_owned();

    // "Create a subscription", verbatim with the placeholders filled in.
    let (status, subscription) = curl_post(
        &server,
        "/v1/subscriptions",
        &format!(
            "customer={DOC_CUSTOMER}&items[0][price]={DOC_PRICE}&default_payment_method={payment_method}&off_session=true"
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{subscription}");
    assert!(subscription["id"].as_str().unwrap().starts_with("sub_"));
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["customer"], DOC_CUSTOMER);
    assert_eq!(
        subscription["default_payment_method"],
        json!(payment_method)
    );
    assert_eq!(subscription["currency"], "usd");
    assert!(
        subscription.get("current_period_end").is_none(),
        "periods live on items now"
    );
    let item = &subscription["items"]["data"][0];
    assert_eq!(item["price"]["id"], DOC_PRICE);
    assert_eq!(item["quantity"], 1);
    let (start, end) = (
        item["current_period_start"].as_i64().unwrap(),
        item["current_period_end"].as_i64().unwrap(),
    );
    assert!(
        (28 * 86_400..=31 * 86_400).contains(&(end - start)),
        "one month: {start}..{end}"
    );

    // The first invoice: finalized and paid through an invoice payment whose
    // PaymentIntent charged the Amazon Pay method off-session.
    let invoice = curl_get(
        &server,
        &format!(
            "/v1/invoices/{}?expand[]=payments.data.payment.payment_intent",
            subscription["latest_invoice"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["billing_reason"], "subscription_create");
    assert_eq!(invoice["amount_due"], 1500);
    assert_eq!(invoice["amount_paid"], 1500);
    assert_eq!(invoice["amount_remaining"], 0);
    assert_eq!(
        invoice["parent"]["subscription_details"]["subscription"],
        subscription["id"]
    );
    assert_eq!(invoice["lines"]["data"][0]["amount"], 1500);
    assert_eq!(
        invoice["lines"]["data"][0]["description"],
        "1 × Stock photo subscription (at $15.00 / month)"
    );
    assert!(
        invoice["number"]
            .as_str()
            .is_some_and(|n| n.ends_with("-0001"))
    );
    let payment = &invoice["payments"]["data"][0];
    assert_eq!(payment["status"], "paid");
    assert_eq!(payment["amount_paid"], 1500);
    let payment_intent = &payment["payment"]["payment_intent"];
    assert_eq!(payment_intent["status"], "succeeded");
    assert_eq!(payment_intent["amount_received"], 1500);
    assert_eq!(payment_intent["payment_method"], json!(payment_method));
    let charge = curl_get(
        &server,
        &format!(
            "/v1/charges/{}",
            payment_intent["latest_charge"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(charge["status"], "succeeded");
    assert_eq!(charge["payment_method_details"]["type"], "amazon_pay");

    // The customer now bills in usd and numbers its next invoice 2.
    let customer = curl_get(&server, &format!("/v1/customers/{DOC_CUSTOMER}")).await;
    assert_eq!(customer["currency"], "usd");
    assert_eq!(customer["next_invoice_sequence"], 2);

    // Events, oldest first, from the subscription on.
    let mut types: Vec<String> = curl_get(&server, "/v1/events?limit=100").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    types.reverse();
    let from = types
        .iter()
        .position(|t| t == "customer.subscription.created")
        .unwrap();
    assert_eq!(
        types[from..],
        [
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
    );
    // The subscription lists under the customer and the price.
    let listed = curl_get(&server, &format!("/v1/subscriptions?price={DOC_PRICE}")).await;
    assert_eq!(listed["data"][0]["id"], subscription["id"]);
}

/// The same flow through Rust's official-style SDK: its types must accept
/// every object stripe-twin returns.
async fn seed_000_async_stripe(server: TestServer) {
    use stripe_billing::subscription::{CreateSubscription, CreateSubscriptionItems};
    use stripe_core::setup_intent::{
        CreateSetupIntent, CreateSetupIntentMandateData,
        CreateSetupIntentMandateDataCustomerAcceptance,
        CreateSetupIntentMandateDataCustomerAcceptanceType, CreateSetupIntentPaymentMethodData,
        CreateSetupIntentPaymentMethodDataType, CreateSetupIntentUsage, OnlineParam,
    };
    let client = ClientBuilder::new(DOC_KEY)
        .url(server.base.clone())
        .build()
        .unwrap();
    let mut acceptance = CreateSetupIntentMandateDataCustomerAcceptance::new(
        CreateSetupIntentMandateDataCustomerAcceptanceType::Online,
    );
    acceptance.online = Some(OnlineParam::new("127.0.0.0", "device"));
    let intent = CreateSetupIntent::new()
        .confirm(true)
        .return_url("https://www.stripe.com")
        .usage(CreateSetupIntentUsage::OffSession)
        .customer(DOC_CUSTOMER)
        .payment_method_data(CreateSetupIntentPaymentMethodData::new(
            CreateSetupIntentPaymentMethodDataType::AmazonPay,
        ))
        .mandate_data(CreateSetupIntentMandateData::new(acceptance))
        .send(&client)
        .await
        .expect("setup intent");
    let url = intent
        .next_action
        .as_ref()
        .and_then(|a| a.redirect_to_url.as_ref())
        .and_then(|r| r.url.clone())
        .expect("redirect url");
    authorize(&url).await;
    let payment_method =
        curl_get(&server, &format!("/v1/setup_intents/{}", intent.id)).await["payment_method"]
            .as_str()
            .unwrap()
            .to_owned();

    let mut item = CreateSubscriptionItems::new();
    item.price = Some(DOC_PRICE.to_owned());
    let subscription = CreateSubscription::new()
        .customer(DOC_CUSTOMER)
        .items(vec![item])
        .default_payment_method(payment_method.as_str())
        .off_session(true)
        .expand(vec!["latest_invoice.payments".to_owned()])
        .send(&client)
        .await
        .expect("subscription");
    assert_eq!(subscription.status.as_str(), "active");
    assert_eq!(subscription.items.data.len(), 1);
    assert_eq!(subscription.items.data[0].price.id.as_str(), DOC_PRICE);
    let invoice = subscription
        .latest_invoice
        .as_ref()
        .and_then(|i| i.as_object())
        .expect("expanded invoice");
    assert_eq!(invoice.status.as_ref().map(|s| s.as_str()), Some("paid"));
    assert_eq!(invoice.amount_paid, 1500);
    let payments = invoice.payments.as_ref().expect("payments expanded");
    assert_eq!(payments.data.len(), 1);
    assert_eq!(payments.data[0].status.as_str(), "paid");
}

backend_tests!(
    fixtures = stripe_twin::fixtures::Fixtures::embedded(&stripe_twin::REGISTRY).expect("the shipped fixtures parse");
    seed_000_raw_http,
    seed_000_async_stripe
);
