// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for user/policy.c (with user/jsonv.c): validation errors with
 * their JSON paths and reasons, CIDR parsing, and decisions: target
 * specificity, deny over allow, workload globs and labels, defaults, IPv6.
 * Then postgres targets: statement decisions on statements from the real
 * classifier (user/sql.c), mask plans, and reference counting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridle/policy.h"

#include "policy_text.h"

#define FILE_NAME "p.json"

static struct policy *compile(const char *text, char *err, size_t errlen)
{
	return compile_text(text, err, errlen, NULL);
}

static struct policy *compile_ok(const char *text)
{
	char err[512];
	struct policy *p = compile(text, err, sizeof(err));

	if (!p)
		fail_msg("policy refused: %s\n%s", err, text);
	assert_string_equal(err, "");
	return p;
}

/* ---- validation ----------------------------------------------------- */

/* A policy with targets "a" (10.0.0.1) and "b" (10.0.0.2) and @rules. */
#define WITH_RULES(rules)                                                     \
	"{\"targets\": [{\"name\": \"a\", \"address\": \"10.0.0.1\"},"        \
	" {\"name\": \"b\", \"address\": \"10.0.0.2\"}], \"rules\": " rules "}"
#define T(extra) "{\"targets\": [{\"name\": \"a\", " extra "}]}"
#define T1(extra) T("\"address\": \"10.0.0.1\", " extra)
/* A postgres target "db" with @extra keys; PG_CREDS are valid credentials. */
#define PG_CREDS                                                              \
	", \"credentials\": {\"user\": \"u\", \"password_env\": \"PGPASS\"}"
#define PGT(extra)                                                            \
	"{\"targets\": [{\"name\": \"db\", \"address\": \"10.0.0.1\", "      \
	"\"protocol\": \"postgres\"" extra "}]}"
/* Targets "db" (postgres) and "web" (tcp), and @rules. */
#define PG_RULES(rules)                                                       \
	"{\"targets\": [{\"name\": \"db\", \"address\": \"10.0.0.1\", "      \
	"\"protocol\": \"postgres\"" PG_CREDS "},"                              \
	" {\"name\": \"web\", \"address\": \"10.0.0.2\"}], \"rules\": " rules "}"

static const struct bad_case {
	const char *text;
	const char *path; /* JSON path the error must name */
	const char *reason;
} bad_cases[] = {
	{ "[]", "$", "expected an object, found an array" },
	{ "{\"defualt\": \"deny\"}", "$.defualt",
	  "unknown key: did you mean \"default\"? (allowed: mode, default, issuers, targets, rules)" },
	{ "{\"default\": \"maybe\"}", "$.default",
	  "\"maybe\" is not an action (deny, allow)" },
	{ "{\"default\": 1}", "$.default",
	  "expected a string, found an integer" },
	{ "{\"default\": \"\"}", "$.default", "must not be empty" },
	{ "{\"targets\": {}}", "$.targets", "expected an array of targets" },
	{ "{\"targets\": [1]}", "$.targets[0]",
	  "expected an object, found an integer" },
	{ T("\"address\": \"10.0.0.1\", \"host\": \"x\""), "$.targets[0].host",
	  "unknown key (allowed: name, address, port, protocol, tls, ca_file, server_name, credentials, require_user)" },
	{ "{\"targets\": [{\"address\": \"10.0.0.1\"}]}", "$.targets[0].name",
	  "required key is missing" },
	{ T("\"address\": \"10.0.0.1\", \"name\": \"\"") /* dup key */, NULL,
	  NULL },
	{ T("\"port\": 1"), "$.targets[0].address", "required key is missing" },
	{ T("\"address\": \"10.0.0.1/8\""), "$.targets[0].address",
	  "\"10.0.0.1/8\" is not an IP address or CIDR prefix (host bits "
	  "must be zero)" },
	{ T("\"address\": \"example.com\""), "$.targets[0].address",
	  "\"example.com\" is not an IP address or CIDR prefix" },
	{ T("\"address\": 167772161"), "$.targets[0].address",
	  "expected a string, found an integer" },
	{ T1("\"port\": 0"), "$.targets[0].port",
	  "0 is out of range 1..65535" },
	{ T1("\"port\": 65536"), "$.targets[0].port",
	  "65536 is out of range 1..65535" },
	{ T1("\"port\": -80"), "$.targets[0].port",
	  "-80 is out of range 1..65535" },
	{ T1("\"port\": \"80\""), "$.targets[0].port",
	  "expected an integer, found a string" },
	{ T1("\"protocol\": \"udp\""), "$.targets[0].protocol",
	  "\"udp\" is not a supported protocol (tcp, postgres)" },
	{ "{\"targets\": [{\"name\": \"a\\u0001\", \"address\": \"10.0.0.1\"}]}",
	  "$.targets[0].name", "contains control characters" },
	{ "{\"targets\": [{\"name\": \"a\", \"address\": \"10.0.0.1\"},"
	  " {\"name\": \"a\", \"address\": \"10.0.0.2\"}]}",
	  "$.targets[1].name", "duplicate target name \"a\"" },
	{ "{\"rules\": {}}", "$.rules", "expected an array of rules" },
	{ WITH_RULES("[\"r\"]"), "$.rules[0]",
	  "expected an object, found a string" },
	{ WITH_RULES("[{\"action\": \"allow\"}]"), "$.rules[0].name",
	  "required key is missing" },
	{ WITH_RULES("[{\"name\": \"r\"}]"), "$.rules[0].action",
	  "required key is missing" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"permit\"}]"),
	  "$.rules[0].action", "\"permit\" is not an action (deny, allow, review)" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		     "\"targets\": \"a\"}]"),
	  "$.rules[0].targets",
	  "unknown key (allowed: name, when, action, mode, message, sql, mask, timeout_seconds, approvers)" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"target\": \"a\"}, "
		     "\"action\": \"allow\"}, {\"name\": \"s\", \"when\": "
		     "{\"target\": \"nope\"}, \"action\": \"deny\"}]"),
	  "$.rules[1].when.target", "no target named \"nope\"" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		     "\"approvers\": {\"users\": [\"a\"]}}]"),
	  "$.rules[0].approvers", "only review rules have approvers" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		     "\"timeout_seconds\": 5}]"),
	  "$.rules[0].timeout_seconds", "only review rules hold a request" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"review\", "
		     "\"approvers\": {\"users\": [\"a\"], \"min\": 2}}]"),
	  "$.rules[0].approvers.min",
	  "2 approvals, from 1 named users: never enough" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"review\", "
		     "\"approvers\": {\"user\": [\"a\"]}}]"),
	  "$.rules[0].approvers.user", "unknown key" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"target\": []}, "
		     "\"action\": \"allow\"}]"),
	  "$.rules[0].when.target",
	  "expected a target name or a non-empty array of target names" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"target\": 5}, "
		     "\"action\": \"allow\"}]"),
	  "$.rules[0].when.target",
	  "expected a target name or a non-empty array of target names" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"target\": [\"a\", \"b\", "
		     "\"c\"]}, \"action\": \"allow\"}]"),
	  "$.rules[0].when.target[2]", "no target named \"c\"" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"target\": [\"a\", 1]}, "
		     "\"action\": \"allow\"}]"),
	  "$.rules[0].when.target[1]", "expected a target name" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		     "\"message\": \"no\"}]"),
	  "$.rules[0].message", "only deny and review rules carry a message" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		     "\"message\": \"\"}]"),
	  "$.rules[0].message", "must not be empty" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\"}, "
		     "{\"name\": \"s\", \"action\": \"deny\"}, "
		     "{\"name\": \"r\", \"action\": \"allow\"}]"),
	  "$.rules[2].name", "duplicate rule name \"r\"" },
	{ WITH_RULES("[{\"name\": \"r\\n\", \"action\": \"deny\"}]"),
	  "$.rules[0].name", "contains control characters" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"workload\": \"agent\"}, "
		     "\"action\": \"deny\"}]"),
	  "$.rules[0].when.workload", "expected an object, found a string" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"workload\": "
		     "{\"nmespace\": \"x\"}}, \"action\": \"deny\"}]"),
	  "$.rules[0].when.workload.nmespace",
	  "unknown key: did you mean \"namespace\"? (allowed: name, labels, "
	  "namespace, pod, service_account)" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"workload\": {\"name\": "
		     "[]}}, \"action\": \"deny\"}]"),
	  "$.rules[0].when.workload.name",
	  "expected a string or a non-empty array of strings (globs "
	  "allowed)" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"workload\": {\"name\": "
		     "3}}, \"action\": \"deny\"}]"),
	  "$.rules[0].when.workload.name",
	  "expected a string or a non-empty array of strings" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"workload\": {\"name\": "
		     "[\"a\", 1]}}, \"action\": \"deny\"}]"),
	  "$.rules[0].when.workload.name[1]", "expected a non-empty string" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"workload\": {\"labels\": "
		     "[\"app\"]}}, \"action\": \"deny\"}]"),
	  "$.rules[0].when.workload.labels",
	  "expected an object of label: value" },
	{ WITH_RULES("[{\"name\": \"r\", \"when\": {\"workload\": {\"labels\": "
		     "{\"app\": \"x\", \"tier\": 2}}}, \"action\": \"deny\"}]"),
	  "$.rules[0].when.workload.labels.tier",
	  "label values must be strings" },

	/* postgres targets: TLS and credentials. */
	{ T1("\"protocol\": \"postgres\""), "$.targets[0].credentials",
	  "a postgres target needs credentials: bridle logs in for the agent" },
	{ PGT(", \"credentials\": {\"user\": \"u\", \"password_file\": "
	      "\"/run/pw\", \"password_env\": \"PGPASS\"}"),
	  "$.targets[0].credentials",
	  "give exactly one of password_file and password_env" },
	{ PGT(", \"credentials\": {\"user\": \"u\"}"),
	  "$.targets[0].credentials",
	  "give exactly one of password_file and password_env" },
	{ PGT(", \"credentials\": {\"user\": \"u\", \"password_file\": "
	      "\"run/pw\"}"),
	  "$.targets[0].credentials.password_file", "must be an absolute path" },
	{ PGT(", \"credentials\": {\"password_env\": \"PGPASS\"}"),
	  "$.targets[0].credentials.user", "required" },
	{ PGT(", \"credentials\": {\"user\": \"\", \"password_env\": "
	      "\"PGPASS\"}"),
	  "$.targets[0].credentials.user", "must not be empty" },
	{ PGT(", \"credentials\": {\"user\": \"u\", \"password\": \"x\"}"),
	  "$.targets[0].credentials.password",
	  "unknown key (allowed: user, password_file, password_env, database)" },
	{ PGT(", \"credentials\": \"u:pw\""), "$.targets[0].credentials",
	  "expected an object, found a string" },
	{ T1("\"credentials\": {\"user\": \"u\", \"password_env\": \"P\"}"),
	  "$.targets[0].credentials", "tcp targets carry no credentials" },
	{ PGT(PG_CREDS ", \"tls\": \"verify-full\""), "$.targets[0].ca_file",
	  "verify-full needs a CA file" },
	{ PGT(PG_CREDS ", \"tls\": \"require\", \"ca_file\": \"/ca.pem\""),
	  "$.targets[0].ca_file", "only used with verify-full" },
	{ PGT(PG_CREDS ", \"ca_file\": \"/ca.pem\""), "$.targets[0].ca_file",
	  "only used with verify-full" },
	{ PGT(PG_CREDS ", \"tls\": \"prefer\""), "$.targets[0].tls",
	  "\"prefer\" is not a TLS mode (disable, require, verify-full)" },
	{ T1("\"tls\": \"require\""), "$.targets[0].tls",
	  "tcp targets are relayed as they are: TLS applies to postgres "
	  "targets" },
	{ T1("\"tls\": \"disable\""), "$.targets[0].tls",
	  "tcp targets are relayed as they are: TLS applies to postgres "
	  "targets" },

	/* Rules: the sql part. */
	{ PG_RULES("[{\"name\": \"r\", \"when\": {\"target\": \"web\"}, "
		   "\"action\": \"allow\", \"sql\": {\"commands\": "
		   "[\"select\"]}}]"),
	  "$.rules[0].sql",
	  "target \"web\" is not a postgres target: sql rules apply to "
	  "postgres targets" },
	{ PG_RULES("[{\"name\": \"r\", \"when\": {\"target\": [\"db\", "
		   "\"web\"]}, \"action\": \"deny\", \"sql\": {\"tables\": "
		   "[\"x\"]}}]"),
	  "$.rules[0].sql", "target \"web\" is not a postgres target" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"sql\": {\"commands\": [\"select\", \"drop\"]}}]"),
	  "$.rules[0].sql.commands",
	  "\"drop\" is not a command (select, insert, update, delete, merge, "
	  "copy, ddl, privilege, set, show, transaction, explain, prepare, "
	  "execute, call, do, utility)" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"sql\": {\"commands\": [\"SELECT\"]}}]"),
	  "$.rules[0].sql.commands", "\"SELECT\" is not a command" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"sql\": {\"commands\": []}}]"),
	  "$.rules[0].sql.commands", "expected a non-empty array of strings" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"sql\": {\"tables\": [\"a\", \"\"]}}]"),
	  "$.rules[0].sql.tables[1]", "expected a non-empty string" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"sql\": {\"functions\": \"lower\"}}]"),
	  "$.rules[0].sql.functions", "expected a non-empty array of strings" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"sql\": {\"table\": [\"x\"]}}]"),
	  "$.rules[0].sql.table",
	  "unknown key: did you mean \"tables\"? (allowed: commands, tables, "
	  "functions, permit)" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"sql\": [\"select\"]}]"),
	  "$.rules[0].sql", "expected an object, found an array" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"sql\": {\"permit\": [\"opaque\", \"superuser\"]}}]"),
	  "$.rules[0].sql.permit",
	  "expected names of risky statement kinds (privilege_change, "
	  "server_file, opaque, select_into, explain_analyze)" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"sql\": {\"permit\": [2]}}]"),
	  "$.rules[0].sql.permit", "expected names of risky statement kinds" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"sql\": {\"permit\": \"opaque\"}}]"),
	  "$.rules[0].sql.permit", "expected an array" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		   "\"sql\": {\"permit\": [\"opaque\"]}}]"),
	  "$.rules[0].sql.permit", "only allow rules permit" },

	/* Rules: the mask part. */
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		   "\"mask\": {\"columns\": [\"email\"]}}]"),
	  "$.rules[0].mask", "only allow rules mask" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"mask\": {\"detectors\": [\"email\", \"ssn\"]}}]"),
	  "$.rules[0].mask.detectors",
	  "\"ssn\" is not a detector (email, credit_card, us_ssn, phone, "
	  "iban, ipv4, aws_access_key, private_key, jwt)" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"mask\": {\"columns\": [\"email\"], \"style\": "
		   "\"blur\"}}]"),
	  "$.rules[0].mask.style",
	  "\"blur\" is not a style (redact, partial, hash)" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"mask\": {\"columns\": [\"email\", \"a.b.c.d\"]}}]"),
	  "$.rules[0].mask.columns",
	  "\"a.b.c.d\" is not a column, table.column or schema.table.column" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"mask\": {\"columns\": [\".x\"]}}]"),
	  "$.rules[0].mask.columns",
	  "\".x\" is not a column, table.column or schema.table.column" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"mask\": {\"columns\": [\"x.\"]}}]"),
	  "$.rules[0].mask.columns", "\"x.\" is not a column" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"mask\": {\"columns\": [\"a..b\"]}}]"),
	  "$.rules[0].mask.columns", "\"a..b\" is not a column" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"mask\": {\"style\": \"hash\"}}]"),
	  "$.rules[0].mask", "a mask needs columns or detectors" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"mask\": {}}]"),
	  "$.rules[0].mask", "a mask needs columns or detectors" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"mask\": {\"column\": [\"x\"]}}]"),
	  "$.rules[0].mask.column",
	  "unknown key: did you mean \"columns\"? (allowed: columns, "
	  "detectors, style)" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"mask\": {\"detectors\": []}}]"),
	  "$.rules[0].mask.detectors", "expected a non-empty array of strings" },
};

