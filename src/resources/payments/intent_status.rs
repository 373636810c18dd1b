//! The state machine both intents share: SetupIntents and PaymentIntents
//! move alike, and differ only in what they are called, their error code,
//! how Stripe says one already succeeded, and the statuses they may be
//! canceled from (`IntentKind`).
//!
//! Confirming (by the API, an invoice, a subscription or Checkout) starts an
//! attempt (`processing`) that ends in the same request: succeeded,
//! requires_action (the authorization page then succeeds or fails it) or
//! back to requires_payment_method.

use std::marker::PhantomData;

use crate::core::state_machine::{Refusal, Row, StateMachine, status_enum};
use crate::http::error::ApiError;

status_enum! {
    pub enum Status {
        RequiresPaymentMethod = "requires_payment_method",
        RequiresConfirmation = "requires_confirmation",
        RequiresAction = "requires_action",
        /// PaymentIntents only.
        RequiresCapture = "requires_capture",
        Processing = "processing",
        Canceled = "canceled",
        Succeeded = "succeeded",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// An update that touches the money or the payment method (the status
    /// stays).
    Update,
    /// A payment method given before confirming.
    AttachPaymentMethod,
    Confirm,
    RequireAction,
    /// The charge or the setup succeeded.
    Succeed,
    /// It failed.
    Fail,
    /// A Checkout Session's subscription no longer waits on the buyer's try.
    Abandon,
    Cancel,
}

use Action::*;
use Status::*;

/// What tells one intent from the other.
pub trait IntentKind: 'static {
    const OBJECT: &'static str;
    /// As Stripe's messages name it: `SetupIntent`.
    const TITLE: &'static str;
    const CODE: &'static str;
    /// Stripe's message for confirming one that already succeeded.
    const ALREADY_SUCCEEDED: &'static str;
    const CANCELABLE: &'static [Status];
}

/// The machine of one kind of intent.
pub struct IntentMachine<K>(PhantomData<K>);

const WAITING: &[Status] = &[RequiresPaymentMethod, RequiresConfirmation, RequiresAction];

impl<K: IntentKind> StateMachine for IntentMachine<K> {
    type Status = Status;
    type Action = Action;
    type Error = ApiError;
    const OBJECT: &'static str = K::OBJECT;
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
        (K::CANCELABLE, Cancel, Canceled),
    ];

    /// The moves within an attempt speak as the request that made them.
    fn refused(refusal: Refusal<Status, Action>) -> ApiError {
        let (verb, done) = match refusal.action {
            Update | AttachPaymentMethod => ("update", "updated"),
            Cancel | Abandon => ("cancel", "canceled"),
            Confirm | RequireAction | Succeed | Fail => ("confirm", "confirmed"),
        };
        let message = if refusal.status == Some(Succeeded) && verb == "confirm" {
            K::ALREADY_SUCCEEDED.to_owned()
        } else {
            format!(
                "You cannot {verb} this {title} because it has a status of {}. Only a {title} with one of the following statuses may be {done}: {}.",
                refusal.status_str(),
                refusal.allowed_list(", "),
                title = K::TITLE,
            )
        };
        ApiError::invalid(message).with_code(K::CODE)
    }
}

/// A Checkout Session's intent moves only through the session.
pub fn checkout_owned<K: IntentKind>(action: Action) -> ApiError {
    let verb = if action == Cancel {
        "cancel"
    } else {
        "confirm"
    };
    ApiError::invalid(format!(
        "You cannot {verb} this {title} because it belongs to a Checkout Session. You can't confirm or cancel the {title} for a Checkout Session: to cancel, expire the Checkout Session instead.",
        title = K::TITLE,
    ))
    .with_code(K::CODE)
}
