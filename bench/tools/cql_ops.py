"""Operations a keyspace cost its Cassandra node, per table.

Reads Cassandra 5's virtual tables `system_views.local_read_latency` and
`local_write_latency` (counts since the node started) and prints the keyspace's reads and
writes by table, most first. Writes count rows: a batch of 100 rows counts 100.

Used for BENCHMARKS.md (Cassandra): run the CQL section against a node you started, so its
keyspace stays, e.g.

    CASSANDRA_PORT=19042 CASSANDRA_STORAGE_PORT=17000 CASSANDRA_DIR=$PWD/.cassandra deploy/cassandra/start.sh
    BENCH_CQL_NODES=127.0.0.1:19042 BENCH_CQL_RECORDS=50000 make bench ARGS="--only cql"
    .bench/venv/bin/pip install -r bench/tools/requirements.txt
    .bench/venv/bin/python bench/tools/cql_ops.py bench_<pid> --port 19042

Counts are per node lifetime: use a fresh node (or subtract a reading taken before).
"""

import argparse

from cassandra.cluster import Cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keyspace")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9042)
    args = parser.parse_args()
    session = Cluster([args.host], port=args.port).connect()
    for view in ["local_read_latency", "local_write_latency"]:
        rows = [row for row in session.execute(f"SELECT * FROM system_views.{view}") if row.keyspace_name == args.keyspace]
        print(f"{view}: {sum(row.count for row in rows)} in total")
        for row in sorted(rows, key=lambda row: -row.count):
            if row.count:
                print(f"  {row.table_name:28} {row.count:>10}")


if __name__ == "__main__":
    main()
