//! The binary's flags and output as a newcomer meets them: boolean
//! environment variables, the healthcheck subcommand, `--public-url`, and
//! the log lines (one per request, one per failed webhook attempt, plain
//! text when not written to a terminal).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const KEY: &str = "sk_test_flags";

/// The binary on a free port with a clean environment, plus `args`.
fn twin(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stripe-twin"));
    command
        .arg("--no-fixtures")
        .args(args)
        .env_clear()
        .envs([("STRIPE_TWIN_BIND", "127.0.0.1"), ("PORT", "0")])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A running binary and every line it has printed so far.
struct Running {
    _child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    base: String,
}

impl Running {
    async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = twin(args, env).spawn().expect("spawn stripe-twin");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for output in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(output).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let mut running = Self {
            _child: child,
            lines,
            base: String::new(),
        };
        let line = running.wait_for("listening on http://").await;
        let address = line.split("http://").nth(1).unwrap();
        running.base = format!("http://{}", address.split_whitespace().next().unwrap());
        running
    }

    /// The first line containing `text`, waiting up to 20 s for it.
    async fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {text:?} in {:?}",
                self.lines.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn port(&self) -> String {
        self.base.rsplit(':').next().unwrap().to_owned()
    }

    async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

/// Runs a binary that must refuse to start: its exit code and stderr.
async fn refused(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let run = tokio::time::timeout(Duration::from_secs(20), twin(args, env).output()).await;
    let output = run.expect("it refuses within 20 s").unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn boolean_environment_variables_take_the_usual_spellings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flags.db");
    let db = db.to_str().unwrap();
    for yes in ["1", "true", "yes", "on", "TRUE"] {
        let running = Running::start(&[], &[("STRIPE_TWIN_IN_MEMORY", yes)]).await;
        let line = running.wait_for("listening").await;
        assert!(line.contains("sqlite (in memory)"), "{yes}: {line}");
    }
    for no in ["0", "false", "no", "off"] {
        let env = [("STRIPE_TWIN_IN_MEMORY", no), ("STRIPE_TWIN_DB_PATH", db)];
        let running = Running::start(&[], &env).await;
        let line = running.wait_for("listening").await;
        assert!(line.contains(&format!("sqlite {db}")), "{no}: {line}");
    }
    let (code, stderr) = refused(&[], &[("STRIPE_TWIN_IN_MEMORY", "maybe")]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("maybe"), "{stderr}");
}

async fn healthcheck(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stripe-twin"))
        .arg("healthcheck")
        .args(args)
        .env_clear()
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn healthcheck_takes_its_flags_after_the_subcommand_and_honours_bind() {
    // 127.0.0.2 is loopback too on Linux, but not where 127.0.0.1 points.
    let running = Running::start(&["--bind", "127.0.0.2", "--in-memory"], &[]).await;
    let port = running.port();
    let here = healthcheck(&["--bind", "127.0.0.2", "--port", &port]).await;
    assert!(here.status.success(), "{here:?}");
    let elsewhere = healthcheck(&["--port", &port]).await;
    assert_eq!(elsewhere.status.code(), Some(1), "{elsewhere:?}");
    drop(running);
    let gone = healthcheck(&["--bind", "127.0.0.2", "--port", &port]).await;
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
}

#[tokio::test]
async fn an_unusable_public_url_stops_start_up() {
    for (url, why) in [
        ("localhost:12111", "must start with http:// or https://"),
        ("not a url", "must be a URL"),
        ("ftp://example.com", "must start with http:// or https://"),
        ("http://example.com/?page=1", "must not have a query"),
        ("http://user:pw@example.com", "must not carry a user name"),
    ] {
        let (code, stderr) = refused(&["--in-memory", "--public-url", url], &[]).await;
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert!(stderr.contains(why), "{url}: {stderr}");
    }
}

/// The first `action="…"` of a page.
fn form_action(html: &str) -> String {
    let rest = html
        .split(r#"action=""#)
        .nth(1)
        .expect("a form with an action");
    rest.split('"').next().unwrap().replace("&amp;", "&")
}

#[tokio::test]
async fn pages_behind_a_path_prefix_post_their_forms_under_it() {
    // A proxy at http://proxy.test/twin would forward to this server with
    // the prefix stripped; the pages must send browsers back under it.
    let public = "http://proxy.test/twin/";
    let running = Running::start(&["--in-memory", "--public-url", public], &[]).await;
    let unprefixed = |url: &str| url.replace("http://proxy.test/twin", &running.base);
    let session = running
        .post(
            "/v1/checkout/sessions",
            "mode=setup&currency=usd&payment_method_types[]=card&success_url=https://example.com/ok",
        )
        .await
        .text()
        .await
        .unwrap();
    let session: serde_json::Value = serde_json::from_str(&session).unwrap();
    let page_url = session["url"].as_str().expect("a page url");
    assert!(
        page_url.starts_with("http://proxy.test/twin/c/pay/"),
        "{page_url}"
    );
    let page = reqwest::get(unprefixed(page_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let action = Url::parse(page_url)
        .unwrap()
        .join(&form_action(&page))
        .unwrap();
    assert!(
        action.as_str().starts_with("http://proxy.test/twin/c/pay/"),
        "{action}"
    );

    let intent = running
        .post(
            "/v1/setup_intents",
            "confirm=true&payment_method_types[]=amazon_pay&payment_method_data[type]=amazon_pay&return_url=https://example.com/back",
        )
        .await
        .text()
        .await
        .unwrap();
    let intent: serde_json::Value = serde_json::from_str(&intent).unwrap();
    let redirect = intent["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("a redirect");
    assert!(
        redirect.starts_with("http://proxy.test/twin/authorize/"),
        "{redirect}"
    );
    let page = reqwest::get(unprefixed(redirect))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let action = Url::parse(redirect)
        .unwrap()
        .join(&form_action(&page))
        .unwrap();
    assert_eq!(
        action.as_str(),
        redirect,
        "the authorize form posts back to its page"
    );
}

#[tokio::test]
async fn each_request_and_each_failed_webhook_attempt_gets_a_plain_log_line() {
    // Nothing listens on a port just freed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let receiver = format!("http://{closed}/hook");
    let args = ["--in-memory", "--forward-webhooks-to", &receiver];
    let running = Running::start(&args, &[("STRIPE_TWIN_WEBHOOK_RETRY_SCHEDULE", "1s")]).await;
    let created = running
        .post("/v1/customers", "email=log%40example.com")
        .await;
    assert_eq!(created.status(), 200);
    let request_id = created.headers()["request-id"].to_str().unwrap().to_owned();
    let line = running.wait_for(&request_id).await;
    assert!(line.contains("POST /v1/customers 200"), "{line}");
    assert!(line.contains("ms"), "{line}");
    let missing = running.post("/v1/customers/cus_nope", "name=x").await;
    let request_id = missing.headers()["request-id"].to_str().unwrap().to_owned();
    let line = running.wait_for(&request_id).await;
    assert!(line.contains("POST /v1/customers/cus_nope 404"), "{line}");

    let first = running.wait_for("(attempt 1:").await;
    assert!(first.contains("WARN"), "{first}");
    assert!(first.contains("webhooks: delivering evt_"), "{first}");
    assert!(first.contains(&receiver), "{first}");
    assert!(first.contains("next try in"), "{first}");
    let last = running.wait_for("(attempt 2:").await;
    assert!(last.contains("no more tries"), "{last}");
    let lines = running.lines.lock().unwrap();
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "no colour codes when stdout is not a terminal: {lines:?}"
    );
}
