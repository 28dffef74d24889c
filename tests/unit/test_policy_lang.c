// SPDX-License-Identifier: Apache-2.0
/*
 * The policy language of issue 4 (user/policy.c, user/identity.c): rules
 * matching on workload (labels by value or set, Kubernetes metadata),
 * process (executable glob, uid) and user (issuer, subject, e-mail,
 * groups); precedence (deny over review over allow, the most specific
 * rule's message); modes (enforce, shadow, off, per policy and per rule);
 * token scopes narrowing statements; token expiry; the trace of matched
 * rules; counters and the version; every compile error with a hint; and
 * users from real tokens signed here with a key the test generates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "bridle/identity.h"
#include "bridle/policy.h"
#include "bridle/sql.h"

#include "ed25519_tokens.h"
#include "policy_text.h"

#define NOW 1900000000

/* Compile @text collecting every error (as `bridle policy check`). */
static struct policy *compile_all(const char *text, json_t *errors)
{
	char err[1024];

	return compile_text(text, err, sizeof(err), errors);
}

static struct policy *compile_ok(const char *text)
{
	json_t *errors = json_array();
	struct policy *p = compile_all(text, errors);

	if (!p)
		fail_msg("policy refused: %s\n%s",
			 json_string_value(json_array_get(errors, 0)), text);
	json_decref(errors);
	return p;
}

/* The policy's errors, one per line. */
static char *errors_of(const char *text)
{
	json_t *errors = json_array(), *e;
	struct policy *p = compile_all(text, errors);
	char *out = calloc(1, 8192);
	size_t i, off = 0;

	assert_null(p);
	json_array_foreach(errors, i, e)
		off += (size_t)snprintf(out + off, 8192 - off, "%s\n",
					json_string_value(e));
	json_decref(errors);
	return out;
}

static void assert_error(const char *text, const char *want)
{
	char *got = errors_of(text);

	if (!strstr(got, want))
		fail_msg("wanted an error with\n  %s\ngot\n%s", want, got);
	free(got);
}

static const uint8_t db_addr[4] = { 10, 0, 0, 5 };

static struct policy_input input(const char *workload, json_t *labels,
				 const char *exe, uint32_t uid)
{
	return (struct policy_input){
		.workload = workload,
		.labels = labels,
		.exe = exe,
		.uid = uid,
		.family = AF_INET,
		.addr = db_addr,
		.port = 5432,
		.now = NOW,
	};
}

/* Decide @sql (one statement) for @in at target 0. */
static struct policy_decision stmt(const struct policy *p,
				   const struct policy_input *in,
				   const char *sql, struct policy_trace *t)
{
	static const char *const schemas[] = { "public" };
	struct sql_result r;
	struct policy_decision d;
	struct policy_stmt ps;

	if (sql_classify(sql, NULL, &r))
		fail_msg("%s: %s", sql, r.error);
	assert_int_equal(r.nstmts, 1);
	ps = (struct policy_stmt){ &r.stmts[0], schemas, 1 };
	policy_decide_stmt_trace(p, in, 0, &ps, &d, t);
	sql_result_free(&r);
	return d;
}

#define DB_TARGET                                                          \
	"{\"name\": \"db\", \"address\": \"10.0.0.5\", \"port\": 5432, "    \
	"\"protocol\": \"postgres\", \"credentials\": {\"user\": \"app\", " \
	"\"password_env\": \"PW\"}}"

/* ---- workload and process --------------------------------------------- */

