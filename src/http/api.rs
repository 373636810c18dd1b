//! The request contract every endpoint shares: authentication, parameter
//! decoding, `expand[]`, lists, events and optimistic writes. Handlers get a
//! [`Call`] (context + parameters) and answer through [`Ctx`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};

use crate::fixtures::{self, Fixtures};
use crate::http::auth::{self, KeyKind};
use crate::http::error::{ApiError, ApiResult};
use crate::http::expand;
use crate::http::form;
use crate::http::params::Params;
use crate::http::search;
use crate::http::unit_of_work::UnitOfWork;
use crate::ids;
use crate::store::{Cursor, ListQuery, Range, Record, Store, StoreError, StoreResult, Write};
use crate::webhooks::WebhookSettings;

/// The API version whose object shapes this server emulates.
pub const API_VERSION: &str = "2026-10-28.endive";
/// Larger bodies are refused with 413 before they are decoded.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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
    /// The objects every account starts with.
    pub fixtures: Fixtures,
    /// How events reach webhook endpoints.
    pub webhooks: WebhookSettings,
    /// Wakes this process's webhook worker when a commit wrote events.
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// How long clients and requests may take.
    pub limits: Limits,
    /// How the scheduler polls for due work and holds its claims.
    pub scheduler: crate::scheduler::SchedulerSettings,
    /// Browser origins whose pages may call the API with a secret key
    /// (`*`: any); publishable-key calls come from anywhere.
    pub cors_origins: Vec<String>,
    /// Accounts this process knows have their fixtures. Only a shortcut:
    /// the marker record in the store is the truth, so server processes
    /// sharing one database agree.
    seeded: RwLock<HashSet<String>>,
    /// The time objects live in.
    pub clock: crate::clock::Clock,
}

impl AppState {
    /// A server whose accounts start empty.
    pub fn new(store: Arc<dyn Store>, public_url: Option<String>) -> Self {
        Self::with_fixtures(store, public_url, Fixtures::none())
    }

    /// A server whose every account starts with its own copy of `fixtures`.
    pub fn with_fixtures(
        store: Arc<dyn Store>,
        public_url: Option<String>,
        fixtures: Fixtures,
    ) -> Self {
        Self::build(store, public_url, fixtures, WebhookSettings::default())
    }

    /// A server with its fixtures and its webhook delivery settings.
    pub fn build(
        store: Arc<dyn Store>,
        public_url: Option<String>,
        fixtures: Fixtures,
        webhooks: WebhookSettings,
    ) -> Self {
        Self(Arc::new(Shared {
            store: crate::store::Deadline::wrap(store),
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            fixtures,
            webhooks,
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
            limits: Limits::default(),
            scheduler: Default::default(),
            cors_origins: Vec::new(),
            seeded: RwLock::new(HashSet::new()),
            clock: crate::clock::Clock,
        }))
    }

    /// The same server with other time limits (before it serves).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(shared) => shared.limits = limits,
            None => {
                tracing::error!("time limits set on a server already shared; kept the old ones")
            }
        }
        self
    }

    pub fn limits(&self) -> Limits {
        self.0.limits
    }

    /// The same server with other scheduler settings (before it serves).
    pub fn with_scheduler(mut self, settings: crate::scheduler::SchedulerSettings) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(shared) => shared.scheduler = settings,
            None => {
                tracing::error!(
                    "scheduler settings set on a server already shared; kept the old ones"
                )
            }
        }
        self
    }

    pub fn scheduler(&self) -> &crate::scheduler::SchedulerSettings {
        &self.0.scheduler
    }

    /// The same server letting pages from `origins` use secret keys.
    pub fn with_cors_origins(mut self, origins: Vec<String>) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(shared) => shared.cors_origins = origins,
            None => {
                tracing::error!("CORS origins set on a server already shared; kept the old ones")
            }
        }
        self
    }

    /// Refuses a secret-key call made by a web page (it sends `Origin`)
    /// from an origin not allowed: any page a developer visits could
    /// otherwise drive a local stripe-twin with a well-known test key.
    fn check_origin(&self, headers: &HeaderMap) -> ApiResult<()> {
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

    pub fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    pub fn clock(&self) -> crate::clock::Clock {
        self.0.clock
    }

    pub fn public_url(&self) -> Option<&str> {
        self.0.public_url.as_deref()
    }

    /// After a commit: events are waiting for the webhook worker.
    pub fn committed(&self, writes: &[Write]) {
        if writes
            .iter()
            .any(|w| matches!(w, Write::Insert(r) if r.object == "event"))
        {
            self.0.webhook_wake.notify_one();
        }
    }
}

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
            origin: state.public_url().unwrap_or_default().to_owned(),
            unit: None,
        }
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

