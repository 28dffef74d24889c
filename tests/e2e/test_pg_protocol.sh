#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# PostgreSQL protocol corners through bridle: cancel requests, COPY in both
# directions, denials inside transactions and pipelines of the extended
# protocol, decisions across a policy reload, oversized and malformed
# messages, FunctionCall, md5 and cleartext logins upstream, and what
# `bridle sessions` and the session log report. Clients are psql, psycopg2
# and pgraw.py (hand-made protocol messages); every case checks the far
# side: the server's statement log and its data.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"

# A failed case keeps the server's log next to bridle's.
eval "lib_fail() $(declare -f fail | tail -n +2)"
fail() {
	[ -f "$W/pg.log" ] && cp "$W/pg.log" "$E2E_OUT/$CASE.pg.log"
	lib_fail "$@"
}

PGRAW=$E2E_DIR/pgraw.py
PG_CONNINFO="host=$PG_HOST port=$PG_PORT dbname=shop user=app sslmode=disable"

# raw STEP...: pgraw.py in the pod against the shop database (see pgraw.py).
raw() { pod_pg "$PY" "$PGRAW" "$PG_HOST" "$PG_PORT" "$@" 2>&1; }
# psy STEP...: the same with a psycopg2 session.
psy() { pod_pg "$PY" "$PGRAW" --psycopg "$PG_HOST" "$PG_PORT" "$@" 2>&1; }

# section NAME OUTPUT: the lines after pgraw's "# NAME" up to the next
# mark, joined with '|' (each line ends with one).
section() {
	awk -v m="# $1" '$0 == m { on = 1; next } /^# / { on = 0 } on' <<<"$2" | tr '\n' '|'
}

# agent_rule NAME SQL_JSON: an allow rule of agents on shop-db.
agent_rule() {
	jq -n --arg n "$1" --argjson sql "$2" '{name: $n,
		when: {workload: {labels: {app: "agent"}}, target: "shop-db"}, action: "allow", sql: $sql}'
}

# bg_run NAME CMD...: CMD in the background, output in $W/NAME.out, exit
# status in $W/NAME.rc when it ends; standard input from $BG_IN (default
# /dev/null).
bg_run() {
	local name=$1
	shift
	rm -f "$W/$name.rc"
	{
		"$@" >"$W/$name.out" 2>&1
		echo $? >"$W/$name.rc"
	} <"${BG_IN:-/dev/null}" 3>&- &
	BG[$!]="$name"
}

# hexrep HEXBYTE N: HEXBYTE N times.
hexrep() { printf "$1%.0s" $(seq "$2"); }

# bg_wait NAME TIMEOUT: until NAME ended; sets BG_RC to its status.
bg_wait() {
	wait_until "$2" test -s "$W/$1.rc" || fail "$1 did not end within $2 s: $(tr '\n' '|' <"$W/$1.out")"
	BG_RC=$(cat "$W/$1.rc")
}

pg_count() { grep -ciE -- "$1" "$W/pg.log"; }
# The statements the server ran for agents (not bridle's setup query).
agent_statements() { grep -iE 'statement: ' "$W/pg.log" | grep -vc 'pg_catalog\.unnest\(pg_catalog\.current_schemas'; }

audit_has() { [ "$(pg_sql "select count(*) from audit where msg = '$1'")" -gt 0 ]; }

bridle_alive() {
	kill -0 "$BRIDLE_PID" 2>/dev/null || fail "bridle is gone: $(tail -n 5 "$BRIDLE_LOG" | tr '\n' '|')"
	local out
	out=$(pod_psql -tA -c 'select count(*) from orders')
	assert_eq "$out" 4 "a new psql session after $1"
}

# ------------------------------------------------------------- cancel

