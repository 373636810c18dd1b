//! Stripe's test-mode card data: the ready-made PaymentMethod IDs
//! (`pm_card_visa`), tokens (`tok_visa`) and raw test numbers, each with the
//! behaviour Stripe gives it. The cards themselves are in [`catalog`], a
//! mirror of Stripe's testing page.

mod catalog;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::core::bookkeeping::Bookkeeping;
use crate::http::error::{ApiError, ErrorType};

/// What happens when a card is attached, set up or charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Attaches, sets up and charges successfully.
    Succeeds,
    /// The issuer declines it when attached, set up or charged.
    Declines(Decline),
    /// Attaches (no issuer check refuses it), then fails when set up or
    /// charged: Radar blocks it, or its 3-D Secure lookup errors.
    FailsWhenUsed(Decline),
    /// Attaches and sets up, then every charge declines (renewal failures).
    ChargesFail(Decline),
    /// Needs the customer to authenticate (3-D Secure), as `Auth` says.
    Authenticates(Auth),
}

/// When a 3-D Secure card needs its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Every setup and payment, off-session ones included (these fail).
    Always,
    /// Setups and on-session payments; off-session payments succeed once
    /// the card was set up for them (4000 0025 0000 3155).
    UnlessSetUp,
    /// Setups and on-session payments; off-session payments always
    /// succeed, as if it had been set up (4000 0038 0000 0446).
    OnSessionOnly,
    /// Like `Always`, and once authenticated the payment is declined.
    ThenDeclines(Decline),
}

/// Stripe's card errors, by the code that names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decline {
    Generic,
    InsufficientFunds,
    LostCard,
    StolenCard,
    ExpiredCard,
    IncorrectCvc,
    IncorrectZip,
    ProcessingError,
    VelocityExceeded,
    /// Blocked by Radar (risk level `highest`).
    Fraudulent,
}

const DECLINES: &[Decline] = &[
    Decline::Generic,
    Decline::InsufficientFunds,
    Decline::LostCard,
    Decline::StolenCard,
    Decline::ExpiredCard,
    Decline::IncorrectCvc,
    Decline::IncorrectZip,
    Decline::ProcessingError,
    Decline::VelocityExceeded,
    Decline::Fraudulent,
];

impl Decline {
    /// The decline code (for `card_declined`) or the error code otherwise:
    /// what names this decline in stored documents.
    pub fn key(self) -> &'static str {
        match self {
            Decline::Generic => "generic_decline",
            Decline::InsufficientFunds => "insufficient_funds",
            Decline::LostCard => "lost_card",
            Decline::StolenCard => "stolen_card",
            Decline::ExpiredCard => "expired_card",
            Decline::IncorrectCvc => "incorrect_cvc",
            Decline::IncorrectZip => "incorrect_zip",
            Decline::ProcessingError => "processing_error",
            Decline::VelocityExceeded => "card_velocity_exceeded",
            Decline::Fraudulent => "fraudulent",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        DECLINES.iter().copied().find(|d| d.key() == key)
    }

    /// `card_declined` carries a decline code; the others are their own code.
    fn code(self) -> &'static str {
        match self {
            Decline::ExpiredCard => "expired_card",
            Decline::IncorrectCvc => "incorrect_cvc",
            Decline::IncorrectZip => "incorrect_zip",
            Decline::ProcessingError => "processing_error",
            _ => "card_declined",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Decline::InsufficientFunds => "Your card has insufficient funds.",
            Decline::ExpiredCard => "Your card has expired.",
            Decline::IncorrectCvc => "Your card's security code is incorrect.",
            Decline::IncorrectZip => "Your card's zip code failed validation.",
            Decline::ProcessingError => {
                "An error occurred while processing your card. Try again in a little bit."
            }
            Decline::VelocityExceeded => {
                "Your card was declined for making repeated attempts too frequently or exceeding its amount limit."
            }
            _ => "Your card was declined.",
        }
    }

    fn advice_code(self) -> &'static str {
        match self {
            Decline::LostCard | Decline::StolenCard | Decline::Fraudulent => "do_not_try_again",
            Decline::ExpiredCard | Decline::IncorrectCvc | Decline::IncorrectZip => {
                "confirm_card_data"
            }
            _ => "try_again_later",
        }
    }

    /// Stripe's 402 card_error for this decline.
    pub fn error(self) -> ApiError {
        let code = self.code();
        let error = ApiError::invalid(self.message())
            .with_status(axum::http::StatusCode::PAYMENT_REQUIRED)
            .with_type(ErrorType::Card)
            .with_code(code)
            .with_extra("advice_code", json!(self.advice_code()));
        if code == "card_declined" {
            error.with_extra("decline_code", json!(self.key()))
        } else {
            error
        }
    }
}