static void test_process_exe(void **state)
{
	struct policy *p = compile_ok(
		"{\"targets\": [" DB_TARGET "], \"rules\": ["
		"{\"name\": \"psql reads\", \"when\": {\"process\": {\"exe\": "
		"\"*/psql\"}, \"target\": \"db\"}, \"action\": \"allow\", "
		"\"sql\": {\"commands\": [\"select\"]}},"
		"{\"name\": \"no python\", \"when\": {\"process\": {\"exe\": "
		"[\"/usr/bin/python3*\", \"/usr/local/bin/python3*\"]}}, "
		"\"action\": \"deny\", \"message\": \"no scripts\"}]}");
	struct policy_input psql = input(
		"agent", NULL, "/usr/lib/postgresql/15/bin/psql", 1000);
	struct policy_input py =
		input("agent", NULL, "/usr/bin/python3.11", 1000);
	struct policy_input none = input("agent", NULL, NULL, 1000);
	struct policy_decision d;

	(void)state;
	policy_decide(p, &psql, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "psql reads");
	policy_decide(p, &py, &d);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "no python");
	assert_string_equal(d.message, "no scripts");
	/* An unknown executable matches no exe condition. */
	policy_decide(p, &none, &d);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "default");
	d = stmt(p, &psql, "SELECT 1", NULL);
	assert_int_equal(d.action, POLICY_ALLOW);
	d = stmt(p, &psql, "DELETE FROM t", NULL);
	assert_int_equal(d.action, POLICY_DENY);
	policy_free(p);
}

static void test_uid_labels_k8s(void **state)
{
	struct policy *p = compile_ok(
		"{\"targets\": [" DB_TARGET "], \"rules\": ["
		"{\"name\": \"r\", \"when\": {\"workload\": {\"labels\": "
		"{\"team\": [\"red\", \"blue\"], \"app\": \"agent\"}, "
		"\"namespace\": \"prod-*\", \"service_account\": \"reader\"}, "
		"\"process\": {\"uid\": [1000, 1001]}}, \"action\": \"allow\"}"
		"]}");
	json_t *red = json_pack("{s:s,s:s}", "team", "red", "app", "agent");
	json_t *green =
		json_pack("{s:s,s:s}", "team", "green", "app", "agent");
	struct policy_input in = input("w", red, "/bin/x", 1001);
	struct policy_decision d;

	(void)state;
	in.k8s_namespace = "prod-eu";
	in.service_account = "reader";
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	in.uid = 0;
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	in.uid = 1000;
	in.labels = green;
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	in.labels = red;
	in.k8s_namespace = "staging";
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	/* No Kubernetes metadata: a rule asking for it does not apply. */
	in.k8s_namespace = NULL;
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	json_decref(red);
	json_decref(green);
	policy_free(p);
}

/* ---- precedence ------------------------------------------------------- */

static void test_precedence(void **state)
{
	struct policy *p = compile_ok(
		"{\"targets\": [" DB_TARGET "], \"rules\": ["
		"{\"name\": \"all\", \"when\": {\"target\": \"db\"}, "
		"\"action\": \"allow\"},"
		"{\"name\": \"review writes\", \"when\": {\"target\": \"db\"}, "
		"\"action\": \"review\", \"sql\": {\"commands\": [\"update\", "
		"\"delete\"]}},"
		"{\"name\": \"no deletes\", \"action\": \"deny\", "
		"\"message\": \"never delete\", \"sql\": {\"commands\": "
		"[\"delete\"]}},"
		"{\"name\": \"no deletes by agents\", \"when\": {\"workload\": "
		"{\"name\": \"agent\"}}, \"action\": \"deny\", \"message\": "
		"\"agents never delete\", \"sql\": {\"commands\": "
		"[\"delete\"]}},"
		"{\"name\": \"tie\", \"when\": {\"workload\": {\"name\": "
		"\"agent\"}}, \"action\": \"deny\", \"message\": \"later\", "
		"\"sql\": {\"commands\": [\"delete\"]}}]}");
	struct policy_input in = input("agent", NULL, "/bin/x", 0);
	struct policy_trace t = {};
	struct policy_decision d;

	(void)state;
	d = stmt(p, &in, "SELECT * FROM t", NULL);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "all");
	/* Review beats allow. */
	d = stmt(p, &in, "UPDATE t SET a = 1", NULL);
	assert_int_equal(d.action, POLICY_REVIEW);
	assert_string_equal(d.rule, "review writes");
	/* Deny beats review; the most specific deny speaks, the first of
	 * two equally specific ones. */
	d = stmt(p, &in, "DELETE FROM t", &t);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "no deletes by agents");
	assert_string_equal(d.message, "agents never delete");
	assert_int_equal(t.n, 5);
	assert_string_equal(t.m[0].rule, "all");
	assert_string_equal(t.m[1].rule, "review writes");
	assert_int_equal(t.m[1].action, POLICY_REVIEW);
	assert_string_equal(t.m[2].rule, "no deletes");
	assert_string_equal(t.m[4].rule, "tie");
	/* Another workload: the general deny. */
	in.workload = "batch";
	d = stmt(p, &in, "DELETE FROM t", NULL);
	assert_string_equal(d.rule, "no deletes");
	/* A review rule lets the session connect. */
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	policy_free(p);
}

