//! Cross-resource mechanics with no HTTP in them: amounts and their
//! bounds, the event types Stripe sends, and stripe-twin's hidden
//! bookkeeping on documents.
pub mod bookkeeping;
pub mod event_types;
pub mod money;
