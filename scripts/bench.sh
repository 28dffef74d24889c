#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# bench.sh: what does bridle cost on the data path? Two parts. TCP (tcp):
# the same TCP client against the same server several ways, in one run:
#
#   direct       client in the pod netns, NOT in the enrolled cgroup
#   bridle       client in the enrolled cgroup (scripts/podexec): its connect
#                is redirected to bridle's listener in the pod netns, and
#                bridle relays to the server (default config: no "relay" or
#                "buffer_size" key)
#   haproxy      Debian haproxy, TCP mode, in the pod netns on 127.0.0.1,
#                client not in the cgroup: the classic userspace proxy hop
#   bridle-1w    like bridle, "workers": 1 (its own pod + instance)
#   bridle-256k  like bridle, "buffer_size": 262144 (not in the default list)
#   bridle-copy  like bridle, "relay": "copy" (the buffer path protocol
#                modules use; its own pod + instance)
#   bridle-splice  like bridle, "relay": "splice" (not in the default list)
#
# Tests (tests/tools/tcpbench.c): throughput with 1 and 4 connections,
# 64-byte ping-pong latency on one connection (twice: as is, and with every
# CPU kept out of halt, see spin_start), connection rate (connect, one
# 64-byte round trip, close). The proxies' own CPU time is measured too. Every measurement is repeated BENCH_REPS
# times, interleaved across variants (direct, bridle, haproxy, ..., direct,
# bridle, ...), and the median is reported. Raw results:
# build/bench/results.json; table: stdout and build/bench/table.txt.
#
# Topology (all in namespaces created here; nothing touches the host netns):
#   netns S (services): bridge br0 10.77.0.1/24, tcpbench server :5201,
#                       PostgreSQL :5432 (pg part)
#   netns P<i> (pods):  eth0 10.77.0.<i+2>/24, veth to br0 in S; the pg
#                       part has a pod of its own (the last one)
#   cgroup <cgroup2>/bridle-bench-<pid>/pod<i> (and, pg part: pgsrv, the
#                       PostgreSQL server; pgclient, pgbench when not
#                       enrolled)
#
# Environment: BENCH_REPS (3), BENCH_SECONDS (throughput, 2.5),
# BENCH_CONNRATE_SECONDS (2), BENCH_LAT_COUNT (20000),
# BENCH_VARIANTS ("direct bridle haproxy bridle-1w bridle-copy"),
# BENCH_OUT (build/bench), BENCH_KEEP=1 keeps the work dir (bridle logs).
#
# PostgreSQL part (pg): pgbench -S (select-only, one SELECT per
# transaction) against a real PostgreSQL server in netns S
# (10.77.0.1:5432, a throw-away cluster in the work dir), in the same run:
#
#   direct     pgbench in the pg pod's netns, NOT in the enrolled cgroup,
#              straight to 10.77.0.1:5432 with the password (a pgpass file)
#   bridle     pgbench in the pg pod's enrolled cgroup, to 10.77.0.1:5432
#              with NO password: bridle intercepts it, decides every
#              statement against a policy with SQL rules and masking (a mask
#              column pgbench never reads + detectors email, credit_card),
#              logs the session, and logs in upstream with SCRAM from a
#              password file (its own instance, default config)
#   bridle-rec like bridle, and every session recorded (record_dir: a
#              fresh directory in the work dir, mode 0700; record_key_file:
#              32 random bytes, mode 0600; record_fsync_ms left at its
#              default, 1000): its own instance in a pod of its own (the
#              pg part's second pod; one instance per enrolled cgroup)
#   pgbouncer  PgBouncer, session mode, in the pg pod's netns on
#              127.0.0.1:16432 -> 10.77.0.1:5432 (client: password, SCRAM)
#   haproxy    haproxy, TCP mode, in the pg pod's netns on 127.0.0.1:15432
#              -> 10.77.0.1:5432 (client: password)
#
# The three proxies sit at the same place (the pod's netns, upstream over
# the pod's veth). For every protocol (-M simple, extended) and client count
# (-c 1, 16; -j min(clients, nproc)), each variant runs -T BENCH_PG_SECONDS,
# interleaved, BENCH_PG_REPS rounds; median reported: tps, pgbench's
# "latency average", and the proxy's CPU per query (utime+stime from
# /proc/PID/stat over the pgbench run, divided by its transactions), plus
# the server's CPU per query (its cgroup's cpu.stat). Results:
# build/bench/pg-results.json, build/bench/pg.md (the BENCHMARKS.md
# section), bridle's log build/bench/pg-bridle.log.
#
# Recording (bridle-rec): the report adds a table of bridle with
# recording on against off (tps ratio, added proxy CPU and latency per
# query, recording bytes and records per query); after the runs every
# recording must verify (`bridle verify --json`: ok, not torn, ended), one
# per session, else the script fails (build/bench/pg-rec-verify.json).
#
# Which parts run: first argument or BENCH_PARTS: "all" (default: tcp,
# then pg), "tcp", "pg". E.g. `scripts/bench.sh pg` or
# `BENCH_PARTS=pg make bench`.
# pg knobs: BENCH_PG_SECONDS (5), BENCH_PG_REPS (3), BENCH_PG_SCALE (10),
# BENCH_PG_VARIANTS ("direct bridle pgbouncer haproxy"),
# BENCH_PG_MODES ("simple extended"), BENCH_PG_CLIENTS ("1 16"),
# BENCH_PG_DECISION_LOG (all; or refusals: bridle's decision_log, both
# bridle instances),
# BENCH_PG_RECORD (both; on; off): what "bridle" in BENCH_PG_VARIANTS
# runs: both = bridle (recording off) and bridle-rec (on), next to each
# other in every round; on = bridle-rec only; off = bridle only
# (bridle-rec named in BENCH_PG_VARIANTS runs whatever this says).
# With the defaults the pg part takes about 5.5 minutes (tcp: 2.5).
#
# The binary: BRIDLE (default $BUILD/bridle, BUILD default build, as in the
# Makefile, so `make bench BUILD=x` measures x/bridle); tcpbench:
# $BUILD/tools/tcpbench. BENCH_OUT defaults to $BUILD/bench.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

PARTS=${1:-${BENCH_PARTS:-all}}
case $PARTS in
all) PARTS="tcp pg" ;;
tcp | pg | "tcp pg" | "pg tcp") ;;
*)
	echo "usage: $0 [all|tcp|pg] (or BENCH_PARTS=...)" >&2
	exit 2
	;;
esac
want() { [[ " $PARTS " == *" $1 "* ]]; }
# The command as given (BENCH_* settings from the environment first), for
# the pg report; taken before anything here exports BENCH_* variables.
BENCH_CMD="scripts/bench.sh${1:+ $1}"
for _e in $(compgen -e | grep -E '^(BENCH_|BRIDLE$|BUILD$)' | sort -r); do
	BENCH_CMD="$_e=${!_e} $BENCH_CMD"
done

