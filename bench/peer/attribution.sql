-- Attribution step of the DuckDB peer: the rules of docs/behaviour/records-and-config.md and attribution.md over the loaded tables.
--
-- Inputs: messages_raw, records_raw (load.sql) and the config tables the script makes from
-- config.json, one row per tenant (named in config.json or seen in the files):
--   cfg_tenant  (tenant, currency, excluded_tags VARCHAR[])
--   cfg_channel (tenant, channel, connect_on, window_ms)      all four channels, defaults filled
--   cfg_goal    (tenant, goal_id, goal_pos, kind, statuses, categories, order_channels, event_name)
-- Output: `credited`, one row per conversion with its rule and credited message.

-- 1. Accept records like the import does --------------------------------------------------
-- A record the import rejects (shared/core/src/validate.rs: empty or >256-byte ids, times
-- outside 2000..2100, negative or absurd amounts, bad currency codes, unknown enum names) is
-- never stored, so it must not shadow a later good record with the same key either:
-- validate first, then keep the first line per key.

CREATE MACRO id_ok(s) AS s IS NOT NULL AND s <> '' AND strlen(s) <= 256;
CREATE MACRO opt_id_ok(s) AS s IS NULL OR strlen(s) <= 256;
CREATE MACRO ts_ok(t) AS t >= 946684800000 AND t < 4102444800000;   -- [2000-01-01, 2100-01-01)

-- Messages: the first registration of (tenant, msg_hash) stands.
CREATE TABLE messages AS
SELECT tenant, msg_hash, coalesce(campaign_id, '') AS campaign_id, channel,
       coalesce(tags, []) AS tags
FROM messages_raw
WHERE id_ok(tenant) AND id_ok(msg_hash) AND ts_ok(sent_at)
  AND coalesce(strlen(campaign_id), 0) <= 256
  AND channel IN ('PUSH', 'EMAIL', 'SMS', 'IN_APP')
QUALIFY row_number() OVER (PARTITION BY tenant, msg_hash ORDER BY rowid) = 1;

-- Touches, events, orders and badges share one event_id namespace per tenant: the first
-- line of (tenant, event_id) stands, whatever its type (a badge can shadow a touch).
CREATE TABLE accepted AS
SELECT *
FROM records_raw
WHERE id_ok(tenant) AND id_ok(event_id) AND ts_ok(ts)
  AND CASE type
        WHEN 'touch' THEN id_ok(msg_hash) AND id_ok(customer_id)
                          AND touch IN ('SENT', 'DELIVERED', 'OPENED', 'CLICKED')
        WHEN 'event' THEN id_ok(customer_id) AND id_ok(name) AND opt_id_ok(msg_hash)
                          AND (value IS NULL OR (isfinite(value) AND abs(value) <= 1e12))
        WHEN 'order' THEN id_ok(order_id) AND id_ok(customer_id) AND id_ok(status)
                          AND opt_id_ok(msg_hash) AND amount_minor IS NOT NULL
                          AND amount_minor BETWEEN 0 AND 1000000000000
                          AND regexp_full_match(currency, '[A-Z]{3}')
        WHEN 'badge' THEN id_ok(customer_id) AND id_ok(badge_id)
                          AND action IN ('EARNED', 'REVOKED', 'EXPIRED')
                          AND source IN ('API', 'RULE', 'DIRECT_ISSUE', 'BULK_IMPORT', 'RETRO_EARN', 'MIGRATION')
        ELSE false
      END
QUALIFY row_number() OVER (PARTITION BY tenant, event_id ORDER BY rowid) = 1;

-- One narrow table per record type. Badges play no part past deduplication.
CREATE TABLE touches AS
SELECT tenant, event_id, msg_hash, customer_id, touch AS kind, ts
FROM accepted WHERE type = 'touch';

-- An empty msg_hash is no msg_hash. Values are exact micros (6 decimals, rounded half away
-- from zero like Touchstone), so sums are exact integers, not float sums.
CREATE TABLE events AS
SELECT tenant, event_id, customer_id, name, ts,
       coalesce(CAST(round(value * 1000000) AS BIGINT), 0) AS value_micros,
       nullif(msg_hash, '') AS msg_hash
FROM accepted WHERE type = 'event';

CREATE TABLE orders AS
SELECT tenant, event_id, order_id, customer_id, status, amount_minor, currency,
       coalesce(categories, []) AS categories, coalesce(channel, '') AS channel, ts,
       nullif(msg_hash, '') AS msg_hash
FROM accepted WHERE type = 'order';

