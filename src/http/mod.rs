//! The request contract every endpoint shares, written once: the app state
//! and `Ctx`, the extractors (auth, decoding, `expand[]`), form decoding and
//! typed parameters, lists and search, idempotency and the unit of work,
//! the refusals of what is not emulated, and the one error type.
pub mod api;
pub mod auth;
pub(crate) mod body;
pub(crate) mod call;
pub(crate) mod ctx;
pub mod error;
pub(crate) mod events;
pub(crate) mod expand;
pub mod form;
pub(crate) mod idempotency;
pub(crate) mod lists;
pub(crate) mod not_emulated;
pub(crate) mod object_time;
pub(crate) mod param_limits;
pub mod params;
pub(crate) mod search;
pub(crate) mod state;
pub(crate) mod stripe_operations;
pub(crate) mod unit_of_work;
