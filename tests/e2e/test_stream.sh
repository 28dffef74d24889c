#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The relay: half-close both ways, idle and connect timeouts, upstream
# errors, and a large transfer checked byte for byte.
source "$(dirname "$0")/lib.sh"

# Allow all of 10.77.0.0/24 and fd77::/64 for the pod.
open_policy() {
	cat <<'EOF'
{
  "default": "deny",
  "targets": [
    {"name": "svc-net", "address": "10.77.0.0/24"},
    {"name": "svc-net6", "address": "fd77::/64"}
  ],
  "rules": [
    {"name": "pod-to-svc", "when": {"workload": {"name": "agent-a"}, "target": ["svc-net", "svc-net6"]}, "action": "allow"}
  ]
}
EOF
}

setup_open() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD"
	write_config "$(open_policy)" "${1:-{\}}"
}

# The client sends, shuts down its write side, and still gets the reply
# the server sends only after it read EOF.
t_half_close() {
	setup_open
	start_server eof "$SVC" -m eof -g "R:" -l 10.77.0.1:7 -l '[fd77::1]:7'
	bridle_start
	local out
	out=$(pod "$POD" "$TOOLS/peer" -s abcdef 10.77.0.1 7)
	assert_eq "$(kv recv "$out")" 'R:got 6 bytes\n' "peer: reply after the half-close"
	assert_eq "$(kv result "$out")" OK "peer: result"
	out=$(pod "$POD" "$TOOLS/peer" -s abcdefgh fd77::1 7)
	assert_eq "$(kv recv "$out")" 'R:got 8 bytes\n' "peer, IPv6: reply after the half-close"
	# socat: stdin EOF -> shutdown(SHUT_WR), then waits up to -t for the reply.
	out=$(printf 'hello' | pod "$POD" socat -t5 -T10 - TCP:10.77.0.1:7 2>&1)
	assert_eq "$out" "R:got 5 bytes" "socat: reply after the half-close"
	wait_session_log '.event == "close"' 3
	assert_eq "$(session_log | jq -r 'select(.event == "close") | .end' | sort -u)" closed "close reasons"
}

# The server half-closes first (sends its reply and EOF right away); the
# client keeps sending afterwards and the server still receives it all.
t_half_close_server_first() {
	setup_open
	start_server echo "$SVC" -l 10.77.0.1:7
	bridle_start
	# socat server in the svc: writes a banner, shuts down its write side
	# (-u: one direction only), then reads everything the client sends.
	spawn "socat sink" "$CG/svc" "$SVC" socat -u TCP-LISTEN:8,bind=10.77.0.1,reuseaddr OPEN:"$W/sink.bin",creat,trunc 2>>"$W/sink.err"
	wait_until 5 sh -c "ip netns exec $SVC ss -Htln | grep -q '10.77.0.1:8 '" || fail "sink did not start"
	local out
	# The client's read side sees EOF at once (-u server never writes);
	# its data still goes through after that.
	out=$(pod "$POD" "$TOOLS/peer" -d 300 -s "late-data" 10.77.0.1 8)
	assert_eq "$(kv result "$out")" OK "client after the server's EOF"
	wait_until 3 grep -q late-data "$W/sink.bin" || fail "the server did not get the data sent after its EOF: '$(cat "$W/sink.bin")'"
}

# idle_timeout_ms: an idle session is closed by bridle and logged as
# "idle timeout"; a session with traffic more often than that is not.
t_idle_timeout() {
	setup_open '{"idle_timeout_ms": 500}'
	start_server echo "$SVC" -l 10.77.0.1:7
	bridle_start
	local out ms
	out=$(pod "$POD" "$TOOLS/peer" -k -t 5000 10.77.0.1 7)
	ms=$(kv elapsed_ms "$out")
	assert_eq "$(kv connect "$out")" OK "idle: connect"
	assert_match "$(kv result "$out")" '^(ECONNRESET|OK)$' "idle: closed by bridle (not the client timeout)"
	[ "$ms" -ge 400 ] && [ "$ms" -le 2500 ] || fail "idle: closed after $ms ms (idle_timeout_ms 500)"
	wait_session_log '.event == "close" and .end == "idle timeout"' 3
	# Traffic every 200 ms for 1.4 s keeps a session alive.
	out=$(for i in 1 2 3 4 5 6 7; do echo "line$i"; sleep 0.2; done | pod "$POD" socat -t2 -T5 - TCP:10.77.0.1:7 2>&1)
	assert_eq "$(echo "$out" | tr '\n' ' ')" "line1 line2 line3 line4 line5 line6 line7 " "busy session kept beyond the idle timeout"
	assert_eq "$(session_log | jq -r 'select(.event == "close") | .end' | tail -n1)" closed "busy session close reason"
}

