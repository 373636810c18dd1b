//! `/v1/products`: create, retrieve, update, delete, list and search; plus
//! what prices share with products (inline `product_data`, loading a
//! product).

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::registry::{FixtureLink, ObjectSpec, to};
use crate::http::api::{AppState, Call, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::params::nullable_text;
use crate::http::params::{Params, Patch, Update};
use crate::http::search::{self, FieldKind};
use crate::resources::catalog::price_data as prices;
use crate::store::{Filter, ListQuery, Record, Write};

/// Products may also have ids of the caller's choosing.
pub const SPEC: ObjectSpec = ObjectSpec::new("product", "prod")
    .id_length(14)
    .custom_ids()
    .list_url("/v1/products")
    .fields(&[("default_price", to("price"))])
    .fixture(&[FixtureLink {
        field: "default_price",
        object: "price",
        optional: true,
        back: Some(("product", "is a price of another product")),
    }]);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/products", get(list_products).post(create_product))
        .route("/v1/products/search", get(search_products))
        .route(
            "/v1/products/{id}",
            get(retrieve_product)
                .post(update_product)
                .delete(delete_product),
        )
}

const SEARCH: search::Spec = search::Spec {
    object: "product",
    resource: "products",
    url: "/v1/products/search",
    fields: &[
        ("active", FieldKind::Boolean),
        ("description", FieldKind::Text),
        ("name", FieldKind::Text),
        ("shippable", FieldKind::Boolean),
        ("url", FieldKind::Text),
        ("created", FieldKind::Number),
    ],
    paths: &[],
};

const MAX_IMAGES: usize = 8;
const MAX_MARKETING_FEATURES: usize = 15;

/// `prod_` + 14 base62 characters, as Stripe's product IDs.
pub fn new_product_id() -> String {
    SPEC.new_id()
}

fn new_product_document(id: &str, now: i64) -> Value {
    json!({
        "id": id,
        "object": "product",
        "active": true,
        "created": now,
        "default_price": null,
        "description": null,
        "images": [],
        "livemode": false,
        "marketing_features": [],
        "metadata": {},
        "name": "",
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": null,
        "tax_code": null,
        "type": "service",
        "unit_label": null,
        "updated": now,
        "url": null,
    })
}

/// Which product parameters a request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProductFields {
    /// `POST /v1/products`.
    Create,
    /// `POST /v1/products/{id}`: text fields may be unset with `""`.
    Update,
    /// `product_data` of `POST /v1/prices`.
    PriceData,
    /// `price_data[product_data]` of checkout line items.
    LineItemData,
}

impl ProductFields {
    fn takes(self, field: &str) -> bool {
        match self {
            Self::Create | Self::Update => true,
            Self::PriceData => matches!(
                field,
                "active" | "id" | "metadata" | "statement_descriptor" | "tax_code" | "unit_label"
            ),
            Self::LineItemData => matches!(
                field,
                "description" | "images" | "metadata" | "tax_code" | "unit_label"
            ),
        }
    }
}

fn too_long(param: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.chars().count() <= max {
        return Ok(());
    }
    Err(ApiError::invalid_param(
        param,
        format!(
            "Invalid string: {}...; must be at most {max} characters",
            value.chars().take(10).collect::<String>()
        ),
    ))
}

fn check_text(param: &str, field: &str, value: &str) -> ApiResult<()> {
    match field {
        "description" => too_long(param, value, 40_000),
        "unit_label" => too_long(param, value, 12),
        "url" => too_long(param, value, 2048),
        "statement_descriptor" => {
            too_long(param, value, 22)?;
            if !value.chars().any(char::is_alphabetic) {
                return Err(ApiError::invalid_param(
                    param,
                    "The statement descriptor must contain at least one letter.",
                ));
            }
            if value.chars().any(|c| "<>\\\"'*".contains(c)) {
                return Err(ApiError::invalid_param(
                    param,
                    "The statement descriptor cannot contain any of these special characters: <, >, \\, \", ', *",
                ));
            }
            Ok(())
        }
        "tax_code" => {
            let valid = value.strip_prefix("txcd_").is_some_and(|digits| {
                digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit())
            });
            if valid {
                Ok(())
            } else {
                Err(ApiError::no_such_reference("tax_code", value, param))
            }
        }
        _ => Ok(()),
    }
}

fn dimension(params: &mut Params, key: &str) -> ApiResult<f64> {
    let name = params.name(key);
    let raw = params
        .string(key)?
        .ok_or_else(|| ApiError::missing_param(&name))?;
    match raw.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(ApiError::invalid_param(
            &name,
            format!("Invalid decimal: {raw}"),
        )),
    }
}

fn package_dimensions(mut params: Params) -> ApiResult<Value> {
    let mut out = serde_json::Map::new();
    for key in ["height", "length", "weight", "width"] {
        out.insert(key.to_owned(), json!(dimension(&mut params, key)?));
    }
    params.finish()?;
    Ok(Value::Object(out))
}

