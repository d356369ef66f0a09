//! The badge CSV that `touchstone badges import` reads: a header row, then
//! `customer_id,badge_id,action,ts,source,reason,event_id` a row, into domain
//! [`BadgeEvent`]s (the CLI turns them into protobuf at its edge).
//!
//! A bad row is reported with its line number and skipped, the others are read; a row
//! without an `event_id` gets one derived from its fields, so importing the same file again
//! changes nothing.

use crate::model::{BadgeAction, BadgeEvent, BadgeSource, Millis};
use crate::validate::MAX_ID_LEN;

/// The header row with every column, in their order.
pub const HEADER: &str = "customer_id,badge_id,action,ts,source,reason,event_id";

/// The columns the header must have; `source`, `reason` and `event_id` may be left out.
const REQUIRED_COLUMNS: [&str; 4] = ["customer_id", "badge_id", "action", "ts"];

/// A CSV row that could not be read: its line in the file and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BadRow {
    pub line: u64,
    pub message: String,
}

/// A file's rows as badge events, each with its line, and the rows that could not be read.
#[derive(Debug, Default)]
pub struct ParsedCsv {
    pub events: Vec<(u64, BadgeEvent)>,
    pub bad: Vec<BadRow>,
}

/// Reads a badge CSV of `tenant`. A missing header column fails the whole file (line 1);
/// a bad row is reported and skipped.
pub fn parse_csv(text: &[u8], tenant: &str) -> Result<ParsedCsv, BadRow> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text);
    let header_error = |message: String| BadRow { line: 1, message };
    let headers = reader.headers().map_err(|err| header_error(format!("cannot read the header row: {err}")))?.clone();
    let index = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let missing: Vec<&str> = REQUIRED_COLUMNS.into_iter().filter(|c| index(c).is_none()).collect();
    if !missing.is_empty() {
        return Err(header_error(format!("the header row lacks {}; expected {HEADER}", missing.join(", "))));
    }
    let column = |name: &str| index(name);
    let (customer, badge, action, ts) = (column("customer_id"), column("badge_id"), column("action"), column("ts"));
    let (source, reason, event_id) = (column("source"), column("reason"), column("event_id"));
    let mut parsed = ParsedCsv::default();
    for row in reader.records() {
        let row = match row {
            Ok(row) => row,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line());
                parsed.bad.push(BadRow { line, message: format!("not a CSV row: {err}") });
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line());
        let field = |at: Option<usize>| at.and_then(|i| row.get(i)).unwrap_or("");
        if row.iter().all(str::is_empty) {
            continue;
        }
        // A row longer than the header has its fields shifted somewhere: importing it would
        // store the wrong ones. (Shorter rows only lack trailing optional columns.)
        if row.len() > headers.len() {
            let message = format!("{} fields, the header has {}: a field holds an unquoted comma, or one is extra", row.len(), headers.len());
            parsed.bad.push(BadRow { line, message });
            continue;
        }
        match badge_event(
            tenant,
            [field(customer), field(badge), field(action), field(ts), field(source), field(reason), field(event_id)],
        ) {
            Ok(event) => parsed.events.push((line, event)),
            Err(message) => parsed.bad.push(BadRow { line, message }),
        }
    }
    Ok(parsed)
}

/// One row's fields, in the documented column order, as a badge event.
fn badge_event(tenant: &str, [customer_id, badge_id, action, ts, source, reason, event_id]: [&str; 7]) -> Result<BadgeEvent, String> {
    if customer_id.is_empty() {
        return Err("customer_id is empty".to_owned());
    }
    if badge_id.is_empty() {
        return Err("badge_id is empty".to_owned());
    }
    let action: BadgeAction = action.to_ascii_uppercase().parse().map_err(|err| format!("action: {err}"))?;
    let ts = parse_ts(ts)?;
    let source: BadgeSource = match source {
        "" => BadgeSource::BulkImport,
        source => source.to_ascii_uppercase().parse().map_err(|err| format!("source: {err}"))?,
    };
    let event_id = match event_id {
        "" => derived_event_id(customer_id, badge_id, action, ts),
        event_id => event_id.to_owned(),
    };
    Ok(BadgeEvent {
        tenant: tenant.to_owned(),
        event_id,
        customer_id: customer_id.to_owned(),
        badge_id: badge_id.to_owned(),
        action,
        ts,
        source,
        reason: (!reason.is_empty()).then(|| reason.to_owned()),
    })
}

/// Epoch ms, or an RFC 3339 time (`2025-03-01T09:30:00Z`), which legacy exports often hold.
fn parse_ts(text: &str) -> Result<Millis, String> {
    if let Ok(ms) = text.parse::<Millis>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("ts {text:?} is neither epoch ms nor an RFC 3339 time"))
}

