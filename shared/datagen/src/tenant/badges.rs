//! Badge events: earns from every source, some revoked or expired later, and the
//! long-timeline member of each tenant, drawn from a random stream of its own.

use super::{pick_weighted, uuid, TenantData, TenantGen};
use crate::profiles::{DAY, HOUR};
use crate::BASE_TS;
use rand::rngs::SmallRng;
use rand::Rng;
use touchstone_core::model::{BadgeAction, BadgeEvent, BadgeSource, Millis, Record};

impl TenantGen<'_> {
    pub(super) fn badges(&mut self, target: usize) {
        // The first ones cover every source and every later action; the rest are drawn.
        for i in 0..(target / 120).max(6) {
            let customer = self.customer();
            let (badge_id, rule_reason) = self.choose(self.profile.badges);
            let ts = self.random_ts(self.days_before_end(10));
            const SOURCES: &[(BadgeSource, u32)] = &[
                (BadgeSource::Rule, 40),
                (BadgeSource::Api, 20),
                (BadgeSource::DirectIssue, 10),
                (BadgeSource::BulkImport, 10),
                (BadgeSource::RetroEarn, 10),
                (BadgeSource::Migration, 10),
            ];
            let source = match SOURCES.get(i) {
                Some((source, _)) => *source,
                None => pick_weighted(&mut self.rng, SOURCES, |(_, w)| *w).0,
            };
            let reason = match source {
                BadgeSource::Rule | BadgeSource::RetroEarn => Some(rule_reason.to_owned()),
                BadgeSource::Api if self.rng.random_bool(0.5) => Some("granted by support".to_owned()),
                BadgeSource::Api
                | BadgeSource::DirectIssue
                | BadgeSource::BulkImport
                | BadgeSource::Migration => None,
            };
            self.badge(&customer, badge_id, BadgeAction::Earned, ts, source, reason);
            let fate = match i {
                0 => 0,
                1 => 20,
                _ => self.rng.random_range(0..100),
            };
            match fate {
                0..15 => {
                    let later = ts + self.rng.random_range(HOUR..5 * DAY);
                    let reason = Some("issued by mistake".to_owned());
                    self.badge(&customer, badge_id, BadgeAction::Revoked, later, BadgeSource::Api, reason);
                }
                15..25 => {
                    let later = ts + self.rng.random_range(DAY..10 * DAY);
                    self.badge(&customer, badge_id, BadgeAction::Expired, later, BadgeSource::Rule, None);
                }
                _ => {}
            }
        }
    }

    fn badge(
        &mut self,
        customer: &str,
        badge_id: &str,
        action: BadgeAction,
        ts: Millis,
        source: BadgeSource,
        reason: Option<String>,
    ) {
        let badge = BadgeEvent {
            tenant: self.tenant.clone(),
            event_id: self.event_id(),
            customer_id: customer.to_owned(),
            badge_id: badge_id.to_owned(),
            action,
            ts,
            source,
            reason,
        };
        self.records.push(Record::Badge(badge));
    }
}

/// Badge events of a tenant's long-timeline member in one tenant.
pub(crate) const LONG_TIMELINE_EVENTS: usize = 200;

/// The customer id of a tenant's long-timeline member.
pub(crate) const LONG_TIMELINE_CUSTOMER: &str = "member-long-timeline";

/// A member with a long badge history (what a support agent pages through): earns of the
/// tenant's badges from every source over the whole span, many revoked or expired again,
/// a few at the same ms. Drawn from `rng`, a stream of its own, so the rest of the data is
/// what it was without this member.
pub(crate) fn long_timeline(tenant: &TenantData, days: i64, rng: &mut SmallRng) -> Vec<Record> {
    let badge_ids: Vec<String> = tenant.config_section["badges"]
        .as_array()
        .map(|badges| badges.iter().filter_map(|b| b["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if badge_ids.is_empty() {
        return Vec::new();
    }
    const SOURCES: [BadgeSource; 5] =
        [BadgeSource::Api, BadgeSource::DirectIssue, BadgeSource::BulkImport, BadgeSource::Migration, BadgeSource::Api];
    let span = days.max(1) * DAY;
    let mut records = Vec::with_capacity(LONG_TIMELINE_EVENTS);
    let mut ts = BASE_TS + rng.random_range(0..HOUR);
    let step = (span / LONG_TIMELINE_EVENTS as i64).max(2);
    while records.len() < LONG_TIMELINE_EVENTS {
        let badge_id = &badge_ids[rng.random_range(0..badge_ids.len())];
        let source = SOURCES[records.len() % SOURCES.len()];
        let action = match rng.random_range(0..10) {
            0..6 => BadgeAction::Earned,
            6..9 => BadgeAction::Revoked,
            _ => BadgeAction::Expired,
        };
        let reason = match action {
            BadgeAction::Earned => Some(format!("{} by support", source.as_str().to_lowercase())),
            BadgeAction::Revoked => Some("issued by mistake".to_owned()),
            BadgeAction::Expired => None,
        };
        records.push(Record::Badge(BadgeEvent {
            tenant: tenant.tenant.clone(),
            event_id: uuid(rng),
            customer_id: LONG_TIMELINE_CUSTOMER.to_owned(),
            badge_id: badge_id.clone(),
            action,
            ts,
            source,
            reason,
        }));
        // Now and then two entries at the same ms.
        if rng.random_range(0..10) != 0 {
            ts += rng.random_range(1..2 * step);
        }
    }
    records
}
