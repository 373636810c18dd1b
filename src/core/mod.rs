//! Cross-resource mechanics with no HTTP in them: amounts and their
//! bounds, the event types Stripe sends, the registry of object types, the
//! typed state machines of objects' statuses, and stripe-twin's hidden
//! bookkeeping on documents.
pub mod bookkeeping;
pub mod event_types;
pub mod money;
pub mod registry;
pub mod state_machine;
