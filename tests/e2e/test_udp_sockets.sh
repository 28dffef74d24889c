#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# UDP (DNS to the configured resolvers only), socket kinds refused inside
# an enrolled cgroup (raw, packet, MPTCP), and processes outside the
# enrolled cgroup left alone.
source "$(dirname "$0")/lib.sh"

setup_std() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	write_config "$(std_policy)" "${1:-{\}}"
}

# DNS to the resolver is allowed (unconnected and connected UDP, IPv4 and
# IPv4-mapped); any other UDP destination gets EPERM and never arrives.
t_udp_dns() {
	setup_std '{"dns_resolvers": ["10.77.0.1", "fd77::1"]}'
	start_server udp "$SVC" -u 10.77.0.1:53 -u 10.77.0.1:5353 -u '[fd77::1]:53' -u '[fd77::1]:5353' -g "dns:"
	bridle_start
	local out
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-sendto 10.77.0.1 53 q1)
	assert_eq "$out" "OK reply=dns:q1" "sendto resolver:53"
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-connect 10.77.0.1 53 q2)
	assert_eq "$out" "OK reply=dns:q2" "connected UDP to resolver:53"
	out=$(pod "$POD" "$TOOLS/sockcheck" -6 udp-sendto 10.77.0.1 53 q3)
	assert_eq "$out" "OK reply=dns:q3" "IPv4-mapped sendto resolver:53"
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-sendto fd77::1 53 q4)
	assert_eq "$out" "OK reply=dns:q4" "IPv6 sendto resolver:53"
	assert_eq "$(grep -c ' 10\.77\.0\.2:' "$W/udp.log")" 3 "responder: IPv4 queries from the pod"
	assert_eq "$(grep -c 'fd77::2' "$W/udp.log")" 1 "responder: IPv6 queries from the pod"

	local before
	before=$(lines "$W/udp.log")
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-sendto 10.77.0.1 5353 bad1)
	assert_eq "$out" "EPERM sendto" "sendto resolver, other port"
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-connect 10.77.0.1 5353 bad2)
	assert_eq "$out" "EPERM connect" "connected UDP to resolver, other port"
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-sendto 10.77.0.3 53 bad3)
	assert_eq "$out" "EPERM sendto" "sendto a non-resolver:53"
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-connect 10.77.0.3 53 bad4)
	assert_eq "$out" "EPERM connect" "connect a non-resolver:53"
	out=$(pod "$POD" "$TOOLS/sockcheck" -6 udp-sendto 10.77.0.1 5353 bad5)
	assert_eq "$out" "EPERM sendto" "IPv4-mapped sendto, other port"
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-sendto fd77::1 5353 bad6)
	assert_eq "$out" "EPERM sendto" "IPv6 sendto, other port"
	# Connected to the resolver, then sendto() somewhere else.
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-connected-sendto 10.77.0.1 53 10.77.0.1 5353 bad7)
	assert_eq "$out" "EPERM sendto" "connected to the resolver, sendto another port"
	sleep 0.2
	assert_eq "$(lines "$W/udp.log")" "$before" "responder datagrams after the refused ones"
	# The kernel side counted and reported them.
	local s
	s=$(status_json)
	assert_eq "$(jq -r '.kernel_counters.udp_denied' <<<"$s")" 7 "kernel counter udp_denied"
	wait_until 3 grep -q '"reason":"UDP to a destination that is not a DNS resolver"' "$BRIDLE_LOG" ||
		fail "no kernel_refused UDP event in the log"
	# A real client: socat over UDP.
	out=$(echo sq | pod "$POD" socat -T1 - UDP:10.77.0.1:53 2>&1)
	assert_eq "$out" "dns:sq" "socat UDP to the resolver"
	out=$(echo sq | pod "$POD" socat -T1 - UDP:10.77.0.1:5353 2>&1)
	assert_match "$out" "Operation not permitted" "socat UDP elsewhere"
}

