//! The flows tests/spec_shapes.rs checks the answers of: every resource
//! over HTTP as a test suite drives it, each JSON answer recorded.

use std::sync::Mutex;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{self, Reply, TestServer, browser, enc, id, redirect_url, submit};

/// Every JSON answer of a test run, by request.
pub struct Recorder<'a> {
    server: &'a TestServer,
    pub answers: Mutex<Vec<(String, Value)>>,
}

impl<'a> Recorder<'a> {
    pub fn new(server: &'a TestServer) -> Self {
        Recorder {
            server,
            answers: Mutex::new(Vec::new()),
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: &str) -> Reply {
        let reply = self
            .server
            .call(method.clone(), path, Some(common::KEY), body, &[])
            .await;
        self.keep(&format!("{method} {path}"), &reply.body);
        reply
    }

    fn keep(&self, request: &str, body: &Value) {
        if body.is_object() {
            let mut answers = self.answers.lock().unwrap();
            answers.push((request.to_owned(), body.clone()));
        }
    }

    /// A POST that must succeed.
    pub async fn post(&self, path: &str, body: &str) -> Value {
        self.call(Method::POST, path, body).await.ok()
    }

    /// A GET that must succeed.
    pub async fn get(&self, path: &str) -> Value {
        self.call(Method::GET, path, "").await.ok()
    }

    pub async fn delete(&self, path: &str) -> Value {
        self.call(Method::DELETE, path, "").await.ok()
    }

    /// A request that must fail with this status (its error is checked too).
    pub async fn fail(&self, method: Method, path: &str, body: &str, status: StatusCode) {
        let reply = self.call(method, path, body).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
    }
}

// ---- the flows ---------------------------------------------------------------

const MONTHLY_PRICE: &str = "price_G0FvDp6vZvdwRZ";
const FIXTURE_CUSTOMER: &str = "cus_ODQluYFNl44ODI";
const SUCCESS_URL: &str = "https://example.com/success?session_id={CHECKOUT_SESSION_ID}";
const CANCEL_URL: &str = "https://example.com/cancel";

pub async fn customers(twin: &Recorder<'_>) -> String {
    twin.get(&format!("/v1/customers/{FIXTURE_CUSTOMER}")).await;
    let customer = twin
        .post(
            "/v1/customers",
            "email=shape%40example.com&name=Shape&phone=%2B15555550100&description=d&metadata[k]=v\
             &address[line1]=1+Main&address[city]=Town&address[country]=US&address[postal_code]=12345\
             &shipping[name]=Shape&shipping[address][line1]=1+Main&preferred_locales[]=en\
             &invoice_settings[footer]=f&invoice_settings[custom_fields][0][name]=n\
             &invoice_settings[custom_fields][0][value]=v&tax[ip_address]=127.0.0.1\
             &business_name=Shape+Inc&individual_name=Jo+Shape",
        )
        .await;
    let path = format!("/v1/customers/{}", id(&customer));
    twin.post(&path, "description=changed&balance=-100").await;
    twin.get(&format!(
        "{path}?expand[]=tax&expand[]=cash_balance&expand[]=invoice_credit_balance\
         &expand[]=subscriptions&expand[]=sources&expand[]=tax_ids&expand[]=test_clock"
    ))
    .await;
    twin.get("/v1/customers?limit=3&expand[]=data.subscriptions")
        .await;
    twin.get("/v1/customers/search?query=email%3A%22shape%40example.com%22")
        .await;
    let plain = twin.post("/v1/customers", "").await;
    let gone = format!("/v1/customers/{}", id(&plain));
    twin.delete(&gone).await;
    twin.get(&gone).await;
    id(&customer)
}

/// A product with a monthly and a one-time price; returns the prices.
pub async fn catalog(twin: &Recorder<'_>) -> (String, String) {
    let product = twin
        .post(
            "/v1/products",
            "name=Shapes&description=d&metadata[k]=v&marketing_features[0][name]=f\
             &default_price_data[currency]=usd&default_price_data[unit_amount]=900\
             &default_price_data[recurring][interval]=month&expand[]=default_price",
        )
        .await;
    let product_id = id(&product);
    let monthly = id(&product["default_price"]);
    let one_time = twin
        .post(
            "/v1/prices",
            &format!(
                "product={product_id}&currency=usd&unit_amount=2500&lookup_key=shape_once\
                 &nickname=once&expand[]=product"
            ),
        )
        .await;
    twin.post(&format!("/v1/prices/{}", id(&one_time)), "metadata[x]=y")
        .await;
    twin.post(
        &format!("/v1/products/{product_id}"),
        "url=https%3A%2F%2Fexample.com",
    )
    .await;
    twin.get("/v1/products?limit=5").await;
    twin.get("/v1/products/search?query=active%3A%22true%22")
        .await;
    twin.get("/v1/prices?limit=5&expand[]=data.product").await;
    twin.get("/v1/prices/search?query=currency%3A%22usd%22")
        .await;
    twin.post(
        "/v1/prices",
        "product_data[name]=Inline&currency=usd&unit_amount=100&recurring[interval]=year",
    )
    .await;
    let lonely = twin.post("/v1/products", "name=Lonely").await;
    twin.delete(&format!("/v1/products/{}", id(&lonely))).await;
    (monthly, id(&one_time))
}

/// Cards and Amazon Pay set up for `customer`; returns an Amazon Pay
/// method with an active mandate.
pub async fn setup_flows(twin: &Recorder<'_>, customer: &str) -> String {
    let card = twin
        .post(
            "/v1/payment_methods",
            "type=card&card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2034\
             &card[cvc]=123&billing_details[name]=Jo",
        )
        .await;
    let card_id = id(&card);
    twin.post(
        &format!("/v1/payment_methods/{card_id}/attach"),
        &format!("customer={customer}"),
    )
    .await;
    twin.post(&format!("/v1/payment_methods/{card_id}"), "metadata[k]=v")
        .await;
    twin.get(&format!("/v1/customers/{customer}/payment_methods"))
        .await;
    twin.get(&format!(
        "/v1/customers/{customer}/payment_methods/{card_id}"
    ))
    .await;
    twin.get(&format!(
        "/v1/payment_methods?customer={customer}&type=card"
    ))
    .await;
    twin.post(&format!("/v1/payment_methods/{card_id}/detach"), "")
        .await;
    twin.post(
        "/v1/setup_intents",
        &format!(
            "customer={customer}&payment_method=pm_card_visa&confirm=true&usage=off_session\
             &expand[]=payment_method"
        ),
    )
    .await;
    // Seed 000: Amazon Pay through the authorization page, with a mandate.
    let intent = twin
        .post(
            "/v1/setup_intents",
            &format!(
                "confirm=true&return_url={}&usage=off_session&customer={customer}\
                 &payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay\
                 &mandate_data[customer_acceptance][type]=online\
                 &mandate_data[customer_acceptance][online][ip_address]=127.0.0.1\
                 &mandate_data[customer_acceptance][online][user_agent]=device",
                enc("https://shop.example/setup")
            ),
        )
        .await;
    let (status, _, _) = submit(&redirect_url(&intent), "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let done = twin
        .get(&format!(
            "/v1/setup_intents/{}?expand[]=payment_method&expand[]=mandate",
            id(&intent)
        ))
        .await;
    twin.get(&format!("/v1/mandates/{}", id(&done["mandate"])))
        .await;
    // Declined, then canceled.
    let declined = twin
        .call(
            Method::POST,
            "/v1/setup_intents",
            &format!("customer={customer}&payment_method=pm_card_chargeDeclined&confirm=true"),
        )
        .await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    let open = twin
        .post("/v1/setup_intents", "payment_method_types[]=card")
        .await;
    twin.post(&format!("/v1/setup_intents/{}", id(&open)), "metadata[k]=v")
        .await;
    twin.post(
        &format!("/v1/setup_intents/{}/cancel", id(&open)),
        "cancellation_reason=abandoned",
    )
    .await;
    twin.get(&format!("/v1/setup_intents?customer={customer}"))
        .await;
    id(&done["payment_method"])
}

pub async fn payment_flows(twin: &Recorder<'_>, customer: &str) {
    let paid = twin
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=2000&currency=usd&customer={customer}&payment_method=pm_card_visa\
                 &confirm=true&expand[]=latest_charge&expand[]=payment_method"
            ),
        )
        .await;
    let charge = id(&paid["latest_charge"]);
    let expanded = twin
        .get(&format!(
            "/v1/charges/{charge}?expand[]=balance_transaction&expand[]=payment_intent&expand[]=customer"
        ))
        .await;
    twin.get(&format!(
        "/v1/balance_transactions/{}",
        id(&expanded["balance_transaction"])
    ))
    .await;
    twin.get(&format!(
        "/v1/balance_transactions?source={charge}&expand[]=data.source"
    ))
    .await;
    twin.call(
        Method::GET,
        &format!("/v1/charges/{charge}?expand[]=refunds"),
        "",
    )
    .await;
    twin.get(&format!("/v1/charges?customer={customer}")).await;
    twin.get("/v1/charges/search?query=status%3A%22succeeded%22")
        .await;
    twin.get("/v1/payment_intents/search?query=status%3A%22succeeded%22")
        .await;
    // Amazon Pay on-session through the page.
    let amazon = twin
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1500&currency=usd&customer={customer}&payment_method_types[]=amazon_pay\
                 &payment_method_data[type]=amazon_pay&confirm=true&return_url={}",
                enc("https://shop.example/pay")
            ),
        )
        .await;
    let (status, _, _) = submit(&redirect_url(&amazon), "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    twin.get(&format!(
        "/v1/payment_intents/{}?expand[]=latest_charge",
        id(&amazon)
    ))
    .await;
    // A decline, 3-D Secure waiting, an update and a cancel.
    let declined = twin
        .call(
            Method::POST,
            "/v1/payment_intents",
            "amount=700&currency=usd&payment_method=pm_card_chargeDeclined&confirm=true",
        )
        .await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    twin.post(
        "/v1/payment_intents",
        &format!(
            "amount=800&currency=usd&payment_method=pm_card_authenticationRequired&confirm=true\
             &return_url={}",
            enc("https://shop.example/3ds")
        ),
    )
    .await;
    let open = twin
        .post(
            "/v1/payment_intents",
            "amount=900&currency=usd&payment_method_types[]=card",
        )
        .await;
    let path = format!("/v1/payment_intents/{}", id(&open));
    twin.post(&path, "description=changed").await;
    twin.post(&format!("{path}/cancel"), "cancellation_reason=abandoned")
        .await;
    twin.get(&format!(
        "/v1/payment_intents?customer={customer}&expand[]=data.latest_charge"
    ))
    .await;
}