/// The event id of a row that has none: its customer, badge, action and time (the tenant
/// is the import's own), readable when short enough, else their FNV-1a hash. The same row
/// always gets the same id, so importing a file again adds nothing.
pub fn derived_event_id(customer_id: &str, badge_id: &str, action: BadgeAction, ts: Millis) -> String {
    let readable = format!("csv:{customer_id}/{badge_id}/{action}/{ts}");
    if readable.len() <= MAX_ID_LEN {
        return readable;
    }
    format!("csv:{:032x}", fnv1a_128(readable.as_bytes()))
}

/// FNV-1a, 128 bits: stable across Rust versions and platforms (std's hasher is not), which
/// derived ids need to stay the same from one import to the next.
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    bytes.iter().fold(OFFSET, |hash, &byte| (hash ^ u128::from(byte)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "customer_id,badge_id,action,ts,source,reason,event_id\n\
        c1,vip,EARNED,1767225600000,,attended the launch,\n\
        c1,vip,REVOKED,2026-01-02T00:00:00Z,API,refund,r-1\n\
        c2,,EARNED,1,,,\n\
        c3,vip,GRANTED,1,,,\n\
        c4,vip,earned,yesterday,,,\n\
        c5,vip,EARNED,5,MIGRATION,\"from the old system, with a comma\",\n";

    #[test]
    fn rows_become_badge_events_and_bad_rows_are_reported_by_line() {
        let parsed = parse_csv(CSV.as_bytes(), "shop").unwrap();
        let lines: Vec<u64> = parsed.events.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [2, 3, 7]);
        let (_, first) = &parsed.events[0];
        assert_eq!((first.tenant.as_str(), first.event_id.as_str()), ("shop", "csv:c1/vip/EARNED/1767225600000"));
        assert_eq!(first.source, BadgeSource::BulkImport);
        assert_eq!(first.reason.as_deref(), Some("attended the launch"));
        let (_, second) = &parsed.events[1];
        assert_eq!((second.event_id.as_str(), second.ts), ("r-1", 1_767_312_000_000));
        assert_eq!(second.action, BadgeAction::Revoked);
        let (_, migrated) = &parsed.events[2];
        assert_eq!(migrated.source, BadgeSource::Migration);
        assert_eq!(migrated.reason.as_deref(), Some("from the old system, with a comma"));
        let bad: Vec<(u64, bool)> = parsed.bad.iter().map(|b| (b.line, !b.message.is_empty())).collect();
        assert_eq!(bad, [(4, true), (5, true), (6, true)]);
        assert!(parsed.bad[0].message.contains("badge_id"), "{:?}", parsed.bad[0]);
        assert!(parsed.bad[2].message.contains("yesterday"), "{:?}", parsed.bad[2]);
    }

    #[test]
    fn derived_ids_are_stable_and_fit_the_id_limit() {
        let again = parse_csv(CSV.as_bytes(), "shop").unwrap();
        assert_eq!(again.events[0].1.event_id, parse_csv(CSV.as_bytes(), "shop").unwrap().events[0].1.event_id);
        let long = "c".repeat(300);
        let id = derived_event_id(&long, "vip", BadgeAction::Earned, 1);
        assert!(id.len() <= MAX_ID_LEN && id.starts_with("csv:"), "{id}");
        assert_eq!(id, derived_event_id(&long, "vip", BadgeAction::Earned, 1));
        assert_ne!(id, derived_event_id(&long, "vip", BadgeAction::Earned, 2));
        // A value that a future change of the hash would break: ids must not move.
        assert_eq!(fnv1a_128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    }

    /// A row with more fields than the header would be stored with its fields shifted.
    #[test]
    fn a_row_longer_than_the_header_is_reported_and_the_others_imported() {
        let csv = "customer_id,badge_id,action,ts,source,reason,event_id\n\
            c29,vip,EARNED,2026-01-11T10:00:00Z,,too,many,columns,here\n\
            c30,vip,EARNED,2026-01-11T10:00:00Z,,fine,\n\
            c31,vip,EARNED,2026-01-11T10:00:00Z\n";
        let parsed = parse_csv(csv.as_bytes(), "shop").unwrap();
        assert_eq!(parsed.events.iter().map(|(line, _)| *line).collect::<Vec<_>>(), [3, 4], "a short row lacks only optional columns");
        assert_eq!(parsed.bad.len(), 1);
        assert_eq!(parsed.bad[0].line, 2);
        assert!(parsed.bad[0].message.contains("9 fields, the header has 7"), "{}", parsed.bad[0].message);
    }

    #[test]
    fn a_header_without_the_required_columns_fails_the_file() {
        let err = parse_csv(b"customer,badge\nc1,vip\n", "shop").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("customer_id") && err.message.contains("ts"), "{}", err.message);
        assert!(err.message.ends_with("; expected customer_id,badge_id,action,ts,source,reason,event_id"), "{}", err.message);
    }
}
