//! Products and prices over real HTTP: CRUD, default prices, lookup keys,
//! list filters, search, expand, events, validation; and the inline-price
//! helpers subscriptions and checkout use.

use crate::common;

use common::{KEY, TestServer, enc};
use serde_json::{Value, json};
use stripe_twin::http::api::{AppState, Ctx};
use stripe_twin::http::error::Named;
use stripe_twin::http::params::Params;
use stripe_twin::resources::catalog::prices;

backend_tests!(
    product_create_retrieve_update_delete,
    product_custom_ids,
    product_default_price,
    product_list_filters,
    product_search,
    price_create_retrieve_update,
    price_list_filters,
    price_lookup_keys,
    price_search,
    expand_price_product,
    events_record_every_change,
    bad_inputs_answer_stripe_errors,
    inline_prices_from_price_data,
);

/// The top-level keys of the current fixtures' `product` and `price`.
const PRODUCT_KEYS: &[&str] = &[
    "active",
    "created",
    "default_price",
    "description",
    "id",
    "images",
    "livemode",
    "marketing_features",
    "metadata",
    "name",
    "object",
    "package_dimensions",
    "shippable",
    "statement_descriptor",
    "tax_code",
    "type",
    "unit_label",
    "updated",
    "url",
];
const PRICE_KEYS: &[&str] = &[
    "active",
    "billing_scheme",
    "created",
    "currency",
    "custom_unit_amount",
    "id",
    "livemode",
    "lookup_key",
    "metadata",
    "nickname",
    "object",
    "product",
    "recurring",
    "tax_behavior",
    "tiers_mode",
    "transform_quantity",
    "type",
    "unit_amount",
    "unit_amount_decimal",
];

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

/// The ids of a list's or search result's objects, in order.
fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| o["id"].as_str().expect("an id").to_owned())
        .collect()
}

async fn new_product(server: &TestServer, body: &str) -> String {
    let product = server.post("/v1/products", body).await.ok();
    product["id"].as_str().unwrap().to_owned()
}

async fn new_price(server: &TestServer, body: &str) -> Value {
    server.post("/v1/prices", body).await.ok()
}

async fn product_create_retrieve_update_delete(server: TestServer) {
    let body = format!(
        "name=T-shirt&description={}&images[]={}&marketing_features[0][name]=Soft&marketing_features[1][name]=Gray&package_dimensions[height]=1.5&package_dimensions[length]=10&package_dimensions[weight]=200&package_dimensions[width]=20&shippable=true&statement_descriptor=TSHIRT+CO&tax_code=txcd_99999999&unit_label=shirt&url={}&metadata[sku]=T1",
        enc("Comfortable gray cotton t-shirt"),
        enc("https://example.com/t.png"),
        enc("https://example.com/t"),
    );
    let created = server.post("/v1/products", &body).await.ok();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("prod_") && id.len() == 19, "{id}");
    assert!(id[5..].chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
    assert_eq!(keys(&created), PRODUCT_KEYS, "the fixture's product shape");
    assert_eq!(created["object"], "product");
    assert_eq!(created["name"], "T-shirt");
    assert_eq!(created["description"], "Comfortable gray cotton t-shirt");
    assert_eq!(created["active"], true);
    assert_eq!(created["livemode"], false);
    assert_eq!(created["type"], "service");
    assert_eq!(created["images"], json!(["https://example.com/t.png"]));
    assert_eq!(
        created["marketing_features"],
        json!([{"name": "Soft"}, {"name": "Gray"}])
    );
    let dimensions = &created["package_dimensions"];
    assert_eq!(dimensions["height"].as_f64(), Some(1.5));
    assert_eq!(dimensions["length"].as_f64(), Some(10.0));
    assert_eq!(dimensions["weight"].as_f64(), Some(200.0));
    assert_eq!(dimensions["width"].as_f64(), Some(20.0));
    assert_eq!(created["shippable"], true);
    assert_eq!(created["statement_descriptor"], "TSHIRT CO");
    assert_eq!(created["tax_code"], "txcd_99999999");
    assert_eq!(created["unit_label"], "shirt");
    assert_eq!(created["url"], "https://example.com/t");
    assert_eq!(created["metadata"], json!({"sku": "T1"}));
    assert!(created["default_price"].is_null());
    let now = stripe_twin::clock::wall();
    assert!((created["created"].as_i64().unwrap() - now).abs() < 60);
    assert_eq!(created["updated"], created["created"]);

    // A minimal product: everything optional is null or empty.
    let minimal = server.post("/v1/products", "name=Bare").await.ok();
    assert_eq!(keys(&minimal), PRODUCT_KEYS);
    for field in [
        "description",
        "package_dimensions",
        "shippable",
        "statement_descriptor",
        "tax_code",
        "unit_label",
        "url",
        "default_price",
    ] {
        assert!(minimal[field].is_null(), "{field}: {minimal}");
    }
    assert_eq!(minimal["images"], json!([]));
    assert_eq!(minimal["marketing_features"], json!([]));
    assert_eq!(minimal["metadata"], json!({}));

    let fetched = server.get(&format!("/v1/products/{id}")).await.ok();
    assert_eq!(fetched, created);

    let updated = server
        .post(
            &format!("/v1/products/{id}"),
            "name=T-shirt+2&description=&images=&package_dimensions=&url=&metadata[sku]=&metadata[color]=gray&active=false&shippable=false&marketing_features[0][name]=Organic",
        )
        .await
        .ok();
    assert_eq!(updated["name"], "T-shirt 2");
    assert!(updated["description"].is_null());
    assert!(updated["package_dimensions"].is_null());
    assert!(updated["url"].is_null());
    assert_eq!(updated["images"], json!([]));
    assert_eq!(updated["marketing_features"], json!([{"name": "Organic"}]));
    assert_eq!(updated["metadata"], json!({"color": "gray"}));
    assert_eq!(updated["active"], false);
    assert_eq!(updated["shippable"], false);
    assert_eq!(updated["unit_label"], "shirt", "untouched fields stay");
    assert_eq!(updated["created"], created["created"]);
    assert!(updated["updated"].as_i64() >= created["updated"].as_i64());
    assert_eq!(
        server.get(&format!("/v1/products/{id}")).await.ok(),
        updated
    );

    let deleted = server.delete(&format!("/v1/products/{id}")).await.ok();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "product", "deleted": true})
    );
    let missing = server.get(&format!("/v1/products/{id}")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code(), "resource_missing");
    assert_eq!(missing.error_param(), "id");
    assert_eq!(
        missing.body["error"]["message"],
        format!("No such product: '{id}'")
    );
    assert_eq!(
        server.delete(&format!("/v1/products/{id}")).await.status,
        404
    );
    assert_eq!(
        server
            .post(&format!("/v1/products/{id}"), "name=x")
            .await
            .status,
        404
    );
    let listed = server.get("/v1/products").await.ok();
    assert_eq!(ids(&listed), [minimal["id"].as_str().unwrap()]);
}