# connect_timeout_ms: a destination nobody answers (no ARP reply) is given
# up after the timeout and logged; the agent sees its connection reset.
t_connect_timeout() {
	setup_open '{"connect_timeout_ms": 500}'
	bridle_start
	local out ms
	out=$(pod "$POD" "$TOOLS/peer" -s x -t 5000 10.77.0.99 7)
	ms=$(kv elapsed_ms "$out")
	assert_eq "$(kv connect "$out")" OK "connect timeout: agent's connect (to bridle)"
	assert_eq "$(kv result "$out")" ECONNRESET "connect timeout: agent sees a reset"
	[ "$ms" -ge 400 ] && [ "$ms" -le 2500 ] || fail "connect timeout: reset after $ms ms (connect_timeout_ms 500)"
	wait_session_log '.event == "close" and .original_destination == "10.77.0.99:7"' 3
	assert_eq "$(session_log | jq -r 'select(.event == "close") | .end')" "connect timeout" "close reason"
	# While connecting, `bridle sessions` shows the session as connecting.
	pod "$POD" "$TOOLS/peer" -s x -t 5000 10.77.0.98 7 >/dev/null &
	local p=$!
	wait_until 2 sh -c "'$BRIDLE' sessions --json --socket '$W/control.sock' | jq -e '.[] | select(.state == \"connecting\")'" ||
		fail "no session in state connecting"
	wait "$p"
}

# An allowed destination that refuses the connection: the agent's
# connection is reset and the error is logged.
t_upstream_refused() {
	setup_open
	bridle_start
	local out
	out=$(pod "$POD" "$TOOLS/peer" -s x 10.77.0.1 6)
	assert_eq "$(kv result "$out")" ECONNRESET "upstream refused: agent sees a reset"
	wait_session_log '.event == "close" and .original_destination == "10.77.0.1:6"' 3
	assert_match "$(session_log | jq -r 'select(.event == "close") | .end')" "connect.*(refused|Connection refused)" "close reason"
	out=$(pod "$POD" "$TOOLS/peer" -s x fd77::1 6)
	assert_eq "$(kv result "$out")" ECONNRESET "upstream refused, IPv6: agent sees a reset"
}

# A reset on one side resets the other: the destination resets -> the
# agent sees ECONNRESET; the agent aborts -> the destination sees a reset,
# not a clean end of stream.
t_reset_propagation() {
	setup_open
	start_server rst "$SVC" -m rst -g "G:" -l 10.77.0.1:8 -E "$W/rst.end"
	start_server echo "$SVC" -l 10.77.0.1:7 -E "$W/echo.end"
	bridle_start
	local out
	out=$(pod "$POD" "$TOOLS/peer" -k -s hello 10.77.0.1 8)
	assert_eq "$(kv result "$out")" ECONNRESET "destination reset: agent's result"
	wait_until 3 grep -q sent-reset "$W/rst.end" || fail "the server did not reset"
	wait_session_log '.event == "close" and .original_destination == "10.77.0.1:8"' 3
	assert_match "$(session_log | jq -r 'select(.event == "close" and .original_destination == "10.77.0.1:8") | .end')" "reset" "destination reset: close reason"

	out=$(pod "$POD" "$TOOLS/peer" -A -s abort-me 10.77.0.1 7)
	assert_eq "$(kv result "$out")" OK "agent abort: peer"
	wait_until 3 grep -q . "$W/echo.end" || fail "the echo server's connection did not end"
	assert_match "$(cat "$W/echo.end")" " (reset|ECONNRESET|EPIPE) [0-9]+$" "agent abort: the destination saw a reset ($(cat "$W/echo.end"))"
}

