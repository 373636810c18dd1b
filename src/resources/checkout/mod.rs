//! Checkout: the sessions API (the hosted page lives in `pages::checkout`).
mod expiry;
mod params;
mod payment_flow;
pub mod sessions;
mod status;