async fn product_custom_ids(server: TestServer) {
    let custom = server
        .post("/v1/products", "id=gold-plan_2024&name=Gold")
        .await
        .ok();
    assert_eq!(custom["id"], "gold-plan_2024");
    assert_eq!(
        server.get("/v1/products/gold-plan_2024").await.ok()["name"],
        "Gold"
    );
    let again = server
        .post("/v1/products", "id=gold-plan_2024&name=Other")
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(again.error_type(), "invalid_request_error");
    assert_eq!(again.error_code(), "resource_already_exists");
    assert_eq!(again.error_param(), "id");
    assert_eq!(again.body["error"]["message"], "Product already exists.");
    // A deleted product's id stays taken.
    server.delete("/v1/products/gold-plan_2024").await.ok();
    let reuse = server
        .post("/v1/products", "id=gold-plan_2024&name=Again")
        .await;
    assert_eq!(reuse.error_code(), "resource_already_exists");
    let listed = server.get("/v1/products").await.ok();
    assert_eq!(ids(&listed), Vec::<String>::new());
}

async fn product_default_price(server: TestServer) {
    let product = server
        .post(
            "/v1/products",
            "name=Plan&default_price_data[currency]=USD&default_price_data[unit_amount]=1500&default_price_data[recurring][interval]=month&default_price_data[tax_behavior]=exclusive",
        )
        .await
        .ok();
    let id = product["id"].as_str().unwrap().to_owned();
    let first = product["default_price"].as_str().unwrap().to_owned();
    assert!(first.starts_with("price_"), "{first}");
    let price = server.get(&format!("/v1/prices/{first}")).await.ok();
    assert_eq!(price["product"], id.as_str());
    assert_eq!(price["currency"], "usd");
    assert_eq!(price["unit_amount"], 1500);
    assert_eq!(price["unit_amount_decimal"], "1500");
    assert_eq!(price["type"], "recurring");
    assert_eq!(price["recurring"]["interval"], "month");
    assert_eq!(price["recurring"]["interval_count"], 1);
    assert_eq!(price["tax_behavior"], "exclusive");
    assert_eq!(price["active"], true);
    // default_price_data makes a user-created price: it is listed.
    let listed = server.get(&format!("/v1/prices?product={id}")).await.ok();
    assert_eq!(ids(&listed), [first.as_str()]);

    let expanded = server
        .get(&format!("/v1/products/{id}?expand[]=default_price"))
        .await
        .ok();
    assert_eq!(expanded["default_price"]["id"], first.as_str());
    assert_eq!(expanded["default_price"]["object"], "price");
    assert_eq!(expanded["default_price"]["unit_amount"], 1500);

    let second = new_price(
        &server,
        &format!("currency=usd&unit_amount=2500&product={id}"),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let switched = server
        .post(
            &format!("/v1/products/{id}"),
            &format!("default_price={second}"),
        )
        .await
        .ok();
    assert_eq!(switched["default_price"], second.as_str());

    let other_product = new_product(&server, "name=Other").await;
    let foreign = new_price(
        &server,
        &format!("currency=usd&unit_amount=1&product={other_product}"),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = server
        .post(
            &format!("/v1/products/{id}"),
            &format!("default_price={foreign}"),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.error_param(), "default_price");
    let unknown = server
        .post(&format!("/v1/products/{id}"), "default_price=price_nope")
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.error_code(), "resource_missing");
    assert_eq!(unknown.error_param(), "default_price");
    assert_eq!(
        unknown.body["error"]["message"],
        "No such price: 'price_nope'"
    );

    // The default price cannot be archived; another one can.
    let archive_default = server
        .post(&format!("/v1/prices/{second}"), "active=false")
        .await;
    assert_eq!(archive_default.status, 400);
    assert_eq!(archive_default.error_param(), "active");
    assert_eq!(
        archive_default.body["error"]["message"],
        "This price cannot be archived because it is the default price of its product."
    );
    let archived = server
        .post(&format!("/v1/prices/{first}"), "active=false")
        .await
        .ok();
    assert_eq!(archived["active"], false);
    let archived_default = server
        .post(
            &format!("/v1/products/{id}"),
            &format!("default_price={first}"),
        )
        .await;
    assert_eq!(archived_default.status, 400);
    assert_eq!(archived_default.error_param(), "default_price");

    let unset = server
        .post(&format!("/v1/products/{id}"), "default_price=")
        .await
        .ok();
    assert!(unset["default_price"].is_null());
    server
        .post(&format!("/v1/prices/{second}"), "active=false")
        .await
        .ok();

    // Prices, archived or not, keep their product from being deleted.
    let refused = server.delete(&format!("/v1/products/{id}")).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.error_type(), "invalid_request_error");
    assert_eq!(
        refused.body["error"]["message"],
        "This product cannot be deleted because it has one or more user-created prices."
    );
    assert_eq!(
        server.get(&format!("/v1/products/{id}")).await.ok()["id"],
        id.as_str()
    );
    // A product without prices can be deleted.
    let lonely = new_product(&server, "name=Lonely").await;
    server.delete(&format!("/v1/products/{lonely}")).await.ok();
}

async fn product_list_filters(server: TestServer) {
    let a = new_product(
        &server,
        &format!("name=A&shippable=true&url={}", enc("https://a.example")),
    )
    .await;
    let b = new_product(&server, "name=B&active=false").await;
    let c = new_product(&server, "name=C&shippable=false").await;
    let d = new_product(&server, "name=D").await;
    let list = |query: &str| {
        let path = format!("/v1/products?{query}");
        let server = &server;
        async move { server.get(&path).await.ok() }
    };
    let all = list("").await;
    assert_eq!(ids(&all), [d.as_str(), c.as_str(), b.as_str(), a.as_str()]);
    assert_eq!(all["object"], "list");
    assert_eq!(all["url"], "/v1/products");
    assert_eq!(all["has_more"], false);
    assert_eq!(
        ids(&list("active=true").await),
        [d.as_str(), c.as_str(), a.as_str()]
    );
    assert_eq!(ids(&list("active=false").await), [b.as_str()]);
    assert_eq!(
        ids(&list(&format!("ids[]={a}&ids[]={c}")).await),
        [c.as_str(), a.as_str()]
    );
    assert_eq!(ids(&list("shippable=true").await), [a.as_str()]);
    assert_eq!(ids(&list("shippable=false").await), [c.as_str()]);
    assert_eq!(
        ids(&list(&format!("url={}", enc("https://a.example"))).await),
        [a.as_str()]
    );
    assert_eq!(
        ids(&list(&format!("active=true&ids[]={b}&ids[]={d}")).await),
        [d.as_str()]
    );
    let now = stripe_twin::clock::wall();
    assert_eq!(
        ids(&list(&format!("created[gte]={}", now - 60)).await).len(),
        4
    );
    assert!(ids(&list(&format!("created[gt]={}", now + 60)).await).is_empty());
    let page = list("limit=2").await;
    assert_eq!(ids(&page), [d.as_str(), c.as_str()]);
    assert_eq!(page["has_more"], true);
    let next = list(&format!("limit=2&starting_after={c}")).await;
    assert_eq!(ids(&next), [b.as_str(), a.as_str()]);
    assert_eq!(next["has_more"], false);
    let before = list(&format!("ending_before={b}")).await;
    assert_eq!(ids(&before), [d.as_str(), c.as_str()]);
    for (query, param) in [
        ("active=maybe", "active"),
        ("shippable=1", "shippable"),
        ("limit=0", "limit"),
        ("foo=bar", "foo"),
        ("starting_after=prod_nope", "starting_after"),
    ] {
        let r = server.get(&format!("/v1/products?{query}")).await;
        assert!(r.status == 400 || r.status == 404, "{query}: {}", r.body);
        assert_eq!(r.error_param(), param, "{query}: {}", r.body);
    }
}

