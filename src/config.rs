//! Command-line flags; every one can also be set by an environment variable.

use std::path::Path;
use std::sync::Arc;

use clap::Parser;

use crate::core::billing_settings::{AfterRetries, BillingSettings, Retries};
use crate::core::registry::Registry;
use crate::fixtures::{FixtureError, Fixtures};
use crate::store::{PostgresStore, SqliteStore, Store, StoreResult};
use crate::webhooks::{self, WebhookSettings};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "stripe-twin",
    version,
    about = "A stateful, Stripe-compatible API server for test suites"
)]
pub struct Config {
    /// Address to listen on (0.0.0.0 inside a container).
    #[arg(
        long,
        env = "STRIPE_TWIN_BIND",
        default_value = "127.0.0.1",
        global = true
    )]
    pub bind: String,
    /// Port to listen on (stripe-mock's port by default).
    #[arg(long, env = "PORT", default_value_t = 12111, global = true)]
    pub port: u16,
    /// `postgres://…` for Postgres, `sqlite://PATH` for a SQLite file; unset: the --db-path file.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The embedded SQLite file used when DATABASE_URL is unset.
    #[arg(long, env = "STRIPE_TWIN_DB_PATH", default_value = "stripe-twin.db")]
    pub db_path: String,
    /// Keep state in memory only (lost at exit); ignores DATABASE_URL.
    #[arg(
        long,
        env = "STRIPE_TWIN_IN_MEMORY",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub in_memory: bool,
    /// Base URL of this server as browsers reach it, for the pages it links to
    /// (default: the request's Host); it may end in a path prefix that a
    /// proxy in front strips (http://host/stripe).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A directory of JSON fixture files (Stripe objects every account
    /// starts with) instead of the built-in fixtures; empty: the built-in ones.
    #[arg(long, env = "STRIPE_TWIN_FIXTURES", value_name = "DIR")]
    pub fixtures: Option<String>,
    /// Start every account empty, without fixtures (wins over --fixtures).
    #[arg(
        long,
        env = "STRIPE_TWIN_NO_FIXTURES",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_fixtures: bool,
    /// Deliver every event of every account to this URL too, signed with
    /// the forwarding secret (like `stripe listen --forward-to`).
    #[arg(
        long = "forward-webhooks-to",
        env = "STRIPE_TWIN_WEBHOOK_URL",
        value_name = "URL"
    )]
    pub forward_webhooks_to: Option<String>,
    /// The `whsec_…` secret forwarded events are signed with.
    #[arg(
        long = "webhook-secret",
        env = "STRIPE_TWIN_WEBHOOK_SECRET",
        default_value = crate::webhooks::DEFAULT_FORWARD_SECRET
    )]
    pub webhook_secret: String,
    /// How long a webhook receiver has to answer (e.g. 10s, 500ms).
    #[arg(long, env = "STRIPE_TWIN_WEBHOOK_TIMEOUT", default_value = "10s")]
    pub webhook_timeout: String,
    /// The waits before each retry of a failed delivery, e.g. `1s,2s,5s`.
    #[arg(
        long,
        env = "STRIPE_TWIN_WEBHOOK_RETRY_SCHEDULE",
        default_value = crate::webhooks::DEFAULT_RETRY_SCHEDULE
    )]
    pub webhook_retry_schedule: String,
    /// Webhook deliveries in flight at once, per server process.
    #[arg(long, env = "STRIPE_TWIN_WEBHOOK_CONCURRENCY", default_value_t = 8)]
    pub webhook_concurrency: usize,
    /// A browser origin (e.g. http://localhost:3000) whose pages may call
    /// the API with a secret key; repeat it, or `*` for any. Publishable-key
    /// calls and the pages work from any origin.
    #[arg(
        long = "cors-allow-origin",
        env = "STRIPE_TWIN_CORS_ALLOW_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub cors_allow_origin: Vec<String>,
    /// `stripe` applies Stripe's test clock limits (3 customers per clock,
    /// 3 subscriptions per customer, advances of two intervals); `none`
    /// lifts them, to simulate years in one advance.
    #[arg(long, env = "STRIPE_TWIN_TEST_CLOCK_LIMITS", default_value = "stripe", value_parser = ["stripe", "none"])]
    pub test_clock_limits: String,
    /// Retries of a failed invoice payment: `smart` (8 tries within 2
    /// weeks), `none`, or up to three day counts between attempts (`3,5,7`).
    #[arg(long, env = "STRIPE_TWIN_RETRY_SCHEDULE", default_value = "smart")]
    pub retry_schedule: String,
    /// What a subscription becomes when its last retry failed: `cancel`,
    /// `unpaid` or `past_due`.
    #[arg(long, env = "STRIPE_TWIN_AFTER_RETRIES", default_value = "cancel")]
    pub after_retries: String,
    /// Hours a first invoice may stay unpaid before its subscription is
    /// `incomplete_expired`.
    #[arg(
        long,
        env = "STRIPE_TWIN_INCOMPLETE_EXPIRES_AFTER_HOURS",
        default_value_t = 23
    )]
    pub incomplete_expires_after_hours: i64,
    /// Days before a renewal that `invoice.upcoming` is sent (0: never).
    #[arg(long, env = "STRIPE_TWIN_UPCOMING_RENEWAL_DAYS", default_value_t = 7)]
    pub upcoming_renewal_days: i64,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Exit 0 when the server on --bind and --port answers /healthz with
    /// 200, 1 otherwise: a container HEALTHCHECK without curl.
    Healthcheck,
}

