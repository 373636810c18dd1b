//! API keys. Every secret key is an isolated account of its own, so
//! parallel test suites with different keys never see each other's objects.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::http::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Secret,
    Restricted,
    Publishable,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub key: String,
    pub kind: KeyKind,
}

impl ApiKey {
    /// The account this key owns: a stable, non-reversible name for it.
    pub fn account(&self) -> String {
        account_of(&self.key)
    }
}

pub fn account_of(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("acct_{hex}")
}

const NO_KEY: &str = "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.";

/// Reads the key from `Authorization: Bearer <key>` or HTTP Basic with the
/// key as user name (what `curl -u sk_test_...:` sends).
pub fn api_key_from_headers(headers: &HeaderMap) -> ApiResult<ApiKey> {
    let Some(header) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthorized(NO_KEY));
    };
    let malformed = || {
        ApiError::unauthorized(
            "Invalid Authorization header. Provide your API key as 'Authorization: Bearer YOUR_SECRET_KEY', or with HTTP Basic auth using the key as the user name and an empty password.",
        )
    };
    let header = header.to_str().map_err(|_| malformed())?.trim();
    let (scheme, credentials) = header.split_once(' ').ok_or_else(malformed)?;
    let credentials = credentials.trim();
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        decoded
            .split_once(':')
            .map_or(decoded.clone(), |(user, _)| user.to_owned())
    } else {
        return Err(malformed());
    };
    parse_key(&key)
}

pub fn parse_key(key: &str) -> ApiResult<ApiKey> {
    if key.is_empty() {
        return Err(ApiError::unauthorized(NO_KEY));
    }
    let kind = if let Some(rest) = key.strip_prefix("sk_test_") {
        (!rest.is_empty()).then_some(KeyKind::Secret)
    } else if let Some(rest) = key.strip_prefix("rk_test_") {
        (!rest.is_empty()).then_some(KeyKind::Restricted)
    } else if let Some(rest) = key.strip_prefix("pk_test_") {
        (!rest.is_empty()).then_some(KeyKind::Publishable)
    } else if ["sk_live_", "rk_live_", "pk_live_"]
        .iter()
        .any(|p| key.starts_with(p))
    {
        return Err(ApiError::unauthorized(format!(
            "Invalid API Key provided: {}. stripe-twin only accepts test mode keys (sk_test_..., rk_test_..., pk_test_...); a live mode key is never needed here.",
            redact(key)
        )));
    } else {
        None
    };
    match kind {
        Some(kind) => Ok(ApiKey {
            key: key.to_owned(),
            kind,
        }),
        None => Err(ApiError::unauthorized(format!(
            "Invalid API Key provided: {}",
            redact(key)
        ))),
    }
}

/// `sk_test_****************1234`, as Stripe shows keys in errors: the
/// prefix up to the second `_`, the last four characters, stars between.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let prefix_len = chars
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == '_')
        .nth(1)
        .map_or(0, |(at, _)| at + 1);
    let prefix: String = chars[..prefix_len].iter().collect();
    let hidden = chars.len() - prefix_len;
    if hidden <= 4 {
        return format!("{prefix}{}", "*".repeat(hidden));
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}{}{tail}", "*".repeat(hidden - 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_and_basic() {
        assert_eq!(
            api_key_from_headers(&headers("Bearer sk_test_abc"))
                .unwrap()
                .key,
            "sk_test_abc"
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("sk_test_abc:");
        assert_eq!(
            api_key_from_headers(&headers(&format!("Basic {basic}")))
                .unwrap()
                .key,
            "sk_test_abc"
        );
        assert_eq!(
            api_key_from_headers(&headers("Bearer rk_test_x"))
                .unwrap()
                .kind,
            KeyKind::Restricted
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "Token sk_test_abc",
            "Bearer",
            "Basic !!!",
            "Bearer sk_live_abc",
            "Bearer nope",
            "Bearer sk_test_",
        ] {
            let err = api_key_from_headers(&headers(bad)).unwrap_err();
            assert_eq!(err.status(), 401, "{bad}");
        }
        assert!(api_key_from_headers(&HeaderMap::new()).is_err());
        let live = api_key_from_headers(&headers("Bearer sk_live_1234567890")).unwrap_err();
        assert!(live.to_string().contains("test mode keys"));
        assert!(!live.to_string().contains("1234567890"));
    }

    #[test]
    fn redaction_counts_characters_not_bytes() {
        assert_eq!(redact("sk_test_abcdefgh1234"), "sk_test_********1234");
        assert_eq!(redact("ab_éé_"), "ab_éé_");
        assert_eq!(redact("ab_éé_ééééé"), "ab_éé_*éééé");
        assert_eq!(redact("éé"), "**");
        assert_eq!(redact("_é_é"), "_é_*");
    }

    #[test]
    fn accounts_are_per_key() {
        assert_eq!(account_of("sk_test_a"), account_of("sk_test_a"));
        assert_ne!(account_of("sk_test_a"), account_of("sk_test_b"));
    }
}