static void test_compile_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char err[512], prefix[300];
		json_error_t je;
		json_t *root;
		struct policy *p;

		if (!c->path) {
			/* Duplicate keys never reach the compiler. */
			root = json_loads(c->text, JSON_REJECT_DUPLICATES, &je);
			assert_null(root);
			continue;
		}
		p = compile(c->text, err, sizeof(err));
		if (p) {
			policy_free(p);
			fail_msg("case %zu accepted: %s", i, c->text);
		}
		snprintf(prefix, sizeof(prefix), "%s: %s: ", FILE_NAME, c->path);
		if (strncmp(err, prefix, strlen(prefix)) != 0 ||
		    !strstr(err + strlen(prefix), c->reason))
			fail_msg("case %zu: %s\n  want: %s%s...\n  got:  %s", i,
				 c->text, prefix, c->reason, err);
	}
}

static void test_compile_ok(void **state)
{
	struct policy *p;

	(void)state;
	p = compile_ok("{}");
	assert_int_equal(policy_target_count(p), 0);
	assert_int_equal(policy_rule_count(p), 0);
	policy_free(p);

	p = compile_ok("{\"default\": \"allow\", \"targets\": [], \"rules\": []}");
	assert_int_equal(policy_target_count(p), 0);
	policy_free(p);

	p = compile_ok(WITH_RULES(
		"[{\"name\": \"r\", \"when\": {\"target\": \"a\"}, \"action\": "
		"\"allow\"},"
		" {\"name\": \"s\", \"when\": {\"workload\": {\"name\": \"x*\","
		"  \"labels\": {}}, \"target\": [\"a\", \"b\"]},"
		"  \"action\": \"deny\", \"message\": \"m\"},"
		" {\"name\": \"t\", \"when\": {\"workload\": {}},"
		"  \"action\": \"allow\"}]"));
	assert_int_equal(policy_target_count(p), 2);
	assert_int_equal(policy_rule_count(p), 3);
	policy_free(p);

	p = compile_ok("{\"targets\": [{\"name\": \"x\", \"address\": "
		       "\"2001:db8::/32\", \"port\": 443, \"protocol\": "
		       "\"tcp\"}]}");
	assert_int_equal(policy_target_count(p), 1);
	policy_free(p);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(policy_action_name(POLICY_ALLOW), "allow");
	assert_string_equal(policy_action_name(POLICY_DENY), "deny");
	assert_string_equal(policy_proto_name(PROTO_TCP), "tcp");
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/bridle-test-policy-XXXXXX";
	char err[512], want[600];
	const char *text = WITH_RULES(
		"[{\"name\": \"r\", \"when\": {\"target\": \"a\"}, \"action\": "
		"\"allow\"},"
		" {\"name\": \"s\", \"when\": {\"target\": \"z\"},"
		"  \"action\": \"allow\"}]");
	int fd = mkstemp(path);
	struct policy *p;

	(void)state;
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_null(policy_load_file(path, err, sizeof(err)));
	snprintf(want, sizeof(want),
		 "%s: $.rules[1].when.target: no target named \"z\"", path);
	assert_string_equal(err, want);

	text = WITH_RULES("[]");
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	p = policy_load_file(path, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(policy_target_count(p), 2);
	policy_free(p);
	unlink(path);

	assert_null(policy_load_file(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot open: ", path);
	assert_memory_equal(err, want, strlen(want));
	policy_free(NULL);
}

/* ---- policy_parse_cidr ---------------------------------------------- */

static const struct cidr_case {
	const char *text;
	int family;	  /* 0: must be refused */
	const char *addr; /* expected network, in inet_pton form */
	unsigned prefix;
} cidr_cases[] = {
	{ "10.0.0.0/8", AF_INET, "10.0.0.0", 8 },
	{ "10.1.2.3", AF_INET, "10.1.2.3", 32 },
	{ "10.1.2.3/32", AF_INET, "10.1.2.3", 32 },
	{ "0.0.0.0/0", AF_INET, "0.0.0.0", 0 },
	{ "0.0.0.0", AF_INET, "0.0.0.0", 32 },
	{ "255.255.255.255", AF_INET, "255.255.255.255", 32 },
	{ "10.1.2.128/25", AF_INET, "10.1.2.128", 25 },
	{ "172.16.0.0/12", AF_INET, "172.16.0.0", 12 },
	{ "::1", AF_INET6, "::1", 128 },
	{ "::", AF_INET6, "::", 128 },
	{ "::/0", AF_INET6, "::", 0 },
	{ "2001:db8::/32", AF_INET6, "2001:db8::", 32 },
	{ "2001:db8:8000::/33", AF_INET6, "2001:db8:8000::", 33 },
	{ "fe80::/10", AF_INET6, "fe80::", 10 },
	{ "2001:db8::1/128", AF_INET6, "2001:db8::1", 128 },
	{ "::10.1.2.3", AF_INET6, "::10.1.2.3", 128 },
	/* IPv4-mapped IPv6 is the IPv4 address it maps. */
	{ "::ffff:10.1.2.3", AF_INET, "10.1.2.3", 32 },
	{ "::FFFF:0a01:0203", AF_INET, "10.1.2.3", 32 },
	{ "::ffff:0.0.0.0", AF_INET, "0.0.0.0", 32 },
	/* Refused. */
	{ "10.0.0.1/8", 0, NULL, 0 },	  /* host bits set */
	{ "10.1.2.129/25", 0, NULL, 0 },  /* host bits set */
	{ "2001:db8::1/32", 0, NULL, 0 }, /* host bits set */
	{ "fe80::/8", 0, NULL, 0 },	  /* host bits set */
	{ "10.0.0.0/33", 0, NULL, 0 },	  /* prefix too long */
	{ "::/129", 0, NULL, 0 },	  /* prefix too long */
	{ "10.0.0.0/4294967304", 0, NULL, 0 }, /* wraps to 8 in 32 bits */
	{ "10.0.0.0/99999999999999999999999", 0, NULL, 0 },
	{ "10.0.0.0/", 0, NULL, 0 },
	{ "10.0.0.0/-8", 0, NULL, 0 },
	{ "10.0.0.0/+8", 0, NULL, 0 },
	{ "10.0.0.0/ 8", 0, NULL, 0 },
	{ "10.0.0.0/8 ", 0, NULL, 0 },
	{ "10.0.0.0/8x", 0, NULL, 0 },
	{ "10.0.0.0/8/8", 0, NULL, 0 },
	{ "10.0.0.0/0x8", 0, NULL, 0 },
	{ "/8", 0, NULL, 0 },
	{ "", 0, NULL, 0 },
	{ "/", 0, NULL, 0 },
	{ " 10.0.0.1", 0, NULL, 0 },
	{ "10.0.0.1 ", 0, NULL, 0 },
	{ "10.0.0", 0, NULL, 0 },
	{ "10.0.0.256", 0, NULL, 0 },
	{ "010.0.0.1", 0, NULL, 0 },
	{ "10.0.0.1.", 0, NULL, 0 },
	{ "1.2.3.4.5", 0, NULL, 0 },
	{ "example.com", 0, NULL, 0 },
	{ "fe80::1%eth0", 0, NULL, 0 },
	{ "[::1]", 0, NULL, 0 },
	{ ":::1", 0, NULL, 0 },
	{ "2001:db8::g", 0, NULL, 0 },
	{ "1:2:3:4:5:6:7:8:9", 0, NULL, 0 },
	/* Longer than any address: must not overflow the copy. */
	{ "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000/8", 0, NULL,
	  0 },
	{ "1111111111111111111111111111111111111111111111111111111111111111111"
	  "1111111111111111111111111111111111111111/8",
	  0, NULL, 0 },
};

static void test_parse_cidr_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cidr_cases) / sizeof(cidr_cases[0]);
	     i++) {
		const struct cidr_case *c = &cidr_cases[i];
		uint8_t addr[16], want[16] = { 0 };
		unsigned prefix = 999;
		int family = -1;
		int r = policy_parse_cidr(c->text, &family, addr, &prefix);

		if (!c->family) {
			if (r != -EINVAL)
				fail_msg("\"%s\": want -EINVAL, got %d "
					 "(family %d prefix %u)",
					 c->text, r, family, prefix);
			continue;
		}
		if (r != 0)
			fail_msg("\"%s\": refused (%d)", c->text, r);
		assert_int_equal(family, c->family);
		assert_int_equal(prefix, c->prefix);
		assert_int_equal(inet_pton(c->family, c->addr, want), 1);
		/* IPv4 in the first 4 bytes, the rest zero. */
		assert_memory_equal(addr, want, 16);
	}
}