/* ---- modes ------------------------------------------------------------ */

static void test_modes(void **state)
{
	struct policy *p = compile_ok(
		"{\"targets\": [" DB_TARGET "], \"rules\": ["
		"{\"name\": \"read\", \"when\": {\"target\": \"db\"}, "
		"\"action\": \"allow\", \"sql\": {\"commands\": "
		"[\"select\", \"delete\"]}},"
		"{\"name\": \"try: no deletes\", \"mode\": \"shadow\", "
		"\"action\": \"deny\", \"sql\": {\"commands\": [\"delete\"]}},"
		"{\"name\": \"disabled\", \"mode\": \"off\", \"action\": "
		"\"deny\"}]}");
	struct policy *ps = compile_ok(
		"{\"mode\": \"shadow\", \"targets\": [" DB_TARGET "], "
		"\"rules\": [{\"name\": \"read\", \"when\": {\"target\": "
		"\"db\"}, \"action\": \"allow\", \"sql\": {\"commands\": "
		"[\"select\"]}}]}");
	struct policy *po = compile_ok("{\"mode\": \"off\", \"targets\": "
				       "[" DB_TARGET "]}");
	struct policy_input in = input("agent", NULL, "/bin/x", 0);
	struct policy_decision d;
	json_t *st;

	(void)state;
	/* A shadow deny: allowed, and what it would have done is kept. */
	d = stmt(p, &in, "DELETE FROM t", NULL);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "read");
	assert_string_equal(d.would_rule, "try: no deletes");
	assert_int_equal(d.would_action, POLICY_DENY);
	assert_string_equal(policy_decision_name(&d), "shadow_deny");
	policy_note(p, &d);
	d = stmt(p, &in, "SELECT 1", NULL);
	assert_null(d.would_rule);
	assert_string_equal(policy_decision_name(&d), "allow");
	policy_note(p, &d);
	/* The rule that is off never denies the connection. */
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	st = policy_stats_json(p);
	/* The shadowed DELETE and the SELECT were both allowed by "read". */
	assert_int_equal(json_integer_value(json_object_get(
				 json_array_get(json_object_get(st, "rules"), 0),
				 "allow")),
			 2);
	assert_int_equal(json_integer_value(json_object_get(
				 json_array_get(json_object_get(st, "rules"), 1),
				 "shadow")),
			 1);
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(st, "rules"), 1), "mode")),
		"shadow");
	json_decref(st);

	/* A shadow policy: its default deny lets the statement through. */
	d = stmt(ps, &in, "DELETE FROM t", NULL);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.would_rule, "default");
	assert_string_equal(policy_decision_name(&d), "shadow_deny");
	d = stmt(ps, &in, "SELECT 1", NULL);
	assert_null(d.would_rule);

	/* Off: everything is allowed, by "off". */
	d = stmt(po, &in, "DROP TABLE t", NULL);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "off");
	policy_free(p);
	policy_free(ps);
	policy_free(po);
}

/* ---- users, scopes, expiry -------------------------------------------- */

#define ISSUERS                                                           \
	"\"issuers\": [{\"name\": \"corp\", \"issuer\": "                 \
	"\"https://idp.example\", \"audience\": \"bridle\", \"jwks_file\": " \
	"\"%s\", \"scopes_claim\": \"scope\"}]"

static char jwks_path[64];

static char *with_issuers(const char *fmt)
{
	char *out = NULL;

	assert_true(asprintf(&out, fmt, jwks_path) > 0);
	return out;
}

