#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# PostgreSQL through bridle: a real server (pg.sh) and unmodified clients
# (psql, pgbench, a psycopg2 agent) in the pod, none of them holding a
# password. Every case checks the far side: the server's statement log, its
# login log and its data.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"

AGENT_PG=$E2E_ROOT/examples/agent_pg.py

# pg_bench_ok OUTPUT WHAT: pgbench finished with tps > 0 and no failed
# transaction.
pg_bench_ok() {
	local tps
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$1" | head -n1)
	[ -n "$tps" ] || fail "$2: no tps line in pgbench's output: $(tail -n 4 <<<"$1" | tr '\n' '|')"
	awk -v t="$tps" 'BEGIN { exit !(t > 0) }' || fail "$2: tps = $tps"
	# (pgbench 15 prints this line; older ones do not.)
	if grep -q '^number of failed transactions' <<<"$1"; then
		assert_match "$1" $'\nnumber of failed transactions: 0 ' "$2: failed transactions"
	fi
}

# agent_line N OUTPUT: the Nth JSON line of agent_pg.py's output.
agent_line() { grep '^{' <<<"$2" | sed -n "${1}p"; }

# ------------------------------------------------------------------ infra

# The test's own infrastructure, without bridle: the server listens in the
# services namespace, each role logs in with its method and password, and
# without a password nothing gets in. pgbench and the Python agent work
# against it directly (from the pod's netns, outside the enrolled cgroup).
t_pg_direct_infra() {
	pg_setup
	local out pw=$PG_APP_PW
	if [ -z "$pw" ] || [ "$(cat "$W/app.pw")" != "$pw" ]; then
		fail "app.pw does not hold PG_APP_PW"
	fi
	assert_eq "$(stat -c '%a %U' "$W/app.pw")" "600 root" "app.pw mode and owner"
	env | grep -qF -- "$pw" && fail "the app password is in the environment"
	local direct=(outside "$POD" env -u PGPASSWORD PGPASSFILE="$PG_NOPASSFILE" PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -w -tA)

	out=$("${direct[@]}" -d "host=10.77.0.1 dbname=shop user=app password=$pw" -c 'select count(*) from orders' 2>&1)
	assert_eq "$out" 4 "app (scram-sha-256) with its password: orders"
	pg_log_has 'connection received: host=10\.77\.0\.2 ' || fail "server log: no connection from the pod's address"
	pg_log_has 'connection authenticated: identity="app" method=scram-sha-256' ||
		fail "server log: app did not log in with SCRAM"
	pg_log_has 'statement: select count\(\*\) from orders' || fail "server log: the statement is not logged"

	out=$("${direct[@]}" -d "host=10.77.0.1 dbname=shop user=app_md5 password=$PG_APP_MD5_PW" -c 'select count(*) from customers' 2>&1)
	assert_eq "$out" 3 "app_md5 (md5) with its password: customers"
	pg_log_has 'identity="app_md5" method=md5' || fail "server log: app_md5 did not log in with md5"
	assert_match "$(pg_sql "select rolpassword from pg_authid where rolname = 'app_md5'")" '^md5[0-9a-f]{32}$' "app_md5's password is stored as md5"
	assert_match "$(pg_sql "select rolpassword from pg_authid where rolname = 'app'")" '^SCRAM-SHA-256\$' "app's password is stored as SCRAM"

	out=$("${direct[@]}" -d "host=10.77.0.1 dbname=shop user=app_clear password=$PG_APP_CLEAR_PW" -c 'select count(*) from hr.salaries' 2>&1)
	assert_eq "$out" 2 "app_clear (password) with its password: hr.salaries"
	pg_log_has 'identity="app_clear" method=password' || fail "server log: app_clear did not log in with password"

	# No password, a wrong one, a role without a TCP line: refused.
	out=$("${direct[@]}" -d "host=10.77.0.1 dbname=shop user=app" -c 'select 1' 2>&1) &&
		fail "app without a password got in: $out"
	assert_match "$out" "no password supplied" "app without a password"
	out=$("${direct[@]}" -d "host=10.77.0.1 dbname=shop user=app password=nope" -c 'select 1' 2>&1) &&
		fail "app with a wrong password got in: $out"
	assert_match "$out" 'password authentication failed for user "app"' "app with a wrong password"
	out=$("${direct[@]}" -d "host=10.77.0.1 dbname=shop user=postgres password=x" -c 'select 1' 2>&1) &&
		fail "postgres got in over TCP: $out"
	assert_match "$out" 'no pg_hba.conf entry' "postgres over TCP"

	# The seeded data and the grants.
	assert_eq "$(pg_sql "select email from customers where id = 1")" alice@example.com "seeded customer"
	assert_eq "$(pg_sql "select has_table_privilege('app', 'hr.salaries', 'DELETE')")" t "app's grants"
	assert_eq "$(pg_sql "select has_table_privilege('app_clear', 'public.audit', 'INSERT')")" t "app_clear's grants"

	# pgbench, with the password, straight to the server: every query mode.
	pg_bench_init
	assert_eq "$(pg_sql "select tableowner from pg_tables where tablename = 'pgbench_accounts'")" app "pgbench tables' owner"
	local m
	for m in simple extended prepared; do
		out=$(outside "$POD" env PGPASSWORD="$pw" PGPASSFILE="$PG_NOPASSFILE" "$PGBIN/pgbench" -n -S -T 1 -M "$m" \
			-h 10.77.0.1 -p 5432 -U app shop </dev/null 2>&1) || fail "direct pgbench -M $m failed: $(tail -n 3 <<<"$out" | tr '\n' '|')"
		note "direct pgbench -M $m: $(grep -E '^(tps|number of failed)' <<<"$out" | tr '\n' ' ')"
		pg_bench_ok "$out" "direct pgbench -M $m"
	done

	# The agent, given the password through libpq's environment here only.
	out=$(outside "$POD" env PGPASSWORD="$pw" PGPASSFILE="$PG_NOPASSFILE" PGSSLMODE=disable /usr/bin/python3 "$AGENT_PG" \
		10.77.0.1 5432 shop app "select count(*) from orders" "update nosuch set x = 1" "select 1" 2>&1)
	assert_eq "$(agent_line 1 "$out" | jq -c '[.ok, .rows]')" '[true,[[4]]]' "direct agent: first statement"
	assert_eq "$(agent_line 2 "$out" | jq -c '[.ok, .sqlstate]')" '[false,"42P01"]' "direct agent: an error"
	assert_eq "$(agent_line 3 "$out" | jq -c '[.ok, .rows]')" '[true,[[1]]]' "direct agent: continues after the error"
}

