#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Just-in-time approval: a `review` rule holds one request (a simple query)
# until a person decides. Real PostgreSQL and unmodified psql in the pod;
# the decisions come from the CLI (`bridle approve`, `reject`); every
# case checks the server: its statement log and its data.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"

# The review rule: UPDATEs of orders by agents wait for a person.
review_rule() { # [TIMEOUT_S]
	jq -n --argjson t "${1:-300}" '{name: "orders need a person",
		when: {workload: {labels: {app: "agent"}}, target: "shop-db"},
		action: "review", message: "changes to orders are checked",
		timeout_seconds: $t, sql: {commands: ["update"], tables: ["public.orders"]}}'
}

review_setup() { # [TIMEOUT_S]
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	pg_start
	write_config "$(pg_policy "$(review_rule "${1:-300}")")"
	bridle_start
}

# held_psql OUT SQL...: psql in the background, its output in $W/OUT.
held_psql() {
	local out=$1
	shift
	local a=() q
	for q in "$@"; do a+=(-c "$q"); done
	spawn "psql $out" "$AGENT_CG" "$POD" env -u PGPASSWORD PGPASSFILE="$PG_NOPASSFILE" PGCONNECT_TIMEOUT=5 \
		PGSSLMODE=disable "$PGBIN/psql" -X -w -v ON_ERROR_STOP=0 \
		-d "host=$PG_HOST port=$PG_PORT dbname=shop user=app sslmode=disable" "${a[@]}" >"$W/$out" 2>&1
}

# pending_id: the id of the one pending review (waits for it).
pending_id() {
	local id=""
	for _ in $(seq 100); do
		id=$(ctl reviews --json | jq -r '[.[] | select(.state == "pending")][0].id // empty')
		[ -n "$id" ] && break
		sleep 0.05
	done
	[ -n "$id" ] || fail "no pending review"
	echo "$id"
}

amount() { pg_sql "select amount from orders where id = $1"; }

# gone SECS PID WHAT: PID has exited within SECS, or the case fails with
# WHAT.
gone() { wait_until "$1" sh -c "! kill -0 $2 2>/dev/null" || fail "$3"; }

# Held, then approved from the CLI: the agent got a notice, the UPDATE ran
# once approved (and not before), and the session went on.
t_review_approve() {
	review_setup
	local id before out
	before=$(amount 1)
	held_psql approve.out "update orders set amount = amount + 1 where id = 1" "select 'after-approve'"
	local pid=$LAST_PID
	id=$(pending_id)
	sleep 0.3
	pg_log_lacks 'update orders set amount = amount \+ 1' || fail "the held UPDATE reached the server before approval"
	assert_eq "$(amount 1)" "$before" "amount while held"
	out=$(ctl reviews --json)
	assert_eq "$(jq -r --argjson i "$id" '.[] | select(.id == $i) | [.workload, .target, .rule, .request] | join("|")' <<<"$out")" \
		"agent-a|shop-db|orders need a person|UPDATE on orders" "the review"
	assert_match "$(jq -r '.[0].statement' <<<"$out")" 'update orders set amount = amount \+ \$1 where id = \$2' "statement, literals replaced"
	ctl approve "$id" --reason "ok for ticket 7" >/dev/null || fail "approve failed"
	gone 5 "$pid" "psql did not finish after approval"
	out=$(cat "$W/approve.out")
	assert_match "$out" "NOTICE: +bridle: UPDATE on orders is held for review $id" "the agent's notice"
	assert_match "$out" "UPDATE 1" "the UPDATE's result after approval"
	assert_match "$out" "after-approve" "the session went on"
	assert_eq "$(pg_sql "select amount - $before from orders where id = 1")" "1.00" "amount after approval"
	pg_log_has 'update orders set amount = amount \+ 1 where id = 1' || fail "server log: no UPDATE"
	assert_eq "$(ctl reviews --all --json | jq -r --argjson i "$id" '.[] | select(.id == $i) | [.state, .by, .reason] | join("|")')" \
		"approved|cli:${SUDO_USER:-${USER:-root}}|ok for ticket 7" "the review's outcome"
	# Decided once only.
	out=$(ctl approve "$id" 2>&1) && fail "a second approval was accepted"
	assert_match "$out" "already" "second approval"
}

