//! Stripe's testing page, mirrored: every documented number is a test card
//! (never a live one), and each ready-made PaymentMethod, token and number
//! behaves as the page says: issuer declines, Radar blocks, verification
//! checks, 3-D Secure variants and the cards whose payments succeed.
use crate::common;

use common::{TestServer, enc, id, redirect_url, submit};
use reqwest::StatusCode;
use serde_json::Value;

/// Every number on docs.stripe.com/testing for cards (brands, countries,
/// declines, fraud, disputes, refunds, 3-D Secure, captcha, balance).
const DOCUMENTED: &[&str] = &[
    "4242424242424242",
    "4000056655665556",
    "5555555555554444",
    "2223003122003222",
    "5200828282828210",
    "5105105105105100",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "6011000990139424",
    "6011981111111113",
    "3056930009020004",
    "36227206271667",
    "6555900000604105",
    "3566002020360505",
    "6200000000000005",
    "6200000000000047",
    "6205500000000000004",
    "4000002500001001",
    "5555552500001001",
    "4000050360000001",
    "5555050360000080",
    "4000000320000021",
    "4000000760000002",
    "4000001240000000",
    "4000001520000001",
    "4000001700000003",
    "4000001880000005",
    "4000002180000000",
    "4000004840008001",
    "5062210000000009",
    "4000005910000000",
    "4000006000000066",
    "4000006040000068",
    "4000008580000003",
    "4000007840000001",
    "5200007840000022",
    "4000000400000008",
    "4000000560000004",
    "4000001000000000",
    "4000001120000005",
    "4000001910000009",
    "4000001960000008",
    "4000002030000002",
    "4000002080000001",
    "4000002330000009",
    "4000002460000001",
    "4000002500000003",
    "4000002760000016",
    "4000002920000005",
    "4000003000000030",
    "4000003480000005",
    "4000003720000005",
    "4000003800000008",
    "4000004280000005",
    "4000004380000004",
    "4000004400000000",
    "4000004420000006",
    "4000004700000007",
    "4000005280000002",
    "4000005780000007",
    "4000006160000005",
    "4000006200000007",
    "4000006420000001",
    "4000006820000007",
    "4000007050000006",
    "4000007030000001",
    "4000007240000007",
    "4000007520000008",
    "4000007560000009",
    "4000008260000000",
    "4000058260000005",
    "5555558265554449",
    "4000000360000006",
    "4000001560000002",
    "4000003440000004",
    "4000003560000008",
    "4000003920000003",
    "3530111333300000",
    "4000004580000002",
    "4000005540000008",
    "4000007020000003",
    "4000001580000008",
    "4000007640000003",
    "4000057640000008",
    "4000051230000072",
    "5200828282828897",
    "4000000000000077",
    "4000003720000278",
    "4000000000000002",
    "4000000000009995",
    "4000000000009987",
    "4000000000009979",
    "4000000000000069",
    "4000000000000127",
    "4000000000000119",
    "4000000000006975",
    "4000000000000341",
    "4100000000000019",
    "4000000000004954",
    "4000000000009235",
    "4000008400000407",
    "4000008400000159",
    "4000008400001017",
    "4001858821843804",
    "4000008405600003",
    "4000000000000101",
    "4000000000000036",
    "4000058400307872",
    "4000058400306072",
    "4000000000000028",
    "4000000000000010",
    "4000000000000044",
    "4000000000001208",
    "4000000000003725",
    "4000000000000259",
    "4000000000002685",
    "4000000000001976",
    "4000000000005423",
    "4000000404000079",
    "4000000404000038",
    "4000008400000779",
    "5105008400000002",
    "4000000001000043",
    "4000000000007726",
    "4000000000005126",
    "4000002500003155",
    "4000002760003184",
    "4000003800000446",
    "4000008260003178",
    "4000000000003220",
    "4000008400000027",
    "4000008400001629",
    "4000008400001280",
    "4000000000003055",
    "4000000000003097",
    "4000000032200000",
    "4000582600000094",
    "4000582600000045",
    "4000582600000102",
    "4000582600000110",
    "4012888888881881",
    "4000000000003063",
];

