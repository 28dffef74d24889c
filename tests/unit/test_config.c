// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for user/config.c: good and bad configuration texts (every
 * error names the file, the JSON path and the reason), defaults, cgroup
 * paths against a given cgroup2 root, a policy file relative to the config
 * file, reload comparison, and the cgroup2 mount lookup over fake mounts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridle/config.h"

#define ROOT "/sys/fs/cgroup/unified"
#define NAME "cfg.json"

/* The example from the README: one workload, one target, one rule. */
static const char example[] =
	"{ \"listen_port\": 15001, \"control_socket\": "
	"\"/run/bridle/control.sock\", \"log_dir\": \"/var/lib/bridle\",\n"
	"  \"dns_resolvers\": [\"10.77.0.1\"],\n"
	"  \"workloads\": [ { \"name\": \"agent-a\", \"cgroup\": "
	"\"bridle/agent-a\", \"netns\": \"/run/netns/agent-a\", \"labels\": "
	"{ \"app\": \"agent\" } } ],\n"
	"  \"policy\": { \"default\": \"deny\",\n"
	"    \"targets\": [ { \"name\": \"echo\", \"address\": \"10.77.0.1\", "
	"\"port\": 7, \"protocol\": \"tcp\" } ],\n"
	"    \"rules\": [ { \"name\": \"agents use echo\", \"when\": { "
	"\"workload\": { \"labels\": { \"app\": \"agent\" } }, \"target\": "
	"\"echo\" }, \"action\": \"allow\" } ] } }\n";

static struct config *parse(const char *text, char *err, size_t errlen)
{
	return config_parse(text, strlen(text), NAME, ROOT, err, errlen);
}

static struct config *parse_ok(const char *text)
{
	char err[1024];
	struct config *c = parse(text, err, sizeof(err));

	if (!c)
		fail_msg("config refused: %s\n%s", err, text);
	return c;
}

/* ---- good configurations -------------------------------------------- */

/* Kubernetes metadata of a workload, and the decision log's level. */
static void test_kubernetes_and_decision_log(void **state)
{
	struct config *c = parse_ok(
		"{\"decision_log\": \"refusals\", \"policy\": {}, "
		"\"workloads\": [{\"name\": \"a\", \"cgroup\": \"a\", "
		"\"kubernetes\": {\"namespace\": \"prod\", \"pod\": "
		"\"a-1\", \"service_account\": \"agent\"}}, {\"name\": "
		"\"b\", \"cgroup\": \"b\"}]}");

	(void)state;
	assert_int_equal(c->decision_log, DECISION_LOG_REFUSALS);
	assert_string_equal(c->workloads[0].k8s_namespace, "prod");
	assert_string_equal(c->workloads[0].pod, "a-1");
	assert_string_equal(c->workloads[0].service_account, "agent");
	assert_null(c->workloads[1].k8s_namespace);
	assert_null(c->workloads[1].pod);
	config_free(c);
	c = parse_ok("{\"policy\": {}, \"workloads\": []}");
	assert_int_equal(c->decision_log, DECISION_LOG_ALL);
	config_free(c);
}

