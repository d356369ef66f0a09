//! Small pieces both backends use: the stored form of a log payload, of conversions and of
//! customer months, postcard encoding, the store's clock and poison-tolerant locks.

use crate::{CellKinds, LogPayload, Result, StoreError, TraceParent};
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, MutexGuard};
use touchstone_core::attribution::{Conversion, ConversionFact, Credit};
use touchstone_core::config::{TenantConfig, TenantConfigBeforeModels};
use touchstone_core::fold::Segment;
use touchstone_core::model::{Millis, Record, Touch};
use touchstone_core::models::ModelSplit;
use touchstone_core::rollup::{CampaignCell, Tally};

/// [`LogPayload`] with serde, kept here so the trait's types stay free of a storage format.
#[derive(Serialize, Deserialize)]
// Almost every entry is a record; boxing it to shrink the rare `Recompute` is not worth it.
#[allow(clippy::large_enum_variant)]
pub(crate) enum StoredPayload {
    Record(Record),
    Recompute { tenant: String },
    /// Never stored by either backend (every stored position gets a record or a
    /// recompute); kept so the conversion from [`LogPayload`] is total.
    Nothing,
    RederiveBadges { tenant: String },
}

impl From<LogPayload> for StoredPayload {
    fn from(payload: LogPayload) -> Self {
        match payload {
            LogPayload::Record(record) => StoredPayload::Record(record),
            LogPayload::Recompute { tenant } => StoredPayload::Recompute { tenant },
            LogPayload::RederiveBadges { tenant } => StoredPayload::RederiveBadges { tenant },
            LogPayload::Nothing => StoredPayload::Nothing,
        }
    }
}

impl From<StoredPayload> for LogPayload {
    fn from(payload: StoredPayload) -> Self {
        match payload {
            StoredPayload::Record(record) => LogPayload::Record(record),
            StoredPayload::Recompute { tenant } => LogPayload::Recompute { tenant },
            StoredPayload::RederiveBadges { tenant } => LogPayload::RederiveBadges { tenant },
            StoredPayload::Nothing => LogPayload::Nothing,
        }
    }
}