# Rejected: the agent gets 42501 with the reason; the server never sees
# the UPDATE; the session goes on.
t_review_reject() {
	review_setup
	local id before out
	before=$(amount 2)
	held_psql reject.out "update orders set amount = 0 where id = 2" "select 'after-reject'"
	local pid=$LAST_PID
	id=$(pending_id)
	out=$(ctl reject "$id" 2>&1) && fail "reject without a reason was accepted"
	ctl reject "$id" --reason "not during the freeze" >/dev/null || fail "reject failed"
	gone 5 "$pid" "psql did not finish after rejection"
	out=$(cat "$W/reject.out")
	assert_match "$out" "ERROR: +bridle: review $id rejected by cli:[^:]*: not during the freeze" "the agent's error"
	assert_match "$out" "after-reject" "the session went on"
	pg_log_lacks 'update orders set amount = 0' || fail "server log: the rejected UPDATE arrived"
	assert_eq "$(amount 2)" "$before" "amount after rejection"
}

# Not decided in time: expired, refused, nothing reached the server.
t_review_expire() {
	review_setup 1
	local out
	out=$(pod_psql -c "update orders set amount = 0 where id = 3" -c "select 'after-expiry'")
	assert_match "$out" "ERROR: +bridle: review [0-9]+ expired: no decision within 1 s" "the agent's error"
	assert_match "$out" "after-expiry" "the session went on"
	pg_log_lacks 'update orders set amount = 0' || fail "server log: the expired UPDATE arrived"
	assert_eq "$(ctl reviews --all --json | jq -r '.[0].state')" expired "the review's state"
}

# A held session does not hold the others: another psql works meanwhile.
t_review_others_go_on() {
	review_setup
	local id out
	held_psql held.out "update orders set amount = amount + 5 where id = 4"
	local pid=$LAST_PID
	id=$(pending_id)
	out=$(pod_psql -tA -c "select count(*) from orders")
	assert_eq "$out" 4 "another session while one is held"
	ctl reject "$id" --reason "test" >/dev/null || fail "reject failed"
	gone 5 "$pid" "held psql did not finish"
}

# Approved for a while: the same statement from the same identity runs
# without a new review until the grant is revoked.
t_review_grant() {
	review_setup
	local id out gid before
	held_psql g1.out "update orders set note = 'g' where id = 1"
	local pid=$LAST_PID
	id=$(pending_id)
	ctl approve "$id" --for 10m --reason "batch fix" >/dev/null || fail "approve --for failed"
	gone 5 "$pid" "psql did not finish"
	# The same statement (other literal): no review.
	out=$(pod_psql -c "update orders set note = 'h' where id = 1")
	assert_match "$out" "UPDATE 1" "under the grant"
	assert_no_match "$out" "held for review" "under the grant: no review"
	assert_eq "$(pg_sql "select note from orders where id = 1")" h "the grant's UPDATE ran"
	out=$(ctl grants --json)
	gid=$(jq -r '.[0].id' <<<"$out")
	assert_eq "$(jq -r '.[0] | [.state, .review, .uses] | join("|")' <<<"$out")" "active|$id|1" "the grant"
	ctl revoke "$gid" >/dev/null || fail "revoke failed"
	# Revoked: held again (then left to be rejected).
	held_psql g3.out "update orders set note = 'i' where id = 1"
	pid=$LAST_PID
	id=$(pending_id)
	ctl reject "$id" --reason "revoked" >/dev/null
	gone 5 "$pid" "psql did not finish"
	assert_eq "$(pg_sql "select note from orders where id = 1")" h "after the revoked grant"
	assert_eq "$(ctl grants --json | jq -r '.[0].state')" revoked "the grant's state"
}

