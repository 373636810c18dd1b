//! Payments: payment methods and Stripe's test cards, mandates, the two
//! intents (`intents` holds what they share), charges, refunds and balance
//! transactions.
pub mod balance_transactions;
pub mod charges;
pub mod intent_status;
pub mod intents;
pub mod mandates;
pub mod payment_intents;
pub mod payment_methods;
pub mod refunds;
pub mod setup_intents;
pub mod test_cards;
