#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Several workloads: two pods (own netns, own cgroup) whose client sockets
# use the same local port land each at its own destination, with the
# policy of its own workload.
source "$(dirname "$0")/lib.sh"

# Pod A (10.77.0.2) -> svc A (10.77.0.1, answers "A:"), pod B (10.78.0.2)
# -> svc B (10.78.0.1, answers "B:"). svc B also has 10.77.0.1: the same
# address names a different server in each pod's world.
setup_two() {
	SVC_A=be2e-$ID-sa
	SVC_B=be2e-$ID-sb
	POD_A=be2e-$ID-pa
	POD_B=be2e-$ID-pb
	CG_A=$CG/pod-a
	CG_B=$CG/pod-b
	local n
	for n in "$SVC_A" "$SVC_B" "$POD_A" "$POD_B"; do netns_add "$n"; done
	link_ns "$SVC_A" "$POD_A" 1 10.77.0.1/24 10.77.0.2/24 fd77::1/64 fd77::2/64
	link_ns "$SVC_B" "$POD_B" 2 10.78.0.1/24 10.78.0.2/24 fd78::1/64 fd78::2/64
	ip -n "$SVC_B" addr add 10.77.0.1/32 dev "v$$2a" || fail "svc B second address"
	ip -n "$POD_B" route add 10.77.0.1/32 dev "v$$2b" || fail "pod B route"
	mkdir -p "$CG_A" "$CG_B"
	add_workload agent-a "$CG_A" "$POD_A" '{"team": "a"}'
	add_workload agent-b "$CG_B" "$POD_B" '{"team": "b"}'
	write_config '{
	  "default": "deny",
	  "targets": [
	    {"name": "svc-a", "address": "10.77.0.1", "port": 7},
	    {"name": "svc-b", "address": "10.78.0.1", "port": 7},
	    {"name": "svc-b6", "address": "fd78::1", "port": 7}
	  ],
	  "rules": [
	    {"name": "team-a", "when": {"workload": {"labels": {"team": "a"}}, "target": "svc-a"}, "action": "allow"},
	    {"name": "team-b", "when": {"workload": {"name": "agent-b"}, "target": ["svc-b", "svc-b6", "svc-a"]}, "action": "allow"}
	  ]
	}' "${1:-{\}}"
	start_server a "$SVC_A" -g "A:" -l 10.77.0.1:7 -l '[fd77::1]:7'
	start_server b "$SVC_B" -g "B:" -l 10.78.0.1:7 -l 10.77.0.1:7 -l '[fd78::1]:7'
}

t_two_pods_same_port() {
	setup_two
	bridle_start
	local oa ob
	# One after the other, both from local port 40000.
	oa=$(pod_in "$CG_A" "$POD_A" "$TOOLS/peer" -b 40000 -s one 10.77.0.1 7)
	ob=$(pod_in "$CG_B" "$POD_B" "$TOOLS/peer" -b 40000 -s one 10.78.0.1 7)
	assert_eq "$(kv local "$oa")" 127.0.0.1:40000 "pod A: local port"
	assert_eq "$(kv local "$ob")" 127.0.0.1:40000 "pod B: local port"
	assert_eq "$(kv recv "$oa")" A:one "pod A reached svc A"
	assert_eq "$(kv recv "$ob")" B:one "pod B reached svc B"

	# At the same time: both sessions open together, same local port.
	pod_in "$CG_A" "$POD_A" "$TOOLS/peer" -b 40000 -d 500 -s two 10.77.0.1 7 >"$W/a.out" &
	local pa=$!
	pod_in "$CG_B" "$POD_B" "$TOOLS/peer" -b 40000 -d 500 -s two 10.78.0.1 7 >"$W/b.out" &
	local pb=$!
	wait_until 3 sh -c "[ \$('$BRIDLE' sessions --json --socket '$W/control.sock' | jq '[.[] | select(.state == \"open\")] | length') = 2 ]" ||
		fail "the two sessions were not open at the same time"
	wait "$pa" "$pb"
	assert_eq "$(kv recv "$(cat "$W/a.out")")" A:two "concurrent: pod A reached svc A"
	assert_eq "$(kv recv "$(cat "$W/b.out")")" B:two "concurrent: pod B reached svc B"

	# The same original destination 10.77.0.1:7 from both pods, same local
	# port: each pod's own 10.77.0.1.
	oa=$(pod_in "$CG_A" "$POD_A" "$TOOLS/peer" -b 40000 -s three 10.77.0.1 7)
	ob=$(pod_in "$CG_B" "$POD_B" "$TOOLS/peer" -b 40000 -s three 10.77.0.1 7)
	assert_eq "$(kv recv "$oa")" A:three "same destination: pod A reached its 10.77.0.1"
	assert_eq "$(kv recv "$ob")" B:three "same destination: pod B reached its 10.77.0.1"
	assert_eq "$(kv peer "$ob")" 10.77.0.1:7 "same destination: pod B getpeername"

	# IPv6 from B with a fixed port too.
	ob=$(pod_in "$CG_B" "$POD_B" "$TOOLS/peer" -b 40000 -s six fd78::1 7)
	assert_eq "$(kv recv "$ob")" B:six "pod B over IPv6"

	assert_eq "$(grep -c 'tcp 10.77.0.1:7 10.77.0.2:' "$W/a.log")" 3 "svc A connections (all from pod A)"
	assert_eq "$(grep -c ' 10.78.0.2:' "$W/b.log")" 3 "svc B IPv4 connections (all from pod B)"
	assert_eq "$(grep -c '10.77.0.2' "$W/b.log")" 0 "svc B connections from pod A"

	# The sessions name the right workload and rule.
	local s
	s=$(sessions_json)
	assert_eq "$(jq -r '[.[] | select(.workload == "agent-a") | .rule] | unique | join(",")' <<<"$s")" team-a "pod A sessions: rule"
	assert_eq "$(jq -r '[.[] | select(.workload == "agent-b") | .rule] | unique | join(",")' <<<"$s")" team-b "pod B sessions: rule"
	assert_eq "$(jq -r '[.[] | select(.workload == "agent-a")] | length' <<<"$s")" 3 "pod A sessions"
	assert_eq "$(jq -r '[.[] | select(.workload == "agent-b")] | length' <<<"$s")" 4 "pod B sessions"
	s=$(status_json)
	assert_eq "$(jq -r '[.workloads[] | "\(.name)=\(.accepted)"] | join(" ")' <<<"$s")" "agent-a=3 agent-b=4" "accepted per workload"
}

