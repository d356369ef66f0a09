"""Operations a keyspace cost its Cassandra node, per table.

Reads Cassandra 5's virtual tables `system_views.local_read_latency` and
`local_write_latency` (counts since the node started) and prints the keyspace's reads and
writes by table, most first. A write counts once per partition it changes: a batch of 100
rows of one partition counts 1, of 100 partitions 100. With `--json`, prints them as JSON
with `requests`: the CQL requests the node has served on the connections of Touchstone's
driver (`system_views.clients`, open connections only: read it before the processes stop),
and `bytes_sent` / `bytes_received`: what those connections carried to the node and back,
from the kernel's counters of their sockets (`ss -tin`, on the machine the node runs on).

`make bench ARGS="--only cql"` runs it with `--json` at the end of its run.

Used for BENCHMARKS.md (Cassandra): run the CQL section against a node you started, so its
keyspace stays, e.g.

    CASSANDRA_PORT=19042 CASSANDRA_STORAGE_PORT=17000 CASSANDRA_DIR=$PWD/.cassandra deploy/cassandra/start.sh
    BENCH_CQL_NODES=127.0.0.1:19042 BENCH_CQL_RECORDS=50000 make bench ARGS="--only cql"
    .bench/venv/bin/pip install -r bench/tools/requirements.txt
    .bench/venv/bin/python bench/tools/cql_ops.py bench_<pid> --port 19042

Counts are per node lifetime: use a fresh node (or subtract a reading taken before).
"""

import argparse
import json
import re
import subprocess

from cassandra.cluster import Cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keyspace")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9042)
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    args = parser.parse_args()
    session = Cluster([args.host], port=args.port).connect()
    if args.json:
        counts = {}
        for kind, view in [("reads", "local_read_latency"), ("writes", "local_write_latency")]:
            rows = session.execute(f"SELECT table_name, count FROM system_views.{view} WHERE keyspace_name = %s ALLOW FILTERING", [args.keyspace])
            counts[kind] = {row.table_name: row.count for row in rows if row.count}
        clients = list(session.execute("SELECT address, port, driver_name, request_count FROM system_views.clients"))
        theirs = [row for row in clients if "python" not in (row.driver_name or "").lower()]
        counts["requests"] = sum(row.request_count for row in theirs)
        sent, received = socket_bytes(args.port, {row.port for row in theirs})
        if sent is not None:
            counts["bytes_sent"], counts["bytes_received"] = sent, received
        print(json.dumps(counts))
        return
    for view in ["local_read_latency", "local_write_latency"]:
        rows = [row for row in session.execute(f"SELECT * FROM system_views.{view}") if row.keyspace_name == args.keyspace]
        print(f"{view}: {sum(row.count for row in rows)} in total")
        for row in sorted(rows, key=lambda row: -row.count):
            if row.count:
                print(f"  {row.table_name:28} {row.count:>10}")


def socket_bytes(port, client_ports):
    """Bytes the clients' sockets sent to the node and received from it, summed
    over the connections to `port` whose local port is one of `client_ports`; (None, None)
    when `ss` cannot tell."""
    try:
        out = subprocess.run(["ss", "-tinH", "state", "established", f"( dport = :{port} )"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, None
    sent = received = 0
    # Each connection: a line with its addresses, then a line of tcp_info fields.
    lines = out.splitlines()
    for head, info in zip(lines[0::2], lines[1::2]):
        local = head.split()[2] if len(head.split()) > 2 else ""
        if not local.rpartition(":")[2].isdigit() or int(local.rpartition(":")[2]) not in client_ports:
            continue
        out_bytes = re.search(r"bytes_sent:(\d+)", info)
        got = re.search(r"bytes_received:(\d+)", info)
        sent += int(out_bytes.group(1)) if out_bytes else 0
        received += int(got.group(1)) if got else 0
    return sent, received


if __name__ == "__main__":
    main()