AGENT_PG=$E2E_ROOT/examples/agent_pg.py

# The extended protocol (pgbench -M extended: Parse, Bind, Execute, Sync):
# the Parse is held; approved, the UPDATE runs; rejected, pgbench gets the
# error and the server never sees the statement.
t_review_extended() {
	review_setup
	local id pid out
	printf "update orders set note = 'ext' where id = 4;\n" >"$W/upd.sql"
	chmod 644 "$W/upd.sql"
	spawn "pgbench" "$AGENT_CG" "$POD" env -u PGPASSWORD PGPASSFILE="$PG_NOPASSFILE" PGSSLMODE=disable \
		"$PGBIN/pgbench" -n -M extended -t 1 -f "$W/upd.sql" -h "$PG_HOST" -p "$PG_PORT" -U app shop \
		</dev/null >"$W/pgb1.out" 2>&1
	pid=$LAST_PID
	id=$(pending_id)
	pg_log_lacks "note = 'ext'" || fail "the held Parse reached the server"
	ctl approve "$id" >/dev/null || fail "approve failed"
	gone 10 "$pid" "pgbench did not finish"
	assert_match "$(cat "$W/pgb1.out")" "number of transactions actually processed: 1/1" "pgbench after approval"
	assert_eq "$(pg_sql "select note from orders where id = 4")" ext "the approved UPDATE ran"
	printf "update orders set note = 'nope' where id = 4;\n" >"$W/upd2.sql"
	chmod 644 "$W/upd2.sql"
	spawn "pgbench" "$AGENT_CG" "$POD" env -u PGPASSWORD PGPASSFILE="$PG_NOPASSFILE" PGSSLMODE=disable \
		"$PGBIN/pgbench" -n -M extended -t 1 -f "$W/upd2.sql" -h "$PG_HOST" -p "$PG_PORT" -U app shop \
		</dev/null >"$W/pgb2.out" 2>&1
	pid=$LAST_PID
	id=$(pending_id)
	ctl reject "$id" --reason "no" >/dev/null || fail "reject failed"
	gone 10 "$pid" "pgbench did not finish"
	out=$(cat "$W/pgb2.out")
	assert_match "$out" "review $id rejected" "pgbench sees the rejection"
	pg_log_lacks "note = 'nope'" || fail "server log: the rejected statement arrived"
	assert_eq "$(pg_sql "select note from orders where id = 4")" ext "after the rejection"
}

# agent_bg OUT SQL...: the psycopg2 agent (a transaction per statement) in
# the background, its JSON lines in $W/OUT.
agent_bg() {
	local out=$1
	shift
	spawn "agent $out" "$AGENT_CG" "$POD" env -u PGPASSWORD PGPASSFILE="$PG_NOPASSFILE" PGCONNECT_TIMEOUT=5 \
		PGSSLMODE=disable /usr/bin/python3 "$AGENT_PG" "$PG_HOST" "$PG_PORT" shop app "$@" >"$W/$out" 2>&1
}

