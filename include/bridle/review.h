/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Just-in-time approvals: the reviews a `review` rule opens when it holds
 * a request, their outcome (approved, rejected, expired, or cancelled
 * when the session ended first), and the grants an approval may leave
 * ("requests like this, from this identity to this target, for N
 * minutes"). One table per enforcer, behind a mutex: workers open and
 * poll reviews, the control socket lists and decides them.
 */
#ifndef BRIDLE_REVIEW_H
#define BRIDLE_REVIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridle/policy.h"

struct review_table;

enum review_state {
	REVIEW_PENDING,
	REVIEW_APPROVED,
	REVIEW_REJECTED,
	REVIEW_EXPIRED,
	REVIEW_CANCELLED, /* the session ended first */
};

/* What a review is about (copied). */
struct review_request {
	uint64_t session;
	const char *workload, *target, *rule, *message;
	const char *user; /* the token's subject, or NULL */
	const char *exe;
	uint32_t pid, uid;
	const char *summary; /* "UPDATE on public.orders" */
	const char *statement; /* literals replaced */
	uint64_t fingerprint; /* of the statement, for grants */
	uint32_t timeout_s;
	const struct policy_approvers *approvers; /* NULL: anyone, once */
};

/* A decided review, as its session learns it. */
struct review_outcome {
	enum review_state state;
	char by[128];
	char reason[256];
	uint64_t grant; /* 0: approved once */
};

struct review_table *review_table_new(void);
void review_table_free(struct review_table *t);

/* Open a review; returns its id (1, 2, …). @now_ms: wall clock. */
uint64_t review_open(struct review_table *t, const struct review_request *r,
		     int64_t now_ms);

/* The state of review @id now (a pending one past its time expires
 * here). Fills @out when it is decided. */
enum review_state review_poll(struct review_table *t, uint64_t id,
			      int64_t now_ms, struct review_outcome *out);

/* The session holding @id ended. */
void review_cancel(struct review_table *t, uint64_t id, int64_t now_ms);

/* Who decides: @by as recorded ("cli:alice"), @name and @groups as the
 * rule's approvers name them. */
struct review_decider {
	const char *by, *name;
	const char *const *groups;
	size_t ngroups;
};

/*
 * Approve (with @for_ms > 0: and grant requests like it for that long)
 * or reject review @id, for @reason. An approval counts once per
 * approver; the review is approved once the rule's minimum is reached.
 * Returns 0 when decided, 1 when the approval was counted and more are
 * needed (@err says how many), or -1 with @err (unknown id, already
 * decided, not an approver of this rule, approved by this one already).
 */
int review_decide(struct review_table *t, uint64_t id, bool approve,
		  const struct review_decider *who, const char *reason,
		  int64_t for_ms, int64_t now_ms, char *err, size_t errlen);

/* The requester withdrew review @id (rejected by @who, whatever the
 * rule's approvers). */
void review_cancel_by(struct review_table *t, uint64_t id,
		      const struct review_decider *who, const char *reason,
		      int64_t now_ms);

/* An active grant for this request (the same statement fingerprint,
 * workload, target, user and rule), or 0. Counts its use. */
uint64_t review_grant_match(struct review_table *t, uint64_t fingerprint,
			    const char *workload, const char *target,
			    const char *user, const char *rule, int64_t now_ms);

/* Revoke grant @id. Returns 0, or -1 with @err. */
int review_grant_revoke(struct review_table *t, uint64_t id, const char *by,
			int64_t now_ms, char *err, size_t errlen);

/* Review @id as JSON, or NULL. */
json_t *review_get_json(struct review_table *t, uint64_t id, int64_t now_ms);

/* Reviews (pending first, then the latest decided) and grants. */
json_t *review_list_json(struct review_table *t, bool all, int64_t now_ms);
json_t *review_grants_json(struct review_table *t, int64_t now_ms);

const char *review_state_name(enum review_state s);

#endif