static const char *const analysts[] = { "analysts" };
static const char *const scopes_orders[] = { "openid",
					     "sql:select:public.orders",
					     "sql:insert:public.orders" };

static void test_users_and_scopes(void **state)
{
	char *text = with_issuers(
		"{" ISSUERS ", \"targets\": [{\"name\": \"db\", \"address\": "
		"\"10.0.0.5\", \"port\": 5432, \"protocol\": \"postgres\", "
		"\"require_user\": true, \"credentials\": {\"user\": \"app\", "
		"\"password_env\": \"PW\"}}], \"rules\": ["
		"{\"name\": \"analysts read\", \"when\": {\"user\": {\"groups\": "
		"\"analysts\", \"issuer\": \"corp\"}, \"target\": \"db\"}, "
		"\"action\": \"allow\", \"sql\": {\"commands\": [\"select\", "
		"\"insert\", \"delete\"], \"tables\": [\"public.*\"]}},"
		"{\"name\": \"not mallory\", \"when\": {\"user\": {\"sub\": "
		"\"mallory\"}}, \"action\": \"deny\", \"message\": \"go away\"}"
		"]}");
	struct policy *p = compile_ok(text);
	struct policy_user alice = {
		.issuer = "corp",
		.sub = "alice",
		.groups = analysts,
		.ngroups = 1,
		.scoped = true,
		.scopes = scopes_orders,
		.nscopes = 3,
		.expires = NOW + 60,
	};
	struct policy_user mallory = alice;
	struct policy_input in = input("agent", NULL, "/bin/psql", 0);
	struct policy_decision d;

	(void)state;
	mallory.sub = "mallory";
	/* At accept the user is not known: the rule about users lets the
	 * connection on, the deny about a user waits for the login. */
	in.user_pending = true;
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "analysts read");
	/* A rule about users admits no connection to a target without
	 * tokens, even before the login. */
	{
		char *t2 = with_issuers(
			"{" ISSUERS ", \"targets\": [{\"name\": \"raw\", "
			"\"address\": \"10.0.0.5\"}], \"rules\": [{\"name\": "
			"\"users\", \"when\": {\"user\": {}}, \"action\": "
			"\"allow\"}]}");
		struct policy *p2 = compile_ok(t2);

		policy_decide(p2, &in, &d);
		assert_int_equal(d.action, POLICY_DENY);
		assert_string_equal(d.rule, "default");
		policy_free(p2);
		free(t2);
	}
	/* Without a token at all: the target requires one. */
	in.user_pending = false;
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "token");
	d = stmt(p, &in, "SELECT * FROM orders", NULL);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "token");
	/* The login decision with the user. */
	in.user = &mallory;
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.message, "go away");
	in.user = &alice;
	policy_decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_ALLOW);

	/* Rules and scopes must both allow. */
	d = stmt(p, &in, "SELECT * FROM orders", NULL);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "analysts read");
	d = stmt(p, &in, "INSERT INTO public.orders VALUES (1)", NULL);
	assert_int_equal(d.action, POLICY_ALLOW);
	d = stmt(p, &in, "SELECT * FROM customers", NULL); /* no scope */
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "token");
	assert_string_equal(d.message,
			    "the token's scopes do not allow this statement");
	d = stmt(p, &in, "DELETE FROM orders", NULL); /* rule yes, scope no */
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "token");
	d = stmt(p, &in, "UPDATE orders SET a = 1", NULL); /* scope no, rule no */
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "default");
	d = stmt(p, &in, "BEGIN", NULL); /* housekeeping needs no scope */
	assert_int_equal(d.action, POLICY_ALLOW);
	/* A join needs every table in scope. */
	d = stmt(p, &in,
		 "SELECT * FROM orders o JOIN customers c ON c.id = o.cid",
		 NULL);
	assert_int_equal(d.action, POLICY_DENY);

	/* Wider scopes: any command on a glob; a command alone. */
	{
		static const char *const wide[] = { "sql:*:public.*" };
		static const char *const sel[] = { "sql:select" };
		struct policy_user u = alice;

		u.scopes = wide;
		u.nscopes = 1;
		in.user = &u;
		d = stmt(p, &in, "DELETE FROM orders", NULL);
		assert_int_equal(d.action, POLICY_ALLOW);
		u.scopes = sel;
		d = stmt(p, &in, "SELECT * FROM customers", NULL);
		assert_int_equal(d.action, POLICY_ALLOW);
		d = stmt(p, &in, "DELETE FROM orders", NULL);
		assert_int_equal(d.action, POLICY_DENY);
		/* An issuer that narrows and a token with no scope: nothing. */
		u.nscopes = 0;
		d = stmt(p, &in, "SELECT * FROM customers", NULL);
		assert_int_equal(d.action, POLICY_DENY);
		assert_string_equal(d.rule, "token");
	}

	/* Expiry: valid up to that second (as at login), then nothing
	 * runs. */
	in.user = &alice;
	in.now = NOW + 60;
	d = stmt(p, &in, "SELECT * FROM orders", NULL);
	assert_int_equal(d.action, POLICY_ALLOW);
	in.now = NOW + 61;
	d = stmt(p, &in, "SELECT * FROM orders", NULL);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "token");
	assert_string_equal(d.message,
			    "token expired: reconnect with a fresh token");
	d = stmt(p, &in, "BEGIN", NULL);
	assert_int_equal(d.action, POLICY_DENY);
	policy_free(p);
	free(text);
}