# psql's CancelRequest (SIGINT) goes through bridle on a new connection;
# bridle swaps its own cancel key for the server's and the running query
# stops. A made-up key cancels nothing.
t_pg_cancel() {
	pg_setup
	write_config "$(pg_policy "$(agent_rule 'agents sleep' '{"functions": ["pg_sleep"]}')")"
	bridle_start
	local out t0 ms rc n bpid

	# shellcheck disable=SC2016 # $$ and $0 are the pod shell's
	bg_run sleep30 pod_pg sh -c 'echo $$ >"$0"; exec "$@"' "$W/psql.pid" \
		"$PGBIN/psql" -X -w -v VERBOSITY=verbose -d "$PG_CONNINFO" -c 'select pg_sleep(30)'
	wait_until 10 pg_log_has 'statement: select pg_sleep\(30\)' ||
		fail "the pg_sleep did not reach the server: $(cat "$W/sleep30.out")"
	sleep 1
	t0=$(date +%s%N)
	kill -INT "$(cat "$W/psql.pid")" || fail "cannot signal psql"
	bg_wait sleep30 10
	rc=$BG_RC
	ms=$((($(date +%s%N) - t0) / 1000000))
	out=$(cat "$W/sleep30.out")
	note "psql after SIGINT: rc=$rc in $ms ms: $out"
	[ "$rc" != 0 ] || fail "psql's pg_sleep(30) ended successfully: $out"
	assert_match "$out" '57014' "cancelled: SQLSTATE"
	assert_match "$out" 'canceling statement due to user request' "cancelled: message"
	[ "$ms" -lt 3000 ] || fail "psql took $ms ms after SIGINT"
	pg_log_has 'ERROR: +canceling statement due to user request' || fail "server log: no cancelled statement"
	# shellcheck disable=SC2016
	assert_eq "$(pg_sql "select count(*) from pg_stat_activity where query ~ '^select pg_sleep'")" 0 "sleeping backends"
	wait_session_log '.event == "cancel_request"' 3

	# Made-up keys: bridle's pid with a random key, and the server's
	# own backend pid with a random key. The query sleeps on.
	bg_run sleep3 pod_psql -tA -c 'select pg_sleep(3)'
	wait_until 10 pg_log_has 'statement: select pg_sleep\(3\)' || fail "the pg_sleep(3) did not reach the server"
	bpid=$(pg_sql "select pid from pg_stat_activity where query ~ '^select pg_sleep\\(3\\)'")
	[ -n "$bpid" ] || fail "no backend pid for pg_sleep(3)"
	out=$(raw "hex 00000010 04d2162e $(printf '%08x' $((RANDOM * 32768 + RANDOM))) 1badc0de" readclose)
	assert_match "$out" '^(CLOSED|RESET)$' "cancel request with a made-up key: answer"
	out=$(raw "hex 00000010 04d2162e $(printf '%08x' "$bpid") 2badc0de" readclose)
	assert_match "$out" '^(CLOSED|RESET)$' "cancel request with the server's pid: answer"
	# A cancel request that is not 16 bytes long.
	out=$(raw "hex 00000014 04d2162e 00000001 00000002 00000003" readclose)
	assert_match "$out" '^E 08P01 .*cancel request' "cancel request of 20 bytes"
	bg_wait sleep3 10
	rc=$BG_RC
	out=$(cat "$W/sleep3.out")
	assert_eq "$rc" 0 "pg_sleep(3) after the made-up cancels: exit status ($out)"
	assert_no_match "$out" 'cancel' "pg_sleep(3) after the made-up cancels"
	assert_eq "$(pg_count 'canceling statement')" 1 "server: cancelled statements"
	n=$(session_log | jq -c 'select(.event == "close" and (.end // "" | test("unknown key")))' | wc -l)
	assert_eq "$n" 2 "session log: cancel requests closed for an unknown key"
	bridle_alive "the made-up cancel requests"
}

# --------------------------------------------------------------- COPY