/// What a handler receives: the context and the parameters still to take.
pub struct Call {
    pub ctx: Ctx,
    pub params: Params,
}

impl FromRequest<AppState> for Call {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (key, ctx, params) = decode_call(req, state).await?;
        if key.kind == KeyKind::Publishable {
            return Err(ApiError::unauthorized(PUBLISHABLE_REFUSED));
        }
        Ok(Call { ctx, params })
    }
}

const PUBLISHABLE_REFUSED: &str = "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.";

/// A call that a browser may also make with a publishable key plus the
/// object's client secret (what Stripe.js does). Until `load_client_object`
/// runs, a publishable caller has no account at all.
pub struct ClientCall {
    pub ctx: Ctx,
    pub params: Params,
    pub publishable: bool,
}

impl FromRequest<AppState> for ClientCall {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (key, ctx, mut params) = decode_call(req, state).await?;
        let publishable = key.kind == KeyKind::Publishable;
        if publishable {
            // Stripe.js bookkeeping that carries no meaning here.
            for extra in [
                "_stripe_version",
                "use_stripe_sdk",
                "expected_payment_method_type",
            ] {
                params.take_node(extra);
            }
        }
        Ok(ClientCall {
            ctx,
            params,
            publishable,
        })
    }
}

impl ClientCall {
    /// Loads the object the path names. A secret key loads from its own
    /// account (checking `client_secret` when one is sent); a publishable
    /// key must present the object's `client_secret`, and the call then acts
    /// in the object's account.
    pub async fn load_client_object(
        &mut self,
        object: &str,
        id: &str,
        visible_with_publishable_key: &[&str],
    ) -> ApiResult<Record> {
        let secret = self.params.string("client_secret")?;
        let record = if self.publishable {
            let secret = secret
                .clone()
                .ok_or_else(|| ApiError::missing_param("client_secret"))?;
            match self.ctx.find(id).await? {
                Some((account, record)) if record.object == object => {
                    if record.data["client_secret"] != json!(secret) {
                        return Err(client_secret_mismatch(object));
                    }
                    self.ctx.account = account;
                    record
                }
                _ => return Err(ApiError::no_such(display_name(object), id, "intent")),
            }
        } else {
            self.ctx.load(object, id, "intent").await?
        };
        if let Some(secret) = secret
            && record.data["client_secret"] != json!(secret)
        {
            return Err(client_secret_mismatch(object));
        }
        if self.publishable {
            for path in &self.ctx.expand {
                if !visible_with_publishable_key.contains(&path.as_str()) {
                    return Err(ApiError::invalid_param(
                        "expand",
                        format!(
                            "This property cannot be expanded ({path}) with a publishable API key."
                        ),
                    ));
                }
            }
        }
        Ok(record)
    }

    /// What the caller may see: everything with a secret key, the fields
    /// Stripe marks as retrievable with a publishable key otherwise.
    pub async fn respond(&self, value: Value, visible: &[&str]) -> ApiResult<Json<Value>> {
        let mut value = value;
        if self.publishable
            && let Value::Object(map) = &mut value
        {
            map.retain(|key, _| visible.contains(&key.as_str()));
        }
        self.ctx.respond(value).await
    }
}

fn client_secret_mismatch(object: &str) -> ApiError {
    ApiError::invalid_param(
        "client_secret",
        format!(
            "The client_secret provided does not match the client_secret associated with the {}.",
            match object {
                "setup_intent" => "SetupIntent",
                "payment_intent" => "PaymentIntent",
                other => other,
            }
        ),
    )
}

