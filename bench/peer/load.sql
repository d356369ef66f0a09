-- Load step of the DuckDB peer: the two bulk files of docs/behaviour/records-and-config.md into tables, as they are.
--
-- {messages_path} and {records_path} are filled in by duckdb_peer.py (quoted SQL strings).
-- The three config tables (cfg_tenant, cfg_channel, cfg_goal) are created by the script from
-- config.json: it is a few lines of nested JSON, easier to read with Python than with SQL.
--
-- Columns are named explicitly: unknown fields are ignored, missing optional ones are NULL,
-- and a line that does not parse is skipped (ignore_errors) like the import skips it.
-- The tables keep file order (DuckDB preserves insertion order by default), so `rowid` is the
-- line order that decides "first arrival stands" below.

CREATE TABLE messages_raw AS
SELECT *
FROM read_json({messages_path},
    format = 'newline_delimited',
    ignore_errors = true,
    columns = {
        tenant: 'VARCHAR', msg_hash: 'VARCHAR', campaign_id: 'VARCHAR',
        channel: 'VARCHAR', tags: 'VARCHAR[]', sent_at: 'BIGINT'
    });

-- One table for all four record types: the union of their fields.
CREATE TABLE records_raw AS
SELECT *
FROM read_json({records_path},
    format = 'newline_delimited',
    ignore_errors = true,
    columns = {
        type: 'VARCHAR', tenant: 'VARCHAR', event_id: 'VARCHAR', ts: 'BIGINT',
        customer_id: 'VARCHAR', msg_hash: 'VARCHAR',
        touch: 'VARCHAR',                                   -- touch
        name: 'VARCHAR', value: 'DOUBLE',                   -- event
        order_id: 'VARCHAR', status: 'VARCHAR', amount_minor: 'BIGINT', currency: 'VARCHAR',
        categories: 'VARCHAR[]', channel: 'VARCHAR',        -- order
        badge_id: 'VARCHAR', action: 'VARCHAR', source: 'VARCHAR', reason: 'VARCHAR'  -- badge
    });
