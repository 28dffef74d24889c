#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Regression cases from the review of the policy/decision-log work: the
# decision log must stay one valid (UTF-8) JSON line per decision, name who
# asked whatever the agent sends or runs from, never carry a statement's
# literals, and record every refusal of a statement.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"

PGRAW=$E2E_DIR/pgraw.py

rv_setup() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	pg_start
}

# rv_policy RULES_JSON: one target shop-db (the server, as app).
rv_policy() {
	jq -n --arg pw "$W/app.pw" --argjson rules "$1" '{
	  default: "deny",
	  targets: [{name: "shop-db", address: "10.77.0.1", port: 5432, protocol: "postgres",
	             tls: "disable", credentials: {user: "app", password_file: $pw}}],
	  rules: $rules
	}' || fail "rv_policy: bad JSON"
}

RV_RULES='[{"name": "agents read", "when": {"workload": {"name": "agent-a"}},
            "action": "allow", "sql": {"commands": ["select"]}}]'

dlog() { jq -c "select($1)" "$W/log/decisions.jsonl" 2>/dev/null; }

# rv_valid_lines: fails unless every line of decisions.jsonl is strict
# UTF-8 and one JSON object.
rv_valid_lines() {
	local out
	out=$("$PY" - "$W/log/decisions.jsonl" <<'EOF' 2>&1
import json, sys
bad = 0
for n, raw in enumerate(open(sys.argv[1], "rb"), 1):
    try:
        obj = json.loads(raw.decode("utf-8"))
        assert isinstance(obj, dict)
    except Exception as e:
        bad += 1
        print("line %d: %s: %r" % (n, e, raw[-80:]))
sys.exit(1 if bad else 0)
EOF
	) || fail "decisions.jsonl has invalid lines: $out"
}

# hexq SQL_BYTES_PY: a Query message whose text is the Python bytes
# expression given, as hex for pgraw's "hex" step.
hexq() {
	"$PY" -c 'import struct, sys; t = eval(sys.argv[1]) + b"\0"; print((b"Q" + struct.pack("!I", len(t) + 4) + t).hex())' "$1"
}

# A statement is cut to 1 KiB for the log (log_text) and its summary to
# 160 bytes (what[]): a cut inside a multi-byte character leaves half a
# character, and the line is no longer UTF-8 (not JSON). Likewise bytes
# that are not UTF-8 in the statement (any client_encoding passes).
t_review_declog_utf8() {
	rv_setup
	write_config "$(rv_policy "$RV_RULES")"
	bridle_start
	local long hex
	# 14 ASCII bytes, then two-byte characters: byte 1023 is half of one.
	long=$("$PY" -c 'print("select 1 as \"a" + "é" * 600 + "\"")')
	pod_psql -tA -c "$long" >/dev/null
	hex=$(hexq 'b"select 1 as \"\xff\xfe\""')
	pod_pg /usr/bin/python3 "$PGRAW" --timeout 3 10.77.0.1 5432 startup read "hex $hex" read >/dev/null 2>&1
	wait_until 3 test -s "$W/log/decisions.jsonl" || fail "no decision log"
	sleep 0.3
	rv_valid_lines
}

# The process's executable comes from /proc/PID/exe: any bytes. One that
# is not UTF-8 makes who_json() fail (json_pack refuses it), and every
# decision line of the session loses workload, process, user and target
# ("workload":null): an agent can strip its identity from the audit log.
t_review_declog_exe_not_utf8() {
	rv_setup
	write_config "$(rv_policy "$RV_RULES")"
	bridle_start
	local d out
	d=$(printf '%s/bin\xff' "$W")
	mkdir -p "$d" && cp /usr/bin/python3 "$d/python3" || fail "copy python3"
	out=$(pod_pg "$d/python3" "$PGRAW" --timeout 3 10.77.0.1 5432 startup read "Q select 'rv-exe'" read 2>&1)
	assert_match "$out" 'D rv-exe' "the SELECT ran: $out"
	sleep 0.3
	rv_valid_lines
	assert_eq "$(dlog '.request == "connect"' | wc -l)" 1 "one connection"
	assert_eq "$(dlog '.workload == "agent-a" and (.process.pid // 0) > 0' | wc -l)" 2 \
		"both lines (connect, SELECT) name the workload and the process: $(cat "$W/log/decisions.jsonl")"
}

