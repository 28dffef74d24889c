#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The policy language end to end (docs/policy.md): rules on the connecting
# process, users from OIDC tokens (a file of keys, and keys fetched over
# HTTPS and rotated), token scopes and expiry, shadow mode, reload when the
# policy file changes, the decision log, and `bridle policy
# check/explain/stats`. A real PostgreSQL (pg.sh) and unmodified psql and
# psycopg2 in the pod; every case checks the server's log or data too.
# Every policy here is built in the new syntax (conditions under "when").
# Tokens are signed by policy_token.py (Python `cryptography`).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"

AGENT_PG=$E2E_ROOT/examples/agent_pg.py
PGRAW=$E2E_DIR/pgraw.py
TOKPY=$E2E_DIR/policy_token.py
ISS=https://idp.test

# ---------------------------------------------------------------- helpers

# pol_setup: the pod (workload agent-a, label app=agent) and the server.
pol_setup() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	pg_start
}

# pol_policy RULES_JSON [TOP_JSON] [TARGET_JSON]: a policy with the one
# target shop-db (the server, as app) and RULES; TOP_JSON is merged over
# the policy (issuers, mode...), TARGET_JSON over the target.
pol_policy() {
	local top=${2:-'{}'} tgt=${3:-'{}'}
	jq -n --arg pw "$W/app.pw" --argjson rules "$1" --argjson top "$top" --argjson tgt "$tgt" '{
	  default: "deny",
	  targets: [
	    ({name: "shop-db", address: "10.77.0.1", port: 5432, protocol: "postgres",
	      tls: "disable", credentials: {user: "app", password_file: $pw}} + $tgt)
	  ],
	  rules: $rules
	} + $top' || fail "pol_policy: bad JSON"
}

# pol_issuer [EXTRA_JSON]: issuer corp ($ISS, audience bridle, keys in
# $W/jwks.json), EXTRA merged over it.
pol_issuer() {
	local x=${1:-'{}'}
	jq -n --arg iss "$ISS" --arg jwks "$W/jwks.json" --argjson x "$x" \
		'{name: "corp", issuer: $iss, audience: "bridle", jwks_file: $jwks} + $x'
}

# tok_key NAME: a new Ed25519 key, $W/keys/NAME.pem.
tok_key() {
	mkdir -p "$W/keys"
	"$PY" "$TOKPY" keygen "$W/keys/$1.pem" || fail "keygen $1"
}

# tok_jwks OUT NAME=KID...: the public keys NAME as a JWKS in OUT.
tok_jwks() {
	local out=$1 a=() s
	shift
	for s in "$@"; do a+=("$W/keys/${s%%=*}.pem=${s#*=}"); done
	"$PY" "$TOKPY" jwks "$out" "${a[@]}" || fail "jwks $out"
}

# tok_sign NAME KID [CLAIMS_JSON]: a token signed with key NAME, header kid
# KID; the claims are iss $ISS, aud bridle, sub alice, iat now, exp in 5
# minutes, with CLAIMS_JSON merged over them.
tok_sign() {
	local now claims x=${3:-'{}'}
	now=$(date +%s)
	claims=$(jq -nc --arg iss "$ISS" --argjson now "$now" --argjson x "$x" \
		'{iss: $iss, aud: "bridle", sub: "alice", iat: $now, exp: ($now + 300)} + $x') ||
		fail "tok_sign: bad claims ${3:-}"
	"$PY" "$TOKPY" sign "$W/keys/$1.pem" "$2" "$claims" || fail "sign with $1"
}

# tok_psql TOKEN ARGS...: unmodified psql in the pod with TOKEN as its
# password (PGPASSWORD, which pod_pg clears and this sets again).
tok_psql() {
	local tok=$1
	shift
	pod_pg env PGPASSWORD="$tok" "$PGBIN/psql" -X -w -v ON_ERROR_STOP=0 -v VERBOSITY=verbose \
		-d "host=$PG_HOST port=$PG_PORT dbname=shop user=app sslmode=disable" "$@" 2>&1
}

# raw_login TOKEN: a hand-made login from the pod (pgraw.py) that answers
# bridle's password request with TOKEN; prints the messages received.
raw_login() {
	local hex
	hex=$("$PY" -c 'import struct, sys; t = sys.argv[1].encode() + b"\0"; print((b"p" + struct.pack("!I", len(t) + 4) + t).hex())' "$1")
	pod_pg /usr/bin/python3 "$PGRAW" --timeout 3 10.77.0.1 5432 startup send 'sleep 0.2' "hex $hex" readclose 2>&1
}

