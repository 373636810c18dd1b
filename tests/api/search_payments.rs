//! `GET /v1/payment_intents/search`, `/v1/charges/search` and
//! `/v1/invoices/search`, on Stripe's documented query fields.
use crate::common;

use common::{TestServer, enc, id};
use reqwest::StatusCode;
use serde_json::Value;

async fn customer(server: &TestServer, name: &str) -> String {
    id(&server
        .post("/v1/customers", &format!("name={name}"))
        .await
        .ok())
}

async fn search(server: &TestServer, resource: &str, query: &str) -> Vec<String> {
    let found = server
        .get(&format!("/v1/{resource}/search?query={}", enc(query)))
        .await
        .ok();
    assert_eq!(found["object"], "search_result", "{found}");
    assert_eq!(found["url"], format!("/v1/{resource}/search"));
    found["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert!(
                o.as_object().unwrap().keys().all(|k| !k.starts_with('_')),
                "{o}"
            );
            id(o)
        })
        .collect()
}

/// A confirmed PaymentIntent (the reply, or the declined intent).
async fn pay(server: &TestServer, customer: &str, amount: i64, pm: &str, order: &str) -> Value {
    let reply = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount={amount}&currency=usd&customer={customer}&payment_method={pm}&confirm=true&metadata[order]={order}"
            ),
        )
        .await;
    match reply.status {
        StatusCode::OK => reply.body,
        _ => reply.body["error"]["payment_intent"].clone(),
    }
}

async fn payment_intents_and_charges(server: TestServer) {
    let alice = customer(&server, "Alice").await;
    let bob = customer(&server, "Bob").await;
    let paid = pay(&server, &alice, 1000, "pm_card_visa", "41").await;
    assert_eq!(paid["status"], "succeeded");
    let declined = pay(&server, &bob, 2500, "pm_card_chargeDeclined", "42").await;
    assert_eq!(declined["status"], "requires_payment_method");
    let (paid_id, declined_id) = (id(&paid), id(&declined));

    let pis = "payment_intents";
    assert_eq!(
        search(&server, pis, "status:'succeeded'").await,
        [paid_id.as_str()]
    );
    assert_eq!(
        search(&server, pis, &format!("customer:'{bob}'")).await,
        [declined_id.as_str()]
    );
    assert_eq!(
        search(&server, pis, "amount>1500").await,
        [declined_id.as_str()]
    );
    assert_eq!(
        search(&server, pis, "metadata['order']:'41'").await,
        [paid_id.as_str()]
    );
    assert_eq!(
        search(&server, pis, "currency:'usd'").await,
        [declined_id.clone(), paid_id.clone()]
    );
    assert_eq!(
        search(&server, pis, "amount>=1000 AND -status:'succeeded'").await,
        [declined_id.as_str()]
    );

    let charges = "charges";
    let paid_charge = paid["latest_charge"].as_str().unwrap().to_owned();
    let failed_charge = declined["latest_charge"].as_str().unwrap().to_owned();
    assert_eq!(
        search(&server, charges, "status:'failed'").await,
        [failed_charge.as_str()]
    );
    assert_eq!(
        search(&server, charges, "payment_method_details.card.last4:'4242'").await,
        [paid_charge.as_str()]
    );
    assert_eq!(
        search(&server, charges, "payment_method_details.card.last4:0002").await,
        [failed_charge.as_str()]
    );
    assert_eq!(
        search(
            &server,
            charges,
            &format!("customer:'{alice}' AND amount:1000")
        )
        .await,
        [paid_charge.as_str()]
    );
    assert_eq!(
        search(&server, charges, "refunded:'false' AND disputed:'false'")
            .await
            .len(),
        2
    );
    assert_eq!(
        search(
            &server,
            charges,
            "payment_method_details.card.brand:'visa' AND metadata['order']:'42'"
        )
        .await,
        [failed_charge]
    );

    // Fields Stripe does not search are refused, naming the resource.
    let bad = server
        .get(&format!(
            "/v1/payment_intents/search?query={}",
            enc("description:'x'")
        ))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.error_param(), "query");
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("payment_intents")
    );
    let token = server
        .get(&format!(
            "/v1/charges/search?query={}",
            enc("payment_method_details.card.last4~'424'")
        ))
        .await;
    assert_eq!(
        token.status,
        StatusCode::BAD_REQUEST,
        "tokens match exactly"
    );
    let missing = server.get("/v1/charges/search").await;
    assert_eq!(missing.error_code(), "parameter_missing");
    // Paging as the other searches do.
    let first = server
        .get(&format!(
            "/v1/payment_intents/search?limit=1&query={}",
            enc("currency:'usd'")
        ))
        .await
        .ok();
    assert_eq!(first["has_more"], true);
    let page = first["next_page"].as_str().unwrap();
    let second = server
        .get(&format!(
            "/v1/payment_intents/search?limit=1&page={page}&query={}",
            enc("currency:'usd'")
        ))
        .await
        .ok();
    assert_eq!(id(&second["data"][0]), paid_id);
}

async fn invoices(server: TestServer) {
    let customer = customer(&server, "Subscriber").await;
    let sub = server
        .subscribe_with_card(&customer, "pm_card_visa", 700)
        .await;
    let invoice = sub["latest_invoice"].as_str().unwrap().to_owned();
    let other = customer_invoice_free(&server).await;

    let found = |q: String| {
        let server = &server;
        async move { search(server, "invoices", &q).await }
    };
    assert_eq!(
        found(format!("subscription:'{}'", id(&sub))).await,
        [invoice.as_str()]
    );
    assert_eq!(
        found(format!("customer:'{customer}'")).await,
        [invoice.as_str()]
    );
    assert_eq!(
        found("status:'paid' AND total>500".into()).await,
        [invoice.as_str()]
    );
    assert_eq!(found("total<500".into()).await, Vec::<String>::new());
    let number = server.get(&format!("/v1/invoices/{invoice}")).await.ok()["number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        found(format!("number:'{number}'")).await,
        [invoice.as_str()]
    );
    assert_eq!(
        found("last_finalization_error_code:null".into()).await,
        [invoice]
    );
    assert!(other.is_empty());
}

/// A customer without invoices finds none.
async fn customer_invoice_free(server: &TestServer) -> Vec<String> {
    let nobody = customer(server, "Nobody").await;
    search(server, "invoices", &format!("customer:'{nobody}'")).await
}

backend_tests!(payment_intents_and_charges, invoices);
