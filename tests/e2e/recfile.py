#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""An independent reader of bridle's session recordings, written from
docs/recording.md alone (no bridle code): it decodes each file and checks
its keyed hash chain, so that the end-to-end tests do not only trust
`bridle verify` and `bridle export` about what a file holds.

    recfile.py KEYFILE FILE...

For each FILE: every record that verifies, one JSON line on stdout (the
record's JSON exactly as it is in the file), and one summary line on
stderr: "FILE ok records=N blocks=B torn=0|1 ended=0|1", or
"FILE FAILED records=N: WHY" (records before the failure are printed).
Exit status 0 if every file verifies (a torn tail is not a failure), 1
otherwise, 2 when called wrongly.
"""
import hashlib
import hmac
import json
import sys
import zlib

MAGIC = b"BRIDLE-REC 1\n"


class Bad(Exception):
    pass


def read(path, key, emit):
    st = {"records": 0, "blocks": 0, "torn": False, "ended": False}
    with open(path, "rb") as f:
        b = f.read()
    if not b.startswith(MAGIC):
        raise Bad("bad magic")
    p = len(MAGIC)
    nl = b.find(b"\n", p)
    if nl < 0:
        raise Bad("header: no end of line")
    header = b[p:nl]
    hd = json.loads(header)
    if not (isinstance(hd.get("session"), int) and isinstance(hd.get("nonce"), str)
            and len(hd["nonce"]) == 32 and isinstance(hd.get("started_ms"), int)):
        raise Bad("header: not {session, nonce, started_ms}: %r" % header)
    h = hmac.new(key, header, hashlib.sha256).digest()
    p = nl + 1
    seq = 1
    while p < len(b):
        marker = b"BLK %d\n" % seq
        if len(b) - p < len(marker) and marker.startswith(b[p:]):
            st["torn"] = True  # cut inside the marker
            break
        if b[p:p + len(marker)] != marker:
            raise Bad("byte %d: no marker %r" % (p, marker))
        p += len(marker)
        d = zlib.decompressobj(-15)
        try:
            out = d.decompress(b[p:])
        except zlib.error as e:
            raise Bad("byte %d: damaged block: %s" % (p, e))
        lines = out.split(b"\n")
        tail = lines.pop()  # what follows the last newline
        n = 0
        for line in lines:
            js, tab, hx = line.rpartition(b"\t")
            if not tab or len(hx) != 64:
                raise Bad("record %d: malformed" % seq)
            want = hmac.new(key, h + js, hashlib.sha256).digest()
            if not hmac.compare_digest(want.hex().encode(), hx):
                raise Bad("record %d: does not verify" % seq)
            rec = json.loads(js)
            if rec.get("seq") != seq:
                raise Bad("record %d: seq is %r" % (seq, rec.get("seq")))
            emit(js)
            h = want
            seq += 1
            n += 1
            st["records"] += 1
            st["ended"] = rec.get("kind") == "end"
        if not d.eof:
            st["torn"] = True  # the file ends inside the block
            break
        if tail:
            raise Bad("record %d: the block ends inside it" % seq)
        rest = d.unused_data
        seal = b"\nEND %d %s\n" % (n, h.hex().encode())
        if len(rest) < len(seal) and seal.startswith(rest):
            st["torn"] = True
            break
        if not rest.startswith(seal):
            raise Bad("byte %d: bad seal" % (len(b) - len(rest)))
        st["blocks"] += 1
        p = len(b) - len(rest) + len(seal)
    return st


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        key = f.read()
    ok = True
    for path in argv[1:]:
        count = [0]

        def emit(js):
            count[0] += 1
            sys.stdout.buffer.write(js + b"\n")

        try:
            st = read(path, key, emit)
            print("%s ok records=%d blocks=%d torn=%d ended=%d" % (
                path, st["records"], st["blocks"], st["torn"], st["ended"]),
                file=sys.stderr)
        except (Bad, ValueError) as e:
            ok = False
            print("%s FAILED records=%d: %s" % (path, count[0], e), file=sys.stderr)
    sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
