//! A customer's badge timeline and trophy case, a badge's figures, and a tenant's feed.
//!
//! - The timeline and the trophy case read the customer's badge partition, where ingest
//!   writes the stored badge events and attribution the derived ones (rule earns,
//!   expiries): a timeline page is one range read from the page's cursor; the trophy case
//!   reads each badge's newest entry up to now and, for progress, what the rules count.
//! - A badge's figures read its counters (`touchstone_core::badge_stats`): day rows, and
//!   instant rows for the days the range or "now" cut.
//! - The feed polls the tenant's feed rows past a cursor.

use std::time::Duration;
use tokio::sync::mpsc;
use touchstone_core::badge_stats::{self, BadgeStats, MAX_REPORT_DAYS, StatsPlan};
use touchstone_core::badges::{self, RuleKind, TimelineCursor, TimelineEntry, TimelineFilter};
use touchstone_core::error::{ErrorKind, Reason};
use touchstone_core::model::Millis;
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_store::{BadgeFeedEntry, BadgeRows, BadgeStore, ConfigStore, FeedChange, FeedPosition, StatLevel};

/// Entries in a timeline page when the request does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The most entries one page holds.
pub const MAX_PAGE_SIZE: usize = 1_000;

/// One page of the customer's timeline, newest first: rows read from the cursor on, the
/// ones the filter or the clock hides skipped (then read on, rarely more than once).
pub async fn timeline_page(store: &dyn BadgeStore, request: pb::BadgeTimelineRequest, now: Millis) -> Result<pb::BadgeTimeline, ApiError> {
    let pb::BadgeTimelineRequest { tenant, customer_id, badge_id, range, page_size, page_token } = request;
    let pb::TimeRange { from_ms, to_ms } = range.unwrap_or_default();
    if let (Some(from), Some(to)) = (from_ms, to_ms)
        && from > to
    {
        return Err(ApiError::bad_field("range", format!("range from {from} is after to {to}")));
    }
    let size = match page_size as usize {
        0 => DEFAULT_PAGE_SIZE,
        size if size > MAX_PAGE_SIZE => {
            return Err(ApiError::bad_field("page_size", format!("page_size {size} is above the most, {MAX_PAGE_SIZE}")));
        }
        size => size,
    };
    let cursor = match page_token.as_str() {
        "" => None,
        token => Some(TimelineCursor::decode(token).ok_or_else(|| {
            ApiError::bad_field("page_token", "page_token is not one this server gave out: pass next_page_token unchanged")
        })?),
    };
    // The store applies the cursor and the range; the badge filter and the clock (expiries
    // only once passed) are applied here, reading on while they leave the page short.
    let filter = TimelineFilter { badge_id, from: from_ms, to: to_ms };
    // One more than the page, to know whether another follows.
    let mut rows = BadgeRows { before: cursor.map(|c| (c.ts, c.event_id)), from: from_ms, to: to_ms, limit: size + 1 };
    let mut entries: Vec<TimelineEntry> = Vec::with_capacity(size + 1);
    loop {
        let found = store.customer_badge_rows(&tenant, &customer_id, &rows).await?;
        let exhausted = found.len() < rows.limit;
        if let Some(last) = found.last() {
            rows.before = Some((last.ts, last.event_id.clone()));
        }
        entries.extend(badges::visible_timeline(&found, now).into_iter().filter(|entry| filter.keeps(entry)));
        if entries.len() > size || exhausted {
            break;
        }
    }
    let (page, next) = badges::page(&entries, &filter, None, size);
    Ok(pb::BadgeTimeline {
        entries: page.into_iter().cloned().map(Into::into).collect(),
        next_page_token: next.map(|cursor| cursor.encode()).unwrap_or_default(),
    })
}

/// The badges a customer holds at `now` and the active ones it does not, with progress
/// towards each rule (which reads what the rules count, for tenants with rules).
pub async fn trophy_case(
    configs: &dyn ConfigStore,
    store: &dyn BadgeStore,
    request: pb::TrophyCaseRequest,
    now: Millis,
) -> Result<pb::TrophyCase, ApiError> {
    let pb::TrophyCaseRequest { tenant, customer_id } = request;
    let book = store.badge_book(&tenant).await?;
    // What is held at `now` follows from each badge's newest entry up to then alone.
    let rows = store.customer_badge_latest(&tenant, &customer_id, now).await?;
    let entries = badges::visible_timeline(&rows, now);
    let (currency, activity) = if book.badges.iter().any(|b| b.rule.is_some() && b.active) {
        let config = configs.tenant_config(&tenant).await?;
        (config.currency, store.customer_activity(&tenant, &customer_id).await?)
    } else {
        (String::new(), Vec::new())
    };
    let mut case: pb::TrophyCase = badges::trophy_case(&book.badges, &currency, &entries, &activity, now).into();
    // A spend rule's progress counts minor units of the tenant's currency: say which, so
    // that a reader can show money.
    for locked in &mut case.locked {
        let spend = book.get(&locked.badge_id).and_then(|badge| badge.rule.as_ref()).is_some_and(|rule| matches!(rule.kind, RuleKind::Spend { .. }));
        if let Some(progress) = locked.progress.as_mut().filter(|_| spend) {
            progress.currency.clone_from(&currency);
        }
    }
    Ok(case)
}

