//! The app state every request shares: the store, the clock, fixtures and
//! their seeding, webhook and scheduler settings, time limits and CORS.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, StatusCode};

use crate::core::billing_settings::BillingSettings;
use crate::core::registry::Registry;
use crate::fixtures::{self, Fixtures};
use crate::http::error::{ApiError, ApiResult};
use crate::scheduler::settings::SchedulerSettings;
use crate::store::{Store, StoreResult, Write};
use crate::webhooks::settings::WebhookSettings;

/// The API version whose object shapes this server emulates.
pub const API_VERSION: &str = "2026-10-28.endive";

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// Time limits that keep slow clients and a stuck store from holding the
/// server's connections and requests.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For a request's head to arrive; also how long an idle keep-alive
    /// connection stays open.
    pub header: std::time::Duration,
    /// For a request's body to arrive.
    pub body: std::time::Duration,
    /// For a whole request.
    pub request: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header: std::time::Duration::from_secs(30),
            body: std::time::Duration::from_secs(10),
            request: std::time::Duration::from_secs(30),
        }
    }
}

pub struct Shared {
    pub store: Arc<dyn Store>,
    /// Base URL for pages this server links to; None means the request's Host.
    pub public_url: Option<String>,
    /// Where this server listens, for links made outside any request (a
    /// renewal's authorization page) when there is no `PUBLIC_URL`.
    pub listening_at: std::sync::OnceLock<String>,
    /// The objects every account starts with.
    pub fixtures: Fixtures,
    /// How events reach webhook endpoints.
    pub webhooks: WebhookSettings,
    /// Wakes this process's webhook worker when a commit wrote events.
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// Wakes this process's scheduler when a commit stored due work.
    pub scheduler_wake: Arc<tokio::sync::Notify>,
    /// How long clients and requests may take.
    pub limits: Limits,
    /// How the scheduler polls for due work and holds its claims.
    pub scheduler: SchedulerSettings,
    /// Browser origins whose pages may call the API with a secret key
    /// (`*`: any); publishable-key calls come from anywhere.
    pub cors_origins: Vec<String>,
    /// Accounts this process knows have their fixtures. Only a shortcut:
    /// the marker record in the store is the truth, so server processes
    /// sharing one database agree.
    seeded: RwLock<HashSet<String>>,
    /// The time objects live in.
    pub clock: crate::clock::Clock,
    /// Every object type the resources serve.
    pub registry: &'static Registry,
    /// The billing settings accounts start with.
    pub billing: BillingSettings,
}

impl AppState {
    /// A server serving the object types of `registry`, with its fixtures
    /// and its webhook delivery settings (`stripe_twin::AppState::build`
    /// passes the resources' registry: this layer imports no resource).
    pub fn assemble(
        registry: &'static Registry,
        store: Arc<dyn Store>,
        public_url: Option<String>,
        fixtures: Fixtures,
        webhooks: WebhookSettings,
    ) -> Self {
        Self(Arc::new(Shared {
            store: crate::store::Deadline::wrap(store),
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            listening_at: std::sync::OnceLock::new(),
            fixtures,
            webhooks,
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
            scheduler_wake: Arc::new(tokio::sync::Notify::new()),
            limits: Limits::default(),
            scheduler: Default::default(),
            cors_origins: Vec::new(),
            seeded: RwLock::new(HashSet::new()),
            clock: crate::clock::Clock,
            registry,
            billing: BillingSettings::default(),
        }))
    }