# --------------------------------------------------------- through bridle

# An allowed SELECT: the rows the server has, through bridle, from an
# agent without a password; bridle logged in upstream with SCRAM as app.
t_pg_select_allowed() {
	pg_setup
	bridle_start
	local out q='select id, amount from orders order by id'
	out=$(pod_psql -tA -c "$q") || fail "psql through bridle failed: $out"
	assert_eq "$out" "$(pg_sql "$q")" "rows through bridle"
	pg_log_has "statement: $q" || fail "server log: the SELECT did not arrive"
	pg_log_has 'connection received: host=10\.77\.0\.2 ' || fail "server log: no connection from the pod's address"
	pg_log_has 'connection authenticated: identity="app" method=scram-sha-256' ||
		fail "server log: bridle did not log in as app with SCRAM"
	# The same client, outside bridle, has nothing to log in with.
	out=$(outside "$POD" env -u PGPASSWORD PGPASSFILE="$PG_NOPASSFILE" PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -w -tA \
		-d "host=10.77.0.1 dbname=shop user=app sslmode=disable" -c "$q" 2>&1) &&
		fail "control: psql without bridle and without a password got in: $out"
	assert_match "$out" "no password supplied" "control: psql without bridle"
}

# Denied statements get ERROR 42501 naming the rule, never reach the
# server, and the session goes on.
t_pg_deny_drop() {
	pg_setup
	bridle_start
	local out before
	out=$(pod_psql -v VERBOSITY=verbose -c 'drop table orders')
	assert_match "$out" 'ERROR:  42501' "drop table: SQLSTATE 42501"
	assert_match "$out" 'default' "drop table: the message names the rule (default deny)"
	grep -qx 'DROP TABLE' <<<"$out" && fail "drop table: psql got the command tag DROP TABLE"
	assert_eq "$(pg_sql "select to_regclass('public.orders') is not null")" t "orders still exists"
	pg_log_lacks 'drop table orders' || fail "the server received the DROP: $(grep -i 'drop table' "$W/pg.log" | head -n 2)"

	before=$(pg_sql 'select count(*) from orders')
	out=$(pod_psql -tA -v VERBOSITY=verbose -c 'delete from orders' -c 'select count(*) from orders')
	assert_match "$out" 'ERROR:  42501' "delete: SQLSTATE 42501"
	assert_no_match "$out" 'server closed the connection|connection to server was lost|terminated' "delete: session kept"
	grep -qx "$before" <<<"$out" || fail "select after the denied delete, same session: expected $before in '$(tr '\n' '|' <<<"$out")'"
	assert_eq "$(pg_sql 'select count(*) from orders')" "$before" "orders rows after the denied delete"
	pg_log_lacks 'delete from orders' || fail "the server received the DELETE"
	pg_log_has 'statement: select count\(\*\) from orders' || fail "server log: the select after the denial did not arrive"
}

