// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: json_loadb() + policy_compile() over arbitrary bytes,
 * then policy_decide() for a fixed set of workloads and destinations once
 * the JSON is gone (the policy must own what it uses). Decisions are
 * checked for the invariants of struct policy_decision.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridle/policy.h"

struct dest {
	int family;
	const char *ip;
	uint16_t port;
	uint8_t addr[16];
};

static struct dest dests[] = {
	{ AF_INET, "10.77.0.1", 7 },	    { AF_INET, "10.1.2.3", 443 },
	{ AF_INET, "192.0.2.1", 80 },	    { AF_INET, "0.0.0.0", 0 },
	{ AF_INET, "255.255.255.255", 65535 }, { AF_INET, "127.0.0.1", 15001 },
	{ AF_INET6, "2001:db8::1", 443 },   { AF_INET6, "::1", 80 },
	{ AF_INET6, "::", 0 },		    { AF_INET6, "fe80::1", 22 },
};

static struct {
	const char *name, *labels;
	json_t *json;
} workloads[] = {
	{ "agent-a", "{\"app\": \"agent\"}", NULL },
	{ "db", NULL, NULL },
	{ "x-1", "{\"app\": \"agent\", \"team\": \"x\"}", NULL },
	{ "", "{}", NULL },
};

static const char *const stmt_texts[] = {
	"select * from orders join hr.salaries s on true",
	"delete from public.orders",
	"with d as (delete from orders returning *) select * from d",
	"begin",
	"set role admin",
	"select pg_read_file('/etc/passwd'), lower(x), public.f() from t",
	"copy orders to program 'sh'",
	"prepare p as update orders set a = 1",
	"explain analyze insert into audit values (1)",
	"drop table orders, pg_class",
};
static struct sql_result stmts[sizeof(stmt_texts) / sizeof(stmt_texts[0])];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof(stmt_texts) / sizeof(stmt_texts[0]); i++)
		if (sql_classify(stmt_texts[i], NULL, &stmts[i]))
			abort();
	for (size_t i = 0; i < sizeof(dests) / sizeof(dests[0]); i++)
		if (inet_pton(dests[i].family, dests[i].ip, dests[i].addr) != 1)
			abort();
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		if (workloads[i].labels &&
		    !(workloads[i].json = json_loads(workloads[i].labels, 0,
						     NULL)))
			abort();
	return 0;
}

/* Statements of every kind, decided for a postgres target: the answer
 * is allow or deny with a rule name, and the mask plan builds. */
static void check_stmts(const struct policy *p, const struct policy_input *in,
			size_t target)
{
	static const char *const schemas[] = { "public", "hr" };
	struct policy_mask_plan plan;

	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
		for (size_t k = 0; k < stmts[i].nstmts; k++) {
			struct policy_stmt ps = { &stmts[i].stmts[k], schemas,
						  2 };
			struct policy_decision d;

			policy_decide_stmt(p, in, target, &ps, &d);
			if ((d.action != POLICY_ALLOW &&
			     d.action != POLICY_DENY &&
			     d.action != POLICY_REVIEW) ||
			    !d.rule)
				abort();
			policy_note(p, &d);
			(void)strlen(d.rule);
		}
	if (policy_mask_plan(p, in, target, &plan) == 0)
		policy_mask_plan_release(&plan);
}

/* A user with groups and narrowing scopes, for rules about users. */
static const char *const user_groups[] = { "analysts", "oncall" };
static const char *const user_scopes[] = { "sql:select:public.*",
					   "sql:*:hr.x", "openid" };
static const struct policy_user fuzz_user = {
	.issuer = "corp",
	.sub = "alice",
	.email = "alice@example.com",
	.groups = user_groups,
	.ngroups = 2,
	.scoped = true,
	.scopes = user_scopes,
	.nscopes = 3,
	.expires = 2000000000,
};

static void check(const struct policy *p)
{
	for (size_t w = 0; w < sizeof(workloads) / sizeof(workloads[0]); w++)
		for (size_t d = 0; d < sizeof(dests) / sizeof(dests[0]); d++) {
			struct policy_input in = {
				.workload = workloads[w].name,
				.labels = workloads[w].json,
				.exe = "/usr/bin/agent",
				.uid = 1000,
				.user = d % 2 ? &fuzz_user : NULL,
				.user_pending = d % 3 == 0,
				.now = 1900000000,
				.family = dests[d].family,
				.addr = dests[d].addr,
				.port = dests[d].port,
			};
			struct policy_decision out;

			memset(&out, 0x5a, sizeof(out));
			policy_decide(p, &in, &out);
			if (out.action != POLICY_ALLOW &&
			    out.action != POLICY_DENY)
				abort();
			if (!out.rule || (out.proto != PROTO_TCP &&
					  out.proto != PROTO_POSTGRES))
				abort();
			/* No target: the default (or "off"), and nothing
			 * else. */
			if (!out.target && ((strcmp(out.rule, "default") &&
					     strcmp(out.rule, "off")) ||
					    out.message))
				abort();
			/* Only denials carry a message (or what shadow
			 * mode let through). */
			if (out.message && out.action != POLICY_DENY &&
			    !out.would_rule)
				abort();
			policy_note(p, &out);
			(void)strlen(out.rule);
			if (out.target)
				(void)strlen(out.target);
			if (out.message)
				(void)strlen(out.message);
			if (out.target && out.proto == PROTO_POSTGRES)
				check_stmts(p, &in, out.target_idx);
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct policy *p;
	struct jv v;
	json_t *root = json_loadb((const char *)data, size,
				  JSON_REJECT_DUPLICATES, NULL);

	if (!root)
		return 0;
	jv_init(&v, "fuzz.json", err, sizeof(err));
	p = policy_compile(&v, root);
	json_decref(root);
	if (!p) {
		if (strncmp(err, "fuzz.json: $", 12) != 0)
			abort(); /* every error names the file and a path */
		return 0;
	}
	if (err[0])
		abort(); /* compiled, yet an error was recorded */
	check(p);
	policy_free(p);
	return 0;
}
