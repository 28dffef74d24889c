#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The bridle demo: a sandbox "pod" (network namespace + cgroup), two real
# HTTP servers and a real PostgreSQL in a services namespace, bridle
# enforcing examples/demo.json, and unmodified clients in the pod: curl
# reaches one server (allowed) and not the other (denied); a Python agent
# (psycopg2, no password) reads the orders, is denied a DELETE with a
# clear message, and sees customers' emails and card numbers masked.
# Prints what bridle decided, then removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."

BRIDLE=${BRIDLE:-build/bridle}
CONFIG=examples/demo.json
SOCK=/run/bridle-demo/control.sock
PIN=/sys/fs/bpf/bridle-demo
NS_POD=bridle-demo-pod
NS_SVC=bridle-demo-svc
CG_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=$CG_ROOT/bridle-demo
PY=/usr/bin/python3
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
pids=()

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	# PostgreSQL and its children live in the demo's services cgroup.
	if [ -d "$CG/svc" ]; then
		echo 1 >"$CG/svc/cgroup.kill" 2>/dev/null
		for _ in $(seq 50); do
			[ -s "$CG/svc/cgroup.procs" ] || break
			sleep 0.05
		done
		rmdir "$CG/svc" 2>/dev/null
	fi
	if [ -d "$CG/agent-a" ]; then
		"$BRIDLE" unenroll --cgroup "$CG/agent-a" --pin-dir "$PIN" 2>/dev/null
		rmdir "$CG/agent-a" 2>/dev/null
	fi
	rmdir "$CG" 2>/dev/null
	rm -rf "$PIN" /run/bridle-demo
	ip netns del "$NS_POD" 2>/dev/null
	ip netns del "$NS_SVC" 2>/dev/null
}
trap cleanup EXIT
cleanup 2>/dev/null
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "demo: run as root" >&2; exit 1; }
[ -n "$CG_ROOT" ] || { echo "demo: no cgroup2 mount in /proc/mounts" >&2; exit 1; }

step "sandbox: pod netns $NS_POD (10.77.0.2), services netns $NS_SVC (10.77.0.1), cgroup $CG/agent-a"
ip netns add "$NS_SVC"
ip netns add "$NS_POD"
ip link add bdemo-svc type veth peer name bdemo-pod
ip link set bdemo-svc netns "$NS_SVC"
ip link set bdemo-pod netns "$NS_POD"
ip -n "$NS_SVC" addr add 10.77.0.1/24 dev bdemo-svc
ip -n "$NS_POD" addr add 10.77.0.2/24 dev bdemo-pod
for ns in "$NS_SVC" "$NS_POD"; do
	ip -n "$ns" link set lo up
done
ip -n "$NS_SVC" link set bdemo-svc up
ip -n "$NS_POD" link set bdemo-pod up
mkdir -p "$CG/agent-a" "$CG/svc" /run/bridle-demo

step "services: orders API on 10.77.0.1:8080, admin API on 10.77.0.1:9090 (python http.server)"
mkdir -p /run/bridle-demo/www/orders /run/bridle-demo/www/admin
echo '{"orders": [{"id": 1, "item": "widget"}]}' > /run/bridle-demo/www/orders/orders.json
echo '{"users": ["root"]}' > /run/bridle-demo/www/admin/users.json
ip netns exec "$NS_SVC" $PY -m http.server 8080 --bind 10.77.0.1 \
	--directory /run/bridle-demo/www/orders >/run/bridle-demo/orders.log 2>&1 &
pids+=($!)
ip netns exec "$NS_SVC" $PY -m http.server 9090 --bind 10.77.0.1 \
	--directory /run/bridle-demo/www/admin >/run/bridle-demo/admin.log 2>&1 &
pids+=($!)