# dlog JQ_FILTER: the decision log lines that match, compact.
dlog() { jq -c "select($1)" "$W/log/decisions.jsonl" 2>/dev/null; }
dlog_count() { dlog "$1" | wc -l; }

# pg_conns: connections the server received from the pod's address;
# pg_logins: logins it let in.
pg_conns() { grep -c 'connection received: host=10\.77\.0\.2 ' "$W/pg.log"; }
pg_logins() { grep -c 'connection authorized: user=app ' "$W/pg.log"; }

# rule_stat RULE FIELD: a counter of `bridle policy stats --json`.
rule_stat() {
	ctl policy stats --json | jq -r --arg r "$1" --arg f "$2" \
		'.policy.rules[] | select(.name == $r) | .[$f]'
}

# status_field JQ: one value of `bridle status --json`; status_is JQ
# VALUE: it is VALUE; status_above JQ N: it is a number above N.
status_field() { status_json | jq -r "$1"; }
status_is() { [ "$(status_field "$1")" = "$2" ]; }
status_above() { [ "$(status_field "$1")" -gt "$2" ] 2>/dev/null; }

# The process rules of docs/policy.md: psql reads, python is refused at
# the door, deletes are refused with a message, updates nobody allows.
process_rules() {
	cat <<'EOF'
[
  {"name": "psql reads",
   "when": {"workload": {"labels": {"app": "agent"}}, "process": {"exe": "*/psql"},
            "target": "shop-db"},
   "action": "allow", "sql": {"commands": ["select"], "tables": ["public.*"]}},
  {"name": "no python", "when": {"process": {"exe": "/usr/bin/python3*"}},
   "action": "deny", "message": "scripts do not reach the database"},
  {"name": "no deletes", "when": {"target": "shop-db"}, "action": "deny",
   "message": "deletes are for people", "sql": {"commands": ["delete"]}}
]
EOF
}

# ------------------------------------------------------------------ cases

# One pod, two programs, two decisions: psql's SELECT runs; python
# (psycopg2) is refused at login by the exe rule, with its message, and the
# server never sees it. The decision log names each program and rule.
t_policy_process_exe() {
	pol_setup
	write_config "$(pol_policy "$(process_rules)")"
	bridle_start
	local out n psql_exe
	psql_exe=$(readlink -f "$PGBIN/psql")

	out=$(pod_psql -tA -c 'select count(*) from orders') || fail "psql through bridle failed: $out"
	assert_eq "$out" "$(pg_sql 'select count(*) from orders')" "psql: rows"
	pg_log_has 'statement: select count\(\*\) from orders' || fail "server log: psql's SELECT did not arrive"
	n=$(pg_conns)
	assert_eq "$n" 1 "server connections after psql"

	# psycopg2, same pod, same user: refused at login.
	out=$(pod_pg /usr/bin/python3 "$AGENT_PG" 10.77.0.1 5432 shop app "select 'from-python', count(*) from customers" 2>&1)
	assert_eq "$(grep '^{' <<<"$out" | head -n1 | jq -r .connect)" false "psycopg2: connect result ($out)"
	assert_match "$out" 'FATAL: +bridle: scripts do not reach the database \(rule \\"no python\\"\)' "psycopg2: the deny rule's message"
	# The same refusal seen on the wire: FATAL with SQLSTATE 28000.
	out=$(pod_pg /usr/bin/python3 "$PGRAW" 10.77.0.1 5432 startup readclose 2>&1)
	assert_match "$out" '^E 28000 .*scripts do not reach the database' "python, raw protocol: ErrorResponse 28000"
	assert_eq "$(pg_conns)" "$n" "server connections after the refused python logins"
	pg_log_lacks 'from-python' || fail "the server received python's statement"

	# A DELETE from psql: the deny rule with an sql part refuses the
	# statement, not the connection.
	out=$(pod_psql -v VERBOSITY=verbose -c 'delete from orders where id = 1')
	assert_match "$out" 'ERROR: +42501: .*deletes are for people' "psql: delete denied"
	pg_log_lacks 'delete from orders' || fail "the server received the DELETE"
	assert_eq "$(pg_sql 'select count(*) from orders where id = 1')" 1 "order 1 still there"

	# The decision log: psql allowed (connect and statement) by "psql
	# reads", python denied by "no python", each with its executable.
	assert_match "$(dlog_count ".request == \"connect\" and .decision == \"allow\" and .rule == \"psql reads\" and .process.exe == \"$psql_exe\" and .workload == \"agent-a\"")" \
		'^[1-9]' "decision log: psql's connection allowed by 'psql reads' ($(dlog '.request == "connect"' | head -n 3))"
	assert_match "$(dlog_count ".decision == \"allow\" and .rule == \"psql reads\" and (.request | test(\"^SELECT\")) and .process.exe == \"$psql_exe\"")" \
		'^[1-9]' "decision log: psql's SELECT allowed ($(dlog '.request != "connect"' | head -n 3))"
	assert_eq "$(dlog_count '.request == "connect" and .decision == "deny" and .rule == "no python" and (.process.exe | test("^/usr/bin/python3")) and .process.pid > 0')" \
		2 "decision log: python's two connections denied by 'no python' ($(dlog '.decision == "deny"' | head -n 3))"
	assert_eq "$(dlog_count '(.process.exe // "" | test("python")) and .decision != "deny"')" 0 "decision log: anything allowed to python"
	assert_eq "$(dlog_count '(.request | test("^DELETE")) and .decision == "deny" and .rule == "no deletes"')" 1 "decision log: psql's DELETE"
}