/// Authenticates and decodes a request: the key (from the Authorization
/// header, or the `key` parameter Stripe.js sends with a publishable key),
/// the call context, and the parameters from the query string and the body.
async fn decode_call(req: Request, state: &AppState) -> ApiResult<(auth::ApiKey, Ctx, Params)> {
    let (parts, body) = req.into_parts();
    let mut map = match parts.uri.query() {
        Some(query) => form::decode(query.as_bytes()).map_err(decode_error)?,
        None => BTreeMap::new(),
    };
    let header_key = if parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        Some(auth::api_key_from_headers(&parts.headers)?)
    } else {
        None
    };
    if parts.method == Method::POST {
        check_content_type(&parts.headers)?;
        let bytes = read_body(body, state.limits().body).await?;
        map.extend(form::decode(&bytes).map_err(decode_error)?);
    }
    if let Some(template) = parts.extensions.get::<axum::extract::MatchedPath>() {
        crate::http::param_limits::check(parts.method.as_str(), template.as_str(), &map)?;
    }
    // Answered after authentication, as Stripe checks the key first.
    let not_emulated = match parts.extensions.get::<axum::extract::MatchedPath>() {
        Some(route) => crate::http::not_emulated::refuse(&parts.method, route.as_str(), &mut map),
        None => Ok(()),
    };
    let mut params = Params::new(map);
    let param_key = params.string("key")?;
    let key = match (header_key, param_key) {
        (Some(key), _) => key,
        (None, Some(key)) => {
            let key = auth::parse_key(&key)?;
            if key.kind != KeyKind::Publishable {
                return Err(ApiError::unauthorized(
                    "Only a publishable key may be sent as the `key` parameter; send secret keys in the Authorization header.",
                ));
            }
            key
        }
        (None, None) => auth::api_key_from_headers(&parts.headers)?,
    };
    if key.kind != KeyKind::Publishable {
        state.check_origin(&parts.headers)?;
    }
    not_emulated?;
    let expand = params.string_list("expand")?.unwrap_or_default();
    let request_id = parts
        .headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let idempotency_key = crate::http::idempotency::key_of(&parts.headers, &parts.method)?;
    // A publishable key's account is the object's, found later; it was
    // seeded when the object was made with a secret key.
    let account = match key.kind {
        KeyKind::Publishable => String::new(),
        _ => key.account(),
    };
    if !account.is_empty() {
        state.ensure_seeded(&account).await?;
    }
    let ctx = Ctx {
        state: state.clone(),
        account,
        request_id,
        idempotency_key,
        expand,
        client: ClientInfo::of(&parts),
        origin: origin(state, &parts),
        unit: parts.extensions.get::<Arc<UnitOfWork>>().cloned(),
    };
    Ok((key, ctx, params))
}

pub fn decode_error(err: form::DecodeError) -> ApiError {
    ApiError::invalid(err.to_string())
}

fn check_content_type(headers: &HeaderMap) -> ApiResult<()> {
    let Some(content_type) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let content_type = content_type.to_str().unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "Invalid request: this API takes its parameters form-encoded, as Stripe's API does. Send them with 'Content-Type: application/x-www-form-urlencoded' (you sent '{content_type}'), using bracket notation for nested parameters, e.g. metadata[order_id]=6735."
    )))
}

/// Reads a whole request body, refusing one over [`MAX_BODY_BYTES`] and
/// one that does not arrive in time.
pub async fn read_body(body: Body, limit: std::time::Duration) -> ApiResult<Bytes> {
    let read = tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_BODY_BYTES));
    match read.await {
        Ok(Ok(bytes)) => Ok(bytes),
        Err(_) => Err(ApiError::invalid(format!(
            "The request body did not arrive within {} ms: it is shorter than its Content-Length, or the client stopped sending it.",
            limit.as_millis()
        ))
        .with_status(StatusCode::REQUEST_TIMEOUT)),
        Ok(Err(err)) if error_chain(&err).contains("length limit") => Err(ApiError::invalid(format!(
            "The request body is too large: the limit is {MAX_BODY_BYTES} bytes."
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)),
        Ok(Err(err)) => Err(ApiError::invalid(format!(
            "The request body could not be read: {}",
            error_chain(&err)
        ))),
    }
}

/// An error and its causes, in words.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut words = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        words.push_str(": ");
        words.push_str(&cause.to_string());
        source = cause.source();
    }
    words
}

/// Paging parameters shared by every list endpoint.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub limit: i64,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
    pub created: Range,
}

impl ListParams {
    pub fn take(params: &mut Params) -> ApiResult<Self> {
        let limit = params.int("limit")?.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid_param(
                "limit",
                format!("Invalid limit: must be between 1 and 100 (you sent {limit})"),
            ));
        }
        let starting_after = params.string("starting_after")?;
        let ending_before = params.string("ending_before")?;
        if starting_after.is_some() && ending_before.is_some() {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
            .with_code("parameters_exclusive")
            .with_param("ending_before"));
        }
        let created = take_range(params, "created")?.unwrap_or_default();
        Ok(Self {
            limit,
            starting_after,
            ending_before,
            created,
        })
    }
}

