//! Billing: invoices, subscriptions and the billing cycle that renews
//! them, test clocks, and the account's billing settings.
pub mod invoices;
pub mod settings;
pub mod subscriptions;
pub mod test_clocks;
