//! stripe-twin's own bookkeeping on a stored document: what a handler needs
//! later but Stripe does not show. It lives under one hidden key, [`KEY`],
//! which `expand::strip_hidden` takes out of every answer and event (as it
//! does every `_`-prefixed key).
//!
//! Read it with [`Bookkeeping::of`], change it with [`update`]. Its field
//! names are part of the stored format: migration 0007 moved the former
//! top-level `_twin_<name>` keys to `_twin.<name>`, and the store filters
//! below name paths into it.
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The document key that holds a [`Bookkeeping`].
pub const KEY: &str = "_twin";

/// Store filter path: a subscription's price IDs ([`Bookkeeping::prices`]).
pub const PRICES_PATH: &str = "_twin.prices";
/// Store filter path: the start of a subscription's [`Bookkeeping::period`].
pub const PERIOD_START_PATH: &str = "_twin.period.start";
/// Store filter path: the end of a subscription's [`Bookkeeping::period`].
pub const PERIOD_END_PATH: &str = "_twin.period.end";

/// Everything stripe-twin keeps on a document besides what Stripe shows.
/// Each object type uses a few of the fields; unset ones are not stored.
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
#[serde(default)]
pub struct Bookkeeping {
    // PaymentIntents and SetupIntents.
    /// The token of the authorization page (a `redirect` record) the intent
    /// waits on in `requires_action`; it is forgotten when that attempt no
    /// longer applies, and a card paid after it counts as authenticated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// Where the authorization page sends the buyer back: confirm's
    /// `return_url`, or the Checkout page of the session paying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    /// The `mandate_data` acceptance given at confirmation, for the mandate
    /// made once the payment method is saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mandate_acceptance: Option<Value>,
    /// The Checkout Session the intent belongs to: it then moves only
    /// through that session, which completes when the intent succeeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_session: Option<String>,
    /// The intent's authorization page may show inside a frame (it is paid
    /// from an embedded Checkout page).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub framed: bool,

    // PaymentIntents.
    /// The invoice the PaymentIntent collects: its amount stays, it is not
    /// canceled directly, and its outcome settles the invoice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    /// `error_on_requires_action` for the one confirmation running: taken
    /// out again by the payment attempt.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_action: bool,

    // SetupIntents.
    /// The recurring terms a subscription trial's SetupIntent agrees to,
    /// shown on the Amazon Pay authorization page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Agreement>,
    /// The `single_use` parameter: the mandate made is a single-use one for
    /// this amount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single_use: Option<SingleUse>,

    // PaymentMethods.
    /// The test card number a card PaymentMethod was made from (its address
    /// checks follow it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// The test card's behaviour (`test_cards::parse_behavior` names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
    /// Radar's risk level for the test card, when not `normal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_level: Option<String>,
    /// Saved for later payments (a SetupIntent or `setup_future_usage`):
    /// cards that need authentication unless set up then pay off-session.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub set_up: bool,
    /// Detached, or used once without a customer: it may not be used again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub consumed: bool,

    // Checkout Sessions.
    /// The secret of the session's page (an embedded session's client
    /// secret ends with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_secret: Option<String>,
    /// The email the buyer entered, for `customer_details` and the page
    /// after a failed authorization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The customer the buyer's first submit created (shown as `customer`
    /// once the session completes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The session's current SetupIntent or PaymentIntent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The subscription a subscription-mode session created (shown once the
    /// session completes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// The `setup_intent_data` parameters, for the SetupIntent it makes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_intent_data: Option<Value>,
    /// The `payment_intent_data` parameters, for the PaymentIntent it makes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_intent_data: Option<Value>,
    /// The `subscription_data` parameters, for the subscription it makes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_data: Option<Value>,

    // Invoices.
    /// The PaymentIntent that collects the finalized invoice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<String>,
    /// The invoice's `invoice_payment` object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_payment: Option<String>,

    // Subscriptions.
    /// The price IDs of its items: what the list's `price` filter matches
    /// ([`PRICES_PATH`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<String>,
    /// Its items' current periods taken together: what the list's
    /// `current_period_*` filters match and where a period ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Proration lines not invoiced yet (in `lines::stored_line`'s shape),
    /// billed with the next invoice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_prorations: Vec<Value>,

    // Webhook endpoints.
    /// The endpoint's signing secret (shown only by its create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// What a subscription trial's SetupIntent agrees to charge later.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Agreement {
    pub amount: i64,
    pub currency: String,
    pub interval: String,
    pub interval_count: i64,
}

/// A SetupIntent's `single_use`: the one payment its mandate allows.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SingleUse {
    pub amount: i64,
    pub currency: String,
}

/// A subscription's earliest item period start and latest end.
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
#[serde(default)]
pub struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}