# psycopg2 holds its transaction open (BEGIN went upstream) while the
# UPDATE is held: approved, it commits; rejected, the transaction fails,
# the agent rolls back, and nothing of it stays; either way it goes on.
t_review_psycopg2_txn() {
	review_setup
	local id pid out before
	before=$(amount 3)
	agent_bg a1.out "update orders set amount = amount + 10 where id = 3" "select amount from orders where id = 3"
	pid=$LAST_PID
	id=$(pending_id)
	# Held inside the agent's open transaction, on the server too.
	assert_eq "$(pg_sql "select count(*) from pg_stat_activity where usename = 'app' and state = 'idle in transaction'")" 1 \
		"the agent's transaction is open while held"
	ctl approve "$id" >/dev/null || fail "approve failed"
	gone 5 "$pid" "agent did not finish"
	out=$(cat "$W/a1.out")
	assert_eq "$(grep '^{' <<<"$out" | head -n1 | jq -c '.ok')" true "approved UPDATE: ok"
	assert_eq "$(pg_sql "select amount - $before from orders where id = 3")" "10.00" "approved UPDATE committed"
	# Rejected: the transaction fails and is rolled back.
	before=$(amount 3)
	agent_bg a2.out "update orders set amount = amount + 100 where id = 3" "select 'went on'"
	pid=$LAST_PID
	id=$(pending_id)
	ctl reject "$id" --reason "too much" >/dev/null || fail "reject failed"
	gone 5 "$pid" "agent did not finish"
	out=$(cat "$W/a2.out")
	assert_eq "$(grep '^{' <<<"$out" | head -n1 | jq -c '[.ok, .sqlstate]')" '[false,"42501"]' "rejected UPDATE: 42501"
	assert_match "$(grep '^{' <<<"$out" | head -n1 | jq -r '.error')" "rejected by cli:[^:]*: too much" "rejected UPDATE: the reason"
	assert_eq "$(grep '^{' <<<"$out" | sed -n 2p | jq -c '.rows')" '[["went on"]]' "the agent went on"
	assert_eq "$(amount 3)" "$before" "nothing of the rejected transaction stayed"
	pg_log_lacks 'amount \+ 100' || fail "server log: the rejected UPDATE arrived"
	assert_eq "$(pg_sql "select count(*) from pg_stat_activity where usename = 'app' and state like 'idle in transaction%'")" 0 \
		"no transaction left open"
	# The decision log and the recording have each step.
	assert_eq "$(jq -r 'select(.review) | .decision' "$W/log/decisions.jsonl" | sort | tr '\n' ' ')" "approved rejected " \
		"decision log: the outcomes"
	out=$("$BRIDLE" export "$(ls "$W/rec" | sed -n 's/\.brec$//p' | sort | tail -n1)" --format jsonl --dir "$W/rec" --key-file "$W/rec.key")
	assert_eq "$(jq -r 'select(.kind == "review") | .event' <<<"$out" | tr '\n' ' ')" "opened rejected " "recording: the review's events"
}

# The agent cancels its held request (psycopg2's cancel(): a
# CancelRequest on a new connection): the review ends as rejected by the
# agent, the statement never runs, and the session goes on.
t_review_agent_cancel() {
	review_setup
	local out
	cat >"$W/cancel.py" <<'PY'
import threading, time, psycopg2
conn = psycopg2.connect(host="10.77.0.1", port=5432, dbname="shop", user="app")
conn.autocommit = True
cur = conn.cursor()
threading.Timer(1.0, conn.cancel).start()
try:
    cur.execute("update orders set note = 'cancelled?' where id = 2")
    print("ran")
except psycopg2.Error as e:
    print("error", e.pgcode, str(e).strip().splitlines()[0])
cur.execute("select 'still here'")
print(cur.fetchone()[0])
PY
	chmod 644 "$W/cancel.py"
	out=$(pod_pg /usr/bin/python3 "$W/cancel.py" 2>&1)
	assert_match "$out" "error 42501 bridle: review [0-9]+ rejected by agent: cancelled by the agent" "the agent's cancel ends the review"
	assert_match "$out" "still here" "the session went on"
	pg_log_lacks "cancelled\\?" || fail "server log: the cancelled statement arrived"
	assert_eq "$(ctl reviews --all --json | jq -r '.[0] | [.state, .by] | join("|")')" "rejected|agent" "the review"
}

# Webhooks: a review's opening and closing are POSTed to every URL, in
# bridle's JSON and in a Slack-compatible {"text"} (a receiver on
# loopback).
t_review_webhooks() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	pg_start
	cat >"$W/hook.py" <<'PY'
