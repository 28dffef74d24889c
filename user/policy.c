// SPDX-License-Identifier: Apache-2.0
/*
 * Policy loading and evaluation: connection decisions (which target, may
 * this workload's process reach it) and statement decisions.
 *
 * Targets are matched most-specific first: the longest address prefix wins,
 * then a target with an explicit port over one without, then file order.
 * Among the rules that apply, a deny beats a review beats an allow; within
 * one action the rule with the most conditions decides, the first in the
 * file on a tie; with no rule the policy's default applies. Shadow rules
 * are evaluated twice over: with them and without, and only the second
 * decides, the first is what gets logged as a would-be denial.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "bridle/jwks.h"
#include "bridle/jwt.h"
#include "bridle/policy.h"

/* The statement part of a rule: what it allows or denies. An empty list
 * means "any". */
struct policy_sql {
	uint32_t commands; /* bit set of enum sql_command; 0: any */
	char **tables; /* globs on schema.table */
	size_t ntables;
	char **functions; /* globs on function names */
	size_t nfunctions;
	uint32_t permit; /* SQL_F_* flags this allow rule accepts */
};

struct policy_mask {
	char **columns;
	size_t ncolumns;
	uint32_t detectors;
	enum mask_style style;
};

/* Globs, any of which matches; none: anything matches. */
struct globs {
	char **v;
	size_t n;
};

/* When a rule applies. Every condition given must hold. */
struct policy_when {
	struct globs workloads, namespaces, pods, service_accounts;
	json_t *labels; /* key → value or array of values; NULL: any */
	struct globs exes;
	uint32_t *uids;
	size_t nuids;
	bool user; /* a user token is needed */
	struct globs subs, emails, groups, issuers;
	size_t *targets; /* indexes into policy->targets; NULL: any target */
	size_t ntargets;
};

struct policy_rule {
	char *name;
	enum policy_action action;
	enum policy_mode mode;
	char *message;
	struct policy_when when;
	unsigned specificity; /* conditions it names: the most specific wins */
	struct policy_sql *sql; /* NULL: every statement */
	struct policy_mask *mask; /* NULL: nothing masked */
};

/* Decisions taken by a rule, for `bridle policy stats`. */
enum { CNT_ALLOW, CNT_DENY, CNT_REVIEW, CNT_SHADOW, CNT_N };

/* Pseudo-rules follow the file's rules in the counters. */
enum {
	PSEUDO_DEFAULT,
	PSEUDO_SESSION,
	PSEUDO_TOKEN,
	PSEUDO_OFF,
	PSEUDO_BRIDLE,
	PSEUDO_N
};

static const char *const pseudo_names[PSEUDO_N] = {
	[PSEUDO_DEFAULT] = POLICY_RULE_DEFAULT,
	[PSEUDO_SESSION] = POLICY_RULE_SESSION,
	[PSEUDO_TOKEN] = POLICY_RULE_TOKEN,
	[PSEUDO_OFF] = POLICY_RULE_OFF,
	[PSEUDO_BRIDLE] = POLICY_RULE_BRIDLE,
};

struct policy {
	int refs; /* atomic */
	enum policy_action def;
	enum policy_mode mode;
	bool has_shadow; /* some rule is in shadow mode */
	char version[32];
	struct policy_issuer *issuers;
	size_t nissuers;
	struct policy_target *targets;
	size_t ntargets;
	struct policy_rule *rules;
	size_t nrules;
	uint64_t (*counters)[CNT_N]; /* nrules + PSEUDO_N; atomic */
};

const char *policy_action_name(enum policy_action a)
{
	return a == POLICY_ALLOW  ? "allow" :
	       a == POLICY_REVIEW ? "review" :
				    "deny";
}

const char *policy_mode_name(enum policy_mode m)
{
	return m == POLICY_SHADOW ? "shadow" :
	       m == POLICY_OFF	  ? "off" :
				    "enforce";
}

const char *policy_proto_name(enum policy_proto p)
{
	return p == PROTO_POSTGRES ? "postgres" : "tcp";
}

const struct policy_target *policy_target_at(const struct policy *p, size_t idx)
{
	return idx < p->ntargets ? &p->targets[idx] : NULL;
}

const struct policy_target *policy_target_find(const struct policy *p,
					       const char *name, size_t *idx)
{
	for (size_t i = 0; i < p->ntargets; i++)
		if (strcmp(p->targets[i].name, name) == 0) {
			*idx = i;
			return &p->targets[i];
		}
	return NULL;
}

size_t policy_target_count(const struct policy *p)
{
	return p->ntargets;
}

size_t policy_rule_count(const struct policy *p)
{
	return p->nrules;
}

int policy_parse_cidr(const char *s, int *family, uint8_t addr[16],
		      unsigned *prefix)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	bool mapped_v4 = false;
	unsigned max;

	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		max = 128;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0,    0,
						    0, 0, 0, 0, 0xff, 0xff };
		if (memcmp(addr, mapped, 12) == 0)
			mapped_v4 = true;
	} else {
		return -EINVAL;
	}
	*prefix = max;
	if (slash) {
		char *end;
		unsigned long n;

		if (!slash[1] || slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		errno = 0;
		n = strtoul(slash + 1, &end, 10);
		if (errno || *end || n > max)
			return -EINVAL;
		*prefix = (unsigned)n;
		/* Host bits must be zero: "10.0.0.1/8" is almost always a typo. */
		for (unsigned bit = *prefix; bit < max; bit++)
			if (addr[bit / 8] & (0x80 >> (bit % 8)))
				return -EINVAL;
	}
	/* An IPv4-mapped address (or prefix of them) is the IPv4 one it maps. */
	if (mapped_v4) {
		if (*prefix < 96)
			return -EINVAL;
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		*family = AF_INET;
		*prefix -= 96;
	}
	return 0;
}

static bool prefix_match(const uint8_t *net, unsigned prefix,
			 const uint8_t *addr)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(net, addr, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		return (net[full] & mask) == (addr[full] & mask);
	}
	return true;
}

