//! A PaymentIntent's state machine, and the errors Stripe refuses its moves
//! with.
//!
//! Confirming (by the API, an invoice, a subscription or Checkout) starts an
//! attempt (`processing`) that ends in the same request: succeeded,
//! requires_action (the authorization page then settles or declines it) or
//! back to requires_payment_method.

use serde_json::Value;

use crate::core::state_machine::{Refusal, Row, StateMachine, StatusEnum};
use crate::http::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    RequiresCapture,
    Processing,
    Canceled,
    Succeeded,
}

impl StatusEnum for Status {
    const NAMES: &'static [(Self, &'static str)] = &[
        (RequiresPaymentMethod, "requires_payment_method"),
        (RequiresConfirmation, "requires_confirmation"),
        (RequiresAction, "requires_action"),
        (RequiresCapture, "requires_capture"),
        (Processing, "processing"),
        (Canceled, "canceled"),
        (Succeeded, "succeeded"),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// An update that touches the money or the payment method (the status stays).
    Update,
    /// A payment method given before confirming.
    AttachPaymentMethod,
    Confirm,
    RequireAction,
    /// The charge succeeded.
    Succeed,
    /// The charge failed.
    Fail,
    /// A Checkout Session's subscription no longer waits on the buyer's try.
    Abandon,
    Cancel,
}

use Action::*;
use Status::*;

pub struct Machine;

const WAITING: &[Status] = &[RequiresPaymentMethod, RequiresConfirmation, RequiresAction];

impl StateMachine for Machine {
    type Status = Status;
    type Action = Action;
    const OBJECT: &'static str = "payment_intent";
    const TABLE: &'static [Row<Status, Action>] = &[
        (&[RequiresPaymentMethod], Update, RequiresPaymentMethod),
        (&[RequiresConfirmation], Update, RequiresConfirmation),
        (&[RequiresAction], Update, RequiresAction),
        (WAITING, AttachPaymentMethod, RequiresConfirmation),
        (WAITING, Confirm, Processing),
        (&[Processing], RequireAction, RequiresAction),
        (&[Processing, RequiresAction], Succeed, Succeeded),
        (&[Processing, RequiresAction], Fail, RequiresPaymentMethod),
        (WAITING, Abandon, RequiresPaymentMethod),
        (
            &[
                RequiresPaymentMethod,
                RequiresConfirmation,
                RequiresAction,
                RequiresCapture,
                Processing,
            ],
            Cancel,
            Canceled,
        ),
    ];
}

/// Moves `doc` by `action`, or Stripe's error why it cannot.
pub fn apply(doc: &mut Value, action: Action) -> ApiResult<Status> {
    Machine::apply(doc, action).map_err(refused)
}

/// Whether `action` may move `doc` now, or Stripe's error why not.
pub fn check(doc: &Value, action: Action) -> ApiResult<Status> {
    Machine::check(doc, action).map_err(refused)
}

/// The error Stripe sends for a move the table does not have; the moves
/// within an attempt speak as the request that made them.
pub fn refused(refusal: Refusal<Status, Action>) -> ApiError {
    let (verb, done) = match refusal.action {
        Update | AttachPaymentMethod => ("update", "updated"),
        Cancel | Abandon => ("cancel", "canceled"),
        Confirm | RequireAction | Succeed | Fail => ("confirm", "confirmed"),
    };
    let message = if refusal.status == Some(Succeeded) && verb == "confirm" {
        "You cannot confirm this PaymentIntent because it has already succeeded after being previously confirmed.".to_owned()
    } else {
        format!(
            "You cannot {verb} this PaymentIntent because it has a status of {}. Only a PaymentIntent with one of the following statuses may be {done}: {}.",
            refusal.status_str(),
            refusal.allowed_list(", "),
        )
    };
    ApiError::invalid(message).with_code("payment_intent_unexpected_state")
}

/// A Checkout Session's PaymentIntent moves only through the session.
pub fn checkout_owned(action: Action) -> ApiError {
    let verb = if action == Cancel {
        "cancel"
    } else {
        "confirm"
    };
    ApiError::invalid(format!(
        "You cannot {verb} this PaymentIntent because it belongs to a Checkout Session. You can't confirm or cancel the PaymentIntent for a Checkout Session: to cancel, expire the Checkout Session instead."
    ))
    .with_code("payment_intent_unexpected_state")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::state_machine::{refusal, walk_table};

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
            let error = refused(refusal::<Machine>(from, action));
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