/* ---- errors and hints --------------------------------------------------- */

static void test_errors(void **state)
{
	char *text, *got;

	(void)state;
	assert_error("{\"targets\": [" DB_TARGET "], \"rules\": [{\"name\": "
		     "\"r\", \"workload\": {\"name\": \"a\"}, \"action\": "
		     "\"allow\"}]}",
		     "p.json: $.rules[0].workload: conditions live in "
		     "\"when\"");
	assert_error("{\"rules\": [{\"name\": \"r\", \"wehn\": {}, "
		     "\"action\": \"allow\"}]}",
		     "$.rules[0].wehn: unknown key: did you mean \"when\"?");
	assert_error("{\"rules\": [{\"name\": \"r\", \"when\": {\"proces\": "
		     "{}}, \"action\": \"allow\"}]}",
		     "$.rules[0].when.proces: unknown key: did you mean "
		     "\"process\"?");
	assert_error("{\"rules\": [{\"name\": \"r\", \"action\": \"allow\", "
		     "\"mode\": \"dry-run\"}]}",
		     "$.rules[0].mode: \"dry-run\" is not a mode (enforce, "
		     "shadow, off)");
	assert_error("{\"rules\": [{\"name\": \"r\", \"action\": \"permit\"}]}",
		     "$.rules[0].action: \"permit\" is not an action (deny, "
		     "allow, review)");
	assert_error("{\"rules\": [{\"name\": \"r\", \"action\": \"allow\", "
		     "\"message\": \"m\"}]}",
		     "only deny and review rules carry a message");
	assert_error("{\"rules\": [{\"name\": \"r\", \"action\": \"allow\", "
		     "\"when\": {\"user\": {\"sub\": \"a\"}}}]}",
		     "$.rules[0].when.user: rules about users need an issuer");
	assert_error("{\"rules\": [{\"name\": \"r\", \"action\": \"allow\", "
		     "\"when\": {\"process\": {\"exe\": \"psql\"}}}]}",
		     "$.rules[0].when.process.exe: \"psql\" is not a path");
	assert_error("{\"targets\": [" DB_TARGET "], \"rules\": [{\"name\": "
		     "\"r\", \"action\": \"allow\", \"when\": {\"target\": "
		     "\"dbb\"}}]}",
		     "$.rules[0].when.target: no target named \"dbb\": did you "
		     "mean \"db\"?");
	assert_error("{\"rules\": [{\"name\": \"r\", \"action\": \"review\"}]}",
		     "$.rules[0].action: review holds requests");
	assert_error("{\"rules\": [{\"name\": \"token\", \"action\": "
		     "\"allow\"}]}",
		     "$.rules[0].name: \"token\" is reserved");
	assert_error("{\"issuers\": [{\"name\": \"corp\", \"issuer\": \"i\", "
		     "\"jwks_file\": \"/nonexistent/jwks.json\"}]}",
		     "$.issuers[0].audience: required");
	assert_error("{\"issuers\": [{\"name\": \"corp\", \"issuer\": \"i\", "
		     "\"audience\": \"a\", \"jwks_url\": \"http://idp/jwks\"}]}",
		     "$.issuers[0].jwks_url: ");
	assert_error("{\"issuers\": [{\"name\": \"corp\", \"issuer\": \"i\", "
		     "\"audience\": \"a\"}]}",
		     "give exactly one of jwks_file");
	assert_error("{\"targets\": [{\"name\": \"t\", \"address\": "
		     "\"10.0.0.1\", \"require_user\": true}]}",
		     "$.targets[0].require_user: a tcp target carries no token");
	/* Every error, not just the first. */
	got = errors_of("{\"targets\": [{\"name\": \"t\", \"address\": "
			"\"10.0.0.300\"}], \"rules\": [{\"name\": \"a\", "
			"\"action\": \"alow\"}, {\"name\": \"b\", \"action\": "
			"\"deny\", \"when\": {\"target\": \"t\"}}, {\"name\": "
			"\"c\", \"action\": \"deny\", \"sql\": {\"comands\": "
			"[]}}]}");
	assert_non_null(strstr(got, "$.targets[0].address: "));
	assert_non_null(strstr(got, "$.rules[0].action: \"alow\""));
	assert_non_null(strstr(got, "$.rules[2].sql.comands: unknown key: did "
				    "you mean \"commands\"?"));
	/* The target with an error is still known by name: no cascade. */
	assert_null(strstr(got, "no target named"));
	free(got);
	text = with_issuers("{" ISSUERS ", \"targets\": [" DB_TARGET "], "
			    "\"rules\": [{\"name\": \"u\", \"when\": "
			    "{\"user\": {}, \"target\": \"db\"}, \"action\": "
			    "\"allow\"}]}");
	{
		struct policy *p = compile_ok(text);
		json_t *w = policy_warnings(p);

		assert_int_equal(json_array_size(w), 1);
		assert_non_null(strstr(json_string_value(json_array_get(w, 0)),
				       "takes no user token"));
		json_decref(w);
		policy_free(p);
	}
	free(text);
}

