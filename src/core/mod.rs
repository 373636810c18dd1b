//! Cross-resource mechanics with no HTTP in them: amounts and their
//! bounds, the event types Stripe sends, and the registry of object types.
pub mod event_types;
pub mod money;
pub mod registry;