import http.server, json, sys
out = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        out.write(json.dumps({"path": self.path, "type": self.headers["Content-Type"],
                              "body": json.loads(body)}) + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_port))
s.serve_forever()
PY
	spawn "webhook receiver" "$CG/svc" "" /usr/bin/python3 "$W/hook.py" "$W/hook.port" "$W/hook.jsonl"
	wait_until 5 test -s "$W/hook.port" || fail "the webhook receiver did not start"
	local port id pid out
	port=$(cat "$W/hook.port")
	write_config "$(pg_policy "$(review_rule 300)")" \
		"$(jq -n --arg a "http://127.0.0.1:$port/json" --arg b "http://127.0.0.1:$port/slack" \
			'{review_webhooks: [{url: $a}, {url: $b, format: "slack"}]}')"
	bridle_start
	held_psql w.out "update orders set amount = amount where id = 1"
	pid=$LAST_PID
	id=$(pending_id)
	ctl approve "$id" --reason "fine" >/dev/null || fail "approve failed"
	gone 5 "$pid" "psql did not finish"
	wait_until 5 sh -c "[ \$(wc -l <'$W/hook.jsonl') -ge 4 ]" || fail "webhooks: $(cat "$W/hook.jsonl" 2>/dev/null)"
	out=$(cat "$W/hook.jsonl")
	assert_eq "$(jq -r 'select(.path == "/json") | [.body.event, .body.review.id, .body.review.state] | join("|")' <<<"$out" | tr '\n' ' ')" \
		"review.opened|$id|pending review.closed|$id|approved " "bridle's JSON"
	assert_eq "$(jq -r 'select(.path == "/json" and .body.event == "review.closed") | .body.review | [.by, .reason, .workload, .rule] | join("|")' <<<"$out")" \
		"cli:${SUDO_USER:-${USER:-root}}|fine|agent-a|orders need a person" "the closed review's details"
	assert_match "$(jq -r 'select(.path == "/slack") | .body.text' <<<"$out" | head -n1)" \
		"^bridle: review $id is waiting: agent-a → shop-db: UPDATE on orders \(rule \"orders need a person\"\)" "Slack text: opened"
	assert_match "$(jq -r 'select(.path == "/slack") | .body.text' <<<"$out" | tail -n1)" \
		"^bridle: review $id approved by cli:[^:]*: fine$" "Slack text: closed"
	assert_eq "$(jq -r '.type' <<<"$out" | sort -u)" "application/json" "content type"
	assert_eq "$(status_json | jq -c '.webhooks | [.urls, .sent, .failed]')" "[2,4,0]" "status: webhooks"
}

# Two approvers out of those the rule names: one approval is counted and
# the request still waits; someone not named cannot decide; the second
# approval runs it.
t_review_two_approvers() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	pg_start
	write_config "$(pg_policy "$(review_rule 300 | jq '. + {approvers: {users: ["alice", "bob", "carol"], min: 2}}')")"
	bridle_start
	local id pid out
	held_psql two.out "update orders set note = 'two' where id = 2"
	pid=$LAST_PID
	id=$(pending_id)
	out=$(SUDO_USER=mallory ctl approve "$id" 2>&1) && fail "mallory approved"
	assert_match "$out" 'cli:mallory is not an approver of rule "orders need a person"' "not an approver"
	out=$(SUDO_USER=alice ctl approve "$id" 2>&1) || fail "alice's approval failed: $out"
	assert_match "$out" "approval 1 of 2 counted" "alice's approval: counted"
	out=$(SUDO_USER=alice ctl approve "$id" 2>&1) && fail "alice approved twice"
	sleep 0.3
	pg_log_lacks "note = 'two'" || fail "ran after one approval of two"
	assert_eq "$(ctl reviews --json | jq -c --argjson i "$id" '.[] | select(.id == $i) | [.state, .approvers.approvals]')" \
		'["pending",["cli:alice"]]' "one approval recorded, still pending"
	SUDO_USER=bob ctl approve "$id" >/dev/null || fail "bob's approval failed"
	gone 5 "$pid" "psql did not finish"
	assert_eq "$(pg_sql "select note from orders where id = 2")" two "ran after the second approval"
	assert_eq "$(ctl reviews --all --json | jq -r --argjson i "$id" '.[] | select(.id == $i) | .by')" "cli:alice, cli:bob" "both approvers recorded"
}