# COPY FROM STDIN into an allowed table works; COPY out is refused where
# results are masked, and server files and programs are refused.
t_pg_copy() {
	pg_setup
	write_config "$(pg_policy "$(agent_rule 'agents copy audit' \
		'{"commands": ["copy", "insert"], "tables": ["public.audit"]}')")"
	bridle_start
	local out before q

	out=$(printf 'copy-one\ncopy-two\n' | pod_psql -c '\copy audit(msg) from stdin')
	assert_match "$out" '^COPY 2$' "\\copy from stdin: $out"
	out=$(printf 'copy-three\n' | pod_psql -c 'COPY audit(msg) FROM STDIN')
	assert_match "$out" '^COPY 1$' "COPY FROM STDIN: $out"
	assert_eq "$(pg_sql "select string_agg(msg, ',' order by id) from audit")" \
		"seeded,copy-one,copy-two,copy-three" "audit rows on the server"
	pg_log_has 'statement: copy +audit\(msg\) from stdin' || fail "server log: no COPY FROM STDIN"

	# COPY out of a table COPY is allowed on: results are masked here,
	# and COPY would bypass masking.
	for q in 'COPY audit TO STDOUT' '\copy audit to stdout' 'COPY (select msg from audit) TO STDOUT'; do
		out=$(pod_psql -v VERBOSITY=verbose -c "$q" -c 'select count(*) from orders')
		assert_match "$out" 'ERROR:  42501: bridle: .*COPY out is not' "$q"
		assert_match "$out" 'masked' "$q: the message says why"
		assert_no_match "$out" 'seeded|copy-one' "$q: rows reached the agent"
		assert_match "$out" $'\n *4\n' "$q: the session goes on"
	done
	# COPY out of tables no rule allows COPY on.
	for q in 'COPY orders TO STDOUT' 'COPY (select email from customers) TO STDOUT'; do
		out=$(pod_psql -v VERBOSITY=verbose -c "$q")
		assert_match "$out" 'ERROR:  42501' "$q"
		assert_no_match "$out" 'first order|example\.com' "$q: rows reached the agent"
	done
	# Server files and programs, even for the table COPY is allowed on.
	for q in "COPY orders TO '$W/copy-orders.txt'" "COPY audit TO '$W/copy-audit.txt'" \
		"COPY audit(msg) FROM '/etc/hostname'" "COPY audit(msg) FROM PROGRAM 'id'" \
		"COPY orders TO PROGRAM 'cat >$W/copy-prog.txt'"; do
		out=$(pod_psql -v VERBOSITY=verbose -c "$q")
		assert_match "$out" 'ERROR:  42501' "$q"
	done
	for f in copy-orders.txt copy-audit.txt copy-prog.txt; do
		[ ! -e "$W/$f" ] || fail "the server wrote $W/$f"
	done
	# COPY into a table no rule allows it on.
	before=$(pg_sql 'select count(*) from orders')
	out=$(printf '99\t1\t1.00\tcopied\n' | pod_psql -v VERBOSITY=verbose -c '\copy orders from stdin')
	assert_match "$out" 'ERROR:  42501' "\\copy orders from stdin"
	assert_eq "$(pg_sql 'select count(*) from orders')" "$before" "orders rows after the denied COPY"
	assert_eq "$(pg_sql 'select count(*) from audit')" 4 "audit rows at the end"
	pg_log_lacks 'to stdout|to program|from program|/etc/hostname|copy-(orders|audit)\.txt|copy +orders' ||
		fail "the server received a denied COPY: $(grep -iE 'to stdout|program|hostname|copy +orders' "$W/pg.log" | head -n 3)"
}

# ------------------------------------------- extended protocol, transactions

# A denied statement inside a transaction fails the transaction (the agent
# sees ReadyForQuery 'E', COMMIT answers ROLLBACK, nothing is applied);
# outside one the session goes on; in a pipeline the denial rolls back
# what its Sync batch did before it, and nothing after the Sync.
t_pg_extended_denial_in_txn() {
	pg_setup
	bridle_start
	local out s

	out=$(raw startup read \
		"mark begin" "Q BEGIN" read \
		"mark txn-insert" "P insert into audit(msg) values ('ext-in-txn')" B E S read \
		"mark txn-deny" "P delete from orders" B E S read \
		"mark txn-commit" "Q COMMIT" read \
		"mark deny" "P delete from orders where id = 1" B E S read \
		"mark after" "Q select count(*) from orders" read \
		"mark pipe" "P insert into audit(msg) values ('ext-pipelined')" B E \
		"P delete from orders" B E S read \
		"mark pipe2" "P delete from orders where id = 2" B E S \
		"P insert into audit(msg) values ('ext-after-sync')" B E S read read \
		"mark end" "Q select 1" read X)
	note "raw client: $(tr '\n' '|' <<<"$out")"
	assert_eq "$(section begin "$out")" "C BEGIN|Z T|" "BEGIN"
	assert_eq "$(section txn-insert "$out")" "1|2|C INSERT 0 1|Z T|" "allowed INSERT in the transaction"
	s=$(section txn-deny "$out")
	assert_match "$s" '^E 42501 bridle: DELETE on [^|]*\|Z E\|$' "denied DELETE in the transaction"
	assert_eq "$(section txn-commit "$out")" "C ROLLBACK|Z I|" "COMMIT of the failed transaction"
	assert_match "$(section deny "$out")" '^E 42501 [^|]*\|Z I\|$' "denied DELETE outside a transaction"
	assert_eq "$(section after "$out")" "T count|D 4|C SELECT 1|Z I|" "select after the denial, same connection"
	assert_match "$(section pipe "$out")" '^1\|2\|C INSERT 0 1\|E 42501 [^|]*\|Z I\|$' "pipeline: insert, then a denial, one Sync"
	assert_match "$(section pipe2 "$out")" '^E 42501 [^|]*\|Z I\|1\|2\|C INSERT 0 1\|Z I\|$' "pipeline: a denial, Sync, then an insert"
	assert_eq "$(section end "$out")" "T ?column?|D 1|C SELECT 1|Z I|" "the connection at the end"
	audit_has ext-in-txn && fail "the INSERT of the failed transaction is on the server"
	audit_has ext-pipelined && fail "the INSERT before the denial in the same Sync batch is on the server"
	audit_has ext-after-sync || fail "the INSERT after the denial's Sync is not on the server"
	pg_log_has "insert into audit\(msg\) values \('ext-in-txn'\)" || fail "server log: the INSERT in the transaction did not arrive"

	# psycopg2 (simple protocol, BEGIN before the first statement).
	out=$(psy "sql insert into audit(msg) values ('psy-in-txn')" status \
		"sql delete from orders" status "sql select 1" commit status \
		"sql select count(*) from orders")
	note "psycopg2: $(tr '\n' '|' <<<"$out")"
	assert_match "$out" '^OK INSERT 0 1'$'\n''STATUS 2'$'\n''ERR 42501 [^'$'\n'']*bridle[^'$'\n'']*'$'\n''STATUS 3'$'\n''ERR 25P02 [^'$'\n'']*'$'\n''COMMIT OK'$'\n''STATUS 0'$'\n''OK \[\[4\]\]$' "psycopg2 transaction"
	audit_has psy-in-txn && fail "psycopg2: the INSERT of the failed transaction is on the server"
	pg_log_has "insert into audit\(msg\) values \('psy-in-txn'\)" || fail "server log: psycopg2's INSERT did not arrive"
	assert_eq "$(pg_sql 'select count(*) from orders')" 4 "orders rows"
	pg_log_lacks 'delete from orders' || fail "the server received a DELETE: $(grep -i 'delete from' "$W/pg.log" | head -n 2)"
}

