/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sessions: one per accepted agent connection. A session recovers the
 * original destination and the connecting process, asks the policy, and
 * either refuses the connection or opens the upstream socket inside the
 * workload's network namespace and relays bytes both ways with bounded
 * buffers, half-close, and connect and idle timeouts.
 */
#ifndef BRIDLE_SESSION_H
#define BRIDLE_SESSION_H

#include <jansson.h>
#include <stdint.h>

#include "bridle/enforcer.h"

/* What `bridle sessions` shows of a session once it has closed. */
struct session_summary {
	uint64_t id;
	char workload[64];
	char target[64];
	char rule[128];
	char action[8];
	char proto[12]; /* "tcp", "postgres" */
	char orig[64]; /* "10.77.0.1:7" or "[fd00::1]:7" */
	char exe[256];
	char user[128]; /* the token's subject, "" without a user */
	uint32_t pid, uid;
	uint64_t cgroup_id;
	uint64_t bytes_up, bytes_down;
	/* Protocol modules: requests decided, denied, values masked. The
	 * worker adds with relaxed atomics; readers load them so. */
	uint64_t requests, denied, masked;
	uint64_t start_wall_ms, duration_ms;
	char end_reason[96];
	/* Its recording's id ("" when not recorded), and "" or why the
	 * recording stopped. */
	char recording[48];
	char recording_error[96];
};

/* Listener callback: accept and decide every pending connection. */
void session_on_listen(struct loop_watch *w, uint32_t events);

/* Worker tick: connect and idle timeouts, drain deadline. */
void session_tick(void *worker);

/* Free the worker's sessions closed during the last batch of events. */
void session_reap(void *worker);

/* Write the worker's buffered decision-log lines (after each batch of
 * events, and at exit). */
void session_flush_decisions(struct worker *wk);

/* Close every live session of @wk (drain deadline or exit). */
void session_close_all(struct worker *wk, const char *reason);

/* Live sessions then recent ones, of all workers, newest first. */
json_t *session_list_json(struct enforcer *e);

/* Open the JSON-lines session log under cfg->log_dir. */
int session_log_open(struct enforcer *e, char *err, size_t errlen);

/* Format an address and port as "1.2.3.4:5" or "[::1]:5". */
void session_format_addr(int family, const void *addr, uint16_t port, char *buf,
			 size_t len);

#endif
