//! A subscription's state machine, and the errors Stripe refuses its moves
//! with.
//!
//! A new subscription is incomplete until its first invoice is paid (or
//! sent, or nothing is due); an ended one (canceled, incomplete_expired)
//! changes no more.

use crate::core::state_machine::{Refusal, Row, StateMachine, status_enum};
use crate::http::error::ApiError;

status_enum! {
    pub enum Status {
        Incomplete = "incomplete",
        IncompleteExpired = "incomplete_expired",
        Trialing = "trialing",
        Active = "active",
        PastDue = "past_due",
        Canceled = "canceled",
        Unpaid = "unpaid",
        Paused = "paused",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// An update that changes more than notes (the status stays).
    Update,
    /// Created without a trial, its first invoice paid or sent.
    Start,
    /// Created with a trial, or given a later `trial_end`.
    StartTrial,
    /// `trial_end=now` on a running trial.
    EndTrial,
    /// Its first or overdue invoice was paid after the fact...
    Pay,
    /// ...while its trial still runs.
    PayInTrial,
    /// An update's invoice could not be charged.
    FailPayment,
    Resume,
    /// A trial ended without a payment method, under `end_behavior=pause`.
    Pause,
    /// Its invoice's retries ran out, under the account's `unpaid` setting.
    GiveUp,
    /// Ends it: an incomplete one never started and expires.
    Cancel,
}

use Action::*;
use Status::*;

pub struct Machine;

/// Every status but the ended ones.
const LIVE: &[Status] = &[Incomplete, Trialing, Active, PastDue, Unpaid, Paused];
const OVERDUE: &[Status] = &[Incomplete, PastDue, Unpaid];

impl StateMachine for Machine {
    type Status = Status;
    type Action = Action;
    type Error = ApiError;
    const OBJECT: &'static str = "subscription";
    const TABLE: &'static [Row<Status, Action>] = &[
        (&[Incomplete], Update, Incomplete),
        (&[Trialing], Update, Trialing),
        (&[Active], Update, Active),
        (&[PastDue], Update, PastDue),
        (&[Unpaid], Update, Unpaid),
        (&[Paused], Update, Paused),
        (&[Incomplete], Start, Active),
        (LIVE, StartTrial, Trialing),
        (&[Trialing], EndTrial, Active),
        (OVERDUE, Pay, Active),
        (OVERDUE, PayInTrial, Trialing),
        (&[Active], FailPayment, PastDue),
        (&[Paused], Resume, Active),
        (&[Trialing], Pause, Paused),
        (&[PastDue], GiveUp, Unpaid),
        (&[Incomplete], Cancel, IncompleteExpired),
        (
            &[Trialing, Active, PastDue, Unpaid, Paused],
            Cancel,
            Canceled,
        ),
    ];

    /// The error Stripe sends for a move the table does not have: an ended
    /// subscription cannot be found to cancel again, and the moves of a
    /// creation, an update or a payment speak as an update.
    fn refused(refusal: Refusal<Status, Action>) -> ApiError {
        match refusal.action {
            Cancel => ApiError::no_such("subscription", &refusal.id, "subscription_exposed_id"),
            Resume => ApiError::invalid(format!(
                "Only subscriptions with `status=paused` can be resumed; this subscription's status is {}.",
                refusal.status_str()
            )),
            Update | Start | StartTrial | EndTrial | Pay | PayInTrial | FailPayment | Pause
            | GiveUp => ApiError::invalid(
                "A canceled subscription can only update its cancellation_details and metadata.",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::state_machine::{refusal, walk_table};

    #[test]
    fn table() {
        walk_table::<Machine>();
        let cases = [
            (Canceled, Cancel, 404, "No such subscription: 'obj_1'"),
            (
                IncompleteExpired,
                Cancel,
                404,
                "No such subscription: 'obj_1'",
            ),
            (
                Active,
                Resume,
                400,
                "Only subscriptions with `status=paused` can be resumed; this subscription's status is active.",
            ),
            (
                Canceled,
                Update,
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            ),
            (
                IncompleteExpired,
                StartTrial,
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            ),
        ];
        for (from, action, http, message) in cases {
            let error = Machine::refused(refusal::<Machine>(from, action));
            assert_eq!(error.status().as_u16(), http);
            assert_eq!(error.body()["error"]["message"], message);
        }
        for (from, action) in [
            (Active, Pay),
            (PastDue, FailPayment),
            (Active, EndTrial),
            (Trialing, Start),
        ] {
            refusal::<Machine>(from, action);
        }
    }
}
