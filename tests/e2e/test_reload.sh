#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Policy reload (`bridle reload` and SIGHUP): new connections see the new
# policy, open sessions are kept, an invalid policy is refused with an error
# naming the file and the JSON path, and the old policy stays in force.
source "$(dirname "$0")/lib.sh"

# policy_v ALLOW_PORT... : allow those ports of 10.77.0.1, deny 7/8/9 else.
policy_v() {
	local allow
	allow=$(printf '"p%s",' "$@")
	allow="[${allow%,}]"
	jq -n --argjson allow "$allow" '{
	  default: "deny",
	  targets: [
	    {name: "p7", address: "10.77.0.1", port: 7},
	    {name: "p8", address: "10.77.0.1", port: 8},
	    {name: "p9", address: "10.77.0.1", port: 9}
	  ],
	  rules: [
	    {name: "allowed-now", when: {workload: {name: "agent-*"}, target: $allow}, action: "allow"},
	    {name: "denied-now", when: {target: ([ "p7", "p8", "p9" ] - $allow)}, action: "deny",
	     message: "not in this policy generation"}
	  ]
	}'
}

# port_result PORT: what a new connection from the pod to 10.77.0.1:PORT
# gets: "echo" when echoed, else the peer result (ECONNRESET...).
port_result() {
	local out
	out=$(pod "$POD" "$TOOLS/peer" -s "hi$1" 10.77.0.1 "$1")
	if [ "$(kv recv "$out")" = "hi$1" ]; then echo echo; else kv result "$out"; fi
}

conns_to() { grep -c "tcp 10.77.0.1:$1 " "$W/srv.log"; }

generation() { status_json | jq -r .policy.generation; }

t_reload() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD"
	policy_v 7 8 >"$W/policy.json"
	write_config '"policy.json"'
	start_server srv "$SVC" -l 10.77.0.1:7 -l 10.77.0.1:8 -l 10.77.0.1:9
	bridle_start
	assert_eq "$(port_result 8)" echo "v1: port 8"
	assert_eq "$(port_result 9)" ECONNRESET "v1: port 9"
	assert_eq "$(conns_to 9)" 0 "v1: server connections on 9"

	# A long session (a real client) open across the reloads.
	mkfifo "$W/in"
	exec 3<>"$W/in"
	"$PODEXEC" "$AGENT_CG" "$POD" socat -T30 - TCP:10.77.0.1:8 <"$W/in" >"$W/session.out" 2>"$W/session.err" 3>&- &
	BG[$!]="long socat session"
	local sess_pid=$!
	echo one >&3
	wait_until 3 grep -qx one "$W/session.out" || fail "long session: no echo before the reload"

	# v2 by `bridle reload`: 8 denied, 9 allowed.
	policy_v 7 9 >"$W/policy.json"
	local out
	out=$(ctl reload 2>&1) || fail "bridle reload failed: $out"
	assert_match "$out" "generation 2" "reload output"
	assert_eq "$(generation)" 2 "status: policy generation"
	assert_eq "$(port_result 9)" echo "v2: port 9"
	local n8
	n8=$(conns_to 8)
	assert_eq "$(port_result 8)" ECONNRESET "v2: port 8 (new connection)"
	assert_eq "$(conns_to 8)" "$n8" "v2: server connections on 8 after the denied one"
	assert_eq "$(session_log | jq -r 'select(.event == "decision" and .original_destination == "10.77.0.1:8") | .rule' | tail -n1)" denied-now "v2: rule of the denied port 8"
	# The session opened under v1 is still there and still relays.
	echo two >&3
	wait_until 3 grep -qx two "$W/session.out" || fail "long session: no echo after the reload (session dropped?)"
	assert_eq "$(sessions_json | jq -r '[.[] | select(.state == "open")] | length')" 1 "open sessions after the reload"

	# v3 by SIGHUP: 8 allowed again, 9 denied.
	policy_v 7 8 >"$W/policy.json"
	kill -HUP "$BRIDLE_PID"
	wait_until 3 sh -c "[ \"\$('$BRIDLE' status --json --socket '$W/control.sock' | jq -r .policy.generation)\" = 3 ]" ||
		fail "SIGHUP: generation did not become 3"
	assert_eq "$(port_result 8)" echo "v3 (SIGHUP): port 8"
	assert_eq "$(port_result 9)" ECONNRESET "v3 (SIGHUP): port 9"
	echo three >&3
	wait_until 3 grep -qx three "$W/session.out" || fail "long session: no echo after SIGHUP"

	# An invalid policy: refused, with file and JSON path; v3 stays.
	policy_v 7 9 | jq '.rules[1].action = "maybe"' >"$W/policy.json"
	out=$(ctl reload 2>&1)
	local rc=$?
	[ $rc != 0 ] || fail "reload of an invalid policy exited 0: $out"
	assert_match "$out" "$W/policy.json" "reload error names the file"
	assert_match "$out" '\$\.rules\[1\]\.action' "reload error names the JSON path"
	assert_match "$out" 'maybe' "reload error gives the reason"
	assert_eq "$(generation)" 3 "generation after the failed reload"
	assert_eq "$(status_json | jq -r .policy.reload_failures)" 1 "status: reload_failures"
	assert_eq "$(port_result 8)" echo "old policy in force: port 8"
	assert_eq "$(port_result 9)" ECONNRESET "old policy in force: port 9"
	# Invalid JSON by SIGHUP: logged, old policy kept.
	echo '{"default": "allow",' >"$W/policy.json"
	kill -HUP "$BRIDLE_PID"
	wait_until 3 grep -q '"event":"reload_failed"' "$BRIDLE_LOG" || fail "SIGHUP with invalid JSON: no reload_failed event"
	assert_match "$(grep '"event":"reload_failed"' "$BRIDLE_LOG" | tail -n1)" "policy.json:[0-9]+:[0-9]+: invalid JSON" "reload_failed names file, line and column"
	assert_eq "$(port_result 9)" ECONNRESET "after SIGHUP with invalid JSON: port 9 still denied"
	assert_eq "$(generation)" 3 "generation after the failed SIGHUP"
	assert_eq "$(conns_to 9)" 1 "server connections on 9 (only while v2 allowed it)"

	echo four >&3
	wait_until 3 grep -qx four "$W/session.out" || fail "long session: no echo at the end"
	exec 3>&-
	wait_until 5 sh -c "! kill -0 $sess_pid" || fail "long session did not end after EOF"
	wait_session_log '.event == "close" and .bytes_up == 19' 3
	assert_eq "$(cat "$W/session.out" | tr '\n' ' ')" "one two three four " "long session transcript"
}

e2e_main "$@"
