//! Cross-resource mechanics with no HTTP in them: amounts and their
//! bounds, the event types Stripe sends, and the typed state machines of
//! objects' statuses.
pub mod event_types;
pub mod money;
pub mod state_machine;
