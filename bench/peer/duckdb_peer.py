#!/usr/bin/env python3
"""The DuckDB peer of the Touchstone benchmark: what a team would do instead of Touchstone.

Loads the bulk files of docs/behaviour/records-and-config.md into an in-memory DuckDB database and computes the
attribution of docs/behaviour/attribution.md and the whole-period reports of docs/behaviour/reports.md in SQL
(load.sql, attribution.sql, reports.sql beside this file).

    python3 bench/peer/duckdb_peer.py DATA_DIR OUT_DIR [--threads N]

Writes OUT_DIR/<tenant>.campaigns.json and OUT_DIR/<tenant>.goals.json in the shape of
`touchstone report campaigns|goals --format json`, and prints one line of JSON:
{"load_s", "attribute_s", "report_s", "total_s", "records", "threads", "duckdb"}.
Writing the output files is not timed.
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
MICROS = 1_000_000
CHANNELS = ("PUSH", "EMAIL", "SMS", "IN_APP")
TOUCH_KINDS = ("SENT", "DELIVERED", "OPENED", "CLICKED")
MAX_GOALS = 5
MAX_WINDOW_MS = 366 * 86_400_000
DAY_MS = 86_400_000

# TenantConfig::defaults in shared/core/src/config.rs.
DEFAULT_SETTINGS = {
    "PUSH": ("OPENED", DAY_MS),
    "EMAIL": ("CLICKED", 7 * DAY_MS),
    "SMS": ("CLICKED", DAY_MS),
    "IN_APP": ("OPENED", DAY_MS),
}
DEFAULT_CURRENCY = "USD"
DEFAULT_GOAL = {"id": "orders", "kind": "ORDER", "statuses": ["DELIVERED", "PAID", "PLACED"],
                "categories": [], "order_channels": []}


def sql_string(text):
    return "'" + text.replace("'", "''") + "'"


def normalized_goal(raw):
    """A goal as Touchstone saves it (lists sorted and deduplicated), or ValueError."""
    goal_id, kind = raw.get("id", ""), raw.get("kind")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", goal_id):
        raise ValueError(f"goal id {goal_id!r} is invalid")
    if kind == "ORDER":
        goal = {"id": goal_id, "kind": kind}
        for key in ("statuses", "categories", "order_channels"):
            goal[key] = sorted(set(raw.get(key) or []))
        if all(s == "" for s in goal["statuses"]):
            raise ValueError(f"ORDER goal {goal_id!r} needs at least one status")
        return goal
    if kind == "EVENT":
        if not raw.get("event_name"):
            raise ValueError(f"EVENT goal {goal_id!r} needs an event_name")
        return {"id": goal_id, "kind": kind, "event_name": raw["event_name"]}
    raise ValueError(f"goal {goal_id!r}: unknown kind {kind!r}")


def tenant_config(section):
    """One tenant's config: the defaults with a config.json section applied like the import."""
    settings = dict(DEFAULT_SETTINGS)
    for channel, setting in (section.get("settings") or {}).items():
        if channel not in CHANNELS or setting["connect_on"] not in TOUCH_KINDS:
            raise ValueError(f"unknown channel or touch kind in {channel}: {setting}")
        if not 0 <= setting["window_ms"] <= MAX_WINDOW_MS:
            raise ValueError(f"{channel} window_ms {setting['window_ms']} out of range")
        settings[channel] = (setting["connect_on"], setting["window_ms"])
    currency = section.get("currency")
    if currency is None:
        currency = DEFAULT_CURRENCY
    elif not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError(f"currency {currency!r} is not an ISO 4217 code")
    excluded = sorted(set(section.get("excluded_tags") or []))
    goals = [DEFAULT_GOAL]
    for raw in section.get("goals") or []:
        goal = normalized_goal(raw)
        saved = next((g for g in goals if g["id"] == goal["id"]), None)
        if saved is not None:
            if saved != goal:
                raise ValueError(f"goal {goal['id']!r} differs from the saved one")
            continue
        if len(goals) >= MAX_GOALS:
            raise ValueError("more than 5 goals")
        goals.append(goal)
    return {"settings": settings, "currency": currency, "excluded_tags": excluded, "goals": goals}


def create_config_tables(con, configs):
    con.execute("CREATE TABLE cfg_tenant (tenant VARCHAR, currency VARCHAR, excluded_tags VARCHAR[])")
    con.execute("CREATE TABLE cfg_channel (tenant VARCHAR, channel VARCHAR, connect_on VARCHAR, window_ms BIGINT)")
    con.execute("CREATE TABLE cfg_goal (tenant VARCHAR, goal_id VARCHAR, goal_pos INTEGER, kind VARCHAR, "
                "statuses VARCHAR[], categories VARCHAR[], order_channels VARCHAR[], event_name VARCHAR)")
    con.executemany("INSERT INTO cfg_tenant VALUES (?, ?, ?)",
                    [(t, c["currency"], c["excluded_tags"]) for t, c in configs.items()])
    con.executemany("INSERT INTO cfg_channel VALUES (?, ?, ?, ?)",
                    [(t, ch, on, w) for t, c in configs.items() for ch, (on, w) in c["settings"].items()])
    con.executemany("INSERT INTO cfg_goal VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
        (t, g["id"], pos, g["kind"], g.get("statuses", []), g.get("categories", []),
         g.get("order_channels", []), g.get("event_name"))
        for t, c in configs.items() for pos, g in enumerate(c["goals"])])


