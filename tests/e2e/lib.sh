# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Shared helpers of bridle's end-to-end tests. A test file sources this,
# defines functions named t_<case>, and ends with `e2e_main "$@"`.
#
# Every case runs in its own bash process (`bash test_x.sh --case NAME`)
# with its own names: network namespaces, cgroups, bpffs pin directory and
# work directory all carry the case name and the process id. Everything a
# case creates is registered here and removed by the EXIT trap, after a
# failure too: processes (each case's processes live in the case's own
# cgroups, so cgroup.kill finds their children too), bridle (SIGTERM, then
# SIGKILL), pinned links (`bridle unenroll`), the pin directory, cgroups and
# network namespaces.
#
# Traffic only ever goes to loopback or to 10.77.0.0/16 / fd77::/16
# addresses of namespaces the case created; nothing is added to the host's
# own network namespace.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_ROOT=$(cd "$E2E_DIR/../.." && pwd)
BRIDLE=${BRIDLE:-$E2E_ROOT/build/bridle}
TOOLS=$E2E_ROOT/build/tools
PODEXEC=$E2E_ROOT/scripts/podexec
PY=/usr/bin/python3
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
: "${E2E_OUT:=$E2E_ROOT/build/e2e}"
# Timeout of one case, seconds.
: "${E2E_CASE_TIMEOUT:=60}"

# ---------------------------------------------------------------- reporting

# fail REASON...: end the current case with a failure.
fail() {
	printf '%s\n' "$*" >"$E2E_OUT/$CASE.reason"
	echo "FAIL: $*" >&2
	exit 1
}

# note TEXT: a line in the case's own output (kept in $E2E_OUT/CASE.out).
note() { echo "--- $*" >&2; }

