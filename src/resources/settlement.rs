//! What happens when a PaymentIntent moves, in one place: the invoice it
//! pays settles (paid, or one more failed attempt), then the subscription
//! that invoice belongs to becomes active. Checkout Sessions complete after
//! this, in `checkout::payment_flow`, whose intents come from the page.
//!
//! The payments and billing resources below reach this through the
//! [`Settlement`] trait of `http::ctx`, so none imports the one above it.

use std::future::Future;

use serde_json::Value;

use crate::http::ctx::{Ctx, Settlement};
use crate::http::error::ApiResult;
use crate::resources::billing::{invoices, subscriptions};
use crate::store::Write;

impl Settlement for Ctx {
    async fn intent_moved(&self, intent: &Value, writes: &mut Vec<Write>) -> ApiResult<()> {
        match invoices::settle_intent(self, intent, writes).await? {
            Some(paid) => subscriptions::invoice_paid(self, &paid, intent, writes).await,
            None => Ok(()),
        }
    }

    fn invoice_paid<'a>(
        &'a self,
        invoice: &'a Value,
        intent: &'a Value,
        writes: &'a mut Vec<Write>,
    ) -> impl Future<Output = ApiResult<()>> + Send + 'a {
        subscriptions::invoice_paid(self, invoice, intent, writes)
    }
}
