//! Amounts in a currency's smallest unit, computed without overflow and
//! held within Stripe's bound, so a huge quantity or price is a 400 before
//! anything is written, never a wrapped (negative) total.

use crate::http::error::{ApiError, ApiResult};

/// Stripe's largest amount: eight digits in the smallest unit.
pub const MAX_AMOUNT: i64 = 99_999_999;

/// Stripe's refusal of an amount over [`MAX_AMOUNT`].
pub fn too_large(param: &str, currency: &str) -> ApiError {
    let message = if currency.eq_ignore_ascii_case("usd") {
        "Amount must be no more than $999,999.99".to_owned()
    } else {
        format!("Amount must be no more than {MAX_AMOUNT} in the smallest unit of {currency}")
    };
    ApiError::invalid_param(param, message).with_code("amount_too_large")
}

/// Keeps an amount (a credit may be negative) within Stripe's bound.
pub fn bounded(amount: Option<i64>, param: &str, currency: &str) -> ApiResult<i64> {
    amount
        .filter(|a| a.abs() <= MAX_AMOUNT)
        .ok_or_else(|| too_large(param, currency))
}

/// `unit × quantity`, refused when out of bounds.
pub fn times(unit: i64, quantity: i64, param: &str, currency: &str) -> ApiResult<i64> {
    bounded(unit.checked_mul(quantity), param, currency)
}

/// The sum of amounts, refused when out of bounds.
pub fn sum(amounts: impl IntoIterator<Item = i64>, param: &str, currency: &str) -> ApiResult<i64> {
    let total = amounts
        .into_iter()
        .try_fold(0i64, |total, amount| total.checked_add(amount));
    bounded(total, param, currency)
}

/// `amount × part / whole`, rounded half away from zero, without overflow
/// (a proration: the share of a period left).
pub fn prorate(amount: i64, part: i64, whole: i64) -> i64 {
    if whole == 0 {
        return 0;
    }
    let scaled = i128::from(amount) * i128::from(part);
    let whole = i128::from(whole);
    let half = whole.abs() / 2;
    let rounded = if (scaled < 0) == (whole < 0) {
        (scaled.abs() + half) / whole.abs()
    } else {
        -((scaled.abs() + half) / whole.abs())
    };
    i64::try_from(rounded).unwrap_or(if rounded < 0 { i64::MIN } else { i64::MAX })
}

/// An amount as Stripe's messages write it: `$93.90`, `-€5.00`.
pub fn display(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let amount = amount.unsigned_abs();
    let symbol = match currency {
        "usd" => "$",
        "eur" => "€",
        "gbp" => "£",
        _ => "",
    };
    format!("{sign}{symbol}{}.{:02}", amount / 100, amount % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_is_refused_not_wrapped() {
        assert!(times(1500, 9_223_372_036_854_775_807, "q", "usd").is_err());
        assert!(times(1500, 6_148_914_691_236_517_206, "q", "usd").is_err());
        assert_eq!(times(1500, 3, "q", "usd").unwrap(), 4500);
        assert!(times(MAX_AMOUNT, 2, "q", "eur").is_err());
        assert!(sum([i64::MAX, 1], "a", "usd").is_err());
        assert_eq!(sum([-3000, 1000], "a", "usd").unwrap(), -2000);
        let err = times(100, MAX_AMOUNT, "items[0][quantity]", "usd").unwrap_err();
        assert_eq!(err.body()["error"]["code"], "amount_too_large");
        assert_eq!(err.body()["error"]["param"], "items[0][quantity]");
    }

    #[test]
    fn proration_rounds_like_the_float_version_without_overflow() {
        assert_eq!(prorate(1500, 15, 30), 750);
        assert_eq!(prorate(1000, 1, 3), 333);
        assert_eq!(prorate(1000, 2, 3), 667);
        assert_eq!(prorate(-1000, 2, 3), -667);
        assert_eq!(prorate(MAX_AMOUNT, i64::MAX, i64::MAX), MAX_AMOUNT);
        assert_eq!(prorate(5, 1, 0), 0);
    }
}
