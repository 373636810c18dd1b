//! stripe-twin: a stateful, Stripe-compatible API server for test suites.
//!
//! [`app()`] builds the whole HTTP application from an [`AppState`];
//! [`serve`] runs it on a listener until a shutdown signal. The route table
//! and the layers are in `app.rs`; this file lists the modules.

// Stripe objects are large JSON literals.
#![recursion_limit = "256"]

mod app;
pub mod clock;
pub mod config;
pub(crate) mod control;
pub mod core;
pub mod fixtures;
pub mod http;
pub mod ids;
pub(crate) mod pages;
pub mod resources;
pub mod scheduler;
pub mod serve;
pub mod store;
pub mod webhooks;

pub use app::{app, serve};
pub use http::api::{API_VERSION, AppState, Limits};
pub use resources::REGISTRY;