pub async fn billing_flows(twin: &Recorder<'_>, customer: &str, monthly: &str, amazon_pm: &str) {
    let card = twin
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
            &format!("customer={customer}"),
        )
        .await;
    twin.post(
        &format!("/v1/customers/{customer}"),
        &format!("invoice_settings[default_payment_method]={}", id(&card)),
    )
    .await;
    let sub = twin
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={monthly}&items[0][quantity]=2&metadata[k]=v\
                 &expand[]=latest_invoice.payments&expand[]=latest_invoice.confirmation_secret"
            ),
        )
        .await;
    let path = format!("/v1/subscriptions/{}", id(&sub));
    let item = id(&sub["items"]["data"][0]);
    twin.post(
        &path,
        &format!("items[0][id]={item}&items[0][quantity]=3&proration_behavior=always_invoice"),
    )
    .await;
    twin.get(&format!(
        "{path}?expand[]=items.data.price.product&expand[]=customer&expand[]=default_payment_method"
    ))
    .await;
    twin.get(&format!("/v1/subscription_items?subscription={}", id(&sub)))
        .await;
    twin.get(&format!("/v1/subscription_items/{item}")).await;
    let invoice = id(&sub["latest_invoice"]);
    twin.get(&format!(
        "/v1/invoices/{invoice}?expand[]=payments&expand[]=confirmation_secret\
         &expand[]=parent.subscription_details.subscription&expand[]=customer"
    ))
    .await;
    twin.get(&format!("/v1/invoices/{invoice}/lines")).await;
    twin.get(&format!("/v1/invoices?customer={customer}")).await;
    twin.get("/v1/invoices/search?query=status%3A%22paid%22")
        .await;
    let payments = twin
        .get(&format!("/v1/invoice_payments?invoice={invoice}"))
        .await;
    twin.get(&format!(
        "/v1/invoice_payments/{}?expand[]=payment.payment_intent",
        id(&payments["data"][0])
    ))
    .await;
    twin.get("/v1/subscriptions/search?query=status%3A%22active%22")
        .await;
    twin.get("/v1/subscriptions?status=all").await;
    twin.call(
        Method::DELETE,
        &format!("{path}?cancellation_details[comment]=bye&cancellation_details[feedback]=other"),
        "",
    )
    .await
    .ok();
    more_subscriptions(twin, customer, monthly, amazon_pm).await;
}

