//! Customers over real HTTP: CRUD, events, lists, search, expand.

use crate::common;

use common::{TestServer, enc};
use serde_json::{Value, json};

backend_tests!(
    create_retrieve_update_delete,
    metadata_semantics,
    events_record_every_change,
    list_filters,
    pagination_both_directions_over_250,
    expand_paths,
    search_queries,
    validation_errors,
);

async fn create_retrieve_update_delete(server: TestServer) {
    let body = format!(
        "description={}&email=jenny%40example.com&name=Jenny+Rosen&phone=%2B15555550100&address[line1]=1+Main+St&address[city]=Paris&address[country]=FR&preferred_locales[]=fr&preferred_locales[]=en&shipping[name]=Jenny&shipping[address][line1]=2+Side+St&invoice_settings[footer]=Thanks&invoice_settings[custom_fields][0][name]=VAT&invoice_settings[custom_fields][0][value]=FR123&tax_exempt=reverse&balance=-500",
        enc("My First Test Customer (created for API docs)")
    );
    let created = server.post("/v1/customers", &body).await.ok();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cus_") && id.len() >= 18, "{id}");
    assert_eq!(created["object"], "customer");
    assert_eq!(created["livemode"], false);
    assert_eq!(
        created["description"],
        "My First Test Customer (created for API docs)"
    );
    assert_eq!(created["email"], "jenny@example.com");
    assert_eq!(created["name"], "Jenny Rosen");
    assert_eq!(created["phone"], "+15555550100");
    assert_eq!(
        created["address"],
        json!({"city": "Paris", "country": "FR", "line1": "1 Main St", "line2": null, "postal_code": null, "state": null})
    );
    assert_eq!(created["shipping"]["name"], "Jenny");
    assert_eq!(created["shipping"]["address"]["line1"], "2 Side St");
    assert_eq!(created["preferred_locales"], json!(["fr", "en"]));
    assert_eq!(
        created["invoice_settings"]["custom_fields"],
        json!([{"name": "VAT", "value": "FR123"}])
    );
    assert_eq!(created["invoice_settings"]["footer"], "Thanks");
    assert_eq!(created["tax_exempt"], "reverse");
    assert_eq!(created["balance"], -500);
    // Fields of the current shape are present even when unset; includable
    // ones are not, nor those the spec has only while set.
    for key in [
        "currency",
        "default_source",
        "discount",
        "test_clock",
        "customer_account",
    ] {
        assert!(
            created.get(key).is_some_and(Value::is_null),
            "{key} should be null"
        );
    }
    for hidden in [
        "tax",
        "cash_balance",
        "invoice_credit_balance",
        "sources",
        "subscriptions",
        "business_name",
        "individual_name",
    ] {
        assert!(
            created.get(hidden).is_none(),
            "{hidden} is not shown (includable, or unset)"
        );
    }
    let created_at = created["created"].as_i64().unwrap();
    assert!((created_at - stripe_twin::clock::wall()).abs() < 60);

    let fetched = server.get(&format!("/v1/customers/{id}")).await.ok();
    assert_eq!(fetched, created);

    let updated = server
        .post(
            &format!("/v1/customers/{id}"),
            "name=Jenny+R.&description=&address=&phone=",
        )
        .await
        .ok();
    assert_eq!(updated["name"], "Jenny R.");
    assert!(
        updated["description"].is_null()
            && updated["address"].is_null()
            && updated["phone"].is_null()
    );
    assert_eq!(updated["email"], "jenny@example.com");

    let deleted = server.delete(&format!("/v1/customers/{id}")).await.ok();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "customer", "deleted": true})
    );
    let after = server.get(&format!("/v1/customers/{id}")).await.ok();
    assert_eq!(after["deleted"], true);
    let again = server.delete(&format!("/v1/customers/{id}")).await;
    assert_eq!(again.status, 404);
    let update_deleted = server.post(&format!("/v1/customers/{id}"), "name=x").await;
    assert_eq!(update_deleted.status, 404);
    let listed = server.get("/v1/customers").await.ok();
    assert_eq!(listed["data"], json!([]), "deleted customers leave lists");

    let missing = server.get("/v1/customers/cus_doesnotexist123").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code(), "resource_missing");
    assert_eq!(
        missing.body["error"]["message"],
        "No such customer: 'cus_doesnotexist123'"
    );
    assert_eq!(missing.error_param(), "id");
}

