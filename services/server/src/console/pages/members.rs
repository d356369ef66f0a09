//! The console's pages: member care: a customer's trophy case and badge timeline.

use super::*;

/// Timeline entries on a member-care page.
const TIMELINE_PAGE: u32 = 50;

pub async fn members(State(console): State<Arc<Console>>, Path(tenant): Path<String>, Query(params): Query<Params>, headers: HeaderMap) -> Page {
    let caller = console.caller_for(&headers, &tenant)?;
    let nav = console.nav(&tenant, "members", &params).await?;
    let customer_id = params.customer.clone().unwrap_or_default();
    let mut page = MembersPage { nav, customer_id: customer_id.clone(), held: Vec::new(), locked: Vec::new(), timeline: Vec::new(), next_page: None, looked_up: false, no_data: false };
    if customer_id.is_empty() {
        return Ok(html(&page).into_response());
    }
    page.looked_up = true;
    let case = console.query.get_trophy_case(call(pb::TrophyCaseRequest { tenant: tenant.clone(), customer_id: customer_id.clone() }, &caller)).await?.into_inner();
    let book = console.badges.badge_book(&tenant).await?;
    let currency = console.config(&tenant).await?.currency;
    let icon = |badge_id: &str| book.get(badge_id).map(|badge| badge.icon_url.clone()).unwrap_or_default();
    let no_progress = case.locked.iter().all(|badge| badge.progress.as_ref().is_none_or(|p| p.current == 0));
    page.held = case
        .held
        .into_iter()
        .map(|badge| HeldView {
            icon_url: icon(&badge.badge_id),
            earned_at: time(badge.earned_at),
            expires_at: badge.expires_at.map_or_else(|| "does not expire".to_owned(), |at| format!("expires {}", time(at))),
            badge_id: badge.badge_id,
            name: badge.name,
            rank: badge.rank,
        })
        .collect();
    page.locked = case
        .locked
        .into_iter()
        .map(|badge| {
            // A spend rule counts minor units of the tenant's currency.
            let spend = book.get(&badge.badge_id).and_then(|b| b.rule.as_ref()).is_some_and(|rule| matches!(rule.kind, RuleKind::Spend { .. }));
            let amount = |minor: i64| if spend { format_money(i128::from(minor) * 1_000_000, &currency) } else { minor.to_string() };
            let (progress, percent) = match badge.progress {
                Some(p) if p.target > 0 => (format!("{} of {}", amount(p.current), amount(p.target)), (p.current.clamp(0, p.target) * 100 / p.target)),
                _ => (String::new(), 0),
            };
            LockedView { icon_url: icon(&badge.badge_id), badge_id: badge.badge_id, name: badge.name, rank: badge.rank, criteria: badge.criteria, progress, percent }
        })
        .collect();
    let request = pb::BadgeTimelineRequest {
        tenant: tenant.clone(),
        customer_id: customer_id.clone(),
        badge_id: None,
        range: None,
        page_size: TIMELINE_PAGE,
        page_token: params.page.clone().unwrap_or_default(),
    };
    let timeline = console.query.get_badge_timeline(call(request, &caller)).await?.into_inner();
    page.timeline = timeline
        .entries
        .into_iter()
        .map(|entry| TimelineView {
            ts: time(entry.ts),
            ts_ms: entry.ts,
            // The documented names, as the CLI's timeline prints them.
            action: badge_action_from_pb(entry.action).map_or("UNKNOWN", |action| action.as_str()).to_owned(),
            source: badge_source_from_pb(entry.source).map_or("UNKNOWN", |source| source.as_str()).to_owned(),
            reason: entry.reason.unwrap_or_default(),
            event_id: entry.event_id,
            badge_id: entry.badge_id,
        })
        .collect();
    // A later page of the timeline is not the whole history: only the first says "nothing".
    let first_page = params.page.as_deref().is_none_or(str::is_empty);
    page.no_data = first_page && page.held.is_empty() && page.timeline.is_empty() && no_progress;
    if !timeline.next_page_token.is_empty() {
        page.next_page = Some(format!(
            "/t/{}/members?customer={}&page={}&{}",
            encode(&tenant),
            encode(&customer_id),
            encode(&timeline.next_page_token),
            page.nav.range.query
        ));
    }
    Ok(html(&page).into_response())
}
