//! `touchstone badges`: a customer's badge timeline and trophy case for support tools, bulk
//! CSV import of badge events (docs/behaviour/badges.md and cli.md), and beyond them a badge's figures
//! (`stats`) and a tenant's feed of badge events as JSON lines (`watch`).
//!
//! The timeline is fetched a page at a time until the last page, so the JSON holds the whole
//! timeline in the range. The CSV import reports each bad row with its line number and
//! imports the others; the format itself (columns, derived event ids) is the core's
//! `files::badge_csv`, whose domain events become protobuf only here, as they are sent.

use crate::commands::import::client::{self, ClientError, MAX_REPLY_BYTES};
use touchstone_reports::json::render;
use touchstone_reports::table::time_text;
use crate::commands::report::print;
use crate::CommandResult;
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use touchstone_core::files::badge_csv;
use touchstone_core::model::{BadgeAction, BadgeSource};
use touchstone_proto::convert::{badge_action_from_pb, badge_source_from_pb};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

/// Entries asked for per timeline page: the server's most.
const PAGE_SIZE: u32 = 1_000;
/// Badge events per `RecordBadgeEvents` call of an import.
const IMPORT_BATCH: usize = 5_000;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BadgeFormat {
    Json,
    Table,
}

#[derive(Subcommand)]
pub enum BadgesCommand {
    /// A customer's badge events, stored and derived, newest first.
    Timeline {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        customer: String,
        /// Only this badge.
        #[arg(long)]
        badge: Option<String>,
        /// Start of the range, epoch ms, inclusive (default: unbounded).
        #[arg(long)]
        from: Option<i64>,
        /// End of the range, epoch ms, exclusive (default: unbounded).
        #[arg(long)]
        to: Option<i64>,
        #[arg(long, value_enum, default_value = "table")]
        format: BadgeFormat,
        #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
        server: String,
    },
    /// The badges a customer holds now and the active ones it does not, with progress.
    TrophyCase {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        customer: String,
        #[arg(long, value_enum, default_value = "table")]
        format: BadgeFormat,
        #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
        server: String,
    },
    /// A badge's earns, revokes and expiries per UTC day over a range, and its holders now.
    Stats {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        badge: String,
        /// Start of the range, epoch ms, inclusive.
        #[arg(long)]
        from: i64,
        /// End of the range, epoch ms, exclusive (at most 1,100 days after --from).
        #[arg(long)]
        to: i64,
        #[arg(long, value_enum, default_value = "table")]
        format: BadgeFormat,
        #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
        server: String,
    },
    /// Follows a tenant's badge events as attribution accepts or derives them, one JSON
    /// object per line, until interrupted; each carries a `cursor` to resume after it.
    Watch {
        #[arg(long)]
        tenant: String,
        /// Only this badge.
        #[arg(long)]
        badge: Option<String>,
        /// Resume just past this cursor (default: only what comes next).
        #[arg(long, conflicts_with = "from_start")]
        after: Option<String>,
        /// Start with the oldest entry the feed keeps.
        #[arg(long)]
        from_start: bool,
        #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
        server: String,
    },
    /// Badge events from a CSV file: a header row, then
    /// `customer_id,badge_id,action,ts,source,reason,event_id` (ts in epoch ms or RFC 3339;
    /// empty source: BULK_IMPORT; empty event_id: derived from the row).
    Import {
        file: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
        server: String,
    },
}

