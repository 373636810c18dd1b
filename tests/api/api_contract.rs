//! The contract every endpoint shares: auth, accounts, headers, bodies,
//! errors and idempotency, over real HTTP.

use crate::common;

use std::sync::Arc;

use base64::Engine;
use common::{KEY, TestServer};
use reqwest::Method;
use serde_json::json;

backend_tests!(
    authentication,
    keys_are_isolated_accounts,
    response_headers_and_cors,
    unrecognized_urls,
    bad_bodies_get_stripe_errors,
    idempotent_replay_and_mismatch,
    idempotency_under_concurrency,
    two_servers_share_one_store,
    wipe_account_data,
    healthz,
);

async fn authentication(server: TestServer) {
    let none = server
        .call(Method::GET, "/v1/customers", None, "", &[])
        .await;
    assert_eq!(none.status, 401);
    assert_eq!(none.error_type(), "invalid_request_error");
    assert!(
        none.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You did not provide an API key.")
    );

    for header in ["Token sk_test_x", "Bearer", "Basic %%%", "Digest abc"] {
        let r = server
            .call(
                Method::GET,
                "/v1/customers",
                None,
                "",
                &[("authorization", header)],
            )
            .await;
        assert_eq!(r.status, 401, "{header}");
        assert!(r.body["error"]["message"].is_string());
    }
    let live = server
        .get_as("sk_live_51abcdefghijklmnop", "/v1/customers")
        .await;
    assert_eq!(live.status, 401);
    let message = live.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("test mode keys"), "{message}");
    assert!(
        !message.contains("abcdefghijklmnop"),
        "keys are redacted: {message}"
    );
    let rk_live = server.get_as("rk_live_abc", "/v1/customers").await;
    assert_eq!(rk_live.status, 401);
    let unknown = server.get_as("not_a_key", "/v1/customers").await;
    assert_eq!(unknown.status, 401);
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid API Key provided")
    );
    let publishable = server.get_as("pk_test_abc", "/v1/customers").await;
    assert_eq!(publishable.status, 401);

    // HTTP Basic with the key as user name, as `curl -u sk_test_...:` sends it.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:"));
    let r = server
        .call(
            Method::POST,
            "/v1/customers",
            None,
            "name=Basic",
            &[("authorization", &format!("Basic {basic}"))],
        )
        .await;
    let id = r.ok()["id"].as_str().unwrap().to_owned();
    // ... and it is the same account as Bearer with that key.
    server.get(&format!("/v1/customers/{id}")).await.ok();
    // Restricted test keys work like secret keys.
    server
        .post_as("rk_test_restricted", "/v1/customers", "name=R")
        .await
        .ok();
}

