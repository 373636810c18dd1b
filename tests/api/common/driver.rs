//! Headless Chromium driven through chromedriver, for the browser tests.
//! The tests that use it are ignored where chromedriver is not installed,
//! except under CI, which installs it (see build.rs and .ci/run).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Deref;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::Url;
use serde_json::{Value, json};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long anything the browser does may take on a slow, shared machine.
pub const DEADLINE: Duration = Duration::from_secs(20);
pub const POLL: Duration = Duration::from_millis(100);

/// A chromedriver process on a free port and the session it runs.
/// Dropping it ends the session (Chromium quits) and kills chromedriver,
/// whether the test passed or panicked.
struct Driver {
    port: u16,
    session: Option<String>,
    process: Child,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // A blocking `DELETE /session/{id}`: async cleanup may never run
        // once a test has panicked.
        if let Some(session) = self.session.take()
            && let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = stream.set_read_timeout(Some(DEADLINE));
            let _ = write!(
                stream,
                "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.port
            );
            // chromedriver answers once Chromium is gone; it may keep the
            // connection open, so wait for the answer, not for the close.
            let _ = stream.read(&mut [0; 1024]);
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Headless Chromium, driven through its own chromedriver.
pub struct Browser {
    client: Client,
    driver: Driver,
}

impl Browser {
    /// Panics when chromedriver is missing: the tests that call this are
    /// ignored on such machines (build.rs), except under CI.
    pub async fn start() -> Self {
        Self::start_with(json!({})).await
    }

    /// Chromium emulating a phone whose screen is `width` CSS pixels wide
    /// (e.g. 390): a touch screen, overlay scrollbars, the page's viewport.
    pub async fn start_phone(width: u64) -> Self {
        Self::start_with(json!({
            "mobileEmulation": {
                "deviceMetrics": {"width": width, "height": 844, "pixelRatio": 3.0},
            },
        }))
        .await
    }

    /// Started with `options` added to its `goog:chromeOptions`.
    async fn start_with(options: Value) -> Self {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is missing: install chromium and chromium-driver"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // From here on, Drop cleans up whatever happens.
        let mut driver = Driver {
            port,
            session: None,
            process,
            profile: tempfile::tempdir().expect("profile dir"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.process.try_wait() {
                panic!("chromedriver exited early: {status}");
            }
            assert!(
                started.elapsed() < DEADLINE,
                "chromedriver did not listen on {port} within {DEADLINE:?}"
            );
            tokio::time::sleep(POLL).await;
        }
        let Value::Object(mut chrome) = json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}", driver.profile.path().display()),
                ],
        }) else {
            unreachable!("an object")
        };
        if let Value::Object(options) = options {
            chrome.extend(options);
        }
        let capabilities =
            serde_json::Map::from_iter([("goog:chromeOptions".to_owned(), Value::Object(chrome))]);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a chromium session");
        driver.session = client.session_id().await.expect("session id");
        Browser { client, driver }
    }

    /// Ends the session (Chromium quits); Drop then stops chromedriver.
    pub async fn quit(mut self) {
        if self.driver.session.take().is_some() {
            self.client.clone().close().await.expect("session closes");
        }
    }

    /// Polls the current URL until it starts with `prefix`.
    pub async fn wait_for_url(&self, prefix: &str) -> Url {
        let started = Instant::now();
        loop {
            let url = self.current_url().await.expect("current url").to_string();
            if url.starts_with(prefix) {
                return Url::parse(&url).expect("a url");
            }
            assert!(
                started.elapsed() < DEADLINE,
                "still on {url} after {DEADLINE:?}, waiting for {prefix}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls the page source until it contains `text`.
    pub async fn wait_for_source(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let source = self.source().await.expect("page source");
            if source.contains(text) {
                return source;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "page never showed {text:?}; last source:\n{source}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls until the element with this id shows `text` (its visible text),
    /// e.g. a message the next page shows where the last one had none.
    pub async fn wait_for_text(&self, id: &str, text: &str) -> String {
        let started = Instant::now();
        loop {
            let shown = match self.find(Locator::Id(id)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if shown.contains(text) {
                return shown;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "#{id} never showed {text:?} (it shows {shown:?}); page:\n{}",
                self.source().await.unwrap_or_default()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The HTTP status of the document the browser shows.
    pub async fn response_status(&self) -> u64 {
        let status = self
            .execute(
                "return performance.getEntriesByType('navigation')[0].responseStatus;",
                vec![],
            )
            .await
            .expect("script runs");
        status.as_u64().expect("a status number")
    }

    pub async fn assert_no_alert(&self) {
        match self.get_alert_text().await {
            Err(err) if err.is_no_such_alert() => {}
            Err(err) => panic!("asking for an alert failed: {err}"),
            Ok(text) => panic!("an alert is open: {text:?}"),
        }
    }

    /// The element with this id, which must be on the page.
    pub async fn by_id(&self, id: &str) -> Element {
        self.find(Locator::Id(id))
            .await
            .unwrap_or_else(|err| panic!("no #{id} on the page: {err}"))
    }

    /// Whether an element matches this CSS selector.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .find_all(Locator::Css(css))
            .await
            .expect("element lookup")
            .is_empty()
    }

    /// The visible text of the first element matching this CSS selector.
    pub async fn text_of(&self, css: &str) -> String {
        self.find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("nothing matches {css}: {err}"))
            .text()
            .await
            .expect("element text")
    }

    /// Types into the input with this id, as a user would, after clearing it.
    pub async fn type_into(&self, id: &str, text: &str) {
        let input = self.by_id(id).await;
        input.clear().await.expect("input clears");
        input.send_keys(text).await.expect("typing");
    }

    /// Clicks the element with this id.
    pub async fn click_id(&self, id: &str) {
        self.by_id(id).await.click().await.expect("click");
    }
}

impl Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The query of a URL as (key, value) pairs, decoded.
pub fn query_of(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn has_pair(query: &[(String, String)], key: &str, value: &str) -> bool {
    query.iter().any(|(k, v)| k == key && v == value)
}
