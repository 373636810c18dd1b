//! A price's document and the parameters that describe its amount,
//! currency and recurrence, shared by `/v1/prices` and a product's
//! `default_price_data`; loading a price by id. A leaf of the catalog: it
//! knows neither the products nor the prices API, so that products and
//! prices need not import each other.

use serde_json::{Value, json};

use crate::core::registry::{FixtureLink, ObjectSpec, to};
use crate::http::api::Ctx;
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::params::Params;
use crate::store::Record;

/// What stripe-twin knows about prices (served by `prices`).
pub const SPEC: ObjectSpec = ObjectSpec::new("price", "price")
    .list_url("/v1/prices")
    .fields(&[("product", to("product"))])
    .fixture(&[FixtureLink {
        field: "product",
        object: "product",
        optional: false,
        back: None,
    }]);

/// The currencies Stripe's "Invalid currency" error lists, in its order.
pub const SUPPORTED_CURRENCIES: &[&str] = &[
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
    "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
    "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
    "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
    "hrk", "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr",
    "kmf", "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga",
    "mkd", "mmk", "mnt", "mop", "mro", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn",
    "nio", "nok", "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar",
    "ron", "rsd", "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sll", "sos",
    "srd", "std", "szl", "thb", "tjs", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx",
    "uyu", "uzs", "vnd", "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw", "usdc",
    "ghs", "eek", "lvl", "svc", "vef", "ltl",
];

/// The largest unit amount Stripe takes: eight digits (999,999.99 USD).
pub const MAX_UNIT_AMOUNT: i64 = 99_999_999;
/// The store's record type for inline prices (lists of "price" skip them).
pub const INLINE_PRICE_RECORD: &str = "inline_price";
/// At most 12 decimal places in `unit_amount_decimal`.
pub(super) const MAX_DECIMAL_PLACES: usize = 12;
pub(super) const TAX_BEHAVIORS: &[&str] = &["exclusive", "inclusive", "unspecified"];
pub(super) const INTERVALS: &[&str] = &["day", "week", "month", "year"];

/// Lowercases and checks a currency code; Stripe's error on param `param`
/// when unsupported.
pub fn check_currency(param: &str, currency: &str) -> ApiResult<String> {
    let lower = currency.to_ascii_lowercase();
    if SUPPORTED_CURRENCIES.contains(&lower.as_str()) {
        return Ok(lower);
    }
    Err(ApiError::invalid_param(
        param,
        format!(
            "Invalid currency: {lower}. Stripe currently supports these currencies: {}",
            SUPPORTED_CURRENCIES.join(", ")
        ),
    ))
}

/// Loads a price of the caller's account; a missing one is
/// `named.missing("price", id)`. Inline prices (made from `price_data`)
/// load too; the returned record says `object: "price"` for both.
pub async fn load_price(ctx: &Ctx, id: &str, named: Named<'_>) -> ApiResult<Record> {
    let mut record = load_price_record(ctx, id, named).await?;
    record.object = "price".to_owned();
    Ok(record)
}

/// A price a new subscription item or line item may use: it must be active.
pub async fn load_active_price(ctx: &Ctx, id: &str, param: &str) -> ApiResult<Record> {
    let record = load_price(ctx, id, Named::InParam(param)).await?;
    if record.data["active"] == json!(false) {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "The price specified ({id}) is inactive. This field only accepts active prices."
            ),
        ));
    }
    Ok(record)
}

/// The stored record, as stored (for writing it back).
pub(super) async fn load_price_record(ctx: &Ctx, id: &str, named: Named<'_>) -> ApiResult<Record> {
    match ctx.get(id).await? {
        Some(record)
            if (record.object == "price" || record.object == INLINE_PRICE_RECORD)
                && !record.deleted =>
        {
            Ok(record)
        }
        _ => Err(named.missing("price", id)),
    }
}