impl Bookkeeping {
    /// The document's bookkeeping; none (the default) when it has none or
    /// what it has does not parse.
    pub fn of(doc: &Value) -> Self {
        doc.get(KEY)
            .and_then(|value| Self::deserialize(value).ok())
            .unwrap_or_default()
    }

    /// Puts this bookkeeping in `doc`, replacing what it had; an empty one
    /// takes the key out.
    pub fn store(&self, doc: &mut Value) {
        if *self == Self::default() {
            if let Value::Object(map) = doc {
                map.remove(KEY);
            }
            return;
        }
        doc[KEY] = serde_json::to_value(self).expect("bookkeeping serializes");
    }
}

/// Changes the document's bookkeeping with `change`, which may hand back
/// something (a field it took out, say).
pub fn update<R>(doc: &mut Value, change: impl FnOnce(&mut Bookkeeping) -> R) -> R {
    let mut bookkeeping = Bookkeeping::of(doc);
    let result = change(&mut bookkeeping);
    bookkeeping.store(doc);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
        path.split('.').try_fold(doc, |value, key| value.get(key))
    }

    #[test]
    fn empty_fields_are_not_stored() {
        let mut doc = json!({"id": "seti_1"});
        update(&mut doc, |b| {
            b.return_url = Some("https://shop.example".into())
        });
        assert_eq!(
            doc,
            json!({"id": "seti_1", "_twin": {"return_url": "https://shop.example"}})
        );
        update(&mut doc, |b| b.return_url = None);
        assert_eq!(doc, json!({"id": "seti_1"}));
    }

    #[test]
    fn filter_paths_name_the_stored_fields() {
        let mut doc = json!({});
        update(&mut doc, |b| {
            b.prices = vec!["price_1".into()];
            b.period = Some(Period {
                start: Some(10),
                end: Some(20),
            });
        });
        assert_eq!(at(&doc, PRICES_PATH), Some(&json!(["price_1"])));
        assert_eq!(at(&doc, PERIOD_START_PATH), Some(&json!(10)));
        assert_eq!(at(&doc, PERIOD_END_PATH), Some(&json!(20)));
    }

    /// Migration 0007 moved `_twin_<name>` to `_twin.<name>`: every former
    /// key must be a field here under the same name, and nothing else.
    #[test]
    fn field_names_are_the_former_keys() {
        let text = Some("x".to_owned());
        let data = Some(json!({}));
        let every = Bookkeeping {
            redirect: text.clone(),
            return_url: text.clone(),
            mandate_acceptance: data.clone(),
            checkout_session: text.clone(),
            framed: true,
            invoice: text.clone(),
            no_action: true,
            agreement: Some(Agreement {
                amount: 1,
                currency: "usd".into(),
                interval: "month".into(),
                interval_count: 1,
            }),
            single_use: Some(SingleUse {
                amount: 1,
                currency: "usd".into(),
            }),
            card: text.clone(),
            behavior: text.clone(),
            risk_level: text.clone(),
            set_up: true,
            consumed: true,
            page_secret: text.clone(),
            email: text.clone(),
            customer: text.clone(),
            intent: text.clone(),
            subscription: text.clone(),
            setup_intent_data: data.clone(),
            payment_intent_data: data.clone(),
            subscription_data: data.clone(),
            payment_intent: text.clone(),
            invoice_payment: text.clone(),
            prices: vec!["price_1".into()],
            period: Some(Period::default()),
            pending_prorations: vec![json!({})],
            secret: text,
        };
        let stored = serde_json::to_value(&every).unwrap();
        let names: Vec<&str> = stored
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let former = [
            "agreement",
            "behavior",
            "card",
            "checkout_session",
            "consumed",
            "customer",
            "email",
            "framed",
            "intent",
            "invoice",
            "invoice_payment",
            "mandate_acceptance",
            "no_action",
            "page_secret",
            "payment_intent",
            "payment_intent_data",
            "pending_prorations",
            "period",
            "prices",
            "redirect",
            "return_url",
            "risk_level",
            "secret",
            "set_up",
            "setup_intent_data",
            "single_use",
            "subscription",
            "subscription_data",
        ];
        assert_eq!(names, former);
        assert_eq!(Bookkeeping::of(&json!({ KEY: stored })), every);
    }

    #[test]
    fn missing_or_invalid_bookkeeping_is_empty() {
        assert_eq!(Bookkeeping::of(&json!({})), Bookkeeping::default());
        assert_eq!(
            Bookkeeping::of(&json!({"_twin": "not an object"})),
            Bookkeeping::default()
        );
        let old = json!({"_twin": {"set_up": true, "period": {"start": null, "end": 5}}});
        let read = Bookkeeping::of(&old);
        assert!(read.set_up);
        assert_eq!(
            read.period,
            Some(Period {
                start: None,
                end: Some(5)
            })
        );
    }
}