/*
 * Was a bug: an IPv4-mapped address is folded to IPv4 before its prefix is read,
 * so the prefix is then checked against 32: "::ffff:10.1.2.3" is accepted
 * but the same address written "::ffff:10.1.2.3/128" is refused, and the
 * mapped form of 10.0.0.0/8, "::ffff:10.0.0.0/104", is refused as "not an
 * IP address or CIDR prefix". The prefix should be taken in the IPv6
 * space and reduced by 96 when folding (a mapped prefix shorter than /96
 * does not fit in IPv4 and is rightly refused).
 */
static void test_parse_cidr_v4mapped_prefix(void **state)
{
	static const struct cidr_case cases[] = {
		{ "::ffff:10.1.2.3/128", AF_INET, "10.1.2.3", 32 },
		{ "::ffff:10.0.0.0/104", AF_INET, "10.0.0.0", 8 },
		{ "::ffff:0.0.0.0/96", AF_INET, "0.0.0.0", 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t addr[16], want[16] = { 0 };
		unsigned prefix = 999;
		int family = -1;
		int r = policy_parse_cidr(cases[i].text, &family, addr,
					  &prefix);

		if (r != 0)
			fail_msg("\"%s\": want %s/%u, got %d", cases[i].text,
				 cases[i].addr, cases[i].prefix, r);
		assert_int_equal(family, AF_INET);
		assert_int_equal(prefix, cases[i].prefix);
		assert_int_equal(inet_pton(AF_INET, cases[i].addr, want), 1);
		assert_memory_equal(addr, want, 16);
	}
}

/* ---- policy_decide -------------------------------------------------- */

struct input {
	const char *workload;
	const char *labels; /* JSON object text, or NULL */
	const char *ip;
	uint16_t port;
};

static void decide(const struct policy *p, const struct input *in,
		   struct policy_decision *d)
{
	struct policy_input pi;
	uint8_t addr[16] = { 0 };
	json_t *labels = NULL;

	memset(&pi, 0, sizeof(pi));
	if (inet_pton(AF_INET, in->ip, addr) == 1)
		pi.family = AF_INET;
	else if (inet_pton(AF_INET6, in->ip, addr) == 1)
		pi.family = AF_INET6;
	else
		fail_msg("bad test address %s", in->ip);
	if (in->labels) {
		labels = json_loads(in->labels, 0, NULL);
		assert_non_null(labels);
	}
	pi.workload = in->workload;
	pi.labels = labels;
	pi.uid = 1000;
	pi.addr = addr;
	pi.port = in->port;
	memset(d, 0x5a, sizeof(*d));
	policy_decide(p, &pi, d);
	json_decref(labels);
}

static const char specificity_policy[] =
	"{\"default\": \"deny\", \"targets\": ["
	" {\"name\": \"net8\", \"address\": \"10.0.0.0/8\"},"
	" {\"name\": \"net24\", \"address\": \"10.1.2.0/24\"},"
	" {\"name\": \"host\", \"address\": \"10.1.2.3\"},"
	" {\"name\": \"host-again\", \"address\": \"10.1.2.3/32\"},"
	" {\"name\": \"host80\", \"address\": \"10.1.2.3\", \"port\": 80},"
	" {\"name\": \"host80-again\", \"address\": \"10.1.2.3\", \"port\": 80},"
	" {\"name\": \"net16-443\", \"address\": \"10.1.0.0/16\", \"port\": 443},"
	" {\"name\": \"net25\", \"address\": \"10.1.2.128/25\"},"
	" {\"name\": \"net23\", \"address\": \"10.3.0.0/23\"},"
	" {\"name\": \"all4\", \"address\": \"0.0.0.0/0\"},"
	" {\"name\": \"mapped\", \"address\": \"::ffff:192.0.2.7\"},"
	" {\"name\": \"v6net\", \"address\": \"2001:db8::/32\"},"
	" {\"name\": \"v6net33\", \"address\": \"2001:db8:8000::/33\"},"
	" {\"name\": \"v6host443\", \"address\": \"2001:db8::1\", \"port\": 443},"
	" {\"name\": \"loop6\", \"address\": \"::1\"}"
	"]}";

static void test_decide_target_specificity(void **state)
{
	static const struct {
		struct input in;
		const char *target; /* NULL: none */
	} cases[] = {
		/* Longest prefix wins; file order breaks ties. */
		{ { "w", NULL, "10.1.2.3", 22 }, "host" },
		{ { "w", NULL, "10.1.2.4", 22 }, "net24" },
		{ { "w", NULL, "10.9.9.9", 22 }, "net8" },
		{ { "w", NULL, "10.1.2.200", 1 }, "net25" },
		{ { "w", NULL, "10.1.2.127", 1 }, "net24" },
		{ { "w", NULL, "10.3.1.255", 1 }, "net23" },
		{ { "w", NULL, "10.3.2.0", 1 }, "net8" },
		{ { "w", NULL, "11.0.0.1", 1 }, "all4" },
		/* An explicit port beats any port at the same prefix... */
		{ { "w", NULL, "10.1.2.3", 80 }, "host80" },
		{ { "w", NULL, "10.1.2.3", 81 }, "host" },
		/* ...but not a longer prefix. */
		{ { "w", NULL, "10.1.2.4", 443 }, "net24" },
		{ { "w", NULL, "10.1.3.4", 443 }, "net16-443" },
		{ { "w", NULL, "10.1.3.4", 444 }, "net8" },
		/* A mapped target address is the IPv4 one. */
		{ { "w", NULL, "192.0.2.7", 9 }, "mapped" },
		/* IPv6. */
		{ { "w", NULL, "2001:db8::1", 443 }, "v6host443" },
		{ { "w", NULL, "2001:db8::1", 80 }, "v6net" },
		{ { "w", NULL, "2001:db8:7fff::1", 80 }, "v6net" },
		{ { "w", NULL, "2001:db8:8000::1", 80 }, "v6net33" },
		{ { "w", NULL, "2001:db8:ffff:ffff::1", 443 }, "v6net33" },
		{ { "w", NULL, "::1", 5 }, "loop6" },
		/* 0.0.0.0/0 is IPv4 only, and no IPv6 target covers these. */
		{ { "w", NULL, "2001:db9::1", 443 }, NULL },
		{ { "w", NULL, "::", 443 }, NULL },
		{ { "w", NULL, "::ffff:0:0", 443 }, NULL },
	};
	struct policy *p = compile_ok(specificity_policy);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_decision d;

		decide(p, &cases[i].in, &d);
		/* No rules: the default, whatever the target. */
		assert_int_equal(d.action, POLICY_DENY);
		assert_string_equal(d.rule, "default");
		assert_null(d.message);
		assert_int_equal(d.proto, PROTO_TCP);
		if (!cases[i].target) {
			if (d.target)
				fail_msg("%s:%u: want no target, got %s",
					 cases[i].in.ip, cases[i].in.port,
					 d.target);
			continue;
		}
		if (!d.target || strcmp(d.target, cases[i].target) != 0)
			fail_msg("%s:%u: want target %s, got %s",
				 cases[i].in.ip, cases[i].in.port,
				 cases[i].target, d.target ? d.target : "none");
	}
	policy_free(p);
}

