//! Reading a request body within its size and time limits.

use axum::body::{Body, Bytes};
use axum::http::StatusCode;

use crate::http::error::{ApiError, ApiResult};

/// Larger bodies are refused with 413 before they are decoded.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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
