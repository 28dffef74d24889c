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
#   cgroup <cgroup2>/bridle-bench-<pid>/pod<i> (and pgsrv: the PostgreSQL
#                       server's processes)
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
# Which parts run: first argument or BENCH_PARTS: "all" (default: tcp,
# then pg), "tcp", "pg". E.g. `scripts/bench.sh pg` or
# `BENCH_PARTS=pg make bench`.
# pg knobs: BENCH_PG_SECONDS (5), BENCH_PG_REPS (3), BENCH_PG_SCALE (10),
# BENCH_PG_VARIANTS ("direct bridle pgbouncer haproxy"),
# BENCH_PG_MODES ("simple extended"), BENCH_PG_CLIENTS ("1 16").
# With the defaults the pg part takes about 5 minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

REPS=${BENCH_REPS:-3}
TPUT_S=${BENCH_SECONDS:-2.5}
CR_S=${BENCH_CONNRATE_SECONDS:-2}
LAT_N=${BENCH_LAT_COUNT:-20000}
VARIANTS=${BENCH_VARIANTS:-direct bridle haproxy bridle-1w bridle-copy}
OUT=${BENCH_OUT:-$ROOT/build/bench}
BRIDLE=$ROOT/build/bridle
TB=$ROOT/build/tools/tcpbench
PODEXEC=$ROOT/scripts/podexec
SRV_IP=10.77.0.1
SRV_PORT=5201
HAP_PORT=15201

ID=bridle-bench-$$
NS_SVC=$ID-svc
WORK=""
CG_ROOT=""
CG_BASE=""
PIDS=()            # long-running processes we started
BRIDLE_PIDS=()     # subset: bridle instances (stopped first, with SIGTERM)
PIN_DIRS=()
PODS=()            # netns names of the pods we created

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

for t in "$BRIDLE" "$TB"; do
	[ -x "$t" ] || die "$t is missing: run 'make all' (or 'make bench')"
done
[ "$(id -u)" = 0 ] || die "must run as root (namespaces, cgroups, BPF)"
for c in ip python3 haproxy ss; do
	command -v "$c" >/dev/null || die "$c not found: run scripts/install-deps.sh"
done
CG_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CG_ROOT" ] || die "no cgroup2 file system in /proc/mounts"
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || die "bpffs is not mounted on /sys/fs/bpf"

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
		rmdir "$CG_BASE"/pod* 2>/dev/null
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
RAW=$WORK/raw.jsonl
: >"$RAW"

# ---------------------------------------------------------------- topology
#
# Variant → pod index: direct, bridle and haproxy share pod 0 (so the only
# difference between them is the hop); each extra bridle config gets a pod
# of its own, because one bridle instance has one buffer_size / relay mode.
declare -A POD_OF=([direct]=0 [bridle]=0 [haproxy]=0)
declare -A BRIDLE_EXTRA=([bridle]='' \
	[bridle-1w]='"workers": 1,' \
	[bridle-256k]='"buffer_size": 262144,' \
	[bridle-copy]='"relay": "copy",' \
	[bridle-splice]='"relay": "splice",')
NPODS=1
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

ip netns exec "$NS_SVC" "$TB" server --port $SRV_PORT --bind $SRV_IP \
	2>"$WORK/server.log" &
PIDS+=($!)

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
wait_listen "$NS_SVC" $SRV_PORT || die "tcpbench server did not start: $(cat "$WORK/server.log")"

# ---------------------------------------------------------------- bridle
declare -A SOCK_OF=()
declare -A PROXY_PID=()

# CPU time (ns) a process and all its threads have spent running.
cpu_ns() { # PID
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

start_bridle() { # VARIANT
	local v=$1 i=${POD_OF[$1]} d=$WORK/$1 pid n
	mkdir -p "$d"
	cat >"$d/config.json" <<EOF
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
    "rules": [ { "name": "bench", "target": "srv", "action": "allow" } ]
  }
}
EOF
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

# accepted/refused counters of one bridle instance: "A R"
bridle_counts() { # VARIANT
	"$BRIDLE" status --json --socket "${SOCK_OF[$1]}" | python3 -c '
import json, sys
w = json.load(sys.stdin)["workloads"][0]
print(w["accepted"], w["refused"])'
}

# ---------------------------------------------------------------- haproxy
start_haproxy() {
	cat >"$WORK/haproxy.cfg" <<EOF
# Debian haproxy defaults (threads: one per CPU), TCP mode, no logging.
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend bench
    bind 127.0.0.1:$HAP_PORT
    default_backend srv
backend srv
    server s1 $SRV_IP:$SRV_PORT
EOF
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