REPS=${BENCH_REPS:-3}
TPUT_S=${BENCH_SECONDS:-2.5}
CR_S=${BENCH_CONNRATE_SECONDS:-2}
LAT_N=${BENCH_LAT_COUNT:-20000}
VARIANTS=${BENCH_VARIANTS:-direct bridle haproxy bridle-1w bridle-copy}
want tcp || VARIANTS=""
PG_SECONDS=${BENCH_PG_SECONDS:-5}
PG_REPS=${BENCH_PG_REPS:-3}
PG_SCALE=${BENCH_PG_SCALE:-10}
PG_VARIANTS=${BENCH_PG_VARIANTS:-direct bridle pgbouncer haproxy}
PG_MODES=${BENCH_PG_MODES:-simple extended}
PG_CLIENTS=${BENCH_PG_CLIENTS:-1 16}
PG_DECISION_LOG=${BENCH_PG_DECISION_LOG:-all}
PG_RECORD=${BENCH_PG_RECORD:-both}
BUILD_DIR=${BUILD:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
OUT=${BENCH_OUT:-$BUILD_DIR/bench}
BRIDLE=${BRIDLE:-$BUILD_DIR/bridle}
[[ $BRIDLE == /* ]] || BRIDLE=$ROOT/$BRIDLE
BRIDLE_SRC=${BRIDLE#"$ROOT"/}
TB=$BUILD_DIR/tools/tcpbench
PODEXEC=$ROOT/scripts/podexec
SRV_IP=10.77.0.1
SRV_PORT=5201
HAP_PORT=15201
PG_PORT=5432
PG_HAP_PORT=15432
PGB_PORT=16432
# The newest installed PostgreSQL server (full paths: the Debian wrappers in
# /usr/bin pick a version by cluster configuration).
PGBIN=${BENCH_PGBIN:-$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n1)}

ID=bridle-bench-$$
NS_SVC=$ID-svc
WORK=""
CG_ROOT=""
CG_BASE=""
PIDS=()            # long-running processes we started
BRIDLE_PIDS=()     # subset: bridle instances (stopped first, with SIGTERM)
PIN_DIRS=()
PODS=()            # netns names of the pods we created
PGSRV_PID=""       # the postmaster (pg part)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[ -x "$BRIDLE" ] || die "$BRIDLE is missing: run 'make all' (or 'make bench')"
if want tcp; then
	[ -x "$TB" ] || die "$TB is missing: run 'make all' (or 'make bench')"
fi
[ "$(id -u)" = 0 ] || die "must run as root (namespaces, cgroups, BPF)"
for c in ip python3 haproxy ss; do
	command -v "$c" >/dev/null || die "$c not found: run scripts/install-deps.sh"
done
if want pg; then
	for c in pgbouncer setpriv; do
		command -v "$c" >/dev/null || die "$c not found: run scripts/install-deps.sh"
	done
	[ -n "$PGBIN" ] && [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/pgbench" ] ||
		die "no PostgreSQL server under /usr/lib/postgresql/*/bin: run scripts/install-deps.sh"
	id postgres >/dev/null 2>&1 || die "no user postgres: run scripts/install-deps.sh"
fi
CG_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CG_ROOT" ] || die "no cgroup2 file system in /proc/mounts"
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || die "bpffs is not mounted on /sys/fs/bpf"

# Stop the PostgreSQL server: fast shutdown, then whatever is left in its
# cgroup is killed.
pg_stop() {
	local i
	if [ -n "$PGSRV_PID" ] && kill -0 "$PGSRV_PID" 2>/dev/null; then
		kill -INT "$PGSRV_PID" 2>/dev/null
		for i in $(seq 100); do
			kill -0 "$PGSRV_PID" 2>/dev/null || break
			sleep 0.1
		done
	fi
	PGSRV_PID=""
	if [ -n "$CG_BASE" ] && [ -f "$CG_BASE/pgsrv/cgroup.kill" ]; then
		echo 1 >"$CG_BASE/pgsrv/cgroup.kill" 2>/dev/null
		for i in $(seq 50); do
			[ -z "$(cat "$CG_BASE/pgsrv/cgroup.procs" 2>/dev/null)" ] && break
			sleep 0.1
		done
	fi
}

cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	set +e
	# bridle first, gently: SIGTERM drains and exits.
	for pid in "${BRIDLE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for i in $(seq 50); do
		local alive=0
		for pid in "${BRIDLE_PIDS[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	pg_stop
	# Clients left in our own pod cgroups (interrupted run) are ours.
	if [ -n "$CG_BASE" ] && [ -d "$CG_BASE" ]; then
		for f in "$CG_BASE"/*/cgroup.procs; do
			[ -f "$f" ] || continue
			for pid in $(cat "$f"); do kill -KILL "$pid" 2>/dev/null; done
		done
		sleep 0.2
	fi
	for i in "${!PIN_DIRS[@]}"; do
		"$BRIDLE" unenroll --cgroup "$CG_BASE/pod$i" \
			--pin-dir "${PIN_DIRS[$i]}" 2>/dev/null
		rm -rf "${PIN_DIRS[$i]}"
	done
	for ns in "${PODS[@]}" "$NS_SVC"; do
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$CG_BASE" ] && [ -d "$CG_BASE" ]; then
		for d in "$CG_BASE"/*/; do
			[ -d "$d" ] && rmdir "$d" 2>/dev/null
		done
		rmdir "$CG_BASE" 2>/dev/null || log "warning: cannot remove $CG_BASE"
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ] || [ $rc != 0 ]; then
			log "work dir kept: $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WORK=$(mktemp -d /tmp/bridle-bench.XXXXXX)
mkdir -p "$OUT"
# Run a copy: build/bridle may be rebuilt while the benchmark runs.
BRIDLE_SHA=$(sha256sum "$BRIDLE" | cut -c1-12)
BRIDLE_MTIME=$(date -u -r "$BRIDLE" '+%Y-%m-%d %H:%M:%S UTC')
cp "$BRIDLE" "$WORK/bridle.bin"
BRIDLE=$WORK/bridle.bin
RAW=$WORK/raw.jsonl
: >"$RAW"

# ---------------------------------------------------------------- topology
#
# Variant → pod index: direct, bridle and haproxy share pod 0 (so the only
# difference between them is the hop); each extra bridle config gets a pod
# of its own, because one bridle instance has one buffer_size / relay mode.
# The pg part has its own pod (and bridle instance with a postgres policy).
declare -A POD_OF=([direct]=0 [bridle]=0 [haproxy]=0)
declare -A BRIDLE_EXTRA=([bridle]='' \
	[bridle-1w]='"workers": 1,' \
	[bridle-256k]='"buffer_size": 262144,' \
	[bridle-copy]='"relay": "copy",' \
	[bridle-splice]='"relay": "splice",')
NPODS=0
[ -z "$VARIANTS" ] || NPODS=1
for v in $VARIANTS; do
	case $v in
	direct | bridle | haproxy) ;;
	bridle-1w | bridle-256k | bridle-copy | bridle-splice)
		POD_OF[$v]=$NPODS
		NPODS=$((NPODS + 1))
		;;
	*) die "unknown variant $v" ;;
	esac
done
PG_POD=""
PG_REC_POD=""
if want pg; then
	# "bridle" stands for bridle with recording off and/or on.
	case $PG_RECORD in
	both) _bridle="bridle bridle-rec" ;;
	on) _bridle=bridle-rec ;;
	off) _bridle=bridle ;;
	*) die "BENCH_PG_RECORD must be both, on or off (not $PG_RECORD)" ;;
	esac
	_vs=""
	for v in $PG_VARIANTS; do
		case $v in
		direct | pgbouncer | haproxy | bridle-rec) _vs="$_vs $v" ;;
		bridle) _vs="$_vs $_bridle" ;;
		*) die "unknown pg variant $v" ;;
		esac
	done
	# Each once, in the order given.
	PG_VARIANTS=$(printf '%s\n' $_vs | awk '!seen[$0]++' | xargs)
	for m in $PG_MODES; do
		case $m in
		simple | extended | prepared) ;;
		*) die "unknown pgbench protocol $m" ;;
		esac
	done
	PG_POD=$NPODS
	NPODS=$((NPODS + 1))
	# bridle-rec: an instance of its own, so a pod (cgroup) of its own.
	if [[ " $PG_VARIANTS " == *" bridle-rec "* ]]; then
		PG_REC_POD=$NPODS
		NPODS=$((NPODS + 1))
	fi
fi

log "setting up namespaces ($ID, $NPODS pod(s))"
ip netns add "$NS_SVC"
PODS=()
ip -n "$NS_SVC" link set lo up
ip -n "$NS_SVC" link add br0 type bridge
ip -n "$NS_SVC" addr add "$SRV_IP/24" dev br0
ip -n "$NS_SVC" link set br0 up
CG_BASE=$CG_ROOT/$ID
mkdir "$CG_BASE"
for i in $(seq 0 $((NPODS - 1))); do
	ns=$ID-pod$i
	ip netns add "$ns"
	PODS+=("$ns")
	# The veth is created inside S and its peer moved straight to P<i>.
	ip -n "$NS_SVC" link add "v$i" type veth peer name eth0 netns "$ns"
	ip -n "$NS_SVC" link set "v$i" master br0
	ip -n "$NS_SVC" link set "v$i" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "10.77.0.$((i + 2))/24" dev eth0
	ip -n "$ns" link set eth0 up
	# The connection-rate test leaves tens of thousands of TIME_WAIT sockets
	# in the pod netns; with the default port range and tcp_tw_reuse=2 the
	# ephemeral port search then costs milliseconds per connect(), for the
	# client and for every proxy's upstream connect alike, and whichever
	# variant runs later would be penalised. Same settings for all variants.
	ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="10000 65000"
	mkdir "$CG_BASE/pod$i"
done

wait_listen() { # NETNS PORT
	local i
	for i in $(seq 100); do
		if ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q .; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

if want tcp; then
	ip netns exec "$NS_SVC" "$TB" server --port $SRV_PORT --bind $SRV_IP \
		2>"$WORK/server.log" &
	PIDS+=($!)
	wait_listen "$NS_SVC" $SRV_PORT || die "tcpbench server did not start: $(cat "$WORK/server.log")"
fi

# ---------------------------------------------------------------- bridle
declare -A SOCK_OF=()
declare -A PROXY_PID=()

# CPU time (ns) a process and all its threads have spent running.
cpu_ns() { # PID
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

# launch_bridle KEY POD_INDEX DIR: bridle run --config DIR/config.json,
# logging to DIR/bridle.log; waits until its workload is ready.
launch_bridle() {
	local v=$1 i=$2 d=$3 pid n
	PIN_DIRS[$i]=/sys/fs/bpf/$ID-$i
	"$BRIDLE" run --config "$d/config.json" 2>"$d/bridle.log" &
	pid=$!
	PIDS+=($pid)
	BRIDLE_PIDS+=($pid)
	PROXY_PID[$v]=$pid
	SOCK_OF[$v]=$d/control.sock
	for n in $(seq 100); do
		if "$BRIDLE" status --json --socket "$d/control.sock" 2>/dev/null |
			python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["workloads"][0]["ready"] else 1)' \
				2>/dev/null; then
			return 0
		fi
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	tail -20 "$d/bridle.log" >&2
	die "bridle ($v) did not become ready"
}

start_bridle() { # VARIANT
	local v=$1 i=${POD_OF[$1]} d=$WORK/$1
	mkdir -p "$d"
	cat >"$d/config.json" <<EOT
{
  "listen_port": 15001,
  "control_socket": "$d/control.sock",
  "log_dir": "$d/log",
  "bpf_pin_dir": "/sys/fs/bpf/$ID-$i",
  ${BRIDLE_EXTRA[$v]}
  "workloads": [ { "name": "bench", "cgroup": "$ID/pod$i",
                   "netns": "/run/netns/$ID-pod$i",
                   "labels": { "app": "bench" } } ],
  "policy": {
    "default": "deny",
    "targets": [ { "name": "srv", "address": "$SRV_IP", "port": $SRV_PORT,
                   "protocol": "tcp" } ],
    "rules": [ { "name": "bench", "when": { "target": "srv" }, "action": "allow" } ]
  }
}
EOT
	launch_bridle "$v" "$i" "$d"
}

# accepted/refused counters of one bridle instance: "A R"
bridle_counts() { # VARIANT
	"$BRIDLE" status --json --socket "${SOCK_OF[$1]}" | python3 -c '
import json, sys
w = json.load(sys.stdin)["workloads"][0]
print(w["accepted"], w["refused"])'
}

# ---------------------------------------------------------------- haproxy
# write_haproxy_cfg FILE PORT DEST: Debian haproxy defaults (threads: one per
# CPU), TCP mode, no logging, 127.0.0.1:PORT -> DEST.
write_haproxy_cfg() {
	cat >"$1" <<EOT
# Debian haproxy defaults (threads: one per CPU), TCP mode, no logging.
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend bench
    bind 127.0.0.1:$2
    default_backend srv
backend srv
    server s1 $3
EOT
}

start_haproxy() {
	write_haproxy_cfg "$WORK/haproxy.cfg" $HAP_PORT "$SRV_IP:$SRV_PORT"
	ip netns exec "$ID-pod0" haproxy -db -f "$WORK/haproxy.cfg" \
		>"$WORK/haproxy.log" 2>&1 &
	PIDS+=($!)
	HAP_PID=$!
	PROXY_PID[haproxy]=$HAP_PID
	wait_listen "$ID-pod0" $HAP_PORT || die "haproxy did not start: $(cat "$WORK/haproxy.log")"
}

HAP_PID=""
for v in $VARIANTS; do
	case $v in
	bridle*) start_bridle "$v" ;;
	haproxy) start_haproxy ;;
	esac