async fn product_search(server: TestServer) {
    let gold = new_product(
        &server,
        "name=Gold+plan&description=The+best&metadata[tier]=gold",
    )
    .await;
    let silver = new_product(&server, "name=Silver+plan&active=false&shippable=true").await;
    let bronze = new_product(
        &server,
        &format!("name=Bronze+thing&url={}", enc("https://b.example")),
    )
    .await;
    let search = |query: &str| {
        let path = format!("/v1/products/search?query={}", enc(query));
        let server = &server;
        async move {
            let mut found = ids(&server.get(&path).await.ok());
            found.sort();
            found
        }
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<String>>()
    };
    assert_eq!(search("name~'plan'").await, sorted(vec![&gold, &silver]));
    assert_eq!(search("active:'false'").await, [silver.as_str()]);
    assert_eq!(search("active:'true'").await, sorted(vec![&gold, &bronze]));
    assert_eq!(search("-active:'true'").await, [silver.as_str()]);
    assert_eq!(search("shippable:'true'").await, [silver.as_str()]);
    assert_eq!(search("metadata['tier']:'gold'").await, [gold.as_str()]);
    assert_eq!(search("description:'the BEST'").await, [gold.as_str()]);
    assert_eq!(search("url:'https://b.example'").await, [bronze.as_str()]);
    assert_eq!(
        search("name:'gold plan' AND active:'true'").await,
        [gold.as_str()]
    );
    assert_eq!(
        search("name:'Bronze thing' OR shippable:'true'").await,
        sorted(vec![&bronze, &silver])
    );
    let now = stripe_twin::clock::wall();
    assert!(search(&format!("created>{}", now + 100)).await.is_empty());
    assert_eq!(search(&format!("created>={}", now - 100)).await.len(), 3);

    let first = server
        .get(&format!(
            "/v1/products/search?query={}&limit=2",
            enc("created>0")
        ))
        .await
        .ok();
    assert_eq!(first["object"], "search_result");
    assert_eq!(first["url"], "/v1/products/search");
    assert_eq!(ids(&first), [bronze.as_str(), silver.as_str()]);
    assert_eq!(first["has_more"], true);
    let page = first["next_page"].as_str().unwrap();
    let second = server
        .get(&format!(
            "/v1/products/search?query={}&limit=2&page={page}",
            enc("created>0")
        ))
        .await
        .ok();
    assert_eq!(ids(&second), [gold.as_str()]);
    assert_eq!(second["has_more"], false);
    assert!(second["next_page"].is_null());

    for bad in [
        "active~'tru'",
        "active:'maybe'",
        "currency:'usd'",
        "name~'pl'",
        "name:plan",
        "",
    ] {
        let r = server
            .get(&format!("/v1/products/search?query={}", enc(bad)))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.error_param(), "query", "{bad}: {}", r.body);
    }
    let missing = server.get("/v1/products/search").await;
    assert_eq!(missing.error_code(), "parameter_missing");
    assert_eq!(missing.error_param(), "query");
}

