//! `/v1/test_helpers/test_clocks`: Stripe's test clocks (create, retrieve,
//! list, delete, advance).
//!
//! A clock's customers, and everything of theirs, live on the clock's
//! frozen time (`http::object_time`). Advancing answers at once with
//! `status: advancing`; the scheduler then runs every item of the clock
//! due by the target, in time order and on the clock's time (renewals,
//! finalizations, retries, expiries), and [`finish_advance`] makes the
//! clock `ready` at the target.

pub mod status;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::registry::ObjectSpec;
use crate::core::state_machine::{StateMachine, StatusEnum};
use crate::http::api::{AppState, Call, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult};
use crate::http::object_time::CLOCK_OBJECT;
use crate::resources::billing::{settings, subscriptions};
use crate::resources::customers;
use crate::scheduler::{self, Advanced};
use crate::store::{DueItem, Filter, ListQuery, Record, Write};
use status::{Action, Status};

pub const SPEC: ObjectSpec = ObjectSpec::new(CLOCK_OBJECT, "clock")
    .display_name("billingclock")
    .title("TestClock")
    .list_url("/v1/test_helpers/test_clocks");

/// The scheduler's kind for an advance.
pub const ADVANCE_KIND: &str = "test_clock_advance";

/// Stripe deletes a test clock 30 days after it was created.
const LIFETIME: i64 = 30 * 86_400;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/test_helpers/test_clocks",
            get(list_test_clocks).post(create_test_clock),
        )
        .route(
            "/v1/test_helpers/test_clocks/{test_clock}",
            get(retrieve_test_clock).delete(delete_test_clock),
        )
        .route(
            "/v1/test_helpers/test_clocks/{test_clock}/advance",
            post(advance_test_clock),
        )
}

async fn create_test_clock(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let frozen_time = params
        .int("frozen_time")?
        .ok_or_else(|| ApiError::missing_param("frozen_time"))?;
    let name = params.string("name")?;
    if name.as_ref().is_some_and(|n| n.chars().count() > 300) {
        return Err(ApiError::invalid_param(
            "name",
            "Invalid string: must be at most 300 characters",
        ));
    }
    let customer = params.string("customer")?;
    params.finish()?;
    let attached = match &customer {
        Some(id) => Some(
            ctx.load("customer", id, "customer")
                .await
                .map_err(|_| ApiError::no_such_reference("customer", id, "customer"))?,
        ),
        None => None,
    };
    let created = ctx.state.clock().now();
    let doc = json!({
        "id": SPEC.new_id(),
        "object": CLOCK_OBJECT,
        "created": created,
        "deletes_after": created + LIFETIME,
        "frozen_time": frozen_time,
        "livemode": false,
        "name": name,
        "status": Status::Ready.as_str(),
        "status_details": {},
    });
    let mut writes = vec![
        Write::Insert(Record::new(CLOCK_OBJECT, doc.clone())),
        ctx.event("test_helpers.test_clock.created", &doc, None),
    ];
    if let Some(customer) = attached {
        writes.extend(attach_customer(&ctx, &doc, &customer)?);
    }
    ctx.commit(&writes).await?;
    ctx.respond(doc).await
}

/// `customer` on create: an existing customer moves onto the new clock,
/// for good (Stripe offers no way back).
fn attach_customer(ctx: &Ctx, clock: &Value, record: &Record) -> ApiResult<Vec<Write>> {
    let customer = &record.id;
    if let Some(other) = record.data["test_clock"].as_str() {
        return Err(ApiError::invalid_param(
            "customer",
            format!(
                "The customer {customer} already belongs to the test clock {other}, and a customer cannot leave its test clock."
            ),
        ));
    }
    let mut doc = record.data.clone();
    doc["test_clock"] = clock["id"].clone();
    Ok(ctx.update_with_event(record, doc, "customer.updated"))
}

async fn retrieve_test_clock(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = load_clock(&ctx, &id).await?;
    ctx.respond(record.data).await
}

async fn list_test_clocks(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    params.finish()?;
    let query = ListQuery::new(CLOCK_OBJECT);
    ctx.list(query, &paging, "/v1/test_helpers/test_clocks")
        .await
}

async fn load_clock(ctx: &Ctx, id: &str) -> ApiResult<Record> {
    match ctx.get(id).await? {
        Some(record) if record.object == CLOCK_OBJECT && !record.deleted => Ok(record),
        _ => Err(ApiError::no_such(SPEC.display_name, id, "test_clock")),
    }
}

