//! The async-stripe crate (Rust's Stripe SDK) as a real client: its typed
//! deserialization checks our object shapes, its paginator our list cursors,
//! its error type our error bodies.
use crate::common;

use std::collections::HashMap;

use common::{KEY, TestServer};
use futures_util::TryStreamExt;
use stripe::{Client, ClientBuilder, StripeError};
use stripe_core::customer::ListPaymentMethodsCustomer;
use stripe_core::customer::{
    CreateCustomer, DeleteCustomer, ListCustomer, RetrieveCustomer, RetrieveCustomerReturned,
    SearchCustomer, UpdateCustomer,
};
use stripe_core::event::{ListEvent, RetrieveEvent};
use stripe_core::mandate::RetrieveMandate;
use stripe_core::setup_intent::{
    ConfirmSetupIntent, CreateSetupIntent, CreateSetupIntentMandateData,
    CreateSetupIntentMandateDataCustomerAcceptance,
    CreateSetupIntentMandateDataCustomerAcceptanceType, CreateSetupIntentPaymentMethodData,
    CreateSetupIntentPaymentMethodDataType, CreateSetupIntentUsage, OnlineParam,
    RetrieveSetupIntent,
};

fn sdk(server: &TestServer, key: &str) -> Client {
    ClientBuilder::new(key)
        .url(server.base.clone())
        .build()
        .expect("client builds")
}

async fn customer_lifecycle(server: TestServer) {
    let client = sdk(&server, KEY);
    let created = CreateCustomer::new()
        .email("ada@example.com")
        .name("Ada Lovelace")
        .metadata(HashMap::from([("plan".to_owned(), "pro".to_owned())]))
        .send(&client)
        .await
        .expect("create");
    assert!(created.id.as_str().starts_with("cus_"));
    assert_eq!(created.email.as_deref(), Some("ada@example.com"));
    assert!(!created.livemode);

    let updated = UpdateCustomer::new(created.id.clone())
        .name("Ada King")
        .send(&client)
        .await
        .expect("update");
    assert_eq!(updated.name.as_deref(), Some("Ada King"));
    assert_eq!(
        updated
            .metadata
            .as_ref()
            .and_then(|m| m.get("plan"))
            .map(String::as_str),
        Some("pro")
    );

    match RetrieveCustomer::new(created.id.clone())
        .send(&client)
        .await
        .expect("retrieve")
    {
        RetrieveCustomerReturned::Customer(customer) => {
            assert_eq!(customer.name.as_deref(), Some("Ada King"))
        }
        other => panic!("expected a live customer, got {other:?}"),
    }

    let found = SearchCustomer::new("name:'Ada King'")
        .send(&client)
        .await
        .expect("search");
    assert_eq!(found.data.len(), 1);
    assert_eq!(found.data[0].id, created.id);

    let deleted = DeleteCustomer::new(created.id.clone())
        .send(&client)
        .await
        .expect("delete");
    assert_eq!(deleted.id, created.id);
    match RetrieveCustomer::new(created.id.clone())
        .send(&client)
        .await
        .expect("retrieve deleted")
    {
        RetrieveCustomerReturned::DeletedCustomer(gone) => assert_eq!(gone.id, created.id),
        other => panic!("expected a deleted customer, got {other:?}"),
    }

    // The events of that history, typed, newest first.
    let events = ListEvent::new().send(&client).await.expect("list events");
    let types: Vec<String> = events.data.iter().map(|e| e.type_.to_string()).collect();
    assert_eq!(
        types,
        ["customer.deleted", "customer.updated", "customer.created"]
    );
    let update_event = RetrieveEvent::new(events.data[1].id.clone())
        .send(&client)
        .await
        .expect("retrieve event");
    assert_eq!(update_event.id, events.data[1].id);
    assert!(update_event.data.previous_attributes.is_some());
}

async fn auto_pagination_sees_every_customer_once(server: TestServer) {
    let client = sdk(&server, KEY);
    let mut ids = Vec::new();
    for n in 0..25 {
        let customer = CreateCustomer::new()
            .email(format!("page{n}@example.com"))
            .send(&client)
            .await
            .expect("create");
        ids.push(customer.id.to_string());
    }
    let streamed: Vec<String> = ListCustomer::new()
        .limit(7)
        .paginate()
        .stream(&client)
        .map_ok(|customer| customer.id.to_string())
        .try_collect()
        .await
        .expect("paginate");
    ids.reverse(); // newest first
    assert_eq!(streamed, ids);
}