static const char rules_policy[] =
	"{\"default\": \"deny\","
	" \"targets\": ["
	"  {\"name\": \"echo\", \"address\": \"10.77.0.1\", \"port\": 7},"
	"  {\"name\": \"web\", \"address\": \"10.77.0.2\", \"port\": 80},"
	"  {\"name\": \"db\", \"address\": \"10.77.0.3/32\", \"port\": 5432},"
	"  {\"name\": \"any6\", \"address\": \"::/0\"}],"
	" \"rules\": ["
	"  {\"name\": \"agents use echo\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\"}},"
	"    \"target\": \"echo\"}, \"action\": \"allow\"},"
	"  {\"name\": \"no db for agents\","
	"   \"when\": {\"workload\": {\"name\": \"agent-*\"},"
	"    \"target\": \"db\"}, \"action\": \"deny\","
	"   \"message\": \"ask a human\"},"
	"  {\"name\": \"ops db\","
	"   \"when\": {\"workload\": {\"name\": [\"ops\", \"admin-?\"]},"
	"    \"target\": [\"db\"]}, \"action\": \"allow\"},"
	"  {\"name\": \"team x web\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\","
	"    \"team\": \"x\"}}, \"target\": [\"web\", \"echo\"]},"
	"   \"action\": \"allow\"},"
	"  {\"name\": \"not b\","
	"   \"when\": {\"workload\": {\"name\": \"agent-b\"},"
	"    \"target\": \"web\"}, \"action\": \"deny\"},"
	"  {\"name\": \"v6 ok\", \"when\": {\"target\": \"any6\"},"
	"   \"action\": \"allow\"},"
	"  {\"name\": \"ops anywhere\","
	"   \"when\": {\"workload\": {\"name\": \"ops\"}},"
	"   \"action\": \"allow\"},"
	"  {\"name\": \"[x] deny\","
	"   \"when\": {\"workload\": {\"name\": \"[xy]-*\"}},"
	"   \"action\": \"deny\", \"message\": \"xy\"},"
	"  {\"name\": \"[x] allow\","
	"   \"when\": {\"workload\": {\"name\": \"x-*\"}},"
	"   \"action\": \"allow\"}"
	" ]}";

static void test_decide_rules(void **state)
{
	static const struct {
		struct input in;
		enum policy_action action;
		const char *rule, *target, *message;
	} cases[] = {
		/* Labels select; the most specific matching allow is
		 * reported (two labels and a target over one label). */
		{ { "agent-a", "{\"app\": \"agent\"}", "10.77.0.1", 7 },
		  POLICY_ALLOW, "agents use echo", "echo", NULL },
		{ { "agent-a", "{\"app\": \"agent\", \"team\": \"x\"}",
		    "10.77.0.1", 7 },
		  POLICY_ALLOW, "team x web", "echo", NULL },
		{ { "agent-a", "{\"app\": \"agent\", \"team\": \"x\"}",
		    "10.77.0.2", 80 },
		  POLICY_ALLOW, "team x web", "web", NULL },
		/* Every required label must be there, with that value. */
		{ { "agent-a", "{\"app\": \"agent\", \"team\": \"y\"}",
		    "10.77.0.2", 80 },
		  POLICY_DENY, "default", "web", NULL },
		{ { "agent-a", "{\"app\": \"agent2\"}", "10.77.0.1", 7 },
		  POLICY_DENY, "default", "echo", NULL },
		{ { "agent-a", "{\"App\": \"agent\"}", "10.77.0.1", 7 },
		  POLICY_DENY, "default", "echo", NULL },
		{ { "agent-a", NULL, "10.77.0.1", 7 },
		  POLICY_DENY, "default", "echo", NULL },
		{ { "agent-a", "{}", "10.77.0.1", 7 },
		  POLICY_DENY, "default", "echo", NULL },
		/* A deny beats an allow that comes before it. */
		{ { "agent-b", "{\"app\": \"agent\", \"team\": \"x\"}",
		    "10.77.0.2", 80 },
		  POLICY_DENY, "not b", "web", NULL },
		{ { "agent-b", "{\"app\": \"agent\", \"team\": \"x\"}",
		    "10.77.0.1", 7 },
		  POLICY_ALLOW, "team x web", "echo", NULL },
		/* Globs on workload names; deny carries its message. */
		{ { "agent-a", "{\"app\": \"agent\"}", "10.77.0.3", 5432 },
		  POLICY_DENY, "no db for agents", "db", "ask a human" },
		{ { "agent-", NULL, "10.77.0.3", 5432 },
		  POLICY_DENY, "no db for agents", "db", "ask a human" },
		{ { "Agent-a", NULL, "10.77.0.3", 5432 },
		  POLICY_DENY, "default", "db", NULL },
		{ { "ops", NULL, "10.77.0.3", 5432 },
		  POLICY_ALLOW, "ops db", "db", NULL },
		{ { "admin-1", NULL, "10.77.0.3", 5432 },
		  POLICY_ALLOW, "ops db", "db", NULL },
		{ { "admin-12", NULL, "10.77.0.3", 5432 },
		  POLICY_DENY, "default", "db", NULL },
		{ { "admin-", NULL, "10.77.0.3", 5432 },
		  POLICY_DENY, "default", "db", NULL },
		/* A rule without target applies to every matched target... */
		{ { "ops", NULL, "10.77.0.2", 80 },
		  POLICY_ALLOW, "ops anywhere", "web", NULL },
		/* ...but not to a destination no target covers. */
		{ { "ops", NULL, "8.8.8.8", 53 }, POLICY_DENY, "default", NULL,
		  NULL },
		{ { "agent-a", "{\"app\": \"agent\"}", "10.77.0.1", 8 },
		  POLICY_DENY, "default", NULL, NULL },
		/* IPv6. */
		{ { "anyone", NULL, "2001:db8::5", 443 },
		  POLICY_ALLOW, "v6 ok", "any6", NULL },
		/* Character classes; deny over a later allow. */
		{ { "x-1", NULL, "2001:db8::5", 443 },
		  POLICY_DENY, "[x] deny", "any6", "xy" },
		{ { "y-1", NULL, "10.77.0.1", 7 },
		  POLICY_DENY, "[x] deny", "echo", "xy" },
		{ { "z-1", NULL, "10.77.0.1", 7 },
		  POLICY_DENY, "default", "echo", NULL },
	};
	struct policy *p = compile_ok(rules_policy);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_decision d;
		const char *want_target = cases[i].target;

		decide(p, &cases[i].in, &d);
		if (d.action != cases[i].action ||
		    strcmp(d.rule, cases[i].rule) != 0 ||
		    (want_target == NULL) != (d.target == NULL) ||
		    (want_target && strcmp(d.target, want_target) != 0) ||
		    (cases[i].message == NULL) != (d.message == NULL) ||
		    (d.message && strcmp(d.message, cases[i].message) != 0))
			fail_msg("case %zu %s %s %s:%u: want %s/%s/%s/%s, got "
				 "%s/%s/%s/%s",
				 i, cases[i].in.workload,
				 cases[i].in.labels ? cases[i].in.labels : "-",
				 cases[i].in.ip, cases[i].in.port,
				 policy_action_name(cases[i].action),
				 cases[i].rule,
				 want_target ? want_target : "-",
				 cases[i].message ? cases[i].message : "-",
				 policy_action_name(d.action), d.rule,
				 d.target ? d.target : "-",
				 d.message ? d.message : "-");
	}
	policy_free(p);
}

/*
 * A destination that is not a target gets the default, even for a
 * workload with a rule that names no target: the port must match too.
 */
static void test_decide_no_target_is_default(void **state)
{
	struct policy *p = compile_ok(rules_policy);
	struct input in = { "ops", NULL, "10.77.0.3", 5433 };
	struct policy_decision d;

	(void)state;
	decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "default");
	assert_null(d.target);
	assert_null(d.message);
	policy_free(p);
}

static void test_decide_default_allow(void **state)
{
	struct policy *p = compile_ok(
		"{\"default\": \"allow\", \"targets\": ["
		" {\"name\": \"t\", \"address\": \"10.0.0.1\"}],"
		" \"rules\": [{\"name\": \"bad out\","
		" \"when\": {\"workload\": {\"name\": \"bad\"},"
		"  \"target\": \"t\"}, \"action\": \"deny\"}]}");
	struct input good = { "good", NULL, "10.0.0.1", 1 };
	struct input bad = { "bad", NULL, "10.0.0.1", 1 };
	struct input elsewhere = { "bad", NULL, "10.0.0.2", 1 };
	struct policy_decision d;

	(void)state;
	decide(p, &good, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "default");
	assert_string_equal(d.target, "t");
	decide(p, &bad, &d);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "bad out");
	assert_null(d.message);
	decide(p, &elsewhere, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "default");
	assert_null(d.target);
	policy_free(p);
}

static void test_decide_default_is_deny(void **state)
{
	struct policy *p = compile_ok(
		"{\"targets\": [{\"name\": \"t\", \"address\": \"10.0.0.1\"}]}");
	struct input in = { "w", NULL, "10.0.0.1", 1 };
	struct input out = { "w", NULL, "10.0.0.9", 1 };
	struct policy_decision d;

	(void)state;
	decide(p, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "default");
	assert_string_equal(d.target, "t");
	decide(p, &out, &d);
	assert_int_equal(d.action, POLICY_DENY);
	assert_null(d.target);
	policy_free(p);
}

/* The rule for the first of two equal targets is the one that applies. */
static void test_decide_tie_file_order(void **state)
{
	struct policy *p = compile_ok(
		"{\"targets\": ["
		" {\"name\": \"first\", \"address\": \"10.0.0.0/24\"},"
		" {\"name\": \"second\", \"address\": \"10.0.0.0/24\"}],"
		" \"rules\": ["
		" {\"name\": \"deny second\","
		"  \"when\": {\"target\": \"second\"},"
		"  \"action\": \"deny\"},"
		" {\"name\": \"allow first\","
		"  \"when\": {\"target\": \"first\"},"
		"  \"action\": \"allow\"}]}");
	struct input in = { "w", NULL, "10.0.0.7", 1 };
	struct policy_decision d;

	(void)state;
	decide(p, &in, &d);
	assert_string_equal(d.target, "first");
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "allow first");
	policy_free(p);
}

/* ---- postgres targets and statements -------------------------------- */

/*
 * Targets "db" and "db2" (postgres) and "web" (tcp). The rules are those
 * of a shop: agents read two tables and append to an audit table; analysts
 * may EXPLAIN ANALYZE; deny rules with an sql part cut out deletes, dblink
 * and the payroll table for everyone.
 */
