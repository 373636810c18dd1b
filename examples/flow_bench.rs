//! Load generator for whole Amazon Pay setup flows (used by bench/run.sh):
//! create a customer, create+confirm a SetupIntent as the seed document
//! does, authorize on the page, retrieve the intent. Prints flows/s and
//! per-flow latency percentiles.
//!
//!   cargo run --release --example flow_bench -- http://127.0.0.1:12111 10 16
#![allow(clippy::disallowed_methods)] // a benchmark client times itself in real time

use std::time::{Duration, Instant};

use serde_json::Value;

const KEY: &str = "sk_test_flow_bench";

async fn call(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

async fn one_flow(http: &reqwest::Client, base: &str) -> Result<(), String> {
    let form = |path: &str, body: String| {
        http.post(format!("{base}{path}"))
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let customer = call(form("/v1/customers", "email=flow%40example.com".into())).await?;
    let customer = customer["id"].as_str().ok_or("no customer id")?;
    let intent = call(form(
            "/v1/setup_intents",
            format!("confirm=true&return_url=https%3A%2F%2Fwww.stripe.com&usage=off_session&customer={customer}&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][ip_address]=127.0.0.0&mandate_data[customer_acceptance][online][user_agent]=device"),
        ),
    )
    .await?;
    let url = intent["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .ok_or("no redirect")?;
    let id = intent["id"].as_str().ok_or("no intent id")?;
    let page = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("outcome=authorize")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if page.status() != reqwest::StatusCode::SEE_OTHER {
        return Err(format!("page answered {}", page.status()));
    }
    let done = call(
        http.get(format!("{base}/v1/setup_intents/{id}"))
            .bearer_auth(KEY),
    )
    .await?;
    if done["status"] != "succeeded" {
        return Err(format!("intent is {}", done["status"]));
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:12111".into());
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let workers: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(workers)
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let http = http.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = Vec::new();
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    match one_flow(&http, &base).await {
                        Ok(()) => latencies.push(t0.elapsed()),
                        Err(err) => failures.push(err),
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        let (l, f) = task.await.expect("worker");
        latencies.extend(l);
        failures.extend(f);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "FLOWS total={} failed={} flows_per_s={:.0} p50_ms={:.2} p99_ms={:.2} first_error={}",
        latencies.len(),
        failures.len(),
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        failures
            .first()
            .map(String::as_str)
            .unwrap_or("-")
            .replace(char::is_whitespace, " ")
    );
}