done

# ---------------------------------------------------------------- clients
client() { # VARIANT REP TEST ARGS...
	local v=$1 rep=$2 test=$3 i=${POD_OF[$1]} line rc=0 pp c0=0 c1=0
	shift 3
	pp=${PROXY_PID[$v]:-}
	local -a pre
	local host=$SRV_IP port=$SRV_PORT
	case $v in
	direct) pre=(ip netns exec "$ID-pod$i") ;;
	haproxy)
		pre=(ip netns exec "$ID-pod$i")
		host=127.0.0.1 port=$HAP_PORT
		;;
	bridle*) pre=("$PODEXEC" "$CG_BASE/pod$i" "$ID-pod$i") ;;
	esac
	[ -z "$pp" ] || c0=$(cpu_ns "$pp")
	line=$(timeout 120 "${pre[@]}" "$TB" "$@" --host $host --port $port \
		--label "$v/$rep/$test") || rc=$?
	[ -z "$pp" ] || c1=$(cpu_ns "$pp")
	[ -n "$line" ] || line="{\"error\":\"no output (exit $rc)\"}"
	# The proxy's own CPU time during this test: robust where wall-clock
	# latency depends on vCPU wake-ups and scheduling.
	if [ -n "$pp" ] && [[ $line == *'}' ]]; then
		line="${line%\}},\"proxy_cpu_ns\":$((c1 - c0))}"
	fi
	printf '%s\n' "$line" >>"$RAW"
	if [ $rc != 0 ] || [[ $line == *'"error"'* ]]; then
		die "$v rep $rep $test: $line"
	fi
	case $test in
	connrate) LAST_CONNS=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["connections"])' "$line") ;;
	esac
}

# Idle vCPUs of a VM halt, and waking one costs tens of µs: on such a machine
# a ping-pong measures the hypervisor's wake-up path as much as the proxy, and
# whether client, proxy and server happen to share a CPU makes the p50
# bimodal. "latency-poll" repeats the latency test with one SCHED_IDLE busy
# loop per CPU, which keeps every CPU out of halt and yields at once to any
# real task (like booting with idle=poll). Only during that test: the loops
# would take CPU time from the throughput tests.
SPIN=()
spin_start() {
	local i
	for i in $(seq "$(nproc)"); do
		chrt --idle 0 sh -c 'while :; do :; done' &
		SPIN+=($!)
		PIDS+=($!)
	done
}
spin_stop() {
	local pid
	for pid in "${SPIN[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
	SPIN=()
}

# One round of every test for one variant. For bridle variants, check that
# every connection went through bridle (and none was refused); for direct,
# that none did.
round() { # VARIANT REP
	local v=$1 rep=$2 before="" after expect
	if [[ $v == bridle* ]]; then
		before=$(bridle_counts "$v")
	elif [ "$v" = direct ] && [ -n "${SOCK_OF[bridle]:-}" ]; then
		before=$(bridle_counts bridle)
	fi
	LAST_CONNS=0
	client "$v" "$rep" tput1 throughput --seconds "$TPUT_S" --conns 1
	client "$v" "$rep" tput4 throughput --seconds "$TPUT_S" --conns 4
	client "$v" "$rep" latency latency --count "$LAT_N" --size 64 --conns 1
	spin_start
	client "$v" "$rep" latency-poll latency --count "$LAT_N" --size 64 --conns 1
	spin_stop
	client "$v" "$rep" connrate connrate --seconds "$CR_S" --size 64 --conns 1
	if [[ $v == bridle* ]]; then
		after=$(bridle_counts "$v")
		expect=$((1 + 4 + 1 + 1 + LAST_CONNS))
		set -- $before $after
		[ $(($3 - $1)) = $expect ] ||
			die "$v: bridle accepted $(($3 - $1)) connections, expected $expect"
		[ $(($4 - $2)) = 0 ] || die "$v: bridle refused $(($4 - $2)) connections"
	elif [ "$v" = direct ] && [ -n "${SOCK_OF[bridle]:-}" ]; then
		after=$(bridle_counts bridle)
		[ "$before" = "$after" ] || die "direct: connections went through bridle ($before -> $after)"
	fi
}

if want tcp; then
	log "variants: $VARIANTS; $REPS rounds of: throughput ${TPUT_S}s x1 and x4 conns, latency $LAT_N x 64 B (x2), connrate ${CR_S}s"
	LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
	T0=$(date +%s)
	for rep in $(seq 1 "$REPS"); do
		for v in $VARIANTS; do
			log "round $rep/$REPS: $v"
			round "$v" "$rep"
		done
	done
	T1=$(date +%s)

	# ---------------------------------------------------------------- report
	HAP_THREADS=""
	[ -n "$HAP_PID" ] && HAP_THREADS=$(ls /proc/"$HAP_PID"/task 2>/dev/null | wc -l)
	export BENCH_RAW=$RAW BENCH_OUT=$OUT BENCH_VARIANTS="$VARIANTS" \
		BENCH_ELAPSED=$((T1 - T0)) BENCH_HAP_THREADS=$HAP_THREADS \
		BENCH_LOAD0="$LOAD0" BENCH_LOAD1="$(cut -d' ' -f1-3 /proc/loadavg)" \
		BENCH_TPUT_S=$TPUT_S BENCH_CR_S=$CR_S BENCH_LAT_N=$LAT_N BENCH_REPS=$REPS \
		BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
		BENCH_DIRTY=$(git status --porcelain --untracked-files=no -- user bpf include 2>/dev/null | wc -l) \
		BENCH_HAPROXY=$(haproxy -v 2>/dev/null | head -1 | awk '{print $3}')
python3 - <<'EOF'
import json, os, platform, statistics

raw = [json.loads(l) for l in open(os.environ["BENCH_RAW"]) if l.strip()]
variants = os.environ["BENCH_VARIANTS"].split()
tests = ["tput1", "tput4", "latency", "connrate"]

def cpu_model():
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            return l.split(":", 1)[1].strip()
    return platform.processor() or "unknown"

runs = {}
for r in raw:
    v, rep, t = r["label"].split("/")
    runs.setdefault(v, {}).setdefault(t, []).append(r)

def med(v, t, key):
    return statistics.median(r[key] for r in runs[v][t])

summary = {}
for v in variants:
    s = summary[v] = {}
    s["tput1_gbit"] = med(v, "tput1", "gbit_per_sec")
    s["tput4_gbit"] = med(v, "tput4", "gbit_per_sec")
    for k in ("p50_us", "p90_us", "p99_us", "mean_us"):
        s["lat_" + k] = med(v, "latency", k)
        s["latpoll_" + k] = med(v, "latency-poll", k)
    s["connrate_per_s"] = med(v, "connrate", "conns_per_sec")
    s["connrate_p50_us"] = med(v, "connrate", "p50_us")
    if "proxy_cpu_ns" in runs[v]["latency"][0]:
        cpu = lambda t, f: statistics.median(f(r) for r in runs[v][t])
        s["proxy_core_tput1"] = cpu("tput1", lambda r: r["proxy_cpu_ns"] / 1e9 / r["elapsed_s"])
        s["proxy_core_tput4"] = cpu("tput4", lambda r: r["proxy_cpu_ns"] / 1e9 / r["elapsed_s"])
        s["proxy_cpu_ms_per_gb"] = cpu("tput1", lambda r: r["proxy_cpu_ns"] / 1e6 / (r["bytes"] / 1e9))
        s["proxy_cpu_us_per_rtt"] = cpu("latency", lambda r: r["proxy_cpu_ns"] / 1e3 / (r["count"] + r["warmup"]))
        s["proxy_cpu_us_per_conn"] = cpu("connrate", lambda r: r["proxy_cpu_ns"] / 1e3 / r["connections"])
    if v != "direct" and "direct" in variants:
        d = summary["direct"]
        s["vs_direct"] = {
            "tput1_ratio": s["tput1_gbit"] / d["tput1_gbit"],
            "tput4_ratio": s["tput4_gbit"] / d["tput4_gbit"],
            "added_p50_us": s["lat_p50_us"] - d["lat_p50_us"],
            "added_p99_us": s["lat_p99_us"] - d["lat_p99_us"],
            "added_poll_p50_us": s["latpoll_p50_us"] - d["latpoll_p50_us"],
            "added_poll_p99_us": s["latpoll_p99_us"] - d["latpoll_p99_us"],
            "connrate_ratio": s["connrate_per_s"] / d["connrate_per_s"],
        }

meta = {
    "nproc": os.cpu_count(),
    "kernel": platform.release(),
    "cpu": cpu_model(),
    "bridle_commit": os.environ["BENCH_COMMIT"]
        + ("+dirty" if os.environ["BENCH_DIRTY"] != "0" else ""),
    "haproxy": os.environ["BENCH_HAPROXY"],
    "haproxy_threads": int(os.environ["BENCH_HAP_THREADS"] or 0),
    "reps": int(os.environ["BENCH_REPS"]),
    "throughput_seconds": float(os.environ["BENCH_TPUT_S"]),
    "connrate_seconds": float(os.environ["BENCH_CR_S"]),
    "latency_count": int(os.environ["BENCH_LAT_N"]),
    "measure_seconds": int(os.environ["BENCH_ELAPSED"]),
    "loadavg_before": os.environ["BENCH_LOAD0"],
    "loadavg_after": os.environ["BENCH_LOAD1"],
    "variants": {
        "direct": "client in pod netns, not enrolled",
        "bridle": "bridle, default config (no relay or buffer_size key)",
        "haproxy": "haproxy TCP mode in pod netns on 127.0.0.1",
        "bridle-1w": "bridle, one worker thread",
        "bridle-256k": "bridle, buffer_size 262144",
        "bridle-copy": "bridle, relay copy",
        "bridle-splice": "bridle, relay splice",
    },
}
out = os.environ["BENCH_OUT"]
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"meta": meta, "summary": summary, "runs": raw}, f, indent=1)