static void test_example(void **state)
{
	struct config *c = parse_ok(example);
	const struct config_workload *w;
	struct policy_input in;
	struct policy_decision d;
	uint8_t echo[4] = { 10, 77, 0, 1 };

	(void)state;
	assert_string_equal(c->path, NAME);
	assert_int_equal(c->listen_port, 15001);
	assert_string_equal(c->control_socket, "/run/bridle/control.sock");
	assert_string_equal(c->log_dir, "/var/lib/bridle");
	assert_int_equal(c->nresolvers, 1);
	assert_int_equal(c->resolvers[0].family, AF_INET);
	assert_memory_equal(c->resolvers[0].addr, echo, 4);
	assert_int_equal(c->nworkloads, 1);
	w = &c->workloads[0];
	assert_string_equal(w->name, "agent-a");
	assert_string_equal(w->cgroup, ROOT "/bridle/agent-a");
	assert_string_equal(w->netns, "/run/netns/agent-a");
	assert_int_equal(json_object_size(w->labels), 1);
	assert_string_equal(json_string_value(json_object_get(w->labels, "app")),
			    "agent");
	assert_null(c->policy_path);
	assert_non_null(c->policy);
	assert_int_equal(policy_target_count(c->policy), 1);
	assert_int_equal(policy_rule_count(c->policy), 1);

	/* The workload's labels select the rule. */
	memset(&in, 0, sizeof(in));
	in.workload = w->name;
	in.labels = w->labels;
	in.family = AF_INET;
	in.addr = echo;
	in.port = 7;
	policy_decide(c->policy, &in, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	assert_string_equal(d.rule, "agents use echo");
	assert_string_equal(d.target, "echo");
	in.port = 8;
	policy_decide(c->policy, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	assert_string_equal(d.rule, "default");
	config_free(c);
}

static void test_cgroup_within(void **state)
{
	struct config *c = parse_ok(
		"{\"policy\": {}, \"workloads\": "
		"[{\"name\": \"a\", \"cgroup\": \"x/y\"}]}");

	(void)state;
	assert_true(config_cgroup_within("/a", "/a"));
	assert_true(config_cgroup_within("/a/b", "/a"));
	assert_false(config_cgroup_within("/ab", "/a"));
	assert_false(config_cgroup_within("/a", "/a/b"));
	assert_string_equal(c->cgroup_root, ROOT);
	assert_string_equal(config_cgroup_rel(c, &c->workloads[0]), "/x/y");
	config_free(c);
}

static void test_defaults(void **state)
{
	struct config *c = parse_ok("{\"workloads\": [], \"policy\": {}}");
	struct policy_input in;
	struct policy_decision d;
	uint8_t addr[4] = { 1, 2, 3, 4 };

	(void)state;
	assert_string_equal(c->path, NAME);
	assert_int_equal(c->listen_port, 15001);
	assert_string_equal(c->control_socket, "/run/bridle/control.sock");
	assert_string_equal(c->log_dir, "/var/lib/bridle");
	assert_string_equal(c->pin_dir, "/sys/fs/bpf/bridle");
	assert_int_equal(c->nresolvers, 0);
	assert_int_equal(c->nworkloads, 0);
	assert_int_equal(c->connect_timeout_ms, 5000);
	assert_int_equal(c->idle_timeout_ms, 3600000);
	assert_int_equal(c->drain_timeout_ms, 10000);
	assert_int_equal(c->buffer_size, 65536);
	assert_int_equal(c->relay, RELAY_AUTO);
	assert_int_equal(c->workers, config_default_workers());
	assert_true(c->workers >= 1 && c->workers <= CONFIG_AUTO_WORKERS_MAX);
	assert_int_equal(c->max_sessions, 10000);
	assert_int_equal(c->max_sessions_per_workload, 10000);
	assert_int_equal(c->recent_sessions, 256);
	assert_null(c->policy_path);
	assert_non_null(c->policy);
	/* An empty policy denies. */
	memset(&in, 0, sizeof(in));
	in.workload = "w";
	in.family = AF_INET;
	in.addr = addr;
	in.port = 1;
	policy_decide(c->policy, &in, &d);
	assert_int_equal(d.action, POLICY_DENY);
	config_free(c);
}

static void test_all_keys(void **state)
{
	static const char text[] =
		"{\"listen_port\": 65535, \"control_socket\": \"/c.sock\","
		" \"log_dir\": \"/l\", \"bpf_pin_dir\": \"/sys/fs/bpf/x\","
		" \"dns_resolvers\": [\"10.0.0.53\", \"2001:db8::53\","
		"  \"::ffff:10.0.0.54\"],"
		" \"connect_timeout_ms\": 1, \"idle_timeout_ms\": 0,"
		" \"drain_timeout_ms\": 3600000, \"buffer_size\": 4096,"
		" \"max_sessions\": 1000000, \"recent_sessions\": 0,"
		" \"relay\": \"copy\", \"workers\": 64,"
		" \"workloads\": [{\"name\": \"a\", \"cgroup\": \"a\"},"
		"  {\"name\": \"B.b_-9\", \"cgroup\": \"" ROOT "/x/y\","
		"   \"labels\": {}}],"
		" \"policy\": {\"default\": \"allow\"}}";
	struct config *c = parse_ok(text);
	uint8_t a6[16];

	(void)state;
	assert_int_equal(c->listen_port, 65535);
	assert_string_equal(c->control_socket, "/c.sock");
	assert_string_equal(c->log_dir, "/l");
	assert_string_equal(c->pin_dir, "/sys/fs/bpf/x");
	assert_int_equal(c->connect_timeout_ms, 1);
	assert_int_equal(c->idle_timeout_ms, 0);
	assert_int_equal(c->drain_timeout_ms, 3600000);
	assert_int_equal(c->buffer_size, 4096);
	assert_int_equal(c->max_sessions, 1000000);
	assert_int_equal(c->recent_sessions, 0);
	assert_int_equal(c->relay, RELAY_COPY);
	assert_int_equal(c->workers, 64);
	assert_int_equal(c->nresolvers, 3);
	assert_int_equal(c->resolvers[0].family, AF_INET);
	assert_int_equal(c->resolvers[1].family, AF_INET6);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::53", a6), 1);
	assert_memory_equal(c->resolvers[1].addr, a6, 16);
	/* A mapped resolver is the IPv4 one. */
	assert_int_equal(c->resolvers[2].family, AF_INET);
	assert_memory_equal(c->resolvers[2].addr, "\x0a\x00\x00\x36", 4);
	assert_int_equal(c->nworkloads, 2);
	assert_string_equal(c->workloads[0].cgroup, ROOT "/a");
	/* Unset netns and labels have their defaults. */
	assert_string_equal(c->workloads[0].netns, "/proc/self/ns/net");
	assert_non_null(c->workloads[0].labels);
	assert_true(json_is_object(c->workloads[0].labels));
	assert_int_equal(json_object_size(c->workloads[0].labels), 0);
	assert_string_equal(c->workloads[1].name, "B.b_-9");
	assert_string_equal(c->workloads[1].cgroup, ROOT "/x/y");
	config_free(c);
}

static void test_boundaries_accepted(void **state)
{
	char text[512], sock[108];
	struct config *c;

	(void)state;
	/* The longest control socket path sun_path can hold (107 + NUL). */
	memset(sock, 's', sizeof(sock));
	sock[0] = '/';
	sock[107] = '\0';
	snprintf(text, sizeof(text),
		 "{\"control_socket\": \"%s\", \"listen_port\": 1,"
		 " \"buffer_size\": 16777216, \"workloads\": [{\"name\":"
		 " \"%s\", \"cgroup\": \"a\"}], \"policy\": {}}",
		 sock,
		 "n23456789012345678901234567890123456789012345678901234567890"
		 "123");
	c = parse_ok(text);
	assert_int_equal(strlen(c->control_socket), 107);
	assert_int_equal(c->listen_port, 1);
	assert_int_equal(c->buffer_size, 16 << 20);
	assert_int_equal(strlen(c->workloads[0].name), 63);
	config_free(c);
	config_free(NULL);
}

/* ---- bad configurations --------------------------------------------- */

#define W "\"workloads\": []"
#define P "\"policy\": {}"
#define WP W ", " P
#define WL(body) "{" P ", \"workloads\": [" body "]}"
#define POL(body) "{" W ", \"policy\": " body "}"

static const struct bad_case {
	const char *text;
	const char *path;
	const char *reason;
} bad_cases[] = {
	{ "[]", "$", "expected an object, found an array" },
	{ "{" WP ", \"listen_prot\": 1}", "$.listen_prot",
	  "unknown key: did you mean \"listen_port\"? (allowed: listen_port, control_socket, log_dir" },
	{ "{" WP ", \"listen_port\": 0}", "$.listen_port",
	  "0 is out of range 1..65535" },
	{ "{" WP ", \"listen_port\": 65536}", "$.listen_port",
	  "65536 is out of range 1..65535" },
	{ "{" WP ", \"listen_port\": -1}", "$.listen_port",
	  "-1 is out of range 1..65535" },
	{ "{" WP ", \"listen_port\": \"15001\"}", "$.listen_port",
	  "expected an integer, found a string" },
	{ "{" WP ", \"listen_port\": 15001.0}", "$.listen_port",
	  "expected an integer, found a number" },
	{ "{" WP ", \"control_socket\": \"run/c.sock\"}", "$.control_socket",
	  "must be an absolute path shorter than 108 bytes" },
	{ "{" WP ", \"control_socket\": \"/"
	  "1234567890123456789012345678901234567890123456789012345678901234567"
	  "890123456789012345678901234567890123456789\"}",
	  "$.control_socket",
	  "must be an absolute path shorter than 108 bytes" },
	{ "{" WP ", \"control_socket\": \"\"}", "$.control_socket",
	  "must not be empty" },
	{ "{" WP ", \"log_dir\": \"var/lib/bridle\"}", "$.log_dir",
	  "must be an absolute path" },
	{ "{" WP ", \"log_dir\": null}", "$.log_dir",
	  "expected a string, found null" },
	{ "{" WP ", \"bpf_pin_dir\": \"bpf\"}", "$.bpf_pin_dir",
	  "must be an absolute path" },
	{ "{" WP ", \"connect_timeout_ms\": 0}", "$.connect_timeout_ms",
	  "0 is out of range 1..600000" },
	{ "{" WP ", \"idle_timeout_ms\": 86400001}", "$.idle_timeout_ms",
	  "86400001 is out of range 0..86400000" },
	{ "{" WP ", \"drain_timeout_ms\": 3600001}", "$.drain_timeout_ms",
	  "3600001 is out of range 0..3600000" },
	{ "{" WP ", \"buffer_size\": 4095}", "$.buffer_size",
	  "4095 is out of range 4096..16777216" },
	{ "{" WP ", \"buffer_size\": 16777217}", "$.buffer_size",
	  "16777217 is out of range 4096..16777216" },
	{ "{" WP ", \"max_sessions\": 0}", "$.max_sessions",
	  "0 is out of range 1..1000000" },
	{ "{" WP ", \"recent_sessions\": 100001}", "$.recent_sessions",
	  "100001 is out of range 0..100000" },
	{ "{" WP ", \"relay\": \"fast\"}", "$.relay",
	  "\"fast\" is not a relay mode (auto, copy, splice)" },
	{ "{" WP ", \"workers\": 0}", "$.workers", "0 is out of range 1..64" },
	{ "{" WP ", \"workers\": 65}", "$.workers", "65 is out of range 1..64" },
	{ "{" WP ", \"dns_resolvers\": \"10.0.0.1\"}", "$.dns_resolvers",
	  "expected an array of IP addresses" },
	{ "{" WP ", \"dns_resolvers\": [\"10.0.0.1\", \"10.0.0.0/8\"]}",
	  "$.dns_resolvers[1]", "expected an IP address" },
	{ "{" WP ", \"dns_resolvers\": [\"10.0.0.1\", \"2001:db8::/64\"]}",
	  "$.dns_resolvers[1]", "expected an IP address" },
	{ "{" WP ", \"dns_resolvers\": [53]}", "$.dns_resolvers[0]",
	  "expected an IP address" },
	{ "{" WP ", \"dns_resolvers\": [\"dns.google\"]}", "$.dns_resolvers[0]",
	  "expected an IP address" },
	{ "{" P "}", "$.workloads", "required key is missing" },
	{ "{" P ", \"workloads\": {}}", "$.workloads",
	  "expected an array of workloads" },
	{ WL("1"), "$.workloads[0]", "expected an object, found an integer" },
	{ WL("{\"cgroup\": \"a\"}"), "$.workloads[0].name",
	  "required key is missing" },
	{ WL("{\"name\": \"a\"}"), "$.workloads[0].cgroup",
	  "required key is missing" },
	{ WL("{\"name\": \"a\", \"cgroup\": 5}"), "$.workloads[0].cgroup",
	  "expected a string, found an integer" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"\"}"), "$.workloads[0].cgroup",
	  "must not be empty" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"a\", \"namespace\": \"x\"}"),
	  "$.workloads[0].namespace",
	  "unknown key (allowed: name, cgroup, netns, labels, kubernetes)" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"a\", \"kubernetes\": "
	     "{\"namespace\": \"x\", \"node\": \"n\"}}"),
	  "$.workloads[0].kubernetes.node",
	  "unknown key (allowed: namespace, pod, service_account)" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"a\", \"kubernetes\": "
	     "{\"pod\": 5}}"),
	  "$.workloads[0].kubernetes.pod", "expected a string, found an integer" },
	{ "{" WP ", \"decision_log\": \"verbose\"}", "$.decision_log",
	  "\"verbose\" is not a decision log level" },
	{ WL("{\"name\": \"has space\", \"cgroup\": \"a\"}"),
	  "$.workloads[0].name",
	  "\"has space\" is not a workload name (1-63 of A-Z a-z 0-9 . _ -)" },
	{ WL("{\"name\": \"a/b\", \"cgroup\": \"a\"}"), "$.workloads[0].name",
	  "\"a/b\" is not a workload name" },
	{ WL("{\"name\": \"n234567890123456789012345678901234567890123456789"
	     "012345678901234\", \"cgroup\": \"a\"}"), /* 64 */
	  "$.workloads[0].name", "is not a workload name" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"a\"}, "
	     "{\"name\": \"b\", \"cgroup\": \"b\"}, "
	     "{\"name\": \"a\", \"cgroup\": \"c\"}"),
	  "$.workloads[2].name", "duplicate workload name \"a\"" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"a\", \"netns\": \"\"}"),
	  "$.workloads[0].netns", "must not be empty" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"a\", \"labels\": [\"x\"]}"),
	  "$.workloads[0].labels", "expected an object of label: value" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"a\", \"labels\": "
	     "{\"app\": \"x\", \"tier\": 1}}"),
	  "$.workloads[0].labels.tier", "label values must be strings" },
	/* cgroup paths: relative to the root, or absolute below it. */
	{ WL("{\"name\": \"a\", \"cgroup\": \"a\"}, "
	     "{\"name\": \"b\", \"cgroup\": \"../b\"}"),
	  "$.workloads[1].cgroup", "\"../b\" must name a cgroup below" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"a/../../b\"}"),
	  "$.workloads[0].cgroup", "\"a/../../b\" must name a cgroup below" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"" ROOT "/../b\"}"),
	  "$.workloads[0].cgroup", "must name a cgroup below the cgroup2 root" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"a//b\"}"), "$.workloads[0].cgroup",
	  "\"a//b\" must name a cgroup below" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"/sys/fs/cgroup/b\"}"),
	  "$.workloads[0].cgroup",
	  "\"/sys/fs/cgroup/b\" is not below the cgroup2 mount " ROOT },
	{ WL("{\"name\": \"a\", \"cgroup\": \"" ROOT "x/b\"}"),
	  "$.workloads[0].cgroup",
	  "\"" ROOT "x/b\" is not below the cgroup2 mount " ROOT },
	{ WL("{\"name\": \"a\", \"cgroup\": \"/sys/fs/cgroup\"}"),
	  "$.workloads[0].cgroup", "is not below the cgroup2 mount" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"/\"}"), "$.workloads[0].cgroup",
	  "is not below the cgroup2 mount" },
	{ WL("{\"name\": \"a\", \"cgroup\": \"/a\"}"), "$.workloads[0].cgroup",
	  "is not below the cgroup2 mount" },
	/* The policy, inline. */
	{ "{" W "}", "$.policy",
	  "required key is missing (an object, or the path of a policy file)" },
	{ POL("5"), "$.policy", "expected an object, found an integer" },
	/* Recording. */
	{ "{" W ", " P ", \"record_dir\": \"/r\"}", "$.record_key_file",
	  "record_dir and record_key_file go together" },
	{ "{" W ", " P ", \"record_key_file\": \"/k\"}", "$.record_dir",
	  "record_dir and record_key_file go together" },
	{ "{" W ", " P ", \"record_dir\": \"r\", \"record_key_file\": \"/k\"}",
	  "$.record_dir", "must be an absolute path" },
	{ "{" W ", " P ", \"record_on_error\": \"ignore\"}", "$.record_on_error",
	  "\"ignore\"" },
	{ "{" W ", " P ", \"record_fsync_ms\": 5}", "$.record_fsync_ms",
	  "10" },
	{ "{" W ", " P ", \"review_webhooks\": {}}", "$.review_webhooks",
	  "expected an array" },
	{ "{" W ", " P ", \"review_webhooks\": [{\"url\": \"ftp://x\"}]}",
	  "$.review_webhooks[0].url", "http:// or https://" },
	{ "{" W ", " P ", \"review_webhooks\": [{\"url\": \"http://x\", "
	  "\"format\": \"xml\"}]}",
	  "$.review_webhooks[0].format", "\"xml\"" },
	{ "{" W ", " P ", \"review_webhooks\": [{}]}", "$.review_webhooks[0].url",
	  "required key is missing" },
	{ "{" W ", " P ", \"reviewer_api\": {\"listen\": \"8440\", "
	  "\"tokens_file\": \"/t\"}}",
	  "$.reviewer_api.listen", "is not ADDRESS:PORT" },
	{ "{" W ", " P ", \"reviewer_api\": {\"listen\": \"[::1]:70000\", "
	  "\"tokens_file\": \"/t\"}}",
	  "$.reviewer_api.listen", "is not ADDRESS:PORT" },
	{ "{" W ", " P ", \"reviewer_api\": {\"listen\": \"127.0.0.1:8440\", "
	  "\"tokens_file\": \"t\"}}",
	  "$.reviewer_api.tokens_file", "must be an absolute path" },
	{ "{" W ", " P ", \"reviewer_api\": {\"listen\": \"127.0.0.1:8440\"}}",
	  "$.reviewer_api.tokens_file", "required key is missing" },
	{ POL("{\"rulez\": []}"), "$.policy.rulez",
	  "unknown key: did you mean \"rules\"? (allowed: mode, default, issuers, targets, rules)" },
	{ POL("{\"targets\": [{\"name\": \"t\", \"address\": \"10.0.0.1/8\"}]}"),
	  "$.policy.targets[0].address",
	  "\"10.0.0.1/8\" is not an IP address or CIDR prefix" },
	{ POL("{\"targets\": [{\"name\": \"t\", \"address\": \"10.0.0.1\"}],"
	      " \"rules\": [{\"name\": \"r\", \"when\": {\"target\": \"t\"},"
	      " \"action\": \"allow\"}, {\"name\": \"s\","
	      " \"when\": {\"target\": \"u\"},"
	      " \"action\": \"deny\"}]}"),
	  "$.policy.rules[1].when.target", "no target named \"u\"" },
	{ POL("{\"rules\": [{\"name\": \"r\","
	      " \"when\": {\"workload\": {\"labels\": {\"app\": 1}}},"
	      " \"action\": \"allow\"}]}"),
	  "$.policy.rules[0].when.workload.labels.app",
	  "label values must be strings" },
};