# Each workload gets its own policy: pod A may not reach what pod B may.
t_two_pods_policy() {
	setup_two
	bridle_start
	local out
	# Pod A has no allow rule for 10.78.0.1 (and no route: bridle's
	# upstream would fail, but the policy refuses first).
	out=$(pod_in "$CG_A" "$POD_A" "$TOOLS/peer" -s x 10.78.0.1 7)
	assert_eq "$(kv result "$out")" ECONNRESET "pod A to svc B's address: denied"
	assert_eq "$(sessions_json | jq -r 'first | "\(.workload) \(.action) \(.rule) \(.target)"')" "agent-a deny default svc-b" "pod A's denied session"
	out=$(pod_in "$CG_B" "$POD_B" "$TOOLS/peer" -s y 10.78.0.1 7)
	assert_eq "$(kv recv "$out")" B:y "pod B to svc B: allowed"
	# Stopping bridle leaves both pods closed.
	bridle_stop TERM
	out=$(pod_in "$CG_A" "$POD_A" "$TOOLS/peer" -s x 10.77.0.1 7)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "pod A after the stop"
	out=$(pod_in "$CG_B" "$POD_B" "$TOOLS/peer" -s x 10.78.0.1 7)
	assert_eq "$(kv connect "$out")" ECONNREFUSED "pod B after the stop"
}

# With several workloads, one cannot take every session slot: with
# max_sessions 4, agent-a holds at most 2 (half), and agent-b still gets in.
t_per_workload_cap() {
	setup_two '{"max_sessions": 4}'
	bridle_start
	local p out
	for p in 1 2 3; do
		"$PODEXEC" "$CG_A" "$POD_A" "$TOOLS/peer" -d 2000 -s "a$p" 10.77.0.1 7 >"$W/a$p.out" &
		BG[$!]="agent-a client $p"
	done
	wait_until 3 sh -c "[ \$('$BRIDLE' status --json --socket '$W/control.sock' | jq .sessions.live) = 2 ]" ||
		fail "agent-a did not hold two sessions"
	sleep 0.3
	assert_eq "$(status_json | jq .sessions.live)" 2 "agent-a sessions (cap 2 of 4)"
	assert_match "$(session_log | jq -r 'select(.action == "deny") | .end')" "max_sessions_per_workload" \
		"agent-a's third session: reason"
	out=$("$PODEXEC" "$CG_B" "$POD_B" "$TOOLS/peer" -s b 10.78.0.1 7)
	assert_eq "$(kv recv "$out")" "B:b" "agent-b while agent-a is at its cap"
}

e2e_main "$@"
