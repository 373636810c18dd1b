//! A PaymentIntent's state machine: the one both intents share
//! (`payments::intent_status`), with what is a PaymentIntent's own.

use crate::http::error::ApiError;
use crate::resources::payments::intent_status::{self, IntentKind, IntentMachine};
pub use crate::resources::payments::intent_status::{Action, Status};

#[cfg(test)]
use Action::*;
#[cfg(test)]
use Status::*;

pub struct PaymentIntent;

impl IntentKind for PaymentIntent {
    const OBJECT: &'static str = "payment_intent";
    const TITLE: &'static str = "PaymentIntent";
    const CODE: &'static str = "payment_intent_unexpected_state";
    const ALREADY_SUCCEEDED: &'static str = "You cannot confirm this PaymentIntent because it has already succeeded after being previously confirmed.";
    const CANCELABLE: &'static [Status] = &[
        Status::RequiresPaymentMethod,
        Status::RequiresConfirmation,
        Status::RequiresAction,
        Status::RequiresCapture,
        Status::Processing,
    ];
}

pub type Machine = IntentMachine<PaymentIntent>;

/// A Checkout Session's PaymentIntent moves only through the session.
pub fn checkout_owned(action: Action) -> ApiError {
    intent_status::checkout_owned::<PaymentIntent>(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::state_machine::{StateMachine, refusal, walk_table};

    #[test]
    fn table() {
        walk_table::<Machine>();
        let cases = [
            (
                Succeeded,
                Confirm,
                "You cannot confirm this PaymentIntent because it has already succeeded after being previously confirmed.",
            ),
            (
                Canceled,
                Confirm,
                "You cannot confirm this PaymentIntent because it has a status of canceled. Only a PaymentIntent with one of the following statuses may be confirmed: requires_payment_method, requires_confirmation, requires_action.",
            ),
            (
                Succeeded,
                Cancel,
                "You cannot cancel this PaymentIntent because it has a status of succeeded. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_confirmation, requires_action, requires_capture, processing.",
            ),
            (
                Succeeded,
                Update,
                "You cannot update this PaymentIntent because it has a status of succeeded. Only a PaymentIntent with one of the following statuses may be updated: requires_payment_method, requires_confirmation, requires_action.",
            ),
            (
                Canceled,
                Fail,
                "You cannot confirm this PaymentIntent because it has a status of canceled. Only a PaymentIntent with one of the following statuses may be confirmed: processing, requires_action.",
            ),
        ];
        for (from, action, message) in cases {
            let error = Machine::refused(refusal::<Machine>(from, action));
            assert_eq!(error.body()["error"]["message"], message);
            assert_eq!(
                error.body()["error"]["code"],
                "payment_intent_unexpected_state"
            );
        }
        for (from, action) in [
            (RequiresAction, RequireAction),
            (Canceled, Abandon),
            (Succeeded, Succeed),
        ] {
            refusal::<Machine>(from, action);
        }
        let owned = checkout_owned(Cancel).body();
        assert_eq!(
            owned["error"]["message"],
            "You cannot cancel this PaymentIntent because it belongs to a Checkout Session. You can't confirm or cancel the PaymentIntent for a Checkout Session: to cancel, expire the Checkout Session instead."
        );
    }
}