/* Recording: record_dir and its key go together; the key is checked. */
static void test_recording(void **state)
{
	char key[] = "/tmp/bridle-cfgkey-XXXXXX", text[1024], err[1024];
	int fd = mkstemp(key);
	struct config *c;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789abcdef0123456789abcdef", 32),
			 32);
	close(fd);
	snprintf(text, sizeof(text),
		 "{\"policy\": {}, \"workloads\": [], \"record_dir\": "
		 "\"/var/lib/bridle/rec\", \"record_key_file\": \"%s\", "
		 "\"record_on_error\": \"continue\", \"record_fsync_ms\": 50, "
		 "\"record_max_bytes\": 1000000, \"record_max_age_hours\": 24}",
		 key);
	c = parse_ok(text);
	assert_string_equal(c->record_dir, "/var/lib/bridle/rec");
	assert_int_equal(c->record_key_len, 32);
	assert_memory_equal(c->record_key, "0123456789abcdef", 16);
	assert_int_equal(c->record_on_error, RECORD_ON_ERROR_CONTINUE);
	assert_int_equal(c->record_fsync_ms, 50);
	assert_int_equal(c->record_max_bytes, 1000000);
	assert_int_equal(c->record_max_age_hours, 24);
	config_free(c);
	/* Defaults: not recorded; when recorded, refuse and 1 s. */
	c = parse_ok("{\"policy\": {}, \"workloads\": [], \"review_webhooks\": "
		     "[{\"url\": \"https://h/a\"}, {\"url\": \"http://h/b\", "
		     "\"format\": \"slack\"}]}");
	assert_int_equal(c->nwebhooks, 2);
	assert_null(c->reviewer_listen);
	assert_string_equal(c->webhooks[0].url, "https://h/a");
	assert_false(c->webhooks[0].slack);
	assert_true(c->webhooks[1].slack);
	config_free(c);
	c = parse_ok("{\"policy\": {}, \"workloads\": []}");
	assert_null(c->record_dir);
	assert_int_equal(c->record_on_error, RECORD_ON_ERROR_REFUSE);
	assert_int_equal(c->record_fsync_ms, 1000);
	config_free(c);
	/* The key readable by others: refused, with the fix. */
	assert_int_equal(chmod(key, 0644), 0);
	assert_null(parse(text, err, sizeof(err)));
	assert_non_null(strstr(err, "$.record_key_file"));
	assert_non_null(strstr(err, "chmod 600"));
	unlink(key);
	assert_null(parse(text, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open the recording key"));
}

static void test_bad_configs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *b = &bad_cases[i];
		char err[1024], prefix[300];
		struct config *c = parse(b->text, err, sizeof(err));

		if (c) {
			config_free(c);
			fail_msg("case %zu accepted: %s", i, b->text);
		}
		snprintf(prefix, sizeof(prefix), "%s: %s: ", NAME, b->path);
		if (strncmp(err, prefix, strlen(prefix)) != 0 ||
		    !strstr(err + strlen(prefix), b->reason))
			fail_msg("case %zu: %s\n  want: %s%s...\n  got:  %s", i,
				 b->text, prefix, b->reason, err);
	}
}