# dns_resolvers changes on reload: the new resolver is reachable, the old
# one is not any more.
t_udp_resolver_reload() {
	setup_std
	ip -n "$SVC" addr add 10.77.0.3/24 dev "v$$0a" || fail "second svc address"
	start_server udp "$SVC" -u 10.77.0.1:53 -u 10.77.0.3:53 -g "dns:"
	bridle_start
	local out
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-sendto 10.77.0.1 53 a)
	assert_eq "$out" "OK reply=dns:a" "before the reload: 10.77.0.1"
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-sendto 10.77.0.3 53 b)
	assert_eq "$out" "EPERM sendto" "before the reload: 10.77.0.3"
	jq '.dns_resolvers = ["10.77.0.3"]' "$W/config.json" >"$W/c2.json" && mv "$W/c2.json" "$W/config.json"
	out=$(ctl reload 2>&1) || fail "reload: $out"
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-sendto 10.77.0.3 53 c)
	assert_eq "$out" "OK reply=dns:c" "after the reload: 10.77.0.3"
	out=$(pod "$POD" "$TOOLS/sockcheck" udp-sendto 10.77.0.1 53 d)
	assert_eq "$out" "EPERM sendto" "after the reload: 10.77.0.1"
	assert_eq "$(grep -c '^udp 10.77.0.1:53' "$W/udp.log")" 1 "datagrams at 10.77.0.1"
	assert_eq "$(grep -c '^udp 10.77.0.3:53' "$W/udp.log")" 1 "datagrams at 10.77.0.3"
}

# A real resolver client: glibc's getaddrinfo in the pod asks a small DNS
# server on 10.77.0.1:53, then socat and curl connect to the name.
t_udp_dns_getaddrinfo() {
	setup_std
	cat >"$W/dns.py" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
log = open(sys.argv[2], "a", buffering=1)
open(sys.argv[2] + ".ready", "w").close()
while True:
    q, peer = s.recvfrom(2048)
    i = 12
    while q[i]:
        i += 1 + q[i]
    qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
    name = q[13:i]
    log.write("udp %s:%d qtype=%d\n" % (peer[0], peer[1], qtype))
    ans, an = b"", 0
    if qtype == 1:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(sys.argv[3])
        an = 1
    s.sendto(struct.pack("!HHHHHH", struct.unpack("!H", q[:2])[0], 0x8180, 1, an, 0, 0) + q[12:i + 5] + ans, peer)
EOF
	mkdir -p "/etc/netns/$POD"
	printf 'nameserver 10.77.0.1\noptions timeout:1 attempts:2\n' >"/etc/netns/$POD/resolv.conf"
	spawn dns "$CG/svc" "$SVC" "$PY" "$W/dns.py" 10.77.0.1 "$W/dns.log" 10.77.0.1 2>>"$W/dns.err"
	wait_until 5 test -f "$W/dns.log.ready" || fail "DNS server did not start: $(cat "$W/dns.err")"
	start_server echo "$SVC" -l 10.77.0.1:7 -g "E:"
	bridle_start
	local out
	out=$(pod "$POD" getent ahostsv4 echo.bridle.test | head -n1)
	assert_match "$out" '^10\.77\.0\.1 ' "getent ahostsv4 through the resolver"
	assert_match "$(cat "$W/dns.log")" 'udp 10\.77\.0\.2:[0-9]+ qtype=1' "DNS server saw the pod's query"
	out=$(echo by-name | pod "$POD" socat -t2 -T5 - TCP4:echo.bridle.test:7 2>&1)
	assert_eq "$out" "E:by-name" "socat to a name resolved in the pod"
	assert_eq "$(sessions_json | jq -r 'first | .original_destination')" 10.77.0.1:7 "session for the resolved name"
}

# raw, packet and MPTCP sockets are refused inside the pod with EPERM.
t_sockets_refused() {
	setup_std
	# Let ping sockets be created at all, so that bridle is what refuses.
	ip netns exec "$POD" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
	bridle_start
	local k out
	for k in raw raw6 ping mptcp mptcp6; do
		out=$(pod "$POD" "$TOOLS/sockcheck" "$k")
		assert_eq "$out" "EPERM $k" "in the pod: $k socket"
	done
	for k in tcp udp; do
		out=$(pod "$POD" "$TOOLS/sockcheck" "$k")
		assert_eq "$out" "OK $k" "in the pod: $k socket"
	done
	assert_match "$(status_json | jq -r .kernel_counters.socket_denied)" '^[1-9]' "kernel counter socket_denied"
	wait_until 3 grep -q '"reason":"socket type not allowed"' "$BRIDLE_LOG" ||
		fail "no kernel_refused socket event in the log"
}

