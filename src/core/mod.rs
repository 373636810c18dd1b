//! Cross-resource mechanics with no HTTP in them: amounts and their
//! bounds, and the event types Stripe sends.
pub mod event_types;
pub mod money;
