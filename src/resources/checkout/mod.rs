//! Checkout: the sessions API (the hosted page lives in `pages::checkout`).
pub mod sessions;