/// Amazon Pay through its mandate, a trial, send_invoice, an incomplete one.
async fn more_subscriptions(twin: &Recorder<'_>, customer: &str, monthly: &str, amazon_pm: &str) {
    twin.post(
        "/v1/subscriptions",
        &format!(
            "customer={customer}&items[0][price]={monthly}&default_payment_method={amazon_pm}"
        ),
    )
    .await;
    twin.post(
        "/v1/subscriptions",
        &format!(
            "customer={customer}&items[0][price]={monthly}&trial_period_days=7\
             &payment_behavior=default_incomplete&expand[]=pending_setup_intent"
        ),
    )
    .await;
    let send = twin
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={monthly}&collection_method=send_invoice\
                 &days_until_due=30"
            ),
        )
        .await;
    twin.post(
        &format!(
            "/v1/invoices/{}/pay",
            send["latest_invoice"].as_str().unwrap()
        ),
        "paid_out_of_band=true",
    )
    .await;
    let failing = id(&twin.post("/v1/customers", "").await);
    let fails = twin
        .post(
            "/v1/payment_methods/pm_card_chargeCustomerFail/attach",
            &format!("customer={failing}"),
        )
        .await;
    twin.post(
        "/v1/subscriptions",
        &format!(
            "customer={failing}&items[0][price]={monthly}&default_payment_method={}\
             &expand[]=latest_invoice",
            id(&fails)
        ),
    )
    .await;
}

