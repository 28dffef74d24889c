#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The bridle demo: a sandbox "pod" (network namespace + cgroup), two real
# HTTP servers in a services namespace, bridle enforcing examples/demo.json,
# and an unmodified curl in the pod reaching one server (allowed) and not
# the other (denied). Prints what bridle decided, then removes everything.
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
pids=()

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
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
mkdir -p "$CG/agent-a" /run/bridle-demo

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

step "what bridle decided (bridle sessions)"
"$BRIDLE" sessions --socket "$SOCK"
echo
echo "admin API access log (must be empty):"
grep -c 'GET' /run/bridle-demo/admin.log || true

step "session log (/run/bridle-demo/log/sessions.jsonl)"
cat /run/bridle-demo/log/sessions.jsonl