/// Parses a product's fields (name is required except on update) into a
/// patch; the caller finishes `params`.
fn product_patch(params: &mut Params, fields: ProductFields) -> ApiResult<Patch> {
    let updating = fields == ProductFields::Update;
    let mut patch = Patch::default();
    let name_param = params.name("name");
    let name = if updating {
        params.string("name")?
    } else {
        Some(params.required_string("name")?)
    };
    if let Some(name) = name {
        too_long(&name_param, &name, 5000)?;
        patch.set(&["name"], json!(name));
    }
    if fields.takes("active")
        && let Some(active) = params.bool("active")?
    {
        patch.set(&["active"], json!(active));
    }
    for field in [
        "description",
        "statement_descriptor",
        "tax_code",
        "unit_label",
        "url",
    ] {
        if !fields.takes(field) {
            continue;
        }
        let param = params.name(field);
        let value = if updating {
            nullable_text(params.nullable_string(field)?)
        } else {
            params.string(field)?.map(Value::String)
        };
        if let Some(value) = value {
            if let Value::String(text) = &value {
                check_text(&param, field, text)?;
            }
            patch.set(&[field], value);
        }
    }
    if fields.takes("images")
        && let Some(images) = params.string_list("images")?
    {
        if images.len() > MAX_IMAGES {
            return Err(ApiError::invalid_param(
                params.name("images"),
                format!(
                    "A product can have up to {MAX_IMAGES} images, but you passed {}.",
                    images.len()
                ),
            ));
        }
        patch.set(&["images"], json!(images));
    }
    if fields.takes("marketing_features")
        && let Some(features) = params.object_list("marketing_features")?
    {
        if features.len() > MAX_MARKETING_FEATURES {
            return Err(ApiError::invalid_param(
                params.name("marketing_features"),
                format!(
                    "A product can have up to {MAX_MARKETING_FEATURES} marketing features, but you passed {}.",
                    features.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(features.len());
        for mut feature in features {
            let name_param = feature.name("name");
            let name = feature.required_string("name")?;
            too_long(&name_param, &name, 5000)?;
            feature.finish()?;
            out.push(json!({"name": name}));
        }
        patch.set(&["marketing_features"], json!(out));
    }
    if fields.takes("package_dimensions") {
        let dimensions = if updating {
            params.nullable_object("package_dimensions")?
        } else {
            params.object("package_dimensions")?.map(Update::Set)
        };
        match dimensions {
            Some(Update::Set(p)) => patch.set(&["package_dimensions"], package_dimensions(p)?),
            Some(Update::Unset) => patch.set(&["package_dimensions"], Value::Null),
            None => {}
        }
    }
    if fields.takes("shippable")
        && let Some(shippable) = params.bool("shippable")?
    {
        patch.set(&["shippable"], json!(shippable));
    }
    if fields.takes("metadata") {
        patch.set_metadata(params.metadata()?);
    }
    Ok(patch)
}

/// Product IDs chosen by the caller: letters, digits, `_`, `-` and `.`.
fn check_custom_id(param: &str, id: &str) -> ApiResult<()> {
    too_long(param, id, 5000)?;
    if id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Ok(());
    }
    Err(ApiError::invalid_param(
        param,
        format!(
            "Invalid id: '{id}'. A product ID may contain only letters, digits, `_`, `-` and `.`."
        ),
    ))
}

/// A new product from inline `product_data` (not yet written): the
/// document, with the caller's `id` when it sent one.
pub(crate) fn product_from_data(
    mut data: Params,
    fields: ProductFields,
    now: i64,
) -> ApiResult<Value> {
    let id_param = data.name("id");
    let id = if fields.takes("id") {
        data.string("id")?
    } else {
        None
    };
    let patch = product_patch(&mut data, fields)?;
    data.finish()?;
    let id = match id {
        Some(id) => {
            check_custom_id(&id_param, &id)?;
            id
        }
        None => new_product_id(),
    };
    let mut doc = new_product_document(&id, now);
    patch.apply(&mut doc)?;
    Ok(doc)
}

/// A product may take an ID no object of the account has (deleted ones
/// included).
pub(crate) async fn ensure_id_free(ctx: &Ctx, id: &str) -> ApiResult<()> {
    if ctx.get(id).await?.is_some() {
        return Err(ApiError::invalid("Product already exists.")
            .with_code("resource_already_exists")
            .with_param("id"));
    }
    Ok(())
}

/// Loads a (not deleted) product of the caller's account; a missing one is
/// `named.missing("product", id)`.
pub async fn load_product(ctx: &Ctx, id: &str, named: Named<'_>) -> ApiResult<Record> {
    match ctx.get(id).await? {
        Some(record) if record.object == "product" && !record.deleted => Ok(record),
        _ => Err(named.missing("product", id)),
    }
}

async fn create_product(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let custom_id = params.string("id")?;
    let mut patch = product_patch(&mut params, ProductFields::Create)?;
    // Older API versions' `type`: still accepted by Stripe on create, and
    // shown on every product.
    if let Some(kind) = params.enum_value("type", &["good", "service"])? {
        patch.set(&["type"], json!(kind));
    }
    let price_data = params.object("default_price_data")?;
    params.finish()?;
    let id = match custom_id {
        Some(id) => {
            check_custom_id("id", &id)?;
            id
        }
        None => new_product_id(),
    };
    let mut doc = new_product_document(&id, ctx.now());
    patch.apply(&mut doc)?;
    let price = price_data
        .map(|data| prices::default_price_from_data(data, &id, ctx.now()))
        .transpose()?;
    if let Some(price) = &price {
        doc["default_price"] = price["id"].clone();
    }
    ctx.retry(|| async {
        ensure_id_free(&ctx, &id).await?;
        let mut writes = vec![
            Write::Insert(Record::new("product", doc.clone())),
            ctx.event("product.created", &doc, None),
        ];
        if let Some(price) = &price {
            writes.push(Write::Insert(Record::new("price", price.clone())));
            writes.push(ctx.event("price.created", price, None));
        }
        Ok((writes, ()))
    })
    .await?;
    ctx.respond(doc).await
}

async fn retrieve_product(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = load_product(&ctx, &id, Named::InPath("id")).await?;
    ctx.respond(record.data).await
}

async fn update_product(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let patch = product_patch(&mut params, ProductFields::Update)?;
    let default_price = params.nullable_string("default_price")?;
    params.finish()?;
    load_product(&ctx, &id, Named::InPath("id")).await?;
    if let Some(Update::Set(price_id)) = &default_price {
        let price = prices::load_price(&ctx, price_id, Named::InParam("default_price")).await?;
        if price.data["product"] != json!(id) {
            return Err(ApiError::invalid_param(
                "default_price",
                format!(
                    "The price `{price_id}` belongs to another product: a product's default price must be one of its own prices."
                ),
            ));
        }
        if price.data["active"] != json!(true) {
            return Err(ApiError::invalid_param(
                "default_price",
                format!(
                    "The price `{price_id}` is archived (active=false): a product's default price must be active."
                ),
            ));
        }
    }
    let updated = ctx
        .mutate("product", &id, "id", |record| {
            if record.deleted {
                return Err(ApiError::no_such("product", &id, "id"));
            }
            let mut doc = record.data.clone();
            patch.apply(&mut doc)?;
            match &default_price {
                Some(Update::Set(price)) => doc["default_price"] = json!(price),
                Some(Update::Unset) => doc["default_price"] = Value::Null,
                None => {}
            }
            if doc != record.data {
                doc["updated"] = json!(ctx.now());
            }
            Ok((
                ctx.update_with_event(&record, doc.clone(), "product.updated"),
                doc,
            ))
        })
        .await?;
    ctx.respond(updated).await
}

/// Whether the product has prices made with the Prices API (or
/// `default_price_data`); inline prices, records of another type, do not
/// count.
async fn has_user_created_prices(ctx: &Ctx, product: &str) -> ApiResult<bool> {
    let mut query = ListQuery::new("price");
    query
        .filters
        .push(Filter::Field("product", vec![json!(product)]));
    query.limit = 1;
    Ok(!ctx.list_records(&query).await?.is_empty())
}

async fn delete_product(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    load_product(&ctx, &id, Named::InPath("id")).await?;
    if has_user_created_prices(&ctx, &id).await? {
        return Err(ApiError::invalid(
            "This product cannot be deleted because it has one or more user-created prices.",
        ));
    }
    let deleted = ctx
        .mutate("product", &id, "id", |record| {
            if record.deleted {
                return Err(ApiError::no_such("product", &id, "id"));
            }
            let tombstone = json!({"id": id, "object": "product", "deleted": true});
            let mut replaced = record.with_data(tombstone.clone());
            replaced.deleted = true;
            Ok((
                vec![
                    Write::Update(replaced),
                    ctx.event("product.deleted", &record.data, None),
                ],
                tombstone,
            ))
        })
        .await?;
    Ok(Json(deleted))
}

async fn list_products(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let active = params.bool("active")?;
    let ids = params.string_list("ids")?;
    let shippable = params.bool("shippable")?;
    let url = params.string("url")?;
    params.finish()?;
    let mut query = ListQuery::new("product");
    if let Some(active) = active {
        query
            .filters
            .push(Filter::Field("active", vec![json!(active)]));
    }
    if let Some(ids) = ids.filter(|ids| !ids.is_empty()) {
        query.filters.push(Filter::Field(
            "id",
            ids.into_iter().map(Value::String).collect(),
        ));
    }
    if let Some(shippable) = shippable {
        query
            .filters
            .push(Filter::Field("shippable", vec![json!(shippable)]));
    }
    if let Some(url) = url {
        query.filters.push(Filter::Field("url", vec![json!(url)]));
    }
    ctx.list(query, &paging, "/v1/products").await
}

async fn search_products(Call { ctx, params }: Call) -> ApiResult<Json<Value>> {
    ctx.search_resource(params, &SEARCH).await
}
