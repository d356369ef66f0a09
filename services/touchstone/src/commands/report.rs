//! `touchstone report`: campaign, message and goal reports from the query service, printed
//! as JSON (the documented shapes, exactly), CSV or an aligned table.
//!
//! The formats themselves are `touchstone_reports`', which the console's exports share.

use touchstone_reports::{explain, export, json, lift, models, rows, table};

use crate::commands::import::client::{self, ClientError, MAX_REPLY_BYTES};
use crate::{CommandResult, ExplainFormat, Format, LiftArgs, ReportArgs, ReportCommand, StatsArgs};
use rows::{GoalRow, StatsReport, Units};
use std::io::Write;
use std::process::ExitCode;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

pub async fn run(what: ReportCommand) -> CommandResult {
    let output = match what {
        ReportCommand::Campaigns(StatsArgs { report: args, goals }) => {
            let (mut query, request) = open(&args).await?;
            let request = pb::ListCampaignsRequest { tenant: request.tenant, range: request.range };
            let reply =
                query.list_campaigns(request).await.map_err(|status| ClientError::from_status(&args.server, status))?;
            let report = StatsReport::from_campaigns(reply.into_inner())?;
            match other_model(&args) {
                Some(model) => under_model(&mut query, &args, json::stats_json(&report), model, false).await?,
                None => render_stats(&report, args.format, goals)?,
            }
        }
        ReportCommand::Messages(StatsArgs { report: args, goals }) => {
            let (mut query, request) = open(&args).await?;
            let request =
                pb::ListMessageStatsRequest { tenant: request.tenant, range: request.range, campaign_id: None };
            let reply = query
                .list_message_stats(request)
                .await
                .map_err(|status| ClientError::from_status(&args.server, status))?;
            let report = StatsReport::from_messages(reply.into_inner())?;
            match other_model(&args) {
                Some(model) => under_model(&mut query, &args, json::stats_json(&report), model, true).await?,
                None => render_stats(&report, args.format, goals)?,
            }
        }
        ReportCommand::Goals(args) => {
            let (mut query, request) = open(&args).await?;
            let request = pb::GoalKpisRequest { tenant: request.tenant, range: request.range, goal_id: None, model: 0 };
            let reply =
                query.get_goal_kpis(request).await.map_err(|status| ClientError::from_status(&args.server, status))?;
            let (rows, units) = rows::goal_report(reply.into_inner())?;
            render_goals(&rows, &units, args.format)?
        }
        ReportCommand::Lift(LiftArgs { campaign, report: args }) => {
            let channel = client::connect(&args.server).await?;
            let mut query = QueryServiceClient::new(channel).max_decoding_message_size(MAX_REPLY_BYTES);
            let range = Some(pb::TimeRange { from_ms: args.from, to_ms: args.to });
            let request = pb::LiftRequest { tenant: args.tenant, campaign_id: campaign, goal_id: args.goal, range };
            let reply = query.get_lift(request).await.map_err(|status| ClientError::from_status(&args.server, status))?;
            let report = reply.into_inner();
            match args.format {
                ExplainFormat::Json => json::render(&lift::lift_json(&report))?,
                ExplainFormat::Table => lift::lift_table(&report),
            }
        }
        ReportCommand::Models(args) => {
            let channel = client::connect(&args.server).await?;
            let mut query = QueryServiceClient::new(channel).max_decoding_message_size(MAX_REPLY_BYTES);
            let range = Some(pb::TimeRange { from_ms: args.from, to_ms: args.to });
            let request = pb::ModelReportRequest { tenant: args.tenant, range, goal_id: args.goal, by_message: false, campaign_id: None };
            let reply = query.get_model_report(request).await.map_err(|status| ClientError::from_status(&args.server, status))?;
            let report = reply.into_inner();
            match args.format {
                ExplainFormat::Json => json::render(&models::models_json(&report))?,
                ExplainFormat::Table => models::models_table(&report)?,
            }
        }
        ReportCommand::Explain(args) => {
            let channel = client::connect(&args.server).await?;
            let mut query = QueryServiceClient::new(channel).max_decoding_message_size(MAX_REPLY_BYTES);
            let request = pb::ExplainConversionRequest { tenant: args.tenant, goal_id: args.goal, conversion_key: args.key };
            let reply = query.explain_conversion(request).await.map_err(|status| ClientError::from_status(&args.server, status))?;
            let explanation = reply.into_inner();
            match args.format {
                ExplainFormat::Json => json::render(&explain::explanation_json(&explanation))?,
                ExplainFormat::Table => explain::explanation_table(&explanation),
            }
        }
    };
    print(&output)?;
    Ok(ExitCode::SUCCESS)
}

