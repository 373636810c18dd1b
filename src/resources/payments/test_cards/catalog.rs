//! Every card on Stripe's testing page (docs.stripe.com/testing): its
//! number, its `pm_card_…` / `tok_…` names and what it does. A number that
//! is not here is a live card to test mode. Where one number appears twice,
//! the first entry is what the raw number means.

use super::Check::{Fail, Pass, Unavailable};
use super::{Auth, Behavior, Decline, TestCard};

const fn card(
    number: &'static str,
    brand: &'static str,
    names: &'static [&'static str],
) -> TestCard {
    TestCard::new(number, brand, names)
}

const fn visa(number: &'static str, names: &'static [&'static str]) -> TestCard {
    TestCard::new(number, "visa", names)
}

/// A Visa issued in `country`, succeeding without authentication.
const fn visa_from(
    number: &'static str,
    country: &'static str,
    names: &'static [&'static str],
) -> TestCard {
    TestCard::new(number, "visa", names).country(country)
}

const fn declines(
    number: &'static str,
    decline: Decline,
    names: &'static [&'static str],
) -> TestCard {
    visa(number, names).behaves(Behavior::Declines(decline))
}

const fn authenticates(
    number: &'static str,
    auth: Auth,
    names: &'static [&'static str],
) -> TestCard {
    visa(number, names).behaves(Behavior::Authenticates(auth))
}

