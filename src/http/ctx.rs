//! [`Ctx`], who is calling and how, and its reads: objects as this request
//! sees them, its staged writes laid over what the store has.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use crate::core::registry::Registry;
use crate::http::error::{ApiError, ApiResult};
use crate::http::object_time::{CLOCK_OBJECT, ObjectTime};
use crate::http::state::AppState;
use crate::http::unit_of_work::UnitOfWork;
use crate::store::{DueItem, ListQuery, Record, Store, Write};

/// Who is calling and how, for one request.
#[derive(Clone)]
pub struct Ctx {
    pub state: AppState,
    pub account: String,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    pub expand: Vec<String>,
    /// Who is calling: for mandates accepted online (`infer_from_client`).
    pub client: ClientInfo,
    /// This server's address as the caller reaches it, for URLs we hand out.
    pub origin: String,
    /// An API request's staged writes, committed when it has answered;
    /// None (pages) commits each change at once.
    pub unit: Option<Arc<UnitOfWork>>,
    /// Whose time it acts in: real time or a test clock's.
    pub time: Arc<ObjectTime>,
}

impl Ctx {
    /// A buyer on one of this server's pages, acting in `account`: events
    /// they cause carry no API request.
    pub fn for_page(state: &AppState, account: String, parts: &axum::http::request::Parts) -> Self {
        Self {
            state: state.clone(),
            account,
            request_id: String::new(),
            idempotency_key: None,
            expand: Vec::new(),
            client: ClientInfo::of(parts),
            origin: origin(state, parts),
            unit: None,
            time: Arc::new(ObjectTime::undecided(
                parts.method != axum::http::Method::GET,
            )),
        }
    }

    /// The scheduler running due work in `account`: no request, no caller.
    /// Its handlers return their writes, committed with the item's
    /// completion (`commit` here would write at once).
    pub fn for_worker(state: &AppState, account: String) -> Self {
        Self {
            state: state.clone(),
            account,
            request_id: String::new(),
            idempotency_key: None,
            expand: Vec::new(),
            client: ClientInfo::default(),
            origin: state.own_url(),
            unit: None,
            time: Arc::new(ObjectTime::undecided(false)),
        }
    }

    /// The same worker acting at `frozen` on test clock `clock`'s time.
    pub fn on_clock(mut self, clock: &str, frozen: i64) -> Self {
        self.time = Arc::new(ObjectTime::on_clock(clock, frozen));
        self
    }
}

#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip_address: String,
    pub user_agent: String,
}

impl ClientInfo {
    /// The first `X-Forwarded-For` hop when a proxy sets it, else the peer.
    pub fn of(parts: &axum::http::request::Parts) -> Self {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip().to_string());
        Self {
            ip_address: forwarded.or(peer).unwrap_or_else(|| "127.0.0.1".to_owned()),
            user_agent: parts
                .headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// `PUBLIC_URL` when configured, else `http://` + the request's Host.
pub fn origin(state: &AppState, parts: &axum::http::request::Parts) -> String {
    if let Some(url) = state.public_url() {
        return url.to_owned();
    }
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("127.0.0.1:12111");
    format!("http://{host}")
}

impl Ctx {
    pub fn store(&self) -> &dyn Store {
        self.state.store()
    }

    /// What stripe-twin knows about each object type.
    pub fn registry(&self) -> &'static Registry {
        self.state.registry()
    }

    /// How Stripe names an object type in "No such ..." messages.
    pub fn display_name<'a>(&self, object: &'a str) -> &'a str {
        self.registry().display_name(object)
    }

    /// Loads an object of the given type; anything else is `resource_missing`.
    pub async fn load(&self, object: &str, id: &str, param: &str) -> ApiResult<Record> {
        match self.get(id).await? {
            Some(record) if record.object == object => Ok(record),
            _ => Err(ApiError::no_such(self.display_name(object), id, param)),
        }
    }

    /// An object of the caller's account as this request sees it: what it
    /// has written itself, else what the store has.
    pub async fn get(&self, id: &str) -> ApiResult<Option<Record>> {
        if let Some(unit) = &self.unit {
            if let Some(staged) = unit.get(&self.account, id) {
                return Ok(Some(staged));
            }
            let stored = self.store().get(&self.account, id).await?;
            if let Some(record) = &stored {
                unit.note_read(&self.account, record);
                self.follow_clock(record).await?;
            }
            return Ok(stored);
        }
        let stored = self.store().get(&self.account, id).await?;
        if let Some(record) = &stored {
            self.follow_clock(record).await?;
        }
        Ok(stored)
    }

    /// The caller's objects among `ids` (each once, in no order), as this
    /// request sees them.
    pub async fn get_many(&self, ids: &[String]) -> ApiResult<Vec<Record>> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.unit.as_ref().and_then(|u| u.get(&self.account, id)) {
                Some(staged) => found.push(staged),
                None if !missing.contains(id) => missing.push(id.clone()),
                None => {}
            }
        }
        found.extend(self.store().get_many(&self.account, &missing).await?);
        Ok(found)
    }

    /// For each owner, its newest `per_owner` objects of a type (see
    /// [`Store::list_per_owner`]), as this request sees them.
    pub async fn list_per_owner(
        &self,
        object: &'static str,
        owner: crate::store::Owner,
        owners: &[String],
        per_owner: i64,
    ) -> ApiResult<Vec<Record>> {
        let staged = self
            .unit
            .as_ref()
            .map_or(0, |u| u.staged_count(&self.account, object));
        let stored = self
            .store()
            .list_per_owner(
                &self.account,
                object,
                owner,
                owners,
                per_owner + staged as i64,
            )
            .await?;
        let Some(unit) = self.unit.as_ref().filter(|_| staged > 0) else {
            return Ok(stored);
        };
        let mut query = ListQuery::new(object);
        query.limit = i64::MAX;
        let mut merged = unit.overlay(&self.account, &query, stored);
        merged.retain(|r| owner.of(r).is_some_and(|o| owners.iter().any(|w| w == o)));
        let mut kept: HashMap<String, i64> = HashMap::new();
        merged.retain(|r| {
            let count = kept
                .entry(owner.of(r).unwrap_or_default().to_owned())
                .or_default();
            *count += 1;
            *count <= per_owner
        });
        Ok(merged)
    }

    /// An object by id alone (client secrets, page tokens), with its account.
    pub async fn find(&self, id: &str) -> ApiResult<Option<(String, Record)>> {
        if let Some(unit) = &self.unit
            && let Some(staged) = unit.get(&self.account, id)
        {
            return Ok(Some((self.account.clone(), staged)));
        }
        Ok(self.store().find(id).await?)
    }

    /// The records a list query selects, as this request sees them.
    pub async fn list_records(&self, query: &ListQuery) -> ApiResult<Vec<Record>> {
        let Some(unit) = &self.unit else {
            return Ok(self.store().list(&self.account, query).await?);
        };
        let staged = unit.staged_count(&self.account, query.object);
        if staged == 0 {
            return Ok(self.store().list(&self.account, query).await?);
        }
        let mut wider = query.clone();
        wider.limit = query.limit.saturating_add(staged as i64);
        let stored = self.store().list(&self.account, &wider).await?;
        Ok(unit.overlay(&self.account, query, stored))
    }
}