/// One page of a list embedded in an object (an invoice's lines, a Checkout
/// Session's line items), in its stored order: the items and `has_more`.
pub fn page_of_embedded(items: &[Value], paging: &ListParams) -> ApiResult<(Vec<Value>, bool)> {
    let position = |id: &str, param: &str| {
        items
            .iter()
            .position(|item| item["id"] == json!(id))
            .ok_or_else(|| ApiError::no_such("line_item", id, param))
    };
    let limit = paging.limit as usize;
    let (start, end) = match (&paging.starting_after, &paging.ending_before) {
        (Some(after), _) => {
            let start = position(after, "starting_after")? + 1;
            (start, (start + limit).min(items.len()))
        }
        (_, Some(before)) => {
            let end = position(before, "ending_before")?;
            (end.saturating_sub(limit), end)
        }
        _ => (0, limit.min(items.len())),
    };
    let has_more = match &paging.ending_before {
        Some(_) => start > 0,
        None => end < items.len(),
    };
    Ok((items[start.min(end)..end].to_vec(), has_more))
}

/// `key=N` or `key[gt|gte|lt|lte]=N`.
pub fn take_range(params: &mut Params, key: &str) -> ApiResult<Option<Range>> {
    if !params.contains(key) {
        return Ok(None);
    }
    if params.is_map(key) {
        let mut bounds = params.object(key)?.expect("checked above");
        let range = Range {
            gt: bounds.int("gt")?,
            gte: bounds.int("gte")?,
            lt: bounds.int("lt")?,
            lte: bounds.int("lte")?,
        };
        bounds.finish()?;
        return Ok(Some(range));
    }
    let exact = params.int(key)?;
    Ok(exact.map(|t| Range {
        gte: Some(t),
        lte: Some(t),
        ..Range::default()
    }))
}

impl Ctx {
    /// The time, for everything an object records or falls due at. The
    /// only way handlers learn it: once test clocks exist, it answers the
    /// frozen time of the clock the account's objects belong to.
    pub fn now(&self) -> i64 {
        self.state.clock().now()
    }

    /// The current year on the same clock, for card expiry checks.
    pub fn year(&self) -> i64 {
        self.state.clock().year()
    }

    pub fn store(&self) -> &dyn Store {
        self.state.store()
    }

    /// Loads an object of the given type; anything else is `resource_missing`.
    pub async fn load(&self, object: &str, id: &str, param: &str) -> ApiResult<Record> {
        match self.get(id).await? {
            Some(record) if record.object == object => Ok(record),
            _ => Err(ApiError::no_such(display_name(object), id, param)),
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
            }
            return Ok(stored);
        }
        Ok(self.store().get(&self.account, id).await?)
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

    /// Answers with an object after applying the request's `expand[]`.
    pub async fn respond(&self, mut value: Value) -> ApiResult<Json<Value>> {
        expand::expand(self, &mut value, &self.expand).await?;
        Ok(Json(value))
    }

    /// Runs a list query with the request's paging, answering a list object.
    pub async fn list(
        &self,
        mut query: ListQuery,
        paging: &ListParams,
        url: &str,
    ) -> ApiResult<Json<Value>> {
        query.created = paging.created;
        query.limit = paging.limit + 1;
        query.cursor = match (&paging.starting_after, &paging.ending_before) {
            (Some(id), _) => Cursor::After(
                self.cursor_position(query.object, id, "starting_after")
                    .await?,
            ),
            (_, Some(id)) => Cursor::Before(
                self.cursor_position(query.object, id, "ending_before")
                    .await?,
            ),
            _ => Cursor::Start,
        };
        let mut records = self.list_records(&query).await?;
        let has_more = records.len() as i64 > paging.limit;
        if has_more {
            match query.cursor {
                // Paging backwards, the extra record is the newest one: first.
                Cursor::Before(_) => {
                    records.remove(0);
                }
                _ => {
                    records.pop();
                }
            }
        }
        let data: Vec<Value> = records.into_iter().map(|r| r.data).collect();
        self.respond(json!({
            "object": "list",
            "data": data,
            "has_more": has_more,
            "url": url,
        }))
        .await
    }

