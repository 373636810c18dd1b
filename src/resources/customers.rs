//! `/v1/customers`: create, retrieve, update, delete, list and search.

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::registry::{Expansion, FixtureLink, ObjectSpec, to};
use crate::http::api::{AppState, Call, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::params::{Params, Patch, Update, address, nullable_text};
use crate::http::search::{self, FieldKind};
use crate::ids;
use crate::resources::billing::{settings, subscriptions};
use crate::resources::payments::payment_methods;
use crate::store::{Filter, ListQuery, Record, Write};

/// A customer's cash balance, shown when `expand[]=cash_balance` asks.
pub const CASH_BALANCE_SPEC: ObjectSpec = ObjectSpec::new("cash_balance", "");

/// What stripe-twin knows about customers (see `core::registry`).
pub const SPEC: ObjectSpec = ObjectSpec::new("customer", "cus")
    .id_length(14)
    .list_url("/v1/customers")
    .fields(&[
        ("default_source", to("payment_source")),
        (
            "invoice_settings.default_payment_method",
            to("payment_method"),
        ),
        ("test_clock", to("test_helpers.test_clock")),
        ("tax", Expansion::Hidden),
        ("cash_balance", Expansion::Hidden),
        ("invoice_credit_balance", Expansion::Hidden),
        (
            "subscriptions",
            Expansion::Related {
                object: "subscription",
                url_suffix: "subscriptions",
            },
        ),
        (
            "sources",
            Expansion::Related {
                object: "payment_source",
                url_suffix: "sources",
            },
        ),
        (
            "tax_ids",
            Expansion::Related {
                object: "tax_id",
                url_suffix: "tax_ids",
            },
        ),
    ])
    .fixture(&[FixtureLink {
        field: "invoice_settings.default_payment_method",
        object: "payment_method",
        optional: true,
        back: Some(("customer", "is not attached to this customer")),
    }]);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", get(list_customers).post(create_customer))
        .route("/v1/customers/search", get(search_customers))
        .route(
            "/v1/customers/{customer}",
            get(retrieve_customer)
                .post(update_customer)
                .delete(delete_customer),
        )
}

const SEARCH: search::Spec = search::Spec {
    object: "customer",
    resource: "customers",
    url: "/v1/customers/search",
    fields: &[
        ("email", FieldKind::Text),
        ("name", FieldKind::Text),
        ("phone", FieldKind::Text),
        ("created", FieldKind::Number),
    ],
    paths: &[],
};

pub(crate) fn new_customer_document(now: i64) -> Value {
    let id = SPEC.new_id();
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "cash_balance": {
            "object": "cash_balance",
            "available": null,
            "customer": id,
            "customer_account": null,
            "livemode": false,
            "settings": {"reconciliation_mode": "automatic", "using_merchant_default": true},
        },
        "created": now,
        "currency": null,
        "customer_account": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": null,
        "invoice_credit_balance": {},
        "invoice_prefix": ids::random_base62(8).to_uppercase(),
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null,
        },
        "livemode": false,
        "metadata": {},
        "name": null,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax": {
            "automatic_tax": "unrecognized_location",
            "ip_address": null,
            "location": null,
            "provider": "stripe",
        },
        "tax_exempt": "none",
        "test_clock": null,
    })
}

/// References to other objects a request names, checked before writing.
#[derive(Default)]
struct References {
    default_payment_method: Option<String>,
}

fn shipping(mut params: Params) -> ApiResult<Value> {
    let address_params = params
        .object("address")?
        .ok_or_else(|| crate::http::error::ApiError::missing_param(&params.name("address")))?;
    let line1_param = address_params.name("line1");
    let address = address(address_params)?;
    if address["line1"].is_null() {
        return Err(ApiError::missing_param(&line1_param));
    }
    let name = params.required_string("name")?;
    let phone = nullable_text(params.nullable_string("phone")?).unwrap_or(Value::Null);
    params.finish()?;
    // A customer's shipping has the carrier fields too, always null here
    // (Stripe fills them only for a shipped charge).
    Ok(json!({
        "address": address, "carrier": null, "name": name, "phone": phone, "tracking_number": null,
    }))
}

pub(crate) fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c == ',')
        && !domain.contains('@')
        && email.len() <= 512
}

