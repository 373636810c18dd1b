//! The request contract every endpoint shares: authentication, parameter
//! decoding, `expand[]`, lists, events and optimistic writes. Handlers get a
//! [`Call`] (context + parameters) and answer through [`Ctx`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};

use crate::auth::{self, KeyKind};
use crate::error::{ApiError, ApiResult};
use crate::expand;
use crate::form;
use crate::ids;
use crate::params::Params;
use crate::search;
use crate::store::{Cursor, ListQuery, Range, Record, Store, StoreError, Write};

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
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, public_url: Option<String>) -> Self {
        Self(Arc::new(Shared {
            store,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
        }))
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
}

/// What a handler receives: the context and the parameters still to take.
pub struct Call {
    pub ctx: Ctx,
    pub params: Params,
}

impl FromRequest<AppState> for Call {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let key = auth::api_key_from_headers(&parts.headers)?;
        if key.kind == KeyKind::Publishable {
            return Err(ApiError::unauthorized(
                "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.",
            ));
        }
        let mut map = match parts.uri.query() {
            Some(query) => form::decode(query.as_bytes()).map_err(decode_error)?,
            None => BTreeMap::new(),
        };
        if parts.method == Method::POST {
            check_content_type(&parts.headers)?;
            let bytes = read_body(body).await?;
            map.extend(form::decode(&bytes).map_err(decode_error)?);
        }
        let mut params = Params::new(map);
        let expand = params.string_list("expand")?.unwrap_or_default();
        let request_id = parts
            .headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let idempotency_key = idempotency_key(&parts.headers, &parts.method);
        Ok(Call {
            ctx: Ctx {
                state: state.clone(),
                account: key.account(),
                request_id,
                idempotency_key,
                expand,
            },
            params,
        })
    }
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

    pub async fn commit(&self, writes: &[Write]) -> ApiResult<()> {
        self.store()
            .commit(&self.account, writes)
            .await
            .map_err(store_error)
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
        for _ in 0..8 {
            let record = self.load(object, id, param).await?;
            let (writes, out) = change(record)?;
            match self.store().commit(&self.account, &writes).await {
                Ok(()) => return Ok(out),
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