async fn errors_arrive_typed(server: TestServer) {
    let client = sdk(&server, KEY);
    let err = RetrieveCustomer::new("cus_doesnotexist00")
        .send(&client)
        .await
        .expect_err("missing customer");
    let StripeError::Stripe(body, status) = err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!(status, 404);
    assert_eq!(body.type_.to_string(), "invalid_request_error");
    assert_eq!(
        body.code.map(|c| c.to_string()).as_deref(),
        Some("resource_missing")
    );
    assert_eq!(body.param.as_deref(), Some("id"));

    // Another key is another account: the customer of one is missing for the other.
    let mine = CreateCustomer::new().send(&client).await.expect("create");
    let other = sdk(&server, "sk_test_someone_else");
    let err = RetrieveCustomer::new(mine.id)
        .send(&other)
        .await
        .expect_err("isolated");
    assert!(matches!(err, StripeError::Stripe(_, 404)), "{err:?}");

    let live = sdk(&server, "sk_live_not_here");
    let err = ListCustomer::new().send(&live).await.expect_err("live key");
    assert!(matches!(err, StripeError::Stripe(_, 401)), "{err:?}");
}

/// The seed document's Amazon Pay setup through the typed client, then the
/// buyer authorizes on the page; every object deserializes into its type.
async fn amazon_pay_setup_typed(server: TestServer) {
    let client = sdk(&server, KEY);
    let customer = CreateCustomer::new()
        .email("amazon@example.com")
        .send(&client)
        .await
        .expect("customer");
    let mut acceptance = CreateSetupIntentMandateDataCustomerAcceptance::new(
        CreateSetupIntentMandateDataCustomerAcceptanceType::Online,
    );
    acceptance.online = Some(OnlineParam::new("127.0.0.0", "device"));
    let intent = CreateSetupIntent::new()
        .confirm(true)
        .return_url("https://www.stripe.com")
        .usage(CreateSetupIntentUsage::OffSession)
        .customer(customer.id.as_str())
        .payment_method_data(CreateSetupIntentPaymentMethodData::new(
            CreateSetupIntentPaymentMethodDataType::AmazonPay,
        ))
        .allowed_payment_method_types(vec![
            stripe_core::SetupIntentAllowedPaymentMethodTypes::AmazonPay,
        ])
        .mandate_data(CreateSetupIntentMandateData::new(acceptance))
        .send(&client)
        .await
        .expect("create and confirm");
    assert_eq!(intent.status.as_str(), "requires_action");
    let url = intent
        .next_action
        .as_ref()
        .and_then(|a| a.redirect_to_url.as_ref())
        .and_then(|r| r.url.clone())
        .expect("redirect url");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorized = browser
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("outcome=authorize")
        .send()
        .await
        .unwrap();
    assert_eq!(authorized.status(), 303);

    let done = RetrieveSetupIntent::new(intent.id.clone())
        .send(&client)
        .await
        .expect("retrieve");
    assert_eq!(done.status.as_str(), "succeeded");
    let mandate_id = done.mandate.expect("mandate").id().clone();
    let mandate = RetrieveMandate::new(mandate_id)
        .send(&client)
        .await
        .expect("mandate");
    assert_eq!(mandate.status.as_str(), "active");
    assert_eq!(mandate.type_.as_str(), "multi_use");

    let methods = ListPaymentMethodsCustomer::new(customer.id.clone())
        .send(&client)
        .await
        .expect("payment methods");
    assert_eq!(methods.data.len(), 1);
    assert_eq!(methods.data[0].type_.as_str(), "amazon_pay");
    assert!(methods.data[0].amazon_pay.is_some());

    // A card set up and a card declined, as typed results and typed errors.
    let card = CreateSetupIntent::new()
        .customer(customer.id.as_str())
        .payment_method("pm_card_visa")
        .send(&client)
        .await
        .expect("card intent");
    let confirmed = ConfirmSetupIntent::new(card.id.clone())
        .send(&client)
        .await
        .expect("confirm");
    assert_eq!(confirmed.status.as_str(), "succeeded");
    let err = CreateSetupIntent::new()
        .confirm(true)
        .payment_method("pm_card_chargeDeclined")
        .send(&client)
        .await
        .expect_err("declined");
    let StripeError::Stripe(body, 402) = err else {
        panic!("expected a 402, got {err:?}")
    };
    assert_eq!(body.decline_code.as_deref(), Some("generic_decline"));
    assert_eq!(
        body.setup_intent.as_ref().map(|s| s.status.as_str()),
        Some("requires_payment_method")
    );
    let cards = ListPaymentMethodsCustomer::new(customer.id.clone())
        .send(&client)
        .await
        .expect("payment methods");
    let card = cards
        .data
        .iter()
        .find(|pm| pm.card.is_some())
        .expect("card");
    assert_eq!(card.card.as_ref().unwrap().last4, "4242");
}