def row(name, fmt, key, rel=None):
    cells = []
    for v in variants:
        x = summary[v].get(key)
        if x is None:
            cells.append("-")
            continue
        c = fmt.format(x)
        if rel and v != "direct" and "direct" in variants:
            c += " " + rel(x, summary["direct"][key])
        cells.append(c)
    return "| " + name + " | " + " | ".join(cells) + " |"

pct = lambda x, d: "({:.0f}%)".format(100 * x / d)
add = lambda x, d: "({:+.1f})".format(x - d)
lines = [
    "| median of {} | ".format(meta["reps"]) + " | ".join(variants) + " |",
    "|---|" + "---|" * len(variants),
    row("throughput, 1 conn (Gbit/s)", "{:.2f}", "tput1_gbit", pct),
    row("throughput, 4 conns (Gbit/s)", "{:.2f}", "tput4_gbit", pct),
    row("latency p50 (µs)", "{:.1f}", "lat_p50_us", add),
    row("latency p90 (µs)", "{:.1f}", "lat_p90_us", add),
    row("latency p99 (µs)", "{:.1f}", "lat_p99_us", add),
    row("latency p50, CPUs kept out of halt (µs)", "{:.1f}", "latpoll_p50_us", add),
    row("latency p90, CPUs kept out of halt (µs)", "{:.1f}", "latpoll_p90_us", add),
    row("latency p99, CPUs kept out of halt (µs)", "{:.1f}", "latpoll_p99_us", add),
    row("connections/s", "{:.0f}", "connrate_per_s", pct),
    row("connect+RTT+close p50 (µs)", "{:.0f}", "connrate_p50_us", add),
    row("proxy CPU, 1-conn throughput (cores)", "{:.2f}", "proxy_core_tput1"),
    row("proxy CPU, 4-conn throughput (cores)", "{:.2f}", "proxy_core_tput4"),
    row("proxy CPU per GB relayed, 1 conn (ms)", "{:.0f}", "proxy_cpu_ms_per_gb"),
    row("proxy CPU per 64 B round trip (µs)", "{:.1f}", "proxy_cpu_us_per_rtt"),
    row("proxy CPU per connection (µs)", "{:.1f}", "proxy_cpu_us_per_conn"),
]
table = "\n".join(lines)

verdict = []
if "bridle" in variants and "direct" in variants:
    vd = summary["bridle"]["vs_direct"]
    worst = min(vd["tput1_ratio"], vd["tput4_ratio"])
    verdict.append("target throughput >= 85% of direct: {} (1 conn {:.0f}%, 4 conns {:.0f}%)".format(
        "met" if worst >= 0.85 else "MISSED", 100 * vd["tput1_ratio"], 100 * vd["tput4_ratio"]))
    verdict.append("target added p50 latency <= 20 us: {} ({:+.1f} us, p99 {:+.1f} us; "
        "CPUs kept out of halt: {:+.1f} us, p99 {:+.1f} us)".format(
        "met" if max(vd["added_p50_us"], vd["added_poll_p50_us"]) <= 20 else "MISSED",
        vd["added_p50_us"], vd["added_p99_us"], vd["added_poll_p50_us"], vd["added_poll_p99_us"]))

spread = []
for v in variants:
    for t, key in (("tput1", "gbit_per_sec"), ("tput4", "gbit_per_sec"),
                   ("latency", "p50_us"), ("latency-poll", "p50_us"),
                   ("connrate", "conns_per_sec")):
        xs = [r[key] for r in runs[v][t]]
        spread.append("{}/{}: {}".format(v, t, ", ".join(
            "{:.4g}".format(x) for x in xs)))

text = "\n".join([
    "machine: {} CPUs, {}, kernel {}; bridle {}; haproxy {}".format(
        meta["nproc"], meta["cpu"], meta["kernel"], meta["bridle_commit"],
        "{} ({} threads)".format(meta["haproxy"], meta["haproxy_threads"])
        if meta["haproxy_threads"] else "not run"),
    "load average before/after (after includes the benchmark): {} / {}; measuring took {} s".format(
        meta["loadavg_before"], meta["loadavg_after"], meta["measure_seconds"]),
    "",
    table,
    "",
    "(x%) = ratio to direct; (+x) = added vs direct.",
    *verdict,
    # The load after the run includes the benchmark's own; only "before"
    # says whether other jobs were competing for the CPUs.
    *(["WARNING: the machine was busy before the run (1-min load average "
       "{} on {} CPUs): other jobs share the CPUs, the figures are noisier "
       "than usual.".format(meta["loadavg_before"].split()[0], meta["nproc"])]
      if float(meta["loadavg_before"].split()[0]) > 0.5 * meta["nproc"] else []),
    "",
    "per-round values (round 1, 2, 3...):",
    *("  " + s for s in spread),
])
with open(os.path.join(out, "table.txt"), "w") as f:
    f.write(text + "\n")
print(text)
print("\nraw results: " + os.path.join(out, "results.json"))
EOF
	log "measured in $((T1 - T0)) s"
fi

# ================================================================ PostgreSQL
#
# pgbench -S against a real server; see the top of this file. Everything
# lives in the pg pod ($PG_POD) and the services netns; the server runs as
# user postgres in the cgroup $CG_BASE/pgsrv (its CPU time: cpu.stat).

declare -A PG_PROXY_PID=()
PG_RAW=$WORK/pg-raw.jsonl
PG_NOPASSFILE=/nonexistent/bridle-bench.pgpass
CLK_TCK=$(getconf CLK_TCK)

# utime+stime of a process (all its threads), in clock ticks.
proc_ticks() { # PID
	sed 's/^.*) //' /proc/"$1"/stat 2>/dev/null | awk '{ print $12 + $13 }'
}

# CPU time of a cgroup's processes, µs.
cg_usec() { # CGROUP_DIR
	awk '$1 == "usage_usec" { print $2 }' "$1/cpu.stat"
}

# Time all tasks of the machine ran, µs: the root cpuacct cgroup (v1),
# where it is mounted; empty otherwise. (Exact; the tick-sampled /proc/stat
# misses most of a ping-pong's short bursts.) What is not ours in it shows
# other activity during a run.
CPUACCT=$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpuacct(,|$)/ { print $2; exit }' /proc/mounts)
busy_usec() {
	[ -n "$CPUACCT" ] && [ -r "$CPUACCT/cpuacct.usage" ] || return 0
	echo $(($(cat "$CPUACCT/cpuacct.usage") / 1000))
}

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

pg_super() { # psql as superuser over the unix socket (trust)
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK/pg/sock" -p $PG_PORT -U postgres "$@"
}