# A slow reader: back-pressure reaches the destination (bridle does not
# read 50 MB ahead into memory); everything arrives once the agent reads.
t_slow_reader() {
	setup_open
	start_server src "$SVC" -m source -n 52428800 -l 10.77.0.1:12 -E "$W/src.end"
	bridle_start
	local rss0 rss1 out p
	rss0=$(awk '/VmRSS/ {print $2}' "/proc/$BRIDLE_PID/status")
	"$PODEXEC" "$AGENT_CG" "$POD" "$TOOLS/peer" -D 2000 -t 10000 -o "$W/got.bin" 10.77.0.1 12 >"$W/peer.out" &
	p=$!
	sleep 1.5
	rss1=$(awk '/VmRSS/ {print $2}' "/proc/$BRIDLE_PID/status")
	grep -q sent "$W/src.end" && fail "the server sent all 50 MB while the agent did not read (no back-pressure)"
	note "bridle VmRSS ${rss0} kB before, ${rss1} kB while the agent does not read"
	[ $((rss1 - rss0)) -lt 32768 ] || fail "bridle's memory grew by $(((rss1 - rss0) / 1024)) MB while the agent did not read"
	wait "$p"
	out=$(cat "$W/peer.out")
	assert_eq "$(kv result "$out")" OK "slow reader: result"
	assert_eq "$(kv recv_bytes "$out")" 52428800 "slow reader: bytes"
	local want
	want=$("$PY" -c '
import hashlib
b = bytes(ord("a") + i % 26 for i in range(65536))
h = hashlib.sha256()
for _ in range(800): h.update(b)
print(h.hexdigest())')
	assert_eq "$(sha256sum <"$W/got.bin" | cut -d' ' -f1)" "$want" "slow reader: sha256"
	wait_until 3 grep -q sent "$W/src.end" || fail "server did not finish"
}

# Many connections at once (more than one accept batch), all open at the
# same time: every one is relayed to the right place.
t_many_concurrent() {
	setup_open
	start_server echo "$SVC" -l 10.77.0.1:7 -g "E:"
	bridle_start
	local i n=150 pids=()
	for i in $(seq $n); do
		"$PODEXEC" "$AGENT_CG" "$POD" "$TOOLS/peer" -t 10000 -d 1500 -s "c$i" 10.77.0.1 7 >"$W/c$i.out" 2>&1 &
		pids+=($!)
	done
	wait_until 10 sh -c "[ \$('$BRIDLE' status --json --socket '$W/control.sock' | jq .sessions.live) -ge $n ]" ||
		fail "only $(status_json | jq .sessions.live) of $n sessions were open at the same time"
	wait "${pids[@]}"
	local bad=0
	for i in $(seq $n); do
		[ "$(kv recv "$(cat "$W/c$i.out")")" = "E:c$i" ] || bad=$((bad + 1))
	done
	assert_eq "$bad" 0 "connections without their own echo (of $n)"
	assert_eq "$(lines "$W/echo.log")" $n "server connections"
	wait_until 3 sh -c "[ \$(jq -c 'select(.event == \"close\" and .end == \"closed\")' '$W/log/sessions.jsonl' | wc -l) = $n ]" ||
		fail "session log: $(jq -c 'select(.event == "close" and .end == "closed")' "$W/log/sessions.jsonl" | wc -l) of $n closed normally"
}

# 50 MB each way through bridle, checked with sha256 on both ends: upload
# and download with socat, then both directions at once through an echo.
t_large_transfer() {
	setup_open
	start_server echo "$SVC" -l 10.77.0.1:7
	head -c 50M /dev/urandom >"$W/data.bin"
	local sum
	sum=$(sha256sum <"$W/data.bin" | cut -d' ' -f1)
	spawn "socat upload sink" "$CG/svc" "$SVC" socat -u TCP-LISTEN:10,bind=10.77.0.1,reuseaddr CREATE:"$W/up.bin" 2>>"$W/up.err"
	spawn "socat download source" "$CG/svc" "$SVC" socat -u OPEN:"$W/data.bin" TCP-LISTEN:11,bind=10.77.0.1,reuseaddr 2>>"$W/down.err"
	wait_until 5 sh -c "ip netns exec $SVC ss -Htln | grep -q '10.77.0.1:11 '" || fail "socat servers did not start"
	wait_until 5 sh -c "ip netns exec $SVC ss -Htln | grep -q '10.77.0.1:10 '" || fail "socat servers did not start"
	bridle_start

	pod "$POD" socat -u OPEN:"$W/data.bin" TCP:10.77.0.1:10 2>&1 || fail "upload: socat failed"
	wait_until 10 sh -c "[ \$(stat -c %s '$W/up.bin') = 52428800 ]" || fail "upload: server got $(stat -c %s "$W/up.bin") bytes"
	assert_eq "$(sha256sum <"$W/up.bin" | cut -d' ' -f1)" "$sum" "upload: sha256 at the server"

	timeout 30 "$PODEXEC" "$AGENT_CG" "$POD" socat -u TCP:10.77.0.1:11 CREATE:"$W/down.bin" 2>&1 || fail "download: socat failed"
	assert_eq "$(stat -c %s "$W/down.bin")" 52428800 "download: size"
	assert_eq "$(sha256sum <"$W/down.bin" | cut -d' ' -f1)" "$sum" "download: sha256 at the client"

	# Both ways at once: the echo server sends back while the client is
	# still sending; a slow reader side exercises back-pressure.
	local out
	out=$(timeout 40 "$PODEXEC" "$AGENT_CG" "$POD" "$TOOLS/peer" -t 10000 -i "$W/data.bin" -o "$W/echo.bin" 10.77.0.1 7)
	assert_eq "$(kv result "$out")" OK "echo: result"
	assert_eq "$(kv recv_bytes "$out")" 52428800 "echo: bytes back"
	assert_eq "$(sha256sum <"$W/echo.bin" | cut -d' ' -f1)" "$sum" "echo: sha256 of what came back"

	wait_session_log '.event == "close" and .original_destination == "10.77.0.1:7"' 5
	local c
	c=$(session_log | jq -c 'select(.event == "close" and .original_destination == "10.77.0.1:7")')
	assert_eq "$(jq -r .bytes_up <<<"$c")" 52428800 "echo: bytes_up in the session log"
	assert_eq "$(jq -r .bytes_down <<<"$c")" 52428800 "echo: bytes_down in the session log"
	c=$(session_log | jq -c 'select(.event == "close" and .original_destination == "10.77.0.1:10")')
	assert_eq "$(jq -r .bytes_up <<<"$c")" 52428800 "upload: bytes_up in the session log"
	c=$(session_log | jq -c 'select(.event == "close" and .original_destination == "10.77.0.1:11")')
	assert_eq "$(jq -r .bytes_down <<<"$c")" 52428800 "download: bytes_down in the session log"
}

e2e_main "$@"
