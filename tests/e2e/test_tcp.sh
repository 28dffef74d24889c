#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Allowed and denied TCP destinations, what the agent sees, what the far
# side sees, and what bridle reports (sessions list, session log).
source "$(dirname "$0")/lib.sh"

setup_std() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	write_config "$(std_policy)" "${1:-{\}}"
}

# A real server (socat, logging every accepted connection) and a real
# client (socat): the allowed destination echoes, the denied one is reset
# and never reaches its server.
t_allow_deny() {
	setup_std
	spawn "socat echo" "$CG/svc" "$SVC" socat -d -d TCP-LISTEN:7,bind=10.77.0.1,fork,reuseaddr EXEC:cat 2>>"$W/echo.log"
	spawn "socat secret" "$CG/svc" "$SVC" socat -d -d TCP-LISTEN:9,bind=10.77.0.1,fork,reuseaddr EXEC:cat 2>>"$W/secret.log"
	wait_until 5 sh -c "ip netns exec $SVC ss -Htln | grep -q ':9 '" || fail "servers did not start"
	wait_until 5 sh -c "ip netns exec $SVC ss -Htln | grep -q ':7 '" || fail "servers did not start"
	bridle_start

	local out
	out=$(echo hello-through-bridle | pod "$POD" socat -t2 -T5 - TCP:10.77.0.1:7 2>&1)
	assert_eq "$out" "hello-through-bridle" "allowed: echo through bridle"
	# The server saw the pod's own address: the upstream socket lives in
	# the pod's network namespace.
	assert_match "$(grep 'accepting connection' "$W/echo.log")" "10\.77\.0\.2:[0-9]+" "echo server: connection from the pod's address"

	# (socat 1.7 only warns about a reset, with -d, and exits 0.)
	out=$(echo secret-data | pod "$POD" socat -d -t2 -T5 - TCP:10.77.0.1:9 2>&1)
	assert_match "$out" "Connection reset by peer" "denied: client sees a reset"
	assert_no_match "$out" "secret-data" "denied: nothing echoed"
	sleep 0.2
	assert_no_match "$(cat "$W/secret.log")" "accepting connection" "denied: the secret server never saw a connection"

	# The same with the peer tool, which reports errno names.
	out=$(pod "$POD" "$TOOLS/peer" -s ping 10.77.0.1 9)
	assert_eq "$(kv result "$out")" ECONNRESET "denied (peer): result"
	assert_eq "$(kv recv_bytes "$out")" 0 "denied (peer): bytes received"
	out=$(pod "$POD" "$TOOLS/peer" -s ping 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" ping "allowed (peer): echo"
	assert_eq "$(kv result "$out")" OK "allowed (peer): result"
	sleep 0.2
	assert_no_match "$(cat "$W/secret.log")" "accepting connection" "denied (peer): the secret server never saw a connection"

	# A destination with no target at all falls to the default (deny).
	out=$(pod "$POD" "$TOOLS/peer" -s x 10.77.0.1 8)
	assert_eq "$(kv result "$out")" ECONNRESET "default deny: result"
}

# `bridle sessions --json` and sessions.jsonl: decision, rule, target,
# bytes both ways, process identity, end reason.
t_sessions_report() {
	setup_std
	start_server echo "$SVC" -l 10.77.0.1:7 -g "HELLO:"
	start_server secret "$SVC" -l 10.77.0.1:9
	bridle_start

	local out s
	# 11 bytes up; 6 + 11 bytes down.
	out=$(pod "$POD" "$TOOLS/peer" -s 0123456789X 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" "HELLO:0123456789X" "allowed: greeting + echo"
	out=$(pod "$POD" "$TOOLS/peer" -s nope 10.77.0.1 9)
	assert_eq "$(kv result "$out")" ECONNRESET "denied: reset"
	assert_eq "$(lines "$W/secret.log")" 0 "secret server connections"
	assert_eq "$(lines "$W/echo.log")" 1 "echo server connections"

	wait_session_log '.event == "close"'
	s=$(sessions_json) || fail "bridle sessions --json failed"
	local allow deny
	allow=$(jq -c '[.[] | select(.action == "allow")] | first' <<<"$s")
	deny=$(jq -c '[.[] | select(.action == "deny")] | first' <<<"$s")
	[ "$allow" != null ] || fail "sessions: no allowed session in $s"
	[ "$deny" != null ] || fail "sessions: no denied session in $s"
	assert_eq "$(jq -r .rule <<<"$allow")" agents-echo "allowed session: rule"
	assert_eq "$(jq -r .target <<<"$allow")" echo "allowed session: target"
	assert_eq "$(jq -r .workload <<<"$allow")" agent-a "allowed session: workload"
	assert_eq "$(jq -r .original_destination <<<"$allow")" 10.77.0.1:7 "allowed session: original destination"
	assert_eq "$(jq -r .bytes_up <<<"$allow")" 11 "allowed session: bytes_up"
	assert_eq "$(jq -r .bytes_down <<<"$allow")" 17 "allowed session: bytes_down"
	assert_eq "$(jq -r .state <<<"$allow")" closed "allowed session: state"
	assert_eq "$(jq -r .process.exe <<<"$allow")" "$TOOLS/peer" "allowed session: process exe"
	assert_eq "$(jq -r .process.uid <<<"$allow")" 0 "allowed session: uid"
	assert_match "$(jq -r .process.pid <<<"$allow")" '^[1-9][0-9]*$' "allowed session: pid"
	assert_eq "$(jq -r .process.cgroup_id <<<"$allow")" "$(stat -c %i "$AGENT_CG")" "allowed session: cgroup id"
	assert_eq "$(jq -r .rule <<<"$deny")" no-secret "denied session: rule"
	assert_eq "$(jq -r .target <<<"$deny")" secret "denied session: target"
	assert_eq "$(jq -r .end <<<"$deny")" "secrets are off limits" "denied session: message"
	assert_eq "$(jq -r .original_destination <<<"$deny")" 10.77.0.1:9 "denied session: original destination"

	# The session log has a decision line for both and a close line with
	# the byte counts for the allowed one.
	local log
	log=$(session_log)
	assert_eq "$(jq -c 'select(.event == "decision" and .action == "allow")' <<<"$log" | wc -l)" 1 "session log: allow decisions"
	assert_eq "$(jq -c 'select(.event == "decision" and .action == "deny" and .rule == "no-secret" and .target == "secret")' <<<"$log" | wc -l)" 1 "session log: deny decisions"
	local close
	close=$(jq -c 'select(.event == "close")' <<<"$log")
	assert_eq "$(jq -r .bytes_up <<<"$close")" 11 "session log close: bytes_up"
	assert_eq "$(jq -r .bytes_down <<<"$close")" 17 "session log close: bytes_down"
	assert_eq "$(jq -r .end <<<"$close")" closed "session log close: end"
	assert_eq "$(jq -r .id <<<"$close")" "$(jq -r .id <<<"$allow")" "session log close: id"
	for k in id workload original_destination action rule target process bytes_up bytes_down; do
		jq -e "has(\"$k\")" <<<"$close" >/dev/null || fail "session log close line lacks $k: $close"
	done
	# status counts
	s=$(status_json)
	assert_eq "$(jq -r '.workloads[0].accepted' <<<"$s")" 2 "status: accepted"
	assert_eq "$(jq -r '.workloads[0].refused' <<<"$s")" 1 "status: refused"
}

# curl against python's http.server, both unmodified.
t_http_curl() {
	setup_std
	mkdir -p "$W/www"
	echo "served-by-python" >"$W/www/index.txt"
	spawn "http.server" "$CG/svc" "$SVC" "$PY" -m http.server 80 --bind 10.77.0.1 --directory "$W/www" 2>>"$W/http.log"
	wait_until 10 sh -c "ip netns exec $SVC ss -Htln | grep -q '10.77.0.1:80 '" || fail "http.server did not start"
	bridle_start
	local out
	out=$(pod "$POD" curl -sS --max-time 5 http://10.77.0.1/index.txt 2>&1)
	assert_eq "$out" served-by-python "curl through bridle"
	assert_match "$(cat "$W/http.log")" '10\.77\.0\.2 .*"GET /index.txt HTTP/1.1" 200' "http.server log"
	# A denied port: curl sees the reset, the server sees nothing new.
	local before
	before=$(grep -c GET "$W/http.log")
	out=$(pod "$POD" curl -sS --max-time 5 http://10.77.0.1:9/ 2>&1)
	# (curl reports the reset as a failed connect when it comes before
	# curl looked at the socket.)
	assert_match "$out" "(reset|Recv failure|Empty reply|Failed to connect)" "curl to a denied port"
	assert_eq "$(sessions_json | jq -r 'first | "\(.action) \(.rule) \(.original_destination) \(.process.exe)"')" \
		"deny no-secret 10.77.0.1:9 $(readlink -f "$(command -v curl)")" "curl's denied session"
	assert_eq "$(grep -c GET "$W/http.log")" "$before" "http.server requests after the denied one"
}

# Containers are child cgroups of the pod cgroup, also ones created after
# enrollment: their connects go through bridle too, as the pod's workload.
# A non-root process is reported with its uid.
t_child_cgroup() {
	setup_std
	start_server echo "$SVC" -l 10.77.0.1:7
	start_server secret "$SVC" -l 10.77.0.1:9
	bridle_start
	mkdir -p "$AGENT_CG/ctr1/sub"
	local out s
	out=$(pod_in "$AGENT_CG/ctr1/sub" "$POD" setpriv --reuid=65534 --regid=65534 --clear-groups "$TOOLS/peer" -s child 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" child "child cgroup: echo"
	assert_eq "$(kv local "$out" | cut -d: -f1)" 127.0.0.1 "child cgroup: redirected"
	out=$(pod_in "$AGENT_CG/ctr1" "$POD" "$TOOLS/peer" -s child 10.77.0.1 9)
	assert_eq "$(kv result "$out")" ECONNRESET "child cgroup: denied"
	assert_eq "$(lines "$W/secret.log")" 0 "secret server connections"
	s=$(sessions_json)
	local a
	a=$(jq -c '[.[] | select(.action == "allow")] | first' <<<"$s")
	assert_eq "$(jq -r .workload <<<"$a")" agent-a "child cgroup: workload"
	assert_eq "$(jq -r .process.uid <<<"$a")" 65534 "child cgroup: uid"
	assert_eq "$(jq -r .process.cgroup_id <<<"$a")" "$(stat -c %i "$AGENT_CG/ctr1/sub")" "child cgroup: cgroup id"
	# Refused socket kinds are inherited too.
	out=$(pod_in "$AGENT_CG/ctr1/sub" "$POD" "$TOOLS/sockcheck" raw)
	assert_eq "$out" "EPERM raw" "child cgroup: raw socket"
}

# getpeername() in the pod shows the original destination, for IPv4, IPv6
# and IPv4-mapped IPv6 on an AF_INET6 socket; getsockname() is untouched.
t_getpeername() {
	setup_std
	start_server echo "$SVC" -l 10.77.0.1:7 -l '[fd77::1]:7'
	bridle_start
	local out
	out=$(pod "$POD" "$TOOLS/peer" -s v4 10.77.0.1 7)
	assert_eq "$(kv peer "$out")" 10.77.0.1:7 "IPv4 getpeername"
	assert_eq "$(kv recv "$out")" v4 "IPv4 echo"
	out=$(pod "$POD" "$TOOLS/peer" -s v6 fd77::1 7)
	assert_eq "$(kv peer "$out")" "[fd77::1]:7" "IPv6 getpeername"
	assert_eq "$(kv recv "$out")" v6 "IPv6 echo"
	out=$(pod "$POD" "$TOOLS/peer" -6 -s mapped 10.77.0.1 7)
	assert_eq "$(kv peer "$out")" "[::ffff:10.77.0.1]:7" "IPv4-mapped getpeername"
	assert_eq "$(kv recv "$out")" mapped "IPv4-mapped echo"
	# The same for a denied destination: the socket looks connected to
	# where the agent wanted to go, then is reset (once reset, getpeername
	# says ENOTCONN; bridle may be that quick).
	out=$(pod "$POD" "$TOOLS/peer" -d 200 -s x 10.77.0.1 9)
	assert_match "$(kv peer "$out")" '^(10\.77\.0\.1:9|ENOTCONN)$' "denied: getpeername"
}

# IPv6 and IPv4-mapped IPv6: policy targets match, far side sees the pod.
t_ipv6() {
	setup_std
	start_server echo "$SVC" -l 10.77.0.1:7 -l '[fd77::1]:7' -g E:
	start_server secret "$SVC" -l 10.77.0.1:9 -l '[fd77::1]:9'
	bridle_start
	local out s
	out=$(pod "$POD" "$TOOLS/peer" -s six fd77::1 7)
	assert_eq "$(kv recv "$out")" E:six "IPv6 allowed"
	assert_match "$(cat "$W/echo.log")" 'tcp \[fd77::1\]:7 \[fd77::2\]:[0-9]+' "IPv6 server saw the pod's address"
	out=$(pod "$POD" "$TOOLS/peer" -s six fd77::1 9)
	assert_eq "$(kv result "$out")" ECONNRESET "IPv6 denied"
	# IPv4-mapped on an AF_INET6 socket: target 10.77.0.1 must match.
	out=$(pod "$POD" "$TOOLS/peer" -6 -s mapped 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" E:mapped "IPv4-mapped allowed"
	out=$(pod "$POD" "$TOOLS/peer" -6 -s mapped 10.77.0.1 9)
	assert_eq "$(kv result "$out")" ECONNRESET "IPv4-mapped denied"
	assert_eq "$(lines "$W/secret.log")" 0 "secret server connections"
	assert_eq "$(lines "$W/echo.log")" 2 "echo server connections"
	s=$(sessions_json)
	assert_eq "$(jq -r '[.[] | select(.original_destination == "[fd77::1]:7")] | first | .target' <<<"$s")" echo6 "IPv6 session target"
	assert_eq "$(jq -r '[.[] | select(.original_destination == "10.77.0.1:7")] | first | .target' <<<"$s")" echo "IPv4-mapped session target (folded to IPv4)"
	assert_eq "$(jq -r '[.[] | select(.original_destination == "10.77.0.1:9")] | first | .rule' <<<"$s")" no-secret "IPv4-mapped denied rule"
	# A real client over IPv6.
	out=$(echo sock6 | pod "$POD" socat -t2 -T5 - 'TCP6:[fd77::1]:7' 2>&1)
	assert_eq "$out" E:sock6 "socat over IPv6"
}

# Link-local IPv6 destinations (fe80::/64 with a scope): the connection
# must reach the same server it reaches without bridle.
t_ipv6_link_local() {
	setup_std
	ip -n "$SVC" addr add fe80::1/64 dev "v$$0a" nodad || fail "link-local address"
	ip -n "$POD" addr add fe80::2/64 dev "v$$0b" nodad || fail "link-local address"
	write_config '{"default": "deny",
	  "targets": [{"name": "link-local", "address": "fe80::/64", "port": 7}],
	  "rules": [{"name": "ll", "when": {"target": "link-local"}, "action": "allow"}]}'
	start_server echo "$SVC" -l '[::]:7'
	bridle_start
	local out
	# Control: the same connect from outside the cgroup works.
	out=$(outside "$POD" "$TOOLS/peer" -s ll "fe80::1%v$$0b" 7)
	assert_eq "$(kv recv "$out")" ll "outside the cgroup: link-local echo"
	out=$(pod "$POD" "$TOOLS/peer" -s ll "fe80::1%v$$0b" 7)
	if [ "$(kv recv "$out")" != ll ]; then
		fail "in the pod: link-local destination fe80::1%v$$0b port 7 not reached (result $(kv result "$out")); bridle closed the session with: $(session_log | jq -r 'select(.event == "close") | .end' | tail -n1)"
	fi
}

# A pod without IPv6: bridle still makes it ready for IPv4 (and IPv4-mapped
# on AF_INET6 sockets); IPv6 connects never reach anything.
t_ipv4_only_pod() {
	SVC=be2e-$ID-svc
	POD=be2e-$ID-pod
	AGENT_CG=$CG/agent
	netns_add "$SVC"
	netns_add "$POD"
	ip netns exec "$POD" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1
	link_ns "$SVC" "$POD" 0 10.77.0.1/24 10.77.0.2/24
	mkdir -p "$AGENT_CG"
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	write_config "$(std_policy)"
	start_server echo "$SVC" -l 10.77.0.1:7
	bridle_start
	grep -q '"event":"ipv6_unavailable"' "$BRIDLE_LOG" || fail "no ipv6_unavailable event"
	local out
	out=$(pod "$POD" "$TOOLS/peer" -s v4 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" v4 "IPv4 in an IPv4-only pod"
	out=$(pod "$POD" "$TOOLS/peer" -6 -s mapped 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" mapped "IPv4-mapped in an IPv4-only pod"
	out=$(pod "$POD" "$TOOLS/peer" -s v6 fd77::1 7)
	assert_no_match "$(kv connect "$out")" '^OK$' "IPv6 connect in an IPv4-only pod"
	assert_eq "$(lines "$W/echo.log")" 2 "server connections"
}

# TCP Fast Open: sendto(MSG_FASTOPEN) and TCP_FASTOPEN_CONNECT go through
# the same hooks: allowed data is echoed, denied never reaches the server.
t_tcp_fastopen() {
	setup_std
	ip netns exec "$POD" sysctl -qw net.ipv4.tcp_fastopen=3 || fail "sysctl tcp_fastopen in pod"
	ip netns exec "$SVC" sysctl -qw net.ipv4.tcp_fastopen=3 || fail "sysctl tcp_fastopen in svc"
	start_server echo "$SVC" -F -l 10.77.0.1:7 -l '[fd77::1]:7'
	start_server secret "$SVC" -F -l 10.77.0.1:9
	bridle_start
	local out i
	# Twice: the second connect may carry a cookie and data in the SYN.
	for i in 1 2; do
		out=$(pod "$POD" "$TOOLS/peer" -F -s "tfo-$i" 10.77.0.1 7)
		assert_eq "$(kv connect "$out")" OK "TFO $i: sendto(MSG_FASTOPEN)"
		assert_eq "$(kv peer "$out")" 10.77.0.1:7 "TFO $i: getpeername"
		assert_eq "$(kv recv "$out")" "tfo-$i" "TFO $i: echo"
	done
	out=$(pod "$POD" "$TOOLS/peer" -F -s tfo6 fd77::1 7)
	assert_eq "$(kv recv "$out")" tfo6 "TFO IPv6: echo"
	out=$(pod "$POD" "$TOOLS/peer" -C -s tfo-connect 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" tfo-connect "TCP_FASTOPEN_CONNECT: echo"
	for i in 1 2; do
		out=$(pod "$POD" "$TOOLS/peer" -F -s "secret-$i" 10.77.0.1 9)
		assert_eq "$(kv recv_bytes "$out")" 0 "TFO denied $i: nothing received"
		assert_no_match "$(kv result "$out")" '^OK$' "TFO denied $i: result"
	done
	out=$(pod "$POD" "$TOOLS/peer" -C -s secret-c 10.77.0.1 9)
	assert_no_match "$(kv result "$out")" '^OK$' "TCP_FASTOPEN_CONNECT denied: result"
	sleep 0.2
	assert_eq "$(lines "$W/secret.log")" 0 "secret server connections after TFO"
	assert_eq "$(lines "$W/echo.log")" 4 "echo server connections after TFO"
}

e2e_main "$@"