# Masked columns and detected PII never leave bridle; other values do.
t_pg_masking() {
	pg_setup
	bridle_start
	local out v
	out=$(pod_psql -tA -c 'select name, email, card, ssn from customers order by id') || fail "psql failed: $out"
	assert_eq "$(wc -l <<<"$out")" 3 "masked select: rows"
	assert_match "$out" 'REDACTED' "masked select: redaction marker"
	while read -r v; do
		[ -n "$v" ] || continue
		assert_no_match "$out" "$v" "masked select: a real value reached the agent"
	done < <(pg_sql 'select email from customers' 'select card from customers' 'select ssn from customers')
	while read -r v; do
		grep -qF "$v|" <<<"$out" || fail "masked select: name '$v' not passed unchanged: $(tr '\n' '|' <<<"$out")"
	done < <(pg_sql 'select name from customers')
	# Computed values: those made from a masked column (or a whole row)
	# are masked, the others are not.
	out=$(pod_psql -tA -c 'select count(*) from customers')
	assert_eq "$out" 3 "count(*) of a masked table: a plain number"
	out=$(pod_psql -tA -c 'select lower(email), name || email, row_to_json(c) from customers c order by id')
	while read -r v; do
		[ -n "$v" ] || continue
		assert_no_match "$out" "$v" "computed from email: a real value reached the agent"
	done < <(pg_sql 'select email from customers')
	assert_match "$out" 'REDACTED' "computed from email: redacted"
	# Through a cursor: FETCH returns the rows of a query decided at
	# DECLARE; they are masked the same.
	out=$(pod_psql -tA -c 'begin' -c 'declare c cursor for select lower(email), email, card, name from customers' \
		-c 'fetch all from c' -c 'commit')
	assert_match "$out" 'Alice Martin' "cursor: rows arrive"
	while read -r v; do
		[ -n "$v" ] || continue
		assert_no_match "$out" "$v" "cursor: a real value reached the agent"
	done < <(pg_sql 'select email from customers' 'select card from customers')
	# Masking is on the way out: the data and the query are untouched.
	assert_eq "$(pg_sql "select card from customers where id = 1")" 4111111111111111 "stored card"
	pg_log_has 'statement: select name, email, card, ssn from customers order by id' || fail "server log: the SELECT did not arrive"
}

# A psycopg2 agent (BEGIN/COMMIT/ROLLBACK around each statement): a
# denied UPDATE is an error with 42501 and the agent goes on.
t_pg_python_agent() {
	pg_setup
	bridle_start
	local out sum
	sum=$(pg_sql 'select sum(amount) from orders')
	out=$(pod_pg /usr/bin/python3 "$AGENT_PG" 10.77.0.1 5432 shop app \
		"select count(*) from orders" "update orders set amount=0" "select 1" 2>&1)
	[ -n "$(agent_line 3 "$out")" ] || fail "agent: fewer than 3 results: $(tr '\n' '|' <<<"$out")"
	assert_eq "$(agent_line 1 "$out" | jq -c '[.ok, .rows]')" "[true,[[$(pg_sql 'select count(*) from orders')]]]" "agent: select count"
	assert_eq "$(agent_line 2 "$out" | jq -c '[.ok, .sqlstate]')" '[false,"42501"]' "agent: update denied"
	assert_eq "$(agent_line 3 "$out" | jq -c '[.ok, .rows]')" '[true,[[1]]]' "agent: goes on after the denial"
	assert_eq "$(pg_sql 'select sum(amount) from orders')" "$sum" "orders amounts after the denied update"
	pg_log_lacks 'update orders' || fail "the server received the UPDATE"
}

