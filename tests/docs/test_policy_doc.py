#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Load every example policy of docs/policy.md and check what it says.

Each `<!-- example: NAME -->` is followed by a ```json block: a complete
policy, which must pass `bridle policy check`. Each following
`<!-- explain: ARGS => DECISION "RULE" -->` runs `bridle policy explain`
with ARGS on it: the decision of the last statement of --sql (or of the
connection, without --sql) must be DECISION by RULE.
Usage: test_policy_doc.py BRIDLE DOC
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

bridle, doc = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
text = open(doc).read()
tmp = tempfile.mkdtemp(prefix="bridle-doc-")
failures = 0
checked = 0
current = None

token = re.compile(r'<!-- (example|explain): (.*?) -->|```json\n(.*?)```', re.S)
pending = None
for m in token.finditer(text):
    kind, arg, block = m.group(1), m.group(2), m.group(3)
    if kind == "example":
        pending = arg.strip()
        continue
    if block is not None:
        if not pending:
            continue
        body = block.replace("/etc/bridle/corp-jwks.json", os.path.join(here, "jwks.json"))
        current = os.path.join(tmp, pending + ".json")
        open(current, "w").write(body)
        r = subprocess.run([bridle, "policy", "check", current], capture_output=True, text=True)
        checked += 1
        if r.returncode != 0:
            print(f"FAIL example {pending}: bridle policy check:\n{r.stderr}")
            failures += 1
        else:
            print(f"ok   example {pending}: {r.stdout.strip()}")
        pending = None
        continue
    if kind == "explain":
        args, _, want = arg.rpartition("=>")
        wm = re.match(r'\s*(\S+)\s+"(.*)"\s*$', want)
        if not current or not wm:
            print(f"FAIL malformed explain line: {arg}")
            failures += 1
            continue
        r = subprocess.run([bridle, "policy", "explain", current] + shlex.split(args) + ["--json"],
                           capture_output=True, text=True)
        checked += 1
        if r.returncode != 0:
            print(f"FAIL explain {args}: exit {r.returncode}: {r.stderr}")
            failures += 1
            continue
        out = json.loads(r.stdout)
        d = out["statements"][-1] if out.get("statements") else out["connect"]
        got = (d["decision"], d["rule"])
        if got != (wm.group(1), wm.group(2)):
            print(f"FAIL explain {args.strip()}: got {got[0]} \"{got[1]}\", doc says {wm.group(1)} \"{wm.group(2)}\"")
            failures += 1
        else:
            print(f"ok   explain {args.strip()} => {got[0]} \"{got[1]}\"")

print(f"{checked} checks, {failures} failed")
sys.exit(1 if failures or checked == 0 else 0)