static const char pg_policy[] =
	"{\"default\": \"deny\","
	" \"targets\": ["
	"  {\"name\": \"db\", \"address\": \"10.0.0.1\", \"port\": 5432,"
	"   \"protocol\": \"postgres\", \"tls\": \"verify-full\","
	"   \"ca_file\": \"/etc/bridle/ca.pem\", \"server_name\": \"db.internal\","
	"   \"credentials\": {\"user\": \"agent_ro\","
	"    \"password_file\": \"/run/secrets/pg\", \"database\": \"shop\"}},"
	"  {\"name\": \"web\", \"address\": \"10.0.0.2\", \"port\": 80},"
	"  {\"name\": \"db2\", \"address\": \"10.0.0.3\", \"port\": 5432,"
	"   \"protocol\": \"postgres\", \"tls\": \"require\","
	"   \"credentials\": {\"user\": \"other\", \"password_env\": \"PGPW\"}}],"
	" \"rules\": ["
	"  {\"name\": \"agents read shop\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\"}},"
	"    \"target\": \"db\"}, \"action\": \"allow\","
	"   \"sql\": {\"commands\": [\"select\", \"copy\", \"explain\"],"
	"    \"tables\": [\"public.orders\", \"public.customers\"]}},"
	"  {\"name\": \"agents audit\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\"}},"
	"    \"target\": \"db\"}, \"action\": \"allow\","
	"   \"sql\": {\"commands\": [\"insert\"], \"tables\": [\"public.audit\"]}},"
	"  {\"name\": \"agents safe functions\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\"}},"
	"    \"target\": \"db\"}, \"action\": \"allow\","
	"   \"sql\": {\"commands\": [\"select\"], \"tables\": [\"public.orders\"],"
	"    \"functions\": [\"public.safe_*\"]}},"
	"  {\"name\": \"analysts explain\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"analyst\"}},"
	"    \"target\": \"db\"}, \"action\": \"allow\","
	"   \"sql\": {\"commands\": [\"select\", \"explain\"],"
	"    \"tables\": [\"public.*\"], \"permit\": [\"explain_analyze\"]}},"
	"  {\"name\": \"hr reader\","
	"   \"when\": {\"workload\": {\"name\": \"hr-bot\"},"
	"    \"target\": \"db\"}, \"action\": \"allow\","
	"   \"sql\": {\"commands\": [\"select\"], \"tables\": [\"hr.*\", \"public.*\"]}},"
	"  {\"name\": \"dba catalog\","
	"   \"when\": {\"workload\": {\"name\": \"dba\"},"
	"    \"target\": [\"db\"]}, \"action\": \"allow\","
	"   \"sql\": {\"commands\": [\"select\"],"
	"    \"tables\": [\"pg_catalog.*\", \"public.*\"]}},"
	"  {\"name\": \"ops anything\","
	"   \"when\": {\"workload\": {\"name\": \"ops-*\"},"
	"    \"target\": \"db\"}, \"action\": \"allow\","
	"   \"sql\": {\"functions\": [\"*\"], \"permit\": [\"privilege_change\","
	"    \"server_file\", \"opaque\", \"select_into\", \"explain_analyze\"]}},"
	"  {\"name\": \"locked out\","
	"   \"when\": {\"workload\": {\"name\": \"locked\"},"
	"    \"target\": \"db\"}, \"action\": \"deny\","
	"   \"message\": \"account locked\"},"
	"  {\"name\": \"no dblink\", \"when\": {\"target\": \"db\"},"
	"   \"action\": \"deny\","
	"   \"sql\": {\"functions\": [\"dblink*\"]}},"
	"  {\"name\": \"no payroll\", \"when\": {\"target\": \"db\"},"
	"   \"action\": \"deny\","
	"   \"message\": \"payroll is off limits\","
	"   \"sql\": {\"tables\": [\"hr.payroll\"]}},"
	"  {\"name\": \"no deletes\", \"when\": {\"target\": \"db\"},"
	"   \"action\": \"deny\","
	"   \"message\": \"deletes go through a ticket\","
	"   \"sql\": {\"commands\": [\"delete\"]}},"
	"  {\"name\": \"web for agents\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\"}},"
	"    \"target\": \"web\"}, \"action\": \"allow\"}"
	" ]}";

#define PG_DB 0 /* index of target "db" in pg_policy */
#define PG_DB2 2

#define AGENT "agent-1", "{\"app\": \"agent\"}"
#define ANALYST "analyst-1", "{\"app\": \"analyst\"}"
#define PUBLIC { "public" }
#define HR_PUBLIC { "hr", "public" }
#define SESSION POLICY_RULE_SESSION
#define DELETES "deletes go through a ticket"

struct stmt_case {
	const char *workload;
	const char *labels; /* JSON object text, or NULL */
	const char *sql; /* exactly one statement */
	const char *schemas[3]; /* search path; none: the policy's fallback */
	enum policy_action action;
	const char *rule;
	const char *message; /* NULL: none expected */
};

/* Classify @sql (one statement) and decide it for @workload on @target. */
static void decide_sql(const struct policy *p, const char *workload,
		       const char *labels_text, size_t target, const char *sql,
		       const char *const *schemas, size_t nschemas,
		       struct policy_decision *d)
{
	struct policy_input in;
	struct policy_stmt ps;
	struct sql_result r;
	json_t *labels = NULL;

	if (sql_classify(sql, NULL, &r) != 0)
		fail_msg("\"%s\" does not classify: %s", sql, r.error);
	if (r.nstmts != 1)
		fail_msg("\"%s\": %zu statements, want 1", sql, r.nstmts);
	if (labels_text) {
		labels = json_loads(labels_text, 0, NULL);
		assert_non_null(labels);
	}
	memset(&in, 0, sizeof(in));
	in.workload = workload;
	in.labels = labels;
	in.uid = 1000;
	in.family = AF_INET;
	ps.st = &r.stmts[0];
	ps.schemas = schemas;
	ps.nschemas = nschemas;
	memset(d, 0x5a, sizeof(*d));
	policy_decide_stmt(p, &in, target, &ps, d);
	json_decref(labels);
	sql_result_free(&r);
}

static void check_stmt_cases(const struct policy *p, size_t target,
			     const struct stmt_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct stmt_case *c = &cases[i];
		struct policy_decision d;
		size_t ns = 0;

		while (ns < 3 && c->schemas[ns])
			ns++;
		decide_sql(p, c->workload, c->labels, target, c->sql,
			   c->schemas, ns, &d);
		if (d.action != c->action || strcmp(d.rule, c->rule) != 0 ||
		    (c->message == NULL) != (d.message == NULL) ||
		    (d.message && strcmp(d.message, c->message) != 0))
			fail_msg("case %zu %s \"%s\": want %s/%s/%s, got "
				 "%s/%s/%s",
				 i, c->workload, c->sql,
				 policy_action_name(c->action), c->rule,
				 c->message ? c->message : "-",
				 policy_action_name(d.action), d.rule,
				 d.message ? d.message : "-");
		assert_int_equal(d.target_idx, target);
		assert_non_null(d.target);
		assert_string_equal(d.target,
				    policy_target_at(p, target)->name);
		assert_int_equal(d.proto, PROTO_POSTGRES);
	}
}