/// A product's `default_price_data`: the price document (active, not
/// inline) for the product `product_id` being created.
pub(crate) fn default_price_from_data(
    mut data: Params,
    product_id: &str,
    now: i64,
) -> ApiResult<Value> {
    let currency_param = data.name("currency");
    let amount_param = data.name("unit_amount");
    let currency = data.required_string("currency")?;
    let amount = take_amount(&mut data)?;
    let recurring = take_recurring(&mut data, false)?;
    let tax_behavior = data.enum_value("tax_behavior", TAX_BEHAVIORS)?;
    data.finish()?;
    let currency = check_currency(&currency_param, &currency)?;
    let (unit_amount, unit_amount_decimal) =
        amount.ok_or_else(|| ApiError::missing_param(&amount_param))?;
    let mut doc = new_price_document(product_id, &currency, now);
    doc["unit_amount"] = json!(unit_amount);
    doc["unit_amount_decimal"] = json!(unit_amount_decimal);
    set_recurring(&mut doc, recurring);
    if let Some(behavior) = tax_behavior {
        doc["tax_behavior"] = json!(behavior);
    }
    Ok(doc)
}

pub(super) fn new_price_document(product: &str, currency: &str, now: i64) -> Value {
    json!({
        "id": SPEC.new_id(),
        "object": "price",
        "active": true,
        "billing_scheme": "per_unit",
        "created": now,
        "currency": currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": null,
        "metadata": {},
        "nickname": null,
        "product": product,
        "recurring": null,
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": "one_time",
        "unit_amount": null,
        "unit_amount_decimal": null,
    })
}

pub(super) fn set_recurring(doc: &mut Value, recurring: Option<Value>) {
    if let Some(recurring) = recurring {
        doc["recurring"] = recurring;
        doc["type"] = json!("recurring");
    }
}

pub(super) fn exclusive(first: &str, second: &str) -> ApiError {
    ApiError::invalid(format!(
        "You may only specify one of these parameters: {first}, {second}."
    ))
    .with_code("parameters_exclusive")
    .with_param(first)
}

pub(super) fn too_small(param: &str) -> ApiError {
    ApiError::invalid_param(param, "This value must be greater than or equal to 0.")
}

pub(super) fn too_large(param: &str) -> ApiError {
    ApiError::invalid_param(
        param,
        format!("This value must be less than or equal to {MAX_UNIT_AMOUNT}."),
    )
}

/// `unit_amount` or `unit_amount_decimal` (never both): the price's
/// `(unit_amount, unit_amount_decimal)`, or None when neither was sent.
pub(super) fn take_amount(params: &mut Params) -> ApiResult<Option<(Option<i64>, String)>> {
    let amount_param = params.name("unit_amount");
    let decimal_param = params.name("unit_amount_decimal");
    let amount = params.int("unit_amount")?;
    let decimal = params.string("unit_amount_decimal")?;
    match (amount, decimal) {
        (Some(_), Some(_)) => Err(exclusive(&amount_param, &decimal_param)),
        (Some(amount), None) => {
            if amount < 0 {
                return Err(too_small(&amount_param));
            }
            if amount > MAX_UNIT_AMOUNT {
                return Err(too_large(&amount_param));
            }
            Ok(Some((Some(amount), amount.to_string())))
        }
        (None, Some(decimal)) => parse_decimal(&decimal_param, &decimal).map(Some),
        (None, None) => Ok(None),
    }
}

/// A non-negative decimal amount with at most 12 decimal places,
/// normalized (`"0100.50"` → `"100.5"`), with its integer value when whole
/// (Stripe fills `unit_amount` "as a whole integer if possible").
pub(super) fn parse_decimal(param: &str, raw: &str) -> ApiResult<(Option<i64>, String)> {
    let invalid = || ApiError::invalid_param(param, format!("Invalid decimal: {raw}"));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = raw.strip_prefix('-') {
        let (int_part, frac_part) = rest.split_once('.').unwrap_or((rest, ""));
        if !rest.is_empty() && digits(int_part) && digits(frac_part) {
            return Err(too_small(param));
        }
        return Err(invalid());
    }
    let (int_part, frac_part) = raw.split_once('.').unwrap_or((raw, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || !digits(int_part) || !digits(frac_part) {
        return Err(invalid());
    }
    if frac_part.len() > MAX_DECIMAL_PLACES {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "Invalid decimal: {raw}. {param} can have at most {MAX_DECIMAL_PLACES} decimal places."
            ),
        ));
    }
    let int_digits = match int_part.trim_start_matches('0') {
        "" => "0",
        trimmed => trimmed,
    };
    let frac_digits = frac_part.trim_end_matches('0');
    if int_digits.len() > 8 {
        return Err(too_large(param));
    }
    let whole: i64 = int_digits.parse().map_err(|_| invalid())?;
    if whole > MAX_UNIT_AMOUNT || (whole == MAX_UNIT_AMOUNT && !frac_digits.is_empty()) {
        return Err(too_large(param));
    }
    if frac_digits.is_empty() {
        Ok((Some(whole), int_digits.to_owned()))
    } else {
        Ok((None, format!("{int_digits}.{frac_digits}")))
    }
}