backend_tests!(
    amazon_pay_setup_typed,
    customer_lifecycle,
    auto_pagination_sees_every_customer_once,
    errors_arrive_typed,
    test_clock_renewal
);

/// Stripe's test clock guide through async-stripe: a clock, a customer on
/// it with a card as its invoice default, a monthly subscription, an
/// advance of one period (and the hour the renewal stays a draft), polled
/// until ready; the renewal is paid and the period moved.
async fn test_clock_renewal(server: TestServer) {
    use stripe_billing::invoice::ListInvoice;
    use stripe_billing::subscription::{CreateSubscription, CreateSubscriptionItems};
    use stripe_billing::test_helpers_test_clock::{
        AdvanceTestHelpersTestClock, CreateTestHelpersTestClock, RetrieveTestHelpersTestClock,
    };
    use stripe_billing::{InvoiceBillingReason, InvoiceStatus, TestHelpersTestClockStatus};
    use stripe_core::customer::CreateCustomerInvoiceSettings;

    const T0: i64 = 1_767_225_600; // 2026-01-01
    let client = sdk(&server, KEY);
    let clock = CreateTestHelpersTestClock::new(T0)
        .name("renewal")
        .send(&client)
        .await
        .expect("clock");
    assert_eq!(clock.status, TestHelpersTestClockStatus::Ready);
    let mut settings = CreateCustomerInvoiceSettings::new();
    settings.default_payment_method = Some("pm_card_visa".to_owned());
    let customer = CreateCustomer::new()
        .test_clock(clock.id.as_str())
        .payment_method("pm_card_visa")
        .invoice_settings(settings)
        .send(&client)
        .await
        .expect("customer");
    assert_eq!(customer.created, T0);
    let price = server
        .post(
            "/v1/prices",
            "currency=usd&unit_amount=1500&recurring[interval]=month&product_data[name]=Plan",
        )
        .await
        .ok();
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(common::id(&price));
    let sub = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item])
        .send(&client)
        .await
        .expect("subscription");
    let end = sub.items.data[0].current_period_end;
    assert_eq!(end, T0 + 31 * 86_400);
    let advancing = AdvanceTestHelpersTestClock::new(clock.id.clone(), end + 3600)
        .send(&client)
        .await
        .expect("advance");
    assert_eq!(advancing.status, TestHelpersTestClockStatus::Advancing);
    let started = std::time::Instant::now();
    loop {
        let now = RetrieveTestHelpersTestClock::new(clock.id.clone())
            .send(&client)
            .await
            .expect("retrieve");
        if now.status == TestHelpersTestClockStatus::Ready {
            assert_eq!(now.frozen_time, end + 3600);
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let invoices = ListInvoice::new()
        .subscription(sub.id.as_str())
        .send(&client)
        .await
        .expect("invoices");
    assert_eq!(invoices.data.len(), 2);
    let renewal = &invoices.data[0];
    assert_eq!(
        renewal.billing_reason,
        Some(InvoiceBillingReason::SubscriptionCycle)
    );
    assert_eq!(renewal.status, Some(InvoiceStatus::Paid));
    assert_eq!(renewal.amount_paid, 1500);
    let renewed = server
        .get(&format!("/v1/subscriptions/{}", sub.id.as_str()))
        .await
        .ok();
    assert_eq!(renewed["items"]["data"][0]["current_period_start"], end);
}