pub async fn run(what: BadgesCommand) -> CommandResult {
    match what {
        BadgesCommand::Timeline { tenant, customer, badge, from, to, format, server } => {
            let request = pb::BadgeTimelineRequest {
                tenant,
                customer_id: customer,
                badge_id: badge,
                range: Some(pb::TimeRange { from_ms: from, to_ms: to }),
                page_size: PAGE_SIZE,
                page_token: String::new(),
            };
            let entries = whole_timeline(&server, request).await?;
            let output = match format {
                BadgeFormat::Json => render(&timeline_json(&entries)?)?,
                BadgeFormat::Table => timeline_table(&entries)?,
            };
            print(&output)?;
            Ok(ExitCode::SUCCESS)
        }
        BadgesCommand::TrophyCase { tenant, customer, format, server } => {
            let mut query = QueryServiceClient::new(client::connect(&server).await?).max_decoding_message_size(MAX_REPLY_BYTES);
            let request = pb::TrophyCaseRequest { tenant, customer_id: customer };
            let case =
                query.get_trophy_case(request).await.map_err(|status| ClientError::from_status(&server, status))?.into_inner();
            let output = match format {
                BadgeFormat::Json => render(&trophy_case_json(&case))?,
                BadgeFormat::Table => trophy_case_table(&case),
            };
            print(&output)?;
            Ok(ExitCode::SUCCESS)
        }
        BadgesCommand::Stats { tenant, badge, from, to, format, server } => {
            let mut query = QueryServiceClient::new(client::connect(&server).await?).max_decoding_message_size(MAX_REPLY_BYTES);
            let request = pb::BadgeStatsRequest { tenant, badge_id: badge, range: Some(pb::TimeRange { from_ms: Some(from), to_ms: Some(to) }) };
            let stats = query.get_badge_stats(request).await.map_err(|status| ClientError::from_status(&server, status))?.into_inner();
            let output = match format {
                BadgeFormat::Json => render(&stats_json(&stats))?,
                BadgeFormat::Table => stats_table(&stats),
            };
            print(&output)?;
            Ok(ExitCode::SUCCESS)
        }
        BadgesCommand::Watch { tenant, badge, after, from_start, server } => {
            let mut query = QueryServiceClient::new(client::connect(&server).await?).max_decoding_message_size(MAX_REPLY_BYTES);
            let request = pb::WatchBadgeEventsRequest { tenant, after: after.unwrap_or_default(), from_start, badge_id: badge };
            let mut feed = query.watch_badge_events(request).await.map_err(|status| ClientError::from_status(&server, status))?.into_inner();
            while let Some(item) = feed.message().await.map_err(|status| ClientError::from_status(&server, status))? {
                print(&format!("{}\n", feed_item_json(&item)?))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        BadgesCommand::Import { file, tenant, server } => import(&file, &tenant, &server).await,
    }
}

fn stats_json(stats: &pb::BadgeStats) -> Value {
    let days: Vec<Value> = stats
        .days
        .iter()
        .map(|d| {
            json!({"date": d.date, "day_ms": d.day_ms, "earned": d.earned, "revoked": d.revoked, "expired": d.expired,
                   "holders_at_end": d.holders_at_end})
        })
        .collect();
    json!({"badge_id": stats.badge_id, "earned": stats.earned, "revoked": stats.revoked, "expired": stats.expired,
           "holders_now": stats.holders_now, "now_ms": stats.now_ms, "days": days})
}

fn stats_table(stats: &pb::BadgeStats) -> String {
    use touchstone_reports::table::{Align, Table};
    let column = |title: &str, align| (title.to_owned(), align);
    let mut table = Table::new(vec![
        column("DATE", Align::Left),
        column("EARNED", Align::Right),
        column("REVOKED", Align::Right),
        column("EXPIRED", Align::Right),
        column("HOLDERS AT END", Align::Right),
    ]);
    for d in &stats.days {
        table.push(vec![d.date.clone(), d.earned.to_string(), d.revoked.to_string(), d.expired.to_string(), d.holders_at_end.to_string()]);
    }
    format!(
        "{}{}: {} earned, {} revoked, {} expired in the range; {} holders now\n",
        table.render(),
        stats.badge_id,
        stats.earned,
        stats.revoked,
        stats.expired,
        stats.holders_now
    )
}

fn feed_item_json(item: &pb::BadgeFeedItem) -> Result<Value, String> {
    let entry = item.entry.as_ref().ok_or("a feed item without an entry")?;
    let change = match item.change() {
        pb::BadgeFeedChange::Added => "ADDED",
        pb::BadgeFeedChange::Removed => "REMOVED",
        pb::BadgeFeedChange::Unspecified => return Err("a feed item without a change".to_owned()),
    };
    Ok(json!({"cursor": item.cursor, "change": change, "customer_id": item.customer_id, "event_id": entry.event_id,
              "badge_id": entry.badge_id, "action": action_name(entry.action)?.as_str(), "ts": entry.ts,
              "source": source_name(entry.source)?.as_str(), "reason": entry.reason}))
}

/// Every page of the timeline, in order.
async fn whole_timeline(server: &str, mut request: pb::BadgeTimelineRequest) -> Result<Vec<pb::BadgeTimelineEntry>, ClientError> {
    let mut query = QueryServiceClient::new(client::connect(server).await?).max_decoding_message_size(MAX_REPLY_BYTES);
    let mut entries = Vec::new();
    loop {
        let page =
            query.get_badge_timeline(request.clone()).await.map_err(|status| ClientError::from_status(server, status))?.into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return Ok(entries);
        }
        request.page_token = page.next_page_token;
    }
}

/// A wire enum as its documented name (`EARNED`, `BULK_IMPORT`).
fn action_name(action: i32) -> Result<BadgeAction, String> {
    badge_action_from_pb(action).map_err(|err| format!("the server sent an unknown badge action: {err}"))
}

fn source_name(source: i32) -> Result<BadgeSource, String> {
    badge_source_from_pb(source).map_err(|err| format!("the server sent an unknown badge source: {err}"))
}

/// `[{"event_id", "badge_id", "action", "ts", "source", "reason"}, …]`, newest first.
fn timeline_json(entries: &[pb::BadgeTimelineEntry]) -> Result<Value, String> {
    entries
        .iter()
        .map(|entry| {
            let pb::BadgeTimelineEntry { event_id, badge_id, action, ts, source, reason } = entry;
            Ok(json!({
                "event_id": event_id,
                "badge_id": badge_id,
                "action": action_name(*action)?.as_str(),
                "ts": ts,
                "source": source_name(*source)?.as_str(),
                "reason": reason,
            }))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Value::Array)
}

/// `{"held": [{"badge_id", "name", "rank", "earned_at", "expires_at"}], "locked": [{"badge_id",
/// "name", "rank", "criteria", "progress"}]}`.
fn trophy_case_json(case: &pb::TrophyCase) -> Value {
    let held: Vec<Value> = case
        .held
        .iter()
        .map(|pb::HeldBadge { badge_id, name, rank, earned_at, expires_at }| {
            json!({"badge_id": badge_id, "name": name, "rank": rank, "earned_at": earned_at, "expires_at": expires_at})
        })
        .collect();
    let locked: Vec<Value> = case
        .locked
        .iter()
        .map(|pb::LockedBadge { badge_id, name, rank, criteria, progress }| {
            let progress = progress.as_ref().map(|p| json!({"current": p.current, "target": p.target}));
            json!({"badge_id": badge_id, "name": name, "rank": rank, "criteria": criteria, "progress": progress})
        })
        .collect();
    json!({"held": held, "locked": locked})
}

fn timeline_table(entries: &[pb::BadgeTimelineEntry]) -> Result<String, String> {
    use touchstone_reports::table::{Align, Table};
    let columns = ["TIME", "ACTION", "BADGE", "SOURCE", "REASON", "EVENT ID"];
    let mut table = Table::new(columns.iter().map(|title| (title.to_string(), Align::Left)).collect());
    for entry in entries {
        table.push(vec![
            time_text(entry.ts),
            action_name(entry.action)?.as_str().to_owned(),
            entry.badge_id.clone(),
            source_name(entry.source)?.as_str().to_owned(),
            entry.reason.clone().unwrap_or_default(),
            entry.event_id.clone(),
        ]);
    }
    Ok(format!("{}{} entries\n", table.render(), entries.len()))
}

fn trophy_case_table(case: &pb::TrophyCase) -> String {
    use touchstone_reports::table::{Align, Table};
    let column = |title: &str, align| (title.to_owned(), align);
    let mut held = Table::new(vec![
        column("RANK", Align::Right),
        column("BADGE", Align::Left),
        column("NAME", Align::Left),
        column("EARNED", Align::Left),
        column("EXPIRES", Align::Left),
    ]);
    for badge in &case.held {
        let expires = badge.expires_at.map_or_else(|| "never".to_owned(), time_text);
        // A badge held from imported history without a definition has no rank: it sorts last.
        let (rank, name) = match badge.rank {
            i64::MAX => ("-".to_owned(), "(not defined)".to_owned()),
            rank => (rank.to_string(), badge.name.clone()),
        };
        held.push(vec![rank, badge.badge_id.clone(), name, time_text(badge.earned_at), expires]);
    }
    let mut locked = Table::new(vec![
        column("RANK", Align::Right),
        column("BADGE", Align::Left),
        column("NAME", Align::Left),
        column("PROGRESS", Align::Right),
        column("CRITERIA", Align::Left),
    ]);
    for badge in &case.locked {
        let progress = badge.progress.as_ref().map_or_else(
            || "-".to_owned(),
            |p| match p.currency.as_str() {
                "" => format!("{} of {}", p.current, p.target),
                // A spend rule: money in major units, as people read it.
                currency => {
                    let money = |minor: i64| touchstone_core::currency::format_money(i128::from(minor) * 1_000_000, currency);
                    format!("{} of {}", money(p.current), money(p.target))
                }
            },
        );
        locked.push(vec![badge.rank.to_string(), badge.badge_id.clone(), badge.name.clone(), progress, badge.criteria.clone()]);
    }
    format!("HELD ({})\n{}\nLOCKED ({})\n{}", case.held.len(), held.render(), case.locked.len(), locked.render())
}

async fn import(file: &Path, tenant: &str, server: &str) -> CommandResult {
    let name = file.display().to_string();
    let text = std::fs::read(file).map_err(|err| format!("cannot read {name}: {err}"))?;
    let parsed = badge_csv::parse_csv(&text, tenant).map_err(|bad| format!("{name}:{}: {}", bad.line, bad.message))?;
    for bad in &parsed.bad {
        eprintln!("{name}:{}: {}", bad.line, bad.message);
    }
    let mut ingest = IngestServiceClient::new(client::connect(server).await?).max_decoding_message_size(MAX_REPLY_BYTES);
    let (mut accepted, mut duplicates, mut rejected) = (0u64, 0u64, parsed.bad.len() as u64);
    let mut retries = client::Retries::new(&name);
    for batch in parsed.events.chunks(IMPORT_BATCH) {
        let badges: Vec<pb::BadgeEvent> = batch.iter().map(|(_, event)| event.clone().into()).collect();
        // A batch that fails for a while is sent again: its event ids make that exact.
        let reply = loop {
            match ingest.record_badge_events(pb::RecordBadgeEventsRequest { badges: badges.clone() }).await {
                Ok(reply) => break reply.into_inner(),
                Err(status) => retries.wait(ClientError::from_status(server, status)).await?,
            }
        };
        retries.succeeded();
        accepted += reply.accepted;
        duplicates += reply.duplicates;
        for rejection in &reply.rejected {
            let line = usize::try_from(rejection.index).ok().and_then(|i| batch.get(i)).map_or(0, |(line, _)| *line);
            eprintln!("{name}:{line}: {}", rejection.reason);
            rejected += 1;
        }
    }
    let rows = parsed.events.len() as u64 + parsed.bad.len() as u64;
    eprintln!("{name}: {rows} rows, {accepted} accepted, {duplicates} duplicates, {rejected} rejected");
    Ok(if rejected == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_and_trophy_case_json_have_exactly_the_spec_shape() {
        let entry = pb::BadgeTimelineEntry {
            event_id: "rule:regular".into(),
            badge_id: "regular".into(),
            action: pb::BadgeAction::Earned.into(),
            ts: 7,
            source: pb::BadgeSource::RetroEarn.into(),
            reason: None,
        };
        assert_eq!(
            timeline_json(&[entry]).unwrap(),
            json!([{"event_id": "rule:regular", "badge_id": "regular", "action": "EARNED", "ts": 7,
                    "source": "RETRO_EARN", "reason": null}])
        );
        let case = pb::TrophyCase {
            held: vec![pb::HeldBadge { badge_id: "vip".into(), name: "VIP".into(), rank: 1, earned_at: 5, expires_at: None }],
            locked: vec![pb::LockedBadge {
                badge_id: "regular".into(),
                name: "Regular".into(),
                rank: 3,
                criteria: "5 check-ins".into(),
                progress: Some(pb::BadgeProgress { current: 3, target: 5, currency: String::new() }),
            }],
        };
        assert_eq!(
            trophy_case_json(&case),
            json!({"held": [{"badge_id": "vip", "name": "VIP", "rank": 1, "earned_at": 5, "expires_at": null}],
                   "locked": [{"badge_id": "regular", "name": "Regular", "rank": 3, "criteria": "5 check-ins",
                               "progress": {"current": 3, "target": 5}}]})
        );
    }

    /// A spend rule's progress reads as money in the table; the JSON keeps minor units.
    #[test]
    fn spend_progress_is_money_in_the_table_and_minor_units_in_json() {
        let case = pb::TrophyCase {
            held: Vec::new(),
            locked: vec![pb::LockedBadge {
                badge_id: "pt_fan".into(),
                name: "PT fan".into(),
                rank: 4,
                criteria: "spend 150 on the club".into(),
                progress: Some(pb::BadgeProgress { current: 13_701, target: 15_000, currency: "USD".into() }),
            }],
        };
        let table = trophy_case_table(&case);
        assert!(table.contains("137.01 USD of 150.00 USD") && !table.contains("13701"), "{table}");
        assert_eq!(trophy_case_json(&case)["locked"][0]["progress"], json!({"current": 13_701, "target": 15_000}));
    }

    #[test]
    fn a_held_badge_without_a_definition_shows_no_rank() {
        let held = pb::HeldBadge { badge_id: "legacy".into(), name: "legacy".into(), rank: i64::MAX, earned_at: 5, expires_at: None };
        let table = trophy_case_table(&pb::TrophyCase { held: vec![held], locked: Vec::new() });
        assert!(!table.contains(&i64::MAX.to_string()) && table.contains("(not defined)"), "{table}");
    }
}