/// Parses every plain-data parameter of create and update into a patch.
fn customer_patch(params: &mut Params, refs: &mut References) -> ApiResult<Patch> {
    let mut patch = Patch::default();
    for field in ["description", "name", "phone"] {
        if let Some(value) = nullable_text(params.nullable_string(field)?) {
            patch.set(&[field], value);
        }
    }
    // Present only while set (the spec has them as non-nullable strings).
    for field in ["business_name", "individual_name"] {
        match params.nullable_string(field)? {
            Some(Update::Set(value)) => patch.set(&[field], json!(value)),
            Some(Update::Unset) => patch.remove(field),
            None => {}
        }
    }
    if let Some(email) = params.nullable_string("email")? {
        if let Update::Set(email) = &email
            && !valid_email(email)
        {
            return Err(ApiError::invalid_param(
                "email",
                format!("Invalid email address: {email}"),
            )
            .with_code("email_invalid"));
        }
        patch.set(&["email"], nullable_text(Some(email)).unwrap_or_default());
    }
    if let Some(update) = params.nullable_object("address")? {
        let value = match update {
            Update::Set(p) => address(p)?,
            Update::Unset => Value::Null,
        };
        patch.set(&["address"], value);
    }
    if let Some(update) = params.nullable_object("shipping")? {
        let value = match update {
            Update::Set(p) => shipping(p)?,
            Update::Unset => Value::Null,
        };
        patch.set(&["shipping"], value);
    }
    if let Some(balance) = params.int("balance")? {
        patch.set(&["balance"], json!(balance));
    }
    if let Some(sequence) = params.int_in("next_invoice_sequence", 1, 1_000_000_000)? {
        patch.set(&["next_invoice_sequence"], json!(sequence));
    }
    if let Some(prefix) = params.string("invoice_prefix")? {
        check_invoice_prefix(&prefix)?;
        patch.set(&["invoice_prefix"], json!(prefix));
    }
    if let Some(locales) = params.string_list("preferred_locales")? {
        patch.set(&["preferred_locales"], json!(locales));
    }
    if let Some(exempt) = params.nullable_enum("tax_exempt", &["exempt", "none", "reverse"])? {
        let value = match exempt {
            Update::Set(v) => v,
            Update::Unset => "none".to_owned(),
        };
        patch.set(&["tax_exempt"], json!(value));
    }
    if let Some(mut settings) = params.object("invoice_settings")? {
        invoice_settings(&mut settings, &mut patch, refs)?;
        settings.finish()?;
    }
    tax_param(params, &mut patch)?;
    cash_balance_param(params, &mut patch)?;
    patch.set_metadata(params.metadata()?);
    Ok(patch)
}

/// `invoice_prefix`: 3 to 12 uppercase letters and digits.
fn check_invoice_prefix(prefix: &str) -> ApiResult<()> {
    let valid = (3..=12).contains(&prefix.len())
        && prefix
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !valid {
        return Err(ApiError::invalid_param(
            "invoice_prefix",
            format!(
                "Invalid invoice_prefix: '{prefix}'. It must be 3 to 12 characters long and contain only uppercase letters and digits."
            ),
        ));
    }
    Ok(())
}

/// `tax[ip_address]`, and `tax[validate_location]` checked but not kept.
fn tax_param(params: &mut Params, patch: &mut Patch) -> ApiResult<()> {
    if let Some(mut tax) = params.object("tax")? {
        if let Some(ip) = tax.nullable_string("ip_address")? {
            patch.set(
                &["tax", "ip_address"],
                nullable_text(Some(ip)).unwrap_or_default(),
            );
        }
        tax.enum_value("validate_location", &["auto", "deferred", "immediately"])?;
        tax.finish()?;
    }
    Ok(())
}

/// `cash_balance[settings][reconciliation_mode]`: `merchant_default` reads
/// as automatic, with `using_merchant_default` saying where it came from.
fn cash_balance_param(params: &mut Params, patch: &mut Patch) -> ApiResult<()> {
    if let Some(mut cash) = params.object("cash_balance")? {
        if let Some(mut settings) = cash.object("settings")? {
            if let Some(mode) = settings.enum_value(
                "reconciliation_mode",
                &["automatic", "manual", "merchant_default"],
            )? {
                patch.set(
                    &["cash_balance", "settings", "using_merchant_default"],
                    json!(mode == "merchant_default"),
                );
                let effective = if mode == "merchant_default" {
                    "automatic".to_owned()
                } else {
                    mode
                };
                patch.set(
                    &["cash_balance", "settings", "reconciliation_mode"],
                    json!(effective),
                );
            }
            settings.finish()?;
        }
        cash.finish()?;
    }
    Ok(())
}