# AF_PACKET sockets could send any frame out of the pod's interface,
# around the enforcer. Where the lsm_cgroup program loads they are refused
# at creation (EPERM); where it cannot (this machine's kernel refuses BPF
# LSM programs), the egress guard on the pod's interfaces drops their
# frames. Either way, a hand-made UDP datagram to a port that UDP sockets
# may not reach must never arrive at the server.
t_packet_socket_refused() {
	setup_std
	start_server udp "$SVC" -u 10.77.0.1:5353 -g "u:"
	bridle_start
	local k out mac lsm
	lsm=$(status_json | jq -r .non_inet_sockets_refused)
	assert_match "$(status_json | jq -r '.workloads[0].guarded_interfaces | join(",")')" "v$$0b" \
		"egress guard on the pod's interface"
	for k in packet packet-dgram inet-packet; do
		out=$(pod "$POD" "$TOOLS/sockcheck" "$k")
		if [ "$lsm" = true ]; then
			assert_eq "$out" "EPERM $k" "in the pod: $k socket"
		fi
	done
	mac=$(ip -n "$SVC" -j link show "v$$0a" | jq -r '.[0].address')
	pod "$POD" "$TOOLS/sockcheck" packet-udp "v$$0b" "$mac" 10.77.0.2 10.77.0.1 5353 bypass >/dev/null
	sleep 0.3
	if grep -q 'udp 10.77.0.1:5353 10.77.0.2:40000' "$W/udp.log"; then
		fail "a UDP datagram sent through a packet socket in the pod reached 10.77.0.1:5353 (lsm=$lsm)"
	fi
	if [ "$lsm" != true ]; then
		assert_match "$(status_json | jq -r .kernel_counters.frames_dropped)" '^[1-9]' \
			"kernel counter frames_dropped"
		wait_until 3 grep -q '"reason":"frame from a non-inet socket dropped on egress"' "$BRIDLE_LOG" ||
			fail "no frame-dropped event in the log"
	fi
	# The same frame from a process outside the cgroup is not ours to stop.
	outside "$POD" "$TOOLS/sockcheck" packet-udp "v$$0b" "$mac" 10.77.0.2 10.77.0.1 5353 bypass >/dev/null
	wait_until 3 grep -q 'udp 10.77.0.1:5353 10.77.0.2:40000' "$W/udp.log" ||
		fail "a packet-socket datagram from outside the cgroup did not arrive (the guard must only stop enrolled cgroups)"
}

# io_uring: IORING_OP_CONNECT, IORING_OP_SOCKET and IORING_OP_SENDMSG go
# through the same hooks as the syscalls.
t_io_uring() {
	setup_std
	start_server echo "$SVC" -l 10.77.0.1:7 -l 10.77.0.1:9 -g "E:"
	start_server udp "$SVC" -u 10.77.0.1:53 -u 10.77.0.1:5353 -g "u:"
	bridle_start
	local out
	out=$(outside "$POD" "$TOOLS/uring" socket tcp)
	[ "$out" = "socket=OK" ] || fail "io_uring not usable here (outside the pod: $out)"
	out=$(pod "$POD" "$TOOLS/uring" connect 10.77.0.1 7 ring)
	assert_eq "$(kv connect "$out")" OK "io_uring connect: allowed"
	assert_eq "$(kv peer "$out")" 10.77.0.1:7 "io_uring connect: getpeername"
	assert_eq "$(kv recv "$out")" E:ring "io_uring connect: echo"
	out=$(pod "$POD" "$TOOLS/uring" connect 10.77.0.1 9 ring)
	assert_eq "$(kv result "$out")" ECONNRESET "io_uring connect: denied"
	out=$(pod "$POD" "$TOOLS/uring" connect 127.0.0.1 15001 ring)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "io_uring connect: the listener"
	assert_eq "$(grep -c ':9 ' "$W/echo.log")" 0 "denied server connections"
	assert_eq "$(sessions_json | jq -r '[.[] | .process.exe] | unique | join(",")')" "$TOOLS/uring" "io_uring sessions: process"
	out=$(pod "$POD" "$TOOLS/uring" socket raw)
	assert_eq "$out" "socket=EPERM" "IORING_OP_SOCKET raw"
	out=$(pod "$POD" "$TOOLS/uring" socket tcp)
	assert_eq "$out" "socket=OK" "IORING_OP_SOCKET tcp"
	out=$(pod "$POD" "$TOOLS/uring" udp-sendmsg 10.77.0.1 53 q)
	assert_eq "$(kv reply "$out")" "u:q" "IORING_OP_SENDMSG to the resolver"
	out=$(pod "$POD" "$TOOLS/uring" udp-sendmsg 10.77.0.1 5353 q)
	assert_eq "$(kv send "$out")" EPERM "IORING_OP_SENDMSG elsewhere"
	sleep 0.2
	assert_eq "$(grep -c '5353' "$W/udp.log")" 0 "datagrams at 5353"
}

