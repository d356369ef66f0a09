//! The records Touchstone ingests (docs/behaviour/records-and-config.md), as plain Rust.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Epoch milliseconds, UTC.
pub type Millis = i64;

/// A value in millionths (6 decimal places): order amounts and event values both fit, and
/// sums stay exact. Sums are `i128`.
pub type Micros = i64;

pub const MICROS_PER_UNIT: i64 = 1_000_000;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(text: &str) -> Result<Self, UnknownVariant> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant {
                        kind: stringify!($name),
                        value: text.to_owned(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

/// A name that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (expected one of {})", expected.join(", "))]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

string_enum!(
    /// The channel a message was sent through.
    Channel { Push = "PUSH", Email = "EMAIL", Sms = "SMS", InApp = "IN_APP" }
);
string_enum!(
    /// A message lifecycle step; `HeldOut`: the sender held the customer out of the message
    /// (its campaign's control group), never credited.
    TouchKind { Sent = "SENT", Delivered = "DELIVERED", Opened = "OPENED", Clicked = "CLICKED", HeldOut = "HELD_OUT" }
);
string_enum!(
    BadgeAction { Earned = "EARNED", Revoked = "REVOKED", Expired = "EXPIRED" }
);
string_enum!(
    BadgeSource {
        Api = "API",
        Rule = "RULE",
        DirectIssue = "DIRECT_ISSUE",
        BulkImport = "BULK_IMPORT",
        RetroEarn = "RETRO_EARN",
        Migration = "MIGRATION",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub tenant: String,
    pub msg_hash: String,
    /// Empty: the message belongs to no campaign.
    pub campaign_id: String,
    pub channel: Channel,
    pub tags: Vec<String>,
    pub sent_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    pub tenant: String,
    pub event_id: String,
    pub msg_hash: String,
    pub customer_id: String,
    pub kind: TouchKind,
    pub ts: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppEvent {
    pub tenant: String,
    pub event_id: String,
    pub customer_id: String,
    pub name: String,
    pub ts: Millis,
    pub value_micros: Option<Micros>,
    pub msg_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub tenant: String,
    pub event_id: String,
    pub order_id: String,
    pub customer_id: String,
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub categories: Vec<String>,
    pub channel: String,
    pub ts: Millis,
    pub msg_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadgeEvent {
    pub tenant: String,
    pub event_id: String,
    pub customer_id: String,
    pub badge_id: String,
    pub action: BadgeAction,
    pub ts: Millis,
    pub source: BadgeSource,
    pub reason: Option<String>,
}

/// Any ingested record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    Message(Message),
    Touch(Touch),
    Event(AppEvent),
    Order(OrderRecord),
    Badge(BadgeEvent),
}

impl Record {
    pub fn tenant(&self) -> &str {
        match self {
            Record::Message(m) => &m.tenant,
            Record::Touch(t) => &t.tenant,
            Record::Event(e) => &e.tenant,
            Record::Order(o) => &o.tenant,
            Record::Badge(b) => &b.tenant,
        }
    }

    /// The key that is accepted once per tenant. Messages have no `event_id`: their
    /// `msg_hash` plays that part, in a namespace of its own.
    pub fn dedup_key(&self) -> DedupKey<'_> {
        match self {
            Record::Message(m) => DedupKey::Message(&m.msg_hash),
            Record::Touch(t) => DedupKey::Event(&t.event_id),
            Record::Event(e) => DedupKey::Event(&e.event_id),
            Record::Order(o) => DedupKey::Event(&o.event_id),
            Record::Badge(b) => DedupKey::Event(&b.event_id),
        }
    }

    /// The id shown in rejections and reports: `event_id`, or a message's `msg_hash`.
    pub fn id(&self) -> &str {
        match self.dedup_key() {
            DedupKey::Message(id) | DedupKey::Event(id) => id,
        }
    }

    /// The record's own time (a message's `sent_at`).
    pub fn ts(&self) -> Millis {
        match self {
            Record::Message(m) => m.sent_at,
            Record::Touch(t) => t.ts,
            Record::Event(e) => e.ts,
            Record::Order(o) => o.ts,
            Record::Badge(b) => b.ts,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DedupKey<'a> {
    Message(&'a str),
    Event(&'a str),
}

/// Converts a decimal number to micros, rounding to the nearest millionth.
pub fn to_micros(value: f64) -> Micros {
    (value * MICROS_PER_UNIT as f64).round() as Micros
}

/// Formats an exact micros sum as a decimal string without trailing zeros: "12", "-0.5".
pub fn format_micros(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let units = abs / MICROS_PER_UNIT as u128;
    let frac = abs % MICROS_PER_UNIT as u128;
    if frac == 0 {
        return format!("{sign}{units}");
    }
    let frac = format!("{frac:06}");
    format!("{sign}{units}.{}", frac.trim_end_matches('0'))
}

/// Parses what [`format_micros`] writes (and any decimal with up to 6 places).
pub fn parse_micros(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (units, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if units.is_empty() || frac.len() > 6 || !units.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let units: i128 = units.parse().ok()?;
    let frac: i128 = if frac.is_empty() { 0 } else { format!("{frac:0<6}").parse().ok()? };
    let value = units.checked_mul(MICROS_PER_UNIT as i128)?.checked_add(frac)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_through_text() {
        for micros in [0i128, 1, -1, 1_000_000, 12_500_000, -500_000, 123_456_789, i64::MAX as i128 * 7] {
            assert_eq!(parse_micros(&format_micros(micros)), Some(micros), "{micros}");
        }
        assert_eq!(format_micros(12_500_000), "12.5");
        assert_eq!(format_micros(-500_000), "-0.5");
        assert_eq!(format_micros(3_000_000), "3");
        assert_eq!(parse_micros("1.2345678"), None);
        assert_eq!(parse_micros("abc"), None);
    }

    #[test]
    fn decimal_values_become_exact_micros() {
        assert_eq!(to_micros(0.1), 100_000);
        assert_eq!(to_micros(12.5), 12_500_000);
        assert_eq!(to_micros(-3.0), -3_000_000);
    }

    #[test]
    fn enum_names_round_trip_and_unknown_ones_say_what_is_expected() {
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(*channel));
        }
        let err = "FAX".parse::<Channel>().unwrap_err();
        assert_eq!(err.to_string(), "unknown Channel \"FAX\" (expected one of PUSH, EMAIL, SMS, IN_APP)");
    }
}