pg_server_start() {
	local d=$WORK/pg pw i
	# postgres must reach its directories under $WORK.
	chmod 755 "$WORK"
	mkdir -p "$d/data" "$d/sock"
	chown postgres:postgres "$d/data" "$d/sock"
	chmod 700 "$d/data"
	(cd "$WORK" && as_postgres "$PGBIN/initdb" -D "$d/data" -U postgres -A trust \
		-E UTF8 --locale=C --no-sync) >"$WORK/initdb.log" 2>&1 ||
		die "initdb failed: $(tail -n 5 "$WORK/initdb.log")"
	# Select-only benchmark: durability settings do not matter for the runs
	# and make pgbench -i fast. The data set (scale 10: ~160 MB with
	# indexes) fits in shared_buffers. No statement or connection logging.
	cat >>"$d/data/postgresql.conf" <<EOT
# bridle bench
listen_addresses = '$SRV_IP'
port = $PG_PORT
unix_socket_directories = '$d/sock'
password_encryption = 'scram-sha-256'
ssl = off
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
max_connections = 100
logging_collector = off
log_destination = 'stderr'
EOT
	cat >"$d/data/pg_hba.conf" <<'EOT'
# bridle bench: superuser over the unix socket; over TCP only app, with
# its SCRAM password.
local all  all                 trust
host  shop app    10.77.0.0/16 scram-sha-256
EOT
	mkdir "$CG_BASE/pgsrv" "$CG_BASE/pgclient"
	# The subshell execs its way to the postmaster: $! is its pid.
	(cd "$WORK" && exec sh -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$1" setpriv --reuid=postgres --regid=postgres --init-groups "$2/postgres" -D "$3"' \
		"$CG_BASE/pgsrv" "$NS_SVC" "$PGBIN" "$d/data") 2>>"$WORK/pg.log" &
	PGSRV_PID=$!
	for i in $(seq 300); do
		"$PGBIN/pg_isready" -q -h "$d/sock" -p $PG_PORT -U postgres -d postgres && break
		kill -0 "$PGSRV_PID" 2>/dev/null || die "postgres exited: $(tail -n 5 "$WORK/pg.log")"
		[ "$i" = 300 ] && die "postgres not ready after 15 s: $(tail -n 5 "$WORK/pg.log")"
		sleep 0.05
	done
	wait_listen "$NS_SVC" $PG_PORT || die "postgres does not listen on $SRV_IP:$PG_PORT"

	# The app's password: for bridle (password_file, root only, no
	# newline), for pgbench direct/via haproxy (a pgpass file, root only)
	# and for PgBouncer (its auth_file, user postgres only).
	pw=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 32)
	[ ${#pw} -ge 20 ] || die "could not make a password"
	(umask 077 && printf '%s' "$pw" >"$WORK/app.pw" &&
		printf '*:*:*:app:%s\n' "$pw" >"$WORK/pgpass")
	pg_super -d postgres >/dev/null <<EOT || die "create role/database"
CREATE ROLE app LOGIN PASSWORD '$pw';
CREATE DATABASE shop OWNER app;
EOT
	mkdir -p "$WORK/pgbouncer"
	(umask 077 && printf '"app" "%s"\n' "$pw" >"$WORK/pgbouncer/userlist.txt")
	chown postgres:postgres "$WORK/pgbouncer/userlist.txt"

	log "pgbench -i -s $PG_SCALE (as app, over the unix socket)"
	local t0
	t0=$(date +%s)
	"$PGBIN/pgbench" -i -q -s "$PG_SCALE" -h "$d/sock" -p $PG_PORT -U app shop \
		>"$WORK/pgbench-init.log" 2>&1 ||
		die "pgbench -i failed: $(tail -n 5 "$WORK/pgbench-init.log")"
	PG_INIT_S=$(($(date +%s) - t0))
	PG_INIT_DONE=$(grep -o 'done in .*' "$WORK/pgbench-init.log" | tail -n 1)
	[ "$("$PGBIN/psql" -X -tA -h "$d/sock" -p $PG_PORT -U app -d shop -c 'select count(*) from pgbench_accounts')" = $((PG_SCALE * 100000)) ] ||
		die "pgbench_accounts does not have $((PG_SCALE * 100000)) rows"
}

# The pod of a pg variant: bridle-rec has its own, all others share the
# pg pod.
pg_pod_of() { # VARIANT
	if [ "$1" = bridle-rec ]; then echo "$PG_REC_POD"; else echo "$PG_POD"; fi
}

pg_bridle_start() { # VARIANT: bridle (recording off) or bridle-rec (on)
	local v=$1 d=$WORK/pg-$1 i rec=""
	i=$(pg_pod_of "$v")
	mkdir -p "$d"
	if [ "$v" = bridle-rec ]; then
		# A fresh directory, root's, 0700; a key of 32 random bytes, 0600;
		# record_fsync_ms (1000), record_on_error, retention: defaults.
		mkdir -m 700 "$d/rec"
		(umask 077 && head -c 32 /dev/urandom >"$d/rec.key")
		chmod 600 "$d/rec.key"
		rec='"record_dir": "'$d/rec'", "record_key_file": "'$d/rec.key'",'
	fi
	# Default config; the policy has SQL rules (select on pgbench's tables
	# only) and masking: a column pgbench never reads, plus two detectors
	# that look at every value of every row returned.
	cat >"$d/config.json" <<EOT
{
  "listen_port": 15001,
  "control_socket": "$d/control.sock",
  "log_dir": "$d/log",
  "bpf_pin_dir": "/sys/fs/bpf/$ID-$i",
  $rec
  "workloads": [ { "name": "bench-pg", "cgroup": "$ID/pod$i",
                   "netns": "/run/netns/$ID-pod$i",
                   "labels": { "app": "bench" } } ],
  "decision_log": "$PG_DECISION_LOG",
  "policy": {
    "default": "deny",
    "targets": [ { "name": "shop-db", "address": "$SRV_IP", "port": $PG_PORT,
                   "protocol": "postgres", "tls": "disable",
                   "credentials": { "user": "app",
                                    "password_file": "$WORK/app.pw" } } ],
    "rules": [
      { "name": "bench reads pgbench tables",
        "when": { "workload": { "labels": { "app": "bench" } }, "target": "shop-db" },
        "action": "allow",
        "sql": { "commands": ["select"], "tables": ["public.pgbench_*"] },
        "mask": { "columns": ["public.pgbench_accounts.filler"],
                  "detectors": ["email", "credit_card"],
                  "style": "redact" } }
    ]
  }
}
EOT
	"$BRIDLE" policy check "$d/config.json" >"$d/policy-check.txt" 2>&1 ||
		die "bridle policy check: $(cat "$d/policy-check.txt")"
	launch_bridle "pg-$v" "$i" "$d"
	PG_PROXY_PID[$v]=${PROXY_PID[pg-$v]}
	if [ "$v" = bridle-rec ]; then
		[ "$(pg_rec_status | cut -d' ' -f1)" = 1 ] ||
			die "bridle-rec: recording is not enabled (bridle status)"
	fi
}

# The recording counters of bridle-rec (bridle status) and the bytes of
# its recording directory: "ENABLED SESSIONS CLOSED RECORDS FAILURES
# UNRECORDED REFUSED OPEN_FILES DIR_BYTES FILES".
pg_rec_status() {
	"$BRIDLE" status --json --socket "${SOCK_OF[pg-bridle-rec]}" | python3 -c '
import json, os, sys
r = json.load(sys.stdin).get("recording") or {}
d = sys.argv[1]
files = [e for e in os.scandir(d) if e.is_file()] if os.path.isdir(d) else []
print(int(bool(r.get("enabled"))), r.get("sessions", 0), r.get("closed", 0),
      r.get("records_closed", 0), r.get("write_failures", 0),
      r.get("unrecorded_sessions", 0), r.get("refused_requests", 0),
      r.get("open_files", 0), sum(e.stat().st_size for e in files),
      sum(1 for e in files if e.name.endswith(".brec")))' \
		"$WORK/pg-bridle-rec/rec"
}

# Wait (up to 10 s) until bridle-rec has closed the recording of every
# session it opened; print pg_rec_status.
pg_rec_settled() {
	local i st
	for i in $(seq 100); do
		st=$(pg_rec_status)
		set -- $st
		[ "$2" = "$3" ] && break
		sleep 0.1
	done
	echo "$st"
}

pg_pgbouncer_start() {
	local d=$WORK/pgbouncer
	cat >"$d/pgbouncer.ini" <<EOT
; PgBouncer defaults except: session pooling (the default, spelled out),
; listen on 127.0.0.1 only (no unix socket), SCRAM for clients, a pool as
; large as the biggest client count.
[databases]
shop = host=$SRV_IP port=$PG_PORT dbname=shop

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $d/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
EOT
	chmod 644 "$d/pgbouncer.ini"
	ip netns exec "$ID-pod$PG_POD" setpriv --reuid=postgres --regid=postgres --init-groups \
		pgbouncer "$d/pgbouncer.ini" >"$d/pgbouncer.log" 2>&1 &
	PIDS+=($!)
	PG_PROXY_PID[pgbouncer]=$!
	wait_listen "$ID-pod$PG_POD" $PGB_PORT || die "pgbouncer did not start: $(cat "$d/pgbouncer.log")"
}

pg_haproxy_start() {
	write_haproxy_cfg "$WORK/haproxy-pg.cfg" $PG_HAP_PORT "$SRV_IP:$PG_PORT"
	ip netns exec "$ID-pod$PG_POD" haproxy -db -f "$WORK/haproxy-pg.cfg" \
		>"$WORK/haproxy-pg.log" 2>&1 &
	PIDS+=($!)
	PG_PROXY_PID[haproxy]=$!
	wait_listen "$ID-pod$PG_POD" $PG_HAP_PORT || die "haproxy (pg) did not start: $(cat "$WORK/haproxy-pg.log")"
}

# accepted/refused of the bridle instance of a bridle variant; for any
# other variant, the sum over every pg bridle instance (which must not
# move): "A R".
pg_counts() { # VARIANT
	local k a=0 r=0 x
	case $1 in
	bridle*)
		if [ -n "${SOCK_OF[pg-$1]:-}" ]; then bridle_counts "pg-$1"; else echo "0 0"; fi
		;;
	*)
		for k in pg-bridle pg-bridle-rec; do
			[ -n "${SOCK_OF[$k]:-}" ] || continue
			x=$(bridle_counts "$k")
			a=$((a + ${x% *})) r=$((r + ${x#* }))
		done
		echo "$a $r"
		;;
	esac
}

PG_FAILED=0
PG_REC_FAILED=""
# pg_run VARIANT MODE CLIENTS LABEL [SECONDS]: one pgbench -S run; appends a JSON line
# to $PG_RAW (unless LABEL starts with "warmup"). A failed run is recorded
# (its output and bridle's new log lines kept in $OUT/pg-failures), not
# retried.
pg_run() {
	local v=$1 m=$2 c=$3 label=$4 secs=${5:-$PG_SECONDS} j host=$SRV_IP port=$PG_PORT rc=0 passfile
	local pp=${PG_PROXY_PID[$v]:-} tk0="" tk1="" ns0=0 ns1=0 s0 s1 b0="0 0" b1="0 0" l0=0
	local ccg k0 k1 u0 u1 rec0="" rec1="" pod
	local o=$WORK/pgbench/${label//\//_}.txt blog=$WORK/pg-bridle/bridle.log
	[[ $v == bridle* ]] && blog=$WORK/pg-$v/bridle.log
	local -a pre
	mkdir -p "$WORK/pgbench"
	j=$(nproc)
	[ "$c" -lt "$j" ] && j=$c
	# In the pod's netns but not in an enrolled cgroup (a cgroup of its
	# own, for its CPU time), with the password (pgpass file)...
	ccg=$CG_BASE/pgclient
	pre=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$ccg" ip netns exec "$ID-pod$PG_POD")
	passfile=$WORK/pgpass
	case $v in
	haproxy) host=127.0.0.1 port=$PG_HAP_PORT ;;
	pgbouncer) host=127.0.0.1 port=$PGB_PORT ;;
	bridle | bridle-rec)
		# ...or in the enrolled cgroup, with no password anywhere.
		pod=$(pg_pod_of "$v")
		ccg=$CG_BASE/pod$pod
		pre=("$PODEXEC" "$ccg" "$ID-pod$pod")
		passfile=$PG_NOPASSFILE
		;;
	esac
	b0=$(pg_counts "$v")
	[ "$v" = bridle-rec ] && rec0=$(pg_rec_settled)
	[ -f "$blog" ] && l0=$(wc -l <"$blog")
	if [ -n "$pp" ]; then
		tk0=$(proc_ticks "$pp")
		ns0=$(cpu_ns "$pp")
	fi
	s0=$(cg_usec "$CG_BASE/pgsrv")
	k0=$(cg_usec "$ccg")
	u0=$(busy_usec)
	timeout $((${secs%.*} + 60)) "${pre[@]}" env -u PGPASSWORD PGPASSFILE="$passfile" \
		PGSSLMODE=disable PGCONNECT_TIMEOUT=5 \
		setsid -w "$PGBIN/pgbench" -n -S -M "$m" -c "$c" -j "$j" -T "$secs" \
		-h "$host" -p "$port" -U app shop </dev/null >"$o" 2>&1 || rc=$?
	u1=$(busy_usec)
	k1=$(cg_usec "$ccg")
	s1=$(cg_usec "$CG_BASE/pgsrv")
	if [ -n "$pp" ]; then
		tk1=$(proc_ticks "$pp")
		ns1=$(cpu_ns "$pp")
	fi
	b1=$(pg_counts "$v")
	# The recordings of this run's sessions, once all are closed (after
	# the CPU times: closing them is not counted, as for bridle).
	[ "$v" = bridle-rec ] && rec1=$(pg_rec_settled)
	[ -f "$blog" ] && tail -n +$((l0 + 1)) "$blog" >"$o.bridle-log"
	python3 - "$o" "$v" "$m" "$c" "$label" "$rc" "${tk0:-}" "${tk1:-}" "$CLK_TCK" \
		"$ns0" "$ns1" "$s0" "$s1" $b0 $b1 "$j" "$k0" "$k1" "$u0" "$u1" "$PG_SCALE" \
		"$rec0" "$rec1" >>"$PG_RAW.tmp" <<'PY'
import json, re, sys
(out, v, m, c, label, rc, tk0, tk1, hz, ns0, ns1, s0, s1,
 a0, r0, a1, r1, j, k0, k1, u0, u1, scale, rec0, rec1) = sys.argv[1:]
text = open(out, errors="replace").read()
def num(pat, f=float):
    x = re.search(pat, text, re.M)
    return f(x.group(1)) if x else None
r = {"label": label, "variant": v, "mode": m, "clients": int(c), "threads": int(j),
     "rc": int(rc),
     "tps": num(r"^tps = ([\d.]+) \(without initial connection time\)"),
     "latency_avg_ms": num(r"^latency average = ([\d.]+) ms"),
     "latency_stddev_ms": num(r"^latency stddev = ([\d.]+) ms"),
     "initial_connection_ms": num(r"^initial connection time = ([\d.]+) ms"),
     "transactions": num(r"^number of transactions actually processed: (\d+)", int),
     "failed": num(r"^number of failed transactions: (\d+)", int),
     "aborted": "Run was aborted" in text,
     "scale": num(r"^scaling factor: (\d+)", int),
     "server_cpu_us": int(s1) - int(s0),
     "client_cpu_us": int(k1) - int(k0),
     "machine_busy_us": int(u1) - int(u0) if u0 and u1 else None,
     "bridle_accepted": int(a1) - int(a0), "bridle_refused": int(r1) - int(r0)}
if tk0 and tk1:
    r["proxy_cpu_ticks"] = int(tk1) - int(tk0)
    r["proxy_cpu_s"] = r["proxy_cpu_ticks"] / int(hz)
    r["proxy_schedstat_s"] = (int(ns1) - int(ns0)) / 1e9
# CPU time of everything else on the machine (other jobs; also interrupt
# time and kernel threads): a busy neighbour shows up here.
if r["machine_busy_us"] is not None:
    r["other_cpu_s"] = (r["machine_busy_us"] - r["server_cpu_us"] - r["client_cpu_us"]) / 1e6 \
        - r.get("proxy_cpu_s", 0)
n = r["transactions"]
if n:
    r["server_cpu_us_per_query"] = r["server_cpu_us"] / n
    if "proxy_cpu_s" in r:
        r["proxy_cpu_us_per_query"] = r["proxy_cpu_s"] * 1e6 / n
try:
    blog = open(out + ".bridle-log", errors="replace").read().splitlines()
except OSError:
    blog = []
if v.startswith("bridle"):
    r["bridle_log_lines"] = len(blog)
    r["bridle_log_warn_error"] = [l for l in blog
        if '"level":"warn"' in l.replace(" ", "") or '"level":"error"' in l.replace(" ", "")]
problems = []
if r["rc"] != 0:
    problems.append("pgbench exit status %d" % r["rc"])
if r["tps"] is None:
    problems.append("no tps line")
if r["scale"] is not None and r["scale"] != int(scale):
    problems.append("scaling factor %d, not %s" % (r["scale"], scale))
if r["failed"]:
    problems.append("%d failed transactions" % r["failed"])
if r["aborted"]:
    problems.append("run aborted")
if rec0 and rec1:
    keys = ("enabled", "sessions", "closed", "records", "failures", "unrecorded",
            "refused", "open_files", "dir_bytes", "files")
    x0 = dict(zip(keys, map(int, rec0.split())))
    x1 = dict(zip(keys, map(int, rec1.split())))
    rec = {k: x1[k] - x0[k] for k in keys if k not in ("enabled", "open_files")}
    rec["not_closed"] = x1["sessions"] - x1["closed"]
    r["rec"] = rec
    if n:
        r["rec_bytes_per_query"] = rec["dir_bytes"] / n
        r["rec_records_per_query"] = rec["records"] / n
if v.startswith("bridle"):
    if r["bridle_accepted"] < int(c):
        problems.append("bridle accepted %d connections for %s clients" % (r["bridle_accepted"], c))
    if r["bridle_refused"]:
        problems.append("bridle refused %d connections" % r["bridle_refused"])
if v == "bridle-rec":
    rec = r.get("rec")
    if not rec:
        problems.append("no recording counters")
    else:
        if rec["sessions"] != r["bridle_accepted"]:
            problems.append("%d recordings opened for %d sessions" % (rec["sessions"], r["bridle_accepted"]))
        if rec["files"] != rec["sessions"]:
            problems.append("%d new recording files for %d sessions" % (rec["files"], rec["sessions"]))
        if rec["not_closed"]:
            problems.append("%d recordings still open 10 s after pgbench" % rec["not_closed"])
        for k in ("failures", "unrecorded", "refused"):
            if rec[k]:
                problems.append("recording %s: %d" % (k, rec[k]))
r["problems"] = problems
print(json.dumps(r))
PY
	local line
	line=$(tail -n 1 "$PG_RAW.tmp")
	if [[ $v != bridle* ]] && [ "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["bridle_accepted"])' "$line")" != 0 ]; then
		die "$label: connections went through bridle ($b0 -> $b1): the benchmark's setup is wrong"
	fi
	if [[ $line != *'"problems": []'* ]]; then
		PG_FAILED=$((PG_FAILED + 1))
		mkdir -p "$OUT/pg-failures"
		cp "$o" "$OUT/pg-failures/${label//\//_}.pgbench.txt"
		[ -f "$o.bridle-log" ] && cp "$o.bridle-log" "$OUT/pg-failures/${label//\//_}.bridle-log"
		log "$label: PROBLEM: $(python3 -c 'import json,sys; print("; ".join(json.loads(sys.argv[1])["problems"]))' "$line") (output: $OUT/pg-failures/${label//\//_}.pgbench.txt)"
		tail -n 5 "$o" | sed 's/^/bench:   | /' >&2
	fi
	if [[ $label != warmup* ]]; then
		printf '%s\n' "$line" >>"$PG_RAW"
	fi
}

pg_report() {
	local hap_threads=""
	[ -n "${PG_PROXY_PID[haproxy]:-}" ] && hap_threads=$(ls /proc/"${PG_PROXY_PID[haproxy]}"/task 2>/dev/null | wc -l)
	cp "$WORK/pg-bridle/bridle.log" "$OUT/pg-bridle.log" 2>/dev/null || true
	cp "$WORK/pg-bridle/log/sessions.jsonl" "$OUT/pg-sessions.jsonl" 2>/dev/null || true
	cp "$WORK/pg-bridle-rec/bridle.log" "$OUT/pg-bridle-rec.log" 2>/dev/null || true
	cp "$WORK/pg-bridle-rec/log/sessions.jsonl" "$OUT/pg-rec-sessions.jsonl" 2>/dev/null || true
	PGR_RAW=$PG_RAW PGR_OUT=$OUT PGR_VARIANTS="$PG_VARIANTS" PGR_MODES="$PG_MODES" \
	PGR_CLIENTS="$PG_CLIENTS" PGR_REPS=$PG_REPS PGR_SECONDS=$PG_SECONDS PGR_SCALE=$PG_SCALE \
	PGR_DECISION_LOG="$PG_DECISION_LOG" PGR_CMD="$BENCH_CMD" PGR_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" \
	PGR_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	PGR_DIRTY="$(git status --porcelain --untracked-files=no -- user bpf include 2>/dev/null | wc -l)" \
	PGR_BRIDLE_SHA="$BRIDLE_SHA" PGR_BRIDLE_MTIME="$BRIDLE_MTIME" PGR_BRIDLE_SRC="$BRIDLE_SRC" \
	PGR_PG="$("$PGBIN/postgres" --version | awk '{print $3}')" \
	PGR_PGB="$(pgbouncer --version | head -1 | awk '{print $2}')" \
	PGR_HAP="$(haproxy -v | head -1 | awk '{print $3}')" PGR_HAP_THREADS="$hap_threads" \
	PGR_LOAD0="$PG_LOAD0" PGR_LOAD1="$(cut -d' ' -f1-3 /proc/loadavg)" \
	PGR_MEASURE_S=$((PG_T1 - PG_T0)) PGR_TOTAL_S=$((PG_T1 - PG_TSTART)) PGR_INIT_S=$PG_INIT_S PGR_INIT_DONE="$PG_INIT_DONE" \
	PGR_SESSIONS="$WORK/pg-bridle/log/sessions.jsonl $WORK/pg-bridle-rec/log/sessions.jsonl" \
	PGR_BRIDLE_LOG="$WORK/pg-bridle/bridle.log $WORK/pg-bridle-rec/bridle.log" \
	PGR_REC_SUMMARY="$WORK/pg-rec-summary.json" PGR_REC_FAILED="$PG_REC_FAILED" \
	python3 - <<'PY'
import json, os, platform, statistics
E = os.environ
raw = [json.loads(l) for l in open(E["PGR_RAW"]) if l.strip()]
variants = E["PGR_VARIANTS"].split()
modes = E["PGR_MODES"].split()
clients = [int(c) for c in E["PGR_CLIENTS"].split()]
reps = int(E["PGR_REPS"])

def cpu_model():
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            return l.split(":", 1)[1].strip()
    return platform.processor() or "unknown"

runs = {}
for r in raw:
    runs.setdefault((r["mode"], r["clients"], r["variant"]), []).append(r)

def ok(r):
    return not r["problems"]

summary = {}
for m in modes:
    for c in clients:
        for v in variants:
            rs = runs.get((m, c, v), [])
            good = [r for r in rs if ok(r)]
            s = {"runs": len(rs), "ok_runs": len(good)}
            for k in ("tps", "latency_avg_ms", "proxy_cpu_us_per_query",
                      "server_cpu_us_per_query"):
                xs = [r[k] for r in good if r.get(k) is not None]
                s[k] = statistics.median(xs) if xs else None
            summary["%s/c%d/%s" % (m, c, v)] = s

# The session log: denied statements, and sessions.
denied = sessions = 0
for path in E["PGR_SESSIONS"].split():
    try:
        for l in open(path):
            try:
                j = json.loads(l)
            except ValueError:
                continue
            ev = j.get("event", "")
            if ev == "statement_denied":
                denied += 1
            sessions += 1
    except OSError:
        pass
warn_err = []
for path in E["PGR_BRIDLE_LOG"].split():
    try:
        for l in open(path, errors="replace"):
            t = l.replace(" ", "")
            if '"level":"warn"' in t or '"level":"error"' in t:
                warn_err.append(l.rstrip("\n"))
    except OSError:
        pass

commit = E["PGR_COMMIT"] + ("+dirty" if E["PGR_DIRTY"] != "0" else "")
meta = {
    "command": E["PGR_CMD"], "date": E["PGR_DATE"], "bridle_commit": commit,
    "bridle_binary_sha256_prefix": E["PGR_BRIDLE_SHA"],
    "bridle_binary_mtime": E["PGR_BRIDLE_MTIME"],
    "nproc": os.cpu_count(), "kernel": platform.release(), "cpu": cpu_model(),
    "postgres": E["PGR_PG"], "pgbouncer": E["PGR_PGB"], "haproxy": E["PGR_HAP"],
    "haproxy_threads": int(E["PGR_HAP_THREADS"] or 0),
    "reps": reps, "seconds": float(E["PGR_SECONDS"]), "scale": int(E["PGR_SCALE"]),
    "init_seconds": int(E["PGR_INIT_S"]), "init_pgbench": E["PGR_INIT_DONE"],
    "measure_seconds": int(E["PGR_MEASURE_S"]),
    "total_seconds": int(E["PGR_TOTAL_S"]),
    "loadavg_before": E["PGR_LOAD0"], "loadavg_after": E["PGR_LOAD1"],
    "failed_transactions": sum(r["failed"] or 0 for r in raw),
    "problem_runs": sum(1 for r in raw if r["problems"]),
    "bridle_statements_denied": denied, "bridle_session_log_lines": sessions,
    "bridle_log_warn_error": len(warn_err),
    "max_other_cpu_s": max((r["other_cpu_s"] for r in raw if r.get("other_cpu_s") is not None),
                           default=None),
}
# Recording on (bridle-rec) against off (bridle): medians, and the ratio
# of each round's pair (the two run one after the other).
rec_files = None
try:
    rec_files = json.load(open(E["PGR_REC_SUMMARY"]))
except (OSError, ValueError):
    pass
recording = {}
if "bridle-rec" in variants:
    pair = "bridle" in variants
    def rnd(r):
        return int(r["label"].rsplit("/", 1)[1])
    def med(xs):
        xs = [x for x in xs if x is not None]
        return statistics.median(xs) if xs else None
    for m in modes:
        for c in clients:
            on = summary["%s/c%d/bridle-rec" % (m, c)]
            off = summary["%s/c%d/bridle" % (m, c)] if pair else {}
            on_runs = [r for r in runs.get((m, c, "bridle-rec"), []) if ok(r)]
            off_by = {rnd(r): r for r in runs.get((m, c, "bridle"), []) if ok(r)}
            rr = [(r["tps"] / off_by[rnd(r)]["tps"]) for r in on_runs
                  if rnd(r) in off_by and off_by[rnd(r)]["tps"]]
            x = {"tps_off": off.get("tps"), "tps_on": on["tps"],
                 "ratio": on["tps"] / off["tps"] if on["tps"] and off.get("tps") else None,
                 "round_ratios": rr, "round_ratio_median": med(rr),
                 "proxy_us_off": off.get("proxy_cpu_us_per_query"),
                 "proxy_us_on": on["proxy_cpu_us_per_query"],
                 "latency_ms_off": off.get("latency_avg_ms"),
                 "latency_ms_on": on["latency_avg_ms"],
                 "bytes_per_query": med(r.get("rec_bytes_per_query") for r in on_runs),
                 "records_per_query": med(r.get("rec_records_per_query") for r in on_runs)}
            x["proxy_us_added"] = (x["proxy_us_on"] - x["proxy_us_off"]
                                   if x["proxy_us_on"] is not None and x["proxy_us_off"] is not None else None)
            x["latency_us_added"] = (1000 * (x["latency_ms_on"] - x["latency_ms_off"])
                                     if x["latency_ms_on"] is not None and x["latency_ms_off"] is not None else None)
            # What a query costs in throughput: 1/tps, µs (c clients share it).
            x["us_per_query_added"] = (1e6 / x["tps_on"] - 1e6 / x["tps_off"]
                                       if x["tps_on"] and x["tps_off"] else None)
            recording["%s/c%d" % (m, c)] = x
ratios = [x["ratio"] for x in recording.values() if x["ratio"] is not None]
meta["recording_target"] = "tps with recording >= 90% of without"
meta["recording_worst_ratio"] = min(ratios) if ratios else None
meta["recording_files"] = rec_files
meta["recording_verify_problems"] = E["PGR_REC_FAILED"]

out = E["PGR_OUT"]
with open(os.path.join(out, "pg-results.json"), "w") as f:
    json.dump({"meta": meta, "summary": summary, "recording": recording, "runs": raw},
              f, indent=1)

def cell(m, c, v, key, fmt, rel):
    s = summary["%s/c%d/%s" % (m, c, v)]
    x = s[key]
    if s["runs"] and s["ok_runs"] < s["runs"]:
        bad = "failed %d/%d" % (s["runs"] - s["ok_runs"], s["runs"])
        return bad if x is None else fmt.format(x) + " (" + bad + ")"
    if x is None:
        return "-"
    t = fmt.format(x)
    d = summary["%s/c%d/direct" % (m, c)].get(key) if "direct" in variants else None
    if rel and v != "direct" and d:
        t += " " + rel(x, d)
    return t

pct = lambda x, d: "({:.0f}%)".format(100 * x / d)
times = lambda x, d: "({:.2f}×)".format(x / d)
label = lambda m, c: "{}, {} client{}".format(m, c, "" if c == 1 else "s")
rows = ["| pgbench -S, median of {} × {:g} s | ".format(reps, meta["seconds"])
        + " | ".join(variants) + " |",
        "|---|" + "---|" * len(variants)]
for m in modes:
    for c in clients:
        for name, key, fmt, rel in (
                ("tps", "tps", "{:.0f}", pct),
                ("latency average (ms)", "latency_avg_ms", "{:.3f}", times),
                ("proxy CPU per query (µs)", "proxy_cpu_us_per_query", "{:.1f}", None),
                ("server CPU per query (µs)", "server_cpu_us_per_query", "{:.1f}", None)):
            rows.append("| {}: {} | ".format(label(m, c), name)
                        + " | ".join(cell(m, c, v, key, fmt, rel) for v in variants) + " |")
table = "\n".join(rows)

def fmtl(xs, f):
    return ", ".join("-" if x is None else f.format(x) for x in xs)

rec_md = []
if recording:
    f = lambda x, fmt: "-" if x is None else fmt.format(x)
    rec_md += [
        "Session recording: bridle with recording off (`bridle`) and on "
        "(`bridle-rec`), same policy and decision_log ({}), next to each "
        "other in every round.".format(E.get("PGR_DECISION_LOG", "all")),
        "",
        "| pgbench -S, median of {} × {:g} s | tps, off | tps, on | on ÷ off | on ÷ off, per round "
        "| proxy CPU per query, off → on (µs) | added proxy CPU per query (µs) "
        "| added latency (µs) | added 1/tps (µs) | recording bytes per query | records per query |".format(
            reps, meta["seconds"]),
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in modes:
        for c in clients:
            x = recording["%s/c%d" % (m, c)]
            rec_md.append("| {} | {} | {} | {} | {} | {} → {} | {} | {} | {} | {} | {} |".format(
                label(m, c), f(x["tps_off"], "{:.0f}"), f(x["tps_on"], "{:.0f}"),
                f(x["ratio"], "{:.3f}"), fmtl(x["round_ratios"], "{:.3f}") or "-",
                f(x["proxy_us_off"], "{:.1f}"), f(x["proxy_us_on"], "{:.1f}"),
                f(x["proxy_us_added"], "{:+.1f}"), f(x["latency_us_added"], "{:+.1f}"),
                f(x["us_per_query_added"], "{:+.1f}"),
                f(x["bytes_per_query"], "{:.0f}"), f(x["records_per_query"], "{:.2f}")))
    rec_md.append("")
    if ratios:
        missed = ["{} ({:.3f})".format(k, x["ratio"]) for k, x in recording.items()
                  if x["ratio"] is not None and x["ratio"] < 0.90]
        rec_md.append("Target (recording costs at most 10% of tps, on ÷ off ≥ 0.90): "
                      + ("met in all {} rows (worst {:.3f}).".format(len(ratios), min(ratios))
                         if not missed else "MISSED: " + ", ".join(missed) + "."))
    rf = rec_files
    if rf:
        rec_md.append("Recordings of the run (warm-up included): {} files, {} records in {} blocks, "
                      "{:.1f} MB ({} KiB on disk), {:.0f} bytes per record; bridle verify: {} "
                      "({:.1f} s).".format(
                          rf["files"], rf["records"], rf["blocks"], rf["dir_bytes"] / 1e6,
                          rf["du_kib"], rf["dir_bytes"] / rf["records"] if rf["records"] else 0,
                          "all OK, none torn, all ended" if not rf["problems"]
                          else "PROBLEMS: " + "; ".join(rf["problems"]), rf["verify_seconds"]))
    elif E["PGR_REC_FAILED"]:
        rec_md.append("Recordings: " + E["PGR_REC_FAILED"])
    rec_md += [
        "",
        "on ÷ off: ratio of the median tps; per round: each round's pair. Added "
        "proxy CPU: the difference of the medians of proxy CPU per query; added "
        "latency: of pgbench's latency average; added 1/tps: 1e6/tps(on) − "
        "1e6/tps(off), the machine time a query costs more. Recording bytes per "
        "query: growth of the recording directory over a run divided by its "
        "transactions; records per query: records bridle counted as written "
        "(status `records_closed`) likewise.",
        ""]

per_round = []
for m in modes:
    for c in clients:
        for v in variants:
            rs = runs.get((m, c, v), [])
            per_round.append("{}/c{}/{}: tps {}; lat {} ms; proxy {} µs/q; other CPU {} s; failed {}{}".format(
                m, c, v, fmtl([r["tps"] for r in rs], "{:.0f}"),
                fmtl([r["latency_avg_ms"] for r in rs], "{:.3f}"),
                fmtl([r.get("proxy_cpu_us_per_query") for r in rs], "{:.1f}"),
                fmtl([r.get("other_cpu_s") for r in rs], "{:.2f}"),
                fmtl([r["failed"] for r in rs], "{}"),
                "".join("; round {}: {}".format(i + 1, "; ".join(r["problems"]))
                        for i, r in enumerate(rs) if r["problems"])))

md = "\n".join([
    "Run of `{}` at commit {} ({} sha256 {}…, built {}), {}.".format(
        meta["command"], commit, E["PGR_BRIDLE_SRC"], meta["bridle_binary_sha256_prefix"],
        meta["bridle_binary_mtime"], meta["date"]),
    "Machine: {} CPUs ({}), kernel {}; PostgreSQL {}, PgBouncer {}, haproxy {} ({} threads).".format(
        meta["nproc"], meta["cpu"], meta["kernel"], meta["postgres"], meta["pgbouncer"],
        meta["haproxy"], meta["haproxy_threads"]),
    "pgbench -i -s {} took {} s ({}); measuring {} s; the whole pg part {} s. "
    "Load average before: {}.".format(meta["scale"], meta["init_seconds"], meta["init_pgbench"],
        meta["measure_seconds"], meta["total_seconds"], meta["loadavg_before"]),
    "",
    table,
    "",
    *rec_md,
    "(x%) = tps as a share of direct; (x×) = latency relative to direct. "
    "Proxy CPU per query: utime+stime of the proxy process (/proc/PID/stat, all "
    "threads) over the pgbench run, including its connection setup, divided by "
    "the transactions (one SELECT each). Server CPU per query: the PostgreSQL "
    "server's cgroup (postmaster and backends), same window. \"other CPU\" "
    "below: the machine's busy CPU time during the run minus server, client "
    "and proxy (interrupts, kernel threads, other jobs).",
    "",
    "Checks: failed transactions {}; runs with a problem {}; bridle log lines at "
    "warn/error {}; statements denied by bridle {}; largest \"other CPU\" of a run {}.".format(
        meta["failed_transactions"], meta["problem_runs"],
        meta["bridle_log_warn_error"], meta["bridle_statements_denied"],
        "n/a" if meta["max_other_cpu_s"] is None else "{:.2f} s".format(meta["max_other_cpu_s"])),
    "",
    "Per-round values (round 1, 2, 3…):",
    "",
    "```",
    *per_round,
    "```",
])
with open(os.path.join(out, "pg.md"), "w") as f:
    f.write(md + "\n")
print(md)
if warn_err:
    print("\nbridle log lines at warn/error (first 20 of {}):".format(len(warn_err)))
    for l in warn_err[:20]:
        print("  " + l)
if meta["loadavg_before"] and float(meta["loadavg_before"].split()[0]) > 0.5 * meta["nproc"]:
    print("WARNING: the machine was busy before the run (1-min load average {} on {} CPUs)".format(
        meta["loadavg_before"].split()[0], meta["nproc"]))
print("\nraw results: " + os.path.join(out, "pg-results.json")
      + "; BENCHMARKS.md section: " + os.path.join(out, "pg.md"))
PY
}

# After the runs: every recording of bridle-rec (warm-up included) must
# verify (ok, no torn tail, ended), one per session, with as many records
# as bridle counted. Writes $OUT/pg-rec-verify.json (bridle verify's
# output) and $WORK/pg-rec-summary.json (for the report); sets
# PG_REC_FAILED when something is wrong (the script then fails at the
# end, and keeps the work dir with the recordings and their key).
pg_rec_verify() {
	local d=$WORK/pg-bridle-rec st rc=0 t0 t1
	st=$(pg_rec_settled)
	t0=$(date +%s.%N)
	"$BRIDLE" verify --key-file "$d/rec.key" "$d/rec" --json \
		>"$OUT/pg-rec-verify.json" 2>"$WORK/pg-rec-verify.err" || rc=$?
	t1=$(date +%s.%N)
	PG_REC_FAILED=$(python3 - "$OUT/pg-rec-verify.json" "$rc" "$st" "$d/rec" \
		"$WORK/pg-rec-verify.err" "$t0" "$t1" "$WORK/pg-rec-summary.json" <<'PY'
import json, os, subprocess, sys
out, rc, st, d, errf, t0, t1, summ = sys.argv[1:]
keys = ("enabled", "sessions", "closed", "records", "failures", "unrecorded",
        "refused", "open_files", "dir_bytes", "files")
s = dict(zip(keys, map(int, st.split())))
problems = []
try:
    v = json.load(open(out))
except (OSError, ValueError) as e:
    v = []
    problems.append("bridle verify --json gave no JSON (%s)" % e)
err = open(errf, errors="replace").read().strip()
if int(rc):
    problems.append("bridle verify exit status %s%s" % (rc, (": " + err[:300]) if err else ""))
bad = [f for f in v if not f.get("ok")]
torn = [f for f in v if f.get("torn")]
open_ = [f for f in v if not f.get("ended")]
for f in bad[:5]:
    problems.append("%s: FAILED at record %s: %s" % (os.path.basename(f["file"]),
                                                  f.get("bad_record"), f.get("error")))
if len(bad) > 5:
    problems.append("... %d files FAILED in all" % len(bad))
if torn:
    problems.append("%d file(s) with a torn tail" % len(torn))
if open_:
    problems.append("%d file(s) not ended" % len(open_))
records = sum(f.get("records", 0) for f in v)
if len(v) != s["sessions"]:
    problems.append("%d recordings for %d recorded sessions" % (len(v), s["sessions"]))
if records != s["records"]:
    problems.append("%d records in the files, bridle counted %d" % (records, s["records"]))
for k in ("failures", "unrecorded", "refused"):
    if s[k]:
        problems.append("bridle status: recording %s %d" % (k, s[k]))
du = subprocess.run(["du", "-sk", d], capture_output=True, text=True).stdout.split()
json.dump({"files": len(v), "ok": len(v) - len(bad), "torn": len(torn),
           "not_ended": len(open_), "records": records,
           "blocks": sum(f.get("blocks", 0) for f in v),
           "dir_bytes": s["dir_bytes"], "du_kib": int(du[0]) if du else None,
           "sessions": s["sessions"], "bridle_records": s["records"],
           "verify_seconds": float(t1) - float(t0), "verify_exit": int(rc),
           "problems": problems}, open(summ, "w"), indent=1)
print("; ".join(problems))
PY
	) || PG_REC_FAILED="cannot check bridle verify's output"
	if [ -z "$PG_REC_FAILED" ]; then
		log "pg: recordings: all verify ($(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%d files, %d records, %.1f MB" % (j["files"], j["records"], j["dir_bytes"] / 1e6))' "$WORK/pg-rec-summary.json"))"
	fi
}

pg_part() {
	local rep m c v
	PG_TSTART=$(date +%s)
	PG_LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
	: >"$PG_RAW"
	: >"$PG_RAW.tmp"
	rm -rf "$OUT/pg-failures"
	log "pg: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') in $NS_SVC, pod $ID-pod$PG_POD"
	pg_server_start
	for v in $PG_VARIANTS; do
		case $v in
		bridle | bridle-rec) pg_bridle_start "$v" ;;
		pgbouncer) pg_pgbouncer_start ;;
		haproxy) pg_haproxy_start ;;
		esac
	done
	# Warm-up (not recorded): every path once, the pool of PgBouncer filled.
	for v in $PG_VARIANTS; do
		pg_run "$v" simple "${PG_CLIENTS##* }" "warmup/$v" 2
	done
	log "pg: variants: $PG_VARIANTS; $PG_REPS rounds of pgbench -S -T $PG_SECONDS, protocols $PG_MODES, clients $PG_CLIENTS"
	PG_T0=$(date +%s)
	for rep in $(seq 1 "$PG_REPS"); do
		for m in $PG_MODES; do
			for c in $PG_CLIENTS; do
				for v in $PG_VARIANTS; do
					log "pg round $rep/$PG_REPS: -M $m -c $c $v"
					pg_run "$v" "$m" "$c" "$m/c$c/$v/$rep"
				done
			done
		done
	done
	PG_T1=$(date +%s)
	[ -n "${SOCK_OF[pg-bridle-rec]:-}" ] && pg_rec_verify
	pg_report
	log "pg part: $((PG_T1 - PG_TSTART)) s in all, $((PG_T1 - PG_T0)) s measuring"
	if [ -n "$PG_REC_FAILED" ]; then
		log "pg: RECORDINGS DO NOT VERIFY: $PG_REC_FAILED"
		log "pg: the recordings and their key stay in $WORK/pg-bridle-rec/ (the work dir is kept)"
	fi
	if [ "$PG_FAILED" != 0 ]; then
		die "pg: $PG_FAILED pgbench run(s) had problems (see above and $OUT/pg-failures)"
	fi
	[ -z "$PG_REC_FAILED" ] || die "pg: bridle-rec's recordings do not verify (see above and $OUT/pg-rec-verify.json)"
}

if want pg; then
	pg_part
fi