async fn price_create_retrieve_update(server: TestServer) {
    let product = new_product(&server, "name=Widget").await;
    let created = new_price(
        &server,
        &format!(
            "currency=EUR&unit_amount=999&product={product}&nickname=Basic&metadata[k]=v&lookup_key=basic"
        ),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("price_") && id.len() == 30, "{id}");
    assert_eq!(keys(&created), PRICE_KEYS, "the fixture's price shape");
    assert_eq!(created["object"], "price");
    assert_eq!(created["currency"], "eur", "currencies are lowercased");
    assert_eq!(created["product"], product.as_str());
    assert_eq!(created["type"], "one_time");
    assert!(created["recurring"].is_null());
    assert_eq!(created["billing_scheme"], "per_unit");
    assert_eq!(created["tax_behavior"], "unspecified");
    assert_eq!(created["unit_amount"], 999);
    assert_eq!(created["unit_amount_decimal"], "999");
    assert_eq!(created["active"], true);
    assert_eq!(created["livemode"], false);
    assert_eq!(created["nickname"], "Basic");
    assert_eq!(created["lookup_key"], "basic");
    assert_eq!(created["metadata"], json!({"k": "v"}));
    for field in ["custom_unit_amount", "tiers_mode", "transform_quantity"] {
        assert!(created[field].is_null(), "{field}");
    }
    assert_eq!(server.get(&format!("/v1/prices/{id}")).await.ok(), created);

    let recurring = new_price(
        &server,
        &format!(
            "currency=usd&unit_amount_decimal=01234.5600&product={product}&recurring[interval]=week&recurring[interval_count]=2&recurring[trial_period_days]=7&transform_quantity[divide_by]=10&transform_quantity[round]=up&active=false&tax_behavior=inclusive"
        ),
    )
    .await;
    assert_eq!(recurring["type"], "recurring");
    assert!(recurring["unit_amount"].is_null(), "not a whole amount");
    assert_eq!(recurring["unit_amount_decimal"], "1234.56");
    assert_eq!(
        recurring["recurring"],
        json!({"interval": "week", "interval_count": 2, "meter": null, "trial_period_days": 7, "usage_type": "licensed"})
    );
    assert_eq!(
        recurring["transform_quantity"],
        json!({"divide_by": 10, "round": "up"})
    );
    assert_eq!(recurring["active"], false);
    assert_eq!(recurring["tax_behavior"], "inclusive");

    let whole = new_price(
        &server,
        &format!("currency=usd&unit_amount_decimal=2500&product={product}"),
    )
    .await;
    assert_eq!(whole["unit_amount"], 2500);
    assert_eq!(whole["unit_amount_decimal"], "2500");
    let free = new_price(
        &server,
        &format!("currency=jpy&unit_amount=0&product={product}"),
    )
    .await;
    assert_eq!(free["unit_amount"], 0);
    let max = new_price(
        &server,
        &format!("currency=usd&unit_amount=99999999&product={product}"),
    )
    .await;
    assert_eq!(max["unit_amount"], 99_999_999);
    let metered = new_price(
        &server,
        &format!(
            "currency=usd&unit_amount=5&product={product}&recurring[interval]=month&recurring[usage_type]=metered&recurring[meter]=mtr_123"
        ),
    )
    .await;
    assert_eq!(metered["recurring"]["usage_type"], "metered");
    assert_eq!(metered["recurring"]["meter"], "mtr_123");
    let three_years = new_price(
        &server,
        &format!(
            "currency=usd&unit_amount=5&product={product}&recurring[interval]=month&recurring[interval_count]=36"
        ),
    )
    .await;
    assert_eq!(three_years["recurring"]["interval_count"], 36);

    // product_data creates the product along with the price.
    let inline = new_price(
        &server,
        "currency=usd&unit_amount=100&product_data[name]=Made+inline&product_data[metadata][a]=b&product_data[unit_label]=seat&product_data[active]=false",
    )
    .await;
    let made = inline["product"].as_str().unwrap();
    assert!(made.starts_with("prod_"), "{made}");
    let made = server.get(&format!("/v1/products/{made}")).await.ok();
    assert_eq!(made["name"], "Made inline");
    assert_eq!(made["metadata"], json!({"a": "b"}));
    assert_eq!(made["unit_label"], "seat");
    assert_eq!(made["active"], false);
    let custom = new_price(
        &server,
        "currency=usd&unit_amount=100&product_data[name]=Custom&product_data[id]=custom_prod",
    )
    .await;
    assert_eq!(custom["product"], "custom_prod");
    let taken = server
        .post(
            "/v1/prices",
            "currency=usd&unit_amount=100&product_data[name]=Again&product_data[id]=custom_prod",
        )
        .await;
    assert_eq!(taken.status, 400);
    assert_eq!(taken.error_code(), "resource_already_exists");

    let updated = server
        .post(
            &format!("/v1/prices/{id}"),
            "nickname=&metadata[k]=&metadata[n]=1&tax_behavior=exclusive&active=false",
        )
        .await
        .ok();
    assert!(updated["nickname"].is_null());
    assert_eq!(updated["metadata"], json!({"n": "1"}));
    assert_eq!(updated["tax_behavior"], "exclusive");
    assert_eq!(updated["active"], false);
    assert_eq!(updated["unit_amount"], 999, "amounts never change");
    assert_eq!(server.get(&format!("/v1/prices/{id}")).await.ok(), updated);
    let reactivated = server
        .post(&format!("/v1/prices/{id}"), "active=true&nickname=Again")
        .await
        .ok();
    assert_eq!(reactivated["active"], true);
    assert_eq!(reactivated["nickname"], "Again");
    // Once exclusive or inclusive, tax behavior is fixed.
    let same = server
        .post(&format!("/v1/prices/{id}"), "tax_behavior=exclusive")
        .await;
    assert_eq!(same.status, 200);
    let changed = server
        .post(&format!("/v1/prices/{id}"), "tax_behavior=inclusive")
        .await;
    assert_eq!(changed.status, 400);
    assert_eq!(changed.error_param(), "tax_behavior");
    for body in [
        "unit_amount=5",
        "currency=eur",
        "product=prod_x",
        "recurring[interval]=day",
    ] {
        let r = server.post(&format!("/v1/prices/{id}"), body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.error_code(), "parameter_unknown", "{body}");
    }

    let missing = server.get("/v1/prices/price_nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code(), "resource_missing");
    assert_eq!(missing.error_param(), "price");
    assert_eq!(
        missing.body["error"]["message"],
        "No such price: 'price_nope'"
    );
    assert_eq!(
        server
            .post("/v1/prices/price_nope", "active=false")
            .await
            .status,
        404
    );
    let no_delete = server.delete(&format!("/v1/prices/{id}")).await;
    assert_eq!(no_delete.status, 404);
    assert!(
        no_delete.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unrecognized request URL (DELETE: /v1/prices/")
    );
}

async fn price_list_filters(server: TestServer) {
    let prod1 = new_product(&server, "name=One").await;
    let prod2 = new_product(&server, "name=Two").await;
    let id = |v: Value| v["id"].as_str().unwrap().to_owned();
    let p1 = id(new_price(
        &server,
        &format!("currency=usd&unit_amount=100&product={prod1}&lookup_key=a"),
    )
    .await);
    let p2 = id(new_price(
        &server,
        &format!(
            "currency=eur&unit_amount=200&product={prod1}&lookup_key=b&recurring[interval]=month"
        ),
    )
    .await);
    let p3 = id(new_price(
        &server,
        &format!(
            "currency=usd&unit_amount=300&product={prod2}&recurring[interval]=year&active=false"
        ),
    )
    .await);
    let p4 = id(new_price(
        &server,
        &format!(
            "currency=usd&unit_amount=400&product={prod2}&recurring[interval]=month&recurring[usage_type]=metered&recurring[meter]=mtr_1"
        ),
    )
    .await);
    let list = |query: &str| {
        let path = format!("/v1/prices?{query}");
        let server = &server;
        async move { server.get(&path).await.ok() }
    };
    let all = list("").await;
    assert_eq!(
        ids(&all),
        [p4.as_str(), p3.as_str(), p2.as_str(), p1.as_str()]
    );
    assert_eq!(all["url"], "/v1/prices");
    assert_eq!(
        ids(&list(&format!("product={prod1}")).await),
        [p2.as_str(), p1.as_str()]
    );
    assert_eq!(
        ids(&list(&format!("product={prod2}")).await),
        [p4.as_str(), p3.as_str()]
    );
    assert_eq!(ids(&list("active=false").await), [p3.as_str()]);
    assert_eq!(
        ids(&list("active=true").await),
        [p4.as_str(), p2.as_str(), p1.as_str()]
    );
    assert_eq!(ids(&list("type=one_time").await), [p1.as_str()]);
    assert_eq!(
        ids(&list("type=recurring").await),
        [p4.as_str(), p3.as_str(), p2.as_str()]
    );
    assert_eq!(
        ids(&list("currency=usd").await),
        [p4.as_str(), p3.as_str(), p1.as_str()]
    );
    assert_eq!(ids(&list("currency=EUR").await), [p2.as_str()]);
    assert_eq!(
        ids(&list("lookup_keys[]=a&lookup_keys[]=b").await),
        [p2.as_str(), p1.as_str()]
    );
    assert_eq!(ids(&list("lookup_keys[]=b").await), [p2.as_str()]);
    assert!(ids(&list("lookup_keys[]=nope").await).is_empty());
    assert_eq!(
        ids(&list("recurring[interval]=month").await),
        [p4.as_str(), p2.as_str()]
    );
    assert_eq!(ids(&list("recurring[interval]=year").await), [p3.as_str()]);
    assert!(ids(&list("recurring[interval]=day").await).is_empty());
    assert_eq!(
        ids(&list("recurring[usage_type]=metered").await),
        [p4.as_str()]
    );
    assert_eq!(
        ids(&list("recurring[usage_type]=licensed").await),
        [p3.as_str(), p2.as_str()]
    );
    assert_eq!(
        ids(&list(&format!("product={prod2}&type=recurring&active=true")).await),
        [p4.as_str()]
    );
    let now = stripe_twin::clock::wall();
    assert!(ids(&list(&format!("created[lt]={}", now - 3600)).await).is_empty());
    assert_eq!(
        ids(&list(&format!("created[gte]={}", now - 3600)).await).len(),
        4
    );
    let page = list("limit=3").await;
    assert_eq!(ids(&page), [p4.as_str(), p3.as_str(), p2.as_str()]);
    assert_eq!(page["has_more"], true);
    assert_eq!(
        ids(&list(&format!("limit=3&starting_after={p2}")).await),
        [p1.as_str()]
    );

    let eleven = (0..11)
        .map(|i| format!("lookup_keys[]=k{i}"))
        .collect::<Vec<_>>()
        .join("&");
    for (query, status, code, param) in [
        ("product=prod_nope", 400, "resource_missing", "product"),
        ("type=weekly", 400, "", "type"),
        (
            "recurring[interval]=fortnight",
            400,
            "",
            "recurring[interval]",
        ),
        (
            "recurring[foo]=1",
            400,
            "parameter_unknown",
            "recurring[foo]",
        ),
        ("currency=xyz", 400, "", "currency"),
        (eleven.as_str(), 400, "", "lookup_keys"),
        ("active=yes", 400, "", "active"),
    ] {
        let r = server.get(&format!("/v1/prices?{query}")).await;
        assert_eq!(r.status.as_u16(), status, "{query}: {}", r.body);
        assert_eq!(r.error_code(), code, "{query}: {}", r.body);
        assert_eq!(r.error_param(), param, "{query}: {}", r.body);
    }
}

async fn price_lookup_keys(server: TestServer) {
    let product = new_product(&server, "name=Keys").await;
    let price = |extra: &str| format!("currency=usd&unit_amount=100&product={product}{extra}");
    let holder = new_price(&server, &price("&lookup_key=standard")).await;
    let holder_id = holder["id"].as_str().unwrap().to_owned();

    let taken = server
        .post("/v1/prices", &price("&lookup_key=standard"))
        .await;
    assert_eq!(taken.status, 400);
    assert_eq!(taken.error_type(), "invalid_request_error");
    assert_eq!(taken.error_param(), "lookup_key");
    assert_eq!(
        taken.body["error"]["message"],
        format!("A price (`{holder_id}`) already uses that lookup key.")
    );
    // An archived holder still holds its key.
    server
        .post(&format!("/v1/prices/{holder_id}"), "active=false")
        .await
        .ok();
    let still = server
        .post("/v1/prices", &price("&lookup_key=standard"))
        .await;
    assert_eq!(still.status, 400);
    server
        .post(&format!("/v1/prices/{holder_id}"), "active=true")
        .await
        .ok();

    let moved = new_price(
        &server,
        &price("&lookup_key=standard&transfer_lookup_key=true"),
    )
    .await;
    let moved_id = moved["id"].as_str().unwrap().to_owned();
    assert_eq!(moved["lookup_key"], "standard");
    let old = server.get(&format!("/v1/prices/{holder_id}")).await.ok();
    assert!(old["lookup_key"].is_null());
    assert_eq!(
        old["active"], true,
        "a transfer does not archive the holder"
    );
    let events = server
        .get("/v1/events?type=price.updated&limit=1")
        .await
        .ok();
    let event = &events["data"][0];
    assert_eq!(event["data"]["object"]["id"], holder_id.as_str());
    assert_eq!(
        event["data"]["previous_attributes"],
        json!({"lookup_key": "standard"})
    );
    assert_eq!(
        ids(&server.get("/v1/prices?lookup_keys[]=standard").await.ok()),
        [moved_id.as_str()]
    );

    // On update: refused without transfer_lookup_key, moved with it.
    let third = new_price(&server, &price("")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = server
        .post(&format!("/v1/prices/{third}"), "lookup_key=standard")
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["error"]["message"],
        format!("A price (`{moved_id}`) already uses that lookup key.")
    );
    let claimed = server
        .post(
            &format!("/v1/prices/{third}"),
            "lookup_key=standard&transfer_lookup_key=true",
        )
        .await
        .ok();
    assert_eq!(claimed["lookup_key"], "standard");
    assert!(server.get(&format!("/v1/prices/{moved_id}")).await.ok()["lookup_key"].is_null());
    // Sending a price's own key again is no conflict; "" removes it.
    server
        .post(&format!("/v1/prices/{third}"), "lookup_key=standard")
        .await
        .ok();
    let cleared = server
        .post(&format!("/v1/prices/{third}"), "lookup_key=")
        .await
        .ok();
    assert!(cleared["lookup_key"].is_null());
    assert!(ids(&server.get("/v1/prices?lookup_keys[]=standard").await.ok()).is_empty());
    new_price(&server, &price("&lookup_key=standard")).await;

    let long = server
        .post(
            "/v1/prices",
            &price(&format!("&lookup_key={}", "k".repeat(201))),
        )
        .await;
    assert_eq!(long.status, 400);
    assert_eq!(long.error_param(), "lookup_key");
    new_price(&server, &price(&format!("&lookup_key={}", "k".repeat(200)))).await;
}

async fn price_search(server: TestServer) {
    let product = new_product(&server, "name=Searched").await;
    let other = new_product(&server, "name=Other").await;
    let id = |v: Value| v["id"].as_str().unwrap().to_owned();
    let alpha = id(new_price(
        &server,
        &format!(
            "currency=usd&unit_amount=100&product={product}&lookup_key=alpha&metadata[plan]=pro"
        ),
    )
    .await);
    let euro = id(new_price(
        &server,
        &format!("currency=eur&unit_amount=200&product={other}&recurring[interval]=month"),
    )
    .await);
    let archived = id(new_price(
        &server,
        &format!(
            "currency=usd&unit_amount=300&product={product}&recurring[interval]=year&active=false"
        ),
    )
    .await);
    let search = |query: &str| {
        let path = format!("/v1/prices/search?query={}", enc(query));
        let server = &server;
        async move { ids(&server.get(&path).await.ok()) }
    };
    assert_eq!(
        search("active:'true'").await,
        [euro.as_str(), alpha.as_str()]
    );
    assert_eq!(search("-active:'true'").await, [archived.as_str()]);
    assert_eq!(
        search("currency:'usd'").await,
        [archived.as_str(), alpha.as_str()]
    );
    assert_eq!(
        search("type:'recurring' AND currency:'eur'").await,
        [euro.as_str()]
    );
    assert_eq!(search("type:'one_time'").await, [alpha.as_str()]);
    assert_eq!(search("lookup_key:'alpha'").await, [alpha.as_str()]);
    assert_eq!(
        search(&format!("product:'{product}'")).await,
        [archived.as_str(), alpha.as_str()]
    );
    assert_eq!(search("metadata['plan']:'pro'").await, [alpha.as_str()]);
    assert_eq!(
        search("lookup_key:'alpha' OR currency:'eur'").await,
        [euro.as_str(), alpha.as_str()]
    );
    let now = stripe_twin::clock::wall();
    assert_eq!(search(&format!("created>={}", now - 100)).await.len(), 3);
    let result = server
        .get(&format!("/v1/prices/search?query={}", enc("active:'true'")))
        .await
        .ok();
    assert_eq!(result["object"], "search_result");
    assert_eq!(result["url"], "/v1/prices/search");
    for bad in [
        "name:'x'",
        "active:'maybe'",
        "currency~'us'",
        "shippable:'true'",
    ] {
        let r = server
            .get(&format!("/v1/prices/search?query={}", enc(bad)))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.error_param(), "query", "{bad}: {}", r.body);
    }
    let r = server
        .get(&format!(
            "/v1/prices/search?query={}&limit=101",
            enc("active:'true'")
        ))
        .await;
    assert_eq!(r.error_param(), "limit");
}

async fn expand_price_product(server: TestServer) {
    let product = new_product(&server, "name=Expanded&metadata[x]=1").await;
    let created = server
        .post(
            "/v1/prices",
            &format!("currency=usd&unit_amount=100&product={product}&expand[]=product"),
        )
        .await
        .ok();
    assert_eq!(created["product"]["id"], product.as_str());
    assert_eq!(created["product"]["object"], "product");
    assert_eq!(created["product"]["name"], "Expanded");
    let price = created["id"].as_str().unwrap().to_owned();
    let fetched = server.get(&format!("/v1/prices/{price}")).await.ok();
    assert_eq!(
        fetched["product"],
        product.as_str(),
        "unexpanded by default"
    );
    let fetched = server
        .get(&format!("/v1/prices/{price}?expand[]=product"))
        .await
        .ok();
    assert_eq!(fetched["product"]["metadata"], json!({"x": "1"}));
    let listed = server.get("/v1/prices?expand[]=data.product").await.ok();
    assert_eq!(listed["data"][0]["product"]["name"], "Expanded");
    let searched = server
        .get(&format!(
            "/v1/prices/search?query={}&expand[]=data.product",
            enc("active:'true'")
        ))
        .await
        .ok();
    assert_eq!(searched["data"][0]["product"]["id"], product.as_str());
    server
        .post(
            &format!("/v1/products/{product}"),
            &format!("default_price={price}"),
        )
        .await
        .ok();
    let nested = server
        .get(&format!(
            "/v1/products/{product}?expand[]=default_price.product"
        ))
        .await
        .ok();
    assert_eq!(nested["default_price"]["id"], price.as_str());
    assert_eq!(nested["default_price"]["product"]["id"], product.as_str());
    let bad = server
        .get(&format!("/v1/prices/{price}?expand[]=currency"))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error_param(), "expand");
}

