#!/bin/bash
source /work/main/tests/e2e/lib.sh
source /work/main/tests/e2e/pg.sh
PGRAW=$E2E_DIR/pgraw.py
rec_ctl() { "$BRIDLE" "$@" --dir "$W/rec" --key-file "$W/rec.key"; }
t_explore() {
	pg_setup
	mkdir -p "$W/rec"
	mount -t tmpfs -o size=256k,mode=0700 be2e-rec "$W/rec" || fail mount
	trap 'rc=$?; kill $BRIDLE_PID; sleep 0.5; umount -l $W/rec; (exit $rc); case_cleanup' EXIT
	bridle_start
	big=$(head -c 6000 /dev/urandom | base64 -w0)
	spawn "psycopg2 session" "$AGENT_CG" "$POD" setsid -w env PGPASSFILE="$PG_NOPASSFILE" \
		PGSSLMODE=disable /usr/bin/python3 "$PGRAW" --psycopg 10.77.0.1 5432 'autocommit on' \
		"sql select 'before-full'" "touch $W/s1" "waitfile $W/full" \
		"sql insert into audit (msg) values ('marker-full-1 $big')" \
		"sql insert into audit (msg) values ('marker-full-2 $big')" \
		"sql insert into audit (msg) values ('marker-full-3 $big')" \
		"sql select 'marker-after'" "touch $W/done" >"$W/session.out" 2>&1
	wait_until 5 test -f "$W/s1" || fail "no s1"
	dd if=/dev/zero of="$W/rec/fill" bs=4k 2>&1 | tail -1 >&2
	df -k "$W/rec" >&2
	touch "$W/full"
	wait_until 5 test -f "$W/done" || fail "no done"
	cut -c1-200 "$W/session.out" >&2
	status_json | jq .recording >&2
	pod_psql -c "select 'marker-new'" >&2
	ls -la "$W/rec" >&2
	rec_ctl verify "$W/rec" >&2; echo "verify rc=$?" >&2
	/usr/bin/python3 /work/main/tests/e2e/recfile.py "$W/rec.key" "$W"/rec/*.brec | cut -c1-200 >&2
	grep -c marker-full "$W/pg.log" >&2
	pg_sql "select count(*) from audit" >&2
	tail -5 $BRIDLE_LOG >&2
}
e2e_main "$@"
