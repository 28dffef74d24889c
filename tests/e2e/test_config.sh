#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Configuration and policy errors: `bridle run` refuses a bad config with
# the file, the JSON path and the reason, and enrolls nothing;
# `bridle policy check` accepts good files and rejects bad ones.
source "$(dirname "$0")/lib.sh"

# run_bad CONFIG: run bridle on CONFIG; it must exit non-zero within 5 s.
# Sets OUT (its stderr) and RC.
run_bad() {
	OUT=$(timeout 5 "$BRIDLE" run --config "$1" 2>&1)
	RC=$?
	[ $RC = 124 ] && fail "bridle run kept running with the bad config $1"
	[ $RC != 0 ] || fail "bridle run exited 0 with the bad config $1: $OUT"
}

# config_with JQ_EXPR: $W/bad.json = the good config edited by JQ_EXPR.
config_with() {
	jq "$1" "$W/config.json" >"$W/bad.json" || fail "jq $1"
}

t_config_errors() {
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD" '{"app": "agent"}'
	write_config "$(std_policy)"
	local f=$W/bad.json

	config_with '.workloads[0].cgroup = "../../etc"'
	run_bad "$f"
	assert_match "$OUT" "$f" "cgroup with ..: names the file"
	assert_match "$OUT" '\$\.workloads\[0\]\.cgroup' "cgroup with ..: names the JSON path"
	assert_match "$OUT" '\.\./\.\./etc.{0,4} must (be|name)' "cgroup with ..: reason"
	assert_match "$OUT" '"event":"config_invalid"' "cgroup with ..: logged as config_invalid"
	[ -e "$PIN" ] && fail "bridle created $PIN for an invalid config"
	assert_eq "$(bpftool cgroup show "$AGENT_CG" 2>/dev/null | grep -c bridle)" 0 "programs attached for an invalid config"

	config_with 'del(.workloads[0].cgroup)'
	run_bad "$f"
	assert_match "$OUT" '\$\.workloads\[0\]\.cgroup: required key is missing' "missing cgroup"

	config_with '.workloads[0].cgroup = "/etc/passwd"'
	run_bad "$f"
	assert_match "$OUT" '\$\.workloads\[0\]\.cgroup: .*not below the cgroup2 mount' "cgroup outside the cgroup2 mount"

	config_with '.workloads += [.workloads[0]]'
	run_bad "$f"
	assert_match "$OUT" '\$\.workloads\[1\]\.name: duplicate workload name' "duplicate workload"

	config_with '.listen_port = 70000'
	run_bad "$f"
	assert_match "$OUT" '\$\.listen_port: 70000 is out of range' "listen_port out of range"

	config_with '.colour = "blue"'
	run_bad "$f"
	assert_match "$OUT" '\$\.colour: unknown key' "unknown top-level key"

	config_with '.workloads[0].labels.app = 3'
	run_bad "$f"
	assert_match "$OUT" '\$\.workloads\[0\]\.labels\.app: label values must be strings' "label value not a string"

	config_with '.dns_resolvers = ["10.77.0.0/24"]'
	run_bad "$f"
	assert_match "$OUT" '\$\.dns_resolvers\[0\]: expected an IP address' "resolver is a prefix"

	config_with '.policy.rules[1].action = "perhaps"'
	run_bad "$f"
	assert_match "$OUT" '\$\.policy\.rules\[1\]\.action: .?.?perhaps.?.? is not an action' "inline policy: bad action"

	config_with '.policy = "missing-policy.json"'
	run_bad "$f"
	assert_match "$OUT" "$W/missing-policy.json: cannot open" "policy file missing"

	printf '{"listen_port": 15001,\n "workloads": [}\n' >"$f"
	run_bad "$f"
	assert_match "$OUT" "$f:2:[0-9]+: invalid JSON" "invalid JSON: file, line and column"

	run_bad "$W/does-not-exist.json"
	assert_match "$OUT" "$W/does-not-exist.json: cannot open" "missing config file"

	# Nothing of all this left a pin directory or an attached program.
	[ -e "$PIN" ] && fail "a failed start created $PIN"
	assert_eq "$(bpftool cgroup show "$AGENT_CG" 2>/dev/null | grep -c bridle)" 0 "programs attached after the failed starts"
	# The good config does start.
	bridle_start
}

t_policy_check() {
	local out p=$W/p.json
	std_policy >"$p"
	out=$("$BRIDLE" policy check "$p" 2>&1) || fail "policy check of a good policy failed: $out"
	assert_match "$out" "OK \(policy, 5 targets, 2 rules, sha256:[0-9a-f]{16}\)" "good policy"
	out=$("$BRIDLE" policy check "$p" --json) || fail "policy check --json of a good policy failed: $out"
	assert_eq "$(jq -r '[.ok, .kind] | join(" ")' <<<"$out")" "true policy" "good policy (--json)"

	# A whole config is recognised and checked as one.
	topo_basic
	add_workload agent-a "$AGENT_CG" "$POD"
	write_config "$(std_policy)"
	out=$("$BRIDLE" policy check "$W/config.json" 2>&1) || fail "policy check of a good config failed: $out"
	assert_match "$out" "OK \(config," "good config"

	check_bad() { # JQ_EDIT PATH_REGEX REASON_REGEX WHAT
		std_policy | jq "$1" >"$p"
		out=$("$BRIDLE" policy check "$p" 2>&1) && fail "$4: policy check exited 0"
		assert_match "$out" "$p: $2" "$4 (path)"
		assert_match "$out" "$3" "$4 (reason)"
		out=$("$BRIDLE" policy check "$p" --json)
		[ $? = 1 ] || fail "$4: policy check --json exit status"
		assert_eq "$(jq -r .ok <<<"$out")" false "$4 (--json ok)"
		assert_match "$(jq -r .error <<<"$out")" "$2" "$4 (--json error)"
		assert_match "$(jq -r '.errors | join("|")' <<<"$out")" "$2" "$4 (--json errors)"
	}
	check_bad '.rules[0].colour = "red"' '\$\.rules\[0\]\.colour' 'unknown key' "unknown key in a rule"
	check_bad '.extra = 1' '\$\.extra' 'unknown key' "unknown top-level key"
	check_bad '.targets[1].address = "fd77::1/8"' '\$\.targets\[1\]\.address' 'host bits' "prefix with host bits"
	check_bad '.targets[0].protocol = "udp"' '\$\.targets\[0\]\.protocol' 'not a supported protocol' "unsupported protocol"
	check_bad '.targets[0].port = 0' '\$\.targets\[0\]\.port' 'out of range' "port 0"
	check_bad '.rules[0].when.target = ["echo", "nope"]' '\$\.rules\[0\]\.when\.target\[1\]' 'no target named "nope"' "unknown target"
	check_bad '.rules[1].name = .rules[0].name' '\$\.rules\[1\]\.name' 'duplicate rule name' "duplicate rule"
	check_bad '.rules[0].message = "hi"' '\$\.rules\[0\]\.message' 'only deny and review rules' "message on an allow rule"
	check_bad '.default = "maybe"' '\$\.default' 'not an action' "bad default"
	check_bad '.rules[0].when.workload.labels.app = [1]' '\$\.rules\[0\]\.when\.workload\.labels\.app' 'must be strings' "label value not a string"
	echo '{"default": "deny", "default": "allow"}' >"$p"
	out=$("$BRIDLE" policy check "$p" 2>&1) && fail "duplicate key accepted"
	assert_match "$out" "$p:1:[0-9]+: invalid JSON.*duplicate" "duplicate JSON key"
}

e2e_main "$@"
