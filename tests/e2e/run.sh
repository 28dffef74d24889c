#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# bridle's end-to-end tests: network namespaces and cgroups as pods, real
# servers and unmodified clients. Needs root, cgroup2, bpffs, and `make`.
#
#   tests/e2e/run.sh                      every case of every tests/e2e/test_*.sh
#   tests/e2e/run.sh FILE... [CASE...]    the named files, only the named cases
#   tests/e2e/run.sh CASE...              the named cases, wherever they are
#
# Prints one line per case, PASS or FAIL (with the reason and the tail of
# the bridle log), then "N passed, N failed", and exits non-zero if any
# case failed. Per-case output, bridle logs and session logs are kept in
# build/e2e/ (E2E_OUT).
set -u

DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$DIR/../.." && pwd)
export E2E_OUT=${E2E_OUT:-$ROOT/build/e2e}
: "${E2E_CASE_TIMEOUT:=60}"

if [ "$(id -u)" != 0 ]; then
	echo "e2e: must run as root" >&2
	exit 1
fi
for bin in "$ROOT/build/bridle" "$ROOT/build/tools/peer" "$ROOT/build/tools/sockcheck" \
	"$ROOT/build/tools/testsrv"; do
	[ -x "$bin" ] || { echo "e2e: $bin missing: run make" >&2; exit 1; }
done
for cmd in jq socat ip curl /usr/bin/python3; do
	command -v "$cmd" >/dev/null || { echo "e2e: $cmd missing: run scripts/install-deps.sh" >&2; exit 1; }
done
if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
	mount -t bpf bpf /sys/fs/bpf || { echo "e2e: cannot mount bpffs" >&2; exit 1; }
fi

files=()
cases=()
for a in "$@"; do
	if [ -f "$a" ]; then
		files+=("$a")
	elif [ -f "$DIR/$a" ]; then
		files+=("$DIR/$a")
	else
		cases+=("$a")
	fi
done
[ ${#files[@]} -gt 0 ] || files=("$DIR"/test_*.sh)

mkdir -p "$E2E_OUT"
pass=0
failed=0
failed_names=()
start_all=$(date +%s)

for f in "${files[@]}"; do
	base=$(basename "$f" .sh)
	base=${base#test_}
	for c in $(bash "$f" --list); do
		if [ ${#cases[@]} -gt 0 ]; then
			want=0
			for x in "${cases[@]}"; do
				[ "$x" = "$c" ] || [ "$x" = "$base/$c" ] && want=1
			done
			[ $want = 1 ] || continue
		fi
		name="$base/$c"
		t0=$(date +%s%N)
		timeout -k 10 "$E2E_CASE_TIMEOUT" bash "$f" --case "$c" >"$E2E_OUT/$c.out" 2>&1
		rc=$?
		# A sanitizer report from bridle fails the case, whatever it asserted.
		if [ $rc = 0 ] && grep -qE '(WARNING|ERROR): (Thread|Address|UndefinedBehavior)Sanitizer|runtime error:' \
			"$E2E_OUT/$c.bridle.log" 2>/dev/null; then
			rc=1
			echo "bridle reported a sanitizer error (see $E2E_OUT/$c.bridle.log)" >"$E2E_OUT/$c.reason"
		fi
		ms=$((($(date +%s%N) - t0) / 1000000))
		secs=$(printf '%d.%01d' $((ms / 1000)) $((ms % 1000 / 100)))
		if [ $rc = 0 ]; then
			pass=$((pass + 1))
			printf 'PASS %-40s (%ss)\n' "$name" "$secs"
		else
			failed=$((failed + 1))
			failed_names+=("$name")
			reason=$(cat "$E2E_OUT/$c.reason" 2>/dev/null)
			[ $rc = 124 ] && reason="timed out after ${E2E_CASE_TIMEOUT}s${reason:+; $reason}"
			[ -n "$reason" ] || reason="exit status $rc (see $E2E_OUT/$c.out)"
			printf 'FAIL %-40s (%ss): %s\n' "$name" "$secs" "$reason"
			if [ -s "$E2E_OUT/$c.bridle.log" ]; then
				echo "     bridle log (last 12 lines of $E2E_OUT/$c.bridle.log):"
				tail -n 12 "$E2E_OUT/$c.bridle.log" | cut -c1-400 | sed 's/^/       /'
			fi
		fi
	done
done

echo
echo "e2e: $(($(date +%s) - start_all)) s; output in $E2E_OUT"
[ $failed = 0 ] || printf 'failed: %s\n' "${failed_names[*]}"
echo "$pass passed, $failed failed"
[ $failed = 0 ] && [ $pass -gt 0 ]
