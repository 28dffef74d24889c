#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A PostgreSQL client for the end-to-end tests that speaks the v3
protocol by hand (and, with --psycopg, a psycopg2 session driven the same
way), so that a test can send exactly the messages it wants and assert on
what comes back, one line per message.

    pgraw.py [--timeout S] HOST PORT STEP...
    pgraw.py --psycopg [--timeout S] HOST PORT STEP...

Raw steps (messages are queued; `send`, `read` and `readclose` write the
queue in one write, so several messages in one step sequence pipeline):

    startup [KEY=VALUE...]   StartupMessage (default user=app database=shop)
    Q SQL                    Query
    P[:NAME] SQL             Parse (no parameter types)
    B[:PORTAL[:STMT]]        Bind, no parameters, text results
    E[:PORTAL]               Execute, no row limit
    D:S|P[:NAME]             Describe
    C:S|P[:NAME]             Close
    S  H  X                  Sync, Flush, Terminate
    F OID [ARG...]           FunctionCall with text arguments
    d DATA   c   f MESSAGE   CopyData (DATA + newline), CopyDone, CopyFail
    hex HEX                  raw bytes (spaces ignored)
    send                     write the queue
    read                     write the queue, print messages until
                             ReadyForQuery, a close or the timeout
    readclose                the same, until the connection closes
    mark NAME                print "# NAME" (to cut the output in sections)
    sleep S  waitfile PATH  touch PATH

Output, one line per message received: "E CODE MESSAGE" (ErrorResponse),
"N CODE MESSAGE", "Z STATUS", "T COL,COL", "D VAL|VAL" (NULL as \\N),
"C TAG", "R CODE" (authentication), "K PID KEY", "S NAME=VALUE", "1", "2",
"3", "n", "s", "t", "I", "G", "H", "d DATA", "c", "V VALUE", "v", and
"CLOSED", "RESET" or "TIMEOUT" when reading ends without a ReadyForQuery.
A failed write prints "SENDFAIL ERRNO".