async fn page_post(url: &str, form: &str) -> (StatusCode, String) {
    let response = browser()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status(), location)
}

pub async fn checkout_flows(twin: &Recorder<'_>, customer: &str, monthly: &str, one_time: &str) {
    let urls = format!(
        "success_url={}&cancel_url={}",
        enc(SUCCESS_URL),
        enc(CANCEL_URL)
    );
    // Setup mode with Amazon Pay through both pages (seed 001).
    let setup = twin
        .post(
            "/v1/checkout/sessions",
            &format!("mode=setup&payment_method_types[]=amazon_pay&customer={customer}&{urls}"),
        )
        .await;
    let (status, authorize) = page_post(
        setup["url"].as_str().unwrap(),
        "payment_method_type=amazon_pay",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, back, _) = submit(&authorize, "authorize").await;
    browser().get(&back).send().await.unwrap();
    twin.get(&format!(
        "/v1/checkout/sessions/{}?expand[]=setup_intent.payment_method",
        id(&setup)
    ))
    .await;
    // Payment mode with a card on the page's form.
    let card_form = format!(
        "payment_method_type=card&cardNumber=4242424242424242&cardExpiry={}&cardCvc=123\
         &billingName=Jo&email=buyer%40example.com",
        enc("12 / 34")
    );
    let payment = twin
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=payment&line_items[0][price]={one_time}&line_items[0][quantity]=2&{urls}"
            ),
        )
        .await;
    let (status, _) = page_post(payment["url"].as_str().unwrap(), &card_form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    twin.get(&format!(
        "/v1/checkout/sessions/{}?expand[]=line_items&expand[]=payment_intent.latest_charge",
        id(&payment)
    ))
    .await;
    twin.get(&format!(
        "/v1/checkout/sessions/{}/line_items?expand[]=data.price.product",
        id(&payment)
    ))
    .await;
    // Subscription mode with a card, and one expired.
    let subscription = twin
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=subscription&line_items[0][price]={monthly}&line_items[0][quantity]=1&{urls}"
            ),
        )
        .await;
    let (status, _) = page_post(subscription["url"].as_str().unwrap(), &card_form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    twin.get(&format!(
        "/v1/checkout/sessions/{}?expand[]=subscription&expand[]=invoice",
        id(&subscription)
    ))
    .await;
    let abandoned = twin
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=payment&ui_mode=embedded_page&return_url={}\
                 &line_items[0][price]={one_time}&line_items[0][quantity]=1",
                enc("https://example.com/return")
            ),
        )
        .await;
    twin.post(
        &format!("/v1/checkout/sessions/{}/expire", id(&abandoned)),
        "",
    )
    .await;
    twin.get("/v1/checkout/sessions?limit=10").await;
}

pub async fn webhook_endpoint_flows(twin: &Recorder<'_>) {
    let endpoint = twin
        .post(
            "/v1/webhook_endpoints",
            "url=https%3A%2F%2Fexample.com%2Fhooks&enabled_events[]=*&description=d&metadata[k]=v",
        )
        .await;
    let path = format!("/v1/webhook_endpoints/{}", id(&endpoint));
    twin.get(&path).await;
    twin.post(&path, "disabled=true").await;
    twin.get("/v1/webhook_endpoints").await;
    twin.delete(&path).await;
}