/// A campaign's cells as one stored row, in three segments so that a read decodes only the
/// kinds it asks for: conversions, model shifts, the rest (touches, event hits, messages).
/// The first length carries [`THREE_SEGMENTS`]; a row without it (written before model
/// shifts had a segment) holds two: conversions, then the rest. Zero cells are left out;
/// `None` when nothing is left.
pub(crate) fn encode_campaign_cells(cells: impl IntoIterator<Item = (CampaignCell, Tally)>) -> Result<Option<Vec<u8>>> {
    let (mut conversions, mut shifts, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for (cell, tally) in cells.into_iter().filter(|(_, tally)| !tally.is_zero()) {
        match &cell {
            cell if cell.is_conversion() => conversions.push((cell.clone(), tally)),
            cell if cell.is_model_shift() => shifts.push((cell.clone(), tally)),
            _ => rest.push((cell, tally)),
        }
    }
    if conversions.is_empty() && shifts.is_empty() && rest.is_empty() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    for (i, segment) in [encode(&conversions)?, encode(&shifts)?].into_iter().enumerate() {
        let length = u32::try_from(segment.len()).ok().filter(|length| *length < THREE_SEGMENTS);
        let length = length.ok_or_else(|| StoreError::Backend("a campaign row too large".to_owned()))?;
        bytes.extend_from_slice(&(if i == 0 { length | THREE_SEGMENTS } else { length }).to_le_bytes());
        bytes.extend_from_slice(&segment);
    }
    bytes.extend_from_slice(&encode(&rest)?);
    Ok(Some(bytes))
}

/// The flag in a campaign row's first length: the row has three segments.
const THREE_SEGMENTS: u32 = 1 << 31;

/// A length-prefixed segment of a campaign row: the length as stored (flag included), the
/// segment, and what follows it.
fn row_segment(bytes: &[u8]) -> Result<(u32, &[u8], &[u8])> {
    let corrupt = || StoreError::Corrupt("a campaign row cut short".to_owned());
    let (length, rest) = bytes.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let length = u32::from_le_bytes(*length);
    let (segment, rest) = rest.split_at_checked((length & !THREE_SEGMENTS) as usize).ok_or_else(corrupt)?;
    Ok((length, segment, rest))
}

/// The cells of a row written by [`encode_campaign_cells`], those of `kinds`.
pub(crate) fn decode_campaign_cells(bytes: &[u8], kinds: CellKinds) -> Result<Vec<(CampaignCell, Tally)>> {
    let decode = |bytes| postcard::from_bytes::<Vec<(CampaignCell, Tally)>>(bytes).map_err(|e| StoreError::Corrupt(format!("a campaign row: {e}")));
    let segment = row_segment;
    let (first, conversions, rest) = segment(bytes)?;
    let (shifts, rest) = if first & THREE_SEGMENTS != 0 {
        let (_, shifts, rest) = segment(rest)?;
        (shifts, rest)
    } else {
        (&[][..], rest)
    };
    let mut cells = decode(conversions)?;
    if matches!(kinds, CellKinds::All | CellKinds::Credit) && !shifts.is_empty() {
        cells.extend(decode(shifts)?);
    }
    if matches!(kinds, CellKinds::All | CellKinds::Stats) {
        cells.extend(decode(rest)?);
    }
    // Rows written while shifts shared the conversions' segment hold them there.
    cells.retain(|(cell, _)| kinds.wants(cell));
    Ok(cells)
}

/// A log entry as stored by the CQL backend (and by the embedded one before its log was
/// kept in chunks) is its postcard, then the trace context of the call that appended it
/// (25 bytes) when there is one: entries without one end with the postcard, so they read
/// the same as before traces were kept.
#[cfg(any(feature = "cql", test))]
pub(crate) fn with_trace(mut bytes: Vec<u8>, trace: Option<TraceParent>) -> Vec<u8> {
    if let Some(trace) = trace {
        bytes.extend_from_slice(&trace.to_bytes());
    }
    bytes
}

/// The value and the trace context of a log entry stored by [`with_trace`].
pub(crate) fn decode_with_trace<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> std::result::Result<(T, Option<TraceParent>), postcard::Error> {
    let (value, rest) = postcard::take_from_bytes(bytes)?;
    Ok((value, TraceParent::from_bytes(rest)))
}

/// A stored tenant configuration: the current layout, else the one from before the model
/// and holdout settings (postcard has no optional fields: an older value ends early).
pub(crate) fn decode_config(what: &str, bytes: &[u8]) -> Result<TenantConfig> {
    postcard::from_bytes::<TenantConfig>(bytes)
        .or_else(|error| postcard::from_bytes::<TenantConfigBeforeModels>(bytes).map(Into::into).map_err(|_| error))
        .map_err(|e| StoreError::Corrupt(format!("undecodable {what}: {e}")))
}

/// A conversion as a stored row (its own, by time, or within a customer's month): its fact
/// and credit, as rows were written before models were folded.
#[derive(Serialize)]
struct ConversionRow<'a> {
    fact: &'a ConversionFact,
    credit: &'a Credit,
}

#[derive(Deserialize)]
struct ConversionRead {
    fact: ConversionFact,
    credit: Credit,
}

#[derive(Serialize)]
struct SegmentRow<'a> {
    touches: &'a [Touch],
    conversions: Vec<ConversionRow<'a>>,
}

#[derive(Deserialize)]
struct SegmentRead {
    touches: Vec<Touch>,
    conversions: Vec<ConversionRead>,
}

/// A stored conversion: [`ConversionRow`], then its model split when it has one. A row
/// written before splits were kept ends after the credit, and reads as credited by last
/// touch alone under every model (postcard has no optional fields, so the split follows the
/// row instead of being one of its fields).
pub(crate) fn encode_conversion(conversion: &Conversion) -> Result<Vec<u8>> {
    let mut bytes = encode(&ConversionRow { fact: &conversion.fact, credit: &conversion.credit })?;
    if let Some(split) = &conversion.split {
        bytes.extend(encode(split)?);
    }
    Ok(bytes)
}

pub(crate) fn decode_conversion(what: &str, bytes: &[u8]) -> Result<Conversion> {
    let corrupt = |e: postcard::Error| StoreError::Corrupt(format!("undecodable {what}: {e}"));
    let (ConversionRead { fact, credit }, rest) = postcard::take_from_bytes(bytes).map_err(corrupt)?;
    let split = if rest.is_empty() { None } else { Some(postcard::from_bytes::<ModelSplit>(rest).map_err(corrupt)?) };
    Ok(Conversion { fact, credit, split })
}

/// A stored month of a customer: [`SegmentRow`], then each split conversion's index in it
/// with its split (nothing when none is split, as in rows written before splits were kept).
pub(crate) fn encode_segment(segment: &Segment) -> Result<Vec<u8>> {
    let conversions = segment.conversions.values().map(|c| ConversionRow { fact: &c.fact, credit: &c.credit }).collect();
    let mut bytes = encode(&SegmentRow { touches: &segment.touches, conversions })?;
    let splits: Vec<(u32, &ModelSplit)> =
        segment.conversions.values().zip(0u32..).filter_map(|(c, i)| Some((i, c.split.as_ref()?))).collect();
    if !splits.is_empty() {
        bytes.extend(encode(&splits)?);
    }
    Ok(bytes)
}