# ------------------------------------------------------------- reload

# A reload changes the decisions of open sessions at their next
# statement: denied → allowed → denied in one psycopg2 session, and a
# statement prepared (SQL PREPARE, or Parse) while allowed is denied at
# EXECUTE after the rule is gone.
t_pg_reload_decisions() {
	pg_setup
	local hr out rc
	hr=$(agent_rule 'agents read hr' '{"commands": ["select"], "tables": ["hr.salaries"]}')
	bridle_start
	local conns0
	conns0=$(pg_count 'connection authorized: user=app ')

	bg_run psy psy "autocommit on" \
		"mark v1" "sql select count(*) from hr.salaries" "touch $W/r1" "waitfile $W/go1" \
		"mark v2" "sql select count(*) from hr.salaries" "touch $W/r2" "waitfile $W/go2" \
		"mark v3" "sql select count(*) from hr.salaries" "sql select count(*) from orders"
	wait_until 10 test -e "$W/r1" || fail "psycopg2 session: no first result: $(cat "$W/psy.out")"
	write_config "$(pg_policy "$hr")"
	out=$(ctl reload 2>&1) || fail "reload: $out"
	touch "$W/go1"
	wait_until 10 test -e "$W/r2" || fail "psycopg2 session: no second result: $(cat "$W/psy.out")"
	assert_eq "$(sessions_json | jq '[.[] | select(.protocol == "postgres" and .state == "open")] | length')" 1 \
		"open postgres sessions during the psycopg2 run"
	write_config "$(pg_policy '[]')"
	out=$(ctl reload 2>&1) || fail "reload: $out"
	touch "$W/go2"
	bg_wait psy 10
	rc=$BG_RC
	out=$(cat "$W/psy.out")
	assert_eq "$rc" 0 "psycopg2 session: exit status ($out)"
	assert_match "$(section v1 "$out")" '^ERR 42501 [^|]*hr\.salaries[^|]*\|$' "before the reload: denied"
	assert_eq "$(section v2 "$out")" 'OK [[2]]|' "after the reload that allows it: same session"
	assert_match "$(section v3 "$out")" '^ERR 42501 [^|]*\|OK \[\[4\]\]\|$' "after the reload that removes it: same session"
	assert_eq "$(pg_count 'connection authorized: user=app ')" $((conns0 + 1)) "server logins for the psycopg2 session (no reconnect)"
	assert_eq "$(pg_count 'statement: select count\(\*\) from hr\.salaries')" 1 "hr.salaries selects the server ran"

	# Prepared while allowed, executed after the rule is gone.
	write_config "$(pg_policy "$hr")"
	out=$(ctl reload 2>&1) || fail "reload: $out"
	bg_run rawprep raw startup read \
		"mark parse" "P:s1 select count(*) from hr.salaries" S read \
		"mark exec1" "B::s1" E S read "touch $W/r3" "waitfile $W/go3" \
		"mark exec2" "B::s1" E S read \
		"mark after" "Q select count(*) from orders" read X
	mkfifo "$W/psql.in"
	exec 3<>"$W/psql.in"
	BG_IN=$W/psql.in bg_run psqlprep pod_psql -tA -q -v VERBOSITY=verbose
	echo 'PREPARE p AS select count(*) from hr.salaries;' >&3
	echo 'EXECUTE p;' >&3
	wait_until 10 pg_log_has 'statement: EXECUTE p;' || fail "psql: the first EXECUTE did not reach the server: $(cat "$W/psqlprep.out")"
	wait_until 10 test -e "$W/r3" || fail "raw client: no first Execute: $(cat "$W/rawprep.out")"
	write_config "$(pg_policy '[]')"
	out=$(ctl reload 2>&1) || fail "reload: $out"
	echo 'EXECUTE p;' >&3
	echo 'select count(*) from orders;' >&3
	exec 3>&-
	touch "$W/go3"
	bg_wait psqlprep 10
	out=$(cat "$W/psqlprep.out")
	note "psql: $(tr '\n' '|' <<<"$out")"
	assert_match "$out" '^2'$'\n''ERROR:  42501: bridle: [^'$'\n'']*hr\.salaries' "psql: EXECUTE p before and after the reload"
	assert_match "$out" $'\n''4$' "psql: the session goes on"
	bg_wait rawprep 10
	out=$(cat "$W/rawprep.out")
	assert_eq "$(section parse "$out")" "1|Z I|" "Parse of s1 while allowed"
	assert_eq "$(section exec1 "$out")" "2|D 2|C SELECT 1|Z I|" "Execute of s1 while allowed"
	assert_match "$(section exec2 "$out")" '^2\|E 42501 [^|]*\|Z I\|$|^E 42501 [^|]*\|Z I\|$' "Execute of s1 after the reload"
	assert_eq "$(section after "$out")" "T count|D 4|C SELECT 1|Z I|" "raw client: the session goes on"
	assert_eq "$(pg_count 'statement: EXECUTE p;')" 1 "EXECUTE p the server ran"
	assert_eq "$(pg_count 'execute s1')" 1 "Executes of s1 the server ran"
}