static void test_too_many_resolvers(void **state)
{
	char text[2048], err[512];
	size_t off;

	(void)state;
	off = (size_t)snprintf(text, sizeof(text),
			       "{" WP ", \"dns_resolvers\": [");
	for (int i = 0; i < 65; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
					"%s\"10.0.0.%d\"", i ? ", " : "", i);
	snprintf(text + off, sizeof(text) - off, "]}");
	assert_null(parse(text, err, sizeof(err)));
	assert_string_equal(err,
			    NAME ": $.dns_resolvers: at most 64 resolvers");

	/* 64 is fine. */
	off = (size_t)snprintf(text, sizeof(text),
			       "{" WP ", \"dns_resolvers\": [");
	for (int i = 0; i < 64; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
					"%s\"10.0.0.%d\"", i ? ", " : "", i);
	snprintf(text + off, sizeof(text) - off, "]}");
	config_free(parse_ok(text));
}

/* Not JSON, or JSON with duplicate keys: file:line:column and the reason. */
static void test_invalid_json(void **state)
{
	static const struct {
		const char *text;
		size_t len; /* 0: strlen */
		const char *prefix, *reason;
	} cases[] = {
		{ "", 0, NAME ":", "invalid JSON: " },
		{ "{", 0, NAME ":1:", "invalid JSON: " },
		{ "{\"workloads\": [], \"policy\": {},}", 0, NAME ":1:",
		  "invalid JSON: " },
		{ "{\"workloads\": [],\n \"policy\": {},\n \"workloads\": []}",
		  0, NAME ":3:", "invalid JSON: duplicate object key" },
		{ "{\"workloads\": [{\"name\": \"a\", \"cgroup\": \"a\","
		  " \"labels\": {\"x\": \"1\",\n \"x\": \"2\"}}], \"policy\": {}}",
		  0, NAME ":2:", "invalid JSON: duplicate object key" },
		{ "{\"workloads\": [], \"policy\": {\"rules\": [],\n"
		  " \"rules\": []}}",
		  0, NAME ":2:", "invalid JSON: duplicate object key" },
		{ "{\"workloads\": [], \"policy\": {}}\0garbage", 41, NAME ":",
		  "invalid JSON: " },
		{ "{\"workloads\": [], \"policy\": {}} {}", 0, NAME ":1:",
		  "invalid JSON: " },
		{ "{\"workloads\": [], \"policy\": {\"default\": \"d\\u0000\"}}",
		  0, NAME ":1:", "invalid JSON: " },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[512];
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		struct config *c = config_parse(cases[i].text, len, NAME, ROOT,
						err, sizeof(err));

		if (c) {
			config_free(c);
			fail_msg("case %zu accepted", i);
		}
		if (strncmp(err, cases[i].prefix, strlen(cases[i].prefix)) ||
		    !strstr(err, cases[i].reason))
			fail_msg("case %zu: want %s...%s, got %s", i,
				 cases[i].prefix, cases[i].reason, err);
	}
}

