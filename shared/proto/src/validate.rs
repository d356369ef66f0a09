//! The edge: every field of every request checked against the limits of
//! [`touchstone_core::validate`] before a handler acts on it, so that nothing a store or a
//! worker cannot handle gets in (a 70 KB tenant name, a list of a million tags). Records
//! are checked one by one by the ingest handlers instead: a bad record is rejected alone,
//! and the rest of its batch is stored.

use crate::auth::Tenants;
use crate::error::ApiError;
use crate::v1 as pb;
use touchstone_core::validate::{InvalidRecord, currency, id, list, optional_id, text};

/// Most records in one ingest call or stream chunk: bounds one store batch.
pub const MAX_BATCH: usize = 10_000;

/// A request whose fields can be checked on their own.
pub trait Validate {
    fn validate(&self) -> Result<(), InvalidRecord>;
}

/// The request's message, if the caller's key may touch every tenant it names
/// (PERMISSION_DENIED otherwise, before anything else is looked at) and every field is
/// within limits (else INVALID_ARGUMENT naming the field).
pub fn valid<T: Validate + Tenants>(request: tonic::Request<T>) -> Result<T, ApiError> {
    let principal = crate::auth::principal(&request);
    let message = request.into_inner();
    crate::auth::authorize(principal.as_ref(), &message)?;
    message.validate()?;
    Ok(message)
}

/// An ingest batch: its size here, its records one by one in the handler.
fn batch<T>(items: &[T]) -> Result<(), InvalidRecord> {
    if items.len() > MAX_BATCH {
        return Err(InvalidRecord::BatchTooLarge { len: items.len(), max: MAX_BATCH });
    }
    Ok(())
}

impl Validate for pb::RegisterMessagesRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        batch(&self.messages)
    }
}

impl Validate for pb::RecordTouchesRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        batch(&self.touches)
    }
}

impl Validate for pb::PostEventsRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        batch(&self.events)
    }
}

impl Validate for pb::RecordOrdersRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        batch(&self.orders)
    }
}

impl Validate for pb::RecordBadgeEventsRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        batch(&self.badges)
    }
}

impl Validate for pb::IngestChunk {
    fn validate(&self) -> Result<(), InvalidRecord> {
        batch(&self.records)
    }
}

impl Validate for pb::GetConfigRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::GetConfigRequest { tenant } = self;
        id("tenant", tenant)
    }
}

impl Validate for pb::UpdateSettingsRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        // The half-life and holdout shares are checked by the config they are set on.
        let pb::UpdateSettingsRequest { tenant, settings, currency: new_currency, excluded_tags, decay_half_life_ms: _, holdouts } = self;
        if let Some(pb::Holdouts { campaigns, .. }) = holdouts {
            if campaigns.len() > MAX_HOLDOUT_CAMPAIGNS {
                return Err(InvalidRecord::TooMany { field: "holdouts.campaigns", len: campaigns.len() });
            }
            for campaign_id in campaigns.keys() {
                id("holdouts.campaigns", campaign_id)?;
            }
        }
        id("tenant", tenant)?;
        // Enum values and windows are checked where settings are decoded; here only their
        // number, so that a huge list is refused before it is walked.
        if settings.len() > touchstone_core::model::Channel::ALL.len() {
            return Err(InvalidRecord::TooMany { field: "settings", len: settings.len() });
        }
        new_currency.as_deref().map_or(Ok(()), currency)?;
        excluded_tags.as_ref().map_or(Ok(()), |pb::ExcludedTags { tags }| list("excluded_tags", tags))
    }
}

impl Validate for pb::Goal {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::Goal { id: goal_id, kind: _, statuses, categories, order_channels, event_name } = self;
        id("goal.id", goal_id)?;
        list("goal.statuses", statuses)?;
        list("goal.categories", categories)?;
        list("goal.order_channels", order_channels)?;
        text("goal.event_name", event_name)
    }
}

impl Validate for pb::CreateGoalRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::CreateGoalRequest { tenant, goal } = self;
        id("tenant", tenant)?;
        goal.as_ref().ok_or(InvalidRecord::Missing("goal"))?.validate()
    }
}