# A reload that changes which columns are masked applies to open
# sessions at their next statement, as it does to decisions.
t_pg_reload_masking() {
	pg_setup
	bridle_start
	local q="select phone, email from customers where id = 1" out phone email
	phone=$(pg_sql "select phone from customers where id = 1")
	email=$(pg_sql "select email from customers where id = 1")
	bg_run live raw startup read \
		"mark v1" "Q $q" read "touch $W/r1" "waitfile $W/go1" \
		"mark v2" "Q $q" read \
		"mark v2-ext" "P $q" B E S read X
	wait_until 10 test -e "$W/r1" || fail "raw client: no first result: $(cat "$W/live.out")"
	# v2: phone masked, email no longer.
	write_config "$(pg_policy '[]' | jq '.rules[0].mask.columns = ["public.customers.phone"]')"
	out=$(ctl reload 2>&1) || fail "reload: $out"
	touch "$W/go1"
	bg_wait live 10
	out=$(cat "$W/live.out")
	note "raw client: $(grep -v '^S ' <<<"$out" | tr '\n' '|')"
	assert_eq "$(section v1 "$out")" "T phone,email|D $phone|[REDACTED:COLUMN]|C SELECT 1|Z I|" "v1: email masked"
	# A new session follows v2 ...
	assert_eq "$(pod_psql -tA -c "$q")" "[REDACTED:COLUMN]|$email" "v2, new session"
	# ... and so must the session that was open across the reload.
	assert_eq "$(section v2 "$out")" "T phone,email|D [REDACTED:COLUMN]|$email|C SELECT 1|Z I|" \
		"v2, session open across the reload (simple query)"
	assert_eq "$(section v2-ext "$out")" "1|2|D [REDACTED:COLUMN]|$email|C SELECT 1|Z I|" \
		"v2, session open across the reload (extended protocol)"
}

# ------------------------------------------------- prepared statement names