static bool name_ok(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void globs_free(struct globs *g)
{
	strv_free(g->v, g->n);
	g->v = NULL;
	g->n = 0;
}

static void when_free(struct policy_when *w)
{
	globs_free(&w->workloads);
	globs_free(&w->namespaces);
	globs_free(&w->pods);
	globs_free(&w->service_accounts);
	globs_free(&w->exes);
	globs_free(&w->subs);
	globs_free(&w->emails);
	globs_free(&w->groups);
	globs_free(&w->issuers);
	json_decref(w->labels);
	free(w->uids);
	free(w->targets);
}

static void rule_free(struct policy_rule *r)
{
	if (r->sql) {
		strv_free(r->sql->tables, r->sql->ntables);
		strv_free(r->sql->functions, r->sql->nfunctions);
		free(r->sql);
	}
	if (r->mask) {
		strv_free(r->mask->columns, r->mask->ncolumns);
		free(r->mask);
	}
	free(r->name);
	free(r->message);
	when_free(&r->when);
}

static void issuer_free(struct policy_issuer *is)
{
	free(is->name);
	free(is->issuer);
	strv_free(is->audiences, is->naudiences);
	jwt_keyset_free(is->keys);
	if (is->source)
		jwks_source_put(is->source);
	free(is->jwks_file);
	free(is->jwks_url);
	free(is->ca_file);
	free(is->groups_claim);
	free(is->scopes_claim);
}

struct policy *policy_ref(struct policy *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void policy_free(struct policy *p)
{
	if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (size_t i = 0; i < p->ntargets; i++) {
		struct policy_target *t = &p->targets[i];

		free(t->name);
		free(t->ca_file);
		free(t->server_name);
		free(t->creds.user);
		free(t->creds.password_file);
		free(t->creds.password_env);
		free(t->creds.database);
	}
	free(p->targets);
	for (size_t i = 0; i < p->nrules; i++)
		rule_free(&p->rules[i]);
	free(p->rules);
	for (size_t i = 0; i < p->nissuers; i++)
		issuer_free(&p->issuers[i]);
	free(p->issuers);
	free(p->counters);
	free(p);
}

static int parse_word(struct jv *v, json_t *obj, const char *key,
		      const char *const *words, const char *what, int *out)
{
	const char *s = NULL;
	char list[128] = "";
	size_t off = 0;

	if (jv_string(v, obj, key, false, &s))
		return -1;
	if (!s)
		return 0;
	for (int i = 0; words[i]; i++) {
		if (strcmp(s, words[i]) == 0) {
			*out = i;
			return 0;
		}
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
					i ? ", " : "", words[i]);
	}
	return jv_fail(v, key, "\"%s\" is not %s (%s)", s, what, list);
}

static int parse_action(struct jv *v, json_t *obj, const char *key,
			bool required, bool review, enum policy_action *out)
{
	static const char *const words[] = { "deny", "allow", "review", NULL };
	static const char *const two[] = { "deny", "allow", NULL };
	int a = (int)*out;

	if (required && !json_object_get(obj, key))
		return jv_fail(v, key,
			       "required key is missing (allow, deny%s)",
			       review ? ", review" : "");
	if (parse_word(v, obj, key, review ? words : two, "an action", &a))
		return -1;
	*out = (enum policy_action)a;
	return 0;
}

static int parse_mode(struct jv *v, json_t *obj, enum policy_mode *out)
{
	static const char *const words[] = { "enforce", "shadow", "off", NULL };
	int m = (int)*out;

	if (parse_word(v, obj, "mode", words, "a mode", &m))
		return -1;
	*out = (enum policy_mode)m;
	return 0;
}

/* Copy obj[key] when present. Returns 0 or -1 (out of memory). */
static int opt_strdup(struct jv *v, json_t *obj, const char *key, char **out)
{
	const char *s = NULL;

	if (jv_string(v, obj, key, false, &s))
		return -1;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : jv_fail(v, key, "out of memory");
}

static int parse_credentials(struct jv *v, json_t *j, struct policy_target *t)
{
	static const char *const keys[] = { "user", "password_file",
					    "password_env", "database", NULL };
	json_t *c = json_object_get(j, "credentials");
	struct policy_credentials *cr = &t->creds;
	size_t old;
	int ret = -1;

	if (!c) {
		if (t->proto == PROTO_POSTGRES)
			return jv_fail(v, "credentials",
				       "a postgres target needs credentials: "
				       "bridle logs in for the agent");
		return 0;
	}
	if (t->proto == PROTO_TCP)
		return jv_fail(v, "credentials",
			       "tcp targets carry no credentials");
	old = jv_push_key(v, "credentials");
	if (jv_object(v, c, keys) || opt_strdup(v, c, "user", &cr->user) ||
	    opt_strdup(v, c, "password_file", &cr->password_file) ||
	    opt_strdup(v, c, "password_env", &cr->password_env) ||
	    opt_strdup(v, c, "database", &cr->database))
		goto out;
	if (!cr->user) {
		jv_fail(v, "user", "required");
		goto out;
	}
	if (!!cr->password_file == !!cr->password_env) {
		jv_fail(v, NULL,
			"give exactly one of password_file and password_env");
		goto out;
	}
	if (cr->password_file && cr->password_file[0] != '/') {
		jv_fail(v, "password_file", "must be an absolute path");
		goto out;
	}
	ret = 0;
out:
	jv_pop(v, old);
	return ret;
}

static int parse_target_tls(struct jv *v, json_t *j, struct policy_target *t)
{
	const char *tls = NULL;

	if (jv_string(v, j, "tls", false, &tls) ||
	    opt_strdup(v, j, "ca_file", &t->ca_file) ||
	    opt_strdup(v, j, "server_name", &t->server_name))
		return -1;
	if (!tls || !strcmp(tls, "disable"))
		t->tls = POLICY_TLS_DISABLE;
	else if (!strcmp(tls, "require"))
		t->tls = POLICY_TLS_REQUIRE;
	else if (!strcmp(tls, "verify-full"))
		t->tls = POLICY_TLS_VERIFY;
	else
		return jv_fail(v, "tls",
			       "\"%s\" is not a TLS mode (disable, require, "
			       "verify-full)",
			       tls);
	if (tls && t->proto == PROTO_TCP)
		return jv_fail(v, "tls",
			       "tcp targets are relayed as they are: TLS "
			       "applies to postgres targets");
	if (t->tls == POLICY_TLS_VERIFY && !t->ca_file)
		return jv_fail(v, "ca_file", "verify-full needs a CA file");
	if (t->ca_file && t->tls != POLICY_TLS_VERIFY)
		return jv_fail(v, "ca_file", "only used with verify-full");
	return 0;
}

static int parse_target(struct jv *v, json_t *j, struct policy *p, size_t idx)
{
	static const char *const keys[] = {
		"name",	   "address",	  "port",	 "protocol",	 "tls",
		"ca_file", "server_name", "credentials", "require_user", NULL,
	};
	struct policy_target *t = &p->targets[idx];
	const char *name = NULL, *address = NULL, *proto = "tcp";
	uint64_t port = 0;

	if (!json_is_object(j))
		return jv_object(v, j, keys);
	if (jv_string(v, j, "name", true, &name))
		return -1;
	if (!name_ok(name))
		return jv_fail(v, "name", "contains control characters");
	for (size_t i = 0; i < idx; i++)
		if (p->targets[i].name && strcmp(p->targets[i].name, name) == 0)
			return jv_fail(v, "name",
				       "duplicate target name \"%s\"", name);
	/* Named first: rules naming a target with errors get no errors of
	 * their own for it. */
	t->name = strdup(name);
	if (!t->name)
		return jv_fail(v, NULL, "out of memory");
	if ((jv_object(v, j, keys) && !v->all) ||
	    jv_string(v, j, "address", true, &address) ||
	    jv_uint(v, j, "port", false, 1, 65535, &port) ||
	    jv_string(v, j, "protocol", false, &proto) ||
	    jv_bool(v, j, "require_user", &t->require_user))
		return -1;
	if (policy_parse_cidr(address, &t->family, t->addr, &t->prefix))
		return jv_fail(v, "address",
			       "\"%s\" is not an IP address or CIDR prefix "
			       "(host bits must be zero)",
			       address);
	if (strcmp(proto, "tcp") == 0)
		t->proto = PROTO_TCP;
	else if (strcmp(proto, "postgres") == 0)
		t->proto = PROTO_POSTGRES;
	else
		return jv_fail(v, "protocol",
			       "\"%s\" is not a supported protocol (tcp, "
			       "postgres)",
			       proto);
	t->port = (uint16_t)port;
	if (t->require_user && t->proto == PROTO_TCP)
		return jv_fail(v, "require_user",
			       "a tcp target carries no token: users are "
			       "named by postgres targets");
	if (t->require_user && !p->nissuers)
		return jv_fail(v, "require_user",
			       "user tokens need an issuer: add one to the "
			       "policy's \"issuers\"");
	return parse_target_tls(v, j, t) || parse_credentials(v, j, t) ? -1 : 0;
}

/* obj[key]: a string or a non-empty array of strings (globs), copied. */
static int parse_globs(struct jv *v, json_t *obj, const char *key,
		       struct globs *g)
{
	json_t *a = json_object_get(obj, key), *e;
	size_t n, i;

	if (!a)
		return 0;
	n = json_is_array(a) ? json_array_size(a) : 1;
	if (!json_is_string(a) && !(json_is_array(a) && n > 0))
		return jv_fail(v, key,
			       "expected a string or a non-empty array of "
			       "strings (globs allowed)");
	g->v = calloc(n, sizeof(*g->v));
	if (!g->v)
		return jv_fail(v, key, "out of memory");
	for (i = 0; i < n; i++) {
		e = json_is_array(a) ? json_array_get(a, i) : a;
		if (!json_is_string(e) || !json_string_length(e) ||
		    strlen(json_string_value(e)) != json_string_length(e) ||
		    !name_ok(json_string_value(e))) {
			size_t old = jv_push_key(v, key);

			if (json_is_array(a))
				jv_push_index(v, i);
			jv_fail(v, NULL, "expected a non-empty string");
			jv_pop(v, old);
			return -1;
		}
		g->v[i] = strdup(json_string_value(e));
		if (!g->v[i])
			return jv_fail(v, key, "out of memory");
		g->n++;
	}
	return 0;
}

static int parse_issuer(struct jv *v, json_t *j, struct policy *p, size_t idx)
{
	static const char *const keys[] = {
		"name",
		"issuer",
		"audience",
		"jwks_file",
		"jwks_url",
		"ca_file",
		"refresh_seconds",
		"skew_seconds",
		"groups_claim",
		"scopes_claim",
		NULL,
	};
	struct policy_issuer *is = &p->issuers[idx];
	struct globs aud = {};
	uint64_t refresh = 3600, skew = 60;
	const char *name = NULL;
	char err[256];

	if (jv_string(v, j, "name", true, &name))
		return -1;
	/* Named first: rules naming an issuer with errors get no errors of
	 * their own for it. */
	is->name = strdup(name);
	if (!is->name)
		return jv_fail(v, NULL, "out of memory");
	if (jv_object(v, j, keys) && !v->all)
		return -1;
	if (!name_ok(name))
		return jv_fail(v, "name", "contains control characters");
	for (size_t i = 0; i < idx; i++)
		if (p->issuers[i].name && strcmp(p->issuers[i].name, name) == 0)
			return jv_fail(v, "name",
				       "duplicate issuer name \"%s\"", name);
	if (opt_strdup(v, j, "issuer", &is->issuer) ||
	    opt_strdup(v, j, "jwks_file", &is->jwks_file) ||
	    opt_strdup(v, j, "jwks_url", &is->jwks_url) ||
	    opt_strdup(v, j, "ca_file", &is->ca_file) ||
	    opt_strdup(v, j, "groups_claim", &is->groups_claim) ||
	    opt_strdup(v, j, "scopes_claim", &is->scopes_claim) ||
	    jv_uint(v, j, "refresh_seconds", false, 1, 7 * 86400, &refresh) ||
	    jv_uint(v, j, "skew_seconds", false, 0, 600, &skew) ||
	    parse_globs(v, j, "audience", &aud))
		goto fail;
	is->audiences = aud.v;
	is->naudiences = aud.n;
	aud = (struct globs){};
	is->refresh_s = (uint32_t)refresh;
	is->skew_s = (uint32_t)skew;
	if (!is->issuer) {
		jv_fail(v, "issuer",
			"required: the \"iss\" value of this issuer's tokens");
		goto fail;
	}
	if (!is->naudiences) {
		jv_fail(v, "audience",
			"required: the \"aud\" value tokens for bridle carry "
			"(a token minted for another service must not pass)");
		goto fail;
	}
	if (!is->groups_claim && !(is->groups_claim = strdup("groups"))) {
		jv_fail(v, NULL, "out of memory");
		goto fail;
	}
	if (!!is->jwks_file == !!is->jwks_url) {
		jv_fail(v, NULL,
			"give exactly one of jwks_file (a JWKS document on "
			"disk) and jwks_url (https://…, fetched and "
			"refreshed)");
		goto fail;
	}
	if (is->ca_file && !is->jwks_url) {
		jv_fail(v, "ca_file", "only used with jwks_url");
		goto fail;
	}
	if (is->jwks_file) {
		is->keys = jwt_keyset_load(is->jwks_file, err, sizeof(err));
		if (!is->keys) {
			jv_fail(v, "jwks_file", "%s", err);
			goto fail;
		}
	} else {
		is->source = jwks_source_get(is->jwks_url, is->ca_file,
					     is->refresh_s, err, sizeof(err));
		if (!is->source) {
			jv_fail(v, "jwks_url", "%s", err);
			goto fail;
		}
	}
	return 0;
fail:
	globs_free(&aud);
	return -1;
}

static int parse_when_workload(struct jv *v, json_t *w, struct policy_rule *r)
{
	static const char *const keys[] = {
		"name", "labels", "namespace", "pod", "service_account", NULL
	};
	struct policy_when *wh = &r->when;
	json_t *labels;
	const char *k;
	json_t *val;

	if (jv_object(v, w, keys) ||
	    parse_globs(v, w, "name", &wh->workloads) ||
	    parse_globs(v, w, "namespace", &wh->namespaces) ||
	    parse_globs(v, w, "pod", &wh->pods) ||
	    parse_globs(v, w, "service_account", &wh->service_accounts))
		return -1;
	r->specificity += !!wh->workloads.n + !!wh->namespaces.n +
			  !!wh->pods.n + !!wh->service_accounts.n;
	labels = json_object_get(w, "labels");
	if (!labels)
		return 0;
	if (!json_is_object(labels))
		return jv_fail(v, "labels",
			       "expected an object of label: value (or an "
			       "array of values, any of which matches)");
	json_object_foreach(labels, k, val) {
		bool ok = json_is_string(val) ||
			  (json_is_array(val) && json_array_size(val) > 0);
		size_t i;
		json_t *e;

		json_array_foreach(val, i, e)
			ok &= json_is_string(e);
		if (!ok) {
			size_t o2 = jv_push_key(v, "labels");

			jv_fail(v, k,
				"label values must be strings, or non-empty "
				"arrays of strings");
			jv_pop(v, o2);
			return -1;
		}
		r->specificity++;
	}
	wh->labels = json_incref(labels);
	return 0;
}

static int parse_when_process(struct jv *v, json_t *w, struct policy_rule *r)
{
	static const char *const keys[] = { "exe", "uid", NULL };
	struct policy_when *wh = &r->when;
	json_t *uid;

	if (jv_object(v, w, keys) || parse_globs(v, w, "exe", &wh->exes))
		return -1;
	for (size_t i = 0; i < wh->exes.n; i++)
		if (wh->exes.v[i][0] != '/' && wh->exes.v[i][0] != '*')
			return jv_fail(v, "exe",
				       "\"%s\" is not a path: executables are "
				       "matched by their full path (a glob "
				       "such as \"*/psql\" or "
				       "\"/usr/bin/python3*\")",
				       wh->exes.v[i]);
	uid = json_object_get(w, "uid");
	if (uid) {
		size_t n = json_is_array(uid) ? json_array_size(uid) : 1;

		wh->uids = calloc(n, sizeof(*wh->uids));
		if (!wh->uids)
			return jv_fail(v, "uid", "out of memory");
		for (size_t i = 0; i < n; i++) {
			json_t *e = json_is_array(uid) ?
					    json_array_get(uid, i) :
					    uid;

			if (!json_is_integer(e) || json_integer_value(e) < 0 ||
			    json_integer_value(e) > UINT32_MAX - 1)
				return jv_fail(v, "uid",
					       "expected a uid or a non-empty "
					       "array of uids");
			wh->uids[wh->nuids++] = (uint32_t)json_integer_value(e);
		}
		if (!wh->nuids)
			return jv_fail(v, "uid",
				       "expected a uid or a non-empty array "
				       "of uids");
	}
	r->specificity += !!wh->exes.n + !!wh->nuids;
	return 0;
}

static int parse_when_user(struct jv *v, json_t *w, const struct policy *p,
			   struct policy_rule *r)
{
	static const char *const keys[] = { "sub", "email", "groups", "issuer",
					    NULL };
	struct policy_when *wh = &r->when;

	if (jv_object(v, w, keys) || parse_globs(v, w, "sub", &wh->subs) ||
	    parse_globs(v, w, "email", &wh->emails) ||
	    parse_globs(v, w, "groups", &wh->groups) ||
	    parse_globs(v, w, "issuer", &wh->issuers))
		return -1;
	if (!p->nissuers)
		return jv_fail(v, NULL,
			       "rules about users need an issuer: add one to "
			       "the policy's \"issuers\"");
	for (size_t i = 0; i < wh->issuers.n; i++) {
		bool hit = false;

		for (size_t k = 0; k < p->nissuers && !hit; k++)
			hit = p->issuers[k].name &&
			      fnmatch(wh->issuers.v[i], p->issuers[k].name,
				      0) == 0;
		if (!hit)
			return jv_fail(v, "issuer",
				       "\"%s\" names no issuer of the policy",
				       wh->issuers.v[i]);
	}
	wh->user = true;
	r->specificity += 1 + !!wh->subs.n + !!wh->emails.n + !!wh->groups.n +
			  !!wh->issuers.n;
	return 0;
}

static int find_target(const struct policy *p, const char *name, size_t *idx)
{
	for (size_t i = 0; i < p->ntargets; i++)
		if (p->targets[i].name &&
		    strcmp(p->targets[i].name, name) == 0) {
			*idx = i;
			return 0;
		}
	return -1;
}

static int no_target(struct jv *v, const struct policy *p, const char *key,
		     const char *name)
{
	const char *names[65];
	size_t n = 0;
	const char *near;

	for (size_t i = 0; i < p->ntargets && n < 64; i++)
		if (p->targets[i].name)
			names[n++] = p->targets[i].name;
	names[n] = NULL;
	near = jv_suggest(name, names);
	if (near)
		return jv_fail(v, key,
			       "no target named \"%s\": did you mean \"%s\"?",
			       name, near);
	return jv_fail(v, key, "no target named \"%s\"", name);
}

static int parse_when_targets(struct jv *v, json_t *w, const struct policy *p,
			      struct policy_rule *r)
{
	json_t *t = json_object_get(w, "target");
	size_t n, old;

	if (!t)
		return 0;
	n = json_is_array(t) ? json_array_size(t) : 1;
	if (!json_is_string(t) && !(json_is_array(t) && n > 0))
		return jv_fail(v, "target",
			       "expected a target name or a non-empty array "
			       "of target names");
	r->when.targets = calloc(n, sizeof(*r->when.targets));
	if (!r->when.targets)
		return jv_fail(v, "target", "out of memory");
	old = jv_push_key(v, "target");
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_is_array(t) ? json_array_get(t, i) : t;
		size_t o2 = json_is_array(t) ? jv_push_index(v, i) :
					       strlen(v->path);
		int bad = 0;

		if (!json_is_string(e))
			bad = jv_fail(v, NULL, "expected a target name");
		else if (find_target(p, json_string_value(e),
				     &r->when.targets[i]))
			bad = no_target(v, p, NULL, json_string_value(e));
		if (bad) {
			jv_pop(v, old);
			return -1;
		}
		r->when.ntargets++;
		jv_pop(v, o2);
	}
	jv_pop(v, old);
	r->specificity++;
	return 0;
}