/// The longest billing interval Stripe takes: three years.
pub(super) fn max_interval_count(interval: &str) -> i64 {
    match interval {
        "day" => 1095,
        "week" => 156,
        "month" => 36,
        _ => 3,
    }
}

/// `recurring[...]`: interval (required), interval_count; with `full`
/// (the Prices API itself) also usage_type, meter and trial_period_days.
pub(super) fn take_recurring(params: &mut Params, full: bool) -> ApiResult<Option<Value>> {
    let Some(mut recurring) = params.object("recurring")? else {
        return Ok(None);
    };
    let interval = recurring.required_string("interval")?;
    recurring.check_enum("interval", &interval, INTERVALS)?;
    let count_param = recurring.name("interval_count");
    let count = recurring.int("interval_count")?.unwrap_or(1);
    if count < 1 {
        return Err(ApiError::invalid_param(
            &count_param,
            "This value must be greater than or equal to 1.",
        ));
    }
    if count > max_interval_count(&interval) {
        return Err(ApiError::invalid_param(
            &count_param,
            format!(
                "Invalid {count_param}: the billing interval can be at most three years (3 years, 36 months, 156 weeks or 1095 days), but {count} {interval}s is longer."
            ),
        ));
    }
    let (mut usage_type, mut meter, mut trial_days) = ("licensed".to_owned(), None, None);
    if full {
        let usage_param = recurring.name("usage_type");
        let meter_param = recurring.name("meter");
        if let Some(usage) = recurring.enum_value("usage_type", &["licensed", "metered"])? {
            usage_type = usage;
        }
        meter = recurring.string("meter")?;
        trial_days = recurring.int("trial_period_days")?;
        if let Some(days) = trial_days
            && !(0..=730).contains(&days)
        {
            return Err(ApiError::invalid_param(
                recurring.name("trial_period_days"),
                "Invalid trial_period_days: must be between 0 and 730.",
            ));
        }
        match (usage_type.as_str(), &meter) {
            ("metered", None) => {
                return Err(ApiError::invalid_param(
                    meter_param,
                    "Starting with Stripe version `2025-03-31.basil`, metered prices must be backed by meters.",
                ));
            }
            ("licensed", Some(_)) => {
                return Err(ApiError::invalid_param(
                    usage_param,
                    "A price with a meter must have recurring[usage_type]=metered.",
                ));
            }
            _ => {}
        }
    }
    recurring.finish()?;
    Ok(Some(json!({
        "interval": interval,
        "interval_count": count,
        "meter": meter,
        "trial_period_days": trial_days,
        "usage_type": usage_type,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_normalize_and_fill_whole_amounts() {
        assert_eq!(
            parse_decimal("p", "0100.50").unwrap(),
            (None, "100.5".into())
        );
        assert_eq!(
            parse_decimal("p", "1000").unwrap(),
            (Some(1000), "1000".into())
        );
        assert_eq!(
            parse_decimal("p", "12.000").unwrap(),
            (Some(12), "12".into())
        );
        assert_eq!(parse_decimal("p", ".5").unwrap(), (None, "0.5".into()));
        assert_eq!(
            parse_decimal("p", "99999999").unwrap(),
            (Some(MAX_UNIT_AMOUNT), "99999999".into())
        );
        for bad in [
            "",
            ".",
            "abc",
            "1.2.3",
            "1e5",
            "-1",
            "-0.5",
            "100000000",
            "99999999.1",
        ] {
            assert!(parse_decimal("p", bad).is_err(), "{bad}");
        }
        assert!(parse_decimal("p", "1.1234567890123").is_err());
        assert!(parse_decimal("p", "1.123456789012").is_ok());
    }

    #[test]
    fn currencies_lowercase_and_unknown_ones_list_the_supported() {
        assert_eq!(check_currency("currency", "EUR").unwrap(), "eur");
        let err = check_currency("currency", "XYZ").unwrap_err().body();
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(
            "Invalid currency: xyz. Stripe currently supports these currencies: usd, aed, afn,"
        ));
        assert_eq!(err["error"]["param"], "currency");
    }
}