# A SQL PREPARE that the server refuses (the name is taken by a statement
# of the extended protocol) must not change what bridle believes that
# statement is: its masking and its decision after a reload stay those of
# the statement the server holds.
t_pg_prepare_name_clash() {
	pg_setup
	local hr out email
	hr=$(agent_rule 'agents read hr' '{"commands": ["select"], "tables": ["hr.salaries"]}')
	write_config "$(pg_policy "$hr")"
	bridle_start
	email=$(pg_sql "select email from customers where id = 1")
	out=$(raw startup read \
		"mark parse" "P:s1 select email || '' as e from customers where id = 1" S read \
		"mark exec1" "B::s1" E S read \
		"mark clash" "Q PREPARE s1 AS select 1 from orders" read \
		"mark exec2" "B::s1" E S read X)
	note "masking: $(grep -v '^S ' <<<"$out" | tr '\n' '|')"
	assert_eq "$(section exec1 "$out")" "2|D [REDACTED:COLUMN]|C SELECT 1|Z I|" "s1 before the clash: masked"
	assert_match "$(section clash "$out")" '^E 42P05 [^|]*already exists\|Z I\|$' "PREPARE s1 refused by the server"
	assert_no_match "$(section exec2 "$out")" "$email" "s1 after the failed PREPARE: the email reached the agent"

	# The same after a reload that denies what s1 really reads.
	bg_run live raw startup read \
		"mark parse" "P:s1 select name, salary from hr.salaries" S read \
		"mark clash" "Q PREPARE s1 AS select 1 from orders" read \
		"touch $W/r1" "waitfile $W/go1" \
		"mark exec" "B::s1" E S read X
	wait_until 10 test -e "$W/r1" || fail "raw client: no PREPARE answer: $(cat "$W/live.out")"
	write_config "$(pg_policy '[]')"
	out=$(ctl reload 2>&1) || fail "reload: $out"
	touch "$W/go1"
	bg_wait live 10
	out=$(cat "$W/live.out")
	note "reload: $(grep -v '^S ' <<<"$out" | tr '\n' '|')"
	assert_match "$(section clash "$out")" '^E 42P05 ' "PREPARE s1 refused by the server"
	assert_no_match "$out" '98000|87000' "s1 after the reload that denies hr.salaries: salaries reached the agent"
	assert_match "$(section exec "$out")" 'E 42501 [^|]*hr\.salaries' "s1 after the reload: denied"
	assert_eq "$(pg_count 'execute s1')" 2 "Executes of s1 the server ran (none after the reload)"
}

# Names starting with "bridle" are bridle's own (its denials bind one):
# an agent cannot take one with SQL PREPARE either, and denials keep
# working: a denied statement fails its Sync batch and the session goes on.
t_pg_reserved_statement_name() {
	pg_setup
	bridle_start
	local out
	out=$(raw startup read \
		"mark prepare" 'Q PREPARE "bridle.denied" AS select 1' read \
		"mark deny" "Q delete from orders" read \
		"mark pipe" "P insert into audit(msg) values ('reserved-pipe')" B E "P delete from orders" B E S read \
		"mark end" "Q select 1" read X)
	note "raw client: $(grep -v '^S ' <<<"$out" | tr '\n' '|')"
	assert_match "$(section deny "$out")" '^E 42501 [^|]*\|Z I\|$' "denial after PREPARE \"bridle.denied\""
	assert_match "$(section pipe "$out")" '^1\|2\|C INSERT 0 1\|E 42501 [^|]*\|Z I\|$' "pipeline after PREPARE \"bridle.denied\""
	assert_eq "$(section end "$out")" "T ?column?|D 1|C SELECT 1|Z I|" "the session goes on"
	audit_has reserved-pipe && fail "the INSERT before the denial in the same Sync batch is on the server"
	pg_log_lacks 'delete from orders' || fail "the server received a DELETE"
}

# ------------------------------------------------------ oversized, malformed

