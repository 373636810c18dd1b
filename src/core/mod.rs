//! Cross-resource mechanics with no HTTP in them: amounts and their
//! bounds, the event types Stripe sends, the registry of object types, the
//! typed state machines of objects' statuses, and stripe-twin's hidden
//! bookkeeping on documents, the account's billing settings.
pub mod billing_settings;
pub mod bookkeeping;
pub(crate) mod event_types;
pub(crate) mod money;
pub(crate) mod registry;
pub(crate) mod state_machine;