static int parse_when(struct jv *v, json_t *j, const struct policy *p,
		      struct policy_rule *r)
{
	static const char *const keys[] = { "workload", "process", "user",
					    "target", NULL };
	json_t *w = json_object_get(j, "when"), *part;
	size_t old;
	int ret = -1;

	if (!w)
		return 0;
	old = jv_push_key(v, "when");
	if (!json_is_object(w)) {
		jv_object(v, w, keys);
		goto out;
	}
	/* Each part on its own: with v->all, an error in one does not hide
	 * those of the next. */
	ret = jv_object(v, w, keys);
	if (ret && !v->all)
		goto out;
	if ((part = json_object_get(w, "workload"))) {
		size_t o2 = jv_push_key(v, "workload");

		ret |= parse_when_workload(v, part, r);
		jv_pop(v, o2);
		if (ret && !v->all)
			goto out;
	}
	if ((part = json_object_get(w, "process"))) {
		size_t o2 = jv_push_key(v, "process");

		ret |= parse_when_process(v, part, r);
		jv_pop(v, o2);
		if (ret && !v->all)
			goto out;
	}
	if ((part = json_object_get(w, "user"))) {
		size_t o2 = jv_push_key(v, "user");

		ret |= parse_when_user(v, part, p, r);
		jv_pop(v, o2);
		if (ret && !v->all)
			goto out;
	}
	ret |= parse_when_targets(v, w, p, r);
out:
	jv_pop(v, old);
	return ret;
}