async fn keys_are_isolated_accounts(server: TestServer) {
    let a = "sk_test_account_a";
    let b = "sk_test_account_b";
    let id = server.post_as(a, "/v1/customers", "name=A").await.id();
    server.get_as(a, &format!("/v1/customers/{id}")).await.ok();
    let other = server.get_as(b, &format!("/v1/customers/{id}")).await;
    assert_eq!(other.status, 404);
    assert_eq!(other.error_code(), "resource_missing");
    let update = server
        .post_as(b, &format!("/v1/customers/{id}"), "name=B")
        .await;
    assert_eq!(update.status, 404);
    assert_eq!(
        server.get_as(b, "/v1/customers").await.ok()["data"],
        json!([])
    );
    assert_eq!(server.get_as(b, "/v1/events").await.ok()["data"], json!([]));
    assert_eq!(
        server.get_as(a, "/v1/customers").await.ok()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A cursor from another account is unknown here.
    let cursor = server
        .get_as(b, &format!("/v1/customers?starting_after={id}"))
        .await;
    assert_eq!(cursor.status, 404);
    assert_eq!(cursor.error_param(), "starting_after");
}

async fn response_headers_and_cors(server: TestServer) {
    let r = server.post("/v1/customers", "name=H").await;
    let request_id = r.headers["request-id"].to_str().unwrap();
    assert!(request_id.starts_with("req_") && request_id.len() > 10);
    assert_eq!(r.headers["stripe-version"], stripe_twin::API_VERSION);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let pinned = server
        .call(
            Method::GET,
            "/v1/customers",
            Some(KEY),
            "",
            &[("stripe-version", "2024-04-10")],
        )
        .await;
    assert_eq!(pinned.headers["stripe-version"], "2024-04-10");
    let error = server.get("/v1/customers/cus_nope").await;
    assert!(
        error.headers["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_ne!(error.headers["request-id"], r.headers["request-id"]);

    let preflight = server
        .http
        .request(Method::OPTIONS, server.url("/v1/customers"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let allowed = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allowed.contains("POST"), "{allowed}");
}

async fn unrecognized_urls(server: TestServer) {
    let r = server.get("/v1/nothing_here").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body["error"]["message"],
        "Unrecognized request URL (GET: /v1/nothing_here). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
    );
    assert_eq!(r.error_type(), "invalid_request_error");
    let wrong_method = server
        .call(Method::PUT, "/v1/customers", Some(KEY), "", &[])
        .await;
    assert_eq!(wrong_method.status, 404);
    assert!(
        wrong_method.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unrecognized request URL (PUT: /v1/customers)")
    );
    let delete_list = server.delete("/v1/customers").await;
    assert_eq!(delete_list.status, 404);
}

async fn bad_bodies_get_stripe_errors(server: TestServer) {
    let raw = |content_type: &'static str, body: Vec<u8>| {
        let server = &server;
        async move {
            let response = server
                .http
                .post(server.url("/v1/customers"))
                .bearer_auth(KEY)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let body: serde_json::Value = serde_json::from_str(&text).expect("a JSON error body");
            (status, body)
        }
    };
    let form = "application/x-www-form-urlencoded";
    let (status, body) = raw("application/json", br#"{"name":"x"}"#.to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/x-www-form-urlencoded")
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed percent", b"name=%zz".to_vec(), 400),
        ("truncated percent", b"name=abc%4".to_vec(), 400),
        ("invalid utf-8", b"name=%ff%fe".to_vec(), 400),
        ("raw invalid utf-8", b"name=\xff".to_vec(), 400),
        ("nul byte", b"name=a%00b".to_vec(), 400),
        (
            "10,000 parameters",
            (0..10_000)
                .map(|i| format!("metadata[k{i}]=v"))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes(),
            400,
        ),
        (
            "deep nesting",
            format!("metadata{}=1", "[a]".repeat(500)).into_bytes(),
            400,
        ),
        ("unbalanced brackets", b"metadata[a=1".to_vec(), 400),
        ("hash and value", b"name=a&name[b]=c".to_vec(), 400),
    ];
    for (what, body, expected) in cases {
        let (status, json) = raw(form, body).await;
        assert_eq!(status, expected, "{what}: {json}");
        assert_eq!(json["error"]["type"], "invalid_request_error", "{what}");
        assert!(json["error"]["message"].is_string(), "{what}");
    }
    oversized_body_gets_413(&server).await;
    // Query strings go through the same decoder.
    let r = server.get("/v1/customers?limit=%zz").await;
    assert_eq!(r.status, 400);
    assert_eq!(server.get("/v1/customers").await.ok()["data"], json!([]));
}

/// A body over the limit, over a raw socket: the client declares 10 MB but
/// sends only one byte past the limit and then reads. Through an HTTP client
/// the server's early answer races the client's remaining writes (a broken
/// pipe on the client), which says nothing about the server.
async fn oversized_body_gets_413(server: &TestServer) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        10 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket
        .write_all(&vec![b'a'; stripe_twin::http::api::MAX_BODY_BYTES + 1])
        .await
        .unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body).expect("a JSON error body");
    assert_eq!(json["error"]["type"], "invalid_request_error");
}

