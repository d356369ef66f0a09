//! The range a page shows: the dates asked for, "all time", or by default the last
//! [`DEFAULT_DAYS`] days holding the tenant's data, found by probing its monthly then daily
//! rollups backwards (and kept a minute per tenant).

use super::view::RangeView;
use super::{Console, PageError};
use super::params::Params;
use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, Utc};
use std::time::{Duration, Instant};
use touchstone_core::rollup::Granularity;
use touchstone_store::CellKinds;

/// Days a report opens on: the last 30 days that hold the tenant's data.
const DEFAULT_DAYS: i64 = 30;
/// How long the last day holding a tenant's data is trusted before it is looked up again.
const LAST_DAY_TTL: Duration = Duration::from_secs(60);

pub(super) fn date(ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.date_naive()).unwrap_or_default()
}

pub(super) fn day_ms(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or_default()
}

impl Console {
    /// The range of a tenant's page: the dates asked for (the `to` day included), else the
    /// last [`DEFAULT_DAYS`] days holding its data.
    pub(super) async fn range(&self, tenant: &str, params: &Params) -> Result<RangeView, PageError> {
        let parse = |text: &Option<String>, what: &str| -> Result<Option<NaiveDate>, PageError> {
            match text.as_deref().filter(|text| !text.is_empty()) {
                None => Ok(None),
                Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| PageError::BadRequest(format!("{what} must be a date, YYYY-MM-DD, not {text:?}"))),
            }
        };
        let defaulted = params.from.as_deref().is_none_or(str::is_empty) && params.to.as_deref().is_none_or(str::is_empty);
        // `from=all`: from the earliest day records may have to the last day with data (or
        // `to`), what the CLI reports without a range.
        let all_time = params.from.as_deref() == Some("all");
        let from = if all_time { None } else { parse(&params.from, "from")? };
        let (from, to) = match (from, parse(&params.to, "to")?) {
            (None, to) if all_time => {
                let earliest = DateTime::from_timestamp_millis(touchstone_core::validate::MIN_TS).map_or(NaiveDate::MIN, |t| t.date_naive());
                let to = match to {
                    Some(to) => to,
                    None => self.last_data_day(tenant).await?,
                };
                (earliest, to)
            }
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => (from, from + Days::days(DEFAULT_DAYS - 1)),
            (None, Some(to)) => (to - Days::days(DEFAULT_DAYS - 1), to),
            (None, None) => {
                let last = self.last_data_day(tenant).await?;
                (last - Days::days(DEFAULT_DAYS - 1), last)
            }
        };
        if to < from {
            return Err(PageError::BadRequest(format!("the range ends ({to}) before it starts ({from})")));
        }
        let (from_ms, to_ms) = (day_ms(from), day_ms(to + Days::days(1)));
        let query = format!("from={from}&to={to}");
        let label = if from.year() == to.year() {
            format!("{} – {}", from.format("%-d %b"), to.format("%-d %b %Y"))
        } else {
            format!("{} – {}", from.format("%-d %b %Y"), to.format("%-d %b %Y"))
        };
        Ok(RangeView { from: from.to_string(), to: to.to_string(), from_ms, to_ms, query, label, defaulted })
    }

    /// The last UTC day with campaign activity of the tenant (today when it has none):
    /// months probed backwards from a year ahead, then that month's days.
    async fn last_data_day(&self, tenant: &str) -> Result<NaiveDate, PageError> {
        // A tenant that does not exist has no data to look for: said before any probe.
        if !self.configs.tenant_exists(tenant).await? {
            return Err(PageError::NotFound(format!("no tenant {tenant:?}")));
        }
        if let Some(&(day, at)) = self.last_days.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(tenant)
            && at.elapsed() < LAST_DAY_TTL
        {
            return Ok(date(day));
        }
        let today = Utc::now().date_naive();
        let found = self.probe_last_day(tenant, today).await?.unwrap_or(today);
        self.last_days.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(tenant.to_owned(), (day_ms(found), Instant::now()));
        Ok(found)
    }

    async fn probe_last_day(&self, tenant: &str, today: NaiveDate) -> Result<Option<NaiveDate>, PageError> {
        let has_data = |granularity, from: NaiveDate, to: NaiveDate| async move {
            let cells = self.reads.campaign_rollups(tenant, None, CellKinds::Stats, granularity, day_ms(from), day_ms(to)).await?;
            Ok::<bool, PageError>(!cells.is_empty())
        };
        let ahead = today + Days::days(366);
        let mut month = NaiveDate::from_ymd_opt(ahead.year(), ahead.month(), 1).unwrap_or(today);
        // Twelve years back at most: older data is not what a report opens on.
        for _ in 0..12 * 12 {
            let next = month.checked_add_months(chrono::Months::new(1)).unwrap_or(month);
            if has_data(Granularity::Month, month, next).await? {
                let mut day = next - Days::days(1);
                while day >= month {
                    if has_data(Granularity::Day, day, day + Days::days(1)).await? {
                        return Ok(Some(day));
                    }
                    day -= Days::days(1);
                }
            }
            month = match month.checked_sub_months(chrono::Months::new(1)) {
                Some(previous) => previous,
                None => break,
            };
        }
        Ok(None)
    }
}