async fn metadata_semantics(server: TestServer) {
    let id = server
        .post("/v1/customers", "metadata[a]=1&metadata[b]=2")
        .await
        .id();
    let c = server
        .post(&format!("/v1/customers/{id}"), "metadata[a]=&metadata[c]=3")
        .await
        .ok();
    assert_eq!(c["metadata"], json!({"b": "2", "c": "3"}));
    let c = server
        .post(&format!("/v1/customers/{id}"), "metadata=")
        .await
        .ok();
    assert_eq!(c["metadata"], json!({}));

    let too_many = (0..51)
        .map(|i| format!("metadata[k{i}]=v"))
        .collect::<Vec<_>>()
        .join("&");
    let r = server.post("/v1/customers", &too_many).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_param(), "metadata");
    let fifty = (0..50)
        .map(|i| format!("metadata[k{i}]=v"))
        .collect::<Vec<_>>()
        .join("&");
    let ok = server.post("/v1/customers", &fifty).await.ok();
    assert_eq!(ok["metadata"].as_object().unwrap().len(), 50);

    let long_key = format!("metadata[{}]=v", "k".repeat(41));
    assert_eq!(server.post("/v1/customers", &long_key).await.status, 400);
    let long_value = format!("metadata[k]={}", "v".repeat(501));
    let r = server.post("/v1/customers", &long_value).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_param(), "metadata[k]");
    let max_value = format!("metadata[{}]={}", "k".repeat(40), "v".repeat(500));
    server.post("/v1/customers", &max_value).await.ok();
}

async fn events_record_every_change(server: TestServer) {
    let id = server
        .post("/v1/customers", "email=a%40example.com&metadata[k]=1")
        .await
        .id();
    server
        .call(
            reqwest::Method::POST,
            &format!("/v1/customers/{id}"),
            Some(common::KEY),
            "name=New&metadata[k]=2",
            &[("idempotency-key", "update-1")],
        )
        .await
        .ok();
    // An update that changes nothing records nothing.
    server
        .post(&format!("/v1/customers/{id}"), "name=New")
        .await
        .ok();
    server.delete(&format!("/v1/customers/{id}")).await.ok();

    let events = server.get("/v1/events").await.ok();
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["customer.deleted", "customer.updated", "customer.created"]
    );
    let updated = &events["data"][1];
    assert_eq!(updated["object"], "event");
    assert_eq!(updated["api_version"], stripe_twin::API_VERSION);
    assert_eq!(updated["livemode"], false);
    assert_eq!(updated["pending_webhooks"], 0);
    assert_eq!(updated["data"]["object"]["id"], id.as_str());
    assert_eq!(updated["data"]["object"]["name"], "New");
    assert!(updated["data"]["object"].get("tax").is_none());
    assert_eq!(
        updated["data"]["previous_attributes"],
        json!({"name": null, "metadata": {"k": "1"}})
    );
    assert_eq!(updated["request"]["idempotency_key"], "update-1");
    assert!(
        updated["request"]["id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );
    assert!(events["data"][2]["request"]["idempotency_key"].is_null());
    assert_eq!(
        events["data"][0]["data"]["object"]["email"], "a@example.com",
        "deleted carries the last state"
    );

    let event_id = updated["id"].as_str().unwrap();
    assert!(event_id.starts_with("evt_"));
    assert_eq!(
        server.get(&format!("/v1/events/{event_id}")).await.ok(),
        *updated
    );
    let only = server.get("/v1/events?type=customer.updated").await.ok();
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    let wildcard = server.get("/v1/events?type=customer.*").await.ok();
    assert_eq!(wildcard["data"].as_array().unwrap().len(), 3);
    let several = server
        .get("/v1/events?types[]=customer.created&types[]=customer.deleted")
        .await
        .ok();
    assert_eq!(several["data"].as_array().unwrap().len(), 2);
    let both = server.get("/v1/events?type=a&types[]=b").await;
    assert_eq!(both.status, 400);
    assert_eq!(both.error_code(), "parameters_exclusive");
    assert_eq!(server.get("/v1/events/evt_missing").await.status, 404);
}

async fn list_filters(server: TestServer) {
    for email in ["x@example.com", "y@example.com", "x@example.com"] {
        server
            .post("/v1/customers", &format!("email={}", enc(email)))
            .await
            .ok();
    }
    let xs = server.get("/v1/customers?email=x%40example.com").await.ok();
    assert_eq!(xs["data"].as_array().unwrap().len(), 2);
    assert_eq!(xs["url"], "/v1/customers");
    assert_eq!(xs["object"], "list");
    let now = stripe_twin::clock::wall();
    let recent = server
        .get(&format!("/v1/customers?created[gte]={}", now - 60))
        .await
        .ok();
    assert_eq!(recent["data"].as_array().unwrap().len(), 3);
    let future = server
        .get(&format!("/v1/customers?created[gt]={}", now + 60))
        .await
        .ok();
    assert_eq!(future["data"].as_array().unwrap().len(), 0);
    let first = &recent["data"][2];
    let exact = server
        .get(&format!("/v1/customers?created={}", first["created"]))
        .await
        .ok();
    assert!(
        exact["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == first["id"])
    );
    let limited = server.get("/v1/customers?limit=2").await.ok();
    assert_eq!(limited["data"].as_array().unwrap().len(), 2);
    assert_eq!(limited["has_more"], true);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "created[foo]=1",
        "starting_after=cus_nope",
    ] {
        let r = server.get(&format!("/v1/customers?{bad}")).await;
        assert!(r.status == 400 || r.status == 404, "{bad}: {}", r.body);
    }
}

async fn pagination_both_directions_over_250(server: TestServer) {
    let mut ids = Vec::new();
    for i in 0..250 {
        ids.push(
            server
                .post("/v1/customers", &format!("name=c{i}"))
                .await
                .id(),
        );
    }
    ids.reverse(); // lists are newest first

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(id) => format!("/v1/customers?limit=100&starting_after={id}"),
            None => "/v1/customers?limit=100".to_owned(),
        };
        let page = server.get(&path).await.ok();
        let data = page["data"].as_array().unwrap();
        seen.extend(data.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        after = seen.last().cloned();
        if page["has_more"] == false {
            break;
        }
    }
    assert_eq!(seen, ids);

    let mut backwards: Vec<String> = Vec::new();
    let mut before = ids.last().cloned().unwrap();
    backwards.insert(0, before.clone());
    loop {
        let page = server
            .get(&format!("/v1/customers?limit=30&ending_before={before}"))
            .await
            .ok();
        let data: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(!data.is_empty());
        before = data[0].clone();
        backwards.splice(0..0, data);
        if page["has_more"] == false {
            break;
        }
    }
    assert_eq!(backwards, ids);
}

