//! One folder (or file) per Stripe API area, each with its router and its
//! handlers, named after Stripe's operations.
pub mod billing;
pub mod catalog;
pub mod checkout;
pub mod customers;
pub mod events;
pub mod payments;
pub mod webhook_endpoints;