step "services: PostgreSQL on 10.77.0.1:5432, database shop (orders, customers)"
[ -x "$PGBIN/initdb" ] || { echo "demo: PostgreSQL missing (make deps)" >&2; exit 1; }
D=/run/bridle-demo
mkdir -p "$D/pg" "$D/pgsock"
chmod 755 "$D"
chown postgres:postgres "$D/pg" "$D/pgsock"
runuser -u postgres -- "$PGBIN/initdb" -D "$D/pg" -U postgres -A trust \
	--no-sync >"$D/initdb.log" 2>&1
cat >>"$D/pg/postgresql.conf" <<EOF
listen_addresses = '10.77.0.1'
unix_socket_directories = '$D/pgsock'
password_encryption = 'scram-sha-256'
log_statement = 'all'
fsync = off
EOF
printf 'local all all trust\nhost all app 10.77.0.0/16 scram-sha-256\n' >"$D/pg/pg_hba.conf"
# The real password: only bridle (root) can read it; the agent never has it.
(umask 077 && openssl rand -hex 16 | tr -d '\n' >"$D/shop-db.pw")
sh -c 'echo $$ >"$0/cgroup.procs"; exec ip netns exec "$1" runuser -u postgres -- \
	"$2/postgres" -D "$3/pg"' "$CG/svc" "$NS_SVC" "$PGBIN" "$D" 2>"$D/pg.log" &
pids+=($!)
for _ in $(seq 100); do
	"$PGBIN/pg_isready" -q -h "$D/pgsock" && break
	sleep 0.1
done
psql_super() { runuser -u postgres -- "$PGBIN/psql" -X -q -h "$D/pgsock" "$@"; }
psql_super -d postgres -c "SET log_statement = 'none'" \
	-c "CREATE ROLE app LOGIN PASSWORD '$(cat "$D/shop-db.pw")'" \
	-c "CREATE DATABASE shop OWNER app"
psql_super -d shop -U app <<'EOF'
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount numeric);
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, note text);
INSERT INTO orders VALUES (1, 1, 42.50), (2, 2, 17.00), (3, 1, 99.90);
INSERT INTO customers VALUES
  (1, 'Alice Martin', 'alice@example.com', 'card 4111 1111 1111 1111 on file'),
  (2, 'Bob Nguyen', 'bob@example.com', 'pays by invoice');
EOF

step "bridle run --config $CONFIG"
"$BRIDLE" run --config "$CONFIG" 2>/run/bridle-demo/bridle.log &
pids+=($!)
for _ in $(seq 100); do
	if "$BRIDLE" status --json --socket "$SOCK" 2>/dev/null |
		grep -q '"ready": true'; then break; fi
	sleep 0.1
done
"$BRIDLE" status --socket "$SOCK"

step "agent (unmodified curl in the pod): GET http://10.77.0.1:8080/orders.json"
scripts/podexec "$CG/agent-a" "$NS_POD" curl -sS --max-time 5 \
	http://10.77.0.1:8080/orders.json || true

step "agent: GET http://10.77.0.1:9090/users.json"
scripts/podexec "$CG/agent-a" "$NS_POD" curl -sS --max-time 5 \
	http://10.77.0.1:9090/users.json || echo "(curl failed: refused by bridle)"

agent() {
	scripts/podexec "$CG/agent-a" "$NS_POD" $PY examples/agent_pg.py \
		10.77.0.1 5432 shop agent "$@" || true
}
step "agent (Python, psycopg2, no password): SELECT id, amount FROM orders"
agent "SELECT id, amount FROM orders ORDER BY id"

step "agent: DELETE FROM orders WHERE amount < 50"
agent "DELETE FROM orders WHERE amount < 50"
echo "orders on the server: $(psql_super -d shop -tAc 'SELECT count(*) FROM orders') rows (unchanged)"

step "agent: SELECT name, email, note FROM customers"
agent "SELECT name, email, note FROM customers ORDER BY id"

step "what bridle decided (bridle sessions)"
"$BRIDLE" sessions --socket "$SOCK"
echo
echo "admin API access log (must be empty):"
grep -c 'GET' /run/bridle-demo/admin.log || true

step "session log (/run/bridle-demo/log/sessions.jsonl)"
cat /run/bridle-demo/log/sessions.jsonl
