# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# PostgreSQL helpers of bridle's end-to-end tests. Source after lib.sh.
#
# pg_start runs a real PostgreSQL server (the newest under
# /usr/lib/postgresql/*/bin) in the services namespace ($SVC, 10.77.0.1:5432)
# as a process of the case's own cgroup, so case cleanup stops it; its
# cluster, socket and log live in the case's work directory ($W).
#
#   pg_setup                 topo_basic, workload agent-a {"app":"agent"},
#                            pg_start, write_config "$(pg_policy)"
#   pg_start                 cluster + roles app (SCRAM), app_md5 (md5),
#                            app_clear (password), database shop with data
#   pg_sql SQL...            as superuser over the unix socket, -tAX, in shop
#   pg_log_has/lacks REGEX   the server log (log_statement=all), -i -E
#   pg_policy [RULES_JSON]   policy with target shop-db and two rules
#   pod_psql ARGS...         unmodified psql in the pod, as app, no password
#   pod_pg CMD...            any command in the pod with the same environment
#
# The passwords are in $W/app.pw, $W/app_md5.pw, $W/app_clear.pw (root
# only, no trailing newline) and in the shell variables PG_APP_PW,
# PG_APP_MD5_PW, PG_APP_CLEAR_PW. They are deliberately not exported:
# every process the case starts in the pod would inherit them.

# The newest installed server's binaries (the Debian wrappers in /usr/bin
# pick a version by cluster configuration; the tests want no such magic).
PGBIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n1)
PG_HOST=10.77.0.1
PG_PORT=5432
PG_APP_PW=
PG_APP_MD5_PW=
PG_APP_CLEAR_PW=
# PGPASSFILE for clients that must find no password file (a path that does
# not exist: libpq warns about /dev/null when asked for a password).
PG_NOPASSFILE=/nonexistent/bridle-e2e.pgpass

pg_need() {
	if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/postgres" ]; then
		fail "no PostgreSQL server under /usr/lib/postgresql/*/bin (run scripts/install-deps.sh)"
	fi
	id postgres >/dev/null 2>&1 || fail "no user postgres (run scripts/install-deps.sh)"
}