static void test_version(void **state)
{
	struct policy *a = compile_ok("{\"default\": \"deny\", \"targets\": "
				      "[" DB_TARGET "]}");
	struct policy *b = compile_ok("{\"targets\": [" DB_TARGET "], "
				      "\"default\": \"deny\"}");
	struct policy *c = compile_ok("{\"default\": \"allow\", \"targets\": "
				      "[" DB_TARGET "]}");

	(void)state;
	assert_int_equal(strlen(policy_version(a)), 7 + 16);
	assert_string_equal(policy_version(a), policy_version(b));
	assert_string_not_equal(policy_version(a), policy_version(c));
	policy_free(a);
	policy_free(b);
	policy_free(c);
}

/* ---- real tokens -------------------------------------------------------- */

static EVP_PKEY *key, *other;

static int setup(void **state)
{
	(void)state;
	key = ed_key_and_jwks("k1", jwks_path, sizeof(jwks_path));
	other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return key && other ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	unlink(jwks_path);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	return 0;
}

static void test_identity(void **state)
{
	char *text = with_issuers(
		"{" ISSUERS ", \"targets\": [{\"name\": \"db\", \"address\": "
		"\"10.0.0.5\", \"protocol\": \"postgres\", \"require_user\": "
		"true, \"credentials\": {\"user\": \"app\", \"password_env\": "
		"\"PW\"}}]}");
	struct policy *p = compile_ok(text);
	struct identity_user *u = NULL;
	char err[256], payload[512], *tok;
	static const struct {
		const char *claims; /* after iss and aud */
		bool other_key;
		const char *kid;
		const char *err; /* NULL: accepted */
	} cases[] = {
		{ "\"sub\": \"alice\", \"exp\": 1900000100", false, "k1", NULL },
		{ "\"sub\": \"alice\", \"exp\": 1900000100", true, "k1",
		  "bad signature" },
		{ "\"sub\": \"alice\", \"exp\": 1900000100", false, "k9",
		  "unknown key id" },
		{ "\"sub\": \"alice\", \"exp\": 1899999000", false, "k1",
		  "expired" },
		{ "\"sub\": \"alice\", \"exp\": 1900000100, \"nbf\": "
		  "1900000500",
		  false, "k1", "not yet valid" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		snprintf(payload, sizeof(payload),
			 "{\"iss\": \"https://idp.example\", \"aud\": "
			 "\"bridle\", %s}",
			 cases[i].claims);
		tok = ed_token(cases[i].other_key ? other : key, cases[i].kid,
			    payload);
		err[0] = '\0';
		r = identity_authenticate(p, tok, strlen(tok), NOW, &u, err,
					  sizeof(err));
		if (!cases[i].err) {
			if (r)
				fail_msg("case %zu: %s", i, err);
			identity_user_free(u);
		} else {
			assert_int_equal(r, -1);
			if (!strstr(err, cases[i].err))
				fail_msg("case %zu: wanted \"%s\", got \"%s\"",
					 i, cases[i].err, err);
			assert_null(strstr(err, tok));
		}
		free(tok);
	}
	/* Wrong audience; unknown issuer. */
	tok = ed_token(key, "k1",
		    "{\"iss\": \"https://idp.example\", \"aud\": \"other\", "
		    "\"sub\": \"a\", \"exp\": 1900000100}");
	assert_int_equal(identity_authenticate(p, tok, strlen(tok), NOW, &u,
					       err, sizeof(err)),
			 -1);
	assert_string_equal(err, "wrong audience");
	free(tok);
	tok = ed_token(key, "k1",
		    "{\"iss\": \"https://evil.example\", \"aud\": \"bridle\", "
		    "\"sub\": \"a\", \"exp\": 1900000100}");
	assert_int_equal(identity_authenticate(p, tok, strlen(tok), NOW, &u,
					       err, sizeof(err)),
			 -1);
	assert_string_equal(
		err, "token issuer \"https://evil.example\" is not trusted");
	free(tok);
	/* Not a token at all. */
	assert_int_equal(identity_authenticate(p, "secret", 6, NOW, &u, err,
					       sizeof(err)),
			 -1);
	assert_int_equal(identity_authenticate(p, "", 0, NOW, &u, err,
					       sizeof(err)),
			 -1);
	/* Claims: groups (array), scopes (a space-separated string),
	 * expiry with the skew (60 s by default). */
	tok = ed_token(key, "k1",
		    "{\"iss\": \"https://idp.example\", \"aud\": [\"x\", "
		    "\"bridle\"], \"sub\": \"alice\", \"email\": "
		    "\"alice@example.com\", \"groups\": [\"analysts\", 7, "
		    "\"oncall\"], \"scope\": \"openid sql:select:public.orders\","
		    " \"exp\": 1900000100}");
	assert_int_equal(identity_authenticate(p, tok, strlen(tok), NOW, &u,
					       err, sizeof(err)),
			 0);
	assert_string_equal(u->u.issuer, "corp");
	assert_string_equal(u->u.sub, "alice");
	assert_string_equal(u->u.email, "alice@example.com");
	assert_int_equal(u->u.ngroups, 2);
	assert_string_equal(u->u.groups[1], "oncall");
	assert_true(u->u.scoped);
	assert_int_equal(u->u.nscopes, 2);
	assert_string_equal(u->u.scopes[1], "sql:select:public.orders");
	assert_int_equal(u->u.expires, 1900000100 + 60);
	identity_user_free(u);
	free(tok);
	policy_free(p);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_process_exe),
		cmocka_unit_test(test_uid_labels_k8s),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_users_and_scopes),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_identity),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