# Messages longer than max_message_size, lengths that cannot be, and
# startup packets over the server's own limit: 08P01, closed; bridle
# serves the next session and the server saw none of it.
t_pg_oversize() {
	pg_setup
	write_config "$(pg_policy '[]')" '{"max_message_size": 65536}'
	bridle_start
	local out big stmts s

	# A message just under the limit goes through.
	big=$(head -c 60000 /dev/zero | tr '\0' x)
	out=$(raw startup read "mark big" "Q select length('$big') as n" read X)
	assert_eq "$(section big "$out")" "T n|D 60000|C SELECT 1|Z I|" "a 60 kB query"
	stmts=$(agent_statements)

	for s in "51 7ffffff0:message too large" "51 00010005:message too large" \
		"51 00000002:invalid message length" "51 00000000:invalid message length" \
		"51 ffffffff:"; do
		out=$(raw startup read "mark bad" "hex ${s%%:*}" readclose)
		note "Q with length ${s%%:*}: $(section bad "$out")"
		assert_match "$(section bad "$out")" "^E 08P01 bridle: invalid message: ${s#*:}[^|]*\|CLOSED\|$" "Query with length ${s%%:*}"
	done
	# A Query whose length says 2 GB followed by some of its bytes.
	out=$(raw startup read "mark bad" "hex 51 7ffffff0 $(hexrep 78 4000)" readclose)
	assert_match "$(section bad "$out")" '^E 08P01 bridle: invalid message: message too large\|(CLOSED|RESET)\|$' "2 GB Query with data"

	for s in 00002711 7fffffff ffffffff 00000004 00000007; do
		out=$(raw "hex $s 00030000" readclose)
		note "startup packet of length $s: $(tr '\n' '|' <<<"$out")"
		assert_match "$out" '^E 08P01 bridle: invalid startup packet: invalid startup packet length'$'\n''CLOSED$' "startup packet of length $s"
	done
	# A whole startup packet of 12000 bytes (a long parameter).
	out=$(raw "hex 00002ee0 00030000 $(printf 'user\0app\0application_name\0' | od -An -tx1 | tr -d ' \n')$(hexrep 61 11964)0000" readclose)
	note "startup packet of 12000 bytes: $(tr '\n' '|' <<<"$out")"
	assert_match "$out" '^E 08P01 bridle: invalid startup packet: invalid startup packet length'$'\n''(CLOSED|RESET)$|^RESET$' "startup packet of 12000 bytes"

	assert_eq "$(agent_statements)" "$stmts" "statements the server received from the bad sessions"
	pg_log_lacks 'application_name=aaaa|aaaaaaaaaa' || fail "the server saw the long startup packet"
	bridle_alive "the malformed messages"
	grep -q 'message too large' "$BRIDLE_LOG" || fail "bridle's log does not say why"
}

# ------------------------------------------------------------ FunctionCall

# The FunctionCall message is refused with 42501 and ReadyForQuery; in a
# transaction it fails the transaction, and the session goes on.
t_pg_function_call() {
	pg_setup
	bridle_start
	local out oid
	oid=$(pg_sql "select 'pg_catalog.version()'::regprocedure::oid")
	out=$(raw startup read \
		"mark fc" "F $oid" read \
		"mark after" "Q select count(*) from orders" read \
		"mark fc-args" "F $(pg_sql "select 'pg_catalog.pg_sleep(float8)'::regprocedure::oid") 0.1" read \
		"mark begin" "Q BEGIN" read \
		"mark fc-txn" "F $oid" read \
		"mark rollback" "Q ROLLBACK" read \
		"mark end" "Q select count(*) from orders" read X)
	note "raw client: $(tr '\n' '|' <<<"$out")"
	assert_match "$(section fc "$out")" '^E 42501 bridle: the FunctionCall message is not allowed[^|]*\|Z I\|$' "FunctionCall"
	assert_eq "$(section after "$out")" "T count|D 4|C SELECT 1|Z I|" "select after the FunctionCall"
	assert_match "$(section fc-args "$out")" '^E 42501 [^|]*\|Z I\|$' "FunctionCall with an argument"
	assert_eq "$(section begin "$out")" "C BEGIN|Z T|" "BEGIN"
	assert_match "$(section fc-txn "$out")" '^E 42501 [^|]*\|Z E\|$' "FunctionCall in a transaction"
	assert_eq "$(section rollback "$out")" "C ROLLBACK|Z I|" "ROLLBACK"
	assert_eq "$(section end "$out")" "T count|D 4|C SELECT 1|Z I|" "select at the end"
	pg_log_lacks 'fastpath' || fail "the server received a FunctionCall: $(grep -i fastpath "$W/pg.log" | head -n 2)"
	wait_session_log '.event == "statement_denied" and .statement == "(FunctionCall)"' 3
}

# ----------------------------------------------------- md5 and cleartext