impl Validate for pb::ListGoalsRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::ListGoalsRequest { tenant } = self;
        id("tenant", tenant)
    }
}

impl Validate for pb::DeleteGoalRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::DeleteGoalRequest { tenant, goal_id } = self;
        id("tenant", tenant)?;
        id("goal_id", goal_id)
    }
}

impl Validate for pb::GetStatusRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::GetStatusRequest {} = self;
        Ok(())
    }
}

impl Validate for pb::RecomputeRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::RecomputeRequest { tenant } = self;
        id("tenant", tenant)
    }
}

impl Validate for pb::CampaignStatsRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::CampaignStatsRequest { tenant, campaign_id, range: _ } = self;
        id("tenant", tenant)?;
        id("campaign_id", campaign_id)
    }
}

impl Validate for pb::ListCampaignsRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::ListCampaignsRequest { tenant, range: _ } = self;
        id("tenant", tenant)
    }
}

impl Validate for pb::ListMessageStatsRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::ListMessageStatsRequest { tenant, range: _, campaign_id } = self;
        id("tenant", tenant)?;
        optional_id("campaign_id", campaign_id)
    }
}

impl Validate for pb::GoalKpisRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::GoalKpisRequest { tenant, range: _, goal_id, model: _ } = self;
        id("tenant", tenant)?;
        optional_id("goal_id", goal_id)
    }
}

impl Validate for pb::CampaignSeriesRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::CampaignSeriesRequest { tenant, campaign_id, range: _, time_zone } = self;
        id("tenant", tenant)?;
        id("campaign_id", campaign_id)?;
        text("time_zone", time_zone)
    }
}

impl Validate for pb::GoalSeriesRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::GoalSeriesRequest { tenant, goal_id, range: _, time_zone } = self;
        id("tenant", tenant)?;
        id("goal_id", goal_id)?;
        text("time_zone", time_zone)
    }
}

/// Campaigns one `UpdateSettings` may give holdout shares of.
pub const MAX_HOLDOUT_CAMPAIGNS: usize = 10_000;

impl Validate for pb::ModelReportRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::ModelReportRequest { tenant, range: _, goal_id, by_message: _, campaign_id } = self;
        id("tenant", tenant)?;
        campaign_id.as_deref().map_or(Ok(()), |campaign_id| id("campaign_id", campaign_id))?;
        goal_id.as_deref().map_or(Ok(()), |goal_id| id("goal_id", goal_id))
    }
}

impl Validate for pb::LiftRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::LiftRequest { tenant, campaign_id, goal_id, range: _ } = self;
        id("tenant", tenant)?;
        id("campaign_id", campaign_id)?;
        goal_id.as_deref().map_or(Ok(()), |goal_id| id("goal_id", goal_id))
    }
}

impl Validate for pb::HoldoutRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::HoldoutRequest { tenant, campaign_id, customer_id } = self;
        id("tenant", tenant)?;
        id("campaign_id", campaign_id)?;
        id("customer_id", customer_id)
    }
}

impl Validate for pb::ExplainConversionRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::ExplainConversionRequest { tenant, goal_id, conversion_key } = self;
        id("tenant", tenant)?;
        id("goal_id", goal_id)?;
        id("conversion_key", conversion_key)
    }
}

impl Validate for pb::IssueBadgeRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::IssueBadgeRequest { tenant, event_id, customer_id, badge_id, ts: _, actor, reason, source: _ } = self;
        id("tenant", tenant)?;
        id("event_id", event_id)?;
        id("customer_id", customer_id)?;
        id("badge_id", badge_id)?;
        id("actor", actor)?;
        optional_id("reason", reason)
    }
}

impl Validate for pb::BadgeDefinition {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::BadgeDefinition {
            id: badge_id, name, description, criteria, icon_url, rank: _, benefits, active: _, validity_ms: _,
            expires_at: _, rule, retro: _, rule_saved_at: _, inactive_since: _,
        } = self;
        id("badge.id", badge_id)?;
        id("badge.name", name)?;
        long_text("badge.description", description)?;
        long_text("badge.criteria", criteria)?;
        long_text("badge.icon_url", icon_url)?;
        list("badge.benefits", benefits)?;
        for benefit in benefits {
            text("badge.benefits", benefit)?;
        }
        rule.as_ref().map_or(Ok(()), |rule| text("badge.rule.event_name", &rule.event_name))
    }
}

