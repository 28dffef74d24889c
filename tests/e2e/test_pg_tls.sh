#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# TLS on both sides of a PostgreSQL session: the agent's TLS terminated by
# bridle (its own certificate), and the destination's per target: require,
# verify-full with a CA, never plaintext when TLS is configured.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"

# pg_tls_policy MODE [CA_FILE] [SERVER_NAME]: pg_policy with the target's
# upstream TLS mode set.
pg_tls_policy() {
	pg_policy '[{"name": "tls check",
		"when": {"workload": {"labels": {"app": "agent"}}, "target": "shop-db"},
		"action": "allow",
		"sql": {"commands": ["select"], "tables": ["pg_catalog.pg_stat_ssl"],
			"functions": ["pg_backend_pid"]}}]' | jq --arg mode "$1" --arg ca "${2:-}" --arg sn "${3:-}" '
		.targets[0].tls = $mode
		| if $ca != "" then .targets[0].ca_file = $ca else . end
		| if $sn != "" then .targets[0].server_name = $sn else . end'
}

# The agent asks for TLS (sslmode=require): bridle answers with its own
# certificate, the statements work, and the upstream side stays as the
# target says (plain here).
t_pg_tls_agent() {
	pg_setup
	write_config "$(pg_tls_policy disable)"
	bridle_start
	local out
	out=$(PG_SSLMODE=require pod_psql -tA -c 'select count(*) from orders' \
		-c "select ssl from pg_stat_ssl where pid = pg_backend_pid()")
	assert_match "$out" '^[0-9]+'$'\n' "sslmode=require through bridle: rows"
	# The server saw a plain connection: TLS ended at bridle.
	assert_match "$out" $'\nf$' "upstream connection: not TLS (tls: disable)"
	# sslmode=prefer (libpq's default) takes TLS too, unchanged client.
	out=$(PG_SSLMODE=prefer pod_psql -c '\conninfo')
	assert_match "$out" 'SSL connection \(protocol: TLSv1\.[23]' "sslmode=prefer: psql reports TLS"
	# And psycopg2, whose libpq defaults to prefer.
	out=$(pod "$POD" env -u PGPASSWORD PGPASSFILE="$PG_NOPASSFILE" PGSSLMODE=require \
		"$PY" "$E2E_ROOT/examples/agent_pg.py" "$PG_HOST" "$PG_PORT" shop app \
		"select id from orders order by id limit 1" 2>&1)
	assert_match "$out" '"ok": true' "psycopg2 over TLS: $out"
}

# verify-full: bridle checks the server's certificate against the CA and
# the address; the server sees TLS.
t_pg_tls_verify_full() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	PG_SSL=1 pg_start
	write_config "$(pg_tls_policy verify-full "$W/pgssl/ca.crt")"
	bridle_start
	local out
	out=$(pod_psql -tA -c "select ssl, version from pg_stat_ssl where pid = pg_backend_pid()")
	assert_match "$out" '^t\|TLSv1\.[23]' "server side of bridle's connection: TLS"
	pg_log_has 'connection authorized: user=app database=shop.*SSL enabled' ||
		fail "server log: no TLS login for app"
}

# A certificate from another CA, or for another name, is refused: the
# agent gets a clear error and the server sees no login.
t_pg_tls_verify_fails() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	PG_SSL=1 pg_start
	write_config "$(pg_tls_policy verify-full "$W/pgssl/other.crt")"
	bridle_start
	local out
	out=$(pod_psql -c 'select 1')
	assert_no_match "$out" '^ *1$' "wrong CA: no result"
	assert_match "$out" 'FATAL: +bridle: target "shop-db": TLS with the destination: certificate' "wrong CA: the agent is told why"
	assert_match "$(cat "$BRIDLE_LOG")" 'certificate' "wrong CA: bridle's log says why"
	pg_log_lacks 'connection authorized: user=app' || fail "wrong CA: the server saw a login"
	bridle_stop
	# The right CA but a name the certificate does not carry.
	write_config "$(pg_tls_policy verify-full "$W/pgssl/ca.crt" other.test)"
	bridle_start
	out=$(pod_psql -c 'select 1')
	assert_no_match "$out" '^ *1$' "wrong name: no result"
	pg_log_lacks 'connection authorized: user=app' || fail "wrong name: the server saw a login"
	# The name it does carry.
	bridle_stop
	write_config "$(pg_tls_policy verify-full "$W/pgssl/ca.crt" db.test)"
	bridle_start
	out=$(pod_psql -tA -c 'select 1')
	assert_eq "$out" 1 "server_name db.test: works"
}

# tls: require against a server without TLS: refused with a clear
# error, never a fallback to plaintext (no startup packet reaches it).
t_pg_tls_never_plaintext() {
	pg_setup
	write_config "$(pg_tls_policy require)"
	bridle_start
	local out
	out=$(pod_psql -c 'select 1')
	assert_match "$out" 'does not accept TLS' "require vs. a plain server: the error says why"
	pg_log_lacks 'connection (received|authorized): .*user=app|connection authorized: user=app' ||
		fail "require vs. a plain server: the server saw a startup packet"
}

e2e_main "$@"
