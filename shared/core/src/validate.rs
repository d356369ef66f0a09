//! Validation at the edge: what a record, and every field of every request, must hold to be
//! accepted. The same limits apply on every path in (gRPC records, the other RPCs' fields,
//! bulk files), so that nothing the store or a worker cannot handle gets past the edge.
//! Enum names are checked where text is decoded (`files`, the gRPC conversions).

use crate::model::{Millis, Record, MICROS_PER_UNIT};

/// 2000-01-01T00:00:00Z: nothing older is a plausible event time.
pub const MIN_TS: Millis = 946_684_800_000;
/// 2100-01-01T00:00:00Z (exclusive).
pub const MAX_TS: Millis = 4_102_444_800_000;
/// Ten billion in major units at two decimals: larger amounts are typos or attacks.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;
/// Event values within +-10^12 keep micros within i64.
pub const MAX_EVENT_VALUE: f64 = 1e12;
/// Longest id or name (tenant, event_id, msg_hash, customer_id, goal_id, tag, ...).
pub const MAX_ID_LEN: usize = 256;
/// Most items in one list field (tags, categories, statuses, excluded tags, ...).
pub const MAX_LIST_LEN: usize = 64;

/// A field that fails its limits. Named `InvalidRecord` for its first use; it serves every
/// request field too.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidRecord {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{field} is longer than {MAX_ID_LEN} bytes")]
    TooLong { field: &'static str },
    #[error("{field} has {len} items; at most {MAX_LIST_LEN} are allowed")]
    TooMany { field: &'static str, len: usize },
    #[error("{len} records in one call; send at most {max} per call or stream chunk")]
    BatchTooLarge { len: usize, max: usize },
    #[error("{field} {value} is outside 2000-01-01..2100-01-01 (epoch ms)")]
    TimeOutOfRange { field: &'static str, value: Millis },
    #[error("amount_minor {0} is negative")]
    NegativeAmount(i64),
    #[error("amount_minor {0} is larger than {MAX_AMOUNT_MINOR}")]
    AmountTooLarge(i64),
    #[error("currency {0:?} is not an ISO 4217 code such as USD")]
    BadCurrency(String),
    #[error("value {0} is not a finite number within +-1e12")]
    BadValue(f64),
    #[error("a badge event's event_id may not start with {0:?}: the timeline names its derived entries so")]
    ReservedBadgeId(&'static str),
}

pub fn is_currency_code(code: &str) -> bool {
    crate::currency::is_iso_4217(code)
}

/// Checks an event value before it is turned into micros.
pub fn check_event_value(value: f64) -> Result<(), InvalidRecord> {
    if value.is_finite() && value.abs() <= MAX_EVENT_VALUE {
        Ok(())
    } else {
        Err(InvalidRecord::BadValue(value))
    }
}

/// A required id: present, at most [`MAX_ID_LEN`] bytes.
pub fn id(field: &'static str, value: &str) -> Result<(), InvalidRecord> {
    if value.is_empty() {
        return Err(InvalidRecord::Missing(field));
    }
    text(field, value)
}

/// An optional text field (empty allowed): at most [`MAX_ID_LEN`] bytes.
pub fn text(field: &'static str, value: &str) -> Result<(), InvalidRecord> {
    if value.len() > MAX_ID_LEN {
        return Err(InvalidRecord::TooLong { field });
    }
    Ok(())
}

/// An optional id: when present, at most [`MAX_ID_LEN`] bytes.
pub fn optional_id(field: &'static str, value: &Option<String>) -> Result<(), InvalidRecord> {
    value.as_deref().map_or(Ok(()), |value| text(field, value))
}

/// A list of ids: at most [`MAX_LIST_LEN`] items, each present and at most [`MAX_ID_LEN`]
/// bytes.
pub fn list(field: &'static str, items: &[String]) -> Result<(), InvalidRecord> {
    if items.len() > MAX_LIST_LEN {
        return Err(InvalidRecord::TooMany { field, len: items.len() });
    }
    items.iter().try_for_each(|item| id(field, item))
}

/// An ISO 4217 code such as `USD`.
pub fn currency(value: &str) -> Result<(), InvalidRecord> {
    if !is_currency_code(value) {
        return Err(InvalidRecord::BadCurrency(value.chars().take(MAX_ID_LEN).collect()));
    }
    Ok(())
}

fn time(field: &'static str, value: Millis) -> Result<(), InvalidRecord> {
    if (MIN_TS..MAX_TS).contains(&value) {
        Ok(())
    } else {
        Err(InvalidRecord::TimeOutOfRange { field, value })
    }
}

/// Checks one record. Enum fields are already typed, so only presence, lengths, ranges
/// and formats are left.
pub fn validate(record: &Record) -> Result<(), InvalidRecord> {
    id("tenant", record.tenant())?;
    match record {
        Record::Message(m) => {
            id("msg_hash", &m.msg_hash)?;
            text("campaign_id", &m.campaign_id)?;
            list("tags", &m.tags)?;
            time("sent_at", m.sent_at)
        }
        Record::Touch(t) => {
            id("event_id", &t.event_id)?;
            id("msg_hash", &t.msg_hash)?;
            id("customer_id", &t.customer_id)?;
            time("ts", t.ts)
        }
        Record::Event(e) => {
            id("event_id", &e.event_id)?;
            id("customer_id", &e.customer_id)?;
            id("name", &e.name)?;
            optional_id("msg_hash", &e.msg_hash)?;
            if let Some(micros) = e.value_micros {
                check_event_value(micros as f64 / MICROS_PER_UNIT as f64)?;
            }
            time("ts", e.ts)
        }
        Record::Order(o) => {
            id("event_id", &o.event_id)?;
            id("order_id", &o.order_id)?;
            id("customer_id", &o.customer_id)?;
            id("status", &o.status)?;
            optional_id("msg_hash", &o.msg_hash)?;
            if o.amount_minor < 0 {
                return Err(InvalidRecord::NegativeAmount(o.amount_minor));
            }
            if o.amount_minor > MAX_AMOUNT_MINOR {
                return Err(InvalidRecord::AmountTooLarge(o.amount_minor));
            }
            currency(&o.currency)?;
            list("categories", &o.categories)?;
            text("channel", &o.channel)?;
            time("ts", o.ts)
        }
        Record::Badge(b) => {
            id("event_id", &b.event_id)?;
            // Derived timeline entries (rule earns, expiries) are named so; a stored event of
            // the same name would share its place in the timeline's order.
            for prefix in [crate::badges::RULE_EARN_PREFIX, crate::badges::EXPIRY_PREFIX] {
                if b.event_id.starts_with(prefix) {
                    return Err(InvalidRecord::ReservedBadgeId(prefix));
                }
            }
            id("customer_id", &b.customer_id)?;
            id("badge_id", &b.badge_id)?;
            optional_id("reason", &b.reason)?;
            time("ts", b.ts)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OrderRecord, Touch, TouchKind};

    fn order() -> OrderRecord {
        OrderRecord {
            tenant: "t".into(),
            event_id: "e1".into(),
            order_id: "o1".into(),
            customer_id: "c1".into(),
            status: "PAID".into(),
            amount_minor: 1000,
            currency: "USD".into(),
            categories: vec![],
            channel: "app".into(),
            ts: 1_700_000_000_000,
            msg_hash: None,
        }
    }

    #[test]
    fn a_good_order_passes() {
        assert_eq!(validate(&Record::Order(order())), Ok(()));
    }

    #[test]
    fn negative_and_absurd_amounts_are_refused() {
        let negative = OrderRecord { amount_minor: -1, ..order() };
        assert_eq!(validate(&Record::Order(negative)), Err(InvalidRecord::NegativeAmount(-1)));
        let huge = OrderRecord { amount_minor: MAX_AMOUNT_MINOR + 1, ..order() };
        assert!(matches!(validate(&Record::Order(huge)), Err(InvalidRecord::AmountTooLarge(_))));
    }

    #[test]
    fn absurd_timestamps_are_refused_at_both_ends() {
        for ts in [0, MIN_TS - 1, MAX_TS, i64::MAX, -5] {
            let err = validate(&Record::Order(OrderRecord { ts, ..order() })).unwrap_err();
            assert!(matches!(err, InvalidRecord::TimeOutOfRange { field: "ts", .. }), "{ts}");
        }
        assert_eq!(validate(&Record::Order(OrderRecord { ts: MIN_TS, ..order() })), Ok(()));
    }

    #[test]
    fn missing_fields_are_named() {
        let touch = Touch {
            tenant: "t".into(),
            event_id: "e".into(),
            msg_hash: "".into(),
            customer_id: "c".into(),
            kind: TouchKind::Opened,
            ts: 1_700_000_000_000,
        };
        assert_eq!(validate(&Record::Touch(touch)), Err(InvalidRecord::Missing("msg_hash")));
        let no_tenant = OrderRecord { tenant: String::new(), ..order() };
        assert_eq!(validate(&Record::Order(no_tenant)), Err(InvalidRecord::Missing("tenant")));
    }

    #[test]
    fn currency_must_be_an_iso_code() {
        let bad = OrderRecord { currency: "dollars".into(), ..order() };
        assert!(matches!(validate(&Record::Order(bad)), Err(InvalidRecord::BadCurrency(_))));
    }

    #[test]
    fn lists_are_bounded_in_length_and_items() {
        let many: Vec<String> = (0..=MAX_LIST_LEN).map(|i| i.to_string()).collect();
        let too_many = OrderRecord { categories: many.clone(), ..order() };
        assert_eq!(
            validate(&Record::Order(too_many)),
            Err(InvalidRecord::TooMany { field: "categories", len: MAX_LIST_LEN + 1 })
        );
        assert_eq!(list("tags", &many[..MAX_LIST_LEN]), Ok(()));
        assert_eq!(list("tags", &["".to_owned()]), Err(InvalidRecord::Missing("tags")));
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(list("tags", std::slice::from_ref(&long)), Err(InvalidRecord::TooLong { field: "tags" }));
        assert_eq!(text("campaign_id", &long), Err(InvalidRecord::TooLong { field: "campaign_id" }));
        assert_eq!(text("campaign_id", ""), Ok(()));
    }

    #[test]
    fn a_70_kb_tenant_is_refused_before_anything_else() {
        let tenant = "t".repeat(70_000);
        let err = validate(&Record::Order(OrderRecord { tenant: tenant.clone(), ..order() })).unwrap_err();
        assert_eq!(err, InvalidRecord::TooLong { field: "tenant" });
        assert_eq!(id("tenant", &tenant), Err(InvalidRecord::TooLong { field: "tenant" }));
        // A refused currency is not echoed back whole.
        let Err(InvalidRecord::BadCurrency(echo)) = currency(&tenant) else { panic!() };
        assert_eq!(echo.len(), MAX_ID_LEN);
    }

    #[test]
    fn event_values_must_be_finite_and_bounded() {
        assert!(check_event_value(f64::NAN).is_err());
        assert!(check_event_value(1e13).is_err());
        assert!(check_event_value(-12.5).is_ok());
    }
}
