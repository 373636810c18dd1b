//! A test clock's state machine, and the errors Stripe refuses its moves
//! with. A clock advances from `ready`; an advance that could not run
//! leaves it in `internal_failure`, which Stripe never advances again.

use crate::core::state_machine::{Refusal, Row, StateMachine, status_enum};
use crate::http::error::ApiError;
use crate::http::object_time;

status_enum! {
    pub enum Status {
        Ready = "ready",
        Advancing = "advancing",
        InternalFailure = "internal_failure",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Advance,
    /// Everything due by the target ran.
    Finish,
    /// An item of the advance failed.
    Fail,
    /// Deleting it (the status stays; refused while it advances).
    Delete,
}

use Action::*;
use Status::*;

pub struct Machine;

impl StateMachine for Machine {
    type Status = Status;
    type Action = Action;
    type Error = ApiError;
    const OBJECT: &'static str = object_time::CLOCK_OBJECT;
    const TABLE: &'static [Row<Status, Action>] = &[
        (&[Ready], Advance, Advancing),
        (&[Advancing], Finish, Ready),
        (&[Advancing], Fail, InternalFailure),
        (&[Ready], Delete, Ready),
        (&[InternalFailure], Delete, InternalFailure),
    ];

    fn refused(refusal: Refusal<Status, Action>) -> ApiError {
        match refusal.status {
            Some(Advancing) => object_time::advancing(&refusal.id),
            Some(InternalFailure) => ApiError::invalid(format!(
                "The test clock {} failed to advance (status `internal_failure`), and a failed test clock cannot advance again. Delete it and start a new one.",
                refusal.id
            )),
            _ => ApiError::invalid(format!(
                "The test clock {} is not advancing (status `{}`).",
                refusal.id,
                refusal.status_str()
            )),
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
        for action in [Advance, Delete] {
            let error = Machine::refused(refusal::<Machine>(Advancing, action));
            assert_eq!(error.body()["error"]["code"], "test_clock_advancing");
        }
        let error = Machine::refused(refusal::<Machine>(InternalFailure, Advance));
        assert!(
            error.body()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cannot advance again")
        );
        refusal::<Machine>(Ready, Finish);
    }
}
