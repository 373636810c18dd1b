//! Faults: a store that goes away or stops answering, a store file that
//! cannot be written, slow and silent clients. Each must get a prompt,
//! honest answer (Stripe's error body naming the problem, 503 with
//! `Stripe-Should-Retry` where retrying helps), never a hang.

use crate::common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, TestServer};
use reqwest::StatusCode;
use stripe_twin::Limits;
use stripe_twin::store::{PostgresStore, Store};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to Postgres that can turn into a black hole: bytes stop
/// flowing both ways and new connections hang, as when a network drops.
struct Proxy {
    port: u16,
    black_hole: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let black_hole = Arc::new(AtomicBool::new(false));
        let hole = black_hole.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let hole = hole.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    while hole.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pump(client_read, server_write, hole.clone()));
                    pump(server_read, client_write, hole).await;
                });
            }
        });
        Self { port, black_hole }
    }

    fn set_black_hole(&self, on: bool) {
        self.black_hole.store(on, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hole: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        // In the hole, bytes are held back: nothing arrives, nothing fails.
        while hole.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// `postgres://user@127.0.0.1:5432/db` with the port of `proxy`.
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, rest) = rest.rsplit_once('@').map_or(("", rest), |(a, r)| (a, r));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let at = if auth.is_empty() {
        String::new()
    } else {
        format!("{auth}@")
    };
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    (format!("{scheme}://{at}127.0.0.1:{port}/{path}"), host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(twin_no_postgres, ignore = "set TEST_DATABASE_URL")]
async fn postgres_black_hole_answers_503_fast_and_recovers() {
    let url = common::postgres_url();
    let (_, upstream) = through(&url, 0);
    let proxy = Proxy::start(upstream).await;
    let (proxied, _) = through(&url, proxy.port);
    let schema = common::new_schema();
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&proxied, Some(&schema))
            .await
            .expect("postgres through the proxy"),
    );
    let server = TestServer::with_store(Backend::Postgres, store, Some(schema), None).await;
    server
        .post("/v1/customers", "email=before%40example.com")
        .await
        .ok();

    proxy.set_black_hole(true);
    let started = Instant::now();
    let reply = server
        .post("/v1/customers", "email=during%40example.com")
        .await;
    let took = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
    assert_eq!(reply.error_type(), "api_error");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("cannot reach its database"), "{message}");
    assert!(!message.contains("bug"), "{message}");
    assert_eq!(reply.headers["stripe-should-retry"], "true");
    let started = Instant::now();
    let health = server
        .call(reqwest::Method::GET, "/healthz", None, "", &[])
        .await;
    assert_eq!(
        health.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        health.body
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    proxy.set_black_hole(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = server
            .post("/v1/customers", "email=after%40example.com")
            .await;
        if reply.status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", reply.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = server.get("/v1/customers").await.ok();
    let emails: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["email"].as_str())
        .collect();
    assert!(emails.contains(&"before@example.com") && emails.contains(&"after@example.com"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_deleted_under_a_running_server() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    server
        .post("/v1/customers", "email=a%40example.com")
        .await
        .ok();
    let path = server.db_path().unwrap().to_owned();
    std::fs::remove_file(&path).unwrap();
    let reply = server.post("/v1/customers", "email=b%40example.com").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("was deleted"), "{message}");
    assert_eq!(reply.headers["stripe-should-retry"], "true");
    let health = server
        .call(reqwest::Method::GET, "/healthz", None, "", &[])
        .await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(health.body["error"].as_str().unwrap().contains("deleted"));

    // A new file in its place is another store: refused the same way.
    std::fs::write(&path, b"").unwrap();
    let reply = server.post("/v1/customers", "email=c%40example.com").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("replaced")
    );
    server.stop().await;
}

/// The binary, with these arguments and environment, its stderr piped.
fn twin(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stripe-twin"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_sqlite_file_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twin.db");
    let path_text = path.to_str().unwrap().to_owned();
    // A database that exists and is fully migrated, then made read-only.
    drop(
        stripe_twin::store::SqliteStore::open_file(&path_text)
            .await
            .unwrap(),
    );
    for extra in ["twin.db-wal", "twin.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(extra));
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = twin(&["--db-path", &path_text, "--port", "0"], &[]);
    // Root writes any file: run the server as nobody, as a user would be.
    if unsafe { libc_geteuid() } == 0 {
        command.uid(65534).gid(65534);
    }
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("it exits promptly")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it must not start: {stderr}");
    assert!(stderr.contains("read-only"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening"));
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(twin_no_postgres, ignore = "set TEST_DATABASE_URL")]
async fn unreachable_postgres_at_start_up_is_retried_visibly() {
    let url = common::postgres_url();
    // A port nothing listens on yet.
    let spare = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = spare.local_addr().unwrap().port();
    drop(spare);
    let (proxied, upstream) = through(&url, port);
    let started = Instant::now();
    let mut child = twin(&["--port", "0"], &[("DATABASE_URL", &proxied)])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for attempt in 1..=2 {
        let line = tokio::time::timeout(Duration::from_secs(8), lines.next_line())
            .await
            .expect("a line per attempt")
            .unwrap()
            .unwrap();
        assert!(line.contains("cannot reach the store"), "{line}");
        assert!(line.contains(&format!("attempt {attempt}")), "{line}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // Postgres comes up (the proxy opens the port): the server starts.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let server = TcpStream::connect(upstream).await.unwrap();
                let (mut a, mut b) = (client, server);
                let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
            });
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .expect("it starts once Postgres is there")
        .unwrap()
        .unwrap();
    assert!(line.contains("listening on"), "{line}");
    child.kill().await.unwrap();
}

fn short_limits() -> Limits {
    Limits {
        header: Duration::from_millis(800),
        body: Duration::from_millis(800),
        request: Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_answered_408() {
    let server = TestServer::start_with_limits(Backend::Sqlite, short_limits())
        .await
        .unwrap();
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /v1/customers HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=a",
                common::KEY
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"invalid_request_error\""), "{answer}");
    assert!(
        answer.contains("shorter than its Content-Length"),
        "{answer}"
    );
    // Nothing was created.
    let list = server.get("/v1/customers").await.ok();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed() {
    let server = TestServer::start_with_limits(Backend::Sqlite, short_limits())
        .await
        .unwrap();
    let address = server.base.trim_start_matches("http://").to_owned();
    // Many connections that never send a request, and one that sends half
    // a request head.
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(TcpStream::connect(&address).await.unwrap());
    }
    let mut half = TcpStream::connect(&address).await.unwrap();
    half.write_all(b"GET /v1/customers HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    silent.push(half);
    // A keep-alive connection that answered once, then stays idle.
    let mut idle = TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    silent.push(idle);
    for mut stream in silent {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection")
            .ok();
    }
    // The server still serves.
    server.get("/v1/customers").await.ok();
    server.stop().await;
}