# A target that requires a user token: psql presents it as its password;
# the statement runs only if the rules allow it AND the token's scopes
# grant it. Missing, forged, mis-addressed and expired tokens are refused
# with 28P01 before the server sees a connection. The token is in no log.
t_policy_token_scopes() {
	pol_setup
	tok_key k1
	tok_key stranger
	tok_jwks "$W/jwks.json" k1=k1
	write_config "$(pol_policy '[
	  {"name": "users read and delete", "when": {"user": {}, "target": "shop-db"},
	   "action": "allow", "sql": {"commands": ["select", "delete"], "tables": ["public.*"]}}
	]' "{\"issuers\": [$(pol_issuer '{"scopes_claim": "scope"}')]}" '{"require_user": true}')"
	bridle_start
	local out tok wide forged aud expired n toks=()

	tok=$(tok_sign k1 k1 '{"scope": "openid sql:select:public.orders"}')
	toks+=("$tok")
	out=$(tok_psql "$tok" -tA -c "select 'scoped', count(*) from orders" \
		-c "select 'scoped', count(*) from customers" -c 'delete from orders where id = 4')
	assert_match "$out" '(^|'$'\n'')scoped\|4('$'\n''|$)' "token sql:select:public.orders: SELECT orders"
	assert_match "$out" "ERROR: +42501: .*scopes do not allow this statement \(rule \"token\"\)" "SELECT customers: denied by the token"
	[ "$(grep -c 'rule "token"' <<<"$out")" = 2 ] || fail "SELECT customers and DELETE orders: expected two refusals by rule token: $(tr '\n' '|' <<<"$out")"
	pg_log_has "statement: select 'scoped', count\(\*\) from orders" || fail "server log: the allowed SELECT did not arrive"
	pg_log_lacks "from customers" || fail "server log: the SELECT on customers arrived"
	pg_log_lacks "delete from orders" || fail "server log: the DELETE arrived"
	assert_eq "$(pg_sql 'select count(*) from orders')" 4 "orders rows after the refused DELETE"

	# Control: a token whose scopes grant the DELETE gets it (the rule
	# allows it: the refusal above was the token's).
	wide=$(tok_sign k1 k1 '{"sub": "bob", "scope": ["sql:select", "sql:delete:public.orders"]}')
	toks+=("$wide")
	out=$(tok_psql "$wide" -tA -c 'delete from orders where id = 4')
	assert_match "$out" '^DELETE 1$' "token with sql:delete:public.orders: DELETE"
	assert_eq "$(pg_sql 'select count(*) from orders')" 3 "orders rows after the allowed DELETE"
	pg_log_has 'statement: delete from orders where id = 4' || fail "server log: the allowed DELETE did not arrive"

	# Refused logins: 28P01 with the reason, and no login upstream.
	n=$(pg_logins)
	out=$(pod_psql -c 'select 1')
	assert_match "$out" 'no password supplied' "psql without a token (libpq asks for the password)"
	out=$(raw_login "")
	assert_match "$out" '^R 3'$'\n''E 28P01 bridle: user token rejected: ' "raw: an empty token"
	forged=$(tok_sign stranger k1 '{"scope": "sql:*:public.*"}')
	aud=$(tok_sign k1 k1 '{"aud": "someone-else", "scope": "sql:*:public.*"}')
	expired=$(tok_sign k1 k1 "{\"exp\": $(($(date +%s) - 600)), \"iat\": $(($(date +%s) - 900)), \"scope\": \"sql:*:public.*\"}")
	toks+=("$forged" "$aud" "$expired")
	local t what
	for what in "forged:bad signature" "aud:wrong audience" "expired:token expired"; do
		t=${what%%:*}
		t=${!t}
		# psql shows the reason; the raw client the SQLSTATE too.
		out=$(tok_psql "$t" -c "select '${what%%:*}'")
		assert_match "$out" "FATAL: +bridle: user token rejected: ${what#*:}" "psql with the ${what%%:*} token"
		out=$(raw_login "$t")
		assert_match "$out" "^R 3"$'\n'"E 28P01 bridle: user token rejected: ${what#*:}"$'\n'"CLOSED" "raw login with the ${what%%:*} token"
	done
	assert_eq "$(pg_logins)" "$n" "server logins after the refused logins"
	pg_log_lacks "select '(forged|aud|expired)'" || fail "server log: a statement of a refused login arrived"

	# The decision log names the users; no token is anywhere.
	assert_match "$(dlog_count '.request == "login" and .decision == "allow" and .user.sub == "alice" and .user.issuer == "corp"')" '^[1-9]' \
		"decision log: alice's login ($(dlog '.request == "login"' | head -n 2))"
	assert_eq "$(dlog_count '(.request | test("^SELECT")) and .decision == "deny" and .rule == "token" and .user.sub == "alice"')" 1 \
		"decision log: alice's SELECT on customers denied by token"
	assert_eq "$(dlog_count '(.request | test("^DELETE")) and .decision == "allow" and .user.sub == "bob"')" 1 "decision log: bob's DELETE"
	sessions_json >"$W/sessions.json" 2>&1
	status_json >"$W/status.json" 2>&1
	# The sessions list names the user of each token session.
	assert_match "$(jq -r '[.[] | .user // empty] | unique | join(" ")' "$W/sessions.json")" 'alice' \
		"bridle sessions --json: the token's subject"
	assert_match "$(ctl sessions | awk 'NR > 1 {print $5}' | sort -u | tr '\n' ' ')" 'alice' \
		"bridle sessions: a USER column"
	assert_match "$(ctl status | head -n1)" 'policy sha256:[0-9a-f]{16} generation 1 \(enforce mode\)' \
		"bridle status: the policy's version and mode"
	bridle_stop
	for t in "${toks[@]}"; do
		local hits
		hits=$(grep -rlF -- "$t" "$W/log" "$BRIDLE_LOG" "$W/sessions.json" "$W/status.json" "$W/pg.log" 2>/dev/null)
		[ -z "$hits" ] || fail "a token appears in: $(tr '\n' ' ' <<<"$hits")"
		# Nor its signature alone (a token cut short in a log line).
		hits=$(grep -rlF -- "${t##*.}" "$W/log" "$BRIDLE_LOG" "$W/pg.log" 2>/dev/null)
		[ -z "$hits" ] || fail "a token's signature appears in: $(tr '\n' ' ' <<<"$hits")"
	done
}