fn card(number: &str) -> String {
    format!("type=card&card[number]={number}&card[exp_month]=12&card[exp_year]=2040&card[cvc]=123")
}

async fn customer(server: &TestServer) -> String {
    id(&server.post("/v1/customers", "name=Tester").await.ok())
}

async fn attach(server: &TestServer, pm: &str, customer: &str) -> common::Reply {
    server
        .post(
            &format!("/v1/payment_methods/{pm}/attach"),
            &format!("customer={customer}"),
        )
        .await
}

/// An on-session confirm of `pm` for a customer (no return_url).
async fn charge(server: &TestServer, customer: &str, pm: &str) -> common::Reply {
    server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=2000&currency=usd&customer={customer}&payment_method={pm}&confirm=true"
            ),
        )
        .await
}

async fn off_session(server: &TestServer, customer: &str, pm: &str) -> common::Reply {
    server
        .post(
            "/v1/payment_intents",
            &format!("amount=2000&currency=usd&customer={customer}&payment_method={pm}&confirm=true&off_session=true"),
        )
        .await
}

async fn charge_of(server: &TestServer, id: &str) -> Value {
    server.get(&format!("/v1/charges/{id}")).await.ok()
}

async fn every_documented_number_is_a_test_card(server: TestServer) {
    for number in DOCUMENTED {
        let reply = server.post("/v1/payment_methods", &card(number)).await;
        assert_eq!(reply.status, StatusCode::OK, "{number}: {}", reply.body);
        assert_eq!(
            reply.body["card"]["last4"],
            number[number.len() - 4..],
            "{number}"
        );
    }
    let live = server
        .post("/v1/payment_methods", &card("4111111111111111"))
        .await;
    assert_eq!(live.body["error"]["decline_code"], "test_mode_live_card");
    let brand = |number: &'static str| {
        let server = &server;
        async move { server.post("/v1/payment_methods", &card(number)).await.ok()["card"].clone() }
    };
    assert_eq!(brand("5200828282828210").await["funding"], "debit");
    assert_eq!(brand("5105105105105100").await["funding"], "prepaid");
    assert_eq!(brand("6200000000000005").await["brand"], "unionpay");
    assert_eq!(brand("4000003480000005").await["country"], "HU");
    let co_branded = brand("4000002500001001").await;
    assert_eq!(co_branded["display_brand"], "cartes_bancaires");
    assert_eq!(
        co_branded["networks"]["available"],
        serde_json::json!(["cartes_bancaires", "visa"])
    );
}