/* obj[key]: a non-empty array of strings, copied into *out. */
static int parse_strv(struct jv *v, json_t *obj, const char *key, char ***out,
		      size_t *n)
{
	json_t *a = json_object_get(obj, key), *e;
	size_t i;

	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) == 0)
		return jv_fail(v, key, "expected a non-empty array of strings");
	*out = calloc(json_array_size(a), sizeof(**out));
	if (!*out)
		return jv_fail(v, key, "out of memory");
	json_array_foreach(a, i, e) {
		if (!json_is_string(e) || !json_string_length(e) ||
		    !name_ok(json_string_value(e))) {
			size_t old = jv_push_key(v, key);

			jv_push_index(v, i);
			jv_fail(v, NULL, "expected a non-empty string");
			jv_pop(v, old);
			return -1;
		}
		(*out)[i] = strdup(json_string_value(e));
		if (!(*out)[i])
			return jv_fail(v, key, "out of memory");
		(*n)++;
	}
	return 0;
}

static const struct {
	const char *name;
	uint32_t flag;
} permit_names[] = {
	{ "privilege_change", SQL_F_PRIV_CHANGE },
	{ "server_file", SQL_F_SERVER_FILE },
	{ "opaque", SQL_F_OPAQUE },
	{ "select_into", SQL_F_SELECT_INTO },
	{ "explain_analyze", SQL_F_EXPLAIN_ANALYZE },
};

static int parse_rule_sql(struct jv *v, json_t *j, const struct policy *p,
			  struct policy_rule *r)
{
	static const char *const keys[] = { "commands", "tables", "functions",
					    "permit", NULL };
	json_t *q = json_object_get(j, "sql"), *e;
	char **names = NULL;
	size_t old, n = 0, i;
	int ret = -1;

	if (!q)
		return 0;
	old = jv_push_key(v, "sql");
	r->sql = calloc(1, sizeof(*r->sql));
	if (!r->sql || jv_object(v, q, keys) ||
	    parse_strv(v, q, "tables", &r->sql->tables, &r->sql->ntables) ||
	    parse_strv(v, q, "functions", &r->sql->functions,
		       &r->sql->nfunctions) ||
	    parse_strv(v, q, "commands", &names, &n))
		goto out;
	for (i = 0; i < n; i++) {
		int c;

		for (c = 0; c <= SQL_UTILITY; c++)
			if (!strcmp(names[i], sql_command_name(c)))
				break;
		if (c > SQL_UTILITY) {
			jv_fail(v, "commands",
				"\"%s\" is not a command (select, insert, "
				"update, delete, merge, copy, ddl, privilege, "
				"set, show, transaction, explain, prepare, "
				"execute, call, do, utility)",
				names[i]);
			goto out;
		}
		r->sql->commands |= 1u << c;
	}
	json_array_foreach(json_object_get(q, "permit"), i, e) {
		size_t k;

		for (k = 0; k < sizeof(permit_names) / sizeof(*permit_names);
		     k++)
			if (json_is_string(e) &&
			    !strcmp(json_string_value(e), permit_names[k].name))
				break;
		if (k == sizeof(permit_names) / sizeof(*permit_names)) {
			jv_fail(v, "permit",
				"expected names of risky statement kinds "
				"(privilege_change, server_file, opaque, "
				"select_into, explain_analyze)");
			goto out;
		}
		r->sql->permit |= permit_names[k].flag;
	}
	if (json_object_get(q, "permit") &&
	    !json_is_array(json_object_get(q, "permit"))) {
		jv_fail(v, "permit", "expected an array");
		goto out;
	}
	if (r->sql->permit && r->action != POLICY_ALLOW) {
		jv_fail(v, "permit", "only allow rules permit");
		goto out;
	}
	for (i = 0; i < r->when.ntargets; i++)
		if (p->targets[r->when.targets[i]].proto != PROTO_POSTGRES) {
			jv_fail(v, NULL,
				"target \"%s\" is not a postgres target: "
				"sql rules apply to postgres targets",
				p->targets[r->when.targets[i]].name);
			goto out;
		}
	ret = 0;
out:
	strv_free(names, n);
	jv_pop(v, old);
	return ret;
}

static int parse_rule_mask(struct jv *v, json_t *j, struct policy_rule *r)
{
	static const char *const keys[] = { "columns", "detectors", "style",
					    NULL };
	json_t *m = json_object_get(j, "mask");
	char **det = NULL;
	const char *style = "redact";
	size_t old, n = 0;
	int ret = -1;

	if (!m)
		return 0;
	old = jv_push_key(v, "mask");
	if (r->action != POLICY_ALLOW) {
		jv_fail(v, NULL, "only allow rules mask");
		goto out;
	}
	r->mask = calloc(1, sizeof(*r->mask));
	if (!r->mask || jv_object(v, m, keys) ||
	    parse_strv(v, m, "columns", &r->mask->columns,
		       &r->mask->ncolumns) ||
	    parse_strv(v, m, "detectors", &det, &n) ||
	    jv_string(v, m, "style", false, &style))
		goto out;
	for (size_t i = 0; i < r->mask->ncolumns; i++) {
		const char *c = r->mask->columns[i];
		int dots = 0;

		for (const char *q = c; *q; q++)
			dots += *q == '.';
		if (dots > 2 || c[0] == '.' || c[strlen(c) - 1] == '.' ||
		    strstr(c, "..")) {
			jv_fail(v, "columns",
				"\"%s\" is not a column, table.column or "
				"schema.table.column",
				c);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int d = mask_detector_from_name(det[i]);

		if (d < 0) {
			jv_fail(v, "detectors",
				"\"%s\" is not a detector (email, "
				"credit_card, us_ssn, phone, iban, ipv4, "
				"aws_access_key, private_key, jwt)",
				det[i]);
			goto out;
		}
		r->mask->detectors |= 1u << d;
	}
	if (!strcmp(style, "redact"))
		r->mask->style = MASK_REDACT;
	else if (!strcmp(style, "partial"))
		r->mask->style = MASK_PARTIAL;
	else if (!strcmp(style, "hash"))
		r->mask->style = MASK_HASH;
	else {
		jv_fail(v, "style",
			"\"%s\" is not a style (redact, partial, hash)", style);
		goto out;
	}
	if (!r->mask->ncolumns && !r->mask->detectors) {
		jv_fail(v, NULL, "a mask needs columns or detectors");
		goto out;
	}
	ret = 0;
out:
	strv_free(det, n);
	jv_pop(v, old);
	return ret;
}

static int parse_rule(struct jv *v, json_t *j, struct policy *p, size_t idx)
{
	static const char *const keys[] = { "name",    "when", "action", "mode",
					    "message", "sql",  "mask",	 NULL };
	struct policy_rule *r = &p->rules[idx];
	const char *name = NULL, *message = NULL;
	int bad = 0, bad_action;

	if (!json_is_object(j))
		return jv_object(v, j, keys);
		/* With v->all, every part is checked even after an error. */
#define STOP_OR_GO()                \
	do {                        \
		if (bad && !v->all) \
			return -1;  \
	} while (0)
	if (json_object_get(j, "workload") || json_object_get(j, "target"))
		bad = jv_fail(v,
			      json_object_get(j, "workload") ? "workload" :
							       "target",
			      "conditions live in \"when\": write \"when\": "
			      "{\"workload\": …, \"target\": …}");
	STOP_OR_GO();
	if (jv_string(v, j, "name", true, &name))
		return -1;
	if (!name_ok(name))
		return jv_fail(v, "name", "contains control characters");
	for (size_t i = 0; i < PSEUDO_N; i++)
		if (strcmp(name, pseudo_names[i]) == 0)
			return jv_fail(v, "name",
				       "\"%s\" is reserved: bridle names its "
				       "own decisions so",
				       name);
	for (size_t i = 0; i < idx; i++)
		if (p->rules[i].name && strcmp(p->rules[i].name, name) == 0)
			return jv_fail(v, "name", "duplicate rule name \"%s\"",
				       name);
	r->name = strdup(name);
	if (!r->name)
		return jv_fail(v, NULL, "out of memory");
	r->mode = POLICY_ENFORCE;
	bad |= jv_object(v, j, keys);
	STOP_OR_GO();
	bad_action = parse_action(v, j, "action", true, true, &r->action);
	bad |= bad_action;
	bad |= parse_mode(v, j, &r->mode);
	STOP_OR_GO();
	if (jv_string(v, j, "message", false, &message)) {
		bad = -1;
	} else if (message && !bad_action) {
		if (r->action == POLICY_ALLOW)
			bad = jv_fail(v, "message",
				      "only deny and review rules carry a "
				      "message: it is what the agent is told");
		else if (!(r->message = strdup(message)))
			return jv_fail(v, NULL, "out of memory");
	}
	STOP_OR_GO();
	bad |= parse_when(v, j, p, r);
	STOP_OR_GO();
	/* What the sql and mask parts may say depends on the action. */
	if (bad_action)
		return -1;
	bad |= parse_rule_sql(v, j, p, r);
	STOP_OR_GO();
	bad |= parse_rule_mask(v, j, r);
	STOP_OR_GO();
#undef STOP_OR_GO
	if (r->action == POLICY_REVIEW) {
		bool proto = r->when.ntargets > 0;

		for (size_t i = 0; i < r->when.ntargets; i++)
			proto &= p->targets[r->when.targets[i]].proto !=
				 PROTO_TCP;
		if (!proto)
			bad = jv_fail(v, "action",
				      "review holds requests: name the "
				      "postgres target(s) it applies to in "
				      "\"when\".\"target\" (tcp targets "
				      "carry no requests)");
	}
	if (r->mode == POLICY_SHADOW)
		p->has_shadow = true;
	return bad ? -1 : 0;
}

/* Parse root[key], an array, calling @one for each element; with v->all
 * every element is parsed even after a failure. Returns 0 or -1. */
static int parse_array(struct jv *v, json_t *root, const char *key,
		       void **items, size_t size, size_t *n,
		       int (*one)(struct jv *, json_t *, struct policy *,
				  size_t),
		       struct policy *p)
{
	json_t *a = json_object_get(root, key);
	size_t old;
	int ret = 0;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return jv_fail(v, key, "expected an array of %s", key);
	if (!json_array_size(a))
		return 0;
	*items = calloc(json_array_size(a), size);
	if (!*items)
		return jv_fail(v, key, "out of memory");
	old = jv_push_key(v, key);
	for (size_t i = 0; i < json_array_size(a); i++) {
		size_t o2 = jv_push_index(v, i);

		*n = i + 1;
		if (one(v, json_array_get(a, i), p, i)) {
			ret = -1;
			if (!v->all) {
				jv_pop(v, old);
				return -1;
			}
		}
		jv_pop(v, o2);
	}
	jv_pop(v, old);
	return ret;
}

static void set_version(struct policy *p, json_t *root)
{
	char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	uint8_t md[SHA256_DIGEST_LENGTH];

	snprintf(p->version, sizeof(p->version), "sha256:unknown");
	if (!text)
		return;
	SHA256((const uint8_t *)text, strlen(text), md);
	free(text);
	memcpy(p->version, "sha256:", 7);
	for (int i = 0; i < 8; i++)
		snprintf(p->version + 7 + i * 2, 3, "%02x", md[i]);
}

static int parse_target_cb(struct jv *v, json_t *j, struct policy *p, size_t i)
{
	return parse_target(v, j, p, i);
}

static int parse_issuer_cb(struct jv *v, json_t *j, struct policy *p, size_t i)
{
	if (!json_is_object(j))
		return jv_fail(v, NULL, "expected an issuer object");
	return parse_issuer(v, j, p, i);
}

struct policy *policy_compile(struct jv *v, json_t *root)
{
	static const char *const keys[] = { "mode",    "default", "issuers",
					    "targets", "rules",	  NULL };
	struct policy *p;
	int bad;

	if (jv_object(v, root, keys))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p) {
		jv_fail(v, NULL, "out of memory");
		return NULL;
	}
	p->refs = 1;
	p->def = POLICY_DENY;
	p->mode = POLICY_ENFORCE;
	bad = parse_action(v, root, "default", false, false, &p->def) ||
	      parse_mode(v, root, &p->mode);
	if (bad && !v->all)
		goto fail;
	bad |= parse_array(v, root, "issuers", (void **)&p->issuers,
			   sizeof(*p->issuers), &p->nissuers, parse_issuer_cb,
			   p);
	if (bad && !v->all)
		goto fail;
	bad |= parse_array(v, root, "targets", (void **)&p->targets,
			   sizeof(*p->targets), &p->ntargets, parse_target_cb,
			   p);
	if (bad && !v->all)
		goto fail;
	bad |= parse_array(v, root, "rules", (void **)&p->rules,
			   sizeof(*p->rules), &p->nrules, parse_rule, p);
	if (bad)
		goto fail;
	p->counters = calloc(p->nrules + PSEUDO_N, sizeof(*p->counters));
	if (!p->counters) {
		jv_fail(v, NULL, "out of memory");
		goto fail;
	}
	set_version(p, root);
	return p;
fail:
	policy_free(p);
	return NULL;
}

