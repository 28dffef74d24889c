// SPDX-License-Identifier: Apache-2.0
/*
 * Policy tooling: `bridle policy check` prints every error with its JSON
 * path and a hint, then warnings; `bridle policy explain` decides a request
 * described on the command line the way the enforcer would, and shows the
 * deciding rule and every rule that matched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bridle/cli.h"
#include "bridle/config.h"
#include "bridle/identity.h"
#include "bridle/jsonv.h"
#include "bridle/jwks.h"
#include "bridle/policy.h"
#include "bridle/sql.h"

#include <openssl/crypto.h>

void cli_print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

/*
 * Load @file, a policy or a config (which has "workloads"), collecting
 * every error of the policy into @errors. Returns the policy and, for a
 * config, the config in *@cfg.
 */
static struct policy *load_any(const char *file, struct config **cfg,
			       json_t *errors)
{
	char err[1024] = "";
	json_t *root = jv_load_file(file, err, sizeof(err)), *pj;
	struct policy *p = NULL;
	const char *pfile = file;
	struct jv v;

	*cfg = NULL;
	if (!root) {
		json_array_append_new(errors, json_string(err));
		return NULL;
	}
	if (!json_object_get(root, "workloads")) {
		jv_init(&v, file, err, sizeof(err));
		v.all = errors;
		p = policy_compile(&v, root);
		json_decref(root);
		return p;
	}
	*cfg = config_load(file, NULL, err, sizeof(err));
	if (*cfg) {
		json_decref(root);
		return policy_ref((*cfg)->policy);
	}
	/* The config is wrong: every error of its policy, else its own. */
	pj = json_object_get(root, "policy");
	if (json_is_object(pj)) {
		jv_init(&v, file, err, sizeof(err));
		v.all = errors;
		jv_push_key(&v, "policy");
		policy_free(policy_compile(&v, pj));
	} else if (json_is_string(pj)) {
		json_t *proot;

		pfile = json_string_value(pj);
		proot = jv_load_file(pfile, err, sizeof(err));
		if (proot) {
			jv_init(&v, pfile, err, sizeof(err));
			v.all = errors;
			policy_free(policy_compile(&v, proot));
			json_decref(proot);
		}
	}
	if (!json_array_size(errors)) {
		char e2[1024];
		struct config *c = config_load(file, NULL, e2, sizeof(e2));

		config_free(c);
		json_array_append_new(errors, json_string(e2));
	}
	json_decref(root);
	return NULL;
}

int cli_policy_check(const char *file, bool json)
{
	json_t *errors = json_array(), *warnings;
	struct config *cfg;
	struct policy *p = load_any(file, &cfg, errors);
	bool ok = p != NULL;
	size_t i;
	json_t *e;

	warnings = p ? policy_warnings(p) : json_array();
	if (json) {
		json_t *j = json_pack("{s:s,s:b,s:s,s:O,s:O}", "file", file,
				      "ok", ok, "kind",
				      cfg ? "config" : "policy", "errors",
				      errors, "warnings", warnings);

		if (p)
			json_object_set_new(j, "version",
					    json_string(policy_version(p)));
		else /* the first, as older versions gave it */
			json_object_set(j, "error", json_array_get(errors, 0));
		cli_print_json(j);
		json_decref(j);
	} else {
		json_array_foreach(errors, i, e)
			fprintf(stderr, "error: %s\n", json_string_value(e));
		json_array_foreach(warnings, i, e)
			fprintf(stderr, "warning: %s: %s\n", file,
				json_string_value(e));
		if (ok)
			printf("%s: OK (%s, %zu targets, %zu rules, %s)\n",
			       file, cfg ? "config" : "policy",
			       policy_target_count(p), policy_rule_count(p),
			       policy_version(p));
		else
			fprintf(stderr, "%s: %zu error%s\n", file,
				json_array_size(errors),
				json_array_size(errors) == 1 ? "" : "s");
	}
	json_decref(errors);
	json_decref(warnings);
	policy_free(p);
	config_free(cfg);
	return ok ? 0 : 1;
}