# Processes outside the enrolled cgroup, in the same network namespace, are
# untouched: every socket kind works and TCP goes directly, not via bridle.
t_outside_untouched() {
	setup_std
	start_server echo "$SVC" -l 10.77.0.1:7 -l 10.77.0.1:9
	start_server udp "$SVC" -u 10.77.0.1:5353 -g "u:"
	bridle_start
	local k out n0 n1
	ip netns exec "$POD" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
	for k in raw raw6 ping packet packet-dgram inet-packet mptcp mptcp6 tcp udp; do
		out=$(outside "$POD" "$TOOLS/sockcheck" "$k")
		assert_eq "$out" "OK $k" "outside the cgroup: $k socket"
	done
	out=$(outside "$POD" "$TOOLS/sockcheck" udp-sendto 10.77.0.1 5353 free)
	assert_eq "$out" "OK reply=u:free" "outside the cgroup: UDP anywhere"
	n0=$(sessions_json | jq length)
	# Port 9 is denied by policy for the pod, but this is not the pod.
	out=$(outside "$POD" "$TOOLS/peer" -s direct 10.77.0.1 9)
	assert_eq "$(kv recv "$out")" direct "outside the cgroup: TCP to a policy-denied port"
	assert_match "$(kv local "$out")" '^10\.77\.0\.2:' "outside the cgroup: local address (not redirected to loopback)"
	out=$(outside "$POD" socat -t2 -T5 - TCP:10.77.0.1:7 <<<"socat-direct" 2>&1)
	assert_eq "$out" socat-direct "outside the cgroup: socat"
	n1=$(sessions_json | jq length)
	assert_eq "$n1" "$n0" "bridle sessions after the outside connects"
	assert_eq "$(status_json | jq -r '.workloads[0].accepted')" 0 "accepted connections"
	# The same from the pod goes through bridle.
	out=$(pod "$POD" "$TOOLS/peer" -s via 10.77.0.1 7)
	assert_eq "$(kv local "$out" | cut -d: -f1)" 127.0.0.1 "in the pod: redirected to the local listener"
	assert_eq "$(sessions_json | jq length)" $((n0 + 1)) "bridle sessions after the pod's connect"
}

# An interface added to the pod after enrollment (a second network, say) is
# guarded within a few seconds: a packet-socket datagram sent through it
# from the pod never arrives.
t_new_interface_guarded() {
	setup_std
	bridle_start
	link_ns "$SVC" "$POD" 1 10.78.0.1/24 10.78.0.2/24
	start_server udp "$SVC" -u 10.78.0.1:5353 -g "u:"
	wait_until 5 sh -c "$BRIDLE status --json --socket $W/control.sock | jq -e '.workloads[0].guarded_interfaces | index(\"v$$1b\")' >/dev/null" ||
		fail "the new interface v$$1b was not guarded: $(status_json | jq -c .workloads[0].guarded_interfaces)"
	local mac
	mac=$(ip -n "$SVC" -j link show "v$$1a" | jq -r '.[0].address')
	pod "$POD" "$TOOLS/sockcheck" packet-udp "v$$1b" "$mac" 10.78.0.2 10.78.0.1 5353 bypass >/dev/null
	sleep 0.3
	if grep -q 'udp 10.78.0.1:5353' "$W/udp.log"; then
		fail "a packet-socket datagram through the new interface reached the server"
	fi
	outside "$POD" "$TOOLS/sockcheck" packet-udp "v$$1b" "$mac" 10.78.0.2 10.78.0.1 5353 bypass >/dev/null
	wait_until 3 grep -q 'udp 10.78.0.1:5353' "$W/udp.log" ||
		fail "control: the datagram from outside the cgroup did not arrive"
}

