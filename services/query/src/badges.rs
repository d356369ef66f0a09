//! A customer's badge timeline and trophy case. Both read the customer's badge partition,
//! where ingest writes the stored badge events and attribution the derived ones (rule
//! earns, expiries): a timeline page is one range read from the page's cursor; the trophy
//! case replays the whole partition and, for progress, reads what the rules count.

use touchstone_core::badges::{self, TimelineCursor, TimelineEntry, TimelineFilter, TrophyCase};
use touchstone_core::model::Millis;
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_store::{BadgeRows, BadgeStore, ConfigStore};

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
        return Err(ApiError::InvalidArgument(format!("range from {from} is after to {to}")));
    }
    let size = match page_size as usize {
        0 => DEFAULT_PAGE_SIZE,
        size if size > MAX_PAGE_SIZE => {
            return Err(ApiError::InvalidArgument(format!("page_size {size} is above the most, {MAX_PAGE_SIZE}")));
        }
        size => size,
    };
    let cursor = match page_token.as_str() {
        "" => None,
        token => Some(TimelineCursor::decode(token).ok_or_else(|| {
            ApiError::InvalidArgument("page_token is not one this server gave out: pass next_page_token unchanged".to_owned())
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
) -> Result<TrophyCase, ApiError> {
    let pb::TrophyCaseRequest { tenant, customer_id } = request;
    let book = store.badge_book(&tenant).await?;
    let rows = store.customer_badge_events(&tenant, &customer_id).await?;
    let entries = badges::visible_timeline(&rows, now);
    let (currency, activity) = if book.badges.iter().any(|b| b.rule.is_some() && b.active) {
        let config = configs.tenant_config(&tenant).await?;
        (config.currency, store.customer_activity(&tenant, &customer_id).await?)
    } else {
        (String::new(), Vec::new())
    };
    Ok(badges::trophy_case(&book.badges, &currency, &entries, &activity, now))
}

/// The server's clock, which decides which expiries have passed and what progress is.
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}