# A session outlives its token: one psycopg2 session, a SELECT before the
# token's exp, and the next SELECT after it is refused ("token expired")
# without reaching the server.
t_policy_token_expiry() {
	pol_setup
	tok_key k1
	tok_jwks "$W/jwks.json" k1=k1
	write_config "$(pol_policy '[
	  {"name": "users read", "when": {"user": {"sub": "alice"}},
	   "action": "allow", "sql": {"commands": ["select"], "tables": ["public.*"],
	                              "functions": ["pg_backend_pid"]}}
	]' "{\"issuers\": [$(pol_issuer '{"skew_seconds": 0}')]}" '{"require_user": true}')"
	bridle_start
	local tok exp out
	exp=$(($(date +%s) + 3))
	tok=$(tok_sign k1 k1 "{\"exp\": $exp}")
	spawn "psycopg2 session" "$AGENT_CG" "$POD" setsid -w env PGPASSWORD="$tok" PGPASSFILE="$PG_NOPASSFILE" \
		PGSSLMODE=disable /usr/bin/python3 "$PGRAW" --psycopg 10.77.0.1 5432 'autocommit on' \
		"sql select 'before-expiry', pg_backend_pid()" "touch $W/first" "waitfile $W/expired" \
		"sql select 'after-expiry', pg_backend_pid()" "sql select 'still-expired'" "touch $W/done" \
		>"$W/session.out" 2>&1
	wait_until 5 test -f "$W/first" || fail "session: no first result: $(cat "$W/session.out")"
	assert_match "$(head -n1 "$W/session.out")" '^OK \[\["before-expiry", [0-9]+\]\]$' "SELECT before the expiry"
	[ "$(date +%s)" -le "$exp" ] || fail "test too slow: the first SELECT ran after exp"
	while [ "$(date +%s)" -le "$exp" ]; do sleep 0.1; done
	touch "$W/expired"
	wait_until 5 test -f "$W/done" || fail "session: no end: $(cat "$W/session.out")"
	out=$(cat "$W/session.out")
	assert_match "$(sed -n 2p <<<"$out")" '^ERR 42501 .*token expired: reconnect with a fresh token' "SELECT after the expiry"
	assert_match "$(sed -n 3p <<<"$out")" '^ERR 42501 .*token expired' "the next SELECT too"
	assert_no_match "$out" 'CLOSED' "the session stays open"
	pg_log_has "statement: select 'before-expiry'" || fail "server log: the first SELECT did not arrive"
	pg_log_lacks "after-expiry|still-expired" || fail "server log: a SELECT after the expiry arrived"
	assert_eq "$(dlog_count '(.request | test("^SELECT")) and .decision == "deny" and .rule == "token" and .user.sub == "alice"')" 2 \
		"decision log: the two SELECTs after the expiry"
}