async fn events_record_every_change(server: TestServer) {
    let product = new_product(&server, "name=Evented").await;
    server
        .call(
            reqwest::Method::POST,
            &format!("/v1/products/{product}"),
            Some(KEY),
            "name=Renamed&metadata[k]=1",
            &[("idempotency-key", "rename-1")],
        )
        .await
        .ok();
    // An update that changes nothing records nothing.
    server
        .post(&format!("/v1/products/{product}"), "name=Renamed")
        .await
        .ok();
    let price = new_price(
        &server,
        &format!("currency=usd&unit_amount=100&product={product}"),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .post(&format!("/v1/prices/{price}"), "metadata[a]=b")
        .await
        .ok();
    let doomed = new_product(&server, "name=Doomed").await;
    server.delete(&format!("/v1/products/{doomed}")).await.ok();
    server
        .post(
            "/v1/products",
            "name=Bundled&default_price_data[currency]=usd&default_price_data[unit_amount]=5",
        )
        .await
        .ok();

    assert_eq!(
        server.event_types("limit=100").await,
        [
            "price.created",
            "product.created",
            "product.deleted",
            "product.created",
            "price.updated",
            "price.created",
            "product.updated",
            "product.created",
        ]
    );
    let events = server.get("/v1/events?type=product.updated").await.ok();
    let updated = &events["data"][0];
    assert_eq!(updated["data"]["object"]["name"], "Renamed");
    let previous = &updated["data"]["previous_attributes"];
    assert_eq!(previous["name"], "Evented");
    assert_eq!(previous["metadata"], json!({"k": null}));
    assert_eq!(updated["request"]["idempotency_key"], "rename-1");
    let deleted = server.get("/v1/events?type=product.deleted").await.ok();
    assert_eq!(deleted["data"][0]["data"]["object"]["id"], doomed.as_str());
    assert_eq!(deleted["data"][0]["data"]["object"]["name"], "Doomed");
    let price_updated = server.get("/v1/events?type=price.updated").await.ok();
    assert_eq!(
        price_updated["data"][0]["data"]["previous_attributes"],
        json!({"metadata": {"a": null}})
    );
    let created = server.get("/v1/events?type=price.created").await.ok();
    let bundled = &created["data"][0]["data"]["object"];
    assert_eq!(bundled["unit_amount"], 5);
    assert_eq!(
        keys(bundled),
        PRICE_KEYS,
        "events carry the object as shown"
    );
    let product_created = server.get("/v1/events?type=product.created").await.ok();
    assert_eq!(
        product_created["data"][0]["data"]["object"]["default_price"],
        bundled["id"]
    );
}

async fn bad_inputs_answer_stripe_errors(server: TestServer) {
    let product = new_product(&server, "name=Valid").await;
    let taken = new_price(
        &server,
        &format!("currency=usd&unit_amount=1&product={product}&lookup_key=taken"),
    )
    .await;
    let ok = |extra: &str| format!("currency=usd&unit_amount=100&product={product}{extra}");
    let month = |count: &str| {
        ok(&format!(
            "&recurring[interval]=month&recurring[interval_count]={count}"
        ))
    };
    let nine_images = (0..9)
        .map(|i| format!("images[]=https%3A%2F%2Fx.example%2F{i}.png"))
        .collect::<Vec<_>>()
        .join("&");
    let product_path = format!("/v1/products/{product}");
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        // Prices.
        ("/v1/prices", format!("currency=xyz&unit_amount=100&product={product}"), 400, "", "currency"),
        ("/v1/prices", format!("currency[]=usd&unit_amount=100&product={product}"), 400, "", "currency"),
        ("/v1/prices", format!("unit_amount=100&product={product}"), 400, "parameter_missing", "currency"),
        ("/v1/prices", ok("").replace("unit_amount=100", "unit_amount=-1"), 400, "", "unit_amount"),
        ("/v1/prices", ok("").replace("unit_amount=100", "unit_amount=100000000"), 400, "", "unit_amount"),
        ("/v1/prices", ok("").replace("unit_amount=100", "unit_amount=abc"), 400, "parameter_invalid_integer", "unit_amount"),
        ("/v1/prices", ok("&unit_amount_decimal=100"), 400, "parameters_exclusive", "unit_amount"),
        ("/v1/prices", format!("currency=usd&product={product}"), 400, "parameter_missing", "unit_amount"),
        ("/v1/prices", format!("currency=usd&unit_amount_decimal=1.2.3&product={product}"), 400, "", "unit_amount_decimal"),
        ("/v1/prices", format!("currency=usd&unit_amount_decimal=-5&product={product}"), 400, "", "unit_amount_decimal"),
        ("/v1/prices", format!("currency=usd&unit_amount_decimal=0.1234567890123&product={product}"), 400, "", "unit_amount_decimal"),
        ("/v1/prices", "currency=usd&unit_amount=100".to_owned(), 400, "parameter_missing", "product"),
        ("/v1/prices", ok("&product_data[name]=x"), 400, "parameters_exclusive", "product"),
        ("/v1/prices", "currency=usd&unit_amount=100&product=prod_nope".to_owned(), 400, "resource_missing", "product"),
        ("/v1/prices", "currency=usd&unit_amount=100&product_data[name]=x&product_data[foo]=y".to_owned(), 400, "parameter_unknown", "product_data[foo]"),
        ("/v1/prices", "currency=usd&unit_amount=100&product_data[active]=true".to_owned(), 400, "parameter_missing", "product_data[name]"),
        ("/v1/prices", "currency=usd&unit_amount=100&product_data[name]=x&product_data[statement_descriptor]=12345".to_owned(), 400, "", "product_data[statement_descriptor]"),
        ("/v1/prices", ok("&recurring[interval]=fortnight"), 400, "", "recurring[interval]"),
        ("/v1/prices", ok("&recurring[interval_count]=2"), 400, "parameter_missing", "recurring[interval]"),
        ("/v1/prices", month("37"), 400, "", "recurring[interval_count]"),
        ("/v1/prices", month("0"), 400, "", "recurring[interval_count]"),
        ("/v1/prices", month("x"), 400, "parameter_invalid_integer", "recurring[interval_count]"),
        ("/v1/prices", ok("&recurring[interval]=day&recurring[interval_count]=1096"), 400, "", "recurring[interval_count]"),
        ("/v1/prices", ok("&recurring[interval]=week&recurring[interval_count]=157"), 400, "", "recurring[interval_count]"),
        ("/v1/prices", ok("&recurring[interval]=year&recurring[interval_count]=4"), 400, "", "recurring[interval_count]"),
        ("/v1/prices", ok("&recurring[interval]=month&recurring[usage_type]=metered"), 400, "", "recurring[meter]"),
        ("/v1/prices", ok("&recurring[interval]=month&recurring[meter]=mtr_1"), 400, "", "recurring[usage_type]"),
        ("/v1/prices", ok("&recurring[interval]=month&recurring[aggregate_usage]=sum"), 400, "parameter_unknown", "recurring[aggregate_usage]"),
        ("/v1/prices", ok("&billing_scheme=tiered"), 400, "", "billing_scheme"),
        ("/v1/prices", ok("&custom_unit_amount[enabled]=true"), 400, "", "custom_unit_amount"),
        ("/v1/prices", ok("&tiers[0][up_to]=inf"), 400, "", "tiers"),
        ("/v1/prices", ok("&currency_options[eur][unit_amount]=90"), 400, "", "currency_options"),
        ("/v1/prices", ok("&transform_quantity[divide_by]=0&transform_quantity[round]=up"), 400, "", "transform_quantity[divide_by]"),
        ("/v1/prices", ok("&transform_quantity[divide_by]=2"), 400, "parameter_missing", "transform_quantity[round]"),
        ("/v1/prices", ok("&tax_behavior=sometimes"), 400, "", "tax_behavior"),
        ("/v1/prices", ok("&lookup_key=taken"), 400, "", "lookup_key"),
        ("/v1/prices", ok("&nickname="), 400, "parameter_invalid_empty", "nickname"),
        ("/v1/prices", ok("&foo=bar"), 400, "parameter_unknown", "foo"),
        // Products.
        ("/v1/products", "description=x".to_owned(), 400, "parameter_missing", "name"),
        ("/v1/products", "name=".to_owned(), 400, "parameter_invalid_empty", "name"),
        ("/v1/products", "name=x&foo=1".to_owned(), 400, "parameter_unknown", "foo"),
        ("/v1/products", "name=x&shippable=maybe".to_owned(), 400, "", "shippable"),
        ("/v1/products", format!("name=x&statement_descriptor={}", "A".repeat(23)), 400, "", "statement_descriptor"),
        ("/v1/products", "name=x&statement_descriptor=12345".to_owned(), 400, "", "statement_descriptor"),
        ("/v1/products", "name=x&statement_descriptor=a%3Cb".to_owned(), 400, "", "statement_descriptor"),
        ("/v1/products", "name=x&unit_label=thirteenchars".to_owned(), 400, "", "unit_label"),
        ("/v1/products", format!("name=x&{nine_images}"), 400, "", "images"),
        ("/v1/products", "name=x&images=a".to_owned(), 400, "", "images"),
        ("/v1/products", "name=x&package_dimensions[height]=1".to_owned(), 400, "parameter_missing", "package_dimensions[length]"),
        ("/v1/products", "name=x&package_dimensions[height]=abc&package_dimensions[length]=1&package_dimensions[weight]=1&package_dimensions[width]=1".to_owned(), 400, "", "package_dimensions[height]"),
        ("/v1/products", "name=x&marketing_features[0][title]=x".to_owned(), 400, "parameter_missing", "marketing_features[0][name]"),
        ("/v1/products", "name=x&tax_code=bogus".to_owned(), 400, "resource_missing", "tax_code"),
        ("/v1/products", "name=x&id=bad%20id".to_owned(), 400, "", "id"),
        ("/v1/products", "name=x&default_price_data[currency]=usd".to_owned(), 400, "parameter_missing", "default_price_data[unit_amount]"),
        ("/v1/products", "name=x&default_price_data[unit_amount]=100".to_owned(), 400, "parameter_missing", "default_price_data[currency]"),
        ("/v1/products", "name=x&default_price_data[currency]=zzz&default_price_data[unit_amount]=100".to_owned(), 400, "", "default_price_data[currency]"),
        ("/v1/products", "name=x&default_price_data[currency]=usd&default_price_data[unit_amount]=100&default_price_data[recurring][interval]=month&default_price_data[recurring][interval_count]=40".to_owned(), 400, "", "default_price_data[recurring][interval_count]"),
        ("/v1/products", "name=x&default_price_data[currency]=usd&default_price_data[unit_amount]=100&default_price_data[recurring][interval]=month&default_price_data[recurring][usage_type]=metered".to_owned(), 400, "parameter_unknown", "default_price_data[recurring][usage_type]"),
        ("/v1/products", "name=x&default_price_data[currency]=usd&default_price_data[unit_amount]=100&default_price_data[tiers][0][up_to]=1".to_owned(), 400, "", "default_price_data[tiers]"),
        (product_path.as_str(), "name=".to_owned(), 400, "parameter_invalid_empty", "name"),
        (product_path.as_str(), "default_price=price_nope".to_owned(), 400, "resource_missing", "default_price"),
        (product_path.as_str(), "default_price_data[currency]=usd".to_owned(), 400, "parameter_unknown", "default_price_data"),
        (product_path.as_str(), "id=other".to_owned(), 400, "parameter_unknown", "id"),
        ("/v1/products/prod_nope", "name=x".to_owned(), 404, "resource_missing", "id"),
    ];
    for (path, body, status, code, param) in &cases {
        let r = server.post(path, body).await;
        assert_eq!(r.status.as_u16(), *status, "{path} {body}: {}", r.body);
        assert_eq!(r.error_type(), "invalid_request_error", "{path} {body}");
        assert_eq!(r.error_code(), *code, "{path} {body}: {}", r.body);
        assert_eq!(r.error_param(), *param, "{path} {body}: {}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path} {body}"
        );
    }
    let currency = server
        .post(
            "/v1/prices",
            &format!("currency=XYZ&unit_amount=1&product={product}"),
        )
        .await;
    let message = currency.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Invalid currency: xyz. Stripe currently supports these currencies: usd, aed, afn, all,"
        ),
        "{message}"
    );
    assert!(
        message.contains(", eur, ") && message.contains(", jpy, "),
        "{message}"
    );
    let neither = server
        .post("/v1/prices", &format!("currency=usd&product={product}"))
        .await;
    assert_eq!(
        neither.body["error"]["message"],
        "Prices require an `unit_amount` or `unit_amount_decimal` parameter to be set."
    );
    let both = server
        .post("/v1/prices", &ok("&unit_amount_decimal=1"))
        .await;
    assert_eq!(
        both.body["error"]["message"],
        "You may only specify one of these parameters: unit_amount, unit_amount_decimal."
    );
    let unknown_product = server
        .post("/v1/prices", "currency=usd&unit_amount=1&product=prod_nope")
        .await;
    assert_eq!(
        unknown_product.body["error"]["message"],
        "No such product: 'prod_nope'"
    );
    let no_product = server
        .post("/v1/prices", "currency=usd&unit_amount=1")
        .await;
    assert_eq!(
        no_product.body["error"]["message"],
        "You must specify either `product` or `product_data` when creating a price."
    );

    // Deleting a product with prices.
    let refused = server.delete(&product_path).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.error_type(), "invalid_request_error");
    assert_eq!(refused.error_code(), "");
    assert_eq!(refused.error_param(), "");

    // No failed request left anything behind.
    let prices = server.get("/v1/prices").await.ok();
    assert_eq!(ids(&prices), [taken["id"].as_str().unwrap()]);
    let products = server.get("/v1/products").await.ok();
    assert_eq!(ids(&products), [product.as_str()]);
}

