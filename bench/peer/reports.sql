-- Report step of the DuckDB peer: docs/behaviour/reports.md over the whole period.
--
-- `touchstone report` without --from/--to asks for [2000-01-01, 2100-01-01): every accepted
-- record (validation keeps every time inside it), so no range filter is needed here.
-- Each query below is run on its own by duckdb_peer.py, which puts the rows together into
-- the JSON of docs/behaviour/reports.md. Sections start with `-- query: NAME`.

-- query: campaign_touches
-- Touches counted per campaign of a registered message with a campaign (excluded messages
-- too: exclusion only stops crediting).
SELECT m.tenant, m.campaign_id,
       count(*) FILTER (WHERE t.kind = 'SENT')      AS sent,
       count(*) FILTER (WHERE t.kind = 'DELIVERED') AS delivered,
       count(*) FILTER (WHERE t.kind = 'OPENED')    AS opened,
       count(*) FILTER (WHERE t.kind = 'CLICKED')   AS clicked
FROM touches t
JOIN messages m ON m.tenant = t.tenant AND m.msg_hash = t.msg_hash
WHERE m.campaign_id <> ''
GROUP BY ALL;

-- query: campaign_event_hits
-- App events carrying a campaign message's msg_hash, per event name.
SELECT m.tenant, m.campaign_id, e.name, count(*) AS hits
FROM events e
JOIN messages m ON m.tenant = e.tenant AND m.msg_hash = e.msg_hash
WHERE m.campaign_id <> ''
GROUP BY ALL;

-- query: campaign_goals
-- Conversions credited (explicitly or by last touch) to the campaign's messages, per goal.
SELECT m.tenant, m.campaign_id, c.goal_id,
       count(*) AS conversions, sum(c.value_micros) AS value_micros
FROM credited c
JOIN messages m ON m.tenant = c.tenant AND m.msg_hash = c.credited_hash
WHERE m.campaign_id <> ''
GROUP BY ALL;

-- query: goal_kpis
-- Every conversion of a goal split by rule (the script lists every goal, zeros included).
SELECT tenant, goal_id, rule, count(*) AS conversions, sum(value_micros) AS value_micros
FROM credited
GROUP BY ALL;
