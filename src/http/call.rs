//! The extractors handlers take, [`Call`] and [`ClientCall`], and the
//! request decoding behind them: authentication, body and content type,
//! query and form parameters, and the request's [`Ctx`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, header::CONTENT_TYPE};
use serde_json::{Value, json};

use crate::http::auth::{self, KeyKind};
use crate::http::body::read_body;
use crate::http::ctx::{ClientInfo, Ctx, origin};
use crate::http::error::{ApiError, ApiResult};
use crate::http::form;
use crate::http::object_time::ObjectTime;
use crate::http::params::Params;
use crate::http::state::AppState;
use crate::http::unit_of_work::UnitOfWork;
use crate::store::Record;

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
                        return Err(client_secret_mismatch(&self.ctx, object));
                    }
                    self.ctx.account = account;
                    self.ctx.follow_clock(&record).await?;
                    record
                }
                _ => {
                    return Err(ApiError::no_such(
                        self.ctx.display_name(object),
                        id,
                        "intent",
                    ));
                }
            }
        } else {
            self.ctx.load(object, id, "intent").await?
        };
        if let Some(secret) = secret
            && record.data["client_secret"] != json!(secret)
        {
            return Err(client_secret_mismatch(&self.ctx, object));
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

fn client_secret_mismatch(ctx: &Ctx, object: &str) -> ApiError {
    ApiError::invalid_param(
        "client_secret",
        format!(
            "The client_secret provided does not match the client_secret associated with the {}.",
            ctx.registry().title(object)
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
        time: Arc::new(ObjectTime::undecided(parts.method != Method::GET)),
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
