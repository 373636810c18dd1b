//! `Idempotency-Key` on POST requests, as a layer: the first request with a
//! key runs and its answer is stored; a retry with the same key and the
//! same parameters gets that answer again (`Idempotent-Replayed: true`).
//! The claim lives in the database, so it holds across server processes.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header::CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::api::{AppState, idempotency_key, read_body};
use crate::auth;
use crate::error::{ApiError, ErrorType};
use crate::ids;
use crate::store::{Claim, IdempotencyRequest};

/// Stripe keeps keys for 24 hours.
const KEY_LIFETIME_SECS: i64 = 24 * 60 * 60;
/// A claim still in flight after this long belonged to a server that died.
const STALE_CLAIM_SECS: i64 = 60;
const MAX_KEY_LEN: usize = 255;

pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(key) = idempotency_key(request.headers(), request.method()) else {
        return next.run(request).await;
    };
    // Without a valid key the handler answers 401 itself; nothing to store.
    let Ok(api_key) = auth::api_key_from_headers(request.headers()) else {
        return next.run(request).await;
    };
    if key.len() > MAX_KEY_LEN {
        return ApiError::invalid_param(
            "Idempotency-Key",
            format!("Invalid idempotency key: it can be at most {MAX_KEY_LEN} characters long."),
        )
        .into_response();
    }
    let account = api_key.account();
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(err) => return err.into_response(),
    };
    let method_path = format!("{} {}", parts.method, parts.uri.path());
    let fingerprint = {
        let mut hasher = Sha256::new();
        hasher.update(parts.uri.query().unwrap_or_default().as_bytes());
        hasher.update([0]);
        hasher.update(&bytes);
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let now = ids::now();
    let claim = state
        .store()
        .claim_idempotency(&IdempotencyRequest {
            account: &account,
            key: &key,
            method_path: &method_path,
            fingerprint: &fingerprint,
            now,
            expired_before: now - KEY_LIFETIME_SECS,
            stale_before: now - STALE_CLAIM_SECS,
        })
        .await;
    match claim {
        Err(err) => ApiError::from(err).into_response(),
        Ok(Claim::Replay { status, body }) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            headers.insert(
                "original-request",
                HeaderValue::from_str(&key).unwrap_or(HeaderValue::from_static("")),
            );
            response
        }
        Ok(Claim::InProgress) => ApiError::invalid(format!(
            "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): {key}. Please try again later."
        ))
        .with_status(StatusCode::CONFLICT)
        .with_type(ErrorType::Idempotency)
        .with_code("idempotency_key_in_use")
        .into_response(),
        Ok(Claim::Mismatch { method_path: first }) if first != method_path => ApiError::invalid(format!(
            "Keys for idempotent requests can only be used for the same endpoint they were first used for ('{}' vs '{}'). Try using a key other than '{key}' if you meant to execute a different request.",
            first.split_once(' ').map_or(first.as_str(), |(_, p)| p),
            parts.uri.path()
        ))
        .with_type(ErrorType::Idempotency)
        .into_response(),
        Ok(Claim::Mismatch { .. }) => ApiError::invalid(format!(
            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
        ))
        .with_type(ErrorType::Idempotency)
        .into_response(),
        Ok(Claim::Claimed) => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            finish(&state, &account, &key, response).await
        }
    }
}

/// Stores the answer for replays; a failure of ours releases the key so a
/// retry runs again instead of replaying a bug.
async fn finish(state: &AppState, account: &str, key: &str, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let _ = state.store().release_idempotency(account, key).await;
            return ApiError::Internal(format!("response body: {err}")).into_response();
        }
    };
    let stored = if parts.status.is_server_error() {
        state.store().release_idempotency(account, key).await
    } else {
        let text = String::from_utf8_lossy(&bytes);
        state
            .store()
            .complete_idempotency(account, key, parts.status.as_u16(), &text)
            .await
    };
    if let Err(err) = stored {
        tracing::error!(%err, "could not store the idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}