/// Descriptions and URLs: longer than ids, still bounded.
fn long_text(field: &'static str, value: &str) -> Result<(), InvalidRecord> {
    if value.len() > MAX_TEXT_LEN {
        return Err(InvalidRecord::TooLong { field });
    }
    Ok(())
}

/// The longest description, criteria text or icon URL a badge may have.
pub const MAX_TEXT_LEN: usize = 4096;

impl Validate for pb::SaveBadgeRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::SaveBadgeRequest { tenant, badge } = self;
        id("tenant", tenant)?;
        badge.as_ref().ok_or(InvalidRecord::Missing("badge"))?.validate()
    }
}

impl Validate for pb::SaveBadgesRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::SaveBadgesRequest { tenant, badges } = self;
        id("tenant", tenant)?;
        if badges.len() > touchstone_core::badges::MAX_BADGES {
            return Err(InvalidRecord::TooMany { field: "badges", len: badges.len() });
        }
        badges.iter().try_for_each(Validate::validate)
    }
}

impl Validate for pb::ListBadgesRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::ListBadgesRequest { tenant } = self;
        id("tenant", tenant)
    }
}

impl Validate for pb::SetBadgeActiveRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::SetBadgeActiveRequest { tenant, badge_id, active: _ } = self;
        id("tenant", tenant)?;
        id("badge_id", badge_id)
    }
}

impl Validate for pb::BadgeTimelineRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::BadgeTimelineRequest { tenant, customer_id, badge_id, range: _, page_size: _, page_token } = self;
        id("tenant", tenant)?;
        id("customer_id", customer_id)?;
        optional_id("badge_id", badge_id)?;
        long_text("page_token", page_token)
    }
}

impl Validate for pb::BadgeStatsRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::BadgeStatsRequest { tenant, badge_id, range: _ } = self;
        id("tenant", tenant)?;
        id("badge_id", badge_id)
    }
}

impl Validate for pb::WatchBadgeEventsRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::WatchBadgeEventsRequest { tenant, after, from_start: _, badge_id } = self;
        id("tenant", tenant)?;
        optional_id("badge_id", badge_id)?;
        long_text("after", after)
    }
}

impl Validate for pb::TrophyCaseRequest {
    fn validate(&self) -> Result<(), InvalidRecord> {
        let pb::TrophyCaseRequest { tenant, customer_id } = self;
        id("tenant", tenant)?;
        id("customer_id", customer_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_tenant_is_named_in_the_refusal() {
        let request = pb::GetConfigRequest { tenant: "t".repeat(70_000) };
        assert_eq!(request.validate(), Err(InvalidRecord::TooLong { field: "tenant" }));
        let error = valid(tonic::Request::new(request)).unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(error.to_string().starts_with("tenant is longer than"), "{error}");
    }

    #[test]
    fn lists_currency_and_batches_agree_with_ingest() {
        let tags = (0..100).map(|i| i.to_string()).collect();
        let request = pb::UpdateSettingsRequest {
            tenant: "t".into(),
            excluded_tags: Some(pb::ExcludedTags { tags }),
            ..Default::default()
        };
        assert!(matches!(request.validate(), Err(InvalidRecord::TooMany { field: "excluded_tags", .. })));
        let request = pb::UpdateSettingsRequest { tenant: "t".into(), currency: Some("usd".into()), ..Default::default() };
        assert!(matches!(request.validate(), Err(InvalidRecord::BadCurrency(_))));
        let chunk = pb::IngestChunk { records: vec![pb::Record::default(); MAX_BATCH + 1] };
        assert!(matches!(chunk.validate(), Err(InvalidRecord::BatchTooLarge { .. })));
        let goal = pb::CreateGoalRequest { tenant: "t".into(), goal: None };
        assert_eq!(goal.validate(), Err(InvalidRecord::Missing("goal")));
    }
}
