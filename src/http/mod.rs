//! The request contract every endpoint shares, written once: the app state
//! and `Ctx`, the extractors (auth, decoding, `expand[]`), form decoding and
//! typed parameters, lists and search, idempotency and the unit of work,
//! the refusals of what is not emulated, and the one error type.
pub mod api;
pub mod auth;
pub mod body;
pub mod call;
pub mod ctx;
pub mod error;
pub mod events;
pub mod expand;
pub mod form;
pub mod idempotency;
pub mod lists;
pub mod not_emulated;
pub mod param_limits;
pub mod params;
pub mod search;
pub mod state;
pub mod stripe_operations;
pub mod unit_of_work;
