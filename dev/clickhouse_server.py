#!/usr/bin/env python3
"""Run a real ClickHouse server (HTTP + native protocol) from the chdb wheel.

    clickhouse_server.py --dir DIR --http-port P --tcp-port Q

chdb embeds the whole clickhouse-local program. clickhouse-local reads
`config.xml` from its working directory, so we write one there that names our
listen host and ports, chdir into DIR, and run one long statement:
`SYSTEM START LISTEN` opens the HTTP and TCP servers, and the endless
`sleepEachRow` query keeps the process (and so the servers) alive. Tables live
in DIR and survive restarts, even after SIGKILL (MergeTree parts are
written atomically).

The process exits on SIGTERM (neither Python nor clickhouse-local catch it
here) and when a port is already taken (clickhouse-local prints the error and
the query fails). dev/stack.sh starts this with `exec`, so its pid file holds
this process.
"""

import argparse
import os
import sys

CONFIG = """<clickhouse>
    <!-- Written by dev/clickhouse_server.py at every start; edits are lost. -->
    <listen_host>{host}</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <!-- What each query read (read_rows, read_bytes): BENCHMARKS.md and analysts use it. -->
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <flush_interval_milliseconds>1000</flush_interval_milliseconds>
        <ttl>event_date + INTERVAL 3 DAY</ttl>
    </query_log>
</clickhouse>
"""

# A query that never ends (one row per second from an infinite table, no
# time limit) so the servers started before it stay up.
SERVE = (
    "SYSTEM START LISTEN HTTP; "
    "SYSTEM START LISTEN TCP; "
    "SELECT count() FROM system.numbers WHERE sleepEachRow(1) = 1 "
    "SETTINGS max_block_size = 1, max_execution_time = 0"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="working and data directory")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--tcp-port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()

    data_dir = os.path.abspath(args.dir)
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "config.xml"), "w", encoding="utf-8") as f:
        f.write(CONFIG.format(host=args.host, http_port=args.http_port, tcp_port=args.tcp_port))
    # Must happen before chdb is imported: importing it already starts a
    # clickhouse-local session, which reads config.xml from the cwd.
    os.chdir(data_dir)

    from chdb import _chdb  # noqa: E402  (import after chdir, see above)

    print(
        f"clickhouse (chdb) serving {data_dir} on "
        f"http://{args.host}:{args.http_port} and tcp://{args.host}:{args.tcp_port}",
        flush=True,
    )
    try:
        _chdb.query(SERVE, "TabSeparated", path=data_dir)
    except Exception as e:  # e.g. "Address already in use"
        print(f"clickhouse_server: {e}", file=sys.stderr, flush=True)
        return 1
    # The query cannot end by itself; if it did, the servers are gone too.
    print("clickhouse_server: serving query ended unexpectedly", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