async fn expand_paths(server: TestServer) {
    let id = server
        .post("/v1/customers", "name=E&expand[]=tax&expand[]=cash_balance")
        .await;
    let body = id.ok();
    assert_eq!(body["tax"]["provider"], "stripe");
    assert_eq!(body["cash_balance"]["object"], "cash_balance");
    let id = body["id"].as_str().unwrap();
    let c = server.get(&format!("/v1/customers/{id}?expand[]=subscriptions&expand[]=sources&expand[]=invoice_settings.default_payment_method")).await.ok();
    assert_eq!(
        c["subscriptions"],
        json!({"object": "list", "data": [], "has_more": false, "url": format!("/v1/customers/{id}/subscriptions")})
    );
    assert_eq!(c["sources"]["object"], "list");
    assert!(c["invoice_settings"]["default_payment_method"].is_null());
    assert!(c.get("tax").is_none());
    // stripe-python sends expand with percent-encoded brackets in query strings.
    let c = server
        .get(&format!("/v1/customers/{id}?expand%5B0%5D=tax"))
        .await
        .ok();
    assert_eq!(c["tax"]["automatic_tax"], "unrecognized_location");
    let list = server.get("/v1/customers?expand[]=data.tax").await.ok();
    assert_eq!(list["data"][0]["tax"]["provider"], "stripe");

    let bad = server
        .get(&format!("/v1/customers/{id}?expand[]=name"))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body["error"]["message"],
        "This property cannot be expanded (name)."
    );
    let deep = server
        .get(&format!("/v1/customers/{id}?expand[]=a.b.c.d.e"))
        .await;
    assert_eq!(deep.status, 400);
    assert!(
        deep.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 4 levels")
    );
    let update = server
        .post(&format!("/v1/customers/{id}"), "name=F&expand[]=tax")
        .await
        .ok();
    assert_eq!(update["tax"]["provider"], "stripe");
}