assert_eq() { # ACTUAL EXPECTED WHAT
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

assert_match() { # TEXT REGEX WHAT
	[[ $1 =~ $2 ]] || fail "$3: '$(head -c 300 <<<"$1" | tr '\n' '|')' does not match /$2/"
}

assert_no_match() { # TEXT REGEX WHAT
	[[ $1 =~ $2 ]] && fail "$3: '$(head -c 300 <<<"$1" | tr '\n' '|')' matches /$2/"
	return 0
}

# kv KEY TEXT: value of a key=value line of peer's output.
kv() { sed -n "s/^$1=//p" <<<"$2" | head -n1; }

# wait_until TIMEOUT_S CMD...: poll CMD every 50 ms until it succeeds.
wait_until() {
	local t=$1 end
	shift
	end=$(($(date +%s%N) + t * 1000000000))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

lines() { # FILE: number of lines (0 if missing)
	[ -f "$1" ] && wc -l <"$1" | tr -d ' ' || echo 0
}

# ------------------------------------------------------------ case state

CASE=
ID=
W=
PIN=
CG=
NETNSES=()
ENROLLED=()
BRIDLE_PID=
BRIDLE_LOG=
WORKLOADS_JSON=
declare -A BG=() # pid -> description

case_setup() { # NAME
	CASE=$1
	ID="$1-$$"
	W=/tmp/be2e-$ID
	PIN=/sys/fs/bpf/be2e-$ID
	CG=$CGROOT/be2e-$ID
	BRIDLE_LOG=$W/bridle.log
	mkdir -p "$E2E_OUT"
	rm -f "$E2E_OUT/$CASE.reason" "$E2E_OUT/$CASE.bridle.log"
	trap case_cleanup EXIT
	trap 'fail "interrupted (timeout?)"' TERM INT
	[ -n "$CGROOT" ] || fail "no cgroup2 file system mounted"
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || fail "bpffs is not mounted on /sys/fs/bpf (run scripts/install-deps.sh)"
	[ -x "$BRIDLE" ] || fail "$BRIDLE missing (make)"
	mkdir -p "$W" "$CG" "$CG/svc" "$CG/outside" "$CG/bridle"
	WORKLOADS_JSON="[]"
}

# Kill every process of cgroup DIR and its children and wait for them.
cg_kill() {
	local d=$1 i
	[ -d "$d" ] || return 0
	[ -f "$d/cgroup.kill" ] && echo 1 >"$d/cgroup.kill" 2>/dev/null
	for i in $(seq 50); do
		[ -z "$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && return 0
		sleep 0.05
	done
}

case_cleanup() {
	local rc=$? p c n
	set +e
	trap - TERM INT
	# Our background processes first (they may hold sessions open).
	for p in "${!BG[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	if [ -n "$BRIDLE_PID" ] && kill -0 "$BRIDLE_PID" 2>/dev/null; then
		kill -TERM "$BRIDLE_PID" 2>/dev/null
		for n in $(seq 60); do
			kill -0 "$BRIDLE_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$BRIDLE_PID" 2>/dev/null
	fi
	cg_kill "$CG"
	for p in "${!BG[@]}"; do
		for n in $(seq 40); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$p" 2>/dev/null
	done
	for c in "${ENROLLED[@]}"; do
		[ -d "$c" ] && "$BRIDLE" unenroll --cgroup "$c" --pin-dir "$PIN" 2>&1 |
			sed 's/^/cleanup: /' >&2
	done
	[ -n "$PIN" ] && rm -rf "$PIN"
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
		[ -d "$CG" ] && echo "cleanup: cannot remove $CG" >&2
	fi
	for n in "${NETNSES[@]}"; do
		ip netns del "$n" 2>/dev/null
		# per-netns /etc files (resolv.conf) some cases write
		[ -d "/etc/netns/$n" ] && rm -rf "/etc/netns/$n"
	done
	rmdir /etc/netns 2>/dev/null
	# Every session every case recorded must verify (a torn tail is
	# allowed: some cases kill bridle).
	if [ -d "$W/rec" ] && [ -f "$W/rec.key" ] &&
		[ -n "$(ls -A "$W/rec" 2>/dev/null)" ]; then
		if ! "$BRIDLE" verify --key-file "$W/rec.key" "$W/rec" >"$W/verify.out" 2>&1; then
			echo "FAIL: a recording of this case does not verify:" >&2
			cat "$W/verify.out" >&2
			mkdir -p "$E2E_OUT/$CASE.rec" && cp -r "$W/rec/." "$E2E_OUT/$CASE.rec/"
			[ "$rc" = 0 ] && rc=1
		fi
	fi
	if [ -f "$BRIDLE_LOG" ]; then
		cp "$BRIDLE_LOG" "$E2E_OUT/$CASE.bridle.log"
	fi
	if [ -n "$W" ] && [ -d "$W" ]; then
		[ -f "$W/log/sessions.jsonl" ] && cp "$W/log/sessions.jsonl" "$E2E_OUT/$CASE.sessions.jsonl"
		rm -rf "$W"
	fi
	exit "$rc"
}

# ------------------------------------------------------------- topology

# netns_add NAME: create a network namespace (removed on exit), lo up.
netns_add() {
	ip netns add "$1" || fail "ip netns add $1"
	NETNSES+=("$1")
	ip -n "$1" link set lo up
}

# link_ns NS_A NS_B IDX V4A V4B [V6A V6B]: a veth pair between two
# namespaces, addresses with their prefix (10.77.0.1/24, fd77::1/64).
link_ns() {
	local a=$1 b=$2 idx=$3 va="v$$${3}a" vb="v$$${3}b"
	ip link add "$va" type veth peer name "$vb" || fail "veth $va"
	ip link set "$va" netns "$a" && ip link set "$vb" netns "$b" || fail "veth move"
	ip -n "$a" addr add "$4" dev "$va" || fail "addr $4"
	ip -n "$b" addr add "$5" dev "$vb" || fail "addr $5"
	if [ -n "${6:-}" ]; then
		ip -n "$a" addr add "$6" dev "$va" nodad || fail "addr $6"
		ip -n "$b" addr add "$7" dev "$vb" nodad || fail "addr $7"
	fi
	ip -n "$a" link set "$va" up && ip -n "$b" link set "$vb" up || fail "link up"
}

# topo_basic: SVC (10.77.0.1, fd77::1) <-> POD (10.77.0.2, fd77::2) and a
# pod cgroup $CG/agent. Sets SVC, POD, AGENT_CG.
topo_basic() {
	SVC=be2e-$ID-svc
	POD=be2e-$ID-pod
	AGENT_CG=$CG/agent
	netns_add "$SVC"
	netns_add "$POD"
	link_ns "$SVC" "$POD" 0 10.77.0.1/24 10.77.0.2/24 fd77::1/64 fd77::2/64
	mkdir -p "$AGENT_CG"
}

# ------------------------------------------------------------- processes

# in_cg CGDIR NETNS CMD...: run CMD (foreground) in that cgroup and netns
# (NETNS "" for the host's). This is podexec for cgroups that are not pods.
# The shell execs, so `in_cg ... &` run directly (not from a function in
# the background) leaves $! as CMD's own pid.
IN_CG_SH='echo $$ >"$0/cgroup.procs" || exit 125; ns=$1; shift; [ -z "$ns" ] && exec "$@"; exec ip netns exec "$ns" "$@"'
in_cg() {
	sh -c "$IN_CG_SH" "$@"
}

# pod NETNS CMD...: run CMD inside the pod (enrolled cgroup $AGENT_CG).
pod() { "$PODEXEC" "$AGENT_CG" "$@"; }
# pod_in CGDIR NETNS CMD...: same for another pod cgroup.
pod_in() { "$PODEXEC" "$@"; }
# outside NETNS CMD...: in the pod's netns but not in an enrolled cgroup.
outside() { in_cg "$CG/outside" "$@"; }

# spawn DESC CGDIR NETNS CMD...: start CMD in the background; sets LAST_PID
# to CMD's pid.
spawn() {
	local desc=$1
	shift
	sh -c "$IN_CG_SH" "$@" &
	LAST_PID=$!
	BG[$LAST_PID]=$desc
}

# start_server NAME NETNS ARGS...: testsrv in NETNS logging to $W/NAME.log;
# waits until it listens. Sets LAST_PID.
start_server() {
	local name=$1 ns=$2
	shift 2
	rm -f "$W/$name.ready"
	spawn "testsrv $name" "$CG/svc" "$ns" "$TOOLS/testsrv" -L "$W/$name.log" \
		-r "$W/$name.ready" "$@" 2>>"$W/$name.err"
	touch "$W/$name.log"
	wait_until 5 test -f "$W/$name.ready" || fail "server $name did not start: $(cat "$W/$name.err")"
}

# ------------------------------------------------------------- bridle

# add_workload NAME CGDIR NETNS [LABELS_JSON]
add_workload() {
	local labels=${4:-'{}'}
	WORKLOADS_JSON=$(jq -c --arg n "$1" --arg c "${2#"$CGROOT"/}" \
		--arg ns "/run/netns/$3" --argjson l "$labels" \
		'. + [{name: $n, cgroup: $c, netns: $ns, labels: $l}]' <<<"$WORKLOADS_JSON") ||
		fail "add_workload: bad labels"
	ENROLLED+=("$2")
}

# write_config POLICY_JSON [EXTRA_JSON]: $W/config.json. EXTRA_JSON is
# merged over the defaults (e.g. '{"idle_timeout_ms": 500}').
write_config() {
	local policy=$1 extra=${2:-'{}'}
	mkdir -p "$W"
	# Every case records its sessions (and its cleanup verifies them).
	[ -f "$W/rec.key" ] || (umask 077 && head -c 32 /dev/urandom >"$W/rec.key")
	jq -n --arg w "$W" --arg pin "$PIN" --argjson wl "$WORKLOADS_JSON" \
		--argjson pol "$policy" --argjson extra "$extra" '{
		listen_port: 15001,
		control_socket: ($w + "/control.sock"),
		log_dir: ($w + "/log"),
		bpf_pin_dir: $pin,
		dns_resolvers: ["10.77.0.1"],
		connect_timeout_ms: 3000,
		idle_timeout_ms: 60000,
		drain_timeout_ms: 1000,
		record_dir: ($w + "/rec"),
		record_key_file: ($w + "/rec.key"),
		record_fsync_ms: 200,
		workloads: $wl,
		policy: $pol
	} + $extra' >"$W/config.json" || fail "write_config: bad JSON"
}

# The standard policy of most cases: echo (10.77.0.1:7, fd77::1:7) allowed
# for app=agent, "secret" (10.77.0.1:9, fd77::1:9) denied, default deny.
std_policy() {
	cat <<'EOF'
{
  "default": "deny",
  "targets": [
    {"name": "echo", "address": "10.77.0.1", "port": 7, "protocol": "tcp"},
    {"name": "echo6", "address": "fd77::1", "port": 7, "protocol": "tcp"},
    {"name": "http", "address": "10.77.0.1", "port": 80},
    {"name": "secret", "address": "10.77.0.1", "port": 9},
    {"name": "secret6", "address": "fd77::1", "port": 9}
  ],
  "rules": [
    {"name": "agents-echo",
     "when": {"workload": {"labels": {"app": "agent"}}, "target": ["echo", "echo6", "http"]},
     "action": "allow"},
    {"name": "no-secret", "when": {"target": ["secret", "secret6"]}, "action": "deny",
     "message": "secrets are off limits"}
  ]
}
EOF
}

# ctl CMD [ARGS]: a bridle client command against this case's instance.
ctl() { "$BRIDLE" "$@" --socket "$W/control.sock"; }

status_json() { ctl status --json; }
sessions_json() { ctl sessions --json; }

# all_ready: every configured workload is ready.
# (jq -e exits 0 on empty input: check there is an answer first.)
all_ready() {
	local s
	s=$(status_json 2>/dev/null) && [ -n "$s" ] &&
		jq -e '(.workloads | length) > 0 and all(.workloads[]; .ready)' <<<"$s" >/dev/null
}

# bridle_launch [CONFIG]: start bridle (in its own cgroup, outside every
# workload) with CONFIG (default $W/config.json), logging to $BRIDLE_LOG.
bridle_launch() {
	local cfg=${1:-$W/config.json}
	echo "=== bridle run $(date +%T.%N)" >>"$BRIDLE_LOG"
	sh -c "$IN_CG_SH" "$CG/bridle" "" "$BRIDLE" run --config "$cfg" 2>>"$BRIDLE_LOG" &
	BRIDLE_PID=$!
}

# bridle_wait CMD...: poll CMD for up to 10 s while bridle stays up.
bridle_wait() {
	local n
	for n in $(seq 200); do
		kill -0 "$BRIDLE_PID" 2>/dev/null || fail "bridle exited during startup"
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

first_ready() { [ "$(status_json 2>/dev/null | jq -r '.workloads[0].ready')" = true ]; }
answers() { status_json >/dev/null 2>&1; }

# bridle_start [CONFIG]: start bridle and wait until every workload is ready.
bridle_start() {
	bridle_launch "${1:-}"
	bridle_wait all_ready || fail "bridle: workloads not ready after 10 s"
}

# bridle_start_partial: for configs where some workloads are meant to fail:
# waits until the first one is ready.
bridle_start_partial() {
	bridle_launch
	bridle_wait first_ready || fail "bridle: first workload not ready after 10 s"
}

# bridle_start_any: start bridle and wait only for its control socket.
bridle_start_any() {
	bridle_launch
	bridle_wait answers || fail "bridle did not answer"
}

# bridle_stop [SIGNAL]: stop bridle and wait for it (SIGKILL after 5 s).
# Sets BRIDLE_RC.
bridle_stop() {
	local sig=${1:-TERM} n
	[ -n "$BRIDLE_PID" ] || return 0
	kill -"$sig" "$BRIDLE_PID" 2>/dev/null
	for n in $(seq 100); do
		kill -0 "$BRIDLE_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$BRIDLE_PID" 2>/dev/null
	wait "$BRIDLE_PID" 2>/dev/null
	BRIDLE_RC=$?
	BRIDLE_PID=
}

# session_log: the session log lines so far.
session_log() { cat "$W/log/sessions.jsonl" 2>/dev/null; }

# wait_log_event JQ_FILTER [TIMEOUT]: until a session log line matches.
wait_session_log() {
	wait_until "${2:-5}" sh -c "jq -e -c 'select($1)' '$W/log/sessions.jsonl' | grep -q ." ||
		fail "no session log line matching $1 within ${2:-5} s"
}

# ------------------------------------------------------------- runner

# e2e_main "$@" at the end of every test file:
#   --list         print the case names
#   --case NAME    run one case (used by the runner)
#   [NAME...]      run all (or the named) cases of this file, like run.sh
e2e_main() {
	if [ "${1:-}" = "--list" ]; then
		declare -F | awk '{print $3}' | sed -n 's/^t_//p'
		return 0
	fi
	if [ "${1:-}" = "--case" ]; then
		case_setup "$2"
		"t_$2"
		exit 0
	fi
	"$E2E_DIR/run.sh" "$0" "$@"
}
