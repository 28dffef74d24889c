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

struct policy_target {
	char *name;
	int family;
	uint8_t addr[16];
	unsigned prefix;
	uint16_t port; /* 0: any */
	enum policy_proto proto;
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
};

struct policy {
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
	(void)p;
	return "tcp";
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

static void rule_free(struct policy_rule *r)
{
	free(r->name);
	free(r->message);
	for (size_t i = 0; i < r->nworkloads; i++)
		free(r->workloads[i]);
	free(r->workloads);
	json_decref(r->labels);
	free(r->targets);
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->ntargets; i++)
		free(p->targets[i].name);
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

static int parse_target(struct jv *v, json_t *j, struct policy *p, size_t idx)
{
	static const char *const keys[] = { "name", "address", "port",
					    "protocol", NULL };
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
	if (strcmp(proto, "tcp") != 0)
		return jv_fail(v, "protocol",
			       "\"%s\" is not a supported protocol (tcp)",
			       proto);
	t->proto = PROTO_TCP;
	t->port = (uint16_t)port;
	t->name = strdup(name);
	return t->name ? 0 : jv_fail(v, NULL, "out of memory");
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

static int parse_rule(struct jv *v, json_t *j, struct policy *p, size_t idx)
{
	static const char *const keys[] = { "name",   "workload", "target",
					    "action", "message",  NULL };
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
	if (parse_rule_workload(v, j, r) || parse_rule_targets(v, j, p, r))
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
	out->proto = t->proto;
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (!rule_matches(r, idx, in))
			continue;
		if (r->action == POLICY_DENY) {
			out->action = POLICY_DENY;
			out->rule = r->name;
			out->message = r->message;
			return;
		}
		if (!allow)
			allow = r;
	}
	if (allow) {
		out->action = POLICY_ALLOW;
		out->rule = allow->name;
	}
}
