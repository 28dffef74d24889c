#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Fail closed: a workload whose enforcer is stopped or dead gets
# ECONNREFUSED and nothing reaches a destination; the enforcer's own
# listener cannot be reached, spoofed or taken over from the pod.
source "$(dirname "$0")/lib.sh"

setup_std() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	write_config "$(std_policy)" "${1:-{\}}"
	start_server echo "$SVC" -l 10.77.0.1:7 -l '[fd77::1]:7'
	start_server secret "$SVC" -l 10.77.0.1:9
}

# (a) bridle stopped with SIGTERM: the pinned programs stay, the workload
# is no longer ready, connects are refused in the kernel.
t_stopped_refuses() {
	setup_std
	bridle_start
	local out n
	out=$(pod "$POD" "$TOOLS/peer" -s up 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" up "before the stop: echo"
	bridle_stop TERM
	assert_eq "$BRIDLE_RC" 0 "bridle exit status after SIGTERM"
	grep -q '"event":"stopped"' "$BRIDLE_LOG" || fail "no stopped event in the log"
	n=$(lines "$W/echo.log")
	for dst in "10.77.0.1 7" "10.77.0.1 9" "fd77::1 7" "-6 10.77.0.1 7"; do
		# shellcheck disable=SC2086
		out=$(pod "$POD" "$TOOLS/peer" -s x $dst)
		assert_eq "$(kv connect "$out")" ECONNREFUSED "after SIGTERM: connect to $dst"
	done
	out=$(pod "$POD" "$TOOLS/peer" -F -s x 10.77.0.1 7)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "after SIGTERM: TFO sendto"
	out=$(echo x | pod "$POD" socat -t1 -T2 - TCP:10.77.0.1:7 2>&1)
	assert_match "$out" "Connection refused" "after SIGTERM: socat"
	sleep 0.2
	assert_eq "$(lines "$W/echo.log")" "$n" "echo server connections after the stop"
	assert_eq "$(lines "$W/secret.log")" 0 "secret server connections"
	# The programs are still attached to the pod's cgroup.
	assert_match "$(bpftool cgroup show "$AGENT_CG" 2>&1)" "connect4" "programs still attached after exit"
	# Outside the cgroup nothing changed.
	out=$(outside "$POD" "$TOOLS/peer" -s out 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" out "outside the cgroup after the stop"
}

# SIGTERM with a live session: new connects are refused in the kernel at
# once, the live session keeps relaying until drain_timeout_ms, then it is
# closed ("drain timeout") and bridle exits.
t_drain() {
	setup_std '{"drain_timeout_ms": 1500}'
	bridle_start
	mkfifo "$W/in"
	exec 3<>"$W/in"
	"$PODEXEC" "$AGENT_CG" "$POD" socat -d -T30 - TCP:10.77.0.1:7 <"$W/in" >"$W/session.out" 2>"$W/session.err" 3>&- &
	BG[$!]="long socat session"
	echo one >&3
	wait_until 3 grep -qx one "$W/session.out" || fail "no echo before SIGTERM"
	# A live session shows its bytes so far.
	assert_eq "$(sessions_json | jq -r '.[] | select(.state == "open") | "\(.bytes_up) \(.bytes_down)"')" "4 4" "live session: bytes_up bytes_down"
	local t0 out
	t0=$(date +%s%N)
	kill -TERM "$BRIDLE_PID"
	wait_until 2 grep -q '"event":"draining"' "$BRIDLE_LOG" || fail "no draining event"
	out=$(pod "$POD" "$TOOLS/peer" -s new 10.77.0.1 7)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "new connect while draining"
	echo two >&3
	wait_until 2 grep -qx two "$W/session.out" || fail "live session stopped relaying while draining"
	wait_until 5 sh -c "! kill -0 $BRIDLE_PID" || fail "bridle did not exit after the drain timeout"
	local ms=$((($(date +%s%N) - t0) / 1000000))
	[ $ms -ge 1300 ] || fail "bridle exited after $ms ms, before drain_timeout_ms 1500"
	wait "$BRIDLE_PID"
	assert_eq "$?" 0 "bridle exit status after the drain"
	BRIDLE_PID=
	assert_eq "$(session_log | jq -r 'select(.event == "close") | .end')" "drain timeout" "live session close reason"
	exec 3>&-
}

# max_sessions: connections beyond the limit are refused (and logged), the
# ones within it work.
t_max_sessions() {
	setup_std '{"max_sessions": 2}'
	bridle_start
	local p1 p2 out
	"$PODEXEC" "$AGENT_CG" "$POD" "$TOOLS/peer" -d 1500 -s a 10.77.0.1 7 >"$W/a.out" &
	p1=$!
	"$PODEXEC" "$AGENT_CG" "$POD" "$TOOLS/peer" -d 1500 -s b 10.77.0.1 7 >"$W/b.out" &
	p2=$!
	wait_until 3 sh -c "[ \$('$BRIDLE' status --json --socket '$W/control.sock' | jq .sessions.live) = 2 ]" || fail "two sessions not open"
	out=$(pod "$POD" "$TOOLS/peer" -s c 10.77.0.1 7)
	assert_eq "$(kv result "$out")" ECONNRESET "third session"
	assert_match "$(session_log | jq -r 'select(.action == "deny") | .end')" "max_sessions" "third session: reason"
	wait "$p1" "$p2"
	assert_eq "$(kv recv "$(cat "$W/a.out")")" a "first session"
	assert_eq "$(kv recv "$(cat "$W/b.out")")" b "second session"
	out=$(pod "$POD" "$TOOLS/peer" -s d 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" d "a session after the others closed"
}

# The agent took the listener port before bridle started: the workload
# cannot be made ready, and then stays closed; the squatter gets nothing.
# A workload whose cgroup does not exist is reported, not fatal.
t_port_squatted() {
	setup_std
	mkdir -p "$CG/other"
	netns_add "be2e-$ID-ghost"
	add_workload ghost "$CG/does-not-exist" "be2e-$ID-ghost"
	write_config "$(std_policy)"
	"$PODEXEC" "$AGENT_CG" "$POD" "$TOOLS/testsrv" -l 127.0.0.1:15001 -L "$W/squat.log" -r "$W/squat.ready" &
	BG[$!]="squatter"
	wait_until 3 test -f "$W/squat.ready" || fail "squatter did not start"
	echo "=== bridle run (squatted)" >>"$BRIDLE_LOG"
	sh -c "$IN_CG_SH" "$CG/bridle" "" "$BRIDLE" run --config "$W/config.json" 2>>"$BRIDLE_LOG" &
	BRIDLE_PID=$!
	wait_until 5 sh -c "'$BRIDLE' status --json --socket '$W/control.sock' | grep -q ready" || fail "bridle did not answer"
	local s out
	s=$(status_json)
	assert_eq "$(jq -r '.workloads[0].ready' <<<"$s")" false "squatted workload: ready"
	assert_match "$(jq -r '.workloads[0].error' <<<"$s")" "127.0.0.1 port 15001.*Address already in use" "squatted workload: error"
	assert_eq "$(jq -r '.workloads[1].ready' <<<"$s")" false "missing cgroup: ready"
	assert_match "$(jq -r '.workloads[1].error' <<<"$s")" "does-not-exist.*No such file" "missing cgroup: error"
	out=$(pod "$POD" "$TOOLS/peer" -s x 10.77.0.1 7)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "connect from the squatted workload"
	out=$(pod "$POD" "$TOOLS/peer" -s x 127.0.0.1 15001)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "connect to the squatter"
	sleep 0.2
	assert_eq "$(lines "$W/squat.log")" 0 "connections at the squatter"
	assert_eq "$(lines "$W/echo.log")" 0 "connections at the echo server"
	wait_until 3 grep -q '"reason":"workload not ready"' "$BRIDLE_LOG" || fail "no kernel_refused not-ready event"
}

# (b) kill -9: the listeners die with bridle; connects are refused and no
# byte reaches any destination; a new bridle takes over the pinned state.
# A loop of connects runs during the whole window: the denied destination
# never sees a connection, and every connection the allowed one sees was
# allowed by bridle.
t_kill9_restart() {
	setup_std
	bridle_start
	local out
	out=$(pod "$POD" "$TOOLS/peer" -s before 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" before "before kill -9: echo"

	touch "$W/loop.run"
	(
		for i in $(seq 400); do
			[ -f "$W/loop.run" ] || break
			"$PODEXEC" "$AGENT_CG" "$POD" "$TOOLS/peer" -t 2000 -s "s$i" 10.77.0.1 9 | tr '\n' ' '
			echo
			"$PODEXEC" "$AGENT_CG" "$POD" "$TOOLS/peer" -t 2000 -s "e$i" 10.77.0.1 7 | tr '\n' ' '
			echo
		done
	) >"$W/loop.out" 2>&1 &
	BG[$!]="connect loop"
	local loop_pid=$!
	sleep 0.3
	bridle_stop KILL
	wait_until 2 sh -c "! ip netns exec $POD ss -Htln | grep -q ':15001 '" || fail "listener still there after kill -9"
	out=$(pod "$POD" "$TOOLS/peer" -s dead 10.77.0.1 7)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "after kill -9: connect"
	out=$(pod "$POD" "$TOOLS/peer" -s dead fd77::1 7)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "after kill -9: IPv6 connect"
	sleep 0.3
	bridle_start
	sleep 0.3
	rm -f "$W/loop.run"
	wait "$loop_pid"
	out=$(pod "$POD" "$TOOLS/peer" -s after 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" after "after the restart: echo"
	out=$(pod "$POD" "$TOOLS/peer" -s after 10.77.0.1 9)
	assert_eq "$(kv result "$out")" ECONNRESET "after the restart: denied"

	local refused ok bad
	refused=$(grep -c 'connect=ECONNREFUSED' "$W/loop.out")
	ok=$(grep -c 'recv=e[0-9]* ' "$W/loop.out")
	bad=$(grep -c 'recv=s[0-9]' "$W/loop.out")
	note "loop: $(wc -l <"$W/loop.out") connects, $ok echoed, $refused refused"
	[ "$refused" -gt 0 ] || fail "the loop never saw the dead window (no ECONNREFUSED)"
	[ "$ok" -gt 0 ] || fail "the loop never got through"
	assert_eq "$bad" 0 "denied destination echoed during the restart window"
	grep -vE 'connect=(OK|ECONNREFUSED)' "$W/loop.out" | grep -q . &&
		fail "unexpected connect results in the loop: $(grep -vE 'connect=(OK|ECONNREFUSED)' "$W/loop.out" | head -n2)"
	sleep 0.2
	assert_eq "$(lines "$W/secret.log")" 0 "secret server connections during the restart window"
	local allowed
	allowed=$(jq -c 'select(.event == "decision" and .action == "allow")' "$W/log/sessions.jsonl" | wc -l)
	assert_eq "$(lines "$W/echo.log")" "$allowed" "echo server connections vs bridle's allow decisions (both instances)"
	grep -q '"event":"started"' "$BRIDLE_LOG" || fail "no second start"
}

# (c) The agent cannot use the enforcer's listener directly: the kernel
# refuses connects to the listener port on loopback.
t_self_connect_refused() {
	setup_std
	bridle_start
	local out dst
	for dst in "127.0.0.1 15001" "127.0.0.2 15001" "0.0.0.0 15001" "::1 15001" "-6 127.0.0.1 15001" "::ffff:127.0.0.1 15001"; do
		# shellcheck disable=SC2086
		out=$(pod "$POD" "$TOOLS/peer" -s x $dst)
		assert_eq "$(kv connect "$out")" ECONNREFUSED "agent connect to $dst"
	done
	out=$(pod "$POD" "$TOOLS/peer" -F -s x 127.0.0.1 15001)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "agent TFO sendto 127.0.0.1:15001"
	out=$(echo x | pod "$POD" socat -t1 -T2 - TCP:127.0.0.1:15001 2>&1)
	assert_match "$out" "Connection refused" "agent socat to 127.0.0.1:15001"
	assert_eq "$(sessions_json | jq length)" 0 "sessions after the refused self-connects"
	assert_match "$(status_json | jq -r .kernel_counters.refused_self_connect)" '^[1-9]' "kernel counter refused_self_connect"
	wait_until 3 grep -q '"reason":"connect to the enforcer'"'"'s own listener"' "$BRIDLE_LOG" ||
		fail "no kernel_refused self-connect event in the log"
}

# (d) A process in the pod's netns but outside the cgroup reaches the
# listener, but has no recorded original destination: bridle refuses it.
# The agent cannot bind the listener port (to impersonate the enforcer).
t_listener_spoofing() {
	setup_std
	bridle_start
	local out s
	out=$(outside "$POD" "$TOOLS/peer" -s spoof 127.0.0.1 15001)
	assert_eq "$(kv connect "$out")" OK "outside process: connect to the listener"
	assert_eq "$(kv recv_bytes "$out")" 0 "outside process: nothing received"
	assert_eq "$(kv result "$out")" ECONNRESET "outside process: reset"
	out=$(outside "$POD" "$TOOLS/peer" -s spoof6 ::1 15001)
	assert_eq "$(kv result "$out")" ECONNRESET "outside process, IPv6: reset"
	s=$(sessions_json)
	assert_eq "$(jq -r 'first | .end' <<<"$s")" "no recorded original destination" "sessions: reason"
	assert_eq "$(jq -r 'first | .action' <<<"$s")" deny "sessions: action"
	assert_eq "$(jq -r '[.[] | select(.end == "no recorded original destination")] | length' <<<"$s")" 2 "sessions: refused spoofs"
	grep -q '"end":"no recorded original destination"' "$BRIDLE_LOG" || fail "no log line for the spoofed connect"
	assert_eq "$(lines "$W/echo.log")" 0 "echo server connections"

	for a in "tcp 127.0.0.1 15001" "tcp 0.0.0.0 15001" "tcp :: 15001" "tcp ::1 15001" "tcp 10.77.0.2 15001" "udp 127.0.0.1 15001"; do
		# shellcheck disable=SC2086
		out=$(pod "$POD" "$TOOLS/sockcheck" bind $a)
		assert_eq "$out" "EPERM bind" "agent bind $a"
	done
	out=$(pod "$POD" "$TOOLS/sockcheck" bind tcp 127.0.0.1 15002)
	assert_eq "$out" "OK bind" "agent bind another port"
	# With bridle dead the pinned bind program still keeps the port.
	bridle_stop KILL
	out=$(pod "$POD" "$TOOLS/sockcheck" bind tcp 127.0.0.1 15001)
	assert_eq "$out" "EPERM bind" "agent bind 127.0.0.1:15001 after kill -9"
	# A clean stop clears readiness but keeps the port protected too.
	bridle_start
	bridle_stop TERM
	out=$(pod "$POD" "$TOOLS/sockcheck" bind tcp 127.0.0.1 15001)
	assert_eq "$out" "EPERM bind" "agent bind 127.0.0.1:15001 after SIGTERM"
}

# With several workers the listeners use SO_REUSEPORT. A socket of the same
# uid that already holds the port with SO_REUSEPORT (here root, outside the
# cgroup) must not silently join the group and receive agent connections:
# bridle refuses to make the workload ready instead.
t_reuseport_squatter() {
	setup_std
	write_config "$(std_policy)" '{"workers": 2}'
	outside "$POD" /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", 15001)); s.listen(16)
open(sys.argv[1], "w").close()
s.settimeout(30)
try:
    while True:
        c, _ = s.accept(); open(sys.argv[2], "a").write("conn\n"); c.close()
except Exception:
    pass' "$W/squat.ready" "$W/squat.log" &
	BG[$!]="reuseport squatter"
	wait_until 3 test -f "$W/squat.ready" || fail "squatter did not start"
	bridle_start_any
	local s out
	s=$(status_json)
	assert_eq "$(jq -r '.workloads[0].ready' <<<"$s")" false "squatted workload: ready"
	assert_match "$(jq -r '.workloads[0].error' <<<"$s")" "not bridle's" "squatted workload: error"
	out=$(pod "$POD" "$TOOLS/peer" -s x 10.77.0.1 7)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "connect from the squatted workload"
	sleep 0.2
	assert_eq "$(lines "$W/squat.log")" 0 "connections at the squatter"
}


# An upgrade whose maps changed shape: a pinned map the new programs cannot
# reuse is set aside, the links are updated in place (never detached), and
# the old pin is removed once the new programs are attached. Simulated by
# replacing the pinned counters map with one of another size while bridle
# is down; the pod stays closed throughout.
t_upgrade_incompatible_map() {
	setup_std
	bridle_start
	local out pins
	out=$(pod "$POD" "$TOOLS/peer" -s v1 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" v1 "before the upgrade: echo"
	bridle_stop KILL
	rm -f "$PIN/maps/bridle_counters"
	bpftool map create "$PIN/maps/bridle_counters" type percpu_array key 4 value 8 \
		entries 3 name bridle_counters || fail "cannot pin the stand-in map"
	out=$(pod "$POD" "$TOOLS/peer" -s gap 10.77.0.1 7)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "between the versions: connect"
	bridle_start
	grep -q '"event":"maps_replaced"' "$BRIDLE_LOG" || fail "no maps_replaced event"
	[ ! -e "$PIN/retired" ] || fail "retired maps left in $PIN/retired: $(ls "$PIN/retired")"
	out=$(pod "$POD" "$TOOLS/peer" -s v2 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" v2 "after the upgrade: echo"
	out=$(pod "$POD" "$TOOLS/peer" -s v2 10.77.0.1 9)
	assert_eq "$(kv result "$out")" ECONNRESET "after the upgrade: denied"
	assert_match "$(status_json | jq -r .kernel_counters.redirected)" '^[1-9]' \
		"counters work with the new map"
	pins=$(bpftool link show 2>/dev/null | grep -c "cgroup_id $(stat -c %i "$AGENT_CG" 2>/dev/null)" || true)
	note "links on the agent cgroup after the upgrade: $pins"
}

# Two workloads configured in one network namespace: the second is refused
# at enrollment (its cgroup gets no programs and no listener can be shared
# by two identities), and a process in it never borrows the first
# workload's permissions: the echo target only agent-a may use.
t_shared_netns_refused() {
	setup_std
	mkdir -p "$CG/agent-b"
	add_workload agent-b "$CG/agent-b" "$POD" '{"app": "other"}'
	write_config '{"default": "deny",
	  "targets": [{"name": "echo", "address": "10.77.0.1", "port": 7}],
	  "rules": [{"name": "a only", "when": {"workload": {"name": "agent-a"}, "target": "echo"}, "action": "allow"}]}'
	bridle_start_partial
	local s out
	s=$(status_json)
	assert_eq "$(jq -r '.workloads[1].ready' <<<"$s")" false "second workload in the netns: ready"
	assert_match "$(jq -r '.workloads[1].error' <<<"$s")" "shares its network namespace with workload agent-a" \
		"second workload: error"
	assert_eq "$(jq -r '.workloads[1].programs | length' <<<"$s")" 0 "second workload: programs attached"
	out=$(pod "$POD" "$TOOLS/peer" -s a 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" a "agent-a: echo"
	local before
	before=$(lines "$W/echo.log")
	# agent-b's process: in the same netns, its own (unenrolled) cgroup,
	# so its connect is direct; the point is that it is not seen as agent-a.
	out=$(pod_in "$CG/agent-b" "$POD" "$TOOLS/peer" -s b 10.77.0.1 7)
	assert_eq "$(sessions_json | jq '[.[] | select(.process.pid != null and .workload == "agent-a")] | length')" 1 \
		"sessions attributed to agent-a (only agent-a's own)"
	note "agent-b direct (not enrolled): $(kv recv "$out"), echo connections $before -> $(lines "$W/echo.log")"
}

# An agent already running when its cgroup is enrolled: its connection to
# a destination the policy denies, opened before bridle started, is reset
# at enrollment (the hooks would only judge its next connect), while its
# own listening socket keeps serving.
t_existing_connection_reset() {
	setup_std
	local agent='
import socket, sys, time
lst = socket.socket(); lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("10.77.0.2", 8080)); lst.listen(4)
s = socket.create_connection(("10.77.0.1", 9))
open(sys.argv[1], "w").close()
end = time.time() + 20
while time.time() < end:
    try:
        s.sendall(b"x"); s.recv(1)
    except OSError as e:
        print("closed", e.errno); sys.stdout.flush(); break
    time.sleep(0.05)
else:
    print("still open")
c, _ = lst.accept(); c.sendall(b"served\n"); c.close()'
	pod "$POD" /usr/bin/python3 -c "$agent" "$W/agent.ready" >"$W/agent.out" 2>&1 &
	local apid=$!
	BG[$apid]="pre-existing agent"
	wait_until 5 test -f "$W/agent.ready" || fail "agent did not connect: $(cat "$W/agent.out")"
	bridle_start
	wait_until 5 grep -q closed "$W/agent.out" ||
		fail "the pre-existing connection to the denied destination stayed open: $(cat "$W/agent.out")"
	grep -q '"event":"existing_connections_reset"' "$BRIDLE_LOG" || fail "no existing_connections_reset event"
	local out
	out=$(ip netns exec "$SVC" socat -T2 - TCP:10.77.0.2:8080 </dev/null 2>&1)
	assert_eq "$out" served "the agent's own listener after enrollment"
	wait "$apid"
}

e2e_main "$@"
