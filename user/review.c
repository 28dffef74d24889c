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
#define MAX_APPROVALS 16

struct review {
	struct review *next;
	uint64_t id;
	struct review_outcome out;
	uint64_t session, fingerprint;
	char *workload, *target, *rule, *message, *user, *exe;
	char *summary, *statement;
	uint32_t pid, uid;
	int64_t created_ms, expires_ms, decided_ms;
	/* the rule's approvers, copied; and who approved so far */
	char **users, **groups;
	size_t nusers, ngroups;
	uint32_t min;
	char approvals[MAX_APPROVALS][128]; /* as recorded: "cli:alice" */
	char approvers_seen[MAX_APPROVALS][128]; /* their names: "alice" */
	size_t napprovals;
	bool seen; /* its session learnt the outcome: it may be trimmed */
};

struct grant {
	struct grant *next;
	uint64_t id, review, fingerprint, uses;
	char *workload, *target, *user, *rule, *summary, *statement;
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

/* @src into @dst as valid UTF-8, cut between characters. */
static void copy(char *dst, size_t cap, const char *src)
{
	log_utf8(dst, cap, src ? src : "");
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char **strv_dup(char *const *v, size_t n)
{
	char **o = n ? calloc(n, sizeof(*o)) : NULL;

	for (size_t i = 0; o && i < n; i++)
		o[i] = strdup(v[i]);
	return o;
}

static void review_free(struct review *r)
{
	strv_free(r->users, r->nusers);
	strv_free(r->groups, r->ngroups);
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
	free(g->rule);
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

		if (r->out.state != REVIEW_PENDING && r->seen &&
		    ++done > KEEP_DONE) {
			*pp = r->next;
			review_free(r);
		} else {
			pp = &r->next;
		}
	}
	done = 0;
	for (struct grant **gp = &t->grants; *gp;) {
		struct grant *g = *gp;

		if (g->revoked && ++done > KEEP_DONE) {
			*gp = g->next;
			grant_free(g);
		} else {
			gp = &g->next;
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
	r->min = 1;
	if (q->approvers) {
		r->users = strv_dup(q->approvers->users, q->approvers->nusers);
		r->nusers = r->users ? q->approvers->nusers : 0;
		r->groups =
			strv_dup(q->approvers->groups, q->approvers->ngroups);
		r->ngroups = r->groups ? q->approvers->ngroups : 0;
		if (q->approvers->min > 1)
			r->min = q->approvers->min;
	}
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
		r->seen = s != REVIEW_PENDING;
	}
	pthread_mutex_unlock(&t->lock);
	return s;
}

void review_cancel_by(struct review_table *t, uint64_t id,
		      const struct review_decider *who, const char *reason,
		      int64_t now_ms)
{
	struct review *r;

	pthread_mutex_lock(&t->lock);
	r = find(t, id);
	if (r && r->out.state == REVIEW_PENDING) {
		r->out.state = REVIEW_REJECTED;
		r->decided_ms = now_ms;
		copy(r->out.by, sizeof(r->out.by), who->by);
		copy(r->out.reason, sizeof(r->out.reason), reason);
	}
	pthread_mutex_unlock(&t->lock);
}

void review_cancel(struct review_table *t, uint64_t id, int64_t now_ms)
{
	struct review *r;

	pthread_mutex_lock(&t->lock);
	r = find(t, id);
	if (r && r->out.state == REVIEW_PENDING) {
		r->out.state = REVIEW_CANCELLED;
		r->decided_ms = now_ms;
		r->seen = true;
		snprintf(r->out.reason, sizeof(r->out.reason),
			 "the session ended first");
	}
	pthread_mutex_unlock(&t->lock);
}

/* May @who decide @r? Anyone, when the rule names no approver. */
static bool may_decide(const struct review *r, const struct review_decider *w)
{
	if (!r->nusers && !r->ngroups)
		return true;
	for (size_t i = 0; i < r->nusers; i++)
		if (w->name && strcmp(r->users[i], w->name) == 0)
			return true;
	for (size_t i = 0; i < r->ngroups; i++)
		for (size_t k = 0; k < w->ngroups; k++)
			if (strcmp(r->groups[i], w->groups[k]) == 0)
				return true;
	return false;
}

int review_decide(struct review_table *t, uint64_t id, bool approve,
		  const struct review_decider *who, const char *reason,
		  int64_t for_ms, int64_t now_ms, char *err, size_t errlen)
{
	const char *name = who->name ? who->name : who->by;
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
		goto out;
	}
	if (r->out.state != REVIEW_PENDING) {
		snprintf(err, errlen, "review %llu is %s already%s%s",
			 (unsigned long long)id,
			 review_state_name(r->out.state),
			 r->out.by[0] ? " by " : "", r->out.by);
		goto out;
	}
	if (!may_decide(r, who)) {
		snprintf(err, errlen,
			 "%s is not an approver of rule \"%s\" (see its "
			 "\"approvers\")",
			 who->by, r->rule ? r->rule : "?");
		goto out;
	}
	if (strlen(who->by) >= sizeof(r->approvals[0]) ||
	    strlen(name) >= sizeof(r->approvers_seen[0])) {
		snprintf(err, errlen, "the decider's name is too long");
		goto out;
	}
	if (approve) {
		/* One person, one approval, whatever the channel. */
		for (size_t i = 0; i < r->napprovals; i++)
			if (strcmp(r->approvers_seen[i], name) == 0) {
				snprintf(err, errlen,
					 "review %llu: %s approved it "
					 "already; %zu more approval(s) "
					 "needed",
					 (unsigned long long)id, who->by,
					 (size_t)r->min - r->napprovals);
				goto out;
			}
		if (r->napprovals < MAX_APPROVALS) {
			copy(r->approvals[r->napprovals],
			     sizeof(r->approvals[0]), who->by);
			copy(r->approvers_seen[r->napprovals],
			     sizeof(r->approvers_seen[0]), name);
			r->napprovals++;
		}
		if (r->napprovals < r->min) {
			snprintf(err, errlen,
				 "review %llu: approval %zu of %u counted; it "
				 "waits for %zu more",
				 (unsigned long long)id, r->napprovals, r->min,
				 (size_t)r->min - r->napprovals);
			ret = 1;
			goto out;
		}
	}
	r->out.state = approve ? REVIEW_APPROVED : REVIEW_REJECTED;
	r->decided_ms = now_ms;
	if (approve && r->napprovals > 1) {
		char list[MAX_APPROVALS * 130 + 1];
		size_t o = 0;

		for (size_t i = 0; i < r->napprovals; i++)
			o += (size_t)snprintf(list + o, sizeof(list) - o,
					      "%s%s", i ? ", " : "",
					      r->approvals[i]);
		/* cut between characters: still valid UTF-8 */
		copy(r->out.by, sizeof(r->out.by), list);
	} else {
		copy(r->out.by, sizeof(r->out.by), who->by);
	}
	copy(r->out.reason, sizeof(r->out.reason), reason);
	if (g) {
		g->id = ++t->next_grant;
		g->review = id;
		g->fingerprint = r->fingerprint;
		g->workload = dup_or_null(r->workload);
		g->target = dup_or_null(r->target);
		g->user = dup_or_null(r->user);
		g->rule = dup_or_null(r->rule);
		g->summary = dup_or_null(r->summary);
		g->statement = dup_or_null(r->statement);
		copy(g->by, sizeof(g->by), r->out.by);
		copy(g->reason, sizeof(g->reason), reason);
		g->created_ms = now_ms;
		g->expires_ms = now_ms + for_ms;
		g->next = t->grants;
		t->grants = g;
		r->out.grant = g->id;
		g = NULL;
	}
	ret = 0;
out:
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
			    const char *user, const char *rule, int64_t now_ms)
{
	uint64_t id = 0;

	pthread_mutex_lock(&t->lock);
	for (struct grant *g = t->grants; g && !id; g = g->next) {
		if (g->revoked || now_ms >= g->expires_ms ||
		    g->fingerprint != fingerprint ||
		    !same(g->workload, workload) || !same(g->target, target) ||
		    !same(g->user, user) || !same(g->rule, rule))
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
			copy(g->revoked_by, sizeof(g->revoked_by), by);
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
	{
		json_t *ap = json_pack("{s:[],s:[],s:i,s:[]}", "users",
				       "groups", "min", (int)r->min,
				       "approvals");

		for (size_t i = 0; ap && i < r->nusers; i++)
			json_array_append_new(json_object_get(ap, "users"),
					      json_string(r->users[i]));
		for (size_t i = 0; ap && i < r->ngroups; i++)
			json_array_append_new(json_object_get(ap, "groups"),
					      json_string(r->groups[i]));
		for (size_t i = 0; ap && i < r->napprovals; i++)
			json_array_append_new(json_object_get(ap, "approvals"),
					      json_string(r->approvals[i]));
		if (ap)
			json_object_set_new(j, "approvers", ap);
	}
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
