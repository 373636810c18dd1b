//! A SetupIntent's state machine: the one both intents share
//! (`payments::intent_status`), with what is a SetupIntent's own.

use crate::http::error::ApiError;
use crate::resources::payments::intent_status::{self, IntentKind, IntentMachine};
pub use crate::resources::payments::intent_status::{Action, Status};

#[cfg(test)]
use Action::*;
#[cfg(test)]
use Status::*;

pub struct SetupIntent;

impl IntentKind for SetupIntent {
    const OBJECT: &'static str = "setup_intent";
    const TITLE: &'static str = "SetupIntent";
    const CODE: &'static str = "setup_intent_unexpected_state";
    const ALREADY_SUCCEEDED: &'static str =
        "You cannot confirm this SetupIntent because it has already succeeded.";
    const CANCELABLE: &'static [Status] = &[
        Status::RequiresPaymentMethod,
        Status::RequiresConfirmation,
        Status::RequiresAction,
        Status::Processing,
    ];
}

pub type Machine = IntentMachine<SetupIntent>;

/// A Checkout Session's SetupIntent moves only through the session.
pub fn checkout_owned(action: Action) -> ApiError {
    intent_status::checkout_owned::<SetupIntent>(action)
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
                "You cannot confirm this SetupIntent because it has already succeeded.",
            ),
            (
                Canceled,
                Confirm,
                "You cannot confirm this SetupIntent because it has a status of canceled. Only a SetupIntent with one of the following statuses may be confirmed: requires_payment_method, requires_confirmation, requires_action.",
            ),
            (
                Succeeded,
                Cancel,
                "You cannot cancel this SetupIntent because it has a status of succeeded. Only a SetupIntent with one of the following statuses may be canceled: requires_payment_method, requires_confirmation, requires_action, processing.",
            ),
            (
                Canceled,
                Update,
                "You cannot update this SetupIntent because it has a status of canceled. Only a SetupIntent with one of the following statuses may be updated: requires_payment_method, requires_confirmation, requires_action.",
            ),
            (
                Succeeded,
                AttachPaymentMethod,
                "You cannot update this SetupIntent because it has a status of succeeded. Only a SetupIntent with one of the following statuses may be updated: requires_payment_method, requires_confirmation, requires_action.",
            ),
            (
                RequiresPaymentMethod,
                Succeed,
                "You cannot confirm this SetupIntent because it has a status of requires_payment_method. Only a SetupIntent with one of the following statuses may be confirmed: processing, requires_action.",
            ),
            (
                Canceled,
                Cancel,
                "You cannot cancel this SetupIntent because it has a status of canceled. Only a SetupIntent with one of the following statuses may be canceled: requires_payment_method, requires_confirmation, requires_action, processing.",
            ),
        ];
        for (from, action, message) in cases {
            let error = Machine::refused(refusal::<Machine>(from, action));
            assert_eq!(error.body()["error"]["message"], message);
            assert_eq!(
                error.body()["error"]["code"],
                "setup_intent_unexpected_state"
            );
        }
        for (from, action) in [
            (RequiresAction, RequireAction),
            (Succeeded, Abandon),
            (Canceled, Fail),
        ] {
            refusal::<Machine>(from, action);
        }
        let owned = checkout_owned(Confirm).body();
        assert_eq!(
            owned["error"]["message"],
            "You cannot confirm this SetupIntent because it belongs to a Checkout Session. You can't confirm or cancel the SetupIntent for a Checkout Session: to cancel, expire the Checkout Session instead."
        );
    }
}