/// A context for calling the library's helpers directly, as the
/// subscription and checkout handlers do.
fn context(server: &TestServer) -> Ctx {
    let state = AppState::new(server.store.clone(), None);
    let mut ctx = Ctx::for_worker(&state, stripe_twin::http::auth::account_of(KEY));
    ctx.request_id = "req_test".to_owned();
    ctx
}

/// `items[0][price_data]` of a form body, as a subscription handler sees it.
fn price_data(body: &str) -> Params {
    let map = stripe_twin::http::form::decode(body.as_bytes()).expect("a form body");
    let mut items = Params::new(map)
        .object_list("items")
        .expect("a list")
        .expect("items");
    items
        .remove(0)
        .object("price_data")
        .expect("an object")
        .expect("price_data")
}

async fn inline_prices_from_price_data(server: TestServer) {
    let ctx = context(&server);
    let product = new_product(&server, "name=Inline").await;
    let (writes, doc) = prices::price_from_data(
        &ctx,
        price_data(&format!(
            "items[0][price_data][currency]=USD&items[0][price_data][product]={product}&items[0][price_data][unit_amount]=700&items[0][price_data][recurring][interval]=month&items[0][price_data][recurring][interval_count]=3&items[0][price_data][tax_behavior]=exclusive"
        )),
        true,
        false,
    )
    .await
    .expect("a valid price_data");
    assert_eq!(writes.len(), 2, "the price and its price.created event");
    assert_eq!(keys(&doc), PRICE_KEYS);
    assert_eq!(doc["active"], false, "inline prices are inactive");
    assert_eq!(doc["currency"], "usd");
    assert_eq!(doc["product"], product.as_str());
    assert_eq!(doc["unit_amount"], 700);
    assert_eq!(doc["type"], "recurring");
    assert_eq!(doc["recurring"]["interval_count"], 3);
    assert_eq!(doc["tax_behavior"], "exclusive");
    ctx.commit(&writes).await.expect("commits");
    let id = doc["id"].as_str().unwrap();
    assert_eq!(server.get(&format!("/v1/prices/{id}")).await.ok(), doc);
    let loaded = prices::load_price(&ctx, id, Named::InParam("price"))
        .await
        .expect("loads");
    assert_eq!(loaded.object, "price");
    assert_eq!(loaded.data, doc);
    assert_eq!(server.event_types("type=price.created").await.len(), 1);
    // Inline prices stay out of lists and searches...
    assert!(ids(&server.get("/v1/prices").await.ok()).is_empty());
    assert!(
        ids(&server
            .get(&format!(
                "/v1/prices/search?query={}",
                enc("active:'false'")
            ))
            .await
            .ok())
        .is_empty()
    );
    // ...and do not keep their product from being deleted.
    server.delete(&format!("/v1/products/{product}")).await.ok();
    let orphan = server
        .get(&format!("/v1/prices/{id}?expand[]=product"))
        .await
        .ok();
    assert_eq!(
        orphan["product"],
        json!({"id": product, "object": "product", "deleted": true})
    );

    // product_data where allowed (checkout line items).
    let (writes, doc) = prices::price_from_data(
        &ctx,
        price_data(
            "items[0][price_data][currency]=eur&items[0][price_data][unit_amount_decimal]=12.5&items[0][price_data][product_data][name]=Made+here&items[0][price_data][product_data][description]=Desc",
        ),
        false,
        true,
    )
    .await
    .expect("a valid price_data");
    assert_eq!(
        writes.len(),
        4,
        "product, product.created, price, price.created"
    );
    assert_eq!(doc["type"], "one_time");
    assert!(doc["unit_amount"].is_null());
    assert_eq!(doc["unit_amount_decimal"], "12.5");
    ctx.commit(&writes).await.expect("commits");
    let made = server
        .get(&format!(
            "/v1/products/{}",
            doc["product"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(made["name"], "Made here");
    assert_eq!(made["description"], "Desc");

    let live = new_product(&server, "name=Live").await;
    let failures = [
        (
            format!("items[0][price_data][currency]=usd&items[0][price_data][product]={live}&items[0][price_data][unit_amount]=1"),
            true,
            false,
            400,
            "parameter_missing",
            "items[0][price_data][recurring]",
        ),
        (
            "items[0][price_data][currency]=usd&items[0][price_data][product]=prod_nope&items[0][price_data][unit_amount]=1".to_owned(),
            false,
            false,
            400,
            "resource_missing",
            "items[0][price_data][product]",
        ),
        (
            format!("items[0][price_data][currency]=usd&items[0][price_data][product]={live}"),
            false,
            false,
            400,
            "parameter_missing",
            "items[0][price_data][unit_amount]",
        ),
        (
            "items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1&items[0][price_data][product_data][name]=x".to_owned(),
            false,
            false,
            400,
            "parameter_unknown",
            "items[0][price_data][product_data]",
        ),
        (
            "items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1".to_owned(),
            false,
            false,
            400,
            "parameter_missing",
            "items[0][price_data][product]",
        ),
        (
            "items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1".to_owned(),
            false,
            true,
            400,
            "parameter_missing",
            "items[0][price_data][product]",
        ),
        (
            format!("items[0][price_data][currency]=usd&items[0][price_data][product]={live}&items[0][price_data][unit_amount]=1&items[0][price_data][recurring][interval]=month&items[0][price_data][recurring][usage_type]=metered"),
            true,
            false,
            400,
            "parameter_unknown",
            "items[0][price_data][recurring][usage_type]",
        ),
        (
            format!("items[0][price_data][currency]=usd&items[0][price_data][product]={live}&items[0][price_data][unit_amount]=1&items[0][price_data][recurring][interval]=day&items[0][price_data][recurring][interval_count]=2000"),
            true,
            false,
            400,
            "",
            "items[0][price_data][recurring][interval_count]",
        ),
        (
            format!("items[0][price_data][currency]=abc&items[0][price_data][product]={live}&items[0][price_data][unit_amount]=1"),
            false,
            false,
            400,
            "",
            "items[0][price_data][currency]",
        ),
    ];
    for (body, recurring_required, allow_product_data, status, code, param) in failures {
        let err = prices::price_from_data(
            &ctx,
            price_data(&body),
            recurring_required,
            allow_product_data,
        )
        .await
        .expect_err(&body);
        let rendered = err.body();
        assert_eq!(err.status().as_u16(), status, "{body}: {rendered}");
        assert_eq!(
            rendered["error"]["code"].as_str().unwrap_or_default(),
            code,
            "{body}: {rendered}"
        );
        assert_eq!(rendered["error"]["param"], param, "{body}: {rendered}");
    }
    assert_eq!(
        prices::check_currency("price_data[currency]", "GBP").unwrap(),
        "gbp"
    );
    let missing = prices::load_price(&ctx, "price_nope", Named::InPath("price"))
        .await
        .unwrap_err();
    assert_eq!(missing.status().as_u16(), 404);
}