async fn search_queries(server: TestServer) {
    let people = [
        ("ann@example.com", "Ann Lee", "pro"),
        ("bob@example.com", "Bob Stone", "free"),
        ("cat@example.org", "Cat Lee", "pro"),
    ];
    for (email, name, plan) in people {
        server
            .post(
                "/v1/customers",
                &format!(
                    "email={}&name={}&metadata[plan]={plan}",
                    enc(email),
                    enc(name)
                ),
            )
            .await
            .ok();
    }
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    let q = |query: &str| format!("/v1/customers/search?query={}", enc(query));
    let r = server.get(&q("email:'ANN@example.com'")).await.ok();
    assert_eq!(names(&r), ["Ann Lee"]);
    assert_eq!(r["object"], "search_result");
    assert_eq!(r["url"], "/v1/customers/search");
    assert_eq!(
        names(&server.get(&q("name~\"lee\"")).await.ok()),
        ["Ann Lee", "Cat Lee"]
    );
    assert_eq!(
        names(
            &server
                .get(&q("metadata['plan']:'pro' AND -name:'Ann Lee'"))
                .await
                .ok()
        ),
        ["Cat Lee"]
    );
    assert_eq!(
        names(
            &server
                .get(&q("email:'bob@example.com' OR email:'cat@example.org'"))
                .await
                .ok()
        ),
        ["Bob Stone", "Cat Lee"]
    );
    let now = stripe_twin::clock::wall();
    assert_eq!(
        names(&server.get(&q(&format!("created>{}", now + 100))).await.ok()).len(),
        0
    );
    assert_eq!(
        names(
            &server
                .get(&q(&format!("created>={}", now - 100)))
                .await
                .ok()
        )
        .len(),
        3
    );

    let first = server
        .get(&format!("{}&limit=2", q("name~'lee' OR name~'sto'")))
        .await
        .ok();
    assert_eq!(first["has_more"], true);
    let page = first["next_page"].as_str().unwrap();
    let second = server
        .get(&format!(
            "{}&limit=2&page={page}",
            q("name~'lee' OR name~'sto'")
        ))
        .await
        .ok();
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["has_more"], false);
    assert!(second["next_page"].is_null());

    for bad in [
        "",
        "foo:'x'",
        "name~'le'",
        "email:unquoted",
        "email:'a' AND name:'b' OR name:'c'",
    ] {
        let r = server.get(&q(bad)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.error_param() == "query", "{bad}: {}", r.body);
    }
    assert_eq!(
        server.get("/v1/customers/search").await.error_code(),
        "parameter_missing"
    );
}

async fn validation_errors(server: TestServer) {
    let cases: &[(&str, u16, &str, &str)] = &[
        ("foo=bar", 400, "parameter_unknown", "foo"),
        ("address[zip]=1", 400, "parameter_unknown", "address[zip]"),
        ("balance=abc", 400, "parameter_invalid_integer", "balance"),
        ("tax_exempt=sometimes", 400, "", "tax_exempt"),
        ("email=not-an-email", 400, "email_invalid", "email"),
        (
            "shipping[address][line1]=x",
            400,
            "parameter_missing",
            "shipping[name]",
        ),
        (
            "shipping[name]=x",
            400,
            "parameter_missing",
            "shipping[address]",
        ),
        ("invoice_prefix=ab", 400, "", "invoice_prefix"),
        (
            "invoice_settings[default_payment_method]=pm_nope",
            400,
            "resource_missing",
            "invoice_settings[default_payment_method]",
        ),
        // Coupons are not emulated: refused as such, not as missing.
        ("coupon=SAVE", 400, "", "coupon"),
        ("name[a]=b", 400, "", "name"),
        ("preferred_locales=fr", 400, "", "preferred_locales"),
        ("metadata=x", 400, "", "metadata"),
        ("next_invoice_sequence=0", 400, "", "next_invoice_sequence"),
    ];
    for (body, status, code, param) in cases {
        let r = server.post("/v1/customers", body).await;
        assert_eq!(r.status.as_u16(), *status, "{body}: {}", r.body);
        assert_eq!(r.error_type(), "invalid_request_error", "{body}");
        assert_eq!(r.error_code(), *code, "{body}: {}", r.body);
        assert_eq!(r.error_param(), *param, "{body}: {}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let unknown = server.post("/v1/customers", "foo=bar").await;
    assert_eq!(
        unknown.body["error"]["message"],
        "Received unknown parameter: foo"
    );
    assert_eq!(
        unknown.body["error"]["doc_url"],
        "https://stripe.com/docs/error-codes/parameter-unknown"
    );
    let listed = server.get("/v1/customers").await.ok();
    assert_eq!(
        listed["data"],
        json!([]),
        "no failed request left a customer behind"
    );
}
