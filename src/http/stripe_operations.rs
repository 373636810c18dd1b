//! Stripe's API operations, to answer a request no route takes: one that
//! Stripe serves is an operation stripe-twin does not emulate (yet), told
//! apart from a URL that is not Stripe's (a typo). The list is generated
//! from Stripe's OpenAPI spec by `scripts/gen_operations.py` and compiled in.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

const OPERATIONS: &str = include_str!("stripe_operations.txt");

/// Says that an operation is Stripe's but not stripe-twin's.
pub const UNSUPPORTED_HEADER: &str = "stripe-twin-unsupported";

/// Stripe's operation for `method` and a request path, as its path
/// template (`/v1/refunds/{refund}`); where several match, the one with
/// the most literal segments (`/v1/charges/search` over `/v1/charges/{charge}`).
pub fn find(method: &str, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    OPERATIONS
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(m, template)| *m == method && matches(template, &segments))
        .map(|(_, template)| template)
        .max_by_key(|template| template.split('/').filter(|s| !is_parameter(s)).count())
}

fn is_parameter(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

fn matches(template: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = template.split('/').collect();
    parts.len() == segments.len()
        && parts.iter().zip(segments).all(|(part, segment)| {
            if is_parameter(part) {
                !segment.is_empty()
            } else {
                part == segment
            }
        })
}

/// What a request no route takes gets: Stripe's "Unrecognized request URL"
/// for a URL that is not Stripe's, a 404 saying so (with
/// `Stripe-Twin-Unsupported: true`) for an operation stripe-twin lacks.
pub async fn unrecognized(request: Request) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let Some(template) = find(&method, &path) else {
        return ApiError::invalid(format!(
            "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
        ))
        .with_status(StatusCode::NOT_FOUND)
        .into_response();
    };
    let mut response = ApiError::invalid(format!(
        "stripe-twin does not emulate {method} {template} yet: it is one of Stripe's operations, not a typo. README's endpoint table lists what stripe-twin serves."
    ))
    .with_status(StatusCode::NOT_FOUND)
    .into_response();
    response
        .headers_mut()
        .insert(UNSUPPORTED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_operations_by_template() {
        assert_eq!(find("POST", "/v1/refunds"), Some("/v1/refunds"));
        assert_eq!(
            find("GET", "/v1/refunds/re_123"),
            Some("/v1/refunds/{refund}")
        );
        assert_eq!(
            find("POST", "/v1/refunds/re_1/cancel"),
            Some("/v1/refunds/{refund}/cancel")
        );
        assert_eq!(
            find("GET", "/v1/charges/search"),
            Some("/v1/charges/search")
        );
        assert_eq!(
            find("GET", "/v1/charges/ch_1"),
            Some("/v1/charges/{charge}")
        );
        assert_eq!(find("PUT", "/v1/refunds"), None);
        assert_eq!(find("GET", "/v1/refundz"), None);
        assert_eq!(find("GET", "/v1/refunds/"), None);
        assert_eq!(find("DELETE", "/v1/prices/price_1"), None);
    }

    #[test]
    fn the_list_is_the_whole_generated_file() {
        let operations = OPERATIONS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>();
        assert!(operations.len() > 500, "{} operations", operations.len());
        for line in operations {
            let (method, path) = line.split_once(' ').expect("METHOD /path");
            assert!(["GET", "POST", "DELETE"].contains(&method), "{line}");
            assert!(path.starts_with("/v1/"), "{line}");
        }
    }
}