static const struct stmt_case stmt_cases[] = {
	/* Tables: qualified, or resolved through the search path. */
	{ AGENT, "SELECT * FROM public.orders", PUBLIC, POLICY_ALLOW,
	  "agents read shop", NULL },
	{ AGENT, "SELECT * FROM orders", PUBLIC, POLICY_ALLOW,
	  "agents read shop", NULL },
	/* FOR UPDATE locks rows: it needs what an update needs. */
	{ AGENT, "SELECT * FROM orders FOR UPDATE", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ AGENT, "SELECT * FROM orders", {}, POLICY_ALLOW, "agents read shop",
	  NULL }, /* no search path given: public */
	{ AGENT, "SELECT o.id FROM orders o JOIN public.customers c "
		 "ON c.id = o.customer_id",
	  PUBLIC, POLICY_ALLOW, "agents read shop", NULL },
	{ AGENT, "SELECT 1", PUBLIC, POLICY_ALLOW, "agents read shop", NULL },
	/* One table no rule covers denies the whole statement. */
	{ AGENT, "SELECT * FROM orders JOIN secrets USING (id)", PUBLIC,
	  POLICY_DENY, "default", NULL },
	{ AGENT, "SELECT * FROM orders WHERE id IN (SELECT id FROM secrets)",
	  PUBLIC, POLICY_DENY, "default", NULL },
	{ AGENT, "SELECT * FROM hr.orders", PUBLIC, POLICY_DENY, "default",
	  NULL },
	{ AGENT, "SELECT * FROM \"Orders\"", PUBLIC, POLICY_DENY, "default",
	  NULL },
	/* CTE names are not tables, even one named like a forbidden one. */
	{ AGENT, "WITH recent AS (SELECT * FROM orders) SELECT * FROM recent",
	  PUBLIC, POLICY_ALLOW, "agents read shop", NULL },
	{ AGENT, "WITH secrets AS (SELECT * FROM public.orders) "
		 "SELECT * FROM secrets",
	  PUBLIC, POLICY_ALLOW, "agents read shop", NULL },
	{ AGENT, "WITH recent AS (SELECT * FROM secrets) SELECT * FROM recent",
	  PUBLIC, POLICY_DENY, "default", NULL },
	/* A table list allows those commands on them, nothing else. */
	{ AGENT, "DROP TABLE orders", PUBLIC, POLICY_DENY, "default", NULL },
	{ AGENT, "DROP TABLE public.orders", PUBLIC, POLICY_DENY, "default",
	  NULL },
	{ AGENT, "TRUNCATE orders", PUBLIC, POLICY_DENY, "default", NULL },
	{ AGENT, "UPDATE customers SET email = ''", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ AGENT, "GRANT SELECT ON orders TO bob", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ AGENT, "INSERT INTO audit VALUES (1, 'seen')", PUBLIC, POLICY_ALLOW,
	  "agents audit", NULL },
	{ AGENT, "INSERT INTO orders VALUES (1)", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ AGENT, "INSERT INTO audit SELECT * FROM secrets", PUBLIC,
	  POLICY_DENY, "default", NULL },
	/* A matching deny rule with an sql part wins over any allow. */
	{ AGENT, "DELETE FROM orders WHERE id = 1", PUBLIC, POLICY_DENY,
	  "no deletes", DELETES },
	{ "ops-1", NULL, "DELETE FROM orders", PUBLIC, POLICY_DENY,
	  "no deletes", DELETES },
	{ "ops-1", NULL, "UPDATE orders SET total = 0", PUBLIC, POLICY_ALLOW,
	  "ops anything", NULL },
	{ "ops-1", NULL, "SELECT dblink('host=x', 'SELECT 1')", PUBLIC,
	  POLICY_DENY, "no dblink", NULL },
	{ AGENT, "SELECT dblink_connect('host=x')", PUBLIC, POLICY_DENY,
	  "no dblink", NULL },
	/* A deny glob on the bare name catches a qualified call too. */
	{ AGENT, "SELECT public.dblink('host=x', 'SELECT 1')", PUBLIC,
	  POLICY_DENY, "no dblink", NULL },
	/* Deny tables: an unqualified name hits if any schema would. */
	{ "hr-bot", NULL, "SELECT * FROM payroll", HR_PUBLIC, POLICY_DENY,
	  "no payroll", "payroll is off limits" },
	{ "hr-bot", NULL, "SELECT * FROM hr.payroll", PUBLIC, POLICY_DENY,
	  "no payroll", "payroll is off limits" },
	{ "hr-bot", NULL, "SELECT * FROM payroll", PUBLIC, POLICY_ALLOW,
	  "hr reader", NULL },
	/* Allow tables: an unqualified name needs every schema allowed. */
	{ AGENT, "SELECT * FROM orders", HR_PUBLIC, POLICY_DENY, "default",
	  NULL },
	{ AGENT, "SELECT * FROM public.orders", HR_PUBLIC, POLICY_ALLOW,
	  "agents read shop", NULL },
	{ "hr-bot", NULL, "SELECT * FROM staff", HR_PUBLIC, POLICY_ALLOW,
	  "hr reader", NULL },
	{ "hr-bot", NULL, "SELECT * FROM staff", { "hr", "vault" },
	  POLICY_DENY, "default", NULL },
	/* pg_* names may be pg_catalog's, searched first by PostgreSQL. */
	{ "dba", NULL, "SELECT * FROM pg_catalog.pg_class", PUBLIC,
	  POLICY_ALLOW, "dba catalog", NULL },
	{ "dba", NULL, "SELECT * FROM pg_class", PUBLIC, POLICY_ALLOW,
	  "dba catalog", NULL },
	{ "hr-bot", NULL, "SELECT * FROM pg_class", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ "hr-bot", NULL, "SELECT * FROM pg_catalog.pg_class", PUBLIC,
	  POLICY_DENY, "default", NULL },
	{ "hr-bot", NULL, "SELECT * FROM pgx", PUBLIC, POLICY_ALLOW,
	  "hr reader", NULL },
	/* Session housekeeping needs no rule... */
	{ AGENT, "BEGIN", PUBLIC, POLICY_ALLOW, SESSION, NULL },
	{ AGENT, "COMMIT", PUBLIC, POLICY_ALLOW, SESSION, NULL },
	{ AGENT, "ROLLBACK", PUBLIC, POLICY_ALLOW, SESSION, NULL },
	{ AGENT, "SAVEPOINT a", PUBLIC, POLICY_ALLOW, SESSION, NULL },
	{ AGENT, "SHOW search_path", PUBLIC, POLICY_ALLOW, SESSION, NULL },
	{ AGENT, "SET statement_timeout = 0", PUBLIC, POLICY_ALLOW, SESSION,
	  NULL },
	/* search_path changes what names mean: not housekeeping. */
	{ AGENT, "SET search_path = hr, public", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ "hr-bot", NULL, "SET LOCAL lock_timeout = '1s'", PUBLIC,
	  POLICY_ALLOW, SESSION, NULL },
	/* ...but a covering allow rule is named before it... */
	{ "ops-1", NULL, "BEGIN", PUBLIC, POLICY_ALLOW, "ops anything", NULL },
	/* ...and a deny rule without an sql part denies it. */
	{ "locked", NULL, "BEGIN", PUBLIC, POLICY_DENY, "locked out",
	  "account locked" },
	{ "locked", NULL, "SELECT 1", PUBLIC, POLICY_DENY, "locked out",
	  "account locked" },
	/* Privilege changes need permit privilege_change. */
	{ AGENT, "SET ROLE admin", PUBLIC, POLICY_DENY, "default", NULL },
	{ AGENT, "SET LOCAL ROLE admin", PUBLIC, POLICY_DENY, "default", NULL },
	{ AGENT, "RESET ROLE", PUBLIC, POLICY_DENY, "default", NULL },
	{ AGENT, "SET SESSION AUTHORIZATION bob", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ AGENT, "SELECT set_config('role', 'admin', false)", PUBLIC,
	  POLICY_DENY, "default", NULL },
	{ "ops-1", NULL, "SET ROLE admin", PUBLIC, POLICY_ALLOW,
	  "ops anything", NULL },
	/* Server files: COPY is listed for agents, PROGRAM is not permitted. */
	{ AGENT, "COPY orders TO STDOUT", PUBLIC, POLICY_ALLOW,
	  "agents read shop", NULL },
	{ AGENT, "COPY orders TO PROGRAM 'cat > /tmp/x'", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ AGENT, "COPY orders TO '/tmp/orders.csv'", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ AGENT, "SELECT pg_read_file('/etc/passwd')", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ "ops-1", NULL, "COPY orders TO PROGRAM 'cat'", PUBLIC, POLICY_ALLOW,
	  "ops anything", NULL },
	{ "ops-1", NULL, "SELECT pg_read_file('/etc/passwd')", PUBLIC,
	  POLICY_ALLOW, "ops anything", NULL },
	/* Code the policy cannot see needs permit opaque. */
	{ AGENT, "DO $$BEGIN DELETE FROM orders; END$$", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ AGENT, "CALL refresh_totals()", PUBLIC, POLICY_DENY, "default",
	  NULL },
	{ AGENT, "EXECUTE p", PUBLIC, POLICY_DENY, "default", NULL },
	{ "ops-1", NULL, "DO $$BEGIN END$$", PUBLIC, POLICY_ALLOW,
	  "ops anything", NULL },
	{ "ops-1", NULL, "CALL refresh_totals()", PUBLIC, POLICY_ALLOW,
	  "ops anything", NULL },
	/* Functions: built-ins are plain; others need a functions glob,
	 * matched as written (no search path for function names). */
	{ AGENT, "SELECT lower(name), count(*), now() FROM customers "
		 "GROUP BY 1",
	  PUBLIC, POLICY_ALLOW, "agents read shop", NULL },
	{ AGENT, "SELECT pg_catalog.upper(name) FROM customers", PUBLIC,
	  POLICY_ALLOW, "agents read shop", NULL },
	{ AGENT, "SELECT public.lower(name) FROM customers", PUBLIC,
	  POLICY_DENY, "default", NULL },
	{ AGENT, "SELECT my_func(id) FROM orders", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ AGENT, "SELECT pg_sleep(10)", PUBLIC, POLICY_DENY, "default", NULL },
	{ AGENT, "SELECT public.safe_total(id) FROM public.orders", PUBLIC,
	  POLICY_ALLOW, "agents safe functions", NULL },
	/* Unqualified, it resolves through the search path: public. */
	{ AGENT, "SELECT safe_total(id) FROM orders", PUBLIC, POLICY_ALLOW,
	  "agents safe functions", NULL },
	{ AGENT, "SELECT public.safe_total(id) FROM customers", PUBLIC,
	  POLICY_DENY, "default", NULL },
	/* A rule without a functions list covers only the built-ins. */
	{ "hr-bot", NULL, "SELECT nextval('hr.ids')", PUBLIC, POLICY_DENY,
	  "default", NULL },
	/* SELECT INTO creates a table: permit select_into. */
	{ AGENT, "SELECT * INTO newt FROM orders", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ "ops-1", NULL, "SELECT * INTO newt FROM orders", PUBLIC,
	  POLICY_ALLOW, "ops anything", NULL },
	/* EXPLAIN needs command explain; ANALYZE runs the query, so it
	 * needs permit explain_analyze as well. */
	{ AGENT, "EXPLAIN SELECT * FROM orders", PUBLIC, POLICY_ALLOW,
	  "agents read shop", NULL },
	{ AGENT, "EXPLAIN ANALYZE SELECT * FROM orders", PUBLIC, POLICY_DENY,
	  "default", NULL },
	/* It runs the DELETE: the deny rule on delete applies. */
	{ AGENT, "EXPLAIN ANALYZE DELETE FROM orders", PUBLIC, POLICY_DENY,
	  "no deletes", "deletes go through a ticket" },
	{ ANALYST, "EXPLAIN ANALYZE SELECT * FROM orders", PUBLIC,
	  POLICY_ALLOW, "analysts explain", NULL },
	{ ANALYST, "EXPLAIN SELECT * FROM secrets", PUBLIC, POLICY_ALLOW,
	  "analysts explain", NULL },
	{ ANALYST, "EXPLAIN ANALYZE SELECT * FROM hr.staff", PUBLIC,
	  POLICY_DENY, "default", NULL },
	{ "hr-bot", NULL, "EXPLAIN SELECT * FROM staff", PUBLIC, POLICY_DENY,
	  "default", NULL },
	/* PREPARE is decided as the statement it wraps. */
	{ AGENT, "PREPARE p AS DELETE FROM orders", PUBLIC, POLICY_DENY,
	  "no deletes", DELETES },
	{ AGENT, "PREPARE q AS SELECT * FROM orders WHERE id = $1", PUBLIC,
	  POLICY_ALLOW, "agents read shop", NULL },
	{ AGENT, "PREPARE q AS SELECT * FROM secrets", PUBLIC, POLICY_DENY,
	  "default", NULL },
	/* Workloads no rule names get the default. */
	{ "stranger", NULL, "SELECT * FROM orders", PUBLIC, POLICY_DENY,
	  "default", NULL },
	{ "agent-1", "{\"app\": \"agents\"}", "SELECT * FROM orders", PUBLIC,
	  POLICY_DENY, "default", NULL },
	{ "agent-1", NULL, "SELECT * FROM orders", PUBLIC, POLICY_DENY,
	  "default", NULL },
	/* Housekeeping is for sessions the policy still lets in: no allow
	 * rule matches a stranger, so not even BEGIN. */
	{ "stranger", NULL, "BEGIN", PUBLIC, POLICY_DENY, "default", NULL },
	{ "stranger", NULL, "DELETE FROM orders", PUBLIC, POLICY_DENY,
	  "no deletes", DELETES },
};

static void test_decide_stmt_table(void **state)
{
	struct policy *p = compile_ok(pg_policy);

	(void)state;
	check_stmt_cases(p, PG_DB, stmt_cases,
			 sizeof(stmt_cases) / sizeof(stmt_cases[0]));
	policy_free(p);
}

/* Rules name their target: on db2 nothing of db's applies. */
static void test_decide_stmt_other_target(void **state)
{
	static const struct stmt_case cases[] = {
		{ AGENT, "SELECT * FROM orders", PUBLIC, POLICY_DENY,
		  "default", NULL },
		/* No rule lets "locked" reach db2: not even housekeeping. */
		{ "locked", NULL, "BEGIN", PUBLIC, POLICY_DENY, "default",
		  NULL },
		{ "ops-1", NULL, "DELETE FROM orders", PUBLIC, POLICY_DENY,
		  "default", NULL },
	};
	struct policy *p = compile_ok(pg_policy);

	(void)state;
	check_stmt_cases(p, PG_DB2, cases, sizeof(cases) / sizeof(cases[0]));
	policy_free(p);
}

/* A target index that is not the policy's denies, whatever the default. */
static void test_decide_stmt_bad_target(void **state)
{
	static const char *const pub[] = { "public" };
	const size_t bad[] = { SIZE_MAX, 3, 4 };
	struct policy *p = compile_ok(pg_policy);
	struct policy *q = compile_ok(
		"{\"default\": \"allow\", \"targets\": [{\"name\": \"db\","
		" \"address\": \"10.0.0.1\", \"protocol\": \"postgres\"" PG_CREDS
		"}]}");

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy_decision d;

		decide_sql(p, AGENT, bad[i], "SELECT * FROM orders", pub, 1,
			   &d);
		assert_int_equal(d.action, POLICY_DENY);
		assert_string_equal(d.rule, "default");
		assert_null(d.target);
		assert_null(d.message);
		assert_int_equal(d.proto, PROTO_TCP);
		/* Not even housekeeping. */
		decide_sql(p, AGENT, bad[i], "BEGIN", pub, 1, &d);
		assert_int_equal(d.action, POLICY_DENY);
		decide_sql(q, "w", NULL, bad[i] == 3 ? 1 : bad[i], "BEGIN",
			   pub, 1, &d);
		assert_int_equal(d.action, POLICY_DENY);
		assert_string_equal(d.rule, "default");
		assert_null(d.target);
	}
	policy_free(q);
	policy_free(p);
}

