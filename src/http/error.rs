//! The one error type. Every failure a client can see is rendered as Stripe's
//! `{"error": {...}}` body with Stripe's status code.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::store::StoreError;

pub type ApiResult<T> = Result<T, ApiError>;

/// Where a request names an object: a missing one is a 404 when the URL
/// names it and a 400 when a parameter does, as in Stripe.
#[derive(Debug, Clone, Copy)]
pub enum Named<'a> {
    InPath(&'a str),
    InParam(&'a str),
}

impl Named<'_> {
    pub fn missing(self, kind: &str, id: &str) -> ApiError {
        match self {
            Named::InPath(param) => ApiError::no_such(kind, id, param),
            Named::InParam(param) => ApiError::no_such_reference(kind, id, param),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    InvalidRequest,
    Card,
    Idempotency,
    Api,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request_error",
            ErrorType::Card => "card_error",
            ErrorType::Idempotency => "idempotency_error",
            ErrorType::Api => "api_error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A Stripe-shaped client error with full control over each field.
    #[error("{message}")]
    Stripe {
        status: StatusCode,
        kind: ErrorType,
        code: Option<&'static str>,
        message: String,
        param: Option<String>,
        /// Extra fields of the error object (decline_code, setup_intent, ...).
        extra: Map<String, Value>,
    },
    /// The store failed or could not be reached: not a bug, worth a retry.
    /// Rendered as api_error naming the problem, with `Stripe-Should-Retry`.
    #[error("store: {message}")]
    Unavailable { status: StatusCode, message: String },
    /// A bug of ours. Logged, rendered as api_error.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Stripe {
            status: StatusCode::BAD_REQUEST,
            kind: ErrorType::InvalidRequest,
            code: None,
            message: message.into(),
            param: None,
            extra: Map::new(),
        }
    }

    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(message).with_param(param)
    }

    pub fn unknown_param(param: &str) -> Self {
        Self::invalid(format!("Received unknown parameter: {param}"))
            .with_code("parameter_unknown")
            .with_param(param)
    }

    pub fn missing_param(param: &str) -> Self {
        Self::invalid(format!("Missing required param: {param}."))
            .with_code("parameter_missing")
            .with_param(param)
    }

    pub fn no_such(kind: &str, id: &str, param: &str) -> Self {
        Self::invalid(format!("No such {kind}: '{id}'"))
            .with_status(StatusCode::NOT_FOUND)
            .with_code("resource_missing")
            .with_param(param)
    }

    /// A missing object named by a request parameter (not by the URL): 400.
    pub fn no_such_reference(kind: &str, id: &str, param: &str) -> Self {
        Self::no_such(kind, id, param).with_status(StatusCode::BAD_REQUEST)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::invalid(message).with_status(StatusCode::UNAUTHORIZED)
    }

    pub fn with_status(mut self, new_status: StatusCode) -> Self {
        if let Self::Stripe { status, .. } = &mut self {
            *status = new_status;
        }
        self
    }

    pub fn with_code(mut self, new_code: &'static str) -> Self {
        if let Self::Stripe { code, .. } = &mut self {
            *code = Some(new_code);
        }
        self
    }

    pub fn with_param(mut self, new_param: impl Into<String>) -> Self {
        if let Self::Stripe { param, .. } = &mut self {
            *param = Some(new_param.into());
        }
        self
    }

    pub fn with_type(mut self, new_kind: ErrorType) -> Self {
        if let Self::Stripe { kind, .. } = &mut self {
            *kind = new_kind;
        }
        self
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        if let Self::Stripe { extra, .. } = &mut self {
            extra.insert(key.to_owned(), value);
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Stripe { status, .. } | Self::Unavailable { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> Value {
        match self {
            Self::Stripe {
                kind,
                code,
                message,
                param,
                extra,
                ..
            } => {
                let mut error = Map::new();
                error.insert("type".into(), json!(kind.as_str()));
                error.insert("message".into(), json!(message));
                if let Some(code) = code {
                    error.insert("code".into(), json!(code));
                    error.insert(
                        "doc_url".into(),
                        json!(format!(
                            "https://stripe.com/docs/error-codes/{}",
                            code.replace('_', "-")
                        )),
                    );
                }
                if let Some(param) = param {
                    error.insert("param".into(), json!(param));
                }
                error.insert(
                    "request_log_url".into(),
                    json!("https://dashboard.stripe.com/test/logs"),
                );
                error.extend(extra.clone());
                json!({ "error": error })
            }
            Self::Unavailable { message, .. } => json!({"error": {
                "type": "api_error",
                "message": message,
            }}),
            Self::Internal(_) => json!({"error": {
                "type": "api_error",
                "message": "An unexpected error occurred in stripe-twin. This is a bug: the server log has the details.",
            }}),
        }
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(err: serde_json::Error) -> Self {
        ApiError::Internal(format!("json: {err}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(detail) => tracing::error!(%detail, "request failed"),
            Self::Unavailable { message, .. } => tracing::warn!(%message, "store fault"),
            Self::Stripe { .. } => {}
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::CONFLICT || matches!(self, Self::Unavailable { .. }) {
            // Official SDKs retry a 409 when told to; an in-flight idempotent
            // request is worth retrying.
            response
                .headers_mut()
                .insert("stripe-should-retry", HeaderValue::from_static("true"));
        }
        response
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
        .with_type(ErrorType::Idempotency)
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