/// What every report request carries.
struct Scope {
    tenant: String,
    range: Option<pb::TimeRange>,
}

/// Connects and reads the tenant and range of the request. The range is sent as given; the
/// server validates it (`from` after `to` is its `INVALID_ARGUMENT`).
async fn open(args: &ReportArgs) -> Result<(QueryServiceClient<client::Connection>, Scope), ClientError> {
    let channel = client::connect(&args.server).await?;
    let query = QueryServiceClient::new(channel).max_decoding_message_size(MAX_REPLY_BYTES);
    Ok((
        query,
        Scope { tenant: args.tenant.clone(), range: Some(pb::TimeRange { from_ms: args.from, to_ms: args.to }) },
    ))
}

/// `--model`, when it names a model other than last touch (the reports' own credit).
fn other_model(args: &ReportArgs) -> Option<&str> {
    args.model.as_deref().filter(|model| *model != touchstone_core::models::Model::LastTouch.as_str())
}

/// A campaign or message report's JSON with each goal's credit under `model`.
async fn under_model(
    query: &mut QueryServiceClient<client::Connection>,
    args: &ReportArgs,
    stats: serde_json::Value,
    model: &str,
    by_message: bool,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    if !matches!(args.format, Format::Json) {
        return Err(format!("--model {model} gives fractional conversions, as JSON only: add --format json").into());
    }
    let range = Some(pb::TimeRange { from_ms: args.from, to_ms: args.to });
    let request = pb::ModelReportRequest { tenant: args.tenant.clone(), range, goal_id: None, by_message, campaign_id: None };
    let credit = query.get_model_report(request).await.map_err(|status| ClientError::from_status(&args.server, status))?.into_inner();
    Ok(json::render(&models::under_model(stats, &credit, model, by_message))?)
}

/// `goals` (`--goals [G,…]`) picks the table's goals only: json and csv always carry every goal.
fn render_stats(
    report: &StatsReport,
    format: Format,
    goals: Option<Vec<String>>,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let goals = match goals {
        None => table::GoalColumns::Default,
        Some(named) if named.is_empty() => table::GoalColumns::All,
        Some(named) => table::GoalColumns::Only(named),
    };
    Ok(match format {
        Format::Json => json::render(&json::stats_json(report))?,
        Format::Csv => export::render_stats(report)?,
        Format::Table => table::render_stats(report, &goals)?,
    })
}

fn render_goals(rows: &[GoalRow], units: &Units, format: Format) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    Ok(match format {
        Format::Json => json::render(&json::goals_json(rows))?,
        Format::Csv => export::render_goals(rows)?,
        Format::Table => table::render_goals(rows, units),
    })
}

/// Writes the report to stdout. A closed pipe (`| head`) is not an error.
pub(crate) fn print(output: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    // Every format ends with a newline, so the shell prompt (or the next output) starts on its own line.
    let newline: &[u8] = if output.ends_with('\n') { b"" } else { b"\n" };
    match stdout.write_all(output.as_bytes()).and_then(|()| stdout.write_all(newline)).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result,
    }
}