/// What a verification check answers when its field was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Pass,
    Fail,
    Unavailable,
}

impl Check {
    fn as_str(self) -> &'static str {
        match self {
            Check::Pass => "pass",
            Check::Fail => "fail",
            Check::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    pub number: &'static str,
    pub brand: &'static str,
    pub funding: &'static str,
    pub country: &'static str,
    pub behavior: Behavior,
    /// Radar's risk level for its payments: normal, elevated or highest.
    pub risk_level: &'static str,
    pub cvc_check: Check,
    pub line1_check: Check,
    pub postal_code_check: Check,
    /// The local network it is co-branded with (cartes_bancaires, eftpos_au).
    pub co_brand: Option<&'static str>,
    /// Its names after `pm_card_` and `tok_` (Stripe gives both the same).
    names: &'static [&'static str],
    /// Only a token has these names (`tok_visa_chargeCustomerFailLostCard`).
    token_only: bool,
}

impl TestCard {
    /// A US credit card that succeeds: what most test numbers are.
    const fn new(
        number: &'static str,
        brand: &'static str,
        names: &'static [&'static str],
    ) -> Self {
        Self {
            number,
            brand,
            funding: "credit",
            country: "US",
            behavior: Behavior::Succeeds,
            risk_level: "normal",
            cvc_check: Check::Pass,
            line1_check: Check::Pass,
            postal_code_check: Check::Pass,
            co_brand: None,
            names,
            token_only: false,
        }
    }

    const fn funding(mut self, funding: &'static str) -> Self {
        self.funding = funding;
        self
    }

    const fn country(mut self, country: &'static str) -> Self {
        self.country = country;
        self
    }

    const fn behaves(mut self, behavior: Behavior) -> Self {
        self.behavior = behavior;
        self
    }

    const fn risk(mut self, level: &'static str) -> Self {
        self.risk_level = level;
        self
    }

    const fn checks(mut self, cvc: Check, line1: Check, postal_code: Check) -> Self {
        self.cvc_check = cvc;
        self.line1_check = line1;
        self.postal_code_check = postal_code;
        self
    }

    const fn co_branded(mut self, network: &'static str) -> Self {
        self.co_brand = Some(network);
        self
    }

    const fn token_only(mut self) -> Self {
        self.token_only = true;
        self
    }
}

/// `pm_card_visa` and friends.
pub fn by_payment_method_id(id: &str) -> Option<TestCard> {
    let name = id.strip_prefix("pm_card_")?;
    catalog::CARDS
        .iter()
        .find(|card| !card.token_only && card.names.contains(&name))
        .copied()
}

/// `tok_visa` and friends.
pub fn by_token(token: &str) -> Option<TestCard> {
    let name = token.strip_prefix("tok_")?;
    catalog::CARDS
        .iter()
        .find(|card| card.names.contains(&name))
        .copied()
}

