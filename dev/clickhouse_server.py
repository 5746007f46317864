#!/usr/bin/env python3
"""Run a real ClickHouse server (HTTP + native protocol) from the chdb wheel.

    clickhouse_server.py --dir DIR --http-port P --tcp-port Q [--users-xml FILE]...

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

Users: without --users-xml, clickhouse-local's built-in `default` user (no
password) is the only one. With --users-xml FILE (a users.d document: the
analysts' logins that `ecg-migrate analysts` prints, the services' that
`ecg-migrate services` prints; repeat the option for several), DIR/users.xml
is written: that same `default` user (no password, from 127.0.0.1 and ::1
only, allowed to manage access) and each FILE's profiles, users, quotas and
roles; config.xml then names it in `<users_config>`. clickhouse-local reads
it at start only: restart the server to apply a changed FILE.
"""

import argparse
import os
import sys
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

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
{users}</clickhouse>
"""

# With --users-xml: where the users are, and the access rules that keep
# users with row filters (the analysts) to their rows while users without
# (`default`, the services' users) read every row they are granted, and
# system tables (query_log holds other users' queries) closed to users not
# granted them.
USERS_CONFIG = """    <users_config>{path}</users_config>
    <access_control_improvements>
        <users_without_row_policies_can_read_rows>true</users_without_row_policies_can_read_rows>
        <select_from_system_db_requires_grant>true</select_from_system_db_requires_grant>
    </access_control_improvements>
"""

# The user every client of the dev stack and the tests connects as: what
# clickhouse-local gives without a users file, bound to this machine.
DEFAULT_USERS = """<clickhouse>
    <!-- Written by dev/clickhouse_server.py at every start; edits are lost. -->
    <profiles>
        <default/>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <access_management>1</access_management>
            <named_collection_control>1</named_collection_control>
        </default>
    </users>
</clickhouse>
"""

# The sections of a users file whose entries are merged by name.
SECTIONS = ("profiles", "users", "quotas", "roles")


def merged_users(extra_paths: list[str]) -> str:
    """DEFAULT_USERS with the entries of the users files at extra_paths
    added. Refuses an entry that would replace one of ours (`default`) or of
    an earlier file."""
    root = ET.fromstring(DEFAULT_USERS)
    for extra_path in extra_paths:
        extra = ET.parse(extra_path).getroot()
        if extra.tag != "clickhouse":
            raise SystemExit(f"clickhouse_server: {extra_path}: root element is <{extra.tag}>, not <clickhouse>")
        for child in extra:
            if child.tag not in SECTIONS:
                raise SystemExit(
                    f"clickhouse_server: {extra_path}: unexpected <{child.tag}> (expected {', '.join(SECTIONS)})"
                )
            section = root.find(child.tag)
            if section is None:
                section = ET.SubElement(root, child.tag)
            for entry in child:
                if section.find(entry.tag) is not None:
                    raise SystemExit(
                        f"clickhouse_server: {extra_path}: <{child.tag}><{entry.tag}> is already defined"
                    )
                section.append(entry)
    ET.indent(root)
    return "<!-- Written by dev/clickhouse_server.py at every start; edits are lost. -->\n" + ET.tostring(
        root, encoding="unicode"
    ) + "\n"

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
    parser.add_argument(
        "--users-xml",
        action="append",
        default=[],
        help="users.d file whose users and profiles to add (see above); repeatable",
    )
    args = parser.parse_args()

    data_dir = os.path.abspath(args.dir)
    os.makedirs(data_dir, exist_ok=True)
    users = ""
    if args.users_xml:
        users_path = os.path.join(data_dir, "users.xml")
        with open(users_path, "w", encoding="utf-8") as f:
            f.write(merged_users(args.users_xml))
        users = USERS_CONFIG.format(path=escape(users_path))
    with open(os.path.join(data_dir, "config.xml"), "w", encoding="utf-8") as f:
        f.write(CONFIG.format(host=args.host, http_port=args.http_port, tcp_port=args.tcp_port, users=users))
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