# PREPARE/EXECUTE and statements hidden behind an allowed one in the same
# message are denied; the extended protocol (psycopg2 parameters are
# client-side, so pgbench -M extended/prepared) works for allowed queries
# and is denied for others.
t_pg_prepared_execute() {
	pg_setup
	bridle_start
	local out before
	before=$(pg_sql 'select count(*) from orders')
	out=$(pod_psql -tA -v VERBOSITY=verbose -c 'PREPARE p AS DELETE FROM orders; EXECUTE p;' -c 'select count(*) from orders')
	assert_match "$out" 'ERROR:  42501' "PREPARE ... DELETE; EXECUTE: 42501"
	grep -qx "$before" <<<"$out" || fail "select after the denied PREPARE, same session: expected $before in '$(tr '\n' '|' <<<"$out")'"
	out=$(pod_psql -tA -v VERBOSITY=verbose -c 'select count(*) from orders; delete from orders')
	assert_match "$out" 'ERROR:  42501' "select; delete in one message: 42501"
	assert_eq "$(pg_sql 'select count(*) from orders')" "$before" "orders rows"
	pg_log_lacks 'delete from orders' || fail "the server received a DELETE: $(grep -i 'delete from' "$W/pg.log" | head -n 2)"

	# psycopg2 with a parameter (interpolated by the client).
	out=$(pod_pg /usr/bin/python3 -c '
import psycopg2
c = psycopg2.connect(host="10.77.0.1", port=5432, dbname="shop", user="app")
cur = c.cursor()
cur.execute("select amount from orders where id = %s", (2,))
print(cur.fetchone()[0])' 2>&1)
	assert_eq "$out" "$(pg_sql 'select amount from orders where id = 2')" "psycopg2 parameterized select"

	# pgbench with its own scripts: Parse/Bind/Execute (extended, prepared).
	printf '\\set id random(1, 4)\nselect amount from orders where id = :id;\n' >"$W/sel.sql"
	printf 'delete from orders where id = 1;\n' >"$W/del.sql"
	local m
	for m in extended prepared; do
		out=$(pod_pg "$PGBIN/pgbench" -n -M "$m" -t 20 -f "$W/sel.sql" -h 10.77.0.1 -p 5432 -U app shop </dev/null 2>&1) ||
			fail "pgbench -M $m select failed: $(tail -n 3 <<<"$out" | tr '\n' '|')"
		pg_bench_ok "$out" "pgbench -M $m select"
		assert_match "$out" 'number of transactions actually processed: 20/20' "pgbench -M $m select: transactions"
		out=$(pod_pg "$PGBIN/pgbench" -n -M "$m" -t 1 -f "$W/del.sql" -h 10.77.0.1 -p 5432 -U app shop </dev/null 2>&1) &&
			fail "pgbench -M $m delete succeeded: $(tail -n 3 <<<"$out" | tr '\n' '|')"
		assert_match "$out" 'ERROR' "pgbench -M $m delete: error"
		assert_eq "$(pg_sql 'select count(*) from orders')" "$before" "orders rows after pgbench -M $m delete"
	done
	# shellcheck disable=SC2016 # $1 is PostgreSQL's parameter
	pg_log_has 'execute [^:]*: select amount from orders where id = \$1' ||
		fail "server log: no extended-protocol select arrived"
	pg_log_lacks 'delete from orders' || fail "the server received a DELETE: $(grep -i 'delete from' "$W/pg.log" | head -n 2)"
}

# pgbench's built-in select-only script in the three query modes.
t_pg_pgbench() {
	pg_setup
	pg_bench_init
	write_config "$(pg_policy '{"name": "agents bench",
		"when": {"workload": {"labels": {"app": "agent"}}, "target": "shop-db"},
		"action": "allow",
		"sql": {"commands": ["select"], "tables": ["public.pgbench_*"]}}')"
	bridle_start
	local m out
	for m in simple extended prepared; do
		out=$(pod_pg "$PGBIN/pgbench" -n -S -T 2 -M "$m" -h 10.77.0.1 -p 5432 -U app shop </dev/null 2>&1) ||
			fail "pgbench -S -M $m through bridle failed: $(tail -n 3 <<<"$out" | tr '\n' '|')"
		note "pgbench -S -M $m: $(grep -E '^(tps|number of failed)' <<<"$out" | tr '\n' ' ')"
		pg_bench_ok "$out" "pgbench -S -M $m"
	done
	pg_log_has 'SELECT abalance FROM pgbench_accounts WHERE aid' || fail "server log: pgbench's SELECT did not arrive"
}