# Source routing: the sendmsg hook sees the address the caller names (a
# resolver), but an IPv4 loose source route (here an IP_RETOPTS control
# message, which no setsockopt hook sees) sends the datagram
# to its first hop instead. The egress program drops any packet of the
# workload with IP options: sendto fails with EPERM, and a capture on the
# far end of the pod's link sees no such packet. From outside the cgroup
# the same packet does leave (the capture works).
t_source_route_dropped() {
	setup_std '{"dns_resolvers": ["10.77.0.53"]}'
	bridle_start
	local send='
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
opt = b"\x83\x07\x04" + socket.inet_aton("10.77.0.1") + b"\x00"
try:
    # Per send, as a control message (IP_RETOPTS): setsockopt(IP_OPTIONS)
    # is refused by its own hook, this path only on egress.
    s.sendmsg([b"bypass"], [(socket.IPPROTO_IP, 7, opt)], 0,
              ("10.77.0.53", 53)); print("sent")
except OSError as e:
    print("errno", e.errno)'
	local capture='
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0)); s.settimeout(0.2)
open(sys.argv[2], "w").close()
n, end = 0, time.time() + 1.5
while time.time() < end:
    try:
        f = s.recv(2048)
    except socket.timeout:
        continue
    if f[12:14] == b"\x08\x00" and (f[14] & 0x0f) > 5:
        n += 1
print(n)'
	local out n
	ip netns exec "$SVC" /usr/bin/python3 -c "$capture" "v$$0a" "$W/cap.ready" >"$W/cap1" &
	local cap=$!
	wait_until 3 test -f "$W/cap.ready" || fail "capture did not start"
	out=$(pod "$POD" /usr/bin/python3 -c "$send")
	wait "$cap"
	assert_eq "$out" "errno 1" "in the pod: source-routed UDP to the resolver"
	assert_eq "$(cat "$W/cap1")" 0 "source-routed packets seen on the far side"
	assert_match "$(status_json | jq -r .kernel_counters.ip_packets_dropped)" '^[1-9]' \
		"kernel counter ip_packets_dropped"
	rm -f "$W/cap.ready"
	ip netns exec "$SVC" /usr/bin/python3 -c "$capture" "v$$0a" "$W/cap.ready" >"$W/cap2" &
	cap=$!
	wait_until 3 test -f "$W/cap.ready" || fail "capture did not start"
	out=$(outside "$POD" /usr/bin/python3 -c "$send")
	wait "$cap"
	assert_eq "$out" sent "outside the cgroup: source-routed UDP"
	n=$(cat "$W/cap2")
	[ "$n" -ge 1 ] || fail "control: the capture did not see the packet from outside the cgroup ($n)"
}

# Socket options that lead around the other programs are refused in the
# pod (source routes, a packet socket's qdisc bypass, AF_XDP rings), and
# allowed outside the cgroup.
t_sockopts_refused() {
	setup_std
	bridle_start
	local probe='
import socket
def t(name, f):
    try:
        f(); print(name, "OK")
    except OSError as e:
        print(name, "errno", e.errno)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t("ip_options", lambda: u.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"\x83\x07\x04\x0a\x4d\x00\x01\x00"))
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
t("ipv6_rthdr", lambda: u6.setsockopt(socket.IPPROTO_IPV6, 57, b"\x11\x02\x04\x01\x00\x00\x00\x00" + bytes(16)))
p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
t("qdisc_bypass", lambda: p.setsockopt(263, 20, 1))
t("tcp_nodelay", lambda: socket.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1))'
	local out
	out=$(pod "$POD" /usr/bin/python3 -c "$probe")
	assert_match "$out" "ip_options errno 1" "in the pod: IP_OPTIONS"
	assert_match "$out" "ipv6_rthdr errno 1" "in the pod: IPV6_RTHDR"
	assert_match "$out" "qdisc_bypass errno 1" "in the pod: PACKET_QDISC_BYPASS"
	assert_match "$out" "tcp_nodelay OK" "in the pod: an ordinary option"
	out=$(outside "$POD" /usr/bin/python3 -c "$probe")
	assert_match "$out" "ip_options OK" "outside: IP_OPTIONS"
	assert_match "$out" "qdisc_bypass OK" "outside: PACKET_QDISC_BYPASS"
	wait_until 3 grep -q '"reason":"socket option refused' "$BRIDLE_LOG" ||
		fail "no sockopt event in the log"
}

e2e_main "$@"
