//! An account's billing settings: the server's defaults (its flags) with
//! what the account changed through `/_config/billing`, kept in one
//! record of the account.

use serde_json::Value;

use crate::core::billing_settings::BillingSettings;
use crate::http::api::Ctx;
use crate::http::error::ApiResult;
use crate::store::{Record, Write};

/// The record holding an account's changes (not one of Stripe's objects).
pub const RECORD_ID: &str = "_twin_billing_settings";
pub const RECORD_OBJECT: &str = "twin.billing_settings";

/// The settings that apply in the caller's account.
pub async fn for_account(ctx: &Ctx) -> ApiResult<BillingSettings> {
    let defaults = ctx.state.billing();
    Ok(match ctx.store().get(&ctx.account, RECORD_ID).await? {
        Some(record) => defaults.overlaid(&record.data),
        None => defaults.clone(),
    })
}

/// Stores `settings` as the account's own (replacing earlier changes).
pub async fn store(ctx: &Ctx, settings: &BillingSettings) -> ApiResult<()> {
    let mut doc: Value = settings.to_json();
    doc["id"] = RECORD_ID.into();
    let write = match ctx.store().get(&ctx.account, RECORD_ID).await? {
        Some(record) => Write::Update(record.with_data(doc)),
        None => Write::Insert(Record::new(RECORD_OBJECT, doc)),
    };
    ctx.commit(&[write]).await
}
