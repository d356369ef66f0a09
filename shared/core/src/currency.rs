//! ISO 4217 currency codes and their minor units (the number of decimals money is shown
//! with: JPY 0, USD 2, KWD 3), as the ISO 4217 maintenance agency lists them (list one,
//! 2025 amendments: XCG beside ANG, ZWG beside ZWL during their transitions).

/// Every active code with its minor units; `None` where ISO lists none (gold, SDR, test).
const CODES: &[(&str, Option<u8>)] = &[
    ("AED", Some(2)), ("AFN", Some(2)), ("ALL", Some(2)), ("AMD", Some(2)), ("ANG", Some(2)), ("AOA", Some(2)),
    ("ARS", Some(2)), ("AUD", Some(2)), ("AWG", Some(2)), ("AZN", Some(2)), ("BAM", Some(2)), ("BBD", Some(2)),
    ("BDT", Some(2)), ("BGN", Some(2)), ("BHD", Some(3)), ("BIF", Some(0)), ("BMD", Some(2)), ("BND", Some(2)),
    ("BOB", Some(2)), ("BOV", Some(2)), ("BRL", Some(2)), ("BSD", Some(2)), ("BTN", Some(2)), ("BWP", Some(2)),
    ("BYN", Some(2)), ("BZD", Some(2)), ("CAD", Some(2)), ("CDF", Some(2)), ("CHE", Some(2)), ("CHF", Some(2)),
    ("CHW", Some(2)), ("CLF", Some(4)), ("CLP", Some(0)), ("CNY", Some(2)), ("COP", Some(2)), ("COU", Some(2)),
    ("CRC", Some(2)), ("CUP", Some(2)), ("CVE", Some(2)), ("CZK", Some(2)), ("DJF", Some(0)), ("DKK", Some(2)),
    ("DOP", Some(2)), ("DZD", Some(2)), ("EGP", Some(2)), ("ERN", Some(2)), ("ETB", Some(2)), ("EUR", Some(2)),
    ("FJD", Some(2)), ("FKP", Some(2)), ("GBP", Some(2)), ("GEL", Some(2)), ("GHS", Some(2)), ("GIP", Some(2)),
    ("GMD", Some(2)), ("GNF", Some(0)), ("GTQ", Some(2)), ("GYD", Some(2)), ("HKD", Some(2)), ("HNL", Some(2)),
    ("HTG", Some(2)), ("HUF", Some(2)), ("IDR", Some(2)), ("ILS", Some(2)), ("INR", Some(2)), ("IQD", Some(3)),
    ("IRR", Some(2)), ("ISK", Some(0)), ("JMD", Some(2)), ("JOD", Some(3)), ("JPY", Some(0)), ("KES", Some(2)),
    ("KGS", Some(2)), ("KHR", Some(2)), ("KMF", Some(0)), ("KPW", Some(2)), ("KRW", Some(0)), ("KWD", Some(3)),
    ("KYD", Some(2)), ("KZT", Some(2)), ("LAK", Some(2)), ("LBP", Some(2)), ("LKR", Some(2)), ("LRD", Some(2)),
    ("LSL", Some(2)), ("LYD", Some(3)), ("MAD", Some(2)), ("MDL", Some(2)), ("MGA", Some(2)), ("MKD", Some(2)),
    ("MMK", Some(2)), ("MNT", Some(2)), ("MOP", Some(2)), ("MRU", Some(2)), ("MUR", Some(2)), ("MVR", Some(2)),
    ("MWK", Some(2)), ("MXN", Some(2)), ("MXV", Some(2)), ("MYR", Some(2)), ("MZN", Some(2)), ("NAD", Some(2)),
    ("NGN", Some(2)), ("NIO", Some(2)), ("NOK", Some(2)), ("NPR", Some(2)), ("NZD", Some(2)), ("OMR", Some(3)),
    ("PAB", Some(2)), ("PEN", Some(2)), ("PGK", Some(2)), ("PHP", Some(2)), ("PKR", Some(2)), ("PLN", Some(2)),
    ("PYG", Some(0)), ("QAR", Some(2)), ("RON", Some(2)), ("RSD", Some(2)), ("RUB", Some(2)), ("RWF", Some(0)),
    ("SAR", Some(2)), ("SBD", Some(2)), ("SCR", Some(2)), ("SDG", Some(2)), ("SEK", Some(2)), ("SGD", Some(2)),
    ("SHP", Some(2)), ("SLE", Some(2)), ("SOS", Some(2)), ("SRD", Some(2)), ("SSP", Some(2)), ("STN", Some(2)),
    ("SVC", Some(2)), ("SYP", Some(2)), ("SZL", Some(2)), ("THB", Some(2)), ("TJS", Some(2)), ("TMT", Some(2)),
    ("TND", Some(3)), ("TOP", Some(2)), ("TRY", Some(2)), ("TTD", Some(2)), ("TWD", Some(2)), ("TZS", Some(2)),
    ("UAH", Some(2)), ("UGX", Some(0)), ("USD", Some(2)), ("USN", Some(2)), ("UYI", Some(0)), ("UYU", Some(2)),
    ("UYW", Some(4)), ("UZS", Some(2)), ("VED", Some(2)), ("VES", Some(2)), ("VND", Some(0)), ("VUV", Some(0)),
    ("WST", Some(2)), ("XAF", Some(0)), ("XAG", None), ("XAU", None), ("XBA", None), ("XBB", None),
    ("XBC", None), ("XBD", None), ("XCD", Some(2)), ("XCG", Some(2)), ("XDR", None), ("XOF", Some(0)),
    ("XPD", None), ("XPF", Some(0)), ("XPT", None), ("XSU", None), ("XTS", None), ("XUA", None),
    ("XXX", None), ("YER", Some(2)), ("ZAR", Some(2)), ("ZMW", Some(2)), ("ZWG", Some(2)), ("ZWL", Some(2)),
];