fn invoice_settings(
    settings: &mut Params,
    patch: &mut Patch,
    refs: &mut References,
) -> ApiResult<()> {
    // `custom_fields=` (an empty list) unsets them.
    if let Some(fields) = settings.object_list("custom_fields")? {
        if fields.len() > 4 {
            return Err(ApiError::invalid_param(
                "invoice_settings[custom_fields]",
                "Invalid invoice_settings[custom_fields]: at most 4 custom fields are allowed.",
            ));
        }
        let mut out = Vec::new();
        for mut field in fields {
            let name = field.required_string("name")?;
            let value = field.required_string("value")?;
            if name.chars().count() > 40 || value.chars().count() > 140 {
                return Err(ApiError::invalid_param(
                    field.name("name"),
                    "Custom field names can have up to 40 characters and values up to 140.",
                ));
            }
            field.finish()?;
            out.push(json!({"name": name, "value": value}));
        }
        let value = if out.is_empty() {
            Value::Null
        } else {
            json!(out)
        };
        patch.set(&["invoice_settings", "custom_fields"], value);
    }
    if let Some(footer) = settings.nullable_string("footer")? {
        patch.set(
            &["invoice_settings", "footer"],
            nullable_text(Some(footer)).unwrap_or_default(),
        );
    }
    if let Some(pm) = settings.nullable_string("default_payment_method")? {
        match pm {
            Update::Set(id) => {
                refs.default_payment_method = Some(id.clone());
                patch.set(&["invoice_settings", "default_payment_method"], json!(id));
            }
            Update::Unset => {
                patch.set(&["invoice_settings", "default_payment_method"], Value::Null)
            }
        }
    }
    if let Some(update) = settings.nullable_object("rendering_options")? {
        let value = match update {
            Update::Set(mut options) => {
                let display = options.nullable_enum(
                    "amount_tax_display",
                    &["exclude_tax", "include_inclusive_tax"],
                )?;
                let template = options.nullable_string("template")?;
                options.finish()?;
                json!({
                    "amount_tax_display": nullable_text(display).unwrap_or_default(),
                    "template": nullable_text(template).unwrap_or_default(),
                })
            }
            Update::Unset => Value::Null,
        };
        patch.set(&["invoice_settings", "rendering_options"], value);
    }
    Ok(())
}

/// Objects the request points at must exist in the caller's account.
async fn check_references(ctx: &Ctx, customer_id: &str, refs: &References) -> ApiResult<()> {
    if let Some(pm) = &refs.default_payment_method {
        let attached = match ctx.get(pm).await? {
            Some(record) if record.object == "payment_method" => {
                record.data["customer"] == json!(customer_id)
            }
            _ => false,
        };
        if !attached {
            return Err(ApiError::invalid_param(
                "invoice_settings[default_payment_method]",
                format!("The customer does not have a payment method with the ID {pm}. The payment method must be attached to the customer."),
            )
            .with_code("resource_missing"));
        }
    }
    Ok(())
}

/// Parameters that would need objects this server does not keep.
fn refuse_unsupported(params: &mut Params) -> ApiResult<()> {
    for (param, kind) in [("source", "source"), ("default_source", "source")] {
        if let Some(id) = params.string(param)? {
            return Err(ApiError::no_such_reference(kind, &id, param));
        }
    }
    if params.contains("tax_id_data") {
        return Err(ApiError::invalid_param(
            "tax_id_data",
            "stripe-twin does not keep tax IDs yet: remove tax_id_data from the request.",
        ));
    }
    Ok(())
}

async fn create_customer(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let mut refs = References::default();
    let patch = customer_patch(&mut params, &mut refs)?;
    refuse_unsupported(&mut params)?;
    let payment_method = params.string("payment_method")?;
    let test_clock = params.string("test_clock")?;
    params.bool("validate")?;
    params.finish()?;
    if let Some(clock) = &test_clock {
        // The customer lives on the clock's time from its first moment.
        ctx.follow_clock_id(clock).await?;
        check_customer_limit(&ctx, clock).await?;
    }
    let mut doc = new_customer_document(ctx.now());
    let id = doc["id"].as_str().unwrap_or_default().to_owned();
    patch.apply(&mut doc)?;
    doc["test_clock"] = json!(test_clock);
    let Some(pm_id) = payment_method else {
        check_references(&ctx, &id, &refs).await?;
        ctx.commit(&[
            Write::Insert(Record::new("customer", doc.clone())),
            ctx.event("customer.created", &doc, None),
        ])
        .await?;
        return ctx.respond(doc).await;
    };
    let created = ctx
        .retry(|| async {
            let mut doc = doc.clone();
            let (attach, attached) = attach_new_customers_method(&ctx, &pm_id, &id).await?;
            let attached_id = attached["id"].as_str().unwrap_or_default().to_owned();
            // The default may name the method this request attaches (a
            // ready-made test ID stands for the PaymentMethod it became).
            match refs.default_payment_method.as_deref() {
                Some(named) if named == pm_id || named == attached_id => {
                    doc["invoice_settings"]["default_payment_method"] = json!(attached_id);
                }
                _ => check_references(&ctx, &id, &refs).await?,
            }
            let mut writes = vec![
                Write::Insert(Record::new("customer", doc.clone())),
                ctx.event("customer.created", &doc, None),
            ];
            writes.extend(attach);
            Ok((writes, doc))
        })
        .await?;
    ctx.respond(created).await
}