fn card_error(message: &str, code: &'static str, param: &str) -> ApiError {
    ApiError::invalid(message)
        .with_status(axum::http::StatusCode::PAYMENT_REQUIRED)
        .with_type(ErrorType::Card)
        .with_code(code)
        .with_param(param)
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A raw card number: a test number, or Stripe's error for anything else.
pub fn by_number(raw: &str, param: &str) -> Result<TestCard, ApiError> {
    let digits: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !(12..=19).contains(&digits.len())
        || !luhn_valid(&digits)
    {
        return Err(card_error(
            "Your card number is incorrect.",
            "incorrect_number",
            param,
        ));
    }
    // The first card with a number is the one its number stands for.
    if let Some(card) = catalog::CARDS.iter().find(|c| c.number == digits) {
        return Ok(*card);
    }
    Err(card_error(
        "Your card was declined. Your request was in test mode, but used a non test (live) card. For a list of valid test cards, visit: https://stripe.com/docs/testing.",
        "card_declined",
        param,
    )
    .with_extra("decline_code", json!("test_mode_live_card")))
}

/// Validates an expiry date the way Stripe does for test cards.
/// `name` gives the full parameter name of `exp_month` / `exp_year`.
pub fn check_expiry(
    month: i64,
    year: i64,
    now_year: i64,
    name: &dyn Fn(&str) -> String,
) -> Result<(), ApiError> {
    if !(1..=12).contains(&month) {
        return Err(card_error(
            "Your card's expiration month is invalid.",
            "invalid_expiry_month",
            &name("exp_month"),
        ));
    }
    let year = if year < 100 { 2000 + year } else { year };
    if year < now_year || year > now_year + 50 {
        return Err(card_error(
            "Your card's expiration year is invalid.",
            "invalid_expiry_year",
            &name("exp_year"),
        ));
    }
    Ok(())
}

impl TestCard {
    pub fn last4(&self) -> &'static str {
        &self.number[self.number.len() - 4..]
    }

    /// Stable per account and number, as Stripe's fingerprints are.
    pub fn fingerprint(&self, account: &str) -> String {
        let digest = Sha256::digest(format!("{account}:{}", self.number).as_bytes());
        crate::ids::base62_of(&digest[..12], 16)
    }

    /// The `card` hash of a PaymentMethod. Address checks stay null until
    /// billing details name an address ([`check_address`]).
    pub fn details(&self, account: &str, exp_month: i64, exp_year: i64, cvc_given: bool) -> Value {
        let networks: Vec<&str> = self.co_brand.into_iter().chain([self.brand]).collect();
        json!({
            "brand": self.brand,
            "checks": {
                "address_line1_check": null,
                "address_postal_code_check": null,
                "cvc_check": if cvc_given { self.cvc_check.as_str() } else { "unchecked" },
            },
            "country": self.country,
            "display_brand": self.co_brand.unwrap_or(self.brand),
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": self.fingerprint(account),
            "funding": self.funding,
            "generated_from": null,
            "last4": self.last4(),
            "networks": {"available": networks, "preferred": null},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": true},
            "wallet": null,
        })
    }

    /// How a PaymentMethod document records what this card does.
    pub fn behavior_name(&self) -> String {
        match self.behavior {
            Behavior::Succeeds => "succeeds".to_owned(),
            Behavior::Declines(d) => format!("declines:{}", d.key()),
            Behavior::FailsWhenUsed(d) => format!("fails_when_used:{}", d.key()),
            Behavior::ChargesFail(d) => format!("charges_fail:{}", d.key()),
            Behavior::Authenticates(Auth::Always) => "authenticates:always".to_owned(),
            Behavior::Authenticates(Auth::UnlessSetUp) => "authenticates:unless_set_up".to_owned(),
            Behavior::Authenticates(Auth::OnSessionOnly) => {
                "authenticates:on_session_only".to_owned()
            }
            Behavior::Authenticates(Auth::ThenDeclines(d)) => {
                format!("authenticates:then_declines:{}", d.key())
            }
        }
    }
}

/// Reads a stored behaviour (names written before the catalog grew
/// included).
fn parse_behavior(name: &str) -> Behavior {
    let decline = |key: &str| Decline::from_key(key).unwrap_or(Decline::Generic);
    match name.split_once(':') {
        Some(("declines", key)) => Behavior::Declines(decline(key)),
        Some(("fails_when_used", key)) => Behavior::FailsWhenUsed(decline(key)),
        Some(("charges_fail", key)) => Behavior::ChargesFail(decline(key)),
        Some(("authenticates", "always")) => Behavior::Authenticates(Auth::Always),
        Some(("authenticates", "unless_set_up")) => Behavior::Authenticates(Auth::UnlessSetUp),
        Some(("authenticates", "on_session_only")) => Behavior::Authenticates(Auth::OnSessionOnly),
        Some(("authenticates", rest)) => match rest.strip_prefix("then_declines:") {
            Some(key) => Behavior::Authenticates(Auth::ThenDeclines(decline(key))),
            None => Behavior::Authenticates(Auth::Always),
        },
        _ => match name {
            "declines" => Behavior::Declines(Decline::Generic),
            "insufficient_funds" => Behavior::Declines(Decline::InsufficientFunds),
            "charges_fail" => Behavior::ChargesFail(Decline::Generic),
            "requires_authentication" => Behavior::Authenticates(Auth::Always),
            _ => Behavior::Succeeds,
        },
    }
}

/// The behaviour of a card PaymentMethod: its test card's, except that a
/// failed CVC or postal code check declines it (Radar's default rules).
pub fn behavior_of(payment_method: &Value) -> Behavior {
    let kept = Bookkeeping::of(payment_method);
    let behavior = parse_behavior(kept.behavior.as_deref().unwrap_or_default());
    let checks = &payment_method["card"]["checks"];
    if !matches!(behavior, Behavior::Declines(_)) {
        if checks["cvc_check"] == "fail" {
            return Behavior::Declines(Decline::IncorrectCvc);
        }
        if checks["address_postal_code_check"] == "fail" {
            return Behavior::Declines(Decline::IncorrectZip);
        }
    }
    behavior
}

