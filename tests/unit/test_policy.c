// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for user/policy.c (with user/jsonv.c): validation errors with
 * their JSON paths and reasons, CIDR parsing, and decisions: target
 * specificity, deny over allow, workload globs and labels, defaults, IPv6.
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

#define FILE_NAME "p.json"

static struct policy *compile(const char *text, char *err, size_t errlen)
{
	json_error_t je;
	struct policy *p;
	struct jv v;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);

	if (!root)
		fail_msg("test policy does not parse: %s\n%s", je.text, text);
	jv_init(&v, FILE_NAME, err, errlen);
	p = policy_compile(&v, root);
	json_decref(root);
	return p;
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
	  "unknown key (allowed: default, targets, rules)" },
	{ "{\"default\": \"maybe\"}", "$.default",
	  "\"maybe\" is not an action (allow, deny)" },
	{ "{\"default\": 1}", "$.default",
	  "expected a string, found an integer" },
	{ "{\"default\": \"\"}", "$.default", "must not be empty" },
	{ "{\"targets\": {}}", "$.targets", "expected an array of targets" },
	{ "{\"targets\": [1]}", "$.targets[0]",
	  "expected an object, found an integer" },
	{ T("\"address\": \"10.0.0.1\", \"host\": \"x\""), "$.targets[0].host",
	  "unknown key (allowed: name, address, port, protocol, tls, ca_file, server_name, credentials)" },
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
	  "$.rules[0].action", "\"permit\" is not an action (allow, deny)" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		     "\"targets\": \"a\"}]"),
	  "$.rules[0].targets",
	  "unknown key (allowed: name, workload, target, action, message, sql, mask)" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		     "\"target\": \"a\"}, {\"name\": \"s\", \"action\": "
		     "\"deny\", \"target\": \"nope\"}]"),
	  "$.rules[1].target", "no target named \"nope\"" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		     "\"target\": []}]"),
	  "$.rules[0].target",
	  "expected a target name or a non-empty array of target names" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		     "\"target\": 5}]"),
	  "$.rules[0].target",
	  "expected a target name or a non-empty array of target names" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		     "\"target\": [\"a\", \"b\", \"c\"]}]"),
	  "$.rules[0].target[2]", "no target named \"c\"" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		     "\"target\": [\"a\", 1]}]"),
	  "$.rules[0].target[1]", "expected a target name" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		     "\"message\": \"no\"}]"),
	  "$.rules[0].message", "only deny rules carry a message" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		     "\"message\": \"\"}]"),
	  "$.rules[0].message", "must not be empty" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\"}, "
		     "{\"name\": \"s\", \"action\": \"deny\"}, "
		     "{\"name\": \"r\", \"action\": \"allow\"}]"),
	  "$.rules[2].name", "duplicate rule name \"r\"" },
	{ WITH_RULES("[{\"name\": \"r\\n\", \"action\": \"deny\"}]"),
	  "$.rules[0].name", "contains control characters" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		     "\"workload\": \"agent\"}]"),
	  "$.rules[0].workload", "expected an object, found a string" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		     "\"workload\": {\"namespace\": \"x\"}}]"),
	  "$.rules[0].workload.namespace",
	  "unknown key (allowed: name, labels)" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		     "\"workload\": {\"name\": []}}]"),
	  "$.rules[0].workload.name",
	  "expected a workload name or a non-empty array of names (globs "
	  "allowed)" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		     "\"workload\": {\"name\": 3}}]"),
	  "$.rules[0].workload.name",
	  "expected a workload name or a non-empty array of names" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		     "\"workload\": {\"name\": [\"a\", 1]}}]"),
	  "$.rules[0].workload.name", "expected strings" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		     "\"workload\": {\"labels\": [\"app\"]}}]"),
	  "$.rules[0].workload.labels", "expected an object of label: value" },
	{ WITH_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		     "\"workload\": {\"labels\": {\"app\": \"x\", "
		     "\"tier\": 2}}}]"),
	  "$.rules[0].workload.labels.tier", "label values must be strings" },

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
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"allow\", "
		   "\"target\": \"web\", \"sql\": {\"commands\": "
		   "[\"select\"]}}]"),
	  "$.rules[0].sql",
	  "target \"web\" is not a postgres target: sql rules apply to "
	  "postgres targets" },
	{ PG_RULES("[{\"name\": \"r\", \"action\": \"deny\", "
		   "\"target\": [\"db\", \"web\"], \"sql\": {\"tables\": "
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
	  "unknown key (allowed: commands, tables, functions, permit)" },
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
	  "unknown key (allowed: columns, detectors, style)" },
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
		"[{\"name\": \"r\", \"action\": \"allow\", \"target\": \"a\"},"
		" {\"name\": \"s\", \"action\": \"deny\", \"message\": \"m\","
		"  \"target\": [\"a\", \"b\"], \"workload\": {\"name\": \"x*\","
		"  \"labels\": {}}},"
		" {\"name\": \"t\", \"action\": \"allow\", \"workload\": {}}]"));
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
		"[{\"name\": \"r\", \"action\": \"allow\", \"target\": \"a\"},"
		" {\"name\": \"s\", \"action\": \"allow\", \"target\": \"z\"}]");
	int fd = mkstemp(path);
	struct policy *p;

	(void)state;
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_null(policy_load_file(path, err, sizeof(err)));
	snprintf(want, sizeof(want),
		 "%s: $.rules[1].target: no target named \"z\"", path);
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
 * BUG: an IPv4-mapped address is folded to IPv4 before its prefix is read,
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
	"  {\"name\": \"agents use echo\", \"target\": \"echo\","
	"   \"workload\": {\"labels\": {\"app\": \"agent\"}}, \"action\": \"allow\"},"
	"  {\"name\": \"no db for agents\", \"target\": \"db\","
	"   \"workload\": {\"name\": \"agent-*\"}, \"action\": \"deny\","
	"   \"message\": \"ask a human\"},"
	"  {\"name\": \"ops db\", \"target\": [\"db\"],"
	"   \"workload\": {\"name\": [\"ops\", \"admin-?\"]}, \"action\": \"allow\"},"
	"  {\"name\": \"team x web\", \"target\": [\"web\", \"echo\"],"
	"   \"workload\": {\"labels\": {\"app\": \"agent\", \"team\": \"x\"}},"
	"   \"action\": \"allow\"},"
	"  {\"name\": \"not b\", \"target\": \"web\","
	"   \"workload\": {\"name\": \"agent-b\"}, \"action\": \"deny\"},"
	"  {\"name\": \"v6 ok\", \"target\": \"any6\", \"action\": \"allow\"},"
	"  {\"name\": \"ops anywhere\", \"workload\": {\"name\": \"ops\"},"
	"   \"action\": \"allow\"},"
	"  {\"name\": \"[x] deny\", \"workload\": {\"name\": \"[xy]-*\"},"
	"   \"action\": \"deny\", \"message\": \"xy\"},"
	"  {\"name\": \"[x] allow\", \"workload\": {\"name\": \"x-*\"},"
	"   \"action\": \"allow\"}"
	" ]}";

static void test_decide_rules(void **state)
{
	static const struct {
		struct input in;
		enum policy_action action;
		const char *rule, *target, *message;
	} cases[] = {
		/* Labels select; first matching allow is reported. */
		{ { "agent-a", "{\"app\": \"agent\"}", "10.77.0.1", 7 },
		  POLICY_ALLOW, "agents use echo", "echo", NULL },
		{ { "agent-a", "{\"app\": \"agent\", \"team\": \"x\"}",
		    "10.77.0.1", 7 },
		  POLICY_ALLOW, "agents use echo", "echo", NULL },
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
		  POLICY_ALLOW, "agents use echo", "echo", NULL },
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
		" \"rules\": [{\"name\": \"bad out\", \"target\": \"t\","
		" \"workload\": {\"name\": \"bad\"}, \"action\": \"deny\"}]}");
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
		" {\"name\": \"deny second\", \"target\": \"second\","
		"  \"action\": \"deny\"},"
		" {\"name\": \"allow first\", \"target\": \"first\","
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