# Targets whose role logs in with md5 or with a cleartext password: psql
# without a password works through bridle for both.
t_pg_md5_cleartext() {
	pg_setup
	local out o=$W/outs
	mkdir -p "$o"
	write_config "$(pg_policy '[]' | jq --arg pw "$W/app_md5.pw" '.targets[0].credentials = {user: "app_md5", password_file: $pw}')"
	bridle_start
	out=$(pod_psql -tA -v VERBOSITY=verbose -c 'select current_user' -c 'select count(*) from orders' -c 'select count(*) from hr.salaries')
	echo "$out" >"$o/md5.txt"
	assert_match "$out" '^app_md5'$'\n''4'$'\n''ERROR:  42501' "md5 target: user, rows, denial"
	pg_log_has 'connection authenticated: identity="app_md5" method=md5' || fail "server log: app_md5 did not log in with md5"
	pg_log_has 'connection authorized: user=app_md5 database=shop' || fail "server log: no session of app_md5"
	out=$(psy "sql select current_user")
	echo "$out" >"$o/md5-psy.txt"
	assert_eq "$out" 'OK [["app_md5"]]' "md5 target: psycopg2"

	write_config "$(pg_policy '[]' | jq --arg pw "$W/app_clear.pw" '.targets[0].credentials = {user: "app_clear", password_file: $pw}')"
	out=$(ctl reload 2>&1) || fail "reload: $out"
	out=$(pod_psql -tA -c 'select current_user' -c 'select count(*) from orders')
	echo "$out" >"$o/clear.txt"
	assert_eq "$out" $'app_clear\n4' "cleartext target (after a reload): user, rows"
	pg_log_has 'connection authenticated: identity="app_clear" method=password' || fail "server log: app_clear did not log in with password"

	# And from a fresh start.
	bridle_stop
	bridle_start
	out=$(pod_psql -tA -c 'select current_user')
	assert_eq "$out" app_clear "cleartext target (after a restart)"
	sessions_json >"$o/sessions.json" 2>&1
	local pw hits
	for pw in "$PG_APP_MD5_PW" "$PG_APP_CLEAR_PW"; do
		hits=$(grep -rlF -- "$pw" "$o" "$W/log" "$BRIDLE_LOG" 2>/dev/null)
		[ -z "$hits" ] || fail "a password appears in: $hits"
	done
}

# -------------------------------------------------------- sessions report

# `bridle sessions --json` counts what the PostgreSQL module decided,
# denied and masked per session, and the session log has each denial.
t_pg_sessions_report() {
	pg_setup
	bridle_start
	local out j id
	out=$(pod_psql -tA -v VERBOSITY=verbose -c 'select count(*) from orders' \
		-c 'select email from customers where id = 1' -c 'delete from orders')
	assert_match "$out" '^4'$'\n' "psql: count"
	assert_no_match "$out" 'alice@example\.com' "psql: the email was masked"
	assert_match "$out" 'ERROR:  42501' "psql: delete denied"
	wait_until 5 sh -c "'$BRIDLE' sessions --json --socket '$W/control.sock' |
		jq -e '[.[] | select(.protocol == \"postgres\" and .state == \"closed\")] | length == 1'" ||
		fail "no closed postgres session: $(sessions_json)"
	j=$(sessions_json | jq -c '[.[] | select(.protocol == "postgres")][0]')
	note "psql session: $j"
	assert_eq "$(jq -c .requests <<<"$j")" '{"decided":3,"denied":1,"masked_values":1}' "psql session: requests"
	assert_eq "$(jq -r .target <<<"$j")" shop-db "psql session: target"
	id=$(jq -r .id <<<"$j")
	j=$(session_log | jq -c --argjson id "$id" 'select(.event == "statement_denied" and .id == $id)')
	assert_eq "$(jq -r .statement <<<"$j")" "delete from orders" "statement_denied: statement"
	assert_match "$(jq -r .reason <<<"$j")" 'DELETE on .*orders.*default' "statement_denied: reason"
	assert_eq "$(session_log | jq -c --argjson id "$id" 'select(.event == "close" and .id == $id) | .requests')" \
		'{"decided":3,"denied":1,"masked_values":1}' "close line of the psql session: requests"

	# A live session of the extended protocol: counted at Execute, and a
	# denied Parse and a FunctionCall each count as decided and denied.
	bg_run live raw startup read \
		"P select id from orders where id = 1" B E S read \
		"P delete from orders" B E S read \
		"F $(pg_sql "select 'pg_catalog.version()'::regprocedure::oid")" read \
		"Q select name, card from customers where id = 2" read \
		"touch $W/r1" "waitfile $W/go1" X
	wait_until 10 test -e "$W/r1" || fail "raw client did not get through: $(cat "$W/live.out")"
	j=$(sessions_json | jq -c '[.[] | select(.protocol == "postgres" and .state == "open")]')
	assert_eq "$(jq length <<<"$j")" 1 "open postgres sessions"
	assert_eq "$(jq -c '.[0].requests' <<<"$j")" '{"decided":4,"denied":2,"masked_values":1}' "live session: requests"
	touch "$W/go1"
	bg_wait live 10
	out=$(cat "$W/live.out")
	assert_match "$out" $'\nD Bob Nguyen\\|' "raw client: the masked row"
	assert_no_match "$out" '5555555555554444' "raw client: the card number"
	assert_eq "$(session_log | jq -c 'select(.event == "statement_denied")' | wc -l)" 3 "statement_denied lines"
	pg_log_lacks 'delete from orders' || fail "the server received a DELETE"
}

e2e_main "$@"
