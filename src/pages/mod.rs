//! What the server-rendered pages (the Amazon Pay / 3-D Secure authorization
//! page and the hosted Checkout page) share: escaping, the layout, money.

pub mod authorize;
pub mod checkout;

use std::future::Future;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::http::api::{AppState, Ctx};
use crate::http::error::{ApiError, ApiResult};

/// What a page is for (a Checkout Session, an intent's pending attempt),
/// found from the page's path, with the buyer's context in the account it
/// belongs to. A path that names nothing gets the page's own 404.
pub struct PageFor<T> {
    pub ctx: Ctx,
    pub target: T,
}

/// Something a page can be for.
pub trait PageTarget: Sized + Send {
    /// The page's path parameters.
    type Path: DeserializeOwned + Send;

    /// It and its account, or None when the path names nothing.
    fn find(
        state: &AppState,
        path: Self::Path,
    ) -> impl Future<Output = ApiResult<Option<(String, Self)>>> + Send;

    /// The page for a path that names nothing.
    fn not_found() -> Response;

    /// The object the page acts on: its customer's test clock, if it has
    /// one, gives the page its time.
    fn object_id(&self) -> &str;
}

impl<T: PageTarget> FromRequestParts<AppState> for PageFor<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Path(path) = Path::<T::Path>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match T::find(state, path).await {
            Ok(Some((account, target))) => {
                let ctx = Ctx::for_page(state, account, parts);
                ctx.get(target.object_id())
                    .await
                    .map_err(IntoResponse::into_response)?;
                Ok(Self { ctx, target })
            }
            Ok(None) => Err(T::not_found()),
            Err(err) => Err(err.into_response()),
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already escaped HTML).
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f3f4f6; color: #111827; margin: 0; }}
main {{ box-sizing: border-box; max-width: 28rem; margin: 3rem auto; background: #fff; border-radius: 12px; padding: 2rem; box-shadow: 0 1px 4px rgba(0,0,0,.12); overflow-wrap: anywhere; }}
main * {{ min-width: 0; max-width: 100%; box-sizing: border-box; }}
@media (max-width: 30rem) {{ main {{ margin: 0; border-radius: 0; padding: 1.25rem; }} }}
.brand {{ font-weight: 700; font-size: 1.3rem; }}
.badge {{ display: inline-block; background: #fef3c7; color: #92400e; border-radius: 6px; padding: .1rem .5rem; font-size: .8rem; margin-left: .5rem; }}
dl {{ display: grid; grid-template-columns: auto 1fr; gap: .3rem 1rem; }}
dt {{ color: #6b7280; }} dd {{ margin: 0; overflow-wrap: anywhere; }}
form {{ display: inline; }}
form.method {{ display: block; border-top: 1px solid #e5e7eb; padding-top: 1rem; margin-top: 1rem; }}
label {{ display: block; font-size: .9rem; color: #374151; margin-top: .6rem; }}
input[type=text], input[type=email] {{ box-sizing: border-box; width: 100%; font-size: 1rem; padding: .5rem; border: 1px solid #d1d5db; border-radius: 6px; }}
table {{ width: 100%; border-collapse: collapse; }} td {{ padding: .3rem 0; }} td.amount {{ text-align: right; white-space: nowrap; overflow-wrap: normal; padding-left: .5rem; }}
tr.total td {{ font-weight: 700; border-top: 1px solid #e5e7eb; }}
.error {{ background: #fee2e2; color: #991b1b; border-radius: 8px; padding: .6rem .8rem; }}
button {{ font-size: 1rem; border-radius: 8px; padding: .6rem 1.1rem; border: 1px solid #d1d5db; cursor: pointer; margin: .3rem .3rem 0 0; }}
button.primary {{ background: #ffd814; border-color: #fcd200; }}
button.pay {{ background: #4f46e5; border-color: #4338ca; color: #fff; width: 100%; }}
</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"#,
        title = escape(title),
    );
    // The pages show live state: never cached, never re-submitted from cache.
    let mut response = (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The pages load nothing but their inline style; their forms post to
/// this server, whose answer may redirect to the merchant's http(s) URLs;
/// no other site may frame them.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self' http: https:; base-uri 'none'; frame-ancestors 'none'";
/// The same, for a page that lives inside the merchant's page.
const POLICY_EMBEDDABLE: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self' http: https:; base-uri 'none'; frame-ancestors *";

/// The same page, allowed inside another site's frame: the embedded
/// Checkout page lives in the merchant's page.
pub fn embeddable(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.remove(header::X_FRAME_OPTIONS);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY_EMBEDDABLE),
    );
    response
}

/// A form post over the body size limit.
pub fn too_large_page() -> Response {
    page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Too large",
        "<h1>Request too large</h1>",
    )
}

/// `303 See Other` to `location`, the answer to every page form.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => ApiError::Internal("redirect URL is not a valid header".into()).into_response(),
    }
}

/// `12.50 USD`: amounts in the currency's minor unit.
pub fn money(amount: i64, currency: &str) -> String {
    format!(
        "{}.{:02} {}",
        amount / 100,
        amount % 100,
        currency.to_uppercase()
    )
}