# pg_pw FILE: a fresh random password (letters and digits) in FILE, mode
# 600, owned by root, no newline; prints it.
pg_pw() {
	local pw
	pw=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 32)
	[ ${#pw} -ge 20 ] || fail "pg_pw: could not make a password"
	(umask 077 && printf '%s' "$pw" >"$1") || fail "pg_pw: cannot write $1"
	chown root:root "$1"
	printf '%s' "$pw"
}

# psql as superuser over the unix socket (trust); ARGS as for psql.
pg_super() {
	"$PGBIN/psql" -X -q -h "$W/pgsock" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 "$@"
}

# pg_sql SQL...: run each SQL (one -c each) in database shop as superuser;
# unaligned, tuples only. Fails the case if psql fails.
pg_sql() {
	local a=() s
	for s in "$@"; do a+=(-c "$s"); done
	pg_super -tA -d shop "${a[@]}" || fail "pg_sql failed: $*"
}

# pg_log_has REGEX / pg_log_lacks REGEX: the server log (every statement
# the server received is in it: log_statement=all), case-insensitive ERE.
pg_log_has() { grep -qiE -- "$1" "$W/pg.log"; }
pg_log_lacks() { ! grep -qiE -- "$1" "$W/pg.log"; }

# pg_start: a PostgreSQL cluster in $W/pg, listening on 10.77.0.1:5432 in
# $SVC (topo_basic first) and on the unix socket $W/pgsock; roles, the
# database shop and its data.
# pg_make_certs: a CA and a server certificate for $PG_HOST (and the
# name db.test) under $W/pgssl, readable by postgres.
pg_make_certs() {
	local d=$W/pgssl
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.crt" -days 2 -subj /CN=be2e-ca \
		>/dev/null 2>&1 || fail "pg_make_certs: CA"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/server.key" -out "$d/server.csr" -subj /CN=db.test \
		>/dev/null 2>&1 || fail "pg_make_certs: CSR"
	printf 'subjectAltName=IP:%s,DNS:db.test\n' "$PG_HOST" >"$d/ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/ext" -out "$d/server.crt" \
		>/dev/null 2>&1 || fail "pg_make_certs: sign"
	# A second CA that signed nothing here: verification must fail.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/other.key" -out "$d/other.crt" -days 2 -subj /CN=other \
		>/dev/null 2>&1 || fail "pg_make_certs: other CA"
	chown -R postgres:postgres "$d"
	chmod 600 "$d/server.key"
}

pg_start() {
	pg_need
	[ -n "${SVC:-}" ] || fail "pg_start: call topo_basic first"
	# postgres must reach its directories under $W.
	if ! runuser -u postgres -- test -x "$W"; then
		chmod 755 "$W" || fail "pg_start: chmod $W"
	fi
	mkdir -p "$W/pg" "$W/pgsock"
	chown postgres:postgres "$W/pg" "$W/pgsock"
	chmod 700 "$W/pg"
	(cd "$W" && runuser -u postgres -- "$PGBIN/initdb" -D "$W/pg" -U postgres \
		-A trust -E UTF8 --locale=C --no-sync) >"$W/initdb.log" 2>&1 ||
		fail "initdb failed: $(tail -n 5 "$W/initdb.log")"
	cat >>"$W/pg/postgresql.conf" <<EOF
# bridle e2e
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$W/pgsock'
password_encryption = 'scram-sha-256'
ssl = off
log_statement = 'all'
log_connections = on
log_disconnections = on
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%u@%d %h '
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 40
EOF
	cat >"$W/pg/pg_hba.conf" <<'EOF'
# bridle e2e: superuser over the unix socket only; over TCP each role
# with its own method, and a password is always needed.
local all all                    trust
host  all app       10.77.0.0/16 scram-sha-256
host  all app_md5   10.77.0.0/16 md5
host  all app_clear 10.77.0.0/16 password
EOF
	# PG_SSL=1: TLS on, with a CA of the case's own and a certificate
	# for the server's address ($W/pgssl/ca.crt for clients).
	if [ "${PG_SSL:-0}" = 1 ]; then
		pg_make_certs
		cat >>"$W/pg/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = '$W/pgssl/server.crt'
ssl_key_file = '$W/pgssl/server.key'
EOF
	fi
	: >"$W/pg.log"
	spawn postgres "$CG/svc" "$SVC" env -C "$W" runuser -u postgres -- \
		"$PGBIN/postgres" -D "$W/pg" 2>>"$W/pg.log"
	local pid=$LAST_PID
	local i
	for i in $(seq 300); do
		"$PGBIN/pg_isready" -q -h "$W/pgsock" -p "$PG_PORT" && break
		kill -0 "$pid" 2>/dev/null || fail "postgres exited: $(tail -n 5 "$W/pg.log" | tr '\n' '|')"
		[ "$i" = 300 ] && fail "postgres not ready after 15 s: $(tail -n 5 "$W/pg.log" | tr '\n' '|')"
		sleep 0.05
	done
	ip netns exec "$SVC" ss -Htln | grep -q "$PG_HOST:$PG_PORT " ||
		fail "postgres does not listen on $PG_HOST:$PG_PORT in $SVC"

	PG_APP_PW=$(pg_pw "$W/app.pw")
	PG_APP_MD5_PW=$(pg_pw "$W/app_md5.pw")
	PG_APP_CLEAR_PW=$(pg_pw "$W/app_clear.pw")
	# Passwords stay out of the server log (log_statement would print them).
	pg_super -d postgres >/dev/null <<EOF || fail "pg_start: roles"
SET log_statement = 'none';
CREATE ROLE app LOGIN PASSWORD '$PG_APP_PW';
SET password_encryption = 'md5';
CREATE ROLE app_md5 LOGIN PASSWORD '$PG_APP_MD5_PW';
RESET password_encryption;
CREATE ROLE app_clear LOGIN PASSWORD '$PG_APP_CLEAR_PW';
EOF
	pg_super -d postgres -c 'CREATE DATABASE shop OWNER postgres' >/dev/null ||
		fail "pg_start: create database"
	pg_super -d shop >/dev/null <<'EOF' || fail "pg_start: schema and data"
CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int, amount numeric, note text);
CREATE TABLE public.customers (id int PRIMARY KEY, name text, email text, card text, ssn text, phone text);
CREATE TABLE public.audit (id serial, msg text);
CREATE SCHEMA hr;
CREATE TABLE hr.salaries (id int, name text, salary int);
INSERT INTO public.customers VALUES
  (1, 'Alice Martin', 'alice@example.com', '4111111111111111', '521-44-7312', '+1 415 555 0100'),
  (2, 'Bob Nguyen',   'bob@example.com',   '5555555555554444', '402-17-6583', '+1 415 555 0101'),
  (3, 'Carol Okafor', 'carol@example.org', '378282246310005',  '318-62-9045', '+1 415 555 0102');
INSERT INTO public.orders VALUES
  (1, 1, 42.50, 'first order'),
  (2, 2, 19.99, 'gift wrap'),
  (3, 1, 120.00, 'express shipping'),
  (4, 3, 7.25, NULL);
INSERT INTO public.audit (msg) VALUES ('seeded');
INSERT INTO hr.salaries VALUES (1, 'Alice Martin', 98000), (2, 'Bob Nguyen', 87000);
GRANT ALL ON DATABASE shop TO app, app_md5, app_clear;
GRANT ALL ON SCHEMA public, hr TO app, app_md5, app_clear;
GRANT ALL ON ALL TABLES IN SCHEMA public, hr TO app, app_md5, app_clear;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public, hr TO app, app_md5, app_clear;
EOF
	note "postgres $("$PGBIN/postgres" --version | awk '{print $3}') ready on $PG_HOST:$PG_PORT in $SVC (log $W/pg.log)"
}

