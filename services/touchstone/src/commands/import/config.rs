//! `touchstone import config`: each tenant section of `config.json` becomes one
//! `UpdateSettings` call, one `CreateGoal` call per goal and one `SaveBadge` call per badge.
//! A refused goal or badge is reported and the rest still go in; re-importing the same file
//! changes nothing.

use super::ImportError;
use super::client::{self, ClientError};
use crate::CommandResult;
use std::path::Path;
use std::process::ExitCode;
use touchstone_core::files::{TenantConfigFile, parse_config};
use touchstone_proto::convert::{channel_to_pb, touch_kind_to_pb};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::config_service_client::ConfigServiceClient;

/// What the server did with the file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    tenants: usize,
    goals_created: usize,
    goals_unchanged: usize,
    badges_created: usize,
    badges_saved_again: usize,
    refused: usize,
}

pub async fn import_config(file: &Path, server: &str) -> CommandResult {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| ImportError::Read { file: name.clone(), source })?;
    let tenants =
        parse_config(&text).map_err(|err| ImportError::Config { file: name.clone(), message: err.to_string() })?;
    let mut config = ConfigServiceClient::new(client::connect(server).await?);
    let mut outcome = Outcome::default();
    for tenant in &tenants {
        apply_tenant(&mut config, server, &name, tenant, &mut outcome).await?;
    }
    let Outcome { tenants, goals_created, goals_unchanged, badges_created, badges_saved_again, refused } = outcome;
    eprintln!(
        "{name}: {tenants} tenants, {goals_created} goals created, {goals_unchanged} unchanged, \
         {badges_created} badges created, {badges_saved_again} saved again, {refused} refused"
    );
    Ok(if refused == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Applies one tenant section. A refusal is printed and counted; only a lost connection
/// ends the import.
async fn apply_tenant(
    config: &mut ConfigServiceClient<client::Connection>,
    server: &str,
    file: &str,
    section: &TenantConfigFile,
    outcome: &mut Outcome,
) -> Result<(), ClientError> {
    outcome.tenants += 1;
    let tenant = &section.tenant;
    if let Some(request) = settings_request(section) {
        match config.update_settings(request).await {
            Ok(_) => {}
            Err(status) => refused(ClientError::from_status(server, status), outcome, |message| {
                format!("{file}: tenant {tenant}: {message}")
            })?,
        }
    }
    for goal in &section.goals {
        let request = pb::CreateGoalRequest { tenant: tenant.clone(), goal: Some(goal.clone().into()) };
        match config.create_goal(request).await {
            Ok(reply) if reply.get_ref().created => outcome.goals_created += 1,
            Ok(_) => outcome.goals_unchanged += 1,
            Err(status) => refused(ClientError::from_status(server, status), outcome, |message| {
                format!("{file}: tenant {tenant} goal {}: {message}", goal.id)
            })?,
        }
    }
    for badge in &section.badges {
        let request = pb::SaveBadgeRequest { tenant: tenant.clone(), badge: Some(badge.clone().into()) };
        match config.save_badge(request).await {
            Ok(reply) if reply.get_ref().created => outcome.badges_created += 1,
            Ok(_) => outcome.badges_saved_again += 1,
            Err(status) => refused(ClientError::from_status(server, status), outcome, |message| {
                format!("{file}: tenant {tenant} badge {}: {message}", badge.id)
            })?,
        }
    }
    Ok(())
}

/// Prints a refusal (the server's message only) and counts it; passes on a connection
/// failure and a missing or unknown key, which every later call would meet the same way.
fn refused(error: ClientError, outcome: &mut Outcome, report: impl FnOnce(&str) -> String) -> Result<(), ClientError> {
    match error {
        ClientError::Status { code: tonic::Code::Unauthenticated, .. } => Err(error),
        ClientError::Status { message, .. } => {
            eprintln!("{}", report(&message));
            outcome.refused += 1;
            Ok(())
        }
        ClientError::Unreachable { .. } | ClientError::BadAddress { .. } => Err(error),
    }
}

/// The `UpdateSettings` call for a section, or none when the section sets nothing (so that a
/// file with goals only does not touch the settings).
fn settings_request(section: &TenantConfigFile) -> Option<pb::UpdateSettingsRequest> {
    let TenantConfigFile { tenant, settings, currency, excluded_tags, decay_half_life_ms, holdouts, goals: _, badges: _ } = section;
    if settings.is_empty() && currency.is_none() && excluded_tags.is_none() && decay_half_life_ms.is_none() && holdouts.is_none() {
        return None;
    }
    Some(pb::UpdateSettingsRequest {
        tenant: tenant.clone(),
        settings: settings
            .iter()
            .map(|(channel, setting)| pb::ChannelSetting {
                channel: channel_to_pb(*channel).into(),
                connect_on: touch_kind_to_pb(setting.connect_on).into(),
                window_ms: setting.window_ms,
            })
            .collect(),
        currency: currency.clone(),
        excluded_tags: excluded_tags.as_ref().map(|tags| pb::ExcludedTags { tags: tags.clone() }),
        decay_half_life_ms: *decay_half_life_ms,
        holdouts: holdouts.clone().map(Into::into),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Vec<TenantConfigFile> {
        parse_config(text).unwrap()
    }

    #[test]
    fn a_tenant_section_becomes_one_settings_request() {
        let text = r#"{"tenants": {"shop": {"settings": {"PUSH": {"connect_on": "OPENED", "window_ms": 3600000},
            "EMAIL": {"connect_on": "CLICKED", "window_ms": 60000}},
            "currency": "EUR", "excluded_tags": ["transactional"], "goals": []}}}"#;
        let request = settings_request(&sections(text)[0]).unwrap();
        assert_eq!(request.tenant, "shop");
        assert_eq!(request.currency.as_deref(), Some("EUR"));
        assert_eq!(request.excluded_tags, Some(pb::ExcludedTags { tags: vec!["transactional".into()] }));
        let mut settings: Vec<_> = request.settings.iter().map(|s| (s.channel, s.connect_on, s.window_ms)).collect();
        settings.sort();
        assert_eq!(
            settings,
            vec![
                (pb::Channel::Push as i32, pb::TouchKind::Opened as i32, 3_600_000),
                (pb::Channel::Email as i32, pb::TouchKind::Clicked as i32, 60_000),
            ]
        );
    }

    #[test]
    fn absent_currency_and_tags_stay_unset_so_the_server_keeps_them() {
        let text = r#"{"tenants": {"shop": {"settings": {"SMS": {"connect_on": "DELIVERED", "window_ms": 1}}}}}"#;
        let request = settings_request(&sections(text)[0]).unwrap();
        assert_eq!((request.currency, request.excluded_tags), (None, None));
    }

    #[test]
    fn a_section_with_goals_only_sends_no_settings() {
        let text = r#"{"tenants": {"shop": {"goals": [{"id": "checkin", "kind": "EVENT", "event_name": "checkin"}]}}}"#;
        assert_eq!(settings_request(&sections(text)[0]), None);
    }

    #[test]
    fn refusals_are_counted_and_printed_but_a_lost_server_ends_the_import() {
        let mut outcome = Outcome::default();
        let refusal = ClientError::Status { code: tonic::Code::FailedPrecondition, message: "goal x differs".into(), retry_after: None };
        assert!(refused(refusal, &mut outcome, |m| format!("f: tenant t goal x: {m}")).is_ok());
        assert_eq!(outcome.refused, 1);
        let lost = ClientError::Unreachable { url: "u".into(), reason: "refused".into(), transient: true };
        assert!(refused(lost, &mut outcome, |m| m.to_owned()).is_err());
        assert_eq!(outcome.refused, 1);
    }
}