pub(crate) fn decode_segment(what: &str, bytes: &[u8]) -> Result<Segment> {
    let corrupt = |e: postcard::Error| StoreError::Corrupt(format!("undecodable {what}: {e}"));
    let (SegmentRead { touches, conversions }, rest) = postcard::take_from_bytes(bytes).map_err(corrupt)?;
    let mut splits: Vec<(u32, ModelSplit)> = if rest.is_empty() { Vec::new() } else { postcard::from_bytes(rest).map_err(corrupt)? };
    splits.reverse();
    let conversions = conversions
        .into_iter()
        .zip(0u32..)
        .map(|(ConversionRead { fact, credit }, i)| {
            let split = splits.pop_if(|(at, _)| *at == i).map(|(_, split)| split);
            ((fact.goal_id.clone(), fact.key.clone()), Conversion { fact, credit, split })
        })
        .collect();
    Ok(Segment { touches, conversions })
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Backend(format!("encoding a value: {e}")))
}

/// Epoch milliseconds on this machine's clock.
pub(crate) fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| Millis::try_from(since.as_millis()).unwrap_or(Millis::MAX))
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The mutexes guard either no data of their own (the embedded store's data is all in
    // fjall, written atomically) or maps updated by single inserts and removals, so a panic
    // in another holder leaves nothing half-done to refuse.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a record is, in a word, for errors.
pub(crate) fn record_kind(record: &touchstone_core::model::Record) -> &'static str {
    use touchstone_core::model::Record;
    match record {
        Record::Message(_) => "message",
        Record::Touch(_) => "touch",
        Record::Event(_) => "app event",
        Record::Order(_) => "order status record",
        Record::Badge(_) => "badge event",
    }
}