impl Config {
    /// The fixtures this configuration selects: none, a directory's, or
    /// the built-in ones.
    pub fn load_fixtures(&self, registry: &Registry) -> Result<Fixtures, FixtureError> {
        if self.no_fixtures {
            return Ok(Fixtures::none());
        }
        match self.fixtures.as_deref() {
            Some(dir) if !dir.is_empty() => Fixtures::from_dir(Path::new(dir), registry),
            _ => Fixtures::embedded(registry),
        }
    }
}

impl Config {
    /// `--public-url` without its trailing slash, or why it cannot be used:
    /// an http(s) URL with a host, maybe a path prefix, nothing else.
    pub fn public_url(&self) -> Result<Option<String>, String> {
        let Some(text) = self.public_url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let refuse = |why: &str| Err(format!("--public-url {why} (got '{text}')"));
        let Ok(url) = reqwest::Url::parse(text) else {
            return refuse("must be a URL such as http://localhost:12111");
        };
        if !matches!(url.scheme(), "http" | "https") {
            return refuse("must start with http:// or https://");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return refuse("must name a host");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return refuse("must not carry a user name or password");
        }
        if url.query().is_some() || url.fragment().is_some() {
            return refuse("must not have a query or a fragment");
        }
        Ok(Some(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// Where the healthcheck finds the server: --bind, or this machine
    /// when the server listens on every address.
    pub fn healthcheck_address(&self) -> (String, u16) {
        let host = match self.bind.as_str() {
            "0.0.0.0" | "" => "127.0.0.1",
            "::" | "[::]" => "::1",
            other => other.trim_start_matches('[').trim_end_matches(']'),
        };
        (host.to_owned(), self.port)
    }
}

impl Config {
    /// The webhook delivery settings, or what is wrong with them.
    pub fn webhook_settings(&self) -> Result<WebhookSettings, String> {
        let timeout = webhooks::parse_duration(&self.webhook_timeout)
            .map_err(|e| format!("--webhook-timeout: {e}"))?;
        let retry_schedule = webhooks::parse_schedule(&self.webhook_retry_schedule)
            .map_err(|e| format!("--webhook-retry-schedule: {e}"))?;
        let forward_to = match self.forward_webhooks_to.as_deref() {
            None | Some("") => None,
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.to_owned())
            }
            Some(url) => {
                return Err(format!(
                    "--forward-webhooks-to must be an http:// or https:// URL (got '{url}')"
                ));
            }
        };
        if !self.webhook_secret.starts_with("whsec_") {
            return Err("--webhook-secret must start with whsec_".to_owned());
        }
        Ok(WebhookSettings {
            timeout,
            retry_schedule,
            forward_to,
            forward_secret: self.webhook_secret.clone(),
            concurrency: self.webhook_concurrency.max(1),
            ..WebhookSettings::default()
        })
    }
}

impl Config {
    /// Whether the store is a Postgres server (which may not be up yet).
    /// The billing settings every account starts with.
    pub fn billing_settings(&self) -> Result<BillingSettings, String> {
        if !(1..=24 * 30).contains(&self.incomplete_expires_after_hours) {
            return Err("--incomplete-expires-after-hours must be between 1 and 720".into());
        }
        if !(0..=60).contains(&self.upcoming_renewal_days) {
            return Err("--upcoming-renewal-days must be between 0 and 60".into());
        }
        Ok(BillingSettings {
            retries: Retries::parse(&self.retry_schedule)?,
            after_retries: AfterRetries::parse(&self.after_retries)?,
            incomplete_hours: self.incomplete_expires_after_hours,
            upcoming_days: self.upcoming_renewal_days,
            test_clock_limits: self.test_clock_limits == "stripe",
        })
    }

    pub fn uses_postgres(&self) -> bool {
        !self.in_memory
            && self
                .database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    }
}

/// Which store a configuration selects, in words for the start-up line.
pub fn describe_store(config: &Config) -> String {
    if config.in_memory {
        return "sqlite (in memory)".into();
    }
    match config.database_url.as_deref() {
        Some(url) if url.starts_with("postgres") => format!("postgres {}", redact_password(url)),
        Some(url) => format!(
            "sqlite {}",
            url.trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
        ),
        None => format!("sqlite {}", config.db_path),
    }
}

fn redact_password(url: &str) -> String {
    let Some(scheme) = url.find("://").map(|at| at + 3) else {
        return url.to_owned();
    };
    let Some(at) = url[scheme..].rfind('@').map(|at| scheme + at) else {
        return url.to_owned();
    };
    match url[scheme..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..scheme + colon], &url[at..]),
        None => url.to_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("DATABASE_URL must start with postgres://, postgresql:// or sqlite:// (got '{0}')")]
    UnknownScheme(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Opens (and migrates) the store the configuration selects.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, OpenError> {
    if config.in_memory {
        return Ok(Arc::new(SqliteStore::open_memory().await?));
    }
    let store: StoreResult<Arc<dyn Store>> = match config.database_url.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            PostgresStore::connect(url, None)
                .await
                .map(|s| Arc::new(s) as Arc<dyn Store>)
        }
        Some(url) if url.starts_with("sqlite:") => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            SqliteStore::open_file(path)
                .await
                .map(|s| Arc::new(s) as Arc<dyn Store>)
        }
        Some(other) => return Err(OpenError::UnknownScheme(other.to_owned())),
        None => SqliteStore::open_file(&config.db_path)
            .await
            .map(|s| Arc::new(s) as Arc<dyn Store>),
    };
    Ok(store?)
}