# The real password appears nowhere the agent side can see, nor in
# bridle's logs, after allowed, denied and masked sessions.
t_pg_no_password_leak() {
	pg_setup
	bridle_start
	local pw=$PG_APP_PW o=$W/pod-out
	mkdir -p "$o"
	pod_psql -tA -c 'select count(*) from orders' >"$o/select.txt"
	pod_psql -v VERBOSITY=verbose -c 'drop table orders' >"$o/deny.txt"
	pod_psql -v VERBOSITY=verbose -c 'select * from customers' >"$o/mask.txt"
	pod_psql -c '\conninfo' -c 'show password_encryption' -c "select current_setting('application_name')" >"$o/info.txt"
	pod_pg env >"$o/env.txt" 2>&1
	pod_pg /usr/bin/python3 "$AGENT_PG" 10.77.0.1 5432 shop app "select 1" "select * from pg_authid" >"$o/agent.txt" 2>&1
	assert_match "$(cat "$o/select.txt")" '^4$' "select through bridle (the sessions ran)"
	sessions_json >"$o/sessions.json" 2>&1
	status_json >"$o/status.json" 2>&1
	bridle_stop
	local hits
	hits=$(grep -rlF -- "$pw" "$o" "$W/log" "$BRIDLE_LOG" 2>/dev/null)
	[ -z "$hits" ] || fail "the real password appears in: $(tr '\n' ' ' <<<"$hits")"
	# Nor anywhere else in the case's directory but the password file and
	# the server's own data directory.
	hits=$(grep -rlF --exclude=app.pw --exclude-dir=pg -- "$pw" "$W" 2>/dev/null)
	[ -z "$hits" ] || fail "the real password appears in: $(tr '\n' ' ' <<<"$hits")"
}

# Wrong stored credentials: the agent gets a prompt authentication error
# that names the target, and the server saw the failed login.
t_pg_wrong_credentials() {
	pg_setup
	(umask 077 && printf 'wrong-%s' "$PG_APP_PW" >"$W/app.pw")
	bridle_start
	local out rc t0 ms
	t0=$(date +%s%N)
	out=$(pod_psql -v VERBOSITY=verbose -c 'select 1')
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$rc" != 0 ] || fail "psql with wrong stored credentials succeeded: $out"
	[ "$ms" -lt 5000 ] || fail "the failure took $ms ms (expected < 5 s): $out"
	assert_match "$out" '28P01|password authentication failed' "wrong credentials: error"
	assert_match "$out" 'shop-db' "wrong credentials: the error names the target"
	assert_no_match "$out" "$PG_APP_PW" "wrong credentials: the error shows no password"
	pg_log_has 'password authentication failed for user "app"' || fail "server log: no failed login of app"
	pg_log_lacks 'statement: select 1$' || fail "the server ran the statement"
}

# A connection the policy refuses gets the protocol's own error, with the
# rule, not a reset; the server never sees a connection.
t_pg_connection_denied() {
	pg_setup
	write_config "$(pg_policy '{"name": "db closed", "when": {"target": "shop-db"}, "action": "deny",
		"message": "the shop database is closed for maintenance"}')"
	bridle_start
	local out
	out=$(pod_psql -c 'select 1')
	assert_match "$out" 'FATAL: +bridle: the shop database is closed for maintenance \(rule "db closed"\)' \
		"refused connection: psql shows bridle's FATAL"
	out=$(PG_SSLMODE=require pod_psql -c 'select 1')
	assert_match "$out" 'FATAL: +bridle: the shop database is closed' "refused connection over TLS: same"
	pg_log_lacks 'connection (received|authorized).*(10\.77\.0\.2|user=app)' ||
		fail "refused connection: the server saw a connection"
	wait_session_log '.event == "decision" and .action == "deny" and .rule == "db closed"'
}

e2e_main "$@"