/// Times one call of a role method: `touchstone_store_call_seconds{backend, op, outcome}`,
/// the same `op` names (the method's) on both backends, so one dashboard reads either.
#[cfg(any(feature = "embedded", feature = "cql"))]
pub(crate) async fn timed<T>(backend: &'static str, op: &'static str, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let started = std::time::Instant::now();
    let result = call.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::histogram!("touchstone_store_call_seconds", "backend" => backend, "op" => op, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchstone_core::attribution::Rule;
    use touchstone_core::model::TouchKind;

    fn converted(key: &str, split: bool) -> Conversion {
        let fact = ConversionFact {
            tenant: "t".into(),
            goal_id: "orders".into(),
            key: key.into(),
            customer_id: "c".into(),
            ts: 1_767_225_600_000,
            value_micros: 3_000_000,
            source_event_id: format!("{key}-paid"),
            explicit_msg_hash: None,
        };
        let credit = Credit { rule: Rule::LastTouch, msg_hash: Some("m2".into()), touch_event_id: Some("e2".into()) };
        let parts = vec![vec![(1_000_000, 3_000_000), (0, 0)], vec![(500_000, 1_000_000), (500_000, 2_000_000)]];
        let split = split.then(|| ModelSplit { messages: vec!["m1".into(), "m2".into()], parts });
        Conversion { fact, credit, split }
    }

    #[test]
    fn conversions_read_back_with_their_split_and_rows_from_before_splits_read_without() {
        for conversion in [converted("o1", true), converted("o2", false)] {
            let bytes = encode_conversion(&conversion).unwrap();
            assert_eq!(decode_conversion("conversion", &bytes).unwrap(), conversion);
        }
        // A row as written before splits were kept: fact and credit alone.
        let old = converted("o3", false);
        let bytes = encode(&(&old.fact, &old.credit)).unwrap();
        assert_eq!(decode_conversion("conversion", &bytes).unwrap(), old);
        let cut = encode_conversion(&converted("o1", true)).unwrap();
        assert!(matches!(decode_conversion("conversion", &cut[..cut.len() - 1]), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn months_read_back_with_each_conversions_split() {
        let touch = Touch {
            tenant: "t".into(),
            event_id: "e1".into(),
            msg_hash: "m1".into(),
            customer_id: "c".into(),
            kind: TouchKind::Opened,
            ts: 1_767_225_600_000,
        };
        let rows = [converted("o1", false), converted("o2", true), converted("o3", false), converted("o4", true)];
        let segment = Segment {
            touches: vec![touch.clone()],
            conversions: rows.into_iter().map(|c| ((c.fact.goal_id.clone(), c.fact.key.clone()), c)).collect(),
        };
        assert_eq!(decode_segment("month", &encode_segment(&segment).unwrap()).unwrap(), segment);
        // A month as written before splits were kept.
        let unsplit = Segment {
            touches: vec![touch],
            conversions: [converted("o1", false)].into_iter().map(|c| ((c.fact.goal_id.clone(), c.fact.key.clone()), c)).collect(),
        };
        let old = encode(&(&unsplit.touches, unsplit.conversions.values().map(|c| (&c.fact, &c.credit)).collect::<Vec<_>>())).unwrap();
        assert_eq!(decode_segment("month", &old).unwrap(), unsplit);
    }

    #[test]
    fn campaign_rows_read_back_whole_or_by_kind() {
        let converted = CampaignCell::Conversion { goal_id: "orders".into(), rule: Rule::LastTouch };
        let opened = CampaignCell::Touch { kind: TouchKind::Opened };
        let shifted = CampaignCell::ModelShift { goal_id: "orders".into(), model: touchstone_core::models::Model::Linear };
        let (two, shift) = (Tally { count: 2, value_micros: 9 }, Tally { count: -500_000, value_micros: -4 });
        let cells = vec![(opened.clone(), Tally::ONE), (CampaignCell::Message, Tally::default()), (converted.clone(), two), (shifted.clone(), shift)];
        let bytes = encode_campaign_cells(cells).unwrap().unwrap();
        let read = |kinds| decode_campaign_cells(&bytes, kinds).unwrap();
        assert_eq!(read(CellKinds::All), vec![(converted.clone(), two), (shifted.clone(), shift), (opened.clone(), Tally::ONE)], "zeros left out");
        assert_eq!(read(CellKinds::Conversions), vec![(converted.clone(), two)]);
        assert_eq!(read(CellKinds::Credit), vec![(converted.clone(), two), (shifted.clone(), shift)]);
        assert_eq!(read(CellKinds::Stats), vec![(converted.clone(), two), (opened.clone(), Tally::ONE)]);
        assert_eq!(encode_campaign_cells(vec![(CampaignCell::Message, Tally::default())]).unwrap(), None);
        assert!(matches!(decode_campaign_cells(&bytes[..6], CellKinds::All), Err(StoreError::Corrupt(_))));

        // A row of two segments, as written before model shifts had their own (even one
        // holding shifts among its conversions), reads by kind all the same.
        let conversions = encode(&vec![(converted.clone(), two), (shifted.clone(), shift)]).unwrap();
        let mut old = u32::try_from(conversions.len()).unwrap().to_le_bytes().to_vec();
        old.extend_from_slice(&conversions);
        old.extend_from_slice(&encode(&vec![(opened.clone(), Tally::ONE)]).unwrap());
        let read = |kinds| decode_campaign_cells(&old, kinds).unwrap();
        assert_eq!(read(CellKinds::Conversions), vec![(converted.clone(), two)]);
        assert_eq!(read(CellKinds::Credit), vec![(converted.clone(), two), (shifted, shift)]);
        assert_eq!(read(CellKinds::Stats), vec![(converted, two), (opened, Tally::ONE)]);
    }

    /// A configuration saved before the model and holdout settings existed reads with
    /// their defaults; a current one reads as saved; a cut one is refused.
    #[test]
    fn configurations_of_the_older_layout_still_decode() {
        use std::collections::BTreeMap;
        use touchstone_core::config::{ChannelSetting, Goal, Holdouts};
        use touchstone_core::model::Channel;
        #[derive(Serialize)]
        struct Before {
            tenant: String,
            settings: BTreeMap<Channel, ChannelSetting>,
            currency: String,
            excluded_tags: Vec<String>,
            goals: Vec<Goal>,
            version: u64,
        }
        let mut saved = TenantConfig::defaults("t");
        saved.set_currency("EUR").unwrap();
        saved.version = 7;
        let TenantConfig { tenant, settings, currency, excluded_tags, goals, version, .. } = saved.clone();
        let before = encode(&Before { tenant, settings, currency, excluded_tags, goals, version }).unwrap();
        assert_eq!(decode_config("config", &before).unwrap(), saved, "the new settings at their defaults");

        saved.set_decay_half_life(3_600_000).unwrap();
        saved.set_holdouts(Holdouts { default_bp: 100, campaigns: [("spring".to_owned(), 2_500)].into() }).unwrap();
        assert_eq!(decode_config("config", &encode(&saved).unwrap()).unwrap(), saved);
        assert!(matches!(decode_config("config", &before[..before.len() - 3]), Err(StoreError::Corrupt(_))));
    }
}