def sql_queries(path):
    """The `-- query: NAME` sections of a .sql file, by name."""
    queries, name, lines = {}, None, []
    for line in path.read_text().splitlines():
        match = re.match(r"--\s*query:\s*(\w+)", line)
        if match:
            if name:
                queries[name] = "\n".join(lines)
            name, lines = match.group(1), []
        elif name:
            lines.append(line)
    if name:
        queries[name] = "\n".join(lines)
    return queries


def value_json(micros):
    """An exact micros sum as Touchstone writes it: an integer when whole, else the decimal."""
    micros = int(micros)
    if micros % MICROS == 0:
        return micros // MICROS
    sign = "-" if micros < 0 else ""
    units, frac = divmod(abs(micros), MICROS)
    return float(f"{sign}{units}.{frac:06d}".rstrip("0"))


def tally(conversions, micros):
    return {"conversions": int(conversions), "value": value_json(micros)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {int(args.threads)}")

    # 1. Load.
    started = time.perf_counter()
    config_path = args.data_dir / "config.json"
    sections = json.loads(config_path.read_text())["tenants"] if config_path.exists() else {}
    configs = {tenant: tenant_config(section) for tenant, section in sections.items()}
    load_sql = (HERE / "load.sql").read_text()
    load_sql = load_sql.replace("{messages_path}", sql_string(str(args.data_dir / "messages.jsonl")))
    load_sql = load_sql.replace("{records_path}", sql_string(str(args.data_dir / "records.jsonl")))
    con.execute(load_sql)
    # Tenants seen in the files without a config section have the defaults.
    seen = con.execute("SELECT DISTINCT tenant FROM messages_raw WHERE tenant <> '' "
                       "UNION SELECT DISTINCT tenant FROM records_raw WHERE tenant <> ''").fetchall()
    for (tenant,) in seen:
        configs.setdefault(tenant, tenant_config({}))
    create_config_tables(con, configs)
    records = con.execute("SELECT count(*) FROM records_raw").fetchone()[0]
    load_s = time.perf_counter() - started

    # 2. Attribute.
    started = time.perf_counter()
    con.execute((HERE / "attribution.sql").read_text())
    attribute_s = time.perf_counter() - started

    # 3. Report.
    started = time.perf_counter()
    queries = sql_queries(HERE / "reports.sql")
    results = {name: con.execute(sql).fetchall() for name, sql in queries.items()}
    campaigns = {tenant: {} for tenant in configs}

    def row(tenant, campaign_id):
        rows = campaigns[tenant]
        if campaign_id not in rows:
            rows[campaign_id] = {
                "campaign_id": campaign_id, "sent": 0, "delivered": 0, "opened": 0, "clicked": 0,
                "event_hits": {},
                "goals": {g["id"]: tally(0, 0) for g in configs[tenant]["goals"]},
            }
        return rows[campaign_id]

    for tenant, campaign_id, sent, delivered, opened, clicked in results["campaign_touches"]:
        row(tenant, campaign_id).update(sent=sent, delivered=delivered, opened=opened, clicked=clicked)
    for tenant, campaign_id, name, hits in results["campaign_event_hits"]:
        row(tenant, campaign_id)["event_hits"][name] = hits
    for tenant, campaign_id, goal_id, conversions, micros in results["campaign_goals"]:
        row(tenant, campaign_id)["goals"][goal_id] = tally(conversions, micros)
    kpis = {(tenant, goal_id, rule): (n, micros) for tenant, goal_id, rule, n, micros in results["goal_kpis"]}
    goals = {
        tenant: [
            {
                "goal_id": g["id"],
                **{key: tally(*kpis.get((tenant, g["id"], rule), (0, 0)))
                   for key, rule in (("explicit", "EXPLICIT"), ("last_touch", "LAST_TOUCH"),
                                     ("unattributed", "UNATTRIBUTED"))},
            }
            for g in config["goals"]
        ]
        for tenant, config in configs.items()
    }
    report_s = time.perf_counter() - started

    # 4. Write (not timed).
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for tenant in configs:
        rows = [campaigns[tenant][c] for c in sorted(campaigns[tenant])]
        (args.out_dir / f"{tenant}.campaigns.json").write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
        (args.out_dir / f"{tenant}.goals.json").write_text(json.dumps(goals[tenant], indent=2) + "\n")

    print(json.dumps({
        "load_s": round(load_s, 4), "attribute_s": round(attribute_s, 4), "report_s": round(report_s, 4),
        "total_s": round(load_s + attribute_s + report_s, 4), "records": records,
        "threads": int(args.threads), "duckdb": duckdb.__version__,
    }))


if __name__ == "__main__":
    sys.exit(main())
