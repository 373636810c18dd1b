//! Typed state machines for the `status` of a document: a status enum
//! whose variants are Stripe's strings, an action enum, and one transition
//! table per object type. Every status change goes through `apply`, so the
//! table is the one place that says which moves exist; a move the table
//! does not have is a `Refusal`, which each resource renders as the error
//! Stripe sends.

use std::fmt::Debug;

use serde_json::{Value, json};

/// A status enum; `NAMES` pairs every variant with Stripe's string for it.
pub trait StatusEnum: Copy + Eq + Debug + 'static {
    const NAMES: &'static [(Self, &'static str)];

    fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(status, _)| *status == self)
            .map_or("", |(_, name)| name)
    }

    fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(status, _)| *status)
    }

    /// The document's `status`, when it is one of these.
    fn of(doc: &Value) -> Option<Self> {
        doc["status"].as_str().and_then(Self::parse)
    }
}

/// Declares a status enum and Stripe's string for each variant, in one list:
/// `status_enum! { pub enum Status { Open = "open", Paid = "paid" } }`.
macro_rules! status_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $crate::core::state_machine::StatusEnum for $name {
            const NAMES: &'static [(Self, &'static str)] = &[$(($name::$variant, $text)),+];
        }
    };
}
pub(crate) use status_enum;

/// One row of a table: `action` moves an object in any of the statuses
/// listed first to the status last.
pub type Row<S, A> = (&'static [S], A, S);

/// Why an action cannot move an object: what it is, where it stands, and
/// the statuses the action would have been allowed from (in table order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal<S, A> {
    pub object: &'static str,
    pub id: String,
    pub status: Option<S>,
    pub action: A,
    pub allowed: Vec<S>,
}

impl<S: StatusEnum, A> Refusal<S, A> {
    /// The current status as Stripe writes it (empty when there is none).
    pub fn status_str(&self) -> &'static str {
        self.status.map_or("", StatusEnum::as_str)
    }

    /// The allowed statuses, joined with `separator`.
    pub fn allowed_list(&self, separator: &str) -> String {
        let names: Vec<&str> = self.allowed.iter().map(|s| s.as_str()).collect();
        names.join(separator)
    }
}

/// An object type's machine: its statuses, actions and transition table,
/// and the one place its refusals become the error its API sends.
/// (A table lists, for one action, each status at most once.)
pub trait StateMachine {
    type Status: StatusEnum;
    type Action: Copy + Eq + Debug + 'static;
    type Error;
    /// The object type, as in the document's `object`.
    const OBJECT: &'static str;
    const TABLE: &'static [Row<Self::Status, Self::Action>];

    /// The error for a move the table does not have.
    fn refused(refusal: Refusal<Self::Status, Self::Action>) -> Self::Error;

    /// Where `action` takes an object in `from`, if the table has that move.
    fn target(from: Self::Status, action: Self::Action) -> Option<Self::Status> {
        Self::TABLE
            .iter()
            .find(|(froms, a, _)| *a == action && froms.contains(&from))
            .map(|(_, _, to)| *to)
    }

    /// The statuses `action` is allowed from, in the table's order.
    fn allowed(action: Self::Action) -> Vec<Self::Status> {
        let mut allowed = Vec::new();
        for (froms, _, _) in Self::TABLE.iter().filter(|(_, a, _)| *a == action) {
            for from in *froms {
                if !allowed.contains(from) {
                    allowed.push(*from);
                }
            }
        }
        allowed
    }

    /// Where `action` would take `doc`, or the refusal of it.
    fn try_move(
        doc: &Value,
        action: Self::Action,
    ) -> Result<Self::Status, Refusal<Self::Status, Self::Action>> {
        let status = Self::Status::of(doc);
        status
            .and_then(|from| Self::target(from, action))
            .ok_or_else(|| Refusal {
                object: Self::OBJECT,
                id: doc["id"].as_str().unwrap_or_default().to_owned(),
                status,
                action,
                allowed: Self::allowed(action),
            })
    }

    /// Where `action` would take `doc` (left as it is), or why it cannot.
    fn check(doc: &Value, action: Self::Action) -> Result<Self::Status, Self::Error> {
        Self::try_move(doc, action).map_err(Self::refused)
    }

    /// Moves `doc`'s `status` by `action` and returns the new status, or
    /// leaves it and says why it cannot.
    fn apply(doc: &mut Value, action: Self::Action) -> Result<Self::Status, Self::Error> {
        let to = Self::check(doc, action)?;
        doc["status"] = json!(to.as_str());
        Ok(to)
    }
}

/// Checks a machine's table the way each machine's tests do: every name
/// parses back, each (status, action) has at most one row, and every row's
/// action from each of its statuses gives its target.
#[cfg(test)]
pub fn walk_table<M: StateMachine>() {
    for (status, name) in <M::Status as StatusEnum>::NAMES {
        assert_eq!(M::Status::parse(name), Some(*status), "{name}");
        assert_eq!(status.as_str(), *name);
    }
    for (i, (froms, action, to)) in M::TABLE.iter().enumerate() {
        for from in *froms {
            let twice = M::TABLE[i + 1..]
                .iter()
                .any(|(other, a, _)| a == action && other.contains(from));
            assert!(!twice, "{from:?} --{action:?}--> has two rows");
            let mut doc = json!({"id": "obj_1", "status": from.as_str()});
            assert_eq!(
                M::apply(&mut doc, *action).ok(),
                Some(*to),
                "{from:?} --{action:?}"
            );
            assert_eq!(doc["status"], json!(to.as_str()));
        }
    }
}

/// The refusal of `action` on an object in `from`; panics when the table
/// allows it.
#[cfg(test)]
pub fn refusal<M: StateMachine>(
    from: M::Status,
    action: M::Action,
) -> Refusal<M::Status, M::Action> {
    let mut doc = json!({"id": "obj_1", "status": from.as_str()});
    let refused = M::try_move(&doc, action).expect_err("the table should refuse this");
    assert!(M::apply(&mut doc, action).is_err());
    assert_eq!(
        doc["status"],
        json!(from.as_str()),
        "a refusal moves nothing"
    );
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    status_enum! {
        enum Light {
            Red = "red",
            Green = "green",
            Off = "off",
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Switch {
        Go,
        Stop,
        PowerDown,
    }

    struct Lights;

    impl StateMachine for Lights {
        type Status = Light;
        type Action = Switch;
        type Error = Refusal<Light, Switch>;
        const OBJECT: &'static str = "light";
        const TABLE: &'static [Row<Light, Switch>] = &[
            (&[Light::Red], Switch::Go, Light::Green),
            (&[Light::Green], Switch::Stop, Light::Red),
            (&[Light::Green], Switch::PowerDown, Light::Off),
            (&[Light::Red], Switch::PowerDown, Light::Off),
        ];

        fn refused(refusal: Refusal<Light, Switch>) -> Self::Error {
            refusal
        }
    }

    #[test]
    fn applies_rows_and_refuses_the_rest() {
        walk_table::<Lights>();
        let refused = refusal::<Lights>(Light::Off, Switch::PowerDown);
        assert_eq!(
            refused,
            Refusal {
                object: "light",
                id: "obj_1".into(),
                status: Some(Light::Off),
                action: Switch::PowerDown,
                allowed: vec![Light::Green, Light::Red],
            }
        );
        assert_eq!(refused.allowed_list(", "), "green, red");
        // A document without a known status is refused too.
        let refused = Lights::try_move(&json!({"status": "blue"}), Switch::Go).unwrap_err();
        assert_eq!((refused.status, refused.status_str()), (None, ""));
    }
}