/// Radar's risk level for payments with this PaymentMethod.
pub fn risk_level_of(payment_method: &Value) -> &'static str {
    match Bookkeeping::of(payment_method).risk_level.as_deref() {
        Some("elevated") => "elevated",
        Some("highest") => "highest",
        _ => "normal",
    }
}

/// Sets a card PaymentMethod's address checks from the address its billing
/// details give: a check runs only on a field that was sent.
pub fn check_address(payment_method: &mut Value) {
    let Some(card) = Bookkeeping::of(payment_method)
        .card
        .and_then(|n| catalog::CARDS.iter().find(|c| c.number == n))
    else {
        return;
    };
    let address = payment_method["billing_details"]["address"].clone();
    let checks = &mut payment_method["card"]["checks"];
    for (field, key, check) in [
        ("line1", "address_line1_check", card.line1_check),
        (
            "postal_code",
            "address_postal_code_check",
            card.postal_code_check,
        ),
    ] {
        checks[key] = if address[field].is_string() {
            json!(check.as_str())
        } else {
            Value::Null
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_numbers_and_refusals() {
        assert_eq!(
            by_number("4242 4242 4242 4242", "card[number]")
                .unwrap()
                .brand,
            "visa"
        );
        assert_eq!(
            by_number("4000000000000341", "n").unwrap().behavior,
            Behavior::ChargesFail(Decline::Generic)
        );
        let wrong = by_number("4242424242424241", "card[number]")
            .unwrap_err()
            .body();
        assert_eq!(wrong["error"]["code"], "incorrect_number");
        // A Luhn-valid number that is not a test card: a real card.
        let live = by_number("4111111111111111", "card[number]")
            .unwrap_err()
            .body();
        assert_eq!(live["error"]["decline_code"], "test_mode_live_card");
        assert_eq!(
            by_payment_method_id("pm_card_chargeDeclined")
                .unwrap()
                .number,
            "4000000000000002"
        );
        assert_eq!(by_token("tok_mastercard").unwrap().last4(), "4444");
        assert!(by_payment_method_id("pm_card_unknown").is_none());
        let name = |field: &str| format!("card[{field}]");
        let month = check_expiry(13, 2030, 2026, &name).unwrap_err().body();
        assert_eq!(month["error"]["param"], "card[exp_month]");
        assert!(check_expiry(12, 2020, 2026, &name).is_err());
        assert!(check_expiry(12, 45, 2026, &name).is_ok());
    }

    #[test]
    fn the_catalog_is_consistent() {
        for card in catalog::CARDS {
            assert!(luhn_valid(card.number), "{} fails Luhn", card.number);
            let name = card.behavior_name();
            assert_eq!(parse_behavior(&name), card.behavior, "{name}");
        }
        // Each name stands for one card.
        let mut names: Vec<(&str, bool)> = catalog::CARDS
            .iter()
            .flat_map(|c| c.names.iter().map(move |n| (*n, c.token_only)))
            .collect();
        names.sort();
        let before = names.len();
        names.dedup_by_key(|(n, _)| *n);
        assert_eq!(before, names.len(), "a name is used twice");
        assert!(by_payment_method_id("pm_card_visa_chargeCustomerFailLostCard").is_none());
        assert_eq!(
            by_token("tok_visa_chargeCustomerFailLostCard")
                .unwrap()
                .behavior,
            Behavior::ChargesFail(Decline::LostCard)
        );
    }

    #[test]
    fn legacy_behavior_names_still_read() {
        assert_eq!(
            parse_behavior("insufficient_funds"),
            Behavior::Declines(Decline::InsufficientFunds)
        );
        assert_eq!(
            parse_behavior("requires_authentication"),
            Behavior::Authenticates(Auth::Always)
        );
        assert_eq!(parse_behavior(""), Behavior::Succeeds);
    }
}

/// What refunding a charge of a test card does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundBehavior {
    /// Succeeds at once.
    Succeeds,
    /// Pending, then succeeded (4000 0000 0000 7726, `pm_card_pendingRefund`).
    Pending,
    /// Succeeded, then failed (4000 0000 0000 5126, `pm_card_refundFail`).
    FailsLater,
}

/// The refund behaviour of the card a charge's `payment_method_details.card`
/// describes: the two refund test numbers, told apart by their last digits
/// (no other test number ends in them).
pub fn refund_behavior(card: &Value) -> RefundBehavior {
    match (card["brand"].as_str(), card["last4"].as_str()) {
        (Some("visa"), Some("7726")) => RefundBehavior::Pending,
        (Some("visa"), Some("5126")) => RefundBehavior::FailsLater,
        _ => RefundBehavior::Succeeds,
    }
}
