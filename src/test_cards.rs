//! Stripe's test-mode card data: the ready-made PaymentMethod IDs
//! (`pm_card_visa`), tokens (`tok_visa`) and raw test numbers, each with the
//! behaviour Stripe gives it.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Sets up and charges successfully.
    Succeeds,
    /// Declines when attached, set up or charged.
    Declines(Decline),
    /// Attaches and sets up, then every charge declines (renewal failures).
    ChargesFail,
    /// Needs the customer to authenticate (3-D Secure) when set up.
    RequiresAuthentication,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decline {
    Generic,
    InsufficientFunds,
}

impl Decline {
    pub fn decline_code(self) -> &'static str {
        match self {
            Decline::Generic => "generic_decline",
            Decline::InsufficientFunds => "insufficient_funds",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Decline::Generic => "Your card was declined.",
            Decline::InsufficientFunds => "Your card has insufficient funds.",
        }
    }

    /// Stripe's 402 card_error for this decline.
    pub fn error(self) -> ApiError {
        ApiError::invalid(self.message())
            .with_status(axum::http::StatusCode::PAYMENT_REQUIRED)
            .with_type(ErrorType::Card)
            .with_code("card_declined")
            .with_extra("decline_code", json!(self.decline_code()))
            .with_extra(
                "advice_code",
                json!(match self {
                    Decline::Generic => "try_again_later",
                    Decline::InsufficientFunds => "try_again_later",
                }),
            )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    pub number: &'static str,
    pub brand: &'static str,
    pub funding: &'static str,
    pub country: &'static str,
    pub behavior: Behavior,
}

const CARDS: &[(&str, TestCard)] = &[
    (
        "visa",
        TestCard {
            number: "4242424242424242",
            brand: "visa",
            funding: "credit",
            country: "US",
            behavior: Behavior::Succeeds,
        },
    ),
    (
        "visa_debit",
        TestCard {
            number: "4000056655665556",
            brand: "visa",
            funding: "debit",
            country: "US",
            behavior: Behavior::Succeeds,
        },
    ),
    (
        "mastercard",
        TestCard {
            number: "5555555555554444",
            brand: "mastercard",
            funding: "credit",
            country: "US",
            behavior: Behavior::Succeeds,
        },
    ),
    (
        "amex",
        TestCard {
            number: "378282246310005",
            brand: "amex",
            funding: "credit",
            country: "US",
            behavior: Behavior::Succeeds,
        },
    ),
    (
        "chargeDeclined",
        TestCard {
            number: "4000000000000002",
            brand: "visa",
            funding: "credit",
            country: "US",
            behavior: Behavior::Declines(Decline::Generic),
        },
    ),
    (
        "chargeDeclinedInsufficientFunds",
        TestCard {
            number: "4000000000009995",
            brand: "visa",
            funding: "credit",
            country: "US",
            behavior: Behavior::Declines(Decline::InsufficientFunds),
        },
    ),
    (
        "chargeCustomerFail",
        TestCard {
            number: "4000000000000341",
            brand: "visa",
            funding: "credit",
            country: "US",
            behavior: Behavior::ChargesFail,
        },
    ),
    (
        "authenticationRequired",
        TestCard {
            number: "4000002500003155",
            brand: "visa",
            funding: "credit",
            country: "US",
            behavior: Behavior::RequiresAuthentication,
        },
    ),
];

/// `pm_card_visa` and friends.
pub fn by_payment_method_id(id: &str) -> Option<TestCard> {
    let name = id.strip_prefix("pm_card_")?;
    CARDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, card)| *card)
}

/// `tok_visa` and friends.
pub fn by_token(token: &str) -> Option<TestCard> {
    let name = token.strip_prefix("tok_")?;
    CARDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, card)| *card)
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
    if let Some((_, card)) = CARDS.iter().find(|(_, c)| c.number == digits) {
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
pub fn check_expiry(month: i64, year: i64, name: &dyn Fn(&str) -> String) -> Result<(), ApiError> {
    if !(1..=12).contains(&month) {
        return Err(card_error(
            "Your card's expiration month is invalid.",
            "invalid_expiry_month",
            &name("exp_month"),
        ));
    }
    let year = if year < 100 { 2000 + year } else { year };
    let now_year = crate::ids::current_year();
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

    /// The `card` hash of a PaymentMethod.
    pub fn details(&self, account: &str, exp_month: i64, exp_year: i64, cvc_given: bool) -> Value {
        json!({
            "brand": self.brand,
            "checks": {
                "address_line1_check": null,
                "address_postal_code_check": null,
                "cvc_check": if cvc_given { "pass" } else { "unchecked" },
            },
            "country": self.country,
            "display_brand": self.brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": self.fingerprint(account),
            "funding": self.funding,
            "generated_from": null,
            "last4": self.last4(),
            "networks": {"available": [self.brand], "preferred": null},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": true},
            "wallet": null,
        })
    }

    pub fn behavior_name(&self) -> &'static str {
        match self.behavior {
            Behavior::Succeeds => "succeeds",
            Behavior::Declines(Decline::Generic) => "declines",
            Behavior::Declines(Decline::InsufficientFunds) => "insufficient_funds",
            Behavior::ChargesFail => "charges_fail",
            Behavior::RequiresAuthentication => "requires_authentication",
        }
    }
}

/// The behaviour stored on a card PaymentMethod (`_twin_behavior`).
pub fn behavior_of(payment_method: &Value) -> Behavior {
    match payment_method["_twin_behavior"].as_str() {
        Some("declines") => Behavior::Declines(Decline::Generic),
        Some("insufficient_funds") => Behavior::Declines(Decline::InsufficientFunds),
        Some("charges_fail") => Behavior::ChargesFail,
        Some("requires_authentication") => Behavior::RequiresAuthentication,
        _ => Behavior::Succeeds,
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
            Behavior::ChargesFail
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
        let month = check_expiry(13, 2030, &name).unwrap_err().body();
        assert_eq!(month["error"]["param"], "card[exp_month]");
        assert!(check_expiry(12, 2020, &name).is_err());
        assert!(check_expiry(12, 45, &name).is_ok());
    }
}