/// A badge's figures over the request's range at `now`. NOT_FOUND for a badge the tenant
/// neither defines nor has entries of.
pub async fn badge_stats(store: &dyn BadgeStore, request: pb::BadgeStatsRequest, now: Millis) -> Result<BadgeStats, ApiError> {
    let pb::BadgeStatsRequest { tenant, badge_id, range } = request;
    let pb::TimeRange { from_ms, to_ms } = range.unwrap_or_default();
    let (Some(from), Some(to)) = (from_ms, to_ms) else {
        return Err(ApiError::bad_field("range", "range needs both from_ms and to_ms"));
    };
    if from >= to {
        return Err(ApiError::bad_field("range", format!("range from {from} is not before to {to}")));
    }
    if to.checked_sub(from).is_none_or(|span| span > MAX_REPORT_DAYS * badge_stats::DAY_MS) {
        return Err(ApiError::bad_field("range", format!("range spans more than {MAX_REPORT_DAYS} days")));
    }
    let plan = StatsPlan::new(from, to, now);
    let days = store.badge_stats(&tenant, &badge_id, StatLevel::Day, Millis::MIN, plan.days_to).await?;
    if days.is_empty() && store.badge_book(&tenant).await?.get(&badge_id).is_none() {
        let message = format!("badge {badge_id:?} is not defined for tenant {tenant:?} and has no entries");
        return Err(ApiError::not_found(Reason::badge_not_defined(&tenant, &badge_id), message));
    }
    let mut instants = Vec::new();
    for &(from, to) in &plan.instants {
        instants.extend(store.badge_stats(&tenant, &badge_id, StatLevel::Instant, from, to).await?);
    }
    Ok(badge_stats::report(&plan, &days, &instants))
}

/// How often an open feed looks for new items when it has sent everything.
pub const FEED_POLL: Duration = Duration::from_millis(200);
/// Feed rows read at a time.
const FEED_BATCH: usize = 256;

/// A feed cursor: the item's position, as 24 hex digits.
pub fn feed_cursor(position: FeedPosition) -> String {
    format!("{:016x}{:08x}", position.seq, position.index)
}

fn parse_feed_cursor(cursor: &str) -> Option<FeedPosition> {
    if cursor.len() != 24 || !cursor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let seq = u64::from_str_radix(&cursor[..16], 16).ok()?;
    let index = u32::from_str_radix(&cursor[16..], 16).ok()?;
    Some(FeedPosition { seq, index })
}

/// Where a feed starts: past the request's cursor, at the start, or at the end.
pub async fn feed_start(store: &dyn BadgeStore, request: &pb::WatchBadgeEventsRequest) -> Result<Option<FeedPosition>, ApiError> {
    if !request.after.is_empty() {
        let position = parse_feed_cursor(&request.after)
            .ok_or_else(|| ApiError::bad_field("after", "after is not a cursor this server gave out: pass an item's cursor unchanged"))?;
        return Ok(Some(position));
    }
    if request.from_start { Ok(None) } else { Ok(store.badge_feed_end(&request.tenant).await?) }
}

/// Sends the tenant's feed items past `after` into `sink` as they appear, until the
/// receiver goes away, a read fails or the server shuts down (either sent as the stream's
/// last item: UNAVAILABLE, resume from the last cursor).
pub async fn follow_feed(
    store: &dyn BadgeStore,
    tenant: String,
    badge_id: Option<String>,
    mut after: Option<FeedPosition>,
    sink: mpsc::Sender<Result<pb::BadgeFeedItem, tonic::Status>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            let message = "the server is shutting down: resume from the last cursor on a server that is up";
            let status = ApiError::named(ErrorKind::Unavailable, Reason::shutting_down(), message).into();
            let _ = sink.send(Err(status)).await;
            return;
        }
        let batch = match store.badge_feed(&tenant, after, FEED_BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                let _ = sink.send(Err(ApiError::from(error).into())).await;
                return;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                () = sink.closed() => return,
                () = tokio::time::sleep(FEED_POLL) => continue,
                _ = shutdown.changed() => continue,
            }
        }
        for entry in batch {
            after = Some(entry.position);
            if badge_id.as_ref().is_some_and(|badge_id| *badge_id != entry.event.badge_id) {
                continue;
            }
            if sink.send(Ok(feed_item(entry))).await.is_err() {
                return;
            }
        }
    }
}

fn feed_item(entry: BadgeFeedEntry) -> pb::BadgeFeedItem {
    let change = match entry.change {
        FeedChange::Added => pb::BadgeFeedChange::Added,
        FeedChange::Removed => pb::BadgeFeedChange::Removed,
    };
    let customer_id = entry.event.customer_id.clone();
    pb::BadgeFeedItem {
        cursor: feed_cursor(entry.position),
        change: change.into(),
        customer_id,
        entry: Some(TimelineEntry::from_event(&entry.event).into()),
    }
}

/// The server's clock, which decides which expiries have passed and what progress is.
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_cursors_round_trip_and_refuse_anything_else() {
        let position = FeedPosition { seq: 1 << 40, index: 7 };
        assert_eq!(parse_feed_cursor(&feed_cursor(position)), Some(position));
        assert_eq!(parse_feed_cursor("zz"), None);
        assert_eq!(parse_feed_cursor(&"g".repeat(24)), None);
    }
}
