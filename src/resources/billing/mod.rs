//! Billing: invoices and subscriptions.
pub mod invoices;
pub mod subscriptions;
