// SPDX-License-Identifier: Apache-2.0
/*
 * Policy loading and evaluation for connection-level decisions.
 *
 * Targets are matched most-specific first: the longest address prefix wins,
 * then a target with an explicit port over one without, then file order.
 * Among the rules that match the workload and the target, a deny beats an
 * allow; with no matching rule the policy's default applies.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct policy_rule {
	char *name;
	enum policy_action action;
	char *message;
	char **workloads; /* names; NULL: any */
	size_t nworkloads;
	json_t *labels; /* required labels; NULL: any */
	size_t *targets; /* indexes into policy->targets; NULL: any target */
	size_t ntargets;
	struct policy_sql *sql; /* NULL: every statement */
	struct policy_mask *mask; /* NULL: nothing masked */
};

struct policy {
	int refs; /* atomic */
	enum policy_action def;
	struct policy_target *targets;
	size_t ntargets;
	struct policy_rule *rules;
	size_t nrules;
};

const char *policy_action_name(enum policy_action a)
{
	return a == POLICY_ALLOW ? "allow" : "deny";
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
	for (size_t i = 0; i < r->nworkloads; i++)
		free(r->workloads[i]);
	free(r->workloads);
	json_decref(r->labels);
	free(r->targets);
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
	free(p);
}

static int parse_action(struct jv *v, json_t *obj, const char *key,
			bool required, enum policy_action *out)
{
	const char *s = NULL;

	if (jv_string(v, obj, key, required, &s))
		return -1;
	if (!s)
		return 0;
	if (strcmp(s, "allow") == 0)
		*out = POLICY_ALLOW;
	else if (strcmp(s, "deny") == 0)
		*out = POLICY_DENY;
	else
		return jv_fail(v, key, "\"%s\" is not an action (allow, deny)",
			       s);
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
		"name",	   "address",	  "port",	 "protocol", "tls",
		"ca_file", "server_name", "credentials", NULL,
	};
	struct policy_target *t = &p->targets[idx];
	const char *name = NULL, *address = NULL, *proto = "tcp";
	uint64_t port = 0;

	if (jv_object(v, j, keys) || jv_string(v, j, "name", true, &name) ||
	    jv_string(v, j, "address", true, &address) ||
	    jv_uint(v, j, "port", false, 1, 65535, &port) ||
	    jv_string(v, j, "protocol", false, &proto))
		return -1;
	if (!name_ok(name))
		return jv_fail(v, "name", "contains control characters");
	for (size_t i = 0; i < idx; i++)
		if (strcmp(p->targets[i].name, name) == 0)
			return jv_fail(v, "name",
				       "duplicate target name \"%s\"", name);
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
	t->name = strdup(name);
	if (!t->name)
		return jv_fail(v, NULL, "out of memory");
	return parse_target_tls(v, j, t) || parse_credentials(v, j, t) ? -1 : 0;
}

static int find_target(const struct policy *p, const char *name, size_t *idx)
{
	for (size_t i = 0; i < p->ntargets; i++)
		if (strcmp(p->targets[i].name, name) == 0) {
			*idx = i;
			return 0;
		}
	return -1;
}

static int parse_rule_targets(struct jv *v, json_t *j, struct policy *p,
			      struct policy_rule *r)
{
	json_t *t = json_object_get(j, "target");
	size_t n, old;

	if (!t)
		return 0;
	if (json_is_string(t)) {
		r->targets = calloc(1, sizeof(*r->targets));
		if (!r->targets)
			return jv_fail(v, "target", "out of memory");
		if (find_target(p, json_string_value(t), &r->targets[0]))
			return jv_fail(v, "target", "no target named \"%s\"",
				       json_string_value(t));
		r->ntargets = 1;
		return 0;
	}
	if (!json_is_array(t) || json_array_size(t) == 0)
		return jv_fail(v, "target",
			       "expected a target name or a non-empty array "
			       "of target names");
	n = json_array_size(t);
	r->targets = calloc(n, sizeof(*r->targets));
	if (!r->targets)
		return jv_fail(v, "target", "out of memory");
	old = jv_push_key(v, "target");
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(t, i);
		size_t o2 = jv_push_index(v, i);

		if (!json_is_string(e))
			return jv_fail(v, NULL, "expected a target name");
		if (find_target(p, json_string_value(e), &r->targets[i]))
			return jv_fail(v, NULL, "no target named \"%s\"",
				       json_string_value(e));
		r->ntargets++;
		jv_pop(v, o2);
	}
	jv_pop(v, old);
	return 0;
}

