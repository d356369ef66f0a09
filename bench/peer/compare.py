#!/usr/bin/env python3
"""Compares the peer's reports with Touchstone's, semantically.

    python3 bench/peer/compare.py OUT_DIR TOUCHSTONE_DIR [--tolerance REL] [--max-diffs N]

Both directories hold `<tenant>.campaigns.json` and `<tenant>.goals.json` (docs/behaviour/reports.md
JSON). Every tenant that has a file in TOUCHSTONE_DIR is compared; a file missing from
OUT_DIR is a difference. Rows are matched by campaign_id / goal_id, so row order does not
matter; a row with no activity (all counts and values zero) may be missing on either side,
and so may an event name with 0 hits or a goal with 0 conversions and value 0.
Numbers must be equal; with --tolerance, values may differ by that relative amount
(off by default: the values are exact decimals on both sides).
Exits 0 when everything is equal, 1 and the first differences otherwise.
"""

import argparse
import json
import sys
from pathlib import Path

COUNTERS = ("sent", "delivered", "opened", "clicked")
RULES = ("explicit", "last_touch", "unattributed")
ZERO = {"conversions": 0, "value": 0}


def load(path):
    return json.loads(path.read_text())


def numbers_equal(a, b, tolerance):
    if a == b:
        return True
    if tolerance and isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= tolerance * max(abs(a), abs(b))
    return False


def tally_is_zero(tally):
    return tally.get("conversions", 0) == 0 and tally.get("value", 0) == 0


def normalized_campaign(row):
    return {
        **{key: row.get(key, 0) for key in COUNTERS},
        "event_hits": {name: n for name, n in (row.get("event_hits") or {}).items() if n != 0},
        "goals": {goal: t for goal, t in (row.get("goals") or {}).items() if not tally_is_zero(t)},
    }


def campaign_is_empty(row):
    return all(row[key] == 0 for key in COUNTERS) and not row["event_hits"] and not row["goals"]


def compare_campaigns(tenant, ours, theirs, tolerance, diffs):
    ours = {r["campaign_id"]: normalized_campaign(r) for r in ours}
    theirs = {r["campaign_id"]: normalized_campaign(r) for r in theirs}
    for campaign in sorted(set(ours) | set(theirs)):
        a, b = ours.get(campaign), theirs.get(campaign)
        where = f"{tenant} campaigns {campaign!r}"
        if a is None or b is None:
            present = a if b is None else b
            if not campaign_is_empty(present):
                side = "peer only" if b is None else "touchstone only"
                diffs.append(f"{where}: {side}: {json.dumps(present, sort_keys=True)}")
            continue
        for key in COUNTERS:
            if a[key] != b[key]:
                diffs.append(f"{where} {key}: peer {a[key]} touchstone {b[key]}")
        for name in sorted(set(a["event_hits"]) | set(b["event_hits"])):
            x, y = a["event_hits"].get(name, 0), b["event_hits"].get(name, 0)
            if x != y:
                diffs.append(f"{where} event_hits[{name!r}]: peer {x} touchstone {y}")
        for goal in sorted(set(a["goals"]) | set(b["goals"])):
            x, y = a["goals"].get(goal, ZERO), b["goals"].get(goal, ZERO)
            if x["conversions"] != y["conversions"] or not numbers_equal(x["value"], y["value"], tolerance):
                diffs.append(f"{where} goals[{goal!r}]: peer {x} touchstone {y}")


def compare_goals(tenant, ours, theirs, tolerance, diffs):
    ours = {r["goal_id"]: r for r in ours}
    theirs = {r["goal_id"]: r for r in theirs}
    for goal in sorted(set(ours) | set(theirs)):
        a, b = ours.get(goal), theirs.get(goal)
        if a is None or b is None:
            diffs.append(f"{tenant} goals {goal!r}: {'peer' if b is None else 'touchstone'} only")
            continue
        for rule in RULES:
            x, y = a.get(rule, ZERO), b.get(rule, ZERO)
            if x["conversions"] != y["conversions"] or not numbers_equal(x["value"], y["value"], tolerance):
                diffs.append(f"{tenant} goals {goal!r} {rule}: peer {x} touchstone {y}")


def main():
    parser = argparse.ArgumentParser(description="Compare peer reports with Touchstone's.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("touchstone_dir", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.0, help="relative tolerance on values (default 0)")
    parser.add_argument("--max-diffs", type=int, default=20)
    args = parser.parse_args()

    diffs, compared = [], 0
    for theirs_path in sorted(args.touchstone_dir.glob("*.json")):
        name = theirs_path.name
        if name.endswith(".campaigns.json"):
            tenant, compare = name[: -len(".campaigns.json")], compare_campaigns
        elif name.endswith(".goals.json"):
            tenant, compare = name[: -len(".goals.json")], compare_goals
        else:
            continue
        ours_path = args.out_dir / name
        if not ours_path.exists():
            diffs.append(f"{ours_path} is missing")
            continue
        compare(tenant, load(ours_path), load(theirs_path), args.tolerance, diffs)
        compared += 1

    if compared == 0 and not diffs:
        diffs.append(f"no <tenant>.campaigns.json / <tenant>.goals.json in {args.touchstone_dir}")
    if diffs:
        for diff in diffs[: args.max_diffs]:
            print(diff)
        if len(diffs) > args.max_diffs:
            print(f"... and {len(diffs) - args.max_diffs} more differences")
        print(f"DIFFERENT: {len(diffs)} differences over {compared} files")
        return 1
    print(f"EQUAL: {compared} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