/*
 * Default allow: what no rule covers is allowed, yet a deny rule whose
 * sql part matches still denies. Risky flags only limit what an allow rule
 * covers; with nothing covering, the default admits them too.
 */
static const char pg_allow_policy[] =
	"{\"default\": \"allow\", \"targets\": [{\"name\": \"db\","
	" \"address\": \"10.0.0.1\", \"protocol\": \"postgres\"" PG_CREDS "}],"
	" \"rules\": ["
	"  {\"name\": \"readers\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\"}}},"
	"   \"action\": \"allow\", \"sql\": {\"commands\": [\"select\"],"
	"   \"tables\": [\"public.orders\"]}},"
	"  {\"name\": \"no deletes\", \"action\": \"deny\","
	"   \"message\": \"deletes go through a ticket\","
	"   \"sql\": {\"commands\": [\"delete\"]}}]}";

static void test_decide_stmt_default_allow(void **state)
{
	static const struct stmt_case cases[] = {
		{ AGENT, "SELECT * FROM orders", PUBLIC, POLICY_ALLOW,
		  "readers", NULL },
		{ AGENT, "SELECT * FROM secrets", PUBLIC, POLICY_ALLOW,
		  "default", NULL },
		{ AGENT, "DROP TABLE orders", PUBLIC, POLICY_ALLOW, "default",
		  NULL },
		{ AGENT, "DELETE FROM orders", PUBLIC, POLICY_DENY,
		  "no deletes", DELETES },
		{ "w", NULL, "PREPARE p AS DELETE FROM x", PUBLIC, POLICY_DENY,
		  "no deletes", DELETES },
		{ "w", NULL, "SET ROLE admin", PUBLIC, POLICY_ALLOW, "default",
		  NULL },
		{ "w", NULL, "BEGIN", PUBLIC, POLICY_ALLOW, SESSION, NULL },
	};
	struct policy *p = compile_ok(pg_allow_policy);

	(void)state;
	check_stmt_cases(p, 0, cases, sizeof(cases) / sizeof(cases[0]));
	policy_free(p);
}

/* Every statement of a query string is decided on its own. */
static void test_decide_stmt_multi(void **state)
{
	static const char *const pub[] = { "public" };
	static const struct {
		enum policy_action action;
		const char *rule;
	} want[] = {
		{ POLICY_ALLOW, SESSION },
		{ POLICY_ALLOW, "agents read shop" },
		{ POLICY_DENY, "no deletes" },
		{ POLICY_DENY, "default" },
		{ POLICY_ALLOW, SESSION },
	};
	struct policy *p = compile_ok(pg_policy);
	json_t *labels = json_loads("{\"app\": \"agent\"}", 0, NULL);
	struct policy_input in = { .workload = "agent-1", .labels = labels };
	struct sql_result r;

	(void)state;
	assert_int_equal(sql_classify("BEGIN; SELECT * FROM orders; "
				      "DELETE FROM orders; SET ROLE admin; "
				      "COMMIT",
				      NULL, &r),
			 0);
	assert_int_equal(r.nstmts, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < r.nstmts; i++) {
		struct policy_stmt ps = { &r.stmts[i], pub, 1 };
		struct policy_decision d;

		policy_decide_stmt(p, &in, PG_DB, &ps, &d);
		if (d.action != want[i].action ||
		    strcmp(d.rule, want[i].rule) != 0)
			fail_msg("statement %zu: want %s/%s, got %s/%s", i,
				 policy_action_name(want[i].action),
				 want[i].rule, policy_action_name(d.action),
				 d.rule);
	}
	sql_result_free(&r);
	json_decref(labels);
	policy_free(p);
}

/* The target fields a postgres session is set up from. */
static void test_pg_targets(void **state)
{
	struct policy *p = compile_ok(pg_policy);
	const struct policy_target *t;
	size_t idx = 99;

	(void)state;
	assert_string_equal(policy_proto_name(PROTO_POSTGRES), "postgres");
	t = policy_target_find(p, "db", &idx);
	assert_non_null(t);
	assert_int_equal(idx, PG_DB);
	assert_int_equal(t->proto, PROTO_POSTGRES);
	assert_int_equal(t->port, 5432);
	assert_int_equal(t->tls, POLICY_TLS_VERIFY);
	assert_string_equal(t->ca_file, "/etc/bridle/ca.pem");
	assert_string_equal(t->server_name, "db.internal");
	assert_string_equal(t->creds.user, "agent_ro");
	assert_string_equal(t->creds.password_file, "/run/secrets/pg");
	assert_null(t->creds.password_env);
	assert_string_equal(t->creds.database, "shop");

	t = policy_target_find(p, "db2", &idx);
	assert_non_null(t);
	assert_int_equal(idx, PG_DB2);
	assert_int_equal(t->tls, POLICY_TLS_REQUIRE);
	assert_null(t->ca_file);
	assert_null(t->server_name);
	assert_string_equal(t->creds.user, "other");
	assert_null(t->creds.password_file);
	assert_string_equal(t->creds.password_env, "PGPW");
	assert_null(t->creds.database);

	t = policy_target_find(p, "web", &idx);
	assert_non_null(t);
	assert_int_equal(t->proto, PROTO_TCP);
	assert_int_equal(t->tls, POLICY_TLS_DISABLE);
	assert_null(t->creds.user);
	assert_null(policy_target_find(p, "nope", &idx));
	assert_null(policy_target_at(p, 3));
	assert_ptr_equal(policy_target_at(p, 1), t);
	policy_free(p);

	/* tls "disable" is accepted on a postgres target. */
	p = compile_ok(PGT(PG_CREDS ", \"tls\": \"disable\""));
	assert_int_equal(policy_target_at(p, 0)->tls, POLICY_TLS_DISABLE);
	policy_free(p);
}

/* Connection decisions on postgres targets. */
static void test_decide_pg_connection(void **state)
{
	static const struct {
		struct input in;
		enum policy_action action;
		const char *rule, *target, *message;
	} cases[] = {
		{ { "agent-1", "{\"app\": \"agent\"}", "10.0.0.1", 5432 },
		  POLICY_ALLOW, "agents read shop", "db", NULL },
		{ { "ops-7", NULL, "10.0.0.1", 5432 },
		  POLICY_ALLOW, "ops anything", "db", NULL },
		/* Deny rules with an sql part ("no deletes", "no dblink",
		 * "no payroll") match everyone on db, yet deny no
		 * connection: the default does. */
		{ { "stranger", NULL, "10.0.0.1", 5432 },
		  POLICY_DENY, "default", "db", NULL },
		/* A deny rule without one denies the connection. */
		{ { "locked", NULL, "10.0.0.1", 5432 },
		  POLICY_DENY, "locked out", "db", "account locked" },
		{ { "agent-1", "{\"app\": \"agent\"}", "10.0.0.3", 5432 },
		  POLICY_DENY, "default", "db2", NULL },
		{ { "agent-1", "{\"app\": \"agent\"}", "10.0.0.2", 80 },
		  POLICY_ALLOW, "web for agents", "web", NULL },
		{ { "agent-1", "{\"app\": \"agent\"}", "10.0.0.1", 5433 },
		  POLICY_DENY, "default", NULL, NULL },
	};
	struct policy *p = compile_ok(pg_policy);
	struct policy *q = compile_ok(pg_allow_policy);
	struct input in = { "w", NULL, "10.0.0.1", 5432 };
	struct policy_decision d;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *want_target = cases[i].target;

		decide(p, &cases[i].in, &d);
		if (d.action != cases[i].action ||
		    strcmp(d.rule, cases[i].rule) != 0 ||
		    (want_target == NULL) != (d.target == NULL) ||
		    (want_target && strcmp(d.target, want_target) != 0) ||
		    (cases[i].message == NULL) != (d.message == NULL) ||
		    (d.message && strcmp(d.message, cases[i].message) != 0))
			fail_msg("case %zu %s: want %s/%s, got %s/%s", i,
				 cases[i].in.workload,
				 policy_action_name(cases[i].action),
				 cases[i].rule, policy_action_name(d.action),
				 d.rule);
		if (want_target)
			assert_int_equal(
				d.proto,
				policy_target_at(p, d.target_idx)->proto);
	}
	/* Default allow with only an sql deny rule: the connection is in. */
	decide(q, &in, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "default");
	assert_int_equal(d.proto, PROTO_POSTGRES);
	assert_int_equal(d.target_idx, 0);
	policy_free(q);
	policy_free(p);
}

/* ---- policy_mask_plan ----------------------------------------------- */

static const char mask_policy[] =
	"{\"targets\": ["
	"  {\"name\": \"db\", \"address\": \"10.0.0.1\", \"protocol\": \"postgres\""
	PG_CREDS "},"
	"  {\"name\": \"db2\", \"address\": \"10.0.0.2\", \"protocol\": \"postgres\""
	PG_CREDS "}],"
	" \"rules\": ["
	"  {\"name\": \"m1\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\"}},"
	"    \"target\": \"db\"}, \"action\": \"allow\","
	"   \"sql\": {\"commands\": [\"select\"]},"
	"   \"mask\": {\"columns\": [\"email\", \"customers.phone\"],"
	"    \"detectors\": [\"email\", \"phone\"], \"style\": \"partial\"}},"
	"  {\"name\": \"m2\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\"}}},"
	"   \"action\": \"allow\","
	"   \"mask\": {\"columns\": [\"public.customers.ssn\"],"
	"    \"detectors\": [\"email\", \"iban\", \"ipv4\"], \"style\": \"hash\"}},"
	"  {\"name\": \"m3\", \"when\": {\"workload\": {\"name\": \"agent-*\"},"
	"   \"target\": \"db\"}, \"action\": \"allow\","
	"   \"mask\": {\"detectors\": [\"iban\", \"phone\", \"ipv4\"]}},"
	"  {\"name\": \"m4\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\"}},"
	"    \"target\": \"db\"}, \"action\": \"allow\","
	"   \"mask\": {\"detectors\": [\"ipv4\", \"jwt\"], \"style\": \"partial\"}},"
	"  {\"name\": \"other app\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"other\"}},"
	"    \"target\": \"db\"}, \"action\": \"allow\","
	"   \"mask\": {\"columns\": [\"secret\"], \"detectors\": [\"aws_access_key\"],"
	"    \"style\": \"hash\"}},"
	"  {\"name\": \"other target\","
	"   \"when\": {\"workload\": {\"labels\": {\"app\": \"agent\"}},"
	"    \"target\": \"db2\"}, \"action\": \"allow\","
	"   \"mask\": {\"columns\": [\"notes\"]}},"
	"  {\"name\": \"deny unmasked\","
	"   \"when\": {\"workload\": {\"name\": \"nobody\"}},"
	"   \"action\": \"deny\"}]}";

static void mask_plan_for(const struct policy *p, const char *workload,
			  const char *labels_text, size_t target,
			  struct policy_mask_plan *m)
{
	json_t *labels = labels_text ? json_loads(labels_text, 0, NULL) : NULL;
	struct policy_input in = { .workload = workload, .labels = labels };