    /// Changes a setting before the server is shared (serving clones it);
    /// once shared, the old setting stays and the mistake is logged.
    fn configured(mut self, what: &str, set: impl FnOnce(&mut Shared)) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(shared) => set(shared),
            None => tracing::error!("{what} set on a server already shared; kept the old ones"),
        }
        self
    }

    /// The same server with other time limits (before it serves).
    pub fn with_limits(self, limits: Limits) -> Self {
        self.configured("time limits", |shared| shared.limits = limits)
    }

    pub fn limits(&self) -> Limits {
        self.0.limits
    }

    /// The same server with other scheduler settings (before it serves).
    pub fn with_scheduler(self, settings: SchedulerSettings) -> Self {
        self.configured("scheduler settings", |shared| shared.scheduler = settings)
    }

    /// The same server with other default billing settings (before it serves).
    pub fn with_billing(self, settings: BillingSettings) -> Self {
        self.configured("billing settings", |shared| shared.billing = settings)
    }

    pub fn billing(&self) -> &BillingSettings {
        &self.0.billing
    }

    pub fn scheduler(&self) -> &SchedulerSettings {
        &self.0.scheduler
    }

    /// The same server letting pages from `origins` use secret keys.
    pub fn with_cors_origins(self, origins: Vec<String>) -> Self {
        self.configured("CORS origins", |shared| shared.cors_origins = origins)
    }

    /// Refuses a secret-key call made by a web page (it sends `Origin`)
    /// from an origin not allowed: any page a developer visits could
    /// otherwise drive a local stripe-twin with a well-known test key.
    pub(super) fn check_origin(&self, headers: &HeaderMap) -> ApiResult<()> {
        let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
            return Ok(());
        };
        let origin = String::from_utf8_lossy(origin.as_bytes());
        let allowed = &self.0.cors_origins;
        if allowed
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/') == origin)
        {
            return Ok(());
        }
        Err(ApiError::invalid(format!(
            "stripe-twin refuses calls with a secret API key from a web page (origin {origin}): a browser must not hold a secret key, and any page you visit could otherwise use one. Start stripe-twin with --cors-allow-origin {origin} (or '*') to allow this origin; publishable-key calls work from any page."
        ))
        .with_status(StatusCode::FORBIDDEN))
    }

    /// The store, shared with the webhook worker.
    pub fn store_handle(&self) -> Arc<dyn Store> {
        self.0.store.clone()
    }

    /// What the webhook worker waits on between polls.
    pub fn webhook_wake(&self) -> Arc<tokio::sync::Notify> {
        self.0.webhook_wake.clone()
    }

    /// What the scheduler waits on between polls.
    pub fn scheduler_wake(&self) -> Arc<tokio::sync::Notify> {
        self.0.scheduler_wake.clone()
    }

    pub fn webhooks(&self) -> &WebhookSettings {
        &self.0.webhooks
    }

    pub fn fixtures(&self) -> &Fixtures {
        &self.0.fixtures
    }

    /// Gives `account` its copy of the fixtures on its first use.
    pub async fn ensure_seeded(&self, account: &str) -> StoreResult<()> {
        if self.0.fixtures.is_empty()
            || self
                .0
                .seeded
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(account)
        {
            return Ok(());
        }
        self.reseed(account).await
    }

    /// Seeds `account` unless the store says it has its fixtures, whatever
    /// this process remembers (after a wipe).
    pub async fn reseed(&self, account: &str) -> StoreResult<()> {
        let seeded =
            fixtures::seed(self.store(), account, &self.0.fixtures, self.clock().now()).await;
        let mut known = self.0.seeded.write().unwrap_or_else(|e| e.into_inner());
        match seeded {
            Ok(_) => {
                known.insert(account.to_owned());
                Ok(())
            }
            Err(err) => {
                // Try again on the account's next request.
                known.remove(account);
                Err(err)
            }
        }
    }

    pub fn registry(&self) -> &'static Registry {
        self.0.registry
    }

    pub fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    pub fn clock(&self) -> crate::clock::Clock {
        self.0.clock
    }

    pub fn public_url(&self) -> Option<&str> {
        self.0.public_url.as_deref()
    }

    /// Records where the server listens (an unspecified address becomes
    /// `localhost`), once.
    pub fn listening_on(&self, address: std::net::SocketAddr) {
        let host = match address.ip() {
            ip if ip.is_unspecified() => "localhost".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let _ = self
            .0
            .listening_at
            .set(format!("http://{host}:{}", address.port()));
    }

    /// The base URL of links this server makes outside a request:
    /// `PUBLIC_URL`, else where it listens.
    pub fn own_url(&self) -> String {
        match self.public_url() {
            Some(url) => url.to_owned(),
            None => self
                .0
                .listening_at
                .get()
                .cloned()
                .unwrap_or_else(|| "http://localhost:12111".to_owned()),
        }
    }

    /// After a commit: events are waiting for the webhook worker.
    pub fn committed(&self, writes: &[Write]) {
        if writes
            .iter()
            .any(|w| matches!(w, Write::Insert(r) if r.object == "event"))
        {
            self.0.webhook_wake.notify_one();
        }
        if writes.iter().any(|w| matches!(w, Write::Schedule(_))) {
            self.0.scheduler_wake.notify_one();
        }
    }
}
