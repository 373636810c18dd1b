use std::io::IsTerminal;

use clap::Parser;
use stripe_twin::config::{Command, Config, describe_store, open_store};
use stripe_twin::{API_VERSION, AppState, serve};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    if let Some(Command::Healthcheck) = config.command {
        return healthcheck(config.healthcheck_address()).await;
    }
    // Colours only for a person at a terminal: log files and `docker logs`
    // get plain text.
    let colours = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("stripe_twin=info")),
        )
        .with_ansi(colours)
        .init();
    let public_url = match config.public_url() {
        Ok(url) => url,
        Err(err) => {
            eprintln!("stripe-twin: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    // A fixture file that cannot be used stops start-up before anything
    // listens, naming the file and the problem.
    let fixtures = match config.load_fixtures(&stripe_twin::REGISTRY) {
        Ok(fixtures) => fixtures,
        Err(err) => {
            eprintln!("stripe-twin: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let webhooks = match config.webhook_settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("stripe-twin: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let billing = match config.billing_settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("stripe-twin: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let Some(store) = open_store_patiently(&config).await else {
        return std::process::ExitCode::FAILURE;
    };
    let listener = match TcpListener::bind((config.bind.as_str(), config.port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "stripe-twin: cannot listen on {}:{}: {err}",
                config.bind, config.port
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!(
        "stripe-twin listening on http://{address} (store: {}, API version {API_VERSION}, fixtures: {fixtures})",
        describe_store(&config)
    );
    if let Some(url) = &webhooks.forward_to {
        println!("stripe-twin forwarding every event to {url}");
    }
    let state = AppState::build(store, public_url, fixtures, webhooks)
        .with_cors_origins(config.cors_allow_origin.clone())
        .with_billing(billing);
    if let Err(err) = serve(listener, state, shutdown_signal()).await {
        eprintln!("stripe-twin: server error: {err}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

/// Opens the store. Postgres may still be starting (docker compose):
/// every failed attempt says why on a line of its own, then it tries
/// again, until it connects or the process is stopped. A SQLite file that
/// cannot be used stops start-up at once.
async fn open_store_patiently(
    config: &Config,
) -> Option<std::sync::Arc<dyn stripe_twin::store::Store>> {
    let retry = config.uses_postgres();
    for attempt in 1u64.. {
        match open_store(config).await {
            Ok(store) => return Some(store),
            Err(err) if retry => eprintln!(
                "stripe-twin: cannot reach the store ({}), attempt {attempt}: {err}; retrying in 1 s",
                describe_store(config)
            ),
            Err(err) => {
                eprintln!(
                    "stripe-twin: cannot open the store ({}): {err}",
                    describe_store(config)
                );
                return None;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            () = shutdown_signal() => return None,
        }
    }
    None
}

/// SIGINT (Ctrl-C) or SIGTERM (docker stop).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// `GET /healthz` on `host:port`, answered 200 within 3 seconds.
async fn healthcheck((host, port): (String, u16)) -> std::process::ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<bool, std::io::Error>(
            answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200"),
        )
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), check).await {
        Ok(Ok(true)) => std::process::ExitCode::SUCCESS,
        Ok(Ok(false)) => {
            eprintln!("stripe-twin healthcheck: /healthz did not answer 200");
            std::process::ExitCode::FAILURE
        }
        Ok(Err(err)) => {
            eprintln!("stripe-twin healthcheck: {err}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("stripe-twin healthcheck: no answer within 3 s");
            std::process::ExitCode::FAILURE
        }
    }
}