static int parse_rule_workload(struct jv *v, json_t *j, struct policy_rule *r)
{
	static const char *const keys[] = { "name", "labels", NULL };
	json_t *w = json_object_get(j, "workload"), *names, *labels;
	size_t old;
	int ret = -1;

	if (!w)
		return 0;
	old = jv_push_key(v, "workload");
	if (jv_object(v, w, keys))
		goto out;
	names = json_object_get(w, "name");
	if (names) {
		size_t n = json_is_array(names) ? json_array_size(names) : 1;

		if (!json_is_string(names) &&
		    !(json_is_array(names) && n > 0)) {
			jv_fail(v, "name",
				"expected a workload name or a non-empty array "
				"of names (globs allowed)");
			goto out;
		}
		r->workloads = calloc(n, sizeof(*r->workloads));
		if (!r->workloads)
			goto out;
		for (size_t i = 0; i < n; i++) {
			json_t *e = json_is_array(names) ?
					    json_array_get(names, i) :
					    names;

			if (!json_is_string(e)) {
				jv_fail(v, "name", "expected strings");
				goto out;
			}
			r->workloads[i] = strdup(json_string_value(e));
			if (!r->workloads[i])
				goto out;
			r->nworkloads++;
		}
	}
	labels = json_object_get(w, "labels");
	if (labels) {
		const char *k;
		json_t *val;

		if (!json_is_object(labels)) {
			jv_fail(v, "labels",
				"expected an object of label: value");
			goto out;
		}
		json_object_foreach(labels, k, val) {
			if (!json_is_string(val)) {
				size_t o2 = jv_push_key(v, "labels");

				jv_fail(v, k, "label values must be strings");
				jv_pop(v, o2);
				goto out;
			}
		}
		r->labels = json_incref(labels);
	}
	ret = 0;
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
	for (i = 0; i < r->ntargets; i++)
		if (p->targets[r->targets[i]].proto != PROTO_POSTGRES) {
			jv_fail(v, NULL,
				"target \"%s\" is not a postgres target: "
				"sql rules apply to postgres targets",
				p->targets[r->targets[i]].name);
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
	static const char *const keys[] = { "name",   "workload", "target",
					    "action", "message",  "sql",
					    "mask",   NULL };
	struct policy_rule *r = &p->rules[idx];
	const char *name = NULL, *message = NULL;

	if (jv_object(v, j, keys) || jv_string(v, j, "name", true, &name) ||
	    parse_action(v, j, "action", true, &r->action) ||
	    jv_string(v, j, "message", false, &message))
		return -1;
	if (!name_ok(name))
		return jv_fail(v, "name", "contains control characters");
	if (strcmp(name, "default") == 0)
		return jv_fail(
			v, "name",
			"\"default\" is reserved for the policy default");
	for (size_t i = 0; i < idx; i++)
		if (strcmp(p->rules[i].name, name) == 0)
			return jv_fail(v, "name", "duplicate rule name \"%s\"",
				       name);
	r->name = strdup(name);
	if (!r->name)
		return jv_fail(v, NULL, "out of memory");
	if (message) {
		if (r->action != POLICY_DENY)
			return jv_fail(v, "message",
				       "only deny rules carry a message");
		r->message = strdup(message);
		if (!r->message)
			return jv_fail(v, NULL, "out of memory");
	}
	if (parse_rule_workload(v, j, r) || parse_rule_targets(v, j, p, r) ||
	    parse_rule_sql(v, j, p, r) || parse_rule_mask(v, j, r))
		return -1;
	return 0;
}

struct policy *policy_compile(struct jv *v, json_t *root)
{
	static const char *const keys[] = { "default", "targets", "rules",
					    NULL };
	struct policy *p;
	json_t *targets, *rules;
	size_t old;

	if (jv_object(v, root, keys))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p) {
		jv_fail(v, NULL, "out of memory");
		return NULL;
	}
	p->refs = 1;
	p->def = POLICY_DENY;
	if (parse_action(v, root, "default", false, &p->def))
		goto fail;

	targets = json_object_get(root, "targets");
	if (targets && !json_is_array(targets)) {
		jv_fail(v, "targets", "expected an array of targets");
		goto fail;
	}
	if (targets && json_array_size(targets)) {
		p->targets =
			calloc(json_array_size(targets), sizeof(*p->targets));
		if (!p->targets)
			goto fail;
		old = jv_push_key(v, "targets");
		for (size_t i = 0; i < json_array_size(targets); i++) {
			size_t o2 = jv_push_index(v, i);

			if (parse_target(v, json_array_get(targets, i), p, i)) {
				p->ntargets = i + 1;
				goto fail;
			}
			p->ntargets = i + 1;
			jv_pop(v, o2);
		}
		jv_pop(v, old);
	}

	rules = json_object_get(root, "rules");
	if (rules && !json_is_array(rules)) {
		jv_fail(v, "rules", "expected an array of rules");
		goto fail;
	}
	if (rules && json_array_size(rules)) {
		p->rules = calloc(json_array_size(rules), sizeof(*p->rules));
		if (!p->rules)
			goto fail;
		old = jv_push_key(v, "rules");
		for (size_t i = 0; i < json_array_size(rules); i++) {
			size_t o2 = jv_push_index(v, i);

			p->nrules = i + 1;
			if (parse_rule(v, json_array_get(rules, i), p, i))
				goto fail;
			jv_pop(v, o2);
		}
		jv_pop(v, old);
	}
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

static bool rule_matches(const struct policy_rule *r, size_t target,
			 const struct policy_input *in)
{
	if (r->ntargets) {
		bool hit = false;

		for (size_t i = 0; i < r->ntargets && !hit; i++)
			hit = r->targets[i] == target;
		if (!hit)
			return false;
	}
	if (r->nworkloads) {
		bool hit = false;

		for (size_t i = 0; i < r->nworkloads && !hit; i++)
			hit = fnmatch(r->workloads[i], in->workload, 0) == 0;
		if (!hit)
			return false;
	}
	if (r->labels) {
		const char *k;
		json_t *want;

		json_object_foreach(r->labels, k, want) {
			json_t *have = in->labels ?
					       json_object_get(in->labels, k) :
					       NULL;

			if (!have || !json_equal(have, want))
				return false;
		}
	}
	return true;
}

void policy_decide(const struct policy *p, const struct policy_input *in,
		   struct policy_decision *out)
{
	const struct policy_rule *allow = NULL;
	const struct policy_target *t;
	size_t idx = 0;

	out->action = p->def;
	out->rule = "default";
	out->target = NULL;
	out->proto = PROTO_TCP;
	out->message = NULL;
	t = match_target(p, in, &idx);
	if (!t)
		return;
	out->target = t->name;
	out->target_idx = idx;
	out->proto = t->proto;
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (!rule_matches(r, idx, in))
			continue;
		/* An sql part speaks of statements: such a rule says nothing
		 * of a target without them. */
		if ((r->sql || r->mask) && t->proto != PROTO_POSTGRES)
			continue;
		/* A deny rule with an sql part denies statements, not the
		 * connection. */
		if (r->action == POLICY_DENY && !r->sql) {
			out->action = POLICY_DENY;
			out->rule = r->name;
			out->message = r->message;
			return;
		}
		if (!allow && r->action == POLICY_ALLOW)
			allow = r;
	}
	if (allow) {
		out->action = POLICY_ALLOW;
		out->rule = allow->name;
	}
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

void policy_decide_stmt(const struct policy *p, const struct policy_input *in,
			size_t target, const struct policy_stmt *ps,
			struct policy_decision *out)
{
	const struct policy_rule *allow = NULL;
	bool connects = p->def == POLICY_ALLOW;

	out->action = p->def;
	out->rule = "default";
	out->message = NULL;
	out->target = target < p->ntargets ? p->targets[target].name : NULL;
	out->target_idx = target;
	out->proto = target < p->ntargets ? p->targets[target].proto :
					    PROTO_TCP;
	if (target >= p->ntargets) {
		out->action = POLICY_DENY;
		return;
	}
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (!rule_matches(r, target, in))
			continue;
		if (r->action == POLICY_DENY &&
		    (!r->sql || sql_deny_matches(r->sql, ps))) {
			out->action = POLICY_DENY;
			out->rule = r->name;
			out->message = r->message;
			return;
		}
		connects |= r->action == POLICY_ALLOW;
		if (r->action == POLICY_ALLOW && !allow &&
		    (!r->sql || sql_allow_covers(r->sql, ps)))
			allow = r;
	}
	if (allow) {
		out->action = POLICY_ALLOW;
		out->rule = allow->name;
	} else if (connects && housekeeping(ps->st)) {
		out->action = POLICY_ALLOW;
		out->rule = POLICY_RULE_SESSION;
	}
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

		if (!r->mask || !rule_matches(r, target, in))
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