# api_setup NAME GROUPS_JSON RULE_JSON: the pod, the server, and bridle
# with the reviewers' API on a random loopback port ($port) for one
# reviewer NAME whose token is $tok.
api_setup() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	pg_start
	tok=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
	port=$((20000 + RANDOM % 20000))
	(umask 077 && jq -n --arg h "$(printf '%s' "$tok" | sha256sum | cut -d' ' -f1)" --arg n "$1" \
		--argjson g "$2" '{reviewers: [{name: $n, groups: $g, token_sha256: $h}]}' >"$W/reviewers.json")
	write_config "$(pg_policy "$3")" \
		"$(jq -n --arg l "127.0.0.1:$port" --arg f "$W/reviewers.json" '{reviewer_api: {listen: $l, tokens_file: $f}}')"
	bridle_start
}

# The reviewers' HTTP API: a bearer token per reviewer (the file holds
# its SHA-256), the decider is the token's reviewer whatever the body
# says, and the agent's pod cannot reach it.
t_review_http_api() {
	local tok port id pid out api
	api_setup alice '["dba"]' "$(review_rule 300 | jq '. + {approvers: {groups: ["dba"]}}')"
	api=http://127.0.0.1:$port
	held_psql api.out "update orders set note = 'api' where id = 3"
	pid=$LAST_PID
	id=$(pending_id)
	# No token, a wrong one: 401.
	assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$api/api/reviews")" 401 "no token"
	assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer nope" "$api/api/reviews")" 401 "wrong token"
	out=$(curl -s -H "Authorization: Bearer $tok" "$api/api/reviews")
	assert_eq "$(jq -r --argjson i "$id" '.reviews[] | select(.id == $i) | .state' <<<"$out")" pending "GET /api/reviews"
	assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$api/api/nothing")" 404 "unknown path"
	# The agent's pod: its own loopback, no API there.
	out=$(pod curl -s -m 3 -o /dev/null -w '%{http_code}' "$api/api/reviews" 2>&1) && [ "$out" != 000 ] &&
		fail "the agent's pod reached the reviewer API: $out"
	# Approve, claiming to be someone else in the body: recorded as alice.
	out=$(curl -s -X POST -H "Authorization: Bearer $tok" -d '{"reason": "via api", "by": "mallory"}' \
		"$api/api/reviews/$id/approve")
	assert_eq "$(jq -c '.ok' <<<"$out")" true "POST approve: $out"
	gone 5 "$pid" "psql did not finish"
	assert_eq "$(pg_sql "select note from orders where id = 3")" api "approved through the API"
	assert_eq "$(ctl reviews --all --json | jq -r --argjson i "$id" '.[] | select(.id == $i) | [.by, .reason] | join("|")')" \
		"api:alice|via api" "decided by the token's reviewer"
	out=$(curl -s -X POST -H "Authorization: Bearer $tok" -d '{}' "$api/api/reviews/$id/approve")
	assert_match "$(jq -r '.error' <<<"$out")" "already" "decided once"
}