async fn declines_carry_their_codes(server: TestServer) {
    let customer = customer(&server).await;
    for (pm, code, decline) in [
        (
            "pm_card_visa_chargeDeclined",
            "card_declined",
            Some("generic_decline"),
        ),
        (
            "pm_card_chargeDeclinedFraudulent",
            "card_declined",
            Some("fraudulent"),
        ),
        ("pm_card_radarBlock", "card_declined", Some("fraudulent")),
        (
            "pm_card_riskLevelHighest",
            "card_declined",
            Some("fraudulent"),
        ),
        (
            "pm_card_visa_chargeDeclinedLostCard",
            "card_declined",
            Some("lost_card"),
        ),
        (
            "pm_card_visa_chargeDeclinedStolenCard",
            "card_declined",
            Some("stolen_card"),
        ),
        (
            "pm_card_visa_chargeDeclinedVelocityLimitExceeded",
            "card_declined",
            Some("card_velocity_exceeded"),
        ),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", None),
        ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", None),
        (
            "pm_card_chargeDeclinedProcessingError",
            "processing_error",
            None,
        ),
        (
            "pm_card_threeDSecureRequiredProcessingError",
            "processing_error",
            None,
        ),
    ] {
        let reply = charge(&server, &customer, pm).await;
        assert_eq!(
            reply.status,
            StatusCode::PAYMENT_REQUIRED,
            "{pm}: {}",
            reply.body
        );
        assert_eq!(reply.error_type(), "card_error", "{pm}");
        assert_eq!(reply.error_code(), code, "{pm}");
        assert_eq!(
            reply.body["error"]
                .get("decline_code")
                .and_then(Value::as_str),
            decline,
            "{pm}"
        );
        assert!(
            reply.body["error"]["payment_method"]["id"].is_string(),
            "{pm}"
        );
    }
    // Radar blocks before the network: the charge says so.
    let blocked = charge(&server, &customer, "pm_card_radarBlock").await;
    let failed = charge_of(&server, blocked.body["error"]["charge"].as_str().unwrap()).await;
    assert_eq!(failed["outcome"]["type"], "blocked");
    assert_eq!(failed["outcome"]["risk_level"], "highest");
    assert_eq!(failed["outcome"]["network_status"], "not_sent_to_network");
    assert_eq!(failed["payment_method_details"]["card"]["last4"], "0019");
    let lost = charge(&server, &customer, "pm_card_visa_chargeDeclinedLostCard").await;
    let failed = charge_of(&server, lost.body["error"]["charge"].as_str().unwrap()).await;
    assert_eq!(failed["outcome"]["type"], "issuer_declined");
    assert_eq!(failed["failure_code"], "card_declined");

    // Issuer declines fail already when attached; Radar's do not.
    for (number, code) in [
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
        ("4000000000000119", "processing_error"),
        ("4000000000009987", "card_declined"),
        ("4000000000006975", "card_declined"),
    ] {
        let pm = id(&server.post("/v1/payment_methods", &card(number)).await.ok());
        let reply = attach(&server, &pm, &customer).await;
        assert_eq!(
            reply.status,
            StatusCode::PAYMENT_REQUIRED,
            "{number}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), code, "{number}");
    }
    let fraud = server
        .post(
            "/v1/payment_methods",
            "type=card&card[token]=tok_chargeDeclinedFraudulent",
        )
        .await
        .ok();
    assert_eq!(fraud["card"]["last4"], "0019");
    let attached = attach(&server, &id(&fraud), &customer).await.ok();
    assert_eq!(attached["customer"], customer.as_str());
    let refused = off_session(&server, &customer, &id(&attached)).await;
    assert_eq!(refused.body["error"]["decline_code"], "fraudulent");
    // Setting up runs Radar too.
    let setup = server
        .post(
            "/v1/setup_intents",
            &format!("customer={customer}&payment_method=pm_card_radarBlock&confirm=true"),
        )
        .await;
    assert_eq!(setup.body["error"]["decline_code"], "fraudulent");

    // Attaches fine; every charge fails, also for the token variants.
    for method in [
        "pm_card_chargeCustomerFail",
        "tok_visa_chargeCustomerFailLostCard",
    ] {
        let pm = if method.starts_with("tok_") {
            let created = server
                .post(
                    "/v1/payment_methods",
                    &format!("type=card&card[token]={method}"),
                )
                .await
                .ok();
            id(&created)
        } else {
            method.to_owned()
        };
        let attached = attach(&server, &pm, &customer).await.ok();
        let reply = off_session(&server, &customer, &id(&attached)).await;
        assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED, "{method}");
        let expected = if method.ends_with("LostCard") {
            "lost_card"
        } else {
            "generic_decline"
        };
        assert_eq!(reply.body["error"]["decline_code"], expected, "{method}");
    }
}