# Shadow mode: a shadow rule denying DELETE lets it run and logs the
# would-be denial; a policy in shadow mode runs what its default denies.
t_policy_shadow() {
	pol_setup
	write_config "$(pol_policy '[
	  {"name": "agents work on the shop", "when": {"workload": {"name": "agent-*"}},
	   "action": "allow", "sql": {"commands": ["select", "insert", "update", "delete"]}},
	  {"name": "trying: no deletes", "mode": "shadow", "action": "deny",
	   "message": "agents never delete", "sql": {"commands": ["delete"]}}
	]')"
	bridle_start
	local out
	out=$(pod_psql -tA -c 'delete from orders where id = 4' -c 'select count(*) from orders')
	assert_eq "$out" $'DELETE 1\n3' "shadow-denied DELETE runs"
	assert_eq "$(pg_sql 'select count(*) from orders where id = 4')" 0 "order 4 is gone on the server"
	pg_log_has 'statement: delete from orders where id = 4' || fail "server log: the DELETE did not arrive"
	assert_eq "$(dlog_count '(.request | test("^DELETE")) and .decision == "shadow_deny" and .rule == "trying: no deletes" and .allowed_by == "agents work on the shop"')" 1 \
		"decision log: shadow_deny ($(dlog '.request | test("^DELETE")'))"
	assert_eq "$(dlog_count '(.request | test("^SELECT")) and .decision == "allow" and .rule == "agents work on the shop"')" 1 "decision log: the SELECT"
	assert_eq "$(rule_stat 'trying: no deletes' shadow)" 1 "stats: shadow counter of the shadow rule"
	assert_eq "$(rule_stat 'trying: no deletes' deny)" 0 "stats: deny counter of the shadow rule"
	grep -q 'would be denied by rule \\\?"trying: no deletes' "$BRIDLE_LOG" || fail "bridle log: no shadow line"

	# The whole policy in shadow mode, default deny: an UPDATE no rule
	# allows runs, and is logged as the default's would-be denial.
	bridle_stop
	write_config "$(pol_policy '[
	  {"name": "agents read", "when": {"workload": {"labels": {"app": "agent"}}},
	   "action": "allow", "sql": {"commands": ["select"]}}
	]' '{"mode": "shadow"}')"
	bridle_start
	assert_eq "$(status_field .policy.mode)" shadow "status: policy mode"
	out=$(pod_psql -tA -c 'update orders set amount = 0 where id = 1')
	assert_eq "$out" 'UPDATE 1' "UPDATE under a shadow policy"
	assert_eq "$(pg_sql 'select amount from orders where id = 1')" 0 "order 1's amount on the server"
	pg_log_has 'statement: update orders set amount = 0 where id = 1' || fail "server log: the UPDATE did not arrive"
	assert_eq "$(dlog_count '(.request | test("^UPDATE")) and .decision == "shadow_deny" and .rule == "default"')" 1 \
		"decision log: the UPDATE shadow-denied by default ($(dlog '.request | test("^UPDATE")'))"
	assert_eq "$(rule_stat default shadow)" 1 "stats: shadow counter of default"
}

