#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A tiny database "agent": runs SQL statements against PostgreSQL.

    agent_pg.py [--autocommit] HOST PORT DBNAME USER SQL...

It connects with psycopg2 and no password (under bridle the enforcer holds
the credentials), runs each SQL in turn and prints one JSON line for each:

    {"sql": ..., "ok": true|false, "rows": [...], "sqlstate": ..., "error": ...}

A successful statement is committed; a failed one is rolled back and the
agent goes on with the next. Exit status: 0 if every statement succeeded,
1 if some failed (it stops early if the server or proxy closed the
connection: that line has "closed": true), 2 if it could not connect (one
JSON line with the error) or was called wrongly.
"""
import json
import sys

import psycopg2


def main(argv):
    autocommit = bool(argv) and argv[0] == "--autocommit"
    if autocommit:
        argv = argv[1:]
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, dbname, user = argv[:4]
    try:
        conn = psycopg2.connect(host=host, port=port, dbname=dbname, user=user)
    except psycopg2.Error as e:
        print(json.dumps({"connect": False, "error": str(e).strip()}), flush=True)
        return 2
    conn.autocommit = autocommit
    failed = 0
    for sql in argv[4:]:
        out = {"sql": sql, "ok": True, "rows": [], "sqlstate": None, "error": None}
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                if cur.description is not None:
                    out["rows"] = [list(r) for r in cur.fetchall()]
            conn.commit()
        except psycopg2.Error as e:
            failed += 1
            out.update(ok=False, sqlstate=e.pgcode,
                       error=(e.pgerror or str(e)).strip())
            try:
                conn.rollback()
            except psycopg2.Error:  # the connection is gone
                out["closed"] = True
        print(json.dumps(out, default=str), flush=True)
        if out.get("closed"):
            return 1
    conn.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