    /// `GET /v1/<resource>/search`: takes `query`, `limit` and `page`,
    /// checks the query against the resource's fields and runs it.
    pub async fn search_resource(
        &self,
        mut params: Params,
        spec: &search::Spec,
    ) -> ApiResult<Json<Value>> {
        let query = params.required_string("query")?;
        let limit = params.int("limit")?.unwrap_or(10);
        let page = params.string("page")?;
        params.finish()?;
        let query = spec.query(&query)?;
        self.search(spec.object, &query, limit, page.as_deref(), spec.url)
            .await
    }

    /// Runs a search over one object type, newest first, with Stripe's
    /// `page`/`next_page` paging.
    pub async fn search(
        &self,
        object: &'static str,
        query: &search::Query,
        limit: i64,
        page: Option<&str>,
        url: &str,
    ) -> ApiResult<Json<Value>> {
        const BATCH: i64 = 500;
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid_param(
                "limit",
                format!("Invalid limit: must be between 1 and 100 (you sent {limit})"),
            ));
        }
        let mut cursor = match page {
            None => Cursor::Start,
            Some(token) => Cursor::After(
                token
                    .strip_prefix("page_")
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        ApiError::invalid_param("page", format!("Invalid page: {token}"))
                    })?,
            ),
        };
        let mut matched = Vec::new();
        'scan: loop {
            let mut batch_query = ListQuery::new(object);
            for field in crate::store::FOLDED_INDEXES {
                // An indexed exact match narrows the scan to its candidates.
                if let Some(text) = query.required_text(field).filter(|t| t.is_ascii()) {
                    batch_query.filters.push(crate::store::Filter::Folded(
                        field,
                        text.to_ascii_lowercase(),
                    ));
                }
            }
            batch_query.cursor = cursor;
            batch_query.limit = BATCH;
            let batch = self.list_records(&batch_query).await?;
            let exhausted = (batch.len() as i64) < BATCH;
            for record in batch {
                cursor = Cursor::After(record.seq);
                if query.matches(&record.data) {
                    matched.push(record);
                    if matched.len() as i64 > limit {
                        break 'scan;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        let has_more = matched.len() as i64 > limit;
        matched.truncate(limit as usize);
        let next_page = has_more.then(|| format!("page_{}", matched.last().map_or(0, |r| r.seq)));
        self.respond(json!({
            "object": "search_result",
            "data": matched.into_iter().map(|r| r.data).collect::<Vec<_>>(),
            "has_more": has_more,
            "next_page": next_page,
            "url": url,
        }))
        .await
    }

    async fn cursor_position(&self, object: &str, id: &str, param: &str) -> ApiResult<i64> {
        match self.get(id).await? {
            Some(record) if record.object == object => {}
            _ => return Err(ApiError::no_such(display_name(object), id, param)),
        }
        self.store()
            .position(&self.account, id)
            .await?
            .ok_or_else(|| ApiError::no_such(display_name(object), id, param))
    }

    /// An event recording a change, to be committed with the change itself.
    pub fn event(&self, kind: &str, object: &Value, previous: Option<Value>) -> Write {
        let mut data = json!({ "object": expand::strip_hidden(object.clone()) });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let event = json!({
            "id": ids::new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": false,
            "pending_webhooks": 0,
            "request": {
                "id": (!self.request_id.is_empty()).then_some(&self.request_id),
                "idempotency_key": self.idempotency_key,
            },
            "type": kind,
        });
        let mut record = Record::new("event", event);
        // Lists of a customer's objects must not pick events up.
        record.customer = None;
        Write::Insert(record)
    }

    /// Writes `record` back as `doc`, with a `kind` event whose
    /// `previous_attributes` say what visibly changed (no event when
    /// nothing did).
    pub fn update_with_event(&self, record: &Record, doc: Value, kind: &str) -> Vec<Write> {
        let before = expand::strip_hidden(record.data.clone());
        let after = expand::strip_hidden(doc.clone());
        let mut writes = Vec::with_capacity(2);
        if before != after {
            writes.push(self.event(kind, &doc, Some(previous_attributes(&before, &after))));
        }
        writes.insert(0, Write::Update(record.with_data(doc)));
        writes
    }

    /// Commits writes: in an API request, stages them for the request's
    /// one transaction; elsewhere, at once.
    pub async fn commit(&self, writes: &[Write]) -> ApiResult<()> {
        if let Some(unit) = &self.unit {
            return unit.stage(&self.account, writes);
        }
        self.store()
            .commit(&self.account, writes)
            .await
            .map_err(store_error)?;
        self.state.committed(writes);
        Ok(())
    }

    /// Read-modify-write with optimistic concurrency: `change` sees the
    /// current record and returns the writes to commit; when another request
    /// changed the object meanwhile, it runs again on the fresh state.
    pub async fn mutate<T>(
        &self,
        object: &str,
        id: &str,
        param: &str,
        mut change: impl FnMut(Record) -> ApiResult<(Vec<Write>, T)>,
    ) -> ApiResult<T> {
        // A Mutex, not a RefCell, keeps the step's future Send.
        let change = std::sync::Mutex::new(&mut change);
        self.retry(|| {
            let change = &change;
            async move {
                let record = self.load(object, id, param).await?;
                let mut change = change.lock().unwrap_or_else(|e| e.into_inner());
                (*change)(record)
            }
        })
        .await
    }
}

impl Ctx {
    /// Runs a read-decide-write step until its writes commit: when another
    /// request changed one of the objects it read (a version conflict), it
    /// reads again and decides again, so of two racing transitions exactly
    /// one happens and the other sees the new state.
    pub async fn retry<T, Step, Fut>(&self, mut step: Step) -> ApiResult<T>
    where
        Step: FnMut() -> Fut,
        Fut: Future<Output = ApiResult<(Vec<Write>, T)>>,
    {
        if let Some(unit) = &self.unit {
            // The request's unit of work runs the whole request again on a
            // conflict, this step included.
            let (writes, out) = step().await?;
            unit.stage(&self.account, &writes)?;
            return Ok(out);
        }
        for _ in 0..8 {
            let (writes, out) = step().await?;
            match self.store().commit(&self.account, &writes).await {
                Ok(()) => {
                    self.state.committed(&writes);
                    return Ok(out);
                }
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(store_error(err)),
            }
        }
        Err(ApiError::invalid(
            "This object is being changed by many requests at once; retry the request.",
        )
        .with_status(StatusCode::CONFLICT)
        .with_code("lock_timeout"))
    }
}

pub fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Conflict => ApiError::invalid(
            "This object was changed by another request at the same time; retry the request.",
        )
        .with_status(StatusCode::CONFLICT)
        .with_code("lock_timeout"),
        StoreError::ClaimLost => ApiError::invalid(
            "Another request took over this request's idempotency key; retry the request.",
        )
        .with_status(StatusCode::CONFLICT)
        .with_type(crate::http::error::ErrorType::Idempotency)
        .with_code("idempotency_key_in_use"),
        unreachable if unreachable.is_unreachable() => ApiError::Unavailable {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!(
                "stripe-twin cannot reach its database right now ({unreachable}); retry the request (with the same Idempotency-Key it takes effect at most once)."
            ),
        },
        failed => ApiError::Unavailable {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!(
                "stripe-twin's database failed ({failed}); retry the request (with the same Idempotency-Key it takes effect at most once)."
            ),
        },
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        store_error(err)
    }
}