# A statement padded with control characters (each escaped to six bytes)
# overflows the 4 KiB line, and the line is replaced by
# {"ts","session","decision","truncated"}: the refusal no longer says
# which rule, which statement, nor who. The agent chooses the padding.
t_review_declog_padding() {
	rv_setup
	write_config "$(rv_policy "$RV_RULES")"
	bridle_start
	local sql
	sql="delete from orders where id = 1$(printf '\t%.0s' $(seq 800))"
	pod_psql -c "$sql" >/dev/null
	sleep 0.3
	rv_valid_lines
	assert_eq "$(dlog '(.request // "" | test("^DELETE")) and .decision == "deny" and .rule == "default" and .workload == "agent-a"' | wc -l)" 1 \
		"the DELETE's refusal names its rule and workload: $(tail -n1 "$W/log/decisions.jsonl")"
}

# The decision log promises the statement "with its literals replaced by
# ?" (docs/policy.md), but the text logged is the cache key, and
# cache_key() calls a statement "not plain" (X, kept as written) whenever
# a quote follows a letter or digit: the closing quote of nearly every
# string literal ('sekret-4711'). So string literals reach decisions.jsonl.
t_review_declog_literals() {
	rv_setup
	write_config "$(rv_policy "$RV_RULES")"
	bridle_start
	local out
	out=$(pod_pg /usr/bin/python3 "$PGRAW" --timeout 3 10.77.0.1 5432 startup read "Q select 'sekret-4711'" read 2>&1)
	assert_match "$out" 'D sekret-4711' "the SELECT ran: $out"
	sleep 0.3
	assert_match "$(dlog '.request == "SELECT"' | wc -l)" '^[1-9]' "the SELECT was logged"
	if grep -q 'sekret-4711' "$W/log/decisions.jsonl"; then
		fail "a string literal is in the decision log: $(grep 'sekret-4711' "$W/log/decisions.jsonl")"
	fi
}

# Decided again at Execute (after a reload, or once the token expired),
# a prepared statement is logged as its raw text (on_execute passes
# po->stmt->text), not the normalised text Parse logged: a number the
# normaliser does replace (Parse logs "select ?") comes out as written.
t_review_declog_execute_literals() {
	rv_setup
	write_config "$(rv_policy "$RV_RULES")"
	bridle_start
	spawn "pgraw session" "$AGENT_CG" "$POD" setsid -w /usr/bin/python3 "$PGRAW" --timeout 5 10.77.0.1 5432 \
		startup read "P:s1 select 4711000 as n" "B::s1" E S read "touch $W/one" "waitfile $W/go" \
		"B::s1" E S read "touch $W/two" >"$W/session.out" 2>&1
	wait_until 5 test -f "$W/one" || fail "no first execute: $(cat "$W/session.out")"
	# A reload (same rules, new version): Execute decides again.
	write_config "$(rv_policy "$(jq -c '.[0].name = "agents read v2"' <<<"$RV_RULES")")"
	ctl reload >/dev/null 2>&1 || fail "reload"
	touch "$W/go"
	wait_until 5 test -f "$W/two" || fail "no second execute: $(cat "$W/session.out")"
	assert_eq "$(grep -c 'D 4711000' "$W/session.out")" 2 "both executes ran: $(cat "$W/session.out")"
	sleep 0.3
	assert_eq "$(dlog '.rule == "agents read"' | jq -r .statement | grep -c 'select ? as n')" 1 "Parse logged the normalised text"
	assert_match "$(dlog '.rule == "agents read v2"' | wc -l)" '^[1-9]' "the Execute after the reload was logged"
	if grep -q '4711000' "$W/log/decisions.jsonl"; then
		fail "a literal is in the decision log: $(grep '4711000' "$W/log/decisions.jsonl")"
	fi
}

# "Every decision ... each statement message ... is one JSON line": a
# statement refused because it does not parse (and FunctionCall, a
# multi-statement Parse, a reserved name) leaves no line at all.
t_review_declog_unparseable() {
	rv_setup
	write_config "$(rv_policy "$RV_RULES")"
	bridle_start
	local out
	out=$(pod_pg /usr/bin/python3 "$PGRAW" --timeout 3 10.77.0.1 5432 startup read "Q selec 1 frm orders" read 2>&1)
	assert_match "$out" 'statement not understood' "the statement was refused: $out"
	sleep 0.3
	assert_match "$(dlog '.request != "connect" and .decision == "deny"' | wc -l)" '^[1-9]' \
		"decision log: the refusal of the unparseable statement ($(cat "$W/log/decisions.jsonl"))"
}

e2e_main "$@"