# The reviewers' web page in headless Chromium (puppeteer-core): the
# agent's statement shows as text, never markup; the Approve button runs
# the held UPDATE.
t_review_web_page() {
	local browser=$E2E_ROOT/tests/browser
	[ -d "$browser/node_modules/puppeteer-core" ] && [ -x /usr/bin/chromium ] ||
		fail "no headless browser: run scripts/install-deps.sh (chromium, npm ci in tests/browser)"
	local tok port id pid out
	api_setup pat '[]' "$(review_rule 300)"
	# Markup in an identifier (literals are replaced before display).
	held_psql page.out 'update orders as "<b>o</b><img src=x onerror=alert(1)>" set note = '"'page'"' where id = 1'
	pid=$LAST_PID
	id=$(pending_id)
	out=$(HOME=$W timeout 60 node "$browser/review_page.js" "http://127.0.0.1:$port/" "$tok" "$id" 2>&1) ||
		fail "the browser run failed: $out"
	note "page: $out"
	assert_eq "$(jq -r '.markup' <<<"$out")" 0 "the statement is text, not markup"
	assert_match "$(jq -r '.row' <<<"$out")" "UPDATE on orders" "the row shows the request"
	assert_match "$(jq -r '.row' <<<"$out")" '"<b>o</b><img src=x onerror=alert\(1\)>"' "the markup shown as text"
	assert_eq "$(jq -r '.status' <<<"$out")" "review $id: approved" "the page's status after Approve"
	assert_eq "$(jq -c '.errors' <<<"$out")" "[]" "no script error on the page"
	gone 5 "$pid" "psql did not finish"
	assert_eq "$(pg_sql "select note from orders where id = 1")" page "approved from the page"
	assert_eq "$(ctl reviews --all --json | jq -r --argjson i "$id" '.[] | select(.id == $i) | [.by, .reason] | join("|")')" \
		"api:pat|looks fine from the page" "decided by the page's reviewer"
}

# A grant ends by itself: after its time, the same statement is held
# again.
t_review_grant_ends() {
	review_setup
	local id pid out
	held_psql e1.out "update orders set note = 'e1' where id = 2"
	pid=$LAST_PID
	id=$(pending_id)
	ctl approve "$id" --for 2s >/dev/null || fail "approve --for 2s failed"
	gone 5 "$pid" "psql did not finish"
	out=$(pod_psql -c "update orders set note = 'e2' where id = 2")
	assert_match "$out" "UPDATE 1" "within the grant's time"
	sleep 2.2
	assert_eq "$(ctl grants --json | jq -r '.[0].state')" ended "the grant's state after its time"
	held_psql e3.out "update orders set note = 'e3' where id = 2"
	pid=$LAST_PID
	id=$(pending_id)
	ctl reject "$id" --reason "grant over" >/dev/null || fail "reject failed"
	gone 5 "$pid" "psql did not finish"
	assert_eq "$(pg_sql "select note from orders where id = 2")" e2 "after the grant ended: held, then rejected"
}

# Several statements in one query: a deny among them refuses it all at
# once (deny beats review), so approving can never run a denied one; with
# only allowed ones beside it, the reviewer sees every statement.
t_review_multi_statement() {
	review_setup
	local out id pid
	out=$(pod_psql -c "update orders set note = 'm1' where id = 1; drop table customers")
	assert_match "$out" "ERROR: +bridle: DDL on customers is not allowed" "a deny among them: refused at once"
	assert_no_match "$out" "held for review" "a deny among them: no review"
	pg_log_lacks "note = 'm1'" || fail "server log: the UPDATE beside a DROP arrived"
	assert_eq "$(pg_sql "select count(*) from customers")" 3 "customers still there"
	held_psql multi.out "update orders set note = 'm2' where id = 1; select 'and this'"
	pid=$LAST_PID
	id=$(pending_id)
	assert_match "$(ctl reviews --json | jq -r '.[0].statement')" "update orders set note = .* where id = .*; select .*" \
		"the reviewer sees every statement"
	ctl approve "$id" >/dev/null || fail "approve failed"
	gone 5 "$pid" "psql did not finish"
	assert_match "$(cat "$W/multi.out")" "and this" "both ran"
	assert_eq "$(pg_sql "select note from orders where id = 1")" m2 "the UPDATE ran"
}

e2e_main "$@"
