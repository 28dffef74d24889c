/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The running enforcer: configuration, the current policy, BPF state, the
 * enrolled workloads, and the workers. The main thread runs the control
 * loop (signals, control socket, kernel events, interface rescans); each
 * worker thread runs its own loop with its own listeners in every workload
 * netns (SO_REUSEPORT) and its own sessions, so the data path takes no
 * lock. What workers share is read-mostly: the policy (behind a rwlock,
 * swapped on reload), the BPF maps, the session log (O_APPEND writes).
 */
#ifndef BRIDLE_ENFORCER_H
#define BRIDLE_ENFORCER_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/ssl.h>

#include "bridle/bpf.h"
#include "bridle/config.h"
#include "bridle/loop.h"
#include "bridle/policy.h"
#include "bridle/record.h"

struct session;
struct session_summary;
struct review_table;

struct worker;

/* After a file changes, wait this long for the writes to settle. */
#define RELOAD_SETTLE_MS 200

struct listener {
	struct loop_watch watch;
	struct workload *wl;
	struct worker *wk;
};

struct worker {
	struct enforcer *e;
	int id;
	pthread_t thread;
	bool started;
	struct loop *loop;
	struct loop_watch wake; /* eventfd: the main thread asks for drain */
	struct listener *listeners; /* 2 per workload: 127.0.0.1, ::1 */
	int spare_fd; /* /dev/null, given up to refuse on EMFILE */
	pthread_mutex_t lock; /* sessions and recent, for API readers */
	struct session *sessions; /* live, doubly linked */
	uint32_t nsessions;
	struct session *graveyard; /* closed this iteration, freed after it */
	struct session_summary *recent; /* ring of closed sessions */
	uint32_t nrecent, recent_head;
	bool draining;
	uint64_t drain_deadline_ms;
	bool stopped; /* loop returned; read by the main thread */
	/* Sessions with records staged and not yet written: written at
	 * the next tick (session_tick) if no request of theirs did. */
	struct session *rec_dirty;
	struct record_buf rb; /* scratch for the fields of its records */
	/* Decision-log lines of the current batch of events. */
	char declog[65536];
	size_t declog_len;
};

struct workload {
	struct enforcer *e;
	const struct config_workload *cfg; /* owned by e->cfg */
	uint32_t pod_id; /* index + 1, as in bridle_pod_cfg */
	uint64_t cgroup_id;
	uint64_t netns_cookie;
	int netns_fd;
	bool ready;
	json_t *guarded; /* interfaces with the egress guard */
	uint32_t link_scope; /* the only interface, 0 if several */
	char error[256]; /* why it is not ready */
	uint64_t accepted, refused; /* atomic: workers add */
	uint32_t live; /* atomic: open sessions, for the per-workload cap */
};

struct enforcer {
	struct config *cfg; /* owned; policy lives in cfg->policy */
	pthread_rwlock_t policy_lock; /* workers read cfg->policy under it */
	uint64_t policy_generation;
	struct loop *loop; /* the control loop, main thread */
	struct bridle_bpf *bpf;
	int self_netns_fd; /* our own netns, to return to after setns */
	struct workload *workloads; /* cfg->nworkloads entries */
	struct worker *workers; /* cfg->workers entries */
	struct loop_watch control;
	struct loop_watch events;
	struct loop_watch signals;
	struct loop_watch files; /* inotify: config and policy directories */
	uint64_t reload_at_ms; /* a file changed: reload then; 0: none */
	int session_log_fd;
	int decision_log_fd; /* decisions.jsonl: every decision */
	SSL_CTX *tls_server; /* agent-side TLS (tls.c) */
	struct recorder *recorder; /* NULL: sessions are not recorded */
	struct review_table *reviews; /* held requests and grants */
	struct webhook *webhook; /* review notifications; NULL: none */
	struct reviewer_api *reviewer_api; /* NULL: not configured */
	uint64_t next_session_id; /* atomic */
	uint32_t nsessions; /* atomic: live sessions of all workers */
	bool draining;
	uint64_t started_ms;
	uint64_t reloads, reload_failures;
};

/* enroll.c: attach, listen, mark ready; and the reverse at exit. */
int enroll_all(struct enforcer *e);
/* Close @wk's listeners (drain, exit); safe to call twice. */
void enroll_stop_listening(struct worker *wk);
void enroll_mark_unready(struct enforcer *e);
/* Tick: put the egress guard on interfaces that appeared in a workload. */
void enroll_rescan(void *enforcer);
/* Create a socket of @family/@type inside @w's network namespace. */
int enroll_socket_in(struct enforcer *e, struct workload *w, int family,
		     int type);

#endif