/// `payment_method` on create: Stripe attaches it to the new customer.
async fn attach_new_customers_method(
    ctx: &Ctx,
    pm_id: &str,
    customer: &str,
) -> ApiResult<(Vec<Write>, Value)> {
    let pm = payment_methods::resolve(ctx, pm_id, Named::InParam("payment_method")).await?;
    match payment_methods::attach_writes(ctx, &pm, customer)? {
        Some(done) => Ok(done),
        // Only a method already attached to this very customer needs no
        // writes, and this customer is new.
        None => Ok((Vec::new(), pm.data().clone())),
    }
}

async fn retrieve_customer(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load("customer", &id, "id").await?;
    ctx.respond(record.data).await
}

async fn update_customer(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let mut refs = References::default();
    let patch = customer_patch(&mut params, &mut refs)?;
    refuse_unsupported(&mut params)?;
    params.bool("validate")?;
    params.finish()?;
    check_references(&ctx, &id, &refs).await?;
    let updated = ctx
        .mutate("customer", &id, "id", |record| {
            if record.deleted {
                return Err(ApiError::no_such("customer", &id, "id"));
            }
            let mut doc = record.data.clone();
            patch.apply(&mut doc)?;
            Ok((
                ctx.update_with_event(&record, doc.clone(), "customer.updated"),
                doc,
            ))
        })
        .await?;
    ctx.respond(updated).await
}

async fn delete_customer(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let deleted = ctx
        .retry(|| async {
            let record = ctx.load("customer", &id, "id").await?;
            if record.deleted {
                return Err(ApiError::no_such("customer", &id, "id"));
            }
            let tombstone = json!({"id": id, "object": "customer", "deleted": true});
            Ok((delete_writes(&ctx, &record).await?, tombstone))
        })
        .await?;
    Ok(Json(deleted))
}

/// A customer's deletion: its live subscriptions canceled (as Stripe
/// does), then its tombstone and `customer.deleted`.
pub async fn delete_writes(ctx: &Ctx, record: &Record) -> ApiResult<Vec<Write>> {
    let mut writes = Vec::new();
    let mut subscriptions = ListQuery::new("subscription");
    subscriptions
        .filters
        .push(Filter::Customer(record.id.clone()));
    subscriptions.limit = i64::MAX;
    for sub in ctx.list_records(&subscriptions).await? {
        if !matches!(
            sub.data["status"].as_str(),
            Some("canceled" | "incomplete_expired")
        ) {
            writes.extend(subscriptions::cancel_writes(ctx, &sub).await?);
        }
    }
    let tombstone = json!({"id": record.id, "object": "customer", "deleted": true});
    let mut replaced = record.with_data(tombstone);
    replaced.deleted = true;
    writes.push(Write::Update(replaced));
    writes.push(ctx.event("customer.deleted", &record.data, None));
    Ok(writes)
}

async fn list_customers(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let email = params.string("email")?;
    let test_clock = params.string("test_clock")?;
    params.finish()?;
    let mut query = ListQuery::new("customer");
    if let Some(email) = email {
        // The index finds the few candidates; the list is case-sensitive.
        query
            .filters
            .push(Filter::Folded("email", email.to_ascii_lowercase()));
        query
            .filters
            .push(Filter::Field("email", vec![json!(email)]));
    }
    // As Stripe: a test clock's customers only when their clock is named.
    query.filters.push(match test_clock {
        Some(clock) => Filter::Field("test_clock", vec![json!(clock)]),
        None => Filter::Absent("test_clock"),
    });
    ctx.list(query, &paging, "/v1/customers").await
}

async fn search_customers(Call { ctx, params }: Call) -> ApiResult<Json<Value>> {
    ctx.search_resource(params, &SEARCH).await
}

/// Stripe's limit on a test clock's customers.
const MAX_CUSTOMERS: usize = 3;

/// Refuses a fourth customer on a clock (unless the limits are lifted).
async fn check_customer_limit(ctx: &Ctx, clock: &str) -> ApiResult<()> {
    if !settings::for_account(ctx).await?.test_clock_limits {
        return Ok(());
    }
    let mut query = ListQuery::new("customer");
    query
        .filters
        .push(Filter::Field("test_clock", vec![json!(clock)]));
    query.limit = MAX_CUSTOMERS as i64;
    if ctx.list_records(&query).await?.len() >= MAX_CUSTOMERS {
        return Err(ApiError::invalid_param(
            "test_clock",
            format!(
                "The test clock {clock} already has the maximum of {MAX_CUSTOMERS} customers. Stripe limits each test clock to {MAX_CUSTOMERS} customers."
            ),
        ));
    }
    Ok(())
}
