// SPDX-License-Identifier: Apache-2.0
/*
 * The review table (include/bridle/review.h). Reviews and grants live in
 * two lists under one mutex; nothing here blocks but the mutex. Decided
 * reviews and ended grants are kept for listing, the oldest dropped past
 * KEEP_DONE.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/log.h"
#include "bridle/review.h"

#define KEEP_DONE 256

struct review {
	struct review *next;
	uint64_t id;
	struct review_outcome out;
	uint64_t session, fingerprint;
	char *workload, *target, *rule, *message, *user, *exe;
	char *summary, *statement;
	uint32_t pid, uid;
	int64_t created_ms, expires_ms, decided_ms;
};

struct grant {
	struct grant *next;
	uint64_t id, review, fingerprint, uses;
	char *workload, *target, *user, *summary, *statement;
	char by[128], reason[256];
	int64_t created_ms, expires_ms;
	bool revoked;
	char revoked_by[128];
};

struct review_table {
	pthread_mutex_t lock;
	struct review *reviews; /* newest first */
	struct grant *grants; /* newest first */
	uint64_t next_review, next_grant;
};

const char *review_state_name(enum review_state s)
{
	switch (s) {
	case REVIEW_PENDING:
		return "pending";
	case REVIEW_APPROVED:
		return "approved";
	case REVIEW_REJECTED:
		return "rejected";
	case REVIEW_EXPIRED:
		return "expired";
	case REVIEW_CANCELLED:
		return "cancelled";
	}
	return "?";
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void review_free(struct review *r)
{
	free(r->workload);
	free(r->target);
	free(r->rule);
	free(r->message);
	free(r->user);
	free(r->exe);
	free(r->summary);
	free(r->statement);
	free(r);
}

static void grant_free(struct grant *g)
{
	free(g->workload);
	free(g->target);
	free(g->user);
	free(g->summary);
	free(g->statement);
	free(g);
}

struct review_table *review_table_new(void)
{
	struct review_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void review_table_free(struct review_table *t)
{
	if (!t)
		return;
	while (t->reviews) {
		struct review *r = t->reviews;

		t->reviews = r->next;
		review_free(r);
	}
	while (t->grants) {
		struct grant *g = t->grants;

		t->grants = g->next;
		grant_free(g);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* A pending review past its time expires (caller holds the lock). */
static void expire(struct review *r, int64_t now_ms)
{
	if (r->out.state == REVIEW_PENDING && now_ms >= r->expires_ms) {
		r->out.state = REVIEW_EXPIRED;
		r->decided_ms = now_ms;
		snprintf(r->out.reason, sizeof(r->out.reason),
			 "no decision within %lld s",
			 (long long)(r->expires_ms - r->created_ms) / 1000);
	}
}

/* Drop decided reviews past KEEP_DONE (caller holds the lock). */
static void trim(struct review_table *t)
{
	size_t done = 0;

	for (struct review **pp = &t->reviews; *pp;) {
		struct review *r = *pp;

		if (r->out.state != REVIEW_PENDING && ++done > KEEP_DONE) {
			*pp = r->next;
			review_free(r);
		} else {
			pp = &r->next;
		}
	}
}

uint64_t review_open(struct review_table *t, const struct review_request *q,
		     int64_t now_ms)
{
	struct review *r = calloc(1, sizeof(*r));
	uint64_t id;

	if (!r)
		return 0;
	r->session = q->session;
	r->fingerprint = q->fingerprint;
	r->workload = dup_or_null(q->workload);
	r->target = dup_or_null(q->target);
	r->rule = dup_or_null(q->rule);
	r->message = dup_or_null(q->message);
	r->user = dup_or_null(q->user);
	r->exe = dup_or_null(q->exe);
	r->summary = dup_or_null(q->summary);
	r->statement = dup_or_null(q->statement);
	r->pid = q->pid;
	r->uid = q->uid;
	r->created_ms = now_ms;
	r->expires_ms =
		now_ms + (int64_t)(q->timeout_s ? q->timeout_s : 300) * 1000;
	pthread_mutex_lock(&t->lock);
	id = r->id = ++t->next_review;
	r->next = t->reviews;
	t->reviews = r;
	trim(t);
	pthread_mutex_unlock(&t->lock);
	return id;
}

static struct review *find(struct review_table *t, uint64_t id)
{
	for (struct review *r = t->reviews; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

enum review_state review_poll(struct review_table *t, uint64_t id,
			      int64_t now_ms, struct review_outcome *out)
{
	enum review_state s = REVIEW_CANCELLED;
	struct review *r;

	pthread_mutex_lock(&t->lock);
	r = find(t, id);
	if (r) {
		expire(r, now_ms);
		s = r->out.state;
		if (out)
			*out = r->out;
	}
	pthread_mutex_unlock(&t->lock);
	return s;
}

void review_cancel(struct review_table *t, uint64_t id, int64_t now_ms)
{
	struct review *r;

	pthread_mutex_lock(&t->lock);
	r = find(t, id);
	if (r && r->out.state == REVIEW_PENDING) {
		r->out.state = REVIEW_CANCELLED;
		r->decided_ms = now_ms;
		snprintf(r->out.reason, sizeof(r->out.reason),
			 "the session ended first");
	}
	pthread_mutex_unlock(&t->lock);
}

int review_decide(struct review_table *t, uint64_t id, bool approve,
		  const char *by, const char *reason, int64_t for_ms,
		  int64_t now_ms, char *err, size_t errlen)
{
	struct review *r;
	struct grant *g = NULL;
	int ret = -1;

	if (approve && for_ms > 0) {
		g = calloc(1, sizeof(*g));
		if (!g) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	pthread_mutex_lock(&t->lock);
	r = find(t, id);
	if (r)
		expire(r, now_ms);
	if (!r) {
		snprintf(err, errlen, "no review %llu", (unsigned long long)id);
	} else if (r->out.state != REVIEW_PENDING) {
		snprintf(err, errlen, "review %llu is %s already%s%s",
			 (unsigned long long)id,
			 review_state_name(r->out.state),
			 r->out.by[0] ? " by " : "", r->out.by);
	} else {
		r->out.state = approve ? REVIEW_APPROVED : REVIEW_REJECTED;
		r->decided_ms = now_ms;
		snprintf(r->out.by, sizeof(r->out.by), "%s", by);
		snprintf(r->out.reason, sizeof(r->out.reason), "%s",
			 reason ? reason : "");
		if (g) {
			g->id = ++t->next_grant;
			g->review = id;
			g->fingerprint = r->fingerprint;
			g->workload = dup_or_null(r->workload);
			g->target = dup_or_null(r->target);
			g->user = dup_or_null(r->user);
			g->summary = dup_or_null(r->summary);
			g->statement = dup_or_null(r->statement);
			snprintf(g->by, sizeof(g->by), "%s", by);
			snprintf(g->reason, sizeof(g->reason), "%s",
				 reason ? reason : "");
			g->created_ms = now_ms;
			g->expires_ms = now_ms + for_ms;
			g->next = t->grants;
			t->grants = g;
			r->out.grant = g->id;
			g = NULL;
		}
		ret = 0;
	}
	pthread_mutex_unlock(&t->lock);
	free(g);
	return ret;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

uint64_t review_grant_match(struct review_table *t, uint64_t fingerprint,
			    const char *workload, const char *target,
			    const char *user, int64_t now_ms)
{
	uint64_t id = 0;

	pthread_mutex_lock(&t->lock);
	for (struct grant *g = t->grants; g && !id; g = g->next) {
		if (g->revoked || now_ms >= g->expires_ms ||
		    g->fingerprint != fingerprint ||
		    !same(g->workload, workload) || !same(g->target, target) ||
		    !same(g->user, user))
			continue;
		g->uses++;
		id = g->id;
	}
	pthread_mutex_unlock(&t->lock);
	return id;
}

int review_grant_revoke(struct review_table *t, uint64_t id, const char *by,
			int64_t now_ms, char *err, size_t errlen)
{
	int ret = -1;

	pthread_mutex_lock(&t->lock);
	for (struct grant *g = t->grants; g; g = g->next) {
		if (g->id != id)
			continue;
		if (g->revoked || now_ms >= g->expires_ms) {
			snprintf(err, errlen, "grant %llu has ended already",
				 (unsigned long long)id);
		} else {
			g->revoked = true;
			g->expires_ms = now_ms;
			snprintf(g->revoked_by, sizeof(g->revoked_by), "%s",
				 by);
			ret = 0;
		}
		pthread_mutex_unlock(&t->lock);
		return ret;
	}
	pthread_mutex_unlock(&t->lock);
	snprintf(err, errlen, "no grant %llu", (unsigned long long)id);
	return -1;
}

static json_t *review_json(const struct review *r)
{
	json_t *j = json_pack(
		"{s:I,s:s,s:I,s:s?,s:s?,s:s?,s:s?,s:{s:s?,s:i,s:i},s:s?,s:s?,"
		"s:I,s:I}",
		"id", (json_int_t)r->id, "state",
		review_state_name(r->out.state), "session",
		(json_int_t)r->session, "workload", r->workload, "target",
		r->target, "rule", r->rule, "user", r->user, "process", "exe",
		r->exe, "pid", (int)r->pid, "uid", (int)r->uid, "request",
		r->summary, "statement", r->statement, "created_ms",
		(json_int_t)r->created_ms, "expires_ms",
		(json_int_t)r->expires_ms);

	if (!j)
		return json_pack("{s:I,s:s}", "id", (json_int_t)r->id, "state",
				 review_state_name(r->out.state));
	if (r->message)
		json_object_set_new(j, "message", json_string(r->message));
	if (r->out.state != REVIEW_PENDING) {
		json_object_set_new(j, "decided_ms",
				    json_integer((json_int_t)r->decided_ms));
		if (r->out.by[0])
			json_object_set_new(j, "by", json_string(r->out.by));
		json_object_set_new(j, "reason", json_string(r->out.reason));
		if (r->out.grant)
			json_object_set_new(
				j, "grant",
				json_integer((json_int_t)r->out.grant));
	}
	return j;
}

json_t *review_get_json(struct review_table *t, uint64_t id, int64_t now_ms)
{
	struct review *r;
	json_t *j = NULL;

	pthread_mutex_lock(&t->lock);
	r = find(t, id);
	if (r) {
		expire(r, now_ms);
		j = review_json(r);
	}
	pthread_mutex_unlock(&t->lock);
	return j;
}

json_t *review_list_json(struct review_table *t, bool all, int64_t now_ms)
{
	json_t *pending = json_array(), *done = json_array();

	pthread_mutex_lock(&t->lock);
	for (struct review *r = t->reviews; r; r = r->next) {
		expire(r, now_ms);
		if (r->out.state == REVIEW_PENDING)
			json_array_insert_new(pending, 0, review_json(r));
		else if (all)
			json_array_append_new(done, review_json(r));
	}
	pthread_mutex_unlock(&t->lock);
	json_array_extend(pending, done);
	json_decref(done);
	return pending;
}

json_t *review_grants_json(struct review_table *t, int64_t now_ms)
{
	json_t *a = json_array();

	pthread_mutex_lock(&t->lock);
	for (struct grant *g = t->grants; g; g = g->next) {
		json_t *j = json_pack(
			"{s:I,s:I,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s,s:s,s:I,"
			"s:I,s:I}",
			"id", (json_int_t)g->id, "review",
			(json_int_t)g->review, "state",
			g->revoked		? "revoked" :
			now_ms >= g->expires_ms ? "ended" :
						  "active",
			"workload", g->workload, "target", g->target, "user",
			g->user, "request", g->summary, "statement",
			g->statement, "by", g->by, "reason", g->reason,
			"created_ms", (json_int_t)g->created_ms, "expires_ms",
			(json_int_t)g->expires_ms, "uses", (json_int_t)g->uses);

		if (j && g->revoked)
			json_object_set_new(j, "revoked_by",
					    json_string(g->revoked_by));
		if (j)
			json_array_append_new(a, j);
	}
	pthread_mutex_unlock(&t->lock);
	return a;
}
