#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Regressions of a security review of the PostgreSQL module: each case is
# an agent's attempt that once worked (a denied statement run, a masked
# value returned, bridle crashed) and must not any more.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"

PGRAW=$E2E_DIR/pgraw.py
raw() { pod_pg "$PY" "$PGRAW" --timeout 3 "$PG_HOST" "$PG_PORT" "$@" 2>&1; }
agent_rule() { # NAME SQL_JSON
	jq -n --arg n "$1" --argjson sql "$2" '{name: $n,
		when: {workload: {labels: {app: "agent"}}, target: "shop-db"}, action: "allow", sql: $sql}'
}
# no_secret TEXT WHAT: none of the customers' emails or cards in TEXT.
no_secret() {
	local v
	while read -r v; do
		[ -n "$v" ] || continue
		assert_no_match "$1" "$v" "$2: a masked value reached the agent"
	done < <(pg_sql 'select email from customers' 'select card from customers')
}
alive() { kill -0 "$BRIDLE_PID" 2>/dev/null || fail "$1: bridle died"; }

# A CTE name never hides a real table: not a write target, not a table
# outside the CTE's scope.
t_pg_cte_hides_table() {
	pg_setup
	bridle_start
	local out
	out=$(pod_psql -v VERBOSITY=verbose -c "WITH orders AS (SELECT 1) INSERT INTO orders VALUES (99, 1, 1, 'via cte')")
	assert_match "$out" 'ERROR: +42501' "INSERT INTO a table named like a CTE: denied"
	assert_eq "$(pg_sql 'select count(*) from orders where id = 99')" 0 "the row was not inserted"
	out=$(pod_psql -v VERBOSITY=verbose -c "SELECT * FROM audit WHERE EXISTS (WITH audit AS (SELECT 1) SELECT 1)")
	assert_match "$out" 'ERROR: +42501' "a read outside the CTE's scope: denied"
	pg_log_lacks 'via cte' || fail "the server received the INSERT"
}

# Masks of many hits in many columns: bridle's row buffer grows with them.
t_pg_mask_many_hits() {
	pg_setup
	write_config "$(pg_policy '{"name": "h", "when": {"workload": {"labels": {"app": "agent"}}, "target": "shop-db"},
		"action": "allow", "sql": {"commands": ["select"], "tables": ["public.orders"]},
		"mask": {"detectors": ["email"], "style": "hash"}}')"
	bridle_start
	local q="select repeat('a@b.cd ', 32)" i out
	for i in $(seq 2 24); do q="$q, repeat('a@b.cd ', 32)"; done
	out=$(pod_psql -tA -c "$q")
	alive "many masks"
	assert_match "$out" 'HASH:' "many masks: hashed"
	assert_no_match "$out" 'a@b\.cd' "many masks: no email left"
}

# Pipelined Binds and Closes do not take the columns from rows still on
# their way: they stay masked.
t_pg_pipeline_masks() {
	pg_setup
	bridle_start
	local out
	out=$(raw startup read "P select email from customers" B "D:P" E B E S read)
	no_secret "$out" "rebind after describe"
	out=$(raw startup read "P select email from customers" B E B E S read)
	no_secret "$out" "rebind without describe"
	out=$(raw startup read "P:s1 select email, card from customers" B:p1:s1 E:p1 C:P:p1 S read)
	no_secret "$out" "close after execute"
	assert_match "$out" 'REDACTED' "close after execute: masked rows"
	alive "pipelines"
}

# A U&"…" UESCAPE '…' literal changes the identifier: no shared cache key.
t_pg_uescape_cache() {
	pg_setup
	write_config "$(pg_policy '[{"name": "read all", "when": {"workload": {"labels": {"app": "agent"}}, "target": "shop-db"},
		"action": "allow", "sql": {"commands": ["select"]}},
		{"name": "no hr", "when": {"target": "shop-db"}, "action": "deny", "sql": {"tables": ["hr.*"]}}]')"
	bridle_start
	local out
	out=$(pod_psql -tA -v VERBOSITY=verbose -c "select * from U&\"#0068#0072\" UESCAPE '!' .salaries" \
		-c "select * from U&\"#0068#0072\" UESCAPE '#' .salaries")
	assert_match "$out" '42501.*no hr' "the second spelling, hr.salaries: denied"
	pg_log_lacks "UESCAPE '#'" || fail "the server received the hr query"
}

# Renamed columns (customers c(a, b, x)) do not hide a masked column.
t_pg_alias_columns() {
	pg_setup
	bridle_start
	local out
	out=$(pod_psql -tA -c 'select lower(x) from customers c(a, b, x)' -c "select x || '' from customers as c(i, n, x)")
	no_secret "$out" "renamed columns"
}

# COPY out of a masked target is refused, writes in its query or not.
t_pg_copy_out_with_write() {
	pg_setup
	write_config "$(pg_policy "$(agent_rule 'agents load' '{"commands": ["copy", "insert", "select"], "tables": ["public.audit", "public.customers"]}')")"
	bridle_start
	local out
	out=$(pod_psql -v VERBOSITY=verbose -c 'COPY (WITH w AS (INSERT INTO audit(msg) VALUES ($$x$$) RETURNING 1) SELECT email, card FROM customers) TO STDOUT' \
		-c 'COPY (INSERT INTO audit(msg) SELECT email FROM customers RETURNING msg) TO STDOUT')
	no_secret "$out" "COPY out with a write"
	assert_match "$out" 'ERROR: +42501' "COPY out with a write: refused"
}

# Server errors quoting a masked value do not carry it.
t_pg_error_leak() {
	pg_setup
	bridle_start
	local out
	out=$(pod_psql -tA -v VERBOSITY=verbose -c 'select email::int from customers' -c 'select card::int from customers')
	assert_match "$out" 'ERROR' "casts: the server's errors arrive"
	no_secret "$out" "errors"
}

# A cursor and a refused Bind of its name: Execute of the name is not
# taken for the portal the server refused.
t_pg_stale_portal() {
	pg_setup
	bridle_start
	local out
	out=$(raw startup read "Q declare c cursor with hold for select lower(email), card from customers" read \
		"P:s select 1" B:c:s S read E:c S read "Q fetch all from c" read)
	no_secret "$out" "cursor and stale portal"
	alive "cursor and stale portal"
}

# COPY FROM STDIN in the extended protocol (libpq, psycopg3, JDBC): the
# Sync the server ignores in copy-in mode does not desynchronise bridle.
t_pg_extended_copy_from() {
	pg_setup
	write_config "$(pg_policy "$(agent_rule 'agents copy audit' '{"commands": ["copy", "insert"], "tables": ["public.audit"]}')")"
	bridle_start
	local out
	out=$(raw startup read "P COPY audit(msg) FROM STDIN" B E S send "d hello-ext-copy" c S read "Q select 3" read)
	assert_match "$out" 'C COPY 1' "extended COPY FROM: completed"
	assert_match "$out" 'D 3' "extended COPY FROM: the session goes on"
	assert_eq "$(pg_sql "select count(*) from audit where msg = 'hello-ext-copy'")" 1 "the row arrived"
}

e2e_main "$@"