/// Whether `code` is an active ISO 4217 code.
pub fn is_iso_4217(code: &str) -> bool {
    lookup(code).is_some()
}

/// The minor units of `code`: `Some(None)` for a code without them (XAU), `None` for no
/// ISO 4217 code.
pub fn minor_units(code: &str) -> Option<Option<u8>> {
    lookup(code).map(|(_, units)| *units)
}

/// Money for people: `value_micros` (millionths of the currency's minor unit, as reports
/// carry values) in major units with the currency's own decimals and thousands grouped,
/// then the code: `2350927` cents of USD is "23,509.27 USD", 1500 JPY "1,500 JPY", 1234
/// fils of KWD "1.234 KWD". Rounded half away from zero to the minor unit; a code without
/// minor units (or unknown) shows whole minor units. JSON and CSV keep exact minor units.
pub fn format_money(value_micros: i128, currency: &str) -> String {
    let decimals = minor_units(currency).flatten().unwrap_or(0);
    let negative = value_micros < 0;
    let abs = value_micros.unsigned_abs();
    // Whole minor units, rounded half away from zero.
    let minor = abs / 1_000_000 + u128::from(abs % 1_000_000 >= 500_000);
    let scale = 10u128.pow(u32::from(decimals));
    let (major, fraction) = (minor / scale, minor % scale);
    let mut text = String::new();
    if negative && minor != 0 {
        text.push('-');
    }
    text.push_str(&group_thousands(major));
    if decimals > 0 {
        text.push_str(&format!(".{fraction:0width$}", width = usize::from(decimals)));
    }
    text.push(' ');
    text.push_str(currency);
    text
}

/// `1234567` as "1,234,567".
pub fn group_thousands(value: u128) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

fn lookup(code: &str) -> Option<&'static (&'static str, Option<u8>)> {
    CODES.binary_search_by(|(known, _)| (*known).cmp(code)).ok().map(|at| &CODES[at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_shown_in_major_units_with_the_currencys_decimals() {
        const M: i128 = 1_000_000;
        assert_eq!(format_money(2_350_927 * M, "USD"), "23,509.27 USD");
        assert_eq!(format_money(1_500 * M, "JPY"), "1,500 JPY");
        assert_eq!(format_money(1_234 * M, "KWD"), "1.234 KWD");
        assert_eq!(format_money(5 * M, "EUR"), "0.05 EUR");
        assert_eq!(format_money(0, "EUR"), "0.00 EUR");
        assert_eq!(format_money(-123_456_789 * M, "USD"), "-1,234,567.89 USD");
        // Half a minor unit rounds away from zero; less rounds to zero, without a sign.
        assert_eq!(format_money(M / 2, "USD"), "0.01 USD");
        assert_eq!(format_money(-M / 2, "USD"), "-0.01 USD");
        assert_eq!(format_money(-M / 3, "USD"), "0.00 USD");
        assert_eq!(format_money(1_000_000_000 * M, "CLF"), "100,000.0000 CLF");
        assert_eq!(format_money(42 * M, "XAU"), "42 XAU", "no minor units: whole units as stored");
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_000), "1,000");
        assert_eq!(group_thousands(123_456_789), "123,456,789");
    }

    #[test]
    fn the_list_is_sorted_unique_and_knows_its_minor_units() {
        assert!(CODES.windows(2).all(|pair| pair[0].0 < pair[1].0), "sorted, for the binary search");
        assert!(CODES.iter().all(|(code, _)| code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())));
        assert_eq!(minor_units("JPY"), Some(Some(0)));
        assert_eq!(minor_units("USD"), Some(Some(2)));
        assert_eq!(minor_units("KWD"), Some(Some(3)));
        assert_eq!(minor_units("XAU"), Some(None));
        for fake in ["ABC", "QQQ", "usd", "US", "EURO", "HRK"] {
            assert!(!is_iso_4217(fake), "{fake}");
        }
    }
}
