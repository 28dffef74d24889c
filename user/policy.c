// SPDX-License-Identifier: Apache-2.0
/*
 * Policy loading: the JSON document validated strictly (every error with
 * its path and a hint when asked for all of them), compiled into the
 * structs of policy_impl.h; and what is reported about a policy (stats,
 * version, warnings). Deciding is policy_eval.c's.
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
#include "policy_impl.h"

/* The names of decisions no rule of the file made (reserved). */
const char *const policy_pseudo_names[PSEUDO_N] = {
	[PSEUDO_DEFAULT] = POLICY_RULE_DEFAULT,
	[PSEUDO_SESSION] = POLICY_RULE_SESSION,
	[PSEUDO_TOKEN] = POLICY_RULE_TOKEN,
	[PSEUDO_OFF] = POLICY_RULE_OFF,
	[PSEUDO_BRIDLE] = POLICY_RULE_BRIDLE,
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
	strv_free(r->approvers.users, r->approvers.nusers);
	strv_free(r->approvers.groups, r->approvers.ngroups);
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
	if (jv_enum(v, obj, key, review ? words : two, "an action", &a))
		return -1;
	*out = (enum policy_action)a;
	return 0;
}

static int parse_mode(struct jv *v, json_t *obj, enum policy_mode *out)
{
	static const char *const words[] = { "enforce", "shadow", "off", NULL };
	int m = (int)*out;

	if (jv_enum(v, obj, "mode", words, "a mode", &m))
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

static int parse_when_workload(struct jv *v, json_t *w, const struct policy *p,
			       struct policy_rule *r)
{
	static const char *const keys[] = {
		"name", "labels", "namespace", "pod", "service_account", NULL
	};
	struct policy_when *wh = &r->when;
	json_t *labels;
	const char *k;
	json_t *val;

	(void)p; /* the parts of "when" share one signature */

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

static int parse_when_process(struct jv *v, json_t *w, const struct policy *p,
			      struct policy_rule *r)
{
	static const char *const keys[] = { "exe", "uid", NULL };
	struct policy_when *wh = &r->when;
	json_t *uid;

	(void)p; /* the parts of "when" share one signature */

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
	static const struct {
		const char *key;
		int (*parse)(struct jv *, json_t *, const struct policy *,
			     struct policy_rule *);
	} parts[] = {
		{ "workload", parse_when_workload },
		{ "process", parse_when_process },
		{ "user", parse_when_user },
	};
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
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t o2;

		if (!(part = json_object_get(w, parts[i].key)))
			continue;
		o2 = jv_push_key(v, parts[i].key);
		ret |= parts[i].parse(v, part, p, r);
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

/* A review rule's "approvers": {"users": […], "groups": […], "min": N}. */
static int parse_approvers(struct jv *v, json_t *j, struct policy_rule *r,
			   int bad_action)
{
	static const char *const keys[] = { "users", "groups", "min", NULL };
	json_t *a = json_object_get(j, "approvers");
	uint64_t min = 1;
	size_t old;
	int bad = 0;

	r->approvers.min = 1;
	if (!a)
		return 0;
	if (!bad_action && r->action != POLICY_REVIEW)
		return jv_fail(v, "approvers",
			       "only review rules have approvers");
	old = jv_push_key(v, "approvers");
	bad |= jv_object(v, a, keys);
	bad |= parse_strv(v, a, "users", &r->approvers.users,
			  &r->approvers.nusers);
	bad |= parse_strv(v, a, "groups", &r->approvers.groups,
			  &r->approvers.ngroups);
	bad |= jv_uint(v, a, "min", false, 1, 16, &min);
	r->approvers.min = (uint32_t)min;
	if (!bad && r->approvers.nusers && !r->approvers.ngroups &&
	    min > r->approvers.nusers)
		bad = jv_fail(v, "min",
			      "%llu approvals, from %zu named users: never "
			      "enough",
			      (unsigned long long)min, r->approvers.nusers);
	jv_pop(v, old);
	return bad ? -1 : 0;
}

static int parse_rule(struct jv *v, json_t *j, struct policy *p, size_t idx)
{
	static const char *const keys[] = {
		"name", "when", "action",	   "mode",	"message",
		"sql",	"mask", "timeout_seconds", "approvers", NULL
	};
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
		if (strcmp(name, policy_pseudo_names[i]) == 0)
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
	{
		uint64_t t = POLICY_REVIEW_TIMEOUT_S;

		if (jv_uint(v, j, "timeout_seconds", false, 1, 86400, &t))
			bad = -1;
		else if (json_object_get(j, "timeout_seconds") && !bad_action &&
			 r->action != POLICY_REVIEW)
			bad = jv_fail(v, "timeout_seconds",
				      "only review rules hold a request for a "
				      "time");
		r->timeout_s = (uint32_t)t;
	}
	STOP_OR_GO();
	bad |= parse_approvers(v, j, r, bad_action);
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
				json_string(
					policy_pseudo_names[i - p->nrules]));
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