async fn cards_whose_payments_succeed(server: TestServer) {
    let customer = customer(&server).await;
    for (pm, brand, funding) in [
        ("pm_card_mastercard_debit", "mastercard", "debit"),
        ("pm_card_mastercard_prepaid", "mastercard", "prepaid"),
        ("pm_card_visa_debit", "visa", "debit"),
        ("pm_card_riskLevelElevated", "visa", "credit"),
        ("pm_card_createDispute", "visa", "credit"),
        ("pm_card_createDisputeProductNotReceived", "visa", "credit"),
        ("pm_card_createDisputeInquiry", "visa", "credit"),
        ("pm_card_threeDSecureOptional", "visa", "credit"),
        ("pm_card_amex_threeDSecureNotSupported", "amex", "credit"),
        ("pm_card_bypassPending", "visa", "credit"),
        ("pm_card_discover", "discover", "credit"),
        ("pm_card_jcb", "jcb", "credit"),
        ("pm_card_hu", "visa", "credit"),
        ("pm_card_gb_debit", "visa", "debit"),
    ] {
        let paid = charge(&server, &customer, pm).await;
        assert_eq!(paid.status, StatusCode::OK, "{pm}: {}", paid.body);
        assert_eq!(paid.body["status"], "succeeded", "{pm}");
        let charge = charge_of(&server, paid.body["latest_charge"].as_str().unwrap()).await;
        let card = &charge["payment_method_details"]["card"];
        assert_eq!(
            (card["brand"].as_str(), card["funding"].as_str()),
            (Some(brand), Some(funding)),
            "{pm}"
        );
        let risk = if pm == "pm_card_riskLevelElevated" {
            "elevated"
        } else {
            "normal"
        };
        assert_eq!(charge["outcome"]["risk_level"], risk, "{pm}");
    }
    for token in [
        "tok_mastercard_prepaid",
        "tok_riskLevelElevated",
        "tok_createDispute",
    ] {
        let pm = server
            .post(
                "/v1/payment_methods",
                &format!("type=card&card[token]={token}"),
            )
            .await;
        assert_eq!(pm.status, StatusCode::OK, "{token}: {}", pm.body);
    }
}

async fn authorize(intent: &Value) {
    let (status, _, _) = submit(&redirect_url(intent), "authorize").await;
    assert!(status.is_redirection() || status.is_success(), "{status}");
}

async fn three_d_secure_variants(server: TestServer) {
    let customer = customer(&server).await;
    let return_url = enc("https://shop.example/done");
    // Authenticate unless set up: off-session fails until a SetupIntent.
    let on_setup = id(
        &attach(&server, "pm_card_authenticationRequiredOnSetup", &customer)
            .await
            .ok(),
    );
    assert_eq!(
        off_session(&server, &customer, &on_setup)
            .await
            .error_code(),
        "authentication_required"
    );
    let setup = server
        .post(
            "/v1/setup_intents",
            &format!(
                "customer={customer}&payment_method={on_setup}&confirm=true&return_url={return_url}"
            ),
        )
        .await
        .ok();
    assert_eq!(setup["status"], "requires_action");
    authorize(&setup).await;
    let paid = off_session(&server, &customer, &on_setup).await.ok();
    assert_eq!(paid["status"], "succeeded");
    let on_session = charge(&server, &customer, &on_setup).await;
    assert_eq!(
        on_session.body["status"], "requires_action",
        "{}",
        on_session.body
    );

    // Always authenticate: even once set up.
    let always = id(
        &attach(&server, "pm_card_authenticationRequired", &customer)
            .await
            .ok(),
    );
    let setup = server
        .post(
            "/v1/setup_intents",
            &format!(
                "customer={customer}&payment_method={always}&confirm=true&return_url={return_url}"
            ),
        )
        .await
        .ok();
    authorize(&setup).await;
    assert_eq!(
        off_session(&server, &customer, &always).await.error_code(),
        "authentication_required"
    );

    // Already set up for off-session: those succeed, on-session needs the holder.
    let set_up = id(&attach(
        &server,
        "pm_card_authenticationRequiredSetupForOffSession",
        &customer,
    )
    .await
    .ok());
    assert_eq!(
        off_session(&server, &customer, &set_up).await.ok()["status"],
        "succeeded"
    );
    let waiting = charge(&server, &customer, &set_up).await.ok();
    assert_eq!(waiting["status"], "requires_action");

    // Authenticates, then the issuer declines.
    let then_declines = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=2000&currency=usd&customer={customer}&payment_method=pm_card_authenticationRequiredChargeDeclinedInsufficientFunds&confirm=true&return_url={return_url}"
            ),
        )
        .await
        .ok();
    assert_eq!(then_declines["status"], "requires_action");
    authorize(&then_declines).await;
    let after = server
        .get(&format!("/v1/payment_intents/{}", id(&then_declines)))
        .await
        .ok();
    assert_eq!(after["status"], "requires_payment_method");
    assert_eq!(
        after["last_payment_error"]["decline_code"],
        "insufficient_funds"
    );
    let failed = charge_of(&server, after["latest_charge"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed");
    let declined = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=2000&currency=usd&payment_method=pm_card_threeDSecureRequiredChargeDeclined&confirm=true&return_url={return_url}"
            ),
        )
        .await
        .ok();
    authorize(&declined).await;
    let after = server
        .get(&format!("/v1/payment_intents/{}", id(&declined)))
        .await
        .ok();
    assert_eq!(
        after["last_payment_error"]["decline_code"],
        "generic_decline"
    );
    // 3DS2 required cards wait for the holder too.
    let required = charge(&server, &customer, "pm_card_threeDSecure2Required")
        .await
        .ok();
    assert_eq!(required["status"], "requires_action");
}