static const char explain_usage[] =
	"usage: bridle policy explain FILE [--workload NAME] [--label K=V]...\n"
	"         [--namespace NS] [--pod POD] [--service-account SA]\n"
	"         [--exe PATH] [--uid N] [--claims JSON | --token JWT]\n"
	"         [--issuer NAME] (--target NAME | --dest ADDR:PORT)\n"
	"         [--sql STATEMENTS] [--search-path S1,S2] [--json]\n"
	"FILE is a policy or a config; with a config, --workload takes the\n"
	"workload's labels and Kubernetes metadata from it.\n";

struct explain {
	struct policy_input in;
	json_t *labels;
	const char *target, *dest, *sql, *claims, *token, *issuer;
	char *search_path;
	bool json;
	struct identity_user *verified; /* from --token or --claims */
	json_t *claims_j;
};

static int parse_dest(const char *s, struct explain *x, uint8_t addr[16])
{
	char host[64];
	const char *colon = strrchr(s, ':');
	unsigned long port;
	char *end;
	size_t n;

	if (!colon)
		return -1;
	n = (size_t)(colon - s);
	if (n >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	port = strtoul(colon + 1, &end, 10);
	if (*end || !port || port > 65535)
		return -1;
	x->in.port = (uint16_t)port;
	if (inet_pton(AF_INET, host, addr) == 1)
		x->in.family = AF_INET;
	else if (inet_pton(AF_INET6, host, addr) == 1)
		x->in.family = AF_INET6;
	else
		return -1;
	x->in.addr = addr;
	return 0;
}

static json_t *trace_json(const struct policy_trace *t)
{
	json_t *a = json_array();

	for (size_t i = 0; i < t->n && i < sizeof(t->m) / sizeof(t->m[0]); i++)
		json_array_append_new(
			a,
			json_pack("{s:s,s:s,s:s}", "rule", t->m[i].rule,
				  "action", policy_action_name(t->m[i].action),
				  "mode", policy_mode_name(t->m[i].mode)));
	return a;
}

static json_t *decision_json(const struct policy_decision *d,
			     const struct policy_trace *t)
{
	json_t *j = json_pack("{s:s,s:s,s:s?}", "decision",
			      policy_decision_name(d), "rule",
			      d->would_rule ? d->would_rule : d->rule,
			      "message", d->message);

	if (d->would_rule)
		json_object_set_new(j, "enforced",
				    json_pack("{s:s,s:s}", "action",
					      policy_action_name(d->action),
					      "rule", d->rule));
	json_object_set_new(j, "matched", trace_json(t));
	return j;
}

static void print_decision(const char *what, json_t *d)
{
	json_t *m = json_object_get(d, "matched"), *e;
	size_t i;

	printf("%s\n  decision: %s\n  rule:     %s\n", what,
	       json_string_value(json_object_get(d, "decision")),
	       json_string_value(json_object_get(d, "rule")));
	if (json_is_string(json_object_get(d, "message")))
		printf("  message:  %s\n",
		       json_string_value(json_object_get(d, "message")));
	if (json_object_get(d, "enforced"))
		printf("  enforced: %s (rule \"%s\"): shadow mode lets it "
		       "through\n",
		       json_string_value(json_object_get(
			       json_object_get(d, "enforced"), "action")),
		       json_string_value(json_object_get(
			       json_object_get(d, "enforced"), "rule")));
	printf("  matched:  %s\n", json_array_size(m) ? "" : "(no rule)");
	json_array_foreach(m, i, e)
		printf("    - %s (%s%s%s)\n",
		       json_string_value(json_object_get(e, "rule")),
		       json_string_value(json_object_get(e, "action")),
		       strcmp(json_string_value(json_object_get(e, "mode")),
			      "enforce") ?
			       ", " :
			       "",
		       strcmp(json_string_value(json_object_get(e, "mode")),
			      "enforce") ?
			       json_string_value(json_object_get(e, "mode")) :
			       "");
}

/* The user from --claims (taken as verified: explain is about rules) or
 * --token (verified for real), made as the enforcer makes it. */
static int explain_user(const struct policy *p, struct explain *x)
{
	const struct policy_issuer *is = NULL;
	char err[256];
	json_error_t je;

	if (x->token) {
		for (size_t i = 0; i < policy_issuer_count(p); i++) {
			const struct policy_issuer *k = policy_issuer_at(p, i);

			if (k->source &&
			    jwks_fetch_now(k->source, err, sizeof(err)))
				fprintf(stderr, "bridle: issuer %s: %s\n",
					k->name, err);
		}
		if (identity_authenticate(p, x->token, strlen(x->token),
					  (int64_t)time(NULL), &x->verified,
					  err, sizeof(err))) {
			fprintf(stderr, "bridle: token rejected: %s\n", err);
			return -1;
		}
		x->in.user = &x->verified->u;
		return 0;
	}
	if (!x->claims)
		return 0;
	x->claims_j = json_loads(x->claims, 0, &je);
	if (!json_is_object(x->claims_j)) {
		fprintf(stderr,
			"bridle: --claims: expected a JSON object: %s\n",
			je.text);
		return -1;
	}
	for (size_t i = 0; i < policy_issuer_count(p) && !is; i++)
		if (!x->issuer ||
		    strcmp(policy_issuer_at(p, i)->name, x->issuer) == 0)
			is = policy_issuer_at(p, i);
	if (!is) {
		fprintf(stderr, "bridle: --claims: %s\n",
			x->issuer ? "no issuer of that name" :
				    "the policy names no issuer");
		return -1;
	}
	if (identity_user_from_claims(is, x->claims_j, &x->verified, err,
				      sizeof(err))) {
		fprintf(stderr, "bridle: --claims: %s\n", err);
		return -1;
	}
	x->in.user = &x->verified->u;
	return 0;
}

static int explain_run(struct policy *p, struct config *cfg, struct explain *x)
{
	uint8_t addr[16] = {};
	struct policy_decision d;
	struct policy_trace t = {};
	json_t *out = json_object(), *stmts = json_array(), *cj;
	char *schemas[32];
	size_t nschemas = 0, target_idx;
	int ret = 1;

	if (cfg && x->in.workload) {
		for (size_t i = 0; i < cfg->nworkloads; i++) {
			const struct config_workload *w = &cfg->workloads[i];

			if (strcmp(w->name, x->in.workload))
				continue;
			json_object_update_missing(x->labels, w->labels);
			if (!x->in.k8s_namespace)
				x->in.k8s_namespace = w->k8s_namespace;
			if (!x->in.pod)
				x->in.pod = w->pod;
			if (!x->in.service_account)
				x->in.service_account = w->service_account;
		}
	}
	x->in.labels = x->labels;
	x->in.now = (int64_t)time(NULL);
	if (x->target) {
		const struct policy_target *tg =
			policy_target_find(p, x->target, &target_idx);

		if (!tg) {
			fprintf(stderr, "bridle: no target named \"%s\"\n",
				x->target);
			goto out;
		}
		memcpy(addr, tg->addr, 16);
		x->in.family = tg->family;
		x->in.addr = addr;
		x->in.port = tg->port;
	} else if (!x->dest || parse_dest(x->dest, x, addr)) {
		fprintf(stderr,
			"bridle: give --target NAME or --dest "
			"ADDR:PORT\n%s",
			explain_usage);
		goto out;
	}
	if (explain_user(p, x))
		goto out;
	policy_decide_trace(p, &x->in, &d, &t);
	cj = decision_json(&d, &t);
	json_object_set_new(cj, "target",
			    d.target ? json_string(d.target) : json_null());
	json_object_set_new(out, "connect", cj);
	if (x->sql) {
		struct sql_result r;

		if (!d.target) {
			fprintf(stderr, "bridle: --sql needs a postgres target "
					"(no target matched)\n");
			goto out;
		}
		if (x->search_path)
			for (char *s = strtok(x->search_path, ",");
			     s && nschemas < 32; s = strtok(NULL, ","))
				schemas[nschemas++] = s;
		if (sql_classify(x->sql, NULL, &r)) {
			fprintf(stderr,
				"bridle: statement not understood "
				"(bridle denies it): %s\n",
				r.error);
			sql_result_free(&r);
			goto out;
		}
		for (size_t i = 0; i < r.nstmts; i++) {
			struct policy_stmt ps = {
				.st = &r.stmts[i],
				.schemas = (const char *const *)schemas,
				.nschemas = nschemas,
			};
			char what[256];
			json_t *sj;

			memset(&t, 0, sizeof(t));
			sql_describe(&r.stmts[i], what, sizeof(what));
			policy_decide_stmt_trace(p, &x->in, d.target_idx, &ps,
						 &d, &t);
			sj = decision_json(&d, &t);
			json_object_set_new(sj, "request", json_string(what));
			json_array_append_new(stmts, sj);
		}
		sql_result_free(&r);
		json_object_set_new(out, "statements", json_incref(stmts));
	}
	json_object_set_new(out, "policy", json_string(policy_version(p)));
	if (x->json) {
		cli_print_json(out);
	} else {
		json_t *e;
		size_t i;
		char head[300];

		snprintf(
			head, sizeof(head), "connect to %s:",
			json_string_value(json_object_get(json_object_get(out, "connect"), "target")) ?:
				"(no target)");
		print_decision(head, json_object_get(out, "connect"));
		json_array_foreach(stmts, i, e) {
			snprintf(head, sizeof(head), "%s:",
				 json_string_value(
					 json_object_get(e, "request")));
			print_decision(head, e);
		}
		printf("policy %s\n", policy_version(p));
	}
	ret = 0;
out:
	json_decref(out);
	json_decref(stmts);
	return ret;
}

int cli_policy_explain(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "workload", required_argument, NULL, 'w' },
		{ "label", required_argument, NULL, 'l' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "pod", required_argument, NULL, 'P' },
		{ "service-account", required_argument, NULL, 'S' },
		{ "exe", required_argument, NULL, 'e' },
		{ "uid", required_argument, NULL, 'u' },
		{ "claims", required_argument, NULL, 'C' },
		{ "token", required_argument, NULL, 'T' },
		{ "issuer", required_argument, NULL, 'I' },
		{ "target", required_argument, NULL, 't' },
		{ "dest", required_argument, NULL, 'd' },
		{ "sql", required_argument, NULL, 'q' },
		{ "search-path", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct explain x = { .labels = json_object() };
	json_t *errors = json_array(), *e;
	struct config *cfg = NULL;
	struct policy *p = NULL;
	int c, ret = 2;
	size_t i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'w':
			x.in.workload = optarg;
			break;
		case 'l': {
			char *eq = strchr(optarg, '=');

			if (!eq) {
				fprintf(stderr, "bridle: --label wants K=V\n");
				goto out;
			}
			*eq = '\0';
			json_object_set_new(x.labels, optarg,
					    json_string(eq + 1));
			break;
		}
		case 'n':
			x.in.k8s_namespace = optarg;
			break;
		case 'P':
			x.in.pod = optarg;
			break;
		case 'S':
			x.in.service_account = optarg;
			break;
		case 'e':
			x.in.exe = optarg;
			break;
		case 'u':
			x.in.uid = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'C':
			x.claims = optarg;
			break;
		case 'T':
			x.token = optarg;
			break;
		case 'I':
			x.issuer = optarg;
			break;
		case 't':
			x.target = optarg;
			break;
		case 'd':
			x.dest = optarg;
			break;
		case 'q':
			x.sql = optarg;
			break;
		case 's':
			x.search_path = optarg;
			break;
		case 'j':
			x.json = true;
			break;
		default:
			fputs(explain_usage, stderr);
			goto out;
		}
	}
	if (argc - optind != 1) {
		fputs(explain_usage, stderr);
		goto out;
	}
	if (!x.in.workload)
		x.in.workload = "";
	p = load_any(argv[optind], &cfg, errors);
	if (!p) {
		json_array_foreach(errors, i, e)
			fprintf(stderr, "error: %s\n", json_string_value(e));
		ret = 1;
		goto out;
	}
	ret = explain_run(p, cfg, &x);
out:
	json_decref(x.claims_j);
	identity_user_free(x.verified);
	json_decref(x.labels);
	json_decref(errors);
	policy_free(p);
	config_free(cfg);
	return ret;
}
