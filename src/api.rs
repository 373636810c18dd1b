//! The request contract every endpoint shares: authentication, parameter
//! decoding, `expand[]`, lists, events and optimistic writes. Handlers get a
//! [`Call`] (context + parameters) and answer through [`Ctx`].

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};

use crate::auth::{self, KeyKind};
use crate::error::{ApiError, ApiResult};
use crate::expand;
use crate::fixtures::{self, Fixtures};
use crate::form;
use crate::ids;
use crate::params::Params;
use crate::search;
use crate::store::{Cursor, ListQuery, Range, Record, Store, StoreError, StoreResult, Write};
use crate::webhooks::WebhookSettings;

/// The API version whose object shapes this server emulates.
pub const API_VERSION: &str = "2026-10-28.endive";
/// Larger bodies are refused with 413 before they are decoded.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

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
    /// Accounts this process knows have their fixtures. Only a shortcut:
    /// the marker record in the store is the truth, so server processes
    /// sharing one database agree.
    seeded: RwLock<HashSet<String>>,
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
            store,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            fixtures,
            webhooks,
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
            seeded: RwLock::new(HashSet::new()),
        }))
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
        let seeded = fixtures::seed(self.store(), account, &self.0.fixtures).await;
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

    pub fn public_url(&self) -> Option<&str> {
        self.0.public_url.as_deref()
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
            match self.ctx.store().find(id).await? {
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
        let bytes = read_body(body).await?;
        map.extend(form::decode(&bytes).map_err(decode_error)?);
    }
    // Answered after authentication, as Stripe checks the key first.
    let not_emulated = match parts.extensions.get::<axum::extract::MatchedPath>() {
        Some(route) => crate::not_emulated::refuse(&parts.method, route.as_str(), &mut map),
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
    not_emulated?;
    let expand = params.string_list("expand")?.unwrap_or_default();
    let request_id = parts
        .headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let idempotency_key = idempotency_key(&parts.headers, &parts.method);
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
    };
    Ok((key, ctx, params))
}

pub fn idempotency_key(headers: &HeaderMap, method: &Method) -> Option<String> {
    if method != Method::POST {
        return None;
    }
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
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

/// Reads a whole request body, refusing one over [`MAX_BODY_BYTES`].
pub async fn read_body(body: Body) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::invalid(format!(
                "The request body is too large: the limit is {MAX_BODY_BYTES} bytes."
            ))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        })
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
    pub fn store(&self) -> &dyn Store {
        self.state.store()
    }

    /// Loads an object of the given type; anything else is `resource_missing`.
    pub async fn load(&self, object: &str, id: &str, param: &str) -> ApiResult<Record> {
        match self.store().get(&self.account, id).await? {
            Some(record) if record.object == object => Ok(record),
            _ => Err(ApiError::no_such(display_name(object), id, param)),
        }
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
        let mut records = self.store().list(&self.account, &query).await?;
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
            batch_query.cursor = cursor;
            batch_query.limit = BATCH;
            let batch = self.store().list(&self.account, &batch_query).await?;
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
        match self.store().get(&self.account, id).await? {
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
            "created": ids::now(),
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

    pub async fn commit(&self, writes: &[Write]) -> ApiResult<()> {
        self.store()
            .commit(&self.account, writes)
            .await
            .map_err(store_error)?;
        self.committed(writes);
        Ok(())
    }

    /// After a commit: events are waiting for the webhook worker.
    fn committed(&self, writes: &[Write]) {
        if writes
            .iter()
            .any(|w| matches!(w, Write::Insert(r) if r.object == "event"))
        {
            self.state.0.webhook_wake.notify_one();
        }
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
        for _ in 0..8 {
            let (writes, out) = step().await?;
            match self.store().commit(&self.account, &writes).await {
                Ok(()) => {
                    self.committed(&writes);
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
        other => ApiError::Internal(other.to_string()),
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