async fn idempotent_replay_and_mismatch(server: TestServer) {
    let server = &server;
    let post = |body: &'static str, key: &'static str| async move {
        server
            .call(
                Method::POST,
                "/v1/customers",
                Some(KEY),
                body,
                &[("idempotency-key", key)],
            )
            .await
    };
    let first = post("name=Idem", "key-1").await;
    assert_eq!(first.status, 200);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let second = post("name=Idem", "key-1").await;
    assert_eq!(second.status, 200);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(second.body, first.body);
    let list = server.get("/v1/customers").await.ok();
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "a replay creates nothing"
    );

    let mismatch = post("name=Other", "key-1").await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(mismatch.error_type(), "idempotency_error");
    assert!(mismatch.body["error"]["message"].as_str().unwrap().starts_with("Keys for idempotent requests can only be used with the same parameters they were first used with."));
    let id = first.body["id"].as_str().unwrap();
    let other_path = server
        .call(
            Method::POST,
            &format!("/v1/customers/{id}"),
            Some(KEY),
            "name=Idem",
            &[("idempotency-key", "key-1")],
        )
        .await;
    assert_eq!(other_path.status, 400);
    assert_eq!(other_path.error_type(), "idempotency_error");

    // Errors are replayed too, with their status.
    let bad = post("bogus=1", "key-2").await;
    assert_eq!(bad.status, 400);
    let bad_again = post("bogus=1", "key-2").await;
    assert_eq!(bad_again.status, 400);
    assert_eq!(bad_again.headers["idempotent-replayed"], "true");
    assert_eq!(bad_again.body, bad.body);

    // Keys are per account.
    let other = server
        .call(
            Method::POST,
            "/v1/customers",
            Some("sk_test_someone_else"),
            "name=Else",
            &[("idempotency-key", "key-1")],
        )
        .await;
    assert_eq!(other.status, 200);
    assert!(other.headers.get("idempotent-replayed").is_none());
    assert_ne!(other.body["id"], first.body["id"]);

    let too_long = "k".repeat(256);
    let r = server
        .call(
            Method::POST,
            "/v1/customers",
            Some(KEY),
            "name=L",
            &[("idempotency-key", &too_long)],
        )
        .await;
    assert_eq!(r.status, 400);
}

async fn idempotency_under_concurrency(server: TestServer) {
    let server = Arc::new(server);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            server
                .call(
                    Method::POST,
                    "/v1/customers",
                    Some(KEY),
                    "name=Race",
                    &[("idempotency-key", "race-key")],
                )
                .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut conflicts = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status.as_u16() {
            200 => {
                ids.insert(reply.body["id"].as_str().unwrap().to_owned());
            }
            409 => {
                assert_eq!(reply.error_code(), "idempotency_key_in_use");
                assert_eq!(reply.headers["stripe-should-retry"], "true");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert_eq!(
        ids.len(),
        1,
        "every success is the one customer ({conflicts} waited)"
    );
    let list = server.get("/v1/customers").await.ok();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

async fn two_servers_share_one_store(server: TestServer) {
    if server.backend != common::Backend::Postgres {
        return; // several processes share state through Postgres only
    }
    let sibling = server.sibling().await;
    let id = server.post("/v1/customers", "name=Shared").await.id();
    let seen = sibling.get(&format!("/v1/customers/{id}")).await.ok();
    assert_eq!(seen["name"], "Shared");
    sibling
        .post(&format!("/v1/customers/{id}"), "name=Changed")
        .await
        .ok();
    assert_eq!(
        server.get(&format!("/v1/customers/{id}")).await.ok()["name"],
        "Changed"
    );

    // One idempotency key raced across both servers: one customer.
    let (a, b) = (Arc::new(server), Arc::new(sibling));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let target = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            target
                .call(
                    Method::POST,
                    "/v1/customers",
                    Some(KEY),
                    "name=Once",
                    &[("idempotency-key", "cross-process")],
                )
                .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert!(reply.status == 200 || reply.status == 409, "{}", reply.body);
        if reply.status == 200 {
            ids.insert(reply.body["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), 1);
    let named = a
        .get("/v1/customers/search?query=name%3A%27Once%27")
        .await
        .ok();
    assert_eq!(named["data"].as_array().unwrap().len(), 1);
}

async fn wipe_account_data(server: TestServer) {
    server.post("/v1/customers", "name=Gone").await.ok();
    let keep = server
        .post_as("sk_test_keeper", "/v1/customers", "name=Kept")
        .await
        .id();
    let wiped = server.delete("/_config/data").await.ok();
    assert_eq!(wiped["deleted"], true);
    assert!(
        wiped["objects_removed"].as_u64().unwrap() >= 2,
        "the customer and its event"
    );
    assert_eq!(server.get("/v1/customers").await.ok()["data"], json!([]));
    assert_eq!(server.get("/v1/events").await.ok()["data"], json!([]));
    server
        .get_as("sk_test_keeper", &format!("/v1/customers/{keep}"))
        .await
        .ok();
    let anonymous = server
        .call(Method::DELETE, "/_config/data", None, "", &[])
        .await;
    assert_eq!(anonymous.status, 401);
}

async fn healthz(server: TestServer) {
    let r = server.call(Method::GET, "/healthz", None, "", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    let expected = match server.backend {
        common::Backend::Sqlite => "sqlite",
        common::Backend::Postgres => "postgres",
    };
    assert_eq!(r.body["store"], expected);
}