async fn verification_checks(server: TestServer) {
    let customer = customer(&server).await;
    // The CVC check fails only when a CVC is sent; Radar then declines.
    let with_cvc = server
        .post("/v1/payment_methods", &card("4000000000000101"))
        .await
        .ok();
    assert_eq!(with_cvc["card"]["checks"]["cvc_check"], "fail");
    let refused = attach(&server, &id(&with_cvc), &customer).await;
    assert_eq!(refused.error_code(), "incorrect_cvc");
    let without = server
        .post(
            "/v1/payment_methods",
            "type=card&card[number]=4000000000000101&card[exp_month]=12&card[exp_year]=2040",
        )
        .await
        .ok();
    assert_eq!(without["card"]["checks"]["cvc_check"], "unchecked");
    attach(&server, &id(&without), &customer).await.ok();

    let address =
        "&billing_details[address][line1]=1+Main+St&billing_details[address][postal_code]=94107";
    let zip = server
        .post(
            "/v1/payment_methods",
            &format!("{}{address}", card("4000000000000036")),
        )
        .await
        .ok();
    assert_eq!(zip["card"]["checks"]["address_postal_code_check"], "fail");
    assert_eq!(zip["card"]["checks"]["address_line1_check"], "pass");
    assert_eq!(
        attach(&server, &id(&zip), &customer).await.error_code(),
        "incorrect_zip"
    );

    let line1 = server
        .post(
            "/v1/payment_methods",
            &format!("{}{address}", card("4000000000000028")),
        )
        .await
        .ok();
    assert_eq!(line1["card"]["checks"]["address_line1_check"], "fail");
    let attached = attach(&server, &id(&line1), &customer).await.ok();
    assert_eq!(
        off_session(&server, &customer, &id(&attached)).await.ok()["status"],
        "succeeded"
    );

    let unchecked = server
        .post(
            "/v1/payment_methods",
            &format!("{}{address}", card("4000000000000044")),
        )
        .await
        .ok();
    assert_eq!(
        unchecked["card"]["checks"]["address_line1_check"],
        "unavailable"
    );
    let visa = server
        .post(
            "/v1/payment_methods",
            &format!("{}{address}", card("4242424242424242")),
        )
        .await
        .ok();
    assert_eq!(visa["card"]["checks"]["address_postal_code_check"], "pass");
    let no_address = server
        .post("/v1/payment_methods", &card("4000000000000036"))
        .await
        .ok();
    assert!(no_address["card"]["checks"]["address_postal_code_check"].is_null());
}

backend_tests!(
    every_documented_number_is_a_test_card,
    declines_carry_their_codes,
    cards_whose_payments_succeed,
    three_d_secure_variants,
    verification_checks,
);
