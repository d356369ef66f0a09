//! A customer's badge timeline and trophy case: two reads of the customer's partitions
//! (stored badge events; the app events and orders rules count) and the tenant's badge
//! book, shaped by `touchstone_core::badges` at the server's clock.

use touchstone_core::badges::{self, TimelineCursor, TimelineEntry, TimelineFilter, TrophyCase};
use touchstone_core::model::{Millis, Record};
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_store::{BadgeStore, ConfigStore};

/// Entries in a timeline page when the request does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The most entries one page holds.
pub const MAX_PAGE_SIZE: usize = 1_000;

/// What a customer's badges are computed from.
struct CustomerBadges {
    book: badges::BadgeBook,
    currency: String,
    stored: Vec<touchstone_core::model::BadgeEvent>,
    activity: Vec<Record>,
}

async fn customer_badges(
    configs: &dyn ConfigStore,
    store: &dyn BadgeStore,
    tenant: &str,
    customer_id: &str,
) -> Result<CustomerBadges, ApiError> {
    let book = store.badge_book(tenant).await?;
    let stored = store.customer_badge_events(tenant, customer_id).await?;
    // Only rules count activity: a tenant without rules reads one partition.
    let has_rules = book.badges.iter().any(|b| b.rule.is_some());
    let (currency, activity) = if has_rules {
        let config = configs.tenant_config(tenant).await?;
        (config.currency, store.customer_activity(tenant, customer_id).await?)
    } else {
        (String::new(), Vec::new())
    };
    Ok(CustomerBadges { book, currency, stored, activity })
}

impl CustomerBadges {
    fn timeline(&self, now: Millis) -> Vec<TimelineEntry> {
        badges::timeline(&self.book.badges, &self.currency, &self.stored, &self.activity, now)
    }
}

/// One page of the customer's timeline, newest first.
pub async fn timeline_page(
    configs: &dyn ConfigStore,
    store: &dyn BadgeStore,
    request: pb::BadgeTimelineRequest,
    now: Millis,
) -> Result<pb::BadgeTimeline, ApiError> {
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
    let customer = customer_badges(configs, store, &tenant, &customer_id).await?;
    let entries = customer.timeline(now);
    let filter = TimelineFilter { badge_id, from: from_ms, to: to_ms };
    let (page, next) = badges::page(&entries, &filter, cursor.as_ref(), size);
    Ok(pb::BadgeTimeline {
        entries: page.into_iter().cloned().map(Into::into).collect(),
        next_page_token: next.map(|c| c.encode()).unwrap_or_default(),
    })
}

pub async fn trophy_case(
    configs: &dyn ConfigStore,
    store: &dyn BadgeStore,
    request: pb::TrophyCaseRequest,
    now: Millis,
) -> Result<TrophyCase, ApiError> {
    let pb::TrophyCaseRequest { tenant, customer_id } = request;
    let customer = customer_badges(configs, store, &tenant, &customer_id).await?;
    let entries = customer.timeline(now);
    Ok(badges::trophy_case(&customer.book.badges, &customer.currency, &entries, &customer.activity, now))
}

/// The server's clock, which decides which expiries have passed and what progress is.
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}