async fn advance_test_clock(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let target = params
        .int("frozen_time")?
        .ok_or_else(|| ApiError::missing_param("frozen_time"))?;
    params.finish()?;
    let current = load_clock(&ctx, &id).await?;
    if Status::of(&current.data) == Some(Status::Ready) {
        check_advance_limit(&ctx, &current.data, target).await?;
    }
    let advancing = ctx
        .mutate(CLOCK_OBJECT, &id, "test_clock", |record| {
            if record.deleted {
                return Err(ApiError::no_such(SPEC.display_name, &id, "test_clock"));
            }
            let mut doc = record.data.clone();
            status::Machine::check(&doc, Action::Advance)?;
            let frozen = doc["frozen_time"].as_i64().unwrap_or_default();
            if target <= frozen {
                return Err(ApiError::invalid_param(
                    "frozen_time",
                    format!("The frozen time of this clock is {frozen} ({}). You can only advance it to a later time; {target} ({}) is not after it.", utc(frozen), utc(target)),
                ));
            }
            status::Machine::apply(&mut doc, Action::Advance)?;
            doc["status_details"] = json!({"advancing": {"target_frozen_time": target}});
            let now_ms = ctx.state.clock().now_ms();
            let item = scheduler::advance_item(&ctx.account, &id, ADVANCE_KIND, (frozen, target), now_ms);
            let mut writes = ctx.update_with_event(&record, doc.clone(), "test_helpers.test_clock.advancing");
            writes.push(Write::Schedule(item));
            Ok((writes, doc))
        })
        .await?;
    ctx.respond(advancing).await
}

/// Stripe's limit on one advance: two intervals of the clock's shortest
/// subscription, or two years without one (unless the limits are lifted).
async fn check_advance_limit(ctx: &Ctx, clock: &Value, target: i64) -> ApiResult<()> {
    if !settings::for_account(ctx).await?.test_clock_limits {
        return Ok(());
    }
    let id = clock["id"].as_str().unwrap_or_default();
    let frozen = clock["frozen_time"].as_i64().unwrap_or_default();
    let mut query = ListQuery::new("subscription");
    query
        .filters
        .push(Filter::Field("test_clock", vec![json!(id)]));
    query.limit = i64::MAX;
    let subscriptions = ctx.list_records(&query).await?;
    let live = subscriptions.iter().filter(|s| {
        !matches!(
            s.data["status"].as_str(),
            Some("canceled" | "incomplete_expired")
        )
    });
    let limit = live
        .map(|s| subscriptions::two_intervals_after(&s.data, frozen))
        .min()
        .unwrap_or_else(|| subscriptions::two_years_after(frozen));
    if target <= limit {
        return Ok(());
    }
    Err(ApiError::invalid_param(
        "frozen_time",
        format!(
            "The frozen time of this clock is {frozen} ({}). You can only advance it up to {limit} ({}). You can only advance a test clock up to two intervals from the current frozen time at a time, based on the shortest subscription interval in the test clock. For example, if a test clock has a monthly and yearly subscription, you may only advance up to two months at a time. If the test clock has no subscriptions or subscription schedules, you can advance up to 2 years from the current frozen time.",
            utc(frozen),
            utc(limit)
        ),
    ))
}

/// `2024-11-23 00:00:00 UTC`, as Stripe writes times in messages.
fn utc(timestamp: i64) -> String {
    crate::clock::utc_text(timestamp)
}

/// Runs when an advance ran everything due by its target: the clock is
/// `ready` at the target, or `internal_failure` when an item failed.
pub async fn finish_advance(ctx: Ctx, item: DueItem, advanced: Advanced) -> ApiResult<Vec<Write>> {
    let Some(record) = ctx.get(&item.target).await? else {
        return Ok(Vec::new()); // deleted with its account's data
    };
    if record.object != CLOCK_OBJECT || record.deleted {
        return Ok(Vec::new());
    }
    let mut doc = record.data.clone();
    let event = match advanced {
        Advanced::Ready => {
            status::Machine::apply(&mut doc, Action::Finish)?;
            doc["frozen_time"] = doc["status_details"]["advancing"]["target_frozen_time"].clone();
            "test_helpers.test_clock.ready"
        }
        Advanced::Failed(why) => {
            tracing::warn!("test clock {} failed to advance: {why}", record.id);
            status::Machine::apply(&mut doc, Action::Fail)?;
            "test_helpers.test_clock.internal_failure"
        }
    };
    doc["status_details"] = json!({});
    Ok(ctx.update_with_event(&record, doc, event))
}

async fn delete_test_clock(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = load_clock(&ctx, &id).await?;
    status::Machine::check(&record.data, Action::Delete)?;
    // Its objects' last events carry its time.
    ctx.follow_clock_id(&id).await?;
    let mut writes = Vec::new();
    let mut query = ListQuery::new("customer");
    query
        .filters
        .push(Filter::Field("test_clock", vec![json!(id)]));
    query.limit = i64::MAX;
    for customer in ctx.list_records(&query).await? {
        writes.extend(customers::delete_writes(&ctx, &customer).await?);
    }
    let tombstone = json!({"id": id, "object": CLOCK_OBJECT, "deleted": true});
    let mut replaced = record.with_data(tombstone.clone());
    replaced.deleted = true;
    writes.push(Write::Update(replaced));
    writes.push(Write::UnscheduleClock {
        test_clock: id.clone(),
    });
    writes.push(ctx.event("test_helpers.test_clock.deleted", &record.data, None));
    ctx.commit(&writes).await?;
    Ok(Json(tombstone))
}