-- 2. Messages that can be credited ----------------------------------------------------------
-- Registered and carrying no excluded tag; with the connect_on/window_ms of their channel.
CREATE TABLE creditable AS
SELECT m.tenant, m.msg_hash, m.channel, s.connect_on, s.window_ms
FROM messages m
JOIN cfg_tenant c ON c.tenant = m.tenant
JOIN cfg_channel s ON s.tenant = m.tenant AND s.channel = m.channel
WHERE NOT list_has_any(m.tags, c.excluded_tags);

-- 3. Conversions --------------------------------------------------------------------------
CREATE TABLE conversions AS
-- ORDER goals: once per order, at its earliest (ts, event_id) status record that has a goal
-- status, shares a category and an order channel with the goal (empty lists = any) and is in
-- the tenant currency. Non-qualifying records (REFUNDED, foreign currency, ...) are ignored.
WITH order_conversions AS (
    SELECT g.tenant, g.goal_id, o.order_id AS conv_key, o.customer_id, o.ts,
           o.amount_minor * 1000000 AS value_micros, o.msg_hash
    FROM orders o
    JOIN cfg_tenant c ON c.tenant = o.tenant AND c.currency = o.currency
    JOIN cfg_goal g ON g.tenant = o.tenant AND g.kind = 'ORDER'
    WHERE list_contains(g.statuses, o.status)
      AND (len(g.categories) = 0 OR list_has_any(o.categories, g.categories))
      AND (len(g.order_channels) = 0 OR list_contains(g.order_channels, o.channel))
    QUALIFY row_number() OVER (PARTITION BY g.tenant, g.goal_id, o.order_id
                               ORDER BY o.ts, o.event_id) = 1
),
-- EVENT goals: every event of the goal's name converts, worth its value (or 0).
event_conversions AS (
    SELECT g.tenant, g.goal_id, e.event_id AS conv_key, e.customer_id, e.ts,
           e.value_micros, e.msg_hash
    FROM events e
    JOIN cfg_goal g ON g.tenant = e.tenant AND g.kind = 'EVENT' AND g.event_name = e.name
)
SELECT * FROM order_conversions
UNION ALL
SELECT * FROM event_conversions;

-- 4. Credit: explicit, else last touch, else unattributed -----------------------------------
CREATE TABLE credited AS
WITH explicit AS (
    -- The converting record names a creditable message.
    SELECT cv.*, cr.msg_hash AS explicit_hash
    FROM conversions cv
    LEFT JOIN creditable cr ON cr.tenant = cv.tenant AND cr.msg_hash = cv.msg_hash
),
connecting AS (
    -- Touches that can explain a conversion: a creditable message's touch of the kind its
    -- channel connects on. Equal times go to the greater event_id, so keep just that one
    -- per (customer, channel, ts): the ASOF JOIN below then has no ties to break.
    SELECT t.tenant, t.customer_id, cr.channel, t.ts,
           max(t.event_id) AS touch_event_id,
           arg_max(t.msg_hash, t.event_id) AS msg_hash
    FROM touches t
    JOIN creditable cr ON cr.tenant = t.tenant AND cr.msg_hash = t.msg_hash AND cr.connect_on = t.kind
    GROUP BY ALL
),
per_channel AS (
    -- Windows differ per channel, so the customer's latest connecting touch at or before the
    -- conversion may be out of its (short) window while an older one of a longer-window
    -- channel is in. Hence one ASOF lookup per channel: the latest touch of that channel at
    -- or before the conversion, kept if within that channel's window (both ends inclusive).
    SELECT cv.tenant, cv.goal_id, cv.conv_key, ct.ts AS touch_ts, ct.touch_event_id, ct.msg_hash
    FROM explicit cv
    JOIN cfg_channel ch ON ch.tenant = cv.tenant
    ASOF JOIN connecting ct
      ON ct.tenant = cv.tenant AND ct.customer_id = cv.customer_id
     AND ct.channel = ch.channel AND ct.ts <= cv.ts
    WHERE cv.explicit_hash IS NULL
      AND cv.ts - ct.ts <= ch.window_ms
),
last_touch AS (
    -- Across channels: the latest touch wins, equal times the greater event_id.
    SELECT tenant, goal_id, conv_key, msg_hash
    FROM per_channel
    QUALIFY row_number() OVER (PARTITION BY tenant, goal_id, conv_key
                               ORDER BY touch_ts DESC, touch_event_id DESC) = 1
)
SELECT e.tenant, e.goal_id, e.conv_key, e.ts, e.value_micros,
       CASE WHEN e.explicit_hash IS NOT NULL THEN 'EXPLICIT'
            WHEN lt.msg_hash IS NOT NULL THEN 'LAST_TOUCH'
            ELSE 'UNATTRIBUTED' END AS rule,
       coalesce(e.explicit_hash, lt.msg_hash) AS credited_hash
FROM explicit e
LEFT JOIN last_touch lt USING (tenant, goal_id, conv_key);