	memset(m, 0x5a, sizeof(*m));
	assert_int_equal(policy_mask_plan(p, &in, target, m), 0);
	json_decref(labels);
}

static void test_mask_plan(void **state)
{
	static const struct {
		const char *pattern;
		int dots;
		enum mask_style style;
	} want[] = {
		{ "email", 0, MASK_PARTIAL },
		{ "customers.phone", 1, MASK_PARTIAL },
		{ "public.customers.ssn", 2, MASK_HASH },
	};
	struct policy *p = compile_ok(mask_policy);
	struct policy_mask_plan m;

	(void)state;
	/* agent-1 with app=agent: m1, m2, m3 and m4 on db. */
	mask_plan_for(p, AGENT, 0, &m);
	assert_int_equal(m.ncolumns, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < m.ncolumns; i++) {
		assert_string_equal(m.columns[i].pattern, want[i].pattern);
		assert_int_equal(m.columns[i].dots, want[i].dots);
		assert_int_equal(m.columns[i].style, want[i].style);
	}
	assert_int_equal(m.detectors,
			 (1u << MASK_EMAIL) | (1u << MASK_PHONE) |
				 (1u << MASK_IBAN) | (1u << MASK_IPV4) |
				 (1u << MASK_JWT));
	/* The strongest style wins, in whatever order the rules come:
	 * redact > hash > partial. */
	assert_int_equal(m.detector_style[MASK_EMAIL], MASK_HASH);
	assert_int_equal(m.detector_style[MASK_PHONE], MASK_REDACT);
	assert_int_equal(m.detector_style[MASK_IBAN], MASK_REDACT);
	assert_int_equal(m.detector_style[MASK_IPV4], MASK_REDACT);
	assert_int_equal(m.detector_style[MASK_JWT], MASK_PARTIAL);
	policy_mask_plan_release(&m);
	assert_null(m.columns);
	assert_int_equal(m.ncolumns, 0);
	assert_int_equal(m.detectors, 0);

	/* Without the label only m3 (by name) applies. */
	mask_plan_for(p, "agent-1", NULL, 0, &m);
	assert_int_equal(m.ncolumns, 0);
	assert_null(m.columns);
	assert_int_equal(m.detectors, (1u << MASK_IBAN) | (1u << MASK_PHONE) |
					      (1u << MASK_IPV4));
	assert_int_equal(m.detector_style[MASK_IBAN], MASK_REDACT);
	policy_mask_plan_release(&m);

	/* On db2: m2 (any target) and "other target". */
	mask_plan_for(p, AGENT, 1, &m);
	assert_int_equal(m.ncolumns, 2);
	assert_string_equal(m.columns[0].pattern, "public.customers.ssn");
	assert_string_equal(m.columns[1].pattern, "notes");
	assert_int_equal(m.columns[1].style, MASK_REDACT);
	assert_int_equal(m.columns[1].dots, 0);
	assert_int_equal(m.detectors, (1u << MASK_EMAIL) | (1u << MASK_IBAN) |
					      (1u << MASK_IPV4));
	assert_int_equal(m.detector_style[MASK_EMAIL], MASK_HASH);
	policy_mask_plan_release(&m);

	mask_plan_for(p, "x", "{\"app\": \"other\"}", 0, &m);
	assert_int_equal(m.ncolumns, 1);
	assert_string_equal(m.columns[0].pattern, "secret");
	assert_int_equal(m.columns[0].style, MASK_HASH);
	assert_int_equal(m.detectors, 1u << MASK_AWS_KEY);
	assert_int_equal(m.detector_style[MASK_AWS_KEY], MASK_HASH);
	policy_mask_plan_release(&m);

	/* Rules that do not match the workload contribute nothing. */
	mask_plan_for(p, "nobody", NULL, 0, &m);
	assert_int_equal(m.ncolumns, 0);
	assert_null(m.columns);
	assert_int_equal(m.detectors, 0);
	policy_mask_plan_release(&m);
	policy_free(p);
}

/* ---- reference counting --------------------------------------------- */

/*
 * A session keeps its reference while a reload drops the old policy's:
 * the policy, and the strings its decisions and mask plans point into,
 * live until the last reference goes (ASan would see a use after free).
 */
static void test_refcount(void **state)
{
	static const char *const pub[] = { "public" };
	struct policy *p = compile_ok(pg_policy);
	struct policy *session = policy_ref(p);
	struct policy *twice = policy_ref(p);
	struct policy_mask_plan m;
	struct policy_decision d;
	struct policy *mp;

	(void)state;
	assert_ptr_equal(session, p);
	assert_ptr_equal(twice, p);
	policy_free(p); /* the reload's drop */
	policy_free(twice);
	decide_sql(session, AGENT, PG_DB, "SELECT * FROM orders", pub, 1, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "agents read shop");
	assert_string_equal(d.target, "db");
	assert_int_equal(policy_rule_count(session), 12);
	policy_free(session);

	mp = compile_ok(mask_policy);
	mask_plan_for(mp, AGENT, 0, &m);
	session = policy_ref(mp);
	policy_free(mp);
	assert_string_equal(m.columns[0].pattern, "email");
	policy_mask_plan_release(&m);
	policy_free(session);
	policy_free(NULL);
}

/* ---- regressions: holes found by these tests, now closed ----------  */

/*
 * Was a bug: a write hidden inside a statement whose top-level command is
 * allowed. The classifier reports a data-modifying CTE as a SELECT (with
 * SQL_F_WRITE and orders marked written), and EXPLAIN ANALYZE DELETE as an
 * EXPLAIN (with SQL_F_WRITE | SQL_F_EXPLAIN_ANALYZE). sql_allow_covers()
 * checks only the top-level command and ignores SQL_F_WRITE and the
 * tables' write bit, so a rule allowing only "select" (or "select",
 * "explain" with permit explain_analyze) lets the agent delete rows; and
 * sql_deny_matches() misses both against a deny rule on "delete".
 */
static void test_bug_hidden_write_allowed(void **state)
{
	static const struct stmt_case cases[] = {
		{ AGENT, "WITH d AS (DELETE FROM orders RETURNING *) "
			 "SELECT * FROM d",
		  PUBLIC, POLICY_DENY, NULL, NULL },
		{ AGENT, "WITH u AS (UPDATE customers SET email = '' "
			 "RETURNING id) SELECT * FROM u",
		  PUBLIC, POLICY_DENY, NULL, NULL },
		{ ANALYST, "EXPLAIN ANALYZE DELETE FROM orders", PUBLIC,
		  POLICY_DENY, NULL, NULL },
		{ ANALYST, "EXPLAIN ANALYZE UPDATE orders SET total = 0",
		  PUBLIC, POLICY_DENY, NULL, NULL },
	};
	struct policy *p = compile_ok(pg_policy);
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_decision d;
		const char *pub[] = { "public" };

		decide_sql(p, cases[i].workload, cases[i].labels, PG_DB,
			   cases[i].sql, pub, 1, &d);
		if (d.action != POLICY_DENY) {
			print_message("BUG: %s \"%s\" allowed by rule \"%s\"\n",
				      cases[i].workload, cases[i].sql, d.rule);
			bad++;
		}
	}
	policy_free(p);
	assert_int_equal(bad, 0);
}

/*
 * Was a bug: a deny rule on a table is evaded by a three-part name. PostgreSQL
 * accepts "database.schema.table" for the current database; the
 * classifier keeps the database part ("shop.hr.payroll", qualified) and
 * table_matches() compares it as written, so "no payroll" (tables
 * ["hr.payroll"]) does not match, and an allow rule without a table list
 * ("ops anything") lets it through.
 */
static void test_bug_three_part_name_evades_deny(void **state)
{
	static const char *const pub[] = { "public" };
	struct policy *p = compile_ok(pg_policy);
	struct policy_decision d;
	bool denied;

	(void)state;
	decide_sql(p, "ops-1", NULL, PG_DB, "SELECT * FROM hr.payroll", pub, 1,
		   &d);
	assert_int_equal(d.action, POLICY_DENY);
	decide_sql(p, "ops-1", NULL, PG_DB, "SELECT * FROM shop.hr.payroll",
		   pub, 1, &d);
	denied = d.action == POLICY_DENY && !strcmp(d.rule, "no payroll");
	if (!denied)
		print_message("BUG: \"SELECT * FROM shop.hr.payroll\" %s by "
			      "rule \"%s\"\n",
			      d.action == POLICY_ALLOW ? "allowed" : "denied",
			      d.rule);
	policy_free(p); /* before the assertion: it must not leak */
	assert_true(denied);
}

/*
 * Was a bug: an allow rule with an sql part and no target applies to every
 * target, tcp ones included, and policy_decide() ignores its sql part:
 * a rule meant to let agents SELECT from one table opens raw TCP to every
 * tcp target. parse_rule_sql() refuses the same rule when it names the
 * tcp target ("sql rules apply to postgres targets").
 */
static void test_bug_sql_rule_opens_tcp(void **state)
{
	struct policy *p = compile_ok(PG_RULES(
		"[{\"name\": \"agents select\","
		" \"when\": {\"workload\": {\"name\": \"agent\"}},"
		" \"action\": \"allow\","
		" \"sql\": {\"commands\": [\"select\"], \"tables\": "
		"[\"public.orders\"]}}]"));
	struct input to_db = { "agent", NULL, "10.0.0.1", 5432 };
	struct input to_web = { "agent", NULL, "10.0.0.2", 22 };
	struct policy_decision d;
	bool denied;

	(void)state;
	decide(p, &to_db, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "agents select");
	decide(p, &to_web, &d);
	assert_string_equal(d.target, "web");
	denied = d.action == POLICY_DENY && !strcmp(d.rule, "default");
	if (!denied)
		print_message("BUG: tcp target \"web\" allowed by sql rule "
			      "\"%s\"\n",
			      d.rule);
	policy_free(p); /* before the assertion: it must not leak */
	assert_true(denied);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_compile_ok),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_parse_cidr_table),
		cmocka_unit_test(test_parse_cidr_v4mapped_prefix),
		cmocka_unit_test(test_decide_target_specificity),
		cmocka_unit_test(test_decide_rules),
		cmocka_unit_test(test_decide_no_target_is_default),
		cmocka_unit_test(test_decide_default_allow),
		cmocka_unit_test(test_decide_default_is_deny),
		cmocka_unit_test(test_decide_tie_file_order),
		cmocka_unit_test(test_pg_targets),
		cmocka_unit_test(test_decide_pg_connection),
		cmocka_unit_test(test_decide_stmt_table),
		cmocka_unit_test(test_decide_stmt_other_target),
		cmocka_unit_test(test_decide_stmt_bad_target),
		cmocka_unit_test(test_decide_stmt_default_allow),
		cmocka_unit_test(test_decide_stmt_multi),
		cmocka_unit_test(test_mask_plan),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_bug_hidden_write_allowed),
		cmocka_unit_test(test_bug_three_part_name_evades_deny),
		cmocka_unit_test(test_bug_sql_rule_opens_tcp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
