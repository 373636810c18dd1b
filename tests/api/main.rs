//! The integration tests, as one test binary (linking one binary instead
//! of one per file is most of what `cargo test` took). Each module is one
//! area; `common` is the harness: a real server on 127.0.0.1:0 with a fresh
//! store per test, on SQLite always and on Postgres when TEST_DATABASE_URL
//! is set.
#![allow(clippy::disallowed_methods)] // tests wait and measure in real time

// First: its `backend_tests!` macro is used by the modules after it.
#[macro_use]
mod common;

mod amazon_pay_mandates;
mod api_contract;
mod billing_cycle;
mod binary_flags;
mod browser_amazon_pay;
mod browser_checkout;
mod browser_pages;
mod checkout_sessions;
mod clock_faults;
mod crash_idempotency;
mod customers;
mod external_suites;
mod faults;
mod fixtures;
mod form_props;
mod fuzz_router;
mod hardening;
mod migrations;
mod not_emulated;
mod pages;
mod payment_intents;
mod payment_methods;
mod products_prices;
mod refunds;
mod registry;
mod scheduler;
mod sdk_async_stripe;
mod search_payments;
mod seed_billing;
mod setup_intents;
mod shapes;
mod spec_shapes;
mod subscriptions;
mod test_cards;
mod test_clocks;
mod webhooks;
