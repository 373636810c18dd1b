//! `Idempotency-Key` on POST requests: the first request with a key claims
//! it and runs; its answer is stored in the same transaction as its writes
//! (see the `unit_of_work` module); a retry with the same key and the same
//! parameters gets that answer again (`Idempotent-Replayed: true`). The
//! claim lives in the database, so it holds across server processes, and
//! a running request renews it, so a dead process's claim runs out soon.

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::http::auth;
use crate::http::error::{ApiError, ApiResult, ErrorType};
use crate::http::state::AppState;
use crate::ids;
use crate::store::{Claim, IdempotencyRequest, Purge, Write};

/// Stripe keeps keys for 24 hours.
const KEY_LIFETIME_SECS: i64 = 24 * 60 * 60;
/// The periodic due item that forgets expired keys.
pub const RETENTION_KIND: &str = "sweep_idempotency_keys";
/// How long a claim holds without renewal: a server that died holding it
/// blocks retries this long at most.
pub const HOLD_MS: i64 = 5_000;
const MAX_KEY_LEN: usize = 255;

/// A key this request holds while it runs.
#[derive(Debug, Clone)]
pub struct Hold {
    pub account: String,
    pub key: String,
    pub request_id: String,
}

pub enum Claimed {
    /// Run the request (holding the key, when it has one).
    Run(Option<Hold>),
    /// Answered without running: a replay or a refusal of the key.
    Answered(Response),
}

/// The request's key: None without one (or on other methods than POST);
/// a refusal when it is not an opaque visible-ASCII string of Stripe's size.
pub fn key_of(headers: &HeaderMap, method: &Method) -> ApiResult<Option<String>> {
    if method != Method::POST {
        return Ok(None);
    }
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = |problem: &str| {
        ApiError::invalid_param(
            "idempotency_key",
            format!("Invalid idempotency key: {problem}"),
        )
        .with_type(ErrorType::Idempotency)
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return Ok(None);
    }
    if !bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(invalid(
            "it must be made of visible ASCII characters (a UUID is a good key); this one has other bytes.",
        ));
    }
    if bytes.len() > MAX_KEY_LEN {
        return Err(invalid(&format!(
            "it can be at most {MAX_KEY_LEN} characters long (this one has {}).",
            bytes.len()
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The retention sweep (a periodic due item): keys past their lifetime
/// go. Claiming already treats them as unused; this keeps the table small.
pub fn purge_old_keys() -> Vec<Write> {
    // Keys live in real time: a test clock does not age them.
    let before = crate::clock::wall() - KEY_LIFETIME_SECS;
    vec![Write::Purge(Purge::IdempotencyKeys { before })]
}

/// Claims the request's key, or answers for it.
pub async fn claim(state: &AppState, parts: &Parts, body: &Bytes) -> ApiResult<Claimed> {
    let Some(key) = key_of(&parts.headers, &parts.method)? else {
        return Ok(Claimed::Run(None));
    };
    // Without a valid API key the handler answers 401; nothing to keep.
    let Ok(api_key) = auth::api_key_from_headers(&parts.headers) else {
        return Ok(Claimed::Run(None));
    };
    let hold = Hold {
        account: api_key.account(),
        key,
        request_id: request_id(parts),
    };
    let method_path = format!("{} {}", parts.method, parts.uri.path());
    let now_ms = crate::clock::wall_ms();
    let claim = state
        .store()
        .claim_idempotency(&IdempotencyRequest {
            account: &hold.account,
            key: &hold.key,
            method_path: &method_path,
            fingerprint: &fingerprint(parts, body),
            request_id: &hold.request_id,
            now: now_ms / 1000,
            expired_before: now_ms / 1000 - KEY_LIFETIME_SECS,
            now_ms,
            lease_until: now_ms + HOLD_MS,
        })
        .await?;
    let key = &hold.key;
    let refusal = match claim {
        Claim::Claimed => return Ok(Claimed::Run(Some(hold))),
        Claim::Replay {
            status,
            body,
            request_id,
        } => return Ok(Claimed::Answered(replay(status, body, request_id))),
        Claim::InProgress => in_progress(key),
        Claim::Mismatch { method_path: first } if first != method_path => ApiError::invalid(format!(
            "Keys for idempotent requests can only be used for the same endpoint they were first used for ('{}' vs '{}'). Try using a key other than '{key}' if you meant to execute a different request.",
            first.split_once(' ').map_or(first.as_str(), |(_, p)| p),
            parts.uri.path()
        ))
        .with_type(ErrorType::Idempotency),
        Claim::Mismatch { .. } => ApiError::invalid(format!(
            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
        ))
        .with_type(ErrorType::Idempotency),
    };
    Ok(Claimed::Answered(refusal.into_response()))
}

fn request_id(parts: &Parts) -> String {
    parts
        .headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| format!("req_{}", ids::random_base62(14)), str::to_owned)
}

/// Query string and body: what "the same parameters" means.
fn fingerprint(parts: &Parts, body: &Bytes) -> String {
    let mut hasher = Sha256::new();
    hasher.update(parts.uri.query().unwrap_or_default().as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn replay(status: u16, body: String, first_request: Option<String>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    if let Some(value) = first_request.and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert("original-request", value);
    }
    response
}

fn in_progress(key: &str) -> ApiError {
    ApiError::invalid(format!(
        "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): {key}. Please try again later."
    ))
    .with_status(StatusCode::CONFLICT)
    .with_type(ErrorType::Idempotency)
    .with_code("idempotency_key_in_use")
}

/// The answer when this request's hold ran out and another took the key:
/// nothing of this one was written.
pub fn claim_lost(hold: Option<&Hold>) -> Response {
    in_progress(hold.map_or("", |h| h.key.as_str())).into_response()
}

pub async fn renew(state: &AppState, hold: &Hold) {
    let until = crate::clock::wall_ms() + HOLD_MS;
    if let Err(err) = state
        .store()
        .renew_idempotency(&hold.account, &hold.key, &hold.request_id, until)
        .await
    {
        tracing::warn!(%err, key = %hold.key, "could not renew an idempotency key's hold");
    }
}

/// Frees the key of a request that failed on our side, so a retry runs.
pub async fn release(state: &AppState, hold: Option<&Hold>) {
    let Some(hold) = hold else { return };
    if let Err(err) = state
        .store()
        .release_idempotency(&hold.account, &hold.key, &hold.request_id)
        .await
    {
        // The hold runs out on its own within HOLD_MS.
        tracing::warn!(%err, key = %hold.key, "could not release an idempotency key");
    }
}