struct policy *policy_load_file(const char *path, char *err, size_t errlen)
{
	struct policy *p;
	struct jv v;
	json_t *root = jv_load_file(path, err, errlen);

	if (!root)
		return NULL;
	jv_init(&v, path, err, errlen);
	p = policy_compile(&v, root);
	json_decref(root);
	return p;
}

static const struct policy_target *
match_target(const struct policy *p, const struct policy_input *in, size_t *idx)
{
	const struct policy_target *best = NULL;
	unsigned best_score = 0;

	for (size_t i = 0; i < p->ntargets; i++) {
		const struct policy_target *t = &p->targets[i];
		unsigned score;

		if (t->family != in->family)
			continue;
		if (t->port && t->port != in->port)
			continue;
		if (!prefix_match(t->addr, t->prefix, in->addr))
			continue;
		score = t->prefix * 2 + (t->port ? 1 : 0) + 1;
		if (score > best_score) {
			best = t;
			best_score = score;
			*idx = i;
		}
	}
	return best;
}

/* @flags: fnmatch's; e-mail addresses match without regard to case. */
static bool globs_hit(const struct globs *g, const char *s, int flags)
{
	if (!g->n)
		return true;
	if (!s)
		return false;
	for (size_t i = 0; i < g->n; i++)
		if (fnmatch(g->v[i], s, flags) == 0)
			return true;
	return false;
}

static bool labels_hit(json_t *want, json_t *have)
{
	const char *k;
	json_t *w;

	json_object_foreach(want, k, w) {
		json_t *h = have ? json_object_get(have, k) : NULL;
		bool hit = false;
		size_t i;
		json_t *e;

		if (!h)
			return false;
		if (json_is_string(w))
			hit = json_equal(h, w);
		json_array_foreach(w, i, e)
			hit |= json_equal(h, e);
		if (!hit)
			return false;
	}
	return true;
}

static bool user_hit(const struct policy_when *w, const struct policy_user *u)
{
	bool hit;

	if (!u || !globs_hit(&w->subs, u->sub, 0) ||
	    !globs_hit(&w->emails, u->email, FNM_CASEFOLD) ||
	    !globs_hit(&w->issuers, u->issuer, 0))
		return false;
	if (!w->groups.n)
		return true;
	hit = false;
	for (size_t i = 0; i < u->ngroups && !hit; i++)
		hit = globs_hit(&w->groups, u->groups[i], 0);
	return hit;
}

enum match { NO, YES, PENDING };

/* Does @r apply to @in at @target? PENDING: only the user, not known yet,
 * could tell. */
static enum match rule_matches(const struct policy_rule *r, size_t target,
			       const struct policy_input *in)
{
	const struct policy_when *w = &r->when;

	if (w->ntargets) {
		bool hit = false;

		for (size_t i = 0; i < w->ntargets && !hit; i++)
			hit = w->targets[i] == target;
		if (!hit)
			return NO;
	}
	if (!globs_hit(&w->workloads, in->workload, 0) ||
	    !globs_hit(&w->namespaces, in->k8s_namespace, 0) ||
	    !globs_hit(&w->pods, in->pod, 0) ||
	    !globs_hit(&w->service_accounts, in->service_account, 0) ||
	    !globs_hit(&w->exes, in->exe, 0))
		return NO;
	if (w->labels && !labels_hit(w->labels, in->labels))
		return NO;
	if (w->nuids) {
		bool hit = false;

		for (size_t i = 0; i < w->nuids && !hit; i++)
			hit = w->uids[i] == in->uid;
		if (!hit)
			return NO;
	}
	if (w->user) {
		if (!in->user && in->user_pending)
			return PENDING;
		if (!user_hit(w, in->user))
			return NO;
	}
	return YES;
}

static void trace_add(struct policy_trace *t, const struct policy_rule *r)
{
	if (!t)
		return;
	if (t->n < sizeof(t->m) / sizeof(t->m[0]))
		t->m[t->n] =
			(struct policy_match){ r->name, r->action, r->mode };
	t->n++;
}

/* The winner so far of one action: the most specific, then the first. */
static void consider(const struct policy_rule **best,
		     const struct policy_rule *r)
{
	if (!*best || r->specificity > (*best)->specificity)
		*best = r;
}

static void set_rule(const struct policy *p, struct policy_decision *out,
		     enum policy_action a, const struct policy_rule *r)
{
	out->action = a;
	out->rule = r->name;
	out->rule_idx = (size_t)(r - p->rules);
	out->message = r->message;
}

static void set_pseudo(const struct policy *p, struct policy_decision *out,
		       enum policy_action a, int which, const char *message)
{
	out->action = a;
	out->rule = pseudo_names[which];
	out->rule_idx = p->nrules + (size_t)which;
	out->message = message;
}

static bool rule_on(const struct policy_rule *r, bool shadow)
{
	return r->mode == POLICY_ENFORCE ||
	       (shadow && r->mode == POLICY_SHADOW);
}

/* What one evaluation looks at: the request, and for a statement the
 * statement. */
struct eval_ctx {
	const struct policy_input *in;
	size_t target; /* index; valid when t is set */
	const struct policy_target *t; /* NULL: no target matched */
	const struct policy_stmt *ps; /* NULL: the connection */
};

/* The connection decision with rules of mode enforce (and shadow, with
 * @shadow). */
static void eval_connect(const struct policy *p, const struct eval_ctx *c,
			 bool shadow, struct policy_decision *out,
			 struct policy_trace *trace)
{
	const struct policy_rule *deny = NULL, *allow = NULL;
	const struct policy_target *t = c->t;
	size_t idx = c->target;
	struct policy_input pin;
	const struct policy_input *in = &pin;

