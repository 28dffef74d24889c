#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `bridle verify` on the recording seeds of tests/fuzz/corpus/record
# (sealed with the fuzz key; a directory means its *.brec files): good files pass, a torn one is reported and
# passes, a changed byte, another key and bad arguments fail, each with
# the record where it happens. Usage: test_verify.sh BRIDLE
set -u
BRIDLE=$1
DIR=$(cd "$(dirname "$0")/../.." && pwd)/tests/fuzz/corpus/record
T=$(mktemp -d /tmp/bridle-verify-XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
check() { # WHAT COND
	if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}
printf 'fuzz-key-0123456789abcdef' >"$T/key"
printf 'another-key-0123456789abcd' >"$T/other"

out=$("$BRIDLE" verify --key-file "$T/key" "$DIR" 2>&1); rc=$?
check "every seed verifies (exit $rc)" '[ $rc = 0 ]'
check "the open one is reported as not ended" 'grep -q "03-open.brec: OK, not ended" <<<"$out"'
check "the cut one is reported as torn" 'grep -q "04-cut.brec: OK up to a torn tail" <<<"$out"'

j=$("$BRIDLE" verify --key-file "$T/key" --json "$DIR/02-two-blocks.brec"); rc=$?
check "--json: 302 records in 2 blocks, ended" \
	'[ $rc = 0 ] && [ "$(jq -r ".[0] | [.ok, .records, .blocks, .ended] | join(\" \")" <<<"$j")" = "true 302 2 true" ]'

# One byte changed in the middle of the compressed data.
cp "$DIR/02-two-blocks.brec" "$T/changed"
size=$(stat -c %s "$T/changed")
printf '\x55' | dd of="$T/changed" bs=1 seek=$((size / 3)) conv=notrunc status=none
out=$("$BRIDLE" verify --key-file "$T/key" "$T/changed" 2>&1); rc=$?
check "a changed byte fails (exit $rc)" '[ $rc = 1 ] && grep -q "FAILED after [0-9]* good records" <<<"$out"'
j=$("$BRIDLE" verify --key-file "$T/key" --json "$T/changed")
check "--json names the bad record" '[ "$(jq -r ".[0].bad_record" <<<"$j")" -gt 1 ]'

out=$("$BRIDLE" verify --key-file "$T/other" "$DIR/01-small.brec" 2>&1); rc=$?
check "another key fails at record 1 (exit $rc)" '[ $rc = 1 ] && grep -q "record 1: does not verify" <<<"$out"'

"$BRIDLE" verify "$DIR/01-small.brec" >/dev/null 2>&1; rc=$?
check "no key file: usage, exit 2" '[ $rc = 2 ]'
printf 'short' >"$T/short"
"$BRIDLE" verify --key-file "$T/short" "$DIR/01-small.brec" >/dev/null 2>&1; rc=$?
check "a key under 16 bytes is refused (exit 2)" '[ $rc = 2 ]'
out=$("$BRIDLE" verify --key-file "$T/key" "$T/nope" 2>&1); rc=$?
check "a missing file fails (exit 1)" '[ $rc = 1 ] && grep -q "cannot read" <<<"$out"'

echo "verify: $fails failed"
[ $fails = 0 ]
