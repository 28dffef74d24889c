/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The running enforcer: configuration, the current policy, BPF state, the
 * enrolled workloads with their in-namespace listeners, and the sessions.
 * One instance per process, driven by one event loop; modules that act on
 * it (enroll, session, api) take it as their first argument.
 */
#ifndef BRIDLE_ENFORCER_H
#define BRIDLE_ENFORCER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "bridle/bpf.h"
#include "bridle/config.h"
#include "bridle/loop.h"
#include "bridle/policy.h"

struct session;
struct session_summary;

struct listener {
	struct loop_watch watch;
	struct workload *wl;
};

struct workload {
	struct enforcer *e;
	const struct config_workload *cfg; /* owned by e->cfg */
	uint32_t pod_id;                   /* index + 1, as in bridle_pod_cfg */
	uint64_t cgroup_id;
	uint64_t netns_cookie;
	int netns_fd;
	struct listener listen4, listen6; /* 127.0.0.1 and ::1 */
	bool ready;
	json_t *guarded;                   /* interfaces with the egress guard */
	uint32_t link_scope;               /* the only interface, 0 if several */
	char error[256];                   /* why it is not ready */
	uint64_t accepted, refused;
};

struct enforcer {
	struct config *cfg;         /* owned; policy lives in cfg->policy */
	uint64_t policy_generation;
	struct loop *loop;
	struct bridle_bpf *bpf;
	int self_netns_fd;          /* our own netns, to return to after setns */
	struct workload *workloads; /* cfg->nworkloads entries */
	struct loop_watch control;
	struct loop_watch events;
	struct loop_watch signals;
	int session_log_fd;
	int spare_fd;               /* /dev/null, given up to refuse on EMFILE */
	uint64_t next_session_id;
	struct session *sessions;   /* live, doubly linked */
	uint32_t nsessions;
	struct session *graveyard;  /* closed this iteration, freed after it */
	struct session_summary *recent; /* ring of closed sessions */
	uint32_t nrecent, recent_head;
	bool draining;
	uint64_t drain_deadline_ms;
	uint64_t started_ms;
	uint64_t reloads, reload_failures;
};

/* enroll.c: attach, listen, mark ready; and the reverse at exit. */
int enroll_all(struct enforcer *e);
void enroll_stop_listening(struct enforcer *e);
void enroll_mark_unready(struct enforcer *e);
/* Tick: put the egress guard on interfaces that appeared in a workload. */
void enroll_rescan(void *enforcer);
/* Create a socket of @family/@type inside @w's network namespace. */
int enroll_socket_in(struct enforcer *e, struct workload *w, int family,
		     int type);

#endif