	if (!t)
		return; /* the default */
	/* Only a target that asks for a token will learn the user: a rule
	 * about users never admits a connection to any other. */
	pin = *c->in;
	pin.user_pending = pin.user_pending && t->require_user;

	set_pseudo(p, out, p->def, PSEUDO_DEFAULT, NULL);
	if (t->require_user && !in->user && !in->user_pending) {
		set_pseudo(p, out, POLICY_DENY, PSEUDO_TOKEN,
			   "this target requires a user token");
		return;
	}
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];
		enum match m;

		if (!rule_on(r, shadow))
			continue;
		/* An sql part speaks of statements: such a rule says nothing
		 * of a target without them. */
		if ((r->sql || r->mask) && t->proto != PROTO_POSTGRES)
			continue;
		m = rule_matches(r, idx, in);
		if (m == NO)
			continue;
		/* A user's rules decide at login, once the user is known. */
		if (m == PENDING && r->action == POLICY_DENY)
			continue;
		trace_add(trace, r);
		/* A deny rule with an sql part denies statements, not the
		 * connection; a review rule holds requests, not the session. */
		if (r->action == POLICY_DENY && !r->sql)
			consider(&deny, r);
		else if (r->action != POLICY_DENY)
			consider(&allow, r);
	}
	if (deny)
		set_rule(p, out, POLICY_DENY, deny);
	else if (allow)
		set_rule(p, out, POLICY_ALLOW, allow);
}

static int rank(enum policy_action a)
{
	return a == POLICY_DENY ? 2 : a == POLICY_REVIEW ? 1 : 0;
}

/*
 * Apply the modes: @full was decided with the shadow rules too, @enf (when
 * the policy has shadow rules) without them. The effective decision goes
 * to @out, and what shadow mode let through to its would_* fields.
 */
static void apply_modes(const struct policy *p,
			const struct policy_decision *full,
			const struct policy_decision *enf,
			struct policy_decision *out)
{
	if (p->mode == POLICY_SHADOW) {
		*out = *full;
		if (full->action != POLICY_ALLOW) {
			out->would_rule = full->rule;
			out->would_idx = full->rule_idx;
			out->would_action = full->action;
			out->action = POLICY_ALLOW;
		}
		return;
	}
	*out = *enf;
	if (rank(full->action) > rank(enf->action)) {
		out->would_rule = full->rule;
		out->would_idx = full->rule_idx;
		out->would_action = full->action;
	}
}

static void decide_common(const struct policy *p, struct policy_decision *out)
{
	memset(out, 0, sizeof(*out));
	out->proto = PROTO_TCP;
	set_pseudo(p, out, p->def, PSEUDO_DEFAULT, NULL);
}

typedef void (*eval_fn)(const struct policy *p, const struct eval_ctx *c,
			bool shadow, struct policy_decision *out,
			struct policy_trace *trace);

/*
 * Evaluate with the modes: once with the shadow rules (what is logged),
 * and, when the policy has shadow rules, once without (what is done).
 * @out comes with the target and the default filled in.
 */
static void decide_modes(const struct policy *p, const struct eval_ctx *c,
			 eval_fn eval, struct policy_decision *out,
			 struct policy_trace *trace)
{
	struct policy_decision full = *out, enf;

	if (p->mode == POLICY_OFF) {
		set_pseudo(p, out, POLICY_ALLOW, PSEUDO_OFF, NULL);
		return;
	}
	eval(p, c, true, &full, trace);
	enf = full;
	if (p->has_shadow && p->mode != POLICY_SHADOW) {
		enf = *out;
		eval(p, c, false, &enf, NULL);
	}
	apply_modes(p, &full, &enf, out);
}

void policy_decide_trace(const struct policy *p, const struct policy_input *in,
			 struct policy_decision *out,
			 struct policy_trace *trace)
{
	struct eval_ctx c = { .in = in };

	decide_common(p, out);
	c.t = match_target(p, in, &c.target);
	if (c.t) {
		out->target = c.t->name;
		out->target_idx = c.target;
		out->proto = c.t->proto;
	}
	decide_modes(p, &c, eval_connect, out, trace);
}

void policy_decide(const struct policy *p, const struct policy_input *in,
		   struct policy_decision *out)
{
	policy_decide_trace(p, in, out, NULL);
}

/*
 * Functions a statement may call without a rule naming them: built-ins
 * that compute, aggregate or read catalog metadata, and never touch files,
 * settings or other sessions. Anything else is opaque code to the policy.
 */
static const char *const plain_functions[] = {
	"abs",
	"age",
	"array_agg",
	"array_length",
	"array_position",
	"array_to_string",
	"avg",
	"bit_length",
	"bool_and",
	"bool_or",
	"btrim",
	"cardinality",
	"ceil",
	"ceiling",
	"char_length",
	"character_length",
	"col_description",
	"concat",
	"concat_ws",
	"count",
	"cume_dist",
	"current_database",
	"current_schema",
	"current_schemas",
	"date_part",
	"date_trunc",
	"decode",
	"dense_rank",
	"encode",
	"every",
	"exp",
	"extract",
	"first_value",
	"floor",
	"format",
	"format_type",
	"generate_series",
	"initcap",
	"json_agg",
	"json_array_elements",
	"json_build_array",
	"json_build_object",
	"json_extract_path_text",
	"json_object_agg",
	"jsonb_agg",
	"jsonb_array_elements",
	"jsonb_build_array",
	"jsonb_build_object",
	"jsonb_each",
	"jsonb_extract_path",
	"jsonb_extract_path_text",
	"jsonb_object_keys",
	"jsonb_pretty",
	"lag",
	"last_value",
	"lead",
	"left",
	"length",
	"ln",
	"log",
	"lower",
	"lpad",
	"ltrim",
	"make_date",
	"make_interval",
	"make_timestamp",
	"max",
	"md5",
	"min",
	"mod",
	"mode",
	"now",
	"ntile",
	"obj_description",
	"octet_length",
	"percent_rank",
	"percentile_cont",
	"percentile_disc",
	"pg_encoding_to_char",
	"pg_function_is_visible",
	"pg_get_constraintdef",
	"pg_get_expr",
	"pg_get_function_arguments",
	"pg_get_function_result",
	"pg_get_indexdef",
	"pg_get_triggerdef",
	"pg_get_userbyid",
	"pg_get_viewdef",
	"pg_relation_size",
	"pg_size_pretty",
	"pg_table_is_visible",
	"pg_total_relation_size",
	"pg_type_is_visible",
	"position",
	"power",
	"quote_ident",
	"quote_literal",
	"random",
	"rank",
	"regexp_match",
	"regexp_matches",
	"regexp_replace",
	"repeat",
	"replace",
	"reverse",
	"right",
	"round",
	"row_number",
	"row_to_json",
	"rpad",
	"rtrim",
	"sign",
	"split_part",
	"sqrt",
	"starts_with",
	"statement_timestamp",
	"stddev",
	"string_agg",
	"strpos",
	"substr",
	"substring",
	"sum",
	"timezone",
	"to_char",
	"to_date",
	"to_json",
	"to_jsonb",
	"to_number",
	"to_timestamp",
	"translate",
	"trim",
	"trunc",
	"unnest",
	"upper",
	"variance",
	"version",
	NULL,
};

static bool plain_function(const char *name)
{
	if (strncmp(name, "pg_catalog.", 11) == 0)
		name += 11;
	else if (strchr(name, '.'))
		return false;
	for (int i = 0; plain_functions[i]; i++)
		if (strcmp(plain_functions[i], name) == 0)
			return true;
	return false;
}

static bool glob_any(char *const *globs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(globs[i], name, 0) == 0)
			return true;
	return false;
}

/* Relations of pg_catalog (PostgreSQL 15): an unqualified name among
 * these is the catalog's, since pg_catalog is searched first. */