impl Ctx {
    /// The time, for everything an object records or falls due at: the
    /// frozen time of the request's test clock, else real time.
    pub fn now(&self) -> i64 {
        self.time.now(self.state.clock().now())
    }

    /// The current year on the same clock, for card expiry checks.
    pub fn year(&self) -> i64 {
        crate::clock::year_of(self.now())
    }

    /// The test clock this request's objects follow, if any.
    pub fn test_clock(&self) -> Option<String> {
        self.time.clock()
    }

    /// Puts this request on the time of `record`'s customer (or of the
    /// customer `record` is), unless its time is decided already. Refuses
    /// a change to the objects of a clock that is advancing.
    pub async fn follow_clock(&self, record: &Record) -> ApiResult<()> {
        if !self.time.is_undecided() {
            return Ok(());
        }
        let clock = if record.object == "customer" {
            record.data["test_clock"].as_str().map(str::to_owned)
        } else if let Some(customer) = &record.customer {
            let staged = self
                .unit
                .as_ref()
                .and_then(|u| u.get(&self.account, customer));
            let customer = match staged {
                Some(staged) => Some(staged),
                None => self.store().get(&self.account, customer).await?,
            };
            customer.and_then(|c| c.data["test_clock"].as_str().map(str::to_owned))
        } else {
            return Ok(());
        };
        match clock {
            Some(id) => self.follow_clock_id(&id).await,
            None => {
                self.time.pin_wall();
                Ok(())
            }
        }
    }

    /// Puts this request on the time of the customer a request names in
    /// `customer` (before anything reads the time).
    pub async fn follow_customer_param(
        &self,
        params: &crate::http::params::Params,
    ) -> ApiResult<()> {
        if let Some(customer) = params.peek_str("customer") {
            self.get(customer).await?;
        }
        Ok(())
    }

    /// Puts this request on test clock `id`'s time (a customer created on
    /// it). A missing clock is Stripe's 400 for a missing reference, under
    /// its name for clocks.
    pub async fn follow_clock_id(&self, id: &str) -> ApiResult<()> {
        match self.store().get(&self.account, id).await? {
            Some(clock) if clock.object == CLOCK_OBJECT && !clock.deleted => {
                self.time.pin_clock(id, &clock.data)
            }
            _ => Err(ApiError::no_such_reference(
                "billingclock",
                id,
                "test_clock",
            )),
        }
    }

    /// Work due at `due_at` (unix seconds) on this request's time: it
    /// follows the request's test clock, if it has one.
    pub fn due_item(
        &self,
        id: String,
        kind: &str,
        target: &str,
        due_at: i64,
        payload: Value,
    ) -> DueItem {
        DueItem {
            id,
            account: self.account.clone(),
            test_clock: self.test_clock(),
            due_at: due_at.saturating_mul(1000),
            kind: kind.to_owned(),
            target: target.to_owned(),
            payload,
            claimed_by: None,
        }
    }
}

/// What happens to the objects a PaymentIntent pays for when it moves: the
/// invoice it pays settles, then that invoice's subscription. Declared here
/// so the payments and billing resources can ask for it without importing
/// the ones above them; `resources::settlement` implements it for [`Ctx`].
pub trait Settlement {
    /// After a PaymentIntent moved (a client confirm, the authorization
    /// page): its invoice, and that invoice's subscription.
    fn intent_moved<'a>(
        &'a self,
        intent: &'a Value,
        writes: &'a mut Vec<Write>,
    ) -> impl Future<Output = ApiResult<()>> + Send + 'a;

    /// After an invoice was paid (by `intent`, or with nothing left to
    /// pay): its subscription.
    fn invoice_paid<'a>(
        &'a self,
        invoice: &'a Value,
        intent: &'a Value,
        writes: &'a mut Vec<Write>,
    ) -> impl Future<Output = ApiResult<()>> + Send + 'a;
}