pub async fn error_flows(twin: &Recorder<'_>) {
    twin.fail(
        Method::GET,
        "/v1/customers/cus_missing",
        "",
        StatusCode::NOT_FOUND,
    )
    .await;
    twin.fail(
        Method::POST,
        "/v1/customers",
        "nope=1",
        StatusCode::BAD_REQUEST,
    )
    .await;
    twin.fail(Method::GET, "/v1/nowhere", "", StatusCode::NOT_FOUND)
        .await;
    // A Stripe operation stripe-twin does not emulate.
    twin.fail(Method::GET, "/v1/disputes", "", StatusCode::NOT_FOUND)
        .await;
    twin.fail(
        Method::POST,
        "/v1/payment_methods",
        "type=card&card[number]=4000000000000002&card[exp_month]=1&card[exp_year]=2020",
        StatusCode::PAYMENT_REQUIRED,
    )
    .await;
}

/// Every event, page by page, and one retrieved.
pub async fn event_flows(twin: &Recorder<'_>) {
    let mut after = String::new();
    loop {
        let page = twin.get(&format!("/v1/events?limit=100{after}")).await;
        let data = page["data"].as_array().unwrap();
        if let Some(first) = data.first() {
            twin.get(&format!("/v1/events/{}", id(first))).await;
        }
        if page["has_more"] != true {
            break;
        }
        after = format!("&starting_after={}", id(data.last().unwrap()));
    }
}

/// Every flow, in order, on a server with the shipped fixtures.
pub async fn drive_everything(twin: &Recorder<'_>) {
    let customer = customers(twin).await;
    let (monthly, one_time) = catalog(twin).await;
    twin.get(&format!("/v1/prices/{MONTHLY_PRICE}?expand[]=product"))
        .await;
    let amazon_pm = setup_flows(twin, &customer).await;
    payment_flows(twin, &customer).await;
    billing_flows(twin, &customer, &monthly, &amazon_pm).await;
    checkout_flows(twin, &customer, &monthly, &one_time).await;
    webhook_endpoint_flows(twin).await;
    refund_and_clock_flows(twin).await;
    error_flows(twin).await;
    event_flows(twin).await;
}

/// Refunds (partial, legacy, expanded on their charge) and a test clock's
/// life (created, advanced with a customer's subscription on it, deleted).
async fn refund_and_clock_flows(twin: &Recorder<'_>) {
    let paid = twin
        .post(
            "/v1/payment_intents",
            "amount=1500&currency=usd&payment_method=pm_card_visa&payment_method_types[]=card&confirm=true",
        )
        .await;
    let charge = paid["latest_charge"].as_str().unwrap().to_owned();
    let refund = twin
        .post(
            "/v1/refunds?expand[]=charge",
            &format!("charge={charge}&amount=500"),
        )
        .await;
    twin.get(&format!("/v1/refunds/{}", id(&refund))).await;
    twin.post(&format!("/v1/charges/{charge}/refund"), "").await;
    twin.get(&format!("/v1/charges/{charge}/refunds")).await;
    twin.get(&format!("/v1/charges/{charge}?expand[]=refunds"))
        .await;
    let clock = twin
        .post(
            "/v1/test_helpers/test_clocks",
            "frozen_time=1767225600&name=shapes",
        )
        .await;
    let clock_id = id(&clock);
    let customer = twin
        .post(
            "/v1/customers",
            &format!("test_clock={clock_id}&payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa"),
        )
        .await;
    twin.post(
        "/v1/subscriptions",
        &format!("customer={}&items[0][price]={MONTHLY_PRICE}", id(&customer)),
    )
    .await;
    let advancing = twin
        .post(
            &format!("/v1/test_helpers/test_clocks/{clock_id}/advance"),
            &format!("frozen_time={}", 1_767_225_600 + 31 * 86_400 + 3600),
        )
        .await;
    assert_eq!(advancing["status"], "advancing");
    for _ in 0..500 {
        let now = twin
            .get(&format!("/v1/test_helpers/test_clocks/{clock_id}"))
            .await;
        if now["status"] == "ready" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    twin.get(&format!("/v1/invoices?customer={}", id(&customer)))
        .await;
    twin.get("/v1/test_helpers/test_clocks").await;
    twin.delete(&format!("/v1/test_helpers/test_clocks/{clock_id}"))
        .await;
}