static const char *const catalog_relations[] = {
	"pg_aggregate",
	"pg_am",
	"pg_amop",
	"pg_amproc",
	"pg_attrdef",
	"pg_attribute",
	"pg_auth_members",
	"pg_authid",
	"pg_available_extension_versions",
	"pg_available_extensions",
	"pg_backend_memory_contexts",
	"pg_cast",
	"pg_class",
	"pg_collation",
	"pg_config",
	"pg_constraint",
	"pg_conversion",
	"pg_cursors",
	"pg_database",
	"pg_db_role_setting",
	"pg_default_acl",
	"pg_depend",
	"pg_description",
	"pg_enum",
	"pg_event_trigger",
	"pg_extension",
	"pg_file_settings",
	"pg_foreign_data_wrapper",
	"pg_foreign_server",
	"pg_foreign_table",
	"pg_group",
	"pg_hba_file_rules",
	"pg_ident_file_mappings",
	"pg_index",
	"pg_indexes",
	"pg_inherits",
	"pg_init_privs",
	"pg_language",
	"pg_largeobject",
	"pg_largeobject_metadata",
	"pg_locks",
	"pg_matviews",
	"pg_namespace",
	"pg_opclass",
	"pg_operator",
	"pg_opfamily",
	"pg_parameter_acl",
	"pg_partitioned_table",
	"pg_policies",
	"pg_policy",
	"pg_prepared_statements",
	"pg_prepared_xacts",
	"pg_proc",
	"pg_publication",
	"pg_publication_namespace",
	"pg_publication_rel",
	"pg_publication_tables",
	"pg_range",
	"pg_replication_origin",
	"pg_replication_origin_status",
	"pg_replication_slots",
	"pg_rewrite",
	"pg_roles",
	"pg_rules",
	"pg_seclabel",
	"pg_seclabels",
	"pg_sequence",
	"pg_sequences",
	"pg_settings",
	"pg_shadow",
	"pg_shdepend",
	"pg_shdescription",
	"pg_shmem_allocations",
	"pg_shseclabel",
	"pg_stat_activity",
	"pg_stat_all_indexes",
	"pg_stat_all_tables",
	"pg_stat_archiver",
	"pg_stat_bgwriter",
	"pg_stat_database",
	"pg_stat_database_conflicts",
	"pg_stat_gssapi",
	"pg_stat_progress_analyze",
	"pg_stat_progress_basebackup",
	"pg_stat_progress_cluster",
	"pg_stat_progress_copy",
	"pg_stat_progress_create_index",
	"pg_stat_progress_vacuum",
	"pg_stat_recovery_prefetch",
	"pg_stat_replication",
	"pg_stat_replication_slots",
	"pg_stat_slru",
	"pg_stat_ssl",
	"pg_stat_subscription",
	"pg_stat_subscription_stats",
	"pg_stat_sys_indexes",
	"pg_stat_sys_tables",
	"pg_stat_user_functions",
	"pg_stat_user_indexes",
	"pg_stat_user_tables",
	"pg_stat_wal",
	"pg_stat_wal_receiver",
	"pg_stat_xact_all_tables",
	"pg_stat_xact_sys_tables",
	"pg_stat_xact_user_functions",
	"pg_stat_xact_user_tables",
	"pg_statio_all_indexes",
	"pg_statio_all_sequences",
	"pg_statio_all_tables",
	"pg_statio_sys_indexes",
	"pg_statio_sys_sequences",
	"pg_statio_sys_tables",
	"pg_statio_user_indexes",
	"pg_statio_user_sequences",
	"pg_statio_user_tables",
	"pg_statistic",
	"pg_statistic_ext",
	"pg_statistic_ext_data",
	"pg_stats",
	"pg_stats_ext",
	"pg_stats_ext_exprs",
	"pg_subscription",
	"pg_subscription_rel",
	"pg_tables",
	"pg_tablespace",
	"pg_timezone_abbrevs",
	"pg_timezone_names",
	"pg_transform",
	"pg_trigger",
	"pg_ts_config",
	"pg_ts_config_map",
	"pg_ts_dict",
	"pg_ts_parser",
	"pg_ts_template",
	"pg_type",
	"pg_user",
	"pg_user_mapping",
	"pg_user_mappings",
	"pg_views",
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool catalog_relation(const char *name)
{
	return bsearch(&name, catalog_relations,
		       sizeof(catalog_relations) / sizeof(*catalog_relations),
		       sizeof(*catalog_relations), cmp_str) != NULL;
}

/*
 * Does table @t match @globs? A qualified name is matched as written. An
 * unqualified one may be any schema of the search path (or pg_catalog for
 * pg_* names, which PostgreSQL searches first): with @all every one of them
 * must match, else any one.
 */
/*
 * Does unqualified @bare match @globs as some schema of the search path
 * would name it (and pg_catalog, with @catalog)? With @all every one of
 * them must match, else any one.
 */
static bool path_matches(const struct policy_stmt *ps, const char *bare,
			 char *const *globs, size_t n, bool all, bool catalog)
{
	static const char *const fallback[] = { "public" };
	const char *const *sch = ps->nschemas ? ps->schemas : fallback;
	size_t nsch = ps->nschemas ? ps->nschemas : 1;
	char name[512];
	bool any = false;

	for (size_t i = 0; i < nsch + catalog; i++) {
		bool hit;

		snprintf(name, sizeof(name), "%s.%s",
			 i < nsch ? sch[i] : "pg_catalog", bare);
		hit = glob_any(globs, n, name);
		if (all && !hit)
			return false;
		any |= hit;
	}
	return any;
}

static bool table_matches(const struct policy_stmt *ps,
			  const struct sql_table *t, char *const *globs,
			  size_t n, bool all)
{
	char name[512];

	if (t->qualified)
		return glob_any(globs, n, t->name);
	if (catalog_relation(t->name)) {
		snprintf(name, sizeof(name), "pg_catalog.%s", t->name);
		return glob_any(globs, n, name);
	}
	return path_matches(ps, t->name, globs, n, all,
			    strncmp(t->name, "pg_", 3) == 0);
}

/*
 * Does function @f match @globs? As written, or, called without a schema,
 * as any schema of the search path would name it: with @all every one,
 * else any one.
 */
static bool function_matches(const struct policy_stmt *ps, const char *f,
			     char *const *globs, size_t n, bool all)
{
	if (glob_any(globs, n, f))
		return true;
	/* For a deny, "dblink*" also catches public.dblink(). */
	if (!all && strrchr(f, '.') && glob_any(globs, n, strrchr(f, '.') + 1))
		return true;
	if (strchr(f, '.'))
		return false;
	return path_matches(ps, f, globs, n, all, false);
}

static enum sql_command stmt_command(const struct sql_stmt *st)
{
	return st->command == SQL_PREPARE ? st->inner : st->command;
}

/* A deny rule's sql part matches when every list it has hits. */
static bool sql_deny_matches(const struct policy_sql *q,
			     const struct policy_stmt *ps)
{
	const struct sql_stmt *st = ps->st;
	bool hit;

	/* Any command the statement runs, a DELETE in a CTE included. */
	if (q->commands &&
	    !(q->commands & ((1u << stmt_command(st)) | st->dml)))
		return false;
	if (q->ntables) {
		hit = false;
		for (size_t i = 0; i < st->ntables && !hit; i++)
			hit = table_matches(ps, &st->tables[i], q->tables,
					    q->ntables, false);
		if (!hit)
			return false;
	}
	if (q->nfunctions) {
		hit = false;
		for (size_t i = 0; i < st->nfunctions && !hit; i++)
			hit = function_matches(ps, st->functions[i],
					       q->functions, q->nfunctions,
					       false);
		if (!hit)
			return false;
	}
	return true;
}

/* An allow rule's sql part covers a statement when it allows the command,
 * every table, every function that is not plain, and every risky flag. */
static bool sql_allow_covers(const struct policy_sql *q,
			     const struct policy_stmt *ps)
{
	const struct sql_stmt *st = ps->st;
	uint32_t risky = st->flags & ~SQL_F_WRITE;

	/* Every command it runs: the statement's own, and the writes
	 * inside it (WITH d AS (DELETE …) SELECT needs delete too). */
	if (q->commands &&
	    (((1u << stmt_command(st)) | st->dml) & ~q->commands))
		return false;
	if (risky & ~q->permit)
		return false;
	/* A DDL statement whose objects are not tables (DROP FUNCTION…)
	 * touches no table: only a rule without a table list covers it. */
	if (q->ntables && st->ntables == 0 && stmt_command(st) == SQL_DDL)
		return false;
	for (size_t i = 0; i < st->ntables; i++)
		if (q->ntables && !table_matches(ps, &st->tables[i], q->tables,
						 q->ntables, true))
			return false;
	for (size_t i = 0; i < st->nfunctions; i++)
		if (!plain_function(st->functions[i]) &&
		    !function_matches(ps, st->functions[i], q->functions,
				      q->nfunctions, true))
			return false;
	return true;
}

/* Statements any allowed session may run unless a rule denies them. */
static bool housekeeping(const struct sql_stmt *st)
{
	switch (st->command) {
	case SQL_TRANSACTION:
	case SQL_SHOW:
		return true;
	case SQL_SET:
		/* search_path changes what unqualified names mean. */
		return st->flags == 0 && !st->nsearch_path &&
		       !st->resets_search_path;
	default:
		return false;
	}
}

/*
 * Does the token's scope list grant every command @st runs on every table
 * it names? A scope is "sql:COMMAND:TABLE", where COMMAND may be "*" and
 * TABLE a glob as in rules ("sql:select" alone: any table).
 */
static bool scopes_cover(const struct policy_user *u,
			 const struct policy_stmt *ps)
{
	const struct sql_stmt *st = ps->st;
	uint32_t need = (1u << stmt_command(st)) | st->dml;

	for (int c = 0; c <= SQL_UTILITY; c++) {
		const char *cmd = sql_command_name(c);
		size_t clen = strlen(cmd);

		if (!(need & (1u << c)))
			continue;
		/* Every table, or the command alone when it names none. */
		for (size_t t = 0; t < (st->ntables ? st->ntables : 1); t++) {
			bool hit = false;

			for (size_t i = 0; i < u->nscopes && !hit; i++) {
				const char *s = u->scopes[i], *tab;
				char *glob;

				if (strncmp(s, "sql:", 4))
					continue;
				s += 4;
				if (!strncmp(s, "*", 1) &&
				    (s[1] == ':' || !s[1]))
					tab = s + 1;
				else if (!strncmp(s, cmd, clen) &&
					 (s[clen] == ':' || !s[clen]))
					tab = s + clen;
				else
					continue;
				if (!*tab || !strcmp(tab, ":*")) {
					hit = true;
					continue;
				}
				if (!st->ntables)
					continue;
				glob = (char *)(tab + 1);
				hit = table_matches(ps, &st->tables[t], &glob,
						    1, true);
			}
			if (!hit)
				return false;
		}
	}
	return true;
}

static void eval_stmt(const struct policy *p, const struct eval_ctx *c,
		      bool shadow, struct policy_decision *out,
		      struct policy_trace *trace)
{
	const struct policy_rule *deny = NULL, *review = NULL, *allow = NULL;
	const struct policy_input *in = c->in;
	const struct policy_stmt *ps = c->ps;
	const struct policy_target *t = c->t;
	size_t target = c->target;
	bool connects = p->def == POLICY_ALLOW;

	if (t->require_user && !in->user) {
		set_pseudo(p, out, POLICY_DENY, PSEUDO_TOKEN,
			   "this target requires a user token");
		return;
	}
	if (in->user && in->user->expires && in->now > in->user->expires) {
		set_pseudo(p, out, POLICY_DENY, PSEUDO_TOKEN,
			   "token expired: reconnect with a fresh token");
		return;
	}
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (!rule_on(r, shadow) || rule_matches(r, target, in) != YES)
			continue;
		if (r->action != POLICY_ALLOW) {
			connects |= r->action == POLICY_REVIEW;
			if (r->sql && !sql_deny_matches(r->sql, ps))
				continue;
			trace_add(trace, r);
			consider(r->action == POLICY_DENY ? &deny : &review, r);
			continue;
		}
		connects = true;
		if (r->sql && !sql_allow_covers(r->sql, ps))
			continue;
		trace_add(trace, r);
		consider(&allow, r);
	}
	if (deny)
		set_rule(p, out, POLICY_DENY, deny);
	else if (review)
		set_rule(p, out, POLICY_REVIEW, review);
	else if (allow)
		set_rule(p, out, POLICY_ALLOW, allow);
	else if (connects && housekeeping(ps->st))
		set_pseudo(p, out, POLICY_ALLOW, PSEUDO_SESSION, NULL);
	else
		return; /* the default */
	/* The token narrows what the rules grant. */
	if (out->action != POLICY_DENY && in->user && in->user->scoped &&
	    !housekeeping(ps->st) && !scopes_cover(in->user, ps))
		set_pseudo(p, out, POLICY_DENY, PSEUDO_TOKEN,
			   "the token's scopes do not allow this statement");
}