# The policy file changes under a running bridle: the open session decides
# its next statement with the new policy (no SIGHUP); an invalid file is
# refused, counted, logged, and the session goes on under the last good one.
t_policy_reload_file() {
	pol_setup
	mkdir -p "$W/pol"
	local pf=$W/pol/policy.json out pid1 gen
	pol_policy '[
	  {"name": "agent reads", "when": {"workload": {"name": "agent-a"}},
	   "action": "allow", "sql": {"commands": ["select"], "tables": ["public.*"],
	                              "functions": ["pg_backend_pid"]}}
	]' >"$pf"
	write_config "\"$pf\""
	bridle_start
	assert_eq "$(status_field .policy.source)" "$pf" "status: policy source"
	spawn "psycopg2 session" "$AGENT_CG" "$POD" setsid -w env PGPASSFILE="$PG_NOPASSFILE" PGSSLMODE=disable \
		/usr/bin/python3 "$PGRAW" --psycopg 10.77.0.1 5432 'autocommit on' \
		"sql select 'r1', pg_backend_pid(), count(*) from orders" "touch $W/s1" "waitfile $W/g2" \
		"sql select 'r2', pg_backend_pid(), count(*) from orders" "touch $W/s2" "waitfile $W/g3" \
		"sql select 'r3', pg_backend_pid(), count(*) from orders" \
		"sql select 'r4', pg_backend_pid(), count(*) from customers" "touch $W/s3" \
		>"$W/session.out" 2>&1
	wait_until 5 test -f "$W/s1" || fail "session: no first result: $(cat "$W/session.out")"
	out=$(sed -n 1p "$W/session.out")
	assert_match "$out" '^OK \[\["r1", [0-9]+, 4\]\]$' "r1 under the first policy"
	pid1=$(sed -E 's/^OK \[\["r1", ([0-9]+),.*/\1/' <<<"$out")
	gen=$(status_field .policy.generation)

	# v2: orders closed, the rest of public readable. Written aside and
	# renamed over the file, as an editor does; no signal.
	pol_policy '[
	  {"name": "agent reads", "when": {"workload": {"name": "agent-a"}},
	   "action": "allow", "sql": {"commands": ["select"], "tables": ["public.*"],
	                              "functions": ["pg_backend_pid"]}},
	  {"name": "orders closed", "action": "deny", "message": "orders are closed",
	   "sql": {"tables": ["public.orders"]}}
	]' >"$pf.new"
	mv "$pf.new" "$pf"
	wait_until 5 status_above .policy.generation "$gen" ||
		fail "the policy was not reloaded within 5 s of the rename"
	gen=$(status_field .policy.generation)
	touch "$W/g2"
	wait_until 5 test -f "$W/s2" || fail "session: no second result: $(cat "$W/session.out")"
	assert_match "$(sed -n 2p "$W/session.out")" '^ERR 42501 .*orders are closed \(rule "orders closed"\)' "r2, same session, under v2"
	pg_log_lacks "select 'r2'" || fail "server log: r2 arrived"

	# v3: invalid (a misspelt key). Refused; v2 stays.
	jq '.rules[1].whne = {}' "$pf" >"$pf.new" || fail "jq"
	mv "$pf.new" "$pf"
	wait_until 5 status_is .policy.reload_failures 1 ||
		fail "reload_failures did not become 1: $(status_json | jq -c .policy)"
	assert_eq "$(status_field .policy.generation)" "$gen" "generation after the invalid policy"
	grep -q 'reload_failed' "$BRIDLE_LOG" || fail "bridle log: no reload_failed"
	assert_match "$(grep 'reload_failed' "$BRIDLE_LOG" | tail -n1)" 'whne' "reload_failed names the bad key"
	touch "$W/g3"
	wait_until 5 test -f "$W/s3" || fail "session: no third result: $(cat "$W/session.out")"
	assert_match "$(sed -n 3p "$W/session.out")" '^ERR 42501 .*orders are closed' "r3 under the kept v2"
	assert_eq "$(sed -n 4p "$W/session.out")" "OK [[\"r4\", $pid1, 3]]" "r4: same session (backend $pid1), customers readable"
	assert_no_match "$(cat "$W/session.out")" 'CLOSED' "the session stayed open"
	pg_log_has "statement: select 'r4', pg_backend_pid\(\), count\(\*\) from customers" || fail "server log: r4 did not arrive"
	pg_log_lacks "select 'r3'" || fail "server log: r3 arrived"
	# One bridle session for r1..r4.
	assert_eq "$(dlog '.request != "connect"' | jq -r .session | sort -u | wc -l)" 1 "decision log: r1..r4 in one session"
	assert_eq "$(dlog '.rule == "orders closed"' | jq -r .policy.generation | sort -u | tr '\n' ' ')" "$gen " \
		"decision log: the denials carry the v2 generation"
}

