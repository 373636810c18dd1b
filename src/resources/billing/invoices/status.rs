//! An invoice's state machine, and the errors Stripe refuses its moves with.

use crate::core::state_machine::{Refusal, Row, StateMachine, status_enum};
use crate::http::error::ApiError;

status_enum! {
    pub enum Status {
        Draft = "draft",
        Open = "open",
        Paid = "paid",
        Uncollectible = "uncollectible",
        Void = "void",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Finalize,
    /// Paid by its PaymentIntent or out of band (`/pay`).
    Pay,
    Void,
}

use Status::*;

pub struct Machine;

impl StateMachine for Machine {
    type Status = Status;
    type Action = Action;
    type Error = ApiError;
    const OBJECT: &'static str = "invoice";
    const TABLE: &'static [Row<Status, Action>] = &[
        (&[Draft], Action::Finalize, Open),
        (&[Open], Action::Pay, Paid),
        (&[Open], Action::Void, Void),
    ];

    /// The error Stripe sends for a move the table does not have.
    fn refused(refusal: Refusal<Status, Action>) -> ApiError {
        let message = match (refusal.action, refusal.status) {
            (Action::Pay, Some(Paid)) => "Invoice is already paid".to_owned(),
            (action, _) => {
                let verb = match action {
                    Action::Finalize => "finalize",
                    Action::Pay => "pay",
                    Action::Void => "void",
                };
                let allowed = refusal.allowed_list(" or ");
                let article = if allowed.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                format!(
                    "You can only {verb} {article} {allowed} invoice; this one is {}.",
                    refusal.status_str()
                )
            }
        };
        ApiError::invalid(message).with_code("invoice_unexpected_state")
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
            (Paid, Action::Pay, "Invoice is already paid"),
            (
                Void,
                Action::Pay,
                "You can only pay an open invoice; this one is void.",
            ),
            (
                Draft,
                Action::Pay,
                "You can only pay an open invoice; this one is draft.",
            ),
            (
                Open,
                Action::Finalize,
                "You can only finalize a draft invoice; this one is open.",
            ),
            (
                Paid,
                Action::Void,
                "You can only void an open invoice; this one is paid.",
            ),
        ];
        for (from, action, message) in cases {
            let error = Machine::refused(refusal::<Machine>(from, action));
            assert_eq!(error.body()["error"]["message"], message);
            assert_eq!(error.body()["error"]["code"], "invoice_unexpected_state");
        }
        refusal::<Machine>(Uncollectible, Action::Void);
    }
}