/* ---- cgroup paths --------------------------------------------------- */

static void test_cgroup_paths(void **state)
{
	static const struct {
		const char *cgroup, *want;
	} cases[] = {
		{ "bridle/agent-a", ROOT "/bridle/agent-a" },
		{ "agent", ROOT "/agent" },
		{ "a.b/c_d/e-f", ROOT "/a.b/c_d/e-f" },
		{ ROOT "/bridle/agent-a", ROOT "/bridle/agent-a" },
		{ ROOT "/x", ROOT "/x" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		struct config *c;

		snprintf(text, sizeof(text),
			 WL("{\"name\": \"w\", \"cgroup\": \"%s\"}"),
			 cases[i].cgroup);
		c = parse_ok(text);
		assert_string_equal(c->workloads[0].cgroup, cases[i].want);
		config_free(c);
	}
}

static void test_cgroup_other_root(void **state)
{
	char err[512];
	const char *text = WL("{\"name\": \"w\", \"cgroup\": \"a/b\"},"
			      " {\"name\": \"v\", \"cgroup\": \"/sys/fs/cgroup/c\"}");
	struct config *c;

	(void)state;
	/* Pure cgroup2 host: the same text resolves below /sys/fs/cgroup. */
	c = config_parse(text, strlen(text), NAME, "/sys/fs/cgroup", err,
			 sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->workloads[0].cgroup, "/sys/fs/cgroup/a/b");
	assert_string_equal(c->workloads[1].cgroup, "/sys/fs/cgroup/c");
	config_free(c);

	/* Hybrid host: the absolute one is outside the cgroup2 mount. */
	c = config_parse(text, strlen(text), NAME, ROOT, err, sizeof(err));
	assert_null(c);
	assert_string_equal(err, NAME ": $.workloads[1].cgroup: "
				  "\"/sys/fs/cgroup/c\" is not below the "
				  "cgroup2 mount " ROOT " (give a path relative "
				  "to it, or one below it)");
}

/*
 * BUG: cgroup paths with "." components or a trailing "/" are accepted and
 * kept as written, so the same directory gets another name. enroll.c
 * refuses to enroll the cgroup bridle runs in by comparing these strings:
 * "." becomes "/sys/fs/cgroup/unified/.", which is the cgroup2 root itself
 * (holding bridle) but is not recognised as such, and "bridle/" hides that
 * bridle runs in /bridle. Either refuse such paths or store them canonical.
 */
static void test_cgroup_paths_canonical(void **state)
{
	static const struct {
		const char *cgroup, *canonical;
	} cases[] = {
		{ ".", ROOT },
		{ "./", ROOT },
		{ "./bridle", ROOT "/bridle" },
		{ "bridle/.", ROOT "/bridle" },
		{ "bridle/./agent", ROOT "/bridle/agent" },
		{ "bridle/", ROOT "/bridle" },
		{ ROOT "/", ROOT },
		{ ROOT "/.", ROOT },
		{ ROOT "/bridle/", ROOT "/bridle" },
	};
	char report[2048] = "";
	size_t off = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512], err[512];
		struct config *c;

		snprintf(text, sizeof(text),
			 WL("{\"name\": \"w\", \"cgroup\": \"%s\"}"),
			 cases[i].cgroup);
		c = parse(text, err, sizeof(err));
		if (!c) {
			/* Refusing is fine, at the right place. */
			assert_non_null(
				strstr(err, NAME ": $.workloads[0].cgroup: "));
			continue;
		}
		if (strcmp(c->workloads[0].cgroup, cases[i].canonical) != 0 &&
		    off < sizeof(report))
			off += (size_t)snprintf(
				report + off, sizeof(report) - off,
				"\n  \"%s\" accepted as \"%s\" (want refused or "
				"\"%s\")",
				cases[i].cgroup, c->workloads[0].cgroup,
				cases[i].canonical);
		config_free(c);
	}
	if (report[0])
		fail_msg("non-canonical cgroup paths:%s", report);
}