# Keys fetched over HTTPS (a CA of the case's own) and rotated: after the
# issuer serves only k2, the first k2 login is refused (unknown key id)
# and makes bridle refetch; a retry a moment later gets in.
t_policy_jwks_rotation() {
	pol_setup
	local d=$W/jwksrv port out tok2 i ok=0
	mkdir -p "$d/www"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" \
		-out "$d/ca.crt" -days 1 -subj /CN=be2e-jwks-ca >/dev/null 2>&1 || fail "openssl: CA"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/srv.key" \
		-out "$d/srv.csr" -subj /CN=127.0.0.1 >/dev/null 2>&1 || fail "openssl: CSR"
	printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext"
	openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 1 \
		-extfile "$d/ext" -out "$d/srv.crt" >/dev/null 2>&1 || fail "openssl: sign"
	tok_key k1
	tok_key k2
	tok_jwks "$d/www/jwks.json" k1=k1
	spawn "jwks https server" "$CG/svc" "" "$PY" "$TOKPY" serve "$d/www" "$d/srv.crt" "$d/srv.key" \
		>"$d/port" 2>"$d/err"
	wait_until 5 test -s "$d/port" || fail "jwks server did not start: $(cat "$d/err")"
	port=$(cat "$d/port")
	write_config "$(pol_policy '[
	  {"name": "users read", "when": {"user": {"issuer": "corp"}},
	   "action": "allow", "sql": {"commands": ["select"]}}
	]' "{\"issuers\": [$(jq -n --arg iss "$ISS" --arg url "https://127.0.0.1:$port/jwks.json" --arg ca "$d/ca.crt" \
		'{name: "corp", issuer: $iss, audience: "bridle", jwks_url: $url, ca_file: $ca}')]}" '{"require_user": true}')"
	bridle_start
	wait_until 5 status_is '.issuers[0].keys' 1 ||
		fail "issuer's keys not fetched: $(status_json | jq -c .issuers)"
	out=$(tok_psql "$(tok_sign k1 k1)" -tA -c "select 'with-k1'")
	assert_eq "$out" with-k1 "login with k1"
	pg_log_has "statement: select 'with-k1'" || fail "server log: k1's SELECT did not arrive"

	# Rotation: the issuer now serves k2 only.
	tok_jwks "$d/www/jwks.json" k2=k2
	tok2=$(tok_sign k2 k2)
	out=$(tok_psql "$tok2" -tA -c "select 'with-k2'")
	assert_match "$out" 'FATAL: +bridle: user token rejected: unknown key id "k2"' "first login with k2"
	for i in $(seq 40); do
		out=$(tok_psql "$tok2" -tA -c "select 'with-k2'")
		[ "$out" = with-k2 ] && ok=1 && break
		sleep 0.1
	done
	[ $ok = 1 ] || fail "k2 still refused after the refetch: $out"
	note "k2 accepted after $i retries"
	pg_log_has "statement: select 'with-k2'" || fail "server log: k2's SELECT did not arrive"
	out=$(tok_psql "$(tok_sign k1 k1)" -tA -c "select 'k1-again'")
	assert_match "$out" 'FATAL: +bridle: user token rejected: unknown key id "k1"' "k1 after the rotation"
	pg_log_lacks "select 'k1-again'" || fail "server log: k1's SELECT after the rotation arrived"
	out=$(status_json | jq -c '.issuers[0]')
	assert_eq "$(jq -r .url <<<"$out")" "https://127.0.0.1:$port/jwks.json" "status: issuer url"
	assert_eq "$(jq -r .keys <<<"$out")" 1 "status: issuer keys"
	assert_match "$(jq -r .fetches <<<"$out")" '^([2-9]|[1-9][0-9]+)$' "status: issuer fetches ($out)"
	assert_eq "$(jq -r .last_error <<<"$out")" null "status: issuer last_error"
	assert_match "$(grep -c 'GET /jwks.json' "$d/www/requests.log")" '^([2-9]|[1-9][0-9]+)$' "jwks server: requests"
}