/// How Stripe names an object type in "No such ..." messages.
pub fn display_name(object: &str) -> &str {
    match object {
        "payment_method" => "PaymentMethod",
        "setup_intent" => "setupintent",
        "payment_intent" => "payment_intent",
        "checkout.session" => "checkout.session",
        other => other,
    }
}

/// The previous values of every field `after` changed: Stripe's
/// `previous_attributes` (nested hashes list only their changed keys).
pub fn previous_attributes(before: &Value, after: &Value) -> Value {
    let (Value::Object(old), Value::Object(new)) = (before, after) else {
        return before.clone();
    };
    let mut changed = serde_json::Map::new();
    for (key, new_value) in new {
        let old_value = old.get(key).unwrap_or(&Value::Null);
        if old_value == new_value {
            continue;
        }
        let previous = match (old_value, new_value) {
            (Value::Object(_), Value::Object(_)) => previous_attributes(old_value, new_value),
            _ => old_value.clone(),
        };
        changed.insert(key.clone(), previous);
    }
    for (key, old_value) in old {
        if !new.contains_key(key) {
            changed.insert(key.clone(), old_value.clone());
        }
    }
    Value::Object(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_attributes_lists_changed_fields_only() {
        let before = json!({"name": "a", "email": "x", "metadata": {"k": "1", "same": "s"}, "address": null});
        let after = json!({"name": "b", "email": "x", "metadata": {"k": "2", "same": "s", "new": "n"}, "address": {"city": "P"}});
        assert_eq!(
            previous_attributes(&before, &after),
            json!({"name": "a", "metadata": {"k": "1", "new": null}, "address": null})
        );
    }
}