void policy_decide_stmt_trace(const struct policy *p,
			      const struct policy_input *in, size_t target,
			      const struct policy_stmt *ps,
			      struct policy_decision *out,
			      struct policy_trace *trace)
{
	struct eval_ctx c = { .in = in, .target = target, .ps = ps };

	decide_common(p, out);
	if (target >= p->ntargets) {
		set_pseudo(p, out, POLICY_DENY, PSEUDO_DEFAULT, NULL);
		return;
	}
	c.t = &p->targets[target];
	out->target = c.t->name;
	out->target_idx = target;
	out->proto = c.t->proto;
	decide_modes(p, &c, eval_stmt, out, trace);
}

void policy_decide_stmt(const struct policy *p, const struct policy_input *in,
			size_t target, const struct policy_stmt *ps,
			struct policy_decision *out)
{
	policy_decide_stmt_trace(p, in, target, ps, out, NULL);
}

void policy_refused(const struct policy *p, const char *message,
		    struct policy_decision *out)
{
	decide_common(p, out);
	set_pseudo(p, out, POLICY_DENY, PSEUDO_BRIDLE, message);
}

void policy_note(const struct policy *p, const struct policy_decision *d)
{
	size_t n = p->nrules + PSEUDO_N;
	int c = d->action == POLICY_ALLOW  ? CNT_ALLOW :
		d->action == POLICY_REVIEW ? CNT_REVIEW :
					     CNT_DENY;

	if (d->would_rule && d->would_idx < n)
		__atomic_add_fetch(&p->counters[d->would_idx][CNT_SHADOW], 1,
				   __ATOMIC_RELAXED);
	if (d->rule_idx < n && !(d->would_rule && d->would_idx == d->rule_idx))
		__atomic_add_fetch(&p->counters[d->rule_idx][c], 1,
				   __ATOMIC_RELAXED);
}

const char *policy_decision_name(const struct policy_decision *d)
{
	if (d->would_rule)
		return d->would_action == POLICY_REVIEW ? "shadow_review" :
							  "shadow_deny";
	return policy_action_name(d->action);
}

static json_t *counters_json(const struct policy *p, size_t i)
{
	const uint64_t *c = p->counters[i];

	return json_pack(
		"{s:I,s:I,s:I,s:I}", "allow",
		(json_int_t)__atomic_load_n(&c[CNT_ALLOW], __ATOMIC_RELAXED),
		"deny",
		(json_int_t)__atomic_load_n(&c[CNT_DENY], __ATOMIC_RELAXED),
		"review",
		(json_int_t)__atomic_load_n(&c[CNT_REVIEW], __ATOMIC_RELAXED),
		"shadow",
		(json_int_t)__atomic_load_n(&c[CNT_SHADOW], __ATOMIC_RELAXED));
}

json_t *policy_stats_json(const struct policy *p)
{
	json_t *rules = json_array();

	for (size_t i = 0; i < p->nrules + PSEUDO_N; i++) {
		json_t *r = counters_json(p, i);

		if (i < p->nrules) {
			json_object_set_new(r, "name",
					    json_string(p->rules[i].name));
			json_object_set_new(r, "action",
					    json_string(policy_action_name(
						    p->rules[i].action)));
			json_object_set_new(r, "mode",
					    json_string(policy_mode_name(
						    p->rules[i].mode)));
		} else {
			json_object_set_new(
				r, "name",
				json_string(pseudo_names[i - p->nrules]));
			json_object_set_new(r, "pseudo", json_true());
		}
		json_array_append_new(rules, r);
	}
	return json_pack("{s:s,s:s,s:s,s:o}", "version", p->version, "mode",
			 policy_mode_name(p->mode), "default",
			 policy_action_name(p->def), "rules", rules);
}

const char *policy_version(const struct policy *p)
{
	return p->version;
}

enum policy_mode policy_mode_of(const struct policy *p)
{
	return p->mode;
}

size_t policy_issuer_count(const struct policy *p)
{
	return p->nissuers;
}

const struct policy_issuer *policy_issuer_at(const struct policy *p, size_t idx)
{
	return idx < p->nissuers ? &p->issuers[idx] : NULL;
}

/* The stronger of two styles: redact hides most, then hash, then partial. */
static enum mask_style stronger(enum mask_style a, enum mask_style b)
{
	static const int rank[] = {
		[MASK_REDACT] = 3, [MASK_HASH] = 2, [MASK_PARTIAL] = 1
	};

	return rank[a] >= rank[b] ? a : b;
}

int policy_mask_plan(const struct policy *p, const struct policy_input *in,
		     size_t target, struct policy_mask_plan *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];
		struct policy_mask_column *nc;

		if (!r->mask || r->mode != POLICY_ENFORCE ||
		    p->mode == POLICY_OFF || rule_matches(r, target, in) != YES)
			continue;
		for (int d = 0; d < MASK_NDETECTORS; d++) {
			if (!(r->mask->detectors & (1u << d)))
				continue;
			out->detector_style[d] =
				out->detectors & (1u << d) ?
					stronger(out->detector_style[d],
						 r->mask->style) :
					r->mask->style;
			out->detectors |= 1u << d;
		}
		if (!r->mask->ncolumns)
			continue;
		nc = realloc(out->columns,
			     (out->ncolumns + r->mask->ncolumns) * sizeof(*nc));
		if (!nc) {
			policy_mask_plan_release(out);
			return -ENOMEM;
		}
		out->columns = nc;
		for (size_t k = 0; k < r->mask->ncolumns; k++) {
			struct policy_mask_column *c =
				&out->columns[out->ncolumns++];

			c->pattern = r->mask->columns[k];
			c->style = r->mask->style;
			c->dots = 0;
			for (const char *q = c->pattern; *q; q++)
				c->dots += *q == '.';
		}
	}
	return 0;
}

void policy_mask_plan_release(struct policy_mask_plan *m)
{
	free(m->columns);
	memset(m, 0, sizeof(*m));
}

json_t *policy_warnings(const struct policy *p)
{
	json_t *w = json_array();

	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];
		bool any_token = false;

		if (!r->when.user)
			continue;
		for (size_t k = 0; k < p->ntargets; k++) {
			bool named = !r->when.ntargets;

			for (size_t t = 0; t < r->when.ntargets; t++)
				named |= r->when.targets[t] == k;
			if (named && p->targets[k].require_user)
				any_token = true;
			else if (named && r->when.ntargets)
				json_array_append_new(
					w,
					json_sprintf(
						"$.rules[%zu]: rule \"%s\" "
						"names a user, but target "
						"\"%s\" takes no user token: "
						"set \"require_user\": true "
						"on the target, or the rule "
						"never applies there",
						i, r->name,
						p->targets[k].name));
		}
		if (!any_token && !r->when.ntargets)
			json_array_append_new(
				w,
				json_sprintf("$.rules[%zu]: rule \"%s\" names "
					     "a user, but no target takes user "
					     "tokens (\"require_user\"): it "
					     "never applies",
					     i, r->name));
	}
	if (p->mode != POLICY_ENFORCE)
		json_array_append_new(
			w, json_sprintf("$.mode: the policy is in %s mode: "
					"nothing it would deny is denied",
					policy_mode_name(p->mode)));
	return w;
}