# `bridle policy check` lists every error with its JSON path; `bridle
# policy explain` decides as the enforcer did.
t_policy_check_explain() {
	pol_setup
	local out rc bad=$W/bad.json
	jq -n --arg pw "$W/app.pw" '{
	  default: "deny",
	  targets: [{name: "shop-db", address: "10.77.0.1", port: 5432, protocol: "postgres",
	             credentials: {user: "app", password_file: $pw}},
	            {name: "other", address: "10.77.0.9", credentails: {user: "app"}}],
	  rules: [
	    {name: "r1", whne: {target: "shop-db"}, action: "allow"},
	    {name: "r2", when: {target: "shop_db"}, action: "allow"},
	    {name: "r3", when: {target: "shop-db"}, action: "alow"},
	    {name: "r4", when: {process: {exe: "*/psql", uid: "root"}}, action: "allow"}
	  ]
	}' >"$bad"
	out=$("$BRIDLE" policy check "$bad" 2>&1)
	rc=$?
	note "policy check: $out"
	assert_eq "$rc" 1 "policy check exit status"
	assert_match "$out" 'targets\[1\]\.credentails: unknown key: did you mean "credentials"' "check: misspelt credentials"
	assert_match "$out" 'rules\[0\]\.whne.*did you mean "when"' "check: misspelt when"
	assert_match "$out" 'rules\[1\]\.when\.target.*did you mean "shop-db"' "check: unknown target"
	assert_match "$out" 'rules\[2\]\.action: "alow" is not an action' "check: bad action"
	assert_match "$out" 'rules\[3\]\.when\.process\.uid' "check: uid not a number"
	assert_match "$out" '5 errors' "check: the error count"
	out=$("$BRIDLE" policy check --json "$bad" 2>&1)
	assert_eq "$(jq -r '.ok, (.errors | length)' <<<"$out" | tr '\n' ' ')" "false 5 " "check --json"

	# The enforcer's decisions for a few statements, then explain's.
	write_config "$(pol_policy "$(process_rules)")"
	out=$("$BRIDLE" policy check "$W/config.json" 2>&1) || fail "policy check of the case's config: $out"
	bridle_start
	local sqls=("select count(*) from orders" "delete from orders where id = 2"
		"update orders set amount = 0 where id = 2" "select 1 from hr.salaries") s psql_exe e x n
	psql_exe=$(readlink -f "$PGBIN/psql")
	for s in "${sqls[@]}"; do
		# The enforcer's decision: the statement line this psql added.
		n=$(lines "$W/log/decisions.jsonl")
		pod_psql -c "$s" >/dev/null
		e=$(tail -n +$((n + 1)) "$W/log/decisions.jsonl" | jq -c 'select(.request != "connect")' | tail -n1)
		[ -n "$e" ] || fail "decision log: no decision for '$s'"
		assert_eq "$(jq -r .process.exe <<<"$e")" "$psql_exe" "decision log: exe of '$s'"
		x=$("$BRIDLE" policy explain "$W/config.json" --workload agent-a --exe "$psql_exe" --target shop-db --sql "$s" --json 2>&1) ||
			fail "explain '$s': $x"
		assert_eq "$(jq -r '.statements[-1] | .decision + " " + .rule' <<<"$x")" "$(jq -r '.decision + " " + .rule' <<<"$e")" \
			"explain vs enforcer for '$s'"
	done
	pod_pg /usr/bin/python3 "$AGENT_PG" 10.77.0.1 5432 shop app "select 1" >/dev/null 2>&1
	assert_eq "$(pg_sql 'select count(*) from orders where id = 2 and amount > 0')" 1 "order 2 untouched"
	pg_log_has 'statement: select count\(\*\) from orders' || fail "server log: the allowed SELECT did not arrive"
	pg_log_lacks 'statement: (delete from orders|update orders|select 1 from hr\.salaries)' || fail "server log: a denied statement arrived"
	assert_eq "$(dlog_count '.request != "connect" and .decision == "allow"')" 1 "decision log: statements allowed"
	# python's connection.
	e=$(dlog '.request == "connect" and (.process.exe | test("python"))' | head -n1)
	[ -n "$e" ] || fail "decision log: no decision for python's connection"
	x=$("$BRIDLE" policy explain "$W/config.json" --workload agent-a --exe "$(jq -r .process.exe <<<"$e")" --target shop-db --json 2>&1) ||
		fail "explain python: $x"
	assert_eq "$(jq -r '.connect | .decision + " " + .rule' <<<"$x")" "$(jq -r '.decision + " " + .rule' <<<"$e")" "explain vs enforcer: python's connection"
	assert_eq "$(jq -r '.connect | .decision + " " + .rule' <<<"$x")" "deny no python" "python's connection"

	# "Every error, not only the first" (docs/policy.md): four in one
	# rule are four lines.
	jq '.rules = [{name: "r", when: {target: "shop_db", process: {uid: "root"}}, action: "alow", mdoe: "x"}]' \
		"$bad" >"$W/bad2.json"
	out=$("$BRIDLE" policy check "$W/bad2.json" 2>&1)
	note "policy check, one rule with four errors: $out"
	assert_eq "$(grep -c '\$\.rules\[0\]' <<<"$out")" 4 "check: errors reported for one rule with four (when.target, when.process.uid, action, mdoe)"
	assert_match "$out" 'rules\[0\]\.when\.target.*did you mean "shop-db"' "check, one bad rule: its unknown target"
	assert_match "$out" 'rules\[0\]\.when\.process\.uid' "check, one bad rule: its uid"
	assert_match "$out" 'rules\[0\]\.action' "check, one bad rule: its action"
	assert_match "$out" 'rules\[0\]\.mdoe.*did you mean "mode"' "check, one bad rule: its misspelt key"
}

e2e_main "$@"
