//! Cross-resource mechanics with no HTTP in them: amounts and their
//! bounds, the event types Stripe sends, the registry of object types, and
//! the typed state machines of objects' statuses.
pub mod event_types;
pub mod money;
pub mod registry;
pub mod state_machine;
