//! What stripe-twin does not emulate is refused, never ignored: parameters
//! that would change what is charged, the `Stripe-Account` header, and
//! Stripe operations it does not serve (told apart from URLs that are not
//! Stripe's).
use crate::common;

use common::{KEY, TestServer, id};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn customer_with_visa(server: &TestServer) -> String {
    let customer = id(&server.post("/v1/customers", "name=Payer").await.ok());
    let pm = server
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
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

async fn monthly_price(server: &TestServer, amount: i64) -> String {
    let product = id(&server.post("/v1/products", "name=Plan").await.ok());
    id(&server
        .post(
            "/v1/prices",
            &format!(
                "product={product}&unit_amount={amount}&currency=usd&recurring[interval]=month"
            ),
        )
        .await
        .ok())
}

#[track_caller]
fn assert_not_emulated(reply: &common::Reply, param: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{param}: {}",
        reply.body
    );
    assert_eq!(
        reply.error_type(),
        "invalid_request_error",
        "{}",
        reply.body
    );
    assert_eq!(reply.error_param(), param, "{}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("stripe-twin does not emulate `{param}"))
            && message.contains("yet"),
        "{message}"
    );
}

/// The example: a subscription with a coupon, a tax rate and
/// automatic tax was answered active with the full price charged.
async fn subscriptions_refuse_discounts_and_taxes(server: TestServer) {
    let customer = customer_with_visa(&server).await;
    let price = monthly_price(&server, 1500).await;
    let base = format!("customer={customer}&items[0][price]={price}");
    for (extra, param) in [
        ("discounts[0][coupon]=HALF_OFF", "discounts"),
        ("default_tax_rates[0]=txr_nope", "default_tax_rates"),
        ("automatic_tax[enabled]=true", "automatic_tax[enabled]"),
        ("items[0][tax_rates][0]=txr_nope", "items[0][tax_rates]"),
        (
            "items[0][discounts][0][coupon]=HALF_OFF",
            "items[0][discounts]",
        ),
        ("coupon=HALF_OFF", "coupon"),
        ("application_fee_percent=10", "application_fee_percent"),
        ("transfer_data[destination]=acct_1", "transfer_data"),
    ] {
        let reply = server
            .post("/v1/subscriptions", &format!("{base}&{extra}"))
            .await;
        assert_not_emulated(&reply, param);
    }
    let none = server
        .get(&format!("/v1/subscriptions?customer={customer}"))
        .await
        .ok();
    assert_eq!(
        none["data"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );

    // Asking for none of it is what stripe-twin does anyway.
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("{base}&automatic_tax[enabled]=false&discounts=&default_tax_rates=&items[0][tax_rates]="),
        )
        .await
        .ok();
    assert_eq!(sub["status"], "active");
    let sub_path = format!("/v1/subscriptions/{}", id(&sub));
    assert_not_emulated(
        &server
            .post(&sub_path, "discounts[0][coupon]=HALF_OFF")
            .await,
        "discounts",
    );
    assert_not_emulated(
        &server.post(&sub_path, "default_tax_rates[]=txr_nope").await,
        "default_tax_rates",
    );
    server
        .post(&sub_path, "discounts=&automatic_tax[enabled]=false")
        .await
        .ok();
}

async fn checkout_refuses_taxes_it_used_to_ignore(server: TestServer) {
    let price = monthly_price(&server, 2000).await;
    let base = format!(
        "mode=subscription&success_url=https://shop.example/ok&line_items[0][price]={price}&line_items[0][quantity]=1"
    );
    for (extra, param) in [
        (
            "line_items[0][tax_rates][0]=txr_1",
            "line_items[0][tax_rates]",
        ),
        (
            "line_items[0][dynamic_tax_rates][0]=txr_1",
            "line_items[0][dynamic_tax_rates]",
        ),
        (
            "line_items[0][adjustable_quantity][enabled]=true",
            "line_items[0][adjustable_quantity][enabled]",
        ),
        (
            "subscription_data[default_tax_rates][0]=txr_1",
            "subscription_data[default_tax_rates]",
        ),
        ("automatic_tax[enabled]=true", "automatic_tax[enabled]"),
        ("discounts[0][coupon]=HALF_OFF", "discounts"),
        ("allow_promotion_codes=true", "allow_promotion_codes"),
        (
            "shipping_options[0][shipping_rate]=shr_1",
            "shipping_options",
        ),
    ] {
        let reply = server
            .post("/v1/checkout/sessions", &format!("{base}&{extra}"))
            .await;
        assert_not_emulated(&reply, param);
    }
    let session = server
        .post(
            "/v1/checkout/sessions",
            &format!("{base}&automatic_tax[enabled]=false&allow_promotion_codes=false&line_items[0][adjustable_quantity][enabled]=false"),
        )
        .await
        .ok();
    assert_eq!(session["allow_promotion_codes"], false);
    assert_eq!(session["amount_total"], 2000);
}

async fn money_movement_is_refused_everywhere(server: TestServer) {
    let customer = customer_with_visa(&server).await;
    let intent = format!("amount=1000&currency=usd&customer={customer}");
    assert_not_emulated(
        &server
            .post(
                "/v1/payment_intents",
                &format!("{intent}&application_fee_amount=100"),
            )
            .await,
        "application_fee_amount",
    );
    assert_not_emulated(
        &server
            .post(
                "/v1/payment_intents",
                &format!("{intent}&on_behalf_of=acct_1"),
            )
            .await,
        "on_behalf_of",
    );
    let created = server.post("/v1/payment_intents", &intent).await.ok();
    assert_not_emulated(
        &server
            .post(
                &format!("/v1/payment_intents/{}", id(&created)),
                "transfer_data[destination]=acct_1",
            )
            .await,
        "transfer_data",
    );
    assert_not_emulated(
        &server
            .post(
                &format!("/v1/payment_intents/{}/confirm", id(&created)),
                "capture_method=manual",
            )
            .await,
        "capture_method",
    );
    assert_not_emulated(
        &server
            .post("/v1/setup_intents", "on_behalf_of=acct_1")
            .await,
        "on_behalf_of",
    );
    assert_not_emulated(
        &server.post("/v1/customers", "promotion_code=promo_1").await,
        "promotion_code",
    );
    let product = id(&server.post("/v1/products", "name=Tiered").await.ok());
    assert_not_emulated(
        &server
            .post(
                "/v1/prices",
                &format!("product={product}&currency=usd&billing_scheme=tiered"),
            )
            .await,
        "billing_scheme",
    );
    assert_not_emulated(
        &server
            .post("/v1/prices", &format!("product={product}&currency=usd&unit_amount=5&currency_options[eur][unit_amount]=4"))
            .await,
        "currency_options",
    );
    // The key is checked first, as Stripe does.
    let unauthenticated = server
        .call(
            Method::POST,
            "/v1/subscriptions",
            None,
            "discounts[0][coupon]=X",
            &[],
        )
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

async fn stripe_account_header_is_refused(server: TestServer) {
    let header = [("Stripe-Account", "acct_1ConnectedAccount")];
    for (method, path, body) in [
        (Method::POST, "/v1/customers", "name=Connected"),
        (Method::GET, "/v1/customers", ""),
        (
            Method::POST,
            "/v1/payment_intents",
            "amount=100&currency=usd",
        ),
    ] {
        let reply = server
            .call(method.clone(), path, Some(KEY), body, &header)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {}",
            reply.body
        );
        assert_eq!(reply.error_type(), "invalid_request_error");
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("Connect") && message.contains("Stripe-Account"),
            "{message}"
        );
        assert!(message.contains("acct_1ConnectedAccount"), "{message}");
    }
    // Nothing landed in the platform account.
    let listed = server.get("/v1/customers").await.ok();
    assert_eq!(listed["data"], serde_json::json!([]));
    let events = server.get("/v1/events").await.ok();
    assert_eq!(events["data"], serde_json::json!([]));
}

fn unsupported_header(reply: &common::Reply) -> Option<&str> {
    reply
        .headers
        .get("stripe-twin-unsupported")
        .and_then(|v| v.to_str().ok())
}

async fn stripe_operations_not_emulated_say_so(server: TestServer) {
    for (method, path, operation) in [
        (Method::GET, "/v1/disputes", "GET /v1/disputes"),
        (
            Method::GET,
            "/v1/disputes/dp_3MtwBwLkdIwHu7ix28a3tqPa",
            "GET /v1/disputes/{dispute}",
        ),
        (
            Method::POST,
            "/v1/disputes/dp_1/close",
            "POST /v1/disputes/{dispute}/close",
        ),
        (Method::POST, "/v1/coupons", "POST /v1/coupons"),
        (
            Method::DELETE,
            "/v1/customers/cus_1/discount",
            "DELETE /v1/customers/{customer}/discount",
        ),
        // A path stripe-twin serves, with a method it does not.
        (
            Method::POST,
            "/v1/charges/ch_123",
            "POST /v1/charges/{charge}",
        ),
        (
            Method::POST,
            "/v1/payment_intents/pi_1/capture",
            "POST /v1/payment_intents/{intent}/capture",
        ),
    ] {
        let reply = server.call(method.clone(), path, Some(KEY), "", &[]).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.body
        );
        assert_eq!(reply.error_type(), "invalid_request_error");
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("stripe-twin does not emulate {operation} yet")),
            "{method} {path}: {message}"
        );
        assert_eq!(unsupported_header(&reply), Some("true"), "{method} {path}");
    }
    // Not Stripe's: a typo keeps Stripe's own answer, without the header.
    for (method, path) in [
        (Method::GET, "/v1/refundz"),
        (Method::PUT, "/v1/customers"),
        (Method::GET, "/v1/refunds/"),
        (Method::DELETE, "/v1/prices/price_1"),
    ] {
        let reply = server.call(method.clone(), path, Some(KEY), "", &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
        let message: &Value = &reply.body["error"]["message"];
        assert!(
            message
                .as_str()
                .unwrap_or_default()
                .starts_with(&format!("Unrecognized request URL ({method}: {path})")),
            "{message}"
        );
        assert_eq!(unsupported_header(&reply), None, "{method} {path}");
    }
}

backend_tests!(
    subscriptions_refuse_discounts_and_taxes,
    checkout_refuses_taxes_it_used_to_ignore,
    money_movement_is_refused_everywhere,
    stripe_account_header_is_refused,
    stripe_operations_not_emulated_say_so,
);
