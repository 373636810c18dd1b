//! One folder (or file) per Stripe API area, each with its router and its
//! handlers, named after Stripe's operations.
pub(crate) mod billing;
pub mod catalog;
pub mod checkout;
pub(crate) mod customers;
pub(crate) mod events;
pub mod payments;
pub(crate) mod settlement;
pub(crate) mod webhook_endpoints;

use crate::core::registry::Registry;

/// Every object type the resources serve, each described by its own
/// module's `SPEC`: adding a resource adds its line here.
pub static REGISTRY: Registry = Registry::new(&[
    // Fixture types first: start-up errors list them in this order.
    &customers::SPEC,
    &catalog::products::SPEC,
    &catalog::prices::SPEC,
    &payments::payment_methods::SPEC,
    &customers::CASH_BALANCE_SPEC,
    &payments::setup_intents::SPEC,
    &payments::mandates::SPEC,
    &payments::payment_intents::SPEC,
    &payments::charges::SPEC,
    &payments::refunds::SPEC,
    &payments::balance_transactions::SPEC,
    &billing::subscriptions::SPEC,
    &billing::subscriptions::ITEM_SPEC,
    &billing::subscriptions::PLAN_SPEC,
    &billing::invoices::SPEC,
    &billing::invoices::LINE_SPEC,
    &billing::invoices::PAYMENT_SPEC,
    &billing::test_clocks::SPEC,
    &checkout::sessions::SPEC,
    &checkout::sessions::ITEM_SPEC,
    &events::SPEC,
    &webhook_endpoints::SPEC,
]);

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::REGISTRY;

    /// Types fields point at that stripe-twin does not serve yet: their
    /// fields stay null, so expanding them finds nothing.
    const NOT_SERVED: &[&str] = &[
        "account",
        "application",
        "payment_link",
        "payment_source",
        "review",
        "setup_attempt",
        "subscription_schedule",
        "tax_id",
        "balance_transaction_source",
    ];

    #[test]
    fn each_type_is_described_once() {
        let mut objects = HashSet::new();
        let mut urls = HashSet::new();
        for spec in REGISTRY.specs() {
            assert!(objects.insert(spec.object), "{} twice", spec.object);
            if let Some(url) = spec.list_url {
                assert!(urls.insert(url), "{url} lists two types");
            }
            assert_eq!(REGISTRY.get(spec.object).unwrap().object, spec.object);
        }
    }

    #[test]
    fn fields_point_at_known_types() {
        for spec in REGISTRY.specs() {
            for (path, kind) in spec.fields {
                if let Some(target) = kind.target() {
                    assert!(
                        REGISTRY.get(target).is_some() || NOT_SERVED.contains(&target),
                        "{}.{path} points at {target}, which is neither registered nor listed as not served",
                        spec.object
                    );
                }
            }
            for link in spec.fixture.unwrap_or_default() {
                let target = REGISTRY.get(link.object).expect("a registered type");
                assert!(
                    target.fixture.is_some(),
                    "{} links to {}",
                    spec.object,
                    link.object
                );
            }
        }
        for name in NOT_SERVED {
            assert!(
                REGISTRY.get(name).is_none(),
                "{name} is served now: drop it from NOT_SERVED"
            );
        }
    }

    #[test]
    fn ids_carry_the_prefix() {
        for spec in REGISTRY.specs().iter().filter(|s| !s.id_prefix.is_empty()) {
            let id = spec.new_id();
            assert!(id.starts_with(&format!("{}_", spec.id_prefix)), "{id}");
            assert_eq!(id.len(), spec.id_prefix.len() + 1 + spec.id_length);
        }
        assert_eq!(REGISTRY.display_name("setup_intent"), "setupintent");
        assert_eq!(REGISTRY.title("payment_intent"), "PaymentIntent");
        assert_eq!(
            REGISTRY.listed_at("/v1/checkout/sessions").unwrap().object,
            "checkout.session"
        );
    }
}