# pg_bench_init: pgbench tables (scale 1) in shop, owned by app, created
# over the unix socket (trust).
pg_bench_init() {
	"$PGBIN/pgbench" -i -q -s 1 -h "$W/pgsock" -p "$PG_PORT" -U app shop >"$W/pgbench-init.log" 2>&1 ||
		fail "pgbench -i failed: $(tail -n 3 "$W/pgbench-init.log" | tr '\n' '|')"
}

# pg_policy [EXTRA_RULES_JSON]: the standard PostgreSQL policy; EXTRA is
# one rule object or an array of them, appended to the rules.
pg_policy() {
	local extra=${1:-[]}
	jq -n --arg pw "$W/app.pw" --argjson extra "$extra" '{
	  default: "deny",
	  targets: [
	    {name: "shop-db", address: "10.77.0.1", port: 5432, protocol: "postgres",
	     tls: "disable", credentials: {user: "app", password_file: $pw}}
	  ],
	  rules: ([
	    {name: "agents read shop",
	     when: {workload: {labels: {app: "agent"}}, target: "shop-db"}, action: "allow",
	     sql: {commands: ["select"], tables: ["public.orders", "public.customers"]},
	     mask: {columns: ["public.customers.email"],
	            detectors: ["credit_card", "us_ssn"], style: "redact"}},
	    {name: "agents write audit",
	     when: {workload: {labels: {app: "agent"}}, target: "shop-db"}, action: "allow",
	     sql: {commands: ["insert"], tables: ["public.audit"]}}
	  ] + (if ($extra | type) == "array" then $extra else [$extra] end))
	}' || fail "pg_policy: bad extra rules: $extra"
}

# pg_setup: the usual PostgreSQL case: pod, workload, server, config.
pg_setup() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	pg_start
	write_config "$(pg_policy '[]')"
}

# pod_pg CMD...: CMD in the pod with libpq pointed at nothing secret: no
# PGPASSWORD, no password file, connect timeout 5 s, sslmode
# $PG_SSLMODE (default disable). In a session of its own (setsid): with
# no controlling terminal a client that is asked for a password (pgbench
# prompts) cannot stop on /dev/tty; give it </dev/null too.
pod_pg() {
	pod "$POD" setsid -w env -u PGPASSWORD -u PG_APP_PW PGPASSFILE="$PG_NOPASSFILE" PGCONNECT_TIMEOUT=5 \
		PGSSLMODE="${PG_SSLMODE:-disable}" "$@"
}

# pod_psql ARGS...: an unmodified psql in the pod, as user app of database
# shop at 10.77.0.1:5432, without a password (-w: never prompt for one);
# prints stdout and stderr and returns psql's status.
pod_psql() {
	pod_pg "$PGBIN/psql" -X -w -v ON_ERROR_STOP=0 \
		-d "host=$PG_HOST port=$PG_PORT dbname=shop user=app sslmode=${PG_SSLMODE:-disable}" "$@" 2>&1
}
