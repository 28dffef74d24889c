#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Seeds for tests/fuzz/fuzz_pgproto.c: whole PostgreSQL sessions, as
chunks of [direction][length][bytes] (direction 0: from the agent, 1:
from the server). Run from the repository root; writes
tests/fuzz/corpus/pgproto/*.
"""
import os
import struct

OUT = "tests/fuzz/corpus/pgproto"


def msg(t, body=b""):
    return t.encode() + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def startup(user="agent", db="shop"):
    body = struct.pack("!I", 0x30000) + cstr("user") + cstr(user) + \
        cstr("database") + cstr(db) + cstr("application_name") + \
        cstr("fuzz") + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def rowdesc(cols):
    body = struct.pack("!H", len(cols))
    for name, relid, attnum, typ in cols:
        body += cstr(name) + struct.pack("!IhIhih", relid, attnum, typ, -1,
                                         -1, 0)
    return msg("T", body)


def datarow(vals):
    body = struct.pack("!H", len(vals))
    for v in vals:
        if v is None:
            body += struct.pack("!i", -1)
        else:
            b = v.encode()
            body += struct.pack("!i", len(b)) + b
    return msg("D", body)


def complete(tag):
    return msg("C", cstr(tag))


def ready(s="I"):
    return msg("Z", s.encode())


def error(code, text):
    return msg("E", b"SERROR\0VERROR\0C" + cstr(code) + b"M" + cstr(text) +
               b"\0")


LOGIN = [
    (0, startup()),
    (1, msg("R", struct.pack("!I", 0))),
    (1, msg("S", cstr("server_version") + cstr("15.0"))),
    (1, msg("K", struct.pack("!II", 4242, 99))),
    (1, ready()),
    # the setup query's answers: the search path, the masked columns
    (1, rowdesc([("unnest", 0, 0, 19)]) + datarow(["public"]) +
     complete("SELECT 1") +
     rowdesc([("oid", 0, 0, 26), ("attnum", 0, 0, 21),
              ("nspname", 0, 0, 19), ("relname", 0, 0, 19),
              ("attname", 0, 0, 19)]) +
     datarow(["16384", "4", "public", "customers", "card"]) +
     complete("SELECT 1") + ready()),
]

CUSTOMERS = [("name", 16384, 2, 25), ("email", 16384, 3, 25),
             ("card", 16384, 4, 25), ("note", 16384, 5, 25),
             ("n", 0, 0, 23)]
ROWS = datarow(["Alice", "alice@example.com", "4111111111111111",
                "ssn 521-44-7312 jwt eyJa.eyJb.c", "1"]) + \
    datarow([None, "b@x.org", None, "nothing", None])


def simple():
    return LOGIN + [
        (0, msg("Q", cstr("select name, email, card, note, 1 from customers"))),
        (1, rowdesc(CUSTOMERS) + ROWS + complete("SELECT 2") + ready()),
        (0, msg("Q", cstr("delete from orders"))),
        (1, error("26000", 'prepared statement "bridle.denied" does not exist') +
         ready()),
        (0, msg("Q", cstr("begin; select 1; commit"))),
        (1, complete("BEGIN") + rowdesc([("?column?", 0, 0, 23)]) +
         datarow(["1"]) + complete("SELECT 1") + complete("COMMIT") + ready()),
        (0, msg("X")),
    ]


def extended():
    q = "select email, card from customers where id = $1"
    bind = cstr("") + cstr("s1") + struct.pack("!HH", 0, 1) + \
        struct.pack("!i", 1) + b"1" + struct.pack("!HH", 1, 1)
    return LOGIN + [
        (0, msg("P", cstr("s1") + cstr(q) + struct.pack("!H", 0)) +
         msg("B", bind) + msg("E", cstr("") + struct.pack("!I", 0)) +
         msg("S")),
        (1, msg("1") + msg("2") + rowdesc(CUSTOMERS[1:3]) +
         datarow(["a@b.co", "4111 1111 1111 1111"]) + complete("SELECT 1") +
         ready()),
        (0, msg("P", cstr("") + cstr("delete from orders") +
                struct.pack("!H", 0)) +
         msg("B", cstr("") + cstr("") + struct.pack("!HHH", 0, 0, 0)) +
         msg("E", cstr("") + struct.pack("!I", 0)) + msg("S")),
        (1, error("26000", 'prepared statement "bridle.denied" does not exist') +
         ready("E")),
        (0, msg("D", b"S" + cstr("s1")) + msg("C", b"S" + cstr("s1")) +
         msg("H") + msg("S")),
        (1, msg("t", struct.pack("!HI", 1, 23)) + rowdesc(CUSTOMERS[1:3]) +
         msg("3") + ready()),
        (0, msg("F", struct.pack("!I", 1234))),
        (1, error("26000", 'prepared statement "bridle.denied" does not exist') +
         ready()),
    ]


def review():
    # flag 2 on the held query's chunk: the harness approves the review
    return LOGIN + [
        (2, msg("Q", cstr("update held set a = 1")) + msg("Q", cstr("select 1"))),
        (1, complete("UPDATE 1") + ready()),
        (1, rowdesc([("?column?", 0, 0, 23)]) + datarow(["1"]) +
         complete("SELECT 1") + ready()),
        (0, msg("Q", cstr("update held set a = 2"))),
        (1, error("26000", 'prepared statement "bridle.denied" does not exist') +
         ready()),
    ]


def copy_in():
    return LOGIN + [
        (0, msg("Q", cstr("copy audit(msg) from stdin"))),
        (1, msg("G", struct.pack("!bH", 0, 1) + struct.pack("!h", 0))),
        (0, msg("d", b"hello\n") + msg("d", b"world\n") + msg("c")),
        (1, complete("COPY 2") + ready()),
    ]


def tls_and_cancel():
    return [
        (0, struct.pack("!II", 8, 80877103)),
        (0, startup()),
        (1, msg("R", struct.pack("!I", 10)) + b""),
    ], [
        (0, struct.pack("!IIII", 16, 80877102, 4242, 99)),
    ]


def sasl():
    return [
        (0, startup()),
        (1, msg("R", struct.pack("!I", 10) + cstr("SCRAM-SHA-256") + b"\0")),
        (1, msg("R", struct.pack("!I", 11) +
                b"r=abcdefghijklmnopqrstuvwxyzABCDEFGHIJ,s=c2FsdA==,i=4096")),
        (1, msg("R", struct.pack("!I", 5) + b"salt")),
        (1, msg("R", struct.pack("!I", 3))),
        (1, error("28P01", "password authentication failed")),
    ]


def encode(chunks):
    out = b""
    for d, data in chunks:
        while data:
            part, data = data[:65535], data[65535:]
            out += bytes([d]) + struct.pack("!H", len(part)) + part
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    a, b = tls_and_cancel()
    seeds = {"simple": simple(), "extended": extended(), "copy": copy_in(),
             "tls": a, "cancel": b, "sasl": sasl(), "review": review()}
    # the same sessions a byte at a time
    for name in ("simple", "extended"):
        chunks = []
        for d, data in seeds[name]:
            chunks += [(d, data[i:i + 1]) for i in range(len(data))]
        seeds[name + "-bytewise"] = chunks
    for name, chunks in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(encode(chunks))


if __name__ == "__main__":
    main()