/*
 * BUG: an absolute cgroup path is copied into a PATH_MAX buffer without a
 * length check (the relative case has one: "path too long"), so a long
 * path is cut silently, here to an ancestor of the cgroup it names: a
 * wider enrollment than written. It must be refused or kept whole.
 */
static void test_cgroup_absolute_too_long(void **state)
{
	static char text[3 * PATH_MAX], cgroup[2 * PATH_MAX];
	char err[512];
	size_t off;
	struct config *c;

	(void)state;
	off = (size_t)snprintf(cgroup, sizeof(cgroup), "%s", ROOT);
	while (off < PATH_MAX + 8)
		off += (size_t)snprintf(cgroup + off, sizeof(cgroup) - off,
					"/a");
	snprintf(cgroup + off, sizeof(cgroup) - off, "/leaf");

	/* The relative spelling of the same cgroup is refused. */
	snprintf(text, sizeof(text),
		 WL("{\"name\": \"w\", \"cgroup\": \"%s\"}"),
		 cgroup + strlen(ROOT) + 1);
	assert_null(parse(text, err, sizeof(err)));
	assert_string_equal(err, NAME ": $.workloads[0].cgroup: path too long");

	snprintf(text, sizeof(text),
		 WL("{\"name\": \"w\", \"cgroup\": \"%s\"}"), cgroup);
	c = parse(text, err, sizeof(err));
	if (!c) {
		assert_non_null(strstr(err, NAME ": $.workloads[0].cgroup: "));
		return;
	}
	if (strcmp(c->workloads[0].cgroup, cgroup) != 0) {
		size_t got = strlen(c->workloads[0].cgroup);

		config_free(c);
		fail_msg("a %zu-byte cgroup path was accepted cut to %zu "
			 "bytes, an ancestor of the cgroup named",
			 strlen(cgroup), got);
	}
	config_free(c);
}

/* With no root given, the cgroup2 mount comes from /proc/mounts. */
static void test_cgroup_root_from_proc(void **state)
{
	char root[PATH_MAX], err[512], want[PATH_MAX + 16];
	const char *text = WL("{\"name\": \"w\", \"cgroup\": \"x\"}");
	int r = config_cgroup2_root("/proc/mounts", root, sizeof(root));
	struct config *c = config_parse(text, strlen(text), NAME, NULL, err,
					sizeof(err));

	(void)state;
	if (r == 0) {
		assert_non_null(c);
		snprintf(want, sizeof(want), "%s/x", root);
		assert_string_equal(c->workloads[0].cgroup, want);
		config_free(c);
	} else {
		assert_null(c);
		assert_non_null(strstr(err, "no cgroup2 file system is mounted"));
	}
}

/* ---- policy in a file ----------------------------------------------- */

static char tmpdir[] = "/tmp/bridle-test-config-XXXXXX";

static void put_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int make_tmpdir(void **state)
{
	char sub[PATH_MAX];

	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
	if (mkdir(sub, 0700))
		return -1;
	return 0;
}

