//! A Checkout Session's state machine, and the errors Stripe refuses its
//! moves with.

use crate::core::state_machine::{Refusal, Row, StateMachine, StatusEnum, status_enum};
use crate::http::error::ApiError;

status_enum! {
    pub enum Status {
        Open = "open",
        Complete = "complete",
        Expired = "expired",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Paid or set up (or nothing was due).
    Complete,
    /// By `/expire` or at `expires_at`.
    Expire,
}

use Status::*;

pub struct Machine;

impl StateMachine for Machine {
    type Status = Status;
    type Action = Action;
    type Error = ApiError;
    const OBJECT: &'static str = "checkout.session";
    const TABLE: &'static [Row<Status, Action>] = &[
        (&[Open], Action::Complete, Complete),
        (&[Open], Action::Expire, Expired),
    ];

    /// The error Stripe sends for a move the table does not have.
    fn refused(refusal: Refusal<Status, Action>) -> ApiError {
        match refusal.action {
            Action::Expire => {
                let allowed: Vec<String> = refusal
                    .allowed
                    .iter()
                    .map(|s| format!("\"{}\"", s.as_str()))
                    .collect();
                ApiError::invalid(format!(
                    "Only Checkout Sessions with a status in [{}] can be expired. This Checkout Session has a status of `{}`.",
                    allowed.join(", "),
                    refusal.status_str()
                ))
            }
            Action::Complete => ApiError::invalid(
                "This Checkout Session has expired, so it can no longer be completed. Return to the merchant to start again.",
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
            (
                Complete,
                Action::Expire,
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of `complete`.",
            ),
            (
                Expired,
                Action::Expire,
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of `expired`.",
            ),
            (
                Expired,
                Action::Complete,
                "This Checkout Session has expired, so it can no longer be completed. Return to the merchant to start again.",
            ),
        ];
        for (from, action, message) in cases {
            let error = Machine::refused(refusal::<Machine>(from, action));
            assert_eq!(error.body()["error"]["message"], message);
        }
        refusal::<Machine>(Complete, Action::Complete);
    }
}