pub(super) const CARDS: &[TestCard] = &[
    // Cards by brand.
    visa("4242424242424242", &["visa", "us"]),
    visa("4000056655665556", &["visa_debit"]).funding("debit"),
    card("5555555555554444", "mastercard", &["mastercard"]),
    card("2223003122003222", "mastercard", &[]),
    card("5200828282828210", "mastercard", &["mastercard_debit"]).funding("debit"),
    card("5105105105105100", "mastercard", &["mastercard_prepaid"]).funding("prepaid"),
    card("378282246310005", "amex", &["amex"]),
    card("371449635398431", "amex", &[]),
    card("6011111111111117", "discover", &["discover"]),
    card("6011000990139424", "discover", &[]),
    card("6011981111111113", "discover", &[]).funding("debit"),
    card("3056930009020004", "diners", &["diners"]),
    card("36227206271667", "diners", &[]),
    card("6555900000604105", "discover", &[]).country("KR"),
    card("3566002020360505", "jcb", &["jcb"]).country("JP"),
    card("6200000000000005", "unionpay", &["unionpay"]).country("CN"),
    card("6200000000000047", "unionpay", &[])
        .funding("debit")
        .country("CN"),
    card("6205500000000000004", "unionpay", &[]).country("CN"),
    // Co-branded cards.
    visa_from("4000002500001001", "FR", &["visa_cartesBancaires"]).co_branded("cartes_bancaires"),
    card(
        "5555552500001001",
        "mastercard",
        &["mastercard_cartesBancaires"],
    )
    .country("FR")
    .co_branded("cartes_bancaires"),
    visa_from("4000050360000001", "AU", &["visa_debit_eftposAuCoBranded"])
        .funding("debit")
        .co_branded("eftpos_au"),
    card(
        "5555050360000080",
        "mastercard",
        &["mastercard_debit_eftposAuCoBranded"],
    )
    .funding("debit")
    .country("AU")
    .co_branded("eftpos_au"),
    // By country: the Americas.
    visa_from("4000000320000021", "AR", &["ar"]),
    visa_from("4000000760000002", "BR", &["br"]),
    visa_from("4000001240000000", "CA", &["ca"]),
    visa_from("4000001520000001", "CL", &["cl"]),
    visa_from("4000001700000003", "CO", &["co"]),
    visa_from("4000001880000005", "CR", &["cr"]),
    visa_from("4000002180000000", "EC", &["ec"]),
    visa_from("4000004840008001", "MX", &["mx"]),
    card("5062210000000009", "unknown", &[]).country("MX"),
    visa_from("4000005910000000", "PA", &["pa"]),
    visa_from("4000006000000066", "PY", &["py"]),
    visa_from("4000006040000068", "PE", &["pe"]),
    visa_from("4000008580000003", "UY", &["uy"]),
    // Europe and the Middle East.
    visa_from("4000007840000001", "AE", &["ae"]),
    card("5200007840000022", "mastercard", &["ae_mastercard"]).country("AE"),
    visa_from("4000000400000008", "AT", &["at"]),
    visa_from("4000000560000004", "BE", &["be"]),
    visa_from("4000001000000000", "BG", &["bg"]),
    visa_from("4000001120000005", "BY", &["by"]),
    visa_from("4000001910000009", "HR", &["hr"]),
    visa_from("4000001960000008", "CY", &["cy"]),
    visa_from("4000002030000002", "CZ", &["cz"]),
    visa_from("4000002080000001", "DK", &["dk"]),
    visa_from("4000002330000009", "EE", &["ee"]),
    visa_from("4000002460000001", "FI", &["fi"]),
    visa_from("4000002500000003", "FR", &["fr"]),
    visa_from("4000002760000016", "DE", &["de"]),
    visa_from("4000002920000005", "GI", &["gi"]),
    visa_from("4000003000000030", "GR", &["gr"]),
    visa_from("4000003480000005", "HU", &["hu"]),
    visa_from("4000003720000005", "IE", &["ie"]),
    visa_from("4000003800000008", "IT", &["it"]),
    visa_from("4000004280000005", "LV", &["lv"]),
    visa_from("4000004380000004", "LI", &["li"]),
    visa_from("4000004400000000", "LT", &["lt"]),
    visa_from("4000004420000006", "LU", &["lu"]),
    visa_from("4000004700000007", "MT", &["mt"]),
    visa_from("4000005280000002", "NL", &["nl"]),
    visa_from("4000005780000007", "NO", &["no"]),
    visa_from("4000006160000005", "PL", &["pl"]),
    visa_from("4000006200000007", "PT", &["pt"]),
    visa_from("4000006420000001", "RO", &["ro"]),
    visa_from("4000006820000007", "SA", &[]),
    visa_from("4000007050000006", "SI", &["si"]),
    visa_from("4000007030000001", "SK", &["sk"]),
    visa_from("4000007240000007", "ES", &["es"]),
    visa_from("4000007520000008", "SE", &["se"]),
    visa_from("4000007560000009", "CH", &["ch"]),
    visa_from("4000008260000000", "GB", &["gb"]),
    visa_from("4000058260000005", "GB", &["gb_debit"]).funding("debit"),
    card("5555558265554449", "mastercard", &["gb_mastercard"]).country("GB"),
    // Asia Pacific.
    visa_from("4000000360000006", "AU", &["au"]),
    visa_from("4000001560000002", "CN", &["cn"]),
    visa_from("4000003440000004", "HK", &["hk"]),
    visa_from("4000003560000008", "IN", &["in"]),
    visa_from("4000003920000003", "JP", &["jp"]),
    card("3530111333300000", "jcb", &[]).country("JP"),
    visa_from("4000004580000002", "MY", &["my"]),
    visa_from("4000005540000008", "NZ", &["nz"]),
    visa_from("4000007020000003", "SG", &["sg"]),
    visa_from("4000001580000008", "TW", &["tw"]),
    visa_from("4000007640000003", "TH", &["th_credit"]),
    visa_from("4000057640000008", "TH", &["th_debit"]).funding("debit"),
    // HSA / FSA cards, and funds straight to the available balance.
    visa(
        "4000051230000072",
        &["debit_visaFsaProductCode", "debit_visaHsaProductCode"],
    )
    .funding("debit"),
    card(
        "5200828282828897",
        "mastercard",
        &["mastercard_debit_mastercardFsaProductCode"],
    )
    .funding("debit"),
    visa("4000000000000077", &["bypassPending"]),
    // Numbers older versions of the page listed, still test cards.
    visa("4012888888881881", &[]),
    visa("4000000000000093", &[]),
    visa_from("4000003720000278", "IE", &["bypassPendingInternational"]),
    // Issuer declines: refused already when attached or set up.
    declines(
        "4000000000000002",
        Decline::Generic,
        &["visa_chargeDeclined", "chargeDeclined"],
    ),
    declines(
        "4000000000009995",
        Decline::InsufficientFunds,
        &[
            "visa_chargeDeclinedInsufficientFunds",
            "chargeDeclinedInsufficientFunds",
        ],
    ),
    declines(
        "4000000000009987",
        Decline::LostCard,
        &["visa_chargeDeclinedLostCard", "chargeDeclinedLostCard"],
    ),
    declines(
        "4000000000009979",
        Decline::StolenCard,
        &["visa_chargeDeclinedStolenCard", "chargeDeclinedStolenCard"],
    ),
    declines(
        "4000000000000069",
        Decline::ExpiredCard,
        &["chargeDeclinedExpiredCard"],
    ),
    declines(
        "4000000000000127",
        Decline::IncorrectCvc,
        &["chargeDeclinedIncorrectCvc"],
    ),
    declines(
        "4000000000000119",
        Decline::ProcessingError,
        &["chargeDeclinedProcessingError"],
    ),
    declines(
        "4000000000006975",
        Decline::VelocityExceeded,
        &[
            "visa_chargeDeclinedVelocityLimitExceeded",
            "chargeDeclinedVelocityLimitExceeded",
        ],
    ),
    // Attaches and sets up; every charge then fails.
    visa("4000000000000341", &["chargeCustomerFail"])
        .behaves(Behavior::ChargesFail(Decline::Generic)),
    visa("4000000000000341", &["visa_chargeCustomerFailLostCard"])
        .behaves(Behavior::ChargesFail(Decline::LostCard))
        .token_only(),
    visa("4000000000000341", &["visa_chargeCustomerFailStolenCard"])
        .behaves(Behavior::ChargesFail(Decline::StolenCard))
        .token_only(),
    // Fraud prevention: Radar's default rules block risk level `highest`,
    // failed CVC checks and failed postal code checks.
    visa(
        "4100000000000019",
        &["radarBlock", "chargeDeclinedFraudulent"],
    )
    .behaves(Behavior::FailsWhenUsed(Decline::Fraudulent))
    .risk("highest"),
    visa("4000000000004954", &["riskLevelHighest"])
        .behaves(Behavior::FailsWhenUsed(Decline::Fraudulent))
        .risk("highest"),
    visa("4000000000009235", &["riskLevelElevated"]).risk("elevated"),
    visa("4000008400000407", &["highFraudDisputeScore"]),
    visa("4000008400000159", &["highEfwScore"]),
    visa("4000008400001017", &["radarDynamicRiskThreshold"]),
    visa("4001858821843804", &["freeTrialAbuseBlock"]),
    visa("4000008405600003", &["adaptive3dsChallenge"]),
    visa("4000000000000101", &["cvcCheckFail"]).checks(Fail, Pass, Pass),
    visa("4000000000000036", &["avsZipFail"]).checks(Pass, Pass, Fail),
    visa("4000058400307872", &["cvcCheckFailElevatedRisk"])
        .checks(Fail, Pass, Pass)
        .risk("elevated"),
    visa("4000058400306072", &["avsZipFailElevatedRisk"])
        .checks(Pass, Pass, Fail)
        .risk("elevated"),
    visa("4000000000000028", &["avsLine1Fail"]).checks(Pass, Fail, Pass),
    visa("4000000000000010", &["avsFail"]).checks(Pass, Fail, Fail),
    visa("4000000000000044", &["avsUnchecked"]).checks(Pass, Unavailable, Unavailable),
    visa("4000000000001208", &[]),
    visa("4000000000003725", &[]),
    // Disputes come later: their payments succeed.
    visa("4000000000000259", &["createDispute"]),
    visa("4000000000002685", &["createDisputeProductNotReceived"]),
    visa("4000000000001976", &["createDisputeInquiry"]),
    visa("4000000000005423", &["createIssuerFraudRecord"]),
    visa("4000000404000079", &["createMultipleDisputes"]),
    visa("4000000404000038", &["createCe3EligibleDispute"]),
    visa("4000008400000779", &["createComplianceDispute"]),
    card(
        "5105008400000002",
        "mastercard",
        &["createMastercardComplianceDispute"],
    ),
    visa(
        "4000000001000043",
        &["createAutoRepresentmentEligibleDispute"],
    ),
    // Refunds come later too.
    visa("4000000000007726", &["pendingRefund"]),
    visa("4000000000005126", &["refundFail"]),
    // 3-D Secure.
    authenticates(
        "4000002500003155",
        Auth::UnlessSetUp,
        &["authenticationRequiredOnSetup"],
    )
    .country("FR"),
    authenticates(
        "4000002760003184",
        Auth::Always,
        &["authenticationRequired"],
    )
    .country("DE"),
    authenticates(
        "4000003800000446",
        Auth::OnSessionOnly,
        &["authenticationRequiredSetupForOffSession"],
    )
    .country("IT"),
    authenticates(
        "4000008260003178",
        Auth::ThenDeclines(Decline::InsufficientFunds),
        &["authenticationRequiredChargeDeclinedInsufficientFunds"],
    )
    .country("GB"),
    authenticates("4000000000003220", Auth::Always, &["threeDSecure2Required"]).country("IE"),
    authenticates("4000008400000027", Auth::Always, &[]),
    authenticates("4000000000003063", Auth::Always, &["threeDSecureRequired"]),
    authenticates(
        "4000008400001629",
        Auth::ThenDeclines(Decline::Generic),
        &["threeDSecureRequiredChargeDeclined"],
    ),
    visa("4000008400001280", &["threeDSecureRequiredProcessingError"])
        .behaves(Behavior::FailsWhenUsed(Decline::ProcessingError)),
    visa("4000000000003055", &["threeDSecureOptional"]),
    visa("4000000000003097", &["threeDSecureOptionalProcessingError"])
        .behaves(Behavior::FailsWhenUsed(Decline::ProcessingError)),
    card(
        "378282246310005",
        "amex",
        &["amex_threeDSecureNotSupported"],
    ),
    visa("4000000032200000", &[]),
    // Mobile challenge flows: a challenge, whatever its screens.
    authenticates("4000582600000094", Auth::Always, &[]).country("GB"),
    authenticates("4000582600000045", Auth::Always, &[]).country("GB"),
    authenticates("4000582600000102", Auth::Always, &[]).country("GB"),
    authenticates("4000582600000110", Auth::Always, &[]).country("GB"),
];