static int remove_tmpdir(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

#define GOOD_POLICY                                                           \
	"{\"default\": \"allow\", \"targets\": [{\"name\": \"t\","            \
	" \"address\": \"10.0.0.1\"}, {\"name\": \"u\", \"address\":"         \
	" \"10.0.0.2\"}], \"rules\": [{\"name\": \"r\","                      \
	" \"when\": {\"target\": \"t\"}, \"action\": \"deny\"}]}"

static struct config *parse_in_dir(const char *cfgname, const char *policy,
				   char *err, size_t errlen)
{
	char name[PATH_MAX], text[PATH_MAX + 64];

	snprintf(name, sizeof(name), "%s/%s", tmpdir, cfgname);
	snprintf(text, sizeof(text), "{" W ", \"policy\": \"%s\"}", policy);
	return config_parse(text, strlen(text), name, ROOT, err, errlen);
}

static void test_policy_file_relative(void **state)
{
	char err[1024], want[PATH_MAX];
	struct config *c;

	(void)state;
	put_file(tmpdir, "policy.json", GOOD_POLICY);
	put_file(tmpdir, "sub/p2.json", "{\"targets\": []}");

	c = parse_in_dir("config.json", "policy.json", err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	snprintf(want, sizeof(want), "%s/policy.json", tmpdir);
	assert_string_equal(c->policy_path, want);
	assert_int_equal(policy_target_count(c->policy), 2);
	assert_int_equal(policy_rule_count(c->policy), 1);
	config_free(c);

	c = parse_in_dir("config.json", "sub/p2.json", err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	snprintf(want, sizeof(want), "%s/sub/p2.json", tmpdir);
	assert_string_equal(c->policy_path, want);
	assert_int_equal(policy_target_count(c->policy), 0);
	config_free(c);

	/* Relative to the config file's directory, not to the cwd. */
	c = parse_in_dir("sub/config.json", "p2.json", err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	assert_string_equal(c->policy_path, want);
	config_free(c);
}

static void test_policy_file_absolute(void **state)
{
	char err[1024], abs[PATH_MAX];
	struct config *c;

	(void)state;
	put_file(tmpdir, "policy.json", GOOD_POLICY);
	snprintf(abs, sizeof(abs), "%s/policy.json", tmpdir);
	c = parse_in_dir("sub/config.json", abs, err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	assert_string_equal(c->policy_path, abs);
	assert_int_equal(policy_target_count(c->policy), 2);
	config_free(c);
}

static void test_policy_file_errors(void **state)
{
	char err[1024], want[PATH_MAX + 128];

	(void)state;
	assert_null(parse_in_dir("config.json", "missing.json", err,
				 sizeof(err)));
	snprintf(want, sizeof(want),
		 "%s/missing.json: cannot open: No such file or directory",
		 tmpdir);
	assert_string_equal(err, want);

	/* Errors in the policy file name that file and its own paths. */
	put_file(tmpdir, "bad.json",
		 "{\"targets\": [{\"name\": \"t\", \"address\": \"10.0.0.1\"}],\n"
		 " \"rules\": [{\"name\": \"r\", \"action\": \"allow\"},\n"
		 "  {\"name\": \"s\", \"when\": {\"target\": \"nope\"}, "
		 "\"action\": \"deny\"}]}\n");
	assert_null(parse_in_dir("config.json", "bad.json", err, sizeof(err)));
	snprintf(want, sizeof(want),
		 "%s/bad.json: $.rules[1].when.target: "
		 "no target named \"nope\"",
		 tmpdir);
	assert_string_equal(err, want);

	put_file(tmpdir, "dup.json", "{\"rules\": [],\n\"rules\": []}");
	assert_null(parse_in_dir("config.json", "dup.json", err, sizeof(err)));
	snprintf(want, sizeof(want), "%s/dup.json:2:", tmpdir);
	assert_memory_equal(err, want, strlen(want));
	assert_non_null(strstr(err, "duplicate object key"));

	/* The config's own errors come before the policy is read. */
	snprintf(want, sizeof(want), "%s/config.json", tmpdir);
	{
		const char *text = "{\"workloads\": 1, \"policy\": \"bad.json\"}";
		char e2[512], prefix[PATH_MAX + 32];

		assert_null(config_parse(text, strlen(text), want, ROOT, e2,
					 sizeof(e2)));
		snprintf(prefix, sizeof(prefix), "%s: $.workloads: ", want);
		assert_memory_equal(e2, prefix, strlen(prefix));
	}
}

static void test_policy_file_config_load(void **state)
{
	char err[1024], cfg[PATH_MAX], want[PATH_MAX];
	struct config *c;

	(void)state;
	put_file(tmpdir, "policy.json", GOOD_POLICY);
	put_file(tmpdir, "sub/config.json",
		 "{\"workloads\": [{\"name\": \"a\", \"cgroup\": \"a\"}],"
		 " \"policy\": \"../policy.json\"}");
	snprintf(cfg, sizeof(cfg), "%s/sub/config.json", tmpdir);
	/* "../" in the policy path is fine: it is not a cgroup. */
	c = config_load(cfg, ROOT, err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	assert_string_equal(c->path, cfg);
	snprintf(want, sizeof(want), "%s/sub/../policy.json", tmpdir);
	assert_string_equal(c->policy_path, want);
	assert_int_equal(policy_target_count(c->policy), 2);
	config_free(c);

	put_file(tmpdir, "sub/config.json", "{\"workloads\": [], \"polic\": {}}");
	assert_null(config_load(cfg, ROOT, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: $.polic: unknown key", cfg);
	assert_memory_equal(err, want, strlen(want));

	snprintf(cfg, sizeof(cfg), "%s/none.json", tmpdir);
	assert_null(config_load(cfg, ROOT, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot open: ", cfg);
	assert_memory_equal(err, want, strlen(want));
}

/*
 * BUG: "policy": "" is not refused as empty: it resolves to the config's
 * directory, and the error names that directory as a JSON file
 * ("./:1:0: invalid JSON: ...") instead of the config file and $.policy.
 */
static void test_policy_file_empty_name(void **state)
{
	char err[1024];
	const char *text = "{" W ", \"policy\": \"\"}";

	(void)state;
	assert_null(config_parse(text, strlen(text), NAME, ROOT, err,
				 sizeof(err)));
	if (strncmp(err, NAME ": $.policy: ", strlen(NAME ": $.policy: ")))
		fail_msg("want \"" NAME ": $.policy: ...\", got \"%s\"", err);
}

/* A config name without a directory: the policy is next to it in cwd. */
static void test_policy_file_bare_name(void **state)
{
	char err[1024], cwd[PATH_MAX];
	const char *text = "{" W ", \"policy\": \"policy.json\"}";
	struct config *c;

	(void)state;
	put_file(tmpdir, "policy.json", GOOD_POLICY);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	c = config_parse(text, strlen(text), "config.json", ROOT, err,
			 sizeof(err));
	assert_int_equal(chdir(cwd), 0);
	if (!c)
		fail_msg("%s", err);
	assert_string_equal(c->policy_path, "./policy.json");
	assert_int_equal(policy_target_count(c->policy), 2);
	config_free(c);

	/* A config in "/" looks for its policy in "/". */
	c = config_parse(text, strlen(text), "/config.json", ROOT, err,
			 sizeof(err));
	assert_null(c);
	assert_string_equal(err,
			    "/policy.json: cannot open: No such file or "
			    "directory");
}

/* ---- config_same_workloads ------------------------------------------ */

static void test_same_workloads(void **state)
{
	static const char base[] =
		"{\"listen_port\": 15001, \"workloads\": [{\"name\": \"a\","
		" \"cgroup\": \"a\", \"labels\": {\"app\": \"x\"}}],"
		" \"policy\": {}}";
	static const struct {
		const char *text;
		bool same;
	} cases[] = {
		{ base, true },
		/* Key order, absolute cgroup, other policy or timeouts. */
		{ "{\"policy\": {\"default\": \"allow\"}, \"workloads\":"
		  " [{\"labels\": {\"app\": \"x\"}, \"cgroup\": \"" ROOT "/a\","
		  " \"name\": \"a\"}], \"idle_timeout_ms\": 5}",
		  true },
		{ "{\"listen_port\": 15002, \"workloads\": [{\"name\": \"a\","
		  " \"cgroup\": \"a\", \"labels\": {\"app\": \"x\"}}],"
		  " \"policy\": {}}",
		  false },
		{ "{\"workloads\": [{\"name\": \"b\", \"cgroup\": \"a\","
		  " \"labels\": {\"app\": \"x\"}}], \"policy\": {}}",
		  false },
		{ "{\"workloads\": [{\"name\": \"a\", \"cgroup\": \"b\","
		  " \"labels\": {\"app\": \"x\"}}], \"policy\": {}}",
		  false },
		{ "{\"workloads\": [{\"name\": \"a\", \"cgroup\": \"a\","
		  " \"netns\": \"/run/netns/a\", \"labels\": {\"app\": \"x\"}}],"
		  " \"policy\": {}}",
		  false },
		{ "{\"workloads\": [{\"name\": \"a\", \"cgroup\": \"a\","
		  " \"labels\": {\"app\": \"y\"}}], \"policy\": {}}",
		  false },
		{ "{\"workloads\": [{\"name\": \"a\", \"cgroup\": \"a\"}],"
		  " \"policy\": {}}",
		  false },
		{ "{\"workloads\": [], \"policy\": {}}", false },
		{ "{\"workloads\": [{\"name\": \"a\", \"cgroup\": \"a\","
		  " \"labels\": {\"app\": \"x\"}}, {\"name\": \"b\", "
		  "\"cgroup\": \"b\"}], \"policy\": {}}",
		  false },
	};
	struct config *a = parse_ok(base);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *b = parse_ok(cases[i].text);

		if (config_same_workloads(a, b) != cases[i].same ||
		    config_same_workloads(b, a) != cases[i].same)
			fail_msg("case %zu: want %s", i,
				 cases[i].same ? "same" : "different");
		config_free(b);
	}
	config_free(a);
}

/* ---- config_cgroup2_root -------------------------------------------- */

static int mounts_root(const char *mounts, char *out, size_t outlen)
{
	char path[PATH_MAX];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/mounts", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(mounts, f);
	assert_int_equal(fclose(f), 0);
	memset(out, 0, outlen);
	r = config_cgroup2_root(path, out, outlen);
	unlink(path);
	return r;
}

static void test_cgroup2_root(void **state)
{
	static const struct {
		const char *mounts;
		int ret;
		const char *root;
	} cases[] = {
		/* Hybrid hierarchy: cgroup2 is not at /sys/fs/cgroup. */
		{ "sysfs /sys sysfs rw,nosuid 0 0\n"
		  "tmpfs /sys/fs/cgroup tmpfs rw,mode=755 0 0\n"
		  "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
		  "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nsdelegate 0 0\n"
		  "cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\n",
		  0, "/sys/fs/cgroup/unified" },
		{ "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n", 0,
		  "/sys/fs/cgroup" },
		{ "none /mnt/cg cgroup2 rw 0 0", 0, "/mnt/cg" },
		/* The first cgroup2 mount wins. */
		{ "cgroup2 /a cgroup2 rw 0 0\ncgroup2 /b cgroup2 rw 0 0\n", 0,
		  "/a" },
		/* No cgroup2 at all. */
		{ "", -ENOENT, "" },
		{ "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
		  "tmpfs /cgroup2 tmpfs rw 0 0\n"
		  "cgroup2x /x cgroup2x rw 0 0\n"
		  "cgroup2 /y cgroup rw 0 0\n",
		  -ENOENT, "" },
		/* Escaped paths (\040 is a space) are skipped. */
		{ "cgroup2 /mnt/my\\040cgroup cgroup2 rw 0 0\n", -ENOENT, "" },
		{ "cgroup2 /mnt/my\\040cgroup cgroup2 rw 0 0\n"
		  "cgroup2 /mnt/plain cgroup2 rw 0 0\n",
		  0, "/mnt/plain" },
		{ "cgroup2 /mnt/a\\011b cgroup2 rw 0 0\n"
		  "cgroup2 /mnt/c\\134d cgroup2 rw 0 0\n",
		  -ENOENT, "" },
		/* Short and blank lines are skipped. */
		{ "\n\ncgroup2\ncgroup2 /x\n  \ncgroup2 /z cgroup2\n", 0, "/z" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[PATH_MAX];
		int r = mounts_root(cases[i].mounts, out, sizeof(out));

		if (r != cases[i].ret || strcmp(out, cases[i].root) != 0)
			fail_msg("case %zu: want %d \"%s\", got %d \"%s\"", i,
				 cases[i].ret, cases[i].root, r, out);
	}
}

static void test_cgroup2_root_long_line(void **state)
{
	char *mounts = malloc(20000), out[PATH_MAX];
	size_t off;

	(void)state;
	assert_non_null(mounts);
	off = (size_t)sprintf(mounts, "overlay / overlay rw,lowerdir=");
	memset(mounts + off, 'l', 9000);
	off += 9000;
	off += (size_t)sprintf(mounts + off,
			       " 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 "
			       "rw 0 0\n");
	assert_int_equal(mounts_root(mounts, out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");
	free(mounts);
}

static void test_cgroup2_root_errors(void **state)
{
	char out[8], path[PATH_MAX];

	(void)state;
	assert_int_equal(
		mounts_root("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n", out, 8),
		-ENAMETOOLONG);
	assert_int_equal(mounts_root("cgroup2 /1234567 cgroup2 rw 0 0\n", out,
				     8),
			 -ENAMETOOLONG);
	assert_int_equal(mounts_root("cgroup2 /123456 cgroup2 rw 0 0\n", out, 8),
			 0);
	assert_string_equal(out, "/123456");
	snprintf(path, sizeof(path), "%s/no-such-mounts", tmpdir);
	assert_int_equal(config_cgroup2_root(path, out, sizeof(out)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_kubernetes_and_decision_log),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_cgroup_within),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_boundaries_accepted),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_recording),
		cmocka_unit_test(test_too_many_resolvers),
		cmocka_unit_test(test_invalid_json),
		cmocka_unit_test(test_cgroup_paths),
		cmocka_unit_test(test_cgroup_other_root),
		cmocka_unit_test(test_cgroup_paths_canonical),
		cmocka_unit_test(test_cgroup_absolute_too_long),
		cmocka_unit_test(test_cgroup_root_from_proc),
		cmocka_unit_test(test_policy_file_relative),
		cmocka_unit_test(test_policy_file_absolute),
		cmocka_unit_test(test_policy_file_errors),
		cmocka_unit_test(test_policy_file_config_load),
		cmocka_unit_test(test_policy_file_empty_name),
		cmocka_unit_test(test_policy_file_bare_name),
		cmocka_unit_test(test_same_workloads),
		cmocka_unit_test(test_cgroup2_root),
		cmocka_unit_test(test_cgroup2_root_long_line),
		cmocka_unit_test(test_cgroup2_root_errors),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