psycopg2 steps: "sql SQL" (prints "OK [rows...]" or "OK TAG", or
"ERR SQLSTATE MESSAGE"), "commit", "rollback" (print "COMMIT OK"/
"ROLLBACK OK" or "ERR ..."), "status" ("STATUS N": psycopg2's transaction
status, 0 idle, 2 in a transaction, 3 failed), "autocommit on|off", and
mark, sleep, waitfile, touch as above. It connects as user app to
database shop without a password.
"""
import json
import os
import socket
import struct
import sys
import time

TIMEOUT = 5.0


def out(line):
    print(line, flush=True)


def msg(kind, body=b""):
    return kind.encode() + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def split_arg(step):
    """'P:name rest' -> ('P', ['name'], 'rest')"""
    head, _, rest = step.partition(" ")
    parts = head.split(":")
    return parts[0], parts[1:], rest


def build(step):
    """The bytes of one message step, or None if it is not one."""
    cmd, opts, rest = split_arg(step)
    if cmd == "startup":
        params = {"user": "app", "database": "shop"}
        for kv in rest.split():
            k, _, v = kv.partition("=")
            params[k] = v
        body = struct.pack("!I", 196608)
        for k, v in params.items():
            body += cstr(k) + cstr(v)
        body += b"\0"
        return struct.pack("!I", len(body) + 4) + body
    if cmd == "Q":
        return msg("Q", cstr(rest))
    if cmd == "P":
        name = opts[0] if opts else ""
        return msg("P", cstr(name) + cstr(rest) + struct.pack("!H", 0))
    if cmd == "B":
        portal = opts[0] if opts else ""
        stmt = opts[1] if len(opts) > 1 else ""
        return msg("B", cstr(portal) + cstr(stmt) + struct.pack("!HHH", 0, 0, 0))
    if cmd == "E":
        portal = opts[0] if opts else ""
        return msg("E", cstr(portal) + struct.pack("!I", 0))
    if cmd in ("D", "C") and opts:
        name = opts[1] if len(opts) > 1 else ""
        return msg(cmd, opts[0].encode() + cstr(name))
    if cmd in ("S", "H", "X", "c") and not rest:
        return msg(cmd)
    if cmd == "F":
        args = rest.split()
        body = struct.pack("!IH", int(args[0]), 0)
        body += struct.pack("!H", len(args) - 1)
        for a in args[1:]:
            body += struct.pack("!I", len(a)) + a.encode()
        body += struct.pack("!H", 0)
        return msg("F", body)
    if cmd == "d":
        return msg("d", (rest + "\n").encode())
    if cmd == "f":
        return msg("f", cstr(rest))
    if cmd == "hex":
        return bytes.fromhex(rest.replace(" ", ""))
    return None


def fields(body):
    """ErrorResponse/NoticeResponse fields."""
    f = {}
    for part in body.split(b"\0"):
        if part:
            f[chr(part[0])] = part[1:].decode(errors="replace")
    return f


def show(kind, body):
    if kind in "EN":
        f = fields(body)
        return "%s %s %s" % (kind, f.get("C", "?"), f.get("M", "").replace("\n", " "))
    if kind == "Z":
        return "Z " + body.decode(errors="replace")
    if kind == "T":
        n = struct.unpack("!H", body[:2])[0]
        p, names = 2, []
        for _ in range(n):
            z = body.index(b"\0", p)
            names.append(body[p:z].decode(errors="replace"))
            p = z + 1 + 18
        return "T " + ",".join(names)
    if kind == "D":
        n = struct.unpack("!H", body[:2])[0]
        p, vals = 2, []
        for _ in range(n):
            ln = struct.unpack("!i", body[p:p + 4])[0]
            p += 4
            if ln < 0:
                vals.append("\\N")
            else:
                vals.append(body[p:p + ln].decode(errors="replace"))
                p += ln
        return "D " + "|".join(vals)
    if kind == "C":
        return "C " + body.rstrip(b"\0").decode(errors="replace")
    if kind == "R":
        return "R %d" % struct.unpack("!I", body[:4])[0]
    if kind == "K":
        return "K %d %d" % struct.unpack("!II", body[:8])
    if kind == "S":
        k, _, v = body[:-1].partition(b"\0")
        return "S %s=%s" % (k.decode(errors="replace"), v.decode(errors="replace"))
    if kind == "d":
        return "d " + body.decode(errors="replace").rstrip("\n")
    if kind == "V":
        ln = struct.unpack("!i", body[:4])[0]
        return "V " + ("\\N" if ln < 0 else body[4:4 + ln].decode(errors="replace"))
    return kind


class Raw:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.queue = b""
        self.buf = b""
        self.closed = False

    def flush(self):
        if not self.queue:
            return
        data, self.queue = self.queue, b""
        try:
            self.sock.sendall(data)
        except OSError as e:
            out("SENDFAIL %s" % (e.strerror or e))

    def recv(self, deadline):
        if self.closed:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            out("TIMEOUT")
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            out("TIMEOUT")
            return False
        except ConnectionResetError:
            out("RESET")
            self.closed = True
            return False
        if not chunk:
            out("CLOSED")
            self.closed = True
            return False
        self.buf += chunk
        return True

    def read(self, until_close=False):
        self.flush()
        deadline = time.monotonic() + TIMEOUT
        while True:
            while len(self.buf) >= 5:
                kind = chr(self.buf[0])
                ln = struct.unpack("!I", self.buf[1:5])[0]
                if len(self.buf) < ln + 1:
                    break
                body = self.buf[5:ln + 1]
                self.buf = self.buf[ln + 1:]
                out(show(kind, body))
                if kind == "Z" and not until_close:
                    return
            if not self.recv(deadline):
                if self.buf:
                    out("PARTIAL %s" % self.buf[:32].hex())
                return

    def step(self, s):
        b = build(s)
        if b is not None:
            self.queue += b
            return
        cmd, _, rest = s.partition(" ")
        if cmd == "send":
            self.flush()
        elif cmd == "read":
            self.read()
        elif cmd == "readclose":
            self.read(until_close=True)
        else:
            common(cmd, rest)


def common(cmd, rest):
    if cmd == "mark":
        out("# " + rest)
    elif cmd == "sleep":
        time.sleep(float(rest))
    elif cmd == "waitfile":
        end = time.monotonic() + 30
        while not os.path.exists(rest):
            if time.monotonic() > end:
                out("WAITFILE TIMEOUT " + rest)
                sys.exit(3)
            time.sleep(0.05)
    elif cmd == "touch":
        open(rest, "a").close()
    else:
        out("BADSTEP " + cmd)
        sys.exit(2)


def psycopg(host, port, steps):
    import psycopg2

    conn = psycopg2.connect(host=host, port=port, dbname="shop", user="app",
                            connect_timeout=int(TIMEOUT))

    def err(e):
        first = (e.pgerror or str(e)).strip().splitlines()
        return "ERR %s %s" % (e.pgcode, first[0] if first else "")

    for s in steps:
        cmd, _, rest = s.partition(" ")
        try:
            if cmd == "sql":
                with conn.cursor() as cur:
                    cur.execute(rest)
                    if cur.description is not None:
                        out("OK " + json.dumps([list(r) for r in cur.fetchall()], default=str))
                    else:
                        out("OK " + (cur.statusmessage or ""))
            elif cmd in ("commit", "rollback"):
                getattr(conn, cmd)()
                out("%s OK" % cmd.upper())
            elif cmd == "status":
                out("STATUS %d" % conn.get_transaction_status())
            elif cmd == "autocommit":
                conn.autocommit = rest == "on"
            else:
                common(cmd, rest)
        except psycopg2.Error as e:
            out(err(e))
            if conn.closed:
                out("CLOSED")
                return


def main(argv):
    global TIMEOUT
    mode_psycopg = False
    while argv and argv[0].startswith("--"):
        if argv[0] == "--psycopg":
            mode_psycopg = True
            argv = argv[1:]
        elif argv[0] == "--timeout":
            TIMEOUT = float(argv[1])
            argv = argv[2:]
        else:
            break
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, steps = argv[0], argv[1], argv[2:]
    if mode_psycopg:
        psycopg(host, port, steps)
        return 0
    c = Raw(host, port)
    for s in steps:
        c.step(s)
    c.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
